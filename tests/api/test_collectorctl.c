/*
 * collectorctl as users run it: the real binary ($CD_COLLECTORCTL) against the real server (in
 * this process, on a temporary socket, over the test backend), and at the end against the real
 * collectord scraping the Go test fleet (a deadlocked server and a CPU burner, over HTTP and
 * gops), as the README's demo does. Tables fit 80 columns and carry no terminal escapes, -o json
 * is the API's bytes unchanged, exit codes are 0/1/2, the daemon-not-running message names the
 * socket, every command has --help, downloads land whole, and what show/top/list print of real
 * snapshots is what an operator needs (the hung-server finding, snapshot counts).
 */
#include "daemon.h"
#include "fixture.h"

#include "cdtest.h"
#include "ctl/table.h"
#include "str.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
    int rc;
    char *out;
    char *err;
};

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* Runs collectorctl in f's directory with -s f's socket (unless endpoint is given) and the
 * arguments formatted from fmt; stdout and stderr captured apart. */
static void ctl_at(struct fx *f, const char *endpoint, struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void ctl_at(struct fx *f, const char *endpoint, struct run *r, const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    char *errfile = cdt_path(f->dir, "stderr.txt");
    snprintf(cmd, sizeof(cmd), "cd '%s' && exec '%s' -s '%s' %s 2>'%s'", f->dir,
             cdt_env("CD_COLLECTORCTL"), endpoint != NULL ? endpoint : f->sock, args, errfile);
    memset(r, 0, sizeof(*r));
    r->rc = ht_sh(cmd, &r->out, 30000);
    uint8_t *e = NULL;
    size_t len = 0;
    if (cdt_read_file(errfile, &e, &len) != 0)
        e = (uint8_t *)cd_str_dup("");
    r->err = (char *)e;
    free(errfile);
}

#define ctl(f, r, ...) ctl_at(f, NULL, r, __VA_ARGS__)

static void assert_fits(const char *what, const char *text)
{
    const char *p = text;
    int lines = 0;
    while (*p != '\0') {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        char *line = strndup(p, len);
        if (cd_table_width(line) > 80)
            fail_msg("%s: line wider than 80 columns: '%s'", what, line);
        if (strchr(line, '\x1b') != NULL)
            fail_msg("%s: terminal escape in '%s'", what, line);
        free(line);
        lines++;
        p = eol != NULL ? eol + 1 : p + len;
    }
    assert_true(lines > 0);
}

static void test_tables(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    char cmds[16][128];
    int n = 0;
    snprintf(cmds[n++], sizeof(cmds[0]), "status");
    snprintf(cmds[n++], sizeof(cmds[0]), "list");
    snprintf(cmds[n++], sizeof(cmds[0]), "list --health down");
    snprintf(cmds[n++], sizeof(cmds[0]), "snapshots");
    snprintf(cmds[n++], sizeof(cmds[0]), "snapshots --all -n 3 --job api");
    snprintf(cmds[n++], sizeof(cmds[0]), "incidents");
    snprintf(cmds[n++], sizeof(cmds[0]), "show %lld", (long long)f.cpu_id);
    snprintf(cmds[n++], sizeof(cmds[0]), "show %lld", (long long)f.dump_id);
    snprintf(cmds[n++], sizeof(cmds[0]), "show %lld", (long long)f.timeout_id);
    snprintf(cmds[n++], sizeof(cmds[0]), "top %lld", (long long)f.cpu_id);
    snprintf(cmds[n++], sizeof(cmds[0]), "top %lld -n 1", (long long)f.dump_id);
    snprintf(cmds[n++], sizeof(cmds[0]), "prune --dry-run");
    snprintf(cmds[n++], sizeof(cmds[0]), "capture job=api --kind heap --incident inc-9");
    snprintf(cmds[n++], sizeof(cmds[0]), "pin %lld --incident db-slow", (long long)f.heap_id);
    snprintf(cmds[n++], sizeof(cmds[0]), "unpin %lld", (long long)f.heap_id);
    snprintf(cmds[n++], sizeof(cmds[0]), "metrics");
    for (int i = 0; i < n; i++) {
        struct run r;
        ctl(&f, &r, "%s", cmds[i]);
        if (r.rc != 0)
            fail_msg("collectorctl %s: exit %d: %s", cmds[i], r.rc, r.err);
        if (strncmp(cmds[i], "metrics", 7) != 0)
            assert_fits(cmds[i], r.out);
        run_free(&r);
    }

    struct run r;
    ctl(&f, &r, "list");
    assert_non_null(strstr(r.out, "JOB"));
    assert_non_null(strstr(r.out, "HEALTH"));
    assert_non_null(strstr(r.out, "SNAPSHOTS"));
    assert_non_null(strstr(r.out, "3 targets: 1 up, 1 down, 1 not scraped yet\n"));
    /* Errors are long: in full under the table, not cut in a column. */
    assert_non_null(strstr(r.out, "\nlast errors:\n  api 10.0.0.6:6060 http"));
    assert_non_null(strstr(r.out, "connect: connection refused ?[2J?[31m(escape)"));
    assert_non_null(strstr(r.out, "s ago")); /* 42s, or a little more on a busy machine */
    run_free(&r);
    /* The escapes are the target's text: -o json keeps them (JSON-escaped), tables do not. */
    ctl(&f, &r, "-o json list --health down");
    assert_non_null(strstr(r.out, "\\u001B[2J"));
    run_free(&r);
    ctl(&f, &r, "snapshots --limit 2");
    assert_non_null(strstr(r.out, "2 snapshots, newest first, taken "));
    assert_non_null(strstr(r.out, "s ago"));
    /* The hint goes to stderr (pipes get the table alone), after a blank line. */
    assert_true(cd_str_has_prefix(r.err, "\nmore: add --cursor "));
    run_free(&r);
    ctl(&f, &r, "snapshots --all --limit 2");
    char want[64];
    snprintf(want, sizeof(want), "%zu snapshots, newest first", f.tb.n);
    assert_non_null(strstr(r.out, want));
    run_free(&r);

    /* The hung-server finding stands out. */
    ctl(&f, &r, "show %lld", (long long)f.dump_id);
    assert_non_null(strstr(r.out, "FINDINGS\n  ! 8 goroutines blocked in sync.(*Mutex).Lock "
                                  "called from main.deadlockWaiter\n    (up to 3 minutes)"));
    assert_non_null(strstr(r.out, "collectorctl fetch"));
    run_free(&r);
    ctl(&f, &r, "top %lld", (long long)f.cpu_id);
    /* go tool pprof -top's rows: by flat, then the callers without flat of their own */
    assert_string_equal(r.out, "cpu (nanoseconds): total 2.5s; top 3 functions by flat value:\n"
                               " FLAT   FLAT%    SUM%    CUM     CUM%  FUNCTION\n"
                               " 1.5s  60.00%  60.00%     2s   80.00%  main.hot\n"
                               "500ms  20.00%  80.00%  600ms   24.00%  runtime.mallocgc\n"
                               "    0   0.00%  80.00%   2.5s  100.00%  main.main\n");
    run_free(&r);
    ctl(&f, &r, "top %lld --cum --sample-type samples", (long long)f.cpu_id);
    assert_non_null(strstr(r.out, "samples (count): total 250; no function has a value"));
    run_free(&r);
    ctl(&f, &r, "top %lld --sample-type nope", (long long)f.cpu_id);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.out, "no sample type 'nope' in this profile; it has: samples, cpu"));
    run_free(&r);
    ctl(&f, &r, "show %lld", (long long)f.cpu_id);
    assert_non_null(strstr(r.out, "duration      10s, 2.5s of CPU time (25.0% of one core)\n"));
    assert_non_null(strstr(r.out, "other sample types: samples"));
    run_free(&r);
    ctl(&f, &r, "capture job=api --kind heap,cpu --incident inc-9");
    assert_non_null(strstr(r.out, "captured 4 snapshots from 2 targets in "));
    if (strstr(r.out, "2 ok, 2 connect_error; pinned to\n  incident inc-9\n") == NULL ||
        strstr(r.out, "  api  10.0.0.6:6060  cpu   connect_error  15ms     -\n") == NULL)
        fail_msg("capture: %s", r.out);
    assert_non_null(strstr(r.out, "\nnot captured:\n  api 10.0.0.6:6060 heap (connect_error): "));
    run_free(&r);
    ctl(&f, &r, "prune --dry-run");
    assert_non_null(strstr(r.out, "dry run: would delete 2 snapshots (4.0 KiB stored) in 3ms\n"));
    assert_non_null(strstr(r.out, "by rule     max_age 1, downsample 1\n"));
    assert_non_null(strstr(r.out, "kept        1 pinned snapshot\n"));
    run_free(&r);
    fx_stop(&f);
}

