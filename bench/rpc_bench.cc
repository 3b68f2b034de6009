// rpc_bench: the control plane's throughput over the real RPC (loopback TCP)
// against an embedded engine: node info with 1 call in flight, node info
// with 64 in flight (pipelined on one connection), and replica create +
// destroy pairs (thin, 4 MiB, in a malloc pool). --json prints
// {"rpc_calls_per_s":…, "rpc_calls_per_s_concurrent":…,
//  "replica_create_destroy_per_s":…}; --seconds N per figure (default 2).
#include <capnp/ez-rpc.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>

#include "rpc/client.hh"
#include "rpc/embedded.hh"
#include "rpc/ioengine.capnp.h"
#include "runtime/cores.hh"
#include "runtime/log.hh"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

double node_info_serial(const std::string& addr, double secs) {
    ioe::rpc::rpc_client c(addr);
    c.info();  // connect
    std::uint64_t n = 0;
    auto t0 = clock_type::now();
    while (seconds_since(t0) < secs) {
        c.info();
        ++n;
    }
    return static_cast<double>(n) / seconds_since(t0);
}

double node_info_concurrent(const std::string& addr, double secs, unsigned in_flight) {
    capnp::EzRpcClient ez(addr.c_str());
    auto& ws = ez.getWaitScope();
    auto node = ez.getMain<ioe::rpc::schema::Engine>().nodeRequest().send().wait(ws).getNode();
    std::uint64_t n = 0;
    auto t0 = clock_type::now();
    auto end = t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(secs));
    std::function<kj::Promise<void>()> one = [&]() -> kj::Promise<void> {
        return node.infoRequest().send().then([&](auto&&) -> kj::Promise<void> {
            ++n;
            if (clock_type::now() < end) return one();
            return kj::READY_NOW;
        });
    };
    kj::Vector<kj::Promise<void>> all;
    for (unsigned i = 0; i < in_flight; ++i) all.add(one());
    kj::joinPromises(all.releaseAsArray()).wait(ws);
    return static_cast<double>(n) / seconds_since(t0);
}

double replica_create_destroy(const std::string& addr, double secs) {
    ioe::rpc::rpc_client c(addr);
    std::uint64_t n = 0;
    auto t0 = clock_type::now();
    while (seconds_since(t0) < secs) {
        std::string name = "b" + std::to_string(n);
        c.create_replica("bench", name, 4 << 20, true);
        c.destroy_replica(name);
        ++n;
    }
    return static_cast<double>(n) / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
    bool json = false;
    double secs = 2;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--json")) {
            json = true;
        } else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) {
            secs = std::stod(argv[++i]);
        } else {
            std::cerr << "usage: rpc_bench [--json] [--seconds N]\n";
            return 2;
        }
    }
    ioe::log::set_level(spdlog::level::warn);  // stdout carries the figures only
    ioe::embedded_options o;
    o.shards = ioe::allowed_cores().size() >= 2 ? 2 : 1;
    o.dma_mb = 32;
    o.rpc = {"127.0.0.1:0"};
    ioe::embedded eng(o);
    eng.create_pool("bench", "malloc:///bench?size_mb=256");
    auto addr = eng.rpc_addresses().at(0);
    double serial = node_info_serial(addr, secs);
    double concurrent = node_info_concurrent(addr, secs, 64);
    double replicas = replica_create_destroy(addr, secs);
    if (json) {
        std::cout << "{\"rpc_calls_per_s\":" << static_cast<std::uint64_t>(serial)
                  << ",\"rpc_calls_per_s_concurrent\":" << static_cast<std::uint64_t>(concurrent)
                  << ",\"replica_create_destroy_per_s\":" << static_cast<std::uint64_t>(replicas)
                  << ",\"shards\":" << o.shards << "}\n";
    } else {
        std::cout << "node info, 1 in flight:   " << static_cast<std::uint64_t>(serial) << " calls/s\n"
                  << "node info, 64 in flight:  " << static_cast<std::uint64_t>(concurrent) << " calls/s\n"
                  << "replica create+destroy:   " << static_cast<std::uint64_t>(replicas) << " pairs/s\n";
    }
    return 0;
}
