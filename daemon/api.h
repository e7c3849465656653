/*
 * api — the query socket: an HTTP/1.1 + JSON server (libmicrohttpd) on a Unix socket and, when
 * configured, on TCP with a bearer token. It parses and checks requests (apiwire), calls the
 * daemon through a backend interface, and sends JSON, raw snapshot bytes, incident bundles
 * (tar.gz, streamed) and Prometheus metrics. The routes and shapes are include/collectord/api.h.
 *
 * Threads: libmicrohttpd runs one thread per connection (plus a listening thread per socket).
 * Every backend function is called on those threads, possibly concurrently, and may block on
 * SQLite (read-only connections) but must never wait for the libuv loop thread except through
 * struct cd_api_call, whose wait has a deadline; capture hands its work to the loop and returns.
 * Owns: the listening sockets it created (and the Unix socket file), the MHD daemons, and the
 * per-request state. It does not own the backend.
 */
#ifndef CD_API_H
#define CD_API_H

#include "apiwire.h"
#include "clock.h"
#include "err.h"
#include "log.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- raw bytes ---------------------------------------------------------------------------- */

/*
 * A snapshot's raw bytes as the backend hands them over: its metadata and a sequential reader,
 * so a 64 MiB profile is streamed from SQLite (sqlite3_blob_read, decompressing if it was stored
 * recompressed) instead of being held whole. Owned by whoever holds it; release with
 * cd_api_blob_release().
 */
struct cd_api_blob {
    json_t *meta;  /* a SNAPSHOT object (api.h), owned */
    uint64_t size; /* exactly how many bytes read() produces in total (the raw size) */
    /* Reads up to n bytes at the current position: bytes read, 0 only at the end, or a
     * negative errno. */
    ssize_t (*read)(void *rctx, uint8_t *buf, size_t n);
    void (*close)(void *rctx); /* may be NULL */
    void *rctx;
};

void cd_api_blob_release(struct cd_api_blob *b);
/* A blob over bytes in memory; takes meta and data (malloc'd) on success and on failure. */
int cd_api_blob_from_memory(struct cd_api_blob *b, json_t *meta, uint8_t *data, size_t len,
                            struct cd_err *err);

/* ---- asynchronous calls (capture) ----------------------------------------------------------- */

/*
 * A reference-counted completion: the server thread waits on it with a deadline; the backend
 * completes it from any thread (typically the loop, after the scrapes finished). Whoever holds a
 * reference may use it; the last unref frees it, so a completion that arrives after the server
 * gave up waiting is harmless.
 */
struct cd_api_call;

struct cd_api_call *cd_api_call_new(void); /* one reference; NULL on ENOMEM */
struct cd_api_call *cd_api_call_ref(struct cd_api_call *c);
void cd_api_call_unref(struct cd_api_call *c); /* NULL ok */
/* The first completion wins; result is taken (freed when late). rc < 0 with msg for errors
 * (rc maps to a status as in api.h, e.g. -ENOENT 404, -EAGAIN 429). Never blocks. */
void cd_api_call_complete(struct cd_api_call *c, int rc, json_t *result, const char *msg);
/* True once the waiting side gave up (deadline, shutdown): the backend may skip work. */
bool cd_api_call_abandoned(struct cd_api_call *c);
/* Waits until completed or deadline (monotonic ms) or cancelled: 0 with *out (the result,
 * yours), the completion's rc and message, -ETIMEDOUT, or -ECANCELED. */
int cd_api_call_wait(struct cd_api_call *c, int64_t deadline_mono_ms, json_t **out,
                     struct cd_err *err);
/* Wakes a waiter with -ECANCELED (shutdown). */
void cd_api_call_cancel(struct cd_api_call *c);

/* ---- the backend ---------------------------------------------------------------------------- */

/*
 * What the daemon provides. Every function returns 0 and sets *out (a new reference, the shape
 * named in include/collectord/api.h), or a negative errno with a message in err, mapped to a
 * status: -EINVAL 400, -ENOENT/-ENODATA 404, -EEXIST/-EALREADY 409, -EFBIG 413, -EAGAIN 429,
 * -ENOSYS 501, -EBUSY/-ESHUTDOWN 503, -ETIMEDOUT 504, anything else 500. A NULL function makes
 * its route answer 501. Called on server threads, concurrently: must be thread-safe.
 */
