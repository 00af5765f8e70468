/**
 * @file bus.h
 * @brief zmq-bus: authenticated messages between the nodes of a granary
 * cluster, over ZeroMQ.
 *
 * Two kinds of traffic (docs/cluster.md, "Caches that are never stale",
 * points 2, 3 and 5):
 *
 * - requests that every target must acknowledge: bus_request_all() sends
 *   one (e.g. "invalidate these cache keys") to every current peer and
 *   waits, up to a timeout, for each peer's ack. A peer acks only after its
 *   on_message handler has returned 0, so an ack means "done", and the
 *   handler's reply bytes travel back with it. Peers that did not ack are
 *   listed in the result; the caller (the cluster module) then waits out
 *   their lease instead.
 * - events, fire and forget: bus_broadcast() (e.g. "plugins reloaded",
 *   heartbeats).
 *
 * Every message carries the sender's id and incarnation (a random number
 * chosen by each bus_open()), a sequence number per sender and receiver, a
 * timestamp, and an HMAC-SHA256 under the cluster join key computed by a
 * function the caller hands in (this library does not link a crypto
 * library). A receiver drops, and counts in bus_stats(), any message that
 * is malformed, of an unknown wire version, not authentic, replayed, meant
 * for another node, or stamped too far from its own clock. When a sequence
 * number jumps (messages from that sender were lost: a full queue, a
 * dropped connection) the receiver's on_gap callback runs before the
 * message is handled; the daemon then flushes its cache.
 *
 * This header is the whole contract; zmq-bus/README.md explains the wire
 * format and the design. It is the only module that includes <zmq.h>, and
 * it includes no daemon header.
 *
 * Caveats:
 *
 * - Threads: bus_open() starts one thread, the bus thread, which owns every
 *   ZeroMQ socket of the bus and runs every callback. All other functions
 *   may be called from any thread, concurrently, except bus_close(). They
 *   hand work to the bus thread through a queue and, for requests, wait on
 *   a condition variable of their own: no thread is created per call, and
 *   nothing busy-waits. Callbacks run one at a time on the bus thread and
 *   must be quick: while one runs, the bus neither receives nor sends, so
 *   requests of other threads may time out. A callback may call
 *   bus_broadcast(), bus_send_raw(), bus_set_peers() and bus_stats(), but
 *   not bus_request_all()/bus_request_one() (BUS_EDEADLK) nor bus_close().
 *
 * - Overflow: queues are bounded and nothing blocks on a slow peer. Every
 *   send to a peer is made without waiting (ZMQ_DONTWAIT). If the peer's
 *   outgoing queue holds send_hwm messages already, or the peer is not
 *   connected at that moment (ZMQ_IMMEDIATE: nothing is queued for a peer
 *   that is down), the message is dropped and counted in
 *   bus_stats().dropped_overflow. Its sequence number is used all the
 *   same, so the receiver sees a gap at its next message and flushes. A
 *   request target that could not be sent to is reported at once with
 *   BUS_EUNREACH (no waiting for the timeout). Acks are dropped the same
 *   way (the requester then times out). bus_broadcast() and bus_send_raw()
 *   fail with BUS_EAGAIN when max_queued commands already wait for the bus
 *   thread.
 *
 * - Gaps and restarts: sequence numbers start at 1 for each incarnation
 *   and each receiver. The first message a receiver sees from an
 *   incarnation is a gap unless its sequence number is 1, so a receiver
 *   that has just started reports a gap from every sender that was already
 *   running (harmless: a starting node drops its cache anyway). A sender
 *   that restarts shows up with a new incarnation starting at 1: tracking
 *   is reset and no gap is reported. Messages from an incarnation that was
 *   replaced are dropped as replays.
 *
 * - Clocks: timestamps are wall-clock milliseconds; messages more than
 *   max_skew_ms away from the receiver's clock are dropped (dropped_skew).
 *   Run NTP on every node.
 *
 * - Trust: every holder of the join key is a full member: it can send
 *   requests, events and acks under any node id. The key does not encrypt;
 *   payloads travel in clear text on the LAN.
 *
 * - fork: do not use a bus in a child after fork(); open a new one there.
 *
 * - Error codes are the negative values of enum bus_err; no function sets
 *   errno as part of its contract.
 */
