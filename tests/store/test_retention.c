/* Retention: every policy deletes exactly what it should, pinned and incident snapshots survive
 * every policy, a dry run reports what the real run then deletes, max_bytes brings the file back
 * under its bound. A fake clock sets "now"; runs are requested, not waited for. */
#include "storetest.h"

#include "cdtest.h"
#include "str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NOW    1700000000000LL /* 2023-11-14T22:13:20Z */
#define MINUTE 60000LL
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)

struct fix {
    char *dir;
    char *path;
    struct cd_clock clock;
    struct cd_store *st;
    struct st_done d;
    size_t submitted;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = cdt_tmpdir("retention");
    f->path = cdt_path(f->dir, "collectord.db");
    cd_clock_init_fake(&f->clock, NOW);
    st_done_init(&f->d, 10000);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    cd_store_close(f->st);
    st_done_free(&f->d);
    cdt_rmrf(f->dir);
    free(f->path);
    free(f->dir);
    free(f);
    return 0;
}

static void open_with(struct fix *f, const struct cd_retention_policy *p)
{
    struct cd_store_opts o;
    st_opts(&o, f->path, &f->clock);
    o.retention = *p;
    o.retention.interval_ms = 0;
    o.queue_max_snapshots = 8192; /* tests submit thousands without waiting */
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_open(&o, &f->st, &err) != 0)
        fail_msg("open: %s", cd_err_msg(&err));
}

/* Submits one snapshot with its own bytes (seeded by `seed`) without waiting; returns the index
 * of its done callback (callbacks come in submit order). */
static size_t add_nowait(struct fix *f, const char *addr, const char *kind, int64_t start_ms,
                         size_t len, uint64_t seed, const char *incident)
{
    uint8_t *raw = malloc(len);
    assert_non_null(raw);
    st_fill_gzipish(raw, len, seed);
    struct cd_snapshot *s = st_snap("api", addr, kind, start_ms, raw, len, "{\"n\":1}");
    free(raw);
    if (incident != NULL)
        s->incident = cd_str_dup(incident);
    size_t idx = f->submitted++;
    st_submit(f->st, s, &f->d);
    return idx;
}

/* The same, waiting for the commit; returns the snapshot id. */
static int64_t add(struct fix *f, const char *addr, const char *kind, int64_t start_ms, size_t len,
                   uint64_t seed, const char *incident)
{
    size_t idx = add_nowait(f, addr, kind, start_ms, len, seed, incident);
    st_done_wait(&f->d, idx + 1);
    assert_int_equal(f->d.rcs[idx], 0);
    return f->d.ids[idx];
}

static void pin(struct fix *f, int64_t id)
{
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_pin(f->st, id, NULL, 0, &err) != 0)
        fail_msg("pin: %s", cd_err_msg(&err));
}

static void run(struct fix *f, bool dry, struct cd_retention_report *rep)
{
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_retention_run(f->st, dry, 0, rep, &err) != 0)
        fail_msg("retention: %s", cd_err_msg(&err));
    assert_true(rep->complete);
    assert_int_equal(rep->dry_run, dry);
}

static int64_t count(struct fix *f)
{
    return st_sql_i64(f->path, "SELECT count(*) FROM snapshots");
}

static bool present(struct fix *f, int64_t id)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM snapshots WHERE id = %lld", (long long)id);
    return st_sql_i64(f->path, sql) == 1;
}

static uint64_t total(const struct cd_retention_report *r)
{
    return r->max_age.snapshots + r->max_snapshots.snapshots + r->downsample.snapshots +
           r->max_bytes.snapshots;
}

/* The trigger-kept totals must match what the tables hold after deletions. */
static void check_totals(struct fix *f)
{
    assert_int_equal(st_sql_i64(f->path, "SELECT total(snapshots) FROM target_kinds"), count(f));
    assert_int_equal(st_sql_i64(f->path, "SELECT total(snapshots) FROM status_counts"), count(f));
    assert_int_equal(st_sql_i64(f->path, "SELECT blobs FROM blob_totals"),
                     st_sql_i64(f->path, "SELECT count(*) FROM blobs"));
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM target_kinds k WHERE last_id <> "
                                         "(SELECT id FROM snapshots s WHERE s.target_id = "
                                         "k.target_id AND s.kind = k.kind ORDER BY start_ms DESC, "
                                         "id DESC LIMIT 1)"),
                     0);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM series WHERE snapshot_id NOT IN "
                                         "(SELECT id FROM snapshots)"),
                     0);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM snapshots WHERE blob_id NOT IN "
                                         "(SELECT id FROM blobs)"),
                     0);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM blobs WHERE id NOT IN "
                                         "(SELECT blob_id FROM snapshots WHERE blob_id IS NOT "
                                         "NULL)"),
                     0);
}