static void test_json_passthrough(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    char path[128];
    const char *cases[][2] = {
        {"-o json snapshots", "/api/v1/snapshots"},
        {"snapshots -o json --kind cpu", "/api/v1/snapshots?kind=cpu"},
        {"-o json list", "/api/v1/targets"},
        {"-o json incidents", "/api/v1/incidents"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r;
        ctl(&f, &r, "%s", cases[i][0]);
        assert_int_equal(r.rc, 0);
        struct ht_resp h;
        ht_get(&f, cases[i][1], &h);
        if (strcmp(r.out, h.body) != 0) {
            cdt_write_file("/tmp/cdt-ctl.out", r.out, strlen(r.out));
            cdt_write_file("/tmp/cdt-api.out", h.body, h.len);
            fail_msg("%s: output differs from the API's bytes (see /tmp/cdt-*.out)", cases[i][0]);
        }
        ht_free(&h);
        run_free(&r);
    }
    /* status: the same document, but the open-connection count may differ by one by then. */
    struct run r;
    ctl(&f, &r, "-o json status");
    assert_int_equal(r.rc, 0);
    struct ht_resp s;
    ht_get(&f, "/api/v1/status", &s);
    json_t *a = json_loads(r.out, 0, NULL), *b = s.json;
    assert_non_null(a);
    json_object_del(json_object_get(a, "query"), "connections");
    json_object_del(json_object_get(b, "query"), "connections");
    assert_true(json_equal(a, b));
    json_decref(a);
    ht_free(&s);
    run_free(&r);
    ctl(&f, &r, "show %lld -o json", (long long)f.dump_id);
    snprintf(path, sizeof(path), "/api/v1/snapshots/%lld", (long long)f.dump_id);
    struct ht_resp h;
    ht_get(&f, path, &h);
    assert_string_equal(r.out, h.body);
    ht_free(&h);
    run_free(&r);
    /* An API error in json mode: the error body on stdout, the message on stderr, exit 1. */
    ctl(&f, &r, "-o json show 999");
    assert_int_equal(r.rc, 1);
    json_t *e = json_loads(r.out, 0, NULL);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "not_found");
    json_decref(e);
    assert_non_null(strstr(r.err, "no snapshot 999"));
    run_free(&r);
    fx_stop(&f);
}

