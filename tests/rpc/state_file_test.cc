// The state file: round trip, odd names, refusal of truncated or damaged
// files, and the atomic save.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "rpc/node_state.hh"

namespace {

using namespace ioe::rpc;

node_state sample() {
    node_state s;
    s.pools = {{"default", "uring:///var/ioengine/default.img"}, {"p 2%", "malloc:///m?size_mb=64&blk_size=512"}};
    s.shares = {{"r1", {"nqn.2014-08.org.nvmexpress:uuid:1", "nqn.x:y"}, {}}, {"r2", {}, {}}, {"", {}, {}}};
    s.shares.pop_back();
    s.shares[1].nqn = "nqn.2026-12.io.example:volume r2";  // shared under a chosen NQN
    nexus_record n;
    n.name = "v1";
    n.uuid = "2412dcd9-8af1-480e-a539-dddb8403eefc";
    n.health_key = "/ioengine/nexus/v 1";
    n.segment_bytes = 262144;
    n.rebuild_parallel = 16;
    n.verify = true;
    n.published = true;
    n.children = {"bdev:///r1", "nvmf://10.0.0.2:4420/nqn.2019-05.io.ioengine:r2?io_timeout_ms=500&hdgst=1"};
    n.allowed_hosts = {"nqn.2014-08.org.nvmexpress:uuid:9"};
    n.nqn = "nqn.2026-12.io.example:2412dcd9-8af1-480e-a539-dddb8403eefc";  // published under a chosen NQN
    n.ana = "inaccessible";  // set by `nexus ana`
    s.nexuses.push_back(n);
    n.nqn.clear();
    n.ana.clear();
    n.name = "v2";
    n.published = false;
    n.verify = false;
    n.allowed_hosts.clear();
    n.children = {"bdev:///r3"};
    s.nexuses.push_back(n);
    s.vhost_exports = {{"vm1 disk", "/run/vm 1.sock", "r1", 2, false}, {"vm2", "/run/vm2.sock", "v1", 1, true}};
    s.standbys = {{"nqn.2026-12.io.example:vol 9", "2412dcd9-8af1-480e-a539-dddb8403eefc", 512, 131072,
                   {"nqn.2014-08.org.nvmexpress:uuid:9"}, {}},
                  {"nqn.2026-12.io.example:vol10", "2412dcd9-8af1-480e-a539-dddb8403eefd", 4096, 16, {},
                   "nvmf://10.0.0.1:4420/nqn.2026-12.io.example:vol10?fast_io_fail_ms=500"}};  // a forwarding path
    return s;
}

TEST(state_file, round_trip) {
    auto s = sample();
    std::string err;
    auto back = decode_state(encode_state(s), err);
    ASSERT_TRUE(back) << err;
    EXPECT_EQ(*back, s);
    EXPECT_NE(encode_state(s).find("pool p%202%25 "), std::string::npos);
    EXPECT_NE(encode_state(s).find("vhost vm1%20disk /run/vm%201.sock r1 2 0\n"), std::string::npos);
    EXPECT_NE(encode_state(s).find("\nnqn share r2 nqn.2026-12.io.example:volume%20r2\n"), std::string::npos);
    EXPECT_NE(encode_state(s).find("\nnqn nexus v1 nqn.2026-12.io.example:2412dcd9"), std::string::npos);
    EXPECT_NE(encode_state(s).find("\nana nexus v1 inaccessible\n"), std::string::npos);
    EXPECT_NE(encode_state(s).find("\nforward standby nqn.2026-12.io.example:vol10 nvmf://10.0.0.1:4420/"),
              std::string::npos);
    EXPECT_NE(encode_state(s).find("\nstandby nqn.2026-12.io.example:vol10 2412dcd9-8af1-480e-a539-dddb8403eefd 4096 16\n"),
              std::string::npos);
}

TEST(state_file, empty_state_round_trips) {
    std::string err;
    auto back = decode_state(encode_state({}), err);
    ASSERT_TRUE(back) << err;
    EXPECT_TRUE(back->pools.empty());
}

TEST(state_file, refuses_truncated_and_damaged_text) {
    std::string text = encode_state(sample());
    std::string err;
    for (std::size_t cut = 0; cut < text.size(); ++cut) {
        EXPECT_FALSE(decode_state(std::string_view(text).substr(0, cut), err)) << "cut at " << cut;
    }
    for (const char* bad : {"ioengine-state 2\nend\n", "ioengine-state 1\npool a\nend\n", "ioengine-state 1\nend\nend\n",
                            "ioengine-state 1\nshare\nend\n", "ioengine-state 1\npool a b%zz\nend\n",
                            "ioengine-state 1\nreplica r\nend\n", "ioengine-state 1\npool a b%2\nend\n",
                            "ioengine-state 1\nnexus v u k 0 0 0 0 0\nend\n",          // no children
                            "ioengine-state 1\nnexus v u k 0 0 0 0 2 bdev:///a\nend\n",  // one short
                            "ioengine-state 1\nnexus v u k 0 0 2 0 1 bdev:///a\nend\n",  // verify not 0/1
                            "ioengine-state 1\nnexus v u k x 0 0 0 1 bdev:///a\nend\n",  // segment not a number
                            "ioengine-state 1\nnexus v u k 0 0 0 0 9 a b c d e f g h i\nend\n",
                            "ioengine-state 1\nnexus v u k 99999999999 0 0 0 1 bdev:///a\nend\n",
                            "ioengine-state 1\nvhost x /s d 0 0\nend\n",   // no queues
                            "ioengine-state 1\nvhost x /s d 1 2\nend\n",   // read-only not 0/1
                            "ioengine-state 1\nvhost x /s d 1\nend\n",     // one field short
                            "ioengine-state 1\nvhost x % d 1 0\nend\n",   // empty socket path
                            "ioengine-state 1\nnqn share r nqn.a:b\nend\n",  // no such share before it
                            "ioengine-state 1\nshare r\nnqn share r nqn.a:b\nnqn share r nqn.a:c\nend\n",  // twice
                            "ioengine-state 1\nshare r\nnqn device r nqn.a:b\nend\n",   // unknown kind
                            "ioengine-state 1\nshare r\nnqn share r %\nend\n",          // empty NQN
                            "ioengine-state 1\nstandby nqn.a:b u 512\nend\n",            // no block count
                            "ioengine-state 1\nstandby nqn.a:b u 1000 8\nend\n",         // block size
                            "ioengine-state 1\nstandby nqn.a:b u 512 0\nend\n",          // empty volume
                            "ioengine-state 1\nstandby nqn.a:b u 512 x\nend\n",          // not a number
                            "ioengine-state 1\nstandby % u 512 8\nend\n",                // empty NQN
                            "ioengine-state 1\nforward standby nqn.a:b nvmf://x\nend\n",  // no such standby
                            "ioengine-state 1\nstandby nqn.a:b u 512 8\nforward standby nqn.a:b %\nend\n",  // empty URI
                            "ioengine-state 1\nstandby nqn.a:b u 512 8\nforward standby nqn.a:b nvmf://x\nforward standby nqn.a:b nvmf://y\nend\n",
                            "ioengine-state 1\nnexus v u k 0 0 0 1 1 bdev:///a\nana nexus v optimized\nend\n",  // the default is not written
                            "ioengine-state 1\nnexus v u k 0 0 0 1 1 bdev:///a\nana nexus v sleepy\nend\n",
                            "ioengine-state 1\nnexus v u k 0 0 0 1 1 bdev:///a\nana nexus w inaccessible\nend\n",  // no such nexus
                            "ioengine-state 1\nnexus v u k 0 0 0 0 1 bdev:///a\nana nexus v inaccessible\nend\n",  // unpublished
                            "ioengine-state 1\nnexus v u k 0 0 0 1 1 bdev:///a\nana nexus v inaccessible\nana nexus v non-optimized\nend\n",  // twice
                            "ioengine-state 1\nnexus v u k 0 0 0 0 1 bdev:///a\nnqn nexus v nqn.a:b\nend\n"}) {  // unpublished
        EXPECT_FALSE(decode_state(bad, err)) << bad;
        EXPECT_FALSE(err.empty());
    }
}

TEST(state_file, save_replaces_atomically_and_load_reads_back) {
    char t[] = "/tmp/ioe-state-XXXXXX";
    std::string dir = ::mkdtemp(t);
    std::string path = dir + "/state";
    EXPECT_FALSE(load_state_file(path));
    save_state_file(path, sample());
    auto back = load_state_file(path);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, sample());
    save_state_file(path, {});
    EXPECT_TRUE(load_state_file(path)->pools.empty());
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
    std::ofstream(path) << "ioengine-state 1\npool a";
    EXPECT_THROW(load_state_file(path), std::runtime_error);
    std::filesystem::remove_all(dir);
}

}  // namespace
