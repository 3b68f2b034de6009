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

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime/future.hh"

namespace ioe {

// The nexus's record: { epoch, owner, clean_shutdown, children: [{uuid,
// healthy}] }. `epoch` numbers the nexus's incarnations: each create takes
// the record's epoch + 1 and writes it before serving (0: a version 1
// record, written before epochs existed). `owner` names the node that runs
// that incarnation (free text, may be empty).
struct nexus_health_record {
    std::uint64_t epoch = 0;
    std::string owner;
    bool clean_shutdown = false;
    std::vector<std::pair<std::string /*child uuid*/, bool /*healthy*/>> children;
    // Nexus snapshots (docs/nexus.md, "History"): how many the volume's
    // nexuses took so far, and the children (uuids, each one of
    // `children`) that lack at least one of them.
    std::uint32_t snapshots = 0;
    std::vector<std::string> history_missing;

    bool operator==(const nexus_health_record&) const = default;
};

// The highest epoch: it fits the reservation key's 32 epoch bits
// (storage/nexus/nexus_epoch.hh) and stays exact in every JSON reader.
inline constexpr std::uint64_t health_record_max_epoch = 0xffffffffu;

// store() refused: someone else wrote the record since this store last read
// or wrote it (etcd), or the record there has a higher epoch (every store):
// another incarnation of the nexus has taken over.
struct health_record_conflict : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class child_health_store {
public:
    virtual ~child_health_store() = default;

    // Reads the record (nullopt: none yet). Fails when the store cannot be
    // reached in time or the record is malformed (never guesses).
    virtual future<std::optional<nexus_health_record>> load(std::string key) = 0;
    // Writes it; durable in the store before the future resolves. Fails
    // with health_record_conflict rather than overwrite a record someone
    // else wrote since this store last read or wrote the key, or one whose
    // epoch is higher than r.epoch.
    virtual future<> store(std::string key, nexus_health_record r) = 0;
    // Deletes the record (no error when there is none).
    virtual future<> remove(std::string key) = 0;
};

}  // namespace ioe
