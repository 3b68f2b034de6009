// vhost/blk_request: virtio-blk requests walked from a model guest's ring
// (tests/unit/vhost_test_guest.hh) and parsed. Normal requests of every type,
// with the header split over descriptors, the data sharing descriptors with
// the header and the status, several data segments and an indirect table;
// and the refusals: missing status byte, short header, unknown types and
// flags, features not negotiated, read-only, data in the wrong direction,
// lengths and sectors past the capacity, overflowing or misaligned, and bad
// discard / write-zeroes segments.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <limits>
#include <vector>

#include "tests/unit/vhost_test_guest.hh"
#include "vhost/blk_request.hh"

using namespace ioe;
using namespace ioe::vhost;
using namespace ioe::vhost::test;
namespace df = ioe::vhost::virtio::desc_flags;

namespace {

constexpr std::uint16_t R = 0;
constexpr std::uint16_t W = df::write;
constexpr std::uint64_t hdr_gpa = data_gpa;           // request header
constexpr std::uint64_t buf_gpa = data_gpa + 0x1000;  // data
constexpr std::uint64_t status_gpa = data_gpa + 0x9000;

// One descriptor of a test chain.
struct part {
    std::uint64_t gpa;
    std::uint32_t len;
    std::uint16_t flags;
};

class vhost_blk_request : public ::testing::Test {
protected:
    vhost_blk_request() {
        EXPECT_EQ(g.start(), ring_error::ok);
        params.capacity_sectors = 2048;  // 1 MiB
        params.features = virtio::bit(blk::feature::flush) | virtio::bit(blk::feature::discard) |
                          virtio::bit(blk::feature::write_zeroes);
        params.max_discard_sectors = 1024;
        params.max_discard_seg = 4;
        params.max_write_zeroes_sectors = 1024;
        params.max_write_zeroes_seg = 4;
    }

    void header(std::uint32_t type, std::uint64_t sector, std::uint64_t at = hdr_gpa) {
        const blk::req_header h{type, 0, sector};
        g.write(at, &h, sizeof(h));
    }

    // Chains `parts` in descriptors 0..n-1, walks and parses them.
    std::uint8_t run(const std::vector<part>& parts) {
        for (std::size_t i = 0; i < parts.size(); ++i) {
            const bool more = i + 1 < parts.size();
            g.set_desc(static_cast<std::uint32_t>(i), parts[i].gpa, parts[i].len,
                       static_cast<std::uint16_t>(parts[i].flags | (more ? df::next : 0)),
                       static_cast<std::uint16_t>(i + 1));
        }
        g.make_available(0);
        std::uint16_t head = 0;
        EXPECT_EQ(g.queue.pop(head), ring_error::ok);
        EXPECT_EQ(g.queue.walk(head, iov, chain), ring_error::ok);
        return parse_blk_request(chain, params, req);
    }

    std::uint64_t data_total() const {
        std::uint64_t n = 0;
        for (const auto& v : req.data) n += v.len;
        return n;
    }

    test_guest g{16};
    blk_params params;
    std::array<io_vec, 16> iov;
    desc_chain chain;
    blk_request req;
};

}  // namespace

TEST_F(vhost_blk_request, read_with_two_data_segments) {
    header(blk::req_type::in, 8);
    ASSERT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 2048, W}, {buf_gpa + 0x4000, 2048, W}, {status_gpa, 1, W}}),
              blk::status::ok);
    EXPECT_EQ(req.op, blk_op::read);
    EXPECT_EQ(req.lba, 8u);
    EXPECT_EQ(req.blocks, 8u);
    ASSERT_EQ(req.data.size(), 2u);
    EXPECT_EQ(req.data[0].data, g.host(buf_gpa));
    EXPECT_EQ(req.data[1].data, g.host(buf_gpa + 0x4000));
    EXPECT_EQ(req.data_bytes, 4096u);
    EXPECT_EQ(data_total(), 4096u);
    EXPECT_EQ(req.status_byte, g.host(status_gpa));
    EXPECT_TRUE(req.reason.empty());
}

TEST_F(vhost_blk_request, header_split_over_descriptors_and_sharing_them_with_data) {
    // 5 + 3 bytes of header, then one descriptor with the last 8 header
    // bytes followed by 1024 bytes of data; the status shares the last
    // data descriptor.
    header(blk::req_type::out, 16, hdr_gpa);
    g.write(buf_gpa - 8, g.host(hdr_gpa + 8), 8);  // the header's last 8 bytes right before the data
    g.fill(buf_gpa, 1024, 0xab);
    ASSERT_EQ(run({{hdr_gpa, 5, R}, {hdr_gpa + 5, 3, R}, {buf_gpa - 8, 8 + 1024, R}, {status_gpa, 1, W}}),
              blk::status::ok);
    EXPECT_EQ(req.op, blk_op::write);
    EXPECT_EQ(req.sector, 16u);
    EXPECT_EQ(req.lba, 16u);
    EXPECT_EQ(req.blocks, 2u);
    ASSERT_EQ(req.data.size(), 1u);
    EXPECT_EQ(req.data[0].data, g.host(buf_gpa));  // trimmed in place
    EXPECT_EQ(req.data[0].len, 1024u);

    // A read whose status byte is the last byte of its only writable descriptor.
    header(blk::req_type::in, 0);
    ASSERT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 512 + 1, W}}), blk::status::ok);
    ASSERT_EQ(req.data.size(), 1u);
    EXPECT_EQ(req.data[0].len, 512u);
    EXPECT_EQ(req.status_byte, g.host(buf_gpa + 512));
}

