/* tracev2 — see tracev2.h. Wire format: shared/reference/trace-format.md §4. */
#include "tracev2.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
    EV_EVENT_BATCH = 1,
    EV_STACKS = 2,
    EV_STACK = 3,
    EV_STRINGS = 4,
    EV_STRING = 5,
    EV_CPU_SAMPLES = 6,
    EV_CPU_SAMPLE = 7,
    EV_FREQUENCY = 8,
    EV_PROCS_CHANGE = 9,
    EV_PROC_START = 10,
    EV_PROC_STOP = 11,
    EV_PROC_STEAL = 12,
    EV_PROC_STATUS = 13,
    EV_GO_CREATE = 14,
    EV_GO_CREATE_SYSCALL = 15,
    EV_GO_DESTROY = 17,
    EV_GO_DESTROY_SYSCALL = 18,
    EV_GO_STOP = 19,
    EV_GO_BLOCK = 20,
    EV_GO_SYSCALL_BEGIN = 22,
    EV_GO_SYSCALL_END = 23,
    EV_GO_SYSCALL_END_BLOCKED = 24,
    EV_GO_STATUS = 25,
    EV_STW_BEGIN = 26,
    EV_STW_END = 27,
    EV_GC_ACTIVE = 28,
    EV_GC_BEGIN = 29,
    EV_GC_END = 30,
    EV_GC_MARK_ASSIST_BEGIN = 35,
    EV_HEAP_ALLOC = 37,
    EV_HEAP_GOAL = 38,
    EV_GO_LABEL = 39,
    EV_USER_TASK_BEGIN = 40,
    EV_USER_TASK_END = 41,
    EV_USER_REGION_BEGIN = 42,
    EV_USER_LOG = 44,
    EV_GO_SWITCH_DESTROY = 46,
    EV_GO_CREATE_BLOCKED = 47,
    EV_GO_STATUS_STACK = 48,
    EV_EXPERIMENTAL_BATCH = 49,
    EV_SYNC = 50,
    EV_CLOCK_SNAPSHOT = 51,
    EV_END_OF_GENERATION = 52,
    EV_EXP_FIRST = 128,
    EV_EXP_LAST = 136,
};

#define MAX_BATCH_SIZE  65536u /* tracev2.MaxBatchSize */
#define MAX_STRING_SIZE 1024u  /* tracev2.MaxStringSize */
#define MAX_FRAMES      128u   /* tracev2.MaxFramesPerStack */
#define MAX_ARGS        5u     /* tracev2.MaxTimedEventArgs */
#define NO_THREAD       UINT64_MAX
#define MAX_OPEN_STW    16u

/* Timed events: values after the type byte, dt included (trace-format.md §4.4). Structural
 * events have nargs 0 here: they may not appear in a per-M batch. */
static const uint8_t V2_NARGS[CD_TRACESUM_MAX_TYPES] = {
    [9] = 3,   [10] = 3,  [11] = 1,  [12] = 4,  [13] = 3,  [14] = 4,  [15] = 2,
    [16] = 3,  [17] = 1,  [18] = 1,  [19] = 3,  [20] = 3,  [21] = 4,  [22] = 3,
    [23] = 1,  [24] = 1,  [25] = 4,  [26] = 3,  [27] = 1,  [28] = 2,  [29] = 3,
    [30] = 2,  [31] = 2,  [32] = 2,  [33] = 3,  [34] = 2,  [35] = 2,  [36] = 1,
    [37] = 2,  [38] = 2,  [39] = 2,  [40] = 5,  [41] = 3,  [42] = 4,  [43] = 4,
    [44] = 5,  [45] = 3,  [46] = 3,  [47] = 4,  [48] = 5,  [128] = 4, [129] = 4,
    [130] = 2, [131] = 3, [132] = 3, [133] = 2, [134] = 3, [135] = 3, [136] = 2,
};

