#!/usr/bin/env bats
# Security of the npm registry (docs/npm.md, docs/security.md): who may
# unpublish, deprecate, move dist-tags, publish over a file, read versions
# whose tarball path a permission target excludes, and search; npm login
# throttled, audited, as costly for unknown names as for known ones, its
# tokens expiring and revocable; npm request bodies bounded in memory.
# alice may read and write npmshared (but not the tarballs of @internal);
# bob may read, write and delete npmsecret. Real npm client where it
# matters, curl (and tools/npm_bodies.py) for the attacks.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db secnpm)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR NODE_a_PORT
    export U=$NODE_a_URL PW=password123
    for r in npmshared npmsecret; do
        acurl a -X PUT -H 'Content-Type: application/json' \
            -d '{"rclass":"local","packageType":"npm"}' "/api/repositories/$r" >/dev/null
    done
    make_repo a secret
    for u in alice bob victim; do
        acurl a -X PUT -H 'Content-Type: application/json' -o /dev/null \
            -d "{\"password\":\"$PW\",\"email\":\"$u@example.com\",\"groups\":[]}" "/api/security/users/$u"
    done
    acurl a -X PUT -H 'Content-Type: application/json' -o /dev/null -d '{"repo":{
        "repositories":["npmshared"],"include-patterns":["**"],"exclude-patterns":["@internal/**/*.tgz"],
        "actions":{"users":{"alice":["read","write"],"victim":["read"]}}}}' /api/v2/security/permissions/t-alice
    acurl a -X PUT -H 'Content-Type: application/json' -o /dev/null -d '{"repo":{
        "repositories":["secret","npmsecret"],"include-patterns":["**"],
        "actions":{"users":{"bob":["read","write","delete"]}}}}' /api/v2/security/permissions/t-bob
    export ADMIN_TOKEN ALICE_TOKEN BOB_TOKEN
    ADMIN_TOKEN=$(login admin "$NODE_a_PASS" | jq -r .token)
    ALICE_TOKEN=$(login alice "$PW" | jq -r .token)
    BOB_TOKEN=$(login bob "$PW" | jq -r .token)
    for who in admin alice bob; do
        for r in npmshared npmsecret; do npmrc "$who" "$r" >"$SUITE_TMP/$who-$r.npmrc"; done
    done
    # what the attacks aim at, published by the admin
    publish_as "$ADMIN_TOKEN" npmshared wpkg 1.0.0
    publish_as "$ADMIN_TOKEN" npmshared wpkg 1.1.0
    publish_as "$ADMIN_TOKEN" npmshared tagged 1.0.0
    publish_as "$ADMIN_TOKEN" npmshared tagged 2.0.0
    publish_as "$ADMIN_TOKEN" npmshared old 1.0.0
    publish_as "$ADMIN_TOKEN" npmshared @internal/tool 1.0.0
    publish_as "$ADMIN_TOKEN" npmsecret secretpkg 1.0.0
}
teardown_file() { cleanup_suite; }

