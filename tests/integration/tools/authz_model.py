"""authz_model.py - a reference model of granary's authorization rules
(docs/security.md, "Who may do what"), written from the documentation
alone, never from the daemon's C code, so that it can disagree with it.

Three parts:
  - permissions: an Ant matcher of its own, permission targets, users,
    groups, anonymous access, admins, the folder ("tree") rule;
  - content: artifacts per repository and path (sha256, properties),
    folder properties, the trash with each item's origin, npm packages;
  - one function per operation, `expect_*`, answering what the server must
    answer (a set of acceptable statuses per outcome) and how the content
    changes with that outcome.

Where the rules leave a choice open (the order of a permission check and a
404, a path the rules do not name), the expectation lists every acceptable
outcome; each outcome carries its own state change, so the state check
stays exact whichever the server chose. Pure Python, stdlib only; the
driver is authz_fuzz.py.
"""

import copy
import re

# Where docs/security.md's rules were read one way among others, the
# reading is named here, so that a decision taken otherwise is one line.
# The anonymous principal (anonymous access on) may copy, move and restore
# what targets grant it, like any caller (the daemon answered 401 on
# 2026-12-07: reported).
ANONYMOUS_MAY_COPY_MOVE_RESTORE = True

READ, ANNOTATE, WRITE, DELETE, MANAGE = range(5)
NONE = -1
ACTIONS = ["read", "annotate", "write", "delete", "manage"]

# Downloads of these types must come as attachments (finding 8).
ACTIVE_EXT = (".html", ".htm", ".xhtml", ".svg", ".js", ".mjs", ".xml", ".xsl", ".swf", ".pdf")
CSP = "default-src 'none'; sandbox"


# ---- Ant patterns ------------------------------------------------------------


def _segs(s):
    return [x for x in s.split("/") if x != ""]


def _seg_match(p, s):
    """One segment: '*' any run, '?' one character, the rest literal."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)
    return re.fullmatch(rx, s, re.S) is not None


def ant_match(pattern, path):
    """Ant style: '**' as a whole segment matches zero or more segments; a
    pattern ending in '/' means 'dir/**'. The root is the path ''."""
    pattern = pattern.strip()
    if pattern.endswith("/"):
        pattern += "**"
    ps, xs = _segs(pattern), _segs(path)
    # dynamic programming over (pattern index, path index)
    memo = {}

    def m(i, j):
        key = (i, j)
        if key in memo:
            return memo[key]
        if i == len(ps):
            r = j == len(xs)
        elif ps[i] == "**":
            r = m(i + 1, j) or (j < len(xs) and m(i, j + 1))
        else:
            r = j < len(xs) and _seg_match(ps[i], xs[j]) and m(i + 1, j + 1)
        memo[key] = r
        return r

    return m(0, 0)


def surely_covers(includes, excludes, folder):
    """The tree rule: a target surely covers everything below folder when it
    has no excludes and an include '**' or '<literal prefix>/**' at or above
    the folder."""
    if excludes:
        return False
    for inc in includes:
        inc = inc.strip()
        if inc == "**":
            return True
        if inc.endswith("/**"):
            lit = inc[:-3].strip("/")
            if lit and not any(c in lit for c in "*?") and (folder == lit or folder.startswith(lit + "/")):
                return True
    return False


def parent_folders(path):
    """'a/b/x.txt' -> ['a', 'a/b'] (not the root)."""
    s = _segs(path)
    return ["/".join(s[:i]) for i in range(1, len(s))]


def below(path, folder):
    """path is folder itself or inside it; the root '' holds everything."""
    return folder == "" or path == folder or path.startswith(folder + "/")


def strictly_below(path, folder):
    return folder == "" and path != "" or path.startswith(folder + "/")


def name_glob(q):
    """Artifact search: Artifactory adds '*' where the name does not start
    (end) with a wildcard; '*' any run, '?' one character."""
    if not q.startswith(("*", "?")):
        q = "*" + q
    if not q.endswith(("*", "?")):
        q = q + "*"
    return q


def glob_match(q, s):
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in q)
    return re.fullmatch(rx, s, re.S) is not None


# ---- security ------------------------------------------------------------------


def level_of(actions):
    """A stronger action implies the weaker ones: the level is the strongest."""
    lv = NONE
    for a in actions:
        if a in ACTIONS:
            lv = max(lv, ACTIONS.index(a))
    return lv


class Target:
    def __init__(self, name, repos, includes=None, excludes=None, users=None, groups=None):
        self.name = name
        self.repos = list(repos)
        self.includes = list(includes) if includes else ["**"]
        self.excludes = list(excludes) if excludes else []
        self.users = dict(users or {})  # name -> [actions]
        self.groups = dict(groups or {})

    def covers_repo(self, key, rclass="local"):
        """ANY: every repository; ANY LOCAL: local and virtual ones; ANY REMOTE: remote ones."""
        return (
            key in self.repos
            or "ANY" in self.repos
            or ("ANY LOCAL" in self.repos and rclass != "remote")
            or ("ANY REMOTE" in self.repos and rclass == "remote")
        )

    def matches(self, path):
        return any(ant_match(i, path) for i in self.includes) and not any(
            ant_match(e, path) for e in self.excludes
        )

    def level_for(self, user, groups):
        lv = level_of(self.users.get(user, []))
        for g in groups:
            lv = max(lv, level_of(self.groups.get(g, [])))
        return lv

    def json(self):
        return {
            "name": self.name,
            "repo": {
                "repositories": self.repos,
                "include-patterns": self.includes,
                "exclude-patterns": self.excludes,
                "actions": {"users": self.users, "groups": self.groups},
            },
        }

    def describe(self):
        acts = ", ".join(
            [f"{u}:{'/'.join(a)}" for u, a in sorted(self.users.items())]
            + [f"@{g}:{'/'.join(a)}" for g, a in sorted(self.groups.items())]
        )
        ex = f" exclude {self.excludes}" if self.excludes else ""
        return f"target {self.name}: repos {self.repos} include {self.includes}{ex} -> {acts}"


class User:
    def __init__(self, name, password, admin=False, groups=()):
        self.name = name
        self.password = password
        self.admin = admin
        self.groups = set(groups)
        self.token = None
        self.session = self.csrf = None  # a web UI session (cookie value, CSRF token)


class Group:
    def __init__(self, name, admin=False):
        self.name = name
        self.admin = admin


class Principal:
    """Who a request runs as: 'anon' (no credentials), 'user' (password,
    token, or a web UI session opened with the password), or 'root' (the
    built-in admin account)."""

    def __init__(self, kind, name=None, via=None):
        self.kind, self.name, self.via = kind, name, via

    def __str__(self):
        if self.kind == "anon":
            return "anonymous (no credentials)"
        return f"{self.name} ({self.via})"


class Repo:
    """A repository. rclass remote: upstream is the key of the (local)
    repository its url points at on the same node; virtual: members in
    order and deploy, its defaultDeploymentRepo (docs/remote.md)."""

    def __init__(self, key, ptype="generic", excludes="", rclass="local", upstream=None, members=(),
                 deploy=None):
        self.key, self.ptype, self.excludes = key, ptype, excludes
        self.rclass, self.upstream, self.members, self.deploy = rclass, upstream, list(members), deploy

    def accepts(self, path):
        """The repository's own include (default everything) and exclude patterns."""
        return not (self.excludes and any(ant_match(e, path) for e in self.excludes.split(",")))


