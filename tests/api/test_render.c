/* collectorctl's renderer and tables: goroutine findings, pprof top tables in several summary
 * shapes, unit formatting, 80-column fitting, and no terminal escapes from outsider text. */
#include "ctl/render.h"
#include "ctl/table.h"
#include "testbackend.h"

#include "cdtest.h"

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
static void assert_fits(const char *text, int width)
{
    const char *p = text;
    while (*p != '\0') {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        char *line = strndup(p, len);
        if ((int)cd_table_width(line) > width)
            fail_msg("line wider than %d: '%s'", width, line);
        for (size_t i = 0; i < len; i++) {
            if ((unsigned char)line[i] < 0x20)
                fail_msg("control character in '%s'", line);
        }
        free(line);
        p = eol != NULL ? eol + 1 : p + len;
    }
}

static void test_goroutine_finding(void **state)
{
    (void)state;
    json_t *s = tb_goroutine_summary();
    json_t *findings = cd_render_goroutine_findings(s);
    assert_int_equal(json_array_size(findings), 1); /* the IO wait group is healthy */
    assert_string_equal(json_string_value(json_array_get(findings, 0)),
                        "8 goroutines blocked in sync.(*Mutex).Lock called from "
                        "main.deadlockWaiter (up to 3 minutes)");
    json_decref(findings);

    struct cd_render_opts o;
    cd_render_opts_default(&o);
    struct capture c;
    cap_open(&c);
    cd_render_summary(c.f, s, &o);
    char *text = cap_close(&c);
    assert_non_null(strstr(text, "12 goroutines: 8 sync.Mutex.Lock, 3 IO wait, 1 running"));
    assert_non_null(strstr(text, "FINDINGS\n  ! 8 goroutines blocked in sync.(*Mutex).Lock called "
                                 "from main.deadlockWaiter\n    (up to 3 minutes)\n"));
    assert_non_null(strstr(text, "BLOCKED IN"));
    assert_non_null(strstr(text, "net/http.(*conn).serve"));
    assert_fits(text, 80);
    free(text);
    json_decref(s);

    /* The parser's own findings win, as text or as objects. */
    s = json_pack("{s:s, s:[s, {s:s}, {s:i, s:s, s:i, s:[s, s]}]}", "format", "goroutine_text",
                  "findings", "leak: 10000 goroutines in main.worker", "message", "second one",
                  "count", 2, "state", "chan send", "wait_minutes", 12, "frames", "main.produce",
                  "main.main");
    findings = cd_render_goroutine_findings(s);
    assert_int_equal(json_array_size(findings), 3);
    assert_string_equal(json_string_value(json_array_get(findings, 1)), "second one");
    assert_string_equal(json_string_value(json_array_get(findings, 2)),
                        "2 goroutines blocked in main.produce called from main.main (up to 12 "
                        "minutes)");
    json_decref(findings);
    json_decref(s);

    /* Groups waiting under a minute, or healthy states, are no finding. */
    json_t *g = json_pack("{s:i, s:s, s:i}", "count", 50, "state", "semacquire", "wait_minutes", 0);
    assert_null(cd_render_group_finding(g));
    json_decref(g);
    g = json_pack("{s:i, s:s, s:i}", "count", 50, "state", "select", "wait_minutes", 90);
    assert_null(cd_render_group_finding(g));
    json_decref(g);
    g = json_pack("{s:i, s:s, s:[{s:s}]}", "count", 1, "state", "chan receive (nil chan)", "stack",
                  "function", "github.com/x/y.(*T).run");
    char *msg = cd_render_group_finding(g);
    assert_string_equal(msg, "1 goroutine blocked in github.com/x/y.(*T).run");
    free(msg);
    json_decref(g);
}

