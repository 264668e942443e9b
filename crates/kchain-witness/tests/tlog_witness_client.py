#!/usr/bin/env python3
"""An independent tlog-witness client, written from the C2SP specification texts
(c2sp.org/tlog-witness, tlog-cosignature, tlog-checkpoint, signed-note, and RFC 6962
section 2.1) with nothing of kchain's code: its own log key, checkpoints, Merkle trees and
consistency proofs, and its own check of the cosignatures the witness returns.

    tlog_witness_client.py keygen DIR          make a log key, print "ORIGIN=VKEY"
    tlog_witness_client.py run DIR URL VKEY     exercise the witness at URL (its cosigner
                                                vkey VKEY); exit 0 when every check passes
"""

import base64
import hashlib
import http.client
import os
import struct
import sys
import time
import urllib.parse

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

ORIGIN = "python.example/log"


# --- signed-note -----------------------------------------------------------------------

def key_id(name, sig_type, public_key):
    """key ID = SHA-256(key name || 0x0A || signature type || public key)[:4]"""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()
    return digest[:4]


def raw_public(private):
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def vkey(name, sig_type, public_key):
    """A verifier key: name "+" hex key ID "+" base64(type || public key)."""
    kid = key_id(name, sig_type, public_key).hex()
    return f"{name}+{kid}+" + base64.b64encode(bytes([sig_type]) + public_key).decode()


def parse_vkey(text):
    name, kid, key = text.split("+", 2)  # base64 may hold "+" too
    raw = base64.b64decode(key)
    assert key_id(name, raw[0], raw[1:]).hex() == kid, "vkey key ID"
    return name, raw[0], raw[1:]


def sign_note(text, name, private):
    """A signed note: the text, a blank line, one Ed25519 (0x01) signature line."""
    assert text.endswith("\n")
    sig = key_id(name, 0x01, raw_public(private)) + private.sign(text.encode())
    return text + "\n" + f"\u2014 {name} " + base64.b64encode(sig).decode() + "\n"


# --- RFC 6962 Merkle trees ---------------------------------------------------------------

