// The pool's on-disk structures (docs/pool-format.md is the normative page;
// every size and offset there is pinned here by a static_assert) and their
// encoding and validating decoding. Pure functions over bytes: no I/O, so
// they are what the unit tests and the import fuzz target exercise.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "storage/uuid.hh"

namespace ioe::pool_format {

static_assert(std::endian::native == std::endian::little, "the pool format is little-endian");

inline constexpr std::uint32_t format_version = 1;
inline constexpr std::uint64_t page_bytes = 4096;
inline constexpr std::uint64_t superblock_offset[2] = {0, 4096};
inline constexpr std::uint64_t metadata_offset = 8192;
inline constexpr std::uint32_t default_cluster_size = 4u << 20;
inline constexpr std::uint32_t min_cluster_size = 1u << 20;
inline constexpr std::uint32_t default_max_replicas = 256;
inline constexpr std::uint32_t state_imported = 1;
inline constexpr std::uint32_t state_exported = 2;
inline constexpr std::uint32_t no_owner = 0;
inline constexpr std::uint32_t flag_thin = 1;

struct superblock {
    char magic[8];
    std::uint32_t version;
    std::uint32_t header_bytes;
    std::uint64_t sequence;
    std::uint8_t pool_uuid[16];
    char name[64];
    std::uint32_t cluster_size;
    std::uint32_t block_size;
    std::uint64_t device_bytes;
    std::uint64_t metadata_offset;
    std::uint64_t slot_bytes;
    std::uint64_t data_offset;
    std::uint64_t cluster_count;
    std::uint64_t max_clusters;
    std::uint32_t max_replicas;
    std::uint32_t state;
    std::uint8_t reserved[340];
    std::uint32_t crc32c;
};
static_assert(sizeof(superblock) == 512);
static_assert(offsetof(superblock, version) == 8);
static_assert(offsetof(superblock, header_bytes) == 12);
static_assert(offsetof(superblock, sequence) == 16);
static_assert(offsetof(superblock, pool_uuid) == 24);
static_assert(offsetof(superblock, name) == 40);
static_assert(offsetof(superblock, cluster_size) == 104);
static_assert(offsetof(superblock, block_size) == 108);
static_assert(offsetof(superblock, device_bytes) == 112);
static_assert(offsetof(superblock, metadata_offset) == 120);
static_assert(offsetof(superblock, slot_bytes) == 128);
static_assert(offsetof(superblock, data_offset) == 136);
static_assert(offsetof(superblock, cluster_count) == 144);
static_assert(offsetof(superblock, max_clusters) == 152);
static_assert(offsetof(superblock, max_replicas) == 160);
static_assert(offsetof(superblock, state) == 164);
static_assert(offsetof(superblock, reserved) == 168);
static_assert(offsetof(superblock, crc32c) == 508);

struct metadata_header {
    char magic[8];
    std::uint64_t sequence;
    std::uint8_t pool_uuid[16];
    std::uint32_t replica_count;
    std::uint32_t cluster_count;
    std::uint64_t payload_bytes;
    std::uint32_t version;
    std::uint32_t next_replica_id;
    std::uint32_t reserved;
    std::uint32_t crc32c;
};
static_assert(sizeof(metadata_header) == 64);
static_assert(offsetof(metadata_header, sequence) == 8);
static_assert(offsetof(metadata_header, pool_uuid) == 16);
static_assert(offsetof(metadata_header, replica_count) == 32);
static_assert(offsetof(metadata_header, cluster_count) == 36);
static_assert(offsetof(metadata_header, payload_bytes) == 40);
static_assert(offsetof(metadata_header, version) == 48);
static_assert(offsetof(metadata_header, next_replica_id) == 52);
static_assert(offsetof(metadata_header, reserved) == 56);
static_assert(offsetof(metadata_header, crc32c) == 60);

struct replica_record {
    std::uint32_t id;
    std::uint32_t flags;
    std::uint64_t size_bytes;
    std::uint8_t uuid[16];
    char name[128];
    std::uint8_t reserved[96];
};
static_assert(sizeof(replica_record) == 256);
static_assert(offsetof(replica_record, flags) == 4);
static_assert(offsetof(replica_record, size_bytes) == 8);
static_assert(offsetof(replica_record, uuid) == 16);
static_assert(offsetof(replica_record, name) == 32);
static_assert(offsetof(replica_record, reserved) == 160);

struct alloc_entry {
    std::uint32_t owner;    // replica id, no_owner = free
    std::uint32_t logical;  // the owner's logical cluster
    friend bool operator==(const alloc_entry&, const alloc_entry&) = default;
};
static_assert(sizeof(alloc_entry) == 8);
static_assert(offsetof(alloc_entry, logical) == 4);

// ---- decoded forms ----------------------------------------------------------

struct pool_geometry {
    uuid pool_uuid;
    std::string name;
    std::uint32_t cluster_size = default_cluster_size;
    std::uint32_t block_size = 512;
    std::uint64_t device_bytes = 0;
    std::uint64_t slot_bytes = 0;
    std::uint64_t data_offset = 0;
    std::uint64_t cluster_count = 0;
    std::uint64_t max_clusters = 0;
    std::uint32_t max_replicas = default_max_replicas;
    std::uint32_t state = state_imported;
    std::uint64_t sequence = 0;  // of the superblock it was read from
};

struct replica_meta {
    std::uint32_t id = 0;
    bool thin = false;
    std::uint64_t size_bytes = 0;
    uuid replica_uuid;
    std::string name;
};

struct metadata_state {
    std::uint64_t sequence = 0;
    std::uint32_t next_replica_id = 1;
    std::vector<replica_meta> replicas;
    std::vector<alloc_entry> clusters;  // one per data cluster
};

// Geometry of a new pool on a device of `device_bytes`; nullopt (and why)
// when the device is too small for metadata and one cluster.
std::optional<pool_geometry> plan(std::uint64_t device_bytes, std::uint32_t block_size, std::uint32_t cluster_size,
                                  std::string& why);
// Clusters that fit between data_offset and device_bytes.
std::uint64_t clusters_fitting(const pool_geometry& g, std::uint64_t device_bytes) noexcept;

// One 4 KiB page holding the superblock for `g` with `sequence`.
std::vector<std::byte> encode_superblock(const pool_geometry& g, std::uint64_t sequence);

enum class decode_result { ok, no_magic, bad_checksum, newer_version, corrupt };

// Decodes one superblock page. `why` says what is wrong otherwise.
decode_result decode_superblock(std::span<const std::byte> page, pool_geometry& out, std::string& why);

// Picks the newest valid of two superblock pages (a device that is too
// small to hold both passes a shorter span for the missing one).
decode_result choose_superblock(std::span<const std::byte> copy0, std::span<const std::byte> copy1,
                                pool_geometry& out, std::string& why);

// The bytes to write into a metadata slot (a multiple of 4 KiB, <= slot_bytes).
std::vector<std::byte> encode_metadata(const pool_geometry& g, const metadata_state& m);
// Bytes of the slot that hold data for `m` (rounded to 4 KiB).
std::uint64_t metadata_bytes(std::size_t replicas, std::size_t clusters) noexcept;

// Decodes and validates one slot against the geometry (uuid, bounds, owners,
// duplicates, complete thick replicas).
decode_result decode_metadata(std::span<const std::byte> slot, const pool_geometry& g, metadata_state& out,
                              std::string& why);

// Picks the newest valid of the two slots.
decode_result choose_metadata(std::span<const std::byte> slot0, std::span<const std::byte> slot1,
                              const pool_geometry& g, metadata_state& out, std::string& why);

}  // namespace ioe::pool_format
