/* tracesum — see tracesum.h. */
#include "tracesum.h"

#include "hash.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cd_tracesum_idmap_slot {
    uint64_t key;
    uint64_t val;
    uint8_t used;
};

/* Longest name copied into the JSON document; trace strings may be up to 1e6 bytes (v1). */
#define NAME_JSON_MAX 256

static bool budget_take(struct cd_tracesum_budget *b, size_t bytes)
{
    if (b == NULL)
        return true;
    if (bytes > b->limit || b->used > b->limit - bytes)
        return false;
    b->used += bytes;
    return true;
}

static void budget_give(struct cd_tracesum_budget *b, size_t bytes)
{
    if (b != NULL)
        b->used = bytes > b->used ? 0 : b->used - bytes;
}

/* splitmix64's finaliser: IDs are often dense small integers, so spread them. */
static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* ---------------------------------------------------------------------------------------------
 * idmap */

void cd_tracesum_idmap_init(struct cd_tracesum_idmap *m, struct cd_tracesum_budget *budget,
                            size_t max)
{
    m->slots = NULL;
    m->n = 0;
    m->cap = 0;
    m->max = max;
    m->budget = budget;
}

void cd_tracesum_idmap_free(struct cd_tracesum_idmap *m)
{
    if (m == NULL)
        return;
    free(m->slots);
    budget_give(m->budget, m->cap * sizeof(*m->slots));
    m->slots = NULL;
    m->n = 0;
    m->cap = 0;
}

void cd_tracesum_idmap_clear(struct cd_tracesum_idmap *m)
{
    if (m->slots != NULL)
        memset(m->slots, 0, m->cap * sizeof(*m->slots));
    m->n = 0;
}

uint64_t *cd_tracesum_idmap_find(const struct cd_tracesum_idmap *m, uint64_t key)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)mix64(key) & mask;; i = (i + 1) & mask) {
        struct cd_tracesum_idmap_slot *s = &m->slots[i];
        if (!s->used)
            return NULL;
        if (s->key == key)
            return &s->val;
    }
}

static int idmap_grow(struct cd_tracesum_idmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    if (!budget_take(m->budget, ncap * sizeof(*m->slots)))
        return -ENOMEM;
    struct cd_tracesum_idmap_slot *ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL) {
        budget_give(m->budget, ncap * sizeof(*m->slots));
        return -ENOMEM;
    }
    size_t mask = ncap - 1;
    for (size_t k = 0; k < m->cap; k++) {
        if (!m->slots[k].used)
            continue;
        size_t i = (size_t)mix64(m->slots[k].key) & mask;
        while (ns[i].used)
            i = (i + 1) & mask;
        ns[i] = m->slots[k];
    }
    free(m->slots);
    budget_give(m->budget, m->cap * sizeof(*m->slots));
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

int cd_tracesum_idmap_get(struct cd_tracesum_idmap *m, uint64_t key, uint64_t **val, bool *created)
{
    uint64_t *v = cd_tracesum_idmap_find(m, key);
    if (v != NULL) {
        *val = v;
        if (created != NULL)
            *created = false;
        return 0;
    }
    if (m->n >= m->max)
        return -E2BIG;
    if ((m->n + 1) * 4 > m->cap * 3) { /* keep the load under 3/4 */
        int rc = idmap_grow(m);
        if (rc < 0)
            return rc;
    }
    size_t mask = m->cap - 1;
    size_t i = (size_t)mix64(key) & mask;
    while (m->slots[i].used)
        i = (i + 1) & mask;
    m->slots[i].used = 1;
    m->slots[i].key = key;
    m->slots[i].val = 0;
    m->n++;
    *val = &m->slots[i].val;
    if (created != NULL)
        *created = true;
    return 0;
}

void cd_tracesum_idmap_each(const struct cd_tracesum_idmap *m,
                            void (*fn)(void *ctx, uint64_t key, uint64_t val), void *ctx)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].used)
            fn(ctx, m->slots[i].key, m->slots[i].val);
}

/* ---------------------------------------------------------------------------------------------
 * names */

static void names_init(struct cd_tracesum_names *t, struct cd_tracesum_budget *budget, size_t max)
{
    memset(t, 0, sizeof(*t));
    t->budget = budget;
    t->max = max;
}

