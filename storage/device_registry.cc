// The device registry (see device_registry.hh).
#include "storage/device_registry.hh"

#include <algorithm>
#include <fmt/format.h>

#include "runtime/reactor.hh"
#include "runtime/smp.hh"
#include "storage/fault_uri.hh"

namespace ioe {

device_registry::device_registry() : _owner(this_shard_id() == no_shard ? 0 : this_shard_id()) {}

device_registry::~device_registry() = default;

future<block_device*> device_registry::create(std::string text) {
    std::string err;
    auto uri = parse_device_uri(text, err);
    if (!uri) throw storage_error(storage_errc::invalid_argument, err);
    if (uri->scheme == "bdev") {
        if (!uri->params.empty()) {
            throw storage_error(storage_errc::invalid_argument, uri->error("bdev:/// takes no parameters"));
        }
        if (uri->path.empty() || uri->path == "/") {
            throw storage_error(storage_errc::invalid_argument, uri->error("missing device name (bdev:///NAME)"));
        }
        std::string wanted = uri->path.substr(1);
        block_device* found = nullptr;
        try {
            found = co_await find(wanted);
        } catch (const storage_error& e) {
            if (e.code != storage_errc::not_found) throw;
        }
        if (!found) {
            throw storage_error(storage_errc::not_found, uri->error(fmt::format("no device named \"{}\"", wanted)));
        }
        co_return found;
    }
    if (uri->scheme == "fault") co_return co_await create_fault(*uri);
    // The name: a name= parameter (nvmf://), the path of a uring:// file, or
    // the NAME of scheme:///NAME.
    std::string name = uri->param("name")  ? *uri->param("name")
                       : uri->scheme == "uring" ? uri->path
                                                : uri->path.substr(std::min<std::size_t>(1, uri->path.size()));
    // Reserve the name on the registry's shard, create here, then register.
    // (Lambdas inside co_await capture strings by reference: GCC 12 destroys
    // a temporary lambda's by-value captures twice when the future is ready.)
    co_await submit_to(_owner, [this, &name, &text] {
        if (name_taken(name)) {
            throw storage_error(storage_errc::already_exists,
                                fmt::format("device URI '{}': a device named \"{}\" already exists", text, name));
        }
        _creating.push_back(name);
    });
    std::unique_ptr<block_device> dev;
    std::exception_ptr failure;
    try {
        dev = co_await open_backend(*uri);
    } catch (...) {
        failure = std::current_exception();
    }
    block_device* raw = dev.get();
    co_await submit_to(_owner, [this, &name, &dev, &text] {
        _creating.erase(std::find(_creating.begin(), _creating.end(), name));
        if (dev) {
            entry e;
            e.dev = dev.get();
            e.owned = std::move(dev);
            e.uri = text;
            _devices.emplace(name, std::move(e));
        }
    });
    if (failure) std::rethrow_exception(failure);
    co_return raw;
}

future<block_device*> device_registry::create_fault(device_uri uri) {
    std::string err;
    auto spec = parse_fault_uri(uri, err);
    if (!spec) throw storage_error(storage_errc::invalid_argument, err);
    const std::string name = uri.path.substr(std::min<std::size_t>(1, uri.path.size()));
    if (name.empty()) throw storage_error(storage_errc::invalid_argument, uri.error("missing device name"));
    const std::string text = uri.text;
    const bool taken = co_await submit_to(_owner, [this, &name] {
        return name_taken(name);
    });
    if (taken) {
        throw storage_error(storage_errc::already_exists,
                            fmt::format("device URI '{}': a device named \"{}\" already exists", text, name));
    }
    block_device* inner = co_await find(spec->inner);
    // Made on the inner device's shard: its channels forward there.
    auto dev = co_await submit_to(inner->owner_shard(), [inner, &name] {
        return std::make_unique<fault_device>(name, inner);
    });
    block_device* raw = dev.get();
    std::exception_ptr failed;
    try {
        co_await dev->add_rule(spec->rule);
    } catch (...) {
        failed = std::current_exception();
    }
    if (failed) {
        co_await dev->close();
        std::rethrow_exception(failed);
    }
    co_await submit_to(_owner, [this, &name, &dev, &text] {
        entry e;
        e.dev = dev.get();
        e.owned = std::move(dev);
        e.uri = text;
        _devices.emplace(name, std::move(e));
    });
    co_return raw;
}

future<block_device*> device_registry::find(std::string name) {
    return submit_to(_owner, [this, name] {
        auto it = _devices.find(name);
        if (it == _devices.end()) {
            throw storage_error(storage_errc::not_found, fmt::format("no device named \"{}\"", name));
        }
        return it->second.dev;
    });
}

future<> device_registry::add(block_device* dev) {
    return submit_to(_owner, [this, dev] {
        if (name_taken(dev->name())) {
            throw storage_error(storage_errc::already_exists,
                                fmt::format("a device named \"{}\" already exists", dev->name()));
        }
        register_added(dev);
    });
}

bool device_registry::name_taken(const std::string& name) const {
    return _devices.count(name) > 0 || std::count(_creating.begin(), _creating.end(), name) > 0;
}

void device_registry::register_added(block_device* dev) {
    entry e;
    e.dev = dev;
    e.uri = "bdev:///" + dev->name();
    _devices.emplace(dev->name(), std::move(e));
}

future<> device_registry::reserve(std::string name) {
    return submit_to(_owner, [this, name] {
        if (name_taken(name)) {
            throw storage_error(storage_errc::already_exists,
                                fmt::format("a device named \"{}\" already exists (or is being made)", name));
        }
        _creating.push_back(name);
    });
}

future<> device_registry::release(std::string name) {
    return submit_to(_owner, [this, name] {
        if (auto it = std::find(_creating.begin(), _creating.end(), name); it != _creating.end()) _creating.erase(it);
    });
}

future<> device_registry::add_reserved(block_device* dev) {
    return submit_to(_owner, [this, dev] {
        auto it = std::find(_creating.begin(), _creating.end(), dev->name());
        if (it == _creating.end()) {
            throw storage_error(storage_errc::internal,
                                fmt::format("device \"{}\" added as reserved without a reservation", dev->name()));
        }
        _creating.erase(it);
        register_added(dev);
    });
}

future<> device_registry::remove(std::string name) {
    return submit_to(_owner, [this, name] {
        if (_devices.erase(name) == 0) {
            throw storage_error(storage_errc::not_found, fmt::format("no device named \"{}\"", name));
        }
    });
}

future<> device_registry::destroy(std::string name) {
    // Take it out of the table first, so that nobody finds it while it closes.
    std::unique_ptr<block_device> owned = co_await submit_to(_owner, [this, &name] {
        auto it = _devices.find(name);
        if (it == _devices.end()) {
            throw storage_error(storage_errc::not_found, fmt::format("no device named \"{}\"", name));
        }
        if (!it->second.owned) {
            throw storage_error(storage_errc::busy,
                                fmt::format("device \"{}\" belongs to its pool or nexus: destroy it there", name));
        }
        auto dev = std::move(it->second.owned);
        _devices.erase(it);
        return dev;
    });
    block_device* dev = owned.release();
    co_await submit_to(dev->owner_shard(), [dev]() -> future<> {
        co_await dev->close();
        delete dev;
    });
}

future<std::vector<device_info>> device_registry::list() {
    return submit_to(_owner, [this] {
        std::vector<device_info> out;
        for (const auto& [name, e] : _devices) {
            out.push_back(device_info{name, e.dev->product(), e.uri, e.dev->id(), e.dev->block_size(),
                                      e.dev->block_count(), e.dev->owner_shard()});
        }
        return out;
    });
}

future<> device_registry::close_all() {
    std::vector<std::string> names = co_await submit_to(_owner, [this] {
        std::vector<std::string> v;
        for (const auto& [name, e] : _devices)
            if (e.owned) v.push_back(name);
        return v;
    });
    for (auto& n : names) co_await destroy(n);
}

}  // namespace ioe
