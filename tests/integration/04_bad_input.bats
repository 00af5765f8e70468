#!/usr/bin/env bats
# Bad input: each a clear 4xx in the JSON error shape, nothing stored, no crash.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db bad)
    start_node a --database-url "$DB" --max-body-size 64K --connection-timeout 2
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR NODE_a_PORT
    make_repo a libs
}
teardown_file() { cleanup_suite; }

# status and JSON error status must agree and be 4xx
is_json_error() { # expected-status curl-args...
    local want=$1
    shift
    local out
    out=$(curl -sS -u "admin:$NODE_a_PASS" --path-as-is -w '\n%{http_code}' "$@")
    local st=${out##*$'\n'} body=${out%$'\n'*}
    [ "$st" = "$want" ] || { echo "status $st, want $want: $body"; return 1; }
    [ "$(echo "$body" | jq -r '.errors[0].status')" = "$want" ] || { echo "body: $body"; return 1; }
    [ -n "$(echo "$body" | jq -r '.errors[0].message')" ]
}

@test "path traversal in every spelling is refused with 400" {
    echo x >"$SUITE_TMP/x"
    for p in '/libs/../etc/passwd' '/libs/a/../b' '/libs/a/%2e%2e/b' '/libs/a/%2E%2e/b' \
        '/libs/%2e%2e%2fetc' '/libs/a/./b' '/libs/a/%2e/b' '/libs//a' '/libs/a//b' \
        '/libs/a%5cb' '/libs/a%00b' '/libs/a%zz' '/libs/a%' '/libs/a%01b' '/libs/%c0%af' \
        '/libs/a/..'; do
        is_json_error 400 "$NODE_a_URL$p" || { echo "GET $p"; return 1; }
        is_json_error 400 -X PUT --data-binary @"$SUITE_TMP/x" "$NODE_a_URL$p" || { echo "PUT $p"; return 1; }
    done
    run curl -sS --path-as-is -u "admin:$NODE_a_PASS" -w '%{http_code}' -o /dev/null "$NODE_a_URL/libs/a\\b"
    [ "$output" = 400 ]
    [ "$(psql_db bad 'SELECT count(*) FROM artifacts')" = 0 ]
    [ ! -e /etc/passwd.sha256 ]
}

@test "over-long paths and segments are 414" {
    local long seg
    long=$(printf 'a/%.0s' {1..600})x
    seg=$(printf 'b%.0s' {1..300})
    is_json_error 414 "$NODE_a_URL/libs/$long"
    is_json_error 414 "$NODE_a_URL/libs/$seg"
    echo x >"$SUITE_TMP/x"
    is_json_error 414 -T "$SUITE_TMP/x" "$NODE_a_URL/libs/$seg"
}

@test "an over-long header line is 431; a huge header block is refused without a crash" {
    local big
    big=$(head -c 20000 /dev/zero | tr '\0' a)
    is_json_error 431 -H "X-Big: $big" "$NODE_a_URL/api/repositories"
    { printf 'X-Huge: '; head -c 400000 /dev/zero | tr '\0' a; echo; } >"$SUITE_TMP/hdr"
    run curl -s -o /dev/null -w '%{http_code}' -H @"$SUITE_TMP/hdr" "$NODE_a_URL/api/system/ping"
    [[ "$output" =~ ^4[0-9][0-9]$ || "$output" = 000 ]]
    [ "$(code "$NODE_a_URL/api/system/ping")" = 200 ]
}

@test "unknown repositories and APIs are 404" {
    is_json_error 404 "$NODE_a_URL/nosuchrepo/a/b"
    echo x >"$SUITE_TMP/x"
    is_json_error 404 -T "$SUITE_TMP/x" "$NODE_a_URL/nosuchrepo/a/b"
    is_json_error 404 "$NODE_a_URL/api/nosuch"
    is_json_error 404 "$NODE_a_URL/libs/not/there.jar"
}

@test "unsupported methods are 405" {
    is_json_error 405 -X PATCH "$NODE_a_URL/libs/a"
    is_json_error 405 -X POST "$NODE_a_URL/api/system/version"
}

@test "wrong or malformed credentials are 401 with a challenge" {
    run curl -sS -i -u admin:nope "$NODE_a_URL/libs/"
    [[ "$output" == *"HTTP/1.1 401"* ]]
    [[ "$output" == *"WWW-Authenticate: Basic"* ]]
    [ "$(code -H 'Authorization: Basic !!!!' "$NODE_a_URL/libs/")" = 401 ]
    [ "$(code -H 'Authorization: Basic bm9jb2xvbg==' "$NODE_a_URL/libs/")" = 401 ]
    [ "$(code -H 'Authorization: Digest x' "$NODE_a_URL/libs/")" = 401 ]
    [ "$(code -u nosuchuser:x "$NODE_a_URL/libs/")" = 401 ]
}

@test "a body over the configured limit is 413 and stores nothing" {
    head -c 100000 /dev/urandom >"$SUITE_TMP/big"
    is_json_error 413 -T "$SUITE_TMP/big" "$NODE_a_URL/libs/big.bin"
    # chunked, so the size is only known while streaming
    run curl -sS -u "admin:$NODE_a_PASS" -H 'Transfer-Encoding: chunked' -T - -o /dev/null \
        -w '%{http_code}' "$NODE_a_URL/libs/big2.bin" <"$SUITE_TMP/big"
    # libmicrohttpd 0.9.75 cannot answer in the middle of a body: the
    # connection is cut (curl saw only "100 Continue"), and nothing is stored
    echo "chunked: $output"
    [[ "${lines[-1]}" == 413 || "${lines[-1]}" == 000 || "${lines[-1]}" == 100 ]]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/big.bin")" = 404 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/big2.bin")" = 404 ]
    wait_until 10 eval '[ -z "$(ls -A "$NODE_a_DIR/filestore/_pre")" ]'
}

@test "a client that stops mid-body leaves no temp file and no artifact" {
    python3 - "$NODE_a_PORT" "$NODE_a_PASS" <<'PY'
import base64, socket, sys, time
port, pw = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
auth = base64.b64encode(("admin:" + pw).encode()).decode()
s.sendall(("PUT /libs/half.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n"
           "Content-Length: 50000\r\n\r\n" % auth).encode())
s.sendall(b"x" * 20000)
time.sleep(0.3)
s.close()
PY
    for i in $(seq 30); do
        [ -z "$(ls -A "$NODE_a_DIR/filestore/_pre")" ] && break
        sleep 0.1
    done
    [ -z "$(ls -A "$NODE_a_DIR/filestore/_pre")" ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/half.bin")" = 404 ]
}

@test "a connection that sends nothing is closed after the timeout" {
    run python3 - "$NODE_a_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
t = time.time()
try:
    data = s.recv(100)
except socket.timeout:
    print("still open after 10 s"); sys.exit(1)
print("closed after %.1f s" % (time.time() - t))
sys.exit(0 if time.time() - t < 6 else 1)
PY
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "the node is still healthy after all of that" {
    [ "$(code "$NODE_a_URL/api/system/ping")" = 200 ]
    kill -0 "$NODE_a_PID"
}
