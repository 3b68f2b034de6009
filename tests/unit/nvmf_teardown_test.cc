// Teardown under I/O and reconnecting hosts: a subsystem removed while a
// read is held at the device ends the connection (the host never sees
// Invalid Namespace with DNR for I/O it issued correctly); a host whose old
// controller died with a write still at the device gets its new controller
// only once that write finished (docs/nvmf.md, "Reservations": a
// reconnecting host), while another host connects at once.
#include <gtest/gtest.h>

#include <chrono>

#include "tests/unit/nvmf_test_host.hh"

namespace ioe::nvme {
namespace {

using namespace test_host;
using namespace std::chrono_literals;

TEST(nvmf_teardown, subsystem_removed_under_a_held_read_closes_first) {
    target_options opts;
    opts.fault_namespace = true;
    with_target(opts, [](std::uint16_t port, target_control& ctl) {
        session s = open_admin(port);
        open_io(s, port);
        ctl.run([&ctl](nvmf_target&, device_registry&) -> future<> {
            co_await ctl.faults->add_rule(fault_rule::delay_by(op_mask::read, 800ms).on_blocks(900, 901));
        });
        sqe r = rw(*s.io, nvm_opcode::read, 900, 1);
        sgl_transport(r, k_block);
        s.io->send_capsule(r, {});
        std::this_thread::sleep_for(100ms);
        ctl.run([](nvmf_target& t, device_registry&) -> future<> { co_await t.remove_subsystem(k_subnqn); });
        // Either the connection is gone, or an answer that is not a DNR
        // Invalid Namespace (a path status the host retries elsewhere).
        try {
            for (;;) {
                pdu p = s.io->recv_pdu();
                if (p.type() != tcp::pdu_type::capsule_resp) continue;
                const cqe c = p.as<tcp::capsule_resp>().rccqe;
                EXPECT_FALSE(sct_of(c) == sct::generic && sc_of(c) == sc::invalid_namespace_or_format)
                    << "Invalid Namespace for a read issued to a namespace that existed";
                if (!status_ok(c.status)) EXPECT_FALSE(status_dnr(c.status)) << "sct " << int(sct_of(c)) << " sc " << int(sc_of(c));
            }
        } catch (const std::exception&) {
            // the target closed the connection: what we want
        }
    });
}

TEST(nvmf_teardown, reconnecting_host_waits_for_its_old_write) {
    target_options opts;
    opts.fault_namespace = true;
    with_target(opts, [](std::uint16_t port, target_control& ctl) {
        session old = open_admin(port, 0, k_good_host, 0x51);
        open_io(old, port);
        ctl.run([&ctl](nvmf_target&, device_registry&) -> future<> {
            co_await ctl.faults->add_rule(fault_rule::delay_by(op_mask::write, 1500ms).on_blocks(800, 801));
        });
        auto data = pattern(k_block, 9);
        sqe w = rw(*old.io, nvm_opcode::write, 800, 1);
        sgl_in_capsule(w, k_block);
        old.io->send_capsule(w, data);
        std::this_thread::sleep_for(100ms);
        const auto t0 = std::chrono::steady_clock::now();
        old.io->close_now();
        old.admin->close_now();  // the host's connections drop with the write at the device
        // Another host is not held up.
        session other = open_admin(port, 0, k_other_host, 0x52);
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);
        // The same host (same HOSTID) gets its controller once the write is done.
        session again = open_admin(port, 0, k_good_host, 0x51);
        const auto took = std::chrono::steady_clock::now() - t0;
        EXPECT_GE(took, 1300ms) << "a new controller was created while the old one's write still ran";
        open_io(again, port);
        check_alive(again, 10, 4);
    });
}

}  // namespace
}  // namespace ioe::nvme