static const char *const V2_NAMES[CD_TRACESUM_MAX_TYPES] = {
    [1] = "EventBatch",
    [2] = "Stacks",
    [3] = "Stack",
    [4] = "Strings",
    [5] = "String",
    [6] = "CPUSamples",
    [7] = "CPUSample",
    [8] = "Frequency",
    [9] = "ProcsChange",
    [10] = "ProcStart",
    [11] = "ProcStop",
    [12] = "ProcSteal",
    [13] = "ProcStatus",
    [14] = "GoCreate",
    [15] = "GoCreateSyscall",
    [16] = "GoStart",
    [17] = "GoDestroy",
    [18] = "GoDestroySyscall",
    [19] = "GoStop",
    [20] = "GoBlock",
    [21] = "GoUnblock",
    [22] = "GoSyscallBegin",
    [23] = "GoSyscallEnd",
    [24] = "GoSyscallEndBlocked",
    [25] = "GoStatus",
    [26] = "STWBegin",
    [27] = "STWEnd",
    [28] = "GCActive",
    [29] = "GCBegin",
    [30] = "GCEnd",
    [31] = "GCSweepActive",
    [32] = "GCSweepBegin",
    [33] = "GCSweepEnd",
    [34] = "GCMarkAssistActive",
    [35] = "GCMarkAssistBegin",
    [36] = "GCMarkAssistEnd",
    [37] = "HeapAlloc",
    [38] = "HeapGoal",
    [39] = "GoLabel",
    [40] = "UserTaskBegin",
    [41] = "UserTaskEnd",
    [42] = "UserRegionBegin",
    [43] = "UserRegionEnd",
    [44] = "UserLog",
    [45] = "GoSwitch",
    [46] = "GoSwitchDestroy",
    [47] = "GoCreateBlocked",
    [48] = "GoStatusStack",
    [49] = "ExperimentalBatch",
    [50] = "Sync",
    [51] = "ClockSnapshot",
    [52] = "EndOfGeneration",
    [128] = "Span",
    [129] = "SpanAlloc",
    [130] = "SpanFree",
    [131] = "HeapObject",
    [132] = "HeapObjectAlloc",
    [133] = "HeapObjectFree",
    [134] = "GoroutineStack",
    [135] = "GoroutineStackAlloc",
    [136] = "GoroutineStackFree",
};

/* Ordered-event kinds. */
enum {
    OK_PROCS,
    OK_GO_CREATE,
    OK_GO_END,
    OK_GC_ACTIVE,
    OK_GC_BEGIN,
    OK_GC_END,
    OK_STW_BEGIN,
    OK_STW_END
};

/* What a thread is known to hold, from its own events only (other threads' steals are not
 * applied: their order relative to ours is not known without Go's full ordering). */
enum { M_UNKNOWN = 0, M_HAS_P = 1, M_NO_P = 2 };

/* Per-string-ID counters of one generation, resolved when it ends. */
enum { IDS_BLOCK, IDS_STOP, IDS_TASK, IDS_REGION, IDS_LOG, IDS_LABEL, IDS_N };

struct open_stw {
    uint64_t m;
    double at_ns;
    const char *kind;
    size_t kind_len;
};

struct cd_tracev2 {
    struct cd_tracesum *ts;
    const uint8_t *data;
    size_t len;
    int minor;
    unsigned max_id; /* highest legal non-experimental event ID for this header */

    /* the current generation */
    bool in_gen;
    bool gen_ended; /* 1.26: EndOfGeneration seen */
    uint64_t gen;
    uint64_t gen_freq;
    bool gen_clock;
    uint64_t clock_ts, clock_sec, clock_nsec;
    uint64_t gen_tmin, gen_tmax;
    bool gen_have_t;
    struct cd_tracesum_idmap strings; /* string ID → offset << 11 | length */
    struct cd_tracesum_idmap ids[IDS_N];
    struct cd_tracesum_oevs oevs;

    /* across generations */
    uint64_t last_freq;
    struct cd_tracesum_idmap gset;   /* goroutines with a status in the first generation */
    struct cd_tracesum_idmap mstate; /* thread → M_* */
    uint64_t live;
    bool gc_open;
    double gc_at;
    struct open_stw stw[MAX_OPEN_STW];
    unsigned n_stw;
};

static const char UNKNOWN_STRING[] = "(unknown string)";

static void count_id(struct cd_tracev2 *p, int which, uint64_t id)
{
    uint64_t *v;
    if (cd_tracesum_idmap_get(&p->ids[which], id, &v, NULL) < 0) {
        p->ts->ids_dropped++;
        return;
    }
    (*v)++;
}

