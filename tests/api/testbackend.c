/* testbackend — see testbackend.h. */
#include "testbackend.h"

#include "clock.h"
#include "goroutine.h"
#include "hash.h"
#include "kind.h"
#include "str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct tb_target {
    const char *id;
    const char *job;
    const char *instance;
    const char *scheme;
    const char *health;
    const char *zone;
    const char *last_error;
};

static const struct tb_target targets[] = {
    {"api/http://10.0.0.5:6060", "api", "10.0.0.5:6060", "http", "up", "a", NULL},
    {"api/http://10.0.0.6:6060", "api", "10.0.0.6:6060", "http", "down", "b",
     "connect: connection refused \033[2J\033[31m(escape)"},
    {"batch/gops://10.0.0.7:4321", "batch", "10.0.0.7:4321", "gops", "unknown", "a", NULL},
};
#define N_TARGETS (sizeof(targets) / sizeof(targets[0]))

void tb_init(struct tb *tb)
{
    memset(tb, 0, sizeof(*tb));
    pthread_mutex_init(&tb->lock, NULL);
    pthread_cond_init(&tb->cond, NULL);
    tb->next_id = 1;
    /* Data is stamped relative to the real clock, so "3m ago" and since=15m mean what they say. */
    tb->now_ms = cd_clock_now_wall_ms();
}

void tb_release(struct tb *tb)
{
    pthread_mutex_lock(&tb->lock);
    tb->released = true;
    pthread_cond_broadcast(&tb->cond);
    pthread_mutex_unlock(&tb->lock);
}

void tb_free(struct tb *tb)
{
    tb_release(tb);
    for (size_t i = 0; i < tb->n_threads; i++)
        pthread_join(tb->threads[i], NULL);
    for (size_t i = 0; i < tb->n; i++) {
        free(tb->snaps[i].raw);
        json_decref(tb->snaps[i].summary);
    }
    pthread_cond_destroy(&tb->cond);
    pthread_mutex_destroy(&tb->lock);
}

int tb_captures_started(struct tb *tb)
{
    pthread_mutex_lock(&tb->lock);
    int n = tb->captures_started;
    pthread_mutex_unlock(&tb->lock);
    return n;
}

static int64_t add_locked(struct tb *tb, const char *job, const char *instance, const char *kind,
                          const char *status, int64_t time_ms, const void *raw, size_t raw_len,
                          json_t *summary)
{
    if (tb->n >= TB_MAX_SNAPS) {
        json_decref(summary);
        return -1;
    }
    struct tb_snap *s = &tb->snaps[tb->n++];
    memset(s, 0, sizeof(*s));
    s->id = tb->next_id++;
    cd_str_copy(s->job, job, sizeof(s->job));
    cd_str_copy(s->instance, instance, sizeof(s->instance));
    cd_str_copy(s->kind, kind, sizeof(s->kind));
    cd_str_copy(s->status, status, sizeof(s->status));
    s->time_ms = time_ms;
    if (raw != NULL) {
        s->raw = malloc(raw_len ? raw_len : 1);
        memcpy(s->raw, raw, raw_len);
        s->raw_len = raw_len;
    }
    s->summary = summary;
    return s->id;
}

int64_t tb_add(struct tb *tb, const char *job, const char *instance, const char *kind,
               const char *status, int64_t time_ms, const void *raw, size_t raw_len,
               json_t *summary)
{
    pthread_mutex_lock(&tb->lock);
    int64_t id = add_locked(tb, job, instance, kind, status, time_ms, raw, raw_len, summary);
    pthread_mutex_unlock(&tb->lock);
    return id;
}

static struct tb_snap *find_locked(struct tb *tb, int64_t id)
{
    for (size_t i = 0; i < tb->n; i++) {
        if (tb->snaps[i].id == id)
            return &tb->snaps[i];
    }
    return NULL;
}

