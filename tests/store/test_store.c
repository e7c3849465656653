/* Unit tests of the store: schema and migrations, ingest, reads, pins and incidents, queue
 * limits, readers beside the writer. Real SQLite files in a temporary directory. */
#include "storetest.h"

#include "buf.h"
#include "cdtest.h"
#include "hash.h"
#include "str.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct fix {
    char *dir;
    char *path;
    struct cd_clock clock;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = cdt_tmpdir("store");
    f->path = cdt_path(f->dir, "collectord.db");
    cd_clock_init_fake(&f->clock, 1700000000000);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    cdt_rmrf(f->dir);
    free(f->path);
    free(f->dir);
    free(f);
    return 0;
}

static struct cd_store *open_store(struct fix *f, struct cd_store_opts *o)
{
    struct cd_store_opts local;
    if (o == NULL) {
        st_opts(&local, f->path, &f->clock);
        o = &local;
    }
    struct cd_store *st = NULL;
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_open(o, &st, &err) != 0)
        fail_msg("open: %s", cd_err_msg(&err));
    return st;
}

static void file_sha(const char *path, char hex[CD_HASH_SHA256_HEX])
{
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file(path, &data, &len), 0);
    uint8_t h[CD_HASH_SHA256_LEN];
    assert_int_equal(cd_hash_sha256(data, len, h), 0);
    cd_hash_hex(h, sizeof(h), hex);
    free(data);
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* ---- schema --------------------------------------------------------------------------------- */

static void test_fresh_schema(void **state)
{
    struct fix *f = *state;
    struct cd_store *st = open_store(f, NULL);
    assert_int_equal(st_sql_i64(f->path, "PRAGMA user_version"), cd_store_schema_version());
    assert_int_equal(st_sql_i64(f->path, "PRAGMA auto_vacuum"), 2); /* incremental */
    assert_int_equal(st_sql_i64(f->path, "PRAGMA page_size"), 16384);
    assert_int_equal(st_sql_i64(f->path, "PRAGMA application_id"), 0x636f6c64);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM blob_totals"), 1);
    cd_store_close(st);
    /* reopening migrates nothing and changes nothing */
    st = open_store(f, NULL);
    assert_int_equal(st_sql_i64(f->path, "PRAGMA user_version"), cd_store_schema_version());
    cd_store_close(st);
    assert_true(cd_store_schema_version() >= 2);
    assert_int_equal((int)cd_store_n_migrations, cd_store_schema_version());
}

static void test_refuses_newer(void **state)
{
    struct fix *f = *state;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_store_migrate(f->path, cd_store_schema_version(), &err), 0);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", cd_store_schema_version() + 1);
    st_sql_exec(f->path, sql);
    char *wal = cd_str_printf("%s-wal", f->path);
    assert_false(exists(wal));
    char before[CD_HASH_SHA256_HEX], after[CD_HASH_SHA256_HEX];
    file_sha(f->path, before);

    struct cd_store_opts o;
    st_opts(&o, f->path, &f->clock);
    struct cd_store *st = NULL;
    cd_err_init(&err);
    assert_int_equal(cd_store_open(&o, &st, &err), -EPROTO);
    assert_null(st);
    assert_non_null(strstr(cd_err_msg(&err), f->path));
    assert_non_null(strstr(cd_err_msg(&err), "newer"));
    file_sha(f->path, after);
    assert_string_equal(before, after);
    assert_false(exists(wal));

    /* A newer collectord that crashed leaves its last transactions in the WAL: opening must not
     * checkpoint them into the file either. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sqlite3 *db = NULL;
        sqlite3_open(f->path, &db);
        sqlite3_exec(db, "PRAGMA wal_autocheckpoint = 0; CREATE TABLE newer_things (x)", NULL, NULL,
                     NULL);
        _exit(0); /* no close: the WAL stays */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(exists(wal));
    char wal_before[CD_HASH_SHA256_HEX], wal_after[CD_HASH_SHA256_HEX];
    file_sha(f->path, before);
    file_sha(wal, wal_before);
    cd_err_init(&err);
    assert_int_equal(cd_store_open(&o, &st, &err), -EPROTO);
    file_sha(f->path, after);
    file_sha(wal, wal_after);
    assert_string_equal(before, after);
    assert_string_equal(wal_before, wal_after);
    free(wal);
}

