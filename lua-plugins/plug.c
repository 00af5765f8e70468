/*
 * plug.c - the runtime: plugin sets, one Lua state per thread, and the
 * calls into plugins (hooks, realms, executions, jobs). Every touch of a
 * Lua state runs inside a protected call, so that even our own allocations
 * failing at the memory cap end in an error, never in a panic.
 */
#include "internal.h"

#include <lauxlib.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLUG__MEM_DEFAULT ((size_t)32 << 20)
#define PLUG__BUDGET_DEFAULT 20000000ULL
#define PLUG__JOB_BUDGET_DEFAULT 500000000ULL
#define REG_PLUGINS "granary.plugins"

static const char *const plug__hook_names[PLUG_HOOK_COUNT] = {
    "beforeDownload", "afterDownload", "beforeUpload",         "afterUpload",
    "beforeDelete",   "afterDelete",   "beforeMove",           "afterMove",
    "beforeCopy",     "afterCopy",     "beforePropertyChange", "afterPropertyChange",
};

const char *plug_hook_name(enum plug_hook h)
{
    return (unsigned)h < PLUG_HOOK_COUNT ? plug__hook_names[h] : "?";
}

const char *plug_strerror(int err)
{
    switch (err) {
    case PLUG_OK:
        return "ok";
    case PLUG_ENOMEM:
        return "out of memory";
    case PLUG_ECOMPILE:
        return "plugin does not compile";
    case PLUG_ERUNTIME:
        return "plugin error";
    case PLUG_EBUDGET:
        return "instruction budget exceeded";
    case PLUG_EMEMORY:
        return "plugin memory cap reached";
    case PLUG_EINVAL:
        return "invalid argument";
    case PLUG_ENOTFOUND:
        return "not found";
    case PLUG_EBUSY:
        return "called from inside a plugin";
    case PLUG_EHOST:
        return "server operation failed";
    case PLUG_EDENIED:
        return "refused by a plugin";
    default:
        return "unknown error";
    }
}

bool plug_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > PLUG__NAME_MAX || !isalnum((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
            return false;
    return true;
}

static char *plug__strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *plug__printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *plug__printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

static void plug__log(struct plug_runtime *rt, enum plug_log lvl, const char *plugin,
                      const char *msg)
{
    if (rt && rt->host.log)
        rt->host.log(rt->host.arg, lvl, plugin, msg);
}

/* ---- sets ---- */

static void plug__set_unref(struct plug__set *set)
{
    if (!set || atomic_fetch_sub(&set->refs, 1) != 1)
        return;
    for (int i = 0; i < set->n; i++)
        free(set->p[i].src);
    free(set->p);
    free(set->execs);
    free(set->jobs);
    free(set);
}

static struct plug__set *plug__set_current(struct plug_runtime *rt)
{
    pthread_mutex_lock(&rt->lock);
    struct plug__set *set = rt->set;
    if (set)
        atomic_fetch_add(&set->refs, 1);
    pthread_mutex_unlock(&rt->lock);
    return set;
}

/* ---- protected calls ---- */

/*
 * Call the function under nargs arguments at the top, under budget, as
 * s->plugin. On PLUG_OK nres results are on the stack; otherwise nothing,
 * *msg (malloc'd) says what failed and where, and *status is set for a
 * rejection. A failure other than a rejection marks the state broken.
 */
int plug__pcall(struct plug__state *s, int nargs, int nres, uint64_t budget, char **msg,
                int *status)
{
    lua_State *L = s->L;
    *msg = NULL;
    plug__arm(s, budget);
    int st = lua_pcall(L, nargs, nres, 0);
    plug__disarm(s);
    if (st == LUA_OK)
        return PLUG_OK;
    const char *name = s->plugin ? s->plugin : "?";
    int rc = PLUG_ERUNTIME;
    const char *rmsg = NULL;
    if (plug__is_reject(L, -1, status, &rmsg)) {
        *msg = plug__strdup(rmsg ? rmsg : "refused by a plugin");
        lua_pop(L, 1);
        return PLUG_EDENIED;
    }
    if (s->over) {
        rc = PLUG_EBUDGET;
        s->broken = true;
        *msg = plug__printf("%s:%d: instruction budget of %llu exceeded", name, s->last_line,
                            (unsigned long long)budget);
    } else if (st == LUA_ERRMEM || s->mem_refused) {
        rc = PLUG_EMEMORY;
        s->broken = true;
        *msg = plug__printf("%s: memory cap of %zu bytes reached (near line %d)", name,
                            s->mem_limit, s->last_line);
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        *msg = plug__printf("%s", lua_tostring(L, -1));
    } else {
        *msg = plug__printf("%s: error object is a %s value", name, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return rc;
}

/* A C function op(L) with one light userdata argument, protected. */
static int plug__protect(struct plug__state *s, lua_CFunction op, void *arg, char **msg)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, op);
    lua_pushlightuserdata(L, arg);
    int st = lua_pcall(L, 1, 0, 0);
    plug__disarm(s);
    if (st == LUA_OK)
        return PLUG_OK;
    s->broken = true;
    if (msg && !*msg)
        *msg = plug__printf("%s: %s", s->plugin ? s->plugin : "plugins",
                            st == LUA_ERRMEM                 ? "memory cap reached"
                            : lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                             : "internal error");
    lua_settop(L, top);
    return st == LUA_ERRMEM ? PLUG_EMEMORY : PLUG_ERUNTIME;
}

/* ---- loading one plugin into a state ---- */

struct plug__decl {
    unsigned hooks;
    struct plug_exec_info *execs;
    int nexecs;
    struct plug_job_info *jobs;
    int njobs;
};

struct plug__load_op {
    struct plug__state *s;
    int index; /* in REG_PLUGINS */
    const char *name, *src;
    size_t len;
    struct plug__decl *decl;
    int rc;
    char *msg;
};

static int plug__bad(struct plug__load_op *op, const char *what, const char *key)
{
    free(op->msg);
    op->msg = plug__printf("%s: %s '%s'", op->name, what, key);
    op->rc = PLUG_EINVAL;
    return 0;
}

/* executions = { name = function | { run = function, admin = bool } } */
static int plug__decl_execs(lua_State *L, struct plug__load_op *op, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) != LUA_TSTRING || !plug_name_valid(lua_tostring(L, -2)))
            return plug__bad(op, "bad execution name", luaL_typename(L, -2));
        const char *ename = lua_tostring(L, -2);
        bool admin = false;
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_getfield(L, -1, "run");
            bool fn = lua_type(L, -1) == LUA_TFUNCTION;
            lua_pop(L, 1);
            lua_getfield(L, -1, "admin");
            admin = lua_toboolean(L, -1);
            lua_pop(L, 1);
            if (!fn)
                return plug__bad(op, "execution needs a run function:", ename);
        } else if (lua_type(L, -1) != LUA_TFUNCTION) {
            return plug__bad(op, "execution must be a function or a table:", ename);
        }
        struct plug__decl *d = op->decl;
        if (d) {
            void *nv = realloc(d->execs, sizeof(*d->execs) * (size_t)(d->nexecs + 1));
            if (!nv)
                return luaL_error(L, "out of memory");
            d->execs = nv;
            struct plug_exec_info *e = &d->execs[d->nexecs++];
            memset(e, 0, sizeof(*e));
            snprintf(e->name, sizeof(e->name), "%s", ename);
            snprintf(e->plugin, sizeof(e->plugin), "%s", op->name);
            e->admin = admin;
        }
        lua_pop(L, 1);
    }
    return 1;
}

