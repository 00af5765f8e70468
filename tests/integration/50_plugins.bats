#!/usr/bin/env bats
# Lua plugins on one node: management API, every hook, the examples of
# lua-plugins/examples/, executions, jobs, and sandbox escapes, each
# contained while the node keeps serving (docs/plugins.md).
load helpers

EX=lua-plugins/examples

setup_file() {
    start_pg
    export DB=$(new_db plugins)
    mkdir -p "$SUITE_TMP/plugins.d"
    cp "$EX/static-realm.lua" "$SUITE_TMP/plugins.d/"
    echo 'this does not compile (' >"$SUITE_TMP/plugins.d/broken.lua"
    start_node a --database-url "$DB" --plugins-dir "$SUITE_TMP/plugins.d" --plugins-budget-m 5 \
        --plugins-job-budget-m 20
    export NODE_a_URL NODE_a_PASS NODE_a_DIR
    make_repo a libs
    make_repo a ci-builds
}
teardown_file() { cleanup_suite; }

# put_plugin NAME FILE-or-source: install, echo the status code
put_plugin() {
    if [ -f "$2" ]; then
        acurl a -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$2" "/api/plugins/$1"
    else
        acurl a -o /dev/null -w '%{http_code}' -X PUT --data-binary "$2" "/api/plugins/$1"
    fi
}
del_plugin() { acurl a -o /dev/null -X DELETE "/api/plugins/$1"; }
upload() { # path content [curl args]
    local p=$1 c=$2
    shift 2
    echo "$c" >"$SUITE_TMP/up"
    acurl a -o /dev/null -w '%{http_code}' -T "$SUITE_TMP/up" "$@" "/libs/$p"
}
serving() { # the node answers health checks and ordinary requests
    [ "$(code "$NODE_a_URL/api/system/ping")" = 200 ]
    [ "$(acurl a -o /dev/null -w '%{http_code}' /api/repositories)" = 200 ]
    kill -0 "$(node_pid a)"
}

@test "plugins_dir: files are installed at start, one that does not compile is logged and left out" {
    run acurl a /api/plugins
    echo "$output"
    [ "$(echo "$output" | jq -r '.plugins[].name' | tr '\n' ' ')" = "static-realm " ]
    grep -q 'broken.lua not installed: broken:1:' "$NODE_a_DIR/stderr.log"
}

@test "management: PUT, GET, list, DELETE; admin only; a plugin that does not compile is refused with its line" {
    [ "$(put_plugin hello 'return { description = "hi" }')" = 201 ]
    [ "$(put_plugin hello 'return { description = "hi again" }')" = 200 ]
    [ "$(acurl a /api/plugins/hello)" = 'return { description = "hi again" }' ]
    run acurl a -X PUT --data-binary $'return {\n beforeDownload = function( end }' /api/plugins/bad
    echo "$output"
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 400 ]
    [[ "$output" == *"bad:2:"* ]]
    run acurl a -X PUT --data-binary 'return { beforeDownlaod = function() end }' /api/plugins/typo
    [[ "$output" == *"unknown field 'beforeDownlaod'"* ]]
    run acurl a -X PUT --data-binary 'while true do end' /api/plugins/spin
    [[ "$output" == *"instruction budget"* ]]
    [ "$(acurl a -o /dev/null -w '%{http_code}' /api/plugins/bad)" = 404 ]
    # non-admins (a realm user) and anonymous callers may not manage plugins
    [ "$(code -u ci:ci-secret -X PUT --data-binary 'return {}' "$NODE_a_URL/api/plugins/x")" = 403 ]
    [ "$(code -X PUT --data-binary 'return {}' "$NODE_a_URL/api/plugins/x")" = 401 ]
    [ "$(code -u ci:ci-secret "$NODE_a_URL/api/plugins/hello")" = 403 ]
    [ "$(code -u ci:ci-secret "$NODE_a_URL/api/plugins")" = 200 ]
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X DELETE /api/plugins/hello)" = 204 ]
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X DELETE /api/plugins/hello)" = 404 ]
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X PUT --data-binary 'return {}' /api/plugins/..%2Fx)" = 404 ]
}

