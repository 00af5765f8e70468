#!/usr/bin/env bats
# run-tests: alone (a browser and three nodes: no other suite runs beside it)
# The web UI in a real browser (docs/ui.md): Debian's chromium, headless,
# driven by puppeteer-core (tests/ui/package.json) through nginx in front of
# three nodes. One scenario of tests/ui/ui.mjs per test; each saves
# screenshots under build/test-output/ui/ (UI_SHOTS), which are not
# committed. scripts/install-deps installs chromium and the npm packages.
load ../integration/helpers

setup_file() {
    export UI_DIR=$PWD/tests/ui
    export SHOTS=${UI_SHOTS:-$PWD/build/test-output/ui}
    rm -rf "$SHOTS"
    mkdir -p "$SHOTS"
    start_pg
    export DB=$(new_db ui)
    start_cluster_node n1 "$DB" --trusted-proxy 127.0.0.1
    start_cluster_node n2 "$DB" --trusted-proxy 127.0.0.1
    start_cluster_node n3 "$DB" --trusted-proxy 127.0.0.1
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL
    printf '%s\n' "$PASS" >"$SUITE_TMP/admin.pass"
    # nginx in front, configured by granary
    export LB=$SUITE_TMP/lb
    mkdir -p "$LB"
    local port
    port=$(free_port)
    export BASE=http://127.0.0.1:$port
    "$GRANARYCTL" proxy-config --type nginx --url "$NODE_n1_URL,$NODE_n2_URL,$NODE_n3_URL" \
        --password-file "$SUITE_TMP/admin.pass" --listen "127.0.0.1:$port" --out "$LB/granary.conf"
    scripts/nginx-main-conf "$LB" >"$LB/nginx.conf"
    nginx -p "$LB" -c "$LB/nginx.conf"
    for _ in $(seq 50); do [ -s "$LB/nginx.pid" ] && break; sleep 0.1; done
    cat "$LB/nginx.pid" >>"$SUITE_TMP/pids"
    # what the scenarios find: a repository with two folders, and stored markup
    local h=(-fsS -u "admin:$PASS")
    curl "${h[@]}" -X PUT -H 'Content-Type: application/json' -d '{"rclass":"local","description":"the team"}' \
        "$BASE/api/repositories/team" >/dev/null
    echo "read me" | curl "${h[@]}" -T - "$BASE/team/docs/readme.txt" >/dev/null
    echo "int main;" | curl "${h[@]}" -T - "$BASE/team/src/main.c" >/dev/null
    curl "${h[@]}" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","description":"<img src=x onerror=\"window.__pwned=3\"> a description with markup"}' \
        "$BASE/api/repositories/evil" >/dev/null
    export EVIL='<img src=x onerror=window.__pwned=1>.txt'
    echo evil | curl "${h[@]}" -T - "$BASE/evil/%3Cimg%20src=x%20onerror=window.__pwned=1%3E.txt" >/dev/null
    curl "${h[@]}" -X PUT \
        "$BASE/api/storage/evil/%3Cimg%20src=x%20onerror=window.__pwned=1%3E.txt?properties=note=%3Cscript%3Ewindow.__pwned%5C=2%3C/script%3E" \
        >/dev/null
    # a file to upload: 2 MiB, its bar moves at the 2 MiB/s the scenario allows
    export FILE=$SUITE_TMP/tool-1.0.bin
    head -c $((2 * 1024 * 1024)) /dev/urandom >"$FILE"
}
teardown_file() { cleanup_suite; }

# ui SCENARIO: run it, its log in the TAP output
ui() {
    run timeout 120 node "$UI_DIR/ui.mjs" "$1"
    echo "$output"
    grep '^# ' <<<"$output" >&3 || true
    [ "$status" -eq 0 ]
}

@test "the UI's modules parse as JavaScript modules, and the browser and puppeteer-core are installed" {
    local f t=$SUITE_TMP/check.mjs
    for f in $(find ui/js -name '*.js'); do
        cp "$f" "$t"
        node --check "$t"
    done
    [ -x /usr/bin/chromium ]
    [ -d "$UI_DIR/node_modules/puppeteer-core" ]
}

@test "each format's snippet names the file's coordinates and the repository's URL" {
    cp ui/js/snippets.js "$SUITE_TMP/snippets.mjs"
    cat >"$SUITE_TMP/s.mjs" <<'EOF'
import { snippets } from './snippets.mjs';
const o = 'http://h:8080';
const cases = [
  ['m', 'maven', 'org/ex/app/1.0/app-1.0.jar', 'Maven dependency', '<artifactId>app</artifactId>'],
  ['n', 'npm', '@s/p/-/p-2.1.0.tgz', 'npm install', 'npm install @s/p@2.1.0 --registry http://h:8080/api/npm/n/'],
  ['p', 'pypi', 'demo-pkg/1.2/demo_pkg-1.2-py3-none-any.whl', 'pip install', "pip install 'demo-pkg==1.2' --index-url http://h:8080/api/pypi/p/simple/"],
  ['d', 'docker', 'team/app/_tags/v1/manifest.json', 'docker pull', 'docker pull h:8080/d/team/app:v1'],
];
for (const [repo, type, path, title, text] of cases) {
  const s = snippets(o, repo, type, path, `${o}/${repo}/${path}`, false).find((x) => x.title === title);
  if (!s || !s.text.includes(text)) { console.log(`${type}: ${JSON.stringify(s)}`); process.exit(1); }
}
// no client snippet for what is not a package file; curl always
const meta = snippets(o, 'p', 'pypi', 'demo-pkg/1.2/demo_pkg-1.2-py3-none-any.whl.metadata', 'u', false);
if (meta.length !== 1 || meta[0].title !== 'curl') { console.log(JSON.stringify(meta)); process.exit(1); }
console.log('snippets ok');
EOF
    run node "$SUITE_TMP/s.mjs"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$output" = "snippets ok" ]
}

@test "first load through nginx: / leads a browser to /ui/, under 150 KB, errors in words" {
    ui firstload
}

@test "sign in, create a repository, upload with a progress bar to 100 %, browse, checksums, search, a property, delete and restore" {
    ui flow
}

@test "a user made with a permission target sees only what it grants" {
    ui users
}

@test "names, properties and descriptions with markup and script are shown as text and nothing runs" {
    ui xss
}

@test "readable at 320 px and on a large screen, dark and light, every control labelled, keyboard only" {
    ui layout
}

@test "the cluster screen through nginx shows a killed node going down by itself" {
    export KILL_NODE=n3
    KILL_PID=$(node_pid n3)
    export KILL_PID
    ui cluster
}
