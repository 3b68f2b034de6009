// Asymmetric Namespace Access in the NVMe/TCP target (docs/ana.md), seen by
// a raw host: Identify reports CMIC, ANACAP, ANAGRPID and NGUID; the ANA log
// (0Ch) lists one group per namespace with and without Return Groups Only;
// a state change answers a held Asynchronous Event Request with an ANA
// Change notice, masked until the log is read; I/O on an inaccessible path
// gets the path status without DNR; a standby's namespace replaced by the
// device that serves it (same identity only); controller ID ranges; and the
// log's builder and parser on their own.
#include "nvme/spec/nvme_ana.hh"
#include "storage/errors.hh"
#include "storage/standby_device.hh"
#include "tests/unit/nvmf_test_host.hh"

using namespace ioe;
using namespace ioe::nvme;
using namespace ioe::nvme::test_host;
using namespace std::chrono_literals;

namespace {

std::uint16_t send_aer(host& h) {
    sqe a = make_sqe(h, admin_opcode::async_event_request);
    h.held_cids.push_back(a.cid);
    h.send_capsule(a, {});
    return a.cid;
}

void enable_ana_events(host& h) {
    sqe aec = make_sqe(h, admin_opcode::set_features);
    aec.cdw10 = feature::async_event_configuration;
    aec.cdw11 = aec_ana_change_notices;
    EXPECT_OK(h.exec(aec));
}

// Get Log Page 0Ch, 4 KiB; `rgo`: Return Groups Only; `rae`: retain the event.
ana_log read_ana_log(host& h, bool rgo = false, bool rae = false) {
    sqe s = make_sqe(h, admin_opcode::get_log_page);
    s.cdw10 = log_page_id::ana | (rgo ? get_log_ana_rgo : 0u) | (rae ? (1u << 15) : 0u) | (1023u << 16);
    sgl_transport(s, 4096);
    cmd_result r = h.exec(s);
    EXPECT_OK(r);
    std::string why;
    auto log = parse_ana_log(r.data, &why);
    EXPECT_TRUE(log.has_value()) << why;
    return log.value_or(ana_log{});
}

cmd_result read_one(host& h, std::uint64_t lba) {
    sqe r = rw(h, nvm_opcode::read, lba, 1);
    sgl_transport(r, k_block);
    return h.exec(r);
}

cmd_result write_one(host& h, std::uint64_t lba, std::span<const std::byte> data) {
    sqe w = rw(h, nvm_opcode::write, lba, 1);
    sgl_in_capsule(w, k_block);
    return h.exec(w, data);
}

bool dnr(const cqe& c) { return (c.status & status_bits::dnr) != 0; }

}  // namespace

TEST(nvmf_ana, identify_reports_ana_and_one_group_per_namespace) {
    with_target([](std::uint16_t port, target_control&) {
        session s = open_admin(port);
        cmd_result idc = do_identify(*s.admin, cns::controller);
        ASSERT_TRUE(is_ok(idc));
        identify_controller c{};
        std::memcpy(&c, idc.data.data(), sizeof c);
        EXPECT_EQ(c.cmic, cmic_multi_port | cmic_multi_controller | cmic_ana_reporting);
        EXPECT_TRUE(c.oaes & oaes_ana_change_notices);
        EXPECT_EQ(c.anacap & 0x0f, 0x0f) << "optimized, non-optimized, inaccessible, persistent loss";
        EXPECT_TRUE(c.anacap & anacap_grpid_static);
        EXPECT_EQ(c.anagrpmax, 1024u);
        EXPECT_EQ(c.nanagrpid, 1024u);
        EXPECT_EQ(c.mnan, 1024u);
        EXPECT_GT(c.anatt, 0);
        cmd_result idn = do_identify(*s.admin, cns::namespace_data, 1);
        ASSERT_TRUE(is_ok(idn));
        identify_namespace ns{};
        std::memcpy(&ns, idn.data.data(), sizeof ns);
        EXPECT_EQ(ns.anagrpid, 1u);
        EXPECT_EQ(ns.nmic & nmic_shared, nmic_shared);
        bool nguid_set = false;
        for (auto b : ns.nguid) nguid_set |= b != 0;
        EXPECT_TRUE(nguid_set) << "NGUID carries the volume's UUID";

        ana_log log = read_ana_log(*s.admin);
        ASSERT_EQ(log.groups.size(), 1u);
        EXPECT_EQ(log.groups[0].group_id, 1u);
        EXPECT_EQ(log.groups[0].state, ana_state::optimized);
        EXPECT_EQ(log.groups[0].nsids, (std::vector<std::uint32_t>{1}));
        ana_log groups_only = read_ana_log(*s.admin, true);
        ASSERT_EQ(groups_only.groups.size(), 1u);
        EXPECT_TRUE(groups_only.groups[0].nsids.empty()) << "Return Groups Only: no NSID list";
    });
}

