/*
 * plugins.c - plugin sources in PostgreSQL, the generation that makes a
 * change live on every node, the host callbacks plugins call, and the job
 * scheduler (primary jobs claimed with a fenced statement).
 */
#include "repo/plugins.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "db/db.h"
#include "repo/internal.h"
#include "repo/props.h"
#include "repo/search.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define PLUGINS_GEN_KEY "plugins_generation"
#define PLUGINS_SRC_MAX (1024 * 1024)
#define PLUGINS_TICK_MS 250
#define PLUGINS_LOCAL_JOBS 256

struct plugins__local_job {
    char plugin[65], job[65];
    int64_t last_ms; /* wall clock of the last run (or of first sight) */
};

struct plugins {
    struct repo_ctx *ctx;
    struct plug_runtime *rt;
    char node_id[64];
    char dir[512];
    pthread_mutex_t sync_lock;
    atomic_uint_fast64_t synced; /* generation loaded; UINT64_MAX: none yet */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    struct plugins__local_job local[PLUGINS_LOCAL_JOBS];
    int nlocal;
    int64_t trimmed_ms; /* last trim of plugin_job_runs */
};

static int plugins__err(int rc)
{
    switch (rc) {
    case GR_OK:
        return PLUG_OK;
    case GR_ENOTFOUND:
        return PLUG_ENOTFOUND;
    case GR_EINVAL:
        return PLUG_EINVAL;
    default:
        return PLUG_EHOST;
    }
}

/* ---- host callbacks (call is a struct plugins_call) ---- */

static void plugins__log(void *arg, enum plug_log level, const char *plugin, const char *msg)
{
    (void)arg;
    enum gr_log_level l = level == PLUG_LOG_ERROR  ? GR_LOG_ERROR
                          : level == PLUG_LOG_WARN ? GR_LOG_WARN
                          : level == PLUG_LOG_INFO ? GR_LOG_INFO
                                                   : GR_LOG_DEBUG;
    gr_log(l, "plugin %s: %s", plugin, msg);
}

static void plugins__artifact_out(const struct artifact *a, struct plug_artifact *out)
{
    out->repo = a->repo;
    out->path = a->path;
    out->sha256 = a->sha256;
    out->sha1 = a->sha1;
    out->md5 = a->md5;
    out->created_by = a->created_by;
    out->modified_by = a->modified_by;
    out->size = a->size;
    out->created_ms = a->created_ms;
    out->modified_ms = a->modified_ms;
}

static int plugins__artifact_get(void *arg, void *call, const char *repo, const char *path,
                                 struct plug_artifact *out)
{
    struct plugins *p = arg;
    struct plugins_call *c = call;
    struct artifact *a = gr_arena_calloc(c->a, sizeof(*a));
    int rc = artifact_get(p->ctx, c->a, repo, path, a);
    if (rc == GR_OK)
        plugins__artifact_out(a, out);
    return plugins__err(rc);
}

static int plugins__repo_get(void *arg, void *call, const char *key, struct plug_repo *out)
{
    struct plugins *p = arg;
    struct plugins_call *c = call;
    if (repo_key_check(key) != GR_OK)
        return PLUG_ENOTFOUND;
    struct repo_config *cfg = gr_arena_calloc(c->a, sizeof(*cfg));
    int rc = repo_get(p->ctx, c->a, key, cfg);
    if (rc == GR_OK) {
        out->key = cfg->key;
        out->rclass = cfg->rclass;
        out->package_type = cfg->package_type;
        out->description = cfg->description ? cfg->description : "";
    }
    return plugins__err(rc);
}

static int plugins__props_get(void *arg, void *call, const char *repo, const char *path,
                              struct plug_prop **out, int *n)
{
    struct plugins *p = arg;
    struct plugins_call *c = call;
    struct props_set set;
    int rc = props_get(p->ctx, c->a, repo, path, NULL, &set);
    if (rc)
        return plugins__err(rc);
    int total = 0;
    for (int i = 0; i < set.n; i++)
        total += set.e[i].nvalues > 0 ? set.e[i].nvalues : 1;
    *out = gr_arena_calloc(c->a, sizeof(**out) * (size_t)(total + 1));
    *n = 0;
    for (int i = 0; i < set.n; i++) {
        if (set.e[i].nvalues == 0)
            (*out)[(*n)++] = (struct plug_prop){set.e[i].key, ""};
        for (int j = 0; j < set.e[i].nvalues; j++)
            (*out)[(*n)++] = (struct plug_prop){set.e[i].key, set.e[i].values[j]};
    }
    return PLUG_OK;
}

