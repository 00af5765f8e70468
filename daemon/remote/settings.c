/*
 * settings.c - the settings of remote and virtual repositories under
 * Artifactory's JSON names, kept in repositories.settings (docs/remote.md):
 * checks, defaults, display, and the sealing of upstream passwords.
 */
#include "remote/internal.h"

#include "base/err.h"
#include "base/pct.h"
#include "base/sbuf.h"
#include "crypto/crypto.h"
#include "repo/pattern.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const remote_fields[] = {"url",
                                     "username",
                                     "password",
                                     "offline",
                                     "retrievalCachePeriodSecs",
                                     "missedRetrievalCachePeriodSecs",
                                     "assumedOfflinePeriodSecs",
                                     "socketTimeoutMillis",
                                     "hardFail",
                                     "storeArtifactsLocally",
                                     "blockMismatchingMimeTypes",
                                     "remoteRepoChecksumPolicyType",
                                     NULL};

const char *const virtual_fields[] = {"repositories", "defaultDeploymentRepo", "memberPatterns",
                                      NULL};

/* Artifactory's defaults for a remote repository. */
static const struct {
    const char *name;
    bool value;
} remote__bools[] = {
    {"offline", false},
    {"hardFail", false},
    {"storeArtifactsLocally", true},
    {"blockMismatchingMimeTypes", true},
};
#define REMOTE_NBOOLS (sizeof(remote__bools) / sizeof(remote__bools[0]))

static const struct {
    const char *name;
    int64_t value, min, max;
} remote__ints[] = {
    {"retrievalCachePeriodSecs", 7200, 0, 10L * 365 * 86400},
    {"missedRetrievalCachePeriodSecs", 1800, 0, 10L * 365 * 86400},
    {"assumedOfflinePeriodSecs", 300, 0, 10L * 365 * 86400},
    {"socketTimeoutMillis", 15000, 100, 3600L * 1000},
};
#define REMOTE_NINTS (sizeof(remote__ints) / sizeof(remote__ints[0]))

static const char *const remote__policies[] = {"generate-if-absent", "fail", "ignore-and-generate",
                                               NULL};

#define REMOTE_URL_MAX 2048
#define REMOTE_CRED_MAX 1024

void remote_settings_read(struct gr_arena *a, const struct repo_config *cfg,
                          struct remote_settings *out)
{
    json_t *doc = json_loads(cfg->settings ? cfg->settings : "{}", 0, NULL);
    const char *s;
    memset(out, 0, sizeof(*out));
    out->url = gr_arena_strdup(a, (s = json_string_value(json_object_get(doc, "url"))) ? s : "");
    out->username =
        gr_arena_strdup(a, (s = json_string_value(json_object_get(doc, "username"))) ? s : "");
    out->password =
        gr_arena_strdup(a, (s = json_string_value(json_object_get(doc, "password"))) ? s : "");
    bool *b[REMOTE_NBOOLS] = {&out->offline, &out->hard_fail, &out->store_locally,
                              &out->block_mime};
    for (size_t i = 0; i < REMOTE_NBOOLS; i++) {
        json_t *v = json_object_get(doc, remote__bools[i].name);
        *b[i] = json_is_boolean(v) ? json_is_true(v) : remote__bools[i].value;
    }
    int64_t *n[REMOTE_NINTS] = {&out->ttl_s, &out->miss_s, &out->offline_s, &out->timeout_ms};
    for (size_t i = 0; i < REMOTE_NINTS; i++) {
        json_t *v = json_object_get(doc, remote__ints[i].name);
        *n[i] = json_is_integer(v) ? (int64_t)json_integer_value(v) : remote__ints[i].value;
    }
    out->policy = REMOTE_SUMS_IF_PRESENT;
    s = json_string_value(json_object_get(doc, "remoteRepoChecksumPolicyType"));
    for (int i = 0; s && remote__policies[i]; i++)
        if (!strcmp(s, remote__policies[i]))
            out->policy = (enum remote_policy)i;
    json_decref(doc);
}

