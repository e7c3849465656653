/*
 * Tests of the Go execution trace summarizer (trace, tracev1, tracev2, tracesum):
 * - every valid trace in ../shared/testdata/go-traces matches the MANIFEST's reference table
 *   (parsed from MANIFEST.md, the source of truth), every *_EXPECTFAIL file fails;
 * - the fuzz corpora and ~50 truncations of every valid file never crash and give an error with a
 *   partial summary;
 * - hand-built traces for the edge cases of trace-format.md §6;
 * - limits (input size, memory, name tables);
 * - a trace written by our own Go program (tests/trace/tracegen, path in argv[1]) whose counts
 *   the program reports itself.
 */
#include "str.h"
#include "trace.h"

#include "cdtest.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *tracegen_bin;

/* ---------------------------------------------------------------------------------------------
 * helpers */

struct result {
    int rc;
    struct cd_summary s;
    struct cd_err err;
};

/* Summarizes a private exact-size copy, so any read past the end trips ASan. */
static void summarize(const uint8_t *data, size_t len, const struct cd_parse_limits *lim,
                      struct result *r)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, data, len);
    cd_summary_init(&r->s);
    cd_err_init(&r->err);
    r->rc = cd_trace_summarize(copy, len, lim, &r->s, &r->err);
    free(copy);
}

static void result_free(struct result *r)
{
    cd_summary_free(&r->s);
}

/* The invariants every call keeps, whatever the input. */
static void check_invariants(const struct result *r, size_t len)
{
    if (r->rc == 0) {
        assert_int_equal(r->s.format, CD_FORMAT_TRACE);
        assert_non_null(r->s.json);
        assert_true(json_is_false(json_object_get(r->s.json, "partial")));
        assert_null(json_object_get(r->s.json, "error"));
        assert_true(r->s.n_series > 0);
        return;
    }
    assert_true(r->rc < 0);
    assert_true(r->err.code < 0);
    assert_true(strlen(cd_err_msg(&r->err)) > 0);
    assert_true(cd_str_has_prefix(cd_err_msg(&r->err), "trace: "));
    assert_int_equal(r->s.n_series, 0);
    if (r->s.json != NULL) {
        assert_true(json_is_true(json_object_get(r->s.json, "partial")));
        assert_string_equal(json_string_value(json_object_get(r->s.json, "error")),
                            cd_err_msg(&r->err));
        json_int_t parsed = json_integer_value(json_object_get(r->s.json, "bytes_parsed"));
        assert_true(parsed >= 0 && (size_t)parsed <= len);
    }
}

static json_int_t jint(json_t *o, const char *path)
{
    /* "a.b" walks one level down */
    char key[64];
    const char *dot = strchr(path, '.');
    if (dot != NULL) {
        size_t n = (size_t)(dot - path);
        assert_true(n < sizeof(key));
        memcpy(key, path, n);
        key[n] = 0;
        o = json_object_get(o, key);
        path = dot + 1;
    }
    json_t *v = json_object_get(o, path);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    return json_integer_value(v);
}

static json_int_t name_count(json_t *list, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return json_integer_value(json_object_get(e, "count"));
    }
    return -1;
}

static uint8_t *read_shared(const char *name, size_t *len)
{
    char *dir = cdt_path(cdt_shared_dir(), "testdata/go-traces");
    char *path = cdt_path(dir, name);
    uint8_t *data = NULL;
    int rc = cdt_read_file(path, &data, len);
    if (rc != 0)
        fail_msg("cannot read %s: %s", path, strerror(-rc));
    free(path);
    free(dir);
    return data;
}

/* A growable byte string for hand-built traces. */
struct bytes {
    uint8_t b[4096];
    size_t n;
};

static void put(struct bytes *o, const void *p, size_t n)
{
    assert_true(o->n + n <= sizeof(o->b));
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void put_u8(struct bytes *o, uint8_t v)
{
    put(o, &v, 1);
}

static void put_uv(struct bytes *o, uint64_t v)
{
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        put_u8(o, (uint8_t)(c | (v ? 0x80 : 0)));
    } while (v);
}

/* The runtime's 10-byte padded form. */
static void put_uv_padded(struct bytes *o, uint64_t v)
{
    for (int i = 0; i < 9; i++) {
        put_u8(o, (uint8_t)((v & 0x7f) | 0x80));
        v >>= 7;
    }
    put_u8(o, (uint8_t)(v & 0x7f));
}

static void put_header(struct bytes *o, int minor)
{
    char h[16] = {0};
    snprintf(h, sizeof(h), "go 1.%d trace", minor);
    put(o, h, 16);
}

/* A v2 batch: 0x01 gen m time size(padded or not) payload. */
static void put_batch(struct bytes *o, uint64_t gen, uint64_t m, uint64_t time,
                      const struct bytes *payload, bool padded)
{
    put_u8(o, 1);
    put_uv(o, gen);
    put_uv(o, m);
    put_uv(o, time);
    if (padded)
        put_uv_padded(o, payload->n);
    else
        put_uv(o, payload->n);
    put(o, payload->b, payload->n);
}

