/* scrape — see scrape.h. */
#include "scrape.h"

#include "gops.h"
#include "http.h"
#include "kind.h"
#include "log.h"
#include "scheduler.h"
#include "str.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

const double cd_scrape_duration_bounds_s[CD_SCRAPE_DURATION_BUCKETS - 1] = {
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
const int64_t cd_scrape_lateness_bounds_ms[CD_SCRAPE_LATENESS_BUCKETS - 1] = {1,   5,   10,   50,
                                                                              100, 250, 1000, 5000};

/* A capture request after the loop took it: shared by the scrapes it started. */
struct capreq {
    int refs;
    char *incident;
    cd_snapshot_done_fn done;
    void *done_ctx;
};

struct tstate;

/* One kind of one target: its schedule, health and complaint. Lives as long as its target. */
struct kstate {
    struct tstate *ts;
    char *name;
    const struct cd_kind_spec *spec; /* into ts->t.kinds, or &ondemand */
    struct cd_kind_spec ondemand;    /* for kinds the config does not schedule (captures) */
    bool scheduled;
    struct cd_scheduler_entry *entry;
    /* health, under sc->lock */
    int64_t last_ms;
    int64_t last_duration_ms;
    uint64_t last_bytes;
    enum cd_snap_status last_status;
    bool ever;
    char *last_error;
    int failures;
    struct cd_complaint complaint;
};

/* One target (by id): survives reconfiguration while its id stays. */
struct tstate {
    struct tstate *prev, *next;
    uint64_t gen; /* the cd_scrape_set_targets() call that last touched it */
    int refs;     /* the list's + one per scrape in flight */
    bool removed;
    struct cd_target t;
    char *labels_json;
    char *serial_key;
    struct kstate **kinds;
    size_t n_kinds;
    /* health, under sc->lock */
    int health; /* 0 unknown, 1 up, 2 down */
    char *last_error;
    int64_t last_error_ms;
    int64_t last_scrape_ms;
    int64_t last_duration_ms;
    int failures;
};

struct run {
    struct run *prev, *next;
    struct cd_scrape *sc;
    struct tstate *ts;
    struct kstate *ks;
    struct cd_scheduler_entry *entry;
    struct cd_snapshot *snap;
    struct capreq *cap;
    struct cd_http_xfer *hx;
    struct cd_gops_xfer *gx;
    uint64_t bytes;
    bool cut_by_budget;
};

struct result_row {
    char *job;
    char *kind;
    enum cd_snap_status status;
    uint64_t count;
};

struct capq_item {
    struct capq_item *next;
    struct cd_capture_req req; /* deep copy */
    struct cd_labels labels;
};

struct cd_scrape {
    uv_loop_t *loop;
    struct cd_clock real_clock;
    const struct cd_clock *clock;
    struct cd_scrape_opts o;
    struct cd_scheduler *sched;
    struct cd_http *http;
    uv_timer_t timer;      /* the scheduler's next deadline */
    uv_timer_t stop_timer; /* the stop deadline */
    uv_async_t async;      /* capture requests */
    int open_handles;
    bool stopping;
    bool http_closed;
    bool closing;
    cd_scrape_stop_fn stop_cb;
    void *stop_ctx;

    struct tstate *targets;
    size_t n_targets;
    uint64_t gen;
    struct run *runs;
    size_t n_runs;
    uint64_t inflight_bytes;

    pthread_mutex_t lock; /* health, metrics, the target list (for readers), the capture queue */
    struct capq_item *capq_head, *capq_tail;
    size_t capq_n;
    bool capq_closed;
    struct result_row *rows;
    size_t n_rows, cap_rows;
    struct cd_scrape_metrics m; /* counters only (results in rows) */
};

static void kick(struct cd_scrape *sc);
static void maybe_finish_stop(struct cd_scrape *sc);

/* ---- small helpers ------------------------------------------------------------------------ */

static void capreq_unref(struct capreq *c)
{
    if (c == NULL || --c->refs > 0)
        return;
    free(c->incident);
    free(c);
}

static void kind_spec_clear(struct cd_kind_spec *k)
{
    free(k->name);
    free(k->path);
    free(k->query);
    memset(k, 0, sizeof(*k));
}

static void kstate_free(struct kstate *ks)
{
    if (ks == NULL)
        return;
    free(ks->name);
    kind_spec_clear(&ks->ondemand);
    free(ks->last_error);
    free(ks);
}

static void tstate_free(struct tstate *ts)
{
    for (size_t i = 0; i < ts->n_kinds; i++)
        kstate_free(ts->kinds[i]);
    free(ts->kinds);
    cd_target_free(&ts->t);
    free(ts->labels_json);
    free(ts->serial_key);
    free(ts->last_error);
    free(ts);
}

static void tstate_unref(struct tstate *ts)
{
    if (--ts->refs == 0)
        tstate_free(ts);
}

static struct kstate *find_kind(struct tstate *ts, const char *name)
{
    for (size_t i = 0; i < ts->n_kinds; i++) {
        if (strcmp(ts->kinds[i]->name, name) == 0)
            return ts->kinds[i];
    }
    return NULL;
}

static struct tstate *find_target(struct cd_scrape *sc, const char *id)
{
    for (struct tstate *ts = sc->targets; ts != NULL; ts = ts->next) {
        if (strcmp(ts->t.id, id) == 0)
            return ts;
    }
    return NULL;
}

/* The scrape timeout of the target's job, recovered from any scheduled kind. */
static int64_t job_scrape_timeout(const struct cd_target *t)
{
    for (size_t i = 0; i < t->n_kinds; i++) {
        int64_t v = t->kinds[i].timeout_ms - (int64_t)t->kinds[i].seconds * 1000;
        if (v > 0)
            return v;
    }
    return 10000;
}

/* The pprof base path ("/debug/pprof" or the job's prefix), recovered from a scheduled kind. */
static char *pprof_base(const struct cd_target *t)
{
    for (size_t i = 0; i < t->n_kinds; i++) {
        const struct cd_kind_info *ki = cd_kind_lookup(t->kinds[i].name);
        const char *p = t->kinds[i].path;
        if (ki == NULL || ki->http_path == NULL || p == NULL)
            continue;
        if (cd_str_has_suffix(p, ki->http_path))
            return cd_str_ndup(p, strlen(p) - strlen(ki->http_path));
    }
    return cd_str_dup("/debug/pprof");
}

/* Builds the on-demand request of a built-in kind the config does not schedule. Returns NULL
 * (ok) or a static reason why the target cannot serve it. -ENOMEM through *rc. */
static const char *derive_spec(const struct cd_target *t, const char *name,
                               struct cd_kind_spec *out, int *rc)
{
    *rc = 0;
    const struct cd_kind_info *ki = cd_kind_lookup(name);
    if (ki == NULL)
        return "unknown kind for this target (custom kinds must be configured)";
    memset(out, 0, sizeof(*out));
    int64_t st = job_scrape_timeout(t);
    out->exclusive = ki->exclusive;
    if (t->scheme == CD_SCHEME_GOPS) {
        if (ki->gops_cmd == 0)
            return "a gops agent cannot serve this kind";
        out->gops_cmd = ki->gops_cmd;
        out->seconds = ki->gops_fixed_seconds;
    } else {
        if (ki->http_path == NULL)
            return "net/http/pprof cannot serve this kind (gops only)";
        char *base = pprof_base(t);
        out->path = base != NULL ? cd_str_printf("%s%s", base, ki->http_path) : NULL;
        free(base);
        if (ki->http_seconds) {
            out->seconds = ki->http_default_seconds;
            out->query = cd_str_printf("seconds=%d", out->seconds);
        } else if (ki->http_query != NULL) {
            out->query = cd_str_dup(ki->http_query);
        }
        if (out->path == NULL || ((ki->http_seconds || ki->http_query) && out->query == NULL)) {
            kind_spec_clear(out);
            *rc = -ENOMEM;
            return "out of memory";
        }
    }
    out->name = cd_str_dup(ki->name);
    if (out->name == NULL) {
        kind_spec_clear(out);
        *rc = -ENOMEM;
        return "out of memory";
    }
    out->interval_ms = 0;
    out->timeout_ms = (int64_t)out->seconds * 1000 + st;
    return NULL;
}

static void fill_sched_spec(struct tstate *ts, struct kstate *ks, struct cd_scheduler_spec *sp)
{
    sp->target_id = ts->t.id;
    sp->kind = ks->name;
    sp->process_key = ts->t.process_key;
    sp->serial_key = ts->serial_key;
    sp->interval_ms = ks->scheduled ? ks->spec->interval_ms : 0;
    sp->exclusive = ks->spec->exclusive;
}

/* ---- metrics ------------------------------------------------------------------------------ */

/* Under sc->lock. */
static void count_result(struct cd_scrape *sc, const char *job, const char *kind,
                         enum cd_snap_status st)
{
    for (size_t i = 0; i < sc->n_rows; i++) {
        struct result_row *r = &sc->rows[i];
        if (r->status == st && strcmp(r->kind, kind) == 0 && strcmp(r->job, job) == 0) {
            r->count++;
            return;
        }
    }
    if (sc->n_rows == sc->cap_rows) {
        size_t cap = sc->cap_rows ? sc->cap_rows * 2 : 32;
        struct result_row *v = realloc(sc->rows, cap * sizeof(*v));
        if (v == NULL)
            return;
        sc->rows = v;
        sc->cap_rows = cap;
    }
    struct result_row *r = &sc->rows[sc->n_rows];
    r->job = cd_str_dup(job);
    r->kind = cd_str_dup(kind);
    if (r->job == NULL || r->kind == NULL) {
        free(r->job);
        free(r->kind);
        return;
    }
    r->status = st;
    r->count = 1;
    sc->n_rows++;
}

static void observe_duration(struct cd_scrape *sc, int64_t ms)
{
    double s = (double)ms / 1000.0;
    int b = 0;
    while (b < CD_SCRAPE_DURATION_BUCKETS - 1 && s > cd_scrape_duration_bounds_s[b])
        b++;
    sc->m.duration_counts[b]++;
    sc->m.duration_sum_s += s;
}

static void observe_lateness(struct cd_scrape *sc, int64_t ms)
{
    int b = 0;
    while (b < CD_SCRAPE_LATENESS_BUCKETS - 1 && ms > cd_scrape_lateness_bounds_ms[b])
        b++;
    sc->m.lateness_counts[b]++;
    sc->m.lateness_sum_ms += ms;
}

/* ---- events ------------------------------------------------------------------------------- */

static void emit(struct cd_scrape *sc, int level, const char *target_id, const char *msg)
{
    if (sc->o.on_event != NULL)
        sc->o.on_event(sc->o.event_ctx, level, target_id, msg);
}

/* cd_complaint semantics: first failure and a changed error are reported, repeats are counted,
 * recovery is reported once. The state update reuses log.c with no logger. */
static void complain(struct cd_scrape *sc, struct kstate *ks, const char *msg)
{
    struct cd_complaint *c = &ks->complaint;
    bool same = c->active && strncmp(c->last, msg, sizeof(c->last) - 1) == 0;
    if (!same) {
        char *line;
        if (c->active && c->repeats > 0)
            line = cd_str_printf("%s: %s (error changed; the previous one repeated %llu times)",
                                 ks->name, msg, (unsigned long long)c->repeats);
        else
            line = cd_str_printf("%s: %s", ks->name, msg);
        if (line != NULL)
            emit(sc, CD_LOG_WARNING, ks->ts->t.id, line);
        free(line);
    }
    cd_log_complain(NULL, c, CD_LOG_WARNING, ks->ts->t.id, msg);
}

static void recovered(struct cd_scrape *sc, struct kstate *ks)
{
    struct cd_complaint *c = &ks->complaint;
    if (!c->active)
        return;
    char *line = cd_str_printf("%s: recovered after %llu failed attempt%s", ks->name,
                               (unsigned long long)c->total, c->total == 1 ? "" : "s");
    if (line != NULL)
        emit(sc, CD_LOG_NOTICE, ks->ts->t.id, line);
    free(line);
    cd_log_recovered(NULL, c, ks->ts->t.id);
}

/* ---- finishing a scrape ------------------------------------------------------------------- */

static void run_unlink(struct cd_scrape *sc, struct run *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        sc->runs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    sc->n_runs--;
    pthread_mutex_lock(&sc->lock);
    sc->inflight_bytes -= r->bytes;
    sc->m.inflight = sc->n_runs;
    sc->m.inflight_bytes = sc->inflight_bytes;
    pthread_mutex_unlock(&sc->lock);
}

/* Down: nothing usable can come from the target until something changes. A 404 or a 500 for
 * one kind leaves the others working (up, the error on the kind); a refused credential (401,
 * 403) refuses every kind. */
static bool is_down(const struct cd_snapshot *s)
{
    if (s->status == CD_SNAP_HTTP_ERROR)
        return s->http_status == 401 || s->http_status == 403;
    return s->status == CD_SNAP_TIMEOUT || s->status == CD_SNAP_CONNECT_ERROR ||
           s->status == CD_SNAP_ERROR;
}

static void update_health(struct cd_scrape *sc, struct run *r)
{
    struct cd_snapshot *s = r->snap;
    struct tstate *ts = r->ts;
    struct kstate *ks = r->ks;
    pthread_mutex_lock(&sc->lock);
    count_result(sc, s->job, s->kind, s->status);
    observe_duration(sc, s->duration_ms);
    sc->m.bytes_received += r->bytes;
    if (!ts->removed) {
        ks->ever = true;
        ks->last_ms = s->start_ms;
        ks->last_duration_ms = s->duration_ms;
        ks->last_bytes = s->raw_len;
        ks->last_status = s->status;
        ts->last_scrape_ms = s->start_ms;
        ts->last_duration_ms = s->duration_ms;
        if (s->status == CD_SNAP_OK) {
            ks->failures = 0;
            free(ks->last_error);
            ks->last_error = NULL;
        } else if (s->status != CD_SNAP_BUSY) {
            ks->failures++;
        }
        if (s->status != CD_SNAP_OK && s->error != NULL) {
            free(ks->last_error);
            ks->last_error = cd_str_dup(s->error);
            free(ts->last_error);
            ts->last_error = cd_str_printf("%s: %s", s->kind, s->error);
            ts->last_error_ms = s->start_ms;
        }
        if (is_down(s)) {
            ts->health = 2;
            ts->failures++;
        } else {
            ts->health = 1;
            ts->failures = 0;
        }
    }
    pthread_mutex_unlock(&sc->lock);
    if (!ts->removed) {
        if (s->status == CD_SNAP_OK) {
            recovered(sc, ks);
        } else {
            /* Errors often name their class already ("timeout: ...", "busy: ..."): once. */
            const char *name = cd_snap_status_name(s->status);
            const char *e = s->error != NULL ? s->error : "";
            size_t nl = strlen(name);
            char *msg = strncmp(e, name, nl) == 0 && e[nl] == ':'
                            ? cd_str_dup(e)
                            : cd_str_printf("%s: %s", name, e);
            if (msg != NULL)
                complain(sc, ks, msg);
            free(msg);
        }
    }
}

static void deliver(struct cd_scrape *sc, struct cd_snapshot *s)
{
    int rc = 0;
    if (sc->o.sink != NULL)
        rc = sc->o.sink(sc->o.sink_ctx, s);
    else
        cd_snapshot_free(s);
    pthread_mutex_lock(&sc->lock);
    if (rc == 0)
        sc->m.delivered++;
    else
        sc->m.dropped_queue_full++;
    pthread_mutex_unlock(&sc->lock);
    if (rc != 0) {
        if (s->done != NULL)
            s->done(s, rc < 0 ? rc : -EAGAIN, s->done_ctx);
        cd_snapshot_free(s);
    }
}

static void run_free(struct run *r)
{
    cd_snapshot_free(r->snap);
    capreq_unref(r->cap);
    if (r->ts != NULL)
        tstate_unref(r->ts);
    free(r);
}

/* The scrape has its answer (or failure): status and message already set on r->snap. */
static void complete(struct run *r, int64_t duration_ms)
{
    struct cd_scrape *sc = r->sc;
    struct cd_snapshot *s = r->snap;
    s->duration_ms = duration_ms;
    if (r->cut_by_budget) {
        pthread_mutex_lock(&sc->lock);
        sc->m.cut_budget++;
        pthread_mutex_unlock(&sc->lock);
    }
    run_unlink(sc, r);
    update_health(sc, r);
    enum cd_scheduler_result res = s->status == CD_SNAP_OK     ? CD_SCHED_OK
                                   : s->status == CD_SNAP_BUSY ? CD_SCHED_BUSY
                                                               : CD_SCHED_FAIL;
    cd_scheduler_done(sc->sched, r->entry, res);
    r->snap = NULL;
    deliver(sc, s);
    run_free(r);
    kick(sc);
    maybe_finish_stop(sc);
}

static int on_bytes(void *ctx, size_t n)
{
    struct run *r = ctx;
    struct cd_scrape *sc = r->sc;
    if (sc->inflight_bytes + n > sc->o.max_inflight_bytes) {
        r->cut_by_budget = true;
        return -1;
    }
    pthread_mutex_lock(&sc->lock);
    sc->inflight_bytes += n;
    r->bytes += n;
    sc->m.inflight_bytes = sc->inflight_bytes;
    if (sc->inflight_bytes > sc->m.inflight_bytes_peak)
        sc->m.inflight_bytes_peak = sc->inflight_bytes;
    pthread_mutex_unlock(&sc->lock);
    return 0;
}

static bool keeps_body(enum cd_snap_status st)
{
    return st == CD_SNAP_OK || st == CD_SNAP_HTTP_ERROR || st == CD_SNAP_BUSY;
}

static void on_http_done(struct cd_http_result *res, void *ctx)
{
    struct run *r = ctx;
    r->hx = NULL;
    struct cd_snapshot *s = r->snap;
    char *msg = NULL;
    s->status = cd_http_classify(res, &msg);
    s->error = msg;
    s->http_status = (int)res->http_status;
    s->content_type = res->content_type;
    res->content_type = NULL;
    if (keeps_body(s->status)) {
        s->raw = res->body;
        s->raw_len = res->body_len;
        res->body = NULL;
    }
    complete(r, res->duration_ms);
}

static void on_gops_done(struct cd_gops_result *res, void *ctx)
{
    struct run *r = ctx;
    r->gx = NULL;
    struct cd_snapshot *s = r->snap;
    char *msg = NULL;
    s->status = cd_gops_classify(res, &msg);
    s->error = msg;
    if (keeps_body(s->status)) {
        s->raw = res->body;
        s->raw_len = res->body_len;
        res->body = NULL;
        const struct cd_kind_info *ki = cd_kind_lookup(s->kind);
        if (ki != NULL && s->raw_len > 0)
            s->content_type = cd_str_dup(ki->content_type);
    }
    complete(r, res->duration_ms);
}

/* ---- starting a scrape -------------------------------------------------------------------- */

static struct cd_snapshot *new_snapshot(struct tstate *ts, struct kstate *ks)
{
    struct cd_snapshot *s = cd_snapshot_new();
    if (s == NULL)
        return NULL;
    const char *inst = cd_labels_get(&ts->t.labels, "instance");
    s->job = cd_str_dup(ts->t.job);
    s->scheme = cd_str_dup(cd_scheme_name(ts->t.scheme));
    s->address = cd_str_dup(ts->t.address);
    s->instance = cd_str_dup(inst != NULL ? inst : ts->t.address);
    s->labels_json = cd_str_dup(ts->labels_json);
    s->kind = cd_str_dup(ks->name);
    s->request = cd_target_request(&ts->t, ks->spec);
    s->format = CD_FORMAT_UNKNOWN;
    if (s->job == NULL || s->scheme == NULL || s->address == NULL || s->instance == NULL ||
        s->labels_json == NULL || s->kind == NULL || s->request == NULL) {
        cd_snapshot_free(s);
        return NULL;
    }
    return s;
}

/* The URL curl gets: with a TLS server name, the name goes in the URL and CONNECT_TO sends the
 * connection to the address. */
static int http_url(const struct cd_target *t, const struct cd_kind_spec *k, char **url,
                    char **connect_to)
{
    *connect_to = NULL;
    const char *q = k->query != NULL && k->query[0] != '\0' ? k->query : NULL;
    if (t->scheme == CD_SCHEME_HTTPS && t->tls.server_name != NULL) {
        *url = cd_str_printf("https://%s:%d%s%s%s", t->tls.server_name, t->port,
                             k->path != NULL ? k->path : "", q ? "?" : "", q ? q : "");
        *connect_to = cd_str_printf("%s:%d:%s:%d", t->tls.server_name, t->port, t->host, t->port);
        if (*url == NULL || *connect_to == NULL) {
            free(*url);
            free(*connect_to);
            return -ENOMEM;
        }
        return 0;
    }
    *url = cd_target_request(t, k);
    return *url != NULL ? 0 : -ENOMEM;
}

static void start_one(struct cd_scrape *sc, const struct cd_scheduler_start *st)
{
    struct kstate *ks = st->udata;
    struct tstate *ts = ks->ts;
    struct capreq *cap = st->capture_token;
    int64_t now_wall = cd_clock_wall_ms(sc->clock);

    if (!st->capture && sc->o.sink_full != NULL && sc->o.sink_full(sc->o.sink_ctx)) {
        pthread_mutex_lock(&sc->lock);
        sc->m.skipped_queue_full++;
        pthread_mutex_unlock(&sc->lock);
        cd_scheduler_done(sc->sched, st->entry, CD_SCHED_CANCELLED);
        return;
    }
    struct run *r = calloc(1, sizeof(*r));
    struct cd_snapshot *s = new_snapshot(ts, ks);
    if (r == NULL || s == NULL) {
        free(r);
        cd_snapshot_free(s);
        cd_scheduler_done(sc->sched, st->entry, CD_SCHED_CANCELLED);
        capreq_unref(cap);
        return;
    }
    r->sc = sc;
    r->ts = ts;
    ts->refs++;
    r->ks = ks;
    r->entry = st->entry;
    r->snap = s;
    r->cap = cap; /* the token's reference moves to the run */
    s->start_ms = now_wall;
    s->scheduled_ms = st->capture ? 0 : cd_scheduler_to_wall(sc->sched, st->due_mono_ms);
    if (cap != NULL) {
        if (cap->incident != NULL) {
            s->incident = cd_str_dup(cap->incident);
            s->pinned = 1;
        }
        s->done = cap->done;
        s->done_ctx = cap->done_ctx;
    }
    r->next = sc->runs;
    if (sc->runs != NULL)
        sc->runs->prev = r;
    sc->runs = r;
    sc->n_runs++;
    pthread_mutex_lock(&sc->lock);
    sc->m.inflight = sc->n_runs;
    if (st->capture)
        sc->m.captures_started++;
    else {
        sc->m.started++;
        observe_lateness(sc, st->lateness_ms);
    }
    pthread_mutex_unlock(&sc->lock);

    const struct cd_kind_spec *k = ks->spec;
    int64_t timeout = k->timeout_ms > 0 ? k->timeout_ms : 10000;
    size_t max_body = ts->t.max_body_bytes > 0 ? (size_t)ts->t.max_body_bytes : (size_t)64 << 20;
    struct cd_err err;
    cd_err_init(&err);
    int rc;
    if (ts->t.scheme == CD_SCHEME_GOPS) {
        struct cd_gops_request req = {
            .host = ts->t.host,
            .port = ts->t.port,
            .cmd = k->gops_cmd,
            .connect_timeout_ms = sc->o.connect_timeout_ms,
            .timeout_ms = timeout,
            .max_body = max_body,
            .on_bytes = on_bytes,
        };
        rc = cd_gops_start(sc->loop, &req, on_gops_done, r, &r->gx, &err);
    } else {
        char *url = NULL, *connect_to = NULL;
        rc = http_url(&ts->t, k, &url, &connect_to);
        if (rc < 0) {
            cd_err_set(&err, rc, "out of memory");
        } else {
            struct cd_http_request req = {
                .url = url,
                .connect_to = connect_to,
                .connect_timeout_ms = sc->o.connect_timeout_ms,
                .timeout_ms = timeout,
                .max_body = max_body,
                .auth = &ts->t.auth,
                .tls = &ts->t.tls,
                .on_bytes = on_bytes,
                .follow_redirects = !ts->t.no_follow_redirects,
                .http1_only = ts->t.no_http2,
                .proxy = ts->t.proxy_url,
            };
            rc = cd_http_start(sc->http, &req, on_http_done, r, &r->hx, &err);
        }
        free(url);
        free(connect_to);
    }
    if (rc < 0) {
        /* A local failure is still a scrape result: record it like any other. */
        s->status = CD_SNAP_ERROR;
        s->error = cd_str_dup(cd_err_msg(&err));
        complete(r, 0);
    }
}

static bool holding(struct cd_scrape *sc)
{
    return sc->inflight_bytes >= sc->o.max_inflight_bytes / 4 * 3;
}

static void on_timer(uv_timer_t *t)
{
    struct cd_scrape *sc = t->data;
    if (sc->stopping)
        return;
    struct cd_scheduler_start st;
    while (!sc->stopping && cd_scheduler_poll(sc->sched, holding(sc), &st) == 1)
        start_one(sc, &st);
    if (sc->stopping)
        return;
    int64_t wake = cd_scheduler_next_wake(sc->sched);
    if (wake >= 0) {
        int64_t now = cd_clock_mono_ms(sc->clock);
        uv_timer_start(&sc->timer, on_timer, (uint64_t)(wake > now ? wake - now : 0), 0);
    }
}

/* Polls from the loop soon (coalesced): never from inside a transfer's callback chain. */
static void kick(struct cd_scrape *sc)
{
    if (!sc->stopping)
        uv_timer_start(&sc->timer, on_timer, 0, 0);
}

/* ---- targets ------------------------------------------------------------------------------ */

static int add_kind(struct cd_scrape *sc, struct tstate *ts, const char *name,
                    const struct cd_kind_spec *spec, struct kstate **out, struct cd_err *err)
{
    /* Under the lock: cd_scrape_health() walks ts->kinds from other threads, and a capture
     * adds on-demand kinds to targets already listed. */
    pthread_mutex_lock(&sc->lock);
    struct kstate **v = realloc(ts->kinds, (ts->n_kinds + 1) * sizeof(*v));
    if (v != NULL)
        ts->kinds = v;
    pthread_mutex_unlock(&sc->lock);
    if (v == NULL)
        return cd_err_set(err, -ENOMEM, "scrape: out of memory");
    struct kstate *ks = calloc(1, sizeof(*ks));
    if (ks == NULL)
        return cd_err_set(err, -ENOMEM, "scrape: out of memory");
    ks->ts = ts;
    ks->name = cd_str_dup(name);
    if (ks->name == NULL) {
        free(ks);
        return cd_err_set(err, -ENOMEM, "scrape: out of memory");
    }
    if (spec != NULL) {
        ks->spec = spec;
        ks->scheduled = spec->interval_ms > 0;
    } else {
        ks->spec = &ks->ondemand;
    }
    struct cd_scheduler_spec sp;
    fill_sched_spec(ts, ks, &sp);
    int rc = cd_scheduler_add(sc->sched, &sp, ks, &ks->entry, err);
    if (rc < 0) {
        kstate_free(ks);
        return rc;
    }
    pthread_mutex_lock(&sc->lock);
    ts->kinds[ts->n_kinds++] = ks;
    pthread_mutex_unlock(&sc->lock);
    if (out != NULL)
        *out = ks;
    return 0;
}

static int tstate_new(struct cd_scrape *sc, struct cd_target *t, struct tstate **out,
                      struct cd_err *err)
{
    struct tstate *ts = calloc(1, sizeof(*ts));
    if (ts == NULL)
        return cd_err_set(err, -ENOMEM, "scrape: out of memory");
    ts->refs = 1;
    ts->t = *t; /* moved */
    memset(t, 0, sizeof(*t));
    ts->labels_json = cd_labels_to_json(&ts->t.labels);
    if (ts->t.scheme == CD_SCHEME_GOPS)
        ts->serial_key = cd_str_printf("gops://%s", ts->t.address);
    if (ts->labels_json == NULL || (ts->t.scheme == CD_SCHEME_GOPS && ts->serial_key == NULL)) {
        tstate_free(ts);
        return cd_err_set(err, -ENOMEM, "scrape: out of memory");
    }
    for (size_t i = 0; i < ts->t.n_kinds; i++) {
        if (find_kind(ts, ts->t.kinds[i].name) != NULL)
            continue; /* the first of a duplicated kind wins */
        int rc = add_kind(sc, ts, ts->t.kinds[i].name, &ts->t.kinds[i], NULL, err);
        if (rc < 0) {
            for (size_t j = 0; j < ts->n_kinds; j++)
                cd_scheduler_remove(sc->sched, ts->kinds[j]->entry, NULL, NULL);
            tstate_free(ts);
            return rc;
        }
    }
    *out = ts;
    return 0;
}

static void drop_capture_token(void *ctx, void *token)
{
    struct kstate *ks = ctx;
    struct capreq *cap = token;
    if (cap != NULL && cap->done != NULL) {
        struct cd_snapshot *s = new_snapshot(ks->ts, ks);
        if (s != NULL) {
            s->status = CD_SNAP_ERROR;
            s->error = cd_str_dup("cancelled before it started");
            cap->done(s, -ECANCELED, cap->done_ctx);
            cd_snapshot_free(s);
        }
    }
    capreq_unref(cap);
}

/* Same id, new fingerprint: swap the target, update kinds in place. */
static int tstate_update(struct cd_scrape *sc, struct tstate *ts, struct cd_target *t,
                         struct cd_err *err)
{
    char *labels_json = cd_labels_to_json(&t->labels);
    if (labels_json == NULL)
        return cd_err_set(err, -ENOMEM, "scrape: out of memory");
    struct cd_target old = ts->t;
    pthread_mutex_lock(&sc->lock);
    ts->t = *t;
    memset(t, 0, sizeof(*t));
    free(ts->labels_json);
    ts->labels_json = labels_json;
    pthread_mutex_unlock(&sc->lock);
    int rc = 0;
    /* Kinds no longer configured become on-demand (captures only). */
    for (size_t i = 0; i < ts->n_kinds; i++) {
        struct kstate *ks = ts->kinds[i];
        if (ks->spec == &ks->ondemand)
            continue;
        ks->scheduled = false;
        ks->spec = &ks->ondemand;
        struct cd_kind_spec fresh;
        int drc;
        const char *why = derive_spec(&ts->t, ks->name, &fresh, &drc);
        kind_spec_clear(&ks->ondemand);
        if (why == NULL)
            ks->ondemand = fresh;
        else
            ks->ondemand.name = cd_str_dup(ks->name); /* never runs: captures are refused */
    }
    for (size_t i = 0; i < ts->t.n_kinds; i++) {
        const struct cd_kind_spec *k = &ts->t.kinds[i];
        struct kstate *ks = find_kind(ts, k->name);
        if (ks == NULL) {
            int arc = add_kind(sc, ts, k->name, k, NULL, err);
            if (arc < 0 && rc == 0)
                rc = arc;
            continue;
        }
        if (ks->spec != &ks->ondemand)
            continue; /* a duplicated kind in the new set: the first wins */
        ks->spec = k;
        ks->scheduled = k->interval_ms > 0;
    }
    for (size_t i = 0; i < ts->n_kinds; i++) {
        struct kstate *ks = ts->kinds[i];
        struct cd_scheduler_spec sp;
        fill_sched_spec(ts, ks, &sp);
        int urc = cd_scheduler_update(sc->sched, ks->entry, &sp, err);
        if (urc < 0 && rc == 0)
            rc = urc;
    }
    cd_target_free(&old);
    return rc;
}

static void tstate_remove(struct cd_scrape *sc, struct tstate *ts)
{
    pthread_mutex_lock(&sc->lock);
    if (ts->prev != NULL)
        ts->prev->next = ts->next;
    else
        sc->targets = ts->next;
    if (ts->next != NULL)
        ts->next->prev = ts->prev;
    ts->prev = ts->next = NULL;
    sc->n_targets--;
    sc->m.targets = sc->n_targets;
    ts->removed = true;
    pthread_mutex_unlock(&sc->lock);
    for (size_t i = 0; i < ts->n_kinds; i++) {
        /* A running entry is freed by the scheduler when its scrape completes. */
        cd_scheduler_remove(sc->sched, ts->kinds[i]->entry, drop_capture_token, ts->kinds[i]);
        ts->kinds[i]->entry = NULL;
    }
    tstate_unref(ts);
}

static void tstate_link(struct cd_scrape *sc, struct tstate *ts)
{
    pthread_mutex_lock(&sc->lock);
    ts->next = sc->targets;
    if (sc->targets != NULL)
        sc->targets->prev = ts;
    sc->targets = ts;
    sc->n_targets++;
    sc->m.targets = sc->n_targets;
    pthread_mutex_unlock(&sc->lock);
}

int cd_scrape_set_targets(struct cd_scrape *sc, struct cd_target_set *set, struct cd_err *err)
{
    int rc = 0;
    if (sc->stopping) {
        for (size_t i = 0; i < set->n; i++)
            cd_target_free(&set->v[i]);
        set->n = 0;
        return cd_err_set(err, -ESHUTDOWN, "scrape: stopping");
    }
    sc->gen++;
    /* Removed: every current target whose id is not in the new set. */
    struct tstate *ts = sc->targets;
    while (ts != NULL) {
        struct tstate *next = ts->next;
        if (cd_target_set_find(set, ts->t.id) == NULL)
            tstate_remove(sc, ts);
        ts = next;
    }
    for (size_t i = 0; i < set->n; i++) {
        struct cd_target *t = &set->v[i];
        if (t->id == NULL) {
            cd_target_free(t);
            continue;
        }
        struct tstate *cur = find_target(sc, t->id);
        int one = 0;
        if (cur == NULL) {
            struct tstate *fresh = NULL;
            one = tstate_new(sc, t, &fresh, err);
            if (one == 0) {
                fresh->gen = sc->gen;
                tstate_link(sc, fresh);
            }
        } else if (cur->gen != sc->gen) {
            cur->gen = sc->gen;
            if (cur->t.fingerprint != t->fingerprint)
                one = tstate_update(sc, cur, t, err);
        }
        /* Unchanged targets and duplicates: the copy in the set is not needed. */
        cd_target_free(t);
        if (one < 0 && rc == 0)
            rc = one;
    }
    set->n = 0;
    kick(sc);
    return rc;
}

/* ---- captures ----------------------------------------------------------------------------- */

static void capq_item_free(struct capq_item *it)
{
    if (it == NULL)
        return;
    free((char *)it->req.selector.job);
    free((char *)it->req.selector.target);
    cd_labels_free(&it->labels);
    for (size_t i = 0; i < it->req.n_kinds; i++)
        free((char *)it->req.kinds[i]);
    free((void *)it->req.kinds);
    free((char *)it->req.incident);
    free(it);
}

int cd_scrape_capture(struct cd_scrape *sc, const struct cd_capture_req *req)
{
    struct capq_item *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return -ENOMEM;
    it->req = *req;
    it->req.selector.job = NULL;
    it->req.selector.target = NULL;
    it->req.selector.labels = NULL;
    it->req.kinds = NULL;
    it->req.n_kinds = 0;
    it->req.incident = NULL;
    bool nomem = false;
    if (req->selector.job != NULL)
        nomem |= (it->req.selector.job = cd_str_dup(req->selector.job)) == NULL;
    if (req->selector.target != NULL)
        nomem |= (it->req.selector.target = cd_str_dup(req->selector.target)) == NULL;
    if (req->incident != NULL)
        nomem |= (it->req.incident = cd_str_dup(req->incident)) == NULL;
    if (req->selector.labels != NULL)
        nomem |= cd_labels_copy(&it->labels, req->selector.labels) < 0;
    if (req->n_kinds > 0) {
        const char **k = calloc(req->n_kinds, sizeof(*k));
        it->req.kinds = k;
        if (k == NULL) {
            nomem = true;
        } else {
            for (size_t i = 0; i < req->n_kinds; i++) {
                k[i] = cd_str_dup(req->kinds[i]);
                it->req.n_kinds++;
                nomem |= k[i] == NULL;
            }
        }
    }
    if (nomem) {
        capq_item_free(it);
        return -ENOMEM;
    }
    it->req.selector.labels = &it->labels;
    int rc = 0;
    pthread_mutex_lock(&sc->lock);
    if (sc->capq_closed) {
        rc = -ESHUTDOWN;
    } else if (sc->capq_n >= sc->o.max_pending_captures) {
        rc = -EAGAIN;
    } else {
        if (sc->capq_tail != NULL)
            sc->capq_tail->next = it;
        else
            sc->capq_head = it;
        sc->capq_tail = it;
        sc->capq_n++;
        uv_async_send(&sc->async);
    }
    pthread_mutex_unlock(&sc->lock);
    if (rc < 0)
        capq_item_free(it);
    return rc;
}

static bool selector_matches(const struct cd_capture_selector *sel, const struct tstate *ts)
{
    if (sel->job != NULL && strcmp(sel->job, ts->t.job) != 0)
        return false;
    if (sel->target != NULL && strcmp(sel->target, ts->t.id) != 0 &&
        strcmp(sel->target, ts->t.address) != 0)
        return false;
    if (sel->labels != NULL) {
        for (size_t i = 0; i < sel->labels->n; i++) {
            const char *v = cd_labels_get(&ts->t.labels, sel->labels->v[i].name);
            if (v == NULL || strcmp(v, sel->labels->v[i].value) != 0)
                return false;
        }
    }
    return true;
}

static const char *const default_pprof_kinds[] = {
    "cpu", "heap", "allocs", "goroutine", "goroutine_dump", "mutex", "block", "trace"};
static const char *const default_gops_kinds[] = {"goroutine_dump", "memstats", "stats", "version",
                                                 "heap"};

struct report_builder {
    struct cd_capture_item *started, *refused;
    size_t n_started, n_refused, cap_started, cap_refused;
};

static void report_add(struct cd_capture_item **v, size_t *n, size_t *cap, const char *id,
                       const char *kind, const char *reason)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        struct cd_capture_item *g = realloc(*v, c * sizeof(*g));
        if (g == NULL)
            return;
        *v = g;
        *cap = c;
    }
    (*v)[*n].target_id = id;
    (*v)[*n].kind = kind;
    (*v)[*n].reason = reason;
    (*n)++;
}

