# The control-plane RPC of ioengine (docs/rpc.md).
#
# Versioning: `apiVersion` below is reported by Node.info. Fields and methods
# are only ever added (new ordinals at the end), never renumbered or removed;
# a change that breaks a client bumps apiVersion.
#
# Errors: a call that fails raises a Cap'n Proto exception whose description
# is "<code>: <message>", where <code> is one of the ErrorCode names below in
# snake_case (not_found, already_exists, invalid_argument, busy, no_space,
# io_error, unavailable, internal) and <message> says what to do about it.
@0xc6f4b5e1a3d29f07;

$import "/capnp/c++.capnp".namespace("ioe::rpc::schema");

const apiVersion :UInt32 = 1;

enum ErrorCode {
  notFound @0;
  alreadyExists @1;
  invalidArgument @2;
  busy @3;
  noSpace @4;
  ioError @5;
  unavailable @6;
  internal @7;
}

# The bootstrap capability: one getter per service.
interface Engine {
  node @0 () -> (node :Node);
  devices @1 () -> (devices :Devices);
  pools @2 () -> (pools :Pools);
  replicas @3 () -> (replicas :Replicas);
  nvmf @4 () -> (nvmf :Nvmf);
  stats @5 () -> (stats :Stats);
  nexus @6 () -> (nexus :Nexus);
  rebuild @7 () -> (rebuild :Rebuild);
  vhost @8 () -> (vhost :Vhost);
}

struct NodeInfo {
  name @0 :Text;
  version @1 :Text;          # the engine's version
  apiVersion @2 :UInt32;     # this schema's apiVersion
  shards @3 :UInt32;
  cores @4 :List(UInt32);
  pollMode @5 :Text;         # busy | adaptive | event
  memory @6 :Text;           # where the DMA pool comes from
  features @7 :List(Text);   # device schemes and services this engine has
  dataDir @8 :Text;
}

interface Node {
  info @0 () -> (info :NodeInfo);
}

struct DeviceInfo {
  name @0 :Text;
  product @1 :Text;          # malloc, null, uring, replica, nvmf, ...
  uri @2 :Text;              # empty for devices someone else owns (replicas)
  uuid @3 :Text;
  blockSize @4 :UInt32;
  blockCount @5 :UInt64;
  ownerShard @6 :UInt32;
  shareNqn @7 :Text;         # empty: not shared
}

struct ShareInfo {
  nqn @0 :Text;
  address @1 :Text;          # the NVMe/TCP listener to connect to
  port @2 :UInt16;
  allowedHosts @3 :List(Text); # empty: any host
}

interface Devices {
  create @0 (uri :Text) -> (device :DeviceInfo);
  destroy @1 (name :Text) -> ();
  list @2 () -> (devices :List(DeviceInfo));
  share @3 (name :Text, allowedHosts :List(Text), nqn :Text) -> (share :ShareInfo);  # nqn "": nqn.2019-05.io.ioengine:<name>
  unshare @4 (name :Text) -> ();
}

struct PoolInfo {
  name @0 :Text;
  uuid @1 :Text;
  device @2 :Text;           # the device URI the pool lives on
  clusterSize @3 :UInt32;
  capacityBytes @4 :UInt64;
  usedBytes @5 :UInt64;
  committedBytes @6 :UInt64;
  replicaCount @7 :UInt32;
}

interface Pools {
  create @0 (name :Text, uri :Text, clusterSize :UInt32) -> (pool :PoolInfo);  # clusterSize 0: default
  import @1 (uri :Text) -> (pool :PoolInfo);
  export @2 (name :Text) -> ();
  destroy @3 (name :Text) -> ();
  grow @4 (name :Text) -> (pool :PoolInfo);
  list @5 () -> (pools :List(PoolInfo));
}