# login USER PASSWORD [curl args]: the legacy login npm falls back to (CLIENTS.md)
login() {
    local u=$1 p=$2
    shift 2
    curl -sS "$@" -X PUT -H 'content-type: application/json' \
        -d "{\"_id\":\"org.couchdb.user:$u\",\"name\":\"$u\",\"password\":\"$p\",\"type\":\"user\",\"roles\":[]}" \
        "$U/api/npm/npmshared/-/user/org.couchdb.user:$u"
}
npmrc() { # WHO REPO: an npm user config with WHO's token for REPO
    local tok
    eval "tok=\$${1^^}_TOKEN"
    printf '//%s/api/npm/%s/:_authToken=%s\nregistry=%s/api/npm/%s/\nupdate-notifier=false\naudit=false\nfund=false\n' \
        "${U#http://}" "$2" "$tok" "$U" "$2"
}
npm_as() { # WHO REPO NPM-ARGS...: the real npm client as WHO against REPO
    local who=$1 repo=$2
    shift 2
    NPM_CONFIG_USERCONFIG=$SUITE_TMP/$who-$repo.npmrc npm --cache "$SUITE_TMP/npmcache" \
        --loglevel warn "$@"
}
# mkpublish NAME VERSION DATA: a publish body as npm sends it
mkpublish() {
    python3 - "$@" <<'EOF'
import base64, hashlib, json, sys
name, ver, data = sys.argv[1], sys.argv[2], sys.argv[3].encode()
doc = {"_id": name, "name": name, "dist-tags": {"latest": ver},
       "versions": {ver: {"name": name, "version": ver,
                          "dist": {"shasum": hashlib.sha1(data).hexdigest(),
                                   "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()}}},
       "_attachments": {name.split("/")[-1] + "-" + ver + ".tgz": {"content_type": "application/octet-stream",
                        "data": base64.b64encode(data).decode(), "length": len(data)}}}
print(json.dumps(doc))
EOF
}
publish_as() { # TOKEN REPO NAME VERSION: publish with curl, print the status code
    mkpublish "$3" "$4" "tarball of $3@$4" >"$SUITE_TMP/pub.json"
    curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $1" \
        -H 'content-type: application/json' --data-binary @"$SUITE_TMP/pub.json" \
        "$U/api/npm/$2/${3/\//%2f}"
}
bget() { # TOKEN [curl args] URL-PATH: GET with a Bearer token
    local tok=$1
    shift
    curl -sS -H "Authorization: Bearer $tok" "${@:1:$#-1}" "$U${!#}"
}
bcode() { # TOKEN [curl args] URL-PATH: the status code only
    local tok=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "${@:1:$#-1}" "$U${!#}"
}
versions() { # REPO NAME: the versions as the admin sees them, comma-separated
    bget "$ADMIN_TOKEN" "/api/npm/$1/${2/\//%2f}" | jq -r '.versions | keys | join(",")'
}
vm() { # FIELD: the node's VmRSS or VmData in kB
    awk -v f="$1:" '$1 == f { print $2 }' "/proc/$NODE_a_PID/status"
}
mkuser() {
    acurl a -X PUT -H 'Content-Type: application/json' -w '%{http_code}' -o /dev/null \
        -d "{\"password\":\"$PW\",\"email\":\"$1@example.com\",\"groups\":[]}" "/api/security/users/$1"
}

@test "unpublish of a version needs delete: write is not enough (npm unpublish, curl -rev PUT)" {
    run npm_as alice npmshared unpublish wpkg@1.1.0
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *403* ]]
    # the request npm sends, by hand: the document without 1.1.0
    local doc rev
    doc=$(bget "$ALICE_TOKEN" '/api/npm/npmshared/wpkg?write=true')
    rev=$(echo "$doc" | jq -r ._rev)
    run curl -sS -X PUT -H "Authorization: Bearer $ALICE_TOKEN" -H 'content-type: application/json' \
        -d "$(echo "$doc" | jq -c 'del(.versions["1.1.0"]) | .["dist-tags"].latest = "1.0.0"')" \
        "$U/api/npm/npmshared/wpkg/-rev/$rev"
    echo "$output"
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 403 ]
    [[ "$output" == *"no delete permission"* ]]
    # the tarball DELETE npm sends next is refused too
    [ "$(bcode "$ALICE_TOKEN" -X DELETE "/api/npm/npmshared/wpkg/-/wpkg-1.1.0.tgz/-rev/$rev")" = 403 ]
    [ "$(versions npmshared wpkg)" = 1.0.0,1.1.0 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$U/api/storage/npmshared/wpkg/-/wpkg-1.1.0.tgz")" = 200 ]
    # with delete it works (bob on npmsecret), and is audited
    [ "$(publish_as "$BOB_TOKEN" npmsecret secretpkg 2.0.0)" = 201 ]
    run npm_as bob npmsecret unpublish secretpkg@2.0.0
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(versions npmsecret secretpkg)" = 1.0.0 ]
    run acurl a '/api/audit?action=delete&user=bob'
    [[ "$(echo "$output" | jq -r '.entries[].detail')" == *"unpublish"*"2.0.0"* ]]
}

@test "npm search shows only packages of repositories and paths the caller may read" {
    run npm_as alice npmsecret search --json secretpkg
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq length)" = 0 ]
    run bget "$ALICE_TOKEN" '/api/npm/npmsecret/-/v1/search?text=secret'
    echo "$output"
    [ "$(echo "$output" | jq -c '[(.objects | length), .total]')" = '[0,0]' ]
    # a version whose tarball path is excluded from alice is not shown either
    run bget "$ALICE_TOKEN" '/api/npm/npmshared/-/v1/search?text=tool'
    [ "$(echo "$output" | jq -c '[(.objects | length), .total]')" = '[0,0]' ]
    run bget "$ADMIN_TOKEN" '/api/npm/npmshared/-/v1/search?text=tool'
    [ "$(echo "$output" | jq -r '.objects[0].package.name')" = @internal/tool ]
    # pages count visible packages only
    run bget "$ALICE_TOKEN" '/api/npm/npmshared/-/v1/search?text=&size=2&from=1'
    echo "$output"
    [ "$(echo "$output" | jq -c '[.total, [.objects[].package.name]]')" = '[3,["tagged","wpkg"]]' ]
    run npm_as bob npmsecret search --json secretpkg
    echo "$output"
    [ "$(echo "$output" | jq -r '.[0].name')" = secretpkg ]
}