static int plugins__props_set(void *arg, void *call, const char *repo, const char *path,
                              const char *key, const char *const *values, int n)
{
    struct plugins *p = arg;
    (void)call;
    if (!props_key_valid(key))
        return PLUG_EINVAL;
    for (int i = 0; i < n; i++)
        if (!props_value_valid(values[i]))
            return PLUG_EINVAL;
    struct props_entry e = {key, (const char **)values, n};
    struct props_set set = {&e, 1};
    return plugins__err(props_set_item(p->ctx, repo, path, &set, false));
}

static int plugins__props_delete(void *arg, void *call, const char *repo, const char *path,
                                 const char *key)
{
    struct plugins *p = arg;
    (void)call;
    if (!props_key_valid(key))
        return PLUG_EINVAL;
    struct props_entry e = {key, NULL, 0};
    struct props_set set = {&e, 1};
    return plugins__err(props_delete_keys(p->ctx, repo, path, &set, false));
}

/*
 * One indexed search (by properties, else by name, else by creation date),
 * then the other criteria filtered here.
 */
static int plugins__search(void *arg, void *call, const struct plug_query *q,
                           struct plug_artifact **out, int *n)
{
    struct plugins *p = arg;
    struct plugins_call *c = call;
    struct search_query sq;
    memset(&sq, 0, sizeof(sq));
    sq.limit = q->limit > 0 && q->limit <= 10000 ? q->limit : SEARCH_LIMIT_DEFAULT;
    const char *repos[1] = {q->repo};
    if (q->repo) {
        sq.repos = repos;
        sq.nrepos = 1;
    }
    struct gr_sbuf like = GR_SBUF_INIT;
    struct props_set ps = {NULL, 0};
    if (q->nprops > 0) {
        ps.e = gr_arena_calloc(c->a, sizeof(*ps.e) * (size_t)q->nprops);
        for (int i = 0; i < q->nprops; i++) {
            const char **v = gr_arena_alloc(c->a, sizeof(*v));
            v[0] = q->props[i].value;
            ps.e[ps.n++] = (struct props_entry){q->props[i].key, v, 1};
        }
        sq.kind = SEARCH_PROP;
        sq.props = &ps;
    } else if (q->name) {
        if (search_name_like(q->name, &like) != GR_OK) {
            gr_sbuf_release(&like);
            return PLUG_EINVAL;
        }
        sq.kind = SEARCH_NAME;
        sq.like = gr_arena_strdup(c->a, like.buf);
    } else if (q->created_before_ms > 0) {
        sq.kind = SEARCH_DATES;
        sq.from_ms = 0;
        sq.to_ms = q->created_before_ms;
        sq.by_created = true;
    } else {
        return PLUG_EINVAL;
    }
    gr_sbuf_release(&like);
    struct search_hit *hits = NULL;
    int nh = 0;
    bool trunc = false;
    int rc = search_run(p->ctx, c->a, &sq, false, &hits, &nh, &trunc);
    if (rc)
        return plugins__err(rc);
    struct gr_sbuf nl = GR_SBUF_INIT;
    if (q->name && sq.kind != SEARCH_NAME && search_name_like(q->name, &nl) != GR_OK) {
        gr_sbuf_release(&nl);
        return PLUG_EINVAL;
    }
    gr_sbuf_release(&nl);
    *out = gr_arena_calloc(c->a, sizeof(**out) * (size_t)(nh + 1));
    *n = 0;
    for (int i = 0; i < nh; i++) {
        if (hits[i].is_folder)
            continue;
        if (q->created_before_ms > 0 && hits[i].art.created_ms >= q->created_before_ms)
            continue;
        plugins__artifact_out(&hits[i].art, &(*out)[*n]);
        (*out)[*n].repo = hits[i].repo;
        (*out)[*n].path = hits[i].path;
        (*n)++;
    }
    return PLUG_OK;
}

