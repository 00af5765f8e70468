#!/usr/bin/env bats
# Redundant binary storage on three real nodes (docs/blobs.md,
# daemon/storage/README.md): replication, reads from any node, bit rot, repair, scrub,
# garbage collection racing uploads, node loss.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db blobs)
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    start_cluster_node n3 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL NODE_n1_DIR NODE_n2_DIR NODE_n3_DIR
    export NODE_n1_CPORT NODE_n2_CPORT NODE_n3_CPORT
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"generic"}' "$NODE_n1_URL/api/repositories/libs" >/dev/null
    # the tests start the storage tasks themselves
    storage_config '{"redundancy":2,"lenientLimit":1,"gcIntervalSeconds":0,"scrubBytesPerSecond":0}'
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"retentionPeriodDays":0}' "$NODE_n1_URL/api/trash/settings" >/dev/null
}
teardown_file() {
    stop_all
    local m
    for m in $(cat "$SUITE_TMP/mounts" 2>/dev/null); do umount "$m" 2>/dev/null || true; done
    cleanup_suite
}

storage_config() {
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d "$1" \
        "$NODE_n1_URL/api/system/storage/config" >/dev/null
}
cget() { curl -sS -u "admin:$PASS" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
sql() { psql_db "$(basename "$DB")" "$1"; }
# holders SHA256: the nodes that hold a copy, by the database, sorted
holders() { sql "SELECT string_agg(node, ',' ORDER BY node) FROM binary_locations WHERE sha256 = '$1'"; }
# files SHA256: the nodes whose filestore has the file, sorted
files() {
    local n out=""
    for n in n1 n2 n3; do
        if [ -f "$SUITE_TMP/node-$n/filestore/${1:0:2}/$1" ]; then out="$out${out:+,}$n"; fi
    done
    echo "$out"
}
url_of() { eval "echo \$NODE_$1_URL"; }
wait_down() { # NODE: until the others see it down (heartbeat older than 2 s)
    local i
    for ((i = 0; i < 60; i++)); do
        [ "$(sql "SELECT count(*) FROM cluster_nodes WHERE id = '$1' AND heartbeat > now() - interval '2 s'")" = 0 ] && return 0
        sleep 0.2
    done
    return 1
}
# placement_nodes NODE N: NODE's view of the nodes to place copies on has N
# (each node refreshes it once a second)
placement_nodes() {
    [ "$(cget "$(url_of "$1")/api/system/metrics" | awk '$1 == "granary_storage_placement_nodes" { print $2 }')" = "$2" ]
}
# redundancy_seen N: every node's storage settings say redundancy N
redundancy_seen() {
    local n
    for n in n1 n2 n3; do
        [ "$(cget "$(url_of $n)/api/system/storage/config" | jq .redundancy)" = "$1" ] || return 1
    done
}
wait_up() {
    local i
    for ((i = 0; i < 60; i++)); do
        [ "$(sql "SELECT count(*) FROM cluster_nodes WHERE id = '$1' AND state = 'active' AND heartbeat > now() - interval '1 s'")" = 1 ] && return 0
        sleep 0.2
    done
    return 1
}

@test "an upload is durable on two nodes before the 201, and readable from all three" {
    head -c 1048576 /dev/urandom >"$SUITE_TMP/a"
    local s
    s=$(sha "$SUITE_TMP/a")
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/a" "$NODE_n1_URL/libs/a.bin")" = 201 ]
    local h
    h=$(holders "$s")
    echo "holders $h files $(files "$s")"
    [ "$(echo "$h" | tr , '\n' | wc -l)" = 2 ]
    [[ "$h" == *n1* ]] # the receiving node keeps a copy
    [ "$(files "$s")" = "$h" ]
    # the block checksums are stored with the copy
    [ -f "$SUITE_TMP/node-n1/filestore/${s:0:2}/$s.crc" ]
    for n in n1 n2 n3; do
        cget -o "$SUITE_TMP/got" "$(url_of $n)/libs/a.bin"
        [ "$(sha "$SUITE_TMP/got")" = "$s" ] || { echo "wrong bytes from $n"; return 1; }
    done
    # a range from the node without a copy comes from a peer
    local other
    for n in n1 n2 n3; do [[ "$h" == *$n* ]] || other=$n; done
    [ "$(cget -r 1000-1999 "$(url_of $other)/libs/a.bin" | sha256sum | cut -d' ' -f1)" = \
        "$(tail -c +1001 "$SUITE_TMP/a" | head -c 1000 | sha256sum | cut -d' ' -f1)" ]
    # a deploy by checksum on the node without a copy works too
    [ "$(code -u "admin:$PASS" -X PUT -H 'X-Checksum-Deploy: true' -H "X-Checksum-Sha256: $s" \
        "$(url_of $other)/libs/copy-of-a.bin")" = 201 ]
}

# streaming_peer: the node (n2 or n3) receiving more than 1 MiB of an
# upload in its _pre/ right now (a copy streamed while the body arrives)
streaming_peer() {
    local n f
    for n in n2 n3; do
        for f in "$SUITE_TMP/node-$n/filestore/_pre/"*; do
            if [ -f "$f" ] && [ "$(stat -c %s "$f")" -gt 1048576 ]; then
                echo "$n"
                return 0
            fi
        done
    done
    return 1
}
streamed_copies() { cget "$NODE_n1_URL/api/system/metrics" | awk '$1 == "granary_storage_streamed_copies_total" { print $2 }'; }

