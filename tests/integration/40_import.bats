#!/usr/bin/env bats
# granaryctl import: a directory tree and a checksum-named filestore into a
# repository over the HTTP API; verified, resumable after kill -9,
# idempotent, and clear about bad inputs (docs/import.md).
load helpers

# make_tree DIR SEED: 300 files in nested folders, 0 bytes to 3 MiB, names
# with spaces and UTF-8; the same seed gives the same content.
make_tree() {
    python3 - "$1" "$2" <<'EOF'
import os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
dirs = ["", "a", "a/b", "a/b/c d", "ünïcødé", "ünïcødé/日本語", "deep/1/2/3/4/5", "with space"]
for i in range(300):
    d = os.path.join(root, dirs[i % len(dirs)])
    os.makedirs(d, exist_ok=True)
    name = ["f%03d.bin", "file %03d.txt", "é-%03d.dat", "x+y=%03d;v=1.jar"][i % 4] % i
    size = 0 if i % 50 == 0 else (rnd.randint(1, 3 << 20) if i % 30 == 7 else rnd.randint(1, 20000))
    with open(os.path.join(d, name), "wb") as f:
        f.write(rnd.getrandbits(8 * size).to_bytes(size, "little") if size else b"")
EOF
}

# verify_tree DIR PREFIX: GET every file of DIR under PREFIX in the libs
# repository and compare its sha256; prints the number checked.
verify_tree() {
    python3 - "$1" "$2" "$NODE_a_URL" "$NODE_a_PASS" <<'EOF'
import base64, hashlib, os, sys, urllib.parse, urllib.request
root, prefix, url, pw = sys.argv[1:]
auth = "Basic " + base64.b64encode(("admin:" + pw).encode()).decode()
n = 0
for d, _, files in os.walk(root):
    for f in files:
        p = os.path.join(d, f)
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        rel = os.path.relpath(p, root)
        want = hashlib.sha256(open(p, "rb").read()).hexdigest()
        req = urllib.request.Request(url + "/libs/" + urllib.parse.quote(prefix + "/" + rel),
                                     headers={"Authorization": auth})
        got = hashlib.sha256(urllib.request.urlopen(req).read()).hexdigest()
        if got != want:
            sys.exit("mismatch: " + rel)
        n += 1
print(n)
EOF
}

# report_count OUTPUT LABEL: the number on the report's line for LABEL
report_count() {
    echo "$1" | awk -v l="$2" 'index($0, "  " l " ") == 1 { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) { print $i; exit } }'
}

imp() { # granaryctl import against node a, as admin
    GRANARY_PASSWORD=$NODE_a_PASS "$GRANARYCTL" import --url "$NODE_a_URL" --user admin --repo libs "$@"
}

setup_file() {
    start_pg
    export DB=$(new_db import)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR
    make_repo a libs
    export TREE=$SUITE_TMP/tree
    make_tree "$TREE" 1
    # what import must leave out, and say so
    ln -s /etc/passwd "$TREE/outside-link"
    mkfifo "$TREE/a/fifo"
    ln -s "ünïcødé/日本語" "$TREE/inside-link"
    export ALL=$((300 + $(find "$TREE/ünïcødé/日本語" -type f | wc -l)))
}
teardown_file() { cleanup_suite; }

@test "a 300-file tree is imported and every file verified by GET and sha256" {
    run imp --prefix tree --dir "$TREE" --parallel 4
    echo "$output"
    [ "$status" -eq 0 ]
    # 300 files, plus those under the folder symlink that stays inside the tree
    # (the same content: deployed by checksum, as are repeated empty files)
    [ $(($(report_count "$output" imported) + $(report_count "$output" deduplicated))) -eq "$ALL" ]
    [ "$(report_count "$output" deduplicated)" -ge $((ALL - 300)) ]
    [ "$(report_count "$output" failed)" -eq 0 ]
    [ "$(report_count "$output" skipped)" -eq 2 ]
    [[ "$output" == *"skipped  a/fifo: special file (fifo)"* ]]
    [[ "$output" == *"skipped  outside-link: symlink to outside DIR (/etc/passwd)"* ]]
    [ "$(verify_tree "$TREE" tree)" -eq 300 ]
    # the symlinked folder is imported under the link's name, and nothing outside
    [ "$(acurl a "/api/storage/libs/tree/inside-link?list" | jq '.files | length')" -eq $((ALL - 300)) ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/tree/outside-link")" = 404 ]
    # the journal sits beside the tree, one line per path
    [ "$(grep -vc '^#' "$TREE.granary-import.state")" -eq "$ALL" ]
}

