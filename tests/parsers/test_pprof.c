/*
 * Unit tests of pprof (and the arena it decodes into): a hand-made profile whose flat and cum
 * values are known (recursion, inlined frames, an unsymbolized frame, an empty stack), every
 * field of the summary, packed and unpacked encodings, ids that are not 1..n, hostile inputs
 * (broken framing, huge varints, wrong wire types, indexes and ids that resolve nowhere), gzip
 * (several members, truncation, trailing garbage, a bomb), every limit, and the sweep over the
 * shared test data's MANIFEST.
 */
#include "arena.h"
#include "goroutine.h"
#include "heaptext.h"
#include "pprof.h"

#include "cdtest.h"
#include "ptest.h"

#include <errno.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * A profile built by hand */

enum {
    S_EMPTY,
    S_SAMPLES,
    S_COUNT,
    S_CPU,
    S_NS,
    S_MAIN_A,
    S_MAIN_B,
    S_MAIN_C,
    S_A_GO,
    S_BIN,
    S_BUILD,
    S_WORKER,
    S_ALPHA,
    S_BYTES,
    S_COMMENT,
    S_MAIN_INL,
    S_DROP,
    S_KEEP,
    S_N
};
static const char *const strings[S_N] = {"",         "samples", "count",  "cpu",   "nanoseconds",
                                         "main.a",   "main.b",  "main.c", "a.go",  "/bin/app",
                                         "build123", "worker",  "alpha",  "bytes", "a comment",
                                         "main.inl", "drop.*",  "keep.*"};

struct shape {
    bool packed;     /* location ids and values packed (other producers) or not (Go, short) */
    uint64_t fn_id;  /* first function id; ids step by 7 when != 1 */
    uint64_t loc_id; /* first location id; likewise */
};

static uint64_t fid(const struct shape *s, int k)
{
    return s->fn_id == 1 ? (uint64_t)k : s->fn_id + 7 * (uint64_t)(k - 1);
}

static uint64_t lid(const struct shape *s, int k)
{
    return s->loc_id == 1 ? (uint64_t)k : s->loc_id + 7 * (uint64_t)(k - 1);
}

static void add_valuetype(struct pb *p, uint32_t field, int type, int unit)
{
    struct pb m = {0};
    pb_uint(&m, 1, (uint64_t)type);
    pb_uint(&m, 2, (uint64_t)unit);
    pb_msg(p, field, &m);
    pb_free(&m);
}

static void add_sample(struct pb *p, const struct shape *s, const int *locs, size_t n, int64_t v1,
                       int64_t v2, int label)
{
    struct pb m = {0};
    uint64_t ids[8];
    for (size_t i = 0; i < n; i++)
        ids[i] = lid(s, locs[i]);
    uint64_t vals[2] = {(uint64_t)v1, (uint64_t)v2};
    if (s->packed) {
        if (n)
            pb_packed(&m, 1, ids, n);
        pb_packed(&m, 2, vals, 2);
    } else {
        for (size_t i = 0; i < n; i++)
            pb_uint(&m, 1, ids[i]);
        pb_uint(&m, 2, vals[0]);
        pb_uint(&m, 2, vals[1]);
    }
    if (label == 1) {
        pb_uint(&m, 9, 1); /* unknown: this sample goes through protobuf-c, the others not */
        struct pb l = {0};
        pb_uint(&l, 1, S_WORKER);
        pb_uint(&l, 2, S_ALPHA);
        pb_msg(&m, 3, &l);
        pb_free(&l);
    } else if (label == 2) {
        struct pb l = {0};
        pb_uint(&l, 1, S_BYTES);
        pb_uint(&l, 3, 1024);
        pb_uint(&l, 4, S_BYTES);
        pb_msg(&m, 3, &l);
        pb_free(&l);
    }
    pb_msg(p, 2, &m);
    pb_free(&m);
}

static void add_location(struct pb *p, uint64_t id, uint64_t addr, const uint64_t *fns, size_t n)
{
    struct pb m = {0};
    pb_uint(&m, 1, id);
    pb_uint(&m, 2, 1);
    pb_uint(&m, 3, addr);
    for (size_t i = 0; i < n; i++) {
        struct pb line = {0};
        pb_uint(&line, 1, fns[i]);
        pb_uint(&line, 2, 10 + i);
        pb_msg(&m, 4, &line);
        pb_free(&line);
    }
    /* An unknown field on every other location: those go through protobuf-c, the others are
     * decoded by hand, and the summary must not tell them apart. */
    if (id % 2 == 0)
        pb_uint(&m, 20, 1);
    pb_msg(p, 4, &m);
    pb_free(&m);
}

static void add_function(struct pb *p, uint64_t id, int name, int file)
{
    struct pb m = {0};
    pb_uint(&m, 1, id);
    pb_uint(&m, 2, (uint64_t)name);
    pb_uint(&m, 3, (uint64_t)name);
    pb_uint(&m, 4, (uint64_t)file);
    pb_msg(p, 5, &m);
    pb_free(&m);
}

/*
 * Types samples/count and cpu/nanoseconds. Functions main.a, main.b, main.c, main.inl.
 * Locations: L1 main.a; L2 main.b; L3 main.inl inlined into main.c; L4 main.a again (another
 * address); L5 no line info at 0x4567ab.
 * Samples (cpu): [L1 L2 L4] 10 (recursion), [L3 L2] 20, [L5 L1] 40, [] 80.
 */
