// The fault:// device URI: a fault_device (fault_device.hh) around a device
// the registry already has, with one rule, so that a daemon's tests can
// fail, delay or drop a replica's I/O behind its NVMe/TCP share:
//
//   fault:///NAME?inner=DEVICE[&action=fail|delay|drop][&ops=OP[,OP...]]
//                [&delay_ms=N][&lba_begin=N][&lba_end=N][&skip=N][&count=N]
//
// OP is read, write, flush, write_zeroes, unmap or all (default all);
// action defaults to delay; delay_ms (default 0) is the delay; lba_begin /
// lba_end (exclusive) bound the blocks, skip lets the first N matches
// through and count acts on at most N (fault_device.hh, "Rule semantics").
// A fail rule completes with write_fault. Test tooling: a device created so
// serves the inner device's data; destroy it before the inner one.
#pragma once

#include <optional>
#include <string>

#include "storage/fault_device.hh"
#include "storage/uri.hh"

namespace ioe {

// The inner device's name and the rule a fault:// URI describes; nullopt
// with `err` naming the bad part.
struct fault_uri_spec {
    std::string inner;
    fault_rule rule;
};
std::optional<fault_uri_spec> parse_fault_uri(const device_uri& uri, std::string& err);

}  // namespace ioe