@test "a large upload streams its copy to a peer while the body arrives; a peer killed mid-stream is replaced" {
    local before s peer other
    before=$(streamed_copies)
    head -c $((6 * 1048576)) /dev/urandom >"$SUITE_TMP/big"
    s=$(sha "$SUITE_TMP/big")
    # 6 MiB at 1.5 MiB/s: the peer has more than 1 MiB while the client still sends
    curl -s -o /dev/null -w '%{http_code}' --limit-rate 1500K -u "admin:$PASS" -T "$SUITE_TMP/big" \
        "$NODE_n1_URL/libs/big.bin" >"$SUITE_TMP/big.code" &
    local up=$!
    wait_until 20 streaming_peer
    peer=$(streaming_peer)
    # the body is still arriving at n1: the copy is not a second transfer after it
    [ "$(du -cb "$SUITE_TMP/node-n1/filestore/_pre/" | tail -1 | cut -f1)" -lt $((6 * 1048576)) ]
    wait "$up"
    [ "$(cat "$SUITE_TMP/big.code")" = 201 ]
    [ "$(holders "$s")" = "n1,$peer" ]
    [ "$(files "$s")" = "n1,$peer" ]
    [ "$(streamed_copies)" = $((before + 1)) ]
    # the same again, and the receiving peer dies mid-stream: the copy goes
    # to the other node after the body, the upload is not failed
    head -c $((6 * 1048576)) /dev/urandom >"$SUITE_TMP/big2"
    s=$(sha "$SUITE_TMP/big2")
    curl -s -o /dev/null -w '%{http_code}' --limit-rate 1500K -u "admin:$PASS" -T "$SUITE_TMP/big2" \
        "$NODE_n1_URL/libs/big2.bin" >"$SUITE_TMP/big2.code" &
    up=$!
    wait_until 20 streaming_peer
    peer=$(streaming_peer)
    if [ "$peer" = n2 ]; then other=n3; else other=n2; fi
    kill -9 "$(node_pid "$peer")"
    wait "$up"
    [ "$(cat "$SUITE_TMP/big2.code")" = 201 ]
    [ "$(holders "$s")" = "$(echo -e "n1\n$other" | sort | paste -sd,)" ]
    [ "$(streamed_copies)" = $((before + 1)) ]
    [ "$(cget "$(url_of "$other")/libs/big2.bin" | sha256sum | cut -d' ' -f1)" = "$s" ]
    restart_cluster_node "$peer" "$DB"
    wait_up "$peer"
    wait_until 10 placement_nodes n1 3
}

@test "storage settings and tasks refuse bad input with a JSON error and change nothing" {
    local before
    before=$(cget "$NODE_n1_URL/api/system/storage/config")
    local body
    for body in '{"redundancy":0}' '{"redundancy":2,"lenientLimit":3}' '{"redundancy":"2"}' \
        '{"scrubBytesPerSecond":-1}' '{"repairBytesPerSecond":10}' '[1]' 'not json'; do
        run curl -sS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d "$body" \
            -w ' %{http_code}' "$NODE_n1_URL/api/system/storage/config"
        [[ "$output" == *'"status":400'*" 400" ]] || { echo "$body: $output"; return 1; }
    done
    [ "$(cget "$NODE_n1_URL/api/system/storage/config")" = "$before" ]
    for g in -1 abc 1x; do
        [ "$(code -u "admin:$PASS" -X POST "$NODE_n1_URL/api/system/storage/gc?graceSeconds=$g")" = 400 ]
    done
    [ "$(code -u "admin:$PASS" -X POST "$NODE_n1_URL/api/system/storage/nope")" = 404 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/api/system/storage/gc")" = 405 ]
    [ "$(code -X POST "$NODE_n1_URL/api/system/storage/gc?graceSeconds=0")" = 401 ]
}

