#!/usr/bin/env bats
# The web UI's server side (docs/ui.md): its files at /ui/, the redirect of
# browsers from /, sessions (cookie attributes, CSRF, throttle and audit,
# valid on every node, revocable, expiring, bound to a token), the paged
# folder listing the browser uses, and the cluster view's new fields.
# Three cluster nodes: n1 trusts 127.0.0.1 as a proxy, n3 has 5-second
# sessions. The browser itself is tested in tests/ui/.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db uisessions)
    start_cluster_node n1 "$DB" --trusted-proxy 127.0.0.1
    start_cluster_node n2 "$DB"
    start_cluster_node n3 "$DB" --session-lifetime 5
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL
    local h=(-fsS -u "admin:$PASS" -H 'Content-Type: application/json')
    curl "${h[@]}" -X PUT -d '{"rclass":"local","packageType":"generic"}' "$NODE_n1_URL/api/repositories/libs" >/dev/null
    curl "${h[@]}" -X PUT -d '{"password":"password123","groups":[]}' "$NODE_n1_URL/api/security/users/bob" >/dev/null
    curl "${h[@]}" -X PUT -d '{"repo":{"repositories":["libs"],"exclude-patterns":["big/secret-*"],"actions":{"users":{"bob":["read","write"]}}}}' \
        "$NODE_n1_URL/api/v2/security/permissions/bob-libs" >/dev/null
}
teardown_file() { cleanup_suite; }

# login URL USER PASSWORD JAR: sign in, keep the cookie in JAR, print the CSRF token
login() {
    curl -fsS -c "$4" -H 'Content-Type: application/json' \
        -d "{\"user\":\"$2\",\"password\":\"$3\"}" "$1/api/ui/session" | jq -r .csrfToken
}
# the status of a request with the cookie of JAR: scode JAR [curl args] URL
scode() {
    local jar=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' -b "$jar" "$@"
}

@test "the UI's files are built in: gzip, ETag, a strict CSP; /ui redirects; no other method" {
    local d=$SUITE_TMP/files
    mkdir -p "$d"
    curl -fsS -D "$d/h" -o "$d/index.html" "$NODE_n2_URL/ui/"
    grep -qi '^content-type: text/html' "$d/h"
    grep -qi "^content-security-policy: default-src 'none'; script-src 'self'" "$d/h"
    grep -qi "frame-ancestors 'none'" "$d/h"
    grep -qi '^x-content-type-options: nosniff' "$d/h"
    grep -q 'js/main.js' "$d/index.html"
    cmp "$d/index.html" ui/index.html
    # gzip when asked: the same bytes once inflated
    curl -fsS -H 'Accept-Encoding: gzip' -D "$d/hz" -o "$d/main.js.gz" "$NODE_n2_URL/ui/js/main.js"
    grep -qi '^content-encoding: gzip' "$d/hz"
    grep -qi '^content-type: text/javascript' "$d/hz"
    gunzip -c "$d/main.js.gz" | cmp - ui/js/main.js
    # ETag: a revalidation is a 304
    local etag
    etag=$(awk -F': ' 'tolower($1) == "etag" { print $2 }' "$d/hz" | tr -d '\r')
    [ "$(code -H "If-None-Match: $etag" "$NODE_n2_URL/ui/js/main.js")" = 304 ]
    [ "$(code "$NODE_n2_URL/ui/no-such.js")" = 404 ]
    [ "$(curl -s "$NODE_n2_URL/ui/no-such.js" | jq -r '.errors[0].status')" = 404 ]
    [ "$(code -X PUT -d x "$NODE_n2_URL/ui/index.html")" = 405 ]
    curl -sS -D "$d/hr" -o /dev/null "$NODE_n2_URL/ui"
    grep -q '^HTTP/1.1 301' "$d/hr"
    grep -qi '^location: /ui/' "$d/hr"
}

