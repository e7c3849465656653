/*
 * End to end, the query socket and collectorctl (issue 6): collectord scrapes two fleet
 * processes (the mixed workload and the deadlock workload, each over HTTP and gops) with its
 * Unix socket and a TCP listener (token file, mode 0600) on a free port. collectorctl lists the
 * targets up, captures the deadlock process into an incident within the CPU profile's time plus
 * a few seconds, shows the goroutines stuck in sync.(*Mutex).Lock, exports the incident as a
 * bundle that go tool pprof and go tool trace open, and pins, unpins, lists incidents, prunes
 * (dry run), reports status, metrics and fetches; the series route answers the goroutine count
 * over time; go tool pprof reads a snapshot straight from the TCP listener with the token and
 * is refused without it; collectorctl says so when the daemon is not running.
 */
#include "e2e.h"

#include "str.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOKEN "e2e-token-0123456789abcdef"
/* The capture's bound: its CPU profile and trace (1 s each, one process) plus a few seconds. */
#define CAPTURE_BOUND_MS (2000 + 6000)

static const char config_fmt[] = "global:\n"
                                 "  scrape_interval: 2s\n"
                                 "  scrape_timeout: 10s\n"
                                 "storage:\n"
                                 "  path: @DIR@/collectord.db\n"
                                 "query:\n"
                                 "  socket: @DIR@/collectord.sock\n"
                                 "  socket_mode: \"0600\"\n"
                                 "  listen: 127.0.0.1:%d\n"
                                 "  token_file: @DIR@/token\n"
                                 "limits:\n"
                                 "  shutdown_timeout: 10s\n"
                                 "scrape_configs:\n"
                                 "  - job_name: fleet\n"
                                 "    file_sd_configs:\n"
                                 "      - files: [@DIR@/targets.json]\n"
                                 "    profiling_config:\n"
                                 "      pprof_config:\n"
                                 "        cpu: {enabled: true, seconds: 1}\n"
                                 "        heap: {enabled: true}\n"
                                 "        allocs: {enabled: true}\n"
                                 "        goroutine: {enabled: true}\n"
                                 "        goroutine_dump: {enabled: true, interval: 1h}\n"
                                 "        mutex: {enabled: true}\n"
                                 "        block: {enabled: true}\n"
                                 "        trace: {enabled: true, seconds: 1, interval: 1h}\n"
                                 "    gops_config:\n"
                                 "      goroutine_dump: {enabled: true}\n"
                                 "      memstats: {enabled: true}\n"
                                 "      stats: {enabled: true}\n"
                                 "      version: {enabled: true}\n"
                                 "      heap: {enabled: true}\n";

struct state {
    struct cdt_fleet fleet;
    struct cdt_daemon d;
    int port;
    char *token_file;
    json_t *capture; /* the capture's answer */
};

static bool all_up(const json_t *list, void *ctx)
{
    (void)ctx;
    const json_t *targets = e2e_targets(list);
    if (json_array_size(targets) != 4)
        return false;
    size_t i;
    const json_t *t;
    json_array_foreach(targets, i, t)
    {
        if (strcmp(e2e_jstr(t, "health"), "up") != 0 || e2e_jint(t, "snapshots", 0) < 2)
            return false;
    }
    return true;
}

static int group_setup(void **st)
{
    struct state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    const char *args[] = {"-n", "2", "-workloads", "mixed,deadlock", NULL};
    assert_int_equal(cdt_fleet_start(&s->fleet, args, 60000), 0);
    cdt_daemon_init(&s->d, "e2e-ctl");
    s->token_file = cdt_path(s->d.dir, "token");
    assert_int_equal(cdt_write_file(s->token_file, TOKEN "\n", strlen(TOKEN) + 1), 0);
    assert_int_equal(chmod(s->token_file, 0600), 0);
    s->port = e2e_free_port();
    char yaml[sizeof(config_fmt) + 16];
    snprintf(yaml, sizeof(yaml), config_fmt, s->port);
    cdt_daemon_write_config(&s->d, yaml);
    cdt_daemon_write_targets(&s->d, &s->fleet, true);
    cdt_daemon_start(&s->d, NULL, 30000);
    const char *largs[] = {"list", NULL};
    json_t *list = cdt_ctl_wait(&s->d, largs, all_up, NULL, 30000);
    if (list == NULL) {
        cdt_daemon_print_log(&s->d, 40);
        fail_msg("the fleet's four targets were not all up with snapshots within 30 s");
    }
    json_decref(list);
    /* go tool pprof saves what it fetches under $PPROF_TMPDIR (default $HOME/pprof). */
    setenv("PPROF_TMPDIR", s->d.dir, 1);
    *st = s;
    return 0;
}

