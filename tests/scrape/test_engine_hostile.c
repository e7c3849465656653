/*
 * The scrape engine against a hostile target written in C: a loopback HTTP server and a
 * gops-protocol server, one thread per connection, whose behaviour is chosen by path or command
 * byte (slow, hang, truncated, reset, huge, Go's error responses, busy). Real loop, real sockets,
 * no sleeping: the loop runs until the snapshots arrive.
 */
#include "cdtest.h"
#include "engine_util.h"

#include "gops.h"
#include "http.h"
#include "kind.h"
#include "str.h"
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the hostile server ------------------------------------------------------------------- */

struct hs {
    int http_fd, gops_fd;
    int http_port, gops_port;
    int stop_pipe[2];
    pthread_t accept_thread;
    atomic_int http_conns;  /* accepted HTTP connections (reuse check) */
    atomic_int gops_active; /* gops connections open now */
    atomic_int gops_max;    /* most at once (serialization check) */
    atomic_int handlers;    /* handler threads alive */
    atomic_int user_agent_ok;
    atomic_int accept_encoding_seen;
};

static const uint8_t ok_body[] = {0x1f, 0x8b, 0x08, 0x00, 'p', 'r', 'o', 'f', 0x00, 0xff, 0x01};

static bool wait_stop_or_peer(struct hs *s, int fd, int ms)
{
    struct pollfd p[2] = {{s->stop_pipe[0], POLLIN, 0}, {fd, POLLIN, 0}};
    int r = poll(p, 2, ms);
    if (r <= 0)
        return false;
    if (p[0].revents)
        return true;
    char b[256];
    return recv(fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT) == 0; /* the peer closed */
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, int status, const char *reason, const char *ctype, const void *body,
                  size_t n, bool go_error)
{
    char h[512];
    int hl = snprintf(h, sizeof(h),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n\r\n", status,
                      reason, ctype, go_error ? "X-Go-Pprof: 1\r\n" : "", n);
    send_all(fd, h, (size_t)hl);
    send_all(fd, body, n);
}

struct conn {
    struct hs *s;
    int fd;
    bool gops;
};

