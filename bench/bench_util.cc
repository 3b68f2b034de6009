// Watchdog and JSON escaping for the benchmarks (bench_util.hh).
#include "bench/bench_util.hh"

#include <cstdio>
#include <cstdlib>
#include <thread>

namespace ioe::bench {

void start_watchdog(const char* name, std::chrono::seconds limit) {
    std::thread([name, limit] {
        std::this_thread::sleep_for(limit);
        std::fprintf(stderr, "%s: still running after %lld s: giving up\n", name,
                     static_cast<long long>(limit.count()));
        std::_Exit(3);
    }).detach();
}

std::string json_escape(const std::string& s) {
    std::string e;
    for (char c : s) {
        if (c == '"' || c == '\\') e += '\\';
        e += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c;
    }
    return e;
}

}  // namespace ioe::bench
