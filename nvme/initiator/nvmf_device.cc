// nvmf_device: connecting the admin queue and bringing the controller up,
// the keep-alive, and the per-shard channel with its own I/O queue (see
// nvmf_device.hh).
#include "nvme/initiator/nvmf_device.hh"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <vector>

#include "nvme/spec/nvme_fabrics.hh"
#include "nvme/spec/nvme_identify.hh"
#include "nvme/spec/nvme_reservation.hh"
#include "nvme/spec/nvme_vendor.hh"
#include "runtime/log.hh"
#include "runtime/reactor.hh"
#include "runtime/smp.hh"
#include "storage/errors.hh"

namespace ioe::nvme {

namespace {

constexpr std::uint32_t nsid_1 = 1;
constexpr std::uint32_t no_mdts_limit = 1u << 20;  // MDTS 0: we still split at 1 MiB

template <typename T>
sqe to_sqe(const T& cmd) {
    static_assert(sizeof(T) == sizeof(sqe));
    sqe s;
    std::memcpy(&s, &cmd, sizeof s);
    return s;
}

sqe make_cmd(std::uint8_t opcode, std::uint32_t nsid = 0) {
    sqe s{};
    s.opcode = opcode;
    s.nsid = nsid;
    return s;
}

const char* status_name(std::uint8_t type, std::uint8_t code) {
    if (type == sct::generic) {
        switch (code) {
            case sc::invalid_opcode: return "invalid opcode";
            case sc::invalid_field: return "invalid field";
            case sc::data_transfer_error: return "data transfer error";
            case sc::internal_error: return "internal error";
            case sc::abort_requested: return "aborted";
            case sc::invalid_namespace_or_format: return "invalid namespace or format";
            case sc::command_sequence_error: return "command sequence error";
            case sc::data_sgl_length_invalid: return "data SGL length invalid";
            case sc::lba_out_of_range: return "LBA out of range";
            case sc::namespace_not_ready: return "namespace not ready";
            default: return "generic error";
        }
    }
    if (type == sct::command_specific) {
        switch (code) {
            case sc_specific::connect_incompatible_format: return "connect incompatible format";
            case sc_specific::connect_controller_busy: return "connect controller busy";
            case sc_specific::connect_invalid_parameters: return "connect invalid parameters";
            case sc_specific::connect_invalid_host: return "connect invalid host";
            default: return "command specific error";
        }
    }
    if (type == sct::media_error) return "media error";
    return "error";
}

std::string status_text(std::uint16_t status) {
    const auto t = status_code_type(status);
    const auto c = status_code(status);
    return fmt::format("NVMe status SCT {} SC {:#04x} ({})", t, c, status_name(t, c));
}

// Parameters of a connection (copied into every shard's channel).
struct link {
    std::string host;
    std::uint16_t port;
    std::string subnqn;
    std::string hostnqn;
    std::array<std::uint8_t, 16> hostid;
    nvmf_options opts;

