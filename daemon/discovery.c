/* discovery — see discovery.h. */
#include "discovery.h"

#include "sd_dns.h"
#include "sd_file.h"
#include "sd_local.h"
#include "str.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEBOUNCE_MS   50
#define FIRST_EMIT_MS 2000

enum src_kind {
    SRC_STATIC,
    SRC_FILE,
    SRC_DNS,
    SRC_LOCAL,
};

struct source {
    struct cd_discovery *d;
    enum src_kind kind;
    const struct cd_job_conf *job;
    char *name;
    int64_t interval_ms;
    union {
        struct cd_sd_file file;
        struct cd_sd_dns dns;
        struct cd_sd_local local;
    } st;
    bool st_init;

    uv_timer_t timer;
    bool timer_init;
    uv_timer_t debounce;
    bool debounce_init;
    uv_fs_event_t *watch;
    size_t n_watch_init; /* handles initialised (and so to be closed) */
    bool *watch_on;
    uint64_t *watch_ino; /* the inode watched; a directory replaced since needs a new watch */
    uint64_t *w_dir_ino; /* the worker's stat of each directory (0 = missing) */
    struct cd_strv watch_dirs;

    uv_work_t work;
    bool busy;
    bool again;

    /* written by the worker, read by the loop after it finished */
    struct cd_target_set w_set;
    struct cd_targets_stats w_stats;
    struct cd_strv w_errors;
    int w_rc;

    /* the loop's */
    struct cd_target_set cur;
    struct cd_targets_stats stats;
    bool reported;
    char *error_text;
};

struct cd_discovery {
    uv_loop_t *loop;
    const struct cd_config *cfg;
    cd_discovery_targets_fn on_targets;
    cd_discovery_error_fn on_error;
    void *ctx;
    struct source *src;
    size_t n_src;
    uv_timer_t first;
    bool first_init;
    bool emitted_once;
    /* what the consumer has: ids and fingerprints of the latest set */
    uint64_t *sig_fp;
    char **sig_id;
    size_t sig_n;
    struct cd_discovery_stats stats;
    struct cd_targets_stats merge_stats;
    size_t reported_over_limit;

    bool closing;
    size_t open_handles;
    size_t busy_works;
    void (*on_closed)(void *ctx);
    void *closed_ctx;
};

void cd_discovery_set_free(struct cd_target_set *set)
{
    if (set == NULL)
        return;
    cd_target_set_free(set);
    free(set);
}

/* ---- emitting ---------------------------------------------------------------------------- */

static bool all_reported(const struct cd_discovery *d)
{
    for (size_t i = 0; i < d->n_src; i++) {
        if (!d->src[i].reported)
            return false;
    }
    return true;
}

static void sig_free(struct cd_discovery *d)
{
    for (size_t i = 0; i < d->sig_n; i++)
        free(d->sig_id[i]);
    free(d->sig_id);
    free(d->sig_fp);
    d->sig_id = NULL;
    d->sig_fp = NULL;
    d->sig_n = 0;
}

static bool sig_same(const struct cd_discovery *d, const struct cd_target_set *s)
{
    if (s->n != d->sig_n)
        return false;
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].fingerprint != d->sig_fp[i] || strcmp(s->v[i].id, d->sig_id[i]) != 0)
            return false;
    }
    return true;
}

static int sig_set(struct cd_discovery *d, const struct cd_target_set *s)
{
    sig_free(d);
    if (s->n == 0)
        return 0;
    d->sig_fp = calloc(s->n, sizeof(*d->sig_fp));
    d->sig_id = calloc(s->n, sizeof(*d->sig_id));
    if (d->sig_fp == NULL || d->sig_id == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < s->n; i++) {
        d->sig_fp[i] = s->v[i].fingerprint;
        d->sig_id[i] = cd_str_dup(s->v[i].id);
        d->sig_n = i + 1;
        if (d->sig_id[i] == NULL)
            return -ENOMEM;
    }
    return 0;
}

