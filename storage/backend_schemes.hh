// Device schemes implemented above the storage layer (nvmf:// in nvme/,
// pcie:// in nvme/pcie/): the layer rule forbids storage from including them,
// so they register an opener here at start-up and open_backend() consults it
// before refusing a scheme as unknown.
//
// Registration is control-path only (before or between I/O, never on the
// I/O path); the table is process-wide and guarded by a mutex. An opener runs
// on the calling shard, which then owns the device, exactly like the built-in
// backends, and reports errors as storage_error naming the URI.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/future.hh"
#include "storage/block_device.hh"
#include "storage/uri.hh"

namespace ioe {

using backend_opener = std::function<future<std::unique_ptr<block_device>>(device_uri)>;

// Registers (or replaces) the opener for `scheme` (lower case, no "://").
void register_backend_scheme(std::string scheme, backend_opener opener);
// The opener registered for `scheme`, or an empty function.
backend_opener find_backend_scheme(const std::string& scheme);
// The registered schemes, sorted (for error messages and `node info`).
std::vector<std::string> registered_backend_schemes();

}  // namespace ioe
