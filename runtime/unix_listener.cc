// See unix_listener.hh. /proc/net/unix rows: "Num RefCount Protocol Flags
// Type St Inode Path"; Flags carries __SO_ACCEPTCON (0x10000) once the
// socket listens.
#include "runtime/unix_listener.hh"

#include <fstream>
#include <sstream>

namespace ioe {

bool unix_socket_listening(const std::string& path) {
    constexpr unsigned long accept_con = 0x10000;
    std::ifstream in("/proc/net/unix");
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream row(line);
        std::string num, refs, proto, flags, type, st, inode, name;
        if (!(row >> num >> refs >> proto >> flags >> type >> st >> inode >> name)) continue;
        if (name != path) continue;
        if (std::stoul(flags, nullptr, 16) & accept_con) return true;
    }
    return false;
}

}  // namespace ioe