static void build(struct pb *p, const struct shape *s)
{
    add_valuetype(p, 1, S_SAMPLES, S_COUNT);
    add_valuetype(p, 1, S_CPU, S_NS);
    add_sample(p, s, (const int[]){1, 2, 4}, 3, 1, 10, 1);
    add_sample(p, s, (const int[]){3, 2}, 2, 2, 20, 2);
    add_sample(p, s, (const int[]){5, 1}, 2, 4, 40, 0);
    add_sample(p, s, NULL, 0, 8, 80, 0);
    struct pb m = {0};
    pb_uint(&m, 1, 1);
    pb_uint(&m, 2, 0x400000);
    pb_uint(&m, 3, 0x800000);
    pb_uint(&m, 5, S_BIN);
    pb_uint(&m, 6, S_BUILD);
    pb_msg(p, 3, &m);
    pb_free(&m);
    add_location(p, lid(s, 1), 0x1000, (const uint64_t[]){fid(s, 1)}, 1);
    add_location(p, lid(s, 2), 0x2000, (const uint64_t[]){fid(s, 2)}, 1);
    add_location(p, lid(s, 3), 0x3000, (const uint64_t[]){fid(s, 4), fid(s, 3)}, 2);
    add_location(p, lid(s, 4), 0x4000, (const uint64_t[]){fid(s, 1)}, 1);
    add_location(p, lid(s, 5), 0x4567ab, NULL, 0);
    add_function(p, fid(s, 1), S_MAIN_A, S_A_GO);
    add_function(p, fid(s, 2), S_MAIN_B, S_A_GO);
    add_function(p, fid(s, 3), S_MAIN_C, S_A_GO);
    add_function(p, fid(s, 4), S_MAIN_INL, S_A_GO);
    for (int i = 0; i < S_N; i++)
        pb_str(p, 6, strings[i]);
    pb_uint(p, 7, S_DROP);
    pb_uint(p, 8, S_KEEP);
    pb_uint(p, 9, 1700000000000000000ULL);
    pb_uint(p, 10, 2000000000);
    add_valuetype(p, 11, S_CPU, S_NS);
    pb_uint(p, 12, 10000000);
    pb_uint(p, 13, S_COMMENT);
    pb_uint(p, 14, S_CPU);
}

static int summarize(const struct pb *p, const struct cd_parse_limits *lim, struct cd_summary *s,
                     struct cd_err *err)
{
    cd_summary_init(s);
    cd_err_init(err);
    int rc = cd_pprof_summarize(p->d, p->len, lim, s, err);
    if (rc == 0) {
        assert_int_equal(s->format, CD_FORMAT_PPROF);
        assert_true(json_is_object(s->json));
    } else {
        assert_null(s->json);
        assert_int_equal(s->n_series, 0);
        assert_int_equal(err->code, rc);
    }
    return rc;
}

static void expect_row(json_t *table, const char *fn, int64_t flat, int64_t cum)
{
    json_t *r = ptest_table_row(table, fn);
    if (r == NULL)
        fail_msg("no row for %s", fn);
    assert_int_equal(json_integer_value(json_object_get(r, "flat")), flat);
    assert_int_equal(json_integer_value(json_object_get(r, "cum")), cum);
}

static const char *row_fn(json_t *table, size_t i)
{
    return json_string_value(json_object_get(json_array_get(table, i), "function"));
}

static void check_known(const struct cd_summary *s)
{
    json_t *cpu = ptest_sample_type(s->json, "cpu");
    assert_non_null(cpu);
    assert_string_equal(json_string_value(json_object_get(cpu, "unit")), "nanoseconds");
    assert_int_equal(json_integer_value(json_object_get(cpu, "total")), 150);
    json_t *flat = json_object_get(cpu, "top_flat"), *cum = json_object_get(cpu, "top_cum");
    assert_int_equal(json_array_size(flat), 3);
    assert_string_equal(row_fn(flat, 0), "0x4567ab");
    assert_string_equal(row_fn(flat, 1), "main.inl");
    assert_string_equal(row_fn(flat, 2), "main.a");
    /* main.a appears twice in the first sample: its cum counts the sample once */
    expect_row(cum, "main.a", 10, 50);
    expect_row(cum, "main.b", 0, 30);
    expect_row(cum, "main.c", 0, 20);
    expect_row(cum, "main.inl", 20, 20);
    expect_row(cum, "0x4567ab", 40, 40);
    assert_int_equal(json_array_size(cum), 5);
    assert_string_equal(row_fn(cum, 0), "main.a");
    assert_string_equal(row_fn(cum, 2), "main.b");
    assert_string_equal(row_fn(cum, 3), "main.c"); /* ties by name, as pprof */
    json_t *a = ptest_table_row(cum, "main.a");
    assert_string_equal(json_string_value(json_object_get(a, "file")), "a.go");
    assert_null(json_object_get(a, "cum_pct")); /* percentages follow from total_abs */
    json_t *samples = ptest_sample_type(s->json, "samples");
    assert_int_equal(json_integer_value(json_object_get(samples, "total")), 15);
    expect_row(json_object_get(samples, "top_cum"), "main.a", 1, 5);

    json_t *j = s->json;
    assert_string_equal(json_string_value(json_object_get(j, "default_sample_type")), "cpu");
    assert_int_equal(json_integer_value(json_object_get(j, "default_index")), 1);
    json_t *pt = json_object_get(j, "period_type");
    assert_string_equal(json_string_value(json_object_get(pt, "type")), "cpu");
    assert_int_equal(json_integer_value(json_object_get(j, "period")), 10000000);
    assert_true(json_integer_value(json_object_get(j, "time_ns")) == 1700000000000000000LL);
    assert_int_equal(json_integer_value(json_object_get(j, "duration_ns")), 2000000000);
    json_t *counts = json_object_get(j, "counts");
    assert_int_equal(json_integer_value(json_object_get(counts, "samples")), 4);
    assert_int_equal(json_integer_value(json_object_get(counts, "locations")), 5);
    assert_int_equal(json_integer_value(json_object_get(counts, "functions")), 4);
    assert_int_equal(json_integer_value(json_object_get(counts, "mappings")), 1);
    assert_int_equal(json_integer_value(json_object_get(counts, "strings")), S_N);
    assert_int_equal(json_integer_value(json_object_get(counts, "nodes")), 5);
    json_t *mb = json_object_get(j, "main_binary");
    assert_string_equal(json_string_value(json_object_get(mb, "file")), "/bin/app");
    assert_string_equal(json_string_value(json_object_get(mb, "build_id")), "build123");
    json_t *lk = json_object_get(j, "label_keys");
    json_t *sk = json_array_get(json_object_get(lk, "string"), 0);
    assert_string_equal(json_string_value(json_object_get(sk, "key")), "worker");
    assert_int_equal(json_integer_value(json_object_get(sk, "count")), 1);
    json_t *nk = json_array_get(json_object_get(lk, "numeric"), 0);
    assert_string_equal(json_string_value(json_object_get(nk, "key")), "bytes");
    assert_string_equal(json_string_value(json_object_get(nk, "unit")), "bytes");
    assert_string_equal(json_string_value(json_object_get(j, "drop_frames")), "drop.*");
    assert_string_equal(json_string_value(json_object_get(j, "keep_frames")), "keep.*");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "comments"), 0)),
                        "a comment");
    assert_string_equal(json_string_value(json_object_get(j, "doc_url")), "");
    assert_true(json_is_true(json_object_get(j, "symbolized")));
    assert_int_equal(json_integer_value(json_object_get(j, "truncated_stacks")), 0);

    assert_int_equal(s->n_series, 2);
    assert_true(ptest_series(s, "samples") == 15);
    assert_true(ptest_series(s, "cpu") == 150);
}