/* The SNAPSHOT object, with credentials planted where a careless backend might leave them. */
static json_t *meta_locked(const struct tb_snap *s)
{
    json_t *m = json_object();
    char target[160], req[256], hex[65] = "";
    snprintf(target, sizeof(target), "%s/http://%s", s->job, s->instance);
    snprintf(req, sizeof(req), "http://scraper:%s@%s/debug/pprof/%s", TB_SECRET, s->instance,
             s->kind);
    if (s->raw != NULL) {
        uint8_t md[32];
        cd_hash_sha256(s->raw, s->raw_len, md);
        cd_hash_hex(md, 32, hex);
    }
    const struct cd_kind_info *info = cd_kind_lookup(s->kind);
    json_object_set_new(m, "id", json_integer(s->id));
    json_object_set_new(m, "target", json_string(target));
    json_object_set_new(m, "job", json_string(s->job));
    json_object_set_new(m, "scheme", json_string("http"));
    json_object_set_new(m, "address", json_string(s->instance));
    json_object_set_new(m, "instance", json_string(s->instance));
    json_object_set_new(m, "labels",
                        json_pack("{s:s, s:s, s:s, s:s}", "job", s->job, "instance", s->instance,
                                  "team", "payments", "password", TB_SECRET));
    json_object_set_new(m, "kind", json_string(s->kind));
    json_object_set_new(m, "format",
                        json_string(cd_format_name(info ? info->format : CD_FORMAT_PPROF)));
    json_object_set_new(m, "time_unix_ms", json_integer(s->time_ms));
    json_object_set_new(m, "duration_ms", json_integer(120));
    json_object_set_new(m, "status", json_string(s->status));
    json_object_set_new(m, "http_status",
                        strcmp(s->status, "timeout") == 0
                            ? json_null()
                            : json_integer(strcmp(s->status, "http_error") == 0 ? 500 : 200));
    json_object_set_new(m, "error",
                        strcmp(s->status, "ok") == 0 ? json_null() : json_string("it failed"));
    json_object_set_new(m, "request", json_string(req));
    json_object_set_new(m, "content_type", json_string(info ? info->content_type : "x/y"));
    json_object_set_new(m, "size_bytes", json_integer((json_int_t)s->raw_len));
    json_object_set_new(m, "stored_bytes", json_integer((json_int_t)s->raw_len));
    json_object_set_new(m, "sha256", hex[0] ? json_string(hex) : json_null());
    json_object_set_new(m, "pinned", json_boolean(s->pinned));
    json_object_set_new(m, "incident", s->incident[0] ? json_string(s->incident) : json_null());
    json_object_set_new(m, "on_demand", json_false());
    json_object_set_new(m, "parse_error", json_null());
    json_object_set_new(m, "basic_auth",
                        json_pack("{s:s, s:s}", "username", "scraper", "password", TB_SECRET));
    return m;
}

/* ---- backend functions ------------------------------------------------------------------- */

static int be_status(void *ctx, json_t **out, struct cd_err *err)
{
    (void)err;
    struct tb *tb = ctx;
    pthread_mutex_lock(&tb->lock);
    int64_t pinned = 0;
    for (size_t i = 0; i < tb->n; i++)
        pinned += tb->snaps[i].pinned;
    *out = json_pack(
        "{s:I, s:I, s:s, s:I, s:{s:s, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:i, s:i, s:i, s:i},"
        " s:i, s:{s:i, s:i, s:i, s:i}, s:[{s:s, s:i, s:i}, {s:s, s:i, s:i}],"
        " s:{s:I, s:i, s:i}, s:s}",
        "started_unix_ms", (json_int_t)(tb->now_ms - 3600000), "uptime_ms", (json_int_t)3600000,
        "config_file", "/etc/collectord/collectord.yaml", "config_loaded_unix_ms",
        (json_int_t)(tb->now_ms - 600000), "database", "path", "/var/lib/collectord/collectord.db",
        "size_bytes", (json_int_t)123456789, "snapshots", (json_int_t)tb->n, "pinned",
        (json_int_t)pinned, "raw_bytes", (json_int_t)100000000, "oldest_unix_ms",
        (json_int_t)(tb->now_ms - 86400000), "newest_unix_ms", (json_int_t)tb->now_ms, "targets",
        "total", 3, "up", 1, "down", 1, "unknown", 1, "incidents", 1, "scrapes", "in_flight", 2,
        "total", 1000, "failed", 10, "dropped", 0, "queues", "name", "parse", "depth", 0,
        "capacity", 256, "name", "store", "depth", 3, "capacity", 1024, "retention",
        "last_run_unix_ms", (json_int_t)(tb->now_ms - 300000), "last_deleted_snapshots", 5,
        "last_deleted_bytes", 4096, "token_password", TB_SECRET);
    pthread_mutex_unlock(&tb->lock);
    return 0;
}