    std::string where() const { return fmt::format("nvmf://{}:{}/{}", host, port, subnqn); }
};

storage_error failed(const link& l, const std::string& step, const host_completion& r) {
    switch (r.how) {
        case host_completion::kind::timed_out:
            return storage_error(storage_errc::unavailable, fmt::format("{}: {}: timed out", l.where(), step));
        case host_completion::kind::connection_lost:
            return storage_error(storage_errc::unavailable,
                                 fmt::format("{}: {}: the connection was lost", l.where(), step));
        case host_completion::kind::done: break;
    }
    const auto t = status_code_type(r.cq.status);
    const auto c = status_code(r.cq.status);
    storage_errc errc = storage_errc::io_error;
    std::string detail;
    if (t == sct::command_specific && c == sc_specific::connect_invalid_host) {
        errc = storage_errc::unavailable;
        detail = fmt::format(": host {} is not allowed on subsystem {}", l.hostnqn, l.subnqn);
    } else if (t == sct::command_specific && c == sc_specific::connect_invalid_parameters) {
        const std::uint16_t ipo = r.cq.dw0 & 0xffff;
        const bool in_data = (r.cq.dw0 >> 16) & 1;
        if (in_data && ipo == offsetof(connect_data, subnqn)) {
            errc = storage_errc::not_found;
            detail = fmt::format(": no subsystem {} on {}:{}", l.subnqn, l.host, l.port);
        } else {
            errc = storage_errc::invalid_argument;
            detail = fmt::format(": the target refused the field at byte {} of the {}", ipo,
                                 in_data ? "connect data" : "command");
        }
    }
    return storage_error(errc, fmt::format("{}: {} failed: {}{}", l.where(), step, status_text(r.cq.status), detail));
}

// Opens a queue and runs Fabrics Connect on it; the Connect response's DW0
// (the controller ID) goes to *cntlid.
future<std::unique_ptr<nvmf_qpair>> connect_queue(const link& l, std::uint16_t qid, unsigned depth,
                                                  std::uint16_t cntlid_in, std::uint16_t* cntlid_out) {
    std::unique_ptr<nvmf_qpair> qp;
    try {
        qp = co_await nvmf_qpair::open(l.host, l.port, qid, depth, l.opts.io_timeout,
                                       tcp_digests{l.opts.header_digest, l.opts.data_digest});
    } catch (const std::exception& e) {
        throw storage_error(storage_errc::unavailable, fmt::format("{}: queue {}: {}", l.where(), qid, e.what()));
    }
    connect_command c{};
    c.opcode = admin_opcode::fabrics;
    c.fctype = fctype::connect;
    c.recfmt = 0;
    c.qid = qid;
    c.sqsize = static_cast<std::uint16_t>(depth - 1);
    // I/O queues: no SQ flow control (we never send more than the depth),
    // so a read may complete with its C2HData (SUCCESS) and no CapsuleResp.
    c.cattr = qid != 0 ? cattr_disable_sq_flow_control : 0;
    c.kato = qid == 0 ? static_cast<std::uint32_t>(l.opts.kato.count()) : 0;
    connect_data d{};
    std::memcpy(d.hostid, l.hostid.data(), sizeof d.hostid);
    d.cntlid = cntlid_in;
    std::memcpy(d.subnqn, l.subnqn.data(), std::min(l.subnqn.size(), sizeof d.subnqn - 1));
    std::memcpy(d.hostnqn, l.hostnqn.data(), std::min(l.hostnqn.size(), sizeof d.hostnqn - 1));
    io_vec v{reinterpret_cast<std::byte*>(&d), sizeof d, -1};
    host_completion r = co_await qp->execute(to_sqe(c), data_view{io_vecs(&v, 1), 0, sizeof d}, {}, true);
    if (!r.ok()) {
        co_await qp->close();
        throw failed(l, qid == 0 ? std::string("Connect (admin queue)") : fmt::format("Connect (I/O queue {})", qid),
                     r);
    }
    if (cntlid_out) *cntlid_out = static_cast<std::uint16_t>(r.cq.dw0 & 0xffff);
    co_return qp;
}

future<host_completion> property_get(nvmf_qpair& q, std::uint32_t ofst, bool eight) {
    property_get_command p{};
    p.opcode = admin_opcode::fabrics;
    p.fctype = fctype::property_get;
    p.attrib = eight ? property_size::eight_bytes : property_size::four_bytes;
    p.ofst = ofst;
    return q.execute(to_sqe(p));
}

future<host_completion> property_set(nvmf_qpair& q, std::uint32_t ofst, std::uint32_t value) {
    property_set_command p{};
    p.opcode = admin_opcode::fabrics;
    p.fctype = fctype::property_set;
    p.attrib = property_size::four_bytes;
    p.ofst = ofst;
    p.value = value;
    return q.execute(to_sqe(p));
}

future<host_completion> identify(nvmf_qpair& q, std::uint8_t cns_value, std::uint32_t nsid, std::byte* page) {
    sqe s = make_cmd(admin_opcode::identify, nsid);
    s.cdw10 = cns_value;
    io_vec v{page, identify_bytes, -1};  // in this frame: execute keeps a view of it
    co_return co_await q.execute(s, {}, data_view{io_vecs(&v, 1), 0, identify_bytes});
}

// The controller bring-up after the admin Connect.
struct controller_info {
    std::uint32_t in_capsule = 0;
    std::uint32_t max_transfer = 0;
    std::uint16_t io_queues = 0;
    unsigned io_depth = 0;
    std::uint32_t block_size = 0;
    std::uint64_t block_count = 0;
    uuid id;
};

future<controller_info> bring_up(const link& l, nvmf_qpair& q) {
    controller_info info;
    host_completion r = co_await property_get(q, property::cap, true);
    if (!r.ok()) throw failed(l, "Property Get CAP", r);
    const std::uint64_t cap_v = (std::uint64_t{r.cq.dw1} << 32) | r.cq.dw0;
    info.io_depth = std::min<unsigned>(unsigned{cap::mqes(cap_v)} + 1, nvmf_qpair::max_depth);
    const std::uint32_t page = 4096u << cap::mpsmin(cap_v);

    const std::uint32_t cc_v = cc::en | (6u << 16) | (4u << 20);  // IOSQES 64 B, IOCQES 16 B, CSS NVM, MPS 4 KiB
    r = co_await property_set(q, property::cc, cc_v);
    if (!r.ok()) throw failed(l, "Property Set CC.EN=1", r);
    const auto ready_within = std::clamp<std::chrono::milliseconds>(
        std::chrono::milliseconds(500) * std::max<unsigned>(cap::timeout(cap_v), 1), std::chrono::milliseconds(500),
        std::chrono::milliseconds(30000));
    const auto deadline = steady_clock::now() + ready_within;
    for (;;) {
        r = co_await property_get(q, property::csts, false);
        if (!r.ok()) throw failed(l, "Property Get CSTS", r);
        if (r.cq.dw0 & csts::cfs) {
            throw storage_error(storage_errc::io_error, fmt::format("{}: controller fatal status (CSTS {:#x})",
                                                                    l.where(), r.cq.dw0));
        }
        if (csts::ready(r.cq.dw0)) break;
        if (steady_clock::now() > deadline) {
            throw storage_error(storage_errc::unavailable,
                                fmt::format("{}: CSTS.RDY not set within {} ms of CC.EN=1", l.where(),
                                            ready_within.count()));
        }
        co_await sleep(std::chrono::milliseconds(10));
    }

    std::vector<std::byte> buf(identify_bytes);
    r = co_await identify(q, cns::controller, 0, buf.data());
    if (!r.ok()) throw failed(l, "Identify Controller", r);
    identify_controller idc;
    std::memcpy(&idc, buf.data(), sizeof idc);
    info.max_transfer = idc.mdts ? std::min<std::uint32_t>(page << std::min<unsigned>(idc.mdts, 12), 1u << 24)
                                 : no_mdts_limit;
    info.in_capsule = idc.ioccsz >= 4 ? idc.ioccsz * 16 - 64 : 0;

    const std::uint16_t want = static_cast<std::uint16_t>(std::max(1u, shard_count()));
    sqe f = make_cmd(admin_opcode::set_features);
    f.cdw10 = feature::number_of_queues;
    f.cdw11 = std::uint32_t(want - 1) | (std::uint32_t(want - 1) << 16);
    r = co_await q.execute(f);
    if (!r.ok()) throw failed(l, "Set Features Number of Queues", r);
    info.io_queues = static_cast<std::uint16_t>(std::min(r.cq.dw0 & 0xffff, r.cq.dw0 >> 16) + 1);

    r = co_await identify(q, cns::namespace_data, nsid_1, buf.data());
    if (!r.ok()) throw failed(l, "Identify Namespace 1", r);
    identify_namespace idn;
    std::memcpy(&idn, buf.data(), sizeof idn);
    if (idn.nsze == 0) {
        throw storage_error(storage_errc::not_found, fmt::format("{}: namespace 1 is not active", l.where()));
    }
    const auto lbads = idn.lbaf[flbas_index(idn.flbas) & 63].lbads;
    if (lbads < 9 || lbads > 16) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("{}: namespace 1 has an unsupported block size 2^{}", l.where(), lbads));
    }
    info.block_size = 1u << lbads;
    info.block_count = idn.nsze;
    if (info.max_transfer < info.block_size) info.max_transfer = info.block_size;