static void hard_reset(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static void serve_gops(struct hs *s, int fd)
{
    unsigned char cmd = 0;
    /* Requests the client is still waiting on are counted; the left-open busy connections are
     * not (the client has given up on them; a real agent has moved on too). */
    bool counted = false;
    if (recv(fd, &cmd, 1, 0) == 1 && cmd != 0x06 && cmd != 0x08) {
        counted = true;
        int now = atomic_fetch_add(&s->gops_active, 1) + 1;
        int prev = atomic_load(&s->gops_max);
        while (now > prev && !atomic_compare_exchange_weak(&s->gops_max, &prev, now))
            ;
    }
    if (cmd != 0) {
        static const char version[] = "go1.19.8\n";
        static const char stats[] = "goroutines: 3\nOS threads: 7\nGOMAXPROCS: 2\nnum CPU: 2\n";
        switch (cmd) {
        case 0x04:
            /* A little work so overlapping requests would be seen. */
            wait_stop_or_peer(s, fd, 30);
            send_all(fd, version, sizeof(version) - 1);
            break;
        case 0x07:
            wait_stop_or_peer(s, fd, 30);
            send_all(fd, stats, sizeof(stats) - 1);
            break;
        case 0x03:
            wait_stop_or_peer(s, fd, 30);
            send_all(fd, "alloc: 1 bytes\n", 15);
            break;
        case 0x06: /* "cpu profiling already in use": the agent never answers nor closes */
        case 0x08:
            wait_stop_or_peer(s, fd, 60000);
            break;
        case 0x01: /* a reset in the middle of a dump */
            send_all(fd, "goroutine 1 [running]:\n", 23);
            hard_reset(fd);
            break;
        default: /* unknown command: closed with no bytes */
            break;
        }
    }
    if (counted)
        atomic_fetch_sub(&s->gops_active, 1);
}

/* One request per call; returns false when the connection must close. */
static bool serve_http_one(struct hs *s, int fd)
{
    char req[2048];
    size_t n = 0;
    while (n < sizeof(req) - 1) {
        ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
        if (r <= 0)
            return false;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    if (strstr(req, "User-Agent: collectord/") != NULL)
        atomic_store(&s->user_agent_ok, 1);
    if (strcasestr(req, "Accept-Encoding") != NULL)
        atomic_store(&s->accept_encoding_seen, 1);
    char path[256] = "";
    if (sscanf(req, "GET %255s HTTP/1.1", path) != 1) {
        reply(fd, 405, "Method Not Allowed", "text/plain", "no\n", 3, false);
        return false;
    }
    if (strncmp(path, "/ok", 3) == 0) {
        reply(fd, 200, "OK", "application/octet-stream", ok_body, sizeof(ok_body), false);
        return true;
    }
    if (strcmp(path, "/chunked") == 0) {
        const char *r = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: "
                        "chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        send_all(fd, r, strlen(r));
        return true;
    }
    if (strcmp(path, "/e404") == 0) {
        reply(fd, 404, "Not Found", "text/plain; charset=utf-8", "Unknown profile\n", 16, true);
        return true;
    }
    if (strcmp(path, "/busy") == 0) {
        const char *b = "Could not enable CPU profiling: cpu profiling already in use\n";
        reply(fd, 500, "Internal Server Error", "text/plain; charset=utf-8", b, strlen(b), true);
        return true;
    }
    if (strcmp(path, "/wt") == 0) {
        const char *b = "profile duration exceeds server's WriteTimeout\n";
        reply(fd, 400, "Bad Request", "text/plain; charset=utf-8", b, strlen(b), true);
        return true;
    }
    if (strcmp(path, "/truncated") == 0) {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        send_all(fd, h, strlen(h));
        send_all(fd, ok_body, sizeof(ok_body));
        return false;
    }
    if (strcmp(path, "/reset") == 0) {
        hard_reset(fd);
        return false;
    }
    if (strcmp(path, "/hang") == 0 || strcmp(path, "/slow") == 0) {
        wait_stop_or_peer(s, fd, 60000);
        return false;
    }
    if (strcmp(path, "/huge") == 0) {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n";
        send_all(fd, h, strlen(h));
        static const char chunk[65536];
        for (int i = 0; i < 100000; i++) {
            if (send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL) <= 0)
                break;
        }
        return false;
    }
    reply(fd, 404, "Not Found", "text/plain", "?\n", 2, false);
    return true;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    if (c->gops)
        serve_gops(c->s, c->fd);
    else
        while (serve_http_one(c->s, c->fd))
            ;
    close(c->fd);
    atomic_fetch_sub(&c->s->handlers, 1);
    free(c);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct hs *s = arg;
    for (;;) {
        struct pollfd p[3] = {
            {s->stop_pipe[0], POLLIN, 0}, {s->http_fd, POLLIN, 0}, {s->gops_fd, POLLIN, 0}};
        if (poll(p, 3, -1) < 0)
            continue;
        if (p[0].revents)
            break;
        for (int i = 1; i < 3; i++) {
            if (!p[i].revents)
                continue;
            int fd = accept(p[i].fd, NULL, NULL);
            if (fd < 0)
                continue;
            struct conn *c = calloc(1, sizeof(*c));
            c->s = s;
            c->fd = fd;
            c->gops = i == 2;
            if (!c->gops)
                atomic_fetch_add(&s->http_conns, 1);
            atomic_fetch_add(&s->handlers, 1);
            pthread_t t;
            pthread_create(&t, NULL, conn_main, c);
            pthread_detach(t);
        }
    }
    return NULL;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 128), 0);
    socklen_t l = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

static struct hs *hs_start(void)
{
    struct hs *s = calloc(1, sizeof(*s));
    assert_int_equal(pipe(s->stop_pipe), 0);
    s->http_fd = listen_any(&s->http_port);
    s->gops_fd = listen_any(&s->gops_port);
    pthread_create(&s->accept_thread, NULL, accept_main, s);
    return s;
}

static bool handlers_gone(void *ctx)
{
    return atomic_load(&((struct hs *)ctx)->handlers) == 0;
}

static void hs_stop(struct hs *s)
{
    assert_int_equal(write(s->stop_pipe[1], "x", 1), 1);
    pthread_join(s->accept_thread, NULL);
    assert_int_equal(cdt_wait_until(handlers_gone, s, 10000), 0);
    close(s->http_fd);
    close(s->gops_fd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    free(s);
}

/* ---- engine setup ------------------------------------------------------------------------- */

struct fx {
    uv_loop_t loop;
    struct hs *hs;
    struct cd_scrape *sc;
    struct eu_sink sink;
    char http_addr[64];
    char gops_addr[64];
};

static void fx_start(struct fx *f, const struct cd_scrape_opts *extra)
{
    memset(f, 0, sizeof(*f));
    f->hs = hs_start();
    snprintf(f->http_addr, sizeof(f->http_addr), "127.0.0.1:%d", f->hs->http_port);
    snprintf(f->gops_addr, sizeof(f->gops_addr), "127.0.0.1:%d", f->hs->gops_port);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    struct cd_scrape_opts o;
    memset(&o, 0, sizeof(o));
    if (extra != NULL)
        o = *extra;
    o.sink = eu_sink_fn;
    o.sink_ctx = &f->sink;
    o.on_event = eu_event_fn;
    o.event_ctx = &f->sink;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scrape_new(&f->loop, &o, &f->sc, &err), 0);
}