/* ---------------------------------------------------------------------------------------------
 * header */

static void test_sniff(void **state)
{
    (void)state;
    assert_true(cd_trace_sniff((const uint8_t *)"go 1.19 trace\0\0\0", 16));
    assert_true(cd_trace_sniff((const uint8_t *)"go 1.5 trace\0\0\0\0xyz", 19));
    assert_true(cd_trace_sniff((const uint8_t *)"go 1.100 trace\0\0", 16));
    assert_false(cd_trace_sniff((const uint8_t *)"go 1.19 trace\0\0", 15));
    assert_false(cd_trace_sniff((const uint8_t *)"go 1.19 trace\0\0x", 16));
    assert_false(cd_trace_sniff((const uint8_t *)"go 1. trace\0\0\0\0\0", 16));
    assert_false(cd_trace_sniff((const uint8_t *)"go 2.19 trace\0\0\0", 16));
    assert_false(cd_trace_sniff((const uint8_t *)"\x1f\x8b\x08\0\0\0\0\0\0\0\0\0\0\0\0\0", 16));
    assert_false(cd_trace_sniff(NULL, 0));

    struct result r;
    summarize((const uint8_t *)"not a trace at all", 18, NULL, &r);
    assert_int_equal(r.rc, -EINVAL);
    assert_null(r.s.json);
    result_free(&r);
    summarize((const uint8_t *)"go 1.9 trace\0\0\0\0", 16, NULL, &r);
    assert_int_equal(r.rc, -ENOTSUP);
    result_free(&r);
}

/* ---------------------------------------------------------------------------------------------
 * the MANIFEST reference table */

static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '`'))
        s[--n] = 0;
    while (*s == '`')
        s++;
    return s;
}

static uint64_t u64_field(const char *file, const char *what, const char *s)
{
    uint64_t v;
    if (cd_str_to_u64(s, &v) != 0)
        fail_msg("%s: %s: cannot parse '%s'", file, what, s);
    return v;
}

static void check_ms(const char *file, const char *what, json_t *v, const char *ref)
{
    double want;
    if (cd_str_to_double(ref, &want) != 0)
        fail_msg("%s: %s: cannot parse '%s'", file, what, ref);
    if (!json_is_integer(v))
        fail_msg("%s: %s is not a number", file, what);
    double got = (double)json_integer_value(v) / 1e6;
    if (fabs(got - want) > 0.0006)
        fail_msg("%s: %s: got %.6f ms, want %s", file, what, got, ref);
}

static void check_eq(const char *file, const char *what, json_int_t got, uint64_t want)
{
    if (got < 0 || (uint64_t)got != want)
        fail_msg("%s: %s: got %lld, want %llu", file, what, (long long)got,
                 (unsigned long long)want);
}

/* "sleep:855, chan receive:669" against the blocking object. */
static void check_reasons(const char *file, json_t *blocking, char *list)
{
    char *p = list;
    while (*p != 0) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = 0;
        char *item = trim(p);
        char *colon = strrchr(item, ':');
        if (colon == NULL)
            fail_msg("%s: bad reason item '%s'", file, item);
        *colon = 0;
        uint64_t want = u64_field(file, item, colon + 1);
        json_t *v = json_object_get(blocking, item);
        check_eq(file, item, v ? json_integer_value(v) : -1, want);
        if (comma == NULL)
            break;
        p = comma + 1;
    }
}