static int plugins__artifact_delete(void *arg, void *call, const char *repo, const char *path,
                                    const char *user)
{
    struct plugins *p = arg;
    (void)call;
    return plugins__err(artifact_delete(p->ctx, repo, path, user));
}

/* ---- the generation and the set ---- */

/* Read the generation through the cache; reload the set when it moved. */
static int plugins__sync(struct plugins *p, struct gr_arena *a)
{
    const char *v = NULL;
    int rc = repo__setting_get(p->ctx, a, PLUGINS_GEN_KEY, &v);
    if (rc && rc != GR_ENOTFOUND)
        return rc; /* no database: keep the set we have */
    uint64_t gen = rc == GR_OK ? strtoull(v, NULL, 10) : 0;
    if (atomic_load(&p->synced) == gen)
        return GR_OK;
    pthread_mutex_lock(&p->sync_lock);
    if (atomic_load(&p->synced) == gen) {
        pthread_mutex_unlock(&p->sync_lock);
        return GR_OK;
    }
    struct db_res *res = NULL;
    rc = db_exec1(p->ctx->db, &res, "SELECT name, source FROM plugins ORDER BY name", 0, NULL);
    if (rc == GR_OK) {
        int n = db_res_rows(res);
        struct plug_source *src = calloc((size_t)(n > 0 ? n : 1), sizeof(*src));
        if (!src) {
            rc = GR_ENOMEM;
        } else {
            for (int i = 0; i < n; i++) {
                src[i].name = db_res_get(res, i, 0);
                src[i].src = db_res_get(res, i, 1);
                src[i].len = strlen(src[i].src);
            }
            rc = plug_load(p->rt, gen, src, n) == PLUG_OK ? GR_OK : GR_ENOMEM;
            free(src);
            if (rc == GR_OK) {
                atomic_store(&p->synced, gen);
                gr_info("plugins: generation %llu loaded (%d stored)", (unsigned long long)gen, n);
            }
        }
    }
    db_res_free(res);
    pthread_mutex_unlock(&p->sync_lock);
    return rc;
}

struct plug_runtime *plugins_runtime(struct plugins *p, struct gr_arena *a)
{
    if (!p)
        return NULL;
    if (a && plugins__sync(p, a) != GR_OK)
        gr_debug("plugins: cannot read the plugin generation; keeping the loaded set");
    return p->rt;
}

/* In c's open transaction: bump the generation and the change counter. */
static int plugins__bump(struct db_conn *c, uint64_t *gen)
{
    struct db_res *res = NULL;
    int rc = db_exec(c, &res,
                     "INSERT INTO settings (key, value) VALUES ('" PLUGINS_GEN_KEY "', '1')"
                     " ON CONFLICT (key) DO UPDATE SET value = (settings.value::bigint + 1)::text"
                     " RETURNING value",
                     0, NULL);
    if (rc == GR_OK && gen)
        *gen = strtoull(db_res_get(res, 0, 0), NULL, 10);
    db_res_free(res);
    if (rc == GR_OK)
        rc = repo__bump(c);
    return rc;
}

/* After a commit: every node drops the cached generation before we return. */
static void plugins__announce(struct plugins *p)
{
    struct gr_sbuf k = GR_SBUF_INIT;
    repo__key_setting(&k, PLUGINS_GEN_KEY);
    repo__invalidate(p->ctx, &k, 1);
    gr_sbuf_release(&k);
    struct gr_arena *a = gr_arena_new();
    if (a) {
        (void)plugins__sync(p, a);
        gr_arena_free(a);
    }
}

/* Store a checked source in c's open transaction; *created tells insert from update. */
static int plugins__store(struct db_conn *c, const char *name, const char *src, const char *user,
                          bool *created, bool *changed)
{
    const char *prm[3] = {name, src, user};
    struct db_res *res = NULL;
    int rc = db_exec(c, &res,
                     "WITH old AS (SELECT source FROM plugins WHERE name = $1)"
                     " INSERT INTO plugins (name, source, updated_by) VALUES ($1, $2, $3)"
                     " ON CONFLICT (name) DO UPDATE SET source = EXCLUDED.source,"
                     " updated = now(), updated_by = EXCLUDED.updated_by"
                     " RETURNING (SELECT count(*) FROM old), (SELECT source = $2 FROM old)",
                     3, prm);
    if (rc == GR_OK) {
        *created = db_res_get(res, 0, 0)[0] == '0';
        if (changed)
            *changed = db_res_get(res, 0, 1)[0] != 't';
    }
    db_res_free(res);
    return rc;
}

