#!/usr/bin/env bats
# The load balancer (docs/operations.md): granary's reverse-proxy generator,
# checked by nginx -t, haproxy -c and apache2ctl -t; real traffic through
# nginx and HAProxy; and the HA acceptance test: a client loop through nginx
# while a node is killed, every node is restarted in turn and a node is
# drained. Assertions are on correctness, never on timing.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db lb)
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    start_cluster_node n3 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL NODE_n1_PORT NODE_n2_PORT NODE_n3_PORT
    export NODE_n1_CPORT NODE_n2_CPORT NODE_n3_CPORT
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"generic"}' "$NODE_n1_URL/api/repositories/libs" >/dev/null
    printf '%s\n' "$PASS" >"$SUITE_TMP/admin.pass"
    export LB=$SUITE_TMP/lb
    mkdir -p "$LB"
    export LB_PORT=$(free_port)
    export LB_URL=http://127.0.0.1:$LB_PORT
    "$GRANARYCTL" proxy-config --type nginx --url "$NODE_n1_URL" --password-file "$SUITE_TMP/admin.pass" \
        --listen "127.0.0.1:$LB_PORT" --out "$LB/granary.conf"
    scripts/nginx-main-conf "$LB" >"$LB/nginx.conf"
    nginx -p "$LB" -c "$LB/nginx.conf"
    for _ in $(seq 50); do [ -s "$LB/nginx.pid" ] && break; sleep 0.1; done
    cat "$LB/nginx.pid" >>"$SUITE_TMP/pids"
    # membership changes rewrite the file and reload nginx
    "$GRANARYCTL" proxy-config --type nginx --url "$NODE_n1_URL,$NODE_n2_URL,$NODE_n3_URL" \
        --password-file "$SUITE_TMP/admin.pass" --listen "127.0.0.1:$LB_PORT" --out "$LB/granary.conf" \
        --watch --interval 0.5 --reload-cmd "nginx -p $LB -c $LB/nginx.conf -s reload" \
        2>>"$LB/watch.log" &
    echo $! >"$LB/watch.pid"
    echo $! >>"$SUITE_TMP/pids"
}
teardown_file() {
    if [ -f "${LB:-/nonexistent}/haproxy.pid" ]; then kill "$(cat "$LB/haproxy.pid")" 2>/dev/null; fi
    cleanup_suite
}

