-- snapshot-cleanup: every night at 03:00 UTC, on the primary only, delete
-- snapshot artifacts (file names with "-SNAPSHOT", as Maven names them)
-- older than DAYS days. Admins
-- can also run it now: POST /api/plugins/execute/cleanupSnapshots?params=days=0
local DAYS = 14

local function cleanup(days)
    local before = (os.time() - days * 86400) * 1000
    local deleted = {}
    for _, a in ipairs(granary.search({ name = "*-SNAPSHOT*", created_before = before, limit = 1000 })) do
        if granary.delete(a.repo, a.path) then
            deleted[#deleted + 1] = a.repo .. "/" .. a.path
        end
    end
    granary.log("deleted " .. #deleted .. " snapshots older than " .. days .. " days")
    return deleted
end

return {
    description = "delete old snapshots nightly",
    jobs = {
        nightly = { cron = "0 3 * * *", where = "primary", run = function() cleanup(DAYS) end },
    },
    executions = {
        cleanupSnapshots = {
            admin = true,
            run = function(params)
                local deleted = cleanup(tonumber(params.days) or DAYS)
                return { deleted = deleted, count = #deleted }
            end,
        },
    },
}
