#!/usr/bin/env bats
# A deposed primary (docs/cluster.md "The primary"): the primary is stopped
# with SIGSTOP in the middle of its work, another node takes the role, and
# the old one is woken with SIGCONT still believing it is the primary until
# its next renewal (held up here by a row lock, so that the window is
# seconds wide, not a race). Its fenced statements (plugin job claims, checked
# against the lease holder and token) must do nothing; repair, fenced by the
# token and working under row locks, must lose no copy. A fenced action held
# open keeps the lease where it is without holding up anyone's heartbeat.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db deposed)
    export LEASE_MS=1500
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    start_cluster_node n3 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"generic"}' "$NODE_n1_URL/api/repositories/libs" >/dev/null
}
teardown_file() {
    # a node left stopped by a failed test must be able to exit
    local n
    for n in n1 n2 n3; do kill -CONT "$(node_pid $n)" 2>/dev/null || true; done
    cleanup_suite
}

cget() { curl -sS -u "admin:$PASS" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
sql() { psql_db deposed "$1"; }
url_of() { eval "echo \$NODE_$1_URL"; }
log_of() { echo "$SUITE_TMP/node-$1/stderr.log"; }
holder() { sql "SELECT holder FROM cluster_leases WHERE name = 'primary' AND expiry > now()"; }
has_holder() { [ -n "$(holder)" ]; }
holder_is_not() { # NODE: another node holds the primary lease now
    local h
    h=$(holder)
    [ -n "$h" ] && [ "$h" != "$1" ]
}
storage_config() {
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d "$1" \
        "$NODE_n1_URL/api/system/storage/config" >/dev/null
}
repair_pass() { # NODE: a repair pass asked of NODE ran (its report in pass.json)
    cget -o "$SUITE_TMP/pass.json" -X POST "$(url_of "$1")/api/system/storage/optimize" &&
        jq -e 'has("failed")' "$SUITE_TMP/pass.json" >/dev/null
}
log_count() { grep -c "$2" "$(log_of "$1")" || true; }
log_grew() { [ "$(log_count "$1" "$2")" -gt "$3" ]; }
row_locked() { # someone holds a row lock (FOR UPDATE) in cluster_nodes
    [ "$(sql "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
              WHERE c.relname = 'cluster_nodes' AND l.mode = 'RowShareLock'")" -ge 1 ]
}
runs_by() { # NODE: runs of the job 'beat' recorded for NODE
    sql "SELECT count(*) FROM plugin_job_runs WHERE plugin = 'beat' AND node = '$1'"
}
ran_since() { # NODE COUNT: NODE has more than COUNT runs
    [ "$(runs_by "$1")" -gt "$2" ]
}

@test "a primary stopped and deposed claims no job run after it wakes: the claim is fenced" {
    [ "$(code -u "admin:$PASS" -X PUT --data-binary 'return { jobs = { beat = { interval = 1, where = "primary",
  run = function() granary.log("beat on " .. granary.node()) end } } }' \
        "$NODE_n1_URL/api/plugins/beat")" = 201 ]
    wait_until 20 has_holder
    local p q t0
    p=$(holder)
    t0=$(sql "SELECT token FROM cluster_leases WHERE name = 'primary'")
    wait_until 20 ran_since "$p" 0
    kill -STOP "$(node_pid "$p")"
    # the primary lease (3 s) expires; another node takes it with a new token
    wait_until 20 holder_is_not "$p"
    q=$(holder)
    [ "$(sql "SELECT token FROM cluster_leases WHERE name = 'primary'")" -gt "$t0" ]
    wait_until 20 ran_since "$q" 0
    local takeover
    takeover=$(sql "SELECT min(started) FROM plugin_job_runs WHERE plugin = 'beat' AND node = '$q'")
    # wake the old primary with its heartbeat held up: a transaction of
    # ours locks its row, so its renewal (and with it the news that it is
    # deposed) waits, while its job thread goes on with the old token,
    # trying to claim every 250 ms. The new primary is paused meanwhile
    # (for less than its 3 s lease), so that the job falls due and only
    # the old one tries
    psql_db deposed "BEGIN; SELECT id FROM cluster_nodes WHERE id = '$p' FOR UPDATE;
                     SELECT pg_sleep(6); COMMIT" >/dev/null &
    local locker=$!
    wait_until 10 row_locked
    kill -STOP "$(node_pid "$q")"
    kill -CONT "$(node_pid "$p")"
    sleep 2.5 # the window: the job is due after 1 s; the old primary tries 4 times a second
    kill -CONT "$(node_pid "$q")"
    wait "$locker"
    wait_until 20 grep -q "this node is no longer the primary" "$(log_of "$p")"
    # a few more intervals on the new primary
    local nq
    nq=$(runs_by "$q")
    wait_until 20 ran_since "$q" $((nq + 2))
    sql "SELECT node, token, started, finished FROM plugin_job_runs WHERE plugin = 'beat' ORDER BY id"
    # nothing was claimed by the old primary after the takeover, and every
    # run of each node carries that node's own token
    [ "$(sql "SELECT count(*) FROM plugin_job_runs WHERE plugin = 'beat' AND node = '$p' AND started >= '$takeover'")" = 0 ]
    [ "$(sql "SELECT count(*) FROM plugin_job_runs WHERE plugin = 'beat' AND node = '$p' AND token <> $t0")" = 0 ]
    [ "$(sql "SELECT count(DISTINCT token) FROM plugin_job_runs WHERE plugin = 'beat' AND node = '$q'")" = 1 ]
    [ "$(cget "$(url_of "$q")/api/system/cluster" | jq -r .primary)" != "$p" ]
    [ "$(cget "$(url_of "$p")/api/system/metrics" | awk '$1 == "granary_cluster_primary" { print $2 }')" = 0 ]
    [ "$(code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/api/plugins/beat")" = 204 ]
}

