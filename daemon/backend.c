/* backend — see backend.h. */
#include "backend.h"

#include "kind.h"
#include "str.h"
#include "units.h"

#include <collectord/api.h>
#include <collectord/version.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cd_backend {
    struct cd_backend_deps d;
    struct cd_clock real_clock;
    pthread_mutex_t mu; /* guards the fields below */
    char *config_file;
    int64_t config_loaded_ms;
    bool have_retention;
    struct cd_retention_report last_retention;
    uint64_t retention_snapshots_total;
    uint64_t retention_bytes_total;
};

/* ---- small JSON helpers ------------------------------------------------------------------- */

static int64_t jint(const json_t *o, const char *k, int64_t dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Copies member k of src into dst (null when absent). */
static int jcopy(json_t *dst, const char *k, const json_t *src, const char *sk)
{
    json_t *v = json_object_get(src, sk != NULL ? sk : k);
    return json_object_set_new(dst, k, v != NULL ? json_deep_copy(v) : json_null());
}

static json_t *jstr_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static json_t *jtime_or_null(int64_t ms)
{
    return ms > 0 ? json_integer(ms) : json_null();
}

static char *target_id(const char *job, const char *scheme, const char *address)
{
    return cd_str_printf("%s/%s://%s", job ? job : "", scheme ? scheme : "",
                         address ? address : "");
}

static int nomem(struct cd_err *err)
{
    return cd_err_set(err, -ENOMEM, "out of memory");
}

/* ---- shapes ------------------------------------------------------------------------------- */

/* A store listing row (store.h) as the API's SNAPSHOT. */
static json_t *snapshot_from_row(const json_t *row)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    char *tid = target_id(jstr(row, "job"), jstr(row, "scheme"), jstr(row, "address"));
    int64_t http = jint(row, "http_status", 0);
    int bad = tid == NULL;
    bad |= jcopy(o, "id", row, NULL);
    bad |= json_object_set_new(o, "target", jstr_or_null(tid));
    bad |= jcopy(o, "job", row, NULL) | jcopy(o, "scheme", row, NULL);
    bad |= jcopy(o, "address", row, NULL) | jcopy(o, "instance", row, NULL);
    const json_t *labels = json_object_get(row, "labels");
    /* Shared, not copied: a page of one target's rows carries one labels object. */
    bad |= json_is_object(labels) ? json_object_set(o, "labels", (json_t *)labels)
                                  : json_object_set_new(o, "labels", json_object());
    bad |= jcopy(o, "kind", row, NULL) | jcopy(o, "format", row, NULL);
    bad |= jcopy(o, "time_unix_ms", row, "start_ms") | jcopy(o, "duration_ms", row, NULL);
    bad |= jcopy(o, "status", row, NULL);
    bad |= json_object_set_new(o, "http_status", http > 0 ? json_integer(http) : json_null());
    bad |= jcopy(o, "error", row, NULL) | jcopy(o, "request", row, NULL);
    bad |= jcopy(o, "content_type", row, NULL);
    bad |= json_object_set_new(o, "size_bytes", json_integer(jint(row, "raw_bytes", 0)));
    bad |= json_object_set_new(o, "stored_bytes", json_integer(jint(row, "stored_bytes", 0)));
    bad |= jcopy(o, "sha256", row, NULL);
    bad |= json_object_set_new(o, "pinned",
                               json_boolean(json_is_true(json_object_get(row, "protected"))));
    bad |= jcopy(o, "incident", row, NULL);
    bad |= json_object_set_new(o, "on_demand", json_boolean(jint(row, "scheduled_ms", 0) == 0));
    bad |= json_object_set_new(o, "scheduled_unix_ms", jtime_or_null(jint(row, "scheduled_ms", 0)));
    bad |= jcopy(o, "parse_error", row, NULL);
    const json_t *dropped = json_object_get(row, "dropped");
    if (json_is_string(dropped))
        bad |= json_object_set_new(o, "dropped", json_deep_copy(dropped));
    free(tid);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *snapshots_from_rows(const json_t *rows)
{
    json_t *a = json_array();
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_t *s = snapshot_from_row(row);
        if (s == NULL || json_array_append_new(a, s) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *incident_from_row(const json_t *row)
{
    /* size_bytes is raw bytes, as for a SNAPSHOT; what they take on disk is stored_bytes. */
    return json_pack(
        "{s:O?,s:o,s:I,s:I,s:I,s:o,s:o,s:I}", "name", json_object_get(row, "name"),
        "created_unix_ms", jtime_or_null(jint(row, "created_ms", 0)), "snapshots",
        (json_int_t)jint(row, "snapshots", 0), "size_bytes", (json_int_t)jint(row, "raw_bytes", 0),
        "stored_bytes", (json_int_t)jint(row, "bytes", 0), "first_unix_ms",
        jtime_or_null(jint(row, "first_ms", 0)), "last_unix_ms",
        jtime_or_null(jint(row, "last_ms", 0)), "targets", (json_int_t)jint(row, "targets", 0));
}

/* ---- reads -------------------------------------------------------------------------------- */

struct reader {
    struct cd_backend *b;
    struct cd_store_reader *r;
};

static int reader_get(struct cd_backend *b, struct reader *rd, struct cd_err *err)
{
    rd->b = b;
    rd->r = NULL;
    return cd_store_reader_get(b->d.store, &rd->r, err);
}

static void reader_put(struct reader *rd)
{
    if (rd->r != NULL)
        cd_store_reader_put(rd->b->d.store, rd->r);
    rd->r = NULL;
}

/* A target filter of the API ("job/scheme://address", an address or an instance) as the
 * store's job + address. */
static void target_filter(const char *target, struct cd_store_query *q, char **job_out)
{
    *job_out = NULL;
    if (target == NULL)
        return;
    const char *sep = strstr(target, "://");
    const char *slash = sep != NULL ? memchr(target, '/', (size_t)(sep - target)) : NULL;
    if (sep != NULL && slash != NULL) {
        *job_out = cd_str_ndup(target, (size_t)(slash - target));
        q->job = *job_out;
        q->address = sep + 3;
        return;
    }
    q->address = target;
}

static int be_snapshots(void *ctx, const struct cd_apiwire_snapshots *aq, json_t **out,
                        struct cd_err *err)
{
    struct cd_backend *b = ctx;
    struct cd_store_query q = {0};
    char *job = NULL, cursor[64];
    target_filter(aq->target, &q, &job);
    if (aq->job != NULL) {
        if (q.job != NULL && strcmp(q.job, aq->job) != 0) {
            free(job);
            *out = json_pack("{s:[]}", "snapshots");
            return *out != NULL ? 0 : nomem(err);
        }
        q.job = aq->job;
    }
    q.kind = aq->kind;
    q.status = aq->status;
    q.incident = aq->incident;
    q.pinned = aq->pinned < 0 ? 0 : (aq->pinned ? 1 : -1);
    q.since_ms = aq->since_ms != INT64_MIN ? aq->since_ms : 0;
    q.until_ms = aq->until_ms != INT64_MAX ? aq->until_ms : 0;
    if (aq->has_cursor) {
        snprintf(cursor, sizeof(cursor), "v1.%lld.%lld", (long long)aq->cursor_time_ms,
                 (long long)aq->cursor_id);
        q.cursor = cursor;
    }
    /* The server asks for one row more than its page (max_page_size may be up to
     * CD_API_MAX_LIST_LIMIT); the store answers at most CD_STORE_LIST_MAX a call: follow its
     * cursor until the request is served. Asking the store for less silently ended listings at
     * 1000 rows without a next page. */
    int want = aq->limit > 0 ? aq->limit : CD_STORE_LIST_DEFAULT;
    json_t *list = json_array();
    char *next = NULL;
    struct reader rd = {b, NULL};
    int rc = list != NULL ? reader_get(b, &rd, err) : nomem(err);
    while (rc == 0 && (int)json_array_size(list) < want) {
        int left = want - (int)json_array_size(list);
        q.limit = left > CD_STORE_LIST_MAX ? CD_STORE_LIST_MAX : left;
        json_t *res = NULL;
        rc = cd_store_list(rd.r, &q, &res, err);
        if (rc < 0)
            break;
        json_t *rows = snapshots_from_rows(json_object_get(res, "snapshots"));
        const char *nc = jstr(res, "next_cursor");
        free(next);
        next = nc != NULL ? cd_str_dup(nc) : NULL;
        json_decref(res);
        if (rows == NULL || json_array_extend(list, rows) != 0 || (nc != NULL && next == NULL)) {
            json_decref(rows);
            rc = nomem(err);
            break;
        }
        size_t got = json_array_size(rows);
        json_decref(rows);
        if (next == NULL || got == 0)
            break;
        q.cursor = next;
    }
    reader_put(&rd);
    free(job);
    free(next);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    *out = json_pack("{s:o}", "snapshots", list);
    return *out != NULL ? 0 : nomem(err);
}

static int be_snapshot(void *ctx, int64_t id, json_t **out, struct cd_err *err)
{
    struct cd_backend *b = ctx;
    struct reader rd;
    json_t *row = NULL;
    int rc = reader_get(b, &rd, err);
    if (rc == 0)
        rc = cd_store_snapshot(rd.r, id, &row, err);
    reader_put(&rd);
    if (rc < 0)
        return rc;
    json_t *o = snapshot_from_row(row);
    if (o == NULL || jcopy(o, "summary", row, NULL) < 0 || jcopy(o, "series", row, NULL) < 0 ||
        jcopy(o, "incidents", row, "incident_names") < 0) {
        json_decref(o);
        json_decref(row);
        return nomem(err);
    }
    json_decref(row);
    *out = o;
    return 0;
}

static int be_raw_open(void *ctx, int64_t id, struct cd_api_blob *out, struct cd_err *err)
{
    struct cd_backend *b = ctx;
    struct reader rd;
    json_t *row = NULL;
    struct cd_store_raw raw = {0};
    int rc = reader_get(b, &rd, err);
    if (rc == 0)
        rc = cd_store_snapshot(rd.r, id, &row, err);
    if (rc == 0) {
        rc = cd_store_raw(rd.r, id, 0, &raw, err);
        if (rc == -ENOENT)
            rc = -ENODATA; /* the snapshot exists, it just kept no bytes */
    }
    reader_put(&rd);
    if (rc < 0) {
        json_decref(row);
        return rc;
    }
    json_t *meta = snapshot_from_row(row);
    json_decref(row);
    uint8_t *data = raw.data;
    raw.data = NULL;
    size_t len = raw.len;
    cd_store_raw_free(&raw);
    if (meta == NULL) {
        free(data);
        return nomem(err);
    }
    return cd_api_blob_from_memory(out, meta, data, len, err);
}

/* A parse failure the engine cannot know about: it handed over a complete answer (ok) and the
 * parser worker found it invalid. When the store's newest snapshot of a kind is that very scrape
 * (same start) and invalid, the kind reports it, with the parser's reason. */
struct overlay {
    const char *status; /* the engine's or "invalid" */
    char *error;        /* malloc'd "invalid: <parse error>" when overridden, else NULL */
    int64_t start_ms;
};

static void parse_failure(struct reader *rd, const struct cd_scrape_kind_health *kh,
                          const json_t *last, struct overlay *ov)
{
    ov->status = kh->last_status;
    ov->error = NULL;
    ov->start_ms = 0;
    if (rd->r == NULL || last == NULL || !cd_str_eq(jstr(last, "status"), "invalid"))
        return;
    int64_t start = jint(last, "start_ms", 0);
    if (kh->last_status == NULL || strcmp(kh->last_status, "ok") != 0 || start < kh->last_ms)
        return;
    json_t *row = NULL;
    struct cd_err e;
    cd_err_init(&e);
    const char *why = "the answer did not parse";
    if (cd_store_snapshot(rd->r, jint(last, "id", 0), &row, &e) == 0 &&
        jstr(row, "parse_error") != NULL)
        why = jstr(row, "parse_error");
    ov->status = "invalid";
    ov->error = cd_str_printf("invalid: %s", why);
    ov->start_ms = start;
    json_decref(row);
}

static int be_targets(void *ctx, const struct cd_apiwire_targets *aq, json_t **out,
                      struct cd_err *err)
{
    struct cd_backend *b = ctx;
    struct cd_scrape_health *h = NULL;
    json_t *stored = NULL, *byid = NULL, *list = NULL;
    struct reader rd = {b, NULL};
    int rc = cd_scrape_health(b->d.scrape, &h);
    if (rc < 0)
        return cd_err_set(err, rc, "scrape: target health unavailable");
    rc = reader_get(b, &rd, err);
    if (rc == 0)
        rc = cd_store_targets(rd.r, &stored, err);
    if (rc < 0)
        goto done;
    /* The store knows counts and the newest snapshot per kind; the engine knows health. */
    byid = json_object();
    list = json_array();
    if (byid == NULL || list == NULL) {
        rc = nomem(err);
        goto done;
    }
    size_t i;
    json_t *t;
    json_array_foreach(stored, i, t)
    {
        char *id = target_id(jstr(t, "job"), jstr(t, "scheme"), jstr(t, "address"));
        if (id != NULL)
            json_object_set(byid, id, t);
        free(id);
    }
    for (size_t k = 0; k < h->n; k++) {
        const struct cd_scrape_target_health *th = &h->targets[k];
        if (aq->job != NULL && strcmp(aq->job, th->job) != 0)
            continue;
        if (aq->health != NULL && strcmp(aq->health, th->health) != 0)
            continue;
        const json_t *st = json_object_get(byid, th->id);
        const json_t *skinds = json_object_get(st, "kinds");
        json_t *labels = th->labels_json ? json_loads(th->labels_json, 0, NULL) : NULL;
        const char *instance = labels ? jstr(labels, "instance") : NULL;
        json_t *kinds = json_array();
        char *last_error = NULL; /* a newer parse failure than the engine's last error */
        int64_t last_error_ms = th->last_error_ms;
        for (size_t j = 0; kinds != NULL && j < th->n_kinds; j++) {
            const struct cd_scrape_kind_health *kh = &th->kinds[j];
            const json_t *sk = json_object_get(skinds, kh->kind);
            const json_t *last = json_object_get(sk, "last");
            struct overlay ov;
            parse_failure(&rd, kh, last, &ov);
            if (ov.error != NULL && ov.start_ms >= last_error_ms) {
                free(last_error);
                last_error = cd_str_printf("%s: %s", kh->kind, ov.error);
                last_error_ms = ov.start_ms;
            }
            json_t *ko = json_pack(
                "{s:s,s:b,s:I,s:i,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:I,s:o}", "kind", kh->kind,
                "scheduled", kh->scheduled, "interval_ms", (json_int_t)kh->interval_ms, "seconds",
                kh->seconds, "last_size_bytes",
                kh->last_status != NULL ? json_integer(kh->last_size_bytes) : json_null(),
                "last_scrape_unix_ms", jtime_or_null(kh->last_ms), "last_status",
                jstr_or_null(ov.status), "last_duration_ms",
                kh->last_status != NULL ? json_integer(kh->last_duration_ms) : json_null(),
                "last_error", jstr_or_null(ov.error != NULL ? ov.error : kh->last_error),
                "last_snapshot_id", last != NULL ? json_integer(jint(last, "id", 0)) : json_null(),
                "snapshots", (json_int_t)jint(sk, "snapshots", 0), "consecutive_failures",
                (json_int_t)kh->consecutive_failures, "next_scrape_unix_ms",
                jtime_or_null(kh->next_ms));
            free(ov.error);
            if (ko == NULL || json_array_append_new(kinds, ko) != 0) {
                json_decref(kinds);
                kinds = NULL;
            }
        }
        json_t *o = json_pack(
            "{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:o,s:o,s:o,s:I,s:I,s:I,s:o}", "id", th->id, "job",
            th->job, "scheme", th->scheme, "address", th->address, "instance",
            instance != NULL ? instance : th->address, "labels",
            labels != NULL ? json_incref(labels) : json_object(), "health", th->health,
            "last_error", jstr_or_null(last_error != NULL ? last_error : th->last_error),
            "last_error_time_unix_ms", jtime_or_null(last_error_ms), "last_scrape_unix_ms",
            jtime_or_null(th->last_scrape_ms), "consecutive_failures",
            (json_int_t)th->consecutive_failures, "snapshots", (json_int_t)jint(st, "snapshots", 0),
            "size_bytes", (json_int_t)jint(st, "bytes", 0), "kinds",
            kinds != NULL ? kinds : json_array());
        free(last_error);
        json_decref(labels);
        if (o == NULL || json_array_append_new(list, o) != 0) {
            rc = nomem(err);
            goto done;
        }
    }
    *out = json_pack("{s:O}", "targets", list);
    rc = *out != NULL ? 0 : nomem(err);
done:
    reader_put(&rd);
    json_decref(list);
    json_decref(byid);
    json_decref(stored);
    cd_scrape_health_free(h);
    return rc;
}

static int be_series(void *ctx, const struct cd_apiwire_series *aq, json_t **out,
                     struct cd_err *err)
{
    struct cd_backend *b = ctx;
    struct cd_store_query q = {0};
    char *job = NULL;
    target_filter(aq->target, &q, &job);
    q.since_ms = aq->since_ms != INT64_MIN ? aq->since_ms : 0;
    q.until_ms = aq->until_ms != INT64_MAX ? aq->until_ms : 0;
    int limit = aq->limit > CD_STORE_SERIES_MAX ? CD_STORE_SERIES_MAX : aq->limit;
    struct reader rd;
    json_t *res = NULL;
    int rc = reader_get(b, &rd, err);
    if (rc == 0)
        rc = cd_store_series(rd.r, &q, aq->name, limit, &res, err);
    reader_put(&rd);
    free(job);
    if (rc == -ENOENT) {
        /* A name nobody recorded yet is an empty series, not an error. */
        *out = json_pack("{s:s,s:[],s:b}", "name", aq->name, "series", "truncated", 0);
        return *out != NULL ? 0 : nomem(err);
    }
    if (rc < 0)
        return rc;
    json_t *series = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(res, "series"), i, s)
    {
        char *tid = target_id(jstr(s, "job"), jstr(s, "scheme"), jstr(s, "address"));
        json_t *pts = json_array();
        size_t j;
        json_t *p;
        json_array_foreach(json_object_get(s, "points"), j, p)
        {
            json_array_append_new(pts, json_pack("{s:O,s:O}", "time_unix_ms", json_array_get(p, 0),
                                                 "value", json_array_get(p, 1)));
        }
        json_array_append_new(series, json_pack("{s:o,s:O?,s:O?,s:o}", "target", jstr_or_null(tid),
                                                "job", json_object_get(s, "job"), "instance",
                                                json_object_get(s, "instance"), "points", pts));
        free(tid);
    }
    *out = json_pack("{s:s,s:o,s:O?}", "name", aq->name, "series", series, "truncated",
                     json_object_get(res, "truncated"));
    json_decref(res);
    return *out != NULL ? 0 : nomem(err);
}

static int be_incidents(void *ctx, json_t **out, struct cd_err *err)
{
    struct cd_backend *b = ctx;
    struct reader rd;
    json_t *res = NULL;
    int rc = reader_get(b, &rd, err);
    if (rc == 0)
        rc = cd_store_incidents(rd.r, &res, err);
    reader_put(&rd);
    if (rc < 0)
        return rc;
    json_t *list = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(res, i, row)
    {
        json_array_append_new(list, incident_from_row(row));
    }
    json_decref(res);
    *out = json_pack("{s:o}", "incidents", list);
    return *out != NULL ? 0 : nomem(err);
}

static int be_incident(void *ctx, const char *name, json_t **out, struct cd_err *err)
{
    struct cd_backend *b = ctx;
    struct reader rd;
    json_t *res = NULL, *all = NULL;
    int rc = reader_get(b, &rd, err);
    if (rc == 0)
        rc = cd_store_incident_snapshots(rd.r, name, &res, err);
    if (rc == 0)
        rc = cd_store_incidents(rd.r, &all, err);
    reader_put(&rd);
    if (rc < 0) {
        json_decref(res);
        return rc;
    }
    json_t *inc = NULL;
    size_t i;
    json_t *row;
    json_array_foreach(all, i, row)
    {
        if (cd_str_eq(jstr(row, "name"), name)) {
            inc = incident_from_row(row);
            break;
        }
    }
    json_decref(all);
    json_t *snaps = snapshots_from_rows(json_object_get(res, "snapshots"));
    json_t *trunc = json_incref(json_object_get(res, "truncated"));
    json_decref(res);
    if (inc == NULL)
        inc = json_pack("{s:s}", "name", name);
    *out = json_pack("{s:o,s:o,s:o*}", "incident", inc, "snapshots",
                     snaps != NULL ? snaps : json_array(), "truncated", trunc);
    return *out != NULL ? 0 : nomem(err);
}

/* ---- writes through the store writer ------------------------------------------------------ */

static int be_pin(void *ctx, int64_t id, const char *incident, json_t **out, struct cd_err *err)
{
    struct cd_backend *b = ctx;
    int rc = cd_store_pin(b->d.store, id, incident, b->d.writer_timeout_ms, err);
    if (rc < 0)
        return rc;
    return be_snapshot(ctx, id, out, err);
}

static int be_unpin(void *ctx, int64_t id, json_t **out, struct cd_err *err)
{
    struct cd_backend *b = ctx;
    bool left = false;
    int rc = cd_store_unpin(b->d.store, id, NULL, b->d.writer_timeout_ms, &left, err);
    if (rc < 0)
        return rc;
    return be_snapshot(ctx, id, out, err);
}

static int db_stats(struct cd_backend *b, json_t **out, struct cd_err *err);

static json_t *retention_json(const struct cd_retention_report *r)
{
    uint64_t snaps = r->max_age.snapshots + r->max_snapshots.snapshots + r->downsample.snapshots +
                     r->max_bytes.snapshots;
    uint64_t bytes =
        r->max_age.bytes + r->max_snapshots.bytes + r->downsample.bytes + r->max_bytes.bytes;
    return json_pack(
        "{s:b,s:I,s:I,s:{s:I,s:I,s:I,s:I},s:I,s:I,s:I,s:I,s:b,s:b,s:o}", "dry_run", r->dry_run,
        "deleted_snapshots", (json_int_t)snaps, "deleted_bytes", (json_int_t)bytes, "by_rule",
        "max_age", (json_int_t)r->max_age.snapshots, "max_bytes",
        (json_int_t)r->max_bytes.snapshots, "max_snapshots_per_target",
        (json_int_t)r->max_snapshots.snapshots, "downsample", (json_int_t)r->downsample.snapshots,
        "database_size_bytes", (json_int_t)r->db_bytes_after, "database_size_before_bytes",
        (json_int_t)r->db_bytes_before, "duration_ms", (json_int_t)r->duration_ms,
        "started_unix_ms", (json_int_t)r->started_ms, "complete", r->complete, "max_bytes_unmet",
        r->max_bytes_unmet, "error", r->rc < 0 ? json_string(r->error) : json_null());
}

static int be_retention_run(void *ctx, bool dry_run, json_t **out, struct cd_err *err)
{
    struct cd_backend *b = ctx;
    struct cd_retention_report rep;
    memset(&rep, 0, sizeof(rep));
    int rc = cd_store_retention_run(b->d.store, dry_run, b->d.writer_timeout_ms, &rep, err);
    if (rc == -EBUSY)
        rc = cd_err_set(err, -EALREADY, "retention: a run is already in progress");
    if (rc < 0)
        return rc;
    *out = retention_json(&rep);
    if (*out == NULL)
        return nomem(err);
    /* What retention may never touch, for the operator weighing max_bytes against incidents. */
    json_t *db = NULL;
    struct cd_err ignored;
    cd_err_init(&ignored);
    if (db_stats(b, &db, &ignored) == 0)
        json_object_set(*out, "kept_pinned", json_object_get(db, "pinned"));
    json_decref(db);
    return 0;
}

/* ---- capture now -------------------------------------------------------------------------- */

/* One capture request in flight: its report (loop thread) and every snapshot's commit (store
 * writer thread) arrive here; the last of them completes the API call and frees it. */
struct cap {
    pthread_mutex_t mu;
    struct cd_api_call *call;
    char *incident;
    int64_t t0_ms;
    bool reported;
    size_t expected, finished;
    json_t *items;
    json_t *targets; /* set of target ids seen, for matched_targets */
    int fail_rc;
    char fail_msg[CD_ERR_MSG_MAX];
};

static void cap_free(struct cap *c)
{
    cd_api_call_unref(c->call);
    json_decref(c->items);
    json_decref(c->targets);
    free(c->incident);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Under mu: complete when everything is known. Returns true when c is done (caller frees). */
static bool cap_maybe_complete(struct cap *c)
{
    if (!c->reported || c->finished < c->expected)
        return false;
    if (c->fail_rc < 0) {
        cd_api_call_complete(c->call, c->fail_rc, NULL, c->fail_msg);
        return true;
    }
    json_t *res =
        json_pack("{s:o,s:I,s:O,s:I}", "incident", jstr_or_null(c->incident), "matched_targets",
                  (json_int_t)json_object_size(c->targets), "snapshots", c->items, "duration_ms",
                  (json_int_t)(cd_clock_now_mono_ms() - c->t0_ms));
    if (res == NULL)
        cd_api_call_complete(c->call, -ENOMEM, NULL, "out of memory");
    else
        cd_api_call_complete(c->call, 0, res, NULL);
    return true;
}

static void cap_on_report(void *ctx, const struct cd_capture_report *r)
{
    struct cap *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->reported = true;
    if (r->status < 0) {
        c->fail_rc = r->status;
        snprintf(c->fail_msg, sizeof(c->fail_msg), "capture: the scrape engine is shutting down");
    } else if (r->n_started == 0 && r->n_refused == 0) {
        c->fail_rc = -ENOENT;
        snprintf(c->fail_msg, sizeof(c->fail_msg), "capture: no target matches the selector");
    }
    c->expected = r->n_started;
    for (size_t i = 0; i < r->n_started; i++)
        json_object_set_new(c->targets, r->started[i].target_id, json_true());
    for (size_t i = 0; i < r->n_refused; i++) {
        const struct cd_capture_item *it = &r->refused[i];
        json_object_set_new(c->targets, it->target_id, json_true());
        json_array_append_new(c->items,
                              json_pack("{s:s,s:s,s:s,s:n,s:s?,s:b}", "target", it->target_id,
                                        "kind", it->kind, "status", "skipped", "id", "error",
                                        it->reason, "pinned", 0));
    }
    bool done = cap_maybe_complete(c);
    pthread_mutex_unlock(&c->mu);
    if (done)
        cap_free(c);
}

static void cap_on_done(struct cd_snapshot *s, int rc, void *ctx)
{
    struct cap *c = ctx;
    char *tid = target_id(s->job, s->scheme, s->address);
    const char *error = s->error != NULL ? s->error : s->parse_error;
    char why[96];
    if (rc < 0 && s->id <= 0) {
        snprintf(why, sizeof(why), "not stored: %s",
                 rc == -EAGAIN      ? "ingest queue full"
                 : rc == -ECANCELED ? "cancelled at shutdown"
                                    : strerror(-rc));
        error = why;
    }
    json_t *item = json_pack(
        "{s:o,s:s?,s:s?,s:s?,s:s,s:o,s:s?,s:I,s:I,s:I,s:b}", "target", jstr_or_null(tid), "job",
        s->job, "instance", s->instance, "kind", s->kind, "status", cd_snap_status_name(s->status),
        "id", s->id > 0 ? json_integer(s->id) : json_null(), "error", error, "time_unix_ms",
        (json_int_t)s->start_ms, "duration_ms", (json_int_t)s->duration_ms, "size_bytes",
        (json_int_t)s->raw_len, "pinned", s->id > 0 && s->incident != NULL);
    free(tid);
    pthread_mutex_lock(&c->mu);
    if (item != NULL)
        json_array_append_new(c->items, item);
    c->finished++;
    bool done = cap_maybe_complete(c);
    pthread_mutex_unlock(&c->mu);
    if (done)
        cap_free(c);
}

static int be_capture(void *ctx, const struct cd_apiwire_capture *req, struct cd_api_call *call,
                      struct cd_err *err)
{
    struct cd_backend *b = ctx;
    struct cap *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return nomem(err);
    pthread_mutex_init(&c->mu, NULL);
    c->items = json_array();
    c->targets = json_object();
    c->incident = cd_str_dup(req->incident);
    c->t0_ms = cd_clock_now_mono_ms();
    if (c->items == NULL || c->targets == NULL || (req->incident != NULL && c->incident == NULL)) {
        cap_free(c);
        return nomem(err);
    }
    c->call = cd_api_call_ref(call);
    struct cd_capture_req cr = {
        .selector =
            {
                .job = req->selector.job,
                .target = req->selector.target,
                .labels = req->selector.labels.n > 0 ? &req->selector.labels : NULL,
            },
        .kinds = (const char *const *)req->kinds,
        .n_kinds = req->n_kinds,
        .incident = req->incident,
        .done = cap_on_done,
        .done_ctx = c,
        .on_report = cap_on_report,
        .report_ctx = c,
    };
    int rc = cd_scrape_capture(b->d.scrape, &cr);
    if (rc < 0) {
        cap_free(c); /* drops our reference: none may be kept on an error return */
        if (rc == -EAGAIN)
            return cd_err_set(err, rc, "capture: too many captures queued; retry shortly");
        if (rc == -ESHUTDOWN)
            return cd_err_set(err, rc, "capture: collectord is shutting down");
        return cd_err_set(err, rc, "capture: %s", strerror(-rc));
    }
    return 0;
}

/* ---- status and metrics ------------------------------------------------------------------- */

static int db_stats(struct cd_backend *b, json_t **out, struct cd_err *err)
{
    struct reader rd;
    int rc = reader_get(b, &rd, err);
    if (rc == 0)
        rc = cd_store_stats(rd.r, out, err);
    reader_put(&rd);
    return rc;
}

static int be_status(void *ctx, json_t **out, struct cd_err *err)
{
    struct cd_backend *b = ctx;
    json_t *db = NULL;
    struct cd_scrape_metrics *m = NULL;
    struct cd_scrape_health *h = NULL;
    int rc = db_stats(b, &db, err);
    if (rc < 0)
        return rc;
    rc = cd_scrape_metrics(b->d.scrape, &m);
    if (rc == 0)
        rc = cd_scrape_health(b->d.scrape, &h);
    if (rc < 0) {
        json_decref(db);
        cd_scrape_metrics_free(m);
        return cd_err_set(err, rc, "scrape: figures unavailable");
    }
    size_t up = 0, down = 0, unknown = 0;
    for (size_t i = 0; i < h->n; i++) {
        const char *hs = h->targets[i].health;
        if (strcmp(hs, "up") == 0)
            up++;
        else if (strcmp(hs, "down") == 0)
            down++;
        else
            unknown++;
    }
    uint64_t total = 0, failed = 0;
    for (size_t i = 0; i < m->n_results; i++) {
        total += m->results[i].count;
        if (strcmp(m->results[i].status, "ok") != 0)
            failed += m->results[i].count;
    }
    struct cd_worker_stats ws;
    cd_worker_stats(b->d.worker, &ws);
    struct cd_ingest_stats is;
    cd_ingest_get_stats(b->d.ingest, &is);
    const json_t *q = json_object_get(db, "queue");
    int64_t now = cd_clock_wall_ms(b->d.clock);

    pthread_mutex_lock(&b->mu);
    const json_t *sret = json_object_get(db, "retention");
    json_t *ret =
        json_pack("{s:o,s:o,s:o,s:o}", "last_run_unix_ms", json_null(), "last_deleted_snapshots",
                  json_null(), "last_deleted_bytes", json_null(), "next_run_unix_ms",
                  jtime_or_null(jint(sret, "next_run_ms", 0)));
    if (ret != NULL && b->have_retention) {
        const struct cd_retention_report *r = &b->last_retention;
        json_object_set_new(ret, "last_run_unix_ms", json_integer(r->started_ms));
        json_object_set_new(ret, "last_deleted_snapshots",
                            json_integer(r->max_age.snapshots + r->max_snapshots.snapshots +
                                         r->downsample.snapshots + r->max_bytes.snapshots));
        json_object_set_new(ret, "last_deleted_bytes",
                            json_integer(r->max_age.bytes + r->max_snapshots.bytes +
                                         r->downsample.bytes + r->max_bytes.bytes));
    }
    json_t *res = json_pack(
        "{s:s,s:s,s:i,s:I,s:I,s:s?,s:o,"
        "s:{s:O?,s:I,s:O?,s:I,s:o,s:o,s:I,s:O?,s:O?},"
        "s:{s:I,s:I,s:I,s:I},s:O?,"
        "s:{s:I,s:I,s:I,s:I,s:I,s:I},"
        "s:[{s:s,s:I,s:I},{s:s,s:I,s:I}],s:o}",
        "version", COLLECTORD_VERSION, "api_version", CD_API_VERSION, "pid", (int)getpid(),
        "started_unix_ms", (json_int_t)b->d.started_ms, "uptime_ms",
        (json_int_t)(now - b->d.started_ms), "config_file", b->config_file, "config_loaded_unix_ms",
        jtime_or_null(b->config_loaded_ms),
        /* database */
        "database", "path", json_object_get(db, "path"), "size_bytes",
        (json_int_t)(jint(db, "file_bytes", 0) + jint(db, "wal_bytes", 0)), "snapshots",
        json_object_get(db, "snapshots"), "pinned", (json_int_t)jint(db, "pinned", 0),
        "oldest_unix_ms", jtime_or_null(jint(db, "oldest_ms", 0)), "newest_unix_ms",
        jtime_or_null(jint(db, "newest_ms", 0)), "raw_bytes",
        (json_int_t)jint(db, "blob_raw_bytes", 0), "disk_full",
        json_object_get(json_object_get(db, "writer"), "disk_full"), "last_error",
        json_object_get(json_object_get(db, "writer"), "last_error"),
        /* targets */
        "targets", "total", (json_int_t)h->n, "up", (json_int_t)up, "down", (json_int_t)down,
        "unknown", (json_int_t)unknown, "incidents", json_object_get(db, "incidents"),
        /* scrapes */
        "scrapes", "in_flight", (json_int_t)m->inflight, "total", (json_int_t)total, "failed",
        (json_int_t)failed, "dropped",
        (json_int_t)(m->dropped_queue_full + m->skipped_queue_full + is.store_rejected), "invalid",
        (json_int_t)is.invalid, "captures", (json_int_t)m->captures_started,
        /* queues */
        "queues", "name", "parse", "depth", (json_int_t)ws.jobs, "capacity",
        (json_int_t)b->d.parse_queue_capacity, "name", "store", "depth",
        (json_int_t)jint(q, "snapshots", 0), "capacity", (json_int_t)jint(q, "max_snapshots", 0),
        "retention", ret);
    pthread_mutex_unlock(&b->mu);
    json_decref(db);
    cd_scrape_metrics_free(m);
    cd_scrape_health_free(h);
    if (res == NULL)
        return nomem(err);
    *out = res;
    return 0;
}

static int add_family(json_t *fams, const char *name, const char *type, const char *help,
                      json_t *samples)
{
    if (samples == NULL)
        return -ENOMEM;
    json_t *f = json_pack("{s:s,s:s,s:s,s:o}", "name", name, "type", type, "help", help, "samples",
                          samples);
    if (f == NULL || json_array_append_new(fams, f) != 0)
        return -ENOMEM;
    return 0;
}

static json_t *one_sample(json_t *labels, double v)
{
    return json_pack("[{s:o,s:f}]", "labels", labels != NULL ? labels : json_object(), "value", v);
}

static json_t *histogram_sample(const double *bounds_s, const uint64_t *counts, size_t n,
                                double sum)
{
    json_t *buckets = json_array();
    uint64_t cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += counts[i];
        if (i + 1 < n)
            json_array_append_new(buckets, json_pack("[f,I]", bounds_s[i], (json_int_t)cum));
    }
    return json_pack("[{s:{},s:o,s:f,s:I}]", "labels", "buckets", buckets, "sum", sum, "count",
                     (json_int_t)cum);
}

static int be_metrics(void *ctx, json_t **out, struct cd_err *err)
{
    struct cd_backend *b = ctx;
    json_t *db = NULL;
    struct cd_scrape_metrics *m = NULL;
    struct cd_scrape_health *h = NULL;
    int rc = db_stats(b, &db, err);
    if (rc < 0)
        return rc;
    if (cd_scrape_metrics(b->d.scrape, &m) < 0 || cd_scrape_health(b->d.scrape, &h) < 0) {
        json_decref(db);
        cd_scrape_metrics_free(m);
        return cd_err_set(err, -ENOMEM, "scrape: figures unavailable");
    }
    struct cd_worker_stats ws;
    cd_worker_stats(b->d.worker, &ws);
    struct cd_ingest_stats is;
    cd_ingest_get_stats(b->d.ingest, &is);
    json_t *fams = json_array();
    int bad = fams == NULL;

    json_t *s = json_array();
    for (size_t i = 0; s != NULL && i < m->n_results; i++) {
        const struct cd_scrape_result_count *r = &m->results[i];
        json_array_append_new(s, json_pack("{s:{s:s,s:s,s:s},s:I}", "labels", "job", r->job, "kind",
                                           r->kind, "result", r->status, "value",
                                           (json_int_t)r->count));
    }
    bad |= add_family(fams, "collectord_scrapes_total", "counter",
                      "Scrapes finished, by job, kind and result (the snapshot status).", s);

    double dur_bounds[CD_SCRAPE_DURATION_BUCKETS];
    memcpy(dur_bounds, cd_scrape_duration_bounds_s, sizeof(cd_scrape_duration_bounds_s));
    bad |= add_family(fams, "collectord_scrape_duration_seconds", "histogram",
                      "How long scrapes took, from the request to the last byte.",
                      histogram_sample(dur_bounds, m->duration_counts, CD_SCRAPE_DURATION_BUCKETS,
                                       m->duration_sum_s));
    double late_bounds[CD_SCRAPE_LATENESS_BUCKETS];
    for (size_t i = 0; i + 1 < CD_SCRAPE_LATENESS_BUCKETS; i++)
        late_bounds[i] = (double)cd_scrape_lateness_bounds_ms[i] / 1000.0;
    bad |= add_family(fams, "collectord_scrape_start_lateness_seconds", "histogram",
                      "How late scheduled scrapes started after their deadline.",
                      histogram_sample(late_bounds, m->lateness_counts, CD_SCRAPE_LATENESS_BUCKETS,
                                       (double)m->lateness_sum_ms / 1000.0));
    bad |=
        add_family(fams, "collectord_scrape_bytes_total", "counter",
                   "Raw bytes received from targets.", one_sample(NULL, (double)m->bytes_received));
    s = json_pack("[{s:{s:s},s:I},{s:{s:s},s:I},{s:{s:s},s:I},{s:{s:s},s:I},{s:{s:s},s:I}]",
                  "labels", "reason", "overlap", "value", (json_int_t)m->skipped_overlap, "labels",
                  "reason", "concurrency", "value", (json_int_t)m->skipped_concurrency, "labels",
                  "reason", "exclusive", "value", (json_int_t)m->skipped_exclusive, "labels",
                  "reason", "byte_budget", "value", (json_int_t)m->skipped_held, "labels", "reason",
                  "queue_full", "value", (json_int_t)m->skipped_queue_full);
    bad |= add_family(fams, "collectord_scrapes_skipped_total", "counter",
                      "Scheduled scrape slots not taken (never queued), by reason.", s);
    s = json_pack("[{s:{s:s},s:I},{s:{s:s},s:I}]", "labels", "reason", "ingest_queue_full", "value",
                  (json_int_t)m->dropped_queue_full, "labels", "reason", "store_queue_full",
                  "value", (json_int_t)is.store_rejected);
    bad |= add_family(fams, "collectord_scrapes_dropped_total", "counter",
                      "Finished scrapes dropped before storage, by reason.", s);
    bad |= add_family(fams, "collectord_snapshots_invalid_total", "counter",
                      "Complete answers that did not parse (kept raw, status invalid).",
                      one_sample(NULL, (double)is.invalid));
    bad |= add_family(fams, "collectord_scrapes_in_flight", "gauge", "Scrapes running now.",
                      one_sample(NULL, (double)m->inflight));
    bad |= add_family(fams, "collectord_scrape_inflight_bytes", "gauge",
                      "Body bytes held by scrapes running now.",
                      one_sample(NULL, (double)m->inflight_bytes));
    const json_t *q = json_object_get(db, "queue");
    s = json_pack("[{s:{s:s},s:I},{s:{s:s},s:I}]", "labels", "queue", "parse", "value",
                  (json_int_t)ws.jobs, "labels", "queue", "store", "value",
                  (json_int_t)jint(q, "snapshots", 0));
    bad |= add_family(fams, "collectord_queue_depth", "gauge",
                      "Snapshots waiting in each queue (parse: on the worker pool).", s);
    s = json_pack("[{s:{s:s},s:I},{s:{s:s},s:I}]", "labels", "queue", "parse", "value",
                  (json_int_t)b->d.parse_queue_capacity, "labels", "queue", "store", "value",
                  (json_int_t)jint(q, "max_snapshots", 0));
    bad |= add_family(fams, "collectord_queue_capacity", "gauge", "Capacity of each queue.", s);

    pthread_mutex_lock(&b->mu);
    uint64_t rs = b->retention_snapshots_total, rb = b->retention_bytes_total;
    pthread_mutex_unlock(&b->mu);
    bad |= add_family(fams, "collectord_retention_deleted_snapshots_total", "counter",
                      "Snapshots deleted by retention since start.", one_sample(NULL, (double)rs));
    bad |=
        add_family(fams, "collectord_retention_deleted_bytes_total", "counter",
                   "Stored bytes deleted by retention since start.", one_sample(NULL, (double)rb));
    bad |= add_family(
        fams, "collectord_database_size_bytes", "gauge",
        "Size of the database file and its write-ahead log.",
        one_sample(NULL, (double)(jint(db, "file_bytes", 0) + jint(db, "wal_bytes", 0))));
    bad |= add_family(fams, "collectord_database_snapshots", "gauge", "Snapshots stored.",
                      one_sample(NULL, (double)jint(db, "snapshots", 0)));
    const json_t *w = json_object_get(db, "writer");
    bad |= add_family(fams, "collectord_store_write_failures_total", "counter",
                      "Snapshots the store could not write.",
                      one_sample(NULL, (double)jint(w, "failed", 0)));
    bad |= add_family(fams, "collectord_store_disk_full", "gauge",
                      "1 while the database's disk is full (metadata-only records).",
                      one_sample(NULL, json_is_true(json_object_get(w, "disk_full")) ? 1 : 0));
    s = json_array();
    for (size_t i = 0; s != NULL && i < h->n; i++) {
        const struct cd_scrape_target_health *t = &h->targets[i];
        if (strcmp(t->health, "unknown") == 0)
            continue;
        json_t *labels = t->labels_json ? json_loads(t->labels_json, 0, NULL) : NULL;
        const char *inst = labels ? jstr(labels, "instance") : NULL;
        json_array_append_new(s, json_pack("{s:{s:s,s:s,s:s},s:i}", "labels", "job", t->job,
                                           "instance", inst ? inst : t->address, "target", t->id,
                                           "value", strcmp(t->health, "up") == 0));
        json_decref(labels);
    }
    bad |= add_family(fams, "collectord_target_up", "gauge",
                      "1 when the target's last scrape reached it, 0 when it failed.", s);
    bad |= add_family(fams, "collectord_targets", "gauge", "Targets being scraped.",
                      one_sample(NULL, (double)h->n));
    json_decref(db);
    cd_scrape_metrics_free(m);
    cd_scrape_health_free(h);
    if (bad) {
        json_decref(fams);
        return nomem(err);
    }
    *out = json_pack("{s:o}", "metrics", fams);
    return *out != NULL ? 0 : nomem(err);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int cd_backend_new(const struct cd_backend_deps *deps, struct cd_backend **out, struct cd_err *err)
{
    struct cd_backend *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return nomem(err);
    b->d = *deps;
    if (b->d.clock == NULL) {
        cd_clock_init_real(&b->real_clock);
        b->d.clock = &b->real_clock;
    }
    if (b->d.writer_timeout_ms <= 0)
        b->d.writer_timeout_ms = 30000;
    pthread_mutex_init(&b->mu, NULL);
    *out = b;
    return 0;
}

void cd_backend_free(struct cd_backend *b)
{
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b->config_file);
    free(b);
}

void cd_backend_api(struct cd_backend *b, struct cd_api_backend *out)
{
    memset(out, 0, sizeof(*out));
    out->ctx = b;
    out->status = be_status;
    out->targets = be_targets;
    out->snapshots = be_snapshots;
    out->snapshot = be_snapshot;
    out->raw_open = be_raw_open;
    out->series = be_series;
    out->capture = be_capture;
    out->pin = be_pin;
    out->unpin = be_unpin;
    out->incidents = be_incidents;
    out->incident = be_incident;
    out->retention_run = be_retention_run;
    out->metrics = be_metrics;
}

int cd_backend_set_config(struct cd_backend *b, const char *file, int64_t loaded_ms)
{
    char *copy = cd_str_dup(file);
    if (file != NULL && copy == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&b->mu);
    free(b->config_file);
    b->config_file = copy;
    b->config_loaded_ms = loaded_ms;
    pthread_mutex_unlock(&b->mu);
    return 0;
}

void cd_backend_note_retention(struct cd_backend *b, const struct cd_retention_report *rep)
{
    pthread_mutex_lock(&b->mu);
    if (!rep->dry_run) {
        /* A dry run deletes nothing: the status's last run stays the last real one. */
        b->have_retention = true;
        b->last_retention = *rep;
        b->retention_snapshots_total += rep->max_age.snapshots + rep->max_snapshots.snapshots +
                                        rep->downsample.snapshots + rep->max_bytes.snapshots;
        b->retention_bytes_total += rep->max_age.bytes + rep->max_snapshots.bytes +
                                    rep->downsample.bytes + rep->max_bytes.bytes;
    }
    pthread_mutex_unlock(&b->mu);
}
