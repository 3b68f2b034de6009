#!/usr/bin/env python3
# Generates the seed corpus of tests/fuzz/nvme_tcp_target_fuzz.cc: valid
# NVMe/TCP host-to-target byte streams (one connection each), written to
# tests/fuzz/corpus/nvme_tcp_target/. Deterministic: rerunning it rewrites
# the same files. Layouts follow nvme/spec/nvme_tcp_spec.hh and
# nvme_fabrics.hh; the fuzzer keeps controller 1 (host HOSTNQN, CC.EN = 1,
# 4 I/O queues) open, so the I/O-queue seeds Connect to cntlid 1.
#
#   python3 tests/fuzz/make_nvme_tcp_corpus.py [output dir]
import os
import struct
import sys

SUBNQN = b"nqn.2026-11.io.ioengine:fuzz"
HOSTNQN = b"nqn.2014-08.org.nvmexpress:uuid:fuzz-host"
DISCOVERY_NQN = b"nqn.2014-08.org.nvmexpress.discovery"

ICREQ, H2C_TERM, CAPSULE, H2C_DATA = 0x00, 0x02, 0x04, 0x06
HDGSTF, DDGSTF, LAST_PDU = 1, 2, 4


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


class Stream:
    def __init__(self, hdgst=False, ddgst=False):
        self.hdgst, self.ddgst = hdgst, ddgst
        self.out = bytearray()

    def icreq(self, hpda=0):
        dgst = (1 if self.hdgst else 0) | (2 if self.ddgst else 0)
        ch = struct.pack("<BBBBI", ICREQ, 0, 128, 0, 128)
        self.out += ch + struct.pack("<HBBI", 0, hpda, dgst, 0) + bytes(112)
        return self

    def pdu(self, ptype, specific, data=b"", flags=0, pad=0):
        hlen = 8 + len(specific)
        hd = 4 if self.hdgst else 0
        dd = 4 if (self.ddgst and data) else 0
        pdo = hlen + hd + pad if data else 0
        plen = hlen + hd + (pad + len(data) + dd if data else 0)
        flags |= (HDGSTF if hd else 0) | (DDGSTF if dd else 0)
        hdr = struct.pack("<BBBBI", ptype, flags, hlen, pdo, plen) + specific
        self.out += hdr
        if hd:
            self.out += struct.pack("<I", crc32c(hdr))
        if data:
            self.out += bytes(pad) + data
            if dd:
                self.out += struct.pack("<I", crc32c(data))
        return self

    def capsule(self, sqe, data=b"", pad=0):
        assert len(sqe) == 64
        return self.pdu(CAPSULE, sqe, data, pad=pad)

    def h2c(self, cccid, ttag, datao, data, last=True):
        return self.pdu(H2C_DATA, struct.pack("<HHII", cccid, ttag, datao, len(data)) + bytes(4), data,
                        flags=LAST_PDU if last else 0)


def sgl(length, transport=False):
    ident = (0x5 << 4 | 0xA) if transport else (0x0 << 4 | 0x1)
    return struct.pack("<QI3xB", 0, length, ident)


def sqe(opcode, cid, nsid=0, length=0, transport=False, cdw10=0, cdw11=0, cdw12=0, cdw13=0, psdt=1):
    return (struct.pack("<BBHIIIQ", opcode, psdt << 6, cid, nsid, 0, 0, 0) + sgl(length, transport) +
            struct.pack("<6I", cdw10, cdw11, cdw12, cdw13, 0, 0))


def connect(cid, qid, cntlid=0xFFFF, subnqn=SUBNQN, hostnqn=HOSTNQN, sqsize=31, kato=0):
    cmd = (struct.pack("<BBHB19x", 0x7F, 0, cid, 0x01) + sgl(1024) +
           struct.pack("<HHHBBI12x", 0, qid, sqsize, 0, 0, kato))
    data = bytearray(1024)
    data[0] = 0x42
    data[16:18] = struct.pack("<H", cntlid)
    data[256:256 + len(subnqn)] = subnqn
    data[512:512 + len(hostnqn)] = hostnqn
    return cmd, bytes(data)


def prop_get(cid, ofst, eight=False):
    return struct.pack("<BBHB35xB3xI16x", 0x7F, 0, cid, 0x04, 1 if eight else 0, ofst)


def prop_set(cid, ofst, value):
    return struct.pack("<BBHB35xB3xIQ8x", 0x7F, 0, cid, 0x00, 0, ofst, value)


def disconnect(cid):
    return struct.pack("<BBHB19x", 0x7F, 0, cid, 0x08) + bytes(16) + bytes(24)


def pattern(n, seed):
    return bytes(((i * 31 + seed * 7 + (i >> 9)) & 0xFF) for i in range(n))