static void fx_stop(struct fx *f)
{
    eu_stop_and_close(&f->loop, f->sc, 200);
    hs_stop(f->hs);
    eu_sink_free(&f->sink);
}

struct want {
    struct fx *f;
    size_t n;
};

static bool have_n(void *ctx)
{
    struct want *w = ctx;
    return w->f->sink.n >= w->n;
}

/* Every kind of the table delivered at least once on address: fast kinds arrive many times
 * before a slow one times out, so a plain count is not enough. */
struct want_kinds {
    struct fx *f;
    const char *address;
    const struct eu_kind *kinds;
    size_t n;
};

static bool have_each_kind(void *ctx)
{
    struct want_kinds *w = ctx;
    for (size_t i = 0; i < w->n; i++) {
        if (eu_find(&w->f->sink, w->address, w->kinds[i].name, 0) == NULL)
            return false;
    }
    return true;
}

#define K_HTTP(name_, path_, iv_, to_)                                                             \
    {                                                                                              \
        name_, path_, NULL, 0, 0, iv_, to_                                                         \
    }

/* ---- tests -------------------------------------------------------------------------------- */

static void test_http_statuses(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    /* Custom kind names so each path is its own kind on one target. */
    struct eu_kind kinds[] = {
        K_HTTP("ok", "/ok", 300, 2000),       K_HTTP("chunked", "/chunked", 300, 2000),
        K_HTTP("e404", "/e404", 300, 2000),   K_HTTP("busy", "/busy", 300, 2000),
        K_HTTP("wt", "/wt", 300, 2000),       K_HTTP("truncated", "/truncated", 300, 2000),
        K_HTTP("reset", "/reset", 300, 2000), K_HTTP("slow", "/slow", 300, 700),
        K_HTTP("huge", "/huge", 300, 5000),
    };
    size_t nk = sizeof(kinds) / sizeof(kinds[0]);
    struct cd_target_set set = {0};
    eu_add_target(&set, "h", CD_SCHEME_HTTP, f.http_addr, NULL, kinds, nk, 1 << 20);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scrape_set_targets(f.sc, &set, &err), 0);
    cd_target_set_free(&set);
    struct want_kinds w = {&f, f.http_addr, kinds, nk};
    assert_true(eu_run_until(&f.loop, have_each_kind, &w, 15000));

    const char *a = f.http_addr;
    const struct cd_snapshot *s = eu_find(&f.sink, a, "ok", 0);
    assert_non_null(s);
    assert_int_equal(s->status, CD_SNAP_OK);
    assert_int_equal(s->http_status, 200);
    assert_int_equal(s->raw_len, sizeof(ok_body));
    assert_memory_equal(s->raw, ok_body, sizeof(ok_body));
    assert_string_equal(s->content_type, "application/octet-stream");
    assert_string_equal(s->scheme, "http");
    assert_string_equal(s->job, "h");
    assert_non_null(strstr(s->request, "/ok"));
    /* scheduled_ms is the monotonic deadline mapped to wall time, start_ms a wall reading: the
     * two clocks may disagree by a millisecond or so. */
    assert_true(s->scheduled_ms > 0 && s->start_ms + 5 >= s->scheduled_ms);
    assert_non_null(strstr(s->labels_json, "\"job\":\"h\""));

    s = eu_find(&f.sink, a, "chunked", 0);
    assert_int_equal(s->status, CD_SNAP_OK);
    assert_int_equal(s->raw_len, 11);
    assert_memory_equal(s->raw, "hello world", 11);

    s = eu_find(&f.sink, a, "e404", 0);
    assert_int_equal(s->status, CD_SNAP_HTTP_ERROR);
    assert_int_equal(s->http_status, 404);
    assert_int_equal(s->raw_len, 16);
    assert_memory_equal(s->raw, "Unknown profile\n", 16);
    assert_non_null(strstr(s->error, "does not serve this profile"));

    s = eu_find(&f.sink, a, "busy", 0);
    assert_int_equal(s->status, CD_SNAP_BUSY);
    assert_int_equal(s->http_status, 500);
    assert_non_null(strstr(s->error, "already in use"));

    s = eu_find(&f.sink, a, "wt", 0);
    assert_int_equal(s->status, CD_SNAP_HTTP_ERROR);
    assert_non_null(strstr(s->error, "WriteTimeout"));

    s = eu_find(&f.sink, a, "truncated", 0);
    assert_int_equal(s->status, CD_SNAP_ERROR);
    assert_null(s->raw);
    assert_non_null(strstr(s->error, "truncated"));

    s = eu_find(&f.sink, a, "reset", 0);
    assert_int_equal(s->status, CD_SNAP_CONNECT_ERROR);

    s = eu_find(&f.sink, a, "slow", 0);
    assert_int_equal(s->status, CD_SNAP_TIMEOUT);
    assert_true(s->duration_ms >= 650 && s->duration_ms < 2000);

    s = eu_find(&f.sink, a, "huge", 0);
    assert_int_equal(s->status, CD_SNAP_TOO_LARGE);
    assert_null(s->raw);

    /* Health: the target answered last with something; busy keeps it up. Per kind failures. */
    struct cd_scrape_health *h = NULL;
    assert_int_equal(cd_scrape_health(f.sc, &h), 0);
    assert_int_equal(h->n, 1);
    assert_int_equal(h->targets[0].n_kinds, nk);
    for (size_t i = 0; i < h->targets[0].n_kinds; i++) {
        const struct cd_scrape_kind_health *k = &h->targets[0].kinds[i];
        assert_true(k->scheduled);
        assert_true(k->next_ms > 0);
        if (strcmp(k->kind, "ok") == 0 || strcmp(k->kind, "chunked") == 0) {
            assert_int_equal(k->consecutive_failures, 0);
            assert_string_equal(k->last_status, "ok");
        }
        if (strcmp(k->kind, "busy") == 0)
            assert_int_equal(k->consecutive_failures, 0);
        if (strcmp(k->kind, "e404") == 0) {
            assert_true(k->consecutive_failures >= 1);
            assert_non_null(k->last_error);
        }
    }
    cd_scrape_health_free(h);

    /* Events: each failing kind is reported once, not per scrape. */
    assert_true(f.sink.events >= 7 && f.sink.events <= 7 + 2);

    /* The sent request: our User-Agent, never Accept-Encoding; keep-alive reuse. */
    assert_int_equal(atomic_load(&f.hs->user_agent_ok), 1);
    assert_int_equal(atomic_load(&f.hs->accept_encoding_seen), 0);

    struct cd_scrape_metrics *m = NULL;
    assert_int_equal(cd_scrape_metrics(f.sc, &m), 0);
    assert_true(m->started >= w.n);
    assert_true(m->delivered >= w.n);
    assert_true(m->n_results >= 8);
    assert_true(m->bytes_received > 0);
    cd_scrape_metrics_free(m);
    fx_stop(&f);
}

