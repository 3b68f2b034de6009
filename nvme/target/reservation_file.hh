// Persist Through Power Loss: one namespace's reservation state as a file
// (format in docs/nvmf.md, "Reservations: the PTPL file"): a 64-byte header
// (magic "IOERESV1", version, CRC32C over the whole file with the CRC field
// zero, generation, type, PTPL, registrant count, holder) and one 32-byte
// record per registrant (HOSTID, key, CNTLID). encode/decode are pure;
// decode says what is wrong with a file instead of trusting it.
// save_reservation_file() is atomic (temporary file, fsync, rename, fsync
// of the directory) and blocking: call it off the reactors (the daemon runs
// it on the control thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "nvme/target/reservation_state.hh"

namespace ioe::nvme {

struct reservation_file_header {
    char magic[8];           // "IOERESV1"
    std::uint32_t version;   // 1
    std::uint32_t crc32c;    // over the whole file, this field zero
    std::uint32_t generation;
    std::uint8_t rtype;
    std::uint8_t ptpl;       // 1: persist (a file with 0 is ignored at load)
    std::uint16_t count;     // registrant records that follow (<= 64)
    std::uint8_t holder[16];
    std::uint8_t reserved40[24];
};
static_assert(sizeof(reservation_file_header) == 64);
static_assert(offsetof(reservation_file_header, magic) == 0);
static_assert(offsetof(reservation_file_header, version) == 8);
static_assert(offsetof(reservation_file_header, crc32c) == 12);
static_assert(offsetof(reservation_file_header, generation) == 16);
static_assert(offsetof(reservation_file_header, rtype) == 20);
static_assert(offsetof(reservation_file_header, ptpl) == 21);
static_assert(offsetof(reservation_file_header, count) == 22);
static_assert(offsetof(reservation_file_header, holder) == 24);
static_assert(offsetof(reservation_file_header, reserved40) == 40);

struct reservation_file_record {
    std::uint8_t hostid[16];
    std::uint64_t key;
    std::uint16_t cntlid;
    std::uint8_t reserved26[6];
};
static_assert(sizeof(reservation_file_record) == 32);
static_assert(offsetof(reservation_file_record, hostid) == 0);
static_assert(offsetof(reservation_file_record, key) == 16);
static_assert(offsetof(reservation_file_record, cntlid) == 24);
static_assert(offsetof(reservation_file_record, reserved26) == 26);

inline constexpr std::uint32_t reservation_file_version = 1;

std::vector<std::byte> encode_reservation_file(const reservation_view& v);
// The state (version 0) or nullopt with `err` naming the broken rule.
std::optional<reservation_view> decode_reservation_file(std::span<const std::byte> bytes, std::string& err);

// Blocking. `dir` is created if missing. Throw std::runtime_error naming
// the path and the OS error; load returns nullopt when there is no file.
void save_reservation_file(const std::string& dir, const std::string& name, std::span<const std::byte> bytes);
std::optional<std::vector<std::byte>> load_reservation_file(const std::string& dir, const std::string& name);

}  // namespace ioe::nvme
