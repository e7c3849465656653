/* render — see render.h. */
#include "ctl/render.h"

#include "ctl/table.h"
#include "str.h"
#include "units.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Labels of "label  value" lines are padded to this many columns. */
#define LABEL_W 13
/* Generic members: JSON longer than this is cut (-o json shows all). */
#define JSON_CUTOFF 400
/* Names listed inline ("chan receive 12, sync 3, ...") before "and N more". */
#define INLINE_MAX 8

void cd_render_opts_default(struct cd_render_opts *o)
{
    o->width = 80;
    o->top_n = 20;
    o->sample_type = NULL;
    o->cum = false;
    o->now_ms = 0;
}

/* ---- members ---------------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool jnum(const json_t *o, const char *key, double *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

static double jnum_or(const json_t *o, const char *key, double def)
{
    double v;
    return jnum(o, key, &v) ? v : def;
}

static bool in_list(const char *key, const char *const *list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcmp(key, list[i]) == 0)
            return true;
    }
    return false;
}

/* ---- times, numbers, units ------------------------------------------------------------------ */

char *cd_render_time(char *dst, size_t size, int64_t unix_ms, int64_t now_ms)
{
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    char when[64] = "?";
    if (localtime_r(&secs, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
    char ago[32];
    cd_units_fmt_ago(ago, sizeof(ago), unix_ms, now_ms);
    snprintf(dst, size, "%s (%s)", when, ago);
    return dst;
}

char *cd_render_ago(char *dst, size_t size, int64_t unix_ms, int64_t now_ms)
{
    return cd_units_fmt_ago(dst, size, unix_ms, now_ms);
}

char *cd_render_clock(char *dst, size_t size, int64_t unix_ms, int64_t now_ms)
{
    time_t secs = (time_t)(unix_ms / 1000), now = (time_t)(now_ms / 1000);
    struct tm tm, tn;
    if (localtime_r(&secs, &tm) == NULL || localtime_r(&now, &tn) == NULL) {
        snprintf(dst, size, "?");
        return dst;
    }
    bool today = tm.tm_year == tn.tm_year && tm.tm_yday == tn.tm_yday;
    strftime(dst, size, today ? "%H:%M:%S" : "%b %d %H:%M", &tm);
    return dst;
}

static char *fmt_number(char *dst, size_t size, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(dst, size, "%.0f", v);
    else
        snprintf(dst, size, "%.4g", v);
    return dst;
}

char *cd_render_ns(char *dst, size_t size, double ns)
{
    double a = fabs(ns);
    if (a == 0)
        snprintf(dst, size, "0");
    else if (a >= 60e9)
        cd_units_fmt_duration(dst, size, (int64_t)(ns / 1e6));
    else if (a >= 1e9)
        snprintf(dst, size, "%.3gs", ns / 1e9);
    else if (a >= 1e6)
        snprintf(dst, size, "%.3gms", ns / 1e6);
    else if (a >= 1e3)
        snprintf(dst, size, "%.3gus", ns / 1e3);
    else
        snprintf(dst, size, "%.0fns", ns);
    return dst;
}

static char *fmt_bytes(char *dst, size_t size, double v)
{
    if (v < 0) {
        char tmp[32];
        cd_units_fmt_size(tmp, sizeof(tmp), (uint64_t)(-v));
        snprintf(dst, size, "-%s", tmp);
        return dst;
    }
    return cd_units_fmt_size(dst, size, (uint64_t)v);
}

/* Whole minutes as Go prints them: "3m", "2h5m". */
static char *fmt_minutes(char *dst, size_t size, double minutes)
{
    return cd_units_fmt_duration(dst, size, (int64_t)minutes * 60000);
}

/* "s" unless n is one. */
static const char *plural(double n)
{
    return n == 1 ? "" : "s";
}

char *cd_render_value(char *dst, size_t size, const char *key, const json_t *v, int64_t now_ms)
{
    if (json_is_string(v)) {
        char *clean = cd_table_sanitize(json_string_value(v));
        snprintf(dst, size, "%s", clean != NULL ? clean : "?");
        free(clean);
        return dst;
    }
    if (json_is_boolean(v)) {
        snprintf(dst, size, "%s", json_is_true(v) ? "yes" : "no");
        return dst;
    }
    if (v == NULL || json_is_null(v)) {
        snprintf(dst, size, "-");
        return dst;
    }
    if (!json_is_number(v)) {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        char *clean = cd_table_sanitize(text);
        snprintf(dst, size, "%s", clean != NULL ? clean : "?");
        free(clean);
        free(text);
        return dst;
    }
    double d = json_number_value(v);
    if (key == NULL)
        return fmt_number(dst, size, d);
    if (cd_str_has_suffix(key, "_unix_ms"))
        return cd_render_time(dst, size, (int64_t)d, now_ms);
    if (cd_str_has_suffix(key, "_unix_ns") || strcmp(key, "time_ns") == 0)
        return cd_render_time(dst, size, (int64_t)(d / 1e6), now_ms);
    if (cd_str_has_suffix(key, "_bytes"))
        return fmt_bytes(dst, size, d);
    if (cd_str_has_suffix(key, "_ns"))
        return cd_render_ns(dst, size, d);
    if (cd_str_has_suffix(key, "_us"))
        return cd_render_ns(dst, size, d * 1e3);
    if (cd_str_has_suffix(key, "_ms"))
        return cd_render_ns(dst, size, d * 1e6);
    if (cd_str_has_suffix(key, "_seconds") || strcmp(key, "seconds") == 0)
        return cd_render_ns(dst, size, d * 1e9);
    if (cd_str_has_suffix(key, "_pct") || cd_str_has_suffix(key, "_percent")) {
        snprintf(dst, size, "%.1f%%", d);
        return dst;
    }
    return fmt_number(dst, size, d);
}

/* A value in a profile's unit. */
static char *fmt_unit(char *dst, size_t size, double v, const char *unit)
{
    if (unit != NULL && (strcmp(unit, "nanoseconds") == 0 || strcmp(unit, "ns") == 0))
        return cd_render_ns(dst, size, v);
    if (unit != NULL && strcmp(unit, "microseconds") == 0)
        return cd_render_ns(dst, size, v * 1e3);
    if (unit != NULL && strcmp(unit, "milliseconds") == 0)
        return cd_render_ns(dst, size, v * 1e6);
    if (unit != NULL && strcmp(unit, "seconds") == 0)
        return cd_render_ns(dst, size, v * 1e9);
    if (unit != NULL && (strcmp(unit, "bytes") == 0 || strcmp(unit, "byte") == 0))
        return fmt_bytes(dst, size, v);
    return fmt_number(dst, size, v);
}

/* ---- text layout ---------------------------------------------------------------------------- */

void cd_render_wrapped(FILE *f, const char *first, const char *cont, const char *text, int width)
{
    const char *prefix = first;
    const char *p = text;
    if (*p == '\0')
        fprintf(f, "%s\n", first);
    while (*p != '\0') {
        int room = width - (int)strlen(prefix);
        if (room < 20)
            room = 20;
        size_t take = strlen(p);
        if ((int)cd_table_width(p) > room) {
            /* up to the last space within room code points, else room code points */
            size_t cut = 0, cps = 0, last_space = 0;
            while (p[cut] != '\0' && (int)cps < room) {
                cut++;
                while ((p[cut] & 0xc0) == 0x80)
                    cut++;
                cps++;
                if (p[cut] == ' ')
                    last_space = cut;
            }
            take = last_space > 0 ? last_space : cut;
        }
        fprintf(f, "%s%.*s\n", prefix, (int)take, p);
        p += take;
        while (*p == ' ')
            p++;
        prefix = cont;
    }
}

/* "label       value", the value sanitized and wrapped under itself. */
static void kv(FILE *f, const struct cd_render_opts *o, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void kv(FILE *f, const struct cd_render_opts *o, const char *label, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char *clean = cd_table_sanitize(buf);
    char first[64], cont[64];
    snprintf(first, sizeof(first), "%-*s ", LABEL_W, label);
    snprintf(cont, sizeof(cont), "%*s", LABEL_W + 1, "");
    cd_render_wrapped(f, first, cont, clean != NULL ? clean : "?", o->width);
    free(clean);
}

/* A section heading above a table: its text wrapped, ending in ':' when the caller says so. */
static void heading(FILE *f, const struct cd_render_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void heading(FILE *f, const struct cd_render_opts *o, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char *clean = cd_table_sanitize(buf);
    cd_render_wrapped(f, "", "  ", clean != NULL ? clean : "?", o->width);
    free(clean);
}

/* A growing "a 1, b 2, c 3" list in a fixed buffer. */
struct list {
    char buf[1024];
    size_t len;
    size_t items;
};

static void list_add(struct list *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void list_add(struct list *l, const char *fmt, ...)
{
    if (l->len >= sizeof(l->buf) - 1)
        return;
    if (l->items > 0)
        l->len += (size_t)snprintf(l->buf + l->len, sizeof(l->buf) - l->len, ", ");
    if (l->len >= sizeof(l->buf) - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n;
    if (l->len > sizeof(l->buf) - 1)
        l->len = sizeof(l->buf) - 1;
    l->items++;
}

/* ---- generic members --------------------------------------------------------------------------
 */

/* Writes at most n code points of s; returns how many bytes that took. */
static size_t put_cps(FILE *f, const char *s, size_t n)
{
    size_t i = 0;
    while (s[i] != '\0' && n > 0) {
        i++;
        while ((s[i] & 0xc0) == 0x80)
            i++;
        n--;
    }
    fwrite(s, 1, i, f);
    return i;
}

/* Compact JSON, hard-wrapped to the width under the label, cut after JSON_CUTOFF bytes. */
static void print_json_cut(FILE *f, const json_t *v, int indent, int width)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *clean = cd_table_sanitize(text);
    free(text);
    if (clean == NULL)
        return;
    size_t n = strlen(clean);
    size_t shown = n > JSON_CUTOFF ? JSON_CUTOFF : n;
    while (shown < n && (clean[shown] & 0xc0) == 0x80)
        shown++;
    clean[shown] = '\0';
    int room = width - indent - 2;
    if (room < 20)
        room = 20;
    const char *p = clean;
    while (*p != '\0') {
        fprintf(f, "%*s", indent + 2, "");
        p += put_cps(f, p, (size_t)room);
        fputc('\n', f);
    }
    if (shown < n)
        fprintf(f, "%*s… %zu more bytes; -o json shows all\n", indent + 2, "", n - shown);
    free(clean);
}

static bool all_scalars(const json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (json_is_object(v) || json_is_array(v))
            return false;
    }
    return true;
}

/* One line per element for a short array of flat objects: "- key: value, key: value". */
static bool print_object_list(FILE *f, const json_t *a, int indent,
                              const struct cd_render_opts *opt)
{
    size_t n = json_array_size(a);
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(a, i);
        if (!json_is_object(e) || json_object_size(e) > 8 || !all_scalars(e))
            return false;
    }
    for (size_t i = 0; i < n; i++) {
        struct list l = {.len = 0};
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)json_array_get(a, i), k, v)
        {
            char val[256];
            cd_render_value(val, sizeof(val), k, v, opt->now_ms);
            list_add(&l, "%s: %s", k, val);
        }
        char *clean = cd_table_sanitize(l.buf);
        char first[32], cont[32];
        snprintf(first, sizeof(first), "%*s- ", indent + 2, "");
        snprintf(cont, sizeof(cont), "%*s", indent + 4, "");
        cd_render_wrapped(f, first, cont, clean != NULL ? clean : "?", opt->width);
        free(clean);
    }
    return true;
}

/* Members as "key: value" lines; nested objects indented, anything else as JSON. */
static void print_fields(FILE *f, const json_t *o, const char *const *skip, int indent,
                         const struct cd_render_opts *opt)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (in_list(k, skip))
            continue;
        /* An RFC 3339 twin says what its _unix_ms sibling says, in UTC. */
        char twin[160];
        snprintf(twin, sizeof(twin), "%s_unix_ms", k);
        if (json_is_string(v) && json_object_get(o, twin) != NULL)
            continue;
        char *key = cd_table_sanitize(k);
        char label[160];
        snprintf(label, sizeof(label), "%s", key != NULL ? key : "?");
        if (cd_str_has_suffix(label, "_unix_ms"))
            label[strlen(label) - strlen("_unix_ms")] = '\0';
        free(key);
        if (json_is_object(v) && json_object_size(v) > 0 && all_scalars(v) && indent < 8) {
            fprintf(f, "%*s%s:\n", indent, "", label);
            print_fields(f, v, NULL, indent + 2, opt);
        } else if ((json_is_object(v) || json_is_array(v)) && json_array_size(v) == 0 &&
                   json_object_size(v) == 0) {
            fprintf(f, "%*s%s: %s\n", indent, "", label, json_is_array(v) ? "[]" : "{}");
        } else if (json_is_object(v) || json_is_array(v)) {
            fprintf(f, "%*s%s:\n", indent, "", label);
            if (!json_is_array(v) || !print_object_list(f, v, indent, opt))
                print_json_cut(f, v, indent, opt->width);
        } else {
            char val[512], first[200], cont[32];
            cd_render_value(val, sizeof(val), k, v, opt->now_ms);
            snprintf(first, sizeof(first), "%*s%s: ", indent, "", label);
            snprintf(cont, sizeof(cont), "%*s", indent + 4, "");
            cd_render_wrapped(f, first, cont, val, opt->width);
        }
    }
}