static void test_connection_reuse(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct eu_kind kinds[] = {K_HTTP("ok", "/ok", 100, 2000)};
    struct cd_target_set set = {0};
    eu_add_target(&set, "h", CD_SCHEME_HTTP, f.http_addr, NULL, kinds, 1, 1 << 20);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scrape_set_targets(f.sc, &set, &err), 0);
    cd_target_set_free(&set);
    struct want w = {&f, 8};
    assert_true(eu_run_until(&f.loop, have_n, &w, 5000));
    assert_int_equal(atomic_load(&f.hs->http_conns), 1);
    /* Absolute deadlines: consecutive scheduled slots a whole number of intervals apart (no
     * drift; a slot missed on a loaded machine is skipped, not shifted). */
    for (size_t i = 1; i < f.sink.n; i++) {
        int64_t gap = f.sink.v[i]->scheduled_ms - f.sink.v[i - 1]->scheduled_ms;
        assert_true(gap > 0 && gap % 100 == 0);
    }
    fx_stop(&f);
}

static void test_gops(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct eu_kind kinds[] = {
        {"version", NULL, NULL, CD_GOPS_VERSION, 0, 200, 2000},
        {"stats", NULL, NULL, CD_GOPS_STATS, 0, 200, 2000},
        {"memstats", NULL, NULL, CD_GOPS_MEMSTATS, 0, 200, 2000},
        {"cpu", NULL, NULL, CD_GOPS_CPU, 0, 200, 500},
        {"goroutine_dump", NULL, NULL, CD_GOPS_STACK, 0, 200, 2000},
    };
    struct cd_target_set set = {0};
    eu_add_target(&set, "g", CD_SCHEME_GOPS, f.gops_addr, NULL, kinds, 5, 1 << 20);
    /* An agent nobody listens on. */
    eu_add_target(&set, "g", CD_SCHEME_GOPS, "127.0.0.1:1", NULL, kinds, 1, 1 << 20);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scrape_set_targets(f.sc, &set, &err), 0);
    cd_target_set_free(&set);
    struct want w = {&f, 14};
    assert_true(eu_run_until(&f.loop, have_n, &w, 15000));
    const char *a = f.gops_addr;
    const struct cd_snapshot *s = eu_find(&f.sink, a, "version", 0);
    assert_non_null(s);
    assert_int_equal(s->status, CD_SNAP_OK);
    assert_int_equal(s->raw_len, 9);
    assert_memory_equal(s->raw, "go1.19.8\n", 9);
    assert_string_equal(s->scheme, "gops");
    assert_int_equal(s->http_status, 0);
    assert_true(cd_str_has_prefix(s->request, "gops://") && cd_str_has_suffix(s->request, " 0x04"));
    s = eu_find(&f.sink, a, "stats", 0);
    assert_int_equal(s->status, CD_SNAP_OK);
    s = eu_find(&f.sink, a, "cpu", 0);
    assert_non_null(s);
    assert_int_equal(s->status, CD_SNAP_BUSY);
    assert_non_null(strstr(s->error, "already in use"));
    /* A reset right after the bytes: the kernel may report it as an error or as the end. */
    s = eu_find(&f.sink, a, "goroutine_dump", 0);
    assert_true(s->status == CD_SNAP_ERROR || s->status == CD_SNAP_OK);
    if (s->status == CD_SNAP_ERROR)
        assert_non_null(strstr(s->error, "truncated"));
    s = eu_find(&f.sink, "127.0.0.1:1", "version", 0);
    assert_non_null(s);
    assert_int_equal(s->status, CD_SNAP_CONNECT_ERROR);
    /* Serialized: never two connections to the agent at once. */
    assert_int_equal(atomic_load(&f.hs->gops_max), 1);

    struct cd_scrape_health *h = NULL;
    assert_int_equal(cd_scrape_health(f.sc, &h), 0);
    assert_int_equal(h->n, 2);
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->targets[i].address, "127.0.0.1:1") == 0) {
            assert_string_equal(h->targets[i].health, "down");
            assert_true(h->targets[i].consecutive_failures >= 1);
        }
    }
    cd_scrape_health_free(h);
    fx_stop(&f);
}

