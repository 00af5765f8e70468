#!/usr/bin/env bats
# The permission holes an attacker found with two ordinary users, each
# closed (docs/security.md): alice may read and write `libs` except
# `release/**`, and `mine`; she has nothing on `secret`. bob may read,
# write and delete in `secret`. carol is an admin only through a group.
load helpers

PW=password123

setup_file() {
    start_pg
    export DB=$(new_db holes)
    mkdir -p "$SUITE_TMP/plugins.d"
    cp lua-plugins/examples/static-realm.lua "$SUITE_TMP/plugins.d/"
    start_node a --database-url "$DB" --plugins-dir "$SUITE_TMP/plugins.d" \
        --trusted-proxy 127.0.0.1/32
    export NODE_a_URL NODE_a_PASS NODE_a_DIR
    for r in libs mine secret; do make_repo a "$r"; done
    for u in alice bob carol; do mkuser "$u"; done
    acurl a -X PUT -H 'Content-Type: application/json' -d '{"adminPrivileges":true,"userNames":["carol"]}' \
        /api/security/groups/admins >/dev/null
    target alice-libs '{"repo":{"repositories":["libs"],"exclude-patterns":["release/**"],
        "actions":{"users":{"alice":["read","write"]}}}}'
    target alice-mine '{"repo":{"repositories":["mine"],"actions":{"users":{"alice":["read","write"]}}}}'
    target bob-secret '{"repo":{"repositories":["secret"],"actions":{"users":{"bob":["delete"]}}}}'
    # nobody but admins may read anything else: no default target for users
    acurl a -X DELETE /api/v2/security/permissions/Anything >/dev/null
    echo "release build" >"$SUITE_TMP/app.jar"
    echo "signing key material" >"$SUITE_TMP/signing.key"
    acurl a -T "$SUITE_TMP/app.jar" /libs/release/app-1.0.jar >/dev/null
    acurl a -T "$SUITE_TMP/signing.key" /libs/release/signing.key >/dev/null
    echo "public" >"$SUITE_TMP/pub.txt"
    acurl a -T "$SUITE_TMP/pub.txt" /libs/pub/readme.txt >/dev/null
}
teardown_file() { cleanup_suite; }

mkuser() {
    acurl a -X PUT -H 'Content-Type: application/json' -o /dev/null \
        -d "{\"password\":\"$PW\",\"email\":\"$1@example.com\",\"groups\":[]}" "/api/security/users/$1"
}
target() { # name json
    acurl a -X PUT -H 'Content-Type: application/json' -o /dev/null -d "$2" \
        "/api/v2/security/permissions/$1"
}
as() { # user [curl args] PATH -> the body
    local u=$1
    shift
    curl -sS -u "$u:$PW" "${@:1:$#-1}" "$NODE_a_URL${!#}"
}
as_code() { # user [curl args] PATH -> the status
    local u=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' -u "$u:$PW" "${@:1:$#-1}" "$NODE_a_URL${!#}"
}
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
# the sha256 of what admin reads at PATH, or the status when it is not 200
admin_sha() {
    local c
    c=$(acurl a -o "$SUITE_TMP/got" -w '%{http_code}' "$1")
    if [ "$c" = 200 ]; then sha_of "$SUITE_TMP/got"; else echo "$c"; fi
}

@test "trash: a user lists and restores only what it could read where it was (finding 1)" {
    echo "prod key" >"$SUITE_TMP/prod.key"
    [ "$(as_code bob -T "$SUITE_TMP/prod.key" /secret/keys/prod.key)" = 201 ]
    [ "$(as_code bob -X DELETE /secret/keys/prod.key)" = 204 ]
    # bob and admins see it; alice does not
    as bob /api/trash/list | jq -e '.items | map(.path) | index("keys/prod.key")'
    acurl a /api/trash/list | jq -e '.items | map(.path) | index("keys/prod.key")'
    run as alice /api/trash/list
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq '.items | map(select(.repo == "secret")) | length')" = 0 ]
    [[ "$output" != *prod.key* ]]
    # alice cannot restore it anywhere, not even into her own repository
    run as alice -w '\n%{http_code}' -X POST '/api/trash/restore/secret/keys/prod.key?to=/mine/stolen.key'
    [ "${lines[-1]}" = 403 ]
    [ "$(admin_sha /mine/stolen.key)" = 404 ]
    [ "$(as_code alice -X POST /api/trash/restore/secret/keys/prod.key)" = 403 ]
    # bob may not put it where he cannot write
    [ "$(as_code bob -X POST '/api/trash/restore/secret/keys/prod.key?to=/mine/k')" = 403 ]
    [ "$(admin_sha /mine/k)" = 404 ]
    # bob restores it in place
    [ "$(as_code bob -X POST /api/trash/restore/secret/keys/prod.key)" = 202 ]
    [ "$(admin_sha /secret/keys/prod.key)" = "$(sha_of "$SUITE_TMP/prod.key")" ]
}

