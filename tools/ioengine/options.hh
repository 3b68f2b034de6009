// Options of the ioengine daemon: command-line flags over an optional config
// file (TOML, --config; the keys are the long flags' names, e.g. data-dir,
// see docs/rpc.md "Config file") over the embedded default: 2 reactors (fewer
// when the machine has fewer cores), adaptive polling, no huge pages, data
// directory ./var/ioengine with a 1 GiB file-backed pool `default`, RPC on
// 127.0.0.1:10124 and <data dir>/rpc.sock, NVMe/TCP on 127.0.0.1:4420,
// metrics on 127.0.0.1:9102.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/engine.hh"

namespace ioe::daemon {

struct pool_option {
    std::string name;
    std::string uri;
};

// --vhost-blk NAME=SOCKET,device=DEV[,queues=N][,ro]: a vhost-user-blk
// export created at start (DEV: a device name, or a device URI created
// for it).
struct vhost_blk_option {
    std::string name;
    std::string socket_path;
    std::string device;
    unsigned queues = 1;
    bool read_only = false;
};

// Parses the text of one --vhost-blk; "" or what is wrong with it.
std::string parse_vhost_blk(const std::string& text, vhost_blk_option& out);

struct options {
    engine_config engine;
    std::string log_level = "info";
    std::string node_name;                  // default: the host name
    std::string data_dir = "./var/ioengine";
    std::vector<std::string> rpc;           // default: 127.0.0.1:10124 and unix:<data dir>/rpc.sock
    std::string metrics = "127.0.0.1:9102";  // "off": none
    // The pool `default` on <data dir>/default.img, created the first time
    // (this many MiB; 0: none) and imported after.
    std::uint64_t default_pool_mb = 1024;
    std::vector<pool_option> pools;          // created or imported at start
    // NVMe/TCP: the listener (port 0: any free one); `namespaces` (device
    // URIs) are served in subsystem `nqn` besides the shared replicas.
    std::string nvmf_address = "127.0.0.1";
    std::uint16_t nvmf_port = 4420;
    std::string nvmf_c2h_success = "spec";  // spec | always
    // Controller IDs this engine hands out (docs/ana.md): disjoint per node
    // when several engines serve one NQN as paths of one volume.
    std::uint16_t nvmf_cntlid_first = 1;
    std::uint16_t nvmf_cntlid_last = 0xffef;
    std::string nqn = "nqn.2026-11.io.ioengine:default";
    std::vector<std::string> namespaces;
    std::vector<std::string> allowed_hosts;
    std::vector<vhost_blk_option> vhost_blk;  // exports created at start
    std::string etcd;                        // nexus child health: etcd endpoints; empty: in memory
    std::string config_file;                 // what was read, for the log
    bool rpc_is_default = false;             // set by main() when --rpc was not given
};

// Parses argv (and the --config file). Returns -1 to go on, or an exit code
// (0 after --help, 2 after a bad option, with the message already printed).
int parse_options(int argc, char** argv, options& out);

}  // namespace ioe::daemon