static void test_byte_budget_and_cap(void **state)
{
    (void)state;
    /* A budget far below the body cap: the huge body is cut by the budget. */
    struct cd_scrape_opts o = {.max_inflight_bytes = 256 << 10};
    struct fx f;
    fx_start(&f, &o);
    struct eu_kind kinds[] = {K_HTTP("huge", "/huge", 300, 5000)};
    struct cd_target_set set = {0};
    eu_add_target(&set, "h", CD_SCHEME_HTTP, f.http_addr, NULL, kinds, 1, 64 << 20);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scrape_set_targets(f.sc, &set, &err), 0);
    cd_target_set_free(&set);
    struct want w = {&f, 2};
    assert_true(eu_run_until(&f.loop, have_n, &w, 10000));
    const struct cd_snapshot *s = f.sink.v[0];
    assert_int_equal(s->status, CD_SNAP_TOO_LARGE);
    assert_non_null(strstr(s->error, "budget"));
    struct cd_scrape_metrics *m = NULL;
    assert_int_equal(cd_scrape_metrics(f.sc, &m), 0);
    assert_true(m->inflight_bytes_peak <= (256 << 10));
    assert_true(m->cut_budget >= 2);
    cd_scrape_metrics_free(m);
    fx_stop(&f);
}

static void test_sink_full_drops(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    f.sink.refuse = true;
    struct eu_kind kinds[] = {K_HTTP("ok", "/ok", 100, 2000)};
    struct cd_target_set set = {0};
    eu_add_target(&set, "h", CD_SCHEME_HTTP, f.http_addr, NULL, kinds, 1, 1 << 20);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scrape_set_targets(f.sc, &set, &err), 0);
    cd_target_set_free(&set);
    struct cd_scrape_metrics *m = NULL;
    for (int i = 0; i < 200; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
        assert_int_equal(cd_scrape_metrics(f.sc, &m), 0);
        bool enough = m->dropped_queue_full >= 3;
        cd_scrape_metrics_free(m);
        if (enough)
            break;
    }
    assert_int_equal(cd_scrape_metrics(f.sc, &m), 0);
    assert_true(m->dropped_queue_full >= 3);
    assert_int_equal(m->delivered, 0);
    cd_scrape_metrics_free(m);
    fx_stop(&f);
}

struct cap_state {
    int reports;
    size_t started, refused;
    char refused_kinds[256];
    int done_calls;
    int done_rc;
};

static void on_report(void *ctx, const struct cd_capture_report *r)
{
    struct cap_state *c = ctx;
    c->reports++;
    c->started += r->n_started;
    c->refused += r->n_refused;
    for (size_t i = 0; i < r->n_refused; i++) {
        strncat(c->refused_kinds, r->refused[i].kind,
                sizeof(c->refused_kinds) - strlen(c->refused_kinds) - 2);
        strncat(c->refused_kinds, ",", sizeof(c->refused_kinds) - strlen(c->refused_kinds) - 1);
    }
}

static bool report_seen(void *ctx)
{
    return ((struct cap_state *)ctx)->reports > 0;
}

