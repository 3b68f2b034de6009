// The fault-injection wrapper device: rule snapshots per shard, the channel
// that applies them, and the actions (see fault_device.hh for the semantics).
#include "storage/fault_device.hh"

#include <algorithm>

#include "runtime/smp.hh"
#include "storage/errors.hh"

namespace ioe {

std::string_view to_string(fault_action a) noexcept {
    switch (a) {
        case fault_action::fail: return "fail";
        case fault_action::delay: return "delay";
        case fault_action::corrupt: return "corrupt";
        case fault_action::drop: return "drop";
    }
    return "unknown";
}

void flip_block_heads(io_vecs iov, std::uint32_t block_size, std::uint64_t lba, std::uint64_t blocks,
                      std::uint64_t begin, std::uint64_t end) noexcept {
    const std::uint64_t first = std::max(lba, begin);
    const std::uint64_t last = std::min(lba + blocks, end);  // exclusive
    std::size_t vi = 0;
    std::uint64_t vec_start = 0;  // byte offset of iov[vi] within the I/O
    for (std::uint64_t b = first; b < last; ++b) {
        const std::uint64_t off = (b - lba) * block_size;
        while (vi < iov.size() && off >= vec_start + iov[vi].len) {
            vec_start += iov[vi].len;
            ++vi;
        }
        if (vi == iov.size()) return;  // buffers shorter than the I/O: io_channel refuses those
        iov[vi].data[off - vec_start] ^= std::byte{0xff};
    }
}

// ---- the channel ------------------------------------------------------------

class fault_channel final : public device_channel {
public:
    fault_channel(fault_device& dev, unsigned shard) noexcept : _dev(dev), _shard(shard) {}

    future<io_status> read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        return _dev.submit(_shard, {fault_device::op_kind::read, lba, blocks, iov});
    }
    future<io_status> write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        return _dev.submit(_shard, {fault_device::op_kind::write, lba, blocks, iov});
    }
    future<io_status> flush() override { return _dev.submit(_shard, {fault_device::op_kind::flush, 0, 0, {}}); }
    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) override {
        return _dev.submit(_shard, {fault_device::op_kind::write_zeroes, lba, blocks, {}});
    }
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) override {
        return _dev.submit(_shard, {fault_device::op_kind::unmap, lba, blocks, {}});
    }
    // Reservations go to the inner device unchanged (no rule applies to them).
    future<io_status> reservation_register(const reservation_register_request& r) override {
        io_channel* ch = _dev.inner()->channel();
        return ch ? ch->reservation_register(r) : make_ready_future<io_status>(io_status::namespace_not_ready);
    }
    future<io_status> reservation_acquire(const reservation_acquire_request& r) override {
        io_channel* ch = _dev.inner()->channel();
        return ch ? ch->reservation_acquire(r) : make_ready_future<io_status>(io_status::namespace_not_ready);
    }
    future<io_status> read_reservation(reservation_report& out) override {
        io_channel* ch = _dev.inner()->channel();
        return ch ? ch->read_reservation(out) : make_ready_future<io_status>(io_status::namespace_not_ready);
    }
    future<io_status> snapshot(const device_snapshot_request& r, device_snapshot_reply& out) override {
        io_channel* ch = _dev.inner()->channel();
        return ch ? ch->snapshot(r, out) : make_ready_future<io_status>(io_status::namespace_not_ready);
    }

private:
    fault_device& _dev;
    unsigned _shard;
};

// ---- the device -------------------------------------------------------------

fault_device::fault_device(std::string name, block_device* inner)
    : block_device(std::move(name), "fault", inner->id(), inner->block_size(), inner->block_count()),
      _inner(inner),
      _slots(std::max(1u, shard_count())) {}

fault_device::~fault_device() = default;

std::unique_ptr<device_channel> fault_device::open_channel() {
    return std::make_unique<fault_channel>(*this, this_shard_id());
}

namespace {

op_mask mask_of(std::uint8_t kind) noexcept { return static_cast<op_mask>(1u << kind); }

bool has_window(const fault_rule& r) noexcept {
    return r.not_before != steady_clock::time_point::min() || r.not_after != steady_clock::time_point::max();
}

}  // namespace

