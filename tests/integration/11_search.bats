#!/usr/bin/env bats
# /api/search/{artifact,checksum,prop,dates}: Artifactory's result shapes,
# wildcards and LIKE escaping, repository filters, X-Result-Detail, the
# result limit, and the error answers.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db search)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR
    make_repo a s1
    make_repo a s2
    make_repo a s3
    printf 'alpha' >"$SUITE_TMP/A"
    printf 'bravo' >"$SUITE_TMP/B"
    printf 'charlie' >"$SUITE_TMP/C"
    printf 'delta' >"$SUITE_TMP/D"
    export SHA_A=$(sha256sum "$SUITE_TMP/A" | cut -d' ' -f1)
    export SHA1_A=$(sha1sum "$SUITE_TMP/A" | cut -d' ' -f1)
    export MD5_A=$(md5sum "$SUITE_TMP/A" | cut -d' ' -f1)
    export SHA1_B=$(sha1sum "$SUITE_TMP/B" | cut -d' ' -f1)
    export MD5_C=$(md5sum "$SUITE_TMP/C" | cut -d' ' -f1)
    up() { acurl a -T "$SUITE_TMP/$1" "$2" >/dev/null; }
    up A '/s1/org/x/1.0/x-1.0.jar;team=red;build.number=7'
    up B '/s1/org/x/1.0/x-1.0.pom;team=red;build.number=8'
    up C '/s1/org/x/1.1/x-1.1.jar;team=blue;build.number=7;qa=done'
    up A '/s2/com/y/y-2.0.jar;team=red;qa=done'
    up D '/s2/com/y/y-2.0.jar.sha1'
    up D '/s2/com/y/notes_100%25.txt'
    up D '/s1/misc/ab_c.txt'
    up D '/s1/misc/abXc.txt'
    # a folder with properties, and fixed dates for the date searches
    acurl a -X PUT '/api/storage/s1/org/x/1.1?properties=qa=done&recursive=0' >/dev/null
    # dates cannot be set through the API: they are set in PostgreSQL. That
    # skips the cache and the change counter, and cannot hide a bug: every
    # search is a PostgreSQL query (search.c reads no cache)
    psql_db search "UPDATE artifacts SET created = '2024-01-01T00:00:00Z', modified = '2024-01-05T00:00:00Z' WHERE repo = 's1' AND path = 'org/x/1.0/x-1.0.jar'"
    psql_db search "UPDATE artifacts SET created = '2024-01-03T00:00:00Z', modified = '2024-01-03T00:00:00Z' WHERE repo = 's1' AND path = 'org/x/1.1/x-1.1.jar'"
    psql_db search "UPDATE artifacts SET created = '2024-02-01T00:00:00Z', modified = '2024-02-01T00:00:00Z' WHERE repo = 's2' AND path = 'com/y/y-2.0.jar'"
}
teardown_file() { cleanup_suite; }

# uris SEARCH [curl args]: the result uris relative to /api/storage/, sorted, space-separated
uris() {
    local q=$1
    shift
    acurl a "$@" "/api/search/$q" | jq -r '.results[].uri' | sed "s|^$NODE_a_URL/api/storage/||" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//'
}

# search SEARCH [curl args]: body, then the status on the last line
search() {
    local q=$1
    shift
    acurl a "$@" -w '\n%{http_code}' "/api/search/$q"
}

# ms ISO-DATE: epoch milliseconds
ms() {
    echo $(($(date -u -d "$1" +%s) * 1000))
}

