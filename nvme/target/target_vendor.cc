// Our vendor-specific admin commands (docs/nvmf-vendor.md): Snapshot
// Namespace (C1h) snapshots the pool replica behind a namespace under the
// host's transaction id (storage/replica_snapshot.hh: a retry with the same
// txid answers the existing snapshot, CQE DW0 bit 0 set). Statuses: Invalid
// Field (payload malformed, name taken under another txid), Invalid
// Namespace (no such namespace, or the discovery controller), Invalid
// Opcode (the namespace is not a pool replica), Reservation Conflict (the
// namespace's reservation does not let the host write), Capacity Exceeded
// (the pool has no room), Namespace Not Ready, Internal Error (anything
// else).
#include <fmt/format.h>

#include "nvme/spec/nvme_vendor.hh"
#include "nvme/target/tcp_qpair.hh"
#include "runtime/log.hh"
#include "storage/errors.hh"
#include "storage/replica.hh"
#include "storage/replica_snapshot.hh"

namespace ioe::nvme {

namespace {

tcp_qpair::completion answer(std::uint16_t st, std::uint32_t dw0 = 0) {
    tcp_qpair::completion c;
    c.status = st;
    c.dw0 = dw0;
    return c;
}

// An io_status (NVMe SCT << 8 | SC) as a completion status, DNR set.
std::uint16_t from_io_status(io_status s) {
    const auto v = static_cast<std::uint16_t>(s);
    return make_status(static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v & 0xff), true);
}

}  // namespace

future<tcp_qpair::completion> tcp_qpair::vendor_snapshot(command* c) {
    if (_ctrl->discovery()) co_return answer(make_status(sct::generic, sc::invalid_namespace_or_format, true));
    block_device* dev = namespace_device(c->cmd.nsid);
    if (!dev) co_return answer(make_status(sct::generic, sc::invalid_namespace_or_format, true));
    if (c->length != sizeof(snapshot_payload)) co_return answer(make_status(sct::generic, sc::invalid_field, true));
    if (!co_await fetch_data(c)) co_return answer(make_status(sct::generic, sc::data_transfer_error, false));
    const auto fields = parse_snapshot_payload(std::span<const std::byte>(c->data.data(), sizeof(snapshot_payload)));
    if (!fields) co_return answer(make_status(sct::generic, sc::invalid_field, true));
    auto* r = dynamic_cast<replica*>(dev);
    if (!r) co_return answer(make_status(sct::generic, sc::invalid_opcode, true));
    // A host the reservation does not let write may not snapshot either: a
    // fenced nexus incarnation must not take what it would report as a
    // point in time of a volume that another incarnation writes now.
    if (!reservation_allows(c->cmd.nsid, true)) {
        log::warn("NVMe/TCP controller {} of host {}: Snapshot Namespace {} (\"{}\", txid {}): reservation conflict",
                  _ctrl->cntlid, _ctrl->hostnqn, c->cmd.nsid, fields->name, fields->txid);
        co_return answer(make_status(sct::generic, sc::reservation_conflict, true));
    }
    try {
        const device_snapshot_reply reply =
            co_await snapshot_replica_once(r, device_snapshot_request{fields->name, fields->txid});
        co_return answer(make_status(sct::generic, sc::success, false), reply.existed ? snapshot_dw0_existed : 0);
    } catch (const storage_error& e) {
        log::warn("NVMe/TCP controller {} of host {}: Snapshot Namespace {} (\"{}\", txid {}): {}", _ctrl->cntlid,
                  _ctrl->hostnqn, c->cmd.nsid, fields->name, fields->txid, e.what());
        co_return answer(from_io_status(snapshot_error_status(e.code)));
    } catch (const std::exception& e) {
        log::warn("NVMe/TCP controller {}: Snapshot Namespace {}: {}", _ctrl->cntlid, c->cmd.nsid, e.what());
        co_return answer(make_status(sct::generic, sc::internal_error, true));
    }
}

}  // namespace ioe::nvme
