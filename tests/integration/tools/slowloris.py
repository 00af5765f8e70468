#!/usr/bin/env python3
"""slowloris.py PORT HEADER_TIMEOUT PER_CLIENT_LIMIT

Against a granaryd on 127.0.0.1:PORT started with --header-timeout
HEADER_TIMEOUT and --max-conn-per-client PER_CLIENT_LIMIT:

1. PER_CLIENT_LIMIT connections from 127.0.0.1 dribble a request head, one
   header byte every 0.3 s (slowloris);
2. one more connection from 127.0.0.1 is refused (closed at once);
3. meanwhile a client from 127.0.0.2 gets every answer quickly;
4. each slow connection is cut by the server within HEADER_TIMEOUT + 2 s,
   before its head is complete.
Prints what it saw; exits non-zero on the first failure.
"""
import socket
import sys
import time

port, timeout, limit = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])


def conn(src):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def quick_get(src):
    t0 = time.monotonic()
    s = conn(src)
    s.settimeout(3)
    s.sendall(b"GET /api/system/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    if not data.startswith(b"HTTP/1.1 200"):
        fail("a normal client got %r" % data[:40])
    return time.monotonic() - t0


slow = []
for _ in range(limit):
    s = conn("127.0.0.1")
    s.sendall(b"GET /api/system/ping HTTP/1.1\r\nHost: x\r\n")
    s.setblocking(False)
    slow.append(s)
time.sleep(0.3)

# one more from the same address: closed at once
extra = conn("127.0.0.1")
extra.settimeout(3)
extra.sendall(b"GET /api/system/ping HTTP/1.1\r\nHost: x\r\n\r\n")
try:
    got = extra.recv(100)
except ConnectionResetError:
    got = b""
if got.startswith(b"HTTP/1.1 200"):
    fail("connection %d from one address was served" % (limit + 1))
print("connection over the per-client limit: refused")

t0 = time.monotonic()
cut = [None] * limit
worst = 0.0
while time.monotonic() - t0 < timeout + 3 and None in cut:
    for i, s in enumerate(slow):
        if cut[i] is not None:
            continue
        try:
            s.send(b"X")  # never a full header line: the head never completes
        except (BrokenPipeError, ConnectionResetError):
            cut[i] = time.monotonic() - t0
            continue
        try:
            if s.recv(4096) == b"":
                cut[i] = time.monotonic() - t0
        except BlockingIOError:
            pass
        except ConnectionResetError:
            cut[i] = time.monotonic() - t0
    worst = max(worst, quick_get("127.0.0.2"))
    time.sleep(0.3)

if None in cut:
    fail("slow connections not cut: %r" % cut)
if max(cut) > timeout + 2:
    fail("cut too late: %r" % cut)
if worst > 1.0:
    fail("a normal client waited %.2f s" % worst)
print("slow connections cut after %.1f-%.1f s; other clients answered within %.3f s"
      % (min(cut), max(cut), worst))
# the address may connect again once its slow connections are gone
quick_get("127.0.0.1")
print("the slow client's address is served again")