static json_t *target_json(const struct tb_target *t, int64_t now_ms)
{
    char url[128];
    snprintf(url, sizeof(url), "%s://admin:%s@%s", t->scheme, TB_SECRET, t->instance);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s, s:o, s:s,"
                     " s:[{s:s, s:I, s:I, s:s, s:I, s:I}]}",
                     "id", t->id, "job", t->job, "scheme", t->scheme, "address", t->instance,
                     "instance", t->instance, "labels", "job", t->job, "instance", t->instance,
                     "team", "payments", "zone", t->zone, "health", t->health, "last_error",
                     t->last_error != NULL ? json_string(t->last_error) : json_null(), "url", url,
                     "kinds", "kind", "heap", "interval_ms", (json_int_t)60000,
                     "last_scrape_unix_ms", (json_int_t)(now_ms - 42000), "last_status", "ok",
                     "last_duration_ms", (json_int_t)12, "last_size_bytes", (json_int_t)2048);
}

static int be_targets(void *ctx, const struct cd_apiwire_targets *q, json_t **out,
                      struct cd_err *err)
{
    (void)err;
    struct tb *tb = ctx;
    json_t *list = json_array();
    for (size_t i = 0; i < N_TARGETS; i++) {
        if (q->job != NULL && strcmp(q->job, targets[i].job) != 0)
            continue;
        if (q->health != NULL && strcmp(q->health, targets[i].health) != 0)
            continue;
        json_array_append_new(list, target_json(&targets[i], tb->now_ms));
    }
    *out = json_pack("{s:o}", "targets", list);
    return 0;
}

static bool newer(const struct tb_snap *a, const struct tb_snap *b)
{
    return a->time_ms > b->time_ms || (a->time_ms == b->time_ms && a->id > b->id);
}

static int be_snapshots(void *ctx, const struct cd_apiwire_snapshots *q, json_t **out,
                        struct cd_err *err)
{
    (void)err;
    struct tb *tb = ctx;
    pthread_mutex_lock(&tb->lock);
    const struct tb_snap *order[TB_MAX_SNAPS];
    size_t n = 0;
    for (size_t i = 0; i < tb->n; i++) {
        const struct tb_snap *s = &tb->snaps[i];
        char target[160];
        snprintf(target, sizeof(target), "%s/http://%s", s->job, s->instance);
        if (q->target != NULL && strcmp(q->target, target) != 0 &&
            strcmp(q->target, s->instance) != 0)
            continue;
        if (q->job != NULL && strcmp(q->job, s->job) != 0)
            continue;
        if (q->kind != NULL && strcmp(q->kind, s->kind) != 0)
            continue;
        if (q->status != NULL && strcmp(q->status, s->status) != 0)
            continue;
        if (q->incident != NULL && strcmp(q->incident, s->incident) != 0)
            continue;
        if (q->pinned >= 0 && (int)s->pinned != q->pinned)
            continue;
        if (s->time_ms < q->since_ms || s->time_ms >= q->until_ms)
            continue;
        if (q->has_cursor && !(s->time_ms < q->cursor_time_ms ||
                               (s->time_ms == q->cursor_time_ms && s->id < q->cursor_id)))
            continue;
        order[n++] = s;
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && newer(order[j], order[j - 1]); j--) {
            const struct tb_snap *t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n && (int)i < q->limit; i++)
        json_array_append_new(list, meta_locked(order[i]));
    pthread_mutex_unlock(&tb->lock);
    *out = json_pack("{s:o}", "snapshots", list);
    return 0;
}

