-- quarantine: an artifact with the property quarantine=true cannot be downloaded.
return {
    description = "block downloads of quarantined artifacts",
    beforeDownload = function(e)
        local p = granary.properties(e.repo, e.path)
        if p and p.quarantine and p.quarantine[1] == "true" then
            granary.reject(403, "artifact " .. e.repo .. "/" .. e.path .. " is quarantined")
        end
    end,
}
