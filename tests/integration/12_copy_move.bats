#!/usr/bin/env bats
# /api/copy and /api/move: files and folder trees, metadata only (no blob is
# copied), properties along, Unix target rules, dry runs, include/exclude
# patterns, atomicity, errors, and cache invalidation.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db copymove)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR
    make_repo a libs
    make_repo a other
    make_repo a whole
    make_repo a strict
    make_repo a inc
    acurl a -X POST -H 'Content-Type: application/json' -d '{"excludesPattern":"**/*.pom, **/*.tmp"}' \
        /api/repositories/strict >/dev/null
    acurl a -X POST -H 'Content-Type: application/json' -d '{"includesPattern":"org/**"}' \
        /api/repositories/inc >/dev/null
    head -c 65536 /dev/urandom >"$SUITE_TMP/jar"
    head -c 1000 /dev/urandom >"$SUITE_TMP/pom"
    head -c 2000 /dev/urandom >"$SUITE_TMP/jar2"
    echo "b text" >"$SUITE_TMP/b"
    acurl a -T "$SUITE_TMP/jar" /libs/org/a/1.0/a-1.0.jar >/dev/null
    acurl a -T "$SUITE_TMP/pom" /libs/org/a/1.0/a-1.0.pom >/dev/null
    acurl a -T "$SUITE_TMP/jar2" /libs/org/a/2.0/a-2.0.jar >/dev/null
    acurl a -T "$SUITE_TMP/b" /libs/org/b.txt >/dev/null
    export SHA_JAR=$(sha256sum "$SUITE_TMP/jar" | cut -d' ' -f1)
    export SHA_POM=$(sha256sum "$SUITE_TMP/pom" | cut -d' ' -f1)
    export SHA_JAR2=$(sha256sum "$SUITE_TMP/jar2" | cut -d' ' -f1)
    export SHA_B=$(sha256sum "$SUITE_TMP/b" | cut -d' ' -f1)
    # properties on a file and on folders, through the API
    setprops libs/org/a/1.0/a-1.0.jar 'k=v1,v2|build=7'
    setprops libs/org/a team=core
    setprops libs/org/a/1.0 rel=yes
}
teardown_file() { cleanup_suite; }

# setprops REPO/PATH SPEC: set properties through the API (folders: not recursively)
setprops() {
    [ "$(code -u "admin:$NODE_a_PASS" -X PUT "$NODE_a_URL/api/storage/$1?properties=$2&recursive=0")" = 204 ]
}

blobs() { find "$NODE_a_DIR/filestore" -type f -not -path '*/_pre/*' | wc -l; }
sha_of() { acurl a "$1" | sha256sum | cut -d' ' -f1; }
props() { # repo path -> "k=v,k=v" sorted
    psql_db copymove "SELECT coalesce(string_agg(key || '=' || value, ',' ORDER BY key, value), '')
        FROM properties WHERE repo = '$1' AND path = '$2'"
}
count() { psql_db copymove "SELECT count(*) FROM artifacts WHERE repo = '$1'"; }

@test "copy of a file: 200 with Artifactory's message, same bytes, no blob copied, properties along" {
    local before
    before=$(blobs)
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/a/1.0/a-1.0.jar?to=/other/x/a.jar'
    [ "${lines[-1]}" = 200 ]
    [ "$(echo "${lines[0]}" | jq -r '.messages | length')" = 1 ]
    [ "$(echo "${lines[0]}" | jq -r '.messages[0].level')" = INFO ]
    [ "$(echo "${lines[0]}" | jq -r '.messages[0].message')" = \
        "copying libs:org/a/1.0/a-1.0.jar to other:x/a.jar completed successfully, 1 artifacts and 0 folders were copied" ]
    [ "$(sha_of /other/x/a.jar)" = "$SHA_JAR" ]
    [ "$(sha_of /libs/org/a/1.0/a-1.0.jar)" = "$SHA_JAR" ]
    [ "$(blobs)" = "$before" ]
    [ "$(psql_db copymove "SELECT count(*) FROM binaries WHERE sha256 = '$SHA_JAR'")" = 1 ]
    [ "$(psql_db copymove "SELECT sha256 FROM artifacts WHERE repo = 'other' AND path = 'x/a.jar'")" = "$SHA_JAR" ]
    [ "$(props other x/a.jar)" = "build=7,k=v1,k=v2" ]
    [ "$(props libs org/a/1.0/a-1.0.jar)" = "build=7,k=v1,k=v2" ]
    # the copy is a new item of the caller
    [ "$(acurl a /api/storage/other/x/a.jar | jq -r .createdBy)" = admin ]
}

