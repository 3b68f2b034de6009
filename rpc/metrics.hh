// /metrics in the Prometheus text format (version 0.0.4) over HTTP, served by
// Boost.Beast on the control thread's io_context. A scrape asks shard 0 to
// gather the figures (metrics_collect.cc): every device's and replica's
// counters, summed over its channels, and every shard's reactor counters
// and queue depths, each read on the shard that writes it, so the I/O path
// takes no lock for it.
#pragma once

#include <memory>
#include <string>

namespace ioe {
class engine;
class control_thread;
}  // namespace ioe

namespace ioe::rpc {

class node_service;

// Shard 0: the whole exposition text.
struct metrics_text;

class metrics_server {
public:
    // `address`: HOST:PORT (port 0: any free one).
    metrics_server(engine& e, control_thread& control, node_service& svc, std::string address);
    ~metrics_server();
    metrics_server(const metrics_server&) = delete;
    metrics_server& operator=(const metrics_server&) = delete;

    // On the control thread. start() throws std::runtime_error naming the
    // address when it cannot listen.
    void start();
    void stop();
    std::string bound() const;

private:
    struct impl;
    std::shared_ptr<impl> _impl;
};

}  // namespace ioe::rpc
