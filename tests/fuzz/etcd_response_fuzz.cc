// Fuzzes what comes back from etcd: the gateway's responses (range, put,
// txn, deleterange, error bodies) and the nexus health record stored in a
// value. The first byte picks the parser; the rest is the body. Whatever
// parses must hold together: a decoded record re-encodes to a record that
// decodes to the same thing, base64 round-trips.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/etcd_protocol.hh"
#include "runtime/json.hh"
#include "storage/nexus/etcd_health_store.hh"

using namespace ioe;

namespace {
void check(bool ok) {
    if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
    const std::string_view key = "/ioengine/nexus/n/health";
    try {
        switch (data[0] % 7) {
        case 0: {
            auto r = etcd::parse_range_response(body, key);
            check(r.revision > 0);
            if (r.kv) check(r.kv->key == key && r.kv->mod_revision > 0);
            break;
        }
        case 1: check(etcd::parse_put_response(body).revision > 0); break;
        case 2: {
            auto r = etcd::parse_compare_and_put_response(body, key);
            check(!(r.succeeded && r.current));
            break;
        }
        case 3: check(etcd::parse_delete_response(body).deleted >= 0); break;
        case 4: {
            auto e = etcd::parse_error_response(body);
            check(e.message.size() <= 310);
            break;
        }
        case 5: {
            nexus_health_record r = decode_health_record(body, key);
            check(decode_health_record(encode_health_record(r), key) == r);
            break;
        }
        case 6: {
            std::string out;
            if (etcd::base64_decode(body, out)) check(etcd::base64_encode(out) == body);
            (void)json::parse(body);
            break;
        }
        }
    } catch (const etcd::bad_message&) {
    } catch (const health_record_error&) {
    } catch (const json::parse_error&) {
    }
    return 0;
}
