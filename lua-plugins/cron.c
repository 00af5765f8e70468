/*
 * cron.c - five-field cron expressions for plugin jobs (UTC): parsing, and
 * the latest matching minute at or before a time (the scheduler runs a
 * job when that minute is later than its last run).
 */
#include "plug.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One field: "*", "a", "a-b", each optionally "/step", comma-separated. */
static int cron__field(const char *f, int lo, int hi, uint64_t *bits, bool *any)
{
    *bits = 0;
    *any = !strcmp(f, "*");
    char buf[128];
    if (strlen(f) >= sizeof(buf) || !*f)
        return PLUG_EINVAL;
    snprintf(buf, sizeof(buf), "%s", f);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        int a, b, step = 1;
        char *slash = strchr(item, '/');
        if (slash) {
            char *end;
            *slash = '\0';
            long st = strtol(slash + 1, &end, 10);
            if (*end || end == slash + 1 || st < 1 || st > hi)
                return PLUG_EINVAL;
            step = (int)st;
        }
        if (!strcmp(item, "*")) {
            a = lo;
            b = hi;
        } else {
            char *end;
            long x = strtol(item, &end, 10);
            if (end == item)
                return PLUG_EINVAL;
            long y = x;
            if (*end == '-') {
                char *e2;
                y = strtol(end + 1, &e2, 10);
                if (e2 == end + 1 || *e2)
                    return PLUG_EINVAL;
            } else if (*end) {
                return PLUG_EINVAL;
            } else if (slash) {
                y = hi; /* "a/step": from a to the end */
            }
            if (x < lo || y > hi || x > y)
                return PLUG_EINVAL;
            a = (int)x;
            b = (int)y;
        }
        for (int v = a; v <= b; v += step)
            *bits |= 1ULL << v;
    }
    return PLUG_OK;
}

int plug_cron_parse(const char *expr, struct plug_cron *out)
{
    char buf[256];
    if (!expr || strlen(expr) >= sizeof(buf))
        return PLUG_EINVAL;
    snprintf(buf, sizeof(buf), "%s", expr);
    char *f[6];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (n == 5)
            return PLUG_EINVAL;
        f[n++] = t;
    }
    if (n != 5)
        return PLUG_EINVAL;
    memset(out, 0, sizeof(*out));
    uint64_t b;
    bool any;
    if (cron__field(f[0], 0, 59, &b, &any))
        return PLUG_EINVAL;
    out->minute = b;
    if (cron__field(f[1], 0, 23, &b, &any))
        return PLUG_EINVAL;
    out->hour = (uint32_t)b;
    if (cron__field(f[2], 1, 31, &b, &out->dom_any))
        return PLUG_EINVAL;
    out->dom = (uint32_t)b;
    if (cron__field(f[3], 1, 12, &b, &any))
        return PLUG_EINVAL;
    out->month = (uint32_t)b;
    if (cron__field(f[4], 0, 7, &b, &out->dow_any))
        return PLUG_EINVAL;
    if (b & (1ULL << 7))
        b |= 1; /* 7 is Sunday too */
    out->dow = (uint8_t)(b & 0x7f);
    return PLUG_OK;
}

static bool cron__day(const struct plug_cron *c, const struct tm *tm)
{
    bool dom = c->dom & (1u << tm->tm_mday);
    bool dow = c->dow & (1u << tm->tm_wday);
    if (c->dom_any && c->dow_any)
        return true;
    if (c->dom_any)
        return dow;
    if (c->dow_any)
        return dom;
    return dom || dow; /* both restricted: either matches (cron's rule) */
}

int64_t plug_cron_prev(const struct plug_cron *c, int64_t t)
{
    time_t cur = (time_t)(t - (t % 60 + 60) % 60);
    time_t limit = cur - (time_t)367 * 86400;
    while (cur >= limit) {
        struct tm tm;
        gmtime_r(&cur, &tm);
        if (!(c->month & (1u << (tm.tm_mon + 1)))) {
            /* last minute of the previous month */
            tm.tm_mday = 1;
            tm.tm_hour = 0;
            tm.tm_min = 0;
            tm.tm_sec = 0;
            cur = timegm(&tm) - 60;
            continue;
        }
        if (!cron__day(c, &tm)) {
            tm.tm_hour = 0;
            tm.tm_min = 0;
            tm.tm_sec = 0;
            cur = timegm(&tm) - 60;
            continue;
        }
        if (!(c->hour & (1u << tm.tm_hour))) {
            tm.tm_min = 0;
            tm.tm_sec = 0;
            cur = timegm(&tm) - 60;
            continue;
        }
        if (!(c->minute & (1ULL << tm.tm_min))) {
            cur -= 60;
            continue;
        }
        return (int64_t)cur;
    }
    return -1;
}
