#!/usr/bin/env bats
# The OCI registry (docs/oci.md): three nodes behind nginx (granary's own
# proxy-config), real clients (skopeo, the docker engine, podman), the
# distribution spec's endpoints and errors (tools/oci_conformance.py), a
# 200 MiB layer, 20 concurrent pushes sharing layers, chunks of one upload
# through different nodes, a node killed during an upload and during a
# pull, garbage collection of unreferenced blobs, the layout in the storage
# API, and who may do what.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db oci)
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    start_cluster_node n3 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL NODE_n1_PORT NODE_n2_PORT NODE_n3_PORT
    for r in docker-local docker-other; do
        curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
            -d '{"rclass":"local","packageType":"docker"}' "$NODE_n1_URL/api/repositories/$r" >/dev/null
    done
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"oci"}' "$NODE_n1_URL/api/repositories/oci-alias" >/dev/null
    export PW=password123
    for u in reader pusher; do
        curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -o /dev/null \
            -d "{\"password\":\"$PW\",\"email\":\"$u@example.com\",\"groups\":[]}" \
            "$NODE_n1_URL/api/security/users/$u"
    done
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -o /dev/null -d '{"repo":{
        "repositories":["docker-local"],"include-patterns":["**"],
        "actions":{"users":{"reader":["read"],"pusher":["read","write"]}}}}' \
        "$NODE_n1_URL/api/v2/security/permissions/t-docker"
    printf '%s\n' "$PASS" >"$SUITE_TMP/admin.pass"
    export LB=$SUITE_TMP/lb
    mkdir -p "$LB"
    export LB_PORT=$(free_port)
    export REG=127.0.0.1:$LB_PORT
    export LB_URL=http://$REG
    "$GRANARYCTL" proxy-config --type nginx --url "$NODE_n1_URL,$NODE_n2_URL,$NODE_n3_URL" \
        --password-file "$SUITE_TMP/admin.pass" --listen "$REG" --out "$LB/granary.conf"
    scripts/nginx-main-conf "$LB" >"$LB/nginx.conf"
    nginx -p "$LB" -c "$LB/nginx.conf"
    for _ in $(seq 50); do [ -s "$LB/nginx.pid" ] && break; sleep 0.1; done
    cat "$LB/nginx.pid" >>"$SUITE_TMP/pids"
    export IMG=$SUITE_TMP/img
    python3 tests/integration/tools/oci_image.py "$IMG" v1 --layers 4 --size 300000 \
        --label org.example.team=blue >/dev/null
    python3 tests/integration/tools/oci_image.py "$IMG" multi --layers 2 --arch amd64,arm64 >/dev/null
}
teardown_file() {
    if [ -L "${SUITE_TMP:-/nonexistent}/podman/runlink" ]; then
        rm -rf "$(readlink "$SUITE_TMP/podman/runlink")"
    fi
    if [ -f "${SUITE_TMP:-/nonexistent}/dockerd/dockerd.pid" ]; then
        kill "$(cat "$SUITE_TMP/dockerd/dockerd.pid")" 2>/dev/null
        for _ in $(seq 100); do
            kill -0 "$(cat "$SUITE_TMP/dockerd/dockerd.pid")" 2>/dev/null || break
            sleep 0.1
        done
    fi
    cleanup_suite
}

sk() { skopeo "$@" 2>&1; }
ADMIN() { echo "admin:$PASS"; }
ocode() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
reg_json() { curl -fsS -u "admin:$PASS" "$@"; }

@test "the distribution spec: every endpoint and error code through the balancer, chunks through three nodes" {
    run python3 tests/integration/tools/oci_conformance.py "$LB_URL" "admin:$PASS" docker-local/conf/app \
        --nodes "$NODE_n1_URL,$NODE_n2_URL,$NODE_n3_URL"
    echo "$output" | grep -v '^ok' >&2
    [ "$status" = 0 ]
    [[ "$output" == *" 0 failed"* ]]
}

