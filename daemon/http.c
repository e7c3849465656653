/* http — see http.h. */
#include "http.h"

#include "buf.h"
#include "clock.h"
#include "str.h"

#include <collectord/version.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One socket curl watches; lives inside a uv_poll handle, freed in its close callback. */
struct sock {
    uv_poll_t poll;
    struct cd_http *h;
    curl_socket_t fd;
    struct sock *prev, *next; /* open ones, so close can reach any curl forgot */
};

struct cd_http_xfer {
    struct cd_http *h;
    struct cd_http_xfer *prev, *next;
    CURL *easy;
    struct curl_slist *headers;    /* CURLOPT_HTTPHEADER */
    struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO */
    char errbuf[CURL_ERROR_SIZE];
    struct cd_buf body;
    size_t max_body;
    bool too_large;
    bool over_budget;
    int (*on_bytes)(void *ctx, size_t n);
    cd_http_done_fn done;
    void *ctx;
    int64_t start_ns;
};

struct cd_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    char *user_agent;
    struct cd_http_xfer *xfers; /* doubly linked: cancel and close walk it */
    struct sock *socks;
    size_t n_xfers;
    int open_handles; /* timer + polls not yet closed */
    bool closing;
    cd_http_close_fn close_cb;
    void *close_ctx;
};

static void check_done(struct cd_http *h);

/* ---- handles --------------------------------------------------------------------------- */

static void maybe_closed(struct cd_http *h)
{
    if (h->closing && h->open_handles == 0 && h->close_cb != NULL) {
        cd_http_close_fn cb = h->close_cb;
        h->close_cb = NULL;
        cb(h, h->close_ctx);
    }
}

static void on_sock_closed(uv_handle_t *handle)
{
    struct sock *s = handle->data;
    struct cd_http *h = s->h;
    free(s);
    h->open_handles--;
    maybe_closed(h);
}

static void on_timer_closed(uv_handle_t *handle)
{
    struct cd_http *h = handle->data;
    h->open_handles--;
    maybe_closed(h);
}

