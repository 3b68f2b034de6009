// One logging facade for the whole engine. Every line carries the thread's
// role: "shard N" on a reactor, "control" on the control thread, "main"
// before the engine starts. Backed by spdlog (asynchronous formatting is not
// needed: log lines are not on the per-I/O path).
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace ioe::log {

// Names the calling thread in every line it logs ("shard 0", "control").
void set_thread_role(std::string_view role);
std::string_view thread_role() noexcept;

// The engine's logger (created on first use, pattern with the thread role).
spdlog::logger& logger();

void set_level(spdlog::level::level_enum level);

template <typename... A>
void debug(spdlog::format_string_t<A...> f, A&&... a) {
    logger().debug(f, std::forward<A>(a)...);
}
template <typename... A>
void info(spdlog::format_string_t<A...> f, A&&... a) {
    logger().info(f, std::forward<A>(a)...);
}
template <typename... A>
void warn(spdlog::format_string_t<A...> f, A&&... a) {
    logger().warn(f, std::forward<A>(a)...);
}
template <typename... A>
void error(spdlog::format_string_t<A...> f, A&&... a) {
    logger().error(f, std::forward<A>(a)...);
}

}  // namespace ioe::log
