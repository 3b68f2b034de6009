// The data pages of the NVMe/TCP target (see identify_data.hh): each builder
// fills a plain struct from nvme/spec (zero-initialised, so every field not
// set below reads as 0) and copies it into the caller's buffer. Field values
// follow the NVMe Base 2.0 / NVMe-oF 1.1 specifications and what the Linux
// nvme-tcp host and nvme-cli rely on; the choices are noted next to each field.
#include "nvme/target/identify_data.hh"

#include <algorithm>
#include <bit>
#include <cstring>

#include "nvme/spec/nvme_ana.hh"
#include "nvme/spec/nvme_fabrics.hh"
#include "nvme/spec/nvme_identify.hh"
#include "nvme/spec/nvme_log.hh"
#include "nvme/spec/nvme_spec.hh"

namespace ioe::nvme {

namespace {

// ASCII field padded with `pad` (spaces for SN/MN/FR/TRADDR/TRSVCID); the
// string is cut to the field, never NUL-terminated when it fills it.
void copy_padded(char* dst, std::size_t n, const std::string& s, char pad) {
    const std::size_t len = std::min(n, s.size());
    std::memcpy(dst, s.data(), len);
    std::memset(dst + len, pad, n - len);
}

// NQN fields: UTF-8, NUL padded, at most 255 bytes so a NUL always follows.
void copy_nqn(char (&dst)[nqn_field_bytes], const std::string& s) {
    std::memset(dst, 0, sizeof dst);
    std::memcpy(dst, s.data(), std::min(sizeof dst - 1, s.size()));
}

template <typename T, std::size_t N>
void store(const T& v, std::span<std::byte, N> out) {
    static_assert(sizeof(T) == N);
    std::memcpy(out.data(), &v, sizeof v);
}

// Identify Controller bits we set.
constexpr std::uint32_t oaes_namespace_attribute_notices = 1u << 8;
constexpr std::uint32_t oaes_discovery_log_change_notices = 1u << 31;
constexpr std::uint32_t ctratt_host_id_128 = 1u << 0;   // HIDS: Connect carries a 128-bit Host ID
constexpr std::uint8_t frmw_slot1_read_only = 1u << 0;
constexpr std::uint8_t frmw_one_slot = 1u << 1;         // NOFS (bits 3:1) = 1
constexpr std::uint8_t lpa_extended_data = 1u << 2;     // Get Log Page NUMDU / LPOL / LPOU
constexpr std::uint32_t sgls_supported_byte_aligned = 1u << 0;
constexpr std::uint32_t sgls_offset = 1u << 20;         // SAOS: Address is an offset (in-capsule data)
constexpr std::uint8_t cntrltype_io = 1;
constexpr std::uint8_t cntrltype_discovery = 2;
constexpr std::uint16_t admin_queue_depth = 32;         // ASQSZ in the Discovery log

}  // namespace

void build_identify_controller(const controller_profile& c, std::span<std::byte, 4096> out) {
    identify_controller id{};
    id.vid = 0;
    id.ssvid = 0;
    copy_padded(id.sn, sizeof id.sn, c.serial, ' ');
    copy_padded(id.mn, sizeof id.mn, c.model, ' ');
    copy_padded(id.fr, sizeof id.fr, c.firmware, ' ');
    id.rab = 6;
    // ieee 0. CMIC: with ANA, a subsystem of this NQN may be reached through
    // several ports (engines on other nodes) and controllers (Linux refuses
    // a second controller of one subsystem without bit 1), and ANA is
    // reported; the discovery controller reports none of it.
    const bool ana = c.ana && !c.discovery;
    id.cmic = ana ? static_cast<std::uint8_t>(cmic_multi_port | cmic_multi_controller | cmic_ana_reporting) : 0;
    id.mdts = c.mdts;
    id.cntlid = c.cntlid;
    id.ver = vs_property;
    // Namespace Attribute Notices only make sense where there are namespaces;
    // the discovery controller reports no optional events (no bit 31 either:
    // no discovery log change AEN).
    id.oaes = c.discovery ? oaes_discovery_log_change_notices
                          : oaes_namespace_attribute_notices | (ana ? oaes_ana_change_notices : 0u);
    // The Linux target sets HIDS too: a fabrics Connect always carries a
    // 128-bit Host Identifier.
    id.ctratt = ctratt_host_id_128;
    id.cntrltype = c.discovery ? cntrltype_discovery : cntrltype_io;

    id.oacs = 0;
    id.acl = 3;   // 4 Abort commands (0's based)
    id.aerl = 3;  // 4 outstanding Async Event Requests (0's based)
    id.frmw = frmw_slot1_read_only | frmw_one_slot;
    // Not bit 0 (SMART per namespace) nor bit 1 (Commands Supported and
    // Effects log): we do not build those.
    id.lpa = lpa_extended_data;
    id.elpe = 0;  // one Error Information entry (0's based)
    id.npss = 0;  // one power state, psd[0] left zero
    id.kas = c.kas_100ms;

    id.sqes = 0x66;  // 64-byte SQEs, required and maximum
    id.cqes = 0x44;  // 16-byte CQEs
    id.maxcmd = c.maxcmd;
    id.nn = c.discovery ? 0 : c.namespace_count;
    id.oncs = c.discovery ? 0 : static_cast<std::uint16_t>(oncs::dataset_management | oncs::write_zeroes | oncs::reservations);
    id.vwc = (!c.discovery && c.volatile_write_cache) ? 1 : 0;
    // SGLs with any byte alignment; no keyed descriptors (RDMA only); the
    // offset form of the Data Block descriptor, which is how in-capsule data
    // (the Connect data included, on every admin queue) is described.
    id.sgls = sgls_supported_byte_aligned | sgls_offset;
    copy_nqn(id.subnqn, c.subnqn);
    if (ana) {
        // One ANA group per namespace, its ID the NSID: a group can change
        // state without touching the subsystem's other namespaces. ANATT:
        // a transition never lasts; 10 s is what a host may wait.
        id.anatt = 10;
        id.anacap = anacap_optimized | anacap_non_optimized | anacap_inaccessible | anacap_persistent_loss |
                    anacap_grpid_static;
        id.anagrpmax = c.namespace_count;
        id.nanagrpid = c.namespace_count;
        id.mnan = c.namespace_count;
    }

    // Fabrics: command capsule = SQE + in-capsule data, response = the CQE.
    // The discovery controller has no I/O queues: SQE only.
    const std::uint32_t capsule = 64 + (c.discovery ? 0 : c.in_capsule_bytes);
    id.ioccsz = capsule / 16;
    id.iorcsz = 1;
    id.icdoff = 0;
    id.fcatt = 0;  // dynamic controller model
    id.msdbd = 1;
    store(id, out);
}

void build_identify_namespace(const namespace_profile& ns, std::span<std::byte, 4096> out) {
    // For an inactive nsid the caller zero-fills the buffer instead.
    identify_namespace id{};
    id.nsze = ns.block_count;
    id.ncap = ns.block_count;
    id.nuse = ns.block_count;
    id.nsfeat = 0;  // no thin provisioning, no DAE
    id.nlbaf = 0;   // one LBA format (0's based)
    id.flbas = 0;   // format 0, no metadata
    // Shared (several controllers, one per host connection, reach it) and
    // reservable: all six types and IEKEY as NVMe 1.3 defines it.
    id.nmic = ns.reservations ? nmic_shared : 0;
    id.rescap = ns.reservations ? static_cast<std::uint8_t>(rescap::all_types | rescap::ignore_existing_key |
                                                            (ns.ptpl ? rescap::persist_through_power_loss : 0))
                                : 0;
    // Bits 2:0 = 001b: a deallocated block reads as zeroes. Bit 3 (Write
    // Zeroes with DEAC deallocates) is left clear: not promised.
    id.dlfeat = ns.deallocated_reads_zero ? dlfeat_read_zeroes : 0;
    // ANA group (docs/ana.md) and NGUID = the UUID's bytes: every engine
    // that serves this volume reports the same identity, which is how a
    // multipath host knows two paths reach one namespace.
    id.anagrpid = ns.ana_group;
    std::memcpy(id.nguid, ns.id.bytes.data(), sizeof id.nguid);
    id.lbaf[0].ms = 0;
    id.lbaf[0].lbads = static_cast<std::uint8_t>(std::countr_zero(ns.block_size));
    id.lbaf[0].rp = 0;
    store(id, out);
}

void build_active_namespace_list(std::span<const std::uint32_t> active, std::uint32_t after,
                                 std::span<std::byte, 4096> out) {
    constexpr std::size_t max_ids = 4096 / sizeof(std::uint32_t);
    std::vector<std::uint32_t> ids;
    ids.reserve(active.size());
    for (const std::uint32_t nsid : active) {
        if (nsid > after && nsid != 0 && nsid != nsid_all) ids.push_back(nsid);
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (ids.size() > max_ids) ids.resize(max_ids);

    std::memset(out.data(), 0, out.size());  // the zero after the last id ends the list
    if (!ids.empty()) std::memcpy(out.data(), ids.data(), ids.size() * sizeof(std::uint32_t));
}

void build_namespace_descriptors(const uuid& id, std::span<std::byte, 4096> out) {
    std::memset(out.data(), 0, out.size());  // a zero NIDT ends the list
    const ns_id_descriptor_header h{nidt::uuid, 16, {0, 0}};
    std::memcpy(out.data(), &h, sizeof h);
    std::memcpy(out.data() + sizeof h, id.bytes.data(), id.bytes.size());
}

std::vector<std::byte> build_discovery_log(std::uint64_t generation, std::span<const discovery_entry> entries) {
    std::vector<std::byte> log(sizeof(discovery_log_header) + entries.size() * sizeof(discovery_log_entry));

    discovery_log_header h{};
    h.genctr = generation;
    h.numrec = entries.size();
    h.recfmt = 0;
    std::memcpy(log.data(), &h, sizeof h);

    std::size_t at = sizeof h;
    for (const discovery_entry& e : entries) {
        discovery_log_entry d{};
        d.trtype = trtype::tcp;
        d.adrfam = e.traddr.find(':') != std::string::npos ? adrfam::ipv6 : adrfam::ipv4;
        d.subtype = e.is_discovery ? subtype::current_discovery : subtype::nvme;
        // We never require TLS; "not required" is the precise answer (the
        // Linux target leaves "not specified" unless configured).
        d.treq = treq::secure_channel_not_required;
        d.portid = e.portid;
        d.cntlid = cntlid_dynamic;
        d.asqsz = admin_queue_depth;
        d.eflags = 0;
        // Space padded as SPDK does; nvme-cli trims trailing spaces (and
        // the NUL padding the Linux target uses) alike.
        copy_padded(d.trsvcid, sizeof d.trsvcid, e.trsvcid, ' ');
        copy_padded(d.traddr, sizeof d.traddr, e.traddr, ' ');
        copy_nqn(d.subnqn, e.subnqn);
        // TSAS for TCP: byte 0 SECTYPE = 0 (no security), the rest reserved.
        std::memcpy(log.data() + at, &d, sizeof d);
        at += sizeof d;
    }
    return log;
}

void build_smart_log(std::span<std::byte, 512> out) {
    smart_health_log l{};
    set_smart_temperature(l, 300);
    l.available_spare = 100;
    l.available_spare_threshold = 10;
    store(l, out);
}

std::uint64_t cap_property(std::uint16_t max_queue_entries) {
    // MQES is 0's based and at least 1 (two entries).
    const auto mqes = static_cast<std::uint16_t>(std::max<std::uint16_t>(max_queue_entries, 2) - 1);
    // CQR: queues must be contiguous (always true on fabrics). TO: 15 * 500 ms
    // for CSTS.RDY to follow CC.EN. Only the NVM command set; memory pages
    // of 4 KiB (MPSMIN = MPSMAX = 0).
    return cap::make(mqes, true, 15, cap::css_nvm, 0, 0);
}

}  // namespace ioe::nvme