@test "Unix rules: an existing folder or a trailing slash receives the file under its name" {
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/b.txt?to=/other/x'
    [ "${lines[-1]}" = 200 ]
    [[ "${lines[0]}" == *"to other:x/b.txt completed successfully"* ]]
    [ "$(sha_of /other/x/b.txt)" = "$SHA_B" ]
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/b.txt?to=/other/newdir/'
    [ "${lines[-1]}" = 200 ]
    [ "$(sha_of /other/newdir/b.txt)" = "$SHA_B" ]
    # the repository root is a folder too; the leading slash of 'to' is optional
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/b.txt?to=other'
    [ "${lines[-1]}" = 200 ]
    [ "$(sha_of /other/b.txt)" = "$SHA_B" ]
}

@test "copy of a folder tree keeps relative paths and folder properties; counts artifacts and folders" {
    local before
    before=$(blobs)
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/a?to=/other/tree'
    [ "${lines[-1]}" = 200 ]
    [ "$(echo "${lines[0]}" | jq -r '.messages[0].message')" = \
        "copying libs:org/a to other:tree completed successfully, 3 artifacts and 3 folders were copied" ]
    [ "$(sha_of /other/tree/1.0/a-1.0.jar)" = "$SHA_JAR" ]
    [ "$(sha_of /other/tree/1.0/a-1.0.pom)" = "$SHA_POM" ]
    [ "$(sha_of /other/tree/2.0/a-2.0.jar)" = "$SHA_JAR2" ]
    [ "$(blobs)" = "$before" ]
    [ "$(props other tree)" = "team=core" ]
    [ "$(props other tree/1.0)" = "rel=yes" ]
    [ "$(props other tree/1.0/a-1.0.jar)" = "build=7,k=v1,k=v2" ]
    # copying it again into the now existing folder nests it (Unix rules)
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/a?to=/other/tree'
    [ "${lines[-1]}" = 200 ]
    [ "$(sha_of /other/tree/a/2.0/a-2.0.jar)" = "$SHA_JAR2" ]
}

@test "copy of a whole repository into another one" {
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs?to=/whole'
    [ "${lines[-1]}" = 200 ]
    [[ "${lines[0]}" == *"copying libs: to whole: completed successfully, 4 artifacts and 4 folders were copied"* ]]
    [ "$(count whole)" = 4 ]
    [ "$(sha_of /whole/org/a/1.0/a-1.0.jar)" = "$SHA_JAR" ]
    [ "$(props whole org/a)" = "team=core" ]
}

@test "move of a file: the source is gone, the target has its bytes and properties" {
    head -c 3000 /dev/urandom >"$SUITE_TMP/mv"
    local sha
    sha=$(sha256sum "$SUITE_TMP/mv" | cut -d' ' -f1)
    acurl a -T "$SUITE_TMP/mv" /libs/mv/f.bin >/dev/null
    setprops libs/mv/f.bin state=moving
    # warm the cache on both paths: the move must invalidate them
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/mv/f.bin")" = 200 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/other/moved/f.bin")" = 404 ]
    local before
    before=$(blobs)
    run acurl a -X POST -w '\n%{http_code}' '/api/move/libs/mv/f.bin?to=/other/moved/f.bin'
    [ "${lines[-1]}" = 200 ]
    [ "$(echo "${lines[0]}" | jq -r '.messages[0].message')" = \
        "moving libs:mv/f.bin to other:moved/f.bin completed successfully, 1 artifacts and 0 folders were moved" ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/mv/f.bin")" = 404 ]
    [ "$(sha_of /other/moved/f.bin)" = "$sha" ]
    [ "$(blobs)" = "$before" ]
    [ "$(props libs mv/f.bin)" = "" ]
    [ "$(props other moved/f.bin)" = "state=moving" ]
    # a move keeps who created the item
    [ "$(acurl a /api/storage/other/moved/f.bin | jq -r .createdBy)" = admin ]
}

