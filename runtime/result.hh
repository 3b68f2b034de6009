// result<T>: a value or an error code, for the I/O path where exceptions are
// not allowed. Free when OK (no allocation, no message string): the error is a
// std::error_code (an int and a category pointer); a person-readable message
// comes from the category on demand, as LevelDB's Status does.
#pragma once

#include <cerrno>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace ioe {

// Makes an error_code from a (positive) errno value.
inline std::error_code errno_error(int err) noexcept {
    return std::error_code(err, std::generic_category());
}

template <typename T>
class [[nodiscard]] result {
public:
    using value_type = T;

    result(T value) : _v(std::in_place_index<0>, std::move(value)) {}           // NOLINT
    result(std::error_code ec) : _v(std::in_place_index<1>, ec) {}              // NOLINT

    bool ok() const noexcept { return _v.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(_v); }
    const T& value() const& { return std::get<0>(_v); }
    T&& value() && { return std::get<0>(std::move(_v)); }
    T* operator->() { return &value(); }
    T& operator*() & { return value(); }

    std::error_code error() const noexcept {
        return ok() ? std::error_code() : std::get<1>(_v);
    }

private:
    std::variant<T, std::error_code> _v;
};

// result<void>: success or an error code.
template <>
class [[nodiscard]] result<void> {
public:
    using value_type = void;
    result() = default;
    result(std::error_code ec) : _ec(ec) {}                                      // NOLINT
    bool ok() const noexcept { return !_ec; }
    explicit operator bool() const noexcept { return ok(); }
    std::error_code error() const noexcept { return _ec; }

private:
    std::error_code _ec;
};

using status = result<void>;

}  // namespace ioe