static void test_capture(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    /* Scheduled once an hour: only the capture makes it run now. */
    struct eu_kind kinds[] = {K_HTTP("heap", "/ok/debug/pprof/heap", 3600000, 2000)};
    struct eu_kind gk[] = {{"version", NULL, NULL, CD_GOPS_VERSION, 0, 3600000, 2000}};
    struct cd_target_set set = {0};
    eu_add_target(&set, "api", CD_SCHEME_HTTP, f.http_addr, NULL, kinds, 1, 1 << 20);
    eu_add_target(&set, "other", CD_SCHEME_GOPS, f.gops_addr, NULL, gk, 1, 1 << 20);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scrape_set_targets(f.sc, &set, &err), 0);
    cd_target_set_free(&set);

    struct cap_state cs = {0};
    const char *ks[] = {"heap", "memory", "memstats", "nosuch"};
    struct cd_capture_req req = {
        .selector = {.job = "api"},
        .kinds = ks,
        .n_kinds = 4,
        .incident = "inc-1",
        .on_report = on_report,
        .report_ctx = &cs,
    };
    assert_int_equal(cd_scrape_capture(f.sc, &req), 0);
    assert_true(eu_run_until(&f.loop, report_seen, &cs, 5000));
    /* heap (configured) and memory = allocs (derived path under the same base) start; memstats
     * is gops-only and nosuch unknown. */
    assert_int_equal(cs.started, 2);
    assert_int_equal(cs.refused, 2);
    assert_non_null(strstr(cs.refused_kinds, "memstats"));
    assert_non_null(strstr(cs.refused_kinds, "nosuch"));
    struct want w = {&f, 2};
    assert_true(eu_run_until(&f.loop, have_n, &w, 5000));
    for (size_t i = 0; i < f.sink.n; i++) {
        const struct cd_snapshot *s = f.sink.v[i];
        assert_string_equal(s->incident, "inc-1");
        assert_int_equal(s->scheduled_ms, 0);
        assert_int_equal(s->status, CD_SNAP_OK);
    }
    const struct cd_snapshot *al = eu_find(&f.sink, f.http_addr, "allocs", 0);
    assert_non_null(al);
    assert_non_null(strstr(al->request, "/ok/debug/pprof/allocs"));

    /* Default kinds on a gops target; a label selector that matches nothing. */
    struct cap_state c2 = {0};
    struct cd_capture_req r2 = {
        .selector = {.target = f.gops_addr}, .on_report = on_report, .report_ctx = &c2};
    assert_int_equal(cd_scrape_capture(f.sc, &r2), 0);
    assert_true(eu_run_until(&f.loop, report_seen, &c2, 5000));
    assert_int_equal(c2.started, 5);
    struct cd_labels none = {0};
    cd_labels_set(&none, "team", "nobody");
    struct cap_state c3 = {0};
    struct cd_capture_req r3 = {
        .selector = {.labels = &none}, .on_report = on_report, .report_ctx = &c3};
    assert_int_equal(cd_scrape_capture(f.sc, &r3), 0);
    cd_labels_free(&none);
    assert_true(eu_run_until(&f.loop, report_seen, &c3, 5000));
    assert_int_equal(c3.started + c3.refused, 0);
    fx_stop(&f);
}

static void test_reconcile(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct eu_kind kinds[] = {K_HTTP("ok", "/ok", 100, 2000)};
    struct eu_kind slow[] = {K_HTTP("slow", "/slow", 100, 60000)};
    struct cd_target_set set = {0};
    eu_add_target(&set, "a", CD_SCHEME_HTTP, f.http_addr, NULL, kinds, 1, 1 << 20);
    eu_add_target(&set, "b", CD_SCHEME_HTTP, f.http_addr, NULL, slow, 1, 1 << 20);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scrape_set_targets(f.sc, &set, &err), 0);
    cd_target_set_free(&set);
    struct want w = {&f, 3};
    assert_true(eu_run_until(&f.loop, have_n, &w, 5000));
    struct cd_scrape_health *h = NULL;
    assert_int_equal(cd_scrape_health(f.sc, &h), 0);
    int64_t next_before = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->targets[i].job, "a") == 0)
            next_before = h->targets[i].kinds[0].next_ms;
    }
    cd_scrape_health_free(h);

    /* Same a (unchanged), b removed while its slow scrape is in flight, c new. */
    eu_add_target(&set, "a", CD_SCHEME_HTTP, f.http_addr, NULL, kinds, 1, 1 << 20);
    eu_add_target(&set, "c", CD_SCHEME_HTTP, f.http_addr, NULL, kinds, 1, 1 << 20);
    eu_add_target(&set, "c", CD_SCHEME_HTTP, f.http_addr, NULL, slow, 1, 1 << 20); /* dup id */
    assert_int_equal(cd_scrape_set_targets(f.sc, &set, &err), 0);
    assert_int_equal(set.n, 0);
    cd_target_set_free(&set);
    assert_int_equal(cd_scrape_health(f.sc, &h), 0);
    assert_int_equal(h->n, 2);
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->targets[i].job, "a") == 0)
            assert_true(h->targets[i].kinds[0].next_ms >= next_before);
        else
            assert_string_equal(h->targets[i].kinds[0].kind, "ok");
    }
    cd_scrape_health_free(h);
    size_t before = f.sink.n;
    w.n = before + 6;
    assert_true(eu_run_until(&f.loop, have_n, &w, 5000));
    /* Changed fingerprint (interval): the schedule moves to the new interval. */
    struct eu_kind k2[] = {K_HTTP("ok", "/ok", 250, 2000)};
    eu_add_target(&set, "a", CD_SCHEME_HTTP, f.http_addr, NULL, k2, 1, 1 << 20);
    assert_int_equal(cd_scrape_set_targets(f.sc, &set, &err), 0);
    cd_target_set_free(&set);
    assert_int_equal(cd_scrape_health(f.sc, &h), 0);
    assert_int_equal(h->n, 1);
    assert_int_equal(h->targets[0].kinds[0].interval_ms, 250);
    cd_scrape_health_free(h);
    /* The removed b's slow scrape is still in flight: stop cancels it (no snapshot). */
    fx_stop(&f);
}