TEST(nvmf_ana, state_change_sends_the_event_and_inaccessible_refuses_io_without_dnr) {
    with_target([](std::uint16_t port, target_control& ctl) {
        session s = open_admin(port);
        open_io(s, port);
        enable_ana_events(*s.admin);
        auto data = pattern(k_block, 5);
        EXPECT_OK(write_one(*s.io, 7, data));
        const std::uint64_t before = read_ana_log(*s.admin).change_count;

        const std::uint16_t aer = send_aer(*s.admin);
        ctl.run([](nvmf_target& t, device_registry&) -> future<> {
            co_await t.set_ana_state(k_subnqn, 1, ana_state::inaccessible);
        });
        cqe ev = s.admin->wait_held(aer);
        EXPECT_TRUE(status_ok(ev.status));
        EXPECT_EQ(ev.dw0, aen_ana_change);
        ana_log log = read_ana_log(*s.admin);
        ASSERT_EQ(log.groups.size(), 1u);
        EXPECT_EQ(log.groups[0].state, ana_state::inaccessible);
        EXPECT_GT(log.change_count, before);

        for (cmd_result r : {read_one(*s.io, 7), write_one(*s.io, 7, pattern(k_block, 6))}) {
            EXPECT_EQ(sct_of(r.cq), sct::path);
            EXPECT_EQ(sc_of(r.cq), sc_path::ana_inaccessible);
            EXPECT_FALSE(dnr(r.cq)) << "a path status: the host retries on another path";
        }

        // The log was read: the next change is reported again.
        const std::uint16_t aer2 = send_aer(*s.admin);
        ctl.run([](nvmf_target& t, device_registry&) -> future<> {
            co_await t.set_ana_state(k_subnqn, 1, ana_state::non_optimized);
        });
        ev = s.admin->wait_held(aer2);
        EXPECT_EQ(ev.dw0, aen_ana_change);
        EXPECT_EQ(read_ana_log(*s.admin).groups.at(0).state, ana_state::non_optimized);
        cmd_result back = read_one(*s.io, 7);
        EXPECT_OK(back);
        EXPECT_TRUE(back.data == data) << "the write refused while inaccessible did not land";

        auto missing = [&](std::uint32_t nsid) {
            try {
                ctl.run([nsid](nvmf_target& t, device_registry&) -> future<> {
                    co_await t.set_ana_state(k_subnqn, nsid, ana_state::optimized);
                });
            } catch (const storage_error& e) {
                return e.code == storage_errc::not_found;
            }
            return false;
        };
        EXPECT_TRUE(missing(2)) << "no namespace 2";
        check_alive(s, 9, 4);
    });
}

TEST(nvmf_ana, a_device_that_loses_its_path_moves_the_change_count_and_sends_the_event) {
    // A nexus fenced by a newer incarnation says so through its device
    // (path_inaccessible); here a fault_device plays it. With no I/O from
    // the host, the admin queue's keep-alive watch notices within a second.
    target_options opts;
    opts.fault_namespace = true;
    with_target(opts, [](std::uint16_t port, target_control& ctl) {
        session s = open_admin(port);
        open_io(s, port);
        enable_ana_events(*s.admin);
        const ana_log before = read_ana_log(*s.admin);
        ASSERT_EQ(before.groups.size(), 1u);
        EXPECT_EQ(before.groups[0].state, ana_state::optimized);

        const std::uint16_t aer = send_aer(*s.admin);
        ctl.faults->set_path_lost(true);
        cqe ev = s.admin->wait_held(aer);
        EXPECT_TRUE(status_ok(ev.status));
        EXPECT_EQ(ev.dw0, aen_ana_change);
        const ana_log after = read_ana_log(*s.admin);
        ASSERT_EQ(after.groups.size(), 1u);
        EXPECT_EQ(after.groups[0].state, ana_state::inaccessible);
        EXPECT_EQ(after.change_count, before.change_count + 1) << "counted once, not once per look";
        EXPECT_EQ(after.groups[0].change_count, after.change_count);

        // I/O on the lost path does not count it again.
        (void)read_one(*s.io, 1);
        EXPECT_EQ(read_ana_log(*s.admin).change_count, after.change_count);

        // The path comes back (a forwarding path whose far side answers
        // again): counted once more, with the event.
        const std::uint16_t again = send_aer(*s.admin);
        ctl.faults->set_path_lost(false);
        ev = s.admin->wait_held(again);
        EXPECT_TRUE(status_ok(ev.status));
        EXPECT_EQ(ev.dw0, aen_ana_change);
        const ana_log back = read_ana_log(*s.admin);
        ASSERT_EQ(back.groups.size(), 1u);
        EXPECT_EQ(back.groups[0].state, ana_state::optimized);
        EXPECT_EQ(back.change_count, after.change_count + 1);
        check_alive(s, 9, 4);
    });
}

