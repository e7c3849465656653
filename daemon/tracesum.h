/*
 * tracesum — the format-independent half of the Go execution trace summarizer: the counters, name
 * tables and time-ordered event lists that the v1 and v2 decoders (tracev1, tracev2) fill, and the
 * JSON document and series points built from them (shape documented in trace.h).
 *
 * Pure; runs on whichever thread calls cd_trace_summarize. A struct cd_tracesum owns every table
 * it holds, and all of their memory is charged to one budget (cd_parse_limits.max_memory): a
 * table that would go over it stops growing and counts what it left out instead of failing.
 * Names are (pointer, length) views into the caller's input bytes or into constant strings, so
 * the input must outlive the summary until cd_tracesum_json() has copied them out.
 */
#ifndef CD_TRACESUM_H
#define CD_TRACESUM_H

#include "err.h"
#include "summary.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Table caps that cd_parse_limits has no field for. */
#define CD_TRACESUM_MAX_STRINGS (1u << 20) /* string table entries per trace (v1) / generation */
#define CD_TRACESUM_MAX_IDS     (1u << 16) /* distinct string IDs counted per name table */
#define CD_TRACESUM_MAX_THREADS (1u << 16) /* v2 threads (Ms) whose P ownership is tracked */
#define CD_TRACESUM_P_BITS      4096u      /* P ids below this are counted in procs.seen */
#define CD_TRACESUM_MAX_TYPES   256u

/* Reads one unsigned LEB128 value (Go's binary.Uvarint) at *p, not past end. Non-minimal
 * encodings are accepted (the v2 runtime pads batch sizes to 10 bytes). Returns 1 on success
 * (advancing *p), 0 when the input ends inside the value, -1 when it is longer than 10 bytes or
 * overflows 64 bits. */
static inline int cd_tracesum_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    const uint8_t *q = *p;
    if (q < end && *q < 0x80) {
        *out = *q;
        *p = q + 1;
        return 1;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (q >= end)
            return 0;
        uint8_t c = *q++;
        if (i == 9 && c > 1)
            return -1;
        v |= (uint64_t)(c & 0x7f) << (7 * i);
        if (c < 0x80) {
            *out = v;
            *p = q;
            return 1;
        }
    }
    return -1;
}

/* Memory charged so far against the limit. */
struct cd_tracesum_budget {
    size_t used;
    size_t limit;
};

/* A uint64 → uint64 hash map (open addressing). Used for string tables (ID → input offset),
 * per-string-ID counters and ID sets. Never shrinks; -E2BIG at max entries, -ENOMEM past the
 * budget. */
struct cd_tracesum_idmap {
    struct cd_tracesum_idmap_slot *slots;
    size_t n;
    size_t cap; /* power of two, or 0 */
    size_t max;
    struct cd_tracesum_budget *budget;
};

void cd_tracesum_idmap_init(struct cd_tracesum_idmap *m, struct cd_tracesum_budget *budget,
                            size_t max);
void cd_tracesum_idmap_free(struct cd_tracesum_idmap *m);
void cd_tracesum_idmap_clear(struct cd_tracesum_idmap *m);
/* The value slot for key, or NULL. */
uint64_t *cd_tracesum_idmap_find(const struct cd_tracesum_idmap *m, uint64_t key);
/* The value slot for key, inserted as 0 when absent (*created says which). The pointer is valid
 * until the next insertion. */
int cd_tracesum_idmap_get(struct cd_tracesum_idmap *m, uint64_t key, uint64_t **val, bool *created);
/* Calls fn for every entry (in no particular order). */
void cd_tracesum_idmap_each(const struct cd_tracesum_idmap *m,
                            void (*fn)(void *ctx, uint64_t key, uint64_t val), void *ctx);

/* Name → (count, total ns), e.g. block reasons, STW kinds, task names. Past the entry cap
 * (cd_parse_limits.max_groups) or the budget, new names are counted in `dropped`. */
struct cd_tracesum_name {
    const char *s;
    size_t len;
    uint64_t count;
    double total_ns;
};

struct cd_tracesum_names {
    struct cd_tracesum_name *v;
    size_t n;
    size_t cap;
    uint32_t *index; /* hash → position + 1 */
    size_t icap;
    size_t max;
    uint64_t dropped; /* occurrences of names left out */
    struct cd_tracesum_budget *budget;
};

/* Adds count and ns to name s[0..len). */
void cd_tracesum_names_add(struct cd_tracesum_names *t, const char *s, size_t len, uint64_t count,
                           double ns);

/* An event whose position in time matters (GC and STW pairs, goroutine births and deaths,
 * GOMAXPROCS): decoders push them in file order, sort them by time (stable: file order breaks
 * ties) and replay them. */
