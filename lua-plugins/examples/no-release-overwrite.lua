-- no-release-overwrite: a release, once deployed, is never replaced.
-- Paths with "-SNAPSHOT" may be deployed again; anything else that already
-- exists is refused with 409.
return {
    description = "refuse release overwrites",
    beforeUpload = function(e)
        if e.path:find("-SNAPSHOT", 1, true) then
            return
        end
        if granary.artifact(e.repo, e.path) then
            granary.reject(409, "release " .. e.repo .. "/" .. e.path .. " already exists")
        end
    end,
}
