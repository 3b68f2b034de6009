// The actor registry (see registry.hh).
#include "actors/registry.hh"

#include "runtime/reactor.hh"

namespace ioe {

registry::registry() : _owner(this_shard_id() == no_shard ? 0 : this_shard_id()) {}

void registry::add_local(const std::string& key, actor* a) {
    if (!_entries.emplace(key, a).second) throw already_registered_error(key);
}

actor* registry::find_local(const std::string& key) const {
    auto it = _entries.find(key);
    return it == _entries.end() ? nullptr : it->second;
}

future<bool> registry::remove(std::string key) {
    return submit_to(_owner, [this, key = std::move(key)] { return _entries.erase(key) == 1; });
}

future<std::vector<std::string>> registry::keys() {
    return submit_to(_owner, [this] {
        std::vector<std::string> out;
        for (const auto& [k, v] : _entries) out.push_back(k);
        return out;
    });
}

}  // namespace ioe