static void test_max_age(void **state)
{
    struct fix *f = *state;
    struct cd_retention_policy p;
    cd_retention_policy_default(&p);
    p.max_age_ms = 14 * DAY;
    p.chunk = 4; /* several transactions */
    open_with(f, &p);
    int64_t ids[30];
    for (int i = 0; i < 30; i++)
        ids[i] = add(f, "a:1", "heap", NOW - i * DAY, 1000, (uint64_t)i, i == 25 ? "inc" : NULL);
    pin(f, ids[20]);

    struct cd_retention_report rep;
    run(f, true, &rep);
    /* 15..29 are older than 14 days; 20 is pinned, 25 in an incident */
    assert_int_equal(rep.max_age.snapshots, 13);
    assert_int_equal(rep.max_age.bytes, 13 * 1000);
    assert_int_equal(rep.blobs_deleted, 13);
    assert_int_equal(rep.blob_bytes_freed, 13 * 1000);
    assert_int_equal(count(f), 30);

    run(f, false, &rep);
    assert_int_equal(rep.max_age.snapshots, 13);
    assert_int_equal(rep.blobs_deleted, 13);
    assert_true(rep.chunks >= 4);
    assert_int_equal(count(f), 17);
    for (int i = 0; i < 30; i++)
        assert_int_equal(present(f, ids[i]), i <= 14 || i == 20 || i == 25);
    check_totals(f);

    /* nothing left to do */
    run(f, false, &rep);
    assert_int_equal(total(&rep), 0);

    /* the status API shows the last run */
    struct cd_store_reader *r = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_store_reader_get(f->st, &r, &err), 0);
    json_t *j = NULL;
    assert_int_equal(cd_store_stats(r, &j, &err), 0);
    json_t *last = json_object_get(json_object_get(j, "retention"), "last_run");
    assert_true(json_is_object(last));
    assert_int_equal(json_integer_value(json_object_get(last, "snapshots")), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "retention"), "max_age_ms")),
        14 * DAY);
    json_decref(j);
    cd_store_reader_put(f->st, r);
}

static void test_max_snapshots(void **state)
{
    struct fix *f = *state;
    struct cd_retention_policy p;
    cd_retention_policy_default(&p);
    p.max_snapshots_per_target = 5;
    p.chunk = 3;
    open_with(f, &p);
    int64_t a_heap[12], a_cpu[3], b_heap[8];
    for (int i = 0; i < 12; i++)
        a_heap[i] = add(f, "a:1", "heap", NOW - (12 - i) * MINUTE, 100, 100 + (uint64_t)i, NULL);
    for (int i = 0; i < 3; i++)
        a_cpu[i] = add(f, "a:1", "cpu", NOW - (3 - i) * MINUTE, 100, 200 + (uint64_t)i, NULL);
    for (int i = 0; i < 8; i++)
        b_heap[i] = add(f, "b:1", "heap", NOW - (8 - i) * MINUTE, 100, 300 + (uint64_t)i, NULL);
    pin(f, b_heap[1]);

    struct cd_retention_report rep;
    run(f, true, &rep);
    assert_int_equal(rep.max_snapshots.snapshots, 7 + 2);
    assert_int_equal(count(f), 23);
    run(f, false, &rep);
    assert_int_equal(rep.max_snapshots.snapshots, 9);
    assert_int_equal(count(f), 14);
    for (int i = 0; i < 12; i++)
        assert_int_equal(present(f, a_heap[i]), i >= 7);
    for (int i = 0; i < 3; i++)
        assert_true(present(f, a_cpu[i]));
    for (int i = 0; i < 8; i++)
        assert_int_equal(present(f, b_heap[i]), i >= 3 || i == 1);
    check_totals(f);
    run(f, false, &rep);
    assert_int_equal(total(&rep), 0);
}

/* ---- downsampling --------------------------------------------------------------------------- */

struct row {
    int64_t id;
    int64_t t;
    int pair;
    bool prot;
    bool alive;
};

static int64_t fdiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* alive[i] = whether rows[i] is still in the database (one query). */
static void live_ids(struct fix *f, const struct row *rows, size_t n, bool *alive)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT 1 FROM snapshots WHERE id = ?1", -1, &q, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(q, 1, rows[i].id);
        alive[i] = sqlite3_step(q) == SQLITE_ROW;
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* The specification, written out plainly: for one tier, on the snapshots still alive, each whole
 * bucket [k*P - P/2, (k+1)*P - P/2) older than the tier's cutoff keeps the snapshot nearest k*P
 * (ties: the earlier, then the lower id); every other unpinned one in it dies. */
