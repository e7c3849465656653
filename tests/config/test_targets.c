/* Unit tests of targets: from config + groups to the resolved targets the scrape engine runs
 * (labels, relabeling, paths, queries, intervals, timeouts, gops kinds), and merging. */
#include "config.h"
#include "targets.h"

#include "cdtest.h"

#include <stdlib.h>
#include <string.h>

static struct cd_config *load(const char *yaml)
{
    struct cd_config *c = NULL;
    struct cd_config_diag d = {0};
    struct cd_err err;
    cd_err_init(&err);
    if (cd_config_parse("t.yaml", "/tmp", yaml, strlen(yaml), &c, &d, &err) != 0) {
        for (size_t i = 0; i < d.n; i++)
            print_message("  %s\n", d.lines[i]);
        cd_config_diag_free(&d);
        fail_msg("config: %s", cd_err_msg(&err));
    }
    return c;
}

static void build_static(const struct cd_config *c, size_t job, struct cd_target_set *out,
                         struct cd_targets_stats *st)
{
    memset(st, 0, sizeof(*st));
    assert_int_equal(cd_targets_build(c, &c->jobs[job], &c->jobs[job].static_groups, out, st), 0);
}

static const struct cd_kind_spec *kind(const struct cd_target *t, const char *name)
{
    for (size_t i = 0; i < t->n_kinds; i++) {
        if (strcmp(t->kinds[i].name, name) == 0)
            return &t->kinds[i];
    }
    return NULL;
}

static void test_static_targets(void **state)
{
    (void)state;
    struct cd_config *c =
        load("global: {scrape_interval: 30s, scrape_timeout: 5s, external_labels: {region: eu}}\n"
             "limits: {max_body_bytes: 1MiB}\n"
             "scrape_configs:\n"
             "  - job_name: api\n"
             "    params: {tenant: [\"a b\"], debug: [\"0\"]}\n"
             "    bearer_token: tok\n"
             "    follow_redirects: true\n"
             "    tls_config: {insecure_skip_verify: true}\n"
             "    static_configs:\n"
             "      - targets: [\"10.0.0.5:6060\", \"gops://10.0.0.5:4321\", \"https://[::1]:7\", "
             "\"web\"]\n"
             "        labels: {team: payments, __scheme__: http}\n"
             "    profiling_config:\n"
             "      path_prefix: /x/\n"
             "      pprof_config:\n"
             "        cpu: {seconds: 7, params: {tenant: [k1, k2]}}\n"
             "        goroutine_dump: {enabled: true, interval: 2m}\n"
             "        trace: {enabled: true}\n"
             "        fgprof: {path: /debug/fgprof, seconds: 3}\n"
             "    gops_config:\n"
             "      cpu: {enabled: true, interval: 1m}\n"
             "      stats: {enabled: false}\n");
    struct cd_target_set set = {0};
    struct cd_targets_stats st;
    build_static(c, 0, &set, &st);
    assert_int_equal(st.built, 4);
    assert_int_equal(st.invalid, 0);
    assert_int_equal(set.n, 4);

    const struct cd_target *t = &set.v[0];
    assert_string_equal(t->id, "api/http://10.0.0.5:6060");
    assert_string_equal(t->host, "10.0.0.5");
    assert_int_equal(t->port, 6060);
    assert_string_equal(t->process_key, "10.0.0.5");
    assert_string_equal(cd_labels_get(&t->labels, "job"), "api");
    assert_string_equal(cd_labels_get(&t->labels, "instance"), "10.0.0.5:6060");
    assert_string_equal(cd_labels_get(&t->labels, "team"), "payments");
    assert_null(cd_labels_get(&t->labels, "region")); /* external labels are not target labels */
    assert_int_equal(t->labels.n, 3);                 /* no __ labels left */
    assert_string_equal(t->auth.bearer, "tok");
    assert_string_equal(t->auth.auth_type, "Bearer");
    assert_true(t->tls.insecure_skip_verify);
    assert_int_equal(t->max_body_bytes, 1 << 20);
    assert_false(t->no_follow_redirects);
    assert_false(t->no_http2);
    assert_null(t->proxy_url);
    const struct cd_kind_spec *k = kind(t, "cpu");
    assert_non_null(k);
    assert_string_equal(k->path, "/x/debug/pprof/profile");
    /* job params, the kind's override of tenant, then seconds; sorted, escaped */
    assert_string_equal(k->query, "debug=0&seconds=7&tenant=k1&tenant=k2");
    assert_int_equal(k->seconds, 7);
    assert_int_equal(k->interval_ms, 30000);
    assert_int_equal(k->timeout_ms, 12000);
    assert_int_equal(k->exclusive, CD_EXCL_CPU);
    k = kind(t, "heap");
    assert_string_equal(k->query, "debug=0&tenant=a%20b");
    assert_int_equal(k->timeout_ms, 5000);
    k = kind(t, "goroutine_dump");
    assert_string_equal(k->path, "/x/debug/pprof/goroutine");
    assert_string_equal(k->query, "debug=2&tenant=a%20b"); /* the kind's fixed debug=2 wins */
    assert_int_equal(k->interval_ms, 120000);
    k = kind(t, "trace");
    assert_string_equal(k->query, "debug=0&seconds=1&tenant=a%20b");
    assert_int_equal(k->exclusive, CD_EXCL_TRACE);
    k = kind(t, "fgprof");
    assert_string_equal(k->path, "/x/debug/fgprof");
    assert_int_equal(k->timeout_ms, 8000);
    assert_null(kind(t, "threadcreate"));
    char *req = cd_target_request(t, kind(t, "cpu"));
    assert_string_equal(req, "http://10.0.0.5:6060/x/debug/pprof/profile?debug=0&seconds=7&"
                             "tenant=k1&tenant=k2");
    free(req);

    t = &set.v[1];
    assert_string_equal(t->id, "api/gops://10.0.0.5:4321");
    assert_int_equal(t->scheme, CD_SCHEME_GOPS);
    assert_null(kind(t, "stats"));
    k = kind(t, "cpu");
    assert_non_null(k);
    assert_int_equal(k->gops_cmd, 0x06);
    assert_int_equal(k->seconds, 30);
    assert_int_equal(k->timeout_ms, 35000);
    assert_null(k->path);
    assert_null(k->query);
    assert_int_equal(kind(t, "goroutine_dump")->gops_cmd, 0x01);
    assert_int_equal(kind(t, "memstats")->gops_cmd, 0x03);
    assert_int_equal(kind(t, "version")->gops_cmd, 0x04);
    assert_int_equal(kind(t, "heap")->gops_cmd, 0x05);
    assert_null(kind(t, "trace")); /* off by default for gops */
    assert_int_equal(t->n_kinds, 5);

    assert_string_equal(set.v[2].id, "api/https://[::1]:7");
    assert_string_equal(set.v[2].host, "::1");
    assert_string_equal(set.v[3].id, "api/http://web:80"); /* the scheme's default port */
    assert_string_equal(cd_labels_get(&set.v[3].labels, "instance"), "web:80");
    cd_target_set_free(&set);
    cd_config_free(c);
}

