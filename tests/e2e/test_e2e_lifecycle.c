/*
 * End to end, the daemon's lifecycle: a bad config at start exits 1 naming file:line:column;
 * `collectord --check-config` exit codes; SIGHUP with an invalid file keeps the running config
 * (the log names file:line:column) and SIGHUP with a new target file and config applies it (new
 * targets appear, unchanged ones keep their cadence through the reload); SIGTERM exits 0 within
 * the shutdown timeout and every snapshot listed before the stop is there after a restart; a
 * Parca scrape_configs block loads unchanged and scrapes; a database from a newer collectord is
 * refused with a clear message and left as it was.
 */
#include "e2e.h"

#include "str.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct state {
    struct cdt_fleet fleet;
    struct cdt_daemon d; /* each test's daemon; test_teardown cleans it up */
};

static int group_setup(void **st)
{
    struct state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    const char *args[] = {"-n", "2", "-workloads", "cpu,idle", NULL};
    assert_int_equal(cdt_fleet_start(&s->fleet, args, 60000), 0);
    *st = s;
    return 0;
}

static int group_teardown(void **st)
{
    struct state *s = *st;
    cdt_fleet_stop(&s->fleet);
    free(s);
    return 0;
}

static int test_teardown(void **st)
{
    struct state *s = *st;
    if (s->d.dir != NULL)
        cdt_daemon_cleanup(&s->d);
    return 0;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A config whose line 2 has a bad duration (column 20) and line 9 an unknown key (column 5). */
static const char bad_yaml[] = "global:\n"
                               "  scrape_interval: 2x\n"
                               "storage:\n"
                               "  path: @DIR@/collectord.db\n"
                               "query:\n"
                               "  socket: @DIR@/collectord.sock\n"
                               "scrape_configs:\n"
                               "  - job_name: fleet\n"
                               "    colour: blue\n"
                               "    static_configs:\n"
                               "      - targets: ['127.0.0.1:1']\n";

static void test_bad_config_at_start(void **st)
{
    struct state *s = *st;
    cdt_daemon_init(&s->d, "e2e-badcfg");
    cdt_daemon_write_config(&s->d, bad_yaml);
    int64_t t0 = cdt_now_ms();
    int rc = e2e_daemon_run_to_exit(&s->d, NULL, 10000);
    assert_int_equal(rc, 1);
    assert_true(cdt_now_ms() - t0 < 10000);
    char where[600];
    snprintf(where, sizeof(where), "%s:2:20: global.scrape_interval", s->d.config);
    if (!e2e_log_contains(&s->d, where)) {
        cdt_daemon_print_log(&s->d, 20);
        fail_msg("the log does not name '%s'", where);
    }
    snprintf(where, sizeof(where), "%s:9:5:", s->d.config);
    if (!e2e_log_contains(&s->d, where)) {
        cdt_daemon_print_log(&s->d, 20);
        fail_msg("the log does not name the second error at '%s'", where);
    }
    /* Nothing was started: no socket. */
    struct stat sb;
    assert_int_not_equal(stat(s->d.socket, &sb), 0);
}

static int check_config(const char *path, const char *extra, char **out, char **err)
{
    char *argv[] = {(char *)cdt_env("CD_COLLECTORD"),
                    "--check-config",
                    "-c",
                    (char *)path,
                    (char *)extra,
                    NULL};
    return e2e_run(argv, NULL, out, err, 20000);
}

static void test_check_config_exit_codes(void **st)
{
    struct state *s = *st;
    cdt_daemon_init(&s->d, "e2e-check");
    char *out = NULL, *err = NULL;
    /* Valid: 0, with the effective targets. */
    char *yaml = cdt_daemon_default_config("2s", "");
    cdt_daemon_write_config(&s->d, yaml);
    free(yaml);
    cdt_daemon_write_targets(&s->d, &s->fleet, true);
    assert_int_equal(check_config(s->d.config, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "is valid"));
    char addr[64];
    snprintf(addr, sizeof(addr), "fleet/http://127.0.0.1:%d", s->fleet.targets[0].pprof_port);
    assert_non_null(strstr(out, addr));
    free(out);
    free(err);
    /* Invalid: 1, every error with file:line:column. */
    cdt_daemon_write_config(&s->d, bad_yaml);
    assert_int_equal(check_config(s->d.config, NULL, &out, &err), 1);
    char where[600];
    snprintf(where, sizeof(where), "%s:2:20:", s->d.config);
    if (strstr(err, where) == NULL)
        fail_msg("--check-config on an invalid file says: %s", err);
    snprintf(where, sizeof(where), "%s:9:5:", s->d.config);
    assert_non_null(strstr(err, where));
    free(out);
    free(err);
    /* Missing file: 1. Unknown option: 2 (usage). */
    char *missing = cdt_path(s->d.dir, "missing.yaml");
    assert_int_equal(check_config(missing, NULL, &out, &err), 1);
    assert_non_null(strstr(err, missing));
    free(out);
    free(err);
    assert_int_equal(check_config(missing, "--no-such-option", &out, &err), 2);
    free(out);
    free(err);
    free(missing);
}

/* ---- reload -------------------------------------------------------------------------------- */

/* The reload test's config: the CPU profile's seconds (line 16), whether allocs is scraped, and
 * more jobs after it. */
static const char reload_fmt[] = "global:\n"
                                 "  scrape_interval: 1s\n"
                                 "  scrape_timeout: 5s\n"
                                 "storage:\n"
                                 "  path: @DIR@/collectord.db\n"
                                 "query:\n"
                                 "  socket: @DIR@/collectord.sock\n"
                                 "limits:\n"
                                 "  shutdown_timeout: 10s\n"
                                 "scrape_configs:\n"
                                 "  - job_name: fleet\n"
                                 "    file_sd_configs:\n"
                                 "      - files: [@DIR@/targets.json]\n"
                                 "    profiling_config:\n"
                                 "      pprof_config:\n"
                                 "        cpu: {enabled: true, seconds: %d}\n"
                                 "        heap: {enabled: true}\n"
                                 "        allocs: {enabled: %s}\n"
                                 "        goroutine: {enabled: true}\n"
                                 "        mutex: {enabled: false}\n"
                                 "        block: {enabled: false}\n"
                                 "%s";

/* reload_fmt with its blanks filled (malloc'd). */
static char *reload_config(int cpu_seconds, bool allocs, const char *more_jobs)
{
    char *yaml = cd_str_printf(reload_fmt, cpu_seconds, allocs ? "true" : "false", more_jobs);
    assert_non_null(yaml);
    return yaml;
}

struct target_kind {
    const char *job, *scheme;
    int port;
    const char *kind;
    int64_t min_snapshots;
};

static const json_t *target_by(const json_t *list, const char *job, const char *scheme, int port)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    size_t i;
    const json_t *t;
    json_array_foreach(e2e_targets(list), i, t)
    {
        if (strcmp(e2e_jstr(t, "job"), job) == 0 && strcmp(e2e_jstr(t, "scheme"), scheme) == 0 &&
            strcmp(e2e_jstr(t, "address"), addr) == 0)
            return t;
    }
    return NULL;
}

