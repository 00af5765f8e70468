#!/usr/bin/env bats
# The cluster port's signatures (docs/security.md "Cluster-internal
# security"): a request is signed for the node it is sent to, so that a
# captured one cannot be replayed to another; every answer is signed by the
# node asked (status, binary, block checksums, body); a read from a peer
# checks every byte it serves against the signed block checksums, ranges
# included; v1 signatures only during an upgrade (--cluster-port-v1).
load helpers

setup_file() {
    start_pg
    export DB=$(new_db cport)
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    start_cluster_node n3 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL NODE_n1_CPORT NODE_n2_CPORT NODE_n3_CPORT
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"generic"}' "$NODE_n1_URL/api/repositories/libs" >/dev/null
    storage_config '{"redundancy":2,"lenientLimit":1,"gcIntervalSeconds":0,"scrubBytesPerSecond":0}'
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"retentionPeriodDays":0}' "$NODE_n1_URL/api/trash/settings" >/dev/null
    sleep 1.2 # every node reads the settings once a second
}
teardown_file() { cleanup_suite; }

storage_config() {
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d "$1" \
        "$NODE_n1_URL/api/system/storage/config" >/dev/null
}
cget() { curl -sS -u "admin:$PASS" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
sql() { psql_db "$(basename "$DB")" "$1"; }
holders() { sql "SELECT string_agg(node, ',' ORDER BY node) FROM binary_locations WHERE sha256 = '$1'"; }
url_of() { eval "echo \$NODE_$1_URL"; }
cport_of() { eval "echo http://127.0.0.1:\$NODE_$1_CPORT"; }
file_of() { echo "$SUITE_TMP/node-$1/filestore/${2:0:2}/$2"; }
# reader SHA256: a node with no copy of the binary (it reads from a peer)
reader() {
    local n
    for n in n1 n2 n3; do
        [ -f "$(file_of "$n" "$1")" ] || { echo "$n"; return 0; }
    done
    return 1
}
# upload NAME BYTES: a new random binary at libs/NAME through n1; prints its sha256
upload() {
    head -c "$2" /dev/urandom >"$SUITE_TMP/$1"
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/$1" "$NODE_n1_URL/libs/$1")" = 201 ] || return 1
    sha "$SUITE_TMP/$1"
}
sign() { python3 tests/integration/tools/cluster_sign.py "$SUITE_TMP/join.key" "$@"; }

# fake_start MODE FILE [KEYFILE]: node fk, alive for an hour by its
# heartbeat, whose cluster port is fake_holder.py (log: $SUITE_TMP/fk.log)
fake_start() {
    local port i
    port=$(free_port)
    : >"$SUITE_TMP/fk.log"
    python3 tests/integration/tools/fake_holder.py "$port" "$2" "$1" "$SUITE_TMP/fk.log" ${3:+"$3"} &
    FK_PID=$!
    echo "$FK_PID" >>"$SUITE_TMP/pids"
    for i in $(seq 50); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/v1/ping" 2>/dev/null; then break; fi
        sleep 0.1
    done
    sql "INSERT INTO cluster_nodes (id, public_url, cluster_url, bus_endpoint, version, heartbeat)
         VALUES ('fk', 'http://127.0.0.1:$port', 'http://127.0.0.1:$port', 'tcp://127.0.0.1:$(free_port)',
                 'test', now() + interval '1 hour')
         ON CONFLICT (id) DO UPDATE SET cluster_url = EXCLUDED.cluster_url, public_url = EXCLUDED.public_url,
                 heartbeat = EXCLUDED.heartbeat, state = 'active'"
    sleep 1.5 # every node's view of the live nodes now has fk
}
fake_stop() {
    kill "$FK_PID" 2>/dev/null || true
    sql "DELETE FROM cluster_nodes WHERE id = 'fk'; DELETE FROM binary_locations WHERE node = 'fk'"
}
# only_fk SHA256: the database knows no holder of the binary but fk
only_fk() {
    sql "DELETE FROM binary_locations WHERE sha256 = '$1'; INSERT INTO binary_locations (sha256, node) VALUES ('$1', 'fk')"
}