static void thin_expected(struct row *rows, size_t n, const struct cd_retention_tier *tier,
                          int64_t now)
{
    int64_t P = tier->keep_one_per_ms, half = P / 2;
    int64_t hi = fdiv(now - tier->after_ms + half, P) * P - half;
    bool *die = calloc(n, sizeof(*die));
    assert_non_null(die);
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].alive || rows[i].prot || rows[i].t >= hi)
            continue;
        int64_t k = fdiv(rows[i].t + half, P);
        for (size_t j = 0; j < n && !die[i]; j++) {
            if (j == i || !rows[j].alive || rows[j].pair != rows[i].pair ||
                fdiv(rows[j].t + half, P) != k)
                continue;
            int64_t di = llabs(rows[i].t - k * P), dj = llabs(rows[j].t - k * P);
            die[i] = dj < di || (dj == di && (rows[j].t < rows[i].t ||
                                              (rows[j].t == rows[i].t && rows[j].id < rows[i].id)));
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (die[i])
            rows[i].alive = false;
    }
    free(die);
}

static void test_downsample(void **state)
{
    struct fix *f = *state;
    struct cd_retention_policy p;
    cd_retention_policy_default(&p);
    /* given finest first: the store orders them itself */
    p.tiers[0] = (struct cd_retention_tier){24 * HOUR, HOUR};
    p.tiers[1] = (struct cd_retention_tier){72 * HOUR, 6 * HOUR};
    p.n_tiers = 2;
    p.chunk = 50;
    open_with(f, &p);

    static const char *const addrs[] = {"a:1", "b:1"};
    static const char *const kinds[] = {"heap", "goroutine"};
    size_t cap = 4000, n = 0;
    struct row *rows = calloc(cap, sizeof(*rows));
    assert_non_null(rows);
    uint64_t seed = 42;
    for (int pair = 0; pair < 4; pair++) {
        /* every ~7 minutes with up to a minute of jitter, over the last 4 days */
        for (int64_t t = NOW - 4 * DAY; t < NOW; t += 7 * MINUTE) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            int64_t jitter = (int64_t)((seed >> 33) % (2 * MINUTE)) - MINUTE;
            assert_true(n < cap);
            rows[n].t = t + jitter;
            rows[n].pair = pair;
            rows[n].alive = true;
            rows[n].id =
                (int64_t)add_nowait(f, addrs[pair / 2], kinds[pair % 2], rows[n].t, 64, seed, NULL);
            n++;
        }
    }
    st_done_wait(&f->d, f->submitted);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(f->d.rcs[rows[i].id], 0);
        rows[i].id = f->d.ids[rows[i].id];
    }
    /* a few pinned ones, in thinned ranges */
    for (size_t i = 0; i < n; i += 97) {
        pin(f, rows[i].id);
        rows[i].prot = true;
    }
    /* the expectation, coarsest tier first, each deciding on what the previous one left */
    thin_expected(rows, n, &p.tiers[1], NOW);
    thin_expected(rows, n, &p.tiers[0], NOW);
    size_t want_dead = 0;
    for (size_t i = 0; i < n; i++)
        want_dead += !rows[i].alive;
    assert_true(want_dead > n / 2); /* the test thins a lot */

    struct cd_retention_report rep;
    run(f, true, &rep);
    assert_int_equal(rep.downsample.snapshots, want_dead);
    assert_int_equal((size_t)count(f), n);
    run(f, false, &rep);
    assert_int_equal(rep.downsample.snapshots, want_dead);
    assert_true(rep.chunks >= want_dead / 50);
    bool *alive = calloc(n + 1, sizeof(*alive));
    assert_non_null(alive);
    live_ids(f, rows, n, alive);
    for (size_t i = 0; i < n; i++) {
        if (alive[i] != rows[i].alive)
            fail_msg("snapshot %lld at %lld (pair %d, pinned %d): present %d, expected %d",
                     (long long)rows[i].id, (long long)(rows[i].t - NOW) / MINUTE, rows[i].pair,
                     rows[i].prot, alive[i], rows[i].alive);
    }
    free(alive);
    /* in every whole hour older than 24h, one unpinned snapshot per pair at most */
    assert_int_equal(st_sql_i64(f->path,
                                "SELECT count(*) FROM (SELECT target_id, kind, (start_ms + "
                                "1800000) / 3600000 AS k, count(*) AS n FROM snapshots WHERE "
                                "pinned = 0 AND start_ms < 1699911000000 - 1800000 GROUP BY 1, "
                                "2, 3) WHERE n > 1"),
                     0);
    check_totals(f);
    /* a second run finds nothing; an hour later, one more hour is thinned */
    run(f, false, &rep);
    assert_int_equal(total(&rep), 0);
    cd_clock_advance(&f->clock, HOUR);
    run(f, false, &rep);
    assert_true(rep.downsample.snapshots >= 4 * 5); /* ~8 an hour per pair, some pinned */
    free(rows);
}