#ifndef BUS_H
#define BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define BUS_MUST_USE __attribute__((warn_unused_result))
#else
#define BUS_MUST_USE
#endif

/** The wire format version this library writes and accepts. */
#define BUS_WIRE_VERSION 1
/** Longest node id in bytes (ids are NUL-free byte strings, 1..64 bytes). */
#define BUS_MAX_ID 64
/** Shortest join key accepted by bus_open(), in bytes. */
#define BUS_MIN_KEY 16
/** Bytes of the HMAC-SHA256 that ends every message. */
#define BUS_MAC_LEN 32
/** Fixed bytes of a message besides the two ids and the payload. */
#define BUS_MSG_OVERHEAD 82
/** Longest endpoint string, in bytes. */
#define BUS_MAX_ENDPOINT 255

/** Return codes. 0 is success; everything else is negative. */
enum bus_err {
    BUS_OK = 0,
    BUS_EINVAL = -1,      /**< bad argument or option */
    BUS_ENOMEM = -2,      /**< out of memory */
    BUS_EIO = -3,         /**< ZeroMQ or system failure, address in use */
    BUS_EINCOMPLETE = -4, /**< a request: at least one target did not ack */
    BUS_ETIMEDOUT = -5,   /**< a target: no answer before the timeout */
    BUS_ENACK = -6,       /**< a target: its handler refused (nack) */
    BUS_EUNREACH = -7,    /**< a target: not sent (queue full, not connected) */
    BUS_ENOPEER = -8,     /**< no such peer */
    BUS_EAGAIN = -9,      /**< the command queue is full; retry later */
    BUS_EDEADLK = -10,    /**< a request made from a callback (the bus thread) */
    BUS_EVERSION = -11,   /**< decode: unknown wire version */
    BUS_EMALFORMED = -12, /**< decode: not a well-formed message */
    BUS_EFORGED = -13,    /**< decode: the HMAC does not verify */
    BUS_ERANGE = -14,     /**< encode: buffer too small; payload too large */
};

/** @brief Short lowercase text for a bus_err code.
 *
 * @param[in] err One of enum bus_err (anything else gives "unknown error").
 * @return Static storage, never NULL.
 */
const char *bus_strerror(int err);

/* ---- messages and the wire format ------------------------------------- */

/** What a message is; byte 1 on the wire. */
enum bus_kind {
    BUS_REQUEST = 1, /**< must be answered with BUS_ACK or BUS_NACK */
    BUS_ACK = 2,     /**< the request's handler returned 0 */
    BUS_NACK = 3,    /**< the request's handler returned nonzero */
    BUS_EVENT = 4,   /**< fire and forget */
};

/** @brief HMAC-SHA256 of data under key, the raw 32 bytes into out.
 *
 * Supplied by the caller (the daemon passes cr_hmac_sha256()). Called on
 * the bus thread for every message sent and received, and by
 * bus_msg_encode()/bus_msg_decode() on the caller's thread. Must be
 * thread-safe and must not fail.
 */
typedef void bus_hmac_fn(const void *key, size_t klen, const void *data, size_t len,
                         unsigned char out[BUS_MAC_LEN]);

/** One message, decoded (see the README for the byte layout). */
struct bus_msg {
    uint8_t kind;                   /**< enum bus_kind */
    uint8_t type;                   /**< application-defined */
    char sender[BUS_MAX_ID + 1];    /**< NUL-terminated node id */
    char recipient[BUS_MAX_ID + 1]; /**< NUL-terminated node id */
    uint64_t incarnation;           /**< the sender's, nonzero */
    uint64_t seq;                   /**< per sender incarnation and receiver, from 1 */
    uint64_t id;                    /**< the request's id (acks: the one acked), nonzero */
    uint64_t ref_incarnation;       /**< acks: the requester's incarnation; else 0 */
    uint64_t time_ms;               /**< sender's wall clock, ms since the epoch */
    const void *payload;            /**< len bytes; see the functions for lifetime */
    size_t len;                     /**< payload length, at most UINT32_MAX */
};