static void check_row(char **col, int ncol)
{
    const char *file = col[0];
    size_t len;
    uint8_t *data = read_shared(file, &len);
    struct result r;
    summarize(data, len, NULL, &r);
    check_invariants(&r, len);
    bool expect_fail = strstr(file, "_EXPECTFAIL") != NULL || ncol < 18;
    if (expect_fail) {
        if (r.rc == 0)
            fail_msg("%s: expected a failure, got a summary", file);
        goto out;
    }
    if (r.rc != 0)
        fail_msg("%s: %s", file, cd_err_msg(&r.err));
    json_t *j = r.s.json;
    assert_string_equal(json_string_value(json_object_get(j, "go_version")), col[1]);
    assert_string_equal(json_string_value(json_object_get(j, "format")), col[2]);
    check_ms(file, "duration", json_object_get(j, "duration_ns"), col[3]);
    check_eq(file, "goroutines.at_start", jint(j, "goroutines.at_start"),
             u64_field(file, "G at start", col[4]));
    check_eq(file, "goroutines.created", jint(j, "goroutines.created"),
             u64_field(file, "G created", col[5]));
    check_eq(file, "goroutines.ended", jint(j, "goroutines.ended"),
             u64_field(file, "G ended", col[6]));
    check_eq(file, "gc.count", jint(j, "gc.count"), u64_field(file, "GCs", col[7]));
    check_ms(file, "gc.total", json_object_get(json_object_get(j, "gc"), "total_ns"), col[8]);
    check_eq(file, "stw.count", jint(j, "stw.count"), u64_field(file, "STW", col[9]));
    check_ms(file, "stw.total", json_object_get(json_object_get(j, "stw"), "total_ns"), col[10]);
    /* "347 (15)" */
    char *paren = strchr(col[11], '(');
    assert_non_null(paren);
    paren[-1] = 0;
    paren[strlen(paren) - 1] = 0;
    check_eq(file, "syscalls.count", jint(j, "syscalls.count"),
             u64_field(file, "syscalls", trim(col[11])));
    check_eq(file, "syscalls.blocked", jint(j, "syscalls.blocked"),
             u64_field(file, "blocked", paren + 1));
    check_eq(file, "procs.max", jint(j, "procs.max"), u64_field(file, "procs", col[12]));
    /* "42/63/42" */
    char *s1 = strchr(col[13], '/');
    assert_non_null(s1);
    char *s2 = strchr(s1 + 1, '/');
    assert_non_null(s2);
    *s1 = *s2 = 0;
    check_eq(file, "user.tasks", jint(j, "user.tasks"), u64_field(file, "tasks", col[13]));
    check_eq(file, "user.regions", jint(j, "user.regions"), u64_field(file, "regions", s1 + 1));
    check_eq(file, "user.logs", jint(j, "user.logs"), u64_field(file, "logs", s2 + 1));
    check_eq(file, "cpu_samples", jint(j, "cpu_samples"), u64_field(file, "CPU", col[14]));
    if (strcmp(col[15], "-") == 0)
        assert_true(json_is_null(json_object_get(j, "generations")));
    else
        check_eq(file, "generations", jint(j, "generations"), u64_field(file, "gens", col[15]));
    check_eq(file, "frequency", jint(j, "frequency"), u64_field(file, "freq", col[16]));
    check_reasons(file, json_object_get(j, "blocking"), col[17]);
out:
    result_free(&r);
    free(data);
}

static void test_manifest_reference(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    size_t len;
    char *manifest = (char *)read_shared("MANIFEST.md", &len);
    manifest[len] = 0; /* cdt_read_file leaves room for it */
    char *sec = strstr(manifest, "## Reference summary values");
    assert_non_null(sec);
    int rows = 0, valid = 0;
    char *line = sec;
    while (line != NULL && *line != 0) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = 0;
        if (cd_str_has_prefix(line, "| `go")) {
            char *col[24];
            int ncol = 0;
            char *p = line + 1;
            while (ncol < 24) {
                char *bar = strchr(p, '|');
                if (bar == NULL)
                    break;
                *bar = 0;
                col[ncol++] = trim(p);
                p = bar + 1;
            }
            check_row(col, ncol);
            rows++;
            if (ncol >= 18 && strstr(col[0], "_EXPECTFAIL") == NULL)
                valid++;
        }
        line = nl ? nl + 1 : NULL;
    }
    print_message("MANIFEST: %d rows checked (%d valid traces with reference values)\n", rows,
                  valid);
    assert_true(rows >= 46 && valid >= 44);
    free(manifest);
}

/* ---------------------------------------------------------------------------------------------
 * corpora: fuzz inputs, truncations */

/* Fuzz inputs whose framing is valid, so we summarize them (Go 1.19's own parser accepts the v1
 * ones too: `go tool trace -d`); rejecting them would need Go's full ordering state machine. */
static const char *const FUZZ_ACCEPTED[] = {
    "golang_FuzzReader_4055b17cae1a3443.trace",       /* v1: one FutileWakeup */
    "golang_FuzzReader_closing-unknown-region.trace", /* v2: region end without a begin */
    "golang_FuzzReader_large-id.trace",               /* v2: ProcSteal with a huge seq */
    "gotraceui_FuzzLoadTrace_015cd8e72fab9610.trace",
    "gotraceui_FuzzLoadTrace_78cdf18e1b5aca79.trace",
    "gotraceui_FuzzLoadTrace_ae3ce2c64d2c41da.trace",
    "gotraceui_FuzzLoadTrace_ecad2f142ca420d4.trace",
};

static bool fuzz_accepted(const char *name)
{
    for (size_t i = 0; i < sizeof(FUZZ_ACCEPTED) / sizeof(FUZZ_ACCEPTED[0]); i++)
        if (strcmp(name, FUZZ_ACCEPTED[i]) == 0)
            return true;
    return false;
}

static void test_fuzz_corpus(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    char *dir = cdt_path(cdt_shared_dir(), "testdata/go-traces/fuzz");
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int n = 0, errors = 0;
    while ((e = readdir(d)) != NULL) {
        if (!cd_str_has_suffix(e->d_name, ".trace"))
            continue;
        char *path = cdt_path(dir, e->d_name);
        uint8_t *data;
        size_t len;
        assert_int_equal(cdt_read_file(path, &data, &len), 0);
        struct result r;
        summarize(data, len, NULL, &r);
        check_invariants(&r, len);
        if (!fuzz_accepted(e->d_name) && r.rc == 0)
            fail_msg("%s: expected an error", e->d_name);
        errors += r.rc != 0;
        result_free(&r);
        free(data);
        free(path);
        n++;
    }
    closedir(d);
    free(dir);
    print_message("fuzz corpus: %d files, %d rejected\n", n, errors);
    assert_true(n >= 27);
}

