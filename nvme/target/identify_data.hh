// The data pages the NVMe/TCP target returns, built from the target's own
// model of subsystems, controllers and namespaces: Identify Controller /
// Namespace / active namespace list / namespace identification descriptors,
// the Discovery log, the Error and SMART log pages, and the CAP and VS
// properties. Pure functions over bytes (no I/O), unit-tested on their own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "storage/uuid.hh"

namespace ioe::nvme {

// What Identify Controller reports for one controller.
struct controller_profile {
    std::uint16_t cntlid = 1;
    std::string subnqn;
    std::string serial;        // at most 20 ASCII characters (space padded)
    std::string model;         // at most 40
    std::string firmware;      // at most 8
    std::uint32_t namespace_count = 0;  // NN: highest namespace id
    std::uint8_t mdts = 5;              // max transfer = 2^mdts * 4 KiB
    std::uint16_t maxcmd = 128;         // outstanding commands per queue
    std::uint32_t in_capsule_bytes = 8192;  // IOCCSZ = (64 + this) / 16
    std::uint16_t kas_100ms = 10;       // keep-alive granularity (KAS)
    bool discovery = false;             // the discovery controller
    bool volatile_write_cache = true;   // VWC (the target honours flush)
    // Asymmetric Namespace Access reporting (docs/ana.md): CMIC says several
    // ports and controllers may share the subsystem and that ANA is
    // reported, ANACAP/ANATT/ANAGRPMAX/NANAGRPID/MNAN are set and OAES has
    // the ANA Change notice. One ANA group per namespace (its ID = NSID).
    bool ana = true;
};

// What Identify Namespace reports for one namespace.
struct namespace_profile {
    std::uint32_t block_size = 512;     // 512 or 4096
    std::uint64_t block_count = 0;
    uuid id;                            // for the descriptor list (NIDT 3)
    bool deallocated_reads_zero = true; // DLFEAT
    bool reservations = true;           // RESCAP (all six types, IEKEY) and NMIC shared
    bool ptpl = false;                  // RESCAP bit 0: Persist Through Power Loss
    std::uint32_t ana_group = 0;        // ANAGRPID (0: no ANA reporting)
};

// One line of the Discovery log.
struct discovery_entry {
    std::string subnqn;
    std::string traddr;   // "127.0.0.1"
    std::string trsvcid;  // "4420"
    std::uint16_t portid = 1;
    bool is_discovery = false;  // subtype: discovery subsystem (3) or NVM (2)
};

// Identify Controller (4096 bytes).
void build_identify_controller(const controller_profile& c, std::span<std::byte, 4096> out);
// Identify Namespace (4096 bytes); an all-zero page for an inactive nsid.
void build_identify_namespace(const namespace_profile& ns, std::span<std::byte, 4096> out);
// Active namespace id list (CNS 02h): ids greater than `after`, ascending.
void build_active_namespace_list(std::span<const std::uint32_t> active, std::uint32_t after,
                                 std::span<std::byte, 4096> out);
// Namespace identification descriptor list (CNS 03h): the UUID.
void build_namespace_descriptors(const uuid& id, std::span<std::byte, 4096> out);
// The whole Discovery log (header + one 1024-byte entry per line); the caller
// serves the slice asked for by the Get Log Page offset and length.
std::vector<std::byte> build_discovery_log(std::uint64_t generation, std::span<const discovery_entry> entries);
// SMART / Health (512 bytes): nothing to report but the temperature (a
// plausible 300 K) and available spare (100 %).
void build_smart_log(std::span<std::byte, 512> out);

// CAP for a target with queues of up to `max_queue_entries` entries.
std::uint64_t cap_property(std::uint16_t max_queue_entries);
// VS: NVMe 1.3 (what the Linux initiator expects of a fabrics target).
inline constexpr std::uint32_t vs_property = 0x00010300;

}  // namespace ioe::nvme