static int group_teardown(void **st)
{
    struct state *s = *st;
    int ws;
    if (!e2e_stop_clean(&s->d, 20000, &ws))
        print_error("collectord did not stop cleanly (status %d)\n", ws);
    cdt_daemon_cleanup(&s->d);
    cdt_fleet_stop(&s->fleet);
    free(s->token_file);
    json_decref(s->capture);
    free(s);
    return 0;
}

static char *ctl_text(struct state *s, int want_rc, const char *const args[])
{
    char *out = NULL, *err = NULL;
    int rc = e2e_ctl(&s->d, &out, &err, 60000, args);
    if (rc != want_rc)
        fail_msg("collectorctl %s: exit %d (expected %d)\nstdout: %s\nstderr: %s", args[0], rc,
                 want_rc, out, err);
    free(err);
    return out;
}

static json_t *ctl_json(struct state *s, const char *const args[])
{
    json_t *j = cdt_ctl_json(&s->d, 60000, args);
    if (j == NULL) {
        char *out = NULL, *err = NULL;
        int rc = e2e_ctl(&s->d, &out, &err, 60000, args);
        fail_msg("collectorctl -o json %s: exit %d\nstdout: %s\nstderr: %s", args[0], rc, out, err);
    }
    return j;
}

/* The id of the captured snapshot of (scheme, kind), or 0. */
static int64_t captured(const struct state *s, const char *scheme, const char *kind)
{
    size_t i;
    const json_t *it;
    json_array_foreach(json_object_get(s->capture, "snapshots"), i, it)
    {
        const char *target = e2e_jstr(it, "target");
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "/%s://", scheme);
        if (target != NULL && strstr(target, prefix) != NULL &&
            strcmp(e2e_jstr(it, "kind"), kind) == 0)
            return e2e_jint(it, "id", 0);
    }
    return 0;
}

static const struct cdt_fleet_target *fleet_target(const struct state *s, const char *workload)
{
    for (size_t i = 0; i < s->fleet.n; i++)
        if (strcmp(s->fleet.targets[i].workload, workload) == 0)
            return &s->fleet.targets[i];
    fail_msg("no fleet target runs %s", workload);
    return NULL;
}

/* ---- tests, in order ---------------------------------------------------------------------- */

static void test_list(void **st)
{
    struct state *s = *st;
    const char *args[] = {"list", NULL};
    json_t *list = ctl_json(s, args);
    assert_true(all_up(list, NULL));
    size_t i;
    const json_t *t;
    json_array_foreach(e2e_targets(list), i, t)
    {
        assert_string_equal(e2e_jstr(t, "job"), "fleet");
        assert_true(json_is_null(json_object_get(t, "last_error")));
        assert_non_null(e2e_target_kind(t, "heap"));
    }
    json_decref(list);
    /* The table shows every target, up, with its snapshot count. */
    char *text = ctl_text(s, 0, args);
    assert_non_null(strstr(text, "SNAPSHOTS"));
    for (size_t k = 0; k < s->fleet.n; k++) {
        char inst[64];
        snprintf(inst, sizeof(inst), "127.0.0.1:%d", s->fleet.targets[k].pprof_port);
        const char *line = strstr(text, inst);
        if (line == NULL)
            fail_msg("collectorctl list does not show %s:\n%s", inst, text);
        const char *eol = strchr(line, '\n');
        char row[256];
        snprintf(row, sizeof(row), "%.*s", eol != NULL ? (int)(eol - line) : 200, line);
        const char *up = strstr(row, " up ");
        if (up == NULL)
            fail_msg("collectorctl list: %s is not up: %s", inst, row);
        char *end = NULL;
        long count = strtol(up + 4, &end, 10);
        if (end == up + 4 || count < 2)
            fail_msg("collectorctl list: no snapshot count after the health: %s", row);
    }
    free(text);
}

