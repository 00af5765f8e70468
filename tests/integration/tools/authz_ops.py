"""authz_ops.py - the operations authz_fuzz.py draws from: every endpoint
that reads or changes something, each as a function (driver, principal)
that builds a request, asks the model (authz_model.py) what must happen,
and sends it through Driver.step. OPS at the bottom: name, weight, function.

A new format or endpoint gets an op here, its expect_* in the model, and a
row in docs/security.md's table.
"""

import json
import re
import urllib.parse

import authz_model as M
from authz_fuzz import (DOCKER_IMAGES, DOCKER_TAGS, MVN_ARTS, MVN_GROUPS, NEVER, NPM_NAMES, NPM_VERSIONS, POOL,
                        PYPI_NAMES, PYPI_VERSIONS, b64, docker_image, npm_enc, npm_publish_body, pypi_file_name,
                        pypi_upload_body, q, rand_hex, sha256, uri_repo_path)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


def note(d, method, url, exp):
    """Remember the last changing request for a state report."""
    d.last_req = f"{method} {url}"
    d.last_rule = exp.rule


def send(d, p, method, url, exp, body=None, headers=None, repo=None):
    note(d, method, url, exp)
    d.last_who = p
    r, out = d.step(p, method, url, exp, body, headers, repo)
    d.last_status = r.status
    return r, out


# ---- answer parsers ---------------------------------------------------------------


def results_of(resp):
    j = resp.json()
    if not isinstance(j, dict):
        return None
    out = set()
    for res in j.get("results", []):
        rp = uri_repo_path(res.get("uri", ""))
        if rp:
            out.add(rp)
    return out


def storage_children(resp):
    j = resp.json()
    if not isinstance(j, dict) or "children" not in j:
        return None
    return {c["uri"].strip("/") for c in j["children"]}


def html_children(resp):
    t = resp.body.decode(errors="replace")
    if "<pre>" not in t:
        return None
    out = set()
    for href in re.findall(r'<a href="([^"]+)"', t):
        if href.startswith("../") or href == "../":
            continue
        out.add(urllib.parse.unquote(href.rstrip("/").rsplit("/", 1)[-1]))
    return out


def html_repos(resp):
    t = resp.body.decode(errors="replace")
    if "<pre>" not in t:
        return None
    return {urllib.parse.unquote(h.strip("/")) for h in re.findall(r'<a href="([^"]+)"', t) if h != "../"}


def deep_files(folder):
    def f(resp):
        j = resp.json()
        if not isinstance(j, dict) or "files" not in j:
            return None
        pre = folder + "/" if folder else ""
        return {pre + x["uri"].strip("/") for x in j["files"] if not x.get("folder")}

    return f


def repo_keys(resp):
    j = resp.json()
    if not isinstance(j, list):
        return None
    return {x.get("key") for x in j}


def info_sha(resp):
    j = resp.json() or {}
    return (j.get("checksums") or {}).get("sha256")


def npm_versions(resp):
    j = resp.json()
    if not isinstance(j, dict):
        return None
    return set((j.get("versions") or {}).keys())


def npm_search_names(resp):
    j = resp.json()
    if not isinstance(j, dict):
        return None
    return {o["package"]["name"] for o in j.get("objects", [])}


def mvn_versions(resp):
    return set(re.findall(r"<version>([^<]+)</version>", resp.body.decode(errors="replace")))


def storage_url(repo, path):
    return f"/api/storage/{repo}/{q(path)}" if path else f"/api/storage/{repo}"


# ---- model-guided choices -----------------------------------------------------------
#
# Half of the time an operation takes its parameters where the model's
# decision sits on an edge for this caller (it reads a folder but not all
# of it, may write but not overwrite, holds an action but not by the tree
# rule ...): that is where each finding lived, so a bounded run meets
# every one of them.

GUIDE = 0.5


def guided(d, choices):
    if choices and d.rng.random() < GUIDE:
        return d.rng.choice(sorted(choices))
    return None


def callers(d, p):
    """p first, then every other caller in a random order."""
    others = [M.Principal("user", u, via) for u in sorted(d.sec.users) for via in ("password", "token")]
    others.append(M.Principal("anon"))
    d.rng.shuffle(others)
    return [p] + [q for q in others if str(q) != str(p)]


def with_edge(d, p, edges_of):
    """Half of the time: a caller (p if it has one) and one of its edges."""
    if d.rng.random() >= GUIDE:
        return p, None
    for q in callers(d, p):
        e = edges_of(q)
        if e:
            return q, d.rng.choice(sorted(e))
    return p, None


def edge_listing(d, p):
    """Folders the caller reads, holding something it cannot read."""
    out = []
    for repo in d.stored_repos():
        for f in d.c.existing_folders(repo):
            if d.sec.level(p, repo, f) < M.READ:
                continue
            if any(d.sec.level(p, repo, x) < M.READ for x in d.c.files_below(repo, f)):
                out.append((repo, f))
    return out


def edge_tree(d, p, need, repos=None):
    """Folders where the caller holds need on every file below but not by the tree rule."""
    out = []
    for repo in sorted(repos or d.sec.repos):
        for f in d.c.existing_folders(repo):
            files = d.c.files_below(repo, f)
            if not files or d.sec.tree_level(p, repo, f) >= need:
                continue
            if d.sec.level(p, repo, f) >= need or all(d.sec.level(p, repo, x) >= need for x in files):
                out.append((repo, f))
    return out


def edge_overwrite(d, p, repos):
    """Existing files the caller may write but not overwrite."""
    return [k for k in d.c.files if k[0] in repos and M.WRITE <= d.sec.level(p, k[0], k[1]) < M.DELETE]


# ---- artifacts ---------------------------------------------------------------------


def op_get_file(d, p):
    repo, path = d.pick_file()
    head = d.rng.random() < 0.2
    exp = M.expect_get_file(d.sec, d.c, p, repo, path, sha256, head)
    send(d, p, "HEAD" if head else "GET", f"/{repo}/{q(path)}", exp, repo=repo)


def op_get_checksum(d, p):
    repo, path = d.pick_file(existing=0.9)
    exp = M.expect_checksum_file(d.sec, d.c, p, repo, path)
    send(d, p, "GET", f"/{repo}/{q(path)}.sha256", exp, repo=repo)


# ---- remote and virtual repositories (docs/remote.md) -----------------------------------


def op_remote_get(d, p):
    """GET a remote repository's file (r1, whose upstream is g1 on this node)."""
    rng = d.rng
    up = d.sec.repos[d.remote_repo].upstream
    ups = sorted(pth for (r, pth) in d.c.files if r == up)
    path = rng.choice(ups) if ups and rng.random() < 0.7 else d.pick_file(d.remote_repo)[1]
    exp = M.expect_remote_get(d.sec, d.c, p, d.remote_repo, path, sha256)
    send(d, p, "GET", f"/{d.remote_repo}/{q(path)}", exp, repo=d.remote_repo)


def op_remote_cache(d, p):
    """The cached files alone (<key>-cache): GET never fetches; DELETE (delete permission)
    makes the next GET fetch again."""
    repo = d.remote_repo
    rpath = d.pick_file(repo)[1]
    if d.rng.random() < 0.6:
        exp = M.expect_get_file(d.sec, d.c, p, repo, rpath, sha256)
        send(d, p, "GET", f"/{repo}-cache/{q(rpath)}", exp, repo=repo)
    else:
        exp = M.expect_delete(d.sec, d.c, p, repo, rpath)
        send(d, p, "DELETE", f"/{repo}-cache/{q(rpath)}", exp, repo=repo)


def op_virtual(d, p):
    """Through the virtual repository v1 (members g2, then r1; deploys to g2)."""
    rng = d.rng
    v = d.virtual_repo
    x = rng.random()
    if x < 0.65:
        files = sorted(pth for (r, pth) in d.c.files if r in d.sec.repos[v].members)
        path = rng.choice(files) if files and rng.random() < 0.7 else d.rand_file_path("g2")
        exp = M.expect_virtual_get(d.sec, d.c, p, v, path, sha256)
        send(d, p, "GET", f"/{v}/{q(path)}", exp, repo=v)
    elif x < 0.85:
        path, body = d.rand_file_path("g2"), rng.choice(POOL)
        exp = M.expect_virtual_put(d.sec, d.c, p, v, path, sha256(body))
        send(d, p, "PUT", f"/{v}/{q(path)}", exp, body)
    elif x < 0.93:
        path = d.pick_file(d.sec.repos[v].deploy)[1]
        exp = M.expect_not_allowed("DELETE virtual: 405")
        send(d, p, "DELETE", f"/{v}/{q(path)}", exp)
    else:
        exp = M.expect_not_allowed("PUT remote: 405 (a cache of its upstream)")
        send(d, p, "PUT", f"/{d.remote_repo}/{q(d.rand_file_path('g1'))}", exp, rng.choice(POOL))


