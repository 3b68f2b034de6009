// The host side of one NVMe/TCP queue pair (the initiator's mirror of
// nvme/target/tcp_qpair.hh): one TCP connection on one shard, ICReq/ICResp,
// then command capsules in and out.
//
// A command takes a slot of the CID table (CID = generation << 7 | slot, so a
// CID is not reused the moment its response arrives) and waits for its
// CapsuleResp (or a C2HData with SUCCESS). The receive loop reads one PDU at
// a time: CapsuleResp completes its command, C2HData is received straight
// into the command's io_vecs at DATAO (no copy), R2T is answered inline with
// H2CData PDUs of at most MAXH2CDATA taken from the command's io_vecs.
// Sending is serialized by a mutex. Every command has a deadline, counted from
// execute() (a wait for a free slot included); a periodic sweep completes an
// overdue one as timed out (its slot stays taken until the target answers,
// data for it is discarded). A command's buffers are never touched once it has
// completed: when an overdue command is still on the wire (its capsule not
// sent yet, its C2HData being received, its H2CData being sent), the sweep
// ends the connection instead, and the command completes as connection_lost
// once that transfer has stopped. When the connection is lost every command in
// flight completes as failed, and the on_lost callback (if set) runs once.
// Header and data digests (CRC32C) are used when asked for in open() and
// granted in ICResp: sent on every PDU we send, checked on every PDU we
// receive (a mismatch ends the connection).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nvme/spec/nvme_spec.hh"
#include "nvme/spec/nvme_tcp_spec.hh"
#include "runtime/async_mutex.hh"
#include "runtime/timer.hh"
#include "runtime/uring.hh"
#include "storage/block_device.hh"

namespace ioe::nvme {

// Digests to ask for in ICReq.
struct tcp_digests {
    bool header = false;
    bool data = false;
};

// A window of a command's buffers: `len` bytes from byte `offset` of iov.
struct data_view {
    io_vecs iov;
    std::uint64_t offset = 0;
    std::uint32_t len = 0;
};

// How a command ended.
struct host_completion {
    enum class kind { done, timed_out, connection_lost };
    kind how = kind::connection_lost;
    cqe cq{};  // valid when how == done

    bool ok() const noexcept { return how == kind::done && status_ok(cq.status); }
};

class nvmf_qpair {
public:
    static constexpr std::size_t max_depth = 128;  // CID slots (a power of two)

    // Connects to host:port (numeric IPv4/IPv6 or a name), exchanges
    // ICReq/ICResp and starts the receive loop. Throws std::runtime_error
    // naming the step that failed. `depth`: commands in flight at most.
    static future<std::unique_ptr<nvmf_qpair>> open(std::string host, std::uint16_t port, std::uint16_t qid,
                                                     unsigned depth, std::chrono::milliseconds io_timeout,
                                                     tcp_digests want = {});
    // The same over a connected stream socket `fd` (owned from here, closed
    // on failure): ICReq/ICResp, then the receive loop. open() ends here;
    // tests and the fuzz target hand over one end of a socketpair.
    static future<std::unique_ptr<nvmf_qpair>> adopt(int fd, std::uint16_t qid, unsigned depth,
                                                      std::chrono::milliseconds io_timeout, tcp_digests want = {});
    ~nvmf_qpair();
    nvmf_qpair(const nvmf_qpair&) = delete;
    nvmf_qpair& operator=(const nvmf_qpair&) = delete;

    // Sends `cmd` (its CID is set here). `out`: data for the controller, in
    // the capsule when in_capsule is true, else sent on R2T. `in`: where
    // C2HData lands. The views' buffers must outlive the returned future.
    future<host_completion> execute(sqe cmd, data_view out = {}, data_view in = {}, bool in_capsule = false);

    // Stops the receive loop, fails what is in flight, closes the socket.
    future<> close();

    bool alive() const noexcept { return !_dead; }
    // Runs on this shard when the connection is lost (not after close()).
    void on_lost(std::function<void()> fn) { _on_lost = std::move(fn); }
    // Ends the connection as if it were lost (e.g. a Keep Alive timed out).
    void abort() noexcept;
    bool header_digest() const noexcept { return _hdgst; }
    bool data_digest() const noexcept { return _ddgst; }
    std::uint16_t qid() const noexcept { return _qid; }
    std::uint32_t maxh2cdata() const noexcept { return _maxh2cdata; }
    // Counts, in `counter` (shared by a device's queues on every shard),
    // the commands this queue gave up on (timed out) and the target has
    // not answered yet.
    void count_abandoned_in(std::atomic<std::int32_t>* counter) noexcept { _abandoned_count = counter; }

private:
    struct slot {
        bool busy = false;
        bool abandoned = false;  // timed out: completed already, data discarded
        // Transfers using this slot's buffers right now (execute() until its
        // capsule is sent, a C2HData being received, an R2T being answered):
        // the sweep cannot complete the command while there is one.
        unsigned transfers = 0;
        std::uint16_t cid = 0;
        std::uint16_t generation = 0;
        data_view out;
        data_view in;
        steady_clock::time_point deadline{};
        std::optional<promise<host_completion>> done;
    };

    nvmf_qpair(int fd, std::uint16_t qid, unsigned depth, std::chrono::milliseconds io_timeout);
    future<> handshake(tcp_digests want);
    // Sends a PDU header (plus its digest when negotiated), then optionally
    // `len` bytes of `data` from `offset` (plus its digest). Caller holds
    // the send lock.
    future<bool> send_pdu(const void* header, std::size_t hlen, const data_view* data, std::uint32_t offset,
                          std::uint32_t len);
    future<> receive_loop();
    future<bool> recv_exact(void* buf, std::size_t len);
    future<bool> recv_into(const data_view& v, std::uint32_t offset, std::uint32_t len);
    std::uint32_t digest_of(const data_view& v, std::uint32_t offset, std::uint32_t len) const;
    future<bool> skip(std::size_t n);
    future<bool> send_all(const void* buf, std::size_t len);
    future<bool> send_view(const data_view& v, std::uint32_t offset, std::uint32_t len);
    future<bool> on_r2t(const tcp::r2t& r);
    slot* find(std::uint16_t cid) noexcept;
    void finish(slot& s, host_completion c);
    void release(slot& s) noexcept;
    void fail_all() noexcept;
    void sweep() noexcept;

    int _fd;
    uring& _io;
    const std::uint16_t _qid;
    const unsigned _depth;
    const std::chrono::milliseconds _timeout;
    std::uint32_t _maxh2cdata = tcp::min_maxh2cdata;
    bool _dead = false;
    std::atomic<std::int32_t>* _abandoned_count = nullptr;
    bool _hdgst = false;
    bool _ddgst = false;
    std::function<void()> _on_lost;
    bool _closed = false;
    std::vector<slot> _slots;
    unsigned _next_slot = 0;
    unsigned _busy = 0;
    struct slot_waiter {
        promise<bool> ready;  // true: look again for a slot; false: timed out
        steady_clock::time_point deadline;
    };
    std::deque<slot_waiter> _slot_waiters;  // FIFO, so by deadline too
    async_mutex _send_lock;
    std::optional<future<>> _receiver;
    timer _sweeper;
    std::vector<std::byte> _scratch;
};

}  // namespace ioe::nvme
