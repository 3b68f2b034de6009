// Replica snapshots, clones, restore and inflate through both control faces (RPC
// client and embedded handle): the content each volume reads back, the
// fields `replica list` reports (kind, parent, txid, accounting), a retry
// with the same txid, a clone shared over NVMe/TCP, and each refusal with
// its code (not found, already exists, invalid argument, busy).
#include <gtest/gtest.h>

#include <string>

#include "tests/rpc/block_io.hh"
#include "tests/rpc/rpc_fixture.hh"

namespace {

using namespace ioe;
using namespace ioe::rpc;
using namespace ioe::test;

const replica_entry& entry(const std::vector<replica_entry>& all, const std::string& name) {
    for (const auto& e : all) {
        if (e.replica.name == name) return e;
    }
    ADD_FAILURE() << "no volume " << name;
    static const replica_entry none;
    return none;
}

// True when every byte of `bytes` is `value` (no multi-megabyte diff on failure).
bool filled(const std::string& bytes, unsigned char value) {
    for (char c : bytes) {
        if (static_cast<unsigned char>(c) != value) return false;
    }
    return !bytes.empty();
}

TEST_P(control, replica_snapshot_clone_restore_and_their_refusals) {
    api->create_pool("p1", "malloc:///ps?size_mb=64");
    api->create_replica("p1", "r1", 8 << 20, false);
    write_blocks(*eng, "r1", 0, 16, 0x11);

    const auto s1 = api->snapshot_replica("r1", "r1-s1", "tx-1");
    EXPECT_EQ(s1.replica.name, "r1-s1");
    EXPECT_TRUE(s1.replica.snapshot);
    EXPECT_EQ(s1.replica.txid, "tx-1");
    EXPECT_GT(s1.replica.created_ns, 0u);
    // A retry with the same name and txid answers the same snapshot.
    const auto again = api->snapshot_replica("r1", "r1-s1", "tx-1");
    EXPECT_EQ(again.replica.id, s1.replica.id);
    // The same name under another txid is refused.
    EXPECT_CODE(api->snapshot_replica("r1", "r1-s1", "tx-other"), storage_errc::already_exists);
    EXPECT_CODE(api->snapshot_replica("nope", "x", ""), storage_errc::not_found);
    EXPECT_CODE(api->snapshot_replica("r1", "x", std::string(64, 't')), storage_errc::invalid_argument);
    EXPECT_CODE(api->snapshot_replica("r1", "x", "", "not-a-uuid"), storage_errc::invalid_argument);

    write_blocks(*eng, "r1", 0, 8, 0x22);  // after the snapshot: a COW write
    EXPECT_TRUE(filled(read_blocks(*eng, "r1-s1", 0, 16), 0x11)) << "r1-s1" << " at " << 0;
    EXPECT_TRUE(filled(read_blocks(*eng, "r1", 0, 8), 0x22)) << "r1" << " at " << 0;
    EXPECT_TRUE(filled(read_blocks(*eng, "r1", 8, 8), 0x11)) << "r1" << " at " << 8;

    // A clone reads the snapshot's content and writes its own.
    const auto c1 = api->clone_snapshot("r1-s1", "c1");
    EXPECT_FALSE(c1.replica.snapshot);
    EXPECT_TRUE(c1.replica.thin);
    EXPECT_EQ(c1.replica.parent, "r1-s1");
    EXPECT_TRUE(filled(read_blocks(*eng, "c1", 0, 16), 0x11)) << "c1" << " at " << 0;
    write_blocks(*eng, "c1", 4, 4, 0x33);
    EXPECT_TRUE(filled(read_blocks(*eng, "c1", 4, 4), 0x33)) << "c1" << " at " << 4;
    EXPECT_TRUE(filled(read_blocks(*eng, "r1-s1", 4, 4), 0x11)) << "r1-s1" << " at " << 4;
    EXPECT_CODE(api->clone_snapshot("r1", "c2"), storage_errc::invalid_argument);  // not a snapshot
    EXPECT_CODE(api->clone_snapshot("nope", "c2"), storage_errc::not_found);
    EXPECT_CODE(api->clone_snapshot("r1-s1", "c1"), storage_errc::already_exists);

    // The clone is shared like any replica.
    const auto share = api->share_replica("c1", {});
    EXPECT_FALSE(share.nqn.empty());

    // Accounting: the snapshot holds the thick replica's clusters; the
    // clone owns only what it wrote and reads the rest through its parent.
    const auto all = api->list_replicas("p1");
    const auto& snap = entry(all, "r1-s1");
    const auto& clone = entry(all, "c1");
    EXPECT_GE(snap.replica.allocated_bytes, 8u << 20);
    EXPECT_GT(clone.replica.allocated_bytes, 0u);
    EXPECT_LT(clone.replica.allocated_bytes, 8u << 20);
    EXPECT_GT(clone.replica.referenced_bytes, 0u);
    EXPECT_EQ(entry(all, "r1").replica.parent, "r1-s1");
    EXPECT_FALSE(entry(all, "c1").share_nqn.empty());

    // Restore: refused while shared (hosts would see the content change),
    // refused for a snapshot outside the chain; then r1 reads s1 again.
    EXPECT_CODE(api->restore_replica("c1", "r1-s1"), storage_errc::busy);
    EXPECT_CODE(api->restore_replica("r1", "c1"), storage_errc::invalid_argument);  // not in r1's chain
    EXPECT_CODE(api->restore_replica("nope", "r1-s1"), storage_errc::not_found);
    const auto restored = api->restore_replica("r1", "r1-s1");
    EXPECT_EQ(restored.replica.parent, "r1-s1");
    EXPECT_TRUE(filled(read_blocks(*eng, "r1", 0, 16), 0x11)) << "r1" << " at " << 0;
    write_blocks(*eng, "r1", 2, 2, 0x44);
    EXPECT_TRUE(filled(read_blocks(*eng, "r1", 2, 2), 0x44)) << "r1" << " at " << 2;
    EXPECT_TRUE(filled(read_blocks(*eng, "r1-s1", 2, 2), 0x11)) << "r1-s1" << " at " << 2;

    // Deleting the snapshot while it has two children (r1 and c1) marks it
    // deleted; it goes with its last-but-one child.
    api->destroy_replica("r1-s1");
    EXPECT_TRUE(entry(api->list_replicas("p1"), "r1-s1").replica.discarded);
    EXPECT_CODE(api->clone_snapshot("r1-s1", "c3"), storage_errc::not_found);
    api->unshare_replica("c1");
    api->destroy_replica("c1");
    for (const auto& e : api->list_replicas("p1")) EXPECT_NE(e.replica.name, "r1-s1");
    EXPECT_TRUE(filled(read_blocks(*eng, "r1", 0, 2), 0x11)) << "r1" << " at " << 0;
    EXPECT_TRUE(filled(read_blocks(*eng, "r1", 2, 2), 0x44)) << "r1" << " at " << 2;

    // Inflate: a clone stops depending on its snapshot, content unchanged.
    api->snapshot_replica("r1", "r1-s2");
    api->clone_snapshot("r1-s2", "c5");
    const auto inflated = api->inflate_replica("c5");
    EXPECT_EQ(inflated.replica.parent, "");
    EXPECT_TRUE(filled(read_blocks(*eng, "c5", 2, 2), 0x44));
    EXPECT_TRUE(filled(read_blocks(*eng, "c5", 0, 2), 0x11));
    EXPECT_CODE(api->inflate_replica("r1-s2"), storage_errc::invalid_argument);  // a snapshot
    EXPECT_CODE(api->inflate_replica("c5"), storage_errc::invalid_argument);     // independent already
    EXPECT_CODE(api->inflate_replica("nope"), storage_errc::not_found);
}

}  // namespace