/* The members of s that a layout did not print (known: the ones it did), under a heading. */
static void print_rest(FILE *f, const json_t *s, const char *const *known,
                       const struct cd_render_opts *o)
{
    const char *k;
    json_t *v;
    bool any = false;
    json_object_foreach((json_t *)s, k, v)
    {
        if (!in_list(k, known))
            any = true;
    }
    if (!any)
        return;
    fprintf(f, "\nmore (members this collectorctl has no layout for):\n");
    print_fields(f, s, known, 2, o);
}

/* ---- pprof ------------------------------------------------------------------------------------
 */

static const char *const k_pprof_known[] = {"encoding",
                                            "bytes",
                                            "decompressed_bytes",
                                            "sample_types",
                                            "default_sample_type",
                                            "default_index",
                                            "period_type",
                                            "period",
                                            "time_ns",
                                            "duration_ns",
                                            "counts",
                                            "main_binary",
                                            "label_keys",
                                            "drop_frames",
                                            "keep_frames",
                                            "comments",
                                            "doc_url",
                                            "symbolized",
                                            "truncated_stacks",
                                            NULL};

/* The index of the sample type go tool pprof shows by default. */
static size_t pprof_default_index(const json_t *s)
{
    const json_t *types = json_object_get(s, "sample_types");
    size_t n = json_array_size(types);
    double d;
    if (jnum(s, "default_index", &d) && d >= 0 && (size_t)d < n)
        return (size_t)d;
    return n > 0 ? n - 1 : 0;
}

