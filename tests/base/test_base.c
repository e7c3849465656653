/* Unit tests of the base layer: err, buf, str, units, hash, kind, log complaints, snapshot. */
#include "buf.h"
#include "err.h"
#include "hash.h"
#include "kind.h"
#include "log.h"
#include "snapshot.h"
#include "str.h"
#include "units.h"

#include "cdtest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_err_first_wins(void **state)
{
    (void)state;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_err_set(&err, -EINVAL, "bad %s", "thing"), -EINVAL);
    assert_int_equal(cd_err_set(&err, -EIO, "later"), -EIO);
    assert_int_equal(err.code, -EINVAL);
    cd_err_prefix(&err, "config '%s'", "/x.yaml");
    assert_string_equal(cd_err_msg(&err), "config '/x.yaml': bad thing");
    struct cd_err bare;
    cd_err_init(&bare);
    cd_err_set(&bare, -ENOENT, "%s", "");
    assert_string_equal(cd_err_msg(&bare), strerror(ENOENT));
    assert_int_equal(cd_err_set(NULL, -EPERM, "ignored"), -EPERM);
}

static void test_buf_limit(void **state)
{
    (void)state;
    struct cd_buf b;
    cd_buf_init(&b, 10);
    assert_int_equal(cd_buf_append(&b, "12345", 5), 0);
    assert_int_equal(cd_buf_append(&b, "67890", 5), 0);
    assert_int_equal(cd_buf_append(&b, "x", 1), -EFBIG);
    assert_int_equal(b.len, 10);
    assert_int_equal(cd_buf_terminate(&b), 0);
    assert_string_equal((char *)b.data, "1234567890");
    size_t len = 0;
    uint8_t *p = cd_buf_steal(&b, &len);
    assert_int_equal(len, 10);
    assert_null(b.data);
    free(p);
    cd_buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(cd_buf_printf(&b, "%d,", i), 0);
    assert_true(b.len > 1000);
    cd_buf_free(&b);
}

