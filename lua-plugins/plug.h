/*
 * plug.h - Lua 5.4 plugins for granary: a sandbox, hooks, executions, jobs.
 * The only module that includes the Lua headers; it includes no daemon
 * header and calls up through struct plug_host (README.md explains the
 * design and lists every hook with its arguments and returns).
 *
 * Caveats
 * - Threads: a runtime is shared by any number of threads. Each thread
 *   that calls into it gets its own Lua state (a pthread key), built from
 *   the current plugin set and rebuilt when the set changes or after a
 *   budget or memory failure in it (so a memory bomb or a runaway loop
 *   leaves nothing behind; a plain Lua error leaves the state usable).
 *   A set is immutable and reference counted.
 * - Re-entrancy: a call made from inside a plugin call on the same thread
 *   (a host callback that would run another hook) is skipped with
 *   PLUG_EBUSY: actions plugins take through the API fire no hooks.
 * - Budgets: every call runs under an instruction budget (count hook) and
 *   every state under a memory cap (its allocator). A plugin cannot hang or
 *   crash the caller; what happens to the request is the hook's policy.
 * - Strings a call returns in struct plug_result are malloc'd and released
 *   by plug_result_release(); strings a host callback returns must stay
 *   valid until the plug_* call that made it returns (the daemon keeps them
 *   in the call's arena, passed back as `call`).
 */
#ifndef PLUG_H
#define PLUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum plug_err {
    PLUG_OK = 0,
    PLUG_ENOMEM = -1,    /* allocation failed (outside a state) */
    PLUG_ECOMPILE = -2,  /* a plugin does not compile or its top level fails */
    PLUG_ERUNTIME = -3,  /* a plugin raised an error */
    PLUG_EBUDGET = -4,   /* instruction budget exhausted */
    PLUG_EMEMORY = -5,   /* memory cap reached */
    PLUG_EINVAL = -6,    /* bad argument (name, declaration) */
    PLUG_ENOTFOUND = -7, /* no such execution, job, item */
    PLUG_EBUSY = -8,     /* called from inside a plugin call (skipped) */
    PLUG_EHOST = -9,     /* a host callback failed */
    PLUG_EDENIED = -10,  /* a plugin rejected the request (granary.reject) */
};

/* Short text for an error code; static storage, never NULL. */
const char *plug_strerror(int err);

/* Hooks, in the order README.md documents them. */
enum plug_hook {
    PLUG_BEFORE_DOWNLOAD,
    PLUG_AFTER_DOWNLOAD,
    PLUG_BEFORE_UPLOAD,
    PLUG_AFTER_UPLOAD,
    PLUG_BEFORE_DELETE,
    PLUG_AFTER_DELETE,
    PLUG_BEFORE_MOVE,
    PLUG_AFTER_MOVE,
    PLUG_BEFORE_COPY,
    PLUG_AFTER_COPY,
    PLUG_BEFORE_PROPERTY_CHANGE,
    PLUG_AFTER_PROPERTY_CHANGE,
    PLUG_HOOK_COUNT
};

/* The Lua field name of a hook ("beforeDownload", ...). */
const char *plug_hook_name(enum plug_hook h);

enum plug_log { PLUG_LOG_DEBUG, PLUG_LOG_INFO, PLUG_LOG_WARN, PLUG_LOG_ERROR };

struct plug_artifact {
    const char *repo, *path, *sha256, *sha1, *md5, *created_by, *modified_by;
    uint64_t size;
    int64_t created_ms, modified_ms;
};

struct plug_repo {
    const char *key, *rclass, *package_type, *description;
};

/* One property value (a key with several values appears several times). */
struct plug_prop {
    const char *key, *value;
};

/* granary.search{...}: every field optional; limit 0 means the host's default. */
struct plug_query {
    const char *repo;              /* one repository, or NULL: all */
    const char *name;              /* file name with * and ? wildcards, or NULL */
    int64_t created_before_ms;     /* 0: no bound */
    const struct plug_prop *props; /* every key must have that value */
    int nprops;
    int limit;
};

/*
 * What plugins may call, implemented by the daemon. `arg` is host.arg;
 * `call` is what the caller of plug_run_*() passed (its arena, its user).
 * Each returns PLUG_OK, PLUG_ENOTFOUND, PLUG_EINVAL or PLUG_EHOST; strings
 * it hands back live until the plug_* call returns. A NULL member makes
 * the matching granary.* function fail with "not available".
 */