struct cd_tracesum_oev {
    uint64_t arg; /* event-specific: procs, STW kind, kind string ID */
    uint64_t m;   /* v2: the thread that emitted it */
    uint8_t kind; /* the decoder's own code */
};

/* Sort keys: after cd_tracesum_oevs_sort, keys[i] is the i-th event in time order and
 * v[keys[i].idx] its payload. */
struct cd_tracesum_okey {
    uint64_t ts; /* ticks */
    uint64_t idx;
};

struct cd_tracesum_oevs {
    struct cd_tracesum_oev *v;
    struct cd_tracesum_okey *keys;
    size_t n;
    size_t cap;
    uint64_t dropped; /* events left out for the budget */
    struct cd_tracesum_budget *budget;
};

void cd_tracesum_oevs_push(struct cd_tracesum_oevs *o, uint64_t ts, uint8_t kind, uint64_t arg,
                           uint64_t m);
void cd_tracesum_oevs_sort(struct cd_tracesum_oevs *o);
void cd_tracesum_oevs_clear(struct cd_tracesum_oevs *o); /* keeps the memory */
void cd_tracesum_oevs_free(struct cd_tracesum_oevs *o);

/* The summary being built. Decoders write the fields directly; counters not applicable to a
 * format stay 0. */
struct cd_tracesum {
    struct cd_tracesum_budget budget;
    struct cd_parse_limits lim;
    int minor;  /* header "go 1.NN" */
    int family; /* 1 or 2 */
    size_t input_bytes;
    size_t bytes_parsed; /* up to the end of the last complete event/batch */

    const char *const *type_names; /* CD_TRACESUM_MAX_TYPES names (NULL = unused id) */
    uint64_t type_counts[CD_TRACESUM_MAX_TYPES];
    uint64_t batches;
    uint64_t strings;
    uint64_t stacks;
    uint64_t cpu_samples;
    uint64_t generations; /* v2 */
    uint64_t first_gen;   /* v2 */
    uint64_t exp_batches; /* v2 ExperimentalBatch */
    uint64_t clock_snapshots;

    uint64_t freq; /* ticks per second (v2: of the first generation); 0 = not seen */
    bool have_time;
    double t_min_ns; /* absolute, for the duration */
    double t_max_ns;
    bool have_wall;
    int64_t wall_start_unix_ns; /* v2 1.25+: from the first ClockSnapshot */

    uint64_t g_at_start;
    uint64_t g_created;
    uint64_t g_ended;
    uint64_t g_max_live;

    uint64_t gc_count;
    double gc_total_ns;
    uint64_t gc_mark_assists;
    uint64_t heap_alloc_max;
    uint64_t heap_goal_max;

    uint64_t stw_count;
    double stw_total_ns;
    struct cd_tracesum_names stw_kinds;

    struct cd_tracesum_names block_reasons;
    struct cd_tracesum_names stop_reasons; /* v2 GoStop */
    struct cd_tracesum_names task_names;
    struct cd_tracesum_names region_names;
    struct cd_tracesum_names log_keys;
    struct cd_tracesum_names labels; /* GC worker labels (GoStartLabel / GoLabel) */

    uint64_t procs_max;
    uint64_t procs_last;
    uint8_t p_seen[CD_TRACESUM_P_BITS / 8];

    uint64_t syscalls;
    uint64_t syscalls_blocked;
    uint64_t tasks;
    uint64_t tasks_ended;
    uint64_t regions;
    uint64_t logs;

    /* What was left out to stay within limits. */
    uint64_t strings_dropped;
    uint64_t goroutines_dropped;
    uint64_t ordered_dropped;
    uint64_t ids_dropped;
};

/* lim may be NULL (defaults). */
void cd_tracesum_init(struct cd_tracesum *ts, const struct cd_parse_limits *lim,
                      size_t input_bytes);
void cd_tracesum_free(struct cd_tracesum *ts);

static inline void cd_tracesum_p_seen(struct cd_tracesum *ts, uint64_t p)
{
    if (p < CD_TRACESUM_P_BITS)
        ts->p_seen[p >> 3] |= (uint8_t)(1u << (p & 7));
}

/* The JSON document (see trace.h). version is "1.NN"; error, when not NULL, makes it a partial
 * summary. */
int cd_tracesum_json(const struct cd_tracesum *ts, const char *error, json_t **out,
                     struct cd_err *err);
/* The numeric series points of a complete summary. */
int cd_tracesum_series(const struct cd_tracesum *ts, struct cd_summary *out, struct cd_err *err);

#endif