static int be_snapshot(void *ctx, int64_t id, json_t **out, struct cd_err *err)
{
    struct tb *tb = ctx;
    pthread_mutex_lock(&tb->lock);
    struct tb_snap *s = find_locked(tb, id);
    if (s == NULL) {
        pthread_mutex_unlock(&tb->lock);
        return cd_err_set(err, -ENOENT, "no snapshot %lld", (long long)id);
    }
    json_t *m = meta_locked(s);
    json_object_set(m, "summary", s->summary != NULL ? s->summary : json_null());
    json_object_set_new(m, "series",
                        json_pack("[{s:s, s:f}]", "name", "goroutine.count", "value", 42.0));
    pthread_mutex_unlock(&tb->lock);
    *out = m;
    return 0;
}

struct fail_reader {
    uint8_t *data;
    size_t len;
    size_t pos;
};

static ssize_t fail_read(void *rctx, uint8_t *buf, size_t n)
{
    struct fail_reader *r = rctx;
    if (r->pos >= r->len / 2)
        return -EIO;
    size_t left = r->len / 2 - r->pos;
    if (n > left)
        n = left;
    memcpy(buf, r->data + r->pos, n);
    r->pos += n;
    return (ssize_t)n;
}

static void fail_close(void *rctx)
{
    struct fail_reader *r = rctx;
    free(r->data);
    free(r);
}

static int be_raw_open(void *ctx, int64_t id, struct cd_api_blob *out, struct cd_err *err)
{
    struct tb *tb = ctx;
    pthread_mutex_lock(&tb->lock);
    struct tb_snap *s = find_locked(tb, id);
    if (s == NULL) {
        pthread_mutex_unlock(&tb->lock);
        return cd_err_set(err, -ENOENT, "no snapshot %lld", (long long)id);
    }
    if (s->raw == NULL) {
        pthread_mutex_unlock(&tb->lock);
        return cd_err_set(err, -ENODATA, "snapshot %lld kept no bytes (status %s)", (long long)id,
                          s->status);
    }
    json_t *m = meta_locked(s);
    uint8_t *copy = malloc(s->raw_len ? s->raw_len : 1);
    memcpy(copy, s->raw, s->raw_len);
    size_t len = s->raw_len;
    bool fails = s->raw_fails;
    pthread_mutex_unlock(&tb->lock);
    if (fails) {
        struct fail_reader *r = calloc(1, sizeof(*r));
        r->data = copy;
        r->len = len;
        *out = (struct cd_api_blob){m, len, fail_read, fail_close, r};
        return 0;
    }
    return cd_api_blob_from_memory(out, m, copy, len, err);
}

static int be_series(void *ctx, const struct cd_apiwire_series *q, json_t **out, struct cd_err *err)
{
    (void)err;
    struct tb *tb = ctx;
    json_t *points = json_array();
    for (int i = 0; i < 5 && i < q->limit; i++)
        json_array_append_new(points, json_pack("{s:I, s:i}", "time_unix_ms",
                                                (json_int_t)(tb->now_ms - 60000 * (5 - i)), "value",
                                                40 + i));
    *out = json_pack("{s:s, s:[{s:s, s:s, s:s, s:o}], s:b}", "name", q->name, "series", "target",
                     targets[0].id, "job", targets[0].job, "instance", targets[0].instance,
                     "points", points, "truncated", q->limit < 5);
    return 0;
}

struct capture_job {
    struct tb *tb;
    struct cd_api_call *call;
    char *job;
    char *target;
    char *zone;
    bool all;
    char *incident;
    char kinds[4][32];
    int n_kinds;
};

