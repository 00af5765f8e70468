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
    [ -f "${LB:-/nonexistent}/haproxy.pid" ] && kill "$(cat "$LB/haproxy.pid")" 2>/dev/null
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
        ! grep -q ":$p" "$d/api.conf" # the cluster port is never exposed
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
    ! grep -q ":$NODE_n2_PORT " "$LB/granary.conf"
    cget -X POST -H 'Content-Type: application/json' -d '{"drain":false}' "$NODE_n2_URL/api/system/maintenance"
    wait_upstreams 3
    grep -q 'wrote .* and reloaded' "$LB/watch.log"
}

# one HA phase at a time, labelled for the client loop
set_phase() { echo "$1" >"$SUITE_TMP/phase"; }

@test "HA: no failed GET or HEAD through nginx while a node is killed, all restart in turn and one drains" {
    wait_upstreams 3
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
        stop_node $n
        restart_cluster_node $n "$DB"
        wait_upstreams 3
        sleep 1
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
    sed -n 's/^total /# HA counts: /p' "$SUITE_TMP/ha.out" >&3
    [ $rc = 0 ]
    local t=$SUITE_TMP/ha.json
    [ "$(jq '.total.get_failed // 0' "$t")" = 0 ]
    [ "$(jq '.total.head_failed // 0' "$t")" = 0 ]
    [ "$(jq '.total.put_unacked // 0' "$t")" = 0 ]
    [ "$(jq '.total.verify_bad // 0' "$t")" = 0 ]
    [ "$(jq .total.acked "$t")" -gt 0 ]
    # PUTs fail only when a node dies under them: never in a clean restart or a drain
    [ "$(jq '.phases.drain.put_failed // 0' "$t")" = 0 ]
}
