#!/usr/bin/env python3
"""part_check.py - load and a stale/corrupt read checker for 80_partition.bats
(grown from ha_load.py).

Writers overwrite a fixed set of keys, each key owned by one writer, with
versions 1, 2, 3...: the body is "KEY VERSION\\n" and random bytes, and its
sha256 is recorded per (key, version). A PUT that fails is sent again, same
bytes, until it gets 201: only then is the version acknowledged, at that
moment. Readers GET a random key, through the load balancer or straight from
a random node, noting before they send it the newest version acknowledged
for that key. A read is
  - stale   when it returns an older version than that (a write acknowledged
            before the read began is missing),
  - corrupt when its bytes do not hash to the sha256 recorded for the
            version it names (or name none),
  - failed  when it gets no 200 (a 503 from a node that cannot vouch for its
            cache is a failure, never a stale read).
The phase named in the phase file labels every count. At the end every key
is read from every node: it must hold the last acknowledged version (or the
one written after it whose answer was lost).

Writes land on repositories' generic paths /REPO/pc/wN/kM.bin.
--progress-file FILE: rewritten every 0.1 s with "ACKED READ_OK", the
acknowledged writes and the good reads so far (what the suite waits on).
Exit status 0 when no read was stale or corrupt, the final check found
every acknowledged version on every node, and the stop file ended the run.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse
from collections import defaultdict

lock = threading.Lock()
acked = {}    # key -> newest acknowledged version
tried = {}    # key -> newest version sent
shas = {}     # (key, version) -> sha256 hex
counts = defaultdict(lambda: defaultdict(int))
lat = defaultdict(list)  # phase -> seconds of successful PUTs
examples = []


def phase(args):
    try:
        with open(args.phase_file) as f:
            return f.read().strip() or "steady"
    except OSError:
        return "steady"


def bump(ph, name, n=1):
    with lock:
        counts[ph][name] += n


def note(msg):
    with lock:
        if len(examples) < 40:
            examples.append(msg)


def request(base, method, path, auth, body=None, timeout=20):
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        h = {"Authorization": auth, "Connection": "close"}
        if body is not None:
            h["Content-Length"] = str(len(body))
        c.request(method, u.path.rstrip("/") + path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def writer(args, auth, idx, stop):
    rnd = random.Random(idx * 7919 + int(time.time()))
    keys = ["/%s/pc/w%d/k%d.bin" % (args.repo, idx, k) for k in range(args.keys)]
    while not stop.is_set():
        key = rnd.choice(keys)
        with lock:
            v = tried.get(key, 0) + 1
            tried[key] = v
        body = ("%s %d\n" % (key, v)).encode() + os.urandom(rnd.randint(512, 8192))
        with lock:
            shas[(key, v)] = hashlib.sha256(body).hexdigest()
        first = True
        while True:
            ph = phase(args)
            t0 = time.monotonic()
            try:
                st, data = request(args.lb, "PUT", key, auth, body)
                err = None if st == 201 else "status %d %s" % (st, data[:120])
            except Exception as e:  # a reset, a timeout
                err = repr(e)
            if err is None:
                dt = time.monotonic() - t0
                with lock:
                    acked[key] = max(acked.get(key, 0), v)
                    lat[ph].append(dt)
                bump(ph, "put_ok")
                if not first:
                    bump(ph, "put_retried_ok")
                break
            bump(ph, "put_failed")
            if first:
                note("%s PUT %s v%d: %s" % (ph, key, v, err))
            first = False
            if stop.is_set():
                bump(ph, "put_unacked")
                break
            time.sleep(0.2)


def reader(args, auth, idx, stop):
    rnd = random.Random(idx * 104729 + int(time.time()))
    nodes = args.nodes.split(",")
    while not stop.is_set():
        with lock:
            ks = list(acked.keys())
        if not ks:
            time.sleep(0.05)
            continue
        key = rnd.choice(ks)
        with lock:
            floor = acked[key]  # acknowledged before this read begins
        base = args.lb if rnd.random() < 0.5 else rnd.choice(nodes)
        ph = phase(args)
        try:
            st, data = request(base, "GET", key, auth, timeout=15)
        except Exception as e:
            bump(ph, "read_failed")
            note("%s GET %s%s: %r" % (ph, base, key, e))
            continue
        if st != 200:
            bump(ph, "read_failed")
            bump(ph, "read_%d" % st)
            continue
        head = data.split(b"\n", 1)[0].decode("utf-8", "replace").split(" ")
        try:
            v = int(head[1]) if len(head) == 2 and head[0] == key else -1
        except ValueError:
            v = -1
        with lock:
            want = shas.get((key, v))
        if v < 0 or want != hashlib.sha256(data).hexdigest():
            bump(ph, "corrupt")
            note("%s CORRUPT %s%s: %d bytes, names v%d" % (ph, base, key, len(data), v))
        elif v < floor:
            bump(ph, "stale")
            note("%s STALE %s%s: v%d, v%d was acknowledged before the read" % (ph, base, key, v, floor))
        else:
            bump(ph, "read_ok")


def verify(args, auth):
    bad = 0
    for node in args.nodes.split(","):
        for key in sorted(acked):
            lo, hi = acked[key], tried[key]
            ok = False
            for _ in range(3):
                try:
                    st, data = request(node, "GET", key, auth)
                    if st == 200:
                        v = int(data.split(b"\n", 1)[0].split(b" ")[1])
                        ok = lo <= v <= hi and shas[(key, v)] == hashlib.sha256(data).hexdigest()
                        break
                except Exception:
                    pass
                time.sleep(0.5)
            if not ok:
                bad += 1
                note("verify %s%s: not v%d..v%d" % (node, key, lo, hi))
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lb", required=True)
    ap.add_argument("--nodes", required=True)
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", required=True)
    ap.add_argument("--repo", default="libs")
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--keys", type=int, default=6)
    ap.add_argument("--phase-file", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max-seconds", type=float, default=400)
    ap.add_argument("--report", required=True)
    ap.add_argument("--progress-file")
    args = ap.parse_args()
    auth = "Basic " + base64.b64encode(("%s:%s" % (args.user, args.password)).encode()).decode()
    stop = threading.Event()
    threads = [threading.Thread(target=writer, args=(args, auth, i, stop)) for i in range(args.writers)]
    threads += [threading.Thread(target=reader, args=(args, auth, i, stop)) for i in range(args.readers)]
    for t in threads:
        t.start()
    t0 = time.time()
    while not os.path.exists(args.stop_file) and time.time() - t0 < args.max_seconds:
        if args.progress_file:
            with lock:
                ok_puts = sum(c["put_ok"] for c in counts.values())
                ok_reads = sum(c["read_ok"] for c in counts.values())
            tmp = args.progress_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d %d\n" % (ok_puts, ok_reads))
            os.replace(tmp, args.progress_file)
        time.sleep(0.1)
    timed_out = not os.path.exists(args.stop_file)
    stop.set()
    for t in threads:
        t.join()
    bad = verify(args, auth)
    total = defaultdict(int)
    phases = {}
    for ph in counts:
        l = sorted(lat[ph])
        c = dict(counts[ph])
        c["put_max_ms"] = int(l[-1] * 1000) if l else 0
        c["put_p99_ms"] = int(l[min(len(l) - 1, int(0.99 * len(l)))] * 1000) if l else 0
        phases[ph] = c
        print("phase %-12s %s" % (ph, " ".join("%s=%d" % kv for kv in sorted(c.items()))))
        for k, v in counts[ph].items():
            total[k] += v
    total["keys"] = len(acked)
    total["versions_acked"] = sum(acked.values())
    total["verify_bad"] = bad
    total["timed_out"] = int(timed_out)
    print("total " + " ".join("%s=%d" % kv for kv in sorted(total.items())))
    for e in examples[:25]:
        print("  " + e)
    with open(args.report, "w") as f:
        json.dump({"total": total, "phases": phases, "examples": examples}, f)
    ok = (total["stale"] == 0 and total["corrupt"] == 0 and bad == 0 and not timed_out
          and total["read_ok"] > 0 and total["put_ok"] > 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