static void test_capture_incident(void **st)
{
    struct state *s = *st;
    const char *args[] = {"capture", "job=fleet", "workload=deadlock", "--incident", "test", NULL};
    int64_t t0 = cdt_now_ms();
    s->capture = ctl_json(s, args);
    int64_t took = cdt_now_ms() - t0;
    print_message("capture of the deadlock process took %lld ms\n", (long long)took);
    if (took > CAPTURE_BOUND_MS)
        fail_msg("collectorctl capture took %lld ms (bound %d ms)", (long long)took,
                 CAPTURE_BOUND_MS);
    assert_string_equal(e2e_jstr(s->capture, "incident"), "test");
    assert_int_equal(e2e_jint(s->capture, "matched_targets", 0), 2);
    /* 8 HTTP kinds and 5 gops kinds by default, every one ok and pinned to the incident. */
    const json_t *snaps = json_object_get(s->capture, "snapshots");
    assert_int_equal(json_array_size(snaps), 8 + 5);
    size_t i;
    const json_t *it;
    json_array_foreach(snaps, i, it)
    {
        if (strcmp(e2e_jstr(it, "status"), "ok") != 0)
            fail_msg("captured %s %s: %s (%s)", e2e_jstr(it, "target"), e2e_jstr(it, "kind"),
                     e2e_jstr(it, "status"), e2e_jstr(it, "error"));
        assert_true(e2e_jint(it, "id", 0) > 0);
        assert_true(json_is_true(json_object_get(it, "pinned")));
    }
    assert_true(captured(s, "http", "cpu") > 0);
    assert_true(captured(s, "http", "trace") > 0);
    assert_true(captured(s, "gops", "goroutine_dump") > 0);
    /* Captured snapshots are marked on demand and pinned to the incident. */
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", (long long)captured(s, "http", "heap"));
    const char *show[] = {"show", ids, NULL};
    json_t *detail = ctl_json(s, show);
    assert_true(json_is_true(json_object_get(detail, "on_demand")));
    assert_true(json_is_true(json_object_get(detail, "pinned")));
    assert_string_equal(e2e_jstr(detail, "incident"), "test");
    json_decref(detail);
}

static void check_deadlock_shown(struct state *s, int64_t id)
{
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    const char *args[] = {"show", ids, NULL};
    char *text = ctl_text(s, 0, args);
    /* The finding, in the words of the goroutine parser, and the group's frame. */
    if (strstr(text, "8 goroutines blocked in sync.(*Mutex).Lock") == NULL)
        fail_msg("collectorctl show %s does not report the 8 goroutines stuck in "
                 "sync.(*Mutex).Lock:\n%s",
                 ids, text);
    free(text);
    json_t *j = ctl_json(s, args);
    const json_t *findings = json_object_get(json_object_get(j, "summary"), "findings");
    bool found = false;
    size_t i;
    const json_t *f;
    json_array_foreach(findings, i, f)
    {
        const char *msg = e2e_jstr(f, "message");
        if (msg != NULL && strstr(msg, "sync.(*Mutex).Lock") != NULL &&
            strstr(msg, "main.deadlockWaiter") != NULL)
            found = true;
    }
    assert_true(found);
    /* The detail carries the numbers taken from the summary. */
    bool count = false;
    json_array_foreach(json_object_get(j, "series"), i, f)
    {
        if (cd_str_eq(e2e_jstr(f, "name"), "goroutine_dump.count"))
            count = json_number_value(json_object_get(f, "value")) >= 9;
    }
    assert_true(count);
    json_decref(j);
}