static void lookup(const struct cd_tracev2 *p, uint64_t id, const char **s, size_t *len)
{
    const uint64_t *ref = cd_tracesum_idmap_find(&p->strings, id);
    if (ref == NULL) {
        *s = UNKNOWN_STRING;
        *len = sizeof(UNKNOWN_STRING) - 1;
        return;
    }
    *s = (const char *)p->data + (*ref >> 11);
    *len = (size_t)(*ref & 0x7ff);
}

struct resolve_ctx {
    struct cd_tracev2 *p;
    struct cd_tracesum_names *names;
};

static void resolve_one(void *vctx, uint64_t id, uint64_t count)
{
    struct resolve_ctx *c = vctx;
    const char *s;
    size_t len;
    lookup(c->p, id, &s, &len);
    cd_tracesum_names_add(c->names, s, len, count, 0);
}

static uint8_t *thread_state(struct cd_tracev2 *p, uint64_t m)
{
    uint64_t *v;
    if (cd_tracesum_idmap_get(&p->mstate, m, &v, NULL) < 0)
        return NULL;
    return (uint8_t *)v;
}

static void stw_begin(struct cd_tracev2 *p, uint64_t m, double ns, uint64_t kind_id)
{
    struct cd_tracesum *ts = p->ts;
    const char *k;
    size_t klen;
    lookup(p, kind_id, &k, &klen);
    cd_tracesum_names_add(&ts->stw_kinds, k, klen, 1, 0);
    unsigned i = 0;
    while (i < p->n_stw && p->stw[i].m != m)
        i++;
    if (i == p->n_stw) {
        if (p->n_stw == MAX_OPEN_STW) /* never closed: forget the oldest */
            memmove(&p->stw[0], &p->stw[1], (MAX_OPEN_STW - 1) * sizeof(p->stw[0]));
        else
            p->n_stw++;
        i = p->n_stw - 1;
    }
    p->stw[i] = (struct open_stw){.m = m, .at_ns = ns, .kind = k, .kind_len = klen};
}

static void stw_end(struct cd_tracev2 *p, uint64_t m, double ns)
{
    for (unsigned i = 0; i < p->n_stw; i++) {
        if (p->stw[i].m != m)
            continue;
        double d = ns - p->stw[i].at_ns;
        p->ts->stw_total_ns += d;
        cd_tracesum_names_add(&p->ts->stw_kinds, p->stw[i].kind, p->stw[i].kind_len, 0, d);
        memmove(&p->stw[i], &p->stw[i + 1], (p->n_stw - i - 1) * sizeof(p->stw[0]));
        p->n_stw--;
        return;
    }
}

/* Ends the current generation: resolves its names and replays its ordered events. complete =
 * the generation was read to its end (not cut by an error). */
