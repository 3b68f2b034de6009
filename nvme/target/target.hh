// The NVMe-over-Fabrics/TCP target: subsystems (NQN, serial, model,
// namespaces = any block_device, allowed hosts), the controllers hosts
// create by connecting, and the TCP listener that places each accepted
// connection on a shard (round-robin) where its queue pair then lives.
//
// Subsystems, their namespaces and allowed hosts can change at any time,
// through calls on the target's home shard (the shard that created it).
// Each shard reads namespaces from its own copy of the subsystem's table,
// which the home shard replaces by a message to every shard: the
// per-command path reads it without locks or atomics. A namespace change
// is reported to connected hosts with a Namespace Attribute Changed
// asynchronous event (and the Changed Namespace List log page). The
// controller table and allowed hosts change only on Connect, teardown and
// configuration (control path, a mutex); the per-command path never
// touches them.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "nvme/spec/nvme_ana.hh"
#include "nvme/target/identify_data.hh"
#include "nvme/target/reservation_state.hh"
#include "runtime/future.hh"
#include "runtime/timer.hh"
#include "storage/block_device.hh"
#include "storage/reservation_port.hh"

namespace ioe::nvme {

class tcp_qpair;

// One namespace's reservation: the state, owned by the target's home shard,
// and one copy per shard that the I/O path of that shard reads without a
// lock (docs/nvmf.md, "Reservations"). The home shard replaces the copies
// (newer version wins) before a reservation command completes.
//
// The table belongs to the device, not to one namespace: every namespace
// over the device and every local user of it (a nexus's bdev:/// child,
// through a reservation_port) share it (nvmf_target::_device_tables).
struct namespace_reservations {
    explicit namespace_reservations(unsigned shards) : views(shards) {}
    reservation_state state;  // home shard only
    struct alignas(64) slot {
        reservation_view v;
    };
    std::vector<slot> views;  // index: shard
    // Its PTPL file: "<subsystem NQN>.ns<NSID>.resv" of the first share
    // (empty while only local users have it: they never set PTPL).
    std::string ptpl_name;
    // A preempt-and-abort took effect but its drain timed out: every later
    // successful Acquire waits for that drain first (home shard).
    bool drain_owed = false;
    const reservation_view& local() const noexcept;

    // A local user: its host and how many of its operations are in flight
    // on the calling shard (its reserved_device's channel there).
    struct local_user {
        host_id host{};
        std::function<unsigned()> in_flight_here;
    };
    // The list, and every call of in_flight_here: a port's destructor takes
    // it to leave, so a drain never calls into a user that is gone.
    std::mutex users_mutex;
    std::vector<const local_user*> users;
};

// Where the target keeps reservations that persist through power loss (the
// daemon: files under <data dir>/reservations, written on its control
// thread; see reservation_file.hh). Both run on the home shard and may
// suspend; save completes once the bytes are durable.
struct reservation_store {
    std::function<future<>(std::string name, std::vector<std::byte> bytes)> save;
    std::function<future<std::optional<std::vector<std::byte>>>(std::string name)> load;
};

// What add_subsystem() takes.
struct subsystem_config {
    std::string nqn;
    std::string serial = "ioengine0000";
    std::string model = "ioengine";
    std::vector<block_device*> namespaces;  // nsid = index + 1
    std::vector<std::string> allowed_hosts;  // empty: any host
    // Each namespace's ANA state through this engine (docs/ana.md), parallel
    // to `namespaces`; missing entries are optimized.
    std::vector<ana_state> ana;
};

// A live subsystem. Its identity is fixed; namespaces and allowed hosts
// change through nvmf_target.
class subsystem {
public:
    static constexpr std::uint32_t max_namespaces = 1024;

    subsystem(const subsystem_config& cfg, unsigned shards);

    const std::string nqn;
    const std::string serial;
    const std::string model;

