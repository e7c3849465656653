/*
 * pprof's numbers against the real thing: for every profile of the shared test data and every
 * sample type, `go tool pprof -top` with nothing trimmed (-nodecount=0 -nodefraction=0) and exact
 * units (-unit=ns / -unit=B, so values print as integers) must show the same total and, for
 * every function, the same flat and cum as our summary (taken with top_n large enough to hold
 * every function). Rows go tool pprof names after the binary ("[app]", "<unknown>": locations
 * without function info, which we name by address instead) are left out, as are names with bytes
 * a line-based comparison cannot carry. The heap text summarizer's scaled totals are checked
 * against go tool pprof's own reading of the same texts.
 */
#include "heaptext.h"
#include "pprof.h"

#include "cdtest.h"
#include "ptest.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gt_row {
    char *name;
    double flat, cum;
};

struct gt_top {
    double total;
    bool has_total;
    struct gt_row *rows;
    size_t n;
};

static void gt_free(struct gt_top *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->rows[i].name);
    free(t->rows);
}

static bool number(const char *s, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (n > 2 && strcmp(buf + n - 2, "ns") == 0)
        buf[n - 2] = '\0';
    else if (buf[n - 1] == 'B')
        buf[n - 1] = '\0';
    char *e = NULL;
    double v = strtod(buf, &e);
    if (e == buf || *e != '\0')
        return false;
    *out = v;
    return true;
}

