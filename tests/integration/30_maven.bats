#!/usr/bin/env bats
# Maven repositories with the real mvn client (Debian's maven 3.8.7 and
# /usr/share/maven-repo as "central", docs/maven.md): deploy and resolve,
# release redeploys, SNAPSHOTs, a project and a project depending on it,
# POM consistency, maven-metadata.xml computed by the server (content,
# checksums, concurrent deploys through two nodes), maxUniqueSnapshots,
# the repository flags and the GAVC search.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db maven)
    export LEASE_MS=1500
    start_cluster_node a "$DB"
    start_cluster_node b "$DB"
    export PASS=$(cluster_pass)
    export NODE_a_URL NODE_b_URL NODE_a_PASS
    export A=$NODE_a_URL B=$NODE_b_URL
    mkrepo() { # key [extra json fields]
        curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
            -d "{\"rclass\":\"local\",\"packageType\":\"maven\"${2:+,$2}}" "$A/api/repositories/$1" >/dev/null
    }
    mkrepo libs-release
    mkrepo libs-redeploy '"allowReleaseRedeploy":true'
    mkrepo libs-snap '"maxUniqueSnapshots":2'
    mkrepo libs-relonly '"handleSnapshots":false'
    mkrepo libs-snaponly '"handleReleases":false'
    mkrepo libs-lax '"suppressPomConsistencyChecks":true'
    export SETTINGS=$SUITE_TMP/settings.xml
    cat >"$SETTINGS" <<EOF
<settings><localRepository>$SUITE_TMP/m2-local</localRepository>
 <servers><server><id>granary</id><username>admin</username><password>$PASS</password></server></servers>
 <profiles><profile><id>offline</id>
  <repositories>
   <repository><id>central</id><url>file:///usr/share/maven-repo</url>
     <releases><checksumPolicy>ignore</checksumPolicy></releases><snapshots><enabled>false</enabled></snapshots></repository>
   <repository><id>granary</id><url>$A/libs-release</url>
     <releases><updatePolicy>always</updatePolicy><checksumPolicy>fail</checksumPolicy></releases>
     <snapshots><enabled>true</enabled><updatePolicy>always</updatePolicy><checksumPolicy>fail</checksumPolicy></snapshots></repository>
  </repositories>
  <pluginRepositories><pluginRepository><id>central</id><url>file:///usr/share/maven-repo</url>
     <releases><checksumPolicy>ignore</checksumPolicy></releases></pluginRepository></pluginRepositories>
 </profile></profiles><activeProfiles><activeProfile>offline</activeProfile></activeProfiles></settings>
EOF
}
teardown_file() { cleanup_suite; }

# a quick JVM: mvn runs are most of this suite's time
export MAVEN_OPTS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto"
mvnq() { mvn -B -q -s "$SETTINGS" -Dstyle.color=never "$@"; }
deploy_file() { # file gav-version artifact [url]
    mvnq deploy:deploy-file -Dfile="$1" -DgroupId=com.example -DartifactId="$3" -Dversion="$2" \
        -Dpackaging=jar -DrepositoryId=granary -Durl="${4:-$A/libs-release}"
}
get() { curl -sS -u "admin:$PASS" "$@"; }
status() { curl -s -o /dev/null -w '%{http_code}' -u "admin:$PASS" "$@"; }
# xpath FILE-OR-URL EXPR: text of a maven-metadata.xml element
xp() { get "$1" | xmllint --xpath "$2" -; }

