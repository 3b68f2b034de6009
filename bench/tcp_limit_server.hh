// tcp_limit_server: the transport limit of nvmf_bench. A minimal NVMe/TCP
// responder on one pinned thread with its own io_uring (raw liburing; it
// polls the completion queue while busy and sleeps in it after 200 us
// without work, as the target's adaptive reactors do). It answers our
// initiator with the bytes our target sends, and does nothing else:
//   * ICReq -> ICResp (no digests, CPDA 0, MAXH2CDATA 128 KiB);
//   * Connect -> success with controller ID 1; Property Get CAP/VS/CC/CSTS
//     and Property Set CC (CSTS.RDY follows CC.EN); Identify Controller /
//     Namespace / descriptor list from nvme/target/identify_data.hh; Set
//     Features Number of Queues grants what is asked; Keep Alive and any
//     other command: success;
//   * Read: a C2HData PDU (24-byte header, LAST_PDU) with the data from one
//     static buffer, then a 24-byte CapsuleResp, as the target sends a read
//     (nvme/target/tcp_qpair.cc).
// Per connection one recv is always posted; every complete capsule in what
// arrived is answered into a buffer that goes out in one send as soon as
// the previous send is done (two buffers swap). That is about the fewest
// system calls a server can make for the same bytes, i.e. what the
// transport (loopback TCP, io_uring and this client) gives at most.
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
    // one_send_per_command: answer a capsule only once the previous answer
    // is sent (one send per read, as the target), instead of batching.
    tcp_limit_server(unsigned core, limit_namespace ns, bool one_send_per_command = false);
    ~tcp_limit_server();
    tcp_limit_server(const tcp_limit_server&) = delete;
    tcp_limit_server& operator=(const tcp_limit_server&) = delete;

    // Listens on 127.0.0.1 (any free port) and starts the thread; returns the
    // port. Throws std::runtime_error naming what failed.
    std::uint16_t start();
    // Stops the thread and closes every socket.
    void stop();

    std::uint64_t reads_served() const noexcept { return _reads.load(std::memory_order_relaxed); }
    // CPU seconds its thread used (user + system), valid after stop().
    double cpu_seconds() const noexcept { return _cpu_seconds; }
    // The first protocol problem it met ("" if none).
    std::string problem() const;

private:
    void run() noexcept;

    unsigned _core;
    limit_namespace _ns;
    bool _one_send_per_command;
    int _listen_fd = -1;
    std::thread _thread;
    std::atomic<bool> _stop{false};
    std::atomic<std::uint64_t> _reads{0};
    std::string _problem;       // written by the thread; read after stop()
    double _cpu_seconds = 0;    // likewise
};

}  // namespace ioe::bench
