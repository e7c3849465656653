/* scheduler — see scheduler.h. */
#include "scheduler.h"

#include "hash.h"
#include "str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_BUCKETS 1024

/* A process (for the CPU/trace singletons) or a serial group (a gops agent), shared by the
 * entries that name its key and by running entries that hold it. */
struct group {
    struct group *next; /* hash chain */
    char *key;
    int refs;
    bool cpu;   /* a CD_EXCL_CPU entry of this process runs */
    bool trace; /* a CD_EXCL_TRACE entry runs */
    bool busy;  /* serial group: one entry runs */
};

struct capture {
    void *token;
    int64_t requested_mono;
};

struct cd_scheduler_entry {
    struct cd_scheduler_entry *aprev, *anext; /* every entry, whatever its state */
    char *target_id;
    char *kind;
    struct group *proc;   /* NULL: no exclusivity */
    struct group *serial; /* NULL: not serialized */
    int64_t interval_ms;
    int64_t offset_ms;
    enum cd_exclusive exclusive;
    void *udata;

    int64_t due;       /* mono ms of the next slot; -1 when never scheduled */
    size_t heap_index; /* SIZE_MAX when not in the heap */
    bool in_ready;
    struct cd_scheduler_entry *rprev, *rnext;
    enum cd_scheduler_skip wait_reason;

    bool running;
    bool removed;
    bool run_is_capture;
    int64_t run_due; /* the slot the current run started for */
    struct group *held_proc;
    enum cd_exclusive held_excl;
    struct group *held_serial;

    int failures;

    struct capture *captures; /* FIFO ring of max_captures */
    int cap_head;
    int cap_n;
};

struct cd_scheduler {
    const struct cd_clock *clock;
    int max_concurrent;
    int64_t backoff_max_ms;
    int max_captures;
    int64_t wall_minus_mono; /* fixed at creation: slots sit on a wall-clock grid */

    struct cd_scheduler_entry **heap; /* min-heap by due */
    size_t heap_n, heap_cap;
    struct cd_scheduler_entry *ready_head, *ready_tail;
    size_t ready_n;
    struct cd_scheduler_entry *all;

    struct group *groups[GROUP_BUCKETS];
    size_t n_entries;
    int running;
    uint64_t started;
    uint64_t captures_started;
    uint64_t skipped[CD_SKIP_N];
};

/* ---- groups ---------------------------------------------------------------------------- */

static struct group **group_slot(struct cd_scheduler *s, const char *key)
{
    struct group **g = &s->groups[cd_hash_fnv1a64_str(key) % GROUP_BUCKETS];
    while (*g != NULL && strcmp((*g)->key, key) != 0)
        g = &(*g)->next;
    return g;
}

static struct group *group_ref(struct cd_scheduler *s, const char *key)
{
    if (key == NULL)
        return NULL;
    struct group **slot = group_slot(s, key);
    if (*slot == NULL) {
        struct group *g = calloc(1, sizeof(*g));
        if (g == NULL)
            return NULL;
        g->key = cd_str_dup(key);
        if (g->key == NULL) {
            free(g);
            return NULL;
        }
        *slot = g;
    }
    (*slot)->refs++;
    return *slot;
}

static void group_unref(struct cd_scheduler *s, struct group *g)
{
    if (g == NULL || --g->refs > 0)
        return;
    struct group **slot = group_slot(s, g->key);
    *slot = g->next;
    free(g->key);
    free(g);
}

/* ---- time grid ------------------------------------------------------------------------- */

int64_t cd_scheduler_offset(const char *target_id, const char *kind, int64_t interval_ms)
{
    if (interval_ms <= 0)
        return 0;
    uint64_t h = cd_hash_fnv1a64_str(target_id);
    h ^= cd_hash_fnv1a64_str(kind) * 0x9e3779b97f4a7c15ULL;
    /* splitmix64's finalizer: FNV's low bits vary little between "…:6001" and "…:6002". */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return (int64_t)(h % (uint64_t)interval_ms);
}