static bool has_kind(const json_t *list, void *ctx)
{
    const struct target_kind *tk = ctx;
    const json_t *t = target_by(list, tk->job, tk->scheme, tk->port);
    const json_t *k = e2e_target_kind(t, tk->kind);
    return k != NULL && e2e_jint(k, "snapshots", 0) >= tk->min_snapshots;
}

static void wait_kind(struct cdt_daemon *d, const struct target_kind *tk, int timeout_ms)
{
    const char *args[] = {"list", NULL};
    json_t *j = cdt_ctl_wait(d, args, has_kind, (void *)tk, timeout_ms);
    if (j == NULL) {
        cdt_daemon_print_log(d, 30);
        fail_msg("no %lld %s snapshots of %s %s 127.0.0.1:%d within %d ms",
                 (long long)tk->min_snapshots, tk->kind, tk->job, tk->scheme, tk->port, timeout_ms);
    }
    json_decref(j);
}

/* How many snapshots the list counts for tk's target and kind now. */
static int64_t kind_count(struct cdt_daemon *d, const struct target_kind *tk)
{
    const char *args[] = {"list", NULL};
    json_t *list = cdt_ctl_json(d, 20000, args);
    assert_non_null(list);
    int64_t n = e2e_jint(e2e_target_kind(target_by(list, tk->job, tk->scheme, tk->port), tk->kind),
                         "snapshots", 0);
    json_decref(list);
    return n;
}