def admin_session(s):
    c, d = connect(1, 0)
    s.icreq().capsule(c, d)
    s.capsule(prop_get(2, 0x00, eight=True))           # CAP
    s.capsule(prop_set(3, 0x14, 0x00460001))           # CC: EN, IOSQES 6, IOCQES 4
    s.capsule(prop_get(4, 0x1C))                       # CSTS
    s.capsule(sqe(0x06, 5, length=4096, transport=True, cdw10=0x01))           # Identify controller
    s.capsule(sqe(0x06, 6, nsid=1, length=4096, transport=True, cdw10=0x00))   # Identify namespace 1
    s.capsule(sqe(0x06, 7, length=4096, transport=True, cdw10=0x02))           # active namespace list
    s.capsule(sqe(0x06, 8, nsid=1, length=4096, transport=True, cdw10=0x03))   # NS id descriptors
    s.capsule(sqe(0x09, 9, cdw10=0x07, cdw11=0x00030003))                      # Set Features: queues
    s.capsule(sqe(0x0A, 10, cdw10=0x0F))                                        # Get Features: KATO
    s.capsule(sqe(0x02, 11, nsid=0xFFFFFFFF, length=512, transport=True,
                  cdw10=0x02 | ((512 // 4 - 1) << 16)))                         # Get Log Page: SMART
    s.capsule(sqe(0x18, 12))                                                    # Keep Alive
    s.capsule(sqe(0x0C, 13))                                                    # Async Event Request
    return s


def io_session(s, qid=1):
    c, d = connect(1, qid, cntlid=1)
    s.icreq().capsule(c, d)
    w = pattern(1024, 1)
    s.capsule(sqe(0x01, 2, nsid=1, length=len(w), cdw10=8, cdw12=1), w)           # Write in-capsule, LBA 8
    s.capsule(sqe(0x02, 3, nsid=1, length=1024, transport=True, cdw10=8, cdw12=1))  # Read it back
    s.capsule(sqe(0x00, 4, nsid=1))                                                 # Flush
    s.capsule(sqe(0x08, 5, nsid=1, cdw10=64, cdw12=7))                              # Write Zeroes
    dsm = struct.pack("<IIQ", 0, 8, 128)
    s.capsule(sqe(0x09, 6, nsid=1, length=16, cdw10=0, cdw11=4), dsm)              # DSM deallocate
    s.capsule(sqe(0x02, 7, nsid=1, length=512, transport=True, cdw10=16383, cdw12=1))  # out of range
    return s


def seeds():
    yield "01-icreq", Stream().icreq()
    c, d = connect(1, 0)
    yield "02-icreq-connect-admin", Stream().icreq().capsule(c, d)
    yield "03-admin-session", admin_session(Stream())
    yield "04-admin-session-digests", admin_session(Stream(hdgst=True, ddgst=True))
    yield "05-io-session", io_session(Stream())
    yield "06-io-session-digests", io_session(Stream(hdgst=True, ddgst=True), qid=2)
    # R2T write: the transfer tag is the command's slot, 0 once the Connect
    # has completed (what the target does with this input); the second seed
    # sends a single H2CData, the first splits the data in two.
    s = Stream()
    c, d = connect(1, 1, cntlid=1)
    s.icreq().capsule(c, d)
    w = pattern(16384, 2)
    s.capsule(sqe(0x01, 9, nsid=1, length=len(w), transport=True, cdw10=32, cdw12=31))
    s.h2c(9, 0, 0, w[:8192], last=False).h2c(9, 0, 8192, w[8192:])
    yield "07-io-r2t-write", s
    s = Stream()
    s.icreq().capsule(c, d)
    s.capsule(sqe(0x01, 9, nsid=1, length=8192, transport=True, cdw10=32, cdw12=15))
    s.h2c(9, 0, 0, pattern(8192, 3))
    yield "08-io-r2t-write-ttag0", s
    # Discovery controller: Connect + Get Log Page (discovery).
    c, d = connect(1, 0, subnqn=DISCOVERY_NQN)
    s = Stream().icreq().capsule(c, d)
    s.capsule(prop_set(2, 0x14, 1)).capsule(sqe(0x06, 3, length=4096, transport=True, cdw10=0x01))
    s.capsule(sqe(0x02, 4, length=1024, transport=True, cdw10=0x70 | ((1024 // 4 - 1) << 16)))
    yield "09-discovery", s
    # In-capsule data after a padded PDO (HPDA 7 = 32-byte alignment).
    s = Stream().icreq(hpda=7)
    c, d = connect(1, 0)
    s.capsule(c, d, pad=24)
    yield "10-padded-pdo", s
    # Admin connect then Disconnect, and a host H2CTermReq.
    c, d = connect(1, 0)
    s = Stream().icreq().capsule(c, d).capsule(disconnect(2))
    yield "11-disconnect", s
    s = Stream().icreq()
    s.out += struct.pack("<BBBBIH4s10x", H2C_TERM, 0, 24, 0, 24, 1, bytes(4))
    yield "12-h2c-term-req", s


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                 "corpus", "nvme_tcp_target")
    os.makedirs(out_dir, exist_ok=True)
    for name, s in seeds():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(bytes(s.out))
        print(f"{name}: {len(s.out)} bytes")


if __name__ == "__main__":
    main()
