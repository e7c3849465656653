/*
 * Upgrading: the current collectord started on a database written by the first schema version
 * migrates it in place, and nothing an operator pinned is lost, through the migration, a retention
 * run, a clean restart, a crash (SIGKILL) right after a pin, and a downgrade attempt (an older
 * collectord refuses a newer database without touching it).
 *
 * The version-1 database is made as a version-1 collectord would have left it: the schema from
 * cd_store_migrate(path, 1) (schema/001_initial.sql, nothing later), rows written with plain SQL
 * that only knows that schema — so no code of later versions touches it before the daemon does.
 */
#include "cdtest.h"
#include "daemon.h"
#include "hash.h"
#include "pkgutil.h"
#include "store.h"

#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_MS 30000

static const char *config_yaml = "storage:\n"
                                 "  path: @DIR@/collectord.db\n"
                                 "  retention:\n"
                                 "    max_age: 1d\n"
                                 "    downsample: []\n"
                                 "query:\n"
                                 "  socket: @DIR@/collectord.sock\n"
                                 "  socket_mode: \"0600\"\n"
                                 "limits:\n"
                                 "  shutdown_timeout: 5s\n"
                                 "scrape_configs:\n"
                                 "  - job_name: none\n"
                                 "    file_sd_configs:\n"
                                 "      - files: [@DIR@/targets.json]\n";

/* What the version-1 collectord stored: four goroutine dumps of one target. */
enum { SNAP_PINNED = 1, SNAP_INCIDENT = 2, SNAP_OLD = 3, SNAP_RECENT = 4 };
static const char dump[] = "goroutine 1 [running]:\nmain.main()\n\t/src/main.go:12 +0x1d\n";

static void sql(sqlite3 *db, const char *text)
{
    char *msg = NULL;
    if (sqlite3_exec(db, text, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("sql: %s: %s", msg, text);
}

static int64_t sql_i64(const char *path, const char *text)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, text, -1, &q, NULL) != SQLITE_OK)
        fail_msg("sql: %s: %s", sqlite3_errmsg(db), text);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static void make_v1_database(const char *path, int64_t now_ms)
{
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_migrate(path, 1, &err) != 0)
        fail_msg("cd_store_migrate: %s", cd_err_msg(&err));
    assert_int_equal(sql_i64(path, "PRAGMA user_version"), 1);

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    uint8_t hash[CD_HASH_SHA256_LEN];
    assert_int_equal(cd_hash_sha256(dump, sizeof(dump) - 1, hash), 0);
    char hex[2 * CD_HASH_SHA256_LEN + 1];
    for (size_t i = 0; i < CD_HASH_SHA256_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    char blob_hex[2 * sizeof(dump) + 1];
    for (size_t i = 0; i < sizeof(dump) - 1; i++)
        snprintf(blob_hex + 2 * i, 3, "%02x", (unsigned char)dump[i]);

    int64_t old = now_ms - 30LL * 24 * 3600 * 1000; /* a month ago: past max_age */
    int64_t recent = now_ms - 60 * 1000;
    char text[8192];
    snprintf(text, sizeof(text),
             "BEGIN;"
             "INSERT INTO targets VALUES (1, 'api', 'http', '127.0.0.1:6060', '127.0.0.1:6060', "
             "'{\"team\":\"payments\"}', %lld, %lld);"
             "INSERT INTO blobs VALUES (1, x'%s', 0, %zu, %zu, %lld, x'%s');"
             "INSERT INTO snapshots (id, target_id, kind, start_ms, duration_ms, scheduled_ms, "
             "committed_ms, status, http_status, request, format, content_type, raw_bytes, "
             "stored_bytes, encoding, sha256, blob_id, pinned) VALUES "
             "(%d, 1, 'goroutine_dump', %lld, 12, %lld, %lld, 'ok', 200, "
             "'http://127.0.0.1:6060/debug/pprof/goroutine?debug=2', 'goroutine_text', "
             "'text/plain; charset=utf-8', %zu, %zu, 0, x'%s', 1, 1),"
             "(%d, 1, 'goroutine_dump', %lld, 12, %lld, %lld, 'ok', 200, NULL, 'goroutine_text', "
             "NULL, %zu, %zu, 0, x'%s', 1, 0),"
             "(%d, 1, 'goroutine_dump', %lld, 12, %lld, %lld, 'ok', 200, NULL, 'goroutine_text', "
             "NULL, %zu, %zu, 0, x'%s', 1, 0),"
             "(%d, 1, 'goroutine_dump', %lld, 12, %lld, %lld, 'ok', 200, NULL, 'goroutine_text', "
             "NULL, %zu, %zu, 0, x'%s', 1, 0);"
             "INSERT INTO summaries VALUES (%d, '{\"goroutines\":1}'), (%d, '{\"goroutines\":1}');"
             "INSERT INTO series_names VALUES (1, 'goroutine_dump.count');"
             "INSERT INTO series VALUES (1, 1, %lld, %d, 1.0), (1, 1, %lld, %d, 1.0);"
             "INSERT INTO incidents VALUES (1, 'v1-outage', %lld);"
             "INSERT INTO incident_snapshots VALUES (1, %d, %lld);"
             "COMMIT;",
             (long long)old, (long long)recent, hex, sizeof(dump) - 1, sizeof(dump) - 1,
             (long long)old, blob_hex,
             /* pinned */ SNAP_PINNED, (long long)old, (long long)old, (long long)old + 20,
             sizeof(dump) - 1, sizeof(dump) - 1, hex,
             /* incident */ SNAP_INCIDENT, (long long)old + 1000, (long long)old + 1000,
             (long long)old + 1020, sizeof(dump) - 1, sizeof(dump) - 1, hex,
             /* old, unprotected */ SNAP_OLD, (long long)old + 2000, (long long)old + 2000,
             (long long)old + 2020, sizeof(dump) - 1, sizeof(dump) - 1, hex,
             /* recent */ SNAP_RECENT, (long long)recent, (long long)recent, (long long)recent + 20,
             sizeof(dump) - 1, sizeof(dump) - 1, hex, SNAP_PINNED, SNAP_RECENT, (long long)old,
             SNAP_PINNED, (long long)recent, SNAP_RECENT, (long long)old + 5000, SNAP_INCIDENT,
             (long long)old + 5000);
    sql(db, text);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    assert_int_equal(sql_i64(path, "PRAGMA user_version"), 1);
    assert_int_equal(sql_i64(path, "SELECT incidents FROM snapshots WHERE id = 2"), 1);
}

