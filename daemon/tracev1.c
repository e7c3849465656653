/* tracev1 — see tracev1.h. Wire format: shared/reference/trace-format.md §3. */
#include "tracev1.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
    EV_NONE = 0,
    EV_BATCH = 1,
    EV_FREQUENCY = 2,
    EV_STACK = 3,
    EV_GOMAXPROCS = 4,
    EV_PROC_START = 5,
    EV_GC_START = 7,
    EV_GC_DONE = 8,
    EV_STW_START = 9,
    EV_STW_DONE = 10,
    EV_GO_CREATE = 13,
    EV_GO_END = 15,
    EV_GO_STOP = 16,
    EV_GO_SLEEP = 19,
    EV_GO_BLOCK = 20,
    EV_GO_BLOCK_SEND = 22,
    EV_GO_BLOCK_RECV = 23,
    EV_GO_BLOCK_SELECT = 24,
    EV_GO_BLOCK_SYNC = 25,
    EV_GO_BLOCK_COND = 26,
    EV_GO_BLOCK_NET = 27,
    EV_GO_SYSCALL = 28,
    EV_GO_SYS_BLOCK = 30,
    EV_HEAP_ALLOC = 33,
    EV_HEAP_GOAL = 34,
    EV_TIMER_GOROUTINE = 35,
    EV_STRING = 37,
    EV_GO_START_LABEL = 41,
    EV_GO_BLOCK_GC = 42,
    EV_GC_MARK_ASSIST_START = 43,
    EV_USER_TASK_CREATE = 45,
    EV_USER_TASK_END = 46,
    EV_USER_REGION = 47,
    EV_USER_LOG = 48,
    EV_CPU_SAMPLE = 49,
    EV_COUNT = 50,
};

/* Go 1.19's parser limits. */
#define MAX_STRING_LEN 1000000u
#define MAX_FRAMES     1000u
#define MAX_ARGS_KEPT  8u

struct v1_spec {
    const char *name;
    int8_t nargs; /* values on the wire including dt (Batch/Frequency/TimerGoroutine: no dt);
                     -1 = variable (Stack) or special (String) */
    uint8_t since;
};

static const struct v1_spec V1[EV_COUNT] = {
    [1] = {"Batch", 2, 5},
    [2] = {"Frequency", 1, 5},
    [3] = {"Stack", -1, 5},
    [4] = {"Gomaxprocs", 3, 5},
    [5] = {"ProcStart", 2, 5},
    [6] = {"ProcStop", 1, 5},
    [7] = {"GCStart", 3, 5},
    [8] = {"GCDone", 1, 5},
    [9] = {"STWStart", 2, 5},
    [10] = {"STWDone", 1, 5},
    [11] = {"GCSweepStart", 2, 5},
    [12] = {"GCSweepDone", 3, 5},
    [13] = {"GoCreate", 4, 5},
    [14] = {"GoStart", 3, 5},
    [15] = {"GoEnd", 1, 5},
    [16] = {"GoStop", 2, 5},
    [17] = {"GoSched", 2, 5},
    [18] = {"GoPreempt", 2, 5},
    [19] = {"GoSleep", 2, 5},
    [20] = {"GoBlock", 2, 5},
    [21] = {"GoUnblock", 4, 5},
    [22] = {"GoBlockSend", 2, 5},
    [23] = {"GoBlockRecv", 2, 5},
    [24] = {"GoBlockSelect", 2, 5},
    [25] = {"GoBlockSync", 2, 5},
    [26] = {"GoBlockCond", 2, 5},
    [27] = {"GoBlockNet", 2, 5},
    [28] = {"GoSysCall", 2, 5},
    [29] = {"GoSysExit", 4, 5},
    [30] = {"GoSysBlock", 1, 5},
    [31] = {"GoWaiting", 2, 5},
    [32] = {"GoInSyscall", 2, 5},
    [33] = {"HeapAlloc", 2, 5},
    [34] = {"HeapGoal", 2, 5},
    [35] = {"TimerGoroutine", 1, 5},
    [36] = {"FutileWakeup", 1, 5},
    [37] = {"String", -1, 7},
    [38] = {"GoStartLocal", 2, 7},
    [39] = {"GoUnblockLocal", 3, 7},
    [40] = {"GoSysExitLocal", 3, 7},
    [41] = {"GoStartLabel", 4, 8},
    [42] = {"GoBlockGC", 2, 8},
    [43] = {"GCMarkAssistStart", 2, 9},
    [44] = {"GCMarkAssistDone", 1, 9},
    [45] = {"UserTaskCreate", 5, 11},
    [46] = {"UserTaskEnd", 3, 11},
    [47] = {"UserRegion", 5, 11},
    [48] = {"UserLog", 4, 11},
    [49] = {"CPUSample", 5, 19},
};

