/*
 * sandbox.c - the Lua state a plugin runs in: a capped allocator, an
 * instruction budget (count hook), the libraries a plugin may see, and the
 * `granary` API table (README.md lists it).
 */
#include "internal.h"

#include <lauxlib.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REG_REJECT "granary.reject_mt"
#define REG_EVENT "granary.event_mt"

/* ---- allocator and budget ---- */

/* The memory cap: a growth past mem_limit is refused (Lua raises "not enough memory"). */
static void *sandbox__alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct plug__state *s = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        s->mem -= old;
        return NULL;
    }
    if (nsize > old && s->mem + (nsize - old) > s->mem_limit) {
        s->mem_refused = true;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p)
        return NULL;
    s->mem = s->mem - old + nsize;
    if (s->armed && nsize > old) /* checked against the budget at the next hook */
        s->count += (nsize - old) / PLUG__BYTES_PER_STEP;
    return p;
}

static struct plug__state *sandbox__state(lua_State *L)
{
    return plug__state_of(L);
}

static void sandbox__hook(lua_State *L, lua_Debug *ar);

/*
 * The line of the innermost Lua function on the stack (a C function such as
 * string.find has none), or the last line the hook saw.
 */
static int sandbox__line(lua_State *L, struct plug__state *s)
{
    lua_Debug d;
    for (int level = 0; lua_getstack(L, level, &d); level++) {
        if (lua_getinfo(L, "l", &d) && d.currentline > 0)
            return d.currentline;
    }
    return s->last_line;
}

/*
 * The budget is spent: raise, and make every later instruction raise too
 * (on this thread and on the main one, when this is a coroutine), so a
 * pcall inside the plugin cannot swallow the overrun.
 */
static int sandbox__overrun(lua_State *L, struct plug__state *s)
{
    s->over = true;
    s->last_line = sandbox__line(L, s);
    lua_sethook(L, sandbox__hook, LUA_MASKCOUNT, 1);
    if (L != s->L)
        lua_sethook(s->L, sandbox__hook, LUA_MASKCOUNT, 1);
    return luaL_error(L, "%s:%d: instruction budget of %llu exceeded", s->plugin ? s->plugin : "?",
                      s->last_line, (unsigned long long)s->budget);
}

/* This thread's CPU time (ns). */
static int64_t sandbox__cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Every PLUG__HOOK_STEP instructions; once the budget is spent, every instruction. */
static void sandbox__hook(lua_State *L, lua_Debug *ar)
{
    struct plug__state *s = sandbox__state(L);
    (void)ar;
    lua_Debug d;
    if (lua_getstack(L, 0, &d) && lua_getinfo(L, "l", &d) && d.currentline > 0)
        s->last_line = d.currentline;
    s->count += PLUG__HOOK_STEP;
    if (s->count <= s->budget && !s->over && sandbox__cpu_ns() > s->cpu_deadline_ns)
        s->count = s->budget + 1; /* few instructions that each scanned a lot */
    if (s->count > s->budget || s->over)
        sandbox__overrun(L, s);
}

void plug__arm(struct plug__state *s, uint64_t budget)
{
    s->budget = budget;
    s->count = 0;
    s->cpu_deadline_ns = sandbox__cpu_ns() + (int64_t)(budget > INT64_MAX / PLUG__NS_PER_STEP
                                                           ? INT64_MAX / 2
                                                           : budget * PLUG__NS_PER_STEP);
    s->over = false;
    s->armed = true;
    s->mem_refused = false;
    s->last_line = 0;
    lua_sethook(s->L, sandbox__hook, LUA_MASKCOUNT, PLUG__HOOK_STEP);
}

void plug__disarm(struct plug__state *s)
{
    s->armed = false;
    lua_sethook(s->L, NULL, 0, 0);
}

void plug__charge(lua_State *L, uint64_t steps)
{
    struct plug__state *s = sandbox__state(L);
    if (!s->armed)
        return;
    if (s->over || s->count > s->budget || steps > s->budget - s->count) {
        s->count = s->budget;
        sandbox__overrun(L, s);
    }
    s->count += steps;
}

