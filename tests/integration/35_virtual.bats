#!/usr/bin/env bats
# Virtual repositories (docs/remote.md) on two nodes: members in order with
# their patterns and the caller's permissions, deploys to
# defaultDeploymentRepo, cycles refused; mvn resolving a real dependency
# tree through a virtual of a local repository and Debian's Maven
# repository behind nginx ("central"); merged maven-metadata.xml kept and
# invalidated on both nodes; npm install of a real tree through a virtual
# of a local repository and another granary as the npm upstream.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db virt)
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n1_PORT
    # another granary: the upstream of the npm and Maven remotes
    start_node up --database-url "$(new_db up)"
    export NODE_up_URL UP_PASS=$(cat "$SUITE_TMP/node-up/admin.password")
    ucurl -f -X PUT -H 'Content-Type: application/json' -d '{"rclass":"local","packageType":"npm"}' \
        "$NODE_up_URL/api/repositories/npm-up" >/dev/null
    ucurl -f -X PUT -H 'Content-Type: application/json' -d '{"rclass":"local","packageType":"maven"}' \
        "$NODE_up_URL/api/repositories/mvn-up" >/dev/null
    # nginx: Debian's Maven repository as "central", and a few files
    export NG=$SUITE_TMP/nginx NG_PORT=$(free_port)
    mkdir -p "$NG/root/files" "$NG/tmp"
    echo "upstream copy" >"$NG/root/files/both.txt"
    echo "only upstream" >"$NG/root/files/up.txt"
    cat >"$NG/nginx.conf" <<EOF
worker_processes 1;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 256; }
http {
    access_log $NG/access.log;
    client_body_temp_path $NG/tmp; proxy_temp_path $NG/tmp; fastcgi_temp_path $NG/tmp;
    uwsgi_temp_path $NG/tmp; scgi_temp_path $NG/tmp;
    server {
        listen 127.0.0.1:$NG_PORT;
        root $NG/root;
        location /maven2/ { alias /usr/share/maven-repo/; }
    }
}
EOF
    nginx -p "$NG" -c "$NG/nginx.conf"
    wait_until 10 test -s "$NG/nginx.pid"
    cat "$NG/nginx.pid" >>"$SUITE_TMP/pids"
    # generic
    mkrepo gloc1 '"rclass":"local","packageType":"generic"'
    mkrepo gloc2 '"rclass":"local","packageType":"generic"'
    mkrepo grem "\"rclass\":\"remote\",\"packageType\":\"generic\",\"url\":\"http://127.0.0.1:$NG_PORT/files\""
    mkrepo gvirt '"rclass":"virtual","packageType":"generic","repositories":["gloc1","grem","gloc2"],"defaultDeploymentRepo":"gloc1"'
    # Maven
    mkrepo libs-local '"rclass":"local","packageType":"maven"'
    mkrepo central "\"rclass\":\"remote\",\"packageType\":\"maven\",\"url\":\"http://127.0.0.1:$NG_PORT/maven2\""
    mkrepo up-maven "\"rclass\":\"remote\",\"packageType\":\"maven\",\"url\":\"$NODE_up_URL/mvn-up\",\"username\":\"admin\",\"password\":\"$UP_PASS\""
    mkrepo libs '"rclass":"virtual","packageType":"maven","repositories":["libs-local","central","up-maven"],"defaultDeploymentRepo":"libs-local"'
    # npm
    mkrepo npm-local '"rclass":"local","packageType":"npm"'
    mkrepo npm-remote "\"rclass\":\"remote\",\"packageType\":\"npm\",\"url\":\"$NODE_up_URL/api/npm/npm-up\",\"username\":\"admin\",\"password\":\"$UP_PASS\""
    mkrepo npm '"rclass":"virtual","packageType":"npm","repositories":["npm-local","npm-remote"],"defaultDeploymentRepo":"npm-local"'
}
teardown_file() { cleanup_suite; }