/* ---- max_bytes ------------------------------------------------------------------------------ */

static int64_t file_bytes(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (int64_t)sb.st_size;
}

static void test_max_bytes(void **state)
{
    struct fix *f = *state;
    struct cd_retention_policy p;
    cd_retention_policy_default(&p);
    p.max_bytes = 4u << 20;
    p.chunk = 8;
    open_with(f, &p);
    int64_t ids[60];
    for (int i = 0; i < 60; i++)
        ids[i] = add(f, i % 2 ? "a:1" : "b:1", "heap", NOW - (60 - i) * MINUTE, 256 * 1024,
                     1000 + (uint64_t)i, NULL);
    pin(f, ids[0]);
    pin(f, ids[3]);
    int64_t used = st_sql_i64(f->path, "SELECT (page_count - freelist_count) * page_size FROM "
                                       "pragma_page_count, pragma_freelist_count, "
                                       "pragma_page_size");
    assert_true(used > 15 * (1 << 20));

    struct cd_retention_report rep;
    run(f, true, &rep);
    assert_true(rep.max_bytes.snapshots >= 43 && rep.max_bytes.snapshots <= 47);
    assert_int_equal(count(f), 60);
    run(f, false, &rep);
    assert_false(rep.max_bytes_unmet);
    assert_true(rep.db_bytes_after <= p.max_bytes);
    assert_true(rep.pages_vacuumed > 0);
    /* oldest first, pinned ones kept */
    uint64_t n = rep.max_bytes.snapshots;
    for (int i = 0; i < 60; i++) {
        bool want = i == 0 || i == 3 || i >= (int)n + 2;
        assert_int_equal(present(f, ids[i]), want);
    }
    assert_true(st_sql_i64(f->path, "SELECT page_count * page_size FROM pragma_page_count, "
                                    "pragma_page_size") <= (int64_t)p.max_bytes);
    check_totals(f);
    cd_store_close(f->st);
    f->st = NULL;
    /* the file itself shrank (the close checkpointed the WAL into it) */
    assert_true(file_bytes(f->path) <= (int64_t)p.max_bytes);

    /* everything left pinned: the bound cannot be met, and the report says so */
    p.max_bytes = 64 * 1024;
    open_with(f, &p);
    for (int i = 0; i < 60; i++) {
        if (present(f, ids[i]))
            pin(f, ids[i]);
    }
    run(f, false, &rep);
    assert_true(rep.max_bytes_unmet);
    assert_int_equal(rep.max_bytes.snapshots, 0);
}

static void test_shared_blobs(void **state)
{
    struct fix *f = *state;
    struct cd_retention_policy p;
    cd_retention_policy_default(&p);
    p.max_age_ms = DAY;
    open_with(f, &p);
    /* three snapshots with the same bytes: one blob */
    int64_t old1 = add(f, "a:1", "heap", NOW - 3 * DAY, 5000, 7, NULL);
    int64_t old2 = add(f, "b:1", "heap", NOW - 2 * DAY, 5000, 7, NULL);
    int64_t young = add(f, "a:1", "heap", NOW - HOUR, 5000, 7, NULL);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM blobs"), 1);
    struct cd_retention_report rep;
    run(f, true, &rep);
    assert_int_equal(rep.max_age.snapshots, 2);
    assert_int_equal(rep.blobs_deleted, 0);
    run(f, false, &rep);
    assert_int_equal(rep.max_age.snapshots, 2);
    assert_int_equal(rep.blobs_deleted, 0);
    assert_false(present(f, old1));
    assert_false(present(f, old2));
    assert_true(present(f, young));
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM blobs"), 1);
    /* two days later the last reference goes, and the blob with it (dry run counts it once) */
    cd_clock_advance(&f->clock, 2 * DAY);
    add(f, "c:1", "heap", NOW - 2 * HOUR, 5000, 7, NULL); /* also old by now */
    run(f, true, &rep);
    assert_int_equal(rep.max_age.snapshots, 2);
    assert_int_equal(rep.blobs_deleted, 1);
    run(f, false, &rep);
    assert_int_equal(rep.blobs_deleted, 1);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM blobs"), 0);
    check_totals(f);
}

