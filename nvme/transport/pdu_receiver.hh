// The receive side of an NVMe/TCP connection, shared by the target's and the
// initiator's queue pairs: a per-connection buffer that each socket receive
// fills with whatever the socket holds, and a parser that hands out every
// complete PDU in it before the next receive.
//
// Pure and socket-free (the owner does the receives), so unit tests and fuzz
// targets can feed it bytes split at any point. The owner's loop:
//
//   for (;;) {
//       for (auto ev = rx.next(); ev != event::need_more; ev = rx.next()) {
//           header: look at rx.header(); for a PDU with data, call
//                   rx.deliver_to(...) or rx.discard_data() before next()
//           data:   the data of that PDU has landed (digest checked)
//           error:  rx.error() says what broke (FES/FEI for a TermReq)
//       }
//       n = recvmsg(fd, rx.receive_iov(...));  rx.received(n);
//   }
//
// Data bytes already in the buffer are copied to the PDU's destination; when
// more than `direct_min` bytes of data are still to come, the next receive
// puts them straight into the destination (and whatever follows into the
// buffer, in the same recvmsg): large transfers are copied once, by the
// kernel, and small ones ride along with their headers.
//
// States: header (want the 8-byte common header, then HLEN + digest) ->
// [pad (PDO padding, discarded) -> data (into the destination) -> digest
// (4 bytes, checked)] -> header. A PDU whose header fails the checks puts the
// receiver in the error state for good.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "nvme/spec/nvme_tcp_check.hh"
#include "nvme/spec/nvme_tcp_spec.hh"
#include "storage/block_device.hh"

namespace ioe::nvme::tcp {

class pdu_receiver {
public:
    static constexpr std::size_t default_buffer_bytes = 64 * 1024;
    // Data still to come beyond this goes straight into its destination.
    static constexpr std::size_t direct_min = 2048;
    // iovecs receive_iov() may fill: pieces of the destination, and the buffer.
    static constexpr unsigned max_receive_iov = 9;

    explicit pdu_receiver(std::size_t buffer_bytes = default_buffer_bytes);
    pdu_receiver(const pdu_receiver&) = delete;
    pdu_receiver& operator=(const pdu_receiver&) = delete;

    // What ICReq/ICResp negotiated, the largest PDU accepted, and our PDU
    // data alignment (0's based dwords). Before ICReq/ICResp: no digests.
    void configure(bool header_digest, bool data_digest, std::uint32_t max_plen, std::uint8_t pda = 0) noexcept;

    enum class event : std::uint8_t {
        need_more,  // receive more bytes
        header,     // a PDU header is complete (digest checked): header()
        data,       // the data of the PDU whose header came last has landed
        error,      // a header check or a digest failed: error()
    };
    event next() noexcept;

    // After event::header, until the next call to next().
    const pdu_common_header& common() const noexcept { return _ch; }
    std::span<const std::byte> header() const noexcept { return {_hdr, _ch.hlen}; }
    std::uint8_t type() const noexcept { return _ch.pdu_type; }
    // Bytes of data the current PDU carries (0: none; no data event follows).
    std::uint32_t data_length() const noexcept { return _data_len; }

    // After event::header of a PDU with data, before next(): where its data
    // goes, `data_length()` bytes from `offset` into `iov` (which must stay
    // valid until the data event), or nowhere.
    void deliver_to(io_vecs iov, std::uint64_t offset = 0) noexcept;
    void deliver_to(std::byte* dst) noexcept;
    void discard_data() noexcept;

    struct failure {
        std::string_view what;   // for the log
        std::uint16_t fes = 0;   // fatal error status of a TermReq
        std::uint32_t fei = 0;   // fatal error information
    };
    const failure& error() const noexcept { return _error; }
    // The header bytes of the PDU last parsed or in error (at least its
    // common header once 8 bytes came, at most max_header_bytes): what a
    // TermReq sends back.
    std::span<const std::byte> last_header() const noexcept { return {_hdr, _hdr_len}; }

    // Socket side: where the next receive's bytes go (at least one iovec,
    // at most max_receive_iov), and how many arrived there.
    unsigned receive_iov(iovec* out) noexcept;
    void received(std::size_t n) noexcept;

    // Bytes received but not parsed yet (tests).
    std::size_t buffered() const noexcept { return _end - _start; }

private:
    enum class phase : std::uint8_t { header, pad, data, digest, failed };

    event fail(std::string_view what, std::uint16_t fes, std::uint32_t fei = 0) noexcept;
    // Makes `n` contiguous bytes from _start possible (compacts).
    void make_room(std::size_t n) noexcept;
    // Copies up to `n` buffered bytes into the destination; returns how many.
    std::size_t copy_out(std::size_t n) noexcept;
    std::uint32_t data_digest() const noexcept;

    std::unique_ptr<std::byte[]> _buf;
    std::size_t _cap;
    std::size_t _start = 0;  // first unparsed byte
    std::size_t _end = 0;    // end of received bytes

    bool _hdgst = false;
    bool _ddgst = false;
    std::uint32_t _max_plen = 0;
    std::uint8_t _pda = 0;

    phase _phase = phase::header;
    pdu_common_header _ch{};
    std::byte _hdr[max_header_bytes + digest_bytes]{};
    std::size_t _hdr_len = 0;
    std::uint32_t _data_len = 0;
    std::uint32_t _pad_left = 0;
    std::uint32_t _data_done = 0;  // bytes of data landed so far
    bool _has_ddgst = false;
    bool _sink_set = false;        // deliver_to/discard_data called for this PDU
    bool _discard = false;
    io_vec _single{};
    io_vecs _sink;
    std::uint64_t _sink_offset = 0;
    // Direct receive in flight: receive_iov() gave out this many bytes of
    // the destination ahead of the buffer.
    std::size_t _direct_given = 0;
    failure _error;
};

}  // namespace ioe::nvme::tcp
