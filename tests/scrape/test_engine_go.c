/*
 * The scrape engine against a real Go program, a target of the shared test fleet (tests/fleet: the
 * real net/http/pprof and a gops-protocol agent): every kind delivered with sound bytes, gops
 * version equal to a direct request, and two CPU profiles of one process never overlapping,
 * across HTTP and gops.
 */
#include "cdtest.h"
#include "engine_util.h"
#include "fleet.h"

#include "kind.h"
#include "str.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct gt {
    struct cdt_fleet fleet;
    int pprof_port, gops_port;
    char http_addr[64], gops_addr[64], pid_str[16];
};

/* One fleet target (cpu workload: something in the CPU profile) whose agent profiles for
 * cpu_duration instead of the real agent's 30 s and traces for 1 s. */
static void gt_start(struct gt *g, const char *cpu_duration)
{
    memset(g, 0, sizeof(*g));
    const char *args[] = {
        "-workload", "cpu", "-gops-cpu-duration", cpu_duration, "-gops-trace-duration", "1s", NULL};
    assert_int_equal(cdt_fleet_start(&g->fleet, args, 30000), 0);
    const struct cdt_fleet_target *t = &g->fleet.targets[0];
    g->pprof_port = t->pprof_port;
    g->gops_port = t->gops_port;
    snprintf(g->http_addr, sizeof(g->http_addr), "127.0.0.1:%d", g->pprof_port);
    snprintf(g->gops_addr, sizeof(g->gops_addr), "127.0.0.1:%d", g->gops_port);
    snprintf(g->pid_str, sizeof(g->pid_str), "%d", t->pid);
}

static void gt_stop(struct gt *g)
{
    cdt_fleet_stop(&g->fleet);
}

/* A direct gops request with blocking sockets, to compare bytes with the engine's. */
static size_t gops_direct(int port, unsigned char cmd, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(write(fd, &cmd, 1), 1);
    size_t n = 0;
    ssize_t r;
    while (n < cap && (r = read(fd, out + n, cap - n)) > 0)
        n += (size_t)r;
    close(fd);
    return n;
}

struct fx {
    uv_loop_t loop;
    struct cd_scrape *sc;
    struct eu_sink sink;
};

static void fx_start(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    struct cd_scrape_opts o = {.sink = eu_sink_fn, .sink_ctx = &f->sink};
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scrape_new(&f->loop, &o, &f->sc, &err), 0);
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

static bool gzip_magic(const struct cd_snapshot *s)
{
    return s->raw_len > 18 && s->raw[0] == 0x1f && s->raw[1] == 0x8b && s->raw[2] == 0x08;
}

static void test_every_kind(void **state)
{
    (void)state;
    struct gt g;
    gt_start(&g, "1s");
    struct fx f;
    fx_start(&f);
    const int64_t H = 3600000; /* scheduled hourly: the capture below runs them now */
    struct eu_kind hk[] = {
        {"cpu", "/debug/pprof/profile", "seconds=1", 0, 1, H, 6000},
        {"heap", "/debug/pprof/heap", NULL, 0, 0, H, 5000},
        {"allocs", "/debug/pprof/allocs", NULL, 0, 0, H, 5000},
        {"goroutine", "/debug/pprof/goroutine", NULL, 0, 0, H, 5000},
        {"goroutine_dump", "/debug/pprof/goroutine", "debug=2", 0, 0, H, 5000},
        {"mutex", "/debug/pprof/mutex", NULL, 0, 0, H, 5000},
        {"block", "/debug/pprof/block", NULL, 0, 0, H, 5000},
        {"threadcreate", "/debug/pprof/threadcreate", NULL, 0, 0, H, 5000},
        {"trace", "/debug/pprof/trace", "seconds=1", 0, 1, H, 6000},
    };
    struct eu_kind gk[] = {
        {"goroutine_dump", NULL, NULL, CD_GOPS_STACK, 0, H, 5000},
        {"memstats", NULL, NULL, CD_GOPS_MEMSTATS, 0, H, 5000},
        {"stats", NULL, NULL, CD_GOPS_STATS, 0, H, 5000},
        {"version", NULL, NULL, CD_GOPS_VERSION, 0, H, 5000},
        {"heap", NULL, NULL, CD_GOPS_HEAP, 0, H, 5000},
        {"cpu", NULL, NULL, CD_GOPS_CPU, 1, H, 6000},
        {"trace", NULL, NULL, CD_GOPS_TRACE, 1, H, 6000},
    };
    size_t nh = sizeof(hk) / sizeof(hk[0]), ng = sizeof(gk) / sizeof(gk[0]);
    struct cd_target_set set = {0};
    eu_add_target(&set, "go", CD_SCHEME_HTTP, g.http_addr, g.pid_str, hk, nh, 64 << 20);
    eu_add_target(&set, "go", CD_SCHEME_GOPS, g.gops_addr, g.pid_str, gk, ng, 64 << 20);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scrape_set_targets(f.sc, &set, &err), 0);
    cd_target_set_free(&set);
    const char *all[] = {"cpu",   "heap",   "allocs",       "goroutine", "goroutine_dump",
                         "mutex", "block",  "threadcreate", "trace",     "memstats",
                         "stats", "version"};
    struct cd_capture_req req = {.selector = {.job = "go"}, .kinds = all, .n_kinds = 12};
    assert_int_equal(cd_scrape_capture(f.sc, &req), 0);
    struct want w = {&f, nh + ng};
    assert_true(eu_run_until(&f.loop, have_n, &w, 40000));

    for (size_t i = 0; i < f.sink.n; i++) {
        const struct cd_snapshot *s = f.sink.v[i];
        if (s->status != CD_SNAP_OK)
            print_message("%s %s: %s %s\n", s->scheme, s->kind, cd_snap_status_name(s->status),
                          s->error);
        assert_int_equal(s->status, CD_SNAP_OK);
        assert_non_null(s->raw);
        assert_true(s->duration_ms >= 0);
        const struct cd_kind_info *ki = cd_kind_lookup(s->kind);
        assert_non_null(ki);
        if (ki->format == CD_FORMAT_PPROF)
            assert_true(gzip_magic(s));
        if (ki->format == CD_FORMAT_TRACE)
            assert_true(s->raw_len > 16 && memcmp(s->raw, "go 1.", 5) == 0 &&
                        memcmp(s->raw + 8, "trace", 5) == 0);
        if (ki->format == CD_FORMAT_GOROUTINE_TEXT)
            assert_true(cd_str_has_prefix((const char *)s->raw, "goroutine "));
        if (strcmp(s->scheme, "http") == 0) {
            assert_int_equal(s->http_status, 200);
            assert_non_null(s->content_type);
        }
        /* The seconds=N kinds take about N seconds: time to first byte ≈ duration. */
        if (strcmp(s->kind, "cpu") == 0 || strcmp(s->kind, "trace") == 0)
            assert_true(s->duration_ms >= 900);
    }
    /* Exact bytes where the content is stable: the gops version reply. */
    char direct[64];
    size_t dn = gops_direct(g.gops_port, 0x04, direct, sizeof(direct));
    const struct cd_snapshot *v = eu_find(&f.sink, g.gops_addr, "version", 0);
    assert_non_null(v);
    assert_int_equal(v->raw_len, dn);
    assert_memory_equal(v->raw, direct, dn);
    const struct cd_snapshot *ms = eu_find(&f.sink, g.gops_addr, "memstats", 0);
    assert_non_null(memmem(ms->raw, ms->raw_len, "alloc: ", 7));
    const struct cd_snapshot *st = eu_find(&f.sink, g.gops_addr, "stats", 0);
    assert_non_null(memmem(st->raw, st->raw_len, "goroutines: ", 12));

    eu_stop_and_close(&f.loop, f.sc, 1000);
    eu_sink_free(&f.sink);
    gt_stop(&g);
}

