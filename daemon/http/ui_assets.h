/*
 * ui_assets.h - the web UI's files, built into granaryd: scripts/embed-ui
 * turns ui/ into a table (build/gen/ui_assets.c) at `make`, so a binary
 * serves exactly the UI of its own tree. Read-only, static.
 */
#ifndef HTTP_UI_ASSETS_H
#define HTTP_UI_ASSETS_H

#include <stddef.h>

struct http_ui_asset {
    const char *path; /* relative to ui/: "index.html", "js/main.js" */
    const char *type; /* Content-Type */
    const char *etag; /* the first 32 hex digits of the file's sha256, unquoted */
    const unsigned char *body;
    size_t len;
    const unsigned char *gz; /* gzip -9n of the body, or NULL when that is not smaller */
    size_t gzlen;
};

extern const struct http_ui_asset http_ui_assets[];
extern const int http_ui_assets_count;

#endif