static int finish_gen(struct cd_tracev2 *p, bool complete, struct cd_err *err)
{
    struct cd_tracesum *ts = p->ts;
    int rc = 0;
    bool first = ts->generations == 0;
    uint64_t freq = p->gen_freq;
    if (freq == 0 && complete)
        rc = cd_err_set(err, -EBADMSG, "v2: generation %llu has no frequency event",
                        (unsigned long long)p->gen);
    else if (rc == 0 && complete && p->minor >= 25 && !p->gen_clock)
        rc = cd_err_set(err, -EBADMSG, "v2: generation %llu has no ClockSnapshot",
                        (unsigned long long)p->gen);
    if (freq == 0)
        freq = p->last_freq; /* a cut generation: assume its predecessor's clock */
    else
        p->last_freq = freq;

    if (first) {
        ts->first_gen = p->gen;
        ts->freq = p->gen_freq;
        ts->g_at_start = p->gset.n;
        p->live = p->gset.n;
        ts->g_max_live = p->live;
    }
    ts->generations++;

    struct cd_tracesum_names *dest[IDS_N] = {
        [IDS_BLOCK] = &ts->block_reasons, [IDS_STOP] = &ts->stop_reasons,
        [IDS_TASK] = &ts->task_names,     [IDS_REGION] = &ts->region_names,
        [IDS_LOG] = &ts->log_keys,        [IDS_LABEL] = &ts->labels};
    for (int i = 0; i < IDS_N; i++) {
        struct resolve_ctx c = {.p = p, .names = dest[i]};
        cd_tracesum_idmap_each(&p->ids[i], resolve_one, &c);
    }

    double k = freq ? 1e9 / (double)freq : 0;
    double gen_start = (double)p->gen_tmin * k;
    if (freq && p->gen_have_t) {
        double a = gen_start, z = (double)p->gen_tmax * k;
        if (!ts->have_time || a < ts->t_min_ns)
            ts->t_min_ns = a;
        if (!ts->have_time || z > ts->t_max_ns)
            ts->t_max_ns = z;
        ts->have_time = true;
        /* Integers where it matters: a double has no nanoseconds left at 1.7e18. */
        if (first && p->gen_clock && p->clock_sec < 9000000000ULL &&
            p->clock_nsec < 1000000000ULL) {
            double off = ((double)p->clock_ts - (double)p->gen_tmin) * k;
            int64_t base = (int64_t)p->clock_sec * 1000000000LL + (int64_t)p->clock_nsec;
            double wall = (double)base - off;
            if (wall > 0 && wall < 9e18) {
                ts->have_wall = true;
                ts->wall_start_unix_ns = base - (int64_t)off;
            }
        }
    }

    cd_tracesum_oevs_sort(&p->oevs);
    for (size_t i = 0; i < p->oevs.n; i++) {
        const struct cd_tracesum_oev *e = &p->oevs.v[p->oevs.keys[i].idx];
        uint64_t ets = p->oevs.keys[i].ts;
        double ns = (double)ets * k;
        switch (e->kind) {
        case OK_PROCS:
            ts->procs_last = e->arg;
            break;
        case OK_GO_CREATE:
            if (++p->live > ts->g_max_live)
                ts->g_max_live = p->live;
            break;
        case OK_GO_END:
            if (p->live > 0)
                p->live--;
            break;
        case OK_GC_ACTIVE: /* the generation starts inside a GC */
            if (!p->gc_open) {
                p->gc_open = true;
                p->gc_at = gen_start;
            }
            break;
        case OK_GC_BEGIN:
            p->gc_open = true;
            p->gc_at = ns;
            break;
        case OK_GC_END:
            if (p->gc_open)
                ts->gc_total_ns += ns - p->gc_at;
            p->gc_open = false;
            break;
        case OK_STW_BEGIN:
            stw_begin(p, e->m, ns, e->arg);
            break;
        case OK_STW_END:
            stw_end(p, e->m, ns);
            break;
        }
    }
    ts->ordered_dropped += p->oevs.dropped;

    /* reset for the next generation */
    p->in_gen = false;
    p->gen_ended = false;
    p->gen_freq = 0;
    p->gen_clock = false;
    p->gen_have_t = false;
    p->oevs.dropped = 0;
    cd_tracesum_oevs_clear(&p->oevs);
    cd_tracesum_idmap_clear(&p->strings);
    for (int i = 0; i < IDS_N; i++)
        cd_tracesum_idmap_clear(&p->ids[i]);
    return rc;
}

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        rc = cd_err_set(err, code, __VA_ARGS__);                                                   \
        goto done;                                                                                 \
    } while (0)

/* Reads a value inside a batch; a batch is complete by then, so running out is corruption. */
#define BREAD(out, what)                                                                           \
    do {                                                                                           \
        int r_ = cd_tracesum_uvarint(&q, bend, &(out));                                            \
        if (r_ <= 0)                                                                               \
            FAIL(-EBADMSG, "v2: batch at offset %zu (gen %llu): %s at offset %zu %s", boff,        \
                 (unsigned long long)gen, what, (size_t)(q - p->data),                             \
                 r_ == 0 ? "runs past the end of the batch" : "is not a valid varint");            \
    } while (0)