class Security:
    def __init__(self):
        self.repos = {}  # key -> Repo
        self.users = {}  # name -> User
        self.groups = {}  # name -> Group
        self.targets = {}  # name -> Target
        self.anonymous_on = False

    def rclass(self, key):
        r = self.repos.get(key)
        return r.rclass if r else "local"

    def is_admin(self, p):
        """Admins: the built-in account, a user with the flag or in a group
        with adminPrivileges, authenticated by password (or a UI session
        opened with it: a session stands for its user, no more, no less).
        A token is never an admin (finding 7)."""
        if p.kind == "root":
            return True
        if p.kind != "user" or p.via not in ("password", "session"):
            return False
        u = self.users[p.name]
        return u.admin or any(self.groups[g].admin for g in u.groups if g in self.groups)

    def user_is_admin(self, name):
        u = self.users.get(name)
        return bool(u) and (u.admin or any(self.groups[g].admin for g in u.groups if g in self.groups))

    def _names(self, p):
        if p.kind == "anon":
            return "anonymous", set()
        if p.kind == "root":
            return "admin", set()
        return p.name, self.users[p.name].groups

    def denied(self, p):
        return 401 if p.kind == "anon" else 403

    def refused_outright(self, p):
        """Anonymous callers while anonymous access is off: 401 for anything."""
        return p.kind == "anon" and not self.anonymous_on

    def naming(self, p):
        user, groups = self._names(p)
        return [t for t in self.targets.values() if t.level_for(user, groups) > NONE], user, groups

    def level(self, p, repo, path):
        if self.is_admin(p):
            return MANAGE
        if self.refused_outright(p):
            return NONE
        ts, user, groups = self.naming(p)
        lv = NONE
        for t in ts:
            if t.covers_repo(repo, self.rclass(repo)) and t.matches(path):
                lv = max(lv, t.level_for(user, groups))
        return lv

    def tree_level(self, p, repo, folder):
        """The action held on everything below folder, from targets that surely cover it."""
        if self.is_admin(p):
            return MANAGE
        if self.refused_outright(p):
            return NONE
        ts, user, groups = self.naming(p)
        lv = NONE
        for t in ts:
            if t.covers_repo(repo, self.rclass(repo)) and surely_covers(t.includes, t.excludes, folder):
                lv = max(lv, t.level_for(user, groups))
        return lv

    def granted_anywhere(self, p, repo, need=READ):
        """Some target naming p covers repo with at least need (patterns ignored)."""
        if self.is_admin(p):
            return True
        if self.refused_outright(p):
            return False
        ts, user, groups = self.naming(p)
        return any(t.covers_repo(repo, self.rclass(repo)) and t.level_for(user, groups) >= need for t in ts)

    def describe(self, p=None, repo=None):
        out = [f"anonymous access: {'on' if self.anonymous_on else 'off'}"]
        for u in sorted(self.users.values(), key=lambda u: u.name):
            if p is not None and p.kind == "user" and p.name != u.name:
                continue
            gs = ",".join(sorted(u.groups)) or "-"
            out.append(f"user {u.name}: groups {gs}{' admin-flag' if u.admin else ''}")
        for g in sorted(self.groups.values(), key=lambda g: g.name):
            out.append(f"group {g.name}{' adminPrivileges' if g.admin else ''}")
        for t in sorted(self.targets.values(), key=lambda t: t.name):
            if p is not None:
                user, groups = self._names(p)
                if t.level_for(user, groups) == NONE:
                    continue
            if repo is not None and not t.covers_repo(repo, self.rclass(repo)):
                continue
            out.append(t.describe())
        return out


# ---- content ---------------------------------------------------------------------


class Content:
    """What the server must hold. files: (repo, path) -> [sha256, props];
    fprops: (repo, folder) -> props, or None when unknown (folder property
    rows whose fate the rules leave open: deleted folders, copies); trash:
    (repo, path) -> [sha256, props]; npm: name -> {version: sha256};
    docker: (repo, image) -> {manifest digest: set of blob digests};
    links: (repo, image) -> blob digests pushed into the image."""

    def __init__(self):
        self.files = {}
        self.fprops = {}
        self.trash = {}
        self.npm = {}
        self.docker = {}
        self.links = {}

    def repo_files(self, repo):
        return {p: v for (r, p), v in self.files.items() if r == repo}

    def is_file(self, repo, path):
        return (repo, path) in self.files

    def is_folder(self, repo, folder):
        if folder == "":
            return True
        return any(r == repo and p.startswith(folder + "/") for (r, p) in self.files)

    def files_below(self, repo, folder):
        return sorted(p for (r, p) in self.files if r == repo and strictly_below(p, folder))

    def folders_below(self, repo, folder):
        """Existing folders strictly below folder."""
        out = set()
        for p in self.files_below(repo, folder):
            for f in parent_folders(p):
                if strictly_below(f, folder):
                    out.add(f)
        return sorted(out)

    def children(self, repo, folder):
        """Direct children: (name, is_folder)."""
        out = {}
        for p in self.files_below(repo, folder):
            rest = p[len(folder) + 1 :] if folder else p
            head = rest.split("/", 1)[0]
            out[head] = out.get(head, False) or "/" in rest
        return out

    def props_of(self, repo, path):
        """Properties of a file or an existing folder (None: unknown)."""
        if (repo, path) in self.files:
            return self.files[(repo, path)][1]
        return self.fprops.get((repo, path), {})

    def existing_folders(self, repo):
        out = {""}
        for (r, p) in self.files:
            if r == repo:
                out.update(parent_folders(p))
        return out

    def forget_folders(self, repo, folders):
        for f in folders:
            self.fprops[(repo, f)] = None

    def put_file(self, repo, path, sha):
        new_folders = [f for f in parent_folders(path) if not self.is_folder(repo, f)]
        old = self.files.get((repo, path))
        self.files[(repo, path)] = [sha, old[1] if old else {}]
        # a folder that comes into existence may find old property rows
        self.forget_folders(repo, new_folders)

    def trash_file(self, repo, path):
        sha, props = self.files.pop((repo, path))
        self.trash[(repo, path)] = [sha, copy.deepcopy(props)]

    def gone_folders(self, repo, before):
        """Folders that existed before and exist no more lose their known rows."""
        now = self.existing_folders(repo)
        self.forget_folders(repo, [f for f in before if f not in now])


# ---- expectations ----------------------------------------------------------------


class Outcome:
    """statuses: what the server may answer for this outcome; apply(content):
    the change it makes; check(resp): a list of problems with the answer."""

    def __init__(self, statuses, apply=None, check=None, why=""):
        self.statuses = set(statuses)
        self.apply = apply
        self.check = check
        self.why = why


# The edges where the findings lived: a run counts how often it met each
# (authz_fuzz.py --require-coverage fails a run that missed one). Up to
# the first mismatch a run is the same whatever the server, so an edge met
# here is met again, and caught, when the fix it guards is reverted.
EDGES = {
    "F1 trash list hides items": "the trash holds items the caller cannot read",
    "F1 restore without read at the origin": "a restore to where the caller may write, of an item it cannot read",
    "F2 copy over a file without delete": "a copy or move onto a file the caller may write but not delete",
    "F2 copy: write differs on the to path and the final path": "the target path as given and the final paths differ",
    "F3 checksum deploy of a binary the caller cannot read": "deploy by checksum of a hidden binary",
    "F3/F11 listing hides entries": "a folder listing with entries the caller cannot read",
    "F4 npm version removal with write but not delete": "-rev PUT by one who may publish, not delete",
    "F5 npm search hides a package": "a package matching the search the caller cannot read",
    "F7 a token of an admin user": "a user-scoped token of an admin",
    "F7 refresh to never expiring by a non-admin": "grant_type=refresh_token&expires_in=0",
    "F7 own password without the old one": "a password change without oldPassword",
    "F8 active type downloaded": "a download of html, svg or js",
    "F11 recursive properties not by the tree rule": "annotate on the folder, not on all below",
    "F12 repository list hides repositories": "repositories the caller reads nothing in",
    "F12 cluster and plugin details for a non-admin": "a signed-in non-admin asks",
    "OCI manifest delete with a tag the caller may not delete":
        "DELETE by digest where the caller may delete the manifest's file, not a tag's pointing at it",
    "UI a session cookie": "a request made with a web UI session (cookie and CSRF token)",
    "UI paged listing hides entries": "a page of a folder holding entries the caller cannot read",
    "UI another user's session": "a non-admin tries to revoke another user's UI session",
    "P1 pypi upload where the caller may not write": "write in the repository, not on the file's path",
    "P2 pypi page hides files": "a project page with files the caller cannot read",
    "P3 pypi yank without annotate": "a release whose files the caller reads but may not annotate",
}


class Expect:
    def __init__(self, rule, outcomes, affects=(), tags=()):
        self.rule = rule
        self.outcomes = outcomes
        self.affects = set(affects)
        self.tags = set(tags)

    def statuses(self):
        s = set()
        for o in self.outcomes:
            s |= o.statuses
        return s

    def pick(self, status):
        for o in self.outcomes:
            if status in o.statuses:
                return o
        return None


def ok_or_denied(sec, p, allowed, ok_statuses, apply=None, check=None, why=""):
    """One permission decision: allowed gives the success outcome, otherwise
    the denial (401 anonymous / 403) and nothing changes."""
    if allowed:
        return [Outcome(ok_statuses, apply, check, why)]
    return [Outcome({sec.denied(p)}, None, None, why)]


def either(sec, p, ok_statuses, apply=None, check=None, why=""):
    """The rules do not say: success (with its change) or a denial (none)."""
    return [Outcome(ok_statuses, apply, check, why), Outcome({sec.denied(p)}, None, None, why)]


def need_str(lv, paths, tree=False):
    return f"{ACTIONS[lv]} on {paths}" + (" (tree rule)" if tree else "")


# downloads --------------------------------------------------------------------------


def download_header_problems(path, headers):
    """Finding 8: nosniff, a sandboxing CSP, attachment for active types."""
    out = []
    if headers.get("x-content-type-options", "").lower() != "nosniff":
        out.append("missing X-Content-Type-Options: nosniff")
    if headers.get("content-security-policy", "") != CSP:
        out.append(f"Content-Security-Policy is {headers.get('content-security-policy')!r}, not {CSP!r}")
    if path.lower().endswith(ACTIVE_EXT) and not headers.get("content-disposition", "").lower().startswith(
        "attachment"
    ):
        got = headers.get("content-disposition")
        out.append(f"active type served without Content-Disposition: attachment ({got!r})")
    return out