static void names_free(struct cd_tracesum_names *t)
{
    free(t->v);
    free(t->index);
    budget_give(t->budget, t->cap * sizeof(*t->v) + t->icap * sizeof(*t->index));
    t->v = NULL;
    t->index = NULL;
    t->n = t->cap = t->icap = 0;
}

static bool names_reindex(struct cd_tracesum_names *t, size_t nicap)
{
    if (!budget_take(t->budget, nicap * sizeof(*t->index)))
        return false;
    uint32_t *ni = calloc(nicap, sizeof(*ni));
    if (ni == NULL) {
        budget_give(t->budget, nicap * sizeof(*t->index));
        return false;
    }
    for (size_t k = 0; k < t->n; k++) {
        size_t i = (size_t)cd_hash_fnv1a64(t->v[k].s, t->v[k].len) & (nicap - 1);
        while (ni[i] != 0)
            i = (i + 1) & (nicap - 1);
        ni[i] = (uint32_t)(k + 1);
    }
    free(t->index);
    budget_give(t->budget, t->icap * sizeof(*t->index));
    t->index = ni;
    t->icap = nicap;
    return true;
}

void cd_tracesum_names_add(struct cd_tracesum_names *t, const char *s, size_t len, uint64_t count,
                           double ns)
{
    uint64_t h = cd_hash_fnv1a64(s, len);
    if (t->icap > 0) {
        for (size_t i = (size_t)h & (t->icap - 1); t->index[i] != 0; i = (i + 1) & (t->icap - 1)) {
            struct cd_tracesum_name *e = &t->v[t->index[i] - 1];
            if (e->len == len && memcmp(e->s, s, len) == 0) {
                e->count += count;
                e->total_ns += ns;
                return;
            }
        }
    }
    if (t->n >= t->max) {
        t->dropped += count;
        return;
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        if (!budget_take(t->budget, (ncap - t->cap) * sizeof(*t->v))) {
            t->dropped += count;
            return;
        }
        struct cd_tracesum_name *nv = realloc(t->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            budget_give(t->budget, (ncap - t->cap) * sizeof(*t->v));
            t->dropped += count;
            return;
        }
        t->v = nv;
        t->cap = ncap;
    }
    if ((t->n + 1) * 2 > t->icap && !names_reindex(t, t->icap ? t->icap * 2 : 32)) {
        t->dropped += count;
        return;
    }
    t->v[t->n] = (struct cd_tracesum_name){.s = s, .len = len, .count = count, .total_ns = ns};
    t->n++;
    size_t i = (size_t)h & (t->icap - 1);
    while (t->index[i] != 0)
        i = (i + 1) & (t->icap - 1);
    t->index[i] = (uint32_t)t->n;
}

/* ---------------------------------------------------------------------------------------------
 * ordered events */

void cd_tracesum_oevs_push(struct cd_tracesum_oevs *o, uint64_t ts, uint8_t kind, uint64_t arg,
                           uint64_t m)
{
    if (o->n == o->cap) {
        size_t ncap = o->cap ? o->cap * 2 : 256;
        size_t more = (ncap - o->cap) * (sizeof(*o->v) + sizeof(*o->keys));
        if (!budget_take(o->budget, more)) {
            o->dropped++;
            return;
        }
        struct cd_tracesum_oev *nv = realloc(o->v, ncap * sizeof(*nv));
        if (nv != NULL)
            o->v = nv;
        struct cd_tracesum_okey *nk = nv ? realloc(o->keys, ncap * sizeof(*nk)) : NULL;
        if (nk != NULL)
            o->keys = nk;
        if (nv == NULL || nk == NULL) { /* the old arrays stay valid at the old size */
            budget_give(o->budget, more);
            o->dropped++;
            return;
        }
        o->cap = ncap;
    }
    o->v[o->n] = (struct cd_tracesum_oev){.arg = arg, .m = m, .kind = kind};
    o->keys[o->n] = (struct cd_tracesum_okey){.ts = ts, .idx = o->n};
    o->n++;
}

void cd_tracesum_oevs_clear(struct cd_tracesum_oevs *o)
{
    o->n = 0;
}

void cd_tracesum_oevs_free(struct cd_tracesum_oevs *o)
{
    if (o == NULL)
        return;
    free(o->v);
    free(o->keys);
    budget_give(o->budget, o->cap * (sizeof(*o->v) + sizeof(*o->keys)));
    o->v = NULL;
    o->keys = NULL;
    o->n = o->cap = 0;
}