@test "the cluster port refuses unsigned, wrongly signed and replayed requests" {
    local s cp
    s=$(sha "$SUITE_TMP/a")
    cp=$NODE_n1_CPORT
    run curl -sS -w ' %{http_code}' "http://127.0.0.1:$cp/v1/blobs/$s"
    [[ "$output" == *"missing X-Granary-Auth"*" 401" ]]
    run curl -sS -w ' %{http_code}' -H "X-Granary-Auth: v2 n2 n1 $(date +%s000) 0011223344556677 $(printf '%064d' 0)" \
        "http://127.0.0.1:$cp/v1/blobs/$s"
    [[ "$output" == *"bad signature"*" 401" ]]
    # a genuine signature (n2's, for n1), captured and sent twice: the second is refused
    local key ms nonce mac
    key=$(cat "$SUITE_TMP/join.key")
    ms=$(date +%s%3N)
    nonce=0123456789abcdef
    mac=$(printf 'granary-v2-request\nGET\n/v1/blobs/%s\nn2\nn1\n%s\n%s' "$s" "$ms" "$nonce" |
        openssl dgst -sha256 -hmac "$key" | awk '{print $2}')
    [ "$(code -H "X-Granary-Auth: v2 n2 n1 $ms $nonce $mac" "http://127.0.0.1:$cp/v1/blobs/$s")" = 200 ]
    run curl -sS -w ' %{http_code}' -H "X-Granary-Auth: v2 n2 n1 $ms $nonce $mac" "http://127.0.0.1:$cp/v1/blobs/$s"
    [[ "$output" == *"replayed"*" 401" ]]
    # a streamed stage (chunked, no hash in the path): unsigned refused; signed,
    # staged under the hash the node computed, which its answer names
    run curl -sS -w ' %{http_code}' -T - "http://127.0.0.1:$cp/v1/stages" <<<"hello"
    [[ "$output" == *"missing X-Granary-Auth"*" 401" ]]
    nonce=0123456789abcdee
    mac=$(printf 'granary-v2-request\nPUT\n/v1/stages\nn2\nn1\n%s\n%s' "$ms" "$nonce" |
        openssl dgst -sha256 -hmac "$key" | awk '{print $2}')
    run curl -sS -w ' %{http_code}' -T - -H "X-Granary-Auth: v2 n2 n1 $ms $nonce $mac" \
        "http://127.0.0.1:$cp/v1/stages" <<<"hello"
    echo "$output"
    [[ "$output" == *" 201" ]]
    [ "$(echo "${output% *}" | jq -r .sha256)" = "$(echo hello | sha256sum | cut -d' ' -f1)" ]
    [ "$(echo "${output% *}" | jq -r .size)" = 6 ]
    [ -f "$SUITE_TMP/node-n1/filestore/_pre/stage-$(echo "${output% *}" | jq -r .stage)" ]
    # the public port does not serve cluster calls
    [ "$(code "$NODE_n1_URL/v1/blobs/$s")" != 200 ]
    [ "$(code -T - "$NODE_n1_URL/v1/stages" <<<"hello")" != 201 ]
}

@test "redundancy 3 and lenient uploads: a down node is repaired, extra copies trimmed" {
    storage_config '{"redundancy":3,"lenientLimit":1}'
    head -c 200000 /dev/urandom >"$SUITE_TMP/r3"
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/r3" "$NODE_n1_URL/libs/r3.bin")" = 201 ]
    [ "$(holders "$(sha "$SUITE_TMP/r3")")" = n1,n2,n3 ]
    # n3 stops answering: uploads go on with two copies, recorded as under-replicated
    kill -STOP "$(node_pid n3)"
    wait_down n3
    wait_until 10 placement_nodes n2 2
    head -c 200000 /dev/urandom >"$SUITE_TMP/r3b"
    local s
    s=$(sha "$SUITE_TMP/r3b")
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/r3b" "$NODE_n2_URL/libs/r3b.bin")" = 201 ]
    [ "$(holders "$s")" = n1,n2 ]
    [ "$(cget "$NODE_n1_URL/api/system/cluster" | jq .storage.underReplicated)" -ge 1 ]
    # lenient limit 3 with a node down: 503 and nothing committed
    storage_config '{"redundancy":3,"lenientLimit":3}'
    head -c 1000 /dev/urandom >"$SUITE_TMP/r3c"
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/r3c" "$NODE_n1_URL/libs/r3c.bin")" = 503 ]
    [ "$(code -u "admin:$PASS" "$NODE_n2_URL/libs/r3c.bin")" = 404 ]
    [ -z "$(holders "$(sha "$SUITE_TMP/r3c")")" ]
    storage_config '{"redundancy":3,"lenientLimit":1}'
    kill -CONT "$(node_pid n3)"
    wait_up n3
    run cget -X POST "$NODE_n2_URL/api/system/storage/optimize"
    echo "$output"
    [ "$(echo "$output" | jq .failed)" = 0 ]
    [ "$(holders "$s")" = n1,n2,n3 ]
    [ "$(files "$s")" = n1,n2,n3 ]
    [ "$(cget "$NODE_n3_URL/api/storageinfo" | jq .replication.underReplicated)" = 0 ]
    # back to 2: repair trims the third copy, file and location (the
    # primary, woken by the change, may do it before this call does)
    storage_config '{"redundancy":2,"lenientLimit":1}'
    run cget -X POST "$NODE_n3_URL/api/system/storage/optimize"
    echo "$output"
    [ "$(echo "$output" | jq .failed)" = 0 ]
    [ "$(sql "SELECT count(*) FROM binary_locations GROUP BY sha256 HAVING count(*) > 2")" = "" ]
    [ "$(holders "$s" | tr , '\n' | wc -l)" = 2 ]
    [ "$(files "$s")" = "$(holders "$s")" ]
    for n in n1 n2 n3; do
        [ "$(cget "$(url_of $n)/libs/r3b.bin" | sha256sum | cut -d' ' -f1)" = "$s" ]
    done
}

