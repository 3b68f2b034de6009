// fault_device: a block device that wraps another one and, on demand, fails,
// delays, corrupts or drops its I/O, so tests can fault a nexus child, lose
// unsynced writes at a "power cut", or slow one replica down (DESIGN.md,
// "Fault injection"; LevelDB's fault_injection_test in STYLE.md).
//
// Shape:
// * `fault_device` is an actor on the shard that constructs it (the owner).
//   It does not own `inner`: close the wrapper before the inner device, and
//   keep the inner alive until the wrapper is closed. It presents the inner
//   device's identity (uuid, block size, block count at construction) under
//   its own name, with product "fault".
// * Its channel on shard S forwards every operation to inner.channel() on
//   shard S (never to another shard), through the inner's checked io_channel.
// * Rules are kept by the owner. add_rule / remove_rule / clear_rules / hits
//   may be called from any shard: they hop to the owner, which builds a new
//   immutable snapshot of the rule list and installs it on every shard (one
//   submit_to per shard, the for_each_channel pattern). The returned future
//   completes once every shard has it, so an I/O issued after it sees the
//   change. Each shard keeps its snapshot pointer in a slot of its own, which
//   its channel reads with no lock; a channel opened later reads the same
//   slot, so it starts with the current rules.
// * Per I/O, with no rule acting, the channel returns the inner channel's
//   future unchanged: no lock, no allocation, no coroutine.
//
// Rule semantics:
// * An I/O matches a rule when its operation is in `ops`, its block range
//   overlaps [lba_begin, lba_end) (a flush has no range: it matches any
//   range), and now is inside [not_before, not_after] (the clock is read only
//   for rules that set a window). `corrupt` matches reads and writes only
//   (the other operations carry no data).
// * Rules are tried in the order they were added. Every matching rule counts
//   the I/O; a rule acts on the matching I/Os numbered skip+1 .. skip+count.
//   The first rule that acts decides the outcome; later rules do not see the
//   I/O.
// * skip/count and hits are counted PER SHARD: each shard counts the I/O its
//   own channel sees (counting across shards would need a shared atomic on
//   the I/O path). A test that relies on skip/count issues that I/O from one
//   shard. hits(id) returns the sum over shards. Counters survive other
//   rules being added or removed; a removed rule's counters are gone.
//
// Actions:
// * fail:    complete with `status`, without forwarding.
// * delay:   sleep `delay` (ioe::sleep on the channel's shard), then forward.
// * corrupt: reads are forwarded, then the first byte of every block inside
//            the rule's range is XORed with 0xff in the returned data (the
//            inner device is intact). Writes: the same bytes are flipped in
//            the caller's buffer, the write is forwarded, and the bytes are
//            flipped back when it completes; the device stores corrupt data
//            and the write reports the inner's status. The caller's buffer
//            therefore reads corrupt while the write is in flight (no copy:
//            a copy would need a DMA buffer per I/O).
// * drop:    complete with success without forwarding: a write lost as after
//            a power cut with a volatile cache. Torn-write crash tests use
//            {ops = write | write_zeroes | flush, action = drop, skip = N}:
//            everything after the N-th such I/O is acknowledged and lost.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/future.hh"
#include "runtime/spsc_ring.hh"
#include "runtime/timer.hh"
#include "storage/block_device.hh"
#include "storage/io_status.hh"

