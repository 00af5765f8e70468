#!/usr/bin/env python3
"""oci_conformance.py - every endpoint and error code of the OCI
Distribution Specification v1.1 against a registry, in the manner of the
spec's own conformance suite (Go, not available offline): pull, push
(monolithic, POST+PUT, chunked in and out of order, status, cancel,
mount), manifests of the four types and artifacts with a subject, the
referrers API, tags with n/last/Link, the catalog, deletes, the error
shape, and the token handshake.

    oci_conformance.py BASE_URL USER:PASS NAME [--nodes URL,URL]

NAME is <repository key>/<image>. With --nodes, chunks of one upload are
sent through those URLs in turn (other nodes of the same cluster).
Prints one line per check and 'N passed, N failed'; exits 1 on a failure.
"""
import base64
import hashlib
import http.client
import json
import os
import re
import sys
import urllib.parse

BASE, CREDS, NAME = sys.argv[1], sys.argv[2], sys.argv[3]
NODES = []
if "--nodes" in sys.argv:
    NODES = sys.argv[sys.argv.index("--nodes") + 1].split(",")
AUTH = "Basic " + base64.b64encode(CREDS.encode()).decode()
passed = failed = 0

ERROR_CODES = {"BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
               "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
               "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED",
               "TOOMANYREQUESTS"}


def req(method, path, body=None, headers=None, base=None, auth=True):
    u = urllib.parse.urlsplit(base or BASE)
    if path.startswith("http"):
        pu = urllib.parse.urlsplit(path)
        path = pu.path + ("?" + pu.query if pu.query else "")
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    h = dict(headers or {})
    if auth and "Authorization" not in h:
        h["Authorization"] = AUTH
    if body is not None and "Content-Length" not in h:
        h["Content-Length"] = str(len(body))
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def req_refused_early(method, path, length, headers):
    """Headers only, with Expect: 100-continue: the answer a registry gives
    before the body (a refusal by Content-Length)."""
    import socket
    u = urllib.parse.urlsplit(BASE)
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    h = dict(headers, Authorization=AUTH, Host=u.netloc, Expect="100-continue")
    h["Content-Length"] = str(length)
    s.sendall((f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
               + "\r\n").encode())
    r = http.client.HTTPResponse(s)
    r.begin()
    data = r.read() if r.status != 100 else b""
    s.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def check(what, cond, info=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what} {info}")


def error_code(data):
    try:
        errs = json.loads(data)["errors"]
        return errs[0]["code"] if errs and all(e["code"] in ERROR_CODES for e in errs) else None
    except Exception:
        return None


def expect(what, got, status, code=None):
    st, _, data = got
    ok = st == status and (code is None or error_code(data) == code)
    check(what, ok, f"status {st} body {data[:300]!r}")


def digest(b, alg="sha256"):
    return f"{alg}:" + hashlib.new(alg, b).hexdigest()


def push_blob(b, name=NAME):
    st, h, _ = req("POST", f"/v2/{name}/blobs/uploads/?digest={digest(b)}", b,
                   {"Content-Type": "application/octet-stream"})
    return st


# ---- base, auth ----
st, h, data = req("GET", "/v2/")
check("GET /v2/ answers 200", st == 200, f"{st}")
check("Docker-Distribution-API-Version: registry/2.0",
      h.get("docker-distribution-api-version") == "registry/2.0")
expect("GET /v2 (no slash) answers as /v2/", req("GET", "/v2"), 200)
st, h, data = req("GET", "/v2/", auth=False)
check("anonymous GET /v2/: 401 with a Bearer challenge",
      st == 401 and h.get("www-authenticate", "").startswith("Bearer realm="), f"{st} {h}")
st, h, data = req("POST", f"/v2/{NAME}/blobs/uploads/", b"", auth=False)
check("anonymous push: 401 UNAUTHORIZED", st == 401 and error_code(data) == "UNAUTHORIZED",
      f"{st} {data!r}")
chal = h.get("www-authenticate", "")
check("401 carries a Bearer challenge with realm, service and scope",
      chal.startswith("Bearer ") and "realm=" in chal and "service=" in chal and
      f'scope="repository:{NAME}:' in chal, chal)
