// A small vhost-user-blk front-end for tests, in the role QEMU plays: it
// connects to an export's unix socket with blocking calls (run it on a
// thread of its own, never on a reactor), shares a memfd as guest memory
// (guest physical 0 = our mapping; user addresses are our pointers), sets
// up split rings in it, puts virtio-blk requests on them, kicks and waits
// for the used ring. Every wait is bounded (5 s): a hang fails the test.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "vhost/inflight_area.hh"
#include "vhost/spec/vhost_user.hh"
#include "vhost/spec/virtio_blk.hh"
#include "vhost/spec/virtio_ring.hh"

namespace ioe::vhost::test {

class test_frontend {
public:
    static constexpr std::uint64_t mem_bytes = 4 << 20;
    static constexpr std::uint32_t ring_size = 64;
    static constexpr std::uint64_t queue_area = 0x8000;    // per queue: desc, avail, used
    static constexpr std::uint64_t data_base = 0x100000;  // request buffers from here

    test_frontend() {
        _mem_fd = ::memfd_create("test-guest", MFD_CLOEXEC);
        EXPECT_EQ(::ftruncate(_mem_fd, mem_bytes), 0);
        _mem = static_cast<std::byte*>(::mmap(nullptr, mem_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, _mem_fd, 0));
    }
    ~test_frontend() {
        disconnect();
        for (auto& q : _queues) {
            if (q.kick >= 0) ::close(q.kick);
            if (q.call >= 0) ::close(q.call);
        }
        ::munmap(_mem, mem_bytes);
        ::close(_mem_fd);
    }

