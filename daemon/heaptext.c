/* heaptext — see heaptext.h for the contract and the summary's shape. */
#include "heaptext.h"

#include "textscan.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HT_FRAMES 10 /* frames shown per record */

struct ht_values {
    int64_t inuse_objects, inuse_space, alloc_objects, alloc_space;
};

struct ht_record {
    struct ht_values v; /* scaled */
    size_t order;
    const char *frames; /* the record's "#\t..." lines, or NULL */
    size_t frames_len;
    const char *pcs; /* "0x.. 0x.." after '@' */
    size_t pcs_len;
};

struct ht_memstat {
    const char *key;
    const char *name;
    const char *name2; /* "inuse / sys" pairs */
};

static const struct ht_memstat memstats[] = {
    {"Alloc", "alloc", NULL},
    {"TotalAlloc", "total_alloc", NULL},
    {"Sys", "sys", NULL},
    {"Lookups", "lookups", NULL},
    {"Mallocs", "mallocs", NULL},
    {"Frees", "frees", NULL},
    {"HeapAlloc", "heap_alloc", NULL},
    {"HeapSys", "heap_sys", NULL},
    {"HeapIdle", "heap_idle", NULL},
    {"HeapInuse", "heap_inuse", NULL},
    {"HeapReleased", "heap_released", NULL},
    {"HeapObjects", "heap_objects", NULL},
    {"Stack", "stack_inuse", "stack_sys"},
    {"MSpan", "mspan_inuse", "mspan_sys"},
    {"MCache", "mcache_inuse", "mcache_sys"},
    {"BuckHashSys", "buck_hash_sys", NULL},
    {"GCSys", "gc_sys", NULL},
    {"OtherSys", "other_sys", NULL},
    {"NextGC", "next_gc", NULL},
    {"LastGC", "last_gc_unix_ns", NULL},
    {"NumGC", "num_gc", NULL},
    {"NumForcedGC", "num_forced_gc", NULL},
    {"GCCPUFraction", "gc_cpu_fraction", NULL},
    {"MaxRSS", "max_rss", NULL},
};

struct cd_heaptext {
    const struct cd_parse_limits *lim;
    json_t *root;
    json_t *ms; /* memstats object, or NULL until "# runtime.MemStats" */
    int64_t rate;
    struct ht_values header, totals;
    size_t records, unparsed, order;
    struct ht_record *top; /* min-heap by inuse_space, max_top entries */
    size_t n_top, max_top;
    struct ht_record cur;
    bool in_record;
    int64_t pause_ns[256];
    size_t n_pause;
    int bad;
};

bool cd_heaptext_sniff(const uint8_t *data, size_t len)
{
    return cd_textscan_starts((const char *)data, len, "heap profile: ");
}

/* Go's scaleHeapSample (runtime/pprof/protomem.go). */
static void scale(int64_t count, int64_t size, int64_t rate, int64_t *c, int64_t *s)
{
    if (count == 0 || size == 0) {
        *c = *s = 0;
        return;
    }
    if (rate <= 1) {
        *c = count;
        *s = size;
        return;
    }
    double avg = (double)size / (double)count;
    double k = 1 / (1 - exp(-avg / (double)rate));
    double dc = (double)count * k, ds = (double)size * k;
    *c = dc >= 9.2e18 ? INT64_MAX : dc <= -9.2e18 ? INT64_MIN : (int64_t)dc;
    *s = ds >= 9.2e18 ? INT64_MAX : ds <= -9.2e18 ? INT64_MIN : (int64_t)ds;
}

/* "A: B [C: D] @ rest" -> values and the span after '@'. */
static int parse_counts(const char *p, size_t len, struct ht_values *v, const char **rest,
                        size_t *rest_len)
{
    const char *end = p + len;
    int64_t x[4];
    for (int i = 0; i < 4; i++) {
        while (p < end && (*p == ' ' || *p == '['))
            p++;
        const char *q = p;
        while (q < end && ((*q >= '0' && *q <= '9') || *q == '-'))
            q++;
        if (cd_textscan_i64(p, (size_t)(q - p), &x[i]) < 0)
            return -EINVAL;
        char want = i % 2 == 0 ? ':' : (i == 1 ? ' ' : ']');
        if (q >= end || *q != want)
            return -EINVAL;
        p = q + 1;
    }
    while (p < end && *p == ' ')
        p++;
    if (p >= end || *p != '@')
        return -EINVAL;
    p++;
    while (p < end && *p == ' ')
        p++;
    v->inuse_objects = x[0];
    v->inuse_space = x[1];
    v->alloc_objects = x[2];
    v->alloc_space = x[3];
    *rest = p;
    *rest_len = (size_t)(end - p);
    return 0;
}