realm = chal.split('realm="')[1].split('"')[0] if "realm=" in chal else BASE + "/v2/token"
service = chal.split('service="')[1].split('"')[0] if "service=" in chal else ""
q = urllib.parse.urlencode({"service": service, "scope": f"repository:{NAME}:pull,push"})
st, h, data = req("GET", urllib.parse.urlsplit(realm).path + "?" + q)
tok = json.loads(data) if st == 200 else {}
check("token endpoint: token, access_token, expires_in, issued_at",
      all(k in tok for k in ("token", "access_token", "expires_in", "issued_at")), data[:200])
check("token endpoint grants pull,push", tok.get("scope") == f"repository:{NAME}:pull,push",
      tok.get("scope"))
BEARER = {"Authorization": "Bearer " + tok.get("token", "")}
expect("bearer token accepted on /v2/", req("GET", "/v2/", headers=BEARER), 200)
expect("token endpoint refuses anonymous", req("GET", "/v2/token", auth=False), 401)
st, h, data = req("GET", f"/v2/{NAME}/tags/list",
                  headers={"Authorization": "Bearer " + "0" * len(tok.get("token", "x"))})
check("an unknown or expired token: 401 UNAUTHORIZED with the Bearer challenge",
      st == 401 and error_code(data) == "UNAUTHORIZED" and
      h.get("www-authenticate", "").startswith("Bearer realm=") and
      h.get("docker-distribution-api-version") == "registry/2.0", f"{st} {h} {data!r}")
BAD = {"Authorization": "Basic " + base64.b64encode(b"no-such-oci-user:wrong").decode()}
expect("bad credentials at the token endpoint: 401 UNAUTHORIZED",
       req("GET", "/v2/token?scope=repository:x/y:pull", headers=BAD), 401, "UNAUTHORIZED")
st, h, data = req("GET", "/v2/", headers=BAD)
check("bad credentials at /v2/: 401 UNAUTHORIZED with the Bearer challenge",
      st == 401 and error_code(data) == "UNAUTHORIZED" and
      h.get("www-authenticate", "").startswith("Bearer realm="), f"{st} {h} {data!r}")

# ---- names ----
expect("invalid name: 400 NAME_INVALID", req("GET", "/v2/x/UPPER/tags/list"), 400, "NAME_INVALID")
expect("unknown repository: 404 NAME_UNKNOWN",
       req("GET", "/v2/no-such-repo-key/img/tags/list"), 404, "NAME_UNKNOWN")
expect("tags of an image with nothing: 404 NAME_UNKNOWN",
       req("GET", f"/v2/{NAME}-none/tags/list"), 404, "NAME_UNKNOWN")

# ---- blobs: monolithic POST ----
config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                     "diff_ids": []}, "config": {"Labels": {"conformance": "yes"}}}).encode()
layer = os.urandom(100000)
st, h, _ = req("POST", f"/v2/{NAME}/blobs/uploads/?digest={digest(config)}", config,
               {"Content-Type": "application/octet-stream"})
check("monolithic POST ?digest=: 201 with Location and Docker-Content-Digest",
      st == 201 and h.get("location", "").endswith(f"/v2/{NAME}/blobs/{digest(config)}") and
      h.get("docker-content-digest") == digest(config), f"{st} {h}")
expect("monolithic POST with a wrong digest: 400 DIGEST_INVALID",
       req("POST", f"/v2/{NAME}/blobs/uploads/?digest={digest(b'other')}", b"x"), 400,
       "DIGEST_INVALID")
expect("POST with a malformed digest: 400 DIGEST_INVALID",
       req("POST", f"/v2/{NAME}/blobs/uploads/?digest=sha256:zz", b"x"), 400, "DIGEST_INVALID")

