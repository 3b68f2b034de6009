// The child health store in etcd (runtime/etcd_client.hh), and the record's
// JSON (docs/nexus-health.md):
//   {"version":2,"epoch":3,"owner":"node-a","clean_shutdown":false,
//    "children":[{"uuid":"...","healthy":true}]}
//
// Never overwrites a newer record: store() is a compare-and-put against the
// revision this store last read or wrote for that key (a key it never read
// may only be created). If an earlier attempt whose answer was lost did
// land, the retry finds its own bytes there and takes that as success.
// Another writer's record makes store() fail with health_record_conflict.
//
// A malformed record (bad JSON, an unknown version, a missing, unknown or
// mistyped field, a duplicate child) makes load() fail with
// health_record_error: the nexus refuses to open rather than guess which
// children are in sync.
//
// Used from one shard (like the nexus that owns it); calls are serialized.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

#include "runtime/async_mutex.hh"
#include "runtime/etcd_client.hh"
#include "storage/nexus/child_health.hh"

namespace ioe {

// The record's format version written by this code; version 1 (no epoch,
// no owner) is still read, as epoch 0. Version 3 adds the nexus snapshot
// history and is written only by a record that has some (a volume that
// never took a nexus snapshot keeps version 2, which older engines read).
inline constexpr std::int64_t health_record_version = 2;
inline constexpr std::int64_t health_record_version_with_snapshots = 3;

// More children than any nexus has: a bound on what a record may claim.
inline constexpr std::size_t health_record_max_children = 1024;

struct health_record_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string encode_health_record(const nexus_health_record& r);
// Throws health_record_error naming `key` and what is wrong.
nexus_health_record decode_health_record(std::string_view text, std::string_view key);

class etcd_health_store final : public child_health_store {
public:
    // `client` outlives the store.
    explicit etcd_health_store(etcd_client& client) : _client(client) {}

    future<std::optional<nexus_health_record>> load(std::string key) override;
    future<> store(std::string key, nexus_health_record r) override;
    future<> remove(std::string key) override;

private:
    etcd_client& _client;
    std::map<std::string, std::int64_t> _revisions;  // key -> mod_revision last seen (0: absent)
    async_mutex _mutex;
};

}  // namespace ioe