def op_storage_file(d, p):
    repo, path = d.pick_file()
    exp = M.expect_storage_file(d.sec, d.c, p, repo, path, info_sha)
    send(d, p, "GET", storage_url(repo, path), exp, repo=repo)


def pick_listing(d, p):
    p, g = with_edge(d, p, lambda q: edge_listing(d, q))
    if g:
        return (p,) + g
    repo = d.rng.choice(d.stored_repos())
    return p, repo, d.pick_folder(repo)


def op_storage_folder(d, p):
    p, repo, folder = pick_listing(d, p)
    exp = M.expect_listing(d.sec, d.c, p, repo, folder, storage_children)
    send(d, p, "GET", storage_url(repo, folder), exp, repo=repo)


def op_html_listing(d, p):
    p, repo, folder = pick_listing(d, p)
    exp = M.expect_listing(d.sec, d.c, p, repo, folder, html_children)
    send(d, p, "GET", f"/{repo}/{q(folder)}/" if folder else f"/{repo}/", exp, repo=repo)


def op_deep_list(d, p):
    p, repo, folder = pick_listing(d, p)
    exp = M.expect_deep_list(d.sec, d.c, p, repo, folder, deep_files(folder))
    url = (f"/api/storage/{repo}/{q(folder)}" if folder else f"/api/storage/{repo}/") + "?list&deep=1"
    send(d, p, "GET", url, exp, repo=repo)


def op_put(d, p):
    rng = d.rng
    if rng.random() < 0.15:
        repo, path = d.mvn_repo, d.rand_mvn_path()
    else:
        repo = rng.choice(d.generic_repos())
        files = sorted(x for (r, x) in d.c.files if r == repo)
        path = rng.choice(files) if files and rng.random() < 0.4 else d.rand_file_path(repo)
        p, g = with_edge(d, p, lambda q: edge_overwrite(d, q, set(d.generic_repos())))
        if g:
            repo, path = g
    body = rng.choice(POOL)
    exp = M.expect_put(d.sec, d.c, p, repo, path, sha256(body))
    send(d, p, "PUT", f"/{repo}/{q(path)}", exp, body, repo=repo)


def op_put_checksum(d, p):
    rng = d.rng
    repo = rng.choice(d.generic_repos())
    files = sorted(x for (r, x) in d.c.files if r == repo)
    path = rng.choice(files) if files and rng.random() < 0.3 else d.rand_file_path(repo)
    x = rng.random()
    if x < 0.45 and d.c.files:
        sha = d.c.files[rng.choice(sorted(d.c.files))][0]
    elif x < 0.6 and d.c.trash:
        sha = d.c.trash[rng.choice(sorted(d.c.trash))][0]
    elif x < 0.85:
        sha = sha256(rng.choice(POOL))
    else:
        sha = sha256(NEVER)
    spots = [(r2, d.rand_file_path(r2)) for r2 in [rng.choice(d.generic_repos()) for _ in range(12)]]

    def edges(q):
        # a binary the caller reads nowhere, to a new path it may write (finding 3)
        hidden = {v[0] for v in d.c.files.values()} - {
            v[0] for k, v in d.c.files.items() if d.sec.level(q, k[0], k[1]) >= M.READ}
        places = [(r2, p2) for (r2, p2) in spots if not d.c.is_file(r2, p2) and d.sec.level(q, r2, p2) >= M.WRITE]
        return [(h, r2, p2) for h in sorted(hidden) for (r2, p2) in places[:3]]

    p, g = with_edge(d, p, edges)
    if g:
        sha, repo, path = g
    exp = M.expect_put(d.sec, d.c, p, repo, path, sha, by_checksum=True)
    send(d, p, "PUT", f"/{repo}/{q(path)}", exp, b"",
         {"X-Checksum-Deploy": "true", "X-Checksum-Sha256": sha}, repo=repo)


def op_delete(d, p):
    rng = d.rng
    repo = rng.choice(d.generic_repos() + [d.mvn_repo])
    x = rng.random()
    files = sorted(f for (r, f) in d.c.files if r == repo)
    if x < 0.55 and files:
        path = rng.choice(files)
    elif x < 0.93:
        path = d.pick_folder(repo, allow_root=False)
    elif x < 0.96 and repo != d.mvn_repo:
        path = ""
    else:
        path = d.rand_file_path(repo)
    p, g = with_edge(d, p, lambda q: edge_tree(d, q, M.DELETE, d.generic_repos()))
    if g:
        repo, path = g
    exp = M.expect_delete(d.sec, d.c, p, repo, path)
    send(d, p, "DELETE", f"/{repo}/{q(path)}" if path else f"/{repo}/", exp, repo=repo)


# ---- properties ----------------------------------------------------------------------


def op_props_change(d, p, delete=None):
    rng = d.rng
    repo = rng.choice(d.stored_repos())
    path = d.pick_item(repo)
    if rng.random() < 0.05:
        path = d.rand_file_path(repo)
    k, vals = d.rand_props()
    delete = rng.random() < 0.3 if delete is None else delete
    r = rng.random()
    p, g = with_edge(d, p, lambda q: edge_tree(d, q, M.ANNOTATE))
    if g:
        repo, path = g
        r = 0.5
    recursive = not (r < 0.3)
    qs = f"properties={k}" if delete else f"properties={k}={','.join(vals)}"
    if r < 0.3:
        qs += "&recursive=0"
    elif r < 0.45:
        qs += "&recursive=1"
    exp = M.expect_props_change(d.sec, d.c, p, repo, path, {k: vals}, delete, recursive)
    send(d, p, "DELETE" if delete else "PUT", f"{storage_url(repo, path)}?{qs}", exp, repo=repo)


def op_props_get(d, p):
    repo = d.rng.choice(d.stored_repos())
    path = d.pick_item(repo)
    exp = M.expect_props_get(d.sec, d.c, p, repo, path)
    send(d, p, "GET", f"{storage_url(repo, path)}?properties", exp, repo=repo)


# ---- searches ---------------------------------------------------------------------------


def op_search_artifact(d, p):
    name = d.rng.choice(["x.txt", "i.html", ".tgz", "lib", "*.js", "s.sv?", "y", "a-1", "app-2.0.jar", ".bak"])
    glob = M.name_glob(name)
    hits = {k for k in d.c.files if M.glob_match(glob, k[1].rsplit("/", 1)[-1])}
    must = M.readable_set(d.sec, p, hits)
    exp = M.expect_search(d.sec, p, must, must, results_of)
    send(d, p, "GET", f"/api/search/artifact?name={urllib.parse.quote(name)}", exp)


def op_search_checksum(d, p):
    rng = d.rng
    if d.c.files and rng.random() < 0.7:
        sha = d.c.files[rng.choice(sorted(d.c.files))][0]
    else:
        sha = sha256(rng.choice(POOL))
    hits = {k for k, v in d.c.files.items() if v[0] == sha}
    must = M.readable_set(d.sec, p, hits)
    exp = M.expect_search(d.sec, p, must, must, results_of)
    send(d, p, "GET", f"/api/search/checksum?sha256={sha}", exp)


def op_search_prop(d, p):
    rng = d.rng
    k = rng.choice(["p", "q"])
    x = rng.random()
    if x < 0.3:
        vals, qv = None, "*"
    else:
        vals = sorted(set(rng.sample(["1", "2", "3"], rng.randint(1, 2))))
        qv = ",".join(vals)
    exp = M.expect_search_prop(d.sec, d.c, p, k, vals, results_of)
    send(d, p, "GET", f"/api/search/prop?{k}={urllib.parse.quote(qv)}", exp)


def op_search_gavc(d, p):
    rng = d.rng
    g = rng.choice(MVN_GROUPS).replace("/", ".") if rng.random() < 0.6 else None
    a = rng.choice(MVN_ARTS) if rng.random() < 0.6 or g is None else None
    qs = "&".join(x for x in [f"g={g}" if g else "", f"a={a}" if a else ""] if x)
    hits = set()
    for (r, x) in d.c.files:
        if d.sec.repos[r].ptype != "maven":
            continue
        co = M.maven_coords(x)
        if co and (g is None or co[0] == g) and (a is None or co[1] == a):
            hits.add((r, x))
    must = M.readable_set(d.sec, p, hits)
    exp = M.expect_search(d.sec, p, must, must, results_of)
    send(d, p, "GET", f"/api/search/gavc?{qs}", exp)