    info.id = uuid::random();
    r = co_await identify(q, cns::namespace_id_descriptors, nsid_1, buf.data());
    if (r.ok()) {
        for (std::size_t off = 0; off + sizeof(ns_id_descriptor_header) <= buf.size();) {
            ns_id_descriptor_header h;
            std::memcpy(&h, buf.data() + off, sizeof h);
            if (h.nidt == 0 || off + sizeof h + h.nidl > buf.size()) break;
            if (h.nidt == nidt::uuid && h.nidl == 16) {
                std::memcpy(info.id.bytes.data(), buf.data() + off + sizeof h, 16);
                break;
            }
            off += sizeof h + h.nidl;
        }
    }
    co_return info;
}

io_status to_io_status(const host_completion& r) {
    switch (r.how) {
        case host_completion::kind::timed_out: return io_status::aborted;
        case host_completion::kind::connection_lost: return io_status::namespace_not_ready;
        case host_completion::kind::done: break;
    }
    if (status_ok(r.cq.status)) return io_status::success;
    return static_cast<io_status>((unsigned{status_code_type(r.cq.status)} << 8) | status_code(r.cq.status));
}

sqe rw_cmd(std::uint8_t opcode, std::uint64_t lba, std::uint32_t blocks) {
    sqe s = make_cmd(opcode, nsid_1);
    s.cdw10 = static_cast<std::uint32_t>(lba);
    s.cdw11 = static_cast<std::uint32_t>(lba >> 32);
    s.cdw12 = blocks - 1;
    return s;
}