struct plug_host {
    void *arg;
    const char *node_id; /* granary.node() */
    void (*log)(void *arg, enum plug_log level, const char *plugin, const char *msg);
    int (*artifact_get)(void *arg, void *call, const char *repo, const char *path,
                        struct plug_artifact *out);
    int (*repo_get)(void *arg, void *call, const char *key, struct plug_repo *out);
    int (*props_get)(void *arg, void *call, const char *repo, const char *path,
                     struct plug_prop **out, int *n);
    /* replace key's values (n >= 1) on an item */
    int (*props_set)(void *arg, void *call, const char *repo, const char *path, const char *key,
                     const char *const *values, int n);
    int (*props_delete)(void *arg, void *call, const char *repo, const char *path, const char *key);
    int (*search)(void *arg, void *call, const struct plug_query *q, struct plug_artifact **out,
                  int *n);
    int (*artifact_delete)(void *arg, void *call, const char *repo, const char *path,
                           const char *user);
};

struct plug_options {
    size_t mem_limit;    /* bytes per Lua state; 0: 32 MiB */
    uint64_t budget;     /* instructions per hook, realm or execution call; 0: 20M */
    uint64_t job_budget; /* instructions per job run; 0: 500M */
};

struct plug_runtime;

/*
 * A runtime with no plugins. host is copied (its strings must outlive the
 * runtime). @return PLUG_OK, PLUG_ENOMEM.
 */
int plug_runtime_new(const struct plug_host *host, const struct plug_options *o,
                     struct plug_runtime **out) __attribute__((warn_unused_result));
/* Free the runtime and the calling thread's state; other threads must be
 * done with it (their states are freed when they exit). NULL is fine. */
void plug_runtime_free(struct plug_runtime *rt);

/* A plugin's name: [A-Za-z0-9][A-Za-z0-9._-]{0,63}. */
bool plug_name_valid(const char *name);

/*
 * Compile and run one plugin alone in a fresh sandbox and check what its
 * top level returns (a table of hooks, executions and jobs). err gets
 * "name:line: message" on failure. @return PLUG_OK, PLUG_EINVAL (bad name
 * or declaration), PLUG_ECOMPILE, PLUG_EBUDGET, PLUG_EMEMORY.
 */
int plug_check(struct plug_runtime *rt, const char *name, const char *src, size_t len, char *err,
               size_t errlen) __attribute__((warn_unused_result));

struct plug_source {
    const char *name;
    const char *src;
    size_t len;
};

/*
 * Make these plugins the current set (tagged generation). Each is checked
 * as plug_check() does; one that fails is left out and logged through
 * host.log, the others load. Threads switch to the new set at their next
 * call. @return PLUG_OK, PLUG_ENOMEM.
 */
int plug_load(struct plug_runtime *rt, uint64_t generation, const struct plug_source *v, int n)
    __attribute__((warn_unused_result));
/* The generation of the current set (0 before any plug_load). */
uint64_t plug_generation(struct plug_runtime *rt);
/* Whether any loaded plugin defines h (one atomic read: hooks cost nothing when unused). */
bool plug_has_hook(struct plug_runtime *rt, enum plug_hook h);
bool plug_has_realm(struct plug_runtime *rt);

/* What a hook is told. Unused members are NULL / 0. */
struct plug_event {
    const char *repo, *path;
    const char *user;
    bool admin;
    const char *target_repo, *target_path; /* move, copy */
    const struct plug_artifact *artifact;  /* download, after upload, delete */
    const struct plug_prop *props;         /* upload: matrix properties; property */
    int nprops;                            /* change: the values set (delete: keys) */
    const char *action;                    /* property change: "set" or "delete" */
    int64_t size;                          /* upload: Content-Length, -1 unknown */
    int status;                            /* after download: the status answered */
};

/* What a call decided. Release with plug_result_release(). */
struct plug_result {
    int status;         /* deny or answer with this status (0: go on) */
    char *message;      /* deny message, or the error: "plugin:line: ..." */
    const char *plugin; /* the plugin that decided or failed (static for the set) */
    bool respond;       /* beforeDownload / execution: answer with body */
    char *body;
    size_t body_len;
    char *content_type;
    struct plug_prop *headers; /* alternative response headers */
    int nheaders;
    struct plug_prop *add_props; /* beforeUpload: properties to add */
    int nadd;
};
void plug_result_release(struct plug_result *res);

