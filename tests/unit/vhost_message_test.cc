// vhost/message: the vhost-user parser on byte strings. Every request this
// back-end serves parses with its payload and fds; each rule refuses what
// breaks it: short, over-long and truncated messages, versions and flags,
// unknown and unsupported requests, payload sizes, fd counts, queue
// indexes, ring sizes, bases, enables, memory tables and regions, config
// ranges and inflight descriptions.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "vhost/message.hh"

using namespace ioe;
using namespace ioe::vhost;
using ioe::vhost::user::request;

namespace {

constexpr std::uint32_t v1 = user::header_flags::version;

std::vector<std::byte> msg(request r, std::uint32_t flags, const void* payload, std::uint32_t size,
                           std::int64_t header_size = -1) {
    const user::msg_header h{static_cast<std::uint32_t>(r), flags,
                             header_size < 0 ? size : static_cast<std::uint32_t>(header_size)};
    std::vector<std::byte> b(sizeof(h) + size);
    std::memcpy(b.data(), &h, sizeof(h));
    if (size) std::memcpy(b.data() + sizeof(h), payload, size);
    return b;
}
std::vector<std::byte> msg(request r, const void* payload = nullptr, std::uint32_t size = 0) {
    return msg(r, v1, payload, size);
}
template <typename T>
std::vector<std::byte> msg_of(request r, const T& payload) {
    return msg(r, v1, &payload, sizeof(T));
}

std::vector<std::byte> mem_table(std::uint32_t n, std::uint32_t declared) {
    std::vector<std::byte> p(sizeof(user::memory_table_head) + n * sizeof(user::memory_region));
    const user::memory_table_head h{declared, 0};
    std::memcpy(p.data(), &h, sizeof(h));
    for (std::uint32_t i = 0; i < n; ++i) {
        const user::memory_region r{i * 0x100000ull, 0x100000, 0x7f0000000000ull + i * 0x100000ull, 0};
        std::memcpy(p.data() + sizeof(h) + i * sizeof(r), &r, sizeof(r));
    }
    return msg(request::set_mem_table, p.data(), static_cast<std::uint32_t>(p.size()));
}

class vhost_message : public ::testing::Test {
protected:
    message_error parse(const std::vector<std::byte>& bytes, std::vector<int> fds = {}) {
        return parse_message(bytes, fds, limits, m);
    }
    message_limits limits{2};
    message m;
};

}  // namespace

TEST_F(vhost_message, requests_without_payload) {
    for (request r : {request::get_features, request::set_owner, request::reset_owner, request::get_protocol_features,
                      request::get_queue_num, request::reset_device, request::get_max_mem_slots, request::get_status}) {
        ASSERT_EQ(parse(msg(r)), message_error::ok) << request_name(static_cast<std::uint32_t>(r));
        EXPECT_EQ(m.request, r);
        EXPECT_FALSE(m.need_reply);
        const std::uint64_t x = 0;
        EXPECT_EQ(parse(msg_of(r, x)), message_error::bad_payload_size);
        EXPECT_EQ(parse(msg(r), {5}), message_error::wrong_fd_count);
    }
}

TEST_F(vhost_message, u64_requests_and_need_reply) {
    const std::uint64_t features = 0x1'4000'0000ull;
    ASSERT_EQ(parse(msg(request::set_features, v1 | user::header_flags::need_reply, &features, 8)), message_error::ok);
    EXPECT_EQ(m.value, features);
    EXPECT_TRUE(m.need_reply);
    ASSERT_EQ(parse(msg_of(request::set_protocol_features, std::uint64_t{0x201})), message_error::ok);
    EXPECT_EQ(m.value, 0x201u);
    EXPECT_EQ(parse(msg(request::set_features, &features, 4)), message_error::bad_payload_size);
    EXPECT_EQ(parse(msg_of(request::set_status, features), {3}), message_error::wrong_fd_count);
}

