#!/usr/bin/env bats
# The s3 binary provider on three real nodes and a real S3 server that
# checks SigV4 signatures (@20minutes/s3rver, scripts/install-deps;
# docs/storage.md): uploads through any node readable from every node, a
# large upload in parts, a flipped byte caught on read and by scrub, the
# store down for 10 s, GC racing uploads of the same content, repair of an
# object lost from the bucket, the provider fixed per cluster, a wrong
# secret, virtual-host addressing, and a migration local -> s3 -> local
# under load.
load helpers
load migration

S3RVER_DIR=${S3RVER_DIR:-/opt/granary-s3rver}

setup_file() {
    [ -d "$S3RVER_DIR/node_modules/@20minutes/s3rver" ] || {
        echo "s3rver is missing: run scripts/install-deps" >&2
        return 1
    }
    start_pg
    export DB=$(new_db s3)
    export S3PORT=$(free_port) S3DIR=$SUITE_TMP/s3
    start_s3
    printf 'S3RVER\n' >"$SUITE_TMP/ak"
    printf 'S3RVER\n' >"$SUITE_TMP/sk"
    export S3ARGS="--storage-provider s3 --s3-endpoint http://127.0.0.1:$S3PORT --s3-bucket granary --s3-access-key-file $SUITE_TMP/ak --s3-secret-key-file $SUITE_TMP/sk"
    # shellcheck disable=SC2086
    start_cluster_node n1 "$DB" $S3ARGS
    # shellcheck disable=SC2086
    start_cluster_node n2 "$DB" $S3ARGS
    # shellcheck disable=SC2086
    start_cluster_node n3 "$DB" $S3ARGS --cache-max-bytes 0
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL NODE_n1_DIR NODE_n2_DIR NODE_n3_DIR
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"generic"}' "$NODE_n1_URL/api/repositories/libs" >/dev/null
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"gcIntervalSeconds":0,"scrubBytesPerSecond":0}' "$NODE_n1_URL/api/system/storage/config" >/dev/null
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"retentionPeriodDays":0}' "$NODE_n1_URL/api/trash/settings" >/dev/null
}
teardown_file() {
    stop_all
    stop_s3
    cleanup_suite
}