struct fix {
    struct cdt_daemon d;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    cdt_daemon_init(&f->d, "pkg-upgrade");
    cdt_daemon_write_config(&f->d, config_yaml);
    assert_int_equal(cdt_write_file(f->d.targets, "[]\n", 3), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    cdt_daemon_cleanup(&f->d);
    free(f);
    return 0;
}

static json_t *ctl_json(struct fix *f, const char *const args[])
{
    json_t *j = cdt_ctl_json(&f->d, 30000, args);
    if (j == NULL) {
        cdt_daemon_print_log(&f->d, 30);
        fail_msg("collectorctl -o json %s failed", args[0]);
    }
    return j;
}

static bool snapshot_pinned(struct fix *f, int id)
{
    char ids[16];
    snprintf(ids, sizeof(ids), "%d", id);
    const char *args[] = {"show", ids, NULL};
    json_t *j = ctl_json(f, args);
    json_t *s = json_object_get(j, "snapshot");
    if (s == NULL)
        s = j;
    bool pinned = json_is_true(json_object_get(s, "pinned"));
    json_decref(j);
    return pinned;
}

static bool snapshot_exists(struct fix *f, int id)
{
    char ids[16];
    snprintf(ids, sizeof(ids), "%d", id);
    const char *args[] = {"show", ids, NULL};
    return cdt_ctl(&f->d, NULL, 30000, args) == 0;
}

/* The protected history as the API shows it: what was pinned in version 1 still is, the incident
 * still holds its snapshot, and the raw bytes come back exactly. */
static void check_history(struct fix *f)
{
    assert_true(snapshot_pinned(f, SNAP_PINNED));
    assert_true(snapshot_exists(f, SNAP_INCIDENT));

    const char *inc[] = {"incidents", NULL};
    json_t *j = ctl_json(f, inc);
    json_t *list = json_object_get(j, "incidents");
    assert_true(json_array_size(list) >= 1);
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "name")), "v1-outage") == 0) {
            found = true;
            assert_int_equal(json_integer_value(json_object_get(v, "snapshots")), 1);
            assert_int_equal(json_integer_value(json_object_get(v, "targets")), 1);
        }
    }
    assert_true(found);
    json_decref(j);

    char *out = cdt_path(f->d.dir, "fetched.txt");
    unlink(out);
    const char *fetch[] = {"fetch", "1", "-o", out, NULL};
    assert_int_equal(cdt_ctl(&f->d, NULL, 30000, fetch), 0);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file(out, &data, &len), 0);
    assert_int_equal(len, sizeof(dump) - 1);
    assert_memory_equal(data, dump, len);
    free(data);
    free(out);
}

