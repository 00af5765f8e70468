/*
 * flight.c - fetching a remote repository's files once per cluster
 * (docs/remote.md, "Fetched once per cluster").
 *
 * A reader looks a path up (remote_lookup): its cached copy; else a fetch
 * of this node to follow; else what the upstream answered last (the
 * negative cache, remote_misses); else it takes the path's ticket in
 * PostgreSQL (remote_fetches) and starts a fetch (a "flight") on a fetch
 * thread, or, when another node holds the ticket, waits. A flight streams
 * the upstream's answer into the filestore through the ingest pipeline;
 * readers on this node read the file as it grows (all but the last
 * REMOTE_HOLD bytes until the whole body checked out), so the first client
 * gets bytes as they arrive. Then the file is replicated and committed as
 * an artifact of the remote repository, whose invalidation wakes the
 * waiters of every node; they serve the stored copy. The heartbeat thread
 * renews this node's tickets every second and wakes every waiter (the
 * poll that backs the bus up); a ticket whose heartbeat is REMOTE_STALE_MS
 * old is taken over, so a node that dies mid-fetch hands the fetch over.
 */
#include "remote/internal.h"

#include "base/err.h"
#include "base/log.h"
#include "base/pct.h"
#include "base/sbuf.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "repo/ingest.h"
#include "repo/pattern.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ---- references ---- */

static void flight__ref(struct remote_flight *f)
{
    atomic_fetch_add(&f->refs, 1);
}

struct remote_flight *remote_flight_ref(struct remote_flight *f)
{
    flight__ref(f);
    return f;
}

