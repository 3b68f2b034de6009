// NVMe reservations: the state machine alone (every type's access rules,
// register / acquire / preempt / release / clear, the report's bytes), and
// through the target with two hosts of different HOSTIDs (conflicts on the
// I/O path, the report byte by byte, preempt-and-abort waiting for a
// delayed write and failing after its bound, Identify ONCS / RESCAP).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include <stdlib.h>

#include "nvme/spec/nvme_reservation.hh"
#include "nvme/target/reservation_file.hh"
#include "nvme/target/reservation_state.hh"
#include "storage/errors.hh"
#include "tests/unit/nvmf_test_host.hh"

namespace ioe::nvme {
namespace {

using namespace test_host;
using namespace std::chrono_literals;

host_id hid(std::uint8_t b) {
    host_id h{};
    h[0] = b;
    return h;
}

std::uint32_t acq(std::uint8_t action, std::uint8_t type) { return action | (std::uint32_t{type} << 8); }

// ---- the state machine alone ----------------------------------------------------------

TEST(nvmf_reservation_state, access_rules_of_every_type) {
    const host_id holder = hid(1), registrant = hid(2), stranger = hid(3);
    struct expect {
        std::uint8_t type;
        bool reg_read, reg_write, other_read, other_write;
    };
    const expect table[] = {
        {rtype::write_exclusive, true, false, true, false},
        {rtype::exclusive_access, false, false, false, false},
        {rtype::write_exclusive_registrants_only, true, true, true, false},
        {rtype::exclusive_access_registrants_only, true, true, false, false},
        {rtype::write_exclusive_all_registrants, true, true, true, false},
        {rtype::exclusive_access_all_registrants, true, true, false, false},
    };
    for (const expect& e : table) {
        SCOPED_TRACE(int(e.type));
        reservation_state st;
        EXPECT_EQ(st.do_register(holder, 1, rrega::register_key, 0, 0xa).status, 0);
        EXPECT_EQ(st.do_register(registrant, 2, rrega::register_key, 0, 0xb).status, 0);
        EXPECT_EQ(st.acquire(holder, acq(racqa::acquire, e.type), 0xa, 0).status, 0);
        const auto& v = st.view();
        EXPECT_EQ(v.type, e.type);
        EXPECT_TRUE(v.allows(holder, true));
        EXPECT_TRUE(v.allows(holder, false));
        EXPECT_EQ(v.allows(registrant, false), e.reg_read);
        EXPECT_EQ(v.allows(registrant, true), e.reg_write);
        EXPECT_EQ(v.allows(stranger, false), e.other_read);
        EXPECT_EQ(v.allows(stranger, true), e.other_write);
        // Another registrant acquiring: only the all-registrants types
        // (where it already holds it) succeed.
        const auto other = st.acquire(registrant, acq(racqa::acquire, e.type), 0xb, 0);
        EXPECT_EQ(other.status == 0, all_registrants_type(e.type));
    }
}

TEST(nvmf_reservation_state, register_replace_unregister_and_keys) {
    reservation_state st;
    const host_id a = hid(1);
    EXPECT_EQ(st.do_register(a, 1, rrega::register_key, 0, 0x11).status, 0);
    EXPECT_EQ(st.view().generation, 1u);
    EXPECT_EQ(st.do_register(a, 1, rrega::register_key, 0, 0x11).status, 0) << "same key again: success";
    EXPECT_EQ(status_code(st.do_register(a, 1, rrega::register_key, 0, 0x12).status), sc::reservation_conflict);
    EXPECT_EQ(status_code(st.do_register(a, 1, rrega::replace_key, 0x99, 0x12).status), sc::reservation_conflict);
    EXPECT_EQ(st.do_register(a, 1, rrega::replace_key, 0x11, 0x12).status, 0);
    EXPECT_EQ(st.view().regs[0].key, 0x12u);
    EXPECT_EQ(st.do_register(a, 1, rrega::replace_key | resv_iekey, 0x0, 0x13).status, 0) << "IEKEY";
    EXPECT_EQ(status_code(st.do_register(a, 1, rrega::unregister_key, 0x12, 0).status), sc::reservation_conflict);
    EXPECT_EQ(st.do_register(a, 1, rrega::unregister_key, 0x13, 0).status, 0);
    EXPECT_EQ(st.view().count, 0u);
    EXPECT_EQ(st.view().generation, 4u);
    // CPTPL 01b is reserved.
    EXPECT_EQ(status_code(st.do_register(a, 1, rrega::register_key | (1u << 30), 0, 1).status), sc::invalid_field);
}

TEST(nvmf_reservation_state, registrant_table_has_a_limit) {
    reservation_state st;
    for (unsigned i = 0; i < reservation_view::max_registrants; ++i) {
        host_id h{};
        h[0] = static_cast<std::uint8_t>(i);
        h[1] = 1;
        ASSERT_EQ(st.do_register(h, 1, rrega::register_key, 0, i + 1).status, 0);
    }
    const auto full = st.do_register(hid(0xff), 1, rrega::register_key, 0, 7);
    EXPECT_EQ(status_code(full.status), sc::internal_error);
    EXPECT_EQ(st.view().count, reservation_view::max_registrants);
}

TEST(nvmf_reservation_state, preempt_release_and_clear) {
    reservation_state st;
    const host_id a = hid(1), b = hid(2), c = hid(3);
    st.do_register(a, 1, rrega::register_key, 0, 0xa);
    st.do_register(b, 2, rrega::register_key, 0, 0xb);
    st.do_register(c, 3, rrega::register_key, 0, 0xc);
    ASSERT_EQ(st.acquire(a, acq(racqa::acquire, rtype::write_exclusive), 0xa, 0).status, 0);
    // Wrong key, or an unregistered host: conflict.
    EXPECT_EQ(status_code(st.acquire(b, acq(racqa::preempt, rtype::exclusive_access), 0xbad, 0xa).status),
              sc::reservation_conflict);
    // b preempts the holder: a is unregistered, b holds EA.
    auto o = st.acquire(b, acq(racqa::preempt, rtype::exclusive_access), 0xb, 0xa);
    EXPECT_EQ(o.status, 0);
    ASSERT_EQ(o.preempted.size(), 1u);
    EXPECT_EQ(o.preempted[0], a);
    EXPECT_EQ(st.view().type, rtype::exclusive_access);
    EXPECT_TRUE(st.view().holds(b));
    EXPECT_FALSE(st.view().registered(a));
    // Preempting a non-holder's key removes it; the reservation stays.
    o = st.acquire(b, acq(racqa::preempt, rtype::exclusive_access), 0xb, 0xc);
    EXPECT_EQ(o.status, 0);
    EXPECT_FALSE(st.view().registered(c));
    EXPECT_TRUE(st.view().holds(b));
    // PRKEY matching nobody: conflict; PRKEY 0 without an all-registrants type: invalid.
    EXPECT_EQ(status_code(st.acquire(b, acq(racqa::preempt, rtype::exclusive_access), 0xb, 0x77).status),
              sc::reservation_conflict);
    // Release with the wrong type: invalid field; with the right one: released.
    EXPECT_EQ(status_code(st.release(b, rrela::release | (rtype::write_exclusive << 8), 0xb).status),
              sc::invalid_field);
    EXPECT_EQ(st.release(b, rrela::release | (rtype::exclusive_access << 8), 0xb).status, 0);
    EXPECT_EQ(st.view().type, rtype::none);
    EXPECT_TRUE(st.view().registered(b));
    // All registrants: PRKEY 0 preempts every other registrant.
    st.do_register(a, 1, rrega::register_key, 0, 0xa);
    ASSERT_EQ(st.acquire(a, acq(racqa::acquire, rtype::write_exclusive_all_registrants), 0xa, 0).status, 0);
    EXPECT_TRUE(st.view().holds(b));
    o = st.acquire(b, acq(racqa::preempt, rtype::exclusive_access), 0xb, 0);
    EXPECT_EQ(o.status, 0);
    EXPECT_EQ(o.preempted.size(), 1u);
    EXPECT_EQ(st.view().type, rtype::exclusive_access);
    // Clear: nothing left.
    st.do_register(c, 3, rrega::register_key, 0, 0xc);
    const auto gen = st.view().generation;
    EXPECT_EQ(st.release(c, rrela::clear, 0xc).status, 0);
    EXPECT_EQ(st.view().count, 0u);
    EXPECT_EQ(st.view().type, rtype::none);
    EXPECT_EQ(st.view().generation, gen + 1);
}

TEST(nvmf_reservation_state, unregistering_holder_releases) {
    reservation_state st;
    const host_id a = hid(1), b = hid(2);
    st.do_register(a, 1, rrega::register_key, 0, 0xa);
    st.do_register(b, 2, rrega::register_key, 0, 0xb);
    st.acquire(a, acq(racqa::acquire, rtype::exclusive_access_all_registrants), 0xa, 0);
    st.do_register(a, 1, rrega::unregister_key, 0xa, 0);
    EXPECT_EQ(st.view().type, rtype::exclusive_access_all_registrants) << "b is still a registrant";
    st.do_register(b, 2, rrega::unregister_key, 0xb, 0);
    EXPECT_EQ(st.view().type, rtype::none) << "the last registrant went";
}

// ---- through the target -----------------------------------------------------------------

constexpr std::uint8_t k_host_a = 0xa1, k_host_b = 0xb2;

session open_host(std::uint16_t port, const char* nqn, std::uint8_t hostid0) {
    session s = open_admin(port, 0, nqn, hostid0);
    open_io(s, port);
    return s;
}

cmd_result resv_with_data(session& s, std::uint8_t opcode, std::uint32_t cdw10, std::uint64_t k1, std::uint64_t k2,
                          bool two_keys = true) {
    sqe c = make_sqe(*s.io, opcode, 1);
    c.cdw10 = cdw10;
    std::uint64_t keys[2] = {k1, k2};
    const std::uint32_t len = two_keys ? 16 : 8;
    sgl_in_capsule(c, len);
    return s.io->exec(c, std::as_bytes(std::span(keys)).first(len));
}
cmd_result resv_register(session& s, std::uint32_t cdw10, std::uint64_t crkey, std::uint64_t nrkey) {
    return resv_with_data(s, nvm_opcode::reservation_register, cdw10, crkey, nrkey);
}
cmd_result resv_acquire(session& s, std::uint8_t action, std::uint8_t type, std::uint64_t crkey, std::uint64_t prkey) {
    return resv_with_data(s, nvm_opcode::reservation_acquire, acq(action, type), crkey, prkey);
}
cmd_result resv_release(session& s, std::uint8_t action, std::uint8_t type, std::uint64_t crkey) {
    return resv_with_data(s, nvm_opcode::reservation_release, acq(action, type), crkey, 0, false);
}
cmd_result resv_report(session& s, bool eds, std::uint32_t bytes = 4096) {
    sqe c = make_sqe(*s.io, nvm_opcode::reservation_report, 1);
    c.cdw10 = bytes / 4 - 1;
    c.cdw11 = eds ? report_eds : 0;
    sgl_transport(c, bytes);
    return s.io->exec(c);
}
cmd_result write_one(session& s, std::uint64_t lba, unsigned seed = 1) {
    auto data = pattern(k_block, seed);
    sqe w = rw(*s.io, nvm_opcode::write, lba, 1);
    sgl_in_capsule(w, k_block);
    return s.io->exec(w, data);
}
bool conflict(const cmd_result& r) { return sct_of(r.cq) == sct::generic && sc_of(r.cq) == sc::reservation_conflict; }

TEST(nvmf_reservation, identify_reports_reservations) {
    with_target([](std::uint16_t port) {
        session s = open_admin(port);
        cmd_result idc = do_identify(*s.admin, cns::controller);
        ASSERT_TRUE(is_ok(idc));
        identify_controller c{};
        std::memcpy(&c, idc.data.data(), sizeof c);
        EXPECT_TRUE(c.oncs & oncs::reservations);
        cmd_result idn = do_identify(*s.admin, cns::namespace_data, 1);
        ASSERT_TRUE(is_ok(idn));
        identify_namespace n{};
        std::memcpy(&n, idn.data.data(), sizeof n);
        EXPECT_EQ(n.rescap, 0xfe);
        EXPECT_EQ(n.nmic, nmic_shared);
    });
}

TEST(nvmf_reservation, two_hosts_register_acquire_conflict_report) {
    with_target([](std::uint16_t port) {
        session a = open_host(port, k_good_host, k_host_a);
        session b = open_host(port, k_other_host, k_host_b);
        EXPECT_OK(resv_register(a, rrega::register_key, 0, 0xaaaa));
        EXPECT_OK(resv_register(b, rrega::register_key, 0, 0xbbbb));

        // The non-extended report is refused: our host IDs are 128-bit.
        cmd_result old = resv_report(a, false);
        EXPECT_EQ(sct_of(old.cq), sct::generic);
        EXPECT_EQ(sc_of(old.cq), sc::host_id_inconsistent_format);

        // Write Exclusive by a: b reads, b's writes conflict.
        EXPECT_OK(resv_acquire(a, racqa::acquire, rtype::write_exclusive, 0xaaaa, 0));
        EXPECT_OK(write_one(a, 10));
        EXPECT_TRUE(conflict(write_one(b, 11)));
        EXPECT_OK(read_blocks(*b.io, 10, 1));
        // Flush, Write Zeroes and DSM count as writes.
        sqe fl = make_sqe(*b.io, nvm_opcode::flush, 1);
        EXPECT_TRUE(conflict(b.io->exec(fl)));
        sqe wz = rw(*b.io, nvm_opcode::write_zeroes, 12, 1);
        EXPECT_TRUE(conflict(b.io->exec(wz)));

        // The report, byte by byte.
        cmd_result rep = resv_report(b, true, 4096);
        ASSERT_TRUE(is_ok(rep));
        ASSERT_EQ(rep.data.size(), 4096u);
        resv_status_ext_header h{};
        std::memcpy(&h, rep.data.data(), sizeof h);
        EXPECT_EQ(h.h.gen, 2u);
        EXPECT_EQ(h.h.rtype, rtype::write_exclusive);
        EXPECT_EQ(regctl(h.h), 2);
        EXPECT_EQ(h.h.ptpls, 0);
        registered_controller_ext e[2];
        std::memcpy(e, rep.data.data() + 64, sizeof e);
        EXPECT_EQ(e[0].cntlid, a.cntlid);
        EXPECT_EQ(e[0].rcsts, 1);
        EXPECT_EQ(e[0].rkey, 0xaaaau);
        EXPECT_EQ(e[0].hostid[0], k_host_a);
        EXPECT_EQ(e[1].cntlid, b.cntlid);
        EXPECT_EQ(e[1].rcsts, 0);
        EXPECT_EQ(e[1].rkey, 0xbbbbu);
        EXPECT_EQ(e[1].hostid[0], k_host_b);
        EXPECT_TRUE(all_zero(std::span(rep.data).subspan(64 + 128)));

        // Exclusive Access: b cannot even read; b's acquire conflicts.
        EXPECT_OK(resv_release(a, rrela::release, rtype::write_exclusive, 0xaaaa));
        EXPECT_OK(write_one(b, 11));
        EXPECT_OK(resv_acquire(a, racqa::acquire, rtype::exclusive_access, 0xaaaa, 0));
        EXPECT_TRUE(conflict(read_blocks(*b.io, 10, 1)));
        EXPECT_TRUE(conflict(resv_acquire(b, racqa::acquire, rtype::exclusive_access, 0xbbbb, 0)));
        EXPECT_TRUE(conflict(resv_acquire(b, racqa::acquire, rtype::exclusive_access, 0x1234, 0))) << "wrong key";

        // b preempts a: a is no longer registered, its writes and reads conflict.
        EXPECT_OK(resv_acquire(b, racqa::preempt, rtype::exclusive_access_registrants_only, 0xbbbb, 0xaaaa));
        EXPECT_TRUE(conflict(write_one(a, 13)));
        EXPECT_TRUE(conflict(read_blocks(*a.io, 10, 1)));
        EXPECT_OK(write_one(b, 13));
        rep = resv_report(a, true, 128);  // a short report: header and one entry
        ASSERT_TRUE(is_ok(rep));
        std::memcpy(&h, rep.data.data(), sizeof h);
        EXPECT_EQ(h.h.gen, 3u);
        EXPECT_EQ(h.h.rtype, rtype::exclusive_access_registrants_only);
        EXPECT_EQ(regctl(h.h), 1);
        std::memcpy(e, rep.data.data() + 64, 64);
        EXPECT_EQ(e[0].hostid[0], k_host_b);
        EXPECT_EQ(e[0].rcsts, 1);

        // a registers again: a registrant may write under registrants-only.
        EXPECT_OK(resv_register(a, rrega::register_key, 0, 0xaaab));
        EXPECT_OK(write_one(a, 14));
        // Clear by a: everything goes, anyone may write.
        EXPECT_OK(resv_release(a, rrela::clear, 0, 0xaaab));
        EXPECT_OK(write_one(b, 15));
        rep = resv_report(b, true, 64);
        ASSERT_TRUE(is_ok(rep));
        std::memcpy(&h, rep.data.data(), sizeof h);
        EXPECT_EQ(regctl(h.h), 0);
        EXPECT_EQ(h.h.rtype, rtype::none);
        EXPECT_TRUE(conflict(resv_release(b, rrela::release, rtype::exclusive_access, 0xbbbb))) << "unregistered";
    });
}

// a's write is held at the device (1.5 s); b's preempt-and-abort completes
// only after it finished.
TEST(nvmf_reservation, preempt_and_abort_waits_for_the_preempted_write) {
    target_options opts;
    opts.fault_namespace = true;
    with_target(opts, [](std::uint16_t port, target_control& ctl) {
        session a = open_host(port, k_good_host, k_host_a);
        session b = open_host(port, k_other_host, k_host_b);
        EXPECT_OK(resv_register(a, rrega::register_key, 0, 0xa));
        EXPECT_OK(resv_register(b, rrega::register_key, 0, 0xb));
        EXPECT_OK(resv_acquire(a, racqa::acquire, rtype::write_exclusive, 0xa, 0));
        ctl.run([&ctl](nvmf_target&, device_registry&) -> future<> {
            co_await ctl.faults->add_rule(fault_rule::delay_by(op_mask::write, 1500ms).on_blocks(500, 501));
        });
        auto data = pattern(k_block, 5);
        sqe w = rw(*a.io, nvm_opcode::write, 500, 1);
        sgl_in_capsule(w, k_block);
        const auto t0 = std::chrono::steady_clock::now();
        a.io->send_capsule(w, data);
        std::this_thread::sleep_for(100ms);  // the write is at the device
        cmd_result p = resv_acquire(b, racqa::preempt_and_abort, rtype::write_exclusive, 0xb, 0xa);
        const auto took = std::chrono::steady_clock::now() - t0;
        EXPECT_OK(p);
        EXPECT_GE(took, 1400ms) << "preempt-and-abort completed before the preempted write finished";
        // The write itself finished (it was at the device before the preemption).
        pdu resp = a.io->recv_pdu();
        ASSERT_EQ(resp.type(), tcp::pdu_type::capsule_resp);
        EXPECT_TRUE(status_ok(resp.as<tcp::capsule_resp>().rccqe.status));
        EXPECT_TRUE(conflict(write_one(a, 501)));
    });
}

// The preempted host's connections dropped while its write is at the
// device: its queue pair drains, and preempt-and-abort waits for it too.
TEST(nvmf_reservation, preempt_and_abort_waits_for_a_dropped_connection_draining) {
    target_options opts;
    opts.fault_namespace = true;
    with_target(opts, [](std::uint16_t port, target_control& ctl) {
        session a = open_host(port, k_good_host, k_host_a);
        session b = open_host(port, k_other_host, k_host_b);
        EXPECT_OK(resv_register(a, rrega::register_key, 0, 0xa));
        EXPECT_OK(resv_register(b, rrega::register_key, 0, 0xb));
        EXPECT_OK(resv_acquire(a, racqa::acquire, rtype::exclusive_access, 0xa, 0));
        ctl.run([&ctl](nvmf_target&, device_registry&) -> future<> {
            co_await ctl.faults->add_rule(fault_rule::delay_by(op_mask::write, 1500ms).on_blocks(600, 601));
        });
        auto data = pattern(k_block, 7);
        sqe w = rw(*a.io, nvm_opcode::write, 600, 1);
        sgl_in_capsule(w, k_block);
        const auto t0 = std::chrono::steady_clock::now();
        a.io->send_capsule(w, data);
        std::this_thread::sleep_for(100ms);
        a.io->close_now();
        a.admin->close_now();
        std::this_thread::sleep_for(50ms);
        cmd_result p = resv_acquire(b, racqa::preempt_and_abort, rtype::exclusive_access, 0xb, 0xa);
        EXPECT_OK(p);
        EXPECT_GE(std::chrono::steady_clock::now() - t0, 1400ms)
            << "preempt-and-abort completed while the dropped connection's write still ran";
        EXPECT_OK(write_one(b, 601));
    });
}

TEST(nvmf_reservation, preempt_and_abort_fails_after_its_bound) {
    target_options opts;
    opts.fault_namespace = true;
    opts.limits.drain_timeout_ms = 300;
    with_target(opts, [](std::uint16_t port, target_control& ctl) {
        session a = open_host(port, k_good_host, k_host_a);
        session b = open_host(port, k_other_host, k_host_b);
        EXPECT_OK(resv_register(a, rrega::register_key, 0, 0xa));
        EXPECT_OK(resv_register(b, rrega::register_key, 0, 0xb));
        EXPECT_OK(resv_acquire(a, racqa::acquire, rtype::exclusive_access, 0xa, 0));
        ctl.run([&ctl](nvmf_target&, device_registry&) -> future<> {
            co_await ctl.faults->add_rule(fault_rule::delay_by(op_mask::write, 2000ms).on_blocks(700, 701));
        });
        auto data = pattern(k_block, 6);
        sqe w = rw(*a.io, nvm_opcode::write, 700, 1);
        sgl_in_capsule(w, k_block);
        a.io->send_capsule(w, data);
        std::this_thread::sleep_for(100ms);
        const auto t0 = std::chrono::steady_clock::now();
        cmd_result p = resv_acquire(b, racqa::preempt_and_abort, rtype::exclusive_access, 0xb, 0xa);
        const auto took = std::chrono::steady_clock::now() - t0;
        EXPECT_FALSE(status_ok(p.cq.status)) << "never success while the preempted write still runs";
        EXPECT_EQ(sc_of(p.cq), sc::internal_error);
        EXPECT_FALSE(status_dnr(p.cq.status));
        EXPECT_GE(took, 250ms);
        EXPECT_LT(took, 1500ms);
        // The preemption took effect (b holds it now), but the drain is
        // owed: a plain Acquire by the new holder (what a retry under the
        // same key sends) does not succeed either while a's write runs.
        cmd_result again = resv_acquire(b, racqa::acquire, rtype::exclusive_access, 0xb, 0);
        EXPECT_FALSE(status_ok(again.cq.status)) << "a retry must not report the reservation before the drain";
        EXPECT_EQ(sc_of(again.cq), sc::internal_error);
        pdu resp = a.io->recv_pdu();  // the held write ends
        ASSERT_EQ(resp.type(), tcp::pdu_type::capsule_resp);
        // Now drained: a retry succeeds (nothing of a's runs any more).
        EXPECT_OK(resv_acquire(b, racqa::preempt_and_abort, rtype::exclusive_access, 0xb, 0xb));
    });
}

}  // namespace
}  // namespace ioe::nvme