@test "kill -9 a node during 200 uploads: every acknowledged upload is readable from every survivor" {
    python3 tests/integration/tools/blob_load.py upload 200 "$SUITE_TMP/acked" "$PASS" libs \
        "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL" >"$SUITE_TMP/load.out" 2>&1 &
    local load=$!
    sleep 1.5
    kill -9 "$(node_pid n3)"
    wait "$load"
    cat "$SUITE_TMP/load.out"
    local acked
    acked=$(wc -l <"$SUITE_TMP/acked")
    [ "$acked" -ge 100 ]
    run python3 tests/integration/tools/blob_load.py verify "$SUITE_TMP/acked" "$PASS" libs \
        "$NODE_n1_URL" "$NODE_n2_URL"
    echo "$output" | tail -3
    [ "$status" -eq 0 ]
    [[ "${lines[-1]}" == "checked $((acked * 2)) bad 0" ]]
    # n3 comes back: it serves them all too, and repair restores redundancy
    restart_cluster_node n3 "$DB"
    wait_up n3
    cget -X POST "$NODE_n1_URL/api/system/storage/optimize" >/dev/null
    run python3 tests/integration/tools/blob_load.py verify "$SUITE_TMP/acked" "$PASS" libs "$NODE_n3_URL"
    [ "$status" -eq 0 ]
    [ "$(cget "$NODE_n1_URL/api/system/cluster" | jq .storage.underReplicated)" = 0 ]
}

@test "a flipped byte is never served as good content; a retry gets the right bytes; scrub heals" {
    head -c 600000 /dev/urandom >"$SUITE_TMP/rot"
    local s h bad f
    s=$(sha "$SUITE_TMP/rot")
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/rot" "$NODE_n1_URL/libs/rot.bin")" = 201 ]
    h=$(holders "$s")
    bad=${h%%,*}
    f=$SUITE_TMP/node-$bad/filestore/${s:0:2}/$s
    # flip one byte in the middle of the copy on one holder
    flip_byte "$f" 300000
    refute cmp -s "$f" "$SUITE_TMP/rot"
    local n i good=0 wrong=0 cut=0
    for i in 1 2 3; do
        for n in n1 n2 n3; do
            if curl -sS -u "admin:$PASS" -o "$SUITE_TMP/got" "$(url_of $n)/libs/rot.bin" 2>/dev/null; then
                if [ "$(sha "$SUITE_TMP/got")" = "$s" ]; then good=$((good + 1)); else wrong=$((wrong + 1)); fi
            else
                cut=$((cut + 1)) # the connection was cut: the client sees an error
            fi
        done
    done
    echo "good $good wrong $wrong cut $cut"
    [ "$wrong" = 0 ]
    [ "$good" -ge 8 ] # at most the first read through the bad copy is cut
    # the bad copy went to quarantine
    [ -n "$(ls "$SUITE_TMP/node-$bad/filestore/_quarantine/")" ]
    # repair restores the second copy
    cget -X POST "$NODE_n1_URL/api/system/storage/optimize" >/dev/null
    [ "$(holders "$s" | tr , '\n' | wc -l)" = 2 ]

    # bit rot found by scrub: one pass quarantines and heals it
    h=$(holders "$s")
    bad=${h%%,*}
    f=$SUITE_TMP/node-$bad/filestore/${s:0:2}/$s
    flip_byte "$f" 10
    refute cmp -s "$f" "$SUITE_TMP/rot"
    run cget -X POST "$(url_of "$bad")/api/system/storage/scrub"
    echo "$output"
    [ "$(echo "$output" | jq .bad)" = 1 ]
    [ "$(echo "$output" | jq .healed)" = 1 ]
    cmp "$f" "$SUITE_TMP/rot"
    [ "$(holders "$s")" = "$h" ]
    [ "$(cget "$(url_of "$bad")/api/system/metrics" | awk '$1 == "granary_storage_scrub_bad_total" { print $2 }')" -ge 1 ]
}

# hot NODE hits|stale: that node's hot-copy counter
hot() { cget "$(url_of "$1")/api/system/metrics" | awk -v m="granary_storage_hot_$2_total" '$1 == m { print $2 }'; }