static void emit(struct cd_discovery *d)
{
    if (d->closing)
        return;
    const struct cd_target_set **parts = calloc(d->n_src ? d->n_src : 1, sizeof(*parts));
    struct cd_target_set *set = calloc(1, sizeof(*set));
    if (parts == NULL || set == NULL)
        goto fail;
    for (size_t i = 0; i < d->n_src; i++)
        parts[i] = &d->src[i].cur;
    memset(&d->merge_stats, 0, sizeof(d->merge_stats));
    if (cd_targets_merge(parts, d->n_src, (size_t)d->cfg->limits.max_targets, set,
                         &d->merge_stats) < 0)
        goto fail;
    free(parts);
    parts = NULL;
    if (d->merge_stats.over_limit != d->reported_over_limit) {
        d->reported_over_limit = d->merge_stats.over_limit;
        if (d->on_error != NULL) {
            char msg[160];
            snprintf(msg, sizeof(msg), "%zu targets over limits.max_targets (%d) are not scraped",
                     d->merge_stats.over_limit, d->cfg->limits.max_targets);
            d->on_error(d->ctx, "discovery", d->reported_over_limit > 0 ? msg : NULL);
        }
    }
    if (d->emitted_once && sig_same(d, set)) {
        cd_discovery_set_free(set);
        return;
    }
    if (sig_set(d, set) < 0) {
        /* forget what was sent: the next change re-sends in full */
        sig_free(d);
    }
    d->emitted_once = true;
    d->stats.targets = set->n;
    d->stats.emitted++;
    d->on_targets(d->ctx, set);
    return;
fail:
    free(parts);
    cd_discovery_set_free(set);
    if (d->on_error != NULL)
        d->on_error(d->ctx, "discovery", "out of memory while merging targets");
}

static void maybe_emit(struct cd_discovery *d)
{
    if (!d->emitted_once && !all_reported(d))
        return;
    emit(d);
}

static void first_cb(uv_timer_t *t)
{
    struct cd_discovery *d = t->data;
    if (!d->emitted_once)
        emit(d);
}

/* ---- running sources ---------------------------------------------------------------------- */

static void work_cb(uv_work_t *w)
{
    struct source *s = w->data;
    const struct cd_config *cfg = s->d->cfg;
    struct cd_groups groups = {0};
    const struct cd_groups *use = &groups;
    int rc = 0;
    switch (s->kind) {
    case SRC_STATIC:
        use = &s->job->static_groups;
        break;
    case SRC_FILE:
        for (size_t i = 0; i < s->n_watch_init; i++) {
            struct stat st;
            s->w_dir_ino[i] = stat(s->watch_dirs.v[i], &st) == 0 && S_ISDIR(st.st_mode)
                                  ? (uint64_t)st.st_ino ^ ((uint64_t)st.st_dev << 32)
                                  : 0;
        }
        rc = cd_sd_file_refresh(&s->st.file, &groups);
        for (size_t i = 0; i < s->st.file.errors.n && rc == 0; i++)
            rc = cd_strv_push(&s->w_errors, s->st.file.errors.v[i]);
        break;
    case SRC_DNS:
        rc = cd_sd_dns_refresh(&s->st.dns, &groups);
        for (size_t i = 0; i < s->st.dns.errors.n && rc == 0; i++)
            rc = cd_strv_push(&s->w_errors, s->st.dns.errors.v[i]);
        break;
    case SRC_LOCAL:
        rc = cd_sd_local_refresh(&s->st.local, &groups);
        for (size_t i = 0; i < s->st.local.errors.n && rc == 0; i++)
            rc = cd_strv_push(&s->w_errors, s->st.local.errors.v[i]);
        break;
    }
    if (rc == 0)
        rc = cd_targets_build(cfg, s->job, use, &s->w_set, &s->w_stats);
    if (rc == 0 && s->w_stats.invalid > 0) {
        char *m = cd_str_printf("%zu invalid target%s, e.g. %s", s->w_stats.invalid,
                                s->w_stats.invalid == 1 ? "" : "s", s->w_stats.last_error);
        rc = m != NULL ? cd_strv_push(&s->w_errors, m) : -ENOMEM;
        free(m);
    }
    s->w_rc = rc;
    cd_groups_free(&groups);
}