static void test_truncations(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    char *dir = cdt_path(cdt_shared_dir(), "testdata/go-traces");
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int files = 0, cuts = 0, errors = 0, partial = 0;
    while ((e = readdir(d)) != NULL) {
        if (!cd_str_has_suffix(e->d_name, ".trace") || strstr(e->d_name, "EXPECTFAIL"))
            continue;
        char *path = cdt_path(dir, e->d_name);
        uint8_t *data;
        size_t len;
        assert_int_equal(cdt_read_file(path, &data, &len), 0);
        int file_errors = 0;
        for (int k = 0; k < 50; k++) {
            /* spread over the file, plus the first bytes where the header is */
            size_t cut = k < 5 ? (size_t)k * 4 : 16 + (len - 16) * (size_t)(k - 4) / 47;
            if (cut >= len)
                cut = len - 1;
            struct result r;
            summarize(data, cut, NULL, &r);
            check_invariants(&r, cut);
            cuts++;
            if (r.rc != 0) {
                errors++;
                file_errors++;
                partial += r.s.json != NULL;
                if (cut >= 16)
                    assert_non_null(r.s.json); /* the header was there */
            }
            result_free(&r);
        }
        /* most cuts of a file land inside an event or batch (v1 ones also lose the footer) */
        if (file_errors < 25)
            fail_msg("%s: only %d of 50 truncations were reported", e->d_name, file_errors);
        free(data);
        free(path);
        files++;
    }
    closedir(d);
    free(dir);
    print_message("truncations: %d files, %d cuts, %d errors (%d with a partial summary)\n", files,
                  cuts, errors, partial);
    assert_true(files >= 44);
}

/* A cut v2 trace keeps its complete generations. */
static void test_truncated_generations(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    size_t len;
    uint8_t *data = read_shared("go1.23_sqlprof_testprog.trace", &len);
    struct result r;
    summarize(data, len * 95 / 100, NULL, &r);
    check_invariants(&r, len * 95 / 100);
    assert_int_equal(r.rc, -EPROTO);
    assert_non_null(strstr(cd_err_msg(&r.err), "exceeds remaining"));
    json_t *j = r.s.json;
    assert_true(jint(j, "generations") >= 9);
    assert_true(jint(j, "duration_ns") > 8000000000LL);
    assert_true(jint(j, "cpu_samples") > 300);
    result_free(&r);

    /* v1: cut in the middle loses the footer, so counts but no times */
    free(data);
    data = read_shared("go1.19_gen_with_cpu.trace", &len);
    summarize(data, len / 2, NULL, &r);
    check_invariants(&r, len / 2);
    assert_true(r.rc == -EPROTO || r.rc == -EBADMSG);
    j = r.s.json;
    assert_true(json_is_null(json_object_get(j, "duration_ns")));
    assert_true(json_is_null(json_object_get(j, "frequency")));
    assert_true(jint(j, "events") > 10000);
    assert_true(jint(j, "gc.count") > 10);
    result_free(&r);
    free(data);
}

/* ---------------------------------------------------------------------------------------------
 * hand-built traces */

/* A minimal valid v2 generation: a Frequency (or Sync) batch and one M batch. */
static void put_v2_gen(struct bytes *o, int minor, uint64_t gen, bool padded, uint64_t t)
{
    struct bytes pl = {.n = 0};
    if (minor >= 25) {
        put_u8(&pl, 50); /* Sync */
        put_u8(&pl, 8);
        put_uv(&pl, 1000000000);
        put_u8(&pl, 51); /* ClockSnapshot dt mono sec nsec */
        put_uv(&pl, 0);
        put_uv(&pl, 5);
        put_uv(&pl, 1700000000);
        put_uv(&pl, 0);
    } else {
        put_u8(&pl, 8);
        put_uv(&pl, 1000000000);
    }
    put_batch(o, gen, UINT64_MAX, t, &pl, padded);
    pl.n = 0;
    put_u8(&pl, 13); /* ProcStatus dt p status=running */
    put_uv(&pl, 1);
    put_uv(&pl, 0);
    put_uv(&pl, 1);
    put_u8(&pl, 25); /* GoStatus dt g m status=running */
    put_uv(&pl, 1);
    put_uv(&pl, 1);
    put_uv(&pl, 7);
    put_uv(&pl, 2);
    put_u8(&pl, 14); /* GoCreate dt new_g new_stack stack */
    put_uv(&pl, 10);
    put_uv(&pl, 2);
    put_uv(&pl, 0);
    put_uv(&pl, 0);
    put_u8(&pl, 29); /* GCBegin dt seq stack */
    put_uv(&pl, 100);
    put_uv(&pl, 1);
    put_uv(&pl, 0);
    put_u8(&pl, 30); /* GCEnd dt seq */
    put_uv(&pl, 400);
    put_uv(&pl, 2);
    put_batch(o, gen, 7, t, &pl, padded);
    pl.n = 0;
    put_u8(&pl, 4); /* Strings */
    put_u8(&pl, 5);
    put_uv(&pl, 1);
    put_uv(&pl, 5);
    put(&pl, "sleep", 5);
    put_batch(o, gen, UINT64_MAX, t, &pl, padded);
}