static void test_refuses_foreign_and_garbage(void **state)
{
    struct fix *f = *state;
    st_sql_exec(f->path, "CREATE TABLE mine (x)");
    struct cd_store_opts o;
    st_opts(&o, f->path, &f->clock);
    struct cd_store *st = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_store_open(&o, &st, &err), -EINVAL);
    assert_non_null(strstr(cd_err_msg(&err), "not collectord's"));

    char *junk = cdt_path(f->dir, "junk.db");
    char text[8192];
    memset(text, 'x', sizeof(text));
    assert_int_equal(cdt_write_file(junk, text, sizeof(text)), 0);
    o.path = junk;
    cd_err_init(&err);
    assert_int_equal(cd_store_open(&o, &st, &err), -EBADMSG);
    assert_non_null(strstr(cd_err_msg(&err), junk));
    assert_non_null(strstr(cd_err_msg(&err), "not a database"));

    char *nodir = cdt_path(f->dir, "no/such/dir.db");
    o.path = nodir;
    cd_err_init(&err);
    assert_true(cd_store_open(&o, &st, &err) < 0);
    assert_non_null(strstr(cd_err_msg(&err), nodir));
    free(nodir);
    free(junk);
}

static void test_upgrade_from_v1(void **state)
{
    struct fix *f = *state;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_store_migrate(f->path, 1, &err), 0);
    assert_int_equal(st_sql_i64(f->path, "PRAGMA user_version"), 1);
    /* what a version-1 collectord would have written */
    st_sql_exec(f->path,
                "INSERT INTO targets VALUES (1, 'api', 'http', '10.0.0.5:6060', '10.0.0.5:6060', "
                "'{}', 1000, 5000);"
                "INSERT INTO blobs VALUES (1, x'00', 0, 3, 3, 1000, x'1f8b08');"
                "INSERT INTO snapshots (id, target_id, kind, start_ms, committed_ms, status, "
                "raw_bytes, stored_bytes, blob_id) VALUES (1, 1, 'heap', 1000, 1001, 'ok', 3, 3, "
                "1), (2, 1, 'heap', 3000, 3001, 'ok', 3, 3, 1), (3, 1, 'cpu', 2000, 2001, "
                "'timeout', 0, 0, NULL);");
    struct cd_store *st = open_store(f, NULL);
    assert_int_equal(st_sql_i64(f->path, "PRAGMA user_version"), cd_store_schema_version());
    assert_int_equal(st_sql_i64(f->path, "SELECT snapshots FROM target_kinds WHERE kind='heap'"),
                     2);
    assert_int_equal(st_sql_i64(f->path, "SELECT last_id FROM target_kinds WHERE kind='heap'"), 2);
    assert_int_equal(st_sql_i64(f->path, "SELECT bytes FROM target_kinds WHERE kind='heap'"), 6);
    assert_int_equal(st_sql_i64(f->path, "SELECT blobs FROM blob_totals"), 1);
    assert_int_equal(st_sql_i64(f->path, "SELECT snapshots FROM status_counts WHERE "
                                         "status='timeout'"),
                     1);
    /* and new snapshots keep the totals going */
    struct st_done d;
    st_done_init(&d, 4);
    st_submit(st, st_snap("api", "10.0.0.5:6060", "heap", 4000, "\x1f\x8b\x08", 3, NULL), &d);
    st_done_wait(&d, 1);
    assert_int_equal(d.rcs[0], 0);
    assert_int_equal(st_sql_i64(f->path, "SELECT snapshots FROM target_kinds WHERE kind='heap'"),
                     3);
    /* the version-1 row had a made-up hash, so these bytes are a second blob */
    assert_int_equal(st_sql_i64(f->path, "SELECT blobs FROM blob_totals"), 2);
    cd_store_close(st);
    st_done_free(&d);
}

/* ---- ingest and reads -------------------------------------------------------------------------
 */