static void finish_close(struct cd_discovery *d);

static char *join_errors(const struct cd_strv *e)
{
    if (e->n == 0)
        return NULL;
    size_t len = 1;
    for (size_t i = 0; i < e->n; i++)
        len += strlen(e->v[i]) + 2;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < e->n; i++) {
        size_t l = strlen(e->v[i]);
        if (i > 0) {
            memcpy(s + o, "; ", 2);
            o += 2;
        }
        memcpy(s + o, e->v[i], l);
        o += l;
    }
    s[o] = '\0';
    return s;
}

static void start_watchers(struct source *s);
static void trigger(struct source *s);

static void after_work_cb(uv_work_t *w, int status)
{
    struct source *s = w->data;
    struct cd_discovery *d = s->d;
    s->busy = false;
    d->busy_works--;
    if (d->closing || status == UV_ECANCELED) {
        cd_target_set_free(&s->w_set);
        cd_strv_free(&s->w_errors);
        if (d->closing)
            finish_close(d);
        return;
    }
    d->stats.runs++;
    if (s->w_rc == -ENOMEM) {
        cd_target_set_free(&s->w_set);
        cd_strv_free(&s->w_errors);
        if (cd_strv_push(&s->w_errors, "out of memory (keeping the previous targets)") < 0) {
            /* nothing more we can say */
        }
    } else {
        cd_target_set_free(&s->cur);
        s->cur = s->w_set;
        memset(&s->w_set, 0, sizeof(s->w_set));
        s->stats = s->w_stats;
    }
    char *text = join_errors(&s->w_errors);
    cd_strv_free(&s->w_errors);
    if (!cd_str_eq(text, s->error_text)) {
        free(s->error_text);
        s->error_text = text;
        text = NULL;
        if (d->on_error != NULL)
            d->on_error(d->ctx, s->name, s->error_text);
    }
    free(text);
    s->reported = true;
    if (s->kind == SRC_FILE)
        start_watchers(s);
    maybe_emit(d);
    if (s->again && !d->closing) {
        s->again = false;
        trigger(s);
    }
}

static void trigger(struct source *s)
{
    struct cd_discovery *d = s->d;
    if (d->closing)
        return;
    if (s->busy) {
        s->again = true;
        return;
    }
    memset(&s->w_stats, 0, sizeof(s->w_stats));
    s->w_rc = 0;
    s->work.data = s;
    int rc = uv_queue_work(d->loop, &s->work, work_cb, after_work_cb);
    if (rc < 0) {
        if (d->on_error != NULL)
            d->on_error(d->ctx, s->name, uv_strerror(rc));
        return;
    }
    s->busy = true;
    d->busy_works++;
}

static void timer_cb(uv_timer_t *t)
{
    trigger(t->data);
}

static void debounce_cb(uv_timer_t *t)
{
    trigger(t->data);
}

static void fs_event_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct source *s = h->data;
    (void)filename;
    (void)events;
    (void)status;
    if (s->d->closing)
        return;
    /* editors and atomic renames make bursts of events: one re-read after the burst */
    uv_timer_start(&s->debounce, debounce_cb, DEBOUNCE_MS, 0);
}

/* Watches the directories that hold the source's files; a directory that does not exist yet is
 * tried again after each run (the timer still refreshes meanwhile). */
static void start_watchers(struct source *s)
{
    for (size_t i = 0; i < s->n_watch_init; i++) {
        /* a directory removed and made again is another inode: watch the new one */
        if (s->watch_on[i] && s->w_dir_ino[i] != s->watch_ino[i]) {
            uv_fs_event_stop(&s->watch[i]);
            s->watch_on[i] = false;
        }
        if (s->watch_on[i] || s->w_dir_ino[i] == 0)
            continue;
        if (uv_fs_event_start(&s->watch[i], fs_event_cb, s->watch_dirs.v[i], 0) == 0) {
            s->watch_on[i] = true;
            s->watch_ino[i] = s->w_dir_ino[i];
        }
    }
}

