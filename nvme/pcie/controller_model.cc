// The in-process NVMe controller model (see controller_model.hh).
#include "nvme/pcie/controller_model.hh"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <utility>

#include "nvme/spec/nvme_fabrics.hh"
#include "nvme/spec/nvme_identify.hh"

namespace ioe::nvme {
namespace {

constexpr std::uint32_t page = 4096;
constexpr std::uint8_t prp_offset_invalid = 0x13;  // generic status: PRP entry with an offset
constexpr std::uint16_t ok_status = 0;

std::uint16_t st(std::uint8_t type, std::uint8_t code) { return make_status(type, code); }

void pad(char* dst, std::size_t n, const char* src) {
    std::memset(dst, ' ', n);
    std::memcpy(dst, src, std::min(n, std::strlen(src)));
}

}  // namespace

controller_model::controller_model(model_config cfg, const void* dma_base, std::size_t dma_size)
    : _cfg(cfg),
      _dma_base(reinterpret_cast<std::uintptr_t>(dma_base)),
      _dma_size(dma_size),
      _media(cfg.block_size * cfg.block_count),
      _sq(cfg.max_io_queues + 1u),
      _cq(cfg.max_io_queues + 1u) {}

controller_model::~controller_model() = default;

void* controller_model::to_host(std::uint64_t bus, std::size_t len) const noexcept {
    if (bus < iova_base) return nullptr;
    const std::uint64_t off = bus - iova_base;
    if (off > _dma_size || len > _dma_size - off) return nullptr;
    return reinterpret_cast<void*>(_dma_base + off);
}

std::uint32_t controller_model::read32(std::uint32_t offset) {
    std::lock_guard g(_lock);
    if (_removed) return 0xffffffffu;
    const std::uint64_t cap_v = cap::make(_cfg.mqes, true, _cfg.timeout_500ms, cap::css_nvm, 0, 0);
    switch (offset) {
        case reg::cap: return static_cast<std::uint32_t>(cap_v);
        case reg::cap + 4: return static_cast<std::uint32_t>(cap_v >> 32);
        case reg::vs: return 0x00010400;  // 1.4
        case reg::cc: return _cc;
        case reg::csts: return _csts;
        case reg::aqa: return _aqa;
        case reg::asq: return static_cast<std::uint32_t>(_asq);
        case reg::asq + 4: return static_cast<std::uint32_t>(_asq >> 32);
        case reg::acq: return static_cast<std::uint32_t>(_acq);
        case reg::acq + 4: return static_cast<std::uint32_t>(_acq >> 32);
        default: return 0;
    }
}

void controller_model::write32(std::uint32_t offset, std::uint32_t value) {
    std::lock_guard g(_lock);
    if (_removed) return;
    if (offset >= reg::doorbell_base) {
        const auto t0 = std::chrono::steady_clock::now();
        doorbell(offset, value);
        _stats.busy_ns += static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
        return;
    }
    switch (offset) {
        case reg::cc: set_cc(value); return;
        case reg::aqa: _aqa = value; return;
        case reg::asq: _asq = (_asq & ~0xffffffffull) | value; return;
        case reg::asq + 4: _asq = (_asq & 0xffffffffull) | (std::uint64_t{value} << 32); return;
        case reg::acq: _acq = (_acq & ~0xffffffffull) | value; return;
        case reg::acq + 4: _acq = (_acq & 0xffffffffull) | (std::uint64_t{value} << 32); return;
        default: break;
    }
}

void controller_model::doorbell(std::uint32_t offset, std::uint32_t value) {
    const std::uint32_t idx = (offset - reg::doorbell_base) / 4;
    const auto qid = static_cast<std::uint16_t>(idx / 2);
    if (!cc::enabled(_cc)) {
        ++_stats.doorbells_while_disabled;
        return;
    }
    if (qid >= _sq.size() || !csts::ready(_csts) || (_csts & csts::cfs)) return;
    if (idx % 2 == 0) {
        ++_stats.sq_doorbells;
        queue& q = _sq[qid];
        if (!q.live || value >= q.size) {
            _csts |= csts::cfs;  // a doorbell for a queue that does not exist: fatal, as on hardware
            return;
        }
        q.tail = value;
        process_sq(qid);
    } else {
        ++_stats.cq_doorbells;
        queue& q = _cq[qid];
        if (!q.live || value >= q.size) {
            _csts |= csts::cfs;
            return;
        }
        q.head = value;
        drain_backlog();
    }
}

void controller_model::set_cc(std::uint32_t v) {
    const bool was = cc::enabled(_cc);
    _cc = v;
    if (was && !cc::enabled(v)) {
        ++_stats.resets;
        reset_queues();
        _csts = 0;
        _granted = 0;
        return;
    }
    if (!was && cc::enabled(v)) {
        ++_stats.enables;
        reset_queues();
        const std::uint32_t asqs = (_aqa & 0xfff) + 1, acqs = ((_aqa >> 16) & 0xfff) + 1;
        if (asqs < 2 || acqs < 2 || (_asq & (page - 1)) || (_acq & (page - 1)) || !to_host(_asq, asqs * sqe_bytes) ||
            !to_host(_acq, acqs * cqe_bytes) || cc::mps(v) != 0 || cc::iosqes(v) != 6 || cc::iocqes(v) != 4) {
            _csts = csts::cfs;  // a bad admin queue or CC: the controller cannot start
            return;
        }
        _sq[0] = queue{true, _asq, asqs, 0, 0, true, 0};
        _cq[0] = queue{true, _acq, acqs, 0, 0, true, 0};
        if (!_never_ready) _csts = csts::rdy;
        return;
    }
    if (cc::enabled(v) && cc::shn(v) != cc::shn_none && csts::shst(_csts) != csts::shst_complete) {
        ++_stats.shutdowns;
        _csts = csts::with_shst(_csts, csts::shst_complete);
    }
}

void controller_model::reset_queues() {
    for (auto& q : _sq) q = queue{};
    for (auto& q : _cq) q = queue{};
    _backlog.clear();
    _stalled.clear();
}

void controller_model::process_sq(std::uint16_t sqid) {
    queue& q = _sq[sqid];
    while (q.live && q.head != q.tail && !(_csts & csts::cfs)) {
        auto* p = static_cast<const sqe*>(to_host(q.base + std::uint64_t{q.head} * sqe_bytes, sqe_bytes));
        if (!p) {
            _csts |= csts::cfs;
            return;
        }
        sqe cmd;
        std::memcpy(&cmd, p, sizeof cmd);
        q.head = (q.head + 1) % q.size;
        if (sqid == 0) {
            ++_stats.admin_commands;
            std::uint32_t dw0 = 0;
            const std::uint16_t s = admin(cmd, dw0);
            if (cmd.opcode == admin_opcode::delete_io_sq && s == ok_status) {
                // (the SQ's own completions were posted already)
            }
            complete(0, cmd, s, dw0);
            continue;
        }
        ++_stats.io_commands;
        if (_fail_count > 0 && cmd.opcode == _fail_opcode) {
            --_fail_count;
            complete(sqid, cmd, _fail_status);
            continue;
        }
        if (_stall_io) {
            _stalled.push_back(held{sqid, cmd});
            continue;
        }
        complete(sqid, cmd, io(cmd));
    }
}

void controller_model::complete(std::uint16_t sqid, const sqe& cmd, std::uint16_t status, std::uint32_t dw0) {
    const queue& sq = _sq[sqid];
    cqe c{};
    c.dw0 = dw0;
    c.sqhd = static_cast<std::uint16_t>(sq.head);
    c.sqid = sqid;
    c.cid = cmd.cid;
    c.status = status;
    post(sqid == 0 ? 0 : sq.cqid, c);
}

void controller_model::post(std::uint16_t cqid, cqe c) {
    queue& q = _cq[cqid];
    if (!q.live) return;
    if ((q.tail + 1) % q.size == q.head || !_backlog.empty()) {
        _backlog.push_back(pending{cqid, c});  // full: wait for the host's CQ head doorbell
        return;
    }
    auto* slot = static_cast<cqe*>(to_host(q.base + std::uint64_t{q.tail} * cqe_bytes, cqe_bytes));
    if (!slot) {
        _csts |= csts::cfs;
        return;
    }
    c.status = static_cast<std::uint16_t>((c.status & ~status_bits::phase) | (q.phase ? status_bits::phase : 0));
    std::memcpy(slot, &c, offsetof(cqe, status));
    // The status (with the phase tag) last, released: the host polls it.
    __atomic_store_n(&slot->status, c.status, __ATOMIC_RELEASE);
    q.tail = (q.tail + 1) % q.size;
    if (q.tail == 0) q.phase = !q.phase;
}

void controller_model::drain_backlog() {
    if (_backlog.empty()) return;  // (an empty std::deque allocates: not on every doorbell)
    std::deque<pending> waiting;
    waiting.swap(_backlog);
    for (auto& p : waiting) post(p.cqid, p.c);
}

template <typename F>
std::uint16_t controller_model::walk_prps(const sqe& cmd, std::size_t len, F&& fn) {
    const std::uint64_t prp1 = cmd.dptr.prp.prp1, prp2 = cmd.dptr.prp.prp2;
    if (len == 0) return ok_status;
    if (prp1 & 3) return st(sct::generic, prp_offset_invalid);
    const std::size_t first = std::min<std::size_t>(len, page - (prp1 & (page - 1)));
    void* h = to_host(prp1, first);
    if (!h) return st(sct::generic, sc::data_transfer_error);
    fn(h, first);
    len -= first;
    std::uint64_t entries = 1;
    if (len == 0) {
    } else if (len <= page) {
        if (prp2 & (page - 1)) return st(sct::generic, prp_offset_invalid);
        if (!(h = to_host(prp2, len))) return st(sct::generic, sc::data_transfer_error);
        fn(h, len);
        entries = 2;
    } else {
        ++_stats.list_prps;
        if (prp2 & 7) return st(sct::generic, prp_offset_invalid);
        std::uint64_t list = prp2;
        while (len > 0) {
            // Entries left in this list page; the last one chains to the next
            // list page when more than one page of data remains.
            const std::uint64_t in_page = (page - (list & (page - 1))) / 8;
            auto* e = static_cast<const std::uint64_t*>(to_host(list, in_page * 8));
            if (!e) return st(sct::generic, sc::data_transfer_error);
            for (std::uint64_t i = 0; i < in_page && len > 0; ++i) {
                if (i == in_page - 1 && len > page) {
                    list = e[i];
                    if (list & 7) return st(sct::generic, prp_offset_invalid);
                    break;
                }
                if (e[i] & (page - 1)) return st(sct::generic, prp_offset_invalid);
                const std::size_t n = std::min<std::size_t>(len, page);
                if (!(h = to_host(e[i], n))) return st(sct::generic, sc::data_transfer_error);
                fn(h, n);
                len -= n;
                ++entries;
            }
        }
    }
    _stats.max_prp_entries = std::max(_stats.max_prp_entries, entries);
    return ok_status;
}

template <typename F>
std::uint16_t controller_model::walk_sgl(const sqe& cmd, std::size_t len, F&& fn) {
    constexpr unsigned max_segments = 1024;  // a list that loops back on itself ends here
    const bool dword = (_cfg.sgls & 3) == 2;
    const std::uint16_t type_invalid = st(sct::generic, sc::sgl_descriptor_type_invalid);
    const std::uint16_t bad_segment = st(sct::generic, sc::invalid_sgl_segment_descriptor);
    const std::uint16_t bad_length = st(sct::generic, sc::data_sgl_length_invalid);
    ++_stats.sgl_commands;
    // Two passes: check the whole list first (a bad SGL moves no data), then move the data.
    std::uint64_t blocks = 0;
    for (const bool apply : {false, true}) {
        const sgl_descriptor* seg = &cmd.dptr.sgl;  // the current segment: first the SQE's one descriptor
        std::size_t count = 1, left = len;
        bool in_list = false;  // seg is a segment fetched from host memory
        bool last = false;     // ... a last one (no segment descriptors in it)
        unsigned segments = 0;
        blocks = 0;
        for (bool chained = true; chained;) {
            chained = false;
            for (std::size_t i = 0; i < count; ++i) {
                sgl_descriptor d;
                std::memcpy(&d, seg + i, sizeof d);
                const std::uint8_t type = sgl_identifier_type(d.identifier);
                if (type == _rejected_sgl_type || sgl_identifier_subtype(d.identifier) != sgl_subtype::address) {
                    return type_invalid;
                }
                if (type == sgl_type::data_block) {
                    // A (non-last) Segment ends with the descriptor of the next one.
                    if (in_list && !last && i == count - 1) return bad_segment;
                    if (dword && (d.address & 3)) return st(sct::generic, sc::invalid_field);
                    if ((dword && (d.length & 3)) || d.length > left) return bad_length;
                    if (d.length == 0) continue;
                    void* h = to_host(d.address, d.length);
                    if (!h) return st(sct::generic, sc::data_transfer_error);
                    if (apply) fn(h, std::size_t{d.length});
                    left -= d.length;
                    ++blocks;
                } else if (type == sgl_type::segment || type == sgl_type::last_segment) {
                    if (last || i != count - 1 || d.length == 0 || d.length % sizeof(sgl_descriptor) ||
                        (d.address & 7) || ++segments > max_segments) {
                        return bad_segment;
                    }
                    seg = static_cast<const sgl_descriptor*>(to_host(d.address, d.length));
                    if (!seg) return st(sct::generic, sc::data_transfer_error);
                    if (apply) ++_stats.sgl_segments;
                    count = d.length / sizeof(sgl_descriptor);
                    in_list = true;
                    last = type == sgl_type::last_segment;
                    chained = true;
                    break;  // on with the new segment's first descriptor
                } else {
                    return type_invalid;  // Bit Bucket (not advertised), keyed, transport, reserved, vendor
                }
            }
        }
        if (left != 0) return bad_length;  // the data blocks do not cover the transfer
    }
    _stats.max_sgl_descriptors = std::max(_stats.max_sgl_descriptors, blocks);
    return ok_status;
}

template <typename F>
std::uint16_t controller_model::walk_data(const sqe& cmd, std::size_t len, F&& fn) {
    if (cmd.psdt() == psdt::prp) {
        ++_stats.prp_commands;
        return walk_prps(cmd, len, std::forward<F>(fn));
    }
    // PSDT 01b needs SGL support (SGLS bits 1:0); 10b (MPTR as an SGL) needs
    // SGLS bit 19, which the model does not advertise; 11b is reserved.
    const unsigned support = _cfg.sgls & 3;
    if (support == 0 || support == 3 || cmd.psdt() != psdt::sgl_mptr_contiguous) {
        return st(sct::generic, sc::invalid_field);
    }
    return walk_sgl(cmd, len, std::forward<F>(fn));
}

std::uint16_t controller_model::copy_out(const sqe& cmd, const void* src, std::size_t len) {
    // Admin commands: PRPs only on the PCIe transport.
    if (cmd.psdt() != psdt::prp) return st(sct::generic, sc::invalid_field);
    auto* s = static_cast<const std::byte*>(src);
    return walk_prps(cmd, len, [&](void* h, std::size_t n) {
        std::memcpy(h, s, n);
        s += n;
    });
}

std::uint16_t controller_model::admin(const sqe& cmd, std::uint32_t& dw0) {
    switch (cmd.opcode) {
        case admin_opcode::identify: {
            std::vector<std::byte> buf(identify_bytes);
            const std::uint8_t cns_v = cmd.cdw10 & 0xff;
            if (cns_v == cns::controller) {
                auto* c = reinterpret_cast<identify_controller*>(buf.data());
                c->vid = 0x1b36;
                pad(c->sn, sizeof c->sn, "MODEL0001");
                pad(c->mn, sizeof c->mn, "ioengine NVMe controller model");
                pad(c->fr, sizeof c->fr, "1.0");
                c->mdts = _cfg.mdts;
                c->cntlid = 1;
                c->ver = 0x00010400;
                c->sqes = 0x66;
                c->cqes = 0x44;
                c->nn = 1;
                c->oncs = oncs::dataset_management | oncs::write_zeroes;
                c->vwc = 1;
                c->acl = 3;
                c->sgls = _cfg.sgls;
            } else if (cns_v == cns::namespace_data) {
                if (cmd.nsid != 1) return st(sct::generic, sc::invalid_namespace_or_format);
                auto* n = reinterpret_cast<identify_namespace*>(buf.data());
                n->nsze = n->ncap = n->nuse = _cfg.block_count;
                n->dlfeat = dlfeat_read_zeroes;
                n->lbaf[0].lbads = static_cast<std::uint8_t>(std::countr_zero(_cfg.block_size));
                std::memcpy(n->nguid, "ioengine-model-1", 16);
            } else if (cns_v == cns::active_namespace_list) {
                const std::uint32_t one = 1;
                if (cmd.nsid < 1) std::memcpy(buf.data(), &one, 4);
            } else if (cns_v == cns::namespace_id_descriptors) {
                if (cmd.nsid != 1) return st(sct::generic, sc::invalid_namespace_or_format);
                buf[0] = std::byte{nidt::uuid};
                buf[1] = std::byte{16};
                for (int i = 0; i < 16; ++i) buf[4 + i] = std::byte(0xa0 + i);
            } else {
                return st(sct::generic, sc::invalid_field);
            }
            return copy_out(cmd, buf.data(), buf.size());
        }
        case admin_opcode::set_features: {
            if ((cmd.cdw10 & 0xff) != feature::number_of_queues) return st(sct::generic, sc::invalid_field);
            const std::uint32_t nsq = (cmd.cdw11 & 0xffff) + 1, ncq = (cmd.cdw11 >> 16) + 1;
            if (nsq == 0x10000 || ncq == 0x10000) return st(sct::generic, sc::invalid_field);
            _granted = static_cast<std::uint16_t>(std::min<std::uint32_t>({nsq, ncq, _cfg.max_io_queues}));
            dw0 = std::uint32_t(_granted - 1) | (std::uint32_t(_granted - 1) << 16);
            return ok_status;
        }
        case admin_opcode::create_io_cq:
        case admin_opcode::create_io_sq: {
            const bool is_cq = cmd.opcode == admin_opcode::create_io_cq;
            const auto qid = static_cast<std::uint16_t>(cmd.cdw10 & 0xffff);
            const std::uint32_t size = (cmd.cdw10 >> 16) + 1;
            if (qid == 0 || qid > _granted || (is_cq ? _cq[qid].live : _sq[qid].live)) {
                return st(sct::command_specific, sc_specific::invalid_queue_identifier);
            }
            if (size < 2 || size > _cfg.mqes + 1u) return st(sct::command_specific, sc_specific::invalid_queue_size);
            if (!(cmd.cdw11 & 1)) return st(sct::generic, sc::invalid_field);  // only physically contiguous
            const std::uint64_t base = cmd.dptr.prp.prp1;
            if ((base & (page - 1)) || !to_host(base, size * (is_cq ? cqe_bytes : sqe_bytes))) {
                return st(sct::generic, sc::invalid_field);
            }
            if (is_cq) {
                if (cmd.cdw11 & 2) return st(sct::generic, sc::invalid_field);  // interrupts: not here
                _cq[qid] = queue{true, base, size, 0, 0, true, 0};
            } else {
                const auto cqid = static_cast<std::uint16_t>(cmd.cdw11 >> 16);
                if (cqid == 0 || cqid >= _cq.size() || !_cq[cqid].live) {
                    return st(sct::command_specific, sc_specific::completion_queue_invalid);
                }
                _sq[qid] = queue{true, base, size, 0, 0, true, cqid};
                ++_stats.io_queues_created;
            }
            return ok_status;
        }
        case admin_opcode::delete_io_sq:
        case admin_opcode::delete_io_cq: {
            const auto qid = static_cast<std::uint16_t>(cmd.cdw10 & 0xffff);
            auto& qs = cmd.opcode == admin_opcode::delete_io_sq ? _sq : _cq;
            if (qid == 0 || qid >= qs.size() || !qs[qid].live) {
                return st(sct::command_specific, sc_specific::invalid_queue_identifier);
            }
            qs[qid] = queue{};
            return ok_status;
        }
        case admin_opcode::abort: {
            ++_stats.aborts;
            const auto sqid = static_cast<std::uint16_t>(cmd.cdw10 & 0xffff);
            const auto cid = static_cast<std::uint16_t>(cmd.cdw10 >> 16);
            dw0 = 1;  // not aborted
            if (_ignore_aborts) return ok_status;
            for (auto it = _stalled.begin(); it != _stalled.end(); ++it) {
                if (it->sqid == sqid && it->cmd.cid == cid) {
                    const held h = *it;
                    _stalled.erase(it);
                    ++_stats.aborted;
                    complete(h.sqid, h.cmd, st(sct::generic, sc::abort_requested));
                    dw0 = 0;
                    break;
                }
            }
            return ok_status;
        }
        default: return st(sct::generic, sc::invalid_opcode);
    }
}

std::uint16_t controller_model::io(const sqe& cmd) {
    if (cmd.nsid != 1) return st(sct::generic, sc::invalid_namespace_or_format);
    const std::uint64_t bs = _cfg.block_size;
    auto in_range = [&](std::uint64_t lba, std::uint64_t n) { return lba < _cfg.block_count && n <= _cfg.block_count - lba; };
    switch (cmd.opcode) {
        case nvm_opcode::read:
        case nvm_opcode::write: {
            const bool is_read = cmd.opcode == nvm_opcode::read;
            ++(is_read ? _stats.reads : _stats.writes);
            const std::uint64_t lba = rw_slba(cmd), n = rw_block_count(cmd);
            if (!in_range(lba, n)) return st(sct::generic, sc::lba_out_of_range);
            if (_cfg.mdts && n * bs > (std::uint64_t{page} << _cfg.mdts)) return st(sct::generic, sc::invalid_field);
            std::byte* m = _media.data() + lba * bs;
            return walk_data(cmd, n * bs, [&](void* h, std::size_t len) {
                if (is_read) {
                    std::memcpy(h, m, len);
                } else {
                    std::memcpy(m, h, len);
                }
                m += len;
            });
        }
        case nvm_opcode::flush: ++_stats.flushes; return ok_status;
        case nvm_opcode::write_zeroes: {
            ++_stats.write_zeroes;
            const std::uint64_t lba = rw_slba(cmd), n = rw_block_count(cmd);
            if (!in_range(lba, n)) return st(sct::generic, sc::lba_out_of_range);
            std::memset(_media.data() + lba * bs, 0, n * bs);
            return ok_status;
        }
        case nvm_opcode::dataset_management: {
            ++_stats.dsm;
            const std::uint32_t nr = (cmd.cdw10 & 0xff) + 1;
            std::vector<dsm_range> ranges(nr);
            auto* d = reinterpret_cast<std::byte*>(ranges.data());
            const std::uint16_t s = walk_data(cmd, nr * sizeof(dsm_range), [&](void* h, std::size_t len) {
                std::memcpy(d, h, len);
                d += len;
            });
            if (s != ok_status) return s;
            if (!(cmd.cdw11 & dsm_attribute_deallocate)) return ok_status;
            for (const auto& r : ranges) {
                if (!in_range(r.starting_lba, r.length)) return st(sct::generic, sc::lba_out_of_range);
            }
            for (const auto& r : ranges) std::memset(_media.data() + r.starting_lba * bs, 0, r.length * bs);
            return ok_status;
        }
        default: return st(sct::generic, sc::invalid_opcode);
    }
}

void controller_model::fail_next(std::uint8_t io_opcode, std::uint8_t type, std::uint8_t code, unsigned count) {
    std::lock_guard g(_lock);
    _fail_opcode = io_opcode;
    _fail_status = st(type, code);
    _fail_count = count;
}

void controller_model::stall_io(bool on) {
    std::lock_guard g(_lock);
    _stall_io = on;
}

void controller_model::release_stalled() {
    std::lock_guard g(_lock);
    std::vector<held> h;
    h.swap(_stalled);
    for (const auto& c : h) {
        if (_sq[c.sqid].live) complete(c.sqid, c.cmd, io(c.cmd));
    }
}

void controller_model::ignore_aborts(bool on) {
    std::lock_guard g(_lock);
    _ignore_aborts = on;
}

void controller_model::set_fatal() {
    std::lock_guard g(_lock);
    _csts |= csts::cfs;
}

void controller_model::remove() {
    std::lock_guard g(_lock);
    _removed = true;
}

void controller_model::reject_sgl_type(std::uint8_t type) {
    std::lock_guard g(_lock);
    _rejected_sgl_type = type;
}

void controller_model::never_ready(bool on) {
    std::lock_guard g(_lock);
    _never_ready = on;
}

model_stats controller_model::stats() const {
    std::lock_guard g(_lock);
    return _stats;
}

unsigned controller_model::stalled() const {
    std::lock_guard g(_lock);
    return static_cast<unsigned>(_stalled.size());
}

unsigned controller_model::live_io_queues() const {
    std::lock_guard g(_lock);
    unsigned n = 0;
    for (std::size_t i = 1; i < _sq.size(); ++i) n += _sq[i].live;
    return n;
}

model_bus::model_bus(controller_model& m, const void* dma_base, std::size_t dma_size) : _model(m) {
    std::vector<std::uint64_t> chunks((dma_size + chunk_bytes - 1) / chunk_bytes);
    for (std::size_t i = 0; i < chunks.size(); ++i) chunks[i] = controller_model::iova_base + i * chunk_bytes;
    set_dma_window(dma_base, dma_size, std::move(chunks));
}

}  // namespace ioe::nvme