/* A string field of doc: absent (true, *out NULL), or a string of at most max bytes without
 * control characters. false: *why says what is wrong. */
static bool remote__string(struct gr_arena *a, json_t *doc, const char *name, size_t max,
                           const char **out, const char **why)
{
    json_t *v = json_object_get(doc, name);
    *out = NULL;
    if (!v)
        return true;
    const char *s = json_string_value(v);
    if (!s || json_string_length(v) > max || strlen(s) != json_string_length(v)) {
        *why = gr_arena_printf(a, "field '%s' must be a string of at most %zu bytes", name, max);
        return false;
    }
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *why = gr_arena_printf(a, "field '%s' holds a control character", name);
            return false;
        }
    *out = s;
    return true;
}

/* http(s)://host[:port][/path], no blanks, no credentials, no query; trailing slashes dropped. */
static const char *remote__url_check(struct gr_arena *a, const char *url, const char **why)
{
    const char *rest = !strncmp(url, "http://", 7)    ? url + 7
                       : !strncmp(url, "https://", 8) ? url + 8
                                                      : NULL;
    if (!rest || !*rest || *rest == '/') {
        *why = "field 'url' must be an http:// or https:// URL with a host";
        return NULL;
    }
    size_t host = strcspn(rest, "/");
    if (memchr(rest, '@', host)) {
        *why = "field 'url' must not carry credentials: use 'username' and 'password'";
        return NULL;
    }
    for (const char *p = url; *p; p++)
        if (isspace((unsigned char)*p) || *p == '?' || *p == '#' || *p == '"' || *p == '\\') {
            *why = "field 'url' must not hold blanks, a query or a fragment";
            return NULL;
        }
    char *u = gr_arena_strdup(a, url);
    size_t n = strlen(u);
    while (n > 0 && u[n - 1] == '/')
        u[--n] = '\0';
    return u;
}

int remote_settings_apply(struct remote *rm, struct gr_arena *a, json_t *doc, json_t *settings,
                          bool creating, const char **why)
{
    const char *url, *user, *pw;
    if (!remote__string(a, doc, "url", REMOTE_URL_MAX, &url, why) ||
        !remote__string(a, doc, "username", REMOTE_CRED_MAX, &user, why) ||
        !remote__string(a, doc, "password", REMOTE_CRED_MAX, &pw, why))
        return GR_EINVAL;
    if (url) {
        if (!(url = remote__url_check(a, url, why)))
            return GR_EINVAL;
        json_object_set_new(settings, "url", json_string(url));
    } else if (creating || !json_string_value(json_object_get(settings, "url"))) {
        *why = "a remote repository needs 'url': its upstream";
        return GR_EINVAL;
    }
    for (size_t i = 0; i < REMOTE_NBOOLS; i++) {
        json_t *v = json_object_get(doc, remote__bools[i].name);
        if (!v)
            continue;
        if (!json_is_boolean(v)) {
            *why = gr_arena_printf(a, "field '%s' must be true or false", remote__bools[i].name);
            return GR_EINVAL;
        }
        json_object_set(settings, remote__bools[i].name, v);
    }
    for (size_t i = 0; i < REMOTE_NINTS; i++) {
        json_t *v = json_object_get(doc, remote__ints[i].name);
        if (!v)
            continue;
        json_int_t n = json_integer_value(v);
        if (!json_is_integer(v) || n < remote__ints[i].min || n > remote__ints[i].max) {
            *why = gr_arena_printf(a, "field '%s' must be an integer from %lld to %lld",
                                   remote__ints[i].name, (long long)remote__ints[i].min,
                                   (long long)remote__ints[i].max);
            return GR_EINVAL;
        }
        json_object_set(settings, remote__ints[i].name, v);
    }
    json_t *pol = json_object_get(doc, "remoteRepoChecksumPolicyType");
    if (pol) {
        const char *s = json_string_value(pol);
        bool known = false;
        for (int i = 0; s && remote__policies[i]; i++)
            known |= !strcmp(s, remote__policies[i]);
        if (!known) {
            *why = "field 'remoteRepoChecksumPolicyType' must be generate-if-absent, fail or"
                   " ignore-and-generate (granary never stores a checksum its content does not"
                   " have: no pass-thru)";
            return GR_EINVAL;
        }
        json_object_set(settings, "remoteRepoChecksumPolicyType", pol);
    }
    if (user)
        json_object_set_new(settings, "username", json_string(user));
    if (pw && !*pw) {
        json_object_del(settings, "password");
    } else if (pw) {
        const char *sealed = NULL;
        int rc = remote__seal(rm, a, pw, &sealed);
        if (rc) {
            *why = "cannot seal the password";
            return rc;
        }
        json_object_set_new(settings, "password", json_string(sealed));
    }
    return GR_OK;
}

