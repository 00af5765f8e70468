#!/usr/bin/env bats
# Remote repositories (docs/remote.md) on three nodes sharing one PostgreSQL,
# with nginx on loopback as the upstream: the settings, the cache and its
# -cache view, checksums, the negative cache, offline and failing upstreams,
# metadata with its time to live and served stale, npm packuments, the one
# upstream GET for 50 clients across the nodes, and the fetching node killed
# mid-transfer.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db remote)
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    start_cluster_node n3 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL
    # the upstream's files
    export UP=$SUITE_TMP/up
    mkdir -p "$UP/root/files/dir" "$UP/root/bad" "$UP/root/big" "$UP/root/slow" \
        "$UP/root/mvn/com/ex/lib/1.0" "$UP/root/npm/ok/-" "$UP/root/npm/bad/-" "$UP/tmp"
    echo "hello from upstream" >"$UP/root/files/hello.txt"
    echo "in a folder" >"$UP/root/files/dir/a.txt"
    echo "gone soon" >"$UP/root/files/neg.txt"
    echo "the wrong bytes" >"$UP/root/bad/small.txt"
    head -c $((300 * 1024)) /dev/urandom >"$UP/root/bad/large.bin"
    head -c $((100 << 20)) /dev/urandom >"$UP/root/big/big.bin"
    head -c $((100 << 20)) /dev/urandom >"$UP/root/slow/big.bin"
    echo "<html><body>a portal page</body></html>" >"$UP/root/files/portal.jar"
    # a Maven upstream: a jar with its .sha1, one whose .sha1 is wrong, metadata
    echo "jar bytes" >"$UP/root/mvn/com/ex/lib/1.0/lib-1.0.jar"
    sha1sum "$UP/root/mvn/com/ex/lib/1.0/lib-1.0.jar" | cut -d' ' -f1 >"$UP/root/mvn/com/ex/lib/1.0/lib-1.0.jar.sha1"
    echo "other jar" >"$UP/root/mvn/com/ex/lib/1.0/lib-1.0-sources.jar"
    echo "0000000000000000000000000000000000000000" >"$UP/root/mvn/com/ex/lib/1.0/lib-1.0-sources.jar.sha1"
    mvn_meta 1.0 >"$UP/root/mvn/com/ex/lib/maven-metadata.xml"
    # an npm upstream as static files: packuments and tarballs (one tarball's shasum is wrong)
    mk_npm ok "$UP/root/npm" good
    mk_npm bad "$UP/root/npm" wrong
    export UP_PORT=$(free_port)
    cat >"$UP/nginx.conf" <<EOF
worker_processes 2;
pid $UP/nginx.pid;
error_log $UP/error.log warn;
events { worker_connections 1024; }
http {
    access_log $UP/access.log;
    client_body_temp_path $UP/tmp; proxy_temp_path $UP/tmp; fastcgi_temp_path $UP/tmp;
    uwsgi_temp_path $UP/tmp; scgi_temp_path $UP/tmp;
    server {
        listen 127.0.0.1:$UP_PORT;
        root $UP/root;
        location /bad/ { add_header X-Checksum-Sha256 0000000000000000000000000000000000000000000000000000000000000000; }
        location /big/ { limit_rate 200m; }
        location /slow/ { limit_rate 25m; }
        location = /files/portal.jar { default_type text/html; }
        location = /fail/503.bin { return 503; }
        location = /npm/ok { default_type application/json; alias $UP/root/npm/ok.json; }
        location = /npm/bad { default_type application/json; alias $UP/root/npm/bad.json; }
        location /maven2/ { alias /usr/share/maven-repo/; }
    }
}
EOF
    up_start
    # an upstream that accepts connections and never answers (timeouts)
    export HOLE_PORT=$(free_port)
    python3 -c 'import socket,sys,time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64); held = []
while True:
    c, _ = s.accept(); held.append(c)' "$HOLE_PORT" &
    echo $! >>"$SUITE_TMP/pids"
    mkremote gen generic "http://127.0.0.1:$UP_PORT/files"
}
teardown_file() {
    up_stop
    cleanup_suite
}