@test "repository JSON: Artifactory's Maven fields, defaults, updates and type checks" {
    run get "$A/api/repositories/libs-snap"
    echo "$output"
    [ "$(echo "$output" | jq -c '[.handleReleases,.handleSnapshots,.maxUniqueSnapshots,.suppressPomConsistencyChecks,.snapshotVersionBehavior,.allowReleaseRedeploy]')" = '[true,true,2,false,"unique",false]' ]
    [ "$(get "$A/api/repositories/libs-relonly" | jq .handleSnapshots)" = false ]
    [ "$(get "$A/api/repositories/libs-lax" | jq .suppressPomConsistencyChecks)" = true ]
    # the other node reads the same (cached) record
    [ "$(get "$B/api/repositories/libs-redeploy" | jq .allowReleaseRedeploy)" = true ]
    # update one field; the others stay
    [ "$(status -X POST -H 'Content-Type: application/json' -d '{"maxUniqueSnapshots":3}' "$A/api/repositories/libs-snap")" = 200 ]
    [ "$(get "$B/api/repositories/libs-snap" | jq -c '[.maxUniqueSnapshots,.handleReleases]')" = '[3,true]' ]
    [ "$(status -X POST -H 'Content-Type: application/json' -d '{"maxUniqueSnapshots":2}' "$A/api/repositories/libs-snap")" = 200 ]
    # wrong types and values
    [ "$(status -X POST -H 'Content-Type: application/json' -d '{"handleReleases":"yes"}' "$A/api/repositories/libs-snap")" = 400 ]
    [ "$(status -X POST -H 'Content-Type: application/json' -d '{"maxUniqueSnapshots":-1}' "$A/api/repositories/libs-snap")" = 400 ]
    [ "$(status -X POST -H 'Content-Type: application/json' -d '{"snapshotVersionBehavior":"non-unique"}' "$A/api/repositories/libs-snap")" = 400 ]
    # generic repositories keep their shape
    make_repo a gen
    [ "$(get "$A/api/repositories/gen" | jq 'has("handleReleases")')" = false ]
}

@test "settings live in the settings column; the old columns stay in step both ways (a node one version older)" {
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"maven","maxUniqueSnapshots":4}' "$A/api/repositories/libs-trig" >/dev/null
    # what a current node wrote reaches the columns an older node reads
    [ "$(psql_db maven "SELECT max_unique_snapshots, settings->>'maxUniqueSnapshots' FROM repositories WHERE key = 'libs-trig'")" = "4|4" ]
    # an older node writes a column (it knows no settings column): the settings follow.
    # SQL stands in for that node; the key was never read, so no cache holds it
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"maven"}' "$A/api/repositories/libs-trig2" >/dev/null
    psql_db maven "UPDATE repositories SET handle_releases = false WHERE key = 'libs-trig2'"
    [ "$(get "$B/api/repositories/libs-trig2" | jq -c '[.handleReleases,.handleSnapshots]')" = '[false,true]' ]
    # and a current node's update of the settings reaches the column again
    [ "$(status -X POST -H 'Content-Type: application/json' -d '{"handleReleases":true}' "$A/api/repositories/libs-trig2")" = 200 ]
    [ "$(psql_db maven "SELECT handle_releases FROM repositories WHERE key = 'libs-trig2'")" = t ]
}

@test "mvn deploy:deploy-file of a release jar, then dependency:get into a fresh local repository" {
    printf 'release jar 1.0\n' >"$SUITE_TMP/x.jar"
    deploy_file "$SUITE_TMP/x.jar" 1.0 x
    [ "$(get "$A/libs-release/com/example/x/1.0/x-1.0.jar")" = "release jar 1.0" ]
    get "$A/libs-release/com/example/x/1.0/x-1.0.pom" | grep -q '<artifactId>x</artifactId>'
    # the client's metadata upload was ignored; the server's lists the version
    [ "$(xp "$A/libs-release/com/example/x/maven-metadata.xml" 'string(/metadata/versioning/release)')" = 1.0 ]
    mvnq -Dmaven.repo.local="$SUITE_TMP/m2-fresh" dependency:get -Dartifact=com.example:x:1.0 -Dtransitive=false
    cmp "$SUITE_TMP/x.jar" "$SUITE_TMP/m2-fresh/com/example/x/1.0/x-1.0.jar"
}