@test "the core's refusals in the spec's shape: a throttled login is 429 TOOMANYREQUESTS" {
    # failed logins straight to one node (its throttle is its own) until it
    # throttles; the refusals are UNAUTHORIZED, then TOOMANYREQUESTS
    local bad i code=
    bad=$(printf 'no-such-oci-user:wrong' | base64)
    for i in $(seq 12); do
        run curl -sS -H "Authorization: Basic $bad" "$NODE_n3_URL/v2/token"
        code=$(echo "$output" | jq -r '.errors[0].code')
        [ "$code" = UNAUTHORIZED ] || break
    done
    [ "$code" = TOOMANYREQUESTS ]
    # on any registry path (each failure while not throttled lengthens the wait)
    for i in $(seq 12); do
        run curl -sS -D - -H "Authorization: Basic $bad" "$NODE_n3_URL/v2/docker-local/x/manifests/1"
        if [[ "$output" == *" 429"* ]]; then break; fi
    done
    [[ "$output" == *" 429"* ]]
    [[ "$output" == *"Docker-Distribution-API-Version: registry/2.0"* ]]
    [[ "$output" == *'"code":"TOOMANYREQUESTS"'* ]]
    # the throttle ends (seconds) and a good login clears it
    for i in $(seq 300); do
        if [ "$(ocode -u "admin:$PASS" "$NODE_n3_URL/v2/")" = 200 ]; then break; fi
        sleep 0.1
    done
    [ "$(ocode -u "admin:$PASS" "$NODE_n3_URL/v2/")" = 200 ]
}