static void test_exit_codes(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    struct {
        const char *args;
        int rc;
        const char *err;
    } cases[] = {
        {"status", 0, NULL},
        {"show 999", 1, "no snapshot 999"},
        {"fetch 999", 1, "no snapshot 999"},
        {"export nothing-here", 1, "no incident"},
        {"capture job=nope", 1, "no target matches"},
        {"", 2, "usage"},
        {"frobnicate", 2, "unknown command 'frobnicate'"},
        {"--bogus status", 2, "unknown option"},
        {"show", 2, "one snapshot ID is required"},
        {"show abc", 2, "'abc' is not a snapshot ID"},
        {"show 1 2", 2, "one snapshot ID"},
        {"status extra", 2, "unexpected argument 'extra'"},
        {"list --nope", 2, "unknown option '--nope'"},
        {"snapshots -n", 2, "needs a value"},
        {"-o yaml status", 2, "-o takes table or json"},
        {"capture", 2, "a selector is required"},
        {"capture job", 2, "is not name=value"},
        {"capture job=a --timeout 1", 2, "--timeout takes a duration"},
        {"unpin 1 --incident x", 2, "unpin takes no --incident"},
        {"snapshots --since yesterday", 1, "is not a time"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r;
        ctl(&f, &r, "%s", cases[i].args);
        if (r.rc != cases[i].rc)
            fail_msg("collectorctl %s: exit %d, wanted %d (%s)", cases[i].args, r.rc, cases[i].rc,
                     r.err);
        if (cases[i].err != NULL && strstr(r.err, cases[i].err) == NULL)
            fail_msg("collectorctl %s: stderr lacks '%s': %s", cases[i].args, cases[i].err, r.err);
        run_free(&r);
    }
    fx_stop(&f);
}

static void test_not_running(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    char *gone = cdt_path(f.dir, "gone.sock");
    struct run r;
    ctl_at(&f, gone, &r, "status");
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "");
    char want[512];
    snprintf(want, sizeof(want),
             "collectorctl: collectord is not running (no socket at %s); start it with: sudo "
             "systemctl start collectord\n",
             gone);
    assert_string_equal(r.err, want);
    run_free(&r);
    /* A stale socket: also not running, said differently. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cd_str_copy(sa.sun_path, gone, sizeof(sa.sun_path));
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    ctl_at(&f, gone, &r, "snapshots");
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "collectord is not running (nothing listens on"));
    assert_non_null(strstr(r.err, gone));
    run_free(&r);
    free(gone);
    fx_stop(&f);
}

static void test_help(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    const char *cmds[] = {"status", "list",  "snapshots", "show",   "top",   "fetch",   "capture",
                          "pin",    "unpin", "incidents", "export", "prune", "inspect", "metrics"};
    struct run r;
    ctl(&f, &r, "--help");
    assert_int_equal(r.rc, 0);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "\n  %s ", cmds[i]);
        if (strstr(r.out, line) == NULL)
            fail_msg("--help does not list %s", cmds[i]);
    }
    assert_fits("--help", r.out);
    run_free(&r);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        ctl(&f, &r, "%s --help", cmds[i]);
        char want[64];
        snprintf(want, sizeof(want), "usage: collectorctl %s", cmds[i]);
        if (r.rc != 0 || !cd_str_has_prefix(r.out, want))
            fail_msg("%s --help: exit %d: %s", cmds[i], r.rc, r.out);
        assert_fits(cmds[i], r.out);
        run_free(&r);
    }
    ctl(&f, &r, "--version");
    assert_int_equal(r.rc, 0);
    assert_true(cd_str_has_prefix(r.out, "collectorctl "));
    run_free(&r);
    fx_stop(&f);
}

static void test_downloads(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    struct run r;
    ctl(&f, &r, "fetch %lld", (long long)f.cpu_id);
    assert_int_equal(r.rc, 0);
    assert_true(cd_str_has_prefix(r.out, "wrote api-10.0.0.5_6060-cpu-"));
    char name[256];
    assert_int_equal(sscanf(r.out, "wrote %255s", name), 1);
    run_free(&r);
    char *p = cdt_path(f.dir, name);
    uint8_t *got = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file(p, &got, &len), 0);
    assert_int_equal(len, f.tb.snaps[0].raw_len);
    assert_memory_equal(got, f.tb.snaps[0].raw, len);
    free(got);
    free(p);
    ctl(&f, &r, "fetch %lld", (long long)f.cpu_id);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "exists"));
    run_free(&r);
    ctl(&f, &r, "fetch %lld --force -o big.bin", (long long)f.big_id);
    assert_int_equal(r.rc, 0);
    run_free(&r);
    p = cdt_path(f.dir, "big.bin");
    assert_int_equal(cdt_read_file(p, &got, &len), 0);
    assert_int_equal(len, f.big_len);
    assert_memory_equal(got, f.big, len);
    free(got);
    free(p);
    ctl(&f, &r, "fetch %lld -o - > piped.bin", (long long)f.dump_id);
    assert_int_equal(r.rc, 0);
    run_free(&r);
    p = cdt_path(f.dir, "piped.bin");
    assert_int_equal(cdt_read_file(p, &got, &len), 0);
    assert_int_equal(len, f.tb.snaps[2].raw_len);
    free(got);
    free(p);

    /* A failed download leaves no file, not even the temporary one. */
    ctl(&f, &r, "fetch %lld -o none.bin", (long long)f.timeout_id);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "kept no bytes"));
    run_free(&r);
    char *out = NULL;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ls -A '%s'", f.dir);
    assert_int_equal(ht_sh(cmd, &out, 10000), 0);
    assert_null(strstr(out, "none.bin"));
    assert_null(strstr(out, ".collectorctl-"));
    free(out);

    ctl(&f, &r, "--no-progress export outage-42 -o inc.tar.gz");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "wrote inc.tar.gz"));
    assert_non_null(strstr(r.out, "tar -xzf inc.tar.gz"));
    run_free(&r);
    snprintf(cmd, sizeof(cmd), "cd '%s' && tar -tzf inc.tar.gz", f.dir);
    assert_int_equal(ht_sh(cmd, &out, 10000), 0);
    assert_non_null(strstr(out, "outage-42/manifest.json"));
    free(out);
    ctl(&f, &r, "-o json export outage-42");
    assert_int_equal(r.rc, 0);
    json_t *w = json_loads(r.out, 0, NULL);
    assert_non_null(w);
    assert_string_equal(json_string_value(json_object_get(w, "file")), "outage-42.tar.gz");
    assert_true(json_integer_value(json_object_get(w, "size_bytes")) > 0);
    json_decref(w);
    run_free(&r);
    fx_stop(&f);
}