static struct result expect(const struct bytes *o, int rc, const char *msg_part)
{
    struct result r;
    summarize(o->b, o->n, NULL, &r);
    check_invariants(&r, o->n);
    if (r.rc != rc)
        fail_msg("got %d (%s), want %d", r.rc, r.rc ? cd_err_msg(&r.err) : "ok", rc);
    if (msg_part != NULL && strstr(cd_err_msg(&r.err), msg_part) == NULL)
        fail_msg("error '%s' does not mention '%s'", cd_err_msg(&r.err), msg_part);
    return r;
}

static void test_crafted_v2(void **state)
{
    (void)state;
    struct bytes o = {.n = 0};
    struct result r;

    /* padded (runtime) and minimal (re-encoded) sizes read the same */
    for (int padded = 0; padded < 2; padded++) {
        o.n = 0;
        put_header(&o, 22);
        put_v2_gen(&o, 22, 4, padded, 1000);
        put_v2_gen(&o, 22, 5, padded, 3000);
        r = expect(&o, 0, NULL);
        assert_int_equal(jint(r.s.json, "generations"), 2);
        assert_int_equal(jint(r.s.json, "first_generation"), 4);
        assert_int_equal(jint(r.s.json, "goroutines.at_start"), 1);
        assert_int_equal(jint(r.s.json, "goroutines.created"), 2);
        assert_int_equal(jint(r.s.json, "goroutines.max_live"), 3);
        assert_int_equal(jint(r.s.json, "gc.count"), 2);
        assert_int_equal(jint(r.s.json, "gc.total_ns"), 800);
        assert_int_equal(jint(r.s.json, "duration_ns"), 2511);
        result_free(&r);
    }

    /* 1.26 needs EndOfGeneration after each generation */
    o.n = 0;
    put_header(&o, 26);
    put_v2_gen(&o, 26, 1, true, 0);
    put_u8(&o, 52);
    put_v2_gen(&o, 26, 2, true, 100);
    put_u8(&o, 52);
    r = expect(&o, 0, NULL);
    assert_int_equal(jint(r.s.json, "generations"), 2);
    assert_int_equal(jint(r.s.json, "clock_snapshots"), 2);
    assert_int_equal(jint(r.s.json, "wall_start_unix_ns"), 1700000000000000001LL);
    result_free(&r);
    o.n--; /* without the last marker: incomplete */
    r = expect(&o, -EPROTO, "no EndOfGeneration");
    assert_int_equal(jint(r.s.json, "generations"), 2);
    result_free(&r);

    /* 1.25 without a ClockSnapshot */
    o.n = 0;
    put_header(&o, 25);
    struct bytes pl = {.n = 0};
    put_u8(&pl, 50);
    put_u8(&pl, 8);
    put_uv(&pl, 1000);
    put_batch(&o, 1, UINT64_MAX, 0, &pl, false);
    r = expect(&o, -EBADMSG, "no ClockSnapshot");
    result_free(&r);

    /* generation 0, out of order, too big, unknown top-level byte, no frequency */
    o.n = 0;
    put_header(&o, 23);
    put_v2_gen(&o, 23, 0, false, 0);
    r = expect(&o, -EBADMSG, "invalid generation 0");
    result_free(&r);
    o.n = 0;
    put_header(&o, 23);
    put_v2_gen(&o, 23, 5, false, 0);
    put_v2_gen(&o, 23, 3, false, 0);
    r = expect(&o, -EBADMSG, "generations out of order");
    assert_int_equal(jint(r.s.json, "generations"), 1);
    result_free(&r);
    o.n = 0;
    put_header(&o, 23);
    put_u8(&o, 1);
    put_uv(&o, 1);
    put_uv(&o, 1);
    put_uv(&o, 1);
    put_uv_padded(&o, 70000);
    r = expect(&o, -EBADMSG, "exceeds the maximum");
    result_free(&r);
    o.n = 0;
    put_header(&o, 23);
    put_u8(&o, 7);
    r = expect(&o, -EBADMSG, "expected a batch at offset 16");
    result_free(&r);
    o.n = 0;
    put_header(&o, 22);
    pl.n = 0;
    put_u8(&pl, 11); /* ProcStop */
    put_uv(&pl, 1);
    put_batch(&o, 1, 3, 0, &pl, false);
    r = expect(&o, -EBADMSG, "no frequency");
    result_free(&r);

    /* an experimental batch is skipped (1.23+) but is an error in 1.22 */
    for (int minor = 22; minor <= 23; minor++) {
        o.n = 0;
        put_header(&o, minor);
        put_v2_gen(&o, minor, 1, false, 0);
        put_u8(&o, 49);
        put_u8(&o, 1);
        put_uv(&o, 1);
        put_uv(&o, 1);
        put_uv(&o, 1);
        put_uv(&o, 3);
        put(&o, "abc", 3);
        r = expect(&o, minor == 22 ? -EBADMSG : 0, NULL);
        if (minor == 23)
            assert_int_equal(jint(r.s.json, "experimental_batches"), 1);
        result_free(&r);
    }

    /* an 11-byte varint */
    o.n = 0;
    put_header(&o, 22);
    put_u8(&o, 1);
    for (int i = 0; i < 11; i++)
        put_u8(&o, 0x80);
    r = expect(&o, -EBADMSG, "bad generation varint");
    result_free(&r);

    /* a string over 1024 bytes, a stack over 128 frames, a bad status, an event of a newer Go */
    o.n = 0;
    put_header(&o, 22);
    pl.n = 0;
    put_u8(&pl, 4);
    put_u8(&pl, 5);
    put_uv(&pl, 1);
    put_uv(&pl, 2000);
    for (int i = 0; i < 2000; i++)
        put_u8(&pl, 'x');
    put_batch(&o, 1, UINT64_MAX, 0, &pl, false);
    r = expect(&o, -EBADMSG, "exceeds 1024");
    result_free(&r);
    o.n = 0;
    put_header(&o, 22);
    pl.n = 0;
    put_u8(&pl, 2);
    put_u8(&pl, 3);
    put_uv(&pl, 1);
    put_uv(&pl, 129);
    put_batch(&o, 1, UINT64_MAX, 0, &pl, false);
    r = expect(&o, -EBADMSG, "129 frames");
    result_free(&r);
    o.n = 0;
    put_header(&o, 22);
    pl.n = 0;
    put_u8(&pl, 25); /* GoStatus with status 9 */
    put_uv(&pl, 1);
    put_uv(&pl, 1);
    put_uv(&pl, 1);
    put_uv(&pl, 9);
    put_batch(&o, 1, 1, 0, &pl, false);
    r = expect(&o, -EBADMSG, "invalid status 9");
    result_free(&r);
    o.n = 0;
    put_header(&o, 22);
    pl.n = 0;
    put_u8(&pl, 45); /* GoSwitch: Go 1.23+ */
    put_uv(&pl, 1);
    put_uv(&pl, 1);
    put_uv(&pl, 1);
    put_batch(&o, 1, 1, 0, &pl, false);
    r = expect(&o, -EBADMSG, "not a valid timed event for Go 1.22");
    result_free(&r);

    /* an unknown future version is read as the newest known one */
    o.n = 0;
    put_header(&o, 27);
    put_v2_gen(&o, 26, 1, true, 0);
    put_u8(&o, 52);
    r = expect(&o, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(r.s.json, "go_version")), "1.27");
    result_free(&r);
}

