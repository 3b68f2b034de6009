// The vhost-user control path of one front-end (see blk_connection.hh).
#include "vhost/blk_connection.hh"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "runtime/log.hh"
#include "runtime/reactor.hh"
#include "runtime/smp.hh"
#include "vhost/spec/virtio_ring.hh"

namespace ioe::vhost {

namespace {

using virtio::bit;

void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

template <typename T>
std::span<const std::byte> bytes_of(const T& v) noexcept {
    return {reinterpret_cast<const std::byte*>(&v), sizeof v};
}

struct stopped_queue {
    std::uint16_t next_avail = 0;
    blk_queue_counters counters;
};

// On the queue's shard: drain, then destroy it there.
future<stopped_queue> stop_and_delete(blk_queue* q) {
    stopped_queue out;
    out.next_avail = co_await q->stop();
    out.counters = q->counters();
    delete q;
    co_return out;
}

}  // namespace

blk_connection::blk_connection(connection_context ctx, int fd) : _ctx(std::move(ctx)), _fd(fd) {}

blk_connection::~blk_connection() {
    for (auto& v : _vrings) {
        close_fd(v.kick_fd);
        close_fd(v.call_fd);
        close_fd(v.err_fd);
    }
    if (_fd >= 0) ::close(_fd);
}

void blk_connection::close() noexcept {
    _closing = true;
    if (_fd >= 0) ::shutdown(_fd, SHUT_RDWR);
}

connection_state blk_connection::state() const noexcept {
    connection_state s;
    s.features = _features;
    s.protocol_features = _protocol_features;
    for (const auto& v : _vrings) s.queues_running += v.queue != nullptr;
    s.mapped_bytes = _memory.mapped_bytes();
    s.inflight = _inflight.mapped();
    return s;
}

namespace {

future<blk_queue_counters> sum_counters(std::vector<future<blk_queue_counters>> parts) {
    blk_queue_counters total;
    for (auto& f : parts) total.add(co_await std::move(f));
    co_return total;
}

}  // namespace

future<blk_queue_counters> blk_connection::live_counters() const {
    // Every message is sent before any is awaited: a queue stopped later
    // is stopped by a message behind ours on the same lane, so it is still
    // alive when ours is handled.
    std::vector<future<blk_queue_counters>> parts;
    for (const auto& v : _vrings) {
        if (!v.queue) continue;
        blk_queue* q = v.queue;
        parts.push_back(submit_to(v.shard, [q] { return q->counters(); }));
    }
    return sum_counters(std::move(parts));
}

future<> blk_connection::run() {
    uring& io = local_reactor()->io();
    const message_limits limits{_ctx.geometry.num_queues};
    auto rm = std::make_unique<received_message>();
    while (!_closing) {
        co_await read_message(io, _fd, limits, *rm);
        if (rm->status == read_status::closed) break;
        if (rm->status == read_status::bad_header) {
            ++*_ctx.protocol_errors;
            log::warn("vhost-blk \"{}\": bad message header ({}: {}): dropping the connection", _ctx.name,
                      to_string(rm->error), rm->detail);
            break;
        }
        if (rm->status == read_status::bad_message) {
            ++*_ctx.protocol_errors;
            const bool can_answer = (rm->header.flags & user::header_flags::need_reply) != 0;
            log::warn("vhost-blk \"{}\": bad request ({}: {}): {}", _ctx.name, to_string(rm->error), rm->detail,
                      can_answer ? "answered with a failure" : "dropping the connection");
            if (!can_answer) break;
            const std::uint64_t failed = 1;
            if (!co_await send_reply(io, _fd, rm->header.request, bytes_of(failed))) break;
            continue;
        }
        if (!co_await handle(rm->msg)) break;
    }
    co_await teardown();
}

future<bool> blk_connection::reply_u64(const message& m, std::uint64_t v) {
    return send_reply(local_reactor()->io(), _fd, static_cast<std::uint32_t>(m.request), bytes_of(v));
}

future<bool> blk_connection::ack(const message& m, bool ok) {
    if (!m.need_reply) return make_ready_future<bool>(ok);
    if (!ok) {
        // The failure is answered; the connection goes on.
        return reply_u64(m, 1);
    }
    return reply_u64(m, 0);
}

future<bool> blk_connection::refuse(const message& m, std::string_view why) {
    ++*_ctx.protocol_errors;
    log::warn("vhost-blk \"{}\": {} refused: {}{}", _ctx.name, request_name(static_cast<std::uint32_t>(m.request)), why,
              m.need_reply ? "" : "; dropping the connection");
    if (!m.need_reply) return make_ready_future<bool>(false);
    return reply_u64(m, 1);
}

bool blk_connection::ready_to_run(const vring& v) const noexcept {
    return v.num_set && v.addr_set && v.kick_set && v.enabled && _memory.regions() > 0;
}

future<bool> blk_connection::start_queue(unsigned q) {
    vring& v = _vrings[q];
    if (v.queue || !ready_to_run(v)) co_return true;
    blk_queue_setup s;
    s.index = q;
    s.memory = &_memory.table();
    s.ring.size = v.num;
    s.ring.event_idx = (_features >> virtio::feature::event_idx) & 1;
    s.ring.indirect = (_features >> virtio::feature::indirect_desc) & 1;
    s.addr = ring_addresses{v.addr.desc, v.addr.avail, v.addr.used};
    s.base = v.base;
    s.kick_fd = v.kick_fd;
    s.call_fd = v.call_fd;
    if ((_protocol_features >> user::protocol_feature::inflight_shmfd) & 1) {
        if (_inflight.mapped() && _inflight.queue_size() == v.num) {
            s.inflight = _inflight.queue(q);
        } else if (_inflight.mapped()) {
            log::warn("vhost-blk \"{}\": queue {} of size {} does not match the inflight area's {}: not tracked",
                      _ctx.name, q, v.num, _inflight.queue_size());
        }
    }
    s.params = make_blk_params(_ctx.geometry, _features);
    s.device = _ctx.device;
    const std::string& n = _ctx.device->name();
    std::memcpy(s.id.data(), n.data(), std::min(n.size(), s.id.size()));
    s.log_name = fmt::format("vhost-blk \"{}\" queue {}", _ctx.name, q);
    const unsigned shard = (_ctx.first_shard + q) % shard_count();
    auto started = co_await submit_to(shard, [s]() {
        auto* bq = new blk_queue(s);
        std::string err = bq->start();
        if (!err.empty()) {
            delete bq;
            bq = nullptr;
        }
        return std::pair<blk_queue*, std::string>{bq, std::move(err)};
    });
    if (!started.first) {
        ++*_ctx.protocol_errors;
        log::warn("vhost-blk \"{}\": queue {} not started: {}", _ctx.name, q, started.second);
        co_return false;
    }
    v.queue = started.first;
    v.shard = shard;
    log::debug("vhost-blk \"{}\": queue {} running on shard {} (size {}, base {})", _ctx.name, q, shard, v.num, v.base);
    co_return true;
}

future<> blk_connection::stop_queue(unsigned q) {
    vring& v = _vrings[q];
    if (!v.queue) co_return;
    blk_queue* bq = std::exchange(v.queue, nullptr);
    auto st = co_await submit_to(v.shard, [bq] { return stop_and_delete(bq); });
    v.base = st.next_avail;
    _ctx.totals->add(st.counters);
}

future<> blk_connection::stop_all() {
    for (unsigned q = 0; q < _ctx.geometry.num_queues; ++q) co_await stop_queue(q);
}

future<bool> blk_connection::start_all() {
    bool all = true;
    for (unsigned q = 0; q < _ctx.geometry.num_queues; ++q) all &= co_await start_queue(q);
    co_return all;
}

void blk_connection::reset_vring(unsigned q) noexcept {
    vring& v = _vrings[q];
    close_fd(v.kick_fd);
    close_fd(v.call_fd);
    close_fd(v.err_fd);
    v = vring{};
}

future<> blk_connection::teardown() {
    co_await stop_all();
    for (unsigned q = 0; q < max_export_queues; ++q) reset_vring(q);
    _memory.clear();
    _inflight.unmap();
    if (_fd >= 0) {
        ::close(_fd);
        _fd = -1;
    }
}

future<bool> blk_connection::handle(const message& m) {
    using R = user::request;
    vring& v = _vrings[m.queue < max_export_queues ? m.queue : 0];
    switch (m.request) {
    case R::get_features: co_return co_await reply_u64(m, offered_features(_ctx.geometry.read_only));
    case R::set_features: {
        const std::uint64_t offered = offered_features(_ctx.geometry.read_only);
        if ((m.value & ~offered) != 0)
            co_return co_await refuse(m, fmt::format("features 0x{:x} not offered", m.value & ~offered));
        co_await stop_all();
        _features = m.value;
        _features_set = true;
        co_await start_all();
        co_return co_await ack(m, true);
    }
    case R::get_protocol_features: co_return co_await reply_u64(m, offered_protocol_features());
    case R::set_protocol_features: {
        const std::uint64_t offered = offered_protocol_features();
        if ((m.value & ~offered) != 0)
            co_return co_await refuse(m, fmt::format("protocol features 0x{:x} not offered", m.value & ~offered));
        _protocol_features = m.value;
        co_return co_await ack(m, true);
    }
    case R::set_owner:
        _owner = true;
        co_return co_await ack(m, true);
    case R::reset_owner:
    case R::reset_device:
        co_await stop_all();
        for (unsigned q = 0; q < max_export_queues; ++q) reset_vring(q);
        _features = 0;
        co_return co_await ack(m, true);
    case R::set_mem_table: co_return co_await set_mem_table(m);
    case R::add_mem_reg:
    case R::rem_mem_reg: {
        co_await stop_all();
        std::string err = m.request == R::add_mem_reg ? _memory.add(m.regions[0], m.fd) : _memory.remove(m.regions[0]);
        if (m.fd >= 0) ::close(m.fd);
        co_await start_all();
        if (!err.empty()) co_return co_await refuse(m, err);
        co_return co_await ack(m, true);
    }
    case R::get_max_mem_slots: co_return co_await reply_u64(m, guest_memory::max_regions);
    case R::set_vring_num:
        co_await stop_queue(m.queue);
        v.num = m.num;
        v.num_set = true;
        co_return co_await ack(m, true);
    case R::set_vring_addr:
        if (m.addr.flags & user::vring_flag_log) co_return co_await refuse(m, "dirty logging is not offered");
        co_await stop_queue(m.queue);
        v.addr = m.addr;
        v.addr_set = true;
        co_await start_queue(m.queue);
        co_return co_await ack(m, true);
    case R::set_vring_base:
        co_await stop_queue(m.queue);
        v.base = static_cast<std::uint16_t>(m.num);
        co_return co_await ack(m, true);
    case R::get_vring_base: {
        co_await stop_queue(m.queue);
        // The ring is stopped until the next SET_VRING_KICK.
        v.kick_set = false;
        close_fd(v.kick_fd);
        user::vring_state st{m.queue, v.base};
        co_return co_await send_reply(local_reactor()->io(), _fd, static_cast<std::uint32_t>(m.request), bytes_of(st));
    }
    case R::set_vring_kick:
        co_await stop_queue(m.queue);
        close_fd(v.kick_fd);
        v.kick_fd = m.fd;
        v.kick_set = true;
        if (!((_features >> user::f_protocol_features) & 1)) v.enabled = true;
        co_await start_queue(m.queue);
        co_return co_await ack(m, true);
    case R::set_vring_call: {
        int old = std::exchange(v.call_fd, m.fd);
        if (v.queue) {
            blk_queue* bq = v.queue;
            int fd = m.fd;
            co_await submit_to(v.shard, [bq, fd] { bq->set_call_fd(fd); });
        }
        if (old >= 0) ::close(old);
        co_return co_await ack(m, true);
    }
    case R::set_vring_err:
        close_fd(v.err_fd);
        v.err_fd = m.fd;
        co_return co_await ack(m, true);
    case R::get_queue_num: co_return co_await reply_u64(m, _ctx.geometry.num_queues);
    case R::set_vring_enable:
        v.enabled = m.num != 0;
        if (v.enabled) {
            co_await start_queue(m.queue);
        } else {
            co_await stop_queue(m.queue);
        }
        co_return co_await ack(m, true);
    case R::set_backend_req_fd:
        if (m.fd >= 0) ::close(m.fd);
        co_return co_await ack(m, true);
    case R::get_config: co_return co_await get_config(m);
    case R::set_config:
        // Nothing in our configuration space is writable (no CONFIG_WCE).
        log::debug("vhost-blk \"{}\": SET_CONFIG of {} byte(s) at {} ignored", _ctx.name, m.config.size,
                   m.config.offset);
        co_return co_await ack(m, true);
    case R::get_inflight_fd: co_return co_await get_inflight(m);
    case R::set_inflight_fd: co_return co_await set_inflight(m);
    case R::vring_kick: co_return co_await ack(m, true);
    case R::set_status: co_return co_await ack(m, true);
    case R::get_status: co_return co_await reply_u64(m, 0);
    default:
        if (m.fd >= 0) ::close(m.fd);
        co_return co_await refuse(m, "not served");
    }
}

future<bool> blk_connection::set_mem_table(const message& m) {
    co_await stop_all();
    _memory.clear();
    std::string err;
    for (std::uint32_t i = 0; i < m.region_count; ++i) {
        if (err.empty()) err = _memory.add(m.regions[i], m.region_fds[i]);
        ::close(m.region_fds[i]);
    }
    if (!err.empty()) {
        _memory.clear();
        co_return co_await refuse(m, err);
    }
    log::debug("vhost-blk \"{}\": guest memory: {} region(s), {} MiB", _ctx.name, _memory.regions(),
               _memory.mapped_bytes() >> 20);
    co_await start_all();
    co_return co_await ack(m, true);
}

future<bool> blk_connection::get_config(const message& m) {
    std::array<std::byte, user::max_config_bytes> space{};
    const blk::config c = make_blk_config(_ctx.geometry);
    std::memcpy(space.data(), &c, sizeof c);
    std::array<std::byte, sizeof(user::config_head) + user::max_config_bytes> out{};
    std::memcpy(out.data(), &m.config, sizeof m.config);
    std::memcpy(out.data() + sizeof m.config, space.data() + m.config.offset, m.config.size);
    co_return co_await send_reply(local_reactor()->io(), _fd, static_cast<std::uint32_t>(m.request),
                                  {out.data(), sizeof m.config + m.config.size});
}

future<bool> blk_connection::get_inflight(const message& m) {
    user::inflight in = m.inflight;
    std::uint64_t size = 0;
    int fd = create_inflight_fd(in.num_queues, in.queue_size, &size);
    if (fd < 0) {
        log::warn("vhost-blk \"{}\": GET_INFLIGHT_FD: memfd: {}", _ctx.name, std::strerror(-fd));
        // A zero-size reply without an fd says "no inflight area".
        in.mmap_size = 0;
        co_return co_await send_reply(local_reactor()->io(), _fd, static_cast<std::uint32_t>(m.request), bytes_of(in));
    }
    in.mmap_size = size;
    in.mmap_offset = 0;
    bool ok = co_await send_reply(local_reactor()->io(), _fd, static_cast<std::uint32_t>(m.request), bytes_of(in), fd);
    ::close(fd);
    co_return ok;
}

future<bool> blk_connection::set_inflight(const message& m) {
    co_await stop_all();
    int err = _inflight.map(m.fd, m.inflight.mmap_size, m.inflight.mmap_offset, m.inflight.num_queues,
                            m.inflight.queue_size);
    ::close(m.fd);
    if (err != 0) {
        co_await start_all();
        co_return co_await refuse(m, fmt::format("inflight area of {} bytes at {} for {} queue(s) of {}: {}",
                                                 m.inflight.mmap_size, m.inflight.mmap_offset, m.inflight.num_queues,
                                                 m.inflight.queue_size, std::strerror(-err)));
    }
    co_await start_all();
    co_return co_await ack(m, true);
}

}  // namespace ioe::vhost
