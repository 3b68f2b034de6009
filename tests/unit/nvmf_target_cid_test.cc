// The NVMe/TCP target's answers to hosts that reuse command IDs, abandon
// their admin queue, tune features and disable SQ flow control, with the
// blocking test host of nvmf_test_host.hh:
// * a held Asynchronous Event Request whose CID comes again (SPDK's host
//   reuses them) is dropped: the new command is answered, the dropped AER
//   never is, and its place among the held AERs is free again;
// * a command whose CID is still executing (a read held up by a delay rule
//   of a fault_device namespace) makes the new one fail at once with Command
//   ID Conflict (generic, SC 03h, DNR) - its in-capsule data discarded, the
//   stream in step - while the first completes OK and the connection stays;
// * a host that closes its admin queue with AERs outstanding: its I/O queue
//   closes, the controller goes, and a new host connects and does I/O;
// * Get/Set Features Arbitration (01h), Power Management (02h: PS != 0 is
//   Invalid Field) and Temperature Threshold (04h: TMPSEL/THSEL);
// * with Connect CATTR bit 2 reads end with a C2HData carrying SUCCESS and no
//   CapsuleResp; without it, C2HData then CapsuleResp.
// Every socket wait is bounded (SO_RCVTIMEO, poll timeouts).
#include "tests/unit/nvmf_test_host.hh"

using namespace ioe;
using namespace ioe::nvme;
using namespace ioe::nvme::test_host;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t k_aen_ns_changed = 0x00040002;  // notice, namespace attribute changed, log 04h

// Sends an Asynchronous Event Request without waiting; returns its CID.
std::uint16_t send_aer(host& h) {
    sqe a = make_sqe(h, admin_opcode::async_event_request);
    h.send_capsule(a, {});
    return a.cid;
}

void enable_namespace_notices(host& h) {
    sqe aec = make_sqe(h, admin_opcode::set_features);
    aec.cdw10 = feature::async_event_configuration;
    aec.cdw11 = 1u << 8;
    EXPECT_OK(h.exec(aec));
}

cmd_result get_feature(host& h, std::uint8_t fid, std::uint32_t cdw11 = 0) {
    sqe s = make_sqe(h, admin_opcode::get_features);
    s.cdw10 = fid;
    s.cdw11 = cdw11;
    return h.exec(s);
}

cmd_result set_feature(host& h, std::uint8_t fid, std::uint32_t cdw11) {
    sqe s = make_sqe(h, admin_opcode::set_features);
    s.cdw10 = fid;
    s.cdw11 = cdw11;
    return h.exec(s);
}

::testing::AssertionResult is_invalid_field(const cmd_result& r) {
    if (sct_of(r.cq) == sct::generic && sc_of(r.cq) == sc::invalid_field && status_dnr(r.cq.status)) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "status sct " << int(sct_of(r.cq)) << " sc 0x" << std::hex
                                         << int(sc_of(r.cq)) << " dnr " << status_dnr(r.cq.status);
}

void add_namespace(target_control& ctl, const char* uri) {
    ctl.run([uri](nvmf_target& t, device_registry& d) -> future<> {
        block_device* dev = co_await d.create(uri);
        co_await t.add_namespace(k_subnqn, dev);
    });
}

// Get Log Page 04h (read, not retained): unmasks the next namespace event.
void read_changed_list(host& h) {
    sqe s = make_sqe(h, admin_opcode::get_log_page);
    s.cdw10 = log_page::changed_namespace_list | (1023u << 16);
    sgl_transport(s, 4096);
    EXPECT_OK(h.exec(s));
}

}  // namespace

// ---- a held AER's CID reused ---------------------------------------------------

