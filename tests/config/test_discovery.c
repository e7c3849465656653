/* Integration tests of discovery on a real libuv loop: file_sd changes picked up by the
 * directory watcher, DNS A discovery of "localhost", local discovery of the Go test fleet (gops
 * agent and pprof endpoint found, labelled, and gone when the fleet stops), SIGHUP-style refresh,
 * and clean closes (uv_loop_close() == 0) even with work in flight. */
#include "config.h"
#include "discovery.h"
#include "str.h"

#include "cdtest.h"

#include "fleet.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

struct obs {
    struct cd_target_set *set; /* the latest */
    int sets;
    int errors;
    char last_error[512];
    bool closed;
};

static void on_targets(void *ctx, struct cd_target_set *set)
{
    struct obs *o = ctx;
    cd_discovery_set_free(o->set);
    o->set = set;
    o->sets++;
}

static void on_error(void *ctx, const char *source, const char *msg)
{
    struct obs *o = ctx;
    o->errors++;
    snprintf(o->last_error, sizeof(o->last_error), "%s: %s", source, msg ? msg : "(recovered)");
}

static void on_closed(void *ctx)
{
    ((struct obs *)ctx)->closed = true;
}

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until cond holds or the deadline passes; true when it held. */
static bool run_until(uv_loop_t *loop, bool (*cond)(void *), void *ctx, int timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
    int64_t deadline = cdt_now_ms() + timeout_ms;
    bool ok;
    while (!(ok = cond(ctx)) && cdt_now_ms() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static bool is_closed(void *ctx)
{
    return ((struct obs *)ctx)->closed;
}

static void close_all(uv_loop_t *loop, struct cd_discovery *d, struct obs *o)
{
    cd_discovery_close(d, on_closed, o);
    assert_true(run_until(loop, is_closed, o, 30000));
    assert_int_equal(uv_run(loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
    cd_discovery_set_free(o->set);
    o->set = NULL;
}

static struct cd_config *load_text(const char *dir, const char *yaml)
{
    char *path = cdt_path(dir, "c.yaml");
    assert_int_equal(cdt_write_file(path, yaml, strlen(yaml)), 0);
    struct cd_config *c = NULL;
    struct cd_config_diag d = {0};
    struct cd_err err;
    cd_err_init(&err);
    if (cd_config_load_diag(path, &c, &d, &err) != 0) {
        for (size_t i = 0; i < d.n; i++)
            print_message("  %s\n", d.lines[i]);
        fail_msg("config: %s", cd_err_msg(&err));
    }
    free(path);
    return c;
}

/* writes via a temp file and rename, as deployment tools do */
static void replace_file(const char *dir, const char *name, const char *text)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    assert_int_equal(cdt_write_file(tmp, text, strlen(text)), 0);
    assert_int_equal(rename(tmp, dst), 0);
}

struct want {
    struct obs *o;
    size_t n;
    const char *id;
};

static bool has_n(void *ctx)
{
    struct want *w = ctx;
    if (w->o->set == NULL || w->o->set->n != w->n)
        return false;
    return w->id == NULL || cd_target_set_find(w->o->set, w->id) != NULL;
}

static bool got_error(void *ctx)
{
    return ((struct obs *)ctx)->errors > 0;
}

static void test_file_sd_watch(void **state)
{
    (void)state;
    char *dir = cdt_tmpdir("disc-file");
    char *tdir = cdt_path(dir, "targets");
    assert_int_equal(mkdir(tdir, 0755), 0);
    replace_file(tdir, "a.json",
                 "[{\"targets\": [\"127.0.0.1:7001\"], \"labels\": {\"v\": \"1\"}}]");
    /* refresh_interval is long: only the watcher can explain a quick update */
    struct cd_config *c = load_text(dir, "scrape_configs:\n"
                                         "  - job_name: files\n"
                                         "    file_sd_configs:\n"
                                         "      - files: [targets/*.json]\n"
                                         "        refresh_interval: 1h\n");
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct obs o = {0};
    struct cd_discovery *d = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_discovery_new(&loop, c, on_targets, &o, &d, &err), 0);
    cd_discovery_set_error_cb(d, on_error);
    struct want w = {&o, 1, "files/http://127.0.0.1:7001"};
    assert_true(run_until(&loop, has_n, &w, 10000));
    assert_string_equal(cd_labels_get(&o.set->v[0].labels, "v"), "1");
    assert_int_equal(o.sets, 1);

    /* a change: picked up by the directory watcher */
    int64_t t0 = cdt_now_ms();
    replace_file(tdir, "a.json",
                 "[{\"targets\": [\"127.0.0.1:7001\", \"gops://127.0.0.1:7002\"]}]");
    w.n = 2;
    w.id = "files/gops://127.0.0.1:7002";
    assert_true(run_until(&loop, has_n, &w, 10000));
    print_message("file_sd change seen after %lld ms\n", (long long)(cdt_now_ms() - t0));
    int sets = o.sets;

    /* a new file in the directory */
    replace_file(tdir, "b.json", "[{\"targets\": [\"127.0.0.1:7003\"]}]");
    w.n = 3;
    w.id = "files/http://127.0.0.1:7003";
    assert_true(run_until(&loop, has_n, &w, 10000));
    assert_int_equal(o.sets, sets + 1);

    /* broken: the last good targets stay, the error is reported */
    o.errors = 0;
    replace_file(tdir, "b.json", "[{\"targets\": [\"127.0.0.1:7003\"");
    assert_true(run_until(&loop, got_error, &o, 10000));
    assert_non_null(strstr(o.last_error, "files/file_sd_configs[0]: "));
    assert_non_null(strstr(o.last_error, "b.json"));
    assert_non_null(strstr(o.last_error, "keeping its previous targets"));
    assert_int_equal(o.set->n, 3);

    /* removed: its targets go */
    char *b = cdt_path(tdir, "b.json");
    assert_int_equal(unlink(b), 0);
    free(b);
    w.n = 2;
    w.id = NULL;
    assert_true(run_until(&loop, has_n, &w, 10000));

    struct cd_discovery_stats st;
    cd_discovery_get_stats(d, &st);
    assert_int_equal(st.sources, 1);
    assert_int_equal(st.targets, 2);
    assert_true(st.runs >= 4);

    /* the directory is replaced: a refresh (SIGHUP) reads it and watches the new one */
    cdt_rmrf(tdir);
    assert_int_equal(mkdir(tdir, 0755), 0);
    replace_file(tdir, "c.json", "[{\"targets\": [\"127.0.0.1:7005\"]}]");
    cd_discovery_refresh(d);
    w.n = 1;
    w.id = "files/http://127.0.0.1:7005";
    assert_true(run_until(&loop, has_n, &w, 10000));
    replace_file(tdir, "c.json", "[{\"targets\": [\"127.0.0.1:7006\"]}]");
    w.id = "files/http://127.0.0.1:7006";
    assert_true(run_until(&loop, has_n, &w, 10000));
    close_all(&loop, d, &o);
    cd_config_free(c);
    cdt_rmrf(dir);
    free(dir);
    free(tdir);
}

static void test_dns_and_static(void **state)
{
    (void)state;
    char *dir = cdt_tmpdir("disc-dns");
    struct cd_config *c = load_text(dir, "scrape_configs:\n"
                                         "  - job_name: st\n"
                                         "    static_configs: [{targets: [\"10.1.1.1:80\"]}]\n"
                                         "  - job_name: dns\n"
                                         "    dns_sd_configs:\n"
                                         "      - names: [localhost]\n"
                                         "        type: A\n"
                                         "        port: 6060\n"
                                         "    relabel_configs:\n"
                                         "      - source_labels: [__meta_dns_name]\n"
                                         "        target_label: dns_name\n");
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct obs o = {0};
    struct cd_discovery *d = NULL;
    assert_int_equal(cd_discovery_new(&loop, c, on_targets, &o, &d, NULL), 0);
    struct want w = {&o, 2, "dns/http://127.0.0.1:6060"};
    assert_true(run_until(&loop, has_n, &w, 10000));
    assert_string_equal(o.set->v[0].id, "st/http://10.1.1.1:80"); /* config order */
    const struct cd_target *t = cd_target_set_find(o.set, "dns/http://127.0.0.1:6060");
    assert_string_equal(cd_labels_get(&t->labels, "dns_name"), "localhost");
    /* a refresh that changes nothing hands over nothing */
    int sets = o.sets;
    cd_discovery_refresh(d);
    struct cd_discovery_stats st;
    cd_discovery_get_stats(d, &st);
    size_t runs = st.runs;
    int64_t deadline = cdt_now_ms() + 10000;
    while (st.runs < runs + 1 && cdt_now_ms() < deadline) {
        uv_run(&loop, UV_RUN_ONCE);
        cd_discovery_get_stats(d, &st);
    }
    assert_true(st.runs >= runs + 1);
    assert_int_equal(o.sets, sets);
    close_all(&loop, d, &o);
    cd_config_free(c);
    cdt_rmrf(dir);
    free(dir);
}

static void test_limit(void **state)
{
    (void)state;
    char *dir = cdt_tmpdir("disc-limit");
    struct cd_config *c = load_text(dir, "limits: {max_targets: 2}\n"
                                         "scrape_configs:\n"
                                         "  - job_name: st\n"
                                         "    static_configs: [{targets: [\"a:1\", \"b:1\", "
                                         "\"c:1\"]}]\n");
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct obs o = {0};
    struct cd_discovery *d = NULL;
    assert_int_equal(cd_discovery_new(&loop, c, on_targets, &o, &d, NULL), 0);
    cd_discovery_set_error_cb(d, on_error);
    struct want w = {&o, 2, "st/http://b:1"};
    assert_true(run_until(&loop, has_n, &w, 10000));
    assert_int_equal(o.errors, 1);
    assert_string_equal(o.last_error,
                        "discovery: 1 targets over limits.max_targets (2) are not scraped");
    struct cd_discovery_stats st;
    cd_discovery_get_stats(d, &st);
    assert_int_equal(st.build.over_limit, 1);
    assert_int_equal(st.build.built, 3);
    close_all(&loop, d, &o);
    cd_config_free(c);
    cdt_rmrf(dir);
    free(dir);
}

static bool got_set(void *ctx)
{
    return ((struct obs *)ctx)->set != NULL;
}

static void test_empty_and_early_close(void **state)
{
    (void)state;
    char *dir = cdt_tmpdir("disc-empty");
    struct cd_config *c = load_text(dir, "");
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct obs o = {0};
    struct cd_discovery *d = NULL;
    assert_int_equal(cd_discovery_new(&loop, c, on_targets, &o, &d, NULL), 0);
    assert_true(run_until(&loop, got_set, &o, 5000));
    assert_int_equal(o.set->n, 0);
    close_all(&loop, d, &o);
    cd_config_free(c);

    /* closed right away, with a /proc scan and a file read queued or running */
    c = load_text(dir, "scrape_configs:\n"
                       "  - job_name: l\n"
                       "    local_sd_configs: [{refresh_interval: 1s}]\n"
                       "    file_sd_configs: [{files: [nothing/*.json]}]\n");
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(&o, 0, sizeof(o));
    assert_int_equal(cd_discovery_new(&loop, c, on_targets, &o, &d, NULL), 0);
    close_all(&loop, d, &o);
    assert_int_equal(o.sets, 0); /* nothing after close */
    cd_config_free(c);
    cdt_rmrf(dir);
    free(dir);
}

struct fleet_want {
    struct obs *o;
    int pid;
    int gops_port;
    int pprof_port;
    bool gone;
};

static bool fleet_seen(void *ctx)
{
    struct fleet_want *w = ctx;
    if (w->o->set == NULL)
        return false;
    int found = 0;
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", w->pid);
    for (size_t i = 0; i < w->o->set->n; i++) {
        const struct cd_target *t = &w->o->set->v[i];
        const char *p = cd_labels_get(&t->labels, "pid");
        if (p == NULL || strcmp(p, pid) != 0)
            continue;
        if ((t->scheme == CD_SCHEME_GOPS && t->port == w->gops_port) ||
            (t->scheme == CD_SCHEME_HTTP && t->port == w->pprof_port))
            found++;
    }
    return w->gone ? found == 0 : found == 2;
}

static void test_local_fleet(void **state)
{
    (void)state;
    char *dir = cdt_tmpdir("disc-local");
    /* The fleet helper always passes -gops-dir <its own dir>. The process's environment names
     * where discovery must look ($GOPS_CONFIG_DIR), so point that at a path we control and make
     * it a symlink to the helper's directory once we know it. */
    char *link = cdt_path(dir, "gops");
    assert_int_equal(setenv("GOPS_CONFIG_DIR", link, 1), 0);
    struct cdt_fleet f;
    const char *args[] = {"-workload", "idle", NULL};
    int rc = cdt_fleet_start(&f, args, 30000);
    unsetenv("GOPS_CONFIG_DIR");
    assert_int_equal(rc, 0);
    assert_int_equal(symlink(f.gops_dir, link), 0);
    assert_true(f.n >= 1);

    struct cd_config *c = load_text(dir, "scrape_configs:\n"
                                         "  - job_name: here\n"
                                         "    local_sd_configs:\n"
                                         "      - refresh_interval: 1s\n"
                                         "        max_probes: 10000\n"
                                         "        exe: \".*/collectord-fleet\"\n");
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct obs o = {0};
    struct cd_discovery *d = NULL;
    assert_int_equal(cd_discovery_new(&loop, c, on_targets, &o, &d, NULL), 0);
    cd_discovery_set_error_cb(d, on_error);
    struct fleet_want w = {&o, f.targets[0].pid, f.targets[0].gops_port, f.targets[0].pprof_port,
                           false};
    bool seen = run_until(&loop, fleet_seen, &w, 20000);
    if (!seen && o.set != NULL) {
        for (size_t i = 0; i < o.set->n; i++)
            print_message("have %s\n", o.set->v[i].id);
        print_message("errors: %s\n", o.last_error);
    }
    assert_true(seen);
    char want_pid[16];
    snprintf(want_pid, sizeof(want_pid), "%d", f.targets[0].pid);
    for (size_t i = 0; i < o.set->n; i++) {
        const struct cd_target *t = &o.set->v[i];
        if (!cd_str_eq(cd_labels_get(&t->labels, "pid"), want_pid))
            continue;
        assert_true(cd_str_has_suffix(cd_labels_get(&t->labels, "exe"), "/collectord-fleet"));
        assert_true(cd_str_has_prefix(cd_labels_get(&t->labels, "go_version"), "go1."));
        assert_string_equal(cd_labels_get(&t->labels, "job"), "here");
        char pk[64];
        snprintf(pk, sizeof(pk), "127.0.0.1#%s", want_pid);
        assert_string_equal(t->process_key, pk);
        print_message("discovered %s\n", t->id);
    }

    /* the fleet stops: its targets go away at the next scan */
    cdt_fleet_stop(&f);
    w.gone = true;
    assert_true(run_until(&loop, fleet_seen, &w, 20000));
    close_all(&loop, d, &o);
    cd_config_free(c);
    cdt_rmrf(dir);
    free(dir);
    free(link);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_sd_watch),         cmocka_unit_test(test_dns_and_static),
        cmocka_unit_test(test_empty_and_early_close), cmocka_unit_test(test_limit),
        cmocka_unit_test(test_local_fleet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
