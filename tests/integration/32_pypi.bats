#!/usr/bin/env bats
# The PyPI format (docs/pypi.md) driven by the real clients: twine uploads
# (password and access token) of wheels and sdists, pip install, download,
# --require-hashes, --only-binary with requires-python filtering, yanked
# versions, Debian's own wheels, a project built offline with pip wheel,
# poetry; the simple index (PEP 503/691/700/714), the JSON API, search,
# bad uploads, the cache (no query when warm, changes seen at once), and two
# nodes taking uploads of one project at once. pip and poetry talk to
# granary only (--index-url, no cache, no configuration file).
load helpers

setup_file() {
    start_pg
    export DB=$(new_db pypi)
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n1_DIR NODE_n2_DIR
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"pypi"}' "$NODE_n1_URL/api/repositories/py" >/dev/null
    export IDX1=$NODE_n1_URL/api/pypi/py IDX2=$NODE_n2_URL/api/pypi/py
    # pip's index URL with the credentials in it
    export SIMPLE1=${IDX1/http:\/\//http://admin:$PASS@}/simple/
    export SIMPLE2=${IDX2/http:\/\//http://admin:$PASS@}/simple/
    export TOOLS=$BATS_TEST_DIRNAME/tools D=$SUITE_TMP/dist
    mkdir -p "$D"
    # a small project built offline with Debian's setuptools and wheel
    local p=$SUITE_TMP/hello
    mkdir -p "$p/src/hello_pkg"
    cat >"$p/pyproject.toml" <<'EOF'
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "Hello_Pkg"
version = "1.0.0"
description = "a tiny package <for> tests & such"
requires-python = ">=3.7"
EOF
    echo 'GREETING = "hello 1.0.0"' >"$p/src/hello_pkg/__init__.py"
    (cd "$p" && /usr/bin/python3 -m pip wheel --no-build-isolation --no-deps --no-cache-dir -q -w "$D" . &&
        /usr/bin/python3 -c 'import sys; from setuptools import build_meta as b; b.build_sdist(sys.argv[1])' "$D") \
        >"$SUITE_TMP/build.log" 2>&1
    export WHL=$D/Hello_Pkg-1.0.0-py3-none-any.whl SDIST=$D/Hello_Pkg-1.0.0.tar.gz
    # one virtual environment (Debian's python, its setuptools visible) whose pip installs into --target dirs
    export VENV=$SUITE_TMP/venv
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
    twine_up n1 "$WHL" "$SDIST" >"$SUITE_TMP/first-upload.log" 2>&1
}
teardown_file() { cleanup_suite; }

# twine_up NODE FILE... : twine upload with the admin's password
twine_up() {
    local node=$1 url
    shift
    eval "url=\$NODE_${node}_URL"
    twine upload --non-interactive --disable-progress-bar --repository-url "$url/api/pypi/py/" \
        -u admin -p "$PASS" "$@"
}
# pipx ARGS...: the venv's pip, no cache, no configuration, no network but granary
pipx() {
    PIP_CONFIG_FILE=/dev/null "$VENV/bin/pip" --disable-pip-version-check --no-input --no-cache-dir "$@"
}
dist() { python3 "$TOOLS/pypi_dist.py" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
ac() { curl -sS -u "admin:$PASS" "$@"; }
# redirect URL: "<status> <Location>"
redirect() { curl -sS -u "admin:$PASS" -o /dev/null -D - "$1" | tr -d '\r' | awk '/^HTTP/ { s = $2 } tolower($1) == "location:" { l = $2 } END { print s, l }'; }
# mcount NODE: the node's PostgreSQL query count
mcount() {
    local url pw
    eval "url=\$NODE_${1}_URL pw=\$NODE_${1}_PASS"
    curl -sS -u "admin:${pw:-$PASS}" "$url/api/system/metrics" | awk '$1 == "granary_db_queries_total" { print $2 }'
}
# form NODE FIELD=VALUE... : a hand-made upload (curl -F), printing the body then the status
form() {
    local node=$1 url
    shift
    eval "url=\$NODE_${node}_URL"
    local args=()
    for f in "$@"; do args+=(-F "$f"); done
    curl -sS -u "admin:$PASS" -w ' %{http_code}' "${args[@]}" "$url/api/pypi/py/"
}

@test "twine uploads a wheel and an sdist; the simple index lists them with hashes, requires-python and core metadata" {
    cat "$SUITE_TMP/first-upload.log"
    grep -q 'Uploading Hello_Pkg-1.0.0-py3-none-any.whl' "$SUITE_TMP/first-upload.log"
    # HTML (PEP 503): the default, and what Accept: text/html gets
    run ac -D "$SUITE_TMP/h" "$IDX1/simple/hello-pkg/"
    echo "$output"
    grep -qi '^content-type: text/html' "$SUITE_TMP/h"
    grep -qi '^vary: accept' "$SUITE_TMP/h"
    grep -qi '^x-content-type-options: nosniff' "$SUITE_TMP/h"
    [[ "$output" == *'<meta name="pypi:repository-version" content="1.1">'* ]]
    local meta
    meta=$(ac "$IDX1/packages/hello-pkg/1.0.0/Hello_Pkg-1.0.0-py3-none-any.whl.metadata" | sha256sum | cut -d' ' -f1)
    [[ "$output" == *"href=\"../../packages/hello-pkg/1.0.0/Hello_Pkg-1.0.0-py3-none-any.whl#sha256=$(sha "$WHL")\" data-requires-python=\"&gt;=3.7\" data-dist-info-metadata=\"sha256=$meta\" data-core-metadata=\"sha256=$meta\">Hello_Pkg-1.0.0-py3-none-any.whl</a>"* ]]
    [[ "$output" == *"Hello_Pkg-1.0.0.tar.gz#sha256=$(sha "$SDIST")\" data-requires-python=\"&gt;=3.7\">Hello_Pkg-1.0.0.tar.gz</a>"* ]]
    # the core metadata served beside the wheel is the wheel's own METADATA (PEP 658)
    ac -o "$SUITE_TMP/m.served" "$IDX1/packages/hello-pkg/1.0.0/Hello_Pkg-1.0.0-py3-none-any.whl.metadata"
    python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("Hello_Pkg-1.0.0.dist-info/METADATA"))' \
        "$WHL" >"$SUITE_TMP/m.inside"
    cmp "$SUITE_TMP/m.served" "$SUITE_TMP/m.inside"
    # JSON (PEP 691, 700, 714) by Accept, from the other node
    run ac -D "$SUITE_TMP/j" -H 'Accept: application/vnd.pypi.simple.v1+json' "$IDX2/simple/hello-pkg/"
    echo "$output"
    grep -qi '^content-type: application/vnd.pypi.simple.v1+json' "$SUITE_TMP/j"
    grep -qi '^vary: accept' "$SUITE_TMP/j"
    [ "$(jq -r '.meta["api-version"]' <<<"$output")" = 1.1 ]
    [ "$(jq -r .name <<<"$output")" = hello-pkg ]
    [ "$(jq -c .versions <<<"$output")" = '["1.0.0"]' ]
    [ "$(jq -r '.files[0].hashes.sha256' <<<"$output")" = "$(sha "$WHL")" ]
    [ "$(jq -r '.files[0].size' <<<"$output")" = "$(stat -c %s "$WHL")" ]
    [ "$(jq -r '.files[0]["core-metadata"].sha256' <<<"$output")" = "$meta" ]
    [ "$(jq -r '.files[1]["core-metadata"]' <<<"$output")" = false ]
    [ "$(jq -r '.files[0]["requires-python"]' <<<"$output")" = '>=3.7' ]
    jq -r '.files[]["upload-time"]' <<<"$output" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$'
    # the files behind the links, on either node
    ac -o "$SUITE_TMP/back.whl" "$IDX2/packages/hello-pkg/1.0.0/Hello_Pkg-1.0.0-py3-none-any.whl"
    cmp "$WHL" "$SUITE_TMP/back.whl"
    # the project list, and the form's fields as properties of the file
    [ "$(ac -H 'Accept: application/vnd.pypi.simple.v1+json' "$IDX1/simple/" | jq -c .projects)" = '[{"name":"Hello-Pkg"}]' ]
    [[ "$(ac "$IDX2/simple/")" == *'<a href="hello-pkg/">Hello-Pkg</a>'* ]]
    run ac "$NODE_n1_URL/api/storage/py/hello-pkg/1.0.0/Hello_Pkg-1.0.0.tar.gz?properties"
    echo "$output"
    [ "$(jq -r '.properties["pypi.name"][0]' <<<"$output")" = Hello-Pkg ]
    [ "$(jq -r '.properties["pypi.version"][0]' <<<"$output")" = 1.0.0 ]
    [ "$(jq -r '.properties["pypi.summary"][0]' <<<"$output")" = 'a tiny package <for> tests & such' ]
    [ "$(jq -r '.properties["pypi.requires_python"][0]' <<<"$output")" = '>=3.7' ]
    [ "$(jq -r '.properties["pypi.filetype"][0]' <<<"$output")" = sdist ]
}

@test "names are normalized by redirects; Accept is negotiated (406 for none served)" {
    [ "$(redirect "$IDX1/simple/Hello.PKG/")" = "301 /api/pypi/py/simple/hello-pkg/" ]
    [ "$(redirect "$IDX1/simple/hello-pkg")" = "301 /api/pypi/py/simple/hello-pkg/" ]
    [ "$(redirect "$IDX1/simple")" = "301 /api/pypi/py/simple/" ]
    [ "$(redirect "$NODE_n1_URL/artifactory/api/pypi/py/simple/Hello_Pkg/")" = "301 /artifactory/api/pypi/py/simple/hello-pkg/" ]
    [ "$(code -u "admin:$PASS" -H 'Accept: application/json' "$IDX1/simple/hello-pkg/")" = 406 ]
    [ "$(ac -H 'Accept: application/vnd.pypi.simple.v1+html' -o /dev/null -w '%{content_type}' "$IDX1/simple/hello-pkg/")" = application/vnd.pypi.simple.v1+html ]
    [ "$(ac -H 'Accept: application/vnd.pypi.simple.latest+json' -o /dev/null -w '%{content_type}' "$IDX1/simple/hello-pkg/")" = application/vnd.pypi.simple.v1+json ]
    [ "$(ac -o /dev/null -w '%{content_type}' "$IDX1/simple/hello-pkg/?format=application/vnd.pypi.simple.v1%2Bjson")" = application/vnd.pypi.simple.v1+json ]
    [ "$(code -u "admin:$PASS" "$IDX1/simple/no-such-project/")" = 404 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/api/pypi/nosuchrepo/simple/")" = 404 ]
    # without credentials (anonymous access is off): 401 with a challenge, as pip expects
    run curl -sS -D - -o /dev/null "$IDX1/simple/hello-pkg/"
    [[ "$output" == *" 401 "* ]]
    [[ "$output" == *'WWW-Authenticate: Basic realm="granary"'* ]]
}

@test "pip install, pip download and pip install --require-hashes from granary only" {
    run pipx install --index-url "$SIMPLE1" --target "$SUITE_TMP/t1" hello-pkg
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(PYTHONPATH=$SUITE_TMP/t1 python3 -c 'import hello_pkg; print(hello_pkg.GREETING)')" = "hello 1.0.0" ]
    run pipx download --index-url "$SIMPLE2" --no-deps --only-binary :all: -d "$SUITE_TMP/dl" hello-pkg
    echo "$output"
    [ "$status" -eq 0 ]
    cmp "$WHL" "$SUITE_TMP/dl/Hello_Pkg-1.0.0-py3-none-any.whl"
    # the sdist too (its metadata prepared with Debian's setuptools)
    run pipx download --index-url "$SIMPLE2" --no-deps --no-binary :all: --no-build-isolation -d "$SUITE_TMP/dls" hello-pkg
    echo "$output"
    [ "$status" -eq 0 ]
    cmp "$SDIST" "$SUITE_TMP/dls/Hello_Pkg-1.0.0.tar.gz"
    echo "hello-pkg==1.0.0 --hash=sha256:$(sha "$WHL")" >"$SUITE_TMP/req.txt"
    run pipx install --index-url "$SIMPLE1" --require-hashes --only-binary :all: --target "$SUITE_TMP/t2" -r "$SUITE_TMP/req.txt"
    echo "$output"
    [ "$status" -eq 0 ]
    echo "hello-pkg==1.0.0 --hash=sha256:$(printf '%064d' 0)" >"$SUITE_TMP/bad.txt"
    run pipx install --index-url "$SIMPLE1" --require-hashes --only-binary :all: --target "$SUITE_TMP/t3" -r "$SUITE_TMP/bad.txt"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *"DO NOT MATCH"* ]]
}