TEST_F(vhost_message, header_rules) {
    const auto ok = msg(request::get_features);
    EXPECT_EQ(parse(std::vector<std::byte>(ok.begin(), ok.begin() + 11)), message_error::short_header);
    EXPECT_EQ(parse({}), message_error::short_header);
    EXPECT_EQ(parse(msg(request::get_features, 0, nullptr, 0)), message_error::bad_version);
    EXPECT_EQ(parse(msg(request::get_features, 2, nullptr, 0)), message_error::bad_version);
    EXPECT_EQ(parse(msg(request::get_features, v1 | user::header_flags::reply, nullptr, 0)), message_error::reply_flag);
    EXPECT_EQ(parse(msg(request::get_features, v1 | 0x10, nullptr, 0)), message_error::unknown_flags);
    EXPECT_EQ(parse(msg(request::get_features, v1 | 0x80000000u, nullptr, 0)), message_error::unknown_flags);

    // Over-long: refused on the header alone, before any payload is read.
    const user::msg_header big{1, v1, user::max_payload_bytes + 1};
    EXPECT_EQ(check_header(big), message_error::too_long);
    EXPECT_EQ(check_header(user::msg_header{1, v1, user::max_payload_bytes}), message_error::ok);
    std::vector<std::byte> huge(12 + user::max_payload_bytes + 1);
    std::memcpy(huge.data(), &big, sizeof(big));
    EXPECT_EQ(parse(huge), message_error::too_long);

    // Truncated payload, trailing bytes.
    const std::uint64_t x = 1;
    EXPECT_EQ(parse(msg(request::set_features, v1, &x, 8, 16)), message_error::size_mismatch);
    EXPECT_EQ(parse(msg(request::set_features, v1, &x, 8, 4)), message_error::size_mismatch);
}

TEST_F(vhost_message, unknown_and_unsupported_requests) {
    EXPECT_EQ(parse(msg(static_cast<request>(0))), message_error::unknown_request);
    EXPECT_EQ(parse(msg(static_cast<request>(44))), message_error::unknown_request);
    EXPECT_EQ(parse(msg(static_cast<request>(0xffffffffu))), message_error::unknown_request);
    for (request r : {request::set_log_base, request::set_log_fd, request::send_rarp, request::iotlb_msg,
                      request::set_vring_endian, request::postcopy_advise, request::gpu_set_socket,
                      request::set_device_state_fd})
        EXPECT_EQ(parse(msg(r)), message_error::unsupported_request) << static_cast<std::uint32_t>(r);
    EXPECT_EQ(request_name(5), "SET_MEM_TABLE");
    EXPECT_EQ(request_name(1000), "unknown");
}

TEST_F(vhost_message, vring_state_requests) {
    ASSERT_EQ(parse(msg_of(request::set_vring_num, user::vring_state{1, 256})), message_error::ok);
    EXPECT_EQ(m.queue, 1u);
    EXPECT_EQ(m.num, 256u);
    for (std::uint32_t n : {0u, 3u, 100u, 65536u, 32769u})
        EXPECT_EQ(parse(msg_of(request::set_vring_num, user::vring_state{0, n})), message_error::bad_ring_size) << n;
    EXPECT_EQ(parse(msg_of(request::set_vring_num, user::vring_state{0, 32768})), message_error::ok);
    EXPECT_EQ(parse(msg_of(request::set_vring_num, user::vring_state{2, 256})), message_error::queue_out_of_range);

    EXPECT_EQ(parse(msg_of(request::set_vring_base, user::vring_state{0, 0xffff})), message_error::ok);
    EXPECT_EQ(parse(msg_of(request::set_vring_base, user::vring_state{0, 0x10000})), message_error::bad_vring_base);
    ASSERT_EQ(parse(msg_of(request::get_vring_base, user::vring_state{1, 12345})), message_error::ok);
    EXPECT_EQ(m.queue, 1u);
    EXPECT_EQ(parse(msg_of(request::get_vring_base, user::vring_state{7, 0})), message_error::queue_out_of_range);
    EXPECT_EQ(parse(msg_of(request::set_vring_enable, user::vring_state{0, 1})), message_error::ok);
    EXPECT_EQ(parse(msg_of(request::set_vring_enable, user::vring_state{0, 2})), message_error::bad_enable);
    EXPECT_EQ(parse(msg_of(request::vring_kick, user::vring_state{1, 0})), message_error::ok);
    EXPECT_EQ(parse(msg(request::set_vring_num, nullptr, 0)), message_error::bad_payload_size);
    EXPECT_EQ(parse(msg_of(request::set_vring_num, user::vring_state{0, 8}), {4}), message_error::wrong_fd_count);
}