void remote_flight_put(struct remote_flight *f)
{
    if (!f || atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    if (f->rfd >= 0)
        close(f->rfd);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    gr_arena_free(f->a); /* an ingest not committed is aborted with it */
    free(f);
}

static void flight__req_release(void *arg)
{
    struct remote_req *rq = arg;
    for (int i = 0; i < rq->nseen; i++)
        remote_flight_put(rq->seen[i]);
    rq->nseen = 0;
}

struct remote_req *remote_req_new(struct gr_arena *a)
{
    struct remote_req *rq = gr_arena_calloc(a, sizeof(*rq));
    if (rq)
        gr_arena_cleanup(a, flight__req_release, rq);
    return rq;
}

/* Remember a flight this request waits on (a reference). */
static void flight__seen(struct remote_req *rq, struct remote_flight *f)
{
    for (int i = 0; i < rq->nseen; i++)
        if (rq->seen[i] == f)
            return;
    if (rq->nseen == (int)(sizeof(rq->seen) / sizeof(rq->seen[0])))
        return;
    flight__ref(f);
    rq->seen[rq->nseen++] = f;
}

/* ---- waiters ---- */

void remote__wake(struct remote *rm, const char *repo, const char *path)
{
    struct remote_waiter *woken = NULL, **pp;
    pthread_mutex_lock(&rm->mu);
    rm->events++;
    for (pp = &rm->waiters; *pp;) {
        struct remote_waiter *w = *pp;
        if (!repo || (!strcmp(w->repo, repo) && (!path || !strcmp(w->path, path)))) {
            *pp = w->next;
            w->next = woken;
            woken = w;
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&rm->mu);
    while (woken) {
        struct remote_waiter *w = woken;
        woken = w->next;
        w->fn(w->arg);
        free(w->repo);
        free(w->path);
        free(w);
    }
}

bool remote_wait(struct remote *rm, const struct remote_req *rq, void (*fn)(void *arg), void *arg)
{
    struct remote_waiter *w = calloc(1, sizeof(*w));
    if (w) {
        w->repo = strdup(rq->wait_repo ? rq->wait_repo : "");
        w->path = strdup(rq->wait_path ? rq->wait_path : "");
        w->fn = fn;
        w->arg = arg;
    }
    pthread_mutex_lock(&rm->mu);
    if (rm->quiescing || !w || !w->repo || !w->path) {
        pthread_mutex_unlock(&rm->mu);
        if (w) {
            free(w->repo);
            free(w->path);
            free(w);
        }
        return false;
    }
    bool now = rm->events != rq->events; /* something happened since the lookup began */
    if (!now) {
        w->next = rm->waiters;
        rm->waiters = w;
    }
    atomic_fetch_add(&rm->waited, 1);
    pthread_mutex_unlock(&rm->mu);
    if (now) {
        fn(arg);
        free(w->repo);
        free(w->path);
        free(w);
    }
    return true;
}

void remote_invalidated(void *arg, const struct cluster_key *keys, size_t n)
{
    struct remote *rm = arg;
    bool merged = n == 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = keys[i].key;
        size_t kl = keys[i].len;
        if (keys[i].prefix || (kl >= 2 && (!memcmp(k, "a:", 2) || !memcmp(k, "r:", 2))))
            merged = true;
        if (keys[i].prefix || kl < 3 || memcmp(k, "a:", 2))
            continue;
        const char *nul = memchr(k + 2, '\0', kl - 2);
        if (!nul)
            continue;
        char *repo = strndup(k + 2, (size_t)(nul - k - 2));
        char *path = strndup(nul + 1, kl - (size_t)(nul + 1 - k));
        if (repo && path)
            remote__wake(rm, repo, path);
        free(repo);
        free(path);
    }
    if (n == 0)
        remote__wake(rm, NULL, NULL);
    if (merged)
        remote__merged_clear(rm);
}

/* ---- tickets and the negative cache (PostgreSQL) ---- */

/* Take the ticket of repo/path: *got false when a live node holds it. GR_ENOTFOUND (the
 * repository is gone), GR_EDB. */
static int flight__ticket_take(struct remote *rm, const char *repo, const char *path, int64_t token,
                               bool *got, bool *takeover)
{
    char tok[24], stale[24];
    snprintf(tok, sizeof(tok), "%lld", (long long)token);
    snprintf(stale, sizeof(stale), "%.3f", REMOTE_STALE_MS / 1000.0);
    const char *p[5] = {repo, path, rm->node, tok, stale};
    struct db_res *res = NULL;
    int rc = db_exec1(rm->ctx->db, &res,
                      "INSERT INTO remote_fetches (repo, path, node, token) VALUES ($1, $2, $3, $4)"
                      " ON CONFLICT (repo, path) DO UPDATE SET node = EXCLUDED.node,"
                      " token = EXCLUDED.token, started = now(), heartbeat = now()"
                      " WHERE remote_fetches.heartbeat < now() - make_interval(secs => $5::float8)"
                      " RETURNING (xmax <> 0)::text",
                      5, p);
    *got = rc == GR_OK && db_res_rows(res) == 1;
    *takeover = *got && !strcmp(db_res_get(res, 0, 0), "true");
    db_res_free(res);
    return rc;
}

static void flight__ticket_release(struct remote *rm, const char *repo, const char *path,
                                   int64_t token)
{
    char tok[24];
    snprintf(tok, sizeof(tok), "%lld", (long long)token);
    const char *p[3] = {repo, path, tok};
    if (db_exec1(rm->ctx->db, NULL,
                 "DELETE FROM remote_fetches WHERE repo = $1 AND path = $2 AND token = $3", 3,
                 p) != GR_OK)
        gr_warn("remote %s/%s: cannot release the fetch ticket (taken over in %d ms)", repo, path,
                REMOTE_STALE_MS);
}

/* What the upstream answered last for path (or for the whole upstream): *found. GR_EDB. */
static int flight__miss_get(struct remote *rm, struct gr_arena *a, const char *repo,
                            const char *path, bool *found, int *status, const char **reason)
{
    const char *p[2] = {repo, path};
    struct db_res *res = NULL;
    int rc =
        db_exec1(rm->ctx->db, &res,
                 "SELECT status, reason FROM remote_misses WHERE repo = $1 AND path IN ($2, '')"
                 " AND until > now() ORDER BY path DESC LIMIT 1",
                 2, p);
    *found = rc == GR_OK && db_res_rows(res) == 1;
    if (*found) {
        *status = atoi(db_res_get(res, 0, 0));
        *reason = gr_arena_strdup(a, db_res_get(res, 0, 1));
    }
    db_res_free(res);
    return rc;
}

static void flight__miss_put(struct remote *rm, const char *repo, const char *path, int status,
                             const char *reason, int64_t seconds)
{
    if (seconds <= 0)
        return;
    char st[16], secs[24];
    snprintf(st, sizeof(st), "%d", status);
    snprintf(secs, sizeof(secs), "%lld", (long long)seconds);
    const char *p[5] = {repo, path, st, reason, secs};
    if (db_exec1(rm->ctx->db, NULL,
                 "INSERT INTO remote_misses (repo, path, status, reason, until)"
                 " VALUES ($1, $2, $3::int, $4, now() + make_interval(secs => $5::float8))"
                 " ON CONFLICT (repo, path) DO UPDATE SET status = EXCLUDED.status,"
                 " reason = EXCLUDED.reason, until = EXCLUDED.until",
                 5, p) != GR_OK)
        gr_warn("remote %s/%s: cannot record the upstream's answer", repo, path);
}

static void flight__miss_clear(struct remote *rm, const char *repo, const char *path)
{
    const char *p[2] = {repo, path};
    if (db_exec1(rm->ctx->db, NULL,
                 "DELETE FROM remote_misses WHERE repo = $1 AND path IN ($2, '')", 2, p) != GR_OK)
        gr_warn("remote %s/%s: cannot clear the negative cache", repo, path);
}

/* ---- a fetch, on a fetch thread ---- */

/* End a flight as failed with status and reason; wakes readers. */
static void flight__fail(struct remote_flight *f, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void flight__fail(struct remote_flight *f, int status, const char *fmt, ...)
{
    pthread_mutex_lock(&f->mu);
    if (f->state != REMOTE_FL_FAILED) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
        va_end(ap);
        f->status = status;
        f->state = REMOTE_FL_FAILED;
        f->headers = true;
    }
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* The checks of an upstream's answer before its body; non-zero: no body wanted. */
struct flight__body {
    struct remote_flight *f;
    struct cr_digest *sha512;
};

static int flight__on_headers(void *arg, const struct remote_answer *ans)
{
    struct remote_flight *f = ((struct flight__body *)arg)->f;
    if (ans->status != 200)
        return 1;
    const char *ext = strrchr(f->path, '.');
    bool html_path = ext && (!strcasecmp(ext, ".html") || !strcasecmp(ext, ".htm") ||
                             !strcasecmp(ext, ".xhtml"));
    if (f->s.block_mime && !html_path &&
        (!strncasecmp(ans->ctype, "text/html", 9) ||
         !strncasecmp(ans->ctype, "application/xhtml", 17)))
        return 1; /* flight__run tells why */
    pthread_mutex_lock(&f->mu);
    f->length = ans->length;
    snprintf(f->ctype, sizeof(f->ctype), "%s", ans->ctype);
    f->headers = true;
    f->state = REMOTE_FL_BODY;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    remote__wake(f->rm, f->repo, f->path);
    return 0;
}

static int flight__on_data(void *arg, const void *data, size_t len)
{
    struct flight__body *b = arg;
    struct remote_flight *f = b->f;
    int rc = ingest_write(f->in, data, len);
    if (rc) {
        gr_error("remote %s/%s: cannot store the fetched bytes: %s", f->repo, f->path,
                 gr_strerror(rc));
        return 1;
    }
    if (b->sha512)
        cr_digest_update(b->sha512, data, len);
    pthread_mutex_lock(&f->mu);
    f->written += len;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    atomic_fetch_add(&f->rm->fetch_bytes, len);
    return 0;
}

/* Compare what the upstream publishes with the content; NULL when it agrees (or is not asked). */
static const char *flight__verify(struct remote_flight *f, const struct remote_sums *want,
                                  const struct artifact *got, const char *sha512)
{
    if (f->s.policy == REMOTE_SUMS_IGNORE)
        return NULL;
    const struct {
        const char *name, *want, *got;
    } v[] = {{"sha256", want->sha256, got->sha256},
             {"sha1", want->sha1, got->sha1},
             {"md5", want->md5, got->md5},
             {"sha512", want->sha512, sha512}};
    bool any = false;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        if (!*v[i].want || !v[i].got)
            continue;
        any = true;
        if (strcmp(v[i].want, v[i].got))
            return gr_arena_printf(f->a,
                                   "checksum mismatch: the upstream publishes %s %s, the content"
                                   " it sent has %s",
                                   v[i].name, v[i].want, v[i].got);
    }
    if (!any && f->s.policy == REMOTE_SUMS_REQUIRED && f->spec.kind == REMOTE_FILE)
        return "the upstream publishes no checksum for this file"
               " (remoteRepoChecksumPolicyType is fail)";
    return NULL;
}

static void flight__merge_sums(struct remote_sums *dst, const struct remote_sums *src)
{
    if (!*dst->sha256)
        memcpy(dst->sha256, src->sha256, sizeof(dst->sha256));
    if (!*dst->sha1)
        memcpy(dst->sha1, src->sha1, sizeof(dst->sha1));
    if (!*dst->md5)
        memcpy(dst->md5, src->md5, sizeof(dst->md5));
    if (!*dst->sha512)
        memcpy(dst->sha512, src->sha512, sizeof(dst->sha512));
}

/* The upstream failed to answer or cut the body: how readers are answered, what is kept. */
static void flight__transport_failed(struct remote_flight *f, const struct remote_answer *ans)
{
    struct remote *rm = f->rm;
    int status = ans->timed_out ? 504 : 502;
    if (ans->unreachable || (ans->timed_out && !f->headers)) {
        /* the upstream as a whole: assumed offline for assumedOfflinePeriodSecs */
        flight__fail(f, status, "upstream %s unreachable: %s", f->s.url, ans->error);
        flight__miss_put(
            rm, f->repo, "", status,
            gr_arena_printf(f->a, "upstream %s assumed offline after: %s", f->s.url, ans->error),
            f->s.offline_s > 0 ? f->s.offline_s : REMOTE_FAIL_KEEP_S);
        return;
    }
    uint64_t written;
    pthread_mutex_lock(&f->mu);
    written = f->written;
    pthread_mutex_unlock(&f->mu);
    flight__fail(f, status, "the upstream cut the transfer after %llu bytes: %s",
                 (unsigned long long)written, ans->error);
    flight__miss_put(rm, f->repo, f->path, status, f->reason, REMOTE_FAIL_KEEP_S);
}

/* Fetch, verify, store: the body of a flight (a fetch thread). */
static void flight__run(struct remote_flight *f)
{
    struct remote *rm = f->rm;
    struct remote_upstream up = {
        f->s.url, f->s.username, f->password, (long)f->s.timeout_ms, f->spec.accept, rm};
    struct remote_sums want = {0};
    atomic_fetch_add(&rm->fetches, 1);
    if (f->spec.sums && f->s.policy != REMOTE_SUMS_IGNORE)
        f->spec.sums(&up, rm->ctx, f->a, f->repo, f->path, &want);
    int rc = ingest_begin(rm->ctx, f->a, &f->in);
    if (rc == GR_OK) {
        f->rfd = open(ingest_path(f->in), O_RDONLY | O_CLOEXEC);
        if (f->rfd < 0)
            rc = GR_EIO;
    }
    if (rc) {
        flight__fail(f, 503, "cannot store a fetched file here: %s", gr_strerror(rc));
        return;
    }
    struct flight__body body = {f, *want.sha512 ? cr_digest_new(CR_SHA512) : NULL};
    struct remote_answer ans;
    rc = remote__fetch(&up, f->spec.upath, flight__on_headers, flight__on_data, &body, &ans);
    char sha512[CR_SHA512_HEX] = "";
    if (body.sha512) {
        unsigned char raw[64];
        size_t n = cr_digest_final(body.sha512, raw);
        for (size_t i = 0; i < n; i++)
            snprintf(sha512 + 2 * i, 3, "%02x", raw[i]);
        cr_digest_free(body.sha512);
    }
    if (rc && !ans.stopped) {
        flight__transport_failed(f, &ans);
        return;
    }
    if (ans.status == 0 || atomic_load(&rm->stop)) {
        flight__fail(f, 503, "the node is stopping");
        return;
    }
    if (ans.status == 404 || ans.status == 410 ||
        (ans.status >= 400 && ans.status < 500 && ans.status != 401 && ans.status != 403 &&
         ans.status != 429)) {
        flight__fail(f, 404, "not found upstream: %s/%s answered %d", f->s.url, f->spec.upath,
                     ans.status);
        flight__miss_put(rm, f->repo, f->path, 404, f->reason, f->s.miss_s);
        return;
    }
    if (ans.status != 200) {
        flight__fail(f, 502, "the upstream %s answered %d%s", f->s.url, ans.status,
                     ans.status == 401 || ans.status == 403 ? " (check username and password)"
                                                            : "");
        flight__miss_put(rm, f->repo, f->path, 502, f->reason, REMOTE_FAIL_KEEP_S);
        return;
    }
    if (!f->headers) { /* the mime check refused the body */
        flight__fail(f, 502,
                     "the upstream answered %s for a file that is not HTML"
                     " (blockMismatchingMimeTypes)",
                     ans.ctype);
        flight__miss_put(rm, f->repo, f->path, 502, f->reason, f->s.miss_s);
        return;
    }
    if (ans.stopped) {
        flight__fail(f, 503, "cannot store a fetched file here");
        return;
    }
    struct artifact art = {0};
    ingest_finish(f->in, &art);
    flight__merge_sums(&want, &ans.sums);
    const char *bad = flight__verify(f, &want, &art, *sha512 ? sha512 : NULL);
    if (bad) {
        flight__fail(f, 502, "%s", bad);
        gr_warn("remote %s/%s: %s; nothing cached", f->repo, f->path, bad);
        flight__miss_put(rm, f->repo, f->path, 502, f->reason,
                         f->s.miss_s > 0 ? f->s.miss_s : REMOTE_FAIL_KEEP_S);
        return;
    }
    if (f->commit) {
        /* stored before the readers get the last bytes: a client that asks for
         * the file's .sha1 next finds it cached */
        char rid[32];
        snprintf(rid, sizeof(rid), "fetch-%s", f->repo);
        rc = ingest_replicate(f->in, rid, &art);
        if (rc == GR_OK) {
            art.repo = f->repo;
            art.path = f->path;
            art.modified_by = f->spec.user && *f->spec.user ? f->spec.user : "_remote";
            rc = artifact_put(rm->ctx, f->a, &art);
        }
        if (rc)
            gr_warn("remote %s/%s: fetched and verified, but not cached: %s", f->repo, f->path,
                    gr_strerror(rc));
        else
            flight__miss_clear(rm, f->repo, f->path);
    }
    pthread_mutex_lock(&f->mu);
    f->state = REMOTE_FL_VERIFIED; /* readers may have the last bytes now */
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    remote__wake(rm, f->repo, f->path);
}

/* Take a flight out of this node's list, give its ticket back, wake everyone waiting on it. */
static void flight__end(struct remote_flight *f)
{
    struct remote *rm = f->rm;
    pthread_mutex_lock(&rm->mu);
    for (struct remote_flight **pp = &rm->flights; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    pthread_mutex_unlock(&rm->mu);
    pthread_mutex_lock(&f->mu);
    f->ended = true;
    bool failed = f->state == REMOTE_FL_FAILED;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (failed)
        atomic_fetch_add(&rm->fetch_failures, 1);
    if (f->token)
        flight__ticket_release(rm, f->repo, f->path, f->token);
    if (failed && f->token) /* nothing was stored: wake the other nodes' waiters */
        artifact_forget(rm->ctx, f->repo, f->path);
    remote__wake(rm, f->repo, f->path);
    remote_flight_put(f); /* the list's reference */
}

static void *flight__thread(void *arg)
{
    struct remote *rm = arg;
    pthread_mutex_lock(&rm->mu);
    for (;;) {
        while (!rm->qhead && !rm->stopping)
            pthread_cond_wait(&rm->cv, &rm->mu);
        if (rm->stopping && !rm->qhead)
            break;
        struct remote_flight *f = rm->qhead;
        rm->qhead = f->qnext;
        if (!rm->qhead)
            rm->qtail = NULL;
        pthread_mutex_unlock(&rm->mu);
        if (atomic_load(&rm->stop))
            flight__fail(f, 503, "the node is stopping");
        else
            flight__run(f);
        flight__end(f);
        remote_flight_put(f); /* the job's reference */
        pthread_mutex_lock(&rm->mu);
    }
    pthread_mutex_unlock(&rm->mu);
    return NULL;
}

/* A new flight for repo/path of cfg, in this node's list and queued (3 references: the list,
 * the job, the caller). NULL: out of memory. */
static struct remote_flight *flight__new(struct remote *rm, const struct repo_config *cfg,
                                         const char *path, const struct remote_spec *spec,
                                         int64_t token)
{
    struct remote_flight *f = calloc(1, sizeof(*f));
    struct gr_arena *a = f ? gr_arena_new() : NULL;
    if (!a) {
        free(f);
        return NULL;
    }
    f->rm = rm;
    f->a = a;
    atomic_init(&f->refs, 3);
    f->rfd = -1;
    f->repo = gr_arena_strdup(a, cfg->key);
    f->path = gr_arena_strdup(a, path);
    remote_settings_read(a, cfg, &f->s);
    f->password = remote_password(rm, a, &f->s);
    f->spec = *spec;
    f->spec.upath = gr_arena_strdup(a, spec->upath);
    f->spec.accept = spec->accept ? gr_arena_strdup(a, spec->accept) : NULL;
    f->spec.user = gr_arena_strdup(a, spec->user ? spec->user : "");
    f->commit = f->s.store_locally;
    f->token = token;
    f->length = UINT64_MAX;
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&rm->mu);
    f->next = rm->flights;
    rm->flights = f;
    if (rm->qtail)
        rm->qtail->qnext = f;
    else
        rm->qhead = f;
    rm->qtail = f;
    pthread_cond_signal(&rm->cv);
    pthread_mutex_unlock(&rm->mu);
    return f;
}

/* ---- looking up ---- */

/* The result of a flight this request already followed or waited on (it may have ended). */
static bool flight__outcome(struct remote_flight *f, const struct remote_spec *spec, bool stale,
                            struct remote_result *out, bool *wait)
{
    pthread_mutex_lock(&f->mu);
    enum remote_flight_state st = f->state;
    bool headers = f->headers;
    /* a body held back whole anyway: answer once it checked out (a failure is then a 502,
     * not a cut connection) */
    bool small = f->length != UINT64_MAX && f->length <= REMOTE_HOLD;
    pthread_mutex_unlock(&f->mu);
    *wait = false;
    if (st == REMOTE_FL_FAILED) {
        if (stale && f->status != 404) {
            out->res = REMOTE_STALE;
            out->reason = f->reason;
        } else {
            out->res = f->status == 404 ? REMOTE_MISS : REMOTE_FAIL;
            out->status = f->status;
            out->reason = f->reason;
        }
        return true;
    }
    if (!headers || ((spec->complete || small) && st != REMOTE_FL_VERIFIED)) {
        *wait = true;
        return true;
    }
    flight__ref(f);
    out->res = REMOTE_FLIGHT;
    out->flight = f;
    return true;
}

static int64_t flight__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A remembered answer of the upstream: out filled. */
static void flight__answer_miss(struct remote_result *out, bool stale, int status,
                                const char *reason)
{
    if (stale && status != 404) {
        out->res = REMOTE_STALE;
        out->reason = reason;
        return;
    }
    out->res = status == 404 ? REMOTE_MISS : REMOTE_FAIL;
    out->status = status;
    out->reason = reason;
}

int remote_lookup(struct remote *rm, struct gr_arena *a, struct remote_req *rq,
                  const struct repo_config *cfg, const char *path, const struct remote_spec *spec,
                  struct remote_result *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&rm->mu);
    rq->events = rm->events;
    pthread_mutex_unlock(&rm->mu);
    rq->wait_repo = cfg->key;
    rq->wait_path = path;
    if (!pattern_accepts(cfg->includes_pattern, cfg->excludes_pattern, path)) {
        out->res = REMOTE_MISS;
        out->status = 404;
        out->reason = "excluded by the repository's includesPattern/excludesPattern";
        return GR_OK;
    }
    struct remote_settings s;
    remote_settings_read(a, cfg, &s);
    /* 1. the cached copy */
    bool stale = false;
    int rc = artifact_get(rm->ctx, a, cfg->key, path, &out->art);
    if (rc == GR_OK) {
        if (spec->kind == REMOTE_FILE || flight__now_ms() - out->art.updated_ms < s.ttl_s * 1000) {
            out->res = REMOTE_HIT;
            return GR_OK;
        }
        stale = true;
    } else if (rc != GR_ENOTFOUND) {
        return rc;
    }
    /* 2. a fetch this request followed already */
    bool wait;
    for (int i = 0; i < rq->nseen; i++) {
        struct remote_flight *f = rq->seen[i];
        if (strcmp(f->repo, cfg->key) || strcmp(f->path, path))
            continue;
        flight__outcome(f, spec, stale, out, &wait);
        if (!wait)
            return GR_OK;
        out->res = REMOTE_WAIT;
        return GR_OK;
    }
    /* 3. a fetch of this node */
    pthread_mutex_lock(&rm->mu);
    struct remote_flight *mine = NULL;
    for (struct remote_flight *f = rm->flights; f && !mine; f = f->next)
        if (!strcmp(f->repo, cfg->key) && !strcmp(f->path, path))
            mine = f;
    if (mine)
        flight__ref(mine);
    pthread_mutex_unlock(&rm->mu);
    if (mine) {
        atomic_fetch_add(&rm->joined, 1);
        flight__seen(rq, mine);
        flight__outcome(mine, spec, stale, out, &wait);
        remote_flight_put(mine);
        if (wait)
            out->res = REMOTE_WAIT;
        return GR_OK;
    }
    /* 4. offline: what is cached only */
    if (s.offline) {
        if (stale) { /* expired metadata: served as it is (a 404 here would hide it) */
            out->res = REMOTE_STALE;
            out->reason = "the remote repository is offline";
            return GR_OK;
        }
        flight__answer_miss(out, false, 404,
                            gr_arena_printf(a,
                                            "remote repository '%s' is offline and has no"
                                            " cached copy of %s",
                                            cfg->key, path));
        return GR_OK;
    }
    /* 5. what the upstream answered last */
    bool found;
    int status;
    const char *reason;
    rc = flight__miss_get(rm, a, cfg->key, path, &found, &status, &reason);
    if (rc)
        return rc;
    if (found) {
        flight__answer_miss(out, stale, status, reason);
        return GR_OK;
    }
    /* 6. fetch: once per cluster (a ticket), or every time when nothing is stored */
    int64_t token = 0;
    if (s.store_locally) {
        bool got, takeover;
        if (cr_random(&token, sizeof(token)) != GR_OK)
            return GR_EIO;
        token &= INT64_MAX;
        token |= 1;
        rc = flight__ticket_take(rm, cfg->key, path, token, &got, &takeover);
        if (rc)
            return rc == GR_EDB ? GR_EDB : rc;
        if (!got) {
            out->res = REMOTE_WAIT; /* another node fetches it */
            return GR_OK;
        }
        if (takeover) {
            atomic_fetch_add(&rm->takeovers, 1);
            gr_warn("remote %s/%s: took over the fetch of a node that stopped heart-beating",
                    cfg->key, path);
        }
        /* it may have been stored, or refused, just before the ticket came free */
        rc = artifact_get(rm->ctx, a, cfg->key, path, &out->art);
        bool fresh = rc == GR_OK && (spec->kind == REMOTE_FILE ||
                                     flight__now_ms() - out->art.updated_ms < s.ttl_s * 1000);
        if (rc == GR_OK || rc == GR_ENOTFOUND)
            rc = fresh ? GR_OK : flight__miss_get(rm, a, cfg->key, path, &found, &status, &reason);
        if (rc || fresh || found) {
            flight__ticket_release(rm, cfg->key, path, token);
            if (rc)
                return rc;
            if (fresh)
                out->res = REMOTE_HIT;
            else
                flight__answer_miss(out, stale, status, reason);
            return GR_OK;
        }
    }
    struct remote_flight *f = flight__new(rm, cfg, path, spec, token);
    if (!f) {
        if (token)
            flight__ticket_release(rm, cfg->key, path, token);
        return GR_ENOMEM;
    }
    flight__seen(rq, f);
    remote_flight_put(f); /* the caller's reference: rq holds one */
    out->res = REMOTE_WAIT;
    return GR_OK;
}