cget() { curl -sS -u "admin:$PASS" "$@"; }
ucurl() { curl -sS -u "admin:$UP_PASS" "$@"; }
mkrepo() { # KEY FIELDS
    cget -f -X PUT -H 'Content-Type: application/json' -d "{$2}" "$NODE_n1_URL/api/repositories/$1" >/dev/null
}
put() { # NODE-URL REPO PATH CONTENT
    printf '%s' "$4" | cget -f -X PUT --data-binary @- "$1/$2/$3" >/dev/null
}

@test "settings: members in order, cycles refused, members of another type or missing refused" {
    mkrepo va '"rclass":"virtual","packageType":"generic","repositories":["gloc1"]'
    mkrepo vb '"rclass":"virtual","packageType":"generic","repositories":["va","gloc2"]'
    run cget "$NODE_n2_URL/api/repositories/vb"
    [ "$(echo "$output" | jq -c .repositories)" = '["va","gloc2"]' ]
    [ "$(echo "$output" | jq -r .defaultDeploymentRepo)" = "" ]
    run cget -X POST -H 'Content-Type: application/json' -d '{"repositories":["gloc1","vb"]}' "$NODE_n1_URL/api/repositories/va"
    echo "$output"
    [[ "$output" == *'"status":400'*cycle* ]]
    for bad in '"repositories":["va2"]' '"repositories":["libs-local"]' '"repositories":["nosuch"]' \
        '"repositories":["gloc1","gloc1"]' '"repositories":"gloc1"' \
        '"repositories":["gloc1"],"defaultDeploymentRepo":"gloc2"' \
        '"repositories":["grem"],"defaultDeploymentRepo":"grem"' '"memberPatterns":{"gloc1":{"x":1}}'; do
        run code -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
            -d "{\"rclass\":\"virtual\",\"packageType\":\"generic\",$bad}" "$NODE_n1_URL/api/repositories/va2"
        [ "$output" = 400 ] || { echo "accepted: $bad"; return 1; }
    done
    # self-reference
    [ "$(code -u "admin:$PASS" -X POST -H 'Content-Type: application/json' -d '{"repositories":["va"]}' "$NODE_n1_URL/api/repositories/va")" = 400 ]
    [ "$(cget "$NODE_n1_URL/api/repositories" | jq -r '.[] | select(.key=="vb") | .type')" = VIRTUAL ]
}

@test "generic: the first member that has a file serves it, with its patterns and the caller's permissions" {
    put "$NODE_n1_URL" gloc1 both.txt "first member"
    put "$NODE_n1_URL" gloc2 both.txt "third member"
    put "$NODE_n1_URL" gloc2 only2.txt "only in the third"
    put "$NODE_n1_URL" gloc1 sec/x.txt "first, but excluded"
    put "$NODE_n1_URL" gloc2 sec/x.txt "third, allowed"
    [ "$(cget -f "$NODE_n2_URL/gvirt/both.txt")" = "first member" ]
    [ "$(cget -f "$NODE_n2_URL/gvirt/only2.txt")" = "only in the third" ]
    # the remote member in the middle fetches what the locals lack
    [ "$(cget -f "$NODE_n1_URL/gvirt/up.txt")" = "only upstream" ]
    [ "$(cget -f "$NODE_n2_URL/grem-cache/up.txt")" = "only upstream" ]
    [ "$(code -u "admin:$PASS" "$NODE_n1_URL/gvirt/nowhere.txt")" = 404 ]
    # memberPatterns: gloc1 no longer asked for sec/**
    cget -f -X POST -H 'Content-Type: application/json' \
        -d '{"memberPatterns":{"gloc1":{"excludesPattern":"sec/**"}}}' "$NODE_n1_URL/api/repositories/gvirt" >/dev/null
    [ "$(cget -f "$NODE_n2_URL/gvirt/sec/x.txt")" = "third, allowed" ]
    [ "$(cget -f "$NODE_n2_URL/gvirt/both.txt")" = "first member" ]
    # a caller who may not read the first member gets the next one's
    cget -f -X PUT -H 'Content-Type: application/json' -d '{"password":"bob-pass-1","email":"b@x"}' \
        "$NODE_n1_URL/api/security/users/bob" >/dev/null
    cget -f -X PUT -H 'Content-Type: application/json' \
        -d '{"name":"bob-reads","repo":{"repositories":["gvirt","gloc2","grem"],"include-patterns":["**"],"actions":{"users":{"bob":["read"]}}}}' \
        "$NODE_n1_URL/api/v2/security/permissions/bob-reads" >/dev/null
    [ "$(curl -sSf -u bob:bob-pass-1 "$NODE_n2_URL/gvirt/both.txt")" = "upstream copy" ]
    [ "$(code -u bob:bob-pass-1 "$NODE_n2_URL/gloc1/both.txt")" = 403 ]
    # what a caller reads through a virtual repository is what it reads in its members
    [ "$(curl -sSf -u bob:bob-pass-1 "$NODE_n2_URL/vb/only2.txt")" = "only in the third" ]
    cget -f -X PUT -H 'Content-Type: application/json' -d '{"password":"carol-pass-1","email":"c@x"}' \
        "$NODE_n1_URL/api/security/users/carol" >/dev/null
    [ "$(code -u carol:carol-pass-1 "$NODE_n2_URL/gvirt/both.txt")" = 403 ]
    [ "$(code "$NODE_n2_URL/gvirt/both.txt")" = 401 ]
}

