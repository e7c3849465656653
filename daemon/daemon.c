/* daemon — see daemon.h. */
#include "daemon.h"

#include "api.h"
#include "backend.h"
#include "clock.h"
#include "config.h"
#include "discovery.h"
#include "ingest.h"
#include "scrape.h"
#include "store.h"
#include "str.h"
#include "units.h"
#include "worker.h"

#include <collectord/version.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

/* A reload in flight: the new config is loaded on libuv's threadpool (file reads, secrets). */
struct reload {
    uv_work_t work;
    struct cd_daemon *d;
    char *path;
    struct cd_config *cfg;
    struct cd_config_diag diag;
    struct cd_err err;
    int rc;
};

/* An old discovery being closed after a reload; its config is freed once it is. */
struct retired {
    struct cd_daemon *d;
    struct cd_config *cfg;
};

struct cd_daemon {
    const struct cd_daemon_opts *o;
    struct cd_log *log;
    uv_loop_t loop;
    bool loop_ready;
    struct cd_clock clock;
    int64_t started_ms;

    struct cd_config *cfg;
    struct cd_store *store;
    struct cd_worker *worker;
    struct cd_ingest *ingest;
    struct cd_scrape *scrape;
    struct cd_discovery *disc;
    struct cd_backend *backend;
    struct cd_api *api;
    char *api_token; /* the token the running query server uses */
    /* Our copies of the listening sockets systemd passed (collectord.socket), -1 when none: the
     * query server closes what it is given when it stops, and a restart (a new token) must
     * serve them again — they cannot be bound anew while systemd holds them. */
    int sd_unix_fd, sd_tcp_fd;

    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t watchdog, status;
    bool handles_ready;
    uint64_t watchdog_usec;
    bool under_systemd;

    bool stopping;
    bool hurried; /* a second stop signal cancelled the in-flight scrapes */
    int exit_code;
    struct reload *reload;
    bool reload_again;
    size_t first_targets; /* logged once: how many targets discovery found first */
    bool have_targets;

    /* store events arrive on the writer thread */
    pthread_mutex_t complain_mu;
    struct cd_complaint store_complaint;
};

