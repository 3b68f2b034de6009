// The JSON reader and writer (see json.hh).
#include "runtime/json.hh"

#include <charconv>
#include <limits>

namespace ioe::json {

namespace {

class reader {
public:
    explicit reader(std::string_view t) : _t(t) {}

    value document() {
        skip_space();
        value v = parse_value(0);
        skip_space();
        if (_p != _t.size()) fail("trailing characters after the JSON value");
        return v;
    }

private:
    [[noreturn]] void fail(const char* what) const {
        throw parse_error(std::string("JSON: ") + what + " at byte " + std::to_string(_p));
    }
    bool at_end() const noexcept { return _p >= _t.size(); }
    char peek() const noexcept { return at_end() ? '\0' : _t[_p]; }
    void skip_space() noexcept {
        while (!at_end() && (_t[_p] == ' ' || _t[_p] == '\t' || _t[_p] == '\n' || _t[_p] == '\r')) ++_p;
    }
    void expect_word(std::string_view w) {
        if (_t.substr(_p, w.size()) != w) fail("unknown literal");
        _p += w.size();
    }

    value parse_value(unsigned depth) {
        if (depth >= max_depth) fail("nesting too deep");
        if (at_end()) fail("unexpected end of input");
        char c = _t[_p];
        switch (c) {
        case '{': return parse_object(depth);
        case '[': return parse_array(depth);
        case '"': return value::make_text(value::kind::string, parse_string());
        case 't': expect_word("true"); return value::make_bool(true);
        case 'f': expect_word("false"); return value::make_bool(false);
        case 'n': expect_word("null"); return value::make_null();
        default:
            if (c == '-' || (c >= '0' && c <= '9')) return value::make_text(value::kind::number, parse_number());
            fail("unexpected character");
        }
    }

    value parse_object(unsigned depth) {
        ++_p;  // '{'
        std::vector<std::pair<std::string, value>> members;
        skip_space();
        if (peek() == '}') {
            ++_p;
            return value::make_object(std::move(members));
        }
        for (;;) {
            skip_space();
            if (peek() != '"') fail("expected a member name");
            std::string name = parse_string();
            skip_space();
            if (peek() != ':') fail("expected ':'");
            ++_p;
            skip_space();
            members.emplace_back(std::move(name), parse_value(depth + 1));
            skip_space();
            if (peek() == ',') {
                ++_p;
                continue;
            }
            if (peek() == '}') {
                ++_p;
                return value::make_object(std::move(members));
            }
            fail("expected ',' or '}'");
        }
    }

    value parse_array(unsigned depth) {
        ++_p;  // '['
        std::vector<value> items;
        skip_space();
        if (peek() == ']') {
            ++_p;
            return value::make_array(std::move(items));
        }
        for (;;) {
            skip_space();
            items.push_back(parse_value(depth + 1));
            skip_space();
            if (peek() == ',') {
                ++_p;
                continue;
            }
            if (peek() == ']') {
                ++_p;
                return value::make_array(std::move(items));
            }
            fail("expected ',' or ']'");
        }
    }

    std::string parse_number() {
        std::size_t start = _p;
        if (peek() == '-') ++_p;
        if (peek() == '0') {
            ++_p;
        } else if (peek() >= '1' && peek() <= '9') {
            while (peek() >= '0' && peek() <= '9') ++_p;
        } else {
            fail("bad number");
        }
        if (peek() == '.') {
            ++_p;
            if (!(peek() >= '0' && peek() <= '9')) fail("bad number fraction");
            while (peek() >= '0' && peek() <= '9') ++_p;
        }
        if (peek() == 'e' || peek() == 'E') {
            ++_p;
            if (peek() == '+' || peek() == '-') ++_p;
            if (!(peek() >= '0' && peek() <= '9')) fail("bad number exponent");
            while (peek() >= '0' && peek() <= '9') ++_p;
        }
        return std::string(_t.substr(start, _p - start));
    }

    unsigned parse_hex4() {
        if (_t.size() - _p < 4) fail("truncated \\u escape");
        unsigned v = 0;
        for (int i = 0; i < 4; ++i) {
            char c = _t[_p++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
            else fail("bad hex digit in \\u escape");
        }
        return v;
    }

    static void append_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xc0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += char(0xe0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3f));
            out += char(0x80 | (cp & 0x3f));
        } else {
            out += char(0xf0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3f));
            out += char(0x80 | ((cp >> 6) & 0x3f));
            out += char(0x80 | (cp & 0x3f));
        }
    }

    std::string parse_string() {
        ++_p;  // '"'
        std::string out;
        for (;;) {
            if (at_end()) fail("unterminated string");
            char c = _t[_p++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (at_end()) fail("unterminated escape");
            char e = _t[_p++];
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                unsigned cp = parse_hex4();
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (_t.substr(_p, 2) != "\\u") fail("lone high surrogate");
                    _p += 2;
                    unsigned lo = parse_hex4();
                    if (lo < 0xdc00 || lo > 0xdfff) fail("bad low surrogate");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    fail("lone low surrogate");
                }
                append_utf8(out, cp);
                break;
            }
            default: fail("unknown escape");
            }
        }
    }

    std::string_view _t;
    std::size_t _p = 0;
};

}  // namespace

const value* value::find(std::string_view key) const noexcept {
    if (_kind != kind::object) return nullptr;
    for (const auto& [name, v] : _members) {
        if (name == key) return &v;
    }
    return nullptr;
}

bool value::as_int64(std::int64_t& out) const noexcept {
    if (_kind != kind::number && _kind != kind::string) return false;
    const char* b = _text.data();
    const char* e = b + _text.size();
    if (b == e) return false;
    auto [ptr, ec] = std::from_chars(b, e, out);
    return ec == std::errc() && ptr == e;
}

value parse(std::string_view text) { return reader(text).document(); }

void append_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (u < 0x20) {
                out += "\\u00";
                out += hex[u >> 4];
                out += hex[u & 0xf];
            } else {
                out += c;
            }
        }
    }
    out += '"';
}

}  // namespace ioe::json