const fault_rule* fault_device::select(unsigned shard, const io_request& rq) noexcept {
    shard_slot& slot = _slots[shard];
    const rule_set* set = slot.rules.get();
    if (!set) return nullptr;
    const op_mask op = mask_of(static_cast<std::uint8_t>(rq.op));
    const bool carries_data = rq.op == op_kind::read || rq.op == op_kind::write;
    steady_clock::time_point now{};
    bool have_now = false;
    for (std::size_t i = 0; i < set->rules.size(); ++i) {
        const fault_rule& r = set->rules[i].rule;
        if (!has(r.ops, op)) continue;
        // io_channel has checked lba + blocks against the device size.
        if (rq.op != op_kind::flush && !(rq.lba < r.lba_end && r.lba_begin < rq.lba + rq.blocks)) continue;
        if (r.action == fault_action::corrupt && !carries_data) continue;
        if (has_window(r)) {
            if (!have_now) {
                now = steady_clock::now();
                have_now = true;
            }
            if (now < r.not_before || now > r.not_after) continue;
        }
        rule_counters& c = slot.counters[i];
        if (c.matched != UINT64_MAX) ++c.matched;
        if (c.matched <= r.skip || c.matched - r.skip > r.count) continue;
        ++c.hits;
        return &r;
    }
    return nullptr;
}

future<io_status> fault_device::submit(unsigned shard, const io_request& rq) {
    io_channel* inner = _inner->channel();
    if (!inner) return make_ready_future<io_status>(io_status::namespace_not_ready);
    const fault_rule* r = select(shard, rq);
    if (!r) return forward(*inner, rq);  // the pass-through path: the inner's future as is
    switch (r->action) {
        case fault_action::fail:
            return make_ready_future<io_status>(r->status);
        case fault_action::drop:
            return make_ready_future<io_status>(io_status::success);
        case fault_action::delay:
            return delayed(this, rq, r->delay);
        case fault_action::corrupt:
            if (rq.op == op_kind::read) return corrupt_read(inner, rq, block_size(), r->lba_begin, r->lba_end);
            return corrupt_write(inner, rq, block_size(), r->lba_begin, r->lba_end);
    }
    return forward(*inner, rq);
}

future<io_status> fault_device::forward(io_channel& inner, const io_request& rq) {
    switch (rq.op) {
        case op_kind::read: return inner.read(rq.lba, static_cast<std::uint32_t>(rq.blocks), rq.iov);
        case op_kind::write: return inner.write(rq.lba, static_cast<std::uint32_t>(rq.blocks), rq.iov);
        case op_kind::flush: return inner.flush();
        case op_kind::write_zeroes: return inner.write_zeroes(rq.lba, rq.blocks);
        case op_kind::unmap: return inner.unmap(rq.lba, rq.blocks);
    }
    return make_ready_future<io_status>(io_status::invalid_opcode);
}

future<io_status> fault_device::delayed(fault_device* dev, io_request rq, steady_clock::duration d) {
    co_await sleep(d);
    // Looked up again: the inner may have started closing while we slept.
    io_channel* inner = dev->_inner->channel();
    if (!inner) co_return io_status::namespace_not_ready;
    co_return co_await forward(*inner, rq);
}

future<io_status> fault_device::corrupt_read(io_channel* inner, io_request rq, std::uint32_t block_size,
                                             std::uint64_t begin, std::uint64_t end) {
    io_status st = co_await forward(*inner, rq);
    if (ok(st)) flip_block_heads(rq.iov, block_size, rq.lba, rq.blocks, begin, end);
    co_return st;
}

future<io_status> fault_device::corrupt_write(io_channel* inner, io_request rq, std::uint32_t block_size,
                                              std::uint64_t begin, std::uint64_t end) {
    flip_block_heads(rq.iov, block_size, rq.lba, rq.blocks, begin, end);
    auto f = forward(*inner, rq);
    co_await f.wait_ready();
    flip_block_heads(rq.iov, block_size, rq.lba, rq.blocks, begin, end);  // the caller's data back
    co_return f.get();
}

// ---- rules: owner side ------------------------------------------------------

void fault_device::check(const fault_rule& r) const {
    auto bad = [this](const std::string& what) {
        return storage_error(storage_errc::invalid_argument, "fault device \"" + name() + "\": rule: " + what);
    };
    if (r.ops == op_mask::none || (r.ops & op_mask::all) != r.ops) {
        throw bad("no valid operation in the op mask");
    }
    if (r.lba_begin >= r.lba_end) {
        throw bad("empty LBA range [" + std::to_string(r.lba_begin) + ", " + std::to_string(r.lba_end) + ")");
    }
    if (r.not_before > r.not_after) throw bad("empty time window (not_before is after not_after)");
    if (r.action == fault_action::corrupt && !has(r.ops, op_mask::read | op_mask::write)) {
        throw bad("corrupt applies to reads and writes only, and the op mask has neither");
    }
    if (r.action == fault_action::delay && r.delay.count() < 0) throw bad("negative delay");
}