/* jobs = { name = { run = function, interval = seconds | cron = "m h dom mon dow",
 *                   where = "primary" | "every-node" } } */
static int plug__decl_jobs(lua_State *L, struct plug__load_op *op, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) != LUA_TSTRING || !plug_name_valid(lua_tostring(L, -2)))
            return plug__bad(op, "bad job name", luaL_typename(L, -2));
        const char *jname = lua_tostring(L, -2);
        if (lua_type(L, -1) != LUA_TTABLE)
            return plug__bad(op, "job must be a table:", jname);
        struct plug_job_info j;
        memset(&j, 0, sizeof(j));
        snprintf(j.plugin, sizeof(j.plugin), "%s", op->name);
        snprintf(j.name, sizeof(j.name), "%s", jname);
        lua_getfield(L, -1, "run");
        bool fn = lua_type(L, -1) == LUA_TFUNCTION;
        lua_pop(L, 1);
        if (!fn)
            return plug__bad(op, "job needs a run function:", jname);
        lua_getfield(L, -1, "interval");
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) < 1)
                return plug__bad(op, "job interval must be a number of seconds >= 1:", jname);
            j.interval_ms = (int64_t)(lua_tonumber(L, -1) * 1000.0);
        }
        lua_pop(L, 1);
        lua_getfield(L, -1, "cron");
        if (!lua_isnil(L, -1)) {
            struct plug_cron c;
            if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) >= sizeof(j.cron) ||
                plug_cron_parse(lua_tostring(L, -1), &c) != PLUG_OK)
                return plug__bad(op, "job cron must be \"min hour dom month dow\":", jname);
            snprintf(j.cron, sizeof(j.cron), "%s", lua_tostring(L, -1));
        }
        lua_pop(L, 1);
        if ((j.interval_ms > 0) == (j.cron[0] != '\0'))
            return plug__bad(op, "job needs exactly one of interval and cron:", jname);
        lua_getfield(L, -1, "where");
        const char *w = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (lua_isnil(L, -1) || (w && !strcmp(w, "primary")))
            j.where = PLUG_WHERE_PRIMARY;
        else if (w && !strcmp(w, "every-node"))
            j.where = PLUG_WHERE_EVERY_NODE;
        else
            return plug__bad(op, "job where must be \"primary\" or \"every-node\":", jname);
        lua_pop(L, 1);
        struct plug__decl *d = op->decl;
        if (d) {
            void *nv = realloc(d->jobs, sizeof(*d->jobs) * (size_t)(d->njobs + 1));
            if (!nv)
                return luaL_error(L, "out of memory");
            d->jobs = nv;
            d->jobs[d->njobs++] = j;
        }
        lua_pop(L, 1);
    }
    return 1;
}