def op_search_dates(d, p):
    must = M.readable_set(d.sec, p, set(d.c.files))
    exp = M.expect_search(d.sec, p, must, must, results_of, empty_404=True, anon_401=True)
    send(d, p, "GET", "/api/search/dates?from=0&dateFields=created", exp)


# ---- copy and move ----------------------------------------------------------------------


def copy_edges(d, p, move):
    """Copies onto a file the caller may write but not overwrite; folders it
    holds file by file but not by the tree rule (to a new folder/)."""
    gen = d.generic_repos()
    need = M.DELETE if move else M.READ
    out = []
    dsts = edge_overwrite(d, p, set(gen))
    if dsts:
        srcs = sorted(k for k in d.c.files if k[0] in gen and d.sec.level(p, k[0], k[1]) >= need)
        for (sr, sp) in srcs[:20]:
            for (dr, dp) in dsts[:20]:
                if (sr, sp) != (dr, dp):
                    out.append((sr, sp, dr, dp, False))
    for sr, sp in edge_tree(d, p, need, gen):
        if sp:
            out.extend((sr, sp, dr, None, True) for dr in gen)
    return out


def op_copy_move(d, p, move=None):
    rng = d.rng
    move = rng.random() < 0.45 if move is None else move
    src_repo = rng.choice(d.generic_repos())
    files = sorted(x for (r, x) in d.c.files if r == src_repo)
    x = rng.random()
    if x < 0.55 and files:
        src, is_file = rng.choice(files), True
    elif x < 0.95:
        src, is_file = d.pick_folder(src_repo, allow_root=False), False
        if d.c.is_file(src_repo, src):
            is_file = True
    else:
        src, is_file = d.rand_file_path(src_repo), True
    if src == "":
        src = d.rand_folder(1)
    dst_repo = src_repo if rng.random() < 0.5 else rng.choice(d.generic_repos())
    dst_folders = sorted(d.c.existing_folders(dst_repo) - {""})
    y = rng.random()
    trailing = False
    if y < 0.15:
        to_path = ""
    elif y < 0.4 and dst_folders:
        to_path = rng.choice(dst_folders)
    elif y < 0.65:
        to_path, trailing = d.rand_folder(rng.choice([1, 2])), True
    elif is_file:
        dfiles = sorted(f for (r, f) in d.c.files if r == dst_repo)
        to_path = rng.choice(dfiles) if dfiles and rng.random() < 0.4 else d.rand_file_path(dst_repo)
        if dst_repo == "g3" and rng.random() < 0.3:
            to_path = to_path.rsplit(".", 1)[0] + ".bak"
    else:
        to_path = d.rand_folder(rng.choice([1, 2]))
    p, g = with_edge(d, p, lambda q: copy_edges(d, q, move))
    if g:
        src_repo, src, dst_repo, to_path, trailing = g
        if to_path is None:
            to_path = d.rand_folder(1)
    dry = rng.random() < 0.08
    to = f"/{dst_repo}" + (f"/{to_path}" if to_path else "") + ("/" if trailing else "")
    url = f"/api/{'move' if move else 'copy'}/{src_repo}/{q(src)}?to={q(to)}" + ("&dry=1" if dry else "")
    exp = M.expect_copy_move(d.sec, d.c, p, move, src_repo, src, dst_repo, to_path, trailing, dry)
    send(d, p, "POST", url, exp, repo=dst_repo)


# ---- trash ---------------------------------------------------------------------------------


def trash_items(resp):
    j = resp.json()
    if not isinstance(j, dict) or "items" not in j:
        return None
    return {(i["repo"], i["path"]) for i in j["items"]}


def op_trash_list(d, p):
    exp = M.expect_trash_list(d.sec, d.c, p, trash_items)
    send(d, p, "GET", "/api/trash/list?limit=10000", exp)


def op_restore(d, p):
    rng = d.rng
    gen = set(d.generic_repos())
    items = sorted(k for k in d.c.trash if k[0] in gen)
    x = rng.random()
    if items and x < 0.6:
        repo, path = rng.choice(items)
        is_file = True
    elif items and x < 0.9:
        repo, ipath = rng.choice(items)
        parents = M.parent_folders(ipath)
        if not parents:
            path, is_file = ipath, True
        else:
            path, is_file = rng.choice(parents), False
    else:
        repo, path, is_file = rng.choice(sorted(gen)), d.rand_file_path("g1"), True
    y = rng.random()
    to_repo = to_path = None
    to = ""
    def hidden(q):
        # an item the caller cannot read, to a place it may write (finding 1)
        return [(k, r2) for k in items if d.sec.level(q, k[0], k[1]) < M.READ
                for r2 in sorted(gen) if d.sec.level(q, r2, k[1]) >= M.WRITE and not d.c.is_file(r2, k[1])]

    p, g = with_edge(d, p, hidden)
    if g:
        (repo, path), r2 = g
        is_file, y, to_repo, to = True, 2, r2, f"/{r2}"
    if y < 0.2:
        to_repo = rng.choice(sorted(gen))
        to = f"/{to_repo}"
    elif y < 0.5:
        to_repo = rng.choice(sorted(gen))
        to_path = d.rand_file_path(to_repo) if is_file else d.rand_folder(rng.choice([1, 2]))
        to = f"/{to_repo}/{to_path}"
    url = f"/api/trash/restore/{repo}/{q(path)}" + (f"?to={q(to)}" if to else "")
    exp = M.expect_restore(d.sec, d.c, p, repo, path, to_repo, to_path)
    send(d, p, "POST", url, exp, repo=repo)


def op_trash_admin(d, p):
    rng = d.rng
    x = rng.random()
    if x < 0.5:
        exp = M.expect_admin_only(d.sec, p, {200}, what="trash settings: admin")
        send(d, p, "GET", "/api/trash/settings", exp)
        return
    if x < 0.85 or not d.sec.is_admin(p):
        repo = rng.choice(d.generic_repos())
        items = [k for k in d.c.trash if k[0] == repo]
        path = rng.choice(items)[1] if items and rng.random() < 0.8 else d.rand_file_path(repo)
        hit = [k for k in d.c.trash if k[0] == repo and M.below(k[1], path)]

        def clean(cc):
            for k in hit:
                cc.trash.pop(k, None)

        exp = M.expect_admin_only(d.sec, p, {204} if hit else {404}, clean if hit else None, "trash clean: admin")
        exp.affects = {"trash"}
        send(d, p, "DELETE", f"/api/trash/clean/{repo}/{q(path)}", exp)
        return

    def empty(cc):
        cc.trash.clear()

    exp = M.expect_admin_only(d.sec, p, {202}, empty, "trash empty: admin")
    exp.affects = {"trash"}
    send(d, p, "POST", "/api/trash/empty", exp)


# ---- repositories, system --------------------------------------------------------------


def op_repo_list(d, p):
    exp = M.expect_repo_list(d.sec, p, d.candidates, repo_keys)
    send(d, p, "GET", "/api/repositories", exp)


def op_root_html(d, p):
    exp = M.expect_repo_list(d.sec, p, d.candidates, html_repos)
    exp.rule = "GET / : " + exp.rule
    send(d, p, "GET", "/", exp)


def op_repo_get(d, p):
    repo = d.rng.choice(sorted(d.sec.repos))
    exp = M.expect_repo_get(d.sec, p, repo, d.candidates(repo))
    send(d, p, "GET", f"/api/repositories/{repo}", exp)


