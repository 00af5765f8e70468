#!/usr/bin/env bats
# The npm registry (docs/npm.md) driven by the real npm client: token login
# without a terminal, publish, install, dependency trees, dist-tags,
# deprecate, unpublish, scoped packages, conditional packuments, search,
# audit, and concurrent publishes through two nodes sharing one database.
# npm talks to granary only (a private cache per test, no public registry).
load helpers

setup_file() {
    start_pg
    export DB=$(new_db npm)
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"npm"}' "$NODE_n1_URL/api/repositories/npmr" >/dev/null
    export REG1=$NODE_n1_URL/api/npm/npmr/ REG2=$NODE_n2_URL/api/npm/npmr/
    export TOKEN
    TOKEN=$(login admin "$PASS" | jq -r .token)
    npmrc "$REG1" >"$SUITE_TMP/n1.npmrc"
    npmrc "$REG2" >"$SUITE_TMP/n2.npmrc"
}
teardown_file() { cleanup_suite; }

# login USER PASSWORD: the legacy login npm falls back to (CLIENTS.md)
login() {
    curl -sS -X PUT -H 'content-type: application/json' \
        -d "{\"_id\":\"org.couchdb.user:$1\",\"name\":\"$1\",\"password\":\"$2\",\"type\":\"user\",\"roles\":[]}" \
        "${REG1}-/user/org.couchdb.user:$1"
}
npmrc() { # REGISTRY-URL
    printf '%s:_authToken=%s\nregistry=%s\nupdate-notifier=false\naudit=false\nfund=false\n' \
        "${1#http:}" "$TOKEN" "$1"
}
# npm_on NODE ARGS...: npm against a node, with this test's private cache
npm_on() {
    local node=$1
    shift
    NPM_CONFIG_USERCONFIG=$SUITE_TMP/$node.npmrc npm --cache "$SUITE_TMP/npmcache-$BATS_TEST_NUMBER" \
        --loglevel warn "$@"
}
# mkpkg DIR PACKAGE-JSON: a package whose index.js exports its name@version
mkpkg() {
    rm -rf "$1"
    mkdir -p "$1"
    printf '%s' "$2" >"$1/package.json"
    echo "module.exports = require('./package.json').name + '@' + require('./package.json').version" >"$1/index.js"
}
publish() { # NODE DIR [npm args]
    local node=$1 dir=$2
    shift 2
    (cd "$dir" && npm_on "$node" publish "$@")
}
bget() { curl -sS -H "Authorization: Bearer $TOKEN" "$@"; }
# mkpublish NAME VERSION DATA [SHASUM]: a publish body as npm sends it
mkpublish() {
    python3 - "$@" <<'EOF'
import base64, hashlib, json, sys
name, ver, data = sys.argv[1], sys.argv[2], sys.argv[3].encode()
shasum = sys.argv[4] if len(sys.argv) > 4 else hashlib.sha1(data).hexdigest()
integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
doc = {"_id": name, "name": name, "dist-tags": {"latest": ver},
       "versions": {ver: {"name": name, "version": ver,
                          "dist": {"shasum": shasum, "integrity": integrity}}},
       "_attachments": {name + "-" + ver + ".tgz": {"content_type": "application/octet-stream",
                        "data": base64.b64encode(data).decode(), "length": len(data)}}}
print(json.dumps(doc))
EOF
}

@test "login without a terminal: a token for granary's user, whoami, bad password 401" {
    [[ "$TOKEN" == grt_* ]] # an access token (docs/security.md)
    run login admin wrong-password
    [[ "$output" == *'"status":401'* ]]
    [ "$(code -X POST -H 'content-type: application/json' -d '{}' "${REG1}-/v1/login")" = 404 ]
    run npm_on n1 whoami
    [ "$status" -eq 0 ]
    [ "$output" = admin ]
    # the token works on the other node too (it lives in the database)
    run npm_on n2 whoami
    [ "$output" = admin ]
    [ "$(code -H 'Authorization: Bearer npm_bogus' "${REG1}-/whoami")" = 401 ]
    # npm tokens are access tokens: good on every route, listed, revocable (docs/security.md)
    [ "$(code -H "Authorization: Bearer $TOKEN" "$NODE_n1_URL/api/repositories")" = 200 ]
    curl -fsS -H "Authorization: Bearer $TOKEN" "$NODE_n1_URL/api/security/token" |
        jq -e '.tokens | map(.description) | index("npm login")'
    [[ "$(curl -sS -H "Authorization: Bearer $TOKEN" "$NODE_n1_URL/api/security/token")" != *"$TOKEN"* ]]
}