up_start() {
    nginx -p "$UP" -c "$UP/nginx.conf"
    wait_until 10 test -s "$UP/nginx.pid"
}
up_stop() {
    if [ -s "$UP/nginx.pid" ]; then
        kill "$(cat "$UP/nginx.pid")" 2>/dev/null
        wait_until 10 pid_gone "$(cat "$UP/nginx.pid")"
    fi
    rm -f "$UP/nginx.pid"
}
mvn_meta() { # VERSIONS... : an artifact-level maven-metadata.xml of com.ex:lib
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<metadata><groupId>com.ex</groupId><artifactId>lib</artifactId><versioning><versions>'
    for v in "$@"; do printf '<version>%s</version>' "$v"; done
    printf '</versions><lastUpdated>20261201000000</lastUpdated></versioning></metadata>\n'
}
mk_npm() { # NAME DIR good|wrong: a packument NAME.json and its tarball NAME/-/NAME-1.0.0.tgz
    local name=$1 dir=$2 t
    t=$(mktemp -d)
    mkdir -p "$t/package"
    printf '{"name":"%s","version":"1.0.0"}' "$name" >"$t/package/package.json"
    tar -czf "$dir/$name/-/$name-1.0.0.tgz" -C "$t" package
    rm -rf "$t"
    local sha
    sha=$(sha1sum "$dir/$name/-/$name-1.0.0.tgz" | cut -d' ' -f1)
    [ "$3" = good ] || sha=0000000000000000000000000000000000000000
    printf '{"_id":"%s","name":"%s","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"%s","version":"1.0.0","dist":{"shasum":"%s","tarball":"http://elsewhere.invalid/%s/-/%s-1.0.0.tgz"}}},"time":{"created":"2026-12-01T00:00:00.000Z","modified":"2026-12-01T00:00:00.000Z","1.0.0":"2026-12-01T00:00:00.000Z"}}' \
        "$name" "$name" "$name" "$sha" "$name" "$name" >"$dir/$name.json"
}
cget() { curl -sS -u "admin:$PASS" "$@"; }
mkremote() { # KEY TYPE URL [EXTRA-JSON-FIELDS]
    cget -f -X PUT -H 'Content-Type: application/json' \
        -d "{\"rclass\":\"remote\",\"packageType\":\"$2\",\"url\":\"$3\"${4:+,$4}}" \
        "$NODE_n1_URL/api/repositories/$1" >/dev/null
}
upstream_gets() { # PATH: GETs the upstream answered for it
    grep -c "\"GET $1 HTTP" "$UP/access.log" || true
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
psql_q() { psql_db remote "$1"; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
ticket_on() { # REPO NODE: NODE holds the fetch ticket of a path of REPO
    [ "$(psql_q "SELECT node FROM remote_fetches WHERE repo = '$1'")" = "$2" ]
}
fetched_over() { # NODE BYTES: NODE has received more than BYTES from upstreams
    local url v
    eval "url=\$NODE_${1}_URL"
    v=$(cget "$url/api/system/metrics" | awk '$1 == "granary_remote_fetch_bytes_total" { print $2 }')
    [ "${v:-0}" -gt "$2" ]
}

@test "settings: Artifactory's names and defaults, the password never shown, bad values 400" {
    run cget -X PUT -H 'Content-Type: application/json' \
        -d "{\"rclass\":\"remote\",\"packageType\":\"generic\",\"url\":\"http://127.0.0.1:$UP_PORT/files/\",\"username\":\"u\",\"password\":\"s3cret-pw\",\"retrievalCachePeriodSecs\":60}" \
        "$NODE_n2_URL/api/repositories/withpw"
    [[ "$output" == *"Successfully created"* ]]
    run cget "$NODE_n3_URL/api/repositories/withpw"
    echo "$output"
    [ "$(echo "$output" | jq -r .rclass)" = remote ]
    [ "$(echo "$output" | jq -r .url)" = "http://127.0.0.1:$UP_PORT/files" ]
    [ "$(echo "$output" | jq -r .retrievalCachePeriodSecs)" = 60 ]
    [ "$(echo "$output" | jq -r .missedRetrievalCachePeriodSecs)" = 1800 ]
    [ "$(echo "$output" | jq -r .storeArtifactsLocally)" = true ]
    [ "$(echo "$output" | jq -r .remoteRepoChecksumPolicyType)" = generate-if-absent ]
    [ "$(echo "$output" | jq -r .passwordSet)" = true ]
    [[ "$output" != *s3cret-pw* ]]
    [[ "$output" != *'"password"'* ]]
    # stored sealed: the database holds no clear password either
    run psql_q "SELECT settings->>'password' FROM repositories WHERE key = 'withpw'"
    [[ "$output" == sealed:v1:* ]]
    [[ "$output" != *s3cret-pw* ]]
    # the list shows the upstream's url, as Artifactory's does
    [ "$(cget "$NODE_n1_URL/api/repositories" | jq -r '.[] | select(.key=="withpw") | .type + " " + .url')" = "REMOTE http://127.0.0.1:$UP_PORT/files" ]
    for bad in '"url":"ftp://x"' '"url":"http://u:p@host/"' '"socketTimeoutMillis":5' \
        '"offline":"yes"' '"remoteRepoChecksumPolicyType":"pass-thru"' '"retrievalCachePeriodSecs":-1'; do
        run code -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
            -d "{\"rclass\":\"remote\",\"packageType\":\"generic\",\"url\":\"http://h/\",$bad}" \
            "$NODE_n1_URL/api/repositories/badremote"
        [ "$output" = 400 ] || { echo "accepted: $bad"; return 1; }
    done
    [ "$(code -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d '{"rclass":"remote","packageType":"generic"}' "$NODE_n1_URL/api/repositories/badremote")" = 400 ]
    # a format whose client API has no remote or virtual side refuses them
    run cget -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"remote","packageType":"pypi","url":"http://h/"}' "$NODE_n1_URL/api/repositories/pyremote"
    [[ "$output" == *'"status":400'*"supports only rclass local"* ]]
    run cget -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"virtual","packageType":"pypi","repositories":[]}' "$NODE_n1_URL/api/repositories/pyvirtual"
    [[ "$output" == *'"status":400'*"supports only rclass local"* ]]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/api/repositories/pyremote")" = 404 ]
    run cget -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"remote","packageType":"docker","url":"http://h/"}' "$NODE_n1_URL/api/repositories/dremote"
    [[ "$output" == *'"status":400'*"supports only rclass local"* ]]
    # the rclass of a repository does not change
    [ "$(code -u "admin:$PASS" -X POST -H 'Content-Type: application/json' -d '{"rclass":"local"}' "$NODE_n1_URL/api/repositories/withpw")" = 400 ]
    # a remote is a cache: no deploys
    run cget -X PUT --data-binary x "$NODE_n1_URL/withpw/x.txt"
    [[ "$output" == *'"status":405'* ]]
}

