// The etcd v3 JSON gateway's messages (see etcd_protocol.hh).
#include "runtime/etcd_protocol.hh"

#include "runtime/json.hh"

namespace ioe::etcd {

namespace {

constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_index(char c) noexcept {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// A member by its proto name (the gateway's setting) or its lowerCamelCase
// JSON name (grpc-gateway's default), whichever is present.
const json::value* member(const json::value& obj, std::string_view proto_name, std::string_view json_name) {
    const json::value* v = obj.find(proto_name);
    return v ? v : obj.find(json_name);
}

json::value parse_object(std::string_view body, const char* what) {
    json::value doc;
    try {
        doc = json::parse(body);
    } catch (const json::parse_error& e) {
        throw bad_message(std::string(what) + " response is not JSON: " + e.what());
    }
    if (!doc.is_object()) throw bad_message(std::string(what) + " response is not a JSON object");
    return doc;
}

// An int64 field: absent means 0 (the gateway omits defaults).
std::int64_t int_field(const json::value& obj, std::string_view proto_name, std::string_view json_name,
                       const char* what) {
    const json::value* v = member(obj, proto_name, json_name);
    if (!v) return 0;
    std::int64_t out = 0;
    if (!v->as_int64(out)) {
        throw bad_message(std::string(what) + " response: field " + std::string(proto_name) + " is not an integer");
    }
    return out;
}

bool bool_field(const json::value& obj, std::string_view name, const char* what) {
    const json::value* v = obj.find(name);
    if (!v) return false;
    if (!v->is_bool()) throw bad_message(std::string(what) + " response: field " + std::string(name) + " is not a boolean");
    return v->as_bool();
}

std::string bytes_field(const json::value& obj, std::string_view name, const char* what) {
    const json::value* v = obj.find(name);
    if (!v) return {};
    std::string out;
    if (!v->is_string() || !base64_decode(v->text(), out)) {
        throw bad_message(std::string(what) + " response: field " + std::string(name) + " is not base64");
    }
    return out;
}

std::int64_t header_revision(const json::value& doc, const char* what) {
    const json::value* h = doc.find("header");
    if (!h || !h->is_object()) throw bad_message(std::string(what) + " response has no header");
    std::int64_t rev = int_field(*h, "revision", "revision", what);
    if (rev <= 0) throw bad_message(std::string(what) + " response: header revision is not positive");
    return rev;
}

key_value parse_kv(const json::value& v, const char* what) {
    if (!v.is_object()) throw bad_message(std::string(what) + " response: a kvs entry is not an object");
    key_value kv;
    kv.key = bytes_field(v, "key", what);
    kv.value = bytes_field(v, "value", what);
    kv.create_revision = int_field(v, "create_revision", "createRevision", what);
    kv.mod_revision = int_field(v, "mod_revision", "modRevision", what);
    kv.version = int_field(v, "version", "version", what);
    if (kv.mod_revision <= 0 || kv.create_revision <= 0 || kv.version <= 0) {
        throw bad_message(std::string(what) + " response: a key without a positive revision and version");
    }
    return kv;
}

// The body of a range response (top level or inside a txn); the key or nullopt.
std::optional<key_value> range_body(const json::value& obj, std::string_view key, const char* what) {
    const json::value* kvs = obj.find("kvs");
    if (!kvs) return std::nullopt;
    if (!kvs->is_array()) throw bad_message(std::string(what) + " response: kvs is not an array");
    if (kvs->items().empty()) return std::nullopt;
    if (kvs->items().size() != 1) throw bad_message(std::string(what) + " response: more than one key for one key");
    key_value kv = parse_kv(kvs->items()[0], what);
    if (kv.key != key) throw bad_message(std::string(what) + " response is about another key");
    return kv;
}

std::string printable(std::string_view s, std::size_t max) {
    std::string out;
    for (char c : s.substr(0, max)) {
        auto u = static_cast<unsigned char>(c);
        out += (u >= 0x20 && u < 0x7f) ? c : '?';
    }
    if (s.size() > max) out += "...";
    return out;
}

}  // namespace

std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        unsigned v = unsigned(static_cast<unsigned char>(in[i])) << 16 |
                     unsigned(static_cast<unsigned char>(in[i + 1])) << 8 |
                     unsigned(static_cast<unsigned char>(in[i + 2]));
        out += b64_alphabet[(v >> 18) & 63];
        out += b64_alphabet[(v >> 12) & 63];
        out += b64_alphabet[(v >> 6) & 63];
        out += b64_alphabet[v & 63];
    }
    std::size_t rest = in.size() - i;
    if (rest) {
        unsigned v = unsigned(static_cast<unsigned char>(in[i])) << 16;
        if (rest == 2) v |= unsigned(static_cast<unsigned char>(in[i + 1])) << 8;
        out += b64_alphabet[(v >> 18) & 63];
        out += b64_alphabet[(v >> 12) & 63];
        out += rest == 2 ? b64_alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

bool base64_decode(std::string_view in, std::string& out) {
    out.clear();
    if (in.size() % 4 != 0) return false;
    out.reserve(in.size() / 4 * 3);
    for (std::size_t i = 0; i < in.size(); i += 4) {
        bool last = i + 4 == in.size();
        int a = b64_index(in[i]);
        int b = b64_index(in[i + 1]);
        if (a < 0 || b < 0) return false;
        unsigned v = unsigned(a) << 18 | unsigned(b) << 12;
        if (last && in[i + 2] == '=') {
            // "xx==": one byte; the unused bits must be zero.
            if (in[i + 3] != '=' || (v & 0xffff)) return false;
            out += char(v >> 16);
            break;
        }
        int c = b64_index(in[i + 2]);
        if (c < 0) return false;
        v |= unsigned(c) << 6;
        if (last && in[i + 3] == '=') {
            if (v & 0xff) return false;
            out += char(v >> 16);
            out += char((v >> 8) & 0xff);
            break;
        }
        int d = b64_index(in[i + 3]);
        if (d < 0) return false;
        v |= unsigned(d);
        out += char(v >> 16);
        out += char((v >> 8) & 0xff);
        out += char(v & 0xff);
    }
    return true;
}

std::string range_request(std::string_view key) {
    return "{\"key\":\"" + base64_encode(key) + "\"}";
}

std::string put_request(std::string_view key, std::string_view value) {
    return "{\"key\":\"" + base64_encode(key) + "\",\"value\":\"" + base64_encode(value) + "\"}";
}

std::string compare_and_put_request(std::string_view key, std::string_view value, std::int64_t expected_mod_revision) {
    std::string k = base64_encode(key);
    // A missing key compares as mod_revision 0 (etcd compares a zero KeyValue).
    return "{\"compare\":[{\"key\":\"" + k + "\",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":\"" +
           std::to_string(expected_mod_revision) + "\"}],\"success\":[{\"request_put\":" + put_request(key, value) +
           "}],\"failure\":[{\"request_range\":{\"key\":\"" + k + "\"}}]}";
}

std::string delete_request(std::string_view key) { return range_request(key); }

range_response parse_range_response(std::string_view body, std::string_view key) {
    json::value doc = parse_object(body, "range");
    range_response r;
    r.revision = header_revision(doc, "range");
    r.kv = range_body(doc, key, "range");
    return r;
}

put_response parse_put_response(std::string_view body) {
    json::value doc = parse_object(body, "put");
    return put_response{header_revision(doc, "put")};
}

txn_response parse_compare_and_put_response(std::string_view body, std::string_view key) {
    json::value doc = parse_object(body, "txn");
    txn_response r;
    r.revision = header_revision(doc, "txn");
    r.succeeded = bool_field(doc, "succeeded", "txn");
    const json::value* responses = doc.find("responses");
    if (!responses || !responses->is_array() || responses->items().size() != 1) {
        throw bad_message("txn response: expected exactly one response");
    }
    const json::value& one = responses->items()[0];
    if (!one.is_object()) throw bad_message("txn response: a response is not an object");
    if (r.succeeded) {
        if (!member(one, "response_put", "responsePut")) throw bad_message("txn response: success without a put");
    } else {
        const json::value* range = member(one, "response_range", "responseRange");
        if (!range || !range->is_object()) throw bad_message("txn response: failure without a range");
        r.current = range_body(*range, key, "txn");
    }
    return r;
}

delete_response parse_delete_response(std::string_view body) {
    json::value doc = parse_object(body, "deleterange");
    delete_response r;
    r.revision = header_revision(doc, "deleterange");
    r.deleted = int_field(doc, "deleted", "deleted", "deleterange");
    if (r.deleted < 0) throw bad_message("deleterange response: negative count");
    return r;
}

error_response parse_error_response(std::string_view body) noexcept {
    error_response r;
    try {
        json::value doc = json::parse(body);
        if (doc.is_object()) {
            std::int64_t code = -1;
            if (const json::value* c = doc.find("code"); c && c->as_int64(code) && code >= 0 && code < 1000) {
                r.code = static_cast<int>(code);
            }
            const json::value* m = doc.find("message");
            if (!m || !m->is_string()) m = doc.find("error");
            if (m && m->is_string()) r.message = printable(m->text(), 300);
            if (!r.message.empty() || r.code >= 0) return r;
        }
    } catch (...) {
    }
    try {
        r.code = -1;
        r.message = printable(body, 300);
    } catch (...) {
    }
    return r;
}

}  // namespace ioe::etcd
