#!/usr/bin/env bats
# granaryd's command line, settings precedence and the data-directory lock.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db cli)
}
teardown_file() { cleanup_suite; }

@test "--help and --version answer and exit 0" {
    run "$GRANARYD" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"--data-dir DIR"* ]]
    [[ "$output" == *"--database-url URL"* ]]
    run "$GRANARYD" --version
    [ "$status" -eq 0 ]
    [[ "$output" == "granaryd $(cat VERSION)" ]]
    run "$GRANARYCTL" version
    [ "$status" -eq 0 ]
}

@test "an unknown flag or a bad value exits 2 with a message" {
    run "$GRANARYD" --no-such-flag 1
    [ "$status" -eq 2 ]
    [[ "$output" == *"unknown setting 'no-such-flag'"* ]]
    run "$GRANARYD" --listen 127.0.0.1:99999
    [ "$status" -eq 2 ]
    [[ "$output" == *"listen port"* ]]
}

@test "config file < GRANARY_* environment < flags" {
    local p1 p2 p3
    p1=$(free_port) p2=$(free_port) p3=$(free_port)
    local dir=$SUITE_TMP/prec
    mkdir -p "$dir"
    printf '# settings\ndata_dir = %s\nlisten = 127.0.0.1:%s\ndatabase_url = "%s"\n' "$dir" "$p1" "$DB" >"$dir/g.conf"
    # file only
    "$GRANARYD" --config "$dir/g.conf" 2>"$dir/err1" &
    local pid=$!
    echo $pid >>"$SUITE_TMP/pids"
    wait_ready "http://127.0.0.1:$p1" $pid
    kill -TERM $pid
    wait $pid
    # environment beats the file
    GRANARY_LISTEN=127.0.0.1:$p2 "$GRANARYD" --config "$dir/g.conf" 2>"$dir/err2" &
    pid=$!
    echo $pid >>"$SUITE_TMP/pids"
    wait_ready "http://127.0.0.1:$p2" $pid
    kill -TERM $pid
    wait $pid
    # a flag beats both
    GRANARY_LISTEN=127.0.0.1:$p2 "$GRANARYD" --config "$dir/g.conf" --listen 127.0.0.1:$p3 2>"$dir/err3" &
    pid=$!
    echo $pid >>"$SUITE_TMP/pids"
    wait_ready "http://127.0.0.1:$p3" $pid
    kill -TERM $pid && wait $pid
}

@test "a second granaryd on the same data directory refuses to start" {
    start_node a --database-url "$DB"
    run "$GRANARYD" --data-dir "$NODE_a_DIR" --listen 127.0.0.1:$(free_port) --database-url "$DB"
    [ "$status" -ne 0 ]
    [[ "$output" == *"in use by another granaryd"* ]]
    # the first one is unaffected
    [ "$(code "$NODE_a_URL/api/system/ping")" = 200 ]
}

@test "SIGTERM exits 0 and leaves no process behind" {
    start_node b --database-url "$DB"
    # the node is a child of this shell: wait gives its exit status
    kill -TERM "$NODE_b_PID"
    local rc=0
    wait "$NODE_b_PID" || rc=$?
    [ "$rc" -eq 0 ]
    refute kill -0 "$NODE_b_PID"
    grep -q "stopped" "$NODE_b_DIR/stderr.log"
}
