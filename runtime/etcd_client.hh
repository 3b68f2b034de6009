// An asynchronous client of etcd 3.4 through its v3 JSON gateway (HTTP/1.1
// POSTs, Boost.Beast), for the control plane (the nexus's child health).
//
// Threads: call it from any shard; the HTTP exchange runs on the control
// thread's io_context (asynchronously: neither a reactor nor the control
// thread ever blocks), and the result comes back to the calling shard,
// whose future resolves there. One TCP connection per request (loopback or
// LAN, a few requests per child failure: simplicity over reuse).
//
// Endpoints: tried in turn, starting with the one that answered last. The
// client moves to the next endpoint when one cannot be reached (connection
// refused, connect timed out, or the server said gRPC Unavailable before
// doing anything). Once a compare-and-put has been sent, it is never sent
// again elsewhere: if its answer is lost, the call fails with
// etcd_error::kind::unavailable ("outcome unknown") and the caller decides.
// get, put and remove are idempotent and do move on.
//
// Time: `request_timeout` bounds a whole call (every endpoint it tries);
// `connect_timeout` bounds one connect. A call past its deadline fails with
// etcd_error::kind::timeout.
//
// Lifetime: the client may be destroyed with calls in flight (they finish,
// bounded by their timeout, and still resolve their futures). A call still
// in flight when the engine stops never resolves.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/future.hh"

namespace ioe {

class engine;
class control_thread;

struct etcd_config {
    // "host:port" or "http://host:port" (TLS is not supported).
    std::vector<std::string> endpoints;
    std::chrono::milliseconds request_timeout{5000};
    std::chrono::milliseconds connect_timeout{1000};

    // Splits a flag value "h1:2379,http://h2:2379" (throws std::invalid_argument).
    static std::vector<std::string> parse_endpoints(std::string_view comma_separated);
};

class etcd_error : public std::runtime_error {
public:
    enum class kind {
        unavailable,   // no endpoint could be reached, or the answer was lost
        timeout,       // request_timeout passed
        bad_response,  // the server answered something we do not accept
    };
    etcd_error(kind k, std::string endpoint, std::string key, const std::string& message);

    kind error_kind() const noexcept { return _kind; }
    const std::string& endpoint() const noexcept { return _endpoint; }
    const std::string& key() const noexcept { return _key; }

private:
    kind _kind;
    std::string _endpoint;
    std::string _key;
};

// A value and the revision that last modified it.
struct etcd_kv {
    std::string value;
    std::int64_t mod_revision = 0;
};

struct etcd_cas_result {
    bool succeeded = false;
    std::int64_t mod_revision = 0;    // on success: the key's new mod_revision
    std::optional<etcd_kv> current;  // on failure: the key now (nullopt: absent)
};

class etcd_client {
public:
    // Throws std::invalid_argument for an empty or malformed endpoint list.
    etcd_client(engine& e, control_thread& control, etcd_config cfg);
    ~etcd_client();
    etcd_client(const etcd_client&) = delete;
    etcd_client& operator=(const etcd_client&) = delete;

    // On a shard. Each fails with etcd_error.
    future<std::optional<etcd_kv>> get(std::string key);
    // Returns the key's new mod_revision.
    future<std::int64_t> put(std::string key, std::string value);
    // Puts only if the key's mod_revision is `expected_mod_revision` (0: only
    // if the key does not exist). A mismatch is not an error: the result
    // says so and carries what is there now.
    future<etcd_cas_result> compare_and_put(std::string key, std::string value, std::int64_t expected_mod_revision);
    // Returns whether a key was deleted.
    future<bool> remove(std::string key);

    const etcd_config& config() const noexcept;

    struct impl;

private:
    std::shared_ptr<impl> _impl;
};

}  // namespace ioe