void remote_flight_info(struct remote_flight *f, uint64_t *length, const char **content_type)
{
    pthread_mutex_lock(&f->mu);
    *length = f->length;
    *content_type = f->ctype;
    pthread_mutex_unlock(&f->mu);
}

long remote_flight_read(struct remote_flight *f, uint64_t off, void *buf, size_t max)
{
    pthread_mutex_lock(&f->mu);
    for (;;) {
        if (f->state == REMOTE_FL_FAILED || atomic_load(&f->rm->stop)) {
            pthread_mutex_unlock(&f->mu);
            return -1;
        }
        uint64_t limit = f->state == REMOTE_FL_VERIFIED ? f->written
                         : f->written > REMOTE_HOLD     ? f->written - REMOTE_HOLD
                                                        : 0;
        if (off < limit) {
            size_t n = limit - off < max ? (size_t)(limit - off) : max;
            pthread_mutex_unlock(&f->mu);
            ssize_t got;
            do
                got = pread(f->rfd, buf, n, (off_t)off);
            while (got < 0 && errno == EINTR);
            return got > 0 ? (long)got : -1;
        }
        if (f->state == REMOTE_FL_VERIFIED) {
            pthread_mutex_unlock(&f->mu);
            return 0;
        }
        if (f->ended) { /* ended without verifying: it failed */
            pthread_mutex_unlock(&f->mu);
            return -1;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&f->cv, &f->mu, &until);
    }
}