TEST_F(vhost_blk_request, header_and_data_through_an_indirect_table_across_regions) {
    header(blk::req_type::in, 4, region_b - 10);  // the header itself crosses from A into B
    const std::uint64_t table = data_gpa + 0xa000;
    g.set_table_desc(table, 0, region_b - 10, 16, R | df::next, 1);
    g.set_table_desc(table, 1, region_c, 1536, W | df::next, 2);
    g.set_table_desc(table, 2, status_gpa, 1, W);
    g.set_desc(5, table, 3 * 16, df::indirect);
    g.make_available(5);
    std::uint16_t head = 0;
    ASSERT_EQ(g.queue.pop(head), ring_error::ok);
    ASSERT_EQ(g.queue.walk(head, iov, chain), ring_error::ok);
    EXPECT_EQ(chain.readable, 2u);  // the header in two pieces
    ASSERT_EQ(parse_blk_request(chain, params, req), blk::status::ok);
    EXPECT_EQ(req.op, blk_op::read);
    EXPECT_EQ(req.lba, 4u);
    EXPECT_EQ(req.blocks, 3u);
}

TEST_F(vhost_blk_request, flush_get_id_and_features) {
    header(blk::req_type::flush, 0);
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {status_gpa, 1, W}}), blk::status::ok);
    EXPECT_EQ(req.op, blk_op::flush);
    params.features = 0;
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {status_gpa, 1, W}}), blk::status::unsupp);
    EXPECT_EQ(req.reason, "flush not negotiated");

    header(blk::req_type::get_id, 0);
    ASSERT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, blk::id_bytes, W}, {status_gpa, 1, W}}), blk::status::ok);
    EXPECT_EQ(req.op, blk_op::get_id);
    EXPECT_EQ(req.data_bytes, blk::id_bytes);
    EXPECT_EQ(req.data[0].data, g.host(buf_gpa));
}

TEST_F(vhost_blk_request, unknown_types_are_unsupported) {
    for (std::uint32_t type : {2u, 3u, blk::req_type::get_lifetime, blk::req_type::secure_erase, 99u,
                               0x80000000u, 0x80000001u}) {
        header(type, 0);
        EXPECT_EQ(run({{hdr_gpa, 16, R}, {status_gpa, 1, W}}), blk::status::unsupp) << type;
        EXPECT_EQ(req.reason, "unsupported request type");
        EXPECT_EQ(req.status_byte, g.host(status_gpa));
    }
}

TEST_F(vhost_blk_request, no_status_byte_and_short_header) {
    header(blk::req_type::in, 0);
    EXPECT_EQ(run({{hdr_gpa, 16, R}}), blk::status::ioerr);
    EXPECT_EQ(req.status_byte, nullptr);  // nowhere to answer
    EXPECT_EQ(run({{hdr_gpa, 15, R}, {status_gpa, 1, W}}), blk::status::ioerr);
    EXPECT_EQ(req.reason, "request header shorter than 16 bytes");
    EXPECT_EQ(req.status_byte, g.host(status_gpa));
}

TEST_F(vhost_blk_request, data_in_the_wrong_direction) {
    header(blk::req_type::in, 0);
    EXPECT_EQ(run({{hdr_gpa, 16 + 512, R}, {buf_gpa, 512, W}, {status_gpa, 1, W}}), blk::status::ioerr);
    EXPECT_EQ(req.reason, "read carries device-readable data");
    header(blk::req_type::out, 0);
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 512, W}, {status_gpa, 1, W}}), blk::status::ioerr);
    EXPECT_EQ(req.reason, "write carries device-writable data");
}

TEST_F(vhost_blk_request, read_only_device_refuses_writes) {
    params.read_only = true;
    header(blk::req_type::out, 0);
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 512, R}, {status_gpa, 1, W}}), blk::status::ioerr);
    EXPECT_EQ(req.reason, "write to a read-only device");
    header(blk::req_type::write_zeroes, 0);
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 16, R}, {status_gpa, 1, W}}), blk::status::ioerr);
    header(blk::req_type::in, 0);
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 512, W}, {status_gpa, 1, W}}), blk::status::ok);
}