@test "a release is overwritten only with delete permission (403, content kept)" {
    printf 'another 1.0\n' >"$SUITE_TMP/x2.jar"
    # a deployer without delete permission (docs/security.md: overwrite needs delete)
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"password":"deployer-pw1","groups":[]}' "$A/api/security/users/mvnw"
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"repo":{"repositories":["libs-release"],"actions":{"users":{"mvnw":["write"]}}}}' \
        "$A/api/v2/security/permissions/mvnw-deploys"
    run curl -sS -u mvnw:deployer-pw1 -w '\n%{http_code}' -T "$SUITE_TMP/x2.jar" \
        "$B/libs-release/com/example/x/1.0/x-1.0.jar"
    echo "$output"
    [ "${lines[-1]}" = 403 ]
    [[ "$output" == *"needs DELETE permission"* ]]
    [ "$(get "$A/libs-release/com/example/x/1.0/x-1.0.jar")" = "release jar 1.0" ]
    # a new release: write is enough
    [ "$(curl -s -o /dev/null -w '%{http_code}' -u mvnw:deployer-pw1 -T "$SUITE_TMP/x2.jar" \
        "$B/libs-release/com/example/z/1.0/z-1.0.jar")" = 201 ]
    # with delete permission (the admin has every permission) a release may be overwritten
    deploy_file "$SUITE_TMP/x.jar" 1.0 x "$A/libs-redeploy"
    deploy_file "$SUITE_TMP/x2.jar" 1.0 x "$A/libs-redeploy"
    [ "$(get "$A/libs-redeploy/com/example/x/1.0/x-1.0.jar")" = "another 1.0" ]
    # SNAPSHOTs are always overwritable
    [ "$(status -T "$SUITE_TMP/x.jar" "$A/libs-release/com/example/x/9-SNAPSHOT/x-9-SNAPSHOT.jar")" = 201 ]
    [ "$(status -T "$SUITE_TMP/x2.jar" "$A/libs-release/com/example/x/9-SNAPSHOT/x-9-SNAPSHOT.jar")" = 201 ]
}

@test "a SNAPSHOT deployed twice gets builds 1 and 2; resolution serves the newest" {
    printf 'snapshot build one\n' >"$SUITE_TMP/s1.jar"
    printf 'snapshot build two\n' >"$SUITE_TMP/s2.jar"
    deploy_file "$SUITE_TMP/s1.jar" 1.0-SNAPSHOT s
    sleep 1 # a new timestamp second for the second build
    deploy_file "$SUITE_TMP/s2.jar" 1.0-SNAPSHOT s
    run get "$A/api/storage/libs-release/com/example/s/1.0-SNAPSHOT?list"
    echo "$output"
    [ "$(echo "$output" | jq -r '.files[].uri' | grep -cE '^/s-1\.0-[0-9]{8}\.[0-9]{6}-1\.(jar|pom)$')" = 2 ]
    [ "$(echo "$output" | jq -r '.files[].uri' | grep -cE '^/s-1\.0-[0-9]{8}\.[0-9]{6}-2\.(jar|pom)$')" = 2 ]
    local meta=$A/libs-release/com/example/s/1.0-SNAPSHOT/maven-metadata.xml
    [ "$(xp "$meta" 'string(/metadata/versioning/snapshot/buildNumber)')" = 2 ]
    local value
    value=$(xp "$meta" 'string(/metadata/versioning/snapshotVersions/snapshotVersion[extension="jar"]/value)')
    [[ "$value" =~ ^1\.0-[0-9]{8}\.[0-9]{6}-2$ ]]
    [ "$(get "$A/libs-release/com/example/s/1.0-SNAPSHOT/s-$value.jar")" = "snapshot build two" ]
    # the non-unique name and its checksums resolve to build 2 (binaries stay
    # on the receiving node until blob replication: metadata from any node)
    [ "$(get "$A/libs-release/com/example/s/1.0-SNAPSHOT/s-1.0-SNAPSHOT.jar")" = "snapshot build two" ]
    [ "$(get "$B/libs-release/com/example/s/1.0-SNAPSHOT/s-1.0-SNAPSHOT.jar.sha1")" = "$(sha1sum <"$SUITE_TMP/s2.jar" | cut -d' ' -f1)" ]
    [ "$(get "$A/libs-release/com/example/s/1.0-SNAPSHOT/s-1.0-SNAPSHOT.jar.sha512")" = "$(sha512sum <"$SUITE_TMP/s2.jar" | cut -d' ' -f1)" ]
    # and so does the real client
    mvnq -Dmaven.repo.local="$SUITE_TMP/m2-snap" dependency:get -Dartifact=com.example:s:1.0-SNAPSHOT -Dtransitive=false
    cmp "$SUITE_TMP/s2.jar" "$SUITE_TMP/m2-snap/com/example/s/1.0-SNAPSHOT/s-1.0-SNAPSHOT.jar"
}

