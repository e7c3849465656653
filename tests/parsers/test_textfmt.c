/*
 * Unit tests of the small text formats: gops memstats / stats / version replies of every agent
 * era, Go duration and time strings, heap?debug=1 text, and the textscan helpers underneath
 * (frame comments, UTF-8 sanitizing, number parsing).
 */
#include "gopsfmt.h"
#include "heaptext.h"
#include "textscan.h"

#include "cdtest.h"
#include "ptest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int gops(enum cd_format fmt, const char *text, size_t len, struct cd_summary *s,
                struct cd_err *err)
{
    cd_summary_init(s);
    cd_err_init(err);
    return cd_gopsfmt_summarize(fmt, (const uint8_t *)text, len, NULL, s, err);
}

static char *seed(const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/parsers/seeds/gops/%s", cdt_env("CD_SOURCE_DIR"), name);
    uint8_t *data;
    assert_int_equal(cdt_read_file(path, &data, len), 0);
    return (char *)data;
}

static int64_t ms_int(const struct cd_summary *s, const char *key)
{
    json_t *v = json_object_get(json_object_get(s->json, "memstats"), key);
    if (!json_is_integer(v))
        fail_msg("memstats.%s is missing", key);
    return json_integer_value(v);
}

static void test_memstats_eras(void **state)
{
    (void)state;
    static const struct {
        const char *file, *era;
        int64_t heap_alloc, mspan_inuse, pause_total, pause_last, next_gc;
    } want[] = {
        {"memstats_head.txt", "head", 1269824, 55200, 1402137, 61233, 4194304},
        {"memstats_v0328.txt", "v0.3.3-v0.3.28", 812, 2256, 0, 0, 4194304},
        {"memstats_v032.txt", "v0.3.2-or-older", 2621440, -1, 3723500000000, -1, 4781506},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        size_t len;
        char *text = seed(want[i].file, &len);
        assert_int_equal(cd_gopsfmt_sniff((const uint8_t *)text, len), CD_FORMAT_GOPS_MEMSTATS);
        struct cd_summary s;
        struct cd_err err;
        assert_int_equal(gops(CD_FORMAT_UNKNOWN, text, len, &s, &err), 0);
        assert_int_equal(s.format, CD_FORMAT_GOPS_MEMSTATS);
        assert_string_equal(json_string_value(json_object_get(s.json, "agent_version")),
                            want[i].era);
        assert_int_equal(ms_int(&s, "heap_alloc"), want[i].heap_alloc);
        assert_true(ptest_series(&s, "heap_alloc") == (double)want[i].heap_alloc);
        assert_int_equal(ms_int(&s, "next_gc"), want[i].next_gc);
        assert_int_equal(ms_int(&s, "gc_pause_total_ns"), want[i].pause_total);
        if (want[i].mspan_inuse >= 0)
            assert_int_equal(ms_int(&s, "mspan_inuse"), want[i].mspan_inuse);
        else
            assert_false(ptest_has_series(&s, "mspan_inuse"));
        if (want[i].pause_last >= 0)
            assert_int_equal(ms_int(&s, "gc_pause_last_ns"), want[i].pause_last);
        else
            assert_false(ptest_has_series(&s, "gc_pause_last_ns"));
        assert_int_equal(json_array_size(json_object_get(s.json, "unknown_keys")), 0);
        assert_int_equal(json_integer_value(json_object_get(s.json, "unparsed_lines")), 0);
        assert_true(json_is_true(json_object_get(s.json, "enable_gc")));
        cd_summary_free(&s);
        free(text);
    }
    /* HEAD: the last GC time, in the target's zone */
    size_t len;
    char *text = seed("memstats_head.txt", &len);
    struct cd_summary s;
    struct cd_err err;
    assert_int_equal(gops(CD_FORMAT_GOPS_MEMSTATS, text, len, &s, &err), 0);
    assert_true(json_integer_value(json_object_get(s.json, "last_gc_unix_ns")) ==
                1795293005120034511LL);
    assert_true(json_real_value(json_object_get(json_object_get(s.json, "memstats"),
                                                "gc_cpu_fraction")) == 2.4316538212498953e-05);
    assert_true(ptest_series(&s, "num_gc") == 24);
    cd_summary_free(&s);
    free(text);
    text = seed("memstats_v0328.txt", &len);
    assert_int_equal(gops(CD_FORMAT_GOPS_MEMSTATS, text, len, &s, &err), 0);
    assert_true(json_is_null(json_object_get(s.json, "last_gc"))); /* "-": no GC yet */
    cd_summary_free(&s);
    free(text);
}

