#!/usr/bin/env bats
# Properties: deploy matrix parameters, GET/PUT/DELETE /api/storage/...?properties,
# Artifactory's escaping, recursive and non-recursive folders, errors, permissions.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db props)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR
    make_repo a libs
    echo content >"$SUITE_TMP/f"
}
teardown_file() { cleanup_suite; }

# deploy RAWPATH: PUT the small file at /libs/RAWPATH (raw: matrix parameters allowed)
deploy() {
    acurl a -T "$SUITE_TMP/f" -o /dev/null -w '%{http_code}' "/libs/$1"
}

# props PATH [curl args]: GET /api/storage/libs/PATH?properties, body then status line
props() {
    local p=$1
    shift
    acurl a "$@" -w '\n%{http_code}' "/api/storage/libs/$p?properties"
}

# status METHOD URL-PATH: the status code of an admin request
status() {
    code -u "admin:$NODE_a_PASS" -X "$1" "$NODE_a_URL$2"
}

@test "matrix parameters on deploy become properties of the file" {
    [ "$(deploy 'org/a/1.0/a-1.0.jar;build.number=7;team=x')" = 201 ]
    run props org/a/1.0/a-1.0.jar
    [ "${lines[-1]}" = 200 ]
    local j=${lines[0]}
    [ "$(echo "$j" | jq -c .properties)" = '{"build.number":["7"],"team":["x"]}' ]
    [ "$(echo "$j" | jq -r .uri)" = "$NODE_a_URL/api/storage/libs/org/a/1.0/a-1.0.jar" ]
    [ "$(echo "$j" | jq -c 'keys')" = '["properties","uri"]' ]
    # stored in the deploy's transaction, in the properties table
    [ "$(psql_db props "SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM properties WHERE repo='libs' AND path='org/a/1.0/a-1.0.jar'")" = "build.number=7,team=x" ]
}

@test "matrix parameters: escapes, percent-encoding, multiple values, repeated keys" {
    [ "$(deploy 'esc/m.bin;a=1\,2;b=x%3By;c=p%7Cq;d=1%5C=1;e=v1,v2;e=v3;f=%C3%A9t%C3%A9;g=x\;y;h=')" = 201 ]
    run props esc/m.bin
    [ "${lines[-1]}" = 200 ]
    local p
    p=$(echo "${lines[0]}" | jq -c .properties)
    [ "$(echo "$p" | jq -c .a)" = '["1,2"]' ]
    [ "$(echo "$p" | jq -c .b)" = '["x;y"]' ]
    [ "$(echo "$p" | jq -c .c)" = '["p|q"]' ]
    [ "$(echo "$p" | jq -c .d)" = '["1=1"]' ]
    [ "$(echo "$p" | jq -c .e)" = '["v1","v2","v3"]' ]
    [ "$(echo "$p" | jq -r '.f[0]')" = "été" ]
    [ "$(echo "$p" | jq -c .g)" = '["x;y"]' ]
    [ "$(echo "$p" | jq -c .h)" = '[""]' ]
}

@test "malformed matrix parameters answer 400 and store nothing" {
    for m in ';=v' ';a%20b=1' ';a=%zz' ';a=%00' ';a=1\' ';x*y=1'; do
        run acurl a -T "$SUITE_TMP/f" -w '\n%{http_code}' "/libs/bad/m.bin$m"
        [ "${lines[-1]}" = 400 ]
        [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 400 ]
    done
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/bad/m.bin")" = 404 ]
    [ "$(psql_db props "SELECT count(*) FROM artifacts WHERE path='bad/m.bin'")" = 0 ]
    [ "$(psql_db props "SELECT count(*) FROM properties WHERE path='bad/m.bin'")" = 0 ]
}

@test "a re-deploy replaces the keys it names and keeps the others" {
    [ "$(deploy 're/f.txt;a=1;b=1')" = 201 ]
    [ "$(deploy 're/f.txt;a=2')" = 201 ]
    run props re/f.txt
    [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"a":["2"],"b":["1"]}' ]
    [ "$(deploy 're/f.txt')" = 201 ]
    run props re/f.txt
    [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"a":["2"],"b":["1"]}' ]
}

