// Schema <-> structs for the vhost-user-blk exports (convert.hh).
#include "rpc/convert.hh"

namespace ioe::rpc {

namespace {
std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
}  // namespace

void fill(s::VhostSpec::Builder b, const vhost_spec& v) {
    b.setName(v.name);
    b.setSocketPath(v.socket_path);
    b.setDevice(v.device);
    b.setQueues(v.queues);
    b.setReadOnly(v.read_only);
}

void fill(s::VhostExport::Builder b, const vhost_entry& v) {
    fill(b.initSpec(), v.spec);
    b.setConnected(v.connected);
    b.setConnections(v.connections);
    b.setRefused(v.refused);
    b.setProtocolErrors(v.protocol_errors);
    b.setQueuesActive(v.queues_active);
    b.setMappedBytes(v.mapped_bytes);
    b.setReadOps(v.reads);
    b.setWriteOps(v.writes);
    b.setFlushOps(v.flushes);
    b.setDiscardOps(v.discards);
    b.setWriteZeroesOps(v.write_zeroes);
    b.setReadBytes(v.read_bytes);
    b.setWriteBytes(v.write_bytes);
    b.setIoErrors(v.ioerr);
    b.setUnsupported(v.unsupported);
    b.setRingFaults(v.ring_faults);
    b.setBounced(v.bounced);
}

vhost_spec read(s::VhostSpec::Reader r) {
    vhost_spec v;
    v.name = str(r.getName());
    v.socket_path = str(r.getSocketPath());
    v.device = str(r.getDevice());
    v.queues = r.getQueues() ? r.getQueues() : 1;
    v.read_only = r.getReadOnly();
    return v;
}

vhost_entry read(s::VhostExport::Reader r) {
    vhost_entry v;
    v.spec = read(r.getSpec());
    v.connected = r.getConnected();
    v.connections = r.getConnections();
    v.refused = r.getRefused();
    v.protocol_errors = r.getProtocolErrors();
    v.queues_active = r.getQueuesActive();
    v.mapped_bytes = r.getMappedBytes();
    v.reads = r.getReadOps();
    v.writes = r.getWriteOps();
    v.flushes = r.getFlushOps();
    v.discards = r.getDiscardOps();
    v.write_zeroes = r.getWriteZeroesOps();
    v.read_bytes = r.getReadBytes();
    v.write_bytes = r.getWriteBytes();
    v.ioerr = r.getIoErrors();
    v.unsupported = r.getUnsupported();
    v.ring_faults = r.getRingFaults();
    v.bounced = r.getBounced();
    return v;
}

}  // namespace ioe::rpc