void remote_settings_json(json_t *settings, json_t *doc)
{
    const char *s;
    json_object_set_new(
        doc, "url",
        json_string((s = json_string_value(json_object_get(settings, "url"))) ? s : ""));
    json_object_set_new(
        doc, "username",
        json_string((s = json_string_value(json_object_get(settings, "username"))) ? s : ""));
    for (size_t i = 0; i < REMOTE_NBOOLS; i++) {
        json_t *v = json_object_get(settings, remote__bools[i].name);
        json_object_set_new(
            doc, remote__bools[i].name,
            json_boolean(json_is_boolean(v) ? json_is_true(v) : remote__bools[i].value));
    }
    for (size_t i = 0; i < REMOTE_NINTS; i++) {
        json_t *v = json_object_get(settings, remote__ints[i].name);
        json_object_set_new(
            doc, remote__ints[i].name,
            json_integer(json_is_integer(v) ? json_integer_value(v) : remote__ints[i].value));
    }
    s = json_string_value(json_object_get(settings, "remoteRepoChecksumPolicyType"));
    json_object_set_new(doc, "remoteRepoChecksumPolicyType",
                        json_string(s ? s : remote__policies[0]));
    /* the password is never shown back; only whether one is set */
    json_object_set_new(
        doc, "passwordSet",
        json_boolean(json_string_value(json_object_get(settings, "password")) != NULL));
}

/* ---- passwords: "sealed:v1:<hex of nonce | ciphertext | tag>" under the remote key ---- */

#define REMOTE_SEALED_PREFIX "sealed:v1:"

int remote__seal(struct remote *rm, struct gr_arena *a, const char *clear, const char **out)
{
    size_t n = strlen(clear);
    unsigned char *buf = gr_arena_alloc(a, n + CR_SEAL_OVERHEAD);
    int rc = cr_seal(rm->seal_key, clear, n, buf);
    if (rc)
        return rc;
    size_t pl = strlen(REMOTE_SEALED_PREFIX);
    char *hex = gr_arena_alloc(a, pl + 2 * (n + CR_SEAL_OVERHEAD) + 1);
    memcpy(hex, REMOTE_SEALED_PREFIX, pl);
    for (size_t i = 0; i < n + CR_SEAL_OVERHEAD; i++)
        snprintf(hex + pl + 2 * i, 3, "%02x", buf[i]);
    *out = hex;
    return GR_OK;
}

const char *remote_password(struct remote *rm, struct gr_arena *a, const struct remote_settings *s)
{
    size_t pl = strlen(REMOTE_SEALED_PREFIX);
    if (!s->password || strncmp(s->password, REMOTE_SEALED_PREFIX, pl))
        return "";
    const char *hex = s->password + pl;
    size_t n = strlen(hex) / 2;
    if (n < CR_SEAL_OVERHEAD || strlen(hex) % 2)
        return "";
    unsigned char *raw = gr_arena_alloc(a, n);
    for (size_t i = 0; i < n; i++) {
        int hi = gr_hex_digit(hex[2 * i]), lo = gr_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return "";
        raw[i] = (unsigned char)(hi * 16 + lo);
    }
    char *clear = gr_arena_alloc(a, n - CR_SEAL_OVERHEAD + 1);
    if (cr_open(rm->seal_key, raw, n, clear) != GR_OK)
        return "";
    clear[n - CR_SEAL_OVERHEAD] = '\0';
    return clear;
}

