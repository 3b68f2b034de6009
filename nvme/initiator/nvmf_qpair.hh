// The host side of one NVMe/TCP queue pair (the initiator's mirror of
// nvme/target/tcp_qpair.hh): one TCP connection on one shard, ICReq/ICResp,
// then command capsules in and out.
//
// A command takes a slot of the CID table (CID = generation << 7 | slot, so a
// CID is not reused the moment its response arrives) and waits for its
// CapsuleResp (or a C2HData with SUCCESS). Receiving: each socket receive
// takes whatever the socket holds into the connection's buffer
// (nvme/transport/pdu_receiver.hh) and every complete PDU in it is handled
// before the next receive: CapsuleResp completes its command, C2HData lands
// in the command's io_vecs at DATAO (copied from the buffer when it came
// with its header, received straight into them when large), R2T is answered
// with H2CData PDUs of at most MAXH2CDATA taken from the command's io_vecs.
// Sending: capsules and H2CData go into the connection's send queue
// (nvme/transport/pdu_sender.hh), flushed by one vectored send per reactor
// loop iteration; a command's buffers count as in transfer until the sender
// reports them sent, and an answer that arrives before that completes the
// command only then. Every command has a deadline, counted from
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
#include "nvme/transport/pdu_receiver.hh"
#include "nvme/transport/pdu_sender.hh"
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

class nvmf_qpair final : private tcp::pdu_sender::listener {
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
    ~nvmf_qpair() override;
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
        // Transfers using this slot's buffers right now (its capsule's data
        // queued to send, a C2HData being received, H2CData queued to send):
        // the command completes only when there is none.
        unsigned transfers = 0;
        bool answered = false;  // its answer came while a transfer was still running
        std::uint16_t cid = 0;
        std::uint16_t generation = 0;
        data_view out;
        data_view in;
        cqe answer{};
        steady_clock::time_point deadline{};
        std::optional<promise<host_completion>> done;
    };

    nvmf_qpair(int fd, std::uint16_t qid, unsigned depth, std::chrono::milliseconds io_timeout);
    future<> handshake(tcp_digests want);
    future<> receive_loop();
    // Receive handlers: false ends the connection.
    bool on_header();
    void on_data();
    // Queues the H2CData PDUs an R2T asks for (waits for room in the send
    // queue when it is full).
    future<bool> answer_r2t(tcp::r2t r);
    // Queues a PDU, waiting for room when the send queue is full; false
    // when the connection failed.
    future<bool> queue_pdu(std::span<const std::byte> header, const data_view* data, std::uint32_t offset,
                           std::uint32_t len, std::uint32_t token);
    void pdu_sent(std::uint32_t token, bool sent) noexcept override;
    void transfer_done(slot& s) noexcept;
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
    tcp::pdu_receiver _rx;
    tcp::pdu_sender _tx;
    slot* _rx_slot = nullptr;      // the C2HData being received is for it
    bool _rx_success = false;      // ... and carries SUCCESS
    std::uint16_t _rx_cid = 0;
    std::optional<future<>> _receiver;
    timer _sweeper;
};

}  // namespace ioe::nvme
