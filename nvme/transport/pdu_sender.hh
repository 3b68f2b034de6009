// The send side of an NVMe/TCP connection, shared by the target's and the
// initiator's queue pairs: a queue of PDUs that one vectored send (sendmsg,
// MSG_NOSIGNAL) flushes at the end of the reactor loop iteration in which
// they were queued. No PDU waits for another's completion: while one batch
// is on its way to the socket, the next one fills.
//
// Each PDU is framed here: HDGSTF/DDGSTF, PDO (padding to the peer's data
// alignment) and PLEN are set from what ICReq/ICResp negotiated, the header
// digest and the data digest (CRC32C, once per PDU) are computed here. The
// framed header and the digests are copied into the batch's arena; the data
// is not copied: it is sent from the caller's buffers, which stay valid until
// the sender reports the PDU's token sent (listener::pdu_sent). Adjacent
// pieces of the arena merge into one iovec, so a batch of 4 KiB reads is one
// iovec per header run and one per data buffer.
//
// Bounds: a batch holds at most `max_iov` iovecs, `arena_bytes` of framing
// and `max_iov` tokens; queue() returns false when a PDU does not fit, and
// space() becomes ready once the batch in flight has gone. A failed send ends
// the sender: every token queued, then or later, is reported not sent.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "nvme/spec/nvme_tcp_spec.hh"
#include "runtime/future.hh"
#include "runtime/reactor.hh"
#include "runtime/uring.hh"
#include "storage/block_device.hh"

namespace ioe::nvme::tcp {

class pdu_sender final : public end_of_loop_work {
public:
    class listener {
    public:
        virtual ~listener() = default;
        // The PDU queued with `token` has gone to the socket (sent) or
        // never will (the connection failed); its buffers are free again.
        virtual void pdu_sent(std::uint32_t token, bool sent) noexcept = 0;
    };

    static constexpr unsigned default_max_iov = 1024;
    static constexpr std::size_t default_arena_bytes = 32 * 1024;

    pdu_sender(uring& io, int fd, listener* l, unsigned max_iov = default_max_iov,
               std::size_t arena_bytes = default_arena_bytes);
    ~pdu_sender() override;
    pdu_sender(const pdu_sender&) = delete;
    pdu_sender& operator=(const pdu_sender&) = delete;

    // Digests negotiated, and the peer's PDU data alignment (0's based
    // dwords: HPDA when the target sends, CPDA when the host sends).
    void configure(bool header_digest, bool data_digest, std::uint8_t peer_pda = 0) noexcept;

    // Queues one PDU: `header` (hlen bytes; type, hlen and the type's own
    // flags filled; HDGSTF, DDGSTF, PDO and PLEN are set here), then
    // `data_len` bytes of `data` from `offset`, then their digest. token 0:
    // nothing to report. false: no room now (space()), or failed().
    bool queue(std::span<const std::byte> header, io_vecs data = {}, std::uint64_t offset = 0,
               std::uint32_t data_len = 0, std::uint32_t token = 0);
    // Whether `pdus` PDUs with `data_pieces` data pieces in all certainly
    // fit now (so that a caller can queue a group of PDUs all or none).
    bool room_for(unsigned pdus, unsigned data_pieces) const noexcept;
    // Queues bytes as they are (ICReq/ICResp, TermReq), copied.
    bool queue_raw(std::span<const std::byte> bytes);

    // Ready when the batch in flight has gone (or the sender failed, or
    // nothing is queued or in flight: then a PDU queue() refused is larger
    // than a whole batch and never fits).
    future<> space();
    // Ready when nothing is queued or in flight.
    future<> drained();
    bool failed() const noexcept { return _failed; }
    bool idle() const noexcept { return !_sending && _pending.iov_count == 0; }

    // Batches of at least this many bytes go with zero-copy sendmsg
    // (IORING_OP_SENDMSG_ZC); 0: never.
    void set_zero_copy_min(std::size_t bytes) noexcept { _zero_copy_min = bytes; }

    // Counters.
    std::uint64_t sends() const noexcept { return _sends; }
    std::uint64_t pdus() const noexcept { return _pdus; }

    void run_end_of_loop() noexcept override;

private:
    struct batch {
        std::unique_ptr<iovec[]> iov;
        unsigned iov_count = 0;
        std::unique_ptr<std::byte[]> arena;
        std::size_t arena_used = 0;
        std::unique_ptr<std::uint32_t[]> tokens;
        unsigned token_count = 0;
        std::size_t bytes = 0;
    };
    void init(batch& b);
    void append(batch& b, std::byte* p, std::size_t len) noexcept;
    void kick() noexcept;
    future<> send_in_flight();
    void report(batch& b, bool sent) noexcept;
    void fail_pending() noexcept;
    void wake_waiters() noexcept;

    uring& _io;
    int _fd;
    listener* _listener;
    unsigned _max_iov;
    std::size_t _arena_bytes;
    bool _hdgst = false;
    bool _ddgst = false;
    std::uint8_t _peer_pda = 0;
    batch _pending;
    batch _in_flight;
    bool _sending = false;
    bool _failed = false;
    std::vector<promise<>> _space;    // rare: a batch full
    std::vector<promise<>> _drained;  // close only
    std::size_t _zero_copy_min = 0;
    std::uint64_t _sends = 0;
    std::uint64_t _pdus = 0;
};

}  // namespace ioe::nvme::tcp
