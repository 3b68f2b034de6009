// Conversions for the nexus and rebuild interfaces of ioengine.capnp
// (convert.hh): states and reasons travel as the words docs/nexus.md uses.
#include <capnp/list.h>

#include <chrono>

#include "rpc/convert.hh"

namespace ioe::rpc {

namespace {
std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
kj::StringPtr text(std::string_view s) { return kj::StringPtr(s.data(), s.size()); }

// The value whose to_string() is `word` (the first, `fallback`, if none).
template <typename E>
E parse_word(const std::string& word, std::initializer_list<E> all, E fallback) {
    for (E e : all)
        if (to_string(e) == word) return e;
    return fallback;
}

std::int64_t unix_ns(std::chrono::system_clock::time_point t) {
    if (t == std::chrono::system_clock::time_point{}) return 0;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
std::chrono::system_clock::time_point from_unix_ns(std::int64_t ns) {
    if (ns == 0) return {};
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns)));
}
}  // namespace

void fill(s::RebuildInfo::Builder b, const rebuild_progress& v) {
    b.setChild(text(v.child));
    b.setSource(text(v.source));
    b.setState(text(to_string(v.state)));
    b.setPartial(v.partial);
    b.setBlocksTotal(v.blocks_total);
    b.setBlocksDone(v.blocks_done);
    b.setBlocksPerSecond(v.blocks_per_second);
    b.setStartedUnixNs(unix_ns(v.started));
    b.setEndedUnixNs(unix_ns(v.ended));
    b.setError(text(v.error));
}

rebuild_progress read(s::RebuildInfo::Reader r) {
    rebuild_progress v;
    v.child = str(r.getChild());
    v.source = str(r.getSource());
    v.state = parse_word(str(r.getState()),
                         {rebuild_state::none, rebuild_state::running, rebuild_state::paused, rebuild_state::stopped,
                          rebuild_state::completed, rebuild_state::failed},
                         rebuild_state::none);
    v.partial = r.getPartial();
    v.blocks_total = r.getBlocksTotal();
    v.blocks_done = r.getBlocksDone();
    v.blocks_per_second = r.getBlocksPerSecond();
    v.started = from_unix_ns(r.getStartedUnixNs());
    v.ended = from_unix_ns(r.getEndedUnixNs());
    v.error = str(r.getError());
    return v;
}

void fill(s::NexusInfo::Builder b, const nexus_entry& v) {
    const nexus_info& n = v.nexus;
    b.setName(text(n.name));
    b.setUuid(text(n.id.to_string()));
    b.setState(text(to_string(n.state)));
    b.setBlockSize(n.block_size);
    b.setBlockCount(n.block_count);
    auto kids = b.initChildren(static_cast<unsigned>(n.children.size()));
    for (unsigned i = 0; i < n.children.size(); ++i) {
        const child_info& c = n.children[i];
        kids[i].setUri(text(c.uri));
        kids[i].setDevice(text(c.device));
        kids[i].setUuid(text(c.id.is_nil() ? std::string() : c.id.to_string()));
        kids[i].setState(text(to_string(c.state)));
        kids[i].setReason(text(to_string(c.reason)));
        kids[i].setBlockCount(c.block_count);
    }
    auto rb = b.initRebuilds(static_cast<unsigned>(n.rebuilds.size()));
    for (unsigned i = 0; i < n.rebuilds.size(); ++i) fill(rb[i], n.rebuilds[i]);
    b.setHealthKey(text(v.health_key));
    b.setShareNqn(text(v.share_nqn));
    b.setEpoch(n.epoch);
    fill_texts(b.initAllowedHosts(static_cast<unsigned>(v.allowed_hosts.size())), v.allowed_hosts);
    b.setSnapshotsTaken(n.snapshots_taken);
    std::vector<std::string> missing;
    for (const child_info& c : n.children)
        if (c.snapshot_history_missing) missing.push_back(c.uri);
    fill_texts(b.initSnapshotHistoryMissing(static_cast<unsigned>(missing.size())), missing);
}

void fill(s::NexusSnapshotResult::Builder b, const nexus_snapshot_result& v) {
    b.setName(text(v.name));
    b.setTxid(text(v.txid));
    b.setComplete(v.complete);
    b.setPauseMs(v.pause_ms);
    auto kids = b.initChildren(static_cast<unsigned>(v.children.size()));
    for (unsigned i = 0; i < v.children.size(); ++i) {
        kids[i].setUri(text(v.children[i].uri));
        kids[i].setOk(v.children[i].ok);
        kids[i].setExisted(v.children[i].existed);
        kids[i].setError(text(v.children[i].error));
    }
}

nexus_snapshot_result read(s::NexusSnapshotResult::Reader r) {
    nexus_snapshot_result v;
    v.name = str(r.getName());
    v.txid = str(r.getTxid());
    v.complete = r.getComplete();
    v.pause_ms = r.getPauseMs();
    for (auto c : r.getChildren()) {
        v.children.push_back(nexus_snapshot_child{str(c.getUri()), c.getOk(), c.getExisted(), str(c.getError())});
    }
    return v;
}