int plugins_put(struct plugins *p, const char *name, const char *src, size_t len, const char *user,
                bool *created, char *err, size_t errlen)
{
    if (len > PLUGINS_SRC_MAX || memchr(src, '\0', len)) {
        snprintf(err, errlen, "%s: a plugin is UTF-8 text of at most %d bytes", name,
                 PLUGINS_SRC_MAX);
        return GR_EINVAL;
    }
    if (!strcmp(name, "reload") || !strcmp(name, "execute")) {
        snprintf(err, errlen, "'%s' is reserved", name);
        return GR_EINVAL;
    }
    int prc = plug_check(p->rt, name, src, len, err, errlen);
    if (prc == PLUG_ENOMEM)
        return GR_ENOMEM;
    if (prc != PLUG_OK)
        return GR_EINVAL;
    char *copy = strndup(src, len);
    if (!copy)
        return GR_ENOMEM;
    struct db_conn *c;
    int rc = db_acquire(p->ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc) {
        free(copy);
        return rc;
    }
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = plugins__store(c, name, copy, user, created, NULL);
    if (rc == GR_OK)
        rc = plugins__bump(c, NULL);
    rc = repo__finish(c, rc);
    free(copy);
    plugins__announce(p); /* even when the outcome is unknown */
    if (rc == GR_OK)
        gr_info("plugins: %s %s by %s", name, *created ? "installed" : "replaced", user);
    return rc;
}

int plugins_delete(struct plugins *p, const char *name)
{
    struct db_conn *c;
    int rc = db_acquire(p->ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc)
        return rc;
    const char *prm[1] = {name};
    struct db_res *res = NULL;
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = db_exec(c, &res, "DELETE FROM plugins WHERE name = $1 RETURNING 1", 1, prm);
    if (rc == GR_OK && db_res_rows(res) == 0)
        rc = GR_ENOTFOUND;
    db_res_free(res);
    if (rc == GR_OK)
        rc = plugins__bump(c, NULL);
    rc = repo__finish(c, rc);
    if (rc != GR_ENOTFOUND)
        plugins__announce(p);
    return rc;
}

int plugins_source(struct plugins *p, struct gr_arena *a, const char *name, const char **src,
                   size_t *len)
{
    const char *prm[1] = {name};
    struct db_res *res = NULL;
    int rc = db_exec1(p->ctx->db, &res, "SELECT source FROM plugins WHERE name = $1", 1, prm);
    if (rc)
        return rc;
    db_res_arena(res, a);
    if (db_res_rows(res) == 0)
        return GR_ENOTFOUND;
    *src = db_res_get(res, 0, 0);
    *len = strlen(*src);
    return GR_OK;
}

int plugins_list(struct plugins *p, struct gr_arena *a, struct plugins_row **out, int *n)
{
    struct db_res *res = NULL;
    int rc = db_exec1(p->ctx->db, &res,
                      "SELECT name, updated_by, (extract(epoch from updated) * 1000)::bigint,"
                      " octet_length(source) FROM plugins ORDER BY name",
                      0, NULL);
    if (rc)
        return rc;
    db_res_arena(res, a);
    *n = db_res_rows(res);
    *out = gr_arena_calloc(a, sizeof(**out) * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++) {
        (*out)[i].name = db_res_get(res, i, 0);
        (*out)[i].updated_by = db_res_get(res, i, 1);
        (*out)[i].updated_ms = strtoll(db_res_get(res, i, 2), NULL, 10);
        (*out)[i].size = strtoull(db_res_get(res, i, 3), NULL, 10);
    }
    return GR_OK;
}

