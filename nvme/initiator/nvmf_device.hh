// nvmf_device: a remote NVMe/TCP namespace as a block_device (the initiator,
// first cut; DESIGN.md section 5).
//
// connect() runs on the owner shard: TCP connect, ICReq/ICResp, Fabrics
// Connect on the admin queue (dynamic controller), CAP, CC.EN=1, CSTS.RDY,
// Identify Controller (MDTS, IOCCSZ), Set Features Number of Queues (one I/O
// queue per shard), Identify Namespace 1 (block size, block count) and its
// descriptor list (uuid). The admin queue stays on the owner shard and sends
// a Keep Alive every KATO / 2.
//
// Each shard's channel opens its own I/O queue connection (qid = shard + 1)
// on its first I/O: Read (C2HData lands straight in the caller's io_vecs),
// Write (in-capsule up to IOCCSZ, else R2T + H2CData), Flush, Write Zeroes,
// Dataset Management deallocate (unmap). Transfers above MDTS are split.
// A CQE's status maps to io_status as (SCT << 8) | SC; a command that does
// not complete within the I/O timeout completes as io_status::aborted; a lost
// connection fails the commands in flight on it with namespace_not_ready.
//
// Reconnect: when the admin connection is lost (or a Keep Alive times out)
// the owner shard reconnects the whole association with back-off
// (reconnect_delay, doubling up to max_reconnect_delay): a new admin queue,
// the controller brought up again and checked to show the same namespace
// (block size; size not smaller). Each shard's channel notices its dead I/O
// queue on its next I/O and opens a new one on the current controller; an
// I/O waits up to fast_io_fail for that, then fails with
// namespace_not_ready. After ctrl_loss_timeout without success the device
// stops trying and fails every I/O until it is closed.
// Digests: header and data digests (CRC32C) when the options ask for them.
// Not here: multipath, ANA, AER.
#pragma once

#include <chrono>
#include <cstdint>
#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "nvme/initiator/nvmf_qpair.hh"
#include "runtime/timer.hh"
#include "storage/block_device.hh"

namespace ioe::nvme {

struct nvmf_options {
    std::chrono::milliseconds kato{30000};        // keep-alive timeout given to the controller
    std::chrono::milliseconds io_timeout{30000};  // per command
    std::chrono::milliseconds reconnect_delay{100};       // first back-off after a loss
    std::chrono::milliseconds max_reconnect_delay{2000};  // the back-off doubles up to this
    std::chrono::milliseconds ctrl_loss_timeout{60000};   // give up reconnecting after this long (0: never try)
    std::chrono::milliseconds fast_io_fail{5000};         // an I/O waits this long for a reconnect
    bool header_digest = false;
    bool data_digest = false;
    unsigned admin_depth = 32;
    // The 128-bit host identifier sent in every Connect (the reservation
    // identity at the target); all zero: a random one per device.
    std::array<std::uint8_t, 16> host_id{};
};

class nvmf_device final : public block_device {
public:
    // Owner shard. Throws storage_error naming host:port/subnqn, the step
    // and the NVMe status (or the socket error).
    static future<std::unique_ptr<nvmf_device>> connect(std::string name, std::string host, std::uint16_t port,
                                                        std::string subnqn, std::string hostnqn,
                                                        nvmf_options opts = {});
    ~nvmf_device() override;

    const std::string& host() const noexcept { return _host; }
    std::uint16_t port() const noexcept { return _port; }
    const std::string& subnqn() const noexcept { return _subnqn; }
    const std::string& hostnqn() const noexcept { return _hostnqn; }
    const std::array<std::uint8_t, 16>& hostid() const noexcept { return _hostid; }
    // The current controller (changes on reconnect); any shard.
    std::uint16_t cntlid() const noexcept { return static_cast<std::uint16_t>(_session.load() & 0xffff); }
    // Connected now (false while reconnecting or after giving up); any shard.
    bool connected() const noexcept { return _session.load() & session_up; }
    // Gave up reconnecting (ctrl_loss_timeout); any shard.
    bool lost() const noexcept { return _lost.load(); }
    // Successful reconnects so far; any shard.
    std::uint32_t reconnects() const noexcept { return _reconnects.load(); }
    const nvmf_options& options() const noexcept { return _opts; }
    std::uint32_t in_capsule_bytes() const noexcept { return _in_capsule; }
    std::uint32_t max_transfer_bytes() const noexcept { return _max_transfer; }
    std::uint16_t io_queues() const noexcept { return _io_queues; }
    // "host:port/subnqn", the prefix of every error message.
    std::string where() const;
    // Waits until the controller is connected and every command a queue
    // gave up on has been answered by the target (it has then finished
    // executing there) or its connection is gone; busy after `limit`,
    // unavailable at once when reconnecting was given up (lost()).
    future<> settle(std::chrono::milliseconds limit) override;
    // Commands given up on and not answered yet, over every shard.
    std::int32_t abandoned() const noexcept { return _abandoned.load(std::memory_order_relaxed); }

    // Owner shard: Snapshot Namespace (vendor admin command C1h,
    // docs/nvmf-vendor.md) of namespace 1 on the admin queue; the status and
    // whether the snapshot existed already under `txid` (a retry).
    future<std::pair<io_status, bool>> snapshot_namespace(std::string name, std::string txid) const;

    // Opens the I/O queue `qid` on the calling shard for controller
    // `cntlid` (used by channels).
    future<std::unique_ptr<nvmf_qpair>> open_io_queue(std::uint16_t qid, std::uint16_t cntlid) const;

protected:
    std::unique_ptr<device_channel> open_channel() override;
    future<> close_backend() override;

private:
    nvmf_device(std::string name, uuid id, std::uint32_t block_size, std::uint64_t block_count);
    void keep_alive_tick();
    void watch_admin();
    void admin_lost();
    future<> reconnect_loop();

    static constexpr std::uint32_t session_up = 1u << 31;
    std::string _host;
    std::uint16_t _port = 0;
    std::string _subnqn;
    std::string _hostnqn;
    std::array<std::uint8_t, 16> _hostid{};
    nvmf_options _opts;
    // Controller ID | up bit, published for the channels of every shard.
    std::atomic<std::uint32_t> _session{0};
    std::atomic<bool> _lost{false};
    std::atomic<std::uint32_t> _reconnects{0};
    mutable std::atomic<std::int32_t> _abandoned{0};  // see abandoned()
    std::uint32_t _in_capsule = 0;
    std::uint32_t _max_transfer = 0;
    std::uint16_t _io_queues = 0;
    unsigned _io_depth = 0;
    // Owner shard only.
    std::unique_ptr<nvmf_qpair> _admin;
    timer _keep_alive;
    bool _keep_alive_busy = false;
    std::optional<promise<>> _keep_alive_done;
    bool _closing = false;
    bool _reconnect_running = false;
    std::optional<future<>> _reconnecting;
};

}  // namespace ioe::nvme
