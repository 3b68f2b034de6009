// The Cap'n Proto RPC server (ioengine.capnp): a thread of its own running
// the kj event loop (docs/rpc.md says why it is not the Asio control thread),
// listening on TCP and unix-socket addresses. Each call becomes a coroutine
// on shard 0, where node_service lives; its answer comes back to the kj loop
// through a cross-thread fulfiller, so neither the kj loop nor a reactor ever
// waits for the other.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace ioe {
class engine;
}

namespace ioe::rpc {

class node_service;

inline constexpr const char* default_rpc_tcp = "127.0.0.1:10124";
inline constexpr unsigned default_rpc_port = 10124;

class rpc_server {
public:
    // `addresses`: "HOST:PORT" (port 0: any free one) or "unix:PATH".
    rpc_server(engine& e, node_service& service, std::vector<std::string> addresses);
    ~rpc_server();  // stop()
    rpc_server(const rpc_server&) = delete;
    rpc_server& operator=(const rpc_server&) = delete;

    // Starts the thread and returns once every address listens. Throws
    // std::runtime_error naming the address that cannot listen. Blocks for
    // that moment: call it from the control thread or at start-up, not
    // from a reactor.
    void start();
    // Stops listening, drops the connections and joins the thread. Calls
    // still running on shard 0 finish there; their answers are dropped.
    void stop();

    // The addresses as bound (a port 0 replaced by the real one).
    std::vector<std::string> bound() const;

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

}  // namespace ioe::rpc
