// vfio_bus: opening a PCI NVMe device through VFIO, BAR0, bus mastering and
// the IOMMU mapping of the DMA pool (see vfio_bus.hh). Control path only.
#include "nvme/pcie/vfio_bus.hh"

#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <system_error>
#include <vector>

#include "runtime/log.hh"
#include "storage/errors.hh"

namespace ioe::nvme {
namespace {

constexpr std::uint64_t iova_limit = std::uint64_t(1) << 39;  // what QEMU's vIOMMU translates
constexpr std::uint16_t pci_command = 0x04;
constexpr std::uint16_t command_memory = 1u << 1;
constexpr std::uint16_t command_bus_master = 1u << 2;

std::string os(int err) { return std::generic_category().message(err); }

[[noreturn]] void refuse(storage_errc c, const std::string& where, const std::string& what) {
    throw storage_error(c, fmt::format("{}: {}", where, what));
}

// The last path component of a symlink's target ("" if it is not one).
std::string link_name(const std::string& path) {
    char buf[4096];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
    if (n <= 0) return {};
    buf[n] = 0;
    std::string s(buf);
    auto slash = s.rfind('/');
    return slash == std::string::npos ? s : s.substr(slash + 1);
}

bool parse_hex(const std::string& s, unsigned digits, unsigned& out) {
    if (s.size() != digits) return false;
    out = 0;
    for (char c : s) {
        if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
        out = out * 16 + static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                                                                                          : std::tolower(c) - 'a' + 10);
    }
    return true;
}

struct fd_closer {
    int& fd;
    bool armed = true;
    ~fd_closer() {
        if (armed && fd >= 0) {
            ::close(fd);
            fd = -1;
        }
    }
};

// The usable IOVA ranges of the container (the kernel leaves out what the
// IOMMU reserves, e.g. the interrupt window, and what it cannot translate);
// empty when the kernel does not report them.
std::vector<vfio_iova_range> iova_ranges(int container) {
    std::vector<std::uint64_t> buf(8);
    auto* info = reinterpret_cast<vfio_iommu_type1_info*>(buf.data());
    info->argsz = sizeof *info;
    if (::ioctl(container, VFIO_IOMMU_GET_INFO, info) != 0) return {};
    if (!(info->flags & VFIO_IOMMU_INFO_CAPS) || info->argsz <= sizeof *info) return {};
    buf.assign((info->argsz + 7) / 8, 0);
    info = reinterpret_cast<vfio_iommu_type1_info*>(buf.data());
    info->argsz = static_cast<std::uint32_t>(buf.size() * 8);
    if (::ioctl(container, VFIO_IOMMU_GET_INFO, info) != 0 || info->cap_offset == 0) return {};
    const auto* base = reinterpret_cast<const std::uint8_t*>(buf.data());
    // Capabilities sit at 4-byte aligned offsets the kernel chooses, and the
    // IOVA range one holds 8-byte fields: copy them out, never cast in place.
    const std::size_t total = buf.size() * 8;
    for (std::uint32_t off = info->cap_offset; off && off + sizeof(vfio_info_cap_header) <= total;) {
        vfio_info_cap_header h;
        std::memcpy(&h, base + off, sizeof h);
        if (h.id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
            if (off + sizeof(vfio_iommu_type1_info_cap_iova_range) > total) break;
            vfio_iommu_type1_info_cap_iova_range c;
            std::memcpy(&c, base + off, sizeof c);
            std::vector<vfio_iova_range> out;
            for (std::uint32_t i = 0; i < c.nr_iovas; ++i) {
                const std::size_t at = off + sizeof c + std::size_t{i} * sizeof(vfio_iova_range);
                if (at + sizeof(vfio_iova_range) > total) break;
                vfio_iova_range r;
                std::memcpy(&r, base + at, sizeof r);
                out.push_back(r);
            }
            return out;
        }
        if (h.next <= off) break;
        off = h.next;
    }
    return {};
}

// Where the pool goes: 4 GiB when that fits a usable range (above the
// interrupt window, far below 39 bits), else the first 2 MiB-aligned place
// (never IOVA 0, which means "unreachable" to the driver) that fits.
std::uint64_t pick_iova(int container, std::uint64_t size, const std::string& where) {
    constexpr std::uint64_t align = std::uint64_t(2) << 20;
    const auto ranges = iova_ranges(container);
    if (ranges.empty()) {
        if (vfio_bus::iova_base + size > iova_limit) {
            refuse(storage_errc::invalid_argument, where,
                   fmt::format("a DMA pool of {} MiB does not fit below the 39-bit IOVA limit: make it smaller",
                               size >> 20));
        }
        return vfio_bus::iova_base;
    }
    for (std::uint64_t floor : {vfio_bus::iova_base, align}) {
        for (const auto& r : ranges) {
            const std::uint64_t start = r.start, end = r.end;
            const std::uint64_t at = (std::max(start, floor) + align - 1) / align * align;
            if (at >= start && at <= end && size - 1 <= end - at) return at;
        }
    }
    std::string list;
    for (const auto& r : ranges) list += fmt::format(" [{:#x}, {:#x}]", std::uint64_t{r.start}, std::uint64_t{r.end});
    refuse(storage_errc::invalid_argument, where,
           fmt::format("no usable IOVA range holds the {} MiB DMA pool (ranges:{}): make the pool smaller", size >> 20,
                       list));
}

}  // namespace