def op_repo_admin(d, p):
    """Create, update, delete repositories: admin only; nothing changes otherwise."""
    rng = d.rng
    sec = d.sec
    if sec.is_admin(p):
        if "scratch" in sec.repos:
            def drop(cc):
                del sec.repos["scratch"]
                for k in [k for k in cc.fprops if k[0] == "scratch"]:
                    del cc.fprops[k]

            exp = M.expect_admin_only(sec, p, {200}, drop, "repository delete: admin")
            send(d, p, "DELETE", "/api/repositories/scratch", exp)
        else:
            def add(cc):
                sec.repos["scratch"] = M.Repo("scratch", "generic")
                cc.fprops[("scratch", "")] = {}

            exp = M.expect_admin_only(sec, p, {200}, add, "repository create: admin")
            send(d, p, "PUT", "/api/repositories/scratch", exp,
                 json.dumps({"rclass": "local", "packageType": "generic"}), JSON)
        return
    x = rng.random()
    if x < 0.4:
        exp = M.expect_admin_only(sec, p, {200}, what="repository create: admin")
        send(d, p, "PUT", "/api/repositories/evil", exp, json.dumps({"rclass": "local", "packageType": "generic"}),
             JSON)
        r = d.root("GET", "/api/repositories/evil")
        if r.status == 200:
            d.mismatch(p, "PUT", "/api/repositories/evil", exp, r, ["repository 'evil' was created"])
            d.root("DELETE", "/api/repositories/evil")
    elif x < 0.7:
        repo = rng.choice(d.generic_repos())
        exp = M.expect_admin_only(sec, p, {200}, what="repository update: admin")
        send(d, p, "POST", f"/api/repositories/{repo}", exp, json.dumps({"description": "pwned"}), JSON)
        r = d.root("GET", f"/api/repositories/{repo}")
        if (r.json() or {}).get("description") == "pwned":
            d.mismatch(p, "POST", f"/api/repositories/{repo}", exp, r, ["description changed"])
            d.root_json("POST", f"/api/repositories/{repo}", {"description": ""})
    else:
        repo = rng.choice(d.generic_repos())
        exp = M.expect_admin_only(sec, p, {200}, what="repository delete: admin")
        exp.affects = {repo, "trash", "props"}
        send(d, p, "DELETE", f"/api/repositories/{repo}", exp)
        r = d.root("GET", f"/api/repositories/{repo}")
        if r.status != 200:
            d.mismatch(p, "DELETE", f"/api/repositories/{repo}", exp, r, [f"repository {repo} was deleted"])
            body = {"rclass": "local", "packageType": "generic"}
            if sec.repos[repo].excludes:
                body["excludesPattern"] = sec.repos[repo].excludes
            d.root_json("PUT", f"/api/repositories/{repo}", body, {200})


def op_cluster(d, p):
    """Signed in: the node list; admins: storage and replication details too (finding 12)."""
    sec = d.sec
    if sec.is_admin(p):
        exp = M.Expect("cluster details: admin", [M.Outcome(
            {200}, None, lambda r: [] if "storage" in (r.json() or {}) else ["admin sees no storage details"])])
    elif p.kind == "anon":
        exp = M.Expect("cluster: signed in", [M.Outcome({401})])
    else:
        def nodes_only(r):
            j = r.json()
            if not isinstance(j, dict):
                return ["unparsable answer"]
            extra = sorted(set(j) - {"nodes", "clustered", "primary", "nodeId", "self"})
            return [f"details for admins shown to a non-admin: {extra}"] if extra else []

        exp = M.Expect("cluster: the node list only for non-admins (finding 12)",
                       [M.Outcome({200}, None, nodes_only)], tags={"F12 cluster and plugin details for a non-admin"})
    send(d, p, "GET", "/api/system/cluster", exp)


def op_plugins(d, p):
    sec = d.sec
    x = d.rng.random()
    if x < 0.5:
        if sec.is_admin(p):
            exp = M.Expect("plugins: admin sees details",
                           [M.Outcome({200}, None, lambda r: [] if "authzprobe" in r.text(10000)
                                      else ["our plugin is not listed"])])
        elif p.kind == "anon":
            exp = M.Expect("plugins: authenticated", [M.Outcome({401})])
        else:
            def no_details(r):
                j = r.json() or {}
                probs = []
                if j.get("plugins"):
                    probs.append("plugin details (who installed, when) shown to a non-admin")
                if any("lastError" in jb for jb in j.get("jobs", [])):
                    probs.append("job errors shown to a non-admin")
                return probs

            exp = M.Expect("plugins: the executions only for non-admins (finding 12)",
                           [M.Outcome({200}, None, no_details)],
                           tags={"F12 cluster and plugin details for a non-admin"})
        send(d, p, "GET", "/api/plugins", exp)
        return
    if x < 0.75:
        exp = M.expect_authenticated(sec, p, {200}, what="plugin execution: authenticated")
        send(d, p, "POST", "/api/plugins/execute/hello", exp)
        return
    exp = M.expect_admin_only(sec, p, {200}, what="admin plugin execution: admin")
    send(d, p, "POST", "/api/plugins/execute/adm", exp)


ADMIN_GETS = [
    "/api/security/users", "/api/security/groups", "/api/security/groups/gA", "/api/v2/security/permissions",
    "/api/security/permissions", "/api/audit?limit=3", "/api/system/settings", "/api/storageinfo",
    "/api/v1/metrics", "/api/system/storage/config", "/api/security/users/u0", "/api/v2/security/permissions/t0",
    "/api/system/storage/migrate",
]


def op_admin_get(d, p):
    url = d.rng.choice(ADMIN_GETS)
    ok = {200, 404} if url.endswith("/t0") else {200}
    exp = M.expect_admin_only(d.sec, p, ok, what=f"GET {url.split('?')[0]}: admin")
    send(d, p, "GET", url, exp)


def op_storage_migrate(d, p):
    """Moving the binaries to another provider: admins only. The model's
    cluster is local already, so an admin's request is a 400 that changes nothing."""
    exp = M.expect_admin_only(d.sec, p, {400}, what="POST /api/system/storage/migrate: admin")
    send(d, p, "POST", "/api/system/storage/migrate", exp, json.dumps({"to": "local"}), JSON)


def op_admin_attempt(d, p):
    """A non-admin tries to make itself powerful; admins change the world instead."""
    sec = d.sec
    if sec.is_admin(p):
        return op_world_change(d, p)
    me = p.name if p.kind == "user" else "anonymous"
    x = d.rng.random()
    if x < 0.3:
        body = {"name": "evil", "repo": {"repositories": ["ANY"], "actions": {"users": {me: ["manage"]}}}}
        exp = M.expect_admin_only(sec, p, {200}, what="permission targets: admin")
        send(d, p, "PUT", "/api/v2/security/permissions/evil", exp, json.dumps(body), JSON)
        r = d.root("GET", "/api/v2/security/permissions/evil")
        if r.status == 200:
            d.mismatch(p, "PUT", "/api/v2/security/permissions/evil", exp, r, ["target 'evil' was created"])
            d.root("DELETE", "/api/v2/security/permissions/evil")
    elif x < 0.55:
        g = d.rng.choice(sorted(sec.groups))
        body = {"userNames": [me], "adminPrivileges": True}
        exp = M.expect_admin_only(sec, p, {200}, what="groups: admin")
        send(d, p, "POST", f"/api/security/groups/{g}", exp, json.dumps(body), JSON)
        check_group(d, p, g, exp)
    elif x < 0.8 and p.kind == "user":
        exp = M.expect_admin_only(sec, p, {200}, what="users: admin")
        send(d, p, "POST", f"/api/security/users/{me}", exp, json.dumps({"admin": True}), JSON)
        r = d.root("GET", f"/api/security/users/{me}")
        if (r.json() or {}).get("admin") != sec.users[me].admin:
            d.mismatch(p, "POST", f"/api/security/users/{me}", exp, r, ["admin flag changed"])
            d.root_json("POST", f"/api/security/users/{me}", {"admin": sec.users[me].admin})
    else:
        want = sec.anonymous_on
        exp = M.expect_admin_only(sec, p, {200}, what="settings: admin")
        send(d, p, "PUT", "/api/system/settings", exp, json.dumps({"anonymousRead": not want}), JSON)
        r = d.root("GET", "/api/system/settings")
        if (r.json() or {}).get("anonymousRead") != want:
            d.mismatch(p, "PUT", "/api/system/settings", exp, r, ["anonymous access changed"])
            d.set_anonymous(want)


def check_group(d, p, g, exp):
    sec = d.sec
    r = d.root("GET", f"/api/security/groups/{g}")
    j = r.json() or {}
    want_members = sorted(u.name for u in sec.users.values() if g in u.groups)
    if sorted(j.get("userNames", [])) != want_members or bool(j.get("adminPrivileges")) != sec.groups[g].admin:
        d.mismatch(p, "POST", f"/api/security/groups/{g}", exp, r, [f"group {g} changed: {j}"])
        d.root_json("PUT", f"/api/security/groups/{g}", {"description": g, "autoJoin": False,
                                                          "adminPrivileges": sec.groups[g].admin,
                                                          "userNames": want_members})


def op_effective(d, p):
    sec = d.sec
    rng = d.rng
    repo, path = d.pick_file(existing=0.6)
    if rng.random() < 0.3:
        path = d.pick_folder(repo)
    who = None
    if rng.random() < 0.3:
        who = rng.choice(sorted(sec.users))
    url = f"/api/security/permissions/effective?repo={repo}&path={urllib.parse.quote(path)}" + (
        f"&user={who}" if who else "")
    rule = "effective permissions: the caller's own (admin: anyone's)"
    if sec.refused_outright(p):
        exp = M.Expect(rule, [M.Outcome({401})])
    elif who and not sec.is_admin(p) and not (p.kind == "user" and p.name == who):
        exp = M.Expect(rule, [M.Outcome({sec.denied(p)})])
    else:
        if who and not (p.kind == "user" and p.name == who):
            subject = M.Principal("user", who, "password")
        else:
            subject = p  # its own view: a token's is the token's
        lv = sec.level(subject, repo, path)
        want = M.ACTIONS[: lv + 1]

        def check(r):
            got = (r.json() or {}).get("actions")
            return [] if got == want else [f"actions {got}, model {want}"]

        exp = M.Expect(rule, [M.Outcome({200}, None, check)])
    send(d, p, "GET", url, exp, repo=repo)