/* One batch's payload, data[boff..] holding q..bend. */
static int batch_body(struct cd_tracev2 *p, size_t boff, uint64_t gen, uint64_t m, uint64_t btime,
                      const uint8_t *q, const uint8_t *bend, struct cd_err *err)
{
    struct cd_tracesum *ts = p->ts;
    uint64_t *counts = ts->type_counts;
    int rc = 0;
    if (q == bend)
        return 0;
    uint8_t first = *q;
    if (first == EV_STRINGS) {
        counts[EV_STRINGS]++;
        q++;
        while (q < bend) {
            size_t eoff = (size_t)(q - p->data);
            if (*q++ != EV_STRING)
                FAIL(-EBADMSG, "v2: strings batch at offset %zu: expected a string at offset %zu",
                     boff, eoff);
            uint64_t id, slen;
            BREAD(id, "string id");
            BREAD(slen, "string length");
            if (slen > MAX_STRING_SIZE)
                FAIL(-EBADMSG, "v2: string at offset %zu: size %llu exceeds %u", eoff,
                     (unsigned long long)slen, MAX_STRING_SIZE);
            if (slen > (uint64_t)(bend - q))
                FAIL(-EBADMSG, "v2: string at offset %zu runs past the end of its batch", eoff);
            uint64_t *ref;
            bool created;
            if (cd_tracesum_idmap_get(&p->strings, id, &ref, &created) < 0) {
                ts->strings_dropped++;
            } else if (!created) {
                FAIL(-EBADMSG, "v2: string at offset %zu: duplicate string id %llu", eoff,
                     (unsigned long long)id);
            } else {
                *ref = (uint64_t)(q - p->data) << 11 | slen;
            }
            q += slen;
            counts[EV_STRING]++;
            ts->strings++;
        }
        return 0;
    }
    if (first == EV_STACKS) {
        counts[EV_STACKS]++;
        q++;
        while (q < bend) {
            size_t eoff = (size_t)(q - p->data);
            if (*q++ != EV_STACK)
                FAIL(-EBADMSG, "v2: stacks batch at offset %zu: expected a stack at offset %zu",
                     boff, eoff);
            uint64_t id, nframes, v;
            BREAD(id, "stack id");
            BREAD(nframes, "frame count");
            if (nframes > MAX_FRAMES)
                FAIL(-EBADMSG, "v2: stack at offset %zu: %llu frames exceed %u", eoff,
                     (unsigned long long)nframes, MAX_FRAMES);
            for (uint64_t i = 0; i < 4 * nframes; i++)
                BREAD(v, "frame");
            (void)id;
            counts[EV_STACK]++;
            ts->stacks++;
        }
        return 0;
    }
    if (first == EV_CPU_SAMPLES) {
        counts[EV_CPU_SAMPLES]++;
        q++;
        while (q < bend) {
            size_t eoff = (size_t)(q - p->data);
            if (*q++ != EV_CPU_SAMPLE)
                FAIL(-EBADMSG,
                     "v2: CPU samples batch at offset %zu: expected a sample at offset %zu", boff,
                     eoff);
            uint64_t v;
            for (int i = 0; i < 5; i++)
                BREAD(v, "CPU sample field");
            counts[EV_CPU_SAMPLE]++;
            ts->cpu_samples++;
        }
        return 0;
    }
    bool sync = p->minor >= 25 ? first == EV_SYNC : first == EV_FREQUENCY;
    if (sync) {
        if (first == EV_SYNC) {
            counts[EV_SYNC]++;
            q++;
        }
        while (q < bend) {
            size_t eoff = (size_t)(q - p->data);
            uint8_t e = *q++;
            if (e == EV_FREQUENCY) {
                uint64_t f;
                BREAD(f, "frequency");
                if (p->gen_freq != 0)
                    FAIL(-EBADMSG, "v2: generation %llu: second frequency event at offset %zu",
                         (unsigned long long)gen, eoff);
                if (f == 0)
                    FAIL(-EBADMSG, "v2: frequency 0 at offset %zu", eoff);
                p->gen_freq = f;
                counts[EV_FREQUENCY]++;
            } else if (e == EV_CLOCK_SNAPSHOT && first == EV_SYNC) {
                uint64_t dt, mono, sec, nsec;
                BREAD(dt, "clock snapshot time");
                BREAD(mono, "clock snapshot monotonic time");
                BREAD(sec, "clock snapshot seconds");
                BREAD(nsec, "clock snapshot nanoseconds");
                (void)mono;
                p->gen_clock = true;
                p->clock_ts = btime + dt;
                p->clock_sec = sec;
                p->clock_nsec = nsec;
                counts[EV_CLOCK_SNAPSHOT]++;
                ts->clock_snapshots++;
            } else {
                FAIL(-EBADMSG, "v2: sync batch at offset %zu: unexpected event %u at offset %zu",
                     boff, e, eoff);
            }
        }
        return 0;
    }

    /* A thread's own events. */
    uint64_t t = btime;
    uint8_t *mst = NULL;
    bool first_gen = ts->generations == 0;
    while (q < bend) {
        size_t eoff = (size_t)(q - p->data);
        unsigned e = *q++;
        unsigned nargs = V2_NARGS[e];
        if (nargs == 0 || (e < EV_EXP_FIRST && e > p->max_id) ||
            (e >= EV_EXP_FIRST && p->minor < 23))
            FAIL(-EBADMSG,
                 "v2: batch at offset %zu (gen %llu, M %llu): event type %u at offset %zu is not "
                 "a valid timed event for Go 1.%d",
                 boff, (unsigned long long)gen, (unsigned long long)m, e, eoff, p->minor);
        uint64_t a[MAX_ARGS];
        for (unsigned i = 0; i < nargs; i++)
            BREAD(a[i], "event argument");
        counts[e]++;
        t += a[0];
        if (!p->gen_have_t) {
            p->gen_tmin = p->gen_tmax = t;
            p->gen_have_t = true;
        } else if (t < p->gen_tmin) {
            p->gen_tmin = t;
        } else if (t > p->gen_tmax) {
            p->gen_tmax = t;
        }
        switch (e) {
        case EV_PROCS_CHANGE:
            if (a[1] > ts->procs_max)
                ts->procs_max = a[1];
            cd_tracesum_oevs_push(&p->oevs, t, OK_PROCS, a[1], m);
            break;
        case EV_PROC_START:
            cd_tracesum_p_seen(ts, a[1]);
            if (mst != NULL || (mst = thread_state(p, m)) != NULL)
                *mst = M_HAS_P;
            break;
        case EV_PROC_STOP:
            if (mst != NULL || (mst = thread_state(p, m)) != NULL)
                *mst = M_NO_P;
            break;
        case EV_PROC_STEAL:
            if (a[3] == m && (mst != NULL || (mst = thread_state(p, m)) != NULL))
                *mst = M_NO_P;
            break;
        case EV_PROC_STATUS:
            if (a[2] > 4)
                FAIL(-EBADMSG, "v2: ProcStatus at offset %zu: invalid status %llu for proc %llu",
                     eoff, (unsigned long long)a[2], (unsigned long long)a[1]);
            cd_tracesum_p_seen(ts, a[1]);
            if ((a[2] == 1 || a[2] == 3) && (mst != NULL || (mst = thread_state(p, m)) != NULL))
                *mst = M_HAS_P;
            break;
        case EV_GO_CREATE_SYSCALL:
            if (mst != NULL || (mst = thread_state(p, m)) != NULL)
                *mst = M_NO_P;
            /* fall through */
        case EV_GO_CREATE:
        case EV_GO_CREATE_BLOCKED:
            ts->g_created++;
            cd_tracesum_oevs_push(&p->oevs, t, OK_GO_CREATE, 0, m);
            break;
        case EV_GO_DESTROY_SYSCALL:
            if (mst != NULL || (mst = thread_state(p, m)) != NULL)
                *mst = M_NO_P;
            /* fall through */
        case EV_GO_DESTROY:
        case EV_GO_SWITCH_DESTROY:
            ts->g_ended++;
            cd_tracesum_oevs_push(&p->oevs, t, OK_GO_END, 0, m);
            break;
        case EV_GO_STOP:
            count_id(p, IDS_STOP, a[1]);
            break;
        case EV_GO_BLOCK:
            count_id(p, IDS_BLOCK, a[1]);
            break;
        case EV_GO_SYSCALL_BEGIN:
            ts->syscalls++;
            break;
        case EV_GO_SYSCALL_END:
            if (mst == NULL)
                mst = thread_state(p, m);
            if (mst != NULL && *mst == M_NO_P)
                FAIL(-EBADMSG,
                     "v2: GoSyscallEnd at offset %zu on thread %llu, which holds no P (expected a "
                     "proc but didn't have one)",
                     eoff, (unsigned long long)m);
            break;
        case EV_GO_SYSCALL_END_BLOCKED:
            ts->syscalls_blocked++;
            break;
        case EV_GO_STATUS:
        case EV_GO_STATUS_STACK:
            if (a[3] > 4)
                FAIL(-EBADMSG, "v2: %s at offset %zu: invalid status %llu for goroutine %llu",
                     V2_NAMES[e], eoff, (unsigned long long)a[3], (unsigned long long)a[1]);
            if (first_gen) {
                uint64_t *v;
                if (cd_tracesum_idmap_get(&p->gset, a[1], &v, NULL) < 0)
                    ts->goroutines_dropped++;
            }
            break;
        case EV_STW_BEGIN:
            ts->stw_count++;
            cd_tracesum_oevs_push(&p->oevs, t, OK_STW_BEGIN, a[1], m);
            break;
        case EV_STW_END:
            cd_tracesum_oevs_push(&p->oevs, t, OK_STW_END, 0, m);
            break;
        case EV_GC_ACTIVE:
            cd_tracesum_oevs_push(&p->oevs, t, OK_GC_ACTIVE, 0, m);
            break;
        case EV_GC_BEGIN:
            ts->gc_count++;
            cd_tracesum_oevs_push(&p->oevs, t, OK_GC_BEGIN, 0, m);
            break;
        case EV_GC_END:
            cd_tracesum_oevs_push(&p->oevs, t, OK_GC_END, 0, m);
            break;
        case EV_GC_MARK_ASSIST_BEGIN:
            ts->gc_mark_assists++;
            break;
        case EV_HEAP_ALLOC:
            if (a[1] > ts->heap_alloc_max)
                ts->heap_alloc_max = a[1];
            break;
        case EV_HEAP_GOAL:
            if (a[1] > ts->heap_goal_max)
                ts->heap_goal_max = a[1];
            break;
        case EV_GO_LABEL:
            count_id(p, IDS_LABEL, a[1]);
            break;
        case EV_USER_TASK_BEGIN:
            ts->tasks++;
            count_id(p, IDS_TASK, a[3]);
            break;
        case EV_USER_TASK_END:
            ts->tasks_ended++;
            break;
        case EV_USER_REGION_BEGIN:
            ts->regions++;
            count_id(p, IDS_REGION, a[2]);
            break;
        case EV_USER_LOG:
            ts->logs++;
            count_id(p, IDS_LOG, a[2]);
            break;
        default:
            break;
        }
    }
done:
    return rc;
}

