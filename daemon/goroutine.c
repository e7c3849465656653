/*
 * goroutine — see goroutine.h for the contract and the summary's shape.
 *
 * One call = one struct cd_goroutine on the caller's stack. Lines are read once; the goroutine
 * (or debug=1 record) being read lives in `b` with its frames in a scratch array of
 * lim->max_stack_depth entries, and is folded into the counters, tables and groups when its block
 * ends. Every table is an open-addressing hash table of arena-allocated entries that start with
 * their hash; tables grow by doubling (the old slot arrays stay in the arena until the end).
 */
#include "goroutine.h"

#include "arena.h"
#include "hash.h"
#include "textscan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gr_span {
    const char *p;
    size_t len;
};

struct gr_frame {
    struct gr_span fn;
    struct gr_span file;
    int64_t line;
};

enum gr_class { GC_RUNNING, GC_RUNNABLE, GC_SYSCALL, GC_BLOCKED, GC_OTHER, GC_N };
static const char *const class_names[GC_N] = {"running", "runnable", "syscall", "blocked", "other"};

#define GR_BUCKETS 6
static const struct {
    const char *name;
    int64_t min;
} buckets[GR_BUCKETS] = {{"<1", 0},     {"1-4", 1},     {"5-14", 5},
                         {"15-59", 15}, {"60-239", 60}, {"240+", 240}};

#define GR_GROUP_STATES 4

/* Table entries start with their hash (see struct gr_table). */
struct gr_group {
    uint64_t hash;
    size_t order; /* first-seen order: the tie-break when sorting */
    struct gr_frame *frames;
    size_t n_frames;
    size_t depth; /* frames of the first goroutine, kept or not */
    bool elided;
    size_t count;
    struct gr_span states[GR_GROUP_STATES];
    size_t state_counts[GR_GROUP_STATES];
    size_t n_states;
    size_t other_states;
    int64_t wait_min, wait_max;
    size_t locked;
    struct gr_frame created_by;
    bool has_created_by;
    uint64_t example_id;
    bool has_example;
    struct gr_span labels;
    size_t leak_n;
    int64_t leak_min, leak_max;
    struct gr_span leak_state;
};

struct gr_count {
    uint64_t hash;
    size_t order;
    struct gr_span key;
    size_t count;
};

struct gr_pileup {
    uint64_t hash;
    size_t order;
    struct gr_span blocked_in;
    struct gr_span lock;
    struct gr_span state;
    struct gr_frame at;
    size_t count;
    int64_t min, max;
};

struct gr_waiter {
    uint64_t id;
    int64_t minutes;
    size_t order;
    struct gr_span state;
    struct gr_frame frame;
    bool has_frame;
};

struct gr_table {
    void **slots;
    size_t mask;
    size_t n;
};

/* The goroutine block (debug=2) or record (debug=1) being read. */
struct gr_block {
    bool open;
    struct cd_goroutine_header h;
    size_t weight; /* goroutines it stands for: 1, or a debug=1 record's count */
    size_t n_frames, depth;
    bool pending_file;  /* a kept function line waits for its file line */
    bool pending_skip;  /* a dropped or ancestor function line waits for its file line */
    bool pending_creat; /* "created by" waits for its file line */
    bool elided, in_ancestor;
    struct gr_frame created_by;
    bool has_created_by;
    struct gr_span labels;
    struct gr_span pcs; /* debug=1 "N @ 0x.. 0x.." addresses, used when no frame lines follow */
};

struct cd_goroutine {
    const struct cd_parse_limits *lim;
    struct cd_err *err;
    const char *base;
    struct cd_arena arena;
    struct gr_frame *frames; /* scratch, max_depth entries */
    size_t max_depth;        /* lim->max_stack_depth, or fewer when the text cannot hold more */
    size_t max_waiters;      /* lim->top_n, likewise */
    struct gr_block b;
    bool debug1;
    struct gr_span profile;
    uint64_t header_total;
    size_t total, examined, unparsed;
    size_t blocks; /* blocks (debug=1: records) read, for lim->max_goroutines */
    bool truncated_text, stopped;
    size_t classes[GC_N];
    size_t buckets[GR_BUCKETS];
    int64_t max_wait;
    size_t locked;
    struct gr_table groups, states, creators, pileups;
    size_t groups_other, states_other, creators_other, pileups_other;
    struct gr_waiter *waiters; /* min-heap by (minutes, later first), lim->top_n entries */
    size_t n_waiters;
    size_t order;
    bool oom;
};

/* ---------------------------------------------------------------------------------------------
 * Spans and names */

static struct gr_span span(const char *p, size_t len)
{
    struct gr_span s = {p, len};
    return s;
}