TEST(nvmf_ana, standby_namespace_is_replaced_by_the_device_with_its_identity) {
    with_target([](std::uint16_t port, target_control& ctl) {
        session s = open_admin(port);
        open_io(s, port);
        auto data = pattern(k_block, 9);
        EXPECT_OK(write_one(*s.io, 3, data));

        // A stand-in with the namespace's identity takes its place: the log
        // says inaccessible (the device says its path is gone) and I/O gets
        // the path status from the device itself.
        std::unique_ptr<standby_device> standby;
        block_device* original = nullptr;
        ctl.run([&](nvmf_target& t, device_registry& d) -> future<> {
            original = co_await d.find("ns1");
            standby = std::make_unique<standby_device>("standby-ns1", original->id(), original->block_size(),
                                                       original->block_count());
            co_await t.replace_namespace(k_subnqn, 1, standby.get(), ana_state::optimized);
        });
        ASSERT_NE(original, nullptr);
        EXPECT_EQ(read_ana_log(*s.admin).groups.at(0).state, ana_state::inaccessible);
        cmd_result r = read_one(*s.io, 3);
        EXPECT_EQ(sct_of(r.cq), sct::path);
        EXPECT_EQ(sc_of(r.cq), sc_path::ana_inaccessible);
        EXPECT_FALSE(dnr(r.cq));

        // Another volume's identity is refused and changes nothing.
        bool refused = false;
        try {
            ctl.run([](nvmf_target& t, device_registry& d) -> future<> {
                block_device* other = co_await d.create("malloc:///other?size_mb=16&blk_size=512");
                co_await t.replace_namespace(k_subnqn, 1, other, ana_state::optimized);
            });
        } catch (const storage_error& e) {
            refused = e.code == storage_errc::invalid_argument;
        }
        EXPECT_TRUE(refused) << "a device of another UUID may not take the namespace";

        // The device comes back: optimized, and its data is there.
        ctl.run([&](nvmf_target& t, device_registry&) -> future<> {
            co_await t.replace_namespace(k_subnqn, 1, original, ana_state::optimized);
            co_await standby->close();
        });
        EXPECT_EQ(read_ana_log(*s.admin).groups.at(0).state, ana_state::optimized);
        cmd_result back = read_one(*s.io, 3);
        EXPECT_OK(back);
        EXPECT_TRUE(back.data == data);
    });
}

TEST(nvmf_ana, controller_ids_stay_in_the_configured_range) {
    target_options opts;
    opts.limits.cntlid_first = 1000;
    opts.limits.cntlid_last = 1001;
    with_target(opts, [](std::uint16_t port, target_control&) {
        session a = open_admin(port);
        session b = open_admin(port, 0, k_other_host, 0x43);
        EXPECT_EQ(a.cntlid, 1000);
        EXPECT_EQ(b.cntlid, 1001);
    });
    bool refused = false;
    try {
        target_limits bad;
        bad.cntlid_first = 10;
        bad.cntlid_last = 9;
        nvmf_target t("127.0.0.1", 0, bad);
    } catch (const storage_error& e) {
        refused = e.code == storage_errc::invalid_argument;
    }
    EXPECT_TRUE(refused);
}

TEST(ana_log, builds_and_parses_and_refuses_bad_bytes) {
    ana_log log;
    log.change_count = 42;
    log.groups.push_back({1, ana_state::optimized, 42, {1}});
    log.groups.push_back({7, ana_state::inaccessible, 41, {7, 9}});
    auto bytes = build_ana_log(log, false);
    EXPECT_EQ(bytes.size(), 16u + 32 + 4 + 32 + 8);
    auto back = parse_ana_log(bytes);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->change_count, 42u);
    ASSERT_EQ(back->groups.size(), 2u);
    EXPECT_EQ(back->groups[1].group_id, 7u);
    EXPECT_EQ(back->groups[1].state, ana_state::inaccessible);
    EXPECT_EQ(back->groups[1].nsids, (std::vector<std::uint32_t>{7, 9}));
    EXPECT_EQ(build_ana_log(log, true).size(), 16u + 64);

    std::string why;
    auto cut = bytes;
    cut.resize(bytes.size() - 2);
    EXPECT_FALSE(parse_ana_log(cut, &why));
    EXPECT_NE(why.find("past the end"), std::string::npos) << why;
    auto zero_group = bytes;
    std::memset(zero_group.data() + 16, 0, 4);
    EXPECT_FALSE(parse_ana_log(zero_group, &why));
    EXPECT_NE(why.find("group id 0"), std::string::npos) << why;
    auto bad_state = bytes;
    bad_state[16 + 16] = std::byte{0x5};
    EXPECT_FALSE(parse_ana_log(bad_state, &why));
    EXPECT_FALSE(parse_ana_log(std::span<const std::byte>(bytes.data(), 8), &why));
    EXPECT_EQ(ana_state_from_string("non-optimized"), ana_state::non_optimized);
    EXPECT_FALSE(ana_state_from_string("standby"));
}
