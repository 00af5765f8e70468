/*
 * stub_db.c - link-time stand-ins for the database layer, for fuzz targets
 * whose source file also holds storage code (repo/props.c). The parsers
 * under test never reach them; if one ever did, the fuzzer stops loudly.
 */
#include "db/db.h"
#include "repo/internal.h"

#include <stdio.h>
#include <stdlib.h>

#define STUB                                                                                       \
    do {                                                                                           \
        fprintf(stderr, "stub_db: %s called from a parser\n", __func__);                           \
        abort();                                                                                   \
    } while (0)

int db_acquire(struct db_pool *p, int timeout_ms, struct db_conn **out)
{
    (void)p, (void)timeout_ms, (void)out;
    STUB;
}
void db_release(struct db_conn *c)
{
    (void)c;
    STUB;
}
int db_exec(struct db_conn *c, struct db_res **out, const char *sql, int nparams,
            const char *const *params)
{
    (void)c, (void)out, (void)sql, (void)nparams, (void)params;
    STUB;
}
int db_begin(struct db_conn *c)
{
    (void)c;
    STUB;
}
int db_res_rows(const struct db_res *r)
{
    (void)r;
    STUB;
}
const char *db_res_get(const struct db_res *r, int row, int col)
{
    (void)r, (void)row, (void)col;
    STUB;
}
void db_res_free(struct db_res *r)
{
    (void)r;
    STUB;
}
void db_res_arena(struct db_res *r, struct gr_arena *a)
{
    (void)r, (void)a;
    STUB;
}
int repo__bump(struct db_conn *c)
{
    (void)c;
    STUB;
}
int repo__finish(struct db_conn *c, int rc)
{
    (void)c, (void)rc;
    STUB;
}

void db_text_array(struct gr_sbuf *sb, const char *const *v, int n)
{
    (void)sb, (void)v, (void)n;
    STUB;
}

void db_like_below(struct gr_sbuf *sb, const char *path)
{
    (void)sb, (void)path;
    STUB;
}
void repo__key_artifact(struct gr_sbuf *k, const char *repo, const char *path)
{
    (void)k, (void)repo, (void)path;
    STUB;
}
void repo__invalidate(struct repo_ctx *ctx, const struct gr_sbuf *keys, size_t n)
{
    (void)ctx, (void)keys, (void)n;
    STUB;
}
void repo__invalidate_prefix(struct repo_ctx *ctx, const struct gr_sbuf *prefix)
{
    (void)ctx, (void)prefix;
    STUB;
}