@test "npm login: failures throttled (429) and audited like Basic auth" {
    local i
    for i in 1 2 3 4 5 6; do
        [ "$(login victim wrong-password -o /dev/null -w '%{http_code}')" = 401 ]
    done
    # the 6th failure started a wait (1 s): even the right password waits, with the JSON error shape
    run login victim "$PW" -w '\n%{http_code}'
    echo "$output"
    [ "$(echo "$output" | tail -1)" = 429 ]
    [[ "$(echo "$output" | head -1 | jq -r '.errors[0].message')" == "too many failed logins"* ]]
    # each later failure doubles it: 2 s, then 4 s (long enough for npm to start)
    sleep 1.1
    [ "$(login victim wrong-password -o /dev/null -w '%{http_code}')" = 401 ]
    sleep 2.1
    [ "$(login victim wrong-password -o /dev/null -w '%{http_code}')" = 401 ]
    # the real client, told not to retry (npm retries a 429 after 10 s)
    printf 'registry=%s/api/npm/npmshared/\n' "$U" >"$SUITE_TMP/victim.npmrc"
    run env npm_config_cache="$SUITE_TMP/npmcache" python3 "$BATS_TEST_DIRNAME"/tools/npm_login.py \
        "$SUITE_TMP/victim.npmrc" "$U/api/npm/npmshared/" victim "$PW" login --fetch-retries=0
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *429* ]]
    grep -q "login for 'victim' from 127.0.0.1 refused: throttled" "$NODE_a_DIR/stderr.log"
    sleep 4
    run env npm_config_cache="$SUITE_TMP/npmcache" python3 "$BATS_TEST_DIRNAME"/tools/npm_login.py \
        "$SUITE_TMP/victim.npmrc" "$U/api/npm/npmshared/" victim "$PW"
    echo "$output"
    [ "$status" -eq 0 ]
    run env NPM_CONFIG_USERCONFIG="$SUITE_TMP/victim.npmrc" npm --cache "$SUITE_TMP/npmcache" whoami
    [ "$output" = victim ]
    run acurl a '/api/audit?action=login_failed&user=victim'
    [ "$(echo "$output" | jq '[.entries[] | select(.detail == "npm login")] | length')" -ge 8 ]
    [ "$(echo "$output" | jq -r '.entries[0].client')" = 127.0.0.1 ]
    run acurl a '/api/audit?action=login&user=victim'
    [ "$(echo "$output" | jq '[.entries[] | select(.detail == "npm login")] | length')" -ge 1 ]
}

