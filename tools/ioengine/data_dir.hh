// The daemon's data directory: created if missing, made absolute; holds the
// state file (`state`, see rpc/node_state.hh), the RPC unix socket and the
// default pool's file (`default.img`, sparse, created the first time with
// the size asked for). Blocking file work: start-up only, before the
// reactors run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "rpc/node_state.hh"

namespace ioe::daemon {

class data_dir {
public:
    // Throws std::runtime_error naming the path and the OS error.
    data_dir(const std::string& path, std::uint64_t default_pool_mb);

    const std::string& path() const noexcept { return _path; }
    std::string state_path() const { return _path + "/state"; }
    std::string default_pool_uri() const { return "uring://" + _path + "/default.img"; }
    // The state saved by the last run (nullopt: first start).
    const std::optional<rpc::node_state>& saved_state() const noexcept { return _state; }

private:
    std::string _path;
    std::optional<rpc::node_state> _state;
};

}  // namespace ioe::daemon
