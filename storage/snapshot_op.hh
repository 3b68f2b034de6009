// A snapshot of a block device as one device operation, so that a nexus can
// snapshot a remote replica through the device that reaches it (nvmf://
// sends the vendor admin command of docs/nvmf-vendor.md) the way reservations
// go through storage/reservation.hh. Local replicas are snapshotted through
// their pool (pool::snapshot_replica); a device that cannot take a snapshot
// answers invalid_opcode (the default in device_channel).
#pragma once

#include <cstddef>
#include <string>

namespace ioe {

struct device_snapshot_request {
    static constexpr std::size_t max_name_bytes = 127;  // a pool volume name
    static constexpr std::size_t max_txid_bytes = 63;   // snapshot_options::txid
    std::string name;  // the snapshot's name
    std::string txid;  // the transaction id; a retry with the same one is success
};

struct device_snapshot_reply {
    bool existed = false;  // a snapshot with this txid was already there (idempotent retry)
};

}  // namespace ioe
