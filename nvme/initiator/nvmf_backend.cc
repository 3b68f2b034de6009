// The nvmf:// device scheme (see nvmf_backend.hh).
#include "nvme/initiator/nvmf_backend.hh"

#include <fmt/format.h>

#include "nvme/spec/nvme_spec.hh"
#include "storage/backend_schemes.hh"
#include "storage/errors.hh"
#include "storage/uuid.hh"

namespace ioe::nvme {
namespace {

constexpr const char* form = "nvmf://HOST[:PORT]/SUBNQN[?hostnqn=NQN&name=NAME&...]";

[[noreturn]] void refuse(const device_uri& uri, const std::string& what) {
    throw storage_error(storage_errc::invalid_argument, uri.error(what));
}

std::chrono::milliseconds ms_param(const device_uri& uri, const char* key, std::chrono::milliseconds fallback,
                                   std::uint64_t most) {
    std::string err;
    auto v = uint_param(uri, key, static_cast<std::uint64_t>(fallback.count()), err);
    if (!v) refuse(uri, err.empty() ? fmt::format("{} is not a number", key) : err);
    if (*v > most) refuse(uri, fmt::format("{} {} is too large (at most {})", key, *v, most));
    return std::chrono::milliseconds(*v);
}

bool flag_param(const device_uri& uri, const char* key) {
    auto v = uri.param(key);
    if (!v) return false;
    if (*v == "1" || *v == "true") return true;
    if (*v == "0" || *v == "false") return false;
    refuse(uri, fmt::format("{} must be 0 or 1, not '{}'", key, *v));
}

}  // namespace

const std::string& default_host_nqn() {
    static const std::string nqn = "nqn.2014-08.org.nvmexpress:uuid:" + uuid::random().to_string();
    return nqn;
}

nvmf_target_address parse_nvmf_uri(const device_uri& uri) {
    std::string err;
    if (!check_params(uri, {"hostnqn", "hostid", "name", "kato_ms", "io_timeout_ms", "reconnect_delay_ms",
                            "ctrl_loss_timeout_ms", "fast_io_fail_ms", "hdgst", "ddgst"},
                      err)) {
        throw storage_error(storage_errc::invalid_argument, err);
    }
    nvmf_target_address a;
    if (uri.host.empty()) refuse(uri, fmt::format("missing host ({})", form));
    a.host = uri.host;
    if (uri.port != 0) a.port = uri.port;
    if (uri.path.size() <= 1) refuse(uri, fmt::format("missing subsystem NQN ({})", form));
    a.subnqn = uri.path.substr(1);
    if (a.subnqn.size() > nqn_max_length || a.subnqn.compare(0, 4, "nqn.") != 0) {
        refuse(uri, fmt::format("'{}' is not an NQN (it starts with 'nqn.', at most {} bytes)", a.subnqn,
                                nqn_max_length));
    }
    a.hostnqn = uri.param("hostnqn").value_or(default_host_nqn());
    if (a.hostnqn.empty() || a.hostnqn.size() > nqn_max_length) {
        refuse(uri, fmt::format("hostnqn must be 1 to {} bytes", nqn_max_length));
    }
    if (auto hostid = uri.param("hostid")) {
        auto parsed = uuid::parse(*hostid);
        if (!parsed || parsed->is_nil()) refuse(uri, fmt::format("hostid '{}' is not a non-nil 8-4-4-4-12 uuid", *hostid));
        a.opts.host_id = parsed->bytes;
    }
    a.name = uri.param("name").value_or(a.subnqn);
    if (a.name.empty() || a.name.find('/') != std::string::npos) refuse(uri, "name must be non-empty, without '/'");
    constexpr std::uint64_t hour = 3600 * 1000;
    a.opts.kato = ms_param(uri, "kato_ms", a.opts.kato, hour);
    a.opts.io_timeout = ms_param(uri, "io_timeout_ms", a.opts.io_timeout, hour);
    a.opts.reconnect_delay = ms_param(uri, "reconnect_delay_ms", a.opts.reconnect_delay, hour);
    a.opts.ctrl_loss_timeout = ms_param(uri, "ctrl_loss_timeout_ms", a.opts.ctrl_loss_timeout, 24 * hour);
    a.opts.fast_io_fail = ms_param(uri, "fast_io_fail_ms", a.opts.fast_io_fail, hour);
    if (a.opts.io_timeout.count() == 0) refuse(uri, "io_timeout_ms must be greater than 0");
    a.opts.header_digest = flag_param(uri, "hdgst");
    a.opts.data_digest = flag_param(uri, "ddgst");
    return a;
}

void register_nvmf_backend() {
    register_backend_scheme("nvmf", [](device_uri uri) -> future<std::unique_ptr<block_device>> {
        nvmf_target_address a = parse_nvmf_uri(uri);
        std::unique_ptr<block_device> dev =
            co_await nvmf_device::connect(a.name, a.host, a.port, a.subnqn, a.hostnqn, a.opts);
        co_return dev;
    });
}

}  // namespace ioe::nvme