    // This shard's view of the namespaces (no lock: only this shard writes
    // it, when the home shard publishes a new table).
    block_device* namespace_of(std::uint32_t nsid) const noexcept;
    // This shard's copy of a namespace's reservation (null: inactive nsid).
    namespace_reservations* reservations_of(std::uint32_t nsid) const noexcept;
    std::vector<std::uint32_t> active_nsids() const;  // ascending
    std::uint32_t highest_nsid() const noexcept;
    // This shard's view of a namespace's ANA state as configured (inactive:
    // inaccessible).
    ana_state ana_of(std::uint32_t nsid) const noexcept;
    // What the ANA log reports: the configured state, or inaccessible when
    // the device says its path no longer serves (a fenced nexus).
    ana_state effective_ana_of(std::uint32_t nsid) const noexcept;
    // Incremented by every ANA state change (the log's change count).
    std::uint64_t ana_change_count() const noexcept { return _ana_changes.load(std::memory_order_relaxed); }
    // Any shard. True for the first caller that sees namespace `nsid`'s
    // device turn path-inaccessible (a nexus fenced by a newer incarnation,
    // a forwarding path cut off) while its configured ANA state serves
    // I/O, or, for the device counted so, serve again (a forwarding path
    // whose far side answers again): the effective state changed, so it
    // bumps the change count; the caller tells the controllers
    // (nvmf_target::check_lost_paths).
    bool note_lost_path(std::uint32_t nsid) noexcept;

    // Any shard (a mutex: Connect and configuration only).
    bool allows(const std::string& hostnqn) const;
    std::vector<std::string> allowed_hosts() const;

private:
    friend class nvmf_target;
    struct alignas(64) shard_view {
        std::vector<block_device*> ns;  // index nsid - 1; null: inactive
        std::vector<std::shared_ptr<namespace_reservations>> resv;  // index nsid - 1
        std::vector<ana_state> ana;  // index nsid - 1
    };
    std::vector<shard_view> _views;
    std::vector<block_device*> _namespaces;  // home shard: the table being published
    std::vector<std::shared_ptr<namespace_reservations>> _reservations;  // home shard, parallel to _namespaces
    std::vector<ana_state> _ana;  // home shard, parallel to _namespaces
    std::atomic<std::uint64_t> _ana_changes{1};
    // Per nsid: the device whose lost path was last counted (any shard).
    std::array<std::atomic<const block_device*>, max_namespaces> _lost_path{};
    mutable std::mutex _hosts_mutex;
    std::vector<std::string> _allowed;
};

// A controller: created by an admin-queue Connect, joined by I/O queues.
struct controller {
    std::uint16_t cntlid = 0;
    std::shared_ptr<subsystem> subsys;  // null: the discovery controller
    std::string hostnqn;
    host_id hostid{};  // Connect data HOSTID: the host's identity for reservations
    unsigned admin_shard = 0;
    // Admin shard state.
    std::uint32_t cc = 0;
    std::uint32_t csts = 0;
    std::uint32_t kato_ms = 0;
    std::uint16_t io_queues = 0;  // granted by Set Features Number of Queues (0's based)
    std::uint32_t arbitration = 0x7;  // feature 01h: AB 7 (no burst limit), weights 0
    std::uint16_t temperature_over = 0x0157;  // feature 04h, kelvin: 343 K (70 C), Identify WCTEMP
    std::uint16_t temperature_under = 0;
    steady_clock::time_point last_keep_alive = steady_clock::now();
    // Asynchronous events (admin shard).
    tcp_qpair* admin = nullptr;  // its admin queue pair while connected
    std::uint32_t aec = 0;       // Asynchronous Event Configuration (feature 0Bh)
    std::vector<std::uint32_t> changed_nsids;  // Changed Namespace List (log page 04h)
    bool ns_event_pending = false;  // to report on the next Asynchronous Event Request
    bool ns_event_masked = false;   // reported; masked until log page 04h is read
    // ANA Change notices (target_ana.cc): a namespace's ANA state changed.
    bool ana_event_pending = false;
    bool ana_event_masked = false;  // reported; masked until log page 0Ch is read
    void ana_changed();
    // Discovery controllers: the discovery log changed (a subsystem came or
    // went) and that is to be reported / was reported (masked until log
    // page 70h is read).
    bool discovery_event_pending = false;
    bool discovery_event_masked = false;
    std::uint32_t error_recovery = 0;  // feature 05h (TLER, DULBE): stored
    // Reservation notifications (admin shard; target_reservations.cc): the
    // log page 80h entries not yet read, oldest first, at most 255.
    struct resv_log_entry {
        std::uint64_t count = 0;
        std::uint8_t type = 0;
        std::uint32_t nsid = 0;
    };
    std::vector<resv_log_entry> resv_notices;
    std::uint64_t resv_log_count = 0;  // the last Log Page Count given
    std::uint32_t resv_mask = 0;       // feature 82h, one mask for every namespace
    bool resv_event_pending = false;
    bool resv_event_masked = false;    // reported; masked until log page 80h is read
    void reservation_notice(std::uint8_t type, std::uint32_t nsid);
    // Log page 80h: the oldest notice (an empty page when none); consumed
    // unless `retain`.
    void take_reservation_notice(bool retain, std::span<std::byte, 64> out);
    std::atomic<bool> dead{false};  // torn down: I/O queues close too
    // Queue pairs (admin and I/O, any shard) not yet closed and drained: a
    // new controller of the same host waits for 0 (docs/nvmf.md).
    std::atomic<int> live_qpairs{0};