/* The first slot of e at or after mono time t. */
static int64_t slot_at_or_after(const struct cd_scheduler *s, const struct cd_scheduler_entry *e,
                                int64_t t)
{
    int64_t iv = e->interval_ms;
    int64_t r = (t + s->wall_minus_mono - e->offset_ms) % iv;
    if (r < 0)
        r += iv;
    return r == 0 ? t : t + (iv - r);
}

static int64_t now_mono(const struct cd_scheduler *s)
{
    return cd_clock_mono_ms(s->clock);
}

/* ---- heap ------------------------------------------------------------------------------ */

static void heap_swap(struct cd_scheduler *s, size_t a, size_t b)
{
    struct cd_scheduler_entry *t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
    s->heap[a]->heap_index = a;
    s->heap[b]->heap_index = b;
}

static void heap_up(struct cd_scheduler *s, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (s->heap[p]->due <= s->heap[i]->due)
            break;
        heap_swap(s, p, i);
        i = p;
    }
}

static void heap_down(struct cd_scheduler *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->heap_n && s->heap[l]->due < s->heap[m]->due)
            m = l;
        if (r < s->heap_n && s->heap[r]->due < s->heap[m]->due)
            m = r;
        if (m == i)
            return;
        heap_swap(s, i, m);
        i = m;
    }
}

static int heap_push(struct cd_scheduler *s, struct cd_scheduler_entry *e)
{
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
        struct cd_scheduler_entry **h = realloc(s->heap, cap * sizeof(*h));
        if (h == NULL)
            return -ENOMEM;
        s->heap = h;
        s->heap_cap = cap;
    }
    e->heap_index = s->heap_n;
    s->heap[s->heap_n++] = e;
    heap_up(s, e->heap_index);
    return 0;
}

static void heap_remove(struct cd_scheduler *s, struct cd_scheduler_entry *e)
{
    size_t i = e->heap_index;
    if (i == SIZE_MAX)
        return;
    e->heap_index = SIZE_MAX;
    s->heap_n--;
    if (i == s->heap_n)
        return;
    s->heap[i] = s->heap[s->heap_n];
    s->heap[i]->heap_index = i;
    heap_down(s, i);
    heap_up(s, i);
}

/* ---- ready list ------------------------------------------------------------------------ */

static void ready_push(struct cd_scheduler *s, struct cd_scheduler_entry *e)
{
    if (e->in_ready)
        return;
    e->in_ready = true;
    e->rnext = NULL;
    e->rprev = s->ready_tail;
    if (s->ready_tail != NULL)
        s->ready_tail->rnext = e;
    else
        s->ready_head = e;
    s->ready_tail = e;
    s->ready_n++;
}

static void ready_remove(struct cd_scheduler *s, struct cd_scheduler_entry *e)
{
    if (!e->in_ready)
        return;
    if (e->rprev != NULL)
        e->rprev->rnext = e->rnext;
    else
        s->ready_head = e->rnext;
    if (e->rnext != NULL)
        e->rnext->rprev = e->rprev;
    else
        s->ready_tail = e->rprev;
    e->rprev = e->rnext = NULL;
    e->in_ready = false;
    s->ready_n--;
}

/* Puts an idle entry where it belongs: ready when a capture waits, else the heap when it has a
 * schedule. Only fails on ENOMEM growing the heap; the entry then waits for its next capture. */
static int place(struct cd_scheduler *s, struct cd_scheduler_entry *e)
{
    if (e->running || e->removed)
        return 0;
    if (e->cap_n > 0) {
        heap_remove(s, e);
        ready_push(s, e);
        return 0;
    }
    if (e->due >= 0 && e->heap_index == SIZE_MAX && !e->in_ready)
        return heap_push(s, e);
    return 0;
}

/* ---- entries --------------------------------------------------------------------------- */

