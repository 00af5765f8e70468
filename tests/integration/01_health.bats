#!/usr/bin/env bats
# Health endpoints, and readiness that waits for the database.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db health)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR
}
teardown_file() { cleanup_suite; }

@test "ping answers OK as text" {
    run curl -sS -i "$NODE_a_URL/api/system/ping"
    [[ "$output" == *"HTTP/1.1 200"* ]]
    [[ "$output" == *"OK" ]]
}

@test "version, liveness and readiness answer JSON" {
    run curl -fsS "$NODE_a_URL/api/system/version"
    [ "$(echo "$output" | jq -r .version)" = "$(cat VERSION)" ]
    run curl -fsS "$NODE_a_URL/api/v1/system/liveness"
    [ "$(echo "$output" | jq -r .status)" = UP ]
    run curl -fsS "$NODE_a_URL/artifactory/api/v1/system/readiness"
    [ "$(echo "$output" | jq -r .status)" = UP ]
}

@test "readiness is 503 while the database is unreachable, then 200 once it answers" {
    local port dir
    port=$(free_port)
    dir=$SUITE_TMP/late
    mkdir -p "$dir"
    # a database URL pointing at a port where nothing listens yet
    local dbport
    dbport=$(free_port)
    "$GRANARYD" --data-dir "$dir" --listen 127.0.0.1:$port \
        --database-url "postgresql://granary@127.0.0.1:$dbport/late?connect_timeout=1" 2>"$dir/err" &
    local pid=$!
    echo $pid >>"$SUITE_TMP/pids"
    for i in $(seq 50); do
        [ "$(code "http://127.0.0.1:$port/api/v1/system/liveness")" = 200 ] && break
        sleep 0.1
    done
    [ "$(code "http://127.0.0.1:$port/api/v1/system/liveness")" = 200 ]
    run curl -sS "http://127.0.0.1:$port/api/v1/system/readiness"
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 503 ]
    [ "$(code "http://127.0.0.1:$port/api/system/ping")" = 503 ]
    [ "$(code "http://127.0.0.1:$port/api/repositories")" = 503 ]
    # start a second PostgreSQL on that port: the node becomes ready by itself
    local pg2=$SUITE_TMP/pg2
    mkdir -p "$pg2"
    chmod 700 "$pg2"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$pg2"; fi
    as_pg "$PG_BIN/initdb" -D "$pg2" -U granary --auth=trust --no-locale >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$pg2" -l "$pg2/log" -w -o "-p $dbport -k $pg2 -c listen_addresses=127.0.0.1" start >/dev/null
    "$PG_BIN/psql" -q -h 127.0.0.1 -p $dbport -U granary -d postgres -c 'CREATE DATABASE late' >/dev/null
    wait_ready "http://127.0.0.1:$port" $pid 30
    kill -TERM $pid
    wait $pid
    as_pg "$PG_BIN/pg_ctl" -D "$pg2" -m fast -w stop >/dev/null
}