# ---- POST + PUT ----
st, h, _ = req("POST", f"/v2/{NAME}/blobs/uploads/", b"")
loc = h.get("location", "")
check("POST: 202 with Location", st == 202 and "/blobs/uploads/" in loc, f"{st} {h}")
check("the upload location contains a UUID",
      re.search(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", loc), loc)
st, h, _ = req("PUT", f"{loc}?digest={digest(layer)}", layer,
               {"Content-Type": "application/octet-stream"})
check("PUT with the whole blob: 201", st == 201 and h.get("docker-content-digest") == digest(layer),
      f"{st} {h}")
st, h, data = req("HEAD", f"/v2/{NAME}/blobs/{digest(layer)}")
check("HEAD blob: 200 with Content-Length and Docker-Content-Digest",
      st == 200 and h.get("content-length") == str(len(layer)) and
      h.get("docker-content-digest") == digest(layer) and data == b"", f"{st} {h}")
st, h, data = req("GET", f"/v2/{NAME}/blobs/{digest(layer)}")
check("GET blob: the bytes", st == 200 and data == layer, f"{st}")
etag = h.get("etag")
st, h, data = req("GET", f"/v2/{NAME}/blobs/{digest(layer)}", headers={"If-None-Match": etag or "x"})
check("GET blob with its ETag in If-None-Match: 304", etag and st == 304 and data == b"",
      f"{etag} {st}")
st, h, data = req("GET", f"/v2/{NAME}/blobs/{digest(layer)}", headers={"Range": "bytes=10-99"})
check("GET blob with Range: 206 and the range", st == 206 and data == layer[10:100] and
      h.get("content-range") == f"bytes 10-99/{len(layer)}", f"{st} {h}")
st, h, data = req("GET", f"/v2/{NAME}/blobs/{digest(layer)}", headers={"Range": "bytes=-5"})
check("GET blob with a suffix Range", st == 206 and data == layer[-5:], f"{st}")
st, h, _ = req("GET", f"/v2/{NAME}/blobs/{digest(layer)}",
               headers={"Range": f"bytes={len(layer) + 10}-"})
check("GET blob with an unsatisfiable Range: 416", st == 416, f"{st}")
expect("GET unknown blob: 404 BLOB_UNKNOWN",
       req("GET", f"/v2/{NAME}/blobs/{digest(b'nothing here')}"), 404, "BLOB_UNKNOWN")
expect("HEAD unknown blob: 404", req("HEAD", f"/v2/{NAME}/blobs/{digest(b'nothing here')}"), 404)
expect("GET blob by an invalid digest: 400 DIGEST_INVALID",
       req("GET", f"/v2/{NAME}/blobs/sha256:1234"), 400, "DIGEST_INVALID")
expect("GET blob by an unknown algorithm: 400 DIGEST_INVALID",
       req("GET", f"/v2/{NAME}/blobs/md5:d41d8cd98f00b204e9800998ecf8427e"), 400, "DIGEST_INVALID")

# ---- sha512 ----
b512 = os.urandom(3000)
st, h, _ = req("POST", f"/v2/{NAME}/blobs/uploads/?digest={digest(b512, 'sha512')}", b512)
check("sha512 digest: 201", st == 201 and h.get("docker-content-digest") == digest(b512, "sha512"),
      f"{st} {h}")
st, _, data = req("GET", f"/v2/{NAME}/blobs/{digest(b512, 'sha512')}")
check("GET by sha512 digest", st == 200 and data == b512, f"{st}")
expect("wrong sha512 digest: 400 DIGEST_INVALID",
       req("POST", f"/v2/{NAME}/blobs/uploads/?digest={digest(b'x', 'sha512')}", b"y"), 400,
       "DIGEST_INVALID")

# ---- chunked ----
big = os.urandom(300000)
chunks = [big[:100000], big[100000:200000], big[200000:]]
st, h, _ = req("POST", f"/v2/{NAME}/blobs/uploads/", b"")
loc = h.get("location", "")
uid = loc.rsplit("/", 1)[-1]
off = 0
for i, ch in enumerate(chunks[:2]):
    base = NODES[i % len(NODES)] if NODES else None
    st, h, _ = req("PATCH", loc, ch, {"Content-Type": "application/octet-stream",
                                       "Content-Range": f"{off}-{off + len(ch) - 1}"}, base=base)
    off += len(ch)
    check(f"PATCH chunk {i + 1} in order: 202 with Range 0-{off - 1}",
          st == 202 and h.get("range") == f"0-{off - 1}" and "location" in h, f"{st} {h}")
st, h, data = req("PATCH", loc, b"zzz", {"Content-Type": "application/octet-stream",
                                         "Content-Range": "5-7"})
check("PATCH out of order: 416 with the current Range",
      st == 416 and h.get("range") == f"0-{off - 1}", f"{st} {h} {data!r}")
st, h, _ = req("PATCH", loc, b"zzz", {"Content-Range": "garbage"})
check("PATCH with a malformed Content-Range: 416", st == 416, f"{st}")
st, h, _ = req("GET", loc, base=NODES[-1] if NODES else None)
check("GET upload status: 204 with Range", st == 204 and h.get("range") == f"0-{off - 1}",
      f"{st} {h}")
st, h, _ = req("PUT", f"{loc}?digest={digest(big)}", chunks[2],
               {"Content-Type": "application/octet-stream",
                "Content-Range": f"{off}-{off + len(chunks[2]) - 1}"},
               base=NODES[2 % len(NODES)] if NODES else None)
check("PUT last chunk ?digest=: 201", st == 201, f"{st} {h}")
st, _, data = req("GET", f"/v2/{NAME}/blobs/{digest(big)}")
check("chunked blob reads back whole", st == 200 and data == big, f"{st} {len(data)}")
expect("the finished session is gone: 404 BLOB_UPLOAD_UNKNOWN", req("GET", loc), 404,
       "BLOB_UPLOAD_UNKNOWN")

# stream mode (PATCH without Content-Range), then PUT with an empty body
st, h, _ = req("POST", f"/v2/{NAME}/blobs/uploads/", b"")
loc = h["location"]
stream = os.urandom(70000)
req("PATCH", loc, stream[:30000], {"Content-Type": "application/octet-stream"})
st, h, _ = req("PATCH", loc, stream[30000:], {"Content-Type": "application/octet-stream"})
check("PATCH without Content-Range appends", st == 202 and h.get("range") == "0-69999", f"{h}")
expect("PUT without digest: 400 DIGEST_INVALID", req("PUT", loc, b""), 400, "DIGEST_INVALID")
expect("PUT with a wrong digest: 400 DIGEST_INVALID",
       req("PUT", f"{loc}?digest={digest(b'no')}", b""), 400, "DIGEST_INVALID")
expect("PUT empty body finishes: 201", req("PUT", f"{loc}?digest={digest(stream)}", b""), 201)

# cancel
st, h, _ = req("POST", f"/v2/{NAME}/blobs/uploads/", b"")
loc = h["location"]
expect("DELETE upload: 204", req("DELETE", loc), 204)
expect("cancelled upload: 404 BLOB_UPLOAD_UNKNOWN", req("PATCH", loc, b"x"), 404,
       "BLOB_UPLOAD_UNKNOWN")
expect("unknown session: 404 BLOB_UPLOAD_UNKNOWN",
       req("GET", f"/v2/{NAME}/blobs/uploads/01234567-89ab-4def-8123-456789abcdef"), 404,
       "BLOB_UPLOAD_UNKNOWN")
expect("a session id of another shape: 404 BLOB_UPLOAD_UNKNOWN",
       req("GET", f"/v2/{NAME}/blobs/uploads/0123456789abcdef0123456789abcdef"), 404,
       "BLOB_UPLOAD_UNKNOWN")

# empty blob
expect("empty blob: 201", req("POST", f"/v2/{NAME}/blobs/uploads/?digest={digest(b'')}", b""), 201)

# ---- mount ----
other = NAME + "-mounted"
st, h, _ = req("POST", f"/v2/{other}/blobs/uploads/?mount={digest(layer)}&from={NAME}", b"")
check("mount from a readable repository: 201", st == 201 and
      h.get("docker-content-digest") == digest(layer), f"{st} {h}")
expect("mounted blob readable", req("HEAD", f"/v2/{other}/blobs/{digest(layer)}"), 200)
st, h, _ = req("POST", f"/v2/{other}/blobs/uploads/?mount={digest(b'absent')}&from={NAME}", b"")
check("mount of an unknown blob: 202 upload session", st == 202 and "location" in h, f"{st}")

# ---- manifests ----
cfg_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config),
            "size": len(config)}
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": cfg_desc, "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": digest(layer), "size": len(layer)}],
       "annotations": {"k": "v"}}
