#!/usr/bin/env bats
# Security across three nodes: a revoked or expired token, a changed
# permission and a disabled user hold on every node as soon as the call
# returns; the join key rotates without downtime (docs/security.md).
load helpers

setup_file() {
    start_pg
    export DB=$(new_db seccluster)
    export LEASE_MS=1500
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    start_cluster_node n3 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL NODE_n1_DIR NODE_n2_DIR NODE_n3_DIR
    local h=(-fsS -u "admin:$PASS" -H 'Content-Type: application/json')
    curl "${h[@]}" -X PUT -d '{"rclass":"local","packageType":"generic"}' "$NODE_n1_URL/api/repositories/libs" >/dev/null
    curl "${h[@]}" -X PUT -d '{"password":"password123","groups":[]}' "$NODE_n1_URL/api/security/users/bob" >/dev/null
    curl "${h[@]}" -X PUT -d '{"repo":{"repositories":["libs"],"actions":{"users":{"bob":["read"]}}}}' \
        "$NODE_n1_URL/api/v2/security/permissions/bob-reads" >/dev/null
    echo hello >"$SUITE_TMP/f"
    curl -fsS -u "admin:$PASS" -T "$SUITE_TMP/f" "$NODE_n1_URL/libs/a.txt" >/dev/null
}
teardown_file() { cleanup_suite; }

URLS() { echo "$NODE_n1_URL $NODE_n2_URL $NODE_n3_URL"; }
# the status codes of the three nodes for the same request
codes() {
    local out="" u
    # the storage API: what every node's cache says (binaries: 21_blobs.bats)
    for u in $(URLS); do out+="$(code "$@" "$u/api/storage/libs/a.txt") "; done
    echo "${out% }"
}

@test "a revoked token is refused by all three nodes as soon as the revocation returns" {
    local tok
    tok=$(curl -fsS -u bob:password123 -d expires_in=600 "$NODE_n1_URL/api/security/token" | jq -r .access_token)
    [ "$(codes -H "Authorization: Bearer $tok")" = "200 200 200" ]   # warm on every node
    [ "$(codes -u "bob:$tok")" = "200 200 200" ]
    [ "$(code -u bob:password123 -d "token=$tok" "$NODE_n2_URL/api/security/token/revoke")" = 200 ]
    [ "$(codes -H "Authorization: Bearer $tok")" = "401 401 401" ]
    [ "$(codes -u "bob:$tok")" = "401 401 401" ]
}

@test "an expired token is refused by all three nodes at once" {
    local tok
    tok=$(curl -fsS -u bob:password123 -d expires_in=2 "$NODE_n3_URL/api/security/token" | jq -r .access_token)
    [ "$(codes -H "Authorization: Bearer $tok")" = "200 200 200" ]
    sleep 2.2
    [ "$(codes -H "Authorization: Bearer $tok")" = "401 401 401" ]
}

@test "a changed permission and a disabled user hold on every node at once" {
    [ "$(codes -u bob:password123)" = "200 200 200" ]
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"repo":{"repositories":["libs"],"include-patterns":["other/**"],"actions":{"users":{"bob":["read"]}}}}' \
        "$NODE_n3_URL/api/v2/security/permissions/bob-reads"
    [ "$(codes -u bob:password123)" = "403 403 403" ]
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"repo":{"repositories":["libs"],"actions":{"users":{"bob":["read"]}}}}' \
        "$NODE_n2_URL/api/v2/security/permissions/bob-reads"
    [ "$(codes -u bob:password123)" = "200 200 200" ]
    curl -fsS -u "admin:$PASS" -X POST -H 'Content-Type: application/json' -d '{"disabled":true}' \
        "$NODE_n1_URL/api/security/users/bob"
    [ "$(codes -u bob:password123)" = "401 401 401" ]
    curl -fsS -u "admin:$PASS" -X POST -H 'Content-Type: application/json' -d '{"disabled":false}' \
        "$NODE_n1_URL/api/security/users/bob"
    [ "$(codes -u bob:password123)" = "200 200 200" ]
}

# restart NAME with the given key arguments (same data dir, ports and id)
restart_with() {
    local name=$1 bus
    shift
    bus=$(cat "$SUITE_TMP/node-$name/bus")
    stop_node "$name"
    restart_node "$name" --database-url "$DB" "$@" --node-id "$name" \
        --bus-listen "127.0.0.1:$bus" --lease-ms "$LEASE_MS" --heartbeat-ms 250 --down-after-ms 2000
}

missing_acks() { # URL: acknowledgements that node waited for in vain
    curl -fsS -u "admin:$PASS" "$1/api/system/metrics" |
        awk '$1 == "granary_cluster_acks_missing_total" { print $2 }'
}

# Every node serves bob, a revocation on node URL is seen on all, and every
# peer acknowledged it over the bus (no lease wait stood in for an ack):
# retried while the restarted node's bus connections come up.
coherent() {
    local tok before i
    for i in $(seq 1 20); do
        tok=$(curl -fsS -u bob:password123 -d expires_in=600 "$1/api/security/token" | jq -r .access_token)
        [ "$(codes -H "Authorization: Bearer $tok")" = "200 200 200" ] || return 1
        before=$(missing_acks "$1")
        [ "$(code -u bob:password123 -d "token=$tok" "$1/api/security/token/revoke")" = 200 ] || return 1
        [ "$(codes -H "Authorization: Bearer $tok")" = "401 401 401" ] || return 1
        [ "$(missing_acks "$1")" = "$before" ] && return 0
        sleep 0.5
    done
    echo "peers of $1 never acknowledged over the bus" >&2
    return 1
}

@test "the join key rotates node by node without downtime; the old key alone is then refused" {
    local old new
    old=$(cluster_key)
    new=$SUITE_TMP/join-new.key
    head -c 32 /dev/urandom | base64 >"$new"
    # 1: every node accepts the new key too, still signing with the old
    for n in n1 n2 n3; do
        restart_with $n --join-key-file "$old" --join-key-next-file "$new"
        coherent "$NODE_n1_URL"
    done
    # 2: every node signs with the new key, still accepting the old
    for n in n3 n2 n1; do
        restart_with $n --join-key-file "$new" --join-key-next-file "$old"
        coherent "$NODE_n2_URL"
    done
    # 3: the old key is dropped
    for n in n1 n2 n3; do
        restart_with $n --join-key-file "$new"
        coherent "$NODE_n3_URL"
    done
    run "$GRANARYD" --data-dir "$SUITE_TMP/oldkey" --listen 127.0.0.1:$(free_port) \
        --database-url "$DB" --join-key-file "$old" --node-id stale \
        --bus-listen 127.0.0.1:$(free_port)
    [ "$status" -ne 0 ]
    [[ "$output" == *"join key is not the cluster's"* ]]
}