/* ---- replaced base functions ---- */

/* load(chunk [, name [, mode [, env]]]): text only, the plugin's own env by default. */
static int sandbox__load(lua_State *L)
{
    size_t len = 0;
    const char *name = luaL_optstring(L, 2, "=(load)");
    const char *mode = luaL_optstring(L, 3, "t");
    if (strcmp(mode, "t"))
        return luaL_error(L, "load: only text chunks are allowed (mode \"t\")");
    int env = !lua_isnone(L, 4) ? 4 : lua_upvalueindex(1);
    int status;
    if (lua_type(L, 1) == LUA_TSTRING) {
        const char *src = lua_tolstring(L, 1, &len);
        status = luaL_loadbufferx(L, src, len, name, "t");
    } else {
        return luaL_error(L, "load: the chunk must be a string");
    }
    if (status != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushvalue(L, env);
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
    return 1;
}

/* setmetatable without __gc: finalizers run with hooks off, outside any budget. */
static int sandbox__setmetatable(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_getfield(L, 2, "__gc");
        bool gc = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (gc)
            return luaL_error(L, "setmetatable: __gc is not allowed in plugins");
    }
    lua_getglobal(L, "setmetatable"); /* the real one, kept in the state's globals */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);
    return 1;
}

/* collectgarbage("count") only. */
static int sandbox__collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "count");
    if (strcmp(opt, "count"))
        return luaL_error(L, "collectgarbage: only \"count\" is allowed");
    lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) +
                          (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
    return 1;
}

static void sandbox__log(lua_State *L, enum plug_log level, int first)
{
    struct plug__state *s = sandbox__state(L);
    int n = lua_gettop(L); /* before luaL_buffinit, which pushes a placeholder */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = first; i <= n; i++) {
        if (i > first)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    if (s->rt && s->rt->host.log)
        s->rt->host.log(s->rt->host.arg, level, s->plugin ? s->plugin : "?", lua_tostring(L, -1));
    lua_pop(L, 1);
}

static int sandbox__print(lua_State *L)
{
    sandbox__log(L, PLUG_LOG_INFO, 1);
    return 0;
}

static int api__log_call(lua_State *L) /* granary.log(msg): the table is argument 1 */
{
    sandbox__log(L, PLUG_LOG_INFO, 2);
    return 0;
}

static int api__log_info(lua_State *L)
{
    sandbox__log(L, PLUG_LOG_INFO, 1);
    return 0;
}

static int api__log_warn(lua_State *L)
{
    sandbox__log(L, PLUG_LOG_WARN, 1);
    return 0;
}

static int api__log_error(lua_State *L)
{
    sandbox__log(L, PLUG_LOG_ERROR, 1);
    return 0;
}

/* ---- the granary table ---- */

/* granary.reject(status, message): end the call and refuse the request. */
static int api__reject(lua_State *L)
{
    lua_Integer status = luaL_checkinteger(L, 1);
    const char *msg = luaL_optstring(L, 2, "refused by a plugin");
    if (status < 400 || status > 599)
        return luaL_error(L, "granary.reject: status must be 400..599");
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    luaL_setmetatable(L, REG_REJECT);
    return lua_error(L);
}

bool plug__is_reject(lua_State *L, int idx, int *status, const char **msg)
{
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return false;
    luaL_getmetatable(L, REG_REJECT);
    bool is = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (!is)
        return false;
    lua_getfield(L, idx, "status");
    *status = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, idx, "message");
    *msg = lua_tostring(L, -1); /* kept alive by the error object */
    lua_pop(L, 1);
    return true;
}

static int api__user(lua_State *L)
{
    struct plug__state *s = sandbox__state(L);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, s->user ? s->user : "anonymous");
    lua_setfield(L, -2, "name");
    lua_pushboolean(L, s->admin);
    lua_setfield(L, -2, "admin");
    lua_pushboolean(L, !s->user || !strcmp(s->user, "anonymous"));
    lua_setfield(L, -2, "anonymous");
    return 1;
}

