// Fuzz target for the NVMe/TCP common header check (nvme/spec/nvme_tcp_check.cc):
// arbitrary bytes must be classified, never crash, and an accepted header
// must satisfy the invariants the receive path relies on (HLEN is the fixed
// length of the type, PLEN covers header and digests, PDO lies inside PLEN).
//
// Input layout: byte 0 holds the options (bit 0 header digest, bit 1 data
// digest, bits 2-6 the PDU data alignment), bytes 1-4 the receiver's PLEN
// limit, then the 8-byte common header; shorter inputs are zero-padded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "nvme/spec/nvme_tcp_check.hh"

namespace tcp = ioe::nvme::tcp;

namespace {

void require(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::uint8_t buf[1 + 4 + sizeof(tcp::pdu_common_header)] = {};
    std::memcpy(buf, data, size < sizeof(buf) ? size : sizeof(buf));

    const bool header_digest = buf[0] & 1;
    const bool data_digest = buf[0] & 2;
    const std::uint8_t pda = (buf[0] >> 2) & 0x1f;
    std::uint32_t max_plen = 0;
    std::memcpy(&max_plen, buf + 1, sizeof(max_plen));
    tcp::pdu_common_header h{};
    std::memcpy(&h, buf + 5, sizeof(h));

    const auto r = tcp::check_header(h, header_digest, data_digest, max_plen, pda);
    require(!tcp::to_string(r).empty());
    require(tcp::field_offset(r) < sizeof(tcp::pdu_common_header));
    if (r != tcp::pdu_check::ok) return 0;

    const auto hlen = tcp::expected_hlen(h.pdu_type);
    require(hlen && *hlen == h.hlen);
    require(h.plen <= max_plen);
    const std::uint32_t header_end = sizeof(tcp::pdu_common_header) + tcp::remaining_header_bytes(h);
    require(header_end <= tcp::max_header_bytes);
    require(h.plen >= header_end);
    require(h.pdo == 0 || (h.pdo >= h.hlen && h.pdo <= h.plen));
    if ((h.flags & tcp::pdu_flags::hdgstf) != 0) require(header_digest);
    if ((h.flags & tcp::pdu_flags::ddgstf) != 0) require(data_digest);
    // The data length derived from an accepted data PDU never underflows.
    if (h.pdo != 0 && h.pdu_type != static_cast<std::uint8_t>(tcp::pdu_type::h2c_term_req) &&
        h.pdu_type != static_cast<std::uint8_t>(tcp::pdu_type::c2h_term_req)) {
        const std::uint32_t trailer = (h.flags & tcp::pdu_flags::ddgstf) ? tcp::digest_bytes : 0;
        require(h.plen > h.pdo + trailer);
        require(tcp::check_data_length(h, h.plen - h.pdo - trailer) == tcp::pdu_check::ok);
    }
    return 0;
}