/* One (target, kind) of a capture: queue it in the scheduler, or say why not. */
static const char *capture_one(struct cd_scrape *sc, struct tstate *ts, const char *kind,
                               struct capreq *cap)
{
    const char *name = cd_kind_canonical(kind);
    if (!cd_kind_name_valid(name))
        return "invalid kind name";
    struct kstate *ks = find_kind(ts, name);
    if (ks == NULL) {
        struct cd_kind_spec spec;
        int rc;
        const char *why = derive_spec(&ts->t, name, &spec, &rc);
        if (why != NULL)
            return why;
        struct cd_err err;
        cd_err_init(&err);
        if (add_kind(sc, ts, name, NULL, &ks, &err) < 0) {
            kind_spec_clear(&spec);
            return "out of memory";
        }
        ks->ondemand = spec;
    } else if (ks->spec == &ks->ondemand && ks->ondemand.path == NULL &&
               ks->ondemand.gops_cmd == 0) {
        return "this target cannot serve this kind";
    }
    cap->refs++;
    int rc = cd_scheduler_capture(sc->sched, ks->entry, cap);
    if (rc < 0) {
        cap->refs--;
        return rc == -EBUSY ? "too many captures of this kind already pending for the target"
                            : "target is being removed";
    }
    return NULL;
}