TEST_F(vhost_message, vring_addr) {
    const user::vring_addr a{1, 0, 0x7f0000001000, 0x7f0000003000, 0x7f0000002000, 0};
    ASSERT_EQ(parse(msg_of(request::set_vring_addr, a)), message_error::ok);
    EXPECT_EQ(m.queue, 1u);
    EXPECT_EQ(m.addr.desc, a.desc);
    EXPECT_EQ(m.addr.used, a.used);
    EXPECT_EQ(m.addr.avail, a.avail);
    auto b = a;
    b.index = 2;
    EXPECT_EQ(parse(msg_of(request::set_vring_addr, b)), message_error::queue_out_of_range);
    b = a;
    b.flags = user::vring_flag_log;
    EXPECT_EQ(parse(msg_of(request::set_vring_addr, b)), message_error::ok);
    b.flags = 2;
    EXPECT_EQ(parse(msg_of(request::set_vring_addr, b)), message_error::bad_vring_flags);
    EXPECT_EQ(parse(msg(request::set_vring_addr, &a, 32)), message_error::bad_payload_size);
}

TEST_F(vhost_message, vring_kick_call_err_fds) {
    for (request r : {request::set_vring_kick, request::set_vring_call, request::set_vring_err}) {
        ASSERT_EQ(parse(msg_of(r, std::uint64_t{1}), {9}), message_error::ok);
        EXPECT_EQ(m.queue, 1u);
        EXPECT_EQ(m.fd, 9);
        ASSERT_EQ(parse(msg_of(r, std::uint64_t{1 | user::vring_file_nofd})), message_error::ok);
        EXPECT_EQ(m.fd, -1);  // poll
        EXPECT_EQ(parse(msg_of(r, std::uint64_t{1})), message_error::wrong_fd_count);
        EXPECT_EQ(parse(msg_of(r, std::uint64_t{1 | user::vring_file_nofd}), {9}), message_error::wrong_fd_count);
        EXPECT_EQ(parse(msg_of(r, std::uint64_t{0}), {9, 10}), message_error::wrong_fd_count);
        EXPECT_EQ(parse(msg_of(r, std::uint64_t{2}), {9}), message_error::queue_out_of_range);
        EXPECT_EQ(parse(msg_of(r, std::uint64_t{0x200}), {9}), message_error::bad_vring_file);
    }
}

TEST_F(vhost_message, memory_table) {
    ASSERT_EQ(parse(mem_table(3, 3), {10, 11, 12}), message_error::ok);
    EXPECT_EQ(m.region_count, 3u);
    EXPECT_EQ(m.regions[2].guest_phys_addr, 0x200000u);
    EXPECT_EQ(m.regions[2].user_addr, 0x7f0000200000u);
    EXPECT_EQ(m.region_fds[1], 11);
    ASSERT_EQ(parse(mem_table(8, 8), {1, 2, 3, 4, 5, 6, 7, 8}), message_error::ok);

    EXPECT_EQ(parse(mem_table(2, 2), {10}), message_error::wrong_fd_count);
    EXPECT_EQ(parse(mem_table(2, 2), {10, 11, 12}), message_error::wrong_fd_count);
    EXPECT_EQ(parse(mem_table(2, 3), {10, 11, 12}), message_error::bad_payload_size);  // says 3, carries 2
    EXPECT_EQ(parse(mem_table(0, 0)), message_error::bad_region_count);
    EXPECT_EQ(parse(mem_table(8, 9), {1, 2, 3, 4, 5, 6, 7, 8}), message_error::bad_region_count);
    EXPECT_EQ(parse(msg(request::set_mem_table, nullptr, 0)), message_error::bad_payload_size);

    auto bad = mem_table(1, 1);
    user::memory_region r{0x1000, 0, 0x7f0000000000ull, 0};  // empty
    std::memcpy(bad.data() + 12 + 8, &r, sizeof(r));
    EXPECT_EQ(parse(bad, {10}), message_error::bad_region);
    r = user::memory_region{~0ull - 0xfff, 0x2000, 0x7f0000000000ull, 0};  // wraps
    std::memcpy(bad.data() + 12 + 8, &r, sizeof(r));
    EXPECT_EQ(parse(bad, {10}), message_error::bad_region);
}

TEST_F(vhost_message, add_and_remove_one_region) {
    const user::single_region s{0, {0x100000, 0x100000, 0x7f0000100000ull, 0x1000}};
    ASSERT_EQ(parse(msg_of(request::add_mem_reg, s), {7}), message_error::ok);
    EXPECT_EQ(m.region_count, 1u);
    EXPECT_EQ(m.regions[0].mmap_offset, 0x1000u);
    EXPECT_EQ(m.fd, 7);
    EXPECT_EQ(parse(msg_of(request::add_mem_reg, s)), message_error::wrong_fd_count);
    ASSERT_EQ(parse(msg_of(request::rem_mem_reg, s)), message_error::ok);
    EXPECT_EQ(m.fd, -1);
    ASSERT_EQ(parse(msg_of(request::rem_mem_reg, s), {7}), message_error::ok);  // old QEMU: closed unused
    EXPECT_EQ(m.fd, 7);
    EXPECT_EQ(parse(msg_of(request::rem_mem_reg, s), {7, 8}), message_error::wrong_fd_count);
    auto z = s;
    z.region.size = 0;
    EXPECT_EQ(parse(msg_of(request::add_mem_reg, z), {7}), message_error::bad_region);
    EXPECT_EQ(parse(msg(request::add_mem_reg, &s, 32), {7}), message_error::bad_payload_size);
}