int plugins_job_rows(struct plugins *p, struct gr_arena *a, struct plugins_job_row **out, int *n)
{
    struct db_res *res = NULL;
    int rc = db_exec1(p->ctx->db, &res,
                      "SELECT plugin, job, node, coalesce(last_error, ''),"
                      " (extract(epoch from last_run) * 1000)::bigint, runs"
                      " FROM plugin_jobs ORDER BY plugin, job",
                      0, NULL);
    if (rc)
        return rc;
    db_res_arena(res, a);
    *n = db_res_rows(res);
    *out = gr_arena_calloc(a, sizeof(**out) * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++) {
        (*out)[i].plugin = db_res_get(res, i, 0);
        (*out)[i].job = db_res_get(res, i, 1);
        (*out)[i].node = db_res_get(res, i, 2);
        (*out)[i].last_error = db_res_get(res, i, 3);
        (*out)[i].last_run_ms = strtoll(db_res_get(res, i, 4), NULL, 10);
        (*out)[i].runs = strtoull(db_res_get(res, i, 5), NULL, 10);
    }
    return GR_OK;
}

/*
 * plugins_dir: each <name>.lua becomes plugin <name> (stored only when its
 * source differs). Returns whether anything changed; errors are logged.
 */
static bool plugins__install_dir(struct plugins *p, struct db_conn *c)
{
    if (!p->dir[0])
        return false;
    DIR *d = opendir(p->dir);
    if (!d) {
        gr_warn("plugins: cannot open plugins_dir %s: %s", p->dir, strerror(errno));
        return false;
    }
    bool any = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl <= 4 || strcmp(e->d_name + nl - 4, ".lua"))
            continue;
        char name[128], path[1024];
        snprintf(name, sizeof(name), "%.*s", (int)(nl - 4), e->d_name);
        snprintf(path, sizeof(path), "%.500s/%.200s", p->dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        char *buf = malloc(PLUGINS_SRC_MAX + 1);
        size_t len = buf ? fread(buf, 1, PLUGINS_SRC_MAX + 1, f) : 0;
        fclose(f);
        char err[512];
        if (!buf || len > PLUGINS_SRC_MAX || memchr(buf, '\0', len)) {
            gr_error("plugins: %s: not a text file of at most %d bytes", path, PLUGINS_SRC_MAX);
        } else if (plug_check(p->rt, name, buf, len, err, sizeof(err)) != PLUG_OK) {
            gr_error("plugins: %s not installed: %s", path, err);
        } else {
            buf[len] = '\0';
            bool created = false, changed = false;
            if (plugins__store(c, name, buf, "plugins_dir", &created, &changed) == GR_OK &&
                (created || changed)) {
                gr_info("plugins: %s installed from %s", name, path);
                any = true;
            }
        }
        free(buf);
    }
    closedir(d);
    return any;
}

int plugins_reload(struct plugins *p, uint64_t *generation)
{
    struct db_conn *c;
    int rc = db_acquire(p->ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK) {
        plugins__install_dir(p, c);
        rc = plugins__bump(c, generation);
    }
    rc = repo__finish(c, rc);
    plugins__announce(p);
    return rc;
}

/* ---- jobs ---- */

/* every-node jobs: due by this node's clock since its last run here. */
static bool plugins__local_due(struct plugins *p, const struct plug_job_info *j, int64_t now)
{
    struct plugins__local_job *l = NULL;
    for (int i = 0; i < p->nlocal; i++)
        if (!strcmp(p->local[i].plugin, j->plugin) && !strcmp(p->local[i].job, j->name))
            l = &p->local[i];
    if (!l) {
        if (p->nlocal == PLUGINS_LOCAL_JOBS)
            return false;
        l = &p->local[p->nlocal++];
        snprintf(l->plugin, sizeof(l->plugin), "%s", j->plugin);
        snprintf(l->job, sizeof(l->job), "%s", j->name);
        l->last_ms = now; /* the first run comes one interval (or cron slot) later */
        return false;
    }
    bool due;
    if (j->interval_ms > 0) {
        due = now - l->last_ms >= j->interval_ms;
    } else {
        struct plug_cron c;
        due = plug_cron_parse(j->cron, &c) == PLUG_OK &&
              plug_cron_prev(&c, now / 1000) * 1000 > l->last_ms;
    }
    if (due)
        l->last_ms = now;
    return due;
}

/*
 * primary jobs: one fenced statement claims the run (this node holds the
 * primary lease with this token, the interval or cron slot has passed
 * since the last claim by anyone, no run is busy on a live node) and logs
 * it. *run_id is the logged run. false: not ours to run now.
 */