static bool rec_before(const struct ht_record *a, const struct ht_record *b)
{
    if (a->v.inuse_space != b->v.inuse_space)
        return a->v.inuse_space < b->v.inuse_space;
    return a->order > b->order;
}

static void keep_top(struct cd_heaptext *h, const struct ht_record *r)
{
    size_t cap = h->max_top;
    struct ht_record *t = h->top;
    if (cap == 0)
        return;
    size_t i;
    if (h->n_top < cap) {
        i = h->n_top++;
        t[i] = *r;
        while (i > 0 && rec_before(&t[i], &t[(i - 1) / 2])) {
            struct ht_record x = t[i];
            t[i] = t[(i - 1) / 2];
            t[(i - 1) / 2] = x;
            i = (i - 1) / 2;
        }
        return;
    }
    if (!rec_before(&t[0], r))
        return;
    t[0] = *r;
    for (i = 0;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < h->n_top && rec_before(&t[l], &t[m]))
            m = l;
        if (l + 1 < h->n_top && rec_before(&t[l + 1], &t[m]))
            m = l + 1;
        if (m == i)
            break;
        struct ht_record x = t[i];
        t[i] = t[m];
        t[m] = x;
        i = m;
    }
}

static void end_record(struct cd_heaptext *h)
{
    if (!h->in_record)
        return;
    h->in_record = false;
    keep_top(h, &h->cur);
}

static void memstat_line(struct cd_heaptext *h, const char *line, size_t len)
{
    /* "# Key = value" */
    const char *eq = memmem(line, len, " = ", 3);
    if (len < 3 || line[0] != '#' || eq == NULL) {
        h->unparsed++;
        return;
    }
    const char *k = line + 1, *v = eq + 3;
    size_t kn = (size_t)(eq - k), vn = (size_t)(line + len - v);
    cd_textscan_trim(&k, &kn);
    cd_textscan_trim(&v, &vn);
    if (kn == 7 && memcmp(k, "PauseNs", 7) == 0 && vn >= 2 && v[0] == '[') {
        const char *p = v + 1, *end = v + vn - (v[vn - 1] == ']');
        while (p < end && h->n_pause < 256) {
            while (p < end && *p == ' ')
                p++;
            const char *q = p;
            while (q < end && *q != ' ')
                q++;
            int64_t x;
            if (q > p && cd_textscan_i64(p, (size_t)(q - p), &x) == 0)
                h->pause_ns[h->n_pause++] = x;
            p = q;
        }
        return;
    }
    for (size_t i = 0; i < sizeof(memstats) / sizeof(memstats[0]); i++) {
        if (strlen(memstats[i].key) != kn || memcmp(memstats[i].key, k, kn) != 0)
            continue;
        int64_t x;
        if (memstats[i].name2 != NULL) {
            const char *slash = memmem(v, vn, " / ", 3);
            int64_t y;
            if (slash && cd_textscan_i64(v, (size_t)(slash - v), &x) == 0 &&
                cd_textscan_i64(slash + 3, (size_t)(v + vn - slash - 3), &y) == 0) {
                h->bad |= cd_textscan_jset(h->ms, memstats[i].name, json_integer(x));
                h->bad |= cd_textscan_jset(h->ms, memstats[i].name2, json_integer(y));
            } else {
                h->unparsed++;
            }
        } else if (cd_textscan_i64(v, vn, &x) == 0) {
            h->bad |= cd_textscan_jset(h->ms, memstats[i].name, json_integer(x));
        } else {
            char num[64];
            char *e = NULL;
            double d = 0;
            if (vn < sizeof(num)) {
                memcpy(num, v, vn);
                num[vn] = '\0';
                d = strtod(num, &e);
            }
            if (e != NULL && e != num && *e == '\0' && isfinite(d))
                h->bad |= cd_textscan_jset(h->ms, memstats[i].name, json_real(d));
            else
                h->unparsed++;
        }
        return;
    }
}