# ---- tokens and passwords --------------------------------------------------------------


def op_token_create(d, p):
    sec = d.sec
    rng = d.rng
    me = "admin" if p.kind == "root" else (p.name or "anonymous")
    x = rng.random()
    for_user, admin_scope, never = me, False, False
    if x < 0.2:
        for_user = rng.choice(sorted(set(sec.users) - {me}) or [me])
    elif x < 0.5:
        admin_scope = True
    elif x < 0.7:
        never = True
    form = f"username={for_user}&scope=applied-permissions/{'admin' if admin_scope else 'user'}" + (
        "&expires_in=0" if never else "&expires_in=600")
    exp = M.expect_token_create(sec, p, for_user, admin_scope, never)
    r, out = send(d, p, "POST", "/api/security/token", exp, form, FORM)
    if r.status != 200 or out is None:
        return
    tok = (r.json() or {}).get("access_token")
    if not tok:
        d.mismatch(p, "POST", "/api/security/token", exp, r, ["no access_token"])
        return
    # what the token may do on an admin endpoint (finding 7)
    admin = for_user == "admin" and admin_scope or M.token_admin_use(sec, for_user, admin_scope)
    r2 = d.http("GET", "/api/security/users", "Bearer " + tok)
    want = 200 if admin else 403
    if r2.status != want:
        e2 = M.Expect(f"a token of {for_user} with scope {'admin' if admin_scope else 'user'} is "
                      f"{'an admin' if admin else 'no admin'}", [M.Outcome({want})])
        d.mismatch(p, "GET", "/api/security/users (with the new token)", e2, r2, [])


def op_token_refresh(d, p):
    sec = d.sec
    if p.kind == "anon":
        exp = M.Expect("token refresh: authenticated", [M.Outcome({401})])
        send(d, p, "POST", "/api/security/token", exp, "grant_type=refresh_token&refresh_token=grt_x", FORM)
        return
    me = "admin" if p.kind == "root" else p.name
    r = d.http("POST", "/api/security/token", d.auth(p),
               f"username={me}&scope=applied-permissions/user&expires_in=600&refreshable=true", FORM)
    if r.status != 200:
        exp = M.Expect("a user creates its own refreshable token", [M.Outcome({200})])
        d.mismatch(p, "POST", "/api/security/token (own, refreshable)", exp, r, [])
        return
    j = r.json() or {}
    old, rt = j.get("access_token"), j.get("refresh_token")
    never = d.rng.random() < 0.5
    form = f"grant_type=refresh_token&refresh_token={rt}" + ("&expires_in=0" if never else "")
    exp = M.expect_token_refresh(sec, p, never)
    r2, out = send(d, p, "POST", "/api/security/token", exp, form, FORM)
    if r2.status == 200 and out is not None:
        new = (r2.json() or {}).get("access_token")
        a = d.http("GET", "/api/security/token", "Bearer " + old).status
        b = d.http("GET", "/api/security/token", "Bearer " + (new or "none")).status
        if (a, b) != (401, 200):
            e2 = M.Expect("after a refresh the old token stops working, the new one works",
                          [M.Outcome({401}), M.Outcome({200})])
            d.mismatch(p, "GET", "/api/security/token (old, new)", e2, r2, [f"old -> {a}, new -> {b}"])


def op_tokens_list_revoke(d, p):
    """Token lists show one's own (admins: all); nobody but an admin revokes
    another's token."""
    sec = d.sec
    rng = d.rng
    if p.kind == "anon":
        exp = M.Expect("tokens: signed in", [M.Outcome({401})])
        send(d, p, "GET", "/api/security/token", exp)
        return
    me = "admin" if p.kind == "root" else p.name
    if rng.random() < 0.6 or sec.is_admin(p):
        def own_only(r):
            subs = {t.get("subject") for t in (r.json() or {}).get("tokens", [])}
            if sec.is_admin(p):
                return [] if set(sec.users) <= subs else [f"an admin misses tokens of {sorted(set(sec.users) - subs)}"]
            return [] if subs <= {me} else [f"tokens of others listed: {sorted(subs - {me})}"]

        exp = M.Expect("token list: own (admins: all)", [M.Outcome({200}, None, own_only)])
        send(d, p, "GET", "/api/security/token", exp)
        return
    other = rng.choice(sorted(set(sec.users) - {me}) or [me])
    if other == me:
        return
    exp = M.Expect("revoking another user's token: admin", [M.Outcome({403, 404})])
    send(d, p, "POST", "/api/security/token/revoke", exp, f"token={sec.users[other].token}", FORM)
    r = d.http("GET", "/api/security/token", "Bearer " + sec.users[other].token)
    if r.status != 200:
        d.mismatch(p, "POST", "/api/security/token/revoke", exp, r, [f"{other}'s token no longer works"])
        r = d.root("POST", "/api/security/token", f"username={other}&scope=applied-permissions/user&expires_in=86400",
                   FORM, {200})
        sec.users[other].token = r.json()["access_token"]


def op_password(d, p):
    sec = d.sec
    rng = d.rng
    if p.kind == "anon":
        exp = M.expect_password(sec, p, "u0", False, "x")
        send(d, p, "POST", "/api/security/users/u0/password", exp, json.dumps({"password": "whatever-123"}), JSON)
        return
    if p.kind == "root" or rng.random() < 0.25:
        target = rng.choice(sorted(sec.users))
    else:
        target = p.name
    new = "pw-" + rand_hex(rng, 12)
    with_old = p.kind == "user" and target == p.name and rng.random() < 0.4
    body = {"password": new}
    if with_old:
        body["oldPassword"] = sec.users[target].password
    exp = M.expect_password(sec, p, target, with_old, new)
    old_pw = sec.users[target].password
    send(d, p, "POST", f"/api/security/users/{target}/password", exp, json.dumps(body), JSON)
    # the model's password must work (a refused change changes nothing)
    cur = sec.users[target].password
    r = d.http("GET", "/api/security/token", "Basic " + b64(f"{target}:{cur}"))
    if r.status != 200:
        e2 = M.Expect("the user's password is the one the model holds", [M.Outcome({200})])
        d.mismatch(p, "GET", f"/api/security/token as {target} (model password)", e2, r,
                   ["password changed although the change was refused" if cur == old_pw else
                    "password not changed"])
        d.root_json("POST", f"/api/security/users/{target}/password", {"password": cur})


# ---- npm --------------------------------------------------------------------------------


def npm_url(d, name, rest=""):
    return f"/api/npm/{d.npm_repo}/{npm_enc(name)}{rest}"


def op_npm_packument(d, p):
    name = d.rng.choice(NPM_NAMES)
    exp = M.expect_npm_packument(d.sec, d.c, p, d.npm_repo, name, npm_versions)
    send(d, p, "GET", npm_url(d, name), exp, repo=d.npm_repo)


def op_npm_tarball(d, p):
    rng = d.rng
    name = rng.choice(NPM_NAMES)
    vers = sorted(d.c.npm.get(name, {}))
    ver = rng.choice(vers) if vers and rng.random() < 0.8 else rng.choice(NPM_VERSIONS)
    tb = M.npm_tarball(name, ver)
    exp = M.expect_get_file(d.sec, d.c, p, d.npm_repo, tb, sha256)
    base = name.rsplit("/", 1)[-1]
    send(d, p, "GET", npm_url(d, name, f"/-/{base}-{ver}.tgz"), exp, repo=d.npm_repo)


def op_npm_publish(d, p):
    rng = d.rng
    name = rng.choice(NPM_NAMES)
    have = d.c.npm.get(name, {})
    fresh = [v for v in NPM_VERSIONS if v not in have]
    ver = rng.choice(fresh) if fresh and rng.random() < 0.85 else rng.choice(NPM_VERSIONS)
    body, sha = npm_publish_body(name, ver, f"{name}@{ver} {rand_hex(rng, 8)}".encode())
    exp = M.expect_npm_publish(d.sec, d.c, p, d.npm_repo, name, ver, sha)
    send(d, p, "PUT", npm_url(d, name), exp, body, JSON, repo=d.npm_repo)