struct spawned {
    pid_t pid;
    int status;
    bool done;
    const char *log;
};

static bool exited(void *ctx)
{
    struct spawned *s = ctx;
    if (!s->done && waitpid(s->pid, &s->status, WNOHANG) == s->pid)
        s->done = true;
    return s->done;
}

static bool log_has_progress(void *ctx)
{
    struct spawned *s = ctx;
    uint8_t *text = NULL;
    size_t len = 0;
    bool found = cdt_read_file(s->log, &text, &len) == 0 &&
                 strstr((char *)text, "capture: waiting for the targets") != NULL;
    free(text);
    return found;
}

static void test_capture_progress(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    f.tb.capture_mode = TB_CAPTURE_HOLD;
    char *log = cdt_path(f.dir, "capture.log");
    char *const argv[] = {(char *)cdt_env("CD_COLLECTORCTL"),
                          "-s",
                          f.sock,
                          "--progress",
                          "capture",
                          "all",
                          "--kind",
                          "cpu",
                          NULL};
    struct spawned s = {.pid = cdt_spawn(argv, log), .log = log};
    assert_true(s.pid > 0);
    /* The progress line shows while the daemon works; the result once it is done. */
    assert_int_equal(cdt_wait_until(log_has_progress, &s, 15000), 0);
    assert_false(exited(&s));
    tb_release(&f.tb);
    assert_int_equal(cdt_wait_until(exited, &s, 15000), 0);
    assert_true(WIFEXITED(s.status) && WEXITSTATUS(s.status) == 0);
    uint8_t *text = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file(log, &text, &len), 0);
    assert_non_null(strstr((char *)text, "captured 3 snapshots from 3 targets"));
    free(text);
    free(log);
    fx_stop(&f);
}

