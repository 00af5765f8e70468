#!/usr/bin/env python3
"""authz_selftest.py - the model's own cases (no server): the Ant matcher,
the tree rule, permission unions, admins and tokens, copy targets, and one
case per finding the randomized run must catch. Run by
tests/integration/65_authz_model.bats before the run against the daemon."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import authz_model as M  # noqa: E402

checks = 0


def ok(cond, what):
    global checks
    checks += 1
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)


def statuses(exp):
    return exp.statuses()


# ---- Ant patterns ----------------------------------------------------------------
for pat, path, want in [
    ("**", "", True), ("**", "a/b/x.txt", True), ("*", "", False), ("*", "x.txt", True),
    ("*", "a/x.txt", False), ("a/**", "a", True), ("a/**", "a/b/c", True), ("a/**", "ab/c", False),
    ("**/*.txt", "x.txt", True), ("**/*.txt", "a/b/x.txt", True), ("**/*.txt", "a/x.txt.sha256", False),
    ("*/b/**", "a/b", True), ("*/b/**", "b", False), ("?/**", "a/x", True), ("?/**", "@c/p", False),
    ("a/", "a/b", True), ("/a//b/**", "a/b/c", True), ("**/b/**", "b", True), ("**/b/**", "a/c/b/x", True),
    ("a/**/*.html", "a/i.html", True), ("a/**/*.html", "a/b/c/i.html", True), ("x.?", "x.js", False),
    ("**/x.*", "c/x.txt", True), ("*.txt", "a.txt", True), ("A/**", "a/x", False),
]:
    ok(M.ant_match(pat, path) == want, f"ant_match({pat!r}, {path!r}) == {want}")

# ---- the tree rule --------------------------------------------------------------------
for inc, exc, folder, want in [
    (["**"], [], "", True), (["**"], [], "a/b", True), (["a/**"], [], "a", True), (["a/**"], [], "a/b", True),
    (["a/**"], [], "", False), (["a/**"], [], "b", False), (["a/b/**"], [], "a", False),
    (["**"], ["**/*.bin"], "a", False), (["*/b/**"], [], "a/b", False), (["**/*.txt"], [], "a", False),
    (["a/**", "c/**"], [], "c/x", True), (["a/*"], [], "a", False),
]:
    ok(M.surely_covers(inc, exc, folder) == want, f"surely_covers({inc}, {exc}, {folder!r}) == {want}")


def world():
    s = M.Security()
    for k in ["g1", "g2"]:
        s.repos[k] = M.Repo(k)
    s.repos["g3"] = M.Repo("g3", excludes="**/*.bak")
    s.repos["n1"] = M.Repo("n1", "npm")
    s.groups["devs"] = M.Group("devs")
    s.groups["root"] = M.Group("root", admin=True)
    s.users["bob"] = M.User("bob", "pw", groups=["devs"])
    s.users["eve"] = M.User("eve", "pw")
    s.users["ann"] = M.User("ann", "pw", groups=["root"])
    s.targets["t1"] = M.Target("t1", ["g1"], ["a/**"], [], {"bob": ["read"]})
    s.targets["t2"] = M.Target("t2", ["ANY LOCAL"], ["**/*.txt"], ["a/b/**"], {}, {"devs": ["write"]})
    s.targets["t3"] = M.Target("t3", ["g2"], None, None, {"eve": ["delete"], "anonymous": ["read"]})
    s.targets["t4"] = M.Target("t4", ["n1"], ["**"], [], {"bob": ["write"]})
    return s


s = world()
bob = M.Principal("user", "bob", "password")
eve = M.Principal("user", "eve", "password")
ann = M.Principal("user", "ann", "password")
ann_tok = M.Principal("user", "ann", "token")
anon = M.Principal("anon")

ok(s.level(bob, "g1", "a/x.bin") == M.READ, "bob reads a/** in g1")
ok(s.level(bob, "g1", "a/x.txt") == M.WRITE, "union: read from t1, write from t2 (by group)")
ok(s.level(bob, "g1", "a/b/x.txt") == M.READ, "t2 excludes a/b/**")
ok(s.level(bob, "g2", "x.txt") == M.WRITE, "ANY LOCAL covers g2")
ok(s.level(bob, "g2", "x.bin") == M.NONE, "nothing for bob there")
ok(s.level(eve, "g2", "") == M.DELETE, "default include ** covers the root")
ok(s.level(ann, "g1", "zz") == M.MANAGE and s.is_admin(ann), "admin through a group")
ok(not s.is_admin(ann_tok) and s.level(ann_tok, "g1", "zz") == M.NONE, "a token is never an admin (finding 7)")
ok(s.level(anon, "g2", "x") == M.NONE and 401 in statuses(M.expect_get_file(s, M.Content(), anon, "g2", "x", None)),
   "anonymous access off: 401")
s.anonymous_on = True
ok(s.level(anon, "g2", "x") == M.READ, "anonymous access on: the anonymous principal's grants")
ok(s.tree_level(eve, "g2", "a") == M.DELETE and s.tree_level(bob, "g1", "a") == M.READ, "tree levels")
ok(s.tree_level(bob, "g1", "") == M.NONE, "a/** does not cover the root")

# ---- content and findings ------------------------------------------------------------------
c = M.Content()
for path in ["a/x.txt", "a/y.bin", "a/b/x.txt", "c/x.txt"]:
    c.put_file("g1", path, "sha-" + path)
c.put_file("g2", "a/s.bin", "sha-secret")
c.trash[("g2", "old.bin")] = ["sha-old", {}]
c.trash[("g1", "a/gone.txt")] = ["sha-gone", {}]

# finding 1: the trash shows only what the caller reads at the origin; restore needs it too
e = M.expect_trash_list(s, c, bob, lambda r: {("g1", "a/gone.txt"), ("g2", "old.bin")})
ok(e.outcomes[0].check(None), "trash list: bob must not see g2:old.bin")
ok(statuses(M.expect_restore(s, c, bob, "g2", "old.bin", "g1", "a/old.bin")) == {403},
   "restore: read at the origin")
ok(statuses(M.expect_restore(s, c, eve, "g2", "old.bin", None, None)) == {202}, "restore by one who may")
ok(statuses(M.expect_restore(s, c, eve, "g2", "nothing", None, None)) == {404, 403}, "restore: nothing there")

# finding 2: copy onto an existing file needs delete there; all or nothing; target patterns
ok(statuses(M.expect_copy_move(s, c, bob, False, "g1", "a/x.txt", "g2", "b.txt", False, False)) == {200},
   "copy to a new file: write")
c.put_file("g2", "b.txt", "sha-b")
ok(statuses(M.expect_copy_move(s, c, bob, False, "g1", "a/x.txt", "g2", "b.txt", False, False)) == {403},
   "copy over a file: write + delete")
ok(statuses(M.expect_copy_move(s, c, bob, False, "g1", "a", "g2", "", False, False)) == {403},
   "a folder: read by the tree rule, write on every target")
ok(statuses(M.expect_copy_move(s, c, bob, True, "g1", "a/x.txt", "g2", "x.txt", False, False)) == {403},
   "move needs delete on the source")
ok(M.resolve_target(c, "g1", "a/x.txt", "g1", "c", False) == "c/x.txt", "an existing folder receives it")
ok(M.resolve_target(c, "g1", "a/x.txt", "g2", "", False) == "x.txt", "a bare repository receives it")
ok(M.resolve_target(c, "g1", "a/x.txt", "g2", "n", True) == "n/x.txt", "a trailing slash receives it")
ok(M.resolve_target(c, "g1", "a/x.txt", "g2", "n.txt", False) == "n.txt", "otherwise renamed")
ok(statuses(M.expect_copy_move(s, c, M.Principal("root", "admin", "password"), False, "g1", "a/b", "g1", "a",
                               False, False)) == {409}, "onto the folder holding it: 409")
ok(statuses(M.expect_copy_move(s, c, M.Principal("root", "admin", "password"), False, "g1", "a/x.txt", "g3",
                               "x.bak", False, False)) == {403}, "the target repository's patterns")

# finding 3: deploy by checksum only of what the caller reads
ok(statuses(M.expect_put(s, c, bob, "g2", "n2.txt", "sha-secret", by_checksum=True)) == {404},
   "checksum deploy of a file bob cannot read: 404")
ok(statuses(M.expect_put(s, c, bob, "g2", "n2.txt", "sha-a/x.txt", by_checksum=True)) == {201},
   "checksum deploy of a file bob reads: 201")

# findings 3, 11: listings leave out what the caller cannot read
must, may = M.listing_sets(s, c, bob, "g1", "a")
ok(must == {"x.txt", "y.bin", "b"} and may == must, f"listing of g1:a for bob: {must} {may}")
must, may = M.listing_sets(s, c, eve, "g2", "")
ok(must == {"a", "b.txt"}, "root listing for eve")

# finding 11: recursive properties need the tree rule
ok(statuses(M.expect_props_change(s, c, bob, "g1", "a", {"k": ["v"]}, False, True)) == {403},
   "recursive properties on a folder bob annotates nowhere")
s.targets["t5"] = M.Target("t5", ["g1"], ["**/*.txt", "a"], [], {"bob": ["annotate"]})
ok(statuses(M.expect_props_change(s, c, bob, "g1", "a", {"k": ["v"]}, False, False)) == {204},
   "non-recursive: annotate on the folder itself")
ok(statuses(M.expect_props_change(s, c, bob, "g1", "a", {"k": ["v"]}, False, True)) == {403},
   "recursive: not by the tree rule (finding 11)")
del s.targets["t5"]

# finding 4: removing versions needs delete; finding 5: search of readable packages
c.npm["p"] = {"1.0.0": "s1", "1.1.0": "s2"}
ok(statuses(M.expect_npm_unpublish_version(s, c, bob, "n1", "p", "1.1.0")) == {403},
   "npm: write is not enough to remove a version")
e = M.expect_npm_search(s, c, eve, "n1", "p", lambda r: {"p"})
ok(e.outcomes[0].check(None), "npm search: eve reads no package")

# finding 7: tokens and passwords
ok(statuses(M.expect_token_create(s, bob, "eve", False, False)) == {403}, "a token for another: admin")
ok(statuses(M.expect_token_create(s, bob, "bob", True, False)) == {403}, "admin scope: admin")
ok(statuses(M.expect_token_create(s, ann_tok, "ann", False, True)) == {403}, "never expiring: a token is no admin")
ok(statuses(M.expect_token_create(s, ann, "ann", False, True)) == {200}, "never expiring: admin")
ok(statuses(M.expect_token_refresh(s, bob, True)) == {403}, "refresh to never expiring: admin")
ok(statuses(M.expect_password(s, bob, "bob", False, "x")) == {400, 403}, "own password without the old one")
ok(statuses(M.expect_password(s, bob, "bob", True, "x")) == {200}, "own password with the old one")
ok(statuses(M.expect_password(s, bob, "eve", True, "x")) == {403}, "another's password")

# finding 8: download headers
ok(M.download_header_problems("a/i.html", {"x-content-type-options": "nosniff",
                                           "content-security-policy": M.CSP}) != [], "html: attachment")
ok(M.download_header_problems("a/x.txt", {"x-content-type-options": "nosniff",
                                          "content-security-policy": M.CSP}) == [], "txt: inline is fine")

# finding 12: repositories only where the caller reads something
e = M.expect_repo_list(s, eve, lambda r: ["x.txt", "a", "a/x.txt"], lambda r: {"g1", "g2"})
ok(e.outcomes[0].check(None), "eve reads nothing in g1")
ok(statuses(M.expect_admin_only(s, bob, {200})) == {403} and statuses(M.expect_admin_only(s, ann_tok, {200})) == {403},
   "admin only; a token of an admin is not one")

print(f"ok: {checks} model checks")
