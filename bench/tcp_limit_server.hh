// tcp_limit_server: the transport limit of nvmf_bench. A minimal NVMe/TCP
// responder on one pinned thread with its own io_uring (raw liburing, busy
// polling its completion queue), that answers our initiator with the same
// bytes our target sends and does nothing else:
//   * ICReq -> ICResp (no digests, CPDA 0, MAXH2CDATA 128 KiB);
//   * Connect -> success with controller ID 1; Property Get CAP/VS/CC/CSTS
//     and Property Set CC (CSTS.RDY follows CC.EN); Identify Controller /
//     Namespace / descriptor list from nvme/target/identify_data.hh; Set
//     Features Number of Queues grants what is asked; Keep Alive and any
//     other command: success;
//   * Read: a C2HData PDU (24-byte header, LAST_PDU) with the data from one
//     static buffer, then a 24-byte CapsuleResp, exactly as the target sends
//     a read (nvme/target/tcp_qpair.cc).
// Per connection it loops recv -> answer every complete capsule in the
// bytes received -> one send of all the answers -> recv: the fewest system
// calls a server can make for the same bytes, i.e. the most the transport
// (loopback TCP + io_uring + this client) gives.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

namespace ioe::bench {

struct limit_namespace {
    std::uint32_t block_size = 4096;
    std::uint64_t block_count = 0;
};

class tcp_limit_server {
public:
    tcp_limit_server(unsigned core, limit_namespace ns);
    ~tcp_limit_server();
    tcp_limit_server(const tcp_limit_server&) = delete;
    tcp_limit_server& operator=(const tcp_limit_server&) = delete;

    // Listens on 127.0.0.1 (any free port) and starts the thread; returns the
    // port. Throws std::runtime_error naming what failed.
    std::uint16_t start();
    // Stops the thread and closes every socket.
    void stop();

    std::uint64_t reads_served() const noexcept { return _reads.load(std::memory_order_relaxed); }
    // The first protocol problem it met ("" if none).
    std::string problem() const;

private:
    void run() noexcept;

    unsigned _core;
    limit_namespace _ns;
    int _listen_fd = -1;
    std::thread _thread;
    std::atomic<bool> _stop{false};
    std::atomic<std::uint64_t> _reads{0};
    std::string _problem;  // written by the thread; read after stop()
};

}  // namespace ioe::bench