@test "the first GET streams from the upstream, the next ones are the cache's on every node" {
    run cget -f "$NODE_n1_URL/gen/hello.txt"
    [ "$output" = "hello from upstream" ]
    [ "$(upstream_gets /files/hello.txt)" = 1 ]
    for n in n1 n2 n3; do
        eval "url=\$NODE_${n}_URL"
        run cget -f -D - "$url/gen/hello.txt"
        [[ "$output" == *"hello from upstream"* ]]
        [[ "$output" == *"X-Checksum-Sha256: "* ]]
    done
    [ "$(upstream_gets /files/hello.txt)" = 1 ]
    # a checksum file is the cache's, from the stored checksums
    [ "$(cget -f "$NODE_n2_URL/gen/hello.txt.sha256")" = "$(sha "$UP/root/files/hello.txt")" ]
    [ "$(upstream_gets /files/hello.txt.sha256)" = 0 ]
}

@test "<key>-cache: the cached files in downloads, the storage API and search; a delete makes the next GET fetch again" {
    cget -f "$NODE_n1_URL/gen/dir/a.txt" >/dev/null
    [ "$(cget -f "$NODE_n2_URL/gen-cache/dir/a.txt")" = "in a folder" ]
    [ "$(cget "$NODE_n3_URL/api/storage/gen-cache/dir/a.txt" | jq -r .checksums.sha256)" = "$(sha "$UP/root/files/dir/a.txt")" ]
    run cget "$NODE_n3_URL/api/storage/gen-cache/dir"
    [ "$(echo "$output" | jq -r '.children[0].uri')" = /a.txt ]
    run cget "$NODE_n1_URL/api/search/artifact?name=a.txt&repos=gen-cache"
    [ "$(echo "$output" | jq -r '.results | length')" = 1 ]
    # the -cache view never fetches
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/gen-cache/files-never-fetched.txt")" = 404 ]
    # delete (delete permission), then the next GET fetches again
    [ "$(code -u "admin:$PASS" -X DELETE "$NODE_n2_URL/gen-cache/dir/a.txt")" = 204 ]
    [ "$(code -u "admin:$PASS" "$NODE_n3_URL/gen-cache/dir/a.txt")" = 404 ]
    [ "$(upstream_gets /files/dir/a.txt)" = 1 ]
    [ "$(cget -f "$NODE_n3_URL/gen/dir/a.txt")" = "in a folder" ]
    [ "$(upstream_gets /files/dir/a.txt)" = 2 ]
}