@test "hot copies: a small binary is served from memory while its file is unchanged; a flipped byte or a moved copy is seen at once" {
    head -c 8000 /dev/urandom >"$SUITE_TMP/hot"
    local s f hits stale
    s=$(sha "$SUITE_TMP/hot")
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/hot" "$NODE_n1_URL/libs/hot.bin")" = 201 ]
    f=$SUITE_TMP/node-n1/filestore/${s:0:2}/$s # the receiving node keeps a copy
    cget -o "$SUITE_TMP/got" "$NODE_n1_URL/libs/hot.bin" # read, checked, kept
    hits=$(hot n1 hits)
    cget -o "$SUITE_TMP/got" "$NODE_n1_URL/libs/hot.bin"
    [ "$(sha "$SUITE_TMP/got")" = "$s" ]
    [ "$(hot n1 hits)" = $((hits + 1)) ]
    # a byte flipped on disk: the hot copy is dropped, the file is read and
    # checked again, quarantined, and a peer serves the right bytes
    stale=$(hot n1 stale)
    flip_byte "$f" 4000
    cget -o "$SUITE_TMP/got" "$NODE_n1_URL/libs/hot.bin"
    [ "$(sha "$SUITE_TMP/got")" = "$s" ]
    [ "$(hot n1 stale)" = $((stale + 1)) ]
    [ "$(hot n1 hits)" = $((hits + 1)) ]
    ls "$SUITE_TMP/node-n1/filestore/_quarantine/" | grep -q "^$s"
    # another one becomes hot, then its copy is moved away by hand
    head -c 8000 /dev/urandom >"$SUITE_TMP/hot2"
    s=$(sha "$SUITE_TMP/hot2")
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/hot2" "$NODE_n1_URL/libs/hot2.bin")" = 201 ]
    f=$SUITE_TMP/node-n1/filestore/${s:0:2}/$s
    cget -o "$SUITE_TMP/got" "$NODE_n1_URL/libs/hot2.bin"
    hits=$(hot n1 hits)
    stale=$(hot n1 stale)
    mv "$f" "$SUITE_TMP/moved"
    cget -o "$SUITE_TMP/got" "$NODE_n1_URL/libs/hot2.bin" # from the peer
    [ "$(sha "$SUITE_TMP/got")" = "$s" ]
    [ "$(hot n1 hits)" = "$hits" ]
    [ "$(hot n1 stale)" = $((stale + 1)) ]
    mv "$SUITE_TMP/moved" "$f"
    # on the node without a copy: its peer cache's copy becomes hot the same
    # way, and is dropped when that copy goes (an eviction)
    local n other
    for n in n1 n2 n3; do [[ "$(holders "$s")" == *$n* ]] || other=$n; done
    cget -o "$SUITE_TMP/got" "$(url_of "$other")/libs/hot2.bin" # from a holder, into the cache
    cget -o "$SUITE_TMP/got" "$(url_of "$other")/libs/hot2.bin" # from the cache, made hot
    hits=$(hot "$other" hits)
    stale=$(hot "$other" stale)
    cget -o "$SUITE_TMP/got" "$(url_of "$other")/libs/hot2.bin"
    [ "$(sha "$SUITE_TMP/got")" = "$s" ]
    [ "$(hot "$other" hits)" = $((hits + 1)) ]
    rm "$SUITE_TMP/node-$other/peer-cache/${s:0:2}/$s"
    cget -o "$SUITE_TMP/got" "$(url_of "$other")/libs/hot2.bin"
    [ "$(sha "$SUITE_TMP/got")" = "$s" ]
    [ "$(hot "$other" stale)" = $((stale + 1)) ]
}

@test "scrub deletes old files that no binary knows of, and keeps recent ones" {
    local d o
    for o in old new; do
        head -c 5000 /dev/urandom >"$SUITE_TMP/orphan-$o"
        eval "s_$o=$(sha "$SUITE_TMP/orphan-$o")"
    done
    for o in old new; do
        eval "d=\$s_$o"
        mkdir -p "$SUITE_TMP/node-n1/filestore/${d:0:2}"
        cp "$SUITE_TMP/orphan-$o" "$SUITE_TMP/node-n1/filestore/${d:0:2}/$d"
    done
    touch -d '2 hours ago' "$SUITE_TMP/node-n1/filestore/${s_old:0:2}/$s_old"
    run cget -X POST "$NODE_n1_URL/api/system/storage/scrub"
    echo "$output"
    [ "$(echo "$output" | jq .orphansDeleted)" = 1 ]
    [ "$(echo "$output" | jq .bad)" = 0 ]
    [ ! -e "$SUITE_TMP/node-n1/filestore/${s_old:0:2}/$s_old" ]
    [ -e "$SUITE_TMP/node-n1/filestore/${s_new:0:2}/$s_new" ]
}

@test "garbage collection with grace 0 in a loop while clients upload, delete and re-upload: nothing lost" {
    run python3 tests/integration/tools/blob_load.py gcloop 20 "$PASS" libs \
        "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"
    echo "$output" | tail -5
    [ "$status" -eq 0 ]
    [[ "${lines[-1]}" == *" lost 0 failed 0 "* ]]
}

@test "garbage collection frees the space in the same run, on every holder" {
    head -c 300000 /dev/urandom >"$SUITE_TMP/gone"
    local s h
    s=$(sha "$SUITE_TMP/gone")
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/gone" "$NODE_n2_URL/libs/gone.bin")" = 201 ]
    h=$(holders "$s")
    [ "$(files "$s")" = "$h" ]
    [ "$(code -u "admin:$PASS" -X DELETE "$NODE_n3_URL/libs/gone.bin")" = 204 ]
    # inside the grace period nothing goes
    run cget -X POST "$NODE_n1_URL/api/system/storage/gc"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq .bytesFreed)" = 0 ]
    [ "$(files "$s")" = "$h" ]
    run cget -X POST "$NODE_n1_URL/api/system/storage/gc?graceSeconds=0"
    echo "$output"
    [ "$(echo "$output" | jq .bytesFreed)" -ge 600000 ]
    [ -z "$(files "$s")" ]
    [ -z "$(holders "$s")" ]
    [ "$(sql "SELECT count(*) FROM binaries WHERE sha256 = '$s'")" = 0 ]
    [ "$(code -u "admin:$PASS" -X PUT -H 'X-Checksum-Deploy: true' -H "X-Checksum-Sha256: $s" \
        "$NODE_n1_URL/libs/gone-again.bin")" = 404 ]
    run cget "$NODE_n1_URL/api/system/metrics"
    [[ "$output" == *"granary_storage_gc_bytes_freed_total"* ]]
}