def expect_get_file(sec, c, p, repo, path, sha_of_body, head=False):
    lv = sec.level(p, repo, path)
    rule = f"GET/HEAD file: {need_str(READ, path)}; 404 when absent"
    if sec.refused_outright(p) or lv < READ:
        return Expect(rule, [Outcome({sec.denied(p)})])
    if not c.is_file(repo, path):
        return Expect(rule, [Outcome({404})])
    want = c.files[(repo, path)][0]

    def check(resp):
        probs = download_header_problems(path, resp.headers)
        if not head and sha_of_body(resp.body) != want:
            probs.append("body is not the stored content")
        return probs

    tags = {"F8 active type downloaded"} if path.lower().endswith(ACTIVE_EXT) else ()
    return Expect(rule, [Outcome({200}, None, check)], tags=tags)


# remote and virtual repositories (docs/remote.md) ---------------------------------


def remote_outcome(sec, c, repo, path, sha_of_body):
    """What a remote repository answers a reader for path, the read being
    permitted: its cached copy; else its upstream's file, cached by the
    read; else 502 for a folder (an HTML listing is refused for a file),
    404 for nothing. (outcome, found)."""
    up = sec.repos[repo].upstream

    def body_is(want):
        def check(resp):
            probs = download_header_problems(path, resp.headers)
            if sha_of_body(resp.body) != want:
                probs.append("body is not the expected content")
            return probs

        return check

    if c.is_file(repo, path):
        return Outcome({200}, None, body_is(c.files[(repo, path)][0])), True
    if c.is_file(up, path):
        sha = c.files[(up, path)][0]

        def cache(cc):
            cc.put_file(repo, path, sha)

        return Outcome({200}, cache, body_is(sha)), True
    if c.is_folder(up, path):
        return Outcome({502}), False
    return Outcome({404}), False


def expect_remote_get(sec, c, p, repo, path, sha_of_body):
    """GET a remote repository's file: read on path there (fetching it is
    part of the read); the cached copy, else the upstream's, kept."""
    rule = f"GET remote file: {need_str(READ, path)}; cached, else fetched and kept, else 404"
    if sec.refused_outright(p) or sec.level(p, repo, path) < READ:
        return Expect(rule, [Outcome({sec.denied(p)})], {repo})
    out, _ = remote_outcome(sec, c, repo, path, sha_of_body)
    return Expect(rule, [out], {repo})


def expect_virtual_get(sec, c, p, repo, path, sha_of_body):
    """GET through a virtual repository: the members the caller may read
    path in, in order; the first that has it serves it (a remote member
    fetches); none readable: the refusal; none has it: 404."""
    v = sec.repos[repo]
    rule = "GET virtual file: read on path in the members; the first readable member that has it"
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})])
    readable = [m for m in v.members if m in sec.repos and sec.level(p, m, path) >= READ]
    if not readable:
        return Expect(rule, [Outcome({sec.denied(p) if v.members else 404})])
    affects = set()
    for m in readable:
        if sec.rclass(m) == "remote":
            affects.add(m)
            out, found = remote_outcome(sec, c, m, path, sha_of_body)
            if found:
                return Expect(rule, [out], affects)
            continue
        if c.is_file(m, path):
            want = c.files[(m, path)][0]

            def check(resp, want=want):
                probs = download_header_problems(path, resp.headers)
                if sha_of_body(resp.body) != want:
                    probs.append(f"body is not {m}'s content")
                return probs

            return Expect(rule, [Outcome({200}, None, check)], affects)
    return Expect(rule, [Outcome({404})], affects)


def expect_virtual_put(sec, c, p, repo, path, sha):
    """PUT to a virtual repository: a deploy to its defaultDeploymentRepo, with that
    repository's rules and permissions."""
    exp = expect_put(sec, c, p, sec.repos[repo].deploy, path, sha)
    exp.rule = "PUT virtual: to defaultDeploymentRepo; " + exp.rule
    return exp


def expect_not_allowed(what):
    """A method the repository does not take: 405 whoever asks, nothing changes."""
    return Expect(what, [Outcome({405})])


def expect_checksum_file(sec, c, p, repo, path):
    """GET <path>.sha256: the stored checksum; read on the artifact (the rules
    do not say whether on <path> or <path>.sha256: both are accepted when they
    disagree)."""
    l1, l2 = sec.level(p, repo, path), sec.level(p, repo, path + ".sha256")
    rule = f"GET .sha256: read on {path} (or {path}.sha256)"
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})])
    ok = lambda: Outcome({200} if c.is_file(repo, path) else {404}, None, check_sha(c, repo, path))
    if l1 >= READ and l2 >= READ:
        return Expect(rule, [ok()])
    if l1 < READ and l2 < READ:
        return Expect(rule, [Outcome({sec.denied(p)})])
    return Expect(rule, [ok(), Outcome({sec.denied(p)})])


def check_sha(c, repo, path):
    want = c.files.get((repo, path), [None])[0]

    def check(resp):
        if resp.status == 200 and resp.body.decode(errors="replace").strip()[:64] != want:
            return [f"checksum text is not {want}"]
        return []

    return check


# listings -----------------------------------------------------------------------


def listing_sets(sec, c, p, repo, folder):
    """Children of folder a caller may see: (must, may). A file child is
    shown iff readable; a folder child must be shown when readable, must
    not be when nothing at or below it is readable, else either."""
    must, may = set(), set()
    for name, is_folder in c.children(repo, folder).items():
        full = f"{folder}/{name}" if folder else name
        if not is_folder:
            if sec.level(p, repo, full) >= READ:
                must.add(name)
            continue
        if sec.level(p, repo, full) >= READ:
            must.add(name)
        elif any(sec.level(p, repo, f) >= READ for f in c.files_below(repo, full)) or any(
            sec.level(p, repo, f) >= READ for f in c.folders_below(repo, full)
        ):
            may.add(name)
    return must, must | may


def expect_listing(sec, c, p, repo, folder, names_of):
    """HTML listing, storage folder info: read on the folder; entries the
    caller cannot read are left out (findings 3, 11)."""
    rule = f"folder listing: {need_str(READ, repr(folder))}; only readable entries"
    if sec.refused_outright(p) or sec.level(p, repo, folder) < READ:
        return Expect(rule, [Outcome({sec.denied(p)})])
    if not c.is_folder(repo, folder):
        return Expect(rule, [Outcome({404})])
    must, may = listing_sets(sec, c, p, repo, folder)
    tags = {"F3/F11 listing hides entries"} if must != set(c.children(repo, folder)) else ()

    def check(resp):
        got = names_of(resp)
        if got is None:
            return ["unparsable listing"]
        probs = []
        if got - may:
            probs.append(f"lists entries the caller cannot read: {sorted(got - may)}")
        if must - got:
            probs.append(f"leaves out readable entries: {sorted(must - got)}")
        return probs

    return Expect(rule, [Outcome({200}, None, check)], tags=tags)


def expect_page_list(sec, c, p, repo, folder):
    """?list&offset=&limit= (the web UI's browser): read on the folder, as
    any listing; what the pages hold is checked by check_pages."""
    rule = f"paged listing: {need_str(READ, repr(folder))}; only readable entries, each once"
    if sec.refused_outright(p) or sec.level(p, repo, folder) < READ:
        return Expect(rule, [Outcome({sec.denied(p)})])
    if not c.is_folder(repo, folder):
        return Expect(rule, [Outcome({404})])
    must, _ = listing_sets(sec, c, p, repo, folder)
    tags = {"UI paged listing hides entries"} if must != set(c.children(repo, folder)) else ()
    return Expect(rule, [Outcome({200})], tags=tags)


def check_pages(sec, c, p, repo, folder, folders, entries, totals):
    """All the pages of a folder, in order: entries [(name, is_folder)] and
    each page's total. Problems, or []: every readable child once, nothing
    unreadable, folders (when asked) before files, each by name."""
    kids = c.children(repo, folder)
    must, may = listing_sets(sec, c, p, repo, folder)
    if not folders:
        must = {n for n in must if not kids.get(n)}
        may = {n for n in may if not kids.get(n)}
    names = [n for n, _ in entries]
    probs = []
    if len(set(names)) != len(names):
        probs.append(f"an entry on two pages: {names}")
    if set(names) - may:
        probs.append(f"lists entries the caller cannot read: {sorted(set(names) - may)}")
    if must - set(names):
        probs.append(f"leaves out readable entries: {sorted(must - set(names))}")
    for n, f in entries:
        if n in kids and kids[n] != f:
            probs.append(f"{n}: folder {f}, model {kids[n]}")
    want = sorted((n for n, f in entries if f), key=lambda s: s.encode()) + sorted(
        (n for n, f in entries if not f), key=lambda s: s.encode())
    if names != want:
        probs.append(f"order {names}, expected folders first then files, by name: {want}")
    if any(t != len(names) for t in totals):
        probs.append(f"totals {totals} for {len(names)} entries")
    return probs


