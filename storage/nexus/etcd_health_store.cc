// The child health store in etcd and the record's JSON (see
// etcd_health_store.hh and docs/nexus-health.md).
#include "storage/nexus/etcd_health_store.hh"

#include <set>

#include "runtime/json.hh"

namespace ioe {

namespace {

[[noreturn]] void malformed(std::string_view key, const std::string& why) {
    throw health_record_error("nexus health record \"" + std::string(key) + "\" is malformed: " + why +
                              " (refusing to guess which children are in sync; fix or remove the record)");
}

}  // namespace

std::string encode_health_record(const nexus_health_record& r) {
    const bool history = r.snapshots > 0 || !r.history_missing.empty();
    std::string out = "{\"version\":" +
                      std::to_string(history ? health_record_version_with_snapshots : health_record_version) +
                      ",\"epoch\":" + std::to_string(r.epoch) + ",\"owner\":";
    json::append_string(out, r.owner);
    out += std::string(",\"clean_shutdown\":") + (r.clean_shutdown ? "true" : "false") + ",\"children\":[";
    bool first = true;
    for (const auto& [uuid, healthy] : r.children) {
        if (!first) out += ',';
        first = false;
        out += "{\"uuid\":";
        json::append_string(out, uuid);
        out += ",\"healthy\":";
        out += healthy ? "true" : "false";
        out += '}';
    }
    out += ']';
    if (history) {
        out += ",\"snapshots\":" + std::to_string(r.snapshots) + ",\"history_missing\":[";
        for (std::size_t i = 0; i < r.history_missing.size(); ++i) {
            if (i) out += ',';
            json::append_string(out, r.history_missing[i]);
        }
        out += ']';
    }
    out += '}';
    return out;
}

nexus_health_record decode_health_record(std::string_view text, std::string_view key) {
    json::value doc;
    try {
        doc = json::parse(text);
    } catch (const json::parse_error& e) {
        malformed(key, e.what());
    }
    if (!doc.is_object()) malformed(key, "not a JSON object");
    const json::value* version = nullptr;
    const json::value* epoch = nullptr;
    const json::value* owner = nullptr;
    const json::value* clean = nullptr;
    const json::value* children = nullptr;
    const json::value* snapshots = nullptr;
    const json::value* missing = nullptr;
    for (const auto& [name, v] : doc.members()) {
        const json::value** slot = name == "version"           ? &version
                                   : name == "epoch"           ? &epoch
                                   : name == "owner"           ? &owner
                                   : name == "clean_shutdown"  ? &clean
                                   : name == "children"        ? &children
                                   : name == "snapshots"       ? &snapshots
                                   : name == "history_missing" ? &missing
                                                               : nullptr;
        if (!slot) malformed(key, "unknown field \"" + name + "\"");
        if (*slot) malformed(key, "field \"" + name + "\" appears twice");
        *slot = &v;
    }
    std::int64_t ver = 0;
    if (!version || !version->is_number() || !version->as_int64(ver)) malformed(key, "no integer \"version\"");
    if (ver != 1 && ver != health_record_version && ver != health_record_version_with_snapshots) {
        malformed(key, "version " + std::to_string(ver) + " (this engine reads versions 1 to " +
                           std::to_string(health_record_version_with_snapshots) + ")");
    }
    nexus_health_record r;
    if (ver == 1) {
        // Written before epochs: neither field exists (and none may appear).
        if (epoch) malformed(key, "field \"epoch\" in a version 1 record");
        if (owner) malformed(key, "field \"owner\" in a version 1 record");
    } else {
        std::int64_t e = 0;
        if (!epoch || !epoch->is_number() || !epoch->as_int64(e) || e < 0 ||
            static_cast<std::uint64_t>(e) > health_record_max_epoch)
            malformed(key, "no integer \"epoch\" in 0.." + std::to_string(health_record_max_epoch));
        if (!owner || !owner->is_string()) malformed(key, "no string \"owner\"");
        r.epoch = static_cast<std::uint64_t>(e);
        r.owner = owner->text();
    }
    if (!clean || !clean->is_bool()) malformed(key, "no boolean \"clean_shutdown\"");
    if (!children || !children->is_array()) malformed(key, "no array \"children\"");
    if (children->items().size() > health_record_max_children) malformed(key, "too many children");
    r.clean_shutdown = clean->as_bool();
    std::set<std::string> seen;
    for (const auto& c : children->items()) {
        if (!c.is_object()) malformed(key, "a child is not an object");
        const json::value* uuid = nullptr;
        const json::value* healthy = nullptr;
        for (const auto& [name, v] : c.members()) {
            const json::value** slot = name == "uuid" ? &uuid : name == "healthy" ? &healthy : nullptr;
            if (!slot) malformed(key, "unknown child field \"" + name + "\"");
            if (*slot) malformed(key, "child field \"" + name + "\" appears twice");
            *slot = &v;
        }
        if (!uuid || !uuid->is_string() || uuid->text().empty()) malformed(key, "a child without a \"uuid\" string");
        if (!healthy || !healthy->is_bool()) malformed(key, "child " + uuid->text() + " without a boolean \"healthy\"");
        if (!seen.insert(uuid->text()).second) malformed(key, "child " + uuid->text() + " listed twice");
        r.children.emplace_back(uuid->text(), healthy->as_bool());
    }
    if (ver != health_record_version_with_snapshots) {
        if (snapshots) malformed(key, "field \"snapshots\" in a version " + std::to_string(ver) + " record");
        if (missing) malformed(key, "field \"history_missing\" in a version " + std::to_string(ver) + " record");
        return r;
    }
    std::int64_t n = 0;
    if (!snapshots || !snapshots->is_number() || !snapshots->as_int64(n) || n < 0 || n > 0xffffffffll)
        malformed(key, "no integer \"snapshots\" in 0..4294967295");
    r.snapshots = static_cast<std::uint32_t>(n);
    if (!missing || !missing->is_array()) malformed(key, "no array \"history_missing\"");
    std::set<std::string> lacking;
    for (const auto& m : missing->items()) {
        if (!m.is_string() || !seen.count(m.text()))
            malformed(key, "\"history_missing\" names something that is not a child of the record");
        if (!lacking.insert(m.text()).second) malformed(key, "child " + m.text() + " in \"history_missing\" twice");
        r.history_missing.push_back(m.text());
    }
    return r;
}

future<std::optional<nexus_health_record>> etcd_health_store::load(std::string key) {
    auto guard = co_await _mutex.hold();
    std::optional<etcd_kv> kv = co_await _client.get(key);
    if (!kv) {
        _revisions[key] = 0;
        co_return std::nullopt;
    }
    nexus_health_record r = decode_health_record(kv->value, key);
    _revisions[key] = kv->mod_revision;
    co_return r;
}

future<> etcd_health_store::store(std::string key, nexus_health_record r) {
    auto guard = co_await _mutex.hold();
    std::string text = encode_health_record(r);
    auto it = _revisions.find(key);
    const std::int64_t expected = it == _revisions.end() ? 0 : it->second;
    etcd_cas_result res = co_await _client.compare_and_put(key, text, expected);
    if (res.succeeded) {
        _revisions[key] = res.mod_revision;
        co_return;
    }
    if (res.current && res.current->value == text) {
        // Our earlier attempt landed though its answer was lost.
        _revisions[key] = res.current->mod_revision;
        co_return;
    }
    throw health_record_conflict(
        "nexus health record \"" + key + "\": changed by another writer (expected revision " +
        std::to_string(expected) + ", found " +
        (res.current ? "revision " + std::to_string(res.current->mod_revision) : std::string("no record")) +
        "); not overwritten");
}

future<> etcd_health_store::remove(std::string key) {
    auto guard = co_await _mutex.hold();
    co_await _client.remove(key);
    _revisions[key] = 0;
}

}  // namespace ioe