TEST_F(vhost_blk_request, lengths_and_sectors_out_of_range) {
    header(blk::req_type::in, 0);
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 500, W}, {status_gpa, 1, W}}), blk::status::ioerr);
    EXPECT_EQ(req.reason, "data length not a multiple of 512");
    header(blk::req_type::in, 2047);  // last sector: fine
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 512, W}, {status_gpa, 1, W}}), blk::status::ok);
    header(blk::req_type::in, 2047);  // one past
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 1024, W}, {status_gpa, 1, W}}), blk::status::ioerr);
    EXPECT_EQ(req.reason, "sector + length past the capacity");
    header(blk::req_type::out, std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(run({{hdr_gpa, 16 + 512, R}, {status_gpa, 1, W}}), blk::status::ioerr);
    EXPECT_EQ(req.reason, "sector + length overflows");
    header(blk::req_type::in, 2048);  // zero length at the end: OK, nothing to do
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {status_gpa, 1, W}}), blk::status::ok);
    EXPECT_EQ(req.blocks, 0u);

    params.block_size = 4096;
    header(blk::req_type::in, 8);
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 4096, W}, {status_gpa, 1, W}}), blk::status::ok);
    EXPECT_EQ(req.lba, 1u);
    EXPECT_EQ(req.blocks, 1u);
    header(blk::req_type::in, 4);
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 4096, W}, {status_gpa, 1, W}}), blk::status::ioerr);
    EXPECT_EQ(req.reason, "not aligned to the device block size");
    header(blk::req_type::in, 8);
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 512, W}, {status_gpa, 1, W}}), blk::status::ioerr);
}

TEST_F(vhost_blk_request, discard_segments_split_over_descriptors) {
    const blk::dwz_segment segs[2] = {{0, 8, 0}, {100, 16, 0}};
    g.write(buf_gpa, segs, sizeof(segs));
    header(blk::req_type::discard, 0);
    ASSERT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 20, R}, {buf_gpa + 20, 12, R}, {status_gpa, 1, W}}), blk::status::ok);
    EXPECT_EQ(req.op, blk_op::discard);
    ASSERT_EQ(req.range_count, 2u);
    EXPECT_EQ(req.ranges[0].lba, 0u);
    EXPECT_EQ(req.ranges[0].blocks, 8u);
    EXPECT_EQ(req.ranges[1].lba, 100u);
    EXPECT_EQ(req.ranges[1].blocks, 16u);
    EXPECT_FALSE(req.ranges[1].unmap);
}

TEST_F(vhost_blk_request, write_zeroes_with_unmap) {
    const blk::dwz_segment seg{64, 64, blk::dwz_flag_unmap};
    g.write(buf_gpa, &seg, sizeof(seg));
    header(blk::req_type::write_zeroes, 0);
    ASSERT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 16, R}, {status_gpa, 1, W}}), blk::status::ok);
    EXPECT_EQ(req.op, blk_op::write_zeroes);
    ASSERT_EQ(req.range_count, 1u);
    EXPECT_TRUE(req.ranges[0].unmap);
}

TEST_F(vhost_blk_request, bad_discard_and_write_zeroes_segments) {
    const auto one = [&](std::uint32_t type, blk::dwz_segment s) {
        g.write(buf_gpa, &s, sizeof(s));
        header(type, 0);
        return run({{hdr_gpa, 16, R}, {buf_gpa, 16, R}, {status_gpa, 1, W}});
    };
    EXPECT_EQ(one(blk::req_type::discard, {0, 8, blk::dwz_flag_unmap}), blk::status::unsupp);
    EXPECT_EQ(req.reason, "unmap flag on a discard");
    EXPECT_EQ(one(blk::req_type::write_zeroes, {0, 8, 2}), blk::status::unsupp);
    EXPECT_EQ(req.reason, "unknown segment flags");
    EXPECT_EQ(one(blk::req_type::discard, {0, 1025, 0}), blk::status::ioerr);
    EXPECT_EQ(req.reason, "segment longer than the device allows");
    EXPECT_EQ(one(blk::req_type::discard, {2040, 16, 0}), blk::status::ioerr);
    EXPECT_EQ(req.reason, "sector + length past the capacity");
    EXPECT_EQ(one(blk::req_type::write_zeroes, {~0ull - 2, 8, 0}), blk::status::ioerr);
    EXPECT_EQ(req.reason, "sector + length overflows");

    header(blk::req_type::discard, 0);
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 12, R}, {status_gpa, 1, W}}), blk::status::ioerr);
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {status_gpa, 1, W}}), blk::status::ioerr);  // no segment
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 5 * 16, R}, {status_gpa, 1, W}}), blk::status::unsupp);
    EXPECT_EQ(req.reason, "too many segments");
    EXPECT_EQ(run({{hdr_gpa, 16, R}, {buf_gpa, 16, R}, {buf_gpa + 0x100, 8, W}, {status_gpa, 1, W}}),
              blk::status::ioerr);

    params.features = 0;
    EXPECT_EQ(one(blk::req_type::discard, {0, 8, 0}), blk::status::unsupp);
    EXPECT_EQ(req.reason, "discard not negotiated");
    EXPECT_EQ(one(blk::req_type::write_zeroes, {0, 8, 0}), blk::status::unsupp);

    params.features = virtio::bit(blk::feature::discard);
    params.block_size = 4096;
    EXPECT_EQ(one(blk::req_type::discard, {4, 8, 0}), blk::status::ioerr);
    EXPECT_EQ(req.reason, "not aligned to the device block size");
}
