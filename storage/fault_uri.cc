// Parsing fault:// device URIs (see fault_uri.hh).
#include "storage/fault_uri.hh"

#include <chrono>

namespace ioe {

namespace {

std::optional<op_mask> op_of(std::string_view s) {
    if (s == "read") return op_mask::read;
    if (s == "write") return op_mask::write;
    if (s == "flush") return op_mask::flush;
    if (s == "write_zeroes") return op_mask::write_zeroes;
    if (s == "unmap") return op_mask::unmap;
    if (s == "all") return op_mask::all;
    return std::nullopt;
}

}  // namespace

std::optional<fault_uri_spec> parse_fault_uri(const device_uri& uri, std::string& err) {
    if (!check_params(uri, {"inner", "action", "ops", "delay_ms", "lba_begin", "lba_end", "skip", "count"}, err)) {
        return std::nullopt;
    }
    fault_uri_spec out;
    auto inner = uri.param("inner");
    if (!inner || inner->empty()) {
        err = uri.error("missing inner=DEVICE (the device to wrap)");
        return std::nullopt;
    }
    out.inner = *inner;
    fault_rule& r = out.rule;
    const std::string action = uri.param("action").value_or("delay");
    if (action == "delay") {
        r.action = fault_action::delay;
    } else if (action == "fail") {
        r.action = fault_action::fail;
        r.status = io_status::write_fault;
    } else if (action == "drop") {
        r.action = fault_action::drop;
    } else {
        err = uri.error("action must be fail, delay or drop, not '" + action + "'");
        return std::nullopt;
    }
    if (auto ops = uri.param("ops")) {
        r.ops = op_mask::none;
        std::string_view rest = *ops;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            const std::string_view one = rest.substr(0, comma);
            auto o = op_of(one);
            if (!o) {
                err = uri.error("unknown operation '" + std::string(one) + "' in ops");
                return std::nullopt;
            }
            r.ops = r.ops | *o;
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        }
    }
    auto delay_ms = uint_param(uri, "delay_ms", 0, err);
    auto begin = uint_param(uri, "lba_begin", 0, err);
    auto end = uint_param(uri, "lba_end", UINT64_MAX, err);
    auto skip = uint_param(uri, "skip", 0, err);
    auto count = uint_param(uri, "count", UINT64_MAX, err);
    if (!delay_ms || !begin || !end || !skip || !count) return std::nullopt;
    r.delay = std::chrono::milliseconds(*delay_ms);
    r.lba_begin = *begin;
    r.lba_end = *end;
    r.skip = *skip;
    r.count = *count;
    return out;
}

}  // namespace ioe
