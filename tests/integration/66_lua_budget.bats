#!/usr/bin/env bats
# The instruction budget covers the C work a plugin controls (security
# issue, item 15): Lua patterns (string.find/match/gmatch/gsub), string.rep
# and the loops of the table functions. A backtracking pattern such as
# ("a"):rep(22):find(("a*"):rep(22) .. "b") used to hold a request thread
# for minutes; now it fails like any budget overrun (500) and the node
# answers other requests at once. Every curl has --max-time, so the old
# behaviour fails the tests instead of hanging them.
load helpers

setup_file() {
    start_pg
    export DB=$(new_db lua_budget)
    start_node a --database-url "$DB" # the default budget: 20 million
    export NODE_a_URL NODE_a_PASS NODE_a_DIR
    make_repo a libs
    echo data >"$SUITE_TMP/f"
    acurl a -o /dev/null -T "$SUITE_TMP/f" /libs/f.txt
    acurl a -o /dev/null -T "$SUITE_TMP/f" /libs/evil/f.txt
}
teardown_file() { cleanup_suite; }

BUDGET="instruction budget of 20000000 exceeded"

put_plugin() { # NAME SOURCE: install, echo the status code
    acurl a --max-time 10 -o /dev/null -w '%{http_code}' -X PUT --data-binary "$2" "/api/plugins/$1"
}
# fast PATH: a GET that must answer within 2 s
fast() { acurl a --max-time 2 "$1"; }

# The evil pattern of the issue, 22 quantifiers deep: minutes of CPU in stock Lua.
EVIL='("a*"):rep(22) .. "b"'
SUBJ='("a"):rep(22)'

@test "a backtracking string.find in beforeDownload fails with the budget error, 500" {
    [ "$(put_plugin evil "return { beforeDownload = function(e)
  if e.path:find('^evil/') then
    local s = $SUBJ
    if s:find($EVIL) then granary.reject(409, 'matched') end
  end
end }")" = 201 ]
    run acurl a --max-time 10 /libs/evil/f.txt
    echo "$output"
    [ "$status" = 0 ]
    [ "$(echo "$output" | jq -r '.errors[0].status')" = 500 ]
    [ "$(echo "$output" | jq -r '.errors[0].message')" = "plugin evil failed in beforeDownload: evil:4: $BUDGET" ]
    # the same hook lets ordinary downloads through, and the node answers at once
    [ "$(fast /libs/f.txt)" = data ]
    [ "$(code --max-time 2 "$NODE_a_URL/api/system/ping")" = 200 ]
}

@test "the node answers other requests while four downloads run the evil pattern" {
    local i
    for i in 1 2 3 4; do
        acurl a --max-time 10 /libs/evil/f.txt >"$SUITE_TMP/evil.$i" 2>&1 &
    done
    run fast /libs/f.txt
    [ "$status" = 0 ]
    [ "$output" = data ]
    wait
    for i in 1 2 3 4; do
        cat "$SUITE_TMP/evil.$i"
        [ "$(jq -r '.errors[0].message' "$SUITE_TMP/evil.$i")" = "plugin evil failed in beforeDownload: evil:4: $BUDGET" ]
    done
    acurl a -o /dev/null -X DELETE /api/plugins/evil
    [ "$(fast /libs/evil/f.txt)" = data ]
}

@test "match, gmatch and gsub are bounded too, and a pcall inside the plugin cannot swallow the overrun" {
    [ "$(put_plugin pat "return { executions = {
  match = function() return tostring(($SUBJ):match($EVIL)) end,
  gmatch = function() for m in ($SUBJ):gmatch($EVIL) do end return 'done' end,
  gsub = function() return (string.gsub($SUBJ, $EVIL, 'x')) end,
  swallow = function()
    local ok = pcall(string.find, $SUBJ, $EVIL)
    return 'survived ' .. tostring(ok)
  end,
} }")" = 201 ]
    local x
    for x in match gmatch gsub swallow; do
        run acurl a --max-time 10 -X POST "/api/plugins/execute/$x"
        echo "$x: $output"
        [ "$status" = 0 ]
        [ "$(echo "$output" | jq -r '.errors[0].status')" = 500 ]
        [[ "$(echo "$output" | jq -r '.errors[0].message')" == *"pat:"*": $BUDGET" ]]
    done
    [ "$(fast /libs/f.txt)" = data ]
    acurl a -o /dev/null -X DELETE /api/plugins/pat
}