static void test_show_deadlock(void **st)
{
    struct state *s = *st;
    check_deadlock_shown(s, captured(s, "http", "goroutine_dump"));
    check_deadlock_shown(s, captured(s, "gops", "goroutine_dump"));
}

static int go_tool(struct state *s, const char *const args[], char **out)
{
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)cdt_env("CD_GO");
    argv[n++] = "tool";
    for (int i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    char *err = NULL, *o = NULL;
    int rc = e2e_run(argv, NULL, &o, &err, 60000);
    (void)s;
    /* go tool pprof writes its progress and failures to stderr: keep both for the caller. */
    size_t lo = strlen(o), le = strlen(err);
    char *both = malloc(lo + le + 2);
    assert_non_null(both);
    memcpy(both, o, lo);
    both[lo] = '\n';
    memcpy(both + lo + 1, err, le + 1);
    free(o);
    free(err);
    *out = both;
    return rc;
}

static void test_export_bundle(void **st)
{
    struct state *s = *st;
    char *bundle = cdt_path(s->d.dir, "b.tar.gz");
    const char *args[] = {"export", "test", "-o", bundle, NULL};
    free(ctl_text(s, 0, args));
    char *dir = cdt_path(s->d.dir, "unpacked");
    assert_int_equal(mkdir(dir, 0700), 0);
    char *tar[] = {"/bin/tar", "-xzf", bundle, "-C", dir, NULL};
    assert_int_equal(e2e_run(tar, NULL, NULL, NULL, 30000), 0);
    char *top = cdt_path(dir, "test");
    char *manifest_path = cdt_path(top, "manifest.json");
    json_t *manifest = json_load_file(manifest_path, 0, NULL);
    assert_non_null(manifest);
    char *readme = cdt_path(top, "README.txt");
    struct stat sb;
    assert_int_equal(stat(readme, &sb), 0);

    const json_t *entries = json_object_get(manifest, "snapshots");
    assert_int_equal(json_array_size(entries),
                     json_array_size(json_object_get(s->capture, "snapshots")));
    int pprofs = 0, traces = 0;
    size_t i;
    const json_t *e;
    json_array_foreach(entries, i, e)
    {
        const char *file = e2e_jstr(e, "file");
        assert_non_null(file);
        assert_true(json_is_null(json_object_get(e, "export_error")));
        /* "file" is relative to the archive's top directory or names it; accept both. */
        const char *base = strrchr(file, '/') != NULL ? strrchr(file, '/') + 1 : file;
        char *path = cdt_path(top, base);
        uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(cdt_read_file(path, &data, &len), 0);
        char hex[E2E_SHA_HEX];
        e2e_sha_hex(data, len, hex);
        assert_string_equal(hex, e2e_jstr(e, "sha256"));
        assert_int_equal((int64_t)len, e2e_jint(e, "size_bytes", -1));
        free(data);
        const char *kind = e2e_jstr(e, "kind");
        char *out = NULL;
        size_t bl = strlen(base);
        if (bl > 6 && strcmp(base + bl - 6, ".pb.gz") == 0) {
            const char *pargs[] = {"pprof", "-top", path, NULL};
            int rc = go_tool(s, pargs, &out);
            if (rc != 0 || strstr(out, "flat") == NULL)
                fail_msg("go tool pprof -top %s (%s): exit %d\n%s", base, kind, rc, out);
            pprofs++;
        } else if (bl > 6 && strcmp(base + bl - 6, ".trace") == 0) {
            char *sched = cdt_path(s->d.dir, "sched.pprof");
            const char *targs[] = {"trace", "-pprof=sched", path, NULL};
            int rc = go_tool(s, targs, &out);
            if (rc != 0)
                fail_msg("go tool trace -pprof=sched %s: exit %d\n%.2000s", base, rc, out);
            free(sched);
            traces++;
        }
        free(out);
        free(path);
    }
    /* cpu, heap, allocs, goroutine, mutex, block over HTTP and heap over gops; one trace. */
    assert_int_equal(pprofs, 7);
    assert_int_equal(traces, 1);
    print_message("bundle: %d pprof files open in go tool pprof, %d trace in go tool trace\n",
                  pprofs, traces);
    json_decref(manifest);
    free(readme);
    free(manifest_path);
    free(top);
    free(dir);
    free(bundle);
}

