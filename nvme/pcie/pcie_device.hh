// pcie_device: an NVMe namespace on a PCIe controller driven from user space
// (pcie_controller over VFIO, or over the controller model in tests), as a
// block_device usable under pools, replicas and the nexus like any other.
//
// Each shard's channel submits on the I/O queue pair of its own shard
// (qid = shard + 1), polled by its reactor; a shard past the number of queues
// the controller granted sends its I/O to shard (id mod granted): it hops,
// but works. Read and write build PRPs straight over the caller's DMA
// buffers (no copy), split at MDTS (at most 1 MiB per command) and where the
// buffers force it (see prp.hh); buffers outside the DMA pool fail with
// data_transfer_error. Flush is sent when the controller has a volatile
// write cache (otherwise there is nothing to flush: success). Write zeroes
// is split at 65536 blocks per command; unmap is Dataset Management
// deallocate, one range per command. Without Write Zeroes or DSM in ONCS the
// channel answers invalid_opcode. Statuses map to io_status as
// (SCT << 8) | SC; commands in flight when the controller is reset fail
// "aborted" (commands issued during the reset wait for it), and every command
// of a failed controller "namespace not ready".
#pragma once

#include <memory>
#include <string>

#include "nvme/pcie/pcie_controller.hh"
#include "storage/block_device.hh"

namespace ioe::nvme {

class pcie_device final : public block_device {
public:
    // Owner shard: starts the controller (pcie_controller::start) and makes
    // the device. Throws storage_error.
    static future<std::unique_ptr<pcie_device>> open(std::string name, std::string where,
                                                     std::unique_ptr<controller_bus> bus, pcie_options opts = {});
    ~pcie_device() override;

    pcie_controller& controller() noexcept { return *_ctrl; }

protected:
    std::unique_ptr<device_channel> open_channel() override;
    future<> close_backend() override;

private:
    pcie_device(std::string name, std::unique_ptr<pcie_controller> ctrl);
    std::unique_ptr<pcie_controller> _ctrl;
};

}  // namespace ioe::nvme
