/*
 * h_props.c - /api/storage/{repo}/{path}?properties: read, set and delete
 * item properties in Artifactory's shapes (docs/api.md).
 */
#include "http/path.h"
#include "http/h_plugins.h"
#include "http/req.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "repo/props.h"
#include "repo/security.h"

#include <microhttpd.h>
#include <string.h>

#define PROPS_SYNTAX                                                                               \
    "expected key=value[,value...][|key=value...]; keys: 1-255 bytes without spaces or "           \
    ")(}{][*+^$\\/~`!@#%&<>;=,|; values: at most 1024 bytes; a backslash escapes the next "        \
    "character"

/*
 * The decoded ?properties value into *out ("" when given without '=').
 * false: a 400 answer was sent (a bad escape or invalid UTF-8).
 */
static bool props__param(struct http_req *r, const char **out)
{
    const char *raw = NULL;
    size_t rawlen = 0;
    *out = "";
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, "properties",
                                      strlen("properties"), &raw, &rawlen) != MHD_YES ||
        !raw)
        return true;
    char *dec = gr_arena_alloc(r->arena, rawlen + 1);
    if (http_query_decode(raw, rawlen, dec, rawlen + 1) != GR_OK ||
        !http_utf8_valid(dec, strlen(dec))) {
        http_error(r, 400, "malformed properties parameter: bad percent escape or invalid UTF-8");
        return false;
    }
    *out = dec;
    return true;
}

/* ?recursive: absent, "1" or "true" recurse; "0" or "false" do not. false: 400 sent. */
static bool props__recursive(struct http_req *r, bool *rec)
{
    const char *v = http_query(r, "recursive");
    *rec = true;
    if (!v || !*v || !strcmp(v, "1") || !strcmp(v, "true"))
        return true;
    if (!strcmp(v, "0") || !strcmp(v, "false")) {
        *rec = false;
        return true;
    }
    http_error(r, 400, "recursive must be 0 or 1");
    return false;
}

/* <base>/api/storage/<repo>[/<path>] */
static const char *props__uri(struct http_req *r)
{
    struct gr_sbuf enc = GR_SBUF_INIT;
    gr_sbuf_add_urlpath(&enc, r->path);
    const char *uri = gr_arena_printf(r->arena, "%s/api/storage/%s%s%s", http_base_url(r),
                                      r->repo_key, *r->path ? "/" : "", enc.buf);
    gr_sbuf_release(&enc);
    return uri;
}

static void props__not_found(struct http_req *r)
{
    if (*r->path)
        http_error(r, 404, "item '%s/%s' not found", r->repo_key, r->path);
    else
        http_error(r, 404, "repository '%s' not found", r->repo_key);
}

static void props__get(struct http_req *r, const char *spec)
{
    struct props_set keys, set;
    if (props_parse_keys(r->arena, spec, &keys) != GR_OK) {
        http_error(r, 400, "malformed properties parameter: expected key[,key...]");
        return;
    }
    int rc = props_get(r->ctx, r->arena, r->repo_key, r->path, &keys, &set);
    if (rc == GR_ENOTFOUND) {
        props__not_found(r);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    if (set.n == 0) {
        http_error(r, 404, "No properties could be found.");
        return;
    }
    json_t *props = json_object();
    for (int i = 0; i < set.n; i++) {
        json_t *vals = json_array();
        for (int j = 0; j < set.e[i].nvalues; j++)
            json_array_append_new(vals, json_string(set.e[i].values[j]));
        json_object_set_new(props, set.e[i].key, vals);
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "properties", props);
    json_object_set_new(doc, "uri", json_string(props__uri(r)));
    http_json(r, 200, doc);
}

static void props__put(struct http_req *r, const char *spec)
{
    struct props_set set;
    bool rec;
    if (props_parse_list(r->arena, spec, &set) != GR_OK) {
        http_error(r, 400, "malformed properties parameter: %s", PROPS_SYNTAX);
        return;
    }
    if (set.n == 0) {
        http_error(r, 400, "no properties given: %s", PROPS_SYNTAX);
        return;
    }
    if (!props__recursive(r, &rec) || (rec && !http_need_tree(r, SEC_ANNOTATE)) ||
        !http_plug_before_props(r, "set", &set))
        return;
    int rc = props_set_item(r->ctx, r->repo_key, r->path, &set, rec);
    if (rc == GR_ENOTFOUND)
        props__not_found(r);
    else if (rc)
        http_error_code(r, rc, NULL);
    else
        http_text(r, 204, NULL, "", 0);
    if (rc == GR_OK)
        http_plug_after_props(r, "set", &set);
}

static void props__delete(struct http_req *r, const char *spec)
{
    struct props_set keys;
    bool rec;
    if (props_parse_keys(r->arena, spec, &keys) != GR_OK) {
        http_error(r, 400, "malformed properties parameter: expected key[,key...]");
        return;
    }
    if (keys.n == 0) {
        http_error(r, 400, "no property keys given: expected properties=key[,key...]");
        return;
    }
    if (!props__recursive(r, &rec) || (rec && !http_need_tree(r, SEC_ANNOTATE)) ||
        !http_plug_before_props(r, "delete", &keys))
        return;
    int rc = props_delete_keys(r->ctx, r->repo_key, r->path, &keys, rec);
    if (rc == GR_ENOTFOUND)
        props__not_found(r);
    else if (rc)
        http_error_code(r, rc, NULL);
    else
        http_text(r, 204, NULL, "", 0);
    if (rc == GR_OK)
        http_plug_after_props(r, "delete", &keys);
}

void h_properties(struct http_req *r)
{
    bool get = r->method == HM_GET || r->method == HM_HEAD;
    if (!get && r->method != HM_PUT && r->method != HM_DELETE) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    if (get ? !http_need_read(r) : !http_need_annotate(r))
        return;
    struct repo_config cfg;
    int rc = repo_get(r->ctx, r->arena, r->repo_key, &cfg);
    if (rc == GR_ENOTFOUND) {
        http_error(r, 404, "repository '%s' not found", r->repo_key);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    const char *spec;
    if (!props__param(r, &spec))
        return;
    if (get)
        props__get(r, spec);
    else if (r->method == HM_PUT)
        props__put(r, spec);
    else
        props__delete(r, spec);
}