start_s3() {
    mkdir -p "$S3DIR"
    node "$PWD/tests/integration/tools/s3rver.js" "$S3PORT" "$S3DIR" granary vh >>"$SUITE_TMP/s3rver.log" 2>&1 &
    echo $! >"$SUITE_TMP/s3rver.pid"
    echo $! >>"$SUITE_TMP/pids"
    wait_until 30 s3_up
}
stop_s3() {
    local pid
    pid=$(cat "$SUITE_TMP/s3rver.pid" 2>/dev/null) || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_until 10 pid_gone "$pid"
}
s3_up() { [ "$(code "http://127.0.0.1:$S3PORT/")" != 000 ]; }
cget() { curl -sS -u "admin:$PASS" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
sql() { psql_db "$(basename "$DB")" "$1"; }
obj() { echo "$S3DIR/granary/${1:0:2}/$1._S3rver_object"; }
url_of() { eval "echo \$NODE_$1_URL"; }
s3metric() { cget "$(url_of "$1")/api/system/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
# get NODE PATH OUT: download through NODE into OUT
get() { curl -fsS -u "admin:$PASS" -o "$3" "$(url_of "$1")/libs/$2"; }

@test "the provider is recorded by the first node; a node started with another refuses to start" {
    [ "$(sql "SELECT provider FROM storage_provider")" = s3 ]
    mkdir -p "$SUITE_TMP/node-x"
    run ! timeout 60 "$GRANARYD" --data-dir "$SUITE_TMP/node-x" --listen "127.0.0.1:$(free_port)" \
        --database-url "$DB" --join-key-file "$(cluster_key)" --node-id x \
        --cluster-listen "127.0.0.1:$(free_port)" --bus-listen "127.0.0.1:$(free_port)"
    [ "$status" = 1 ]
    [[ $output == *"storage provider mismatch: this cluster keeps its binaries in s3"* ]]
    [[ $output == *"started with --storage-provider local"* ]]
    cget "$NODE_n2_URL/api/system/storage/migrate" >"$SUITE_TMP/prov.json"
    [ "$(jq -r .provider "$SUITE_TMP/prov.json")" = s3 ]
    # the keys are never shown back
    run cget "$NODE_n1_URL/api/system/cluster"
    [ "$status" = 0 ]
    [[ $output != *S3RVER* ]]
}

@test "an upload through any node is in the bucket before the 201 and readable from every node" {
    head -c 1048576 /dev/urandom >"$SUITE_TMP/a"
    local s n
    s=$(sha "$SUITE_TMP/a")
    run code -u "admin:$PASS" -T "$SUITE_TMP/a" "$NODE_n2_URL/libs/a.bin"
    [ "$output" = 201 ]
    [ -f "$(obj "$s")" ]
    cmp "$(obj "$s")" "$SUITE_TMP/a"
    [ -f "$S3DIR/granary/${s:0:2}/$s.crc._S3rver_object" ]
    [ "$(sql "SELECT string_agg(node, ',') FROM binary_locations WHERE sha256 = '$s'")" = store:s3 ]
    for n in n1 n2 n3; do
        get $n a.bin "$SUITE_TMP/a.$n"
        [ "$(sha "$SUITE_TMP/a.$n")" = "$s" ]
    done
    # n2 cached it on upload, n1 on its first read; n3 keeps no cache
    [ -f "$NODE_n2_DIR/filestore/${s:0:2}/$s" ]
    [ -f "$NODE_n1_DIR/filestore/${s:0:2}/$s" ]
    [ ! -f "$NODE_n3_DIR/filestore/${s:0:2}/$s" ]
    # a range of a binary that is not cached: whole blocks fetched, the range sent
    run curl -fsS -u "admin:$PASS" -r 70000-70009 "$NODE_n3_URL/libs/a.bin"
    [ "$status" = 0 ]
    [ "$output" = "$(dd if="$SUITE_TMP/a" bs=1 skip=70000 count=10 2>/dev/null)" ]
}

@test "a 300 MiB upload goes up in parts and reads back the same" {
    head -c $((300 * 1048576)) /dev/urandom >"$SUITE_TMP/big"
    local s
    s=$(sha "$SUITE_TMP/big")
    run code -u "admin:$PASS" -T "$SUITE_TMP/big" "$NODE_n1_URL/libs/big.bin"
    [ "$output" = 201 ]
    [ "$(stat -c %s "$(obj "$s")")" = $((300 * 1048576)) ]
    [ "$(s3metric n1 granary_storage_s3_requests_total)" -gt 20 ] # HEAD, sidecar, create, 19 parts, complete
    # through the node without a cache: streamed from the store, every block checked
    curl -fsS -u "admin:$PASS" "$NODE_n3_URL/libs/big.bin" | sha256sum | cut -d' ' -f1 >"$SUITE_TMP/big.sha"
    [ "$(cat "$SUITE_TMP/big.sha")" = "$s" ]
    rm -f "$SUITE_TMP/big"
    # no part is left behind (s3rver keeps a multipart upload's parts under ._S3rver_uploads/)
    [ -d "$S3DIR/granary/._S3rver_uploads" ]
    run find "$S3DIR/granary/._S3rver_uploads" -type f
    [ "$status" = 0 ]
    [ -z "$output" ]
    # collected again (so that the scrubs below do not read 300 MiB)
    run code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/libs/big.bin"
    [ "$output" = 204 ]
    cget -X POST "$NODE_n1_URL/api/system/storage/gc?graceSeconds=0" >/dev/null
    [ ! -f "$(obj "$s")" ]
    [ ! -f "$NODE_n1_DIR/filestore/${s:0:2}/$s" ]
}

@test "a flipped byte in an object is caught on read (no complete 200) and by scrub" {
    head -c 6000000 /dev/urandom >"$SUITE_TMP/rot"
    local s
    s=$(sha "$SUITE_TMP/rot")
    run code -u "admin:$PASS" -T "$SUITE_TMP/rot" "$NODE_n1_URL/libs/rot.bin"
    [ "$output" = 201 ]
    flip_byte "$(obj "$s")" 5000000
    refute cmp -s "$(obj "$s")" "$SUITE_TMP/rot"
    # n3 has no cache: the answer starts (the first 4 MiB check out), then
    # the block with the flipped byte fails before it is sent: the connection is cut
    run curl -sS -u "admin:$PASS" -o "$SUITE_TMP/rot.out" -w '%{http_code}' "$NODE_n3_URL/libs/rot.bin"
    [ "$status" != 0 ]
    [ "$(stat -c %s "$SUITE_TMP/rot.out")" -lt 6000000 ]
    # a range starting in that block: 503 before any byte
    run code -u "admin:$PASS" -r 4999990-5000010 "$NODE_n3_URL/libs/rot.bin"
    [ "$output" = 503 ]
    [ "$(s3metric n3 granary_storage_store_bad_total)" -ge 2 ]
    # scrub finds it and puts it back from a node's cache (n1 kept the upload)
    cget -X POST "$NODE_n1_URL/api/system/storage/scrub" >"$SUITE_TMP/scrub.json"
    [ "$(jq .bad "$SUITE_TMP/scrub.json")" -ge 1 ]
    [ "$(jq .healed "$SUITE_TMP/scrub.json")" -ge 1 ]
    cmp "$(obj "$s")" "$SUITE_TMP/rot"
    get n3 rot.bin "$SUITE_TMP/rot.n3"
    [ "$(sha "$SUITE_TMP/rot.n3")" = "$s" ]
}

@test "the store down for 10 s: uploads get 503 and store nothing, cached downloads go on, then it recovers" {
    head -c 200000 /dev/urandom >"$SUITE_TMP/c1"
    run code -u "admin:$PASS" -T "$SUITE_TMP/c1" "$NODE_n1_URL/libs/c1.bin"
    [ "$output" = 201 ]
    get n1 c1.bin "$SUITE_TMP/c1.warm"
    stop_s3
    local t0=$SECONDS
    head -c 100000 /dev/urandom >"$SUITE_TMP/down"
    run curl -sS -u "admin:$PASS" -T "$SUITE_TMP/down" -w ' %{http_code}' "$NODE_n1_URL/libs/down.bin"
    [ "${output##* }" = 503 ]
    [[ $output == *"the S3 store did not take the upload"* ]]
    [ "$(sql "SELECT count(*) FROM artifacts WHERE path = 'down.bin'")" = 0 ]
    get n1 c1.bin "$SUITE_TMP/c1.cached"
    cmp "$SUITE_TMP/c1" "$SUITE_TMP/c1.cached"
    # not cached on n3: 503, not a wrong or partial answer
    run code -u "admin:$PASS" "$NODE_n3_URL/libs/c1.bin"
    [ "$output" = 503 ]
    while [ $((SECONDS - t0)) -lt 10 ]; do sleep 0.5; done
    start_s3
    run code -u "admin:$PASS" -T "$SUITE_TMP/down" "$NODE_n1_URL/libs/down.bin"
    [ "$output" = 201 ]
    get n3 c1.bin "$SUITE_TMP/c1.after"
    cmp "$SUITE_TMP/c1" "$SUITE_TMP/c1.after"
}

cache_bytes() { du -sb --exclude=_pre --exclude=_quarantine --exclude=STORE_ID "$1/filestore" | cut -f1; }
evicted_at_least() { [ "$(s3metric "$1" granary_storage_cache_evicted_total)" -ge "$2" ]; }

@test "the read-through cache keeps to --cache-max-bytes, least recently used out first" {
    # shellcheck disable=SC2086
    start_cluster_node n5 "$DB" $S3ARGS --cache-max-bytes 2600000
    local i
    for i in 1 2 3 4; do
        head -c 1000000 /dev/urandom >"$SUITE_TMP/lru$i"
        run code -u "admin:$PASS" -T "$SUITE_TMP/lru$i" "$NODE_n1_URL/libs/lru$i.bin"
        [ "$output" = 201 ]
        get n5 lru$i.bin "$SUITE_TMP/lru.back"
        cmp "$SUITE_TMP/lru$i" "$SUITE_TMP/lru.back"
        get n5 lru1.bin "$SUITE_TMP/lru.back" # lru1 stays the most recently used
    done
    wait_until 30 evicted_at_least n5 2
    [ "$(cache_bytes "$NODE_n5_DIR")" -le 2600000 ]
    local s1
    s1=$(sha "$SUITE_TMP/lru1")
    [ -f "$NODE_n5_DIR/filestore/${s1:0:2}/$s1" ]
    [ "$(s3metric n5 granary_storage_cache_hits_total)" -ge 3 ]
    stop_node n5
}

@test "a wrong secret is refused by the store (403) and granary says so" {
    printf 'wrong-secret\n' >"$SUITE_TMP/badsk"
    # shellcheck disable=SC2086
    start_cluster_node n4 "$DB" $S3ARGS --s3-secret-key-file "$SUITE_TMP/badsk"
    head -c 1000 /dev/urandom >"$SUITE_TMP/w"
    run curl -sS -u "admin:$PASS" -T "$SUITE_TMP/w" -w ' %{http_code}' "$NODE_n4_URL/libs/w.bin"
    [ "${output##* }" = 503 ]
    [[ $output == *"refused granary's credentials"* ]]
    run grep -c "cannot store .* in s3: 403" "$NODE_n4_DIR/stderr.log"
    [ "$output" -ge 1 ]
    stop_node n4
}

@test "virtual-host addressing (--s3-path-style false): upload, download byte for byte, GC delete, SigV4 checked" {
    # a one-node cluster of its own on bucket vh: granary asks for
    # http://vh.s3.localhost:PORT/KEY (libcurl resolves *.localhost itself) and
    # s3rver takes the bucket from the Host name left of ".s3.localhost"
    # (tools/s3rver.js), so the objects land in $S3DIR/vh
    local s
    start_cluster_node v1 "$(new_db vh)" --storage-provider s3 --s3-endpoint "http://s3.localhost:$S3PORT" \
        --s3-bucket vh --s3-path-style false --cache-max-bytes 0 \
        --s3-access-key-file "$SUITE_TMP/ak" --s3-secret-key-file "$SUITE_TMP/sk"
    acurl v1 -f -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"generic"}' /api/repositories/libs >/dev/null
    acurl v1 -f -X PUT -H 'Content-Type: application/json' -d '{"retentionPeriodDays":0}' /api/trash/settings >/dev/null
    head -c 3000000 /dev/urandom >"$SUITE_TMP/vh"
    s=$(sha "$SUITE_TMP/vh")
    run acurl v1 -o /dev/null -w '%{http_code}' -T "$SUITE_TMP/vh" /libs/vh.bin
    [ "$output" = 201 ]
    cmp "$S3DIR/vh/${s:0:2}/$s._S3rver_object" "$SUITE_TMP/vh"
    [ -f "$S3DIR/vh/${s:0:2}/$s.crc._S3rver_object" ]
    [ ! -e "$S3DIR/granary/${s:0:2}/$s._S3rver_object" ]
    # the requests went to the bucket's host name, not to /vh/ on s3.localhost
    grep -q "^vhost PUT vh.s3.localhost:$S3PORT /${s:0:2}/$s\$" "$SUITE_TMP/s3rver.log"
    # no cache on v1: the download is read from the store
    acurl v1 -f -o "$SUITE_TMP/vh.back" /libs/vh.bin
    cmp "$SUITE_TMP/vh" "$SUITE_TMP/vh.back"
    [ ! -f "$NODE_v1_DIR/filestore/${s:0:2}/$s" ]
    grep -q "^vhost GET vh.s3.localhost:$S3PORT /${s:0:2}/$s\$" "$SUITE_TMP/s3rver.log"
    # s3rver checks the signatures of virtual-host requests too
    run curl -sS --aws-sigv4 aws:amz:us-east-1:s3 -u S3RVER:wrong -H "x-amz-content-sha256: $(sha /dev/null)" \
        "http://vh.s3.localhost:$S3PORT/${s:0:2}/$s"
    [[ $output == *"<Code>SignatureDoesNotMatch</Code>"* ]]
    run acurl v1 -o /dev/null -w '%{http_code}' -X DELETE /libs/vh.bin
    [ "$output" = 204 ]
    acurl v1 -f -X POST '/api/system/storage/gc?graceSeconds=0' >/dev/null
    [ ! -e "$S3DIR/vh/${s:0:2}/$s._S3rver_object" ]
    [ ! -e "$S3DIR/vh/${s:0:2}/$s.crc._S3rver_object" ]
    grep -q "^vhost DELETE vh.s3.localhost:$S3PORT /${s:0:2}/$s\$" "$SUITE_TMP/s3rver.log"
    stop_node v1
}

@test "GC deletes unreferenced objects while uploads of the same content race it; no upload loses its object" {
    local i s
    head -c 500000 /dev/urandom >"$SUITE_TMP/g"
    s=$(sha "$SUITE_TMP/g")
    for i in 1 2 3 4 5 6; do
        run code -u "admin:$PASS" -T "$SUITE_TMP/g" "$NODE_n1_URL/libs/g$i.bin"
        [ "$output" = 201 ]
        run code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/libs/g$i.bin"
        [ "$output" = 204 ]
        cget -X POST "$NODE_n2_URL/api/system/storage/gc?graceSeconds=0" >/dev/null &
        run code -u "admin:$PASS" -T "$SUITE_TMP/g" "$NODE_n3_URL/libs/keep$i.bin"
        [ "$output" = 201 ]
        wait
        get n3 keep$i.bin "$SUITE_TMP/g.back"
        [ "$(sha "$SUITE_TMP/g.back")" = "$s" ]
        [ -f "$(obj "$s")" ]
        run code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/libs/keep$i.bin"
        [ "$output" = 204 ]
    done
    cget -X POST "$NODE_n1_URL/api/system/storage/gc?graceSeconds=0" >"$SUITE_TMP/gc.json"
    [ ! -f "$(obj "$s")" ]
    [ ! -f "$S3DIR/granary/${s:0:2}/$s.crc._S3rver_object" ]
}

# repair on n1 (a pass now); true once the object of $1 is back in the bucket
repaired() {
    cget -X POST "$NODE_n1_URL/api/system/storage/optimize" >/dev/null
    [ -f "$(obj "$1")" ]
}

@test "repair finds an object missing from the bucket and puts it back from the node's cache" {
    local s
    head -c 300000 /dev/urandom >"$SUITE_TMP/rep"
    s=$(sha "$SUITE_TMP/rep")
    run code -u "admin:$PASS" -T "$SUITE_TMP/rep" "$NODE_n1_URL/libs/rep.bin"
    [ "$output" = 201 ]
    # the object (not its sidecar) lost behind granary's back
    rm -f "$S3DIR/granary/${s:0:2}/$s._S3rver_"*
    run code -u "admin:$PASS" "$NODE_n3_URL/libs/rep.bin"
    [ "$output" = 503 ]
    wait_until 60 repaired "$s"
    cmp "$(obj "$s")" "$SUITE_TMP/rep"
    grep -q "repair: $s is missing in s3" "$NODE_n1_DIR/stderr.log"
    get n3 rep.bin "$SUITE_TMP/rep.n3"
    cmp "$SUITE_TMP/rep" "$SUITE_TMP/rep.n3"
}

# ---- migration: a second cluster that starts on its nodes' disks (migration.bash) ----

msql() { psql_db mig "$1"; }

@test "migration local -> s3 -> local online under load, every artifact's sha256 checked after each step" {
    local m1
    new_db mig >/dev/null
    local dbm="$DBURL_BASE/mig"
    local s3m="--s3-endpoint http://127.0.0.1:$S3PORT --s3-bucket granary --s3-prefix mig/ --s3-access-key-file $SUITE_TMP/ak --s3-secret-key-file $SUITE_TMP/sk"
    # shellcheck disable=SC2086
    start_cluster_node m1 "$dbm" $s3m
    # shellcheck disable=SC2086
    start_cluster_node m2 "$dbm" $s3m
    # shellcheck disable=SC2086
    start_cluster_node m3 "$dbm" $s3m
    m1=http://127.0.0.1:$(cat "$SUITE_TMP/node-m1/port")
    cat "$SUITE_TMP/node-m1/admin.password" >"$SUITE_TMP/m.pass"
    [ "$(msql "SELECT provider FROM storage_provider")" = local ]
    mig_fill "$m1"
    load_loop &
    local load=$!
    # a node without s3 settings would make the switch unsafe: refused while one is live
    run "$GRANARYCTL" storage migrate --url "$m1" --password-file "$SUITE_TMP/m.pass" --to shared-fs
    [ "$status" = 1 ]
    [[ $output == *"409 cannot migrate to shared-fs: a live node was not started with that provider's settings"* ]]
    run "$GRANARYCTL" storage migrate --url "$m1" --password-file "$SUITE_TMP/m.pass" --to s3 --bytes-per-second 50000000 --wait
    [ "$status" = 0 ]
    [[ $output == *"provider s3 (before: local)"* ]]
    migration_done s3
    [ "$(msql "SELECT count(*) FROM binaries b WHERE NOT EXISTS (SELECT 1 FROM binary_locations l WHERE l.sha256 = b.sha256 AND l.node = 'store:s3')")" = 0 ]
    [ -n "$(find "$S3DIR/granary/mig" -name '*._S3rver_object' | head -1)" ]
    check_all
    # the load ran through the first migration and is still running as the second starts
    # (a steady flow of uploads once kept a migration from switching)
    kill -0 "$load"
    run "$GRANARYCTL" storage migrate --url "$m1" --password-file "$SUITE_TMP/m.pass" --to local --wait
    [ "$status" = 0 ]
    [[ $output == *"provider local (before: s3)"* ]]
    migration_done local
    check_all
    touch "$SUITE_TMP/load.stop"
    wait "$load"
    load_checked
    check_all all
    # back on the nodes' disks: every binary has copies on nodes again
    [ "$(msql "SELECT count(*) FROM binaries b WHERE NOT EXISTS (SELECT 1 FROM binary_locations l WHERE l.sha256 = b.sha256 AND l.node NOT LIKE 'store:%')")" = 0 ]
    # a node restarted with the same flags (no --storage-provider: local) joins the cluster again
    stop_node m3
    # shellcheck disable=SC2086
    restart_cluster_node m3 "$dbm" $s3m
}
