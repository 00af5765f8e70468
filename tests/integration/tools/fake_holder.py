#!/usr/bin/env python3
"""A node's cluster port that sends wrong bytes (21_blobs.bats).

  fake_holder.py PORT FILE MODE LOG

GET /v1/blobs/<sha256> answers FILE's bytes with one byte flipped in the
middle of its second 64 KiB block. MODE "crc": with the header
X-Granary-Block-Crc32c holding the checksums of the true FILE, as a real
holder sends the checksums it checked its copy against (the bytes changed
on the way); MODE "nocrc": without it, as a node of an older version (the
reader then checks sha256). Any other call answers 200 {}. The method and
path of every request go to LOG, one line each. Signatures are not
checked: this stands in for a peer, it does not test the cluster port.
"""
import http.server
import sys

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


def main():
    port, path, mode, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    good = open(path, "rb").read()
    bad = bytearray(good)
    at = BLOCK + BLOCK // 2 if len(good) > 2 * BLOCK else len(good) // 2
    bad[at] ^= 0xFF
    crcs = "%d %s" % (
        BLOCK,
        "".join("%08x" % crc32c(good[i:i + BLOCK]) for i in range(0, len(good), BLOCK)),
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def note(self):
            with open(log, "a") as f:
                f.write("%s %s\n" % (self.command, self.path))

        def send(self, body, extra=()):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.note()
            if self.path.startswith("/v1/blobs/") and self.path.count("/") == 3:
                extra = [("X-Granary-Block-Crc32c", crcs)] if mode == "crc" else []
                self.send(bytes(bad), extra)
            else:
                self.send(b"{}")

        def do_POST(self):
            self.note()
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            self.send(b"{}")

        do_DELETE = do_POST

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