/* Check the table a plugin returned (at t): known fields with the right types. */
static int plug__decl_check(lua_State *L, struct plug__load_op *op, int t)
{
    unsigned hooks = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return plug__bad(op, "non-string field in the returned table:", luaL_typename(L, -2));
        const char *k = lua_tostring(L, -2);
        int h;
        for (h = 0; h < PLUG_HOOK_COUNT; h++)
            if (!strcmp(k, plug__hook_names[h]))
                break;
        int vt = lua_type(L, -1);
        if (h < PLUG_HOOK_COUNT || !strcmp(k, "authenticate")) {
            if (vt != LUA_TFUNCTION)
                return plug__bad(op, "hook must be a function:", k);
            hooks |= h < PLUG_HOOK_COUNT ? 1u << h : PLUG__REALM_BIT;
        } else if (!strcmp(k, "executions")) {
            if (vt != LUA_TTABLE)
                return plug__bad(op, "must be a table:", k);
            if (!plug__decl_execs(L, op, lua_gettop(L)))
                return 0;
        } else if (!strcmp(k, "jobs")) {
            if (vt != LUA_TTABLE)
                return plug__bad(op, "must be a table:", k);
            if (!plug__decl_jobs(L, op, lua_gettop(L)))
                return 0;
        } else if (!strcmp(k, "description") || !strcmp(k, "version")) {
            if (vt != LUA_TSTRING)
                return plug__bad(op, "must be a string:", k);
        } else {
            return plug__bad(op, "unknown field", k);
        }
        lua_pop(L, 1);
    }
    if (op->decl)
        op->decl->hooks = hooks;
    return 1;
}

static int plug__load_op_fn(lua_State *L)
{
    struct plug__load_op *op = lua_touserdata(L, 1);
    struct plug__state *s = op->s;
    char chunk[PLUG__NAME_MAX + 2];
    snprintf(chunk, sizeof(chunk), "=%s", op->name);
    if (luaL_loadbufferx(L, op->src, op->len, chunk, "t") != LUA_OK) {
        op->msg = plug__printf("%s", lua_tostring(L, -1));
        op->rc = PLUG_ECOMPILE;
        return 0;
    }
    plug__push_env(L, op->name);
    lua_setupvalue(L, -2, 1);
    int status = 0;
    int rc = plug__pcall(s, 0, 1, s->rt->opt.budget, &op->msg, &status);
    if (rc != PLUG_OK) {
        op->rc = rc == PLUG_EDENIED ? PLUG_ECOMPILE : rc;
        if (op->rc == PLUG_ERUNTIME)
            op->rc = PLUG_ECOMPILE;
        return 0;
    }
    int t = lua_gettop(L);
    if (lua_type(L, t) != LUA_TTABLE) {
        op->msg = plug__printf("%s: the plugin must return a table (of hooks, executions, jobs)",
                               op->name);
        op->rc = PLUG_EINVAL;
        return 0;
    }
    if (!plug__decl_check(L, op, t))
        return 0;
    lua_getfield(L, LUA_REGISTRYINDEX, REG_PLUGINS);
    lua_pushvalue(L, t);
    lua_rawseti(L, -2, op->index);
    op->rc = PLUG_OK;
    return 0;
}

static int plug__load_into(struct plug__state *s, int index, const char *name, const char *src,
                           size_t len, struct plug__decl *decl, char **msg)
{
    struct plug__load_op op = {s, index, name, src, len, decl, PLUG_OK, NULL};
    s->plugin = name;
    s->loading = true;
    int rc = plug__protect(s, plug__load_op_fn, &op, &op.msg);
    s->loading = false;
    s->plugin = NULL;
    if (rc == PLUG_OK)
        rc = op.rc;
    *msg = op.msg;
    return rc;
}

/* A state with the registry table of plugins: NULL when out of memory. */
static lua_State *plug__fresh(struct plug__state *s)
{
    if (!plug__newstate(s))
        return NULL;
    lua_newtable(s->L); /* cannot fail with the cap: the state is tiny */
    lua_setfield(s->L, LUA_REGISTRYINDEX, REG_PLUGINS);
    return s->L;
}

static void plug__close(struct plug__state *s)
{
    if (s->L)
        lua_close(s->L);
    s->L = NULL;
}

/* ---- runtime ---- */

static void plug__tls_free(void *arg)
{
    struct plug__state *s = arg;
    if (!s)
        return;
    plug__close(s);
    plug__set_unref(s->set);
    free(s);
}

int plug_runtime_new(const struct plug_host *host, const struct plug_options *o,
                     struct plug_runtime **out)
{
    struct plug_runtime *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return PLUG_ENOMEM;
    if (host)
        rt->host = *host;
    if (o)
        rt->opt = *o;
    if (!rt->opt.mem_limit)
        rt->opt.mem_limit = PLUG__MEM_DEFAULT;
    if (!rt->opt.budget)
        rt->opt.budget = PLUG__BUDGET_DEFAULT;
    if (!rt->opt.job_budget)
        rt->opt.job_budget = PLUG__JOB_BUDGET_DEFAULT;
    if (pthread_key_create(&rt->key, plug__tls_free)) {
        free(rt);
        return PLUG_ENOMEM;
    }
    pthread_mutex_init(&rt->lock, NULL);
    *out = rt;
    return PLUG_OK;
}