struct cd_api_backend {
    void *ctx;
    /* GET /status: STATUS without "query" (the server adds it, and version/pid if absent). */
    int (*status)(void *ctx, json_t **out, struct cd_err *err);
    /* GET /targets: {"targets": [TARGET...]} filtered by q. */
    int (*targets)(void *ctx, const struct cd_apiwire_targets *q, json_t **out, struct cd_err *err);
    /* GET /snapshots: {"snapshots": [SNAPSHOT...]}: at most q->limit rows (the server asks one
     * more than the page to know whether there is a next page), newest first by (time_unix_ms,
     * id) descending, strictly after (cursor_time_ms, cursor_id) in that order when has_cursor.
     * "next_cursor" is the server's. */
    int (*snapshots)(void *ctx, const struct cd_apiwire_snapshots *q, json_t **out,
                     struct cd_err *err);
    /* GET /snapshots/{id}: SNAPSHOT DETAIL. -ENOENT when unknown. */
    int (*snapshot)(void *ctx, int64_t id, json_t **out, struct cd_err *err);
    /* GET /snapshots/{id}/raw and bundles: the bytes. -ENOENT unknown id, -ENODATA no bytes. */
    int (*raw_open)(void *ctx, int64_t id, struct cd_api_blob *out, struct cd_err *err);
    /* GET /series: {"name", "series": [...], "truncated"} with at most q->limit points. */
    int (*series)(void *ctx, const struct cd_apiwire_series *q, json_t **out, struct cd_err *err);
    /*
     * POST /capture. Must not block: take a reference to call (cd_api_call_ref), hand the work
     * to the loop (uv_async_send) and return 0; later, from any thread, complete the call once
     * with the CAPTURE response (or an error: -ENOENT when no target matched) and unref it.
     * On an error return no reference may be kept. req is valid only during this call.
     */
    int (*capture)(void *ctx, const struct cd_apiwire_capture *req, struct cd_api_call *call,
                   struct cd_err *err);
    /* POST/DELETE /snapshots/{id}/pin: the SNAPSHOT after the change. incident may be NULL. */
    int (*pin)(void *ctx, int64_t id, const char *incident, json_t **out, struct cd_err *err);
    int (*unpin)(void *ctx, int64_t id, json_t **out, struct cd_err *err);
    /* GET /incidents: {"incidents": [INCIDENT...]}. */
    int (*incidents)(void *ctx, json_t **out, struct cd_err *err);
    /* GET /incidents/{name} and bundles: {"incident": INCIDENT, "snapshots": [SNAPSHOT...]}. */
    int (*incident)(void *ctx, const char *name, json_t **out, struct cd_err *err);
    /* POST /retention/run: the RETENTION result; -EALREADY when a run is in progress. */
    int (*retention_run)(void *ctx, bool dry_run, json_t **out, struct cd_err *err);
    /* GET /metrics: {"metrics": [FAMILY...]} as promtext.h describes. */
    int (*metrics)(void *ctx, json_t **out, struct cd_err *err);
};

/* ---- the server ------------------------------------------------------------------------------ */

/* Config mapping (config.h, query section): max_connections, max_request_bytes,
 * max_response_bytes and max_page_size map one to one; request_timeout_ms maps to
 * idle_timeout_ms. The others are built-in defaults. */
struct cd_api_limits {
    unsigned max_connections;    /* per listener; beyond it: 503 (default 64) */
    size_t max_request_bytes;    /* request body (default 1 MiB); beyond: 413 */
    size_t max_header_bytes;     /* request line + headers (default 32 KiB) */
    size_t max_response_bytes;   /* one JSON response (default 64 MiB) */
    unsigned max_captures;       /* concurrent captures (default 4); beyond: 429 */
    unsigned max_bundles;        /* concurrent bundle exports (default 2); beyond: 429 */
    size_t max_bundle_snapshots; /* snapshots in one bundle (default 10000) */
    uint64_t max_bundle_bytes;   /* raw bytes in one bundle (default 4 GiB) */
    int64_t capture_timeout_ms;  /* default wait for a capture (default 120 s) */
    int64_t idle_timeout_ms;     /* a connection without traffic this long is closed (30 s);
                                  * downloads that keep moving are never cut */
    unsigned max_page_size;      /* rows per list page (default 1000, at most
                                  * CD_API_MAX_LIST_LIMIT); beyond: 400 */
    int bundle_compression;      /* libdeflate level 0..12 (default 6) */
};

void cd_api_limits_default(struct cd_api_limits *l);

struct cd_api_config {
    const char *socket_path;  /* NULL: no Unix listener unless unix_fd >= 0 */
    unsigned socket_mode;     /* default CD_API_SOCKET_MODE (0660) */
    const char *socket_group; /* group name for the socket file; NULL keeps ours */
    int unix_fd;              /* -1, or an inherited listening Unix socket (systemd) */
    const char *listen;       /* TCP "host:port" ("127.0.0.1:9095", "[::1]:9095"); NULL none */
    int tcp_fd;               /* -1, or an inherited listening TCP socket */
    const char *token;        /* required when there is a TCP listener */
    struct cd_api_limits limits;
    struct cd_log *log;           /* libmicrohttpd's own messages go here; may be NULL */
    const struct cd_clock *clock; /* wall time for relative times; NULL = real */
};

/* socket_mode 0660, no group, no fds, no TCP, default limits. */
void cd_api_config_default(struct cd_api_config *cfg);

struct cd_api;

/*
 * Binds (or adopts) the sockets and starts serving. A stale Unix socket file (nothing listening)
 * is replaced; a live one is refused (-EADDRINUSE); a non-socket file at the path is refused
 * (-EEXIST). The socket file gets socket_mode and socket_group before it accepts connections.
 * be is copied; be->ctx must outlive the server.
 */
int cd_api_start(const struct cd_api_config *cfg, const struct cd_api_backend *be,
                 struct cd_api **out, struct cd_err *err);
/* Stops accepting, cancels capture waits and bundle streams, waits for the connection threads,
 * closes the sockets and removes the socket file it created. NULL ok. */
void cd_api_stop(struct cd_api *api);

/* The TCP port actually bound (for listen "host:0"), or 0. */
int cd_api_tcp_port(const struct cd_api *api);

struct cd_api_stats {
    unsigned connections; /* open right now, both listeners */
    uint64_t requests;    /* answered since start */
    uint64_t unauthorized;
};
void cd_api_get_stats(struct cd_api *api, struct cd_api_stats *out);

/* Reads a token file: surrounding whitespace trimmed, 16..4096 bytes, refused when the file is
 * world-readable (the token is a password). *token is malloc'd. */
int cd_api_read_token_file(const char *path, char **token, struct cd_err *err);

/* Sockets passed by systemd (sd_listen_fds): the first Unix stream socket and the first TCP
 * one, -1 when absent. Unsets LISTEN_FDS so children do not inherit them. */
int cd_api_systemd_fds(int *unix_fd, int *tcp_fd, struct cd_err *err);

#endif
