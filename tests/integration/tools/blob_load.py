#!/usr/bin/env python3
"""Load and checks for the redundant storage tests (21_blobs.bats).

  blob_load.py upload N LIST PASS REPO URL...   N uploads round-robin over the
      URLs (4 threads); the acknowledged ones (201) go to LIST as "path sha256"
  blob_load.py verify LIST PASS REPO URL...     GET every listed path from every
      URL; prints "checked N bad N" (bad: not 200, or wrong sha256)
  blob_load.py gcloop SECONDS PASS REPO URL...  clients upload, delete and
      re-upload a few contents while garbage collection with grace 0 runs in a
      loop; every upload must be acknowledged (201), every delete 204, and
      after every upload the artifact must be readable with the right sha256
      from every node. Prints "puts N lost N failed N gcs N" (failed: uploads
      and deletes that were refused).
"""
import base64
import hashlib
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request


def req(method, url, pw, data=None, timeout=60):
    r = urllib.request.Request(url, data=data, method=method)
    r.add_header("Authorization", "Basic " + base64.b64encode(("admin:" + pw).encode()).decode())
    try:
        with urllib.request.urlopen(r, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception as e:  # connection refused, reset, truncated body
        return 0, str(e).encode()


def upload(n, out, pw, repo, urls):
    lock = threading.Lock()
    acked = []
    counter = iter(range(n))
    contents = [os.urandom(random.randint(1, 300) * 1024) for _ in range(8)]

    def worker():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            body = os.urandom(random.randint(1, 300) * 1024) if i % 4 else random.choice(contents)
            path = "load/%d/f%d.bin" % (i % 10, i)
            st, _ = req("PUT", "%s/%s/%s" % (urls[i % len(urls)], repo, path), pw, body)
            if st == 201:
                with lock:
                    acked.append((path, hashlib.sha256(body).hexdigest()))

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    with open(out, "w") as f:
        for p, s in acked:
            f.write("%s %s\n" % (p, s))
    print("acked %d of %d" % (len(acked), n))


def verify(lst, pw, repo, urls):
    bad = checked = 0
    for line in open(lst):
        path, sha = line.split()
        for u in urls:
            st, body = req("GET", "%s/%s/%s" % (u, repo, path), pw)
            checked += 1
            if st != 200 or hashlib.sha256(body).hexdigest() != sha:
                bad += 1
                print("BAD %s %s: %d %s" % (u, path, st, body[:120]))
    print("checked %d bad %d" % (checked, bad))
    return 1 if bad else 0


def gcloop(seconds, pw, repo, urls):
    stop = time.time() + seconds
    contents = [os.urandom(random.randint(1, 64) * 1024) for _ in range(4)]
    lock = threading.Lock()
    stats = {"puts": 0, "lost": 0, "failed": 0, "gcs": 0}

    def gc():
        while time.time() < stop:
            st, _ = req("POST", "%s/api/system/storage/gc?graceSeconds=0" % urls[0], pw)
            if st == 200:
                with lock:
                    stats["gcs"] += 1

    def client(w):
        i = 0
        while time.time() < stop:
            i += 1
            body = contents[(w + i) % len(contents)]
            sha = hashlib.sha256(body).hexdigest()
            path = "gc/w%d/p%d" % (w, i % 3)
            st, got = req("PUT", "%s/%s/%s" % (urls[(w + i) % len(urls)], repo, path), pw, body)
            if st != 201:
                # a collection racing an upload must never make it fail
                with lock:
                    stats["failed"] += 1
                print("FAILED PUT %s: %d %s" % (path, st, got[:160]))
                continue
            with lock:
                stats["puts"] += 1
            for u in urls:
                st, got = req("GET", "%s/%s/%s" % (u, repo, path), pw)
                if st != 200 or hashlib.sha256(got).hexdigest() != sha:
                    with lock:
                        stats["lost"] += 1
                    print("LOST %s %s: %d %s" % (u, path, st, got[:160]))
            # delete it again: its binary becomes garbage unless another path holds it
            st, got = req("DELETE", "%s/%s/%s" % (urls[i % len(urls)], repo, path), pw)
            if st != 204:
                with lock:
                    stats["failed"] += 1
                print("FAILED DELETE %s: %d %s" % (path, st, got[:160]))

    ts = [threading.Thread(target=gc)] + [threading.Thread(target=client, args=(w,)) for w in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("puts %d lost %d failed %d gcs %d" % (stats["puts"], stats["lost"], stats["failed"],
                                                stats["gcs"]))
    return 1 if stats["lost"] or stats["failed"] or not stats["puts"] or not stats["gcs"] else 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "upload":
        upload(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    elif cmd == "verify":
        sys.exit(verify(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]))
    elif cmd == "gcloop":
        sys.exit(gcloop(float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]))
    else:
        sys.exit("unknown command " + cmd)