@test "a checksum the upstream publishes that the bytes do not have: 502, nothing cached, remembered" {
    mkremote badsum generic "http://127.0.0.1:$UP_PORT/bad"
    # a small file is held back whole: the answer is the 502 itself
    run cget -D - "$NODE_n1_URL/badsum/small.txt"
    echo "$output"
    [[ "$output" == *"HTTP/1.1 502"* ]]
    [[ "$output" == *"checksum mismatch"* ]]
    # a larger one started as a 200 whose last bytes never come: the client sees a failure
    run curl -sS -u "admin:$PASS" -o "$SUITE_TMP/large.out" -w '%{http_code}' "$NODE_n2_URL/badsum/large.bin"
    [ "$status" -ne 0 ]
    # (no file at all: the cut came before the first byte, as under the sanitizers)
    [ "$(stat -c %s "$SUITE_TMP/large.out" 2>/dev/null || echo 0)" -lt $((300 * 1024)) ]
    [ "$(psql_q "SELECT count(*) FROM artifacts WHERE repo = 'badsum'")" = 0 ]
    # within missedRetrievalCachePeriodSecs, the reason without asking the upstream again
    run cget "$NODE_n3_URL/badsum/large.bin"
    [[ "$output" == *'"status":502'*"checksum mismatch"* ]]
    [ "$(upstream_gets /bad/large.bin)" = 1 ]
    # ignore-and-generate takes the bytes as they are
    mkremote lax generic "http://127.0.0.1:$UP_PORT/bad" '"remoteRepoChecksumPolicyType":"ignore-and-generate"'
    [ "$(cget -f "$NODE_n1_URL/lax/small.txt")" = "the wrong bytes" ]
    # fail: a file without a published checksum is refused
    mkremote strict generic "http://127.0.0.1:$UP_PORT/files" '"remoteRepoChecksumPolicyType":"fail"'
    run cget "$NODE_n1_URL/strict/hello.txt"
    [[ "$output" == *'"status":502'*"no checksum"* ]]
}

@test "Maven: a jar checked against its .sha1, a wrong .sha1 is 502; metadata kept for its time to live, then stale when the upstream is down" {
    mkremote mvnr maven "http://127.0.0.1:$UP_PORT/mvn" '"retrievalCachePeriodSecs":2'
    [ "$(cget -f "$NODE_n1_URL/mvnr/com/ex/lib/1.0/lib-1.0.jar")" = "jar bytes" ]
    [ "$(upstream_gets /mvn/com/ex/lib/1.0/lib-1.0.jar.sha1)" = 1 ]
    run cget "$NODE_n2_URL/mvnr/com/ex/lib/1.0/lib-1.0-sources.jar"
    [[ "$output" == *'"status":502'*"sha1"* ]]
    # metadata: fetched, then the cache's until retrievalCachePeriodSecs
    run cget -f "$NODE_n1_URL/mvnr/com/ex/lib/maven-metadata.xml"
    [[ "$output" == *"<version>1.0</version>"* ]]
    mvn_meta 1.0 2.0 >"$UP/root/mvn/com/ex/lib/maven-metadata.xml"
    run cget -f "$NODE_n2_URL/mvnr/com/ex/lib/maven-metadata.xml"
    [[ "$output" != *"<version>2.0</version>"* ]]
    [ "$(upstream_gets /mvn/com/ex/lib/maven-metadata.xml)" = 1 ]
    # the time to live is the behaviour here: wait it out
    sleep 2.2
    run cget -f "$NODE_n3_URL/mvnr/com/ex/lib/maven-metadata.xml"
    [[ "$output" == *"<version>2.0</version>"* ]]
    [ "$(upstream_gets /mvn/com/ex/lib/maven-metadata.xml)" = 2 ]
    # expired, and the upstream down: the stale copy, saying so
    sleep 2.2
    up_stop
    run cget -D - "$NODE_n1_URL/mvnr/com/ex/lib/maven-metadata.xml"
    up_start
    echo "$output"
    [[ "$output" == *"HTTP/1.1 200"* ]]
    [[ "$output" == *"X-Granary-Stale: 1"* ]]
    [[ "$output" == *"Warning: 110"* ]]
    [[ "$output" == *"<version>2.0</version>"* ]]
}