// One shard's channel: its own I/O queue, opened on the first I/O.
class nvmf_channel final : public device_channel {
public:
    nvmf_channel(const nvmf_device& dev, std::uint16_t qid) : _dev(dev), _qid(qid) {}

    future<io_status> read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        return transfer(nvm_opcode::read, lba, blocks, iov);
    }
    future<io_status> write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        return transfer(nvm_opcode::write, lba, blocks, iov);
    }
    future<io_status> flush() override { return simple(make_cmd(nvm_opcode::flush, nsid_1)); }
    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) override {
        nvmf_qpair* q = co_await queue();
        if (!q) co_return io_status::namespace_not_ready;
        while (blocks > 0) {
            const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(blocks, 0x10000));
            io_status st = to_io_status(co_await q->execute(rw_cmd(nvm_opcode::write_zeroes, lba, n)));
            if (!ok(st)) co_return st;
            lba += n;
            blocks -= n;
        }
        co_return io_status::success;
    }
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) override {
        nvmf_qpair* q = co_await queue();
        if (!q) co_return io_status::namespace_not_ready;
        while (blocks > 0) {
            dsm_range range{};
            const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(blocks, 0xffffffffu));
            range.length = n;
            range.starting_lba = lba;
            io_vec v{reinterpret_cast<std::byte*>(&range), sizeof range, -1};
            sqe s = make_cmd(nvm_opcode::dataset_management, nsid_1);
            s.cdw10 = 0;  // one range (0's based)
            s.cdw11 = dsm_attribute_deallocate;
            io_status st = to_io_status(co_await q->execute(s, data_view{io_vecs(&v, 1), 0, sizeof range}, {},
                                                            sizeof range <= _dev.in_capsule_bytes()));
            if (!ok(st)) co_return st;
            lba += n;
            blocks -= n;
        }
        co_return io_status::success;
    }
    future<io_status> reservation_register(const reservation_register_request& r) override {
        resv_register_data d{r.current_key, r.new_key};
        sqe s = make_cmd(nvm_opcode::reservation_register, nsid_1);
        s.cdw10 = static_cast<std::uint32_t>(r.action) | (r.ignore_existing_key ? resv_iekey : 0);
        co_return co_await data_out(s, &d, sizeof d);
    }
    future<io_status> reservation_acquire(const reservation_acquire_request& r) override {
        resv_acquire_data d{r.current_key, r.preempt_key};
        sqe s = make_cmd(nvm_opcode::reservation_acquire, nsid_1);
        s.cdw10 = static_cast<std::uint32_t>(r.action) | std::uint32_t{static_cast<std::uint8_t>(r.type)} << 8;
        co_return co_await data_out(s, &d, sizeof d);
    }
    future<io_status> read_reservation(reservation_report& out) override {
        nvmf_qpair* q = co_await queue();
        if (!q) co_return io_status::namespace_not_ready;
        std::vector<std::byte> buf(4096);
        io_vec v{buf.data(), static_cast<std::uint32_t>(buf.size()), -1};
        sqe s = make_cmd(nvm_opcode::reservation_report, nsid_1);
        s.cdw10 = static_cast<std::uint32_t>(buf.size() / 4 - 1);  // NUMD, 0's based
        s.cdw11 = report_eds;
        io_status st = to_io_status(co_await q->execute(s, {}, data_view{io_vecs(&v, 1), 0, v.len}));
        if (!ok(st)) co_return st;
        resv_status_ext_header h;
        std::memcpy(&h, buf.data(), sizeof h);
        out = {};
        out.generation = h.h.gen;
        out.type = static_cast<reservation_type>(h.h.rtype);
        const std::size_t fit = (buf.size() - sizeof h) / sizeof(registered_controller_ext);
        const std::size_t n = std::min<std::size_t>(regctl(h.h), fit);
        for (std::size_t i = 0; i < n; ++i) {
            registered_controller_ext e;
            std::memcpy(&e, buf.data() + sizeof h + i * sizeof e, sizeof e);
            reservation_registrant r;
            std::memcpy(r.host_id.data(), e.hostid, sizeof e.hostid);
            r.key = e.rkey;
            r.holder = e.rcsts & 1;
            out.registrants.push_back(r);
        }
        co_return io_status::success;
    }
    // On the admin queue, which lives on the device's owner shard.
    future<io_status> snapshot(const device_snapshot_request& r, device_snapshot_reply& out) override {
        const nvmf_device* dev = &_dev;
        auto [st, existed] = co_await submit_to(dev->owner_shard(), [dev, name = r.name, txid = r.txid] {
            return dev->snapshot_namespace(name, txid);
        });
        out.existed = existed;
        co_return st;
    }
    future<> close() override {
        if (_qp) co_await _qp->close();
        _qp.reset();
    }

