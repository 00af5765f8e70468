#!/usr/bin/env bats
# Graceful shutdown, migrations under concurrency, schema fencing and a
# PostgreSQL restart under a running node.
load helpers

setup_file() {
    start_pg
}
teardown_file() { cleanup_suite; }

@test "SIGTERM lets an upload in flight finish, then exits 0" {
    local db
    db=$(new_db term)
    start_node t --database-url "$db"
    make_repo t libs
    head -c 600000 /dev/urandom >"$SUITE_TMP/slow"
    curl -sS -u "admin:$NODE_t_PASS" --limit-rate 200K -T "$SUITE_TMP/slow" \
        -o "$SUITE_TMP/slow.out" -w '%{http_code}' "$NODE_t_URL/libs/slow.bin" >"$SUITE_TMP/slow.code" &
    local cpid=$!
    # the upload is in flight: its body streams into the filestore
    wait_until 10 eval '[ -n "$(ls -A "$NODE_t_DIR/filestore/_pre")" ]'
    kill -TERM "$NODE_t_PID"
    wait $cpid
    [ "$(cat "$SUITE_TMP/slow.code")" = 201 ]
    wait "$NODE_t_PID"
    local rc=$?
    [ $rc -eq 0 ]
    # after a restart the file is there
    restart_node t --database-url "$db"
    curl -fsS -u "admin:$NODE_t_PASS" "$NODE_t_URL/libs/slow.bin" | cmp - "$SUITE_TMP/slow"
}

@test "a stopping node serves a request on an open keep-alive connection, says Connection: close, then exits" {
    local db
    db=$(new_db kastop)
    start_node k --database-url "$db"
    make_repo k libs
    run python3 tests/integration/tools/keepalive_stop.py "$NODE_k_URL" "admin:$NODE_k_PASS" \
        "$NODE_k_DIR/pid"
    echo "$output"
    [ "$status" -eq 0 ]
    # the first answer keeps the connection; after SIGTERM the node no longer
    # accepts connections, yet the PUT on the open one is served (a balancer
    # could not resend it) and told to close; the connection then closes
    [ "${lines[0]}" = "201 -" ]
    [ "${lines[1]}" = "201 close" ]
    [ "${lines[2]%% *}" = closed ]
    run curl -sS -o /dev/null "$NODE_k_URL/api/system/ping"
    [ "$status" -ne 0 ]
    wait_until 10 pid_gone "$NODE_k_PID"
    restart_node k --database-url "$db"
    [ "$(curl -sS -o /dev/null -w '%{http_code}' -u "admin:$NODE_k_PASS" "$NODE_k_URL/libs/ka/two.bin")" = 200 ]
}

@test "three nodes starting at once on a fresh database migrate it once" {
    local db
    db=$(new_db fresh)
    for n in m1 m2 m3; do
        local port dir
        port=$(free_port)
        dir=$SUITE_TMP/node-$n
        mkdir -p "$dir"
        "$GRANARYD" --data-dir "$dir" --listen 127.0.0.1:$port --database-url "$db" 2>"$dir/stderr.log" >"$dir/stdout.log" &
        echo $! >>"$SUITE_TMP/pids"
        eval "P_$n=$port W_$n=$!"
    done
    wait_ready "http://127.0.0.1:$P_m1" "$W_m1"
    wait_ready "http://127.0.0.1:$P_m2" "$W_m2"
    wait_ready "http://127.0.0.1:$P_m3" "$W_m3"
    [ "$(psql_db fresh 'SELECT count(*) FROM schema_migrations WHERE version = 1')" = 1 ]
    [ "$(grep -l 'migrated from version 0' "$SUITE_TMP"/node-m?/stderr.log | wc -l)" = 1 ]
    # exactly one admin was created, and one node printed its password
    [ "$(psql_db fresh 'SELECT count(*) FROM users')" = 1 ]
    [ "$(ls "$SUITE_TMP"/node-m?/admin.password | wc -l)" = 1 ]
}

@test "a node refuses to start against a schema newer than it knows" {
    local db
    db=$(new_db future)
    start_node f1 --database-url "$db"
    stop_node f1
    psql_db future "INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')"
    run "$GRANARYD" --data-dir "$NODE_f1_DIR" --listen 127.0.0.1:$(free_port) --database-url "$db"
    [ "$status" -ne 0 ]
    [[ "$output" == *"9999 is newer than this granaryd knows"* ]]
}

@test "a PostgreSQL restart costs only requests in flight; no wrong answers, no intervention" {
    local db
    db=$(new_db restart)
    start_node r --database-url "$db"
    make_repo r libs
    echo v1 >"$SUITE_TMP/v1"
    acurl r -T "$SUITE_TMP/v1" /libs/warm >/dev/null
    acurl r -o /dev/null /libs/warm
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null
    # down: warm reads still right from the cache; everything else 503, never a wrong answer
    [ "$(acurl r /libs/warm)" = v1 ]
    [ "$(code -u "admin:$NODE_r_PASS" "$NODE_r_URL/libs/cold")" = 503 ]
    [ "$(code -u "admin:$NODE_r_PASS" -T "$SUITE_TMP/v1" "$NODE_r_URL/libs/new")" = 503 ]
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/log" -w \
        -o "-p $PGPORT -k $PGDATA_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    # back: writes and cold reads work again without touching granaryd
    local ok=0
    for i in $(seq 50); do
        [ "$(code -u "admin:$NODE_r_PASS" -T "$SUITE_TMP/v1" "$NODE_r_URL/libs/new")" = 201 ] && { ok=1; break; }
        sleep 0.2
    done
    [ $ok = 1 ]
    [ "$(acurl r /libs/new)" = v1 ]
    [ "$(code -u "admin:$NODE_r_PASS" "$NODE_r_URL/libs/cold")" = 404 ]
    # the failed upload left nothing behind
    [ -z "$(ls -A "$NODE_r_DIR/filestore/_pre")" ]
}