@test "a node that comes back with an empty disk gets its copies back from repair" {
    local i
    for i in 1 2 3 4 5 6; do
        head -c 100000 /dev/urandom >"$SUITE_TMP/e$i"
        [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/e$i" "$NODE_n1_URL/libs/empty/e$i")" = 201 ]
    done
    local before
    before=$(sql "SELECT count(*) FROM binary_locations WHERE node = 'n2'")
    [ "$before" -ge 1 ]
    stop_node n2
    rm -rf "$SUITE_TMP/node-n2/filestore"
    restart_cluster_node n2 "$DB"
    wait_up n2
    # (the primary may already be repairing: only the log line is certain)
    grep -q 'filestore is new' "$SUITE_TMP/node-n2/stderr.log"
    refute grep -q 'could not forget' "$SUITE_TMP/node-n2/stderr.log"
    # a repair the primary started on its own answers 409 until it ends
    local tries=0
    while :; do
        run cget -X POST "$NODE_n3_URL/api/system/storage/optimize"
        echo "$output"
        [[ "$output" == *"already running"* ]] || break
        tries=$((tries + 1))
        [ $tries -lt 120 ]
        sleep 0.5
    done
    [ "$(echo "$output" | jq .failed)" = 0 ]
    [ "$(cget "$NODE_n1_URL/api/system/cluster" | jq .storage.underReplicated)" = 0 ]
    # (which nodes hold the copies is placement's choice: n2 need not get them back)
    local s
    for i in 1 2 3 4 5 6; do
        s=$(sha "$SUITE_TMP/e$i")
        [ "$(holders "$s" | tr , '\n' | wc -l)" = 2 ]
        [ "$(files "$s")" = "$(holders "$s")" ]
        [ "$(cget "$NODE_n2_URL/libs/empty/e$i" | sha256sum | cut -d' ' -f1)" = "$s" ]
    done
}

@test "a node whose disk fills up: uploads go to other nodes or fail cleanly, nothing half-written" {
    [ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs"
    mkdir -p "$SUITE_TMP/node-n4/filestore"
    mount -t tmpfs -o size=3m tmpfs "$SUITE_TMP/node-n4/filestore" || skip "cannot mount a tmpfs"
    echo "$SUITE_TMP/node-n4/filestore" >>"$SUITE_TMP/mounts"
    start_cluster_node n4 "$DB"
    wait_up n4
    wait_until 10 placement_nodes n1 4
    local i st ok=0 refused=0 other=0
    : >"$SUITE_TMP/full-acked"
    for i in $(seq 16); do
        head -c 600000 /dev/urandom >"$SUITE_TMP/full$i"
        # every other upload goes through the node that fills up
        local via=$NODE_n1_URL
        if ((i % 2)); then via=$NODE_n4_URL; fi
        st=$(curl -sS -u "admin:$PASS" -T "$SUITE_TMP/full$i" -o "$SUITE_TMP/full-out" -w '%{http_code}' "$via/libs/full/f$i")
        case $st in
        201)
            ok=$((ok + 1))
            echo "full/f$i $(sha "$SUITE_TMP/full$i")" >>"$SUITE_TMP/full-acked"
            ;;
        507)
            refused=$((refused + 1))
            [ "$(jq -r '.errors[0].status' "$SUITE_TMP/full-out")" = 507 ]
            [ "$(code -u "admin:$PASS" "$NODE_n2_URL/libs/full/f$i")" = 404 ]
            ;;
        *) other=$((other + 1)); cat "$SUITE_TMP/full-out" ;;
        esac
    done
    echo "stored $ok, refused $refused (507), other $other; n4 holds $(sql "SELECT count(*) FROM binary_locations WHERE node = 'n4'")"
    [ "$other" = 0 ]
    [ "$refused" -ge 1 ]            # the full node refused what it could not hold
    [ "$ok" -ge 8 ]                 # uploads through n1 found room elsewhere
    # every acknowledged upload is complete, with its copies, on every node
    run python3 tests/integration/tools/blob_load.py verify "$SUITE_TMP/full-acked" "$PASS" libs \
        "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL" "$NODE_n4_URL"
    echo "$output" | tail -2
    [ "$status" -eq 0 ]
    while read -r p s; do
        [ "$(holders "$s" | tr , '\n' | wc -l)" = 2 ] || { echo "$p has $(holders "$s")"; return 1; }
    done <"$SUITE_TMP/full-acked"
    # nothing half-written on the full node: no leftovers, every copy verifies
    [ -z "$(ls -A "$SUITE_TMP/node-n4/filestore/_pre")" ]
    run cget -X POST "$NODE_n4_URL/api/system/storage/scrub"
    echo "$output"
    [ "$(echo "$output" | jq .bad)" = 0 ]
    stop_node n4
    umount "$SUITE_TMP/node-n4/filestore"
}