def op_npm_unpublish(d, p):
    rng = d.rng
    names = [n for n, v in d.c.npm.items() if len(v) >= 2]
    if not names:
        return op_npm_publish(d, p)
    name = rng.choice(sorted(names))
    # one who may publish but not delete (finding 4)
    p, g = with_edge(d, p, lambda q: [n for n in names if M.WRITE <= d.sec.level(q, d.npm_repo, n) < M.DELETE])
    name = g or name
    r = d.root("GET", npm_url(d, name, "?write=true"))
    doc = r.json()
    if r.status != 200 or not isinstance(doc, dict):
        return
    ver = rng.choice(sorted(doc["versions"]))
    del doc["versions"][ver]
    rest = sorted(doc["versions"], key=lambda v: [int(x) for x in v.split(".")])
    doc["dist-tags"] = {"latest": rest[-1]}
    doc.pop("time", None)
    exp = M.expect_npm_unpublish_version(d.sec, d.c, p, d.npm_repo, name, ver)
    send(d, p, "PUT", npm_url(d, name, f"/-rev/{doc['_rev']}"), exp, json.dumps(doc), JSON, repo=d.npm_repo)


def op_npm_delete(d, p):
    rng = d.rng
    names = sorted(d.c.npm)
    if not names:
        return op_npm_publish(d, p)
    name = rng.choice(names)
    r = d.root("GET", npm_url(d, name))
    if r.status != 200:
        return
    exp = M.expect_npm_delete_package(d.sec, d.c, p, d.npm_repo, name)
    send(d, p, "DELETE", npm_url(d, name, f"/-rev/{(r.json() or {}).get('_rev')}"), exp, repo=d.npm_repo)


def op_npm_search(d, p):
    text = d.rng.choice(["a", "b", "p", "c"])
    exp = M.expect_npm_search(d.sec, d.c, p, d.npm_repo, text, npm_search_names)
    send(d, p, "GET", f"/api/npm/{d.npm_repo}/-/v1/search?text={text}&size=50", exp, repo=d.npm_repo)


def op_npm_dist_tags(d, p):
    name = d.rng.choice(NPM_NAMES)
    sec = d.sec
    rule = f"npm dist-tags: read on {name}"
    if sec.refused_outright(p) or sec.level(p, d.npm_repo, name) < M.READ:
        exp = M.Expect(rule, [M.Outcome({sec.denied(p)})])
    elif name not in d.c.npm:
        exp = M.Expect(rule, [M.Outcome({404})])
    else:
        # no version left the caller may read: 404 too
        readable = M.npm_readable_versions(sec, d.c, p, d.npm_repo, name)
        exp = M.Expect(rule, [M.Outcome({200} if readable else {200, 404})])
    send(d, p, "GET", f"/api/npm/{d.npm_repo}/-/package/{npm_enc(name)}/dist-tags", exp, repo=d.npm_repo)


# ---- Maven ------------------------------------------------------------------------------


def op_mvn_deploy(d, p):
    path = d.rand_mvn_path()
    body = d.rng.choice(POOL)
    exp = M.expect_put(d.sec, d.c, p, d.mvn_repo, path, sha256(body))
    send(d, p, "PUT", f"/{d.mvn_repo}/{q(path)}", exp, body, repo=d.mvn_repo)


def op_mvn_metadata(d, p):
    g, a = d.rng.choice(MVN_GROUPS), d.rng.choice(MVN_ARTS)
    exp = M.expect_maven_metadata(d.sec, d.c, p, d.mvn_repo, g, a, mvn_versions)
    send(d, p, "GET", f"/{d.mvn_repo}/{g}/{a}/maven-metadata.xml", exp, repo=d.mvn_repo)


# ---- the web UI: paged listings, sessions --------------------------------------------------


def op_page_list(d, p):
    """A folder page by page, as the UI's browser reads it (?list&offset&limit)."""
    p, repo, folder = pick_listing(d, p)
    folders = d.rng.random() < 0.8
    limit = d.rng.randint(1, 4)
    base = (f"/api/storage/{repo}/{q(folder)}" if folder else f"/api/storage/{repo}") + "?list" + (
        "&listFolders=1" if folders else "")
    exp = M.expect_page_list(d.sec, d.c, p, repo, folder)
    r, out = send(d, p, "GET", f"{base}&offset=0&limit={limit}", exp, repo=repo)
    if r.status != 200 or out is None:
        return
    entries, totals, page = [], [], r
    for _ in range(100):
        j = page.json() or {}
        totals.append(j.get("total"))
        entries += [(f["uri"].strip("/"), bool(f.get("folder"))) for f in j.get("files", [])]
        if not j.get("files") or len(entries) >= (j.get("total") or 0):
            break
        page = d.http("GET", f"{base}&offset={len(entries)}&limit={limit}", d.auth(p))
        if page.status != 200:
            d.mismatch(p, "GET", f"{base}&offset={len(entries)}", exp, page, ["a later page failed"], repo)
            return
    probs = M.check_pages(d.sec, d.c, p, repo, folder, folders, entries, totals)
    if probs:
        d.mismatch(p, "GET", f"{base} (all pages of {limit})", exp, r, probs, repo)


def op_ui_session(d, p):
    """Who the UI says the caller is; a session opened, used and closed."""
    sec = d.sec
    rule = "ui session: the caller, never more"
    if d.rng.random() < 0.5 or p.kind == "anon":
        user = "anonymous" if p.kind == "anon" else p.name

        def check(r):
            j = r.json() or {}
            want_admin = sec.is_admin(p)
            probs = []
            if j.get("user") != user or j.get("anonymous") != (p.kind == "anon"):
                probs.append(f"user {j.get('user')} anonymous {j.get('anonymous')}, model {user}")
            if j.get("admin") != want_admin:
                probs.append(f"admin {j.get('admin')}, model {want_admin}")
            if p.via == "session" and j.get("csrfToken") != sec.users[p.name].csrf:
                probs.append("another CSRF token than the session's")
            return probs

        send(d, p, "GET", "/api/ui/session", M.Expect(rule, [M.Outcome({200}, None, check)]))
        return
    # sign in as p's user (the built-in admin for root), use the session, sign out
    name = "admin" if p.kind == "root" else p.name
    pw = d.admin_pass if p.kind == "root" else sec.users[name].password
    s = d.open_session(name, pw)
    if not s:
        d.mismatch(p, "POST", "/api/ui/session", M.Expect("sign-in with the right password", [M.Outcome({200})]),
                   None, ["no session"])
        return
    h = d.session_headers(*s)
    admin = name == "admin" or sec.user_is_admin(name)
    r = d.http("GET", "/api/security/users", h)
    if r.status != (200 if admin else 403):
        d.mismatch(p, "GET", "/api/security/users (new session)",
                   M.Expect("a session is an admin iff its user is", [M.Outcome({200 if admin else 403})]), r, [])
    r = d.http("DELETE", "/api/ui/session", {"Cookie": h["Cookie"]})
    if r.status != 403:
        d.mismatch(p, "DELETE", "/api/ui/session (no CSRF token)",
                   M.Expect("signing out is a change: it needs the CSRF token", [M.Outcome({403})]), r, [])
    r = d.http("DELETE", "/api/ui/session", h)
    r2 = d.http("GET", "/api/repositories", h)
    if r.status != 200 or r2.status != 401:
        d.mismatch(p, "DELETE", "/api/ui/session",
                   M.Expect("signed out: the cookie is refused", [M.Outcome({200}), M.Outcome({401})]), r2,
                   [f"sign-out {r.status}, then {r2.status}"])


def op_ui_sessions(d, p):
    """Session lists show one's own (admins: all); only an admin revokes another's."""
    sec = d.sec
    rng = d.rng
    if p.kind == "anon":
        send(d, p, "GET", "/api/ui/sessions", M.Expect("ui sessions: signed in", [M.Outcome({401})]))
        return
    me = "admin" if p.kind == "root" else p.name
    if rng.random() < 0.5:
        def check(r):
            users = {s.get("user") for s in (r.json() or {}).get("sessions", [])}
            if sec.is_admin(p):
                return [] if set(sec.users) <= users else [f"an admin misses sessions of {sorted(set(sec.users) - users)}"]
            return [] if users <= {me} else [f"sessions of others listed: {sorted(users - {me})}"]

        send(d, p, "GET", "/api/ui/sessions", M.Expect("ui session list: own (admins: all)", [M.Outcome({200}, None, check)]))
        return
    others = sorted(set(sec.users) - {me})
    if not others:
        return
    other = rng.choice(others)
    victim = d.open_session(other, sec.users[other].password)
    if not victim:
        return
    vh = d.session_headers(*victim)
    sid = next((s["id"] for s in (d.http("GET", "/api/ui/sessions", vh).json() or {}).get("sessions", [])
                if s.get("current")), None)
    admin = sec.is_admin(p)
    exp = M.Expect("revoking another user's UI session: admin", [M.Outcome({204} if admin else {404})],
                   tags=() if admin else {"UI another user's session"})
    send(d, p, "DELETE", f"/api/ui/sessions/{sid}", exp)
    r = d.http("GET", "/api/ui/sessions", vh)
    if r.status != (401 if admin else 200):
        d.mismatch(p, "DELETE", f"/api/ui/sessions/{sid}",
                   M.Expect("the session works iff it was not revoked", [M.Outcome({401 if admin else 200})]), r, [])
    if not admin:
        d.http("DELETE", "/api/ui/session", vh)