int cd_tracev2_parse(const uint8_t *data, size_t len, int minor, struct cd_tracesum *ts,
                     struct cd_err *err)
{
    int rc = 0;
    struct cd_tracev2 *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return cd_err_set(err, -ENOMEM, "v2: out of memory");
    p->ts = ts;
    p->data = data;
    p->len = len;
    p->minor = minor;
    p->max_id = minor >= 26   ? EV_END_OF_GENERATION
                : minor >= 25 ? EV_SYNC /* ClockSnapshot only inside the Sync batch */
                : minor >= 23 ? EV_GO_STATUS_STACK
                              : EV_USER_LOG;
    cd_tracesum_idmap_init(&p->strings, &ts->budget, CD_TRACESUM_MAX_STRINGS);
    for (int i = 0; i < IDS_N; i++)
        cd_tracesum_idmap_init(&p->ids[i], &ts->budget, CD_TRACESUM_MAX_IDS);
    cd_tracesum_idmap_init(&p->gset, &ts->budget,
                           ts->lim.max_goroutines ? ts->lim.max_goroutines : 1);
    cd_tracesum_idmap_init(&p->mstate, &ts->budget, CD_TRACESUM_MAX_THREADS);
    p->oevs.budget = &ts->budget;
    ts->family = 2;
    ts->minor = minor;
    ts->type_names = V2_NAMES;
    ts->bytes_parsed = len < 16 ? len : 16;