static void test_stop_cancels_with_deadline(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct eu_kind kinds[] = {K_HTTP("hang", "/hang", 100, 60000)};
    struct cd_target_set set = {0};
    eu_add_target(&set, "h", CD_SCHEME_HTTP, f.http_addr, NULL, kinds, 1, 1 << 20);
    struct eu_kind gk[] = {{"cpu", NULL, NULL, CD_GOPS_CPU, 0, 100, 60000}};
    eu_add_target(&set, "g", CD_SCHEME_GOPS, f.gops_addr, NULL, gk, 1, 1 << 20);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scrape_set_targets(f.sc, &set, &err), 0);
    cd_target_set_free(&set);
    struct cd_scrape_metrics *m = NULL;
    for (int i = 0; i < 100; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
        assert_int_equal(cd_scrape_metrics(f.sc, &m), 0);
        size_t inflight = m->inflight;
        cd_scrape_metrics_free(m);
        if (inflight == 2)
            break;
    }
    int64_t t0 = cdt_now_ms();
    eu_stop_and_close(&f.loop, f.sc, 300);
    int64_t took = cdt_now_ms() - t0;
    assert_true(took >= 290 && took < 3000);
    assert_int_equal(f.sink.n, 0);
    hs_stop(f.hs);
    eu_sink_free(&f.sink);
}

/* ---- the clients on their own ------------------------------------------------------------- */

static void test_http_classify(void **state)
{
    (void)state;
    struct cd_http_result r;
    memset(&r, 0, sizeof(r));
    char *msg;
    r.code = CURLE_OK;
    r.http_status = 405;
    r.body = (uint8_t *)"Method Not Allowed\n";
    r.body_len = 19;
    assert_int_equal(cd_http_classify(&r, &msg), CD_SNAP_HTTP_ERROR);
    assert_non_null(strstr(msg, "GET only"));
    free(msg);
    r.http_status = 500;
    r.body = (uint8_t *)"Could not enable tracing: runtime error: tracing is already enabled\n";
    r.body_len = strlen((char *)r.body);
    assert_int_equal(cd_http_classify(&r, &msg), CD_SNAP_BUSY);
    free(msg);
    r.http_status = 200;
    assert_int_equal(cd_http_classify(&r, &msg), CD_SNAP_OK);
    assert_null(msg);
    r.code = CURLE_OPERATION_TIMEDOUT;
    assert_int_equal(cd_http_classify(&r, &msg), CD_SNAP_TIMEOUT);
    free(msg);
    r.code = CURLE_COULDNT_CONNECT;
    assert_int_equal(cd_http_classify(&r, &msg), CD_SNAP_CONNECT_ERROR);
    free(msg);
    r.code = CURLE_SSL_CONNECT_ERROR;
    assert_int_equal(cd_http_classify(&r, &msg), CD_SNAP_ERROR);
    free(msg);

    struct cd_gops_result g;
    memset(&g, 0, sizeof(g));
    g.cmd = CD_GOPS_TRACE;
    g.status = UV_ETIMEDOUT;
    g.timed_out = g.connected = g.resolved = true;
    assert_int_equal(cd_gops_classify(&g, &msg), CD_SNAP_BUSY);
    assert_non_null(strstr(msg, "tracer"));
    free(msg);
    g.cmd = CD_GOPS_STATS;
    assert_int_equal(cd_gops_classify(&g, &msg), CD_SNAP_TIMEOUT);
    free(msg);
    g.timed_out = false;
    g.status = 0;
    assert_int_equal(cd_gops_classify(&g, &msg), CD_SNAP_ERROR);
    assert_non_null(strstr(msg, "empty reply"));
    free(msg);
}

