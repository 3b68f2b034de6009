// The in-memory child health store (see memory_health_store.hh).
#include "storage/nexus/memory_health_store.hh"

#include "storage/nexus/etcd_health_store.hh"

namespace ioe {

void memory_health_store::check_available(const std::string& key) const {
    if (!_available) throw health_store_unavailable("memory health store: unavailable (key \"" + key + "\")");
}

future<std::optional<nexus_health_record>> memory_health_store::load(std::string key) {
    try {
        check_available(key);
        auto it = _records.find(key);
        if (it == _records.end()) return make_ready_future<std::optional<nexus_health_record>>(std::nullopt);
        return make_ready_future<std::optional<nexus_health_record>>(decode_health_record(it->second, key));
    } catch (...) {
        return make_exception_future<std::optional<nexus_health_record>>(std::current_exception());
    }
}

future<> memory_health_store::store(std::string key, nexus_health_record r) {
    try {
        check_available(key);
        auto it = _records.find(key);
        if (it != _records.end()) {
            std::uint64_t current_epoch = 0;
            try {
                current_epoch = decode_health_record(it->second, key).epoch;
            } catch (const health_record_error&) {
                // A record this store cannot read back (planted by a test, or
                // children sharing a uuid) has no epoch to defend.
            }
            if (current_epoch > r.epoch) {
                throw health_record_conflict("nexus health record \"" + key + "\": epoch " +
                                             std::to_string(current_epoch) + " there, this writer has epoch " +
                                             std::to_string(r.epoch) + "; not overwritten");
            }
        }
        _records[key] = encode_health_record(r);
        ++_stores;
        return make_ready_future<>();
    } catch (...) {
        return make_exception_future<>(std::current_exception());
    }
}

future<> memory_health_store::remove(std::string key) {
    try {
        check_available(key);
        _records.erase(key);
        return make_ready_future<>();
    } catch (...) {
        return make_exception_future<>(std::current_exception());
    }
}

std::optional<std::string> memory_health_store::raw(const std::string& key) const {
    auto it = _records.find(key);
    if (it == _records.end()) return std::nullopt;
    return it->second;
}

}  // namespace ioe
