// Small things every benchmark binary needs: a watchdog that ends a run
// that hangs, JSON string escaping for the figures' report, the median of
// the repetitions and the machine's load average.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace ioe::bench {

// After `limit`, prints "<name>: still running after N s: giving up", calls
// before_exit when given (e.g. to kill children), and exits the process with
// status 3 (a detached thread).
void start_watchdog(const char* name, std::chrono::seconds limit, void (*before_exit)() = nullptr);

// `s` as the inside of a JSON string: quotes and backslashes escaped,
// control characters as spaces.
std::string json_escape(const std::string& s);

// The median of v (the mean of the middle two for an even count), 0 if empty.
double median(std::vector<double> v);

// The 1-minute load average from /proc/loadavg, or -1.
double load_average();

}  // namespace ioe::bench