static void pprof_header(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    const json_t *types = json_object_get(s, "sample_types");
    size_t ntypes = json_array_size(types);
    size_t def = pprof_default_index(s);
    char a[96], b[96];
    struct list l = {.len = 0};
    for (size_t i = 0; i < ntypes; i++) {
        const json_t *t = json_array_get(types, i);
        const char *type = jstr(t, "type");
        list_add(&l, "%s %s", type != NULL && *type ? type : "(unnamed)",
                 fmt_unit(a, sizeof(a), jnum_or(t, "total", 0), jstr(t, "unit")));
    }
    if (ntypes > 0)
        kv(f, o, "sample types", "%s", l.buf);
    double v;
    if (jnum(s, "time_ns", &v) && v > 0)
        kv(f, o, "time", "%s", cd_render_time(a, sizeof(a), (int64_t)(v / 1e6), o->now_ms));
    const json_t *pt = json_object_get(s, "period_type");
    double dur = 0;
    if (jnum(s, "duration_ns", &dur) && dur > 0) {
        /* go tool pprof's "Total samples = 1.58s (30.67%)": CPU time per wall time. */
        const json_t *dt = json_array_get(types, def);
        const char *unit = jstr(dt, "unit");
        const char *ptype = jstr(pt, "type");
        double cpu = jnum_or(dt, "total", 0);
        if (ptype != NULL && strcmp(ptype, "cpu") == 0 && unit != NULL &&
            strcmp(unit, "nanoseconds") == 0 && cpu == 0)
            kv(f, o, "duration", "%s, no CPU time sampled", cd_render_ns(a, sizeof(a), dur));
        else if (ptype != NULL && strcmp(ptype, "cpu") == 0 && unit != NULL &&
                 strcmp(unit, "nanoseconds") == 0)
            kv(f, o, "duration", "%s, %s of CPU time (%.1f%% of one core)",
               cd_render_ns(a, sizeof(a), dur), cd_render_ns(b, sizeof(b), cpu), cpu * 100 / dur);
        else
            kv(f, o, "duration", "%s", cd_render_ns(a, sizeof(a), dur));
    }
    if (json_is_object(pt) && jnum(s, "period", &v) && v != 0) {
        const char *pu = jstr(pt, "unit"), *pty = jstr(pt, "type");
        /* a count period is a rate (1 in N events sampled), other units a distance */
        kv(f, o, "sampling", "%s %s (%s)",
           pu != NULL && strcmp(pu, "count") == 0 ? "1 in" : "every", fmt_unit(a, sizeof(a), v, pu),
           pty != NULL && *pty ? pty : "period");
    }
    const json_t *c = json_object_get(s, "counts");
    if (json_is_object(c))
        kv(f, o, "contents", "%.0f samples, %.0f locations, %.0f functions, %.0f mappings",
           jnum_or(c, "samples", 0), jnum_or(c, "locations", 0), jnum_or(c, "functions", 0),
           jnum_or(c, "mappings", 0));
    const json_t *mb = json_object_get(s, "main_binary");
    if (json_is_object(mb) && jstr(mb, "file") != NULL && *jstr(mb, "file") != '\0') {
        const char *bid = jstr(mb, "build_id");
        kv(f, o, "binary", "%s%s%s", jstr(mb, "file"), bid != NULL && *bid ? ", build id " : "",
           bid != NULL ? bid : "");
    }
    const char *enc = jstr(s, "encoding");
    if (enc != NULL && jnum(s, "bytes", &v)) {
        if (strcmp(enc, "gzip") == 0)
            kv(f, o, "encoding", "gzip, %s (%s unpacked)", fmt_bytes(a, sizeof(a), v),
               fmt_bytes(b, sizeof(b), jnum_or(s, "decompressed_bytes", 0)));
        else
            kv(f, o, "encoding", "uncompressed protobuf, %s", fmt_bytes(a, sizeof(a), v));
    }
    const json_t *lk = json_object_get(s, "label_keys");
    struct list ll = {.len = 0};
    const char *which[] = {"string", "numeric"};
    for (size_t w = 0; w < 2; w++) {
        const json_t *arr = json_object_get(lk, which[w]);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            const json_t *e = json_array_get(arr, i);
            const char *unit = jstr(e, "unit");
            list_add(&ll, "%s%s%s%s (%.0f)", jstr(e, "key") != NULL ? jstr(e, "key") : "?",
                     unit != NULL && *unit ? " [" : "", unit != NULL ? unit : "",
                     unit != NULL && *unit ? "]" : "", jnum_or(e, "count", 0));
        }
    }
    if (ll.items > 0)
        kv(f, o, "labels", "%s", ll.buf);
    const json_t *comments = json_object_get(s, "comments");
    for (size_t i = 0; i < json_array_size(comments); i++) {
        const char *cm = json_string_value(json_array_get(comments, i));
        if (cm != NULL)
            kv(f, o, i == 0 ? "comments" : "", "%s", cm);
    }
    static const char *const extra[][2] = {
        {"drop_frames", "drop frames"}, {"keep_frames", "keep frames"}, {"doc_url", "doc url"}};
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        const char *x = jstr(s, extra[i][0]);
        if (x != NULL && *x != '\0')
            kv(f, o, extra[i][1], "%s", x);
    }
    if (json_is_false(json_object_get(s, "symbolized")) &&
        jnum_or(json_object_get(s, "counts"), "locations", 0) > 0)
        kv(f, o, "note", "%s",
           "not symbolized: functions are named by their address (go tool pprof can "
           "symbolize with the binary)");
    if (jnum(s, "truncated_stacks", &v) && v > 0)
        kv(f, o, "note",
           "%.0f sample%s had stacks deeper than the parser's limit; their outer "
           "frames are not counted in cum",
           v, v == 1 ? "" : "s");
    for (size_t i = 0; i < ntypes; i++) {
        const json_t *t = json_array_get(types, i);
        if (json_is_true(json_object_get(t, "saturated")))
            kv(f, o, "note", "the values of %s overflow 64 bits: its totals are clamped",
               jstr(t, "type") != NULL ? jstr(t, "type") : "?");
    }
}

static int cmp_function(const void *a, const void *b)
{
    const char *x = jstr(*(const json_t *const *)a, "function");
    const char *y = jstr(*(const json_t *const *)b, "function");
    return strcmp(x != NULL ? x : "", y != NULL ? y : "");
}

/* The rows go tool pprof -top would list first, at most max: by flat value the summary's
 * top_flat, then functions without a flat value of their own (callers), by name as pprof
 * orders them, taken from top_cum (the summary keeps no others); by cumulative value, top_cum.
 * malloc'd array of borrowed rows; NULL when there is none. */
static const json_t **pprof_rows(const json_t *t, bool cum, size_t max, size_t *count)
{
    const json_t *flat = json_object_get(t, "top_flat");
    const json_t *cums = json_object_get(t, "top_cum");
    size_t cap = json_array_size(flat) + json_array_size(cums), n = 0;
    *count = 0;
    if (cap == 0 || max == 0)
        return NULL;
    const json_t **rows = calloc(cap, sizeof(*rows));
    if (rows == NULL)
        return NULL;
    if (cum) {
        for (size_t i = 0; i < json_array_size(cums) && n < max; i++)
            rows[n++] = json_array_get(cums, i);
        *count = n;
        return rows;
    }
    for (size_t i = 0; i < json_array_size(flat) && n < max; i++)
        rows[n++] = json_array_get(flat, i);
    size_t first_zero = n;
    for (size_t i = 0; i < json_array_size(cums) && n < cap; i++) {
        const json_t *r = json_array_get(cums, i);
        if (jnum_or(r, "flat", 0) == 0)
            rows[n++] = r;
    }
    qsort(rows + first_zero, n - first_zero, sizeof(*rows), cmp_function);
    *count = n < max ? n : max;
    return rows;
}

/* One sample type's top table, like go tool pprof -top: flat, flat%, sum%, cum, cum%. */
/* A row's share of the sample type: the parser's rounded pct when it sent one (older
 * summaries), else value / total_abs as go tool pprof computes it. */
static double pct_of(const json_t *row, const char *key, const char *pct_key, double abs_total)
{
    const json_t *p = json_object_get(row, pct_key);
    if (json_is_number(p))
        return json_number_value(p);
    double v = jnum_or(row, key, 0);
    return abs_total > 0 ? v * 100.0 / abs_total : 0;
}

static void pprof_table(FILE *f, const json_t *t, const struct cd_render_opts *o)
{
    const char *type = jstr(t, "type");
    const char *unit = jstr(t, "unit");
    size_t shown = 0;
    const json_t **rows = pprof_rows(t, o->cum, o->top_n, &shown);
    char tot[48];
    fmt_unit(tot, sizeof(tot), jnum_or(t, "total", 0), unit);
    if (shown == 0) {
        heading(f, o, "%s (%s): total %s; no function has a value", type != NULL ? type : "?",
                unit != NULL ? unit : "?", tot);
        free(rows);
        return;
    }
    heading(f, o, "%s (%s): total %s; top %zu function%s by %s:", type != NULL ? type : "?",
            unit != NULL ? unit : "?", tot, shown, shown == 1 ? "" : "s",
            o->cum ? "cumulative value (--cum)" : "flat value");
    struct cd_table tab;
    cd_table_init(&tab);
    cd_table_add_col(&tab, "FLAT", CD_TABLE_RIGHT, 4, 12);
    cd_table_add_col(&tab, "FLAT%", CD_TABLE_RIGHT, 5, 7);
    cd_table_add_col(&tab, "SUM%", CD_TABLE_RIGHT, 5, 7);
    cd_table_add_col(&tab, "CUM", CD_TABLE_RIGHT, 4, 12);
    cd_table_add_col(&tab, "CUM%", CD_TABLE_RIGHT, 5, 7);
    cd_table_add_col(&tab, "FUNCTION", CD_TABLE_TAIL, 20, 0);
    /* sum% from the values, as pprof does: a sum of rounded percentages drifts */
    double abs_total = jnum_or(t, "total_abs", 0), sum = 0, sum_pct = 0;
    for (size_t i = 0; i < shown; i++) {
        const json_t *r = rows[i];
        double fp = pct_of(r, "flat", "flat_pct", abs_total);
        sum += fabs(jnum_or(r, "flat", 0));
        sum_pct += fp;
        char c0[32], c1[16], c2[16], c3[32], c4[16];
        fmt_unit(c0, sizeof(c0), jnum_or(r, "flat", 0), unit);
        snprintf(c1, sizeof(c1), "%.2f%%", fp);
        snprintf(c2, sizeof(c2), "%.2f%%", abs_total > 0 ? sum * 100 / abs_total : sum_pct);
        fmt_unit(c3, sizeof(c3), jnum_or(r, "cum", 0), unit);
        snprintf(c4, sizeof(c4), "%.2f%%", pct_of(r, "cum", "cum_pct", abs_total));
        const char *fn = jstr(r, "function");
        const char *cells[] = {c0, c1, c2, c3, c4, fn != NULL && *fn ? fn : "?"};
        cd_table_add_row(&tab, cells);
    }
    cd_table_print(&tab, f, o->width);
    cd_table_free(&tab);
    free(rows);
}