TEST_F(vhost_message, config_space_access) {
    struct {
        user::config_head h;
        std::uint8_t data[60];
    } get{{0, 60, user::config_flags::writable}, {}};
    ASSERT_EQ(parse(msg(request::get_config, v1, &get, sizeof(get))), message_error::ok);
    EXPECT_EQ(m.config.size, 60u);

    struct {
        user::config_head h;
        std::uint8_t data[1];
    } set{{32, 1, user::config_flags::writable}, {1}};
    ASSERT_EQ(parse(msg(request::set_config, v1, &set, 13)), message_error::ok);
    EXPECT_EQ(m.config.offset, 32u);
    EXPECT_EQ(m.config_data[0], 1);

    struct {
        user::config_head h;
        std::uint8_t data[256];
    } full{{0, 256, user::config_flags::migration}, {}};
    EXPECT_EQ(parse(msg(request::get_config, v1, &full, sizeof(full))), message_error::ok);
    full.h = {1, 256, 0};  // offset + size past 256
    EXPECT_EQ(parse(msg(request::get_config, v1, &full, sizeof(full))), message_error::bad_config);
    full.h = {0, 0, 0};  // empty
    EXPECT_EQ(parse(msg(request::get_config, v1, &full, 12)), message_error::bad_config);
    full.h = {0, 16, 2};  // unknown flags
    EXPECT_EQ(parse(msg(request::get_config, v1, &full, 28)), message_error::bad_config);
    full.h = {0, 16, 0};  // says 16, carries 20
    EXPECT_EQ(parse(msg(request::get_config, v1, &full, 32)), message_error::bad_payload_size);
    EXPECT_EQ(parse(msg(request::get_config, v1, &full, 8)), message_error::bad_payload_size);
    full.h = {0xffffff00u, 0x200, 0};  // offset + size would wrap
    EXPECT_EQ(parse(msg(request::get_config, v1, &full, 12)), message_error::bad_config);
}

TEST_F(vhost_message, inflight_fd) {
    user::inflight f{};
    f.num_queues = 2;
    f.queue_size = 128;
    ASSERT_EQ(parse(msg_of(request::get_inflight_fd, f)), message_error::ok);
    EXPECT_EQ(m.inflight.queue_size, 128);
    EXPECT_EQ(parse(msg_of(request::get_inflight_fd, f), {3}), message_error::wrong_fd_count);
    EXPECT_EQ(parse(msg_of(request::set_inflight_fd, f), {3}), message_error::bad_inflight);  // mmap size 0
    f.mmap_size = 8192;
    ASSERT_EQ(parse(msg_of(request::set_inflight_fd, f), {3}), message_error::ok);
    EXPECT_EQ(m.fd, 3);
    EXPECT_EQ(parse(msg_of(request::set_inflight_fd, f)), message_error::wrong_fd_count);
    f.num_queues = 3;
    EXPECT_EQ(parse(msg_of(request::get_inflight_fd, f)), message_error::bad_inflight);
    f.num_queues = 0;
    EXPECT_EQ(parse(msg_of(request::get_inflight_fd, f)), message_error::bad_inflight);
    f.num_queues = 1;
    f.queue_size = 100;
    EXPECT_EQ(parse(msg_of(request::get_inflight_fd, f)), message_error::bad_inflight);
    EXPECT_EQ(parse(msg(request::get_inflight_fd, &f, 20)), message_error::bad_payload_size);  // packed size
}

TEST_F(vhost_message, backend_req_fd) {
    ASSERT_EQ(parse(msg(request::set_backend_req_fd), {4}), message_error::ok);
    EXPECT_EQ(m.fd, 4);
    EXPECT_EQ(parse(msg(request::set_backend_req_fd)), message_error::wrong_fd_count);
}

TEST_F(vhost_message, errors_have_messages) {
    for (int e = 0; e <= static_cast<int>(message_error::bad_inflight); ++e)
        EXPECT_FALSE(to_string(static_cast<message_error>(e)).empty());
}