static int api__node(lua_State *L)
{
    struct plug__state *s = sandbox__state(L);
    lua_pushstring(L, s->rt && s->rt->host.node_id ? s->rt->host.node_id : "");
    return 1;
}

static void api__push_artifact(lua_State *L, const struct plug_artifact *a)
{
    lua_createtable(L, 0, 10);
    const char *sk[] = {"repo", "path", "sha256", "sha1", "md5", "createdBy", "modifiedBy"};
    const char *sv[] = {a->repo, a->path,       a->sha256,     a->sha1,
                        a->md5,  a->created_by, a->modified_by};
    for (int i = 0; i < 7; i++) {
        if (!sv[i])
            continue;
        lua_pushstring(L, sv[i]);
        lua_setfield(L, -2, sk[i]);
    }
    lua_pushinteger(L, (lua_Integer)a->size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, a->created_ms);
    lua_setfield(L, -2, "created");
    lua_pushinteger(L, a->modified_ms);
    lua_setfield(L, -2, "modified");
}

void plug__push_artifact(lua_State *L, const struct plug_artifact *a)
{
    api__push_artifact(L, a);
}

/* nil, message for a failed host call (ENOTFOUND: just nil). */
static int api__host_fail(lua_State *L, int rc)
{
    lua_pushnil(L);
    if (rc == PLUG_ENOTFOUND)
        return 1;
    lua_pushstring(L, plug_strerror(rc));
    return 2;
}

#define API_HOST(s, fn)                                                                            \
    do {                                                                                           \
        if (!(s)->rt || !(s)->rt->host.fn)                                                         \
            return luaL_error(L, "granary: " #fn " is not available here");                        \
        if ((s)->loading)                                                                          \
            return luaL_error(L, "granary: " #fn " cannot be called while the plugin loads");      \
    } while (0)

static int api__artifact(lua_State *L)
{
    struct plug__state *s = sandbox__state(L);
    const char *repo = luaL_checkstring(L, 1), *path = luaL_checkstring(L, 2);
    API_HOST(s, artifact_get);
    struct plug_artifact a;
    memset(&a, 0, sizeof(a));
    int rc = s->rt->host.artifact_get(s->rt->host.arg, s->call, repo, path, &a);
    if (rc)
        return api__host_fail(L, rc);
    api__push_artifact(L, &a);
    return 1;
}

static int api__repository(lua_State *L)
{
    struct plug__state *s = sandbox__state(L);
    const char *key = luaL_checkstring(L, 1);
    API_HOST(s, repo_get);
    struct plug_repo r;
    memset(&r, 0, sizeof(r));
    int rc = s->rt->host.repo_get(s->rt->host.arg, s->call, key, &r);
    if (rc)
        return api__host_fail(L, rc);
    lua_createtable(L, 0, 4);
    const char *k[] = {"key", "rclass", "packageType", "description"};
    const char *v[] = {r.key, r.rclass, r.package_type, r.description};
    for (int i = 0; i < 4; i++) {
        lua_pushstring(L, v[i] ? v[i] : "");
        lua_setfield(L, -2, k[i]);
    }
    return 1;
}

/* Push {key = {v1, v2}} from a flat list. */
static void api__push_props(lua_State *L, const struct plug_prop *p, int n)
{
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
        if (lua_getfield(L, -1, p[i].key) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, -3, p[i].key);
        }
        if (p[i].value) {
            lua_pushstring(L, p[i].value);
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        }
        lua_pop(L, 1);
    }
}

void plug__push_props(lua_State *L, const struct plug_prop *p, int n)
{
    api__push_props(L, p, n);
}

static int api__properties(lua_State *L)
{
    struct plug__state *s = sandbox__state(L);
    const char *repo = luaL_checkstring(L, 1), *path = luaL_checkstring(L, 2);
    API_HOST(s, props_get);
    struct plug_prop *p = NULL;
    int n = 0;
    int rc = s->rt->host.props_get(s->rt->host.arg, s->call, repo, path, &p, &n);
    if (rc)
        return api__host_fail(L, rc);
    api__push_props(L, p, n);
    return 1;
}