    bool discovery() const noexcept { return subsys == nullptr; }
    // Admin shard: records `nsid` as changed and reports the event if the
    // host enabled it and has an Asynchronous Event Request outstanding.
    void namespace_changed(std::uint32_t nsid);
    // Admin shard of a discovery controller: the discovery log changed.
    void discovery_changed();

    // The sockets of its I/O queues (any shard; a mutex: connect and
    // teardown only). tear_down() marks it dead and shuts them all.
    void add_io_queue(int fd);
    void remove_io_queue(int fd);
    std::size_t io_queue_count();
    void tear_down();

private:
    std::mutex _io_mutex;
    std::vector<int> _io_fds;
};

struct target_limits {
    std::uint32_t in_capsule_bytes = 8192;  // in-capsule data per command
    std::uint8_t mdts = 8;                  // 2^8 * 4 KiB = 1 MiB per command (the DMA pool's largest buffer)
    std::uint16_t max_queue_entries = 128;  // sqsize + 1 at most
    std::uint32_t maxh2cdata = 131072;      // data per H2CData PDU we accept
    std::uint16_t max_io_queues = 64;
    // Send batches of at least this many bytes with zero-copy sendmsg; 0:
    // never (see docs/nvmf.md: on loopback it measured slower).
    std::size_t zero_copy_send_min = 0;
    // A successful read completes in its C2HData (SUCCESS) even when the
    // host kept SQ flow control on (SPDK's target does; TP 8000 ties the
    // flag to SQ flow control being disabled, so it is off by default).
    bool c2h_success_always = false;
    // Preempt-and-abort waits this long for the preempted hosts' commands
    // to finish at the device, then fails; a Connect of a host whose old
    // controller still drains waits as long, then gets Controller Busy.
    std::uint32_t drain_timeout_ms = 10000;
    // Controller IDs this engine hands out: engines that serve one
    // subsystem NQN as paths of one volume need disjoint ranges (a host
    // refuses a second controller of a subsystem with an ID it has).
    std::uint16_t cntlid_first = 1;
    std::uint16_t cntlid_last = 0xffef;
};

// A Reservation Register / Acquire / Release as the home shard applies it.
// opcode 0 with cdw10 bit 0 = PTPL: Set Features Reservation Persistence.
struct reservation_request {
    host_id host{};
    std::uint16_t cntlid = 0xffff;
    std::uint8_t opcode = 0;
    std::uint32_t cdw10 = 0;
    std::uint64_t key1 = 0;  // CRKEY
    std::uint64_t key2 = 0;  // NRKEY / PRKEY
};

struct subsystem_namespace {
    std::uint32_t nsid = 0;
    std::string device;  // block_device name
    std::uint32_t block_size = 0;
    std::uint64_t block_count = 0;
    ana_state ana = ana_state::optimized;  // as the ANA log reports it (a fenced nexus: inaccessible)
};

struct subsystem_info {
    std::string nqn;
    std::string serial;
    std::string model;
    std::vector<subsystem_namespace> namespaces;
    std::vector<std::string> allowed_hosts;  // empty: any host
};

struct host_info {
    std::uint16_t cntlid = 0;
    std::string subnqn;
    std::string hostnqn;
    std::uint16_t io_queues = 0;  // I/O queues connected now
};

class nvmf_target final : public reservation_authority {
public:
    // On the home shard (the one that runs configuration calls).
    nvmf_target(std::string address, std::uint16_t port, target_limits limits = {});
    ~nvmf_target();