void plug_runtime_free(struct plug_runtime *rt)
{
    if (!rt)
        return;
    plug__tls_free(pthread_getspecific(rt->key));
    pthread_setspecific(rt->key, NULL);
    pthread_key_delete(rt->key);
    plug__set_unref(rt->set);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
}

/* A probe state: load one plugin alone, collect its declarations. */
static int plug__probe(struct plug_runtime *rt, const char *name, const char *src, size_t len,
                       struct plug__decl *decl, char **msg)
{
    *msg = NULL;
    if (!plug_name_valid(name)) {
        *msg = plug__printf("bad plugin name: [A-Za-z0-9][A-Za-z0-9._-]{0,63}");
        return PLUG_EINVAL;
    }
    struct plug__state *s = calloc(1, sizeof(*s));
    if (!s)
        return PLUG_ENOMEM;
    s->rt = rt;
    s->mem_limit = rt->opt.mem_limit;
    int rc = PLUG_ENOMEM;
    if (plug__fresh(s))
        rc = plug__load_into(s, 1, name, src, len, decl, msg);
    plug__close(s);
    free(s);
    return rc;
}

int plug_check(struct plug_runtime *rt, const char *name, const char *src, size_t len, char *err,
               size_t errlen)
{
    char *msg = NULL;
    int rc = plug__probe(rt, name, src, len, NULL, &msg);
    if (err && errlen)
        snprintf(err, errlen, "%s", msg ? msg : plug_strerror(rc));
    free(msg);
    return rc;
}

static int plug__cmp_source(const void *a, const void *b)
{
    return strcmp(((const struct plug_source *)a)->name, ((const struct plug_source *)b)->name);
}

static int plug__cmp_exec(const void *a, const void *b)
{
    return strcmp(((const struct plug_exec_info *)a)->name,
                  ((const struct plug_exec_info *)b)->name);
}

int plug_load(struct plug_runtime *rt, uint64_t generation, const struct plug_source *v, int n)
{
    struct plug__set *set = calloc(1, sizeof(*set));
    struct plug_source *sorted = calloc((size_t)(n > 0 ? n : 1), sizeof(*sorted));
    if (!set || !sorted || (n > 0 && !(set->p = calloc((size_t)n, sizeof(*set->p))))) {
        free(set);
        free(sorted);
        return PLUG_ENOMEM;
    }
    atomic_init(&set->refs, 1);
    set->generation = generation;
    if (n > 0)
        memcpy(sorted, v, sizeof(*v) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(*sorted), plug__cmp_source);
    for (int i = 0; i < n; i++) {
        struct plug__decl d;
        memset(&d, 0, sizeof(d));
        char *msg = NULL;
        if (i > 0 && !strcmp(sorted[i].name, sorted[i - 1].name))
            continue;
        int rc = plug__probe(rt, sorted[i].name, sorted[i].src, sorted[i].len, &d, &msg);
        if (rc != PLUG_OK) {
            char *line = plug__printf("not loaded: %s", msg ? msg : plug_strerror(rc));
            plug__log(rt, PLUG_LOG_ERROR, sorted[i].name, line ? line : "not loaded");
            free(line);
            free(msg);
            free(d.execs);
            free(d.jobs);
            continue;
        }
        free(msg);
        struct plug__plugin *p = &set->p[set->n];
        snprintf(p->name, sizeof(p->name), "%s", sorted[i].name);
        p->src = malloc(sorted[i].len + 1);
        if (!p->src)
            goto oom;
        memcpy(p->src, sorted[i].src, sorted[i].len);
        p->src[sorted[i].len] = '\0';
        p->len = sorted[i].len;
        p->hooks = d.hooks;
        set->hooks |= d.hooks;
        set->n++;
        /* executions: the first plugin (by name) to declare a name keeps it */
        for (int k = 0; k < d.nexecs; k++) {
            bool dup = false;
            for (int m = 0; m < set->nexecs; m++)
                dup = dup || !strcmp(set->execs[m].name, d.execs[k].name);
            if (dup) {
                char *line = plug__printf("execution '%s' is already declared by another plugin",
                                          d.execs[k].name);
                plug__log(rt, PLUG_LOG_WARN, p->name, line ? line : "duplicate execution");
                free(line);
                continue;
            }
            void *nv = realloc(set->execs, sizeof(*set->execs) * (size_t)(set->nexecs + 1));
            if (!nv)
                goto oom_decl;
            set->execs = nv;
            set->execs[set->nexecs++] = d.execs[k];
        }
        if (d.njobs) {
            void *nv = realloc(set->jobs, sizeof(*set->jobs) * (size_t)(set->njobs + d.njobs));
            if (!nv)
                goto oom_decl;
            set->jobs = nv;
            memcpy(set->jobs + set->njobs, d.jobs, sizeof(*d.jobs) * (size_t)d.njobs);
            set->njobs += d.njobs;
        }
        free(d.execs);
        free(d.jobs);
        continue;
    oom_decl:
        free(d.execs);
        free(d.jobs);
        goto oom;
    }
    free(sorted);
    if (set->nexecs > 1)
        qsort(set->execs, (size_t)set->nexecs, sizeof(*set->execs), plug__cmp_exec);
    pthread_mutex_lock(&rt->lock);
    struct plug__set *old = rt->set;
    rt->set = set;
    atomic_store(&rt->hooks, set->hooks);
    atomic_store(&rt->generation, generation);
    pthread_mutex_unlock(&rt->lock);
    plug__set_unref(old);
    return PLUG_OK;
oom:
    free(sorted);
    plug__set_unref(set);
    return PLUG_ENOMEM;
}