static json_t *status_of(struct cdt_daemon *d)
{
    const char *args[] = {"status", NULL};
    json_t *j = cdt_ctl_json(d, 20000, args);
    if (j == NULL) {
        cdt_daemon_print_log(d, 30);
        fail_msg("collectorctl status failed");
    }
    return j;
}

static void test_sighup(void **st)
{
    struct state *s = *st;
    struct cdt_daemon *d = &s->d;
    const struct cdt_fleet_target *a = &s->fleet.targets[0], *b = &s->fleet.targets[1];
    cdt_daemon_init(d, "e2e-reload");
    char *v1 = reload_config(1, false, "");
    cdt_daemon_write_config(d, v1);
    free(v1);
    struct cdt_fleet only_a = s->fleet;
    only_a.n = 1;
    cdt_daemon_write_targets(d, &only_a, false);
    cdt_daemon_start(d, NULL, 30000);
    struct target_kind a_heap = {"fleet", "http", a->pprof_port, "heap", 2};
    wait_kind(d, &a_heap, 30000);
    json_t *st0 = status_of(d);
    int64_t loaded0 = e2e_jint(st0, "config_loaded_unix_ms", 0);
    json_decref(st0);

    /* An invalid file: the error with its position, and the running config stays. */
    char *bad = reload_config(-3, false, "");
    cdt_daemon_write_config(d, bad);
    free(bad);
    assert_int_equal(kill(d->pid, SIGHUP), 0);
    e2e_wait_log(d, "is not valid; the running configuration stays", 20000);
    char where[600];
    snprintf(where, sizeof(where), "%s:16:", d->config);
    if (!e2e_log_contains(d, where)) {
        cdt_daemon_print_log(d, 20);
        fail_msg("the reload error does not name %s<column>", where);
    }
    json_t *st1 = status_of(d);
    assert_int_equal(e2e_jint(st1, "pid", 0), d->pid);
    assert_int_equal(e2e_jint(st1, "config_loaded_unix_ms", 0), loaded0);
    json_decref(st1);
    /* Still scraping on the old config. */
    a_heap.min_snapshots = kind_count(d, &a_heap) + 2;
    wait_kind(d, &a_heap, 20000);

    /* A new target file and a new config: both apply. */
    char extra_job[128];
    snprintf(extra_job, sizeof(extra_job),
             "  - job_name: extra\n"
             "    static_configs:\n"
             "      - targets: ['gops://127.0.0.1:%d']\n",
             b->gops_port);
    char *v2 = reload_config(1, true, extra_job);
    cdt_daemon_write_config(d, v2);
    free(v2);
    cdt_daemon_write_targets(d, &s->fleet, false);
    int64_t reload_ms = wall_ms();
    assert_int_equal(kill(d->pid, SIGHUP), 0);
    struct target_kind b_heap = {"fleet", "http", b->pprof_port, "heap", 1};
    wait_kind(d, &b_heap, 20000);
    struct target_kind extra = {"extra", "gops", b->gops_port, "memstats", 1};
    wait_kind(d, &extra, 20000);
    struct target_kind a_allocs = {"fleet", "http", a->pprof_port, "allocs", 1};
    wait_kind(d, &a_allocs, 20000);
    /* Let A's heap run a few more slots past the reload. */
    a_heap.min_snapshots = kind_count(d, &a_heap) + 3;
    wait_kind(d, &a_heap, 20000);
    e2e_wait_log(d, "reload: configuration from", 1000);
    json_t *st2 = status_of(d);
    assert_true(e2e_jint(st2, "config_loaded_unix_ms", 0) > loaded0);
    json_decref(st2);

    /* A, unchanged but for a new kind, kept its heap schedule through the reload: its slots
     * (when each scrape was due; starts may lag on a loaded machine) run on one per second,
     * none skipped, none doubled, on the same phase. */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", a->pprof_port);
    const char *sargs[] = {"--job", "fleet", "--target", addr, "--kind", "heap", NULL};
    json_t *heap = e2e_snapshots(d, sargs, 5);
    size_t n = json_array_size(heap);
    assert_true(n >= 6);
    int64_t before = 0, after = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        /* Newest first. */
        int64_t s1 = e2e_jint(json_array_get(heap, i), "scheduled_unix_ms", 0);
        int64_t s0 = e2e_jint(json_array_get(heap, i + 1), "scheduled_unix_ms", 0);
        assert_true(s0 > 0 && s1 > 0);
        if (s0 < reload_ms - 4000)
            break;
        int64_t gap = s1 - s0;
        if (gap < 995 || gap > 1005)
            fail_msg("A's heap slots %lld ms apart around the reload (at %lld): %lld and %lld",
                     (long long)gap, (long long)reload_ms, (long long)s0, (long long)s1);
        if (s1 < reload_ms)
            before++;
        else
            after++;
    }
    assert_true(before >= 1 && after >= 2);
    json_decref(heap);

    int ws = cdt_daemon_stop(d, SIGTERM, 20000);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

