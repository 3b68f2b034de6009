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

// The newest format this engine reads and writes. Version 1 pools are read
// and written as version 1 until their first snapshot or clone (pool.hh).
inline constexpr std::uint32_t format_version = 2;
inline constexpr std::uint32_t format_version_1 = 1;
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
// Version 2: volume flags, granules and intents.
inline constexpr std::uint32_t flag_snapshot = 2;   // read-only point in time
inline constexpr std::uint32_t flag_discarded = 4;  // deleted, waits for its last clone
inline constexpr std::uint32_t granules_per_cluster = 64;
inline constexpr std::uint64_t all_granules = ~std::uint64_t(0);
inline constexpr std::uint32_t max_intents = 16;
inline constexpr std::uint32_t intent_merge = 1;
inline constexpr std::uint32_t intent_inflate = 2;
// Slot version 3 (the version 2 grammar plus subgranule records): written
// only while some granule is partly present; a pool without any stays a
// version 2 slot that older engines read.
inline constexpr std::uint32_t slot_version_subgranules = 3;
// A granule is split into 16 subgranules (4 KiB in a 4 MiB cluster): a
// write that covers whole subgranules of a granule its volume lacks is
// redirected (written in place in the volume's cluster, the subgranules'
// bits recorded) instead of copying the granule first.
inline constexpr std::uint32_t subgranules_per_granule = 16;
inline constexpr std::uint32_t subgranules_per_cluster = granules_per_cluster * subgranules_per_granule;
inline constexpr std::uint32_t subgranule_words = subgranules_per_cluster / 64;

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

// ---- version 2 ------------------------------------------------------------

struct metadata_header_v2 {
    char magic[8];  // "IOEMETA2"
    std::uint64_t sequence;
    std::uint8_t pool_uuid[16];
    std::uint32_t volume_count;
    std::uint32_t cluster_count;
    std::uint32_t intent_count;
    std::uint32_t version;
    std::uint32_t next_volume_id;
    std::uint32_t map_crc32c;  // of the cluster map
    std::uint32_t reserved;
    std::uint32_t crc32c;  // of bytes 0..59 and the payload
};
static_assert(sizeof(metadata_header_v2) == 64);
static_assert(offsetof(metadata_header_v2, sequence) == 8);
static_assert(offsetof(metadata_header_v2, pool_uuid) == 16);
static_assert(offsetof(metadata_header_v2, volume_count) == 32);
static_assert(offsetof(metadata_header_v2, cluster_count) == 36);
static_assert(offsetof(metadata_header_v2, intent_count) == 40);
static_assert(offsetof(metadata_header_v2, version) == 44);
static_assert(offsetof(metadata_header_v2, next_volume_id) == 48);
static_assert(offsetof(metadata_header_v2, map_crc32c) == 52);
static_assert(offsetof(metadata_header_v2, reserved) == 56);
static_assert(offsetof(metadata_header_v2, crc32c) == 60);

struct volume_record {
    std::uint32_t id;
    std::uint32_t flags;  // flag_thin | flag_snapshot | flag_discarded
    std::uint64_t size_bytes;
    std::uint8_t uuid[16];
    char name[128];
    std::uint32_t parent_id;  // 0 = none, else a snapshot volume
    std::uint32_t reserved0;
    std::uint64_t created_ns;  // Unix nanoseconds
    char txid[64];             // caller's transaction id
    std::uint8_t reserved1[12];
    std::uint32_t crc32c;  // of bytes 0..251
};
static_assert(sizeof(volume_record) == 256);
static_assert(offsetof(volume_record, flags) == 4);
static_assert(offsetof(volume_record, size_bytes) == 8);
static_assert(offsetof(volume_record, uuid) == 16);
static_assert(offsetof(volume_record, name) == 32);
static_assert(offsetof(volume_record, parent_id) == 160);
static_assert(offsetof(volume_record, reserved0) == 164);
static_assert(offsetof(volume_record, created_ns) == 168);
static_assert(offsetof(volume_record, txid) == 176);
static_assert(offsetof(volume_record, reserved1) == 240);
static_assert(offsetof(volume_record, crc32c) == 252);

struct cluster_entry {
    std::uint32_t owner;
    std::uint32_t logical;
    std::uint64_t granules;  // bit g: granule g present here
};
static_assert(sizeof(cluster_entry) == 16);
static_assert(offsetof(cluster_entry, logical) == 4);
static_assert(offsetof(cluster_entry, granules) == 8);

