// Offered features, configuration space and parser parameters of a
// vhost-user-blk export (see blk_features.hh).
#include "vhost/blk_features.hh"

#include "vhost/spec/vhost_user.hh"
#include "vhost/spec/virtio_ring.hh"

namespace ioe::vhost {

using virtio::bit;

std::uint64_t offered_features(bool read_only) noexcept {
    std::uint64_t f = bit(virtio::feature::version_1) | bit(virtio::feature::indirect_desc) |
                      bit(virtio::feature::event_idx) | bit(user::f_protocol_features) |
                      bit(blk::feature::size_max) | bit(blk::feature::seg_max) | bit(blk::feature::blk_size) |
                      bit(blk::feature::flush) | bit(blk::feature::mq) | bit(blk::feature::discard) |
                      bit(blk::feature::write_zeroes);
    if (read_only) f |= bit(blk::feature::ro);
    return f;
}

std::uint64_t offered_protocol_features() noexcept {
    namespace pf = user::protocol_feature;
    return bit(pf::mq) | bit(pf::reply_ack) | bit(pf::config) | bit(pf::inflight_shmfd) | bit(pf::reset_device) |
           bit(pf::configure_mem_slots);
}

blk::config make_blk_config(const blk_geometry& g) noexcept {
    blk::config c{};
    c.capacity = g.block_count * (g.block_size >> blk::sector_shift);
    c.size_max = blk_size_max;
    c.seg_max = blk_seg_max;
    c.blk_size = g.block_size;
    c.writeback = 1;
    c.num_queues = static_cast<std::uint16_t>(g.num_queues);
    c.max_discard_sectors = blk_max_dwz_sectors;
    c.max_discard_seg = max_dwz_segments;
    c.discard_sector_alignment = g.block_size >> blk::sector_shift;
    c.max_write_zeroes_sectors = blk_max_dwz_sectors;
    c.max_write_zeroes_seg = max_dwz_segments;
    c.write_zeroes_may_unmap = 1;
    return c;
}

blk_params make_blk_params(const blk_geometry& g, std::uint64_t negotiated) noexcept {
    blk_params p;
    p.capacity_sectors = g.block_count * (g.block_size >> blk::sector_shift);
    p.block_size = g.block_size;
    p.read_only = g.read_only;
    p.features = negotiated;
    p.max_discard_sectors = blk_max_dwz_sectors;
    p.max_discard_seg = max_dwz_segments;
    p.max_write_zeroes_sectors = blk_max_dwz_sectors;
    p.max_write_zeroes_seg = max_dwz_segments;
    return p;
}

}  // namespace ioe::vhost