/* Event names for cd_tracesum.type_names, indexed by type. */
static const char *const V1_NAMES[CD_TRACESUM_MAX_TYPES] = {
    [1] = "Batch",
    [2] = "Frequency",
    [3] = "Stack",
    [4] = "Gomaxprocs",
    [5] = "ProcStart",
    [6] = "ProcStop",
    [7] = "GCStart",
    [8] = "GCDone",
    [9] = "STWStart",
    [10] = "STWDone",
    [11] = "GCSweepStart",
    [12] = "GCSweepDone",
    [13] = "GoCreate",
    [14] = "GoStart",
    [15] = "GoEnd",
    [16] = "GoStop",
    [17] = "GoSched",
    [18] = "GoPreempt",
    [19] = "GoSleep",
    [20] = "GoBlock",
    [21] = "GoUnblock",
    [22] = "GoBlockSend",
    [23] = "GoBlockRecv",
    [24] = "GoBlockSelect",
    [25] = "GoBlockSync",
    [26] = "GoBlockCond",
    [27] = "GoBlockNet",
    [28] = "GoSysCall",
    [29] = "GoSysExit",
    [30] = "GoSysBlock",
    [31] = "GoWaiting",
    [32] = "GoInSyscall",
    [33] = "HeapAlloc",
    [34] = "HeapGoal",
    [35] = "TimerGoroutine",
    [36] = "FutileWakeup",
    [37] = "String",
    [38] = "GoStartLocal",
    [39] = "GoUnblockLocal",
    [40] = "GoSysExitLocal",
    [41] = "GoStartLabel",
    [42] = "GoBlockGC",
    [43] = "GCMarkAssistStart",
    [44] = "GCMarkAssistDone",
    [45] = "UserTaskCreate",
    [46] = "UserTaskEnd",
    [47] = "UserRegion",
    [48] = "UserLog",
    [49] = "CPUSample",
};

/* Blocking reasons by event type (the names Go's v1 → v2 converter and our oracle use). */
static const struct {
    uint8_t type;
    const char *reason;
} V1_BLOCK[] = {
    {EV_GO_BLOCK, "unspecified"},       {EV_GO_BLOCK_SEND, "chan send"},
    {EV_GO_BLOCK_RECV, "chan receive"}, {EV_GO_BLOCK_SELECT, "select"},
    {EV_GO_BLOCK_SYNC, "sync"},         {EV_GO_BLOCK_COND, "sync.Cond"},
    {EV_GO_BLOCK_NET, "network"},       {EV_GO_SLEEP, "sleep"},
    {EV_GO_BLOCK_GC, "GC assist"},
};

/* STWStart kind: Go ≤ 1.20 traced only GC pauses (0/1); Go 1.21 indexes runtime.stwReason. */
static const char *const STW_OLD[] = {"GC mark termination", "GC sweep termination"};
static const char *const STW_121[] = {"unknown",
                                      "GC mark termination",
                                      "GC sweep termination",
                                      "write heap dump",
                                      "goroutine profile",
                                      "goroutine profile cleanup",
                                      "all goroutines stack trace",
                                      "read mem stats",
                                      "AllThreadsSyscall",
                                      "GOMAXPROCS",
                                      "start trace",
                                      "stop trace",
                                      "CountPagesInUse (test)",
                                      "ReadMetricsSlow (test)",
                                      "ReadMemStatsSlow (test)",
                                      "PageCachePagesLeaked (test)",
                                      "ResetDebugLog (test)"};

