/* render — see render.h. */
#include "ctl/render.h"

#include "ctl/table.h"
#include "str.h"
#include "units.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TABLES  16
#define JSON_CUTOFF 400

void cd_render_opts_default(struct cd_render_opts *o)
{
    o->width = 80;
    o->top_n = 20;
    o->sample_type = NULL;
    o->cum = false;
    o->now_ms = 0;
}

/* ---- members, whatever the parser called them ------------------------------------------ */

static const json_t *get_any(const json_t *o, const char *const *keys)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        const json_t *v = json_object_get(o, keys[i]);
        if (v != NULL && !json_is_null(v))
            return v;
    }
    return NULL;
}

static const char *str_any(const json_t *o, const char *const *keys)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        const char *s = json_string_value(json_object_get(o, keys[i]));
        if (s != NULL)
            return s;
    }
    return NULL;
}

static bool num_any(const json_t *o, const char *const *keys, double *out)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        const json_t *v = json_object_get(o, keys[i]);
        if (json_is_number(v)) {
            *out = json_number_value(v);
            return true;
        }
    }
    return false;
}

/* ---- times and values ---------------------------------------------------------------- */

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

static void fmt_number(char *dst, size_t size, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(dst, size, "%.0f", v);
    else
        snprintf(dst, size, "%.4g", v);
}

/* Nanoseconds as "1.52s", "12.3ms", "850us", "4m10s". */
static void fmt_ns(char *dst, size_t size, double ns)
{
    double a = fabs(ns);
    if (a == 0) {
        snprintf(dst, size, "0");
    } else if (a >= 60e9) {
        cd_units_fmt_duration(dst, size, (int64_t)(ns / 1e6));
    } else if (a >= 1e9) {
        snprintf(dst, size, "%.3gs", ns / 1e9);
    } else if (a >= 1e6) {
        snprintf(dst, size, "%.3gms", ns / 1e6);
    } else if (a >= 1e3) {
        snprintf(dst, size, "%.3gus", ns / 1e3);
    } else {
        snprintf(dst, size, "%.0fns", ns);
    }
}