static void sock_close(struct cd_http *h, struct sock *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        h->socks = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void socket_action(struct cd_http *h, curl_socket_t fd, int flags)
{
    int running = 0;
    curl_multi_socket_action(h->multi, fd, flags, &running);
    check_done(h);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock *s = p->data;
    int flags = 0;
    if (status < 0) {
        /* Let curl find out what is wrong with the socket (it reads the error). */
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    socket_action(s->h, s->fd, flags);
}

static void on_timer(uv_timer_t *t)
{
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: called from inside curl; only (re)arms or closes poll handles. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct cd_http *h = userp;
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            sock_close(h, s);
            curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return -1;
        s->h = h;
        s->fd = fd;
        if (uv_poll_init_socket(h->loop, &s->poll, fd) < 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        h->open_handles++;
        s->next = h->socks;
        if (h->socks != NULL)
            h->socks->prev = s;
        h->socks = s;
        curl_multi_assign(h->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&s->poll, events, on_poll) < 0 ? -1 : 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops, 0 means "as soon as possible" (from the loop, not from
 * inside curl). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct cd_http *h = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- transfers ------------------------------------------------------------------------- */

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    struct cd_http_xfer *x = userp;
    size_t n = size * nmemb;
    if (n == 0)
        return 0;
    if (x->body.len + n > x->max_body) {
        x->too_large = true;
        return 0; /* curl aborts with CURLE_WRITE_ERROR */
    }
    if (x->on_bytes != NULL && x->on_bytes(x->ctx, n) < 0) {
        x->over_budget = true;
        return 0;
    }
    if (cd_buf_append(&x->body, data, n) < 0)
        return 0;
    return n;
}

static void xfer_unlink(struct cd_http *h, struct cd_http_xfer *x)
{
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        h->xfers = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    h->n_xfers--;
}

static void xfer_free(struct cd_http_xfer *x)
{
    if (x == NULL)
        return;
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    curl_slist_free_all(x->connect_to);
    cd_buf_free(&x->body);
    free(x);
}

static void finish(struct cd_http *h, struct cd_http_xfer *x, CURLcode code)
{
    struct cd_http_result r;
    memset(&r, 0, sizeof(r));
    r.code = code;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r.http_status);
    char *ct = NULL;
    if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
        r.content_type = cd_str_dup(ct);
    curl_off_t ttfb = 0;
    r.first_byte_ms = -1;
    if (curl_easy_getinfo(x->easy, CURLINFO_STARTTRANSFER_TIME_T, &ttfb) == CURLE_OK && ttfb > 0)
        r.first_byte_ms = (int64_t)(ttfb / 1000);
    r.too_large = x->too_large;
    r.over_budget = x->over_budget;
    r.curl_error = x->errbuf;
    r.duration_ms = (cd_clock_now_mono_ns() - x->start_ns) / 1000000;
    r.max_body = x->max_body;
    r.body = cd_buf_steal(&x->body, &r.body_len);
    curl_multi_remove_handle(h->multi, x->easy);
    xfer_unlink(h, x);
    x->done(&r, x->ctx);
    free(r.body);
    free(r.content_type);
    xfer_free(x);
}

/* Drains curl's messages: after every socket_action, so no finished transfer waits. */
static void check_done(struct cd_http *h)
{
    CURLMsg *m;
    int left;
    /* A done callback may close the whole client: stop reading from a multi handle that is gone. */
    while (!h->closing && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct cd_http_xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x == NULL)
            continue;
        finish(h, x, m->data.result);
    }
}

int cd_http_new(uv_loop_t *loop, const struct cd_http_opts *opts, struct cd_http **out,
                struct cd_err *err)
{
    int rc;
    struct cd_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return cd_err_set(err, -ENOMEM, "http: out of memory");
    h->loop = loop;
    const char *ua = opts != NULL && opts->user_agent != NULL ? opts->user_agent
                                                              : "collectord/" COLLECTORD_VERSION;
    h->user_agent = cd_str_dup(ua);
    h->multi = curl_multi_init();
    if (h->user_agent == NULL || h->multi == NULL) {
        rc = cd_err_set(err, -ENOMEM, "http: out of memory");
        goto fail;
    }
    long maxconn =
        opts != NULL && opts->max_idle_connections > 0 ? opts->max_idle_connections : 256;
    if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, maxconn) != CURLM_OK) {
        rc = cd_err_set(err, -EINVAL, "http: curl_multi_setopt failed");
        goto fail;
    }
    rc = uv_timer_init(loop, &h->timer);
    if (rc < 0) {
        cd_err_set(err, rc, "http: uv_timer_init: %s", uv_strerror(rc));
        goto fail;
    }
    h->timer.data = h;
    h->open_handles = 1;
    *out = h;
    return 0;