static void test_prepare(void **state)
{
    (void)state;
    uint8_t gz[4096], text[65536], rnd[4096];
    st_fill_gzipish(gz, sizeof(gz), 1);
    st_fill_text(text, sizeof(text), 2);
    st_fill_random(rnd, sizeof(rnd), 3);
    rnd[0] = 'a'; /* no magic, but incompressible */
    struct cd_err err;
    cd_err_init(&err);

    struct cd_snapshot *s = st_snap("j", "a:1", "heap", 1, gz, sizeof(gz), NULL);
    assert_int_equal(cd_store_prepare(s, &err), 0);
    assert_int_equal(s->prepared, 1);
    assert_null(s->stored);
    assert_int_equal(s->stored_encoding, CD_STORE_ENC_IDENTITY);
    uint8_t h[32];
    cd_hash_sha256(gz, sizeof(gz), h);
    assert_memory_equal(h, s->content_hash, 32);
    cd_snapshot_free(s);

    s = st_snap("j", "a:1", "goroutine_dump", 1, text, sizeof(text), NULL);
    assert_int_equal(cd_store_prepare(s, &err), 0);
    assert_non_null(s->stored);
    assert_int_equal(s->stored_encoding, CD_STORE_ENC_ZSTD);
    assert_true(s->stored_len < sizeof(text) / 3);
    assert_int_equal(cd_store_prepare(s, &err), 0); /* idempotent */
    cd_snapshot_free(s);

    s = st_snap("j", "a:1", "trace", 1, rnd, sizeof(rnd), NULL);
    assert_int_equal(cd_store_prepare(s, &err), 0);
    assert_null(s->stored);
    cd_snapshot_free(s);

    s = st_snap("j", "a:1", "trace", 1, NULL, 0, NULL);
    assert_int_equal(cd_store_prepare(s, &err), 0);
    assert_int_equal(s->prepared, 1);
    cd_snapshot_free(s);
}

static void check_raw(struct cd_store_reader *r, int64_t id, const uint8_t *want, size_t len)
{
    struct cd_store_raw raw;
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_raw(r, id, 0, &raw, &err) != 0)
        fail_msg("raw %lld: %s", (long long)id, cd_err_msg(&err));
    assert_int_equal(raw.len, len);
    assert_memory_equal(raw.data, want, len);
    uint8_t h[32];
    char hex[65];
    cd_hash_sha256(want, len, h);
    cd_hash_hex(h, 32, hex);
    assert_string_equal(raw.sha256, hex);
    cd_store_raw_free(&raw);
}

