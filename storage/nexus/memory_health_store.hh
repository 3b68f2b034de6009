// A child health store in memory, for unit tests of the nexus: records are
// kept as the same JSON the etcd store writes (so a test can plant a
// malformed one with put_raw), and a test can make the store unavailable
// to see what the nexus does when etcd cannot be reached. Like etcd's
// compare-and-put for two incarnations of one nexus, store() refuses to
// replace a record of a higher epoch (health_record_conflict).
// Used from one shard, like the etcd store.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "storage/nexus/child_health.hh"

namespace ioe {

struct health_store_unavailable : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class memory_health_store final : public child_health_store {
public:
    future<std::optional<nexus_health_record>> load(std::string key) override;
    future<> store(std::string key, nexus_health_record r) override;
    future<> remove(std::string key) override;

    // While unavailable, every call fails with health_store_unavailable.
    void set_available(bool available) noexcept { _available = available; }
    // The record's text (nullopt: none), and planting any text.
    std::optional<std::string> raw(const std::string& key) const;
    void put_raw(const std::string& key, std::string text) { _records[key] = std::move(text); }
    // Successful store() calls so far.
    unsigned stores() const noexcept { return _stores; }

private:
    void check_available(const std::string& key) const;

    std::map<std::string, std::string> _records;
    bool _available = true;
    unsigned _stores = 0;
};

}  // namespace ioe