static void test_known_profile(void **state)
{
    (void)state;
    const struct shape shapes[] = {
        {false, 1, 1},   /* Go's numbering, unpacked */
        {true, 1, 1},    /* packed */
        {false, 100, 5}, /* ids that are not 1..n: hashed lookups */
        {true, 3, 1000},
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        struct pb p = {0};
        build(&p, &shapes[i]);
        struct cd_summary s;
        struct cd_err err;
        assert_int_equal(summarize(&p, NULL, &s, &err), 0);
        check_known(&s);
        assert_string_equal(json_string_value(json_object_get(s.json, "encoding")), "none");
        cd_summary_free(&s);

        /* the same profile gzipped, and split into two gzip members */
        size_t gz_len;
        uint8_t *gz = ptest_gzip(p.d, p.len, &gz_len);
        struct pb g = {0};
        pb_raw(&g, gz, gz_len);
        assert_true(cd_pprof_sniff(g.d, g.len));
        assert_int_equal(summarize(&g, NULL, &s, &err), 0);
        check_known(&s);
        assert_string_equal(json_string_value(json_object_get(s.json, "encoding")), "gzip");
        assert_int_equal(json_integer_value(json_object_get(s.json, "decompressed_bytes")), p.len);
        cd_summary_free(&s);
        free(gz);
        pb_free(&g);
        size_t half = p.len / 2, l1, l2;
        uint8_t *g1 = ptest_gzip(p.d, half, &l1), *g2 = ptest_gzip(p.d + half, p.len - half, &l2);
        pb_raw(&g, g1, l1);
        pb_raw(&g, g2, l2);
        assert_int_equal(summarize(&g, NULL, &s, &err), 0);
        check_known(&s);
        cd_summary_free(&s);
        free(g1);
        free(g2);
        pb_free(&g);
        pb_free(&p);
    }
}

static void test_top_n_and_depth(void **state)
{
    (void)state;
    struct shape sh = {false, 1, 1};
    struct pb p = {0};
    build(&p, &sh);
    struct cd_parse_limits lim;
    cd_parse_limits_default(&lim);
    lim.top_n = 2;
    struct cd_summary s;
    struct cd_err err;
    assert_int_equal(summarize(&p, &lim, &s, &err), 0);
    json_t *cpu = ptest_sample_type(s.json, "cpu");
    assert_int_equal(json_array_size(json_object_get(cpu, "top_flat")), 2);
    assert_int_equal(json_array_size(json_object_get(cpu, "top_cum")), 2);
    cd_summary_free(&s);

    /* two frames per sample at most: deeper stacks are cut and counted */
    cd_parse_limits_default(&lim);
    lim.max_stack_depth = 2;
    assert_int_equal(summarize(&p, &lim, &s, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(s.json, "truncated_stacks")), 2);
    json_t *cum = json_object_get(ptest_sample_type(s.json, "cpu"), "top_cum");
    expect_row(cum, "main.a", 10, 50); /* the cut third frame of sample 1 was main.a again */
    expect_row(cum, "main.b", 0, 10);  /* sample 2 reaches main.b only at its third frame */
    expect_row(cum, "main.c", 0, 20);
    cd_summary_free(&s);
    pb_free(&p);
}

static void test_goroutine_profile_series(void **state)
{
    (void)state;
    struct pb p = {0};
    struct pb vt = {0};
    pb_uint(&vt, 1, 1);
    pb_uint(&vt, 2, 2);
    pb_msg(&p, 1, &vt);
    pb_free(&vt);
    struct pb smp = {0};
    pb_uint(&smp, 2, 7);
    pb_msg(&p, 2, &smp);
    pb_free(&smp);
    pb_str(&p, 6, "");
    pb_str(&p, 6, "goroutine");
    pb_str(&p, 6, "count");
    struct cd_summary s;
    struct cd_err err;
    assert_int_equal(summarize(&p, NULL, &s, &err), 0);
    assert_true(ptest_series(&s, "goroutine") == 7);
    assert_true(ptest_series(&s, "count") == 7);
    assert_true(json_is_false(json_object_get(s.json, "symbolized")));
    assert_true(json_is_null(json_object_get(s.json, "main_binary")));
    assert_true(json_is_null(json_object_get(s.json, "period_type")));
    assert_true(json_is_null(json_object_get(s.json, "time_ns")));
    cd_summary_free(&s);
    pb_free(&p);
}

/* ---------------------------------------------------------------------------------------------
 * Hostile input */

/* The known profile with extra bytes appended (protobuf concatenation appends repeated fields). */
static void expect_error(void (*extra)(struct pb *), int code, const char *needle)
{
    struct shape sh = {false, 1, 1};
    struct pb p = {0};
    build(&p, &sh);
    extra(&p);
    struct cd_summary s;
    struct cd_err err;
    int rc = summarize(&p, NULL, &s, &err);
    if (rc != code || strstr(cd_err_msg(&err), needle) == NULL)
        fail_msg("want %d '%s', got %d '%s'", code, needle, rc, cd_err_msg(&err));
    pb_free(&p);
}

