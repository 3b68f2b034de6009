// NVMe Identify data as plain data (NVM Express Base 2.0, NVM Command Set
// 1.0): Identify Controller (CNS 01h) with its power state descriptors,
// Identify Namespace (CNS 00h) with its LBA formats, and the Namespace
// Identification Descriptor list (CNS 03h). Sizes and every field offset
// are pinned by static_asserts (see nvme_spec.hh and docs/nvmf.md).
#pragma once

#include <cstddef>
#include <cstdint>

#include "nvme/spec/nvme_spec.hh"

namespace ioe::nvme {

// ---------------------------------------------------------------------------
// Identify Controller data structure (CNS 01h, 4096 bytes).

struct power_state_descriptor {
    std::uint16_t mp;  // maximum power
    std::uint8_t reserved2;
    std::uint8_t flags;  // mxps (bit 0), nops (bit 1)
    std::uint32_t enlat;
    std::uint32_t exlat;
    std::uint8_t rrt;
    std::uint8_t rrl;
    std::uint8_t rwt;
    std::uint8_t rwl;
    std::uint16_t idlp;
    std::uint8_t ips;
    std::uint8_t reserved19;
    std::uint16_t actp;
    std::uint8_t apw_aps;
    std::uint8_t reserved23[9];
};
static_assert(sizeof(power_state_descriptor) == 32);
static_assert(offsetof(power_state_descriptor, mp) == 0);
static_assert(offsetof(power_state_descriptor, reserved2) == 2);
static_assert(offsetof(power_state_descriptor, flags) == 3);
static_assert(offsetof(power_state_descriptor, enlat) == 4);
static_assert(offsetof(power_state_descriptor, exlat) == 8);
static_assert(offsetof(power_state_descriptor, rrt) == 12);
static_assert(offsetof(power_state_descriptor, rrl) == 13);
static_assert(offsetof(power_state_descriptor, rwt) == 14);
static_assert(offsetof(power_state_descriptor, rwl) == 15);
static_assert(offsetof(power_state_descriptor, idlp) == 16);
static_assert(offsetof(power_state_descriptor, ips) == 18);
static_assert(offsetof(power_state_descriptor, reserved19) == 19);
static_assert(offsetof(power_state_descriptor, actp) == 20);
static_assert(offsetof(power_state_descriptor, apw_aps) == 22);
static_assert(offsetof(power_state_descriptor, reserved23) == 23);

// ONCS bits (Optional NVM Command Support).
namespace oncs {
inline constexpr std::uint16_t compare = 1u << 0;
inline constexpr std::uint16_t write_uncorrectable = 1u << 1;
inline constexpr std::uint16_t dataset_management = 1u << 2;
inline constexpr std::uint16_t write_zeroes = 1u << 3;
inline constexpr std::uint16_t reservations = 1u << 5;
}  // namespace oncs

// Identify Namespace RESCAP bits: 0 PTPL, 1-6 the six reservation types (in
// rtype order), 7 IEKEY as NVMe 1.3 defines it. NMIC bit 0: shared namespace.
namespace rescap {
inline constexpr std::uint8_t persist_through_power_loss = 1u << 0;
inline constexpr std::uint8_t all_types = 0x7e;
inline constexpr std::uint8_t ignore_existing_key = 1u << 7;
}  // namespace rescap
inline constexpr std::uint8_t nmic_shared = 1u << 0;

struct identify_controller {
    // Controller capabilities and features.
    std::uint16_t vid;
    std::uint16_t ssvid;
    char sn[20];  // ASCII, space padded
    char mn[40];  // ASCII, space padded
    char fr[8];   // ASCII, space padded
    std::uint8_t rab;
    std::uint8_t ieee[3];
    std::uint8_t cmic;
    std::uint8_t mdts;  // max data transfer, 2^n units of CAP.MPSMIN; 0 = no limit
    std::uint16_t cntlid;
    std::uint32_t ver;
    std::uint32_t rtd3r;
    std::uint32_t rtd3e;
    std::uint32_t oaes;
    std::uint32_t ctratt;
    std::uint16_t rrls;
    std::uint8_t reserved102[9];
    std::uint8_t cntrltype;  // 1 I/O, 2 discovery, 3 administrative
    std::uint8_t fguid[16];
    std::uint16_t crdt1;
    std::uint16_t crdt2;
    std::uint16_t crdt3;
    std::uint8_t reserved134[119];
    std::uint8_t nvmsr;
    std::uint8_t vwci;
    std::uint8_t mec;
    // Admin command set attributes and optional controller capabilities.
    std::uint16_t oacs;
    std::uint8_t acl;
    std::uint8_t aerl;
    std::uint8_t frmw;
    std::uint8_t lpa;
    std::uint8_t elpe;
    std::uint8_t npss;
    std::uint8_t avscc;
    std::uint8_t apsta;
    std::uint16_t wctemp;
    std::uint16_t cctemp;
    std::uint16_t mtfa;
    std::uint32_t hmpre;
    std::uint32_t hmmin;
    std::uint64_t tnvmcap[2];  // 128-bit little-endian: [0] low, [1] high
    std::uint64_t unvmcap[2];
    std::uint32_t rpmbs;
    std::uint16_t edstt;
    std::uint8_t dsto;
    std::uint8_t fwug;
    std::uint16_t kas;  // keep alive granularity, 100 ms units
    std::uint16_t hctma;
    std::uint16_t mntmt;
    std::uint16_t mxtmt;
    std::uint32_t sanicap;
    std::uint32_t hmminds;
    std::uint16_t hmmaxd;
    std::uint16_t nsetidmax;
    std::uint16_t endgidmax;
    std::uint8_t anatt;
    std::uint8_t anacap;
    std::uint32_t anagrpmax;
    std::uint32_t nanagrpid;
    std::uint32_t pels;
    std::uint16_t domainid;
    std::uint8_t reserved358[10];
    std::uint64_t megcap[2];
    std::uint8_t reserved384[128];
    // NVM command set attributes.
    std::uint8_t sqes;  // bits 3:0 required, 7:4 maximum (log2 bytes)
    std::uint8_t cqes;
    std::uint16_t maxcmd;
    std::uint32_t nn;
    std::uint16_t oncs;
    std::uint16_t fuses;
    std::uint8_t fna;
    std::uint8_t vwc;
    std::uint16_t awun;
    std::uint16_t awupf;
    std::uint8_t icsvscc;
    std::uint8_t nwpc;
    std::uint16_t acwu;
    std::uint16_t ocfs;
    std::uint32_t sgls;
    std::uint32_t mnan;
    std::uint64_t maxdna[2];
    std::uint32_t maxcna;
    std::uint8_t reserved564[204];
    char subnqn[nqn_field_bytes];
    std::uint8_t reserved1024[768];
    // NVMe over Fabrics attributes.
    std::uint32_t ioccsz;  // I/O queue command capsule size, 16-byte units
    std::uint32_t iorcsz;  // I/O queue response capsule size, 16-byte units
    std::uint16_t icdoff;  // in-capsule data offset, 16-byte units
    std::uint8_t fcatt;    // fabrics controller attributes (bit 0: dynamic controller model = 0)
    std::uint8_t msdbd;    // maximum SGL data block descriptors
    std::uint16_t ofcs;
    std::uint8_t reserved1806[242];
    power_state_descriptor psd[32];
    std::uint8_t vs[1024];
};
static_assert(sizeof(identify_controller) == identify_bytes);
static_assert(offsetof(identify_controller, vid) == 0);
static_assert(offsetof(identify_controller, ssvid) == 2);
static_assert(offsetof(identify_controller, sn) == 4);
static_assert(offsetof(identify_controller, mn) == 24);
static_assert(offsetof(identify_controller, fr) == 64);
static_assert(offsetof(identify_controller, rab) == 72);
static_assert(offsetof(identify_controller, ieee) == 73);
static_assert(offsetof(identify_controller, cmic) == 76);
static_assert(offsetof(identify_controller, mdts) == 77);
static_assert(offsetof(identify_controller, cntlid) == 78);
static_assert(offsetof(identify_controller, ver) == 80);
static_assert(offsetof(identify_controller, rtd3r) == 84);
static_assert(offsetof(identify_controller, rtd3e) == 88);
static_assert(offsetof(identify_controller, oaes) == 92);
static_assert(offsetof(identify_controller, ctratt) == 96);
static_assert(offsetof(identify_controller, rrls) == 100);
static_assert(offsetof(identify_controller, reserved102) == 102);
static_assert(offsetof(identify_controller, cntrltype) == 111);
static_assert(offsetof(identify_controller, fguid) == 112);
static_assert(offsetof(identify_controller, crdt1) == 128);
static_assert(offsetof(identify_controller, crdt2) == 130);
static_assert(offsetof(identify_controller, crdt3) == 132);
static_assert(offsetof(identify_controller, reserved134) == 134);
static_assert(offsetof(identify_controller, nvmsr) == 253);
static_assert(offsetof(identify_controller, vwci) == 254);
static_assert(offsetof(identify_controller, mec) == 255);
static_assert(offsetof(identify_controller, oacs) == 256);
static_assert(offsetof(identify_controller, acl) == 258);
static_assert(offsetof(identify_controller, aerl) == 259);
static_assert(offsetof(identify_controller, frmw) == 260);
static_assert(offsetof(identify_controller, lpa) == 261);
static_assert(offsetof(identify_controller, elpe) == 262);
static_assert(offsetof(identify_controller, npss) == 263);
static_assert(offsetof(identify_controller, avscc) == 264);
static_assert(offsetof(identify_controller, apsta) == 265);
static_assert(offsetof(identify_controller, wctemp) == 266);
static_assert(offsetof(identify_controller, cctemp) == 268);
static_assert(offsetof(identify_controller, mtfa) == 270);
static_assert(offsetof(identify_controller, hmpre) == 272);
static_assert(offsetof(identify_controller, hmmin) == 276);
static_assert(offsetof(identify_controller, tnvmcap) == 280);
static_assert(offsetof(identify_controller, unvmcap) == 296);
static_assert(offsetof(identify_controller, rpmbs) == 312);
static_assert(offsetof(identify_controller, edstt) == 316);
static_assert(offsetof(identify_controller, dsto) == 318);
static_assert(offsetof(identify_controller, fwug) == 319);
static_assert(offsetof(identify_controller, kas) == 320);
static_assert(offsetof(identify_controller, hctma) == 322);
static_assert(offsetof(identify_controller, mntmt) == 324);
static_assert(offsetof(identify_controller, mxtmt) == 326);
static_assert(offsetof(identify_controller, sanicap) == 328);
static_assert(offsetof(identify_controller, hmminds) == 332);
static_assert(offsetof(identify_controller, hmmaxd) == 336);
static_assert(offsetof(identify_controller, nsetidmax) == 338);
static_assert(offsetof(identify_controller, endgidmax) == 340);
static_assert(offsetof(identify_controller, anatt) == 342);
static_assert(offsetof(identify_controller, anacap) == 343);
static_assert(offsetof(identify_controller, anagrpmax) == 344);
static_assert(offsetof(identify_controller, nanagrpid) == 348);
static_assert(offsetof(identify_controller, pels) == 352);
static_assert(offsetof(identify_controller, domainid) == 356);
static_assert(offsetof(identify_controller, reserved358) == 358);
static_assert(offsetof(identify_controller, megcap) == 368);
static_assert(offsetof(identify_controller, reserved384) == 384);
static_assert(offsetof(identify_controller, sqes) == 512);
static_assert(offsetof(identify_controller, cqes) == 513);
static_assert(offsetof(identify_controller, maxcmd) == 514);
static_assert(offsetof(identify_controller, nn) == 516);
static_assert(offsetof(identify_controller, oncs) == 520);
static_assert(offsetof(identify_controller, fuses) == 522);
static_assert(offsetof(identify_controller, fna) == 524);
static_assert(offsetof(identify_controller, vwc) == 525);
static_assert(offsetof(identify_controller, awun) == 526);
static_assert(offsetof(identify_controller, awupf) == 528);
static_assert(offsetof(identify_controller, icsvscc) == 530);
static_assert(offsetof(identify_controller, nwpc) == 531);
static_assert(offsetof(identify_controller, acwu) == 532);
static_assert(offsetof(identify_controller, ocfs) == 534);
static_assert(offsetof(identify_controller, sgls) == 536);
static_assert(offsetof(identify_controller, mnan) == 540);
static_assert(offsetof(identify_controller, maxdna) == 544);
static_assert(offsetof(identify_controller, maxcna) == 560);
static_assert(offsetof(identify_controller, reserved564) == 564);
static_assert(offsetof(identify_controller, subnqn) == 768);
static_assert(offsetof(identify_controller, reserved1024) == 1024);
static_assert(offsetof(identify_controller, ioccsz) == 1792);
static_assert(offsetof(identify_controller, iorcsz) == 1796);
static_assert(offsetof(identify_controller, icdoff) == 1800);
static_assert(offsetof(identify_controller, fcatt) == 1802);
static_assert(offsetof(identify_controller, msdbd) == 1803);
static_assert(offsetof(identify_controller, ofcs) == 1804);
static_assert(offsetof(identify_controller, reserved1806) == 1806);
static_assert(offsetof(identify_controller, psd) == 2048);
static_assert(offsetof(identify_controller, vs) == 3072);

// VS / ver encoding: major 31:16, minor 15:8, tertiary 7:0.
constexpr std::uint32_t make_version(std::uint16_t major, std::uint8_t minor, std::uint8_t tertiary = 0) {
    return (std::uint32_t{major} << 16) | (std::uint32_t{minor} << 8) | tertiary;
}

// ---------------------------------------------------------------------------
// Identify Namespace data structure (CNS 00h, NVM command set, 4096 bytes).

struct lba_format {
    std::uint16_t ms;    // metadata bytes per block
    std::uint8_t lbads;  // log2 of the data block size (9 = 512, 12 = 4096)
    std::uint8_t rp;     // relative performance (bits 1:0)
};
static_assert(sizeof(lba_format) == 4);
static_assert(offsetof(lba_format, ms) == 0);
static_assert(offsetof(lba_format, lbads) == 2);
static_assert(offsetof(lba_format, rp) == 3);

struct identify_namespace {
    std::uint64_t nsze;  // size in logical blocks
    std::uint64_t ncap;  // capacity in logical blocks
    std::uint64_t nuse;  // utilization in logical blocks
    std::uint8_t nsfeat;
    std::uint8_t nlbaf;  // number of LBA formats, 0's based
    std::uint8_t flbas;  // bits 3:0 (and 6:5) index of the format in use
    std::uint8_t mc;
    std::uint8_t dpc;
    std::uint8_t dps;
    std::uint8_t nmic;
    std::uint8_t rescap;
    std::uint8_t fpi;
    std::uint8_t dlfeat;
    std::uint16_t nawun;
    std::uint16_t nawupf;
    std::uint16_t nacwu;
    std::uint16_t nabsn;
    std::uint16_t nabo;
    std::uint16_t nabspf;
    std::uint16_t noiob;
    std::uint64_t nvmcap[2];
    std::uint16_t npwg;
    std::uint16_t npwa;
    std::uint16_t npdg;
    std::uint16_t npda;
    std::uint16_t nows;
    std::uint16_t mssrl;
    std::uint32_t mcl;
    std::uint8_t msrc;
    std::uint8_t reserved81[11];
    std::uint32_t anagrpid;
    std::uint8_t reserved96[3];
    std::uint8_t nsattr;
    std::uint16_t nvmsetid;
    std::uint16_t endgid;
    std::uint8_t nguid[16];
    std::uint8_t eui64[8];
    lba_format lbaf[64];
    std::uint8_t reserved384[3328];
    std::uint8_t vs[384];
};
static_assert(sizeof(identify_namespace) == identify_bytes);
static_assert(offsetof(identify_namespace, nsze) == 0);
static_assert(offsetof(identify_namespace, ncap) == 8);
static_assert(offsetof(identify_namespace, nuse) == 16);
static_assert(offsetof(identify_namespace, nsfeat) == 24);
static_assert(offsetof(identify_namespace, nlbaf) == 25);
static_assert(offsetof(identify_namespace, flbas) == 26);
static_assert(offsetof(identify_namespace, mc) == 27);
static_assert(offsetof(identify_namespace, dpc) == 28);
static_assert(offsetof(identify_namespace, dps) == 29);
static_assert(offsetof(identify_namespace, nmic) == 30);
static_assert(offsetof(identify_namespace, rescap) == 31);
static_assert(offsetof(identify_namespace, fpi) == 32);
static_assert(offsetof(identify_namespace, dlfeat) == 33);
static_assert(offsetof(identify_namespace, nawun) == 34);
static_assert(offsetof(identify_namespace, nawupf) == 36);
static_assert(offsetof(identify_namespace, nacwu) == 38);
static_assert(offsetof(identify_namespace, nabsn) == 40);
static_assert(offsetof(identify_namespace, nabo) == 42);
static_assert(offsetof(identify_namespace, nabspf) == 44);
static_assert(offsetof(identify_namespace, noiob) == 46);
static_assert(offsetof(identify_namespace, nvmcap) == 48);
static_assert(offsetof(identify_namespace, npwg) == 64);
static_assert(offsetof(identify_namespace, npwa) == 66);
static_assert(offsetof(identify_namespace, npdg) == 68);
static_assert(offsetof(identify_namespace, npda) == 70);
static_assert(offsetof(identify_namespace, nows) == 72);
static_assert(offsetof(identify_namespace, mssrl) == 74);
static_assert(offsetof(identify_namespace, mcl) == 76);
static_assert(offsetof(identify_namespace, msrc) == 80);
static_assert(offsetof(identify_namespace, reserved81) == 81);
static_assert(offsetof(identify_namespace, anagrpid) == 92);
static_assert(offsetof(identify_namespace, reserved96) == 96);
static_assert(offsetof(identify_namespace, nsattr) == 99);
static_assert(offsetof(identify_namespace, nvmsetid) == 100);
static_assert(offsetof(identify_namespace, endgid) == 102);
static_assert(offsetof(identify_namespace, nguid) == 104);
static_assert(offsetof(identify_namespace, eui64) == 120);
static_assert(offsetof(identify_namespace, lbaf) == 128);
static_assert(offsetof(identify_namespace, reserved384) == 384);
static_assert(offsetof(identify_namespace, vs) == 3712);

// NSFEAT bit 0: the namespace supports thin provisioning (NSZE may exceed NCAP).
// DLFEAT bits 2:0 = 001b: deallocated blocks read as zeroes; bit 3: Write
// Zeroes may deallocate.
inline constexpr std::uint8_t dlfeat_read_zeroes = 0x1;
inline constexpr std::uint8_t dlfeat_write_zeroes_deallocates = 0x8;

constexpr std::uint8_t flbas_index(std::uint8_t flbas) {
    return static_cast<std::uint8_t>((flbas & 0x0f) | ((flbas & 0x60) >> 1));
}

// ---------------------------------------------------------------------------
// Namespace Identification Descriptor (CNS 03h): a list of these, each a
// 4-byte header followed by NIDL bytes, ended by a zero NIDT; 4096 bytes.

namespace nidt {
inline constexpr std::uint8_t eui64 = 0x1;  // NIDL 8
inline constexpr std::uint8_t nguid = 0x2;  // NIDL 16
inline constexpr std::uint8_t uuid = 0x3;   // NIDL 16
inline constexpr std::uint8_t csi = 0x4;    // NIDL 1
}  // namespace nidt

struct ns_id_descriptor_header {
    std::uint8_t nidt;
    std::uint8_t nidl;
    std::uint8_t reserved[2];
};
static_assert(sizeof(ns_id_descriptor_header) == 4);
static_assert(offsetof(ns_id_descriptor_header, nidt) == 0);
static_assert(offsetof(ns_id_descriptor_header, nidl) == 1);
static_assert(offsetof(ns_id_descriptor_header, reserved) == 2);


}  // namespace ioe::nvme
