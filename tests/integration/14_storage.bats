#!/usr/bin/env bats
# /api/storage item info and file lists, /api/storageinfo, checksum files,
# and HTTP semantics on downloads (conditional requests, ranges, HEAD).
load helpers

setup_file() {
    start_pg
    export DB=$(new_db storage)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR
    make_repo a libs
    printf 'hello world\n' >"$SUITE_TMP/h"
    for p in org/x/1.0/x-1.0.jar org/x/1.0/x-1.0.pom org/y.txt top.txt; do
        acurl a -T "$SUITE_TMP/h" "/libs/$p" >/dev/null
    done
    export SHA=$(sha256sum "$SUITE_TMP/h" | cut -d' ' -f1)
    export SHA1=$(sha1sum "$SUITE_TMP/h" | cut -d' ' -f1)
    export MD5=$(md5sum "$SUITE_TMP/h" | cut -d' ' -f1)
}
teardown_file() { cleanup_suite; }

@test "file info has every Artifactory field" {
    run acurl a /api/storage/libs/org/x/1.0/x-1.0.jar
    local j=$output
    for f in repo path created createdBy lastModified modifiedBy lastUpdated downloadUri mimeType size uri; do
        [ "$(echo "$j" | jq -r ".$f")" != null ] || { echo "missing $f"; return 1; }
    done
    [ "$(echo "$j" | jq -r .repo)" = libs ]
    [ "$(echo "$j" | jq -r .path)" = /org/x/1.0/x-1.0.jar ]
    [ "$(echo "$j" | jq -r .size)" = 12 ]
    [ "$(echo "$j" | jq -r .checksums.sha256)" = "$SHA" ]
    [ "$(echo "$j" | jq -r .checksums.sha1)" = "$SHA1" ]
    [ "$(echo "$j" | jq -r .checksums.md5)" = "$MD5" ]
    [ "$(echo "$j" | jq -r .originalChecksums.sha1)" = "$SHA1" ]
    [ "$(echo "$j" | jq -r .uri)" = "$NODE_a_URL/api/storage/libs/org/x/1.0/x-1.0.jar" ]
    [ "$(echo "$j" | jq -r .downloadUri)" = "$NODE_a_URL/libs/org/x/1.0/x-1.0.jar" ]
    [[ "$(echo "$j" | jq -r .lastModified)" =~ ^20[0-9-]+T[0-9:.]+Z$ ]]
}

@test "folder info lists children with a folder flag" {
    run acurl a /api/storage/libs/org
    [ "$(echo "$output" | jq -r .path)" = /org ]
    [ "$(echo "$output" | jq -r .repo)" = libs ]
    [ "$(echo "$output" | jq -r .createdBy)" = admin ]
    [ "$(echo "$output" | jq -c '[.children[] | [.uri, .folder]]')" = '[["/x",true],["/y.txt",false]]' ]
    run acurl a /api/storage/libs
    [ "$(echo "$output" | jq -r .path)" = / ]
    [ "$(echo "$output" | jq -c '[.children[].uri]')" = '["/org","/top.txt"]' ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/api/storage/libs/nothing/here")" = 404 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/api/storage/nosuchrepo/x")" = 404 ]
    [ "$(code "$NODE_a_URL/api/storage/libs/org")" = 401 ]
}

@test "file lists: flat, deep, depth, folders, checksums, root path" {
    run acurl a "/api/storage/libs/org?list"
    [ "$(echo "$output" | jq -c '[.files[].uri]')" = '["/y.txt"]' ]
    [ "$(echo "$output" | jq -r .uri)" = "$NODE_a_URL/api/storage/libs/org" ]
    run acurl a "/api/storage/libs/org?list&deep=1"
    [ "$(echo "$output" | jq -c '[.files[].uri]')" = '["/x/1.0/x-1.0.jar","/x/1.0/x-1.0.pom","/y.txt"]' ]
    [ "$(echo "$output" | jq -r '.files[0].sha1')" = "$SHA1" ]
    [ "$(echo "$output" | jq -r '.files[0].sha2')" = "$SHA" ]
    [ "$(echo "$output" | jq -r '.files[0].size')" = 12 ]
    [ "$(echo "$output" | jq -r '.files[0].folder')" = false ]
    run acurl a "/api/storage/libs/org?list&deep=1&listFolders=1"
    [ "$(echo "$output" | jq -c '[.files[] | select(.folder) | .uri]')" = '["/x","/x/1.0"]' ]
    [ "$(echo "$output" | jq -r '.files[] | select(.uri=="/x") | .size')" = -1 ]
    run acurl a "/api/storage/libs/org?list&deep=1&depth=2&listFolders=1"
    [ "$(echo "$output" | jq -c '[.files[].uri]')" = '["/x","/x/1.0","/y.txt"]' ]
    run acurl a "/api/storage/libs?list&listFolders=1&includeRootPath=1&mdTimestamps=1"
    [ "$(echo "$output" | jq -c '[.files[].uri]')" = '["/","/org","/top.txt"]' ]
    [ "$(echo "$output" | jq -r '.files[2].mdTimestamps.properties')" != null ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/api/storage/libs/org?list&depth=x")" = 400 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/api/storage/libs/none?list")" = 404 ]
}