@test "a primary stopped in the middle of repair, deposed, then woken: no copy lost, exactly two after" {
    # one copy of each binary; then redundancy 2 wakes the primary's repair,
    # paced to about two copies a second so that it can be stopped half-way
    storage_config '{"redundancy":1,"lenientLimit":1,"gcIntervalSeconds":0,"scrubBytesPerSecond":0,"repairBytesPerSecond":65536}'
    local i n s
    : >"$SUITE_TMP/shas"
    for i in 1 2 3 4 5 6; do
        head -c 32768 /dev/urandom >"$SUITE_TMP/r$i"
        n=n$((i % 3 + 1))
        [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/r$i" "$(url_of $n)/libs/rep/r$i")" = 201 ]
        echo "$(sha "$SUITE_TMP/r$i")" >>"$SUITE_TMP/shas"
    done
    wait_until 20 has_holder
    local p q
    p=$(holder)
    local copied0 ended0
    copied0=$(log_count "$p" "repair: copied")
    ended0=$(log_count "$p" "repair: checked")
    storage_config '{"redundancy":2,"lenientLimit":1,"gcIntervalSeconds":0,"scrubBytesPerSecond":0,"repairBytesPerSecond":65536}'
    # a run on the primary now (its own schedule may be 30 s away); if its
    # thread began one first, this call is refused and that run goes on
    cget -o "$SUITE_TMP/p-optimize" -X POST "$(url_of "$p")/api/system/storage/optimize" &
    local kick=$!
    wait_until 30 log_grew "$p" "repair: copied" "$copied0"
    kill -STOP "$(node_pid "$p")"
    wait_until 20 holder_is_not "$p"
    q=$(holder)
    # repair runs meanwhile on a live node: it copies what it can reach (not
    # the binaries only the stopped node holds)
    run cget -X POST "$(url_of "$q")/api/system/storage/optimize"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq .failed)" = 0 ]
    kill -CONT "$(node_pid "$p")"
    wait_until 20 grep -q "this node is no longer the primary" "$(log_of "$p")"
    # the old primary goes on with the run it had begun, from its old view
    wait_until 40 log_grew "$p" "repair: checked" "$ended0"
    wait "$kick"
    grep "repair:" "$(log_of "$p")" "$(log_of "$q")"
    # then a run by the current primary's rules settles it: every binary
    # has exactly two copies, on disk where the database says, readable (a
    # pass of its own may be running there: then the next one)
    wait_until 60 repair_pass "$q"
    cat "$SUITE_TMP/pass.json"
    [ "$(jq .failed "$SUITE_TMP/pass.json")" = 0 ]
    while read -r s; do
        local h
        h=$(sql "SELECT string_agg(node, ',' ORDER BY node) FROM binary_locations WHERE sha256 = '$s'")
        [ "$(echo "$h" | tr , '\n' | wc -l)" = 2 ] || { echo "$s: holders $h"; return 1; }
        for n in ${h//,/ }; do
            [ -f "$SUITE_TMP/node-$n/filestore/${s:0:2}/$s" ] || { echo "$s: no file on $n"; return 1; }
        done
    done <"$SUITE_TMP/shas"
    for i in 1 2 3 4 5 6; do
        for n in n1 n2 n3; do
            [ "$(cget "$(url_of $n)/libs/rep/r$i" | sha256sum | cut -d' ' -f1)" = "$(sha "$SUITE_TMP/r$i")" ]
        done
    done
}

