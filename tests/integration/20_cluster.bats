#!/usr/bin/env bats
# Three real nodes on one PostgreSQL: membership, coherent caches, the
# primary lease, restarts and faults (docs/cluster.md, "Caches that are never
# stale" and "The primary").
load helpers

setup_file() {
    start_pg
    export DB=$(new_db cluster)
    export LEASE_MS=1500
    start_cluster_node n1 "$DB" --remove-down-after 3
    start_cluster_node n2 "$DB" --remove-down-after 3
    start_cluster_node n3 "$DB" --remove-down-after 3
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL NODE_n1_DIR NODE_n2_DIR NODE_n3_DIR
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"generic"}' "$NODE_n1_URL/api/repositories/libs" >/dev/null
}
teardown_file() { cleanup_suite; }

cget() { curl -sS -u "admin:$PASS" "$@"; }
# The sha256 a node reports for a path: metadata is what the cache protocol
# keeps coherent, and what these tests read on the other nodes (binaries
# are 21_blobs.bats' subject).
csum() { curl -sS -u "admin:$PASS" "$1/api/storage/$2" | jq -r '.checksums.sha256 // .errors[0].status'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
cluster_json() { cget "$NODE_n1_URL/api/system/cluster"; }
n3_state_is() { # STATE: within 5 s (a few heartbeats, however loaded the machine)
    local i st=""
    for i in $(seq 50); do
        st=$(cluster_json | jq -r '.nodes[] | select(.id=="n3") | .state')
        [ "$st" = "$1" ] && return 0
        sleep 0.1
    done
    echo "n3 is $st, not $1"
    return 1
}

@test "three nodes are members, active, with exactly one primary" {
    run cluster_json
    echo "$output"
    [ "$(echo "$output" | jq '.nodes | length')" = 3 ]
    [ "$(echo "$output" | jq -r '[.nodes[].state] | unique | join(",")')" = active ]
    local p
    p=$(echo "$output" | jq -r .primary)
    [[ "$p" =~ ^n[123]$ ]]
    for f in id state zone url version heartbeat leaseExpiry cacheHitRatio; do
        [ "$(echo "$output" | jq -r ".nodes[0].$f")" != null ] || { echo "missing $f"; return 1; }
    done
    # every node sees the same primary
    [ "$(cget "$NODE_n2_URL/api/system/cluster" | jq -r .primary)" = "$p" ]
    [ "$(cget "$NODE_n3_URL/api/system/cluster" | jq -r .primary)" = "$p" ]
}

@test "a node with the wrong join key, or with none, cannot join" {
    head -c 32 /dev/urandom | base64 >"$SUITE_TMP/wrong.key"
    run "$GRANARYD" --data-dir "$SUITE_TMP/wrongkey" --listen 127.0.0.1:$(free_port) \
        --database-url "$DB" --join-key-file "$SUITE_TMP/wrong.key" --node-id bad \
        --bus-listen 127.0.0.1:$(free_port)
    [ "$status" -ne 0 ]
    [[ "$output" == *"join key is not the cluster's"* ]]
    run "$GRANARYD" --data-dir "$SUITE_TMP/nokey" --listen 127.0.0.1:$(free_port) --database-url "$DB"
    [ "$status" -ne 0 ]
    [[ "$output" == *"belongs to a cluster"* ]]
    [ "$(cluster_json | jq '.nodes | length')" = 3 ]
}

@test "read-after-write across nodes: 1,000 rounds of mixed writes, zero stale reads" {
    run python3 tests/integration/tools/rw_check.py 1000 "$PASS" "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"
    echo "$output" | tail -5
    [ "$status" -eq 0 ]
    [[ "${lines[-1]}" == *"stale 0 failed 0"* ]]
}

@test "a stopped node delays writes by at most a lease and serves nothing stale after" {
    echo old >"$SUITE_TMP/old"
    echo new >"$SUITE_TMP/new"
    cget -T "$SUITE_TMP/old" "$NODE_n1_URL/libs/stop/k" >/dev/null
    [ "$(csum "$NODE_n3_URL" libs/stop/k)" = "$(sha "$SUITE_TMP/old")" ] # warm on n3
    local pid3
    pid3=$(node_pid n3)
    kill -STOP "$pid3"
    local t0 t1
    t0=$(date +%s%N)
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/new" "$NODE_n1_URL/libs/stop/k")" = 201 ]
    t1=$(date +%s%N)
    local ms=$(((t1 - t0) / 1000000))
    echo "write with a stopped peer took $ms ms (ack timeout 1000 ms, lease 1500 ms)"
    # the protocol's bound: the ack timeout, then at most the lease plus
    # 200 ms; one more second of margin for a loaded machine
    [ "$ms" -lt $((1000 + 1500 + 200 + 1000)) ]
    sleep 1.5 # twice the lease in all
    kill -CONT "$pid3"
    [ "$(csum "$NODE_n3_URL" libs/stop/k)" = "$(sha "$SUITE_TMP/new")" ]
    [ "$(csum "$NODE_n2_URL" libs/stop/k)" = "$(sha "$SUITE_TMP/new")" ]
}