static void x_bad_string_index(struct pb *p)
{
    add_function(p, 99, 500, 0);
}
static void x_dup_location(struct pb *p)
{
    add_location(p, 2, 0, NULL, 0);
}
static void x_zero_function(struct pb *p)
{
    add_function(p, 0, 1, 1);
}
static void x_missing_function(struct pb *p)
{
    add_location(p, 77, 0, (const uint64_t[]){42}, 1);
}
static void x_missing_location(struct pb *p)
{
    struct shape sh = {false, 1, 1};
    add_sample(p, &sh, (const int[]){99}, 1, 1, 1, 0);
}
static void x_value_mismatch(struct pb *p)
{
    struct pb m = {0};
    pb_uint(&m, 2, 5);
    pb_msg(p, 2, &m);
    pb_free(&m);
}
static void x_group_wire_type(struct pb *p)
{
    pb_tag(p, 2, 3);
}
static void x_length_past_end(struct pb *p)
{
    pb_tag(p, 4, 2);
    pb_varint(p, 1000);
    pb_raw(p, "abc", 3);
}
static void x_overlong_varint(struct pb *p)
{
    pb_tag(p, 9, 0);
    pb_raw(p, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
}
static void x_varint_overflow(struct pb *p)
{
    pb_tag(p, 9, 0);
    pb_raw(p, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10);
}
static void x_truncated_varint(struct pb *p)
{
    pb_tag(p, 9, 0);
    pb_raw(p, "\xff\xff", 2);
}
static void x_wrong_wire_type(struct pb *p)
{
    pb_str(p, 9, "not a varint");
}
static void x_bad_label(struct pb *p)
{
    struct pb m = {0}, l = {0};
    pb_uint(&m, 2, 1);
    pb_uint(&m, 2, 1);
    pb_uint(&l, 1, 1u << 30);
    pb_msg(&m, 3, &l);
    pb_msg(p, 2, &m);
    pb_free(&m);
    pb_free(&l);
}
static void x_malformed_sample(struct pb *p)
{
    pb_bytes(p, 2, "\x0a\x05\x01", 3); /* packed ids whose length runs past the sample */
}
static void x_field_zero(struct pb *p)
{
    pb_raw(p, "\x00\x01", 2);
}
static void x_bad_default_type(struct pb *p)
{
    pb_uint(p, 14, 12345);
}

static void test_hostile(void **state)
{
    (void)state;
    expect_error(x_bad_string_index, -EBADMSG, "string index 500 out of range");
    expect_error(x_dup_location, -EBADMSG, "several locations with id 2");
    expect_error(x_zero_function, -EBADMSG, "reserved id 0");
    expect_error(x_missing_function, -EBADMSG, "function id 42, which is not in the profile");
    expect_error(x_missing_location, -EBADMSG, "location id 99, which is not in the profile");
    expect_error(x_value_mismatch, -EBADMSG, "has 1 values for 2 sample types");
    expect_error(x_group_wire_type, -EBADMSG, "unsupported wire type 3");
    expect_error(x_length_past_end, -EBADMSG, "runs past the end");
    expect_error(x_overlong_varint, -EBADMSG, "varint longer than 64 bits");
    expect_error(x_varint_overflow, -EBADMSG, "varint longer than 64 bits");
    expect_error(x_truncated_varint, -EBADMSG, "truncated varint");
    expect_error(x_wrong_wire_type, -EBADMSG, "field 9 (time_nanos) at byte");
    expect_error(x_bad_label, -EBADMSG, "sample label");
    expect_error(x_malformed_sample, -EBADMSG, "field 2 (sample) #4");
    expect_error(x_field_zero, -EBADMSG, "invalid field number 0");
    expect_error(x_bad_default_type, -EBADMSG, "default_sample_type");

    /* string_table[0] must be empty, as pprof requires */
    struct pb p = {0};
    pb_str(&p, 6, "x");
    struct cd_summary s;
    struct cd_err err;
    assert_int_equal(summarize(&p, NULL, &s, &err), -EBADMSG);
    assert_non_null(strstr(cd_err_msg(&err), "string_table[0] must be empty"));
    pb_free(&p);
    /* samples without sample types */
    pb_bytes(&p, 2, "", 0);
    pb_str(&p, 6, "");
    assert_int_equal(summarize(&p, NULL, &s, &err), -EBADMSG);
    assert_non_null(strstr(cd_err_msg(&err), "no sample_type"));
    pb_free(&p);
    /* unknown (newer) fields are skipped */
    struct shape sh = {true, 1, 1};
    build(&p, &sh);
    pb_uint(&p, 100, 5);
    pb_str(&p, 101, "future");
    assert_int_equal(summarize(&p, NULL, &s, &err), 0);
    check_known(&s);
    cd_summary_free(&s);
    pb_free(&p);
    /* empty input, and text */
    assert_int_equal(summarize(&p, NULL, &s, &err), -EBADMSG);
    pb_raw(&p, "hello world\n", 12);
    assert_int_equal(summarize(&p, NULL, &s, &err), -EPROTONOSUPPORT);
    assert_non_null(strstr(cd_err_msg(&err), "not a profile.proto"));
    pb_free(&p);
    pb_raw(&p, "heap profile: 1: 2 [3: 4] @ heap/1048576\n", 41);
    assert_int_equal(summarize(&p, NULL, &s, &err), -EPROTONOSUPPORT);
    assert_non_null(strstr(cd_err_msg(&err), "pprof: legacy text/heap format is not supported"));
    pb_free(&p);
}

/* A location that sample after sample refers to, with many lines: the walk stops at the depth
 * limit instead of costing samples x lines. */
static void test_deep_stacks(void **state)
{
    (void)state;
    struct pb p = {0};
    add_valuetype(&p, 1, 1, 2);
    uint64_t fns[2000];
    for (size_t i = 0; i < 2000; i++)
        fns[i] = 1 + i % 3;
    add_location(&p, 1, 0x10, fns, 2000);
    for (int f = 1; f <= 3; f++)
        add_function(&p, (uint64_t)f, 3 + f, 0);
    uint64_t ids[5000];
    for (size_t i = 0; i < 5000; i++)
        ids[i] = 1;
    for (int k = 0; k < 200; k++) {
        struct pb m = {0};
        pb_packed(&m, 1, ids, 5000);
        pb_uint(&m, 2, 1);
        pb_msg(&p, 2, &m);
        pb_free(&m);
    }
    const char *strs[] = {"", "samples", "count", "", "f1", "f2", "f3"};
    for (size_t i = 0; i < 7; i++)
        pb_str(&p, 6, strs[i]);
    struct cd_summary s;
    struct cd_err err;
    int64_t t0 = cdt_now_ms();
    assert_int_equal(summarize(&p, NULL, &s, &err), 0);
    int64_t ms = cdt_now_ms() - t0;
    assert_int_equal(json_integer_value(json_object_get(s.json, "truncated_stacks")), 200);
    json_t *cum = json_object_get(ptest_sample_type(s.json, "samples"), "top_cum");
    expect_row(cum, "f1", 200, 200);
    expect_row(cum, "f2", 0, 200);
    print_message("200 samples x 5000 locations x 2000 lines: %lld ms\n", (long long)ms);
    cd_summary_free(&s);
    pb_free(&p);
}

/* ---------------------------------------------------------------------------------------------
 * Large profiles in several field orders: a gzipped profile of a megabyte and more has the pages
 * the walks are done with given back while it is summarized, and must summarize exactly as the
 * same bytes given raw (which are the caller's and are never touched). Under ASan the given-back
 * pages are poisoned, so a walk that read one fails here. */

enum { BIG_FN = 2000, BIG_LOC = 4000, BIG_SAMPLES = 30000, BIG_DEPTH = 12 };

enum big_layout { BIG_GO, BIG_STRINGS_FIRST, BIG_INTERLEAVED, BIG_STRINGS_AMONG_SAMPLES };

struct big_parts {
    struct pb types, samples[BIG_SAMPLES], locs[BIG_LOC], fns[BIG_FN], mapping, strs, tail;
    char (*names)[160];
    size_t n_names;
};

static void big_parts_build(struct big_parts *b)
{
    memset(b, 0, sizeof(*b));
    b->n_names = 5 + 2 * BIG_FN;
    b->names = calloc(b->n_names, sizeof(*b->names));
    assert_non_null(b->names);
    snprintf(b->names[1], sizeof(b->names[1]), "samples");
    snprintf(b->names[2], sizeof(b->names[2]), "count");
    snprintf(b->names[3], sizeof(b->names[3]), "cpu");
    snprintf(b->names[4], sizeof(b->names[4]), "nanoseconds");
    for (int k = 0; k < BIG_FN; k++) {
        snprintf(b->names[5 + 2 * k], sizeof(b->names[0]),
                 "github.com/example/service/internal/pkg%04d.(*Handler).ServeSomethingLong", k);
        snprintf(b->names[6 + 2 * k], sizeof(b->names[0]),
                 "/home/build/src/github.com/example/service/internal/pkg%04d/handler.go", k);
    }
    add_valuetype(&b->types, 1, 1, 2);
    add_valuetype(&b->types, 1, 3, 4);
    for (size_t i = 0; i < b->n_names; i++)
        pb_str(&b->strs, 6, b->names[i]);
    for (int k = 0; k < BIG_FN; k++)
        add_function(&b->fns[k], (uint64_t)k + 1, 5 + 2 * k, 6 + 2 * k);
    for (int k = 0; k < BIG_LOC; k++) {
        uint64_t fns[2] = {(uint64_t)(k % BIG_FN) + 1, (uint64_t)((k * 7) % BIG_FN) + 1};
        add_location(&b->locs[k], (uint64_t)k + 1, 0x1000 + 16 * (uint64_t)k, fns,
                     k % 97 == 0  ? 0
                     : k % 5 == 0 ? 2
                                  : 1);
    }
    uint32_t x = 12345;
    for (int i = 0; i < BIG_SAMPLES; i++) {
        struct pb *m = &b->samples[i], sm = {0};
        for (int d = 0; d < BIG_DEPTH; d++) {
            x = x * 1103515245u + 12345u;
            pb_uint(&sm, 1, (x >> 8) % BIG_LOC + 1);
        }
        pb_uint(&sm, 2, 1);
        pb_uint(&sm, 2, 10000 + (uint64_t)(i % 7));
        if (i % 50 == 0)
            pb_uint(&sm, 9, 1); /* unknown: through protobuf-c */
        pb_msg(m, 2, &sm);
        pb_free(&sm);
    }
    pb_uint(&b->mapping, 1, 1);
    pb_uint(&b->mapping, 5, 6);
    struct pb mp = b->mapping;
    b->mapping = (struct pb){0};
    pb_msg(&b->mapping, 3, &mp);
    pb_free(&mp);
    pb_uint(&b->tail, 9, 1700000000000000000ULL);
    pb_uint(&b->tail, 10, 2000000000);
    pb_uint(&b->tail, 12, 10000000);
}

static void big_parts_free(struct big_parts *b)
{
    pb_free(&b->types);
    pb_free(&b->mapping);
    pb_free(&b->strs);
    pb_free(&b->tail);
    for (int i = 0; i < BIG_SAMPLES; i++)
        pb_free(&b->samples[i]);
    for (int k = 0; k < BIG_LOC; k++)
        pb_free(&b->locs[k]);
    for (int k = 0; k < BIG_FN; k++)
        pb_free(&b->fns[k]);
    free(b->names);
}

static void pb_append(struct pb *p, const struct pb *part)
{
    pb_raw(p, part->d, part->len);
}

static void big_assemble(const struct big_parts *b, enum big_layout layout, struct pb *p)
{
    switch (layout) {
    case BIG_GO: /* what Go writes */
        pb_append(p, &b->types);
        for (int i = 0; i < BIG_SAMPLES; i++)
            pb_append(p, &b->samples[i]);
        pb_append(p, &b->mapping);
        for (int k = 0; k < BIG_LOC; k++)
            pb_append(p, &b->locs[k]);
        for (int k = 0; k < BIG_FN; k++)
            pb_append(p, &b->fns[k]);
        pb_append(p, &b->strs);
        break;
    case BIG_STRINGS_FIRST:
        pb_append(p, &b->strs);
        for (int k = 0; k < BIG_FN; k++)
            pb_append(p, &b->fns[k]);
        for (int k = 0; k < BIG_LOC; k++)
            pb_append(p, &b->locs[k]);
        pb_append(p, &b->mapping);
        pb_append(p, &b->types);
        for (int i = 0; i < BIG_SAMPLES; i++)
            pb_append(p, &b->samples[i]);
        break;
    case BIG_INTERLEAVED: /* samples, locations and functions in one run */
        pb_append(p, &b->types);
        for (int i = 0; i < BIG_SAMPLES; i++) {
            pb_append(p, &b->samples[i]);
            if (i < BIG_LOC)
                pb_append(p, &b->locs[i]);
            if (i < BIG_FN)
                pb_append(p, &b->fns[i]);
        }
        pb_append(p, &b->mapping);
        pb_append(p, &b->strs);
        break;
    case BIG_STRINGS_AMONG_SAMPLES: {
        struct pb one = {0};
        pb_append(p, &b->types);
        for (int i = 0; i < BIG_SAMPLES; i++) {
            pb_append(p, &b->samples[i]);
            if ((size_t)i < b->n_names) {
                pb_str(&one, 6, b->names[i]);
                pb_append(p, &one);
                one.len = 0;
            }
        }
        pb_free(&one);
        for (int k = 0; k < BIG_LOC; k++)
            pb_append(p, &b->locs[k]);
        pb_append(p, &b->mapping);
        for (int k = 0; k < BIG_FN; k++)
            pb_append(p, &b->fns[k]);
        break;
    }
    }
    pb_append(p, &b->tail);
}

static void test_large_layouts(void **state)
{
    (void)state;
    struct big_parts *b = malloc(sizeof(*b));
    assert_non_null(b);
    big_parts_build(b);
    static const enum big_layout layouts[] = {BIG_GO, BIG_STRINGS_FIRST, BIG_INTERLEAVED,
                                              BIG_STRINGS_AMONG_SAMPLES};
    json_t *first = NULL;
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        struct pb p = {0};
        big_assemble(b, layouts[i], &p);
        assert_true(p.len > ((size_t)3 << 20) / 2);
        struct pb g = {0};
        size_t gz_len;
        uint8_t *gz = ptest_gzip(p.d, p.len, &gz_len);
        pb_raw(&g, gz, gz_len);
        free(gz);
        struct cd_summary raw, zipped;
        struct cd_err err;
        if (summarize(&p, NULL, &raw, &err) != 0)
            fail_msg("layout %zu raw: %s", i, cd_err_msg(&err));
        if (summarize(&g, NULL, &zipped, &err) != 0)
            fail_msg("layout %zu gzip: %s", i, cd_err_msg(&err));
        json_t *counts = json_object_get(raw.json, "counts");
        assert_int_equal(json_integer_value(json_object_get(counts, "samples")), BIG_SAMPLES);
        assert_int_equal(json_integer_value(json_object_get(counts, "functions")), BIG_FN);
        assert_int_equal(ptest_series(&raw, "samples"), BIG_SAMPLES);
        /* the same summary whatever the encoding, and whatever the order of the fields */
        static const char *const differ[] = {"encoding", "bytes"};
        for (size_t k = 0; k < 2; k++) {
            json_object_del(raw.json, differ[k]);
            json_object_del(zipped.json, differ[k]);
        }
        assert_true(json_equal(raw.json, zipped.json));
        assert_int_equal(raw.n_series, zipped.n_series);
        for (size_t k = 0; k < raw.n_series; k++)
            assert_true(raw.series[k].value == zipped.series[k].value);
        if (first == NULL)
            first = json_incref(raw.json);
        else
            assert_true(json_equal(first, raw.json));
        cd_summary_free(&raw);
        cd_summary_free(&zipped);
        pb_free(&g);
        pb_free(&p);
    }
    json_decref(first);
    big_parts_free(b);
    free(b);
}