static void test_parca_relabel(void **state)
{
    (void)state;
    struct cd_config *c = load("scrape_configs:\n"
                               "  - job_name: default\n"
                               "    scrape_interval: 10s\n"
                               "    static_configs: [{targets: ['127.0.0.1:7070']}]\n"
                               "    profiling_config:\n"
                               "      pprof_config:\n"
                               "        fgprof: {enabled: true, path: /debug/pprof/fgprof, "
                               "delta: true}\n"
                               "        memory: {enabled: true}\n"
                               "        process_cpu: {enabled: true, delta: true}\n"
                               "    relabel_configs:\n"
                               "      - source_labels: [__address__]\n"
                               "        regex: '127\\.0\\.0\\.1:(\\d+)'\n"
                               "        target_label: port\n"
                               "      - action: drop\n"
                               "        source_labels: [__name__]\n"
                               "        regex: block|mutex\n"
                               "      - source_labels: [__name__]\n"
                               "        regex: fgprof\n"
                               "        target_label: __profile_path__\n"
                               "        replacement: /fg\n");
    struct cd_target_set set = {0};
    struct cd_targets_stats st;
    build_static(c, 0, &set, &st);
    assert_int_equal(set.n, 1);
    const struct cd_target *t = &set.v[0];
    assert_string_equal(t->id, "default/http://127.0.0.1:7070");
    assert_string_equal(cd_labels_get(&t->labels, "port"), "7070");
    assert_null(cd_labels_get(&t->labels, "__name__"));
    assert_null(kind(t, "block"));
    assert_null(kind(t, "mutex"));
    const struct cd_kind_spec *k = kind(t, "cpu");
    assert_string_equal(k->query, "seconds=10"); /* delta: seconds = scrape_interval */
    assert_int_equal(k->timeout_ms, 20000);
    k = kind(t, "allocs");
    assert_string_equal(k->path, "/debug/pprof/allocs");
    assert_string_equal(k->query, "");
    k = kind(t, "fgprof");
    assert_string_equal(k->path, "/fg");
    assert_string_equal(k->query, "seconds=10");
    assert_non_null(kind(t, "heap"));
    assert_non_null(kind(t, "goroutine"));
    cd_target_set_free(&set);
    cd_config_free(c);
}