static void test_roundtrip(void **state)
{
    struct fix *f = *state;
    struct cd_store *st = open_store(f, NULL);
    struct st_done d;
    st_done_init(&d, 16);
    size_t n_gz = 20000, n_text = 300000;
    uint8_t *gz = malloc(n_gz), *text = malloc(n_text);
    assert_non_null(gz);
    assert_non_null(text);
    st_fill_gzipish(gz, n_gz, 7);
    st_fill_text(text, n_text, 8);
    int64_t t0 = 1700000000000;
    st_submit(st,
              st_snap("api", "10.0.0.5:6060", "heap", t0, gz, n_gz,
                      "{\"total\":5,\"top\":[{\"fn\":\"main.f\",\"flat\":5}]}"),
              &d);
    struct cd_snapshot *dump =
        st_snap("api", "10.0.0.5:6060", "goroutine_dump", t0 + 1, text, n_text, "{\"n\":3}");
    free(dump->content_type);
    dump->content_type = cd_str_dup("text/plain; charset=utf-8");
    st_submit(st, dump, &d);
    /* same bytes from another target: one blob */
    st_submit(st, st_snap("api", "10.0.0.6:6060", "heap", t0 + 2, gz, n_gz, NULL), &d);
    struct cd_snapshot *fail = st_snap("api", "10.0.0.7:6060", "cpu", t0 + 3, NULL, 0, NULL);
    fail->status = CD_SNAP_TIMEOUT;
    fail->http_status = 0;
    fail->error = cd_str_dup("no answer within 20s \xff (bad utf-8)");
    st_submit(st, fail, &d);
    st_done_wait(&d, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(d.rcs[i], 0);
        assert_true(d.ids[i] > 0);
    }
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM blobs"), 2);
    assert_int_equal(st_sql_i64(f->path, "SELECT encoding FROM blobs WHERE raw_len = 300000"), 1);
    assert_true(st_sql_i64(f->path, "SELECT stored_len FROM blobs WHERE raw_len = 300000") <
                100000);

    struct cd_store_reader *r = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_store_reader_get(st, &r, &err), 0);
    check_raw(r, d.ids[0], gz, n_gz);
    check_raw(r, d.ids[1], text, n_text);
    check_raw(r, d.ids[2], gz, n_gz);

    struct cd_store_raw raw;
    assert_int_equal(cd_store_raw(r, d.ids[1], 0, &raw, &err), 0);
    assert_string_equal(raw.content_type, "text/plain; charset=utf-8");
    assert_string_equal(raw.filename, "api-10.0.0.5_6060-goroutine_dump-20231114T221320Z.txt");
    cd_store_raw_free(&raw);
    assert_int_equal(cd_store_raw(r, d.ids[0], 0, &raw, &err), 0);
    assert_string_equal(raw.content_type, "application/octet-stream");
    assert_true(cd_str_has_suffix(raw.filename, "-heap-20231114T221320Z.pb.gz"));
    cd_store_raw_free(&raw);
    cd_err_init(&err);
    assert_int_equal(cd_store_raw(r, d.ids[0], 100, &raw, &err), -EFBIG);
    cd_err_init(&err);
    assert_int_equal(cd_store_raw(r, d.ids[3], 0, &raw, &err), -ENOENT);
    assert_non_null(strstr(cd_err_msg(&err), "no raw bytes"));
    cd_err_init(&err);
    assert_int_equal(cd_store_raw(r, 999999, 0, &raw, &err), -ENOENT);

    /* detail: summary parsed, error text made valid UTF-8 */
    json_t *j = NULL;
    cd_err_init(&err);
    assert_int_equal(cd_store_snapshot(r, d.ids[0], &j, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "summary"), "total")),
                     5);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "heap");
    assert_string_equal(json_string_value(json_object_get(j, "encoding")), "identity");
    assert_true(json_is_true(json_object_get(j, "has_raw")));
    json_decref(j);
    assert_int_equal(cd_store_snapshot(r, d.ids[3], &j, &err), 0);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "timeout");
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "20s ?"));
    assert_true(json_is_null(json_object_get(j, "summary")));
    assert_true(json_is_false(json_object_get(j, "has_raw")));
    json_decref(j);
    assert_int_equal(cd_store_snapshot(r, 424242, &j, &err), -ENOENT);

    /* targets with per-kind figures */
    assert_int_equal(cd_store_targets(r, &j, &err), 0);
    assert_int_equal(json_array_size(j), 3);
    json_t *t = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(t, "address")), "10.0.0.5:6060");
    assert_int_equal(json_integer_value(json_object_get(t, "snapshots")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(t, "labels"), "team")),
                        "store");
    json_t *heap = json_object_get(json_object_get(t, "kinds"), "heap");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(heap, "last"), "id")),
                     d.ids[0]);
    json_decref(j);

    /* series */
    struct cd_store_query q = {0};
    q.job = "api";
    assert_int_equal(cd_store_series(r, &q, "heap.value", 0, &j, &err), 0);
    assert_int_equal(json_array_size(json_object_get(j, "series")), 1);
    json_t *pts = json_object_get(json_array_get(json_object_get(j, "series"), 0), "points");
    assert_int_equal(json_array_size(pts), 1);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(pts, 0), 0)), t0);
    json_decref(j);
    assert_int_equal(cd_store_series(r, &q, "no.such", 0, &j, &err), 0);
    assert_int_equal(json_array_size(json_object_get(j, "series")), 0);
    json_decref(j);

    /* stats */
    assert_int_equal(cd_store_stats(r, &j, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "snapshots")), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "blobs")), 2);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(j, "by_status"), "timeout"), "snapshots")),
                     1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "writer"), "committed")),
                     4);
    assert_string_equal(json_string_value(json_object_get(j, "path")), f->path);
    json_decref(j);

    cd_store_reader_put(st, r);
    cd_store_close(st);
    st_done_free(&d);
    free(gz);
    free(text);
}

static void test_submit_rejects(void **state)
{
    struct fix *f = *state;
    struct cd_store *st = open_store(f, NULL);
    struct cd_snapshot *s = st_snap("api", "a:1", "heap", 1, NULL, 0, NULL);
    free(s->job);
    s->job = NULL;
    assert_int_equal(cd_store_submit(st, &s), -EINVAL);
    assert_non_null(s);
    cd_snapshot_free(s);
    s = st_snap("api", "a:1", "bad kind!", 1, NULL, 0, NULL);
    assert_int_equal(cd_store_submit(st, &s), -EINVAL);
    cd_snapshot_free(s);
    s = st_snap("api", "a:1", "heap", 1, NULL, 0, NULL);
    s->incident = cd_str_dup("no spaces");
    assert_int_equal(cd_store_submit(st, &s), -EINVAL);
    cd_snapshot_free(s);
    cd_store_close(st);
}

/* ---- listing -----------------------------------------------------------------------------------
 */

static size_t list_ids(struct cd_store_reader *r, struct cd_store_query *q, int64_t *ids,
                       size_t max, char **cursor)
{
    json_t *j = NULL;
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_list(r, q, &j, &err) != 0)
        fail_msg("list: %s", cd_err_msg(&err));
    json_t *rows = json_object_get(j, "snapshots");
    size_t n = json_array_size(rows);
    assert_true(n <= max);
    for (size_t i = 0; i < n; i++)
        ids[i] = json_integer_value(json_object_get(json_array_get(rows, i), "id"));
    json_t *c = json_object_get(j, "next_cursor");
    if (cursor != NULL)
        *cursor = json_is_string(c) ? cd_str_dup(json_string_value(c)) : NULL;
    json_decref(j);
    return n;
}