/* The tables the options ask for; after one type of several, says which others there are. */
static int pprof_tables(FILE *f, const json_t *s, const struct cd_render_opts *o, bool hint)
{
    const json_t *types = json_object_get(s, "sample_types");
    size_t ntypes = json_array_size(types);
    if (ntypes == 0)
        return 0;
    bool all = o->sample_type != NULL && strcmp(o->sample_type, "all") == 0;
    size_t pick = pprof_default_index(s);
    if (o->sample_type != NULL && !all) {
        pick = ntypes;
        for (size_t i = 0; i < ntypes; i++) {
            const char *type = jstr(json_array_get(types, i), "type");
            if (type != NULL && strcmp(type, o->sample_type) == 0)
                pick = i;
        }
        if (pick == ntypes) {
            struct list l = {.len = 0};
            for (size_t i = 0; i < ntypes; i++)
                list_add(&l, "%s",
                         jstr(json_array_get(types, i), "type") != NULL
                             ? jstr(json_array_get(types, i), "type")
                             : "?");
            heading(f, o, "no sample type '%s' in this profile; it has: %s (or: all)",
                    o->sample_type, l.buf);
            return 0;
        }
    }
    int printed = 0;
    for (size_t i = 0; i < ntypes; i++) {
        if (!all && i != pick)
            continue;
        if (printed > 0)
            fputc('\n', f);
        pprof_table(f, json_array_get(types, i), o);
        printed++;
    }
    if (hint && !all && ntypes > 1) {
        struct list l = {.len = 0};
        for (size_t i = 0; i < ntypes; i++) {
            if (i != pick)
                list_add(&l, "%s",
                         jstr(json_array_get(types, i), "type") != NULL
                             ? jstr(json_array_get(types, i), "type")
                             : "?");
        }
        fputc('\n', f);
        heading(f, o, "other sample types: %s (--sample-type TYPE, or all)", l.buf);
    }
    return printed;
}

static void render_pprof(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    pprof_header(f, s, o);
    fputc('\n', f);
    pprof_tables(f, s, o, true);
    print_rest(f, s, k_pprof_known, o);
}

struct kv_pair {
    const char *key;
    double n;
};

static int cmp_pair(const void *a, const void *b)
{
    const struct kv_pair *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return strcmp(x->key, y->key);
}

/* "name 12, other 3, ..." (or "12 name, ...") from an object of counts (or of {count, ...}
 * objects), largest first; value_key names the member of object values (NULL: values are numbers).
 */
static void count_list(struct list *l, const json_t *obj, const char *value_key, bool count_first)
{
    size_t n = json_object_size(obj), k = 0;
    if (n == 0)
        return;
    struct kv_pair *p = calloc(n, sizeof(*p));
    if (p == NULL)
        return;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        p[k].key = key;
        p[k].n = value_key != NULL ? jnum_or(v, value_key, 0) : json_number_value(v);
        k++;
    }
    qsort(p, k, sizeof(*p), cmp_pair);
    for (size_t i = 0; i < k && i < INLINE_MAX; i++)
        if (count_first)
            list_add(l, "%.0f %s", p[i].n, p[i].key);
        else
            list_add(l, "%s %.0f", p[i].key, p[i].n);
    if (k > INLINE_MAX)
        list_add(l, "and %zu more", k - INLINE_MAX);
    free(p);
}

/* ---- goroutine dumps --------------------------------------------------------------------------
 */

static const char *const k_goroutine_known[] = {
    "variant",          "profile",          "total",
    "examined",         "truncated",        "unparsed_lines",
    "states",           "classes",          "wait_minutes",
    "max_wait_minutes", "locked_to_thread", "groups_total",
    "groups_other",     "groups",           "longest_waiting",
    "created_by",       "findings",         NULL};

json_t *cd_render_goroutine_findings(const json_t *summary)
{
    json_t *out = json_array();
    if (out == NULL)
        return NULL;
    const json_t *given = json_object_get(summary, "findings");
    for (size_t i = 0; i < json_array_size(given); i++) {
        const json_t *e = json_array_get(given, i);
        const char *msg = json_is_string(e) ? json_string_value(e) : jstr(e, "message");
        char *text = msg == NULL ? json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        char *clean = cd_table_sanitize(msg != NULL ? msg : text);
        json_array_append_new(out, json_string(clean != NULL ? clean : "?"));
        free(clean);
        free(text);
    }
    return out;
}

/* Standard library (and runtime) frames: the first path element has no dot and is not main. */
static bool is_std_function(const char *fn)
{
    const char *slash = strrchr(fn, '/');
    const char *last = slash != NULL ? slash + 1 : fn;
    const char *dot = strchr(last, '.');
    size_t pathlen = dot != NULL ? (size_t)(dot - fn) : strlen(fn);
    size_t first = strcspn(fn, "/");
    if (first > pathlen)
        first = pathlen;
    if (memchr(fn, '.', first) != NULL)
        return false;
    if (pathlen == 4 && strncmp(fn, "main", 4) == 0)
        return false;
    return true;
}

/* Where a group waits and who asked for it: the outermost standard-library frame before the
 * first frame of the program's own code, and that frame. A stack of library code only: its
 * innermost and its outermost shown frames. */
static void group_site(const json_t *g, const char **blocked, const char **caller)
{
    const json_t *frames = json_object_get(g, "frames");
    size_t n = json_array_size(frames);
    *blocked = NULL;
    *caller = NULL;
    size_t k = n;
    for (size_t i = 0; i < n; i++) {
        const char *fn = jstr(json_array_get(frames, i), "function");
        if (fn != NULL && !is_std_function(fn)) {
            k = i;
            break;
        }
    }
    if (n > 0 && k > 0 && k < n) {
        *blocked = jstr(json_array_get(frames, k - 1), "function");
        *caller = jstr(json_array_get(frames, k), "function");
    } else if (n > 0) {
        *blocked = jstr(json_array_get(frames, 0), "function");
        /* every stack ends in runtime.goexit; the function above it says what this is */
        size_t last = n - 1;
        const char *fn = jstr(json_array_get(frames, last), "function");
        if (last > 1 && fn != NULL && strcmp(fn, "runtime.goexit") == 0)
            last--;
        if (last > 0)
            *caller = jstr(json_array_get(frames, last), "function");
    }
}

/* "3m", "1m-3m", or "" under a minute (Go prints whole minutes only). */
static void fmt_wait(char *dst, size_t size, double lo, double hi)
{
    char a[32], b[32];
    if (hi < 1)
        snprintf(dst, size, "%s", "");
    else if (lo == hi)
        snprintf(dst, size, "%s", fmt_minutes(a, sizeof(a), hi));
    else if (hi < 60)
        snprintf(dst, size, "%.0f-%.0fm", lo, hi);
    else if (lo < 1)
        snprintf(dst, size, "0-%s", fmt_minutes(b, sizeof(b), hi));
    else
        snprintf(dst, size, "%s-%s", fmt_minutes(a, sizeof(a), lo), fmt_minutes(b, sizeof(b), hi));
}

static void goroutine_findings(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    const json_t *fs = json_object_get(s, "findings");
    if (json_array_size(fs) == 0)
        return;
    fprintf(f, "FINDINGS\n");
    for (size_t i = 0; i < json_array_size(fs); i++) {
        const json_t *e = json_array_get(fs, i);
        const char *msg = json_is_string(e) ? json_string_value(e) : jstr(e, "message");
        char *text = msg == NULL ? json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        char *clean = cd_table_sanitize(msg != NULL ? msg : text);
        cd_render_wrapped(f, "  ! ", "    ", clean != NULL ? clean : "?", o->width);
        free(clean);
        free(text);
        const char *loc = jstr(e, "location");
        if (loc != NULL && *loc != '\0') {
            char *cl = cd_table_sanitize(loc);
            char line[600];
            snprintf(line, sizeof(line), "at %s", cl != NULL ? cl : "?");
            cd_render_wrapped(f, "    ", "      ", line, o->width);
            free(cl);
        }
    }
    fputc('\n', f);
}