@test "artifact search: {\"results\":[{\"uri\"}]} with '*' and '?' in the file name" {
    run search 'artifact?name=x-1.?.jar'
    [ "${lines[-1]}" = 200 ]
    local j=${lines[0]}
    [ "$(echo "$j" | jq -c 'keys')" = '["results"]' ]
    [ "$(echo "$j" | jq -c '[.results[] | keys]')" = '[["uri"],["uri"]]' ]
    [ "$(uris 'artifact?name=x-1.?.jar')" = "s1/org/x/1.0/x-1.0.jar s1/org/x/1.1/x-1.1.jar" ]
    # like Artifactory, a name not ending in a wildcard gets one: *.jar also finds *.jar.sha1
    [ "$(uris 'artifact?name=*.jar')" = "s1/org/x/1.0/x-1.0.jar s1/org/x/1.1/x-1.1.jar s2/com/y/y-2.0.jar s2/com/y/y-2.0.jar.sha1" ]
    # and a part of the name is enough
    [ "$(uris 'artifact?name=x-1')" = "s1/org/x/1.0/x-1.0.jar s1/org/x/1.0/x-1.0.pom s1/org/x/1.1/x-1.1.jar" ]
    [ "$(uris 'artifact?name=?-2.0.jar.sha?')" = "s2/com/y/y-2.0.jar.sha1" ]
    # only the file name is matched, not the folders
    [ "$(uris 'artifact?name=org')" = "" ]
    [ "$(uris 'artifact?name=nothing-like-this')" = "" ]
}

@test "artifact search: repos= restricts, LIKE's _ % \\ are literal" {
    [ "$(uris 'artifact?name=*.jar&repos=s2')" = "s2/com/y/y-2.0.jar s2/com/y/y-2.0.jar.sha1" ]
    [ "$(uris 'artifact?name=*.jar&repos=s1,s3')" = "s1/org/x/1.0/x-1.0.jar s1/org/x/1.1/x-1.1.jar" ]
    [ "$(uris 'artifact?name=ab_c.txt')" = "s1/misc/ab_c.txt" ]
    [ "$(uris 'artifact?name=ab?c.txt')" = "s1/misc/abXc.txt s1/misc/ab_c.txt" ]
    [ "$(uris 'artifact?name=100%25.txt')" = "s2/com/y/notes_100%25.txt" ]
    [ "$(uris 'artifact?name=1000.txt')" = "" ]
}