/* granary.set_property(repo, path, key, value | {values}) */
static int api__set_property(lua_State *L)
{
    struct plug__state *s = sandbox__state(L);
    const char *repo = luaL_checkstring(L, 1), *path = luaL_checkstring(L, 2);
    const char *key = luaL_checkstring(L, 3);
    API_HOST(s, props_set);
    const char *vals[64];
    int n = 0;
    if (lua_type(L, 4) == LUA_TTABLE) {
        lua_Integer len = (lua_Integer)lua_rawlen(L, 4);
        if (len < 1 || len > 64)
            return luaL_error(L, "granary.set_property: 1 to 64 values");
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, 4, i);
            vals[n++] = luaL_tolstring(L, -1, NULL); /* kept on the stack */
            lua_remove(L, -2);
        }
    } else {
        vals[n++] = luaL_checkstring(L, 4);
    }
    int rc = s->rt->host.props_set(s->rt->host.arg, s->call, repo, path, key, vals, n);
    if (rc)
        return api__host_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int api__delete_property(lua_State *L)
{
    struct plug__state *s = sandbox__state(L);
    const char *repo = luaL_checkstring(L, 1), *path = luaL_checkstring(L, 2);
    const char *key = luaL_checkstring(L, 3);
    API_HOST(s, props_delete);
    int rc = s->rt->host.props_delete(s->rt->host.arg, s->call, repo, path, key);
    if (rc)
        return api__host_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* granary.search{repo=, name=, created_before=ms, properties={k=v}, limit=} */
static int api__search(lua_State *L)
{
    struct plug__state *s = sandbox__state(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    API_HOST(s, search);
    struct plug_query q;
    memset(&q, 0, sizeof(q));
    struct plug_prop props[16];
    lua_getfield(L, 1, "repo");
    q.repo = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_getfield(L, 1, "name");
    q.name = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_getfield(L, 1, "created_before");
    q.created_before_ms = lua_isnil(L, -1) ? 0 : (int64_t)luaL_checkinteger(L, -1);
    lua_getfield(L, 1, "limit");
    q.limit = lua_isnil(L, -1) ? 0 : (int)luaL_checkinteger(L, -1);
    lua_getfield(L, 1, "properties");
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (q.nprops == 16)
                return luaL_error(L, "granary.search: at most 16 properties");
            if (lua_type(L, -2) != LUA_TSTRING)
                return luaL_error(L, "granary.search: property keys must be strings");
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "granary.search: property values must be strings");
            /* both strings stay referenced by the table */
            props[q.nprops].key = lua_tostring(L, -2);
            props[q.nprops].value = lua_tostring(L, -1);
            q.nprops++;
            lua_pop(L, 1);
        }
    }
    q.props = props;
    struct plug_artifact *v = NULL;
    int n = 0;
    int rc = s->rt->host.search(s->rt->host.arg, s->call, &q, &v, &n);
    if (rc)
        return api__host_fail(L, rc);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        api__push_artifact(L, &v[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int api__delete(lua_State *L)
{
    struct plug__state *s = sandbox__state(L);
    const char *repo = luaL_checkstring(L, 1), *path = luaL_checkstring(L, 2);
    API_HOST(s, artifact_delete);
    int rc = s->rt->host.artifact_delete(s->rt->host.arg, s->call, repo, path,
                                         s->user ? s->user : "plugin");
    if (rc)
        return api__host_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- JSON (granary.json), in Lua: it runs under the caller's budget ---- */

static const char sandbox__json_src[] =
    "local type, tostring, error, pairs, ipairs, sort, concat, fmt, mtype, huge ="
    " type, tostring, error, pairs, ipairs, table.sort, table.concat, string.format,"
    " math.type, math.huge\n"
    "local esc = {['\"'] = '\\\\\"', ['\\\\'] = '\\\\\\\\', ['\\n'] = '\\\\n',"
    " ['\\r'] = '\\\\r', ['\\t'] = '\\\\t'}\n"
    "local function enc(v, d)\n"
    "  local t = type(v)\n"
    "  if t == 'nil' then return 'null' end\n"
    "  if t == 'boolean' then return tostring(v) end\n"
    "  if t == 'number' then\n"
    "    if v ~= v or v == huge or v == -huge then error('granary.json: cannot encode ' .."
    " tostring(v), 2) end\n"
    "    if mtype(v) == 'integer' then return fmt('%d', v) end\n"
    "    return fmt('%.17g', v)\n"
    "  end\n"
    "  if t == 'string' then\n"
    "    return '\"' .. (v:gsub('[%c\"\\\\]', function(c) return esc[c] or fmt('\\\\u%04x',"
    " c:byte()) end)) .. '\"'\n"
    "  end\n"
    "  if t ~= 'table' then error('granary.json: cannot encode a ' .. t, 2) end\n"
    "  if d > 32 then error('granary.json: nested too deeply', 2) end\n"
    "  local out, n = {}, #v\n"
    "  if n > 0 then\n"
    "    for i = 1, n do out[i] = enc(v[i], d + 1) end\n"
    "    return '[' .. concat(out, ',') .. ']'\n"
    "  end\n"
    "  local keys = {}\n"
    "  for k in pairs(v) do\n"
    "    if type(k) ~= 'string' then error('granary.json: object keys must be strings', 2) end\n"
    "    keys[#keys + 1] = k\n"
    "  end\n"
    "  sort(keys)\n"
    "  for i, k in ipairs(keys) do out[i] = enc(k, d) .. ':' .. enc(v[k], d + 1) end\n"
    "  return '{' .. concat(out, ',') .. '}'\n"
    "end\n"
    "return function(v) return (enc(v, 0)) end\n";

/* ---- building a state and a plugin's environment ---- */

static const luaL_Reg sandbox__libs[] = {
    {LUA_GNAME, luaopen_base},        {LUA_TABLIBNAME, luaopen_table},
    {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8},  {LUA_COLIBNAME, luaopen_coroutine},
    {LUA_OSLIBNAME, luaopen_os},      {NULL, NULL},
};

static const luaL_Reg sandbox__api[] = {
    {"reject", api__reject},
    {"user", api__user},
    {"node", api__node},
    {"artifact", api__artifact},
    {"repository", api__repository},
    {"properties", api__properties},
    {"set_property", api__set_property},
    {"delete_property", api__delete_property},
    {"search", api__search},
    {"delete", api__delete},
    {NULL, NULL},
};

static const char sandbox__cur_event = 0; /* registry key: the event of the running call */

/* __index of events: `artifact` from s->cur_artifact (during the call only), then cached. */
static int sandbox__event_index(lua_State *L)
{
    struct plug__state *s = sandbox__state(L);
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (!k || strcmp(k, "artifact") || !s->cur_artifact)
        return 0;
    /* only the event of the running call: a kept event has no artifact later */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox__cur_event);
    bool current = lua_rawequal(L, 1, -1);
    lua_pop(L, 1);
    if (!current)
        return 0;
    api__push_artifact(L, s->cur_artifact);
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, "artifact"); /* no __newindex: a raw set */
    return 1;
}

void plug__event_lazy(lua_State *L)
{
    luaL_setmetatable(L, REG_EVENT);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sandbox__cur_event);
}

