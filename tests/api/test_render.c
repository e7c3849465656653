/*
 * collectorctl's renderer and tables on REAL summaries: the parsers run here on the Go test
 * fleet's answers (a deadlocked server, a CPU burner, gops replies, a trace) and on every file of
 * ../shared/testdata (skipped when absent), through the same offline path as `collectorctl
 * inspect`. Checked: the hung-server finding comes first and reads as operators expect, group
 * states and wait times are the parser's, top tables follow `go tool pprof -top` (flat order,
 * sum%), every format fits 80 (and 60) columns without control characters, unknown members
 * still print, and the table cuts cells with an ellipsis.
 */
#include "ctl/inspect.h"
#include "ctl/render.h"
#include "ctl/table.h"
#include "fleet.h"
#include "goroutine.h"
#include "str.h"

#include "cdtest.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct capture {
    char *text;
    size_t len;
    FILE *f;
};

static void cap_open(struct capture *c)
{
    c->text = NULL;
    c->len = 0;
    c->f = open_memstream(&c->text, &c->len);
    assert_non_null(c->f);
}

static char *cap_close(struct capture *c)
{
    fclose(c->f);
    return c->text;
}

/* Every line at most width code points, and no control characters but newlines. */
static void assert_fits(const char *what, const char *text, int width)
{
    const char *p = text;
    while (*p != '\0') {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        char *line = strndup(p, len);
        if ((int)cd_table_width(line) > width)
            fail_msg("%s: line wider than %d: '%s'", what, width, line);
        for (size_t i = 0; i < len; i++) {
            if ((unsigned char)line[i] < 0x20)
                fail_msg("%s: control character in '%s'", what, line);
        }
        free(line);
        p = eol != NULL ? eol + 1 : p + len;
    }
}

/* The report collectorctl inspect makes of data (fails the test when there is none). */
static json_t *inspect(const void *data, size_t len, size_t top_n)
{
    json_t *rep = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_ctl_inspect(data, len, top_n, &rep, &err), 0);
    assert_non_null(rep);
    return rep;
}

/* show's rendering of a report's summary at width (the renderer's own options otherwise). */
static char *render(const json_t *rep, int width, const struct cd_render_opts *base)
{
    struct cd_render_opts o;
    cd_render_opts_default(&o);
    if (base != NULL)
        o = *base;
    o.width = width;
    o.now_ms = 1795300000000;
    struct capture c;
    cap_open(&c);
    cd_render_summary(c.f, json_string_value(json_object_get(rep, "format")),
                      json_object_get(rep, "summary"), &o);
    return cap_close(&c);
}

static char *render_top(const json_t *rep, const struct cd_render_opts *o, int *tables)
{
    struct capture c;
    cap_open(&c);
    *tables = cd_render_top(c.f, json_string_value(json_object_get(rep, "format")),
                            json_object_get(rep, "summary"), o);
    return cap_close(&c);
}

/* ---- goroutine dumps ------------------------------------------------------------------------- */

/* A server hung on a lock for minutes, as Go prints it (the fleet cannot wait that long). */
static char *hung_dump(void)
{
    char *text = cd_str_dup("goroutine 1 [running]:\nmain.main()\n\t/src/main.go:10 +0x1d\n\n");
    for (int i = 0; i < 8; i++) {
        char *next = cd_str_printf(
            "%sgoroutine %d [sync.Mutex.Lock, %d minutes]:\n"
            "sync.runtime_SemacquireMutex(0x0?, 0x0?, 0x0?)\n"
            "\t/usr/lib/go/src/runtime/sema.go:77 +0x25\n"
            "sync.(*Mutex).lockSlow(0xc0000a4000)\n\t/usr/lib/go/src/sync/mutex.go:171 +0x165\n"
            "sync.(*Mutex).Lock(...)\n\t/usr/lib/go/src/sync/mutex.go:90\n"
            "main.deadlockWaiter()\n\t/src/fleet/workload.go:138 +0x4d\n"
            "created by main.startDeadlock\n\t/src/fleet/workload.go:146 +0x3f\n\n",
            text, 20 + i, i < 4 ? 3 : 2);
        free(text);
        text = next;
    }
    for (int i = 0; i < 3; i++) {
        char *next = cd_str_printf(
            "%sgoroutine %d [IO wait]:\n"
            "internal/poll.runtime_pollWait(0x7f, 0x72)\n"
            "\t/usr/lib/go/src/runtime/netpoll.go:305 +0x89\n"
            "net/http.(*conn).serve(0xc000150000, {0x6f4f10, 0xc00007e000})\n"
            "\t/usr/lib/go/src/net/http/server.go:1991 +0x61d\n"
            "created by net/http.(*Server).Serve\n\t/usr/lib/go/src/net/http/server.go:3102\n\n",
            text, 40 + i);
        free(text);
        text = next;
    }
    assert_non_null(text);
    return text;
}