@test "the fill race is closed: a reader paused between its read and its fill stores nothing stale" {
    local db2 hooks
    hooks=$PWD/$BUILD/testhooks/granaryd
    [ -x "$hooks" ]
    echo v1 >"$SUITE_TMP/v1"
    echo v2 >"$SUITE_TMP/v2"
    cget -T "$SUITE_TMP/v1" "$NODE_n1_URL/libs/race/racekey" >/dev/null
    # a fourth node built with the test hook pauses fills of keys containing "racekey"
    GRANARYD=$hooks GRANARY_TEST_FILL_PAUSE=racekey start_cluster_node n4 "$DB"
    local url4=$NODE_n4_URL
    csum "$url4" libs/race/racekey >"$SUITE_TMP/first" &
    local reader=$!
    # the reader has read v1 from PostgreSQL and waits before its fill
    wait_until 10 grep -q "pausing the fill" "$NODE_n4_DIR/stderr.log"
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/v2" "$NODE_n1_URL/libs/race/racekey")" = 201 ]
    wait $reader
    # the paused reader answered what it read; its fill must have been refused
    grep -q "pausing the fill" "$NODE_n4_DIR/stderr.log"
    [ "$(cat "$SUITE_TMP/first")" = "$(sha "$SUITE_TMP/v1")" ]
    [ "$(csum "$url4" libs/race/racekey)" = "$(sha "$SUITE_TMP/v2")" ]
    stop_node n4
}

@test "restart a node: it rejoins and serves writes made while it was down" {
    echo before >"$SUITE_TMP/b"
    echo after >"$SUITE_TMP/a"
    cget -T "$SUITE_TMP/b" "$NODE_n1_URL/libs/restart/k" >/dev/null
    [ "$(csum "$NODE_n2_URL" libs/restart/k)" = "$(sha "$SUITE_TMP/b")" ]
    stop_node n2
    cget -T "$SUITE_TMP/a" "$NODE_n1_URL/libs/restart/k" >/dev/null
    restart_cluster_node n2 "$DB" --remove-down-after 3
    [ "$(csum "$NODE_n2_URL" libs/restart/k)" = "$(sha "$SUITE_TMP/a")" ]
    [ "$(cget "$NODE_n2_URL/api/system/cluster" | jq -r '.nodes[] | select(.id=="n2") | .state')" = active ]
}

@test "drain: readiness 503, requests still served, back with drain=false" {
    cget -X POST -H 'Content-Type: application/json' -d '{"drain":true}' "$NODE_n3_URL/api/system/maintenance" >/dev/null
    [ "$(code "$NODE_n3_URL/api/v1/system/readiness")" = 503 ]
    [ "$(code -u "admin:$PASS" "$NODE_n3_URL/api/storage/libs/restart/k")" = 200 ]
    # the next heartbeat records it (a heartbeat already in flight may not)
    n3_state_is draining
    cget -X POST -H 'Content-Type: application/json' -d '{"drain":false}' "$NODE_n3_URL/api/system/maintenance" >/dev/null
    [ "$(code "$NODE_n3_URL/api/v1/system/readiness")" = 200 ]
    n3_state_is active
}