static void test_relabel_targets(void **state)
{
    (void)state;
    struct cd_config *c =
        load("scrape_configs:\n"
             "  - job_name: j\n"
             "    params: {x: [\"1\"]}\n"
             "    static_configs:\n"
             "      - targets: [\"a:1\", \"b:2\", \"drop-me:3\", \"c:4\", \"gops://d:5\"]\n"
             "        labels: {env: prod}\n"
             "    relabel_configs:\n"
             "      - {action: drop, source_labels: [__address__], regex: 'drop-me:.*'}\n"
             "      - {source_labels: [__address__], regex: 'b:2', target_label: __address__, "
             "replacement: 'b.example:20'}\n"
             "      - {source_labels: [__address__], regex: 'c:4', target_label: __scheme__, "
             "replacement: https}\n"
             "      - {source_labels: [__address__], regex: 'a:1', target_label: __param_x, "
             "replacement: '2'}\n"
             "      - {source_labels: [__address__], regex: 'a:1', target_label: instance, "
             "replacement: alpha}\n"
             "      - {source_labels: [__address__], regex: 'd:5', target_label: __address__, "
             "replacement: 'not valid'}\n"
             "      - {action: labelmap, regex: 'env', replacement: environment}\n");
    struct cd_target_set set = {0};
    struct cd_targets_stats st;
    build_static(c, 0, &set, &st);
    assert_int_equal(st.built, 3);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.invalid, 1);
    assert_non_null(strstr(st.last_error, "not valid"));
    assert_int_equal(set.n, 3);
    assert_string_equal(set.v[0].id, "j/http://a:1");
    assert_string_equal(cd_labels_get(&set.v[0].labels, "instance"), "alpha");
    assert_string_equal(cd_labels_get(&set.v[0].labels, "environment"), "prod");
    assert_string_equal(kind(&set.v[0], "heap")->query, "x=2");
    assert_string_equal(set.v[1].id, "j/http://b.example:20");
    assert_string_equal(kind(&set.v[1], "heap")->query, "x=1");
    assert_string_equal(set.v[2].id, "j/https://c:4");
    cd_target_set_free(&set);
    cd_config_free(c);
}

static void test_discovered_labels(void **state)
{
    (void)state;
    struct cd_config *c = load("scrape_configs:\n  - job_name: local\n"
                               "    local_sd_configs: [{}]\n");
    struct cd_groups gs = {0};
    struct cd_group *g = cd_groups_add(&gs);
    struct cd_labels l = {0};
    cd_labels_set(&l, "pid", "4242");
    cd_labels_set(&l, "exe", "/usr/bin/app");
    cd_labels_set(&l, "go_version", "go1.19.8");
    cd_labels_set(&l, "__meta_local_comm", "app");
    assert_int_equal(cd_group_add_entry(g, "gops://127.0.0.1:5000", &l), 0);
    assert_int_equal(cd_group_add_entry(g, "http://127.0.0.1:6060", &l), 0);
    cd_labels_free(&l);
    struct cd_target_set set = {0};
    struct cd_targets_stats st = {0};
    assert_int_equal(cd_targets_build(c, &c->jobs[0], &gs, &set, &st), 0);
    assert_int_equal(set.n, 2);
    for (size_t i = 0; i < 2; i++) {
        const struct cd_target *t = &set.v[i];
        assert_string_equal(cd_labels_get(&t->labels, "pid"), "4242");
        assert_string_equal(cd_labels_get(&t->labels, "exe"), "/usr/bin/app");
        assert_string_equal(cd_labels_get(&t->labels, "go_version"), "go1.19.8");
        assert_null(cd_labels_get(&t->labels, "__meta_local_comm"));
        /* both endpoints of one process share the process key: one CPU profile at a time */
        assert_string_equal(t->process_key, "127.0.0.1#4242");
    }
    assert_int_equal(set.v[0].scheme, CD_SCHEME_GOPS);
    assert_int_equal(set.v[1].scheme, CD_SCHEME_HTTP);
    cd_target_set_free(&set);
    cd_groups_free(&gs);
    cd_config_free(c);
}