static void test_list_and_cursor(void **state)
{
    struct fix *f = *state;
    struct cd_store *st = open_store(f, NULL);
    struct st_done d;
    st_done_init(&d, 1000);
    int64_t t0 = 1700000000000;
    /* 250 snapshots: two targets, two kinds, some on the same millisecond */
    for (int i = 0; i < 250; i++) {
        const char *addr = i % 2 ? "b:1" : "a:1";
        struct cd_snapshot *s =
            st_snap("api", addr, i % 5 == 0 ? "cpu" : "heap", t0 + (i / 3) * 1000, "x", 1, NULL);
        if (i % 7 == 0)
            s->status = CD_SNAP_HTTP_ERROR;
        st_submit(st, s, &d);
    }
    st_done_wait(&d, 250);
    struct cd_store_reader *r = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_store_reader_open(st, &r, &err), 0);

    int64_t ids[1000];
    bool seen[1000] = {false};
    struct cd_store_query q = {0};
    size_t total = 0;
    char *cursor = NULL;
    int64_t prev_time = INT64_MAX;
    for (int page = 0;; page++) {
        q.cursor = cursor;
        size_t n = list_ids(r, &q, ids, 100, &cursor);
        free((char *)q.cursor);
        for (size_t i = 0; i < n; i++) {
            assert_true(ids[i] > 0 && ids[i] < 1000);
            assert_false(seen[ids[i]]);
            seen[ids[i]] = true;
        }
        total += n;
        (void)prev_time;
        if (page == 0) {
            /* newer snapshots arriving between pages do not shift the next ones */
            for (int i = 0; i < 20; i++)
                st_submit(st, st_snap("api", "a:1", "heap", t0 + 500000 + i, "y", 1, NULL), &d);
            st_done_wait(&d, 270);
        }
        if (cursor == NULL)
            break;
    }
    assert_int_equal(total, 250);

    /* newest first */
    q = (struct cd_store_query){0};
    q.limit = 5;
    assert_int_equal(list_ids(r, &q, ids, 5, NULL), 5);
    assert_true(ids[0] > 250); /* one of the late ones, all newer */

    /* filters */
    q = (struct cd_store_query){0};
    q.limit = 1000;
    q.job = "api";
    q.address = "b:1";
    q.kind = "heap";
    size_t n = list_ids(r, &q, ids, 1000, NULL);
    assert_int_equal(n, 125 - 25);
    q.kind = NULL;
    q.status = "http_error";
    n = list_ids(r, &q, ids, 1000, NULL);
    assert_int_equal(n, (size_t)st_sql_i64(f->path, "SELECT count(*) FROM snapshots s JOIN "
                                                    "targets t ON t.id = s.target_id WHERE "
                                                    "t.address = 'b:1' AND status = 'http_error'"));
    q = (struct cd_store_query){0};
    q.limit = 1000;
    q.since_ms = t0 + 10000;
    q.until_ms = t0 + 20000;
    assert_int_equal(list_ids(r, &q, ids, 1000, NULL), 30);
    q = (struct cd_store_query){0};
    q.target_id = st_sql_i64(f->path, "SELECT id FROM targets WHERE address = 'a:1'");
    q.limit = 1000;
    assert_int_equal(list_ids(r, &q, ids, 1000, NULL), 125 + 20);
    q.job = "other";
    assert_int_equal(list_ids(r, &q, ids, 1000, NULL), 0);
    q = (struct cd_store_query){0};
    q.incident = "nope";
    assert_int_equal(list_ids(r, &q, ids, 1000, NULL), 0);

    /* bad input */
    json_t *j = NULL;
    q = (struct cd_store_query){0};
    q.limit = 1001;
    assert_int_equal(cd_store_list(r, &q, &j, &err), -EINVAL);
    q.limit = 0;
    q.cursor = "garbage";
    cd_err_init(&err);
    assert_int_equal(cd_store_list(r, &q, &j, &err), -EINVAL);
    q.cursor = NULL;
    q.status = "fine";
    cd_err_init(&err);
    assert_int_equal(cd_store_list(r, &q, &j, &err), -EINVAL);

    cd_store_reader_close(r);
    cd_store_close(st);
    st_done_free(&d);
}

