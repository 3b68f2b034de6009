// The user-space NVMe PCIe driver against the in-process controller model:
// bring-up (and its failures), every command with the bytes checked on the
// model's media, MDTS splits and PRP lists, queue wrap-around with more
// commands than slots, error statuses, per-command timeout -> Abort, a stuck
// command -> controller reset, CSTS.CFS -> reset with in-flight I/O failed,
// I/O from a second shard on its own queue, orderly shutdown.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "nvme/pcie/pcie_backend.hh"
#include "runtime/smp.hh"
#include "storage/backend_schemes.hh"
#include "storage/errors.hh"
#include "tests/pcie/pcie_test_util.hh"

using namespace ioe;
using namespace ioe::nvme;
using ioe::test::model_rig;

namespace {

using namespace std::chrono_literals;

dma_buffer buffer(engine* e, std::size_t n) {
    auto b = e->dma().allocate(n);
    EXPECT_TRUE(b);
    return std::move(b.value());
}

TEST(PcieDevice, BringUpIdentifiesAndCreatesOneQueuePerShard) {
    int rc = test::run_engine(test::small_config(2), [](engine* e) -> future<int> {
        model_rig rig(e);
        auto dev = co_await rig.open(e);
        EXPECT_EQ(dev->product(), "pcie");
        EXPECT_EQ(dev->block_size(), 512u);
        EXPECT_EQ(dev->block_count(), 16384u);
        auto& c = dev->controller();
        EXPECT_EQ(c.state(), controller_state::live);
        EXPECT_EQ(c.io_queues(), e->shards());
        EXPECT_EQ(rig.model->live_io_queues(), e->shards());
        EXPECT_EQ(c.info().model_number, "ioengine NVMe controller model");
        EXPECT_EQ(c.info().serial_number, "MODEL0001");
        EXPECT_EQ(c.info().max_transfer, 128u << 10);  // MDTS 5
        EXPECT_TRUE(c.info().write_zeroes);
        EXPECT_TRUE(c.info().deallocate);
        EXPECT_EQ(dev->id().bytes[0], 0xa0);  // the UUID descriptor
        EXPECT_EQ(rig.model->stats().enables, 1u);
        co_await dev->close();
        EXPECT_EQ(c.state(), controller_state::shut_down);
        EXPECT_EQ(rig.model->stats().shutdowns, 1u);
        EXPECT_EQ(rig.model->live_io_queues(), 0u);  // deleted before the shutdown
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, ControllerThatNeverGetsReadyFailsTheOpenWithAReason) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_config cfg;
        cfg.timeout_500ms = 1;
        model_rig rig(e, cfg);
        rig.model->never_ready(true);
        std::string msg;
        try {
            auto dev = co_await rig.open(e);
        } catch (const storage_error& err) {
            msg = err.what();
        }
        EXPECT_NE(msg.find("pcie:///model"), std::string::npos) << msg;
        EXPECT_NE(msg.find("CSTS.RDY did not become 1"), std::string::npos) << msg;
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, WriteReadRoundTripLandsOnTheMedia) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        pcie_options prp_only;  // PRP lists here; SGLs in pcie_sgl_test.cc
        prp_only.sgl = sgl_mode::off;
        auto dev = co_await rig.open(e, prp_only);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 64 << 10), r = buffer(e, 64 << 10);
        test::fill(w.data(), w.size(), 3);
        io_vec wv = to_io_vec(w);
        EXPECT_EQ(co_await ch->write(100, 128, io_vecs(&wv, 1)), io_status::success);
        EXPECT_EQ(std::memcmp(rig.model->media() + 100 * 512, w.data(), w.size()), 0);
        io_vec rv = to_io_vec(r);
        EXPECT_EQ(co_await ch->read(100, 128, io_vecs(&rv, 1)), io_status::success);
        EXPECT_EQ(std::memcmp(r.data(), w.data(), w.size()), 0);
        EXPECT_EQ(rig.model->stats().list_prps, 2u);  // 16 pages each: PRP lists
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, TransfersAboveMdtsAreSplit) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_config cfg;
        cfg.mdts = 1;  // 8 KiB per command
        model_rig rig(e, cfg);
        auto dev = co_await rig.open(e);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 256 << 10), r = buffer(e, 256 << 10);
        test::fill(w.data(), w.size(), 9);
        io_vec wv = to_io_vec(w), rv = to_io_vec(r);
        EXPECT_EQ(co_await ch->write(8, 512, io_vecs(&wv, 1)), io_status::success);
        EXPECT_EQ(rig.model->stats().writes, 32u);
        EXPECT_EQ(co_await ch->read(8, 512, io_vecs(&rv, 1)), io_status::success);
        EXPECT_EQ(rig.model->stats().reads, 32u);
        EXPECT_EQ(std::memcmp(r.data(), w.data(), w.size()), 0);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, ScatteredBuffersAtPageOffsetsReadBackTheSame) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        pcie_options prp_only;
        prp_only.sgl = sgl_mode::off;
        auto dev = co_await rig.open(e, prp_only);
        io_channel* ch = dev->channel();
        auto a = buffer(e, 64 << 10), b = buffer(e, 64 << 10), r = buffer(e, 64 << 10);
        test::fill(a.data(), a.size(), 1);
        test::fill(b.data(), b.size(), 2);
        // 3.5 KiB ending mid-page, then 8 KiB from a page start, then 512 B:
        // three commands, one of them with a PRP list.
        io_vec v[3] = {to_io_vec(a, 512, 3584), to_io_vec(b, 0, 8192), to_io_vec(a, 8192, 512)};
        EXPECT_EQ(co_await ch->write(1000, 24, io_vecs(v, 3)), io_status::success);
        io_vec rv = to_io_vec(r, 0, 12288);
        EXPECT_EQ(co_await ch->read(1000, 24, io_vecs(&rv, 1)), io_status::success);
        EXPECT_EQ(std::memcmp(r.data(), a.data() + 512, 3584), 0);
        EXPECT_EQ(std::memcmp(r.data() + 3584, b.data(), 8192), 0);
        EXPECT_EQ(std::memcmp(r.data() + 3584 + 8192, a.data() + 8192, 512), 0);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, FlushWriteZeroesAndUnmap) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        auto dev = co_await rig.open(e);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 64 << 10);
        test::fill(w.data(), w.size(), 5);
        io_vec wv = to_io_vec(w);
        EXPECT_EQ(co_await ch->write(0, 128, io_vecs(&wv, 1)), io_status::success);
        EXPECT_EQ(co_await ch->write(200, 128, io_vecs(&wv, 1)), io_status::success);
        EXPECT_EQ(co_await ch->flush(), io_status::success);
        EXPECT_EQ(rig.model->stats().flushes, 1u);  // the model has a volatile write cache
        EXPECT_EQ(co_await ch->write_zeroes(10, 20), io_status::success);
        EXPECT_TRUE(test::all_zero(rig.model->media() + 10 * 512, 20 * 512));
        EXPECT_FALSE(test::all_zero(rig.model->media() + 9 * 512, 512));
        EXPECT_FALSE(test::all_zero(rig.model->media() + 30 * 512, 512));
        EXPECT_EQ(co_await ch->unmap(200, 64), io_status::success);
        EXPECT_EQ(rig.model->stats().dsm, 1u);
        EXPECT_TRUE(test::all_zero(rig.model->media() + 200 * 512, 64 * 512));
        EXPECT_FALSE(test::all_zero(rig.model->media() + 264 * 512, 512));
        // A large write zeroes is split at 65536 blocks per command.
        EXPECT_EQ(co_await ch->write_zeroes(0, 16384), io_status::success);
        EXPECT_TRUE(test::all_zero(rig.model->media(), rig.model->media_bytes()));
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, ControllerErrorStatusesReachTheCaller) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        auto dev = co_await rig.open(e);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 4096);
        io_vec wv = to_io_vec(w);
        rig.model->fail_next(nvm_opcode::write, sct::media_error, sc_media::write_fault);
        EXPECT_EQ(co_await ch->write(0, 8, io_vecs(&wv, 1)), io_status::write_fault);
        rig.model->fail_next(nvm_opcode::read, sct::media_error, sc_media::unrecovered_read_error);
        EXPECT_EQ(co_await ch->read(0, 8, io_vecs(&wv, 1)), io_status::unrecovered_read_error);
        EXPECT_EQ(co_await ch->write(0, 8, io_vecs(&wv, 1)), io_status::success);  // one-shot
        // Memory outside the DMA pool never reaches the controller.
        std::vector<std::byte> heap(4096);
        io_vec hv{heap.data(), 4096, -1};
        EXPECT_EQ(co_await ch->write(0, 8, io_vecs(&hv, 1)), io_status::data_transfer_error);
        EXPECT_EQ(dev->controller().state(), controller_state::live);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

