// health_backend (health_backend.hh): etcd when endpoints are given, else memory.
#include "rpc/health_backend.hh"

#include "runtime/log.hh"
#include "storage/nexus/etcd_health_store.hh"
#include "storage/nexus/memory_health_store.hh"

namespace ioe::rpc {

health_backend health_backend::make(engine& e, control_thread& control, const std::string& endpoints) {
    health_backend b;
    if (endpoints.empty()) {
        b.store = std::make_unique<memory_health_store>();
        b.description = "memory";
        log::warn("nexus child health is kept in memory: after a crash a nexus cannot tell which children were in "
                  "sync (give etcd endpoints with --etcd HOST:PORT)");
        return b;
    }
    etcd_config cfg;
    cfg.endpoints = etcd_config::parse_endpoints(endpoints);
    b.etcd = std::make_unique<etcd_client>(e, control, cfg);
    b.store = std::make_unique<etcd_health_store>(*b.etcd);
    b.description = "etcd " + endpoints;
    log::info("nexus child health in etcd at {}", endpoints);
    return b;
}

}  // namespace ioe::rpc
