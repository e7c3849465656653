/*
 * gopsfmt — see gopsfmt.h for the contract and the summary's shape.
 *
 * Each reply is a handful of lines: they are read once with a line cursor and the values go
 * straight into the JSON document; nothing else is allocated.
 */
#include "gopsfmt.h"

#include "textscan.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOPS_MAX_LISTED_KEYS 64 /* unknown / approximate keys listed in a summary */

/* ---------------------------------------------------------------------------------------------
 * Go durations and times */

int cd_gopsfmt_parse_duration(const char *s, size_t len, int64_t *ns)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {
        {"ns", 1},           {"us", 1000},      {"\xc2\xb5s", 1000}, /* U+00B5 micro sign, what Go
                                                                        prints */
        {"\xce\xbcs", 1000}, /* U+03BC greek mu, which Go also accepts */
        {"ms", 1000000},     {"s", 1000000000}, {"m", 60000000000},  {"h", 3600000000000},
    };
    const char *p = s, *end = s + len;
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    if (end - p == 1 && *p == '0') {
        *ns = 0;
        return 0;
    }
    if (p == end)
        return -EINVAL;
    unsigned __int128 total = 0;
    while (p < end) {
        uint64_t whole = 0, frac = 0, scale = 1;
        bool digits = false;
        while (p < end && *p >= '0' && *p <= '9') {
            if (whole > (UINT64_MAX - 9) / 10)
                return -ERANGE;
            whole = whole * 10 + (uint64_t)(*p++ - '0');
            digits = true;
        }
        if (p < end && *p == '.') {
            p++;
            while (p < end && *p >= '0' && *p <= '9') {
                /* beyond 18 digits the nanoseconds cannot change: dropped, as Go does */
                if (scale < 1000000000000000000ULL) {
                    frac = frac * 10 + (uint64_t)(*p - '0');
                    scale *= 10;
                }
                p++;
                digits = true;
            }
        }
        if (!digits)
            return -EINVAL;
        size_t u = 0, best = SIZE_MAX, best_len = 0;
        for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
            size_t ul = strlen(units[u].unit);
            if ((size_t)(end - p) >= ul && memcmp(p, units[u].unit, ul) == 0 && ul > best_len) {
                best = u;
                best_len = ul;
            }
        }
        if (best == SIZE_MAX)
            return -EINVAL;
        p += best_len;
        unsigned __int128 v = (unsigned __int128)whole * units[best].ns +
                              (unsigned __int128)frac * units[best].ns / scale;
        total += v;
        if (total > (unsigned __int128)INT64_MAX + (neg ? 1 : 0))
            return -ERANGE;
    }
    if (neg)
        *ns = total == (unsigned __int128)INT64_MAX + 1 ? INT64_MIN : -(int64_t)total;
    else
        *ns = (int64_t)total;
    return 0;
}

