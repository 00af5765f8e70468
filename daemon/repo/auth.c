/* auth.c - users, password checks with a cached fast path, and settings. */
#include "repo/internal.h"

#include "base/err.h"
#include "base/log.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "lc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* user record: password_hash \0 admin \0 disabled [\0 verifier-hex] */
static int auth__load(struct repo_ctx *ctx, void *arg, struct gr_sbuf *rec)
{
    const char *name = arg;
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT password_hash, admin::int, disabled::int FROM users WHERE name = $1",
                      1, &name);
    if (rc == GR_OK) {
        if (db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        else
            for (int c = 0; c < 3; c++) {
                const char *v = db_res_get(res, 0, c);
                gr_sbuf_add(rec, v, strlen(v) + 1);
            }
    }
    db_res_free(res);
    return rc;
}

static void auth__verifier(struct repo_ctx *ctx, const char *user, const char *password,
                           char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char mac[32];
    struct gr_sbuf msg = GR_SBUF_INIT;
    gr_sbuf_add(&msg, user, strlen(user) + 1);
    gr_sbuf_adds(&msg, password);
    cr_hmac_sha256(ctx->node_secret, sizeof(ctx->node_secret), msg.buf, msg.len, mac);
    gr_sbuf_release(&msg);
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 15];
    }
    hex[64] = '\0';
}

/* The stored key below is no password's: nothing matches it. */
void auth_password_dummy(const char *password)
{
    char dummy[CR_PASSWORD_HASH_MAX];
    snprintf(dummy, sizeof(dummy), "pbkdf2-sha256$%d$%s$%s", CR_PBKDF2_ITERATIONS,
             "Z3JhbmFyeS1uby11c2VyLQ==", "bm8gcGFzc3dvcmQgaGFzaGVzIHRvIHRoaXMga2V5ISE=");
    (void)cr_password_verify(password, dummy);
}

int auth_check_password(struct repo_ctx *ctx, const char *user, const char *password,
                        struct auth_user *out)
{
    out->slow_path = false; /* on GR_EAUTH: no PBKDF2 run was spent (yet) */
    if (!*user || strlen(user) >= sizeof(out->name))
        return GR_EAUTH;
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    struct gr_sbuf k = GR_SBUF_INIT;
    repo__key_user(&k, user);
    /* the token is taken before the record is read, so a verifier stored
     * below can never outlive a password change */
    uint64_t token = lc_fill_token(ctx->cache, k.buf, k.len); /* user keys are short */
    const char *rec;
    size_t len;
    int rc = repo__cached(ctx, a, &k, auth__load, (void *)user, &rec, &len);
    if (rc == GR_ENOTFOUND)
        rc = GR_EAUTH;
    if (rc)
        goto out;
    const char *f[4] = {"", "0", "0", ""};
    int nf = repo__fields(a, rec, len, f, 4);
    if (f[2][0] == '1') {
        rc = GR_EAUTH;
        goto out;
    }
    char want[65];
    auth__verifier(ctx, user, password, want);
    /* a verifier from another process (another node secret) just misses */
    bool ok = nf >= 4 && strlen(f[3]) == 64 && cr_equal(want, f[3], 64);
    bool slow = !ok;
    if (!ok) {
        ok = cr_password_verify(password, f[0]);
        if (ok) {
            struct gr_sbuf nrec = GR_SBUF_INIT;
            gr_sbuf_add(&nrec, "P", 1);
            for (int i = 0; i < 3; i++)
                gr_sbuf_add(&nrec, f[i], strlen(f[i]) + 1);
            gr_sbuf_adds(&nrec, want);
            repo__fill(ctx, &k, &nrec, token);
            gr_sbuf_release(&nrec);
        }
    }
    if (!ok) {
        out->slow_path = slow; /* a wrong password: one PBKDF2 run spent */
        rc = GR_EAUTH;
        goto out;
    }
    snprintf(out->name, sizeof(out->name), "%s", user);
    out->admin = f[1][0] == '1';
    out->anonymous = false;
    out->slow_path = slow;
out:
    gr_sbuf_release(&k);
    gr_arena_free(a);
    return rc;
}

