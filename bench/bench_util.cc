// Watchdog, JSON escaping, median and load average for the benchmarks
// (bench_util.hh).
#include "bench/bench_util.hh"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace ioe::bench {

void start_watchdog(const char* name, std::chrono::seconds limit, void (*before_exit)()) {
    std::thread([name, limit, before_exit] {
        std::this_thread::sleep_for(limit);
        std::fprintf(stderr, "%s: still running after %lld s: giving up\n", name,
                     static_cast<long long>(limit.count()));
        if (before_exit) before_exit();
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

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double load_average() {
    double v = -1;
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
        if (std::fscanf(f, "%lf", &v) != 1) v = -1;
        std::fclose(f);
    }
    return v;
}

}  // namespace ioe::bench