@test "deploys go to defaultDeploymentRepo; without one 405; deletes 405" {
    run cget -X PUT --data-binary "deployed through" "$NODE_n1_URL/gvirt/dep/new.txt"
    [ "$(echo "$output" | jq -r .repo)" = gloc1 ]
    [ "$(cget -f "$NODE_n2_URL/gloc1/dep/new.txt")" = "deployed through" ]
    [ "$(cget -f "$NODE_n2_URL/gvirt/dep/new.txt")" = "deployed through" ]
    run cget -X PUT --data-binary x "$NODE_n1_URL/vb/x.txt"
    [[ "$output" == *'"status":405'*defaultDeploymentRepo* ]]
    [ "$(code -u "admin:$PASS" -X DELETE "$NODE_n1_URL/gvirt/dep/new.txt")" = 405 ]
    [ "$(cget -f "$NODE_n2_URL/gloc1/dep/new.txt")" = "deployed through" ]
    # a copy into a virtual or a remote repository is refused
    [ "$(code -u "admin:$PASS" -X POST "$NODE_n1_URL/api/copy/gloc1/dep/new.txt?to=/gvirt/x.txt")" = 400 ]
    [ "$(code -u "admin:$PASS" -X POST "$NODE_n1_URL/api/copy/gloc1/dep/new.txt?to=/grem/x.txt")" = 400 ]
}

mvn_settings() { # FILE: mvn through the virtual repository "libs" only; plugins from Debian's files
    cat >"$1" <<EOF
<settings><localRepository>$SUITE_TMP/m2</localRepository>
 <servers><server><id>granary</id><username>admin</username><password>$PASS</password></server></servers>
 <mirrors><mirror><id>granary</id><mirrorOf>central</mirrorOf><url>$NODE_n1_URL/libs</url></mirror></mirrors>
 <profiles><profile><id>p</id>
  <pluginRepositories><pluginRepository><id>debian</id><url>file:///usr/share/maven-repo</url>
   <releases><checksumPolicy>ignore</checksumPolicy></releases></pluginRepository></pluginRepositories>
 </profile></profiles><activeProfiles><activeProfile>p</activeProfile></activeProfiles></settings>
EOF
}