static void *capture_thread(void *arg)
{
    struct capture_job *j = arg;
    struct tb *tb = j->tb;
    pthread_mutex_lock(&tb->lock);
    while (tb->capture_mode == TB_CAPTURE_HOLD && !tb->released)
        pthread_cond_wait(&tb->cond, &tb->lock);
    json_t *list = json_array();
    int matched = 0;
    for (size_t i = 0; i < N_TARGETS; i++) {
        const struct tb_target *t = &targets[i];
        if (j->job != NULL && strcmp(j->job, t->job) != 0)
            continue;
        if (j->target != NULL && strcmp(j->target, t->id) != 0 &&
            strcmp(j->target, t->instance) != 0)
            continue;
        if (j->zone != NULL && strcmp(j->zone, t->zone) != 0)
            continue;
        matched++;
        for (int k = 0; k < j->n_kinds; k++) {
            bool down = strcmp(t->health, "down") == 0;
            const char *raw = "captured bytes\n";
            int64_t id = down ? -1
                              : add_locked(tb, t->job, t->instance, j->kinds[k], "ok", tb->now_ms,
                                           raw, strlen(raw), NULL);
            if (id > 0 && j->incident != NULL) {
                struct tb_snap *s = find_locked(tb, id);
                s->pinned = true;
                cd_str_copy(s->incident, j->incident, sizeof(s->incident));
            }
            json_array_append_new(
                list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:i, s:I, s:b}", "target",
                                t->id, "job", t->job, "instance", t->instance, "kind", j->kinds[k],
                                "status", down ? "connect_error" : "ok", "id",
                                id > 0 ? json_integer(id) : json_null(), "error",
                                down ? json_string("connect: connection refused") : json_null(),
                                "time_unix_ms", (json_int_t)tb->now_ms, "duration_ms", 15,
                                "size_bytes", (json_int_t)(down ? 0 : strlen(raw)), "pinned",
                                !down && j->incident != NULL));
        }
    }
    tb->captures_finished++;
    pthread_mutex_unlock(&tb->lock);
    if (matched == 0) {
        json_decref(list);
        cd_api_call_complete(j->call, -ENOENT, NULL, "no target matches the selector");
    } else {
        cd_api_call_complete(j->call, 0,
                             json_pack("{s:o, s:i, s:o, s:i}", "incident",
                                       j->incident ? json_string(j->incident) : json_null(),
                                       "matched_targets", matched, "snapshots", list, "duration_ms",
                                       15),
                             NULL);
    }
    cd_api_call_unref(j->call);
    free(j->job);
    free(j->target);
    free(j->zone);
    free(j->incident);
    free(j);
    return NULL;
}

static int be_capture(void *ctx, const struct cd_apiwire_capture *req, struct cd_api_call *call,
                      struct cd_err *err)
{
    struct tb *tb = ctx;
    struct capture_job *j = calloc(1, sizeof(*j));
    j->tb = tb;
    j->job = cd_str_dup(req->selector.job);
    j->target = cd_str_dup(req->selector.target);
    j->zone = cd_str_dup(cd_labels_get(&req->selector.labels, "zone"));
    j->all = req->selector.all;
    j->incident = cd_str_dup(req->incident);
    for (size_t i = 0; i < req->n_kinds && i < 4; i++)
        cd_str_copy(j->kinds[j->n_kinds++], req->kinds[i], sizeof(j->kinds[0]));
    if (j->n_kinds == 0) {
        cd_str_copy(j->kinds[j->n_kinds++], "heap", sizeof(j->kinds[0]));
        cd_str_copy(j->kinds[j->n_kinds++], "goroutine_dump", sizeof(j->kinds[0]));
    }
    j->call = cd_api_call_ref(call);
    pthread_mutex_lock(&tb->lock);
    if (tb->n_threads >= TB_MAX_THREAD ||
        pthread_create(&tb->threads[tb->n_threads], NULL, capture_thread, j) != 0) {
        pthread_mutex_unlock(&tb->lock);
        cd_api_call_unref(call);
        free(j->job);
        free(j->target);
        free(j->zone);
        free(j->incident);
        free(j);
        return cd_err_set(err, -EBUSY, "the loop is busy");
    }
    tb->n_threads++;
    tb->captures_started++;
    pthread_mutex_unlock(&tb->lock);
    return 0;
}

static int be_pin(void *ctx, int64_t id, const char *incident, json_t **out, struct cd_err *err)
{
    struct tb *tb = ctx;
    pthread_mutex_lock(&tb->lock);
    struct tb_snap *s = find_locked(tb, id);
    if (s == NULL) {
        pthread_mutex_unlock(&tb->lock);
        return cd_err_set(err, -ENOENT, "no snapshot %lld", (long long)id);
    }
    s->pinned = true;
    if (incident != NULL)
        cd_str_copy(s->incident, incident, sizeof(s->incident));
    *out = meta_locked(s);
    pthread_mutex_unlock(&tb->lock);
    return 0;
}

