// ioengine-ctl: the RPC's answers as JSON objects and table rows.
#pragma once

#include <vector>

#include "rpc/node_service.hh"
#include "tools/ioengine-ctl/output.hh"

namespace ioe::ctl {

json to_json(const rpc::node_info& v);
json to_json(const rpc::device_entry& v);
json to_json(const rpc::share_info& v);
json to_json(const rpc::pool_entry& v);
json to_json(const rpc::replica_entry& v);
json to_json(const rpc::nvmf_listener_info& v);
json to_json(const rpc::nvmf_subsystem_info& v);
json to_json(const rpc::nvmf_host_info& v);
json to_json(const rpc::io_stats& v);
json to_json(const rpc::nexus_entry& v);  // render_nexus.cc
json to_json(const rebuild_progress& v);
json to_json(const nexus_snapshot_result& v);  // render_nexus.cc
json to_json(const rpc::vhost_entry& v);  // vhost_commands.cc

template <typename T>
json to_json(const std::vector<T>& v) {
    json a = json::array();
    for (const auto& x : v) a.push(to_json(x));
    return a;
}

table node_table(const rpc::node_info& v);
table device_table(const std::vector<rpc::device_entry>& v);
table share_table(const rpc::share_info& v);
table pool_table(const std::vector<rpc::pool_entry>& v);
table replica_table(const std::vector<rpc::replica_entry>& v);
table listener_table(const std::vector<rpc::nvmf_listener_info>& v);
table subsystem_table(const std::vector<rpc::nvmf_subsystem_info>& v);
table host_table(const std::vector<rpc::nvmf_host_info>& v);
table stats_table(const std::vector<rpc::io_stats>& v);
table nexus_table(const std::vector<rpc::nexus_entry>& v);
table rebuild_table(const std::vector<rebuild_progress>& v);
table nexus_snapshot_table(const nexus_snapshot_result& v);
table vhost_table(const std::vector<rpc::vhost_entry>& v);

}  // namespace ioe::ctl