static void handle_capture(struct cd_scrape *sc, struct capq_item *it)
{
    struct report_builder b;
    memset(&b, 0, sizeof(b));
    struct capreq *cap = calloc(1, sizeof(*cap));
    if (cap != NULL) {
        cap->refs = 1;
        cap->done = it->req.done;
        cap->done_ctx = it->req.done_ctx;
        if (it->req.incident != NULL && (cap->incident = cd_str_dup(it->req.incident)) == NULL) {
            free(cap);
            cap = NULL;
        }
    }
    for (struct tstate *ts = sc->targets; cap != NULL && ts != NULL; ts = ts->next) {
        if (!selector_matches(&it->req.selector, ts))
            continue;
        const char *const *kinds = it->req.kinds;
        size_t n = it->req.n_kinds;
        if (n == 0) {
            bool gops = ts->t.scheme == CD_SCHEME_GOPS;
            kinds = gops ? default_gops_kinds : default_pprof_kinds;
            n = gops ? sizeof(default_gops_kinds) / sizeof(default_gops_kinds[0])
                     : sizeof(default_pprof_kinds) / sizeof(default_pprof_kinds[0]);
        }
        for (size_t i = 0; i < n; i++) {
            const char *why = capture_one(sc, ts, kinds[i], cap);
            if (why == NULL)
                report_add(&b.started, &b.n_started, &b.cap_started, ts->t.id, kinds[i], NULL);
            else
                report_add(&b.refused, &b.n_refused, &b.cap_refused, ts->t.id, kinds[i], why);
        }
    }
    if (it->req.on_report != NULL) {
        struct cd_capture_report r = {cap != NULL ? 0 : -ENOMEM, b.started, b.n_started, b.refused,
                                      b.n_refused};
        it->req.on_report(it->req.report_ctx, &r);
    }
    free(b.started);
    free(b.refused);
    capreq_unref(cap);
    kick(sc);
}