@test "storageinfo reports binaries, filestore and per-repository summaries" {
    run acurl a /api/storageinfo
    [ "$(echo "$output" | jq -r .binariesSummary.binariesCount)" = 1 ]
    [ "$(echo "$output" | jq -r .binariesSummary.artifactsCount)" = 4 ]
    [ "$(echo "$output" | jq -r .binariesSummary.binariesSize)" = "12 bytes" ]
    [ "$(echo "$output" | jq -r .binariesSummary.artifactsSize)" = "48 bytes" ]
    [ "$(echo "$output" | jq -r .fileStoreSummary.storageType)" = filesystem ]
    [ "$(echo "$output" | jq -r .fileStoreSummary.storageDirectory)" = "$NODE_a_DIR/filestore" ]
    [ "$(echo "$output" | jq -r .fileStoreSummary.freeSpaceInBytes)" -gt 0 ]
    local libs
    libs=$(echo "$output" | jq -c '.repositoriesSummaryList[] | select(.repoKey=="libs")')
    [ "$(echo "$libs" | jq -r .filesCount)" = 4 ]
    [ "$(echo "$libs" | jq -r .foldersCount)" = 3 ]
    [ "$(echo "$libs" | jq -r .itemsCount)" = 7 ]
    [ "$(echo "$libs" | jq -r .usedSpace)" = "48 bytes" ]
    [ "$(echo "$libs" | jq -r .packageType)" = generic ]
    [ "$(echo "$output" | jq -r '.repositoriesSummaryList[-1].repoKey')" = TOTAL ]
    [ "$(code -u "admin:$NODE_a_PASS" -X POST "$NODE_a_URL/api/storageinfo")" = 405 ]
}

@test "checksum files are served from stored checksums unless deployed" {
    [ "$(acurl a /libs/top.txt.sha1)" = "$SHA1" ]
    [ "$(acurl a /libs/top.txt.sha256)" = "$SHA" ]
    [ "$(acurl a /libs/top.txt.md5)" = "$MD5" ]
    [ "$(code -u "admin:$NODE_a_PASS" "$NODE_a_URL/libs/none.txt.sha1")" = 404 ]
    # a deployed checksum file wins
    echo "custom" >"$SUITE_TMP/c"
    acurl a -T "$SUITE_TMP/c" /libs/top.txt.md5 >/dev/null
    [ "$(acurl a /libs/top.txt.md5)" = custom ]
}

@test "If-None-Match and If-Modified-Since answer 304" {
    local lm
    lm=$(acurl a -I /libs/top.txt | tr -d '\r' | sed -n 's/^Last-Modified: //p')
    [ -n "$lm" ]
    [ "$(code -u "admin:$NODE_a_PASS" -H "If-Modified-Since: $lm" "$NODE_a_URL/libs/top.txt")" = 304 ]
    [ "$(code -u "admin:$NODE_a_PASS" -H 'If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT' "$NODE_a_URL/libs/top.txt")" = 200 ]
    [ "$(code -u "admin:$NODE_a_PASS" -H "If-None-Match: \"$SHA1\"" "$NODE_a_URL/libs/top.txt")" = 304 ]
    # If-None-Match takes precedence over If-Modified-Since
    [ "$(code -u "admin:$NODE_a_PASS" -H 'If-None-Match: "x"' -H "If-Modified-Since: $lm" "$NODE_a_URL/libs/top.txt")" = 200 ]
}

@test "a single Range gives 206 with Content-Range; an unsatisfiable one 416" {
    run acurl a -i -H 'Range: bytes=0-4' /libs/top.txt
    [[ "$output" == *"HTTP/1.1 206"* ]]
    [[ "$output" == *"Content-Range: bytes 0-4/12"* ]]
    [[ "$output" == *"hello" ]]
    [ "$(acurl a -H 'Range: bytes=6-' /libs/top.txt)" = world ]
    [ "$(acurl a -H 'Range: bytes=-6' /libs/top.txt)" = world ]
    run acurl a -i -H 'Range: bytes=50-60' /libs/top.txt
    [[ "$output" == *"HTTP/1.1 416"* ]]
    [[ "$output" == *"Content-Range: bytes */12"* ]]
    # several ranges or a stale If-Range: the whole body
    [ "$(acurl a -w '%{http_code}' -o /dev/null -H 'Range: bytes=0-1,3-4' /libs/top.txt)" = 200 ]
    [ "$(acurl a -w '%{http_code}' -o /dev/null -H 'Range: bytes=0-1' -H 'If-Range: "stale"' /libs/top.txt)" = 200 ]
    [ "$(acurl a -w '%{http_code}' -o /dev/null -H 'Range: bytes=0-1' -H "If-Range: \"$SHA1\"" /libs/top.txt)" = 206 ]
    # a big file, a range in the middle
    head -c 3000000 /dev/urandom >"$SUITE_TMP/big"
    acurl a -T "$SUITE_TMP/big" /libs/big.bin >/dev/null
    acurl a -H 'Range: bytes=1000000-1999999' -o "$SUITE_TMP/part" /libs/big.bin
    cmp "$SUITE_TMP/part" <(tail -c +1000001 "$SUITE_TMP/big" | head -c 1000000)
}

@test "HEAD has the same headers as GET and no body" {
    acurl a -D "$SUITE_TMP/get" -o /dev/null /libs/top.txt
    acurl a -I /libs/top.txt >"$SUITE_TMP/head"
    for h in Content-Length Content-Type ETag Last-Modified X-Checksum-Sha1 X-Checksum-Sha256 X-Checksum-Md5 Accept-Ranges; do
        grep -qi "^$h: ." "$SUITE_TMP/get" || { echo "$h missing from GET"; return 1; }
        [ "$(grep -i "^$h:" "$SUITE_TMP/get")" = "$(grep -i "^$h:" "$SUITE_TMP/head")" ] || { echo "$h differs"; return 1; }
    done
    [ "$(acurl a -X HEAD -w '%{size_download}' -o /dev/null /libs/top.txt 2>/dev/null)" = 0 ]
}