fence_held() { # our fenced session is inside its pg_sleep, so it holds the row
    [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%FOR KEY SHARE%'")" = 1 ]
}
lease_past() { # EPOCH: the primary lease's expiry is later than EPOCH
    [ "$(sql "SELECT extract(epoch FROM expiry) > $1 FROM cluster_leases WHERE name = 'primary'")" = t ]
}
lease_expired() { [ "$(sql "SELECT expiry < now() FROM cluster_leases WHERE name = 'primary'")" = t ]; }
others_renew() { # NODE: both other nodes hold a live cache lease
    [ "$(sql "SELECT count(*) FROM cluster_nodes WHERE id <> '$1' AND lease_expiry > now()")" = 2 ]
}

@test "a fenced action held open: the holder renews through it; nobody takes the lease until it ends" {
    wait_until 20 has_holder
    local h t0 e0
    h=$(holder)
    t0=$(sql "SELECT token FROM cluster_leases WHERE name = 'primary'")
    # the lock cluster_fence() takes, held by a session that sleeps (as a
    # trim waiting on an unreachable peer would)
    psql_db deposed "BEGIN; SELECT 1 FROM cluster_leases WHERE name = 'primary' AND token = $t0
                     FOR KEY SHARE; SELECT pg_sleep(120); COMMIT" >/dev/null 2>&1 &
    local fence=$!
    wait_until 10 fence_held
    # the holder's renewals go through (they move the expiry only)
    e0=$(sql "SELECT extract(epoch FROM expiry) FROM cluster_leases WHERE name = 'primary'")
    wait_until 10 lease_past "$e0 + 1"
    [ "$(holder)" = "$h" ]
    # the holder stops: its lease expires, yet no other node takes it while
    # the fenced action runs, and their heartbeats (cache leases) go on
    kill -STOP "$(node_pid "$h")"
    wait_until 10 lease_expired
    wait_until 10 others_renew "$h" || {
        sql "SELECT id, lease_expiry, now() FROM cluster_nodes"
        sql "SELECT pid, application_name, state, wait_event_type, wait_event, left(query, 120) FROM pg_stat_activity WHERE datname = 'deposed'"
        tail -20 "$(log_of n1)" "$(log_of n2)" "$(log_of n3)"
        false
    }
    fence_held
    [ "$(sql "SELECT holder || ' ' || token FROM cluster_leases WHERE name = 'primary'")" = "$h $t0" ]
    # the action ends: another node takes the lease with the next token
    sql "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%FOR KEY SHARE%'" >/dev/null
    wait "$fence" || true
    wait_until 20 holder_is_not "$h"
    [ "$(sql "SELECT token FROM cluster_leases WHERE name = 'primary'")" = $((t0 + 1)) ]
    kill -CONT "$(node_pid "$h")"
    wait_until 20 grep -q "this node is no longer the primary" "$(log_of "$h")"
}