@test "/ sends a browser (Accept: text/html) to /ui/; API clients keep the listing" {
    local d=$SUITE_TMP/root
    mkdir -p "$d"
    curl -sS -D "$d/h" -o /dev/null -H 'Accept: text/html,application/xhtml+xml,*/*;q=0.8' "$NODE_n1_URL/"
    grep -q '^HTTP/1.1 302' "$d/h"
    grep -qi '^location: /ui/' "$d/h"
    # curl's */*, and JSON clients: the repository listing as before
    curl -fsS -u "admin:$PASS" "$NODE_n1_URL/" | grep -q 'href="/libs/"'
    [ "$(code -u "admin:$PASS" -H 'Accept: application/json' "$NODE_n1_URL/")" = 200 ]
    [ "$(code "$NODE_n1_URL/")" = 401 ]   # anonymous access is off
}

@test "sign-in: a session cookie HttpOnly, SameSite=Strict, expiring; Secure only behind a trusted TLS proxy" {
    local d=$SUITE_TMP/cookie
    mkdir -p "$d"
    curl -fsS -D "$d/h" -o "$d/body" -H 'Content-Type: application/json' \
        -d '{"user":"bob","password":"password123"}' "$NODE_n2_URL/api/ui/session"
    local sc
    sc=$(grep -i '^set-cookie:' "$d/h" | tr -d '\r')
    [[ $sc == *"granary_session=grs_"* ]] || false
    [[ $sc == *"HttpOnly"* ]] || false
    [[ $sc == *"SameSite=Strict"* ]] || false
    [[ $sc == *"Path=/"* ]] || false
    [[ $sc == *"Max-Age=28800"* ]] || false
    [[ $sc != *"Secure"* ]] || false
    [ "$(jq -r .user "$d/body")" = bob ]
    [ "$(jq -r .admin "$d/body")" = false ]
    [ "$(jq -r '.csrfToken | length' "$d/body")" = 64 ]
    # behind a trusted proxy that says https: Secure
    curl -fsS -D "$d/h2" -o /dev/null -H 'Content-Type: application/json' -H 'X-Forwarded-Proto: https' \
        -d '{"user":"bob","password":"password123"}' "$NODE_n1_URL/api/ui/session"
    grep -i '^set-cookie:' "$d/h2" | grep -q '; Secure'
    # a client that is no trusted proxy cannot ask for it (n2 trusts nobody)
    curl -fsS -D "$d/h3" -o /dev/null -H 'Content-Type: application/json' -H 'X-Forwarded-Proto: https' \
        -d '{"user":"bob","password":"password123"}' "$NODE_n2_URL/api/ui/session"
    run grep -ci 'secure' "$d/h3"
    [ "$output" = 0 ]
    # a form of another site cannot sign anyone in: JSON only
    [ "$(code -d 'user=bob&password=password123' "$NODE_n2_URL/api/ui/session")" = 415 ]
    [ "$(code -H 'Content-Type: application/json' -d '{"user":"bob"}' "$NODE_n2_URL/api/ui/session")" = 400 ]
}