TEST(nvmf_target_cid, reused_cid_of_a_held_aer_drops_it) {
    with_target([](std::uint16_t port, target_control& ctl) {
        session s = open_admin(port);
        host& a = *s.admin;
        enable_namespace_notices(a);
        std::vector<std::uint16_t> aers;
        for (int i = 0; i < 4; ++i) aers.push_back(send_aer(a));
        // All four are held: a fifth is refused (AERL + 1 = 4).
        cmd_result fifth = a.exec(make_sqe(a, admin_opcode::async_event_request));
        EXPECT_EQ(sct_of(fifth.cq), sct::command_specific);
        EXPECT_EQ(sc_of(fifth.cq), sc_specific::async_event_request_limit_exceeded);

        // The host reuses the CIDs of AERs 2 and 3 for Get Features and
        // Identify: each is answered, with its CID, and the connection stays.
        sqe gf = make_sqe(a, admin_opcode::get_features);
        gf.cdw10 = feature::keep_alive_timer;
        gf.cid = aers[1];
        cmd_result gr = a.exec(gf);
        EXPECT_OK(gr);
        EXPECT_EQ(gr.cq.cid, aers[1]);
        EXPECT_EQ(gr.cq.dw0, 0u);  // KATO 0 at Connect
        sqe id = make_sqe(a, admin_opcode::identify);
        id.cdw10 = cns::controller;
        sgl_transport(id, identify_bytes);
        id.cid = aers[2];
        cmd_result ir = a.exec(id);
        EXPECT_OK(ir);
        EXPECT_EQ(ir.cq.cid, aers[2]);
        ASSERT_EQ(ir.data.size(), identify_bytes);
        identify_controller ic;
        std::memcpy(&ic, ir.data.data(), sizeof ic);
        EXPECT_EQ(ic.cntlid, s.cntlid);

        // Two places are free again: two more AERs are held, a third is refused.
        aers.push_back(send_aer(a));
        aers.push_back(send_aer(a));
        cmd_result over = a.exec(make_sqe(a, admin_opcode::async_event_request));
        EXPECT_EQ(sc_of(over.cq), sc_specific::async_event_request_limit_exceeded);

        // Namespace changes answer the held AERs oldest first: AER 1, then
        // AER 4; never the dropped AERs 2 and 3 (exec() would throw on a
        // CapsuleResp whose CID is neither its own nor held).
        a.held_cids = {aers[0], aers[3], aers[4], aers[5]};
        add_namespace(ctl, "malloc:///cid_ns2?size_mb=1&blk_size=512");
        cqe ev = a.wait_held(aers[0]);
        EXPECT_TRUE(status_ok(ev.status));
        EXPECT_EQ(ev.dw0, k_aen_ns_changed);
        read_changed_list(a);
        add_namespace(ctl, "malloc:///cid_ns3?size_mb=1&blk_size=512");
        ev = a.wait_held(aers[3]);
        EXPECT_TRUE(status_ok(ev.status));
        EXPECT_EQ(ev.dw0, k_aen_ns_changed);
        EXPECT_TRUE(a.held_completions.empty());
        EXPECT_FALSE(a.readable_within(200ms)) << "an answer nobody asked for (a dropped AER?)";

        // The controller works on: Keep Alive, and I/O on a new queue.
        open_io(s, port);
        check_alive(s, 40, 1);
    });
}

// ---- a running command's CID reused ---------------------------------------------