# mvalue NODE METRIC: a metric of a node
mvalue() { cget "$(url_of "$1")/api/system/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }

@test "reads from a peer: a moved copy costs one retry; warm reads ask PostgreSQL for no holder and reuse the connection" {
    # n2 without its peer cache: every read here goes to a peer
    stop_node n2
    restart_cluster_node n2 "$DB" --cache-max-bytes 0
    # redundancy 1, so that a third node can take the only copy
    storage_config '{"redundancy":1,"lenientLimit":1,"gcIntervalSeconds":0,"scrubBytesPerSecond":0}'
    wait_until 10 redundancy_seen 1
    head -c 300000 /dev/urandom >"$SUITE_TMP/hc"
    local s
    s=$(sha "$SUITE_TMP/hc")
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/hc" "$NODE_n1_URL/libs/hc.bin")" = 201 ]
    [ "$(holders "$s")" = n1 ]
    # n2 has no copy: it reads from n1, and keeps n1 as the holder
    cget -o "$SUITE_TMP/got" "$NODE_n2_URL/libs/hc.bin"
    cmp "$SUITE_TMP/got" "$SUITE_TMP/hc"
    # the copy moves from n1 to n3 behind n2's back
    local d1=$SUITE_TMP/node-n1/filestore/${s:0:2} d3=$SUITE_TMP/node-n3/filestore/${s:0:2}
    mkdir -p "$d3"
    cp "$d1/$s" "$d1/$s.crc" "$d3/"
    sql "INSERT INTO binary_locations (sha256, node) VALUES ('$s', 'n3')"
    rm "$d1/$s" "$d1/$s.crc"
    sql "DELETE FROM binary_locations WHERE sha256 = '$s' AND node = 'n1'"
    local stale q1
    stale=$(mvalue n2 granary_storage_holder_cache_stale_total)
    q1=$(mvalue n2 granary_storage_holder_queries_total)
    # the cached holder answers 404: n2 asks PostgreSQL again and reads from n3
    cget -o "$SUITE_TMP/got" "$NODE_n2_URL/libs/hc.bin"
    cmp "$SUITE_TMP/got" "$SUITE_TMP/hc"
    [ "$(mvalue n2 granary_storage_holder_cache_stale_total)" = $((stale + 1)) ]
    [ "$(mvalue n2 granary_storage_holder_queries_total)" = $((q1 + 1)) ]
    # warm reads: the holder comes from the cache, over a kept connection
    local q2 h2 c2 q3 h3 c3 i
    q2=$(mvalue n2 granary_storage_holder_queries_total)
    h2=$(mvalue n2 granary_storage_holder_cache_hits_total)
    c2=$(mvalue n2 granary_storage_peer_connections_total)
    for i in $(seq 20); do
        cget -o "$SUITE_TMP/got" "$NODE_n2_URL/libs/hc.bin"
        cmp "$SUITE_TMP/got" "$SUITE_TMP/hc"
    done
    q3=$(mvalue n2 granary_storage_holder_queries_total)
    h3=$(mvalue n2 granary_storage_holder_cache_hits_total)
    c3=$(mvalue n2 granary_storage_peer_connections_total)
    echo "holder queries $q2 -> $q3, cache hits $h2 -> $h3, connections $c2 -> $c3"
    # an entry lives 10 s: one expiry is allowed on a slow machine
    [ $((q3 - q2)) -le 1 ]
    [ $((h3 - h2)) -ge 19 ]
    [ $((c3 - c2)) -le 2 ] # one connection per request before
    [ "$(mvalue n2 granary_storage_cache_fills_total)" = 0 ]
    stop_node n2
    restart_cluster_node n2 "$DB"
    storage_config '{"redundancy":2,"lenientLimit":1,"gcIntervalSeconds":0,"scrubBytesPerSecond":0}'
}

@test "the peer cache: a node without a copy keeps a checked copy of what it read, serves it, drops a bad one; never a location" {
    storage_config '{"redundancy":1,"lenientLimit":1,"gcIntervalSeconds":0,"scrubBytesPerSecond":0}'
    wait_until 10 redundancy_seen 1
    head -c 700000 /dev/urandom >"$SUITE_TMP/pc"
    local s f fills hits reads
    s=$(sha "$SUITE_TMP/pc")
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/pc" "$NODE_n1_URL/libs/pc.bin")" = 201 ]
    [ "$(holders "$s")" = n1 ]
    f=$SUITE_TMP/node-n2/peer-cache/${s:0:2}/$s
    fills=$(mvalue n2 granary_storage_cache_fills_total)
    hits=$(mvalue n2 granary_storage_cache_hits_total)
    # the first read streams from n1 and keeps the bytes
    cget -o "$SUITE_TMP/got" "$NODE_n2_URL/libs/pc.bin"
    cmp "$SUITE_TMP/got" "$SUITE_TMP/pc"
    [ "$(mvalue n2 granary_storage_cache_fills_total)" = $((fills + 1)) ]
    cmp "$f" "$SUITE_TMP/pc"
    # a cached copy is no location: not in binary_locations, not in the filestore
    [ "$(holders "$s")" = n1 ]
    [ "$(files "$s")" = n1 ]
    # the next reads come from it, not from n1; a range too
    reads=$(mvalue n2 granary_storage_remote_reads_total)
    cget -o "$SUITE_TMP/got" "$NODE_n2_URL/libs/pc.bin"
    cmp "$SUITE_TMP/got" "$SUITE_TMP/pc"
    [ "$(cget -r 1000-1999 "$NODE_n2_URL/libs/pc.bin" | cmp - <(tail -c +1001 "$SUITE_TMP/pc" | head -c 1000) && echo same)" = same ]
    [ "$(mvalue n2 granary_storage_cache_hits_total)" -ge $((hits + 2)) ]
    [ "$(mvalue n2 granary_storage_remote_reads_total)" = "$reads" ]
    # a flipped byte in the cached copy: never served; dropped, read from n1 again
    flip_byte "$f" 400000
    run curl -fsS -u "admin:$PASS" -o "$SUITE_TMP/got" "$NODE_n2_URL/libs/pc.bin"
    if [ "$status" = 0 ]; then cmp "$SUITE_TMP/got" "$SUITE_TMP/pc"; fi
    grep -q "bad cached copy of $s on this node" "$SUITE_TMP/node-n2/stderr.log"
    cget -o "$SUITE_TMP/got" "$NODE_n2_URL/libs/pc.bin"
    cmp "$SUITE_TMP/got" "$SUITE_TMP/pc"
    # n1's copy was not suspected
    [ "$(holders "$s")" = n1 ]
    cmp "$SUITE_TMP/node-n1/filestore/${s:0:2}/$s" "$SUITE_TMP/pc"
    storage_config '{"redundancy":2,"lenientLimit":1,"gcIntervalSeconds":0,"scrubBytesPerSecond":0}'
}

