#!/usr/bin/env bats
# A rolling upgrade (docs/operations.md "Rolling upgrade"): three nodes built
# from this tree; one at a time is replaced by build/future/granaryd, the
# same code with one more, additive migration (tests/integration/future/).
# The nodes not yet replaced are then one version older than the schema:
# they must keep serving reads, writes, deletes, properties, search, the
# cache protocol and copies between nodes; and an older node that restarts
# refuses the newer schema.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db rolling)
    export FUTURE=$PWD/$BUILD/future/granaryd
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    start_cluster_node n3 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL NODE_n1_DIR NODE_n2_DIR NODE_n3_DIR
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"generic"}' "$NODE_n1_URL/api/repositories/libs" >/dev/null
}
teardown_file() { cleanup_suite; }

cget() { curl -sS -u "admin:$PASS" "$@"; }
csum() { curl -sS -u "admin:$PASS" "$1/api/storage/$2" | jq -r '.checksums.sha256 // .errors[0].status'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
sql() { psql_db rolling "$1"; }
schema() { sql "SELECT max(version) FROM schema_migrations"; }
active() { # NODE: the cluster sees it active, with a fresh heartbeat
    [ "$(sql "SELECT count(*) FROM cluster_nodes WHERE id = '$1' AND state = 'active' AND heartbeat > now() - interval '1 s'")" = 1 ]
}

@test "the newer build carries one migration more than this tree" {
    [ -x "$FUTURE" ] || { echo "missing $FUTURE: run make testhooks"; return 1; }
    local mine
    mine=$(schema)
    [ "$mine" -ge 1 ]
    [ "$mine" -lt 9001 ]
    grep -q "database schema migrated from version 0 to $mine" "$NODE_n1_DIR/stderr.log" ||
        grep -q "database schema migrated from version 0 to $mine" "$NODE_n2_DIR/stderr.log" ||
        grep -q "database schema migrated from version 0 to $mine" "$NODE_n3_DIR/stderr.log"
}

@test "one node upgraded: it migrates the running cluster's schema, and the older nodes keep working" {
    echo v1 >"$SUITE_TMP/v1"
    echo v2 >"$SUITE_TMP/v2"
    echo v3 >"$SUITE_TMP/v3"
    head -c 300000 /dev/urandom >"$SUITE_TMP/big"
    cget -T "$SUITE_TMP/v1" "$NODE_n2_URL/libs/up/k" >/dev/null
    # warm on the older nodes before the upgrade
    [ "$(csum "$NODE_n2_URL" libs/up/k)" = "$(sha "$SUITE_TMP/v1")" ]
    [ "$(csum "$NODE_n3_URL" libs/up/k)" = "$(sha "$SUITE_TMP/v1")" ]
    local before
    before=$(schema)
    # n1: SIGTERM, the new binary on the same data directory, ports and id
    stop_node n1
    GRANARYD=$FUTURE restart_cluster_node n1 "$DB"
    grep -q "database schema migrated from version $before to 9001" "$NODE_n1_DIR/stderr.log"
    [ "$(schema)" = 9001 ]
    [ "$(sql "SELECT count(*) FROM information_schema.columns WHERE column_name = 'probe_note'")" = 1 ]
    wait_until 10 active n1
    # the older nodes (never restarted) go on: writes through them, and the
    # cache protocol with the newer node both ways
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/v2" "$NODE_n2_URL/libs/up/k")" = 201 ]
    [ "$(csum "$NODE_n1_URL" libs/up/k)" = "$(sha "$SUITE_TMP/v2")" ]
    [ "$(csum "$NODE_n3_URL" libs/up/k)" = "$(sha "$SUITE_TMP/v2")" ]
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/v3" "$NODE_n1_URL/libs/up/k")" = 201 ]
    [ "$(csum "$NODE_n2_URL" libs/up/k)" = "$(sha "$SUITE_TMP/v3")" ]
    [ "$(csum "$NODE_n3_URL" libs/up/k)" = "$(sha "$SUITE_TMP/v3")" ]
    # binaries: uploaded through an older node, copied to a peer, read from all
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/big" "$NODE_n3_URL/libs/up/big.bin")" = 201 ]
    [ "$(sql "SELECT count(*) FROM binary_locations WHERE sha256 = '$(sha "$SUITE_TMP/big")'")" = 2 ]
    for u in "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"; do
        [ "$(cget "$u/libs/up/big.bin" | sha256sum | cut -d' ' -f1)" = "$(sha "$SUITE_TMP/big")" ]
    done
    # properties, search, copy, delete to the trash and back, repositories
    [ "$(code -u "admin:$PASS" -X PUT "$NODE_n2_URL/api/storage/libs/up/big.bin?properties=stage=rc1")" = 204 ]
    [ "$(cget "$NODE_n3_URL/api/storage/libs/up/big.bin?properties=stage" | jq -r '.properties.stage[0]')" = rc1 ]
    [ "$(cget "$NODE_n3_URL/api/search/prop?stage=rc1&repos=libs" | jq -r '.results[0].uri')" = "$NODE_n3_URL/api/storage/libs/up/big.bin" ]
    [ "$(code -u "admin:$PASS" -X POST "$NODE_n2_URL/api/copy/libs/up/big.bin?to=/libs/up/copy.bin")" = 200 ]
    [ "$(code -u "admin:$PASS" -X DELETE "$NODE_n3_URL/libs/up/copy.bin")" = 204 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/libs/up/copy.bin")" = 404 ]
    [ "$(code -u "admin:$PASS" -X POST "$NODE_n2_URL/api/trash/restore/libs/up/copy.bin")" = 202 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/libs/up/copy.bin")" = 200 ]
    cget -X POST -H 'Content-Type: application/json' -d '{"description":"after"}' "$NODE_n3_URL/api/repositories/libs" >/dev/null
    [ "$(cget "$NODE_n1_URL/api/repositories/libs" | jq -r .description)" = after ]
    # the older nodes' heartbeats still land, and they see the newer one
    active n2
    active n3
    [ "$(cget "$NODE_n2_URL/api/system/cluster" | jq -r '[.nodes[].state] | unique | join(",")')" = active ]
    # rows the older nodes wrote got the new columns' defaults
    [ "$(sql "SELECT count(*) FROM artifacts WHERE path = 'up/big.bin' AND probe_note = ''")" = 1 ]
}