struct intent_record {
    std::uint32_t kind;  // intent_merge | intent_inflate
    std::uint32_t volume_id;
    std::uint32_t other_id;
    std::uint32_t progress;  // logical clusters done
    std::uint64_t started_ns;
    std::uint8_t reserved[32];
    std::uint32_t reserved2;
    std::uint32_t crc32c;  // of bytes 0..59
};
static_assert(sizeof(intent_record) == 64);
static_assert(offsetof(intent_record, volume_id) == 4);
static_assert(offsetof(intent_record, other_id) == 8);
static_assert(offsetof(intent_record, progress) == 12);
static_assert(offsetof(intent_record, started_ns) == 16);
static_assert(offsetof(intent_record, reserved) == 24);
static_assert(offsetof(intent_record, reserved2) == 56);
static_assert(offsetof(intent_record, crc32c) == 60);

// Version 3 slot: one per cluster that holds subgranules of granules whose
// granule bit is clear (bit b of the 1024: subgranule b % 16 of granule
// b / 16).
struct subgranule_record {
    std::uint32_t cluster;
    std::uint32_t reserved;
    std::uint64_t bits[subgranule_words];
    std::uint32_t reserved2;
    std::uint32_t crc32c;  // of bytes 0..139
};
static_assert(sizeof(subgranule_record) == 144);
static_assert(offsetof(subgranule_record, reserved) == 4);
static_assert(offsetof(subgranule_record, bits) == 8);
static_assert(offsetof(subgranule_record, reserved2) == 136);
static_assert(offsetof(subgranule_record, crc32c) == 140);

// A delta page (4 KiB, slot version 2 and 3): written into the unused tail
// of the slot that holds the newest image, after the image, to record
// redirected writes without rewriting the slot (docs/pool-format.md,
// "Delta pages"). Import applies the valid pages that follow an image in
// index order and stops at the first that is not.
inline constexpr char delta_magic[8] = {'I', 'O', 'E', 'D', 'E', 'L', 'T', '1'};
struct delta_header {
    char magic[8];               // "IOEDELT1"
    std::uint64_t base_sequence; // the sequence of the image it follows
    std::uint8_t pool_uuid[16];
    std::uint32_t index;         // 1, 2, ... after the image
    std::uint32_t count;         // entries that follow
    std::uint8_t reserved[20];
    std::uint32_t crc32c;        // of bytes 0..59 and the entries
};
static_assert(sizeof(delta_header) == 64);
static_assert(offsetof(delta_header, base_sequence) == 8);
static_assert(offsetof(delta_header, pool_uuid) == 16);
static_assert(offsetof(delta_header, index) == 32);
static_assert(offsetof(delta_header, count) == 36);
static_assert(offsetof(delta_header, reserved) == 40);
static_assert(offsetof(delta_header, crc32c) == 60);

// One redirected write: cluster (free before, or the owner's for logical)
// owned by owner for logical, subgranules [first, first + count) present.
struct delta_entry {
    std::uint32_t cluster;
    std::uint32_t owner;
    std::uint32_t logical;
    std::uint16_t first;
    std::uint16_t count;
    friend bool operator==(const delta_entry&, const delta_entry&) = default;
};
static_assert(sizeof(delta_entry) == 16);
static_assert(offsetof(delta_entry, owner) == 4);
static_assert(offsetof(delta_entry, logical) == 8);
static_assert(offsetof(delta_entry, first) == 12);
static_assert(offsetof(delta_entry, count) == 14);
inline constexpr std::size_t max_delta_entries = (page_bytes - sizeof(delta_header)) / sizeof(delta_entry);

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
    std::uint32_t version = format_version_1;
};

struct replica_meta {
    replica_meta() = default;
    replica_meta(std::uint32_t id_, bool thin_, std::uint64_t size, uuid u, std::string name_)
        : id(id_), thin(thin_), size_bytes(size), replica_uuid(u), name(std::move(name_)) {}
    std::uint32_t id = 0;
    bool thin = false;
    std::uint64_t size_bytes = 0;
    uuid replica_uuid;
    std::string name;
    // Version 2 (defaults for version 1 replicas).
    std::uint32_t parent_id = 0;  // a snapshot volume, 0 = none
    bool snapshot = false;        // read-only
    bool discarded = false;
    std::uint64_t created_ns = 0;
    std::string txid;
};

struct intent_meta {
    std::uint32_t kind = 0;
    std::uint32_t volume_id = 0;
    std::uint32_t other_id = 0;
    std::uint32_t progress = 0;
    std::uint64_t started_ns = 0;
    friend bool operator==(const intent_meta&, const intent_meta&) = default;
};

// The subgranules present in one physical cluster outside its whole
// granules (never a bit of a granule whose granule bit is set; never empty).
struct subgranule_set {
    std::uint32_t cluster = 0;
    std::uint64_t bits[subgranule_words] = {};
    bool empty() const noexcept {
        for (std::uint64_t w : bits) if (w) return false;
        return true;
    }
    friend bool operator==(const subgranule_set&, const subgranule_set&) = default;
};

