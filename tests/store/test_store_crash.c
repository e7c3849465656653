/*
 * Crash safety: store_ingest is SIGKILLed at random moments (while opening and migrating, while
 * ingesting, mid-batch, mid-checkpoint) at least 50 times. After each kill the database passes
 * PRAGMA integrity_check and foreign_key_check, and every snapshot the program reported committed
 * is there with identical bytes (SHA-256 of what was submitted). Restarts alternate between
 * the ingest program recovering the hot WAL itself and this test opening the store first.
 *
 * Usage (ctest passes it): test_store_crash STORE_INGEST [ITERATIONS]
 */
#include "cdtest.h"
#include "hash.h"
#include "store.h"
#include "str.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

static const char *ingest_bin;
static int iterations = 50;

struct committed {
    int64_t id;
    char hex[CD_HASH_SHA256_HEX];
};

struct ledger {
    struct committed *v;
    size_t n, cap;
};

static void ledger_add(struct ledger *l, int64_t id, const char *hex)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        assert_non_null(l->v);
    }
    l->v[l->n].id = id;
    cd_str_copy(l->v[l->n].hex, hex, sizeof(l->v[l->n].hex));
    l->n++;
}

/* Appends the complete "committed" lines of a log to the ledger; returns how many. */
static size_t read_log(const char *path, struct ledger *l)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (cdt_read_file(path, &data, &len) != 0)
        return 0;
    size_t n = 0;
    char *p = (char *)data;
    for (;;) {
        char *nl = strchr(p, '\n');
        if (nl == NULL)
            break; /* a line cut by the kill is not a report */
        *nl = '\0';
        if (cd_str_has_prefix(p, "committed ")) {
            char *sp = strchr(p + 10, ' ');
            assert_non_null(sp);
            *sp = '\0';
            int64_t id = 0;
            assert_int_equal(cd_str_to_i64(p + 10, &id), 0);
            ledger_add(l, id, sp + 1);
            n++;
        }
        p = nl + 1;
    }
    free(data);
    return n;
}

struct size_ctx {
    const char *path;
    off_t min;
};

static bool log_has_lines(void *ctx)
{
    struct size_ctx *c = ctx;
    struct stat sb;
    return stat(c->path, &sb) == 0 && sb.st_size > c->min;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Integrity, foreign keys and the bytes of ledger entries [from, n), with a read-only connection
 * of our own: nothing is checkpointed, the next run meets the WAL as the kill left it. */
static void verify_raw_sql(const char *db_path, const struct ledger *l, size_t from)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "ok");
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT s.sha256, b.encoding, b.raw_len, b.data FROM "
                                        "snapshots s LEFT JOIN blobs b ON b.id = s.blob_id "
                                        "WHERE s.id = ?1",
                                        -1, &q, NULL),
                     SQLITE_OK);
    for (size_t i = from; i < l->n; i++) {
        sqlite3_bind_int64(q, 1, l->v[i].id);
        if (sqlite3_step(q) != SQLITE_ROW)
            fail_msg("snapshot %lld was reported committed but is gone", (long long)l->v[i].id);
        if (strcmp(l->v[i].hex, "-") != 0) {
            size_t raw_len = (size_t)sqlite3_column_int64(q, 2);
            const void *data = sqlite3_column_blob(q, 3);
            size_t len = (size_t)sqlite3_column_bytes(q, 3);
            uint8_t *raw = malloc(raw_len + 1);
            assert_non_null(raw);
            if (sqlite3_column_int(q, 1) == CD_STORE_ENC_ZSTD) {
                assert_int_equal(ZSTD_decompress(raw, raw_len, data, len), raw_len);
            } else {
                assert_int_equal(len, raw_len);
                memcpy(raw, data, len);
            }
            uint8_t h[CD_HASH_SHA256_LEN];
            char hex[CD_HASH_SHA256_HEX];
            cd_hash_sha256(raw, raw_len, h);
            cd_hash_hex(h, sizeof(h), hex);
            assert_string_equal(hex, l->v[i].hex);
            free(raw);
        }
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* The same through the store itself (which recovers, checkpoints and reads as the daemon does). */
static void verify_store(const char *db_path, const struct ledger *l, size_t from)
{
    struct cd_store_opts o;
    cd_store_opts_default(&o);
    o.path = db_path;
    struct cd_store *st = NULL;
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_open(&o, &st, &err) != 0)
        fail_msg("reopen after kill: %s", cd_err_msg(&err));
    struct cd_store_reader *r = NULL;
    assert_int_equal(cd_store_reader_get(st, &r, &err), 0);
    for (size_t i = from; i < l->n; i++) {
        struct cd_store_raw raw;
        cd_err_init(&err);
        int rc = cd_store_raw(r, l->v[i].id, 0, &raw, &err);
        if (strcmp(l->v[i].hex, "-") == 0) {
            assert_int_equal(rc, -ENOENT); /* a failure record without bytes */
            json_t *j = NULL;
            assert_int_equal(cd_store_snapshot(r, l->v[i].id, &j, &err), 0);
            json_decref(j);
            continue;
        }
        if (rc != 0)
            fail_msg("snapshot %lld: %s", (long long)l->v[i].id, cd_err_msg(&err));
        assert_string_equal(raw.sha256, l->v[i].hex);
        uint8_t h[CD_HASH_SHA256_LEN];
        char hex[CD_HASH_SHA256_HEX];
        cd_hash_sha256(raw.data, raw.len, h);
        cd_hash_hex(h, sizeof(h), hex);
        assert_string_equal(hex, l->v[i].hex);
        cd_store_raw_free(&raw);
    }
    cd_store_reader_put(st, r);
    cd_store_close(st);
}