    const uint8_t *q = data + 16, *end = data + len;
    while (q < end) {
        size_t boff = (size_t)(q - data);
        uint8_t b = *q++;
        if (b == EV_END_OF_GENERATION && minor >= 26) {
            if (!p->in_gen || p->gen_ended)
                FAIL(-EBADMSG, "v2: EndOfGeneration at offset %zu without a generation", boff);
            p->gen_ended = true;
            ts->type_counts[EV_END_OF_GENERATION]++;
            ts->bytes_parsed = (size_t)(q - data);
            rc = finish_gen(p, true, err);
            if (rc < 0)
                goto out;
            continue;
        }
        if (b != EV_EVENT_BATCH && !(b == EV_EXPERIMENTAL_BATCH && minor >= 23))
            FAIL(-EBADMSG, "v2: expected a batch at offset %zu, got byte %u", boff, b);
        uint8_t exp = 0;
        if (b == EV_EXPERIMENTAL_BATCH) {
            if (q >= end)
                FAIL(-EPROTO, "v2: batch at offset %zu: header truncated", boff);
            exp = *q++;
        }
        uint64_t gen, m, btime, size;
        const char *field = "generation";
        int r = cd_tracesum_uvarint(&q, end, &gen);
        if (r > 0) {
            field = "thread";
            r = cd_tracesum_uvarint(&q, end, &m);
        }
        if (r > 0) {
            field = "time";
            r = cd_tracesum_uvarint(&q, end, &btime);
        }
        if (r > 0) {
            field = "size";
            r = cd_tracesum_uvarint(&q, end, &size);
        }
        if (r == 0)
            FAIL(-EPROTO, "v2: batch at offset %zu: header truncated (%s)", boff, field);
        if (r < 0)
            FAIL(-EBADMSG, "v2: batch at offset %zu: bad %s varint", boff, field);
        if (size > MAX_BATCH_SIZE)
            FAIL(-EBADMSG, "v2: batch at offset %zu: size %llu exceeds the maximum %u", boff,
                 (unsigned long long)size, MAX_BATCH_SIZE);
        if (size > (uint64_t)(end - q))
            FAIL(-EPROTO, "v2: batch at offset %zu: size %llu exceeds remaining %zu", boff,
                 (unsigned long long)size, (size_t)(end - q));
        if (gen == 0)
            FAIL(-EBADMSG, "v2: batch at offset %zu: invalid generation 0", boff);
        if (p->in_gen && gen != p->gen) {
            if (gen != p->gen + 1)
                FAIL(-EBADMSG,
                     "v2: batch at offset %zu: generations out of order (%llu after %llu)", boff,
                     (unsigned long long)gen, (unsigned long long)p->gen);
            if (minor >= 26)
                FAIL(-EBADMSG,
                     "v2: batch at offset %zu: generation %llu starts before generation %llu "
                     "ended (no EndOfGeneration)",
                     boff, (unsigned long long)gen, (unsigned long long)p->gen);
            rc = finish_gen(p, true, err);
            if (rc < 0)
                goto out;
        } else if (!p->in_gen && ts->generations > 0 && gen != p->gen + 1) {
            FAIL(-EBADMSG, "v2: batch at offset %zu: generations out of order (%llu after %llu)",
                 boff, (unsigned long long)gen, (unsigned long long)p->gen);
        }
        if (!p->in_gen) {
            p->in_gen = true;
            p->gen = gen;
        }
        ts->batches++;
        const uint8_t *body = q;
        q += size;
        if (exp != 0) {
            ts->exp_batches++;
        } else {
            rc = batch_body(p, boff, gen, m, btime, body, q, err);
            if (rc < 0)
                goto done;
        }
        ts->bytes_parsed = (size_t)(q - data);
    }
    if (p->in_gen && minor >= 26)
        FAIL(-EPROTO,
             "v2: generation %llu has no EndOfGeneration: the trace is incomplete (likely "
             "truncated)",
             (unsigned long long)p->gen);
    if (p->in_gen)
        rc = finish_gen(p, true, err);
    else if (ts->generations == 0)
        rc = cd_err_set(err, -EBADMSG, "v2: the trace has no batches");
    goto out;

done:
    if (p->in_gen)
        finish_gen(p, false, NULL);
out:
    cd_tracesum_idmap_free(&p->strings);
    for (int i = 0; i < IDS_N; i++)
        cd_tracesum_idmap_free(&p->ids[i]);
    cd_tracesum_idmap_free(&p->gset);
    cd_tracesum_idmap_free(&p->mstate);
    cd_tracesum_oevs_free(&p->oevs);
    free(p);
    return rc;
}