/* ---- setup and teardown ------------------------------------------------------------------- */

static void close_cb(uv_handle_t *h)
{
    struct cd_discovery *d = h->data;
    if (d == NULL)
        return;
    d->open_handles--;
    finish_close(d);
}

static void source_free(struct source *s)
{
    free(s->name);
    if (s->st_init) {
        if (s->kind == SRC_FILE)
            cd_sd_file_destroy(&s->st.file);
        else if (s->kind == SRC_DNS)
            cd_sd_dns_destroy(&s->st.dns);
        else if (s->kind == SRC_LOCAL)
            cd_sd_local_destroy(&s->st.local);
    }
    free(s->watch);
    free(s->watch_on);
    free(s->watch_ino);
    free(s->w_dir_ino);
    cd_strv_free(&s->watch_dirs);
    cd_target_set_free(&s->w_set);
    cd_strv_free(&s->w_errors);
    cd_target_set_free(&s->cur);
    free(s->error_text);
}

static void finish_close(struct cd_discovery *d)
{
    if (!d->closing || d->open_handles > 0 || d->busy_works > 0)
        return;
    for (size_t i = 0; i < d->n_src; i++)
        source_free(&d->src[i]);
    free(d->src);
    sig_free(d);
    void (*cb)(void *) = d->on_closed;
    void *ctx = d->closed_ctx;
    free(d);
    if (cb != NULL)
        cb(ctx);
}

static void close_handle(struct cd_discovery *d, uv_handle_t *h)
{
    h->data = d;
    d->open_handles++;
    uv_close(h, close_cb);
}

void cd_discovery_close(struct cd_discovery *d, void (*on_closed)(void *ctx), void *ctx)
{
    if (d == NULL) {
        if (on_closed != NULL)
            on_closed(ctx);
        return;
    }
    d->closing = true;
    d->on_closed = on_closed;
    d->closed_ctx = ctx;
    if (d->first_init)
        close_handle(d, (uv_handle_t *)&d->first);
    for (size_t i = 0; i < d->n_src; i++) {
        struct source *s = &d->src[i];
        if (s->busy)
            uv_cancel((uv_req_t *)&s->work); /* after_work_cb runs either way */
        if (s->timer_init)
            close_handle(d, (uv_handle_t *)&s->timer);
        if (s->debounce_init)
            close_handle(d, (uv_handle_t *)&s->debounce);
        for (size_t k = 0; k < s->n_watch_init; k++)
            close_handle(d, (uv_handle_t *)&s->watch[k]);
    }
    if (d->open_handles == 0 && d->busy_works == 0) {
        /* nothing asynchronous to wait for; still report from the loop, never from here */
        d->open_handles++;
        d->first.data = d;
        if (!d->first_init && uv_timer_init(d->loop, &d->first) == 0) {
            d->first_init = true;
            uv_close((uv_handle_t *)&d->first, close_cb);
        } else {
            d->open_handles--;
            finish_close(d);
        }
    }
}

static int add_source(struct cd_discovery *d, enum src_kind kind, const struct cd_job_conf *job,
                      const char *what, size_t idx, int64_t interval_ms)
{
    struct source *s = &d->src[d->n_src];
    memset(s, 0, sizeof(*s));
    s->d = d;
    s->kind = kind;
    s->job = job;
    s->interval_ms = interval_ms;
    s->name = kind == SRC_STATIC ? cd_str_printf("%s/%s", job->name, what)
                                 : cd_str_printf("%s/%s[%zu]", job->name, what, idx);
    d->n_src++;
    if (s->name == NULL)
        return -ENOMEM;
    return 0;
}

