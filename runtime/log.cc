// The logging facade (see log.hh): an spdlog logger with a custom %Q flag
// that prints the calling thread's role.
#include "runtime/log.hh"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstring>
#include <exception>

#include "runtime/future.hh"

namespace ioe::log {
namespace {

thread_local char role_buf[32] = "main";

class role_flag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
        std::string_view r(role_buf);
        dest.append(r.data(), r.data() + r.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<role_flag>();
    }
};

std::shared_ptr<spdlog::logger> make_logger() {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto l = std::make_shared<spdlog::logger>("ioengine", sink);
    auto fmt = std::make_unique<spdlog::pattern_formatter>();
    fmt->add_flag<role_flag>('Q').set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%Q] %v");
    l->set_formatter(std::move(fmt));
    l->set_level(spdlog::level::info);
    l->flush_on(spdlog::level::info);
    return l;
}

}  // namespace

void set_thread_role(std::string_view role) {
    std::size_t n = std::min(role.size(), sizeof(role_buf) - 1);
    std::memcpy(role_buf, role.data(), n);
    role_buf[n] = '\0';
}

std::string_view thread_role() noexcept { return role_buf; }

spdlog::logger& logger() {
    static std::shared_ptr<spdlog::logger> l = make_logger();
    return *l;
}

void set_level(spdlog::level::level_enum level) { logger().set_level(level); }

}  // namespace ioe::log

namespace ioe::internal {

void report_ignored_exception(const std::exception_ptr& e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        log::warn("exceptional future ignored: {}", ex.what());
    } catch (...) {
        log::warn("exceptional future ignored: unknown exception");
    }
}

}  // namespace ioe::internal