mb = json.dumps(man).encode()
MT = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
st, h, _ = req("PUT", f"/v2/{NAME}/manifests/v1", mb, MT)
check("PUT manifest by tag: 201 Location, Docker-Content-Digest", st == 201 and
      h.get("docker-content-digest") == digest(mb) and
      h.get("location", "").endswith(f"/v2/{NAME}/manifests/{digest(mb)}"), f"{st} {h}")
expect("PUT manifest by digest: 201", req("PUT", f"/v2/{NAME}/manifests/{digest(mb)}", mb, MT), 201)
expect("PUT manifest whose digest differs: 400 DIGEST_INVALID",
       req("PUT", f"/v2/{NAME}/manifests/{digest(b'x')}", mb, MT), 400, "DIGEST_INVALID")
for ref in ("v1", digest(mb)):
    st, h, data = req("GET", f"/v2/{NAME}/manifests/{ref}", headers={"Accept": MT["Content-Type"]})
    check(f"GET manifest by {ref[:10]}: bytes, Content-Type, Docker-Content-Digest",
          st == 200 and data == mb and h.get("content-type") == MT["Content-Type"] and
          h.get("docker-content-digest") == digest(mb), f"{st} {h}")
    st, h, data = req("HEAD", f"/v2/{NAME}/manifests/{ref}")
    check(f"HEAD manifest by {ref[:10]}", st == 200 and h.get("content-length") == str(len(mb)) and
          h.get("docker-content-digest") == digest(mb) and data == b"", f"{st} {h}")