static void test_crafted_v1(void **state)
{
    (void)state;
    struct bytes o = {.n = 0};
    struct result r;

    /* Batch p=0 ticks=100; String 1 "x"; Gomaxprocs; GoCreate; GCStart/Done; STW; Frequency */
    put_header(&o, 19);
    put_u8(&o, 1 | 1 << 6);
    put_uv(&o, 0);
    put_uv(&o, 100);
    put_u8(&o, 37);
    put_uv(&o, 1);
    put_uv(&o, 4);
    put(&o, "task", 4);
    put_u8(&o, 4 | 2 << 6); /* Gomaxprocs dt procs stack */
    put_uv(&o, 1);
    put_uv(&o, 8);
    put_uv(&o, 0);
    put_u8(&o, 45 | 3 << 6); /* UserTaskCreate len dt id parent name stack */
    put_uv(&o, 5);
    put_uv(&o, 1);
    put_uv(&o, 1);
    put_uv(&o, 0);
    put_uv(&o, 1);
    put_uv(&o, 0);
    put_u8(&o, 9 | 1 << 6); /* STWStart dt kind=0 */
    put_uv(&o, 1);
    put_uv(&o, 0);
    put_u8(&o, 10); /* STWDone dt */
    put_uv(&o, 3);
    put_u8(&o, 2); /* Frequency (no dt) */
    put_uv(&o, 1000000000);
    r = expect(&o, 0, NULL);
    assert_int_equal(jint(r.s.json, "duration_ns"), 5);
    assert_int_equal(jint(r.s.json, "procs.max"), 8);
    assert_int_equal(jint(r.s.json, "stw.total_ns"), 3);
    assert_int_equal(
        name_count(json_object_get(json_object_get(r.s.json, "user"), "task_names"), "task"), 1);
    json_t *kind = json_object_get(json_object_get(json_object_get(r.s.json, "stw"), "by_kind"),
                                   "GC mark termination");
    assert_int_equal(json_integer_value(json_object_get(kind, "count")), 1);
    result_free(&r);

    /* the same without its footer: counts, no times */
    o.n -= 6;
    r = expect(&o, -EPROTO, "no Frequency");
    assert_int_equal(jint(r.s.json, "user.tasks"), 1);
    result_free(&r);

    /* an event before any batch; a duplicate string; a wrong argument count; a bad length */
    o.n = 0;
    put_header(&o, 19);
    put_u8(&o, 6); /* ProcStop dt */
    put_uv(&o, 1);
    r = expect(&o, -EBADMSG, "before the first batch");
    result_free(&r);
    o.n = 0;
    put_header(&o, 19);
    for (int i = 0; i < 2; i++) {
        put_u8(&o, 37);
        put_uv(&o, 3);
        put_uv(&o, 1);
        put_u8(&o, 'a');
    }
    r = expect(&o, -EBADMSG, "duplicate id 3");
    result_free(&r);
    o.n = 0;
    put_header(&o, 19);
    put_u8(&o, 1 | 1 << 6);
    put_uv(&o, 0);
    put_uv(&o, 0);
    put_u8(&o, 13 | 1 << 6); /* GoCreate with 2 values instead of 4 */
    put_uv(&o, 1);
    put_uv(&o, 1);
    r = expect(&o, -EBADMSG, "wrong number of arguments: want 4, got 2");
    result_free(&r);
    o.n = 0;
    put_header(&o, 19);
    put_u8(&o, 1 | 1 << 6);
    put_uv(&o, 0);
    put_uv(&o, 0);
    put_u8(&o, 13 | 3 << 6); /* length 200 with 3 bytes left */
    put_uv(&o, 200);
    put_uv(&o, 1);
    r = expect(&o, -EPROTO, "exceeds remaining");
    result_free(&r);
    o.n = 0;
    put_header(&o, 11);
    put_u8(&o, 49 | 3 << 6); /* CPUSample is Go 1.19+ */
    r = expect(&o, -EBADMSG, "unknown event type 49");
    result_free(&r);
}