namespace {

// On a session whose namespace delays reads of LBA `slow_lba`: a read of it
// is sent, then (without waiting) a second command with the same CID: a read
// of another block, or a write of 8 blocks with in-capsule data (4 KiB:
// more than the receiver's direct_min, so discarding it must not take the
// direct receive path).
void cid_conflict_on_a_running_read(session& s, std::uint64_t slow_lba, bool second_writes, unsigned seed) {
    host& io = *s.io;
    const auto old_data = pattern(k_block, seed);
    sqe w0 = rw(io, nvm_opcode::write, slow_lba, 1);
    sgl_in_capsule(w0, k_block);
    EXPECT_OK(io.exec(w0, old_data));

    sqe r1 = rw(io, nvm_opcode::read, slow_lba, 1);
    sgl_transport(r1, k_block);
    io.send_capsule(r1, {});
    const auto new_data = pattern(8 * k_block, seed + 1);
    if (second_writes) {
        sqe w = rw(io, nvm_opcode::write, slow_lba + 1, 8);
        w.cid = r1.cid;
        sgl_in_capsule(w, 8 * k_block);
        io.send_capsule(w, new_data);
    } else {
        sqe r2 = rw(io, nvm_opcode::read, slow_lba + 1, 1);
        r2.cid = r1.cid;
        sgl_transport(r2, k_block);
        io.send_capsule(r2, {});
    }

    // First comes the conflict, for the second command (the read is held up
    // by the delay rule); no data before it.
    pdu p = io.recv_pdu();
    ASSERT_EQ(p.type(), tcp::pdu_type::capsule_resp) << "got PDU type " << int(p.ch.pdu_type);
    const cqe c = p.as<tcp::capsule_resp>().rccqe;
    EXPECT_EQ(c.cid, r1.cid);
    EXPECT_EQ(c.sqid, 1);
    EXPECT_EQ(sct_of(c), sct::generic);
    EXPECT_EQ(sc_of(c), sc::command_id_conflict);
    EXPECT_TRUE(status_dnr(c.status));

    // Then the first command completes normally with the block's data.
    p = io.recv_pdu();
    ASSERT_EQ(p.type(), tcp::pdu_type::c2h_data) << "got PDU type " << int(p.ch.pdu_type);
    EXPECT_EQ(p.as<tcp::c2h_data>().cccid, r1.cid);
    EXPECT_TRUE(p.data == old_data);
    p = io.recv_pdu();
    ASSERT_EQ(p.type(), tcp::pdu_type::capsule_resp) << "got PDU type " << int(p.ch.pdu_type);
    EXPECT_EQ(p.as<tcp::capsule_resp>().rccqe.cid, r1.cid);
    EXPECT_TRUE(status_ok(p.as<tcp::capsule_resp>().rccqe.status));

    // The refused write never happened; the connection carries on.
    cmd_result next = read_blocks(io, slow_lba + 1, 8);
    EXPECT_OK(next);
    EXPECT_TRUE(all_zero(next.data)) << "the refused command's data was written";
    // The same CID, now free, is accepted.
    sqe again = rw(io, nvm_opcode::write, slow_lba + 10, 8);
    again.cid = r1.cid;
    sgl_in_capsule(again, 8 * k_block);
    EXPECT_OK(io.exec(again, new_data));
    cmd_result back = read_blocks(io, slow_lba + 10, 8);
    EXPECT_OK(back);
    EXPECT_TRUE(back.data == new_data);
}

}  // namespace