/* ---- virtual repositories ---- */

void virtual_settings_read(struct gr_arena *a, const struct repo_config *cfg,
                           struct virtual_settings *out)
{
    json_t *doc = json_loads(cfg->settings ? cfg->settings : "{}", 0, NULL);
    json_t *arr = json_object_get(doc, "repositories");
    json_t *pats = json_object_get(doc, "memberPatterns");
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    memset(out, 0, sizeof(*out));
    out->members = gr_arena_calloc(a, sizeof(char *) * (n + 1));
    out->includes = gr_arena_calloc(a, sizeof(char *) * (n + 1));
    out->excludes = gr_arena_calloc(a, sizeof(char *) * (n + 1));
    for (size_t i = 0; i < n; i++) {
        const char *k = json_string_value(json_array_get(arr, i));
        if (!k)
            continue;
        json_t *p = json_object_get(pats, k);
        const char *inc = json_string_value(json_object_get(p, "includesPattern"));
        const char *exc = json_string_value(json_object_get(p, "excludesPattern"));
        out->members[out->n] = gr_arena_strdup(a, k);
        out->includes[out->n] = gr_arena_strdup(a, inc ? inc : "");
        out->excludes[out->n] = gr_arena_strdup(a, exc ? exc : "");
        out->n++;
    }
    const char *d = json_string_value(json_object_get(doc, "defaultDeploymentRepo"));
    out->deploy = gr_arena_strdup(a, d ? d : "");
    json_decref(doc);
}

bool virtual_member_accepts(const struct virtual_settings *v, int i, const char *path)
{
    return pattern_accepts(v->includes[i], v->excludes[i], path);
}

/* Whether target is reachable from the virtual repository key through members (depth-bounded). */
static int virtual__reaches(struct repo_ctx *ctx, struct gr_arena *a, const char *key,
                            const char *target, int depth, bool *found)
{
    if (depth > REMOTE_VIRTUAL_DEPTH) {
        *found = true; /* deeper than any resolution goes: refuse as a cycle would be */
        return GR_OK;
    }
    struct repo_config c;
    int rc = repo_get(ctx, a, key, &c);
    if (rc == GR_ENOTFOUND || (rc == GR_OK && strcmp(c.rclass, "virtual")))
        return GR_OK;
    if (rc)
        return rc;
    struct virtual_settings v;
    virtual_settings_read(a, &c, &v);
    for (int i = 0; i < v.n && !*found; i++) {
        if (!strcmp(v.members[i], target)) {
            *found = true;
            return GR_OK;
        }
        rc = virtual__reaches(ctx, a, v.members[i], target, depth + 1, found);
        if (rc)
            return rc;
    }
    return GR_OK;
}

