// Device URIs, as Mayastor spells them:
//   malloc:///NAME?size_mb=N[&blk_size=512|4096]
//   null:///NAME?size_mb=N[&blk_size=512|4096]
//   uring:///PATH[?blk_size=512|4096]        (regular file or block device)
//   bdev:///NAME                              (an existing device or replica)
//   nvmf://HOST:PORT/NQN, pcie:///BDF         (later issues)
// The parser checks syntax only; each backend checks its own parameters with
// the helpers below, and every error names the URI and the part that is wrong.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ioe {

struct device_uri {
    std::string text;    // as given
    std::string scheme;  // lower case
    std::string host;    // empty for local schemes
    std::uint16_t port = 0;
    std::string path;    // percent-decoded, without the leading '/' for names
    std::vector<std::pair<std::string, std::string>> params;

    std::optional<std::string> param(std::string_view key) const;
    // "device URI 'malloc:///m0?size_mb=x': " + what
    std::string error(std::string_view what) const;
};

// Parses `text`; on failure returns nullopt and sets `err` to a message that
// names the URI and the bad part.
std::optional<device_uri> parse_device_uri(std::string_view text, std::string& err);

// Checks that every parameter of `uri` is one of `known`.
bool check_params(const device_uri& uri, std::initializer_list<std::string_view> known, std::string& err);

// An unsigned parameter: `fallback` when absent (nullopt: required); sets err
// when it is not a number.
std::optional<std::uint64_t> uint_param(const device_uri& uri, std::string_view key,
                                        std::optional<std::uint64_t> fallback, std::string& err);

// blk_size: 512 or 4096 (default `fallback`).
std::optional<std::uint32_t> block_size_param(const device_uri& uri, std::uint32_t fallback, std::string& err);

}  // namespace ioe
