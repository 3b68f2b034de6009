// What a vhost-user-blk export offers: the virtio feature bits, the
// vhost-user protocol feature bits, the virtio-blk configuration space
// built from a block device, and the request parser's parameters from what
// the driver negotiated. Plain functions over plain data (no socket, no
// shard), so the connection and the tests share one definition.
//
// Offered virtio bits: VERSION_1, INDIRECT_DESC, EVENT_IDX, SIZE_MAX,
// SEG_MAX, BLK_SIZE, FLUSH, MQ, DISCARD, WRITE_ZEROES, RO (read-only
// exports only) and VHOST_USER_F_PROTOCOL_FEATURES. Not offered:
// CONFIG_WCE (the cache mode is fixed: write-back, FLUSH makes writes
// durable), TOPOLOGY, GEOMETRY, packed rings, dirty logging.
// Protocol bits: MQ, REPLY_ACK, CONFIG, INFLIGHT_SHMFD, RESET_DEVICE,
// CONFIGURE_MEM_SLOTS.
#pragma once

#include <cstdint>

#include "vhost/blk_request.hh"
#include "vhost/spec/virtio_blk.hh"

namespace ioe::vhost {

// Request limits of the data path: seg_max is the data segments one
// request may carry (Linux puts one descriptor per segment plus header and
// status), size_max the bytes of one segment. seg_max stays below the
// io_vecs a device channel takes in one read or write (uring: 64), with
// room for a buffer split where two guest regions meet.
inline constexpr std::uint32_t blk_seg_max = 60;
inline constexpr std::uint32_t blk_size_max = 1u << 20;
// Per DISCARD / WRITE_ZEROES segment: 1 GiB in 512-byte sectors.
inline constexpr std::uint32_t blk_max_dwz_sectors = 1u << 21;

std::uint64_t offered_features(bool read_only) noexcept;
std::uint64_t offered_protocol_features() noexcept;

struct blk_geometry {
    std::uint64_t block_count = 0;
    std::uint32_t block_size = 512;
    unsigned num_queues = 1;
    bool read_only = false;
};

// The configuration space (docs/vhost.md section 4).
blk::config make_blk_config(const blk_geometry& g) noexcept;

// The request parser's view once the driver set its features.
blk_params make_blk_params(const blk_geometry& g, std::uint64_t negotiated) noexcept;

}  // namespace ioe::vhost