expect("GET manifest not accepted: 404 MANIFEST_UNKNOWN",
       req("GET", f"/v2/{NAME}/manifests/v1",
           headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"}),
       404, "MANIFEST_UNKNOWN")
expect("GET unknown tag: 404 MANIFEST_UNKNOWN", req("GET", f"/v2/{NAME}/manifests/nope"), 404,
       "MANIFEST_UNKNOWN")
expect("GET unknown digest: 404 MANIFEST_UNKNOWN",
       req("GET", f"/v2/{NAME}/manifests/{digest(b'q')}"), 404, "MANIFEST_UNKNOWN")
expect("GET manifest by an invalid digest: 400 DIGEST_INVALID",
       req("GET", f"/v2/{NAME}/manifests/sha256:abc"), 400, "DIGEST_INVALID")
missing = dict(man, layers=[{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                             "digest": digest(b"never pushed"), "size": 12}])
st, _, data = req("PUT", f"/v2/{NAME}/manifests/broken", json.dumps(missing).encode(), MT)
check("manifest with a missing blob: 400 MANIFEST_BLOB_UNKNOWN with the digest",
      st == 400 and error_code(data) == "MANIFEST_BLOB_UNKNOWN" and
      json.loads(data)["errors"][0]["detail"].get("digest") == digest(b"never pushed"),
      f"{st} {data!r}")
expect("manifest not JSON: 400 MANIFEST_INVALID",
       req("PUT", f"/v2/{NAME}/manifests/bad", b"{not json", MT), 400, "MANIFEST_INVALID")
expect("manifest with schemaVersion 1: 400 MANIFEST_INVALID",
       req("PUT", f"/v2/{NAME}/manifests/bad", json.dumps(dict(man, schemaVersion=1)).encode(),
           MT), 400, "MANIFEST_INVALID")
expect("mediaType differing from Content-Type: 400 MANIFEST_INVALID",
       req("PUT", f"/v2/{NAME}/manifests/bad", mb,
           {"Content-Type": "application/vnd.oci.image.index.v1+json"}), 400, "MANIFEST_INVALID")
expect("invalid tag: 400 MANIFEST_INVALID",
       req("PUT", f"/v2/{NAME}/manifests/-bad", mb, MT), 400, "MANIFEST_INVALID")
expect("tag of 129 characters refused",
       req("PUT", f"/v2/{NAME}/manifests/{'a' * 129}", mb, MT), 400, "MANIFEST_INVALID")
expect("tag of 128 characters accepted",
       req("PUT", f"/v2/{NAME}/manifests/{'a' * 128}", mb, MT), 201)
st, _, data = req_refused_early("PUT", f"/v2/{NAME}/manifests/huge", 4 * 1024 * 1024 + 1, MT)
check("manifest over 4 MiB: 413 MANIFEST_INVALID",
      st == 413 and error_code(data) == "MANIFEST_INVALID", f"{st}")
big_man = dict(man, annotations={"pad": ""})
big_man["annotations"]["pad"] = "p" * (4 * 1024 * 1024 - len(json.dumps(big_man).encode()))
bb = json.dumps(big_man).encode()
st, h, _ = req("PUT", f"/v2/{NAME}/manifests/big4", bb, MT)
check("a manifest of 4 MiB exactly: 201", len(bb) == 4 * 1024 * 1024 and st == 201, f"{st}")
st, h, data = req("GET", f"/v2/{NAME}/manifests/{digest(bb)}")
check("the 4 MiB manifest reads back byte for byte", st == 200 and data == bb, f"{st}")
wrong_size = dict(man, layers=[dict(man["layers"][0], size=5)])
expect("descriptor size differing from the blob: 400 MANIFEST_INVALID",
       req("PUT", f"/v2/{NAME}/manifests/bad", json.dumps(wrong_size).encode(), MT), 400,
       "MANIFEST_INVALID")

# docker schema 2 and a docker list, an OCI index
dman = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": digest(layer), "size": len(layer)}]}
dmb = json.dumps(dman).encode()
DT = "application/vnd.docker.distribution.manifest.v2+json"
expect("Docker schema 2 manifest: 201", req("PUT", f"/v2/{NAME}/manifests/docker",
                                            dmb, {"Content-Type": DT}), 201)
st, h, _ = req("GET", f"/v2/{NAME}/manifests/docker", headers={"Accept": DT})
check("Docker manifest served with its type", st == 200 and h.get("content-type") == DT, f"{h}")
for mt, entry_t in (("application/vnd.oci.image.index.v1+json", MT["Content-Type"]),
                    ("application/vnd.docker.distribution.manifest.list.v2+json", DT)):
    idx = {"schemaVersion": 2, "mediaType": mt, "manifests": [
        {"mediaType": entry_t, "digest": digest(mb if entry_t != DT else dmb),
         "size": len(mb if entry_t != DT else dmb),
         "platform": {"architecture": "amd64", "os": "linux"}}]}
    ib = json.dumps(idx).encode()
    st, h, _ = req("PUT", f"/v2/{NAME}/manifests/list-{mt[-20:-5].replace('.', '-')}", ib,
                   {"Content-Type": mt})
    check(f"index {mt}: 201", st == 201, f"{st}")
    st, h, data = req("GET", f"/v2/{NAME}/manifests/{digest(ib)}", headers={"Accept": mt})
    check(f"index {mt} reads back", st == 200 and data == ib and h.get("content-type") == mt)
bad_idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [{"mediaType": MT["Content-Type"], "digest": digest(b"no manifest"),
                          "size": 3}]}
