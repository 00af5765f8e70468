#!/usr/bin/env bats
# Deploy, download, checksums, dedup, delete and folder listings.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db arts)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR
    make_repo a libs
    head -c 1048576 /dev/urandom >"$SUITE_TMP/m.bin"
    export SHA=$(sha256sum "$SUITE_TMP/m.bin" | cut -d' ' -f1)
    export SHA1=$(sha1sum "$SUITE_TMP/m.bin" | cut -d' ' -f1)
    export MD5=$(md5sum "$SUITE_TMP/m.bin" | cut -d' ' -f1)
}
teardown_file() { cleanup_suite; }

@test "PUT answers 201 with Artifactory's deploy JSON" {
    run acurl a -T "$SUITE_TMP/m.bin" -w '\n%{http_code}' /libs/org/x/1.0/x-1.0.jar
    [ "${lines[-1]}" = 201 ]
    local j=${lines[0]}
    [ "$(echo "$j" | jq -r .repo)" = libs ]
    [ "$(echo "$j" | jq -r .path)" = /org/x/1.0/x-1.0.jar ]
    [ "$(echo "$j" | jq -r .createdBy)" = admin ]
    [ "$(echo "$j" | jq -r .size)" = 1048576 ]
    [ "$(echo "$j" | jq -r .mimeType)" = application/java-archive ]
    [ "$(echo "$j" | jq -r .checksums.sha256)" = "$SHA" ]
    [ "$(echo "$j" | jq -r .checksums.sha1)" = "$SHA1" ]
    [ "$(echo "$j" | jq -r .checksums.md5)" = "$MD5" ]
    [ "$(echo "$j" | jq -r .originalChecksums.sha256)" = "$SHA" ]
    [ "$(echo "$j" | jq -r .downloadUri)" = "$NODE_a_URL/libs/org/x/1.0/x-1.0.jar" ]
    [ "$(echo "$j" | jq -r .uri)" = "$NODE_a_URL/api/storage/libs/org/x/1.0/x-1.0.jar" ]
    [[ "$(echo "$j" | jq -r .created)" =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$ ]]
    # stored under its hash
    [ -f "$NODE_a_DIR/filestore/${SHA:0:2}/$SHA" ]
}

@test "GET returns the same bytes with ETag, Last-Modified, checksums and a content type" {
    acurl a -D "$SUITE_TMP/h" -o "$SUITE_TMP/back" /libs/org/x/1.0/x-1.0.jar
    cmp "$SUITE_TMP/m.bin" "$SUITE_TMP/back"
    grep -qi "^ETag: \"$SHA1\"" "$SUITE_TMP/h"
    grep -qi "^X-Checksum-Sha256: $SHA" "$SUITE_TMP/h"
    grep -qi "^X-Checksum-Sha1: $SHA1" "$SUITE_TMP/h"
    grep -qi "^X-Checksum-Md5: $MD5" "$SUITE_TMP/h"
    grep -qi "^Last-Modified: .* GMT" "$SUITE_TMP/h"
    grep -qi "^Content-Type: application/java-archive" "$SUITE_TMP/h"
    grep -qi "^Content-Length: 1048576" "$SUITE_TMP/h"
    # the /artifactory prefix addresses the same thing
    acurl a -o "$SUITE_TMP/back2" /artifactory/libs/org/x/1.0/x-1.0.jar
    cmp "$SUITE_TMP/m.bin" "$SUITE_TMP/back2"
}

@test "HEAD has the GET headers and no body; If-None-Match gives 304" {
    run acurl a -I /libs/org/x/1.0/x-1.0.jar
    [[ "$output" == *"HTTP/1.1 200"* ]]
    [[ "$output" == *"Content-Length: 1048576"* ]]
    [[ "$output" == *"X-Checksum-Sha256: $SHA"* ]]
    [ "$(code -u "admin:$NODE_a_PASS" -H "If-None-Match: \"$SHA1\"" "$NODE_a_URL/libs/org/x/1.0/x-1.0.jar")" = 304 ]
    [ "$(code -u "admin:$NODE_a_PASS" -H 'If-None-Match: "other"' "$NODE_a_URL/libs/org/x/1.0/x-1.0.jar")" = 200 ]
}