static void notify(struct cd_daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void notify(struct cd_daemon *d, const char *fmt, ...)
{
    if (!d->under_systemd)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sd_notify(0, msg);
}

/* ---- events from the parts -------------------------------------------------------------- */

static void on_store_event(const struct cd_store_event *ev, void *ctx)
{
    struct cd_daemon *d = ctx;
    switch (ev->type) {
    case CD_STORE_EV_DISK_FULL:
        cd_log_err(d->log, "%s; storing metadata-only records until space is freed", ev->msg);
        break;
    case CD_STORE_EV_DISK_RECOVERED:
        cd_log_notice(d->log, "%s", ev->msg);
        break;
    case CD_STORE_EV_WRITE_ERROR:
        pthread_mutex_lock(&d->complain_mu);
        cd_log_complain(d->log, &d->store_complaint, CD_LOG_ERR, "store", ev->msg);
        pthread_mutex_unlock(&d->complain_mu);
        break;
    case CD_STORE_EV_RETENTION:
        if (ev->report != NULL) {
            const struct cd_retention_report *r = ev->report;
            uint64_t n = r->max_age.snapshots + r->max_snapshots.snapshots +
                         r->downsample.snapshots + r->max_bytes.snapshots;
            char freed[32];
            cd_units_fmt_size(freed, sizeof(freed), r->blob_bytes_freed);
            if (ev->code < 0)
                cd_log_err(d->log, "%s", ev->msg);
            else if (n > 0 || r->max_bytes_unmet)
                cd_log_info(d->log, "retention: deleted %llu snapshots (%s freed) in %lld ms%s",
                            (unsigned long long)n, freed, (long long)r->duration_ms,
                            r->max_bytes_unmet
                                ? "; still above max_bytes: the rest is pinned or in incidents"
                                : "");
            if (d->backend != NULL)
                cd_backend_note_retention(d->backend, r);
        }
        break;
    }
}

static void on_scrape_event(void *ctx, int level, const char *target_id, const char *msg)
{
    struct cd_daemon *d = ctx;
    cd_log_at(d->log, level, "target %s: %s", target_id, msg);
}

static void on_discovery_error(void *ctx, const char *source, const char *msg)
{
    struct cd_daemon *d = ctx;
    if (msg != NULL)
        cd_log_warning(d->log, "discovery %s: %s", source, msg);
    else
        cd_log_notice(d->log, "discovery %s: recovered", source);
}

static void on_targets(void *ctx, struct cd_target_set *set)
{
    struct cd_daemon *d = ctx;
    size_t n = set->n;
    struct cd_err err;
    cd_err_init(&err);
    if (d->stopping) {
        cd_discovery_set_free(set);
        return;
    }
    if (cd_scrape_set_targets(d->scrape, set, &err) < 0)
        cd_log_err(d->log, "scrape: %s", cd_err_msg(&err));
    cd_discovery_set_free(set);
    if (!d->have_targets) {
        d->have_targets = true;
        cd_log_info(d->log, "discovery: %zu target%s", n, n == 1 ? "" : "s");
    } else {
        cd_log_debug(d->log, "discovery: %zu target%s", n, n == 1 ? "" : "s");
    }
}

/* ---- building parts from the config --------------------------------------------------- */

static void retention_from_config(const struct cd_config *c, struct cd_retention_policy *p)
{
    cd_retention_policy_default(p);
    p->max_age_ms = c->storage.retention.max_age_ms;
    p->max_bytes = c->storage.retention.max_bytes;
    p->max_snapshots_per_target = (uint64_t)c->storage.retention.max_snapshots_per_target;
    p->n_tiers = 0;
    for (size_t i = 0; i < c->storage.retention.n_downsample && i < CD_RETENTION_MAX_TIERS; i++) {
        p->tiers[i].after_ms = c->storage.retention.downsample[i].after_ms;
        p->tiers[i].keep_one_per_ms = c->storage.retention.downsample[i].keep_one_per_ms;
        p->n_tiers++;
    }
    p->interval_ms = c->storage.retention.interval_ms;
}

static int parser_threads(const struct cd_config *c)
{
    if (c->limits.parser_threads > 0)
        return c->limits.parser_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

static void api_config_from(const struct cd_config *c, struct cd_log *log, struct cd_api_config *ac)
{
    cd_api_config_default(ac);
    ac->socket_path = c->query.socket[0] != '\0' ? c->query.socket : NULL;
    ac->socket_mode = c->query.socket_mode;
    ac->socket_group = c->query.socket_group[0] != '\0' ? c->query.socket_group : NULL;
    ac->listen = c->query.listen[0] != '\0' ? c->query.listen : NULL;
    ac->token = c->query.token;
    ac->limits.max_connections = (unsigned)c->query.max_connections;
    ac->limits.max_request_bytes = (size_t)c->query.max_request_bytes;
    ac->limits.max_response_bytes = (size_t)c->query.max_response_bytes;
    ac->limits.idle_timeout_ms = c->query.request_timeout_ms;
    ac->limits.max_page_size = (unsigned)c->query.max_page_size;
    ac->log = log;
}

/* The query socket's directory: systemd's RuntimeDirectory= makes it for the service; for
 * other starts (a shell, the demo) collectord makes it, private to its group. */
static void ensure_socket_dir(struct cd_daemon *d, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path)
        return;
    char *dir = cd_str_ndup(path, (size_t)(slash - path));
    if (dir != NULL && mkdir(dir, 0750) == 0)
        cd_log_info(d->log, "query: created %s", dir);
    free(dir);
}

static int start_api(struct cd_daemon *d, const struct cd_config *c, bool inherit_fds)
{
    struct cd_api_config ac;
    api_config_from(c, d->log, &ac);
    struct cd_err err;
    cd_err_init(&err);
    if (inherit_fds) {
        int ufd = -1, tfd = -1;
        if (cd_api_systemd_fds(&ufd, &tfd, &err) < 0)
            cd_log_warning(d->log, "query: %s", cd_err_msg(&err));
        d->sd_unix_fd = ufd;
        d->sd_tcp_fd = tfd;
        if (ufd >= 0)
            cd_log_info(d->log, "query: using the socket systemd passed in");
    }
    if (d->sd_unix_fd >= 0 && (ac.unix_fd = fcntl(d->sd_unix_fd, F_DUPFD_CLOEXEC, 3)) < 0)
        cd_log_warning(d->log, "query: dup of systemd's socket: %s", strerror(errno));
    if (d->sd_tcp_fd >= 0 && (ac.tcp_fd = fcntl(d->sd_tcp_fd, F_DUPFD_CLOEXEC, 3)) < 0)
        cd_log_warning(d->log, "query: dup of systemd's TCP socket: %s", strerror(errno));
    if (ac.unix_fd < 0 && ac.socket_path != NULL)
        ensure_socket_dir(d, ac.socket_path);
    struct cd_api_backend be;
    cd_backend_api(d->backend, &be);
    cd_err_init(&err);
    int rc = cd_api_start(&ac, &be, &d->api, &err);
    if (rc < 0) {
        cd_log_err(d->log, "query: %s", cd_err_msg(&err));
        return rc;
    }
    free(d->api_token);
    d->api_token = cd_str_dup(c->query.token);
    if (ac.socket_path != NULL)
        cd_log_info(d->log, "query: listening on %s", ac.socket_path);
    if (ac.listen != NULL)
        cd_log_info(d->log, "query: listening on tcp %s (port %d, token required)", ac.listen,
                    cd_api_tcp_port(d->api));
    return 0;
}

/* The status route names the config file absolutely: "-c collectord.yaml" means little to a
 * client in another directory. */
static void set_backend_config(struct cd_daemon *d, const struct cd_config *c)
{
    char *abs = realpath(c->file, NULL);
    if (cd_backend_set_config(d->backend, abs != NULL ? abs : c->file,
                              cd_clock_wall_ms(&d->clock)) < 0)
        cd_log_warning(d->log, "status: out of memory recording the config file");
    free(abs);
}

/* ---- stopping ----------------------------------------------------------------------------- */

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_worker_stopped(struct cd_worker *w, void *ctx)
{
    struct cd_daemon *d = ctx;
    (void)w;
    /* Everything that still produces work is done: let the loop run dry. */
    close_handle((uv_handle_t *)&d->sig_term);
    close_handle((uv_handle_t *)&d->sig_int);
    close_handle((uv_handle_t *)&d->sig_hup);
    close_handle((uv_handle_t *)&d->watchdog);
    close_handle((uv_handle_t *)&d->status);
}

static void on_scrape_stopped(struct cd_scrape *sc, void *ctx)
{
    struct cd_daemon *d = ctx;
    (void)sc;
    cd_log_info(d->log, "scrapes finished; parsing what is queued");
    cd_worker_stop(d->worker, CD_WORKER_DRAIN, on_worker_stopped, d);
}

static void on_discovery_closed(void *ctx)
{
    (void)ctx;
}

static void begin_stop(struct cd_daemon *d, const char *why)
{
    if (d->stopping) {
        /* Asked again: whoever sends it does not want to wait for CPU profiles and traces. What
         * was scraped is still parsed and stored. */
        if (d->scrape != NULL && !d->hurried) {
            d->hurried = true;
            cd_log_notice(d->log, "%s again: cancelling in-flight scrapes now", why);
            cd_scrape_hurry(d->scrape);
        }
        return;
    }
    d->stopping = true;
    cd_log_notice(d->log, "%s: stopping (in-flight scrapes get up to %lld ms)", why,
                  (long long)d->cfg->limits.shutdown_timeout_ms);
    notify(d, "STOPPING=1\nSTATUS=stopping: finishing in-flight scrapes");
    if (d->disc != NULL) {
        cd_discovery_close(d->disc, on_discovery_closed, d);
        d->disc = NULL;
    }
    cd_scrape_stop(d->scrape, d->cfg->limits.shutdown_timeout_ms, on_scrape_stopped, d);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct cd_daemon *d = h->data;
    begin_stop(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- reload ------------------------------------------------------------------------------- */

static void reload_work(uv_work_t *w)
{
    struct reload *r = w->data;
    r->rc = cd_config_load_diag(r->path, &r->cfg, &r->diag, &r->err);
}

static void on_retired_closed(void *ctx)
{
    struct retired *t = ctx;
    cd_config_free(t->cfg);
    free(t);
}

static void start_reload(struct cd_daemon *d);

/* Things a reload cannot change in a running engine; applied at the next start. */
static void warn_restart_only(struct cd_daemon *d, const struct cd_config *cur,
                              const struct cd_config *next)
{
    if (cur->limits.max_concurrent_scrapes != next->limits.max_concurrent_scrapes)
        cd_log_warning(d->log, "reload: limits.max_concurrent_scrapes changes at the next start");
}

static void apply_reload(struct cd_daemon *d, struct cd_config *next)
{
    struct cd_err err;
    cd_err_init(&err);
    struct cd_retention_policy p;
    retention_from_config(next, &p);
    if (cd_store_set_retention(d->store, &p, &err) < 0)
        cd_log_warning(d->log, "reload: storage.retention: %s (keeping the old policy)",
                       cd_err_msg(&err));
    struct cd_parse_limits lim;
    cd_parse_limits_default(&lim);
    cd_config_parse_limits(next, &lim);
    cd_ingest_set_limits(d->ingest, &lim);
    warn_restart_only(d, d->cfg, next);

    struct cd_discovery *nd = NULL;
    cd_err_init(&err);
    if (cd_discovery_new(&d->loop, next, on_targets, d, &nd, &err) < 0) {
        cd_log_err(d->log, "reload: discovery: %s; keeping the running config", cd_err_msg(&err));
        cd_config_free(next);
        return;
    }
    cd_discovery_set_error_cb(nd, on_discovery_error);
    struct retired *t = malloc(sizeof(*t));
    if (t == NULL) {
        /* Cannot free the old config safely without knowing when its discovery closed. */
        cd_discovery_close(nd, NULL, NULL);
        cd_config_free(next);
        cd_log_err(d->log, "reload: out of memory; keeping the running config");
        return;
    }
    t->d = d;
    t->cfg = d->cfg;
    cd_discovery_close(d->disc, on_retired_closed, t);
    d->disc = nd;
    d->cfg = next;

    if (!cd_str_eq(d->api_token, next->query.token) && d->api != NULL) {
        /* A new token file: restart the query server so TCP clients need the new token. */
        cd_api_stop(d->api);
        d->api = NULL;
        if (start_api(d, next, false) < 0)
            cd_log_err(d->log, "reload: the query server did not restart");
    }
    set_backend_config(d, next);
    cd_log_notice(d->log, "reload: configuration from %s applied (%zu job%s)", next->file,
                  next->n_jobs, next->n_jobs == 1 ? "" : "s");
}

static void reload_done(uv_work_t *w, int status)
{
    struct reload *r = w->data;
    struct cd_daemon *d = r->d;
    d->reload = NULL;
    if (status == UV_ECANCELED || d->stopping) {
        cd_config_free(r->cfg);
    } else if (r->rc < 0) {
        for (size_t i = 0; i < r->diag.n; i++)
            cd_log_err(d->log, "reload: %s", r->diag.lines[i]);
        if (r->diag.n == 0)
            cd_log_err(d->log, "reload: %s", cd_err_msg(&r->err));
        cd_log_err(d->log, "reload: %s is not valid; the running configuration stays", r->path);
    } else {
        struct cd_err err;
        cd_err_init(&err);
        if (cd_config_reload_check(d->cfg, r->cfg, &err) < 0) {
            cd_log_err(d->log, "reload: %s; the running configuration stays", cd_err_msg(&err));
            cd_config_free(r->cfg);
        } else {
            apply_reload(d, r->cfg);
        }
    }
    r->cfg = NULL;
    cd_config_diag_free(&r->diag);
    free(r->path);
    free(r);
    if (!d->stopping)
        notify(d, "READY=1\nSTATUS=running");
    if (d->reload_again && !d->stopping) {
        d->reload_again = false;
        start_reload(d);
    }
}

static void start_reload(struct cd_daemon *d)
{
    if (d->stopping)
        return;
    if (d->reload != NULL) {
        d->reload_again = true;
        return;
    }
    struct reload *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->path = cd_str_dup(d->o->config_path)) == NULL) {
        free(r);
        cd_log_err(d->log, "reload: out of memory");
        return;
    }
    r->d = d;
    r->work.data = r;
    cd_err_init(&r->err);
    cd_log_notice(d->log, "SIGHUP: reloading %s", r->path);
    notify(d, "RELOADING=1\nSTATUS=reloading the configuration");
    /* Every discovery source re-reads too: file_sd files may have changed with the config. */
    if (d->disc != NULL)
        cd_discovery_refresh(d->disc);
    int rc = uv_queue_work(&d->loop, &r->work, reload_work, reload_done);
    if (rc < 0) {
        cd_log_err(d->log, "reload: %s", uv_strerror(rc));
        free(r->path);
        free(r);
        notify(d, "READY=1");
        return;
    }
    d->reload = r;
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    start_reload(h->data);
}

/* ---- watchdog and status ------------------------------------------------------------------ */

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    /* Sent from the loop: a loop that stops turning stops the pings and systemd restarts us. */
    sd_notify(0, "WATCHDOG=1");
}

