// Small things every benchmark binary needs: a watchdog that ends a run
// that hangs, and JSON string escaping for the figures' report.
#pragma once

#include <chrono>
#include <string>

namespace ioe::bench {

// After `limit`, prints "<name>: still running after N s: giving up" and
// exits the process with status 3 (a detached thread).
void start_watchdog(const char* name, std::chrono::seconds limit);

// `s` as the inside of a JSON string: quotes and backslashes escaped,
// control characters as spaces.
std::string json_escape(const std::string& s);

}  // namespace ioe::bench
