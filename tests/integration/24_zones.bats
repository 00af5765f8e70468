#!/usr/bin/env bats
# Failure zones end to end (docs/blobs.md "Uploads", "Repair"): four real
# nodes in three zones (--zone), two copies of every binary in two distinct
# zones, and repair keeps it so when the only node of a zone dies.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db zones)
    # z1 has two nodes: a copy placed without regard to zones would often
    # land on the receiving node's zone peer
    start_cluster_node n1 "$DB" --zone z1
    start_cluster_node n2 "$DB" --zone z1
    start_cluster_node n3 "$DB" --zone z2
    start_cluster_node n4 "$DB" --zone z3
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL NODE_n4_URL
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"generic"}' "$NODE_n1_URL/api/repositories/libs" >/dev/null
    # every node places copies knowing all four (its view is refreshed once
    # a second: a node that joined a moment ago is not in it yet)
    local n
    for n in n1 n2 n3 n4; do
        wait_until 20 placement_nodes "$n" 4
    done
    # the tests run repair themselves
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"redundancy":2,"lenientLimit":1,"gcIntervalSeconds":0,"scrubBytesPerSecond":0}' \
        "$NODE_n1_URL/api/system/storage/config" >/dev/null
}
teardown_file() { cleanup_suite; }

cget() { curl -sS -u "admin:$PASS" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
sql() { psql_db zones "$1"; }
zone_of() { case $1 in n1 | n2) echo z1 ;; n3) echo z2 ;; n4) echo z3 ;; esac; }
# holders SHA256 [NODE-TO-IGNORE]: the nodes with a copy, by the database, sorted
holders() {
    sql "SELECT string_agg(node, ',' ORDER BY node) FROM binary_locations
         WHERE sha256 = '$1' AND node <> '${2:-}'"
}
# zones_ok SHA256 [NODE-TO-IGNORE]: exactly two copies, in two zones, each on disk
zones_ok() {
    local h z="" n
    h=$(holders "$@")
    for n in ${h//,/ }; do
        [ -f "$SUITE_TMP/node-$n/filestore/${1:0:2}/$1" ] || { echo "$1: no file on $n"; return 1; }
        z="$z $(zone_of "$n")"
    done
    [ "$(echo "$h" | tr , '\n' | wc -l)" = 2 ] || { echo "$1: holders $h"; return 1; }
    [ "$(echo $z | tr ' ' '\n' | sort -u | wc -l)" = 2 ] || { echo "$1: holders $h in zones$z"; return 1; }
}
placement_nodes() { # NODE N: NODE would place copies on N nodes
    [ "$(curl -sS -u "admin:$PASS" "$(eval echo \$NODE_$1_URL)/api/system/metrics" |
        awk '$1 == "granary_storage_placement_nodes" { print $2 }')" = "$2" ]
}
node_down() { # NODE: its heartbeat is older than down_after (2 s)
    [ "$(sql "SELECT count(*) FROM cluster_nodes WHERE id = '$1' AND heartbeat > now() - interval '2 s'")" = 0 ]
}

@test "each node reports its zone" {
    run cget "$NODE_n3_URL/api/system/cluster"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq -r '[.nodes[] | "\(.id)=\(.zone)"] | sort | join(",")')" = n1=z1,n2=z1,n3=z2,n4=z3 ]
    [ "$(sql "SELECT string_agg(id || '=' || zone, ',' ORDER BY id) FROM cluster_nodes")" = n1=z1,n2=z1,n3=z2,n4=z3 ]
}

@test "uploads through every node: two copies of each binary, in two distinct zones" {
    local i via s
    : >"$SUITE_TMP/shas"
    for i in $(seq 24); do
        head -c $((20000 + i * 1000)) /dev/urandom >"$SUITE_TMP/f$i"
        # mostly through the zone with two nodes, some through the others
        case $((i % 4)) in 0 | 1) via=$NODE_n1_URL ;; 2) via=$NODE_n2_URL ;; 3) via=$NODE_n4_URL ;; esac
        [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/f$i" "$via/libs/z/f$i")" = 201 ]
        s=$(sha "$SUITE_TMP/f$i")
        echo "$s" >>"$SUITE_TMP/shas"
        zones_ok "$s"
    done
    # every node held some copies (placement spreads them)
    for n in n1 n2 n3 n4; do
        [ "$(sql "SELECT count(*) FROM binary_locations WHERE node = '$n'")" -ge 1 ] || { echo "$n holds nothing"; return 1; }
    done
}

@test "the only node of a zone dies: repair restores two copies, still in distinct zones" {
    local s moved
    moved=$(sql "SELECT count(*) FROM binary_locations WHERE node = 'n3'")
    [ "$moved" -ge 1 ]
    kill -KILL "$(node_pid n3)"
    wait_until 20 node_down n3
    run cget -X POST "$NODE_n1_URL/api/system/storage/optimize"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq .failed)" = 0 ]
    [ "$(echo "$output" | jq .copied)" -ge "$moved" ]
    # the copies that were on n3 were made again, in the zone the other copy is not in
    while read -r s; do
        zones_ok "$s" n3
    done <"$SUITE_TMP/shas"
    # and every binary reads back from every live node
    local i
    for i in $(seq 24); do
        for u in "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n4_URL"; do
            [ "$(cget "$u/libs/z/f$i" | sha256sum | cut -d' ' -f1)" = "$(sha "$SUITE_TMP/f$i")" ]
        done
    done
}