static int source_start(struct cd_discovery *d, struct source *s, size_t idx)
{
    int rc = 0;
    size_t max_targets = (size_t)d->cfg->limits.max_targets;
    switch (s->kind) {
    case SRC_STATIC:
        break;
    case SRC_FILE:
        cd_sd_file_init(&s->st.file, &s->job->file_sd[idx], max_targets);
        s->st_init = true;
        rc = cd_sd_file_dirs(&s->job->file_sd[idx], &s->watch_dirs);
        break;
    case SRC_DNS:
        rc = cd_sd_dns_init(&s->st.dns, &s->job->dns_sd[idx]);
        s->st_init = rc == 0;
        break;
    case SRC_LOCAL:
        rc = cd_sd_local_init(&s->st.local, &s->job->local_sd[idx], s->job->path_prefix, NULL);
        s->st_init = rc == 0;
        break;
    }
    if (rc < 0)
        return rc;
    if (s->watch_dirs.n > 0) {
        s->watch = calloc(s->watch_dirs.n, sizeof(*s->watch));
        s->watch_on = calloc(s->watch_dirs.n, sizeof(*s->watch_on));
        s->watch_ino = calloc(s->watch_dirs.n, sizeof(*s->watch_ino));
        s->w_dir_ino = calloc(s->watch_dirs.n, sizeof(*s->w_dir_ino));
        if (s->watch == NULL || s->watch_on == NULL || s->watch_ino == NULL || s->w_dir_ino == NULL)
            return -ENOMEM;
        for (size_t k = 0; k < s->watch_dirs.n; k++) {
            rc = uv_fs_event_init(d->loop, &s->watch[k]);
            if (rc < 0)
                return rc;
            s->n_watch_init++;
            s->watch[k].data = s;
        }
        rc = uv_timer_init(d->loop, &s->debounce);
        if (rc < 0)
            return rc;
        s->debounce_init = true;
        s->debounce.data = s;
        /* the watches start after the first run, which looks at the directories off the loop */
    }
    if (s->kind != SRC_STATIC) {
        rc = uv_timer_init(d->loop, &s->timer);
        if (rc < 0)
            return rc;
        s->timer_init = true;
        s->timer.data = s;
        uint64_t iv = (uint64_t)s->interval_ms;
        rc = uv_timer_start(&s->timer, timer_cb, iv, iv);
        if (rc < 0)
            return rc;
    }
    trigger(s);
    return 0;
}

int cd_discovery_new(uv_loop_t *loop, const struct cd_config *cfg,
                     cd_discovery_targets_fn on_targets, void *ctx, struct cd_discovery **out,
                     struct cd_err *err)
{
    struct cd_discovery *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return cd_err_set(err, -ENOMEM, "discovery: out of memory");
    d->loop = loop;
    d->cfg = cfg;
    d->on_targets = on_targets;
    d->ctx = ctx;
    size_t n = 0;
    for (size_t j = 0; j < cfg->n_jobs; j++) {
        const struct cd_job_conf *job = &cfg->jobs[j];
        n += (job->static_groups.n > 0) + job->n_file_sd + job->n_dns_sd + job->n_local_sd;
    }
    d->src = calloc(n ? n : 1, sizeof(*d->src));
    int rc = d->src != NULL ? 0 : -ENOMEM;
    for (size_t j = 0; j < cfg->n_jobs && rc == 0; j++) {
        const struct cd_job_conf *job = &cfg->jobs[j];
        if (job->static_groups.n > 0)
            rc = add_source(d, SRC_STATIC, job, "static_configs", 0, 0);
        for (size_t i = 0; i < job->n_file_sd && rc == 0; i++)
            rc = add_source(d, SRC_FILE, job, "file_sd_configs", i,
                            job->file_sd[i].refresh_interval_ms);
        for (size_t i = 0; i < job->n_dns_sd && rc == 0; i++)
            rc = add_source(d, SRC_DNS, job, "dns_sd_configs", i,
                            job->dns_sd[i].refresh_interval_ms);
        for (size_t i = 0; i < job->n_local_sd && rc == 0; i++)
            rc = add_source(d, SRC_LOCAL, job, "local_sd_configs", i,
                            job->local_sd[i].refresh_interval_ms);
    }
    if (rc == 0) {
        rc = uv_timer_init(loop, &d->first);
        if (rc == 0) {
            d->first_init = true;
            d->first.data = d;
            rc = uv_timer_start(&d->first, first_cb, d->n_src == 0 ? 0 : FIRST_EMIT_MS, 0);
        }
    }
    /* per-source index within its kind, for the config arrays */
    size_t idx_file = 0, idx_dns = 0, idx_local = 0;
    const struct cd_job_conf *last_job = NULL;
    for (size_t i = 0; i < d->n_src && rc == 0; i++) {
        struct source *s = &d->src[i];
        if (s->job != last_job) {
            idx_file = idx_dns = idx_local = 0;
            last_job = s->job;
        }
        size_t idx = s->kind == SRC_FILE    ? idx_file++
                     : s->kind == SRC_DNS   ? idx_dns++
                     : s->kind == SRC_LOCAL ? idx_local++
                                            : 0;
        rc = source_start(d, s, idx);
    }
    if (rc < 0) {
        cd_err_set(err, rc, "discovery: %s", rc == -ENOMEM ? "out of memory" : uv_strerror(rc));
        cd_discovery_close(d, NULL, NULL);
        return rc;
    }
    d->stats.sources = d->n_src;
    *out = d;
    return 0;
}

