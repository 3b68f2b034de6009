// The block stamp and the acknowledgement log of blockstamp (stamp.hh):
// round trips, and every kind of bad block or log is told apart.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tests/cluster/stamp.hh"

using namespace ioe::blockstamp;

TEST(stamp, round_trip_and_damage) {
    for (std::uint32_t bs : {512u, 4096u}) {
        std::vector<std::byte> b(bs);
        fill_block(b.data(), bs, 77, 5, 0xabcdef);
        auto c = check_block(b.data(), bs, 77);
        EXPECT_EQ(c.kind, block_kind::stamped) << c.why;
        EXPECT_EQ(c.generation, 5u);
        // Another address: not this block's stamp.
        EXPECT_EQ(check_block(b.data(), bs, 78).kind, block_kind::corrupt);
        // One flipped byte anywhere.
        for (std::size_t at : {std::size_t{9}, std::size_t{17}, std::size_t{40}, std::size_t{bs - 1}}) {
            auto d = b;
            d[at] ^= std::byte{1};
            EXPECT_EQ(check_block(d.data(), bs, 77).kind, block_kind::corrupt) << at;
        }
        // A torn write: the first half of generation 6, the rest of 5.
        std::vector<std::byte> n(bs);
        fill_block(n.data(), bs, 77, 6, 0x1234);
        std::memcpy(n.data() + bs / 2, b.data() + bs / 2, bs / 2);
        EXPECT_EQ(check_block(n.data(), bs, 77).kind, block_kind::corrupt);
        std::vector<std::byte> z(bs);
        EXPECT_EQ(check_block(z.data(), bs, 77).kind, block_kind::zero);
        z[100] = std::byte{1};
        EXPECT_EQ(check_block(z.data(), bs, 77).kind, block_kind::corrupt);
    }
}

TEST(stamp, log_round_trip_and_refusals) {
    ack_log l;
    l.block_size = 4096;
    l.block_count = 10;
    l.blocks.assign(10, {});
    l.blocks[0] = {3, 4};
    l.blocks[9] = {0, 1};
    std::string err;
    auto back = decode_log(encode_log(l), err);
    ASSERT_TRUE(back) << err;
    EXPECT_EQ(back->block_count, 10u);
    EXPECT_EQ(back->blocks[0].acked, 3u);
    EXPECT_EQ(back->blocks[0].issued, 4u);
    EXPECT_EQ(back->blocks[9].issued, 1u);
    EXPECT_EQ(back->blocks[5].issued, 0u);
    for (const char* bad : {"", "blockstamp-log 1 4096 10\n", "blockstamp-log 2 4096 10\nend\n",
                            "blockstamp-log 1 4096 10\n10 1 1\nend\n", "blockstamp-log 1 4096 10\n1 2 1\nend\n",
                            "blockstamp-log 1 4096 10\n2 1 1\n1 1 1\nend\n", "blockstamp-log 1 4096 10\nend\nx\n",
                            "blockstamp-log 1 4096 10\n1 1\nend\n", "blockstamp-log 1 4096 10\n1 1 1 \nend\n",
                            "blockstamp-log 1 4096 0\nend\n", "blockstamp-log 1 4096 10\nend"}) {
        EXPECT_FALSE(decode_log(bad, err)) << bad;
    }
}
