// One NVMe/TCP queue pair of the target: a TCP connection on one shard.
//
// State machine (per connection):
//   awaiting_icreq -> (ICReq, ICResp sent) -> awaiting_connect
//   -> (Fabrics Connect accepted) -> ready -> (peer closes, fatal error,
//   controller torn down) -> closing -> (commands drained) -> closed
//
// Receiving: each socket receive takes whatever the socket holds into the
// connection's buffer (nvme/transport/pdu_receiver.hh) and every complete
// PDU in it is handled before the next receive; in-capsule and H2CData data
// land in the command's DMA buffer (copied from the buffer when they came
// with their header, received straight into it when large and still to
// come). Commands run as their own coroutines and never block the receive
// loop.
// Sending: answers (C2HData, CapsuleResp, R2T) go into the connection's send
// queue (nvme/transport/pdu_sender.hh), which one vectored send flushes at
// the end of the reactor loop iteration; a command's slot (and its buffer)
// is freed once its answer has gone to the socket. A read whose host
// disabled SQ flow control at Connect completes with a C2HData PDU carrying
// SUCCESS, without a CapsuleResp.
// CIDs: a host may reuse the CID of a command it gave up on. A held
// Asynchronous Event Request whose CID comes again is dropped (the host
// forgot it); a command whose CID is still executing is answered at once
// with Command ID Conflict, and the connection stays up.
// Writes larger than their in-capsule data get one R2T for the whole
// transfer; the H2CData PDUs it brings land in the command's buffer and wake
// the command. A malformed or out-of-order PDU ends the connection with a
// C2HTermReq and one log line.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nvme/spec/nvme_spec.hh"
#include "nvme/spec/nvme_tcp_spec.hh"
#include "nvme/target/target.hh"
#include "nvme/transport/pdu_receiver.hh"
#include "nvme/transport/pdu_sender.hh"
#include "runtime/dma.hh"
#include "runtime/uring.hh"

namespace ioe::nvme {

class tcp_qpair final : private tcp::pdu_sender::listener {
public:
    // On the shard that will own the connection: runs it until it closes,
    // then frees itself and closes fd.
    static void start(nvmf_target& target, int fd);

    enum class state { awaiting_icreq, awaiting_connect, ready, closing };

    // A command in flight (slot index = R2T transfer tag).
    struct command {
        bool busy = false;
        sqe cmd{};
        dma_buffer data;           // the transfer's buffer (host data or data for the host)
        std::uint32_t length = 0;  // bytes the command transfers
        std::uint32_t received = 0;
        bool in_capsule = false;
        std::optional<promise<bool>> data_ready;  // R2T: all H2CData arrived (false: connection lost)
    };

    // What a command's handler produces.
    struct completion {
        std::uint16_t status = 0;  // make_status(...)
        std::uint32_t dw0 = 0;
        std::uint32_t dw1 = 0;
        std::span<const std::byte> data;  // sent to the host before the response (reads)
        bool hold = false;                // async event request: answered later (or never)
        bool close_after = false;         // Disconnect: close the queue pair once answered
    };

    // Admin queue, its shard: answers a held Asynchronous Event Request
    // with the controller's pending event, if any and if enabled.
    void report_async_events();
    // Ends the connection (the receive loop sees it and the pair closes).
    void shut_down_connection() noexcept;

    // ---- draining, for preempt-and-abort (its shard) ----
    // An I/O queue pair of subsystem s (connected now or still closing).
    bool io_queue_of(const subsystem* s) const noexcept;
    const host_id& host() const noexcept { return _ctrl->hostid; }
    std::uint64_t serial() const noexcept { return _serial; }
    // Starts a drain: data commands from now on are counted apart; returns
    // a token that drained() takes (true once every data command started
    // before begin_drain() has finished at the device).
    unsigned begin_drain() noexcept;
    bool drained(unsigned token) const noexcept;

private:
    static constexpr std::size_t max_held_aers = 4;  // Identify Controller AERL + 1

    // What the PDU being received carries data for.
    enum class rx_data { none, capsule, h2c };

    tcp_qpair(nvmf_target& target, int fd);
    ~tcp_qpair() override;
    future<> run();
    future<> close_connection();
    // Receive handlers: false ends the connection.
    bool on_header();
    bool on_data();
    bool on_icreq(const tcp::ic_req& req);
    bool on_capsule(const tcp::capsule_cmd& cap);
    bool on_h2c_data(const tcp::h2c_data& h);
    bool fatal(std::uint16_t fes, std::uint32_t fei, std::string_view what);