def expect_deep_list(sec, c, p, repo, folder, files_of):
    rule = f"?list&deep=1: {need_str(READ, repr(folder))}; exactly the readable files below"
    if sec.refused_outright(p) or sec.level(p, repo, folder) < READ:
        return Expect(rule, [Outcome({sec.denied(p)})])
    if not c.is_folder(repo, folder) and not c.is_file(repo, folder):
        return Expect(rule, [Outcome({404})])
    if c.is_file(repo, folder):
        return Expect(rule, [Outcome({200, 400, 404})])
    want = {f for f in c.files_below(repo, folder) if sec.level(p, repo, f) >= READ}
    tags = {"F3/F11 listing hides entries"} if want != set(c.files_below(repo, folder)) else ()

    def check(resp):
        got = files_of(resp)
        if got is None:
            return ["unparsable list"]
        probs = []
        if got - want:
            probs.append(f"lists files the caller cannot read: {sorted(got - want)[:8]}")
        if want - got:
            probs.append(f"leaves out readable files: {sorted(want - got)[:8]}")
        return probs

    return Expect(rule, [Outcome({200}, None, check)], tags=tags)


def expect_storage_file(sec, c, p, repo, path, sha_of_info):
    rule = f"storage info: {need_str(READ, path)}"
    if sec.refused_outright(p) or sec.level(p, repo, path) < READ:
        return Expect(rule, [Outcome({sec.denied(p)})])
    if not c.is_file(repo, path):
        return Expect(rule, [Outcome({404})])
    want = c.files[(repo, path)][0]
    return Expect(
        rule, [Outcome({200}, None, lambda r: [] if sha_of_info(r) == want else ["wrong sha256 in info"])]
    )


# deploys ---------------------------------------------------------------------------


def expect_put(sec, c, p, repo, path, sha, by_checksum=False):
    """PUT: write; write + delete over an existing file. By checksum: the
    same, and 201 only when the caller can read an existing artifact with
    that sha256, else 404 (finding 3)."""
    exists = c.is_file(repo, path)
    need = DELETE if exists else WRITE
    rule = f"PUT: {need_str(need, path)}" + (
        "; by checksum: 404 unless the caller can read an artifact with that sha256" if by_checksum else ""
    )
    lv = sec.level(p, repo, path)
    if sec.refused_outright(p) or lv < need:
        return Expect(rule, [Outcome({sec.denied(p)})], {repo})

    def apply(cc):
        cc.put_file(repo, path, sha)

    if by_checksum:
        readable = [k for k, v in c.files.items() if v[0] == sha and sec.level(p, k[0], k[1]) >= READ]
        if not readable and any(v[0] == sha for v in c.files.values()):
            return Expect(rule, [Outcome({404})], {repo}, {"F3 checksum deploy of a binary the caller cannot read"})
        if not readable:
            if sec.is_admin(p) and any(v[0] == sha for v in c.trash.values()):
                # the binary of a trashed item: admins see the trash anyway
                return Expect(rule + " (admin, binary only in the trash: either)",
                              [Outcome({201}, apply), Outcome({404})], {repo})
            return Expect(rule, [Outcome({404})], {repo})
    return Expect(rule, [Outcome({201}, apply)], {repo})


def expect_delete(sec, c, p, repo, path):
    rule_f = f"DELETE file: {need_str(DELETE, path)}"
    if sec.refused_outright(p):
        return Expect(rule_f, [Outcome({401})], {repo, "trash"})
    if c.is_file(repo, path):
        ok = sec.level(p, repo, path) >= DELETE

        def apply(cc):
            before = cc.existing_folders(repo)
            cc.trash_file(repo, path)
            cc.gone_folders(repo, before)

        return Expect(rule_f, ok_or_denied(sec, p, ok, {204}, apply), {repo, "trash", "props"})
    rule = f"DELETE folder: {need_str(DELETE, repr(path), tree=True)}"
    if c.is_folder(repo, path):
        ok = sec.tree_level(p, repo, path) >= DELETE
        if path == "" and not c.files_below(repo, ""):
            # an empty repository: nothing to delete
            return Expect(rule, [Outcome({204, 404} if ok else {404, sec.denied(p)})], {repo, "trash"})

        def apply(cc):
            before = cc.existing_folders(repo)
            for f in cc.files_below(repo, path):
                cc.trash_file(repo, f)
            cc.gone_folders(repo, before)
            cc.forget_folders(repo, [path])

        return Expect(rule, ok_or_denied(sec, p, ok, {204}, apply), {repo, "trash", "props"})
    # absent: 404 when permitted; the order of the check (and whether the
    # file or the folder rule applies to nothing) is not specified
    st = {404} if sec.is_admin(p) else {404, sec.denied(p)}
    return Expect("DELETE absent: 404 (or the denial)", [Outcome(st)], {repo, "trash"})


# properties --------------------------------------------------------------------------


def _set_props(props, kv, delete):
    for k, vals in kv.items():
        if delete:
            props.pop(k, None)
        else:
            props[k] = sorted(set(vals))


def expect_props_change(sec, c, p, repo, path, kv, delete, recursive):
    """annotate on the item; recursive on a folder: the tree rule (finding 11)."""
    is_file = c.is_file(repo, path)
    is_folder = not is_file and c.is_folder(repo, path)
    tags = set()
    if sec.refused_outright(p):
        return Expect("properties: anonymous refused", [Outcome({401})], {"props"})
    if not is_file and not is_folder:
        # whether the file or the folder rule applies to nothing is open
        st = {404} if sec.is_admin(p) else {404, sec.denied(p)}
        return Expect("properties on an absent item: 404 (or a denial)", [Outcome(st)], {"props"})
    if is_file or not recursive:
        rule = f"properties: {need_str(ANNOTATE, repr(path))}"
        ok = sec.level(p, repo, path) >= ANNOTATE
    else:
        rule = f"recursive properties: {need_str(ANNOTATE, repr(path), tree=True)}"
        ok = sec.tree_level(p, repo, path) >= ANNOTATE
        if not ok and sec.level(p, repo, path) >= ANNOTATE:
            tags.add("F11 recursive properties not by the tree rule")

    def apply(cc):
        if is_file:
            _set_props(cc.files[(repo, path)][1], kv, delete)
            return
        items = [path] + (cc.folders_below(repo, path) if recursive else [])
        for f in items:
            cur = cc.fprops.get((repo, f), {})
            if cur is None:
                # unknown: only the keys we set become known
                cc.fprops[(repo, f)] = None
                continue
            cur = dict(cur)
            _set_props(cur, kv, delete)
            cc.fprops[(repo, f)] = cur
        if recursive:
            for f in cc.files_below(repo, path):
                _set_props(cc.files[(repo, f)][1], kv, delete)

    return Expect(rule, ok_or_denied(sec, p, ok, {204}, apply), {"props"}, tags)


def expect_props_get(sec, c, p, repo, path):
    rule = f"GET properties: {need_str(READ, repr(path))}"
    if sec.refused_outright(p) or sec.level(p, repo, path) < READ:
        return Expect(rule, [Outcome({sec.denied(p)})])
    if not c.is_file(repo, path) and not c.is_folder(repo, path):
        return Expect(rule, [Outcome({404})])
    props = c.props_of(repo, path)
    if props is None:
        return Expect(rule, [Outcome({200, 404})])
    # a docker manifest's or tag's file carries the registry's docker.*
    # properties (docs/oci.md) beside those the model knows
    registry = sec.repos[repo].ptype == "docker" and ("/_manifests/" in path or "/_tags/" in path)
    if not props and not registry:
        return Expect(rule, [Outcome({404})])

    def check(resp):
        got = resp.json().get("properties") if resp.json() else None
        if registry and got is not None:
            got = {k: v for k, v in got.items() if not k.startswith("docker.")}
        return [] if got == props else [f"properties {got} != {props}"]

    return Expect(rule, [Outcome({200}, None, check)])


# searches -------------------------------------------------------------------------


def expect_search(sec, p, must, may, results_of, empty_404=False, anon_401=False):
    """Results: every readable match, nothing else. must/may: sets of (repo, path)."""
    rule = "search: only results the caller can read"
    if sec.refused_outright(p) or (anon_401 and p.kind == "anon"):
        return Expect(rule, [Outcome({401})])

    def check(resp):
        got = results_of(resp)
        if got is None:
            return ["unparsable results"]
        probs = []
        extra = got - may
        if extra:
            probs.append(f"returns results the caller cannot read: {sorted(extra)[:6]}")
        if must - got:
            probs.append(f"leaves out readable results: {sorted(must - got)[:6]}")
        return probs

    outs = [Outcome({200}, None, check)]
    if empty_404 and not must:
        outs.append(Outcome({404}))
    return Expect(rule, outs)


