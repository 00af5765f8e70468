/*
 * storagectl.c - `granaryctl storage migrate|status`: start moving a
 * cluster's binaries to another provider and follow it, over the HTTP API
 * (POST/GET /api/system/storage/migrate, docs/storage.md).
 */
#include "storagectl.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void stc_usage(FILE *f)
{
    fputs("  storage migrate --url URL --to local|s3|shared-fs [options]\n"
          "      move every binary to that provider online, then switch the cluster to it\n"
          "      --bytes-per-second N        throttle the copy (default 0: no limit)\n"
          "      --wait                      follow it until it is done\n"
          "  storage status --url URL        the cluster's provider and any migration\n"
          "      --user USER                 an admin [admin]\n"
          "      --password-file FILE        its password (first line); or GRANARY_PASSWORD\n",
          f);
}

struct stc__buf {
    char *p;
    size_t n;
};

static size_t stc__collect(char *d, size_t sz, size_t nm, void *arg)
{
    struct stc__buf *b = arg;
    size_t n = sz * nm;
    char *p = realloc(b->p, b->n + n + 1);
    if (!p)
        return 0;
    memcpy(p + b->n, d, n);
    b->n += n;
    p[b->n] = '\0';
    b->p = p;
    return n;
}

/* One call; the body into *doc (NULL if not JSON). The HTTP status, 0: no answer. */
static long stc__call(const char *url, const char *user, const char *pass, const char *body,
                      json_t **doc)
{
    CURL *c = curl_easy_init();
    struct stc__buf b = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    long status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERNAME, user);
    curl_easy_setopt(c, CURLOPT_PASSWORD, pass);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stc__collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    *doc = b.p ? json_loads(b.p, 0, NULL) : NULL;
    free(b.p);
    return status;
}

static void stc__print(json_t *doc)
{
    json_t *m = json_object_get(doc, "migration");
    printf("provider %s", json_string_value(json_object_get(doc, "provider")));
    if (json_string_value(json_object_get(doc, "previous")))
        printf(" (before: %s)", json_string_value(json_object_get(doc, "previous")));
    if (m)
        printf("; migrating to %s: %s, %lld copied (%lld bytes), %lld failures retried",
               json_string_value(json_object_get(m, "to")),
               json_string_value(json_object_get(m, "state")),
               (long long)json_integer_value(json_object_get(m, "copied")),
               (long long)json_integer_value(json_object_get(m, "bytes")),
               (long long)json_integer_value(json_object_get(m, "failed")));
    printf("\n");
    fflush(stdout);
}

int stc_main(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "", *url = NULL, *to = NULL, *user = "admin";
    const char *pwfile = NULL;
    long long rate = 0;
    bool wait = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--wait")) {
            wait = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "granaryctl storage: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--url"))
            url = v;
        else if (!strcmp(a, "--to"))
            to = v;
        else if (!strcmp(a, "--user"))
            user = v;
        else if (!strcmp(a, "--password-file"))
            pwfile = v;
        else if (!strcmp(a, "--bytes-per-second"))
            rate = strtoll(v, NULL, 10);
        else {
            fprintf(stderr, "granaryctl storage: unknown option %s\n", a);
            return 2;
        }
    }
    if ((strcmp(sub, "migrate") && strcmp(sub, "status")) || !url ||
        (!strcmp(sub, "migrate") && !to)) {
        stc_usage(stderr);
        return 2;
    }
    char pass[512] = "";
    if (pwfile) {
        FILE *f = fopen(pwfile, "r");
        if (!f || !fgets(pass, sizeof(pass), f)) {
            fprintf(stderr, "granaryctl storage: cannot read %s\n", pwfile);
            if (f)
                fclose(f);
            return 2;
        }
        fclose(f);
        pass[strcspn(pass, "\r\n")] = '\0';
    } else if (getenv("GRANARY_PASSWORD")) {
        snprintf(pass, sizeof(pass), "%s", getenv("GRANARY_PASSWORD"));
    }
    char api[1024];
    snprintf(api, sizeof(api), "%s/api/system/storage/migrate", url);
    json_t *doc = NULL;
    long st;
    if (!strcmp(sub, "migrate")) {
        json_t *req = json_pack("{s:s,s:I}", "to", to, "bytesPerSecond", (json_int_t)rate);
        char *body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        st = stc__call(api, user, pass, body, &doc);
        free(body);
        if (st != 202) {
            json_t *e = json_array_get(json_object_get(doc, "errors"), 0);
            fprintf(stderr, "granaryctl storage migrate: %ld %s\n", st,
                    st ? json_string_value(json_object_get(e, "message")) : "no answer");
            json_decref(doc);
            return 1;
        }
    } else {
        st = stc__call(api, user, pass, NULL, &doc);
        if (st != 200) {
            fprintf(stderr, "granaryctl storage status: %ld\n", st);
            json_decref(doc);
            return 1;
        }
    }
    stc__print(doc);
    while (wait && json_object_get(doc, "migration")) {
        sleep(1);
        json_decref(doc);
        doc = NULL;
        st = stc__call(api, user, pass, NULL, &doc);
        if (st != 200)
            continue; /* a node restarting: ask again */
        stc__print(doc);
    }
    json_decref(doc);
    return 0;
}