static int okey_cmp(const void *pa, const void *pb)
{
    const struct cd_tracesum_okey *a = pa, *b = pb;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

#define RADIX_BITS 11
#define RADIX_SIZE (1u << RADIX_BITS)

void cd_tracesum_oevs_sort(struct cd_tracesum_oevs *o)
{
    size_t n = o->n;
    struct cd_tracesum_okey *k = o->keys;
    bool sorted = true;
    uint64_t lo = n ? k[0].ts : 0, hi = lo;
    for (size_t i = 1; i < n; i++) {
        if (k[i].ts < k[i - 1].ts)
            sorted = false;
        if (k[i].ts < lo)
            lo = k[i].ts;
        if (k[i].ts > hi)
            hi = k[i].ts;
    }
    if (sorted) /* keys were pushed in file order, so ties are already in order */
        return;
    /* Batches are sorted runs interleaved across Ps/Ms: a stable LSD radix sort on the offset
     * from the earliest time needs only as many passes as the time span has digits. */
    size_t bytes = n * sizeof(*k);
    bool charged = budget_take(o->budget, bytes);
    struct cd_tracesum_okey *tmp = charged ? malloc(bytes) : NULL;
    if (tmp == NULL) {
        if (charged)
            budget_give(o->budget, bytes);
        qsort(k, n, sizeof(*k), okey_cmp); /* in place, no extra memory */
        return;
    }
    uint64_t span = hi - lo;
    size_t count[RADIX_SIZE];
    struct cd_tracesum_okey *src = k, *dst = tmp;
    for (unsigned shift = 0; shift < 64 && (span >> shift) != 0; shift += RADIX_BITS) {
        memset(count, 0, sizeof(count));
        for (size_t i = 0; i < n; i++)
            count[((src[i].ts - lo) >> shift) & (RADIX_SIZE - 1)]++;
        size_t sum = 0;
        for (size_t d = 0; d < RADIX_SIZE; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[((src[i].ts - lo) >> shift) & (RADIX_SIZE - 1)]++] = src[i];
        struct cd_tracesum_okey *t = src;
        src = dst;
        dst = t;
    }
    if (src != k)
        memcpy(k, src, bytes);
    free(tmp);
    budget_give(o->budget, bytes);
}

/* ---------------------------------------------------------------------------------------------
 * the summary */

void cd_tracesum_init(struct cd_tracesum *ts, const struct cd_parse_limits *lim, size_t input_bytes)
{
    memset(ts, 0, sizeof(*ts));
    if (lim != NULL)
        ts->lim = *lim;
    else
        cd_parse_limits_default(&ts->lim);
    ts->budget.limit = ts->lim.max_memory;
    ts->input_bytes = input_bytes;
    size_t max_names = ts->lim.max_groups ? ts->lim.max_groups : 1;
    struct cd_tracesum_names *tables[] = {&ts->stw_kinds,  &ts->block_reasons, &ts->stop_reasons,
                                          &ts->task_names, &ts->region_names,  &ts->log_keys,
                                          &ts->labels};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        names_init(tables[i], &ts->budget, max_names);
}

void cd_tracesum_free(struct cd_tracesum *ts)
{
    if (ts == NULL)
        return;
    names_free(&ts->stw_kinds);
    names_free(&ts->block_reasons);
    names_free(&ts->stop_reasons);
    names_free(&ts->task_names);
    names_free(&ts->region_names);
    names_free(&ts->log_keys);
    names_free(&ts->labels);
}

/* A JSON string for bytes that may be anything: cut to NAME_JSON_MAX, and if that is not valid
 * UTF-8, every non-ASCII or control byte becomes '?'. */
static json_t *json_name(const char *s, size_t len)
{
    if (len > NAME_JSON_MAX)
        len = NAME_JSON_MAX;
    json_t *j = json_stringn(s, len);
    if (j != NULL)
        return j;
    char buf[NAME_JSON_MAX];
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    return json_stringn(buf, len);
}

static int set_new(json_t *obj, const char *key, json_t *val)
{
    if (val == NULL)
        return -ENOMEM;
    return json_object_set_new(obj, key, val) == 0 ? 0 : -ENOMEM;
}

static json_t *json_u64(uint64_t v)
{
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static int set_u64(json_t *obj, const char *key, uint64_t v)
{
    return set_new(obj, key, json_u64(v));
}

/* Whole nanoseconds in [0, 9.2e18]: sums over hostile timestamps can be anything, NaN included. */
static double ns_clamp(double ns)
{
    if (!(ns >= 0))
        return 0;
    if (ns > 9.2e18)
        return 9.2e18;
    return trunc(ns);
}

/* ns values are null when the trace gave no frequency (truncated v1 traces lose the footer). */
static int set_ns(const struct cd_tracesum *ts, json_t *obj, const char *key, double ns)
{
    if (ts->freq == 0)
        return set_new(obj, key, json_null());
    return set_new(obj, key, json_integer((json_int_t)ns_clamp(ns)));
}

static int name_cmp(const void *pa, const void *pb)
{
    const struct cd_tracesum_name *a = *(const struct cd_tracesum_name *const *)pa;
    const struct cd_tracesum_name *b = *(const struct cd_tracesum_name *const *)pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c != 0)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* Entries by count (then name), at most top_n of them. *rest gets the count of the others. */
static const struct cd_tracesum_name **names_sorted(const struct cd_tracesum_names *t, size_t top_n,
                                                    size_t *n_out, uint64_t *rest)
{
    *n_out = 0;
    *rest = t->dropped;
    if (t->n == 0)
        return NULL;
    const struct cd_tracesum_name **v = malloc(t->n * sizeof(*v));
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < t->n; i++)
        v[i] = &t->v[i];
    qsort(v, t->n, sizeof(*v), name_cmp);
    size_t n = t->n < top_n ? t->n : top_n;
    for (size_t i = n; i < t->n; i++)
        *rest += v[i]->count;
    *n_out = n;
    return v;
}

/* {"name": count, ..., "(other)": count} */
static json_t *names_object(const struct cd_tracesum_names *t, size_t top_n)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    size_t n;
    uint64_t rest;
    const struct cd_tracesum_name **v = names_sorted(t, top_n, &n, &rest);
    if (v == NULL && t->n > 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        json_t *key = json_name(v[i]->s, v[i]->len);
        if (key == NULL)
            goto fail;
        int rc = json_object_set_new(o, json_string_value(key), json_u64(v[i]->count));
        json_decref(key);
        if (rc != 0)
            goto fail;
    }
    if (rest > 0 && set_u64(o, "(other)", rest) < 0)
        goto fail;
    free(v);
    return o;
fail:
    free(v);
    json_decref(o);
    return NULL;
}

