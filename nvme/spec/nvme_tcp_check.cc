// Rules for the NVMe/TCP common header (see nvme_tcp_check.hh). The per-type
// table follows the NVMe/TCP transport specification: fixed HLEN, allowed
// flags, whether the type carries a header digest and PDU data.
#include "nvme/spec/nvme_tcp_check.hh"

#include <cstddef>

namespace ioe::nvme::tcp {

namespace {

struct type_rule {
    std::uint8_t hlen;
    std::uint8_t allowed_flags;
    bool header_digest;  // HDGSTF applies once header digests are negotiated
    bool data;           // may carry PDU data (and then a data digest)
    bool data_required;  // must carry PDU data (H2CData, C2HData)
    bool term_req;       // TermReq: carries the offending header as data, no digests
};

constexpr std::uint8_t hd = pdu_flags::hdgstf;
constexpr std::uint8_t dd = pdu_flags::ddgstf;

std::optional<type_rule> rule_for(std::uint8_t type) {
    switch (static_cast<pdu_type>(type)) {
    case pdu_type::ic_req:
    case pdu_type::ic_resp:
        return type_rule{128, 0, false, false, false, false};
    case pdu_type::h2c_term_req:
    case pdu_type::c2h_term_req:
        return type_rule{24, 0, false, false, false, true};
    case pdu_type::capsule_cmd:
        return type_rule{72, hd | dd, true, true, false, false};
    case pdu_type::capsule_resp:
        return type_rule{24, hd, true, false, false, false};
    case pdu_type::h2c_data:
        return type_rule{24, hd | dd | pdu_flags::last_pdu, true, true, true, false};
    case pdu_type::c2h_data:
        return type_rule{24, hd | dd | pdu_flags::last_pdu | pdu_flags::success, true, true, true, false};
    case pdu_type::r2t:
        return type_rule{24, hd, true, false, false, false};
    }
    return std::nullopt;
}

}  // namespace

std::string_view to_string(pdu_check c) {
    switch (c) {
    case pdu_check::ok: return "ok";
    case pdu_check::bad_type: return "unknown PDU type";
    case pdu_check::bad_flags: return "invalid PDU flags";
    case pdu_check::bad_hlen: return "invalid header length (HLEN)";
    case pdu_check::bad_pdo: return "invalid PDU data offset (PDO)";
    case pdu_check::bad_plen: return "invalid PDU length (PLEN)";
    case pdu_check::too_long: return "PDU length (PLEN) above the limit";
    }
    return "unknown";
}

std::uint32_t field_offset(pdu_check c) {
    switch (c) {
    case pdu_check::ok:
    case pdu_check::bad_type: return offsetof(pdu_common_header, pdu_type);
    case pdu_check::bad_flags: return offsetof(pdu_common_header, flags);
    case pdu_check::bad_hlen: return offsetof(pdu_common_header, hlen);
    case pdu_check::bad_pdo: return offsetof(pdu_common_header, pdo);
    case pdu_check::bad_plen:
    case pdu_check::too_long: return offsetof(pdu_common_header, plen);
    }
    return 0;
}

std::optional<std::uint8_t> expected_hlen(std::uint8_t type) {
    auto r = rule_for(type);
    if (!r) return std::nullopt;
    return r->hlen;
}

bool type_has_header_digest(std::uint8_t type) {
    auto r = rule_for(type);
    return r && r->header_digest;
}

bool type_has_data_digest(std::uint8_t type) {
    auto r = rule_for(type);
    return r && r->data;
}

pdu_check check_header(const pdu_common_header& h, bool header_digest, bool data_digest, std::uint32_t max_plen,
                       std::uint8_t pda) {
    auto rule = rule_for(h.pdu_type);
    if (!rule) return pdu_check::bad_type;

    // Flags: only the ones of the type; the header digest flag exactly when
    // negotiated and the type has one.
    if ((h.flags & ~rule->allowed_flags) != 0) return pdu_check::bad_flags;
    const bool hdgst = rule->header_digest && header_digest;
    if (((h.flags & pdu_flags::hdgstf) != 0) != hdgst) return pdu_check::bad_flags;
    if ((h.flags & pdu_flags::success) && !(h.flags & pdu_flags::last_pdu)) return pdu_check::bad_flags;

    if (h.hlen != rule->hlen) return pdu_check::bad_hlen;

    // 64-bit arithmetic: plen is attacker-controlled and may be near 2^32.
    const std::uint64_t plen = h.plen;
    const std::uint64_t header_end = std::uint64_t{h.hlen} + (hdgst ? digest_bytes : 0);

    if (rule->term_req) {
        // The data (the offending PDU header) follows the 24-byte header
        // directly; PDO is not used (0, or tolerated when equal to HLEN).
        if (h.pdo != 0 && h.pdo != h.hlen) return pdu_check::bad_pdo;
        if (plen < header_end || plen > term_req_max_plen) return pdu_check::bad_plen;
        if (plen > max_plen) return pdu_check::too_long;
        return pdu_check::ok;
    }

    if (!rule->data) {
        // ICReq, ICResp, CapsuleResp, R2T: no data, so no PDO and no DDGSTF
        // (the flag was excluded above), and PLEN is exactly the header.
        if (h.pdo != 0) return pdu_check::bad_pdo;
        if (plen != header_end) return pdu_check::bad_plen;
        if (plen > max_plen) return pdu_check::too_long;
        return pdu_check::ok;
    }

    // CapsuleCmd (data optional), H2CData / C2HData (data required).
    const bool has_data = rule->data_required || plen > header_end || h.pdo != 0;
    if (!has_data) {
        if (h.flags & pdu_flags::ddgstf) return pdu_check::bad_flags;
        if (plen != header_end) return pdu_check::bad_plen;
        if (plen > max_plen) return pdu_check::too_long;
        return pdu_check::ok;
    }
    if (((h.flags & pdu_flags::ddgstf) != 0) != data_digest) return pdu_check::bad_flags;
    const std::uint32_t alignment = (std::uint32_t{pda} + 1) * 4;
    if (h.pdo < header_end || h.pdo % alignment != 0) return pdu_check::bad_pdo;
    const std::uint64_t data_start = h.pdo;
    const std::uint64_t trailer = data_digest ? digest_bytes : 0;
    // At least one byte of data between PDO and the data digest.
    if (plen < data_start + 1 + trailer) return pdu_check::bad_plen;
    if (plen > max_plen) return pdu_check::too_long;
    return pdu_check::ok;
}

pdu_check check_data_length(const pdu_common_header& h, std::uint32_t datal) {
    const std::uint64_t trailer = (h.flags & pdu_flags::ddgstf) ? digest_bytes : 0;
    const std::uint64_t expected = std::uint64_t{h.plen} - h.pdo - trailer;
    if (std::uint64_t{h.plen} < h.pdo + trailer || expected != datal) return pdu_check::bad_plen;
    return pdu_check::ok;
}

}  // namespace ioe::nvme::tcp