static void test_cpu_profiles_never_overlap(void **state)
{
    (void)state;
    struct gt g;
    gt_start(&g, "2s");
    struct fx f;
    fx_start(&f);
    /* A 5 s profile every 2 s over HTTP, and the agent's (2 s) every 2 s, one process. */
    struct eu_kind hk[] = {{"cpu", "/debug/pprof/profile", "seconds=5", 0, 5, 2000, 8000}};
    struct eu_kind gk[] = {{"cpu", NULL, NULL, CD_GOPS_CPU, 2, 2000, 5000}};
    struct cd_target_set set = {0};
    eu_add_target(&set, "go", CD_SCHEME_HTTP, g.http_addr, g.pid_str, hk, 1, 64 << 20);
    eu_add_target(&set, "go", CD_SCHEME_GOPS, g.gops_addr, g.pid_str, gk, 1, 64 << 20);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scrape_set_targets(f.sc, &set, &err), 0);
    cd_target_set_free(&set);
    struct want w = {&f, 4};
    assert_true(eu_run_until(&f.loop, have_n, &w, 30000));
    size_t n_http = 0, n_gops = 0;
    for (size_t i = 0; i < f.sink.n; i++) {
        const struct cd_snapshot *a = f.sink.v[i];
        /* Never busy: the engine never asked while another profile ran. */
        assert_int_equal(a->status, CD_SNAP_OK);
        assert_true(gzip_magic(a));
        if (strcmp(a->scheme, "http") == 0)
            n_http++;
        else
            n_gops++;
        for (size_t j = 0; j < f.sink.n; j++) {
            const struct cd_snapshot *b = f.sink.v[j];
            if (i == j)
                continue;
            int64_t a0 = a->start_ms, a1 = a->start_ms + a->duration_ms;
            int64_t b0 = b->start_ms, b1 = b->start_ms + b->duration_ms;
            /* 1 ms of slack: start and duration come from two clocks. */
            assert_true(a1 <= b0 + 1 || b1 <= a0 + 1);
        }
    }
    assert_true(n_http >= 1 && n_gops >= 1);
    struct cd_scrape_metrics *m = NULL;
    assert_int_equal(cd_scrape_metrics(f.sc, &m), 0);
    assert_true(m->skipped_overlap + m->skipped_exclusive > 0);
    print_message("cpu profiles: %zu http, %zu gops; skipped: overlap %llu, exclusive %llu\n",
                  n_http, n_gops, (unsigned long long)m->skipped_overlap,
                  (unsigned long long)m->skipped_exclusive);
    cd_scrape_metrics_free(m);
    eu_stop_and_close(&f.loop, f.sc, 100);
    eu_sink_free(&f.sink);
    gt_stop(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind),
        cmocka_unit_test(test_cpu_profiles_never_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