@test "every hook runs with its arguments, in plugin-name order" {
    cat >"$SUITE_TMP/trace.lua" <<'EOF'
local function t(name)
    return function(e)
        granary.log("trace " .. name .. " " .. e.repo .. "/" .. e.path .. " user=" .. e.user
            .. " target=" .. tostring(e.targetRepo) .. "/" .. tostring(e.targetPath)
            .. " action=" .. tostring(e.action) .. " status=" .. tostring(e.status))
    end
end
local hooks = {}
for _, h in ipairs({ "beforeDownload", "afterDownload", "beforeUpload", "afterUpload",
    "beforeDelete", "afterDelete", "beforeMove", "afterMove", "beforeCopy", "afterCopy",
    "beforePropertyChange", "afterPropertyChange" }) do
    hooks[h] = t(h)
end
return hooks
EOF
    [ "$(put_plugin trace "$SUITE_TMP/trace.lua")" = 201 ]
    [ "$(upload h/one.txt one)" = 201 ]
    [ "$(acurl a /libs/h/one.txt)" = one ]
    acurl a -X PUT "/api/storage/libs/h/one.txt?properties=k=v" >/dev/null
    acurl a -X DELETE "/api/storage/libs/h/one.txt?properties=k" >/dev/null
    acurl a -X POST "/api/copy/libs/h/one.txt?to=/libs/h/two.txt" >/dev/null
    acurl a -X POST "/api/move/libs/h/two.txt?to=/libs/h/three.txt" >/dev/null
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X DELETE /libs/h/three.txt)" = 204 ]
    del_plugin trace
    local log=$NODE_a_DIR/stderr.log
    for want in "beforeUpload libs/h/one.txt user=admin" "afterUpload libs/h/one.txt" \
        "beforeDownload libs/h/one.txt" "afterDownload libs/h/one.txt user=admin target=nil/nil action=nil status=200" \
        "beforePropertyChange libs/h/one.txt user=admin target=nil/nil action=set" \
        "afterPropertyChange libs/h/one.txt user=admin target=nil/nil action=delete" \
        "beforeCopy libs/h/one.txt user=admin target=libs/h/two.txt" "afterCopy libs/h/one.txt" \
        "beforeMove libs/h/two.txt user=admin target=libs/h/three.txt" "afterMove libs/h/two.txt" \
        "beforeDelete libs/h/three.txt" "afterDelete libs/h/three.txt"; do
        grep -q "plugin trace: trace $want" "$log" || { echo "missing: $want"; return 1; }
    done
}

@test "before hooks refuse delete, move, copy and property changes with the plugin's status and message" {
    [ "$(upload r/x.txt x)" = 201 ]
    [ "$(put_plugin guard 'local function no(e) granary.reject(423, "locked: " .. e.path) end
return { beforeDelete = no, beforeMove = no, beforeCopy = no, beforePropertyChange = no }')" = 201 ]
    run acurl a -X DELETE /libs/r/x.txt
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 423 ]
    [ "$(echo "$output" | jq -r '.errors[0].message')" = "locked: r/x.txt" ]
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X POST '/api/move/libs/r/x.txt?to=/libs/r/y.txt')" = 423 ]
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X POST '/api/copy/libs/r/x.txt?to=/libs/r/y.txt')" = 423 ]
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X PUT '/api/storage/libs/r/x.txt?properties=a=b')" = 423 ]
    [ "$(acurl a /libs/r/x.txt)" = x ]
    del_plugin guard
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X DELETE /libs/r/x.txt)" = 204 ]
}

@test "beforeDownload can answer with an alternative response" {
    [ "$(upload alt/a.txt real)" = 201 ]
    [ "$(put_plugin alt 'return { beforeDownload = function(e)
  if e.path:find("^alt/") then
    return { status = 200, body = "replaced " .. e.artifact.sha256:sub(1, 8), contentType = "text/x-alt",
             headers = { ["X-Plugin"] = "alt" } }
  end end }')" = 201 ]
    run acurl a -i /libs/alt/a.txt
    echo "$output"
    [[ "$output" == *"content-type: text/x-alt"* || "$output" == *"Content-Type: text/x-alt"* ]]
    [[ "$output" == *"X-Plugin: alt"* ]]
    [[ "$output" == *"replaced "* ]]
    del_plugin alt
    [ "$(acurl a /libs/alt/a.txt)" = real ]
}

