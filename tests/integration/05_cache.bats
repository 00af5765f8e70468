#!/usr/bin/env bats
# The LMDB metadata cache: warm reads make no PostgreSQL round trip, writes
# are seen at once, and the cache survives only clean restarts.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db cache)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR NODE_a_PORT
    make_repo a libs
    head -c 5000 /dev/urandom >"$SUITE_TMP/f"
    acurl a -T "$SUITE_TMP/f" /libs/c/f.bin >/dev/null
}
teardown_file() { cleanup_suite; }

restart_a() {
    stop_node a
    restart_node a --database-url "$DB"
}

@test "a warm GET makes no PostgreSQL query" {
    acurl a -o /dev/null /libs/c/f.bin # warm it
    local q1 q2
    q1=$(metric a granary_db_queries_total)
    for i in $(seq 50); do
        acurl a -o /dev/null /libs/c/f.bin
        acurl a -o /dev/null -I /libs/c/f.bin
    done
    q2=$(metric a granary_db_queries_total)
    echo "queries before $q1 after $q2"
    [ -n "$q1" ]
    [ "$q1" = "$q2" ]
    [ "$(metric a granary_cache_hits_total)" -gt 100 ]
}

@test "an upload's change-counter bump and COMMIT go in one round trip; a failing bump acknowledges nothing" {
    head -c 3000 /dev/urandom >"$SUITE_TMP/gc1"
    local v1 v2 q1 q2
    # the path's absence cached by a GET first: the deploy's look-up is then no query
    [ "$(acurl a -o /dev/null -w '%{http_code}' /libs/gc/one.bin)" = 404 ]
    v1=$(psql_db cache "SELECT value FROM change_counter WHERE id = 1")
    q1=$(metric a granary_db_queries_total)
    [ "$(acurl a -o /dev/null -w '%{http_code}' -T "$SUITE_TMP/gc1" /libs/gc/one.bin)" = 201 ]
    q2=$(metric a granary_db_queries_total)
    v2=$(psql_db cache "SELECT value FROM change_counter WHERE id = 1")
    echo "counter $v1 -> $v2, queries $q1 -> $q2"
    [ "$v2" = $((v1 + 1)) ]
    # 7 statements: BEGIN, the binary's row lock, binaries, locations,
    # artifacts, the bump and COMMIT as one, and the audit row after the
    # answer; 8 when the bump and COMMIT were two
    [ $((q2 - q1)) -le 7 ]
    [ "$(psql_db cache "SELECT count(*) FROM artifacts WHERE repo = 'libs' AND path = 'gc/one.bin'")" = 1 ]
    # the bump fails (a trigger refuses it): the upload is not acknowledged
    # and its rows are rolled back with it
    psql_db cache "CREATE FUNCTION refuse_bump() RETURNS trigger LANGUAGE plpgsql AS
                   \$\$ BEGIN RAISE EXCEPTION 'bump refused'; END \$\$;
                   CREATE TRIGGER refuse_bump BEFORE UPDATE ON change_counter
                   FOR EACH ROW EXECUTE FUNCTION refuse_bump()"
    local st
    st=$(acurl a -o /dev/null -w '%{http_code}' -T "$SUITE_TMP/gc1" /libs/gc/two.bin)
    psql_db cache "DROP TRIGGER refuse_bump ON change_counter; DROP FUNCTION refuse_bump()"
    echo "status with the bump refused: $st"
    [[ $st == 5* ]] || false
    [ "$(psql_db cache "SELECT count(*) FROM artifacts WHERE repo = 'libs' AND path = 'gc/two.bin'")" = 0 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/gc/two.bin")" = 404 ]
    # and the connection it used serves the next upload
    [ "$(acurl a -o /dev/null -w '%{http_code}' -T "$SUITE_TMP/gc1" /libs/gc/two.bin)" = 201 ]
    [ "$(acurl a /libs/gc/two.bin | cmp - "$SUITE_TMP/gc1" && echo same)" = same ]
}

@test "a deploy's look-up of its own path caches nothing (the write's invalidation would drop it at once)" {
    echo body >"$SUITE_TMP/nf"
    local h1 m1 h2 m2
    # refused after the look-up (wrong checksum): nothing written, nothing invalidated
    [ "$(acurl a -o /dev/null -w '%{http_code}' -H "X-Checksum-Sha1: $(printf '0%.0s' $(seq 40))" \
        -T "$SUITE_TMP/nf" /libs/nf/x.bin)" = 409 ]
    h1=$(metric a granary_cache_hits_total)
    m1=$(metric a granary_cache_misses_total)
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/nf/x.bin")" = 404 ]
    h2=$(metric a granary_cache_hits_total)
    m2=$(metric a granary_cache_misses_total)
    echo "hits $h1 -> $h2, misses $m1 -> $m2"
    # the GET's own look-up missed: the deploy had not filled the entry
    [ $((m2 - m1)) -ge 1 ]
    # and a GET does fill it: the next one is a hit
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/nf/x.bin")" = 404 ]
    [ "$(metric a granary_cache_misses_total)" = "$m2" ]
}