/* ---- periodic runs, ingest during a run ------------------------------------------------------ */

struct events {
    pthread_mutex_t mu;
    int retention_runs;
    uint64_t deleted;
};

static void on_event(const struct cd_store_event *ev, void *ctx)
{
    struct events *e = ctx;
    if (ev->type != CD_STORE_EV_RETENTION)
        return;
    pthread_mutex_lock(&e->mu);
    e->retention_runs++;
    e->deleted += total(ev->report);
    pthread_mutex_unlock(&e->mu);
}

static bool one_run_deleted(void *ctx)
{
    struct events *e = ctx;
    pthread_mutex_lock(&e->mu);
    bool done = e->deleted >= 1;
    pthread_mutex_unlock(&e->mu);
    return done;
}

static void test_periodic(void **state)
{
    struct fix *f = *state;
    struct events ev = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
    struct cd_store_opts o;
    st_opts(&o, f->path, NULL); /* the real clock */
    o.retention.max_age_ms = HOUR;
    o.retention.interval_ms = 50;
    o.on_event = on_event;
    o.event_ctx = &ev;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_store_open(&o, &f->st, &err), 0);
    int64_t now = cd_clock_now_wall_ms();
    add(f, "a:1", "heap", now - 2 * HOUR, 100, 1, NULL);
    int64_t young = add(f, "a:1", "heap", now, 100, 2, NULL);
    assert_int_equal(cdt_wait_until(one_run_deleted, &ev, 10000), 0);
    assert_int_equal(count(f), 1);
    assert_true(present(f, young));
}

static void test_ingest_during_run(void **state)
{
    struct fix *f = *state;
    struct cd_retention_policy p;
    cd_retention_policy_default(&p);
    p.max_age_ms = DAY;
    p.chunk = 10;
    open_with(f, &p);
    for (int i = 0; i < 400; i++) {
        struct cd_snapshot *s =
            st_snap("api", "a:1", "heap", NOW - 2 * DAY + i, &i, sizeof(i), NULL);
        st_submit(f->st, s, &f->d);
    }
    st_done_wait(&f->d, 400);
    /* new snapshots arrive while the run deletes in chunks: they are committed between chunks */
    for (int i = 0; i < 100; i++)
        st_submit(f->st, st_snap("api", "a:1", "heap", NOW + i, &i, sizeof(i), NULL), &f->d);
    struct cd_retention_report rep;
    run(f, false, &rep);
    st_done_wait(&f->d, 500);
    assert_int_equal(rep.max_age.snapshots, 400);
    assert_true(rep.chunks >= 40);
    assert_int_equal(count(f), 100);
    check_totals(f);
}

static void test_validate(void **state)
{
    (void)state;
    struct cd_retention_policy p;
    struct cd_err err;
    cd_retention_policy_default(&p);
    assert_false(cd_retention_policy_active(&p));
    assert_int_equal(cd_retention_policy_validate(&p, &err), 0);
    p.n_tiers = 2;
    p.tiers[0] = (struct cd_retention_tier){HOUR, MINUTE};
    p.tiers[1] = (struct cd_retention_tier){HOUR, 2 * MINUTE};
    cd_err_init(&err);
    assert_int_equal(cd_retention_policy_validate(&p, &err), -EINVAL);
    assert_non_null(strstr(cd_err_msg(&err), "same after"));
    p.tiers[1] = (struct cd_retention_tier){DAY, 0};
    cd_err_init(&err);
    assert_int_equal(cd_retention_policy_validate(&p, &err), -EINVAL);
    p.tiers[1].keep_one_per_ms = HOUR;
    assert_int_equal(cd_retention_policy_validate(&p, &err), 0);
    assert_true(cd_retention_policy_active(&p));
    p.chunk = 1000000;
    cd_err_init(&err);
    assert_int_equal(cd_retention_policy_validate(&p, &err), -EINVAL);

    struct cd_retention_report rep;
    memset(&rep, 0, sizeof(rep));
    rep.max_age.snapshots = 3;
    cd_str_copy(rep.error, "boom", sizeof(rep.error));
    json_t *j = cd_retention_report_json(&rep);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "snapshots")), 3);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "boom");
    json_decref(j);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]); /* one test by name, when debugging */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_max_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downsample, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_during_run, setup, teardown),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
