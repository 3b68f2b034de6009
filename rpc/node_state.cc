// The state file: encoding, decoding, and the atomic write (node_state.hh).
#include "rpc/node_state.hh"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ioe::rpc {
namespace {

constexpr std::string_view header = "ioengine-state 1";
constexpr std::size_t max_fields = 1024;

std::string encode_field(std::string_view s) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (c <= 0x20 || c >= 0x7f || c == '%') {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (out.empty()) out = "%";  // an empty field still takes a place
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

std::optional<std::string> decode_field(std::string_view s) {
    if (s == "%") return std::string();
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

std::vector<std::string_view> split(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (start <= line.size() && out.size() <= max_fields) {
        auto sp = line.find(' ', start);
        if (sp == std::string_view::npos) sp = line.size();
        out.push_back(line.substr(start, sp - start));
        start = sp + 1;
    }
    return out;
}

std::optional<std::uint32_t> parse_u32(const std::string& s) {
    if (s.empty() || s.size() > 10) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 0xffffffffu) return std::nullopt;
    return static_cast<std::uint32_t>(v);
}

std::optional<std::uint64_t> parse_u64(const std::string& s) {
    if (s.empty() || s.size() > 19) return std::nullopt;  // below 10^19: no overflow
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v;
}

// nexus NAME UUID KEY SEGMENT PARALLEL VERIFY PUBLISHED N CHILD*N HOST*
std::optional<nexus_record> parse_nexus(const std::vector<std::string>& v) {
    if (v.size() < 9 || v[0].empty() || v[1].empty() || v[2].empty()) return std::nullopt;
    nexus_record n;
    n.name = v[0];
    n.uuid = v[1];
    n.health_key = v[2];
    auto seg = parse_u32(v[3]), par = parse_u32(v[4]), count = parse_u32(v[7]);
    if (!seg || !par || !count || (v[5] != "0" && v[5] != "1") || (v[6] != "0" && v[6] != "1")) return std::nullopt;
    if (*count == 0 || *count > 8 || v.size() < 8 + std::size_t{*count}) return std::nullopt;
    n.segment_bytes = *seg;
    n.rebuild_parallel = *par;
    n.verify = v[5] == "1";
    n.published = v[6] == "1";
    for (std::size_t i = 8; i < 8 + *count; ++i) {
        if (v[i].empty()) return std::nullopt;
        n.children.push_back(v[i]);
    }
    n.allowed_hosts.assign(v.begin() + 8 + *count, v.end());
    return n;
}

[[noreturn]] void fail_os(const std::string& what, const std::string& path) {
    throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

std::string encode_state(const node_state& s) {
    std::string out(header);
    out += '\n';
    for (const auto& p : s.pools) out += "pool " + encode_field(p.name) + " " + encode_field(p.uri) + "\n";
    for (const auto& sh : s.shares) {
        out += "share " + encode_field(sh.name);
        for (const auto& h : sh.allowed_hosts) out += " " + encode_field(h);
        out += "\n";
        if (!sh.nqn.empty()) out += "nqn share " + encode_field(sh.name) + " " + encode_field(sh.nqn) + "\n";
    }
    for (const auto& n : s.nexuses) {
        out += "nexus " + encode_field(n.name) + " " + encode_field(n.uuid) + " " + encode_field(n.health_key) + " " +
               std::to_string(n.segment_bytes) + " " + std::to_string(n.rebuild_parallel) + " " +
               (n.verify ? "1" : "0") + " " + (n.published ? "1" : "0") + " " + std::to_string(n.children.size());
        for (const auto& c : n.children) out += " " + encode_field(c);
        for (const auto& h : n.allowed_hosts) out += " " + encode_field(h);
        out += "\n";
        if (!n.nqn.empty()) out += "nqn nexus " + encode_field(n.name) + " " + encode_field(n.nqn) + "\n";
        if (!n.ana.empty()) out += "ana nexus " + encode_field(n.name) + " " + encode_field(n.ana) + "\n";
    }
    for (const auto& x : s.vhost_exports) {
        out += "vhost " + encode_field(x.name) + " " + encode_field(x.socket_path) + " " + encode_field(x.device) +
               " " + std::to_string(x.queues) + " " + (x.read_only ? "1" : "0") + "\n";
    }
    for (const auto& b : s.standbys) {
        out += "standby " + encode_field(b.nqn) + " " + encode_field(b.uuid) + " " + std::to_string(b.block_size) +
               " " + std::to_string(b.block_count);
        for (const auto& h : b.allowed_hosts) out += " " + encode_field(h);
        out += "\n";
        if (!b.forward.empty()) out += "forward standby " + encode_field(b.nqn) + " " + encode_field(b.forward) + "\n";
    }
    out += "end\n";
    return out;
}

std::optional<node_state> decode_state(std::string_view text, std::string& err) {
    node_state s;
    std::size_t pos = 0;
    unsigned line_no = 0;
    bool ended = false;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos) {
            err = "line " + std::to_string(line_no + 1) + ": no newline at the end (truncated)";
            return std::nullopt;
        }
        auto line = text.substr(pos, nl - pos);
        pos = nl + 1;
        ++line_no;
        auto where = "line " + std::to_string(line_no) + ": ";
        if (ended) {
            err = where + "text after \"end\"";
            return std::nullopt;
        }
        if (line_no == 1) {
            if (line != header) {
                err = where + "expected \"" + std::string(header) + "\"";
                return std::nullopt;
            }
            continue;
        }
        auto f = split(line);
        if (f.size() > max_fields) {
            err = where + "too many fields";
            return std::nullopt;
        }
        std::vector<std::string> v;
        for (std::size_t i = 1; i < f.size(); ++i) {
            auto d = decode_field(f[i]);
            if (!d) {
                err = where + "bad percent-encoding in field " + std::to_string(i + 1);
                return std::nullopt;
            }
            v.push_back(std::move(*d));
        }
        if (f[0] == "pool" && v.size() == 2 && !v[0].empty() && !v[1].empty()) {
            s.pools.push_back({v[0], v[1]});
        } else if (f[0] == "share" && !v.empty() && !v[0].empty()) {
            s.shares.push_back({v[0], std::vector<std::string>(v.begin() + 1, v.end()), {}});
        } else if (f[0] == "nexus") {
            auto n = parse_nexus(v);
            if (!n) {
                err = where + "expected \"nexus NAME UUID KEY SEGMENT PARALLEL VERIFY PUBLISHED N CHILD... [HOST...]\"";
                return std::nullopt;
            }
            s.nexuses.push_back(std::move(*n));
        } else if (f[0] == "vhost") {
            // vhost NAME SOCKET DEVICE QUEUES RO
            const auto queues = v.size() == 5 ? parse_u32(v[3]) : std::nullopt;
            if (!queues || *queues == 0 || v[0].empty() || v[1].empty() || v[2].empty() ||
                (v[4] != "0" && v[4] != "1")) {
                err = where + "expected \"vhost NAME SOCKET DEVICE QUEUES 0|1\"";
                return std::nullopt;
            }
            s.vhost_exports.push_back({v[0], v[1], v[2], *queues, v[4] == "1"});
        } else if (f[0] == "standby") {
            // standby NQN UUID BLOCK_SIZE BLOCK_COUNT [HOST...]
            const auto bs = v.size() >= 4 ? parse_u32(v[2]) : std::nullopt;
            const auto count = v.size() >= 4 ? parse_u64(v[3]) : std::nullopt;
            if (!bs || !count || *count == 0 || (*bs != 512 && *bs != 4096) || v[0].empty() || v[1].empty()) {
                err = where + "expected \"standby NQN UUID 512|4096 BLOCKS [HOST...]\"";
                return std::nullopt;
            }
            s.standbys.push_back({v[0], v[1], *bs, *count, std::vector<std::string>(v.begin() + 4, v.end()), {}});
        } else if (f[0] == "nqn") {
            // nqn share|nexus NAME NQN: the NQN a share or publish was given,
            // for the share or nexus line before it.
            std::string* slot = nullptr;
            if (v.size() == 3 && !v[1].empty() && !v[2].empty()) {
                if (v[0] == "share") {
                    for (auto& sh : s.shares)
                        if (sh.name == v[1]) slot = &sh.nqn;
                } else if (v[0] == "nexus") {
                    for (auto& n : s.nexuses)
                        if (n.name == v[1] && n.published) slot = &n.nqn;
                }
            }
            if (!slot || !slot->empty()) {
                err = where + "expected \"nqn share|nexus NAME NQN\" after that share or published nexus, once";
                return std::nullopt;
            }
            *slot = v[2];
        } else if (f[0] == "forward") {
            // forward standby NQN URI: the standby line before it is a
            // forwarding path to that device.
            std::string* slot = nullptr;
            if (v.size() == 3 && v[0] == "standby" && !v[2].empty()) {
                for (auto& sb : s.standbys)
                    if (sb.nqn == v[1]) slot = &sb.forward;
            }
            if (!slot || !slot->empty()) {
                err = where + "expected \"forward standby NQN URI\" after that standby, once";
                return std::nullopt;
            }
            *slot = v[2];
        } else if (f[0] == "ana") {
            // ana nexus NAME STATE: the ANA state `nexus ana` gave the
            // published nexus line before it.
            std::string* slot = nullptr;
            if (v.size() == 3 && v[0] == "nexus" && (v[2] == "non-optimized" || v[2] == "inaccessible")) {
                for (auto& n : s.nexuses)
                    if (n.name == v[1] && n.published) slot = &n.ana;
            }
            if (!slot || !slot->empty()) {
                err = where + "expected \"ana nexus NAME non-optimized|inaccessible\" after that published nexus, once";
                return std::nullopt;
            }
            *slot = v[2];
        } else if (f[0] == "end" && v.empty()) {
            ended = true;
        } else {
            err = where + "expected \"pool NAME URI\", \"share NAME [HOST...]\", \"nexus ...\", \"nqn ...\", \"ana ...\", \"forward ...\", \"vhost ...\", \"standby ...\" or \"end\"";
            return std::nullopt;
        }
    }
    if (line_no == 0) {
        err = "empty";
        return std::nullopt;
    }
    if (!ended) {
        err = "no \"end\" line (truncated)";
        return std::nullopt;
    }
    return s;
}

void save_state_file(const std::string& path, const node_state& s) {
    std::string text = encode_state(s);
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail_os("cannot create", tmp);
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            errno = e;
            fail_os("cannot write", tmp);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        fail_os("cannot fsync", tmp);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail_os("cannot rename over", path);
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) fail_os("cannot open directory", dir);
    int rc = ::fsync(dfd);
    ::close(dfd);
    if (rc != 0) fail_os("cannot fsync directory", dir);
}

std::optional<node_state> load_state_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (errno == ENOENT) return std::nullopt;
        fail_os("cannot open", path);
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string err;
    auto s = decode_state(ss.str(), err);
    if (!s) throw std::runtime_error("state file " + path + ": " + err + " (move it away to start without it)");
    return s;
}

}  // namespace ioe::rpc
