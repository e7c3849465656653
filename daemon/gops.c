/* gops — see gops.h. */
#include "gops.h"

#include "buf.h"
#include "clock.h"
#include "kind.h"
#include "str.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOPS_READ_CHUNK 16384

struct cd_gops_xfer {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    uv_write_t wr;
    char cmd_byte;
    char port_str[8];
    char *host;
    int open; /* handles not yet closed (tcp once initialised, timer) */
    bool gai_pending;
    bool tcp_live;
    bool finished; /* result delivered or cancelled: ignore further events */

    struct cd_gops_result r;
    struct cd_buf body;
    char chunk[GOPS_READ_CHUNK];
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    int64_t start_ns;
    int (*on_bytes)(void *ctx, size_t n);
    cd_gops_done_fn done;
    void *ctx;
};

static void maybe_free(struct cd_gops_xfer *x)
{
    if (x->open > 0 || x->gai_pending)
        return;
    cd_buf_free(&x->body);
    free(x->host);
    free(x);
}

static void on_closed(uv_handle_t *h)
{
    struct cd_gops_xfer *x = h->data;
    x->open--;
    maybe_free(x);
}

static void close_all(struct cd_gops_xfer *x)
{
    uv_timer_stop(&x->timer);
    if (!uv_is_closing((uv_handle_t *)&x->timer))
        uv_close((uv_handle_t *)&x->timer, on_closed);
    if (x->tcp_live && !uv_is_closing((uv_handle_t *)&x->tcp))
        uv_close((uv_handle_t *)&x->tcp, on_closed);
    if (x->gai_pending)
        uv_cancel((uv_req_t *)&x->gai);
}

/* Delivers the result once, then tears down. */
static void finish(struct cd_gops_xfer *x, int status)
{
    if (x->finished)
        return;
    x->finished = true;
    x->r.status = status;
    x->r.duration_ms = (cd_clock_now_mono_ns() - x->start_ns) / 1000000;
    x->r.body = cd_buf_steal(&x->body, &x->r.body_len);
    close_all(x);
    x->done(&x->r, x->ctx);
    free(x->r.body);
    x->r.body = NULL;
}

static void on_timeout(uv_timer_t *t)
{
    struct cd_gops_xfer *x = t->data;
    x->r.timed_out = true;
    finish(x, UV_ETIMEDOUT);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct cd_gops_xfer *x = h->data;
    buf->base = x->chunk;
    buf->len = sizeof(x->chunk);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct cd_gops_xfer *x = s->data;
    if (x->finished)
        return;
    if (n == UV_EOF) {
        finish(x, 0);
        return;
    }
    if (n < 0) {
        finish(x, (int)n);
        return;
    }
    if (n == 0)
        return;
    if (x->r.first_byte_ms < 0)
        x->r.first_byte_ms = (cd_clock_now_mono_ns() - x->start_ns) / 1000000;
    if (x->body.len + (size_t)n > x->r.max_body) {
        x->r.too_large = true;
        finish(x, UV_E2BIG);
        return;
    }
    if (x->on_bytes != NULL && x->on_bytes(x->ctx, (size_t)n) < 0) {
        x->r.over_budget = true;
        finish(x, UV_ENOBUFS);
        return;
    }
    if (cd_buf_append(&x->body, x->chunk, (size_t)n) < 0) {
        finish(x, UV_ENOMEM);
        return;
    }
}

static void on_write(uv_write_t *w, int status)
{
    struct cd_gops_xfer *x = w->data;
    if (x->finished)
        return;
    if (status < 0)
        finish(x, status);
}

static void on_connect(uv_connect_t *c, int status)
{
    struct cd_gops_xfer *x = c->data;
    if (x->finished)
        return;
    if (status < 0) {
        finish(x, status);
        return;
    }
    x->r.connected = true;
    /* From here the whole-request deadline applies (measured from the start). */
    int64_t elapsed = (cd_clock_now_mono_ns() - x->start_ns) / 1000000;
    int64_t left = x->timeout_ms - elapsed;
    uv_timer_start(&x->timer, on_timeout, (uint64_t)(left > 0 ? left : 0), 0);
    /* The command byte at once: an agent blocks on an idle connection's first read. */
    uv_buf_t b = uv_buf_init(&x->cmd_byte, 1);
    x->wr.data = x;
    int rc = uv_write(&x->wr, (uv_stream_t *)&x->tcp, &b, 1, on_write);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&x->tcp, on_alloc, on_read);
    if (rc < 0)
        finish(x, rc);
}

static int connect_to(struct cd_gops_xfer *x, const struct sockaddr *sa)
{
    int rc = uv_tcp_init(x->loop, &x->tcp);
    if (rc < 0)
        return rc;
    x->tcp.data = x;
    x->tcp_live = true;
    x->open++;
    uv_tcp_nodelay(&x->tcp, 1);
    x->conn.data = x;
    return uv_tcp_connect(&x->conn, &x->tcp, sa, on_connect);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct cd_gops_xfer *x = g->data;
    x->gai_pending = false;
    if (x->finished) {
        uv_freeaddrinfo(res);
        maybe_free(x);
        return;
    }
    if (status < 0 || res == NULL) {
        uv_freeaddrinfo(res);
        finish(x, status < 0 ? status : UV_EAI_NONAME);
        return;
    }
    x->r.resolved = true;
    int rc = connect_to(x, res->ai_addr);
    uv_freeaddrinfo(res);
    if (rc < 0)
        finish(x, rc);
}