@test "twine with an access token: __token__ or the user's name; a bad token is 401" {
    # a user who deploys to py, and a token of its own
    ac -X PUT -H 'Content-Type: application/json' -o /dev/null \
        -d '{"password":"password123","email":"ci@example.com","groups":[]}' "$NODE_n1_URL/api/security/users/ci"
    ac -X PUT -H 'Content-Type: application/json' -o /dev/null -d '{"repo":{
        "repositories":["py"],"include-patterns":["**"],"actions":{"users":{"ci":["read","write"]}}}}' \
        "$NODE_n1_URL/api/v2/security/permissions/t-ci"
    local tok
    tok=$(curl -sS -u ci:password123 -X POST -d username=ci -d expires_in=600 "$NODE_n1_URL/api/security/token" | jq -r .access_token)
    [[ "$tok" == grt_* ]]
    dist wheel "$D/tok" tokproj 1.0 >/dev/null
    dist wheel "$D/tok" tokproj 1.1 >/dev/null
    dist sdist "$D/tok" tokproj 1.0 >/dev/null
    run twine upload --non-interactive --disable-progress-bar --repository-url "$IDX2/" -u __token__ -p "$tok" "$D/tok/tokproj-1.0-py3-none-any.whl" "$D/tok/tokproj-1.0.tar.gz"
    echo "$output"
    [ "$status" -eq 0 ]
    run twine upload --non-interactive --disable-progress-bar --repository-url "$IDX1/" -u ci -p "$tok" "$D/tok/tokproj-1.1-py3-none-any.whl"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(ac -H 'Accept: application/vnd.pypi.simple.v1+json' "$IDX1/simple/tokproj/" | jq -c .versions)" = '["1.0","1.1"]' ]
    [ "$(ac -H 'Accept: application/vnd.pypi.simple.v1+json' "$IDX1/simple/tokproj/" | jq '.files | length')" = 3 ]
    run twine upload --non-interactive --disable-progress-bar --repository-url "$IDX1/" -u __token__ -p "grt_$(printf '%064d' 7)" "$D/tok/tokproj-1.1-py3-none-any.whl"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *"401"* ]]
    # --skip-existing recognises the answer to a file that is there
    run twine upload --non-interactive --disable-progress-bar --skip-existing --repository-url "$IDX1/" -u __token__ -p "$tok" "$D/tok/tokproj-1.1-py3-none-any.whl"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"Skipping"* ]]
    run twine upload --non-interactive --disable-progress-bar --repository-url "$IDX1/" -u __token__ -p "$tok" "$D/tok/tokproj-1.1-py3-none-any.whl"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *"400"* ]]
}