cget() { curl -sS -u "admin:$PASS" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
upstreams() { grep -c '^    server ' "$LB/granary.conf"; }
wait_upstreams() { # N: until the watched file lists N nodes
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(upstreams)" = "$1" ] && return 0
        sleep 0.1
    done
    cat "$LB/granary.conf"
    return 1
}

@test "nginx, HAProxy and Apache configurations from the generator pass their own checks" {
    local d=$SUITE_TMP/gen
    mkdir -p "$d"
    # API and granaryctl give the same file
    cget -o "$d/api.conf" "$NODE_n2_URL/api/system/configuration/reverseProxy/nginx?listen=127.0.0.1:$LB_PORT"
    diff "$d/api.conf" "$LB/granary.conf"
    grep -q 'client_max_body_size 0;' "$d/api.conf"
    grep -q 'proxy_request_buffering off;' "$d/api.conf"
    grep -q 'proxy_next_upstream error timeout http_502 http_503;' "$d/api.conf"
    grep -q 'X-Forwarded-Proto' "$d/api.conf"
    [ "$(grep -c "server 127.0.0.1:" "$d/api.conf")" = 3 ]
    for p in $NODE_n1_CPORT $NODE_n2_CPORT $NODE_n3_CPORT; do
        refute grep -q ":$p" "$d/api.conf" # the cluster port is never exposed
    done
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/api/system/configuration/reverseProxy/iis")" = 404 ]
    [ "$(code "$NODE_n1_URL/api/system/configuration/reverseProxy/nginx")" = 401 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/api/system/configuration/reverseProxy/nginx?serverName=a;b")" = 400 ]

    # TLS termination with given certificate paths
    openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=granary.test -days 2 \
        -keyout "$d/tls.key" -out "$d/tls.crt" 2>/dev/null
    cat "$d/tls.crt" "$d/tls.key" >"$d/tls.pem"
    local q="listen=127.0.0.1:$(free_port)&sslListen=127.0.0.1:$(free_port)&serverName=granary.test"

    # nginx -t, plain and with TLS
    cp "$d/api.conf" "$d/granary.conf"
    scripts/nginx-main-conf "$d" >"$d/nginx.conf"
    nginx -t -p "$d" -c "$d/nginx.conf"
    cget -o "$d/granary.conf" "$NODE_n1_URL/api/system/configuration/reverseProxy/nginx?$q&sslCertificate=$d/tls.crt&sslKey=$d/tls.key"
    grep -q "ssl_certificate $d/tls.crt;" "$d/granary.conf"
    nginx -t -p "$d" -c "$d/nginx.conf"

    # haproxy -c, plain and with TLS
    "$GRANARYCTL" proxy-config --type haproxy --url "$NODE_n3_URL" --password-file "$SUITE_TMP/admin.pass" \
        --listen "127.0.0.1:$LB_PORT" --out "$d/haproxy.cfg"
    grep -q 'option httpchk GET /api/v1/system/readiness' "$d/haproxy.cfg"
    haproxy -c -f "$d/haproxy.cfg"
    cget -o "$d/haproxy-tls.cfg" "$NODE_n1_URL/api/system/configuration/reverseProxy/haproxy?$q&sslCertificate=$d/tls.pem"
    haproxy -c -f "$d/haproxy-tls.cfg"

    # apache2ctl -t, plain and with TLS, in a minimal server config
    local m=/usr/lib/apache2/modules
    for tls in no yes; do
        if [ $tls = yes ]; then
            cget -o "$d/apache.conf" "$NODE_n1_URL/api/system/configuration/reverseProxy/apache?$q&sslCertificate=$d/tls.crt&sslKey=$d/tls.key"
        else
            cget -o "$d/apache.conf" "$NODE_n1_URL/api/system/configuration/reverseProxy/apache?listen=127.0.0.1:$(free_port)"
        fi
        {
            echo "ServerRoot /etc/apache2"
            echo "PidFile $d/apache.pid"
            echo "ErrorLog $d/apache.err"
            echo "Mutex file:$d default"
            for mod in mpm_event authz_core proxy proxy_http proxy_balancer proxy_hcheck \
                lbmethod_byrequests headers slotmem_shm ssl socache_shmcb; do
                echo "LoadModule ${mod}_module $m/mod_$mod.so"
            done
            echo "Include $d/apache.conf"
        } >"$d/httpd.conf"
        apache2ctl -t -f "$d/httpd.conf"
    done
}

@test "proxy-config --seeds lists the given nodes without asking any; bad option mixes exit 2" {
    local d=$SUITE_TMP/seeds dead
    mkdir -p "$d"
    dead=$(free_port) # nobody listens there: --seeds must not ask
    GRANARY_PASSWORD= run "$GRANARYCTL" proxy-config --type nginx --seeds \
        --url "http://127.0.0.1:$dead,$NODE_n2_URL/" --listen "127.0.0.1:$(free_port)" --out "$d/granary.conf"
    [ "$status" = 0 ]
    [ "$(grep -c '^    server ' "$d/granary.conf")" = 2 ]
    grep -q "server 127.0.0.1:$dead max_fails=1 fail_timeout=5s; # seed1" "$d/granary.conf"
    grep -q "server 127.0.0.1:$NODE_n2_PORT .*# seed2" "$d/granary.conf"
    scripts/nginx-main-conf "$d" >"$d/nginx.conf"
    nginx -t -p "$d" -c "$d/nginx.conf"
    run "$GRANARYCTL" proxy-config --type nginx --seeds --watch --out "$d/x.conf" --url "$NODE_n1_URL"
    [ "$status" = 2 ]
    [[ $output == *"--seeds has nothing to watch"* ]]
    [ ! -e "$d/x.conf" ]
    run "$GRANARYCTL" proxy-config --type nginx --seeds --url "http://a b:1" --out "$d/y.conf"
    [ "$status" = 1 ]
    [ ! -e "$d/y.conf" ]
    # more nodes than it can list: refused, not cut short
    local many
    many=$(for i in $(seq 17); do printf 'http://10.0.0.%d:8080,' "$i"; done)
    run "$GRANARYCTL" proxy-config --type nginx --seeds --url "${many%,}" --out "$d/z.conf"
    [ "$status" = 2 ]
    [[ $output == *"more than 16 node URLs"* ]]
    [ ! -e "$d/z.conf" ]
}

