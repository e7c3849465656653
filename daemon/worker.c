/* worker — see worker.h. */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WORKER_MAX_THREADS 64

struct job {
    struct job *next;
    cd_worker_run_fn run;
    cd_worker_done_fn done;
    void *arg;
    uint64_t bytes;
    int cancelled;
};

/* A FIFO of jobs linked through `next`. */
struct jobq {
    struct job *head;
    struct job *tail;
    size_t n;
};

struct cd_worker {
    uv_loop_t *loop;
    uv_async_t async;
    bool async_live;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;  /* work queued, or stopping */
    struct jobq queue;    /* waiting for a thread */
    struct jobq finished; /* run (or discarded), waiting for the loop */
    size_t running;
    size_t jobs;
    uint64_t bytes;
    bool stopping;
    int exited; /* threads that have left their loop */
    struct cd_worker_stats counters;
    size_t max_jobs;
    uint64_t max_bytes;

    pthread_t *threads;
    int n_threads;
    bool locks_live;

    cd_worker_stop_fn stop_cb;
    void *stop_ctx;
    bool stop_called;
};

static void jobq_push(struct jobq *q, struct job *j)
{
    j->next = NULL;
    if (q->tail != NULL)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
}

static struct job *jobq_pop(struct jobq *q)
{
    struct job *j = q->head;
    if (j == NULL)
        return NULL;
    q->head = j->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->n--;
    j->next = NULL;
    return j;
}

/* Takes the whole list (O(1)), so the loop thread holds the lock for microseconds. */
static struct jobq jobq_take(struct jobq *q)
{
    struct jobq all = *q;
    memset(q, 0, sizeof(*q));
    return all;
}

static void *thread_main(void *arg)
{
    struct cd_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->queue.n == 0 && !w->stopping)
            pthread_cond_wait(&w->cond, &w->lock);
        struct job *j = jobq_pop(&w->queue);
        if (j == NULL)
            break; /* stopping and nothing left */
        w->running++;
        pthread_mutex_unlock(&w->lock);

        j->run(j->arg);

        pthread_mutex_lock(&w->lock);
        w->running--;
        jobq_push(&w->finished, j);
        if (w->async_live)
            uv_async_send(&w->async);
    }
    w->exited++;
    if (w->async_live)
        uv_async_send(&w->async);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void join_threads(struct cd_worker *w)
{
    for (int i = 0; i < w->n_threads; i++)
        pthread_join(w->threads[i], NULL);
    w->n_threads = 0;
}

static void on_async_closed(uv_handle_t *h)
{
    struct cd_worker *w = h->data;
    if (w->stop_cb != NULL)
        w->stop_cb(w, w->stop_ctx);
}

static void on_async(uv_async_t *a)
{
    struct cd_worker *w = a->data;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        struct jobq batch = jobq_take(&w->finished);
        pthread_mutex_unlock(&w->lock);
        if (batch.n == 0)
            break;
        struct job *j;
        while ((j = jobq_pop(&batch)) != NULL) {
            j->done(j->arg, j->cancelled);
            pthread_mutex_lock(&w->lock);
            w->jobs--;
            w->bytes -= j->bytes;
            if (j->cancelled)
                w->counters.discarded++;
            else
                w->counters.completed++;
            pthread_mutex_unlock(&w->lock);
            free(j);
        }
    }
    pthread_mutex_lock(&w->lock);
    bool all_gone = w->stopping && w->exited == w->n_threads && w->finished.n == 0;
    pthread_mutex_unlock(&w->lock);
    if (all_gone && w->async_live) {
        /* Every thread has left its loop: joining cannot block. */
        join_threads(w);
        pthread_mutex_lock(&w->lock);
        w->async_live = false;
        pthread_mutex_unlock(&w->lock);
        uv_close((uv_handle_t *)&w->async, on_async_closed);
    }
}

