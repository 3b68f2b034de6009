// Validation of a received NVMe/TCP PDU common header, before anything else
// of the PDU is read: the type is known, HLEN is the fixed length of that
// type, the flags are ones that type may carry and agree with the digests
// negotiated in ICReq / ICResp, PDO and PLEN are consistent with each other
// and with the digests, and PLEN stays within the receiver's limit.
// Pure functions over plain data: the unit tests and the fuzz target
// (tests/fuzz/nvme_tcp_header_fuzz.cc) exercise them without a socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "nvme/spec/nvme_tcp_spec.hh"

namespace ioe::nvme::tcp {

// Which rule a header broke (the first one found, checked in this order).
enum class pdu_check : std::uint8_t {
    ok,
    bad_type,   // reserved / unknown PDU-Type
    bad_flags,  // a flag the type may not carry, HDGSTF / DDGSTF disagreeing with
                // the negotiated digests, or SUCCESS without LAST_PDU
    bad_hlen,   // HLEN is not the fixed header length of the type
    bad_pdo,    // PDO set on a PDU without data, inside the header (+ digest),
                // past PLEN, or not aligned to the PDU data alignment
    bad_plen,   // PLEN too short for header and digests, or inconsistent with PDO
    too_long,   // PLEN above the receiver's limit
};

std::string_view to_string(pdu_check c);

// Byte offset within the common header of the field a failed check names
// (for the FEI of a C2HTermReq / H2CTermReq with fes::invalid_header_field).
std::uint32_t field_offset(pdu_check c);

// The fixed HLEN of a PDU type, or nullopt for a reserved type.
std::optional<std::uint8_t> expected_hlen(std::uint8_t type);

// Whether the PDU type may carry a header digest / a data digest / data.
bool type_has_header_digest(std::uint8_t type);
bool type_has_data_digest(std::uint8_t type);

// header_digest / data_digest: what ICReq / ICResp negotiated (both false
// while ICReq / ICResp themselves are exchanged). max_plen: the largest PDU
// the receiver accepts. pda: the receiver's PDU data alignment, 0's based
// in dwords (CPDA for a controller, HPDA for a host); PDO must be a multiple
// of (pda + 1) * 4.
pdu_check check_header(const pdu_common_header& h, bool header_digest, bool data_digest, std::uint32_t max_plen,
                       std::uint8_t pda = 0);

// Bytes that follow the common header up to the end of the PDU header and
// its digest (valid only after check_header() returned ok).
constexpr std::uint32_t remaining_header_bytes(const pdu_common_header& h) {
    return h.hlen - sizeof(pdu_common_header) + ((h.flags & pdu_flags::hdgstf) ? digest_bytes : 0);
}

// For H2CData / C2HData whose common header passed check_header(): DATAL
// must be exactly the data between PDO and the data digest.
pdu_check check_data_length(const pdu_common_header& h, std::uint32_t datal);

}  // namespace ioe::nvme::tcp