static void test_hung_server(void **state)
{
    (void)state;
    char *dump = hung_dump();
    json_t *rep = inspect(dump, strlen(dump), 0);
    assert_string_equal(json_string_value(json_object_get(rep, "format")), "goroutine_text");
    assert_true(json_is_null(json_object_get(rep, "error")));
    char *text = render(rep, 80, NULL);
    /* The finding is the first thing under the headline, in the words operators search for. */
    const char *want = "12 goroutines, 3 distinct stacks\n\n"
                       "FINDINGS\n"
                       "  ! 8 goroutines blocked in sync.(*Mutex).Lock called from "
                       "main.deadlockWaiter\n"
                       "    (up to 3 minutes)\n"
                       "    at /src/fleet/workload.go:138\n";
    if (!cd_str_has_prefix(text, want))
        fail_msg("show does not open with the finding:\n%s", text);
    assert_non_null(strstr(text, "states        8 sync.Mutex.Lock, 3 IO wait, 1 running\n"));
    assert_non_null(
        strstr(text, "waiting       4 under a minute, 8 for 1-4 minutes; longest 3m\n"));
    /* The group's real state and wait range, where the renderer once printed "?". */
    assert_non_null(strstr(text, "    8  sync.Mutex.Lock  2-3m  sync.(*Mutex).Lock"));
    assert_non_null(strstr(text, "main.deadlockWaiter\n"));
    assert_non_null(strstr(text, "LONGEST WAITING goroutines (8; alike ones on one row"));
    assert_non_null(strstr(text, "\n20 +3    3m  sync.Mutex.Lock  sync.runtime_SemacquireMutex"));
    assert_non_null(strstr(text, "\n24 +3    2m  sync.Mutex.Lock  sync.runtime_SemacquireMutex"));
    assert_non_null(strstr(text, "CREATED BY, most goroutines first"));
    assert_non_null(strstr(text, "    8  main.startDeadlock\n"));
    assert_null(strstr(text, "more (members"));
    assert_fits("hung dump", text, 80);
    free(text);
    text = render(rep, 60, NULL);
    assert_fits("hung dump at 60", text, 60);
    free(text);

    /* top: the finding, then the groups. */
    struct cd_render_opts o;
    cd_render_opts_default(&o);
    o.top_n = 1;
    int tables = 0;
    text = render_top(rep, &o, &tables);
    assert_int_equal(tables, 1);
    assert_true(cd_str_has_prefix(text, "FINDINGS\n  ! 8 goroutines blocked in"));
    assert_non_null(strstr(text, "(1 of 3)"));
    assert_null(strstr(text, "IO wait"));
    free(text);

    json_t *msgs = cd_render_goroutine_findings(json_object_get(rep, "summary"));
    assert_int_equal(json_array_size(msgs), 1);
    assert_string_equal(json_string_value(json_array_get(msgs, 0)),
                        "8 goroutines blocked in sync.(*Mutex).Lock called from "
                        "main.deadlockWaiter (up to 3 minutes)");
    json_decref(msgs);
    json_decref(rep);
    free(dump);
}