/* ---- SIGTERM ------------------------------------------------------------------------------- */

static void test_sigterm_nothing_lost(void **st)
{
    struct state *s = *st;
    struct cdt_daemon *d = &s->d;
    cdt_daemon_init(d, "e2e-term");
    char *v1 = reload_config(1, false, "");
    cdt_daemon_write_config(d, v1);
    free(v1);
    cdt_daemon_write_targets(d, &s->fleet, true);
    cdt_daemon_start(d, NULL, 30000);
    struct target_kind cpu = {"fleet", "http", s->fleet.targets[0].pprof_port, "cpu", 2};
    wait_kind(d, &cpu, 30000);
    json_t *before = e2e_snapshots(d, NULL, 20);
    /* Stop while scrapes run (a 1 s CPU profile every second): they finish and are
     * stored within limits.shutdown_timeout (10 s). */
    int64_t t0 = cdt_now_ms();
    int ws = cdt_daemon_stop(d, SIGTERM, 12000);
    int64_t took = cdt_now_ms() - t0;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        cdt_daemon_print_log(d, 30);
        fail_msg("SIGTERM: status %d after %lld ms", ws, (long long)took);
    }
    assert_true(took < 11000);
    assert_true(e2e_log_contains(d, "SIGTERM: stopping"));
    assert_true(e2e_log_contains(d, "notice: stopped"));
    print_message("SIGTERM to exit 0: %lld ms\n", (long long)took);

    cdt_daemon_start(d, NULL, 30000);
    json_t *after = e2e_snapshots(d, NULL, 20);
    json_t *byid = json_object();
    size_t i;
    const json_t *snap;
    json_array_foreach(after, i, snap)
    {
        char key[32];
        snprintf(key, sizeof(key), "%lld", (long long)e2e_jint(snap, "id", 0));
        json_object_set(byid, key, (json_t *)snap);
    }
    json_array_foreach(before, i, snap)
    {
        char key[32];
        snprintf(key, sizeof(key), "%lld", (long long)e2e_jint(snap, "id", 0));
        const json_t *now = json_object_get(byid, key);
        if (now == NULL)
            fail_msg("snapshot %s, listed before SIGTERM, is gone after the restart", key);
        const char *a = e2e_jstr(snap, "sha256"), *b = e2e_jstr(now, "sha256");
        assert_string_equal(a != NULL ? a : "", b != NULL ? b : "");
    }
    assert_true(json_array_size(after) >= json_array_size(before));
    json_decref(byid);
    json_decref(after);
    json_decref(before);
    ws = cdt_daemon_stop(d, SIGTERM, 20000);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