@test "a preferred primary takes the role while alive; a stopped node can be removed by an admin" {
    start_cluster_node n5 "$DB" --preferred-primary true
    local p=""
    for i in $(seq 40); do
        p=$(cluster_json | jq -r .primary)
        [ "$p" = n5 ] && break
        sleep 0.25
    done
    [ "$p" = n5 ]
    cget "$NODE_n5_URL/api/system/metrics" | grep -q '^granary_cluster_primary 1'
    # an alive node cannot be removed
    [ "$(code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/api/system/cluster/nodes/n5")" = 409 ]
    stop_node n5
    # the role moves on at once (released at a clean stop)
    for i in $(seq 40); do
        p=$(cluster_json | jq -r .primary)
        [ -n "$p" ] && [ "$p" != n5 ] && [ "$p" != null ] && break
        sleep 0.25
    done
    [ -n "$p" ]
    [ "$p" != n5 ]
    [ "$p" != null ]
    [ "$(cluster_json | jq -r '.nodes[] | select(.id=="n5") | .state')" = down ]
    [ "$(code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/api/system/cluster/nodes/n5")" = 204 ]
    [ "$(cluster_json | jq '[.nodes[] | select(.id=="n5")] | length')" = 0 ]
    [ "$(code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/api/system/cluster/nodes/n5")" = 404 ]
}

@test "kill -9 the primary: another node is primary within 5 s and runs the cluster tasks" {
    local p survivor
    p=$(cluster_json | jq -r .primary)
    kill -KILL "$(node_pid "$p")"
    for n in n1 n2 n3; do if [ "$n" != "$p" ]; then survivor=$n; fi; done
    local url
    eval "url=\$NODE_${survivor}_URL"
    local t0=$SECONDS newp=""
    while [ $((SECONDS - t0)) -le 5 ]; do
        newp=$(cget "$url/api/system/cluster" | jq -r .primary)
        [ -n "$newp" ] && [ "$newp" != "$p" ] && [ "$newp" != null ] && break
        sleep 0.2
    done
    echo "old primary $p, new primary $newp after $((SECONDS - t0)) s"
    [ -n "$newp" ]
    [ "$newp" != "$p" ]
    [ "$newp" != null ]
    # the task of the primary: the dead node is removed once down for 3 s
    for i in $(seq 60); do
        cget "$url/api/system/cluster" | jq -e ".nodes | map(.id) | index(\"$p\") == null" >/dev/null && break
        sleep 0.25
    done
    cget "$url/api/system/cluster" | jq -e ".nodes | map(.id) | index(\"$p\") == null"
}

@test "restart PostgreSQL under the cluster: no wrong answers, recovery without intervention" {
    local live=()
    for n in n1 n2 n3; do if kill -0 "$(node_pid $n)" 2>/dev/null; then live+=($n); fi; done
    local a=${live[0]} b=${live[1]} ua ub
    eval "ua=\$NODE_${a}_URL ub=\$NODE_${b}_URL"
    echo one >"$SUITE_TMP/one"
    cget -T "$SUITE_TMP/one" "$ua/libs/pg/k" >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null
    # while down: 503 or the right value, never a wrong one
    for i in 1 2 3; do
        run csum "$ub" libs/pg/k
        [[ "$output" == "$(sha "$SUITE_TMP/one")" || "$output" == 503 ]]
        sleep 0.5
    done
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/log" -w \
        -o "-p $PGPORT -k $PGDATA_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    echo two >"$SUITE_TMP/two"
    local ok=0
    for i in $(seq 50); do
        [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/two" "$ua/libs/pg/k")" = 201 ] && { ok=1; break; }
        sleep 0.2
    done
    [ $ok = 1 ]
    # b answers 503 until it has renewed the lease it lost while PostgreSQL
    # was down (docs/cluster.md), then the new value: never the old one
    local got
    for i in $(seq 50); do
        got=$(csum "$ub" libs/pg/k)
        [ "$got" = 503 ] || break
        sleep 0.2
    done
    echo "b after the write: $got (try $i)"
    [ "$got" = "$(sha "$SUITE_TMP/two")" ]
}
