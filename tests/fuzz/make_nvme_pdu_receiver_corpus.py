#!/usr/bin/env python3
# Generates the seed corpus of tests/fuzz/nvme_pdu_receiver_fuzz.cc into
# tests/fuzz/corpus/nvme_pdu_receiver/. Deterministic: rerunning it rewrites
# the same files. Each seed is the fuzz target's prefix (options byte; K and
# destination shape; deliver mask; K u16 receive sizes) followed by a stream
# of well-formed NVMe/TCP PDUs (nvme/spec/nvme_tcp_spec.hh), so the fuzzer
# starts from inputs that reach data delivery, digests, padding and the
# direct path.
#
#   python3 tests/fuzz/make_nvme_pdu_receiver_corpus.py [output dir]
import os
import struct
import sys

ICREQ, ICRESP, H2C_TERM, C2H_TERM, CAPSULE, RESP, H2C, C2H, R2T = 0, 1, 2, 3, 4, 5, 6, 7, 9
HDGSTF, DDGSTF, LAST_PDU, SUCCESS = 1, 2, 4, 8


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def pattern(n, seed):
    return bytes(((i * 131 + seed * 17 + (i >> 8)) & 0xFF) for i in range(n))


class Stream:
    def __init__(self, hd=False, dd=False, pda=0):
        self.hd, self.dd, self.pda = hd, dd, pda
        self.out = bytearray()

    def pdu(self, ptype, specific, data=b"", flags=0, pdo=None):
        hlen = 8 + len(specific)
        hd = 4 if self.hd else 0
        dd = 4 if (self.dd and data) else 0
        if data:
            align = (self.pda + 1) * 4
            pdo = pdo if pdo is not None else (hlen + hd + align - 1) // align * align
        else:
            pdo = 0
        plen = (pdo + len(data) + dd) if data else hlen + hd
        flags |= (HDGSTF if hd else 0) | (DDGSTF if dd else 0)
        hdr = struct.pack("<BBBBI", ptype, flags, hlen, pdo, plen) + specific
        self.out += hdr
        if hd:
            self.out += struct.pack("<I", crc32c(hdr))
        if data:
            self.out += bytes(pdo - hlen - hd) + data
            if dd:
                self.out += struct.pack("<I", crc32c(data))
        return self

    def icreq(self):
        self.out += struct.pack("<BBBBIHBBI", ICREQ, 0, 128, 0, 128, 0, 0, 3, 0) + bytes(112)
        return self

    def capsule(self, cid, data=b"", pdo=None):
        sqe = struct.pack("<BBHI", 0x01, 0x40, cid, 1) + bytes(16) + struct.pack("<QI3xB", 0, len(data), 0x01)
        sqe += bytes(64 - len(sqe))
        return self.pdu(CAPSULE, sqe, data, pdo=pdo)

    def h2c(self, cid, ttag, datao, data, last=True):
        return self.pdu(H2C, struct.pack("<HHII4x", cid, ttag, datao, len(data)), data,
                        flags=LAST_PDU if last else 0)

    def c2h(self, cid, datao, data, success=False):
        return self.pdu(C2H, struct.pack("<H2xII4x", cid, datao, len(data)), data,
                        flags=LAST_PDU | (SUCCESS if success else 0))

    def resp(self, cid):
        return self.pdu(RESP, bytes(8) + struct.pack("<HHHH", 0, 1, cid, 0))

    def r2t(self, cid, length):
        return self.pdu(R2T, struct.pack("<HHII4x", cid, 0, 0, length))

    def term(self, ptype, fes, data=b""):
        self.out += struct.pack("<BBBBIH4s10x", ptype, 0, 24, 0, 24 + len(data), fes, bytes(4)) + data
        return self


def prefix(options, shape, deliver, sizes):
    assert len(sizes) < 16
    return bytes([options, (shape << 4) | len(sizes), deliver]) + b"".join(struct.pack("<H", s - 1) for s in sizes)


def opts(hd=False, dd=False, icreq_first=False, small_buffer=False, pda_sel=0, small_plen=False):
    return (hd | dd << 1 | icreq_first << 2 | small_buffer << 3 | pda_sel << 4 | small_plen << 6)


PDA = [0, 1, 7, 31]


def mixed(hd, dd, pda=0):
    s = Stream(hd, dd, pda)
    s.capsule(1).capsule(2, pattern(700, 1)).h2c(3, 5, 0, pattern(3, 2)).h2c(4, 6, 0, pattern(5000, 3))
    s.resp(5).c2h(6, 0, pattern(300, 4), success=True).r2t(7, 4096).capsule(8)
    return s


def seeds():
    for d in range(4):
        hd, dd = bool(d & 1), bool(d & 2)
        s = mixed(hd, dd)
        yield f"mixed-d{d}-whole", prefix(opts(hd, dd), 0, 0xFF, []) + s.out
        yield f"mixed-d{d}-bytes", prefix(opts(hd, dd), 1, 0xFF, [1]) + s.out
        yield f"mixed-d{d}-cuts", prefix(opts(hd, dd, small_buffer=True), 5, 0xA5, [7, 100, 3, 2500, 1, 60]) + s.out
    # Negotiation first: ICReq under the pre-ICResp limits, then digests.
    s = Stream().icreq()
    t = mixed(True, True)
    yield "icreq-then-digests", prefix(opts(True, True, icreq_first=True), 2, 0xFF, [128, 30, 9]) + s.out + t.out
    # Padding to every alignment.
    for sel, pda in enumerate(PDA):
        s = mixed(True, False, pda)
        yield f"pda{pda}", prefix(opts(True, False, pda_sel=sel), 3, 0xFF, [13, 200]) + s.out
    # Direct path: large data arriving after its header, into several pieces.
    s = Stream(False, True)
    s.h2c(1, 0, 0, pattern(32768, 5)).capsule(2)
    yield "direct-large", prefix(opts(False, True), 11, 0xFF, [24, 3000, 16384]) + s.out
    s = Stream(True, True)
    s.c2h(1, 0, pattern(16384, 6)).resp(1)
    yield "direct-c2h", prefix(opts(True, True, small_buffer=True), 6, 0x01, [28, 1, 9000]) + s.out
    # Discarded data, TermReqs.
    s = Stream(True, True)
    s.capsule(1, pattern(3000, 7)).capsule(2, pattern(100, 8)).capsule(3, pattern(4000, 9))
    yield "discard", prefix(opts(True, True), 0, 0x04, [17]) + s.out
    s = Stream(True, True)
    s.capsule(9).term(H2C_TERM, 1, bytes(Stream().capsule(77).out[:72]))
    yield "term-req", prefix(opts(True, True), 0, 0xFF, [5]) + s.out
    # Errors: a bad header digest, a bad data digest, a PDU over the limit.
    s = Stream(True, False)
    s.capsule(1)
    bad = bytearray(Stream(True, False).capsule(2).out)
    bad[72] ^= 1
    yield "bad-hdgst", prefix(opts(True, False), 0, 0xFF, [3]) + s.out + bytes(bad)
    s = Stream(False, True)
    s.capsule(1, pattern(512, 10))
    bad = bytearray(s.out)
    bad[-1] ^= 1
    yield "bad-ddgst", prefix(opts(False, True), 0, 0xFF, [50]) + bytes(bad)
    s = Stream()
    s.h2c(1, 0, 0, pattern(8192, 11))
    yield "too-long", prefix(opts(small_plen=True), 0, 0xFF, []) + s.out


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                 "corpus", "nvme_pdu_receiver")
    os.makedirs(out_dir, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(bytes(data))
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