static void read_line(struct cd_heaptext *h, const char *line, size_t len)
{
    if (h->ms != NULL) {
        if (len > 0)
            memstat_line(h, line, len);
        return;
    }
    if (len == 0) {
        end_record(h);
        return;
    }
    if (line[0] == '#') {
        if (cd_textscan_starts(line, len, "# runtime.MemStats")) {
            end_record(h);
            h->ms = json_object();
            h->bad |= h->ms == NULL;
            if (h->ms != NULL)
                h->bad |= cd_textscan_jset(h->root, "memstats", json_incref(h->ms));
            return;
        }
        struct cd_textscan_frame f;
        if (h->in_record && cd_textscan_frame(line, len, &f) == 0) {
            if (h->cur.frames == NULL)
                h->cur.frames = line;
            h->cur.frames_len = (size_t)(line + len - h->cur.frames);
            return;
        }
        h->unparsed++;
        return;
    }
    struct ht_values raw;
    const char *rest;
    size_t rest_len;
    if (parse_counts(line, len, &raw, &rest, &rest_len) < 0) {
        h->unparsed++;
        return;
    }
    end_record(h);
    struct ht_record *r = &h->cur;
    memset(r, 0, sizeof(*r));
    scale(raw.inuse_objects, raw.inuse_space, h->rate, &r->v.inuse_objects, &r->v.inuse_space);
    scale(raw.alloc_objects, raw.alloc_space, h->rate, &r->v.alloc_objects, &r->v.alloc_space);
    cd_textscan_add_sat(&h->totals.inuse_objects, r->v.inuse_objects);
    cd_textscan_add_sat(&h->totals.inuse_space, r->v.inuse_space);
    cd_textscan_add_sat(&h->totals.alloc_objects, r->v.alloc_objects);
    cd_textscan_add_sat(&h->totals.alloc_space, r->v.alloc_space);
    r->order = h->order++;
    r->pcs = rest;
    r->pcs_len = rest_len;
    h->in_record = true;
    h->records++;
}

