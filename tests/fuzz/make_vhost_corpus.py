#!/usr/bin/env python3
# Generates the seed corpora of tests/fuzz/vhost_chain_fuzz.cc and
# tests/fuzz/vhost_message_fuzz.cc (layouts in the header comment of each):
# well-formed virtio-blk requests on a split ring (header split over
# descriptors, an indirect table crossing two regions, discard segments,
# several heads at once, write zeroes with 4 KiB blocks) and one
# well-formed vhost-user message of each request the back-end serves.
# Written to tests/fuzz/corpus/vhost_chain/ and .../vhost_message/.
# Deterministic: rerunning it rewrites the same files.
#
#   python3 tests/fuzz/make_vhost_corpus.py [corpus dir]
import os
import struct
import sys

NEXT, WRITE, INDIRECT = 1, 2, 4
EVENT_IDX, INDIRECT_DESC, READ_ONLY, BLK_4K, BLK_FEATURES = 8, 16, 32, 64, 128


class Guest:
    """Guest memory from gpa 0 as the chain fuzzer loads it (A then B are
    contiguous in the input; the ring is at 0, used ring at 0x1000)."""

    def __init__(self, size_log2=3):
        self.size = 1 << size_log2
        self.mem = bytearray()
        self.heads = []

    def put(self, gpa, data):
        if len(self.mem) < gpa + len(data):
            self.mem.extend(b"\0" * (gpa + len(data) - len(self.mem)))
        self.mem[gpa:gpa + len(data)] = data

    def desc(self, i, addr, length, flags, nxt=0, table=0):
        self.put(table + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def header(self, gpa, rtype, sector):
        self.put(gpa, struct.pack("<IIQ", rtype, 0, sector))

    def input(self, opt, base=0):
        avail = 16 * self.size
        self.put(avail, struct.pack("<HH", 0, (base + len(self.heads)) & 0xFFFF) + b"\0\0" * (self.size + 1))
        for k, head in enumerate(self.heads):  # slot of index i: i mod size
            self.put(avail + 4 + 2 * ((base + k) % self.size), struct.pack("<H", head))
        self.put(0x1000 + 4 + 8 * self.size, b"\0\0")  # avail_event, so the used ring is in the input
        return bytes([opt]) + struct.pack("<H", base) + bytes(self.mem)


def chain_seeds():
    seeds = {}
    g = Guest()
    g.header(0x2000, 0, 8)  # read, header in 5 + 11 bytes
    g.desc(0, 0x2000, 5, NEXT, 1)
    g.desc(1, 0x2005, 11, NEXT, 2)
    g.desc(2, 0x3000, 1024, WRITE | NEXT, 3)
    g.desc(3, 0x4000, 1, WRITE)
    g.heads = [0]
    seeds["read_split_header"] = g.input(3 | EVENT_IDX | INDIRECT_DESC | BLK_FEATURES)

    g = Guest()
    g.header(0x7FF8, 1, 0)  # write through an indirect table, header crossing A -> B
    g.desc(0, 0x7FF8, 16, NEXT, 1, table=0x5000)
    g.desc(1, 0x9000, 512, NEXT, 2, table=0x5000)
    g.desc(2, 0x6000, 1, WRITE, table=0x5000)
    g.desc(0, 0x5000, 48, INDIRECT)
    g.heads = [0]
    seeds["write_indirect_crossing"] = g.input(3 | INDIRECT_DESC | BLK_FEATURES)

    g = Guest()
    g.header(0x2000, 11, 0)  # discard, two segments cut 20 + 12
    g.put(0x2100, struct.pack("<QII", 0, 8, 0) + struct.pack("<QII", 64, 16, 0))
    g.desc(0, 0x2000, 16, NEXT, 1)
    g.desc(1, 0x2100, 20, NEXT, 2)
    g.desc(2, 0x2114, 12, NEXT, 3)
    g.desc(3, 0x4000, 1, WRITE)
    g.heads = [0]
    seeds["discard_two_segments"] = g.input(3 | EVENT_IDX | BLK_FEATURES)

    g = Guest()
    g.header(0x2000, 0, 0)  # read, flush and get-id at once
    g.header(0x2010, 4, 0)
    g.header(0x2020, 8, 0)
    g.desc(0, 0x2000, 16, NEXT, 1)
    g.desc(1, 0x3000, 512, WRITE | NEXT, 2)
    g.desc(2, 0x4000, 1, WRITE)
    g.desc(3, 0x2010, 16, NEXT, 4)
    g.desc(4, 0x4001, 1, WRITE)
    g.desc(5, 0x2020, 16, NEXT, 6)
    g.desc(6, 0x3400, 21, WRITE)
    g.heads = [0, 3, 5]
    seeds["three_heads"] = g.input(3 | INDIRECT_DESC | BLK_FEATURES, base=0xFFFE)

    g = Guest()
    g.header(0x2000, 13, 0)  # write zeroes with unmap, 4 KiB blocks
    g.put(0x2100, struct.pack("<QII", 8, 8, 1))
    g.desc(0, 0x2000, 16, NEXT, 1)
    g.desc(1, 0x2100, 16, NEXT, 2)
    g.desc(2, 0x4000, 1, WRITE)
    g.heads = [0]
    seeds["write_zeroes_4k"] = g.input(3 | BLK_4K | BLK_FEATURES)
    return seeds


def msg(request, payload=b"", flags=1, nfds=0, queues=2):
    return bytes([nfds | ((queues - 1) << 4)]) + struct.pack("<III", request, flags, len(payload)) + payload


def message_seeds():
    region = lambda i: struct.pack("<QQQQ", i * 0x100000, 0x100000, 0x7F0000000000 + i * 0x100000, 0)
    return {
        "get_features": msg(1),
        "set_features": msg(2, struct.pack("<Q", (1 << 32) | (1 << 30) | (1 << 29) | (1 << 28))),
        "set_owner": msg(3),
        "set_mem_table": msg(5, struct.pack("<II", 2, 0) + region(0) + region(1), nfds=2),
        "set_vring_num": msg(8, struct.pack("<II", 1, 128)),
        "set_vring_addr": msg(9, struct.pack("<IIQQQQ", 1, 0, 0x7F0000001000, 0x7F0000003000, 0x7F0000002000, 0)),
        "set_vring_base": msg(10, struct.pack("<II", 0, 0)),
        "get_vring_base": msg(11, struct.pack("<II", 1, 0)),
        "set_vring_kick": msg(12, struct.pack("<Q", 1), nfds=1),
        "set_vring_call_nofd": msg(13, struct.pack("<Q", 0x100)),
        "get_protocol_features": msg(15),
        "set_protocol_features": msg(16, struct.pack("<Q", 0x1209), flags=1 | 8),
        "get_queue_num": msg(17),
        "set_vring_enable": msg(18, struct.pack("<II", 1, 1)),
        "get_config": msg(24, struct.pack("<III", 0, 60, 0) + b"\0" * 60),
        "set_config": msg(25, struct.pack("<III", 32, 1, 0) + b"\1"),
        "get_inflight_fd": msg(31, struct.pack("<QQHH4x", 0, 0, 2, 128)),
        "set_inflight_fd": msg(32, struct.pack("<QQHH4x", 8192, 0, 2, 128), nfds=1),
        "get_max_mem_slots": msg(36),
        "add_mem_reg": msg(37, struct.pack("<Q", 0) + region(2), nfds=1),
        "rem_mem_reg": msg(38, struct.pack("<Q", 0) + region(2)),
    }


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    for name, seeds in (("vhost_chain", chain_seeds()), ("vhost_message", message_seeds())):
        out = os.path.join(root, name)
        os.makedirs(out, exist_ok=True)
        for seed, data in seeds.items():
            with open(os.path.join(out, seed), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