void cd_discovery_set_error_cb(struct cd_discovery *d, cd_discovery_error_fn on_error)
{
    d->on_error = on_error;
}

void cd_discovery_refresh(struct cd_discovery *d)
{
    for (size_t i = 0; i < d->n_src; i++) {
        if (d->src[i].kind != SRC_STATIC)
            trigger(&d->src[i]);
    }
}

void cd_discovery_get_stats(const struct cd_discovery *d, struct cd_discovery_stats *st)
{
    *st = d->stats;
    memset(&st->build, 0, sizeof(st->build));
    st->failing = 0;
    for (size_t i = 0; i < d->n_src; i++) {
        const struct source *s = &d->src[i];
        st->build.built += s->stats.built;
        st->build.dropped += s->stats.dropped;
        st->build.invalid += s->stats.invalid;
        if (s->stats.last_error[0] != '\0')
            memcpy(st->build.last_error, s->stats.last_error, sizeof(st->build.last_error));
        st->failing += s->error_text != NULL;
    }
    st->build.duplicates = d->merge_stats.duplicates;
    st->build.over_limit = d->merge_stats.over_limit;
}

/* ---- --check-config ------------------------------------------------------------------------ */

int cd_discovery_check_config(const char *path, bool dump, FILE *out, FILE *errout)
{
    struct cd_config *cfg = NULL;
    struct cd_config_diag diag = {0};
    struct cd_err err;
    cd_err_init(&err);
    if (cd_config_load_diag(path, &cfg, &diag, &err) < 0) {
        if (diag.n == 0)
            fprintf(errout, "%s\n", cd_err_msg(&err));
        for (size_t i = 0; i < diag.n; i++)
            fprintf(errout, "%s\n", diag.lines[i]);
        if (diag.dropped > 0)
            fprintf(errout, "... and %zu more errors\n", diag.dropped);
        size_t n = diag.n + diag.dropped + (diag.n == 0);
        fprintf(errout, "collectord: %s is not valid (%zu error%s)\n", path, n, n == 1 ? "" : "s");
        cd_config_diag_free(&diag);
        return 1;
    }
    if (dump) {
        int rc = cd_config_dump(cfg, out);
        cd_config_free(cfg);
        return rc < 0 ? 1 : 0;
    }
    struct cd_target_set *sets = calloc(cfg->n_jobs ? cfg->n_jobs : 1, sizeof(*sets));
    const struct cd_target_set **parts = calloc(cfg->n_jobs ? cfg->n_jobs : 1, sizeof(*parts));
    struct cd_target_set merged = {0};
    struct cd_targets_stats st;
    memset(&st, 0, sizeof(st));
    int rc = sets != NULL && parts != NULL ? 0 : -ENOMEM;
    size_t runtime = 0;
    for (size_t j = 0; j < cfg->n_jobs && rc == 0; j++) {
        const struct cd_job_conf *job = &cfg->jobs[j];
        parts[j] = &sets[j];
        struct cd_groups groups = {0};
        rc = cd_groups_copy_append(&groups, &job->static_groups);
        for (size_t i = 0; i < job->n_file_sd && rc == 0; i++) {
            struct cd_sd_file f;
            cd_sd_file_init(&f, &job->file_sd[i], (size_t)cfg->limits.max_targets);
            rc = cd_sd_file_refresh(&f, &groups);
            for (size_t e = 0; e < f.errors.n; e++)
                fprintf(errout, "warning: %s/file_sd_configs[%zu]: %s\n", job->name, i,
                        f.errors.v[e]);
            cd_sd_file_destroy(&f);
        }
        struct cd_targets_stats js;
        memset(&js, 0, sizeof(js));
        if (rc == 0)
            rc = cd_targets_build(cfg, job, &groups, &sets[j], &js);
        cd_groups_free(&groups);
        if (js.invalid > 0)
            fprintf(errout, "warning: job %s: %zu invalid target%s, e.g. %s\n", job->name,
                    js.invalid, js.invalid == 1 ? "" : "s", js.last_error);
        if (js.dropped > 0)
            fprintf(out, "# job %s: %zu target%s dropped by relabel_configs\n", job->name,
                    js.dropped, js.dropped == 1 ? "" : "s");
        for (size_t i = 0; i < job->n_dns_sd; i++) {
            fprintf(out, "# job %s: dns_sd_configs[%zu] (%s", job->name, i,
                    job->dns_sd[i].type == CD_DNS_A      ? "A"
                    : job->dns_sd[i].type == CD_DNS_AAAA ? "AAAA"
                                                         : "SRV");
            for (size_t k = 0; k < job->dns_sd[i].names.n; k++)
                fprintf(out, " %s", job->dns_sd[i].names.v[k]);
            fprintf(out, "): discovered at runtime\n");
            runtime++;
        }
        for (size_t i = 0; i < job->n_local_sd; i++) {
            fprintf(out,
                    "# job %s: local_sd_configs[%zu] (%s%s%s of the Go processes on this host): "
                    "discovered at runtime\n",
                    job->name, i, job->local_sd[i].gops ? "gops agents" : "",
                    job->local_sd[i].gops && job->local_sd[i].pprof ? " and " : "",
                    job->local_sd[i].pprof ? "pprof endpoints" : "");
            runtime++;
        }
    }
    if (rc == 0)
        rc = cd_targets_merge(parts, cfg->n_jobs, (size_t)cfg->limits.max_targets, &merged, &st);
    if (rc == 0) {
        cd_targets_print(&merged, out);
        if (st.duplicates > 0)
            fprintf(out, "# %zu duplicate target%s ignored (the first one of an id wins)\n",
                    st.duplicates, st.duplicates == 1 ? "" : "s");
        if (st.over_limit > 0)
            fprintf(errout, "warning: %zu targets over limits.max_targets (%d) are dropped\n",
                    st.over_limit, cfg->limits.max_targets);
        fprintf(out,
                "# %s is valid: %zu job%s, %zu target%s now, %zu source%s discovered at "
                "runtime\n",
                path, cfg->n_jobs, cfg->n_jobs == 1 ? "" : "s", merged.n, merged.n == 1 ? "" : "s",
                runtime, runtime == 1 ? "" : "s");
    } else {
        fprintf(errout, "collectord: out of memory\n");
    }
    for (size_t j = 0; sets != NULL && j < cfg->n_jobs; j++)
        cd_target_set_free(&sets[j]);
    free(sets);
    free(parts);
    cd_target_set_free(&merged);
    cd_config_free(cfg);
    return rc < 0 ? 1 : 0;
}