TEST(nvmf_target_cid, reused_cid_of_a_running_command_gets_command_id_conflict) {
    target_options opts;
    opts.fault_namespace = true;
    with_target(opts, [](std::uint16_t port, target_control& ctl) {
        // Reads of blocks 1000 and 2000 take 300 ms.
        ctl.run([&ctl](nvmf_target&, device_registry&) -> future<> {
            co_await ctl.faults->add_rule(fault_rule::delay_by(op_mask::read, 300ms).on_blocks(1000, 1001));
            co_await ctl.faults->add_rule(fault_rule::delay_by(op_mask::read, 300ms).on_blocks(2000, 2001));
        });
        {
            session s = open_admin(port);
            open_io(s, port);
            cid_conflict_on_a_running_read(s, 1000, /*second_writes=*/false, 1);
            check_alive(s, 1100, 2);
        }
        {
            // With digests, the refused capsule's in-capsule data (and its
            // data digest) are skipped.
            constexpr std::uint8_t both = tcp::dgst::header | tcp::dgst::data;
            session s = open_admin(port, both);
            open_io(s, port, both);
            cid_conflict_on_a_running_read(s, 2000, /*second_writes=*/true, 3);
            check_alive(s, 2100, 4);
        }
        {
            // A write waiting for its data (R2T sent): a capsule reusing its
            // CID is refused, and the H2CData that follows still lands in
            // the write, which completes.
            session s = open_admin(port);
            open_io(s, port);
            host& io = *s.io;
            const auto data = pattern(65536, 5);
            sqe w = rw(io, nvm_opcode::write, 3000, 128);
            sgl_transport(w, 65536);
            io.send_capsule(w, {});
            pdu p = io.recv_pdu();
            ASSERT_EQ(p.type(), tcp::pdu_type::r2t);
            const auto r2t = p.as<tcp::r2t>();
            EXPECT_EQ(r2t.cccid, w.cid);
            sqe r = rw(io, nvm_opcode::read, 0, 1);
            r.cid = w.cid;
            sgl_transport(r, k_block);
            io.send_capsule(r, {});
            p = io.recv_pdu();
            ASSERT_EQ(p.type(), tcp::pdu_type::capsule_resp);
            EXPECT_EQ(p.as<tcp::capsule_resp>().rccqe.cid, w.cid);
            EXPECT_EQ(sc_of(p.as<tcp::capsule_resp>().rccqe), sc::command_id_conflict);
            io.send_h2c(w.cid, r2t.ttag, 0, std::span(data).first(32768), false);
            io.send_h2c(w.cid, r2t.ttag, 32768, std::span(data).subspan(32768), true);
            p = io.recv_pdu();
            ASSERT_EQ(p.type(), tcp::pdu_type::capsule_resp);
            EXPECT_EQ(p.as<tcp::capsule_resp>().rccqe.cid, w.cid);
            EXPECT_TRUE(status_ok(p.as<tcp::capsule_resp>().rccqe.status));
            cmd_result back = read_blocks(io, 3000, 128);
            EXPECT_OK(back);
            EXPECT_TRUE(back.data == data);
        }
    });
}

// ---- an abandoned admin queue ------------------------------------------------

TEST(nvmf_target_cid, admin_queue_closed_with_aers_outstanding) {
    with_target([](std::uint16_t port, target_control& ctl) {
        std::uint16_t gone = 0;
        {
            session s = open_admin(port);
            open_io(s, port);
            enable_namespace_notices(*s.admin);
            for (int i = 0; i < 4; ++i) send_aer(*s.admin);
            EXPECT_OK(s.admin->exec(make_sqe(*s.admin, admin_opcode::keep_alive)));  // all four held
            gone = s.cntlid;
            s.admin->close_now();
            // The controller is torn down: its I/O queue closes too.
            EXPECT_TRUE(s.io->peer_closed());
        }
        // The target forgets it (bounded wait).
        bool forgotten = false;
        for (int i = 0; i < 100 && !forgotten; ++i) {
            std::vector<host_info> hosts;
            ctl.run([&hosts](nvmf_target& t, device_registry&) -> future<> {
                hosts = t.connected_hosts();
                co_return;
            });
            forgotten = std::none_of(hosts.begin(), hosts.end(), [gone](const host_info& h) { return h.cntlid == gone; });
            if (!forgotten) std::this_thread::sleep_for(50ms);
        }
        EXPECT_TRUE(forgotten) << "controller " << gone << " still listed";

        // A namespace change finds no one to tell, and the target stays up:
        // a new host connects and does I/O (in-capsule, R2T, reads).
        add_namespace(ctl, "malloc:///cid_ns4?size_mb=1&blk_size=512");
        session s2 = open_admin(port);
        open_io(s2, port);
        check_alive(s2, 60, 5);
        const auto big = pattern(65536, 6);
        sqe w = rw(*s2.io, nvm_opcode::write, 200, 128);
        sgl_transport(w, 65536);
        EXPECT_OK(s2.io->exec(w, {}, big));
        cmd_result r = read_blocks(*s2.io, 200, 128);
        EXPECT_OK(r);
        EXPECT_TRUE(r.data == big);
    });
}