@test "pip --only-binary skips files whose requires-python excludes this Python" {
    dist wheel "$D/rp" pyreq 1.0 --requires-python '>=3' >/dev/null
    dist wheel "$D/rp" pyreq 2.0 --requires-python '>=4' >/dev/null
    twine_up n1 "$D"/rp/*.whl
    [[ "$(ac "$IDX1/simple/pyreq/")" == *'pyreq-2.0-py3-none-any.whl#sha256='*'" data-requires-python="&gt;=4"'* ]]
    run pipx install --index-url "$SIMPLE2" --only-binary :all: --target "$SUITE_TMP/rp" pyreq
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(PYTHONPATH=$SUITE_TMP/rp python3 -c 'import pyreq_mod; print(pyreq_mod.VERSION)')" = 1.0 ]
    run pipx install --index-url "$SIMPLE2" --only-binary :all: --target "$SUITE_TMP/rp2" 'pyreq==2.0'
    echo "$output"
    [ "$status" -ne 0 ]
}

@test "yank: listed with its reason, skipped by pip unless pinned, undone; yanked by property too" {
    dist wheel "$D/y" yanky 1.0 >/dev/null
    dist wheel "$D/y" yanky 1.1 >/dev/null
    twine_up n2 "$D"/y/*.whl
    run ac -X POST -H 'Content-Type: application/json' -d '{"reason":"broken \"build\" <1.1>"}' "$IDX1/yank/Yanky/1.1"
    echo "$output"
    [ "$(jq -r .yanked <<<"$output")" = true ]
    [ "$(jq -c .files <<<"$output")" = '["yanky/1.1/yanky-1.1-py3-none-any.whl"]' ]
    [[ "$(ac "$IDX2/simple/yanky/")" == *'data-yanked="broken &quot;build&quot; &lt;1.1&gt;"'* ]]
    [ "$(ac -H 'Accept: application/vnd.pypi.simple.v1+json' "$IDX2/simple/yanky/" | jq -r '.files[1].yanked')" = 'broken "build" <1.1>' ]
    run pipx install --index-url "$SIMPLE1" --target "$SUITE_TMP/y1" yanky
    [ "$status" -eq 0 ]
    [ "$(PYTHONPATH=$SUITE_TMP/y1 python3 -c 'import yanky_mod; print(yanky_mod.VERSION)')" = 1.0 ]
    run pipx install --index-url "$SIMPLE1" --target "$SUITE_TMP/y2" 'yanky==1.1'
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"yanked"* ]]
    [ "$(PYTHONPATH=$SUITE_TMP/y2 python3 -c 'import yanky_mod; print(yanky_mod.VERSION)')" = 1.1 ]
    [ "$(ac "$NODE_n2_URL/api/storage/py/yanky/1.1/yanky-1.1-py3-none-any.whl?properties" | jq -r '.properties["pypi.yanked"][0]')" = true ]
    # unyank, from the other node
    [ "$(ac -X DELETE -o /dev/null -w '%{http_code}' "$IDX2/yank/yanky/1.1")" = 200 ]
    [ "$(ac -H 'Accept: application/vnd.pypi.simple.v1+json' "$IDX1/simple/yanky/" | jq -r '.files[1].yanked')" = null ]
    run pipx install --index-url "$SIMPLE1" --target "$SUITE_TMP/y3" yanky
    [ "$status" -eq 0 ]
    [ "$(PYTHONPATH=$SUITE_TMP/y3 python3 -c 'import yanky_mod; print(yanky_mod.VERSION)')" = 1.1 ]
    # the property alone yanks too, seen at once by the cached index on both nodes
    ac -X PUT "$NODE_n1_URL/api/storage/py/yanky/1.1/yanky-1.1-py3-none-any.whl?properties=pypi.yanked=true" >/dev/null
    [[ "$(ac "$IDX2/simple/yanky/")" == *'yanky-1.1-py3-none-any.whl</a>'* ]]
    [[ "$(ac "$IDX2/simple/yanky/")" == *'data-yanked=""'* ]]
    [ "$(ac -X POST -o /dev/null -w '%{http_code}' "$IDX1/yank/yanky/9.9")" = 404 ]
}

@test "Debian's own wheels (pip, setuptools, wheel) go up with twine and come back byte for byte" {
    twine_up n2 /usr/share/python-wheels/*.whl
    local w n
    for w in /usr/share/python-wheels/*.whl; do
        n=$(basename "$w" | cut -d- -f1)
        run pipx download --index-url "$SIMPLE1" --no-deps --only-binary :all: -d "$SUITE_TMP/deb" "$n"
        echo "$output"
        [ "$status" -eq 0 ]
        cmp "$w" "$SUITE_TMP/deb/$(basename "$w")"
    done
    run pipx install --index-url "$SIMPLE1" --target "$SUITE_TMP/tw" wheel
    [ "$status" -eq 0 ]
    PYTHONPATH=$SUITE_TMP/tw python3 -c 'import wheel'
    [ "$(ac "$IDX1/pypi/setuptools/json" | jq -r .info.name)" = setuptools ]
}

@test "poetry resolves and installs from granary" {
    command -v poetry >/dev/null || skip "poetry is not installed"
    local app=$SUITE_TMP/poetry-app
    mkdir -p "$app"
    cat >"$app/pyproject.toml" <<EOF
[tool.poetry]
name = "app"
version = "0.1.0"
description = ""
authors = ["t <t@example.com>"]
packages = []

[tool.poetry.dependencies]
python = "^3.7"
hello-pkg = "^1.0"

[[tool.poetry.source]]
name = "granary"
url = "$IDX2/simple/"
default = true

[build-system]
requires = ["poetry-core"]
build-backend = "poetry.core.masonry.api"
EOF
    cd "$app"
    export POETRY_HTTP_BASIC_GRANARY_USERNAME=admin POETRY_HTTP_BASIC_GRANARY_PASSWORD=$PASS
    export POETRY_CACHE_DIR=$SUITE_TMP/poetry-cache POETRY_CONFIG_DIR=$SUITE_TMP/poetry-config POETRY_VIRTUALENVS_IN_PROJECT=true
    run timeout 120 poetry lock -n
    echo "$output"
    [ "$status" -eq 0 ]
    grep -q "sha256:$(sha "$WHL")" poetry.lock
    run timeout 120 poetry install -n --no-root
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(.venv/bin/python -c 'import hello_pkg; print(hello_pkg.GREETING)')" = "hello 1.0.0" ]
}

@test "bad uploads are 400 with a reason and store nothing" {
    local before
    before=$(psql_db pypi "SELECT count(*) FROM artifacts")
    # a file name that lies about its version: the form and the name say 9.9, METADATA 1.0
    dist wheel "$D/bad" liar 1.0 --filename liar-9.9-py3-none-any.whl >/dev/null
    run form n1 ':action=file_upload' name=liar version=9.9 "content=@$D/bad/liar-9.9-py3-none-any.whl"
    echo "$output"
    [[ "$output" == *"metadata says version '1.0', the form '9.9'"*" 400" ]]
    run form n1 ':action=file_upload' name=liar version=1.1 "content=@$D/bad/liar-9.9-py3-none-any.whl"
    [[ "$output" == *"says version 9.9, the form 1.1"*" 400" ]]
    # an sdist whose PKG-INFO says another version (or another project) than its name and the form
    dist sdist "$D/bad" sliar 2.0 --meta-version 1.0 >/dev/null
    run form n2 ':action=file_upload' name=sliar version=2.0 "content=@$D/bad/sliar-2.0.tar.gz"
    echo "$output"
    [[ "$output" == *"metadata says version '1.0', the form '2.0'"*" 400" ]]
    dist sdist "$D/bad" sother 1.0 --meta-name somebody-else >/dev/null
    run form n1 ':action=file_upload' name=sother version=1.0 "content=@$D/bad/sother-1.0.tar.gz"
    echo "$output"
    [[ "$output" == *"somebody-else"*" 400" ]]
    # another project's file
    run form n1 ':action=file_upload' name=other version=1.0 "content=@$WHL"
    [[ "$output" == *"names another project"*" 400" ]]
    # a broken zip
    dist wheel "$D/bad" broken 1.0 >/dev/null
    head -c 300 "$D/bad/broken-1.0-py3-none-any.whl" >"$D/bad/cut.whl"
    mv "$D/bad/cut.whl" "$D/bad/broken-1.0-py3-none-any.whl"
    run form n2 ':action=file_upload' name=broken version=1.0 "content=@$D/bad/broken-1.0-py3-none-any.whl"
    echo "$output"
    [[ "$output" == *"not a valid wheel"*" 400" ]]
    # a wrong digest (sha256, then md5)
    dist wheel "$D/bad" digest 1.0 >/dev/null
    run form n1 ':action=file_upload' name=digest version=1.0 "sha256_digest=$(printf '%064d' 1)" "content=@$D/bad/digest-1.0-py3-none-any.whl"
    echo "$output"
    [[ "$output" == *"sha256_digest does not match"*" 400" ]]
    run form n1 ':action=file_upload' name=digest version=1.0 "md5_digest=$(printf '%032d' 1)" "content=@$D/bad/digest-1.0-py3-none-any.whl"
    [[ "$output" == *"md5_digest does not match"*" 400" ]]
    # metadata over the limit (2 MiB), in a small compressed wheel
    dist wheel "$D/bad" huge 1.0 --pad 2200000 >/dev/null
    run form n2 ':action=file_upload' name=huge version=1.0 "content=@$D/bad/huge-1.0-py3-none-any.whl"
    echo "$output"
    [[ "$output" == *"is larger than the limit of 2097152 bytes"*" 400" ]]
    dist sdist "$D/bad" hugesd 1.0 --pad 2200000 >/dev/null
    run form n1 ':action=file_upload' name=hugesd version=1.0 "content=@$D/bad/hugesd-1.0.tar.gz"
    echo "$output"
    [[ "$output" == *"is larger than the limit of 2097152 bytes"*" 400" ]]
    # a broken gzip: an sdist cut short
    dist sdist "$D/bad" cutsd 1.0 >/dev/null
    head -c 100 "$D/bad/cutsd-1.0.tar.gz" >"$D/bad/cut.tgz"
    mv "$D/bad/cut.tgz" "$D/bad/cutsd-1.0.tar.gz"
    run form n2 ':action=file_upload' name=cutsd version=1.0 "content=@$D/bad/cutsd-1.0.tar.gz"
    echo "$output"
    [[ "$output" == *"not a valid sdist (.tar.gz)"*" 400" ]]
    # an sdist without PKG-INFO, an unknown action, a version that is no version, a truncated body
    tar czf "$D/bad/nopkginfo-1.0.tar.gz" -C "$D/bad" huge-1.0-py3-none-any.whl
    run form n1 ':action=file_upload' name=nopkginfo version=1.0 "content=@$D/bad/nopkginfo-1.0.tar.gz"
    [[ "$output" == *"has no top-level <dir>/PKG-INFO"*" 400" ]]
    run form n1 ':action=doc_upload' name=hello-pkg version=1.0.0 "content=@$WHL"
    [[ "$output" == *"this index takes ':action=file_upload' only"*" 400" ]]
    run form n1 ':action=file_upload' name=hello-pkg version=one "content=@$WHL"
    [[ "$output" == *"not a valid version (PEP 440)"*" 400" ]]
    run ac -w ' %{http_code}' -H 'Content-Type: multipart/form-data; boundary=zz' \
        --data-binary $'--zz\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n--zz\r\nContent-Disposition: form-data; name="content"; filename="x-1.0.tar.gz"\r\n\r\nabc' "$IDX1/"
    [[ "$output" == *"truncated or malformed"*" 400" ]]
    # a PUT into the repository is not an upload
    [ "$(code -u "admin:$PASS" -T "$WHL" "$NODE_n1_URL/py/hello-pkg/1.0.0/x-1.0-py3-none-any.whl")" = 405 ]
    # nothing of all this was stored, listed or left behind
    [ "$(psql_db pypi "SELECT count(*) FROM artifacts")" = "$before" ]
    [ "$(code -u "admin:$PASS" "$IDX1/simple/liar/")" = 404 ]
    [ "$(code -u "admin:$PASS" "$IDX2/simple/huge/")" = 404 ]
    [ "$(psql_db pypi "SELECT count(*) FROM binaries WHERE sha256 = '$(sha "$D/bad/digest-1.0-py3-none-any.whl")'")" = 0 ]
    find "$NODE_n1_DIR/filestore/_pre" "$NODE_n2_DIR/filestore/_pre" -mindepth 1
    [ "$(find "$NODE_n1_DIR/filestore/_pre" "$NODE_n2_DIR/filestore/_pre" -mindepth 1 | wc -l)" = 0 ]
}

@test "the JSON API: info, releases, urls and digests, per project and per version" {
    dist wheel "$D/js" jsproj 1.0 --requires-dist 'hello-pkg>=1' >/dev/null
    dist wheel "$D/js" jsproj 2.0rc1 >/dev/null
    dist sdist "$D/js" jsproj 1.0 >/dev/null
    twine_up n1 "$D"/js/*
    run ac "$IDX2/pypi/JSProj/json"
    echo "$output"
    [ "$(jq -r .info.name <<<"$output")" = jsproj ]
    [ "$(jq -r .info.version <<<"$output")" = 1.0 ] # the highest final release
    [ "$(jq -r .info.summary <<<"$output")" = 'jsproj for tests' ]
    [ "$(jq -c .info.requires_dist <<<"$output")" = '["hello-pkg>=1"]' ]
    [ "$(jq -c '.releases | keys' <<<"$output")" = '["1.0","2.0rc1"]' ]
    [ "$(jq '.releases["1.0"] | length' <<<"$output")" = 2 ]
    [ "$(jq -r '.urls[] | select(.packagetype == "sdist") | .digests.sha256' <<<"$output")" = "$(sha "$D/js/jsproj-1.0.tar.gz")" ]
    [ "$(jq -r '.urls[] | select(.packagetype == "bdist_wheel") | .digests.md5' <<<"$output")" = "$(md5sum "$D/js/jsproj-1.0-py3-none-any.whl" | cut -d' ' -f1)" ]
    curl -fsS -u "admin:$PASS" -o "$SUITE_TMP/js.whl" "$(jq -r '.urls[] | select(.packagetype == "bdist_wheel") | .url' <<<"$output")"
    cmp "$SUITE_TMP/js.whl" "$D/js/jsproj-1.0-py3-none-any.whl"
    run ac "$IDX1/pypi/jsproj/2.0rc1/json"
    [ "$(jq -r .info.version <<<"$output")" = 2.0rc1 ]
    [ "$(jq -r '.urls[0].filename' <<<"$output")" = jsproj-2.0rc1-py3-none-any.whl ]
    [ "$(jq -r .releases <<<"$output")" = null ]
    [ "$(code -u "admin:$PASS" "$IDX1/pypi/jsproj/3.0/json")" = 404 ]
    [ "$(code -u "admin:$PASS" "$IDX1/pypi/nothing-here/json")" = 404 ]
}

@test "search by name and version, and through the properties" {
    run ac "$NODE_n1_URL/api/search/pypi?name=Hello_Pkg"
    echo "$output"
    [ "$(jq '.results | length' <<<"$output")" = 2 ]
    [[ "$(jq -r '.results[0].uri' <<<"$output")" == */api/storage/py/hello-pkg/1.0.0/Hello_Pkg-1.0.0* ]]
    [ "$(ac "$NODE_n2_URL/api/search/pypi?name=jsproj&version=2.0RC1" | jq -r '.results[0].uri')" = "$NODE_n2_URL/api/storage/py/jsproj/2.0rc1/jsproj-2.0rc1-py3-none-any.whl" ]
    [ "$(ac "$NODE_n1_URL/api/search/pypi?name=hello-pkg&version=9" | jq '.results | length')" = 0 ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/api/search/pypi?version=1.0")" = 400 ]
    [ "$(ac "$NODE_n1_URL/api/search/prop?pypi.name=Hello-Pkg&repos=py" | jq '.results | length')" = 2 ]
}