static int be_unpin(void *ctx, int64_t id, json_t **out, struct cd_err *err)
{
    struct tb *tb = ctx;
    pthread_mutex_lock(&tb->lock);
    struct tb_snap *s = find_locked(tb, id);
    if (s == NULL) {
        pthread_mutex_unlock(&tb->lock);
        return cd_err_set(err, -ENOENT, "no snapshot %lld", (long long)id);
    }
    s->pinned = false;
    s->incident[0] = '\0';
    *out = meta_locked(s);
    pthread_mutex_unlock(&tb->lock);
    return 0;
}

static json_t *incident_locked(struct tb *tb, const char *name, json_t *snaps)
{
    int64_t count = 0, bytes = 0, first = INT64_MAX, last = INT64_MIN;
    for (size_t i = 0; i < tb->n; i++) {
        const struct tb_snap *s = &tb->snaps[i];
        if (!s->pinned || strcmp(s->incident, name) != 0)
            continue;
        count++;
        bytes += (int64_t)s->raw_len;
        first = s->time_ms < first ? s->time_ms : first;
        last = s->time_ms > last ? s->time_ms : last;
        if (snaps != NULL)
            json_array_append_new(snaps, meta_locked(s));
    }
    if (count == 0)
        return NULL;
    return json_pack("{s:s, s:I, s:I, s:I, s:i, s:I, s:I}", "name", name, "created_unix_ms",
                     (json_int_t)first, "snapshots", (json_int_t)count, "size_bytes",
                     (json_int_t)bytes, "targets", 1, "first_unix_ms", (json_int_t)first,
                     "last_unix_ms", (json_int_t)last);
}

static int be_incidents(void *ctx, json_t **out, struct cd_err *err)
{
    (void)err;
    struct tb *tb = ctx;
    json_t *list = json_array();
    pthread_mutex_lock(&tb->lock);
    for (size_t i = 0; i < tb->n; i++) {
        const char *name = tb->snaps[i].incident;
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || strcmp(tb->snaps[j].incident, name) == 0;
        if (name[0] == '\0' || seen || !tb->snaps[i].pinned)
            continue;
        json_t *inc = incident_locked(tb, name, NULL);
        if (inc != NULL)
            json_array_append_new(list, inc);
    }
    pthread_mutex_unlock(&tb->lock);
    *out = json_pack("{s:o}", "incidents", list);
    return 0;
}

static int be_incident(void *ctx, const char *name, json_t **out, struct cd_err *err)
{
    struct tb *tb = ctx;
    json_t *snaps = json_array();
    pthread_mutex_lock(&tb->lock);
    json_t *inc = incident_locked(tb, name, snaps);
    pthread_mutex_unlock(&tb->lock);
    if (inc == NULL) {
        json_decref(snaps);
        return cd_err_set(err, -ENOENT, "no incident '%s'", name);
    }
    *out = json_pack("{s:o, s:o}", "incident", inc, "snapshots", snaps);
    return 0;
}

static int be_retention(void *ctx, bool dry_run, json_t **out, struct cd_err *err)
{
    struct tb *tb = ctx;
    if (tb->retention_busy)
        return cd_err_set(err, -EALREADY, "a retention run is already in progress");
    *out = json_pack("{s:b, s:i, s:i, s:i, s:{s:i, s:i}, s:I, s:i, s:[{s:i, s:s, s:s, s:I, s:i, "
                     "s:s}]}",
                     "dry_run", dry_run, "deleted_snapshots", 2, "deleted_bytes", 4096,
                     "kept_pinned", 1, "by_rule", "max_age", 1, "downsample", 1,
                     "database_size_bytes", (json_int_t)123456789, "duration_ms", 3, "candidates",
                     "id", 1, "target", targets[0].id, "kind", "heap", "time_unix_ms",
                     (json_int_t)(tb->now_ms - 15 * 86400000LL), "size_bytes", 2048, "rule",
                     "max_age");
    return 0;
}

