#!/usr/bin/env python3
"""A node's cluster port that sends wrong bytes (21_blobs.bats,
64_security_cluster_port.bats).

  fake_holder.py PORT FILE MODE LOG [KEYFILE]

GET /v1/blobs/<sha256> answers FILE's bytes (or the range asked for, 206)
with one byte flipped in the middle of its second 64 KiB block (of the
middle byte for a file of two blocks or less). MODE is a comma-separated
list of:

  crc      X-Granary-Block-Crc32c holds the checksums of the true FILE, as
           a real holder sends the checksums it checked its copy against
           (the bytes changed on the way)
  nocrc    no X-Granary-Block-Crc32c
  forged   X-Granary-Block-Crc32c holds the checksums of the bytes sent
           (both changed on the way)
  good     the true bytes, with their checksums (an honest holder)
  wrongkey answers are signed, but with another key than KEYFILE's
  v1       answer as a node of the older version: never signed, and the
           checksums (of a whole binary only) in that version's form

The checksums are in the form the request asks for (v2: "65536 <size>
<first block> <hex>" of the blocks sent; v1: "65536 <hex>" of a whole
binary). With KEYFILE (the join key), answers to v2 requests are signed as
granaryd signs them, by the node the request is for. Any other call
answers 200 {} (DELETE: 204), signed likewise. Every request goes to LOG,
one line each: method and path, then tab-separated the Range header, the
X-Granary-Auth and the X-Granary-Auth-V2 headers ("-" when absent).
Signatures of requests are not checked: this stands in for a peer, it
does not test the cluster port.
"""
import http.server
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_sign  # noqa: E402

BLOCK = 65536


def crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def block_crcs(data):
    return ["%08x" % crc32c(data[i:i + BLOCK]) for i in range(0, len(data), BLOCK)]


def main():
    port, path, mode, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    modes = set(mode.split(","))
    key = cluster_sign.read_key(sys.argv[5]) if len(sys.argv) > 5 else None
    if key is not None and "wrongkey" in modes:
        key = b"not-" + key
    good = open(path, "rb").read()
    bad = bytearray(good)
    at = BLOCK + BLOCK // 2 if len(good) > 2 * BLOCK else len(good) // 2
    bad[at] ^= 0xFF
    bad = bytes(bad)
    sent = good if "good" in modes else bad
    true_crcs, sent_crcs = block_crcs(good), block_crcs(sent)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def note(self):
            with open(log, "a") as f:
                f.write("%s %s\t%s\t%s\t%s\n" % (
                    self.command, self.path, self.headers.get("Range") or "-",
                    self.headers.get("X-Granary-Auth") or "-",
                    self.headers.get("X-Granary-Auth-V2") or "-"))

        def request_v2(self):
            """(this node's id, the request's MAC) of a v2 request, or None."""
            v = self.headers.get("X-Granary-Auth-V2") or self.headers.get("X-Granary-Auth") or ""
            f = v.split()
            return (f[2], f[5]) if len(f) == 6 and f[0] == "v2" else None

        def send(self, status, body, sha="", blocks="", extra=(), signed_body=True):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            if blocks:
                self.send_header("X-Granary-Block-Crc32c", blocks)
            v2 = self.request_v2()
            if key is not None and v2 and "v1" not in modes:
                self.send_header("X-Granary-Answer-Auth", cluster_sign.sign_answer(
                    key, v2[1], v2[0], status, sha, blocks, body if signed_body else b""))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.note()
            p = self.path.split("?")[0]
            if not (p.startswith("/v1/blobs/") and p.count("/") == 3):
                self.send(200, b"{}")
                return
            sha = p[len("/v1/blobs/"):]
            first, last, status, extra = 0, len(sent) - 1, 200, []
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                a, b = rng[6:].split("-")
                first, last, status = int(a), min(int(b), len(sent) - 1), 206
                extra.append(("Content-Range", "bytes %d-%d/%d" % (first, last, len(sent))))
            fb, lb = first // BLOCK, last // BLOCK
            crcs = sent_crcs if "forged" in modes else true_crcs
            blocks = ""
            if "nocrc" in modes:
                pass
            elif self.request_v2() and "v1" not in modes:
                blocks = "%d %d %d %s" % (BLOCK, len(sent), fb, "".join(crcs[fb:lb + 1]))
            elif status == 200:
                blocks = "%d %s" % (BLOCK, "".join(crcs))
            self.send(status, sent[first:last + 1], sha, blocks, extra, signed_body=False)

        def do_POST(self):
            self.note()
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            p = self.path.split("?")[0]
            sha = p.split("/")[3] if p.startswith("/v1/blobs/") and p.count("/") >= 3 else ""
            if self.command == "DELETE":
                self.send(204, b"", sha)
            else:
                self.send(200, b"{}", sha)

        do_DELETE = do_POST

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