@test "a warm simple page makes no PostgreSQL query (one node: a cluster's heartbeats query)" {
    start_node s --database-url "$(new_db pypi_single)"
    local url=$NODE_s_URL pw=$NODE_s_PASS
    curl -fsS -u "admin:$pw" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"pypi"}' "$url/api/repositories/py" >/dev/null
    twine upload --non-interactive --disable-progress-bar --repository-url "$url/api/pypi/py/" \
        -u admin -p "$pw" "$WHL" "$SDIST"
    local i q1 q2 idx=$url/api/pypi/py
    for i in 1 2; do
        curl -sS -u "admin:$pw" -o /dev/null "$idx/simple/hello-pkg/"
        curl -sS -u "admin:$pw" -o /dev/null -H 'Accept: application/vnd.pypi.simple.v1+json' "$idx/simple/hello-pkg/"
        curl -sS -u "admin:$pw" -o /dev/null "$idx/simple/"
        curl -sS -u "admin:$pw" -o /dev/null "$idx/packages/hello-pkg/1.0.0/Hello_Pkg-1.0.0.tar.gz"
    done
    q1=$(mcount s)
    for i in $(seq 25); do
        curl -sS -u "admin:$pw" -o /dev/null "$idx/simple/hello-pkg/"
        curl -sS -u "admin:$pw" -o /dev/null -H 'Accept: application/vnd.pypi.simple.v1+json' "$idx/simple/hello-pkg/"
        curl -sS -u "admin:$pw" -o /dev/null -I "$idx/simple/hello-pkg/"
        curl -sS -u "admin:$pw" -o /dev/null "$idx/simple/"
        curl -sS -u "admin:$pw" -o /dev/null "$idx/packages/hello-pkg/1.0.0/Hello_Pkg-1.0.0.tar.gz"
    done
    q2=$(mcount s)
    echo "queries before $q1 after $q2"
    [ -n "$q1" ]
    [ "$q1" = "$q2" ]
    stop_node s
}