future<std::uint64_t> fault_device::add_rule(fault_rule rule) {
    return submit_to(owner_shard(), [this, rule] { return add_on_owner(rule); });
}

future<> fault_device::remove_rule(std::uint64_t id) {
    return submit_to(owner_shard(), [this, id] { return remove_on_owner(id); });
}

future<> fault_device::clear_rules() {
    return submit_to(owner_shard(), [this] { return clear_on_owner(); });
}

future<std::uint64_t> fault_device::hits(std::uint64_t id) {
    return submit_to(owner_shard(), [this, id] { return hits_on_owner(id); });
}

future<std::uint64_t> fault_device::add_on_owner(fault_rule rule) {
    check(rule);
    const std::uint64_t id = _next_id++;
    auto rules = _rules;
    rules.push_back(installed_rule{id, rule});
    co_await publish(std::move(rules));
    co_return id;
}

future<> fault_device::remove_on_owner(std::uint64_t id) {
    auto rules = _rules;
    auto it = std::find_if(rules.begin(), rules.end(), [id](const installed_rule& r) { return r.id == id; });
    if (it == rules.end()) {
        throw storage_error(storage_errc::not_found,
                            "fault device \"" + name() + "\": no rule " + std::to_string(id));
    }
    rules.erase(it);
    co_await publish(std::move(rules));
}

future<> fault_device::clear_on_owner() { return publish({}); }

future<std::uint64_t> fault_device::hits_on_owner(std::uint64_t id) {
    if (std::none_of(_rules.begin(), _rules.end(), [id](const installed_rule& r) { return r.id == id; })) {
        throw storage_error(storage_errc::not_found,
                            "fault device \"" + name() + "\": no rule " + std::to_string(id));
    }
    std::uint64_t sum = 0;
    for (unsigned s = 0; s < _slots.size(); ++s) {
        sum += co_await submit_to(s, [this, s, id] { return local_hits(s, id); });
    }
    co_return sum;
}

future<> fault_device::publish(std::vector<installed_rule> rules) {
    // The owner's list changes now, before any suspension, so that owner-side
    // operations racing with this one build on it. Shards may receive
    // snapshots of two racing publishes out of order; the version sorts that.
    auto snap = std::make_shared<rule_set>();
    snap->version = _next_version++;
    snap->rules = rules;
    _rules = std::move(rules);
    std::shared_ptr<const rule_set> frozen = std::move(snap);
    for (unsigned s = 0; s < _slots.size(); ++s) {
        // Not `co_await submit_to(s, [..., frozen] ...)`: GCC 12 destroys a
        // non-trivial temporary of a co_await expression twice (one
        // shared_ptr release too many). Keep such temporaries out of co_await.
        auto installed = submit_to(s, [this, s, frozen] { install(s, frozen); });
        co_await std::move(installed);
    }
}

void fault_device::install(unsigned shard, std::shared_ptr<const rule_set> snap) {
    shard_slot& slot = _slots[shard];
    if (slot.rules && slot.rules->version >= snap->version) return;  // a newer one is already here
    std::vector<rule_counters> counters(snap->rules.size());
    if (slot.rules) {
        const auto& old = slot.rules->rules;
        for (std::size_t i = 0; i < snap->rules.size(); ++i) {
            for (std::size_t j = 0; j < old.size(); ++j) {
                if (old[j].id == snap->rules[i].id) {
                    counters[i] = slot.counters[j];
                    break;
                }
            }
        }
    }
    slot.counters = std::move(counters);
    slot.rules = std::move(snap);
}

std::uint64_t fault_device::local_hits(unsigned shard, std::uint64_t id) const noexcept {
    const shard_slot& slot = _slots[shard];
    if (!slot.rules) return 0;
    const auto& rules = slot.rules->rules;
    for (std::size_t i = 0; i < rules.size(); ++i) {
        if (rules[i].id == id) return slot.counters[i].hits;
    }
    return 0;
}

std::unique_ptr<fault_device> wrap_with_faults(block_device& inner) {
    return std::make_unique<fault_device>(inner.name() + ".fault", &inner);
}

}  // namespace ioe