int virtual_settings_apply(struct repo_ctx *ctx, struct gr_arena *a, const struct repo_config *self,
                           json_t *doc, json_t *settings, const char **why)
{
    json_t *arr = json_object_get(doc, "repositories");
    if (arr) {
        if (!json_is_array(arr) || json_array_size(arr) > REMOTE_VIRTUAL_MEMBERS) {
            *why = gr_arena_printf(a, "field 'repositories' must be an array of at most %d keys",
                                   REMOTE_VIRTUAL_MEMBERS);
            return GR_EINVAL;
        }
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
        {
            const char *k = json_string_value(v);
            if (!k || repo_key_check(k) != GR_OK) {
                *why = "field 'repositories' must hold repository keys";
                return GR_EINVAL;
            }
            for (size_t j = 0; j < i; j++)
                if (!strcmp(k, json_string_value(json_array_get(arr, j)))) {
                    *why = gr_arena_printf(a, "repository '%s' is listed twice", k);
                    return GR_EINVAL;
                }
            if (!strcmp(k, self->key)) {
                *why = "a virtual repository cannot be its own member";
                return GR_EINVAL;
            }
            struct repo_config m;
            int rc = repo_get(ctx, a, k, &m);
            if (rc == GR_ENOTFOUND) {
                *why = gr_arena_printf(a, "member repository '%s' does not exist", k);
                return GR_EINVAL;
            }
            if (rc)
                return rc;
            if (strcmp(m.package_type, self->package_type)) {
                *why = gr_arena_printf(a, "member repository '%s' is of packageType '%s', not '%s'",
                                       k, m.package_type, self->package_type);
                return GR_EINVAL;
            }
            bool cycle = false;
            rc = virtual__reaches(ctx, a, k, self->key, 1, &cycle);
            if (rc)
                return rc;
            if (cycle) {
                *why = gr_arena_printf(a,
                                       "member repository '%s' leads back to '%s': virtual"
                                       " repositories cannot form a cycle",
                                       k, self->key);
                return GR_EINVAL;
            }
        }
        json_object_set(settings, "repositories", arr);
    }
    json_t *pats = json_object_get(doc, "memberPatterns");
    if (pats) {
        if (!json_is_object(pats)) {
            *why = "field 'memberPatterns' must be an object: {\"<member>\":"
                   " {\"includesPattern\": ..., \"excludesPattern\": ...}}";
            return GR_EINVAL;
        }
        const char *k;
        json_t *p;
        json_object_foreach(pats, k, p)
        {
            const char *inc, *exc;
            if (!json_is_object(p) || !remote__string(a, p, "includesPattern", 4096, &inc, why) ||
                !remote__string(a, p, "excludesPattern", 4096, &exc, why) ||
                json_object_size(p) != (size_t)(!!json_object_get(p, "includesPattern") +
                                                !!json_object_get(p, "excludesPattern"))) {
                *why = gr_arena_printf(a,
                                       "memberPatterns of '%s' must be an object of"
                                       " includesPattern and excludesPattern strings",
                                       k);
                return GR_EINVAL;
            }
        }
        json_object_set(settings, "memberPatterns", pats);
    }
    const char *deploy;
    if (!remote__string(a, doc, "defaultDeploymentRepo", REPO_KEY_MAX, &deploy, why))
        return GR_EINVAL;
    if (deploy)
        json_object_set_new(settings, "defaultDeploymentRepo", json_string(deploy));
    /* whatever changed: the deployment target must be a local member */
    deploy = json_string_value(json_object_get(settings, "defaultDeploymentRepo"));
    if (deploy && *deploy) {
        json_t *members = json_object_get(settings, "repositories");
        bool member = false;
        size_t i;
        json_t *v;
        json_array_foreach(members, i, v) member |= !strcmp(json_string_value(v), deploy);
        struct repo_config m;
        int rc = member ? repo_get(ctx, a, deploy, &m) : GR_ENOTFOUND;
        if (rc && rc != GR_ENOTFOUND)
            return rc;
        if (rc || strcmp(m.rclass, "local")) {
            *why = gr_arena_printf(a,
                                   "defaultDeploymentRepo '%s' must be a local repository among"
                                   " the members",
                                   deploy);
            return GR_EINVAL;
        }
    }
    return GR_OK;
}

void virtual_settings_json(json_t *settings, json_t *doc)
{
    json_t *arr = json_object_get(settings, "repositories");
    json_object_set_new(doc, "repositories", json_is_array(arr) ? json_copy(arr) : json_array());
    const char *d = json_string_value(json_object_get(settings, "defaultDeploymentRepo"));
    json_object_set_new(doc, "defaultDeploymentRepo", json_string(d ? d : ""));
    json_t *p = json_object_get(settings, "memberPatterns");
    json_object_set_new(doc, "memberPatterns", json_is_object(p) ? json_copy(p) : json_object());
}
