#!/usr/bin/env python3
# Generates the seed corpus of tests/fuzz/nvmf_host_fuzz.cc: an 8-byte
# preamble (flags, MAXH2CDATA, four command descriptors, pause_at; see the
# header of nvmf_host_fuzz.cc) followed by what a well-behaved NVMe/TCP
# target sends a host on one I/O queue: CapsuleResp, C2HData (with and
# without SUCCESS), R2T, C2HTermReq, with and without digests. Written to
# tests/fuzz/corpus/nvmf_host/. Deterministic: rerunning it rewrites the
# same files. Layouts follow nvme/spec/nvme_tcp_spec.hh; the host hands out
# CIDs generation << 7 | slot, so the first commands of a fresh queue pair
# are 0x80, 0x81, ... (slot i for the i-th command while the depth allows).
#
#   python3 tests/fuzz/make_nvmf_host_corpus.py [output dir]
import os
import struct
import sys

IC_RESP, C2H_TERM, CAPSULE_RESP, C2H_DATA, R2T = 0x01, 0x03, 0x05, 0x07, 0x09
HDGSTF, DDGSTF, LAST_PDU, SUCCESS = 1, 2, 4, 8

# Preamble flags (nvmf_host_fuzz.cc).
F_HDGST, F_DDGST, F_RAW, F_HOLD, F_PAUSE, F_SLOW = 1, 2, 4, 8, 16, 32
# Command kinds.
READ, WRITE_R2T, WRITE_CAPSULE, IDENTIFY, FLUSH, READ_SPLIT, WRITE_SPLIT = 1, 2, 3, 4, 5, 6, 7


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def cmd(kind, blocks=1):
    return kind | ((blocks - 1) << 3)


def pattern(n, seed):
    return bytes(((i * 13 + seed) & 0xFF) for i in range(n))


class Seed:
    def __init__(self, cmds=(), hdgst=False, ddgst=False, depth=4, maxh2c=0, flags=0, pause_at=0):
        self.hdgst, self.ddgst = hdgst, ddgst
        cmds = list(cmds) + [0] * (4 - len(cmds))
        f = flags | (F_HDGST if hdgst else 0) | (F_DDGST if ddgst else 0) | ((depth - 1) << 6)
        self.pre = bytes([f, maxh2c] + cmds) + struct.pack("<H", pause_at)
        self.out = bytearray()

    def bytes(self):
        return self.pre + bytes(self.out)

    def mark(self):
        """pause_at = the stream length so far (the prepended ICResp counts)."""
        n = len(self.out) + (0 if self.pre[0] & F_RAW else 128)
        self.pre = self.pre[:6] + struct.pack("<H", n)
        return self

    def ic_resp(self, dgst=None, maxh2c=4096, pfv=0, cpda=0, hlen=128, plen=128):
        if dgst is None:
            dgst = (1 if self.hdgst else 0) | (2 if self.ddgst else 0)
        self.out += struct.pack("<BBBBIHBBI", IC_RESP, 0, hlen, 0, plen, pfv, cpda, dgst, maxh2c) + bytes(112)
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

    def resp(self, cid, status=0, dw0=0, sqid=1):
        return self.pdu(CAPSULE_RESP, struct.pack("<IIHHHH", dw0, 0, 0, sqid, cid, status))

    def c2h(self, cid, datao, data, last=True, success=False, pad=0):
        flags = (LAST_PDU if last else 0) | (SUCCESS if success else 0)
        return self.pdu(C2H_DATA, struct.pack("<HHII", cid, 0, datao, len(data)) + bytes(4), data, flags, pad)

    def r2t(self, cid, ttag, r2to, r2tl):
        return self.pdu(R2T, struct.pack("<HHII", cid, ttag, r2to, r2tl) + bytes(4))

    def term(self, fes=1, fei=0):
        hdr = struct.pack("<BBBBIH", C2H_TERM, 0, 24, 0, 24, fes) + struct.pack("<I", fei) + bytes(10)
        self.out += hdr
        return self