static void test_memstats_odd(void **state)
{
    (void)state;
    const char *text = "alloc: 1.50MB\n"
                       "heap-alloc: 512 bytes\n"
                       "some-new-key: 42\n"
                       "no colon here\n"
                       "frees: lots\n"
                       "gc-pause-total: 79.189\xc2\xb5s\n"
                       "last-gc: yesterday\n";
    struct cd_summary s;
    struct cd_err err;
    assert_int_equal(gops(CD_FORMAT_GOPS_MEMSTATS, text, strlen(text), &s, &err), 0);
    assert_int_equal(ms_int(&s, "alloc"), 1572864);
    assert_int_equal(ms_int(&s, "heap_alloc"), 512);
    assert_int_equal(ms_int(&s, "gc_pause_total_ns"), 79189);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(s.json, "unknown_keys"), 0)),
        "some-new-key");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(s.json, "approximate_keys"), 0)), "alloc");
    assert_int_equal(json_integer_value(json_object_get(s.json, "unparsed_lines")), 2);
    assert_string_equal(json_string_value(json_object_get(s.json, "last_gc")), "yesterday");
    assert_true(json_is_null(json_object_get(s.json, "last_gc_unix_ns")));
    cd_summary_free(&s);
    /* nothing known */
    assert_int_equal(gops(CD_FORMAT_GOPS_MEMSTATS, "a: b\n", 5, &s, &err), -EBADMSG);
    assert_non_null(strstr(cd_err_msg(&err), "gops memstats: no known key"));
    /* empty reply: what an unknown command gets */
    assert_int_equal(gops(CD_FORMAT_UNKNOWN, "", 0, &s, &err), -EINVAL);
    assert_non_null(strstr(cd_err_msg(&err), "empty reply"));
    assert_int_equal(gops(CD_FORMAT_TRACE, "x", 1, &s, &err), -EBADMSG);
}