/* ---- pins and incidents -----------------------------------------------------------------------
 */

static void test_pins_and_incidents(void **state)
{
    struct fix *f = *state;
    struct cd_store *st = open_store(f, NULL);
    struct st_done d;
    st_done_init(&d, 16);
    for (int i = 0; i < 4; i++) {
        struct cd_snapshot *s = st_snap("api", "a:1", "heap", 1000 + i, "z", 1, NULL);
        if (i == 3)
            s->incident = cd_str_dup("outage-1");
        st_submit(st, s, &d);
    }
    st_done_wait(&d, 4);
    struct cd_err err;
    cd_err_init(&err);
    bool left = true;
    assert_int_equal(cd_store_pin(st, d.ids[0], NULL, 0, &err), 0);
    assert_int_equal(cd_store_pin(st, d.ids[1], "outage-1", 0, &err), 0);
    assert_int_equal(cd_store_pin(st, d.ids[1], "outage-2", 0, &err), 0);
    assert_int_equal(cd_store_pin(st, 99999, NULL, 0, &err), -ENOENT);
    cd_err_init(&err);
    assert_int_equal(cd_store_pin(st, d.ids[2], "bad name", 0, &err), -EINVAL);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM incidents"), 2);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM snapshots WHERE pinned <> 0 OR "
                                         "incidents > 0"),
                     3);

    struct cd_store_reader *r = NULL;
    cd_err_init(&err);
    assert_int_equal(cd_store_reader_get(st, &r, &err), 0);
    json_t *j = NULL;
    assert_int_equal(cd_store_incidents(r, &j, &err), 0);
    assert_int_equal(json_array_size(j), 2);
    json_t *o1 = json_array_get(j, 0);
    if (strcmp(json_string_value(json_object_get(o1, "name")), "outage-1") != 0)
        o1 = json_array_get(j, 1);
    assert_int_equal(json_integer_value(json_object_get(o1, "snapshots")), 2);
    json_decref(j);
    assert_int_equal(cd_store_incident_snapshots(r, "outage-1", &j, &err), 0);
    json_t *rows = json_object_get(j, "snapshots");
    assert_int_equal(json_array_size(rows), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), d.ids[1]);
    json_decref(j);
    assert_int_equal(cd_store_incident_snapshots(r, "nope", &j, &err), -ENOENT);
    struct cd_store_query q = {0};
    q.incident = "outage-1";
    int64_t ids[8];
    assert_int_equal(list_ids(r, &q, ids, 8, NULL), 2);
    q = (struct cd_store_query){0};
    q.pinned = 1;
    assert_int_equal(list_ids(r, &q, ids, 8, NULL), 3);
    q.pinned = -1;
    assert_int_equal(list_ids(r, &q, ids, 8, NULL), 1);
    assert_int_equal(cd_store_snapshot(r, d.ids[1], &j, &err), 0);
    assert_int_equal(json_array_size(json_object_get(j, "incident_names")), 2);
    json_decref(j);

    /* unpin from one incident: still protected by the other */
    cd_err_init(&err);
    assert_int_equal(cd_store_unpin(st, d.ids[1], "outage-2", 0, &left, &err), 0);
    assert_true(left);
    assert_int_equal(cd_store_unpin(st, d.ids[1], "outage-2", 0, &left, &err), -ENOENT);
    cd_err_init(&err);
    assert_int_equal(cd_store_unpin(st, d.ids[1], "never", 0, &left, &err), -ENOENT);
    /* unpin without incident: out of everything */
    cd_err_init(&err);
    assert_int_equal(cd_store_unpin(st, d.ids[1], NULL, 0, &left, &err), 0);
    assert_false(left);
    assert_int_equal(cd_store_unpin(st, d.ids[0], NULL, 0, &left, &err), 0);
    assert_false(left);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM snapshots WHERE pinned <> 0 OR "
                                         "incidents > 0"),
                     1);
    cd_store_reader_put(st, r);
    cd_store_close(st);
    st_done_free(&d);
}

/* ---- queue bounds and close -------------------------------------------------------------------
 */