# ---- PyPI --------------------------------------------------------------------------------

PYPI_JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def pypi_page_files(resp):
    j = resp.json()
    if not isinstance(j, dict) or not isinstance(j.get("files"), list):
        return None
    return {f.get("filename") for f in j["files"]}


def pypi_json_files(resp):
    j = resp.json()
    if not isinstance(j, dict) or not isinstance(j.get("releases"), dict):
        return None
    return {f.get("filename") for rel in j["releases"].values() for f in rel}


def pypi_root_names(resp):
    j = resp.json()
    if not isinstance(j, dict) or not isinstance(j.get("projects"), list):
        return None
    return {x.get("name") for x in j["projects"]}


def pypi_edge_page(d, q):
    """Projects the caller reads, holding files it cannot read."""
    r = d.pypi_repo
    return [n for n in PYPI_NAMES if d.sec.level(q, r, n) >= M.READ
            and any(d.sec.level(q, r, x) < M.READ for x in M.pypi_files(d.c, r, n))]


def op_pypi_upload(d, p):
    rng = d.rng
    name, ver, wheel = rng.choice(PYPI_NAMES), rng.choice(PYPI_VERSIONS), rng.random() < 0.6
    # one who may write in the repository but not where this file goes
    p, g = with_edge(d, p, lambda q: [(n, v) for n in PYPI_NAMES for v in PYPI_VERSIONS
                                      if d.sec.granted_anywhere(q, d.pypi_repo, M.WRITE)
                                      and d.sec.level(q, d.pypi_repo, f"{n}/{v}/{pypi_file_name(n, v, wheel)}") < M.WRITE])
    if g:
        name, ver = g
    body, ctype, (fn, sha, meta) = pypi_upload_body(name, ver, wheel)
    exp = M.expect_pypi_upload(d.sec, d.c, p, d.pypi_repo, name, ver, fn, sha, meta)
    send(d, p, "POST", f"/api/pypi/{d.pypi_repo}/", exp, body, {"Content-Type": ctype}, repo=d.pypi_repo)


def op_pypi_page(d, p):
    name = d.rng.choice(PYPI_NAMES)
    p, g = with_edge(d, p, lambda q: pypi_edge_page(d, q))
    name = g or name
    exp = M.expect_pypi_page(d.sec, d.c, p, d.pypi_repo, name, pypi_page_files)
    send(d, p, "GET", f"/api/pypi/{d.pypi_repo}/simple/{name}/", exp, headers=PYPI_JSON, repo=d.pypi_repo)


def pypi_url_files(resp):
    j = resp.json()
    if not isinstance(j, dict) or not isinstance(j.get("urls"), list):
        return None
    return {f.get("filename") for f in j["urls"]}


def op_pypi_json(d, p):
    name = d.rng.choice(PYPI_NAMES)
    p, g = with_edge(d, p, lambda q: pypi_edge_page(d, q))
    name = g or name
    if d.rng.random() < 0.5:
        exp = M.expect_pypi_page(d.sec, d.c, p, d.pypi_repo, name, pypi_json_files, "JSON API")
        send(d, p, "GET", f"/api/pypi/{d.pypi_repo}/pypi/{name}/json", exp, repo=d.pypi_repo)
        return
    # one release: its files the caller reads are the urls
    ver = d.rng.choice(PYPI_VERSIONS)
    exp = M.expect_pypi_page(d.sec, d.c, p, d.pypi_repo, name, pypi_url_files, "release JSON", ver)
    send(d, p, "GET", f"/api/pypi/{d.pypi_repo}/pypi/{name}/{ver}/json", exp, repo=d.pypi_repo)


def op_pypi_root(d, p):
    exp = M.expect_pypi_root(d.sec, d.c, p, d.pypi_repo, pypi_root_names)
    send(d, p, "GET", f"/api/pypi/{d.pypi_repo}/simple/", exp, headers=PYPI_JSON, repo=d.pypi_repo)


def op_pypi_file(d, p):
    rng = d.rng
    files = sorted(x for (r, x) in d.c.files if r == d.pypi_repo)
    if files and rng.random() < 0.8:
        path = rng.choice(files)
    else:
        n, v = rng.choice(PYPI_NAMES), rng.choice(PYPI_VERSIONS)
        path = f"{n}/{v}/{pypi_file_name(n, v, rng.random() < 0.5)}"
    exp = M.expect_get_file(d.sec, d.c, p, d.pypi_repo, path, sha256)
    send(d, p, "GET", f"/api/pypi/{d.pypi_repo}/packages/{q(path)}", exp, repo=d.pypi_repo)


def op_pypi_yank(d, p):
    rng = d.rng
    name, ver = rng.choice(PYPI_NAMES), rng.choice(PYPI_VERSIONS)
    # one who reads files of a release but may not annotate them all
    p, g = with_edge(d, p, lambda q: [(n, v) for n in PYPI_NAMES for v in PYPI_VERSIONS
                                      if any(d.sec.level(q, d.pypi_repo, x) < M.ANNOTATE
                                             for x in M.pypi_files(d.c, d.pypi_repo, n, v))
                                      and any(d.sec.level(q, d.pypi_repo, x) >= M.READ
                                              for x in M.pypi_files(d.c, d.pypi_repo, n, v))])
    if g:
        name, ver = g
    url = f"/api/pypi/{d.pypi_repo}/yank/{name}/{ver}"
    x = rng.random()
    reason = None if x < 0.4 else "" if x < 0.55 else "bad build"
    exp = M.expect_pypi_yank(d.sec, d.c, p, d.pypi_repo, name, ver, reason)
    if reason is None:
        send(d, p, "DELETE", url, exp, repo=d.pypi_repo)
    else:
        send(d, p, "POST", url + ("?reason=" + q(reason) if reason else ""), exp, repo=d.pypi_repo)


def op_pypi_search(d, p):
    name = d.rng.choice(PYPI_NAMES)
    exp = M.expect_pypi_search(d.sec, d.c, p, d.pypi_repo, name, results_of)
    send(d, p, "GET", f"/api/search/pypi?name={name}&repos={d.pypi_repo}", exp, repo=d.pypi_repo)


# ---- changing the world (admins) --------------------------------------------------------


# ---- docker (the OCI registry at /v2/) ------------------------------------------------------

OCI_MT = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}


def docker_manifests(d, image):
    return sorted(d.c.docker.get((d.docker_repo, image), {}))


def op_docker_manifest_get(d, p):
    rng = d.rng
    image = rng.choice(DOCKER_IMAGES)
    mans = docker_manifests(d, image)
    ref = rng.choice(mans) if mans and rng.random() < 0.4 else rng.choice(DOCKER_TAGS)
    head = rng.random() < 0.3
    exp = M.expect_docker_manifest_get(d.sec, d.c, p, d.docker_repo, image, ref, head)
    send(d, p, "HEAD" if head else "GET", f"/v2/{d.docker_repo}/{image}/manifests/{ref}", exp,
         headers={"Accept": OCI_MT["Content-Type"]}, repo=d.docker_repo)


def op_docker_blob_get(d, p):
    rng = d.rng
    image = rng.choice(DOCKER_IMAGES)
    known = sorted(d.c.links.get((d.docker_repo, image), set()))
    dg = rng.choice(known) if known and rng.random() < 0.8 else "sha256:" + sha256(NEVER)
    exp = M.expect_docker_blob_get(d.sec, d.c, p, d.docker_repo, image, dg)
    send(d, p, "GET", f"/v2/{d.docker_repo}/{image}/blobs/{dg}", exp, repo=d.docker_repo)


def op_docker_blob_push(d, p):
    image = d.rng.choice(DOCKER_IMAGES)
    b = f"blob {rand_hex(d.rng, 16)}\n".encode()
    dg = "sha256:" + sha256(b)
    exp = M.expect_docker_blob_push(d.sec, d.c, p, d.docker_repo, image, dg)
    send(d, p, "POST", f"/v2/{d.docker_repo}/{image}/blobs/uploads/?digest={dg}", exp, b,
         {"Content-Type": "application/octet-stream"}, repo=d.docker_repo)