@test "artifact search: errors are 400 (no name, wildcards only) and 404 (unknown repository)" {
    for q in 'artifact' 'artifact?name=' 'artifact?name=*' 'artifact?name=*?*'; do
        run search "$q"
        [ "${lines[-1]}" = 400 ]
        [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 400 ]
    done
    run search 'artifact?name=x&repos=s1,nope'
    [ "${lines[-1]}" = 404 ]
    [[ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" == *nope* ]]
}

@test "checksum search by sha256, sha1 and md5 (any case)" {
    [ "$(uris "checksum?sha256=$SHA_A")" = "s1/org/x/1.0/x-1.0.jar s2/com/y/y-2.0.jar" ]
    [ "$(uris "checksum?sha1=$SHA1_A")" = "s1/org/x/1.0/x-1.0.jar s2/com/y/y-2.0.jar" ]
    [ "$(uris "checksum?md5=$MD5_A&repos=s2")" = "s2/com/y/y-2.0.jar" ]
    [ "$(uris "checksum?sha1=${SHA1_B^^}")" = "s1/org/x/1.0/x-1.0.pom" ]
    [ "$(uris "checksum?md5=$MD5_C")" = "s1/org/x/1.1/x-1.1.jar" ]
    run search "checksum?sha256=$(printf '0%.0s' $(seq 64))"
    [ "${lines[-1]}" = 200 ]
    [ "${lines[0]}" = '{"results":[]}' ]
}

@test "checksum search: exactly one well-formed checksum, else 400" {
    for q in 'checksum' "checksum?sha256=$SHA_A&md5=$MD5_A" 'checksum?sha256=abc' \
        "checksum?sha1=${SHA_A:0:40}x" "checksum?md5=${SHA1_A}" 'checksum?sha256='; do
        run search "$q"
        [ "${lines[-1]}" = 400 ]
        [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 400 ]
    done
    [ "$(search "checksum?sha256=$SHA_A&repos=zzz" | tail -1)" = 404 ]
}

@test "property search: several pairs must all match; a value list matches any" {
    [ "$(uris 'prop?team=red')" = "s1/org/x/1.0/x-1.0.jar s1/org/x/1.0/x-1.0.pom s2/com/y/y-2.0.jar" ]
    [ "$(uris 'prop?team=red&build.number=7')" = "s1/org/x/1.0/x-1.0.jar" ]
    [ "$(uris 'prop?build.number=7&team=red')" = "s1/org/x/1.0/x-1.0.jar" ]
    [ "$(uris 'prop?team=red,blue&build.number=7')" = "s1/org/x/1.0/x-1.0.jar s1/org/x/1.1/x-1.1.jar" ]
    [ "$(uris 'prop?team=red,blue&build.number=7,8&qa=done')" = "s1/org/x/1.1/x-1.1.jar" ]
    [ "$(uris 'prop?team=red&team=blue')" = "s1/org/x/1.0/x-1.0.jar s1/org/x/1.0/x-1.0.pom s1/org/x/1.1/x-1.1.jar s2/com/y/y-2.0.jar" ]
    # no value (or '*') is any value; folders carrying properties are found too
    [ "$(uris 'prop?qa=')" = "s1/org/x/1.1 s1/org/x/1.1/x-1.1.jar s2/com/y/y-2.0.jar" ]
    [ "$(uris 'prop?qa=*&team=red,blue')" = "s1/org/x/1.1/x-1.1.jar s2/com/y/y-2.0.jar" ]
    [ "$(uris 'prop?team=red&repos=s2')" = "s2/com/y/y-2.0.jar" ]
    [ "$(uris 'prop?team=green')" = "" ]
    [ "$(uris 'prop?team=red&qa=done&build.number=7')" = "" ]
}

@test "property search: errors" {
    for q in 'prop' 'prop?repos=s1' 'prop?a%20b=1' 'prop?team=x%5C'; do
        run search "$q"
        [ "${lines[-1]}" = 400 ]
        [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 400 ]
    done
    [ "$(search 'prop?team=red&repos=missing' | tail -1)" = 404 ]
}

@test "date search: from is exclusive, to inclusive; dateFields pick the dates shown" {
    local d0101 d0103 d0104 d0106
    d0101=$(ms 2024-01-01T00:00:00Z)
    d0103=$(ms 2024-01-03T00:00:00Z)
    d0104=$(ms 2024-01-04T00:00:00Z)
    d0106=$(ms 2024-01-06T00:00:00Z)
    run search "dates?from=$((d0101 - 1))&to=$((d0101 + 1))&dateFields=created"
    [ "${lines[-1]}" = 200 ]
    [ "$(echo "${lines[0]}" | jq -c '.results[0] | keys')" = '["created","uri"]' ]
    [ "$(echo "${lines[0]}" | jq -r '.results[0].created')" = "2024-01-01T00:00:00.000Z" ]
    [ "$(echo "${lines[0]}" | jq -r '.results[0].uri')" = "$NODE_a_URL/api/storage/s1/org/x/1.0/x-1.0.jar" ]
    [ "$(uris "dates?from=$d0101&to=$d0103&dateFields=created")" = "s1/org/x/1.1/x-1.1.jar" ]
    [ "$(uris "dates?from=$((d0101 - 1))&to=$((d0103 - 1))&dateFields=created")" = "s1/org/x/1.0/x-1.0.jar" ]
    run search "dates?from=$d0104&to=$d0106&dateFields=lastModified"
    [ "$(echo "${lines[0]}" | jq -c '.results[0] | keys')" = '["lastModified","uri"]' ]
    [ "$(echo "${lines[0]}" | jq -r '.results[0].lastModified')" = "2024-01-05T00:00:00.000Z" ]
    [ "$(uris "dates?from=$d0104&to=$d0106&dateFields=lastModified")" = "s1/org/x/1.0/x-1.0.jar" ]
    [ "$(uris "dates?from=$((d0101 - 1))&to=$d0106&dateFields=created,lastModified")" = "s1/org/x/1.0/x-1.0.jar s1/org/x/1.1/x-1.1.jar" ]
    run search "dates?from=$((d0101 - 1))&to=$d0104&dateFields=created,lastModified"
    [ "$(echo "${lines[0]}" | jq -c '[.results[] | keys]')" = '[["created","lastModified","uri"],["created","lastModified","uri"]]' ]
    # ISO 8601 bounds, and repos
    [ "$(uris 'dates?from=2024-01-31T23:59:59.999Z&to=2024-02-01T00:00:00.000Z&dateFields=created')" = "s2/com/y/y-2.0.jar" ]
    [ "$(uris 'dates?from=2023-12-31T00:00:00Z&to=2024-03-01T00:00:00%2B01:00&dateFields=created&repos=s2')" = "s2/com/y/y-2.0.jar" ]
    # no 'to': until now, so the files deployed today are found
    [ "$(uris "dates?from=$(ms '1 hour ago')&dateFields=created&repos=s2")" = "s2/com/y/notes_100%25.txt s2/com/y/y-2.0.jar.sha1" ]
}

@test "date search: nothing found is 404 (as Artifactory); bad parameters are 400; anonymous 401" {
    run search 'dates?from=0&to=1000&dateFields=created'
    [ "${lines[-1]}" = 404 ]
    [ "$(echo "${lines[0]}" | jq -r '.errors[0].message')" = "No results found." ]
    for q in 'dates?dateFields=created' 'dates?from=0' 'dates?from=0&dateFields=' \
        'dates?from=0&dateFields=created,nope' 'dates?from=0&dateFields=lastDownloaded' \
        'dates?from=yesterday&dateFields=created' 'dates?from=0&to=2024-02-30T00:00:00Z&dateFields=created'; do
        run search "$q"
        [ "${lines[-1]}" = 400 ]
        [ "$(echo "${lines[0]}" | jq -r '.errors[0].status')" = 400 ]
    done
    acurl a -X PUT -H 'Content-Type: application/json' -d '{"anonymousRead":true}' /api/system/settings >/dev/null
    [ "$(code "$NODE_a_URL/api/search/dates?from=0&dateFields=created")" = 401 ]
    [ "$(code "$NODE_a_URL/api/search/artifact?name=x-1")" = 200 ]
    acurl a -X PUT -H 'Content-Type: application/json' -d '{"anonymousRead":false}' /api/system/settings >/dev/null
    [ "$(code "$NODE_a_URL/api/search/artifact?name=x-1")" = 401 ]
}

@test "X-Result-Detail: info adds the storage info of each result, field by field" {
    run search "checksum?sha256=$SHA_A&repos=s1" -H 'X-Result-Detail: info'
    [ "${lines[-1]}" = 200 ]
    local r
    r=$(echo "${lines[0]}" | jq -c '.results[0]')
    [ "$(echo "${lines[0]}" | jq '.results | length')" = 1 ]
    [ "$(echo "$r" | jq -r .repo)" = s1 ]
    [ "$(echo "$r" | jq -r .path)" = /org/x/1.0/x-1.0.jar ]
    [ "$(echo "$r" | jq -r .created)" = 2024-01-01T00:00:00.000Z ]
    [ "$(echo "$r" | jq -r .createdBy)" = admin ]
    [ "$(echo "$r" | jq -r .lastModified)" = 2024-01-05T00:00:00.000Z ]
    [ "$(echo "$r" | jq -r .modifiedBy)" = admin ]
    [[ "$(echo "$r" | jq -r .lastUpdated)" =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$ ]]
    [ "$(echo "$r" | jq -r .downloadUri)" = "$NODE_a_URL/s1/org/x/1.0/x-1.0.jar" ]
    [ "$(echo "$r" | jq -r .mimeType)" = application/java-archive ]
    [ "$(echo "$r" | jq .size)" = '"5"' ]
    [ "$(echo "$r" | jq -r .checksums.sha1)" = "$SHA1_A" ]
    [ "$(echo "$r" | jq -r .checksums.md5)" = "$MD5_A" ]
    [ "$(echo "$r" | jq -r .checksums.sha256)" = "$SHA_A" ]
    [ "$(echo "$r" | jq -c .originalChecksums)" = "$(echo "$r" | jq -c .checksums)" ]
    [ "$(echo "$r" | jq -r .uri)" = "$NODE_a_URL/api/storage/s1/org/x/1.0/x-1.0.jar" ]
    [ "$(echo "$r" | jq 'has("properties")')" = false ]
}

@test "X-Result-Detail: properties adds a properties map ({} when none); both together" {
    run search 'artifact?name=y-2.0.jar' -H 'X-Result-Detail: properties'
    [ "$(echo "${lines[0]}" | jq -c '[.results[] | keys]')" = '[["properties","uri"],["properties","uri"]]' ]
    [ "$(echo "${lines[0]}" | jq -c '.results[0].properties')" = '{"qa":["done"],"team":["red"]}' ]
    [ "$(echo "${lines[0]}" | jq -c '.results[1].properties')" = '{}' ]
    run search 'prop?build.number=7' -H 'X-Result-Detail: info, properties'
    [ "$(echo "${lines[0]}" | jq '.results | length')" = 2 ]
    [ "$(echo "${lines[0]}" | jq -c '.results[0].properties')" = '{"build.number":["7"],"team":["red"]}' ]
    [ "$(echo "${lines[0]}" | jq -c '.results[1].properties')" = '{"build.number":["7"],"qa":["done"],"team":["blue"]}' ]
    [ "$(echo "${lines[0]}" | jq -r '.results[1].path')" = /org/x/1.1/x-1.1.jar ]
    [ "$(echo "${lines[0]}" | jq -r '.results[1].checksums.md5')" = "$MD5_C" ]
    # a folder result has no file fields
    run search 'prop?qa=done&repos=s1' -H 'X-Result-Detail: info'
    [ "$(echo "${lines[0]}" | jq -c '.results[0]')" = "{\"repo\":\"s1\",\"path\":\"/org/x/1.1\",\"uri\":\"$NODE_a_URL/api/storage/s1/org/x/1.1\"}" ]
    # the /artifactory prefix shows in every uri
    [ "$(acurl a '/artifactory/api/search/artifact?name=x-1.1' | jq -r '.results[0].uri')" = "$NODE_a_URL/artifactory/api/storage/s1/org/x/1.1/x-1.1.jar" ]
}

@test "results stop at 1000 and X-Result-Limit-Reached says so" {
    make_repo a big
    # 1001 rows written in PostgreSQL rather than 1001 uploads; searches
    # read PostgreSQL only, so the cache they skip plays no part here
    psql_db search "INSERT INTO artifacts (repo, path, sha256, size, created_by, modified_by) SELECT 'big', 'many/f' || i || '.bin', '$SHA_A', 5, 'admin', 'admin' FROM generate_series(1, 1001) i"
    acurl a -D "$SUITE_TMP/h" -o "$SUITE_TMP/b" '/api/search/artifact?name=*.bin&repos=big'
    [ "$(jq '.results | length' "$SUITE_TMP/b")" = 1000 ]
    grep -qi '^X-Result-Limit-Reached: 1000' "$SUITE_TMP/h"
    psql_db search "DELETE FROM artifacts WHERE repo = 'big' AND path = 'many/f1.bin'"
    acurl a -D "$SUITE_TMP/h" -o "$SUITE_TMP/b" '/api/search/artifact?name=*.bin&repos=big'
    [ "$(jq '.results | length' "$SUITE_TMP/b")" = 1000 ]
    run grep -qi '^X-Result-Limit-Reached' "$SUITE_TMP/h"
    [ "$status" -ne 0 ]
}

@test "search: unknown kinds are 404, other methods 405, anonymous 401" {
    run search 'nosuch?g=x'
    [ "${lines[-1]}" = 404 ]
    [ "$(code -u "admin:$NODE_a_PASS" -X POST "$NODE_a_URL/api/search/artifact?name=x")" = 405 ]
    [ "$(code "$NODE_a_URL/api/search/prop?team=red")" = 401 ]
}