int cd_scheduler_new(const struct cd_clock *clock, const struct cd_scheduler_opts *opts,
                     struct cd_scheduler **out, struct cd_err *err)
{
    struct cd_scheduler *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return cd_err_set(err, -ENOMEM, "sched: out of memory");
    s->clock = clock;
    s->max_concurrent = opts != NULL && opts->max_concurrent > 0 ? opts->max_concurrent : 256;
    s->backoff_max_ms = opts != NULL && opts->backoff_max_ms > 0 ? opts->backoff_max_ms : 300000;
    s->max_captures = opts != NULL && opts->max_captures > 0 ? opts->max_captures : 16;
    s->wall_minus_mono = cd_clock_wall_ms(clock) - cd_clock_mono_ms(clock);
    *out = s;
    return 0;
}

static void entry_free(struct cd_scheduler *s, struct cd_scheduler_entry *e)
{
    if (e->aprev != NULL)
        e->aprev->anext = e->anext;
    else if (s->all == e)
        s->all = e->anext;
    if (e->anext != NULL)
        e->anext->aprev = e->aprev;
    group_unref(s, e->proc);
    group_unref(s, e->serial);
    free(e->target_id);
    free(e->kind);
    free(e->captures);
    free(e);
    s->n_entries--;
}

void cd_scheduler_free(struct cd_scheduler *s)
{
    if (s == NULL)
        return;
    /* Idle capture-only entries are in neither the heap nor the ready list: walk them all. */
    while (s->all != NULL) {
        struct cd_scheduler_entry *e = s->all;
        e->heap_index = SIZE_MAX;
        e->in_ready = false;
        entry_free(s, e);
    }
    free(s->heap);
    for (size_t b = 0; b < GROUP_BUCKETS; b++) {
        struct group *g = s->groups[b];
        while (g != NULL) {
            struct group *n = g->next;
            free(g->key);
            free(g);
            g = n;
        }
    }
    free(s);
}

static void compute_first_due(struct cd_scheduler *s, struct cd_scheduler_entry *e)
{
    if (e->interval_ms <= 0) {
        e->due = -1;
        return;
    }
    e->offset_ms = cd_scheduler_offset(e->target_id, e->kind, e->interval_ms);
    e->due = slot_at_or_after(s, e, now_mono(s));
}

int cd_scheduler_add(struct cd_scheduler *s, const struct cd_scheduler_spec *spec, void *udata,
                     struct cd_scheduler_entry **out, struct cd_err *err)
{
    struct cd_scheduler_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return cd_err_set(err, -ENOMEM, "sched: out of memory");
    s->n_entries++;
    e->heap_index = SIZE_MAX;
    e->anext = s->all;
    if (s->all != NULL)
        s->all->aprev = e;
    s->all = e;
    e->target_id = cd_str_dup(spec->target_id);
    e->kind = cd_str_dup(spec->kind);
    e->captures = calloc((size_t)s->max_captures, sizeof(*e->captures));
    e->proc = group_ref(s, spec->process_key);
    e->serial = group_ref(s, spec->serial_key);
    if (e->target_id == NULL || e->kind == NULL || e->captures == NULL ||
        (spec->process_key != NULL && e->proc == NULL) ||
        (spec->serial_key != NULL && e->serial == NULL)) {
        entry_free(s, e);
        return cd_err_set(err, -ENOMEM, "sched: out of memory");
    }
    e->interval_ms = spec->interval_ms;
    e->exclusive = spec->exclusive;
    e->udata = udata;
    compute_first_due(s, e);
    if (place(s, e) < 0) {
        entry_free(s, e);
        return cd_err_set(err, -ENOMEM, "sched: out of memory");
    }
    *out = e;
    return 0;
}