private:
    // The I/O queue, connected on first use and again after a lost
    // connection; nullptr when there is none within fast_io_fail.
    future<nvmf_qpair*> queue() {
        if (_qp && _qp->alive()) co_return _qp.get();
        if (_opening) {
            _waiters.emplace_back();
            co_await _waiters.back().get_future();
            co_return _qp && _qp->alive() ? _qp.get() : nullptr;
        }
        _opening = true;
        if (_qp) {
            co_await _qp->close();
            _qp.reset();
        }
        const auto deadline = steady_clock::now() + _dev.options().fast_io_fail;
        bool logged = false;
        for (;;) {
            if (_dev.lost()) break;
            if (_dev.connected()) {
                try {
                    _qp = co_await _dev.open_io_queue(_qid, _dev.cntlid());
                    if (logged) log::info("nvmf device {}: shard {}: I/O queue {} connected again", _dev.name(),
                                          this_shard_id(), _qid);
                    break;
                } catch (const std::exception& e) {
                    if (!logged) log::warn("nvmf device {}: shard {}: {}", _dev.name(), this_shard_id(), e.what());
                    logged = true;
                }
            }
            const auto now = steady_clock::now();
            if (now >= deadline) break;
            co_await sleep(std::min<std::chrono::nanoseconds>(deadline - now, std::chrono::milliseconds(20)));
        }
        _opening = false;
        for (auto& p : _waiters) p.set_value();
        _waiters.clear();
        co_return _qp ? _qp.get() : nullptr;
    }

    // A command whose small data goes to the target (in the capsule when it fits).
    future<io_status> data_out(sqe s, void* data, std::uint32_t len) {
        nvmf_qpair* q = co_await queue();
        if (!q) co_return io_status::namespace_not_ready;
        io_vec v{static_cast<std::byte*>(data), len, -1};
        co_return to_io_status(
            co_await q->execute(s, data_view{io_vecs(&v, 1), 0, len}, {}, len <= _dev.in_capsule_bytes()));
    }

    future<io_status> simple(sqe s) {
        nvmf_qpair* q = co_await queue();
        if (!q) co_return io_status::namespace_not_ready;
        co_return to_io_status(co_await q->execute(s));
    }

    future<io_status> transfer(std::uint8_t opcode, std::uint64_t lba, std::uint32_t blocks, io_vecs iov) {
        nvmf_qpair* q = co_await queue();
        if (!q) co_return io_status::namespace_not_ready;
        const std::uint32_t bs = _dev.block_size();
        const std::uint32_t max_blocks = std::max<std::uint32_t>(1, _dev.max_transfer_bytes() / bs);
        std::uint64_t offset = 0;
        while (blocks > 0) {
            const std::uint32_t n = std::min(blocks, max_blocks);
            const std::uint32_t len = n * bs;
            const data_view v{iov, offset, len};
            host_completion r = opcode == nvm_opcode::read
                                    ? co_await q->execute(rw_cmd(opcode, lba, n), {}, v)
                                    : co_await q->execute(rw_cmd(opcode, lba, n), v, {}, len <= _dev.in_capsule_bytes());
            io_status st = to_io_status(r);
            if (!ok(st)) co_return st;
            lba += n;
            blocks -= n;
            offset += len;
        }
        co_return io_status::success;
    }

    const nvmf_device& _dev;
    const std::uint16_t _qid;
    std::unique_ptr<nvmf_qpair> _qp;
    bool _opening = false;
    std::vector<promise<>> _waiters;
};

