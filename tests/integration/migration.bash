# Helpers of the provider migration tests (26_s3.bats, 27_sharedfs.bats): a
# second cluster of nodes m1, m2, m3, a load of uploads and downloads while
# it migrates, and a check of every artifact by its sha256.

mcurl() { curl -sS -u "admin:$(cat "$SUITE_TMP/node-m1/admin.password")" "$@"; }
# the load: uploads of new content and downloads of earlier ones, checked,
# until $SUITE_TMP/load.stop exists (at most 300 s: a migration to s3 under
# ASan takes over 150 s)
load_loop() {
    local i n url t0=$SECONDS
    for ((i = 0; SECONDS - t0 < 300; i++)); do
        [ -f "$SUITE_TMP/load.stop" ] && break
        n=$((i % 3 + 1))
        url=$(cat "$SUITE_TMP/node-m$n/port")
        head -c $((RANDOM * 8 + 1)) /dev/urandom >"$SUITE_TMP/load.in"
        if [ "$(mcurl -o /dev/null -w '%{http_code}' -T "$SUITE_TMP/load.in" "http://127.0.0.1:$url/libs/load/$i.bin")" = 201 ]; then
            sha256sum <"$SUITE_TMP/load.in" | cut -d' ' -f1 >"$SUITE_TMP/load.sha.$i"
        else
            echo "upload $i failed" >>"$SUITE_TMP/load.fail"
        fi
        if [ $i -gt 0 ] && [ -f "$SUITE_TMP/load.sha.$((i - 1))" ]; then
            [ "$(mcurl "http://127.0.0.1:$url/libs/load/$((i - 1)).bin" | sha256sum | cut -d' ' -f1)" = "$(cat "$SUITE_TMP/load.sha.$((i - 1))")" ] ||
                echo "download $((i - 1)) wrong" >>"$SUITE_TMP/load.fail"
        fi
    done
}
# every artifact of the migration cluster, through every node, by its
# sha256; with "all", the load's uploads too (through m2)
check_all() {
    local f n p
    for f in "$SUITE_TMP"/mig.sha.*; do
        p=${f##*/mig.sha.}
        for n in m1 m2 m3; do
            [ "$(mcurl "http://127.0.0.1:$(cat "$SUITE_TMP/node-$n/port")/libs/$p.bin" | sha256sum | cut -d' ' -f1)" = "$(cat "$f")" ] || {
                echo "$p through $n is wrong" >&2
                return 1
            }
        done
    done
    [ "${1:-}" = all ] || return 0
    for f in "$SUITE_TMP"/load.sha.*; do
        [ -f "$f" ] || continue
        p=${f##*/load.sha.}
        [ "$(mcurl "http://127.0.0.1:$(cat "$SUITE_TMP/node-m2/port")/libs/load/$p.bin" | sha256sum | cut -d' ' -f1)" = "$(cat "$f")" ] || {
            echo "load/$p is wrong" >&2
            return 1
        }
    done
}
migration_done() { # PROVIDER
    mcurl "http://127.0.0.1:$(cat "$SUITE_TMP/node-m1/port")/api/system/storage/migrate" >"$SUITE_TMP/mig.json"
    [ "$(jq -r .provider "$SUITE_TMP/mig.json")" = "$1" ] && [ "$(jq -r .migration "$SUITE_TMP/mig.json")" = null ]
}
# twelve artifacts of 0.7 to 8.4 MB uploaded through m1 (the cluster at URL)
mig_fill() {
    local i
    mcurl -f -X PUT -H 'Content-Type: application/json' -d '{"rclass":"local","packageType":"generic"}' "$1/api/repositories/libs" >/dev/null
    for i in $(seq 1 12); do
        head -c $((i * 700000)) /dev/urandom >"$SUITE_TMP/mig.in"
        [ "$(mcurl -o /dev/null -w '%{http_code}' -T "$SUITE_TMP/mig.in" "$1/libs/$i.bin")" = 201 ] || return 1
        sha256sum <"$SUITE_TMP/mig.in" | cut -d' ' -f1 >"$SUITE_TMP/mig.sha.$i"
    done
}
# the load's result: no failed upload or wrong download, and some uploads done
load_checked() {
    if [ -f "$SUITE_TMP/load.fail" ]; then
        cat "$SUITE_TMP/load.fail" >&2
        return 1
    fi
    ls "$SUITE_TMP"/load.sha.* >/dev/null
}
