// Where the nexus child-health records live for an engine process: etcd
// (endpoints from --etcd / embedded_options) or, without endpoints, a store
// in memory that does not survive the process (logged loudly: a nexus then
// cannot tell after a crash which children were in sync).
#pragma once

#include <memory>
#include <string>

#include "runtime/control.hh"
#include "runtime/engine.hh"
#include "runtime/etcd_client.hh"
#include "storage/nexus/child_health.hh"

namespace ioe::rpc {

struct health_backend {
    std::unique_ptr<etcd_client> etcd;  // null: in memory
    std::unique_ptr<child_health_store> store;
    std::string description;  // "etcd h1:2379,h2:2379" or "memory"

    // `endpoints`: "h1:2379,http://h2:2379" or empty. Throws
    // std::invalid_argument naming a malformed endpoint.
    static health_backend make(engine& e, control_thread& control, const std::string& endpoints);
};

}  // namespace ioe::rpc
