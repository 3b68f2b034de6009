// The pcie:// scheme: URI checks and the opener registered with the storage
// layer (see pcie_backend.hh).
#include "nvme/pcie/pcie_backend.hh"

#include <fmt/format.h>

#include "nvme/pcie/pcie_device.hh"
#include "nvme/pcie/vfio_bus.hh"
#include "runtime/engine.hh"
#include "storage/backend_schemes.hh"
#include "storage/errors.hh"

namespace ioe::nvme {

std::optional<pcie_uri> parse_pcie_uri(const device_uri& uri, std::string& err) {
    constexpr const char* form = "pcie:///DDDD:BB:DD.F, e.g. pcie:///0000:00:04.0";
    if (!uri.host.empty()) {
        err = uri.error(fmt::format("unexpected host '{}' (the form is {})", uri.host, form));
        return std::nullopt;
    }
    std::string path = uri.path;
    if (!path.empty() && path[0] == '/') path.erase(0, 1);
    if (path.empty()) {
        err = uri.error(fmt::format("missing PCI address ({}; `lspci -D` lists them)", form));
        return std::nullopt;
    }
    pcie_uri out;
    out.bdf = canonical_bdf(path);
    if (out.bdf.empty()) {
        err = uri.error(fmt::format("'{}' is not a PCI address (expected {}; `lspci -D` lists them)", path, form));
        return std::nullopt;
    }
    if (!check_params(uri, {"io_timeout_ms", "io_depth", "sgl"}, err)) return std::nullopt;
    auto timeout = uint_param(uri, "io_timeout_ms", out.options.io_timeout.count(), err);
    if (!timeout) return std::nullopt;
    if (*timeout < 10 || *timeout > 600000) {
        err = uri.error(fmt::format("io_timeout_ms={} is out of range (10 to 600000)", *timeout));
        return std::nullopt;
    }
    auto depth = uint_param(uri, "io_depth", out.options.io_depth, err);
    if (!depth) return std::nullopt;
    if (*depth < 2 || *depth > pcie_qpair::max_depth) {
        err = uri.error(fmt::format("io_depth={} is out of range (2 to {})", *depth, pcie_qpair::max_depth));
        return std::nullopt;
    }
    if (auto sgl = uri.param("sgl")) {
        if (*sgl == "auto") {
            out.options.sgl = sgl_mode::automatic;
        } else if (*sgl == "on") {
            out.options.sgl = sgl_mode::on;
        } else if (*sgl == "off") {
            out.options.sgl = sgl_mode::off;
        } else {
            err = uri.error(fmt::format("sgl={} is not one of auto, on, off", *sgl));
            return std::nullopt;
        }
    }
    out.options.io_timeout = std::chrono::milliseconds(*timeout);
    out.options.io_depth = static_cast<unsigned>(*depth);
    return out;
}

namespace {

future<std::unique_ptr<block_device>> open_pcie(device_uri uri) {
    std::string err;
    auto p = parse_pcie_uri(uri, err);
    if (!p) throw storage_error(storage_errc::invalid_argument, err);
    engine* e = engine::current();
    if (!e) throw storage_error(storage_errc::internal, uri.error("no running engine"));
    const std::string where = "pcie:///" + p->bdf;
    // Control path: the VFIO set-up blocks this shard for a moment, once.
    std::unique_ptr<controller_bus> bus = vfio_bus::open(p->bdf, e->dma(), where);
    std::unique_ptr<pcie_device> dev = co_await pcie_device::open(p->bdf, where, std::move(bus), p->options);
    co_return std::unique_ptr<block_device>(std::move(dev));
}

}  // namespace

void register_pcie_backend() { register_backend_scheme("pcie", open_pcie); }

}  // namespace ioe::nvme
