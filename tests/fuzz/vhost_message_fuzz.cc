// Fuzz target for the vhost-user message parser (vhost/message.cc):
// arbitrary bytes and fd counts must be classified, never crash, and an
// accepted message must satisfy what the connection code relies on (the
// payload fits the header's size, every fd received is accounted for, queue
// indexes are in range, regions and config ranges are sane).
//
// Input layout: byte 0 holds the number of fds that came with the message
// (bits 0-3, modulo 9) and the number of queues minus one (bits 4-7); the
// rest is the message, header first.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "vhost/message.hh"
#include "vhost/spec/virtio_ring.hh"

using namespace ioe::vhost;
using ioe::vhost::user::request;

namespace {

void require(bool ok) {
    if (!ok) std::abort();
}

bool per_queue(request r) {
    switch (r) {
    case request::set_vring_num:
    case request::set_vring_addr:
    case request::set_vring_base:
    case request::get_vring_base:
    case request::set_vring_kick:
    case request::set_vring_call:
    case request::set_vring_err:
    case request::set_vring_enable:
    case request::vring_kick:
        return true;
    default:
        return false;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t nfds = (data[0] & 15) % 9;
    const message_limits limits{static_cast<std::uint32_t>(data[0] >> 4) + 1};
    int fds[8];
    for (std::size_t i = 0; i < 8; ++i) fds[i] = 100 + static_cast<int>(i);
    const auto bytes = std::as_bytes(std::span(data + 1, size - 1));

    message m;
    const message_error e = parse_message(bytes, std::span<const int>(fds, nfds), limits, m);
    require(!to_string(e).empty());
    if (bytes.size() >= sizeof(user::msg_header)) {
        user::msg_header h;
        std::memcpy(&h, bytes.data(), sizeof(h));
        const message_error he = check_header(h);
        // A header the early check refuses is refused the same way whole.
        if (he != message_error::ok) require(e == he);
        require(!request_name(h.request).empty());
    } else {
        require(e == message_error::short_header);
    }
    if (e != message_error::ok) return 0;

    user::msg_header h;
    std::memcpy(&h, bytes.data(), sizeof(h));
    require(h.size <= user::max_payload_bytes && bytes.size() == sizeof(h) + h.size);
    require(static_cast<std::uint32_t>(m.request) == h.request && h.request >= 1 &&
            h.request <= user::last_request_id);
    if (per_queue(m.request)) require(m.queue < limits.num_queues);

    // Every fd received is named by the message, each once.
    std::size_t named = 0;
    if (m.fd != -1) {
        require(m.fd >= 100 && m.fd < 100 + static_cast<int>(nfds));
        ++named;
    }
    if (m.request == request::set_mem_table) {
        require(m.region_count >= 1 && m.region_count <= user::max_mem_table_regions);
        for (std::uint32_t i = 0; i < m.region_count; ++i) require(m.region_fds[i] == 100 + static_cast<int>(i));
        named += m.region_count;
    }
    require(named == nfds);

    for (std::uint32_t i = 0; i < m.region_count; ++i) {
        const auto& r = m.regions[i];
        require(r.size != 0 && r.guest_phys_addr + (r.size - 1) >= r.guest_phys_addr &&
                r.user_addr + (r.size - 1) >= r.user_addr);
    }
    if (m.request == request::set_vring_num) require(ioe::vhost::virtio::valid_queue_size(m.num));
    if (m.request == request::get_config || m.request == request::set_config)
        require(m.config.size >= 1 && m.config.offset + m.config.size <= user::max_config_bytes &&
                h.size == sizeof(user::config_head) + m.config.size);
    return 0;
}