static void fmt_bytes(char *dst, size_t size, double v)
{
    if (v < 0) {
        char tmp[32];
        cd_units_fmt_size(tmp, sizeof(tmp), (uint64_t)(-v));
        snprintf(dst, size, "-%s", tmp);
        return;
    }
    cd_units_fmt_size(dst, size, (uint64_t)v);
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
    if (json_is_null(v) || v == NULL) {
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
    if (key != NULL && cd_str_has_suffix(key, "_unix_ms")) {
        cd_render_time(dst, size, (int64_t)d, now_ms);
    } else if (key != NULL && cd_str_has_suffix(key, "_bytes")) {
        fmt_bytes(dst, size, d);
    } else if (key != NULL && cd_str_has_suffix(key, "_ns")) {
        fmt_ns(dst, size, d);
    } else if (key != NULL && (cd_str_has_suffix(key, "_ms") || cd_str_has_suffix(key, "_us"))) {
        fmt_ns(dst, size, d * (cd_str_has_suffix(key, "_ms") ? 1e6 : 1e3));
    } else if (key != NULL && (cd_str_has_suffix(key, "_seconds") || strcmp(key, "seconds") == 0)) {
        fmt_ns(dst, size, d * 1e9);
    } else if (key != NULL &&
               (cd_str_has_suffix(key, "_pct") || cd_str_has_suffix(key, "_percent"))) {
        snprintf(dst, size, "%.1f%%", d);
    } else {
        fmt_number(dst, size, d);
    }
    return dst;
}

/* A value in a sample type's unit. */
static void fmt_unit(char *dst, size_t size, double v, const char *unit)
{
    if (unit != NULL && (strcmp(unit, "nanoseconds") == 0 || strcmp(unit, "ns") == 0))
        fmt_ns(dst, size, v);
    else if (unit != NULL && (strcmp(unit, "bytes") == 0 || strcmp(unit, "byte") == 0))
        fmt_bytes(dst, size, v);
    else if (unit != NULL && strcmp(unit, "seconds") == 0)
        fmt_ns(dst, size, v * 1e9);
    else
        fmt_number(dst, size, v);
}

/* Prints text word-wrapped to width: the first line after first, the rest after cont (both
 * ASCII prefixes). Words longer than a line are left whole. */
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
        size_t len = strlen(p);
        size_t take = len;
        if ((int)cd_table_width(p) > room) {
            /* the last space within room code points */
            size_t cut = 0, cps = 0, last_space = 0;
            while (p[cut] != '\0' && (int)cps <= room) {
                if (p[cut] == ' ')
                    last_space = cut;
                cut++;
                while ((p[cut] & 0xc0) == 0x80)
                    cut++;
                cps++;
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

/* ---- generic members ------------------------------------------------------------------- */

static bool in_list(const char *key, const char *const *list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcmp(key, list[i]) == 0)
            return true;
    }
    return false;
}

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

/* One line per element for a short array of flat objects: "- key: value, key: value". */
static bool print_object_list(FILE *f, const json_t *a, int indent,
                              const struct cd_render_opts *opt)
{
    size_t n = json_array_size(a);
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(a, i);
        if (!json_is_object(e) || json_object_size(e) > 8)
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)e, k, v)
        {
            if (json_is_object(v) || json_is_array(v))
                return false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(a, i);
        char line[1024];
        size_t o = 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)e, k, v)
        {
            char val[256];
            cd_render_value(val, sizeof(val), k, v, opt->now_ms);
            if (o < sizeof(line))
                o +=
                    (size_t)snprintf(line + o, sizeof(line) - o, "%s%s: %s", o ? ", " : "", k, val);
        }
        char *clean = cd_table_sanitize(line);
        char first[32], cont[32];
        snprintf(first, sizeof(first), "%*s- ", indent + 2, "");
        snprintf(cont, sizeof(cont), "%*s", indent + 4, "");
        cd_render_wrapped(f, first, cont, clean != NULL ? clean : "?", opt->width);
        free(clean);
    }
    return true;
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

/* Members as "key: value" lines; nested objects indented once, anything else as JSON. */
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
        } else if (json_is_object(v) || json_is_array(v)) {
            fprintf(f, "%*s%s:\n", indent, "", label);
            if (!json_is_array(v) || !print_object_list(f, v, indent, opt))
                print_json_cut(f, v, indent, opt->width);
        } else {
            char val[512], first[200];
            cd_render_value(val, sizeof(val), k, v, opt->now_ms);
            snprintf(first, sizeof(first), "%*s%s: ", indent, "", label);
            char cont[32];
            snprintf(cont, sizeof(cont), "%*s", indent + 4, "");
            cd_render_wrapped(f, first, cont, val, opt->width);
        }
    }
}

/* ---- pprof ---------------------------------------------------------------------------- */

struct top_table {
    const char *type;
    const char *unit;
    double total;
    bool has_total;
    const json_t *rows;
};

static const char *const k_rows[] = {"rows", "functions", "top", "entries", "items", NULL};
static const char *const k_type[] = {"sample_type", "type", "name", NULL};
static const char *const k_unit[] = {"unit", "sample_unit", NULL};
static const char *const k_total[] = {"total", "sum", NULL};
static const char *const k_func[] = {"function", "name", "func", "symbol", NULL};
static const char *const k_flat[] = {"flat", "self", NULL};
static const char *const k_cum[] = {"cum", "cumulative", "total", NULL};

static bool looks_like_row(const json_t *o)
{
    return json_is_object(o) && str_any(o, k_func) != NULL &&
           (json_object_get(o, "flat") != NULL || json_object_get(o, "cum") != NULL ||
            json_object_get(o, "self") != NULL);
}

