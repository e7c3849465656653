/* ingest — see ingest.h. */
#include "ingest.h"

#include "inspect.h"
#include "str.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct cd_ingest {
    struct cd_worker *worker;
    struct cd_store *store;
    pthread_mutex_t mu; /* guards lim, which a config reload may change */
    struct cd_parse_limits lim;
    atomic_uint_fast64_t received, refused, summarized, invalid, store_rejected, cancelled;
};

int cd_ingest_new(struct cd_worker *w, struct cd_store *st, const struct cd_parse_limits *lim,
                  struct cd_ingest **out, struct cd_err *err)
{
    struct cd_ingest *in = calloc(1, sizeof(*in));
    if (in == NULL)
        return cd_err_set(err, -ENOMEM, "ingest: out of memory");
    in->worker = w;
    in->store = st;
    in->lim = *lim;
    pthread_mutex_init(&in->mu, NULL);
    *out = in;
    return 0;
}

void cd_ingest_free(struct cd_ingest *in)
{
    if (in == NULL)
        return;
    pthread_mutex_destroy(&in->mu);
    free(in);
}

void cd_ingest_set_limits(struct cd_ingest *in, const struct cd_parse_limits *lim)
{
    pthread_mutex_lock(&in->mu);
    in->lim = *lim;
    pthread_mutex_unlock(&in->mu);
}

bool cd_ingest_summarize(struct cd_snapshot *s, const struct cd_parse_limits *lim)
{
    /* Error bodies (Go's text errors, busy answers) are kept as evidence, not summarized. */
    if (s->status != CD_SNAP_OK || s->raw == NULL || s->raw_len == 0)
        return false;
    struct cd_summary sum;
    cd_summary_init(&sum);
    struct cd_err err;
    cd_err_init(&err);
    int rc =
        cd_inspect_summarize(cd_inspect_kind_format(s->kind), s->raw, s->raw_len, lim, &sum, &err);
    bool kept = false;
    if (rc == 0 || sum.json != NULL) {
        /* A partial summary (a truncated trace) is still worth keeping next to the error. */
        kept = cd_snapshot_take_summary(s, &sum) == 0;
    }
    if (rc < 0) {
        s->status = CD_SNAP_INVALID;
        free(s->parse_error);
        s->parse_error = cd_str_dup(cd_err_msg(&err));
    }
    cd_summary_free(&sum);
    return kept;
}

static void drop(struct cd_snapshot *s, int rc)
{
    if (s->done != NULL)
        s->done(s, rc, s->done_ctx);
    cd_snapshot_free(s);
}

struct job {
    struct cd_ingest *in;
    struct cd_snapshot *s;
};

static void job_run(void *arg)
{
    struct job *j = arg;
    struct cd_ingest *in = j->in;
    struct cd_snapshot *s = j->s;
    j->s = NULL;
    pthread_mutex_lock(&in->mu);
    struct cd_parse_limits lim = in->lim;
    pthread_mutex_unlock(&in->mu);
    if (cd_ingest_summarize(s, &lim))
        atomic_fetch_add(&in->summarized, 1);
    if (s->status == CD_SNAP_INVALID)
        atomic_fetch_add(&in->invalid, 1);
    /* Hashing and recompressing here keeps the single writer thread doing only writes; when
     * this fails (memory), the writer does it itself. */
    cd_store_prepare(s, NULL);
    if (cd_store_submit(in->store, &s) < 0) {
        atomic_fetch_add(&in->store_rejected, 1);
        drop(s, -EAGAIN);
    }
}

static void job_done(void *arg, int cancelled)
{
    struct job *j = arg;
    if (cancelled && j->s != NULL) {
        atomic_fetch_add(&j->in->cancelled, 1);
        drop(j->s, -ECANCELED);
    }
    free(j);
}

int cd_ingest_sink(void *ctx, struct cd_snapshot *s)
{
    struct cd_ingest *in = ctx;
    struct job *j = malloc(sizeof(*j));
    if (j == NULL)
        return -EAGAIN;
    j->in = in;
    j->s = s;
    int rc = cd_worker_submit(in->worker, job_run, job_done, j, s->raw_len + sizeof(*s));
    if (rc < 0) {
        free(j);
        atomic_fetch_add(&in->refused, 1);
        return -EAGAIN;
    }
    atomic_fetch_add(&in->received, 1);
    return 0;
}

bool cd_ingest_full(void *ctx)
{
    struct cd_ingest *in = ctx;
    return !cd_worker_has_room(in->worker, 0);
}

void cd_ingest_get_stats(struct cd_ingest *in, struct cd_ingest_stats *out)
{
    out->received = atomic_load(&in->received);
    out->refused = atomic_load(&in->refused);
    out->summarized = atomic_load(&in->summarized);
    out->invalid = atomic_load(&in->invalid);
    out->store_rejected = atomic_load(&in->store_rejected);
    out->cancelled = atomic_load(&in->cancelled);
}
