// frontend_device: the vhost-user-blk set-up sequence from the driver's
// side (see frontend_device.hh).
#include "vhost/frontend_device.hh"

#include <cstring>
#include <stdexcept>

#include "vhost/spec/virtio_blk.hh"
#include "vhost/spec/virtio_ring.hh"

namespace ioe::vhost {

namespace {

using virtio::bit;

template <class T>
std::span<const std::byte> bytes_of(const T& v) {
    return std::as_bytes(std::span{&v, 1});
}

// Config bytes asked for: up to write_zeroes_may_unmap and its padding (60),
// what every back-end's struct holds (qemu-storage-daemon refuses a read
// past its own struct).
constexpr std::uint32_t config_read_bytes = 60;

}  // namespace

std::string frontend_device::fail(const std::string& what) const {
    return "vhost-user-blk '" + _cfg.socket_path + "': " + what;
}

frontend_device::frontend_device(const frontend_config& cfg) : _cfg(cfg) {
    using user::request;
    if (cfg.queues == 0 || cfg.queues > 256) throw std::runtime_error(fail("1 to 256 queues, not " +
                                                                           std::to_string(cfg.queues)));
    try {
        _chan = std::make_unique<frontend_channel>(cfg.socket_path);

        const std::uint64_t offered = _chan->get_u64(request::get_features);
        if (!(offered & bit(virtio::feature::version_1))) {
            throw std::runtime_error("the back-end does not offer VIRTIO_F_VERSION_1");
        }
        std::uint64_t want = bit(virtio::feature::version_1);
        for (unsigned f : {blk::feature::blk_size, blk::feature::flush, blk::feature::ro, blk::feature::seg_max,
                           blk::feature::size_max}) {
            want |= offered & bit(f);
        }
        if (cfg.event_idx) want |= offered & bit(virtio::feature::event_idx);
        if (cfg.queues > 1) {
            if (!(offered & bit(blk::feature::mq))) {
                throw std::runtime_error(std::to_string(cfg.queues) + " queues asked for, but the back-end does "
                                         "not offer VIRTIO_BLK_F_MQ");
            }
            want |= bit(blk::feature::mq);
        }
        if (offered & bit(user::f_protocol_features)) {
            want |= bit(user::f_protocol_features);
            const std::uint64_t p_offered = _chan->get_u64(request::get_protocol_features);
            for (unsigned f : {user::protocol_feature::config, user::protocol_feature::mq,
                               user::protocol_feature::reply_ack}) {
                _protocol |= p_offered & bit(f);
            }
            _chan->send_u64(request::set_protocol_features, _protocol);
            _chan->set_reply_ack(_protocol & bit(user::protocol_feature::reply_ack));
        }
        if (_protocol & bit(user::protocol_feature::mq)) {
            _backend_queues = static_cast<unsigned>(_chan->get_u64(request::get_queue_num));
        }
        if (cfg.queues > _backend_queues) {
            throw std::runtime_error(std::to_string(cfg.queues) + " queues asked for, the back-end serves " +
                                     std::to_string(_backend_queues));
        }
        _chan->send(request::set_owner);

        if (!(_protocol & bit(user::protocol_feature::config))) {
            throw std::runtime_error("the back-end does not offer the CONFIG protocol feature: capacity unknown");
        }
        std::byte cfg_msg[sizeof(user::config_head) + config_read_bytes]{};
        const user::config_head head{0, config_read_bytes, user::config_flags::writable};
        std::memcpy(cfg_msg, &head, sizeof(head));
        std::byte reply[sizeof(cfg_msg)]{};
        _chan->call(request::get_config, cfg_msg, reply);
        user::config_head rhead{};
        std::memcpy(&rhead, reply, sizeof(rhead));
        if (rhead.size != config_read_bytes) throw std::runtime_error("GET_CONFIG refused by the back-end");
        blk::config conf{};
        std::memcpy(&conf, reply + sizeof(rhead), config_read_bytes);
        _capacity_sectors = conf.capacity;
        if (want & bit(blk::feature::blk_size)) _block_size = conf.blk_size;
        if (_block_size < 512 || (_block_size & (_block_size - 1))) {
            throw std::runtime_error("config blk_size " + std::to_string(_block_size) + " is not a power of two >= 512");
        }
        _read_only = want & bit(blk::feature::ro);
        if (_capacity_sectors == 0) throw std::runtime_error("config capacity is 0");

        _chan->send_u64(request::set_features, want);
        _features = want;
        const bool event_idx = want & bit(virtio::feature::event_idx);

        // Memory: rings (16 + 2 + 8 bytes per entry, plus alignment) and the
        // slots' areas and buffers of every queue, plus slack.
        const std::uint64_t per_queue = std::uint64_t{cfg.queue_size} * 32 + 3 * 4096 +
                                        std::uint64_t{cfg.depth} * (32 + cfg.max_io_bytes) + 4096;
        _mem = std::make_unique<shared_memory>(per_queue * cfg.queues + (1 << 20), cfg.hugepages);
        for (unsigned q = 0; q < cfg.queues; ++q) {
            _queues.push_back(std::make_unique<frontend_queue>(*_mem, static_cast<std::uint16_t>(q), cfg.queue_size,
                                                               cfg.depth, cfg.max_io_bytes, event_idx));
        }
        std::byte table[sizeof(user::memory_table_head) + sizeof(user::memory_region)]{};
        const user::memory_table_head th{1, 0};
        const user::memory_region region = _mem->region();
        std::memcpy(table, &th, sizeof(th));
        std::memcpy(table + sizeof(th), &region, sizeof(region));
        const int mem_fd = _mem->fd();
        _chan->send(request::set_mem_table, table, std::span{&mem_fd, 1});

        for (auto& qp : _queues) {
            frontend_queue& q = *qp;
            _chan->send(request::set_vring_num, bytes_of(user::vring_state{q.index(), q.size()}));
            _chan->send(request::set_vring_base, bytes_of(user::vring_state{q.index(), 0}));
            const user::vring_addr addr{q.index(), 0, q.desc_user_addr(), q.used_user_addr(), q.avail_user_addr(), 0};
            _chan->send(request::set_vring_addr, bytes_of(addr));
            const int kick = q.kick_fd(), call = q.call_fd();
            _chan->send_u64(request::set_vring_kick, q.index(), std::span{&kick, 1});
            _chan->send_u64(request::set_vring_call, q.index(), std::span{&call, 1});
        }
        if (want & bit(user::f_protocol_features)) {
            for (auto& q : _queues) {
                _chan->send(request::set_vring_enable, bytes_of(user::vring_state{q->index(), 1}));
            }
        }
    } catch (const std::runtime_error& e) {
        _queues.clear();
        _chan.reset();
        throw std::runtime_error(fail(e.what()));
    }
}

frontend_device::~frontend_device() {
    try {
        stop();
    } catch (...) {
    }
}

void frontend_device::stop() {
    if (!_chan) return;
    auto chan = std::move(_chan);
    try {
        for (auto& q : _queues) {
            user::vring_state st{q->index(), 0};
            user::vring_state reply{};
            chan->call(user::request::get_vring_base, bytes_of(st), std::as_writable_bytes(std::span{&reply, 1}));
        }
    } catch (const std::runtime_error& e) {
        throw std::runtime_error(fail(e.what()));
    }
}

}  // namespace ioe::vhost
