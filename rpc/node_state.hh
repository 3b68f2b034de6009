// The engine's own state, kept in `<data dir>/state` so that it survives a
// restart: the pools it created or imported (name, device URI) and the
// replicas it shares (name, allowed hosts), its nexuses and its
// vhost-user-blk exports (name, socket, device, queues, read-only). Replicas themselves live in their
// pool's metadata. Format (docs/rpc.md "State file"): text lines, fields
// separated by one space and percent-encoded, a version line first and an
// "end" line last (a file without it is refused as truncated).
//
// save_state_file() writes a temporary file, fsyncs it, renames it over the
// old one and fsyncs the directory: a crash leaves either the old or the new
// state, never a mix. It blocks: call it off the reactors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ioe::rpc {

struct pool_record {
    std::string name;
    std::string uri;
    bool operator==(const pool_record&) const = default;
};

struct share_record {
    std::string name;  // a replica
    std::vector<std::string> allowed_hosts;
    std::string nqn;   // the subsystem NQN the caller chose; empty: the default
    bool operator==(const share_record&) const = default;
};

// A nexus to create again at start (over its health record, so that only
// the children recorded healthy come back online).
struct nexus_record {
    std::string name;
    std::string uuid;
    std::string health_key;
    std::uint32_t segment_bytes = 0;
    std::uint32_t rebuild_parallel = 0;
    bool verify = false;
    bool published = false;
    std::vector<std::string> children;       // URIs, 1 to 8
    std::vector<std::string> allowed_hosts;  // when published
    std::string nqn;                         // when published under a chosen NQN; empty: the default
    // When published: its ANA state here as `nexus ana` set it
    // (non-optimized or inaccessible); empty: optimized.
    std::string ana;
    bool operator==(const nexus_record&) const = default;
};

// A vhost-user-blk export to start again (docs/vhost.md): the device by
// name, served on a unix socket.
struct vhost_record {
    std::string name;
    std::string socket_path;
    std::string device;
    std::uint32_t queues = 1;
    bool read_only = false;
    bool operator==(const vhost_record&) const = default;
};

// A standby path (docs/ana.md): a volume's subsystem published here in ANA
// state inaccessible until a nexus of it takes its place.
struct standby_record {
    std::string nqn;
    std::string uuid;
    std::uint32_t block_size = 512;
    std::uint64_t block_count = 0;
    std::vector<std::string> allowed_hosts;
    std::string forward;  // a forwarding path's device URI (ANA non-optimized); empty: a standby
    bool operator==(const standby_record&) const = default;
};

struct node_state {
    std::vector<pool_record> pools;
    std::vector<share_record> shares;
    std::vector<nexus_record> nexuses;
    std::vector<vhost_record> vhost_exports;
    std::vector<standby_record> standbys;
    bool operator==(const node_state&) const = default;
};

std::string encode_state(const node_state& s);
// nullopt (and `err` says where) when the text is not a whole, valid state.
std::optional<node_state> decode_state(std::string_view text, std::string& err);

// Blocking file I/O (control thread or start-up only). Throws
// std::runtime_error naming the path and the OS error.
void save_state_file(const std::string& path, const node_state& s);
// nullopt when the file does not exist; throws when it cannot be read or
// does not decode.
std::optional<node_state> load_state_file(const std::string& path);

}  // namespace ioe::rpc
