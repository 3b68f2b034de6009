// The vhost-user protocol as plain data (QEMU docs/interop/vhost-user.rst):
// the 12-byte message header, the request ids of front-end messages, the
// header flags, the protocol feature bits, every payload this back-end
// reads or writes (u64, vring state, vring address, memory table and its
// regions, single region, log, config space, inflight description) and the
// layout of the inflight shared memory for split queues. Sizes and every
// field offset are pinned by static_asserts; docs/vhost.md has the tables.
//
// vhost-user numbers are in the machine's byte order (both ends run on the
// same host); this engine builds only for little-endian hosts.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace ioe::vhost::user {

static_assert(std::endian::native == std::endian::little);

// The virtio feature bit (otherwise unused by virtio) through which a
// back-end says it speaks GET/SET_PROTOCOL_FEATURES.
inline constexpr unsigned f_protocol_features = 30;
// The virtio feature bit of dirty-page logging for live migration.
inline constexpr unsigned f_log_all = 26;

// Front-end requests (the `request` field of the header).
enum class request : std::uint32_t {
    none = 0,
    get_features = 1,
    set_features = 2,
    set_owner = 3,
    reset_owner = 4,
    set_mem_table = 5,
    set_log_base = 6,
    set_log_fd = 7,
    set_vring_num = 8,
    set_vring_addr = 9,
    set_vring_base = 10,
    get_vring_base = 11,
    set_vring_kick = 12,
    set_vring_call = 13,
    set_vring_err = 14,
    get_protocol_features = 15,
    set_protocol_features = 16,
    get_queue_num = 17,
    set_vring_enable = 18,
    send_rarp = 19,
    net_set_mtu = 20,
    set_backend_req_fd = 21,
    iotlb_msg = 22,
    set_vring_endian = 23,
    get_config = 24,
    set_config = 25,
    create_crypto_session = 26,
    close_crypto_session = 27,
    postcopy_advise = 28,
    postcopy_listen = 29,
    postcopy_end = 30,
    get_inflight_fd = 31,
    set_inflight_fd = 32,
    gpu_set_socket = 33,
    reset_device = 34,
    vring_kick = 35,
    get_max_mem_slots = 36,
    add_mem_reg = 37,
    rem_mem_reg = 38,
    set_status = 39,
    get_status = 40,
    get_shared_object = 41,
    set_device_state_fd = 42,
    check_device_state = 43,
};
inline constexpr std::uint32_t last_request_id = 43;

// Protocol feature bits (GET/SET_PROTOCOL_FEATURES).
namespace protocol_feature {
inline constexpr unsigned mq = 0;
inline constexpr unsigned log_shmfd = 1;
inline constexpr unsigned rarp = 2;
inline constexpr unsigned reply_ack = 3;
inline constexpr unsigned net_mtu = 4;
inline constexpr unsigned backend_req = 5;
inline constexpr unsigned cross_endian = 6;
inline constexpr unsigned crypto_session = 7;
inline constexpr unsigned pagefault = 8;
inline constexpr unsigned config = 9;
inline constexpr unsigned backend_send_fd = 10;
inline constexpr unsigned host_notifier = 11;
inline constexpr unsigned inflight_shmfd = 12;
inline constexpr unsigned reset_device = 13;
inline constexpr unsigned inband_notifications = 14;
inline constexpr unsigned configure_mem_slots = 15;
inline constexpr unsigned status = 16;
inline constexpr unsigned xen_mmap = 17;
inline constexpr unsigned shared_object = 18;
inline constexpr unsigned device_state = 19;
}  // namespace protocol_feature

// Header flags.
namespace header_flags {
inline constexpr std::uint32_t version_mask = 0x3;
inline constexpr std::uint32_t version = 0x1;       // the only version
inline constexpr std::uint32_t reply = 1u << 2;     // set on every back-end reply
inline constexpr std::uint32_t need_reply = 1u << 3;  // REPLY_ACK: the front-end wants an answer
inline constexpr std::uint32_t known = version_mask | reply | need_reply;
}  // namespace header_flags

struct msg_header {
    std::uint32_t request;  // request
    std::uint32_t flags;    // header_flags
    std::uint32_t size;     // payload bytes that follow
};
static_assert(sizeof(msg_header) == 12);
static_assert(offsetof(msg_header, request) == 0);
static_assert(offsetof(msg_header, flags) == 4);
static_assert(offsetof(msg_header, size) == 8);

// SET_VRING_NUM / SET_VRING_BASE / GET_VRING_BASE / SET_VRING_ENABLE /
// VRING_KICK payload.
struct vring_state {
    std::uint32_t index;  // queue index
    std::uint32_t num;    // size, base (next available index) or enable (0/1)
};
static_assert(sizeof(vring_state) == 8);
static_assert(offsetof(vring_state, index) == 0);
static_assert(offsetof(vring_state, num) == 4);

// SET_VRING_ADDR payload. The three ring addresses are front-end user
// (virtual) addresses, translated through the regions' user_addr; `log` is
// a guest physical address. Note the order: used before avail.
struct vring_addr {
    std::uint32_t index;
    std::uint32_t flags;  // vring_flag_log
    std::uint64_t desc;   // descriptor table
    std::uint64_t used;   // used ring
    std::uint64_t avail;  // available ring
    std::uint64_t log;    // where used-ring writes are logged (migration)
};
static_assert(sizeof(vring_addr) == 40);
static_assert(offsetof(vring_addr, index) == 0);
static_assert(offsetof(vring_addr, flags) == 4);
static_assert(offsetof(vring_addr, desc) == 8);
static_assert(offsetof(vring_addr, used) == 16);
static_assert(offsetof(vring_addr, avail) == 24);
static_assert(offsetof(vring_addr, log) == 32);
inline constexpr std::uint32_t vring_flag_log = 1;