/* The unit of a sample type from "sample_types": [{"type", "unit"}]. */
static const char *unit_of(const json_t *summary, const char *type)
{
    const json_t *st = json_object_get(summary, "sample_types");
    for (size_t i = 0; type != NULL && i < json_array_size(st); i++) {
        const json_t *e = json_array_get(st, i);
        const char *t = str_any(e, k_type);
        if (t != NULL && strcmp(t, type) == 0)
            return str_any(e, k_unit);
    }
    return NULL;
}

static void add_table(struct top_table *tabs, int *n, const json_t *summary, const char *type,
                      const json_t *t)
{
    if (*n >= MAX_TABLES)
        return;
    struct top_table tt = {0};
    tt.type = type;
    if (json_is_array(t)) {
        tt.rows = t;
    } else if (json_is_object(t)) {
        if (tt.type == NULL)
            tt.type = str_any(t, k_type);
        tt.unit = str_any(t, k_unit);
        tt.has_total = num_any(t, k_total, &tt.total);
        tt.rows = get_any(t, k_rows);
    }
    if (!json_is_array(tt.rows))
        return;
    if (tt.unit == NULL)
        tt.unit = unit_of(summary, tt.type);
    tabs[(*n)++] = tt;
}

static int collect_tables(const json_t *summary, struct top_table *tabs)
{
    static const char *const k_top[] = {"top", "tables", "top_functions", "functions", NULL};
    const json_t *top = get_any(summary, k_top);
    int n = 0;
    if (json_is_array(top)) {
        if (json_array_size(top) > 0 && looks_like_row(json_array_get(top, 0))) {
            const json_t *st = json_array_get(json_object_get(summary, "sample_types"), 0);
            add_table(tabs, &n, summary, str_any(st, k_type), top);
        } else {
            for (size_t i = 0; i < json_array_size(top); i++)
                add_table(tabs, &n, summary, NULL, json_array_get(top, i));
        }
    } else if (json_is_object(top)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)top, k, v)
        {
            add_table(tabs, &n, summary, k, v);
        }
    }
    return n;
}

struct row_ref {
    const json_t *row;
    double key;
};

static int cmp_rows(const void *a, const void *b)
{
    const struct row_ref *x = a, *y = b;
    return x->key < y->key ? 1 : x->key > y->key ? -1 : 0;
}

