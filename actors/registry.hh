// The actor registry: names (or uuids) to actor refs, itself owned by one
// shard (the one that creates it, normally 0) and reached from any shard
// with a cross-core call. Typed lookups check the actor's dynamic type.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/actor.hh"

namespace ioe {

struct already_registered_error : std::runtime_error {
    explicit already_registered_error(const std::string& key)
        : std::runtime_error("\"" + key + "\" is already registered") {}
};

class registry {
public:
    registry();

    unsigned owner_shard() const noexcept { return _owner; }

    // Registers `ref` under `key`; fails with already_registered_error.
    template <typename T>
    future<> add(std::string key, actor_ref<T> ref) {
        return submit_to(_owner, [this, key = std::move(key), obj = static_cast<actor*>(ref.local())] {
            add_local(key, obj);
        });
    }

    // The actor under `key` if there is one and it is a T.
    template <typename T>
    future<std::optional<actor_ref<T>>> find(std::string key) {
        return submit_to(_owner, [this, key = std::move(key)]() -> std::optional<actor_ref<T>> {
            actor* a = find_local(key);
            if (T* t = dynamic_cast<T*>(a)) return actor_ref<T>(t);
            return std::nullopt;
        });
    }

    // Removes `key`; true if it was there.
    future<bool> remove(std::string key);
    // Every key, in order.
    future<std::vector<std::string>> keys();

private:
    void add_local(const std::string& key, actor* a);
    actor* find_local(const std::string& key) const;

    unsigned _owner;
    std::map<std::string, actor*> _entries;
};

}  // namespace ioe