@test "a request signed for one node is refused by another: a captured DELETE cannot be replayed to the other holder" {
    local s h a b auth
    s=$(upload rp.bin 100000)
    h=$(holders "$s")
    a=${h%%,*}
    b=${h##*,}
    [ "$a" != "$b" ]
    # what n3 (or any node) sends to holder a, captured: refused by holder b
    auth=$(sign DELETE "/v1/blobs/$s" n3 "$a")
    run curl -sS -w ' %{http_code}' -X DELETE -H "X-Granary-Auth: $auth" "$(cport_of "$b")/v1/blobs/$s"
    echo "replayed to $b: $output"
    [[ "$output" == *"signed for another node"*" 401" ]]
    [ -f "$(file_of "$b" "$s")" ]
    grep -q "refused: signed for another node" "$SUITE_TMP/node-$b/stderr.log"
    # the node it was signed for takes it, once
    [ "$(code -X DELETE -H "X-Granary-Auth: $auth" "$(cport_of "$a")/v1/blobs/$s")" = 204 ]
    [ ! -e "$(file_of "$a" "$s")" ]
    sql "DELETE FROM binary_locations WHERE sha256 = '$s' AND node = '$a'"
    run curl -sS -w ' %{http_code}' -X DELETE -H "X-Granary-Auth: $auth" "$(cport_of "$a")/v1/blobs/$s"
    [[ "$output" == *"replayed request"*" 401" ]]
    # the v1 form (no destination) is refused outside an upgrade from v1
    run curl -sS -w ' %{http_code}' -X DELETE -H "X-Granary-Auth: $(sign DELETE "/v1/blobs/$s" n3 "$b" v1)" \
        "$(cport_of "$b")/v1/blobs/$s"
    [[ "$output" == *"v1 signature refused"*" 401" ]]
    [ -f "$(file_of "$b" "$s")" ]
    [ "$(cget "$(url_of "$a")/libs/rp.bin" | sha256sum | cut -d' ' -f1)" = "$s" ]
}

@test "garbage collection: a DELETE captured on its way to one holder deletes no other copy, and an unsigned 204 forgets no copy" {
    local s h victim line auth auth2 st
    s=$(upload gc.bin 100000)
    h=$(holders "$s")
    victim=${h##*,}
    # the victim keeps its file but the collector does not know of it; fk is a holder
    sql "DELETE FROM binary_locations WHERE sha256 = '$s' AND node = '$victim'"
    fake_start good "$SUITE_TMP/gc.bin"
    sql "INSERT INTO binary_locations (sha256, node) VALUES ('$s', 'fk')"
    [ "$(code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/libs/gc.bin")" = 204 ]
    run cget -X POST "$NODE_n1_URL/api/system/storage/gc?graceSeconds=0"
    echo "gc: $output; fk saw: $(cat "$SUITE_TMP/fk.log")"
    [ "$(echo "$output" | jq .tombstoned)" -ge 1 ]
    line=$(grep "^DELETE /v1/blobs/$s" "$SUITE_TMP/fk.log" | head -1)
    [ -n "$line" ]
    auth=$(echo "$line" | cut -f3)
    auth2=$(echo "$line" | cut -f4)
    # replayed within the window to the victim's cluster port
    if [ "$auth2" = - ]; then
        st=$(code -X DELETE -H "X-Granary-Auth: $auth" "$(cport_of "$victim")/v1/blobs/$s")
    else
        st=$(code -X DELETE -H "X-Granary-Auth: $auth" -H "X-Granary-Auth-V2: $auth2" "$(cport_of "$victim")/v1/blobs/$s")
    fi
    echo "replayed to $victim: $st"
    [ "$st" = 401 ]
    [ -f "$(file_of "$victim" "$s")" ]
    # fk's 204 was not signed: the collector does not take it for a deleted copy
    [ "$(holders "$s")" = fk ]
    grep -q "DELETE /v1/blobs/$s on fk: answer 204 refused: unsigned answer" "$SUITE_TMP/node-n1/stderr.log"
    fake_stop
}

@test "a peer's answer that its holder did not sign is refused before a byte is served" {
    local mode name s r
    for mode in forged forged,wrongkey; do
        name=us-${mode//,/-}.bin
        s=$(upload "$name" 200000)
        r=$(reader "$s")
        # the bytes changed on the way, and the checksums with them; the
        # answer is not signed, or signed with another key than the join key
        if [ "$mode" = forged ]; then
            fake_start "$mode" "$SUITE_TMP/$name"
        else
            fake_start "$mode" "$SUITE_TMP/$name" "$SUITE_TMP/join.key"
        fi
        only_fk "$s"
        rm -f "$SUITE_TMP/got"
        run curl -fsS -u "admin:$PASS" -o "$SUITE_TMP/got" "$(url_of "$r")/libs/$name"
        echo "$mode through $r: curl $status, $(stat -c %s "$SUITE_TMP/got" 2>/dev/null) bytes; fk saw: $(cat "$SUITE_TMP/fk.log")"
        [ "$status" = 22 ] # 503: no good copy reachable
        if [ "$mode" = forged ]; then
            grep -q "copy of $s from fk refused: unsigned answer" "$SUITE_TMP/node-$r/stderr.log"
        else
            grep -q "copy of $s from fk refused: bad answer signature" "$SUITE_TMP/node-$r/stderr.log"
        fi
        # the network's word takes no copy out of service
        run grep -c quarantine "$SUITE_TMP/fk.log"
        [ "$output" = 0 ]
        [ "$(holders "$s")" = fk ]
        fake_stop
    done
}

@test "a signed answer whose bytes changed on the way: the read is cut, nothing is quarantined" {
    local s r
    s=$(upload sig.bin 200000)
    r=$(reader "$s")
    fake_start crc "$SUITE_TMP/sig.bin" "$SUITE_TMP/join.key"
    only_fk "$s"
    rm -f "$SUITE_TMP/got"
    run curl -sS -u "admin:$PASS" -o "$SUITE_TMP/got" "$(url_of "$r")/libs/sig.bin"
    echo "through $r: curl $status, $(stat -c %s "$SUITE_TMP/got") bytes; fk saw: $(cat "$SUITE_TMP/fk.log")"
    # the first block was good: the answer started, and is cut at the second
    [ "$status" -ne 0 ]
    [ "$(stat -c %s "$SUITE_TMP/got" 2>/dev/null || echo 0)" -le 65536 ]
    [ ! -s "$SUITE_TMP/got" ] || cmp -n "$(stat -c %s "$SUITE_TMP/got")" "$SUITE_TMP/got" "$SUITE_TMP/sig.bin"
    grep -q "copy of $s from fk refused: a block failed its CRC32C under its holder's signed checksums" \
        "$SUITE_TMP/node-$r/stderr.log"
    run grep -c quarantine "$SUITE_TMP/fk.log"
    [ "$output" = 0 ]
    [ "$(holders "$s")" = fk ]
    fake_stop
}

@test "a range read from a peer fetches whole blocks and checks them: a wrong byte in the range is never served" {
    local s r
    s=$(upload rg.bin 200000)
    r=$(reader "$s")
    # byte 98304 was changed on the way; the holder's checksums are signed
    fake_start crc "$SUITE_TMP/rg.bin" "$SUITE_TMP/join.key"
    only_fk "$s"
    run curl -fsS -u "admin:$PASS" -r 98000-98999 -o "$SUITE_TMP/got" "$(url_of "$r")/libs/rg.bin"
    echo "through $r: curl $status; fk saw: $(cat "$SUITE_TMP/fk.log")"
    [ "$status" = 22 ] # the block was checked before the answer started: 503
    grep -q "a block failed its CRC32C" "$SUITE_TMP/node-$r/stderr.log"
    # the whole covering block was asked for, not the range
    [ "$(cut -f2 "$SUITE_TMP/fk.log" | grep -c '^bytes=65536-131071$')" -ge 1 ]
    fake_stop
    # an honest holder: the slice of the checked block
    fake_start good "$SUITE_TMP/rg.bin" "$SUITE_TMP/join.key"
    only_fk "$s"
    cget -f -r 70000-70999 -o "$SUITE_TMP/got" "$(url_of "$r")/libs/rg.bin"
    cmp "$SUITE_TMP/got" <(tail -c +70001 "$SUITE_TMP/rg.bin" | head -c 1000)
    fake_stop
    # real holders: a range across blocks, and the last bytes
    sql "DELETE FROM binary_locations WHERE sha256 = '$s'"
    sql "INSERT INTO binary_locations (sha256, node) SELECT '$s', n FROM unnest(ARRAY['n1','n2','n3']) n
         WHERE n <> '$r'"
    sleep 1.5 # fk is gone from every node's view of the live nodes
    cget -f -r 60000-140000 -o "$SUITE_TMP/got" "$(url_of "$r")/libs/rg.bin"
    cmp "$SUITE_TMP/got" <(tail -c +60001 "$SUITE_TMP/rg.bin" | head -c 80001)
    cget -f -r 199990- -o "$SUITE_TMP/got" "$(url_of "$r")/libs/rg.bin"
    cmp "$SUITE_TMP/got" <(tail -c 10 "$SUITE_TMP/rg.bin")
}

@test "a binary over 32 MiB read from a peer: every block checked, one signed window of blocks at a time" {
    storage_config '{"redundancy":1,"lenientLimit":1,"gcIntervalSeconds":0,"scrubBytesPerSecond":0}'
    sleep 1.2
    local s r
    s=$(upload big.bin $((40 << 20)))
    [ "$(holders "$s")" = n1 ]
    r=n2
    cget -f -o "$SUITE_TMP/got" "$(url_of "$r")/libs/big.bin"
    cmp "$SUITE_TMP/got" "$SUITE_TMP/big.bin"
    # a range over two windows (blocks 0-511 and 512-...)
    cget -f -r 1000-34000000 -o "$SUITE_TMP/got" "$(url_of "$r")/libs/big.bin"
    cmp "$SUITE_TMP/got" <(tail -c +1001 "$SUITE_TMP/big.bin" | head -c 33999001)
    rm -f "$SUITE_TMP/got" "$SUITE_TMP/big.bin"
    storage_config '{"redundancy":2,"lenientLimit":1,"gcIntervalSeconds":0,"scrubBytesPerSecond":0}'
    sleep 1.2
}

@test "an upgrade from v1: a node with --cluster-port-v1 takes v1 requests and unsigned answers, the others do not" {
    start_cluster_node n4 "$DB" --cluster-port-v1 true
    local i
    for ((i = 0; i < 50; i++)); do
        if [ "$(sql "SELECT count(*) FROM cluster_nodes WHERE id = 'n4' AND state = 'active'")" = 1 ]; then break; fi
        sleep 0.2
    done
    sleep 1.2
    run curl -sS -w ' %{http_code}' -H "X-Granary-Auth: $(sign GET /v1/ping n1 n4 v1)" "http://127.0.0.1:$NODE_n4_CPORT/v1/ping"
    [[ "$output" == *" 200" ]]
    run curl -sS -w ' %{http_code}' -H "X-Granary-Auth: $(sign GET /v1/ping n4 n1 v1)" "$(cport_of n1)/v1/ping"
    [[ "$output" == *"v1 signature refused"*" 401" ]]
    [ "$(code -H "X-Granary-Auth: $(sign GET /v1/ping n1 n4)" "http://127.0.0.1:$NODE_n4_CPORT/v1/ping")" = 200 ]
    # n4 uploads to the nodes that are not in the upgrade, and reads from them
    head -c 150000 /dev/urandom >"$SUITE_TMP/up.bin"
    local s r
    s=$(sha "$SUITE_TMP/up.bin")
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/up.bin" "$NODE_n4_URL/libs/up.bin")" = 201 ]
    [ "$(holders "$s" | tr , '\n' | wc -l)" = 2 ]
    r=$(reader "$s")
    [ "$(cget "$(url_of "$r")/libs/up.bin" | sha256sum | cut -d' ' -f1)" = "$s" ]
    # a holder of the older version: unsigned answers, its checksums in v1's form
    s=$(upload old.bin 150000)
    rm -f "$SUITE_TMP/node-n4/filestore/${s:0:2}/$s"*
    fake_start good,v1 "$SUITE_TMP/old.bin"
    only_fk "$s"
    r=$(reader "$s")
    cget -f -o "$SUITE_TMP/got" "$NODE_n4_URL/libs/old.bin"
    cmp "$SUITE_TMP/got" "$SUITE_TMP/old.bin"
    # n4 asked with both signatures: v1 where the older version looks
    [ "$(grep -c $'^GET /v1/blobs/'"$s"$'\t-\tv1 n4 .*\tv2 n4 fk ' "$SUITE_TMP/fk.log")" -ge 1 ]
    run curl -fsS -u "admin:$PASS" -o "$SUITE_TMP/got" "$(url_of "$r")/libs/old.bin"
    [ "$status" = 22 ]
    grep -q "copy of $s from fk refused: unsigned answer" "$SUITE_TMP/node-$r/stderr.log"
    fake_stop
    # an older holder's wrong bytes: cut, and its copy quarantined, as that version did
    s=$(upload old2.bin 200000)
    rm -f "$SUITE_TMP/node-n4/filestore/${s:0:2}/$s"*
    fake_start crc,v1 "$SUITE_TMP/old2.bin"
    only_fk "$s"
    rm -f "$SUITE_TMP/got"
    run curl -sS -u "admin:$PASS" -o "$SUITE_TMP/got" "$NODE_n4_URL/libs/old2.bin"
    echo "curl $status; fk saw: $(cat "$SUITE_TMP/fk.log")"
    [ "$status" -ne 0 ]
    grep -q "copy of $s from fk: a block failed its CRC32C; quarantining it" "$SUITE_TMP/node-n4/stderr.log"
    grep -q "^POST /v1/blobs/$s/quarantine" "$SUITE_TMP/fk.log"
    [ -z "$(holders "$s")" ]
    fake_stop
    stop_node n4
}
