// ioengine-ctl's output: aligned tables for people and JSON for programs
// (--json), built from the same rows so that both always show the same
// fields.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace ioe::ctl {

// A JSON value, just enough for our output: string, number, bool, array,
// object (keys in insertion order).
class json {
public:
    json() = default;  // null
    static json str(std::string s);
    static json num(std::uint64_t n);
    static json real(double d);  // three decimals
    static json boolean(bool b);
    static json array();
    static json object();
    template <typename T>
    static json strings(const std::vector<T>& v) {
        json a = array();
        for (const auto& s : v) a.push(str(s));
        return a;
    }
    json& push(json v);
    json& set(std::string key, json v);
    std::string dump() const;

private:
    enum class kind { null, string, number, real, boolean, array, object } _k = kind::null;
    std::string _s;
    std::uint64_t _n = 0;
    bool _b = false;
    std::vector<json> _items;
    std::vector<std::pair<std::string, json>> _fields;
};

struct table {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
    void print(std::ostream& out) const;
};

// "1.5 GiB", "64 MiB", "512 B".
std::string human_bytes(std::uint64_t n);
// "64MiB", "1G", "4096", "2TiB" → bytes; false on anything else.
bool parse_size(const std::string& text, std::uint64_t& bytes);

}  // namespace ioe::ctl
