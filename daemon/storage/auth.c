/*
 * auth.c - the cluster port's signatures (docs/security.md): requests signed
 * for their destination, answers signed, the replay window, and the one
 * signed call to a peer every other file makes.
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

/* ---- signatures on the cluster port ---- */

int storage__keys_init(struct storage *b)
{
    storage__keys_free(b);
    b->hkey = cr_hmac_key_new(b->key, b->key_len);
    if (b->next_key_len)
        b->hkey_next = cr_hmac_key_new(b->next_key, b->next_key_len);
    return b->hkey && (b->hkey_next || !b->next_key_len) ? GR_OK : GR_ENOMEM;
}

void storage__keys_free(struct storage *b)
{
    cr_hmac_key_free(b->hkey);
    cr_hmac_key_free(b->hkey_next);
    b->hkey = b->hkey_next = NULL;
}

/*
 * The hex HMAC-SHA256 under key of the fields joined with '\n', followed,
 * when tail is not NULL, by '\n' and tail_len bytes of tail. Every field
 * is free of '\n' (methods, paths as sent, node ids and numbers from
 * headers parsed with %s), so the message reads back one way only. When
 * the MAC cannot be computed (no key, out of memory) hex is "", which
 * matches nothing (storage__mac_matches).
 */
static void storage__mac(const struct cr_hmac_key *key, const char *const *fields, int n,
                         const void *tail, size_t tail_len, char hex[65])
{
    struct gr_sbuf sb = GR_SBUF_INIT;
    unsigned char mac[32];
    for (int i = 0; i < n; i++) {
        if (i)
            gr_sbuf_add(&sb, "\n", 1);
        gr_sbuf_adds(&sb, fields[i]);
    }
    if (tail) {
        gr_sbuf_add(&sb, "\n", 1);
        gr_sbuf_add(&sb, tail, tail_len);
    }
    if (key && cr_hmac_sha256_k(key, sb.buf, sb.len, mac) == GR_OK)
        storage__hex(mac, 32, hex);
    else
        hex[0] = '\0';
    gr_sbuf_release(&sb);
}

static void storage__mac_v1(const struct cr_hmac_key *key, const char *method, const char *uri,
                            const char *node, const char *ms, const char *nonce, char hex[65])
{
    const char *f[] = {method, uri, node, ms, nonce};
    storage__mac(key, f, 5, NULL, 0, hex);
}

static void storage__mac_v2(const struct cr_hmac_key *key, const char *method, const char *uri,
                            const char *node, const char *dest, const char *ms, const char *nonce,
                            char hex[65])
{
    const char *f[] = {"granary-v2-request", method, uri, node, dest, ms, nonce};
    storage__mac(key, f, 7, NULL, 0, hex);
}

static void storage__mac_answer(const struct cr_hmac_key *key, const char *req_mac,
                                const char *node, int status, const char *sha256,
                                const char *blocks, const void *body, size_t len, char hex[65])
{
    char st[16];
    snprintf(st, sizeof(st), "%d", status);
    const char *f[] = {"granary-v2-answer", req_mac, node, st, sha256 ? sha256 : "",
                       blocks ? blocks : ""};
    storage__mac(key, f, 6, body ? body : "", body ? len : 0, hex);
}

void storage__uri_sha256(const char *uri, char out[65])
{
    out[0] = '\0';
    if (strncmp(uri, "/v1/blobs/", 10) || strlen(uri) < 74 ||
        (uri[74] && uri[74] != '/' && uri[74] != '?'))
        return;
    memcpy(out, uri + 10, 64);
    out[64] = '\0';
    if (!bs_valid_sha256(out))
        out[0] = '\0';
}

