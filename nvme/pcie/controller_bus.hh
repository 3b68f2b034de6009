// controller_bus: the narrow interface between the NVMe PCIe driver and a
// controller, so the same driver runs on a real device (vfio_bus: BAR0 mapped
// through VFIO, the DMA pool mapped into the IOMMU) and on the in-process
// controller model of the unit tests and the benchmark (model_bus).
//
// Two things only:
// * register access: 32-bit reads and writes at an offset of BAR0 (the
//   controller registers and the doorbells). 64-bit registers (CAP, ASQ, ACQ)
//   are accessed as two 32-bit halves, low first, which the NVMe base
//   specification allows for every PCIe controller.
// * DMA address translation: the bus address (IOVA) at which the controller
//   reaches a byte of the engine's DMA pool. The pool is cut into 2 MiB
//   chunks; each chunk has one bus address (IOVA = a fixed base + offset in
//   IOMMU mode; a physical address in no-IOMMU mode), so a translation is a
//   shift, a bounds check and a load: nothing is mapped on the I/O path.
//   Memory outside the pool has no bus address (0): the driver refuses to
//   hand it to the controller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ioe::nvme {

class controller_bus {
public:
    static constexpr unsigned chunk_shift = 21;  // the DMA pool's 2 MiB chunks
    static constexpr std::size_t chunk_bytes = std::size_t(1) << chunk_shift;

    virtual ~controller_bus() = default;

    virtual std::uint32_t read32(std::uint32_t offset) noexcept = 0;
    virtual void write32(std::uint32_t offset, std::uint32_t value) noexcept = 0;
    // "0000:00:04.0" or "model": the prefix of the driver's messages.
    virtual std::string describe() const = 0;

    std::uint64_t read64(std::uint32_t offset) noexcept {
        const std::uint64_t lo = read32(offset);
        const std::uint64_t hi = read32(offset + 4);
        return lo | (hi << 32);
    }
    void write64(std::uint32_t offset, std::uint64_t value) noexcept {
        write32(offset, static_cast<std::uint32_t>(value));
        write32(offset + 4, static_cast<std::uint32_t>(value >> 32));
    }

    // The bus address of `p`, or 0 when `p` is outside the mapped DMA memory.
    std::uint64_t bus_address(const void* p) const noexcept {
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        if (a < _dma_base || a - _dma_base >= _dma_size) return 0;
        const std::uintptr_t off = a - _dma_base;
        return _chunk_iova[off >> chunk_shift] + (off & (chunk_bytes - 1));
    }
    // Is [p, p + len) inside the mapped DMA memory?
    bool reachable(const void* p, std::size_t len) const noexcept {
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        return a >= _dma_base && a - _dma_base <= _dma_size && len <= _dma_size - (a - _dma_base);
    }
    std::uintptr_t dma_base() const noexcept { return _dma_base; }
    std::size_t dma_size() const noexcept { return _dma_size; }

protected:
    // Declares the DMA memory [base, base + size) and each 2 MiB chunk's bus
    // address (chunk_iova.size() == ceil(size / chunk_bytes)).
    void set_dma_window(const void* base, std::size_t size, std::vector<std::uint64_t> chunk_iova) {
        _dma_base = reinterpret_cast<std::uintptr_t>(base);
        _dma_size = size;
        _chunk_iova = std::move(chunk_iova);
    }

private:
    std::uintptr_t _dma_base = 0;
    std::size_t _dma_size = 0;
    std::vector<std::uint64_t> _chunk_iova;
};

// Controller register offsets in BAR0 (PCIe transport) and the doorbells.
namespace reg {
inline constexpr std::uint32_t cap = 0x00;
inline constexpr std::uint32_t vs = 0x08;
inline constexpr std::uint32_t intms = 0x0c;
inline constexpr std::uint32_t intmc = 0x10;
inline constexpr std::uint32_t cc = 0x14;
inline constexpr std::uint32_t csts = 0x1c;
inline constexpr std::uint32_t aqa = 0x24;
inline constexpr std::uint32_t asq = 0x28;
inline constexpr std::uint32_t acq = 0x30;
inline constexpr std::uint32_t doorbell_base = 0x1000;

// CAP.DSTRD (bits 35:32): doorbell stride 4 << DSTRD bytes.
constexpr unsigned dstrd(std::uint64_t cap_value) { return static_cast<unsigned>((cap_value >> 32) & 0xf); }
constexpr std::uint32_t sq_tail_doorbell(std::uint16_t qid, unsigned dstrd_value) {
    return doorbell_base + (2u * qid) * (4u << dstrd_value);
}
constexpr std::uint32_t cq_head_doorbell(std::uint16_t qid, unsigned dstrd_value) {
    return doorbell_base + (2u * qid + 1u) * (4u << dstrd_value);
}
}  // namespace reg

}  // namespace ioe::nvme
