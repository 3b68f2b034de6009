// One NVMe/TCP queue pair of the target: a TCP connection on one shard.
//
// State machine (per connection):
//   awaiting_icreq -> (ICReq, ICResp sent) -> awaiting_connect
//   -> (Fabrics Connect accepted) -> ready -> (peer closes, fatal error,
//   controller torn down) -> closing -> (commands drained) -> closed
//
// The receive loop reads one PDU at a time (common header, rest of header
// and its digest, then data straight into the command's DMA buffer, then
// the data digest) and never blocks on a command: commands run as their own
// coroutines and answer through the send path, which a mutex keeps in order
// on the socket. Writes larger than their in-capsule data get one R2T for
// the whole transfer; the H2CData PDUs it brings land in the command's
// buffer and wake the command. A malformed or out-of-order PDU ends the
// connection with a C2HTermReq and one log line.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "nvme/spec/nvme_spec.hh"
#include "nvme/spec/nvme_tcp_spec.hh"
#include "nvme/target/target.hh"
#include "runtime/async_mutex.hh"
#include "runtime/dma.hh"
#include "runtime/uring.hh"

namespace ioe::nvme {

class tcp_qpair {
public:
    // On the shard that will own the connection: runs it until it closes,
    // then frees itself and closes fd.
    static void start(nvmf_target& target, int fd);

    enum class state { awaiting_icreq, awaiting_connect, ready, closing };

    // A command in flight (slot index = R2T transfer tag).
    struct command {
        bool busy = false;
        bool responding = false;   // answer being sent: its CID may already be reused
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

private:
    static constexpr std::size_t max_held_aers = 4;  // Identify Controller AERL + 1

    tcp_qpair(nvmf_target& target, int fd);
    future<> run();
    future<bool> recv_exact(void* buf, std::size_t len);
    future<bool> skip_bytes(std::size_t n);
    future<bool> recv_pdu();
    future<bool> on_icreq(const tcp::ic_req& req);
    future<bool> on_capsule(const tcp::capsule_cmd& cap);
    future<bool> on_h2c_data(const tcp::h2c_data& h);
    future<bool> fatal(std::uint16_t fes, std::uint32_t fei, const char* what);

    // Command execution (target_commands.cc).
    future<> execute(command* c);
    // Sends a command's answer and frees its slot (also for a held command).
    future<> finish_command(command* c, completion r);
    future<> complete_held(command* c, completion r);
    future<completion> admin_command(command* c);
    future<completion> fabrics_command(command* c);
    future<completion> io_command(command* c);
    future<completion> connect(command* c);
    completion identify(command* c);
    completion get_log_page(command* c);
    completion features(command* c, bool set);
    future<bool> fetch_data(command* c);  // R2T until the write data is here
    // Admin queue: tears the controller down when no Keep Alive came for KATO.
    future<> keep_alive_watch();

    // Sending (serialized).
    future<bool> send_all(std::span<const std::byte> bytes);
    future<bool> send_pdu(std::span<const std::byte> header, std::span<const std::byte> data, bool data_pdu);
    future<bool> send_response(command* c, const completion& r);
    future<bool> send_r2t(command* c, std::uint16_t ttag);

    std::uint16_t next_sqhd() noexcept;
    void release_slot(command* c) noexcept;
    block_device* namespace_device(std::uint32_t nsid) const noexcept;

    nvmf_target& _target;
    int _fd;
    uring& _io;
    state _state = state::awaiting_icreq;
    bool _hdgst = false;
    bool _ddgst = false;
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
    async_mutex _send_lock;
    std::array<std::byte, 256> _rx_header{};
    std::array<std::byte, 256> _tx_header{};
    std::array<std::byte, 64> _scratch{};
};

}  // namespace ioe::nvme
