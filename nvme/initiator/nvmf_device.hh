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
// connection fails its commands (and later ones) with namespace_not_ready.
// Not in this cut: reconnect with back-off, digests, multipath, ANA, AER.
#pragma once

#include <chrono>
#include <cstdint>
#include <array>
#include <memory>
#include <optional>
#include <string>

#include "nvme/initiator/nvmf_qpair.hh"
#include "runtime/timer.hh"
#include "storage/block_device.hh"

namespace ioe::nvme {

struct nvmf_options {
    std::chrono::milliseconds kato{30000};        // keep-alive timeout given to the controller
    std::chrono::milliseconds io_timeout{30000};  // per command
    unsigned admin_depth = 32;
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
    std::uint16_t cntlid() const noexcept { return _cntlid; }
    std::uint32_t in_capsule_bytes() const noexcept { return _in_capsule; }
    std::uint32_t max_transfer_bytes() const noexcept { return _max_transfer; }
    std::uint16_t io_queues() const noexcept { return _io_queues; }
    // "host:port/subnqn", the prefix of every error message.
    std::string where() const;

    // Opens the I/O queue `qid` on the calling shard (used by channels).
    future<std::unique_ptr<nvmf_qpair>> open_io_queue(std::uint16_t qid) const;

protected:
    std::unique_ptr<device_channel> open_channel() override;
    future<> close_backend() override;

private:
    nvmf_device(std::string name, uuid id, std::uint32_t block_size, std::uint64_t block_count);
    void keep_alive_tick();

    std::string _host;
    std::uint16_t _port = 0;
    std::string _subnqn;
    std::string _hostnqn;
    std::array<std::uint8_t, 16> _hostid{};
    nvmf_options _opts;
    std::uint16_t _cntlid = 0;
    std::uint32_t _in_capsule = 0;
    std::uint32_t _max_transfer = 0;
    std::uint16_t _io_queues = 0;
    unsigned _io_depth = 0;
    // Owner shard only.
    std::unique_ptr<nvmf_qpair> _admin;
    timer _keep_alive;
    bool _keep_alive_busy = false;
    std::optional<promise<>> _keep_alive_done;
};

}  // namespace ioe::nvme