static void test_merge(void **state)
{
    (void)state;
    struct cd_config *c = load("scrape_configs:\n"
                               "  - job_name: a\n"
                               "    proxy_url: http://proxy:3128\n"
                               "    follow_redirects: false\n"
                               "    enable_http2: false\n"
                               "    static_configs: [{targets: [\"h:1\", \"h:2\", \"h:1\"]}]\n"
                               "  - job_name: b\n"
                               "    static_configs: [{targets: [\"h:1\", \"h:3\"]}]\n");
    struct cd_target_set a = {0}, b = {0}, m = {0}, m2 = {0};
    struct cd_targets_stats st;
    build_static(c, 0, &a, &st);
    build_static(c, 1, &b, &st);
    assert_int_equal(a.n, 3);
    const struct cd_target_set *parts[] = {&a, &b, NULL};
    memset(&st, 0, sizeof(st));
    assert_int_equal(cd_targets_merge(parts, 3, 0, &m, &st), 0);
    assert_int_equal(m.n, 4); /* a/h:1, a/h:2, b/h:1, b/h:3: jobs make ids different */
    assert_int_equal(st.duplicates, 1);
    memset(&st, 0, sizeof(st));
    assert_int_equal(cd_targets_merge(parts, 3, 3, &m2, &st), 0);
    assert_int_equal(m2.n, 3);
    assert_int_equal(st.over_limit, 1);
    assert_false(cd_targets_same(&m, &m2));
    struct cd_target copy;
    assert_int_equal(cd_target_copy(&copy, &m.v[0]), 0);
    assert_string_equal(copy.id, m.v[0].id);
    assert_int_equal(copy.fingerprint, m.v[0].fingerprint);
    assert_int_equal(copy.n_kinds, m.v[0].n_kinds);
    assert_string_equal(copy.proxy_url, "http://proxy:3128");
    assert_true(copy.no_follow_redirects);
    assert_true(copy.no_http2);
    assert_false(m.v[3].no_http2); /* job b keeps the defaults */
    /* the fingerprint is of the content: recomputing it gives the same value */
    assert_int_equal(cd_target_finish(&copy), 0);
    assert_int_equal(copy.fingerprint, m.v[0].fingerprint);
    cd_target_free(&copy);
    struct cd_target_set m3 = {0};
    assert_int_equal(cd_targets_merge(parts, 3, 0, &m3, NULL), 0);
    assert_true(cd_targets_same(&m, &m3));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(cd_targets_print(&m, f), 0);
    fclose(f);
    assert_non_null(strstr(buf, "b/http://h:3"));
    free(buf);
    cd_target_set_free(&a);
    cd_target_set_free(&b);
    cd_target_set_free(&m);
    cd_target_set_free(&m2);
    cd_target_set_free(&m3);
    cd_config_free(c);
}

static void test_many_targets(void **state)
{
    (void)state;
    /* 5000 targets build and merge quickly (the id set is hashed) */
    struct cd_config *c = load("scrape_configs:\n  - job_name: many\n    local_sd_configs: [{}]\n");
    struct cd_groups gs = {0};
    struct cd_group *g = cd_groups_add(&gs);
    for (int i = 0; i < 5000; i++) {
        char addr[64];
        snprintf(addr, sizeof(addr), "10.%d.%d.%d:6060", i / 65536, (i / 256) % 256, i % 256);
        assert_int_equal(cd_group_add_entry(g, addr, NULL), 0);
    }
    struct cd_target_set set = {0}, m = {0};
    struct cd_targets_stats st = {0};
    int64_t t0 = cdt_now_ms();
    assert_int_equal(cd_targets_build(c, &c->jobs[0], &gs, &set, &st), 0);
    const struct cd_target_set *parts[] = {&set, &set};
    assert_int_equal(cd_targets_merge(parts, 2, 4000, &m, &st), 0);
    assert_int_equal(m.n, 4000);
    assert_int_equal(st.duplicates, 5000);
    assert_int_equal(st.over_limit, 1000);
    print_message("built and merged 5000 targets in %lld ms\n", (long long)(cdt_now_ms() - t0));
    cd_target_set_free(&set);
    cd_target_set_free(&m);
    cd_groups_free(&gs);
    cd_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_targets),  cmocka_unit_test(test_parca_relabel),
        cmocka_unit_test(test_relabel_targets), cmocka_unit_test(test_discovered_labels),
        cmocka_unit_test(test_merge),           cmocka_unit_test(test_many_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