static void refuse_capture(struct capq_item *it)
{
    if (it->req.on_report != NULL) {
        struct cd_capture_report r = {-ESHUTDOWN, NULL, 0, NULL, 0};
        it->req.on_report(it->req.report_ctx, &r);
    }
}

static void on_async(uv_async_t *a)
{
    struct cd_scrape *sc = a->data;
    for (;;) {
        pthread_mutex_lock(&sc->lock);
        struct capq_item *it = sc->capq_head;
        if (it != NULL) {
            sc->capq_head = it->next;
            if (sc->capq_head == NULL)
                sc->capq_tail = NULL;
            sc->capq_n--;
        }
        pthread_mutex_unlock(&sc->lock);
        if (it == NULL)
            break;
        if (sc->stopping)
            refuse_capture(it);
        else
            handle_capture(sc, it);
        capq_item_free(it);
    }
}

/* ---- health and metrics ------------------------------------------------------------------- */

static const char *health_name(int h)
{
    return h == 1 ? "up" : h == 2 ? "down" : "unknown";
}

void cd_scrape_health_free(struct cd_scrape_health *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++) {
        struct cd_scrape_target_health *t = &h->targets[i];
        free(t->id);
        free(t->job);
        free(t->scheme);
        free(t->address);
        free(t->labels_json);
        free(t->last_error);
        for (size_t k = 0; k < t->n_kinds; k++) {
            free(t->kinds[k].kind);
            free(t->kinds[k].last_status);
            free(t->kinds[k].last_error);
        }
        free(t->kinds);
    }
    free(h->targets);
    free(h);
}

