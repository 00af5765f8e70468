-- static-realm: accept users from a static table (an authentication realm).
-- Consulted only when granary's own users refuse the credentials.
local users = {
    ci = { password = "ci-secret" },
    ops = { password = "ops-secret", admin = true },
}

return {
    description = "users from a static table",
    authenticate = function(user, password)
        local u = users[user]
        if not u or u.password ~= password then
            return false
        end
        return { admin = u.admin == true }
    end,
}
