// The ANA log page (0Ch): building it (the target) and parsing it (a host;
// fuzzed in tests/fuzz/ana_log_fuzz.cc). See nvme_ana.hh.
#include <cstring>
#include <string>

#include "nvme/spec/nvme_ana.hh"

namespace ioe::nvme {

std::string_view to_string(ana_state s) noexcept {
    switch (s) {
        case ana_state::optimized: return "optimized";
        case ana_state::non_optimized: return "non-optimized";
        case ana_state::inaccessible: return "inaccessible";
        case ana_state::persistent_loss: return "persistent-loss";
        case ana_state::change: return "change";
    }
    return "unknown";
}

std::optional<ana_state> ana_state_from_string(std::string_view s) noexcept {
    for (ana_state a : {ana_state::optimized, ana_state::non_optimized, ana_state::inaccessible,
                        ana_state::persistent_loss, ana_state::change}) {
        if (to_string(a) == s) return a;
    }
    return std::nullopt;
}

namespace {
bool known_state(std::uint8_t v) noexcept {
    return (v >= 0x1 && v <= 0x4) || v == 0xf;
}
}  // namespace

std::vector<std::byte> build_ana_log(const ana_log& log, bool groups_only) {
    std::size_t size = sizeof(ana_log_header);
    for (const auto& g : log.groups) size += sizeof(ana_group_descriptor) + (groups_only ? 0 : 4 * g.nsids.size());
    std::vector<std::byte> out(size, std::byte{0});
    ana_log_header h{};
    h.change_count = log.change_count;
    h.group_count = static_cast<std::uint16_t>(log.groups.size());
    std::memcpy(out.data(), &h, sizeof h);
    std::size_t at = sizeof h;
    for (const auto& g : log.groups) {
        ana_group_descriptor d{};
        d.group_id = g.group_id;
        d.nsid_count = groups_only ? 0 : static_cast<std::uint32_t>(g.nsids.size());
        d.change_count = g.change_count;
        d.state = static_cast<std::uint8_t>(g.state);
        std::memcpy(out.data() + at, &d, sizeof d);
        at += sizeof d;
        if (groups_only) continue;
        for (std::uint32_t nsid : g.nsids) {
            std::memcpy(out.data() + at, &nsid, 4);
            at += 4;
        }
    }
    return out;
}

std::optional<ana_log> parse_ana_log(std::span<const std::byte> bytes, std::string* why) {
    auto fail = [&](std::string msg) -> std::optional<ana_log> {
        if (why) *why = std::move(msg);
        return std::nullopt;
    };
    if (bytes.size() < sizeof(ana_log_header)) return fail("shorter than the 16-byte header");
    ana_log_header h;
    std::memcpy(&h, bytes.data(), sizeof h);
    ana_log log;
    log.change_count = h.change_count;
    std::size_t at = sizeof h;
    for (std::uint16_t i = 0; i < h.group_count; ++i) {
        if (bytes.size() - at < sizeof(ana_group_descriptor)) {
            return fail("group descriptor " + std::to_string(i) + " runs past the end");
        }
        ana_group_descriptor d;
        std::memcpy(&d, bytes.data() + at, sizeof d);
        at += sizeof d;
        if (d.group_id == 0) return fail("group descriptor " + std::to_string(i) + " has group id 0");
        const std::uint8_t state = d.state & 0x0f;
        if (!known_state(state)) return fail("group " + std::to_string(d.group_id) + " has an unknown state");
        if (d.nsid_count > (bytes.size() - at) / 4) {
            return fail("group " + std::to_string(d.group_id) + "'s NSID list runs past the end");
        }
        ana_group g;
        g.group_id = d.group_id;
        g.state = static_cast<ana_state>(state);
        g.change_count = d.change_count;
        g.nsids.resize(d.nsid_count);
        for (std::uint32_t k = 0; k < d.nsid_count; ++k) {
            std::memcpy(&g.nsids[k], bytes.data() + at, 4);
            at += 4;
            if (g.nsids[k] == 0 || g.nsids[k] == 0xffffffffu) {
                return fail("group " + std::to_string(d.group_id) + " lists an invalid NSID");
            }
        }
        log.groups.push_back(std::move(g));
    }
    return log;
}

}  // namespace ioe::nvme