/* Scrapes that never finish (a target that hangs) do not hold the stop beyond
 * limits.shutdown_timeout. */
static const char hang_yaml[] = "global:\n"
                                "  scrape_interval: 1s\n"
                                "  scrape_timeout: 60s\n"
                                "storage:\n"
                                "  path: @DIR@/collectord.db\n"
                                "query:\n"
                                "  socket: @DIR@/collectord.sock\n"
                                "limits:\n"
                                "  shutdown_timeout: 2s\n"
                                "scrape_configs:\n"
                                "  - job_name: fleet\n"
                                "    file_sd_configs:\n"
                                "      - files: [@DIR@/targets.json]\n";

static bool scrapes_in_flight(const json_t *j, void *ctx)
{
    (void)ctx;
    return e2e_jint(json_object_get(j, "scrapes"), "in_flight", 0) >= 3;
}

/* A fleet process that never answers, and a daemon on yaml with scrapes of it in flight. */
static void start_hanging(struct cdt_daemon *d, struct cdt_fleet *hang, const char *tag,
                          const char *yaml)
{
    const char *args[] = {"-hostile", "hang", NULL};
    assert_int_equal(cdt_fleet_start(hang, args, 30000), 0);
    cdt_daemon_init(d, tag);
    cdt_daemon_write_config(d, yaml);
    cdt_daemon_write_targets(d, hang, true);
    cdt_daemon_start(d, NULL, 30000);
    const char *sargs[] = {"status", NULL};
    json_t *j = cdt_ctl_wait(d, sargs, scrapes_in_flight, NULL, 20000);
    assert_non_null(j);
    json_decref(j);
}

static void test_sigterm_deadline(void **st)
{
    struct state *s = *st;
    struct cdt_daemon *d = &s->d;
    struct cdt_fleet hang;
    start_hanging(d, &hang, "e2e-deadline", hang_yaml);
    int64_t t0 = cdt_now_ms();
    int ws = cdt_daemon_stop(d, SIGTERM, 15000);
    int64_t took = cdt_now_ms() - t0;
    cdt_fleet_stop(&hang);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        cdt_daemon_print_log(d, 30);
        fail_msg("SIGTERM with hanging scrapes: status %d after %lld ms", ws, (long long)took);
    }
    print_message("SIGTERM with scrapes hanging: exit 0 after %lld ms (shutdown_timeout 2 s)\n",
                  (long long)took);
    assert_true(took >= 1500 && took < 6000);
}

/* A second SIGTERM (an operator's second Ctrl-C) does not wait out a long shutdown_timeout: the
 * scrapes in flight are cancelled at once, and the daemon still exits 0. */
