/*
 * msg.c - the bus wire format, version 1: encoding, parsing and HMAC
 * verification of one message, and the error strings. Pure functions, no
 * ZeroMQ; the byte table is in README.md.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bus.h"

/* Offsets of the fixed head, before the two ids. */
#define OFF_VERSION 0
#define OFF_KIND 1
#define OFF_TYPE 2
#define OFF_FLAGS 3
#define OFF_SLEN 4
#define OFF_RLEN 5
#define HEAD_LEN 6
/* After the ids: incarnation, seq, id, ref incarnation, time, payload length. */
#define TAIL_LEN 44

const char *bus_strerror(int err)
{
    switch (err) {
    case BUS_OK:
        return "ok";
    case BUS_EINVAL:
        return "invalid argument";
    case BUS_ENOMEM:
        return "out of memory";
    case BUS_EIO:
        return "i/o error";
    case BUS_EINCOMPLETE:
        return "not every target acknowledged";
    case BUS_ETIMEDOUT:
        return "timed out";
    case BUS_ENACK:
        return "refused by the peer";
    case BUS_EUNREACH:
        return "peer unreachable";
    case BUS_ENOPEER:
        return "no such peer";
    case BUS_EAGAIN:
        return "queue full";
    case BUS_EDEADLK:
        return "request from the bus thread";
    case BUS_EVERSION:
        return "unknown wire version";
    case BUS_EMALFORMED:
        return "malformed message";
    case BUS_EFORGED:
        return "message authentication failed";
    case BUS_ERANGE:
        return "too large";
    }
    return "unknown error";
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Constant-time equality of two MACs: the time does not depend on where
 * they differ. */
static bool mac_equal(const unsigned char *a, const unsigned char *b)
{
    unsigned char d = 0;
    for (size_t i = 0; i < BUS_MAC_LEN; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

static bool kind_valid(unsigned kind)
{
    return kind >= BUS_REQUEST && kind <= BUS_EVENT;
}

/* The rule shared by encode and decode: acks name the requester's
 * incarnation, nothing else does. */
static bool ref_valid(unsigned kind, uint64_t ref)
{
    bool is_answer = kind == BUS_ACK || kind == BUS_NACK;
    return is_answer ? ref != 0 : ref == 0;
}

size_t bus_msg_size(size_t sender_len, size_t recipient_len, size_t payload_len)
{
    return BUS_MSG_OVERHEAD + sender_len + recipient_len + payload_len;
}

int bus_msg_encode(const struct bus_msg *m, bus_hmac_fn *hmac, const void *key, size_t klen,
                   void *buf, size_t bufsz, size_t *outlen)
{
    if (m == NULL || hmac == NULL || key == NULL || klen == 0 || outlen == NULL ||
        (buf == NULL && bufsz > 0) || (m->payload == NULL && m->len > 0))
        return BUS_EINVAL;
    size_t slen = strnlen(m->sender, sizeof(m->sender));
    size_t rlen = strnlen(m->recipient, sizeof(m->recipient));
    if (!kind_valid(m->kind) || slen == 0 || slen > BUS_MAX_ID || rlen == 0 || rlen > BUS_MAX_ID ||
        m->incarnation == 0 || m->seq == 0 || m->id == 0 || !ref_valid(m->kind, m->ref_incarnation))
        return BUS_EINVAL;
    if (m->len > UINT32_MAX)
        return BUS_ERANGE;
    size_t need = bus_msg_size(slen, rlen, m->len);
    *outlen = need;
    if (bufsz < need)
        return BUS_ERANGE;

    unsigned char *p = buf;
    p[OFF_VERSION] = BUS_WIRE_VERSION;
    p[OFF_KIND] = m->kind;
    p[OFF_TYPE] = m->type;
    p[OFF_FLAGS] = 0;
    p[OFF_SLEN] = (unsigned char)slen;
    p[OFF_RLEN] = (unsigned char)rlen;
    unsigned char *q = p + HEAD_LEN;
    memcpy(q, m->sender, slen);
    q += slen;
    memcpy(q, m->recipient, rlen);
    q += rlen;
    put64(q, m->incarnation);
    put64(q + 8, m->seq);
    put64(q + 16, m->id);
    put64(q + 24, m->ref_incarnation);
    put64(q + 32, m->time_ms);
    put32(q + 40, (uint32_t)m->len);
    q += TAIL_LEN;
    if (m->len > 0)
        memcpy(q, m->payload, m->len);
    q += m->len;
    hmac(key, klen, p, (size_t)(q - p), q);
    return BUS_OK;
}

/* Copy an id of n bytes into a NUL-terminated field; false if it holds a
 * NUL byte (ids are C strings on this side of the wire). */
static bool take_id(char *dst, const unsigned char *src, size_t n)
{
    if (memchr(src, 0, n) != NULL)
        return false;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return true;
}

int bus_msg_decode(const void *buf, size_t len, bus_hmac_fn *hmac, const void *key, size_t klen,
                   struct bus_msg *m)
{
    if (m == NULL || hmac == NULL || key == NULL || klen == 0 || (buf == NULL && len > 0))
        return BUS_EINVAL;
    const unsigned char *p = buf;
    if (len < 1)
        return BUS_EMALFORMED;
    if (p[OFF_VERSION] != BUS_WIRE_VERSION)
        return BUS_EVERSION;
    if (len < HEAD_LEN)
        return BUS_EMALFORMED;
    size_t slen = p[OFF_SLEN], rlen = p[OFF_RLEN];
    if (!kind_valid(p[OFF_KIND]) || p[OFF_FLAGS] != 0 || slen == 0 || slen > BUS_MAX_ID ||
        rlen == 0 || rlen > BUS_MAX_ID)
        return BUS_EMALFORMED;
    /* Every length below is small or a uint32_t, so no sum overflows. */
    size_t fixed = HEAD_LEN + slen + rlen + TAIL_LEN;
    if (len < fixed + BUS_MAC_LEN)
        return BUS_EMALFORMED;
    const unsigned char *q = p + HEAD_LEN + slen + rlen;
    uint64_t plen = get32(q + 40);
    if ((uint64_t)(len - fixed - BUS_MAC_LEN) != plen)
        return BUS_EMALFORMED;

    m->kind = p[OFF_KIND];
    m->type = p[OFF_TYPE];
    if (!take_id(m->sender, p + HEAD_LEN, slen) ||
        !take_id(m->recipient, p + HEAD_LEN + slen, rlen))
        return BUS_EMALFORMED;
    m->incarnation = get64(q);
    m->seq = get64(q + 8);
    m->id = get64(q + 16);
    m->ref_incarnation = get64(q + 24);
    m->time_ms = get64(q + 32);
    m->len = (size_t)plen;
    m->payload = q + TAIL_LEN;
    if (m->incarnation == 0 || m->seq == 0 || m->id == 0 || !ref_valid(m->kind, m->ref_incarnation))
        return BUS_EMALFORMED;

    unsigned char mac[BUS_MAC_LEN];
    hmac(key, klen, p, len - BUS_MAC_LEN, mac);
    if (!mac_equal(mac, p + len - BUS_MAC_LEN))
        return BUS_EFORGED;
    return BUS_OK;
}