@test "mvn deploy of a project, and a project depending on it resolves it through granary" {
    local lib=$SUITE_TMP/lib app=$SUITE_TMP/app
    mkdir -p "$lib/src/main/java/org/demo" "$app/src/main/java/org/app"
    local props='<properties><maven.compiler.source>17</maven.compiler.source><maven.compiler.target>17</maven.compiler.target><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>'
    cat >"$lib/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
 <groupId>org.demo</groupId><artifactId>lib</artifactId><version>1.0-SNAPSHOT</version>$props
 <distributionManagement>
  <repository><id>granary</id><url>$A/libs-release</url></repository>
  <snapshotRepository><id>granary</id><url>$A/libs-release</url></snapshotRepository>
 </distributionManagement></project>
EOF
    echo 'package org.demo; public class Greeter { public static String hello() { return "hello from lib"; } }' \
        >"$lib/src/main/java/org/demo/Greeter.java"
    cat >"$app/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
 <groupId>org.demo</groupId><artifactId>app</artifactId><version>1.0</version>$props
 <dependencies><dependency><groupId>org.demo</groupId><artifactId>lib</artifactId><version>1.0-SNAPSHOT</version></dependency></dependencies>
</project>
EOF
    echo 'package org.app; public class Main { public static void main(String[] a) { System.out.println(org.demo.Greeter.hello()); } }' \
        >"$app/src/main/java/org/app/Main.java"
    (cd "$lib" && mvnq -Dmaven.test.skip=true deploy)
    [ "$(xp "$A/libs-release/org/demo/lib/maven-metadata.xml" 'string(/metadata/versioning/latest)')" = 1.0-SNAPSHOT ]
    (cd "$app" && mvnq -Dmaven.repo.local="$SUITE_TMP/m2-app" compile)
    run java -cp "$app/target/classes:$SUITE_TMP/m2-app/org/demo/lib/1.0-SNAPSHOT/lib-1.0-SNAPSHOT.jar" org.app.Main
    [ "$output" = "hello from lib" ]
}

@test "a POM whose coordinates disagree with its path is refused with 409 and not stored" {
    local pom=$SUITE_TMP/bad.pom
    printf '<project><modelVersion>4.0.0</modelVersion><groupId>com.example</groupId><artifactId>other</artifactId><version>1.0</version></project>' >"$pom"
    run get -w '\n%{http_code}' -T "$pom" "$A/libs-release/com/example/p/1.0/p-1.0.pom"
    echo "$output"
    [ "${lines[-1]}" = 409 ]
    [[ "$output" == *"does not match the POM's expected path prefix 'com/example/other/1.0'"* ]]
    [ "$(status "$A/libs-release/com/example/p/1.0/p-1.0.pom")" = 404 ]
    # group and version are checked too; a parent's groupId and version count
    printf '<project><groupId>org.wrong</groupId><artifactId>p</artifactId><version>1.0</version></project>' >"$pom"
    [ "$(status -T "$pom" "$A/libs-release/com/example/p/1.0/p-1.0.pom")" = 409 ]
    printf '<project><groupId>com.example</groupId><artifactId>p</artifactId><version>2.0</version></project>' >"$pom"
    [ "$(status -T "$pom" "$A/libs-release/com/example/p/1.0/p-1.0.pom")" = 409 ]
    printf 'not xml at all' >"$pom"
    [ "$(status -T "$pom" "$A/libs-release/com/example/p/1.0/p-1.0.pom")" = 409 ]
    printf '<project><parent><groupId>com.example</groupId><artifactId>parent</artifactId><version>1.0</version></parent><artifactId>p</artifactId></project>' >"$pom"
    [ "$(status -T "$pom" "$A/libs-release/com/example/p/1.0/p-1.0.pom")" = 201 ]
    # suppressPomConsistencyChecks
    printf '<project><groupId>x</groupId><artifactId>y</artifactId><version>z</version></project>' >"$pom"
    [ "$(status -T "$pom" "$A/libs-lax/com/example/p/1.0/p-1.0.pom")" = 201 ]
}