/* ---------------------------------------------------------------------------------------------
 * gzip */

static void test_gzip_errors(void **state)
{
    (void)state;
    struct shape sh = {false, 1, 1};
    struct pb p = {0};
    build(&p, &sh);
    size_t gz_len;
    uint8_t *gz = ptest_gzip(p.d, p.len, &gz_len);
    struct pb g = {0};
    struct cd_summary s;
    struct cd_err err;
    /* truncated anywhere */
    for (size_t cut = 2; cut < gz_len; cut += gz_len / 7 + 1) {
        pb_free(&g);
        pb_raw(&g, gz, cut);
        assert_int_equal(summarize(&g, NULL, &s, &err), -EBADMSG);
        assert_non_null(strstr(cd_err_msg(&err), "pprof: gzip: "));
    }
    /* trailing garbage after the member */
    pb_free(&g);
    pb_raw(&g, gz, gz_len);
    pb_raw(&g, "garbage at the end of it", 24);
    assert_int_equal(summarize(&g, NULL, &s, &err), -EBADMSG);
    assert_non_null(strstr(cd_err_msg(&err), "trailing garbage"));
    pb_free(&g);
    free(gz);
    pb_free(&p);

    /* The last member's ISIZE says 1 byte: the output buffer has to grow past the first guess. */
    uint8_t *zeros = calloc(1 << 20, 1);
    assert_non_null(zeros);
    size_t l1, l2;
    uint8_t *m1 = ptest_gzip(zeros, 1 << 20, &l1), *m2 = ptest_gzip((const uint8_t *)"x", 1, &l2);
    pb_raw(&g, m1, l1);
    pb_raw(&g, m2, l2);
    uint8_t *out = NULL;
    size_t out_len = 0;
    cd_err_init(&err);
    assert_int_equal(cd_pprof_gunzip(g.d, g.len, 4 << 20, &out, &out_len, &err), 0);
    assert_int_equal(out_len, (1 << 20) + 1);
    assert_int_equal(out[1 << 20], 'x');
    assert_memory_equal(out, zeros, 1 << 20);
    free(out);
    /* and the cap holds at exactly the size */
    assert_int_equal(cd_pprof_gunzip(g.d, g.len, 1 << 20, &out, &out_len, &err), -EFBIG);
    free(m1);
    free(m2);
    free(zeros);
    pb_free(&g);
}