static int be_metrics(void *ctx, json_t **out, struct cd_err *err)
{
    (void)ctx;
    (void)err;
    *out = json_pack(
        "{s:[{s:s, s:s, s:s, s:[{s:{s:s, s:s, s:s}, s:i}, {s:{s:s, s:s, s:s}, s:i}]},"
        " {s:s, s:s, s:s, s:[{s:{s:s, s:s}, s:[[f, i], [f, i], [f, i]], s:f, s:i}]},"
        " {s:s, s:s, s:s, s:[{s:i}]},"
        " {s:s, s:s, s:s, s:[{s:{s:s, s:s}, s:i}]}]}",
        "metrics", "name", "collectord_scrapes_total", "type", "counter", "help",
        "Scrapes finished, by job, kind and result.\nSecond \\ line.", "samples", "labels", "job",
        "api", "kind", "cpu", "result", "ok", "value", 12, "labels", "job", "we\"ird\\job\nx",
        "kind", "heap", "result", "timeout", "value", 1, "name",
        "collectord_scrape_duration_seconds", "type", "histogram", "help", "Scrape durations.",
        "samples", "labels", "job", "api", "kind", "cpu", "buckets", 0.1, 1, 1.0, 3, 10.0, 4, "sum",
        12.5, "count", 5, "name", "collectord_database_size_bytes", "type", "gauge", "help",
        "Size of the database file.", "samples", "value", 123456789, "name", "collectord_target_up",
        "type", "gauge", "help", "1 when the last scrape worked.", "samples", "labels", "job",
        "api", "instance", "10.0.0.5:6060", "value", 1);
    return 0;
}

struct cd_api_backend tb_backend(struct tb *tb)
{
    struct cd_api_backend be = {
        .ctx = tb,
        .status = be_status,
        .targets = be_targets,
        .snapshots = be_snapshots,
        .snapshot = be_snapshot,
        .raw_open = be_raw_open,
        .series = be_series,
        .capture = be_capture,
        .pin = be_pin,
        .unpin = be_unpin,
        .incidents = be_incidents,
        .incident = be_incident,
        .retention_run = be_retention,
        .metrics = be_metrics,
    };
    return be;
}

/* 8 goroutines stuck 3 minutes on a mutex nobody unlocks, 3 idle HTTP connections, main. */
static const char dump_text[] = "goroutine 1 [running]:\nmain.main()\n\t/src/main.go:10 +0x1d\n\n"
#define STUCK(id)                                                                                  \
    "goroutine " #id " [sync.Mutex.Lock, 3 minutes]:\n"                                            \
    "sync.runtime_SemacquireMutex(0x0?, 0x0?, 0x0?)\n\t/usr/lib/go/src/runtime/sema.go:77 +0x25\n" \
    "sync.(*Mutex).lockSlow(0xc0000a4000)\n\t/usr/lib/go/src/sync/mutex.go:171 +0x165\n"           \
    "sync.(*Mutex).Lock(...)\n\t/usr/lib/go/src/sync/mutex.go:90\n"                                \
    "main.deadlockWaiter()\n\t/src/main.go:42 +0x4d\n"                                             \
    "created by main.startWaiters\n\t/src/main.go:50 +0x3f\n\n"
#define IDLE(id)                                                                                   \
    "goroutine " #id " [IO wait]:\n"                                                               \
    "internal/poll.runtime_pollWait(0x7f, 0x72)\n\t/usr/lib/go/src/runtime/netpoll.go:305 +0x89\n" \
    "net/http.(*conn).serve(0xc000150000, {0x6f4f10, 0xc00007e000})\n"                             \
    "\t/usr/lib/go/src/net/http/server.go:1991 +0x61d\n"                                           \
    "created by net/http.(*Server).Serve\n\t/usr/lib/go/src/net/http/server.go:3102 +0x4db\n\n"
    STUCK(7) STUCK(8) STUCK(9) STUCK(10) STUCK(11) STUCK(12) STUCK(13) STUCK(14) IDLE(20) IDLE(21)
        IDLE(22);
#undef STUCK
#undef IDLE