@test "proxy-config reads the node list with an access token (--token-file); a revoked one fails" {
    local d=$SUITE_TMP/token
    mkdir -p "$d"
    cget -X POST -d username=admin -d expires_in=600 "$NODE_n1_URL/api/security/token" |
        jq -r .access_token >"$d/token"
    run "$GRANARYCTL" proxy-config --type nginx --url "$NODE_n2_URL" --token-file "$d/token" \
        --listen "127.0.0.1:$LB_PORT" --out "$d/granary.conf"
    [ "$status" = 0 ]
    [ "$(grep -c '^    server ' "$d/granary.conf")" = 3 ]
    cget -o /dev/null -X POST -d "token=$(cat "$d/token")" "$NODE_n1_URL/api/security/token/revoke"
    run "$GRANARYCTL" proxy-config --type nginx --url "$NODE_n3_URL" --token-file "$d/token" \
        --listen "127.0.0.1:$LB_PORT" --out "$d/other.conf"
    [ "$status" = 1 ]
    [[ $output == *"401 (user, password or token)"* ]]
    [ ! -e "$d/other.conf" ]
    run "$GRANARYCTL" proxy-config --type nginx --url "$NODE_n3_URL" --token-file "$d/token" \
        --password-file "$SUITE_TMP/admin.pass"
    [ "$status" = 2 ]
}

@test "traffic goes through nginx and HAProxy; returned URLs name the proxy (X-Forwarded-*)" {
    head -c 300000 /dev/urandom >"$SUITE_TMP/f1"
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/f1" "$LB_URL/libs/lb/f1.bin")" = 201 ]
    cget -o "$SUITE_TMP/got" "$LB_URL/libs/lb/f1.bin"
    [ "$(sha "$SUITE_TMP/got")" = "$(sha "$SUITE_TMP/f1")" ]
    [ "$(code -I -u "admin:$PASS" "$LB_URL/libs/lb/f1.bin")" = 200 ]
    # nginx spread the requests over the nodes and logged them
    grep -q 'uri="/libs/lb/f1.bin" status=201' "$LB/access.log"
    # the storage API answers with the proxy's URL
    run cget "$LB_URL/api/storage/libs/lb/f1.bin"
    echo "$output"
    [ "$(echo "$output" | jq -r .downloadUri)" = "$LB_URL/libs/lb/f1.bin" ]
    [ "$(echo "$output" | jq -r .uri)" = "$LB_URL/api/storage/libs/lb/f1.bin" ]
    # a TLS-terminating proxy on 443: https and no port
    run cget -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-Host: repo.example.com' \
        -H 'X-Forwarded-Port: 443' "$NODE_n1_URL/artifactory/api/storage/libs/lb/f1.bin"
    [ "$(echo "$output" | jq -r .downloadUri)" = "https://repo.example.com/artifactory/libs/lb/f1.bin" ]
    run cget -H 'X-Forwarded-Proto: http' -H 'X-Forwarded-Host: repo.example.com' \
        -H 'X-Forwarded-Port: 8443' "$NODE_n1_URL/api/storage/libs/lb/f1.bin"
    [ "$(echo "$output" | jq -r .downloadUri)" = "http://repo.example.com:8443/libs/lb/f1.bin" ]

    # HAProxy with the generated configuration, active readiness checks
    local hp
    hp=$(free_port)
    "$GRANARYCTL" proxy-config --type haproxy --url "$NODE_n1_URL" --password-file "$SUITE_TMP/admin.pass" \
        --listen "127.0.0.1:$hp" --out "$LB/haproxy.cfg"
    haproxy -f "$LB/haproxy.cfg" -D -p "$LB/haproxy.pid"
    local i
    for ((i = 0; i < 50; i++)); do
        [ "$(code -u "admin:$PASS" "http://127.0.0.1:$hp/libs/lb/f1.bin")" = 200 ] && break
        sleep 0.1
    done
    head -c 100000 /dev/urandom >"$SUITE_TMP/f2"
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/f2" "http://127.0.0.1:$hp/libs/lb/f2.bin")" = 201 ]
    for i in 1 2 3 4 5 6; do
        cget -o "$SUITE_TMP/got" "http://127.0.0.1:$hp/libs/lb/f2.bin"
        [ "$(sha "$SUITE_TMP/got")" = "$(sha "$SUITE_TMP/f2")" ]
    done
    [ "$(cget "http://127.0.0.1:$hp/api/storage/libs/lb/f2.bin" | jq -r .downloadUri)" = \
        "http://127.0.0.1:$hp/libs/lb/f2.bin" ]
    kill "$(cat "$LB/haproxy.pid")"
    rm -f "$LB/haproxy.pid"
}