int cd_worker_new(uv_loop_t *loop, const struct cd_worker_opts *opts, struct cd_worker **out,
                  struct cd_err *err)
{
    int rc;
    struct cd_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return cd_err_set(err, -ENOMEM, "worker: out of memory");
    w->loop = loop;
    int threads = opts != NULL && opts->threads > 0 ? opts->threads : 2;
    if (threads > WORKER_MAX_THREADS)
        threads = WORKER_MAX_THREADS;
    w->max_jobs = opts != NULL && opts->max_jobs > 0 ? opts->max_jobs : 256;
    w->max_bytes = opts != NULL && opts->max_bytes > 0 ? opts->max_bytes : 256ULL << 20;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        return cd_err_set(err, -ENOMEM, "worker: mutex");
    }
    if (pthread_cond_init(&w->cond, NULL) != 0) {
        pthread_mutex_destroy(&w->lock);
        free(w);
        return cd_err_set(err, -ENOMEM, "worker: condition variable");
    }
    w->locks_live = true;
    w->threads = calloc((size_t)threads, sizeof(*w->threads));
    if (w->threads == NULL) {
        rc = cd_err_set(err, -ENOMEM, "worker: out of memory");
        goto fail;
    }
    for (int i = 0; i < threads; i++) {
        rc = -pthread_create(&w->threads[i], NULL, thread_main, w);
        if (rc < 0) {
            cd_err_set(err, rc, "worker: starting thread %d of %d: %s", i + 1, threads,
                       strerror(-rc));
            goto fail;
        }
        w->n_threads++;
    }
    /* The async handle last: once it exists the pool can only be taken down on the loop. The
     * threads touch it only under the lock and only when async_live is set. */
    rc = uv_async_init(loop, &w->async, on_async);
    if (rc < 0) {
        cd_err_set(err, rc, "worker: uv_async_init: %s", uv_strerror(rc));
        goto fail;
    }
    w->async.data = w;
    pthread_mutex_lock(&w->lock);
    w->async_live = true;
    pthread_mutex_unlock(&w->lock);
    *out = w;
    return 0;
fail:
    /* Idle threads only (nothing was submitted): they leave at once. */
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    join_threads(w);
    cd_worker_free(w);
    return rc;
}

/* Under lock. A job larger than the whole byte budget still runs when the queue is empty:
 * the budget bounds what waits, and max_body_bytes bounds one body. */
static bool fits(const struct cd_worker *w, uint64_t bytes)
{
    return w->jobs + 1 <= w->max_jobs && (w->jobs == 0 || w->bytes + bytes <= w->max_bytes);
}

int cd_worker_submit(struct cd_worker *w, cd_worker_run_fn run, cd_worker_done_fn done, void *arg,
                     uint64_t bytes)
{
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return -ENOMEM;
    j->run = run;
    j->done = done;
    j->arg = arg;
    j->bytes = bytes;
    pthread_mutex_lock(&w->lock);
    int rc = 0;
    if (w->stopping) {
        rc = -ESHUTDOWN;
    } else if (!fits(w, bytes)) {
        w->counters.rejected++;
        rc = -EAGAIN;
    } else {
        w->jobs++;
        w->bytes += bytes;
        w->counters.submitted++;
        jobq_push(&w->queue, j);
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    if (rc < 0)
        free(j);
    return rc;
}

int cd_worker_has_room(struct cd_worker *w, uint64_t bytes)
{
    pthread_mutex_lock(&w->lock);
    int room = !w->stopping && fits(w, bytes);
    pthread_mutex_unlock(&w->lock);
    return room;
}

void cd_worker_stats(struct cd_worker *w, struct cd_worker_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->counters;
    out->queued = w->queue.n;
    out->running = w->running;
    out->jobs = w->jobs;
    out->bytes = w->bytes;
    pthread_mutex_unlock(&w->lock);
}

void cd_worker_stop(struct cd_worker *w, enum cd_worker_stop_mode mode, cd_worker_stop_fn cb,
                    void *ctx)
{
    if (w->stop_called)
        return;
    w->stop_called = true;
    w->stop_cb = cb;
    w->stop_ctx = ctx;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    if (mode == CD_WORKER_DISCARD) {
        struct job *j;
        while ((j = jobq_pop(&w->queue)) != NULL) {
            j->cancelled = 1;
            jobq_push(&w->finished, j);
        }
    }
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    /* Threads signal as they leave; also run the drain once now in case none is left to. */
    uv_async_send(&w->async);
}

void cd_worker_free(struct cd_worker *w)
{
    if (w == NULL)
        return;
    free(w->threads);
    if (w->locks_live) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
    }
    free(w);
}