std::string canonical_bdf(const std::string& s) {
    std::string t = s;
    if (std::count(t.begin(), t.end(), ':') == 1) t = "0000:" + t;
    // DDDD:BB:DD.F
    if (t.size() != 12 || t[4] != ':' || t[7] != ':' || t[10] != '.') return {};
    unsigned dom, bus, dev, fn;
    if (!parse_hex(t.substr(0, 4), 4, dom) || !parse_hex(t.substr(5, 2), 2, bus) || !parse_hex(t.substr(8, 2), 2, dev) ||
        !parse_hex(t.substr(11, 1), 1, fn) || dev > 0x1f || fn > 7) {
        return {};
    }
    return fmt::format("{:04x}:{:02x}:{:02x}.{:x}", dom, bus, dev, fn);
}

std::unique_ptr<vfio_bus> vfio_bus::open(const std::string& bdf, const dma_pool& pool, const std::string& where) {
    std::unique_ptr<vfio_bus> b(new vfio_bus());
    b->_bdf = bdf;
    const std::string sys = "/sys/bus/pci/devices/" + bdf;
    struct stat st {};
    if (::stat(sys.c_str(), &st) != 0) {
        refuse(storage_errc::not_found, where,
               fmt::format("no PCI device {} on this machine ({} missing; `lspci -D` lists the devices)", bdf, sys));
    }
    const std::string driver = link_name(sys + "/driver");
    if (driver != "vfio-pci") {
        refuse(storage_errc::unavailable, where,
               fmt::format("{} is {}, not bound to vfio-pci (bind it: tools/setup-vfio bind {})", bdf,
                           driver.empty() ? "bound to no driver" : "bound to driver " + driver, bdf));
    }
    const std::string group = link_name(sys + "/iommu_group");
    if (group.empty()) {
        refuse(storage_errc::unavailable, where,
               fmt::format("{} has no IOMMU group: the IOMMU is off (boot with intel_iommu=on or amd_iommu=on, and "
                           "enable VT-d / AMD-Vi in the firmware)",
                           bdf));
    }
    std::string group_path = "/dev/vfio/" + group;
    if (::access(group_path.c_str(), F_OK) != 0 && ::access(("/dev/vfio/noiommu-" + group).c_str(), F_OK) == 0) {
        group_path = "/dev/vfio/noiommu-" + group;
        b->_no_iommu = true;
    }

    b->_container = ::open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (b->_container < 0) {
        const int err = errno;
        refuse(err == ENOENT ? storage_errc::not_found : storage_errc::unavailable, where,
               fmt::format("open /dev/vfio/vfio: {} ({})", os(err),
                           err == ENOENT ? "load the module: modprobe vfio-pci" : "run as root"));
    }
    const int api = ::ioctl(b->_container, VFIO_GET_API_VERSION);
    if (api != VFIO_API_VERSION) {
        refuse(storage_errc::unavailable, where,
               fmt::format("VFIO API version {} (this driver speaks {}): the kernel's VFIO is not usable", api,
                           VFIO_API_VERSION));
    }
    int iommu_type = VFIO_TYPE1v2_IOMMU;
    if (b->_no_iommu) {
        iommu_type = VFIO_NOIOMMU_IOMMU;
        if (::ioctl(b->_container, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU) <= 0) {
            refuse(storage_errc::unavailable, where,
                   "the group is a no-IOMMU group but VFIO does not offer no-IOMMU mode "
                   "(echo 1 > /sys/module/vfio/parameters/enable_unsafe_noiommu_mode)");
        }
    } else if (::ioctl(b->_container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
        if (::ioctl(b->_container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) <= 0) {
            refuse(storage_errc::unavailable, where,
                   "VFIO offers no type-1 IOMMU (load vfio_iommu_type1 and enable the IOMMU: intel_iommu=on)");
        }
        iommu_type = VFIO_TYPE1_IOMMU;
    }

    b->_group = ::open(group_path.c_str(), O_RDWR | O_CLOEXEC);
    if (b->_group < 0) {
        const int err = errno;
        refuse(storage_errc::unavailable, where,
               fmt::format("open {}: {} ({})", group_path, os(err),
                           err == EBUSY    ? "the group is in use: another engine, QEMU or DPDK holds it"
                           : err == ENOENT ? "bind the device to vfio-pci: tools/setup-vfio bind " + bdf
                                           : "run as root, or give the user the device node"));
    }
    vfio_group_status gs{};
    gs.argsz = sizeof gs;
    if (::ioctl(b->_group, VFIO_GROUP_GET_STATUS, &gs) != 0) {
        refuse(storage_errc::unavailable, where, fmt::format("VFIO_GROUP_GET_STATUS: {}", os(errno)));
    }
    if (!(gs.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        refuse(storage_errc::unavailable, where,
               fmt::format("IOMMU group {} is not viable: every device in it must be bound to vfio-pci (ls "
                           "/sys/kernel/iommu_groups/{}/devices)",
                           group, group));
    }
    if (::ioctl(b->_group, VFIO_GROUP_SET_CONTAINER, &b->_container) != 0) {
        refuse(storage_errc::unavailable, where, fmt::format("VFIO_GROUP_SET_CONTAINER: {}", os(errno)));
    }
    if (::ioctl(b->_container, VFIO_SET_IOMMU, iommu_type) != 0) {
        refuse(storage_errc::unavailable, where, fmt::format("VFIO_SET_IOMMU: {}", os(errno)));
    }
    b->_device = ::ioctl(b->_group, VFIO_GROUP_GET_DEVICE_FD, bdf.c_str());
    if (b->_device < 0) {
        refuse(storage_errc::unavailable, where, fmt::format("VFIO_GROUP_GET_DEVICE_FD {}: {}", bdf, os(errno)));
    }

    // BAR0: the controller registers and doorbells.
    vfio_region_info bar{};
    bar.argsz = sizeof bar;
    bar.index = VFIO_PCI_BAR0_REGION_INDEX;
    if (::ioctl(b->_device, VFIO_DEVICE_GET_REGION_INFO, &bar) != 0) {
        refuse(storage_errc::unavailable, where, fmt::format("region info of BAR0: {}", os(errno)));
    }
    if (bar.size < 0x2000 || !(bar.flags & VFIO_REGION_INFO_FLAG_MMAP)) {
        refuse(storage_errc::invalid_argument, where,
               fmt::format("BAR0 of {} ({} bytes, flags {:#x}) is not a mappable NVMe register BAR: is it an NVMe "
                           "controller?",
                           bdf, bar.size, bar.flags));
    }
    void* p = ::mmap(nullptr, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, b->_device, static_cast<off_t>(bar.offset));
    if (p == MAP_FAILED) refuse(storage_errc::unavailable, where, fmt::format("mmap of BAR0: {}", os(errno)));
    b->_bar = static_cast<volatile std::uint8_t*>(p);
    b->_bar_size = bar.size;

    // PCI command register: memory space and bus master on.
    vfio_region_info cfg{};
    cfg.argsz = sizeof cfg;
    cfg.index = VFIO_PCI_CONFIG_REGION_INDEX;
    if (::ioctl(b->_device, VFIO_DEVICE_GET_REGION_INFO, &cfg) != 0) {
        refuse(storage_errc::unavailable, where, fmt::format("region info of the config space: {}", os(errno)));
    }
    std::uint16_t cmd = 0;
    if (::pread(b->_device, &cmd, sizeof cmd, static_cast<off_t>(cfg.offset + pci_command)) != sizeof cmd) {
        refuse(storage_errc::unavailable, where, fmt::format("read of the PCI command register: {}", os(errno)));
    }
    cmd |= command_memory | command_bus_master;
    if (::pwrite(b->_device, &cmd, sizeof cmd, static_cast<off_t>(cfg.offset + pci_command)) != sizeof cmd) {
        refuse(storage_errc::unavailable, where, fmt::format("write of the PCI command register: {}", os(errno)));
    }

    // The DMA pool, once.
    const auto* base = static_cast<const std::byte*>(pool.regions().front().iov_base);
    const std::size_t size = pool.size_bytes();
    std::vector<std::uint64_t> chunks((size + chunk_bytes - 1) / chunk_bytes);
    if (b->_no_iommu) {
        log::warn("{}: VFIO NO-IOMMU MODE: the device can DMA anywhere in memory; use only on a machine without an "
                  "IOMMU, for testing",
                  where);
        if (pool.source() != dma_source::huge_pages) {
            refuse(storage_errc::unavailable, where,
                   "no-IOMMU mode needs the DMA pool in 2 MiB huge pages (start the engine with --huge-mb and "
                   "reserve pages: tools/setup-vfio hugepages N)");
        }
        int pm = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (pm < 0) refuse(storage_errc::unavailable, where, fmt::format("open /proc/self/pagemap: {}", os(errno)));
        fd_closer close_pm{pm};
        for (std::size_t i = 0; i < chunks.size(); ++i) {
            const auto va = reinterpret_cast<std::uintptr_t>(base) + i * chunk_bytes;
            std::uint64_t entry = 0;
            if (::pread(pm, &entry, sizeof entry, static_cast<off_t>(va / 4096 * 8)) != sizeof entry) {
                refuse(storage_errc::unavailable, where, fmt::format("read /proc/self/pagemap: {}", os(errno)));
            }
            const std::uint64_t pfn = entry & ((std::uint64_t(1) << 55) - 1);
            if (!(entry >> 63) || pfn == 0) {
                refuse(storage_errc::unavailable, where,
                       "/proc/self/pagemap gives no physical addresses (run as root: CAP_SYS_ADMIN is needed)");
            }
            chunks[i] = pfn * 4096;
        }
    } else {
        const std::uint64_t iova = pick_iova(b->_container, size, where);
        vfio_iommu_type1_dma_map map{};
        map.argsz = sizeof map;
        map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
        map.vaddr = reinterpret_cast<std::uintptr_t>(base);
        map.iova = iova;
        map.size = size;
        if (::ioctl(b->_container, VFIO_IOMMU_MAP_DMA, &map) != 0) {
            const int err = errno;
            refuse(storage_errc::unavailable, where,
                   fmt::format("the IOMMU refused to map the DMA pool ({} MiB at IOVA {:#x}): {}{}", size >> 20,
                               iova, os(err),
                               err == ENOMEM ? " (locked memory limit too low: ulimit -l unlimited, or run as root)"
                                             : ""));
        }
        log::info("{}: DMA pool of {} MiB mapped into the IOMMU at IOVA {:#x}", where, size >> 20, iova);
        b->_dma_mapped = true;
        b->_dma_iova = iova;
        b->_dma_bytes = size;
        for (std::size_t i = 0; i < chunks.size(); ++i) chunks[i] = iova + i * chunk_bytes;
    }
    b->set_dma_window(base, size, std::move(chunks));
    return b;
}

vfio_bus::~vfio_bus() {
    if (_dma_mapped) {
        vfio_iommu_type1_dma_unmap u{};
        u.argsz = sizeof u;
        u.iova = _dma_iova;
        u.size = _dma_bytes;
        ::ioctl(_container, VFIO_IOMMU_UNMAP_DMA, &u);
    }
    if (_bar) ::munmap(const_cast<std::uint8_t*>(_bar), _bar_size);
    if (_device >= 0) ::close(_device);
    if (_group >= 0) ::close(_group);
    if (_container >= 0) ::close(_container);
}

}  // namespace ioe::nvme