# attempt KIND NAME SOURCE-ADDRESS: one failing login (npm's or Basic) from
# its own address (the throttle's 5 free failures per address stay unused);
# prints "status seconds"
attempt() {
    if [ "$1" = npm ]; then
        login "$2" wrong-password1 --interface "$3" -o /dev/null -w '%{http_code} %{time_total}'
    else
        curl -s -o /dev/null -w '%{http_code} %{time_total}' --interface "$3" -u "$2:wrong-password1" \
            "$U/api/repositories"
    fi
}

@test "npm login and Basic auth: unknown names cost what known ones do (no user enumeration)" {
    local i kind out known unknown mk mu net
    for i in 1 2 3 4 5 6 7 8 9; do [ "$(mkuser "k$i")" = 201 ]; done
    for kind in npm basic; do
        known=() unknown=() net=1
        if [ $kind = basic ]; then net=2; fi
        for i in 1 2 3 4 5 6 7 8 9; do
            out=$(attempt $kind "k$i" "127.0.$net.$i")
            [ "${out% *}" = 401 ]
            known+=("${out#* }")
            out=$(attempt $kind "nosuch$i" "127.0.$((net + 2)).$i")
            [ "${out% *}" = 401 ]
            unknown+=("${out#* }")
        done
        # the fastest of nine attempts: the load of a shared machine only adds time
        mk=$(printf '%s\n' "${known[@]}" | sort -g | head -1)
        mu=$(printf '%s\n' "${unknown[@]}" | sort -g | head -1)
        echo "$kind: seconds for a known name ${known[*]}; an unknown one ${unknown[*]}"
        echo "$kind: fastest known $mk, unknown $mu"
        # the same PBKDF2 either way (before: 40x apart); a generous bound, not a benchmark
        awk -v k="$mk" -v u="$mu" 'BEGIN { exit !(k < 3 * u && u < 3 * k) }'
    done
}

@test "npm tokens expire (a year by default, npm_token_lifetime) and are revoked like any token" {
    run bget "$ALICE_TOKEN" /api/security/token
    echo "$output"
    local life
    life=$(echo "$output" | jq '[.tokens[] | select(.description == "npm login")][0] | .expiry - .issued_at')
    [ "$life" -ge $((365 * 86400 - 60)) ]
    [ "$life" -le $((365 * 86400 + 60)) ]
    # a node told by the environment: two seconds
    export GRANARY_NPM_TOKEN_LIFETIME=2
    start_node b --database-url "$(new_db secnpm_b)"
    unset GRANARY_NPM_TOKEN_LIFETIME
    acurl b -X PUT -H 'Content-Type: application/json' -d '{"rclass":"local","packageType":"npm"}' \
        /api/repositories/npmb >/dev/null
    local tok
    tok=$(curl -sS -X PUT -H 'content-type: application/json' -d "{\"name\":\"admin\",\"password\":\"$NODE_b_PASS\"}" \
        "$NODE_b_URL/api/npm/npmb/-/user/org.couchdb.user:admin" | jq -r .token)
    [ "$(code -H "Authorization: Bearer $tok" "$NODE_b_URL/api/npm/npmb/-/whoami")" = 200 ]
    sleep 2.5
    [ "$(code -H "Authorization: Bearer $tok" "$NODE_b_URL/api/npm/npmb/-/whoami")" = 401 ]
    stop_node b
    # revoked through the token API, the real npm client's token stops working
    printf 'registry=%s/api/npm/npmshared/\n' "$U" >"$SUITE_TMP/rev.npmrc"
    run env npm_config_cache="$SUITE_TMP/npmcache" python3 "$BATS_TEST_DIRNAME"/tools/npm_login.py \
        "$SUITE_TMP/rev.npmrc" "$U/api/npm/npmshared/" alice "$PW"
    echo "$output"
    [ "$status" -eq 0 ]
    run env NPM_CONFIG_USERCONFIG="$SUITE_TMP/rev.npmrc" npm --cache "$SUITE_TMP/npmcache" whoami
    [ "$output" = alice ]
    tok=$(sed -n 's/.*:_authToken=//p' "$SUITE_TMP/rev.npmrc")
    [ "$(code -u "alice:$PW" -d "token=$tok" "$U/api/security/token/revoke")" = 200 ]
    run env NPM_CONFIG_USERCONFIG="$SUITE_TMP/rev.npmrc" npm --cache "$SUITE_TMP/npmcache" whoami
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *E401* ]]
}