uint64_t plug_generation(struct plug_runtime *rt)
{
    return atomic_load(&rt->generation);
}

bool plug_has_hook(struct plug_runtime *rt, enum plug_hook h)
{
    return rt && (atomic_load(&rt->hooks) & (1u << h));
}

bool plug_has_realm(struct plug_runtime *rt)
{
    return rt && (atomic_load(&rt->hooks) & PLUG__REALM_BIT);
}

/*
 * This thread's state, built from the current set (rebuilt when the set
 * changed or after an error). PLUG_EBUSY inside a plugin call.
 */
static int plug__enter(struct plug_runtime *rt, struct plug__state **out)
{
    struct plug__state *s = pthread_getspecific(rt->key);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return PLUG_ENOMEM;
        s->rt = rt;
        s->mem_limit = rt->opt.mem_limit;
        if (pthread_setspecific(rt->key, s)) {
            free(s);
            return PLUG_ENOMEM;
        }
    }
    if (s->depth > 0)
        return PLUG_EBUSY;
    uint64_t gen = atomic_load(&rt->generation);
    if (!s->L || s->broken || !s->set || s->set->generation != gen) {
        plug__close(s);
        plug__set_unref(s->set);
        s->set = plug__set_current(rt);
        s->broken = false;
        if (!plug__fresh(s))
            return PLUG_ENOMEM;
        for (int i = 0; s->set && i < s->set->n; i++) {
            char *msg = NULL;
            struct plug__plugin *p = &s->set->p[i];
            if (plug__load_into(s, i + 1, p->name, p->src, p->len, NULL, &msg) != PLUG_OK) {
                plug__log(rt, PLUG_LOG_ERROR, p->name, msg ? msg : "not loaded in this thread");
                s->broken = false; /* the others are fine; this one is absent */
            }
            free(msg);
        }
    }
    s->depth++;
    *out = s;
    return PLUG_OK;
}

static void plug__leave(struct plug__state *s)
{
    s->depth--;
    s->cur_artifact = NULL;
    s->call = NULL;
    s->user = NULL;
    s->plugin = NULL;
    if (s->L)
        lua_settop(s->L, 0);
}

/* Push plugin i's table field `field` (a function or nil). */
static int plug__get(lua_State *L, int i, const char *field)
{
    lua_getfield(L, LUA_REGISTRYINDEX, REG_PLUGINS);
    if (lua_rawgeti(L, -1, i + 1) != LUA_TTABLE) {
        lua_pop(L, 2);
        lua_pushnil(L);
        return LUA_TNIL;
    }
    lua_getfield(L, -1, field);
    lua_replace(L, -3);
    lua_pop(L, 1);
    return lua_type(L, -1);
}

void plug_result_release(struct plug_result *res)
{
    if (!res)
        return;
    free(res->message);
    free(res->body);
    free(res->content_type);
    for (int i = 0; i < res->nheaders; i++) {
        free((char *)res->headers[i].key);
        free((char *)res->headers[i].value);
    }
    free(res->headers);
    for (int i = 0; i < res->nadd; i++) {
        free((char *)res->add_props[i].key);
        free((char *)res->add_props[i].value);
    }
    free(res->add_props);
    memset(res, 0, sizeof(*res));
}

static void plug__add_pair(struct plug_prop **v, int *n, const char *k, const char *val)
{
    void *nv = realloc(*v, sizeof(**v) * (size_t)(*n + 1));
    if (!nv)
        return;
    *v = nv;
    (*v)[*n].key = strdup(k);
    (*v)[*n].value = strdup(val);
    if (!(*v)[*n].key || !(*v)[*n].value) {
        free((char *)(*v)[*n].key);
        free((char *)(*v)[*n].value);
        return;
    }
    (*n)++;
}

/* ---- hooks ---- */

struct plug__hook_op {
    struct plug__state *s;
    enum plug_hook h;
    const struct plug_event *ev;
    struct plug_result *res;
    int rc;
};

static void plug__push_event(struct plug__state *s, const struct plug_event *ev)
{
    lua_State *L = s->L;
    lua_createtable(L, 0, 12);
#define EV_STR(field, name)                                                                        \
    if (ev->field) {                                                                               \
        lua_pushstring(L, ev->field);                                                              \
        lua_setfield(L, -2, name);                                                                 \
    }
    EV_STR(repo, "repo");
    EV_STR(path, "path");
    EV_STR(user, "user");
    EV_STR(target_repo, "targetRepo");
    EV_STR(target_path, "targetPath");
    EV_STR(action, "action");
#undef EV_STR
    lua_pushboolean(L, ev->admin);
    lua_setfield(L, -2, "admin");
    s->cur_artifact = ev->artifact;
    if (ev->artifact)
        plug__event_lazy(L);
    if (ev->props || ev->nprops) {
        plug__push_props(L, ev->props, ev->nprops);
        lua_setfield(L, -2, "properties");
    }
    if (ev->size >= 0) {
        lua_pushinteger(L, ev->size);
        lua_setfield(L, -2, "size");
    }
    if (ev->status) {
        lua_pushinteger(L, ev->status);
        lua_setfield(L, -2, "status");
    }
}