link link_of(const std::string& host, std::uint16_t port, const std::string& subnqn, const std::string& hostnqn,
             const std::array<std::uint8_t, 16>& hostid, const nvmf_options& opts) {
    return link{host, port, subnqn, hostnqn, hostid, opts};
}

}  // namespace

nvmf_device::nvmf_device(std::string name, uuid id, std::uint32_t block_size, std::uint64_t block_count)
    : block_device(std::move(name), "nvmf", id, block_size, block_count), _keep_alive([this] { keep_alive_tick(); }) {}

nvmf_device::~nvmf_device() = default;

std::string nvmf_device::where() const { return fmt::format("nvmf://{}:{}/{}", _host, _port, _subnqn); }

future<std::unique_ptr<nvmf_device>> nvmf_device::connect(std::string name, std::string host, std::uint16_t port,
                                                          std::string subnqn, std::string hostnqn,
                                                          nvmf_options opts) {
    if (subnqn.empty() || subnqn.size() > nqn_max_length || hostnqn.empty() || hostnqn.size() > nqn_max_length) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("nvmf://{}:{}/{}: the subsystem and host NQNs must be 1 to {} bytes", host,
                                        port, subnqn, nqn_max_length));
    }
    const bool chosen = opts.host_id != std::array<std::uint8_t, 16>{};
    const link l = link_of(host, port, subnqn, hostnqn, chosen ? opts.host_id : uuid::random().bytes, opts);
    opts.admin_depth = std::clamp<unsigned>(opts.admin_depth, 2, nvmf_qpair::max_depth);
    std::uint16_t cntlid = 0;
    std::unique_ptr<nvmf_qpair> admin = co_await connect_queue(l, 0, opts.admin_depth, 0xffff, &cntlid);
    controller_info info;
    std::exception_ptr error;
    try {
        info = co_await bring_up(l, *admin);
    } catch (...) {
        error = std::current_exception();
    }
    if (error) {
        co_await admin->close();
        std::rethrow_exception(error);
    }
    std::unique_ptr<nvmf_device> dev(new nvmf_device(std::move(name), info.id, info.block_size, info.block_count));
    dev->_host = std::move(host);
    dev->_port = port;
    dev->_subnqn = std::move(subnqn);
    dev->_hostnqn = std::move(hostnqn);
    dev->_hostid = l.hostid;
    dev->_opts = opts;
    dev->_session.store(cntlid | session_up);
    dev->_in_capsule = info.in_capsule;
    dev->_max_transfer = info.max_transfer;
    dev->_io_queues = info.io_queues;
    dev->_io_depth = info.io_depth;
    dev->_admin = std::move(admin);
    dev->watch_admin();
    if (opts.kato.count() > 0) dev->_keep_alive.arm_periodic(opts.kato / 2);
    log::info("nvmf device {}: connected to {} as controller {} ({} x {} B, {} I/O queues, MDTS {} B, in-capsule {} B)",
              dev->name(), dev->where(), cntlid, info.block_count, info.block_size, info.io_queues, info.max_transfer,
              info.in_capsule);
    co_return dev;
}