fail:
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    free(h->user_agent);
    free(h);
    return rc;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        CURLcode c_ = curl_easy_setopt(x->easy, opt, val);                                         \
        if (c_ != CURLE_OK) {                                                                      \
            rc = cd_err_set(err, -EINVAL, "http: %s: %s", #opt, curl_easy_strerror(c_));           \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

int cd_http_start(struct cd_http *h, const struct cd_http_request *req, cd_http_done_fn done,
                  void *ctx, struct cd_http_xfer **out, struct cd_err *err)
{
    int rc;
    if (h->closing)
        return cd_err_set(err, -ESHUTDOWN, "http: closing");
    if (req->url == NULL ||
        !(cd_str_has_prefix(req->url, "http://") || cd_str_has_prefix(req->url, "https://")))
        return cd_err_set(err, -EINVAL, "http: only http:// and https:// URLs are scraped");
    struct cd_http_xfer *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return cd_err_set(err, -ENOMEM, "http: out of memory");
    x->h = h;
    x->max_body = req->max_body > 0 ? req->max_body : (size_t)64 << 20;
    /* The buffer limit is one past the cap so the write callback, not the buffer, decides. */
    cd_buf_init(&x->body, x->max_body + 1);
    x->on_bytes = req->on_bytes;
    x->done = done;
    x->ctx = ctx;
    x->easy = curl_easy_init();
    if (x->easy == NULL) {
        rc = cd_err_set(err, -ENOMEM, "http: curl_easy_init failed");
        goto fail;
    }
    int64_t timeout = req->timeout_ms > 0 ? req->timeout_ms : 10000;
    int64_t connect = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 5000;
    if (connect > timeout)
        connect = timeout;

    SETOPT(CURLOPT_URL, req->url);
    SETOPT(CURLOPT_PRIVATE, (void *)x);
    SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_HTTPGET, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SETOPT(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
    if (req->follow_redirects)
        SETOPT(CURLOPT_MAXREDIRS, 10L);
    if (req->http1_only)
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    /* A daemon's behaviour must come from its config, not from whatever http_proxy it inherited. */
    SETOPT(CURLOPT_PROXY, req->proxy != NULL ? req->proxy : "");
    /* Raw bytes exactly as sent: never ask for, nor undo, a content encoding. */
    SETOPT(CURLOPT_HTTP_CONTENT_DECODING, 0L);
    SETOPT(CURLOPT_USERAGENT, h->user_agent);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)timeout);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, (void *)x);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_body);
    if (req->connect_to != NULL) {
        x->connect_to = curl_slist_append(NULL, req->connect_to);
        if (x->connect_to == NULL) {
            rc = cd_err_set(err, -ENOMEM, "http: out of memory");
            goto fail;
        }
        SETOPT(CURLOPT_CONNECT_TO, x->connect_to);
    }
    const struct cd_auth *a = req->auth;
    if (a != NULL && a->username != NULL) {
        SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SETOPT(CURLOPT_USERNAME, a->username);
        SETOPT(CURLOPT_PASSWORD, a->password != NULL ? a->password : "");
    } else if (a != NULL && a->bearer != NULL) {
        char *line = cd_str_printf("Authorization: %s %s",
                                   a->auth_type != NULL ? a->auth_type : "Bearer", a->bearer);
        if (line != NULL)
            x->headers = curl_slist_append(NULL, line);
        free(line);
        if (x->headers == NULL) {
            rc = cd_err_set(err, -ENOMEM, "http: out of memory");
            goto fail;
        }
        SETOPT(CURLOPT_HTTPHEADER, x->headers);
    }
    const struct cd_tls *t = req->tls;
    if (t != NULL) {
        if (t->ca_file != NULL)
            SETOPT(CURLOPT_CAINFO, t->ca_file);
        if (t->cert_file != NULL)
            SETOPT(CURLOPT_SSLCERT, t->cert_file);
        if (t->key_file != NULL)
            SETOPT(CURLOPT_SSLKEY, t->key_file);
        if (t->insecure_skip_verify) {
            SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
            SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
        }
    }
    x->start_ns = cd_clock_now_mono_ns();
    CURLMcode mc = curl_multi_add_handle(h->multi, x->easy);
    if (mc != CURLM_OK) {
        rc = cd_err_set(err, -ENOMEM, "http: curl_multi_add_handle: %s", curl_multi_strerror(mc));
        goto fail;
    }
    x->next = h->xfers;
    if (h->xfers != NULL)
        h->xfers->prev = x;
    h->xfers = x;
    h->n_xfers++;
    if (out != NULL)
        *out = x;
    return 0;
fail:
    xfer_free(x);
    return rc;
}

#undef SETOPT

void cd_http_cancel(struct cd_http *h, struct cd_http_xfer *x)
{
    if (x == NULL)
        return;
    curl_multi_remove_handle(h->multi, x->easy);
    xfer_unlink(h, x);
    xfer_free(x);
}

size_t cd_http_active(const struct cd_http *h)
{
    return h->n_xfers;
}