/* A leak: 12 workers parked on a channel for 5 minutes. Alike goroutines share a row. */
static void test_leak(void **state)
{
    (void)state;
    char *text = cd_str_dup("");
    for (int i = 0; i < 12; i++) {
        char *next = cd_str_printf("%sgoroutine %d [chan receive, 5 minutes]:\n"
                                   "main.worker(0xc000010000)\n\t/src/app/work.go:31 +0x2a\n"
                                   "created by main.start\n\t/src/app/work.go:20 +0x3f\n\n",
                                   text, 100 + i);
        free(text);
        text = next;
    }
    json_t *rep = inspect(text, strlen(text), 0);
    free(text);
    text = render(rep, 80, NULL);
    if (!cd_str_has_prefix(text, "12 goroutines, 1 distinct stack\n\nFINDINGS\n  ! 12 goroutines"))
        fail_msg("leak:\n%s", text);
    assert_non_null(strstr(text, "LONGEST WAITING goroutines (12; alike ones on one row, ID +N "
                                 "more):\n"));
    assert_non_null(strstr(text, "100 +11    5m  chan receive  main.worker"));
    assert_non_null(strstr(text, "   12  chan receive    5m  main.worker\n"));
    assert_fits("leak", text, 80);
    free(text);
    json_decref(rep);
}

/* ---- the Go fleet ------------------------------------------------------------------------------
 */

static json_t *fleet_http(int port, const char *path)
{
    int status = 0;
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = cdt_http_get(port, path, &status, &body, &len, 20000);
    if (rc != 0 || status != 200)
        fail_msg("GET %s: %d, HTTP %d", path, rc, status);
    json_t *rep = inspect(body, len, 0);
    free(body);
    return rep;
}

static json_t *fleet_gops(int port, int cmd)
{
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = cdt_gops_cmd(port, cmd, &body, &len, 20000);
    if (rc != 0)
        fail_msg("gops 0x%02x: %d", cmd, rc);
    json_t *rep = inspect(body, len, 0);
    free(body);
    return rep;
}

static void check_rendered(const char *what, const json_t *rep, const char *format,
                           const char *const *wants)
{
    assert_string_equal(json_string_value(json_object_get(rep, "format")), format);
    if (!json_is_null(json_object_get(rep, "error")))
        fail_msg("%s: %s", what, json_string_value(json_object_get(rep, "error")));
    char *text = render(rep, 80, NULL);
    for (size_t i = 0; wants[i] != NULL; i++) {
        if (strstr(text, wants[i]) == NULL)
            fail_msg("%s: no '%s' in:\n%s", what, wants[i], text);
    }
    assert_null(strstr(text, "more (members"));
    assert_fits(what, text, 80);
    free(text);
}