@test "npm: packuments with tarballs pointing at granary, tarballs checked against dist.shasum" {
    mkremote npmr npm "http://127.0.0.1:$UP_PORT/npm"
    run cget -f "$NODE_n1_URL/api/npm/npmr/ok"
    echo "$output"
    [ "$(echo "$output" | jq -r '.versions["1.0.0"].dist.tarball')" = "$NODE_n1_URL/api/npm/npmr/ok/-/ok-1.0.0.tgz" ]
    run cget -f -H 'Accept: application/vnd.npm.install-v1+json' "$NODE_n2_URL/api/npm/npmr/ok"
    [ "$(echo "$output" | jq -r '."dist-tags".latest')" = 1.0.0 ]
    cget -f -o "$SUITE_TMP/ok.tgz" "$NODE_n2_URL/api/npm/npmr/ok/-/ok-1.0.0.tgz"
    cmp "$SUITE_TMP/ok.tgz" "$UP/root/npm/ok/-/ok-1.0.0.tgz"
    # kept where Artifactory keeps it
    [ "$(cget "$NODE_n3_URL/api/storage/npmr-cache/.npm/ok/package.json" | jq -r .repo)" = npmr ]
    cget -f "$NODE_n1_URL/api/npm/npmr/bad" >/dev/null
    run cget "$NODE_n3_URL/api/npm/npmr/bad/-/bad-1.0.0.tgz"
    [[ "$output" == *'"status":502'*"sha1"* ]]
    [ "$(code -u "admin:$PASS" -X PUT -H 'content-type: application/json' -d '{}' "$NODE_n1_URL/api/npm/npmr/ok")" = 405 ]
}

@test "npm: a tarball URL names each client's own host; what is cached never holds one client's X-Forwarded-* host" {
    mkremote npmfw npm "http://127.0.0.1:$UP_PORT/npm"
    # the first request, the one that fetches and caches, comes through a proxy naming another host
    run cget -f -H 'X-Forwarded-Host: proxy-a.example' -H 'X-Forwarded-Proto: https' "$NODE_n1_URL/api/npm/npmfw/ok"
    [ "$(echo "$output" | jq -r '.versions["1.0.0"].dist.tarball')" = "https://proxy-a.example/api/npm/npmfw/ok/-/ok-1.0.0.tgz" ]
    [ "$(upstream_gets /npm/ok)" -ge 1 ]
    # every other client gets its own host, from the cache, on every node, full, abbreviated and per version
    local n url before
    before=$(upstream_gets /npm/ok)
    for n in n1 n2 n3; do
        eval "url=\$NODE_${n}_URL"
        [ "$(cget -f "$url/api/npm/npmfw/ok" | jq -r '.versions["1.0.0"].dist.tarball')" = "$url/api/npm/npmfw/ok/-/ok-1.0.0.tgz" ]
        [ "$(cget -f -H 'Accept: application/vnd.npm.install-v1+json' "$url/api/npm/npmfw/ok" | jq -r '.versions["1.0.0"].dist.tarball')" = "$url/api/npm/npmfw/ok/-/ok-1.0.0.tgz" ]
        [ "$(cget -f "$url/api/npm/npmfw/ok/1.0.0" | jq -r .dist.tarball)" = "$url/api/npm/npmfw/ok/-/ok-1.0.0.tgz" ]
        [ "$(cget -f -H 'X-Forwarded-Host: proxy-b.example' "$url/api/npm/npmfw/ok" | jq -r '.versions["1.0.0"].dist.tarball')" = "http://proxy-b.example/api/npm/npmfw/ok/-/ok-1.0.0.tgz" ]
    done
    [ "$(upstream_gets /npm/ok)" = "$before" ]
    # the cached packument is the upstream's as it was sent: no client's host in it
    run cget -f "$NODE_n2_URL/npmfw-cache/.npm/ok/package.json"
    [ "$(echo "$output" | jq -r '.versions["1.0.0"].dist.tarball')" = "http://elsewhere.invalid/ok/-/ok-1.0.0.tgz" ]
    [[ "$output" != *proxy-a.example* ]]
}