@test "a draining node leaves the watched nginx configuration and comes back" {
    wait_upstreams 3
    cget -X POST -H 'Content-Type: application/json' -d '{"drain":true}' "$NODE_n2_URL/api/system/maintenance"
    wait_upstreams 2
    refute grep -q ":$NODE_n2_PORT " "$LB/granary.conf"
    # it still serves what reaches it, and tells a pooled connection to close
    cget -D "$SUITE_TMP/drain.h" -o /dev/null "$NODE_n2_URL/api/repositories"
    grep -q '^HTTP/1.1 200' "$SUITE_TMP/drain.h"
    grep -qi '^Connection: close' "$SUITE_TMP/drain.h"
    cget -X POST -H 'Content-Type: application/json' -d '{"drain":false}' "$NODE_n2_URL/api/system/maintenance"
    wait_upstreams 3
    grep -q 'wrote .* and reloaded' "$LB/watch.log"
}

row_state() { # NODE STATE: the node's row in the cluster table says STATE
    [ "$(psql_db lb "SELECT state FROM cluster_nodes WHERE id = '$1'")" = "$2" ]
}
plugins_locked() {
    [ "$(psql_db lb "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'plugins' AND l.mode = 'AccessExclusiveLock' AND l.granted")" = 1 ]
}

@test "a node coming back is 'starting' and out of the balancer's configuration until it serves" {
    wait_upstreams 3
    stop_node n3
    wait_upstreams 2
    # the node's start reads the plugins table: hold it locked for a while,
    # so that the node stays between registration and readiness
    psql_db lb "BEGIN; LOCK TABLE plugins IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(6); COMMIT" \
        >/dev/null &
    local locker=$!
    wait_until 5 plugins_locked
    restart_cluster_node n3 "$DB" &
    local starter=$!
    wait_until 10 row_state n3 starting
    [ "$(code "$NODE_n3_URL/api/v1/system/readiness")" = 503 ]
    # three watch intervals: the watcher saw the row and still lists two
    sleep 1.5
    [ "$(upstreams)" = 2 ]
    refute grep -q ":$NODE_n3_PORT " "$LB/granary.conf"
    wait $locker
    wait $starter
    wait_until 10 row_state n3 active
    wait_upstreams 3
    [ "$(code "$NODE_n3_URL/api/v1/system/readiness")" = 200 ]
}