expect("index with a missing manifest: 400 MANIFEST_BLOB_UNKNOWN",
       req("PUT", f"/v2/{NAME}/manifests/badidx", json.dumps(bad_idx).encode(),
           {"Content-Type": "application/vnd.oci.image.index.v1+json"}), 400,
       "MANIFEST_BLOB_UNKNOWN")

# ---- referrers: artifacts with a subject ----
empty = b"{}"
push_blob(empty)
ED = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(empty), "size": 2}
refs = []
for at in ("application/vnd.example.sbom", "application/vnd.example.sig"):
    art = {"schemaVersion": 2, "mediaType": MT["Content-Type"], "artifactType": at,
           "config": ED, "layers": [ED],
           "subject": {"mediaType": MT["Content-Type"], "digest": digest(mb), "size": len(mb)},
           "annotations": {"org.example": at}}
    ab = json.dumps(art).encode()
    st, h, _ = req("PUT", f"/v2/{NAME}/manifests/{digest(ab)}", ab, MT)
    check(f"artifact {at} with subject: 201 with OCI-Subject",
          st == 201 and h.get("oci-subject") == digest(mb), f"{st} {h}")
    refs.append((at, digest(ab), len(ab)))
# a subject that does not exist is accepted
ghost = {"schemaVersion": 2, "mediaType": MT["Content-Type"], "artifactType": "x/y",
         "config": ED, "layers": [ED],
         "subject": {"mediaType": MT["Content-Type"], "digest": digest(b"ghost"), "size": 5}}
