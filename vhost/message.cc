// The vhost-user control message parser (see message.hh for the rules).
#include "vhost/message.hh"

#include <cstring>

#include "vhost/spec/virtio_ring.hh"

namespace ioe::vhost {

namespace {

using user::request;

// What a request carries, beyond its id.
enum class shape : std::uint8_t {
    unsupported,  // known, not served
    empty,        // no payload, no fd
    u64,          // 8-byte value
    state,        // vring_state of one queue
    addr,         // vring_addr
    vring_file,   // u64 index + no-fd bit, fd unless no-fd
    fd_only,      // no payload, one fd
    mem_table,    // memory table, one fd per region
    config,       // config head + bytes
    inflight,     // inflight description (fd: see request)
    region,       // single region (fd: see request)
};

struct request_info {
    std::string_view name;
    shape kind;
};

constexpr request_info infos[user::last_request_id + 1] = {
    {"NONE", shape::unsupported},
    {"GET_FEATURES", shape::empty},
    {"SET_FEATURES", shape::u64},
    {"SET_OWNER", shape::empty},
    {"RESET_OWNER", shape::empty},
    {"SET_MEM_TABLE", shape::mem_table},
    {"SET_LOG_BASE", shape::unsupported},
    {"SET_LOG_FD", shape::unsupported},
    {"SET_VRING_NUM", shape::state},
    {"SET_VRING_ADDR", shape::addr},
    {"SET_VRING_BASE", shape::state},
    {"GET_VRING_BASE", shape::state},
    {"SET_VRING_KICK", shape::vring_file},
    {"SET_VRING_CALL", shape::vring_file},
    {"SET_VRING_ERR", shape::vring_file},
    {"GET_PROTOCOL_FEATURES", shape::empty},
    {"SET_PROTOCOL_FEATURES", shape::u64},
    {"GET_QUEUE_NUM", shape::empty},
    {"SET_VRING_ENABLE", shape::state},
    {"SEND_RARP", shape::unsupported},
    {"NET_SET_MTU", shape::unsupported},
    {"SET_BACKEND_REQ_FD", shape::fd_only},
    {"IOTLB_MSG", shape::unsupported},
    {"SET_VRING_ENDIAN", shape::unsupported},
    {"GET_CONFIG", shape::config},
    {"SET_CONFIG", shape::config},
    {"CREATE_CRYPTO_SESSION", shape::unsupported},
    {"CLOSE_CRYPTO_SESSION", shape::unsupported},
    {"POSTCOPY_ADVISE", shape::unsupported},
    {"POSTCOPY_LISTEN", shape::unsupported},
    {"POSTCOPY_END", shape::unsupported},
    {"GET_INFLIGHT_FD", shape::inflight},
    {"SET_INFLIGHT_FD", shape::inflight},
    {"GPU_SET_SOCKET", shape::unsupported},
    {"RESET_DEVICE", shape::empty},
    {"VRING_KICK", shape::state},
    {"GET_MAX_MEM_SLOTS", shape::empty},
    {"ADD_MEM_REG", shape::region},
    {"REM_MEM_REG", shape::region},
    {"SET_STATUS", shape::u64},
    {"GET_STATUS", shape::empty},
    {"GET_SHARED_OBJECT", shape::unsupported},
    {"SET_DEVICE_STATE_FD", shape::unsupported},
    {"CHECK_DEVICE_STATE", shape::unsupported},
};

template <typename T>
T read_as(std::span<const std::byte> payload) noexcept {
    T v;
    std::memcpy(&v, payload.data(), sizeof(T));
    return v;
}

message_error expect(std::span<const std::byte> payload, std::size_t bytes, std::span<const int> fds,
                     std::size_t nfds) noexcept {
    if (payload.size() != bytes) return message_error::bad_payload_size;
    if (fds.size() != nfds) return message_error::wrong_fd_count;
    return message_error::ok;
}

bool region_ok(const user::memory_region& r) noexcept {
    std::uint64_t end = 0;
    return r.size != 0 && !__builtin_add_overflow(r.guest_phys_addr, r.size - 1, &end) &&
           !__builtin_add_overflow(r.user_addr, r.size - 1, &end) &&
           !__builtin_add_overflow(r.mmap_offset, r.size - 1, &end);
}

message_error parse_state(std::span<const std::byte> payload, std::span<const int> fds, const message_limits& limits,
                          message& m) noexcept {
    if (auto e = expect(payload, sizeof(user::vring_state), fds, 0); e != message_error::ok) return e;
    const auto s = read_as<user::vring_state>(payload);
    if (s.index >= limits.num_queues) return message_error::queue_out_of_range;
    m.queue = s.index;
    m.num = s.num;
    switch (m.request) {
    case request::set_vring_num:
        if (!virtio::valid_queue_size(s.num)) return message_error::bad_ring_size;
        break;
    case request::set_vring_base:
        if (s.num > 0xffff) return message_error::bad_vring_base;
        break;
    case request::set_vring_enable:
        if (s.num > 1) return message_error::bad_enable;
        break;
    default:  // GET_VRING_BASE, VRING_KICK: num unused
        break;
    }
    return message_error::ok;
}

message_error parse_vring_file(std::span<const std::byte> payload, std::span<const int> fds,
                               const message_limits& limits, message& m) noexcept {
    if (payload.size() != sizeof(std::uint64_t)) return message_error::bad_payload_size;
    const auto v = read_as<std::uint64_t>(payload);
    if ((v & ~(user::vring_file_index_mask | user::vring_file_nofd)) != 0) return message_error::bad_vring_file;
    const bool nofd = (v & user::vring_file_nofd) != 0;
    if (fds.size() != (nofd ? 0u : 1u)) return message_error::wrong_fd_count;
    if ((v & user::vring_file_index_mask) >= limits.num_queues) return message_error::queue_out_of_range;
    m.queue = static_cast<std::uint32_t>(v & user::vring_file_index_mask);
    m.fd = nofd ? -1 : fds[0];
    return message_error::ok;
}

message_error parse_mem_table(std::span<const std::byte> payload, std::span<const int> fds, message& m) noexcept {
    if (payload.size() < sizeof(user::memory_table_head)) return message_error::bad_payload_size;
    const auto head = read_as<user::memory_table_head>(payload);
    if (head.num_regions == 0 || head.num_regions > user::max_mem_table_regions) return message_error::bad_region_count;
    const std::size_t bytes = sizeof(head) + std::size_t{head.num_regions} * sizeof(user::memory_region);
    if (auto e = expect(payload, bytes, fds, head.num_regions); e != message_error::ok) return e;
    m.region_count = head.num_regions;
    for (std::uint32_t i = 0; i < head.num_regions; ++i) {
        m.regions[i] = read_as<user::memory_region>(payload.subspan(sizeof(head) + i * sizeof(user::memory_region)));
        if (!region_ok(m.regions[i])) return message_error::bad_region;
        m.region_fds[i] = fds[i];
    }
    return message_error::ok;
}

message_error parse_config(std::span<const std::byte> payload, std::span<const int> fds, message& m) noexcept {
    if (payload.size() < sizeof(user::config_head)) return message_error::bad_payload_size;
    const auto c = read_as<user::config_head>(payload);
    if (c.size == 0 || c.size > user::max_config_bytes || c.offset > user::max_config_bytes - c.size)
        return message_error::bad_config;
    if (c.flags != user::config_flags::writable && c.flags != user::config_flags::migration)
        return message_error::bad_config;
    if (auto e = expect(payload, sizeof(c) + c.size, fds, 0); e != message_error::ok) return e;
    m.config = c;
    if (m.request == request::set_config) std::memcpy(m.config_data.data(), payload.data() + sizeof(c), c.size);
    return message_error::ok;
}

message_error parse_inflight(std::span<const std::byte> payload, std::span<const int> fds,
                             const message_limits& limits, message& m) noexcept {
    const bool set = m.request == request::set_inflight_fd;
    if (auto e = expect(payload, sizeof(user::inflight), fds, set ? 1 : 0); e != message_error::ok) return e;
    m.inflight = read_as<user::inflight>(payload);
    const auto& f = m.inflight;
    if (f.num_queues == 0 || f.num_queues > limits.num_queues || !virtio::valid_queue_size(f.queue_size))
        return message_error::bad_inflight;
    if (set && f.mmap_size == 0) return message_error::bad_inflight;
    if (set) m.fd = fds[0];
    return message_error::ok;
}

message_error parse_region(std::span<const std::byte> payload, std::span<const int> fds, message& m) noexcept {
    if (payload.size() != sizeof(user::single_region)) return message_error::bad_payload_size;
    // ADD_MEM_REG: exactly one fd. REM_MEM_REG: none, or one (old QEMU) that
    // the caller closes without using it.
    const bool add = m.request == request::add_mem_reg;
    if (add ? fds.size() != 1 : fds.size() > 1) return message_error::wrong_fd_count;
    m.regions[0] = read_as<user::single_region>(payload).region;
    if (!region_ok(m.regions[0])) return message_error::bad_region;
    m.region_count = 1;
    m.fd = fds.empty() ? -1 : fds[0];
    return message_error::ok;
}

}  // namespace

std::string_view to_string(message_error e) noexcept {
    switch (e) {
    case message_error::ok: return "ok";
    case message_error::short_header: return "message shorter than its header";
    case message_error::bad_version: return "unknown protocol version";
    case message_error::reply_flag: return "request carries the reply flag";
    case message_error::unknown_flags: return "unknown header flags";
    case message_error::too_long: return "payload too long";
    case message_error::size_mismatch: return "payload length differs from the header's size";
    case message_error::unknown_request: return "unknown request";
    case message_error::unsupported_request: return "request not supported";
    case message_error::bad_payload_size: return "wrong payload size for the request";
    case message_error::wrong_fd_count: return "wrong number of file descriptors for the request";
    case message_error::queue_out_of_range: return "queue index out of range";
    case message_error::bad_ring_size: return "ring size not a power of two in 1..32768";
    case message_error::bad_vring_flags: return "unknown vring address flags";
    case message_error::bad_vring_file: return "reserved bits set in a vring fd message";
    case message_error::bad_vring_base: return "vring base above 65535";
    case message_error::bad_enable: return "vring enable neither 0 nor 1";
    case message_error::bad_region_count: return "memory table with 0 or more than 8 regions";
    case message_error::bad_region: return "memory region empty or passing the end of the address space";
    case message_error::bad_config: return "config access out of range or with unknown flags";
    case message_error::bad_inflight: return "inflight description out of range";
    }
    return "unknown message error";
}

std::string_view request_name(std::uint32_t id) noexcept {
    return id <= user::last_request_id ? infos[id].name : std::string_view("unknown");
}

message_error check_header(const user::msg_header& h) noexcept {
    if ((h.flags & user::header_flags::version_mask) != user::header_flags::version) return message_error::bad_version;
    if (h.flags & user::header_flags::reply) return message_error::reply_flag;
    if (h.flags & ~user::header_flags::known) return message_error::unknown_flags;
    if (h.size > user::max_payload_bytes) return message_error::too_long;
    return message_error::ok;
}

message_error parse_message(std::span<const std::byte> bytes, std::span<const int> fds, const message_limits& limits,
                            message& m) noexcept {
    m = message{};
    if (bytes.size() < sizeof(user::msg_header)) return message_error::short_header;
    const auto h = read_as<user::msg_header>(bytes);
    if (auto e = check_header(h); e != message_error::ok) return e;
    const auto payload = bytes.subspan(sizeof(h));
    if (payload.size() != h.size) return message_error::size_mismatch;
    if (h.request == 0 || h.request > user::last_request_id) return message_error::unknown_request;
    m.request = static_cast<request>(h.request);
    m.need_reply = (h.flags & user::header_flags::need_reply) != 0;
    switch (infos[h.request].kind) {
    case shape::unsupported:
        return message_error::unsupported_request;
    case shape::empty:
        return expect(payload, 0, fds, 0);
    case shape::u64:
        if (auto e = expect(payload, sizeof(std::uint64_t), fds, 0); e != message_error::ok) return e;
        m.value = read_as<std::uint64_t>(payload);
        return message_error::ok;
    case shape::state:
        return parse_state(payload, fds, limits, m);
    case shape::addr: {
        if (auto e = expect(payload, sizeof(user::vring_addr), fds, 0); e != message_error::ok) return e;
        m.addr = read_as<user::vring_addr>(payload);
        if (m.addr.index >= limits.num_queues) return message_error::queue_out_of_range;
        if (m.addr.flags & ~user::vring_flag_log) return message_error::bad_vring_flags;
        m.queue = m.addr.index;
        return message_error::ok;
    }
    case shape::vring_file:
        return parse_vring_file(payload, fds, limits, m);
    case shape::fd_only:
        if (auto e = expect(payload, 0, fds, 1); e != message_error::ok) return e;
        m.fd = fds[0];
        return message_error::ok;
    case shape::mem_table:
        return parse_mem_table(payload, fds, m);
    case shape::config:
        return parse_config(payload, fds, m);
    case shape::inflight:
        return parse_inflight(payload, fds, limits, m);
    case shape::region:
        return parse_region(payload, fds, m);
    }
    return message_error::unknown_request;
}

}  // namespace ioe::vhost