    // ---- configuration: home shard, before or after start() ----
    // Errors are storage_error: already_exists, not_found, invalid_argument
    // (a bad NQN, the discovery NQN, too many namespaces), with a message
    // naming the subsystem.
    future<> add_subsystem(subsystem_config s);
    // Tears down its controllers (their hosts see the connection end).
    future<> remove_subsystem(std::string nqn);
    // The new namespace's ID (the lowest free one). Connected hosts get a
    // Namespace Attribute Changed event.
    future<std::uint32_t> add_namespace(std::string nqn, block_device* dev);
    // Commands already running on it finish; later ones see an inactive
    // namespace. The caller closes the device afterwards.
    future<> remove_namespace(std::string nqn, std::uint32_t nsid);
    future<> set_allowed_hosts(std::string nqn, std::vector<std::string> hosts);
    // ---- Asymmetric Namespace Access (target_ana.cc, docs/ana.md) ----
    // Sets a namespace's ANA state through this engine; connected hosts get
    // an ANA Change event. not_found: no such subsystem or namespace.
    future<> set_ana_state(std::string nqn, std::uint32_t nsid, ana_state state);
    // Puts `dev` in place of namespace `nsid`'s device (a standby path
    // taking over: the same identity, now served) in state `state`, with an
    // ANA Change event. The old device's commands still running finish on
    // it. invalid_argument when the identity (UUID, block size, block
    // count) differs: a host would see another volume under the same NSID.
    future<> replace_namespace(std::string nqn, std::uint32_t nsid, block_device* dev, ana_state state);
    std::vector<subsystem_info> subsystems() const;
    std::vector<host_info> connected_hosts() const;
    unsigned home_shard() const noexcept { return _home; }

    // On the shard that will accept (normally 0): bind, listen, accept.
    // Throws std::system_error naming the address when it cannot listen.
    future<> start();
    // Stops accepting, closes every connection, waits for them to end.
    future<> stop();

    std::uint16_t port() const noexcept { return _port; }
    const std::string& address() const noexcept { return _address; }
    const target_limits& limits() const noexcept { return _limits; }

    // ---- used by queue pairs (any shard) ----
    std::shared_ptr<subsystem> find_subsystem(const std::string& nqn) const;
    std::shared_ptr<controller> create_controller(std::shared_ptr<subsystem> s, std::string hostnqn, unsigned shard);
    std::shared_ptr<controller> find_controller(std::uint16_t cntlid);
    void remove_controller(std::uint16_t cntlid);
    std::vector<discovery_entry> discovery_entries() const;
    std::uint64_t discovery_generation() const noexcept { return _generation.load(std::memory_order_relaxed); }

    void connection_opened(int fd);
    void connection_closed(int fd);

    // Reservations (target_reservations.cc): from the command's shard,
    // applied on the home shard, every shard's copy updated (and, for
    // preempt-and-abort, every unregistered host's commands drained)
    // before the returned status.
    future<std::uint16_t> change_reservation(std::shared_ptr<subsystem> s, std::uint32_t nsid,
                                             reservation_request rq);
    // Home shard, before namespaces are added: PTPL through this store
    // (without one, RESCAP has no PTPL bit and CPTPL = 11b is refused).
    void set_reservation_store(reservation_store store) { _store = std::move(store); }
    bool persists_reservations() const noexcept { return static_cast<bool>(_store.save); }
    // Queue pairs of this shard (their constructor / destructor).
    void qpair_opened(tcp_qpair* q);
    void qpair_closed(tcp_qpair* q);
    // A controller of this host on this subsystem was torn down and some
    // of its queue pairs still run commands.
    bool host_draining(const subsystem* s, const host_id& h);
    // Waits (up to drain_timeout_ms) until host_draining() is false.
    future<bool> wait_host_drained(const subsystem* s, host_id h);
    // Any shard: counts the namespaces of `s` whose device lost its path
    // since the last look (subsystem::note_lost_path) and sends the ANA
    // change event if any did. The I/O path and each admin queue's
    // keep-alive watch (at least once a second) call it.
    void check_lost_paths(const std::shared_ptr<subsystem>& s, std::uint32_t nsid = 0);