def readable_set(sec, p, items):
    return {(r, x) for (r, x) in items if sec.level(p, r, x) >= READ}


def prop_matches(props, key, values):
    if props is None or key not in props:
        return False
    return values is None or bool(set(values) & set(props[key]))


def expect_search_prop(sec, c, p, key, values, results_of):
    must, may = set(), set()
    for (r, x), (sha, props) in c.files.items():
        if prop_matches(props, key, values) and sec.level(p, r, x) >= READ:
            must.add((r, x))
    for r in sec.repos:
        for f in c.existing_folders(r):
            props = c.fprops.get((r, f), {})
            if sec.level(p, r, f) < READ:
                continue
            if props is None:
                may.add((r, f))
            elif prop_matches(props, key, values):
                must.add((r, f))
    return expect_search(sec, p, must, must | may, results_of)


# copy and move -------------------------------------------------------------------------


def resolve_target(c, src_repo, src_path, dst_repo, to_path, trailing_slash):
    """docs/api.md: an existing folder, a target ending in '/', or a bare
    repository receives the source under its own name; otherwise the
    source is renamed to the target."""
    name = src_path.rsplit("/", 1)[-1]
    if to_path == "" or trailing_slash or c.is_folder(dst_repo, to_path):
        return f"{to_path}/{name}" if to_path else name
    return to_path


def copy_plan(c, src_repo, src_path, dst_repo, dst_base):
    """(source file, final target) pairs."""
    if c.is_file(src_repo, src_path):
        return [(src_path, dst_base)]
    return [(f, dst_base + f[len(src_path) :]) for f in c.files_below(src_repo, src_path)]


def expect_copy_move(sec, c, p, move, src_repo, src_path, dst_repo, to_path, trailing, dry):
    """Copy: read on the source (tree rule for a folder); move: delete on it.
    Every final target: write, + delete over a file, + the repository's
    patterns. All or nothing (finding 2)."""
    what = "move" if move else "copy"
    affects = {src_repo, dst_repo, "props"}
    if sec.refused_outright(p) or (p.kind == "anon" and not ANONYMOUS_MAY_COPY_MOVE_RESTORE):
        return Expect(f"{what}: anonymous refused", [Outcome({401})], affects)
    src_file = c.is_file(src_repo, src_path)
    src_folder = not src_file and c.is_folder(src_repo, src_path)
    need_src = DELETE if move else READ
    if not src_file and not src_folder:
        # the order of the checks is open: the target may be refused first
        st = {404} if sec.is_admin(p) else {404, sec.denied(p)}
        return Expect(f"{what}: absent source: 404 (or a denial)", [Outcome(st)], affects)
    base = resolve_target(c, src_repo, src_path, dst_repo, to_path, trailing)
    plan = copy_plan(c, src_repo, src_path, dst_repo, base)
    errors = set()
    reasons = []
    if src_repo == dst_repo and (
        base == src_path or base.startswith(src_path + "/") or src_path.startswith(base + "/")
    ):
        errors.add(409)
        reasons.append("onto itself, into its own subfolder or onto a folder holding it: 409")
    if src_file:
        src_ok = sec.level(p, src_repo, src_path) >= need_src
    else:
        src_ok = sec.tree_level(p, src_repo, src_path) >= need_src
    if not src_ok:
        errors.add(sec.denied(p))
        reasons.append(f"source needs {need_str(need_src, repr(src_path), tree=src_folder)}")
    repo = sec.repos[dst_repo]
    for _, dst in plan:
        if not repo.accepts(dst):
            errors.add(403)
            reasons.append(f"repository {dst_repo} refuses {dst} by its patterns: 403")
            break
    tags = set()
    for _, dst in plan:
        lv = sec.level(p, dst_repo, dst)
        if c.is_file(dst_repo, dst) and WRITE <= lv < DELETE:
            tags.add("F2 copy over a file without delete")
        if (lv >= WRITE) != (sec.level(p, dst_repo, to_path) >= WRITE):
            tags.add("F2 copy: write differs on the to path and the final path")
    for _, dst in plan:
        need = DELETE if c.is_file(dst_repo, dst) else WRITE
        if sec.level(p, dst_repo, dst) < need:
            errors.add(sec.denied(p))
            reasons.append(f"target needs {need_str(need, dst)}")
            break
    rule = f"{what} {src_repo}:{src_path} -> {dst_repo}:{base}: " + (
        "; ".join(reasons) if reasons else "allowed"
    )
    if errors:
        return Expect(rule, [Outcome(errors)], affects, tags)

    def apply(cc):
        if dry:
            return
        before_src = cc.existing_folders(src_repo)
        moved = []
        for s, d in plan:
            sha, props = cc.files[(src_repo, s)]
            moved.append((d, sha, copy.deepcopy(props)))
        if move:
            for s, _ in plan:
                del cc.files[(src_repo, s)]
            cc.gone_folders(src_repo, before_src)
            if src_folder:
                cc.forget_folders(src_repo, [src_path] + [f for f in before_src if strictly_below(f, src_path)])
        for d, sha, props in moved:
            cc.put_file(dst_repo, d, sha)
            cc.files[(dst_repo, d)][1] = props
        # folder rows travel with a folder: the copy's folders are not tracked
        if src_folder:
            folders = {base}
            for _, dst in plan:
                folders.update(f for f in parent_folders(dst) if below(f, base))
            cc.forget_folders(dst_repo, sorted(folders))

    return Expect(rule, [Outcome({200}, apply)], affects | {"trash"}, tags)


# trash ---------------------------------------------------------------------------------


def expect_trash_list(sec, c, p, items_of):
    """Only items the caller could read where they were deleted (finding 1)."""
    rule = "trash list: signed in; only items readable at their origin (admins: all)"
    if p.kind == "anon":
        return Expect(rule, [Outcome({401})])
    want = {k for k in c.trash if sec.level(p, k[0], k[1]) >= READ}
    tags = {"F1 trash list hides items"} if want != set(c.trash) else ()

    def check(resp):
        got = items_of(resp)
        if got is None:
            return ["unparsable trash list"]
        probs = []
        if got - want:
            probs.append(f"shows items the caller could not read: {sorted(got - want)[:6]}")
        if want - got:
            probs.append(f"leaves out readable items: {sorted(want - got)[:6]}")
        return probs

    return Expect(rule, [Outcome({200}, None, check)], tags=tags)


def trash_plan(c, repo, path, to_repo, to_path):
    """(origin, final target) pairs for a restore; to_path None: keep the path."""
    items = sorted(k for k in c.trash if k[0] == repo and below(k[1], path))
    plan = []
    for (r, x) in items:
        if to_path is None:
            plan.append(((r, x), (to_repo or r, x)))
        else:
            plan.append(((r, x), (to_repo, to_path + x[len(path) :])))
    return plan


def expect_restore(sec, c, p, repo, path, to_repo, to_path):
    """Read at the origin of every item, write at every final target (admins
    anything); 409 when a target exists; 404 when nothing is trashed there."""
    affects = {repo, "trash", "props"}
    if to_repo:
        affects.add(to_repo)
    if sec.refused_outright(p) or (p.kind == "anon" and not ANONYMOUS_MAY_COPY_MOVE_RESTORE):
        return Expect("restore: anonymous refused", [Outcome({401})], affects)
    plan = trash_plan(c, repo, path, to_repo, to_path)
    if not plan:
        st = {404} if sec.is_admin(p) else {404, sec.denied(p)}
        return Expect("restore: nothing trashed there: 404", [Outcome(st)], affects)
    errors, reasons = set(), []
    tags = set()
    if any(sec.level(p, o[0], o[1]) < READ for (o, _) in plan) and all(
        sec.level(p, tr, tp) >= WRITE for (_, (tr, tp)) in plan
    ):
        tags.add("F1 restore without read at the origin")
    for (o, (tr, tp)) in plan:
        if sec.level(p, o[0], o[1]) < READ:
            errors.add(sec.denied(p))
            reasons.append(f"read at origin {o[0]}:{o[1]}")
            break
    for (o, (tr, tp)) in plan:
        if c.is_file(tr, tp) or c.is_folder(tr, tp):
            errors.add(409)
            reasons.append(f"target {tr}:{tp} exists: 409")
            break
    for (o, (tr, tp)) in plan:
        if not sec.repos[tr].accepts(tp):
            errors.add(403)
            reasons.append(f"repository {tr} refuses {tp}: 403")
            break
    for (o, (tr, tp)) in plan:
        if sec.level(p, tr, tp) < WRITE:
            errors.add(sec.denied(p))
            reasons.append(f"write at target {tr}:{tp}")
            break
    rule = "restore: " + ("; ".join(reasons) if reasons else "allowed")
    if errors:
        return Expect(rule, [Outcome(errors)], affects, tags)

    restores_folder = not (len(plan) == 1 and plan[0][0] == (repo, path))
    to_base = (to_path if to_path is not None else path)
    to_r = to_repo or repo

    def apply(cc):
        for (o, (tr, tp)) in plan:
            sha, props = cc.trash.pop(o)
            cc.put_file(tr, tp, sha)
            cc.files[(tr, tp)][1] = props
        for (o, (tr, tp)) in plan:
            cc.forget_folders(tr, parent_folders(tp))
        if restores_folder:
            # the trashed rows of deleted folders come back below the target
            cc.forget_folders(to_r, [f for f in cc.existing_folders(to_r) if below(f, to_base)])

    return Expect(rule, [Outcome({202}, apply)], affects)