static double bomb_ms(size_t cap, size_t members, size_t member_size)
{
    /* calloc'd zeros cost no memory until written: compressing reads the shared zero page */
    uint8_t *zeros = calloc(member_size, 1);
    assert_non_null(zeros);
    size_t one_len;
    uint8_t *one = ptest_gzip(zeros, member_size, &one_len);
    free(zeros);
    struct pb g = {0};
    for (size_t i = 0; i < members; i++)
        pb_raw(&g, one, one_len);
    free(one);
    struct cd_parse_limits lim;
    cd_parse_limits_default(&lim);
    lim.max_decompressed = cap;
    struct cd_summary s;
    struct cd_err err;
    int64_t t0 = cdt_now_ms();
    assert_int_equal(summarize(&g, &lim, &s, &err), -EFBIG);
    int64_t ms = cdt_now_ms() - t0;
    assert_non_null(strstr(cd_err_msg(&err), "pprof: gzip: decompressed size exceeds the limit"));
    print_message("bomb of %zu x %zu MiB zeros (%zu bytes), cap %zu MiB: %s (%lld ms)\n", members,
                  member_size >> 20, g.len, cap >> 20, cd_err_msg(&err), (long long)ms);
    pb_free(&g);
    return (double)ms;
}

static void test_gzip_bomb(void **state)
{
    (void)state;
    /* 1 GiB of zeros in 16 members against the default cap (256 MiB) ... */
    bomb_ms((size_t)256 << 20, 16, (size_t)64 << 20);
    /* ... and a single 512 MiB member against a small cap */
    bomb_ms((size_t)16 << 20, 1, (size_t)512 << 20);
}