static int goroutine_groups(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    const json_t *groups = json_object_get(s, "groups");
    size_t n = json_array_size(groups);
    if (n == 0)
        return 0;
    /* debug=1 records have no status, hence no state and no wait */
    bool debug2 = json_is_object(json_object_get(s, "classes"));
    size_t shown = n < o->top_n ? n : o->top_n;
    double total_groups = jnum_or(s, "groups_total", (double)n);
    double other = jnum_or(s, "groups_other", 0);
    char more[128] = "";
    if (other > 0)
        snprintf(more, sizeof(more), "; %.0f more goroutines had stacks beyond the group limit",
                 other);
    heading(f, o, "GROUPS of identical stacks, largest first (%zu of %.0f)%s:", shown, total_groups,
            more);
    struct cd_table t;
    cd_table_init(&t);
    cd_table_add_col(&t, "COUNT", CD_TABLE_RIGHT, 5, 8);
    if (debug2) {
        cd_table_add_col(&t, "STATE", CD_TABLE_LEFT, 8, 20);
        cd_table_add_col(&t, "WAIT", CD_TABLE_RIGHT, 4, 11);
    }
    cd_table_add_col(&t, "BLOCKED IN", CD_TABLE_TAIL, 14, 0);
    cd_table_add_col(&t, "CALLED FROM", CD_TABLE_TAIL, 14, 0);
    for (size_t i = 0; i < shown; i++) {
        const json_t *g = json_array_get(groups, i);
        char count[24], state[96] = "", wait[48];
        snprintf(count, sizeof(count), "%.0f", jnum_or(g, "count", 0));
        const json_t *st = json_object_get(g, "states");
        const char *s0 = jstr(g, "state"); /* the commonest; states[0] before it existed */
        if (s0 == NULL)
            s0 = jstr(json_array_get(st, 0), "state");
        if (json_array_size(st) > 1)
            snprintf(state, sizeof(state), "%s +%zu", s0 != NULL ? s0 : "?",
                     json_array_size(st) - 1);
        else
            snprintf(state, sizeof(state), "%s", s0 != NULL ? s0 : "");
        fmt_wait(wait, sizeof(wait), jnum_or(g, "wait_minutes_min", 0),
                 jnum_or(g, "wait_minutes_max", 0));
        const char *blocked, *caller;
        group_site(g, &blocked, &caller);
        const char *b = blocked != NULL ? blocked : "?", *c = caller != NULL ? caller : "";
        if (debug2) {
            const char *cells[] = {count, state, wait, b, c};
            cd_table_add_row(&t, cells);
        } else {
            const char *cells[] = {count, b, c};
            cd_table_add_row(&t, cells);
        }
    }
    cd_table_print(&t, f, o->width);
    cd_table_free(&t);
    return 1;
}

/* Two longest-waiting entries that read the same (wait, state, place). */
static bool same_wait(const json_t *a, const json_t *b)
{
    static const char *const keys[] = {"minutes", "state", "function", "file", "line"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        if (!json_equal(json_object_get(a, keys[k]), json_object_get(b, keys[k])))
            return false;
    }
    return true;
}

static void goroutine_longest(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    const json_t *lw = json_object_get(s, "longest_waiting");
    size_t n = json_array_size(lw);
    if (n == 0)
        return;
    size_t shown = n < o->top_n ? n : o->top_n;
    /* Leaks fill the list with goroutines that read alike: one row each, with how many. */
    size_t *same = calloc(shown, sizeof(*same));
    if (same == NULL)
        return;
    size_t rows = 0;
    for (size_t i = 0; i < shown; i++) {
        for (size_t k = 0; k < i; k++) {
            if (same[k] > 0 && same_wait(json_array_get(lw, k), json_array_get(lw, i))) {
                same[k]++;
                goto next;
            }
        }
        same[i] = 1;
        rows++;
    next:;
    }
    fputc('\n', f);
    if (rows < shown)
        heading(f, o,
                "LONGEST WAITING goroutines (%zu; alike ones on one row, ID +N more):", shown);
    else
        heading(f, o, "LONGEST WAITING goroutines (%zu):", shown);
    struct cd_table t;
    cd_table_init(&t);
    cd_table_add_col(&t, "ID", CD_TABLE_RIGHT, 2, 16);
    cd_table_add_col(&t, "WAIT", CD_TABLE_RIGHT, 4, 10);
    cd_table_add_col(&t, "STATE", CD_TABLE_LEFT, 8, 20);
    cd_table_add_col(&t, "FUNCTION", CD_TABLE_TAIL, 16, 0);
    cd_table_add_col(&t, "AT", CD_TABLE_TAIL, 10, 30);
    for (size_t i = 0; i < shown; i++) {
        if (same[i] == 0)
            continue;
        const json_t *g = json_array_get(lw, i);
        char id[48], wait[32], at[320] = "";
        if (same[i] > 1)
            snprintf(id, sizeof(id), "%.0f +%zu", jnum_or(g, "id", 0), same[i] - 1);
        else
            snprintf(id, sizeof(id), "%.0f", jnum_or(g, "id", 0));
        fmt_minutes(wait, sizeof(wait), jnum_or(g, "minutes", 0));
        const char *file = jstr(g, "file");
        if (file != NULL && *file != '\0') {
            const char *base = strrchr(file, '/');
            snprintf(at, sizeof(at), "%s:%.0f", base != NULL ? base + 1 : file,
                     jnum_or(g, "line", 0));
        }
        const char *state = jstr(g, "state"), *fn = jstr(g, "function");
        const char *cells[] = {id, wait, state != NULL ? state : "", fn != NULL ? fn : "?", at};
        cd_table_add_row(&t, cells);
    }
    cd_table_print(&t, f, o->width);
    cd_table_free(&t);
    free(same);
}

static void goroutine_created(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    const json_t *cb = json_object_get(s, "created_by");
    size_t n = json_array_size(cb);
    if (n == 0)
        return;
    size_t shown = n < o->top_n ? n : o->top_n;
    fputc('\n', f);
    heading(f, o, "CREATED BY, most goroutines first (%zu):", shown);
    struct cd_table t;
    cd_table_init(&t);
    cd_table_add_col(&t, "COUNT", CD_TABLE_RIGHT, 5, 8);
    cd_table_add_col(&t, "FUNCTION", CD_TABLE_TAIL, 20, 0);
    for (size_t i = 0; i < shown; i++) {
        const json_t *e = json_array_get(cb, i);
        char count[24];
        snprintf(count, sizeof(count), "%.0f", jnum_or(e, "count", 0));
        const char *fn = jstr(e, "function");
        const char *cells[] = {count, fn != NULL ? fn : "?"};
        cd_table_add_row(&t, cells);
    }
    cd_table_print(&t, f, o->width);
    cd_table_free(&t);
}

