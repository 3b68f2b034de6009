// The NVMe-over-Fabrics/TCP target: subsystems (NQN, serial, model,
// namespaces = any block_device, allowed hosts), the controllers hosts
// create by connecting, and the TCP listener that places each accepted
// connection on a shard (round-robin) where its queue pair then lives.
//
// Subsystems are configured before start() and read-only afterwards, so
// every shard reads them without locks. The controller table changes only
// on Connect and teardown (control path, a mutex); the per-command path
// never touches it.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nvme/target/identify_data.hh"
#include "runtime/future.hh"
#include "runtime/timer.hh"
#include "storage/block_device.hh"

namespace ioe::nvme {

struct subsystem_config {
    std::string nqn;
    std::string serial = "ioengine0000";
    std::string model = "ioengine";
    std::vector<block_device*> namespaces;  // nsid = index + 1
    std::vector<std::string> allowed_hosts;  // empty: any host

    bool allows(const std::string& hostnqn) const;
};

// A controller: created by an admin-queue Connect, joined by I/O queues.
struct controller {
    std::uint16_t cntlid = 0;
    const subsystem_config* subsystem = nullptr;  // null: the discovery controller
    std::string hostnqn;
    unsigned admin_shard = 0;
    // Admin shard state.
    std::uint32_t cc = 0;
    std::uint32_t csts = 0;
    std::uint32_t kato_ms = 0;
    std::uint16_t io_queues = 0;  // granted by Set Features Number of Queues (0's based)
    steady_clock::time_point last_keep_alive = steady_clock::now();
    std::atomic<bool> dead{false};  // torn down: I/O queues close too

    bool discovery() const noexcept { return subsystem == nullptr; }

    // The sockets of its I/O queues (any shard; a mutex: connect and
    // teardown only). tear_down() marks it dead and shuts them all.
    void add_io_queue(int fd);
    void remove_io_queue(int fd);
    void tear_down();

private:
    std::mutex _io_mutex;
    std::vector<int> _io_fds;
};

struct target_limits {
    std::uint32_t in_capsule_bytes = 8192;  // in-capsule data per command
    std::uint8_t mdts = 5;                  // 2^5 * 4 KiB = 128 KiB per command
    std::uint16_t max_queue_entries = 128;  // sqsize + 1 at most
    std::uint32_t maxh2cdata = 131072;      // data per H2CData PDU we accept
    std::uint16_t max_io_queues = 64;
};

class nvmf_target {
public:
    nvmf_target(std::string address, std::uint16_t port, target_limits limits = {});
    ~nvmf_target();

    // Before start().
    void add_subsystem(subsystem_config s);

    // On the shard that will accept (normally 0): bind, listen, accept.
    // Throws std::system_error naming the address when it cannot listen.
    future<> start();
    // Stops accepting, closes every connection, waits for them to end.
    future<> stop();

    std::uint16_t port() const noexcept { return _port; }
    const std::string& address() const noexcept { return _address; }
    const target_limits& limits() const noexcept { return _limits; }

    // ---- used by queue pairs (any shard) ----
    const subsystem_config* find_subsystem(const std::string& nqn) const noexcept;
    std::shared_ptr<controller> create_controller(const subsystem_config* s, std::string hostnqn, unsigned shard);
    std::shared_ptr<controller> find_controller(std::uint16_t cntlid);
    void remove_controller(std::uint16_t cntlid);
    std::vector<discovery_entry> discovery_entries() const;
    std::uint64_t discovery_generation() const noexcept { return 1; }

    void connection_opened(int fd);
    void connection_closed(int fd);

private:
    future<> accept_loop();

    std::string _address;
    std::uint16_t _port;
    target_limits _limits;
    std::vector<std::unique_ptr<subsystem_config>> _subsystems;
    int _listen_fd = -1;
    bool _stopping = false;
    unsigned _next_shard = 0;
    std::optional<future<>> _accepting;
    std::uint64_t _accept_op = 0;

    std::mutex _mutex;  // controllers and open connections (control path only)
    std::map<std::uint16_t, std::shared_ptr<controller>> _controllers;
    std::uint16_t _next_cntlid = 1;
    std::set<int> _connections;
    std::atomic<unsigned> _open{0};
};

}  // namespace ioe::nvme