static void test_str_numbers(void **state)
{
    (void)state;
    int64_t i;
    uint64_t u;
    int n;
    double d;
    assert_int_equal(cd_str_to_i64("-42", &i), 0);
    assert_int_equal(i, -42);
    assert_int_equal(cd_str_to_i64("42x", &i), -EINVAL);
    assert_int_equal(cd_str_to_i64("", &i), -EINVAL);
    assert_int_equal(cd_str_to_i64(" 1", &i), -EINVAL);
    assert_int_equal(cd_str_to_i64("99999999999999999999", &i), -ERANGE);
    assert_int_equal(cd_str_to_u64("-1", &u), -EINVAL);
    assert_int_equal(cd_str_to_u64("18446744073709551615", &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(cd_str_to_int("70000", 0, 65535, &n), -ERANGE);
    assert_int_equal(cd_str_to_int("6060", 0, 65535, &n), 0);
    assert_int_equal(n, 6060);
    assert_int_equal(cd_str_to_double("1.5e3", &d), 0);
    assert_true(d == 1500.0);
    assert_int_equal(cd_str_to_double("nan", &d), -ERANGE);
    char small[4];
    assert_int_equal(cd_str_copy(small, "abcdef", sizeof(small)), 6);
    assert_string_equal(small, "abc");
    assert_true(cd_str_has_prefix("gops://x", "gops://"));
    assert_true(cd_str_has_suffix("a.json", ".json"));
    assert_true(cd_str_eq(NULL, NULL));
    assert_false(cd_str_eq("a", NULL));
    char *s = cd_str_printf("%s-%d", "x", 7);
    assert_string_equal(s, "x-7");
    assert_int_equal(cd_str_replace(&s, "y"), 0);
    assert_string_equal(s, "y");
    free(s);
}

static void test_units_duration(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(cd_units_parse_duration("30s", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(cd_units_parse_duration("1h30m", &ms), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(cd_units_parse_duration("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(cd_units_parse_duration("14d", &ms), 0);
    assert_int_equal(ms, 14LL * 86400000);
    assert_int_equal(cd_units_parse_duration("0", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(cd_units_parse_duration("30", &ms), -EINVAL);
    assert_int_equal(cd_units_parse_duration("30m1h", &ms), -EINVAL);
    assert_int_equal(cd_units_parse_duration("1.5s", &ms), -EINVAL);
    assert_int_equal(cd_units_parse_duration("-1s", &ms), -EINVAL);
    assert_int_equal(cd_units_parse_duration("99999999999999y", &ms), -ERANGE);
    char buf[32];
    assert_string_equal(cd_units_fmt_duration(buf, sizeof(buf), 5400000), "1h30m");
    assert_string_equal(cd_units_fmt_duration(buf, sizeof(buf), 250), "250ms");
    assert_string_equal(cd_units_fmt_duration(buf, sizeof(buf), 1500), "1.5s");
    assert_string_equal(cd_units_fmt_duration(buf, sizeof(buf), 14LL * 86400000), "14d");
    assert_string_equal(cd_units_fmt_ago(buf, sizeof(buf), 1000, 1000 + 180000), "3m ago");
    assert_string_equal(cd_units_fmt_ago(buf, sizeof(buf), 1000, 2000), "just now");
}

static void test_units_size(void **state)
{
    (void)state;
    uint64_t b;
    assert_int_equal(cd_units_parse_size("64MiB", &b), 0);
    assert_true(b == 64ULL << 20);
    assert_int_equal(cd_units_parse_size("64MB", &b), 0);
    assert_true(b == 64ULL << 20);
    assert_int_equal(cd_units_parse_size("20GiB", &b), 0);
    assert_true(b == 20ULL << 30);
    assert_int_equal(cd_units_parse_size("1.5K", &b), 0);
    assert_true(b == 1536);
    assert_int_equal(cd_units_parse_size("512", &b), 0);
    assert_true(b == 512);
    assert_int_equal(cd_units_parse_size("12XB", &b), -EINVAL);
    assert_int_equal(cd_units_parse_size("MiB", &b), -EINVAL);
    assert_int_equal(cd_units_parse_size("99999999999PiB", &b), -ERANGE);
    char buf[32];
    assert_string_equal(cd_units_fmt_size(buf, sizeof(buf), 512), "512 B");
    assert_string_equal(cd_units_fmt_size(buf, sizeof(buf), 1536), "1.5 KiB");
    assert_string_equal(cd_units_fmt_size(buf, sizeof(buf), 20ULL << 30), "20 GiB");
}

static void test_units_time(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(cd_units_parse_time("2026-11-21T21:04:35Z", 0, &t), 0);
    assert_true(t == 1795295075000LL);
    assert_int_equal(cd_units_parse_time("2026-11-21T22:04:35.5+01:00", 0, &t), 0);
    assert_true(t == 1795295075500LL);
    assert_int_equal(cd_units_parse_time("15m", 1000000, &t), 0);
    assert_true(t == 100000);
    assert_int_equal(cd_units_parse_time("-15m", 1000000, &t), 0);
    assert_true(t == 100000);
    assert_int_equal(cd_units_parse_time("1795295075", 0, &t), 0);
    assert_true(t == 1795295075000LL);
    assert_int_equal(cd_units_parse_time("1795295075123", 0, &t), 0);
    assert_true(t == 1795295075123LL);
    assert_int_equal(cd_units_parse_time("yesterday", 0, &t), -EINVAL);
    char buf[40];
    assert_string_equal(cd_units_fmt_rfc3339(buf, sizeof(buf), 1795295075123LL),
                        "2026-11-21T21:04:35.123Z");
}

static void test_hash(void **state)
{
    (void)state;
    uint8_t h[CD_HASH_SHA256_LEN];
    char hex[CD_HASH_SHA256_HEX];
    assert_int_equal(cd_hash_sha256("abc", 3, h), 0);
    cd_hash_hex(h, sizeof(h), hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(cd_hash_fnv1a64_str("") == 14695981039346656037ULL);
    assert_true(cd_hash_fnv1a64_str("a") != cd_hash_fnv1a64_str("b"));
}

static void test_kind(void **state)
{
    (void)state;
    assert_string_equal(cd_kind_lookup("process_cpu")->name, "cpu");
    assert_string_equal(cd_kind_lookup("memory")->name, "allocs");
    assert_null(cd_kind_lookup("fgprof"));
    assert_string_equal(cd_kind_canonical("fgprof"), "fgprof");
    assert_int_equal(cd_kind_lookup("trace")->exclusive, CD_EXCL_TRACE);
    assert_int_equal(cd_kind_lookup("goroutine_dump")->gops_cmd, CD_GOPS_STACK);
    assert_false(cd_kind_lookup("goroutine_dump")->http_default_enabled);
    assert_true(cd_kind_name_valid("fgprof"));
    assert_false(cd_kind_name_valid("../etc"));
    assert_false(cd_kind_name_valid(""));
    int n = 0;
    const struct cd_kind_info *all = cd_kind_all(&n);
    assert_int_equal(n, 12);
    for (int i = 0; i < n; i++)
        assert_ptr_equal(cd_kind_lookup(all[i].name), &all[i]);
}

static void test_log_complaints(void **state)
{
    (void)state;
    char path[] = "/tmp/cdtest-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    struct cd_log log;
    cd_log_init(&log, CD_LOG_INFO, fd, CD_LOG_STYLE_JOURNAL);
    struct cd_complaint c = {0};
    for (int i = 0; i < 5; i++)
        cd_log_complain(&log, &c, CD_LOG_WARNING, "target a", "connection refused");
    cd_log_recovered(&log, &c, "target a");
    cd_log_recovered(&log, &c, "target a");
    cd_log_debug(&log, "not shown");
    cd_log_info(&log, "two\nlines");
    cd_log_destroy(&log);
    close(fd);
    uint8_t *data;
    size_t len;
    assert_int_equal(cdt_read_file(path, &data, &len), 0);
    unlink(path);
    assert_string_equal((char *)data, "<4>target a: connection refused\n"
                                      "<5>target a: recovered after 5 failed attempts\n"
                                      "<6>two lines\n");
    free(data);
}

static void test_snapshot_summary(void **state)
{
    (void)state;
    struct cd_snapshot *s = cd_snapshot_new();
    assert_non_null(s);
    s->kind = cd_str_dup("heap");
    struct cd_summary sum;
    cd_summary_init(&sum);
    sum.format = CD_FORMAT_PPROF;
    sum.json = json_pack("{s:i}", "samples", 3);
    assert_int_equal(cd_summary_add_series(&sum, "inuse_space", 1024), 0);
    assert_int_equal(cd_snapshot_take_summary(s, &sum), 0);
    assert_null(sum.json);
    assert_string_equal(s->summary_json, "{\"samples\":3}");
    assert_int_equal(s->n_series, 1);
    assert_string_equal(s->series[0].name, "heap.inuse_space");
    enum cd_snap_status st;
    assert_int_equal(cd_snap_status_parse("too_large", &st), 0);
    assert_int_equal(st, CD_SNAP_TOO_LARGE);
    assert_string_equal(cd_snap_status_name(CD_SNAP_BUSY), "busy");
    cd_snapshot_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_first_wins), cmocka_unit_test(test_buf_limit),
        cmocka_unit_test(test_str_numbers),    cmocka_unit_test(test_units_duration),
        cmocka_unit_test(test_units_size),     cmocka_unit_test(test_units_time),
        cmocka_unit_test(test_hash),           cmocka_unit_test(test_kind),
        cmocka_unit_test(test_log_complaints), cmocka_unit_test(test_snapshot_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