static json_t *values_json(const struct ht_values *v)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (cd_textscan_jset(o, "inuse_objects", json_integer(v->inuse_objects)) |
        cd_textscan_jset(o, "inuse_space", json_integer(v->inuse_space)) |
        cd_textscan_jset(o, "alloc_objects", json_integer(v->alloc_objects)) |
        cd_textscan_jset(o, "alloc_space", json_integer(v->alloc_space))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *frame_json(const char *fn, size_t fn_len, const char *file, size_t file_len,
                          int64_t line)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (cd_textscan_jset(o, "function", cd_textscan_json_str(fn, fn_len)) |
        cd_textscan_jset(o, "file", cd_textscan_json_str(file ? file : "", file_len)) |
        cd_textscan_jset(o, "line", json_integer(line))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *record_frames(const struct ht_record *r)
{
    json_t *arr = json_array();
    int bad = arr == NULL;
    size_t n = 0;
    if (!bad && r->frames != NULL) {
        struct cd_textscan sc;
        cd_textscan_init(&sc, r->frames, r->frames_len);
        const char *line;
        size_t len;
        struct cd_textscan_frame f;
        while (!bad && n < HT_FRAMES && cd_textscan_line(&sc, &line, &len)) {
            if (cd_textscan_frame(line, len, &f) < 0)
                continue;
            bad |= f.func_len ? cd_textscan_jpush(
                                    arr, frame_json(f.func, f.func_len, f.file, f.file_len, f.line))
                              : cd_textscan_jpush(arr, frame_json(f.pc_text, f.pc_len, NULL, 0, 0));
            n++;
        }
    } else if (!bad) {
        const char *p = r->pcs, *end = r->pcs + r->pcs_len;
        while (!bad && n < HT_FRAMES && p < end) {
            while (p < end && *p == ' ')
                p++;
            const char *q = p;
            while (q < end && *q != ' ')
                q++;
            if (q > p) {
                bad |= cd_textscan_jpush(arr, frame_json(p, (size_t)(q - p), NULL, 0, 0));
                n++;
            }
            p = q;
        }
    }
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static int cmp_record(const void *a, const void *b)
{
    const struct ht_record *x = a, *y = b;
    if (x->v.inuse_space != y->v.inuse_space)
        return x->v.inuse_space > y->v.inuse_space ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static json_t *top_json(struct cd_heaptext *h)
{
    if (h->n_top > 1)
        qsort(h->top, h->n_top, sizeof(*h->top), cmp_record);
    json_t *arr = json_array();
    int bad = arr == NULL;
    for (size_t i = 0; !bad && i < h->n_top; i++) {
        json_t *o = values_json(&h->top[i].v);
        bad |= cd_textscan_jpush(arr, o);
        if (!bad)
            bad |= cd_textscan_jset(o, "frames", record_frames(&h->top[i]));
    }
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static int add_series(struct cd_heaptext *h, struct cd_summary *out)
{
    const struct {
        const char *name;
        int64_t v;
    } totals[] = {{"inuse_space", h->totals.inuse_space},
                  {"inuse_objects", h->totals.inuse_objects},
                  {"alloc_space", h->totals.alloc_space},
                  {"alloc_objects", h->totals.alloc_objects}};
    for (size_t i = 0; i < 4; i++)
        if (cd_summary_add_series(out, totals[i].name, (double)totals[i].v) < 0)
            return -ENOMEM;
    if (h->ms == NULL)
        return 0;
    const char *key;
    json_t *v;
    json_object_foreach(h->ms, key, v)
    {
        if (json_is_number(v) && cd_summary_add_series(out, key, json_number_value(v)) < 0)
            return -ENOMEM;
    }
    return 0;
}

int cd_heaptext_summarize(const uint8_t *data, size_t len, const struct cd_parse_limits *lim,
                          struct cd_summary *out, struct cd_err *err)
{
    struct cd_parse_limits dflt;
    lim = cd_textscan_limits(lim, &dflt);
    struct cd_heaptext h;
    memset(&h, 0, sizeof(h));
    h.lim = lim;
    struct cd_summary sum;
    cd_summary_init(&sum);
    int rc = 0;
    if (len > lim->max_input) {
        rc = cd_err_set(err, -EFBIG, "heap text: input of %zu bytes exceeds the limit of %zu bytes",
                        len, lim->max_input);
        goto fail;
    }
    struct cd_textscan sc;
    cd_textscan_init(&sc, data, len);
    const char *line, *rest;
    size_t n, rest_len;
    /* "heap profile: A: B [C: D] @ heap/<2*MemProfileRate>" */
    if (!cd_textscan_line(&sc, &line, &n) || !cd_textscan_starts(line, n, "heap profile: ") ||
        parse_counts(line + 14, n - 14, &h.header, &rest, &rest_len) < 0) {
        rc = cd_err_set(err, -EBADMSG,
                        "heap text: no \"heap profile: N: N [N: N] @ heap/N\" header");
        goto fail;
    }
    int64_t two_rate = 0;
    if (cd_textscan_starts(rest, rest_len, "heap/") &&
        cd_textscan_i64(rest + 5, rest_len - 5, &two_rate) == 0 && two_rate > 0)
        h.rate = two_rate / 2;
    h.root = json_object();
    /* a record line is at least 16 bytes: no more rows than the text can hold */
    h.max_top = lim->top_n < len / 16 + 1 ? lim->top_n : len / 16 + 1;
    h.top = h.max_top ? calloc(h.max_top, sizeof(*h.top)) : NULL;
    if (h.root == NULL || (h.max_top && h.top == NULL)) {
        rc = cd_err_set(err, -ENOMEM, "heap text: out of memory");
        goto fail;
    }
    while (cd_textscan_line(&sc, &line, &n))
        read_line(&h, line, n);
    end_record(&h);
    if (h.ms != NULL && h.n_pause > 0) {
        json_t *ngc = json_object_get(h.ms, "num_gc");
        if (json_is_integer(ngc) && json_integer_value(ngc) > 0) {
            size_t i = (size_t)((json_integer_value(ngc) + 255) % 256);
            if (i < h.n_pause)
                h.bad |= cd_textscan_jset(h.ms, "gc_pause_last_ns", json_integer(h.pause_ns[i]));
        }
    }
    if (h.ms == NULL)
        h.bad |= cd_textscan_jset(h.root, "memstats", json_null());
    h.bad |= cd_textscan_jset(h.root, "rate", json_integer(h.rate));
    h.bad |= cd_textscan_jset(h.root, "header", values_json(&h.header));
    h.bad |= cd_textscan_jset(h.root, "totals", values_json(&h.totals));
    h.bad |= cd_textscan_jset(h.root, "records", json_integer((json_int_t)h.records));
    h.bad |= cd_textscan_jset(h.root, "top_records", top_json(&h));
    h.bad |= cd_textscan_jset(h.root, "unparsed_lines", json_integer((json_int_t)h.unparsed));
    if (h.bad || add_series(&h, &sum) < 0) {
        rc = cd_err_set(err, -ENOMEM, "heap text: out of memory building the summary");
        goto fail;
    }
    cd_textscan_publish(out, &sum, CD_FORMAT_HEAP_TEXT, &h.root);
fail:
    cd_summary_free(&sum);
    json_decref(h.root);
    json_decref(h.ms);
    free(h.top);
    return rc;
}
