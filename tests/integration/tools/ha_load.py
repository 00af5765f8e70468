#!/usr/bin/env python3
"""ha_load.py - the client loop of the HA acceptance test (70_lb.bats).

N clients PUT new artifacts, GET them back (sha256 checked) and HEAD them,
through the load balancer, until the stop file appears. The phase named in
the phase file labels every failure (the phase when it failed). A failed PUT is retried (same path and
bytes) until it succeeds or 30 s pass; only then is the artifact
"acknowledged". At the end every acknowledged artifact is fetched from every
node directly and its sha256 compared. Prints one summary line per phase and
a final line; writes the totals as JSON to --report.

A HEAD must carry X-Checksum-Sha256 with the artifact's sha256. Stopping at
--max-seconds instead of at the stop file is a failure (the test lost
track of the loop), reported as "stopped max-seconds".

Exit status: 0 when no GET or HEAD failed, every PUT was acknowledged in the
end, every node served every acknowledged artifact with its sha256, and the
stop file ended the loop.
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
acked = {}  # path -> sha256
counts = defaultdict(lambda: defaultdict(int))  # phase -> name -> n
errors = []


def phase(args):
    try:
        with open(args.phase_file) as f:
            return f.read().strip() or "steady"
    except OSError:
        return "steady"


def bump(ph, name, n=1):
    with lock:
        counts[ph][name] += n


def request(base, method, path, auth, body=None, timeout=30):
    """One request on a fresh connection: (status, body bytes, headers) or raises."""
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        h = {"Authorization": auth, "Connection": "close"}
        if body is not None:
            h["Content-Length"] = str(len(body))
        c.request(method, u.path.rstrip("/") + path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, data, r
    finally:
        c.close()


def client(args, auth, idx, stop):
    rnd = random.Random(idx * 7919 + int(time.time()))
    n = 0
    mine = []
    while not stop.is_set():
        op = rnd.random()
        if op < 0.3 or not mine:
            n += 1
            path = "/%s/ha/c%d/a%05d.bin" % (args.repo, idx, n)
            body = os.urandom(rnd.randint(1024, 64 * 1024))
            sha = hashlib.sha256(body).hexdigest()
            ph = phase(args)
            t_end = time.time() + 30
            first = True
            fph = ph
            while True:
                try:
                    st, data, _ = request(args.lb, "PUT", path, auth, body)
                    err = None if st == 201 else "status %d %s" % (st, data[:200])
                except Exception as e:  # connection reset, timeout
                    err = repr(e)
                if err is None:
                    bump(ph, "put_ok")
                    if not first:
                        bump(fph, "put_retried_ok")
                    with lock:
                        acked[path] = sha
                    mine.append(path)
                    break
                if first:
                    # labelled with the phase at the failure (a PUT that began
                    # just before a node was killed fails in the kill phase)
                    fph = phase(args)
                    bump(fph, "put_failed")
                    with lock:
                        errors.append("%s PUT %s: %s" % (fph, path, err))
                    first = False
                if time.time() > t_end:
                    bump(ph, "put_unacked")
                    break
                time.sleep(0.2)
            continue
        path = rnd.choice(mine)
        with lock:
            sha = acked[path]
        ph = phase(args)
        method = "GET" if op < 0.75 else "HEAD"
        try:
            st, data, resp = request(args.lb, method, path, auth)
            if st != 200:
                err = "status %d %s" % (st, data[:200])
            elif method == "GET" and hashlib.sha256(data).hexdigest() != sha:
                err = "wrong sha256 (%d bytes)" % len(data)
            elif method == "HEAD" and resp.getheader("X-Checksum-Sha256") != sha:
                err = "X-Checksum-Sha256 %r" % resp.getheader("X-Checksum-Sha256")
            else:
                err = None
        except Exception as e:
            err = repr(e)
        key = method.lower()
        if err is None:
            bump(ph, key + "_ok")
        else:
            fph = phase(args)
            bump(fph, key + "_failed")
            with lock:
                errors.append("%s %s %s: %s" % (fph, method, path, err))


def verify(args, auth):
    """Every acknowledged artifact from every node directly: missing or wrong."""
    bad = 0
    for node in args.nodes.split(","):
        for path, sha in sorted(acked.items()):
            try:
                st, data, _ = request(node, "GET", path, auth)
                ok = st == 200 and hashlib.sha256(data).hexdigest() == sha
            except Exception:
                ok = False
            if not ok:
                bad += 1
                if bad <= 10:
                    errors.append("verify %s%s: missing or wrong" % (node, path))
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lb", required=True)
    ap.add_argument("--nodes", required=True, help="comma-separated node URLs")
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", required=True)
    ap.add_argument("--repo", default="libs")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--phase-file", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max-seconds", type=float, default=150)
    ap.add_argument("--report", required=True)
    args = ap.parse_args()
    auth = "Basic " + base64.b64encode(("%s:%s" % (args.user, args.password)).encode()).decode()
    stop = threading.Event()
    threads = [threading.Thread(target=client, args=(args, auth, i, stop)) for i in range(args.clients)]
    for t in threads:
        t.start()
    t0 = time.time()
    while not os.path.exists(args.stop_file) and time.time() - t0 < args.max_seconds:
        time.sleep(0.1)
    timed_out = not os.path.exists(args.stop_file)
    stop.set()
    for t in threads:
        t.join()
    bad = verify(args, auth)
    total = defaultdict(int)
    for ph in counts:
        line = " ".join("%s=%d" % (k, v) for k, v in sorted(counts[ph].items()))
        print("phase %-10s %s" % (ph, line))
        for k, v in counts[ph].items():
            total[k] += v
    total["acked"] = len(acked)
    total["verify_bad"] = bad
    total["nodes"] = len(args.nodes.split(","))
    total["timed_out"] = int(timed_out)
    if timed_out:
        print("stopped max-seconds: %.0f s without the stop file" % args.max_seconds)
    print("total " + " ".join("%s=%d" % (k, v) for k, v in sorted(total.items())))
    for e in errors[:20]:
        print("  " + e)
    with open(args.report, "w") as f:
        json.dump({"total": total, "phases": counts, "errors": errors[:50]}, f)
    ok = (total["get_failed"] == 0 and total["head_failed"] == 0 and total["put_unacked"] == 0
          and bad == 0 and total["get_ok"] > 0 and total["put_ok"] > 0 and not timed_out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
