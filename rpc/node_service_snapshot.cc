// node_service: snapshots, clones, restore and inflate of replicas (node_service.hh,
// docs/pool-format.md "Version 2"). Each verb finds the volume's pool and
// runs the pool's operation; a snapshot retried with the same name and txid
// answers the snapshot the first call took. Restore refuses a replica that
// something is using (shared, a nexus child, a vhost export): its content
// would change under that user.
#include <fmt/format.h>

#include "rpc/node_service.hh"
#include "storage/replica_snapshot.hh"

namespace ioe::rpc {

namespace {

constexpr std::size_t max_txid_bytes = device_snapshot_request::max_txid_bytes;

uuid parse_uuid_or_nil(const std::string& text, const char* what) {
    if (text.empty()) return uuid{};
    auto id = uuid::parse(text);
    if (!id) throw storage_error(storage_errc::invalid_argument, fmt::format("{}: \"{}\" is not a uuid", what, text));
    return *id;
}

}  // namespace

replica_entry node_service::entry_named(pool& owner, const std::string& name) const {
    for (const auto& r : owner.list_replicas()) {
        if (r.name == name) return entry_of(r);
    }
    throw storage_error(storage_errc::internal, fmt::format("volume \"{}\" vanished from its pool", name));
}

future<replica_entry> node_service::snapshot_replica(std::string name, std::string snapshot_name, std::string txid,
                                                     std::string id_text) {
    check_not_busy("replica snapshot");
    if (txid.size() > max_txid_bytes) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("transaction id of {} bytes: at most {}", txid.size(), max_txid_bytes));
    }
    const uuid id = parse_uuid_or_nil(id_text, "snapshot uuid");
    auto guard = co_await _mutex.hold();
    pool* owner = nullptr;
    if (!find_replica(name, &owner)) {
        throw storage_error(storage_errc::not_found, fmt::format("no replica \"{}\" (replica list shows them)", name));
    }
    // A retry: the snapshot this name and txid took is in the replica's chain.
    if (!txid.empty()) {
        const std::vector<replica_info> all = owner->list_replicas();
        auto info_of = [&all](const std::string& n) -> const replica_info* {
            for (const auto& i : all)
                if (i.name == n) return &i;
            return nullptr;
        };
        const replica_info* at = info_of(name);
        for (std::string up = at ? at->parent : ""; !up.empty();) {
            const replica_info* s = info_of(up);
            if (!s) break;
            if (s->name == snapshot_name && s->txid == txid) co_return entry_of(*s);
            up = s->parent;
        }
    }
    snapshot_options opts;
    opts.name = snapshot_name;
    opts.id = id;
    opts.txid = txid;
    co_await owner->snapshot_replica(name, std::move(opts));
    co_return entry_named(*owner, snapshot_name);
}

future<replica_entry> node_service::clone_snapshot(std::string snapshot_name, std::string clone_name,
                                                   std::string id_text) {
    check_not_busy("replica clone");
    const uuid id = parse_uuid_or_nil(id_text, "clone uuid");
    auto guard = co_await _mutex.hold();
    pool* owner = nullptr;
    if (!find_replica(snapshot_name, &owner)) {
        throw storage_error(storage_errc::not_found,
                            fmt::format("no snapshot \"{}\" (replica list shows them)", snapshot_name));
    }
    co_await owner->clone_snapshot(snapshot_name, clone_name, id);
    co_return entry_named(*owner, clone_name);
}

future<replica_entry> node_service::restore_replica(std::string name, std::string snapshot_name) {
    check_not_busy("replica restore");
    auto guard = co_await _mutex.hold();
    pool* owner = nullptr;
    if (!find_replica(name, &owner)) {
        throw storage_error(storage_errc::not_found, fmt::format("no replica \"{}\" (replica list shows them)", name));
    }
    if (_shares.count(name)) {
        throw storage_error(storage_errc::busy,
                            fmt::format("replica \"{}\" is shared: hosts would see its content change under them; "
                                        "unshare it first (replica unshare)",
                                        name));
    }
    check_not_a_child(name, "replica restore");
    check_not_exported(name, "replica restore");
    co_await owner->restore_replica(name, snapshot_name);
    co_return entry_named(*owner, name);
}

future<replica_entry> node_service::inflate_replica(std::string name) {
    check_not_busy("replica inflate");
    auto guard = co_await _mutex.hold();
    pool* owner = nullptr;
    if (!find_replica(name, &owner)) {
        throw storage_error(storage_errc::not_found, fmt::format("no replica \"{}\" (replica list shows them)", name));
    }
    co_await owner->inflate_replica(name);
    co_return entry_named(*owner, name);
}

}  // namespace ioe::rpc