@test "metrics: /api/v1/metrics in Prometheus text: routes, statuses, latency, bytes, pool, bus, storage" {
    head -c 5000 /dev/urandom >"$SUITE_TMP/m1"
    [ "$(code -u "admin:$PASS" -T "$SUITE_TMP/m1" "$NODE_n1_URL/libs/m/m1.bin")" = 201 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/libs/m/m1.bin")" = 200 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/libs/m/absent.bin")" = 404 ]
    [ "$(code "$NODE_n1_URL/api/v1/metrics")" = 401 ]
    cget -o "$SUITE_TMP/metrics" "$NODE_n1_URL/api/v1/metrics"
    local f=$SUITE_TMP/metrics
    grep -E '^granary_http_requests_by_route_total\{route="artifact",status="201"\} [1-9]' "$f"
    grep -E '^granary_http_requests_by_route_total\{route="artifact",status="404"\} [1-9]' "$f"
    grep -E '^granary_http_request_duration_seconds_bucket\{route="artifact",le="\+Inf"\} [1-9]' "$f"
    grep -E '^granary_http_received_bytes_total\{route="artifact"\} [1-9]' "$f"
    grep -E '^granary_http_sent_bytes_total\{route="artifact"\} [1-9]' "$f"
    # the copy was staged on a peer through its cluster port, counted there
    for n in n2 n3; do cget "$(eval echo \$NODE_${n}_URL)/api/v1/metrics"; done |
        grep -E '^granary_http_requests_by_route_total\{route="cluster",status="201"\} [1-9]'
    for m in granary_cache_hits_total granary_cache_misses_total granary_db_pool_size \
        granary_db_pool_in_use granary_db_errors_total granary_bus_messages_sent_total \
        granary_cluster_invalidation_seconds_count granary_storage_under_replicated \
        granary_storage_gc_runs_total granary_storage_gc_bytes_freed_total \
        granary_storage_scrub_bad_total granary_storage_replication_failures_total; do
        grep -qE "^$m [0-9]" "$f" || { echo "missing $m"; return 1; }
    done
    # the text format: comments, or name{labels} value
    refute grep -vE '^(# (HELP|TYPE) .*|[a-z_][a-z0-9_]*(\{[a-z_][a-z0-9_]*="[^"]*"(,[a-z_][a-z0-9_]*="[^"]*")*\})? [0-9.e+-]+)$' "$f"
    # no metric is declared twice
    [ -z "$(grep '^# TYPE' "$f" | awk '{print $3}' | sort | uniq -d)" ]
    # the old address gives the same families
    [ "$(cget "$NODE_n1_URL/api/system/metrics" | grep -c '^# TYPE')" = "$(grep -c '^# TYPE' "$f")" ]
}

