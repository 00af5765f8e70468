#!/usr/bin/env bats
# Security on one node: users, groups, permission targets (the matrix),
# anonymous access, access tokens, failed-login throttling, the audit log,
# and no endpoint leaking a password hash or a token (docs/security.md).
load helpers

setup_file() {
    start_pg
    export DB=$(new_db sec)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR
    make_repo a libs
    make_repo a other
    echo "v1" >"$SUITE_TMP/f1"
    echo "v2" >"$SUITE_TMP/f2"
    acurl a -T "$SUITE_TMP/f1" /libs/org/a/1/a.jar >/dev/null
    acurl a -T "$SUITE_TMP/f1" /libs/secret/s.txt >/dev/null
    acurl a -T "$SUITE_TMP/f1" /other/o.txt >/dev/null
}
teardown_file() { cleanup_suite; }

U=$NODE_a_URL
PW=password123

mkuser() { # name [json extra]
    acurl a -X PUT -H 'Content-Type: application/json' -w '%{http_code}' -o /dev/null \
        -d "{\"name\":\"$1\",\"password\":\"$PW\",\"email\":\"$1@example.com\"${2:+,$2}}" \
        "/api/security/users/$1"
}
target() { # name json
    acurl a -X PUT -H 'Content-Type: application/json' -w '%{http_code}' -o /dev/null -d "$2" \
        "/api/v2/security/permissions/$1"
}
as() { # user [curl args] URLPATH -> status code
    local u=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' -u "$u:$PW" "${@:1:$#-1}" "$NODE_a_URL${!#}"
}

@test "users: created, read back without a password, listed; short passwords refused" {
    [ "$(mkuser alice)" = 201 ]
    run acurl a -w '\n%{http_code}' -X PUT -H 'Content-Type: application/json' \
        -d '{"password":"short"}' /api/security/users/shorty
    [ "${lines[-1]}" = 400 ]
    run acurl a /api/security/users/alice
    [ "$(echo "$output" | jq -r .name)" = alice ]
    [ "$(echo "$output" | jq -r .email)" = alice@example.com ]
    [ "$(echo "$output" | jq -r .admin)" = false ]
    [[ "$output" != *pbkdf2* && "$output" != *password123* ]]
    [ "$(echo "$output" | jq 'has("password")')" = false ]
    acurl a /api/security/users | jq -e 'map(.name) | index("alice") and index("admin")'
    [ "$(code -u "alice:$PW" "$U/api/security/users")" = 403 ]
    [ "$(code -u "alice:wrongpass" "$U/libs/org/a/1/a.jar")" = 401 ]
    [ "$(code -X PUT -H 'Content-Type: application/json' -d '{"password":"xxxxxxxxxx"}' \
        -u "admin:$NODE_a_PASS" "$U/api/security/users/anonymous")" = 400 ]
}

