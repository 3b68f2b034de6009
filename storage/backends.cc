// open_backend(): from a parsed device URI to a backend device (see
// backends.hh). Checks the parts each scheme allows (host, name, parameters)
// so that every bad URI is refused with a message naming the bad part.
#include "storage/backends.hh"

#include <fmt/format.h>

#include "storage/backend_schemes.hh"
#include "storage/errors.hh"
#include "storage/malloc_device.hh"
#include "storage/null_device.hh"
#include "storage/uring_device.hh"

namespace ioe {
namespace {

constexpr const char* known_schemes = "malloc, null, uring, bdev, nvmf, pcie";

[[noreturn]] void refuse(const device_uri& uri, const std::string& what) {
    throw storage_error(storage_errc::invalid_argument, uri.error(what));
}

void no_host(const device_uri& uri, const char* form) {
    if (!uri.host.empty() || uri.port != 0) {
        refuse(uri, fmt::format("{}:// takes no host ('{}'): use {}", uri.scheme, uri.host, form));
    }
}

// Throws invalid_argument with the helper's message when it failed.
template <typename T>
T checked(const device_uri& uri, std::optional<T> v, const std::string& err) {
    if (!v) throw storage_error(storage_errc::invalid_argument, err.empty() ? uri.error("bad parameter") : err);
    return *v;
}

struct ram_geometry {
    std::string name;
    std::uint32_t block_size;
    std::uint64_t block_count;
};

// malloc:///NAME?size_mb=N[&blk_size=512|4096] and null:/// alike.
ram_geometry ram_device_geometry(const device_uri& uri) {
    const std::string form = fmt::format("{}:///NAME?size_mb=N", uri.scheme);
    no_host(uri, form.c_str());
    std::string err;
    if (!check_params(uri, {"size_mb", "blk_size"}, err)) throw storage_error(storage_errc::invalid_argument, err);
    if (uri.path.size() <= 1) refuse(uri, fmt::format("missing device name ({})", form));
    std::string name = uri.path.substr(1);
    if (name.find('/') != std::string::npos) {
        refuse(uri, fmt::format("device name '{}' contains '/' ({})", name, form));
    }
    const std::uint64_t size_mb = checked(uri, uint_param(uri, "size_mb", std::nullopt, err), err);
    if (size_mb == 0) refuse(uri, "size_mb must be greater than 0");
    constexpr std::uint64_t max_size_mb = std::uint64_t(1) << 40;  // 1 EiB: no overflow in bytes
    if (size_mb > max_size_mb) refuse(uri, fmt::format("size_mb {} is too large (at most {})", size_mb, max_size_mb));
    const std::uint32_t block_size = checked(uri, block_size_param(uri, 512, err), err);
    return ram_geometry{std::move(name), block_size, (size_mb << 20) / block_size};
}

std::unique_ptr<block_device> open_uring(const device_uri& uri) {
    no_host(uri, "uring:///PATH (an absolute path)");
    std::string err;
    if (!check_params(uri, {"blk_size"}, err)) throw storage_error(storage_errc::invalid_argument, err);
    if (uri.path.size() <= 1) refuse(uri, "missing path (uring:///PATH, an absolute path)");
    if (uri.path.find('\0') != std::string::npos) refuse(uri, "the path contains a NUL byte (%00)");
    std::optional<std::uint32_t> blk_size;
    if (uri.param("blk_size")) blk_size = checked(uri, block_size_param(uri, 0, err), err);
    return uring_device::open(uri, blk_size);
}

std::unique_ptr<block_device> open_now(const device_uri& uri) {
    const std::string& s = uri.scheme;
    if (s == "malloc") {
        auto g = ram_device_geometry(uri);
        return std::make_unique<malloc_device>(uri, std::move(g.name), uuid::random(), g.block_size, g.block_count);
    }
    if (s == "null") {
        auto g = ram_device_geometry(uri);
        return std::make_unique<null_device>(std::move(g.name), uuid::random(), g.block_size, g.block_count);
    }
    if (s == "uring") return open_uring(uri);
    if (s == "bdev") refuse(uri, "bdev:/// names an existing device: open it through the device registry");
    if (s == "nvmf" || s == "pcie")
        refuse(uri, fmt::format("{}:// devices are not available in this program (their backend is not registered)", s));
    refuse(uri, fmt::format("unknown scheme '{}' (known: {})", s, known_schemes));
}

}  // namespace

future<std::unique_ptr<block_device>> open_backend(device_uri uri) {
    if (auto opener = find_backend_scheme(uri.scheme)) return opener(std::move(uri));
    // Everything here is synchronous control-path work; errors become a
    // failed future rather than a throw from this call.
    return futurize_invoke([&uri] { return open_now(uri); });
}

}  // namespace ioe