int cd_scheduler_update(struct cd_scheduler *s, struct cd_scheduler_entry *e,
                        const struct cd_scheduler_spec *spec, struct cd_err *err)
{
    struct group *proc = group_ref(s, spec->process_key);
    struct group *serial = group_ref(s, spec->serial_key);
    if ((spec->process_key != NULL && proc == NULL) ||
        (spec->serial_key != NULL && serial == NULL)) {
        group_unref(s, proc);
        group_unref(s, serial);
        return cd_err_set(err, -ENOMEM, "sched: out of memory");
    }
    group_unref(s, e->proc);
    group_unref(s, e->serial);
    e->proc = proc;
    e->serial = serial;
    e->exclusive = spec->exclusive;
    if (spec->interval_ms != e->interval_ms) {
        e->interval_ms = spec->interval_ms;
        bool queued = e->heap_index != SIZE_MAX;
        heap_remove(s, e);
        compute_first_due(s, e);
        if (queued && place(s, e) < 0)
            return cd_err_set(err, -ENOMEM, "sched: out of memory");
    }
    return 0;
}

void cd_scheduler_remove(struct cd_scheduler *s, struct cd_scheduler_entry *e,
                         void (*drop)(void *ctx, void *token), void *ctx)
{
    while (e->cap_n > 0) {
        void *token = e->captures[e->cap_head].token;
        e->cap_head = (e->cap_head + 1) % s->max_captures;
        e->cap_n--;
        if (drop != NULL)
            drop(ctx, token);
    }
    heap_remove(s, e);
    ready_remove(s, e);
    if (e->running) {
        e->removed = true;
        return;
    }
    entry_free(s, e);
}

void cd_scheduler_set_udata(struct cd_scheduler_entry *e, void *udata)
{
    e->udata = udata;
}

void *cd_scheduler_udata(const struct cd_scheduler_entry *e)
{
    return e->udata;
}

bool cd_scheduler_running(const struct cd_scheduler_entry *e)
{
    return e->running;
}

int cd_scheduler_failures(const struct cd_scheduler_entry *e)
{
    return e->failures;
}

int64_t cd_scheduler_due(const struct cd_scheduler_entry *e)
{
    return e->due;
}

int cd_scheduler_capture(struct cd_scheduler *s, struct cd_scheduler_entry *e, void *token)
{
    if (e->removed)
        return -ENOENT;
    if (e->cap_n >= s->max_captures)
        return -EBUSY;
    struct capture *c = &e->captures[(e->cap_head + e->cap_n) % s->max_captures];
    c->token = token;
    c->requested_mono = now_mono(s);
    e->cap_n++;
    place(s, e);
    return 0;
}

/* ---- running --------------------------------------------------------------------------- */

static enum cd_scheduler_skip blocked(const struct cd_scheduler_entry *e)
{
    if (e->serial != NULL && e->serial->busy)
        return CD_SKIP_EXCLUSIVE;
    if (e->proc != NULL) {
        if (e->exclusive == CD_EXCL_CPU && e->proc->cpu)
            return CD_SKIP_EXCLUSIVE;
        if (e->exclusive == CD_EXCL_TRACE && e->proc->trace)
            return CD_SKIP_EXCLUSIVE;
    }
    return CD_SKIP_N;
}

static void take(struct cd_scheduler *s, struct cd_scheduler_entry *e)
{
    e->running = true;
    s->running++;
    if (e->proc != NULL && e->exclusive != CD_EXCL_NONE) {
        e->held_proc = e->proc;
        e->held_proc->refs++;
        e->held_excl = e->exclusive;
        if (e->exclusive == CD_EXCL_CPU)
            e->proc->cpu = true;
        else
            e->proc->trace = true;
    }
    if (e->serial != NULL) {
        e->held_serial = e->serial;
        e->held_serial->refs++;
        e->serial->busy = true;
    }
}

static void release(struct cd_scheduler *s, struct cd_scheduler_entry *e)
{
    e->running = false;
    s->running--;
    if (e->held_proc != NULL) {
        if (e->held_excl == CD_EXCL_CPU)
            e->held_proc->cpu = false;
        else
            e->held_proc->trace = false;
        group_unref(s, e->held_proc);
        e->held_proc = NULL;
    }
    if (e->held_serial != NULL) {
        e->held_serial->busy = false;
        group_unref(s, e->held_serial);
        e->held_serial = NULL;
    }
}