@test "example no-release-overwrite: a release is deployed once, snapshots again" {
    [ "$(put_plugin no-release-overwrite "$EX/no-release-overwrite.lua")" = 201 ]
    [ "$(upload rel/1.0/app.jar v1)" = 201 ]
    run upload rel/1.0/app.jar v2
    [ "$output" = 409 ]
    [ "$(acurl a /libs/rel/1.0/app.jar)" = v1 ]
    [ "$(upload rel/1.1-SNAPSHOT/app.jar s1)" = 201 ]
    [ "$(upload rel/1.1-SNAPSHOT/app.jar s2)" = 201 ]
    del_plugin no-release-overwrite
}

@test "example require-build-number: deploys to ci-builds need build.number; deployed.by is added" {
    [ "$(put_plugin require-build-number "$EX/require-build-number.lua")" = 201 ]
    echo x >"$SUITE_TMP/b"
    run acurl a -T "$SUITE_TMP/b" /ci-builds/app/app.jar
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 400 ]
    [[ "$output" == *"need a build.number property"* ]]
    [ "$(acurl a -o /dev/null -w '%{http_code}' -T "$SUITE_TMP/b" '/ci-builds/app/app.jar;build.number=42')" = 201 ]
    run acurl a "/api/storage/ci-builds/app/app.jar?properties"
    echo "$output"
    [ "$(echo "$output" | jq -r '.properties["build.number"][0]')" = 42 ]
    [ "$(echo "$output" | jq -r '.properties["deployed.by"][0]')" = admin ]
    [ "$(upload other.txt y)" = 201 ] # other repositories are not concerned
    del_plugin require-build-number
}

@test "example quarantine: quarantine=true blocks downloads" {
    [ "$(put_plugin quarantine "$EX/quarantine.lua")" = 201 ]
    [ "$(upload q/lib.jar bytes)" = 201 ]
    [ "$(acurl a /libs/q/lib.jar)" = bytes ]
    acurl a -X PUT "/api/storage/libs/q/lib.jar?properties=quarantine=true" >/dev/null
    run acurl a /libs/q/lib.jar
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 403 ]
    [[ "$output" == *"is quarantined"* ]]
    acurl a -X PUT "/api/storage/libs/q/lib.jar?properties=quarantine=false" >/dev/null
    [ "$(acurl a /libs/q/lib.jar)" = bytes ]
    del_plugin quarantine
}

@test "example snapshot-cleanup: the job is declared for the primary, the execution deletes old snapshots" {
    [ "$(put_plugin snapshot-cleanup "$EX/snapshot-cleanup.lua")" = 201 ]
    run acurl a /api/plugins
    [ "$(echo "$output" | jq -r '.jobs[] | select(.plugin == "snapshot-cleanup") | "\(.name) \(.where) \(.cron)"')" = "nightly primary 0 3 * * *" ]
    [ "$(upload snap/1.0-SNAPSHOT/a-1.0-SNAPSHOT.jar s)" = 201 ]
    [ "$(upload snap/1.0/a-1.0.jar r)" = 201 ]
    sleep 1.1
    run acurl a -X POST "/api/plugins/execute/cleanupSnapshots?params=days=1"
    echo "$output"
    [ "$(echo "$output" | jq -r .count)" = 0 ]
    run acurl a -X POST "/api/plugins/execute/cleanupSnapshots?params=days=0"
    echo "$output"
    [[ "$(echo "$output" | jq -r '.deleted[]')" == *"libs/snap/1.0-SNAPSHOT/a-1.0-SNAPSHOT.jar"* ]]
    [ "$(acurl a -o /dev/null -w '%{http_code}' /libs/snap/1.0-SNAPSHOT/a-1.0-SNAPSHOT.jar)" = 404 ]
    [ "$(acurl a /libs/snap/1.0/a-1.0.jar)" = r ]
    # admin only
    [ "$(code -u ci:ci-secret -X POST "$NODE_a_URL/api/plugins/execute/cleanupSnapshots")" = 403 ]
    del_plugin snapshot-cleanup
}