static void test_pprof_over_tcp(void **st)
{
    struct state *s = *st;
    int64_t id = captured(s, "http", "heap");
    char url[256], bad[256], anon[256];
    snprintf(url, sizeof(url), "http://collectord:%s@127.0.0.1:%d/api/v1/snapshots/%lld/raw", TOKEN,
             s->port, (long long)id);
    snprintf(bad, sizeof(bad),
             "http://collectord:wrong-token-000000000@127.0.0.1:%d/api/v1/"
             "snapshots/%lld/raw",
             s->port, (long long)id);
    snprintf(anon, sizeof(anon), "http://127.0.0.1:%d/api/v1/snapshots/%lld/raw", s->port,
             (long long)id);
    char *out = NULL;
    const char *ok_args[] = {"pprof", "-top", url, NULL};
    int rc = go_tool(s, ok_args, &out);
    if (rc != 0 || strstr(out, "Type: inuse_space") == NULL)
        fail_msg("go tool pprof -top on the TCP listener: exit %d\n%s", rc, out);
    free(out);
    const char *anon_args[] = {"pprof", "-top", anon, NULL};
    rc = go_tool(s, anon_args, &out);
    if (rc == 0 || strstr(out, "401") == NULL)
        fail_msg("go tool pprof without the token: exit %d (expected a 401 failure)\n%s", rc, out);
    free(out);
    const char *bad_args[] = {"pprof", "-top", bad, NULL};
    rc = go_tool(s, bad_args, &out);
    if (rc == 0 || strstr(out, "401") == NULL)
        fail_msg("go tool pprof with a wrong token: exit %d (expected a 401 failure)\n%s", rc, out);
    free(out);

    /* collectorctl over TCP: with the token file it works, without it the daemon refuses. */
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", s->port);
    char *argv[] = {(char *)cdt_env("CD_COLLECTORCTL"),
                    "-s",
                    base,
                    "--token-file",
                    s->token_file,
                    "-o",
                    "json",
                    "status",
                    NULL};
    char *err = NULL;
    rc = e2e_run(argv, NULL, &out, &err, 20000);
    if (rc != 0)
        fail_msg("collectorctl -s %s --token-file status: exit %d: %s", base, rc, err);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(e2e_jint(j, "pid", 0), s->d.pid);
    json_decref(j);
    free(out);
    free(err);
    char *noauth[] = {(char *)cdt_env("CD_COLLECTORCTL"), "-s", base, "status", NULL};
    rc = e2e_run(noauth, NULL, &out, &err, 20000);
    assert_int_equal(rc, 1);
    free(out);
    free(err);
}

static void test_pin_unpin(void **st)
{
    struct state *s = *st;
    /* A scheduled (unpinned) snapshot of the mixed process. */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", fleet_target(s, "mixed")->pprof_port);
    const char *pick[] = {"snapshots", "--target", addr, "--kind", "heap", "-n", "1", NULL};
    json_t *j = ctl_json(s, pick);
    const json_t *snap = json_array_get(json_object_get(j, "snapshots"), 0);
    assert_non_null(snap);
    assert_false(json_is_true(json_object_get(snap, "pinned")));
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", (long long)e2e_jint(snap, "id", 0));
    json_decref(j);

    const char *pin[] = {"pin", ids, NULL};
    j = ctl_json(s, pin);
    assert_true(json_is_true(json_object_get(j, "pinned")));
    json_decref(j);
    free(ctl_text(s, 0, pin)); /* idempotent */
    const char *pinned[] = {"snapshots", "--pinned", "--target", addr, NULL};
    j = ctl_json(s, pinned);
    bool in = false;
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(j, "snapshots"), i, x)
    {
        if (e2e_jint(x, "id", 0) == strtoll(ids, NULL, 10))
            in = true;
    }
    assert_true(in);
    json_decref(j);

    const char *unpin[] = {"unpin", ids, NULL};
    j = ctl_json(s, unpin);
    assert_false(json_is_true(json_object_get(j, "pinned")));
    json_decref(j);
    j = ctl_json(s, pinned);
    json_array_foreach(json_object_get(j, "snapshots"), i, x)
    {
        assert_int_not_equal(e2e_jint(x, "id", 0), strtoll(ids, NULL, 10));
    }
    json_decref(j);

    /* Pinning into a second incident creates it. */
    const char *pin2[] = {"pin", ids, "--incident", "second", NULL};
    j = ctl_json(s, pin2);
    assert_string_equal(e2e_jstr(j, "incident"), "second");
    json_decref(j);
    const char *missing[] = {"pin", "999999999", NULL};
    free(ctl_text(s, 1, missing));
}