/** @brief Encoded size of a message.
 *
 * @param[in] sender_len Sender id length.
 * @param[in] recipient_len Recipient id length.
 * @param[in] payload_len Payload length.
 * @return BUS_MSG_OVERHEAD + the three lengths.
 */
size_t bus_msg_size(size_t sender_len, size_t recipient_len, size_t payload_len);

/** @brief Encode a message and append its HMAC.
 *
 * Exposed for unit tests and tools; the bus encodes its own messages.
 *
 * @param[in] m The message. kind 1..4; sender and recipient 1..BUS_MAX_ID
 *   bytes, NUL-terminated; incarnation, seq and id nonzero;
 *   ref_incarnation nonzero for BUS_ACK/BUS_NACK and 0 otherwise; payload
 *   may be NULL if len is 0.
 * @param[in] hmac The HMAC-SHA256 function.
 * @param[in] key The join key.
 * @param[in] klen Key length, > 0.
 * @param[out] buf Where the bytes go; may be NULL if bufsz is 0.
 * @param[in] bufsz Size of buf.
 * @param[out] outlen The encoded size, on BUS_OK and on BUS_ERANGE.
 * @return BUS_OK, or:
 *   - BUS_EINVAL: a NULL argument, a field out of range (see m); buf
 *     untouched;
 *   - BUS_ERANGE: bufsz < *outlen (buf untouched), or len > UINT32_MAX.
 */
BUS_MUST_USE int bus_msg_encode(const struct bus_msg *m, bus_hmac_fn *hmac, const void *key,
                                size_t klen, void *buf, size_t bufsz, size_t *outlen);

/** @brief Parse a message and verify its HMAC.
 *
 * Never reads outside buf[0..len), whatever the bytes. The checks, in
 * order: version, structure (every field in range, lengths add up to
 * exactly len), HMAC (compared in constant time).
 *
 * @param[in] buf The bytes; may be NULL if len is 0.
 * @param[in] len Their number.
 * @param[in] hmac The HMAC-SHA256 function.
 * @param[in] key The join key.
 * @param[in] klen Key length, > 0.
 * @param[out] m Filled on BUS_OK; unspecified otherwise. m->payload points
 *   into buf.
 * @return BUS_OK, or:
 *   - BUS_EVERSION: the first byte is not BUS_WIRE_VERSION;
 *   - BUS_EMALFORMED: empty, truncated, trailing bytes, or a field out of
 *     range (the same rules as bus_msg_encode(), and ids with a NUL byte);
 *   - BUS_EFORGED: well-formed, but the HMAC does not verify under key;
 *   - BUS_EINVAL: m, hmac or key NULL, klen 0, buf NULL with len > 0.
 */
BUS_MUST_USE int bus_msg_decode(const void *buf, size_t len, bus_hmac_fn *hmac, const void *key,
                                size_t klen, struct bus_msg *m);

/* ---- the bus ------------------------------------------------------------ */

/** An open bus. Opaque; see Caveats for threads. */
struct bus;

/** Calls up into the daemon. Only hmac is required. */
struct bus_callbacks {
    /** HMAC-SHA256; required. */
    bus_hmac_fn *hmac;
    /**
     * Runs on the bus thread for each accepted request or event, after
     * on_gap if there was a gap. m and m->payload are valid during the
     * call only.
     *
     * reply and reply_len always point to NULL and 0. For a BUS_REQUEST
     * the handler may set *reply to a malloc()ed buffer of *reply_len
     * bytes, which the bus sends back with the answer and then frees (even
     * if it cannot be sent). Return 0 to ack (the work is done), nonzero to
     * nack. A reply too large for one message (see max_msg_size) turns the
     * ack into a nack without payload.
     *
     * For a BUS_EVENT (m->kind) the result is ignored, and a reply set
     * anyway is freed unsent.
     *
     * NULL: requests are acked with no payload, events are ignored.
     */
    int (*on_message)(void *arg, const struct bus_msg *m, void **reply, size_t *reply_len);
    /**
     * Runs on the bus thread when messages from sender were lost (see
     * Caveats, "Gaps"), before the message that revealed the gap is
     * handled. sender is valid during the call only. NULL: gaps are only
     * counted.
     */
    void (*on_gap)(void *arg, const char *sender);
    /** Passed to on_message and on_gap. */
    void *arg;
};

