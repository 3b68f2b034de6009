// vfio_bus: a real NVMe controller reached through Linux VFIO, as a
// controller_bus (see controller_bus.hh).
//
// open() does, in order, and refuses with a message that says what to do:
//   the PCI device exists in sysfs; it is bound to vfio-pci (tools/setup-vfio);
//   it has an IOMMU group (the IOMMU is on), or the group is a no-IOMMU one;
//   /dev/vfio/vfio opens (module loaded, root); the VFIO API version matches
//   and the container offers the type-1 IOMMU (or no-IOMMU); the group is
//   viable (every device in it bound to vfio-pci) and not in use; the group
//   joins the container and the IOMMU type is set; the device fd; BAR0 is
//   mappable and mapped; PCI Memory Space and Bus Master are switched on in
//   the config space (vfio-pci leaves Bus Master off: without it the
//   controller cannot fetch a single command).
// DMA: the whole DMA pool is mapped into the IOMMU once, here, and never on
// the I/O path. Bus addresses are NOT the virtual addresses: user-space
// virtual addresses are 47-bit, while an IOMMU may translate fewer bits
// (QEMU's emulated Intel IOMMU: 39) and reserves 0xfee00000-0xfeefffff for
// interrupts. The pool is mapped at IOVA 4 GiB + offset when that lies in a
// usable IOVA range the kernel reports (VFIO_IOMMU_GET_INFO), else at the
// first 2 MiB-aligned place that fits. In no-IOMMU mode (a kernel built
// with it and vfio.enable_unsafe_noiommu_mode=1) the bus addresses are the
// physical addresses of the pool's 2 MiB huge pages from /proc/self/pagemap:
// the pool must come from huge pages (--huge-mb), and a loud warning says
// that the device can then write anywhere in memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "nvme/pcie/controller_bus.hh"
#include "runtime/dma.hh"

namespace ioe::nvme {

class vfio_bus final : public controller_bus {
public:
    static constexpr std::uint64_t iova_base = std::uint64_t(1) << 32;  // preferred IOVA of the pool

    // bdf: canonical "DDDD:BB:DD.F". `where` prefixes every message.
    // Throws storage_error.
    static std::unique_ptr<vfio_bus> open(const std::string& bdf, const dma_pool& pool, const std::string& where);
    ~vfio_bus() override;

    std::uint32_t read32(std::uint32_t offset) noexcept override {
        return *reinterpret_cast<volatile std::uint32_t*>(_bar + offset);
    }
    void write32(std::uint32_t offset, std::uint32_t value) noexcept override {
        *reinterpret_cast<volatile std::uint32_t*>(_bar + offset) = value;
    }
    std::string describe() const override { return _bdf; }
    bool no_iommu() const noexcept { return _no_iommu; }
    std::uint64_t bar_size() const noexcept { return _bar_size; }

private:
    vfio_bus() = default;

    std::string _bdf;
    int _container = -1, _group = -1, _device = -1;
    volatile std::uint8_t* _bar = nullptr;
    std::uint64_t _bar_size = 0;
    bool _no_iommu = false;
    bool _dma_mapped = false;
    std::uint64_t _dma_iova = 0, _dma_bytes = 0;
};

// Canonical "DDDD:BB:DD.F" (lower case hex) from "DDDD:BB:DD.F" or
// "BB:DD.F"; empty when `s` is not a PCI address.
std::string canonical_bdf(const std::string& s);

}  // namespace ioe::nvme