static void render_goroutines(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    const char *variant = jstr(s, "variant");
    bool debug1 = variant != NULL && strcmp(variant, "debug1") == 0;
    double total = jnum_or(s, "total", 0), examined = jnum_or(s, "examined", total);
    const char *profile = jstr(s, "profile");
    if (debug1)
        heading(f, o, "%s profile (debug=1 text): %.0f %s, %.0f distinct stack%s",
                profile != NULL ? profile : "goroutine", total,
                profile != NULL && strcmp(profile, "goroutine") != 0 ? "in total" : "goroutines",
                jnum_or(s, "groups_total", 0), plural(jnum_or(s, "groups_total", 0)));
    else
        heading(f, o, "%.0f goroutine%s, %.0f distinct stack%s", total, plural(total),
                jnum_or(s, "groups_total", 0), plural(jnum_or(s, "groups_total", 0)));
    fputc('\n', f);
    goroutine_findings(f, s, o);

    const json_t *states = json_object_get(s, "states");
    struct list l = {.len = 0};
    /* {state: count}; an array of {state, count} in older summaries */
    if (json_is_object(states))
        count_list(&l, states, NULL, true);
    for (size_t i = 0; i < json_array_size(states); i++) {
        const json_t *e = json_array_get(states, i);
        list_add(&l, "%.0f %s", jnum_or(e, "count", 0),
                 jstr(e, "state") != NULL ? jstr(e, "state") : "?");
    }
    bool lines = false;
    if (l.items > 0) {
        kv(f, o, "states", "%s", l.buf);
        lines = true;
    }
    const json_t *cl = json_object_get(s, "classes");
    if (json_is_object(cl)) {
        kv(f, o, "classes", "%.0f blocked, %.0f running, %.0f runnable, %.0f in syscalls%s",
           jnum_or(cl, "blocked", 0), jnum_or(cl, "running", 0), jnum_or(cl, "runnable", 0),
           jnum_or(cl, "syscall", 0), jnum_or(cl, "other", 0) > 0 ? ", some other" : "");
        lines = true;
    }
    const json_t *wm = json_object_get(s, "wait_minutes");
    struct list w = {.len = 0};
    for (size_t i = 0; i < json_array_size(wm); i++) {
        const json_t *e = json_array_get(wm, i);
        double c = jnum_or(e, "count", 0);
        const char *b = jstr(e, "bucket");
        if (c <= 0 || b == NULL)
            continue;
        if (strcmp(b, "<1") == 0)
            list_add(&w, "%.0f under a minute", c);
        else
            list_add(&w, "%.0f for %s minutes", c, b);
    }
    double maxw = jnum_or(s, "max_wait_minutes", 0);
    if (!debug1 && w.items > 0) {
        char m[32];
        kv(f, o, "waiting", "%s%s%s", w.buf, maxw >= 1 ? "; longest " : "",
           maxw >= 1 ? fmt_minutes(m, sizeof(m), maxw) : "");
        lines = true;
    }
    double locked = jnum_or(s, "locked_to_thread", 0);
    if (locked > 0) {
        kv(f, o, "locked", "%.0f goroutine%s locked to an OS thread", locked,
           locked == 1 ? "" : "s");
        lines = true;
    }
    if (json_is_true(json_object_get(s, "truncated"))) {
        kv(f, o, "note", "%s", "the dump is cut short (Go stops writing at 64 MiB)");
        lines = true;
    }
    if (examined < total) {
        kv(f, o, "note", "%.0f of %.0f goroutines were examined (the parser's limit)", examined,
           total);
        lines = true;
    }
    double unparsed = jnum_or(s, "unparsed_lines", 0);
    if (unparsed > 0) {
        kv(f, o, "note", "%.0f line%s did not fit the dump grammar", unparsed,
           unparsed == 1 ? "" : "s");
        lines = true;
    }
    if (lines)
        fputc('\n', f);
    goroutine_groups(f, s, o);
    goroutine_longest(f, s, o);
    goroutine_created(f, s, o);
    print_rest(f, s, k_goroutine_known, o);
}

/* ---- heap text --------------------------------------------------------------------------------
 */

static const char *const k_heap_known[] = {"rate",        "header",   "totals",         "records",
                                           "top_records", "memstats", "unparsed_lines", NULL};

static void memstats_lines(FILE *f, const json_t *m, const struct cd_render_opts *o);

static int heap_records(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    const json_t *recs = json_object_get(s, "top_records");
    size_t n = json_array_size(recs);
    if (n == 0)
        return 0;
    size_t shown = n < o->top_n ? n : o->top_n;
    heading(f, o, "largest allocation sites by space in use (%zu of %.0f records):", shown,
            jnum_or(s, "records", (double)n));
    struct cd_table t;
    cd_table_init(&t);
    cd_table_add_col(&t, "INUSE", CD_TABLE_RIGHT, 5, 10);
    cd_table_add_col(&t, "OBJECTS", CD_TABLE_RIGHT, 5, 10);
    cd_table_add_col(&t, "ALLOCATED", CD_TABLE_RIGHT, 5, 10);
    cd_table_add_col(&t, "OBJECTS", CD_TABLE_RIGHT, 5, 10);
    cd_table_add_col(&t, "FUNCTION", CD_TABLE_TAIL, 20, 0);
    for (size_t i = 0; i < shown; i++) {
        const json_t *r = json_array_get(recs, i);
        char a[32], b[32], c[32], d[32];
        fmt_bytes(a, sizeof(a), jnum_or(r, "inuse_space", 0));
        fmt_number(b, sizeof(b), jnum_or(r, "inuse_objects", 0));
        fmt_bytes(c, sizeof(c), jnum_or(r, "alloc_space", 0));
        fmt_number(d, sizeof(d), jnum_or(r, "alloc_objects", 0));
        const char *fn = jstr(json_array_get(json_object_get(r, "frames"), 0), "function");
        const char *cells[] = {a, b, c, d, fn != NULL ? fn : "?"};
        cd_table_add_row(&t, cells);
    }
    cd_table_print(&t, f, o->width);
    cd_table_free(&t);
    return 1;
}

static void render_heap_text(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    const json_t *tot = json_object_get(s, "totals");
    char a[32], b[32];
    if (json_is_object(tot)) {
        kv(f, o, "in use", "%s in %.0f objects",
           fmt_bytes(a, sizeof(a), jnum_or(tot, "inuse_space", 0)),
           jnum_or(tot, "inuse_objects", 0));
        kv(f, o, "allocated", "%s in %.0f objects since the program started",
           fmt_bytes(b, sizeof(b), jnum_or(tot, "alloc_space", 0)),
           jnum_or(tot, "alloc_objects", 0));
    }
    double rate = jnum_or(s, "rate", 0);
    if (rate > 0)
        kv(f, o, "sampling",
           "every %s allocated (MemProfileRate); figures are scaled up from "
           "the samples as go tool pprof does",
           fmt_bytes(a, sizeof(a), rate));
    double unparsed = jnum_or(s, "unparsed_lines", 0);
    if (unparsed > 0)
        kv(f, o, "note", "%.0f line%s did not fit the heap text grammar", unparsed,
           unparsed == 1 ? "" : "s");
    fputc('\n', f);
    if (heap_records(f, s, o) > 0)
        fputc('\n', f);
    const json_t *m = json_object_get(s, "memstats");
    if (json_is_object(m)) {
        heading(f, o, "%s", "runtime.MemStats at the time of the profile:");
        memstats_lines(f, m, o);
    }
    print_rest(f, s, k_heap_known, o);
}

/* ---- gops --------------------------------------------------------------------------------------
 */

/* The runtime.MemStats figures (gops memstats and the end of heap text) grouped for reading. */
static void memstats_lines(FILE *f, const json_t *m, const struct cd_render_opts *o)
{
    char a[32], b[32], c[32], d[32];
    double v;
    if (jnum(m, "heap_alloc", &v) || jnum(m, "alloc", &v))
        kv(f, o, "heap", "%s allocated in %.0f objects; %s in use of %s from the OS",
           fmt_bytes(a, sizeof(a), v), jnum_or(m, "heap_objects", 0),
           fmt_bytes(b, sizeof(b), jnum_or(m, "heap_inuse", 0)),
           fmt_bytes(c, sizeof(c), jnum_or(m, "heap_sys", 0)));
    if (jnum(m, "heap_idle", &v))
        kv(f, o, "heap idle", "%s, of which %s released to the OS", fmt_bytes(a, sizeof(a), v),
           fmt_bytes(b, sizeof(b), jnum_or(m, "heap_released", 0)));
    if (jnum(m, "total_alloc", &v))
        kv(f, o, "allocated", "%s in total, %.0f mallocs, %.0f frees (%.0f live)",
           fmt_bytes(a, sizeof(a), v), jnum_or(m, "mallocs", 0), jnum_or(m, "frees", 0),
           jnum_or(m, "mallocs", 0) - jnum_or(m, "frees", 0));
    if (jnum(m, "sys", &v))
        kv(f, o, "from the OS", "%s: stacks %s, GC metadata %s, other %s",
           fmt_bytes(a, sizeof(a), v), fmt_bytes(b, sizeof(b), jnum_or(m, "stack_sys", 0)),
           fmt_bytes(c, sizeof(c), jnum_or(m, "gc_sys", 0)),
           fmt_bytes(d, sizeof(d),
                     jnum_or(m, "other_sys", 0) + jnum_or(m, "mspan_sys", 0) +
                         jnum_or(m, "mcache_sys", 0) + jnum_or(m, "buck_hash_sys", 0)));
    if (jnum(m, "stack_inuse", &v))
        kv(f, o, "stacks", "%s in use", fmt_bytes(a, sizeof(a), v));
    if (jnum(m, "num_gc", &v)) {
        struct list l = {.len = 0};
        list_add(&l, "%.0f cycles (%.0f forced)", v, jnum_or(m, "num_forced_gc", 0));
        double nx;
        if (jnum(m, "next_gc", &nx))
            list_add(&l, "next when the heap reaches %s", fmt_bytes(a, sizeof(a), nx));
        double frac;
        if (jnum(m, "gc_cpu_fraction", &frac))
            list_add(&l, "%.2f%% of CPU", frac * 100);
        kv(f, o, "GC", "%s", l.buf);
    }
    double last_ns;
    if (jnum(m, "last_gc_unix_ns", &last_ns) && last_ns > 0) {
        char when[96];
        cd_render_time(when, sizeof(when), (int64_t)(last_ns / 1e6), o->now_ms);
        double p;
        if (jnum(m, "gc_pause_last_ns", &p))
            kv(f, o, "last GC", "%s, paused %s", when, cd_render_ns(a, sizeof(a), p));
        else
            kv(f, o, "last GC", "%s", when);
    }
    if (jnum(m, "gc_pause_total_ns", &v))
        kv(f, o, "GC pauses", "%s in total", cd_render_ns(a, sizeof(a), v));
    if (jnum(m, "max_rss", &v))
        kv(f, o, "max RSS", "%s", fmt_bytes(a, sizeof(a), v));
}