static void print_top_table(FILE *f, const struct top_table *tt, const struct cd_render_opts *o)
{
    size_t n = json_array_size(tt->rows);
    struct row_ref *refs = calloc(n ? n : 1, sizeof(*refs));
    if (refs == NULL)
        return;
    double total = tt->total, flat_sum = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(tt->rows, i);
        double flat = 0, cum = 0;
        num_any(r, k_flat, &flat);
        num_any(r, k_cum, &cum);
        flat_sum += flat;
        refs[i].row = r;
        refs[i].key = o->cum ? cum : flat;
    }
    /* Without a total, percentages are of what the table holds (labelled as such). */
    bool of_shown = !tt->has_total || total == 0;
    if (of_shown)
        total = flat_sum;
    qsort(refs, n, sizeof(*refs), cmp_rows);
    char tot[48];
    fmt_unit(tot, sizeof(tot), total, tt->unit);
    char *type = cd_table_sanitize(tt->type != NULL ? tt->type : "samples");
    char *unit = cd_table_sanitize(tt->unit != NULL ? tt->unit : "");
    size_t shown = n < o->top_n ? n : o->top_n;
    fprintf(f, "%s%s%s%s: total %s%s; top %zu of %zu functions by %s\n", type ? type : "?",
            unit && unit[0] ? " (" : "", unit ? unit : "", unit && unit[0] ? ")" : "", tot,
            of_shown ? " (of the rows listed)" : "", shown, n, o->cum ? "cumulative" : "flat");
    free(type);
    free(unit);
    struct cd_table t;
    cd_table_init(&t);
    cd_table_add_col(&t, "FLAT", CD_TABLE_RIGHT, 4, 12);
    cd_table_add_col(&t, "FLAT%", CD_TABLE_RIGHT, 5, 7);
    cd_table_add_col(&t, "SUM%", CD_TABLE_RIGHT, 5, 7);
    cd_table_add_col(&t, "CUM", CD_TABLE_RIGHT, 4, 12);
    cd_table_add_col(&t, "CUM%", CD_TABLE_RIGHT, 5, 7);
    cd_table_add_col(&t, "FUNCTION", CD_TABLE_LEFT, 20, 0);
    double sum = 0;
    for (size_t i = 0; i < shown; i++) {
        const json_t *r = refs[i].row;
        double flat = 0, cum = 0, fp, cp;
        num_any(r, k_flat, &flat);
        num_any(r, k_cum, &cum);
        sum += flat;
        static const char *const k_fp[] = {"flat_pct", "flat_percent", NULL};
        static const char *const k_cp[] = {"cum_pct", "cum_percent", NULL};
        if (!num_any(r, k_fp, &fp))
            fp = total != 0 ? flat * 100 / total : 0;
        if (!num_any(r, k_cp, &cp))
            cp = total != 0 ? cum * 100 / total : 0;
        char c0[32], c1[16], c2[16], c3[32], c4[16];
        fmt_unit(c0, sizeof(c0), flat, tt->unit);
        snprintf(c1, sizeof(c1), "%.2f%%", fp);
        snprintf(c2, sizeof(c2), "%.2f%%", total != 0 ? sum * 100 / total : 0);
        fmt_unit(c3, sizeof(c3), cum, tt->unit);
        snprintf(c4, sizeof(c4), "%.2f%%", cp);
        const char *fn = str_any(r, k_func);
        const char *cells[] = {c0, c1, c2, c3, c4, fn != NULL ? fn : "?"};
        cd_table_add_row(&t, cells);
    }
    cd_table_print(&t, f, o->width);
    cd_table_free(&t);
    free(refs);
}

static int render_pprof_tables(FILE *f, const json_t *summary, const struct cd_render_opts *o)
{
    struct top_table tabs[MAX_TABLES];
    int n = collect_tables(summary, tabs);
    int printed = 0;
    for (int i = 0; i < n; i++) {
        if (o->sample_type != NULL &&
            (tabs[i].type == NULL || strcmp(tabs[i].type, o->sample_type) != 0))
            continue;
        if (printed > 0)
            fputc('\n', f);
        print_top_table(f, &tabs[i], o);
        printed++;
    }
    if (n > 0 && printed == 0 && o->sample_type != NULL) {
        fprintf(f, "no sample type '%s' here; there are:", o->sample_type);
        for (int i = 0; i < n; i++)
            fprintf(f, " %s", tabs[i].type != NULL ? tabs[i].type : "?");
        fputc('\n', f);
    }
    return printed;
}

/* ---- goroutine dumps ------------------------------------------------------------------------ */

static const char *const k_gcount[] = {"count", "goroutines", "n", NULL};
static const char *const k_gstate[] = {"state", "status", "wait_reason", "reason", NULL};
static const char *const k_gframes[] = {"frames", "stack", "top_frames", "trace", NULL};