/* Parses `go tool pprof -top` output. */
static void parse_top(char *out, struct gt_top *t)
{
    memset(t, 0, sizeof(*t));
    bool rows = false;
    for (char *line = out; line != NULL && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        const char *of = strstr(line, "% of ");
        if (!t->has_total && strncmp(line, "Showing nodes accounting for", 28) == 0 && of) {
            of += 5;
            const char *sp = strchr(of, ' ');
            t->has_total = sp && number(of, (size_t)(sp - of), &t->total);
        } else if (strstr(line, "flat%") && strstr(line, "cum%")) {
            rows = true;
        } else if (rows) {
            /* flat flat% sum% cum cum% name */
            const char *p = line;
            const char *tok[5];
            size_t len[5];
            int k = 0;
            for (; k < 5; k++) {
                while (*p == ' ')
                    p++;
                tok[k] = p;
                while (*p && *p != ' ')
                    p++;
                len[k] = (size_t)(p - tok[k]);
                if (len[k] == 0)
                    break;
            }
            while (*p == ' ')
                p++;
            struct gt_row r;
            if (k == 5 && *p && number(tok[0], len[0], &r.flat) && number(tok[3], len[3], &r.cum)) {
                size_t n = strlen(p);
                static const char *const sfx[] = {" (inline)", " (partial-inline)"};
                for (int i = 0; i < 2; i++) {
                    size_t sl = strlen(sfx[i]);
                    if (n > sl && strcmp(p + n - sl, sfx[i]) == 0)
                        n -= sl;
                }
                r.name = strndup(p, n);
                t->rows = realloc(t->rows, (t->n + 1) * sizeof(*t->rows));
                assert_non_null(t->rows);
                t->rows[t->n++] = r;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
}

static bool plain_name(const char *s)
{
    if (*s == '[' || strcmp(s, "<unknown>") == 0 || strlen(s) > 900)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

static bool near(double a, double b)
{
    return fabs(a - b) <= 0.5 + 1e-12 * fabs(b);
}

static char *run_pprof(const char *path, size_t index, const char *unit, const char *extra)
{
    char idx[32], unitf[32];
    snprintf(idx, sizeof(idx), "-sample_index=%zu", index);
    snprintf(unitf, sizeof(unitf), "-unit=%s", unit ? unit : "");
    char *argv[12];
    int a = 0;
    argv[a++] = (char *)cdt_env("CD_GO");
    argv[a++] = "tool";
    argv[a++] = "pprof";
    argv[a++] = "-symbolize=none";
    argv[a++] = "-top";
    argv[a++] = "-nodecount=0";
    argv[a++] = "-nodefraction=0";
    argv[a++] = extra ? (char *)extra : idx;
    if (unit)
        argv[a++] = unitf;
    argv[a++] = (char *)path;
    argv[a] = NULL;
    char *out = NULL;
    int st = cdt_run(argv, &out, 60000);
    if (st != 0)
        fail_msg("go tool pprof %s failed (status %d)", path, st);
    assert_non_null(out);
    return out;
}

/* 0 = compared and equal; fails the test otherwise. Returns rows compared. */
static size_t compare_type(const char *file, const char *path, json_t *summary, size_t k)
{
    json_t *t = json_array_get(json_object_get(summary, "sample_types"), k);
    const char *type = json_string_value(json_object_get(t, "type"));
    const char *unit = json_string_value(json_object_get(t, "unit"));
    const char *flag = strcmp(unit, "nanoseconds") == 0 ? "ns"
                       : strcmp(unit, "bytes") == 0     ? "B"
                                                        : NULL;
    char *out = run_pprof(path, k, flag, NULL);
    struct gt_top top;
    parse_top(out, &top);
    if (!top.has_total)
        fail_msg("%s %s: no total in go tool pprof's output:\n%s", file, type, out);
    double total = (double)json_integer_value(json_object_get(t, "total_abs"));
    if (!near(top.total, total))
        fail_msg("%s %s: total %.0f, go tool pprof says %.0f", file, type, total, top.total);
    /* name -> row maps: profiles have tens of thousands of functions */
    json_t *ours = json_object(), *theirs = json_object();
    const char *tables[] = {"top_flat", "top_cum"};
    for (int k2 = 0; k2 < 2; k2++) {
        size_t i;
        json_t *row;
        json_array_foreach(json_object_get(t, tables[k2]), i, row)
        {
            json_object_set(ours, json_string_value(json_object_get(row, "function")), row);
        }
    }
    size_t compared = 0;
    for (size_t i = 0; i < top.n; i++) {
        const struct gt_row *r = &top.rows[i];
        if (!plain_name(r->name))
            continue;
        json_object_set_new(theirs, r->name, json_true());
        json_t *row = json_object_get(ours, r->name);
        double f = row ? (double)json_integer_value(json_object_get(row, "flat")) : 0;
        double c = row ? (double)json_integer_value(json_object_get(row, "cum")) : 0;
        if (!near(r->flat, f) || !near(r->cum, c))
            fail_msg("%s %s %s: flat %.0f cum %.0f, go tool pprof says flat %.0f cum %.0f", file,
                     type, r->name, f, c, r->flat, r->cum);
        compared++;
    }
    /* and nothing of ours is missing from pprof's list (symbolized rows only) */
    const char *fn;
    json_t *row;
    json_object_foreach(ours, fn, row)
    {
        if (strncmp(fn, "0x", 2) != 0 && plain_name(fn) && json_object_get(theirs, fn) == NULL)
            fail_msg("%s %s: %s is not in go tool pprof's list", file, type, fn);
    }
    json_decref(ours);
    json_decref(theirs);
    gt_free(&top);
    free(out);
    return compared;
}

static void test_against_go_tool_pprof(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    struct ptest_row *rows;
    size_t n;
    assert_int_equal(ptest_manifest(cdt_shared_dir(), &rows, &n), 0);
    struct cd_parse_limits lim;
    cd_parse_limits_default(&lim);
    lim.top_n = 1u << 30; /* every function */
    size_t files = 0, types = 0, compared = 0;
    for (size_t i = 0; i < n; i++) {
        if (ptest_row_is_legacy(&rows[i]) || ptest_row_is_text(&rows[i]))
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/testdata/pprof/%s", cdt_shared_dir(), rows[i].file);
        uint8_t *data;
        size_t len;
        if (cdt_read_file(path, &data, &len) < 0)
            continue;
        struct cd_summary s;
        struct cd_err err;
        cd_summary_init(&s);
        cd_err_init(&err);
        if (cd_pprof_summarize(data, len, &lim, &s, &err) != 0)
            fail_msg("%s: %s", rows[i].file, cd_err_msg(&err));
        size_t nt = json_array_size(json_object_get(s.json, "sample_types"));
        for (size_t k = 0; k < nt; k++) {
            compared += compare_type(rows[i].file, path, s.json, k);
            types++;
        }
        files++;
        cd_summary_free(&s);
        free(data);
    }
    free(rows);
    print_message("%zu profiles, %zu sample types, %zu function rows equal to go tool pprof's\n",
                  files, types, compared);
    assert_true(files >= 30);
}

static void test_heap_text_totals(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    static const char *const files[] = {"go1.19_gen_heap_debug1.txt",
                                        "google-pprof_legacy_gobench.heap"};
    static const char *const types[] = {"inuse_space", "inuse_objects", "alloc_space",
                                        "alloc_objects"};
    for (size_t f = 0; f < 2; f++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/testdata/pprof/%s", cdt_shared_dir(), files[f]);
        uint8_t *data;
        size_t len;
        assert_int_equal(cdt_read_file(path, &data, &len), 0);
        struct cd_summary s;
        struct cd_err err;
        cd_summary_init(&s);
        cd_err_init(&err);
        assert_int_equal(cd_heaptext_summarize(data, len, NULL, &s, &err), 0);
        for (size_t t = 0; t < 4; t++) {
            char idx[64];
            snprintf(idx, sizeof(idx), "-sample_index=%s", types[t]);
            char *out = run_pprof(path, 0, "B", idx);
            struct gt_top top;
            parse_top(out, &top);
            assert_true(top.has_total);
            double ours = ptest_series(&s, types[t]);
            if (!near(top.total, ours))
                fail_msg("%s %s: %.0f, go tool pprof says %.0f", files[f], types[t], ours,
                         top.total);
            gt_free(&top);
            free(out);
        }
        cd_summary_free(&s);
        free(data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_go_tool_pprof),
        cmocka_unit_test(test_heap_text_totals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