@test "npm: an expired packument with the repository offline is served stale, saying so; a tarball never fetched is 404" {
    mkremote npmoff npm "http://127.0.0.1:$UP_PORT/npm" '"retrievalCachePeriodSecs":1'
    cget -f "$NODE_n1_URL/api/npm/npmoff/ok" >/dev/null
    cget -f -X POST -H 'Content-Type: application/json' -d '{"offline":true}' "$NODE_n1_URL/api/repositories/npmoff" >/dev/null
    # the time to live is the behaviour here: wait it out
    sleep 1.2
    local before
    before=$(wc -l <"$UP/access.log")
    run cget -D - "$NODE_n2_URL/api/npm/npmoff/ok"
    echo "$output"
    [[ "$output" == *"HTTP/1.1 200"* ]]
    [[ "$output" == *"X-Granary-Stale: 1"* ]]
    [[ "$output" == *"Warning: 110"* ]]
    [[ "$output" == *"$NODE_n2_URL/api/npm/npmoff/ok/-/ok-1.0.0.tgz"* ]]
    [ "$(code -u "admin:$PASS" "$NODE_n3_URL/api/npm/npmoff/ok/-/ok-1.0.0.tgz")" = 404 ]
    [ "$(wc -l <"$UP/access.log")" = "$before" ]
}

@test "the upstream's errors: 404 is 404 and remembered, 5xx is 502, a timeout 504, HTML for a jar refused" {
    run cget "$NODE_n1_URL/gen/nothing-here.txt"
    [[ "$output" == *'"status":404'* ]]
    [ "$(code -u "admin:$PASS" "$NODE_n2_URL/gen/nothing-here.txt")" = 404 ]
    [ "$(code -u "admin:$PASS" "$NODE_n3_URL/gen/nothing-here.txt")" = 404 ]
    [ "$(upstream_gets /files/nothing-here.txt)" = 1 ]
    # the negative cache: a file that appears upstream is not seen within the period
    echo "late" >"$UP/root/files/nothing-here.txt"
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/gen/nothing-here.txt")" = 404 ]
    [ "$(upstream_gets /files/nothing-here.txt)" = 1 ]
    mkremote fails generic "http://127.0.0.1:$UP_PORT/fail"
    run cget "$NODE_n1_URL/fails/503.bin"
    [[ "$output" == *'"status":502'*"503"* ]]
    mkremote hole generic "http://127.0.0.1:$HOLE_PORT" '"socketTimeoutMillis":500'
    run cget "$NODE_n2_URL/hole/x.bin"
    [[ "$output" == *'"status":504'* ]]
    run cget "$NODE_n1_URL/gen/portal.jar"
    [[ "$output" == *'"status":502'*"blockMismatchingMimeTypes"* ]]
}

@test "offline: the cache only; the upstream stopped: cached files served, the rest 502 and assumed offline" {
    cget -f "$NODE_n1_URL/gen/hello.txt" >/dev/null
    cget -f -X POST -H 'Content-Type: application/json' -d '{"offline":true}' "$NODE_n1_URL/api/repositories/gen" >/dev/null
    [ "$(cget -f "$NODE_n2_URL/gen/hello.txt")" = "hello from upstream" ]
    local before
    before=$(wc -l <"$UP/access.log")
    run cget "$NODE_n3_URL/gen/neg.txt"
    [[ "$output" == *'"status":404'*offline* ]]
    [ "$(wc -l <"$UP/access.log")" = "$before" ]
    cget -f -X POST -H 'Content-Type: application/json' -d '{"offline":false}' "$NODE_n1_URL/api/repositories/gen" >/dev/null
    up_stop
    [ "$(cget -f "$NODE_n3_URL/gen/hello.txt")" = "hello from upstream" ]
    run cget "$NODE_n1_URL/gen/neg.txt"
    [[ "$output" == *'"status":502'*unreachable* ]]
    # assumedOfflinePeriodSecs: the next miss is answered at once, on every node
    run cget "$NODE_n2_URL/gen/neg2.txt"
    up_start
    [[ "$output" == *'"status":502'*"assumed offline"* ]]
}