/* [{"name": ..., "count": n}, ...] */
static json_t *names_list(const struct cd_tracesum_names *t, size_t top_n)
{
    json_t *a = json_array();
    if (a == NULL)
        return NULL;
    size_t n;
    uint64_t rest;
    const struct cd_tracesum_name **v = names_sorted(t, top_n, &n, &rest);
    if (v == NULL && t->n > 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object();
        if (e == NULL || json_array_append_new(a, e) != 0)
            goto fail;
        if (set_new(e, "name", json_name(v[i]->s, v[i]->len)) < 0 ||
            set_u64(e, "count", v[i]->count) < 0)
            goto fail;
    }
    free(v);
    return a;
fail:
    free(v);
    json_decref(a);
    return NULL;
}

/* {"kind": {"count": n, "total_ns": ns}} */
static json_t *stw_object(const struct cd_tracesum *ts)
{
    const struct cd_tracesum_names *t = &ts->stw_kinds;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    size_t n;
    uint64_t rest;
    const struct cd_tracesum_name **v = names_sorted(t, ts->lim.top_n, &n, &rest);
    if (v == NULL && t->n > 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object();
        json_t *key = json_name(v[i]->s, v[i]->len);
        if (e == NULL || key == NULL || json_object_set_new(o, json_string_value(key), e) != 0) {
            json_decref(key);
            goto fail;
        }
        json_decref(key);
        if (set_u64(e, "count", v[i]->count) < 0 || set_ns(ts, e, "total_ns", v[i]->total_ns) < 0)
            goto fail;
    }
    free(v);
    return o;
fail:
    free(v);
    json_decref(o);
    return NULL;
}

