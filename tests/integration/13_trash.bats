#!/usr/bin/env bats
# The trash can: deletes land in it with their properties, restore brings
# them back (same bytes), clean/empty/expiry purge rows but never binaries,
# retention 0 makes deletes final.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db trash)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR
    make_repo a libs
    make_repo a other
    make_repo a strict
    acurl a -X POST -H 'Content-Type: application/json' -d '{"excludesPattern":"**/*.bin"}' \
        /api/repositories/strict >/dev/null
    head -c 40000 /dev/urandom >"$SUITE_TMP/a"
    export SHA_A=$(sha256sum "$SUITE_TMP/a" | cut -d' ' -f1)
}
teardown_file() { cleanup_suite; }

# setprops REPO/PATH SPEC: set properties through the API (folders: not recursively)
setprops() {
    [ "$(code -u "admin:$NODE_a_PASS" -X PUT "$NODE_a_URL/api/storage/$1?properties=$2&recursive=0")" = 204 ]
}

sha_of() { acurl a "$1" | sha256sum | cut -d' ' -f1; }
props() { # repo path -> "k=v,k=v" sorted
    psql_db trash "SELECT coalesce(string_agg(key || '=' || value, ',' ORDER BY key, value), '')
        FROM properties WHERE repo = '$1' AND path = '$2'"
}
trashed() { psql_db trash "SELECT count(*) FROM trash WHERE repo = '$1' AND path = '$2'"; }
status() { code -u "admin:$NODE_a_PASS" "$@"; }

@test "a deleted file goes to the trash with its properties; GET is 404; the binary stays" {
    acurl a -T "$SUITE_TMP/a" /libs/t/a.bin >/dev/null
    setprops libs/t/a.bin 'k=v1,v2|build=9'
    [ "$(status "$NODE_a_URL/libs/t/a.bin")" = 200 ] # cached
    [ "$(status -X DELETE "$NODE_a_URL/libs/t/a.bin")" = 204 ]
    [ "$(status "$NODE_a_URL/libs/t/a.bin")" = 404 ]
    [ "$(props libs t/a.bin)" = "" ]
    [ "$(psql_db trash "SELECT count(*) FROM binaries WHERE sha256 = '$SHA_A'")" = 1 ]
    [ -f "$NODE_a_DIR/filestore/${SHA_A:0:2}/$SHA_A" ]
    run acurl a -w '\n%{http_code}' /api/trash
    [ "${lines[-1]}" = 200 ]
    local j=${lines[0]}
    [ "$(echo "$j" | jq -r .repo)" = auto-trashcan ]
    [ "$(echo "$j" | jq -r '.items | length')" = 1 ]
    [ "$(echo "$j" | jq -r '.items[0].repo')" = libs ]
    [ "$(echo "$j" | jq -r '.items[0].path')" = t/a.bin ]
    [ "$(echo "$j" | jq -r '.items[0].size')" = 40000 ]
    [ "$(echo "$j" | jq -r '.items[0].sha256')" = "$SHA_A" ]
    [ "$(echo "$j" | jq -r '.items[0].deletedBy')" = admin ]
    [ "$(echo "$j" | jq -r '.items[0].createdBy')" = admin ]
    [[ "$(echo "$j" | jq -r '.items[0].deleted')" =~ ^20[0-9-]+T[0-9:.]+Z$ ]]
    [ "$(echo "$j" | jq -cS '.items[0].properties')" = '{"build":["9"],"k":["v1","v2"]}' ]
}

@test "restore brings the file back with the same bytes and properties" {
    run acurl a -X POST -w '\n%{http_code}' /api/trash/restore/libs/t/a.bin
    [ "${lines[-1]}" = 202 ]
    [ "${lines[0]}" = "Successfully restored trash items" ]
    [ "$(sha_of /libs/t/a.bin)" = "$SHA_A" ]
    [ "$(props libs t/a.bin)" = "build=9,k=v1,k=v2" ]
    [ "$(trashed libs t/a.bin)" = 0 ]
    [ "$(acurl a /api/storage/libs/t/a.bin | jq -r .createdBy)" = admin ]
}

