// Opening a backend device from a parsed URI: malloc://, null://, uring://.
// (bdev:// is resolved by the device registry; nvmf:// and pcie:// come with
// their issues.) The device is created on the calling shard, which owns it.
// Errors are storage_error with a message naming the URI, the bad part and
// the OS error (e.g. "device URI 'uring:///nope': open /nope: No such file or
// directory").
#pragma once

#include <memory>

#include "runtime/future.hh"
#include "storage/block_device.hh"
#include "storage/uri.hh"

namespace ioe {

future<std::unique_ptr<block_device>> open_backend(device_uri uri);

}  // namespace ioe