static uint64_t procs_seen(const struct cd_tracesum *ts)
{
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof(ts->p_seen); i++)
        n += (uint64_t)__builtin_popcount(ts->p_seen[i]);
    return n;
}

int cd_tracesum_json(const struct cd_tracesum *ts, const char *error, json_t **out,
                     struct cd_err *err)
{
    int rc = -ENOMEM;
    json_t *o = json_object();
    json_t *sub = NULL;
    if (o == NULL)
        goto fail;
    char ver[32];
    snprintf(ver, sizeof(ver), "1.%d", ts->minor);
    if (set_new(o, "go_version", json_string(ver)) < 0 ||
        set_new(o, "format", json_string(ts->family == 2 ? "v2" : "v1")) < 0 ||
        set_new(o, "partial", json_boolean(error != NULL)) < 0)
        goto fail;
    if (error != NULL && set_new(o, "error", json_name(error, strlen(error))) < 0)
        goto fail;
    uint64_t events = 0;
    for (size_t i = 0; i < CD_TRACESUM_MAX_TYPES; i++)
        events += ts->type_counts[i];
    double dur = ts->have_time ? ts->t_max_ns - ts->t_min_ns : 0;
    if (set_u64(o, "bytes", ts->input_bytes) < 0 ||
        set_u64(o, "bytes_parsed", ts->bytes_parsed) < 0 ||
        set_new(o, "frequency", ts->freq ? json_u64(ts->freq) : json_null()) < 0 ||
        set_ns(ts, o, "duration_ns", dur) < 0 ||
        set_new(o, "wall_start_unix_ns",
                ts->have_wall ? json_integer(ts->wall_start_unix_ns) : json_null()) < 0 ||
        set_u64(o, "events", events) < 0)
        goto fail;

    sub = json_object();
    if (sub == NULL)
        goto fail;
    for (size_t i = 0; i < CD_TRACESUM_MAX_TYPES; i++) {
        if (ts->type_counts[i] == 0)
            continue;
        char unknown[24];
        const char *name = ts->type_names != NULL ? ts->type_names[i] : NULL;
        if (name == NULL) {
            snprintf(unknown, sizeof(unknown), "type%zu", i);
            name = unknown;
        }
        if (set_u64(sub, name, ts->type_counts[i]) < 0)
            goto fail;
    }
    rc = set_new(o, "event_counts", sub);
    sub = NULL;
    if (rc < 0)
        goto fail;
    rc = -ENOMEM;

    if (set_u64(o, "batches", ts->batches) < 0 ||
        set_new(o, "generations", ts->family == 2 ? json_u64(ts->generations) : json_null()) < 0 ||
        set_new(o, "first_generation",
                ts->family == 2 && ts->generations > 0 ? json_u64(ts->first_gen) : json_null()) <
            0 ||
        set_u64(o, "experimental_batches", ts->exp_batches) < 0 ||
        set_u64(o, "clock_snapshots", ts->clock_snapshots) < 0 ||
        set_u64(o, "strings", ts->strings) < 0 || set_u64(o, "stacks", ts->stacks) < 0 ||
        set_u64(o, "cpu_samples", ts->cpu_samples) < 0)
        goto fail;

    json_t *g = json_object();
    if (set_new(o, "goroutines", g) < 0 || set_u64(g, "at_start", ts->g_at_start) < 0 ||
        set_u64(g, "created", ts->g_created) < 0 || set_u64(g, "ended", ts->g_ended) < 0 ||
        set_u64(g, "max_live", ts->g_max_live) < 0)
        goto fail;

    json_t *gc = json_object();
    if (set_new(o, "gc", gc) < 0 || set_u64(gc, "count", ts->gc_count) < 0 ||
        set_ns(ts, gc, "total_ns", ts->gc_total_ns) < 0 ||
        set_u64(gc, "mark_assists", ts->gc_mark_assists) < 0 ||
        set_u64(gc, "heap_alloc_max_bytes", ts->heap_alloc_max) < 0 ||
        set_u64(gc, "heap_goal_max_bytes", ts->heap_goal_max) < 0)
        goto fail;

    json_t *stw = json_object();
    if (set_new(o, "stw", stw) < 0 || set_u64(stw, "count", ts->stw_count) < 0 ||
        set_ns(ts, stw, "total_ns", ts->stw_total_ns) < 0 ||
        set_new(stw, "by_kind", stw_object(ts)) < 0)
        goto fail;

