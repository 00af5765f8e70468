/* hookspeed.c - the CPU cost of one plugin hook call for `make bench`
 * (bench/plugins): plug_run_hook() of an empty beforeDownload hook, of one
 * that reads e.artifact, and of one that runs ordinary Lua patterns on
 * e.path (string.find, :match, plain find: the sandbox's own pattern
 * functions, charged to the budget), on one thread, best of 5 rounds of
 * 200,000. Unlike a wrk run it does not move with the machine's load much.
 *
 * prints: "<ns empty> <ns reading e.artifact> <ns patterns>"
 *
 * Built by bench/plugins against build/libplug.a.
 */
#include "plug.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The patterns hook (bench/plugins installs the same one for its wrk row). */
#define HOOKSPEED_FIND_HOOK                                                                        \
    "return { beforeDownload = function(e)\n"                                                     \
    "  if e.path:find('^org/') and e.path:find('%.jar$')\n"                                      \
    "     and not e.path:find('SNAPSHOT', 1, true) then\n"                                         \
    "    local g, a, v = e.path:match('^(.-)/([^/]+)/([^/]+)/[^/]+$')\n"                         \
    "    if not v then error('no version') end\n"                                                 \
    "  end\n"                                                                                     \
    "  local d, f = e.path:match('^(.-)/?([^/]*)$')\n"                                            \
    "  if not f:find('.', 1, true) then error('no extension') end\n"                              \
    "end }"

static double hookspeed__round(struct plug_runtime *rt, const struct plug_event *ev, int n)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        struct plug_result r;
        if (plug_run_hook(rt, PLUG_BEFORE_DOWNLOAD, ev, NULL, &r) != PLUG_OK)
            return -1;
        plug_result_release(&r);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n;
}

static double hookspeed__best(const char *src, const struct plug_event *ev)
{
    struct plug_runtime *rt;
    struct plug_source s = {"bench", src, strlen(src)};
    if (plug_runtime_new(NULL, NULL, &rt) != PLUG_OK || plug_load(rt, 1, &s, 1) != PLUG_OK)
        return -1;
    double best = -1;
    for (int k = 0; k < 5; k++) {
        double t = hookspeed__round(rt, ev, 200000);
        if (t >= 0 && (best < 0 || t < best))
            best = t;
    }
    plug_runtime_free(rt);
    return best;
}

int main(void)
{
    static const struct plug_artifact a = {
        "libs",
        "org/example/app/1.0/app-1.0.jar",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "d41d8cd98f00b204e9800998ecf8427e",
        "admin",
        "admin",
        1024,
        1795838400000,
        1795838400000,
    };
    struct plug_event ev = {
        .repo = "libs", .path = a.path, .user = "anonymous", .artifact = &a, .size = -1};
    double empty = hookspeed__best("return { beforeDownload = function(e) end }", &ev);
    double reads = hookspeed__best(
        "return { beforeDownload = function(e) if e.artifact.size < 0 then error('x') end end }",
        &ev);
    double finds = hookspeed__best(HOOKSPEED_FIND_HOOK, &ev);
    printf("%.0f %.0f %.0f\n", empty, reads, finds);
    return empty < 0 || reads < 0 || finds < 0;
}