static void test_fleet(void **state)
{
    (void)state;
    struct cdt_fleet fl;
    const char *args[] = {"-n", "2", "-workloads", "deadlock,cpu", NULL};
    assert_int_equal(cdt_fleet_start(&fl, args, 30000), 0);
    const struct cdt_fleet_target *dead = NULL, *cpu = NULL;
    for (size_t i = 0; i < fl.n; i++) {
        if (strcmp(fl.targets[i].workload, "deadlock") == 0)
            dead = &fl.targets[i];
        if (strcmp(fl.targets[i].workload, "cpu") == 0)
            cpu = &fl.targets[i];
    }
    assert_non_null(dead);
    assert_non_null(cpu);

    /* The deadlocked server, over HTTP and over gops: the same finding, first. */
    json_t *rep = fleet_http(dead->pprof_port, "/debug/pprof/goroutine?debug=2");
    const char *const dump[] = {"FINDINGS\n  ! 8 goroutines blocked in sync.(*Mutex).Lock called "
                                "from main.deadlockWaiter\n",
                                "  semacquire ",
                                "sync.(*Mutex).Lock",
                                "main.deadlockWaiter",
                                "main.startDeadlock",
                                NULL};
    check_rendered("debug=2 dump", rep, "goroutine_text", dump);
    char *text = render(rep, 80, NULL);
    assert_true(strstr(text, "FINDINGS") < strstr(text, "states "));
    assert_true(strstr(text, "states ") < strstr(text, "GROUPS"));
    assert_null(strstr(text, "  ?  "));
    free(text);
    json_decref(rep);
    rep = fleet_gops(dead->gops_port, 0x01);
    check_rendered("gops dump", rep, "goroutine_text", dump);
    json_decref(rep);
    rep = fleet_http(dead->pprof_port, "/debug/pprof/goroutine?debug=1");
    const char *const debug1[] = {"goroutine profile (debug=1 text): ", "GROUPS", NULL};
    check_rendered("debug=1 dump", rep, "goroutine_text", debug1);
    json_decref(rep);

    /* The CPU burner: go tool pprof's order, units, and sum%. */
    rep = fleet_http(cpu->pprof_port, "/debug/pprof/profile?seconds=1");
    const char *const prof[] = {"sample types  samples ",         "duration      ",
                                "sampling      every 10ms (cpu)", "cpu (nanoseconds): total ",
                                "other sample types: samples",    NULL};
    check_rendered("cpu profile", rep, "pprof", prof);
    /* the burner's stack, unless a loaded machine gave it no sample in that second */
    text = render(rep, 80, NULL);
    assert_true((strstr(text, "main.cpuBurner") != NULL && strstr(text, "FLAT%") != NULL) ||
                strstr(text, "no function has a value") != NULL);
    free(text);
    json_decref(rep);
    rep = fleet_http(cpu->pprof_port, "/debug/pprof/heap");
    const char *const heap[] = {"inuse_space (bytes): total ", "other sample types: alloc_objects",
                                NULL};
    check_rendered("heap profile", rep, "pprof", heap);
    json_decref(rep);
    rep = fleet_http(cpu->pprof_port, "/debug/pprof/heap?debug=1");
    const char *const heapt[] = {"in use        ", "runtime.MemStats", "GC            ", NULL};
    check_rendered("heap text", rep, "heap_text", heapt);
    json_decref(rep);
    rep = fleet_http(cpu->pprof_port, "/debug/pprof/trace?seconds=1");
    const char *const trace[] = {"written by    Go 1.", "duration      ", "goroutines    ",
                                 "GC            ",      "event types   ", NULL};
    check_rendered("trace", rep, "trace", trace);
    json_decref(rep);

    /* gops text replies, in human units. */
    rep = fleet_gops(cpu->gops_port, 0x03);
    const char *const mem[] = {"heap          ", " MiB", "GC            ", " cycles", NULL};
    check_rendered("memstats", rep, "gops_memstats", mem);
    json_decref(rep);
    rep = fleet_gops(cpu->gops_port, 0x07);
    const char *const stats[] = {"goroutines    ", "OS threads    ", "GOMAXPROCS    ", NULL};
    check_rendered("stats", rep, "gops_stats", stats);
    json_decref(rep);
    rep = fleet_gops(cpu->gops_port, 0x04);
    const char *const ver[] = {"Go            go1.", NULL};
    check_rendered("version", rep, "gops_version", ver);
    json_decref(rep);
    cdt_fleet_stop(&fl);
}

/* ---- ../shared/testdata
 * -------------------------------------------------------------------------- */

/* Renders every file of dir (show and top, at 80 and 60 columns); returns how many. */
static size_t render_dir(const char *dir, size_t *partial)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || cd_str_has_suffix(e->d_name, ".md"))
            continue;
        char *path = cdt_path(dir, e->d_name);
        uint8_t *data = NULL;
        size_t len = 0;
        if (cdt_read_file(path, &data, &len) != 0) {
            free(path); /* a directory */
            continue;
        }
        json_t *rep = inspect(data, len, 30);
        free(data);
        if (!json_is_null(json_object_get(rep, "error")) &&
            json_is_object(json_object_get(rep, "summary")))
            (*partial)++;
        for (int width = 60; width <= 80; width += 20) {
            char *text = render(rep, width, NULL);
            assert_fits(path, text, width);
            free(text);
            struct cd_render_opts o;
            cd_render_opts_default(&o);
            o.width = width;
            o.sample_type = "all";
            int tables;
            text = render_top(rep, &o, &tables);
            assert_fits(path, text, width);
            free(text);
        }
        json_decref(rep);
        free(path);
        n++;
    }
    closedir(d);
    return n;
}