static void test_sigterm_twice(void **st)
{
    struct state *s = *st;
    struct cdt_daemon *d = &s->d;
    struct cdt_fleet hang;
    static const char from[] = "shutdown_timeout: 2s";
    const char *at = strstr(hang_yaml, from);
    assert_non_null(at);
    char *yaml = cd_str_printf("%.*sshutdown_timeout: 60s%s", (int)(at - hang_yaml), hang_yaml,
                               at + sizeof(from) - 1);
    start_hanging(d, &hang, "e2e-twice", yaml);
    free(yaml);
    int64_t t0 = cdt_now_ms();
    assert_int_equal(kill(d->pid, SIGTERM), 0);
    e2e_wait_log(d, "SIGTERM: stopping", 10000);
    int ws = cdt_daemon_stop(d, SIGTERM, 15000);
    int64_t took = cdt_now_ms() - t0;
    cdt_fleet_stop(&hang);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        cdt_daemon_print_log(d, 30);
        fail_msg("two SIGTERMs with hanging scrapes: status %d after %lld ms", ws, (long long)took);
    }
    print_message("two SIGTERMs with scrapes hanging: exit 0 after %lld ms (shutdown_timeout "
                  "60 s)\n",
                  (long long)took);
    assert_true(e2e_log_contains(d, "SIGTERM again: cancelling in-flight scrapes now"));
    assert_true(took < 10000);
}

/* ---- Parca -------------------------------------------------------------------------------- */

/* Parca's scrape_configs as its documentation writes them (parca.yaml and the scrape docs):
 * Parca's profile names and aliases, delta, keep_sample_type, a custom fgprof endpoint,
 * path_prefix, static_configs. Only the addresses (and short intervals) are the test's. */
static const char parca_fmt[] = "scrape_configs:\n"
                                "  - job_name: \"default\"\n"
                                "    scrape_interval: \"2s\"\n"
                                "    scrape_timeout: \"0s\"\n"
                                "    scheme: http\n"
                                "    static_configs:\n"
                                "      - targets: [ '127.0.0.1:%d' ]\n"
                                "        labels:\n"
                                "          env: test\n"
                                "    profiling_config:\n"
                                "      pprof_config:\n"
                                "        fgprof:\n"
                                "          enabled: true\n"
                                "          path: /debug/fgprof\n"
                                "          delta: true\n"
                                "        memory:\n"
                                "          enabled: true\n"
                                "          keep_sample_type:\n"
                                "            - type: inuse_space\n"
                                "              unit: bytes\n"
                                "        process_cpu:\n"
                                "          enabled: true\n"
                                "          delta: true\n"
                                "  - job_name: \"prefixed\"\n"
                                "    scrape_interval: \"2s\"\n"
                                "    static_configs:\n"
                                "      - targets: [ '127.0.0.1:%d' ]\n"
                                "    profiling_config:\n"
                                "      path_prefix: /app\n"
                                "      pprof_config:\n"
                                "        memory:\n"
                                "          enabled: true\n"
                                "        process_cpu:\n"
                                "          enabled: false\n";

static const char parca_head[] = "storage:\n"
                                 "  path: @DIR@/collectord.db\n"
                                 "query:\n"
                                 "  socket: @DIR@/collectord.sock\n";

static bool parca_scraped(const json_t *j, void *ctx)
{
    (void)ctx;
    bool cpu = false, allocs = false, fgprof = false, prefixed = false;
    size_t i;
    const json_t *snap;
    json_array_foreach(json_object_get(j, "snapshots"), i, snap)
    {
        const char *job = e2e_jstr(snap, "job"), *kind = e2e_jstr(snap, "kind");
        const char *status = e2e_jstr(snap, "status");
        if (strcmp(job, "default") == 0) {
            cpu |= strcmp(kind, "cpu") == 0 && strcmp(status, "ok") == 0;
            allocs |= strcmp(kind, "allocs") == 0 && strcmp(status, "ok") == 0;
            fgprof |= strcmp(kind, "fgprof") == 0 && strcmp(status, "http_error") == 0;
        } else if (strcmp(job, "prefixed") == 0 && strcmp(kind, "allocs") == 0) {
            prefixed |= strcmp(status, "http_error") == 0;
        }
    }
    return cpu && allocs && fgprof && prefixed;
}