static int digits_at(const char *p, const char *end, size_t n, int *out)
{
    if ((size_t)(end - p) < n)
        return -EINVAL;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EINVAL;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int cd_gopsfmt_parse_time(const char *s, size_t len, int64_t *unix_ns)
{
    const char *p = s, *end = s + len;
    int y, mo, d, h, mi, sec;
    /* 2006-01-02 15:04:05 */
    if (digits_at(p, end, 4, &y) || end - p < 19 || p[4] != '-' || digits_at(p + 5, end, 2, &mo) ||
        p[7] != '-' || digits_at(p + 8, end, 2, &d) || p[10] != ' ' ||
        digits_at(p + 11, end, 2, &h) || p[13] != ':' || digits_at(p + 14, end, 2, &mi) ||
        p[16] != ':' || digits_at(p + 17, end, 2, &sec))
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    p += 19;
    int64_t frac = 0;
    if (p < end && *p == '.') {
        p++;
        int n = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (n < 9) {
                frac = frac * 10 + (*p - '0');
                n++;
            }
            p++;
        }
        if (n == 0)
            return -EINVAL;
        while (n++ < 9)
            frac *= 10;
    }
    /* " -0700" */
    int oh, om;
    if (end - p < 6 || p[0] != ' ' || (p[1] != '+' && p[1] != '-') ||
        digits_at(p + 2, end, 2, &oh) || digits_at(p + 4, end, 2, &om))
        return -EINVAL;
    int64_t offset = (int64_t)(oh * 3600 + om * 60) * (p[1] == '-' ? -1 : 1);
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    if (secs > INT64_MAX / 1000000000 - 1 || secs < INT64_MIN / 1000000000 + 1)
        return -ERANGE;
    *unix_ns = secs * 1000000000 + frac;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Values */

/* "66.31KB (67904 bytes)", "512 bytes", "357": the exact integer. *approx when only "1.50MB". */
static int parse_bytes(const char *v, size_t n, int64_t *out, bool *approx)
{
    *approx = false;
    const char *open = memchr(v, '(', n);
    if (open != NULL) {
        const char *num = open + 1;
        const char *sp = memchr(num, ' ', (size_t)(v + n - num));
        if (sp != NULL && cd_textscan_starts(sp, (size_t)(v + n - sp), " bytes)"))
            return cd_textscan_i64(num, (size_t)(sp - num), out);
    }
    if (n > 6 && memcmp(v + n - 6, " bytes", 6) == 0)
        return cd_textscan_i64(v, n - 6, out);
    if (cd_textscan_i64(v, n, out) == 0)
        return 0;
    static const struct {
        const char *unit;
        double mult;
    } units[] = {{"KB", 1024.0},
                 {"MB", 1048576.0},
                 {"GB", 1073741824.0},
                 {"TB", 1099511627776.0},
                 {"PB", 1125899906842624.0}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (n > 2 && memcmp(v + n - 2, units[i].unit, 2) == 0) {
            char num[64];
            if (n - 2 >= sizeof(num))
                return -EINVAL;
            memcpy(num, v, n - 2);
            num[n - 2] = '\0';
            char *e = NULL;
            double x = strtod(num, &e);
            if (e == num || *e != '\0' || !isfinite(x) || x < 0 || x * units[i].mult > 9e18)
                return -EINVAL;
            *out = (int64_t)llround(x * units[i].mult);
            *approx = true;
            return 0;
        }
    }
    return -EINVAL;
}

static int parse_double(const char *v, size_t n, double *out)
{
    char num[64];
    if (n == 0 || n >= sizeof(num))
        return -EINVAL;
    memcpy(num, v, n);
    num[n] = '\0';
    char *e = NULL;
    double x = strtod(num, &e);
    if (e == num || *e != '\0' || !isfinite(x))
        return -EINVAL;
    *out = x;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * memstats */

enum mkind { M_BYTES, M_INT, M_NEXT_GC, M_DURATION, M_GC_PAUSE, M_FLOAT, M_TIME, M_END_NS, M_BOOL };

/* Which agent versions write a key: v0.3.2-or-older never writes the stack-mspan-* names nor
 * other-sys/gc-sys; v0.3.3-v0.3.28 write stack-mspan-*; HEAD writes mspan-* and buck-hash-sys. */
enum { ERA_ANY = 0, ERA_033 = 1, ERA_HEAD = 2, ERA_033_UP = 4 };

static const struct {
    const char *key;
    const char *name;
    enum mkind kind;
    int era;
} mkeys[] = {
    {"alloc", "alloc", M_BYTES, ERA_ANY},
    {"total-alloc", "total_alloc", M_BYTES, ERA_ANY},
    {"sys", "sys", M_BYTES, ERA_ANY},
    {"lookups", "lookups", M_INT, ERA_ANY},
    {"mallocs", "mallocs", M_INT, ERA_ANY},
    {"frees", "frees", M_INT, ERA_ANY},
    {"heap-alloc", "heap_alloc", M_BYTES, ERA_ANY},
    {"heap-sys", "heap_sys", M_BYTES, ERA_ANY},
    {"heap-idle", "heap_idle", M_BYTES, ERA_ANY},
    {"heap-in-use", "heap_inuse", M_BYTES, ERA_ANY},
    {"heap-released", "heap_released", M_BYTES, ERA_ANY},
    {"heap-objects", "heap_objects", M_INT, ERA_ANY},
    {"stack-in-use", "stack_inuse", M_BYTES, ERA_ANY},
    {"stack-sys", "stack_sys", M_BYTES, ERA_ANY},
    {"stack-mspan-inuse", "mspan_inuse", M_BYTES, ERA_033},
    {"stack-mspan-sys", "mspan_sys", M_BYTES, ERA_033},
    {"stack-mcache-inuse", "mcache_inuse", M_BYTES, ERA_033},
    {"stack-mcache-sys", "mcache_sys", M_BYTES, ERA_033},
    {"mspan-in-use", "mspan_inuse", M_BYTES, ERA_HEAD},
    {"mspan-sys", "mspan_sys", M_BYTES, ERA_HEAD},
    {"mcache-in-use", "mcache_inuse", M_BYTES, ERA_HEAD},
    {"mcache-sys", "mcache_sys", M_BYTES, ERA_HEAD},
    {"buck-hash-sys", "buck_hash_sys", M_BYTES, ERA_HEAD},
    {"other-sys", "other_sys", M_BYTES, ERA_033_UP},
    {"gc-sys", "gc_sys", M_BYTES, ERA_033_UP},
    {"next-gc", "next_gc", M_NEXT_GC, ERA_ANY},
    {"last-gc", NULL, M_TIME, ERA_ANY},
    {"gc-pause-total", "gc_pause_total_ns", M_DURATION, ERA_033_UP},
    {"gc-pause", NULL, M_GC_PAUSE, ERA_ANY},
    {"gc-pause-end", NULL, M_END_NS, ERA_033_UP},
    {"num-gc", "num_gc", M_INT, ERA_ANY},
    {"num-forced-gc", "num_forced_gc", M_INT, ERA_033_UP},
    {"gc-cpu-fraction", "gc_cpu_fraction", M_FLOAT, ERA_033_UP},
    {"enable-gc", "enable_gc", M_BOOL, ERA_ANY},
    {"debug-gc", "debug_gc", M_BOOL, ERA_ANY},
};

struct cd_gopsfmt {
    json_t *root;
    json_t *unknown;
    json_t *approx;
    size_t unparsed;
    int bad;
};

static void list_key(struct cd_gopsfmt *d, json_t *arr, const char *k, size_t n)
{
    if (json_array_size(arr) < GOPS_MAX_LISTED_KEYS)
        d->bad |= cd_textscan_jpush(arr, cd_textscan_json_str(k, n));
}

static int memstats_line(struct cd_gopsfmt *d, json_t *ms, const char *k, size_t kn, const char *v,
                         size_t vn, bool *has_total, int *era_seen, size_t *known)
{
    size_t i;
    for (i = 0; i < sizeof(mkeys) / sizeof(mkeys[0]); i++)
        if (strlen(mkeys[i].key) == kn && memcmp(mkeys[i].key, k, kn) == 0)
            break;
    if (i == sizeof(mkeys) / sizeof(mkeys[0])) {
        list_key(d, d->unknown, k, kn);
        return 0;
    }
    (*known)++;
    *era_seen |= mkeys[i].era;
    int64_t n = 0;
    bool approx = false;
    int rc = 0;
    enum mkind kind = mkeys[i].kind;
    if (kind == M_NEXT_GC) {
        /* "when heap-alloc >= 4.00MB (4194304 bytes)" */
        const char *ge = memmem(v, vn, ">= ", 3);
        if (ge != NULL) {
            vn -= (size_t)(ge + 3 - v);
            v = ge + 3;
        }
        kind = M_BYTES;
    }
    switch (kind) {
    case M_BYTES:
    case M_INT:
        rc = kind == M_BYTES ? parse_bytes(v, vn, &n, &approx) : cd_textscan_i64(v, vn, &n);
        if (rc == 0)
            d->bad |= cd_textscan_jset(ms, mkeys[i].name, json_integer(n));
        break;
    case M_DURATION:
        rc = cd_gopsfmt_parse_duration(v, vn, &n);
        if (rc == 0) {
            d->bad |= cd_textscan_jset(ms, mkeys[i].name, json_integer(n));
            *has_total = true;
        }
        break;
    case M_GC_PAUSE:
        /* v0.3.3+: the last pause in ns; older: the total pause as a duration string */
        if (cd_textscan_i64(v, vn, &n) == 0) {
            d->bad |= cd_textscan_jset(ms, "gc_pause_last_ns", json_integer(n));
        } else {
            rc = cd_gopsfmt_parse_duration(v, vn, &n);
            if (rc == 0 && !*has_total)
                d->bad |= cd_textscan_jset(ms, "gc_pause_total_ns", json_integer(n));
        }
        break;
    case M_FLOAT: {
        double x;
        rc = parse_double(v, vn, &x);
        if (rc == 0)
            d->bad |= cd_textscan_jset(ms, mkeys[i].name, json_real(x));
        break;
    }
    case M_TIME:
        if (vn == 1 && v[0] == '-') {
            d->bad |= cd_textscan_jset(d->root, "last_gc", json_null());
        } else {
            d->bad |= cd_textscan_jset(d->root, "last_gc", cd_textscan_json_str(v, vn));
            if (cd_gopsfmt_parse_time(v, vn, &n) == 0)
                d->bad |= cd_textscan_jset(d->root, "last_gc_unix_ns", json_integer(n));
        }
        break;
    case M_END_NS:
        rc = cd_textscan_i64(v, vn, &n);
        if (rc == 0)
            d->bad |= cd_textscan_jset(d->root, "gc_pause_end_unix_ns", json_integer(n));
        break;
    case M_NEXT_GC:
        break; /* read as M_BYTES above */
    case M_BOOL:
        if (vn == 4 && memcmp(v, "true", 4) == 0)
            d->bad |= cd_textscan_jset(d->root, mkeys[i].name, json_true());
        else if (vn == 5 && memcmp(v, "false", 5) == 0)
            d->bad |= cd_textscan_jset(d->root, mkeys[i].name, json_false());
        else
            rc = -EINVAL;
        break;
    }
    if (rc < 0)
        d->unparsed++;
    else if (approx)
        list_key(d, d->approx, k, kn);
    return 0;
}

/* Splits "key: value" (value trimmed); false when there is no ": ". */
static bool split_kv(const char *line, size_t len, const char **k, size_t *kn, const char **v,
                     size_t *vn)
{
    const char *c = memmem(line, len, ": ", 2);
    if (c == NULL) {
        if (len > 0 && line[len - 1] == ':')
            c = line + len - 1; /* "key:" with an empty value */
        else
            return false;
    }
    *k = line;
    *kn = (size_t)(c - line);
    *v = c + 1;
    *vn = (size_t)(line + len - *v);
    cd_textscan_trim(k, kn);
    cd_textscan_trim(v, vn);
    return *kn > 0;
}

static const char *agent_version(int era)
{
    if (era & ERA_HEAD)
        return "head";
    if (era & (ERA_033 | ERA_033_UP))
        return "v0.3.3-v0.3.28";
    return "v0.3.2-or-older";
}

static int read_memstats(struct cd_gopsfmt *d, const char *data, size_t len, struct cd_err *err)
{
    json_t *ms = json_object();
    d->bad |= cd_textscan_jset(d->root, "memstats", ms);
    static const char *const nullable[] = {"last_gc", "last_gc_unix_ns", "gc_pause_end_unix_ns",
                                           "enable_gc", "debug_gc"};
    for (size_t i = 0; i < sizeof(nullable) / sizeof(nullable[0]); i++)
        d->bad |= cd_textscan_jset(d->root, nullable[i], json_null());
    if (d->bad)
        return -ENOMEM;
    struct cd_textscan sc;
    cd_textscan_init(&sc, data, len);
    const char *line, *k, *v;
    size_t n, kn, vn, known = 0;
    bool has_total = false;
    int era = 0;
    while (cd_textscan_line(&sc, &line, &n)) {
        if (n == 0)
            continue;
        if (!split_kv(line, n, &k, &kn, &v, &vn)) {
            d->unparsed++;
            continue;
        }
        memstats_line(d, ms, k, kn, v, vn, &has_total, &era, &known);
    }
    if (known == 0)
        return cd_err_set(err, -EBADMSG, "gops memstats: no known key in %zu lines", sc.line_no);
    d->bad |= cd_textscan_jset(d->root, "agent_version", json_string(agent_version(era)));
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * stats and version */

static int read_stats(struct cd_gopsfmt *d, const char *data, size_t len, struct cd_err *err)
{
    static const struct {
        const char *key;
        const char *name;
    } keys[] = {{"goroutines", "goroutines"},
                {"OS threads", "threads"},
                {"GOMAXPROCS", "gomaxprocs"},
                {"num CPU", "num_cpu"}};
    for (size_t i = 0; i < 4; i++)
        d->bad |= cd_textscan_jset(d->root, keys[i].name, json_null());
    struct cd_textscan sc;
    cd_textscan_init(&sc, data, len);
    const char *line, *k, *v;
    size_t n, kn, vn, known = 0;
    while (cd_textscan_line(&sc, &line, &n)) {
        if (n == 0)
            continue;
        if (!split_kv(line, n, &k, &kn, &v, &vn)) {
            d->unparsed++;
            continue;
        }
        size_t i;
        for (i = 0; i < 4; i++)
            if (strlen(keys[i].key) == kn && memcmp(keys[i].key, k, kn) == 0)
                break;
        if (i == 4) {
            list_key(d, d->unknown, k, kn);
            continue;
        }
        int64_t x;
        if (cd_textscan_i64(v, vn, &x) < 0) {
            d->unparsed++;
            continue;
        }
        d->bad |= cd_textscan_jset(d->root, keys[i].name, json_integer(x));
        known++;
    }
    if (known == 0)
        return cd_err_set(err, -EBADMSG, "gops stats: no known key in %zu lines", sc.line_no);
    return 0;
}

static int read_version(struct cd_gopsfmt *d, const char *data, size_t len, struct cd_err *err)
{
    struct cd_textscan sc;
    cd_textscan_init(&sc, data, len);
    const char *line = NULL;
    size_t n = 0;
    while (cd_textscan_line(&sc, &line, &n) && n == 0) {
    }
    cd_textscan_trim(&line, &n);
    if (line == NULL || n == 0)
        return cd_err_set(err, -EBADMSG, "gops version: empty reply");
    d->bad |= cd_textscan_jset(d->root, "version", cd_textscan_json_str(line, n));
    d->bad |=
        cd_textscan_jset(d->root, "devel", json_boolean(cd_textscan_starts(line, n, "devel")));
    json_t *major = json_null(), *minor = json_null(), *patch = json_null();
    const char *go = memmem(line, n, "go1", 3);
    if (go != NULL) {
        const char *p = go + 2, *end = line + n;
        uint64_t v[3];
        int got = 0;
        while (got < 3 && p < end && *p >= '0' && *p <= '9') {
            const char *q = p;
            while (q < end && *q >= '0' && *q <= '9')
                q++;
            if (cd_textscan_u64(p, (size_t)(q - p), &v[got]) < 0 || v[got] > INT32_MAX)
                break;
            got++;
            /* "rc1", " X:boringcrypto", "-abcdef" after a number end the version */
            if (q >= end || *q != '.')
                break;
            p = q + 1;
        }
        if (got >= 1) {
            json_decref(major);
            major = json_integer((json_int_t)v[0]);
        }
        if (got >= 2) {
            json_decref(minor);
            minor = json_integer((json_int_t)v[1]);
        }
        if (got >= 3) {
            json_decref(patch);
            patch = json_integer((json_int_t)v[2]);
        }
    }
    d->bad |= cd_textscan_jset(d->root, "major", major);
    d->bad |= cd_textscan_jset(d->root, "minor", minor);
    d->bad |= cd_textscan_jset(d->root, "patch", patch);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Entry points */

enum cd_format cd_gopsfmt_sniff(const uint8_t *data, size_t len)
{
    const char *s = (const char *)data;
    if (cd_textscan_starts(s, len, "alloc: "))
        return CD_FORMAT_GOPS_MEMSTATS;
    if (cd_textscan_starts(s, len, "goroutines: "))
        return CD_FORMAT_GOPS_STATS;
    if (len < 256 && ((len > 3 && s[0] == 'g' && s[1] == 'o' && s[2] >= '0' && s[2] <= '9') ||
                      cd_textscan_starts(s, len, "devel "))) {
        /* one line, then nothing but whitespace */
        const char *nl = memchr(s, '\n', len);
        size_t i = nl ? (size_t)(nl - s) : len;
        while (i < len && (s[i] == '\n' || s[i] == '\r' || s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == len)
            return CD_FORMAT_GOPS_VERSION;
    }
    return CD_FORMAT_UNKNOWN;
}

static int add_series(json_t *obj, struct cd_summary *out)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (json_is_number(v) && cd_summary_add_series(out, key, json_number_value(v)) < 0)
            return -ENOMEM;
    }
    return 0;
}

int cd_gopsfmt_summarize(enum cd_format fmt, const uint8_t *data, size_t len,
                         const struct cd_parse_limits *lim, struct cd_summary *out,
                         struct cd_err *err)
{
    struct cd_parse_limits dflt;
    lim = cd_textscan_limits(lim, &dflt);
    struct cd_gopsfmt d = {0};
    struct cd_summary sum;
    cd_summary_init(&sum);
    int rc = 0;
    if (len > lim->max_input) {
        rc = cd_err_set(err, -EFBIG, "gops: input of %zu bytes exceeds the limit of %zu bytes", len,
                        lim->max_input);
        goto fail;
    }
    if (fmt == CD_FORMAT_UNKNOWN)
        fmt = cd_gopsfmt_sniff(data, len);
    d.root = json_object();
    d.unknown = json_array();
    d.approx = json_array();
    if (d.root == NULL || d.unknown == NULL || d.approx == NULL) {
        rc = cd_err_set(err, -ENOMEM, "gops: out of memory");
        goto fail;
    }
    const char *text = (const char *)data;
    switch (fmt) {
    case CD_FORMAT_GOPS_MEMSTATS:
        rc = read_memstats(&d, text, len, err);
        if (rc == 0) {
            d.bad |= cd_textscan_jset(d.root, "unknown_keys", json_incref(d.unknown));
            d.bad |= cd_textscan_jset(d.root, "approximate_keys", json_incref(d.approx));
            if (!d.bad)
                rc = add_series(json_object_get(d.root, "memstats"), &sum);
        }
        break;
    case CD_FORMAT_GOPS_STATS:
        rc = read_stats(&d, text, len, err);
        if (rc == 0) {
            d.bad |= cd_textscan_jset(d.root, "unknown_keys", json_incref(d.unknown));
            if (!d.bad)
                rc = add_series(d.root, &sum);
        }
        break;
    case CD_FORMAT_GOPS_VERSION:
        rc = read_version(&d, text, len, err);
        if (rc == 0) {
            json_t *minor = json_object_get(d.root, "minor");
            if (json_is_integer(minor))
                rc = cd_summary_add_series(&sum, "go_minor", (double)json_integer_value(minor));
        }
        break;
    default:
        rc = cd_err_set(err, len ? -EBADMSG : -EINVAL,
                        len ? "gops: not a memstats, stats or version reply"
                            : "gops: empty reply (an unknown command, or the agent failed)");
        goto fail;
    }
    if (rc < 0) {
        if (rc == -ENOMEM)
            cd_err_set(err, rc, "gops: out of memory");
        goto fail;
    }
    if (fmt != CD_FORMAT_GOPS_VERSION)
        d.bad |= cd_textscan_jset(d.root, "unparsed_lines", json_integer((json_int_t)d.unparsed));
    if (d.bad) {
        rc = cd_err_set(err, -ENOMEM, "gops: out of memory building the summary");
        goto fail;
    }
    cd_textscan_publish(out, &sum, fmt, &d.root);
fail:
    cd_summary_free(&sum);
    json_decref(d.root);
    json_decref(d.unknown);
    json_decref(d.approx);
    return rc;
}