static bool plugins__claim(struct plugins *p, const struct plug_job_info *j, uint64_t token,
                           char run_id[24])
{
    char tok[24], secs[32], slot[32];
    snprintf(tok, sizeof(tok), "%llu", (unsigned long long)token);
    snprintf(secs, sizeof(secs), "%.3f", (double)j->interval_ms / 1000.0);
    slot[0] = '\0';
    if (!j->interval_ms) {
        struct plug_cron c;
        int64_t s = plug_cron_parse(j->cron, &c) == PLUG_OK
                        ? plug_cron_prev(&c, repo__now_ms() / 1000)
                        : -1;
        if (s < 0)
            return false;
        snprintf(slot, sizeof(slot), "%lld", (long long)s);
    }
    const char *prm[6] = {j->plugin, j->name, p->node_id, tok, secs, slot[0] ? slot : NULL};
    /* first sight: the first run comes one interval (or cron slot) later */
    if (db_exec1(p->ctx->db, NULL,
                 "INSERT INTO plugin_jobs (plugin, job) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2,
                 prm) != GR_OK)
        return false;
    struct db_res *res = NULL;
    int rc = db_exec1(
        p->ctx->db, &res,
        "WITH c AS (UPDATE plugin_jobs j SET last_run = now(), node = $3, token = $4::bigint,"
        " busy_until = now() + interval '10 minutes', runs = j.runs + 1, last_error = NULL"
        " WHERE j.plugin = $1 AND j.job = $2"
        " AND (CASE WHEN $6::bigint IS NULL"
        "  THEN j.last_run <= now() - make_interval(secs => $5::double precision)"
        "  ELSE j.last_run < to_timestamp($6::bigint) END)"
        " AND (j.busy_until IS NULL OR j.busy_until < now() OR NOT EXISTS (SELECT 1 FROM"
        "  cluster_nodes n WHERE n.id = j.node AND n.lease_expiry > now()) OR j.node = $3)"
        " AND ($4::bigint = 0 OR EXISTS (SELECT 1 FROM cluster_leases l WHERE l.name ="
        "  'primary' AND l.holder = $3 AND l.token = $4::bigint AND l.expiry > now()))"
        " RETURNING j.plugin, j.job)"
        " INSERT INTO plugin_job_runs (plugin, job, node, token)"
        " SELECT plugin, job, $3, $4::bigint FROM c RETURNING id",
        6, prm);
    bool mine = rc == GR_OK && db_res_rows(res) == 1;
    if (mine)
        snprintf(run_id, 24, "%s", db_res_get(res, 0, 0));
    db_res_free(res);
    return mine;
}

static void plugins__finish(struct plugins *p, const struct plug_job_info *j, const char *run_id,
                            const char *err)
{
    const char *prm[5] = {j->plugin, j->name, p->node_id, run_id, err && *err ? err : NULL};
    if (db_exec1(p->ctx->db, NULL,
                 "WITH r AS (UPDATE plugin_job_runs SET finished = now(), error = $5"
                 " WHERE id = $4::bigint)"
                 " UPDATE plugin_jobs SET busy_until = NULL, last_error = $5"
                 " WHERE plugin = $1 AND job = $2 AND node = $3",
                 5, prm) != GR_OK)
        gr_warn("plugins: cannot record the end of job %s/%s", j->plugin, j->name);
}

static void plugins__run(struct plugins *p, const struct plug_job_info *j, const char *run_id)
{
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return;
    char user[160];
    snprintf(user, sizeof(user), "plugin:%s", j->plugin);
    struct plugins_call call = {a, user};
    char err[512] = "";
    int rc = plug_run_job(p->rt, j->plugin, j->name, &call, err, sizeof(err));
    if (rc)
        gr_error("plugins: job %s/%s failed: %s", j->plugin, j->name, err);
    else
        gr_debug("plugins: job %s/%s ran", j->plugin, j->name);
    if (run_id)
        plugins__finish(p, j, run_id, rc ? err : NULL);
    gr_arena_free(a);
}