int cd_scheduler_poll(struct cd_scheduler *s, bool hold, struct cd_scheduler_start *out)
{
    int64_t now = now_mono(s);
    while (s->heap_n > 0 && s->heap[0]->due <= now) {
        struct cd_scheduler_entry *e = s->heap[0];
        heap_remove(s, e);
        e->wait_reason = CD_SKIP_OVERLAP; /* replaced by the real reason if it has to wait */
        ready_push(s, e);
    }
    for (struct cd_scheduler_entry *e = s->ready_head; e != NULL; e = e->rnext) {
        if (hold) {
            e->wait_reason = CD_SKIP_HELD;
            continue;
        }
        if (s->running >= s->max_concurrent) {
            e->wait_reason = CD_SKIP_CONCURRENCY;
            continue;
        }
        enum cd_scheduler_skip why = blocked(e);
        if (why != CD_SKIP_N) {
            e->wait_reason = why;
            continue;
        }
        ready_remove(s, e);
        take(s, e);
        memset(out, 0, sizeof(*out));
        out->entry = e;
        out->udata = e->udata;
        if (e->cap_n > 0) {
            struct capture *c = &e->captures[e->cap_head];
            e->cap_head = (e->cap_head + 1) % s->max_captures;
            e->cap_n--;
            e->run_is_capture = true;
            out->capture = true;
            out->capture_token = c->token;
            out->due_mono_ms = c->requested_mono;
            s->captures_started++;
        } else {
            e->run_is_capture = false;
            e->run_due = e->due;
            out->due_mono_ms = e->due;
            /* The slots that went by while it waited are skipped, not made up. */
            int64_t missed = (now - e->due) / e->interval_ms;
            if (missed > 0)
                s->skipped[e->wait_reason] += (uint64_t)missed;
            e->due += (missed + 1) * e->interval_ms;
            s->started++;
        }
        out->lateness_ms = now - out->due_mono_ms;
        return 1;
    }
    return 0;
}

void cd_scheduler_done(struct cd_scheduler *s, struct cd_scheduler_entry *e,
                       enum cd_scheduler_result r)
{
    release(s, e);
    if (e->removed) {
        entry_free(s, e);
        return;
    }
    int64_t now = now_mono(s);
    if (e->due >= 0) {
        if (e->due <= now) {
            /* It ran past its next slots. */
            int64_t over = (now - e->due) / e->interval_ms + 1;
            s->skipped[CD_SKIP_OVERLAP] += (uint64_t)over;
            e->due += over * e->interval_ms;
        }
        if (r == CD_SCHED_OK) {
            if (e->failures > 0)
                e->due = slot_at_or_after(s, e, now + 1);
            e->failures = 0;
        } else if (r == CD_SCHED_FAIL && !e->run_is_capture) {
            e->failures++;
            int64_t cap = s->backoff_max_ms > e->interval_ms ? s->backoff_max_ms : e->interval_ms;
            int64_t delay = e->interval_ms;
            for (int i = 1; i < e->failures && delay < cap; i++)
                delay *= 2;
            if (delay > cap)
                delay = cap;
            int64_t earliest = slot_at_or_after(s, e, e->run_due + delay);
            if (earliest > e->due)
                e->due = earliest;
        }
    } else if (r == CD_SCHED_OK) {
        e->failures = 0;
    }
    place(s, e);
}

int64_t cd_scheduler_next_wake(struct cd_scheduler *s)
{
    return s->heap_n > 0 ? s->heap[0]->due : -1;
}

int64_t cd_scheduler_to_wall(const struct cd_scheduler *s, int64_t mono_ms)
{
    return mono_ms + s->wall_minus_mono;
}

void cd_scheduler_stats(const struct cd_scheduler *s, struct cd_scheduler_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->started = s->started;
    out->captures_started = s->captures_started;
    memcpy(out->skipped, s->skipped, sizeof(out->skipped));
    out->running = s->running;
    out->entries = s->n_entries;
    out->ready = s->ready_n;
}
