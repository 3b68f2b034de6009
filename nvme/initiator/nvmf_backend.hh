// The nvmf:// device scheme: nvmf://HOST[:PORT]/SUBNQN[?params] opens an
// nvmf_device (our NVMe/TCP initiator) as a block_device. Registered with
// storage's scheme table by register_nvmf_backend(), which a program calls
// once at start (the daemon, tests, tools): storage cannot include nvme.
//
// Parameters (all optional):
//   hostnqn=NQN            the host NQN to connect as (default: this
//                          process's, nqn.2014-08.org.nvmexpress:uuid:...)
//   hostid=UUID            the 128-bit host identifier of every Connect
//                          (default: a random one per device); a nexus
//                          sets it from its epoch (storage/nexus/nexus_epoch.hh)
//   name=NAME              the device's name (default: the subsystem NQN)
//   kato_ms, io_timeout_ms, reconnect_delay_ms, ctrl_loss_timeout_ms,
//   fast_io_fail_ms        see nvmf_options
//   hdgst=0|1, ddgst=0|1   ask for header / data digests (CRC32C)
// PORT defaults to 4420.
#pragma once

#include <string>

#include "nvme/initiator/nvmf_device.hh"
#include "storage/uri.hh"

namespace ioe::nvme {

void register_nvmf_backend();

// This process's default host NQN (a UUID NQN made once per process).
const std::string& default_host_nqn();

// The options and names an nvmf:// URI gives; throws storage_error
// (invalid_argument) naming the bad part.
struct nvmf_target_address {
    std::string host;
    std::uint16_t port = 4420;
    std::string subnqn;
    std::string hostnqn;
    std::string name;
    nvmf_options opts;
};
nvmf_target_address parse_nvmf_uri(const device_uri& uri);

}  // namespace ioe::nvme