/* Ordered-event kinds. */
enum { OK_GOMAXPROCS, OK_GO_CREATE, OK_GO_END, OK_GC_START, OK_GC_DONE, OK_STW_START, OK_STW_DONE };

struct cd_tracev1 {
    struct cd_tracesum *ts;
    const uint8_t *data;
    size_t len;
    int minor;
    struct cd_tracesum_idmap strings;    /* string ID → offset << 20 | length */
    struct cd_tracesum_idmap task_ids;   /* name string ID → count */
    struct cd_tracesum_idmap region_ids; /* name string ID → count (region starts) */
    struct cd_tracesum_idmap log_ids;    /* key string ID → count */
    struct cd_tracesum_idmap label_ids;  /* label string ID → count */
    struct cd_tracesum_oevs oevs;
    uint64_t tmin;
    uint64_t tmax;
    bool have_t;
};

static void count_id(struct cd_tracev1 *p, struct cd_tracesum_idmap *m, uint64_t id)
{
    uint64_t *v;
    if (cd_tracesum_idmap_get(m, id, &v, NULL) < 0) {
        p->ts->ids_dropped++;
        return;
    }
    (*v)++;
}

struct resolve_ctx {
    struct cd_tracev1 *p;
    struct cd_tracesum_names *names;
};

static void resolve_one(void *vctx, uint64_t id, uint64_t count)
{
    struct resolve_ctx *c = vctx;
    const uint64_t *ref = cd_tracesum_idmap_find(&c->p->strings, id);
    if (ref == NULL) {
        static const char unknown[] = "(unknown string)";
        cd_tracesum_names_add(c->names, unknown, sizeof(unknown) - 1, count, 0);
        return;
    }
    cd_tracesum_names_add(c->names, (const char *)c->p->data + (*ref >> 20),
                          (size_t)(*ref & 0xfffff), count, 0);
}

static void resolve(struct cd_tracev1 *p, struct cd_tracesum_idmap *ids,
                    struct cd_tracesum_names *names)
{
    struct resolve_ctx c = {.p = p, .names = names};
    cd_tracesum_idmap_each(ids, resolve_one, &c);
}

static const char *stw_kind(int minor, uint64_t kind)
{
    if (minor >= 21)
        return kind < sizeof(STW_121) / sizeof(STW_121[0]) ? STW_121[kind] : "unknown";
    return kind < 2 ? STW_OLD[kind] : "unknown";
}

/* Time-ordered pass over the events whose order matters (trace-format.md §3.5, §5). */
static void replay(struct cd_tracev1 *p)
{
    struct cd_tracesum *ts = p->ts;
    cd_tracesum_oevs_sort(&p->oevs);
    double scale = ts->freq ? 1e9 / (double)ts->freq : 0;
    uint64_t t0 = p->tmin;
    bool pre_init = true; /* before the first Gomaxprocs: the trace-start section */
    uint64_t live = 0;
    bool gc_open = false, stw_open = false;
    double gc_at = 0, stw_at = 0;
    uint64_t stw_kind_arg = 0;
    for (size_t i = 0; i < p->oevs.n; i++) {
        const struct cd_tracesum_oev *e = &p->oevs.v[p->oevs.keys[i].idx];
        uint64_t ets = p->oevs.keys[i].ts;
        /* The same operations as Go's parser: (t - t0) * 1e9 / freq, in double. */
        double ns = scale ? (double)(ets - t0) * 1e9 / (double)ts->freq : 0;
        switch (e->kind) {
        case OK_GOMAXPROCS:
            pre_init = false;
            ts->procs_last = e->arg;
            break;
        case OK_GO_CREATE:
            if (pre_init)
                ts->g_at_start++;
            if (++live > ts->g_max_live)
                ts->g_max_live = live;
            break;
        case OK_GO_END:
            if (live > 0)
                live--;
            break;
        case OK_GC_START:
            gc_open = true;
            gc_at = ns;
            break;
        case OK_GC_DONE:
            if (gc_open)
                ts->gc_total_ns += ns - gc_at;
            gc_open = false;
            break;
        case OK_STW_START: {
            const char *k = stw_kind(p->minor, e->arg);
            cd_tracesum_names_add(&ts->stw_kinds, k, strlen(k), 1, 0);
            stw_open = true;
            stw_at = ns;
            stw_kind_arg = e->arg;
            break;
        }
        case OK_STW_DONE:
            if (stw_open) {
                const char *k = stw_kind(p->minor, stw_kind_arg);
                ts->stw_total_ns += ns - stw_at;
                cd_tracesum_names_add(&ts->stw_kinds, k, strlen(k), 0, ns - stw_at);
            }
            stw_open = false;
            break;
        }
    }
    uint64_t creates = ts->type_counts[EV_GO_CREATE];
    ts->g_created = creates - (ts->g_at_start <= creates ? ts->g_at_start : creates);
}