# admin-only ---------------------------------------------------------------------------


def expect_admin_only(sec, p, ok_statuses, apply=None, what="admin only", check=None):
    if sec.is_admin(p):
        return Expect(what, [Outcome(ok_statuses, apply, check)])
    return Expect(what, [Outcome({401} if p.kind == "anon" else {403})])


def expect_authenticated(sec, p, ok_statuses, check=None, what="any authenticated user"):
    if p.kind == "anon":
        return Expect(what, [Outcome({401})])
    return Expect(what, [Outcome(ok_statuses, None, check)])


# repositories ----------------------------------------------------------------------------


def readable_somewhere(sec, p, repo, candidates):
    """(surely, maybe): the caller holds read on some path of repo.
    candidates: the paths the generator could ever make there."""
    if sec.is_admin(p):
        return True, True
    if sec.refused_outright(p):
        return False, False
    sure = any(sec.level(p, repo, x) >= READ for x in candidates)
    return sure, sure or sec.granted_anywhere(p, repo, READ)


def expect_repo_list(sec, p, candidates, keys_of):
    """Only repositories where the caller holds read on some path (finding 12)."""
    rule = "repositories list: only where the caller reads some path (admins: all)"
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})])
    must, may = set(), set()
    for r in sec.repos:
        s, m = readable_somewhere(sec, p, r, candidates(r))
        if s:
            must.add(r)
        if m:
            may.add(r)
    tags = {"F12 repository list hides repositories"} if may != set(sec.repos) else ()

    def check(resp):
        got = keys_of(resp)
        if got is None:
            return ["unparsable list"]
        probs = []
        if got - may:
            probs.append(f"lists repositories the caller cannot read: {sorted(got - may)}")
        if must - got:
            probs.append(f"leaves out readable repositories: {sorted(must - got)}")
        return probs

    return Expect(rule, [Outcome({200}, None, check)], tags=tags)


def expect_repo_get(sec, p, repo, candidates):
    """One repository's configuration: read on some path of it."""
    s, m = readable_somewhere(sec, p, repo, candidates)
    rule = "GET /api/repositories/{key}: read on some path of it"
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})])
    if s:
        return Expect(rule, [Outcome({200})])
    if m:
        return Expect(rule, [Outcome({200, 404, sec.denied(p)})])
    return Expect(rule, [Outcome({404, sec.denied(p)})])


# tokens and passwords ------------------------------------------------------------------


def expect_token_create(sec, p, for_user, admin_scope, never_expires):
    """Own tokens; another user's, admin scope, or expires_in=0: admin only (finding 7)."""
    rule = "token: own; other user / admin scope / expires_in=0: admin"
    if p.kind == "anon":
        return Expect(rule, [Outcome({401})])
    self_name = "admin" if p.kind == "root" else p.name
    special = for_user != self_name or admin_scope or never_expires
    if special and not sec.is_admin(p):
        return Expect(rule, [Outcome({403})])
    return Expect(rule, [Outcome({200})])


def expect_token_refresh(sec, p, never_expires):
    rule = "token refresh: expires_in=0 needs an admin (finding 7)"
    if p.kind == "anon":
        return Expect(rule, [Outcome({401})])
    if never_expires and not sec.is_admin(p):
        return Expect(rule, [Outcome({403})], tags={"F7 refresh to never expiring by a non-admin"})
    return Expect(rule, [Outcome({200})])


def expect_password(sec, p, target_user, old_given_right, new_pw):
    """Admin: any user; a user itself: only with the right old password (finding 7)."""
    rule = "password: admin any; self with the right oldPassword"
    if p.kind == "anon":
        return Expect(rule, [Outcome({401})])

    def apply(_c):
        sec.users[target_user].password = new_pw

    if sec.is_admin(p):
        return Expect(rule, [Outcome({200}, apply)])
    if p.kind == "user" and p.name == target_user:
        if old_given_right:
            return Expect(rule, [Outcome({200}, apply)])
        return Expect(rule, [Outcome({400, 403})], tags={"F7 own password without the old one"})
    return Expect(rule, [Outcome({403})])


def token_admin_use(sec, token_user, token_admin_scope):
    """What a token may do on an admin-only endpoint: an admin-scoped token
    of an admin user is an admin; a user-scoped one never (finding 7)."""
    return token_admin_scope and sec.user_is_admin(token_user)


# npm -------------------------------------------------------------------------------------


def npm_tarball(name, version):
    base = name.rsplit("/", 1)[-1]
    return f"{name}/-/{base}-{version}.tgz"


def npm_levels(sec, p, repo, name, versions):
    """The package is the path <name>; a tarball its stored path."""
    return sec.level(p, repo, name), [sec.level(p, repo, npm_tarball(name, v)) for v in versions]


def npm_decide(sec, p, levels, need, ok_statuses, apply, rule, affects):
    """need on every path (the package <name> and the tarball paths)."""
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})], affects)
    if all(lv >= need for lv in levels):
        return Expect(rule, [Outcome(ok_statuses, apply)], affects)
    return Expect(rule, [Outcome({sec.denied(p)})], affects)


def npm_readable_versions(sec, c, p, repo, name):
    return {v for v in c.npm.get(name, {}) if sec.level(p, repo, npm_tarball(name, v)) >= READ}


def expect_npm_packument(sec, c, p, repo, name, versions_of):
    """read on <name>; versions whose tarball the caller cannot read may be
    left out (then 404 when none is left), never versions it reads."""
    rule = f"npm packument: read on {name}"
    lv = sec.level(p, repo, name)
    if sec.refused_outright(p) or lv < READ:
        return Expect(rule, [Outcome({sec.denied(p)})])
    if name not in c.npm:
        return Expect(rule, [Outcome({404})])
    every = set(c.npm[name])
    readable = npm_readable_versions(sec, c, p, repo, name)

    def check(resp):
        got = versions_of(resp)
        if got is None:
            return ["unparsable packument"]
        probs = []
        if got - every:
            probs.append(f"versions that do not exist: {sorted(got - every)}")
        if readable - got:
            probs.append(f"leaves out readable versions: {sorted(readable - got)}")
        return probs

    outs = [Outcome({200}, None, check)]
    if not readable:
        outs.append(Outcome({404}))
    return Expect(rule, outs)


def expect_npm_publish(sec, c, p, repo, name, version, sha):
    """write on the package and its tarball path (+ delete over a file);
    an existing version: 403."""
    affects = {repo, "npm", "trash"}
    rule = f"npm publish: write on {name} and {npm_tarball(name, version)}"
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})], affects)
    if version in c.npm.get(name, {}):
        return Expect("npm publish of an existing version: 403", [Outcome({403, sec.denied(p)})], affects)
    tb = npm_tarball(name, version)
    need = DELETE if c.is_file(repo, tb) else WRITE

    def apply(cc):
        cc.npm.setdefault(name, {})[version] = sha
        cc.put_file(repo, tb, sha)

    lv, (tl,) = npm_levels(sec, p, repo, name, [version])
    ok = lv >= WRITE and tl >= need
    return Expect(rule, ok_or_denied(sec, p, ok, {200, 201}, apply), affects)


def expect_npm_unpublish_version(sec, c, p, repo, name, version):
    """PUT -rev removing a version: delete on <name> and on the removed
    tarball (finding 4). A version the caller cannot read may instead stay
    (the document of one who cannot see it does not name it)."""
    affects = {repo, "npm", "trash"}
    tb = npm_tarball(name, version)
    rule = f"npm unpublish {name}@{version}: delete on {name} and {tb}"

    def apply(cc):
        del cc.npm[name][version]
        if cc.is_file(repo, tb):
            cc.trash_file(repo, tb)

    lv, (tl,) = npm_levels(sec, p, repo, name, [version])
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})], affects)
    if WRITE <= lv < DELETE:
        e = npm_decide(sec, p, [lv, tl], DELETE, {200, 201}, apply, rule, affects)
        e.tags.add("F4 npm version removal with write but not delete")
        return e
    if lv >= DELETE and tl < READ:
        return Expect(rule + " (a version it cannot read: stays, or refused)",
                      [Outcome({200, 201}), Outcome({sec.denied(p)})], affects)
    return npm_decide(sec, p, [lv, tl], DELETE, {200, 201}, apply, rule, affects)


