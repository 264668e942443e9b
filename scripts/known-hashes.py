#!/usr/bin/env python3
"""Recomputes the pinned hashes of crates/kchain-core/tests/encoding.rs from the byte layout
in docs/format.md, with nothing but hashlib: an independent check of the Rust encoder."""
import hashlib

def lp(b):  # u32 big-endian length prefix
    return len(b).to_bytes(4, "big") + b

def tag(t):
    return bytes([len(t)]) + t

ts = (1700000000000).to_bytes(8, "big")
item = (tag(b"kchain:item:v1") + ts + b"\x01" + lp(b"k") + b"\x01" + lp(b"hello")
        + (1).to_bytes(4, "big") + lp(b"h") + lp(b"v"))
leaf = hashlib.sha256(b"\x00" + item).digest()
chain = hashlib.sha256(tag(b"kchain:chain:v1") + lp(b"orders/0")).digest()[:16]
header = (tag(b"kchain:entry:v1") + b"\x01" + chain + (0).to_bytes(8, "big") + bytes(32) + ts
          + leaf + (1).to_bytes(4, "big"))
assert len(header) == 117
print("item encoding", item.hex())
print("item leaf    ", leaf.hex())
print("chain id     ", chain.hex())
print("entry hash   ", hashlib.sha256(header).hexdigest())