static void test_parca_config(void **st)
{
    struct state *s = *st;
    struct cdt_daemon *d = &s->d;
    cdt_daemon_init(d, "e2e-parca");
    int port = s->fleet.targets[0].pprof_port;
    char parca[sizeof(parca_fmt) + 32];
    snprintf(parca, sizeof(parca), parca_fmt, port, port);
    /* The Parca file alone is a valid collectord config. */
    char *alone = cdt_path(d->dir, "parca.yaml");
    assert_int_equal(cdt_write_file(alone, parca, strlen(parca)), 0);
    char *out = NULL, *err = NULL;
    if (check_config(alone, NULL, &out, &err) != 0)
        fail_msg("--check-config on Parca's scrape_configs: %s", err);
    assert_non_null(strstr(out, "/debug/fgprof?seconds=2"));
    assert_non_null(strstr(out, "/app/debug/pprof/allocs"));
    free(out);
    free(err);
    free(alone);

    /* With a place to store and a socket in front, unchanged, it runs and scrapes. */
    size_t n = strlen(parca_head) + strlen(parca) + 1;
    char *yaml = malloc(n);
    assert_non_null(yaml);
    snprintf(yaml, n, "%s%s", parca_head, parca);
    cdt_daemon_write_config(d, yaml);
    free(yaml);
    cdt_daemon_start(d, NULL, 30000);
    const char *args[] = {"snapshots", "-n", "1000", NULL};
    json_t *j = cdt_ctl_wait(d, args, parca_scraped, NULL, 30000);
    if (j == NULL) {
        cdt_daemon_print_log(d, 30);
        fail_msg("the Parca config did not produce cpu/allocs ok, fgprof and /app http_error");
    }
    size_t i;
    const json_t *snap;
    json_array_foreach(json_object_get(j, "snapshots"), i, snap)
    {
        const char *job = e2e_jstr(snap, "job"), *kind = e2e_jstr(snap, "kind");
        const char *req = e2e_jstr(snap, "request");
        if (strcmp(job, "default") == 0) {
            assert_string_equal(e2e_label(snap, "env"), "test");
            if (strcmp(kind, "cpu") == 0)
                assert_non_null(strstr(req, "/debug/pprof/profile?seconds=2"));
            if (strcmp(kind, "fgprof") == 0) {
                assert_non_null(strstr(req, "/debug/fgprof?seconds=2"));
                assert_int_equal(e2e_jint(snap, "http_status", 0), 404);
            }
        } else {
            assert_non_null(strstr(req, "/app/debug/pprof/"));
        }
    }
    json_decref(j);
    int ws = cdt_daemon_stop(d, SIGTERM, 20000);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

/* ---- a newer database ----------------------------------------------------------------------- */

static void test_newer_database_refused(void **st)
{
    struct state *s = *st;
    struct cdt_daemon *d = &s->d;
    cdt_daemon_init(d, "e2e-newer");
    char *yaml = cdt_daemon_default_config("2s", "");
    cdt_daemon_write_config(d, yaml);
    free(yaml);
    cdt_daemon_write_targets(d, &s->fleet, false);
    cdt_daemon_start(d, NULL, 30000);
    int ws = cdt_daemon_stop(d, SIGTERM, 20000);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(d->db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    assert_int_equal(e2e_daemon_run_to_exit(d, NULL, 15000), 1);
    if (!e2e_log_contains(d, "schema version 99 is newer than this collectord's")) {
        cdt_daemon_print_log(d, 20);
        fail_msg("no clear message about the newer database");
    }
    db = e2e_db_open(d->db);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 99);
    sqlite3_finalize(q);
    e2e_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_bad_config_at_start, test_teardown),
        cmocka_unit_test_teardown(test_check_config_exit_codes, test_teardown),
        cmocka_unit_test_teardown(test_sighup, test_teardown),
        cmocka_unit_test_teardown(test_sigterm_nothing_lost, test_teardown),
        cmocka_unit_test_teardown(test_sigterm_deadline, test_teardown),
        cmocka_unit_test_teardown(test_sigterm_twice, test_teardown),
        cmocka_unit_test_teardown(test_parca_config, test_teardown),
        cmocka_unit_test_teardown(test_newer_database_refused, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