static void test_queue_full(void **state)
{
    struct fix *f = *state;
    struct cd_store_opts o;
    st_opts(&o, f->path, &f->clock);
    o.queue_max_snapshots = 3;
    o.batch_max_snapshots = 1;
    struct cd_store *st = open_store(f, &o);
    struct st_done d;
    st_done_init(&d, 16);
    st_done_block(&d, true);
    /* the first is taken by the writer, which then waits in its done callback */
    st_submit(st, st_snap("api", "a:1", "heap", 1, "a", 1, NULL), &d);
    size_t accepted = 1;
    int rc = 0;
    for (int i = 0; i < 10 && rc == 0; i++) {
        struct cd_snapshot *s = st_snap("api", "a:1", "heap", 2 + i, "b", 1, NULL);
        s->done = st_done_cb;
        s->done_ctx = &d;
        rc = cd_store_submit(st, &s);
        if (rc == 0)
            accepted++;
        else
            cd_snapshot_free(s);
    }
    assert_int_equal(rc, -EAGAIN);
    assert_true(accepted >= 3 && accepted <= 4);
    st_done_block(&d, false);
    st_done_wait(&d, accepted);
    cd_store_close(st);
    st_done_free(&d);

    /* bytes */
    st_opts(&o, f->path, &f->clock);
    o.queue_max_bytes = 64 * 1024;
    o.batch_max_snapshots = 1;
    st = open_store(f, &o);
    st_done_init(&d, 16);
    st_done_block(&d, true);
    static uint8_t big[40000];
    st_submit(st, st_snap("api", "a:1", "heap", 1, big, sizeof(big), NULL), &d);
    struct cd_snapshot *s = st_snap("api", "a:1", "heap", 2, big, sizeof(big), NULL);
    assert_int_equal(cd_store_submit(st, &s), -EAGAIN);
    cd_snapshot_free(s);
    st_done_block(&d, false);
    st_done_wait(&d, 1);
    cd_store_close(st);
    st_done_free(&d);

    /* a snapshot bigger than the byte bound alone is taken when nothing else is held */
    st_opts(&o, f->path, &f->clock);
    o.queue_max_bytes = 1024;
    st = open_store(f, &o);
    st_done_init(&d, 4);
    st_submit(st, st_snap("api", "a:1", "heap", 3, big, sizeof(big), NULL), &d);
    st_done_wait(&d, 1);
    assert_int_equal(d.rcs[0], 0);
    cd_store_close(st);
    st_done_free(&d);
}

/* Large summaries are stored as zstd frames (schema 4) and come back as the same JSON; small ones
 * stay text. */
static void test_summary_compressed(void **state)
{
    struct fix *f = *state;
    struct cd_store *st = open_store(f, NULL);
    struct st_done d;
    st_done_init(&d, 4);
    struct cd_buf big;
    cd_buf_init(&big, 0);
    cd_buf_append_str(&big, "{\"rows\":[");
    for (int i = 0; i < 400; i++)
        cd_buf_printf(&big,
                      "%s{\"function\":\"github.com/example/service/internal.handler%d\","
                      "\"flat\":%d}",
                      i ? "," : "", i, i * 7);
    cd_buf_append_str(&big, "]}");
    cd_buf_terminate(&big);
    uint8_t raw[64];
    st_fill_gzipish(raw, sizeof(raw), 3);
    int64_t t0 = 1700000000000;
    st_submit(st,
              st_snap("api", "10.0.0.5:6060", "heap", t0, raw, sizeof(raw), (const char *)big.data),
              &d);
    st_submit(st, st_snap("api", "10.0.0.5:6060", "cpu", t0 + 1, raw, sizeof(raw), "{\"small\":1}"),
              &d);
    st_done_wait(&d, 2);
    assert_int_equal(d.rcs[0], 0);
    assert_int_equal(d.rcs[1], 0);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM summaries WHERE typeof(json) = "
                                         "'blob'"),
                     1);
    assert_true(st_sql_i64(f->path, "SELECT max(length(json)) FROM summaries") <
                (int64_t)big.len / 4);
    struct cd_store_reader *r = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_store_reader_get(st, &r, &err), 0);
    json_t *j = NULL;
    assert_int_equal(cd_store_snapshot(r, d.ids[0], &j, &err), 0);
    json_t *want = json_loads((const char *)big.data, 0, NULL);
    assert_true(json_equal(json_object_get(j, "summary"), want));
    json_decref(want);
    json_decref(j);
    assert_int_equal(cd_store_snapshot(r, d.ids[1], &j, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "summary"), "small")),
                     1);
    json_decref(j);
    cd_store_reader_put(st, r);
    cd_buf_free(&big);
    cd_store_close(st);
    st_done_free(&d);
}