struct ReplicaInfo {
  name @0 :Text;
  uuid @1 :Text;
  pool @2 :Text;
  sizeBytes @3 :UInt64;
  thin @4 :Bool;
  allocatedBytes @5 :UInt64;
  shareNqn @6 :Text;         # empty: not shared
  allowedHosts @7 :List(Text);
  # Snapshots and clones (docs/pool-format.md, version 2) and accounting:
  referencedBytes @8 :UInt64;     # data it reads through its ancestors
  freedByDeleteBytes @9 :UInt64;  # what destroying it now frees (0: it has children)
  snapshot @10 :Bool;             # read-only point-in-time snapshot
  discarded @11 :Bool;            # destroyed, waits for its last clone
  parent @12 :Text;               # the parent snapshot, empty: none
  createdUnixNs @13 :UInt64;      # snapshots and clones
  txid @14 :Text;                 # the caller's transaction id (snapshots)
}

interface Replicas {
  create @0 (pool :Text, name :Text, sizeBytes :UInt64, thin :Bool) -> (replica :ReplicaInfo);
  destroy @1 (name :Text) -> ();
  resize @2 (name :Text, sizeBytes :UInt64) -> (replica :ReplicaInfo);
  list @3 (pool :Text) -> (replicas :List(ReplicaInfo));  # pool "": every pool
  share @4 (name :Text, allowedHosts :List(Text)) -> (share :ShareInfo);
  unshare @5 (name :Text) -> ();
  # A read-only snapshot of a replica or clone; a retry with the same txid
  # answers the snapshot it took (idempotent). uuid "": a random one.
  snapshot @6 (name :Text, snapshotName :Text, txid :Text, uuid :Text) -> (replica :ReplicaInfo);
  # A writable thin clone of a snapshot, in the snapshot's pool.
  clone @7 (snapshot :Text, name :Text, uuid :Text) -> (replica :ReplicaInfo);
  # Returns a replica or clone to an ancestor snapshot's content, in place.
  restore @8 (name :Text, snapshot :Text) -> (replica :ReplicaInfo);
  # Makes a clone independent of its snapshot (copies what it reads through it).
  inflate @9 (name :Text) -> (replica :ReplicaInfo);
}

struct Namespace {
  nsid @0 :UInt32;
  device @1 :Text;
  blockSize @2 :UInt32;
  blockCount @3 :UInt64;
  ana @4 :Text;  # its ANA state through this engine (docs/ana.md)
}

struct Subsystem {
  nqn @0 :Text;
  serial @1 :Text;
  model @2 :Text;
  namespaces @3 :List(Namespace);
  allowedHosts @4 :List(Text);
}

struct ConnectedHost {
  cntlid @0 :UInt16;
  subnqn @1 :Text;
  hostnqn @2 :Text;
  ioQueues @3 :UInt32;
}

struct Listener {
  transport @0 :Text;        # tcp
  address @1 :Text;
  port @2 :UInt16;
}

interface Nvmf {
  listeners @0 () -> (listeners :List(Listener));
  subsystems @1 () -> (subsystems :List(Subsystem));
  hosts @2 () -> (hosts :List(ConnectedHost));
}

enum StatsKind {
  device @0;                 # any device by name (replicas included)
  replica @1;
  nexus @2;
}

struct IoStats {
  name @0 :Text;
  kind @1 :StatsKind;
  readOps @2 :UInt64;
  writeOps @3 :UInt64;
  unmapOps @4 :UInt64;
  flushOps @5 :UInt64;
  writeZeroesOps @6 :UInt64;
  readBytes @7 :UInt64;
  writeBytes @8 :UInt64;
  errors @9 :UInt64;
  latencySumNs @10 :UInt64;  # over every completed operation since the last reset
  latencyMinNs @11 :UInt64;  # min and max: since the device opened (0: no operation yet)
  latencyMaxNs @12 :UInt64;
}

interface Stats {
  get @0 (kind :StatsKind, name :Text) -> (stats :List(IoStats));  # name "": every one of that kind
  reset @1 (kind :StatsKind, name :Text) -> ();
}

