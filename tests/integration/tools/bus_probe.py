#!/usr/bin/python3
"""bus_probe.py - one hand-made message on a node's bus (22_coherence_faults.bats).

  bus_probe.py ENDPOINT RECIPIENT KEYFILE SENDER SEQ PAYLOAD-HEX [--wrong-key]

Connects a ZeroMQ DEALER to ENDPOINT (the node's ROUTER) and sends one
invalidation request (wire format version 1, zmq-bus/README.md) from SENDER,
signed with the join key in KEYFILE (or a wrong key), numbered SEQ, carrying
PAYLOAD. Prints "ack", "nack" or "no answer" (after 3 s); exit status 0 for
an ack or a nack, 1 for no answer.

Debian's python3-zmq: run with /usr/bin/python3.
"""
import hashlib
import hmac
import os
import struct
import sys
import time

import zmq

REQUEST, ACK, NACK = 1, 2, 3
INVALIDATE = 1


def frame(sender, recipient, key, seq, payload):
    s, r = sender.encode(), recipient.encode()
    incarnation = struct.unpack(">Q", os.urandom(8))[0] | 1
    head = struct.pack(">BBBBBB", 1, REQUEST, INVALIDATE, 0, len(s), len(r)) + s + r
    head += struct.pack(">QQQQQI", incarnation, seq, 1, 0, int(time.time() * 1000), len(payload))
    body = head + payload
    return body + hmac.new(key, body, hashlib.sha256).digest()


def main():
    endpoint, recipient, keyfile, sender, seq, payload = sys.argv[1:7]
    key = open(keyfile, "rb").read().rstrip(b"\r\n ")
    if "--wrong-key" in sys.argv[7:]:
        key = hashlib.sha256(key).digest()
    ctx = zmq.Context()
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.LINGER, 0)
    d.connect(endpoint)
    d.send(frame(sender, recipient, key, int(seq), bytes.fromhex(payload)))
    if d.poll(3000):
        kind = d.recv()[1]
        print({ACK: "ack", NACK: "nack"}.get(kind, "kind %d" % kind))
        return 0
    print("no answer")
    return 1


if __name__ == "__main__":
    sys.exit(main())