// SET_VRING_KICK / CALL / ERR carry a u64: the queue index in bits 0-7 and,
// in bit 8, "no fd follows: poll instead".
inline constexpr std::uint64_t vring_file_index_mask = 0xff;
inline constexpr std::uint64_t vring_file_nofd = 0x100;

// One guest memory region (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG).
struct memory_region {
    std::uint64_t guest_phys_addr;
    std::uint64_t size;
    std::uint64_t user_addr;    // the front-end's virtual address of guest_phys_addr
    std::uint64_t mmap_offset;  // where the region starts in the fd's mapping
};
static_assert(sizeof(memory_region) == 32);
static_assert(offsetof(memory_region, guest_phys_addr) == 0);
static_assert(offsetof(memory_region, size) == 8);
static_assert(offsetof(memory_region, user_addr) == 16);
static_assert(offsetof(memory_region, mmap_offset) == 24);

// SET_MEM_TABLE payload: this head, then `num_regions` memory_region (the
// front-end sends only those, so the payload is 8 + 32 * num_regions bytes),
// one fd per region in the same order.
inline constexpr std::uint32_t max_mem_table_regions = 8;
struct memory_table_head {
    std::uint32_t num_regions;
    std::uint32_t padding;
};
static_assert(sizeof(memory_table_head) == 8);
static_assert(offsetof(memory_table_head, num_regions) == 0);
static_assert(offsetof(memory_table_head, padding) == 4);

// ADD_MEM_REG / REM_MEM_REG payload.
struct single_region {
    std::uint64_t padding;
    memory_region region;
};
static_assert(sizeof(single_region) == 40);
static_assert(offsetof(single_region, padding) == 0);
static_assert(offsetof(single_region, region) == 8);

// SET_LOG_BASE payload (with LOG_SHMFD; not offered by this back-end).
struct log_area {
    std::uint64_t mmap_size;
    std::uint64_t mmap_offset;
};
static_assert(sizeof(log_area) == 16);
static_assert(offsetof(log_area, mmap_size) == 0);
static_assert(offsetof(log_area, mmap_offset) == 8);

// GET_CONFIG / SET_CONFIG payload: this head, then `size` bytes of the
// device configuration space from `offset`.
inline constexpr std::uint32_t max_config_bytes = 256;
namespace config_flags {
inline constexpr std::uint32_t writable = 0;   // the driver wrote a writable field
inline constexpr std::uint32_t migration = 1;  // live migration restores the whole space
}  // namespace config_flags
struct config_head {
    std::uint32_t offset;
    std::uint32_t size;
    std::uint32_t flags;  // config_flags
};
static_assert(sizeof(config_head) == 12);
static_assert(offsetof(config_head, offset) == 0);
static_assert(offsetof(config_head, size) == 4);
static_assert(offsetof(config_head, flags) == 8);

// GET_INFLIGHT_FD / SET_INFLIGHT_FD payload (24 bytes: QEMU's struct is
// not packed, so 4 bytes of tail padding travel too).
struct inflight {
    std::uint64_t mmap_size;
    std::uint64_t mmap_offset;
    std::uint16_t num_queues;
    std::uint16_t queue_size;
    std::uint8_t padding[4];
};
static_assert(sizeof(inflight) == 24);
static_assert(offsetof(inflight, mmap_size) == 0);
static_assert(offsetof(inflight, mmap_offset) == 8);
static_assert(offsetof(inflight, num_queues) == 16);
static_assert(offsetof(inflight, queue_size) == 18);
static_assert(offsetof(inflight, padding) == 20);

// The largest payload of any request this back-end reads: a config access
// of 256 bytes (the memory table is 8 + 8 * 32 = 264).
inline constexpr std::uint32_t max_payload_bytes = sizeof(config_head) + max_config_bytes;
static_assert(max_payload_bytes >= sizeof(memory_table_head) + max_mem_table_regions * sizeof(memory_region));
// At most this many fds come with one message (one per memory table region).
inline constexpr std::uint32_t max_fds = max_mem_table_regions;

// The inflight shared memory (INFLIGHT_SHMFD) for split queues: one region
// per queue, each this head followed by one desc_state per descriptor.
struct inflight_desc_split {
    std::uint8_t inflight;     // 1 while the chain with this head is being served
    std::uint8_t padding[5];
    std::uint16_t next;        // links the last batch of used heads
    std::uint64_t counter;     // fetch order, to resubmit in order
};
static_assert(sizeof(inflight_desc_split) == 16);
static_assert(offsetof(inflight_desc_split, inflight) == 0);
static_assert(offsetof(inflight_desc_split, padding) == 1);
static_assert(offsetof(inflight_desc_split, next) == 6);
static_assert(offsetof(inflight_desc_split, counter) == 8);

struct inflight_queue_split {
    std::uint64_t features;         // 0
    std::uint16_t version;          // 1 (0: not initialised)
    std::uint16_t desc_num;         // = queue size
    std::uint16_t last_batch_head;  // head of the last used batch list
    std::uint16_t used_idx;         // used.idx after the last completed batch
    // inflight_desc_split desc[desc_num] follows.
};
static_assert(sizeof(inflight_queue_split) == 16);
static_assert(offsetof(inflight_queue_split, features) == 0);
static_assert(offsetof(inflight_queue_split, version) == 8);
static_assert(offsetof(inflight_queue_split, desc_num) == 10);
static_assert(offsetof(inflight_queue_split, last_batch_head) == 12);
static_assert(offsetof(inflight_queue_split, used_idx) == 14);
inline constexpr std::uint16_t inflight_version = 1;

}  // namespace ioe::vhost::user