static void test_shared_files(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    const char *dirs[] = {"testdata/pprof", "testdata/pprof/agpl-pyroscope", "testdata/go-traces",
                          "testdata/go-traces/fuzz"};
    size_t files = 0, partial = 0;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char *dir = cdt_path(cdt_shared_dir(), dirs[i]);
        files += render_dir(dir, &partial);
        free(dir);
    }
    print_message("rendered %zu files (%zu partial summaries)\n", files, partial);
    assert_true(files > 50);
    assert_true(partial > 0); /* the EXPECTFAIL and fuzz traces */
}

static json_t *shared_report(const char *rel)
{
    char *path = cdt_path(cdt_shared_dir(), rel);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file(path, &data, &len), 0);
    json_t *rep = inspect(data, len, 0);
    free(data);
    free(path);
    return rep;
}

static void test_shared_pprof(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    json_t *rep = shared_report("testdata/pprof/go1.19_gen_heap.pb.gz");
    struct cd_render_opts o;
    cd_render_opts_default(&o);
    o.top_n = 5;
    /* The default type is the one go tool pprof shows: inuse_space for heap. */
    int tables = 0;
    char *text = render_top(rep, &o, &tables);
    assert_int_equal(tables, 1);
    assert_true(cd_str_has_prefix(text, "inuse_space (bytes): total "));
    assert_non_null(strstr(text, "; top 5 functions by flat value:\n"));
    /* Rows in the summary's order (pprof's: |flat| descending), sum% accumulating flat%. */
    const json_t *st =
        json_array_get(json_object_get(json_object_get(rep, "summary"), "sample_types"), 3);
    const json_t *rows = json_object_get(st, "top_flat");
    const char *prev = text;
    double sum = 0;
    for (size_t i = 0; i < 5 && i < json_array_size(rows); i++) {
        const json_t *r = json_array_get(rows, i);
        const char *fn = json_string_value(json_object_get(r, "function"));
        const char *at = strstr(prev, fn);
        if (at == NULL)
            fail_msg("row %zu (%s) missing or out of order:\n%s", i, fn, text);
        sum += (double)json_integer_value(json_object_get(r, "flat")) * 100.0 /
               (double)json_integer_value(json_object_get(st, "total_abs"));
        char pct[32];
        snprintf(pct, sizeof(pct), "%.2f%%", sum);
        const char *line = at;
        while (line > text && line[-1] != '\n')
            line--;
        if (strstr(line, pct) == NULL || strstr(line, pct) > at)
            fail_msg("row %zu: sum%% %s not on its line:\n%s", i, pct, text);
        prev = at;
    }
    free(text);
    o.sample_type = "all";
    text = render_top(rep, &o, &tables);
    assert_int_equal(tables, 4);
    assert_non_null(strstr(text, "alloc_objects (count): total "));
    free(text);
    o.sample_type = "cpu";
    text = render_top(rep, &o, &tables);
    assert_int_equal(tables, 0);
    assert_string_equal(text, "no sample type 'cpu' in this profile; it has: alloc_objects, "
                              "alloc_space,\n  inuse_objects, inuse_space (or: all)\n");
    free(text);
    o.sample_type = NULL;
    o.cum = true;
    text = render_top(rep, &o, &tables);
    assert_non_null(strstr(text, "by cumulative value (--cum)"));
    assert_non_null(strstr(text, "main.startWorkload.func2"));
    assert_true(strstr(text, "runtime/pprof.Do") < strstr(text, "main.startWorkload.func2"));
    free(text);
    json_decref(rep);

    /* An unsymbolized profile says so. */
    rep = shared_report("testdata/pprof/parca_stripped-cpu.pb.gz");
    text = render(rep, 80, NULL);
    assert_non_null(strstr(text, "not symbolized"));
    assert_non_null(strstr(text, "0x"));
    free(text);
    json_decref(rep);

    /* Legacy text the parsers refuse: a report with an error and no summary. */
    rep = shared_report("testdata/pprof/google-pprof_legacy_go.crc32.cpu");
    assert_string_equal(json_string_value(json_object_get(rep, "format")), "unknown");
    assert_true(json_is_null(json_object_get(rep, "summary")));
    assert_non_null(strstr(json_string_value(json_object_get(rep, "error")), "not a pprof"));
    json_decref(rep);
}