void storage__sign(struct storage *b, const char *method, const char *uri, const char *dest,
                   struct storage__sig *sig)
{
    unsigned char raw[8] = {0};
    char nonce[17], ms[24], v1[65];
    if (cr_random(raw, sizeof(raw)))
        memset(raw, 0, sizeof(raw)); /* refused by the receiver's replay check */
    storage__hex(raw, sizeof(raw), nonce);
    snprintf(ms, sizeof(ms), "%lld", (long long)storage__now_ms());
    snprintf(sig->dest, sizeof(sig->dest), "%s", dest ? dest : "");
    storage__mac_v2(b->hkey, method, uri, b->node, sig->dest, ms, nonce, sig->mac);
    if (!b->accept_v1) {
        snprintf(sig->auth, sizeof(sig->auth), STORAGE_AUTH_HEADER ": v2 %s %s %s %s %s", b->node,
                 sig->dest, ms, nonce, sig->mac);
        sig->auth2[0] = '\0';
        return;
    }
    /* an upgrade: v1 where the older version looks, v2 beside it (same
     * nonce: a receiver that took one of them refuses the other) */
    storage__mac_v1(b->hkey, method, uri, b->node, ms, nonce, v1);
    snprintf(sig->auth, sizeof(sig->auth), STORAGE_AUTH_HEADER ": v1 %s %s %s %s", b->node, ms,
             nonce, v1);
    snprintf(sig->auth2, sizeof(sig->auth2), STORAGE_AUTH_V2_HEADER ": v2 %s %s %s %s %s", b->node,
             sig->dest, ms, nonce, sig->mac);
}

/* Whether mac is want_key (the join key's MAC) or, during a rotation, want_next. */
static bool storage__mac_matches(struct storage *b, const char *mac, const char *want_key,
                                 const char *want_next)
{
    if (strlen(mac) != 64)
        return false;
    if (strlen(want_key) == 64 && cr_equal(mac, want_key, 64))
        return true;
    return b->hkey_next && strlen(want_next) == 64 && cr_equal(mac, want_next, 64);
}

/* Remember (node, nonce) for the replay window: false when it was seen already. */
static bool storage__nonce_fresh(struct storage *b, const char *node, const char *nonce,
                                 int64_t now)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = node; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (const char *p = nonce; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h |= 1;
    bool fresh = true;
    pthread_mutex_lock(&b->lock);
    size_t i = h % STORAGE_NONCES, free_slot = SIZE_MAX;
    for (size_t k = 0; k < 64; k++, i = (i + 1) % STORAGE_NONCES) {
        if (b->nonces[i].h == h && b->nonces[i].ms >= now - 2 * STORAGE_AUTH_WINDOW_MS) {
            fresh = false;
            break;
        }
        if (free_slot == SIZE_MAX &&
            (b->nonces[i].h == 0 || b->nonces[i].ms < now - 2 * STORAGE_AUTH_WINDOW_MS))
            free_slot = i;
    }
    if (fresh) {
        if (free_slot == SIZE_MAX)
            free_slot = h % STORAGE_NONCES; /* crowded: evict */
        b->nonces[free_slot].h = h;
        b->nonces[free_slot].ms = now;
    }
    pthread_mutex_unlock(&b->lock);
    return fresh;
}

bool storage_auth_check(struct storage *b, const char *method, const char *uri, const char *header,
                        const char *header_v2, struct storage_auth *out, const char **why)
{
    char node[64], dest[64], ms[24], nonce[24], mac[72], want[65], want_next[65] = "";
    *why = "missing " STORAGE_AUTH_HEADER;
    memset(out, 0, sizeof(*out));
    if (!b || !b->clustered) {
        *why = "this node is not in a cluster";
        return false;
    }
    const char *h = header_v2 ? header_v2 : header;
    if (!h)
        return false;
    if (!strncmp(h, "v2 ", 3)) {
        if (sscanf(h, "v2 %63s %63s %23s %23s %71s", node, dest, ms, nonce, mac) != 5) {
            *why = "malformed " STORAGE_AUTH_HEADER;
            return false;
        }
        storage__mac_v2(b->hkey, method, uri, node, dest, ms, nonce, want);
        if (b->hkey_next)
            storage__mac_v2(b->hkey_next, method, uri, node, dest, ms, nonce, want_next);
        out->version = 2;
    } else if (!strncmp(h, "v1 ", 3) && !header_v2) {
        if (sscanf(h, "v1 %63s %23s %23s %71s", node, ms, nonce, mac) != 4) {
            *why = "malformed " STORAGE_AUTH_HEADER;
            return false;
        }
        if (!b->accept_v1) {
            /* not destination-bound, and its answer would be unsigned */
            *why = "v1 signature refused (this node is not in an upgrade from v1)";
            return false;
        }
        storage__mac_v1(b->hkey, method, uri, node, ms, nonce, want);
        if (b->hkey_next)
            storage__mac_v1(b->hkey_next, method, uri, node, ms, nonce, want_next);
        out->version = 1;
    } else {
        *why = "malformed " STORAGE_AUTH_HEADER;
        return false;
    }
    if (!storage__mac_matches(b, mac, want, want_next)) {
        *why = "bad signature";
        return false;
    }
    if (out->version == 2 && strcmp(dest, b->node)) {
        *why = "signed for another node";
        return false;
    }
    int64_t t = strtoll(ms, NULL, 10), now = storage__now_ms();
    if (t < now - STORAGE_AUTH_WINDOW_MS || t > now + STORAGE_AUTH_WINDOW_MS) {
        *why = "signature too old or from the future";
        return false;
    }
    if (!storage__nonce_fresh(b, node, nonce, now)) {
        *why = "replayed request";
        return false;
    }
    snprintf(out->node, sizeof(out->node), "%s", node);
    if (out->version == 2)
        memcpy(out->mac, mac, 65);
    return true;
}