nexus_entry read(s::NexusInfo::Reader r) {
    nexus_entry v;
    nexus_info& n = v.nexus;
    n.name = str(r.getName());
    if (auto id = uuid::parse(str(r.getUuid()))) n.id = *id;
    n.state = parse_word(str(r.getState()),
                         {nexus_state::online, nexus_state::degraded, nexus_state::faulted, nexus_state::shutting_down,
                          nexus_state::shutdown, nexus_state::fenced},
                         nexus_state::faulted);
    n.epoch = r.getEpoch();
    n.block_size = r.getBlockSize();
    n.block_count = r.getBlockCount();
    for (auto c : r.getChildren()) {
        child_info ci;
        ci.uri = str(c.getUri());
        ci.device = str(c.getDevice());
        if (auto id = uuid::parse(str(c.getUuid()))) ci.id = *id;
        ci.state = parse_word(str(c.getState()), {child_state::online, child_state::degraded, child_state::faulted},
                              child_state::faulted);
        ci.reason = parse_word(str(c.getReason()),
                               {fault_reason::none, fault_reason::io_error, fault_reason::timeout,
                                fault_reason::no_space, fault_reason::out_of_sync, fault_reason::by_client,
                                fault_reason::cannot_open, fault_reason::rebuild_failed,
                                fault_reason::reserved_by_other},
                               fault_reason::none);
        ci.block_count = c.getBlockCount();
        n.children.push_back(std::move(ci));
    }
    for (auto x : r.getRebuilds()) n.rebuilds.push_back(read(x));
    v.health_key = str(r.getHealthKey());
    v.share_nqn = str(r.getShareNqn());
    v.allowed_hosts = read_texts(r.getAllowedHosts());
    n.snapshots_taken = r.getSnapshotsTaken();
    for (auto u : r.getSnapshotHistoryMissing()) {
        for (auto& c : n.children)
            if (c.uri == str(u)) c.snapshot_history_missing = true;
    }
    return v;
}

void fill(s::NexusSpec::Builder b, const nexus_spec& v) {
    b.setName(text(v.name));
    b.setUuid(text(v.uuid));
    fill_texts(b.initChildren(static_cast<unsigned>(v.children.size())), v.children);
    b.setHealthKey(text(v.health_key));
    b.setSegmentBytes(v.segment_bytes);
    b.setRebuildParallel(v.rebuild_parallel);
    b.setVerify(v.verify);
    if (v.takeover) {
        auto t = b.initTakeover();
        t.setNqn(text(v.takeover_nqn));
        fill_texts(t.initAllowedHosts(static_cast<unsigned>(v.takeover_hosts.size())), v.takeover_hosts);
    }
}

nexus_spec read(s::NexusSpec::Reader r) {
    nexus_spec v;
    v.name = str(r.getName());
    v.uuid = str(r.getUuid());
    v.children = read_texts(r.getChildren());
    v.health_key = str(r.getHealthKey());
    v.segment_bytes = r.getSegmentBytes();
    v.rebuild_parallel = r.getRebuildParallel();
    v.verify = r.getVerify();
    if (r.hasTakeover()) {
        v.takeover = true;
        v.takeover_nqn = str(r.getTakeover().getNqn());
        v.takeover_hosts = read_texts(r.getTakeover().getAllowedHosts());
    }
    return v;
}

s::ChildAction to_schema(child_action a) {
    switch (a) {
        case child_action::add: return s::ChildAction::ADD;
        case child_action::add_in_sync: return s::ChildAction::ADD_IN_SYNC;
        case child_action::remove: return s::ChildAction::REMOVE;
        case child_action::online: return s::ChildAction::ONLINE;
        case child_action::offline: return s::ChildAction::OFFLINE;
        case child_action::fault: return s::ChildAction::FAULT;
    }
    return s::ChildAction::ADD;
}

child_action from_schema(s::ChildAction a) {
    switch (a) {
        case s::ChildAction::ADD: return child_action::add;
        case s::ChildAction::ADD_IN_SYNC: return child_action::add_in_sync;
        case s::ChildAction::REMOVE: return child_action::remove;
        case s::ChildAction::ONLINE: return child_action::online;
        case s::ChildAction::OFFLINE: return child_action::offline;
        case s::ChildAction::FAULT: return child_action::fault;
    }
    throw storage_error(storage_errc::invalid_argument, "unknown child action");
}

s::RebuildAction to_schema(rebuild_action a) {
    switch (a) {
        case rebuild_action::start: return s::RebuildAction::START;
        case rebuild_action::stop: return s::RebuildAction::STOP;
        case rebuild_action::pause: return s::RebuildAction::PAUSE;
        case rebuild_action::resume: return s::RebuildAction::RESUME;
    }
    return s::RebuildAction::START;
}

rebuild_action from_schema(s::RebuildAction a) {
    switch (a) {
        case s::RebuildAction::START: return rebuild_action::start;
        case s::RebuildAction::STOP: return rebuild_action::stop;
        case s::RebuildAction::PAUSE: return rebuild_action::pause;
        case s::RebuildAction::RESUME: return rebuild_action::resume;
    }
    throw storage_error(storage_errc::invalid_argument, "unknown rebuild action");
}

}  // namespace ioe::rpc
