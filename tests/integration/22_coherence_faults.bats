#!/usr/bin/env bats
# The cache protocol's fault paths on three real nodes (docs/cluster.md,
# "Caches that are never stale", points 3 and 5): the bus to one node is cut
# with nftables while PostgreSQL stays reachable, so that a writer gets no
# acknowledgement from a peer that still renews its lease; then messages
# lost while the bus was cut show as a sequence gap when it heals.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db faults)
    export LEASE_MS=1500
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    start_cluster_node n3 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL NODE_n1_DIR NODE_n2_DIR NODE_n3_DIR NODE_n3_BUS
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"generic"}' "$NODE_n1_URL/api/repositories/libs" >/dev/null
    # one nftables table per suite, named after its temp dir (run-tests
    # removes it if the suite is stopped); none when nft is not usable
    export NFT_TABLE=granary_test_${SUITE_TMP##*.}
    if command -v nft >/dev/null && nft add table inet "$NFT_TABLE" 2>/dev/null; then
        nft delete table inet "$NFT_TABLE"
    else
        export NO_NFT=1
    fi
}
teardown_file() {
    heal_bus
    cleanup_suite
}
teardown() { heal_bus; }

need_nft() {
    [ -z "${NO_NFT:-}" ] || skip "needs nftables (nft, as root)"
}
# cut_bus PORT: drop every packet to or from a bus port on loopback: the
# node there hears no request and sends no acknowledgement; its heartbeats
# to PostgreSQL go on
cut_bus() {
    nft add table inet "$NFT_TABLE"
    nft add chain inet "$NFT_TABLE" out '{ type filter hook output priority 0; policy accept; }'
    nft add rule inet "$NFT_TABLE" out ip daddr 127.0.0.1 tcp dport "$1" drop
    nft add rule inet "$NFT_TABLE" out ip daddr 127.0.0.1 tcp sport "$1" drop
}
heal_bus() {
    if [ -n "${NFT_TABLE:-}" ] && [ -z "${NO_NFT:-}" ]; then
        nft delete table inet "$NFT_TABLE" 2>/dev/null || true
    fi
}

cget() { curl -sS -u "admin:$PASS" "$@"; }
csum() { curl -sS -u "admin:$PASS" "$1/api/storage/$2" | jq -r '.checksums.sha256 // .errors[0].status'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
sql() { psql_db faults "$1"; }
mvalue() { cget "$1/api/system/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
# bus connections to n3's bus port (the peers' DEALERs), established now
bus_conns() { ss -Htn state established "( dport = :$NODE_n3_BUS )" | wc -l; }
no_bus_conns() { [ "$(bus_conns)" = 0 ]; }
has_bus_conns() { [ "$(bus_conns)" -ge 2 ]; }

@test "bus cut, PostgreSQL up: the writer waits for the silent peer's flush, which drops its cache" {
    need_nft
    echo old >"$SUITE_TMP/old"
    echo new >"$SUITE_TMP/new"
    echo other >"$SUITE_TMP/other"
    cget -T "$SUITE_TMP/old" "$NODE_n1_URL/libs/cut/k" >/dev/null
    cget -T "$SUITE_TMP/other" "$NODE_n1_URL/libs/cut/untouched" >/dev/null
    # warm on n3: the changed key, and one that no write touches
    [ "$(csum "$NODE_n3_URL" libs/cut/k)" = "$(sha "$SUITE_TMP/old")" ]
    [ "$(csum "$NODE_n3_URL" libs/cut/untouched)" = "$(sha "$SUITE_TMP/other")" ]
    [ "$(csum "$NODE_n3_URL" libs/cut/k)" = "$(sha "$SUITE_TMP/old")" ]
    local flushes0 epoch0 waits0
    flushes0=$(mvalue "$NODE_n3_URL" granary_cluster_cache_flushes_total)
    waits0=$(mvalue "$NODE_n1_URL" granary_cluster_lease_waits_total)
    epoch0=$(sql "SELECT flush_epoch FROM cluster_nodes WHERE id = 'n3'")
    cut_bus "$NODE_n3_BUS"
    local t0 t1 ms
    t0=$(date +%s%N)
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/new" "$NODE_n1_URL/libs/cut/k")" = 201 ]
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    echo "write with n3's bus cut took $ms ms (ack timeout 1000 ms, lease $LEASE_MS ms)"
    # the writer flagged n3 and waited: at most the ack timeout, then the
    # lease plus 200 ms (the bound is the protocol's; the rest is margin
    # for a loaded machine)
    [ "$(mvalue "$NODE_n1_URL" granary_cluster_lease_waits_total)" -gt "$waits0" ]
    grep -q "no acknowledgement from n3: waiting out its lease" "$NODE_n1_DIR/stderr.log"
    [ "$ms" -lt $((1000 + LEASE_MS + 200 + 2500)) ]
    # n3 kept its lease through PostgreSQL, saw the flag at a renewal,
    # dropped its cache and confirmed: the writer's wait ended on that
    [ "$(sql "SELECT flush_epoch > $epoch0 AND flushed_epoch >= flush_epoch FROM cluster_nodes WHERE id = 'n3'")" = t ]
    [ "$(sql "SELECT lease_expiry > now() FROM cluster_nodes WHERE id = 'n3'")" = t ]
    [ "$(mvalue "$NODE_n3_URL" granary_cluster_cache_flushes_total)" -gt "$flushes0" ]
    # the invalidation never reached n3, yet it serves the new value, and
    # the untouched key is read again from PostgreSQL (a miss)
    [ "$(csum "$NODE_n3_URL" libs/cut/k)" = "$(sha "$SUITE_TMP/new")" ]
    local m0
    m0=$(mvalue "$NODE_n3_URL" granary_cache_misses_total)
    [ "$(csum "$NODE_n3_URL" libs/cut/untouched)" = "$(sha "$SUITE_TMP/other")" ]
    [ "$(mvalue "$NODE_n3_URL" granary_cache_misses_total)" -gt "$m0" ]
    [ "$(csum "$NODE_n2_URL" libs/cut/k)" = "$(sha "$SUITE_TMP/new")" ]
}

@test "messages lost while the bus was cut: the next one shows the gap and the peer drops its cache" {
    need_nft
    echo b1 >"$SUITE_TMP/b1"
    echo b2 >"$SUITE_TMP/b2"
    echo c >"$SUITE_TMP/c"
    cget -T "$SUITE_TMP/b1" "$NODE_n1_URL/libs/gap/b" >/dev/null
    cget -T "$SUITE_TMP/b2" "$NODE_n1_URL/libs/gap/b-next" >/dev/null
    wait_until 10 has_bus_conns
    cut_bus "$NODE_n3_BUS"
    # ZeroMQ's heartbeats (3 s) close the peers' connections to n3: what
    # they send to n3 from then on is lost, and numbered
    wait_until 20 no_bus_conns
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/c" "$NODE_n1_URL/libs/gap/c1")" = 201 ]
    grep -q "no acknowledgement from n3" "$NODE_n1_DIR/stderr.log"
    # n3 caches gap/b after that flush; then the row changes behind the
    # bus's back (as if its invalidation were among the lost messages)
    [ "$(csum "$NODE_n3_URL" libs/gap/b)" = "$(sha "$SUITE_TMP/b1")" ]
    [ "$(csum "$NODE_n3_URL" libs/gap/b)" = "$(sha "$SUITE_TMP/b1")" ]
    sql "UPDATE artifacts SET path = 'gap/b-old' WHERE path = 'gap/b';
         UPDATE artifacts SET path = 'gap/b' WHERE path = 'gap/b-next'"
    # n3 still answers from its cache: nothing has told it yet
    [ "$(csum "$NODE_n3_URL" libs/gap/b)" = "$(sha "$SUITE_TMP/b1")" ]
    heal_bus
    wait_until 20 has_bus_conns
    # the next message from n1 reaches n3 with a sequence number past the
    # lost ones: n3 drops its cache before it handles it
    local flushes0
    flushes0=$(mvalue "$NODE_n3_URL" granary_cluster_cache_flushes_total)
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/c" "$NODE_n1_URL/libs/gap/c2")" = 201 ]
    wait_until 10 grep -q "messages from n1 were lost: dropping the cache" "$NODE_n3_DIR/stderr.log"
    [ "$(mvalue "$NODE_n3_URL" granary_cluster_cache_flushes_total)" -gt "$flushes0" ]
    [ "$(csum "$NODE_n3_URL" libs/gap/b)" = "$(sha "$SUITE_TMP/b2")" ]
}