/* ---------------------------------------------------------------------------------------------
 * Limits */

static void test_limits(void **state)
{
    (void)state;
    struct shape sh = {false, 1, 1};
    struct pb p = {0};
    build(&p, &sh);
    struct cd_parse_limits lim;
    struct cd_summary s;
    struct cd_err err;
    cd_parse_limits_default(&lim);
    lim.max_input = p.len - 1;
    assert_int_equal(summarize(&p, &lim, &s, &err), -EFBIG);
    assert_non_null(strstr(cd_err_msg(&err), "exceeds the limit"));
    cd_parse_limits_default(&lim);
    lim.max_memory = 1024;
    assert_int_equal(summarize(&p, &lim, &s, &err), -ENOMEM);
    assert_non_null(strstr(cd_err_msg(&err), "working memory limit of"));
    /* the decompressed bytes count against max_memory too */
    size_t gz_len;
    uint8_t *gz = ptest_gzip(p.d, p.len, &gz_len);
    struct pb g = {0};
    pb_raw(&g, gz, gz_len);
    cd_parse_limits_default(&lim);
    lim.max_memory = p.len - 1;
    assert_int_equal(summarize(&g, &lim, &s, &err), -EFBIG);
    cd_parse_limits_default(&lim);
    lim.max_decompressed = p.len;
    assert_int_equal(summarize(&g, &lim, &s, &err), 0);
    cd_summary_free(&s);
    free(gz);
    pb_free(&g);
    pb_free(&p);
}

/* A failed call leaves the caller's summary as it was. */
static void test_out_untouched(void **state)
{
    (void)state;
    struct shape sh = {false, 1, 1};
    struct pb p = {0};
    build(&p, &sh);
    struct cd_summary s;
    struct cd_err err;
    assert_int_equal(summarize(&p, NULL, &s, &err), 0);
    json_t *before = s.json;
    cd_err_init(&err);
    assert_int_equal(cd_pprof_summarize((const uint8_t *)"\x1f\x8b", 2, NULL, &s, &err), -EBADMSG);
    assert_ptr_equal(s.json, before);
    assert_int_equal(s.n_series, 2);
    /* and a second success replaces it without leaking */
    cd_err_init(&err);
    assert_int_equal(cd_pprof_summarize(p.d, p.len, NULL, &s, &err), 0);
    check_known(&s);
    cd_summary_free(&s);
    pb_free(&p);
}

