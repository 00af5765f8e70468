#!/usr/bin/env python3
"""npm_bodies.py: npm request bodies that hold a node's memory (63_security_npm.bats).

  hold PORT USER:PASS PATH LENGTH SEND N SECONDS READY-FILE
      open N connections, each a PUT of PATH announcing Content-Length
      LENGTH and sending SEND bytes of it; touch READY-FILE once every
      byte is sent, keep the connections open SECONDS (or until SIGTERM),
      then close them without finishing the bodies.
  status PORT USER:PASS PATH LENGTH
      send only the head of such a PUT and print the answer's status line
      and body (an answer that comes before the body).
"""
import base64
import os
import signal
import socket
import sys
import time


def head(port, auth, path, length):
    cred = base64.b64encode(auth.encode()).decode()
    return (f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Basic {cred}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def hold(port, auth, path, length, send, n, seconds, ready):
    chunk = b'{"x":"' + b"a" * (1024 * 1024)
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(head(port, auth, path, length))
        left = send
        while left > 0:
            k = min(left, len(chunk))
            s.sendall(chunk[:k])
            left -= k
        conns.append(s)
    open(ready, "w").close()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        time.sleep(seconds)
    finally:
        for s in conns:
            s.close()


def status(port, auth, path, length):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(20)
    s.sendall(head(port, auth, path, length))
    data = b""
    while b"\r\n\r\n" not in data:
        got = s.recv(65536)
        if not got:
            break
        data += got
    hdr, _, body = data.partition(b"\r\n\r\n")
    lines = hdr.decode(errors="replace").split("\r\n")
    clen = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            clen = int(v.strip())
    while len(body) < clen:
        got = s.recv(65536)
        if not got:
            break
        body += got
    s.close()
    print(lines[0])
    print(body.decode(errors="replace"))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "hold":
        hold(int(args[0]), args[1], args[2], int(args[3]), int(args[4]), int(args[5]),
             float(args[6]), args[7])
    elif cmd == "status":
        status(int(args[0]), args[1], args[2], int(args[3]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