def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n):
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split_point(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def subproof(m, leaves, complete):
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = split_point(n)
    if m <= k:
        return subproof(m, leaves[:k], complete) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def consistency_proof(m, leaves):
    """PROOF(m, D[n]) of RFC 6962 section 2.1.2."""
    return subproof(m, leaves, True) if 0 < m < len(leaves) else []


# --- the log -----------------------------------------------------------------------------

class Log:
    def __init__(self, origin, private, name=None):
        self.origin, self.private, self.name = origin, private, name or origin
        self.leaves = []

    def grow(self, n, tag="entry"):
        for _ in range(n):
            self.leaves.append(leaf_hash(f"{tag} {len(self.leaves)}".encode()))

    def checkpoint_text(self, size):
        root = base64.b64encode(mth(self.leaves[:size])).decode()
        return f"{self.origin}\n{size}\n{root}\n"

    def body(self, old, size, proof=None):
        """An add-checkpoint request body (tlog-witness)."""
        if proof is None:
            proof = consistency_proof(old, self.leaves[:size])
        lines = f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
        return (lines + "\n" + sign_note(self.checkpoint_text(size), self.name, self.private)).encode()


# --- the witness over HTTP ---------------------------------------------------------------

class Witness:
    def __init__(self, url, witness_vkey):
        parts = urllib.parse.urlsplit(url)
        assert parts.scheme == "http", "this client speaks plain HTTP"
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        self.name, sig_type, self.public = parse_vkey(witness_vkey)
        assert sig_type == 0x04, "a witness vkey is of type 0x04"
        self.key = Ed25519PublicKey.from_public_bytes(self.public)

    def request(self, method, path, body=None):
        # One keep-alive connection for every request, as the spec recommends.
        self.conn.request(method, path, body=body, headers={"Content-Type": "text/plain"})
        r = self.conn.getresponse()
        return r.status, r.getheader("Content-Type", ""), r.read()

    def add(self, body):
        return self.request("POST", "/add-checkpoint", body)

    def check_cosignature(self, checkpoint_text, response_body):
        """tlog-cosignature: a note signature line from the witness whose signature is a
        timestamped_signature (u64 big-endian time, Ed25519 signature) over
        "cosignature/v1\\ntime T\\n" and the checkpoint text."""
        text = response_body.decode()
        assert text.endswith("\n"), "lines end in a newline"
        found = False
        for line in text.splitlines():
            assert line.startswith("\u2014 "), f"a signature line: {line!r}"
            name, sig = line[2:].split(" ")
            raw = base64.b64decode(sig)
            if name != self.name or raw[:4] != key_id(self.name, 0x04, self.public):
                continue  # unknown keys are ignored
            (timestamp,) = struct.unpack(">Q", raw[4:12])
            assert len(raw) == 4 + 8 + 64, "key ID, timestamp, Ed25519 signature"
            assert abs(timestamp - time.time()) < 600, f"timestamp {timestamp}"
            message = f"cosignature/v1\ntime {timestamp}\n".encode() + checkpoint_text.encode()
            try:
                self.key.verify(raw[12:], message)
            except InvalidSignature:
                raise AssertionError("the cosignature does not verify")
            found = True
        assert found, "no cosignature of the witness's key"


def expect(what, got, status, content_type=None):
    s, ctype, body = got
    assert s == status, f"{what}: status {s}, wanted {status}: {body!r}"
    if content_type is not None:
        assert ctype.split(";")[0].strip() == content_type, f"{what}: content type {ctype}"
    print(f"ok {status} {what}")
    return body


def load_key(directory):
    with open(os.path.join(directory, "log.seed"), "rb") as f:
        return Ed25519PrivateKey.from_private_bytes(f.read())


def keygen(directory):
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    with open(os.path.join(directory, "log.seed"), "wb") as f:
        f.write(seed)
    print(f"{ORIGIN}={vkey(ORIGIN, 0x01, raw_public(private))}")


def run(directory, url, witness_vkey):
    w = Witness(url, witness_vkey)
    log = Log(ORIGIN, load_key(directory))
    log.grow(5)

    expect("malformed body", w.add(b"old 0\nnot base64\n\n"), 400)
    expect("malformed: no checkpoint", w.add(b"old 0\n\nhello\n"), 400)
    stranger = Log("python.example/unknown", Ed25519PrivateKey.generate())
    stranger.grow(2)
    expect("unknown origin", w.add(stranger.body(0, 2)), 404)
    impostor = Log(ORIGIN, Ed25519PrivateKey.generate())
    impostor.leaves = list(log.leaves)
    expect("no signature of a trusted key", w.add(impostor.body(0, 5)), 403)
    expect("old size above the checkpoint's", w.add(log.body(9, 5, proof=[])), 400)

    body = expect("first checkpoint", w.add(log.body(0, 5)), 200)
    w.check_cosignature(log.checkpoint_text(5), body)

    log.grow(4)
    size = expect("stale old size", w.add(log.body(0, 9)), 409, "text/x.tlog.size")
    assert size == b"5\n", f"the size body: {size!r}"
    proof = consistency_proof(5, log.leaves[:9])
    proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    expect("a proof that does not verify", w.add(log.body(5, 9, proof=proof)), 422)
    body = expect("growth with a consistency proof", w.add(log.body(5, 9)), 200)
    w.check_cosignature(log.checkpoint_text(9), body)
    body = expect("the same checkpoint again", w.add(log.body(9, 9)), 200)
    w.check_cosignature(log.checkpoint_text(9), body)

    path = "/checkpoint/" + urllib.parse.quote(ORIGIN, safe="/")
    body = expect("the newest cosigned checkpoint", w.request("GET", path), 200)
    text, _, sigs = body.decode().rpartition("\n\n")
    assert text + "\n" == log.checkpoint_text(9), body
    w.check_cosignature(log.checkpoint_text(9), sigs.encode())

    fork = Log(ORIGIN, log.private)
    fork.leaves = log.leaves[:6]
    fork.grow(3, tag="forged")
    got = w.add(fork.body(9, 9))
    expect("same size, another root", got, 409)
    assert got[1].split(";")[0] != "text/x.tlog.size", "a fork is not a size conflict"
    log.grow(1)
    expect("a forked log afterwards", w.add(log.body(9, 10)), 409)
    print("all checks passed")


if __name__ == "__main__":
    if sys.argv[1] == "keygen":
        keygen(sys.argv[2])
    elif sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
