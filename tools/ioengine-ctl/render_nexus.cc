// ioengine-ctl: nexuses and rebuilds as JSON objects and table rows
// (render.hh). The JSON field names are what scripts and tests parse.
#include <fmt/format.h>

#include <chrono>

#include "tools/ioengine-ctl/render.hh"

namespace ioe::ctl {

namespace {
double unix_seconds(std::chrono::system_clock::time_point t) {
    if (t == std::chrono::system_clock::time_point{}) return 0;
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}
std::string percent(const rebuild_progress& p) {
    return p.blocks_total ? fmt::format("{:.1f}%", 100.0 * static_cast<double>(p.blocks_done) /
                                                       static_cast<double>(p.blocks_total))
                          : "-";
}
}  // namespace

json to_json(const rebuild_progress& v) {
    return json::object()
        .set("child", json::str(v.child))
        .set("source", json::str(v.source))
        .set("state", json::str(std::string(to_string(v.state))))
        .set("partial", json::boolean(v.partial))
        .set("blocks_total", json::num(v.blocks_total))
        .set("blocks_done", json::num(v.blocks_done))
        .set("blocks_remaining", json::num(v.blocks_remaining()))
        .set("blocks_per_second", json::real(v.blocks_per_second))
        .set("error", json::str(v.error))
        .set("started", json::real(unix_seconds(v.started)))
        .set("ended", json::real(unix_seconds(v.ended)));
}

json to_json(const rpc::nexus_entry& v) {
    const auto& n = v.nexus;
    json kids = json::array();
    for (const auto& c : n.children) {
        kids.push(json::object()
                      .set("uri", json::str(c.uri))
                      .set("device", json::str(c.device))
                      .set("uuid", json::str(c.id.is_nil() ? std::string() : c.id.to_string()))
                      .set("state", json::str(std::string(to_string(c.state))))
                      .set("reason", json::str(std::string(to_string(c.reason))))
                      .set("block_count", json::num(c.block_count))
                      .set("snapshot_history", json::str(c.snapshot_history_missing ? "missing" : "complete")));
    }
    return json::object()
        .set("name", json::str(n.name))
        .set("uuid", json::str(n.id.to_string()))
        .set("state", json::str(std::string(to_string(n.state))))
        .set("epoch", json::num(n.epoch))
        .set("block_size", json::num(n.block_size))
        .set("block_count", json::num(n.block_count))
        .set("size_bytes", json::num(n.block_count * n.block_size))
        .set("health_key", json::str(v.health_key))
        .set("share_nqn", json::str(v.share_nqn))
        .set("allowed_hosts", json::strings(v.allowed_hosts))
        .set("children", kids)
        .set("rebuilds", to_json(n.rebuilds))
        .set("snapshots_taken", json::num(n.snapshots_taken));
}

json to_json(const nexus_snapshot_result& v) {
    json kids = json::array();
    for (const auto& c : v.children) {
        kids.push(json::object()
                      .set("uri", json::str(c.uri))
                      .set("result", json::str(c.ok ? "ok" : "failed"))
                      .set("existed", json::boolean(c.existed))
                      .set("error", json::str(c.error)));
    }
    return json::object()
        .set("name", json::str(v.name))
        .set("txid", json::str(v.txid))
        .set("complete", json::boolean(v.complete))
        .set("pause_ms", json::real(v.pause_ms))
        .set("children", kids);
}

table nexus_snapshot_table(const nexus_snapshot_result& v) {
    table t{{"SNAPSHOT", "TXID", "CHILD", "RESULT", "ERROR"}, {}};
    bool first = true;
    for (const auto& c : v.children) {
        t.rows.push_back({first ? v.name : "", first ? v.txid : "", c.uri,
                          c.ok ? (c.existed ? "ok (existed)" : "ok") : "failed", c.error.empty() ? "-" : c.error});
        first = false;
    }
    if (first) t.rows.push_back({v.name, v.txid, "-", "no child online", "-"});
    return t;
}

table nexus_table(const std::vector<rpc::nexus_entry>& v) {
    table t{{"NEXUS", "STATE", "SIZE", "CHILD", "CHILD STATE", "REASON", "REBUILD", "PUBLISHED AS"}, {}};
    for (const auto& e : v) {
        const auto& n = e.nexus;
        bool first = true;
        for (const auto& c : n.children) {
            std::string rebuild = "-";
            for (const auto& r : n.rebuilds)
                if (r.child == c.uri) rebuild = fmt::format("{} {}", to_string(r.state), percent(r));
            t.rows.push_back({first ? n.name : "", first ? std::string(to_string(n.state)) : "",
                              first ? human_bytes(n.block_count * n.block_size) : "", c.uri,
                              std::string(to_string(c.state)),
                              c.reason == fault_reason::none ? "-" : std::string(to_string(c.reason)), rebuild,
                              first ? (e.share_nqn.empty() ? "-" : e.share_nqn) : ""});
            first = false;
        }
        if (first) t.rows.push_back({n.name, std::string(to_string(n.state)), "-", "-", "-", "-", "-", "-"});
    }
    return t;
}

table rebuild_table(const std::vector<rebuild_progress>& v) {
    table t{{"CHILD", "SOURCE", "STATE", "KIND", "DONE", "BLOCKS", "REMAINING", "BLOCKS/S", "ERROR"}, {}};
    for (const auto& r : v) {
        t.rows.push_back({r.child, r.source, std::string(to_string(r.state)), r.partial ? "partial" : "full",
                          percent(r), std::to_string(r.blocks_total), std::to_string(r.blocks_remaining()),
                          fmt::format("{:.0f}", r.blocks_per_second), r.error.empty() ? "-" : r.error});
    }
    return t;
}

}  // namespace ioe::ctl
