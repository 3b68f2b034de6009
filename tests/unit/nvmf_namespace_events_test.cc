// The NVMe/TCP target's configuration at run time, seen by a connected host:
// a namespace added or removed while a controller is connected answers its
// held Asynchronous Event Request (Namespace Attribute Changed, log page
// 04h), the Changed Namespace List names it and unmasks the next event,
// Identify and I/O see the new table; the AER limit; a removed subsystem
// disconnects its hosts and refuses new Connects; configuration errors
// carry their storage_errc.
#include "storage/errors.hh"
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
    h.held_cids.push_back(a.cid);
    h.send_capsule(a, {});
    return a.cid;
}

// Get Log Page 04h (Changed Namespace List): the listed NSIDs.
std::vector<std::uint32_t> changed_namespaces(host& h) {
    sqe s = make_sqe(h, admin_opcode::get_log_page);
    s.cdw10 = log_page::changed_namespace_list | (1023u << 16);  // 4096 bytes
    sgl_transport(s, 4096);
    cmd_result r = h.exec(s);
    EXPECT_OK(r);
    std::vector<std::uint32_t> ids;
    for (std::size_t off = 0; off + 4 <= r.data.size(); off += 4) {
        std::uint32_t v;
        std::memcpy(&v, r.data.data() + off, 4);
        if (v == 0) break;
        ids.push_back(v);
    }
    return ids;
}

std::vector<std::uint32_t> active_namespaces(host& h) {
    cmd_result r = do_identify(h, cns::active_namespace_list);
    EXPECT_OK(r);
    std::vector<std::uint32_t> ids;
    for (std::size_t off = 0; off + 4 <= r.data.size(); off += 4) {
        std::uint32_t v;
        std::memcpy(&v, r.data.data() + off, 4);
        if (v == 0) break;
        ids.push_back(v);
    }
    return ids;
}

cmd_result write_ns(host& h, std::uint32_t nsid, std::uint64_t lba, std::span<const std::byte> data) {
    sqe w = rw(h, nvm_opcode::write, lba, static_cast<std::uint32_t>(data.size() / k_block));
    w.nsid = nsid;
    sgl_in_capsule(w, static_cast<std::uint32_t>(data.size()));
    return h.exec(w, data);
}

cmd_result read_ns(host& h, std::uint32_t nsid, std::uint64_t lba, std::uint32_t blocks) {
    sqe r = rw(h, nvm_opcode::read, lba, blocks);
    r.nsid = nsid;
    sgl_transport(r, blocks * k_block);
    return h.exec(r);
}

// The storage_errc a configuration call failed with (nullopt: it did not).
std::optional<storage_errc> config_error(target_control& ctl, target_control::job fn) {
    try {
        ctl.run(std::move(fn));
    } catch (const storage_error& e) {
        return e.code;
    }
    return std::nullopt;
}

}  // namespace