/* The rows of top appear in go tool pprof -top's own order (its full list, our rows being the
 * first by flat and then a subset of the functions without flat, both in its order). */
static void test_pprof_order(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    const char *files[] = {"testdata/pprof/go1.19_gen_cpu.pb.gz",
                           "testdata/pprof/go1.19_gen_mutex.pb.gz"};
    for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
        char *path = cdt_path(cdt_shared_dir(), files[k]);
        uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(cdt_read_file(path, &data, &len), 0);
        json_t *rep = inspect(data, len, 0);
        free(data);
        struct cd_render_opts o;
        cd_render_opts_default(&o);
        o.width = 400; /* whole names */
        o.top_n = 40;
        int tables = 0;
        char *ours = render_top(rep, &o, &tables);
        assert_int_equal(tables, 1);
        char *argv[] = {
            (char *)cdt_env("CD_GO"), "tool", "pprof", "-top", "-nodecount=0", "-nodefraction=0",
            "-edgefraction=0",        path,   NULL};
        char *theirs = NULL;
        assert_int_equal(cdt_run(argv, &theirs, 60000), 0);
        assert_non_null(theirs);
        /* pprof marks inlined functions; the summary merges by name */
        const char *marks[] = {" (inline)", " (partial-inline)"};
        for (size_t m = 0; m < 2; m++) {
            size_t ml = strlen(marks[m]);
            for (char *in; (in = strstr(theirs, marks[m])) != NULL;)
                memmove(in, in + ml, strlen(in + ml) + 1);
        }
        /* each of our function names, found after the previous one in pprof's list */
        const char *at = strstr(theirs, "flat%");
        assert_non_null(at);
        size_t rows = 0;
        char *save = NULL;
        for (char *line = strtok_r(ours, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save)) {
            if (strstr(line, "%  ") == NULL || strstr(line, "FUNCTION") != NULL)
                continue; /* the heading and the column titles */
            char name[512];
            snprintf(name, sizeof(name), "  %s\n", strrchr(line, ' ') + 1);
            const char *next = strstr(at, name);
            if (next == NULL)
                fail_msg("%s: '%s' missing from, or out of, go tool pprof's order:\n%s", files[k],
                         name, theirs);
            at = next + 1;
            rows++;
        }
        assert_true(rows >= 5);
        free(theirs);
        free(ours);
        json_decref(rep);
        free(path);
    }
}

static void test_shared_traces(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    json_t *rep = shared_report("testdata/go-traces/go1.21_golang_user_task_region.trace");
    char *text = render(rep, 80, NULL);
    assert_non_null(strstr(text, "written by    Go 1.21, trace format v1\n"));
    assert_non_null(strstr(text, "user          1 task (1 ended), 3 regions, 1 log\n"));
    assert_non_null(strstr(text, "regions       "));
    assert_null(strstr(text, "PARTIAL"));
    free(text);
    json_decref(rep);

    /* A trace cut in the middle: what could be read, flagged first, and the error. */
    char *path = cdt_path(cdt_shared_dir(), "testdata/go-traces/go1.21_golang_http.trace");
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file(path, &data, &len), 0);
    rep = inspect(data, len / 2, 0);
    free(data);
    free(path);
    assert_string_equal(json_string_value(json_object_get(rep, "format")), "trace");
    assert_non_null(json_string_value(json_object_get(rep, "error")));
    text = render(rep, 80, NULL);
    assert_true(cd_str_has_prefix(text, "PARTIAL       the trace is cut short or corrupt: only "));
    assert_non_null(strstr(text, "goroutines    "));
    free(text);
    json_decref(rep);
}

