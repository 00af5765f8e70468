#!/usr/bin/env bats
# A full disk fails uploads cleanly: 507 JSON, nothing half-written visible,
# everything acknowledged before still readable.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db full)
    export FULLDIR=$SUITE_TMP/node-f
    mkdir -p "$FULLDIR/filestore"
    if ! mount -t tmpfs -o size=3m tmpfs "$FULLDIR/filestore" 2>/dev/null; then
        export NO_MOUNT=1
        return 0
    fi
    start_node f --database-url "$DB"
    export NODE_f_URL NODE_f_PASS NODE_f_PID NODE_f_DIR
    make_repo f libs
}
teardown_file() {
    stop_all
    umount "$FULLDIR/filestore" 2>/dev/null || true
    cleanup_suite
}

@test "uploads fail with 507 once the filestore is full and leave nothing behind" {
    [ -z "${NO_MOUNT:-}" ] || skip "needs root to mount a small tmpfs"
    local ok=0 full=0 i st
    for i in $(seq 8); do
        head -c 700000 /dev/urandom >"$SUITE_TMP/f$i"
        st=$(curl -sS -u "admin:$NODE_f_PASS" -T "$SUITE_TMP/f$i" -o "$SUITE_TMP/out$i" -w '%{http_code}' "$NODE_f_URL/libs/f$i")
        if [ "$st" = 201 ]; then
            ok=$((ok + 1))
        else
            [ "$st" = 507 ]
            [ "$(jq -r '.errors[0].status' "$SUITE_TMP/out$i")" = 507 ]
            [ "$(code -u "admin:$NODE_f_PASS" "$NODE_f_URL/libs/f$i")" = 404 ]
            full=$((full + 1))
        fi
    done
    echo "stored $ok, refused $full"
    [ $ok -ge 1 ]
    [ $full -ge 1 ]
    [ -z "$(ls -A "$NODE_f_DIR/filestore/_pre")" ]
    # every acknowledged upload reads back intact
    for i in $(seq 8); do
        if [ "$(code -u "admin:$NODE_f_PASS" "$NODE_f_URL/libs/f$i")" = 200 ]; then
            acurl f "/libs/f$i" | cmp - "$SUITE_TMP/f$i"
        fi
    done
    # no file under a hash is shorter than its content, and each has its sidecar
    for f in $(find "$NODE_f_DIR/filestore" -mindepth 2 -type f -not -path '*/_pre/*' \
        -not -name '*.crc'); do
        [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$(basename "$f")" ]
        [ -s "$f.crc" ]
    done
    [ "$(code "$NODE_f_URL/api/system/ping")" = 200 ]
}
