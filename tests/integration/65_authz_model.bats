#!/usr/bin/env bats
# Authorization against a model: tools/authz_fuzz.py builds a random world
# (users, groups, permission targets, generic, npm, Maven and docker repositories,
# content, trash) on one node and drives every endpoint that reads or
# changes something as random callers, comparing each answer and each
# resulting state with tools/authz_model.py (the rules of docs/security.md).
# `make test`: seed 2, AUTHZ_OPS (1500) operations, and the run must meet
# the edge of every finding at least once (authz_model.EDGES), so a
# reverted fix is caught; `make fuzz-authz`: a random seed for FUZZ_SECONDS
# (AUTHZ_SEED reproduces: the same seed gives the same run).
load helpers

setup_file() {
    start_pg
    export DB=$(new_db authz)
    start_node a --database-url "$DB"
    export NODE_a_URL NODE_a_PASS NODE_a_PID NODE_a_DIR
}
teardown_file() { cleanup_suite; }

@test "the model's own cases: patterns, the tree rule, copy targets, one per finding" {
    run python3 tests/integration/tools/authz_selftest.py
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "random callers against the model: every answer and every change as the rules say" {
    local args=(--url "$NODE_a_URL" --admin-pass "$NODE_a_PASS" --seed "${AUTHZ_SEED:-2}")
    if [ -n "${AUTHZ_SECONDS:-}" ]; then
        args+=(--seconds "$AUTHZ_SECONDS")
    else
        # and every finding's edge met at least once (authz_model.EDGES)
        args+=(--ops "${AUTHZ_OPS:-1500}" --require-coverage)
    fi
    run python3 tests/integration/tools/authz_fuzz.py "${args[@]}"
    echo "$output"
    # the seed and the count, visible in the TAP stream too
    echo "# $(grep -m1 '^authz model run' <<<"$output")" >&3
    echo "# $(grep -m1 '^ran ' <<<"$output")" >&3
    [ "$status" -eq 0 ]
}