@test "a change made with the cookie needs the session's CSRF token; reads do not" {
    local jar=$SUITE_TMP/csrf.jar csrf
    csrf=$(login "$NODE_n1_URL" bob password123 "$jar")
    echo one >"$SUITE_TMP/one"
    [ "$(scode "$jar" "$NODE_n1_URL/api/repositories")" = 200 ]
    [ "$(scode "$jar" -T "$SUITE_TMP/one" "$NODE_n1_URL/libs/csrf/a.txt")" = 403 ]
    # the token with its last character changed (to one it is not)
    local wrong=${csrf%?}0
    if [ "$wrong" = "$csrf" ]; then wrong=${csrf%?}1; fi
    [ "$(scode "$jar" -H "X-CSRF-Token: $wrong" -T "$SUITE_TMP/one" "$NODE_n1_URL/libs/csrf/a.txt")" = 403 ]
    [ "$(scode "$jar" -H 'X-CSRF-Token: short' -T "$SUITE_TMP/one" "$NODE_n1_URL/libs/csrf/a.txt")" = 403 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/api/storage/libs/csrf/a.txt")" = 404 ]   # nothing stored
    [ "$(scode "$jar" -H "X-CSRF-Token: $csrf" -T "$SUITE_TMP/one" "$NODE_n1_URL/libs/csrf/a.txt")" = 201 ]
    [ "$(curl -fsS -u "admin:$PASS" "$NODE_n1_URL/api/storage/libs/csrf/a.txt" | jq -r .createdBy)" = bob ]
    # DELETE and POST too; another session's token is no good
    local jar2=$SUITE_TMP/csrf2.jar csrf2
    csrf2=$(login "$NODE_n2_URL" bob password123 "$jar2")
    [ "$csrf2" != "$csrf" ]
    [ "$(scode "$jar" -H "X-CSRF-Token: $csrf2" -X DELETE "$NODE_n1_URL/libs/csrf/a.txt")" = 403 ]
    [ "$(scode "$jar" -X DELETE "$NODE_n1_URL/api/ui/session")" = 403 ]   # signing out is a change too
    # the session never widens bob's rights: no admin API
    [ "$(scode "$jar" "$NODE_n1_URL/api/security/users")" = 403 ]
    [ "$(scode "$jar" -H "X-CSRF-Token: $csrf" -X PUT -H 'Content-Type: application/json' -d '{"rclass":"local"}' \
        "$NODE_n1_URL/api/repositories/bobs")" = 403 ]
    # Authorization wins over a cookie: API clients are never asked for a CSRF token
    [ "$(code -b "$jar" -u "admin:$PASS" -X DELETE "$NODE_n1_URL/libs/csrf/a.txt")" = 204 ]
}

@test "UI sign-in goes through the login throttle and the audit log, shared with Basic auth" {
    local i jar=$SUITE_TMP/thr.jar
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d '{"password":"password456"}' \
        "$NODE_n2_URL/api/security/users/carol" >/dev/null
    for i in 1 2 3 4 5 6; do
        [ "$(code -H 'Content-Type: application/json' -d '{"user":"carol","password":"wrong-pass"}' \
            "$NODE_n2_URL/api/ui/session")" = 401 ]
    done
    # the sixth started the wait, for the UI and for Basic alike (the same counts)
    [ "$(code -H 'Content-Type: application/json' -d '{"user":"carol","password":"password456"}' \
        "$NODE_n2_URL/api/ui/session")" = 429 ]
    [ "$(code -u carol:password456 "$NODE_n2_URL/api/repositories")" = 429 ]
    curl -fsS -u "admin:$PASS" "$NODE_n1_URL/api/audit?user=carol&action=login_failed" >"$SUITE_TMP/a.json"
    [ "$(jq '.entries | length' "$SUITE_TMP/a.json")" -ge 6 ]
    [ "$(jq -r '.entries[0].detail' "$SUITE_TMP/a.json")" = "ui session" ]
    # the wait runs out (1 s after the sixth failure), then a success is audited
    wait_until 10 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -c $jar -H 'Content-Type: application/json' \
        -d '{\"user\":\"carol\",\"password\":\"password456\"}' $NODE_n2_URL/api/ui/session)\" = 200 ]"
    curl -fsS -u "admin:$PASS" "$NODE_n1_URL/api/audit?user=carol&action=login" | jq -e '.entries[0].detail == "ui session"'
    # the UI's own calls get no Basic challenge (no browser dialog); others do
    curl -sS -D "$SUITE_TMP/h401" -o /dev/null -H 'X-Granary-UI: 1' "$NODE_n2_URL/api/security/users"
    run grep -ci 'www-authenticate' "$SUITE_TMP/h401"
    [ "$output" = 0 ]
    curl -sS -D "$SUITE_TMP/h401b" -o /dev/null "$NODE_n2_URL/api/security/users"
    grep -qi '^www-authenticate: Basic' "$SUITE_TMP/h401b"
}