@test "skopeo: a multi-layer image both ways (oci layout, docker-archive), inspect, list-tags, delete" {
    run sk copy --dest-tls-verify=false --dest-creds "$(ADMIN)" "oci:$IMG:v1" "docker://$REG/docker-local/team/app:v1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    run sk copy --src-tls-verify=false --src-creds "$(ADMIN)" "docker://$REG/docker-local/team/app:v1" "oci:$SUITE_TMP/back:v1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    # every blob came back byte for byte (the layout names them by digest)
    for b in "$IMG"/blobs/sha256/*; do
        if [ -f "$SUITE_TMP/back/blobs/sha256/$(basename "$b")" ]; then
            cmp "$b" "$SUITE_TMP/back/blobs/sha256/$(basename "$b")"
        fi
    done
    [ "$(ls "$SUITE_TMP/back/blobs/sha256" | wc -l)" = 6 ] # 4 layers, config, manifest
    run sk copy --src-tls-verify=false --src-creds "$(ADMIN)" "docker://$REG/docker-local/team/app:v1" \
        "docker-archive:$SUITE_TMP/app.tar:team/app:v1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    run sk copy --dest-tls-verify=false --dest-creds "$(ADMIN)" "docker-archive:$SUITE_TMP/app.tar" \
        "docker://$REG/docker-other/from/archive:1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    run sk inspect --tls-verify=false --creds "$(ADMIN)" "docker://$REG/docker-other/from/archive:1"
    [ "$status" = 0 ]
    [ "$(echo "$output" | jq -r '.Labels["org.example.team"]')" = blue ]
    [ "$(echo "$output" | jq -r '.Layers | length')" = 4 ]
    run sk inspect --tls-verify=false --creds "$(ADMIN)" "docker://$REG/docker-local/team/app:v1"
    [ "$status" = 0 ]
    [ "$(echo "$output" | jq -r .Architecture)" = amd64 ]
    run sk copy --dest-tls-verify=false --dest-creds "$(ADMIN)" "oci:$IMG:v1" "docker://$REG/docker-local/team/app:v2"
    [ "$status" = 0 ]
    run sk list-tags --tls-verify=false --creds "$(ADMIN)" "docker://$REG/docker-local/team/app"
    [ "$(echo "$output" | jq -c .Tags)" = '["v1","v2"]' ]
    run sk delete --tls-verify=false --creds "$(ADMIN)" "docker://$REG/docker-local/team/app:v2"
    [ "$status" = 0 ]
    # deleting by digest removes the manifest and both tags
    run sk inspect --tls-verify=false --creds "$(ADMIN)" "docker://$REG/docker-local/team/app:v1"
    [ "$status" != 0 ]
    [[ "$output" == *"manifest unknown"* ]]
}

@test "skopeo --all: a multi-arch index both ways, each platform's manifest kept" {
    run sk copy --all --dest-tls-verify=false --dest-creds "$(ADMIN)" "oci:$IMG:multi" "docker://$REG/docker-local/team/multi:1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    run sk copy --all --src-tls-verify=false --src-creds "$(ADMIN)" "docker://$REG/docker-local/team/multi:1" "oci:$SUITE_TMP/multi:1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    # the index, two manifests, two configs, four layers, byte for byte
    [ "$(ls "$SUITE_TMP/multi/blobs/sha256" | wc -l)" = 9 ]
    for b in "$SUITE_TMP"/multi/blobs/sha256/*; do
        cmp "$b" "$IMG/blobs/sha256/$(basename "$b")"
    done
    run sk inspect --raw --tls-verify=false --creds "$(ADMIN)" "docker://$REG/docker-local/team/multi:1"
    [ "$(echo "$output" | jq -r .mediaType)" = application/vnd.oci.image.index.v1+json ]
    [ "$(echo "$output" | jq -r '.manifests | length')" = 2 ]
    run sk inspect --override-arch arm64 --tls-verify=false --creds "$(ADMIN)" "docker://$REG/docker-local/team/multi:1"
    [ "$(echo "$output" | jq -r .Architecture)" = arm64 ]
}

@test "the layout in the storage API and search, with docker.* properties and the config's labels" {
    run sk copy --dest-tls-verify=false --dest-creds "$(ADMIN)" "oci:$IMG:v1" "docker://$REG/docker-local/team/shown:v1"
    [ "$status" = 0 ]
    local d
    d=$(curl -fsS -u "admin:$PASS" -I "$LB_URL/v2/docker-local/team/shown/manifests/v1" \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
    [[ "$d" == sha256:* ]]
    run reg_json "$LB_URL/api/storage/docker-local/team/shown/_tags/v1/manifest.json?properties"
    [ "$(echo "$output" | jq -r '.properties["docker.manifest"][0]')" = v1 ]
    [ "$(echo "$output" | jq -r '.properties["docker.repoName"][0]')" = team/shown ]
    [ "$(echo "$output" | jq -r '.properties["docker.manifest.digest"][0]')" = "$d" ]
    [ "$(echo "$output" | jq -r '.properties["docker.label.org.example.team"][0]')" = blue ]
    run reg_json "$LB_URL/api/storage/docker-local/team/shown/_manifests/$d"
    [ "$(echo "$output" | jq -r .checksums.sha256)" = "${d#sha256:}" ]
    run reg_json "$LB_URL/api/storage/docker-local/team/shown/_blobs"
    [ "$(echo "$output" | jq -r '.children | length')" = 5 ]
    # the same manifest bytes are one binary: the tag's file has the digest's sha256
    run reg_json "$LB_URL/api/search/prop?docker.repoName=team/shown&repos=docker-local"
    [ "$(echo "$output" | jq -r '.results | length')" = 2 ]
    # the generic artifact route reads, but never writes, a docker repository
    [ "$(ocode -u "admin:$PASS" "$LB_URL/docker-local/team/shown/_tags/v1/manifest.json")" = 200 ]
    [ "$(ocode -u "admin:$PASS" -X PUT --data-binary x "$LB_URL/docker-local/team/shown/x.txt")" = 405 ]
    [ "$(ocode -u "admin:$PASS" -X DELETE "$LB_URL/docker-local/team/shown/_tags/v1/manifest.json")" = 405 ]
    # the alias packageType oci is the same format
    run sk copy --dest-tls-verify=false --dest-creds "$(ADMIN)" "oci:$IMG:v1" "docker://$REG/oci-alias/x:1"
    [ "$status" = 0 ]
}

@test "a 200 MiB layer up and down through the balancer" {
    python3 tests/integration/tools/oci_image.py "$SUITE_TMP/big" big --layers 1 --size $((200 * 1024 * 1024)) --seed big >/dev/null
    run sk copy --dest-tls-verify=false --dest-creds "$(ADMIN)" "oci:$SUITE_TMP/big:big" "docker://$REG/docker-local/big/one:1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    local layer
    layer=$(jq -r '.layers[0].digest' "$SUITE_TMP/big/blobs/sha256/$(jq -r '.manifests[0].digest' "$SUITE_TMP/big/index.json" | cut -d: -f2)")
    [ "$(curl -fsS -u "admin:$PASS" "$LB_URL/v2/docker-local/big/one/blobs/$layer" | sha256sum | cut -d' ' -f1)" = "${layer#sha256:}" ]
    # a range from the middle
    [ "$(curl -fsS -u "admin:$PASS" -r 104857600-104857699 "$LB_URL/v2/docker-local/big/one/blobs/$layer" | wc -c)" = 100 ]
    rm -rf "$SUITE_TMP/big"
}

@test "20 concurrent pushes of images sharing layers: all complete, shared layers stored once" {
    local i pids=()
    for i in $(seq 1 20); do
        python3 tests/integration/tools/oci_image.py "$SUITE_TMP/c$i" c --layers 3 --size 200000 --shared 2 --seed "c$i" --shared-seed conc >/dev/null &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    pids=()
    for i in $(seq 1 20); do
        skopeo copy --dest-tls-verify=false --dest-creds "$(ADMIN)" "oci:$SUITE_TMP/c$i:c" \
            "docker://$REG/docker-local/conc/img$i:c" >"$SUITE_TMP/c$i.log" 2>&1 &
        pids+=($!)
    done
    local failed=0
    for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
    [ "$failed" = 0 ] || { cat "$SUITE_TMP"/c*.log; false; }
    for i in $(seq 1 20); do
        run sk inspect --tls-verify=false --creds "$(ADMIN)" "docker://$REG/docker-local/conc/img$i:c"
        [ "$status" = 0 ]
        [ "$(echo "$output" | jq -r '.Layers | length')" = 3 ]
    done
    # the two shared layers (same seed in every image) are one binary each
    local shared
    shared=$(jq -r '.layers[0].digest' "$SUITE_TMP/c1/blobs/sha256/$(jq -r '.manifests[0].digest' "$SUITE_TMP/c1/index.json" | cut -d: -f2)")
    [ "$(psql_db oci "SELECT count(*) FROM binaries WHERE sha256 = '${shared#sha256:}'")" = 1 ]
    [ "$(psql_db oci "SELECT count(*) FROM artifacts WHERE sha256 = '${shared#sha256:}'")" = 20 ]
}

@test "an upload continues on another node after the node that took its first chunk is killed during the second" {
    local f=$SUITE_TMP/chunked.bin
    head -c 3000000 /dev/urandom >"$f"
    local dg
    dg=sha256:$(sha256sum "$f" | cut -d' ' -f1)
    local loc
    loc=$(curl -fsS -u "admin:$PASS" -X POST -D - -o /dev/null "$NODE_n3_URL/v2/docker-local/ha/chunked/blobs/uploads/" |
        tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
    head -c 1000000 "$f" >"$SUITE_TMP/p1"
    [ "$(ocode -u "admin:$PASS" -X PATCH -H 'Content-Range: 0-999999' --data-binary "@$SUITE_TMP/p1" "$NODE_n3_URL$loc")" = 202 ]
    # the next chunk goes to the same node, slowly, and the node is killed
    # while (or before) it streams: that chunk is lost, the session is not
    tail -c +1000001 "$f" | head -c 1000000 >"$SUITE_TMP/p2"
    curl -sS -o /dev/null -u "admin:$PASS" -X PATCH --limit-rate 100k -H 'Content-Range: 1000000-1999999' \
        --data-binary "@$SUITE_TMP/p2" "$NODE_n3_URL$loc" 2>/dev/null &
    local slow=$!
    kill -KILL "$(node_pid n3)"
    wait_until 30 pid_gone "$(node_pid n3)"
    if wait "$slow"; then :; fi
    run curl -sS -u "admin:$PASS" -D - -o /dev/null "$NODE_n1_URL$loc"
    [[ "$output" == *" 204"* ]]
    [[ "$(echo "$output" | tr -d '\r')" == *"Range: 0-999999"* ]]
    [ "$(ocode -u "admin:$PASS" -X PATCH -H 'Content-Range: 1000000-1999999' --data-binary "@$SUITE_TMP/p2" "$NODE_n1_URL$loc")" = 202 ]
    # out of order: 416 with the range the session has
    run curl -sS -u "admin:$PASS" -X PATCH -D - -o /dev/null -H 'Content-Range: 0-9' --data-binary 0123456789 "$NODE_n2_URL$loc"
    [[ "$output" == *"416"* ]]
    [[ "$(echo "$output" | tr -d '\r')" == *"Range: 0-1999999"* ]]
    tail -c +2000001 "$f" >"$SUITE_TMP/p3"
    [ "$(ocode -u "admin:$PASS" -X PUT -H 'Content-Range: 2000000-2999999' --data-binary "@$SUITE_TMP/p3" "$NODE_n2_URL$loc?digest=$dg")" = 201 ]
    # the finished blob was on two nodes (redundancy 2) before the 201
    [ "$(psql_db oci "SELECT count(DISTINCT node) FROM binary_locations WHERE sha256 = '${dg#sha256:}'")" = 2 ]
    curl -fsS -u "admin:$PASS" -o "$SUITE_TMP/got" "$NODE_n1_URL/v2/docker-local/ha/chunked/blobs/$dg"
    cmp "$f" "$SUITE_TMP/got"
    restart_cluster_node n3 "$DB"
}

@test "a pull through the balancer while a node is killed" {
    python3 tests/integration/tools/oci_image.py "$SUITE_TMP/kp" k --layers 6 --size 2000000 --seed kill >/dev/null
    run sk copy --dest-tls-verify=false --dest-creds "$(ADMIN)" "oci:$SUITE_TMP/kp:k" "docker://$REG/docker-local/ha/pull:k"
    [ "$status" = 0 ]
    skopeo copy --src-tls-verify=false --src-creds "$(ADMIN)" "docker://$REG/docker-local/ha/pull:k" \
        "oci:$SUITE_TMP/kp-back:k" >"$SUITE_TMP/kp.log" 2>&1 &
    local puller=$!
    kill -KILL "$(node_pid n2)"
    wait "$puller" || { cat "$SUITE_TMP/kp.log"; false; }
    for b in "$SUITE_TMP"/kp/blobs/sha256/*; do
        cmp "$b" "$SUITE_TMP/kp-back/blobs/sha256/$(basename "$b")"
    done
    # and again with the node down (nginx passes its requests on)
    rm -rf "$SUITE_TMP/kp-back"
    run sk copy --src-tls-verify=false --src-creds "$(ADMIN)" "docker://$REG/docker-local/ha/pull:k" "oci:$SUITE_TMP/kp-back:k"
    [ "$status" = 0 ] || { echo "$output"; false; }
    wait_until 30 pid_gone "$(node_pid n2)"
    restart_cluster_node n2 "$DB"
}

@test "who may do what: anonymous challenged, reader pulls only, token scopes, catalog filtered" {
    run sk copy --dest-tls-verify=false --dest-creds "$(ADMIN)" "oci:$IMG:v1" "docker://$REG/docker-other/secret/img:1"
    [ "$status" = 0 ]
    run sk copy --dest-tls-verify=false --dest-creds "$(ADMIN)" "oci:$IMG:v1" "docker://$REG/docker-local/perm/img:1"
    [ "$status" = 0 ]
    # anonymous: a Bearer challenge naming the scope
    run curl -sS -D - -o /dev/null "$LB_URL/v2/docker-local/perm/img/manifests/1"
    [[ "$output" == *"401"* ]]
    [[ "$output" == *'WWW-Authenticate: Bearer realm="'*'/v2/token",service="'*'",scope="repository:docker-local/perm/img:pull"'* ]]
    # the reader pulls, and is denied a push (403 DENIED)
    run sk copy --src-tls-verify=false --src-creds "reader:$PW" "docker://$REG/docker-local/perm/img:1" "oci:$SUITE_TMP/rd:1"
    [ "$status" = 0 ]
    run sk copy --dest-tls-verify=false --dest-creds "reader:$PW" "oci:$IMG:v1" "docker://$REG/docker-local/perm/img:2"
    [ "$status" != 0 ]
    [[ "$output" == *denied* ]]
    run curl -sS -u "reader:$PW" -X POST "$LB_URL/v2/docker-local/perm/img/blobs/uploads/"
    [ "$(echo "$output" | jq -r '.errors[0].code')" = DENIED ]
    # the token endpoint grants what the caller holds
    run curl -fsS -u "reader:$PW" "$LB_URL/v2/token?service=x&scope=repository:docker-local/perm/img:pull,push,delete"
    [ "$(echo "$output" | jq -r .scope)" = "repository:docker-local/perm/img:pull" ]
    [ "$(echo "$output" | jq -r .expires_in)" = 3600 ]
    local tok
    tok=$(echo "$output" | jq -r .token)
    # a caller that came with a token gets that token back, as Bearer or as
    # Basic's password: a token never mints another that would outlive it
    run curl -fsS -H "Authorization: Bearer $tok" "$LB_URL/v2/token?scope=repository:docker-local/perm/img:pull"
    [ "$(echo "$output" | jq -r .token)" = "$tok" ]
    run curl -fsS -u "reader:$tok" "$LB_URL/v2/token?scope=repository:docker-local/perm/img:pull"
    [ "$(echo "$output" | jq -r .token)" = "$tok" ]
    [ "$(ocode -u "reader:grt_$(printf '%064d' 0)" "$LB_URL/v2/token")" = 401 ]
    [ "$(ocode -H "Authorization: Bearer $tok" "$LB_URL/v2/docker-local/perm/img/manifests/1")" = 200 ]
    [ "$(ocode -H "Authorization: Bearer $tok" -X DELETE "$LB_URL/v2/docker-local/perm/img/manifests/1")" = 403 ]
    run curl -fsS -u "pusher:$PW" "$LB_URL/v2/token?scope=repository:docker-local/perm/img:pull,push"
    [ "$(echo "$output" | jq -r .scope)" = "repository:docker-local/perm/img:pull,push" ]
    [ "$(ocode "$LB_URL/v2/token")" = 401 ]
    # the pusher pushes a new tag but may not move an existing one (that is a delete)
    run sk copy --dest-tls-verify=false --dest-creds "pusher:$PW" "oci:$IMG:v1" "docker://$REG/docker-local/perm/img:new"
    [ "$status" = 0 ]
    run sk copy --dest-tls-verify=false --dest-creds "pusher:$PW" "oci:$IMG:multi" "docker://$REG/docker-local/perm/img:new"
    [ "$status" != 0 ]
    # a mount from a repository the caller cannot read is a plain upload session
    local lay
    lay=$(jq -r '.layers[0].digest' "$IMG/blobs/sha256/$(jq -r '.manifests[0].digest' "$IMG/index.json" | cut -d: -f2)")
    [ "$(ocode -u "pusher:$PW" -X POST "$LB_URL/v2/docker-local/perm/m/blobs/uploads/?mount=$lay&from=docker-other/secret/img")" = 202 ]
    [ "$(ocode -u "pusher:$PW" -X POST "$LB_URL/v2/docker-local/perm/m/blobs/uploads/?mount=$lay&from=docker-local/perm/img")" = 201 ]
    # the catalog shows only what the caller may read
    run curl -fsS -u "reader:$PW" "$LB_URL/v2/_catalog"
    [[ "$output" == *'"docker-local/perm/img"'* ]]
    [[ "$output" != *docker-other* ]]
    run curl -fsS -u "admin:$PASS" "$LB_URL/v2/_catalog"
    [[ "$output" == *'"docker-other/secret/img"'* ]]
    # anonymous read on: pulls need no credentials (the token endpoint gives
    # the anonymous token), pushes still do
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d '{"anonymousRead":true}' "$LB_URL/api/system/settings" >/dev/null
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -o /dev/null -d '{"repo":{
        "repositories":["docker-local"],"include-patterns":["perm/**"],
        "actions":{"users":{"anonymous":["read"]}}}}' "$LB_URL/api/v2/security/permissions/t-anon"
    [ "$(ocode "$LB_URL/v2/")" = 401 ]
    run curl -fsS "$LB_URL/v2/token?scope=repository:docker-local/perm/img:pull,push"
    [ "$(echo "$output" | jq -r .token)" = anonymous ]
    [ "$(echo "$output" | jq -r .scope)" = "repository:docker-local/perm/img:pull" ]
    [ "$(ocode -H 'Authorization: Bearer anonymous' "$LB_URL/v2/docker-local/perm/img/manifests/1")" = 200 ]
    run sk copy --src-tls-verify=false --src-no-creds "docker://$REG/docker-local/perm/img:1" "oci:$SUITE_TMP/anon:1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    [ "$(ocode -X POST "$LB_URL/v2/docker-local/perm/img/blobs/uploads/")" = 401 ]
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d '{"anonymousRead":false}' "$LB_URL/api/system/settings" >/dev/null
    [ "$(ocode "$LB_URL/v2/token")" = 401 ]
    [ "$(ocode -H 'Authorization: Bearer anonymous' "$LB_URL/v2/docker-local/perm/img/manifests/1")" = 401 ]
}

@test "garbage collection: blobs no manifest references go after the grace period, the rest stay" {
    local orphan=$SUITE_TMP/orphan.bin
    head -c 5000 /dev/urandom >"$orphan"
    local od
    od=sha256:$(sha256sum "$orphan" | cut -d' ' -f1)
    [ "$(ocode -u "admin:$PASS" -X POST --data-binary "@$orphan" "$LB_URL/v2/docker-local/gc/img/blobs/uploads/?digest=$od")" = 201 ]
    run sk copy --dest-tls-verify=false --dest-creds "$(ADMIN)" "oci:$IMG:v1" "docker://$REG/docker-local/gc/img:1"
    [ "$status" = 0 ]
    # an open upload session's parts are pinned
    local part=$SUITE_TMP/part.bin
    head -c 6000 /dev/urandom >"$part"
    local pd
    pd=sha256:$(sha256sum "$part" | cut -d' ' -f1)
    local loc
    loc=$(curl -fsS -u "admin:$PASS" -X POST -D - -o /dev/null "$LB_URL/v2/docker-local/gc/img/blobs/uploads/" |
        tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
    [ "$(ocode -u "admin:$PASS" -X PATCH --data-binary "@$part" -H 'Content-Range: 0-5999' "$LB_URL$loc")" = 202 ]
    run curl -fsS -u "admin:$PASS" -X POST "$NODE_n1_URL/api/system/storage/gc?graceSeconds=0"
    [ "$status" = 0 ]
    [ "$(ocode -u "admin:$PASS" "$LB_URL/v2/docker-local/gc/img/blobs/$od")" = 404 ]
    [ "$(psql_db oci "SELECT count(*) FROM binaries WHERE sha256 = '${od#sha256:}'")" = 0 ]
    run sk copy --src-tls-verify=false --src-creds "$(ADMIN)" "docker://$REG/docker-local/gc/img:1" "oci:$SUITE_TMP/gcback:1"
    [ "$status" = 0 ]
    [ "$(ocode -u "admin:$PASS" -X PUT "$LB_URL$loc?digest=$pd")" = 201 ]
    [ "$(ocode -u "admin:$PASS" "$LB_URL/v2/docker-local/gc/img/blobs/$pd")" = 200 ]
    # an untagged manifest is kept until deleted; once deleted, its blobs go too
    local d
    d=$(curl -fsS -u "admin:$PASS" -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "$LB_URL/v2/docker-local/gc/img/manifests/1" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
    [ "$(ocode -u "admin:$PASS" -X DELETE "$LB_URL/v2/docker-local/gc/img/manifests/1")" = 202 ]
    curl -fsS -u "admin:$PASS" -X POST "$NODE_n1_URL/api/system/storage/gc?graceSeconds=0" >/dev/null
    [ "$(ocode -u "admin:$PASS" -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$LB_URL/v2/docker-local/gc/img/manifests/$d")" = 200 ]
    [ "$(ocode -u "admin:$PASS" -X DELETE "$LB_URL/v2/docker-local/gc/img/manifests/$d")" = 202 ]
    [ "$(psql_db oci "SELECT count(*) FROM artifacts WHERE repo = 'docker-local' AND path LIKE 'gc/img/%'")" = 0 ]
}

@test "docker: login, push, pull, tag through the balancer (the Debian docker.io engine); containerd (ctr) pushes and fetches with a password" {
    local d=$SUITE_TMP/dockerd
    mkdir -p "$d"
    dockerd --host "unix://$d/docker.sock" --data-root "$d/data" --exec-root "$d/exec" \
        --pidfile "$d/dockerd.pid" --iptables=false --ip6tables=false --ip-masq=false --bridge=none \
        --insecure-registry "$REG" >"$d/log" 2>&1 &
    echo $! >>"$SUITE_TMP/pids"
    export DOCKER_HOST=unix://$d/docker.sock DOCKER_CONFIG=$d/config
    wait_until 60 docker info
    run sk copy --src-tls-verify=false --src-creds "$(ADMIN)" "oci:$IMG:v1" "docker-archive:$d/img.tar:local/app:v1"
    [ "$status" = 0 ]
    docker load -i "$d/img.tar"
    run docker login "$REG" -u admin --password-stdin <<<"$PASS"
    [ "$status" = 0 ]
    [[ "$output" == *"Login Succeeded"* ]]
    docker tag local/app:v1 "$REG/docker-local/dk/app:v1"
    run docker push "$REG/docker-local/dk/app:v1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    docker rmi "$REG/docker-local/dk/app:v1" local/app:v1
    run docker pull "$REG/docker-local/dk/app:v1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    docker tag "$REG/docker-local/dk/app:v1" "$REG/docker-local/dk/app:v2"
    run docker push "$REG/docker-local/dk/app:v2"
    [ "$status" = 0 ]
    run sk list-tags --tls-verify=false --creds "$(ADMIN)" "docker://$REG/docker-local/dk/app"
    [ "$(echo "$output" | jq -c .Tags)" = '["v1","v2"]' ]
    # containerd (what Kubernetes pulls with), with its own client against
    # the engine's containerd: holding a password it first POSTs an OAuth2
    # form to the token endpoint and falls back to GET with Basic on the
    # 401. With anonymous read on, that POST must not hand it the anonymous
    # token: a push (anonymous may read, not write) would then fail
    local sock ctrc img
    sock=$(find "$d/exec" -name containerd.sock -print -quit)
    [ -S "$sock" ]
    ctrc=(ctr --address "$sock" --namespace granary-oci)
    "${ctrc[@]}" images import --no-unpack --all-platforms "$d/img.tar"
    img=$("${ctrc[@]}" images ls -q | head -1)
    "${ctrc[@]}" images tag "$img" "$REG/docker-local/dk/ctr:v1"
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d '{"anonymousRead":true}' "$LB_URL/api/system/settings" >/dev/null
    run "${ctrc[@]}" images push --plain-http --user "pusher:$PW" "$REG/docker-local/dk/ctr:v1"
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' -d '{"anonymousRead":false}' "$LB_URL/api/system/settings" >/dev/null
    [ "$status" = 0 ] || { echo "$output"; false; }
    run "${ctrc[@]}" content fetch --plain-http --user "reader:$PW" "$REG/docker-local/dk/ctr:v1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    [ "$(ocode -X POST -d 'grant_type=password&username=reader&password=x' "$LB_URL/v2/token")" = 401 ]
    run docker logout "$REG"
    [ "$status" = 0 ]
    run docker pull "$REG/docker-local/dk/app:v1"
    [ "$status" != 0 ]
}

@test "podman: push and pull through the balancer" {
    local pc=$SUITE_TMP/podman
    mkdir -p "$pc/root"
    # podman refuses a runroot path longer than 50 characters
    ln -s "$(mktemp -d /tmp/gr-pm.XXXXXX)" "$pc/runlink"
    local runroot
    runroot=$(readlink "$pc/runlink")
    run sk copy "oci:$IMG:v1" "docker-archive:$pc/img.tar:local/pm:v1"
    [ "$status" = 0 ]
    run podman --root "$pc/root" --runroot "$runroot" --storage-driver vfs pull "docker-archive:$pc/img.tar"
    [ "$status" = 0 ] || { echo "$output"; false; }
    run podman --root "$pc/root" --runroot "$runroot" --storage-driver vfs push --tls-verify=false \
        --creds "admin:$PASS" local/pm:v1 "docker://$REG/docker-local/pm/app:1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    run podman --root "$pc/root" --runroot "$runroot" --storage-driver vfs pull --tls-verify=false \
        --creds "admin:$PASS" "$REG/docker-local/pm/app:1"
    [ "$status" = 0 ] || { echo "$output"; false; }
    podman --root "$pc/root" --runroot "$runroot" --storage-driver vfs rmi -a -f >/dev/null 2>&1 || true
    rm -rf "$runroot"
}