@test "Maven: mvn deploys through the virtual repository and resolves a real dependency tree through it" {
    local d=$SUITE_TMP/mvnproj
    mkdir -p "$d/lib" "$d/app"
    mvn_settings "$d/settings.xml"
    echo "a library" >"$d/lib/mylib.jar"
    mvn -B -q -s "$d/settings.xml" deploy:deploy-file -Dfile="$d/lib/mylib.jar" -DgroupId=com.example \
        -DartifactId=mylib -Dversion=1.0 -Dpackaging=jar -DrepositoryId=granary -Durl="$NODE_n1_URL/libs"
    [ "$(cget "$NODE_n2_URL/api/storage/libs-local/com/example/mylib/1.0/mylib-1.0.jar" | jq -r .repo)" = libs-local ]
    cat >"$d/app/pom.xml" <<'EOF'
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
 <groupId>com.example</groupId><artifactId>app</artifactId><version>1.0</version>
 <dependencies>
  <dependency><groupId>commons-beanutils</groupId><artifactId>commons-beanutils</artifactId><version>1.9.4</version></dependency>
  <dependency><groupId>com.example</groupId><artifactId>mylib</artifactId><version>1.0</version></dependency>
 </dependencies>
 <repositories><repository><id>central</id><url>https://repo.invalid/maven2</url>
  <releases><checksumPolicy>fail</checksumPolicy></releases></repository></repositories>
</project>
EOF
    run mvn -B -s "$d/settings.xml" -f "$d/app/pom.xml" dependency:resolve
    echo "$output" | tail -30
    [ "$status" -eq 0 ]
    # the tree: commons-beanutils and what it depends on, from central through granary
    [ -s "$SUITE_TMP/m2/commons-beanutils/commons-beanutils/1.9.4/commons-beanutils-1.9.4.jar" ]
    ls "$SUITE_TMP"/m2/commons-logging/commons-logging/*/commons-logging-*.jar
    ls "$SUITE_TMP"/m2/commons-collections/commons-collections/*/commons-collections-*.jar
    [ "$(cat "$SUITE_TMP/m2/com/example/mylib/1.0/mylib-1.0.jar")" = "a library" ]
    cmp "$SUITE_TMP/m2/commons-beanutils/commons-beanutils/1.9.4/commons-beanutils-1.9.4.jar" \
        /usr/share/maven-repo/commons-beanutils/commons-beanutils/1.9.4/commons-beanutils-1.9.4.jar
    [ "$(cget "$NODE_n2_URL/api/storage/central-cache/commons-beanutils/commons-beanutils/1.9.4/commons-beanutils-1.9.4.jar" | jq -r .repo)" = central ]
    # a second resolution from an empty local repository: the cache serves, nginx is not asked
    local before
    before=$(grep -c "commons-beanutils-1.9.4.jar HTTP" "$NG/access.log")
    rm -rf "$SUITE_TMP/m2"
    run mvn -B -q -s "$d/settings.xml" -f "$d/app/pom.xml" dependency:resolve
    [ "$status" -eq 0 ]
    [ "$(grep -c "commons-beanutils-1.9.4.jar HTTP" "$NG/access.log")" = "$before" ]
}

@test "Maven: merged maven-metadata.xml holds every member's versions, and changes on both nodes when a member does" {
    for v in 0.9 2.0; do
        printf '<project><modelVersion>4.0.0</modelVersion><groupId>com.ex</groupId><artifactId>merge</artifactId><version>%s</version></project>' "$v" |
            ucurl -f -X PUT --data-binary @- "$NODE_up_URL/mvn-up/com/ex/merge/$v/merge-$v.pom" >/dev/null
    done
    printf '<project><modelVersion>4.0.0</modelVersion><groupId>com.ex</groupId><artifactId>merge</artifactId><version>1.0</version></project>' |
        cget -f -X PUT --data-binary @- "$NODE_n1_URL/libs-local/com/ex/merge/1.0/merge-1.0.pom" >/dev/null
    run cget -f "$NODE_n2_URL/libs/com/ex/merge/maven-metadata.xml"
    echo "$output"
    [[ "$output" == *"<latest>2.0</latest>"* ]]
    [[ "$output" == *"<release>2.0</release>"* ]]
    [[ "$output" == *"<version>0.9</version>"*"<version>1.0</version>"*"<version>2.0</version>"* ]]
    [ "$(cget -f "$NODE_n2_URL/libs/com/ex/merge/maven-metadata.xml.sha1")" = "$(printf '%s\n' "$output" | sha1sum | cut -d' ' -f1)" ]
    # kept: asked again, the same document without asking the members
    local hits
    hits=$(cget "$NODE_n2_URL/api/system/metrics" | awk '$1 == "granary_remote_merged_hits_total" { print $2 }')
    cget -f "$NODE_n2_URL/libs/com/ex/merge/maven-metadata.xml" >/dev/null
    [ "$(cget "$NODE_n2_URL/api/system/metrics" | awk '$1 == "granary_remote_merged_hits_total" { print $2 }')" -gt "$hits" ]
    # a deploy to a member through n1: n2 serves the new merge at once
    printf '<project><modelVersion>4.0.0</modelVersion><groupId>com.ex</groupId><artifactId>merge</artifactId><version>3.0</version></project>' |
        cget -f -X PUT --data-binary @- "$NODE_n1_URL/libs-local/com/ex/merge/3.0/merge-3.0.pom" >/dev/null
    run cget -f "$NODE_n2_URL/libs/com/ex/merge/maven-metadata.xml"
    [[ "$output" == *"<latest>3.0</latest>"* ]]
    [[ "$output" == *"<version>2.0</version>"*"<version>3.0</version>"* ]]
}