@test "a session holds on every node; sign-out and revocation end it everywhere at once" {
    local jar=$SUITE_TMP/every.jar csrf u
    csrf=$(login "$NODE_n1_URL" bob password123 "$jar")
    for u in "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"; do
        [ "$(scode "$jar" "$u/api/storage/libs")" = 200 ]
        [ "$(curl -fsS -b "$jar" "$u/api/ui/session" | jq -r .csrfToken)" = "$csrf" ]
    done
    # sign out on n2: refused by all three when the call has answered
    curl -fsS -b "$jar" -c "$jar" -H "X-CSRF-Token: $csrf" -X DELETE "$NODE_n2_URL/api/ui/session" | jq -e .signedOut
    for u in "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"; do
        [ "$(code -b "granary_session=$(awk '$6 == "granary_session" { print $7 }' "$jar")" "$u/api/storage/libs")" = 401 ]
    done
    # an admin revokes a session by id (from the list); the user lists its own only
    local jar2=$SUITE_TMP/every2.jar id
    login "$NODE_n3_URL" bob password123 "$jar2" >/dev/null
    curl -fsS -b "$jar2" "$NODE_n3_URL/api/ui/sessions" >"$SUITE_TMP/s.json"
    [ "$(jq -r '[.sessions[].user] | unique | join(",")' "$SUITE_TMP/s.json")" = bob ]
    id=$(jq -r '.sessions[] | select(.current) | .id' "$SUITE_TMP/s.json")
    [ -n "$id" ]
    [ "$(scode "$jar2" "$NODE_n3_URL/api/ui/sessions?user=admin")" = 403 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/api/ui/sessions?user=bob")" = 200 ]
    [ "$(code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/api/ui/sessions/$id")" = 204 ]
    [ "$(code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/api/ui/sessions/$id")" = 404 ]
    for u in "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"; do
        [ "$(scode "$jar2" "$u/api/storage/libs")" = 401 ]
    done
    # the session endpoint itself: an ended cookie reads as anonymous and is cleared
    curl -sS -D "$SUITE_TMP/hs" -b "$jar2" "$NODE_n2_URL/api/ui/session" >"$SUITE_TMP/who.json"
    [ "$(jq -r .anonymous "$SUITE_TMP/who.json")" = true ]
    [ "$(jq -r .sessionEnded "$SUITE_TMP/who.json")" = true ]
    grep -i '^set-cookie:' "$SUITE_TMP/hs" | grep -q 'granary_session=;.*Max-Age=0'
    # a made-up cookie is refused the same way
    [ "$(code -b "granary_session=grs_$(printf '%064d' 0)" "$NODE_n1_URL/api/storage/libs")" = 401 ]
    [ "$(code -b 'granary_session=junk' "$NODE_n1_URL/api/storage/libs")" = 401 ]
}

@test "a disabled or deleted user's sessions end on every node; a new user of that name gets none" {
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d '{"password":"password789"}' \
        "$NODE_n1_URL/api/security/users/dave" >/dev/null
    local jar=$SUITE_TMP/dave.jar u
    login "$NODE_n2_URL" dave password789 "$jar" >/dev/null
    for u in "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"; do
        [ "$(scode "$jar" "$u/api/ui/sessions")" = 200 ]
    done
    curl -fsS -u "admin:$PASS" -X POST -H 'Content-Type: application/json' -d '{"disabled":true}' \
        "$NODE_n3_URL/api/security/users/dave"
    for u in "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"; do
        [ "$(scode "$jar" "$u/api/ui/sessions")" = 401 ]
    done
    curl -fsS -u "admin:$PASS" -X POST -H 'Content-Type: application/json' -d '{"disabled":false}' \
        "$NODE_n3_URL/api/security/users/dave"
    [ "$(scode "$jar" "$NODE_n1_URL/api/ui/sessions")" = 200 ]
    curl -fsS -u "admin:$PASS" -X DELETE "$NODE_n2_URL/api/security/users/dave"
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d '{"password":"password789"}' \
        "$NODE_n1_URL/api/security/users/dave" >/dev/null
    for u in "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"; do
        [ "$(scode "$jar" "$u/api/ui/sessions")" = 401 ]
    done
}