static void plugins__tick(struct plugins *p)
{
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return;
    (void)plugins__sync(p, a);
    gr_arena_free(a);
    struct plug_job_info *v = NULL;
    int n = 0;
    if (plug_jobs(p->rt, &v, &n) != PLUG_OK)
        return;
    int64_t now = repo__now_ms();
    struct repo_hooks *hk = &p->ctx->hooks;
    uint64_t ptoken = hk->primary_token ? hk->primary_token(hk->arg) : 0;
    if (n > 0 && (ptoken || !hk->primary_token) && now - p->trimmed_ms > 3600 * 1000) {
        /* the run log keeps a week (the primary trims it hourly; no query
         * at all while no job is declared) */
        p->trimmed_ms = now;
        if (db_exec1(p->ctx->db, NULL,
                     "DELETE FROM plugin_job_runs WHERE started < now() - interval '7 days'", 0,
                     NULL) != GR_OK)
            gr_warn("plugins: cannot trim the job run log");
    }
    for (int i = 0; i < n; i++) {
        if (v[i].where == PLUG_WHERE_EVERY_NODE) {
            if (plugins__local_due(p, &v[i], now))
                plugins__run(p, &v[i], NULL);
            continue;
        }
        uint64_t token = 0;
        if (hk->primary_token) {
            token = hk->primary_token(hk->arg);
            if (!token)
                continue; /* not the primary */
        }
        char run_id[24];
        if (plugins__claim(p, &v[i], token, run_id))
            plugins__run(p, &v[i], run_id);
    }
    free(v);
}

static void *plugins__thread(void *arg)
{
    struct plugins *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)PLUGINS_TICK_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&p->wake, &p->lock, &ts);
        if (p->stopping)
            break;
        pthread_mutex_unlock(&p->lock);
        plugins__tick(p);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- lifecycle ---- */

int plugins_start(const struct plugins_options *o, struct repo_ctx *ctx, struct plugins **out)
{
    struct plugins *p = calloc(1, sizeof(*p));
    if (!p)
        return GR_ENOMEM;
    p->ctx = ctx;
    p->trimmed_ms = repo__now_ms();
    snprintf(p->node_id, sizeof(p->node_id), "%s", o->node_id ? o->node_id : "");
    snprintf(p->dir, sizeof(p->dir), "%s", o->dir ? o->dir : "");
    atomic_init(&p->synced, UINT64_MAX);
    pthread_mutex_init(&p->sync_lock, NULL);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    struct plug_host host = {
        .arg = p,
        .node_id = p->node_id,
        .log = plugins__log,
        .artifact_get = plugins__artifact_get,
        .repo_get = plugins__repo_get,
        .props_get = plugins__props_get,
        .props_set = plugins__props_set,
        .props_delete = plugins__props_delete,
        .search = plugins__search,
        .artifact_delete = plugins__artifact_delete,
    };
    struct plug_options po = {o->mem_limit, o->budget, o->job_budget};
    int rc = plug_runtime_new(&host, &po, &p->rt) == PLUG_OK ? GR_OK : GR_ENOMEM;
    if (rc)
        goto out_free;
    if (p->dir[0]) {
        struct db_conn *c;
        rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
        if (rc)
            goto out_rt;
        rc = db_begin(c);
        bool any = rc == GR_OK && plugins__install_dir(p, c);
        if (rc == GR_OK && any)
            rc = plugins__bump(c, NULL);
        rc = repo__finish(c, rc);
        if (rc)
            goto out_rt;
        if (any)
            plugins__announce(p);
    }
    struct gr_arena *a = gr_arena_new();
    rc = a ? plugins__sync(p, a) : GR_ENOMEM;
    gr_arena_free(a);
    if (rc)
        goto out_rt;
    if (pthread_create(&p->thread, NULL, plugins__thread, p) != 0) {
        rc = GR_ENOMEM;
        goto out_rt;
    }
    p->thread_started = true;
    ctx->plugins = p;
    *out = p;
    return GR_OK;
out_rt:
    plug_runtime_free(p->rt);
out_free:
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->sync_lock);
    free(p);
    return rc;
}

void plugins_stop(struct plugins *p)
{
    if (!p)
        return;
    if (p->thread_started) {
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    if (p->ctx->plugins == p)
        p->ctx->plugins = NULL;
    plug_runtime_free(p->rt);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->sync_lock);
    free(p);
}