void cd_http_close(struct cd_http *h, cd_http_close_fn cb, void *ctx)
{
    if (h->closing)
        return;
    h->closing = true;
    h->close_cb = cb;
    h->close_ctx = ctx;
    while (h->xfers != NULL)
        cd_http_cancel(h, h->xfers);
    /* Closes cached connections; curl tells socket_cb to REMOVE each watched socket. */
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    while (h->socks != NULL)
        sock_close(h, h->socks);
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

void cd_http_free(struct cd_http *h)
{
    if (h == NULL)
        return;
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    free(h->user_agent);
    free(h);
}

/* ---- what it means ----------------------------------------------------------------------- */

static bool body_contains(const struct cd_http_result *r, const char *needle)
{
    size_t n = strlen(needle);
    if (r->body == NULL || r->body_len < n)
        return false;
    return memmem(r->body, r->body_len, needle, n) != NULL;
}

/* The first line of a text body, trimmed and bounded, for messages. */
static char *first_line(const struct cd_http_result *r)
{
    size_t n = 0;
    while (n < r->body_len && n < 160 && r->body[n] != '\n' && r->body[n] != '\r')
        n++;
    char *s = cd_str_ndup(r->body != NULL ? (const char *)r->body : "", n);
    if (s != NULL) {
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
                s[i] = '?';
        }
    }
    return s;
}

enum cd_snap_status cd_http_classify(const struct cd_http_result *r, char **msg)
{
    *msg = NULL;
    if (r->too_large) {
        *msg = cd_str_printf("body larger than max_body_bytes (%zu bytes): not kept", r->max_body);
        return CD_SNAP_TOO_LARGE;
    }
    if (r->over_budget) {
        *msg = cd_str_printf("in-flight byte budget exhausted after %zu bytes: cut", r->body_len);
        return CD_SNAP_TOO_LARGE;
    }
    const char *ce = r->curl_error != NULL && r->curl_error[0] != '\0'
                         ? r->curl_error
                         : curl_easy_strerror(r->code);
    switch (r->code) {
    case CURLE_OK:
        break;
    case CURLE_OPERATION_TIMEDOUT:
        *msg = cd_str_printf("timeout: %s", ce);
        return CD_SNAP_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        *msg = cd_str_printf("connect: %s", ce);
        return CD_SNAP_CONNECT_ERROR;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        if (r->http_status == 0) {
            *msg = cd_str_printf("connection closed or reset before a response: %s", ce);
            return CD_SNAP_CONNECT_ERROR;
        }
        *msg = cd_str_printf("truncated after %zu bytes: %s", r->body_len, ce);
        return CD_SNAP_ERROR;
    case CURLE_FILESIZE_EXCEEDED:
        *msg = cd_str_printf("body larger than max_body_bytes (%zu bytes): not kept", r->max_body);
        return CD_SNAP_TOO_LARGE;
    case CURLE_PARTIAL_FILE:
        *msg = cd_str_printf("truncated after %zu bytes: %s", r->body_len, ce);
        return CD_SNAP_ERROR;
    default:
        *msg = cd_str_printf("%s", ce);
        return CD_SNAP_ERROR;
    }
    long st = r->http_status;
    if (st >= 200 && st < 300)
        return CD_SNAP_OK;
    char *line = first_line(r);
    const char *l = line != NULL ? line : "";
    enum cd_snap_status out = CD_SNAP_HTTP_ERROR;
    if (st == 500 && (body_contains(r, "already in use") || body_contains(r, "already enabled"))) {
        *msg = cd_str_printf("busy: HTTP 500: %s (another CPU profile or trace is running in the "
                             "process; retried at the next slot)",
                             l);
        out = CD_SNAP_BUSY;
    } else if (st == 404) {
        *msg = cd_str_printf("HTTP 404: %s (the target does not serve this profile here)", l);
    } else if (st == 400 && body_contains(r, "WriteTimeout")) {
        *msg = cd_str_printf("HTTP 400: %s (the profile's seconds reach the target's "
                             "http.Server WriteTimeout: lower seconds or raise WriteTimeout)",
                             l);
    } else if (st == 405) {
        *msg = cd_str_printf("HTTP 405: %s (the endpoint refuses this method; pprof on Go 1.23+ "
                             "serves GET only)",
                             l);
    } else if (st >= 300 && st < 400) {
        *msg = cd_str_printf("HTTP %ld: redirect not followed (set the target's path_prefix)", st);
    } else {
        *msg = cd_str_printf("HTTP %ld: %s", st, l);
    }
    free(line);
    return out;
}