@test "move of a folder tree within a repository, properties and cache included" {
    for f in t/a.txt t/sub/b.txt t/sub/deeper/c.txt; do
        echo "$f" >"$SUITE_TMP/f"
        acurl a -T "$SUITE_TMP/f" "/libs/mvtree/$f" >/dev/null
    done
    setprops libs/mvtree/t/sub owner=qa
    setprops libs/mvtree/t/sub/b.txt q=1
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/mvtree/t/sub/b.txt")" = 200 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/renamed/sub/b.txt")" = 404 ]
    run acurl a -X POST -w '\n%{http_code}' '/api/move/libs/mvtree/t?to=/libs/renamed'
    [ "${lines[-1]}" = 200 ]
    [[ "${lines[0]}" == *"moving libs:mvtree/t to libs:renamed completed successfully, 3 artifacts and 3 folders were moved"* ]]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/mvtree/t/sub/b.txt")" = 404 ]
    [ "$(acurl a /libs/renamed/sub/b.txt)" = t/sub/b.txt ]
    [ "$(acurl a /libs/renamed/sub/deeper/c.txt)" = t/sub/deeper/c.txt ]
    [ "$(props libs renamed/sub)" = "owner=qa" ]
    [ "$(props libs renamed/sub/b.txt)" = "q=1" ]
    [ "$(psql_db copymove "SELECT count(*) FROM properties WHERE repo = 'libs' AND path LIKE 'mvtree/%'")" = 0 ]
    [ "$(psql_db copymove "SELECT count(*) FROM artifacts WHERE repo = 'libs' AND path LIKE 'mvtree/%'")" = 0 ]
}

@test "dry run validates and reports, and changes nothing" {
    local arts props_n counter
    arts=$(psql_db copymove "SELECT count(*) FROM artifacts")
    props_n=$(psql_db copymove "SELECT count(*) FROM properties")
    counter=$(psql_db copymove "SELECT value FROM change_counter")
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/a?to=/other/dry&dry=1'
    [ "${lines[-1]}" = 200 ]
    [[ "${lines[0]}" == *"copying libs:org/a to other:dry completed successfully, 3 artifacts and 3 folders were copied"* ]]
    run acurl a -X POST -w '\n%{http_code}' '/api/move/libs/org/a?to=/other/dry&dry=1'
    [ "${lines[-1]}" = 200 ]
    [[ "${lines[0]}" == *"were moved"* ]]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/other/dry/1.0/a-1.0.jar")" = 404 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/org/a/1.0/a-1.0.jar")" = 200 ]
    [ "$(psql_db copymove "SELECT count(*) FROM artifacts")" = "$arts" ]
    [ "$(psql_db copymove "SELECT count(*) FROM properties")" = "$props_n" ]
    [ "$(psql_db copymove "SELECT value FROM change_counter")" = "$counter" ]
    # a dry run reports refusals like the real thing
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/a?to=/strict/dry&dry=1'
    [ "${lines[-1]}" = 403 ]
}