@test "content types follow the extension" {
    printf '<project/>' >"$SUITE_TMP/p.pom"
    acurl a -T "$SUITE_TMP/p.pom" /libs/org/x/1.0/x-1.0.pom >/dev/null
    run acurl a -I /libs/org/x/1.0/x-1.0.pom
    [[ "$output" == *"Content-Type: application/x-maven-pom+xml"* ]]
    acurl a -T "$SUITE_TMP/p.pom" /libs/raw/noext >/dev/null
    run acurl a -I /libs/raw/noext
    [[ "$output" == *"Content-Type: application/octet-stream"* ]]
}

@test "checksum headers are verified: a match stores, a mismatch is 409 and stores nothing" {
    [ "$(code -u "admin:$NODE_a_PASS" -T "$SUITE_TMP/m.bin" -H "X-Checksum-Sha256: $SHA" -H "X-Checksum-Sha1: $SHA1" -H "X-Checksum-Md5: $MD5" "$NODE_a_URL/libs/ok/m.bin")" = 201 ]
    local bad=0000000000000000000000000000000000000000000000000000000000000000
    run acurl a -T "$SUITE_TMP/m.bin" -H "X-Checksum-Sha256: $bad" -w '\n%{http_code}' /libs/bad/m.bin
    [ "${lines[-1]}" = 409 ]
    [[ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" == "checksum mismatch"* ]]
    run acurl a -T "$SUITE_TMP/m.bin" -H "X-Checksum-Sha1: 0000000000000000000000000000000000000000" -w '\n%{http_code}' /libs/bad/m.bin
    [ "${lines[-1]}" = 409 ]
    run acurl a -T "$SUITE_TMP/m.bin" -H "X-Checksum-Md5: ffffffffffffffffffffffffffffffff" -w '\n%{http_code}' /libs/bad/m.bin
    [ "${lines[-1]}" = 409 ]
    run acurl a -T "$SUITE_TMP/m.bin" -H "X-Checksum-Sha256: nothex" -w '\n%{http_code}' /libs/bad/m.bin
    [ "${lines[-1]}" = 400 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/bad/m.bin")" = 404 ]
    [ -z "$(ls -A "$NODE_a_DIR/filestore/_pre")" ]
}

@test "X-Checksum-Deploy: a known checksum deploys without a body, an unknown one is 404" {
    run acurl a -X PUT -H 'X-Checksum-Deploy: true' -H "X-Checksum-Sha256: $SHA" -w '\n%{http_code}' /libs/copy/by-sha256.bin
    [ "${lines[-1]}" = 201 ]
    [ "$(echo "${lines[0]}" | jq -r .checksums.sha256)" = "$SHA" ]
    run acurl a -X PUT -H 'X-Checksum-Deploy: true' -H "X-Checksum-Sha1: $SHA1" -w '\n%{http_code}' /libs/copy/by-sha1.bin
    [ "${lines[-1]}" = 201 ]
    acurl a -o "$SUITE_TMP/c" /libs/copy/by-sha1.bin
    cmp "$SUITE_TMP/c" "$SUITE_TMP/m.bin"
    run acurl a -X PUT -H 'X-Checksum-Deploy: true' -H "X-Checksum-Sha256: 1111111111111111111111111111111111111111111111111111111111111111" -w '\n%{http_code}' /libs/copy/none.bin
    [ "${lines[-1]}" = 404 ]
    [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 404 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/copy/none.bin")" = 404 ]
}

@test "the same content under many paths is stored once" {
    local before
    before=$(find "$NODE_a_DIR/filestore" -type f -not -path '*/_pre/*' | wc -l)
    for i in 1 2 3; do
        acurl a -T "$SUITE_TMP/m.bin" /libs/dedup/$i.bin >/dev/null
    done
    [ "$(find "$NODE_a_DIR/filestore" -type f -not -path '*/_pre/*' | wc -l)" = "$before" ]
    [ "$(psql_db arts "SELECT count(*) FROM binaries WHERE sha256='$SHA'")" = 1 ]
}

@test "re-deploying a path replaces it and keeps created" {
    echo one >"$SUITE_TMP/one"
    echo two >"$SUITE_TMP/two"
    local c1 c2
    c1=$(acurl a -T "$SUITE_TMP/one" /libs/re/f.txt | jq -r .created)
    sleep 0.05
    c2=$(acurl a -T "$SUITE_TMP/two" /libs/re/f.txt | jq -r .created)
    [ "$c1" = "$c2" ]
    [ "$(acurl a /libs/re/f.txt)" = two ]
}

@test "an empty file deploys and downloads" {
    : >"$SUITE_TMP/empty"
    [ "$(code -u "admin:$NODE_a_PASS" -T "$SUITE_TMP/empty" "$NODE_a_URL/libs/e/empty")" = 201 ]
    [ "$(acurl a -w '%{http_code}:%{size_download}' -o /dev/null /libs/e/empty)" = 200:0 ]
}

@test "a folder GET answers an HTML listing of its children" {
    run acurl a /libs/org/x/
    [[ "$output" == *"<title>Index of libs/org/x</title>"* ]]
    [[ "$output" == *'href="/libs/org/x/1.0/">1.0/</a>'* ]]
    run acurl a /libs/org/x/1.0/
    [[ "$output" == *'href="/libs/org/x/1.0/x-1.0.jar">x-1.0.jar</a>'* ]]
    [[ "$output" == *"1048576"* ]]
    run acurl a /libs/
    [[ "$output" == *'org/</a>'* ]]
    # names are escaped
    echo x >"$SUITE_TMP/x"
    acurl a -T "$SUITE_TMP/x" "/libs/esc/%3Cb%3E.txt" >/dev/null
    run acurl a /libs/esc/
    [[ "$output" == *"&lt;b&gt;.txt"* ]]
    [[ "$output" != *"<b>.txt"* ]]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/no/such/folder/")" = 404 ]
}

@test "DELETE of a file, then of a folder with everything under it, answers 204" {
    for f in a b c/d; do
        echo "$f" >"$SUITE_TMP/f"
        acurl a -T "$SUITE_TMP/f" /libs/del/$f >/dev/null
    done
    [ "$(code -u "admin:$NODE_a_PASS" -X DELETE "$NODE_a_URL/libs/del/a")" = 204 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/del/a")" = 404 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/del/b")" = 200 ]
    [ "$(code -u "admin:$NODE_a_PASS" -X DELETE "$NODE_a_URL/libs/del")" = 204 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/del/b")" = 404 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/del/c/d")" = 404 ]
    [ "$(code -u "admin:$NODE_a_PASS" -X DELETE "$NODE_a_URL/libs/del")" = 404 ]
    # a sibling with the same prefix survives
    echo keep >"$SUITE_TMP/k"
    acurl a -T "$SUITE_TMP/k" /libs/delx/keep >/dev/null
    acurl a -T "$SUITE_TMP/k" /libs/del/again >/dev/null
    [ "$(code -u "admin:$NODE_a_PASS" -X DELETE "$NODE_a_URL/libs/del")" = 204 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/delx/keep")" = 200 ]
}

@test "anonymous read is off by default and can be switched on and off" {
    [ "$(code "$NODE_a_URL/libs/org/x/1.0/x-1.0.jar")" = 401 ]
    acurl a -X PUT -H 'Content-Type: application/json' -d '{"anonymousRead":true}' /api/system/settings >/dev/null
    [ "$(code "$NODE_a_URL/libs/org/x/1.0/x-1.0.jar")" = 200 ]
    # writes still need a user
    [ "$(code -T "$SUITE_TMP/one" "$NODE_a_URL/libs/anon/w")" = 401 ]
    [ "$(code -X DELETE "$NODE_a_URL/libs/org/x/1.0/x-1.0.jar")" = 401 ]
    acurl a -X PUT -H 'Content-Type: application/json' -d '{"anonymousRead":false}' /api/system/settings >/dev/null
    [ "$(code "$NODE_a_URL/libs/org/x/1.0/x-1.0.jar")" = 401 ]
}