def expect_npm_delete_package(sec, c, p, repo, name):
    """-rev DELETE: the package is a folder of tarballs: delete on <name> by the tree rule."""
    affects = {repo, "npm", "trash"}
    versions = sorted(c.npm.get(name, {}))
    rule = f"npm unpublish of {name}: delete on {name} (tree rule)"

    def apply(cc):
        for v in versions:
            tb = npm_tarball(name, v)
            if cc.is_file(repo, tb):
                cc.trash_file(repo, tb)
        cc.npm.pop(name, None)

    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})], affects)
    ok = sec.tree_level(p, repo, name) >= DELETE
    return Expect(rule, ok_or_denied(sec, p, ok, {200}, apply), affects)


def expect_npm_search(sec, c, p, repo, text, names_of):
    """Only packages the caller may read (finding 5): read on <name> and on
    the shown version's tarball. Sure when it reads the package and its
    latest tarball; never when it cannot read <name> or any tarball."""
    if sec.refused_outright(p):
        return Expect("npm search", [Outcome({401})])
    must, may = set(), set()
    for name, vers in c.npm.items():
        if text not in name or not vers:
            continue
        latest = max(vers, key=lambda v: [int(x) for x in v.split(".")])
        lv = sec.level(p, repo, name)
        readable = npm_readable_versions(sec, c, p, repo, name)
        if lv >= READ and latest in readable:
            must.add(name)
        elif lv >= READ and readable:
            may.add(name)
    hides = any(text in n and vs and n not in must | may for n, vs in c.npm.items())

    def check(resp):
        got = names_of(resp)
        if got is None:
            return ["unparsable search"]
        probs = []
        if got - must - may:
            probs.append(f"shows packages the caller cannot read: {sorted(got - must - may)}")
        if must - got:
            probs.append(f"leaves out readable packages: {sorted(must - got)}")
        return probs

    return Expect("npm search: only readable packages", [Outcome({200}, None, check)],
                  tags={"F5 npm search hides a package"} if hides else ())


# Maven -----------------------------------------------------------------------------------


def maven_coords(path):
    """'a/b/lib/1.0/lib-1.0.jar' -> ('a.b', 'lib', '1.0'), or None."""
    s = path.split("/")
    if len(s) < 4:
        return None
    g, a, v, f = s[:-3], s[-3], s[-2], s[-1]
    if not f.startswith(f"{a}-{v}") or not f.endswith(".jar"):
        return None
    return ".".join(g), a, v


def expect_maven_metadata(sec, c, p, repo, group_path, artifact, versions_of):
    path = f"{group_path}/{artifact}/maven-metadata.xml"
    rule = f"maven-metadata.xml: read on {path}"
    if sec.refused_outright(p) or sec.level(p, repo, path) < READ:
        return Expect(rule, [Outcome({sec.denied(p)})])
    vers = set()
    for x in c.repo_files(repo):
        co = maven_coords(x)
        if co and x.startswith(f"{group_path}/{artifact}/"):
            vers.add(co[2])
    if not vers:
        return Expect(rule, [Outcome({404})])
    readable = {maven_coords(x)[2] for x in c.repo_files(repo)
                if maven_coords(x) and x.startswith(f"{group_path}/{artifact}/") and sec.level(p, repo, x) >= READ}

    def check(resp):
        got = versions_of(resp)
        return [] if got is not None and got <= vers and got else [f"versions {got} not within {sorted(vers)}"]

    # versions the caller cannot read may be left out (404 when none is left)
    return Expect(rule, [Outcome({200}, None, check)] + ([] if readable else [Outcome({404})]))


# PyPI ------------------------------------------------------------------------------------

PYPI_EXT = (".whl", ".tar.gz", ".zip")


def pypi_files(c, repo, name, version=None):
    """A project's distributions: <name>/<version>/<file> (not their .metadata)."""
    out = []
    for (r, x) in c.files:
        s = x.split("/")
        if r == repo and len(s) == 3 and s[0] == name and s[2].endswith(PYPI_EXT) and (
            version is None or s[1] == version
        ):
            out.append(x)
    return sorted(out)


def pypi_projects(c, repo):
    return sorted({x.split("/")[0] for (r, x) in c.files
                   if r == repo and len(x.split("/")) == 3 and x.endswith(PYPI_EXT)})


def pypi_props(name, version, wheel):
    """The properties an upload of tools/pypi_dist.py's files sets (the form's fields)."""
    return {"pypi.filetype": ["bdist_wheel" if wheel else "sdist"], "pypi.metadata_version": ["2.1"],
            "pypi.name": [name], "pypi.normalized_name": [name],
            "pypi.pyversion": ["py3" if wheel else "source"], "pypi.summary": [f"{name} for tests"],
            "pypi.version": [version]}


def expect_pypi_upload(sec, c, p, repo, name, version, filename, sha, meta_sha):
    """twine's upload: write somewhere in the repository before the body is
    read, then write on the file's path (and on its .metadata, a wheel's);
    a file of that name there: 400 (files are immutable)."""
    affects = {repo}
    path = f"{name}/{version}/{filename}"
    mpath = path + ".metadata" if filename.endswith(".whl") else None
    rule = f"pypi upload: write in {repo}, then on {path}" + (f" and {mpath}" if mpath else "")
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})], affects)
    if not sec.granted_anywhere(p, repo, WRITE):
        return Expect(rule + " (none in the repository)", [Outcome({sec.denied(p)})], affects)
    if sec.level(p, repo, path) < WRITE or (mpath and sec.level(p, repo, mpath) < WRITE):
        return Expect(rule, [Outcome({sec.denied(p)})], affects,
                      {"P1 pypi upload where the caller may not write"})
    if c.is_file(repo, path):
        return Expect(rule + "; the file is there: 400", [Outcome({400})], affects)

    def apply(cc):
        cc.put_file(repo, path, sha)
        cc.files[(repo, path)][1] = pypi_props(name, version, mpath is not None)
        if mpath:  # a metadata file left by a deleted wheel is replaced
            cc.put_file(repo, mpath, meta_sha)

    return Expect(rule, [Outcome({200}, apply)], affects)


def expect_pypi_page(sec, c, p, repo, name, files_of, what="simple page", version=None):
    """A project's page (simple index, JSON API; a release's JSON with a
    version): read on <project>; exactly the files the caller reads, 404
    when none (or no such project or release)."""
    rule = f"pypi {what}: read on {name}; only readable files"
    if sec.refused_outright(p) or sec.level(p, repo, name) < READ:
        return Expect(rule, [Outcome({sec.denied(p)})])
    every = pypi_files(c, repo, name, version)
    readable = {x.split("/")[2] for x in every if sec.level(p, repo, x) >= READ}
    tags = {"P2 pypi page hides files"} if len(readable) < len(every) else ()
    if not readable:
        return Expect(rule + "; none: 404", [Outcome({404})], tags=tags)

    def check(resp):
        got = files_of(resp)
        if got is None:
            return ["unparsable page"]
        probs = []
        if got - readable:
            probs.append(f"shows files the caller cannot read: {sorted(got - readable)}")
        if readable - got:
            probs.append(f"leaves out readable files: {sorted(readable - got)}")
        return probs

    return Expect(rule, [Outcome({200}, None, check)], tags=tags)


def expect_pypi_root(sec, c, p, repo, names_of):
    """The project list: read somewhere in the repository (targets naming it,
    whatever their patterns); the projects the caller reads (<project>)."""
    rule = "pypi simple root: read in the repository; projects read on <project>"
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})])
    if not sec.granted_anywhere(p, repo, READ):
        return Expect(rule, [Outcome({sec.denied(p)})])
    want = {n for n in pypi_projects(c, repo) if sec.level(p, repo, n) >= READ}

    def check(resp):
        got = names_of(resp)
        if got is None:
            return ["unparsable project list"]
        return [] if got == want else [f"projects {sorted(got)}, readable {sorted(want)}"]

    return Expect(rule, [Outcome({200}, None, check)])


# docker (docs/oci.md) ---------------------------------------------------------------------
# An image's files: <image>/_manifests/<digest>, <image>/_tags/<tag>/manifest.json,
# <image>/_blobs/<digest>. Permissions are on those paths.


def docker_tag_path(image, tag):
    return f"{image}/_tags/{tag}/manifest.json"


def docker_manifest_path(image, digest):
    return f"{image}/_manifests/{digest}"


def docker_blob_path(image, digest):
    return f"{image}/_blobs/{digest}"


def docker_tags(c, repo, image):
    pre = f"{image}/_tags/"
    return sorted(p[len(pre):].split("/")[0] for (r, p) in c.files
                  if r == repo and p.startswith(pre) and p.endswith("/manifest.json"))


def docker_denied(sec, p, rule, affects=()):
    return Expect(rule, [Outcome({sec.denied(p)})], affects)