@test "publish, then install into a fresh directory" {
    mkpkg "$SUITE_TMP/p/alpha" '{"name":"alpha","version":"1.0.0","description":"first"}'
    run publish n1 "$SUITE_TMP/p/alpha"
    echo "$output"
    [ "$status" -eq 0 ]
    mkdir -p "$SUITE_TMP/i/alpha"
    cd "$SUITE_TMP/i/alpha"
    run npm_on n1 install alpha
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(node -p "require('alpha')")" = alpha@1.0.0 ]
    # the tarball URL in the packument is the request's base URL
    [ "$(bget "${REG1}alpha" | jq -r '.versions["1.0.0"].dist.tarball')" = "${REG1}alpha/-/alpha-1.0.0.tgz" ]
}

@test "a package depending on two published packages installs the tree" {
    mkpkg "$SUITE_TMP/p/left" '{"name":"left","version":"2.1.0"}'
    mkpkg "$SUITE_TMP/p/right" '{"name":"right","version":"0.3.0"}'
    mkpkg "$SUITE_TMP/p/both" '{"name":"both","version":"1.0.0","dependencies":{"left":"^2.0.0","right":"~0.3.0"}}'
    for p in left right both; do publish n1 "$SUITE_TMP/p/$p"; done
    mkdir -p "$SUITE_TMP/i/both"
    cd "$SUITE_TMP/i/both"
    run npm_on n1 install both
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(node -p "require('left')")" = left@2.1.0 ]
    [ "$(node -p "require('right')")" = right@0.3.0 ]
    [ "$(jq -r '.packages["node_modules/right"].resolved' package-lock.json)" = "${REG1}right/-/right-0.3.0.tgz" ]
}

@test "republishing an existing version is refused with 403" {
    mkpkg "$SUITE_TMP/p/once" '{"name":"once","version":"1.0.0"}'
    publish n1 "$SUITE_TMP/p/once"
    echo changed >>"$SUITE_TMP/p/once/index.js"
    # npm 11 refuses by itself after reading the packument (through either
    # node); npm 9 (Debian's) sends it and shows the registry's 403
    run publish n2 "$SUITE_TMP/p/once"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *"previously published"* || "$output" == *"E403"* ]]
    # and the registry refuses a publish body of an existing version with 403
    mkpublish once 1.0.0 "other bytes" >"$SUITE_TMP/once.json"
    run bget -X PUT -H 'content-type: application/json' --data-binary @"$SUITE_TMP/once.json" "${REG2}once"
    echo "$output"
    [[ "$output" == *'"status":403'* ]]
    mkdir -p "$SUITE_TMP/i/once"
    cd "$SUITE_TMP/i/once"
    npm_on n1 install once
    [ "$(grep -c changed node_modules/once/index.js)" = 0 ]
}

@test "dist-tag add, ls and rm" {
    mkpkg "$SUITE_TMP/p/tagged" '{"name":"tagged","version":"1.0.0"}'
    publish n1 "$SUITE_TMP/p/tagged"
    mkpkg "$SUITE_TMP/p/tagged" '{"name":"tagged","version":"2.0.0-beta.1"}'
    publish n1 "$SUITE_TMP/p/tagged" --tag next
    [ "$(bget "${REG1}tagged" | jq -r '.["dist-tags"] | "\(.latest) \(.next)"')" = "1.0.0 2.0.0-beta.1" ]
    run npm_on n1 dist-tag add tagged@1.0.0 stable
    [ "$status" -eq 0 ]
    run npm_on n1 dist-tag ls tagged
    echo "$output"
    [[ "$output" == *"stable: 1.0.0"* ]]
    [[ "$output" == *"next: 2.0.0-beta.1"* ]]
    run npm_on n1 dist-tag rm tagged next
    [ "$status" -eq 0 ]
    [ "$(bget "${REG2}tagged" | jq -c '.["dist-tags"]')" = '{"latest":"1.0.0","stable":"1.0.0"}' ]
    # a tag naming an unknown version is refused
    [ "$(code -X PUT -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        -d '"9.9.9"' "${REG1}-/package/tagged/dist-tags/bad")" = 404 ]
}