/*
 * Run every plugin's hook h, in plugin-name order, with ev. before* hooks
 * stop at the first rejection (granary.reject) or alternative response;
 * after* hooks all run.
 * @return PLUG_OK (res->status 0, or res->respond with an alternative
 *         response, or res->add_props); PLUG_EDENIED (res->status and
 *         res->message); PLUG_ERUNTIME / PLUG_EBUDGET / PLUG_EMEMORY (a
 *         plugin failed: res->message says where; after* hooks go on
 *         with the next plugin after a Lua error, not after a budget or
 *         memory failure; the first failure is returned); PLUG_EBUSY.
 */
int plug_run_hook(struct plug_runtime *rt, enum plug_hook h, const struct plug_event *ev,
                  void *call, struct plug_result *res) __attribute__((warn_unused_result));

#define PLUG_NAME_MAX 64 /* bytes of a plugin name */

/*
 * Ask every realm (plugins' `authenticate`, in name order) about user and
 * password; the first that accepts wins. A realm that fails is logged and
 * counts as a refusal. @return PLUG_OK with *accepted, *admin and, when
 * accepted, the name of the plugin that accepted in realm (realm_size
 * bytes, PLUG_NAME_MAX + 1 hold any name).
 */
int plug_authenticate(struct plug_runtime *rt, const char *user, const char *password, void *call,
                      bool *accepted, bool *admin, char *realm, size_t realm_size)
    __attribute__((warn_unused_result));

struct plug_param {
    const char *key, *value;
};

struct plug_exec_info {
    char name[65];
    char plugin[65];
    bool admin;
};

/*
 * The executions of the current set, by name (malloc'd array; free()).
 * @return PLUG_OK, PLUG_ENOMEM.
 */
int plug_executions(struct plug_runtime *rt, struct plug_exec_info **out, int *n)
    __attribute__((warn_unused_result));

/*
 * Run execution name with params and the request body (may be NULL).
 * res->respond, body, content_type and status carry the answer.
 * @return PLUG_OK; PLUG_ENOTFOUND; PLUG_EDENIED (needs admin, or the
 *         plugin rejected: res->status); PLUG_ERUNTIME, PLUG_EBUDGET,
 *         PLUG_EMEMORY (res->message); PLUG_EBUSY.
 */
int plug_execute(struct plug_runtime *rt, const char *name, const struct plug_param *params,
                 int nparams, const char *body, size_t body_len, const struct plug_event *who,
                 void *call, struct plug_result *res) __attribute__((warn_unused_result));

enum plug_where { PLUG_WHERE_PRIMARY, PLUG_WHERE_EVERY_NODE };

struct plug_job_info {
    char plugin[65];
    char name[65];
    enum plug_where where;
    int64_t interval_ms; /* > 0, or 0 with cron */
    char cron[128];      /* "" with interval */
};

/* The jobs of the current set (malloc'd array; free()). PLUG_OK, PLUG_ENOMEM. */
int plug_jobs(struct plug_runtime *rt, struct plug_job_info **out, int *n)
    __attribute__((warn_unused_result));

/*
 * Run one job now (under the job budget). err gets the failure.
 * @return PLUG_OK, PLUG_ENOTFOUND, PLUG_ERUNTIME, PLUG_EBUDGET, PLUG_EMEMORY, PLUG_EBUSY.
 */
int plug_run_job(struct plug_runtime *rt, const char *plugin, const char *job, void *call,
                 char *err, size_t errlen) __attribute__((warn_unused_result));

/* ---- cron (five fields: minute hour day-of-month month day-of-week) ---- */

struct plug_cron {
    uint64_t minute; /* bit per allowed value */
    uint32_t hour, dom, month;
    uint8_t dow;
    bool dom_any, dow_any;
};

/* Parse "m h dom mon dow" (*, lists, ranges, /steps; 0 or 7 is Sunday). PLUG_OK, PLUG_EINVAL. */
int plug_cron_parse(const char *expr, struct plug_cron *out) __attribute__((warn_unused_result));
/* The latest matching minute at or before t (seconds since the epoch, UTC); -1 if none in a year.
 */
int64_t plug_cron_prev(const struct plug_cron *c, int64_t t);

#endif
