// The figures of /metrics, gathered on shard 0 and rendered in the
// Prometheus text format (metrics_collect.hh).
#include "rpc/metrics_collect.hh"

#include <fmt/format.h>

#include "rpc/node_service.hh"
#include "runtime/engine.hh"
#include "runtime/smp.hh"

namespace ioe::rpc {

namespace {

// A label value: backslash, double quote and newline escaped.
std::string label(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// Per nexus: its state, each child's state (with the fault reason), and the
// progress of running rebuilds. Its I/O counters are among the devices
// (kind="nexus").
void nexus_families(std::string& out, const std::vector<nexus_entry>& nexuses) {
    family(out, "ioengine_nexus_state", "gauge", "1 for the state a nexus is in (online, degraded, faulted, ...)");
    for (const auto& e : nexuses) {
        for (auto st : {nexus_state::online, nexus_state::degraded, nexus_state::faulted, nexus_state::shutting_down,
                        nexus_state::shutdown, nexus_state::fenced}) {
            out += fmt::format("ioengine_nexus_state{{nexus=\"{}\",state=\"{}\"}} {}\n", label(e.nexus.name),
                               to_string(st), e.nexus.state == st ? 1 : 0);
        }
    }
    family(out, "ioengine_nexus_child_state", "gauge", "1 for the state each nexus child is in, with its fault reason");
    for (const auto& e : nexuses) {
        for (const auto& c : e.nexus.children) {
            for (auto st : {child_state::online, child_state::degraded, child_state::faulted}) {
                out += fmt::format(
                    "ioengine_nexus_child_state{{nexus=\"{}\",child=\"{}\",state=\"{}\",reason=\"{}\"}} {}\n",
                    label(e.nexus.name), label(c.uri), to_string(st), to_string(c.reason), c.state == st ? 1 : 0);
            }
        }
    }
    family(out, "ioengine_nexus_children", "gauge", "children of a nexus, and how many are online");
    for (const auto& e : nexuses) {
        unsigned online = 0;
        for (const auto& c : e.nexus.children) online += c.state == child_state::online;
        out += fmt::format("ioengine_nexus_children{{nexus=\"{}\",which=\"all\"}} {}\n", label(e.nexus.name),
                           e.nexus.children.size());
        out += fmt::format("ioengine_nexus_children{{nexus=\"{}\",which=\"online\"}} {}\n", label(e.nexus.name),
                           online);
    }
    family(out, "ioengine_nexus_rebuild_blocks", "gauge", "blocks a running rebuild has to copy, and has copied");
    for (const auto& e : nexuses) {
        for (const auto& r : e.nexus.rebuilds) {
            out += fmt::format("ioengine_nexus_rebuild_blocks{{nexus=\"{}\",child=\"{}\",which=\"total\"}} {}\n",
                               label(e.nexus.name), label(r.child), r.blocks_total);
            out += fmt::format("ioengine_nexus_rebuild_blocks{{nexus=\"{}\",child=\"{}\",which=\"done\"}} {}\n",
                               label(e.nexus.name), label(r.child), r.blocks_done);
        }
    }
}

}  // namespace

// Per vhost-user-blk export: whether a front-end is connected, its queues,
// mapped guest memory, requests by type, bytes, and error answers.
void vhost_families(std::string& out, const std::vector<vhost_entry>& exports) {
    family(out, "ioengine_vhost_connected", "gauge", "1 while a front-end (VM) is connected to a vhost export");
    for (const auto& e : exports) {
        out += fmt::format("ioengine_vhost_connected{{export=\"{}\",device=\"{}\"}} {}\n", label(e.spec.name),
                           label(e.spec.device), e.connected ? 1 : 0);
    }
    family(out, "ioengine_vhost_queues_active", "gauge", "virtqueues of a vhost export running now");
    for (const auto& e : exports) {
        out += fmt::format("ioengine_vhost_queues_active{{export=\"{}\"}} {}\n", label(e.spec.name), e.queues_active);
    }
    family(out, "ioengine_vhost_mapped_bytes", "gauge", "guest memory a vhost export has mapped");
    for (const auto& e : exports) {
        out += fmt::format("ioengine_vhost_mapped_bytes{{export=\"{}\"}} {}\n", label(e.spec.name), e.mapped_bytes);
    }
    family(out, "ioengine_vhost_connections_total", "counter", "front-ends a vhost export accepted, and turned away");
    for (const auto& e : exports) {
        out += fmt::format("ioengine_vhost_connections_total{{export=\"{}\",result=\"accepted\"}} {}\n",
                           label(e.spec.name), e.connections);
        out += fmt::format("ioengine_vhost_connections_total{{export=\"{}\",result=\"refused\"}} {}\n",
                           label(e.spec.name), e.refused);
    }
    family(out, "ioengine_vhost_requests_total", "counter", "virtio-blk requests served, per export and type");
    for (const auto& e : exports) {
        std::pair<const char*, std::uint64_t> ops[] = {{"read", e.reads},         {"write", e.writes},
                                                       {"flush", e.flushes},      {"discard", e.discards},
                                                       {"write_zeroes", e.write_zeroes}};
        for (auto [op, n] : ops) {
            out += fmt::format("ioengine_vhost_requests_total{{export=\"{}\",op=\"{}\"}} {}\n", label(e.spec.name),
                               op, n);
        }
    }
    family(out, "ioengine_vhost_bytes_total", "counter", "bytes read and written through a vhost export");
    for (const auto& e : exports) {
        out += fmt::format("ioengine_vhost_bytes_total{{export=\"{}\",op=\"read\"}} {}\n", label(e.spec.name),
                           e.read_bytes);
        out += fmt::format("ioengine_vhost_bytes_total{{export=\"{}\",op=\"write\"}} {}\n", label(e.spec.name),
                           e.write_bytes);
    }
    family(out, "ioengine_vhost_errors_total", "counter",
           "requests answered IOERR or UNSUPP, protocol errors (refused messages) and ring faults");
    for (const auto& e : exports) {
        out += fmt::format("ioengine_vhost_errors_total{{export=\"{}\",kind=\"ioerr\"}} {}\n", label(e.spec.name),
                           e.ioerr);
        out += fmt::format("ioengine_vhost_errors_total{{export=\"{}\",kind=\"unsupported\"}} {}\n",
                           label(e.spec.name), e.unsupported);
        out += fmt::format("ioengine_vhost_errors_total{{export=\"{}\",kind=\"protocol\"}} {}\n",
                           label(e.spec.name), e.protocol_errors);
        out += fmt::format("ioengine_vhost_errors_total{{export=\"{}\",kind=\"ring_fault\"}} {}\n",
                           label(e.spec.name), e.ring_faults);
    }
    family(out, "ioengine_vhost_bounced_total", "counter",
           "requests copied through a DMA buffer because the guest's buffers were misaligned");
    for (const auto& e : exports) {
        out += fmt::format("ioengine_vhost_bounced_total{{export=\"{}\"}} {}\n", label(e.spec.name), e.bounced);
    }
}

future<std::string> collect_metrics(node_service& svc) {
    engine& e = *engine::current();
    auto info = svc.info();
    std::string out;
    family(out, "ioengine_info", "gauge", "the engine's version and node name");
    out += fmt::format("ioengine_info{{version=\"{}\",node=\"{}\"}} 1\n", label(info.version), label(info.name));

    std::vector<reactor_stats> shards;
    for (unsigned s = 0; s < e.shards(); ++s) {
        shards.push_back(co_await submit_to(s, [&e, s] { return e.reactor_of(s).stats(); }));
    }
    family(out, "ioengine_reactor_loops_total", "counter", "reactor loop iterations per shard");
    for (unsigned s = 0; s < shards.size(); ++s) out += fmt::format("ioengine_reactor_loops_total{{shard=\"{}\"}} {}\n", s, shards[s].loops);
    family(out, "ioengine_reactor_tasks_total", "counter", "tasks run per shard");
    for (unsigned s = 0; s < shards.size(); ++s) out += fmt::format("ioengine_reactor_tasks_total{{shard=\"{}\"}} {}\n", s, shards[s].tasks_run);
    family(out, "ioengine_reactor_sleeps_total", "counter", "times a shard went to sleep (idle, adaptive/event polling)");
    for (unsigned s = 0; s < shards.size(); ++s) out += fmt::format("ioengine_reactor_sleeps_total{{shard=\"{}\"}} {}\n", s, shards[s].sleeps);
    family(out, "ioengine_reactor_busy_seconds_total", "counter",
           "time a shard spent in loop iterations that found work");
    for (unsigned s = 0; s < shards.size(); ++s)
        out += fmt::format("ioengine_reactor_busy_seconds_total{{shard=\"{}\"}} {:.6f}\n", s, shards[s].busy_ns / 1e9);
    family(out, "ioengine_reactor_idle_seconds_total", "counter",
           "time a shard spent polling without finding work or asleep");
    for (unsigned s = 0; s < shards.size(); ++s)
        out += fmt::format("ioengine_reactor_idle_seconds_total{{shard=\"{}\"}} {:.6f}\n", s, shards[s].idle_ns / 1e9);
    family(out, "ioengine_reactor_tasks_queued", "gauge", "ready tasks waiting to run on a shard");
    for (unsigned s = 0; s < shards.size(); ++s)
        out += fmt::format("ioengine_reactor_tasks_queued{{shard=\"{}\"}} {}\n", s, shards[s].tasks_queued);
    family(out, "ioengine_reactor_io_in_flight", "gauge", "io_uring operations submitted and not completed on a shard");
    for (unsigned s = 0; s < shards.size(); ++s)
        out += fmt::format("ioengine_reactor_io_in_flight{{shard=\"{}\"}} {}\n", s, shards[s].io_in_flight);
    family(out, "ioengine_reactor_pollers", "gauge", "pollers (device queues) registered on a shard");
    for (unsigned s = 0; s < shards.size(); ++s)
        out += fmt::format("ioengine_reactor_pollers{{shard=\"{}\"}} {}\n", s, shards[s].pollers);

    auto devices = co_await svc.snapshot_devices();
    auto kind_of = [](const node_service::device_snapshot& d) {
        return d.product == "replica" ? "replica" : d.product == "nexus" ? "nexus" : "device";
    };
    family(out, "ioengine_io_ops_total", "counter", "operations submitted, per device or replica and operation");
    for (const auto& d : devices) {
        const auto& c = d.counters;
        std::pair<const char*, std::uint64_t> ops[] = {{"read", c.read_ops},   {"write", c.write_ops},
                                                       {"flush", c.flush_ops}, {"write_zeroes", c.zeroes_ops},
                                                       {"unmap", c.unmap_ops}};
        for (auto [op, n] : ops) {
            out += fmt::format("ioengine_io_ops_total{{kind=\"{}\",name=\"{}\",op=\"{}\"}} {}\n", kind_of(d),
                               label(d.name), op, n);
        }
    }
    family(out, "ioengine_io_bytes_total", "counter", "bytes read and written, per device or replica");
    for (const auto& d : devices) {
        out += fmt::format("ioengine_io_bytes_total{{kind=\"{}\",name=\"{}\",op=\"read\"}} {}\n", kind_of(d),
                           label(d.name), d.counters.read_bytes);
        out += fmt::format("ioengine_io_bytes_total{{kind=\"{}\",name=\"{}\",op=\"write\"}} {}\n", kind_of(d),
                           label(d.name), d.counters.write_bytes);
    }
    family(out, "ioengine_io_errors_total", "counter", "operations that completed with an error");
    for (const auto& d : devices) {
        out += fmt::format("ioengine_io_errors_total{{kind=\"{}\",name=\"{}\"}} {}\n", kind_of(d), label(d.name),
                           d.counters.errors);
    }
    family(out, "ioengine_io_latency_seconds", "histogram",
           "time from submission to completion of every operation, per device or replica");
    for (const auto& d : devices) {
        const auto& c = d.counters;
        std::uint64_t cumulative = 0;
        for (unsigned b = 0; b < channel_stats::latency_buckets; ++b) {
            cumulative += c.latency_histogram[b];
            std::string le = b + 1 == channel_stats::latency_buckets
                                 ? "+Inf"
                                 : fmt::format("{:g}", static_cast<double>(std::uint64_t(1024) << b) / 1e9);
            out += fmt::format("ioengine_io_latency_seconds_bucket{{kind=\"{}\",name=\"{}\",le=\"{}\"}} {}\n",
                               kind_of(d), label(d.name), le, cumulative);
        }
        out += fmt::format("ioengine_io_latency_seconds_sum{{kind=\"{}\",name=\"{}\"}} {:.9f}\n", kind_of(d),
                           label(d.name), static_cast<double>(c.latency_ns_sum) / 1e9);
        out += fmt::format("ioengine_io_latency_seconds_count{{kind=\"{}\",name=\"{}\"}} {}\n", kind_of(d),
                           label(d.name), cumulative);
    }
    family(out, "ioengine_io_in_flight", "gauge", "operations in flight (queue depth) per device and shard");
    for (const auto& d : devices) {
        for (unsigned s = 0; s < d.in_flight.size(); ++s) {
            out += fmt::format("ioengine_io_in_flight{{kind=\"{}\",name=\"{}\",shard=\"{}\"}} {}\n", kind_of(d),
                               label(d.name), s, d.in_flight[s]);
        }
    }
    auto pools = svc.list_pools();
    family(out, "ioengine_pool_capacity_bytes", "gauge", "data capacity of a pool");
    for (const auto& p : pools) out += fmt::format("ioengine_pool_capacity_bytes{{pool=\"{}\"}} {}\n", label(p.pool.name), p.pool.capacity_bytes);
    family(out, "ioengine_pool_used_bytes", "gauge", "space of a pool allocated to replicas");
    for (const auto& p : pools) out += fmt::format("ioengine_pool_used_bytes{{pool=\"{}\"}} {}\n", label(p.pool.name), p.pool.used_bytes);
    nexus_families(out, svc.list_nexuses(""));
    vhost_families(out, co_await svc.list_vhost(""));
    co_return out;
}

}  // namespace ioe::rpc