@test "layout and flags: off-layout paths 409, handleReleases/handleSnapshots, metadata PUTs ignored" {
    printf 'x' >"$SUITE_TMP/f"
    [ "$(status -T "$SUITE_TMP/f" "$A/libs-release/notes.txt")" = 409 ]
    [ "$(status -T "$SUITE_TMP/f" "$A/libs-release/com/example/x/1.0/y-1.0.jar")" = 409 ]
    [ "$(status -T "$SUITE_TMP/f" "$A/libs-release/com/example/x/1.0/x-1.1.jar")" = 409 ]
    run get -T "$SUITE_TMP/f" "$A/libs-relonly/com/example/x/1.0-SNAPSHOT/x-1.0-SNAPSHOT.jar"
    [[ "$output" == *"conflict in the snapshot release handling policy"* ]]
    [ "$(status -T "$SUITE_TMP/f" "$A/libs-relonly/com/example/x/1.0/x-1.0.jar")" = 201 ]
    [ "$(status -T "$SUITE_TMP/f" "$A/libs-snaponly/com/example/x/1.0/x-1.0.jar")" = 409 ]
    [ "$(status -T "$SUITE_TMP/f" "$A/libs-snaponly/com/example/x/1.0-SNAPSHOT/x-1.0-20261128.002356-1.jar")" = 201 ]
    # a client's metadata (and its checksums) is accepted and not stored
    [ "$(status -T "$SUITE_TMP/f" "$A/libs-relonly/com/example/x/maven-metadata.xml")" = 201 ]
    [ "$(status -T "$SUITE_TMP/f" "$A/libs-relonly/com/example/x/maven-metadata.xml.sha1")" = 201 ]
    [ "$(xp "$A/libs-relonly/com/example/x/maven-metadata.xml" 'string(/metadata/versioning/latest)')" = 1.0 ]
    # a checksum file that disagrees with the artifact is refused
    [ "$(status -T "$SUITE_TMP/f" "$A/libs-relonly/com/example/x/1.0/x-1.0.jar.sha1")" = 409 ]
    sha1sum <"$SUITE_TMP/f" | cut -d' ' -f1 >"$SUITE_TMP/f.sha1"
    [ "$(status -T "$SUITE_TMP/f.sha1" "$A/libs-relonly/com/example/x/1.0/x-1.0.jar.sha1")" = 201 ]
    [ "$(status "$A/libs-relonly/com/example/nothing/maven-metadata.xml")" = 404 ]
}