@test "read-after-write across mixed versions: 200 rounds, zero stale reads" {
    run python3 tests/integration/tools/rw_check.py 200 "$PASS" "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"
    echo "$output" | tail -3
    [ "$status" -eq 0 ]
    [[ "${lines[-1]}" == *"stale 0 failed 0"* ]]
}

@test "an older node that restarts refuses the newer schema; upgraded, it joins again" {
    stop_node n3
    run "$GRANARYD" --data-dir "$NODE_n3_DIR" --listen 127.0.0.1:$(free_port) --database-url "$DB" \
        --join-key-file "$(cluster_key)" --node-id n3 --bus-listen 127.0.0.1:$(free_port)
    [ "$status" -ne 0 ]
    [[ "$output" == *"9001 is newer than this granaryd knows"* ]]
    GRANARYD=$FUTURE restart_cluster_node n3 "$DB"
    wait_until 10 active n3
    stop_node n2
    GRANARYD=$FUTURE restart_cluster_node n2 "$DB"
    wait_until 10 active n2
    [ "$(csum "$NODE_n3_URL" libs/up/k)" = "$(sha "$SUITE_TMP/v3")" ]
    [ "$(cget "$NODE_n2_URL/libs/up/big.bin" | sha256sum | cut -d' ' -f1)" = "$(sha "$SUITE_TMP/big")" ]
}