// More commands in flight than the queue has slots, and many more than its
// entries over time: the rings wrap (phase flips) and nobody is lost.
future<io_status> write_then_read(io_channel* ch, std::uint64_t lba, std::byte* w, std::byte* r) {
    io_vec wv{w, 4096, -1};
    io_status s = co_await ch->write(lba, 8, io_vecs(&wv, 1));
    if (!ok(s)) co_return s;
    io_vec rv{r, 4096, -1};
    co_return co_await ch->read(lba, 8, io_vecs(&rv, 1));
}

TEST(PcieDevice, QueueWrapsAroundWithMoreCommandsThanSlots) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        pcie_options opts;
        opts.io_depth = 4;  // 3 slots
        auto dev = co_await rig.open(e, opts);
        EXPECT_EQ(dev->controller().io_depth(), 4u);
        io_channel* ch = dev->channel();
        constexpr unsigned n = 40;
        auto w = buffer(e, n * 4096), r = buffer(e, n * 4096);
        for (unsigned round = 0; round < 5; ++round) {
            test::fill(w.data(), w.size(), static_cast<std::uint8_t>(round));
            std::memset(r.data(), 0xee, r.size());
            std::vector<future<io_status>> fs;
            for (unsigned i = 0; i < n; ++i) {
                fs.push_back(write_then_read(ch, i * 8, w.data() + i * 4096, r.data() + i * 4096));
            }
            for (auto& f : fs) EXPECT_EQ(co_await std::move(f), io_status::success);
            EXPECT_EQ(std::memcmp(r.data(), w.data(), w.size()), 0) << "round " << round;
        }
        EXPECT_EQ(rig.model->stats().writes, 5u * n);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, CommandsSubmittedTogetherShareOneDoorbellWrite) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        auto dev = co_await rig.open(e);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 8 * 4096);
        test::fill(w.data(), w.size(), 8);
        io_vec v[8];
        const auto before = rig.model->stats();
        std::vector<future<io_status>> fs;
        for (int i = 0; i < 8; ++i) {
            v[i] = to_io_vec(w, i * 4096, 4096);
            fs.push_back(ch->write(i * 8, 8, io_vecs(&v[i], 1)));  // no poll in between
        }
        for (auto& f : fs) EXPECT_EQ(co_await std::move(f), io_status::success);
        const auto after = rig.model->stats();
        EXPECT_EQ(after.writes - before.writes, 8u);
        EXPECT_EQ(after.sq_doorbells - before.sq_doorbells, 1u);
        EXPECT_EQ(after.cq_doorbells - before.cq_doorbells, 1u);
        EXPECT_EQ(std::memcmp(rig.model->media(), w.data(), w.size()), 0);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, TimedOutCommandIsAborted) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        pcie_options opts;
        opts.io_timeout = 40ms;
        auto dev = co_await rig.open(e, opts);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 4096);
        io_vec wv = to_io_vec(w);
        rig.model->stall_io(true);
        const auto t0 = steady_clock::now();
        EXPECT_EQ(co_await ch->write(0, 8, io_vecs(&wv, 1)), io_status::aborted);
        EXPECT_GE(steady_clock::now() - t0, 40ms);
        EXPECT_EQ(rig.model->stats().aborted, 1u);
        EXPECT_EQ(dev->controller().counters().aborts_sent, 1u);
        EXPECT_EQ(dev->controller().counters().resets, 0u);
        rig.model->stall_io(false);
        EXPECT_EQ(co_await ch->write(0, 8, io_vecs(&wv, 1)), io_status::success);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, CommandStuckPastAbortResetsTheControllerAndIoResumes) {
    int rc = test::run_engine(test::small_config(2), [](engine* e) -> future<int> {
        model_rig rig(e);
        pcie_options opts;
        opts.io_timeout = 40ms;
        auto dev = co_await rig.open(e, opts);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 16384);
        test::fill(w.data(), w.size(), 7);
        io_vec wv = to_io_vec(w);
        rig.model->stall_io(true);
        rig.model->ignore_aborts(true);
        std::vector<future<io_status>> fs;
        for (int i = 0; i < 4; ++i) fs.push_back(ch->write(i * 32, 32, io_vecs(&wv, 1)));
        for (auto& f : fs) EXPECT_EQ(co_await std::move(f), io_status::aborted);  // failed, not lost
        auto& c = dev->controller();
        while (c.state() == controller_state::resetting) co_await sleep(1ms);
        EXPECT_EQ(c.state(), controller_state::live);
        EXPECT_EQ(c.counters().resets, 1u);
        EXPECT_EQ(rig.model->stats().resets, 1u);
        EXPECT_EQ(rig.model->stats().enables, 2u);
        EXPECT_EQ(rig.model->stats().doorbells_while_disabled, 0u);
        EXPECT_EQ(rig.model->live_io_queues(), e->shards());
        rig.model->stall_io(false);
        rig.model->ignore_aborts(false);
        EXPECT_EQ(co_await ch->write(0, 32, io_vecs(&wv, 1)), io_status::success);
        EXPECT_EQ(std::memcmp(rig.model->media(), w.data(), w.size()), 0);
        // The other shard's queue was re-created too.
        io_status other = co_await submit_to(1, [d = dev.get(), p = w.data()]() -> future<io_status> {
            io_vec v{p, 4096, -1};
            co_return co_await d->channel()->read(0, 8, io_vecs(&v, 1));
        });
        EXPECT_EQ(other, io_status::success);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, ResetRightAfterSubmissionFailsOrCompletesEveryCommand) {
    int rc = test::run_engine(test::small_config(2), [](engine* e) -> future<int> {
        model_rig rig(e);
        auto dev = co_await rig.open(e);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 8 * 4096);
        test::fill(w.data(), w.size(), 6);
        io_vec v[8];
        std::vector<future<io_status>> fs;
        for (int i = 0; i < 8; ++i) {
            v[i] = to_io_vec(w, i * 4096, 4096);
            fs.push_back(ch->write(i * 8, 8, io_vecs(&v[i], 1)));  // SQEs written, doorbell not yet
        }
        co_await dev->controller().reset("test");
        unsigned aborted = 0;
        for (auto& f : fs) {
            io_status st = co_await std::move(f);
            EXPECT_TRUE(st == io_status::success || st == io_status::aborted) << to_string(st);
            aborted += st == io_status::aborted;
        }
        EXPECT_EQ(aborted, 8u);  // never sent: the reset came first
        EXPECT_EQ(rig.model->stats().doorbells_while_disabled, 0u);
        EXPECT_EQ(dev->controller().state(), controller_state::live);
        for (int i = 0; i < 8; ++i) EXPECT_EQ(co_await ch->write(i * 8, 8, io_vecs(&v[i], 1)), io_status::success);
        EXPECT_EQ(std::memcmp(rig.model->media(), w.data(), w.size()), 0);
        co_await dev->close();
        EXPECT_EQ(rig.model->stats().doorbells_while_disabled, 0u);
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, IoIssuedDuringAResetWaitsForItAndSucceeds) {
    int rc = test::run_engine(test::small_config(2), [](engine* e) -> future<int> {
        model_rig rig(e);
        auto dev = co_await rig.open(e);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 4096);
        test::fill(w.data(), w.size(), 13);
        io_vec wv = to_io_vec(w);
        auto reset = dev->controller().reset("test");  // runs until it first waits: queues suspended
        EXPECT_EQ(dev->controller().state(), controller_state::resetting);
        auto f = ch->write(40, 8, io_vecs(&wv, 1));
        co_await std::move(reset);
        EXPECT_EQ(co_await std::move(f), io_status::success);
        EXPECT_EQ(std::memcmp(rig.model->media() + 40 * 512, w.data(), 4096), 0);
        EXPECT_EQ(rig.model->stats().resets, 1u);
        EXPECT_EQ(rig.model->stats().doorbells_while_disabled, 0u);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, FatalStatusResetsAndFailsInFlightIo) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        pcie_options opts;
        opts.health_interval = 5ms;
        auto dev = co_await rig.open(e, opts);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 4096);
        io_vec wv = to_io_vec(w);
        rig.model->stall_io(true);
        auto f = ch->write(0, 8, io_vecs(&wv, 1));
        co_await sleep(2ms);
        rig.model->set_fatal();
        EXPECT_EQ(co_await std::move(f), io_status::aborted);
        auto& c = dev->controller();
        while (c.state() == controller_state::resetting) co_await sleep(1ms);
        EXPECT_EQ(c.counters().fatal_status, 1u);
        EXPECT_EQ(c.counters().resets, 1u);
        EXPECT_EQ(c.state(), controller_state::live);
        rig.model->stall_io(false);
        EXPECT_EQ(co_await ch->write(0, 8, io_vecs(&wv, 1)), io_status::success);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, SurpriseRemovalFailsInFlightAndLaterIo) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        pcie_options opts;
        opts.health_interval = 5ms;
        auto dev = co_await rig.open(e, opts);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 4096);
        io_vec wv = to_io_vec(w);
        rig.model->stall_io(true);
        auto f = ch->write(0, 8, io_vecs(&wv, 1));
        co_await sleep(2ms);
        rig.model->remove();
        EXPECT_EQ(co_await std::move(f), io_status::namespace_not_ready);
        EXPECT_EQ(dev->controller().state(), controller_state::failed);
        EXPECT_EQ(co_await ch->write(0, 8, io_vecs(&wv, 1)), io_status::namespace_not_ready);
        EXPECT_EQ(dev->controller().counters().resets, 0u);  // nothing to reset
        co_await dev->close();  // still closes cleanly
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, SecondShardUsesItsOwnQueue) {
    IOE_NEED_CORES(2);
    int rc = test::run_engine(test::small_config(2), [](engine* e) -> future<int> {
        model_rig rig(e);
        auto dev = co_await rig.open(e);
        auto w = buffer(e, 8192);
        test::fill(w.data(), w.size(), 4);
        io_status st = co_await submit_to(1, [d = dev.get(), p = w.data()]() -> future<io_status> {
            io_vec v{p, 8192, -1};
            co_return co_await d->channel()->write(50, 16, io_vecs(&v, 1));
        });
        EXPECT_EQ(st, io_status::success);
        EXPECT_EQ(std::memcmp(rig.model->media() + 50 * 512, w.data(), 8192), 0);
        EXPECT_GT(dev->controller().io_qpair(1).doorbells(), 0u);
        EXPECT_EQ(dev->controller().io_qpair(0).doorbells(), 0u);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieDevice, ShardsBeyondTheGrantedQueuesSendTheirIoToAnotherShard) {
    IOE_NEED_CORES(2);
    int rc = test::run_engine(test::small_config(2), [](engine* e) -> future<int> {
        model_config cfg;
        cfg.max_io_queues = 1;
        model_rig rig(e, cfg);
        auto dev = co_await rig.open(e);
        EXPECT_EQ(dev->controller().io_queues(), 1u);
        auto w = buffer(e, 8192), r = buffer(e, 8192);
        test::fill(w.data(), w.size(), 12);
        io_status st = co_await submit_to(1, [d = dev.get(), p = w.data(), q = r.data()]() -> future<io_status> {
            io_vec v{p, 8192, -1};
            io_status s = co_await d->channel()->write(70, 16, io_vecs(&v, 1));
            if (!ok(s)) co_return s;
            io_vec rv{q, 8192, -1};
            co_return co_await d->channel()->read(70, 16, io_vecs(&rv, 1));
        });
        EXPECT_EQ(st, io_status::success);
        EXPECT_EQ(std::memcmp(r.data(), w.data(), 8192), 0);
        EXPECT_EQ(std::memcmp(rig.model->media() + 70 * 512, w.data(), 8192), 0);
        EXPECT_GT(dev->controller().io_qpair(0).doorbells(), 0u);  // shard 0's queue carried it
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieUri, ErrorsNameTheBadPart) {
    auto check = [](const std::string& text, const std::string& want) {
        std::string err;
        auto uri = parse_device_uri(text, err);
        ASSERT_TRUE(uri) << err;
        auto p = parse_pcie_uri(*uri, err);
        EXPECT_FALSE(p) << text;
        EXPECT_NE(err.find(want), std::string::npos) << err;
        EXPECT_NE(err.find(text), std::string::npos) << err;
    };
    check("pcie:///", "missing PCI address");
    check("pcie:///00:04", "'00:04' is not a PCI address");
    check("pcie:///0000:00:04.9", "not a PCI address");
    check("pcie:///0000:00:04.0?depth=3", "depth");
    check("pcie:///0000:00:04.0?io_depth=1", "io_depth=1 is out of range");
    check("pcie:///0000:00:04.0?io_timeout_ms=abc", "io_timeout_ms");

    std::string err;
    auto uri = parse_device_uri("pcie:///00:04.0?io_depth=64&io_timeout_ms=500", err);
    ASSERT_TRUE(uri);
    auto p = parse_pcie_uri(*uri, err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(p->bdf, "0000:00:04.0");
    EXPECT_EQ(p->options.io_depth, 64u);
    EXPECT_EQ(p->options.io_timeout, 500ms);
}

TEST(PcieUri, OpeningAMissingDeviceSaysWhatToDo) {
    register_pcie_backend();
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        std::string err;
        auto uri = parse_device_uri("pcie:///0000:7f:1f.7", err);
        std::string msg;
        try {
            auto dev = co_await find_backend_scheme("pcie")(*uri);
        } catch (const storage_error& e) {
            msg = e.what();
        }
        EXPECT_NE(msg.find("no PCI device 0000:7f:1f.7"), std::string::npos) << msg;
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

}  // namespace