@test "deletes and re-uploads are seen at once by both nodes' cached indexes" {
    ac -o /dev/null "$IDX1/simple/hello-pkg/"
    ac -o /dev/null "$IDX2/simple/hello-pkg/"
    # a delete through the generic API, on the other node: gone from both indexes at once
    [ "$(ac -X DELETE -o /dev/null -w '%{http_code}' "$NODE_n2_URL/py/hello-pkg/1.0.0/Hello_Pkg-1.0.0.tar.gz")" = 204 ]
    [[ "$(ac "$IDX1/simple/hello-pkg/")" != *'Hello_Pkg-1.0.0.tar.gz'* ]]
    [[ "$(ac "$IDX2/simple/hello-pkg/")" != *'Hello_Pkg-1.0.0.tar.gz'* ]]
    # deleted, the file name is free again; twine puts it back
    twine_up n2 "$SDIST"
    [[ "$(ac "$IDX1/simple/hello-pkg/")" == *'Hello_Pkg-1.0.0.tar.gz</a>'* ]]
    # a wheel deleted alone leaves its metadata file, which a new upload replaces
    ac -X DELETE "$NODE_n1_URL/py/hello-pkg/1.0.0/Hello_Pkg-1.0.0-py3-none-any.whl"
    [[ "$(ac "$IDX2/simple/hello-pkg/")" != *'-py3-none-any.whl'* ]]
    twine_up n1 "$WHL"
    [[ "$(ac "$IDX2/simple/hello-pkg/")" == *'data-core-metadata'* ]]
    # a whole project deleted: gone from the project list too
    ac -X DELETE "$NODE_n1_URL/py/tokproj"
    [[ "$(ac "$IDX2/simple/")" != *tokproj* ]]
    [ "$(code -u "admin:$PASS" "$IDX2/simple/tokproj/")" = 404 ]
}