@test "maven-metadata.xml: content from the artifact rows; .sha1/.md5/.sha256/.sha512 match the bytes" {
    for v in 1.9 1.10 2.0-SNAPSHOT 1.10-rc1; do
        printf "m $v" >"$SUITE_TMP/m.jar"
        local file=m-$v.jar
        if [[ $v == *SNAPSHOT ]]; then file=m-${v%-SNAPSHOT}-20261128.002356-1.jar; fi
        [ "$(status -T "$SUITE_TMP/m.jar" "$B/libs-release/com/example/m/$v/$file")" = 201 ]
    done
    local url=$A/libs-release/com/example/m/maven-metadata.xml
    get "$url" >"$SUITE_TMP/meta.xml"
    cat "$SUITE_TMP/meta.xml"
    xmllint --noout "$SUITE_TMP/meta.xml"
    [ "$(xmllint --xpath 'string(/metadata/groupId)' "$SUITE_TMP/meta.xml")" = com.example ]
    [ "$(xmllint --xpath 'string(/metadata/artifactId)' "$SUITE_TMP/meta.xml")" = m ]
    [ "$(xmllint --xpath 'string(/metadata/versioning/latest)' "$SUITE_TMP/meta.xml")" = 2.0-SNAPSHOT ]
    [ "$(xmllint --xpath 'string(/metadata/versioning/release)' "$SUITE_TMP/meta.xml")" = 1.10 ]
    # Maven's order: 1.9 < 1.10-rc1 < 1.10 < 2.0-SNAPSHOT
    [ "$(xmllint --xpath '/metadata/versioning/versions/version/text()' "$SUITE_TMP/meta.xml" | tr '\n' ' ')" = "1.9 1.10-rc1 1.10 2.0-SNAPSHOT " ]
    [[ "$(xmllint --xpath 'string(/metadata/versioning/lastUpdated)' "$SUITE_TMP/meta.xml")" =~ ^[0-9]{14}$ ]]
    for alg in sha1 md5 sha256 sha512; do
        [ "$(get "$url.$alg")" = "$(${alg}sum <"$SUITE_TMP/meta.xml" | cut -d' ' -f1)" ] || { echo "bad $alg"; return 1; }
    done
    # version level, through the other node
    local vurl=$B/libs-release/com/example/m/2.0-SNAPSHOT/maven-metadata.xml
    get "$vurl" >"$SUITE_TMP/vmeta.xml"
    [ "$(xmllint --xpath 'string(/metadata/version)' "$SUITE_TMP/vmeta.xml")" = 2.0-SNAPSHOT ]
    [ "$(xmllint --xpath 'string(/metadata/versioning/snapshot/timestamp)' "$SUITE_TMP/vmeta.xml")" = 20261128.002356 ]
    [ "$(xmllint --xpath 'string(//snapshotVersion/updated)' "$SUITE_TMP/vmeta.xml")" = 20261128002356 ]
    [ "$(get "$vurl.sha256")" = "$(sha256sum <"$SUITE_TMP/vmeta.xml" | cut -d' ' -f1)" ]
    # a deleted version leaves the list
    [ "$(status -X DELETE "$A/libs-release/com/example/m/1.9")" = 204 ]
    [ "$(xp "$url" 'count(/metadata/versioning/versions/version)')" = 3 ]
}

@test "two concurrent mvn deploys of different versions through two nodes are both listed" {
    printf 'c 2.0\n' >"$SUITE_TMP/c2.jar"
    printf 'c 3.0\n' >"$SUITE_TMP/c3.jar"
    deploy_file "$SUITE_TMP/c2.jar" 2.0 c "$A/libs-release" >"$SUITE_TMP/c2.log" 2>&1 &
    local p1=$!
    deploy_file "$SUITE_TMP/c3.jar" 3.0 c "$B/libs-release" >"$SUITE_TMP/c3.log" 2>&1 &
    local p2=$!
    wait $p1 || { cat "$SUITE_TMP/c2.log"; return 1; }
    wait $p2 || { cat "$SUITE_TMP/c3.log"; return 1; }
    for n in "$A" "$B"; do
        [ "$(xp "$n/libs-release/com/example/c/maven-metadata.xml" '/metadata/versioning/versions/version/text()' | tr '\n' ' ')" = "2.0 3.0 " ]
    done
}