int auth_bootstrap_admin(struct repo_ctx *ctx, const char *data_dir, char pw[33], bool *created)
{
    char hash[CR_PASSWORD_HASH_MAX];
    struct db_res *res = NULL;
    *created = false;
    int rc = db_exec1(ctx->db, &res, "SELECT 1 FROM users LIMIT 1", 0, NULL);
    if (rc)
        return rc;
    int rows = db_res_rows(res);
    db_res_free(res);
    if (rows > 0)
        return GR_OK;
    if (cr_random_password(pw, 24) != GR_OK || cr_password_hash(pw, hash) != GR_OK)
        return GR_EIO;
    const char *p[1] = {hash};
    rc = db_exec1(ctx->db, &res,
                  "INSERT INTO users (name, password_hash, admin) VALUES ('admin', $1, true)"
                  " ON CONFLICT (name) DO NOTHING RETURNING name",
                  1, p);
    if (rc)
        return rc;
    rows = db_res_rows(res);
    db_res_free(res);
    if (rows == 0)
        return GR_OK; /* another node created it first */
    char path[1024];
    snprintf(path, sizeof(path), "%s/admin.password", data_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        gr_error("cannot write %s: %s", path, strerror(errno));
        return GR_EIO;
    }
    size_t n = strlen(pw);
    bool ok = write(fd, pw, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    close(fd);
    if (!ok)
        return GR_EIO;
    struct gr_sbuf k = GR_SBUF_INIT;
    repo__key_user(&k, "admin");
    repo__invalidate(ctx, &k, 1);
    gr_sbuf_release(&k);
    *created = true;
    return GR_OK;
}

static int settings__load(struct repo_ctx *ctx, void *arg, struct gr_sbuf *rec)
{
    const char *name = arg;
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res, "SELECT value FROM settings WHERE key = $1", 1, &name);
    if (rc == GR_OK) {
        if (db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        else
            gr_sbuf_adds(rec, db_res_get(res, 0, 0));
    }
    db_res_free(res);
    return rc;
}

int repo__setting_get(struct repo_ctx *ctx, struct gr_arena *a, const char *name,
                      const char **value)
{
    struct gr_sbuf k = GR_SBUF_INIT;
    size_t len;
    repo__key_setting(&k, name);
    int rc = repo__cached(ctx, a, &k, settings__load, (void *)name, value, &len);
    gr_sbuf_release(&k);
    return rc;
}

int repo__setting_set(struct repo_ctx *ctx, const char *name, const char *value)
{
    const char *p[2] = {name, value};
    struct db_conn *c;
    int rc = db_acquire(ctx->db, 5000, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "INSERT INTO settings (key, value) VALUES ($1, $2)"
                     " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                     2, p);
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    struct gr_sbuf k = GR_SBUF_INIT;
    repo__key_setting(&k, name);
    repo__invalidate(ctx, &k, 1);
    gr_sbuf_release(&k);
    return rc;
}

int settings_anonymous_read(struct repo_ctx *ctx, bool *on)
{
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    const char *v = NULL;
    int rc = repo__setting_get(ctx, a, "anonymous_read", &v);
    *on = rc == GR_OK && !strcmp(v, "true");
    if (rc == GR_ENOTFOUND)
        rc = GR_OK; /* default: off */
    gr_arena_free(a);
    return rc;
}

int settings_set_anonymous_read(struct repo_ctx *ctx, bool on)
{
    return repo__setting_set(ctx, "anonymous_read", on ? "true" : "false");
}

int auth_user_lookup(struct repo_ctx *ctx, const char *user, bool *admin, bool *disabled)
{
    if (!*user || strlen(user) >= sizeof(((struct auth_user *)0)->name))
        return GR_ENOTFOUND;
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    struct gr_sbuf k = GR_SBUF_INIT;
    repo__key_user(&k, user);
    const char *rec;
    size_t len;
    int rc = repo__cached(ctx, a, &k, auth__load, (void *)user, &rec, &len);
    if (rc == GR_OK) {
        const char *f[3] = {"", "0", "1"};
        repo__fields(a, rec, len, f, 3);
        *admin = f[1][0] == '1';
        *disabled = f[2][0] == '1';
    }
    gr_sbuf_release(&k);
    gr_arena_free(a);
    return rc;
}
