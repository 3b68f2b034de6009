// libFuzzer target: NVMe reservation commands as a host sends them. Each
// 24-byte record of the input is one command (host index, opcode, CDW10,
// the data's two keys) applied to one reservation_state, then the report is
// built into a buffer of a length the input chooses. Invariants checked
// after every command: at most max_registrants, registrants unique, a
// single holder is registered, and the report's REGCTL / GEN match.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "nvme/spec/nvme_reservation.hh"
#include "nvme/target/reservation_state.hh"

using namespace ioe::nvme;

namespace {
void check(bool ok) {
    if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    reservation_state st;
    std::vector<std::byte> report;
    for (std::size_t at = 0; at + 24 <= size; at += 24) {
        const std::uint8_t* p = data + at;
        host_id h{};
        h[0] = p[0] & 0x7;  // a few hosts, so they meet
        h[15] = p[0] >> 7;
        std::uint32_t cdw10;
        std::uint64_t k1, k2;
        std::memcpy(&cdw10, p + 4, 4);
        std::memcpy(&k1, p + 8, 8);
        std::memcpy(&k2, p + 16, 8);
        k1 &= 0x3;  // small keys: matches happen
        k2 &= 0x3;
        switch (p[1] & 3) {
            case 0: st.do_register(h, p[2], cdw10, k1, k2); break;
            case 1: st.acquire(h, cdw10, k1, k2); break;
            case 2: st.release(h, cdw10, k1); break;
            default: {
                report.assign((p[2] + 1u) * 4u, std::byte{0xee});
                build_reservation_report(st.view(), report);
                if (report.size() >= sizeof(resv_status_header)) {
                    resv_status_header hdr;
                    std::memcpy(&hdr, report.data(), sizeof hdr);
                    check(regctl(hdr) == st.view().count);
                    check(hdr.gen == st.view().generation);
                }
            }
        }
        const reservation_view& v = st.view();
        check(v.count <= reservation_view::max_registrants);
        for (std::uint32_t i = 0; i < v.count; ++i)
            for (std::uint32_t j = i + 1; j < v.count; ++j) check(v.regs[i].host != v.regs[j].host);
        if (v.type != rtype::none && !all_registrants_type(v.type)) check(v.registered(v.holder));
        if (v.type != rtype::none && all_registrants_type(v.type)) check(v.count > 0);
        check(v.type <= rtype::exclusive_access_all_registrants);
    }
    return 0;
}
