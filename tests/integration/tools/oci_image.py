#!/usr/bin/env python3
"""oci_image.py - build an OCI image layout by hand, for the registry tests
and the benchmark (no registry on the internet is reachable here).

    oci_image.py DIR TAG [--layers N] [--size BYTES] [--seed S] [--shared K]
                 [--arch amd64,arm64] [--label k=v]

Each layer is a gzip tar of one file of BYTES pseudo-random bytes (seeded,
so two runs with the same seed make the same layers; with --shared K the
first K layers come from --shared-seed, so images built with different
--seed values share them). With several --arch
values the tag names an image index whose entries are one image per
architecture. The layout is what `skopeo copy oci:DIR:TAG ...` reads.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import tarfile


def put_blob(root, data):
    d = hashlib.sha256(data).hexdigest()
    path = os.path.join(root, "blobs", "sha256", d)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
    return "sha256:" + d, len(data)


def layer(seed, size, name):
    rnd = random.Random(seed)
    payload = rnd.randbytes(size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        info.mtime = 0
        t.addfile(info, io.BytesIO(payload))
    tar = raw.getvalue()
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    # level 1 and mtime 0: fast, and the same bytes every time
    gz = gzip.compress(tar, compresslevel=1, mtime=0)
    return gz, diff_id


def image(root, args, arch, label_pairs):
    layers, diff_ids = [], []
    for i in range(args.layers):
        seed = f"{args.seed}-{args.tag}-{arch}-{i}"
        if i < args.shared:
            seed = f"{args.shared_seed}-{arch}-{i}"
        gz, diff = layer(seed, args.size, f"file{i}.bin")
        dg, n = put_blob(root, gz)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": dg, "size": n})
        diff_ids.append(diff)
    config = {
        "architecture": arch, "os": "linux",
        "config": {"Labels": label_pairs, "Cmd": ["/file0.bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "created": "2026-01-01T00:00:00Z",
    }
    cdg, cn = put_blob(root, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cdg, "size": cn},
        "layers": layers,
    }
    mdg, mn = put_blob(root, json.dumps(manifest).encode())
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdg,
            "size": mn, "platform": {"architecture": arch, "os": "linux"}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("tag")
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--seed", default="granary")
    ap.add_argument("--shared", type=int, default=0,
                    help="the first K layers come from --shared-seed (the same in every image)")
    ap.add_argument("--shared-seed", default="shared")
    ap.add_argument("--arch", default="amd64")
    ap.add_argument("--label", action="append", default=[])
    args = ap.parse_args()
    root = args.dir
    os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    labels = dict(kv.split("=", 1) for kv in args.label)
    archs = args.arch.split(",")
    descs = [image(root, args, a, labels) for a in archs]
    if len(descs) == 1:
        top = dict(descs[0])
        top.pop("platform")
    else:
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": descs}
        dg, n = put_blob(root, json.dumps(index).encode())
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": dg, "size": n}
    top["annotations"] = {"org.opencontainers.image.ref.name": args.tag}
    ipath = os.path.join(root, "index.json")
    idx = {"schemaVersion": 2, "manifests": []}
    if os.path.exists(ipath):
        with open(ipath) as f:
            idx = json.load(f)
        idx["manifests"] = [m for m in idx["manifests"]
                            if m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                            != args.tag]
    idx["manifests"].append(top)
    with open(ipath, "w") as f:
        json.dump(idx, f)
    print(top["digest"])


if __name__ == "__main__":
    main()