static int sandbox__reject_tostring(lua_State *L)
{
    lua_getfield(L, 1, "message");
    return 1;
}

static int sandbox__setup(lua_State *L)
{
    for (const luaL_Reg *lib = sandbox__libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    /* patterns, string.rep and the table functions' loops count against the
     * budget (strlib.c, tablib.c); the string metatable's __index is this
     * same string table, so ("x"):find() gets them too */
    plug__strlib_install(L);
    plug__tablib_install(L);
    /* the shared string table is reachable through ("").x: no dump, and
     * getmetatable("") gives nothing to modify */
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    /* events build their artifact table only when a hook reads it (most
     * hooks never do, and it is most of an empty hook's cost) */
    luaL_newmetatable(L, REG_EVENT);
    lua_pushcfunction(L, sandbox__event_index);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    luaL_newmetatable(L, REG_REJECT);
    lua_pushcfunction(L, sandbox__reject_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "granary.reject");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    /* the API template, copied into each plugin's environment */
    luaL_newlib(L, sandbox__api);
    if (luaL_loadbufferx(L, sandbox__json_src, sizeof(sandbox__json_src) - 1, "=granary.json",
                         "t") != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, 1);
    lua_setfield(L, -2, "json");
    lua_setfield(L, LUA_REGISTRYINDEX, "granary.api");
    return 0;
}

lua_State *plug__newstate(struct plug__state *s)
{
    lua_State *L = lua_newstate(sandbox__alloc, s);
    if (!L)
        return NULL;
    s->L = L;
    lua_pushcfunction(L, sandbox__setup);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        lua_close(L);
        s->L = NULL;
        return NULL;
    }
    return L;
}