/* ---------------------------------------------------------------------------------------------
 * limits */

static void test_limits(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    size_t len;
    uint8_t *data = read_shared("go1.19_traceutils_staticcheck.trace", &len);
    struct cd_parse_limits lim;
    cd_parse_limits_default(&lim);
    struct result r;

    lim.max_input = len - 1;
    summarize(data, len, &lim, &r);
    assert_int_equal(r.rc, -EFBIG);
    assert_null(r.s.json);
    result_free(&r);

    /* a tiny memory budget: still a summary, with what was left out counted */
    cd_parse_limits_default(&lim);
    lim.max_memory = 16 << 10;
    summarize(data, len, &lim, &r);
    check_invariants(&r, len);
    assert_int_equal(r.rc, 0);
    json_t *dropped = json_object_get(r.s.json, "dropped");
    assert_true(json_integer_value(json_object_get(dropped, "strings")) > 0 ||
                json_integer_value(json_object_get(dropped, "ordered_events")) > 0);
    assert_int_equal(jint(r.s.json, "gc.count"), 80); /* counted without the ordered list */
    result_free(&r);

    /* one name per table, one row listed */
    cd_parse_limits_default(&lim);
    lim.max_groups = 1;
    lim.top_n = 1;
    summarize(data, len, &lim, &r);
    assert_int_equal(r.rc, 0);
    json_t *blocking = json_object_get(r.s.json, "blocking");
    assert_int_equal(json_object_size(blocking), 2); /* the one name and "(other)" */
    assert_true(json_integer_value(json_object_get(blocking, "(other)")) > 0);
    assert_true(jint(r.s.json, "dropped.names") > 0);
    result_free(&r);
    free(data);

    /* v2: goroutines tracked */
    data = read_shared("go1.22_conv_gc-stress.trace", &len);
    cd_parse_limits_default(&lim);
    lim.max_goroutines = 10;
    summarize(data, len, &lim, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(jint(r.s.json, "goroutines.at_start"), 10);
    assert_true(jint(r.s.json, "dropped.goroutines") > 0);
    result_free(&r);
    free(data);
}

/* The stable shape: every documented key, for both families. */
static void test_json_shape(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    static const char *const keys[] = {"go_version",
                                       "format",
                                       "partial",
                                       "bytes",
                                       "bytes_parsed",
                                       "frequency",
                                       "duration_ns",
                                       "wall_start_unix_ns",
                                       "events",
                                       "event_counts",
                                       "batches",
                                       "generations",
                                       "first_generation",
                                       "experimental_batches",
                                       "clock_snapshots",
                                       "strings",
                                       "stacks",
                                       "cpu_samples",
                                       "goroutines",
                                       "gc",
                                       "stw",
                                       "procs",
                                       "blocking",
                                       "stop_reasons",
                                       "syscalls",
                                       "user",
                                       "labels",
                                       "dropped"};
    static const char *const files[] = {"go1.19_gen_with_cpu.trace",
                                        "go1.25_traceutils_test-encoding-json.trace"};
    static const char *const series[] = {"duration_ns", "goroutines_max", "gc_count",
                                         "gc_total_ns", "stw_count",      "stw_total_ns",
                                         "syscalls",    "procs_max",      "cpu_samples"};
    for (size_t f = 0; f < 2; f++) {
        size_t len;
        uint8_t *data = read_shared(files[f], &len);
        struct result r;
        summarize(data, len, NULL, &r);
        assert_int_equal(r.rc, 0);
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            if (json_object_get(r.s.json, keys[k]) == NULL)
                fail_msg("%s: key %s missing", files[f], keys[k]);
        assert_int_equal(json_object_size(r.s.json), sizeof(keys) / sizeof(keys[0]));
        for (size_t k = 0; k < sizeof(series) / sizeof(series[0]); k++) {
            bool found = false;
            for (size_t i = 0; i < r.s.n_series; i++)
                found |= strcmp(r.s.series[i].name, series[k]) == 0;
            if (!found)
                fail_msg("%s: series %s missing", files[f], series[k]);
        }
        if (f == 1) {
            /* Go 1.25: wall clock from the ClockSnapshot (the trace is from 2025) */
            json_int_t wall = jint(r.s.json, "wall_start_unix_ns");
            assert_true(wall > 1735689600LL * 1000000000LL && wall < 1798761600LL * 1000000000LL);
        }
        result_free(&r);
        free(data);
    }
}

/* ---------------------------------------------------------------------------------------------
 * our own Go program */

static void check_names(json_t *facts, const char *fkey, json_t *list)
{
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(facts, fkey), name, v)
    {
        if (name_count(list, name) != json_integer_value(v))
            fail_msg("%s %s: got %lld, want %lld", fkey, name, (long long)name_count(list, name),
                     (long long)json_integer_value(v));
    }
}