    bool connect(const std::string& path) {
        _sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        if (::connect(_sock, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
        timeval tv{5, 0};
        ::setsockopt(_sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        return true;
    }
    void disconnect() {
        if (_sock >= 0) ::close(_sock);
        _sock = -1;
    }
    int socket_fd() const { return _sock; }
    std::byte* mem() const { return _mem; }

    // Sends header + payload with fds.
    bool send(user::request r, std::span<const std::byte> payload, std::span<const int> fds = {},
              bool need_reply = false) {
        user::msg_header h{static_cast<std::uint32_t>(r),
                           user::header_flags::version | (need_reply ? user::header_flags::need_reply : 0u),
                           static_cast<std::uint32_t>(payload.size())};
        std::vector<std::byte> buf(sizeof h + payload.size());
        std::memcpy(buf.data(), &h, sizeof h);
        if (!payload.empty()) std::memcpy(buf.data() + sizeof h, payload.data(), payload.size());
        return send_raw(buf, fds);
    }
    bool send_raw(std::span<const std::byte> bytes, std::span<const int> fds = {}) {
        iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
        msghdr mh{};
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        std::vector<char> control(CMSG_SPACE(sizeof(int) * (fds.empty() ? 1 : fds.size())));
        if (!fds.empty()) {
            mh.msg_control = control.data();
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
            cmsghdr* c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
            std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
        }
        return ::sendmsg(_sock, &mh, MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
    }
    template <typename T>
    bool send_value(user::request r, const T& v, std::span<const int> fds = {}, bool need_reply = false) {
        return send(r, {reinterpret_cast<const std::byte*>(&v), sizeof v}, fds, need_reply);
    }

    // Reads one reply: its payload, and an fd if one came (else -1). false:
    // closed, timed out, or not a reply to `r`.
    bool receive(user::request r, std::vector<std::byte>& payload, int* fd = nullptr) {
        user::msg_header h{};
        iovec iov{&h, sizeof h};
        msghdr mh{};
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        mh.msg_control = control;
        mh.msg_controllen = sizeof control;
        if (::recvmsg(_sock, &mh, MSG_WAITALL) != sizeof h) return false;
        if (fd) {
            *fd = -1;
            if (cmsghdr* c = CMSG_FIRSTHDR(&mh); c && c->cmsg_type == SCM_RIGHTS) std::memcpy(fd, CMSG_DATA(c), sizeof(int));
        }
        if (h.request != static_cast<std::uint32_t>(r) || !(h.flags & user::header_flags::reply)) return false;
        payload.resize(h.size);
        return h.size == 0 || ::recv(_sock, payload.data(), h.size, MSG_WAITALL) == static_cast<ssize_t>(h.size);
    }
    // A u64 reply (GET_FEATURES, REPLY_ACK...); ~0 when none came.
    std::uint64_t receive_u64(user::request r) {
        std::vector<std::byte> p;
        std::uint64_t v = ~std::uint64_t{0};
        if (receive(r, p) && p.size() == 8) std::memcpy(&v, p.data(), 8);
        return v;
    }
    // Whether the server closed the connection (within 5 s).
    bool closed_by_server() {
        char c;
        return ::recv(_sock, &c, 1, 0) == 0;
    }

    // Features, protocol features, owner, memory table.
    // mem_slots: guest memory by ADD_MEM_REG (CONFIGURE_MEM_SLOTS), as QEMU
    // does when it was negotiated, instead of SET_MEM_TABLE.
    bool negotiate(std::uint64_t features, std::uint64_t protocol_features, bool mem_slots = false) {
        if (!send(user::request::get_features, {})) return false;
        _offered = receive_u64(user::request::get_features);
        if (!send_value(user::request::set_features, features)) return false;
        _features = features;
        if (!send(user::request::get_protocol_features, {})) return false;
        receive_u64(user::request::get_protocol_features);
        if (!send_value(user::request::set_protocol_features, protocol_features)) return false;
        if (!send(user::request::set_owner, {})) return false;
        return mem_slots ? mem_region(user::request::add_mem_reg) == 0 : set_mem_table(_mem_fd) == 0;
    }
    // ADD_MEM_REG / REM_MEM_REG of the whole guest memory, with REPLY_ACK.
    std::uint64_t mem_region(user::request r) {
        user::single_region one{0, {0, mem_bytes, reinterpret_cast<std::uint64_t>(_mem), 0}};
        int fds[1] = {_mem_fd};
        if (!send_value(r, one, r == user::request::add_mem_reg ? std::span<const int>(fds) : std::span<const int>(),
                        true))
            return ~std::uint64_t{0};
        return receive_u64(r);
    }
    // SET_MEM_TABLE with REPLY_ACK: the server's answer (0 ok).
    std::uint64_t set_mem_table(int fd) {
        struct {
            user::memory_table_head head;
            user::memory_region region;
        } t{{1, 0}, {0, mem_bytes, reinterpret_cast<std::uint64_t>(_mem), 0}};
        int fds[1] = {fd};
        if (!send_value(user::request::set_mem_table, t, fds, true)) return ~std::uint64_t{0};
        return receive_u64(user::request::set_mem_table);
    }
    std::uint64_t offered() const { return _offered; }

    struct queue_state {
        int kick = -1;
        int call = -1;
        std::uint16_t avail_idx = 0;
        std::uint16_t used_seen = 0;
        std::uint16_t next_desc = 0;
    };

    queue_state& queue(unsigned q) {
        if (_queues.size() <= q) _queues.resize(q + 1);
        return _queues[q];
    }
    std::byte* desc_table(unsigned q) const { return _mem + q * queue_area; }
    std::byte* avail(unsigned q) const { return _mem + q * queue_area + 0x1000; }
    std::byte* used(unsigned q) const { return _mem + q * queue_area + 0x2000; }
    std::uint64_t user_addr(const std::byte* p) const { return reinterpret_cast<std::uint64_t>(p); }

    // SET_VRING_NUM / BASE / ADDR / KICK / CALL and ENABLE 1 for queue q.
    bool start_queue(unsigned q, std::uint16_t base = 0) {
        if (_queues.size() <= q) _queues.resize(q + 1);
        auto& s = _queues[q];
        if (s.kick < 0) s.kick = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s.call < 0) s.call = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        s.avail_idx = base;
        s.used_seen = base;
        bool ok = send_value(user::request::set_vring_num, user::vring_state{q, ring_size}) &&
                  send_value(user::request::set_vring_base, user::vring_state{q, base});
        user::vring_addr a{q, 0, user_addr(desc_table(q)), user_addr(used(q)), user_addr(avail(q)), 0};
        ok = ok && send_value(user::request::set_vring_addr, a);
        int kick[1] = {s.kick};
        int call[1] = {s.call};
        ok = ok && send_value(user::request::set_vring_kick, std::uint64_t{q}, kick) &&
             send_value(user::request::set_vring_call, std::uint64_t{q}, call) &&
             send_value(user::request::set_vring_enable, user::vring_state{q, 1}, {}, true);
        return ok && receive_u64(user::request::set_vring_enable) == 0;
    }
    // GET_VRING_BASE: the server's next available index (~0 on failure).
    std::uint32_t get_vring_base(unsigned q) {
        if (!send_value(user::request::get_vring_base, user::vring_state{q, 0})) return ~0u;
        std::vector<std::byte> p;
        if (!receive(user::request::get_vring_base, p) || p.size() != 8) return ~0u;
        user::vring_state st{};
        std::memcpy(&st, p.data(), 8);
        return st.index == q ? st.num : ~0u;
    }

    // One buffer of a chain: guest address, length, device-writable.
    struct piece {
        std::uint64_t gpa;
        std::uint32_t len;
        bool writable;
    };
    // Writes the chain into descriptors from `head` on (no wrap) without
    // making it available.
    std::uint16_t write_chain(unsigned q, std::uint16_t head, std::span<const piece> pieces) {
        for (std::size_t i = 0; i < pieces.size(); ++i) {
            virtio::desc d{pieces[i].gpa, pieces[i].len,
                           static_cast<std::uint16_t>((pieces[i].writable ? virtio::desc_flags::write : 0) |
                                                      (i + 1 < pieces.size() ? virtio::desc_flags::next : 0)),
                           static_cast<std::uint16_t>(head + i + 1)};
            std::memcpy(desc_table(q) + 16 * (head + i), &d, sizeof d);
        }
        return head;
    }
    // Puts head on the available ring; kick: also write the kick eventfd.
    void make_available(unsigned q, std::uint16_t head, bool kick = true) {
        auto& s = _queues[q];
        std::memcpy(avail(q) + 4 + 2 * (s.avail_idx % ring_size), &head, 2);
        ++s.avail_idx;
        std::atomic_thread_fence(std::memory_order_release);
        std::memcpy(avail(q) + 2, &s.avail_idx, 2);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (kick) ::eventfd_write(s.kick, 1);
    }
    // Interrupts signalled on queue q's call eventfd since the last look.
    std::uint64_t interrupts(unsigned q) {
        eventfd_t v = 0;
        return ::eventfd_read(_queues[q].call, &v) == 0 ? v : 0;
    }
    std::uint16_t used_idx(unsigned q) const {
        std::uint16_t v;
        std::memcpy(&v, used(q) + 2, 2);
        std::atomic_thread_fence(std::memory_order_acquire);
        return v;
    }
    // Waits (5 s at most) for the next used element of queue q.
    bool wait_used(unsigned q, virtio::used_elem& e) {
        auto& s = _queues[q];
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (used_idx(q) == s.used_seen) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        std::memcpy(&e, used(q) + 4 + 8 * (s.used_seen % ring_size), sizeof e);
        ++s.used_seen;
        return true;
    }

    // A whole virtio-blk request on queue q: header at a fixed slot of
    // guest memory, `data` (read: filled, write: sent), status byte.
    // Returns the status (0xff: no answer) and *used_len.
    // data_offset moves the data buffer off its page alignment (a
    // misaligned guest buffer).
    std::uint8_t request(unsigned q, std::uint32_t type, std::uint64_t sector, std::span<std::byte> data,
                         std::uint32_t* used_len = nullptr, std::uint32_t data_offset = 0) {
        auto& s = _queues[q];
        const std::uint64_t hdr_gpa = data_base + q * 0x40000;
        const std::uint64_t data_gpa = hdr_gpa + 0x1000 + data_offset;
        const std::uint64_t status_gpa = hdr_gpa + 0x800;
        blk::req_header h{type, 0, sector};
        std::memcpy(_mem + hdr_gpa, &h, sizeof h);
        const bool device_writes = type == blk::req_type::in || type == blk::req_type::get_id;
        if (!device_writes && !data.empty()) std::memcpy(_mem + data_gpa, data.data(), data.size());
        _mem[status_gpa] = std::byte{0xee};
        std::vector<piece> p{{hdr_gpa, 16, false}};
        if (!data.empty()) p.push_back({data_gpa, static_cast<std::uint32_t>(data.size()), device_writes});
        p.push_back({status_gpa, 1, true});
        const std::uint16_t head = static_cast<std::uint16_t>(s.next_desc);
        s.next_desc = static_cast<std::uint16_t>((s.next_desc + 4) % ring_size);
        write_chain(q, head, p);
        make_available(q, head);
        virtio::used_elem e{};
        if (!wait_used(q, e) || e.id != head) return 0xff;
        if (used_len) *used_len = e.len;
        if (device_writes && !data.empty()) std::memcpy(data.data(), _mem + data_gpa, data.size());
        return static_cast<std::uint8_t>(_mem[status_gpa]);
    }

private:
    int _mem_fd = -1;
    std::byte* _mem = nullptr;
    int _sock = -1;
    std::uint64_t _offered = 0;
    std::uint64_t _features = 0;
    std::vector<queue_state> _queues;
};

}  // namespace ioe::vhost::test