static const char *const k_memstats_known[] = {
    "memstats", "last_gc",       "last_gc_unix_ns", "gc_pause_end_unix_ns", "enable_gc",
    "debug_gc", "agent_version", "unknown_keys",    "approximate_keys",     "unparsed_lines",
    NULL};

static void render_gops_memstats(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    const json_t *m = json_object_get(s, "memstats");
    json_t *mm = json_is_object(m) ? json_deep_copy(m) : json_object();
    if (mm == NULL)
        return;
    /* the time of the last GC sits beside the figures */
    const json_t *last = json_object_get(s, "last_gc_unix_ns");
    if (json_is_number(last))
        json_object_set(mm, "last_gc_unix_ns", (json_t *)last);
    memstats_lines(f, mm, o);
    json_decref(mm);
    if (json_is_false(json_object_get(s, "enable_gc")))
        kv(f, o, "note", "%s", "the garbage collector is disabled (GOGC=off)");
    if (json_is_true(json_object_get(s, "debug_gc")))
        kv(f, o, "note", "%s", "DebugGC is on");
    const char *agent = jstr(s, "agent_version");
    if (agent != NULL && strcmp(agent, "head") != 0)
        kv(f, o, "gops agent", "%s", agent);
    static const char *const lists[][2] = {
        {"unknown_keys", "keys the parser does not know:"},
        {"approximate_keys", "rounded by the agent (no exact byte count):"}};
    for (size_t i = 0; i < 2; i++) {
        const json_t *a = json_object_get(s, lists[i][0]);
        struct list l = {.len = 0};
        for (size_t k = 0; k < json_array_size(a); k++)
            if (json_is_string(json_array_get(a, k)))
                list_add(&l, "%s", json_string_value(json_array_get(a, k)));
        if (l.items > 0)
            kv(f, o, "note", "%s %s", lists[i][1], l.buf);
    }
    print_rest(f, s, k_memstats_known, o);
}

static const char *const k_stats_known[] = {
    "goroutines", "threads", "gomaxprocs", "num_cpu", "unknown_keys", "unparsed_lines", NULL};

static void render_gops_stats(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    static const char *const rows[][2] = {{"goroutines", "goroutines"},
                                          {"threads", "OS threads"},
                                          {"gomaxprocs", "GOMAXPROCS"},
                                          {"num_cpu", "CPUs"}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        double v;
        if (jnum(s, rows[i][0], &v))
            kv(f, o, rows[i][1], "%.0f", v);
    }
    print_rest(f, s, k_stats_known, o);
}

static const char *const k_version_known[] = {"version", "major", "minor", "patch", "devel", NULL};

static void render_gops_version(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    const char *v = jstr(s, "version");
    kv(f, o, "Go", "%s%s", v != NULL ? v : "?",
       json_is_true(json_object_get(s, "devel")) ? " (a development build)" : "");
    print_rest(f, s, k_version_known, o);
}

/* ---- traces -------------------------------------------------------------------------------------
 */

static const char *const k_trace_known[] = {"go_version",
                                            "format",
                                            "partial",
                                            "error",
                                            "bytes",
                                            "bytes_parsed",
                                            "frequency",
                                            "duration_ns",
                                            "wall_start_unix_ns",
                                            "events",
                                            "event_counts",
                                            "batches",
                                            "strings",
                                            "stacks",
                                            "cpu_samples",
                                            "experimental_batches",
                                            "clock_snapshots",
                                            "generations",
                                            "first_generation",
                                            "goroutines",
                                            "gc",
                                            "stw",
                                            "procs",
                                            "blocking",
                                            "stop_reasons",
                                            "syscalls",
                                            "user",
                                            "labels",
                                            "dropped",
                                            NULL};

/* "name 12, other 3" from [{"name", "count"}]. */
static void name_list(struct list *l, const json_t *arr)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *e = json_array_get(arr, i);
        if (i == INLINE_MAX) {
            list_add(l, "and %zu more", json_array_size(arr) - INLINE_MAX);
            break;
        }
        list_add(l, "%s %.0f", jstr(e, "name") != NULL ? jstr(e, "name") : "?",
                 jnum_or(e, "count", 0));
    }
}