@test "trash: offset and limit count only the items the caller may see" {
    for i in 1 2 3; do
        echo "m$i" >"$SUITE_TMP/m$i"
        [ "$(as_code alice -T "$SUITE_TMP/m$i" "/mine/t/m$i.txt")" = 201 ]
        [ "$(acurl a -o /dev/null -w '%{http_code}' -T "$SUITE_TMP/m$i" "/secret/t/s$i.txt")" = 201 ]
    done
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X DELETE /mine/t)" = 204 ]
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X DELETE /secret/t)" = 204 ]
    run as alice '/api/trash/list?offset=1&limit=1'
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq -r '.items[0].path')" = t/m2.txt ]
    [ "$(echo "$output" | jq -r '.more')" = true ]
    run as alice '/api/trash/list?offset=2&limit=5'
    [ "$(echo "$output" | jq -r '[.items[].path] | join(" ")')" = t/m3.txt ]
    [ "$(echo "$output" | jq -r '.more')" = false ]
}

@test "copy and move check every final target path: overwrite needs delete, excludes hold (finding 2)" {
    echo "evil" >"$SUITE_TMP/evil.jar"
    [ "$(as_code alice -T "$SUITE_TMP/evil.jar" /mine/release/app-1.0.jar)" = 201 ]
    local before
    before=$(admin_sha /libs/release/app-1.0.jar)
    # a folder copied onto the repository root lands on an excluded, existing path
    run as alice -w '\n%{http_code}' -X POST '/api/copy/mine/release?to=/libs/'
    echo "$output"
    [ "${lines[-1]}" = 403 ]
    [ "$(admin_sha /libs/release/app-1.0.jar)" = "$before" ]
    [ "$(as_code alice -X POST '/api/move/mine/release?to=/libs/')" = 403 ]
    [ "$(admin_sha /libs/release/app-1.0.jar)" = "$before" ]
    [ "$(admin_sha /mine/release/app-1.0.jar)" = "$(sha_of "$SUITE_TMP/evil.jar")" ]
    # overwriting a file she may write but not delete
    [ "$(as_code alice -T "$SUITE_TMP/evil.jar" /mine/a.jar)" = 201 ]
    before=$(admin_sha /libs/pub/readme.txt)
    run as alice -w '\n%{http_code}' -X POST '/api/copy/mine/a.jar?to=/libs/pub/readme.txt'
    [ "${lines[-1]}" = 403 ]
    [[ "$output" == *"needs DELETE"* ]]
    [ "$(admin_sha /libs/pub/readme.txt)" = "$before" ]
    # a dry run says the same, and a new path is fine
    [ "$(as_code alice -X POST '/api/copy/mine/a.jar?to=/libs/pub/readme.txt&dry=1')" = 403 ]
    [ "$(as_code alice -X POST '/api/copy/mine/a.jar?to=/libs/pub/a-copy.jar')" = 200 ]
    [ "$(admin_sha /libs/pub/a-copy.jar)" = "$(sha_of "$SUITE_TMP/evil.jar")" ]
}