TEST(nvmf_namespace_events, add_and_remove_namespace_report_events) {
    with_target([](std::uint16_t port, target_control& ctl) {
        session s = open_admin(port);
        open_io(s, port);
        sqe aec = make_sqe(*s.admin, admin_opcode::set_features);
        aec.cdw10 = feature::async_event_configuration;
        aec.cdw11 = 1u << 8;  // namespace attribute notices
        EXPECT_OK(s.admin->exec(aec));
        const std::uint16_t aer1 = send_aer(*s.admin);
        EXPECT_EQ(active_namespaces(*s.admin), (std::vector<std::uint32_t>{1}));

        // Add a second namespace (a 4 MiB malloc device).
        std::uint32_t nsid = 0;
        ctl.run([&nsid](nvmf_target& t, device_registry& d) -> future<> {
            block_device* dev = co_await d.create("malloc:///ns2?size_mb=4&blk_size=512");
            nsid = co_await t.add_namespace(k_subnqn, dev);
        });
        EXPECT_EQ(nsid, 2u);
        cqe ev = s.admin->wait_held(aer1);
        EXPECT_TRUE(status_ok(ev.status));
        EXPECT_EQ(ev.dw0, k_aen_ns_changed);
        EXPECT_EQ(changed_namespaces(*s.admin), (std::vector<std::uint32_t>{2}));
        EXPECT_TRUE(changed_namespaces(*s.admin).empty()) << "reading log page 04h clears it";
        EXPECT_EQ(active_namespaces(*s.admin), (std::vector<std::uint32_t>{1, 2}));
        cmd_result idn = do_identify(*s.admin, cns::namespace_data, 2);
        ASSERT_TRUE(is_ok(idn));
        identify_namespace ns{};
        std::memcpy(&ns, idn.data.data(), sizeof ns);
        EXPECT_EQ(ns.nsze, 4ull * 1024 * 1024 / k_block);

        // I/O on the new namespace, and namespace 1 is untouched by it.
        auto data = pattern(4 * k_block, 11);
        EXPECT_OK(write_ns(*s.io, 2, 100, data));
        cmd_result back = read_ns(*s.io, 2, 100, 4);
        EXPECT_OK(back);
        EXPECT_TRUE(back.data == data);
        check_alive(s, 5, 3);

        // Remove namespace 1: the next event, and I/O to it is refused.
        const std::uint16_t aer2 = send_aer(*s.admin);
        ctl.run([](nvmf_target& t, device_registry&) -> future<> { co_await t.remove_namespace(k_subnqn, 1); });
        ev = s.admin->wait_held(aer2);
        EXPECT_EQ(ev.dw0, k_aen_ns_changed);
        EXPECT_EQ(changed_namespaces(*s.admin), (std::vector<std::uint32_t>{1}));
        EXPECT_EQ(active_namespaces(*s.admin), (std::vector<std::uint32_t>{2}));
        cmd_result gone = read_ns(*s.io, 1, 0, 1);
        EXPECT_EQ(sct_of(gone.cq), sct::generic);
        EXPECT_EQ(sc_of(gone.cq), sc::invalid_namespace_or_format);
        cmd_result idn1 = do_identify(*s.admin, cns::namespace_data, 1);
        ASSERT_TRUE(is_ok(idn1));
        EXPECT_TRUE(all_zero(idn1.data)) << "an inactive namespace identifies as zeros";

        // Two changes before the log is read: one event, both IDs listed
        // (the event stays masked until the log page is read).
        const std::uint16_t aer3 = send_aer(*s.admin);
        ctl.run([](nvmf_target& t, device_registry& d) -> future<> {
            block_device* dev = co_await d.create("malloc:///ns3?size_mb=1&blk_size=512");
            EXPECT_EQ(co_await t.add_namespace(k_subnqn, dev), 1u) << "the lowest free NSID is reused";
            co_await t.remove_namespace(k_subnqn, 2);
        });
        ev = s.admin->wait_held(aer3);
        EXPECT_EQ(ev.dw0, k_aen_ns_changed);
        auto listed = changed_namespaces(*s.admin);
        std::sort(listed.begin(), listed.end());
        EXPECT_EQ(listed, (std::vector<std::uint32_t>{1, 2}));
        EXPECT_EQ(active_namespaces(*s.admin), (std::vector<std::uint32_t>{1}));

        // At most four requests are held; a fifth is refused.
        for (int i = 0; i < 4; ++i) send_aer(*s.admin);
        cmd_result fifth = s.admin->exec(make_sqe(*s.admin, admin_opcode::async_event_request));
        EXPECT_EQ(sct_of(fifth.cq), sct::command_specific);
        EXPECT_EQ(sc_of(fifth.cq), sc_specific::async_event_request_limit_exceeded);
        check_alive(s, 7, 4);
    });
}