@test "GET ?properties=a,b returns only those keys; 404 when none of them is set" {
    deploy 'g/f.jar;a=1;b=2;c=3' >/dev/null
    run acurl a -w '\n%{http_code}' "/api/storage/libs/g/f.jar?properties=a,c"
    [ "${lines[-1]}" = 200 ]
    [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"a":["1"],"c":["3"]}' ]
    run acurl a -w '\n%{http_code}' "/api/storage/libs/g/f.jar?properties=zzz"
    [ "${lines[-1]}" = 404 ]
    [ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" = "No properties could be found." ]
    # ?properties= (empty) is the same as ?properties
    run acurl a -w '\n%{http_code}' "/api/storage/libs/g/f.jar?properties="
    [ "$(echo "${lines[0]}" | jq -c '.properties|keys')" = '["a","b","c"]' ]
}

@test "GET answers 404 for an item without properties, a missing item or repository" {
    deploy g/plain.jar >/dev/null
    run props g/plain.jar
    [ "${lines[-1]}" = 404 ]
    [ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" = "No properties could be found." ]
    run props no/such/file.jar
    [ "${lines[-1]}" = 404 ]
    [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 404 ]
    run acurl a -w '\n%{http_code}' "/api/storage/nosuchrepo/x?properties"
    [ "${lines[-1]}" = 404 ]
    [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 404 ]
}

@test "PUT ?properties=a=1,2|b=3 sets them on a file (204) and replaces only those keys" {
    deploy p/f.jar >/dev/null
    run acurl a -X PUT -w '%{http_code}' "/api/storage/libs/p/f.jar?properties=a=1,2|b=3"
    [ "$output" = 204 ]
    run props p/f.jar
    [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"a":["1","2"],"b":["3"]}' ]
    [ "$(status PUT '/api/storage/libs/p/f.jar?properties=a=9')" = 204 ]
    run props p/f.jar
    [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"a":["9"],"b":["3"]}' ]
    # ';' separates properties too, '%7C' is '|'
    [ "$(status PUT '/api/storage/libs/p/f.jar?properties=c=1;d=2%7Ce=3')" = 204 ]
    run props p/f.jar
    [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"a":["9"],"b":["3"],"c":["1"],"d":["2"],"e":["3"]}' ]
}

@test "PUT values follow Artifactory's escaping: a backslash (%5C) before , | = ;" {
    deploy p/esc.jar >/dev/null
    [ "$(status PUT '/api/storage/libs/p/esc.jar?properties=x=1%5C,2%7Cy=a%5C=b%7Cz=p%5C%7Cq%7Cw=s%5C;t%7Cv=c:%5C%5Cdir%7Cu=sp%20ace')" = 204 ]
    run props p/esc.jar
    local p
    p=$(echo "${lines[0]}" | jq -c .properties)
    [ "$(echo "$p" | jq -c .x)" = '["1,2"]' ]
    [ "$(echo "$p" | jq -c .y)" = '["a=b"]' ]
    [ "$(echo "$p" | jq -c .z)" = '["p|q"]' ]
    [ "$(echo "$p" | jq -c .w)" = '["s;t"]' ]
    [ "$(echo "$p" | jq -r '.v[0]')" = 'c:\dir' ]
    [ "$(echo "$p" | jq -c .u)" = '["sp ace"]' ]
}

@test "PUT on a folder is recursive by default: the folder, its sub-folders and files" {
    deploy rec/a.jar >/dev/null
    deploy rec/sub/b.jar >/dev/null
    deploy rec/sub/deep/c.jar >/dev/null
    deploy recx/other.jar >/dev/null
    [ "$(status PUT '/api/storage/libs/rec?properties=r=1')" = 204 ]
    for p in rec rec/a.jar rec/sub rec/sub/b.jar rec/sub/deep rec/sub/deep/c.jar; do
        run props "$p"
        [ "${lines[-1]}" = 200 ]
        [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"r":["1"]}' ]
    done
    [ "$(echo "$(props rec/sub)" | head -1 | jq -r .uri)" = "$NODE_a_URL/api/storage/libs/rec/sub" ]
    # a sibling sharing the prefix is untouched
    run props recx/other.jar
    [ "${lines[-1]}" = 404 ]
}

@test "PUT with recursive=0 sets the folder only" {
    deploy nrec/a.jar >/dev/null
    deploy nrec/sub/b.jar >/dev/null
    [ "$(status PUT '/api/storage/libs/nrec?properties=n=1&recursive=0')" = 204 ]
    run props nrec
    [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"n":["1"]}' ]
    for p in nrec/a.jar nrec/sub nrec/sub/b.jar; do
        run props "$p"
        [ "${lines[-1]}" = 404 ]
    done
}

@test "DELETE ?properties=a,b removes keys (204), recursively by default" {
    deploy drec/a.jar >/dev/null
    deploy drec/sub/b.jar >/dev/null
    [ "$(status PUT '/api/storage/libs/drec?properties=a=1|b=2|c=3')" = 204 ]
    # not recursive: the folder only
    [ "$(status DELETE '/api/storage/libs/drec?properties=a&recursive=0')" = 204 ]
    run props drec
    [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"b":["2"],"c":["3"]}' ]
    run props drec/sub/b.jar
    [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"a":["1"],"b":["2"],"c":["3"]}' ]
    # recursive (default)
    [ "$(status DELETE '/api/storage/libs/drec?properties=a,b')" = 204 ]
    for p in drec drec/a.jar drec/sub drec/sub/b.jar; do
        run props "$p"
        [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"c":["3"]}' ]
    done
    # removing an absent key is fine
    [ "$(status DELETE '/api/storage/libs/drec/a.jar?properties=nope')" = 204 ]
    [ "$(status DELETE '/api/storage/libs/drec?properties=c')" = 204 ]
    run props drec/sub/b.jar
    [ "${lines[-1]}" = 404 ]
}

@test "the repository root carries properties too" {
    [ "$(status PUT '/api/storage/libs?properties=root=yes&recursive=0')" = 204 ]
    run acurl a -w '\n%{http_code}' '/api/storage/libs?properties'
    [ "${lines[-1]}" = 200 ]
    [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"root":["yes"]}' ]
    [ "$(echo "${lines[0]}" | jq -r .uri)" = "$NODE_a_URL/api/storage/libs" ]
    # the /artifactory prefix shows in the uri
    run acurl a '/artifactory/api/storage/libs/org/a/1.0/a-1.0.jar?properties'
    [ "$(echo "$output" | jq -r .uri)" = "$NODE_a_URL/artifactory/api/storage/libs/org/a/1.0/a-1.0.jar" ]
    [ "$(status DELETE '/api/storage/libs?properties=root&recursive=0')" = 204 ]
}

@test "bad property syntax answers 400 with the JSON error shape" {
    deploy s/f.jar >/dev/null
    local q
    for q in 'a%20b=1' '=1' 'a=1%5C' 'x*y=1' 'a=%ff' '' '%7C%7C' 'a=1&recursive=maybe'; do
        run acurl a -X PUT -w '\n%{http_code}' "/api/storage/libs/s/f.jar?properties=$q"
        [ "${lines[-1]}" = 400 ]
        [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 400 ]
        [ -n "$(echo "${lines[0]}" | jq -r '.errors[0].message')" ]
    done
    for q in '' 'a%20b' 'a=1'; do
        run acurl a -X DELETE -w '\n%{http_code}' "/api/storage/libs/s/f.jar?properties=$q"
        [ "${lines[-1]}" = 400 ]
    done
    run acurl a -w '\n%{http_code}' "/api/storage/libs/s/f.jar?properties=a%20b"
    [ "${lines[-1]}" = 400 ]
    # nothing was stored
    [ "$(psql_db props "SELECT count(*) FROM properties WHERE path='s/f.jar'")" = 0 ]
}

@test "keys up to 255 bytes and values up to 1024 bytes; longer is 400" {
    deploy s/len.jar >/dev/null
    local k255 k256 v1024 v1025
    k255=$(printf 'k%.0s' $(seq 255))
    k256=${k255}k
    v1024=$(printf 'v%.0s' $(seq 1024))
    v1025=${v1024}v
    [ "$(status PUT "/api/storage/libs/s/len.jar?properties=$k255=$v1024")" = 204 ]
    [ "$(status PUT "/api/storage/libs/s/len.jar?properties=$k256=1")" = 400 ]
    [ "$(status PUT "/api/storage/libs/s/len.jar?properties=k=$v1025")" = 400 ]
    run props s/len.jar
    [ "$(echo "${lines[0]}" | jq -r ".properties.$k255[0]")" = "$v1024" ]
}

@test "PUT and DELETE on an unknown path or repository answer 404" {
    run acurl a -X PUT -w '\n%{http_code}' '/api/storage/libs/no/such/path?properties=a=1'
    [ "${lines[-1]}" = 404 ]
    [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 404 ]
    [ "$(status DELETE '/api/storage/libs/no/such/path?properties=a')" = 404 ]
    [ "$(status PUT '/api/storage/nosuchrepo/x?properties=a=1')" = 404 ]
    [ "$(status DELETE '/api/storage/nosuchrepo/x?properties=a')" = 404 ]
    # a prefix of a file name is not a folder
    deploy pre/file.jar >/dev/null
    [ "$(status PUT '/api/storage/libs/pre/fi?properties=a=1')" = 404 ]
    [ "$(psql_db props "SELECT count(*) FROM properties WHERE path IN ('no/such/path', 'pre/fi')")" = 0 ]
}

@test "every property change bumps the change counter" {
    deploy cc/f.jar >/dev/null
    local c0 c1 c2
    c0=$(psql_db props "SELECT value FROM change_counter")
    [ "$(status PUT '/api/storage/libs/cc/f.jar?properties=a=1')" = 204 ]
    c1=$(psql_db props "SELECT value FROM change_counter")
    [ "$c1" -gt "$c0" ]
    [ "$(status DELETE '/api/storage/libs/cc/f.jar?properties=a')" = 204 ]
    c2=$(psql_db props "SELECT value FROM change_counter")
    [ "$c2" -gt "$c1" ]
}

@test "reading needs read access, writing needs a user; other methods are 405" {
    [ "$(code "$NODE_a_URL/api/storage/libs/org/a/1.0/a-1.0.jar?properties")" = 401 ]
    [ "$(code -X PUT "$NODE_a_URL/api/storage/libs/org/a/1.0/a-1.0.jar?properties=a=1")" = 401 ]
    acurl a -X PUT -H 'Content-Type: application/json' -d '{"anonymousRead":true}' /api/system/settings >/dev/null
    [ "$(code "$NODE_a_URL/api/storage/libs/org/a/1.0/a-1.0.jar?properties")" = 200 ]
    [ "$(code -X PUT "$NODE_a_URL/api/storage/libs/org/a/1.0/a-1.0.jar?properties=a=1")" = 401 ]
    [ "$(code -X DELETE "$NODE_a_URL/api/storage/libs/org/a/1.0/a-1.0.jar?properties=team")" = 401 ]
    acurl a -X PUT -H 'Content-Type: application/json' -d '{"anonymousRead":false}' /api/system/settings >/dev/null
    [ "$(status POST '/api/storage/libs/org/a/1.0/a-1.0.jar?properties=a=1')" = 405 ]
    run props org/a/1.0/a-1.0.jar
    [ "$(echo "${lines[0]}" | jq -c .properties)" = '{"build.number":["7"],"team":["x"]}' ]
}

@test "deleting a repository deletes its properties" {
    make_repo a tmprepo
    acurl a -T "$SUITE_TMP/f" "/tmprepo/x/y.jar;k=v" >/dev/null
    [ "$(status PUT '/api/storage/tmprepo/x?properties=f=1')" = 204 ]
    [ "$(psql_db props "SELECT count(*) FROM properties WHERE repo='tmprepo'")" = 3 ]
    acurl a -X DELETE /api/repositories/tmprepo >/dev/null
    [ "$(psql_db props "SELECT count(*) FROM properties WHERE repo='tmprepo'")" = 0 ]
}