@test "50 concurrent clients on 3 nodes, one uncached 100 MiB file: one upstream GET, every client the right sha256" {
    mkremote bigr generic "http://127.0.0.1:$UP_PORT/big"
    local want i n t0
    want=$(sha "$UP/root/big/big.bin")
    t0=$(date +%s%N)
    for i in $(seq 50); do
        n=$((i % 3 + 1))
        eval "url=\$NODE_n${n}_URL"
        (curl -sS -u "admin:$PASS" "$url/bigr/big.bin" | sha256sum | cut -d' ' -f1 >"$SUITE_TMP/client.$i") &
    done
    wait
    echo "# 50 clients x 100 MiB: $(ms_since "$t0") ms" >&3
    for i in $(seq 50); do
        [ "$(cat "$SUITE_TMP/client.$i")" = "$want" ] || { echo "client $i got $(cat "$SUITE_TMP/client.$i")"; return 1; }
    done
    [ "$(upstream_gets /big/big.bin)" = 1 ]
    [ "$(psql_q "SELECT sha256 FROM artifacts WHERE repo = 'bigr'")" = "$want" ]
}

# fetch_retry OUT NODE...: GET /slowr/big.bin through the first node, then the
# next ones when a node fails (a client retrying), writing the sha256 to OUT
fetch_retry() {
    local out=$1 attempt n
    shift
    for attempt in 1 2 3; do
        for n in "$@"; do
            eval "url=\$NODE_${n}_URL"
            if curl -sSf -u "admin:$PASS" -o "$out.body" "$url/slowr/big.bin" 2>/dev/null; then
                sha "$out.body" >"$out"
                rm -f "$out.body"
                return 0
            fi
        done
    done
    echo failed >"$out"
}

@test "kill -9 of the fetching node mid-transfer: the clients retry and succeed, no partial file is cached" {
    mkremote slowr generic "http://127.0.0.1:$UP_PORT/slow"
    local want i pids=()
    want=$(sha "$UP/root/slow/big.bin")
    for i in 1 2 3; do
        fetch_retry "$SUITE_TMP/kill.a$i" n1 n2 n3 &
        pids+=($!)
    done
    # n1 holds the ticket and bytes are arriving: then the others ask
    wait_until 30 ticket_on slowr n1
    for i in 1 2 3; do
        fetch_retry "$SUITE_TMP/kill.b$i" n2 n3 &
        pids+=($!)
        fetch_retry "$SUITE_TMP/kill.c$i" n3 n2 &
        pids+=($!)
    done
    wait_until 30 fetched_over n1 $((20 << 20))
    kill -9 "$(node_pid n1)"
    wait "${pids[@]}"
    for f in a1 a2 a3 b1 b2 b3 c1 c2 c3; do
        [ "$(cat "$SUITE_TMP/kill.$f")" = "$want" ] || { echo "$f: $(cat "$SUITE_TMP/kill.$f")"; return 1; }
    done
    # another node took the fetch over; what is stored is whole
    [ "$(upstream_gets /slow/big.bin)" = 2 ]
    [ "$(psql_q "SELECT count(*) || ' ' || min(sha256) || ' ' || min(size) FROM artifacts WHERE repo = 'slowr'")" = "1 $want $((100 << 20))" ]
    [ "$(psql_q "SELECT count(*) FROM remote_fetches")" = 0 ]
    # n1 comes back with nothing of the partial fetch left in its filestore
    restart_cluster_node n1 "$DB"
    [ -z "$(ls -A "$SUITE_TMP/node-n1/filestore/_pre")" ]
}
