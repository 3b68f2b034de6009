// Fuzz target for the vhost-user-blk data path parsing: the split-ring
// walker (vhost/virtqueue.cc) and the virtio-blk request parser
// (vhost/blk_request.cc) over guest memory (vhost/guest_memory.cc) whose
// contents come from the input. A hostile guest must never make them read or
// write outside guest memory, loop, or return pieces that break the
// invariants the I/O path relies on.
//
// Input layout: byte 0 options (bits 0-2: ring size 2^n, bit 3 EVENT_IDX,
// bit 4 INDIRECT_DESC, bit 5 read-only, bit 6 4 KiB device blocks, bit 7
// FLUSH/DISCARD/WRITE_ZEROES negotiated), bytes 1-2 the first available
// index we take; the rest is guest memory from guest address 0. Guest
// memory (48 KiB, each region its own heap block so that ASan sees any
// stray access):
//   A: gpa 0x0000-0x7fff   (descriptor table at 0, avail ring after it,
//                           used ring at 0x1000)
//   B: gpa 0x8000-0x9fff   (guest-adjacent to A)
//   C: gpa 0x10000-0x13fff (after a hole)
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "vhost/blk_request.hh"
#include "vhost/guest_memory.hh"
#include "vhost/spec/virtio_ring.hh"
#include "vhost/virtqueue.hh"

using namespace ioe;
using namespace ioe::vhost;

namespace {

void require(bool ok) {
    if (!ok) std::abort();
}

struct region_spec {
    std::uint64_t gpa, size;
};
constexpr region_spec specs[] = {{0x0, 0x8000}, {0x8000, 0x2000}, {0x10000, 0x4000}};
constexpr std::uint64_t user_base = 0x7f0000000000ull;

struct guest {
    std::vector<std::unique_ptr<std::byte[]>> blocks;
    guest_memory mem;

    guest() {
        for (const auto& s : specs) {
            blocks.emplace_back(new std::byte[s.size]());
            require(mem.add(guest_region{s.gpa, s.size, user_base + s.gpa, 0, blocks.back().get()}) ==
                    memory_error::ok);
        }
    }
    // Whether [p, p + len) lies inside one region's block.
    bool inside(const std::byte* p, std::uint64_t len) const {
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            const std::byte* b = blocks[i].get();
            if (p >= b && p + len <= b + specs[i].size && len <= specs[i].size) return true;
        }
        return false;
    }
    // Copies input bytes to guest addresses from 0, skipping the hole.
    void load(const std::uint8_t* data, std::size_t size) {
        for (std::size_t i = 0; i < blocks.size() && size > 0; ++i) {
            const std::size_t n = size < specs[i].size ? size : specs[i].size;
            std::memcpy(blocks[i].get(), data, n);
            data += n;
            size -= n;
        }
    }
};

void check_chain(const guest& g, const desc_chain& c, std::size_t capacity) {
    require(c.count <= capacity && c.readable <= c.count);
    std::uint64_t readable = 0, writable = 0;
    for (std::uint32_t i = 0; i < c.count; ++i) {
        require(c.iov[i].len > 0 && g.inside(c.iov[i].data, c.iov[i].len));
        (i < c.readable ? readable : writable) += c.iov[i].len;
    }
    require(readable == c.readable_bytes && writable == c.writable_bytes);
}

void check_request(const guest& g, const desc_chain& c, const blk_params& p, const blk_request& r) {
    require(r.reason.empty() == (r.status == blk::status::ok));
    require(r.status == blk::status::ok || r.status == blk::status::ioerr || r.status == blk::status::unsupp);
    if (r.status_byte) require(g.inside(r.status_byte, 1));
    if (r.status != blk::status::ok) return;
    require(r.status_byte != nullptr);
    // Data pieces are the chain's own storage, trimmed: inside guest memory.
    std::uint64_t bytes = 0;
    for (const auto& v : r.data) {
        require(&v >= c.iov.data() && &v < c.iov.data() + c.count);
        require(v.len > 0 && g.inside(v.data, v.len));
        bytes += v.len;
    }
    require(bytes == r.data_bytes);
    const std::uint64_t per_block = p.block_size / blk::sector_bytes;
    const std::uint64_t capacity_blocks = p.capacity_sectors / per_block;
    switch (r.op) {
    case blk_op::read:
    case blk_op::write:
        require(bytes == r.blocks * p.block_size);
        require(r.lba <= capacity_blocks && r.blocks <= capacity_blocks - r.lba);
        require(!(r.op == blk_op::write && p.read_only));
        break;
    case blk_op::discard:
    case blk_op::write_zeroes:
        require(r.range_count >= 1 && r.range_count <= max_dwz_segments);
        for (std::uint32_t i = 0; i < r.range_count; ++i)
            require(r.ranges[i].lba <= capacity_blocks && r.ranges[i].blocks <= capacity_blocks - r.ranges[i].lba);
        require(!p.read_only);
        break;
    case blk_op::flush:
    case blk_op::get_id:
        break;
    case blk_op::none:
        require(false);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    const std::uint8_t opt = data[0];
    const std::uint16_t base = static_cast<std::uint16_t>(data[1] | (data[2] << 8));
    guest g;
    g.load(data + 3, size - 3);

    const queue_config cfg{1u << (opt & 7), (opt & 8) != 0, (opt & 16) != 0};
    const std::uint64_t desc = 0, avail = 16 * std::uint64_t{cfg.size}, used = 0x1000;
    split_queue q;
    require(q.setup(g.mem, cfg, ring_addresses{user_base + desc, user_base + avail, user_base + used}, base) ==
            ring_error::ok);

    blk_params p;
    p.capacity_sectors = 4096;
    p.block_size = (opt & 64) ? 4096 : 512;
    p.read_only = (opt & 32) != 0;
    if (opt & 128)
        p.features = virtio::bit(blk::feature::flush) | virtio::bit(blk::feature::discard) |
                     virtio::bit(blk::feature::write_zeroes);
    p.max_discard_sectors = p.max_write_zeroes_sectors = 1024;
    p.max_discard_seg = p.max_write_zeroes_seg = 4;

    std::array<io_vec, 32> iov;
    for (int n = 0; n < 64; ++n) {
        std::uint16_t head = 0;
        const ring_error e = q.pop(head);
        if (e == ring_error::empty) break;
        if (e != ring_error::ok) {
            require(e == ring_error::avail_index_jump || e == ring_error::head_out_of_range);
            require(!to_string(e).empty());
            break;
        }
        require(head < cfg.size);
        // A smaller array now and then, to reach too_many_segments.
        const std::size_t capacity = (n & 1) ? iov.size() : 4;
        desc_chain c;
        const ring_error w = q.walk(head, std::span<io_vec>(iov).first(capacity), c);
        require(!to_string(w).empty());
        if (w != ring_error::ok) continue;
        check_chain(g, c, capacity);
        blk_request r;
        const std::uint8_t status = parse_blk_request(c, p, r);
        require(status == r.status);
        check_request(g, c, p, r);
        if (r.status_byte) *r.status_byte = std::byte{status};
        q.put_used(head, 1);
        if (n % 3 == 0) (void)q.publish_used();
    }
    (void)q.publish_used();
    (void)q.arm_kicks();
    q.suppress_kicks();
    return 0;
}