namespace ioe {

class fault_channel;

// Operations a rule applies to (bit flags).
enum class op_mask : std::uint8_t {
    none = 0,
    read = 1,
    write = 2,
    flush = 4,
    write_zeroes = 8,
    unmap = 16,
    all = 31,
};
constexpr op_mask operator|(op_mask a, op_mask b) noexcept {
    return static_cast<op_mask>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
constexpr op_mask operator&(op_mask a, op_mask b) noexcept {
    return static_cast<op_mask>(static_cast<std::uint8_t>(a) & static_cast<std::uint8_t>(b));
}
constexpr bool has(op_mask m, op_mask op) noexcept { return (m & op) != op_mask::none; }

enum class fault_action : std::uint8_t { fail, delay, corrupt, drop };

std::string_view to_string(fault_action a) noexcept;

struct fault_rule {
    op_mask ops = op_mask::all;
    std::uint64_t lba_begin = 0;
    std::uint64_t lba_end = UINT64_MAX;  // exclusive
    fault_action action = fault_action::fail;
    io_status status = io_status::write_fault;  // fail
    std::chrono::microseconds delay{0};         // delay
    std::uint64_t skip = 0;                     // let the first `skip` matches through
    std::uint64_t count = UINT64_MAX;           // then act on at most `count`
    steady_clock::time_point not_before = steady_clock::time_point::min();
    steady_clock::time_point not_after = steady_clock::time_point::max();

    // Shorthands; adjust the other fields afterwards.
    static fault_rule fail(op_mask ops, io_status st) {
        fault_rule r;
        r.ops = ops;
        r.action = fault_action::fail;
        r.status = st;
        return r;
    }
    static fault_rule delay_by(op_mask ops, std::chrono::microseconds d) {
        fault_rule r;
        r.ops = ops;
        r.action = fault_action::delay;
        r.delay = d;
        return r;
    }
    static fault_rule corrupt(op_mask ops) {
        fault_rule r;
        r.ops = ops;
        r.action = fault_action::corrupt;
        return r;
    }
    static fault_rule drop(op_mask ops) {
        fault_rule r;
        r.ops = ops;
        r.action = fault_action::drop;
        return r;
    }
    fault_rule& on_blocks(std::uint64_t begin, std::uint64_t end) {
        lba_begin = begin;
        lba_end = end;
        return *this;
    }
    fault_rule& after(std::uint64_t n) {
        skip = n;
        return *this;
    }
    fault_rule& at_most(std::uint64_t n) {
        count = n;
        return *this;
    }
};

class fault_device final : public block_device {
public:
    // `inner` must outlive this device (see the top of this file).
    fault_device(std::string name, block_device* inner);
    ~fault_device() override;

    block_device* inner() const noexcept { return _inner; }

    // Any shard. Installs `rule` on every shard and returns its id (ids start
    // at 1). storage_error(invalid_argument) for an empty op mask, an empty
    // LBA range, an empty time window, or corrupt on no data-carrying op.
    future<std::uint64_t> add_rule(fault_rule rule);
    // Any shard. storage_error(not_found) for an id that is not installed.
    future<> remove_rule(std::uint64_t id);
    future<> clear_rules();
    // Any shard: the I/Os rule `id` acted on, summed over shards.
    // storage_error(not_found) for an id that is not installed.
    future<std::uint64_t> hits(std::uint64_t id);

    // Any shard: the device says (or stops saying) that it no longer serves
    // as a path to its volume, as a fenced nexus does (block_device::
    // path_inaccessible); its I/O still goes to the inner device.
    void set_path_lost(bool lost) noexcept { _path_lost.store(lost, std::memory_order_relaxed); }
    bool path_inaccessible() const noexcept override { return _path_lost.load(std::memory_order_relaxed); }

protected:
    std::unique_ptr<device_channel> open_channel() override;

private:
    friend class fault_channel;
    std::atomic<bool> _path_lost{false};
    enum class op_kind : std::uint8_t { read, write, flush, write_zeroes, unmap };
    struct io_request {
        op_kind op;
        std::uint64_t lba;
        std::uint64_t blocks;
        io_vecs iov;
    };
    struct installed_rule {
        std::uint64_t id;
        fault_rule rule;
    };
    struct rule_set {
        std::uint64_t version = 0;
        std::vector<installed_rule> rules;
    };
    struct rule_counters {
        std::uint64_t matched = 0;  // matching I/Os seen (skip/count)
        std::uint64_t hits = 0;     // I/Os acted on
    };
    // One per shard, touched only by its shard.
    struct alignas(cache_line) shard_slot {
        std::shared_ptr<const rule_set> rules;
        std::vector<rule_counters> counters;  // parallel to rules->rules
    };

    future<std::uint64_t> add_on_owner(fault_rule rule);
    future<> remove_on_owner(std::uint64_t id);
    future<> clear_on_owner();
    future<std::uint64_t> hits_on_owner(std::uint64_t id);
    // Owner: make `rules` the current list and install it on every shard.
    future<> publish(std::vector<installed_rule> rules);
    void install(unsigned shard, std::shared_ptr<const rule_set> snap);
    std::uint64_t local_hits(unsigned shard, std::uint64_t id) const noexcept;
    // The rule that acts on `rq` on `shard`, counting it; nullptr if none.
    const fault_rule* select(unsigned shard, const io_request& rq) noexcept;
    // The channel's entry point, on `shard`.
    future<io_status> submit(unsigned shard, const io_request& rq);
    void check(const fault_rule& r) const;

    static future<io_status> forward(io_channel& inner, const io_request& rq);
    static future<io_status> delayed(fault_device* dev, io_request rq, steady_clock::duration d);
    static future<io_status> corrupt_read(io_channel* inner, io_request rq, std::uint32_t block_size,
                                          std::uint64_t begin, std::uint64_t end);
    static future<io_status> corrupt_write(io_channel* inner, io_request rq, std::uint32_t block_size,
                                           std::uint64_t begin, std::uint64_t end);

    block_device* _inner;
    std::vector<shard_slot> _slots;
    // Owner shard only.
    std::vector<installed_rule> _rules;
    std::uint64_t _next_id = 1;
    std::uint64_t _next_version = 1;
};

// A wrapper named "<inner name>.fault" around `inner`, on the calling shard.
std::unique_ptr<fault_device> wrap_with_faults(block_device& inner);

// XORs 0xff into the first byte of every block of [lba, lba + blocks) that
// lies in [begin, end), inside the buffers `iov` (used by corrupt; exposed for
// tests). Applying it twice restores the data.
void flip_block_heads(io_vecs iov, std::uint32_t block_size, std::uint64_t lba, std::uint64_t blocks,
                      std::uint64_t begin, std::uint64_t end) noexcept;

}  // namespace ioe