static void test_stats_version(void **state)
{
    (void)state;
    size_t len;
    char *text = seed("stats.txt", &len);
    assert_int_equal(cd_gopsfmt_sniff((const uint8_t *)text, len), CD_FORMAT_GOPS_STATS);
    struct cd_summary s;
    struct cd_err err;
    assert_int_equal(gops(CD_FORMAT_UNKNOWN, text, len, &s, &err), 0);
    assert_int_equal(s.format, CD_FORMAT_GOPS_STATS);
    assert_true(ptest_series(&s, "goroutines") == 17);
    assert_true(ptest_series(&s, "threads") == 9);
    assert_true(ptest_series(&s, "gomaxprocs") == 4);
    assert_true(ptest_series(&s, "num_cpu") == 8);
    cd_summary_free(&s);
    free(text);

    static const struct {
        const char *text;
        int64_t major, minor, patch; /* -1 = null */
        bool devel;
    } versions[] = {
        {"go1.19.8\n", 1, 19, 8, false},
        {"go1.22.5", 1, 22, 5, false},
        {"go1.21rc2\n", 1, 21, -1, false},
        {"go1.22.0 X:boringcrypto\n", 1, 22, 0, false},
        {"devel go1.23-8e6f1a6 Tue Jan 2 10:00:00 2024 +0000 linux/amd64\n", 1, 23, -1, true},
        {"devel +8e6f1a6 Tue Jan 2 10:00:00 2024\n", -1, -1, -1, true},
    };
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        const char *t = versions[i].text;
        assert_int_equal(cd_gopsfmt_sniff((const uint8_t *)t, strlen(t)), CD_FORMAT_GOPS_VERSION);
        assert_int_equal(gops(CD_FORMAT_UNKNOWN, t, strlen(t), &s, &err), 0);
        json_t *j = s.json;
        const char *keys[] = {"major", "minor", "patch"};
        int64_t vals[] = {versions[i].major, versions[i].minor, versions[i].patch};
        for (int k = 0; k < 3; k++) {
            json_t *v = json_object_get(j, keys[k]);
            if (vals[k] < 0)
                assert_true(json_is_null(v));
            else
                assert_int_equal(json_integer_value(v), vals[k]);
        }
        assert_int_equal(json_is_true(json_object_get(j, "devel")), versions[i].devel);
        if (versions[i].minor >= 0)
            assert_true(ptest_series(&s, "go_minor") == (double)versions[i].minor);
        else
            assert_int_equal(s.n_series, 0);
        cd_summary_free(&s);
    }
    assert_int_equal(cd_gopsfmt_sniff((const uint8_t *)"go1.19\ngo1.20\n", 14), CD_FORMAT_UNKNOWN);
    assert_int_equal(cd_gopsfmt_sniff((const uint8_t *)"goroutine 1 [running]:\n", 23),
                     CD_FORMAT_UNKNOWN);
    assert_int_equal(gops(CD_FORMAT_GOPS_STATS, "x\n", 2, &s, &err), -EBADMSG);
    assert_int_equal(gops(CD_FORMAT_GOPS_VERSION, "\n\n", 2, &s, &err), -EBADMSG);
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        int64_t ns;
    } cases[] = {
        {"0", 0, 0},
        {"0s", 0, 0},
        {"500ns", 0, 500},
        {"1.5ms", 0, 1500000},
        {"79.189\xc2\xb5s", 0, 79189},
        {"79.189\xce\xbcs", 0, 79189},
        {"79.189us", 0, 79189},
        {"1h2m3.5s", 0, 3723500000000},
        {"2562047h47m16.854775807s", 0, INT64_MAX},
        {"-2562047h47m16.854775808s", 0, INT64_MIN},
        {"2562047h47m16.854775808s", -ERANGE, 0},
        {"-1.5s", 0, -1500000000},
        {".5s", 0, 500000000},
        {"1.000000000000000000001s", 0, 1000000000},
        {"3m0.000000001s", 0, 180000000001},
        {"", -EINVAL, 0},
        {"1", -EINVAL, 0},
        {"s", -EINVAL, 0},
        {"1x", -EINVAL, 0},
        {"1.s", 0, 1000000000},
        {"99999999999999999999s", -ERANGE, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ns = 12345;
        int rc = cd_gopsfmt_parse_duration(cases[i].s, strlen(cases[i].s), &ns);
        if (rc != cases[i].rc || (rc == 0 && ns != cases[i].ns))
            fail_msg("'%s': rc %d ns %lld, want %d %lld", cases[i].s, rc, (long long)ns,
                     cases[i].rc, (long long)cases[i].ns);
    }
    static const struct {
        const char *s;
        int rc;
        int64_t ns;
    } times[] = {
        {"2026-11-21 20:46:26.439985302 +0000 UTC", 0, 1795293986439985302},
        {"2017-01-20 10:11:12.5 -0800 PST", 0, 1484935872500000000},
        {"2017-01-20 10:11:12 +0530 IST m=+0.001", 0, 1484887272000000000},
        {"1969-12-31 23:59:59 +0000 UTC", 0, -1000000000},
        {"2017-13-20 10:11:12 +0000 UTC", -EINVAL, 0},
        {"2017-01-20T10:11:12Z", -EINVAL, 0},
        {"-", -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        int64_t ns = 0;
        int rc = cd_gopsfmt_parse_time(times[i].s, strlen(times[i].s), &ns);
        if (rc != times[i].rc || (rc == 0 && ns != times[i].ns))
            fail_msg("'%s': rc %d ns %lld, want %d %lld", times[i].s, rc, (long long)ns,
                     times[i].rc, (long long)times[i].ns);
    }
}

static void test_heaptext(void **state)
{
    (void)state;
    const char *text = "heap profile: 3: 3072 [10: 20480] @ heap/1048576\n"
                       "2: 2048 [4: 4096] @ 0x1 0x2\n"
                       "#\t0x1\tmain.alloc+0x1\t\t/src/a.go:3\n"
                       "#\t0x2\tmain.main+0x2\t\t/src/a.go:9\n"
                       "\n"
                       "1: 1024 [6: 16384] @ 0x3\n"
                       "\n"
                       "0: 0 [0: 0] @ 0x4\n"
                       "\n"
                       "# runtime.MemStats\n"
                       "# Alloc = 123\n"
                       "# Stack = 65536 / 98304\n"
                       "# NumGC = 2\n"
                       "# PauseNs = [100 200 0 0]\n"
                       "# GCCPUFraction = 0.5\n"
                       "# DebugGC = false\n";
    assert_true(cd_heaptext_sniff((const uint8_t *)text, strlen(text)));
    struct cd_summary s;
    struct cd_err err;
    cd_summary_init(&s);
    cd_err_init(&err);
    assert_int_equal(cd_heaptext_summarize((const uint8_t *)text, strlen(text), NULL, &s, &err), 0);
    assert_int_equal(s.format, CD_FORMAT_HEAP_TEXT);
    json_t *j = s.json;
    assert_int_equal(json_integer_value(json_object_get(j, "rate")), 524288);
    assert_int_equal(json_integer_value(json_object_get(j, "records")), 3);
    json_t *hdr = json_object_get(j, "header");
    assert_int_equal(json_integer_value(json_object_get(hdr, "alloc_space")), 20480);
    /* avg 1024 bytes at rate 512 KiB: scale 1/(1-exp(-1024/524288)) = 512.5 */
    json_t *tot = json_object_get(j, "totals");
    assert_int_equal(json_integer_value(json_object_get(tot, "inuse_space")), 1049600 + 524800);
    assert_true(ptest_series(&s, "inuse_space") == 1049600 + 524800);
    json_t *top = json_object_get(j, "top_records");
    assert_int_equal(json_array_size(top), 3);
    json_t *f0 = json_array_get(json_object_get(json_array_get(top, 0), "frames"), 0);
    assert_string_equal(json_string_value(json_object_get(f0, "function")), "main.alloc");
    assert_int_equal(json_integer_value(json_object_get(f0, "line")), 3);
    json_t *f1 = json_array_get(json_object_get(json_array_get(top, 1), "frames"), 0);
    assert_string_equal(json_string_value(json_object_get(f1, "function")), "0x3");
    json_t *ms = json_object_get(j, "memstats");
    assert_int_equal(json_integer_value(json_object_get(ms, "alloc")), 123);
    assert_int_equal(json_integer_value(json_object_get(ms, "stack_sys")), 98304);
    assert_int_equal(json_integer_value(json_object_get(ms, "gc_pause_last_ns")), 200);
    assert_true(ptest_series(&s, "gc_cpu_fraction") == 0.5);
    cd_summary_free(&s);
    cd_err_init(&err);
    assert_int_equal(cd_heaptext_summarize((const uint8_t *)"heap profile: x", 15, NULL, &s, &err),
                     -EBADMSG);
    assert_false(cd_heaptext_sniff((const uint8_t *)"goroutine 1 [x]:", 16));
}

static void test_textscan(void **state)
{
    (void)state;
    struct cd_textscan_frame f;
    const char *l = "#\t0x6aacec\tmain.startWorkload.func3+0x2c\t\tprofgen/main.go:166";
    assert_int_equal(cd_textscan_frame(l, strlen(l), &f), 0);
    assert_true(f.pc == 0x6aacec);
    assert_int_equal(f.func_len, strlen("main.startWorkload.func3"));
    assert_memory_equal(f.func, "main.startWorkload.func3", f.func_len);
    assert_memory_equal(f.file, "profgen/main.go", f.file_len);
    assert_int_equal(f.line, 166);
    l = "#\t0x1\tC:/go/x.go+0x1\tC:/go/src/x.go:12";
    assert_int_equal(cd_textscan_frame(l, strlen(l), &f), 0);
    assert_memory_equal(f.file, "C:/go/src/x.go", f.file_len);
    assert_int_equal(f.line, 12);
    assert_int_equal(cd_textscan_frame("#\t0x0", 5, &f), 0);
    assert_int_equal(f.func_len, 0);
    assert_int_equal(cd_textscan_frame("# labels: {}", 12, &f), -EINVAL);
    assert_int_equal(cd_textscan_frame("#\tzz", 4, &f), -EINVAL);

    json_t *j = cd_textscan_json_str("ok \xff\xfe caf\xc3\xa9 \xed\xa0\x80 \x00!", 18);
    assert_string_equal(json_string_value(j),
                        "ok \xef\xbf\xbd\xef\xbf\xbd caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf"
                        "\xbd \xef\xbf\xbd!");
    json_decref(j);
    char big[3000];
    memset(big, 'a', sizeof(big));
    j = cd_textscan_json_str(big, sizeof(big));
    assert_int_equal(strlen(json_string_value(j)), CD_TEXTSCAN_JSON_STR_MAX + 3);
    json_decref(j);

    uint64_t u;
    int64_t i;
    assert_int_equal(cd_textscan_u64("18446744073709551615", 20, &u), 0);
    assert_int_equal(cd_textscan_u64("18446744073709551616", 20, &u), -ERANGE);
    assert_int_equal(cd_textscan_i64("-9223372036854775808", 20, &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(cd_textscan_i64("-", 1, &i), -EINVAL);
    assert_int_equal(cd_textscan_u64("", 0, &u), -EINVAL);
    int64_t acc = INT64_MAX - 1;
    cd_textscan_add_sat(&acc, 5);
    assert_true(acc == INT64_MAX);

    struct cd_textscan sc;
    cd_textscan_init(&sc, "a\r\nb\n\nc", 7);
    const char *line;
    size_t n;
    assert_true(cd_textscan_line(&sc, &line, &n) && n == 1 && line[0] == 'a');
    assert_true(cd_textscan_line(&sc, &line, &n) && n == 1 && line[0] == 'b');
    assert_true(cd_textscan_line(&sc, &line, &n) && n == 0);
    assert_true(cd_textscan_line(&sc, &line, &n) && n == 1 && line[0] == 'c');
    assert_false(cd_textscan_line(&sc, &line, &n));
    assert_int_equal(sc.line_no, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memstats_eras), cmocka_unit_test(test_memstats_odd),
        cmocka_unit_test(test_stats_version), cmocka_unit_test(test_durations),
        cmocka_unit_test(test_heaptext),      cmocka_unit_test(test_textscan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