// ---- Get / Set Features 01h, 02h, 04h --------------------------------------------

TEST(nvmf_target_cid, features_arbitration_power_management_temperature_threshold) {
    with_target([](std::uint16_t port) {
        session s = open_admin(port);
        host& a = *s.admin;

        // 01h Arbitration: AB 7 (no limit) and zero weights until set.
        cmd_result r = get_feature(a, feature::arbitration);
        EXPECT_OK(r);
        EXPECT_EQ(r.cq.dw0, 0x7u);
        const std::uint32_t arb = (9u << 24) | (8u << 16) | (7u << 8) | 0x3u;  // HPW MPW LPW AB
        r = set_feature(a, feature::arbitration, arb);
        EXPECT_OK(r);
        EXPECT_EQ(r.cq.dw0, arb);
        r = get_feature(a, feature::arbitration);
        EXPECT_OK(r);
        EXPECT_EQ(r.cq.dw0, arb);

        // 02h Power Management: one power state, PS 0.
        r = get_feature(a, feature::power_management);
        EXPECT_OK(r);
        EXPECT_EQ(r.cq.dw0, 0u);
        EXPECT_OK(set_feature(a, feature::power_management, 0));
        EXPECT_OK(set_feature(a, feature::power_management, 1u << 5));  // WH 1, PS 0
        EXPECT_TRUE(is_invalid_field(set_feature(a, feature::power_management, 1)));
        EXPECT_TRUE(is_invalid_field(set_feature(a, feature::power_management, 0x1f)));
        r = get_feature(a, feature::power_management);
        EXPECT_OK(r);
        EXPECT_EQ(r.cq.dw0 & 0x1f, 0u);

        // 04h Temperature Threshold: over (THSEL 0) 343 K, under (THSEL 1) 0.
        constexpr std::uint32_t under = 1u << 20;
        r = get_feature(a, feature::temperature_threshold, 0);
        EXPECT_OK(r);
        EXPECT_EQ(r.cq.dw0 & 0xffff, 343u);
        r = get_feature(a, feature::temperature_threshold, under);
        EXPECT_OK(r);
        EXPECT_EQ(r.cq.dw0 & 0xffff, 0u);
        EXPECT_OK(set_feature(a, feature::temperature_threshold, 350));
        EXPECT_OK(set_feature(a, feature::temperature_threshold, under | 273));
        r = get_feature(a, feature::temperature_threshold, 0);
        EXPECT_EQ(r.cq.dw0 & 0xffff, 350u);
        r = get_feature(a, feature::temperature_threshold, under);
        EXPECT_EQ(r.cq.dw0 & 0xffff, 273u);
        // TMPSEL 0Fh: every sensor there is (the composite one).
        EXPECT_OK(set_feature(a, feature::temperature_threshold, (0xfu << 16) | 360));
        r = get_feature(a, feature::temperature_threshold, 0);
        EXPECT_EQ(r.cq.dw0 & 0xffff, 360u);
        // Sensor 1 does not exist; THSEL 2 and 3 are reserved.
        EXPECT_TRUE(is_invalid_field(set_feature(a, feature::temperature_threshold, (1u << 16) | 300)));
        EXPECT_TRUE(is_invalid_field(get_feature(a, feature::temperature_threshold, 1u << 16)));
        EXPECT_TRUE(is_invalid_field(get_feature(a, feature::temperature_threshold, 2u << 20)));
        EXPECT_TRUE(is_invalid_field(set_feature(a, feature::temperature_threshold, (3u << 20) | 300)));
        r = get_feature(a, feature::temperature_threshold, 0);
        EXPECT_EQ(r.cq.dw0 & 0xffff, 360u) << "a refused Set changed the threshold";

        // Error Recovery: TLER stored, DULBE (bit 16) refused.
        EXPECT_OK(set_feature(a, feature::error_recovery, 25));
        EXPECT_EQ(get_feature(a, feature::error_recovery).cq.dw0, 25u);
        EXPECT_TRUE(is_invalid_field(set_feature(a, feature::error_recovery, 1u << 16)));
        // A feature the target does not have (Interrupt Coalescing).
        EXPECT_TRUE(is_invalid_field(get_feature(a, 0x08)));

        // Features belong to the controller: a second one has the defaults.
        session s2 = open_admin(port);
        r = get_feature(*s2.admin, feature::arbitration);
        EXPECT_EQ(r.cq.dw0, 0x7u);
        r = get_feature(*s2.admin, feature::temperature_threshold, 0);
        EXPECT_EQ(r.cq.dw0 & 0xffff, 343u);
        r = get_feature(a, feature::arbitration);
        EXPECT_EQ(r.cq.dw0, arb);
    });
}

