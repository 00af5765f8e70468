#!/usr/bin/env python3
"""Cluster-port signatures, as granaryd makes them (daemon/repo/blobs.c).

  cluster_sign.py KEYFILE METHOD URI NODE DEST [v2|v1]

prints the value of the X-Granary-Auth header of a request from NODE to
DEST, signed now with a fresh nonce under the join key in KEYFILE: what a
node sends, to stand in for a captured request in the tests
(64_security_cluster_port.bats). v1 is the older form (no destination).
fake_holder.py imports the functions to sign its answers.
"""
import hashlib
import hmac
import os
import sys
import time


def read_key(path):
    """The join key's bytes as granaryd reads them: trailing blanks dropped."""
    return open(path, "rb").read().rstrip(b"\n\r ")


def _mac(key, fields, tail=None):
    msg = "\n".join(fields).encode()
    if tail is not None:
        msg += b"\n" + tail
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def sign_request(key, method, uri, node, dest, version="v2", ms=None, nonce=None):
    """The X-Granary-Auth value; its last field is the request's MAC."""
    ms = str(ms if ms is not None else int(time.time() * 1000))
    nonce = nonce or os.urandom(8).hex()
    if version == "v1":
        return "v1 %s %s %s %s" % (node, ms, nonce, _mac(key, [method, uri, node, ms, nonce]))
    mac = _mac(key, ["granary-v2-request", method, uri, node, dest, ms, nonce])
    return "v2 %s %s %s %s %s" % (node, dest, ms, nonce, mac)


def sign_answer(key, request_mac, node, status, sha256, blocks, body=b""):
    """The X-Granary-Answer-Auth value of an answer by node to a v2 request."""
    fields = ["granary-v2-answer", request_mac, node, str(status), sha256, blocks]
    return "v2 %s %s" % (node, _mac(key, fields, body))


def main():
    if len(sys.argv) not in (6, 7):
        sys.exit(__doc__)
    key = read_key(sys.argv[1])
    version = sys.argv[6] if len(sys.argv) == 7 else "v2"
    print(sign_request(key, sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], version))


if __name__ == "__main__":
    main()
