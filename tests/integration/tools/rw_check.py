#!/usr/bin/env python3
"""Read-after-write across cluster nodes.

rw_check.py ROUNDS PASSWORD URL1 URL2 [URL3...]

Each round writes through one node (chosen in turn) and reads the result at
once through every other node: artifact PUT (new bytes), DELETE, property
set and repository description change, in rotation. A read that does not
show the acknowledged write is a stale read. Prints the counts and the write
latencies (p50/p99) and exits 1 on any stale read or failed request.
"""
import base64
import hashlib
import http.client
import json
import sys
import time
import urllib.parse


def main():
    rounds, password, urls = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    auth = "Basic " + base64.b64encode(("admin:" + password).encode()).decode()
    conns = []
    for u in urls:
        p = urllib.parse.urlparse(u)
        conns.append((p.hostname, p.port))
    pool = {}

    def req(i, method, path, body=None, headers=None):
        h = {"Authorization": auth}
        h.update(headers or {})
        for attempt in range(2):
            c = pool.get(i)
            if c is None:
                c = pool[i] = http.client.HTTPConnection(*conns[i], timeout=30)
            try:
                c.request(method, path, body=body, headers=h)
                r = c.getresponse()
                data = r.read()
                return r.status, data
            except (http.client.HTTPException, OSError):
                c.close()
                pool.pop(i, None)
                if attempt:
                    raise
    stale = failed = reads = 0
    lat = []
    ops = ["put", "get-props", "delete", "repo"]
    for n in range(rounds):
        w = n % len(urls)
        op = ops[n % len(ops)]
        key = "/libs/rw/k%d/f.bin" % (n % 50)
        t0 = time.monotonic()
        if op == "put":
            body = ("round %d" % n).encode()
            st, _ = req(w, "PUT", key, body)
            ok, want = st == 201, ("ok", body)
        elif op == "get-props":
            st, _ = req(w, "PUT", key, b"x")
            if st == 201:
                st, _ = req(w, "PUT", "/api/storage" + key + "?properties=round=%d" % n)
            ok, want = st == 204, ("props", str(n))
        elif op == "delete":
            req(w, "PUT", key, b"y")
            st, _ = req(w, "DELETE", key)
            ok, want = st == 204, ("gone", None)
        else:
            body = json.dumps({"description": "round %d" % n})
            st, _ = req(w, "POST", "/api/repositories/libs", body,
                        {"Content-Type": "application/json"})
            ok, want = st == 200, ("repo", "round %d" % n)
        lat.append(time.monotonic() - t0)
        if not ok:
            failed += 1
            print("round %d: write %s through node %d failed: %d" % (n, op, w, st))
            continue
        for r in range(len(urls)):
            if r == w:
                continue
            reads += 1
            kind, val = want
            # binaries stay on the node that received them until replication
            # (issue "Blobs"); the cache protocol is about metadata, read here
            # through the storage API of every other node
            if kind == "ok":
                st, data = req(r, "GET", "/api/storage" + key)
                good = st == 200 and json.loads(data)["checksums"]["sha256"] == \
                    hashlib.sha256(val).hexdigest()
            elif kind == "gone":
                st, data = req(r, "GET", "/api/storage" + key)
                good = st == 404
            elif kind == "props":
                st, data = req(r, "GET", "/api/storage" + key + "?properties=round")
                good = st == 200 and json.loads(data).get("properties", {}).get("round") == [val]
            else:
                st, data = req(r, "GET", "/api/repositories/libs")
                good = st == 200 and json.loads(data).get("description") == val
            if not good:
                stale += 1
                print("round %d: STALE %s on node %d after write on node %d: %d %r"
                      % (n, kind, r, w, st, data[:80]))
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print("rounds %d reads %d stale %d failed %d write p50 %.1f ms p99 %.1f ms"
          % (rounds, reads, stale, failed, p(0.5), p(0.99)))
    sys.exit(1 if stale or failed else 0)


if __name__ == "__main__":
    main()