@test "restore onto an existing path is 409 and changes nothing" {
    [ "$(status -X DELETE "$NODE_a_URL/libs/t/a.bin")" = 204 ]
    echo newer >"$SUITE_TMP/n"
    acurl a -T "$SUITE_TMP/n" /libs/t/a.bin >/dev/null
    run acurl a -X POST -w '\n%{http_code}' /api/trash/restore/libs/t/a.bin
    [ "${lines[-1]}" = 409 ]
    [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 409 ]
    [[ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" == *"libs:t/a.bin"*"exists"* ]]
    [ "$(acurl a /libs/t/a.bin)" = newer ]
    [ "$(trashed libs t/a.bin)" = 1 ]
    # a path below an existing file cannot be restored either
    [ "$(status -X POST "$NODE_a_URL/api/trash/restore/libs/t/a.bin?to=/libs/t/a.bin/x")" = 409 ]
}

@test "restore elsewhere with ?to=, across repositories" {
    run acurl a -X POST -w '\n%{http_code}' '/api/trash/restore/libs/t/a.bin?to=/other/restored/a.bin'
    [ "${lines[-1]}" = 202 ]
    [ "$(sha_of /other/restored/a.bin)" = "$SHA_A" ]
    [ "$(props other restored/a.bin)" = "build=9,k=v1,k=v2" ]
    [ "$(trashed libs t/a.bin)" = 0 ]
}

@test "a folder goes to the trash and comes back whole, folder properties included" {
    for f in tree/x/1.txt tree/x/2.txt tree/y.txt; do
        echo "$f" >"$SUITE_TMP/f"
        acurl a -T "$SUITE_TMP/f" "/libs/$f" >/dev/null
    done
    setprops libs/tree team=core
    setprops libs/tree/x rel=yes
    setprops libs/tree/x/1.txt one=1
    [ "$(status -X DELETE "$NODE_a_URL/libs/tree")" = 204 ]
    for f in tree/x/1.txt tree/x/2.txt tree/y.txt; do
        [ "$(status "$NODE_a_URL/libs/$f")" = 404 ]
    done
    [ "$(psql_db trash "SELECT count(*) FROM trash WHERE repo = 'libs' AND path LIKE 'tree/%'")" = 3 ]
    [ "$(psql_db trash "SELECT count(*) FROM trash_folders WHERE repo = 'libs'")" = 2 ]
    [ "$(psql_db trash "SELECT count(*) FROM properties WHERE repo = 'libs' AND path LIKE 'tree%'")" = 0 ]
    run acurl a -X POST -w '\n%{http_code}' /api/trash/restore/libs/tree
    [ "${lines[-1]}" = 202 ]
    for f in tree/x/1.txt tree/x/2.txt tree/y.txt; do
        [ "$(acurl a "/libs/$f")" = "$f" ]
    done
    [ "$(props libs tree)" = "team=core" ]
    [ "$(props libs tree/x)" = "rel=yes" ]
    [ "$(props libs tree/x/1.txt)" = "one=1" ]
    [ "$(psql_db trash "SELECT count(*) FROM trash WHERE repo = 'libs' AND path LIKE 'tree/%'")" = 0 ]
    [ "$(psql_db trash "SELECT count(*) FROM trash_folders")" = 0 ]
}

@test "the last delete of a path wins, and a file replaces a trashed folder at its path" {
    echo v1 >"$SUITE_TMP/v1"
    echo v2 >"$SUITE_TMP/v2"
    acurl a -T "$SUITE_TMP/v1" /libs/w/f >/dev/null
    [ "$(status -X DELETE "$NODE_a_URL/libs/w/f")" = 204 ]
    acurl a -T "$SUITE_TMP/v2" /libs/w/f >/dev/null
    [ "$(status -X DELETE "$NODE_a_URL/libs/w/f")" = 204 ]
    [ "$(trashed libs w/f)" = 1 ]
    [ "$(psql_db trash "SELECT sha256 FROM trash WHERE repo = 'libs' AND path = 'w/f'")" = \
        "$(sha256sum "$SUITE_TMP/v2" | cut -d' ' -f1)" ]
    # w/g was a folder when deleted, then a file of that name is deleted
    acurl a -T "$SUITE_TMP/v1" /libs/w/g/inner >/dev/null
    [ "$(status -X DELETE "$NODE_a_URL/libs/w/g")" = 204 ]
    acurl a -T "$SUITE_TMP/v2" /libs/w/g >/dev/null
    [ "$(status -X DELETE "$NODE_a_URL/libs/w/g")" = 204 ]
    [ "$(trashed libs w/g)" = 1 ]
    [ "$(trashed libs w/g/inner)" = 0 ]
    run acurl a -X POST -w '\n%{http_code}' /api/trash/restore/libs/w
    [ "${lines[-1]}" = 202 ]
    [ "$(acurl a /libs/w/f)" = v2 ]
    [ "$(acurl a /libs/w/g)" = v2 ]
}

@test "list filters by repository and path, and pages" {
    for f in l/1 l/2 l/3 m/1; do
        echo "$f" >"$SUITE_TMP/f"
        acurl a -T "$SUITE_TMP/f" "/other/$f" >/dev/null
        [ "$(status -X DELETE "$NODE_a_URL/other/$f")" = 204 ]
    done
    [ "$(acurl a '/api/trash/list?repo=other' | jq -r '.items | length')" = 4 ]
    [ "$(acurl a '/api/trash/list?repo=other&path=l' | jq -r '[.items[].path] | join(",")')" = l/1,l/2,l/3 ]
    [ "$(acurl a '/api/trash/list?repo=other&path=/l/' | jq -r '.items | length')" = 3 ]
    [ "$(acurl a '/api/trash/list?repo=nosuch' | jq -r '.items | length')" = 0 ]
    run acurl a '/api/trash/list?repo=other&limit=2'
    [ "$(echo "$output" | jq -r '[.items[].path] | join(",")')" = l/1,l/2 ]
    [ "$(echo "$output" | jq -r .more)" = true ]
    run acurl a '/api/trash/list?repo=other&limit=2&offset=2'
    [ "$(echo "$output" | jq -r '[.items[].path] | join(",")')" = l/3,m/1 ]
    [ "$(echo "$output" | jq -r .more)" = false ]
    [ "$(status "$NODE_a_URL/api/trash/list?limit=0")" = 400 ]
    [ "$(status "$NODE_a_URL/api/trash/list?offset=-1")" = 400 ]
    [ "$(code "$NODE_a_URL/api/trash")" = 401 ]
}

@test "clean purges one path, empty purges everything; binaries stay" {
    local sha
    sha=$(psql_db trash "SELECT sha256 FROM trash WHERE repo = 'other' AND path = 'l/1'")
    [ "$(status -X DELETE "$NODE_a_URL/api/trash/clean/other/l")" = 204 ]
    [ "$(psql_db trash "SELECT count(*) FROM trash WHERE repo = 'other' AND path LIKE 'l/%'")" = 0 ]
    [ "$(trashed other m/1)" = 1 ]
    [ "$(psql_db trash "SELECT count(*) FROM binaries WHERE sha256 = '$sha'")" = 1 ]
    [ "$(status -X DELETE "$NODE_a_URL/api/trash/clean/other/l")" = 404 ]
    [ "$(status -X POST "$NODE_a_URL/api/trash/clean/other/m")" = 405 ]
    local bins
    bins=$(psql_db trash "SELECT count(*) FROM binaries")
    [ "$(psql_db trash "SELECT count(*) FROM trash")" -gt 0 ]
    run acurl a -X POST -w '\n%{http_code}' /api/trash/empty
    [ "${lines[-1]}" = 202 ]
    [ "${lines[0]}" = "Successfully deleted all trashcan items" ]
    [ "$(psql_db trash "SELECT count(*) FROM trash")" = 0 ]
    [ "$(psql_db trash "SELECT count(*) FROM trash_folders")" = 0 ]
    [ "$(psql_db trash "SELECT count(*) FROM binaries")" = "$bins" ]
    [ "$(status -X POST "$NODE_a_URL/api/trash/restore/other/m/1")" = 404 ]
}

@test "retention 0 disables the trash: deletes are final" {
    run acurl a -X PUT -H 'Content-Type: application/json' -w '\n%{http_code}' \
        -d '{"retentionPeriodDays":0}' /api/trash/settings
    [ "${lines[-1]}" = 200 ]
    [ "$(echo "${lines[0]}" | jq -c .)" = '{"enabled":false,"retentionPeriodDays":0}' ]
    echo gone >"$SUITE_TMP/g"
    acurl a -T "$SUITE_TMP/g" /libs/final/g >/dev/null
    setprops libs/final/g p=1
    setprops libs/final f=1
    [ "$(status -X DELETE "$NODE_a_URL/libs/final")" = 204 ]
    [ "$(status "$NODE_a_URL/libs/final/g")" = 404 ]
    [ "$(psql_db trash "SELECT count(*) FROM trash")" = 0 ]
    [ "$(psql_db trash "SELECT count(*) FROM trash_folders")" = 0 ]
    [ "$(psql_db trash "SELECT count(*) FROM properties WHERE repo = 'libs' AND path LIKE 'final%'")" = 0 ]
    [ "$(status -X POST "$NODE_a_URL/api/trash/restore/libs/final")" = 404 ]
    run acurl a -X PUT -H 'Content-Type: application/json' -d '{"enabled":true}' /api/trash/settings
    [ "$(echo "$output" | jq -c .)" = '{"enabled":true,"retentionPeriodDays":14}' ]
    [ "$(acurl a /api/trash/settings | jq -c .)" = '{"enabled":true,"retentionPeriodDays":14}' ]
    [ "$(psql_db trash "SELECT value FROM settings WHERE key = 'trash_retention_days'")" = 14 ]
}

@test "settings are validated and admin-only" {
    local u=admin:$NODE_a_PASS
    for body in '{"retentionPeriodDays":-1}' '{"retentionPeriodDays":"7"}' '{"retentionPeriodDays":36501}' \
        '{"other":1}' '{}' '[]' '{"enabled":true,"retentionPeriodDays":0}' '{"enabled":"yes"}'; do
        [ "$(code -u "$u" -X PUT -H 'Content-Type: application/json' -d "$body" \
            "$NODE_a_URL/api/trash/settings")" = 400 ] || { echo "accepted $body"; return 1; }
    done
    [ "$(code -X PUT -H 'Content-Type: application/json' -d '{"retentionPeriodDays":1}' \
        "$NODE_a_URL/api/trash/settings")" = 401 ]
    [ "$(code "$NODE_a_URL/api/trash/settings")" = 401 ]
    [ "$(code -u "$u" -X DELETE "$NODE_a_URL/api/trash/settings")" = 405 ]
    [ "$(acurl a /api/trash/settings | jq -r .retentionPeriodDays)" = 14 ]
}

@test "expired rows are purged (trash_purge_expired via POST /api/trash/purge-expired)" {
    for f in e1 e2; do
        echo "$f" >"$SUITE_TMP/$f"
        acurl a -T "$SUITE_TMP/$f" "/libs/exp/$f" >/dev/null
        [ "$(status -X DELETE "$NODE_a_URL/libs/exp/$f")" = 204 ]
    done
    # ages cannot be set through the API: the rows are aged in PostgreSQL.
    # That skips the cache and the change counter, and cannot hide a bug:
    # purging reads the trash tables in PostgreSQL only, never the cache
    psql_db trash "INSERT INTO trash_folders (repo, path, deleted, deleted_by)
        VALUES ('libs', 'oldfolder', now() - interval '20 days', 'admin')"
    psql_db trash "UPDATE trash SET deleted = now() - interval '15 days' WHERE path = 'exp/e1'"
    local sha
    sha=$(psql_db trash "SELECT sha256 FROM trash WHERE path = 'exp/e1'")
    run acurl a -X POST -w '\n%{http_code}' /api/trash/purge-expired
    [ "${lines[-1]}" = 200 ]
    [ "$(echo "${lines[0]}" | jq -r .purged)" = 2 ]
    [ "$(trashed libs exp/e1)" = 0 ]
    [ "$(trashed libs exp/e2)" = 1 ]
    [ "$(psql_db trash "SELECT count(*) FROM binaries WHERE sha256 = '$sha'")" = 1 ]
    # a shorter retention expires more
    acurl a -X PUT -H 'Content-Type: application/json' -d '{"retentionPeriodDays":1}' /api/trash/settings >/dev/null
    psql_db trash "UPDATE trash SET deleted = now() - interval '2 days' WHERE path = 'exp/e2'"
    [ "$(acurl a -X POST /api/trash/purge-expired | jq -r .purged)" = 1 ]
    [ "$(trashed libs exp/e2)" = 0 ]
    acurl a -X PUT -H 'Content-Type: application/json' -d '{"retentionPeriodDays":14}' /api/trash/settings >/dev/null
}

@test "restore: nothing there 404, no target repository 404, bad target 400, patterns 403" {
    echo r >"$SUITE_TMP/r"
    acurl a -T "$SUITE_TMP/r" /libs/rs/r.bin >/dev/null
    [ "$(status -X DELETE "$NODE_a_URL/libs/rs/r.bin")" = 204 ]
    [ "$(status -X POST "$NODE_a_URL/api/trash/restore/libs/rs/none")" = 404 ]
    [ "$(status -X POST "$NODE_a_URL/api/trash/restore/libs/rs/r.bin?to=/nosuch/r.bin")" = 404 ]
    [ "$(status -X POST "$NODE_a_URL/api/trash/restore/libs/rs/r.bin?to=//x")" = 400 ]
    [ "$(status -X POST "$NODE_a_URL/api/trash/restore/libs/rs/r.bin?to=/other/%2e%2e/x")" = 400 ]
    [ "$(status --path-as-is -X POST "$NODE_a_URL/api/trash/restore/libs/rs/../x")" = 400 ]
    run acurl a -X POST -w '\n%{http_code}' '/api/trash/restore/libs/rs/r.bin?to=/strict/r.bin'
    [ "${lines[-1]}" = 403 ]
    [[ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" == *"include/exclude patterns"* ]]
    [ "$(trashed libs rs/r.bin)" = 1 ]
    [ "$(status "$NODE_a_URL/api/trash/restore/libs/rs/r.bin")" = 405 ]
    [ "$(status "$NODE_a_URL/api/trash/nosuch")" = 404 ]
    # the trash outlives its repository: restore into another one
    make_repo a doomed
    acurl a -T "$SUITE_TMP/r" /doomed/d.bin >/dev/null
    acurl a -T "$SUITE_TMP/r" /doomed/sub/e.bin >/dev/null
    [ "$(status -X DELETE "$NODE_a_URL/doomed/d.bin")" = 204 ]
    [ "$(status -X DELETE "$NODE_a_URL/doomed/sub")" = 204 ]
    acurl a -X DELETE /api/repositories/doomed >/dev/null
    [ "$(status -X POST "$NODE_a_URL/api/trash/restore/doomed/d.bin")" = 404 ]
    [ "$(status -X POST "$NODE_a_URL/api/trash/restore/doomed/d.bin?to=other/from-doomed.bin")" = 202 ]
    [ "$(acurl a /other/from-doomed.bin)" = r ]
    # a bare repository as the target keeps the path
    [ "$(status -X POST "$NODE_a_URL/api/trash/restore/doomed/sub?to=/other")" = 202 ]
    [ "$(acurl a /other/sub/e.bin)" = r ]
}

@test "who may do what: anonymous 401 everywhere" {
    [ "$(code -X POST "$NODE_a_URL/api/trash/empty")" = 401 ]
    [ "$(code -X POST "$NODE_a_URL/api/trash/purge-expired")" = 401 ]
    [ "$(code -X DELETE "$NODE_a_URL/api/trash/clean/libs/x")" = 401 ]
    [ "$(code -X POST "$NODE_a_URL/api/trash/restore/libs/rs/r.bin")" = 401 ]
    [ "$(code "$NODE_a_URL/api/trash/list")" = 401 ]
    [ "$(status -X GET "$NODE_a_URL/api/trash/empty")" = 405 ]
}
