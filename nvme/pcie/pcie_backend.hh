// The pcie:// device scheme: pcie:///DDDD:BB:DD.F[?io_timeout_ms=N&io_depth=N&sgl=auto|on|off]
// opens an NVMe SSD bound to vfio-pci with the user-space driver (namespace 1).
// The storage layer cannot include nvme/, so the daemon (or a test) calls
// register_pcie_backend() once at start-up, and open_backend() then finds the
// scheme in the table of storage/backend_schemes.hh.
#pragma once

#include <optional>
#include <string>

#include "nvme/pcie/pcie_controller.hh"
#include "storage/uri.hh"

namespace ioe::nvme {

// Registers "pcie" with ioe::register_backend_scheme (idempotent).
void register_pcie_backend();

struct pcie_uri {
    std::string bdf;  // canonical DDDD:BB:DD.F
    pcie_options options;
};
// Checks a pcie:// URI; on error returns nullopt and sets `err` to a message
// that names the URI and the bad part.
std::optional<pcie_uri> parse_pcie_uri(const device_uri& uri, std::string& err);

}  // namespace ioe::nvme
