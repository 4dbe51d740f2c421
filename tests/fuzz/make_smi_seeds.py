#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_smi.cpp (tests/fuzz/corpus/fuzz_smi/):
valid dcdbas sequences in the target's op format, so the fuzzer starts from
calling-interface SMIs the simulated BIOS answers (token read/write, tags,
property tag through a buffer), host control of each SMI type, raw SMIs.
Run it after changing the op format: python3 tests/fuzz/make_smi_seeds.py"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_smi")

# Variants (fuzz_smi.cpp kVariants): 0 PE1400 TYPE2 v2, 1 PE300 TYPE1 v1,
# 2 PE750 TYPE3, 3 R740 WSMT 4 pages, 4 WSMT 1 page CI on 0xb0/0xa0, 5 WSMT 65 pages.
LOC = {0x10: 0, 0x20: 1, 0xFFFF: 2, 0x99: 3, 0x10010: 4}


def size(n, junk=False):
    return bytes([0]) + struct.pack("<I", n | (0x800000 if junk else 0))[:3]


def write(off, data, where=0):
    return bytes([1, where]) + struct.pack("<H", off) + bytes([len(data)]) + data


def loc(l):
    return bytes([LOC[l] << 2])


def small(v):
    return bytes([1, v])


def raw(v):
    return bytes([2]) + struct.pack("<I", v)


def rel(off):
    return bytes([3]) + struct.pack("<H", off)


def command(cls, sel, words, submit=1, port_mode=0, port=b"", tail=None, ebx=None):
    """cls/sel 0..3 index the BIOS's classes (0,1,11,20) and selects; others raw."""
    flags = port_mode
    if submit:
        flags |= 0x10 | (0x20 if submit == 2 else 0)
    if tail is not None:
        flags |= 0x40
    if ebx is not None:
        flags |= 0x04 | (0x08 if ebx == "self" else 0)
    classes = {0: 0, 1: 1, 11: 2, 20: 3}
    out = bytes([2, flags])
    out += bytes([classes[cls]]) if cls in classes else bytes([0x80])
    out += bytes([sel]) if sel < 5 else bytes([0x80])
    if cls not in classes:
        out += struct.pack("<H", cls)
    if sel >= 5:
        out += struct.pack("<H", sel)
    for w in words:
        out += w
    out += port
    if tail is not None:
        out += bytes([tail])
    if ebx is not None:
        out += struct.pack("<I", 0 if ebx == "self" else ebx)
    return out


def request(k):
    return bytes([3, k])  # k%6: 0 "0", 1 "1\n", 2 "2", 3 "3", 4 2^64+1, 5 "-1"