def expect_docker_manifest_get(sec, c, p, repo, image, ref, head=False):
    """read on the tag's or the digest's file; 404 when absent."""
    path = docker_tag_path(image, ref) if ":" not in ref else docker_manifest_path(image, ref)
    rule = f"docker manifest {'HEAD' if head else 'GET'}: read on {path}"
    if sec.refused_outright(p) or sec.level(p, repo, path) < READ:
        return docker_denied(sec, p, rule)
    return Expect(rule, [Outcome({200} if c.is_file(repo, path) else {404})])


def expect_docker_blob_get(sec, c, p, repo, image, digest):
    path = docker_blob_path(image, digest)
    rule = f"docker blob GET: read on {path}"
    if sec.refused_outright(p) or sec.level(p, repo, path) < READ:
        return docker_denied(sec, p, rule)
    there = c.is_file(repo, path) or digest in c.links.get((repo, image), set())
    return Expect(rule, [Outcome({200} if there else {404})])


def expect_docker_blob_push(sec, c, p, repo, image, digest):
    """POST ?digest= with the blob: write on its file's path; links it."""
    path = docker_blob_path(image, digest)
    rule = f"docker blob push: write on {path}"

    def apply(cc):
        cc.links.setdefault((repo, image), set()).add(digest)

    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})])
    return Expect(rule, ok_or_denied(sec, p, sec.level(p, repo, path) >= WRITE, {201}, apply))


def expect_docker_push(sec, c, p, repo, image, tag, digest, msha, blobs):
    """PUT manifests/<tag>: write on the tag's and the digest's files (+
    delete on the tag's when it exists); every blob must be in the image
    (the driver pushed them as admin). blobs: [(digest, sha256)]."""
    tpath, mpath = docker_tag_path(image, tag), docker_manifest_path(image, digest)
    rule = f"docker manifest push: write on {tpath} and {mpath}"
    affects = {repo}
    need = DELETE if c.is_file(repo, tpath) else WRITE

    def apply(cc):
        cc.put_file(repo, mpath, msha)
        cc.put_file(repo, tpath, msha)
        for bd, bsha in blobs:
            cc.put_file(repo, docker_blob_path(image, bd), bsha)
        cc.docker.setdefault((repo, image), {})[digest] = {bd for bd, _ in blobs}

    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})], affects)
    ok = sec.level(p, repo, tpath) >= need and sec.level(p, repo, mpath) >= WRITE
    return Expect(rule, ok_or_denied(sec, p, ok, {201}, apply), affects)


def expect_docker_delete_manifest(sec, c, p, repo, image, digest):
    """DELETE manifests/<digest>: delete on its file and on every tag file
    pointing at it; the blob files no remaining manifest of the image
    references go too. Nothing goes to the trash."""
    mpath = docker_manifest_path(image, digest)
    rule = f"docker manifest delete: delete on {mpath} and its tags"
    affects = {repo}
    if sec.refused_outright(p) or sec.level(p, repo, mpath) < DELETE:
        return docker_denied(sec, p, rule, affects)
    if not c.is_file(repo, mpath):
        return Expect(rule, [Outcome({404})], affects)
    msha = c.files[(repo, mpath)][0]
    tags = [t for t in docker_tags(c, repo, image) if c.files[(repo, docker_tag_path(image, t))][0] == msha]
    if any(sec.level(p, repo, docker_tag_path(image, t)) < DELETE for t in tags):
        e = docker_denied(sec, p, rule, affects)
        e.tags.add("OCI manifest delete with a tag the caller may not delete")
        return e

    def apply(cc):
        del cc.files[(repo, mpath)]
        for t in tags:
            cc.files.pop((repo, docker_tag_path(image, t)), None)
        mans = cc.docker.get((repo, image), {})
        mans.pop(digest, None)
        keep = set().union(*mans.values()) if mans else set()
        for (r, pth) in list(cc.files):
            if r == repo and pth.startswith(f"{image}/_blobs/") and pth.split("/_blobs/")[1] not in keep:
                del cc.files[(r, pth)]

    return Expect(rule, [Outcome({202}, apply)], affects)


def expect_docker_delete_tag(sec, c, p, repo, image, tag):
    tpath = docker_tag_path(image, tag)
    rule = f"docker tag delete: delete on {tpath}"
    affects = {repo}
    if sec.refused_outright(p) or sec.level(p, repo, tpath) < DELETE:
        return docker_denied(sec, p, rule, affects)
    if not c.is_file(repo, tpath):
        return Expect(rule, [Outcome({404})], affects)

    def apply(cc):
        del cc.files[(repo, tpath)]

    return Expect(rule, [Outcome({202}, apply)], affects)


def expect_docker_tags(sec, c, p, repo, image, tags_of):
    """read on <image>; every tag of the image; 404 for an image with no
    manifest and no blob."""
    rule = f"docker tags list: read on {image}"
    if sec.refused_outright(p) or sec.level(p, repo, image) < READ:
        return docker_denied(sec, p, rule)
    want = docker_tags(c, repo, image)
    if not want and not c.docker.get((repo, image)) and not c.links.get((repo, image)):
        return Expect(rule, [Outcome({404})])

    def check(resp):
        got = tags_of(resp)
        return [] if got == want else [f"tags {got}, want {want}"]

    return Expect(rule, [Outcome({200}, None, check)])


def expect_docker_catalog(sec, c, p, repos, names_of):
    """Images with a manifest, only those the caller reads (read on <image>)."""
    rule = "docker catalog: images the caller reads"
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})])
    want = set()
    for repo in repos:
        for (r, pth) in c.files:
            if r == repo and "/_manifests/" in pth:
                image = pth.split("/_manifests/")[0]
                if sec.level(p, repo, image) >= READ:
                    want.add(f"{repo}/{image}")

    def check(resp):
        got = names_of(resp)
        return [] if got == want else [f"catalog {sorted(got) if got is not None else None}, want {sorted(want)}"]

    return Expect(rule, [Outcome({200}, None, check)])


def expect_pypi_yank(sec, c, p, repo, name, version, reason):
    """Yank (reason: a text, "" for none) or unyank (None) a release:
    annotate on each of its files (pypi.yanked and pypi.yanked_reason are
    properties of each); no file of that version: 404 for one who reads
    <project>."""
    rule = f"pypi yank {name} {version}: annotate on each file"
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})])
    files = pypi_files(c, repo, name, version)
    if not files:
        ok = sec.level(p, repo, name) >= READ
        return Expect(rule + "; none: 404", [Outcome({404} if ok else {sec.denied(p)})])
    ok = all(sec.level(p, repo, x) >= ANNOTATE for x in files)

    def apply(cc):
        for x in files:
            props = cc.files[(repo, x)][1]
            props.pop("pypi.yanked", None)
            props.pop("pypi.yanked_reason", None)
            if reason is not None:
                props["pypi.yanked"] = ["true"]
                if reason:
                    props["pypi.yanked_reason"] = [reason]

    tags = {"P3 pypi yank without annotate"} if not ok and any(
        sec.level(p, repo, x) >= READ for x in files) else ()
    return Expect(rule, ok_or_denied(sec, p, ok, {200}, apply), {repo, "props"}, tags)


def expect_pypi_search(sec, c, p, repo, name, results_of):
    """/api/search/pypi?name=: the project's distributions the caller reads."""
    rule = "pypi search: only readable files"
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})])
    want = {(repo, x) for x in pypi_files(c, repo, name) if sec.level(p, repo, x) >= READ}

    def check(resp):
        got = results_of(resp)
        if got is None:
            return ["unparsable search"]
        return [] if got == want else [f"results {sorted(got)}, readable {sorted(want)}"]

    return Expect(rule, [Outcome({200}, None, check)])


def expect_docker_token(sec, c, p, repo, image, scope_of):
    """The token endpoint: the actions of the scope the caller holds on
    <image> (pull = read, push = write, delete); anonymous with anonymous
    access off: 401."""
    rule = f"docker token: the scope held on {image}"
    if sec.refused_outright(p):
        return Expect(rule, [Outcome({401})])
    lv = sec.level(p, repo, image)
    acts = [a for a, need in (("pull", READ), ("push", WRITE), ("delete", DELETE)) if lv >= need]
    want = f"repository:{repo}/{image}:{','.join(acts)}"

    def check(resp):
        got = scope_of(resp)
        return [] if got == want else [f"scope {got}, want {want}"]

    return Expect(rule, [Outcome({200}, None, check)])


def docker_delete_edges(sec, c, p, repo):
    """(image, digest) the caller may delete but not every tag pointing at it."""
    out = []
    for (r, image), mans in c.docker.items():
        if r != repo:
            continue
        for dg in mans:
            mpath = docker_manifest_path(image, dg)
            if not c.is_file(repo, mpath) or sec.level(p, repo, mpath) < DELETE:
                continue
            msha = c.files[(repo, mpath)][0]
            if any(c.files[(repo, docker_tag_path(image, t))][0] == msha and
                   sec.level(p, repo, docker_tag_path(image, t)) < DELETE for t in docker_tags(c, repo, image)):
                out.append((image, dg))
    return out