static void on_status(uv_timer_t *t)
{
    struct cd_daemon *d = t->data;
    struct cd_scrape_metrics *m = NULL;
    if (cd_scrape_metrics(d->scrape, &m) < 0)
        return;
    struct cd_ingest_stats is;
    cd_ingest_get_stats(d->ingest, &is);
    notify(d,
           "STATUS=%zu targets; %llu scrapes, %zu in flight; %llu handed to storage, %llu dropped",
           m->targets, (unsigned long long)m->started, m->inflight, (unsigned long long)is.received,
           (unsigned long long)(m->dropped_queue_full + m->skipped_queue_full + is.store_rejected));
    cd_scrape_metrics_free(m);
}

/* ---- start and run ------------------------------------------------------------------------ */

static void raise_fd_limit(struct cd_daemon *d)
{
    /* Each target may hold a connection; the default soft limit of 1024 is too low. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            cd_log_debug(d->log, "could not raise the open-files limit");
    }
}

static int start(struct cd_daemon *d)
{
    struct cd_err err;
    cd_err_init(&err);
    struct cd_config_diag diag = {0};
    int rc = cd_config_load_diag(d->o->config_path, &d->cfg, &diag, &err);
    if (rc < 0) {
        for (size_t i = 0; i < diag.n; i++)
            cd_log_err(d->log, "%s", diag.lines[i]);
        if (diag.n == 0)
            cd_log_err(d->log, "%s", cd_err_msg(&err));
        if (diag.dropped > 0)
            cd_log_err(d->log, "... and %zu more errors", diag.dropped);
        cd_config_diag_free(&diag);
        return rc;
    }
    cd_config_diag_free(&diag);
    const struct cd_config *c = d->cfg;
    raise_fd_limit(d);

    rc = uv_loop_init(&d->loop);
    if (rc < 0) {
        cd_log_err(d->log, "uv_loop_init: %s", uv_strerror(rc));
        return rc;
    }
    d->loop_ready = true;

    struct cd_store_opts so;
    cd_store_opts_default(&so);
    so.path = c->storage.path;
    retention_from_config(c, &so.retention);
    so.on_event = on_store_event;
    so.event_ctx = d;
    cd_err_init(&err);
    rc = cd_store_open(&so, &d->store, &err);
    if (rc < 0) {
        cd_log_err(d->log, "%s", cd_err_msg(&err));
        return rc;
    }

    struct cd_worker_opts wo = {
        .threads = parser_threads(c),
        .max_jobs = (size_t)c->limits.ingest_queue_length,
        .max_bytes = c->limits.ingest_queue_bytes,
    };
    cd_err_init(&err);
    rc = cd_worker_new(&d->loop, &wo, &d->worker, &err);
    if (rc < 0) {
        cd_log_err(d->log, "workers: %s", cd_err_msg(&err));
        return rc;
    }
    struct cd_parse_limits lim;
    cd_parse_limits_default(&lim);
    cd_config_parse_limits(c, &lim);
    cd_err_init(&err);
    rc = cd_ingest_new(d->worker, d->store, &lim, &d->ingest, &err);
    if (rc < 0) {
        cd_log_err(d->log, "%s", cd_err_msg(&err));
        return rc;
    }

    long idle = c->limits.max_targets < 256 ? 256 : c->limits.max_targets;
    struct cd_scrape_opts sco = {
        .clock = &d->clock,
        .max_concurrent = c->limits.max_concurrent_scrapes,
        .max_idle_connections = idle > 4096 ? 4096 : idle,
        .sink = cd_ingest_sink,
        .sink_full = cd_ingest_full,
        .sink_ctx = d->ingest,
        .on_event = on_scrape_event,
        .event_ctx = d,
    };
    cd_err_init(&err);
    rc = cd_scrape_new(&d->loop, &sco, &d->scrape, &err);
    if (rc < 0) {
        cd_log_err(d->log, "scrape: %s", cd_err_msg(&err));
        return rc;
    }

    struct cd_backend_deps bd = {
        .store = d->store,
        .scrape = d->scrape,
        .ingest = d->ingest,
        .worker = d->worker,
        .clock = &d->clock,
        .started_ms = d->started_ms,
        .parse_queue_capacity = wo.max_jobs,
    };
    cd_err_init(&err);
    rc = cd_backend_new(&bd, &d->backend, &err);
    if (rc < 0)
        return rc;
    set_backend_config(d, c);
    rc = start_api(d, c, true);
    if (rc < 0)
        return rc;

    cd_err_init(&err);
    rc = cd_discovery_new(&d->loop, c, on_targets, d, &d->disc, &err);
    if (rc < 0) {
        cd_log_err(d->log, "discovery: %s", cd_err_msg(&err));
        return rc;
    }
    cd_discovery_set_error_cb(d->disc, on_discovery_error);

    uv_signal_init(&d->loop, &d->sig_term);
    uv_signal_init(&d->loop, &d->sig_int);
    uv_signal_init(&d->loop, &d->sig_hup);
    uv_timer_init(&d->loop, &d->watchdog);
    uv_timer_init(&d->loop, &d->status);
    d->handles_ready = true;
    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
    d->watchdog.data = d->status.data = d;
    uv_signal_start(&d->sig_term, on_signal, SIGTERM);
    uv_signal_start(&d->sig_int, on_signal, SIGINT);
    uv_signal_start(&d->sig_hup, on_sighup, SIGHUP);
    if (d->under_systemd && sd_watchdog_enabled(0, &d->watchdog_usec) > 0 && d->watchdog_usec > 0) {
        uint64_t every = d->watchdog_usec / 2000;
        uv_timer_start(&d->watchdog, on_watchdog, 0, every > 0 ? every : 1);
    }
    if (d->under_systemd)
        uv_timer_start(&d->status, on_status, 5000, 30000);

    cd_log_notice(d->log,
                  "collectord %s started: config %s, %zu job%s, database %s, %d parser thread%s",
                  COLLECTORD_VERSION, c->file, c->n_jobs, c->n_jobs == 1 ? "" : "s",
                  c->storage.path, wo.threads, wo.threads == 1 ? "" : "s");
    notify(d, "READY=1\nSTATUS=running\nMAINPID=%ld", (long)getpid());
    return 0;
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    close_handle(h);
}

static void teardown(struct cd_daemon *d)
{
    /* The query server first: its threads call into everything below. */
    cd_api_stop(d->api);
    d->api = NULL;
    if (d->loop_ready) {
        if (d->disc != NULL) {
            cd_discovery_close(d->disc, NULL, NULL);
            d->disc = NULL;
        }
        if (d->handles_ready)
            on_worker_stopped(d->worker, d);
        uv_run(&d->loop, UV_RUN_NOWAIT);
    }
    /* The worker pool and scrape engine are freed after their stop callbacks ran; when
     * starting failed half-way they never ran, so stop them here and let the loop drain. */
    if (d->scrape != NULL && !d->stopping) {
        d->stopping = true;
        cd_scrape_stop(d->scrape, 0, NULL, NULL);
        if (d->worker != NULL)
            cd_worker_stop(d->worker, CD_WORKER_DISCARD, NULL, NULL);
    } else if (d->worker != NULL && d->scrape == NULL && !d->stopping) {
        cd_worker_stop(d->worker, CD_WORKER_DISCARD, NULL, NULL);
    }
    if (d->loop_ready) {
        uv_run(&d->loop, UV_RUN_DEFAULT);
        uv_walk(&d->loop, walk_close, NULL);
        uv_run(&d->loop, UV_RUN_DEFAULT);
    }
    cd_scrape_free(d->scrape);
    cd_worker_free(d->worker);
    cd_ingest_free(d->ingest);
    /* Flushes what the workers handed over. */
    cd_store_close(d->store);
    cd_backend_free(d->backend);
    cd_config_free(d->cfg);
    free(d->api_token);
    if (d->sd_unix_fd >= 0)
        close(d->sd_unix_fd);
    if (d->sd_tcp_fd >= 0)
        close(d->sd_tcp_fd);
    if (d->loop_ready && uv_loop_close(&d->loop) != 0)
        cd_log_warning(d->log, "event loop closed with handles still open");
}

int cd_daemon_run(const struct cd_daemon_opts *o)
{
    struct cd_daemon *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        cd_log_err(o->log, "out of memory");
        return 1;
    }
    d->o = o;
    d->log = o->log;
    cd_clock_init_real(&d->clock);
    d->started_ms = cd_clock_wall_ms(&d->clock);
    d->under_systemd = getenv("NOTIFY_SOCKET") != NULL;
    d->sd_unix_fd = d->sd_tcp_fd = -1;
    pthread_mutex_init(&d->complain_mu, NULL);
    int rc = start(d);
    if (rc == 0) {
        uv_run(&d->loop, UV_RUN_DEFAULT);
        cd_log_info(d->log, "flushing storage");
    } else {
        d->exit_code = 1;
    }
    teardown(d);
    int code = d->exit_code;
    if (rc == 0)
        cd_log_notice(d->log, "stopped");
    pthread_mutex_destroy(&d->complain_mu);
    free(d);
    return code;
}
