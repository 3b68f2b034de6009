// The PTPL file of one namespace's reservation (see reservation_file.hh).
#include "nvme/target/reservation_file.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "nvme/spec/nvme_reservation.hh"
#include "runtime/crc32c.hh"

namespace ioe::nvme {

namespace {

constexpr char k_magic[8] = {'I', 'O', 'E', 'R', 'E', 'S', 'V', '1'};

std::runtime_error os_error(const std::string& what, const std::string& path) {
    return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

void write_all(int fd, const std::byte* p, std::size_t n, const std::string& path) {
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) throw os_error("write", path);
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

}  // namespace

std::vector<std::byte> encode_reservation_file(const reservation_view& v) {
    std::vector<std::byte> out(sizeof(reservation_file_header) + v.count * sizeof(reservation_file_record));
    reservation_file_header h{};
    std::memcpy(h.magic, k_magic, sizeof h.magic);
    h.version = reservation_file_version;
    h.generation = v.generation;
    h.rtype = v.type;
    h.ptpl = v.ptpl ? 1 : 0;
    h.count = static_cast<std::uint16_t>(v.count);
    std::memcpy(h.holder, v.holder.data(), sizeof h.holder);
    for (std::uint32_t i = 0; i < v.count; ++i) {
        reservation_file_record r{};
        std::memcpy(r.hostid, v.regs[i].host.data(), sizeof r.hostid);
        r.key = v.regs[i].key;
        r.cntlid = v.regs[i].cntlid;
        std::memcpy(out.data() + sizeof h + i * sizeof r, &r, sizeof r);
    }
    std::memcpy(out.data(), &h, sizeof h);
    h.crc32c = crc32c(out.data(), out.size());
    std::memcpy(out.data(), &h, sizeof h);
    return out;
}

std::optional<reservation_view> decode_reservation_file(std::span<const std::byte> bytes, std::string& err) {
    reservation_file_header h;
    if (bytes.size() < sizeof h) {
        err = "shorter than its 64-byte header";
        return std::nullopt;
    }
    std::memcpy(&h, bytes.data(), sizeof h);
    if (std::memcmp(h.magic, k_magic, sizeof h.magic) != 0) {
        err = "not a reservation file (bad magic)";
        return std::nullopt;
    }
    if (h.version != reservation_file_version) {
        err = "version " + std::to_string(h.version) + " (this engine reads version 1)";
        return std::nullopt;
    }
    if (h.count > reservation_view::max_registrants) {
        err = std::to_string(h.count) + " registrants (at most 64)";
        return std::nullopt;
    }
    if (bytes.size() != sizeof h + h.count * sizeof(reservation_file_record)) {
        err = "its length does not match its registrant count";
        return std::nullopt;
    }
    reservation_file_header zeroed = h;
    zeroed.crc32c = 0;
    std::uint32_t crc = crc32c(&zeroed, sizeof zeroed);
    crc = crc32c_extend(crc, bytes.data() + sizeof h, bytes.size() - sizeof h);
    if (crc != h.crc32c) {
        err = "CRC32C mismatch (the file is corrupt)";
        return std::nullopt;
    }
    if (h.rtype > rtype::exclusive_access_all_registrants || h.ptpl > 1) {
        err = "bad reservation type or PTPL value";
        return std::nullopt;
    }
    reservation_view v;
    v.generation = h.generation;
    v.type = h.rtype;
    v.ptpl = h.ptpl == 1;
    std::memcpy(v.holder.data(), h.holder, v.holder.size());
    v.count = h.count;
    for (std::uint32_t i = 0; i < h.count; ++i) {
        reservation_file_record r;
        std::memcpy(&r, bytes.data() + sizeof h + i * sizeof r, sizeof r);
        std::memcpy(v.regs[i].host.data(), r.hostid, sizeof r.hostid);
        v.regs[i].key = r.key;
        v.regs[i].cntlid = r.cntlid;
        for (std::uint32_t j = 0; j < i; ++j) {
            if (v.regs[j].host == v.regs[i].host) {
                err = "a host registered twice";
                return std::nullopt;
            }
        }
    }
    if (v.type != rtype::none && !all_registrants_type(v.type) && !v.registered(v.holder)) {
        err = "the holder is not a registrant";
        return std::nullopt;
    }
    if (v.type != rtype::none && v.count == 0) {
        err = "a reservation without registrants";
        return std::nullopt;
    }
    return v;
}

void save_reservation_file(const std::string& dir, const std::string& name, std::span<const std::byte> bytes) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw os_error("mkdir", dir);
    const std::string path = dir + "/" + name;
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw os_error("open", tmp);
    try {
        write_all(fd, bytes.data(), bytes.size(), tmp);
        if (::fsync(fd) != 0) throw os_error("fsync", tmp);
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw os_error("rename to", path);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) throw os_error("open", dir);
    const int rc = ::fsync(dfd);
    ::close(dfd);
    if (rc != 0) throw os_error("fsync", dir);
}

std::optional<std::vector<std::byte>> load_reservation_file(const std::string& dir, const std::string& name) {
    const std::string path = dir + "/" + name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw os_error("open", path);
    }
    std::vector<std::byte> out;
    std::byte buf[4096];
    for (;;) {
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            ::close(fd);
            throw os_error("read", path);
        }
        if (r == 0) break;
        out.insert(out.end(), buf, buf + r);
        if (out.size() > 1u << 20) break;  // far beyond any valid file: decode refuses it
    }
    ::close(fd);
    return out;
}

}  // namespace ioe::nvme