@test "a peer that sends wrong bytes: the reader never serves them (signed block checksums) and drops that holder" {
    local mode s h reader port fk n
    # one port for both fakes: the nodes' view of fk (its URL) stays right
    port=$(free_port)
    for mode in crc nocrc; do
        head -c 200000 /dev/urandom >"$SUITE_TMP/fk-$mode"
        s=$(sha "$SUITE_TMP/fk-$mode")
        [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/fk-$mode" "$NODE_n1_URL/libs/fk-$mode.bin")" = 201 ]
        h=$(holders "$s")
        for n in n1 n2 n3; do [[ "$h" == *$n* ]] || reader=$n; done
        # a fake node whose cluster port sends the binary with one byte changed
        : >"$SUITE_TMP/fk.log"
        python3 tests/integration/tools/fake_holder.py "$port" "$SUITE_TMP/fk-$mode" "$mode" "$SUITE_TMP/fk.log" \
            "$SUITE_TMP/join.key" &
        fk=$!
        echo "$fk" >>"$SUITE_TMP/pids"
        for i in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port/v1/ping" 2>/dev/null && break; sleep 0.1; done
        # alive for an hour by its heartbeat, and the only holder the database knows
        sql "INSERT INTO cluster_nodes (id, public_url, cluster_url, bus_endpoint, version, heartbeat)
             VALUES ('fk', 'http://127.0.0.1:$port', 'http://127.0.0.1:$port', 'tcp://127.0.0.1:$(free_port)',
                     'test', now() + interval '1 hour')
             ON CONFLICT (id) DO UPDATE SET cluster_url = EXCLUDED.cluster_url, public_url = EXCLUDED.public_url,
                     heartbeat = EXCLUDED.heartbeat, state = 'active'"
        sql "DELETE FROM binary_locations WHERE sha256 = '$s'; INSERT INTO binary_locations (sha256, node) VALUES ('$s', 'fk')"
        # every node's view of the live nodes has fk (n4 is gone again)
        wait_until 10 placement_nodes "$reader" 4
        run curl -fsS -u "admin:$PASS" -o "$SUITE_TMP/got" "$(url_of "$reader")/libs/fk-$mode.bin"
        echo "$mode from $reader: curl $status, $(stat -c %s "$SUITE_TMP/got" 2>/dev/null) bytes; fake saw: $(cat "$SUITE_TMP/fk.log")"
        # never a complete answer with wrong bytes: the connection is cut (crc: at
        # the second block), or no answer starts (nocrc: 503)
        [ "$status" -ne 0 ]
        run cmp -s "$SUITE_TMP/got" "$SUITE_TMP/fk-$mode"
        [ "$status" -ne 0 ]
        if [ "$mode" = crc ]; then
            grep -q "copy of $s from fk refused: a block failed its CRC32C" "$SUITE_TMP/node-$reader/stderr.log"
        else
            grep -q "copy of $s from fk refused: its signed answer has no checksums" "$SUITE_TMP/node-$reader/stderr.log"
        fi
        # the holder checked its copy before sending it: the copy is not
        # quarantined on the network's word (64_security_cluster_port.bats)
        [ "$(holders "$s")" = fk ]
        # and the reader's peer cache kept none of those bytes
        refute test -e "$SUITE_TMP/node-$reader/peer-cache/${s:0:2}/$s"
        kill "$fk"
        wait "$fk" || true
        # the real copies again: the next read finds them (the bad holder was not kept)
        sql "DELETE FROM binary_locations WHERE sha256 = '$s';
             INSERT INTO binary_locations (sha256, node) SELECT '$s', unnest(string_to_array('$h', ','))"
        cget -o "$SUITE_TMP/got" "$(url_of "$reader")/libs/fk-$mode.bin"
        cmp "$SUITE_TMP/got" "$SUITE_TMP/fk-$mode"
    done
    sql "DELETE FROM cluster_nodes WHERE id = 'fk'"
}