@test "deploy by checksum needs read on a file with that binary; listings hide what one may not read (finding 3)" {
    local sum
    sum=$(sha_of "$SUITE_TMP/signing.key")
    # the checksum does not leak through listings any more
    run as alice '/api/storage/libs/?list&deep=1&listFolders=1'
    [ "$status" -eq 0 ]
    [[ "$output" != *"$sum"* ]]
    [[ "$output" != *release* ]]
    [ "$(echo "$output" | jq -r '[.files[] | select(.folder == false) | .uri] | index("/pub/readme.txt") != null')" = true ]
    run as alice /api/storage/libs
    [ "$(echo "$output" | jq -r '[.children[].uri] | join(" ")')" != "" ]
    [[ "$output" != *release* ]]
    run as alice /libs/
    [[ "$output" == *pub/* ]]
    [[ "$output" != *release* ]]
    # knowing it is not enough to get the bytes
    run as alice -w '\n%{http_code}' -X PUT -H 'X-Checksum-Deploy: true' -H "X-Checksum-Sha256: $sum" \
        /mine/stolen.key
    [ "${lines[-1]}" = 404 ]
    [ "$(admin_sha /mine/stolen.key)" = 404 ]
    # a binary she can read is fine
    [ "$(as_code alice -X PUT -H 'X-Checksum-Deploy: true' \
        -H "X-Checksum-Sha256: $(sha_of "$SUITE_TMP/pub.txt")" /mine/pub-copy.txt)" = 201 ]
    # admins still can
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X PUT -H 'X-Checksum-Deploy: true' \
        -H "X-Checksum-Sha256: $sum" /mine/admin-copy.key)" = 201 ]
}

@test "tokens: a user-scoped token is never an admin; refresh keeps the create rules; own password needs the old one (finding 7)" {
    [ "$(as_code carol /api/security/users)" = 200 ] # admin through the group
    local tok
    tok=$(as carol -X POST -d 'scope=applied-permissions/user&expires_in=600' /api/security/token |
        jq -r .access_token)
    [ "$(code -H "Authorization: Bearer $tok" "$NODE_a_URL/api/security/users")" = 403 ]
    [ "$(code -H "Authorization: Bearer $tok" -X POST -d 'username=alice' \
        "$NODE_a_URL/api/security/token")" = 403 ]
    [ "$(code -H "Authorization: Bearer $tok" -X POST -d 'expires_in=0' \
        "$NODE_a_URL/api/security/token")" = 403 ]
    # refresh cannot make a token that never expires
    run as alice -X POST -d 'refreshable=true&expires_in=600' /api/security/token
    local refresh
    refresh=$(echo "$output" | jq -r .refresh_token)
    [ -n "$refresh" ]
    [ "$(as_code alice -X POST -d "grant_type=refresh_token&refresh_token=$refresh&expires_in=0" \
        /api/security/token)" = 403 ]
    run as alice -X POST -d "grant_type=refresh_token&refresh_token=$refresh&expires_in=60" \
        /api/security/token
    [ "$(echo "$output" | jq -r .expires_in)" = 60 ]
    # a short-lived token alone cannot take over the account
    local atok
    atok=$(as alice -X POST -d 'expires_in=600' /api/security/token | jq -r .access_token)
    [ "$(code -H "Authorization: Bearer $atok" -X POST -H 'Content-Type: application/json' \
        -d '{"password":"takenover1"}' "$NODE_a_URL/api/security/users/alice/password")" = 400 ]
    [ "$(code -H "Authorization: Bearer $atok" -X POST -H 'Content-Type: application/json' \
        -d '{"password":"takenover1","oldPassword":"guess-guess"}' \
        "$NODE_a_URL/api/security/users/alice/password")" = 401 ]
    [ "$(as_code alice /mine/a.jar)" = 200 ]
    [ "$(as_code alice -X POST -H 'Content-Type: application/json' \
        -d "{\"password\":\"$PW\",\"oldPassword\":\"$PW\"}" /api/security/users/alice/password)" = 200 ]
    # an admin sets anyone's password without the old one
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d "{\"password\":\"$PW\"}" /api/security/users/alice/password)" = 200 ]
}

@test "downloads: nosniff and a sandboxing policy always, attachment for active types (finding 8)" {
    printf '<script>alert(1)</script>' >"$SUITE_TMP/x.html"
    for f in x.html x.svg x.js x.txt x.pom; do
        [ "$(as_code alice -T "$SUITE_TMP/x.html" "/mine/web/$f")" = 201 ]
    done
    for f in x.html x.svg x.js x.pom; do
        run as alice -D - -o /dev/null "/mine/web/$f"
        [[ "$output" == *"X-Content-Type-Options: nosniff"* ]]
        [[ "$output" == *"Content-Security-Policy: default-src 'none'; sandbox"* ]]
        [[ "$output" == *"Content-Disposition: attachment; filename*=UTF-8''$f"* ]]
    done
    run as alice -D - -o /dev/null /mine/web/x.txt
    [[ "$output" == *"X-Content-Type-Options: nosniff"* ]]
    [[ "$output" == *"Content-Security-Policy: default-src 'none'; sandbox"* ]]
    [[ "$output" != *Content-Disposition* ]]
    # HEAD says the same as GET
    run as alice -I /mine/web/x.html
    [[ "$output" == *"Content-Disposition: attachment"* ]]
}

@test "a plugin realm's user is its own principal, never the internal user of that name (finding 9)" {
    # an internal admin named like the realm's user
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
        -d '{"password":"internal-ci-pw","admin":true}' /api/security/users/ci)" = 201 ]
    # the realm's ci (static-realm.lua: ci-secret) cannot act as the internal ci
    [ "$(code -u ci:ci-secret -X POST -H 'Content-Type: application/json' \
        -d '{"password":"changed-by-realm"}' "$NODE_a_URL/api/security/users/ci/password")" = 403 ]
    [ "$(code -u ci:ci-secret "$NODE_a_URL/api/security/users")" = 403 ]
    [ "$(code -u ci:internal-ci-pw "$NODE_a_URL/api/security/users")" = 200 ]
    # grants name it realm-qualified
    target realm-ci '{"repo":{"repositories":["mine"],"actions":{"users":{"static-realm:ci":["write"]}}}}'
    echo z >"$SUITE_TMP/z"
    [ "$(code -u ci:ci-secret -T "$SUITE_TMP/z" "$NODE_a_URL/mine/realm/z.txt")" = 201 ]
    [ "$(acurl a /api/storage/mine/realm/z.txt | jq -r .createdBy)" = static-realm:ci ]
    [ "$(code -u ci:ci-secret -T "$SUITE_TMP/z" "$NODE_a_URL/libs/realm/z.txt")" = 403 ]
}

@test "recursive property changes need annotate on everything below the folder (finding 11)" {
    target alice-annotate '{"repo":{"repositories":["libs"],"exclude-patterns":["release/**"],
        "actions":{"users":{"alice":["annotate"]}}}}'
    [ "$(as_code alice -X PUT '/api/storage/libs/?properties=owner=alice')" = 403 ]
    [ "$(acurl a -o /dev/null -w '%{http_code}' '/api/storage/libs/release/app-1.0.jar?properties=owner')" = 404 ]
    [ "$(as_code alice -X PUT '/api/storage/libs/pub?properties=owner=alice')" = 403 ]
    # not recursive, or on a folder a target covers whole, is fine
    [ "$(as_code alice -X PUT '/api/storage/libs/?properties=owner=alice&recursive=0')" = 204 ]
    target alice-pub '{"repo":{"repositories":["libs"],"include-patterns":["pub/**"],
        "actions":{"users":{"alice":["annotate"]}}}}'
    [ "$(as_code alice -X PUT '/api/storage/libs/pub?properties=owner=alice')" = 204 ]
    [ "$(acurl a '/api/storage/libs/pub/readme.txt?properties=owner' | jq -r '.properties.owner[0]')" = alice ]
    acurl a -X DELETE /api/v2/security/permissions/alice-annotate >/dev/null
    acurl a -X DELETE /api/v2/security/permissions/alice-pub >/dev/null
}

@test "repository lists, cluster and plugin details show only what the caller may see (finding 12)" {
    run as alice /api/repositories
    [ "$(echo "$output" | jq -r '[.[].key] | join(" ")')" = "libs mine" ]
    run as alice /
    [[ "$output" == *libs/* ]]
    [[ "$output" != *secret* ]]
    [ "$(as_code alice /api/repositories/secret)" = 403 ]
    [ "$(as_code alice /api/repositories/libs)" = 200 ]
    run as alice /api/system/cluster
    [ "$(echo "$output" | jq -r 'keys | join(",")')" = "clustered,nodes" ]
    run acurl a /api/system/cluster
    [ "$(echo "$output" | jq -r 'keys | join(",")')" = "answeredBy,clustered,downAfterMs,nodes,primary,primaryToken,storage" ]
    run as alice /api/plugins
    [ "$(echo "$output" | jq -r 'keys | join(",")')" = executions ]
    run acurl a /api/plugins
    [ "$(echo "$output" | jq -r 'keys | join(",")')" = "executions,generation,jobs,plugins" ]
}

@test "behind a trusted proxy the throttle and the audit log see the client, not the balancer (finding 13)" {
    # failures for many names from one client address lock that address only
    local i c=
    for ((i = 1; i <= 12; i++)); do
        c=$(code -u "nobody$i:wrong-pass" -H 'X-Forwarded-For: 203.0.113.9' "$NODE_a_URL/api/repositories")
        if [ "$c" = 429 ]; then break; fi
    done
    [ "$c" = 429 ]
    [ "$(code -u "bob:$PW" -H 'X-Forwarded-For: 203.0.113.9' "$NODE_a_URL/mine/")" = 429 ]
    [ "$(code -u "bob:$PW" -H 'X-Forwarded-For: 203.0.113.10' "$NODE_a_URL/api/repositories")" = 200 ]
    # what a client writes itself stands left of what the proxy appended
    [ "$(code -u "bob:$PW" -H 'X-Forwarded-For: 198.51.100.1, 203.0.113.9' "$NODE_a_URL/api/repositories")" = 429 ]
    [ "$(code -u "bob:$PW" -H 'X-Forwarded-For: 203.0.113.9, 198.51.100.1' "$NODE_a_URL/api/repositories")" = 200 ]
    run acurl a '/api/audit?user=nobody1&action=login_failed'
    [ "$(echo "$output" | jq -r '[.entries[].client] | unique | join(" ")')" = 203.0.113.9 ]
}

@test "without --trusted-proxy a forged X-Forwarded-For changes nothing" {
    export DB2=$(new_db holes2)
    start_node b --database-url "$DB2"
    local i c=
    for ((i = 1; i <= 12; i++)); do
        c=$(code -u "nobody$i:wrong-pass" -H "X-Forwarded-For: 192.0.2.$i" "$NODE_b_URL/api/repositories")
        if [ "$c" = 429 ]; then break; fi
    done
    [ "$c" = 429 ]
    [ "$(code -u "admin:$NODE_b_PASS" -H 'X-Forwarded-For: 192.0.2.99' "$NODE_b_URL/api/repositories")" = 429 ]
    local pass=$NODE_b_PASS
    for ((i = 0; i < 100; i++)); do # until the address's wait is over
        if [ "$(code -u "admin:$pass" "$NODE_b_URL/api/repositories")" = 200 ]; then break; fi
        sleep 0.2
    done
    run curl -sS -u "admin:$pass" "$NODE_b_URL/api/audit?user=nobody1&action=login_failed"
    [ "$(echo "$output" | jq -r '[.entries[].client] | unique | join(" ")')" = 127.0.0.1 ]
    stop_node b
}

@test "the first admin password goes to stdout only on a terminal (finding 16)" {
    export DB3=$(new_db holes3)
    local dir=$SUITE_TMP/tty port
    port=$(free_port)
    mkdir -p "$dir"
    # under a pseudo-terminal, as `make run` is
    script -qfec "$GRANARYD --data-dir $dir --listen 127.0.0.1:$port --database-url $DB3" \
        "$dir/typescript" >/dev/null 2>&1 &
    local spid=$!
    echo "$spid" >>"$SUITE_TMP/pids"
    local i
    for ((i = 0; i < 300; i++)); do
        if grep -q 'admin user:' "$dir/typescript" 2>/dev/null; then break; fi
        sleep 0.1
    done
    local pass
    pass=$(cat "$dir/admin.password")
    pkill -TERM -f -- "--data-dir $dir " || true
    grep -q "admin user: admin  password: $pass" "$dir/typescript"
}
