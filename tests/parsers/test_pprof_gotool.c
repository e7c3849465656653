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
        compared += ptest_pprof_matches(rows[i].file, path, &s);
        types += json_array_size(json_object_get(s.json, "sample_types"));
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
            char *out = ptest_run_pprof(path, 0, "B", idx);
            struct ptest_top top;
            ptest_parse_top(out, &top);
            assert_true(top.has_total);
            double ours = ptest_series(&s, types[t]);
            if (!ptest_near(top.total, ours))
                fail_msg("%s %s: %.0f, go tool pprof says %.0f", files[f], types[t], ours,
                         top.total);
            ptest_top_free(&top);
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