# npm_on REGISTRY-URL ARGS...: npm with a token for that registry and a private cache
npm_on() {
    local reg=$1 tok
    shift
    tok=$(curl -sS -X PUT -H 'content-type: application/json' \
        -d "{\"name\":\"admin\",\"password\":\"$NPM_PASS\"}" "${reg}-/user/org.couchdb.user:admin" | jq -r .token)
    printf '%s:_authToken=%s\nregistry=%s\nupdate-notifier=false\naudit=false\nfund=false\n' \
        "${reg#http:}" "$tok" "$reg" >"$SUITE_TMP/npmrc.$BATS_TEST_NUMBER"
    NPM_CONFIG_USERCONFIG=$SUITE_TMP/npmrc.$BATS_TEST_NUMBER npm --cache "$SUITE_TMP/npmcache" --loglevel warn "$@"
}
mkpkg() { # DIR NAME VERSION DEPS-JSON
    rm -rf "$1"
    mkdir -p "$1"
    printf '{"name":"%s","version":"%s","main":"index.js","dependencies":%s}' "$2" "$3" "$4" >"$1/package.json"
    printf 'const d = Object.keys(require("./package.json").dependencies).map(x => require(x)).join("+");\nmodule.exports = "%s@%s" + (d ? "(" + d + ")" : "");\n' "$2" "$3" >"$1/index.js"
}

@test "npm: npm install of a real tree through a virtual of a local repository and another granary" {
    local d=$SUITE_TMP/npmproj up=$NODE_up_URL/api/npm/npm-up/ virt=$NODE_n1_URL/api/npm/npm/
    mkpkg "$d/leaf" leaf 1.0.0 '{}'
    mkpkg "$d/mid" mid 1.2.0 '{"leaf":"^1.0.0"}'
    mkpkg "$d/app" app-lib 2.0.0 '{"mid":"^1.0.0"}'
    (cd "$d/leaf" && NPM_PASS=$UP_PASS npm_on "$up" publish)
    (cd "$d/mid" && NPM_PASS=$UP_PASS npm_on "$up" publish)
    # published through the virtual repository: lands in npm-local
    (cd "$d/app" && NPM_PASS=$PASS npm_on "$virt" publish)
    [ "$(cget -f "$NODE_n2_URL/api/npm/npm-local/app-lib" | jq -r '."dist-tags".latest')" = 2.0.0 ]
    mkdir -p "$d/consumer"
    echo '{"name":"consumer","version":"1.0.0"}' >"$d/consumer/package.json"
    (cd "$d/consumer" && NPM_PASS=$PASS npm_on "$NODE_n2_URL/api/npm/npm/" install app-lib)
    run node -e "console.log(require('$d/consumer/node_modules/app-lib'))"
    [ "$output" = "app-lib@2.0.0(mid@1.2.0(leaf@1.0.0))" ]
    # the lock file points at granary's virtual repository
    grep -q "$NODE_n2_URL/api/npm/npm/leaf/-/leaf-1.0.0.tgz" "$d/consumer/package-lock.json"
}