@test "npm bodies: a huge Content-Length with few bytes sent allocates nothing up front" {
    local rss0 data0 ready=$SUITE_TMP/held.ready
    rss0=$(vm VmRSS) data0=$(vm VmData)
    # eight publishes each announcing 60 MB (under the limit), sending 100 bytes, then waiting
    python3 "$BATS_TEST_DIRNAME"/tools/npm_bodies.py hold "$NODE_a_PORT" "admin:$NODE_a_PASS" \
        /api/npm/npmshared/big 60000000 100 8 30 "$ready" &
    local holder=$!
    for i in $(seq 100); do
        if [ -f "$ready" ]; then break; fi
        sleep 0.1
    done
    sleep 1
    local rss1 data1
    rss1=$(vm VmRSS) data1=$(vm VmData)
    kill "$holder"
    wait "$holder" || true
    echo "VmRSS ${rss0} -> ${rss1} kB, VmData ${data0} -> ${data1} kB"
    [ -f "$ready" ]
    [ $((rss1 - rss0)) -lt 32768 ]   # 480 MB announced, not allocated
    [ $((data1 - data0)) -lt 65536 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$U/api/system/ping")" = 200 ]
}

@test "npm bodies: over the per-body limit 413, beyond the process budget 503 (JSON); then publishing works" {
    # above the per-body limit: refused before the body
    run python3 "$BATS_TEST_DIRNAME"/tools/npm_bodies.py status "$NODE_a_PORT" "admin:$NODE_a_PASS" \
        /api/npm/npmshared/big 70000000
    echo "$output"
    [[ "$output" == "HTTP/1.1 413"* ]]
    [ "$(echo "$output" | sed -n 2p | jq -r '.errors[0].status')" = 413 ]
    # four bodies of 63 MB held in memory use the budget (256 MiB) up: a fifth is refused
    local ready=$SUITE_TMP/budget.ready
    python3 "$BATS_TEST_DIRNAME"/tools/npm_bodies.py hold "$NODE_a_PORT" "admin:$NODE_a_PASS" \
        /api/npm/npmshared/big 63000000 62000000 4 60 "$ready" &
    local holder=$!
    for i in $(seq 600); do
        if [ -f "$ready" ]; then break; fi
        sleep 0.1
    done
    sleep 0.5
    run python3 "$BATS_TEST_DIRNAME"/tools/npm_bodies.py status "$NODE_a_PORT" "admin:$NODE_a_PASS" \
        /api/npm/npmshared/big 63000000
    echo "$output"
    kill "$holder"
    wait "$holder" || true
    [ -f "$ready" ]
    [[ "$output" == "HTTP/1.1 503"* ]]
    [ "$(echo "$output" | sed -n 2p | jq -r '.errors[0].status')" = 503 ]
    # the held bodies give their memory back as their connections close
    local c
    for i in $(seq 50); do
        c=$(publish_as "$ADMIN_TOKEN" npmshared after 1.0.0)
        if [ "$c" = 201 ]; then break; fi
        sleep 0.2
    done
    [ "$c" = 201 ]
    mkdir -p "$SUITE_TMP/p/small"
    cd "$SUITE_TMP/p/small"
    echo '{"name":"small","version":"1.0.0"}' >package.json
    run npm_as admin npmshared publish
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(bcode "$ADMIN_TOKEN" /api/npm/npmshared/big)" = 404 ]
}