expect("artifact whose subject is not there yet: 201",
       req("PUT", f"/v2/{NAME}/manifests/{digest(json.dumps(ghost).encode())}",
           json.dumps(ghost).encode(), MT), 201)
st, h, data = req("GET", f"/v2/{NAME}/referrers/{digest(mb)}")
doc = json.loads(data) if st == 200 else {}
got = sorted((m.get("artifactType"), m["digest"], m["size"]) for m in doc.get("manifests", []))
check("referrers: an image index of the referrers' descriptors",
      st == 200 and h.get("content-type") == "application/vnd.oci.image.index.v1+json" and
      doc.get("schemaVersion") == 2 and got == sorted(refs) and
      all(m.get("annotations", {}).get("org.example") == m.get("artifactType")
          for m in doc.get("manifests", [])), f"{st} {data[:400]!r}")
check("referrers unfiltered: no OCI-Filters-Applied", "oci-filters-applied" not in h)
st, h, data = req("GET", f"/v2/{NAME}/referrers/{digest(mb)}?artifactType="
                  + urllib.parse.quote("application/vnd.example.sig", safe=""))
doc = json.loads(data) if st == 200 else {}
check("referrers filtered by artifactType, OCI-Filters-Applied: artifactType",
      st == 200 and h.get("oci-filters-applied") == "artifactType" and
      [m["digest"] for m in doc.get("manifests", [])] == [refs[1][1]], f"{st} {h} {data!r}")
# artifactType of a descriptor: the manifest's, else its config's mediaType;
# an index without one has none
S2 = {"mediaType": MT["Content-Type"], "digest": digest(b"second subject"), "size": 14}
cfg_typed = {"schemaVersion": 2, "mediaType": MT["Content-Type"],
             "config": dict(ED, mediaType="application/vnd.example.cfg"), "layers": [],
             "subject": S2}
idx_ref = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [], "subject": S2, "annotations": {"k": "v"}}
for doc_, ct in ((cfg_typed, MT["Content-Type"] + "; charset=utf-8"),
                 (idx_ref, "application/vnd.oci.image.index.v1+json")):
    b_ = json.dumps(doc_).encode()
    st, h, _ = req("PUT", f"/v2/{NAME}/manifests/{digest(b_)}", b_, {"Content-Type": ct})
    check(f"referrer {doc_['mediaType']} (Content-Type {ct}): 201 with OCI-Subject",
          st == 201 and h.get("oci-subject") == S2["digest"], f"{st} {h}")
st, h, data = req("GET", f"/v2/{NAME}/referrers/{S2['digest']}")
doc = json.loads(data) if st == 200 else {}
by_type = {m["mediaType"]: m for m in doc.get("manifests", [])}
check("referrers: a manifest without artifactType has its config's mediaType",
      by_type.get(MT["Content-Type"], {}).get("artifactType") == "application/vnd.example.cfg",
      f"{data!r}")
check("referrers: an index without artifactType has none, and its annotations",
      "artifactType" not in by_type.get("application/vnd.oci.image.index.v1+json", {"artifactType": 1})
      and by_type["application/vnd.oci.image.index.v1+json"].get("annotations") == {"k": "v"},
      f"{data!r}")
st, _, data = req("GET", f"/v2/{NAME}/referrers/{digest(b'nobody')}")
check("referrers of an unknown subject: 200 empty index",
      st == 200 and json.loads(data).get("manifests") == [], f"{st}")
expect("referrers with an invalid digest: 400 DIGEST_INVALID",
       req("GET", f"/v2/{NAME}/referrers/sha256:xyz"), 400, "DIGEST_INVALID")

# ---- tags ----
for t in ("b", "a", "c", "d"):
    req("PUT", f"/v2/{NAME}/manifests/{t}", mb, MT)