static void test_incidents(void **st)
{
    struct state *s = *st;
    const char *args[] = {"incidents", NULL};
    json_t *j = ctl_json(s, args);
    const json_t *test = NULL, *second = NULL;
    size_t i;
    const json_t *inc;
    json_array_foreach(json_object_get(j, "incidents"), i, inc)
    {
        if (strcmp(e2e_jstr(inc, "name"), "test") == 0)
            test = inc;
        if (strcmp(e2e_jstr(inc, "name"), "second") == 0)
            second = inc;
    }
    assert_non_null(test);
    assert_non_null(second);
    assert_int_equal(e2e_jint(test, "snapshots", 0), 13);
    assert_int_equal(e2e_jint(test, "targets", 0), 2);
    int64_t raw = 0;
    const json_t *it;
    json_array_foreach(json_object_get(s->capture, "snapshots"), i, it)
    {
        raw += e2e_jint(it, "size_bytes", 0);
    }
    assert_int_equal(e2e_jint(test, "size_bytes", 0), raw);
    assert_int_equal(e2e_jint(second, "snapshots", 0), 1);
    json_decref(j);
    char *text = ctl_text(s, 0, args);
    assert_non_null(strstr(text, "test"));
    assert_non_null(strstr(text, "second"));
    free(text);
}

/* Pages follow their cursors without repeating or skipping a row. */
static void test_paging(void **st)
{
    struct state *s = *st;
    json_t *seen = json_object();
    char *cursor = NULL;
    int pages = 0;
    do {
        const char *args[] = {"snapshots", "--incident", "test", "-n",
                              "2",         "--cursor",   cursor, NULL};
        if (cursor == NULL)
            args[5] = NULL;
        json_t *j = ctl_json(s, args);
        size_t i;
        const json_t *snap;
        json_array_foreach(json_object_get(j, "snapshots"), i, snap)
        {
            char key[32];
            snprintf(key, sizeof(key), "%lld", (long long)e2e_jint(snap, "id", 0));
            assert_null(json_object_get(seen, key));
            json_object_set_new(seen, key, json_true());
        }
        free(cursor);
        const char *next = e2e_jstr(j, "next_cursor");
        cursor = next != NULL ? strdup(next) : NULL;
        json_decref(j);
        pages++;
    } while (cursor != NULL && pages < 20);
    assert_int_equal(json_object_size(seen), 13);
    assert_int_equal(pages, 7);
    json_decref(seen);
}

static void test_prune_dry_run(void **st)
{
    struct state *s = *st;
    const char *args[] = {"prune", "--dry-run", NULL};
    json_t *j = ctl_json(s, args);
    assert_true(json_is_true(json_object_get(j, "dry_run")));
    /* The default policy (14 days, 20 GiB) has nothing to delete yet. */
    assert_int_equal(e2e_jint(j, "deleted_snapshots", -1), 0);
    json_decref(j);
    free(ctl_text(s, 0, args));
}