// ---- Persist Through Power Loss ---------------------------------------------------------

namespace ioe::nvme {
namespace {

reservation_store file_store(const std::string& dir) {
    return reservation_store{
        [dir](std::string name, std::vector<std::byte> bytes) -> future<> {
            save_reservation_file(dir, name, bytes);  // blocking: fine in a test
            co_return;
        },
        [dir](std::string name) -> future<std::optional<std::vector<std::byte>>> {
            co_return load_reservation_file(dir, name);
        }};
}

std::string the_resv_file(const std::string& dir) {
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().extension() == ".resv") return e.path().filename().string();
    return "";
}

TEST(nvmf_reservation_file, round_trip_and_corruption) {
    reservation_state st;
    st.ptpl_capable = true;
    st.do_register(hid(1), 3, rrega::register_key | (std::uint32_t{cptpl::set} << 30), 0, 0x1111);
    st.do_register(hid(2), 4, rrega::register_key, 0, 0x2222);
    st.acquire(hid(1), acq(racqa::acquire, rtype::exclusive_access), 0x1111, 0);
    auto bytes = encode_reservation_file(st.view());
    ASSERT_EQ(bytes.size(), 64u + 2 * 32u);
    std::string err;
    auto v = decode_reservation_file(bytes, err);
    ASSERT_TRUE(v) << err;
    EXPECT_TRUE(v->ptpl);
    EXPECT_EQ(v->type, rtype::exclusive_access);
    EXPECT_EQ(v->holder, hid(1));
    EXPECT_EQ(v->count, 2u);
    EXPECT_EQ(v->regs[1].key, 0x2222u);
    EXPECT_EQ(v->regs[1].cntlid, 4);
    EXPECT_EQ(v->generation, st.view().generation);
    for (std::size_t i : {std::size_t{0}, std::size_t{20}, std::size_t{70}, bytes.size() - 1}) {
        auto bad = bytes;
        bad[i] ^= std::byte{0x40};
        EXPECT_FALSE(decode_reservation_file(bad, err)) << "byte " << i << " flipped";
    }
    auto cut = bytes;
    cut.pop_back();
    EXPECT_FALSE(decode_reservation_file(cut, err));
    EXPECT_FALSE(decode_reservation_file(std::span(bytes).first(10), err));
    // CPTPL = 11b without a store: Invalid Field.
    reservation_state plain;
    EXPECT_EQ(status_code(plain.do_register(hid(1), 1, rrega::register_key | (3u << 30), 0, 1).status),
              sc::invalid_field);
}

TEST(nvmf_reservation, ptpl_written_and_reloaded_by_a_fresh_target) {
    char tmpl[] = "/tmp/ioe-resv-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    target_options opts;
    opts.setup = [dir](nvmf_target& t) { t.set_reservation_store(file_store(dir)); };
    with_target(opts, [&](std::uint16_t port, target_control& ctl) {
        session a = open_host(port, k_good_host, k_host_a);
        cmd_result idn = do_identify(*a.admin, cns::namespace_data, 1);
        ASSERT_TRUE(is_ok(idn));
        identify_namespace n{};
        std::memcpy(&n, idn.data.data(), sizeof n);
        EXPECT_EQ(n.rescap, 0xff) << "PTPL too, with a store";

        EXPECT_OK(resv_register(a, rrega::register_key | (std::uint32_t{cptpl::set} << 30), 0, 0xabc));
        EXPECT_OK(resv_acquire(a, racqa::acquire, rtype::write_exclusive_registrants_only, 0xabc, 0));
        sqe gf = make_sqe(*a.admin, admin_opcode::get_features, 1);
        gf.cdw10 = feature_reservation_persistence;
        cmd_result g = a.admin->exec(gf);
        EXPECT_OK(g);
        EXPECT_EQ(g.cq.dw0, 1u);

        // The file is there before the commands completed, and decodes.
        const std::string name = the_resv_file(dir);
        ASSERT_FALSE(name.empty());
        auto bytes = load_reservation_file(dir, name);
        ASSERT_TRUE(bytes);
        std::string err;
        auto v = decode_reservation_file(*bytes, err);
        ASSERT_TRUE(v) << err;
        EXPECT_EQ(v->type, rtype::write_exclusive_registrants_only);
        EXPECT_EQ(v->count, 1u);
        EXPECT_EQ(v->regs[0].key, 0xabcu);

        // A fresh target over the same device: the reservation is back
        // before it serves I/O.
        std::unique_ptr<nvmf_target> fresh;
        std::uint16_t fresh_port = 0;
        ctl.run([&](nvmf_target&, device_registry& d) -> future<> {
            block_device* dev = co_await d.find("ns1");
            fresh = std::make_unique<nvmf_target>("127.0.0.1", 0);
            fresh->set_reservation_store(file_store(dir));
            subsystem_config sub;
            sub.nqn = k_subnqn;
            sub.allowed_hosts = {k_good_host, k_other_host};
            sub.namespaces.push_back(dev);
            co_await fresh->add_subsystem(std::move(sub));
            co_await fresh->start();
            fresh_port = fresh->port();
        });
        ASSERT_NE(fresh_port, 0);
        {
            session b = open_host(fresh_port, k_other_host, k_host_b);
            cmd_result rep = resv_report(b, true, 128);
            ASSERT_TRUE(is_ok(rep));
            resv_status_ext_header h{};
            std::memcpy(&h, rep.data.data(), sizeof h);
            EXPECT_EQ(h.h.rtype, rtype::write_exclusive_registrants_only);
            EXPECT_EQ(regctl(h.h), 1);
            EXPECT_EQ(h.h.ptpls, 1);
            registered_controller_ext e{};
            std::memcpy(&e, rep.data.data() + 64, 64);
            EXPECT_EQ(e.rkey, 0xabcu);
            EXPECT_EQ(e.hostid[0], k_host_a);
            EXPECT_TRUE(conflict(write_one(b, 30))) << "b is not a registrant of the restored reservation";
        }
        ctl.run([&](nvmf_target&, device_registry&) -> future<> {
            co_await fresh->stop();
            fresh.reset();
        });

        // A corrupt file: a fresh target refuses the namespace and says why.
        auto bad = *bytes;
        bad[30] ^= std::byte{1};
        save_reservation_file(dir, name, bad);
        bool refused = false;
        std::string why;
        ctl.run([&](nvmf_target&, device_registry& d) -> future<> {
            block_device* dev = co_await d.find("ns1");
            nvmf_target third("127.0.0.1", 0);
            third.set_reservation_store(file_store(dir));
            subsystem_config sub;
            sub.nqn = k_subnqn;
            sub.namespaces.push_back(dev);
            try {
                co_await third.add_subsystem(std::move(sub));
            } catch (const storage_error& e) {
                refused = true;
                why = e.what();
            }
        });
        EXPECT_TRUE(refused);
        EXPECT_NE(why.find("CRC32C"), std::string::npos) << why;
    });
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ioe::nvme

// ---- notifications: log page 80h and the event ------------------------------------------

namespace ioe::nvme {
namespace {

resv_notification_log read_notice_log(host& h) {
    sqe g = make_sqe(h, admin_opcode::get_log_page, nsid_all);
    g.cdw10 = log_reservation_notification | ((64u / 4 - 1) << 16);
    sgl_transport(g, 64);
    cmd_result r = h.exec(g);
    EXPECT_OK(r);
    resv_notification_log l{};
    if (r.data.size() >= sizeof l) std::memcpy(&l, r.data.data(), sizeof l);
    return l;
}

TEST(nvmf_reservation, notifications_in_log_page_80h_and_the_event) {
    with_target([](std::uint16_t port) {
        session a = open_host(port, k_good_host, k_host_a);
        session b = open_host(port, k_other_host, k_host_b);
        EXPECT_OK(resv_register(a, rrega::register_key, 0, 0xa));
        EXPECT_OK(resv_register(b, rrega::register_key, 0, 0xb));
        EXPECT_OK(resv_acquire(a, racqa::acquire, rtype::write_exclusive_registrants_only, 0xa, 0));
        // Empty so far.
        resv_notification_log l = read_notice_log(*a.admin);
        EXPECT_EQ(l.log_page_count, 0u);
        EXPECT_EQ(l.type, resv_notice_type::empty);

        sqe aer = make_sqe(*a.admin, admin_opcode::async_event_request);
        a.admin->held_cids.push_back(aer.cid);
        a.admin->send_capsule(aer, {});
        // b preempts a: a's registration is preempted; the event tells a.
        EXPECT_OK(resv_acquire(b, racqa::preempt, rtype::write_exclusive, 0xb, 0xa));
        cqe ev = a.admin->wait_held(aer.cid);
        EXPECT_TRUE(status_ok(ev.status));
        EXPECT_EQ(ev.dw0, 0x6u | (0x80u << 16)) << "I/O command specific, reservation log page available";
        l = read_notice_log(*a.admin);
        EXPECT_EQ(l.log_page_count, 1u);
        EXPECT_EQ(l.type, resv_notice_type::registration_preempted);
        EXPECT_EQ(l.nsid, 1u);
        EXPECT_EQ(l.available, 0);
        l = read_notice_log(*a.admin);  // consumed
        EXPECT_EQ(l.log_page_count, 0u);

        // b releases a registrants-only reservation: a (registered again)
        // learns it was released; a masked type is not logged.
        EXPECT_OK(resv_register(a, rrega::register_key, 0, 0xa2));
        EXPECT_OK(resv_release(b, rrela::release, rtype::write_exclusive, 0xb));  // WE: no notice
        EXPECT_OK(resv_acquire(b, racqa::acquire, rtype::exclusive_access_registrants_only, 0xb, 0));
        EXPECT_OK(resv_release(b, rrela::release, rtype::exclusive_access_registrants_only, 0xb));
        std::this_thread::sleep_for(50ms);  // notices travel to a's admin shard
        l = read_notice_log(*a.admin);
        EXPECT_EQ(l.log_page_count, 2u) << "the per-controller count goes on";
        EXPECT_EQ(l.type, resv_notice_type::reservation_released);
        sqe mask = make_sqe(*a.admin, admin_opcode::set_features);
        mask.cdw10 = feature_reservation_notification_mask;
        mask.cdw11 = 1u << resv_notice_type::reservation_preempted;
        EXPECT_OK(a.admin->exec(mask));
        EXPECT_OK(resv_release(b, rrela::clear, 0, 0xb));  // would be "reservation preempted": masked
        std::this_thread::sleep_for(50ms);
        l = read_notice_log(*a.admin);
        EXPECT_EQ(l.log_page_count, 0u);
    });
}

}  // namespace
}  // namespace ioe::nvme