static void test_generated(void **state)
{
    (void)state;
    char *dir = cdt_tmpdir("trace");
    char *out = cdt_path(dir, "gen.trace");
    char *factsp = cdt_path(dir, "gen.json");
    char *argv[] = {(char *)tracegen_bin, "-out", out, "-facts", factsp, NULL};
    int st = cdt_run(argv, NULL, 60000);
    assert_int_equal(st, 0);
    json_error_t jerr;
    json_t *facts = json_load_file(factsp, 0, &jerr);
    if (facts == NULL)
        fail_msg("facts: %s", jerr.text);
    uint8_t *data;
    size_t len;
    assert_int_equal(cdt_read_file(out, &data, &len), 0);
    assert_int_equal(len, jint(facts, "trace_bytes"));
    struct result r;
    summarize(data, len, NULL, &r);
    check_invariants(&r, len);
    if (r.rc != 0)
        fail_msg("%s", cd_err_msg(&r.err));
    json_t *j = r.s.json;
    json_t *user = json_object_get(j, "user");
    assert_string_equal(json_string_value(json_object_get(j, "format")), "v1");
    /* exactly what the program did */
    assert_int_equal(jint(j, "user.tasks"), jint(facts, "tasks"));
    assert_int_equal(jint(j, "user.tasks_ended"), jint(facts, "tasks"));
    assert_int_equal(jint(j, "user.regions"), jint(facts, "regions"));
    assert_int_equal(jint(j, "user.logs"), jint(facts, "logs"));
    check_names(facts, "task_names", json_object_get(user, "task_names"));
    check_names(facts, "region_names", json_object_get(user, "region_names"));
    check_names(facts, "log_keys", json_object_get(user, "log_keys"));
    assert_int_equal(jint(j, "procs.max"), jint(facts, "gomaxprocs_max"));
    /* at least what it did (the runtime adds its own) */
    json_int_t k = jint(facts, "goroutines");
    assert_true(jint(j, "goroutines.created") >= k);
    assert_true(jint(j, "goroutines.created") <= k + 16);
    assert_true(jint(j, "goroutines.ended") >= k - 1);
    assert_true(jint(j, "gc.count") >= jint(facts, "gcs"));
    assert_true(jint(j, "stw.count") >= 2 * jint(facts, "gcs"));
    assert_true(jint(j, "gc.total_ns") > 0);
    assert_true(jint(j, "syscalls.count") >= jint(facts, "syscalls"));
    assert_true(jint(j, "duration_ns") >= jint(facts, "min_duration_ns"));
    json_t *blocking = json_object_get(j, "blocking");
    assert_true(json_integer_value(json_object_get(blocking, "sleep")) >= jint(facts, "sleeps"));
    assert_true(json_integer_value(json_object_get(blocking, "chan receive")) >=
                jint(facts, "chan_waits"));
    result_free(&r);
    free(data);
    json_decref(facts);
    cdt_rmrf(dir);
    free(out);
    free(factsp);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_trace CD-TRACEGEN\n");
        return 2;
    }
    tracegen_bin = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_manifest_reference),
        cmocka_unit_test(test_fuzz_corpus),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_truncated_generations),
        cmocka_unit_test(test_crafted_v2),
        cmocka_unit_test(test_crafted_v1),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_json_shape),
        cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