static void test_tcp_and_inspect(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, true);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.tcp_port);
    char *tok = cdt_path(f.dir, "token");
    assert_int_equal(cdt_write_file(tok, FX_TOKEN "\n", strlen(FX_TOKEN) + 1), 0);
    struct run r;
    ctl_at(&f, url, &r, "--token-file '%s' status", tok);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "collectord"));
    run_free(&r);
    ctl_at(&f, url, &r, "status");
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "needs the token"));
    run_free(&r);
    ctl_at(&f, url, &r, "--token-file '%s/missing' status", f.dir);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "token file"));
    run_free(&r);

    /* inspect is offline: no daemon needed. */
    char *file = cdt_path(f.dir, "cpu.pb.gz");
    static const uint8_t gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0};
    assert_int_equal(cdt_write_file(file, gz, sizeof(gz)), 0);
    ctl_at(&f, "/nonexistent/collectord.sock", &r, "inspect '%s'", file);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "cpu.pb.gz: pprof: "));
    run_free(&r);
    /* A dump from standard input, and -o json: the report, the error member null. */
    char *dump = cdt_path(f.dir, "dump.txt");
    assert_int_equal(cdt_write_file(dump, tb_dump_text(), strlen(tb_dump_text())), 0);
    ctl_at(&f, "/nonexistent/collectord.sock", &r, "inspect - < '%s'", dump);
    assert_int_equal(r.rc, 0);
    if (!cd_str_has_prefix(r.out, "-: goroutine dump, 3.8 KiB\n\n12 goroutines, 3 distinct"))
        fail_msg("inspect -: %s", r.out);
    assert_non_null(strstr(r.out, "FINDINGS\n  ! 8 goroutines blocked in sync.(*Mutex).Lock"));
    assert_fits("inspect", r.out);
    run_free(&r);
    ctl(&f, &r, "inspect -o json --top 1 '%s'", dump);
    assert_int_equal(r.rc, 0);
    json_t *rep = json_loads(r.out, 0, NULL);
    assert_non_null(rep);
    assert_string_equal(json_string_value(json_object_get(rep, "format")), "goroutine_text");
    assert_true(json_is_null(json_object_get(rep, "error")));
    assert_int_equal(json_array_size(json_object_get(json_object_get(rep, "summary"), "groups")),
                     1);
    assert_true(json_array_size(json_object_get(rep, "series")) > 0);
    json_decref(rep);
    run_free(&r);
    /* Not something collectord knows: exit 1, the reason on stderr. */
    ctl(&f, &r, "inspect '%s/token'", f.dir);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "not a pprof profile, execution trace, goroutine dump"));
    run_free(&r);
    ctl(&f, &r, "inspect '%s'", f.dir);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "is a directory"));
    run_free(&r);
    free(dump);
    ctl(&f, &r, "inspect '%s/missing.pb.gz'", f.dir);
    assert_int_equal(r.rc, 1);
    run_free(&r);
    ctl(&f, &r, "inspect");
    assert_int_equal(r.rc, 2);
    run_free(&r);
    free(file);
    free(tok);
    fx_stop(&f);
}

