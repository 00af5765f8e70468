/*
 * audit.c - the audit log (table audit_log) and the failed-login throttle
 * (security.h). The throttle lives in this node's memory.
 */
#include "repo/internal.h"
#include "repo/security.h"

#include "base/err.h"
#include "base/log.h"
#include "crypto/crypto.h"
#include "db/db.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS(col) "(extract(epoch from " col ") * 1000)::bigint"

void sec_audit(struct repo_ctx *ctx, const char *user, const char *client, const char *action,
               const char *repo, const char *path, const char *detail)
{
    const char *p[7] = {
        user ? user : "",     client ? client : "", ctx->node_id ? ctx->node_id : "",
        action ? action : "", repo ? repo : "",     path ? path : "",
        detail ? detail : ""};
    int rc = db_exec1(ctx->db, NULL,
                      "INSERT INTO audit_log (user_name, client, node, action, repo, path, detail)"
                      " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                      7, p);
    if (rc)
        gr_error("audit: cannot record %s by %s on %s/%s: %s", p[3], p[0], p[4], p[5],
                 gr_strerror(rc));
}

int sec_audit_query(struct repo_ctx *ctx, struct gr_arena *a, const char *user, const char *action,
                    int64_t from_ms, int64_t to_ms, int limit, struct sec_audit_entry **out, int *n)
{
    char from[24], to[24], lim[16];
    snprintf(from, sizeof(from), "%lld", (long long)from_ms);
    snprintf(to, sizeof(to), "%lld", (long long)to_ms);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[5] = {user, action, from, to, lim};
    struct db_res *res = NULL;
    int rc = db_exec1(
        ctx->db, &res,
        "SELECT id, " MS("at") ", user_name, client, node, action, repo, path, detail"
                               " FROM audit_log WHERE ($1::text IS NULL OR user_name = $1)"
                               " AND ($2::text IS NULL OR action = $2)"
                               " AND at >= to_timestamp($3::bigint / 1000.0)"
                               " AND ($4::bigint = 0 OR at <= to_timestamp($4::bigint / 1000.0))"
                               " ORDER BY id DESC LIMIT $5::int",
        5, p);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    struct sec_audit_entry *v = gr_arena_calloc(a, sizeof(*v) * (size_t)(rows + 1));
    for (int i = 0; i < rows; i++) {
        v[i].id = strtoll(db_res_get(res, i, 0), NULL, 10);
        v[i].at_ms = strtoll(db_res_get(res, i, 1), NULL, 10);
        v[i].user = db_res_get(res, i, 2);
        v[i].client = db_res_get(res, i, 3);
        v[i].node = db_res_get(res, i, 4);
        v[i].action = db_res_get(res, i, 5);
        v[i].repo = db_res_get(res, i, 6);
        v[i].path = db_res_get(res, i, 7);
        v[i].detail = db_res_get(res, i, 8);
    }
    *out = v;
    *n = rows;
    return GR_OK;
}

/* ---- failed-login throttle ---- */

/*
 * A fixed table of slots keyed by a hash of "u:<user>" or "a:<address>";
 * a collision shares a slot (it can only make a throttle stricter). Slots
 * idle for longer than the longest wait are reused.
 */
#define THR_SLOTS 4096

struct thr_slot {
    uint64_t key;
    int failures;
    int64_t until_ms, last_ms;
};

static struct thr_slot thr__slots[THR_SLOTS];
static pthread_mutex_t thr__lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t thr__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t thr__hash(char kind, const char *s)
{
    uint64_t h = 1469598103934665603ull ^ (unsigned char)kind;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ? h : 1;
}

static struct thr_slot *thr__slot(uint64_t key, int64_t now)
{
    struct thr_slot *s = &thr__slots[key % THR_SLOTS];
    if (s->key != key && now - s->last_ms > SEC_THROTTLE_MAX_S * 2000) {
        memset(s, 0, sizeof(*s));
        s->key = key;
    }
    return s;
}

int sec_throttle_wait(const char *user, const char *client)
{
    int64_t now = thr__now_ms(), wait = 0;
    pthread_mutex_lock(&thr__lock);
    struct thr_slot *s[2] = {thr__slot(thr__hash('u', user), now),
                             thr__slot(thr__hash('a', client), now)};
    for (int i = 0; i < 2; i++)
        if (s[i]->until_ms > now && s[i]->until_ms - now > wait)
            wait = s[i]->until_ms - now;
    pthread_mutex_unlock(&thr__lock);
    return wait ? (int)((wait + 999) / 1000) : 0;
}

int sec_throttle_result(const char *user, const char *client, bool ok)
{
    int64_t now = thr__now_ms();
    int n = 0;
    pthread_mutex_lock(&thr__lock);
    struct thr_slot *s[2] = {thr__slot(thr__hash('u', user), now),
                             thr__slot(thr__hash('a', client), now)};
    for (int i = 0; i < 2; i++) {
        if (ok) {
            s[i]->failures = 0;
            s[i]->until_ms = 0;
            continue;
        }
        s[i]->failures++;
        s[i]->last_ms = now;
        int over = s[i]->failures - SEC_THROTTLE_FREE;
        if (over > 0) {
            int64_t d = over > 7 ? SEC_THROTTLE_MAX_S : (int64_t)1 << (over - 1);
            if (d > SEC_THROTTLE_MAX_S)
                d = SEC_THROTTLE_MAX_S;
            s[i]->until_ms = now + d * 1000;
        }
    }
    n = s[0]->failures;
    pthread_mutex_unlock(&thr__lock);
    return n;
}