@test "copy or move onto itself, or into its own subfolder, is 409" {
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/b.txt?to=/libs/org/b.txt'
    [ "${lines[-1]}" = 409 ]
    [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 409 ]
    [[ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" == *"Destination and source are the same"* ]]
    # the folder a file is in receives it under its own name: the same path again
    [ "$(code -u "admin:$NODE_a_PASS" -X POST "$NODE_a_URL/api/move/libs/org/b.txt?to=/libs/org")" = 409 ]
    [ "$(code -u "admin:$NODE_a_PASS" -X POST "$NODE_a_URL/api/copy/libs/org/a?to=/libs/org/a/sub")" = 409 ]
    [ "$(code -u "admin:$NODE_a_PASS" -X POST "$NODE_a_URL/api/move/libs/org?to=/libs/org/")" = 409 ]
    [ "$(code -u "admin:$NODE_a_PASS" -X POST "$NODE_a_URL/api/copy/libs?to=/libs/copy")" = 409 ]
    [ "$(sha_of /libs/org/b.txt)" = "$SHA_B" ]
}

@test "unknown source is 404; unknown target repository is 404" {
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/no/such/thing?to=/other/x'
    [ "${lines[-1]}" = 404 ]
    [[ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" == "Could not find item at libs:no/such/thing" ]]
    [ "$(code -u "admin:$NODE_a_PASS" -X POST "$NODE_a_URL/api/copy/nosuchrepo/x?to=/other/x")" = 404 ]
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/b.txt?to=/nosuchrepo/x'
    [ "${lines[-1]}" = 404 ]
    [[ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" == *"nosuchrepo"* ]]
    # a trailing slash on the source means a folder
    [ "$(code -u "admin:$NODE_a_PASS" -X POST "$NODE_a_URL/api/copy/libs/org/b.txt/?to=/other/x")" = 404 ]
}

@test "a missing or malformed 'to', a bad flag and a wrong method are refused" {
    local u=admin:$NODE_a_PASS
    [ "$(code -u "$u" -X POST "$NODE_a_URL/api/copy/libs/org/b.txt")" = 400 ]
    [ "$(code -u "$u" -X POST "$NODE_a_URL/api/copy/libs/org/b.txt?to=")" = 400 ]
    [ "$(code -u "$u" -X POST "$NODE_a_URL/api/copy/libs/org/b.txt?to=/")" = 400 ]
    [ "$(code -u "$u" -X POST "$NODE_a_URL/api/copy/libs/org/b.txt?to=//other/x")" = 400 ]
    [ "$(code -u "$u" -X POST "$NODE_a_URL/api/copy/libs/org/b.txt?to=/other/../x")" = 400 ]
    [ "$(code -u "$u" -X POST "$NODE_a_URL/api/copy/libs/org/b.txt?to=/other/%2e%2e/x")" = 400 ]
    [ "$(code -u "$u" -X POST "$NODE_a_URL/api/copy/libs/org/b.txt?to=/other/a%00b")" = 400 ]
    [ "$(code -u "$u" -X POST "$NODE_a_URL/api/copy/libs/org/b.txt?to=/other/x;k=v")" = 400 ]
    [ "$(code -u "$u" -X POST "$NODE_a_URL/api/copy/libs/org/b.txt?to=/other/x&dry=maybe")" = 400 ]
    [ "$(code -u "$u" --path-as-is -X POST "$NODE_a_URL/api/copy/libs/../etc?to=/other/x")" = 400 ]
    [ "$(code -u "$u" "$NODE_a_URL/api/copy/libs/org/b.txt?to=/other/x")" = 405 ]
    [ "$(code -X POST "$NODE_a_URL/api/copy/libs/org/b.txt?to=/other/anon")" = 401 ]
    [ "$(code -X POST "$NODE_a_URL/api/move/libs/org/b.txt?to=/other/anon")" = 401 ]
    [ "$(code -u "$u" "$NODE_a_URL/other/anon")" = 404 ]
}

@test "the target's exclude pattern refuses a folder copy as a whole: 403, nothing copied" {
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/a?to=/strict/a'
    [ "${lines[-1]}" = 403 ]
    local j=${lines[0]}
    [ "$(echo "$j" | jq -r '.messages[0].level')" = ERROR ]
    [ "$(echo "$j" | jq -r '.messages[0].message')" = \
        "The repository 'strict' rejected the resolution of artifact in path 'a/1.0/a-1.0.pom' due to a conflict with its include/exclude patterns." ]
    [ "$(echo "$j" | jq -r '.errors[0].status')" = 403 ]
    [ "$(count strict)" = 0 ]
    [ "$(psql_db copymove "SELECT count(*) FROM properties WHERE repo = 'strict'")" = 0 ]
    # a move across repositories is refused the same way and leaves the source alone
    run acurl a -X POST -w '\n%{http_code}' '/api/move/libs/org/a?to=/strict/a'
    [ "${lines[-1]}" = 403 ]
    [ "$(count strict)" = 0 ]
    [ "$(sha_of /libs/org/a/1.0/a-1.0.pom)" = "$SHA_POM" ]
    [ "$(props libs org/a)" = "team=core" ]
    # what the patterns accept goes through
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/a/2.0?to=/strict/a2'
    [ "${lines[-1]}" = 200 ]
    [ "$(sha_of /strict/a2/a-2.0.jar)" = "$SHA_JAR2" ]
}

@test "without failFast every refusal is listed; with failFast=1 only the first; nothing is copied either way" {
    acurl a -X POST -H 'Content-Type: application/json' -d '{"excludesPattern":"**/*.jar"}' \
        /api/repositories/strict >/dev/null
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/a?to=/strict/ff'
    [ "${lines[-1]}" = 403 ]
    [ "$(echo "${lines[0]}" | jq -r '.messages | length')" = 2 ]
    [ "$(echo "${lines[0]}" | jq -r '.errors | length')" = 2 ]
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/a?to=/strict/ff&failFast=1'
    [ "${lines[-1]}" = 403 ]
    [ "$(echo "${lines[0]}" | jq -r '.messages | length')" = 1 ]
    [ "$(psql_db copymove "SELECT count(*) FROM artifacts WHERE repo = 'strict' AND path LIKE 'ff/%'")" = 0 ]
    acurl a -X POST -H 'Content-Type: application/json' -d '{"excludesPattern":"**/*.pom, **/*.tmp"}' \
        /api/repositories/strict >/dev/null
}

@test "the target's include pattern limits where things may go" {
    [ "$(code -u "admin:$NODE_a_PASS" -X POST "$NODE_a_URL/api/copy/libs/org/b.txt?to=/inc/net/b.txt")" = 403 ]
    [ "$(code -u "admin:$NODE_a_PASS" -X POST "$NODE_a_URL/api/copy/libs/org/b.txt?to=/inc/org/b.txt")" = 200 ]
}

@test "a folder onto an existing file, or anything below a file, is 400" {
    [ "$(code -u "admin:$NODE_a_PASS" -X POST "$NODE_a_URL/api/copy/libs/org/a?to=/other/x/a.jar")" = 400 ]
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/b.txt?to=/other/x/a.jar/under.txt'
    [ "${lines[-1]}" = 400 ]
    [[ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" == *"other:x/a.jar"*"existing file"* ]]
    # a file onto an existing folder within a tree copy (org lands under clash/)
    echo clash >"$SUITE_TMP/c"
    acurl a -T "$SUITE_TMP/c" /other/clash/org/b.txt/inner >/dev/null
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org?to=/other/clash'
    [ "${lines[-1]}" = 400 ]
    [[ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" == *"other:clash/org/b.txt"*"existing folder"* ]]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/other/clash/org/a/1.0/a-1.0.jar")" = 404 ]
}

@test "an existing target file is overwritten, and takes the source's properties" {
    echo old >"$SUITE_TMP/old"
    acurl a -T "$SUITE_TMP/old" /other/ow.txt >/dev/null
    setprops other/ow.txt old=1
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/other/ow.txt")" = 200 ] # cached now
    run acurl a -X POST -w '\n%{http_code}' '/api/copy/libs/org/a/1.0/a-1.0.jar?to=/other/ow.txt'
    [ "${lines[-1]}" = 200 ]
    [ "$(sha_of /other/ow.txt)" = "$SHA_JAR" ]
    [ "$(props other ow.txt)" = "build=7,k=v1,k=v2" ]
}

@test "the /artifactory prefix and encoded names work" {
    echo spaced >"$SUITE_TMP/s"
    acurl a -T "$SUITE_TMP/s" '/libs/sp/a%20b.txt' >/dev/null
    run acurl a -X POST -w '\n%{http_code}' '/artifactory/api/copy/libs/sp/a%20b.txt?to=/other/sp/c%20d.txt'
    [ "${lines[-1]}" = 200 ]
    [[ "${lines[0]}" == *"to other:sp/c d.txt completed"* ]]
    [ "$(acurl a '/other/sp/c%20d.txt')" = spaced ]
}
