// The messages of etcd 3.4's v3 JSON gateway (grpc-gateway over HTTP/1.1),
// without any transport: request bodies for /v3/kv/range, /v3/kv/put,
// /v3/kv/txn and /v3/kv/deleterange, and parsers for their responses and for
// the gateway's error body. Keys and values travel base64-encoded; int64
// fields (revisions, counts) arrive as decimal strings; fields at their
// default value (false, 0, empty) are left out of responses.
//
// The parsers read bytes from the network: they throw etcd::bad_message on
// anything unexpected and never trust a length or a count they were given
// (fuzzed by tests/fuzz/etcd_response_fuzz.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ioe::etcd {

struct bad_message : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string base64_encode(std::string_view in);
// Strict standard base64 with padding; false on anything else.
bool base64_decode(std::string_view in, std::string& out);

// One key as the server returns it.
struct key_value {
    std::string key;
    std::string value;
    std::int64_t create_revision = 0;
    std::int64_t mod_revision = 0;
    std::int64_t version = 0;
};

// The paths of the gateway (etcd 3.4 serves /v3/; 3.3 used /v3beta/).
inline constexpr std::string_view range_path = "/v3/kv/range";
inline constexpr std::string_view put_path = "/v3/kv/put";
inline constexpr std::string_view txn_path = "/v3/kv/txn";
inline constexpr std::string_view delete_path = "/v3/kv/deleterange";

std::string range_request(std::string_view key);
std::string put_request(std::string_view key, std::string_view value);
// Puts if the key's mod_revision equals `expected_mod_revision` (0: the key
// does not exist); otherwise reads the key, so the caller sees what is there.
std::string compare_and_put_request(std::string_view key, std::string_view value,
                                    std::int64_t expected_mod_revision);
std::string delete_request(std::string_view key);

struct range_response {
    std::int64_t revision = 0;  // the store's revision when it was read
    std::optional<key_value> kv;
};
struct put_response {
    std::int64_t revision = 0;  // the key's new mod_revision
};
struct txn_response {
    std::int64_t revision = 0;  // on success, the key's new mod_revision
    bool succeeded = false;
    std::optional<key_value> current;  // on failure: the key now (nullopt: absent)
};
struct delete_response {
    std::int64_t revision = 0;
    std::int64_t deleted = 0;
};
// The body of a non-200 answer: {"error": ..., "code": <gRPC code>, "message": ...}.
struct error_response {
    int code = -1;  // gRPC status code; -1 when the body said none
    std::string message;
};
inline constexpr int grpc_unavailable = 14;

// `key` is the key that was asked for: a response about another key is bad.
range_response parse_range_response(std::string_view body, std::string_view key);
put_response parse_put_response(std::string_view body);
txn_response parse_compare_and_put_response(std::string_view body, std::string_view key);
delete_response parse_delete_response(std::string_view body);
// Never throws: a body that is not the gateway's error JSON becomes the
// message (shortened, non-printable bytes replaced).
error_response parse_error_response(std::string_view body) noexcept;

}  // namespace ioe::etcd