/** Settings for bus_open(). Zero means the default for every number. */
struct bus_options {
    /** This node's id, 1..BUS_MAX_ID bytes; required. */
    const char *node_id;
    /**
     * Where to listen for peers: a ZeroMQ endpoint, "tcp://<ip or
     * interface>:<port>"; port "*" picks a free one (see bus_endpoint()).
     * Required.
     */
    const char *listen_endpoint;
    /** The cluster join key, at least BUS_MIN_KEY bytes; copied. Every
     * message this bus sends is signed with it. */
    const void *key;
    size_t key_len;
    /**
     * Optional second key (NULL: none), at least BUS_MIN_KEY bytes; copied.
     * Received messages that do not verify under key are tried under it,
     * so that a join key can be rotated without downtime (the cluster
     * README: every node first accepts the new key, then signs with it,
     * then drops the old one). Messages accepted under it are counted in
     * bus_stats().accepted_next_key.
     */
    const void *next_key;
    size_t next_key_len;
    /** Messages queued per peer and direction before sends drop (1000). */
    int send_hwm;
    /** Messages buffered per peer on receipt (1000). */
    int recv_hwm;
    /** Largest accepted clock difference, ms (60000). */
    int max_skew_ms;
    /** Largest message on the wire, bytes (4 MiB; at least 4 KiB). A peer
     * sending a larger one is disconnected by ZeroMQ. */
    size_t max_msg_size;
    /** Interval between reconnection attempts to a peer, ms (100). */
    int reconnect_ivl_ms;
    /** ZMTP heartbeat interval, ms (1000); a connection silent for three
     * intervals is closed. -1 turns heartbeats off. */
    int heartbeat_ivl_ms;
    /** Events and raw sends that may wait for the bus thread (4096). */
    size_t max_queued;
    /** Allow IPv6 endpoints (false: IPv4 only). */
    bool ipv6;
};

/** A peer for bus_set_peers(). Both strings are copied. */
struct bus_peer {
    const char *id;       /**< 1..BUS_MAX_ID bytes */
    const char *endpoint; /**< its listen endpoint, "tcp://host:port" */
};

/** One target of a request, in a struct bus_ack_result. */
struct bus_ack {
    char peer[BUS_MAX_ID + 1]; /**< the target's id */
    /**
     * BUS_OK (acked), BUS_ENACK (its handler refused), BUS_ETIMEDOUT (no
     * answer in time: it may or may not have handled the request), or
     * BUS_EUNREACH (not sent: its queue was full, it was not connected, or
     * it was removed meanwhile).
     */
    int status;
    void *reply;      /**< the reply payload of an ack or nack, or NULL */
    size_t reply_len; /**< its length */
};

/** What a request learned; free with bus_ack_result_free(). */
struct bus_ack_result {
    size_t n;             /**< targets */
    size_t n_acked;       /**< targets with status BUS_OK */
    struct bus_ack *acks; /**< n entries, in peer order; NULL if n is 0 */
};

/** Counters since bus_open(); each only grows. */
struct bus_stats {
    uint64_t sent;              /**< messages handed to ZeroMQ (one per target) */
    uint64_t received;          /**< messages accepted (requests, events, acks) */
    uint64_t acked;             /**< request targets that acked */
    uint64_t nacked;            /**< request targets that nacked */
    uint64_t timeouts;          /**< request targets with no answer in time */
    uint64_t acks_late;         /**< authentic acks for no waiting request */
    uint64_t dropped_malformed; /**< not a well-formed message, or wrong kind */
    uint64_t dropped_version;   /**< unknown wire version */
    uint64_t dropped_forged;    /**< HMAC did not verify */
    uint64_t dropped_replayed;  /**< seq not above the last seen, replaced
                                     incarnation, other recipient, ack for
                                     another incarnation of this node */
    uint64_t dropped_skew;      /**< timestamp outside max_skew_ms */
    uint64_t dropped_overflow;  /**< not queued: queue full or not connected */
    uint64_t gaps;              /**< gaps seen (on_gap calls) */
    uint64_t accepted_next_key; /**< accepted under next_key (a rotation) */
};