static const char *plug__field_str(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* still referenced by the table */
    return v;
}

/* beforeDownload's alternative response: { status=, body=, contentType=, headers={} } */
static void plug__take_response(lua_State *L, int t, struct plug_result *res)
{
    lua_getfield(L, t, "status");
    res->status = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 200;
    lua_pop(L, 1);
    if (res->status < 100 || res->status > 599)
        res->status = 500;
    size_t n = 0;
    lua_getfield(L, t, "body");
    const char *body = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : "";
    res->body = malloc(n + 1);
    if (res->body) {
        memcpy(res->body, body, n);
        res->body[n] = '\0';
        res->body_len = n;
    }
    lua_pop(L, 1);
    const char *ct = plug__field_str(L, t, "contentType");
    res->content_type = strdup(ct ? ct : "text/plain; charset=utf-8");
    lua_getfield(L, t, "headers");
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
                plug__add_pair(&res->headers, &res->nheaders, lua_tostring(L, -2),
                               lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    res->respond = true;
}

/* beforeUpload's { properties = { key = "v" | {"v1", "v2"} } } */
static void plug__take_props(lua_State *L, int t, struct plug_result *res)
{
    lua_getfield(L, t, "properties");
    if (lua_type(L, -1) != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -2);
            if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
                lua_pushvalue(L, -1);
                plug__add_pair(&res->add_props, &res->nadd, k, lua_tostring(L, -1));
                lua_pop(L, 1);
            } else if (lua_type(L, -1) == LUA_TTABLE) {
                lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
                for (lua_Integer i = 1; i <= len; i++) {
                    if (lua_rawgeti(L, -1, i) == LUA_TSTRING)
                        plug__add_pair(&res->add_props, &res->nadd, k, lua_tostring(L, -1));
                    lua_pop(L, 1);
                }
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static int plug__hook_fn(lua_State *L)
{
    struct plug__hook_op *op = lua_touserdata(L, 1);
    struct plug__state *s = op->s;
    struct plug__set *set = s->set;
    bool before = !(op->h & 1);
    const char *hname = plug__hook_names[op->h];
    for (int i = 0; set && i < set->n; i++) {
        if (!(set->p[i].hooks & (1u << op->h)))
            continue;
        if (plug__get(L, i, hname) != LUA_TFUNCTION) {
            lua_pop(L, 1);
            continue;
        }
        s->plugin = set->p[i].name;
        plug__push_event(s, op->ev);
        char *msg = NULL;
        int status = 0;
        int rc = plug__pcall(s, 1, 1, s->rt->opt.budget, &msg, &status);
        if (rc != PLUG_OK) {
            if (!op->res->message) {
                op->res->message = msg;
                op->res->plugin = set->p[i].name;
                op->res->status = rc == PLUG_EDENIED ? status : 500;
                op->rc = rc;
            } else {
                free(msg);
            }
            if (before)
                return 0;
            if (s->broken)
                return 0; /* the state is unusable: the other after* hooks are skipped */
            continue;
        }
        int t = lua_gettop(L);
        if (lua_type(L, t) == LUA_TTABLE) {
            if (op->h == PLUG_BEFORE_DOWNLOAD) {
                plug__take_response(L, t, op->res);
                op->res->plugin = set->p[i].name;
                return 0;
            }
            if (op->h == PLUG_BEFORE_UPLOAD)
                plug__take_props(L, t, op->res);
        }
        lua_settop(L, 1);
    }
    return 0;
}

int plug_run_hook(struct plug_runtime *rt, enum plug_hook h, const struct plug_event *ev,
                  void *call, struct plug_result *res)
{
    memset(res, 0, sizeof(*res));
    if (!plug_has_hook(rt, h))
        return PLUG_OK;
    struct plug__state *s = NULL;
    int rc = plug__enter(rt, &s);
    if (rc)
        return rc;
    s->call = call;
    s->user = ev->user;
    s->admin = ev->admin;
    struct plug__hook_op op = {s, h, ev, res, PLUG_OK};
    rc = plug__protect(s, plug__hook_fn, &op, &res->message);
    if (rc == PLUG_OK)
        rc = op.rc;
    else if (!res->status)
        res->status = 500;
    plug__leave(s);
    return rc;
}

/* ---- realms ---- */

struct plug__auth_op {
    struct plug__state *s;
    const char *user, *password;
    bool accepted, admin;
    const char *realm; /* the plugin that accepted */
};

static int plug__auth_fn(lua_State *L)
{
    struct plug__auth_op *op = lua_touserdata(L, 1);
    struct plug__state *s = op->s;
    struct plug__set *set = s->set;
    for (int i = 0; set && i < set->n && !op->accepted; i++) {
        if (!(set->p[i].hooks & PLUG__REALM_BIT))
            continue;
        if (plug__get(L, i, "authenticate") != LUA_TFUNCTION) {
            lua_pop(L, 1);
            continue;
        }
        s->plugin = set->p[i].name;
        lua_pushstring(L, op->user);
        lua_pushstring(L, op->password);
        char *msg = NULL;
        int status = 0;
        int rc = plug__pcall(s, 2, 1, s->rt->opt.budget, &msg, &status);
        if (rc != PLUG_OK) {
            plug__log(s->rt, PLUG_LOG_ERROR, set->p[i].name, msg ? msg : plug_strerror(rc));
            free(msg);
            if (s->broken)
                return 0;
            continue;
        }
        if (lua_type(L, -1) == LUA_TTABLE) {
            op->accepted = true;
            lua_getfield(L, -1, "admin");
            op->admin = lua_toboolean(L, -1);
            lua_pop(L, 1);
        } else {
            op->accepted = lua_toboolean(L, -1);
        }
        if (op->accepted)
            op->realm = set->p[i].name;
        lua_settop(L, 1);
    }
    return 0;
}

int plug_authenticate(struct plug_runtime *rt, const char *user, const char *password, void *call,
                      bool *accepted, bool *admin, char *realm, size_t realm_size)
{
    *accepted = false;
    *admin = false;
    if (realm_size)
        realm[0] = '\0';
    if (!plug_has_realm(rt))
        return PLUG_OK;
    struct plug__state *s = NULL;
    int rc = plug__enter(rt, &s);
    if (rc)
        return rc;
    s->call = call;
    s->user = user;
    struct plug__auth_op op = {s, user, password, false, false, NULL};
    char *msg = NULL;
    rc = plug__protect(s, plug__auth_fn, &op, &msg);
    free(msg);
    if (rc == PLUG_OK) {
        *accepted = op.accepted;
        *admin = op.admin;
        if (op.realm && realm_size)
            snprintf(realm, realm_size, "%s", op.realm);
    }
    plug__leave(s);
    return PLUG_OK;
}

/* ---- executions ---- */

/* A malloc'd copy of n elements of size sz (NULL when n is 0); PLUG_ENOMEM. */
static int plug__copy_out(const void *src, int n, size_t sz, void **out)
{
    *out = NULL;
    if (n <= 0)
        return PLUG_OK;
    *out = malloc(sz * (size_t)n);
    if (!*out)
        return PLUG_ENOMEM;
    memcpy(*out, src, sz * (size_t)n);
    return PLUG_OK;
}

int plug_executions(struct plug_runtime *rt, struct plug_exec_info **out, int *n)
{
    struct plug__set *set = plug__set_current(rt);
    void *copy = NULL;
    int rc = plug__copy_out(set ? set->execs : NULL, set ? set->nexecs : 0, sizeof(**out), &copy);
    *out = copy;
    *n = copy ? set->nexecs : 0;
    plug__set_unref(set);
    return rc;
}

int plug_jobs(struct plug_runtime *rt, struct plug_job_info **out, int *n)
{
    struct plug__set *set = plug__set_current(rt);
    void *copy = NULL;
    int rc = plug__copy_out(set ? set->jobs : NULL, set ? set->njobs : 0, sizeof(**out), &copy);
    *out = copy;
    *n = copy ? set->njobs : 0;
    plug__set_unref(set);
    return rc;
}

static int plug__plugin_index(struct plug__set *set, const char *name)
{
    for (int i = 0; set && i < set->n; i++)
        if (!strcmp(set->p[i].name, name))
            return i;
    return -1;
}

struct plug__exec_op {
    struct plug__state *s;
    int index;
    const char *name;
    const struct plug_param *params;
    int nparams;
    const char *body;
    size_t body_len;
    const struct plug_event *who;
    struct plug_result *res;
    int rc;
};

static int plug__exec_fn(lua_State *L)
{
    struct plug__exec_op *op = lua_touserdata(L, 1);
    struct plug__state *s = op->s;
    if (plug__get(L, op->index, "executions") != LUA_TTABLE) {
        op->rc = PLUG_ENOTFOUND;
        return 0;
    }
    lua_getfield(L, -1, op->name);
    if (lua_type(L, -1) == LUA_TTABLE)
        lua_getfield(L, -1, "run");
    if (lua_type(L, -1) != LUA_TFUNCTION) {
        op->rc = PLUG_ENOTFOUND;
        return 0;
    }
    lua_createtable(L, 0, op->nparams);
    for (int i = 0; i < op->nparams; i++) {
        lua_pushstring(L, op->params[i].value ? op->params[i].value : "");
        lua_setfield(L, -2, op->params[i].key);
    }
    lua_createtable(L, 0, 3); /* ctx: user, admin, body */
    lua_pushstring(L, op->who && op->who->user ? op->who->user : "anonymous");
    lua_setfield(L, -2, "user");
    lua_pushboolean(L, op->who && op->who->admin);
    lua_setfield(L, -2, "admin");
    lua_pushlstring(L, op->body ? op->body : "", op->body ? op->body_len : 0);
    lua_setfield(L, -2, "body");
    int base = lua_gettop(L) - 2; /* the function */
    char *msg = NULL;
    int status = 0;
    int rc = plug__pcall(s, 2, 3, s->rt->opt.budget, &msg, &status);
    struct plug_result *res = op->res;
    if (rc != PLUG_OK) {
        res->message = msg;
        res->status = rc == PLUG_EDENIED ? status : 500;
        op->rc = rc;
        return 0;
    }
    /* results: body (string, or a table sent as JSON), status, content type */
    const char *ct = "text/plain; charset=utf-8";
    if (lua_type(L, base) == LUA_TTABLE) {
        lua_getfield(L, LUA_REGISTRYINDEX, "granary.api");
        lua_getfield(L, -1, "json");
        lua_pushvalue(L, base);
        rc = plug__pcall(s, 1, 1, s->rt->opt.budget, &msg, &status);
        if (rc != PLUG_OK) {
            res->message = msg;
            res->status = 500;
            op->rc = rc;
            return 0;
        }
        lua_replace(L, base);
        lua_pop(L, 1);
        ct = "application/json";
    }
    size_t n = 0;
    const char *body = lua_type(L, base) == LUA_TSTRING || lua_type(L, base) == LUA_TNUMBER
                           ? lua_tolstring(L, base, &n)
                           : "";
    res->status = lua_isinteger(L, base + 1) ? (int)lua_tointeger(L, base + 1) : 200;
    if (res->status < 100 || res->status > 599)
        res->status = 500;
    if (lua_type(L, base + 2) == LUA_TSTRING)
        ct = lua_tostring(L, base + 2);
    res->body = malloc(n + 1);
    if (res->body) {
        memcpy(res->body, body, n);
        res->body[n] = '\0';
        res->body_len = n;
    }
    res->content_type = strdup(ct);
    res->respond = true;
    op->rc = PLUG_OK;
    return 0;
}

int plug_execute(struct plug_runtime *rt, const char *name, const struct plug_param *params,
                 int nparams, const char *body, size_t body_len, const struct plug_event *who,
                 void *call, struct plug_result *res)
{
    memset(res, 0, sizeof(*res));
    struct plug__state *s = NULL;
    int rc = plug__enter(rt, &s);
    if (rc)
        return rc;
    int idx = -1;
    for (int i = 0; s->set && i < s->set->nexecs; i++) {
        if (!strcmp(s->set->execs[i].name, name)) {
            idx = plug__plugin_index(s->set, s->set->execs[i].plugin);
            if (s->set->execs[i].admin && !(who && who->admin)) {
                res->status = 403;
                res->message = plug__printf("execution '%s' needs admin rights", name);
                plug__leave(s);
                return PLUG_EDENIED;
            }
            res->plugin = s->set->execs[i].plugin;
        }
    }
    if (idx < 0) {
        plug__leave(s);
        return PLUG_ENOTFOUND;
    }
    s->call = call;
    s->user = who ? who->user : NULL;
    s->admin = who && who->admin;
    s->plugin = s->set->p[idx].name;
    struct plug__exec_op op = {s, idx, name, params, nparams, body, body_len, who, res, PLUG_OK};
    rc = plug__protect(s, plug__exec_fn, &op, &res->message);
    if (rc == PLUG_OK)
        rc = op.rc;
    else
        res->status = 500;
    plug__leave(s);
    return rc;
}

/* ---- jobs ---- */

struct plug__job_op {
    struct plug__state *s;
    int index;
    const char *job;
    char *msg;
    int rc;
};

static int plug__job_fn(lua_State *L)
{
    struct plug__job_op *op = lua_touserdata(L, 1);
    if (plug__get(L, op->index, "jobs") != LUA_TTABLE) {
        op->rc = PLUG_ENOTFOUND;
        return 0;
    }
    lua_getfield(L, -1, op->job);
    if (lua_type(L, -1) != LUA_TTABLE) {
        op->rc = PLUG_ENOTFOUND;
        return 0;
    }
    lua_getfield(L, -1, "run");
    if (lua_type(L, -1) != LUA_TFUNCTION) {
        op->rc = PLUG_ENOTFOUND;
        return 0;
    }
    int status = 0;
    op->rc = plug__pcall(op->s, 0, 0, op->s->rt->opt.job_budget, &op->msg, &status);
    return 0;
}

int plug_run_job(struct plug_runtime *rt, const char *plugin, const char *job, void *call,
                 char *err, size_t errlen)
{
    struct plug__state *s = NULL;
    if (err && errlen)
        err[0] = '\0';
    int rc = plug__enter(rt, &s);
    if (rc)
        return rc;
    int idx = plug__plugin_index(s->set, plugin);
    if (idx < 0) {
        plug__leave(s);
        return PLUG_ENOTFOUND;
    }
    s->call = call;
    snprintf(s->job_user, sizeof(s->job_user), "plugin:%s", plugin);
    s->user = s->job_user;
    s->admin = true;
    s->plugin = s->set->p[idx].name;
    struct plug__job_op op = {s, idx, job, NULL, PLUG_OK};
    rc = plug__protect(s, plug__job_fn, &op, &op.msg);
    if (rc == PLUG_OK)
        rc = op.rc;
    if (rc && err && errlen)
        snprintf(err, errlen, "%s", op.msg ? op.msg : plug_strerror(rc));
    free(op.msg);
    plug__leave(s);
    return rc;
}
