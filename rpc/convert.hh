// Between the schema's Cap'n Proto structs (ioengine.capnp) and the plain
// structs of node_service.hh, and between storage_error and the RPC's
// "<code>: <message>" exceptions. Shared by the server and the client.
#pragma once

#include <kj/exception.h>

#include <string>
#include <vector>

#include "rpc/ioengine.capnp.h"
#include "rpc/node_service.hh"

namespace ioe::rpc {

namespace s = ioe::rpc::schema;

void fill(s::NodeInfo::Builder b, const node_info& v);
void fill(s::DeviceInfo::Builder b, const device_entry& v);
void fill(s::ShareInfo::Builder b, const share_info& v);
void fill(s::PoolInfo::Builder b, const pool_entry& v);
void fill(s::ReplicaInfo::Builder b, const replica_entry& v);
void fill(s::Subsystem::Builder b, const nvmf_subsystem_info& v);
void fill(s::ConnectedHost::Builder b, const nvmf_host_info& v);
void fill(s::Listener::Builder b, const nvmf_listener_info& v);
void fill(s::IoStats::Builder b, const io_stats& v);

node_info read(s::NodeInfo::Reader r);
device_entry read(s::DeviceInfo::Reader r);
share_info read(s::ShareInfo::Reader r);
pool_entry read(s::PoolInfo::Reader r);
replica_entry read(s::ReplicaInfo::Reader r);
nvmf_subsystem_info read(s::Subsystem::Reader r);
nvmf_host_info read(s::ConnectedHost::Reader r);
nvmf_listener_info read(s::Listener::Reader r);
io_stats read(s::IoStats::Reader r);

// Nexus and rebuild (convert_nexus.cc).
void fill(s::RebuildInfo::Builder b, const rebuild_progress& v);
void fill(s::NexusInfo::Builder b, const nexus_entry& v);
void fill(s::NexusSpec::Builder b, const nexus_spec& v);
rebuild_progress read(s::RebuildInfo::Reader r);
nexus_entry read(s::NexusInfo::Reader r);
void fill(s::NexusSnapshotResult::Builder b, const nexus_snapshot_result& v);
nexus_snapshot_result read(s::NexusSnapshotResult::Reader r);
nexus_spec read(s::NexusSpec::Reader r);
s::ChildAction to_schema(child_action a);
child_action from_schema(s::ChildAction a);
s::RebuildAction to_schema(rebuild_action a);
rebuild_action from_schema(s::RebuildAction a);

// vhost-user-blk exports (convert_vhost.cc).
void fill(s::VhostSpec::Builder b, const vhost_spec& v);
void fill(s::VhostExport::Builder b, const vhost_entry& v);
vhost_spec read(s::VhostSpec::Reader r);
vhost_entry read(s::VhostExport::Reader r);

std::vector<std::string> read_texts(capnp::List<capnp::Text>::Reader l);
void fill_texts(capnp::List<capnp::Text>::Builder b, const std::vector<std::string>& v);

s::StatsKind to_schema(stats_kind k);
stats_kind from_schema(s::StatsKind k);

// An exception for the client: "<code>: <message>".
kj::Exception to_kj_exception(storage_errc code, const std::string& message);
// Back from what the client received (the "remote exception: " prefix and
// anything else the transport added is tolerated): a storage_error with the
// server's code, or `unavailable` for transport failures.
storage_error from_kj_exception(const kj::Exception& e);

}  // namespace ioe::rpc