    // Command execution (target_commands.cc).
    future<> execute(command* c);
    // Queues a command's answer; its slot is freed once the answer is sent
    // (also for a held command).
    void finish_command(command* c, completion r);
    void complete_held(command* c, completion r);
    // A command that gets no slot (CID conflict): answered from its SQE.
    void answer_now(const sqe& cmd, std::uint16_t status);
    future<completion> admin_command(command* c);
    future<completion> fabrics_command(command* c);
    future<completion> io_command(command* c);
    future<completion> connect(command* c);
    // Reservation Register / Acquire / Release / Report (target_reservations.cc).
    future<completion> reservation_command(command* c);
    // Vendor Snapshot Namespace, C1h (target_vendor.cc).
    future<completion> vendor_snapshot(command* c);
    // Get / Set Features 83h, Reservation Persistence (admin queue).
    future<completion> reservation_persistence(command* c, bool set);
    // Get / Set Features 81h (Host Identifier) and 82h (Reservation
    // Notification Mask).
    completion reservation_feature(command* c, bool set);
    // Admin queue: answers a held Asynchronous Event Request with a pending
    // Reservation Log Page Available event; true if it did.
    bool report_reservation_event();
    // The namespace's reservation lets this host run this data command now
    // (this shard's copy; no lock). Other opcodes: true.
    bool reservation_allows(const sqe& cmd) const noexcept;
    // May this controller's host read (write = false) or write namespace
    // `nsid` now, by this shard's copy of its reservation?
    bool reservation_allows(std::uint32_t nsid, bool write) const noexcept;
    static bool is_reservation_command(std::uint8_t opcode) noexcept;
    // Counts a data command in its drain generation while it lives.
    struct drain_counted {
        unsigned& n;
        explicit drain_counted(unsigned& c) : n(c) { ++n; }
        ~drain_counted() { --n; }
        drain_counted(const drain_counted&) = delete;
        drain_counted& operator=(const drain_counted&) = delete;
    };
    completion identify(command* c);
    completion get_log_page(command* c);
    completion features(command* c, bool set);
    future<bool> fetch_data(command* c);  // R2T until the write data is here
    // Admin queue: tears the controller down when no Keep Alive came for KATO.
    future<> keep_alive_watch();

    // Sending: queued, flushed at the end of the loop iteration.
    bool queue_response(command* c, const completion& r);
    bool queue_r2t(command* c, std::uint16_t ttag);
    void pdu_sent(std::uint32_t token, bool sent) noexcept override;

    std::uint16_t next_sqhd() noexcept;
    void release_slot(command* c) noexcept;
    block_device* namespace_device(std::uint32_t nsid) const noexcept;

    nvmf_target& _target;
    int _fd;
    uring& _io;
    state _state = state::awaiting_icreq;
    bool _hdgst = false;
    bool _ddgst = false;
    bool _sq_flow_disabled = false;  // Connect CATTR: C2HData may carry SUCCESS
    std::uint8_t _hpda = 0;
    std::uint16_t _qid = 0;
    std::uint16_t _sqsize = 0;  // 0's based
    std::uint16_t _sqhd = 0;
    std::shared_ptr<controller> _ctrl;
    std::vector<command> _commands;
    std::vector<command*> _held_aers;  // admin queue: Asynchronous Event Requests held
    std::vector<std::uint16_t> _free_slots;  // indices of free commands (a stack)
    // Per slot: its CID | in_use_bit while the CID is taken (until its
    // answer is on the way); a compact array so the CID check per command
    // reads 512 bytes, not every command slot.
    static constexpr std::uint32_t cid_in_use = 1u << 16;
    std::vector<std::uint32_t> _slot_cid;
    unsigned _running = 0;  // commands executing
    std::optional<promise<>> _drained;
    tcp::pdu_receiver _rx;
    tcp::pdu_sender _tx;
    rx_data _rx_data = rx_data::none;
    command* _rx_cmd = nullptr;
    bool _close_after_send = false;  // Disconnect answered: close once it is sent
    std::uint64_t _cid_conflicts = 0;
    // Data commands (read, write, flush, write zeroes, DSM) executing, in
    // two generations: a drain flips _io_epoch and waits for the old one.
    std::uint64_t _serial = 0;
    unsigned _io_epoch = 0;
    std::array<unsigned, 2> _io_inflight{0, 0};
    bool _counted_live = false;  // counted in _ctrl->live_qpairs
};

}  // namespace ioe::nvme