    json_t *procs = json_object();
    if (set_new(o, "procs", procs) < 0 || set_u64(procs, "max", ts->procs_max) < 0 ||
        set_u64(procs, "last", ts->procs_last) < 0 || set_u64(procs, "seen", procs_seen(ts)) < 0)
        goto fail;

    size_t top = ts->lim.top_n ? ts->lim.top_n : 1;
    if (set_new(o, "blocking", names_object(&ts->block_reasons, top)) < 0 ||
        set_new(o, "stop_reasons", names_object(&ts->stop_reasons, top)) < 0)
        goto fail;

    json_t *sc = json_object();
    if (set_new(o, "syscalls", sc) < 0 || set_u64(sc, "count", ts->syscalls) < 0 ||
        set_u64(sc, "blocked", ts->syscalls_blocked) < 0)
        goto fail;

    json_t *user = json_object();
    if (set_new(o, "user", user) < 0 || set_u64(user, "tasks", ts->tasks) < 0 ||
        set_u64(user, "tasks_ended", ts->tasks_ended) < 0 ||
        set_u64(user, "regions", ts->regions) < 0 || set_u64(user, "logs", ts->logs) < 0 ||
        set_new(user, "task_names", names_list(&ts->task_names, top)) < 0 ||
        set_new(user, "region_names", names_list(&ts->region_names, top)) < 0 ||
        set_new(user, "log_keys", names_list(&ts->log_keys, top)) < 0)
        goto fail;

    if (set_new(o, "labels", names_object(&ts->labels, top)) < 0)
        goto fail;

    uint64_t names_dropped = ts->stw_kinds.dropped + ts->block_reasons.dropped +
                             ts->stop_reasons.dropped + ts->task_names.dropped +
                             ts->region_names.dropped + ts->log_keys.dropped + ts->labels.dropped;
    json_t *dr = json_object();
    if (set_new(o, "dropped", dr) < 0 || set_u64(dr, "strings", ts->strings_dropped) < 0 ||
        set_u64(dr, "goroutines", ts->goroutines_dropped) < 0 ||
        set_u64(dr, "ordered_events", ts->ordered_dropped) < 0 ||
        set_u64(dr, "string_ids", ts->ids_dropped) < 0 || set_u64(dr, "names", names_dropped) < 0)
        goto fail;

    *out = o;
    return 0;
fail:
    json_decref(sub);
    json_decref(o);
    return cd_err_set(err, rc, "trace: out of memory building the summary");
}

int cd_tracesum_series(const struct cd_tracesum *ts, struct cd_summary *out, struct cd_err *err)
{
    struct {
        const char *name;
        double value;
        bool timed;
    } pts[] = {
        {"duration_ns", ts->have_time ? ts->t_max_ns - ts->t_min_ns : 0, true},
        {"goroutines_max", (double)ts->g_max_live, false},
        {"goroutines_created", (double)ts->g_created, false},
        {"goroutines_ended", (double)ts->g_ended, false},
        {"gc_count", (double)ts->gc_count, false},
        {"gc_total_ns", ts->gc_total_ns, true},
        {"stw_count", (double)ts->stw_count, false},
        {"stw_total_ns", ts->stw_total_ns, true},
        {"syscalls", (double)ts->syscalls, false},
        {"syscalls_blocked", (double)ts->syscalls_blocked, false},
        {"procs_max", (double)ts->procs_max, false},
        {"cpu_samples", (double)ts->cpu_samples, false},
        {"tasks", (double)ts->tasks, false},
        {"regions", (double)ts->regions, false},
        {"logs", (double)ts->logs, false},
        {"heap_alloc_max_bytes", (double)ts->heap_alloc_max, false},
    };
    for (size_t i = 0; i < sizeof(pts) / sizeof(pts[0]); i++) {
        if (pts[i].timed && ts->freq == 0)
            continue;
        double v = pts[i].timed ? ns_clamp(pts[i].value) : pts[i].value;
        int rc = cd_summary_add_series(out, pts[i].name, v);
        if (rc < 0)
            return cd_err_set(err, rc, "trace: adding series %s failed", pts[i].name);
    }
    return 0;
}
