/*
 * scrub.c - every node re-hashes its copies slowly and heals or reports
 * what fails (docs/blobs.md "Scrub").
 */
#include "storage/internal.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "bs.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- scrub ---- */

struct storage__scrub {
    struct storage *b;
    struct storage_scrub_report *rep;
    int64_t budget; /* bytes left in this slice; < 0: unlimited */
    char last[65];
};

/* Pull a good copy after this node's was quarantined. */
static bool storage__heal(struct storage *b, const char *sha256)
{
    struct storage__node nodes[STORAGE_MAX_NODES];
    int n = storage__snapshot(b, nodes);
    const char *p[1] = {sha256};
    struct db_res *res = NULL;
    if (db_exec1(b->db, &res, "SELECT node FROM binary_locations WHERE sha256 = $1", 1, p) !=
        GR_OK) {
        db_res_free(res);
        return false;
    }
    struct gr_sbuf src = GR_SBUF_INIT;
    for (int i = 0; i < db_res_rows(res); i++)
        for (int k = 0; k < n; k++)
            if (!strcmp(nodes[k].id, db_res_get(res, i, 0)) && strcmp(nodes[k].id, b->node) &&
                nodes[k].url[0]) {
                gr_sbuf_adds(&src, src.len ? "," : "");
                gr_sbuf_adds(&src, nodes[k].url);
            }
    db_res_free(res);
    bool ok = src.len && storage_pull(b, sha256, src.buf, "scrub") == GR_OK;
    gr_sbuf_release(&src);
    return ok;
}

static int storage__scrub_one(void *arg, const char *sha256, uint64_t size)
{
    struct storage__scrub *s = arg;
    struct storage *b = s->b;
    if (s->budget >= 0 && s->budget <= 0)
        return 1; /* this slice is spent */
    snprintf(s->last, sizeof(s->last), "%s", sha256);
    int fd;
    uint64_t sz;
    if (bs_open_blob(b->bs, sha256, &fd, &sz) != BS_OK)
        return 0; /* deleted meanwhile */
    char hex[65];
    int hrc = cr_sha256_fd_hex(fd, 0, UINT64_MAX, hex);
    close(fd);
    if (hrc)
        return 0; /* out of memory or an I/O error: try again next pass */
    s->rep->files++;
    s->rep->bytes += (int64_t)size;
    if (s->budget > 0)
        s->budget = s->budget > (int64_t)size + 1 ? s->budget - (int64_t)size - 1 : 0;
    atomic_fetch_add(&b->scrubbed_files, 1);
    atomic_fetch_add(&b->scrubbed_bytes, size);
    if (strcmp(hex, sha256)) {
        s->rep->bad++;
        atomic_fetch_add(&b->scrub_bad, 1);
        storage_bad_local_copy(b, sha256, "scrub: sha256 mismatch");
        if (storage__heal(b, sha256)) {
            s->rep->healed++;
            gr_info("scrub: %s healed from a peer", sha256);
        }
        return 0;
    }
    int vrc = bs_verify_blocks(b->bs, sha256);
    if (vrc == BS_ECORRUPT || vrc == BS_ENOCRC) {
        /* the content is good: only its block checksums were wrong */
        gr_warn("scrub: %s had bad block checksums; rebuilt", sha256);
        if (bs_crc_rebuild(b->bs, sha256) != BS_OK)
            gr_warn("scrub: cannot rebuild the block checksums of %s", sha256);
    }
    return 0;
}

/* Locations of this node whose file is gone: forget them (repair restores). */
static int64_t storage__forget_missing(struct storage *b)
{
    const char *p[1] = {b->node};
    struct db_res *res = NULL;
    int64_t missing = 0;
    if (db_exec1(b->db, &res, "SELECT sha256 FROM binary_locations WHERE node = $1", 1, p) == GR_OK)
        for (int i = 0; i < db_res_rows(res); i++)
            if (!bs_has(b->bs, db_res_get(res, i, 0))) {
                gr_warn("scrub: copy of %s is missing on this node", db_res_get(res, i, 0));
                storage_forget_local(b, db_res_get(res, i, 0));
                missing++;
            }
    db_res_free(res);
    if (missing)
        storage_kick_repair(b);
    return missing;
}

int storage_scrub(struct storage *b, struct storage_scrub_report *out)
{
    memset(out, 0, sizeof(*out));
    if (atomic_exchange(&b->scrub_running, true))
        return GR_EUNAVAIL;
    int64_t t0 = storage__now_ms();
    if (storage__active(b) != STORAGE_LOCAL) { /* the store's copies (store.c) */
        int src = storage__scrub_store(b, -1, out);
        out->duration_ms = storage__now_ms() - t0;
        atomic_store(&b->last_scrub_ms, storage__now_ms());
        atomic_store(&b->scrub_running, false);
        gr_info("scrub of the store: %lld binaries, %lld bytes, %lld bad, %lld healed in %lld ms",
                (long long)out->files, (long long)out->bytes, (long long)out->bad,
                (long long)out->healed, (long long)out->duration_ms);
        return src;
    }
    struct storage__scrub s = {.b = b, .rep = out, .budget = -1};
    int rc = bs_each(b->bs, NULL, storage__scrub_one, &s) == BS_OK ? GR_OK : GR_EIO;
    out->missing = storage__forget_missing(b);
    struct storage__batch bt = {.b = b, .arr = GR_SBUF_INIT, .sweep = true};
    if (bs_each(b->bs, NULL, storage__adopt_one, &bt) == BS_OK)
        storage__adopt_flush(&bt);
    gr_sbuf_release(&bt.arr);
    out->adopted = bt.adopted;
    out->orphans = bt.orphans;
    out->duration_ms = storage__now_ms() - t0;
    atomic_store(&b->last_scrub_ms, storage__now_ms());
    atomic_store(&b->scrub_running, false);
    gr_info("scrub: %lld files, %lld bytes, %lld bad, %lld healed, %lld missing in %lld ms",
            (long long)out->files, (long long)out->bytes, (long long)out->bad,
            (long long)out->healed, (long long)out->missing, (long long)out->duration_ms);
    return rc;
}

/* The thread's slow scrub: about rate bytes per tick-second, resumable. */
void storage__scrub_slice(struct storage *b, int64_t rate)
{
    if (rate <= 0 || (!b->scrub_cursor[0] &&
                      storage__now_ms() - atomic_load(&b->last_scrub_ms) < STORAGE_SCRUB_PAUSE_MS))
        return; /* a pass ended recently: the next one starts later */
    if (atomic_exchange(&b->scrub_running, true))
        return;
    struct storage_scrub_report rep = {0};
    struct storage__scrub s = {.b = b, .rep = &rep, .budget = rate};
    snprintf(s.last, sizeof(s.last), "%s", b->scrub_cursor);
    int rc = bs_each(b->bs, b->scrub_cursor, storage__scrub_one, &s);
    if (rc == BS_OK) {
        /* reached the end: a pass is complete */
        b->scrub_cursor[0] = '\0';
        storage__forget_missing(b);
        atomic_store(&b->last_scrub_ms, storage__now_ms());
    } else if (rc == 1) {
        snprintf(b->scrub_cursor, sizeof(b->scrub_cursor), "%s", s.last); /* slice spent */
    }
    atomic_store(&b->scrub_running, false);
}