/* ---- the heartbeat thread ---- */

static void *flight__beat(void *arg)
{
    struct remote *rm = arg;
    struct timespec until;
    pthread_mutex_lock(&rm->mu);
    while (!rm->stopping) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (REMOTE_HEARTBEAT_MS % 1000) * 1000000L;
        until.tv_sec += REMOTE_HEARTBEAT_MS / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&rm->beat_cv, &rm->mu, &until);
        if (rm->stopping)
            break;
        bool tickets = false;
        for (struct remote_flight *f = rm->flights; f && !tickets; f = f->next)
            tickets = f->token != 0;
        pthread_mutex_unlock(&rm->mu);
        const char *p[1] = {rm->node};
        if (tickets &&
            db_exec1(rm->ctx->db, NULL,
                     "UPDATE remote_fetches SET heartbeat = now() WHERE node = $1", 1, p) != GR_OK)
            gr_warn("remote: cannot renew this node's fetch tickets");
        remote__wake(rm, NULL, NULL); /* the poll behind the bus */
        pthread_mutex_lock(&rm->mu);
    }
    pthread_mutex_unlock(&rm->mu);
    return NULL;
}

/* ---- start and stop ---- */

/* The key upstream passwords are sealed under: from the join key, or (a single
 * node) a random one kept in the settings table. */