TEST(nvmf_namespace_events, events_stay_off_until_enabled) {
    with_target([](std::uint16_t port, target_control& ctl) {
        session s = open_admin(port);
        const std::uint16_t aer = send_aer(*s.admin);
        ctl.run([](nvmf_target& t, device_registry& d) -> future<> {
            block_device* dev = co_await d.create("malloc:///ns2?size_mb=1&blk_size=512");
            co_await t.add_namespace(k_subnqn, dev);
        });
        // Not enabled (AEC bit 8 clear): the request stays held, the list
        // still records the change.
        cmd_result ka = s.admin->exec(make_sqe(*s.admin, admin_opcode::keep_alive));
        EXPECT_OK(ka);
        EXPECT_TRUE(s.admin->held_completions.empty());
        // Enabling it reports the pending event at once.
        sqe aec = make_sqe(*s.admin, admin_opcode::set_features);
        aec.cdw10 = feature::async_event_configuration;
        aec.cdw11 = 1u << 8;
        EXPECT_OK(s.admin->exec(aec));
        const std::uint16_t aer2 = send_aer(*s.admin);
        cqe ev = s.admin->wait_held(aer);
        EXPECT_EQ(ev.dw0, k_aen_ns_changed);
        EXPECT_EQ(changed_namespaces(*s.admin), (std::vector<std::uint32_t>{2}));
        (void)aer2;
    });
}

TEST(nvmf_namespace_events, subsystems_at_run_time) {
    with_target([](std::uint16_t port, target_control& ctl) {
        session s = open_admin(port);
        open_io(s, port);

        // A second subsystem added while the target runs: reachable at once,
        // listed, and in the discovery log generation.
        const std::string nqn2 = "nqn.2026-11.io.ioengine:second";
        std::uint64_t gen_before = 0, gen_after = 0;
        ctl.run([&](nvmf_target& t, device_registry& d) -> future<> {
            gen_before = t.discovery_generation();
            subsystem_config c;
            c.nqn = nqn2;
            c.serial = "second01";
            c.allowed_hosts = {k_good_host};
            c.namespaces.push_back(co_await d.create("malloc:///second?size_mb=1&blk_size=512"));
            co_await t.add_subsystem(std::move(c));
            gen_after = t.discovery_generation();
            auto subs = t.subsystems();
            EXPECT_EQ(subs.size(), 2u);
            if (subs.size() == 2) {
                EXPECT_EQ(subs[1].nqn, nqn2);
                EXPECT_EQ(subs[1].serial, "second01");
                EXPECT_EQ(subs[1].namespaces.size(), 1u);
                if (!subs[1].namespaces.empty()) {
                    EXPECT_EQ(subs[1].namespaces[0].nsid, 1u);
                    EXPECT_EQ(subs[1].namespaces[0].device, "second");
                }
                EXPECT_EQ(subs[1].allowed_hosts, (std::vector<std::string>{k_good_host}));
            }
            auto hosts = t.connected_hosts();
            EXPECT_EQ(hosts.size(), 1u);
            if (!hosts.empty()) {
                EXPECT_EQ(hosts[0].cntlid, s.cntlid);
                EXPECT_EQ(hosts[0].hostnqn, k_good_host);
                EXPECT_EQ(hosts[0].subnqn, k_subnqn);
                EXPECT_EQ(hosts[0].io_queues, 1u);
            }
        });
        EXPECT_GT(gen_after, gen_before);
        host second(port);
        second.icreq();
        EXPECT_OK(nvmf_connect(second, 0, 0xffff, k_good_host, nqn2));

        // Allowed hosts changed: a new Connect by another host is refused.
        ctl.run([&](nvmf_target& t, device_registry&) -> future<> {
            co_await t.set_allowed_hosts(nqn2, {"nqn.host:other"});
        });
        host refused(port);
        refused.icreq();
        cmd_result r = nvmf_connect(refused, 0, 0xffff, k_good_host, nqn2);
        EXPECT_EQ(sc_of(r.cq), sc_specific::connect_invalid_host);

        // Configuration errors carry their codes.
        EXPECT_EQ(config_error(ctl, [&](nvmf_target& t, device_registry&) -> future<> {
                      subsystem_config c;
                      c.nqn = nqn2;
                      co_await t.add_subsystem(std::move(c));
                  }),
                  storage_errc::already_exists);
        EXPECT_EQ(config_error(ctl, [](nvmf_target& t, device_registry&) -> future<> {
                      subsystem_config c;
                      c.nqn = "not-an-nqn";
                      co_await t.add_subsystem(std::move(c));
                  }),
                  storage_errc::invalid_argument);
        EXPECT_EQ(config_error(ctl, [](nvmf_target& t, device_registry&) -> future<> {
                      subsystem_config c;
                      c.nqn = discovery_nqn;
                      co_await t.add_subsystem(std::move(c));
                  }),
                  storage_errc::invalid_argument);
        EXPECT_EQ(config_error(ctl, [](nvmf_target& t, device_registry&) -> future<> {
                      co_await t.remove_subsystem("nqn.2026-11.io.ioengine:none");
                  }),
                  storage_errc::not_found);
        EXPECT_EQ(config_error(ctl, [](nvmf_target& t, device_registry&) -> future<> {
                      co_await t.remove_namespace(k_subnqn, 9);
                  }),
                  storage_errc::not_found);

        // Removing the first subsystem disconnects its host (both queues)
        // and refuses new Connects to it; the second stays up.
        ctl.run([](nvmf_target& t, device_registry&) -> future<> { co_await t.remove_subsystem(k_subnqn); });
        EXPECT_TRUE(s.admin->peer_closed());
        EXPECT_TRUE(s.io->peer_closed());
        host again(port);
        again.icreq();
        cmd_result none = nvmf_connect(again, 0, 0xffff, k_good_host, k_subnqn);
        EXPECT_EQ(sc_of(none.cq), sc_specific::connect_invalid_parameters);
        cmd_result ka = second.exec(make_sqe(second, admin_opcode::keep_alive));
        EXPECT_OK(ka);
    });
}