    // Local users of a device take part in its reservation through a port
    // (storage/reservation_port.hh; target_local_reservations.cc).
    std::unique_ptr<reservation_port> attach(block_device& dev, const std::array<std::uint8_t, 16>& host,
                                             std::function<unsigned()> in_flight_here) override;
    // A local user's request, applied on the home shard as a host's.
    future<std::uint16_t> change_device_reservation(std::shared_ptr<namespace_reservations> r,
                                                    reservation_request rq);

private:
    future<std::uint16_t> apply_reservation(std::shared_ptr<subsystem> s, std::uint32_t nsid, reservation_request rq);
    // Home shard: what a request does to the device's table, whoever sent it.
    future<std::uint16_t> apply_to_table(std::shared_ptr<namespace_reservations> r, reservation_request rq,
                                         std::string where);
    future<> publish_reservation(std::shared_ptr<namespace_reservations> r);
    // Home shard: (subsystem, nsid) of every namespace over this table.
    std::vector<std::pair<std::shared_ptr<subsystem>, std::uint32_t>> namespaces_of(
        const namespace_reservations* r) const;
    // Log page 80h entries (and the event) to every controller of those
    // hosts, on every namespace over the table.
    void send_reservation_notices(const namespace_reservations* r,
                                  const std::vector<std::pair<host_id, std::uint8_t>>& notices);
    // The device's table (created, unloaded, when it has none): _mutex held.
    std::shared_ptr<namespace_reservations> device_table_locked(const block_device* dev, bool& created);
    // A namespace's reservation, its PTPL file loaded (home shard, before
    // the namespace is published). Throws storage_error on a corrupt file.
    future<std::shared_ptr<namespace_reservations>> make_reservations(std::string subnqn, std::uint32_t nsid,
                                                                      block_device* dev);
    future<bool> drain_unregistered(std::shared_ptr<namespace_reservations> r);
    future<bool> drain_on_shard(std::vector<std::shared_ptr<subsystem>> subs,
                                std::shared_ptr<namespace_reservations> r, steady_clock::time_point deadline);

    future<> accept_loop();
    void check_home(const char* what) const;
    std::shared_ptr<subsystem> subsystem_or_throw(const std::string& nqn) const;
    // Sends the subsystem's namespace table to every shard's view.
    future<> publish_namespaces(std::shared_ptr<subsystem> s);
    // Reports a namespace change to every controller of `s`.
    void notify_namespace_changed(const std::shared_ptr<subsystem>& s, std::uint32_t nsid);
    // Reports a change of the discovery log to every discovery controller.
    void notify_discovery_changed();
    // Reports an ANA state change to every controller of `s`.
    void notify_ana_changed(const std::shared_ptr<subsystem>& s);

    std::string _address;
    std::uint16_t _port;
    target_limits _limits;
    unsigned _home = 0;
    std::vector<std::shared_ptr<subsystem>> _subsystems;  // guarded by _mutex
    std::atomic<std::uint64_t> _generation{1};            // discovery log generation
    int _listen_fd = -1;
    std::atomic<bool> _stopping{false};  // set by stop() on the home shard; read on any shard
    unsigned _next_shard = 0;
    std::optional<future<>> _accepting;
    std::uint64_t _accept_op = 0;

    mutable std::mutex _mutex;  // subsystems, controllers and open connections (control path only)
    std::map<std::uint16_t, std::shared_ptr<controller>> _controllers;
    std::uint16_t _next_cntlid = 0;  // 0: start at limits.cntlid_first
    std::set<int> _connections;
    std::atomic<unsigned> _open{0};
    std::vector<std::weak_ptr<controller>> _retired;  // torn down, maybe still draining (_mutex)
    struct alignas(64) shard_qpairs {
        std::vector<tcp_qpair*> list;  // touched by its shard only
    };
    std::vector<shard_qpairs> _qpairs;
    reservation_store _store;
    // Each device's reservation table while a namespace or a local user
    // holds it (_mutex; keyed by the device, checked against its UUID).
    struct device_table {
        uuid id;
        std::weak_ptr<namespace_reservations> table;
    };
    std::map<const block_device*, device_table> _device_tables;
};

}  // namespace ioe::nvme