void storage_sign_answer(struct storage *b, const struct storage_auth *req, int status,
                         const char *sha256, const char *blocks, const void *body, size_t len,
                         char *out, size_t n)
{
    char mac[65];
    if (!req || req->version != 2) {
        if (n)
            out[0] = '\0';
        return;
    }
    storage__mac_answer(b->hkey, req->mac, b->node, status, sha256, blocks, body, len, mac);
    snprintf(out, n, "v2 %s %s", b->node, mac);
}

bool storage__check_answer(struct storage *b, const struct storage__sig *sig, const char *header,
                           int status, const char *sha256, const char *blocks, const void *body,
                           size_t len, bool *legacy, const char **why)
{
    char node[64], mac[72], want[65], want_next[65] = "";
    *legacy = false;
    if (!header || !*header) {
        if (b->accept_v1) { /* a node of the older version, during the upgrade */
            *legacy = true;
            return true;
        }
        *why = "unsigned answer";
        return false;
    }
    if (sscanf(header, "v2 %63s %71s", node, mac) != 2) {
        *why = "malformed answer signature";
        return false;
    }
    if (strcmp(node, sig->dest)) {
        *why = "answer signed by another node";
        return false;
    }
    storage__mac_answer(b->hkey, sig->mac, node, status, sha256, blocks, body, len, want);
    if (b->hkey_next)
        storage__mac_answer(b->hkey_next, sig->mac, node, status, sha256, blocks, body, len,
                            want_next);
    if (!storage__mac_matches(b, mac, want, want_next)) {
        *why = "bad answer signature";
        return false;
    }
    return true;
}

int storage__call(struct storage *b, const char *method, const char *dest, const char *base,
                  const char *uri, const char *request_id, char *body, size_t bodysz)
{
    char url[1024], rid[96], sha[65];
    struct storage__sig sig;
    storage__sign(b, method, uri, dest, &sig);
    snprintf(url, sizeof(url), "%s%s", base, uri);
    snprintf(rid, sizeof(rid), "X-Request-Id: %s", request_id ? request_id : "storage");
    struct bs_peer_req req = {.url = url,
                              .auth = sig.auth,
                              .auth2 = sig.auth2[0] ? sig.auth2 : NULL,
                              .extra = rid,
                              .keep_header = STORAGE_ANSWER_HEADER};
    bs_peer_call(method, &req, STORAGE_CALL_TIMEOUT_S);
    const char *why = NULL;
    bool legacy;
    storage__uri_sha256(uri, sha);
    if (req.status) {
        if (req.truncated)
            why = "answer too long to check";
        else
            storage__check_answer(b, &sig, req.header, req.status, sha, "", req.body, req.body_len,
                                  &legacy, &why);
        if (why)
            gr_warn("req=%s %s %s on %s: answer %d refused: %s",
                    request_id ? request_id : "storage", method, uri, dest, req.status, why);
    }
    if (why) {
        if (body && bodysz)
            snprintf(body, bodysz, "%s (answer %d: %.100s)", why, req.status, req.body);
        return 0;
    }
    if (body && bodysz)
        snprintf(body, bodysz, "%s", req.status ? req.body : req.error);
    return req.status;
}