static void finish(struct cd_tracev1 *p)
{
    struct cd_tracesum *ts = p->ts;
    const uint64_t *c = ts->type_counts;
    for (size_t i = 0; i < sizeof(V1_BLOCK) / sizeof(V1_BLOCK[0]); i++)
        if (c[V1_BLOCK[i].type] > 0)
            cd_tracesum_names_add(&ts->block_reasons, V1_BLOCK[i].reason,
                                  strlen(V1_BLOCK[i].reason), c[V1_BLOCK[i].type], 0);
    ts->g_ended = c[EV_GO_END];
    ts->gc_count = c[EV_GC_START];
    ts->gc_mark_assists = c[EV_GC_MARK_ASSIST_START];
    ts->stw_count = c[EV_STW_START];
    ts->syscalls = c[EV_GO_SYSCALL];
    ts->syscalls_blocked = c[EV_GO_SYS_BLOCK];
    ts->tasks = c[EV_USER_TASK_CREATE];
    ts->tasks_ended = c[EV_USER_TASK_END];
    ts->logs = c[EV_USER_LOG];
    ts->cpu_samples = c[EV_CPU_SAMPLE];
    ts->strings = p->strings.n + ts->strings_dropped;
    ts->stacks = c[EV_STACK];
    ts->ordered_dropped += p->oevs.dropped;
    resolve(p, &p->task_ids, &ts->task_names);
    resolve(p, &p->region_ids, &ts->region_names);
    resolve(p, &p->log_ids, &ts->log_keys);
    resolve(p, &p->label_ids, &ts->labels);
    if (p->have_t && ts->freq) {
        ts->have_time = true;
        ts->t_min_ns = 0;
        ts->t_max_ns = (double)(p->tmax - p->tmin) * 1e9 / (double)ts->freq;
    }
    replay(p);
}

/* For error messages only: the name of the event being read. */
#define NAME (typ < EV_COUNT && V1[typ].name ? V1[typ].name : "?")

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        rc = cd_err_set(err, code, __VA_ARGS__);                                                   \
        goto done;                                                                                 \
    } while (0)

/* Reads one value; on failure jumps out with an error naming what and where. */
#define READ(ptr, lim, out, what)                                                                  \
    do {                                                                                           \
        int r_ = cd_tracesum_uvarint(&(ptr), (lim), &(out));                                       \
        if (r_ <= 0)                                                                               \
            FAIL(r_ == 0 ? -EPROTO : -EBADMSG, "v1: event %s at offset %zu: %s %s", NAME, ev_off,  \
                 what, r_ == 0 ? "truncated" : "is not a valid varint");                           \
    } while (0)

int cd_tracev1_parse(const uint8_t *data, size_t len, int minor, struct cd_tracesum *ts,
                     struct cd_err *err)
{
    int rc = 0;
    struct cd_tracev1 p = {.ts = ts, .data = data, .len = len, .minor = minor, .tmin = UINT64_MAX};
    cd_tracesum_idmap_init(&p.strings, &ts->budget, CD_TRACESUM_MAX_STRINGS);
    cd_tracesum_idmap_init(&p.task_ids, &ts->budget, CD_TRACESUM_MAX_IDS);
    cd_tracesum_idmap_init(&p.region_ids, &ts->budget, CD_TRACESUM_MAX_IDS);
    cd_tracesum_idmap_init(&p.log_ids, &ts->budget, CD_TRACESUM_MAX_IDS);
    cd_tracesum_idmap_init(&p.label_ids, &ts->budget, CD_TRACESUM_MAX_IDS);
    p.oevs.budget = &ts->budget;
    ts->family = 1;
    ts->minor = minor;
    ts->type_names = V1_NAMES;
    ts->bytes_parsed = len < 16 ? len : 16;