int cd_scrape_health(struct cd_scrape *sc, struct cd_scrape_health **out)
{
    struct cd_scrape_health *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&sc->lock);
    h->targets = calloc(sc->n_targets > 0 ? sc->n_targets : 1, sizeof(*h->targets));
    if (h->targets == NULL)
        rc = -ENOMEM;
    for (struct tstate *ts = sc->targets; rc == 0 && ts != NULL; ts = ts->next) {
        struct cd_scrape_target_health *t = &h->targets[h->n++];
        t->id = cd_str_dup(ts->t.id);
        t->job = cd_str_dup(ts->t.job);
        t->scheme = cd_str_dup(cd_scheme_name(ts->t.scheme));
        t->address = cd_str_dup(ts->t.address);
        t->labels_json = cd_str_dup(ts->labels_json);
        t->health = health_name(ts->health);
        t->last_error = cd_str_dup(ts->last_error);
        t->last_error_ms = ts->last_error_ms;
        t->last_scrape_ms = ts->last_scrape_ms;
        t->last_duration_ms = ts->last_duration_ms;
        t->consecutive_failures = ts->failures;
        if (t->id == NULL || t->job == NULL || t->scheme == NULL || t->address == NULL ||
            t->labels_json == NULL || (ts->last_error != NULL && t->last_error == NULL)) {
            rc = -ENOMEM;
            break;
        }
        t->kinds = calloc(ts->n_kinds > 0 ? ts->n_kinds : 1, sizeof(*t->kinds));
        if (t->kinds == NULL) {
            rc = -ENOMEM;
            break;
        }
        for (size_t i = 0; i < ts->n_kinds; i++) {
            const struct kstate *ks = ts->kinds[i];
            struct cd_scrape_kind_health *k = &t->kinds[t->n_kinds++];
            k->kind = cd_str_dup(ks->name);
            k->scheduled = ks->scheduled;
            k->interval_ms = ks->scheduled ? ks->spec->interval_ms : 0;
            k->last_ms = ks->last_ms;
            k->last_duration_ms = ks->last_duration_ms;
            k->last_size_bytes = (int64_t)ks->last_bytes;
            k->seconds = ks->spec != NULL ? ks->spec->seconds : 0;
            k->last_status = ks->ever ? cd_str_dup(cd_snap_status_name(ks->last_status)) : NULL;
            k->last_error = cd_str_dup(ks->last_error);
            k->consecutive_failures = ks->failures;
            int64_t due = ks->scheduled && ks->entry != NULL ? cd_scheduler_due(ks->entry) : -1;
            k->next_ms = due >= 0 ? cd_scheduler_to_wall(sc->sched, due) : 0;
            if (k->kind == NULL || (ks->ever && k->last_status == NULL) ||
                (ks->last_error != NULL && k->last_error == NULL)) {
                rc = -ENOMEM;
                break;
            }
        }
    }
    pthread_mutex_unlock(&sc->lock);
    if (rc < 0) {
        cd_scrape_health_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void cd_scrape_metrics_free(struct cd_scrape_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_results; i++) {
        free(m->results[i].job);
        free(m->results[i].kind);
    }
    free(m->results);
    free(m);
}