static int flight__seal_key(struct remote *rm, const void *key, size_t key_len)
{
    static const char label[] = "granary remote repository passwords v1";
    if (key && key_len) {
        cr_hmac_sha256(key, key_len, label, sizeof(label) - 1, rm->seal_key);
        return GR_OK;
    }
    unsigned char raw[32];
    char hex[65];
    if (cr_random(raw, sizeof(raw)) != GR_OK)
        return GR_EIO;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    const char *p[1] = {hex};
    struct db_res *res = NULL;
    int rc = db_exec1(rm->ctx->db, NULL,
                      "INSERT INTO settings (key, value) VALUES ('remote.seal_key', $1)"
                      " ON CONFLICT (key) DO NOTHING",
                      1, p);
    if (rc == GR_OK)
        rc = db_exec1(rm->ctx->db, &res, "SELECT value FROM settings WHERE key = 'remote.seal_key'",
                      0, NULL);
    if (rc == GR_OK && (db_res_rows(res) != 1 || strlen(db_res_get(res, 0, 0)) != 64))
        rc = GR_EDB;
    for (int i = 0; rc == GR_OK && i < 32; i++) {
        const char *h = db_res_get(res, 0, 0) + 2 * i;
        rm->seal_key[i] = (unsigned char)(gr_hex_digit(h[0]) * 16 + gr_hex_digit(h[1]));
    }
    db_res_free(res);
    return rc;
}