static void test_status(void **st)
{
    struct state *s = *st;
    const char *args[] = {"status", NULL};
    json_t *j = ctl_json(s, args);
    assert_int_equal(e2e_jint(j, "pid", 0), s->d.pid);
    assert_string_equal(e2e_jstr(j, "api_version"), "v1");
    const json_t *t = json_object_get(j, "targets");
    assert_int_equal(e2e_jint(t, "total", 0), 4);
    assert_int_equal(e2e_jint(t, "up", 0), 4);
    const json_t *db = json_object_get(j, "database");
    assert_string_equal(e2e_jstr(db, "path"), s->d.db);
    assert_true(e2e_jint(db, "snapshots", 0) > 13);
    assert_true(e2e_jint(db, "size_bytes", 0) > 0);
    /* The 13 captured into "test" and the one pinned into "second". */
    assert_int_equal(e2e_jint(db, "pinned", -1), 14);
    assert_true(e2e_jint(db, "oldest_unix_ms", 0) > 0);
    assert_true(e2e_jint(db, "newest_unix_ms", 0) >= e2e_jint(db, "oldest_unix_ms", 0));
    /* The default policy runs on its own: the next run is announced. */
    const json_t *ret = json_object_get(j, "retention");
    assert_true(e2e_jint(ret, "next_run_unix_ms", 0) > e2e_jint(j, "started_unix_ms", 0));
    assert_true(json_is_null(json_object_get(ret, "last_run_unix_ms")));
    assert_int_equal(e2e_jint(j, "incidents", 0), 2);
    const json_t *q = json_object_get(j, "query");
    assert_string_equal(e2e_jstr(q, "unix_socket"), s->d.socket);
    char tcp[64];
    snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", s->port);
    assert_non_null(e2e_jstr(q, "tcp"));
    assert_non_null(strstr(e2e_jstr(q, "tcp"), tcp));
    assert_true(e2e_jint(j, "uptime_ms", 0) > 0);
    json_decref(j);
    char *text = ctl_text(s, 0, args);
    assert_non_null(strstr(text, s->d.db));
    free(text);
}

static void test_series(void **st)
{
    struct state *s = *st;
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/series?name=goroutine.count&target=127.0.0.1:%d",
             fleet_target(s, "deadlock")->pprof_port);
    long status = 0;
    char *body = NULL;
    e2e_api_get(&s->d, path, &status, &body);
    if (status != 200)
        fail_msg("GET %s: %ld %s", path, status, body);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(e2e_jstr(j, "name"), "goroutine.count");
    const json_t *series = json_object_get(j, "series");
    assert_int_equal(json_array_size(series), 1);
    const json_t *points = json_object_get(json_array_get(series, 0), "points");
    assert_true(json_array_size(points) >= 2);
    int64_t prev = 0;
    size_t i;
    const json_t *p;
    json_array_foreach(points, i, p)
    {
        int64_t t = e2e_jint(p, "time_unix_ms", 0);
        assert_true(t > prev);
        prev = t;
        /* 8 goroutines stuck on the mutex, plus main, the servers and the agent. */
        assert_true(json_number_value(json_object_get(p, "value")) >= 9);
    }
    json_decref(j);
    free(body);
    /* A malformed request is a JSON error naming the parameter. */
    e2e_api_get(&s->d, "/api/v1/series?nope=1", &status, &body);
    assert_int_equal(status, 400);
    assert_non_null(strstr(body, "\"error\""));
    free(body);
}

static void test_metrics(void **st)
{
    struct state *s = *st;
    const char *args[] = {"metrics", NULL};
    char *text = ctl_text(s, 0, args);
    static const char *const want[] = {
        "# TYPE collectord_scrapes_total counter",
        "collectord_scrapes_total{job=\"fleet\",kind=\"heap\",result=\"ok\"}",
        "collectord_scrape_duration_seconds_bucket",
        "collectord_queue_depth{queue=\"parse\"}",
        "collectord_database_size_bytes",
        "collectord_target_up{",
        "collectord_api_requests_total",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (strstr(text, want[i]) == NULL)
            fail_msg("collectorctl metrics lacks '%s':\n%.3000s", want[i], text);
    }
    free(text);
}