static bool span_eq(struct gr_span a, struct gr_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool span_is(struct gr_span a, const char *lit)
{
    return span_eq(a, span(lit, strlen(lit)));
}

static bool span_starts(struct gr_span a, const char *lit)
{
    return cd_textscan_starts(a.p, a.len, lit);
}

static const char *find(const char *p, size_t len, const char *lit)
{
    return memmem(p, len, lit, strlen(lit));
}

/* "pkg.F(0x1, {...})" -> "pkg.F"; "sync.(*Mutex).Lock(...)" -> "sync.(*Mutex).Lock". */
static struct gr_span func_name(const char *line, size_t len)
{
    const char *fp = find(line, len, " fp=");
    if (fp != NULL)
        len = (size_t)(fp - line);
    if (len > 0 && line[len - 1] == ')') {
        for (size_t i = len - 1; i > 0; i--)
            if (line[i - 1] == '(')
                return span(line, i - 1);
    }
    return span(line, len);
}

/* "\t/src/x.go:12 +0x1d fp=.. sp=.. pc=.." -> file "/src/x.go", line 12. */
static void file_line(const char *line, size_t len, struct gr_frame *f)
{
    const char *p = line, *end = line + len;
    while (p < end && (*p == '\t' || *p == ' '))
        p++;
    size_t n = (size_t)(end - p);
    const char *cut = find(p, n, " +0x");
    if (cut == NULL)
        cut = find(p, n, " fp=");
    if (cut != NULL)
        n = (size_t)(cut - p);
    while (n > 0 && p[n - 1] == ' ')
        n--;
    /* the line number follows the last ':' (Windows paths have "C:") */
    size_t c = n;
    while (c > 0 && p[c - 1] != ':')
        c--;
    int64_t ln;
    if (c > 0 && cd_textscan_i64(p + c, n - c, &ln) == 0) {
        f->file = span(p, c - 1);
        f->line = ln;
    } else {
        f->file = span(p, n);
        f->line = 0;
    }
}

static bool is_runtime(struct gr_span fn)
{
    return span_starts(fn, "runtime.") || span_starts(fn, "runtime/internal/");
}

static bool is_sync(struct gr_span fn)
{
    return span_starts(fn, "sync.") || span_starts(fn, "internal/sync.");
}

static enum gr_class classify(struct gr_span st)
{
    if (span_is(st, "running"))
        return GC_RUNNING;
    if (span_is(st, "runnable") || span_is(st, "preempted"))
        return GC_RUNNABLE;
    if (span_is(st, "syscall"))
        return GC_SYSCALL;
    if (span_is(st, "idle") || span_is(st, "dead") || span_is(st, "copystack"))
        return GC_OTHER;
    return GC_BLOCKED;
}

static bool is_chan_wait(struct gr_span st)
{
    return span_starts(st, "chan receive") || span_starts(st, "chan send") ||
           span_starts(st, "select");
}

static bool is_lock_state(struct gr_span st)
{
    return span_is(st, "semacquire") || span_is(st, "sync.Mutex.Lock") ||
           span_is(st, "sync.RWMutex.Lock") || span_is(st, "sync.RWMutex.RLock");
}

/* ---------------------------------------------------------------------------------------------
 * Header */

int cd_goroutine_parse_header(const char *line, size_t len, struct cd_goroutine_header *h)
{
    static const char prefix[] = "goroutine ";
    const size_t plen = sizeof(prefix) - 1;
    if (len < plen + 5 || memcmp(line, prefix, plen) != 0 || line[len - 1] != ':')
        return -EINVAL;
    const char *p = line + plen, *end = line + len - 1; /* end: the final ':' */
    const char *d = p;
    while (d < end && *d >= '0' && *d <= '9')
        d++;
    uint64_t id;
    if (d == p || cd_textscan_u64(p, (size_t)(d - p), &id) < 0 || d >= end || *d != ' ')
        return -EINVAL;
    /* Level >= 2 tracebacks put "gp=0x.. m=.." between the id and the status. */
    const char *open = memchr(d, '[', (size_t)(end - d));
    if (open == NULL)
        return -EINVAL;
    const char *close = memchr(open + 1, ']', (size_t)(end - open - 1));
    if (close == NULL)
        return -EINVAL;
    struct cd_goroutine_header r = {0};
    r.id = id;
    r.extra = close + 1;
    r.extra_len = (size_t)(end - close - 1);
    cd_textscan_trim(&r.extra, &r.extra_len);
    const char *st = open + 1;
    size_t n = (size_t)(close - st);
    /* Trailing ", N minutes" / ", locked to thread" items; the rest is the status. */
    for (;;) {
        const char *comma = NULL;
        for (size_t i = n; i >= 2; i--)
            if (st[i - 2] == ',' && st[i - 1] == ' ') {
                comma = st + i - 2;
                break;
            }
        if (comma == NULL)
            break;
        const char *item = comma + 2;
        size_t ilen = (size_t)(st + n - item);
        uint64_t minutes;
        if (ilen == 16 && memcmp(item, "locked to thread", 16) == 0) {
            r.locked = true;
        } else if (ilen > 8 && memcmp(item + ilen - 8, " minutes", 8) == 0 &&
                   cd_textscan_u64(item, ilen - 8, &minutes) == 0 && minutes <= INT64_MAX) {
            r.minutes = (int64_t)minutes;
        } else if (cd_textscan_starts(item, ilen, "labels:") && r.extra_len == 0) {
            r.extra = item;
            r.extra_len = ilen;
        } else {
            break;
        }
        n = (size_t)(comma - st);
    }
    if (n >= 7 && memcmp(st + n - 7, " (scan)", 7) == 0) {
        r.scan = true;
        n -= 7;
    }
    r.status = st;
    r.status_len = n;
    *h = r;
    return 0;
}

static bool count_header(const char *line, size_t len, struct gr_span *name, uint64_t *total)
{
    const char *t = find(line, len, " profile: total ");
    if (t == NULL || t == line)
        return false;
    for (const char *c = line; c < t; c++)
        if (*c == ' ' || *c == '\t')
            return false;
    const char *num = t + 16;
    if (cd_textscan_u64(num, (size_t)(line + len - num), total) < 0)
        return false;
    *name = span(line, (size_t)(t - line));
    return true;
}

bool cd_goroutine_sniff(const uint8_t *data, size_t len)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', len);
    size_t first = nl ? (size_t)(nl - s) : len;
    if (first > 0 && s[first - 1] == '\r')
        first--;
    struct cd_goroutine_header h;
    if (first > 10 && memcmp(s, "goroutine ", 10) == 0 &&
        cd_goroutine_parse_header(s, first, &h) == 0)
        return true;
    struct gr_span name;
    uint64_t total;
    return first < 256 && count_header(s, first, &name, &total);
}

/* ---------------------------------------------------------------------------------------------
 * Tables */