/** @brief Open a bus: bind the listening socket and start the bus thread.
 *
 * Chooses a random nonzero incarnation (from getrandom(); if the kernel's
 * pool is not ready yet, from clocks and the pid: it must be new, not
 * secret). The bus starts with no peers.
 *
 * @param[in] o Options; o and its strings and key are only read during
 *   the call.
 * @param[in] cb Callbacks; copied. cb->arg must stay valid until
 *   bus_close().
 * @param[out] out The new bus on success; untouched on failure.
 * @return BUS_OK, or:
 *   - BUS_EINVAL: o, cb, out or cb->hmac NULL, node_id empty or too long,
 *     key (or a next_key) shorter than BUS_MIN_KEY, listen_endpoint NULL, too long or not
 *     a valid ZeroMQ endpoint, a negative number, max_msg_size too small;
 *   - BUS_EIO: the address is in use or cannot be bound, eventfd, ZeroMQ
 *     or thread creation failed;
 *   - BUS_ENOMEM: out of memory.
 * @note Close with bus_close().
 */
BUS_MUST_USE int bus_open(const struct bus_options *o, const struct bus_callbacks *cb,
                          struct bus **out);

/** @brief Stop the bus thread, close every socket and free the bus.
 *
 * Commands already queued are carried out first; messages still queued in
 * ZeroMQ are discarded (linger 0), so a last broadcast may not leave.
 *
 * @param[in] b A bus from bus_open(), or NULL (does nothing).
 * @note No other call on b may be running or start, and it must not be
 *   called from a callback. b is invalid afterwards.
 */
void bus_close(struct bus *b);

/** @brief The endpoint the bus listens on, with the port bound.
 *
 * @param[in] b The bus.
 * @return A NUL-terminated string owned by b, valid until bus_close(),
 *   e.g. "tcp://127.0.0.1:41234".
 */
const char *bus_endpoint(const struct bus *b);

/** @brief This bus's incarnation (random, nonzero, fixed at bus_open()).
 *
 * @param[in] b The bus.
 */
uint64_t bus_incarnation(const struct bus *b);

/** @brief Replace the set of peers.
 *
 * New peers, and peers whose endpoint changed, get a new outgoing
 * connection (made in the background: ZeroMQ connects and reconnects
 * every reconnect_ivl_ms); peers no longer listed are disconnected.
 * Requests and broadcasts made after this call returns target the new
 * set. Sequence numbers towards a peer continue across removal and
 * re-addition. An entry whose id is this node's own is ignored.
 *
 * @param[in] b The bus.
 * @param[in] peers n peers; only read during the call. May be NULL if n
 *   is 0 (no peers).
 * @param[in] n Their number.
 * Until a new connection is up (a few ms on a LAN), sends to that peer
 * are dropped (ZMQ_IMMEDIATE): a request reports it as BUS_EUNREACH,
 * which the caller treats like any peer that did not ack.
 *
 * @return BUS_OK, or:
 *   - BUS_EINVAL: b NULL, peers NULL with n > 0, an id or endpoint NULL,
 *     empty or too long, two entries with the same id, an endpoint ZeroMQ
 *     rejects; the set is unchanged;
 *   - BUS_EIO: ZeroMQ could not create a socket; the set is unchanged;
 *   - BUS_ENOMEM: out of memory; the set is unchanged.
 */
BUS_MUST_USE int bus_set_peers(struct bus *b, const struct bus_peer *peers, size_t n);

