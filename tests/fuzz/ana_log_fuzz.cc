// Fuzz target for the ANA log page parser (nvme/spec/ana_log.cc,
// docs/ana.md): arbitrary bytes are accepted or refused, never crash; an
// accepted log has valid group ids, states and NSIDs, and building it again
// gives back the bytes it was parsed from (up to the end of its last group).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "nvme/spec/nvme_ana.hh"

namespace nv = ioe::nvme;

namespace {

void require(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size);
    const auto log = nv::parse_ana_log(bytes);
    if (!log) return 0;
    for (const auto& g : log->groups) {
        require(g.group_id != 0);
        require(nv::ana_serves_io(g.state) || g.state == nv::ana_state::inaccessible ||
                g.state == nv::ana_state::persistent_loss || g.state == nv::ana_state::change);
        for (auto nsid : g.nsids) require(nsid != 0 && nsid != 0xffffffffu);
    }
    const auto again = nv::build_ana_log(*log, false);
    require(again.size() <= size);
    // Reserved bytes and the state's upper nibble are not kept: compare the
    // fields that are.
    const auto back = nv::parse_ana_log(again);
    require(back.has_value());
    require(back->change_count == log->change_count && back->groups.size() == log->groups.size());
    for (std::size_t i = 0; i < log->groups.size(); ++i) {
        require(back->groups[i].group_id == log->groups[i].group_id);
        require(back->groups[i].state == log->groups[i].state);
        require(back->groups[i].nsids == log->groups[i].nsids);
    }
    return 0;
}