static void render_trace(FILE *f, const json_t *s, const struct cd_render_opts *o)
{
    char a[64], b[64], c[64];
    double v;
    const char *gv = jstr(s, "go_version"), *fmt = jstr(s, "format");
    struct list head = {.len = 0};
    if (gv != NULL)
        list_add(&head, "Go %s", gv);
    if (fmt != NULL)
        list_add(&head, "trace format %s", fmt);
    if (jnum(s, "generations", &v))
        list_add(&head, "%.0f generation%s", v, v == 1 ? "" : "s");
    if (json_is_true(json_object_get(s, "partial"))) {
        double got = jnum_or(s, "bytes_parsed", 0), all = jnum_or(s, "bytes", 0);
        fmt_bytes(a, sizeof(a), got);
        fmt_bytes(b, sizeof(b), all);
        if (strcmp(a, b) == 0) {
            snprintf(a, sizeof(a), "%.0f", got);
            snprintf(b, sizeof(b), "%.0f bytes", all);
        }
        kv(f, o, "PARTIAL",
           "the trace is cut short or corrupt: only %s of %s could be read; the figures below "
           "cover that part",
           a, b);
    }
    if (head.items > 0)
        kv(f, o, "written by", "%s", head.buf);
    if (jnum(s, "wall_start_unix_ns", &v) && v > 0)
        kv(f, o, "started", "%s", cd_render_time(a, sizeof(a), (int64_t)(v / 1e6), o->now_ms));
    if (jnum(s, "duration_ns", &v))
        kv(f, o, "duration", "%s", cd_render_ns(a, sizeof(a), v));
    else
        kv(f, o, "duration", "%s", "unknown (the trace has no clock frequency)");
    double ev = jnum_or(s, "events", 0), bt = jnum_or(s, "batches", 0);
    double sk = jnum_or(s, "stacks", 0), st = jnum_or(s, "strings", 0);
    kv(f, o, "events", "%.0f in %.0f batch%s, %.0f stack%s, %.0f string%s (%s)", ev, bt,
       bt == 1 ? "" : "es", sk, plural(sk), st, plural(st),
       fmt_bytes(a, sizeof(a), jnum_or(s, "bytes", 0)));
    const json_t *g = json_object_get(s, "goroutines");
    if (json_is_object(g))
        kv(f, o, "goroutines", "%.0f at the start, %.0f created, %.0f ended; at most %.0f alive",
           jnum_or(g, "at_start", 0), jnum_or(g, "created", 0), jnum_or(g, "ended", 0),
           jnum_or(g, "max_live", 0));
    const json_t *p = json_object_get(s, "procs");
    if (json_is_object(p)) {
        struct list l = {.len = 0};
        double last = jnum_or(p, "last", 0), max = jnum_or(p, "max", 0);
        double seen = jnum_or(p, "seen", 0);
        if (last > 0)
            list_add(&l, "GOMAXPROCS %.0f", last);
        if (max > last)
            list_add(&l, "%.0f at most", max);
        list_add(&l, "%.0f P%s ran", seen, plural(seen));
        kv(f, o, "procs", "%s", l.buf);
    }
    const json_t *gc = json_object_get(s, "gc");
    if (json_is_object(gc)) {
        struct list l = {.len = 0};
        double n = jnum_or(gc, "count", 0);
        if (n > 0)
            list_add(&l, "%.0f cycle%s", n, n == 1 ? "" : "s");
        else
            list_add(&l, "%s", "no cycle started");
        if (jnum(gc, "total_ns", &v) && v > 0)
            list_add(&l, "%s in total", cd_render_ns(a, sizeof(a), v));
        if (jnum(gc, "mark_assists", &v) && v > 0)
            list_add(&l, "%.0f mark assists", v);
        if (jnum(gc, "heap_alloc_max_bytes", &v) && v > 0)
            list_add(&l, "heap up to %s", fmt_bytes(b, sizeof(b), v));
        if (jnum(gc, "heap_goal_max_bytes", &v) && v > 0)
            list_add(&l, "goal up to %s", fmt_bytes(c, sizeof(c), v));
        kv(f, o, "GC", "%s", l.buf);
    }
    const json_t *stw = json_object_get(s, "stw");
    if (json_is_object(stw)) {
        struct list l = {.len = 0};
        double n = jnum_or(stw, "count", 0);
        if (n > 0)
            list_add(&l, "%.0f pause%s", n, n == 1 ? "" : "s");
        else
            list_add(&l, "%s", "no stop-the-world pause");
        if (jnum(stw, "total_ns", &v) && v > 0)
            list_add(&l, "%s in total", cd_render_ns(a, sizeof(a), v));
        const json_t *by = json_object_get(stw, "by_kind");
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)by, k, e)
        {
            double t;
            if (jnum(e, "total_ns", &t))
                list_add(&l, "%s %.0f (%s)", k, jnum_or(e, "count", 0),
                         cd_render_ns(b, sizeof(b), t));
            else
                list_add(&l, "%s %.0f", k, jnum_or(e, "count", 0));
        }
        kv(f, o, "STW", "%s", l.buf);
    }
    struct list bl = {.len = 0};
    count_list(&bl, json_object_get(s, "blocking"), NULL, false);
    kv(f, o, "blocked on", "%s", bl.items > 0 ? bl.buf : "nothing");
    struct list sr = {.len = 0};
    count_list(&sr, json_object_get(s, "stop_reasons"), NULL, false);
    if (sr.items > 0)
        kv(f, o, "stopped by", "%s", sr.buf);
    const json_t *sc = json_object_get(s, "syscalls");
    if (json_is_object(sc) && jnum_or(sc, "count", 0) > 0)
        kv(f, o, "syscalls", "%.0f, %.0f of them blocking", jnum_or(sc, "count", 0),
           jnum_or(sc, "blocked", 0));
    else if (json_is_object(sc))
        kv(f, o, "syscalls", "%s", "none");
    if (jnum(s, "cpu_samples", &v) && v > 0)
        kv(f, o, "CPU samples", "%.0f", v);
    const json_t *u = json_object_get(s, "user");
    if (json_is_object(u) &&
        jnum_or(u, "tasks", 0) + jnum_or(u, "regions", 0) + jnum_or(u, "logs", 0) > 0) {
        double tk = jnum_or(u, "tasks", 0), rg = jnum_or(u, "regions", 0);
        double lg = jnum_or(u, "logs", 0);
        kv(f, o, "user", "%.0f task%s (%.0f ended), %.0f region%s, %.0f log%s", tk, plural(tk),
           jnum_or(u, "tasks_ended", 0), rg, plural(rg), lg, plural(lg));
        static const char *const lists[][2] = {
            {"task_names", "tasks"}, {"region_names", "regions"}, {"log_keys", "log keys"}};
        for (size_t i = 0; i < 3; i++) {
            struct list l = {.len = 0};
            name_list(&l, json_object_get(u, lists[i][0]));
            if (l.items > 0)
                kv(f, o, lists[i][1], "%s", l.buf);
        }
    }
    struct list lab = {.len = 0};
    const json_t *labels = json_object_get(s, "labels");
    if (json_is_array(labels))
        name_list(&lab, labels);
    else
        count_list(&lab, labels, NULL, false);
    if (lab.items > 0)
        kv(f, o, "labels", "%s", lab.buf);
    const json_t *dr = json_object_get(s, "dropped");
    struct list dl = {.len = 0};
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)dr, k, e)
    {
        if (json_number_value(e) > 0)
            list_add(&dl, "%s %.0f", k, json_number_value(e));
    }
    if (dl.items > 0)
        kv(f, o, "note", "left out by the parser's limits: %s", dl.buf);
    struct list ec = {.len = 0};
    count_list(&ec, json_object_get(s, "event_counts"), NULL, false);
    if (ec.items > 0)
        kv(f, o, "event types", "%s", ec.buf);
    print_rest(f, s, k_trace_known, o);
}

/* ---- entry points -------------------------------------------------------------------------------
 */

enum shape {
    SHAPE_OTHER = 0,
    SHAPE_PPROF,
    SHAPE_GOROUTINE,
    SHAPE_HEAP_TEXT,
    SHAPE_MEMSTATS,
    SHAPE_STATS,
    SHAPE_VERSION,
    SHAPE_TRACE,
};

static const struct {
    const char *format;
    enum shape shape;
    const char *title;
} k_formats[] = {
    {"pprof", SHAPE_PPROF, "pprof profile"},
    {"goroutine_text", SHAPE_GOROUTINE, "goroutine dump"},
    {"heap_text", SHAPE_HEAP_TEXT, "heap profile text"},
    {"gops_memstats", SHAPE_MEMSTATS, "gops memstats"},
    {"gops_stats", SHAPE_STATS, "gops stats"},
    {"gops_version", SHAPE_VERSION, "gops version"},
    {"trace", SHAPE_TRACE, "execution trace"},
};

const char *cd_render_format_title(const char *format)
{
    for (size_t i = 0; format != NULL && i < sizeof(k_formats) / sizeof(k_formats[0]); i++) {
        if (strcmp(format, k_formats[i].format) == 0)
            return k_formats[i].title;
    }
    if (format != NULL && strcmp(format, "unknown") == 0)
        return "unrecognised data";
    return format != NULL ? format : "data";
}

static enum shape shape_of(const char *format, const json_t *s)
{
    for (size_t i = 0; format != NULL && i < sizeof(k_formats) / sizeof(k_formats[0]); i++) {
        if (strcmp(format, k_formats[i].format) == 0)
            return k_formats[i].shape;
    }
    if (format != NULL && strcmp(format, "unknown") != 0)
        return SHAPE_OTHER;
    /* No name: the members tell. */
    if (json_is_array(json_object_get(s, "sample_types")))
        return SHAPE_PPROF;
    if (json_object_get(s, "variant") != NULL && json_object_get(s, "groups") != NULL)
        return SHAPE_GOROUTINE;
    if (json_object_get(s, "top_records") != NULL && json_object_get(s, "rate") != NULL)
        return SHAPE_HEAP_TEXT;
    if (json_is_object(json_object_get(s, "memstats")) &&
        json_object_get(s, "agent_version") != NULL)
        return SHAPE_MEMSTATS;
    if (json_object_get(s, "gomaxprocs") != NULL && json_object_get(s, "threads") != NULL)
        return SHAPE_STATS;
    if (json_object_get(s, "devel") != NULL && json_is_string(json_object_get(s, "version")))
        return SHAPE_VERSION;
    if (json_object_get(s, "event_counts") != NULL && json_object_get(s, "go_version") != NULL)
        return SHAPE_TRACE;
    return SHAPE_OTHER;
}

void cd_render_summary(FILE *f, const char *format, const json_t *summary,
                       const struct cd_render_opts *o)
{
    if (!json_is_object(summary)) {
        heading(f, o, "%s",
                "no summary: the bytes did not parse (see the parse error), or this "
                "kind has no parser");
        return;
    }
    switch (shape_of(format, summary)) {
    case SHAPE_PPROF:
        render_pprof(f, summary, o);
        break;
    case SHAPE_GOROUTINE:
        render_goroutines(f, summary, o);
        break;
    case SHAPE_HEAP_TEXT:
        render_heap_text(f, summary, o);
        break;
    case SHAPE_MEMSTATS:
        render_gops_memstats(f, summary, o);
        break;
    case SHAPE_STATS:
        render_gops_stats(f, summary, o);
        break;
    case SHAPE_VERSION:
        render_gops_version(f, summary, o);
        break;
    case SHAPE_TRACE:
        render_trace(f, summary, o);
        break;
    default:
        print_fields(f, summary, NULL, 0, o);
        break;
    }
}

int cd_render_top(FILE *f, const char *format, const json_t *summary,
                  const struct cd_render_opts *o)
{
    if (!json_is_object(summary))
        return 0;
    switch (shape_of(format, summary)) {
    case SHAPE_PPROF:
        return pprof_tables(f, summary, o, false);
    case SHAPE_GOROUTINE:
        goroutine_findings(f, summary, o);
        return goroutine_groups(f, summary, o);
    case SHAPE_HEAP_TEXT:
        return heap_records(f, summary, o);
    default:
        return 0;
    }
}