@test "maxUniqueSnapshots keeps the newest builds only (older ones go to the trash)" {
    for b in 1 2 3 4; do
        printf "build $b" >"$SUITE_TMP/u.jar"
        [ "$(status -T "$SUITE_TMP/u.jar" "$A/libs-snap/com/example/u/1.0-SNAPSHOT/u-1.0-20261128.00000$b-$b.jar")" = 201 ]
        [ "$(status -T "$SUITE_TMP/u.jar" "$A/libs-snap/com/example/u/1.0-SNAPSHOT/u-1.0-20261128.00000$b-$b-sources.jar")" = 201 ]
    done
    run get "$A/api/storage/libs-snap/com/example/u/1.0-SNAPSHOT?list"
    echo "$output"
    [ "$(echo "$output" | jq -r '[.files[].uri] | sort | join(" ")')" = "/u-1.0-20261128.000003-3-sources.jar /u-1.0-20261128.000003-3.jar /u-1.0-20261128.000004-4-sources.jar /u-1.0-20261128.000004-4.jar" ]
    [ "$(xp "$A/libs-snap/com/example/u/1.0-SNAPSHOT/maven-metadata.xml" 'string(/metadata/versioning/snapshot/buildNumber)')" = 4 ]
    [ "$(get "$A/libs-snap/com/example/u/1.0-SNAPSHOT/u-1.0-SNAPSHOT.jar")" = "build 4" ]
    [ "$(get "$A/api/trash/list?repo=libs-snap" | jq '.items | length')" = 4 ]
}

@test "GAVC search: Artifactory's results shape, wildcards, classifier, repos" {
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"maven","suppressPomConsistencyChecks":true}' "$A/api/repositories/gavc" >/dev/null
    printf 'g' >"$SUITE_TMP/g"
    for p in com/acme/tool/1.0/tool-1.0.jar com/acme/tool/1.0/tool-1.0-sources.jar com/acme/tool/1.0/tool-1.0.pom \
        com/acme/tool/2.0/tool-2.0.jar com/acme/other/1.0/other-1.0.jar org/x/tool/1.0/tool-1.0.jar; do
        [ "$(status -T "$SUITE_TMP/g" "$A/gavc/$p")" = 201 ]
    done
    make_repo a gen2 # not Maven: never searched
    [ "$(status -T "$SUITE_TMP/g" "$A/gen2/com/acme/tool/1.0/tool-1.0.jar")" = 201 ]
    uris() { get "$A/api/search/gavc?$1" | jq -r '.results[].uri' | sed "s|^$A/api/storage/||" | tr '\n' ' '; }
    [ "$(uris 'g=com.acme&a=tool')" = "gavc/com/acme/tool/1.0/tool-1.0-sources.jar gavc/com/acme/tool/1.0/tool-1.0.jar gavc/com/acme/tool/1.0/tool-1.0.pom gavc/com/acme/tool/2.0/tool-2.0.jar " ]
    [ "$(uris 'g=com.acme&a=tool&v=1.0&c=sources')" = "gavc/com/acme/tool/1.0/tool-1.0-sources.jar " ]
    [ "$(uris 'a=tool&v=1.0&repos=gavc')" = "gavc/com/acme/tool/1.0/tool-1.0-sources.jar gavc/com/acme/tool/1.0/tool-1.0.jar gavc/com/acme/tool/1.0/tool-1.0.pom gavc/org/x/tool/1.0/tool-1.0.jar " ]
    [ "$(uris 'g=com.*&a=t?ol&v=2.*')" = "gavc/com/acme/tool/2.0/tool-2.0.jar " ]
    [ "$(uris 'g=com.example&a=x&repos=libs-release,libs-redeploy')" = "libs-redeploy/com/example/x/1.0/x-1.0.jar libs-redeploy/com/example/x/1.0/x-1.0.pom libs-release/com/example/x/1.0/x-1.0.jar libs-release/com/example/x/1.0/x-1.0.pom libs-release/com/example/x/9-SNAPSHOT/x-9-SNAPSHOT.jar " ]
    [ "$(get -H 'X-Result-Detail: info' "$A/api/search/gavc?g=com.acme&a=other" | jq -r '.results[0] | [.repo, .path, .size] | join(" ")')" = "gavc /com/acme/other/1.0/other-1.0.jar 1" ]
    [ "$(status "$A/api/search/gavc")" = 400 ]
    [ "$(status "$A/api/search/gavc?g=x&repos=nope")" = 404 ]
    [ "$(get "$A/api/search/gavc?g=no.such")" = '{"results":[]}' ]
}
