#!/usr/bin/env bats
# The shared-fs binary provider (docs/storage.md): three nodes on one
# directory (a shared mount at the same path on every node; here a local
# directory), uploads through any node readable from every node, the
# <aa>/<sha256> layout with sidecars, no copies between nodes, a flipped
# byte caught on read and by scrub, GC racing uploads of the same content,
# a 300 MiB upload, and a migration local -> shared-fs -> local under load.
load helpers
load migration

setup_file() {
    start_pg
    export DB=$(new_db sharedfs)
    export SHARED=$SUITE_TMP/shared
    mkdir -p "$SHARED"
    start_cluster_node n1 "$DB" --storage-provider shared-fs --shared-fs-path "$SHARED"
    start_cluster_node n2 "$DB" --storage-provider shared-fs --shared-fs-path "$SHARED"
    start_cluster_node n3 "$DB" --storage-provider shared-fs --shared-fs-path "$SHARED"
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
    cleanup_suite
}

cget() { curl -sS -u "admin:$PASS" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
sql() { psql_db "$(basename "$DB")" "$1"; }
url_of() { eval "echo \$NODE_$1_URL"; }
get() { curl -fsS -u "admin:$PASS" -o "$3" "$(url_of "$1")/libs/$2"; }

@test "the provider is the cluster's; a node started with another refuses to start" {
    [ "$(sql "SELECT provider FROM storage_provider")" = shared-fs ]
    mkdir -p "$SUITE_TMP/node-x"
    run ! timeout 60 "$GRANARYD" --data-dir "$SUITE_TMP/node-x" --listen "127.0.0.1:$(free_port)" \
        --database-url "$DB" --join-key-file "$(cluster_key)" --node-id x \
        --cluster-listen "127.0.0.1:$(free_port)" --bus-listen "127.0.0.1:$(free_port)"
    [ "$status" = 1 ]
    [[ $output == *"storage provider mismatch: this cluster keeps its binaries in shared-fs"* ]]
    # shared-fs without its directory is refused too (another node: x may still count as live)
    mkdir -p "$SUITE_TMP/node-y"
    run ! timeout 60 "$GRANARYD" --data-dir "$SUITE_TMP/node-y" --listen "127.0.0.1:$(free_port)" \
        --database-url "$DB" --join-key-file "$(cluster_key)" --node-id y --storage-provider shared-fs \
        --cluster-listen "127.0.0.1:$(free_port)" --bus-listen "127.0.0.1:$(free_port)"
    [ "$status" = 1 ] || {
        echo "status $status: $output" >&2
        false
    }
    [[ $output == *"storage provider shared-fs is not configured: give --shared-fs-path"* ]]
}

@test "uploads through any node land once in the shared directory, readable from every node" {
    local i n s
    for i in 1 2 3; do
        head -c $((i * 300000)) /dev/urandom >"$SUITE_TMP/f$i"
        run code -u "admin:$PASS" -T "$SUITE_TMP/f$i" "$(url_of n$i)/libs/f$i.bin"
        [ "$output" = 201 ]
        s=$(sha "$SUITE_TMP/f$i")
        cmp "$SHARED/${s:0:2}/$s" "$SUITE_TMP/f$i"
        [ -f "$SHARED/${s:0:2}/$s.crc" ]
        [ "$(sql "SELECT string_agg(node, ',') FROM binary_locations WHERE sha256 = '$s'")" = store:shared-fs ]
        for n in n1 n2 n3; do
            get $n f$i.bin "$SUITE_TMP/f$i.$n"
            cmp "$SUITE_TMP/f$i" "$SUITE_TMP/f$i.$n"
            # no copies between nodes: nothing in the nodes' own filestores
            [ ! -f "$SUITE_TMP/node-$n/filestore/${s:0:2}/$s" ]
        done
    done
    # every writer's temporary files are gone
    run find "$SHARED/_pre" -type f
    [ -z "$output" ]
}

@test "a 300 MiB upload lands whole in the shared directory and reads back the same from every node" {
    local n s
    head -c $((300 * 1048576)) /dev/urandom >"$SUITE_TMP/big"
    s=$(sha "$SUITE_TMP/big")
    run code -u "admin:$PASS" -T "$SUITE_TMP/big" "$NODE_n2_URL/libs/big.bin"
    [ "$output" = 201 ]
    [ "$(stat -c %s "$SHARED/${s:0:2}/$s")" = $((300 * 1048576)) ]
    for n in n1 n3; do
        curl -fsS -u "admin:$PASS" "$(url_of $n)/libs/big.bin" | sha256sum | cut -d' ' -f1 >"$SUITE_TMP/big.sha"
        [ "$(cat "$SUITE_TMP/big.sha")" = "$s" ]
    done
    rm -f "$SUITE_TMP/big"
    run code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/libs/big.bin"
    [ "$output" = 204 ]
    cget -X POST "$NODE_n1_URL/api/system/storage/gc?graceSeconds=0" >/dev/null
    [ ! -f "$SHARED/${s:0:2}/$s" ]
}

@test "the same content from three nodes at once is stored once" {
    local n s
    head -c 2000000 /dev/urandom >"$SUITE_TMP/same"
    s=$(sha "$SUITE_TMP/same")
    for n in n1 n2 n3; do
        curl -fsS -o /dev/null -u "admin:$PASS" -T "$SUITE_TMP/same" "$(url_of $n)/libs/same-$n.bin" &
    done
    wait
    for n in n1 n2 n3; do
        get $n same-n1.bin "$SUITE_TMP/same.$n"
        cmp "$SUITE_TMP/same" "$SUITE_TMP/same.$n"
    done
    cmp "$SHARED/${s:0:2}/$s" "$SUITE_TMP/same"
}

@test "a flipped byte in the shared copy is caught on read and by scrub" {
    local s
    head -c 3000000 /dev/urandom >"$SUITE_TMP/rot"
    s=$(sha "$SUITE_TMP/rot")
    run code -u "admin:$PASS" -T "$SUITE_TMP/rot" "$NODE_n1_URL/libs/rot.bin"
    [ "$output" = 201 ]
    flip_byte "$SHARED/${s:0:2}/$s" 2500000
    # the answer starts (the first block checks out), the bad block is never sent
    run curl -sS -u "admin:$PASS" -o "$SUITE_TMP/rot.out" "$NODE_n2_URL/libs/rot.bin"
    [ "$status" != 0 ]
    [ "$(stat -c %s "$SUITE_TMP/rot.out")" -lt 3000000 ]
    [ -n "$(ls "$SHARED/_quarantine/")" ]
    # a second bad copy, found by scrub
    head -c 100000 /dev/urandom >"$SUITE_TMP/rot2"
    s=$(sha "$SUITE_TMP/rot2")
    run code -u "admin:$PASS" -T "$SUITE_TMP/rot2" "$NODE_n1_URL/libs/rot2.bin"
    [ "$output" = 201 ]
    flip_byte "$SHARED/${s:0:2}/$s" 5000
    cget -X POST "$NODE_n3_URL/api/system/storage/scrub" >"$SUITE_TMP/scrub.json"
    [ "$(jq .bad "$SUITE_TMP/scrub.json")" -ge 1 ]
    [ ! -f "$SHARED/${s:0:2}/$s" ]
    run code -u "admin:$PASS" "$NODE_n1_URL/libs/rot2.bin"
    [ "$output" = 503 ]
    # a new upload of the same content heals it
    run code -u "admin:$PASS" -T "$SUITE_TMP/rot2" "$NODE_n2_URL/libs/rot2b.bin"
    [ "$output" = 201 ]
    get n3 rot2.bin "$SUITE_TMP/rot2.back"
    cmp "$SUITE_TMP/rot2" "$SUITE_TMP/rot2.back"
}

@test "GC deletes unreferenced binaries while uploads of the same content race it; no upload loses its copy" {
    local i s
    head -c 400000 /dev/urandom >"$SUITE_TMP/g"
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
        get n1 keep$i.bin "$SUITE_TMP/g.back"
        cmp "$SUITE_TMP/g" "$SUITE_TMP/g.back"
        [ -f "$SHARED/${s:0:2}/$s" ]
        run code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/libs/keep$i.bin"
        [ "$output" = 204 ]
    done
    cget -X POST "$NODE_n1_URL/api/system/storage/gc?graceSeconds=0" >/dev/null
    [ ! -f "$SHARED/${s:0:2}/$s" ]
}

msql() { psql_db migfs "$1"; }

@test "migration local -> shared-fs -> local online under load, every artifact's sha256 checked after each step" {
    local m1 mshared=$SUITE_TMP/mshared
    new_db migfs >/dev/null
    local dbm="$DBURL_BASE/migfs"
    mkdir -p "$mshared"
    # the nodes can reach the shared directory, the cluster keeps its binaries on their disks
    start_cluster_node m1 "$dbm" --shared-fs-path "$mshared"
    start_cluster_node m2 "$dbm" --shared-fs-path "$mshared"
    start_cluster_node m3 "$dbm" --shared-fs-path "$mshared"
    m1=http://127.0.0.1:$(cat "$SUITE_TMP/node-m1/port")
    cat "$SUITE_TMP/node-m1/admin.password" >"$SUITE_TMP/m.pass"
    [ "$(msql "SELECT provider FROM storage_provider")" = local ]
    mig_fill "$m1"
    load_loop &
    local load=$!
    # a node without s3 settings would make the switch unsafe: refused while one is live
    run "$GRANARYCTL" storage migrate --url "$m1" --password-file "$SUITE_TMP/m.pass" --to s3
    [ "$status" = 1 ]
    [[ $output == *"409 cannot migrate to s3: a live node was not started with that provider's settings"* ]]
    run "$GRANARYCTL" storage migrate --url "$m1" --password-file "$SUITE_TMP/m.pass" --to shared-fs --bytes-per-second 50000000 --wait
    [ "$status" = 0 ]
    [[ $output == *"provider shared-fs (before: local)"* ]]
    migration_done shared-fs
    [ "$(msql "SELECT count(*) FROM binaries b WHERE NOT EXISTS (SELECT 1 FROM binary_locations l WHERE l.sha256 = b.sha256 AND l.node = 'store:shared-fs')")" = 0 ]
    local f s
    for f in "$SUITE_TMP"/mig.sha.*; do
        s=$(cat "$f")
        [ -f "$mshared/${s:0:2}/$s" ]
        [ -f "$mshared/${s:0:2}/$s.crc" ]
    done
    check_all
    # the load ran through the first migration and is still running as the second starts
    # (a steady flow of uploads once kept a migration from switching)
    kill -0 "$load"
    run "$GRANARYCTL" storage migrate --url "$m1" --password-file "$SUITE_TMP/m.pass" --to local --wait
    [ "$status" = 0 ]
    [[ $output == *"provider local (before: shared-fs)"* ]]
    migration_done local
    check_all
    touch "$SUITE_TMP/load.stop"
    wait "$load"
    load_checked
    check_all all
    # back on the nodes' disks: every binary has copies on nodes again
    [ "$(msql "SELECT count(*) FROM binaries b WHERE NOT EXISTS (SELECT 1 FROM binary_locations l WHERE l.sha256 = b.sha256 AND l.node NOT LIKE 'store:%')")" = 0 ]
}