    const uint8_t *q = data + 16, *end = data + len;
    bool in_batch = false;
    uint64_t t = 0, batch_p = UINT64_MAX;
    uint64_t *counts = ts->type_counts;
    while (q < end) {
        size_t ev_off = (size_t)(q - data);
        uint8_t b = *q++;
        unsigned typ = b & 0x3f, n = b >> 6;
        if (typ == EV_NONE || typ >= EV_COUNT || V1[typ].since > minor)
            FAIL(-EBADMSG, "v1: unknown event type %u at offset %zu", typ, ev_off);

        if (typ == EV_STRING) {
            uint64_t id, slen;
            READ(q, end, id, "string id");
            READ(q, end, slen, "string length");
            if (id == 0)
                FAIL(-EBADMSG, "v1: string at offset %zu has invalid id 0", ev_off);
            if (slen == 0 || slen > MAX_STRING_LEN)
                FAIL(-EBADMSG, "v1: string at offset %zu has invalid length %llu", ev_off,
                     (unsigned long long)slen);
            if (slen > (uint64_t)(end - q))
                FAIL(-EPROTO, "v1: string at offset %zu: length %llu exceeds remaining %zu", ev_off,
                     (unsigned long long)slen, (size_t)(end - q));
            uint64_t *ref;
            bool created;
            int r = cd_tracesum_idmap_get(&p.strings, id, &ref, &created);
            if (r < 0) {
                ts->strings_dropped++;
            } else if (!created) {
                FAIL(-EBADMSG, "v1: string at offset %zu has duplicate id %llu", ev_off,
                     (unsigned long long)id);
            } else {
                *ref = (uint64_t)(q - data) << 20 | slen;
            }
            q += slen;
            ts->bytes_parsed = (size_t)(q - data);
            continue;
        }

        uint64_t a[MAX_ARGS_KEPT] = {0};
        unsigned na = 0;
        if (n < 3) {
            for (na = 0; na <= n; na++)
                READ(q, end, a[na], "argument");
        } else {
            uint64_t elen;
            READ(q, end, elen, "length");
            if (elen > (uint64_t)(end - q))
                FAIL(-EPROTO, "v1: event %s at offset %zu: length %llu exceeds remaining %zu", NAME,
                     ev_off, (unsigned long long)elen, (size_t)(end - q));
            const uint8_t *eend = q + elen;
            while (q < eend) {
                uint64_t v;
                int r = cd_tracesum_uvarint(&q, eend, &v);
                if (r <= 0)
                    FAIL(-EBADMSG, "v1: event %s at offset %zu has wrong length %llu", NAME, ev_off,
                         (unsigned long long)elen);
                if (na < MAX_ARGS_KEPT)
                    a[na] = v;
                na++;
            }
        }
        if (typ == EV_STACK) {
            if (na < 2)
                FAIL(-EBADMSG, "v1: Stack at offset %zu has %u arguments, want at least 2", ev_off,
                     na);
            if (a[1] > MAX_FRAMES)
                FAIL(-EBADMSG, "v1: Stack at offset %zu has bad number of frames %llu", ev_off,
                     (unsigned long long)a[1]);
            if (na != 2 + 4 * a[1])
                FAIL(-EBADMSG, "v1: Stack at offset %zu has %u arguments, want %llu", ev_off, na,
                     (unsigned long long)(2 + 4 * a[1]));
        } else if (na != (unsigned)V1[typ].nargs) {
            FAIL(-EBADMSG, "v1: %s at offset %zu has wrong number of arguments: want %d, got %u",
                 NAME, ev_off, V1[typ].nargs, na);
        }
        if (typ == EV_USER_LOG) { /* the value follows inline */
            uint64_t vlen;
            READ(q, end, vlen, "log value length");
            if (vlen > MAX_STRING_LEN)
                FAIL(-EBADMSG, "v1: UserLog at offset %zu: value too large (%llu bytes)", ev_off,
                     (unsigned long long)vlen);
            if (vlen > (uint64_t)(end - q))
                FAIL(-EPROTO, "v1: UserLog at offset %zu: value length %llu exceeds remaining %zu",
                     ev_off, (unsigned long long)vlen, (size_t)(end - q));
            q += vlen;
        }
        ts->bytes_parsed = (size_t)(q - data);

        switch (typ) {
        case EV_BATCH:
            ts->batches++;
            in_batch = true;
            batch_p = a[0];
            t = a[1];
            continue;
        case EV_FREQUENCY:
            if (a[0] == 0)
                FAIL(-EBADMSG, "v1: Frequency at offset %zu is 0", ev_off);
            ts->freq = a[0];
            counts[typ]++;
            continue;
        case EV_STACK:
        case EV_TIMER_GOROUTINE:
        case EV_CPU_SAMPLE:
            counts[typ]++;
            continue;
        default:
            break;
        }

        /* A timed event of the current batch's P. */
        if (!in_batch)
            FAIL(-EBADMSG, "v1: event %s at offset %zu comes before the first batch", NAME, ev_off);
        counts[typ]++;
        t += a[0];
        p.tmin = t < p.tmin ? t : p.tmin;
        p.tmax = t > p.tmax ? t : p.tmax;
        p.have_t = true;
        switch (typ) {
        case EV_GOMAXPROCS:
            if (a[1] > ts->procs_max)
                ts->procs_max = a[1];
            cd_tracesum_oevs_push(&p.oevs, t, OK_GOMAXPROCS, a[1], 0);
            break;
        case EV_PROC_START:
            cd_tracesum_p_seen(ts, batch_p);
            break;
        case EV_GC_START:
            cd_tracesum_oevs_push(&p.oevs, t, OK_GC_START, 0, 0);
            break;
        case EV_GC_DONE:
            cd_tracesum_oevs_push(&p.oevs, t, OK_GC_DONE, 0, 0);
            break;
        case EV_STW_START:
            cd_tracesum_oevs_push(&p.oevs, t, OK_STW_START, a[1], 0);
            break;
        case EV_STW_DONE:
            cd_tracesum_oevs_push(&p.oevs, t, OK_STW_DONE, 0, 0);
            break;
        case EV_GO_CREATE:
            cd_tracesum_oevs_push(&p.oevs, t, OK_GO_CREATE, 0, 0);
            break;
        case EV_GO_END:
            cd_tracesum_oevs_push(&p.oevs, t, OK_GO_END, 0, 0);
            break;
        case EV_HEAP_ALLOC:
            if (a[1] > ts->heap_alloc_max)
                ts->heap_alloc_max = a[1];
            break;
        case EV_HEAP_GOAL:
            if (a[1] > ts->heap_goal_max)
                ts->heap_goal_max = a[1];
            break;
        case EV_GO_START_LABEL:
            count_id(&p, &p.label_ids, a[3]);
            break;
        case EV_USER_TASK_CREATE:
            count_id(&p, &p.task_ids, a[3]);
            break;
        case EV_USER_REGION:
            if (a[2] == 0) {
                ts->regions++;
                count_id(&p, &p.region_ids, a[3]);
            }
            break;
        case EV_USER_LOG:
            count_id(&p, &p.log_ids, a[2]);
            break;
        default:
            break;
        }
    }
    if (ts->freq == 0)
        FAIL(-EPROTO, "v1: no Frequency event (the trace footer is missing: truncated?)");
    if (!p.have_t && ts->type_counts[EV_CPU_SAMPLE] == 0)
        FAIL(-EBADMSG, "v1: the trace has no events");

done:
    finish(&p);
    cd_tracesum_idmap_free(&p.strings);
    cd_tracesum_idmap_free(&p.task_ids);
    cd_tracesum_idmap_free(&p.region_ids);
    cd_tracesum_idmap_free(&p.log_ids);
    cd_tracesum_idmap_free(&p.label_ids);
    cd_tracesum_oevs_free(&p.oevs);
    return rc;
}