@test "a malformed invalidation makes the peer drop its cache before it acknowledges; a forged one is ignored" {
    /usr/bin/python3 -c 'import zmq' 2>/dev/null || skip "needs Debian's python3-zmq"
    echo x1 >"$SUITE_TMP/x1"
    echo x2 >"$SUITE_TMP/x2"
    cget -T "$SUITE_TMP/x1" "$NODE_n1_URL/libs/bad/x" >/dev/null
    cget -T "$SUITE_TMP/x2" "$NODE_n1_URL/libs/bad/x-next" >/dev/null
    [ "$(csum "$NODE_n3_URL" libs/bad/x)" = "$(sha "$SUITE_TMP/x1")" ]
    # the row changes behind the bus's back: n3 goes on answering from its cache
    sql "UPDATE artifacts SET path = 'bad/x-old' WHERE path = 'bad/x';
         UPDATE artifacts SET path = 'bad/x' WHERE path = 'bad/x-next'"
    [ "$(csum "$NODE_n3_URL" libs/bad/x)" = "$(sha "$SUITE_TMP/x1")" ]
    local probe=tests/integration/tools/bus_probe.py ep=tcp://127.0.0.1:$NODE_n3_BUS
    # a key length that runs past the payload's end: the keys cannot be told
    local bad=01000000ff
    # signed with another key: dropped unanswered, and nothing happens
    run /usr/bin/python3 "$probe" "$ep" n3 "$(cluster_key)" probe 1 "$bad" --wrong-key
    [ "$status" -eq 1 ]
    [ "$output" = "no answer" ]
    [ "$(csum "$NODE_n3_URL" libs/bad/x)" = "$(sha "$SUITE_TMP/x1")" ]
    refute grep -q "malformed invalidation" "$NODE_n3_DIR/stderr.log"
    # signed with the join key: n3 cannot tell what to drop, so it drops
    # everything, and only then acknowledges
    run /usr/bin/python3 "$probe" "$ep" n3 "$(cluster_key)" probe 1 "$bad"
    [ "$status" -eq 0 ]
    [ "$output" = ack ]
    grep -q "malformed invalidation from probe: dropping the cache" "$NODE_n3_DIR/stderr.log"
    [ "$(csum "$NODE_n3_URL" libs/bad/x)" = "$(sha "$SUITE_TMP/x2")" ]
}