static bool has_one(const json_t *j, void *ctx)
{
    (void)ctx;
    return json_array_size(json_object_get(j, "snapshots")) > 0;
}

static void test_fetch_to_file(void **st)
{
    struct state *s = *st;
    int64_t id = captured(s, "http", "cpu");
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    const char *show[] = {"show", ids, NULL};
    json_t *meta = ctl_json(s, show);
    char *file = cdt_path(s->d.dir, "cpu.pb.gz");
    const char *args[] = {"fetch", ids, "-o", file, NULL};
    free(ctl_text(s, 0, args));
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file(file, &data, &len), 0);
    char hex[E2E_SHA_HEX];
    e2e_sha_hex(data, len, hex);
    assert_string_equal(hex, e2e_jstr(meta, "sha256"));
    assert_int_equal((int64_t)len, e2e_jint(meta, "size_bytes", -1));
    free(data);
    /* An existing file is not replaced without --force. */
    assert_int_equal(cdt_write_file(file, "keep", 4), 0);
    free(ctl_text(s, 1, args));
    assert_int_equal(cdt_read_file(file, &data, &len), 0);
    assert_int_equal(len, 4);
    free(data);
    /* top on a CPU profile of the mixed process names its burners, as a table and in JSON. */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", fleet_target(s, "mixed")->pprof_port);
    const char *pick[] = {"snapshots", "--target", addr, "--kind", "cpu",
                          "--status",  "ok",       "-n", "1",      NULL};
    json_t *j = cdt_ctl_wait(&s->d, pick, has_one, NULL, 30000);
    assert_non_null(j);
    char mixed[32];
    snprintf(mixed, sizeof(mixed), "%lld",
             (long long)e2e_jint(json_array_get(json_object_get(j, "snapshots"), 0), "id", 0));
    json_decref(j);
    const char *top[] = {"top", mixed, "-n", "10", NULL};
    char *table = ctl_text(s, 0, top);
    if (strstr(table, "main.burn") == NULL)
        fail_msg("collectorctl top %s does not name main.burn*:\n%s", mixed, table);
    free(table);
    j = ctl_json(s, top);
    char *text = json_dumps(j, 0);
    if (strstr(text, "main.burn") == NULL)
        fail_msg("collectorctl -o json top %s does not name main.burn*:\n%.2000s", mixed, text);
    free(text);
    json_decref(j);
    json_decref(meta);
    free(file);
}

static void test_daemon_not_running(void **st)
{
    struct state *s = *st;
    /* No socket at all. */
    char *nope = cdt_path(s->d.dir, "nope.sock");
    char *argv[] = {(char *)cdt_env("CD_COLLECTORCTL"), "-s", nope, "status", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(e2e_run(argv, NULL, &out, &err, 10000), 1);
    if (strstr(err, "not running") == NULL || strstr(err, nope) == NULL)
        fail_msg("collectorctl without a daemon says: %s", err);
    free(out);
    free(err);
    /* A stale socket file (a daemon that was killed): nobody listens behind it. */
    char *stale = cdt_path(s->d.dir, "stale.sock");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", stale);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    close(fd);
    char *argv2[] = {(char *)cdt_env("CD_COLLECTORCTL"), "-s", stale, "list", NULL};
    assert_int_equal(e2e_run(argv2, NULL, &out, &err, 10000), 1);
    if (strstr(err, "not running") == NULL || strstr(err, stale) == NULL)
        fail_msg("collectorctl on a stale socket says: %s", err);
    free(out);
    free(err);
    free(stale);
    free(nope);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),           cmocka_unit_test(test_capture_incident),
        cmocka_unit_test(test_show_deadlock),  cmocka_unit_test(test_export_bundle),
        cmocka_unit_test(test_pprof_over_tcp), cmocka_unit_test(test_pin_unpin),
        cmocka_unit_test(test_incidents),      cmocka_unit_test(test_paging),
        cmocka_unit_test(test_prune_dry_run),  cmocka_unit_test(test_status),
        cmocka_unit_test(test_series),         cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_fetch_to_file),  cmocka_unit_test(test_daemon_not_running),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