// The 16 subgranule bits of granule g, as a 16-bit value.
inline std::uint32_t granule_subgranules(const std::uint64_t (&bits)[subgranule_words], unsigned g) noexcept {
    return static_cast<std::uint32_t>(bits[g / 4] >> (g % 4 * 16)) & 0xffffu;
}

struct metadata_state {
    std::uint64_t sequence = 0;
    std::uint32_t next_replica_id = 1;
    std::vector<replica_meta> replicas;
    std::vector<alloc_entry> clusters;  // one per data cluster
    // Per data cluster, the granules present in it (version 1: all ones
    // for an owned cluster); 0 for a free one. Same length as clusters.
    std::vector<std::uint64_t> granules;
    std::vector<intent_meta> intents;  // version 2 only
    // Partly present granules, sorted by cluster (slot version 3).
    std::vector<subgranule_set> subgranules;
    std::uint32_t version = format_version_1;  // of the slot it was read from / will be written as
};

// Geometry of a new pool on a device of `device_bytes`; nullopt (and why)
// when the device is too small for metadata and one cluster.
std::optional<pool_geometry> plan(std::uint64_t device_bytes, std::uint32_t block_size, std::uint32_t cluster_size,
                                  std::string& why);
// Clusters that fit between data_offset and device_bytes (for a version 2
// pool also in its slot).
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

// The bytes to write into a metadata slot (a multiple of 4 KiB, <= slot_bytes),
// in the slot format of m.version.
std::vector<std::byte> encode_metadata(const pool_geometry& g, const metadata_state& m);
std::vector<std::byte> encode_metadata_v2(const pool_geometry& g, const metadata_state& m);
// Bytes of a version 2 slot for these counts (rounded to 4 KiB).
std::uint64_t metadata_bytes_v2(std::size_t volumes, std::size_t clusters, std::size_t intents) noexcept;
// The most clusters a version 2 slot of this geometry holds (max_replicas
// volumes and max_intents intents included).
std::uint64_t max_clusters_v2(const pool_geometry& g) noexcept;
// Subgranule records the slot has room for beside `clusters` entries (the
// most volumes and intents counted, so control operations always fit).
std::uint64_t subgranule_capacity(const pool_geometry& g, std::uint64_t clusters) noexcept;
// Subgranule size of the geometry's clusters.
inline std::uint64_t subgranule_bytes(const pool_geometry& g) noexcept {
    return g.cluster_size / subgranules_per_cluster;
}
// Granule size of the geometry's clusters.
inline std::uint64_t granule_bytes(const pool_geometry& g) noexcept { return g.cluster_size / granules_per_cluster; }
// Bytes of the slot that hold data for `m` (rounded to 4 KiB).
std::uint64_t metadata_bytes(std::size_t replicas, std::size_t clusters) noexcept;

// Decodes and validates one slot (version 1 or 2, by its magic) against the
// geometry (uuid, bounds, owners, duplicates, complete thick replicas; for
// version 2 also record CRCs, parents, cycles and granule bitmaps).
decode_result decode_metadata(std::span<const std::byte> slot, const pool_geometry& g, metadata_state& out,
                              std::string& why);

decode_result decode_metadata_v2(std::span<const std::byte> slot, const pool_geometry& g, metadata_state& out,
                                 std::string& why);

// One delta page (at most max_delta_entries entries) following the image
// of sequence base_sequence.
std::vector<std::byte> encode_delta(const pool_geometry& g, std::uint64_t base_sequence, std::uint32_t index,
                                    std::span<const delta_entry> entries);
// The same into `page` (resized to one page; no allocation once it has).
void encode_delta(const pool_geometry& g, std::uint64_t base_sequence, std::uint32_t index,
                  std::span<const delta_entry> entries, std::vector<std::byte>& page);
// Applies to m (decoded from an image of image_bytes at the start of slot)
// the valid delta pages that follow it; corrupt when a valid page's entry
// contradicts the state (`why` says which).
decode_result apply_deltas(std::span<const std::byte> slot, std::uint64_t image_bytes, const pool_geometry& g,
                           metadata_state& m, std::string& why);
// Marks subgranules [first, first + count) present in cluster c of m (a
// granule whose 16 subgranules are all present becomes whole); returns the
// cluster's granule bits.
std::uint64_t add_subgranules(metadata_state& m, std::uint32_t c, unsigned first, unsigned count);

// Picks the newest valid of the two slots.
decode_result choose_metadata(std::span<const std::byte> slot0, std::span<const std::byte> slot1,
                              const pool_geometry& g, metadata_state& out, std::string& why);

}  // namespace ioe::pool_format