int cd_scrape_metrics(struct cd_scrape *sc, struct cd_scrape_metrics **out)
{
    struct cd_scrape_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&sc->lock);
    *m = sc->m;
    m->results = NULL;
    m->n_results = 0;
    struct cd_scheduler_stats ss;
    cd_scheduler_stats(sc->sched, &ss);
    m->skipped_overlap = ss.skipped[CD_SKIP_OVERLAP];
    m->skipped_concurrency = ss.skipped[CD_SKIP_CONCURRENCY];
    m->skipped_exclusive = ss.skipped[CD_SKIP_EXCLUSIVE];
    m->skipped_held = ss.skipped[CD_SKIP_HELD];
    if (sc->n_rows > 0) {
        m->results = calloc(sc->n_rows, sizeof(*m->results));
        if (m->results == NULL)
            rc = -ENOMEM;
        for (size_t i = 0; rc == 0 && i < sc->n_rows; i++) {
            struct cd_scrape_result_count *r = &m->results[m->n_results++];
            r->job = cd_str_dup(sc->rows[i].job);
            r->kind = cd_str_dup(sc->rows[i].kind);
            r->status = cd_snap_status_name(sc->rows[i].status);
            r->count = sc->rows[i].count;
            if (r->job == NULL || r->kind == NULL)
                rc = -ENOMEM;
        }
    }
    pthread_mutex_unlock(&sc->lock);
    if (rc < 0) {
        cd_scrape_metrics_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void one_closed(struct cd_scrape *sc)
{
    sc->open_handles--;
    if (sc->open_handles == 0 && sc->stop_cb != NULL) {
        cd_scrape_stop_fn cb = sc->stop_cb;
        sc->stop_cb = NULL;
        cb(sc, sc->stop_ctx);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    one_closed(h->data);
}

static void on_http_closed(struct cd_http *h, void *ctx)
{
    (void)h;
    struct cd_scrape *sc = ctx;
    sc->http_closed = true;
    one_closed(sc); /* the client counts as one handle */
}

static void free_http_when_closed(struct cd_http *h, void *ctx)
{
    (void)ctx;
    cd_http_free(h);
}

static void cancel_run(struct cd_scrape *sc, struct run *r)
{
    if (r->hx != NULL)
        cd_http_cancel(sc->http, r->hx);
    if (r->gx != NULL)
        cd_gops_cancel(r->gx);
    r->hx = NULL;
    r->gx = NULL;
    run_unlink(sc, r);
    if (r->snap != NULL && r->snap->done != NULL) {
        r->snap->status = CD_SNAP_ERROR;
        free(r->snap->error);
        r->snap->error = cd_str_dup("cancelled: collectord is stopping");
        r->snap->done(r->snap, -ECANCELED, r->snap->done_ctx);
    }
    cd_scheduler_done(sc->sched, r->entry, CD_SCHED_CANCELLED);
    run_free(r);
}

static void close_all(struct cd_scrape *sc)
{
    if (sc->closing)
        return;
    sc->closing = true;
    uv_timer_stop(&sc->timer);
    uv_timer_stop(&sc->stop_timer);
    /* Four things to close: timer, stop timer, async, the HTTP client (counted as one). */
    sc->open_handles = 4;
    uv_close((uv_handle_t *)&sc->timer, on_handle_closed);
    uv_close((uv_handle_t *)&sc->stop_timer, on_handle_closed);
    uv_close((uv_handle_t *)&sc->async, on_handle_closed);
    cd_http_close(sc->http, on_http_closed, sc);
}

static void maybe_finish_stop(struct cd_scrape *sc)
{
    if (sc->stopping && sc->n_runs == 0)
        close_all(sc);
}

static void on_stop_deadline(uv_timer_t *t)
{
    struct cd_scrape *sc = t->data;
    while (sc->runs != NULL)
        cancel_run(sc, sc->runs);
    maybe_finish_stop(sc);
}

void cd_scrape_hurry(struct cd_scrape *sc)
{
    if (sc->stopping && sc->n_runs > 0)
        uv_timer_start(&sc->stop_timer, on_stop_deadline, 0, 0);
}

void cd_scrape_stop(struct cd_scrape *sc, int64_t deadline_ms, cd_scrape_stop_fn cb, void *ctx)
{
    if (sc->stopping)
        return;
    sc->stopping = true;
    sc->stop_cb = cb;
    sc->stop_ctx = ctx;
    uv_timer_stop(&sc->timer);
    pthread_mutex_lock(&sc->lock);
    sc->capq_closed = true;
    struct capq_item *q = sc->capq_head;
    sc->capq_head = sc->capq_tail = NULL;
    sc->capq_n = 0;
    pthread_mutex_unlock(&sc->lock);
    while (q != NULL) {
        struct capq_item *next = q->next;
        refuse_capture(q);
        capq_item_free(q);
        q = next;
    }
    if (sc->n_runs == 0) {
        close_all(sc);
        return;
    }
    uv_timer_start(&sc->stop_timer, on_stop_deadline, (uint64_t)(deadline_ms > 0 ? deadline_ms : 0),
                   0);
}

int cd_scrape_new(uv_loop_t *loop, const struct cd_scrape_opts *opts, struct cd_scrape **out,
                  struct cd_err *err)
{
    int rc;
    struct cd_scrape *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return cd_err_set(err, -ENOMEM, "scrape: out of memory");
    sc->loop = loop;
    if (opts != NULL)
        sc->o = *opts;
    cd_clock_init_real(&sc->real_clock);
    sc->clock = sc->o.clock != NULL ? sc->o.clock : &sc->real_clock;
    if (sc->o.max_concurrent <= 0)
        sc->o.max_concurrent = 256;
    if (sc->o.max_inflight_bytes == 0)
        sc->o.max_inflight_bytes = 256ULL << 20;
    if (sc->o.connect_timeout_ms <= 0)
        sc->o.connect_timeout_ms = 5000;
    if (sc->o.max_pending_captures == 0)
        sc->o.max_pending_captures = 64;
    if (pthread_mutex_init(&sc->lock, NULL) != 0) {
        free(sc);
        return cd_err_set(err, -ENOMEM, "scrape: mutex");
    }
    struct cd_scheduler_opts so = {
        .max_concurrent = sc->o.max_concurrent,
        .backoff_max_ms = sc->o.backoff_max_ms,
    };
    rc = cd_scheduler_new(sc->clock, &so, &sc->sched, err);
    if (rc < 0)
        goto fail;
    struct cd_http_opts ho = {
        .max_idle_connections = sc->o.max_idle_connections,
        .user_agent = sc->o.user_agent,
    };
    rc = cd_http_new(loop, &ho, &sc->http, err);
    if (rc < 0)
        goto fail;
    /* The handles last: only the async can fail (its eventfd), and then none exists. */
    rc = uv_async_init(loop, &sc->async, on_async);
    if (rc < 0) {
        cd_err_set(err, rc, "scrape: uv_async_init: %s", uv_strerror(rc));
        goto fail;
    }
    /* Cannot fail on Linux (no allocation, no syscall). */
    uv_timer_init(loop, &sc->timer);
    uv_timer_init(loop, &sc->stop_timer);
    sc->async.data = sc;
    sc->timer.data = sc;
    sc->stop_timer.data = sc;
    *out = sc;
    return 0;
fail:
    if (sc->http != NULL) {
        /* Its timer is open: it frees itself once the loop has closed it. */
        cd_http_close(sc->http, free_http_when_closed, NULL);
        sc->http = NULL;
    }
    cd_scheduler_free(sc->sched);
    pthread_mutex_destroy(&sc->lock);
    free(sc);
    return rc;
}

void cd_scrape_free(struct cd_scrape *sc)
{
    if (sc == NULL)
        return;
    while (sc->targets != NULL) {
        struct tstate *ts = sc->targets;
        tstate_remove(sc, ts);
    }
    cd_scheduler_free(sc->sched);
    cd_http_free(sc->http);
    for (size_t i = 0; i < sc->n_rows; i++) {
        free(sc->rows[i].job);
        free(sc->rows[i].kind);
    }
    free(sc->rows);
    pthread_mutex_destroy(&sc->lock);
    free(sc);
}