static void test_sniff(void **state)
{
    (void)state;
    struct shape sh = {false, 1, 1};
    struct pb p = {0};
    build(&p, &sh);
    assert_true(cd_pprof_sniff(p.d, p.len));
    assert_true(cd_pprof_sniff((const uint8_t *)"\x1f\x8b\x08", 3));
    assert_false(cd_pprof_sniff((const uint8_t *)"", 0));
    static const char *const texts[] = {
        "goroutine 1 [running]:\n",
        "goroutine profile: total 3\n",
        "heap profile: 1: 2 [3: 4]",
        "alloc: 1 bytes\n",
        "go1.19.8\n",
        "go 1.19 trace\0\0\0",
        "{\"json\": true}",
        "--- contention:\n",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        assert_false(cd_pprof_sniff((const uint8_t *)texts[i], strlen(texts[i])));
    pb_free(&p);
}

static void test_arena(void **state)
{
    (void)state;
    struct cd_arena a, b;
    cd_arena_init(&a, 1 << 20);
    cd_arena_init_shared(&b, &a);
    char *x = cd_arena_alloc(&a, 10);
    assert_non_null(x);
    assert_int_equal((uintptr_t)x % 16, 0);
    assert_non_null(cd_arena_alloc(&a, 0));
    struct cd_arena_mark m = cd_arena_mark(&b);
    void *big = cd_arena_alloc(&b, 300 << 10); /* its own chunk */
    assert_non_null(big);
    memset(big, 1, 300 << 10);
    cd_arena_rewind(&b, m);
    void *again = cd_arena_alloc(&b, 300 << 10); /* reuses it */
    assert_ptr_equal(again, big);
    /* the shared budget stops both */
    assert_null(cd_arena_alloc(&a, 900 << 10));
    assert_true(a.exhausted);
    assert_null(cd_arena_calloc(&b, SIZE_MAX / 2, 4));
    char *s = cd_arena_strndup(&a, "abcdef", 3);
    assert_string_equal(s, "abc");
    ProtobufCAllocator *pa = cd_arena_protobuf(&a);
    void *q = pa->alloc(pa->allocator_data, 24);
    assert_non_null(q);
    pa->free(pa->allocator_data, q);
    cd_arena_free(&b);
    cd_arena_free(&a);
    cd_arena_free(NULL);
}

/* ---------------------------------------------------------------------------------------------
 * The shared test data */

static void test_manifest_sweep(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    struct ptest_row *rows;
    size_t n;
    assert_int_equal(ptest_manifest(cdt_shared_dir(), &rows, &n), 0);
    assert_true(n >= 40);
    size_t ok = 0, legacy = 0, text = 0;
    for (size_t i = 0; i < n; i++) {
        const struct ptest_row *r = &rows[i];
        char path[4096];
        snprintf(path, sizeof(path), "%s/testdata/pprof/%s", cdt_shared_dir(), r->file);
        uint8_t *data;
        size_t len;
        if (cdt_read_file(path, &data, &len) < 0) {
            print_message("missing (deleted on purpose?): %s\n", r->file);
            continue;
        }
        struct cd_summary s;
        struct cd_err err;
        cd_summary_init(&s);
        cd_err_init(&err);
        int rc = cd_pprof_summarize(data, len, NULL, &s, &err);
        if (ptest_row_is_legacy(r)) {
            if (rc != -EPROTONOSUPPORT || strstr(cd_err_msg(&err), "legacy") == NULL)
                fail_msg("%s: want a legacy error, got %d %s", r->file, rc, cd_err_msg(&err));
            legacy++;
        } else if (ptest_row_is_text(r)) {
            assert_int_equal(rc, -EPROTONOSUPPORT);
            cd_err_init(&err);
            if (cd_goroutine_sniff(data, len))
                rc = cd_goroutine_summarize(data, len, NULL, &s, &err);
            else if (cd_heaptext_sniff(data, len))
                rc = cd_heaptext_summarize(data, len, NULL, &s, &err);
            else
                fail_msg("%s: no text parser recognises it", r->file);
            if (rc != 0)
                fail_msg("%s: %s", r->file, cd_err_msg(&err));
            text++;
        } else {
            if (rc != 0)
                fail_msg("%s: %s", r->file, cd_err_msg(&err));
            assert_true(cd_pprof_sniff(data, len));
            json_t *counts = json_object_get(s.json, "counts");
            if (r->samples >= 0 &&
                json_integer_value(json_object_get(counts, "samples")) != r->samples)
                fail_msg("%s: %lld samples, MANIFEST says %ld", r->file,
                         (long long)json_integer_value(json_object_get(counts, "samples")),
                         r->samples);
            /* "a/count, b/bytes" as the manifest writes the sample types */
            char types[512] = "";
            size_t k;
            json_t *t;
            json_array_foreach(json_object_get(s.json, "sample_types"), k, t)
            {
                char one[256];
                snprintf(one, sizeof(one), "%s%s/%s", k ? ", " : "",
                         json_string_value(json_object_get(t, "type")),
                         json_string_value(json_object_get(t, "unit")));
                strncat(types, one, sizeof(types) - strlen(types) - 1);
            }
            if (strcmp(types, r->types) != 0)
                fail_msg("%s: sample types '%s', MANIFEST says '%s'", r->file, types, r->types);
            ok++;
        }
        cd_summary_free(&s);
        free(data);
    }
    print_message("manifest: %zu profiles parsed, %zu legacy rejected, %zu texts summarized\n", ok,
                  legacy, text);
    assert_true(ok >= 30);
    assert_int_equal(legacy, 3);
    free(rows);
}

/* Figures go tool pprof printed for these files (go1.19 `-top -unit=B/ns`), fixed here so this
 * unit test needs no Go; test_pprof_gotool compares everything against the live tool. */
static void test_known_files(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    static const struct {
        const char *file, *type, *fn;
        int64_t total, flat, cum;
    } want[] = {
        {"go1.19_gen_heap.pb.gz", "inuse_space", "main.startWorkload.func2", 13153850, 11549386,
         11549386},
        {"go1.19_gen_cpu.pb.gz", "cpu", "main.burn", 3670000000, 2760000000, 3080000000},
        {"go1.19_gen_cpu.pb.gz", "samples", "main.burn", 367, 276, 308},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/testdata/pprof/%s", cdt_shared_dir(), want[i].file);
        uint8_t *data;
        size_t len;
        assert_int_equal(cdt_read_file(path, &data, &len), 0);
        struct pb p = {data, len, len};
        struct cd_summary s;
        struct cd_err err;
        assert_int_equal(summarize(&p, NULL, &s, &err), 0);
        json_t *t = ptest_sample_type(s.json, want[i].type);
        assert_int_equal(json_integer_value(json_object_get(t, "total")), want[i].total);
        expect_row(json_object_get(t, "top_flat"), want[i].fn, want[i].flat, want[i].cum);
        assert_true(ptest_series(&s, want[i].type) == (double)want[i].total);
        cd_summary_free(&s);
        free(data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_profile),
        cmocka_unit_test(test_top_n_and_depth),
        cmocka_unit_test(test_goroutine_profile_series),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_deep_stacks),
        cmocka_unit_test(test_large_layouts),
        cmocka_unit_test(test_gzip_errors),
        cmocka_unit_test(test_gzip_bomb),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_out_untouched),
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_manifest_sweep),
        cmocka_unit_test(test_known_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