def seeds():
    def with_digests(name, build):
        for hd, dd, suffix in ((False, False, ""), (True, False, "_hdgst"), (False, True, "_ddgst"), (True, True, "_hddgst")):
            yield name + suffix, build(hd, dd)

    # Read of 8 blocks answered by one C2HData with SUCCESS.
    yield from with_digests("read_success", lambda hd, dd: Seed([cmd(READ, 8)], hd, dd).c2h(0x80, 0, pattern(4096, 1), success=True))
    # Read in two C2HData PDUs (the second with padding), then CapsuleResp.
    yield from with_digests("read_two_pdus", lambda hd, dd: Seed([cmd(READ, 8)], hd, dd)
                            .c2h(0x80, 0, pattern(1024, 2), last=False).c2h(0x80, 1024, pattern(3072, 3), pad=4).resp(0x80))
    # Read over two io_vecs.
    yield from with_digests("read_split", lambda hd, dd: Seed([cmd(READ_SPLIT, 4)], hd, dd)
                            .c2h(0x80, 0, pattern(2048, 4)).resp(0x80))
    # Write on R2T: 16 blocks, MAXH2CDATA 4096 -> two H2CData.
    yield from with_digests("write_r2t", lambda hd, dd: Seed([cmd(WRITE_R2T, 16)], hd, dd).r2t(0x80, 1, 0, 8192).resp(0x80))
    # Write on two R2Ts, MAXH2CDATA 4112 (byte 1 = 1), over two io_vecs.
    yield from with_digests("write_two_r2t", lambda hd, dd: Seed([cmd(WRITE_SPLIT, 12)], hd, dd, maxh2c=1)
                            .r2t(0x80, 1, 0, 1000).r2t(0x80, 2, 1000, 6144 - 1000).resp(0x80))
    # Write with in-capsule data.
    yield from with_digests("write_capsule", lambda hd, dd: Seed([cmd(WRITE_CAPSULE, 1)], hd, dd).resp(0x80))
    # Identify, flush.
    yield from with_digests("identify", lambda hd, dd: Seed([cmd(IDENTIFY)], hd, dd).c2h(0x80, 0, pattern(4096, 5)).resp(0x80))
    yield "flush", Seed([cmd(FLUSH)]).resp(0x80)
    yield "flush_error", Seed([cmd(FLUSH)]).resp(0x80, status=0x2 << 1)  # SC 02h Invalid Field
    # Four commands at once, answered out of order.
    yield from with_digests("mixed", lambda hd, dd: Seed([cmd(READ, 2), cmd(WRITE_R2T, 4), cmd(FLUSH), cmd(WRITE_CAPSULE, 2)], hd, dd)
                            .resp(0x82).r2t(0x81, 7, 0, 2048).c2h(0x80, 0, pattern(1024, 6), success=True).resp(0x83).resp(0x81))
    # Depth 1: the second command waits for the first's slot (CID 0x100).
    yield "depth1", Seed([cmd(READ, 1), cmd(READ, 1)], depth=1).c2h(0x80, 0, pattern(512, 7)).resp(0x80) \
        .c2h(0x100, 0, pattern(512, 8), success=True)
    # The target ends the connection.
    yield "term_req", Seed([cmd(READ, 1), cmd(FLUSH)]).resp(0x81).term(fes=2, fei=8)
    # Raw handshake: valid, wrong digests, bad MAXH2CDATA, CPDA, PFV, type.
    yield "raw_ok", Seed([cmd(FLUSH)], flags=F_RAW).ic_resp().resp(0x80)
    yield "raw_ok_digests", Seed([cmd(READ, 1)], True, True, flags=F_RAW).ic_resp(maxh2c=8192).c2h(0x80, 0, pattern(512, 9), success=True)
    yield "raw_unasked_digest", Seed([cmd(FLUSH)], flags=F_RAW).ic_resp(dgst=3).resp(0x80)
    yield "raw_bad_maxh2c", Seed([cmd(FLUSH)], flags=F_RAW).ic_resp(maxh2c=4098).resp(0x80)
    yield "raw_cpda", Seed([cmd(FLUSH)], flags=F_RAW).ic_resp(cpda=1).resp(0x80)
    yield "raw_pfv", Seed([cmd(FLUSH)], flags=F_RAW).ic_resp(pfv=1).resp(0x80)
    s = Seed([cmd(FLUSH)], flags=F_RAW | F_HOLD).ic_resp()
    del s.out[64:]
    yield "raw_short", s  # half an ICResp, then silence: the handshake times out
    # No answer, connection held: the commands time out.
    yield "hold_timeout", Seed([cmd(READ, 1), cmd(WRITE_R2T, 1)], flags=F_HOLD)
    # An answer after the command timed out (pause longer than the timeout).
    s = Seed([cmd(READ, 2)], flags=F_HOLD | F_PAUSE).mark()
    yield "late_answer", s.c2h(0x80, 0, pattern(1024, 10)).resp(0x80)
    # Regression seeds (buffer lifetime, found by this fuzzer): the host must
    # not touch a command's buffers once the command has completed.
    # A slow reader: R2T for a large write while the target does not read;
    # the command timed out while its H2CData was still being sent from
    # its buffer.
    s = Seed([cmd(WRITE_R2T, 32)], flags=F_HOLD | F_PAUSE | F_SLOW).r2t(0x80, 1, 0, 16384).mark()
    yield "slow_reader_r2t", s.resp(0x80)
    # Half a C2HData, a pause past the I/O timeout, the other half: the
    # command timed out while its data was being received into its buffer.
    data = pattern(1024, 11)
    s = Seed([cmd(READ, 2)], flags=F_HOLD | F_PAUSE).c2h(0x80, 0, data)
    rest = bytes(s.out[-(1024 - 100):])
    del s.out[-(1024 - 100):]
    s.mark().out += rest
    yield "timeout_mid_c2h", s.resp(0x80)
    # Depth 1, no answer: the first command times out and keeps its slot
    # (the target may still answer); the second one waits for that slot and
    # must time out too instead of waiting for ever.
    yield "slot_wait_timeout", Seed([cmd(READ, 1), cmd(FLUSH)], depth=1, flags=F_HOLD)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                 "corpus", "nvmf_host")
    os.makedirs(out_dir, exist_ok=True)
    for name, s in seeds():
        data = s.bytes()
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
