/*
 * blobsend.h - responses streaming a binary, verified as they go
 * (blobsend.c): the download path's and the cluster port's
 * (storage/cluster_api.c).
 */
#ifndef HTTP_BLOBSEND_H
#define HTTP_BLOBSEND_H

#include "http/req.h"

struct bs_blob;
struct storage_remote;

/*
 * Check the block holding byte `first` before a response starts, so that a
 * bad copy can still be replaced by a peer's. 0, or -1 (the copy failed and
 * was quarantined, or could not be read).
 */
int http_blob_check_first(struct http_req *r, struct bs_blob *blob, const char *sha256,
                          uint64_t first, uint64_t len);

/* len bytes from first of this node's copy, each block verified before it
 * is sent; takes blob. NULL: out of memory (blob closed). */
struct MHD_Response *http_blob_local_response(struct http_req *r, struct bs_blob *blob,
                                              const char *sha256, uint64_t first, uint64_t len);

/* len bytes streamed from a peer; takes rem. NULL: out of memory (rem closed). */
struct MHD_Response *http_blob_remote_response(struct http_req *r, struct storage_remote *rem,
                                               uint64_t len);

struct remote_flight;
/*
 * The body of a remote fetch this node runs, as it arrives
 * (remote/remote.h): len bytes, or UINT64_MAX when the upstream did not
 * say (then chunked). Its last part comes only once the whole body checked
 * out; a fetch that fails cuts the answer. Takes f. NULL: out of memory (f
 * released).
 */
struct MHD_Response *http_flight_response(struct http_req *r, struct remote_flight *f,
                                          uint64_t len);

#endif
