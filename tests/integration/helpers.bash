# helpers.bash - shared by the bats suites: a real PostgreSQL per suite
# (initdb in a temp dir, random free port) and real granaryd processes,
# all stopped by pid in teardown.
#
# Checks must be able to fail: bats runs a test under `set -e`, which ignores
# a `! cmd` and every command but the last of `A && B` unless it is the
# test's last line (scripts/check-tests finds them). Use `refute cmd`,
# `run ! cmd`, separate lines, and `wait_until` instead of a sleep that
# stands in for a state.

# `run !` and `run -N` (bats 1.5)
bats_require_minimum_version 1.5.0

BUILD=${BUILD:-build}
GRANARYD=${GRANARYD:-$PWD/$BUILD/granaryd}
GRANARYCTL=${GRANARYCTL:-$PWD/$BUILD/granaryctl}
PG_BIN=${GRANARY_PG_BINDIR:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
[ -x "$PG_BIN/initdb" ] || PG_BIN=/usr/lib/postgresql/15/bin

# free_port: a port nothing listens on now, and not handed out before in this
# suite (a node binds its ports one after another: two of its ports, or two
# nodes', must not be given the same free port).
free_port() {
    local p used=${SUITE_TMP:-/tmp}/ports.used i
    for ((i = 0; i < 20; i++)); do
        p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
        grep -qx "$p" "$used" 2>/dev/null || break
    done
    if [ -n "${SUITE_TMP:-}" ]; then echo "$p" >>"$used"; fi
    echo "$p"
}

# Run a PostgreSQL tool as the postgres user when we are root.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# A temp dir the postgres user can traverse (under SUITE_TMPROOT when the
# runner gives one: it stops what a suite that timed out left there).
suite_tmp() {
    local d
    d=$(mktemp -d "${SUITE_TMPROOT:-/tmp}/granary-test.XXXXXX")
    chmod 0711 "$d"
    echo "$d"
}

# start_pg: a private PostgreSQL for this suite; sets PGPORT, PGDATA_DIR, DBURL_BASE.
start_pg() {
    export SUITE_TMP=${SUITE_TMP:-$(suite_tmp)}
    export PGDATA_DIR=$SUITE_TMP/pgdata
    export PGPORT
    PGPORT=$(free_port)
    mkdir -p "$PGDATA_DIR"
    chmod 0700 "$PGDATA_DIR"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$PGDATA_DIR"; fi
    as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U granary --auth=trust --no-locale -E UTF8 >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/log" -w -t 60 \
        -o "-p $PGPORT -k $PGDATA_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    export DBURL_BASE="postgresql://granary@127.0.0.1:$PGPORT"
}

stop_pg() {
    if [ -n "${PGDATA_DIR:-}" ] && [ -f "$PGDATA_DIR/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null 2>&1
    fi
    return 0
}

# new_db NAME: create a database, print its URL.
new_db() {
    "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PGPORT" -U granary -d postgres -c "CREATE DATABASE \"$1\"" >/dev/null
    echo "$DBURL_BASE/$1"
}

psql_db() { # psql_db DBNAME SQL
    "$PG_BIN/psql" -qAt -h 127.0.0.1 -p "$PGPORT" -U granary -d "$1" -c "$2"
}

# start_node NAME [granaryd args...]: start granaryd with its own data dir
# and port; sets NODE_<NAME>_{PORT,PID,DIR,URL,PASS}; waits for readiness.
start_node() {
    local name=$1
    shift
    local dir=$SUITE_TMP/node-$name
    local port
    port=$(free_port)
    mkdir -p "$dir"
    "$GRANARYD" --data-dir "$dir" --listen "127.0.0.1:$port" "$@" \
        >>"$dir/stdout.log" 2>>"$dir/stderr.log" &
    local pid=$!
    echo "$pid" >>"$SUITE_TMP/pids"
    echo "$pid" >"$dir/pid"
    echo "$port" >"$dir/port"
    eval "NODE_${name}_PORT=$port NODE_${name}_PID=$pid NODE_${name}_DIR=$dir"
    eval "NODE_${name}_URL=http://127.0.0.1:$port"
    wait_ready "http://127.0.0.1:$port" "$pid" || {
        echo "granaryd $name did not become ready; stderr:" >&2
        tail -20 "$dir/stderr.log" >&2
        return 1
    }
    eval "NODE_${name}_PASS=\$(cat $dir/admin.password 2>/dev/null)" || true
}

wait_ready() { # URL PID [seconds]
    local i
    for ((i = 0; i < ${3:-60} * 10; i++)); do
        kill -0 "$2" 2>/dev/null || return 1
        curl -fsS -o /dev/null "$1/api/v1/system/readiness" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# refute CMD [ARGS...]: CMD must fail. A `! cmd` that a test checks on any
# line (set -e ignores `! cmd` but the last line's).
refute() {
    if "$@"; then
        echo "refute: this succeeded: $*" >&2
        return 1
    fi
    return 0
}

# pid_gone PID: no process has that pid (any more)
pid_gone() {
    ! kill -0 "$1" 2>/dev/null
}

# wait_until SECONDS CMD [ARGS...]: poll CMD every 0.1 s until it succeeds;
# after SECONDS say what did not happen and fail. For waiting on a state
# instead of sleeping for it (the bound is generous: a loaded machine).
wait_until() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    echo "wait_until: not true after $secs s: $*" >&2
    return 1
}

# node_pid NAME: the node's current pid (tests run in subshells, so the
# pid of a restarted node is kept in its data dir).
node_pid() {
    cat "$SUITE_TMP/node-$1/pid"
}

# restart_node NAME [granaryd args...]: start NAME again on its data dir and port.
restart_node() {
    local name=$1 dir=$SUITE_TMP/node-$1 port
    shift
    port=$(cat "$dir/port")
    "$GRANARYD" --data-dir "$dir" --listen "127.0.0.1:$port" "$@" \
        >>"$dir/stdout.log" 2>>"$dir/stderr.log" &
    local pid=$!
    echo "$pid" >>"$SUITE_TMP/pids"
    echo "$pid" >"$dir/pid"
    eval "NODE_${name}_PID=$pid"
    wait_ready "http://127.0.0.1:$port" "$pid" || {
        echo "granaryd $name did not become ready again; stderr:" >&2
        tail -20 "$dir/stderr.log" >&2
        return 1
    }
}

# stop_node NAME: SIGTERM and wait for the exit.
stop_node() {
    local pid
    pid=$(node_pid "$1")
    kill -TERM "$pid" 2>/dev/null || return 0
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    ! kill -0 "$pid" 2>/dev/null || return 1
    wait "$pid" 2>/dev/null || true # 127 when started by another subshell
}

stop_all() {
    [ -f "${SUITE_TMP:-/nonexistent}/pids" ] || return 0
    local pid
    for pid in $(cat "$SUITE_TMP/pids"); do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in $(cat "$SUITE_TMP/pids"); do
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
    done
    rm -f "$SUITE_TMP/pids"
}

cleanup_suite() {
    stop_all
    stop_pg
    # an embedded PostgreSQL left by a killed node: stop it by its pid file
    local pm
    for pm in "$SUITE_TMP"/node-*/pg/data/postmaster.pid; do
        if [ -f "$pm" ]; then kill -INT "$(head -1 "$pm")" 2>/dev/null; fi
    done
    sleep 0.2
    if [ -n "${SUITE_TMP:-}" ]; then rm -rf "$SUITE_TMP"; fi
}

# curl as admin against node NAME: acurl NAME [curl args] PATH
acurl() {
    local name=$1
    shift
    local url pass
    eval "url=\$NODE_${name}_URL pass=\$NODE_${name}_PASS"
    local path=${!#}
    curl -sS -u "admin:$pass" "${@:1:$#-1}" "$url$path"
}

# status code only
code() {
    curl -s -o /dev/null -w '%{http_code}' "$@"
}

# metric NAME-of-node METRIC: read a counter from /api/system/metrics
metric() {
    acurl "$1" /api/system/metrics | awk -v m="$2" '$1 == m { print $2 }'
}

make_repo() { # node key
    acurl "$1" -X PUT -H 'Content-Type: application/json' \
        -d "{\"key\":\"$2\",\"rclass\":\"local\",\"packageType\":\"generic\"}" \
        "/api/repositories/$2" >/dev/null
}

# ---- clusters ----

# cluster_key: a join key file for this suite (created once).
cluster_key() {
    [ -f "$SUITE_TMP/join.key" ] || head -c 32 /dev/urandom | base64 >"$SUITE_TMP/join.key"
    echo "$SUITE_TMP/join.key"
}

# start_cluster_node NAME DBURL [granaryd args...]: a cluster node with its
# own bus port; lease and heartbeat are short so the tests run fast.
start_cluster_node() {
    local name=$1 db=$2
    shift 2
    local bus cport
    bus=$(free_port)
    cport=$(free_port)
    mkdir -p "$SUITE_TMP/node-$name"
    echo "$bus" >"$SUITE_TMP/node-$name/bus"
    echo "$cport" >"$SUITE_TMP/node-$name/cport"
    start_node "$name" --database-url "$db" --join-key-file "$(cluster_key)" --node-id "$name" \
        --bus-listen "127.0.0.1:$bus" --cluster-listen "127.0.0.1:$cport" \
        --lease-ms "${LEASE_MS:-1500}" --heartbeat-ms 250 --down-after-ms 2000 "$@"
    eval "NODE_${name}_BUS=$bus NODE_${name}_CPORT=$cport"
}

# restart_cluster_node NAME DBURL [args...]: same data dir, ports and id.
restart_cluster_node() {
    local name=$1 db=$2
    shift 2
    local bus cport
    bus=$(cat "$SUITE_TMP/node-$name/bus")
    cport=$(cat "$SUITE_TMP/node-$name/cport")
    restart_node "$name" --database-url "$db" --join-key-file "$(cluster_key)" --node-id "$name" \
        --bus-listen "127.0.0.1:$bus" --cluster-listen "127.0.0.1:$cport" \
        --lease-ms "${LEASE_MS:-1500}" --heartbeat-ms 250 --down-after-ms 2000 "$@"
}

# the admin password of a cluster is the first node's
cluster_pass() {
    cat "$SUITE_TMP"/node-*/admin.password 2>/dev/null | head -1
}

# flip_byte FILE OFFSET: replace one byte by its complement (writing a
# fixed byte leaves the file as it was when that byte was already there)
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    [ -n "$b" ] || return 1
    # shellcheck disable=SC2059
    printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