static const char *frame_function(const json_t *fr)
{
    if (json_is_string(fr))
        return json_string_value(fr);
    return str_any(fr, k_func);
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

static bool group_wait_minutes(const json_t *g, double *minutes)
{
    static const char *const k_min[] = {"wait_minutes_max", "max_wait_minutes", "wait_max_minutes",
                                        "wait_minutes",     "minutes",          NULL};
    static const char *const k_ms[] = {"wait_max_ms", "max_wait_ms", "wait_ms", NULL};
    static const char *const k_s[] = {"wait_max_seconds", "max_wait_seconds", NULL};
    double v;
    if (num_any(g, k_min, &v)) {
        *minutes = v;
        return true;
    }
    if (num_any(g, k_ms, &v)) {
        *minutes = v / 60000.0;
        return true;
    }
    if (num_any(g, k_s, &v)) {
        *minutes = v / 60.0;
        return true;
    }
    return false;
}

/* Where a group waits and who called it: the outermost standard-library frame before the first
 * user frame, and that user frame. */
static void group_site(const json_t *g, const char **blocked, const char **caller)
{
    const json_t *frames = get_any(g, k_gframes);
    size_t n = json_array_size(frames);
    *blocked = NULL;
    *caller = NULL;
    size_t k = n;
    for (size_t i = 0; i < n; i++) {
        const char *fn = frame_function(json_array_get(frames, i));
        if (fn != NULL && !is_std_function(fn)) {
            k = i;
            break;
        }
    }
    if (n > 0 && k > 0 && k < n) {
        *blocked = frame_function(json_array_get(frames, k - 1));
        *caller = frame_function(json_array_get(frames, k));
    } else if (n > 0) {
        *blocked = frame_function(json_array_get(frames, 0));
        if (n > 1)
            *caller = frame_function(json_array_get(frames, 1));
    }
    static const char *const k_fn[] = {"blocked_in", "top_function", "function", NULL};
    static const char *const k_caller[] = {"caller", "called_from", "user_function", NULL};
    if (*blocked == NULL)
        *blocked = str_any(g, k_fn);
    if (*caller == NULL)
        *caller = str_any(g, k_caller);
    if (*caller == NULL) {
        static const char *const k_created[] = {"created_by", NULL};
        const json_t *cb = get_any(g, k_created);
        *caller = json_is_string(cb) ? json_string_value(cb) : str_any(cb, k_func);
    }
}

static bool stuck_state(const char *state, bool *always)
{
    char s[64];
    size_t n = strlen(state);
    if (n >= sizeof(s))
        n = sizeof(s) - 1;
    for (size_t i = 0; i < n; i++)
        s[i] = (char)tolower((unsigned char)state[i]);
    s[n] = '\0';
    *always = strstr(s, "nil chan") != NULL || strstr(s, "no cases") != NULL;
    if (*always)
        return true;
    return strstr(s, "semacquire") != NULL || cd_str_has_prefix(s, "sync.") ||
           strstr(s, "mutex") != NULL || strcmp(s, "chan send") == 0;
}

char *cd_render_group_finding(const json_t *g)
{
    const char *state = str_any(g, k_gstate);
    double count = 1, minutes = 0;
    num_any(g, k_gcount, &count);
    bool has_wait = group_wait_minutes(g, &minutes);
    bool always = false;
    if (state == NULL || !stuck_state(state, &always))
        return NULL;
    if (!always && (!has_wait || minutes < 1))
        return NULL;
    const char *blocked, *caller;
    group_site(g, &blocked, &caller);
    long c = (long)count, m = (long)minutes;
    char wait[64] = "";
    if (has_wait && m >= 1)
        snprintf(wait, sizeof(wait), " (up to %ld minute%s)", m, m == 1 ? "" : "s");
    char *raw =
        cd_str_printf("%ld goroutine%s blocked in %s%s%s%s", c, c == 1 ? "" : "s",
                      blocked != NULL ? blocked : "?", caller != NULL ? " called from " : "",
                      caller != NULL ? caller : "", wait);
    char *clean = cd_table_sanitize(raw);
    free(raw);
    return clean;
}

json_t *cd_render_goroutine_findings(const json_t *summary)
{
    json_t *out = json_array();
    if (out == NULL)
        return NULL;
    const json_t *given = json_object_get(summary, "findings");
    for (size_t i = 0; i < json_array_size(given); i++) {
        const json_t *e = json_array_get(given, i);
        static const char *const k_msg[] = {"message", "text",        "summary",
                                            "title",   "description", NULL};
        const char *msg = json_is_string(e) ? json_string_value(e) : str_any(e, k_msg);
        char *derived = msg == NULL ? cd_render_group_finding(e) : NULL;
        if (msg == NULL && derived == NULL) {
            char *text = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
            json_array_append_new(out, json_string(text != NULL ? text : "?"));
            free(text);
            continue;
        }
        char *clean = cd_table_sanitize(msg != NULL ? msg : derived);
        json_array_append_new(out, json_string(clean != NULL ? clean : "?"));
        free(clean);
        free(derived);
    }
    if (json_array_size(given) > 0)
        return out;
    const json_t *groups = json_object_get(summary, "groups");
    for (size_t i = 0; i < json_array_size(groups); i++) {
        char *msg = cd_render_group_finding(json_array_get(groups, i));
        if (msg != NULL)
            json_array_append_new(out, json_string(msg));
        free(msg);
    }
    return out;
}

static int render_groups(FILE *f, const json_t *summary, const struct cd_render_opts *o)
{
    const json_t *groups = json_object_get(summary, "groups");
    size_t n = json_array_size(groups);
    if (n == 0)
        return 0;
    size_t shown = n < o->top_n ? n : o->top_n;
    fprintf(f, "goroutines grouped by identical stack, largest first (%zu of %zu groups):\n", shown,
            n);
    struct cd_table t;
    cd_table_init(&t);
    cd_table_add_col(&t, "COUNT", CD_TABLE_RIGHT, 5, 8);
    cd_table_add_col(&t, "STATE", CD_TABLE_LEFT, 8, 22);
    cd_table_add_col(&t, "WAITING", CD_TABLE_RIGHT, 7, 10);
    cd_table_add_col(&t, "BLOCKED IN", CD_TABLE_LEFT, 12, 0);
    cd_table_add_col(&t, "CALLED FROM", CD_TABLE_LEFT, 12, 0);
    for (size_t i = 0; i < shown; i++) {
        const json_t *g = json_array_get(groups, i);
        double count = 0, minutes = 0;
        num_any(g, k_gcount, &count);
        char c0[24], c2[24] = "";
        snprintf(c0, sizeof(c0), "%.0f", count);
        if (group_wait_minutes(g, &minutes) && minutes >= 1)
            snprintf(c2, sizeof(c2), "%.0fm", minutes);
        const char *blocked, *caller;
        group_site(g, &blocked, &caller);
        const char *state = str_any(g, k_gstate);
        const char *cells[] = {c0, state != NULL ? state : "?", c2, blocked != NULL ? blocked : "?",
                               caller != NULL ? caller : ""};
        cd_table_add_row(&t, cells);
    }
    cd_table_print(&t, f, o->width);
    cd_table_free(&t);
    return 1;
}

static void render_goroutines(FILE *f, const json_t *summary, const struct cd_render_opts *o)
{
    double total = 0;
    static const char *const k_total_g[] = {"goroutines", "total", "count", NULL};
    bool has_total = num_any(summary, k_total_g, &total);
    const json_t *states = json_object_get(summary, "states");
    if (has_total)
        fprintf(f, "%.0f goroutines", total);
    else
        fprintf(f, "goroutine dump");
    if (json_is_object(states) && json_object_size(states) > 0) {
        /* Largest state first. */
        size_t n = json_object_size(states), k = 0;
        struct row_ref *refs = calloc(n, sizeof(*refs));
        const char **names = calloc(n, sizeof(*names));
        const char *key;
        json_t *v;
        if (refs != NULL && names != NULL) {
            json_object_foreach((json_t *)states, key, v)
            {
                refs[k].row = v;
                refs[k].key = json_number_value(v);
                names[k] = key;
                k++;
            }
            for (size_t i = 0; i < k; i++) {
                size_t best = i;
                for (size_t j = i + 1; j < k; j++) {
                    if (refs[j].key > refs[best].key)
                        best = j;
                }
                struct row_ref tr = refs[i];
                refs[i] = refs[best];
                refs[best] = tr;
                const char *tn = names[i];
                names[i] = names[best];
                names[best] = tn;
            }
            fputs(": ", f);
            for (size_t i = 0; i < k; i++) {
                char *clean = cd_table_sanitize(names[i]);
                fprintf(f, "%s%.0f %s", i ? ", " : "", refs[i].key, clean != NULL ? clean : "?");
                free(clean);
            }
        }
        free(refs);
        free(names);
    }
    fputc('\n', f);
    json_t *findings = cd_render_goroutine_findings(summary);
    if (json_array_size(findings) > 0) {
        fprintf(f, "\nFINDINGS\n");
        for (size_t i = 0; i < json_array_size(findings); i++)
            cd_render_wrapped(f, "  ! ", "    ", json_string_value(json_array_get(findings, i)),
                              o->width);
    }
    json_decref(findings);
    if (json_array_size(json_object_get(summary, "groups")) > 0) {
        fputc('\n', f);
        render_groups(f, summary, o);
    }
}

/* ---- entry points --------------------------------------------------------------------------- */

enum shape {
    SHAPE_PPROF,
    SHAPE_GOROUTINE,
    SHAPE_OTHER,
};

static enum shape shape_of(const json_t *s)
{
    const char *fmt = json_string_value(json_object_get(s, "format"));
    if (fmt != NULL && strcmp(fmt, "pprof") == 0)
        return SHAPE_PPROF;
    if (fmt != NULL && strstr(fmt, "goroutine") != NULL)
        return SHAPE_GOROUTINE;
    if (fmt != NULL)
        return SHAPE_OTHER;
    if (json_object_get(s, "groups") != NULL || json_object_get(s, "findings") != NULL)
        return SHAPE_GOROUTINE;
    if (json_object_get(s, "top") != NULL || json_object_get(s, "sample_types") != NULL)
        return SHAPE_PPROF;
    return SHAPE_OTHER;
}

void cd_render_summary(FILE *f, const json_t *summary, const struct cd_render_opts *o)
{
    if (!json_is_object(summary)) {
        fprintf(f, "no summary (the bytes did not parse, or the kind has no parser)\n");
        return;
    }
    switch (shape_of(summary)) {
    case SHAPE_PPROF: {
        static const char *const skip[] = {"top",       "tables", "top_functions",
                                           "functions", "format", NULL};
        print_fields(f, summary, skip, 0, o);
        struct top_table tabs[MAX_TABLES];
        if (collect_tables(summary, tabs) > 0)
            fputc('\n', f);
        render_pprof_tables(f, summary, o);
        break;
    }
    case SHAPE_GOROUTINE: {
        static const char *const skip[] = {"groups", "findings", "states", "goroutines",
                                           "total",  "count",    "format", NULL};
        render_goroutines(f, summary, o);
        bool header = false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)summary, k, v)
        {
            if (!in_list(k, skip))
                header = true;
        }
        if (header) {
            fputc('\n', f);
            print_fields(f, summary, skip, 0, o);
        }
        break;
    }
    default: {
        static const char *const skip[] = {"format", NULL};
        print_fields(f, summary, skip, 0, o);
        break;
    }
    }
}

int cd_render_top(FILE *f, const json_t *summary, const struct cd_render_opts *o)
{
    if (!json_is_object(summary))
        return 0;
    if (shape_of(summary) == SHAPE_GOROUTINE) {
        json_t *findings = cd_render_goroutine_findings(summary);
        for (size_t i = 0; i < json_array_size(findings); i++)
            cd_render_wrapped(f, "! ", "  ", json_string_value(json_array_get(findings, i)),
                              o->width);
        if (json_array_size(findings) > 0)
            fputc('\n', f);
        json_decref(findings);
        return render_groups(f, summary, o);
    }
    return render_pprof_tables(f, summary, o);
}