st, h, data = req("GET", f"/v2/{NAME}/tags/list")
tags = json.loads(data)["tags"] if st == 200 else []
check("tags list: lexical order, name", st == 200 and tags == sorted(tags) and
      json.loads(data)["name"] == NAME and {"a", "b", "c", "d", "v1"} <= set(tags), f"{data!r}")
st, h, data = req("GET", f"/v2/{NAME}/tags/list?n=2")
page = json.loads(data)["tags"] if st == 200 else []
check("tags list n=2: two, and a Link to the next page",
      page == tags[:2] and 'rel="next"' in h.get("link", "") and
      f"last={tags[1]}" in h.get("link", ""), f"{page} {h.get('link')}")
st, h, data = req("GET", f"/v2/{NAME}/tags/list?n=2&last=b")
page = json.loads(data)["tags"] if st == 200 else []
check("tags list last=b: the next two after b", page == [t for t in tags if t > "b"][:2], f"{page}")
st, h, data = req("GET", f"/v2/{NAME}/tags/list?last={tags[-1]}")
check("tags list after the last: empty, no Link",
      st == 200 and json.loads(data)["tags"] == [] and "link" not in h, f"{data!r}")
st, h, data = req("GET", f"/v2/{NAME}/tags/list?n=0")
check("tags list n=0: empty, no Link", st == 200 and json.loads(data)["tags"] == [] and
      "link" not in h, f"{data!r} {h}")

# ---- catalog (a second image with a manifest) ----
req("POST", f"/v2/{other}/blobs/uploads/?mount={digest(config)}&from={NAME}", b"")
expect("manifest in the image blobs were mounted into: 201",
       req("PUT", f"/v2/{other}/manifests/m", mb, MT), 201)
st, h, data = req("GET", "/v2/_catalog")
check("catalog lists the image", st == 200 and NAME in json.loads(data)["repositories"], f"{data!r}")
st, h, data = req("GET", "/v2/_catalog?n=1")
check("catalog n=1: one and a Link", st == 200 and len(json.loads(data)["repositories"]) == 1 and
      'rel="next"' in h.get("link", ""), f"{data!r} {h.get('link')}")

# ---- deletes ----
expect("DELETE tag: 202", req("DELETE", f"/v2/{NAME}/manifests/d"), 202)
expect("deleted tag: 404 MANIFEST_UNKNOWN", req("GET", f"/v2/{NAME}/manifests/d"), 404,
       "MANIFEST_UNKNOWN")
expect("manifest kept after its tag is deleted", req("HEAD", f"/v2/{NAME}/manifests/{digest(mb)}"),
       200)
dman2 = dict(dman, annotations={"x": "delete me"})
db2 = json.dumps(dman2).encode()
req("PUT", f"/v2/{NAME}/manifests/todelete", db2, {"Content-Type": DT})
expect("DELETE manifest by digest: 202", req("DELETE", f"/v2/{NAME}/manifests/{digest(db2)}"), 202)
expect("deleted manifest: 404", req("GET", f"/v2/{NAME}/manifests/{digest(db2)}"), 404,
       "MANIFEST_UNKNOWN")
expect("its tag went with it", req("GET", f"/v2/{NAME}/manifests/todelete"), 404,
       "MANIFEST_UNKNOWN")
expect("DELETE unknown manifest: 404 MANIFEST_UNKNOWN",
       req("DELETE", f"/v2/{NAME}/manifests/{digest(b'none')}"), 404, "MANIFEST_UNKNOWN")
expect("DELETE blob: 202", req("DELETE", f"/v2/{NAME}/blobs/{digest(stream)}"), 202)
expect("deleted blob: 404 BLOB_UNKNOWN", req("GET", f"/v2/{NAME}/blobs/{digest(stream)}"), 404,
       "BLOB_UNKNOWN")
expect("DELETE unknown blob: 404 BLOB_UNKNOWN",
       req("DELETE", f"/v2/{NAME}/blobs/{digest(b'none')}"), 404, "BLOB_UNKNOWN")
expect("unsupported method: 405 UNSUPPORTED", req("PUT", f"/v2/{NAME}/tags/list", b""), 405,
       "UNSUPPORTED")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
