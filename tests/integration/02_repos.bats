#!/usr/bin/env bats
# /api/repositories: create, read, list, update, delete, and their errors.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db repos)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR
}
teardown_file() { cleanup_suite; }

json_put() { # path body -> prints "status body"
    curl -sS -u "admin:$NODE_a_PASS" -X PUT -H 'Content-Type: application/json' -d "$2" \
        -w '\n%{http_code}' "$NODE_a_URL$1"
}

@test "create, get, list, update and delete a repository" {
    run json_put /api/repositories/libs-release '{"key":"libs-release","rclass":"local","packageType":"generic","description":"releases","includesPattern":"**/*","excludesPattern":"**/*.tmp"}'
    [ "${lines[-1]}" = 200 ]
    [[ "$output" == *"Successfully created repository 'libs-release'"* ]]
    run acurl a /api/repositories/libs-release
    [ "$(echo "$output" | jq -r .key)" = libs-release ]
    [ "$(echo "$output" | jq -r .rclass)" = local ]
    [ "$(echo "$output" | jq -r .packageType)" = generic ]
    [ "$(echo "$output" | jq -r .description)" = releases ]
    [ "$(echo "$output" | jq -r .includesPattern)" = '**/*' ]
    [ "$(echo "$output" | jq -r .excludesPattern)" = '**/*.tmp' ]
    run acurl a /api/repositories
    [ "$(echo "$output" | jq -r '.[] | select(.key=="libs-release") | .type')" = LOCAL ]
    [ "$(echo "$output" | jq -r '.[] | select(.key=="libs-release") | .url')" = "$NODE_a_URL/libs-release" ]
    run acurl a -X POST -H 'Content-Type: application/json' -d '{"description":"changed"}' /api/repositories/libs-release
    [[ "$output" == *"update successful"* ]]
    [ "$(acurl a /api/repositories/libs-release | jq -r .description)" = changed ]
    [ "$(acurl a /api/repositories/libs-release | jq -r .excludesPattern)" = '**/*.tmp' ]
    run acurl a -X DELETE /api/repositories/libs-release
    [[ "$output" == *"removed successfully"* ]]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/api/repositories/libs-release")" = 404 ]
}

@test "deleting a repository deletes its artifacts" {
    make_repo a gone
    echo hello >"$SUITE_TMP/h.txt"
    [ "$(code -u "admin:$NODE_a_PASS" -T "$SUITE_TMP/h.txt" "$NODE_a_URL/gone/x/h.txt")" = 201 ]
    acurl a -X DELETE /api/repositories/gone >/dev/null
    [ "$(psql_db repos "SELECT count(*) FROM artifacts WHERE repo='gone'")" = 0 ]
    make_repo a gone
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/gone/x/h.txt")" = 404 ]
}

@test "invalid keys, duplicates, bad JSON and unknown fields are 4xx JSON errors" {
    run json_put /api/repositories/bad%20key '{"rclass":"local"}'
    [ "${lines[-1]}" = 400 ]
    [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 400 ]
    run json_put /api/repositories/api '{"rclass":"local"}'
    [ "${lines[-1]}" = 400 ]
    run json_put /api/repositories/-leading '{"rclass":"local"}'
    [ "${lines[-1]}" = 400 ]
    run json_put /api/repositories/$(printf 'k%.0s' {1..65}) '{"rclass":"local"}'
    [ "${lines[-1]}" = 400 ]
    make_repo a dup
    run json_put /api/repositories/dup '{"rclass":"local"}'
    [ "${lines[-1]}" = 400 ]
    [[ "${lines[0]}" == *"already exists"* ]]
    run json_put /api/repositories/j1 '{"rclass": "local",'
    [ "${lines[-1]}" = 400 ]
    [[ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" == "invalid JSON"* ]]
    run json_put /api/repositories/j2 '{"rclass":"local","nope":1}'
    [ "${lines[-1]}" = 400 ]
    run json_put /api/repositories/j3 '{"rclass":"remote"}'
    [ "${lines[-1]}" = 400 ]
    run json_put /api/repositories/j4 '{"rclass":"local","packageType":"cobol"}'
    [ "${lines[-1]}" = 400 ]
    run json_put /api/repositories/j5 '{"key":"other","rclass":"local"}'
    [ "${lines[-1]}" = 400 ]
    run json_put /api/repositories/j6 '[1,2]'
    [ "${lines[-1]}" = 400 ]
    # nothing of it was stored
    [ "$(psql_db repos "SELECT count(*) FROM repositories WHERE key LIKE 'j_'")" = 0 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/api/repositories/nope")" = 404 ]
    [ "$(code -u "admin:$NODE_a_PASS" -X DELETE "$NODE_a_URL/api/repositories/nope")" = 404 ]
}

@test "repository changes need an admin; anonymous callers get 401 with a Basic challenge" {
    run curl -sS -i -X PUT -H 'Content-Type: application/json' -d '{"rclass":"local"}' "$NODE_a_URL/api/repositories/anon"
    [[ "$output" == *"HTTP/1.1 401"* ]]
    [[ "$output" == *'WWW-Authenticate: Basic realm="granary"'* ]]
    [ "$(code -u admin:wrong "$NODE_a_URL/api/repositories")" = 401 ]
    [ "$(code "$NODE_a_URL/api/repositories")" = 401 ]
}
