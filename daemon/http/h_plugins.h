/*
 * h_plugins.h - /api/plugins (management, executions) and the calls the
 * other handlers make to run plugin hooks (docs/plugins.md): http's own
 * handlers and the formats' (a format's deploy runs the upload hooks). Every before* call returns
 * false when it has answered the request (a plugin refused it, answered instead, or failed: before*
 * hooks fail closed); after* calls never answer and only log failures.
 */
#ifndef HTTP_H_PLUGINS_H
#define HTTP_H_PLUGINS_H

#include "http/req.h"

struct props_set;

/* /api/plugins[/...]: sub is the raw text after "/api/". */
void h_plugins(struct http_req *r, const char *sub);

/* Realms: when the built-in check refused user/password, ask the plugins;
 * true fills r->user. */
bool http_plug_authenticate(struct http_req *r, const char *user, const char *password);

bool http_plug_before_download(struct http_req *r, const struct artifact *a);
void http_plug_after_download(struct http_req *r, const struct artifact *a, int status);
/* May add properties to r->matrix (set on the deployed artifact). */
bool http_plug_before_upload(struct http_req *r);
/* The same for an upload whose size is known and is not the request's
 * Content-Length (npm publish: the tarball inside the document); added
 * properties are ignored there. */
bool http_plug_before_upload_sized(struct http_req *r, int64_t size);
void http_plug_after_upload(struct http_req *r, const struct artifact *a);
bool http_plug_before_delete(struct http_req *r);
void http_plug_after_delete(struct http_req *r);
bool http_plug_before_copymove(struct http_req *r, bool move, const char *dst_repo,
                               const char *dst_path);
void http_plug_after_copymove(struct http_req *r, bool move, const char *dst_repo,
                              const char *dst_path);
/* action "set" (set: the new values) or "delete" (set: the keys). */
bool http_plug_before_props(struct http_req *r, const char *action, const struct props_set *set);
void http_plug_after_props(struct http_req *r, const char *action, const struct props_set *set);

#endif