static void test_shared_text(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    json_t *rep = shared_report("testdata/pprof/go1.19_gen_heap_debug1.txt");
    assert_string_equal(json_string_value(json_object_get(rep, "format")), "heap_text");
    char *text = render(rep, 80, NULL);
    assert_true(cd_str_has_prefix(text, "in use        "));
    assert_non_null(strstr(text, "largest allocation sites by space in use (20 of "));
    assert_non_null(strstr(text, "runtime.MemStats at the time of the profile:\n"));
    free(text);
    json_decref(rep);
    rep = shared_report("testdata/pprof/go1.19_gen_goroutine_debug2.txt");
    text = render(rep, 80, NULL);
    assert_non_null(strstr(text, "states        "));
    assert_non_null(strstr(text, "GROUPS of identical stacks"));
    free(text);
    json_decref(rep);
}

/* ---- the rest
 * ------------------------------------------------------------------------------------ */

static void test_generic_and_units(void **state)
{
    (void)state;
    char buf[128];
    json_t *v = json_integer(1536);
    assert_string_equal(cd_render_value(buf, sizeof(buf), "heap_inuse_bytes", v, 0), "1.5 KiB");
    assert_string_equal(cd_render_value(buf, sizeof(buf), "count", v, 0), "1536");
    json_decref(v);
    v = json_integer(1500000);
    assert_string_equal(cd_render_value(buf, sizeof(buf), "pause_total_ns", v, 0), "1.5ms");
    json_decref(v);
    v = json_integer(90000);
    assert_string_equal(cd_render_value(buf, sizeof(buf), "duration_ms", v, 0), "1m30s");
    json_decref(v);
    v = json_real(12.345);
    assert_string_equal(cd_render_value(buf, sizeof(buf), "gc_cpu_pct", v, 0), "12.3%");
    json_decref(v);
    v = json_string("bad\x1b[31mred");
    assert_string_equal(cd_render_value(buf, sizeof(buf), "x", v, 0), "bad?[31mred");
    json_decref(v);
    assert_string_equal(cd_render_ns(buf, sizeof(buf), 850), "850ns");
    assert_string_equal(cd_render_ns(buf, sizeof(buf), 250e9), "4m10s");
    assert_string_equal(cd_render_format_title("goroutine_text"), "goroutine dump");

    /* A format this collectorctl has no layout for prints as it is; big arrays are cut. */
    json_t *big = json_array();
    for (int i = 0; i < 300; i++)
        json_array_append_new(big, json_integer(i));
    json_t *s =
        json_pack("{s:I, s:{s:i, s:I}, s:o, s:n}", "duration_ns", (json_int_t)2000000000, "gc",
                  "count", 3, "pause_total_ns", (json_int_t)4500000, "histogram", big, "note");
    struct cd_render_opts o;
    cd_render_opts_default(&o);
    struct capture c;
    cap_open(&c);
    cd_render_summary(c.f, "flamegraph", s, &o);
    char *text = cap_close(&c);
    assert_non_null(strstr(text, "duration_ns: 2s\n"));
    assert_non_null(strstr(text, "gc:\n  count: 3\n  pause_total_ns: 4.5ms\n"));
    assert_non_null(strstr(text, "more bytes; -o json shows all"));
    assert_non_null(strstr(text, "note: -\n"));
    assert_fits("generic", text, 80);
    free(text);
    json_decref(s);

    /* A member a parser adds later still shows, after the layout. */
    s = json_pack("{s:i, s:i, s:i}", "goroutines", 14, "threads", 9, "cgo_calls", 7);
    cap_open(&c);
    cd_render_summary(c.f, "gops_stats", s, &o);
    text = cap_close(&c);
    assert_string_equal(text, "goroutines    14\nOS threads    9\n\n"
                              "more (members this collectorctl has no layout for):\n"
                              "  cgo_calls: 7\n");
    free(text);
    json_decref(s);
    cap_open(&c);
    cd_render_summary(c.f, NULL, NULL, &o);
    text = cap_close(&c);
    assert_non_null(strstr(text, "no summary"));
    free(text);

    /* Not recognised at all: an error, a report all the same. */
    json_t *rep = inspect("\x00\x01garbage", 9, 0);
    assert_string_equal(json_string_value(json_object_get(rep, "format")), "unknown");
    assert_non_null(json_string_value(json_object_get(rep, "error")));
    assert_int_equal(json_integer_value(json_object_get(rep, "size_bytes")), 9);
    json_decref(rep);
    rep = inspect("", 0, 0);
    assert_non_null(strstr(json_string_value(json_object_get(rep, "error")), "empty"));
    json_decref(rep);
}