@test "dist-tags: adding one needs write, moving or removing one needs delete" {
    run npm_as alice npmshared dist-tag add tagged@1.0.0 stable
    echo "$output"
    [ "$status" -eq 0 ]
    run npm_as alice npmshared dist-tag add tagged@1.0.0 latest
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *403* ]]
    run npm_as alice npmshared dist-tag rm tagged stable
    echo "$output"
    [ "$status" -ne 0 ]
    [ "$(bget "$ADMIN_TOKEN" /api/npm/npmshared/-/package/tagged/dist-tags | jq -c .)" = '{"latest":"2.0.0","stable":"1.0.0"}' ]
    run curl -sS -X PUT -H "Authorization: Bearer $ALICE_TOKEN" -H 'content-type: application/json' \
        -d '"2.0.0"' "$U/api/npm/npmshared/-/package/tagged/dist-tags/stable"
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 403 ]
    # re-pointing a tag at the version it names changes nothing and is fine
    [ "$(bcode "$ALICE_TOKEN" -X PUT -H 'content-type: application/json' -d '"1.0.0"' \
        /api/npm/npmshared/-/package/tagged/dist-tags/stable)" = 201 ]
    # bob, who may delete in npmsecret, may move and remove tags there
    run npm_as bob npmsecret dist-tag add secretpkg@1.0.0 beta
    [ "$status" -eq 0 ]
    run npm_as bob npmsecret dist-tag rm secretpkg beta
    [ "$status" -eq 0 ]
}

@test "npm deprecate replaces a version's manifest: it needs delete" {
    run npm_as alice npmshared deprecate old@1.0.0 "do not use"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *403* ]]
    [ "$(bget "$ADMIN_TOKEN" /api/npm/npmshared/old | jq -r '.versions["1.0.0"].deprecated')" = null ]
    run npm_as bob npmsecret deprecate secretpkg@1.0.0 "do not use"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(bget "$BOB_TOKEN" /api/npm/npmsecret/secretpkg | jq -r '.versions["1.0.0"].deprecated')" = "do not use" ]
}

@test "a scoped package whose tarball path is excluded: hidden from reads, refused to publish" {
    # alice's target excludes @internal/**/*.tgz: the path the versions are stored at
    [ "$(bcode "$ALICE_TOKEN" /api/npm/npmshared/@internal%2ftool)" = 404 ]
    [ "$(bcode "$ALICE_TOKEN" /api/npm/npmshared/%40internal%2Ftool/1.0.0)" = 404 ]
    [ "$(bcode "$ALICE_TOKEN" /api/npm/npmshared/-/package/@internal%2ftool/dist-tags)" = 404 ]
    [ "$(bcode "$ALICE_TOKEN" /api/npm/npmshared/@internal/tool/-/tool-1.0.0.tgz)" = 403 ]
    mkdir -p "$SUITE_TMP/p/tool"
    cd "$SUITE_TMP/p/tool"
    echo '{"name":"@internal/tool","version":"2.0.0"}' >package.json
    run npm_as alice npmshared publish
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *403* ]]
    [ "$(versions npmshared @internal/tool)" = 1.0.0 ]
    [ "$(code -u "admin:$NODE_a_PASS" "$U/api/storage/npmshared/@internal/tool/-/tool-2.0.0.tgz")" = 404 ]
    # an unpublish or tag move from a document that lacks hidden versions keeps them
    [ "$(publish_as "$ADMIN_TOKEN" npmshared mixed 1.0.0)" = 201 ]
    [ "$(mkuser carol)" = 201 ]
    acurl a -X PUT -H 'Content-Type: application/json' -o /dev/null -d '{"repo":{
        "repositories":["npmshared"],"include-patterns":["mixed/**"],"exclude-patterns":["**/mixed-1.0.0.tgz"],
        "actions":{"users":{"carol":["delete"]}}}}' /api/v2/security/permissions/t-carol
    local ctok doc
    ctok=$(login carol "$PW" | jq -r .token)
    [ "$(publish_as "$ctok" npmshared mixed 1.1.0)" = 201 ]
    doc=$(bget "$ctok" '/api/npm/npmshared/mixed?write=true')
    [ "$(echo "$doc" | jq -r '.versions | keys | join(",")')" = 1.1.0 ]
    [ "$(bcode "$ctok" -X PUT -H 'content-type: application/json' -d "$(echo "$doc" | jq -c '.versions = {} | .["dist-tags"] = {}')" \
        "/api/npm/npmshared/mixed/-rev/$(echo "$doc" | jq -r ._rev)")" = 200 ]
    [ "$(versions npmshared mixed)" = 1.0.0 ]
}