# ---- the nexus (docs/nexus.md) ----------------------------------------------
# States and reasons are the words docs/nexus.md uses: nexus online |
# degraded | faulted | shutting-down | shutdown; child online | degraded |
# faulted; reason none | io-error | timeout | no-space | out-of-sync |
# by-client | cannot-open | rebuild-failed; rebuild none | running | paused |
# stopped | completed | failed.

struct NexusChild {
  uri @0 :Text;
  device @1 :Text;           # the block device's name (empty: not opened)
  uuid @2 :Text;
  state @3 :Text;
  reason @4 :Text;
  blockCount @5 :UInt64;
}

struct RebuildInfo {
  child @0 :Text;            # URI of the child being rebuilt
  source @1 :Text;           # URI of the child copied from
  state @2 :Text;
  partial @3 :Bool;          # only the segments written while it was away
  blocksTotal @4 :UInt64;
  blocksDone @5 :UInt64;
  blocksPerSecond @6 :Float64;
  startedUnixNs @7 :Int64;
  endedUnixNs @8 :Int64;     # 0: not ended
  error @9 :Text;
}

struct NexusInfo {
  name @0 :Text;
  uuid @1 :Text;
  state @2 :Text;
  blockSize @3 :UInt32;
  blockCount @4 :UInt64;
  children @5 :List(NexusChild);
  rebuilds @6 :List(RebuildInfo);  # running or paused
  healthKey @7 :Text;        # the child-health record's key
  shareNqn @8 :Text;         # empty: not published
  allowedHosts @9 :List(Text);
  epoch @10 :UInt64;         # this incarnation's (health record), 0: none
  snapshotsTaken @11 :UInt32;  # nexus snapshots of this incarnation (complete or partial)
  snapshotHistoryMissing @12 :List(Text);  # child URIs lacking part of that history (docs/nexus.md)
}

struct NexusSnapshotChild {
  uri @0 :Text;
  ok @1 :Bool;
  existed @2 :Bool;          # a retry: the child had this txid's snapshot already
  error @3 :Text;            # why it failed (empty when ok)
}

struct NexusSnapshotResult {
  name @0 :Text;
  txid @1 :Text;
  complete @2 :Bool;         # every online child has it; else partial (see children)
  pauseMs @3 :Float64;       # I/O paused, from the request to the resume
  children @4 :List(NexusSnapshotChild);
}

struct NexusSpec {
  name @0 :Text;
  uuid @1 :Text;             # empty: a new random one
  children @2 :List(Text);   # bdev:///NAME (local) or nvmf://HOST:PORT/NQN (remote), 1 to 8
  healthKey @3 :Text;        # empty: /ioengine/nexus/<uuid>
  segmentBytes @4 :UInt32;   # rebuild and dirty-log unit; 0: default (256 KiB)
  rebuildParallel @5 :UInt32;  # segments copied at once; 0: default (16)
  verify @6 :Bool;           # rebuilds re-read and compare each segment
  takeover @7 :NexusTakeover;  # set: take the nexus over and publish it (docs/nexus.md, Takeover)
}

# nexus create --takeover: the health record must exist (uuid or healthKey
# name it); the new incarnation takes its next epoch, fences the old one on
# every child it claims, and is published in the same call.
struct NexusTakeover {
  nqn @0 :Text;              # "": nqn.2019-05.io.ioengine:<name> (give the old node's NQN)
  allowedHosts @1 :List(Text);  # none: any host
}

enum ChildAction {
  add @0;                    # add and rebuild (full)
  addInSync @1;              # add as online: the caller knows it is in sync
  remove @2;
  online @3;                 # bring a faulted child back (partial rebuild when its writes were logged)
  offline @4;                # fault it by request, logging its writes
  fault @5;                  # fault it by request, no log: online rebuilds it in full
}

