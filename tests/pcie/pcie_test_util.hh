// Helpers for the PCIe driver tests: an engine, a controller model over its
// DMA pool, and a pcie_device opened on it.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "nvme/pcie/controller_model.hh"
#include "nvme/pcie/pcie_device.hh"
#include "runtime/engine.hh"
#include "tests/unit/test_engine.hh"

namespace ioe::test {

// The model over engine e's DMA pool, and the bus that reaches it.
struct model_rig {
    std::unique_ptr<nvme::controller_model> model;
    explicit model_rig(engine* e, nvme::model_config cfg = {})
        : model(std::make_unique<nvme::controller_model>(cfg, e->dma().regions().front().iov_base,
                                                         e->dma().size_bytes())) {}
    std::unique_ptr<nvme::controller_bus> bus(engine* e) const {
        return std::make_unique<nvme::model_bus>(*model, e->dma().regions().front().iov_base, e->dma().size_bytes());
    }
    future<std::unique_ptr<nvme::pcie_device>> open(engine* e, nvme::pcie_options opts = {},
                                                    std::string name = "model0") {
        std::string where = "pcie:///" + name;
        return nvme::pcie_device::open(std::move(name), std::move(where), bus(e), opts);
    }
};

inline void fill(std::byte* p, std::size_t n, std::uint8_t seed) {
    for (std::size_t i = 0; i < n; ++i) p[i] = std::byte(static_cast<std::uint8_t>(seed + i * 7 + i / 512));
}
inline bool all_zero(const std::byte* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        if (p[i] != std::byte{0}) return false;
    }
    return true;
}

}  // namespace ioe::test
