/*
 * http — HTTP(S) GETs with libcurl's multi-socket API, driven by the libuv loop: one uv_poll per
 * socket curl asks about, one uv_timer for curl's timeout; never curl_easy_perform.
 *
 * Loop thread only. struct cd_http owns the multi handle (and with it the connection cache, so
 * connections to a target are reused between scrapes), the timer and the poll handles; each
 * struct cd_http_xfer owns its easy handle, header list, error buffer and body buffer until its
 * done callback runs.
 *
 * Every transfer: GET only; protocols limited to http and https (redirects are not followed, so a
 * 3xx is reported as it is); no Accept-Encoding is sent and no content decoding is done, so the
 * body is exactly the bytes the target sent; the body cap (max_body) and the caller's byte budget
 * (on_bytes) are enforced in the write callback while receiving, so a large body never lands in
 * memory.
 */
#ifndef CD_HTTP_H
#define CD_HTTP_H

#include "err.h"
#include "snapshot.h"
#include "target.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct cd_http;
struct cd_http_xfer;

struct cd_http_opts {
    long max_idle_connections; /* connection cache size, default 256 */
    const char *user_agent;    /* default "collectord/<version>" */
};

struct cd_http_request {
    const char *url; /* http:// or https:// only */
    /* "HOST:PORT:CONNECT-HOST:CONNECT-PORT" (CURLOPT_CONNECT_TO), e.g. to send a TLS server name
     * other than the address; NULL for none */
    const char *connect_to;
    int64_t connect_timeout_ms; /* default 5000, never more than timeout_ms */
    int64_t timeout_ms;         /* whole request, default 10000 */
    size_t max_body;            /* default 64 MiB */
    const struct cd_auth *auth; /* may be NULL */
    const struct cd_tls *tls;   /* may be NULL */
    /* Asked before each chunk of body is kept; < 0 aborts the transfer (budget exhausted). */
    int (*on_bytes)(void *ctx, size_t n);
    bool follow_redirects; /* Prometheus' follow_redirects (default true there): http/https only */
    bool http1_only;       /* enable_http2: false */
    const char *proxy;     /* proxy_url, NULL = none (curl's *_proxy environment is ignored) */
};

struct cd_http_result {
    CURLcode code;
    long http_status;       /* 0 when no response line arrived */
    uint8_t *body;          /* owned by the result: steal it (set NULL) to keep it */
    size_t body_len;        /* bytes kept (and the received count when the cap was hit) */
    char *content_type;     /* owned by the result, may be NULL */
    bool too_large;         /* stopped at max_body */
    bool over_budget;       /* stopped because on_bytes said no */
    const char *curl_error; /* the easy handle's error buffer (may be "") */
    int64_t duration_ms;    /* from start until done */
    int64_t first_byte_ms;  /* time to first byte, -1 when none */
    size_t max_body;        /* the cap that applied */
};

/* On the loop thread, once per started transfer that was not cancelled. The transfer is freed
 * after it returns; it may start or cancel other transfers. */
typedef void (*cd_http_done_fn)(struct cd_http_result *r, void *ctx);
typedef void (*cd_http_close_fn)(struct cd_http *h, void *ctx);

int cd_http_new(uv_loop_t *loop, const struct cd_http_opts *opts, struct cd_http **out,
                struct cd_err *err);

/* Starts a GET. On success *out (may be NULL) can be passed to cd_http_cancel() until done
 * fires. Fails with -EINVAL for a non-http(s) URL or a rejected option, -ENOMEM. */
int cd_http_start(struct cd_http *h, const struct cd_http_request *req, cd_http_done_fn done,
                  void *ctx, struct cd_http_xfer **out, struct cd_err *err);

/* Aborts a transfer; its done callback never fires. */
void cd_http_cancel(struct cd_http *h, struct cd_http_xfer *x);

size_t cd_http_active(const struct cd_http *h);

/* Cancels every transfer (no callbacks), closes the connection cache and every handle; cb fires
 * on the loop thread when all are closed. Then cd_http_free(). */
void cd_http_close(struct cd_http *h, cd_http_close_fn cb, void *ctx);
void cd_http_free(struct cd_http *h);

/*
 * What a finished transfer means for a Go pprof endpoint (protocols.md §2.4): the snapshot status
 * and a message for people (malloc'd in *msg, NULL when status is OK or on ENOMEM).
 *   2xx complete                          -> ok
 *   500 "... already in use/enabled"      -> busy (another CPU profile or trace in the process)
 *   other 4xx/5xx, 3xx                    -> http_error (404 unknown profile, 400 WriteTimeout,
 *                                            405 non-GET are explained)
 *   body cap or byte budget               -> too_large
 *   curl timeout                          -> timeout
 *   refused/unresolved, reset or closed before any response -> connect_error
 *   anything else (TLS, truncated body)   -> error
 */
enum cd_snap_status cd_http_classify(const struct cd_http_result *r, char **msg);

#endif