static void test_close_flushes(void **state)
{
    struct fix *f = *state;
    struct cd_store_opts o;
    st_opts(&o, f->path, &f->clock);
    o.batch_linger_ms = 50;
    o.batch_max_snapshots = 64;
    struct cd_store *st = open_store(f, &o);
    struct st_done d;
    st_done_init(&d, 600);
    for (int i = 0; i < 500; i++)
        st_submit(st, st_snap("api", "a:1", "heap", i, &i, sizeof(i), "{}"), &d);
    cd_store_close(st);
    assert_int_equal(d.n, 500);
    assert_int_equal(d.n_ok, 500);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM snapshots"), 500);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM series"), 500);
    /* a clean close leaves no WAL behind */
    char *wal = cd_str_printf("%s-wal", f->path);
    assert_false(exists(wal));
    free(wal);
    st_done_free(&d);
}

/* ---- readers beside the writer ----------------------------------------------------------------
 */

static void test_readers_do_not_wait(void **state)
{
    struct fix *f = *state;
    struct cd_store *st = open_store(f, NULL);
    struct st_done d;
    st_done_init(&d, 4);
    st_submit(st, st_snap("api", "a:1", "heap", 1, "q", 1, NULL), &d);
    st_done_wait(&d, 1);
    /* Another connection holds the write lock with uncommitted changes, as the writer does in
     * the middle of a batch: readers still answer at once, from the last commit. */
    sqlite3 *w = NULL;
    assert_int_equal(sqlite3_open(f->path, &w), SQLITE_OK);
    assert_int_equal(sqlite3_exec(w,
                                  "BEGIN IMMEDIATE; DELETE FROM summaries; UPDATE targets SET "
                                  "job = 'changed'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    struct cd_store_reader *r = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_store_reader_get(st, &r, &err), 0);
    int64_t t = cdt_now_ms();
    json_t *j = NULL;
    assert_int_equal(cd_store_targets(r, &j, &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "job")), "api");
    json_decref(j);
    assert_int_equal(cd_store_stats(r, &j, &err), 0);
    json_decref(j);
    assert_true(cdt_now_ms() - t < 500);
    cd_store_reader_put(st, r);
    sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(w);
    cd_store_close(st);
    st_done_free(&d);
}

struct pool_waiter {
    struct cd_store *st;
    struct cd_store_reader *got;
    int rc;
};

static void *get_reader(void *arg)
{
    struct pool_waiter *w = arg;
    struct cd_err err;
    cd_err_init(&err);
    w->rc = cd_store_reader_get(w->st, &w->got, &err);
    return NULL;
}

/* The pool opens at most reader_pool readers: the next query waits for one to come back (the
 * same connection, not a new one) instead of opening a connection and a page cache per query. */
static void test_reader_pool_bounded(void **state)
{
    struct fix *f = *state;
    struct cd_store_opts o;
    st_opts(&o, f->path, &f->clock);
    o.reader_pool = 2;
    struct cd_store *st = open_store(f, &o);
    struct cd_err err;
    cd_err_init(&err);
    struct cd_store_reader *a = NULL, *b = NULL;
    assert_int_equal(cd_store_reader_get(st, &a, &err), 0);
    assert_int_equal(cd_store_reader_get(st, &b, &err), 0);
    struct pool_waiter w = {st, NULL, -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, get_reader, &w), 0);
    usleep(100 * 1000);
    assert_null(w.got); /* still waiting */
    cd_store_reader_put(st, b);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, 0);
    assert_ptr_equal(w.got, b);
    cd_store_reader_put(st, w.got);
    cd_store_reader_put(st, a);
    cd_store_close(st);
}

static void test_request_timeout(void **state)
{
    struct fix *f = *state;
    struct cd_store *st = open_store(f, NULL);
    struct st_done d;
    st_done_init(&d, 4);
    st_submit(st, st_snap("api", "a:1", "heap", 1, "q", 1, NULL), &d);
    st_done_wait(&d, 1);
    /* the writer is stuck in a done callback: a pin times out and is withdrawn */
    st_done_block(&d, true);
    st_submit(st, st_snap("api", "a:1", "heap", 2, "r", 1, NULL), &d);
    st_done_wait_entered(&d, 2);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_store_pin(st, d.ids[0], NULL, 100, &err), -ETIMEDOUT);
    st_done_block(&d, false);
    st_done_wait(&d, 2);
    assert_int_equal(st_sql_i64(f->path, "SELECT count(*) FROM snapshots WHERE pinned <> 0"), 0);
    cd_store_close(st);
    st_done_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_foreign_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_v1, setup, teardown),
        cmocka_unit_test(test_prepare),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pins_and_incidents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary_compressed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_do_not_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_pool_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
