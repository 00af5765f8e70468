"""pypi_dist.py - small, real Python distributions for the PyPI tests, made
in memory without a build backend: a wheel (PEP 427: the package, its
.dist-info METADATA, WHEEL and RECORD with hashes) or an sdist (a .tar.gz
with PKG-INFO), and twine's upload form as multipart/form-data bytes.
Installable by pip; stdlib only. Used by 32_pypi.bats (CLI below) and by
the authorization model's driver (authz_ops.py).

    python3 pypi_dist.py wheel OUTDIR NAME VERSION [options]
    python3 pypi_dist.py sdist OUTDIR NAME VERSION [options]
      --requires-python SPEC   --requires-dist REQ (repeatable)
      --meta-name NAME --meta-version V   what METADATA says (default: the same)
      --pad BYTES              a description of that many bytes in METADATA
      --filename NAME          the file's name (default: the standard one)
      --payload BYTES          random bytes in the wheel's package (wheels only)
    prints the path written
"""

import argparse
import base64
import gzip
import hashlib
import io
import os
import re
import sys
import tarfile
import zipfile


def _escape(name):
    """The name as wheel and sdist file names write it (PEP 427/625)."""
    return re.sub(r"[-_.]+", "_", name)


def metadata(name, version, requires_python=None, requires_dist=(), pad=0, summary=None):
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             f"Summary: {summary if summary is not None else name + ' for tests'}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    for r in requires_dist:
        lines.append(f"Requires-Dist: {r}")
    lines.append("Description-Content-Type: text/plain")
    body = "x" * pad
    return ("\n".join(lines) + "\n\n" + body).encode()


def wheel_bytes(name, version, requires_python=None, requires_dist=(), meta_name=None,
                meta_version=None, pad=0, payload=0):
    """A pure-Python wheel whose module <name>_mod holds VERSION (and
    payload random bytes in <name>_mod/data.bin)."""
    mod = _escape(name).lower() + "_mod"
    di = f"{_escape(name)}-{version}.dist-info"
    files = {
        f"{mod}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{di}/METADATA": metadata(meta_name or name, meta_version or version, requires_python,
                                   requires_dist, pad),
        f"{di}/WHEEL": b"Wheel-Version: 1.0\nGenerator: pypi_dist\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if payload:
        files[f"{mod}/data.bin"] = os.urandom(payload)
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{di}/RECORD,,")
    files[f"{di}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return out.getvalue()


def wheel_metadata(name, version):
    """The METADATA of wheel_bytes(name, version): what the index serves as its .metadata."""
    return metadata(name, version)


def wheel_name(name, version):
    return f"{_escape(name)}-{version}-py3-none-any.whl"


def sdist_bytes(name, version, requires_python=None, meta_name=None, meta_version=None, pad=0):
    top = f"{_escape(name)}-{version}"
    members = {
        f"{top}/PKG-INFO": metadata(meta_name or name, meta_version or version, requires_python,
                                    (), pad),
        f"{top}/README": b"an sdist for tests\n",
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for path, data in members.items():
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            ti.mtime = 1704067200  # the same bytes every time
            t.addfile(ti, io.BytesIO(data))
    return gzip.compress(out.getvalue(), mtime=0)


def sdist_name(name, version):
    return f"{_escape(name)}-{version}.tar.gz"


def upload_form(name, version, filename, content, extra=None):
    """twine's form (:action=file_upload, the metadata fields, the digests,
    the file as the part 'content'): (body, content type)."""
    fields = [(":action", "file_upload"), ("protocol_version", "1"), ("name", name),
              ("version", version),
              ("filetype", "bdist_wheel" if filename.endswith(".whl") else "sdist"),
              ("pyversion", "py3" if filename.endswith(".whl") else "source"),
              ("metadata_version", "2.1"),
              ("sha256_digest", hashlib.sha256(content).hexdigest()),
              ("md5_digest", hashlib.md5(content).hexdigest())]
    fields += list(extra or [])
    boundary = "pypi-dist-" + hashlib.sha1(content).hexdigest()[:16]
    out = io.BytesIO()
    for k, v in fields:
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n".encode())
        out.write(v.encode() + b"\r\n")
    out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; "
              f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n".encode())
    out.write(content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["wheel", "sdist"])
    ap.add_argument("outdir")
    ap.add_argument("name")
    ap.add_argument("version")
    ap.add_argument("--requires-python")
    ap.add_argument("--requires-dist", action="append", default=[])
    ap.add_argument("--meta-name")
    ap.add_argument("--meta-version")
    ap.add_argument("--pad", type=int, default=0)
    ap.add_argument("--filename")
    ap.add_argument("--payload", type=int, default=0)
    a = ap.parse_args()
    if a.kind == "wheel":
        data = wheel_bytes(a.name, a.version, a.requires_python, a.requires_dist, a.meta_name,
                           a.meta_version, a.pad, a.payload)
        fn = a.filename or wheel_name(a.name, a.version)
    else:
        data = sdist_bytes(a.name, a.version, a.requires_python, a.meta_name, a.meta_version, a.pad)
        fn = a.filename or sdist_name(a.name, a.version)
    os.makedirs(a.outdir, exist_ok=True)
    path = os.path.join(a.outdir, fn)
    with open(path, "wb") as f:
        f.write(data)
    print(path)


if __name__ == "__main__":
    sys.exit(main())