@test "string.rep of an empty string answers at once; the table functions' loops are bounded by the budget" {
    [ "$(put_plugin loops 'return { executions = {
  rep = function() return #string.rep("", 1e15) end,
  move = function() table.move({}, 1, 1e15, 2) return "moved" end,
  concat = function()
    return #table.concat(setmetatable({}, { __index = table.concat }), "", 1, 1e15)
  end,
  remove = function()
    table.remove(setmetatable({}, { __len = function() return math.maxinteger end }), 1)
    return "removed"
  end,
  sort = function()
    table.sort(setmetatable({}, { __len = function() return 2^31 - 2 end,
      __index = rawlen, __newindex = rawlen }))
    return "sorted"
  end,
} }')" = 201 ]
    # stock Lua looped 1e15 times to build ""
    run acurl a --max-time 10 -X POST /api/plugins/execute/rep
    [ "$status" = 0 ]
    [ "$output" = 0 ]
    local x
    for x in move concat remove sort; do
        run acurl a --max-time 10 -X POST "/api/plugins/execute/$x"
        echo "$x: $output"
        [ "$status" = 0 ]
        [ "$(echo "$output" | jq -r '.errors[0].status')" = 500 ]
        [[ "$(echo "$output" | jq -r '.errors[0].message')" == *"loops:"*": $BUDGET" ]]
    done
    [ "$(fast /libs/f.txt)" = data ]
    acurl a -o /dev/null -X DELETE /api/plugins/loops
}

@test "ordinary patterns give stock Lua's results in hooks and executions" {
    [ "$(put_plugin ok 'return {
  beforeDownload = function(e)
    local dir, ver = e.path:match("^(.-)/(%d+%.%d+)/")
    if dir == "blocked" then granary.reject(403, "version " .. ver .. " of " .. dir) end
  end,
  executions = { patterns = function()
    local words = {}
    for k, v in ("a=1, b=22, c=333"):gmatch("(%w+)=(%w+)") do words[#words + 1] = k .. v end
    return {
      find = { ("hello world"):find("o w") },
      pos = { ("hello"):match("()ll()") },
      gsub = (("hello world"):gsub("(%w+)", "<%1>")),
      words = table.concat(words, " "),
      balance = ("x(a(b)c)y"):match("%b()"),
      frontier = (("THE (quick) fox"):gsub("%f[%a]%a+", "W")),
    }
  end },
}')" = 201 ]
    echo data >"$SUITE_TMP/b"
    acurl a -o /dev/null -T "$SUITE_TMP/b" /libs/blocked/1.2/b.txt
    run acurl a --max-time 10 /libs/blocked/1.2/b.txt
    [ "$(echo "$output" | jq -r '.errors[0].message')" = "version 1.2 of blocked" ]
    run acurl a --max-time 10 -X POST /api/plugins/execute/patterns
    echo "$output"
    [ "$(echo "$output" | jq -c .)" = '{"balance":"(a(b)c)","find":[5,7],"frontier":"W (W) W","gsub":"<hello> <world>","pos":[3,5],"words":"a1 b22 c333"}' ]
    acurl a -o /dev/null -X DELETE /api/plugins/ok
}

@test "operators and functions that scan a long string are bounded too: allocations and CPU time count" {
    # each line is one instruction (or one C call) that walks megabytes: stock
    # Lua runs such a loop for hours under a 20M-instruction budget
    [ "$(put_plugin scans "return { executions = {
  upper = function() local s = ('x'):rep(8 * 1024 * 1024); for i = 1, 1000000 do s:upper() end end,
  eq = function()
    local a = ('y'):rep(4 * 1024 * 1024)
    local b = ('y'):rep(4 * 1024 * 1024)
    local n = 0
    for i = 1, 100000000 do if a == b then n = n + 1 end end
    return n
  end,
  ulen = function() local s = ('z'):rep(4 * 1024 * 1024); for i = 1, 1000000 do utf8.len(s) end end,
} }")" = 201 ]
    local f t0 t1
    for f in upper eq ulen; do
        t0=$(date +%s)
        run acurl a --max-time 30 -X POST "/api/plugins/execute/$f"
        t1=$(date +%s)
        echo "$f: $output ($((t1 - t0)) s)"
        [ "$status" = 0 ]
        [ "$(echo "$output" | jq -r '.errors[0].status')" = 500 ]
        [[ "$output" == *"$BUDGET"* ]]
    done
    [ "$(code --max-time 2 "$NODE_a_URL/api/system/ping")" = 200 ]
}