@test "two uploads of one project through two nodes at once are listed on every node at once" {
    dist wheel "$D/ha" ha_proj 1.0 >/dev/null
    dist sdist "$D/ha" ha_proj 1.0 >/dev/null
    dist wheel "$D/ha" ha_proj 1.1 >/dev/null
    # both nodes have the project's absence cached
    [ "$(code -u "admin:$PASS" "$IDX1/simple/ha-proj/")" = 404 ]
    [ "$(code -u "admin:$PASS" "$IDX2/simple/ha-proj/")" = 404 ]
    ac -o /dev/null "$IDX1/simple/"
    ac -o /dev/null "$IDX2/simple/"
    twine_up n1 "$D/ha/ha_proj-1.0-py3-none-any.whl" "$D/ha/ha_proj-1.1-py3-none-any.whl" >"$SUITE_TMP/ha1.log" 2>&1 &
    local p1=$!
    twine_up n2 "$D/ha/ha_proj-1.0.tar.gz" >"$SUITE_TMP/ha2.log" 2>&1 &
    local p2=$!
    wait "$p1"
    wait "$p2"
    local n
    for n in 1 2; do
        local idx=IDX$n
        run ac -H 'Accept: application/vnd.pypi.simple.v1+json' "${!idx}/simple/ha-proj/"
        echo "$output"
        [ "$(jq -c '[.files[].filename] | sort' <<<"$output")" = '["ha_proj-1.0-py3-none-any.whl","ha_proj-1.0.tar.gz","ha_proj-1.1-py3-none-any.whl"]' ]
        run ac "${!idx}/simple/"
        echo "$output"
        [[ "$output" == *'<a href="ha-proj/">ha-proj</a>'* ]] # the name as twine sent it
    done
    run pipx install --index-url "$SIMPLE2" --target "$SUITE_TMP/ha" ha-proj
    [ "$status" -eq 0 ]
    [ "$(PYTHONPATH=$SUITE_TMP/ha python3 -c 'import ha_proj_mod; print(ha_proj_mod.VERSION)')" = 1.1 ]
}

