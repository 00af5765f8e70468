/*
 * internal.h - shared by the files of lua-plugins/ (not for other modules):
 * the plugin set, the per-thread state and the sandbox.
 */
#ifndef PLUG_INTERNAL_H
#define PLUG_INTERNAL_H

#include "plug.h"

#include <lua.h>
#include <pthread.h>
#include <stdatomic.h>

#define PLUG__NAME_MAX 64
#define PLUG__HOOK_STEP 1000 /* instructions between two count-hook calls */
/* Bytes a plugin allocates that cost one instruction of its budget: building a
 * string is work a count hook never sees (.., string.upper, string.format). */
#define PLUG__BYTES_PER_STEP 64
/* CPU time a call may use per instruction of its budget (ns). Lua runs an
 * instruction in 5-20 ns; an operator on a long string (==, utf8.len) counts
 * as one instruction yet scans it all: this bounds those by the thread's CPU
 * clock, checked at every count-hook call. */
#define PLUG__NS_PER_STEP 100
#define PLUG__REALM_BIT (1u << PLUG_HOOK_COUNT)

/* One plugin of a set: its source, and what its table declared. */
struct plug__plugin {
    char name[PLUG__NAME_MAX + 1];
    char *src;
    size_t len;
    unsigned hooks; /* bit per enum plug_hook, PLUG__REALM_BIT for authenticate */
};

/* An immutable, reference-counted set of plugins (sorted by name). */
struct plug__set {
    atomic_int refs;
    uint64_t generation;
    struct plug__plugin *p;
    int n;
    unsigned hooks;
    struct plug_exec_info *execs; /* by name */
    int nexecs;
    struct plug_job_info *jobs;
    int njobs;
};

struct plug_runtime {
    struct plug_host host;
    struct plug_options opt;
    pthread_key_t key;
    pthread_mutex_t lock; /* set */
    struct plug__set *set;
    atomic_uint hooks;
    atomic_uint_fast64_t generation;
};

/* A Lua state and its accounting: one per thread (or a probe for checks). */
struct plug__state {
    struct plug_runtime *rt;
    struct plug__set *set; /* the set it was built from (a reference) */
    lua_State *L;
    size_t mem, mem_limit;
    bool mem_refused;
    uint64_t budget, count;
    int64_t cpu_deadline_ns; /* the thread's CPU clock past which the call is over */
    bool over;
    bool armed;   /* a call runs under the budget (between plug__arm and plug__disarm) */
    bool broken;  /* a budget or memory failure: rebuild before the next call */
    bool loading; /* running a plugin's top level: no host calls */
    char job_user[80];
    const struct plug_artifact *cur_artifact; /* e.artifact, built on first access */
    int depth;
    int last_line;
    void *call;
    const char *user;
    bool admin;
    const char *plugin; /* the plugin running now */
};

/* sandbox.c: a new state with the sandboxed libraries and the granary table.
 * NULL when out of memory. */
lua_State *plug__newstate(struct plug__state *s);
/* Push a fresh environment for plugin name (its own copies of the library tables). */
void plug__push_env(lua_State *L, const char *name);
/* Arm the instruction budget for the next call; disarm it after the call. */
void plug__arm(struct plug__state *s, uint64_t budget);
void plug__disarm(struct plug__state *s);
/*
 * C work charged to the budget (a Lua count hook never fires inside a C
 * function): a C loop a plugin steers counts steps, each worth about one
 * instruction of CPU.
 * plug__charge: charge steps to the running call; when they overrun its
 * budget, raise the same error as the count hook (and from then on at every
 * instruction, so a pcall inside the plugin cannot swallow it). Does
 * nothing when no budget is armed (outside a call).
 * plug__state_of, plug__left: the accounting of a Lua state (its
 * allocator's ud) and the steps left to its running call (0 once spent,
 * UINT64_MAX when unarmed), for a loop that counts locally and charges
 * once (strlib.c's matcher).
 */
void plug__charge(lua_State *L, uint64_t steps);
static inline struct plug__state *plug__state_of(lua_State *L)
{
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}
static inline uint64_t plug__left(const struct plug__state *s)
{
    if (!s->armed)
        return UINT64_MAX;
    if (s->over || s->count >= s->budget)
        return 0;
    return s->budget - s->count;
}
/* strlib.c, tablib.c: replace the pattern functions and string.rep of the
 * state's `string` table, and table.insert/remove/move/concat/sort of its
 * `table` table, with versions whose loops are charged to the budget. */
void plug__strlib_install(lua_State *L);
void plug__tablib_install(lua_State *L);
/* Push a reject error object (granary.reject) check: true if v at idx is one; fills status/msg. */
bool plug__is_reject(lua_State *L, int idx, int *status, const char **msg);

/* Give the event table at the top its lazy `artifact` (s->cur_artifact). */
void plug__event_lazy(lua_State *L);
/* Push an artifact as the table plugins see, and properties as {key = {values}}. */
void plug__push_artifact(lua_State *L, const struct plug_artifact *a);
void plug__push_props(lua_State *L, const struct plug_prop *p, int n);

/* plug.c: run the function under the stack top (nargs above it) for plugin. */
int plug__pcall(struct plug__state *s, int nargs, int nres, uint64_t budget, char **msg,
                int *status);

#endif