@test "writes are visible at once: replace, delete, re-create, and a cached 404" {
    echo v1 >"$SUITE_TMP/v1"
    echo v2 >"$SUITE_TMP/v2"
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/rw/x")" = 404 ] # cached absence
    acurl a -T "$SUITE_TMP/v1" /libs/rw/x >/dev/null
    [ "$(acurl a /libs/rw/x)" = v1 ]
    acurl a -T "$SUITE_TMP/v2" /libs/rw/x >/dev/null
    [ "$(acurl a /libs/rw/x)" = v2 ]
    acurl a -X DELETE /libs/rw >/dev/null
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/rw/x")" = 404 ]
    acurl a -T "$SUITE_TMP/v1" /libs/rw/x >/dev/null
    [ "$(acurl a /libs/rw/x)" = v1 ]
    # repository changes too
    acurl a -X POST -H 'Content-Type: application/json' -d '{"description":"d2"}' /api/repositories/libs >/dev/null
    [ "$(acurl a /api/repositories/libs | jq -r .description)" = d2 ]
}

@test "the cache survives a clean restart and serves without queries" {
    acurl a -o /dev/null /libs/c/f.bin
    restart_a
    grep -q "metadata cache kept" "$NODE_a_DIR/stderr.log"
    local q1 q2
    q1=$(metric a granary_db_queries_total)
    acurl a -o "$SUITE_TMP/back" /libs/c/f.bin
    q2=$(metric a granary_db_queries_total)
    cmp "$SUITE_TMP/f" "$SUITE_TMP/back"
    [ "$q1" = "$q2" ]
}

@test "a change made while the node was down drops the cache at start" {
    stop_node a
    : >"$NODE_a_DIR/stderr.log"
    # another writer (here: psql) changes the data and the change counter
    psql_db cache "UPDATE artifacts SET path='c/moved.bin' WHERE path='c/f.bin';
                   UPDATE change_counter SET value = value + 1"
    restart_a
    grep -q "metadata cache dropped" "$NODE_a_DIR/stderr.log"
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/c/f.bin")" = 404 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/c/moved.bin")" = 200 ]
}

@test "after kill -9 the cache is dropped at start and answers stay right" {
    acurl a -o /dev/null /libs/c/moved.bin
    local pid
    pid=$(node_pid a)
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    : >"$NODE_a_DIR/stderr.log"
    restart_a
    grep -q "metadata cache dropped" "$NODE_a_DIR/stderr.log"
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/c/moved.bin")" = 200 ]
}

@test "granaryctl cache-drop refuses a running node and empties a stopped one" {
    run "$GRANARYCTL" cache-drop --data-dir "$NODE_a_DIR"
    [ "$status" -ne 0 ]
    [[ "$output" == *"in use"* ]]
    stop_node a
    run "$GRANARYCTL" cache-drop --data-dir "$NODE_a_DIR"
    [ "$status" -eq 0 ]
    : >"$NODE_a_DIR/stderr.log"
    restart_a
    grep -q "metadata cache dropped" "$NODE_a_DIR/stderr.log"
    local m1 m2
    m1=$(metric a granary_cache_misses_total)
    acurl a -o /dev/null /libs/c/moved.bin
    m2=$(metric a granary_cache_misses_total)
    [ "$m2" -gt "$m1" ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/c/moved.bin")" = 200 ]
}

@test "a single node serves a cached artifact while its database is down (no peers, no lease to lose)" {
    head -c 3000 /dev/urandom >"$SUITE_TMP/dd"
    acurl a -T "$SUITE_TMP/dd" /libs/c/dbdown.bin >/dev/null
    acurl a -o /dev/null /libs/c/dbdown.bin # cached
    stop_pg
    local t0 t1 c
    t0=$(date +%s%N)
    c=$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/c/dbdown.bin")
    t1=$(date +%s%N)
    echo "GET with the database down: $c in $(((t1 - t0) / 1000000)) ms"
    [ "$c" = 200 ]
    acurl a -o "$SUITE_TMP/back" /libs/c/dbdown.bin
    cmp "$SUITE_TMP/dd" "$SUITE_TMP/back"
    # a write needs the database: refused cleanly, and says when to come back
    echo w >"$SUITE_TMP/w"
    [ "$(code -u "admin:$NODE_a_PASS" -T "$SUITE_TMP/w" "$NODE_a_URL/libs/c/w.bin")" = 503 ]
    curl -sS -D - -o /dev/null -u "admin:$NODE_a_PASS" -T "$SUITE_TMP/w" "$NODE_a_URL/libs/c/w.bin" |
        grep -qi '^retry-after: 1'
    # what the cache does not hold is not guessed: a miss is a 503 too, not a 404
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/c/never-read.bin")" = 503 ]
    # the same server back: the node writes again
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/log" -w -t 60 \
        -o "-p $PGPORT -k $PGDATA_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    wait_until 30 acurl a -f -o /dev/null -T "$SUITE_TMP/w" /libs/c/w.bin
}

@test "a password change in the database is honoured once the user's entry is invalidated" {
    # the fast credential path must not outlive the stored hash: a new hash
    # written by another writer plus a restart (cache dropped) refuses the old one
    local newhash
    newhash=$(echo 'N3w-password-123' | "$GRANARYCTL" hash-password)
    stop_node a
    psql_db cache "UPDATE users SET password_hash='$newhash' WHERE name='admin';
                   UPDATE change_counter SET value = value + 1"
    restart_a
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/api/repositories")" = 401 ]
    [ "$(code -u "admin:N3w-password-123" "$NODE_a_URL/api/repositories")" = 200 ]
}