static uint64_t hash_span(uint64_t h, struct gr_span s)
{
    for (size_t i = 0; i < s.len; i++) {
        h ^= (uint8_t)s.p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= 0xff; /* separator: "ab"+"c" differs from "a"+"bc" */
    h *= 0x100000001b3ULL;
    return h;
}

#define HASH_SEED 0xcbf29ce484222325ULL

static int table_init(struct cd_goroutine *g, struct gr_table *t, size_t cap)
{
    t->slots = cd_arena_calloc(&g->arena, cap, sizeof(*t->slots));
    t->mask = cap - 1;
    t->n = 0;
    return t->slots ? 0 : -ENOMEM;
}

/* The slot holding an entry equal to key (eq), or the empty slot where it would go. */
static void **table_slot(struct gr_table *t, uint64_t hash, bool (*eq)(const void *, const void *),
                         const void *key)
{
    for (size_t i = (size_t)(hash >> 11) & t->mask;; i = (i + 1) & t->mask) {
        void *e = t->slots[i];
        if (e == NULL || (*(const uint64_t *)e == hash && eq(e, key)))
            return &t->slots[i];
    }
}

/* Keeps the load under one half; -ENOMEM. */
static int table_reserve(struct cd_goroutine *g, struct gr_table *t)
{
    if ((t->n + 1) * 2 <= t->mask + 1)
        return 0;
    struct gr_table nt;
    if (table_init(g, &nt, (t->mask + 1) * 2) < 0)
        return -ENOMEM;
    for (size_t i = 0; i <= t->mask; i++) {
        void *e = t->slots[i];
        if (e == NULL)
            continue;
        uint64_t h = *(const uint64_t *)e;
        size_t j = (size_t)(h >> 11) & nt.mask;
        while (nt.slots[j] != NULL)
            j = (j + 1) & nt.mask;
        nt.slots[j] = e;
    }
    nt.n = t->n;
    *t = nt;
    return 0;
}

static bool count_eq(const void *e, const void *key)
{
    return span_eq(((const struct gr_count *)e)->key, *(const struct gr_span *)key);
}

/* Adds w to the counter of key; past `max` distinct keys, to *other. */
static void count_add(struct cd_goroutine *g, struct gr_table *t, struct gr_span key, size_t w,
                      size_t max, size_t *other)
{
    uint64_t h = hash_span(HASH_SEED, key);
    void **slot = table_slot(t, h, count_eq, &key);
    if (*slot != NULL) {
        ((struct gr_count *)*slot)->count += w;
        return;
    }
    if (t->n >= max) {
        *other += w;
        return;
    }
    struct gr_count *c = cd_arena_alloc(&g->arena, sizeof(*c));
    if (c == NULL || table_reserve(g, t) < 0) {
        g->oom = true;
        return;
    }
    c->hash = h;
    c->order = g->order++;
    c->key = key;
    c->count = w;
    *table_slot(t, h, count_eq, &key) = c;
    t->n++;
}

struct group_key {
    const struct gr_frame *frames;
    size_t n;
};

static bool group_eq(const void *e, const void *key)
{
    const struct gr_group *gr = e;
    const struct group_key *k = key;
    if (gr->n_frames != k->n)
        return false;
    for (size_t i = 0; i < k->n; i++)
        if (!span_eq(gr->frames[i].fn, k->frames[i].fn))
            return false;
    return true;
}

struct pileup_key {
    struct gr_span blocked_in, lock;
};

static bool pileup_eq(const void *e, const void *key)
{
    const struct gr_pileup *p = e;
    const struct pileup_key *k = key;
    return span_eq(p->blocked_in, k->blocked_in) && span_eq(p->lock, k->lock);
}

/* ---------------------------------------------------------------------------------------------
 * Folding one goroutine (or record) into the summary */

static bool waiter_before(const struct gr_waiter *a, const struct gr_waiter *b)
{
    /* heap order: the least interesting on top (fewest minutes, then the latest seen) */
    if (a->minutes != b->minutes)
        return a->minutes < b->minutes;
    return a->order > b->order;
}

static void waiter_sift_down(struct gr_waiter *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && waiter_before(&h[l], &h[m]))
            m = l;
        if (r < n && waiter_before(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        struct gr_waiter t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void add_waiter(struct cd_goroutine *g, const struct gr_waiter *w)
{
    size_t cap = g->max_waiters;
    if (cap == 0)
        return;
    struct gr_waiter *h = g->waiters;
    if (g->n_waiters < cap) {
        size_t i = g->n_waiters++;
        h[i] = *w;
        while (i > 0 && waiter_before(&h[i], &h[(i - 1) / 2])) {
            struct gr_waiter t = h[i];
            h[i] = h[(i - 1) / 2];
            h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
        return;
    }
    if (waiter_before(&h[0], w)) {
        h[0] = *w;
        waiter_sift_down(h, g->n_waiters, 0);
    }
}

static void group_add_state(struct gr_group *gr, struct gr_span st, size_t w)
{
    for (size_t i = 0; i < gr->n_states; i++)
        if (span_eq(gr->states[i], st)) {
            gr->state_counts[i] += w;
            return;
        }
    if (gr->n_states < GR_GROUP_STATES) {
        gr->states[gr->n_states] = st;
        gr->state_counts[gr->n_states++] = w;
    } else {
        gr->other_states += w;
    }
}

static struct gr_group *find_group(struct cd_goroutine *g, const struct gr_block *b)
{
    uint64_t h = HASH_SEED;
    for (size_t i = 0; i < b->n_frames; i++)
        h = hash_span(h, g->frames[i].fn);
    struct group_key key = {g->frames, b->n_frames};
    void **slot = table_slot(&g->groups, h, group_eq, &key);
    if (*slot != NULL)
        return *slot;
    if (g->groups.n >= g->lim->max_groups)
        return NULL;
    struct gr_group *gr = cd_arena_calloc(&g->arena, 1, sizeof(*gr));
    struct gr_frame *frames = cd_arena_alloc(&g->arena, b->n_frames * sizeof(*frames));
    if (gr == NULL || frames == NULL || table_reserve(g, &g->groups) < 0) {
        g->oom = true;
        return NULL;
    }
    memcpy(frames, g->frames, b->n_frames * sizeof(*frames));
    gr->hash = h;
    gr->order = g->order++;
    gr->frames = frames;
    gr->n_frames = b->n_frames;
    gr->depth = b->depth;
    gr->elided = b->elided;
    gr->wait_min = INT64_MAX;
    gr->leak_min = INT64_MAX;
    if (b->has_created_by) {
        gr->created_by = b->created_by;
        gr->has_created_by = true;
    }
    gr->labels = b->labels;
    *table_slot(&g->groups, h, group_eq, &key) = gr;
    g->groups.n++;
    return gr;
}

/* A lock waiter: records it under (calling function, lock). */
static void check_pileup(struct cd_goroutine *g, const struct gr_block *b, struct gr_span state)
{
    if (b->n_frames == 0)
        return;
    if (g->debug1) {
        /* No status in debug=1: the top frame tells (leading runtime frames are hidden). */
        struct gr_span top = g->frames[0].fn;
        if (find(top.p, top.len, "runtime_Semacquire") == NULL)
            return;
    } else if (!is_lock_state(state)) {
        return;
    }
    struct gr_span lock = {NULL, 0};
    size_t i = 0;
    for (; i < b->n_frames; i++) {
        struct gr_span fn = g->frames[i].fn;
        if (!is_runtime(fn) && !is_sync(fn))
            break;
        if (span_starts(fn, "sync."))
            lock = fn;
    }
    if (i == b->n_frames)
        return; /* no caller outside runtime and sync in the kept frames */
    if (lock.p == NULL) {
        if (g->debug1 || span_is(state, "semacquire"))
            return;
        lock = state; /* sync.Mutex.Lock etc. named by the status itself */
    } else if (!span_starts(lock, "sync.(*Mutex).") && !span_starts(lock, "sync.(*RWMutex).")) {
        return; /* semacquire for a WaitGroup, Cond, ...: not a lock */
    }
    struct pileup_key key = {g->frames[i].fn, lock};
    uint64_t h = hash_span(hash_span(HASH_SEED, key.blocked_in), key.lock);
    void **slot = table_slot(&g->pileups, h, pileup_eq, &key);
    struct gr_pileup *p = *slot;
    if (p == NULL) {
        if (g->pileups.n >= CD_GOROUTINE_MAX_PILEUPS) {
            g->pileups_other += b->weight;
            return;
        }
        p = cd_arena_calloc(&g->arena, 1, sizeof(*p));
        if (p == NULL || table_reserve(g, &g->pileups) < 0) {
            g->oom = true;
            return;
        }
        p->hash = h;
        p->order = g->order++;
        p->blocked_in = key.blocked_in;
        p->lock = lock;
        p->state = state;
        p->at = g->frames[i];
        p->min = INT64_MAX;
        *table_slot(&g->pileups, h, pileup_eq, &key) = p;
        g->pileups.n++;
    }
    p->count += b->weight;
    if (b->h.minutes < p->min)
        p->min = b->h.minutes;
    if (b->h.minutes > p->max)
        p->max = b->h.minutes;
}

static void fold_block(struct cd_goroutine *g, const struct gr_block *b)
{
    size_t w = b->weight;
    struct gr_span state = span(b->h.status, b->h.status_len);
    int64_t minutes = b->h.minutes;
    if (!g->debug1) {
        g->classes[classify(state)] += w;
        count_add(g, &g->states, state, w, CD_GOROUTINE_MAX_STATES, &g->states_other);
        size_t k = GR_BUCKETS - 1;
        while (k > 0 && minutes < buckets[k].min)
            k--;
        g->buckets[k] += w;
        if (minutes > g->max_wait)
            g->max_wait = minutes;
        if (b->h.locked)
            g->locked += w;
        if (minutes >= 1) {
            struct gr_waiter wt = {b->h.id, minutes, g->order++, state, {{NULL, 0}, {NULL, 0}, 0},
                                   false};
            if (b->n_frames > 0) {
                wt.frame = g->frames[0];
                wt.has_frame = true;
            }
            add_waiter(g, &wt);
        }
    }
    if (b->has_created_by)
        count_add(g, &g->creators, b->created_by.fn, w, g->lim->max_groups, &g->creators_other);
    check_pileup(g, b, state);

    struct gr_group *gr = find_group(g, b);
    if (gr == NULL) {
        g->groups_other += w;
        return;
    }
    gr->count += w;
    if (!g->debug1) {
        group_add_state(gr, state, w);
        if (minutes < gr->wait_min)
            gr->wait_min = minutes;
        if (minutes > gr->wait_max)
            gr->wait_max = minutes;
        if (b->h.locked)
            gr->locked += w;
        if (!gr->has_example) {
            gr->example_id = b->h.id;
            gr->has_example = true;
        }
        if (is_chan_wait(state) && minutes >= CD_GOROUTINE_LEAK_MINUTES) {
            if (gr->leak_n == 0)
                gr->leak_state = state;
            gr->leak_n += w;
            if (minutes < gr->leak_min)
                gr->leak_min = minutes;
            if (minutes > gr->leak_max)
                gr->leak_max = minutes;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Reading */

static void push_frame(struct cd_goroutine *g, struct gr_block *b, struct gr_span fn)
{
    b->depth++;
    if (b->n_frames < g->max_depth) {
        struct gr_frame *f = &g->frames[b->n_frames++];
        f->fn = fn;
        f->file = span(NULL, 0);
        f->line = 0;
        b->pending_file = true;
    } else {
        b->pending_skip = true;
    }
}

/* debug=1 records without frame lines (legacy texts): the addresses are the frames. */
static void frames_from_pcs(struct cd_goroutine *g, struct gr_block *b)
{
    const char *p = b->pcs.p, *end = b->pcs.p + b->pcs.len;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        const char *t = p;
        while (p < end && *p != ' ')
            p++;
        if (p > t)
            push_frame(g, b, span(t, (size_t)(p - t)));
        b->pending_file = b->pending_skip = false;
    }
}

/* Ends the current block: folds it in unless the examination limit was reached. */
static void end_block(struct cd_goroutine *g)
{
    struct gr_block *b = &g->b;
    if (!b->open)
        return;
    b->open = false;
    if (g->debug1 && b->n_frames == 0 && b->depth == 0)
        frames_from_pcs(g, b);
    g->total += g->debug1 ? 0 : 1;
    if (g->blocks >= g->lim->max_goroutines) {
        g->stopped = true;
        return;
    }
    g->blocks++;
    g->examined += b->weight;
    fold_block(g, b);
}

static void start_block(struct cd_goroutine *g)
{
    memset(&g->b, 0, sizeof(g->b));
    g->b.open = true;
    g->b.weight = 1;
}

/* A line inside a debug=2 block. */
static void read_dump_line(struct cd_goroutine *g, const char *line, size_t len)
{
    struct gr_block *b = &g->b;
    if (line[0] == '\t') {
        if (b->pending_creat) {
            file_line(line, len, &b->created_by);
        } else if (b->pending_file) {
            file_line(line, len, &g->frames[b->n_frames - 1]);
        } else if (b->pending_skip) {
            /* the file of a frame not kept */
        } else if (find(line, len, "goroutine running on other thread") == NULL) {
            g->unparsed++;
        }
        b->pending_creat = b->pending_file = b->pending_skip = false;
        return;
    }
    b->pending_creat = b->pending_file = b->pending_skip = false;
    if (cd_textscan_starts(line, len, "created by ")) {
        if (b->in_ancestor) {
            b->pending_skip = true;
            return;
        }
        const char *fn = line + 11;
        size_t n = len - 11;
        const char *in = find(fn, n, " in goroutine ");
        if (in != NULL)
            n = (size_t)(in - fn);
        b->created_by.fn = span(fn, n);
        b->created_by.file = span(NULL, 0);
        b->created_by.line = 0;
        b->has_created_by = true;
        b->pending_creat = true;
        return;
    }
    if (cd_textscan_starts(line, len, "...")) {
        if (find(line, len, "frames elided") != NULL)
            b->elided = true;
        else
            g->unparsed++;
        return;
    }
    if (cd_textscan_starts(line, len, "[originating from goroutine ")) {
        b->in_ancestor = true;
        return;
    }
    if (b->in_ancestor) {
        b->pending_skip = true;
        return;
    }
    push_frame(g, b, func_name(line, len));
}

/* A line of a debug=1 count profile. */
static void read_count_line(struct cd_goroutine *g, const char *line, size_t len)
{
    struct gr_block *b = &g->b;
    struct cd_textscan_frame fr;
    if (len == 0) {
        end_block(g);
        return;
    }
    const char *at = find(line, len, " @");
    uint64_t count;
    if (at != NULL && cd_textscan_u64(line, (size_t)(at - line), &count) == 0) {
        end_block(g);
        start_block(g);
        b->weight = count > SIZE_MAX ? SIZE_MAX : (size_t)count;
        b->pcs = span(at + 2, (size_t)(line + len - at - 2));
        return;
    }
    if (!b->open) {
        g->unparsed++;
        return;
    }
    if (cd_textscan_starts(line, len, "# labels: ")) {
        b->labels = span(line + 10, len - 10);
        return;
    }
    if (cd_textscan_frame(line, len, &fr) == 0) {
        struct gr_span fn = fr.func_len ? span(fr.func, fr.func_len) : span(fr.pc_text, fr.pc_len);
        push_frame(g, b, fn);
        if (b->pending_file) {
            struct gr_frame *f = &g->frames[b->n_frames - 1];
            f->file = span(fr.file, fr.file_len);
            f->line = fr.line;
        }
        b->pending_file = b->pending_skip = false;
        return;
    }
    g->unparsed++;
}

/* Counts the goroutine headers left after the examination limit, without reading them. */
static void count_rest(struct cd_goroutine *g, const char *p, const char *end)
{
    const char *nl = p;
    while (nl < end && (nl = memmem(nl, (size_t)(end - nl), "\ngoroutine ", 11)) != NULL) {
        nl += 11;
        if (nl < end && *nl >= '0' && *nl <= '9')
            g->total++;
    }
}

static int read_text(struct cd_goroutine *g, const char *data, size_t len)
{
    struct cd_textscan sc;
    cd_textscan_init(&sc, data, len);
    const char *line;
    size_t n;
    bool seen = false;
    const char *rest = NULL; /* where counting resumes after the examination limit */
    /* The first non-empty line says which text this is. */
    while (cd_textscan_peek(&sc, &line, &n) && n == 0)
        cd_textscan_line(&sc, &line, &n);
    if (cd_textscan_peek(&sc, &line, &n) && count_header(line, n, &g->profile, &g->header_total)) {
        g->debug1 = true;
        cd_textscan_line(&sc, &line, &n);
        seen = true;
    }
    while (!g->stopped && cd_textscan_line(&sc, &line, &n)) {
        if (g->debug1) {
            read_count_line(g, line, n);
            continue;
        }
        struct cd_goroutine_header h;
        if (n > 10 && line[0] == 'g' && cd_goroutine_parse_header(line, n, &h) == 0) {
            end_block(g);
            if (g->stopped) {
                rest = line - 1; /* the newline before this header */
                break;
            }
            start_block(g);
            g->b.h = h;
            g->b.labels = span(h.extra, h.extra_len);
            seen = true;
            continue;
        }
        if (!g->b.open) {
            if (n > 0)
                g->unparsed++;
            continue;
        }
        if (n == 0) {
            end_block(g);
            rest = sc.p - 1;
            continue;
        }
        read_dump_line(g, line, n);
    }
    if (g->stopped && !g->debug1 && rest != NULL)
        count_rest(g, rest, sc.end);
    if (g->b.open && !g->debug1 &&
        (g->b.pending_file || g->b.pending_creat || (len > 0 && data[len - 1] != '\n')))
        g->truncated_text = true;
    if (!g->stopped)
        end_block(g);
    else if (g->debug1)
        g->b.open = false;
    if (!seen)
        return cd_err_set(g->err, -EBADMSG,
                          "goroutine: no goroutine header (\"goroutine N [...]:\") or count "
                          "profile header (\"goroutine profile: total N\") found");
    if (g->oom || g->arena.exhausted)
        return cd_err_set(g->err, -ENOMEM, "goroutine: working memory limit of %zu bytes exceeded",
                          g->lim->max_memory);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Summary */

static json_t *span_json(struct gr_span s)
{
    return cd_textscan_json_str(s.p ? s.p : "", s.len);
}

static json_t *frame_json(const struct gr_frame *f)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (cd_textscan_jset(o, "function", span_json(f->fn)) |
        cd_textscan_jset(o, "file", span_json(f->file)) |
        cd_textscan_jset(o, "line", json_integer(f->line))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Entries of a table, sorted by count (largest first, then first seen). */
static void **table_sorted(const struct gr_table *t, int (*cmp)(const void *, const void *))
{
    void **v = malloc((t->n ? t->n : 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i <= t->mask; i++)
        if (t->slots[i] != NULL)
            v[n++] = t->slots[i];
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp);
    return v;
}

static int cmp_count(const void *a, const void *b)
{
    const struct gr_count *x = *(void *const *)a, *y = *(void *const *)b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_group(const void *a, const void *b)
{
    const struct gr_group *x = *(void *const *)a, *y = *(void *const *)b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_pileup(const void *a, const void *b)
{
    const struct gr_pileup *x = *(void *const *)a, *y = *(void *const *)b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static json_t *counts_json(const struct gr_table *t, const char *key, size_t limit, size_t other)
{
    json_t *arr = json_array();
    void **v = table_sorted(t, cmp_count);
    int bad = arr == NULL || v == NULL;
    for (size_t i = 0; !bad && i < t->n && i < limit; i++) {
        const struct gr_count *c = v[i];
        json_t *o = json_object();
        bad |= cd_textscan_jpush(arr, o);
        if (!bad)
            bad |= cd_textscan_jset(o, key, span_json(c->key)) |
                   cd_textscan_jset(o, "count", json_integer((json_int_t)c->count));
    }
    if (!bad && other > 0) {
        json_t *o = json_object();
        bad |= cd_textscan_jpush(arr, o);
        if (!bad)
            bad |= cd_textscan_jset(o, key, json_string("other")) |
                   cd_textscan_jset(o, "count", json_integer((json_int_t)other));
    }
    free(v);
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* {"chan receive": 12, "running": 1}: states by count, largest first (insertion order). The
 * keys are the sanitized status texts; two that sanitize alike share their entry. */
static json_t *states_json(const struct cd_goroutine *g)
{
    json_t *obj = json_object();
    void **v = table_sorted(&g->states, cmp_count);
    int bad = obj == NULL || v == NULL;
    for (size_t i = 0; !bad && i <= g->states.n; i++) {
        size_t count = i < g->states.n ? ((const struct gr_count *)v[i])->count : g->states_other;
        if (count == 0)
            continue;
        json_t *key = i < g->states.n ? span_json(((const struct gr_count *)v[i])->key)
                                      : json_string("other");
        bad |= key == NULL;
        if (bad)
            break;
        const char *k = json_string_value(key);
        json_t *prev = json_object_get(obj, k);
        json_int_t sum = (json_int_t)count + (prev ? json_integer_value(prev) : 0);
        bad |= cd_textscan_jset(obj, k, json_integer(sum));
        json_decref(key);
    }
    free(v);
    if (bad) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *group_json(const struct cd_goroutine *g, const struct gr_group *gr)
{
    json_t *o = json_object(), *states = json_array(), *frames = json_array();
    int bad = cd_textscan_jset(o, "count", json_integer((json_int_t)gr->count));
    bad |= cd_textscan_jset(o, "states", states) | cd_textscan_jset(o, "frames", frames);
    for (size_t i = 0; !bad && i < gr->n_states; i++) {
        json_t *s = json_object();
        bad |= cd_textscan_jpush(states, s);
        if (!bad)
            bad |= cd_textscan_jset(s, "state", span_json(gr->states[i])) |
                   cd_textscan_jset(s, "count", json_integer((json_int_t)gr->state_counts[i]));
    }
    if (!bad && gr->other_states) {
        json_t *s = json_object();
        bad |= cd_textscan_jpush(states, s);
        if (!bad)
            bad |= cd_textscan_jset(s, "state", json_string("other")) |
                   cd_textscan_jset(s, "count", json_integer((json_int_t)gr->other_states));
    }
    size_t top = 0;
    for (size_t i = 1; i < gr->n_states; i++)
        if (gr->state_counts[i] > gr->state_counts[top])
            top = i;
    bad |= cd_textscan_jset(o, "state", gr->n_states ? span_json(gr->states[top]) : json_null());
    bool waits = !g->debug1 && gr->wait_min != INT64_MAX;
    bad |= cd_textscan_jset(o, "wait_minutes_min", json_integer(waits ? gr->wait_min : 0));
    bad |= cd_textscan_jset(o, "wait_minutes_max", json_integer(waits ? gr->wait_max : 0));
    bad |= cd_textscan_jset(o, "locked", json_integer((json_int_t)gr->locked));
    bad |= cd_textscan_jset(o, "depth", json_integer((json_int_t)gr->depth));
    bad |= cd_textscan_jset(o, "elided", json_boolean(gr->elided));
    for (size_t i = 0; !bad && i < gr->n_frames && i < CD_GOROUTINE_GROUP_FRAMES; i++)
        bad |= cd_textscan_jpush(frames, frame_json(&gr->frames[i]));
    bad |= cd_textscan_jset(o, "created_by",
                            gr->has_created_by ? frame_json(&gr->created_by) : json_null());
    bad |= cd_textscan_jset(
        o, "example_id", gr->has_example ? json_integer((json_int_t)gr->example_id) : json_null());
    bad |= cd_textscan_jset(o, "labels", gr->labels.len ? span_json(gr->labels) : json_null());
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *groups_json(const struct cd_goroutine *g)
{
    json_t *arr = json_array();
    void **v = table_sorted(&g->groups, cmp_group);
    int bad = arr == NULL || v == NULL;
    for (size_t i = 0; !bad && i < g->groups.n && i < g->lim->top_n; i++)
        bad |= cd_textscan_jpush(arr, group_json(g, v[i]));
    free(v);
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static int cmp_waiter(const void *a, const void *b)
{
    const struct gr_waiter *x = a, *y = b;
    if (x->minutes != y->minutes)
        return x->minutes > y->minutes ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static json_t *waiters_json(struct cd_goroutine *g)
{
    if (g->n_waiters > 1)
        qsort(g->waiters, g->n_waiters, sizeof(*g->waiters), cmp_waiter);
    json_t *arr = json_array();
    int bad = arr == NULL;
    for (size_t i = 0; !bad && i < g->n_waiters; i++) {
        const struct gr_waiter *w = &g->waiters[i];
        json_t *o = json_object();
        bad |= cd_textscan_jpush(arr, o);
        if (bad)
            break;
        bad |= cd_textscan_jset(o, "id", json_integer((json_int_t)w->id));
        bad |= cd_textscan_jset(o, "state", span_json(w->state));
        bad |= cd_textscan_jset(o, "minutes", json_integer(w->minutes));
        bad |= cd_textscan_jset(o, "function", w->has_frame ? span_json(w->frame.fn) : json_null());
        bad |= cd_textscan_jset(o, "file", w->has_frame ? span_json(w->frame.file) : json_null());
        bad |= cd_textscan_jset(o, "line", json_integer(w->has_frame ? w->frame.line : 0));
    }
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* "file:line" of a frame, into a JSON string. */
static json_t *location_json(const struct gr_frame *f)
{
    char tail[32];
    snprintf(tail, sizeof(tail), ":%" PRId64, f->line);
    size_t n = f->file.len < CD_TEXTSCAN_JSON_STR_MAX ? f->file.len : CD_TEXTSCAN_JSON_STR_MAX;
    size_t t = strlen(tail);
    char *buf = malloc(n + t + 1);
    if (buf == NULL)
        return NULL;
    if (n)
        memcpy(buf, f->file.p, n);
    memcpy(buf + n, tail, t + 1);
    json_t *j = cd_textscan_json_str(buf, n + t);
    free(buf);
    return j;
}

/* Names from the dump are capped in messages to keep them readable. */
static int cap200(size_t n)
{
    return n > 200 ? 200 : (int)n;
}

static json_t *text_json(const char *msg, int n)
{
    if (n < 0)
        return NULL;
    return cd_textscan_json_str(msg, (size_t)n < 1024 ? (size_t)n : 1023);
}

static json_t *pileup_message(const struct gr_pileup *p)
{
    char msg[1024], wait[64];
    if (p->max >= 1)
        snprintf(wait, sizeof(wait), "up to %" PRId64 " minute%s", p->max, p->max == 1 ? "" : "s");
    else
        snprintf(wait, sizeof(wait), "each for less than a minute");
    int n =
        snprintf(msg, sizeof(msg), "%zu goroutines blocked in %.*s called from %.*s (%s)", p->count,
                 cap200(p->lock.len), p->lock.p, cap200(p->blocked_in.len), p->blocked_in.p, wait);
    return text_json(msg, n);
}

static json_t *leak_message(const struct gr_group *gr, struct gr_span in)
{
    char msg[1024];
    int n = snprintf(msg, sizeof(msg),
                     "%zu goroutines with identical stacks wait in %.*s in %.*s for %" PRId64
                     " to %" PRId64 " minutes: a goroutine leak?",
                     gr->leak_n, cap200(gr->leak_state.len), gr->leak_state.p, cap200(in.len),
                     in.p ? in.p : "", gr->leak_min, gr->leak_max);
    return text_json(msg, n);
}

static json_t *finding(const char *kind, const char *severity)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (cd_textscan_jset(o, "kind", json_string(kind)) |
        cd_textscan_jset(o, "severity", json_string(severity))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int pileup_findings(const struct cd_goroutine *g, json_t *arr)
{
    void **v = table_sorted(&g->pileups, cmp_pileup);
    if (v == NULL)
        return -ENOMEM;
    int bad = 0;
    for (size_t i = 0; !bad && i < g->pileups.n; i++) {
        const struct gr_pileup *p = v[i];
        if (p->count < CD_GOROUTINE_PILEUP_MIN)
            continue;
        json_t *f = finding("mutex_pileup", p->max >= 1 ? "warning" : "info");
        bad |= cd_textscan_jpush(arr, f);
        if (bad)
            break;
        bad |= cd_textscan_jset(f, "count", json_integer((json_int_t)p->count));
        bad |= cd_textscan_jset(f, "blocked_in", span_json(p->blocked_in));
        bad |= cd_textscan_jset(f, "location", location_json(&p->at));
        bad |= cd_textscan_jset(f, "lock", span_json(p->lock));
        bad |= cd_textscan_jset(f, "state", g->debug1 ? json_null() : span_json(p->state));
        bad |= cd_textscan_jset(f, "wait_minutes_min", json_integer(p->min));
        bad |= cd_textscan_jset(f, "wait_minutes_max", json_integer(p->max));
        bad |= cd_textscan_jset(f, "message", pileup_message(p));
    }
    free(v);
    return bad ? -ENOMEM : 0;
}

static int leak_findings(const struct cd_goroutine *g, json_t *arr)
{
    void **v = table_sorted(&g->groups, cmp_group);
    if (v == NULL)
        return -ENOMEM;
    int bad = 0;
    for (size_t i = 0; !bad && i < g->groups.n; i++) {
        const struct gr_group *gr = v[i];
        if (gr->leak_n < CD_GOROUTINE_LEAK_MIN)
            continue;
        size_t k = 0;
        while (k < gr->n_frames && is_runtime(gr->frames[k].fn))
            k++;
        const struct gr_frame *at = k < gr->n_frames ? &gr->frames[k] : NULL;
        json_t *f = finding("goroutine_leak", "warning");
        bad |= cd_textscan_jpush(arr, f);
        if (bad)
            break;
        bad |= cd_textscan_jset(f, "count", json_integer((json_int_t)gr->leak_n));
        bad |= cd_textscan_jset(f, "blocked_in", at ? span_json(at->fn) : json_null());
        bad |= cd_textscan_jset(f, "location", at ? location_json(at) : json_null());
        bad |= cd_textscan_jset(f, "state", span_json(gr->leak_state));
        bad |= cd_textscan_jset(f, "wait_minutes_min", json_integer(gr->leak_min));
        bad |= cd_textscan_jset(f, "wait_minutes_max", json_integer(gr->leak_max));
        bad |= cd_textscan_jset(f, "message", leak_message(gr, at ? at->fn : span("(runtime)", 9)));
    }
    free(v);
    return bad ? -ENOMEM : 0;
}

static json_t *findings_json(const struct cd_goroutine *g)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    int bad = pileup_findings(g, arr);
    if (!bad && !g->debug1)
        bad |= leak_findings(g, arr);
    if (!bad && (g->truncated_text || g->stopped)) {
        json_t *f = finding("truncated_dump", "warning");
        bad |= cd_textscan_jpush(arr, f);
        if (!bad) {
            char msg[256];
            int n = g->truncated_text
                        ? snprintf(msg, sizeof(msg),
                                   "the dump ends inside a goroutine: it is incomplete (Go cuts "
                                   "goroutine dumps at 64 MiB)")
                        : snprintf(msg, sizeof(msg),
                                   "only the first %zu of %zu goroutines were examined "
                                   "(max_goroutines)",
                                   g->examined, g->total);
            bad |= cd_textscan_jset(f, "message", text_json(msg, n));
        }
    }
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *classes_json(const struct cd_goroutine *g)
{
    if (g->debug1)
        return json_null();
    json_t *o = json_object();
    int bad = o == NULL;
    for (int c = 0; !bad && c < GC_N; c++)
        bad |= cd_textscan_jset(o, class_names[c], json_integer((json_int_t)g->classes[c]));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *buckets_json(const struct cd_goroutine *g)
{
    json_t *arr = json_array();
    int bad = arr == NULL;
    for (int k = 0; !bad && k < GR_BUCKETS; k++) {
        json_t *o = json_object();
        bad |= cd_textscan_jpush(arr, o);
        if (!bad)
            bad |= cd_textscan_jset(o, "bucket", json_string(buckets[k].name)) |
                   cd_textscan_jset(o, "count", json_integer((json_int_t)g->buckets[k]));
    }
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *build_json(struct cd_goroutine *g)
{
    json_t *root = json_object();
    if (root == NULL)
        return NULL;
    int bad = 0;
    bad |= cd_textscan_jset(root, "variant", json_string(g->debug1 ? "debug1" : "debug2"));
    bad |= cd_textscan_jset(root, "profile",
                            g->debug1 ? span_json(g->profile) : json_string("goroutine"));
    bad |= cd_textscan_jset(root, "total", json_integer((json_int_t)g->total));
    bad |= cd_textscan_jset(root, "examined", json_integer((json_int_t)g->examined));
    bad |= cd_textscan_jset(root, "truncated", json_boolean(g->truncated_text || g->stopped));
    bad |= cd_textscan_jset(root, "unparsed_lines", json_integer((json_int_t)g->unparsed));
    bad |= cd_textscan_jset(root, "states", states_json(g));
    bad |= cd_textscan_jset(root, "classes", classes_json(g));
    bad |= cd_textscan_jset(root, "wait_minutes", buckets_json(g));
    bad |= cd_textscan_jset(root, "max_wait_minutes", json_integer(g->max_wait));
    bad |= cd_textscan_jset(root, "locked_to_thread", json_integer((json_int_t)g->locked));
    bad |= cd_textscan_jset(root, "groups_total", json_integer((json_int_t)g->groups.n));
    bad |= cd_textscan_jset(root, "groups_other", json_integer((json_int_t)g->groups_other));
    bad |= cd_textscan_jset(root, "groups", groups_json(g));
    bad |= cd_textscan_jset(root, "longest_waiting", waiters_json(g));
    bad |=
        cd_textscan_jset(root, "created_by",
                         counts_json(&g->creators, "function", g->lim->top_n, g->creators_other));
    bad |= cd_textscan_jset(root, "findings", findings_json(g));
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static int add_series(const struct cd_goroutine *g, struct cd_summary *out)
{
    int r = cd_summary_add_series(out, "count", (double)g->total);
    if (g->debug1 || r < 0)
        return r;
    static const struct {
        const char *name;
        int cls;
    } names[] = {{"running", GC_RUNNING},
                 {"runnable", GC_RUNNABLE},
                 {"syscall", GC_SYSCALL},
                 {"blocked", GC_BLOCKED}};
    for (size_t i = 0; r == 0 && i < sizeof(names) / sizeof(names[0]); i++)
        r = cd_summary_add_series(out, names[i].name, (double)g->classes[names[i].cls]);
    if (r == 0)
        r = cd_summary_add_series(out, "max_wait_minutes", (double)g->max_wait);
    return r;
}

int cd_goroutine_summarize(const uint8_t *data, size_t len, const struct cd_parse_limits *lim,
                           struct cd_summary *out, struct cd_err *err)
{
    struct cd_parse_limits dflt;
    lim = cd_textscan_limits(lim, &dflt);
    struct cd_goroutine g;
    memset(&g, 0, sizeof(g));
    g.lim = lim;
    g.err = err;
    g.base = (const char *)data;
    cd_arena_init(&g.arena, lim->max_memory ? lim->max_memory : 1);
    json_t *json = NULL;
    struct cd_summary sum;
    cd_summary_init(&sum);
    int rc = 0;
    if (len > lim->max_input) {
        rc = cd_err_set(err, -EFBIG, "goroutine: input of %zu bytes exceeds the limit of %zu bytes",
                        len, lim->max_input);
        goto fail;
    }
    /* A frame takes at least two lines of four bytes, a goroutine a 20-byte header: tables never
     * need to be larger than the text allows, whatever the limits say. */
    g.max_depth = lim->max_stack_depth < len / 8 + 1 ? lim->max_stack_depth : len / 8 + 1;
    g.max_waiters = lim->top_n < len / 20 + 1 ? lim->top_n : len / 20 + 1;
    g.frames = cd_arena_alloc(&g.arena, g.max_depth * sizeof(*g.frames));
    g.waiters = cd_arena_alloc(&g.arena, g.max_waiters * sizeof(*g.waiters));
    if (g.frames == NULL || g.waiters == NULL || table_init(&g, &g.groups, 64) < 0 ||
        table_init(&g, &g.states, 64) < 0 || table_init(&g, &g.creators, 64) < 0 ||
        table_init(&g, &g.pileups, 64) < 0) {
        rc = cd_err_set(err, -ENOMEM, "goroutine: working memory limit of %zu bytes exceeded",
                        lim->max_memory);
        goto fail;
    }
    rc = read_text(&g, (const char *)data, len);
    if (rc < 0)
        goto fail;
    if (g.debug1)
        g.total = g.header_total;
    json = build_json(&g);
    if (json == NULL || add_series(&g, &sum) < 0) {
        rc = cd_err_set(err, -ENOMEM, "goroutine: out of memory building the summary");
        goto fail;
    }
    cd_textscan_publish(out, &sum, CD_FORMAT_GOROUTINE_TEXT, &json);
fail:
    cd_summary_free(&sum);
    json_decref(json);
    cd_arena_free(&g.arena);
    return rc;
}
