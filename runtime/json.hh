// A small JSON reader and writer for control-plane messages (the etcd
// gateway's requests and responses, the nexus health record). Not for the
// I/O path: it allocates freely. Debian 12's Boost (1.74) has no Boost.JSON.
//
// The reader builds a tree of json::value, bounded in nesting depth, and
// throws json::parse_error (with the byte offset) on anything that is not
// RFC 8259 JSON. Numbers keep their text; as_int64() converts them (and
// decimal strings, since the etcd gateway writes int64 fields as strings).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ioe::json {

struct parse_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class value {
public:
    enum class kind { null, boolean, number, string, array, object };

    value() = default;  // null

    kind type() const noexcept { return _kind; }
    bool is_null() const noexcept { return _kind == kind::null; }
    bool is_object() const noexcept { return _kind == kind::object; }
    bool is_array() const noexcept { return _kind == kind::array; }
    bool is_string() const noexcept { return _kind == kind::string; }
    bool is_bool() const noexcept { return _kind == kind::boolean; }
    bool is_number() const noexcept { return _kind == kind::number; }

    bool as_bool() const noexcept { return _bool; }
    // The string, or a number's text.
    const std::string& text() const noexcept { return _text; }
    const std::vector<value>& items() const noexcept { return _items; }
    const std::vector<std::pair<std::string, value>>& members() const noexcept { return _members; }

    // The member named `key` of an object (the first one), or nullptr.
    const value* find(std::string_view key) const noexcept;
    // An integer from a number without fraction/exponent or a decimal
    // string; false if it is neither or does not fit.
    bool as_int64(std::int64_t& out) const noexcept;

    static value make_null() { return value(kind::null); }
    static value make_bool(bool b) {
        value v(kind::boolean);
        v._bool = b;
        return v;
    }
    static value make_text(kind k, std::string s) {
        value v(k);
        v._text = std::move(s);
        return v;
    }
    static value make_array(std::vector<value> items) {
        value v(kind::array);
        v._items = std::move(items);
        return v;
    }
    static value make_object(std::vector<std::pair<std::string, value>> members) {
        value v(kind::object);
        v._members = std::move(members);
        return v;
    }

private:
    explicit value(kind k) : _kind(k) {}
    kind _kind = kind::null;
    bool _bool = false;
    std::string _text;
    std::vector<value> _items;
    std::vector<std::pair<std::string, value>> _members;
};

inline constexpr unsigned max_depth = 32;

// Parses one JSON text (surrounding whitespace allowed, nothing else).
value parse(std::string_view text);

// Appends `s` as a JSON string literal (quotes and escapes included).
void append_string(std::string& out, std::string_view s);

}  // namespace ioe::json