int remote_start(const struct remote_options *o, struct remote **out)
{
    struct remote *rm = calloc(1, sizeof(*rm));
    if (!rm)
        return GR_ENOMEM;
    rm->ctx = o->ctx;
    snprintf(rm->node, sizeof(rm->node), "%s", o->node_id && *o->node_id ? o->node_id : "single");
    pthread_mutex_init(&rm->mu, NULL);
    pthread_mutex_init(&rm->merged_mu, NULL);
    pthread_cond_init(&rm->cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rm->beat_cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = flight__seal_key(rm, o->key, o->key_len);
    const char *p[1] = {rm->node};
    if (rc == GR_OK) /* what a previous run of this node was fetching is not fetched any more */
        rc = db_exec1(rm->ctx->db, NULL, "DELETE FROM remote_fetches WHERE node = $1", 1, p);
    int n = o->threads > 0 ? o->threads : REMOTE_THREADS;
    rm->threads = rc == GR_OK ? calloc((size_t)n, sizeof(pthread_t)) : NULL;
    if (rc == GR_OK && !rm->threads)
        rc = GR_ENOMEM;
    for (int i = 0; rc == GR_OK && i < n; i++) {
        if (pthread_create(&rm->threads[i], NULL, flight__thread, rm))
            rc = GR_ENOMEM;
        else
            rm->nthreads++;
    }
    if (rc == GR_OK) {
        if (pthread_create(&rm->beat, NULL, flight__beat, rm))
            rc = GR_ENOMEM;
        else
            rm->beat_started = true;
    }
    if (rc) {
        remote_stop(rm);
        return rc;
    }
    *out = rm;
    return GR_OK;
}

void remote_quiesce(struct remote *rm)
{
    if (!rm)
        return;
    pthread_mutex_lock(&rm->mu);
    rm->quiescing = true;
    pthread_mutex_unlock(&rm->mu);
    remote__wake(rm, NULL, NULL);
}

void remote_stop(struct remote *rm)
{
    if (!rm)
        return;
    remote_quiesce(rm);
    pthread_mutex_lock(&rm->mu);
    rm->stopping = true;
    atomic_store(&rm->stop, true);
    pthread_cond_broadcast(&rm->cv);
    pthread_cond_broadcast(&rm->beat_cv);
    pthread_mutex_unlock(&rm->mu);
    for (int i = 0; i < rm->nthreads; i++)
        pthread_join(rm->threads[i], NULL);
    if (rm->beat_started)
        pthread_join(rm->beat, NULL);
    /* flights still queued never ran: end them (their readers are gone with the port) */
    while (rm->qhead) {
        struct remote_flight *f = rm->qhead;
        rm->qhead = f->qnext;
        flight__fail(f, 503, "the node is stopping");
        flight__end(f);
        remote_flight_put(f);
    }
    remote__merged_clear(rm);
    free(rm->threads);
    pthread_cond_destroy(&rm->cv);
    pthread_cond_destroy(&rm->beat_cv);
    pthread_mutex_destroy(&rm->mu);
    pthread_mutex_destroy(&rm->merged_mu);
    free(rm);
}

void remote_metrics(struct remote *rm, struct gr_sbuf *sb)
{
    if (!rm)
        return;
    static const char *const names[] = {
        "granary_remote_fetches_total",     "granary_remote_fetch_failures_total",
        "granary_remote_fetch_bytes_total", "granary_remote_joined_total",
        "granary_remote_waits_total",       "granary_remote_takeovers_total",
        "granary_remote_merged_hits_total",
    };
    uint64_t v[] = {atomic_load(&rm->fetches),     atomic_load(&rm->fetch_failures),
                    atomic_load(&rm->fetch_bytes), atomic_load(&rm->joined),
                    atomic_load(&rm->waited),      atomic_load(&rm->takeovers),
                    atomic_load(&rm->merged_hits)};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        gr_sbuf_addf(sb, "# TYPE %s counter\n%s %llu\n", names[i], names[i],
                     (unsigned long long)v[i]);
}