@test "npm: merged packuments: the first member wins a version, each dist-tag comes from the first member that has it" {
    local d=$SUITE_TMP/npmdup up=$NODE_up_URL/api/npm/npm-up/ loc=$NODE_n1_URL/api/npm/npm-local/
    mkpkg "$d/a" dup 1.0.0 '{}'
    (cd "$d/a" && NPM_PASS=$PASS npm_on "$loc" publish)
    mkpkg "$d/b" dup 1.0.0 '{}'
    echo "// the upstream's" >>"$d/b/index.js"
    (cd "$d/b" && NPM_PASS=$UP_PASS npm_on "$up" publish)
    mkpkg "$d/c" dup 1.1.0 '{}'
    (cd "$d/c" && NPM_PASS=$UP_PASS npm_on "$up" publish --tag next)
    run cget -f "$NODE_n2_URL/api/npm/npm/dup"
    echo "$output" | jq -c '{t: ."dist-tags", v: (.versions | keys)}'
    [ "$(echo "$output" | jq -c '.versions | keys')" = '["1.0.0","1.1.0"]' ]
    [ "$(echo "$output" | jq -r '."dist-tags".latest')" = 1.0.0 ]
    [ "$(echo "$output" | jq -r '."dist-tags".next')" = 1.1.0 ]
    [[ "$output" != *_granaryMember* ]]
    local local_sum
    local_sum=$(cget -f "$NODE_n1_URL/api/npm/npm-local/dup" | jq -r '.versions["1.0.0"].dist.shasum')
    [ "$(echo "$output" | jq -r '.versions["1.0.0"].dist.shasum')" = "$local_sum" ]
    # the tarball of 1.0.0 is the local member's
    [ "$(cget -f "$NODE_n1_URL/api/npm/npm/dup/-/dup-1.0.0.tgz" | sha1sum | cut -d' ' -f1)" = "$local_sum" ]
    [ "$(cget -f -o /dev/null -w '%{http_code}' "$NODE_n1_URL/api/npm/npm/dup/-/dup-1.1.0.tgz")" = 200 ]
}

@test "npm: a merged packument first asked for through a proxy's X-Forwarded-* headers names each later client's own host" {
    local d=$SUITE_TMP/npmfw up=$NODE_up_URL/api/npm/npm-up/ loc=$NODE_n1_URL/api/npm/npm-local/
    mkpkg "$d/a" fwd 1.0.0 '{}'
    (cd "$d/a" && NPM_PASS=$PASS npm_on "$loc" publish)
    mkpkg "$d/b" fwd 1.1.0 '{}'
    (cd "$d/b" && NPM_PASS=$UP_PASS npm_on "$up" publish)
    run cget -f -H 'X-Forwarded-Host: proxy-a.example' -H 'X-Forwarded-Proto: https' "$NODE_n1_URL/api/npm/npm/fwd"
    [ "$(echo "$output" | jq -r '.versions["1.0.0"].dist.tarball')" = "https://proxy-a.example/api/npm/npm/fwd/-/fwd-1.0.0.tgz" ]
    [ "$(echo "$output" | jq -r '.versions["1.1.0"].dist.tarball')" = "https://proxy-a.example/api/npm/npm/fwd/-/fwd-1.1.0.tgz" ]
    local n url
    for n in n1 n2; do
        eval "url=\$NODE_${n}_URL"
        run cget -f "$url/api/npm/npm/fwd"
        [[ "$output" != *proxy-a.example* ]]
        [ "$(echo "$output" | jq -r '.versions["1.0.0"].dist.tarball')" = "$url/api/npm/npm/fwd/-/fwd-1.0.0.tgz" ]
        [ "$(echo "$output" | jq -r '.versions["1.1.0"].dist.tarball')" = "$url/api/npm/npm/fwd/-/fwd-1.1.0.tgz" ]
        run cget -f -H 'Accept: application/vnd.npm.install-v1+json' "$url/api/npm/npm/fwd"
        [[ "$output" != *proxy-a.example* ]]
        [ "$(cget -f "$url/api/npm/npm/fwd/1.1.0" | jq -r .dist.tarball)" = "$url/api/npm/npm/fwd/-/fwd-1.1.0.tgz" ]
    done
    # the remote member's cached packument holds the upstream's own URLs, no client's
    run cget -f "$NODE_n2_URL/npm-remote-cache/.npm/fwd/package.json"
    [[ "$output" != *proxy-a.example* ]]
    [[ "$(echo "$output" | jq -r '.versions["1.1.0"].dist.tarball')" == "$NODE_up_URL/"* ]]
}