@test "logs: one access line per request; the request id reaches the peers' logs and nginx's" {
    head -c 70000 /dev/urandom >"$SUITE_TMP/l1"
    local s
    s=$(sha "$SUITE_TMP/l1")
    curl -sS -u "admin:$PASS" -T "$SUITE_TMP/l1" -D "$SUITE_TMP/hdr" -o /dev/null "$NODE_n1_URL/libs/log/l1.bin"
    local id
    id=$(tr -d '\r' <"$SUITE_TMP/hdr" | awk -F': ' 'tolower($1) == "x-request-id" {print $2}')
    [ -n "$id" ]
    wait_until 10 grep -qE "req=$id access method=PUT path=/libs/log/l1.bin status=201 in=70000 out=[0-9]+ ms=[0-9.]+ user=admin route=artifact" \
        "$SUITE_TMP/node-n1/stderr.log"
    # the copy went to a peer over the cluster port: its line names our request
    wait_until 10 eval 'grep -qhE "access method=PUT path=/v1/blobs/$s/stage status=201 .*route=cluster rid=$id from=n1" \
        "$SUITE_TMP"/node-n[23]/stderr.log'
    # through nginx: its request id is in granary's line and in nginx's log
    curl -sS -u "admin:$PASS" -o /dev/null "$LB_URL/libs/log/l1.bin?trace=1"
    wait_until 10 grep -q 'uri="/libs/log/l1.bin?trace=1"' "$LB/access.log"
    local rid
    rid=$(grep 'uri="/libs/log/l1.bin?trace=1"' "$LB/access.log" | sed -n 's/.*rid=\([0-9a-f]*\) .*/\1/p' | tail -1)
    [ ${#rid} = 32 ]
    wait_until 10 eval 'grep -qh "path=/libs/log/l1.bin status=200 .* rid=$rid" "$SUITE_TMP"/node-n?/stderr.log'
}

# one HA phase at a time, labelled for the client loop
set_phase() { echo "$1" >"$SUITE_TMP/phase"; }

@test "HA: no failed GET or HEAD through nginx while a node is killed, all restart in turn and one drains" {
    wait_upstreams 3
    # the generated default: nginx keeps idle connections to the nodes
    grep -q '^    keepalive 32;$' "$LB/granary.conf"
    set_phase steady
    rm -f "$SUITE_TMP/stop"
    python3 tests/integration/tools/ha_load.py --lb "$LB_URL" \
        --nodes "$NODE_n1_URL,$NODE_n2_URL,$NODE_n3_URL" --password "$PASS" --clients 4 \
        --phase-file "$SUITE_TMP/phase" --stop-file "$SUITE_TMP/stop" --max-seconds 150 \
        --report "$SUITE_TMP/ha.json" >"$SUITE_TMP/ha.out" 2>&1 &
    local loop=$!
    sleep 3

    # (a) kill -9 and restart
    set_phase kill9
    kill -KILL "$(node_pid n2)"
    wait "$(node_pid n2)" 2>/dev/null || true
    sleep 3
    restart_cluster_node n2 "$DB"
    wait_upstreams 3
    sleep 2

    # (b) rolling restart: each node in turn, SIGTERM (quiesce) and start again
    set_phase rolling
    local n
    for n in n1 n2 n3; do
        local t0=$SECONDS
        stop_node $n
        echo "# rolling: $n stopped in $((SECONDS - t0)) s" >&3
        restart_cluster_node $n "$DB"
        wait_upstreams 3
        # as docs/operations.md says: past nginx's fail_timeout (5 s) before
        # the next node goes, so that nginx never skips two nodes at once
        sleep 6
    done

    # (c) drain a node, then bring it back
    set_phase drain
    cget -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"drain":true}' "$NODE_n3_URL/api/system/maintenance"
    sleep 3
    cget -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"drain":false}' "$NODE_n3_URL/api/system/maintenance"
    wait_upstreams 3
    set_phase steady
    sleep 2

    touch "$SUITE_TMP/stop"
    local rc=0
    wait $loop || rc=$?
    cat "$SUITE_TMP/ha.out"
    # the counts, for the log of `make test`
    sed -n -e 's/^total /# HA counts: /p' -e 's/^phase /# HA phase /p' -e 's/^  /# HA failure: /p' \
        "$SUITE_TMP/ha.out" >&3
    [ $rc = 0 ]
    local t=$SUITE_TMP/ha.json
    [ "$(jq '.total.get_failed // 0' "$t")" = 0 ]
    [ "$(jq '.total.head_failed // 0' "$t")" = 0 ]
    [ "$(jq '.total.put_unacked // 0' "$t")" = 0 ]
    [ "$(jq '.total.verify_bad // 0' "$t")" = 0 ]
    [ "$(jq .total.acked "$t")" -gt 0 ]
    [ "$(jq .total.timed_out "$t")" = 0 ]
    # every phase saw traffic: uploads, reads and HEADs went on through each
    local ph
    for ph in steady kill9 rolling drain; do
        for k in put_ok get_ok head_ok; do
            [ "$(jq ".phases.$ph.$k // 0" "$t")" -gt 0 ] || { echo "phase $ph: no $k"; return 1; }
        done
    done
    # PUTs fail only when a node dies under them: never in a clean restart or a drain
    [ "$(jq '.phases.rolling.put_failed // 0' "$t")" = 0 ]
    [ "$(jq '.phases.drain.put_failed // 0' "$t")" = 0 ]
}
