#!/usr/bin/env bats
# With no database URL granaryd runs a private PostgreSQL under DIR/pg:
# unix socket only, as an unprivileged user, stopped with the node.
load helpers

setup_file() {
    export SUITE_TMP=$(suite_tmp)
    start_node e
    export NODE_e_URL NODE_e_PASS NODE_e_PID NODE_e_DIR NODE_e_PORT
}
teardown_file() { cleanup_suite; }

postmaster_pid() {
    head -1 "$NODE_e_DIR/pg/data/postmaster.pid" 2>/dev/null
}

@test "first start creates the database, prints the URL, and points to the password file" {
    grep -q "ready at http://127.0.0.1:$NODE_e_PORT/" "$NODE_e_DIR/stdout.log"
    # stdout is a file here (a service's journal): the password stays out of it
    grep -q "admin user: admin  password: see $NODE_e_DIR/admin.password" "$NODE_e_DIR/stdout.log"
    run grep -c "$NODE_e_PASS" "$NODE_e_DIR/stdout.log"
    [ "$output" = 0 ]
    [ "$(stat -c %a "$NODE_e_DIR/admin.password")" = 600 ]
    [ ${#NODE_e_PASS} -ge 20 ]
    [ "$(code -u "admin:$NODE_e_PASS" "$NODE_e_URL/api/repositories")" = 200 ]
    [ -d "$NODE_e_DIR/pg/data" ]
}

@test "the embedded server listens on no TCP port and runs unprivileged" {
    local pid
    pid=$(postmaster_pid)
    [ -n "$pid" ]
    kill -0 "$pid"
    [ -z "$(ss -ltnpH | grep "pid=$pid,")" ]
    ls "$NODE_e_DIR"/pg/run/.s.PGSQL.*
    if [ "$(id -u)" = 0 ]; then
        [ "$(ps -o user= -p "$pid")" = postgres ]
    fi
}

@test "data persists across a restart, and SIGTERM stops the embedded server" {
    make_repo e keep
    echo persisted >"$SUITE_TMP/p"
    acurl e -T "$SUITE_TMP/p" /keep/p.txt >/dev/null
    local pid
    pid=$(postmaster_pid)
    stop_node e
    wait_until 5 pid_gone "$pid"
    # the password is not printed again
    : >"$NODE_e_DIR/stdout.log"
    restart_node e
    grep -q "ready at" "$NODE_e_DIR/stdout.log"
    refute grep -q "$NODE_e_PASS" "$NODE_e_DIR/stdout.log"
    [ "$(acurl e /keep/p.txt)" = persisted ]
}

@test "a granaryd killed with SIGKILL does not leave its PostgreSQL running" {
    local pid
    pid=$(postmaster_pid)
    [ -n "$pid" ]
    kill -0 "$pid"
    kill -KILL "$(node_pid e)"
    wait_until 10 pid_gone "$pid"
    # and the next start works
    restart_node e
    [ "$(acurl e /keep/p.txt)" = persisted ]
}

@test "the embedded server also runs under a directory its user cannot traverse" {
    [ "$(id -u)" = 0 ] || skip "only root drops to the postgres user"
    local locked=$SUITE_TMP/locked
    mkdir -p "$locked"
    chmod 0700 "$locked" # a fresh clone in a mktemp -d looks like this
    local port
    port=$(free_port)
    "$GRANARYD" --data-dir "$locked/data" --listen 127.0.0.1:$port >"$SUITE_TMP/locked.out" 2>"$SUITE_TMP/locked.err" &
    local pid=$!
    echo $pid >>"$SUITE_TMP/pids"
    wait_ready "http://127.0.0.1:$port" $pid || { tail -20 "$SUITE_TMP/locked.err"; return 1; }
    grep -q "as an open directory" "$SUITE_TMP/locked.err"
    [ "$(stat -c %a "$locked")" = 700 ] # left as it was
    local pass
    pass=$(cat "$locked/data/admin.password")
    [ "$(code -u "admin:$pass" "http://127.0.0.1:$port/api/repositories")" = 200 ]
    local pm
    pm=$(head -1 "$locked/data/pg/data/postmaster.pid")
    kill -TERM $pid
    wait_until 10 pid_gone $pid
    wait_until 10 pid_gone "$pm"
}