static void test_pprof_tables(void **state)
{
    (void)state;
    struct cd_render_opts o;
    cd_render_opts_default(&o);
    json_t *s = tb_pprof_summary();
    struct capture c;
    cap_open(&c);
    assert_int_equal(cd_render_top(c.f, s, &o), 1);
    char *text = cap_close(&c);
    assert_non_null(strstr(text, "cpu (nanoseconds): total 2.5s; top 3 of 3 functions by flat"));
    assert_non_null(strstr(text, " FLAT   FLAT%    SUM%    CUM     CUM%  FUNCTION\n"));
    assert_non_null(strstr(text, " 1.5s  60.00%  60.00%     2s   80.00%  main.hot\n"));
    assert_non_null(strstr(text, "    0   0.00%  80.00%   2.5s  100.00%  main.main\n"));
    assert_true(strstr(text, "main.hot") < strstr(text, "runtime.mallocgc"));
    assert_fits(text, 80);
    free(text);

    o.cum = true;
    cap_open(&c);
    cd_render_top(c.f, s, &o);
    text = cap_close(&c);
    assert_true(strstr(text, "main.main") < strstr(text, "main.hot"));
    free(text);
    o.sample_type = "alloc_space";
    cap_open(&c);
    assert_int_equal(cd_render_top(c.f, s, &o), 0);
    text = cap_close(&c);
    assert_non_null(strstr(text, "no sample type 'alloc_space' here; there are: cpu"));
    free(text);
    json_decref(s);

    /* Another shape: tables keyed by sample type, units from sample_types, no totals. */
    s = json_pack("{s:[{s:s, s:s}], s:{s:[{s:s, s:i, s:i}, {s:s, s:i, s:i}]}}", "sample_types",
                  "type", "inuse_space", "unit", "bytes", "top", "inuse_space", "name",
                  "bytes.growSlice", "flat", 3 << 20, "cum", 3 << 20, "name", "main.load", "flat",
                  1 << 20, "cum", 4 << 20);
    o.sample_type = NULL;
    o.cum = false;
    o.top_n = 1;
    cap_open(&c);
    cd_render_summary(c.f, s, &o);
    text = cap_close(&c);
    assert_non_null(strstr(text, "inuse_space (bytes): total 4.0 MiB (of the rows listed); top 1 "
                                 "of 2"));
    assert_non_null(strstr(text, "3.0 MiB"));
    assert_null(strstr(text, "main.load"));
    free(text);
    json_decref(s);
}

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

    /* Unknown members print as they are; nested objects indent; big arrays are cut. */
    json_t *big = json_array();
    for (int i = 0; i < 300; i++)
        json_array_append_new(big, json_integer(i));
    json_t *s = json_pack("{s:s, s:I, s:{s:i, s:I}, s:o, s:n}", "format", "trace", "duration_ns",
                          (json_int_t)2000000000, "gc", "count", 3, "pause_total_ns",
                          (json_int_t)4500000, "histogram", big, "note");
    struct cd_render_opts o;
    cd_render_opts_default(&o);
    struct capture c;
    cap_open(&c);
    cd_render_summary(c.f, s, &o);
    char *text = cap_close(&c);
    assert_non_null(strstr(text, "duration_ns: 2s\n"));
    assert_non_null(strstr(text, "gc:\n  count: 3\n  pause_total_ns: 4.5ms\n"));
    assert_non_null(strstr(text, "more bytes; -o json shows all"));
    assert_non_null(strstr(text, "note: -\n"));
    free(text);
    json_decref(s);
    cap_open(&c);
    cd_render_summary(c.f, NULL, &o);
    text = cap_close(&c);
    assert_non_null(strstr(text, "no summary"));
    free(text);
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
        assert_fits(text, width);
        assert_non_null(strstr(text, "\xe2\x80\xa6")); /* cut cells end in an ellipsis */
        assert_null(strstr(text, "\x1b"));
        assert_non_null(strstr(text, "h\xc3\xa9llo"));
        assert_true(strncmp(text, "   ID  NAME", 11) == 0);
        free(text);
    }
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
        cmocka_unit_test(test_goroutine_finding),
        cmocka_unit_test(test_pprof_tables),
        cmocka_unit_test(test_generic_and_units),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
