// Where a nexus keeps the health of its children between runs: an abstract
// store (etcd in production, memory in unit tests). The nexus writes a child
// unhealthy here *before* it acknowledges the write that made the child fail,
// and a nexus that did not shut down cleanly reopens only the children
// recorded healthy. The record's JSON and key layout: docs/nexus-health.md.
//
// A store is used from one shard (the nexus's owner shard): its futures
// resolve on the calling shard, and calls on one store for one key are
// applied in the order they were made.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/future.hh"

namespace ioe {

// The nexus's record: { clean_shutdown, children: [{uuid, healthy}] }.
struct nexus_health_record {
    bool clean_shutdown = false;
    std::vector<std::pair<std::string /*child uuid*/, bool /*healthy*/>> children;

    bool operator==(const nexus_health_record&) const = default;
};

class child_health_store {
public:
    virtual ~child_health_store() = default;

    // Reads the record (nullopt: none yet). Fails when the store cannot be
    // reached in time or the record is malformed (never guesses).
    virtual future<std::optional<nexus_health_record>> load(std::string key) = 0;
    // Writes it; durable in the store before the future resolves. Fails
    // rather than overwrite a record someone else wrote since this store
    // last read or wrote the key.
    virtual future<> store(std::string key, nexus_health_record r) = 0;
    // Deletes the record (no error when there is none).
    virtual future<> remove(std::string key) = 0;
};

}  // namespace ioe