def read(n=52, off=0, whole=True):
    k = ((n - 1) // 16) << 1
    return bytes([4, (k & 0x7E) | (0x80 if whole else 0)]) + struct.pack("<H", off)


def host(which, v):  # 0 action, 1 smi_type, 2 on_shutdown
    return bytes([5, which | 0x20, v])


def clock(ms):
    return bytes([6]) + struct.pack("<H", ms)


def shutdown(how):  # 0 poweroff, 1 halt, 2 reboot
    return bytes([7, how])


def cmos_ptr(page2=False, buf_off=0):
    # k: 0x40 set (pointer = phys + (k & 0x38)), k % 3 picks the slot, k & 7 bytes follow.
    want = 1 if page2 else 0
    for k in range(0x40, 0x80):
        if k % 3 == want and (k & 0x38) == buf_off:
            return bytes([8, k]) + bytes(k & 7)
    raise ValueError


def platform(which, text):
    return bytes([9, which, len(text)]) + text


Z = [small(0)] * 3
SEEDS = {
    "token-read": bytes([0]) + command(0, 0, [loc(0x20)] + Z) + read()
    + command(0, 1, [loc(0x20)] + Z) + command(0, 2, [loc(0x20)] + Z) + read(),
    "token-write": bytes([0]) + command(1, 0, [loc(0x10), small(0), small(0), small(0)])
    + command(0, 0, [loc(0x10)] + Z) + command(1, 2, [loc(0x20), small(7), small(0), small(0)])
    + command(1, 0, [loc(0x10), small(2), small(0), small(0)]) + read(),
    "token-write-wide": bytes([3]) + command(1, 1, [loc(0xFFFF), raw(0xFFFFFFFF), small(0), small(0)])
    + command(0, 1, [loc(0xFFFF)] + Z) + command(0, 0, [loc(0x99)] + Z) + read(),
    "tags": bytes([1]) + command(11, 0, Z + [small(0)]) + command(11, 2, Z + [small(0)])
    + command(11, 1, [raw(0x4E494152), raw(0x3031), small(0), small(0)])
    + command(11, 3, [raw(0x54535953), raw(0x31), small(0), small(0)])
    + command(11, 3, [raw(0x41414141), small(0), small(0), small(0)]) + command(11, 2, Z + [small(0)]) + read(),
    "property-tag-v2": bytes([0]) + command(20, 0, [rel(64)] + Z, tail=40) + read(160)
    + write(80, b"Owned by the fuzzer\0") + command(20, 1, [rel(80)] + Z, tail=40)
    + command(20, 0, [rel(64)] + Z, tail=40) + read(160),
    "property-tag-v1": bytes([1]) + command(20, 0, [rel(60)] + Z, tail=40) + read(160)
    + command(20, 1, [raw(0x10)] + Z, tail=40),
    "property-tag-wsmt": bytes([4]) + command(20, 0, [rel(100)] + Z, tail=60) + read(240),
    "host-control-type2": bytes([0]) + host(0, 4) + host(1, 2) + host(2, 1) + shutdown(2) + read(208),
    "host-control-type1": bytes([1]) + host(0, 2) + host(1, 1) + host(2, 1) + shutdown(0) + read(208),
    "host-control-type3": bytes([2]) + host(0, 6) + host(1, 3) + host(2, 1) + clock(1000) + shutdown(1),
    "host-control-wsmt": bytes([5]) + host(0, 4) + host(1, 3) + host(2, 1) + shutdown(2),
    "host-control-none": bytes([3]) + host(0, 2) + host(1, 2) + host(2, 1) + shutdown(0),
    "raw-apm-smi": bytes([0]) + command(0, 0, Z + [small(0)], submit=0, port_mode=1, tail=8)
    + write(56, bytes([0x10, 0xFF, 0, 0, 0x14, 0])) + cmos_ptr(False, 56) + request(2) + read(96),
    "raw-apm-type1": bytes([1]) + command(0, 0, Z + [small(0)], submit=0, port_mode=1, tail=8)
    + write(56, bytes([0x10, 0xFF, 0, 0, 0, 0])) + cmos_ptr(True, 56) + request(2) + read(96),
    "raw-cmos-smi": bytes([2]) + command(0, 0, Z + [small(0)], submit=2, port_mode=3, port=bytes([0, 0x5C]))
    + command(0, 0, Z + [small(0)], submit=2, port_mode=3, port=bytes([1, 0x01])) + read(),
    "ci-by-raw-request": bytes([0]) + command(0, 0, [loc(0x20)] + Z, submit=2, ebx="self") + read(),
    "ci-unknown": bytes([0]) + command(7, 9, Z + [small(0)]) + command(0, 3, [loc(0x10)] + Z)
    + command(11, 4, Z + [small(0)]) + read(),
    "wsmt-1page": bytes([4]) + command(0, 0, [loc(0x10)] + Z) + size(5000) + write(4000, b"X" * 88)
    + write(4087, b"YZ") + read(64, 4080),
    "wsmt-65": bytes([5]) + command(0, 0, [loc(0x20)] + Z) + write(0xFF, b"end", where=2) + read(16, 65535 * 4 // 4),
    "grow": bytes([0]) + size(100) + write(10, b"ABCDEFGHIJ") + size(4096) + size(17) + write(5000, b"XY")
    + size(262144) + size(262145) + write(0xFF, b"Q", where=2) + read(32, 0) + request(0) + read(16, 10),
    "requests": bytes([0]) + request(1) + size(16) + request(1) + size(17) + request(0) + request(1)
    + request(3) + request(4) + request(5) + bytes([3, 0x83]) + b"1x\n",
    "platform": bytes([0]) + platform(0, b"add") + platform(0, b"change 12345678-1234-1234-1234-123456789abc A=b")
    + platform(1, b"dcdbas\n") + platform(2, b"on\n") + platform(2, b"auto"),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"{len(SEEDS)} seeds in {OUT}")