/* dst[name] = a copy of src[name] (only the keys in keep, when given); absolute indices. */
static void sandbox__copy(lua_State *L, int dst, int src, const char *name, const char *const *keep)
{
    lua_getfield(L, src, name);
    int from = lua_gettop(L);
    lua_newtable(L);
    if (keep) {
        for (; *keep; keep++) {
            lua_getfield(L, from, *keep);
            lua_setfield(L, -2, *keep);
        }
    } else {
        lua_pushnil(L);
        while (lua_next(L, from)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -4);
        }
    }
    lua_setfield(L, dst, name);
    lua_pop(L, 1);
}

void plug__push_env(lua_State *L, const char *name)
{
    static const char *const base[] = {"assert",       "error",    "ipairs",   "next",   "pairs",
                                       "pcall",        "rawequal", "rawget",   "rawlen", "rawset",
                                       "select",       "tonumber", "tostring", "type",   "xpcall",
                                       "getmetatable", "_VERSION", NULL};
    static const char *const os_keep[] = {"time", "clock", "date", NULL};
    (void)name;
    lua_newtable(L);
    int env = lua_gettop(L);
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    for (const char *const *b = base; *b; b++) {
        lua_getfield(L, g, *b);
        lua_setfield(L, env, *b);
    }
    lua_pushcfunction(L, sandbox__setmetatable);
    lua_setfield(L, env, "setmetatable");
    lua_pushcfunction(L, sandbox__collectgarbage);
    lua_setfield(L, env, "collectgarbage");
    lua_pushcfunction(L, sandbox__print);
    lua_setfield(L, env, "print");
    lua_pushvalue(L, env);
    lua_pushcclosure(L, sandbox__load, 1);
    lua_setfield(L, env, "load");
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");
    sandbox__copy(L, env, g, "string", NULL);
    sandbox__copy(L, env, g, "table", NULL);
    sandbox__copy(L, env, g, "math", NULL);
    sandbox__copy(L, env, g, "utf8", NULL);
    sandbox__copy(L, env, g, "coroutine", NULL);
    sandbox__copy(L, env, g, "os", os_keep);
    lua_pop(L, 1); /* g */
    /* granary: a copy of the template, with its own log table */
    lua_getfield(L, LUA_REGISTRYINDEX, "granary.api");
    int api = lua_gettop(L);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, api)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, -4);
    }
    lua_newtable(L); /* granary.log: callable, with info/warn/error */
    lua_pushcfunction(L, api__log_info);
    lua_setfield(L, -2, "info");
    lua_pushcfunction(L, api__log_warn);
    lua_setfield(L, -2, "warn");
    lua_pushcfunction(L, api__log_error);
    lua_setfield(L, -2, "error");
    lua_newtable(L);
    lua_pushcfunction(L, api__log_call);
    lua_setfield(L, -2, "__call");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "log");
    lua_setfield(L, env, "granary");
    lua_pop(L, 1); /* template */
    lua_settop(L, env);
}
