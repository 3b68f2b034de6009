// Gathers the figures /metrics shows (metrics.hh) and renders them in the
// Prometheus text format. Runs on shard 0; hops to each shard to read what
// that shard writes.
#pragma once

#include <string>

#include "runtime/future.hh"

namespace ioe::rpc {

class node_service;

future<std::string> collect_metrics(node_service& svc);

}  // namespace ioe::rpc