int cd_gops_start(uv_loop_t *loop, const struct cd_gops_request *req, cd_gops_done_fn done,
                  void *ctx, struct cd_gops_xfer **out, struct cd_err *err)
{
    if (req->cmd < CD_GOPS_STACK || req->cmd > CD_GOPS_TRACE)
        return cd_err_set(err, -EINVAL, "gops: command 0x%02x is not a read-only scrape",
                          (unsigned)req->cmd);
    if (req->host == NULL || req->port <= 0 || req->port > 65535)
        return cd_err_set(err, -EINVAL, "gops: bad address");
    struct cd_gops_xfer *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return cd_err_set(err, -ENOMEM, "gops: out of memory");
    x->loop = loop;
    x->host = cd_str_dup(req->host);
    if (x->host == NULL) {
        free(x);
        return cd_err_set(err, -ENOMEM, "gops: out of memory");
    }
    x->cmd_byte = (char)req->cmd;
    x->r.cmd = req->cmd;
    x->r.first_byte_ms = -1;
    x->r.max_body = req->max_body > 0 ? req->max_body : (size_t)64 << 20;
    x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 10000;
    x->r.timeout_ms = x->timeout_ms;
    x->connect_timeout_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 5000;
    if (x->connect_timeout_ms > x->timeout_ms)
        x->connect_timeout_ms = x->timeout_ms;
    cd_buf_init(&x->body, x->r.max_body + 1);
    x->on_bytes = req->on_bytes;
    x->done = done;
    x->ctx = ctx;
    x->start_ns = cd_clock_now_mono_ns();
    snprintf(x->port_str, sizeof(x->port_str), "%d", req->port);

    int rc = uv_timer_init(loop, &x->timer);
    if (rc < 0) {
        cd_buf_free(&x->body);
        free(x->host);
        free(x);
        return cd_err_set(err, rc, "gops: uv_timer_init: %s", uv_strerror(rc));
    }
    x->timer.data = x;
    x->open = 1;
    uv_timer_start(&x->timer, on_timeout, (uint64_t)x->connect_timeout_ms, 0);

    struct sockaddr_storage ss;
    if (uv_ip4_addr(req->host, req->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(req->host, req->port, (struct sockaddr_in6 *)&ss) == 0) {
        x->r.resolved = true;
        rc = connect_to(x, (const struct sockaddr *)&ss);
    } else {
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        x->gai.data = x;
        rc = uv_getaddrinfo(loop, &x->gai, on_resolved, x->host, x->port_str, &hints);
        if (rc == 0)
            x->gai_pending = true;
    }
    if (rc < 0) {
        /* Handles exist: tear down through the loop; no callback for a failed start. */
        x->finished = true;
        close_all(x);
        return cd_err_set(err, rc, "gops: %s:%d: %s", req->host, req->port, uv_strerror(rc));
    }
    if (out != NULL)
        *out = x;
    return 0;
}

void cd_gops_cancel(struct cd_gops_xfer *x)
{
    if (x == NULL || x->finished)
        return;
    x->finished = true;
    close_all(x);
}

enum cd_snap_status cd_gops_classify(const struct cd_gops_result *r, char **msg)
{
    *msg = NULL;
    unsigned cmd = (unsigned)r->cmd;
    if (r->too_large) {
        *msg = cd_str_printf("reply larger than max_body_bytes (%zu bytes): not kept", r->max_body);
        return CD_SNAP_TOO_LARGE;
    }
    if (r->over_budget) {
        *msg = cd_str_printf("in-flight byte budget exhausted after %zu bytes: cut", r->body_len);
        return CD_SNAP_TOO_LARGE;
    }
    if (r->status == 0) {
        if (r->body_len > 0)
            return CD_SNAP_OK;
        *msg = cd_str_printf("empty reply to command 0x%02x (the agent does not know it, or had "
                             "nothing to say)",
                             cmd);
        return CD_SNAP_ERROR;
    }
    if (r->timed_out && !r->connected) {
        *msg = cd_str_printf("connect: timed out");
        return CD_SNAP_CONNECT_ERROR;
    }
    if (r->timed_out) {
        if (r->body_len == 0 && (r->cmd == CD_GOPS_CPU || r->cmd == CD_GOPS_TRACE)) {
            *msg = cd_str_printf(
                "busy: no reply to command 0x%02x within %lld ms: the agent leaves the connection "
                "open when the %s is already in use in the process",
                cmd, (long long)r->timeout_ms,
                r->cmd == CD_GOPS_CPU ? "CPU profiler" : "execution tracer");
            return CD_SNAP_BUSY;
        }
        *msg = cd_str_printf("timeout: %zu bytes within %lld ms, no end of reply", r->body_len,
                             (long long)r->timeout_ms);
        return CD_SNAP_TIMEOUT;
    }
    if (!r->resolved) {
        *msg = cd_str_printf("resolve: %s", uv_strerror(r->status));
        return CD_SNAP_CONNECT_ERROR;
    }
    if (!r->connected || r->body_len == 0) {
        *msg = cd_str_printf("connect: %s", uv_strerror(r->status));
        return CD_SNAP_CONNECT_ERROR;
    }
    *msg = cd_str_printf("truncated after %zu bytes: %s", r->body_len, uv_strerror(r->status));
    return CD_SNAP_ERROR;
}