@test "permission matrix: each action allowed and denied, by user, by group, by pattern" {
    for u in reader deployer deleter annot grouped nobody; do [ "$(mkuser $u '"groups":[]')" = 201 ]; done
    [ "$(acurl a -X PUT -H 'Content-Type: application/json' -w '%{http_code}' -o /dev/null \
        -d '{"userNames":["grouped"]}' /api/security/groups/devs)" = 201 ]
    [ "$(target t-libs '{"repo":{"repositories":["libs"],"include-patterns":["**"],
        "exclude-patterns":["secret/**"],"actions":{"users":{"reader":["read"],
        "deployer":["write"],"deleter":["delete"],"annot":["annotate"]}}}}')" = 200 ]
    [ "$(target t-devs '{"repo":{"repositories":["ANY LOCAL"],"include-patterns":["org/**"],
        "actions":{"groups":{"devs":["write"]}}}}')" = 200 ]

    # read
    [ "$(as reader /libs/org/a/1/a.jar)" = 200 ]
    [ "$(as nobody /libs/org/a/1/a.jar)" = 403 ]
    [ "$(as reader /libs/secret/s.txt)" = 403 ]   # excluded by pattern
    [ "$(as reader /other/o.txt)" = 403 ]         # another repository
    [ "$(as grouped /other/org/x)" = 404 ]        # by group, in ANY LOCAL: allowed, absent
    [ "$(as grouped /other/o.txt)" = 403 ]        # outside org/**
    # write (deploy a new path)
    [ "$(as reader -T "$SUITE_TMP/f1" /libs/org/new/r.txt)" = 403 ]
    [ "$(as deployer -T "$SUITE_TMP/f1" /libs/org/new/d.txt)" = 201 ]
    [ "$(as grouped -T "$SUITE_TMP/f1" /other/org/g.txt)" = 201 ]
    [ "$(as grouped -T "$SUITE_TMP/f1" /other/top.txt)" = 403 ]
    # overwrite needs delete
    [ "$(as deployer -T "$SUITE_TMP/f2" /libs/org/new/d.txt)" = 403 ]
    [ "$(curl -s -u "admin:$NODE_a_PASS" "$U/libs/org/new/d.txt")" = v1 ]
    [ "$(as deleter -T "$SUITE_TMP/f2" /libs/org/new/d.txt)" = 201 ]
    [ "$(curl -s -u "admin:$NODE_a_PASS" "$U/libs/org/new/d.txt")" = v2 ]
    # annotate (properties)
    [ "$(as reader -X PUT '/api/storage/libs/org/a/1/a.jar?properties=k=v')" = 403 ]
    [ "$(as annot -X PUT '/api/storage/libs/org/a/1/a.jar?properties=k=v')" = 204 ]
    [ "$(as annot /api/storage/libs/org/a/1/a.jar?properties)" = 200 ]
    # delete
    [ "$(as deployer -X DELETE /libs/org/new/d.txt)" = 403 ]
    [ "$(as deleter -X DELETE /libs/org/new/d.txt)" = 204 ]
    # a folder goes as a whole: not with files excluded from the permission below it
    [ "$(as deleter -X DELETE /libs/)" = 403 ]
    [ "$(as deleter -X POST '/api/move/libs/?to=/other/x')" = 403 ]
    [ "$(curl -s -u "admin:$NODE_a_PASS" "$U/libs/secret/s.txt")" = v1 ]
    # effective permissions
    run curl -s -u "deleter:$PW" "$U/api/security/permissions/effective?repo=libs&path=org/a"
    [ "$(echo "$output" | jq -c .actions)" = '["read","annotate","write","delete"]' ]
    run acurl a "/api/security/permissions/effective?repo=libs&path=secret/s.txt&user=reader"
    [ "$(echo "$output" | jq -c .actions)" = '[]' ]
    # search hides what one may not read
    run curl -s -u "reader:$PW" "$U/api/search/artifact?name=s.txt"
    [ "$(echo "$output" | jq '.results | length')" = 0 ]
    run acurl a "/api/search/artifact?name=s.txt"
    [ "$(echo "$output" | jq '.results | length')" = 1 ]
    # copy needs read on the source and write on the target
    [ "$(as reader -X POST '/api/copy/libs/org/a/1/a.jar?to=/libs/org/c/a.jar')" = 403 ]
    [ "$(as grouped -X POST '/api/copy/other/org/g.txt?to=/libs/org/c/g.txt')" = 200 ]
}

@test "a changed permission target holds at once; v1 and v2 shapes read back" {
    [ "$(as reader /libs/org/a/1/a.jar)" = 200 ]
    [ "$(target t-libs '{"repo":{"repositories":["libs"],"actions":{"users":{"deployer":["read"]}}}}')" = 200 ]
    [ "$(as reader /libs/org/a/1/a.jar)" = 403 ]
    [ "$(as deployer /libs/secret/s.txt)" = 200 ]
    run acurl a /api/v2/security/permissions/t-libs
    [ "$(echo "$output" | jq -c .repo.actions.users.deployer)" = '["read"]' ]
    [ "$(echo "$output" | jq -c .repo.repositories)" = '["libs"]' ]
    run acurl a /api/security/permissions/t-devs
    [ "$(echo "$output" | jq -c .principals.groups.devs)" = '["w"]' ]
    [ "$(echo "$output" | jq -r .includesPattern)" = 'org/**' ]
    acurl a /api/security/permissions | jq -e 'map(.name) | index("t-devs")'
    # removing a user from the group removes the group's grants
    [ "$(acurl a -X POST -H 'Content-Type: application/json' -w '%{http_code}' -o /dev/null \
        -d '{"userNames":[]}' /api/security/groups/devs)" = 200 ]
    [ "$(as grouped -T "$SUITE_TMP/f1" /other/org/g2.txt)" = 403 ]
    [ "$(acurl a -X DELETE -w '%{http_code}' -o /dev/null /api/v2/security/permissions/t-libs)" = 200 ]
    [ "$(as deployer /libs/secret/s.txt)" = 403 ]
}

@test "anonymous: off refuses everything; on reads what the anonymous user may" {
    [ "$(code "$U/libs/org/a/1/a.jar")" = 401 ]
    acurl a -X PUT -H 'Content-Type: application/json' -d '{"anonymousRead":true}' /api/system/settings
    [ "$(code "$U/libs/org/a/1/a.jar")" = 200 ]       # the "Anything" target
    [ "$(code -T "$SUITE_TMP/f1" "$U/libs/anon.txt")" = 401 ]
    [ "$(code -X DELETE "$U/libs/org/a/1/a.jar")" = 401 ]
    [ "$(target Anything '{"repo":{"repositories":["ANY"],"actions":{"users":{"anonymous":["read"]}},
        "exclude-patterns":["org/**"]}}')" = 200 ]
    [ "$(code "$U/libs/org/a/1/a.jar")" = 401 ]
    [ "$(code "$U/other/o.txt")" = 200 ]
    acurl a -X PUT -H 'Content-Type: application/json' -d '{"anonymousRead":false}' /api/system/settings
    [ "$(code "$U/other/o.txt")" = 401 ]
}

@test "disabled users are refused at once; the last admin cannot be removed" {
    [ "$(as reader /api/security/token)" = 200 ]
    acurl a -X POST -H 'Content-Type: application/json' -d '{"disabled":true}' /api/security/users/reader
    [ "$(as reader /api/security/token)" = 401 ]
    [ "$(acurl a -X DELETE -w '%{http_code}' -o /dev/null /api/security/users/admin)" = 409 ]
    [ "$(acurl a -X POST -H 'Content-Type: application/json' -w '%{http_code}' -o /dev/null \
        -d '{"admin":false}' /api/security/users/admin)" = 409 ]
}

@test "access tokens: Bearer and Basic password, listed without values, revoked, expired" {
    run curl -s -u "alice:$PW" -d username=alice -d scope=applied-permissions/user \
        -d expires_in=600 "$U/api/security/token"
    local tok=$(echo "$output" | jq -r .access_token)
    [ "$(echo "$output" | jq -r .token_type)" = Bearer ]
    [ "$(echo "$output" | jq -r .expires_in)" = 600 ]
    [ "$(echo "$output" | jq -r .scope)" = applied-permissions/user ]
    [ ${#tok} = 68 ]
    [ "$(code -H "Authorization: Bearer $tok" "$U/api/security/token")" = 200 ]
    [ "$(code -u "alice:$tok" "$U/api/security/token")" = 200 ]
    [ "$(code -u "admin:$tok" "$U/api/security/token")" = 401 ]  # not admin's token
    # stored only as a hash
    [ "$(psql_db sec "SELECT count(*) FROM access_tokens WHERE token_sha256 = '$(printf %s "$tok" | sha256sum | cut -d' ' -f1)'")" = 1 ]
    [ "$(psql_db sec "SELECT count(*) FROM access_tokens WHERE token_sha256 = '$tok'")" = 0 ]
    run curl -s -u "alice:$PW" "$U/api/security/token"
    [[ "$output" != *"$tok"* ]]
    [ "$(echo "$output" | jq -r '.tokens[0].subject')" = alice ]
    # others' tokens: not visible, not revocable
    [ "$(curl -s -u "deleter:$PW" "$U/api/security/token" | jq '.tokens | length')" = 0 ]
    [ "$(code -u "deleter:$PW" -d "token=$tok" "$U/api/security/token/revoke")" = 404 ]
    # a user cannot issue tokens for others, nor admin-scoped ones
    [ "$(code -u "alice:$PW" -d username=admin "$U/api/security/token")" = 403 ]
    [ "$(code -u "alice:$PW" -d scope=applied-permissions/admin "$U/api/security/token")" = 403 ]
    [ "$(code -u "alice:$PW" -d "token=$tok" "$U/api/security/token/revoke")" = 200 ]
    [ "$(code -H "Authorization: Bearer $tok" "$U/api/security/token")" = 401 ]
    [ "$(code -u "alice:$tok" "$U/api/security/token")" = 401 ]
    # expiry
    run curl -s -u "alice:$PW" -d expires_in=1 "$U/api/security/token"
    tok=$(echo "$output" | jq -r .access_token)
    [ "$(code -H "Authorization: Bearer $tok" "$U/api/security/token")" = 200 ]
    sleep 1.5
    [ "$(code -H "Authorization: Bearer $tok" "$U/api/security/token")" = 401 ]
    # refresh: the old pair stops working
    run curl -s -u "alice:$PW" -d refreshable=true "$U/api/security/token"
    local rt=$(echo "$output" | jq -r .refresh_token) t1=$(echo "$output" | jq -r .access_token)
    run curl -s -u "alice:$PW" -d grant_type=refresh_token -d "refresh_token=$rt" "$U/api/security/token"
    local t2=$(echo "$output" | jq -r .access_token)
    [ "$(code -H "Authorization: Bearer $t1" "$U/api/security/token")" = 401 ]
    [ "$(code -H "Authorization: Bearer $t2" "$U/api/security/token")" = 200 ]
    # an admin token with the admin scope is an admin
    run acurl a -d username=alice -d scope=applied-permissions/admin /api/security/token
    [ "$(code -H "Authorization: Bearer $(echo "$output" | jq -r .access_token)" "$U/api/security/users")" = 403 ] # alice is no admin
    run acurl a -d scope=applied-permissions/admin /api/security/token
    [ "$(code -H "Authorization: Bearer $(echo "$output" | jq -r .access_token)" "$U/api/security/users")" = 200 ]
}

@test "a download through a warm token costs no database query" {
    run curl -s -u "deleter:$PW" -d expires_in=600 "$U/api/security/token"
    local tok=$(echo "$output" | jq -r .access_token)
    target t-warm '{"repo":{"repositories":["libs"],"actions":{"users":{"deleter":["read"]}}}}'
    curl -sf -o /dev/null -H "Authorization: Bearer $tok" "$U/libs/org/a/1/a.jar"
    local before=$(metric a granary_db_queries_total)
    for i in 1 2 3; do curl -sf -o /dev/null -H "Authorization: Bearer $tok" "$U/libs/org/a/1/a.jar"; done
    for i in 1 2 3; do curl -sf -o /dev/null -u "deleter:$PW" "$U/libs/org/a/1/a.jar"; done
    local after=$(metric a granary_db_queries_total)
    # the metric read itself is the only difference allowed: none
    [ "$after" = "$before" ]
}

@test "passwords: changed by the user with the old one, by an admin; old one stops working" {
    [ "$(code -u "annot:$PW" -X POST -H 'Content-Type: application/json' \
        -d '{"userName":"annot","oldPassword":"wrong-one","newPassword1":"newpassword1","newPassword2":"newpassword1"}' \
        "$U/api/security/users/authorization/changePassword")" = 401 ]
    [ "$(code -u "annot:$PW" -X POST -H 'Content-Type: application/json' \
        -d "{\"userName\":\"annot\",\"oldPassword\":\"$PW\",\"newPassword1\":\"newpassword1\",\"newPassword2\":\"newpassword1\"}" \
        "$U/api/security/users/authorization/changePassword")" = 200 ]
    [ "$(code -u "annot:$PW" "$U/api/security/token")" = 401 ]
    [ "$(code -u "annot:newpassword1" "$U/api/security/token")" = 200 ]
    [ "$(acurl a -X POST -H 'Content-Type: application/json' -w '%{http_code}' -o /dev/null \
        -d "{\"password\":\"$PW\"}" /api/security/users/annot/password)" = 200 ]
    [ "$(code -u "annot:$PW" "$U/api/security/token")" = 200 ]
}

@test "repeated failures slow down per user and are logged; success afterwards works" {
    mkuser victim '"groups":[]'
    for i in 1 2 3 4 5; do [ "$(code -u victim:wrong-password "$U/api/security/token")" = 401 ]; done
    [ "$(code -u victim:wrong-password "$U/api/security/token")" = 401 ]  # the 6th starts the wait
    [ "$(code -u "victim:$PW" "$U/api/security/token")" = 429 ]          # even the right one waits
    grep -q "authentication failed for user 'victim'" "$NODE_a_DIR/stderr.log"
    grep -q "login for 'victim' from 127.0.0.1 refused: throttled" "$NODE_a_DIR/stderr.log"
    sleep 1.2
    [ "$(code -u "victim:$PW" "$U/api/security/token")" = 200 ]
    [ "$(code -u "victim:$PW" "$U/api/security/token")" = 200 ]
}

@test "the audit log: deploys, overwrites, deletes, properties, security, logins; filterable" {
    run acurl a "/api/audit?action=login_failed&user=victim"
    [ "$(echo "$output" | jq '.entries | length')" -ge 6 ]
    [ "$(echo "$output" | jq -r '.entries[0].client')" = 127.0.0.1 ]
    run acurl a "/api/audit?user=deleter"
    echo "$output" | jq -e '[.entries[].action] | index("overwrite") and index("delete")'
    run acurl a "/api/audit?action=deploy"
    echo "$output" | jq -e '[.entries[] | .repo + "/" + .path] | index("libs/org/new/d.txt")'
    run acurl a "/api/audit?action=properties"
    [ "$(echo "$output" | jq -r '.entries[0].user')" = annot ]
    run acurl a "/api/audit?action=security"
    echo "$output" | jq -e '[.entries[].detail] | index("create user alice")'
    run acurl a "/api/audit?action=copy"
    [ "$(echo "$output" | jq -r '.entries[0].detail')" = "to libs/org/c/g.txt" ]
    run acurl a "/api/audit?action=token_revoke"
    [ "$(echo "$output" | jq -r '.entries[0].user')" = alice ]
    run acurl a "/api/audit?from=$(( $(date +%s) * 1000 + 60000 ))"
    [ "$(echo "$output" | jq '.entries | length')" = 0 ]
    [ "$(code -u "alice:$PW" "$U/api/audit")" = 403 ]
}

@test "no endpoint leaks a password hash or a token" {
    run curl -s -u "alice:$PW" -d expires_in=600 "$U/api/security/token"
    local tok=$(echo "$output" | jq -r .access_token)
    local all=""
    for p in /api/security/users /api/security/users/alice /api/security/users/admin \
        /api/security/groups /api/security/groups/devs /api/security/permissions \
        /api/v2/security/permissions/t-devs /api/security/token /api/audit \
        /api/system/settings /api/system/metrics /api/repositories; do
        all+=$(acurl a "$p")
    done
    [[ "$all" != *pbkdf2* ]]
    [[ "$all" != *"$tok"* ]]
    [[ "$all" != *"${tok:4:20}"* ]]
    ! grep -q "$tok" "$NODE_a_DIR/stderr.log"
}

@test "a slowloris client is cut off without hurting others; connections per address are capped" {
    start_node lim --database-url "$(new_db limits)" --header-timeout 2 --max-conn-per-client 4
    run python3 tests/integration/tools/slowloris.py "$NODE_lim_PORT" 2 4
    echo "$output"
    [ "$status" -eq 0 ]
    grep -q "connection cut: no complete request head within 2 s" "$SUITE_TMP/node-lim/stderr.log"
}

@test "more than 100 header lines: 431" {
    local h=()
    for i in $(seq 1 101); do h+=(-H "X-H$i: v"); done
    [ "$(code "${h[@]}" -u "admin:$NODE_a_PASS" "$U/api/repositories")" = 431 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$U/api/repositories")" = 200 ]
}