@test "example static-realm: users from the plugin's table, with its admin flag" {
    [ "$(code -u ci:ci-secret "$NODE_a_URL/api/repositories")" = 200 ]
    [ "$(code -u ci:wrong "$NODE_a_URL/api/repositories")" = 401 ]
    [ "$(code -u nobody:x "$NODE_a_URL/api/repositories")" = 401 ]
    echo z >"$SUITE_TMP/z"
    # deploying needs write permission (docs/security.md), for realm users too,
    # who are granted it under their realm-qualified name
    [ "$(code -u ci:ci-secret -T "$SUITE_TMP/z" "$NODE_a_URL/libs/realm/z.txt")" = 403 ]
    acurl a -X PUT -H 'Content-Type: application/json' \
        -d '{"repo":{"repositories":["libs"],"actions":{"users":{"ci":["write"]}}}}' \
        /api/v2/security/permissions/realm-ci
    [ "$(code -u ci:ci-secret -T "$SUITE_TMP/z" "$NODE_a_URL/libs/realm/z.txt")" = 403 ]
    acurl a -X PUT -H 'Content-Type: application/json' \
        -d '{"repo":{"repositories":["libs"],"actions":{"users":{"static-realm:ci":["write"]}}}}' \
        /api/v2/security/permissions/realm-ci
    [ "$(code -u ci:ci-secret -T "$SUITE_TMP/z" "$NODE_a_URL/libs/realm/z.txt")" = 201 ]
    [ "$(curl -sS -u ci:ci-secret "$NODE_a_URL/api/storage/libs/realm/z.txt" | jq -r .createdBy)" = static-realm:ci ]
    [ "$(code -u ci:ci-secret -X PUT --data-binary 'return {}' "$NODE_a_URL/api/plugins/x")" = 403 ]
    [ "$(code -u ops:ops-secret -X PUT --data-binary 'return {}' "$NODE_a_URL/api/plugins/x")" = 201 ]
    del_plugin x
}

@test "executions: params, body, JSON, admin flag, authentication, 404" {
    [ "$(put_plugin ex 'return { executions = {
  echo = function(p, ctx) return { a = p.a, b = p.b, user = ctx.user, body = ctx.body } end,
  text = function(p) return "plain " .. (p.x or ""), 202, "text/x-plain" end,
  fails = function() error("nope") end,
  secret = { admin = true, run = function() return "s" end },
} }')" = 201 ]
    run acurl a -X POST -d 'payload' "/api/plugins/execute/echo?params=a=1;b=two"
    echo "$output"
    [ "$(echo "$output" | jq -c .)" = '{"a":"1","b":"two","body":"payload","user":"admin"}' ]
    run acurl a -i -X POST "/api/plugins/execute/text?params=x=y"
    [[ "$output" == *" 202"* && "$output" == *"plain y"* ]]
    run acurl a -X POST /api/plugins/execute/fails
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 500 ]
    [[ "$(echo "$output" | jq -r '.errors[0].message')" == *"ex:4: nope"* ]]
    [ "$(code -X POST "$NODE_a_URL/api/plugins/execute/echo")" = 401 ]
    [ "$(code -u ci:ci-secret -X POST "$NODE_a_URL/api/plugins/execute/echo")" = 200 ]
    [ "$(code -u ci:ci-secret -X POST "$NODE_a_URL/api/plugins/execute/secret")" = 403 ]
    [ "$(acurl a -X POST /api/plugins/execute/secret)" = s ]
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X POST /api/plugins/execute/none)" = 404 ]
    run acurl a /api/plugins
    [ "$(echo "$output" | jq -r '[.executions[].name] | join(",")')" = "echo,fails,secret,text" ]
    del_plugin ex
}

@test "jobs: an every-node job runs on its interval; a failing job is logged and the node serves" {
    [ "$(upload job/counter.txt c)" = 201 ]
    # durable state lives in properties: Lua globals are per thread and reset on reload
    [ "$(put_plugin ticker 'return { jobs = {
  tick = { interval = 1, where = "every-node", run = function()
    local p = granary.properties("libs", "job/counter.txt")
    local n = tonumber(p.ticks and p.ticks[1] or "0") + 1
    granary.set_property("libs", "job/counter.txt", "ticks", tostring(n)) end },
  bad = { interval = 1, where = "every-node", run = function()
    while true do end end },
} }')" = 201 ]
    sleep 3.5
    local ticks
    ticks=$(acurl a "/api/storage/libs/job/counter.txt?properties=ticks" | jq -r '.properties.ticks[0]')
    echo "ticks=$ticks"
    [ "$ticks" -ge 2 ]
    [ "$ticks" -le 4 ]
    grep -q 'job ticker/bad failed: ticker:7: instruction budget of 20000000' "$NODE_a_DIR/stderr.log"
    del_plugin ticker
    serving
}

# ---- sandbox escapes over HTTP: each contained, the node keeps serving ----

