// An idempotent snapshot of one replica, as a nexus snapshot and our NVMe/TCP
// target's Snapshot Namespace command (docs/nvmf-vendor.md) both need it:
// if the replica's parent chain already holds a snapshot with the request's
// txid, that one is the answer (existed = true) and nothing is taken; else
// pool::snapshot_replica takes it, under the request's name or, when a
// snapshot with the same txid in another volume's chain holds that name on
// this node (a sibling child of the same nexus), under "<name>@<replica
// name>" (docs/nexus.md). Runs the pool part on the pool's shard (hops there
// from any shard). Throws storage_error (invalid_argument for an empty txid
// or a name taken under another txid, and what the pool throws).
#pragma once

#include "runtime/future.hh"
#include "storage/errors.hh"
#include "storage/io_status.hh"
#include "storage/replica.hh"
#include "storage/snapshot_op.hh"

namespace ioe {

future<device_snapshot_reply> snapshot_replica_once(replica* r, device_snapshot_request req);

// The io_status a device operation reports for a storage_error of a
// snapshot (no_space -> capacity_exceeded, invalid_argument and
// already_exists -> invalid_field, not_found/unavailable ->
// namespace_not_ready, anything else -> internal_error).
io_status snapshot_error_status(storage_errc c) noexcept;

}  // namespace ioe