@test "deprecate: the message is in both packument forms and npm install warns" {
    mkpkg "$SUITE_TMP/p/old" '{"name":"old","version":"0.1.0"}'
    publish n1 "$SUITE_TMP/p/old"
    run npm_on n1 deprecate old@0.1.0 "use new instead"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(bget "${REG1}old" | jq -r '.versions["0.1.0"].deprecated')" = "use new instead" ]
    [ "$(bget -H 'Accept: application/vnd.npm.install-v1+json' "${REG2}old" | jq -r '.versions["0.1.0"].deprecated')" = "use new instead" ]
    mkdir -p "$SUITE_TMP/i/old"
    cd "$SUITE_TMP/i/old"
    run npm_on n1 install old
    echo "$output"
    [[ "$output" == *"deprecated"*"use new instead"* ]]
    run npm_on n1 deprecate old@0.1.0 ""
    [ "$status" -eq 0 ]
    [ "$(bget "${REG1}old" | jq -r '.versions["0.1.0"].deprecated')" = null ]
}

@test "unpublish one version, then the whole package" {
    mkpkg "$SUITE_TMP/p/gone" '{"name":"gone","version":"1.0.0"}'
    publish n1 "$SUITE_TMP/p/gone"
    mkpkg "$SUITE_TMP/p/gone" '{"name":"gone","version":"1.1.0"}'
    publish n1 "$SUITE_TMP/p/gone"
    run npm_on n1 unpublish gone@1.1.0
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(bget "${REG1}gone" | jq -c '[(.versions|keys), .["dist-tags"].latest]')" = '[["1.0.0"],"1.0.0"]' ]
    # its tarball went to the trash with it
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/api/storage/npmr/gone/-/gone-1.1.0.tgz")" = 404 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/api/storage/npmr/gone/-/gone-1.0.0.tgz")" = 200 ]
    run npm_on n1 unpublish gone --force
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(code -H "Authorization: Bearer $TOKEN" "${REG2}gone")" = 404 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/api/storage/npmr/gone/-/gone-1.0.0.tgz")" = 404 ]
    # a stale _rev is refused
    mkpkg "$SUITE_TMP/p/gone" '{"name":"gone","version":"2.0.0"}'
    publish n1 "$SUITE_TMP/p/gone"
    [ "$(code -X DELETE -H "Authorization: Bearer $TOKEN" "${REG1}gone/-rev/1-0")" = 409 ]
}

@test "scoped package: publish, packument at @scope%2fname, install" {
    mkpkg "$SUITE_TMP/p/scoped" '{"name":"@acme/util","version":"3.0.0"}'
    run publish n1 "$SUITE_TMP/p/scoped"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(bget "${REG1}@acme%2futil" | jq -r .name)" = @acme/util ]
    [ "$(bget "${REG1}%40acme%2Futil" | jq -r '.versions["3.0.0"].dist.tarball')" = "${REG1}@acme/util/-/util-3.0.0.tgz" ]
    mkdir -p "$SUITE_TMP/i/scoped"
    cd "$SUITE_TMP/i/scoped"
    run npm_on n1 install @acme/util
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(node -p "require('@acme/util')")" = @acme/util@3.0.0 ]
    [ "$(code -H "Authorization: Bearer $TOKEN" "${REG1}@acme%2fnone")" = 404 ]
    [ "$(code -H "Authorization: Bearer $TOKEN" "${REG1}@acme%2f..%2f..")" = 400 ]
}

@test "packuments: abbreviated by Accept, ETag and 304" {
    local h=$SUITE_TMP/h
    bget -D "$h" -o "$SUITE_TMP/ab.json" -H 'Accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*' "${REG1}alpha"
    grep -qi '^content-type: application/vnd.npm.install-v1+json' "$h"
    [ "$(jq -r '.modified != null and ._rev == null' "$SUITE_TMP/ab.json")" = true ]
    local etag
    etag=$(awk 'tolower($1) == "etag:" { print $2 }' "$h" | tr -d '\r')
    [ -n "$etag" ]
    [ "$(code -H "Authorization: Bearer $TOKEN" -H 'Accept: application/vnd.npm.install-v1+json' \
        -H "If-None-Match: $etag" "${REG1}alpha")" = 304 ]
    # the full document has another ETag
    [ "$(code -H "Authorization: Bearer $TOKEN" -H "If-None-Match: $etag" "${REG1}alpha")" = 200 ]
    [ "$(bget "${REG1}alpha?write=true" | jq -r '._rev')" != null ]
    # a publish changes the ETag
    mkpkg "$SUITE_TMP/p/alpha" '{"name":"alpha","version":"1.0.1"}'
    publish n1 "$SUITE_TMP/p/alpha"
    [ "$(code -H "Authorization: Bearer $TOKEN" -H 'Accept: application/vnd.npm.install-v1+json' \
        -H "If-None-Match: $etag" "${REG2}alpha")" = 200 ]
}

