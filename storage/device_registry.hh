// The devices of an engine by name: created from URIs (and then owned here),
// or added by their owners (replicas, later nexuses) so that bdev:///NAME can
// open them. The registry is owned by the shard that constructs it (shard 0
// in the daemon); its methods may be called from any shard and hop there.
// A device lives on the shard that created it; destroy() closes it there.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "storage/backends.hh"
#include "storage/block_device.hh"
#include "storage/errors.hh"
#include "storage/reservation_port.hh"

namespace ioe {

struct device_info {
    std::string name;
    std::string product;
    std::string uri;
    uuid id;
    std::uint32_t block_size = 0;
    std::uint64_t block_count = 0;
    unsigned owner_shard = 0;
};

class device_registry {
public:
    device_registry();
    ~device_registry();

    unsigned owner_shard() const noexcept { return _owner; }

    // Creates the device of `uri` on the calling shard and registers it;
    // bdev:///NAME returns the registered device NAME instead.
    future<block_device*> create(std::string uri);
    // The device called `name`; storage_error(not_found) if none.
    future<block_device*> find(std::string name);
    // Registers a device someone else owns (a replica): bdev:/// finds it.
    future<> add(block_device* dev);
    // Holds `name` for a device its caller is about to make and add with
    // add_reserved() (a snapshot being taken): create(), add() and reserve()
    // of that name are refused (already_exists) until then or release().
    // find() does not see it.
    future<> reserve(std::string name);
    future<> release(std::string name);
    future<> add_reserved(block_device* dev);
    // Unregisters `name` without closing it (its owner does that).
    future<> remove(std::string name);
    // Closes (on its shard) and frees a device created by create().
    future<> destroy(std::string name);
    future<std::vector<device_info>> list();
    // Closes and frees every owned device (engine stop).
    future<> close_all();

    // The front-end that keeps the reservations of these devices for hosts
    // that reach them (storage/reservation_port.hh); null when none does.
    // Set before devices are opened locally, cleared only when no local
    // user holds a port any more.
    void set_reservation_authority(reservation_authority* a) noexcept { _authority = a; }
    reservation_authority* reservation_authority_of_devices() const noexcept { return _authority; }

private:
    // fault:///NAME?inner=DEVICE&... (fault_uri.hh), registered as NAME.
    future<block_device*> create_fault(device_uri uri);
    // Owner shard: a device or a reservation holds `name`.
    bool name_taken(const std::string& name) const;
    // Owner shard: registers a device someone else owns as bdev:///NAME.
    void register_added(block_device* dev);
    struct entry {
        block_device* dev = nullptr;
        std::unique_ptr<block_device> owned;  // null for add()ed devices
        std::string uri;
    };
    unsigned _owner;
    std::map<std::string, entry> _devices;
    std::vector<std::string> _creating;  // names reserved while a create runs
    reservation_authority* _authority = nullptr;
};

}  // namespace ioe
