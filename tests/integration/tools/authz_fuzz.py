#!/usr/bin/env python3
"""authz_fuzz.py - drive one running granaryd as random users and compare
every answer, and every state change, with the reference model
(authz_model.py, docs/security.md).

    authz_fuzz.py --url http://127.0.0.1:PORT --admin-pass PASS [--seed N]
                  [--ops N | --seconds S] [--max-mismatches 20]

As the built-in admin it builds a random world (users, groups, permission
targets with overlapping include/exclude patterns, generic, npm, Maven and
PyPI repositories, content, properties, trash), then runs random operations as
random callers (users by password or token, admins, anonymous with
anonymous access on or off), now and then changing the world (targets,
group membership, admin flags, anonymous access) to exercise cache
invalidation. After every operation that may change something it reads the
affected state back as admin and compares it with the model; on a mismatch
it prints the seed, the operation index, the request, what the model
expects and why, what came back, and the part of the world that decides,
then adopts the server's state and goes on. Exit 1 if anything mismatched.
Stdlib only.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import random
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import authz_model as M  # noqa: E402
import pypi_dist  # noqa: E402

FOLDERS = ["a", "b", "c"]
FILES = ["x.txt", "y.bin", "i.html", "s.svg", "j.js", "z.bak"]
INCLUDES = [
    "**", "**", "a/**", "b/**", "a/b/**", "c/**", "**/*.txt", "**/b/**", "*/b/**", "a/*",
    "?/**", "**/x.*", "*.txt", "**/*.tgz", "*", "**/lib/**", "a/**/*.html", "**/*.jar", "@c/**",
]
EXCLUDES = ["**/*.bin", "a/b/**", "**/s.svg", "c/**", "**/*.html", "b/*", "**/-/**", "**/2.0/**", "**/*.js",
            "**/_tags/**"]
NPM_NAMES = ["a", "b", "@c/p"]
DOCKER_IMAGES = ["a", "b/app", "c"]
DOCKER_TAGS = ["1", "2", "latest"]
NPM_VERSIONS = ["1.0.0", "1.1.0", "2.0.0", "2.1.0"]
MVN_GROUPS = ["a", "a/b", "c"]
MVN_ARTS = ["lib", "app"]
MVN_VERS = ["1.0", "2.0"]
PYPI_NAMES = ["a", "b", "c-d"]
PYPI_VERSIONS = ["1.0", "2.0", "2.1"]
PROP_KEYS = ["p", "q"]
PROP_VALS = ["1", "2", "3"]
POOL = [f"content-{i}\n".encode() for i in range(6)]
NEVER = b"never stored anywhere\n"
GENERIC = "generic"

PLUGIN = b"""return { executions = {
    hello = function(params, ctx) return { hello = ctx.user } end,
    adm = { admin = true, run = function(params, ctx) return "ok" end },
} }
"""


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def docker_image(rng):
    """A manifest and its blobs (config, one layer): (bytes, digest, [(digest, bytes)])."""
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "n": rand_hex(rng, 8)}).encode()
    layer = f"layer {rand_hex(rng, 16)}\n".encode()
    blobs = [("sha256:" + sha256(cfg), cfg), ("sha256:" + sha256(layer), layer)]
    man = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blobs[0][0],
                   "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blobs[1][0],
                    "size": len(layer)}]}).encode()
    return man, "sha256:" + sha256(man), blobs


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        self._json = False

    def json(self):
        if self._json is False:
            try:
                self._json = json.loads(self.body)
            except ValueError:
                self._json = None
        return self._json

    def text(self, n=300):
        t = self.body.decode(errors="replace").replace("\n", " ")
        return t if len(t) <= n else t[:n] + "..."


class Mismatch(Exception):
    pass


class Driver:
    def __init__(self, args):
        u = urllib.parse.urlparse(args.url)
        self.host, self.port = u.hostname, u.port
        self.admin_pass = args.admin_pass
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.max_mismatches = args.max_mismatches
        self.verbose = args.verbose
        self.sec = M.Security()
        self.c = M.Content()
        self.mismatches = []
        self.kinds = {}
        self.coverage = {}
        self.op_index = -1
        self.op_name = "setup"
        self.affected = set()
        self.requests = 0
        self.counts = {}
        self.ROOT = M.Principal("root", "admin", "password")
        self.quiet = False
        self.trace = open(args.trace, "w") if args.trace else None

    # ---- HTTP --------------------------------------------------------------

    def http(self, method, url, auth=None, body=None, headers=None):
        h = dict(headers or {})
        if isinstance(auth, dict):  # a UI session: its cookie and CSRF token
            h.update(auth)
        elif auth:
            h["Authorization"] = auth
        if body is not None and not isinstance(body, bytes):
            body = body.encode()
        if body is None and method in ("PUT", "POST"):
            body = b""
        for attempt in range(3):
            conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                conn.request(method, url, body=body, headers=h)
                r = conn.getresponse()
                data = r.read()
                self.requests += 1
                return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
            except (ConnectionError, http.client.HTTPException) as e:
                if attempt == 2:
                    raise
                time.sleep(0.2)
            finally:
                conn.close()

    def auth(self, p):
        if p.kind == "anon":
            return None
        if p.kind == "root":
            return "Basic " + base64.b64encode(f"admin:{self.admin_pass}".encode()).decode()
        u = self.sec.users[p.name]
        if p.via == "session":
            return self.session_headers(u.session, u.csrf)
        if p.via == "token":
            if self.rng.random() < 0.3:
                return "Basic " + base64.b64encode(f"{u.name}:{u.token}".encode()).decode()
            return "Bearer " + u.token
        return "Basic " + base64.b64encode(f"{u.name}:{u.password}".encode()).decode()

    @staticmethod
    def session_headers(cookie, csrf):
        """A UI session's request: the cookie, and the CSRF token every change needs."""
        return {"Cookie": f"granary_session={cookie}", "X-CSRF-Token": csrf}

    def open_session(self, name, password):
        """Sign in as the web UI does: (cookie, csrf), or None."""
        r = self.http("POST", "/api/ui/session", None, json.dumps({"user": name, "password": password}),
                      {"Content-Type": "application/json"})
        m = re.search(r"granary_session=(grs_[0-9a-f]+)", r.headers.get("set-cookie", ""))
        if r.status != 200 or not m:
            return None
        return m.group(1), (r.json() or {}).get("csrfToken")

    def root(self, method, url, body=None, headers=None, want=None):
        r = self.http(method, url, self.auth(self.ROOT), body, headers)
        if want and r.status not in want:
            raise RuntimeError(f"admin {method} {url}: {r.status} {r.text()}")
        return r

    def root_json(self, method, url, obj, want=None):
        return self.root(method, url, json.dumps(obj), {"Content-Type": "application/json"}, want)

    # ---- reporting ---------------------------------------------------------

    def mismatch(self, p, method, url, exp, got, problems, repo=None):
        m = {
            "seed": self.seed,
            "op": self.op_index,
            "name": self.op_name,
            "who": str(p),
            "request": f"{method} {url}",
            "rule": exp.rule if exp else "",
            "expected": [sorted(o.statuses) for o in exp.outcomes] if exp else [],
            "got": got.status if got is not None else None,
            "body": got.text() if got is not None else "",
            "problems": problems,
            "world": self.sec.describe(p if p.kind != "root" else None),
        }
        self.record(m)

    def record(self, m):
        """Print the first mismatch of each kind (operation, statuses,
        problem); count the others. Stop after max_mismatches kinds."""
        self.mismatches.append(m)
        prob = re.sub(r"[:(\[].*", "", m["problems"][0]) if m["problems"] else ""
        if m["name"].endswith("(state)"):
            prob = "state"
        key = (m["name"], str(m["expected"]), m["got"], prob)
        m["kind"] = key
        self.kinds[key] = self.kinds.get(key, 0) + 1
        if self.verbose and self.kinds[key] > 1:
            print(self.format(m), flush=True)
        if self.kinds[key] == 1:
            print(self.format(m), flush=True)
            if len(self.kinds) >= self.max_mismatches:
                raise Mismatch()

    @staticmethod
    def format(m):
        out = [
            f"MISMATCH seed={m['seed']} op={m['op']} ({m['name']}) as {m['who']}",
            f"  request:  {m['request']}",
            f"  rule:     {m['rule']}",
            f"  expected: {' or '.join('/'.join(map(str, s)) for s in m['expected'])}",
            f"  got:      {m['got']} {m['body']}",
        ]
        for pr in m["problems"]:
            out.append(f"  problem:  {pr}")
        out.append("  world:    " + "\n            ".join(m["world"]))
        return "\n".join(out)

    # ---- one checked request ----------------------------------------------------

    def step(self, p, method, url, exp, body=None, headers=None, repo=None):
        """Send as p, check the status against exp and the answer against the
        chosen outcome's check; apply its change to the model."""
        r = self.http(method, url, self.auth(p), body, headers)
        if self.trace:
            self.trace.write(f"{self.op_index} {p} {method} {url} -> {r.status}\n")
        self.affected |= exp.affects
        tags = set(exp.tags)
        if p.kind == "user" and p.via == "token" and self.sec.user_is_admin(p.name):
            tags.add("F7 a token of an admin user")
        if p.kind == "user" and p.via == "session":
            tags.add("UI a session cookie")
        for t in tags:
            self.coverage[t] = self.coverage.get(t, 0) + 1
        out = exp.pick(r.status)
        if out is None:
            self.mismatch(p, method, url, exp, r, [], repo)
            self.affected.add("*resync")
            return r, None
        if out.check:
            probs = out.check(r)
            if probs:
                self.mismatch(p, method, url, exp, r, probs, repo)
        if out.apply:
            out.apply(self.c)
        return r, out

    # ---- reading the server's state as admin -------------------------------------

    def snap_files(self, repo):
        r = self.root("GET", f"/api/storage/{repo}/?list&deep=1")
        if r.status == 404:
            return {}
        return {f["uri"].lstrip("/"): f.get("sha2") for f in (r.json() or {}).get("files", [])}

    def snap_props(self):
        """(repo, path) -> properties, for every item with a key we use."""
        out = {}
        for k in PROP_KEYS + ["pypi.normalized_name"]:  # and PyPI's files, which carry theirs
            r = self.root("GET", f"/api/search/prop?{k}=*", headers={"X-Result-Detail": "properties"})
            for res in (r.json() or {}).get("results", []):
                rp = uri_repo_path(res["uri"])
                if rp:
                    # docker.* are the registry's own (docs/oci.md): not the model's
                    out[rp] = {kk: sorted(vv) for kk, vv in res.get("properties", {}).items()
                               if not kk.startswith("docker.")}
        return out

    def snap_trash(self):
        r = self.root("GET", "/api/trash/list?limit=10000")
        out = {}
        for it in (r.json() or {}).get("items", []):
            props = {k: sorted(v) for k, v in (it.get("properties") or {}).items()}
            out[(it["repo"], it["path"])] = [it["sha256"], props]
        return out

    def snap_npm(self):
        out = {}
        for n in NPM_NAMES:
            r = self.root("GET", f"/api/npm/{self.npm_repo}/{npm_enc(n)}")
            if r.status == 200:
                vers = list((r.json() or {}).get("versions", {}))
                if vers:
                    out[n] = {v: None for v in vers}
        return out

    def compare_state(self):
        """Read back what the last operation may have changed, compare with
        the model, then adopt the server's view (so one mismatch does not
        cascade, and folder properties the model does not know are learned)."""
        aff = self.affected
        self.affected = set()
        if not aff:
            return
        resync = "*resync" in aff
        repos = [r for r in self.sec.repos if r in aff or resync]
        props = self.snap_props() if repos or "props" in aff else None
        problems = []
        for repo in repos:
            got = self.snap_files(repo)
            want = {p: v[0] for p, v in self.c.repo_files(repo).items()}
            for path in sorted(set(got) | set(want)):
                if got.get(path) != want.get(path):
                    problems.append(
                        f"{repo}:{path}: server {short(got.get(path))}, model {short(want.get(path))}"
                    )
            # adopt files, keeping model properties where the server agrees below
            for path in list(want):
                if path not in got:
                    del self.c.files[(repo, path)]
            for path, sha in got.items():
                if (repo, path) not in self.c.files:
                    self.c.files[(repo, path)] = [sha, {}]
                else:
                    self.c.files[(repo, path)][0] = sha
        if props is not None:
            for (repo, path), (sha, fp) in sorted(self.c.files.items()):
                if repo not in repos and "props" not in aff:
                    continue
                sp = props.get((repo, path), {})
                if sp != fp:
                    problems.append(f"properties of {repo}:{path}: server {sp}, model {fp}")
                    self.c.files[(repo, path)][1] = sp
            for repo in self.sec.repos:
                for f in self.c.existing_folders(repo):
                    if (repo, f) in self.c.files:
                        continue
                    known = self.c.fprops.get((repo, f), {})
                    sp = props.get((repo, f), {})
                    if known is not None and known != sp:
                        problems.append(f"properties of folder {repo}:{f or '/'}: server {sp}, model {known}")
                    self.c.fprops[(repo, f)] = sp
        if "trash" in aff or resync:
            got = self.snap_trash()
            for k in sorted(set(got) | set(self.c.trash)):
                g, w = got.get(k), self.c.trash.get(k)
                if g != w:
                    problems.append(f"trash {k[0]}:{k[1]}: server {short_item(g)}, model {short_item(w)}")
            self.c.trash = got
        if "npm" in aff or resync:
            got = self.snap_npm()
            for n in sorted(set(got) | set(self.c.npm)):
                g, w = sorted(got.get(n, {})), sorted(self.c.npm.get(n, {}))
                if g != w:
                    problems.append(f"npm {n}: server versions {g}, model {w}")
            self.c.npm = {n: {v: None for v in vs} for n, vs in got.items()}
        # after a refused status the state is only adopted: the status said it
        if problems and not self.quiet and not resync:
            exp = M.Expect(self.last_rule, [M.Outcome({self.last_status})])
            m = {
                "seed": self.seed,
                "op": self.op_index,
                "name": self.op_name + " (state)",
                "who": str(self.last_who),
                "request": self.last_req,
                "rule": self.last_rule,
                "expected": [sorted(o.statuses) for o in exp.outcomes],
                "got": self.last_status,
                "body": "",
                "problems": problems[:12],
                "world": self.sec.describe(self.last_who if self.last_who.kind != "root" else None),
            }
            self.record(m)

    # ---- the world -------------------------------------------------------------------

    def setup(self):
        rng = self.rng
        sec = self.sec
        # repositories
        keys = ["g1", "g2", "g3"] + (["g4"] if rng.random() < 0.5 else [])
        for k in keys:
            ex = "**/*.bak" if k == "g3" else ""
            body = {"rclass": "local", "packageType": "generic"}
            if ex:
                body["excludesPattern"] = ex
            self.root_json("PUT", f"/api/repositories/{k}", body, {200})
            sec.repos[k] = M.Repo(k, GENERIC, ex)
        self.npm_repo, self.mvn_repo, self.pypi_repo, self.docker_repo = "n1", "m1", "p1", "d1"
        self.root_json("PUT", "/api/repositories/n1", {"rclass": "local", "packageType": "npm"}, {200})
        self.root_json("PUT", "/api/repositories/m1", {"rclass": "local", "packageType": "maven"}, {200})
        self.root_json("PUT", "/api/repositories/p1", {"rclass": "local", "packageType": "pypi"}, {200})
        self.root_json("PUT", "/api/repositories/d1", {"rclass": "local", "packageType": "docker"}, {200})
        sec.repos["n1"] = M.Repo("n1", "npm")
        sec.repos["m1"] = M.Repo("m1", "maven")
        sec.repos["p1"] = M.Repo("p1", "pypi")
        sec.repos["d1"] = M.Repo("d1", "docker")
        # a remote repository whose upstream is g1 on this node (fetched as admin; no negative
        # cache), and a virtual one of g2 then that remote (docs/remote.md)
        self.remote_repo, self.virtual_repo = "r1", "v1"
        self.root_json("PUT", "/api/repositories/r1",
                       {"rclass": "remote", "packageType": "generic", "url": f"http://{self.host}:{self.port}/g1",
                        "username": "admin", "password": self.admin_pass, "missedRetrievalCachePeriodSecs": 0},
                       {200})
        sec.repos["r1"] = M.Repo("r1", GENERIC, rclass="remote", upstream="g1")
        self.root_json("PUT", "/api/repositories/v1",
                       {"rclass": "virtual", "packageType": "generic", "repositories": ["g2", "r1"],
                        "defaultDeploymentRepo": "g2"}, {200})
        sec.repos["v1"] = M.Repo("v1", GENERIC, rclass="virtual", members=["g2", "r1"], deploy="g2")
        # groups, users
        for g in ["gA", "gB"]:
            sec.groups[g] = M.Group(g, rng.random() < 0.2)
            self.root_json(
                "PUT", f"/api/security/groups/{g}", {"description": g, "autoJoin": False,
                                                     "adminPrivileges": sec.groups[g].admin, "userNames": []},
                {200, 201},
            )
        n = rng.randint(3, 5)
        for i in range(n):
            name = f"u{i}"
            groups = sorted(g for g in sec.groups if rng.random() < 0.45)
            u = M.User(name, "pw-" + rand_hex(rng, 12), rng.random() < 0.12, groups)
            sec.users[name] = u
            self.root_json(
                "PUT", f"/api/security/users/{name}",
                {"name": name, "password": u.password, "email": f"{name}@example.com", "admin": u.admin,
                 "groups": groups}, {201, 200},
            )
        # tokens: each user its own, user-scoped
        for u in sec.users.values():
            r = self.http("POST", "/api/security/token", "Basic " + b64(f"{u.name}:{u.password}"),
                          f"username={u.name}&scope=applied-permissions/user&expires_in=86400",
                          {"Content-Type": "application/x-www-form-urlencoded"})
            if r.status != 200:
                r = self.root("POST", "/api/security/token",
                              f"username={u.name}&scope=applied-permissions/user&expires_in=86400",
                              {"Content-Type": "application/x-www-form-urlencoded"}, {200})
            u.token = r.json()["access_token"]
        # UI sessions: each user signed in once, by password, as the browser does
        for u in sec.users.values():
            s = self.open_session(u.name, u.password)
            if not s:
                raise RuntimeError(f"{u.name} cannot open a UI session")
            u.session, u.csrf = s
        # permission targets: the default one goes, random ones come
        r = self.root("GET", "/api/v2/security/permissions", want={200})
        for t in r.json() or []:
            self.root("DELETE", f"/api/v2/security/permissions/{urllib.parse.quote(t['name'])}", want={200})
        self.roll_targets()
        self.set_anonymous(rng.random() < 0.5)
        self.root("PUT", "/api/plugins/authzprobe", PLUGIN, want={200, 201})
        # content
        for _ in range(rng.randint(18, 28)):
            repo = rng.choice(self.generic_repos())
            path = self.rand_file_path(repo)
            self.root("PUT", f"/{repo}/{q(path)}", rng.choice(POOL), want={201})
        for _ in range(rng.randint(3, 5)):
            path = self.rand_mvn_path()
            self.root("PUT", f"/m1/{q(path)}", rng.choice(POOL), want={201})
        for name in NPM_NAMES:
            for ver in sorted(rng.sample(NPM_VERSIONS, rng.randint(1, 3))):
                body, _ = npm_publish_body(name, ver, f"{name}@{ver} {rand_hex(rng, 6)}".encode())
                self.root("PUT", f"/api/npm/n1/{npm_enc(name)}", body, {"Content-Type": "application/json"})
        for name in PYPI_NAMES:
            for ver in sorted(rng.sample(PYPI_VERSIONS, rng.randint(1, 2))):
                for wheel in [True] + ([False] if rng.random() < 0.5 else []):
                    body, ctype, _ = pypi_upload_body(name, ver, wheel)
                    self.root("POST", "/api/pypi/p1/", body, {"Content-Type": ctype}, want={200})
        for image in DOCKER_IMAGES:
            for tag in sorted(rng.sample(DOCKER_TAGS, rng.randint(1, 2))):
                self.docker_push_root(image, tag)
        self.resync_all()
        for _ in range(rng.randint(4, 8)):
            repo = rng.choice(self.stored_repos())
            path = self.pick_item(repo)
            k, vals = self.rand_props()
            self.root("PUT", f"/api/storage/{repo}/{q(path)}?properties={k}={','.join(vals)}")
        for _ in range(rng.randint(3, 6)):
            repo = rng.choice(self.generic_repos())
            path = self.pick_item(repo, allow_root=False)
            if path:
                self.root("DELETE", f"/{repo}/{q(path)}")
        self.resync_all()

    def docker_push_blobs(self, image, blobs):
        """As admin: the blobs into the image (links, no files)."""
        for dg, b in blobs:
            self.root("POST", f"/v2/d1/{image}/blobs/uploads/?digest={dg}", b, want={201})
            self.c.links.setdefault(("d1", image), set()).add(dg)

    def docker_push_root(self, image, tag):
        man, dg, blobs = docker_image(self.rng)
        self.docker_push_blobs(image, blobs)
        self.root("PUT", f"/v2/d1/{image}/manifests/{tag}", man,
                  {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, {201})
        self.c.docker.setdefault(("d1", image), {})[dg] = {b[0] for b in blobs}

    def resync_all(self):
        self.affected = {"*resync", "props", "trash", "npm"}
        self.last_rule = self.last_req = ""
        self.last_status = None
        self.last_who = self.ROOT
        self.quiet = True
        try:
            self.compare_state()
        finally:
            self.quiet = False

    def roll_targets(self):
        """A new set of 3-6 random targets; one of them grants exactly write
        (no delete) everywhere, so that the edges between write and delete
        (overwrites, npm version removal) exist in every world."""
        rng = self.rng
        for name in sorted(self.sec.targets):
            self.admin_do(self.ROOT, "DELETE", f"/api/v2/security/permissions/{name}", None, {200}, "delete target")
            del self.sec.targets[name]
        for i in range(rng.randint(3, 6)):
            t = self.random_target(f"t{i}")
            if i == 0:
                t.repos = [rng.choice(["ANY", "ANY LOCAL"])]
                for k in t.users:
                    t.users[k] = ["read", "write"] if rng.random() < 0.5 else ["write"]
                for k in t.groups:
                    t.groups[k] = ["write"]
            self.put_target(t)
        # the registry's edge, in every world: delete on an image's manifests,
        # not on its tags (no random draw: the rest of the world stays as seeded)
        self.put_target(M.Target("toci", ["d1"], ["**"], ["**/_tags/**"],
                                 {sorted(self.sec.users)[0]: ["read", "delete"]}, {}))

    def generic_repos(self):
        """Local generic repositories: what deploys, copies and moves aim at."""
        return sorted(k for k, r in self.sec.repos.items()
                      if r.ptype == GENERIC and r.rclass == "local" and k != "scratch")

    def stored_repos(self):
        """Repositories that hold files (a remote's cached ones too): not the virtual ones."""
        return sorted(k for k, r in self.sec.repos.items() if r.rclass != "virtual")

    def random_target(self, name):
        rng = self.rng
        keys = [k for k in self.sec.repos if k != "scratch"]
        x = rng.random()
        if x < 0.15:
            repos = ["ANY"]
        elif x < 0.25:
            repos = ["ANY LOCAL"]
        elif x < 0.3:
            repos = ["ANY REMOTE"]
        else:
            repos = rng.sample(keys, rng.randint(1, 2))
        y = rng.random()
        includes = [] if y < 0.1 else rng.sample(INCLUDES, 1 if y < 0.7 else 2)
        excludes = rng.sample(EXCLUDES, 1) if rng.random() < 0.35 else []
        users, groups = {}, {}
        for _ in range(rng.randint(1, 3)):
            acts = self.rand_actions()
            z = rng.random()
            if z < 0.55:
                users[rng.choice(sorted(self.sec.users))] = acts
            elif z < 0.75:
                users["anonymous"] = acts
            else:
                groups[rng.choice(sorted(self.sec.groups))] = acts
        return M.Target(name, repos, includes, excludes, users, groups)

    def rand_actions(self):
        rng = self.rng
        top = rng.choices(range(5), weights=[30, 12, 20, 24, 14])[0]
        if rng.random() < 0.5:
            return [M.ACTIONS[top]]
        return [a for i, a in enumerate(M.ACTIONS[: top + 1]) if i == top or rng.random() < 0.5]

    def admin_do(self, actor, method, url, body, ok, what):
        """An admin's change: an admin user refused is a mismatch, then the
        built-in admin makes it."""
        data = json.dumps(body) if body is not None else None
        r = self.http(method, url, self.auth(actor), data, {"Content-Type": "application/json"})
        if r.status in ok:
            return r
        if actor.kind != "root":
            self.mismatch(actor, method, url, M.Expect(f"{what}: any admin", [M.Outcome(ok)]), r, [])
            return self.admin_do(self.ROOT, method, url, body, ok, what)
        raise RuntimeError(f"admin {method} {url}: {r.status} {r.text()}")

    def put_target(self, t, p=None):
        body = t.json()
        if not t.includes or t.includes == ["**"]:
            if self.rng.random() < 0.5:
                del body["repo"]["include-patterns"]  # the default: **
        self.admin_do(p or self.ROOT, "PUT", f"/api/v2/security/permissions/{t.name}", body, {200, 201},
                      "permission target")
        self.sec.targets[t.name] = t

    def set_anonymous(self, on, p=None):
        self.admin_do(p or self.ROOT, "PUT", "/api/system/settings", {"anonymousRead": on}, {200}, "settings")
        self.sec.anonymous_on = on

    # ---- random choices -----------------------------------------------------------------

    def rand_folder(self, depth=None):
        d = depth if depth is not None else self.rng.choice([1, 1, 2, 2, 3])
        return "/".join(self.rng.choice(FOLDERS) for _ in range(d))

    def rand_file_path(self, repo):
        rng = self.rng
        d = rng.choice([0, 1, 1, 2, 2, 3])
        names = [f for f in FILES if not (repo == "g3" and f.endswith(".bak"))]
        return "/".join([rng.choice(FOLDERS) for _ in range(d)] + [rng.choice(names)])

    def rand_mvn_path(self):
        g, a, v = self.rng.choice(MVN_GROUPS), self.rng.choice(MVN_ARTS), self.rng.choice(MVN_VERS)
        return f"{g}/{a}/{v}/{a}-{v}.jar"

    def rand_props(self):
        k = self.rng.choice(PROP_KEYS)
        return k, sorted(set(self.rng.sample(PROP_VALS, self.rng.randint(1, 2))))

    def pick_file(self, repo=None, existing=0.75):
        """An existing file (mostly) or a made-up path."""
        rng = self.rng
        files = [k for k in self.c.files if repo is None or k[0] == repo]
        if files and rng.random() < existing:
            return rng.choice(sorted(files))
        repo = repo or rng.choice(self.generic_repos())
        if self.sec.repos[repo].ptype == "maven":
            return repo, self.rand_mvn_path()
        if self.sec.repos[repo].ptype == "npm":
            n = rng.choice(NPM_NAMES)
            return repo, M.npm_tarball(n, rng.choice(NPM_VERSIONS))
        return repo, self.rand_file_path(repo)

    def pick_folder(self, repo, allow_root=True, existing=0.85):
        rng = self.rng
        folders = sorted(self.c.existing_folders(repo) - ({""} if not allow_root else set()))
        if not allow_root and rng.random() < 0.02:
            folders = folders or [""]
        if allow_root and rng.random() < 0.12:
            return ""
        if folders and rng.random() < existing:
            return rng.choice(folders)
        return self.rand_folder()

    def pick_item(self, repo, allow_root=True):
        if self.rng.random() < 0.5:
            files = sorted(p for (r, p) in self.c.files if r == repo)
            if files:
                return self.rng.choice(files)
        return self.pick_folder(repo, allow_root)

    def candidates(self, repo):
        """Every path the generator could make in repo (for 'read on some path')."""
        if not hasattr(self, "_cand"):
            self._cand = {}
        ptype = self.sec.repos[repo].ptype
        if ptype not in self._cand:
            out = set()
            if ptype == "npm":
                for n in NPM_NAMES:
                    out.add(n)
                    out.update(M.npm_tarball(n, v) for v in NPM_VERSIONS)
            elif ptype == "pypi":
                for n in PYPI_NAMES:
                    out.add(n)
                    for v in PYPI_VERSIONS:
                        for w in (True, False):
                            f = pypi_file_name(n, v, w)
                            out.add(f"{n}/{v}/{f}")
                            if w:
                                out.add(f"{n}/{v}/{f}.metadata")
            elif ptype == "maven":
                for g in MVN_GROUPS:
                    for a in MVN_ARTS:
                        out.add(f"{g}/{a}/maven-metadata.xml")
                        for v in MVN_VERS:
                            out.add(f"{g}/{a}/{v}/{a}-{v}.jar")
            else:
                folders = [""]
                for d in range(1, 4):
                    folders += ["/".join(t) for t in product(FOLDERS, d)]
                for f in folders:
                    if f:
                        out.add(f)
                    for n in FILES:
                        out.add(f"{f}/{n}" if f else n)
            more = set()
            for x in out:
                more.update(M.parent_folders(x))
            self._cand[ptype] = sorted(out | more)
        return self._cand[ptype]

    def pick_principal(self):
        rng = self.rng
        x = rng.random()
        if x < 0.08:
            return self.ROOT
        if x < 0.26:
            return M.Principal("anon")
        name = rng.choice(sorted(self.sec.users))
        x = rng.random()
        return M.Principal("user", name, "token" if x < 0.3 else "session" if x < 0.5 else "password")

    # ---- the run -------------------------------------------------------------------------

    def run(self, ops, seconds, cover_cap=None):
        """ops operations (or seconds); with cover_cap, then on until every
        edge of authz_model.EDGES was met once, up to cover_cap operations in all
        (a seed that misses a rare edge needs no retuning when operations are added)."""
        from authz_ops import OPS  # the operation catalogue

        names = [o[0] for o in OPS]
        weights = [o[1] for o in OPS]
        fns = {o[0]: o[2] for o in OPS}
        start = time.time()
        i = 0
        try:
            def more():
                if seconds is not None and time.time() - start >= seconds:
                    return False
                if ops is None or i < ops:
                    return True
                return cover_cap is not None and i < cover_cap and any(not self.coverage.get(k) for k in M.EDGES)

            while more():
                self.op_index = i
                name = self.rng.choices(names, weights)[0]
                if i % 25 == 24:
                    name = "world_change"
                if i % 300 == 299:
                    self.roll_targets()  # a new world of permissions, the same content
                p = self.pick_principal()
                self.op_name = name
                self.last_who = p
                self.last_req = ""
                self.last_rule = ""
                self.last_status = None
                self.counts[name] = self.counts.get(name, 0) + 1
                fns[name](self, p)
                self.compare_state()
                i += 1
        except Mismatch:
            print(f"stopping after {len(self.kinds)} kinds of mismatch", flush=True)
        return i, time.time() - start


# ---- helpers -----------------------------------------------------------------------


def product(items, n):
    if n == 0:
        return [()]
    return [t + (x,) for t in product(items, n - 1) for x in items]


def rand_hex(rng, n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def b64(s):
    return base64.b64encode(s.encode()).decode()


def q(path):
    return urllib.parse.quote(path, safe="/@")


def npm_enc(name):
    return name.replace("/", "%2f")


def short(sha):
    return sha[:10] if sha else "absent"


def short_item(it):
    return f"{it[0][:10]} {it[1]}" if it else "absent"


def uri_repo_path(uri):
    m = re.search(r"/api/storage/([^/?]+)/?([^?]*)", uri)
    if not m:
        return None
    return m.group(1), urllib.parse.unquote(m.group(2)).strip("/")


def npm_publish_body(name, ver, data):
    shasum = hashlib.sha1(data).hexdigest()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    base = name.rsplit("/", 1)[-1]
    doc = {
        "_id": name, "name": name, "dist-tags": {"latest": ver},
        "versions": {ver: {"name": name, "version": ver, "dist": {"shasum": shasum, "integrity": integrity}}},
        "_attachments": {f"{base}-{ver}.tgz": {"content_type": "application/octet-stream",
                                              "data": base64.b64encode(data).decode(), "length": len(data)}},
    }
    return json.dumps(doc), sha256(data)


def pypi_file_name(name, ver, wheel):
    return pypi_dist.wheel_name(name, ver) if wheel else pypi_dist.sdist_name(name, ver)


def pypi_upload_body(name, ver, wheel):
    """twine's form for a wheel or an sdist of name and ver: (body, content
    type, (filename, sha256, sha256 of its metadata or None))."""
    data = pypi_dist.wheel_bytes(name, ver) if wheel else pypi_dist.sdist_bytes(name, ver)
    fn = pypi_file_name(name, ver, wheel)
    body, ctype = pypi_dist.upload_form(name, ver, fn, data)
    meta = sha256(pypi_dist.wheel_metadata(name, ver)) if wheel else None
    return body, ctype, (fn, sha256(data), meta)


def main():
    # one seed, one run: string hashing (set order) must not vary between runs
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--admin-pass", required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--ops", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--max-mismatches", type=int, default=20, help="stop after this many kinds")
    ap.add_argument("--verbose", action="store_true", help="print every mismatch, not the first of each kind")
    ap.add_argument("--trace", help="write every request sent as a caller to this file")
    ap.add_argument("--require-coverage", action="store_true",
                    help="go on past --ops (up to 4 times as many) until every edge of the findings "
                         "(authz_model.EDGES) was met once; fail if one never was")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    if args.ops is None and args.seconds is None:
        args.ops = 300
    print(f"authz model run: seed={args.seed} ops={args.ops} seconds={args.seconds}", flush=True)
    d = Driver(args)
    t0 = time.time()
    d.setup()
    print(f"world: {len(d.sec.users)} users, {len(d.sec.targets)} targets, {len(d.c.files)} files, "
          f"{len(d.c.trash)} trashed, setup {time.time() - t0:.1f} s", flush=True)
    for line in d.sec.describe():
        print("  " + line)
    n, secs = d.run(args.ops, args.seconds, args.ops * 4 if args.require_coverage and args.ops else None)
    print(f"ran {n} operations ({d.requests} requests) in {secs:.1f} s; seed={args.seed}; "
          f"{len(d.mismatches)} mismatches", flush=True)
    print("  ops: " + ", ".join(f"{k}={v}" for k, v in sorted(d.counts.items())))
    print("  edges met: " + ", ".join(f"{k}={d.coverage.get(k, 0)}" for k in M.EDGES))
    missed = [k for k in M.EDGES if not d.coverage.get(k)]
    if missed and args.require_coverage and not d.mismatches:
        print(f"the run met these edges not once (more operations, or another seed): {missed}")
        sys.exit(1)
    if d.mismatches:
        first = {}
        for m in d.mismatches:
            first.setdefault(m["kind"], m)
        print(f"{len(d.mismatches)} mismatches of {len(first)} kinds (operation: expected -> got, count, first):")
        for k, m in sorted(first.items(), key=lambda kv: kv[1]["op"]):
            exp = " or ".join("/".join(map(str, s)) for s in m["expected"])
            pr = f" [{m['problems'][0][:90]}]" if m["problems"] else ""
            print(f"  {m['name']}: {exp} -> {m['got']}{pr}  x{d.kinds[k]}, first op {m['op']}: {m['request']}")
        print(f"reproduce: AUTHZ_SEED={args.seed}")
        sys.exit(1)


if __name__ == "__main__":
    main()