// ---- CATTR bit 2: SUCCESS in the last C2HData ---------------------------------

TEST(nvmf_target_cid, success_flag_reads_when_sq_flow_control_is_disabled) {
    with_target([](std::uint16_t port) {
        for (std::uint8_t dgst : {std::uint8_t{0}, std::uint8_t{tcp::dgst::header | tcp::dgst::data}}) {
            session s = open_admin(port, dgst);
            open_io(s, port, dgst, cattr_disable_sq_flow_control);
            host& io = *s.io;
            const auto data = pattern(1u << 20, 7 + dgst);
            sqe w = rw(io, nvm_opcode::write, 0, 2048);
            sgl_transport(w, 1u << 20);
            cmd_result wr = io.exec(w, {}, data);  // a write has no data for the host: CapsuleResp
            EXPECT_OK(wr);
            EXPECT_FALSE(wr.success_flag);
            // Reads of 1 block .. MDTS: one C2HData with SUCCESS each, no
            // CapsuleResp (exec() would throw on one for an earlier CID).
            for (std::uint32_t blocks : {1u, 8u, 128u, 2048u}) {
                cmd_result r = read_blocks(io, 0, blocks);
                EXPECT_OK(r);
                EXPECT_TRUE(r.success_flag) << blocks << " blocks";
                EXPECT_EQ(r.c2h_pdus, 1u);
                ASSERT_EQ(r.data.size(), std::size_t{blocks} * k_block);
                EXPECT_TRUE(std::equal(r.data.begin(), r.data.end(), data.begin())) << blocks << " blocks";
            }
            EXPECT_FALSE(io.readable_within(100ms)) << "a CapsuleResp after a SUCCESS C2HData";
            // A read that fails has no data: a CapsuleResp with the error.
            cmd_result oor = read_blocks(io, k_blocks, 1);
            EXPECT_EQ(sc_of(oor.cq), sc::lba_out_of_range);
            EXPECT_FALSE(oor.success_flag);
            EXPECT_TRUE(oor.data.empty());
            // Flush: CapsuleResp.
            cmd_result fl = io.exec(make_sqe(io, nvm_opcode::flush, 1));
            EXPECT_OK(fl);
            EXPECT_FALSE(fl.success_flag);
            // The admin queue connected without CATTR: C2HData then CapsuleResp.
            cmd_result idc = do_identify(*s.admin, cns::controller);
            EXPECT_OK(idc);
            EXPECT_FALSE(idc.success_flag);
            EXPECT_EQ(idc.data.size(), identify_bytes);

            // An I/O queue of another controller without CATTR: the normal way.
            session plain = open_admin(port, dgst);
            open_io(plain, port, dgst);
            cmd_result pr = read_blocks(*plain.io, 0, 8);
            EXPECT_OK(pr);
            EXPECT_FALSE(pr.success_flag);
            EXPECT_EQ(pr.c2h_pdus, 1u);
            EXPECT_TRUE(std::equal(pr.data.begin(), pr.data.end(), data.begin()));
            EXPECT_FALSE(plain.io->readable_within(50ms));
        }
    });
}