future<std::unique_ptr<nvmf_qpair>> nvmf_device::open_io_queue(std::uint16_t qid, std::uint16_t cntlid) const {
    const link l = link_of(_host, _port, _subnqn, _hostnqn, _hostid, _opts);
    if (qid == 0 || qid > _io_queues) {
        throw storage_error(storage_errc::unavailable,
                            fmt::format("{}: I/O queue {} not granted (the controller gave {})", l.where(), qid,
                                        _io_queues));
    }
    auto qp = co_await connect_queue(l, qid, _io_depth, cntlid, nullptr);
    qp->count_abandoned_in(&_abandoned);
    co_return qp;
}

future<> nvmf_device::settle(std::chrono::milliseconds limit) {
    const auto deadline = steady_clock::now() + limit;
    if (!connected()) log::info("nvmf device {}: waiting to be connected again", name());
    while (!connected()) {
        if (lost()) {
            throw storage_error(storage_errc::unavailable,
                                fmt::format("{}: reconnecting was given up (ctrl_loss_timeout); remove the child and "
                                            "add it again",
                                            where()));
        }
        if (steady_clock::now() >= deadline) {
            throw storage_error(storage_errc::busy,
                                fmt::format("{}: not connected after {} ms (is its node up and sharing it?)", where(),
                                            limit.count()));
        }
        co_await sleep(std::chrono::milliseconds(5));
    }
    if (abandoned() > 0) {
        log::info("nvmf device {}: waiting for the target to answer {} command(s) that timed out", name(),
                  abandoned());
    }
    while (abandoned() > 0) {
        if (steady_clock::now() >= deadline) {
            throw storage_error(storage_errc::busy,
                                fmt::format("{}: {} command(s) that timed out are still unanswered after {} ms; "
                                            "a late write could still land (try again later)",
                                            where(), abandoned(), limit.count()));
        }
        co_await sleep(std::chrono::milliseconds(5));
    }
}

std::unique_ptr<device_channel> nvmf_device::open_channel() {
    return std::make_unique<nvmf_channel>(*this, static_cast<std::uint16_t>(this_shard_id() + 1));
}

void nvmf_device::keep_alive_tick() {
    if (_keep_alive_busy || !_admin || !_admin->alive()) return;
    _keep_alive_busy = true;
    [](nvmf_device* d) -> future<> {
        host_completion r = co_await d->_admin->execute(make_cmd(admin_opcode::keep_alive));
        if (!r.ok() && d->_admin && d->_admin->alive()) {
            log::warn("nvmf device {}: Keep Alive to {} failed ({})", d->name(), d->where(),
                      r.how == host_completion::kind::done ? status_text(r.cq.status) : "timed out");
            // The controller may be gone (KATO expired there): start over.
            if (r.how == host_completion::kind::timed_out ||
                (r.how == host_completion::kind::done && status_code_type(r.cq.status) == sct::generic &&
                 status_code(r.cq.status) == sc::command_sequence_error)) {
                d->_admin->abort();
            }
        }
        d->_keep_alive_busy = false;
        if (d->_keep_alive_done) d->_keep_alive_done->set_value();
    }(this).ignore();
}

void nvmf_device::watch_admin() {
    _admin->on_lost([this] { admin_lost(); });
}

void nvmf_device::admin_lost() {
    _session.store(_session.load() & ~session_up);
    if (_closing || _reconnect_running) return;
    if (_opts.ctrl_loss_timeout.count() == 0) {
        log::error("nvmf device {}: the connection to {} was lost; not reconnecting (ctrl_loss_timeout 0)", name(),
                   where());
        _lost.store(true);
        return;
    }
    log::warn("nvmf device {}: the connection to {} was lost: reconnecting", name(), where());
    _reconnect_running = true;
    _reconnecting.reset();  // the previous loop has ended (its flag was clear)
    _reconnecting.emplace(reconnect_loop());
}