// The discovery controller holds Asynchronous Event Requests (it used to
// refuse them, and SPDK's host resubmits a refused one at once) and, when
// the host enabled Discovery Log Page Change notices (AEC bit 31), answers
// one when a subsystem is added; the notice stays masked until log page 70h
// is read.
TEST(nvmf_namespace_events, discovery_log_change_notice) {
    with_target([](std::uint16_t port, target_control& ctl) {
        host d(port);
        d.icreq();
        ASSERT_TRUE(is_ok(nvmf_connect(d, 0, 0xffff, k_good_host, discovery_nqn)));
        EXPECT_OK(property_set(d, property::cc, cc::en | (6u << 16) | (4u << 20)));
        sqe aec = make_sqe(d, admin_opcode::set_features);
        aec.cdw10 = feature::async_event_configuration;
        aec.cdw11 = 1u << 31;
        EXPECT_OK(d.exec(aec));
        const std::uint16_t aer = send_aer(d);
        cmd_result ka = d.exec(make_sqe(d, admin_opcode::keep_alive));
        EXPECT_OK(ka);
        EXPECT_TRUE(d.held_completions.empty()) << "held, not refused";
        ctl.run([](nvmf_target& t, device_registry& reg) -> future<> {
            subsystem_config c;
            c.nqn = "nqn.2026-11.io.ioengine:later";
            c.namespaces.push_back(co_await reg.create("malloc:///later?size_mb=1&blk_size=512"));
            co_await t.add_subsystem(std::move(c));
        });
        cqe ev = d.wait_held(aer);
        EXPECT_TRUE(status_ok(ev.status));
        EXPECT_EQ(ev.dw0, 0x0070f002u);  // notice, discovery log page change, log 70h
    });
}