static void test_http_rejects_other_protocols(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct cd_http *h = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_http_new(&loop, NULL, &h, &err), 0);
    struct cd_http_request req = {.url = "file:///etc/passwd"};
    assert_int_equal(cd_http_start(h, &req, NULL, NULL, NULL, &err), -EINVAL);
    struct cd_gops_request g = {.host = "127.0.0.1", .port = 1, .cmd = CD_GOPS_SETGC};
    assert_int_equal(cd_gops_start(&loop, &g, NULL, NULL, NULL, &err), -EINVAL);
    cd_http_close(h, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cd_http_free(h);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- worker pool -------------------------------------------------------------------------- */

struct wjob {
    atomic_int *ran;
    int *done;
    int *cancelled;
};

static void wrun(void *arg)
{
    struct wjob *j = arg;
    atomic_fetch_add(j->ran, 1);
}

static void wdone(void *arg, int cancelled)
{
    struct wjob *j = arg;
    (*j->done)++;
    if (cancelled)
        (*j->cancelled)++;
    free(j);
}

struct wstop {
    bool stopped;
};

static void on_wstop(struct cd_worker *w, void *ctx)
{
    (void)w;
    ((struct wstop *)ctx)->stopped = true;
}

static bool wstopped(void *ctx)
{
    return ((struct wstop *)ctx)->stopped;
}

static void test_worker(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct cd_worker *w = NULL;
    struct cd_err err;
    cd_err_init(&err);
    struct cd_worker_opts o = {.threads = 2, .max_jobs = 8, .max_bytes = 1000};
    assert_int_equal(cd_worker_new(&loop, &o, &w, &err), 0);
    atomic_int ran = 0;
    int done = 0, cancelled = 0, accepted = 0, rejected = 0;
    for (int i = 0; i < 20; i++) {
        struct wjob *j = malloc(sizeof(*j));
        *j = (struct wjob){&ran, &done, &cancelled};
        int rc = cd_worker_submit(w, wrun, wdone, j, 100);
        if (rc == 0) {
            accepted++;
        } else {
            assert_int_equal(rc, -EAGAIN);
            rejected++;
            free(j);
        }
    }
    /* Nothing finishes until the loop runs: the bound holds the 8 first. */
    assert_int_equal(accepted, 8);
    assert_int_equal(rejected, 12);
    /* Bytes bound: 8 jobs * 100 = 800 held; 300 more do not fit. */
    assert_false(cd_worker_has_room(w, 300));
    struct wstop ws = {false};
    cd_worker_stop(w, CD_WORKER_DRAIN, on_wstop, &ws);
    assert_true(eu_run_until(&loop, wstopped, &ws, 5000));
    assert_int_equal(atomic_load(&ran), 8);
    assert_int_equal(done, 8);
    assert_int_equal(cancelled, 0);
    struct cd_worker_stats st;
    cd_worker_stats(w, &st);
    assert_int_equal(st.completed, 8);
    assert_int_equal(st.jobs, 0);
    assert_int_equal(cd_worker_submit(w, wrun, wdone, NULL, 1), -ESHUTDOWN);
    cd_worker_free(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void wslow(void *arg)
{
    (void)arg;
    /* Long enough that discard finds queued jobs behind the two running ones. */
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void test_worker_discard(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct cd_worker *w = NULL;
    struct cd_err err;
    cd_err_init(&err);
    struct cd_worker_opts o = {.threads = 2, .max_jobs = 64};
    assert_int_equal(cd_worker_new(&loop, &o, &w, &err), 0);
    atomic_int ran = 0;
    int done = 0, cancelled = 0;
    for (int i = 0; i < 40; i++) {
        struct wjob *j = malloc(sizeof(*j));
        *j = (struct wjob){&ran, &done, &cancelled};
        assert_int_equal(cd_worker_submit(w, wslow, wdone, j, 1), 0);
    }
    struct wstop ws = {false};
    cd_worker_stop(w, CD_WORKER_DISCARD, on_wstop, &ws);
    assert_true(eu_run_until(&loop, wstopped, &ws, 5000));
    assert_int_equal(done, 40);
    assert_true(cancelled >= 30);
    cd_worker_free(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_classify),
        cmocka_unit_test(test_http_rejects_other_protocols),
        cmocka_unit_test(test_worker),
        cmocka_unit_test(test_worker_discard),
        cmocka_unit_test(test_http_statuses),
        cmocka_unit_test(test_connection_reuse),
        cmocka_unit_test(test_gops),
        cmocka_unit_test(test_byte_budget_and_cap),
        cmocka_unit_test(test_sink_full_drops),
        cmocka_unit_test(test_capture),
        cmocka_unit_test(test_reconcile),
        cmocka_unit_test(test_stop_cancels_with_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