@test "a session expires after session_lifetime, on every node" {
    local jar=$SUITE_TMP/exp.jar u
    login "$NODE_n3_URL" bob password123 "$jar" >/dev/null
    grep -q granary_session "$jar"
    curl -fsS -b "$jar" "$NODE_n3_URL/api/ui/session" | jq -e '.user == "bob"'
    for u in "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"; do
        [ "$(scode "$jar" "$u/api/storage/libs")" = 200 ]
    done
    # n3 opens 5-second sessions: gone everywhere once they ran out
    wait_until 30 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -b $jar $NODE_n3_URL/api/storage/libs)\" = 401 ]"
    for u in "$NODE_n1_URL" "$NODE_n2_URL"; do
        [ "$(scode "$jar" "$u/api/storage/libs")" = 401 ]
    done
}

@test "a session opened with an access token has the token's scope and ends with it" {
    local tok jar=$SUITE_TMP/tok.jar csrf
    # a user-scoped token of the admin: its session is no admin
    tok=$(curl -fsS -u "admin:$PASS" -d 'expires_in=600&scope=applied-permissions/user' \
        "$NODE_n1_URL/api/security/token" | jq -r .access_token)
    curl -fsS -c "$jar" -H 'Content-Type: application/json' -d "{\"token\":\"$tok\"}" \
        "$NODE_n2_URL/api/ui/session" >"$SUITE_TMP/t.json"
    [ "$(jq -r .user "$SUITE_TMP/t.json")" = admin ]
    [ "$(jq -r .admin "$SUITE_TMP/t.json")" = false ]
    [ "$(jq -r .scoped "$SUITE_TMP/t.json")" = true ]
    [ "$(scode "$jar" "$NODE_n1_URL/api/security/users")" = 403 ]
    [ "$(scode "$jar" "$NODE_n1_URL/api/repositories")" = 200 ]
    # the token revoked: the session ends on every node
    [ "$(code -u "admin:$PASS" -d "token=$tok" "$NODE_n3_URL/api/security/token/revoke")" = 200 ]
    [ "$(scode "$jar" "$NODE_n1_URL/api/repositories")" = 401 ]
    [ "$(scode "$jar" "$NODE_n2_URL/api/repositories")" = 401 ]
    # a bad token: 401, audited
    [ "$(code -H 'Content-Type: application/json' -d "{\"token\":\"$tok\"}" "$NODE_n2_URL/api/ui/session")" = 401 ]
    curl -fsS -u "admin:$PASS" "$NODE_n1_URL/api/audit?action=login_failed" | jq -e '[.entries[].detail] | index("ui token")'
}

@test "the paged folder listing: every child once, folders first, totals by what the caller reads" {
    local i d=$SUITE_TMP/page
    mkdir -p "$d"
    echo x >"$d/x"
    # 300 files (60 of them excluded for bob) and 3 sub-folders in one folder
    for i in $(seq -w 1 240); do echo "url = \"$NODE_n2_URL/libs/big/f$i.txt\""; echo "upload-file = \"$d/x\""; done >"$d/k"
    for i in $(seq -w 1 60); do echo "url = \"$NODE_n2_URL/libs/big/secret-$i.txt\""; echo "upload-file = \"$d/x\""; done >>"$d/k"
    for i in a b c; do echo "url = \"$NODE_n2_URL/libs/big/$i/in.txt\""; echo "upload-file = \"$d/x\""; done >>"$d/k"
    curl -fsS -u "admin:$PASS" -K "$d/k" -o /dev/null
    local q="$NODE_n1_URL/api/storage/libs/big?list&listFolders=1"
    curl -fsS -u "admin:$PASS" "$q&offset=0&limit=100" >"$d/p0"
    [ "$(jq .total "$d/p0")" = 303 ]
    [ "$(jq '.files | length' "$d/p0")" = 100 ]
    [ "$(jq -r '[.files[0:3][] | .uri + (.folder | tostring)] | join(" ")' "$d/p0")" = "/atrue /btrue /ctrue" ]
    [ "$(jq -r '.files[3].uri' "$d/p0")" = /f001.txt ]
    [ "$(jq -r '.files[3].sha2 | length' "$d/p0")" = 64 ]
    for i in 100 200 300; do curl -fsS -u "admin:$PASS" "$q&offset=$i&limit=100" >"$d/p$i"; done
    [ "$(jq '.files | length' "$d/p300")" = 3 ]
    jq -r '.files[].uri' "$d/p0" "$d/p100" "$d/p200" "$d/p300" >"$d/all"
    [ "$(wc -l <"$d/all")" = 303 ]
    [ "$(sort -u "$d/all" | wc -l)" = 303 ]
    # past the end: empty, with the total
    curl -fsS -u "admin:$PASS" "$q&offset=5000&limit=10" | jq -e '.total == 303 and (.files | length) == 0'
    # bob reads all but secret-*: those are neither listed nor counted
    curl -fsS -u bob:password123 "$q&offset=0&limit=1000" >"$d/bob"
    [ "$(jq .total "$d/bob")" = 243 ]
    [ "$(jq '[.files[] | select(.uri | startswith("/secret"))] | length' "$d/bob")" = 0 ]
    [ "$(jq -r '.files[100].sha2 | length' "$d/bob")" = 64 ]
    curl -fsS -u bob:password123 "$q&offset=240&limit=10" | jq -e '.total == 243 and (.files | length) == 3'
    # without listFolders: files only
    curl -fsS -u "admin:$PASS" "$NODE_n1_URL/api/storage/libs/big?list&offset=0&limit=5" | jq -e '.total == 300'
    # bad input: 400; no such folder: 404
    [ "$(code -u "admin:$PASS" "$q&offset=0&limit=0")" = 400 ]
    [ "$(code -u "admin:$PASS" "$q&offset=-1&limit=10")" = 400 ]
    [ "$(code -u "admin:$PASS" "$q&offset=x")" = 400 ]
    [ "$(code -u "admin:$PASS" "$q&limit=10001")" = 400 ]
    [ "$(code -u "admin:$PASS" "$q&limit=10&deep=1")" = 400 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/api/storage/libs/nothing?list&offset=0&limit=10")" = 404 ]
    [ "$(code "$q&offset=0&limit=10")" = 401 ]
}

@test "the cluster view: heartbeat age by the database clock, the answering node, copies per binary, last runs" {
    curl -fsS -u "admin:$PASS" "$NODE_n2_URL/api/system/cluster" >"$SUITE_TMP/c.json"
    [ "$(jq -r .answeredBy "$SUITE_TMP/c.json")" = n2 ]
    [ "$(jq -r .downAfterMs "$SUITE_TMP/c.json")" = 2000 ]
    [ "$(jq '[.nodes[] | select(.heartbeatAgeMs >= 0 and .heartbeatAgeMs < 2000)] | length' "$SUITE_TMP/c.json")" = 3 ]
    jq -e '.storage.copies["0"] == 0 and .storage.copies["2"] >= 1' "$SUITE_TMP/c.json"
    jq -e '.storage.repair | has("lastRun")' "$SUITE_TMP/c.json"
    jq -e '.storage.scrub | has("lastRun")' "$SUITE_TMP/c.json"
    # signed-in users see the node list only
    curl -fsS -u bob:password123 "$NODE_n2_URL/api/system/cluster" >"$SUITE_TMP/cb.json"
    jq -e '(.nodes | length) == 3 and (has("storage") | not) and (.nodes[0] | has("heartbeatAgeMs") | not)' "$SUITE_TMP/cb.json"
}