@test "search, audit endpoint, tarballs as artifacts, bad tarballs refused" {
    run npm_on n1 search alpha
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *alpha* ]]
    [ "$(bget "${REG1}-/v1/search?text=acme" | jq -r '.objects[0].package.name')" = @acme/util ]
    [ "$(bget -X POST -H 'content-encoding: gzip' --data-binary @/dev/null "${REG1}-/npm/v1/security/advisories/bulk" -o /dev/null -w '%{http_code}')" = 200 ]
    echo '{}' | gzip | bget -X POST -H 'content-encoding: gzip' --data-binary @- "${REG1}-/npm/v1/security/advisories/bulk" | grep -q '{}'
    # the storage API and artifact search see tarballs
    [ "$(curl -sS -u "admin:$PASS" "$NODE_n1_URL/api/storage/npmr/alpha/-/alpha-1.0.0.tgz" | jq -r .checksums.sha1)" = \
        "$(bget "${REG1}alpha" | jq -r '.versions["1.0.0"].dist.shasum')" ]
    # a publish whose shasum or integrity does not match its tarball: 400, nothing stored
    mkpublish bad 1.0.0 "not really a tarball" "$(echo other | sha1sum | cut -c1-40)" >"$SUITE_TMP/bad.json"
    run bget -X PUT -H 'content-type: application/json' --data-binary @"$SUITE_TMP/bad.json" "${REG1}bad"
    [[ "$output" == *'"status":400'*shasum* ]]
    mkpublish bad 1.0.0 "not really a tarball" | sed 's/"integrity": "sha512-[^"]*"/"integrity": "sha512-AAAA"/' >"$SUITE_TMP/bad.json"
    run bget -X PUT -H 'content-type: application/json' --data-binary @"$SUITE_TMP/bad.json" "${REG1}bad"
    [[ "$output" == *'"status":400'*integrity* ]]
    [ "$(code -H "Authorization: Bearer $TOKEN" "${REG1}bad")" = 404 ]
    # anonymous callers may not publish or read (anonymous read is off)
    [ "$(code -X PUT --data-binary @"$SUITE_TMP/bad.json" "${REG1}bad")" = 401 ]
    [ "$(code "${REG1}alpha")" = 401 ]
    # an npm route on a repository of another type
    make_repo n1 gen
    [ "$(code -H "Authorization: Bearer $TOKEN" "$NODE_n1_URL/api/npm/gen/alpha")" = 404 ]
}

@test "concurrent publishes of ten versions through two nodes all survive" {
    local i pids=() node
    for i in 0 1 2 3 4 5 6 7 8 9; do
        mkpkg "$SUITE_TMP/c/$i" "{\"name\":\"busy\",\"version\":\"1.0.$i\"}"
        node=n$((i % 2 + 1))
        (cd "$SUITE_TMP/c/$i" && NPM_CONFIG_USERCONFIG=$SUITE_TMP/$node.npmrc \
            npm --cache "$SUITE_TMP/ccache-$i" --loglevel warn publish --tag "t$i" >"$SUITE_TMP/c/$i.log" 2>&1) &
        pids+=($!)
    done
    local failed=0
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || { failed=1; cat "$SUITE_TMP/c/$i.log"; }
    done
    [ "$failed" = 0 ]
    [ "$(bget "${REG1}busy" | jq '.versions | length')" = 10 ]
    [ "$(bget "${REG2}busy" | jq '.versions | length')" = 10 ]
    [ "$(bget -H 'Accept: application/vnd.npm.install-v1+json' "${REG2}busy" | jq -r '.versions | keys | join(",")')" = \
        "1.0.0,1.0.1,1.0.2,1.0.3,1.0.4,1.0.5,1.0.6,1.0.7,1.0.8,1.0.9" ]
    # no publish claimed latest (npm wants --tag for a lower version): the highest is latest
    [ "$(bget "${REG1}busy" | jq -r '.["dist-tags"].latest')" = 1.0.9 ]
    # even versions went through n1, which holds their tarballs (until blob replication)
    mkdir -p "$SUITE_TMP/i/busy"
    cd "$SUITE_TMP/i/busy"
    run npm_on n1 install busy@1.0.4
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(node -p "require('busy')")" = busy@1.0.4 ]
    cd "$SUITE_TMP"
    rm -rf "$SUITE_TMP/i/busy2"
    mkdir -p "$SUITE_TMP/i/busy2"
    cd "$SUITE_TMP/i/busy2"
    run npm_on n2 install busy@1.0.5
    [ "$status" -eq 0 ]
    [ "$(node -p "require('busy')")" = busy@1.0.5 ]
}
