/*
 * search.h - /api/search/... as the core (h_search.c) and formats answer
 * it: the common checks, ?repos=, and the result document in Artifactory's
 * shape ({"results":[...]}, X-Result-Detail, X-Result-Limit-Reached).
 * A format that brings its own search kind (Maven's gavc) parses its
 * parameters, runs its query and answers through these.
 */
#ifndef HTTP_SEARCH_H
#define HTTP_SEARCH_H

#include "repo/search.h"

#include <stdbool.h>

struct http_req;

struct http_search {
    struct search_query q;
    bool info, props;    /* X-Result-Detail */
    bool created, modif; /* dates: fields added to each result */
    bool empty_is_404;   /* Artifactory answers 404 when nothing matched (dates) */
};

/* A search request: GET/HEAD, read access, X-Result-Detail, the default
 * limit. false: an answer (405, 401, 403) was sent. */
bool http_search_begin(struct http_req *r, struct http_search *s);
/* ?repos=a,b into q (each must exist). false: an answer (400, 404) was sent. */
bool http_search_repos(struct http_req *r, struct search_query *q);
/* Answer the hits the caller may read (the others are left out). */
void http_search_answer(struct http_req *r, const struct http_search *s,
                        const struct search_hit *hits, int n, bool truncated);

#endif
