-- require-build-number: deploys to the repositories below must carry a
-- build.number property (as a matrix parameter: PUT /libs/x.jar;build.number=42).
-- The accepted deploy also gets deployed.by set to the deploying user.
local repos = { ["ci-builds"] = true }

return {
    description = "require build.number on deploys to ci-builds",
    beforeUpload = function(e)
        if not repos[e.repo] then
            return
        end
        local bn = e.properties and e.properties["build.number"]
        if not bn or bn[1] == "" then
            granary.reject(400, "deploys to " .. e.repo .. " need a build.number property")
        end
        return { properties = { ["deployed.by"] = e.user } }
    end,
}