@test "a second run imports nothing new: journal, then the server-side check" {
    run imp --prefix tree --dir "$TREE" --progress
    [ "$status" -eq 0 ]
    [ "$(report_count "$output" imported)" -eq 0 ]
    [ "$(report_count "$output" journaled)" -eq "$ALL" ]
    # --progress without a terminal: plain lines on stderr, totals from the pre-scan
    [[ "$output" == *"$ALL files, "*" to check; state in $TREE.granary-import.state"* ]]
    [[ "$output" == *"$ALL/$ALL files  "*"MiB/s  ETA "* ]]
    # without the journal the repository says what it has
    run imp --prefix tree --dir "$TREE" --state "$SUITE_TMP/fresh.state"
    [ "$status" -eq 0 ]
    [ "$(report_count "$output" imported)" -eq 0 ]
    [ "$(report_count "$output" "already present")" -eq "$ALL" ]
    # the same content under another prefix is deployed by checksum
    run imp --prefix copy --dir "$TREE" --state "$SUITE_TMP/copy.state"
    [ "$status" -eq 0 ]
    [ "$(report_count "$output" deduplicated)" -eq "$ALL" ]
    [[ "$output" == *"imported                0 files, 0 B sent"* ]]
}

@test "an import killed with kill -9 resumes from its journal and completes" {
    local tree=$SUITE_TMP/tree2 state=$SUITE_TMP/killed.state
    make_tree "$tree" 2 # other content: nothing can be deduplicated
    GRANARY_PASSWORD=$NODE_a_PASS "$GRANARYCTL" import --url "$NODE_a_URL" --user admin --repo libs \
        --prefix killed --dir "$tree" --state "$state" --parallel 2 --limit-rate 4M \
        >"$SUITE_TMP/killed.out" 2>&1 &
    local pid=$!
    local i
    for ((i = 0; i < 600; i++)); do
        [ -f "$state" ] && [ "$(wc -l <"$state")" -ge 100 ] && break
        sleep 0.1
    done
    kill -9 $pid
    wait $pid || true
    local done_before
    done_before=$(wc -l <"$state")
    echo "journaled before the kill: $done_before"
    [ "$done_before" -ge 100 ]
    [ "$done_before" -lt 300 ]
    run imp --prefix killed --dir "$tree" --state "$state"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(report_count "$output" journaled)" -ge "$done_before" ]
    [ "$(report_count "$output" failed)" -eq 0 ]
    [ "$(verify_tree "$tree" killed)" -eq 300 ]
}

@test "the node restarts during an import: requests are retried and the import completes" {
    local tree=$SUITE_TMP/tree3 state=$SUITE_TMP/restart.state
    make_tree "$tree" 3
    GRANARY_PASSWORD=$NODE_a_PASS "$GRANARYCTL" import --url "$NODE_a_URL" --user admin --repo libs \
        --prefix restart --dir "$tree" --state "$state" --parallel 2 --limit-rate 4M --retries 8 \
        >"$SUITE_TMP/restart.out" 2>&1 &
    local pid=$! i
    for ((i = 0; i < 600; i++)); do
        [ -f "$state" ] && [ "$(wc -l <"$state")" -ge 60 ] && break
        sleep 0.1
    done
    stop_node a
    sleep 0.5
    restart_node a --database-url "$DB"
    local rc=0
    wait $pid || rc=$?
    cat "$SUITE_TMP/restart.out"
    [ "$rc" -eq 0 ]
    [ "$(report_count "$(cat "$SUITE_TMP/restart.out")" retried)" -gt 0 ]
    [ "$(verify_tree "$tree" restart)" -eq 300 ]
}