static void test_upgrade_from_v1(void **state)
{
    struct fix *f = *state;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    make_v1_database(f->d.db, now_ms);

    cdt_daemon_start(&f->d, NULL, START_MS);
    /* migrated in place */
    assert_int_equal(sql_i64(f->d.db, "PRAGMA user_version"), cd_store_schema_version());
    const char *status[] = {"status", NULL};
    json_t *j = ctl_json(f, status);
    json_t *db = json_object_get(j, "database");
    assert_int_equal(json_integer_value(json_object_get(db, "snapshots")), 4);
    json_decref(j);
    check_history(f);

    /* Retention after the migration: the old unprotected snapshot goes, the protected stay. */
    const char *prune[] = {"prune", NULL};
    json_t *p = ctl_json(f, prune);
    assert_int_equal(json_integer_value(json_object_get(p, "deleted_snapshots")), 1);
    json_decref(p);
    assert_false(snapshot_exists(f, SNAP_OLD));
    assert_true(snapshot_exists(f, SNAP_RECENT));
    check_history(f);
    /* the series point of the pinned snapshot lives on with it */
    assert_int_equal(sql_i64(f->d.db, "SELECT count(*) FROM series WHERE snapshot_id = 1"), 1);

    /* A clean restart. */
    assert_int_equal(cdt_daemon_stop(&f->d, SIGTERM, START_MS), 0);
    cdt_daemon_start(&f->d, NULL, START_MS);
    check_history(f);

    /* A pin, then a crash: the pin was committed before collectorctl heard back. */
    const char *pin[] = {"pin", "4", NULL};
    assert_int_equal(cdt_ctl(&f->d, NULL, 30000, pin), 0);
    int st = cdt_daemon_stop(&f->d, SIGKILL, START_MS);
    assert_true(WIFSIGNALED(st));
    cdt_daemon_start(&f->d, NULL, START_MS);
    assert_true(snapshot_pinned(f, SNAP_RECENT));
    check_history(f);
    assert_int_equal(cdt_daemon_stop(&f->d, SIGTERM, START_MS), 0);
    assert_int_equal(sql_i64(f->d.db, "PRAGMA user_version"), cd_store_schema_version());
}

/* A database from a newer collectord (a downgrade, or two versions sharing a path): refused at
 * start, exit 1, file unchanged. */
static void test_newer_database_refused(void **state)
{
    struct fix *f = *state;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_store_migrate(f->d.db, cd_store_schema_version(), &err), 0);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->d.db, &db), SQLITE_OK);
    char text[64];
    snprintf(text, sizeof(text), "PRAGMA user_version = %d", cd_store_schema_version() + 1);
    sql(db, text);
    sqlite3_close(db);

    char *out = NULL;
    int rc = pk_sh(&out, START_MS, "'%s' -c '%s' --log-style plain", cdt_env("CD_COLLECTORD"),
                   f->d.config);
    assert_int_equal(rc, 1);
    if (strstr(out, "newer") == NULL || strstr(out, f->d.db) == NULL)
        fail_msg("the refusal should name the file and say it is newer: %s", out);
    free(out);
    assert_int_equal(sql_i64(f->d.db, "PRAGMA user_version"), cd_store_schema_version() + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upgrade_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_database_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