escape() { # name hook-body expected-text
    [ "$(upload esc/f.txt data)" = 201 ] || true
    [ "$(put_plugin "$1" "return { beforeDownload = function(e) $2 end }")" = 201 ]
    run acurl a /libs/esc/f.txt
    echo "$output"
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 500 ]
    [[ "$output" == *"plugin $1 failed in beforeDownload: "*"$3"* ]]
    del_plugin "$1"
    [ "$(acurl a /libs/esc/f.txt)" = data ]
    serving
}

@test "sandbox: io.open is not there" {
    escape io 'io.open("/etc/passwd")' "io:1: attempt to index a nil value (global 'io')"
}

@test "sandbox: os.execute is not there" {
    escape osx 'os.execute("touch /tmp/granary-pwned")' "osx:1:"
    [ ! -e /tmp/granary-pwned ]
}

@test "sandbox: require is not there" {
    escape req 'require("io")' "req:1: attempt to call a nil value (global 'require')"
}

@test "sandbox: debug.sethook is not there" {
    escape dbg 'debug.sethook()' "dbg:1: attempt to index a nil value (global 'debug')"
}

@test "sandbox: load of bytecode is refused" {
    escape bc 'assert(load("\27LuaT\0", "x", "b"))' "only text chunks"
    escape bc2 'local f, err = load("\27LuaT\0") error(err)' "binary"
}

@test "sandbox: a string.rep memory bomb hits the memory cap" {
    escape bomb 'local s = string.rep("x", 1 << 40)' "resulting string too large"
    escape bomb2 'local s = string.rep("x", 1 << 29)' "memory cap"
}

@test "sandbox: while true do end is stopped by the instruction budget" {
    escape spin 'while true do end' "spin:1: instruction budget of 5000000 exceeded"
}

@test "sandbox: the node serves other requests while a plugin spins on every download" {
    [ "$(put_plugin spin2 'return { beforeDownload = function(e) if e.path:find("slow") then while true do end end end }')" = 201 ]
    [ "$(upload slow.txt s)" = 201 ]
    [ "$(upload fast.txt f)" = 201 ]
    for i in 1 2 3 4; do acurl a -o /dev/null /libs/slow.txt & done
    [ "$(acurl a /libs/fast.txt)" = f ]
    wait
    del_plugin spin2
    serving
}

@test "npm: a publish is an upload of {name}/-/{file} to the hooks; tarball downloads run the download hooks" {
    acurl a -X PUT -H 'Content-Type: application/json' -d '{"rclass":"local","packageType":"npm"}' \
        /api/repositories/npmr >/dev/null
    [ "$(put_plugin npmguard 'return {
  beforeUpload = function(e)
    if e.path:find("^evil/") then granary.reject(403, "no evil packages (" .. e.size .. " bytes)") end end,
  afterUpload = function(e) granary.log("npm upload " .. e.repo .. "/" .. e.artifact.path) end,
  beforeDownload = function(e)
    if e.path:find("^good/") then granary.reject(451, "downloads of good are paused") end end,
}')" = 201 ]
    mkdoc() { # NAME: a publish body as npm sends it, 5 bytes of tarball
        python3 - "$1" <<'PY'
import base64, hashlib, json, sys
name, ver, data = sys.argv[1], "1.0.0", b"hello"
doc = {"_id": name, "name": name, "dist-tags": {"latest": ver},
       "versions": {ver: {"name": name, "version": ver,
                          "dist": {"shasum": hashlib.sha1(data).hexdigest()}}},
       "_attachments": {name + "-" + ver + ".tgz": {"content_type": "application/octet-stream",
                        "data": base64.b64encode(data).decode(), "length": len(data)}}}
print(json.dumps(doc))
PY
    }
    run acurl a -X PUT -H 'Content-Type: application/json' -d "$(mkdoc evil)" /api/npm/npmr/evil
    echo "$output"
    [[ "$output" == *'"status":403'* && "$output" == *"no evil packages (5 bytes)"* ]]
    [ "$(acurl a -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
        -d "$(mkdoc good)" /api/npm/npmr/good)" = 201 ]
    grep -q "plugin npmguard: npm upload npmr/good/-/good-1.0.0.tgz" "$NODE_a_DIR/stderr.log"
    [ "$(acurl a -o /dev/null -w '%{http_code}' /api/npm/npmr/good/-/good-1.0.0.tgz)" = 451 ]
    del_plugin npmguard
    [ "$(acurl a /api/npm/npmr/good/-/good-1.0.0.tgz)" = hello ]
}