@test "npm publish over a file already at the tarball's path needs delete" {
    echo "not from npm" >"$SUITE_TMP/clash.tgz"
    acurl a -T "$SUITE_TMP/clash.tgz" /npmshared/clash/-/clash-1.0.0.tgz >/dev/null
    mkpublish clash 1.0.0 "alice's bytes" >"$SUITE_TMP/clash.json"
    run curl -sS -X PUT -H "Authorization: Bearer $ALICE_TOKEN" -H 'content-type: application/json' \
        --data-binary @"$SUITE_TMP/clash.json" "$U/api/npm/npmshared/clash"
    echo "$output"
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 403 ]
    [ "$(curl -sS -u "admin:$NODE_a_PASS" "$U/npmshared/clash/-/clash-1.0.0.tgz")" = "not from npm" ]
    [ "$(bcode "$ADMIN_TOKEN" /api/npm/npmshared/clash)" = 404 ]
    # a publish of a new version is audited as a deploy of its tarball
    [ "$(publish_as "$ALICE_TOKEN" npmshared fresh 1.0.0)" = 201 ]
    run acurl a '/api/audit?action=deploy&user=alice'
    [[ "$(echo "$output" | jq -r '.entries[] | .repo + "/" + .path')" == *"npmshared/fresh/-/fresh-1.0.0.tgz"* ]]
}

@test "a repository the caller cannot read: every npm route refuses" {
    [ "$(bcode "$ALICE_TOKEN" /api/npm/npmsecret/secretpkg)" = 403 ]
    [ "$(bcode "$ALICE_TOKEN" /api/npm/npmsecret/secretpkg/1.0.0)" = 403 ]
    [ "$(bcode "$ALICE_TOKEN" /api/npm/npmsecret/secretpkg/-/secretpkg-1.0.0.tgz)" = 403 ]
    [ "$(bcode "$ALICE_TOKEN" /api/npm/npmsecret/-/package/secretpkg/dist-tags)" = 403 ]
    [ "$(publish_as "$ALICE_TOKEN" npmsecret secretpkg 9.0.0)" = 403 ]
    [ "$(bcode "$ALICE_TOKEN" -X DELETE /api/npm/npmsecret/secretpkg/-rev/1-0)" = 403 ]
    [ "$(versions npmsecret secretpkg)" = 1.0.0 ]
}

@test "bad npm input: 4xx with the JSON error shape, nothing changes" {
    run curl -sS -X PUT -H 'content-type: application/json' -d '{"name":"alice"}' \
        "$U/api/npm/npmshared/-/user/org.couchdb.user:alice"
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 400 ]
    run curl -sS -X PUT -H 'content-type: application/json' \
        -d "{\"name\":\"$(printf 'x%.0s' $(seq 200))\",\"password\":\"$PW\"}" \
        "$U/api/npm/npmshared/-/user/org.couchdb.user:x"
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 400 ]
    run bget "$ADMIN_TOKEN" -X PUT -H 'content-type: application/json' -d '{"versions":' \
        /api/npm/npmshared/wpkg/-rev/1-0
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 400 ]
    run bget "$ADMIN_TOKEN" -X PUT -H 'content-type: application/json' -d '[]' /api/npm/npmshared/old
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 400 ]
    run bget "$ADMIN_TOKEN" -X PUT -H 'content-type: application/json' -d '{"v":1}' \
        /api/npm/npmshared/-/package/tagged/dist-tags/x
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 400 ]
    run bget "$ADMIN_TOKEN" -X DELETE /api/npm/npmshared/-/package/tagged/dist-tags/latest
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 400 ]
    [ "$(versions npmshared wpkg)" = 1.0.0,1.1.0 ]
    [ "$(bget "$ADMIN_TOKEN" /api/npm/npmshared/-/package/tagged/dist-tags | jq -r .latest)" = 2.0.0 ]
}