static void test_table(void **state)
{
    (void)state;
    struct cd_table t;
    cd_table_init(&t);
    assert_int_equal(cd_table_add_col(&t, "ID", CD_TABLE_RIGHT, 2, 0), 0);
    assert_int_equal(cd_table_add_col(&t, "NAME", CD_TABLE_LEFT, 6, 0), 0);
    assert_int_equal(cd_table_add_col(&t, "ERROR", CD_TABLE_LEFT, 8, 0), 0);
    char longtext[300];
    memset(longtext, 'x', sizeof(longtext) - 1);
    longtext[sizeof(longtext) - 1] = '\0';
    const char *r1[] = {"1", "short", "fine"};
    const char *r2[] = {"12345", longtext, "connect: refused \x1b]0;pwned\x07 \xff\xfe end"};
    const char *r3[] = {"7", "h\xc3\xa9llo w\xc3\xb6rld", longtext};
    assert_int_equal(cd_table_add_row(&t, r1), 0);
    assert_int_equal(cd_table_add_row(&t, r2), 0);
    assert_int_equal(cd_table_add_row(&t, r3), 0);
    assert_int_equal(cd_table_add_col(&t, "LATE", CD_TABLE_LEFT, 1, 0), -EINVAL);
    for (int width = 40; width <= 120; width += 40) {
        struct capture c;
        cap_open(&c);
        cd_table_print(&t, c.f, width);
        char *text = cap_close(&c);
        assert_fits("table", text, width);
        assert_non_null(strstr(text, "\xe2\x80\xa6")); /* cut cells end in an ellipsis */
        assert_null(strstr(text, "\x1b"));
        assert_non_null(strstr(text, "h\xc3\xa9llo"));
        assert_true(strncmp(text, "   ID  NAME", 11) == 0);
        free(text);
    }
    cd_table_free(&t);

    /* Go names keep their end when cut: the method is what people read. */
    cd_table_init(&t);
    cd_table_add_col(&t, "N", CD_TABLE_RIGHT, 1, 0);
    cd_table_add_col(&t, "FUNCTION", CD_TABLE_TAIL, 10, 20);
    const char *r4[] = {"1", "github.com/example/project/pkg.(*Server).handle"};
    cd_table_add_row(&t, r4);
    struct capture c;
    cap_open(&c);
    cd_table_print(&t, c.f, 80);
    char *text = cap_close(&c);
    assert_string_equal(text, "N  FUNCTION\n1  \xe2\x80\xa6kg.(*Server).handle\n");
    free(text);
    cd_table_free(&t);

    char *clean = cd_table_sanitize("a\tb\x7f\xc2\x9b"
                                    "c");
    assert_string_equal(clean, "a b??c");
    free(clean);
    assert_int_equal(cd_table_width("h\xc3\xa9"), 2);
    assert_int_equal(cd_table_term_width(-1), 80);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hung_server),
        cmocka_unit_test(test_leak),
        cmocka_unit_test(test_fleet),
        cmocka_unit_test(test_shared_files),
        cmocka_unit_test(test_shared_pprof),
        cmocka_unit_test(test_pprof_order),
        cmocka_unit_test(test_shared_traces),
        cmocka_unit_test(test_shared_text),
        cmocka_unit_test(test_generic_and_units),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