interface Nexus {
  create @0 (spec :NexusSpec) -> (nexus :NexusInfo);
  destroy @1 (name :Text) -> ();             # unpublish, shut down, close (the health record stays)
  publish @2 (name :Text, allowedHosts :List(Text), nqn :Text) -> (share :ShareInfo);  # nqn "": the default
  unpublish @3 (name :Text) -> ();
  shutdown @4 (name :Text) -> ();            # drain, record a clean shutdown; I/O fails afterwards
  list @5 (name :Text) -> (nexuses :List(NexusInfo));  # name "": every nexus
  child @6 (name :Text, uri :Text, action :ChildAction) -> (nexus :NexusInfo);
  # Pauses, snapshots every online child under one txid (empty: a random
  # one; a retry with the same txid is success), resumes (docs/nexus.md).
  snapshot @7 (name :Text, snapshotName :Text, txid :Text) -> (result :NexusSnapshotResult);
  # A standby path (docs/ana.md): subsystem nqn published here, ANA
  # inaccessible, with a stand-in namespace of volume uuid (sizeBytes,
  # blockSize 0: 512), until a nexus published here under nqn takes it over.
  # forward (a device URI, e.g. nvmf:// to the nexus's node): a forwarding
  # path instead, ANA non-optimized, its I/O sent on to that device.
  standby @8 (nqn :Text, uuid :Text, sizeBytes :UInt64, blockSize :UInt32, allowedHosts :List(Text), forward :Text) -> (share :ShareInfo);
  standbyRemove @9 (nqn :Text) -> ();
  # The ANA state a published nexus is served in here: "optimized",
  # "non-optimized" or "inaccessible".
  setAna @10 (name :Text, state :Text) -> ();
}

enum RebuildAction {
  start @0;
  stop @1;
  pause @2;
  resume @3;
}

interface Rebuild {
  control @0 (name :Text, child :Text, action :RebuildAction) -> ();
  state @1 (name :Text, child :Text) -> (state :Text);
  stats @2 (name :Text, child :Text) -> (rebuilds :List(RebuildInfo));  # child "": every running one
  history @3 (name :Text) -> (rebuilds :List(RebuildInfo));
}

# ---- vhost-user-blk exports (docs/vhost.md) ----------------------------------
# A registered device (device, replica or nexus, by name) served to a local
# VM (QEMU vhost-user-blk-pci) on a unix socket. Kept in the state file.

struct VhostSpec {
  name @0 :Text;
  socketPath @1 :Text;       # the unix socket to create (must not exist)
  device @2 :Text;           # a device, replica or nexus by name
  queues @3 :UInt32;         # 0: 1
  readOnly @4 :Bool;
}

struct VhostExport {
  spec @0 :VhostSpec;
  connected @1 :Bool;        # a front-end is connected now
  connections @2 :UInt64;    # front-ends accepted so far
  refused @3 :UInt64;        # second front-ends turned away
  protocolErrors @4 :UInt64;
  queuesActive @5 :UInt32;
  mappedBytes @6 :UInt64;    # guest memory mapped now
  readOps @7 :UInt64;
  writeOps @8 :UInt64;
  flushOps @9 :UInt64;
  discardOps @10 :UInt64;
  writeZeroesOps @11 :UInt64;
  readBytes @12 :UInt64;
  writeBytes @13 :UInt64;
  ioErrors @14 :UInt64;      # requests answered IOERR
  unsupported @15 :UInt64;   # requests answered UNSUPP
  ringFaults @16 :UInt64;    # queues marked broken (a bad ring from the guest)
  bounced @17 :UInt64;       # requests copied through a DMA buffer (misaligned guest buffers)
}

interface Vhost {
  create @0 (spec :VhostSpec) -> (info :VhostExport);
  destroy @1 (name :Text, force :Bool) -> ();   # busy while a front-end is connected, unless force
  list @2 (name :Text) -> (exports :List(VhostExport));  # name "": every export
}