/* ---- the real daemon over the Go fleet --------------------------------------------------- */

struct want_snap {
    const char *target;
    const char *kind;
    int64_t id;
};

/* Holds when `snapshots` lists an ok snapshot of want->kind from want->target. */
static bool has_snapshot(const json_t *j, void *ctx)
{
    struct want_snap *w = ctx;
    const json_t *list = json_object_get(j, "snapshots");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *s = json_array_get(list, i);
        const char *kind = json_string_value(json_object_get(s, "kind"));
        const char *st = json_string_value(json_object_get(s, "status"));
        const char *tg = json_string_value(json_object_get(s, "target"));
        if (kind != NULL && strcmp(kind, w->kind) == 0 && st != NULL && strcmp(st, "ok") == 0 &&
            tg != NULL && strcmp(tg, w->target) == 0) {
            w->id = json_integer_value(json_object_get(s, "id"));
            return true;
        }
    }
    return false;
}

static int64_t wait_snapshot(struct cdt_daemon *d, const char *target, const char *kind)
{
    struct want_snap w = {target, kind, 0};
    const char *args[] = {"snapshots", "--kind", kind, "--limit", "1000", NULL};
    json_t *j = cdt_ctl_wait(d, args, has_snapshot, &w, 60000);
    if (j == NULL) {
        cdt_daemon_print_log(d, 30);
        fail_msg("no ok %s snapshot of %s within 60 s", kind, target);
    }
    json_decref(j);
    return w.id;
}

/* collectorctl ARGS... against d; fails unless it exits with rc; stdout (checked to fit). */
static char *real_ctl(struct cdt_daemon *d, int rc, const char *const args[])
{
    char *out = NULL;
    int got = cdt_ctl(d, &out, 60000, args);
    if (got != rc)
        fail_msg("collectorctl %s %s: exit %d, wanted %d:\n%s", args[0],
                 args[1] != NULL ? args[1] : "", got, rc, out != NULL ? out : "");
    if (out == NULL)
        out = cd_str_dup("");
    if (*out != '\0')
        assert_fits(args[0], out);
    return out;
}

static void want_in(const char *what, const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("%s: no '%s' in:\n%s", what, needle, text);
}