const char *tb_dump_text(void)
{
    return dump_text;
}

json_t *tb_goroutine_summary(void)
{
    struct cd_summary sum;
    cd_summary_init(&sum);
    struct cd_err err;
    cd_err_init(&err);
    json_t *out = NULL;
    if (cd_goroutine_summarize((const uint8_t *)dump_text, strlen(dump_text), NULL, &sum, &err) ==
        0)
        out = json_incref(sum.json);
    cd_summary_free(&sum);
    return out;
}

json_t *tb_pprof_summary(void)
{
    /* The shape cd_pprof_summarize gives (pprof.h), for a 10 s CPU profile. */
    return json_pack(
        "{s:s, s:i, s:i, s:[{s:s, s:s, s:I, s:I, s:b, s:[{s:s, s:s, s:I, s:f, s:I, s:f}, "
        "{s:s, s:s, s:I, s:f, s:I, s:f}], s:[]}, {s:s, s:s, s:I, s:I, s:b, s:[{s:s, s:s, s:I, "
        "s:f, s:I, s:f}, {s:s, s:s, s:I, s:f, s:I, s:f}], s:[{s:s, s:s, s:I, s:f, s:I, s:f}, "
        "{s:s, s:s, s:I, s:f, s:I, s:f}, {s:s, s:s, s:I, s:f, s:I, s:f}]}], s:n, s:i, s:{s:s, "
        "s:s}, s:I, s:I, s:I, s:{s:i, s:i, s:i, s:i, s:i, s:i}, s:n, s:{s:[], s:[]}, s:s, s:s, "
        "s:[], s:s, s:b, s:i}",
        "encoding", "gzip", "bytes", 18, "decompressed_bytes", 900, "sample_types", "type",
        "samples", "unit", "count", "total", (json_int_t)250, "total_abs", (json_int_t)250,
        "saturated", 0, "top_flat", "function", "main.hot", "file", "/src/main.go", "flat",
        (json_int_t)150, "flat_pct", 60.0, "cum", (json_int_t)200, "cum_pct", 80.0, "function",
        "runtime.mallocgc", "file", "runtime/malloc.go", "flat", (json_int_t)50, "flat_pct", 20.0,
        "cum", (json_int_t)60, "cum_pct", 24.0, "top_cum", "type", "cpu", "unit", "nanoseconds",
        "total", (json_int_t)2500000000LL, "total_abs", (json_int_t)2500000000LL, "saturated", 0,
        "top_flat", "function", "main.hot", "file", "/src/main.go", "flat",
        (json_int_t)1500000000LL, "flat_pct", 60.0, "cum", (json_int_t)2000000000LL, "cum_pct",
        80.0, "function", "runtime.mallocgc", "file", "runtime/malloc.go", "flat",
        (json_int_t)500000000LL, "flat_pct", 20.0, "cum", (json_int_t)600000000LL, "cum_pct", 24.0,
        "top_cum", "function", "main.main", "file", "/src/main.go", "flat", (json_int_t)0,
        "flat_pct", 0.0, "cum", (json_int_t)2500000000LL, "cum_pct", 100.0, "function", "main.hot",
        "file", "/src/main.go", "flat", (json_int_t)1500000000LL, "flat_pct", 60.0, "cum",
        (json_int_t)2000000000LL, "cum_pct", 80.0, "function", "runtime.mallocgc", "file",
        "runtime/malloc.go", "flat", (json_int_t)500000000LL, "flat_pct", 20.0, "cum",
        (json_int_t)600000000LL, "cum_pct", 24.0, "default_sample_type", "default_index", 1,
        "period_type", "type", "cpu", "unit", "nanoseconds", "period", (json_int_t)10000000,
        "time_ns", (json_int_t)1795300000000000000LL, "duration_ns", (json_int_t)10000000000LL,
        "counts", "samples", 25, "locations", 4, "functions", 3, "mappings", 1, "strings", 12,
        "nodes", 3, "main_binary", "label_keys", "string", "numeric", "drop_frames", "",
        "keep_frames", "", "comments", "doc_url", "", "symbolized", 1, "truncated_stacks", 0);
}
