#!/usr/bin/env bats
# Lua plugins on three nodes: a change made through one node is live on the
# others before the call returns; primary jobs run once per interval across
# the cluster, also while the primary is killed (docs/plugins.md).
load helpers

setup_file() {
    start_pg
    export DB=$(new_db plugcluster)
    export LEASE_MS=1500
    start_cluster_node n1 "$DB"
    start_cluster_node n2 "$DB"
    start_cluster_node n3 "$DB"
    export PASS=$(cluster_pass)
    export NODE_n1_URL NODE_n2_URL NODE_n3_URL NODE_n1_DIR NODE_n2_DIR NODE_n3_DIR
    curl -fsS -u "admin:$PASS" -X PUT -H 'Content-Type: application/json' \
        -d '{"rclass":"local","packageType":"generic"}' "$NODE_n1_URL/api/repositories/libs" >/dev/null
}
teardown_file() { cleanup_suite; }

cget() { curl -sS -u "admin:$PASS" "$@"; }
ccode() { curl -s -o /dev/null -w '%{http_code}' -u "admin:$PASS" "$@"; }
dbq() { psql_db plugcluster "$1"; }

@test "a plugin installed through one node refuses on the two others before the PUT returns" {
    echo data >"$SUITE_TMP/f"
    [ "$(ccode -T "$SUITE_TMP/f" "$NODE_n1_URL/libs/block/f.txt")" = 201 ]
    # warm every node's cache of the plugin generation and the artifact
    for u in "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"; do
        for i in 1 2 3; do [ "$(ccode "$u/libs/block/f.txt")" != 451 ]; done
    done
    for round in 1 2 3 4 5; do
        [ "$(ccode -X PUT --data-binary 'return { beforeDownload = function(e)
  if e.path:find("^block/") then granary.reject(451, "blocked on " .. granary.node()) end end }' \
            "$NODE_n1_URL/api/plugins/block")" = 201 ]
        # no sleep: the PUT has returned, so every node must refuse now
        [ "$(ccode "$NODE_n2_URL/libs/block/f.txt")" = 451 ]
        [ "$(ccode "$NODE_n3_URL/libs/block/f.txt")" = 451 ]
        [ "$(ccode "$NODE_n1_URL/libs/block/f.txt")" = 451 ]
        [ "$(cget "$NODE_n3_URL/libs/block/f.txt" | jq -r '.errors[0].message')" = "blocked on n3" ]
        # and removed through another node: gone everywhere at once
        [ "$(ccode -X DELETE "$NODE_n2_URL/api/plugins/block")" = 204 ]
        [ "$(ccode "$NODE_n1_URL/libs/block/f.txt")" != 451 ]
        [ "$(ccode "$NODE_n3_URL/libs/block/f.txt")" != 451 ]
        [ "$(ccode "$NODE_n2_URL/libs/block/f.txt")" != 451 ]
    done
}

@test "a plugin that does not compile is refused and changes nothing on any node" {
    [ "$(ccode -X PUT --data-binary 'return { beforeDownload = ' "$NODE_n2_URL/api/plugins/oops")" = 400 ]
    for u in "$NODE_n1_URL" "$NODE_n2_URL" "$NODE_n3_URL"; do
        [ "$(cget "$u/api/plugins" | jq '[.plugins[] | select(.name == "oops")] | length')" = 0 ]
    done
}

@test "POST /api/plugins/reload bumps the generation every node loads" {
    local g1 g2
    g1=$(cget "$NODE_n3_URL/api/plugins" | jq .generation)
    g2=$(cget -X POST "$NODE_n1_URL/api/plugins/reload" | jq .generation)
    [ "$g2" -gt "$g1" ]
    [ "$(cget "$NODE_n3_URL/api/plugins" | jq .generation)" = "$g2" ]
    [ "$(cget "$NODE_n2_URL/api/plugins" | jq .generation)" = "$g2" ]
}

@test "every-node jobs run on every node" {
    [ "$(ccode -X PUT --data-binary 'return { jobs = { hello = { interval = 1, where = "every-node",
  run = function() granary.log("every-node job on " .. granary.node()) end } } }' \
        "$NODE_n1_URL/api/plugins/everywhere")" = 201 ]
    for n in n1 n2 n3; do
        wait_until 10 grep -q "every-node job on $n" "$SUITE_TMP/node-$n/stderr.log"
    done
    [ "$(ccode -X DELETE "$NODE_n1_URL/api/plugins/everywhere")" = 204 ]
}

@test "a primary job runs once per interval across the cluster, also while the primary is killed" {
    [ "$(ccode -X PUT --data-binary 'return { jobs = { beat = { interval = 1, where = "primary",
  run = function() granary.log("primary job on " .. granary.node()) end } } }' \
        "$NODE_n2_URL/api/plugins/beat")" = 201 ]
    sleep 4
    local p
    p=$(cget "$NODE_n1_URL/api/system/cluster" | jq -r .primary)
    [[ "$p" =~ ^n[123]$ ]]
    # every run so far was on the primary
    [ "$(dbq "SELECT string_agg(DISTINCT node, ',') FROM plugin_job_runs WHERE plugin = 'beat'")" = "$p" ]
    local killed_at
    killed_at=$(dbq "SELECT now()")
    kill -KILL "$(node_pid "$p")"
    sleep 8
    dbq "SELECT node, token, started, finished FROM plugin_job_runs WHERE plugin = 'beat' ORDER BY id"
    # runs went on after the kill, on another node
    [ "$(dbq "SELECT count(*) FROM plugin_job_runs WHERE plugin = 'beat' AND started > '$killed_at'::timestamptz + interval '2 seconds' AND node <> '$p'")" -ge 2 ]
    # never twice within one interval, never two at once
    [ "$(dbq "SELECT count(*) FROM (SELECT started - lag(started) OVER (ORDER BY started) AS gap FROM plugin_job_runs WHERE plugin = 'beat') g WHERE gap < interval '1 second'")" = 0 ]
    [ "$(dbq "SELECT count(*) FROM (SELECT started, lag(finished) OVER (ORDER BY started) AS prev_end FROM plugin_job_runs WHERE plugin = 'beat') g WHERE prev_end IS NOT NULL AND prev_end > started")" = 0 ]
    # about one run per second over the whole span (the failover gap aside)
    local n
    n=$(dbq "SELECT count(*) FROM plugin_job_runs WHERE plugin = 'beat'")
    echo "runs: $n"
    [ "$n" -ge 6 ]
    [ "$n" -le 13 ]
    # the job's state is shown by GET /api/plugins on any live node
    local live
    for live in n1 n2 n3; do [ "$live" != "$p" ] && break; done
    eval "url=\$NODE_${live}_URL"
    run cget "$url/api/plugins"
    echo "$output"
    [ "$(echo "$output" | jq -r '.jobs[] | select(.name == "beat") | .where')" = primary ]
    [ "$(echo "$output" | jq -r '.jobs[] | select(.name == "beat") | .runs')" -ge 6 ]
}