@test "filestore mode: sha1 and sha256 names, one blob on two paths, a corrupt blob" {
    local fs=$SUITE_TMP/filestore map=$SUITE_TMP/filestore.map
    mkdir -p "$fs"
    local i s1 s2 s3 s4
    for i in 1 2 3 4; do
        head -c $((i * 1000 + 17)) /dev/urandom >"$SUITE_TMP/blob$i"
    done
    s1=$(sha1sum "$SUITE_TMP/blob1" | cut -c1-40)
    s2=$(sha256sum "$SUITE_TMP/blob2" | cut -c1-64)
    s3=$(sha1sum "$SUITE_TMP/blob3" | cut -c1-40)
    s4=$(sha256sum "$SUITE_TMP/blob4" | cut -c1-64)
    for s in $s1 $s2 $s3 $s4; do mkdir -p "$fs/${s:0:2}"; done
    cp "$SUITE_TMP/blob1" "$fs/${s1:0:2}/$s1"
    cp "$SUITE_TMP/blob2" "$fs/${s2:0:2}/$s2"
    cp "$SUITE_TMP/blob4" "$fs/${s4:0:2}/$s4"
    printf 'not what the name says' >"$fs/${s3:0:2}/$s3" # corrupt
    {
        echo "# exported from the old server"
        echo "$s1  org/one/1.0/one-1.0.jar"
        echo
        echo "$s2  org/two/2.0/two-2.0.jar"
        echo "$s2 *org/two/latest/two.jar" # sha256sum's binary-mode mark
        echo "$s3  org/three/3.0/three-3.0.jar"
        echo "$s4  with space/ünï.bin"
    } >"$map"
    run imp --prefix fs --filestore "$fs" --map "$map"
    echo "$output"
    [ "$status" -eq 1 ]
    [ "$(report_count "$output" corrupt)" -eq 1 ]
    [ "$(report_count "$output" failed)" -eq 0 ]
    [ $(($(report_count "$output" imported) + $(report_count "$output" deduplicated))) -eq 4 ]
    [[ "$output" == *"corrupt  fs/org/three/3.0/three-3.0.jar: $fs/${s3:0:2}/$s3: content sha1 is "* ]]
    # the others are there with the right content, the corrupt one is not
    local p
    for p in "org/one/1.0/one-1.0.jar:blob1" "org/two/2.0/two-2.0.jar:blob2" \
        "org/two/latest/two.jar:blob2" "with%20space/%C3%BCn%C3%AF.bin:blob4"; do
        [ "$(acurl a "/libs/fs/${p%%:*}" | sha256sum)" = "$(sha256sum <"$SUITE_TMP/${p##*:}")" ]
    done
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/fs/org/three/3.0/three-3.0.jar")" = 404 ]
    # once the blob is repaired a re-run imports just it
    cp "$SUITE_TMP/blob3" "$fs/${s3:0:2}/$s3"
    run imp --prefix fs --filestore "$fs" --map "$map"
    [ "$status" -eq 0 ]
    [ "$(report_count "$output" imported)" -eq 1 ]
    [ "$(report_count "$output" journaled)" -eq 4 ]
}

@test "a path the server refuses fails with the server's message; --no-overwrite" {
    local d=$SUITE_TMP/refused seg
    seg=$(printf 'x%.0s' $(seq 250))
    mkdir -p "$d/$seg/$seg/$seg/$seg/$seg" "$d/ok"
    echo deep >"$d/$seg/$seg/$seg/$seg/$seg/f"
    echo new >"$d/ok/same.txt"
    echo old >"$SUITE_TMP/old.txt"
    acurl a -T "$SUITE_TMP/old.txt" /libs/refused/ok/same.txt >/dev/null
    run imp --prefix refused --dir "$d" --no-overwrite
    echo "$output"
    [ "$status" -eq 1 ]
    [ "$(report_count "$output" failed)" -eq 2 ]
    [[ "$output" == *"/f: HTTP 414: path or path segment too long"* ]]
    [[ "$output" == *"failed   refused/ok/same.txt: the repository holds different content"* ]]
    [ "$(acurl a /libs/refused/ok/same.txt)" = old ]
    # by default the source wins
    run imp --prefix refused --dir "$d" --state "$SUITE_TMP/refused2.state"
    [ "$status" -eq 1 ]
    [ "$(report_count "$output" failed)" -eq 1 ]
    [ "$(acurl a /libs/refused/ok/same.txt)" = new ]
}

@test "--exclude leaves out matching files and whole folders, counted apart" {
    local d=$SUITE_TMP/excl
    mkdir -p "$d/keep" "$d/tmp/sub"
    echo a >"$d/keep/a.jar"
    echo b >"$d/keep/.nfs0001"
    echo c >"$d/tmp/sub/c.jar"
    echo d >"$d/keep/d.jar.tmp"
    run imp --prefix excl --dir "$d" --exclude '.nfs*' --exclude tmp --exclude '*.tmp'
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(report_count "$output" imported)" -eq 1 ]
    [ "$(report_count "$output" excluded)" -eq 3 ]
    [ "$(report_count "$output" skipped)" -eq 0 ]
    [ "$(acurl a "/api/storage/libs/excl?list&deep=1" | jq -c '[.files[].uri]')" = '["/keep/a.jar"]' ]
}

@test "bad inputs: unknown repository, wrong password, missing directory, bad map" {
    local before
    before=$(acurl a "/api/storage/libs?list&deep=1" | jq '.files | length')
    run imp --repo nosuchrepo --dir "$TREE" --prefix bad
    [ "$status" -eq 1 ]
    [[ "$output" == *"repository 'nosuchrepo' not found"* ]]
    run env GRANARY_PASSWORD=wrong "$GRANARYCTL" import --url "$NODE_a_URL" --user admin \
        --repo libs --dir "$TREE" --prefix bad
    [ "$status" -eq 1 ]
    [[ "$output" == *"refused user 'admin': wrong user or password"* ]]
    run imp --dir "$SUITE_TMP/no/such/dir" --prefix bad
    [ "$status" -eq 2 ]
    [[ "$output" == *"--dir $SUITE_TMP/no/such/dir: no such directory"* ]]
    run "$GRANARYCTL" import --url "$NODE_a_URL" --user admin --repo libs --dir "$TREE"
    [ "$status" -eq 2 ]
    [[ "$output" == *"GRANARY_PASSWORD"* ]]
    printf 'abc  x/y\n' >"$SUITE_TMP/bad.map"
    run imp --filestore "$SUITE_TMP" --map "$SUITE_TMP/bad.map" --prefix bad
    [ "$status" -eq 2 ]
    [[ "$output" == *"bad.map:1: expected '<sha1 or sha256>  <path>'"* ]]
    run imp --dir "$TREE" --parallel 0
    [ "$status" -eq 2 ]
    [[ "$output" == *"--parallel must be a number from 1 to 64"* ]]
    run imp --dir "$TREE" --bogus
    [ "$status" -eq 2 ]
    [[ "$output" == *"unknown option '--bogus'"* ]]
    # nothing was imported
    [ "$(acurl a "/api/storage/libs?list&deep=1" | jq '.files | length')" -eq "$before" ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/api/storage/libs/bad")" = 404 ]
}

@test "through one cluster node, seen by another; a re-run through it sends nothing" {
    local db tree=$SUITE_TMP/ctree
    db=$(new_db import_cluster)
    start_cluster_node b "$db"
    start_cluster_node c "$db"
    # the admin of this cluster is the first node's (node a has its own database)
    NODE_b_PASS=$(cat "$SUITE_TMP/node-b/admin.password")
    NODE_c_PASS=$NODE_b_PASS
    make_repo b libs
    mkdir -p "$tree/x y"
    local i
    for ((i = 0; i < 30; i++)); do head -c $((i * 311)) /dev/urandom >"$tree/x y/f$i.bin"; done
    run env GRANARY_PASSWORD="$NODE_b_PASS" "$GRANARYCTL" import --url "$NODE_b_URL" --user admin \
        --repo libs --dir "$tree" --state "$SUITE_TMP/ctree.b.state"
    echo "$output"
    [ "$status" -eq 0 ]
    [ $(($(report_count "$output" imported) + $(report_count "$output" deduplicated))) -eq 30 ]
    # node c knows every path with the right sha256 at once
    for ((i = 0; i < 30; i++)); do
        [ "$(acurl c "/api/storage/libs/x%20y/f$i.bin" | jq -r .checksums.sha256)" = \
            "$(sha256sum <"$tree/x y/f$i.bin" | cut -c1-64)" ]
    done
    run env GRANARY_PASSWORD="$NODE_c_PASS" "$GRANARYCTL" import --url "$NODE_c_URL" --user admin \
        --repo libs --dir "$tree" --state "$SUITE_TMP/ctree.c.state"
    [ "$status" -eq 0 ]
    [ "$(report_count "$output" "already present")" -eq 30 ]
}

@test "granaryctl help documents import" {
    run "$GRANARYCTL" help
    [ "$status" -eq 0 ]
    [[ "$output" == *"--filestore DIR --map FILE"* ]]
    [[ "$output" == *"--password-file FILE"* ]]
    run "$GRANARYCTL" import --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"--state FILE"* ]]
}