/** @brief Send a request to every current peer and wait for their acks.
 *
 * Returns when every target has answered or was found unreachable, or
 * when timeout_ms have passed, whichever comes first. Targets that did
 * not answer in time get BUS_ETIMEDOUT; their acks, if they come later,
 * are counted in acks_late and discarded. A target may have handled the
 * request even if it is not listed as acked.
 *
 * @param[in] b The bus.
 * @param[in] type Application-defined message type.
 * @param[in] payload len bytes, copied before the call returns; may be
 *   NULL if len is 0.
 * @param[in] len Payload length; the message must fit max_msg_size.
 * @param[in] timeout_ms Longest wait in ms, >= 0, measured on the
 *   monotonic clock from the call.
 * @param[out] res Filled on BUS_OK and BUS_EINCOMPLETE, with one entry per
 *   target; zeroed on every other result. Free it with
 *   bus_ack_result_free() in both cases.
 * @return BUS_OK: every target acked (also when there are no peers), or:
 *   - BUS_EINCOMPLETE: at least one target did not ack; res says which
 *     and why;
 *   - BUS_EINVAL: b or res NULL, payload NULL with len > 0, timeout_ms < 0;
 *   - BUS_ERANGE: the payload does not fit one message;
 *   - BUS_EDEADLK: called from a callback on the bus thread;
 *   - BUS_ENOMEM: out of memory.
 * @note Thread-safe; any number of threads may wait at once.
 */
BUS_MUST_USE int bus_request_all(struct bus *b, uint8_t type, const void *payload, size_t len,
                                 int timeout_ms, struct bus_ack_result *res);

/** @brief Send a request to one current peer and wait for its ack.
 *
 * As bus_request_all() with a single target.
 *
 * @param[in] b The bus.
 * @param[in] peer The peer's id.
 * @param[in] type Application-defined message type.
 * @param[in] payload len bytes, copied; may be NULL if len is 0.
 * @param[in] len Payload length.
 * @param[in] timeout_ms Longest wait in ms, >= 0.
 * @param[out] res As bus_request_all() (n is 1 on BUS_OK/BUS_EINCOMPLETE).
 * @return As bus_request_all(), plus BUS_ENOPEER: peer is not in the
 *   current set (res zeroed); BUS_EINVAL also when peer is NULL.
 */
BUS_MUST_USE int bus_request_one(struct bus *b, const char *peer, uint8_t type, const void *payload,
                                 size_t len, int timeout_ms, struct bus_ack_result *res);

/** @brief Free the replies and entries of a request result and zero it.
 *
 * @param[in] res A result filled by bus_request_all()/bus_request_one(),
 *   a zeroed one, or NULL (does nothing).
 */
void bus_ack_result_free(struct bus_ack_result *res);

/** @brief Send an event to every current peer; do not wait.
 *
 * Queued for the bus thread; each peer's copy is then dropped and counted
 * in dropped_overflow if it cannot be queued (see Caveats). Receivers run
 * on_message with m->kind == BUS_EVENT.
 *
 * @param[in] b The bus.
 * @param[in] type Application-defined message type.
 * @param[in] payload len bytes, copied; may be NULL if len is 0.
 * @param[in] len Payload length.
 * @return BUS_OK once queued, or:
 *   - BUS_EINVAL: b NULL, payload NULL with len > 0;
 *   - BUS_ERANGE: the payload does not fit one message;
 *   - BUS_EAGAIN: max_queued commands are waiting; nothing queued;
 *   - BUS_ENOMEM: out of memory.
 */
BUS_MUST_USE int bus_broadcast(struct bus *b, uint8_t type, const void *payload, size_t len);

/** @brief Send bytes as they are to one peer; for tests and tools.
 *
 * The bytes go out on the connection to peer without being encoded,
 * signed, or given a sequence number: receivers check them like any
 * message. Used to replay or forge traffic in tests.
 *
 * @param[in] b The bus.
 * @param[in] peer A current peer's id.
 * @param[in] data len bytes, copied; may be NULL if len is 0.
 * @param[in] len Their number.
 * @return BUS_OK once queued, or BUS_EINVAL (b or peer NULL, data NULL
 *   with len > 0), BUS_ENOPEER (not a current peer), BUS_ERANGE (len >
 *   max_msg_size), BUS_EAGAIN, BUS_ENOMEM as bus_broadcast(). A send the
 *   bus thread then cannot queue is counted in dropped_overflow.
 */
BUS_MUST_USE int bus_send_raw(struct bus *b, const char *peer, const void *data, size_t len);

/** @brief Read the counters.
 *
 * @param[in] b The bus (NULL: does nothing).
 * @param[out] st The counters; each is read atomically, not all together.
 *   Counters of an answer are bumped before the waiting request returns.
 */
void bus_stats(struct bus *b, struct bus_stats *st);

#endif