@test "permissions: uploads need write where the file goes, pages show only readable files" {
    ac -X PUT -H 'Content-Type: application/json' -o /dev/null \
        -d '{"password":"password123","email":"bob@example.com","groups":[]}' "$NODE_n1_URL/api/security/users/bob"
    ac -X PUT -H 'Content-Type: application/json' -o /dev/null -d '{"repo":{
        "repositories":["py"],"include-patterns":["restricted/**"],"exclude-patterns":["restricted/2.0/**"],
        "actions":{"users":{"bob":["read","write"]}}}}' "$NODE_n1_URL/api/v2/security/permissions/t-bob"
    dist wheel "$D/perm" restricted 1.0 >/dev/null
    dist wheel "$D/perm" restricted 2.0 >/dev/null
    dist wheel "$D/perm" elsewhere 1.0 >/dev/null
    twine_up n1 "$D/perm/restricted-2.0-py3-none-any.whl"
    run twine upload --non-interactive --disable-progress-bar --repository-url "$IDX2/" -u bob -p password123 "$D/perm/restricted-1.0-py3-none-any.whl"
    echo "$output"
    [ "$status" -eq 0 ]
    # no write on elsewhere/ : 403
    run curl -sS -u bob:password123 -w ' %{http_code}' -F ':action=file_upload' -F name=elsewhere -F version=1.0 \
        -F "content=@$D/perm/elsewhere-1.0-py3-none-any.whl" "$IDX1/"
    echo "$output"
    [[ "$output" == *"no write permission"*" 403" ]]
    # bob reads the project and its 1.0 file, not the 2.0 one
    run curl -sS -u bob:password123 -H 'Accept: application/vnd.pypi.simple.v1+json' "$IDX1/simple/restricted/"
    echo "$output"
    [ "$(jq -c '[.files[].filename]' <<<"$output")" = '["restricted-1.0-py3-none-any.whl"]' ]
    [ "$(jq -c .versions <<<"$output")" = '["1.0"]' ]
    [ "$(curl -sS -u bob:password123 "$IDX1/pypi/restricted/json" | jq -c '.releases | keys')" = '["1.0"]' ]
    [ "$(code -u bob:password123 "$IDX1/packages/restricted/2.0/restricted-2.0-py3-none-any.whl")" = 403 ]
    [ "$(code -u bob:password123 "$IDX1/simple/hello-pkg/")" = 403 ]
    [ "$(curl -sS -u bob:password123 -H 'Accept: application/vnd.pypi.simple.v1+json' "$IDX1/simple/" | jq -c .projects)" = '[{"name":"restricted"}]' ]
    # bob may yank what he writes (write implies annotate), not the 2.0 file; the admin sees everything
    [ "$(code -u bob:password123 -X POST "$IDX1/yank/restricted/2.0")" = 403 ]
    [ "$(code -u bob:password123 -X POST "$IDX1/yank/restricted/1.0?reason=old")" = 200 ]
    [ "$(ac -H 'Accept: application/vnd.pypi.simple.v1+json' "$IDX1/simple/restricted/" | jq '.files | length')" = 2 ]
    # an anonymous upload is refused before its body
    [ "$(code -F ':action=file_upload' "$IDX1/")" = 401 ]
}