static void test_real_daemon(void **state)
{
    (void)state;
    struct cdt_fleet fl;
    const char *fargs[] = {"-n", "2", "-workloads", "deadlock,cpu", NULL};
    assert_int_equal(cdt_fleet_start(&fl, fargs, 30000), 0);
    const struct cdt_fleet_target *dead = NULL, *cpu = NULL;
    for (size_t i = 0; i < fl.n; i++) {
        if (strcmp(fl.targets[i].workload, "deadlock") == 0)
            dead = &fl.targets[i];
        if (strcmp(fl.targets[i].workload, "cpu") == 0)
            cpu = &fl.targets[i];
    }
    assert_non_null(dead);
    assert_non_null(cpu);
    struct cdt_daemon d;
    cdt_daemon_init(&d, "ctl");
    char *cfg =
        cdt_daemon_default_config("2s", "    profiling_config:\n"
                                        "      pprof_config:\n"
                                        "        cpu: {enabled: true, seconds: 1}\n"
                                        "        goroutine_dump: {enabled: true, interval: 2s}\n"
                                        "        trace: {enabled: true, seconds: 1, interval: 4s}\n"
                                        "    gops_config:\n"
                                        "      goroutine_dump: {enabled: true, interval: 2s}\n");
    cdt_daemon_write_config(&d, cfg);
    free(cfg);
    cdt_daemon_write_targets(&d, &fl, true);
    cdt_daemon_start(&d, NULL, 30000);

    char dead_http[64], dead_gops[64], cpu_http[64], cpu_gops_addr[64];
    snprintf(dead_http, sizeof(dead_http), "fleet/http://127.0.0.1:%d", dead->pprof_port);
    snprintf(dead_gops, sizeof(dead_gops), "fleet/gops://127.0.0.1:%d", dead->gops_port);
    snprintf(cpu_http, sizeof(cpu_http), "fleet/http://127.0.0.1:%d", cpu->pprof_port);
    snprintf(cpu_gops_addr, sizeof(cpu_gops_addr), "target=127.0.0.1:%d", cpu->gops_port);
    int64_t dump_id = wait_snapshot(&d, dead_http, "goroutine_dump");
    int64_t gdump_id = wait_snapshot(&d, dead_gops, "goroutine_dump");
    int64_t cpu_id = wait_snapshot(&d, cpu_http, "cpu");
    int64_t trace_id = wait_snapshot(&d, cpu_http, "trace");
    char ids[4][24];
    snprintf(ids[0], sizeof(ids[0]), "%lld", (long long)dump_id);
    snprintf(ids[1], sizeof(ids[1]), "%lld", (long long)gdump_id);
    snprintf(ids[2], sizeof(ids[2]), "%lld", (long long)cpu_id);
    snprintf(ids[3], sizeof(ids[3]), "%lld", (long long)trace_id);

    /* list: every target up, with its snapshot count. */
    const char *a_list[] = {"list", NULL};
    char *out = real_ctl(&d, 0, a_list);
    want_in("list", out, "4 targets: 4 up, 0 down, 0 not scraped yet\n");
    want_in("list", out, "JOB    INSTANCE         SCHEME  HEALTH  SNAPSHOTS");
    json_t *tj = cdt_ctl_json(&d, 10000, a_list);
    assert_non_null(tj);
    const json_t *tl = json_object_get(tj, "targets");
    assert_int_equal(json_array_size(tl), 4);
    for (size_t i = 0; i < 4; i++) {
        const json_t *t = json_array_get(tl, i);
        char row[128];
        snprintf(row, sizeof(row), "fleet  %s  %s    up  ",
                 json_string_value(json_object_get(t, "instance")),
                 json_string_value(json_object_get(t, "scheme")));
        want_in("list row", out, row);
        assert_true(json_integer_value(json_object_get(t, "snapshots")) > 0);
    }
    json_decref(tj);
    free(out);

    /* The hung server, over HTTP and gops: the finding first, the group's real state. */
    for (int k = 0; k < 2; k++) {
        const char *a_show[] = {"show", ids[k], NULL};
        out = real_ctl(&d, 0, a_show);
        want_in("show dump", out,
                "FINDINGS\n  ! 8 goroutines blocked in sync.(*Mutex).Lock called from "
                "main.deadlockWaiter\n");
        free(out);
    }
    const char *a_show_dump[] = {"show", ids[0], NULL};
    out = real_ctl(&d, 0, a_show_dump);
    const char *finding = strstr(out, "FINDINGS\n  ! 8 goroutines blocked in sync.(*Mutex).Lock "
                                      "called from main.deadlockWaiter\n");
    if (finding == NULL)
        fail_msg("show dump: no finding:\n%s", out);
    assert_true(finding < strstr(out, "states "));
    /* the group's row: its count, real state, where it waits and who called */
    const char *row = strstr(out, "\n    8  semacquire ");
    assert_non_null(row);
    char *line = strndup(row + 1, strcspn(row + 1, "\n"));
    want_in("group row", line, "  sync.(*Mutex).Lock  ");
    assert_true(cd_str_has_suffix(line, "  main.deadlockWaiter"));
    free(line);
    free(out);

    /* The CPU burner: a go tool pprof -top table. */
    const char *a_top[] = {"top", ids[2], NULL};
    out = real_ctl(&d, 0, a_top);
    want_in("top cpu", out, "cpu (nanoseconds): total ");
    want_in("top cpu", out, "FLAT   FLAT%");
    want_in("top cpu", out, "  FUNCTION\n");
    /* the burner's stack, unless a loaded machine gave it no sample */
    if (strstr(out, "no function has a value") == NULL)
        want_in("top cpu", out, "main.cpuBurner");
    free(out);
    const char *a_show_trace[] = {"show", ids[3], NULL};
    out = real_ctl(&d, 0, a_show_trace);
    want_in("show trace", out, "written by    Go 1.");
    want_in("show trace", out, "goroutines    ");
    want_in("show trace", out, "go tool trace FILE");
    free(out);

    /* gops text kinds, captured now into an incident. */
    const char *a_cap[] = {"capture",    cpu_gops_addr, "--kind", "memstats,stats,version",
                           "--incident", "e2e",         NULL};
    out = real_ctl(&d, 0, a_cap);
    want_in("capture", out, "captured 3 snapshots from 1 target in ");
    want_in("capture", out, ": 3 ok; pinned to incident e2e\n");
    free(out);
    const char *a_cap_json[] = {"capture", cpu_gops_addr, "--kind", "memstats,stats,version", NULL};
    json_t *cj = cdt_ctl_json(&d, 60000, a_cap_json);
    assert_non_null(cj);
    const char *wants[][2] = {{"memstats", "from the OS  "},
                              {"stats", "GOMAXPROCS    "},
                              {"version", "Go            go1."}};
    const json_t *items = json_object_get(cj, "snapshots");
    assert_int_equal(json_array_size(items), 3);
    for (size_t i = 0; i < 3; i++) {
        const json_t *it = json_array_get(items, i);
        const char *kind = json_string_value(json_object_get(it, "kind"));
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(it, "id")));
        const char *a_show[] = {"show", id, NULL};
        out = real_ctl(&d, 0, a_show);
        for (size_t w = 0; w < 3; w++) {
            if (strcmp(kind, wants[w][0]) == 0)
                want_in(kind, out, wants[w][1]);
        }
        free(out);
    }
    json_decref(cj);

    /* What was stored summarizes the same offline. */
    char *file = cdt_path(d.dir, "cpu.pb.gz");
    const char *a_fetch[] = {"fetch", ids[2], "-o", file, NULL};
    out = real_ctl(&d, 0, a_fetch);
    want_in("fetch", out, "wrote ");
    free(out);
    const char *a_inspect[] = {"inspect", file, NULL};
    out = real_ctl(&d, 0, a_inspect);
    want_in("inspect", out, ": pprof profile, ");
    want_in("inspect", out, "cpu (nanoseconds): total ");
    free(out);
    free(file);

    /* The rest of the commands, as the README shows them. */
    const char *a_status[] = {"status", NULL};
    out = real_ctl(&d, 0, a_status);
    want_in("status", out, "targets     4: 4 up, 0 down, 0 not scraped yet\n");
    want_in("status", out, "queues      parse ");
    assert_null(strstr(out, " of 1,")); /* the capacity is the configured one */
    free(out);
    const char *a_snaps[] = {"snapshots", "--kind", "cpu", "--job", "fleet", "-n", "3", NULL};
    out = real_ctl(&d, 0, a_snaps);
    want_in("snapshots", out, " newest first, taken ");
    free(out);
    const char *a_inc[] = {"incidents", NULL};
    out = real_ctl(&d, 0, a_inc);
    want_in("incidents", out, "\ne2e ");
    free(out);
    const char *a_prune[] = {"prune", "--dry-run", NULL};
    out = real_ctl(&d, 0, a_prune);
    want_in("prune", out, "dry run: would delete ");
    free(out);
    char *tarball = cdt_path(d.dir, "e2e.tar.gz");
    const char *a_export[] = {"export", "e2e", "-o", tarball, NULL};
    out = real_ctl(&d, 0, a_export);
    want_in("export", out, "\nunpack it with: tar -xzf ");
    free(out);
    free(tarball);
    const char *a_metrics[] = {"metrics", NULL};
    char *m = NULL;
    assert_int_equal(cdt_ctl(&d, &m, 10000, a_metrics), 0);
    want_in("metrics", m, "collectord_scrapes_total{");
    free(m);

    cdt_daemon_stop(&d, SIGTERM, 15000);
    cdt_daemon_cleanup(&d);
    cdt_fleet_stop(&fl);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_json_passthrough),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_not_running),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_downloads),
        cmocka_unit_test(test_capture_progress),
        cmocka_unit_test(test_tcp_and_inspect),
        cmocka_unit_test(test_real_daemon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