def op_docker_push(d, p):
    """The blobs as admin, then the manifest by tag as the caller."""
    rng = d.rng
    image = rng.choice(DOCKER_IMAGES)
    tag = rng.choice(DOCKER_TAGS)
    man, dg, blobs = docker_image(rng)
    d.docker_push_blobs(image, blobs)
    exp = M.expect_docker_push(d.sec, d.c, p, d.docker_repo, image, tag, dg, sha256(man),
                               [(bd, sha256(b)) for bd, b in blobs])
    send(d, p, "PUT", f"/v2/{d.docker_repo}/{image}/manifests/{tag}", exp, man, OCI_MT, repo=d.docker_repo)


def op_docker_delete(d, p):
    rng = d.rng
    p, edge = with_edge(d, p, lambda q: M.docker_delete_edges(d.sec, d.c, q, d.docker_repo))
    image = edge[0] if edge else rng.choice(DOCKER_IMAGES)
    mans = docker_manifests(d, image)
    if edge or (mans and rng.random() < 0.5):
        dg = edge[1] if edge else rng.choice(mans)
        exp = M.expect_docker_delete_manifest(d.sec, d.c, p, d.docker_repo, image, dg)
        send(d, p, "DELETE", f"/v2/{d.docker_repo}/{image}/manifests/{dg}", exp, repo=d.docker_repo)
        return
    tag = rng.choice(DOCKER_TAGS)
    exp = M.expect_docker_delete_tag(d.sec, d.c, p, d.docker_repo, image, tag)
    send(d, p, "DELETE", f"/v2/{d.docker_repo}/{image}/manifests/{tag}", exp, repo=d.docker_repo)


def docker_tags_of(resp):
    j = resp.json()
    return sorted(j["tags"]) if isinstance(j, dict) and isinstance(j.get("tags"), list) else None


def docker_catalog_of(resp):
    j = resp.json()
    return set(j["repositories"]) if isinstance(j, dict) and isinstance(j.get("repositories"), list) else None


def docker_scope_of(resp):
    j = resp.json()
    return j.get("scope") if isinstance(j, dict) else None


def op_docker_tags(d, p):
    image = d.rng.choice(DOCKER_IMAGES)
    exp = M.expect_docker_tags(d.sec, d.c, p, d.docker_repo, image, docker_tags_of)
    send(d, p, "GET", f"/v2/{d.docker_repo}/{image}/tags/list", exp, repo=d.docker_repo)


def op_docker_catalog(d, p):
    repos = [k for k, r in d.sec.repos.items() if r.ptype == "docker"]
    exp = M.expect_docker_catalog(d.sec, d.c, p, repos, docker_catalog_of)
    send(d, p, "GET", "/v2/_catalog", exp)


def op_docker_token(d, p):
    image = d.rng.choice(DOCKER_IMAGES)
    exp = M.expect_docker_token(d.sec, d.c, p, d.docker_repo, image, docker_scope_of)
    send(d, p, "GET", f"/v2/token?service=granary&scope=repository:{d.docker_repo}/{image}:pull,push,delete", exp)


def op_world_change(d, p=None):
    """An admin changes a target, a group, an admin flag or anonymous access;
    later operations check the caches followed."""
    sec = d.sec
    rng = d.rng
    admins = [M.Principal("user", u, "password") for u in sorted(sec.users) if sec.user_is_admin(u)]
    actor = p if p is not None and sec.is_admin(p) else (rng.choice(admins) if admins and rng.random() < 0.3
                                                        else d.ROOT)
    x = rng.random()
    if x < 0.4:
        name = rng.choice(sorted(sec.targets)) if sec.targets and rng.random() < 0.8 else f"t{len(sec.targets) + 3}"
        d.put_target(d.random_target(name), actor)
    elif x < 0.5 and len(sec.targets) > 2:
        name = rng.choice(sorted(sec.targets))
        d.admin_do(actor, "DELETE", f"/api/v2/security/permissions/{name}", None, {200}, "delete target")
        del sec.targets[name]
    elif x < 0.7:
        g = rng.choice(sorted(sec.groups))
        members = sorted(u for u in sec.users if rng.random() < 0.4)
        d.admin_do(actor, "PUT", f"/api/security/groups/{g}",
                   {"description": g, "autoJoin": False, "adminPrivileges": sec.groups[g].admin,
                    "userNames": members}, {200, 201}, "group members")
        for u in sec.users.values():
            u.groups.discard(g)
            if u.name in members:
                u.groups.add(g)
    elif x < 0.8:
        g = rng.choice(sorted(sec.groups))
        on = not sec.groups[g].admin
        members = sorted(u.name for u in sec.users.values() if g in u.groups)
        d.admin_do(actor, "PUT", f"/api/security/groups/{g}",
                   {"description": g, "autoJoin": False, "adminPrivileges": on, "userNames": members},
                   {200, 201}, "group admin")
        sec.groups[g].admin = on
    elif x < 0.9:
        u = rng.choice(sorted(sec.users))
        on = not sec.users[u].admin
        d.admin_do(actor, "POST", f"/api/security/users/{u}", {"admin": on}, {200}, "user admin flag")
        sec.users[u].admin = on
    else:
        d.set_anonymous(not sec.anonymous_on, actor)
    d.last_who = actor


OPS = [
    ("get_file", 10, op_get_file),
    ("get_checksum", 2, op_get_checksum),
    ("storage_file", 4, op_storage_file),
    ("storage_folder", 4, op_storage_folder),
    ("html_listing", 4, op_html_listing),
    ("deep_list", 4, op_deep_list),
    ("put", 8, op_put),
    ("put_checksum", 4, op_put_checksum),
    ("delete", 6, op_delete),
    ("props_change", 7, op_props_change),
    ("props_get", 3, op_props_get),
    ("search_artifact", 3, op_search_artifact),
    ("search_checksum", 2, op_search_checksum),
    ("search_prop", 3, op_search_prop),
    ("search_gavc", 2, op_search_gavc),
    ("search_dates", 1, op_search_dates),
    ("copy_move", 12, op_copy_move),
    ("trash_list", 3, op_trash_list),
    ("restore", 5, op_restore),
    ("trash_admin", 1, op_trash_admin),
    ("repo_list", 2, op_repo_list),
    ("root_html", 1, op_root_html),
    ("repo_get", 1, op_repo_get),
    ("repo_admin", 1, op_repo_admin),
    ("cluster", 1, op_cluster),
    ("plugins", 1, op_plugins),
    ("admin_get", 2, op_admin_get),
    ("admin_attempt", 1, op_admin_attempt),
    ("storage_migrate", 1, op_storage_migrate),
    ("effective", 3, op_effective),
    ("token_create", 2, op_token_create),
    ("token_refresh", 2, op_token_refresh),
    ("password", 2, op_password),
    ("tokens_list_revoke", 2, op_tokens_list_revoke),
    ("npm_packument", 3, op_npm_packument),
    ("npm_tarball", 3, op_npm_tarball),
    ("npm_publish", 3, op_npm_publish),
    ("npm_unpublish", 3, op_npm_unpublish),
    ("npm_delete", 1, op_npm_delete),
    ("npm_search", 2, op_npm_search),
    ("npm_dist_tags", 1, op_npm_dist_tags),
    ("docker_manifest_get", 3, op_docker_manifest_get),
    ("docker_blob_get", 2, op_docker_blob_get),
    ("docker_blob_push", 2, op_docker_blob_push),
    ("docker_push", 3, op_docker_push),
    ("docker_delete", 2, op_docker_delete),
    ("docker_tags", 2, op_docker_tags),
    ("docker_catalog", 1, op_docker_catalog),
    ("docker_token", 2, op_docker_token),
    ("mvn_deploy", 2, op_mvn_deploy),
    ("mvn_metadata", 2, op_mvn_metadata),
    ("page_list", 4, op_page_list),
    ("ui_session", 2, op_ui_session),
    ("ui_sessions", 1, op_ui_sessions),
    ("pypi_upload", 3, op_pypi_upload),
    ("pypi_page", 3, op_pypi_page),
    ("pypi_json", 1, op_pypi_json),
    ("pypi_root", 1, op_pypi_root),
    ("pypi_file", 2, op_pypi_file),
    ("pypi_yank", 3, op_pypi_yank),
    ("pypi_search", 1, op_pypi_search),
    ("remote_get", 4, op_remote_get),
    ("remote_cache", 2, op_remote_cache),
    ("virtual", 4, op_virtual),
    ("world_change", 2, op_world_change),
]