future<> nvmf_device::reconnect_loop() {
    co_await yield();  // out of the lost queue's receive loop first
    if (_admin) {
        co_await _admin->close();
        _admin.reset();
    }
    const link l = link_of(_host, _port, _subnqn, _hostnqn, _hostid, _opts);
    const auto give_up = steady_clock::now() + _opts.ctrl_loss_timeout;
    auto delay = _opts.reconnect_delay;
    unsigned attempt = 0;
    while (!_closing) {
        // Back-off, in short steps so that close() is not kept waiting.
        const auto wake = steady_clock::now() + delay;
        while (!_closing && steady_clock::now() < wake) {
            co_await sleep(std::min<std::chrono::nanoseconds>(wake - steady_clock::now(),
                                                              std::chrono::milliseconds(20)));
        }
        if (_closing) break;
        ++attempt;
        std::unique_ptr<nvmf_qpair> admin;
        std::exception_ptr error;
        try {
            std::uint16_t cntlid = 0;
            admin = co_await connect_queue(l, 0, _opts.admin_depth, 0xffff, &cntlid);
            controller_info info = co_await bring_up(l, *admin);
            if (info.block_size != block_size() || info.block_count < block_count()) {
                throw storage_error(storage_errc::io_error,
                                    fmt::format("{}: namespace 1 changed ({} x {} B, was {} x {} B)", where(),
                                                info.block_count, info.block_size, block_count(), block_size()));
            }
            if (_closing) {
                co_await admin->close();
                break;
            }
            // From here to the end of the loop nothing suspends, so a loss
            // after this check reaches admin_lost() through on_lost.
            if (!admin->alive()) throw std::runtime_error("the admin connection closed during bring-up");
            _admin = std::move(admin);
            watch_admin();
            _session.store(cntlid | session_up);
            _reconnects.fetch_add(1);
            log::info("nvmf device {}: reconnected to {} as controller {} (attempt {})", name(), where(), cntlid,
                      attempt);
            break;
        } catch (const std::exception& e) {
            log::warn("nvmf device {}: reconnect attempt {} failed: {}", name(), attempt, e.what());
            error = std::current_exception();
        }
        if (admin) co_await admin->close();
        if (steady_clock::now() >= give_up) {
            log::error("nvmf device {}: gave up reconnecting to {} after {} ms; I/O fails until it is removed",
                       name(), where(), _opts.ctrl_loss_timeout.count());
            _lost.store(true);
            break;
        }
        delay = std::min(delay * 2, std::max(_opts.max_reconnect_delay, _opts.reconnect_delay));
    }
    _reconnect_running = false;  // no suspension from here to the end
}

future<> nvmf_device::close_backend() {
    _closing = true;
    _keep_alive.cancel();
    if (_reconnecting) {
        co_await _reconnecting->wait_ready();
        _reconnecting.reset();
    }
    if (!_admin) co_return;
    if (_keep_alive_busy) {
        _keep_alive_done.emplace();
        co_await _keep_alive_done->get_future();
        _keep_alive_done.reset();
    }
    // Normal shutdown notification, then the connection closes (the target
    // tears the controller down with its admin queue).
    if (_admin->alive()) {
        host_completion r = co_await property_set(*_admin, property::cc, cc::with_shn(cc::en | (6u << 16) | (4u << 20),
                                                                                      cc::shn_normal));
        if (!r.ok()) log::warn("nvmf device {}: shutdown notification to {} failed", name(), where());
    }
    co_await _admin->close();
    _admin.reset();
}

future<std::pair<io_status, bool>> nvmf_device::snapshot_namespace(std::string name, std::string txid) const {
    snapshot_payload p;
    if (!encode_snapshot_payload(snapshot_fields{std::move(txid), std::move(name)}, p)) {
        co_return std::pair{io_status::invalid_field, false};
    }
    if (!_admin || !_admin->alive()) co_return std::pair{io_status::namespace_not_ready, false};
    sqe s = make_cmd(admin_opcode::vendor_snapshot_namespace, nsid_1);
    s.cdw10 = sizeof p;  // the payload's length in bytes (docs/nvmf-vendor.md)
    io_vec v{reinterpret_cast<std::byte*>(&p), sizeof p, -1};
    const host_completion r = co_await _admin->execute(s, data_view{io_vecs(&v, 1), 0, sizeof p}, {}, true);
    const io_status st = to_io_status(r);
    co_return std::pair{st, ok(st) && (r.cq.dw0 & snapshot_dw0_existed) != 0};
}

}  // namespace ioe::nvme