static void test_kill_loop(void **state)
{
    (void)state;
    char *dir = cdt_tmpdir("crash");
    char *db = cdt_path(dir, "crash.db");
    struct ledger l = {0};
    unsigned seed = (unsigned)time(NULL);
    print_message("seed %u, %d kills\n", seed, iterations);
    srand(seed);
    size_t early_kills = 0, mid_kills = 0;
    int64_t t0 = cdt_now_ms();
    for (int it = 0; it < iterations; it++) {
        char name[32];
        snprintf(name, sizeof(name), "ingest-%d.log", it);
        char *log = cdt_path(dir, name);
        char seed_arg[32];
        snprintf(seed_arg, sizeof(seed_arg), "%u", seed + (unsigned)it);
        char *argv[] = {(char *)ingest_bin, db, seed_arg, NULL};
        pid_t pid = cdt_spawn(argv, log);
        assert_true(pid > 0);
        if (it % 5 == 1) {
            /* while it opens, recovers the WAL, migrates */
            sleep_ms(rand() % 25);
            early_kills++;
        } else {
            /* once it commits, at a random moment of its ingest */
            struct size_ctx c = {log, 16};
            if (cdt_wait_until(log_has_lines, &c, 10000) != 0)
                fail_msg("store_ingest made no progress (see %s)", log);
            sleep_ms(rand() % 120);
            mid_kills++;
        }
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status)) {
            uint8_t *out = NULL;
            size_t len = 0;
            cdt_read_file(log, &out, &len);
            fail_msg("store_ingest exited by itself (status %d): %s", status,
                     out != NULL ? (char *)out : "");
        }
        size_t before = l.n;
        read_log(log, &l);
        if (it % 10 == 9)
            verify_store(db, &l, before);
        else
            verify_raw_sql(db, &l, before);
        free(log);
    }
    /* everything ever reported, once more, through the store */
    verify_store(db, &l, 0);
    verify_raw_sql(db, &l, 0);
    print_message("%d kills (%zu while opening, %zu while ingesting), %zu snapshots committed "
                  "and verified, %lld ms\n",
                  iterations, early_kills, mid_kills, l.n, (long long)(cdt_now_ms() - t0));
    assert_true(l.n >= (size_t)iterations * 10);
    free(l.v);
    cdt_rmrf(dir);
    free(db);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_store_crash STORE_INGEST [ITERATIONS]\n");
        return 2;
    }
    ingest_bin = argv[1];
    if (argc > 2 && cd_str_to_int(argv[2], 1, 100000, &iterations) < 0)
        return 2;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
