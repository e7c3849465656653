/*
 * A full disk: the database lives on an 8 MiB tmpfs this test mounts (as root; skipped with a
 * message otherwise), next to a filler file. Snapshots are stored until the disk fills; the store
 * stays up, reports the full disk once (with the path and SQLite's message), keeps metadata-only
 * records while it can, and stores whole snapshots again as soon as the filler is deleted,
 * without being reopened.
 */
#include "storetest.h"

#include "cdtest.h"
#include "str.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

struct events {
    pthread_mutex_t mu;
    int full, recovered, errors;
    char full_msg[1024];
};

static void on_event(const struct cd_store_event *ev, void *ctx)
{
    struct events *e = ctx;
    pthread_mutex_lock(&e->mu);
    if (ev->type == CD_STORE_EV_DISK_FULL) {
        e->full++;
        cd_str_copy(e->full_msg, ev->msg, sizeof(e->full_msg));
    } else if (ev->type == CD_STORE_EV_DISK_RECOVERED) {
        e->recovered++;
    } else if (ev->type == CD_STORE_EV_WRITE_ERROR) {
        e->errors++;
    }
    pthread_mutex_unlock(&e->mu);
}

/* Stores one 256 KiB snapshot and waits for its outcome. */
static int store_one(struct cd_store *st, struct st_done *d, int i, int64_t *id)
{
    static uint8_t raw[256 * 1024];
    st_fill_gzipish(raw, sizeof(raw), 1000 + (uint64_t)i);
    size_t before = st_done_count(d);
    st_submit(st, st_snap("fill", "a:1", "heap", 1700000000000 + i, raw, sizeof(raw), "{\"x\":1}"),
              d);
    st_done_wait(d, before + 1);
    *id = d->ids[before];
    return d->rcs[before];
}

struct fix {
    char *dir;
    bool mounted;
};

/* Mounts the small filesystem; the teardown unmounts it whatever the test did. */
static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = cdt_tmpdir("diskfull");
    if (geteuid() == 0 && mount("tmpfs", f->dir, "tmpfs", 0, "size=8m") == 0)
        f->mounted = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    if (f->mounted && umount(f->dir) != 0)
        fprintf(stderr, "umount %s: %s\n", f->dir, strerror(errno));
    cdt_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void test_disk_full(void **state)
{
    struct fix *f = *state;
    if (!f->mounted) {
        print_message("skipped: cannot mount an 8 MiB tmpfs on %s (needs root)\n", f->dir);
        skip();
    }
    char *db = cdt_path(f->dir, "collectord.db");
    char *filler = cdt_path(f->dir, "filler");
    static uint8_t fill[3 << 20];
    assert_int_equal(cdt_write_file(filler, fill, sizeof(fill)), 0);

    struct events ev = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, ""};
    struct cd_store_opts o;
    st_opts(&o, db, NULL);
    o.disk_full_retry_ms = 0;          /* probe for space at every batch */
    o.disk_reserve_bytes = 512 * 1024; /* headroom for metadata records */
    o.on_event = on_event;
    o.event_ctx = &ev;
    struct cd_store *st = NULL;
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_open(&o, &st, &err) != 0)
        fail_msg("open: %s", cd_err_msg(&err));
    struct st_done d;
    st_done_init(&d, 1000);

    int stored = 0, meta_only = 0, dropped = 0, i = 0;
    int64_t id = 0;
    /* fill it up, then go on for a while */
    for (int after_full = 0; i < 200 && after_full < 20; i++) {
        int rc = store_one(st, &d, i, &id);
        if (rc == 0) {
            assert_int_equal(meta_only + dropped, 0); /* no whole snapshot while full */
            stored++;
        } else {
            assert_int_equal(rc, -ENOSPC);
            after_full++;
            if (id > 0)
                meta_only++;
            else
                dropped++;
        }
    }
    print_message("stored %d whole, %d metadata-only, %d dropped\n", stored, meta_only, dropped);
    assert_true(stored > 0);
    assert_true(meta_only + dropped == 20);
    assert_true(meta_only > 0);
    pthread_mutex_lock(&ev.mu);
    assert_int_equal(ev.full, 1); /* once */
    assert_int_equal(ev.recovered, 0);
    assert_non_null(strstr(ev.full_msg, db));
    assert_non_null(strstr(ev.full_msg, "full"));
    pthread_mutex_unlock(&ev.mu);

    /* still up: it answers, and says so */
    struct cd_store_reader *r = NULL;
    assert_int_equal(cd_store_reader_get(st, &r, &err), 0);
    json_t *j = NULL;
    assert_int_equal(cd_store_stats(r, &j, &err), 0);
    json_t *w = json_object_get(j, "writer");
    assert_true(json_is_true(json_object_get(w, "disk_full")));
    assert_non_null(strstr(json_string_value(json_object_get(w, "last_error")), db));
    assert_int_equal(json_integer_value(json_object_get(w, "metadata_only")), meta_only);
    json_decref(j);
    struct cd_store_query q = {0};
    q.limit = 1000;
    assert_int_equal(cd_store_list(r, &q, &j, &err), 0);
    size_t with_drop = 0;
    json_t *rows = json_object_get(j, "snapshots");
    for (size_t k = 0; k < json_array_size(rows); k++)
        with_drop += json_is_string(json_object_get(json_array_get(rows, k), "dropped"));
    assert_int_equal(json_array_size(rows), stored + meta_only);
    assert_int_equal(with_drop, meta_only);
    json_decref(j);

    /* space comes back: whole snapshots again, same store */
    assert_int_equal(unlink(filler), 0);
    int rc = store_one(st, &d, i++, &id);
    assert_int_equal(rc, 0);
    struct cd_store_raw raw;
    assert_int_equal(cd_store_raw(r, id, 0, &raw, &err), 0);
    assert_int_equal(raw.len, 256 * 1024);
    cd_store_raw_free(&raw);
    pthread_mutex_lock(&ev.mu);
    assert_int_equal(ev.recovered, 1);
    pthread_mutex_unlock(&ev.mu);
    assert_int_equal(cd_store_stats(r, &j, &err), 0);
    assert_true(json_is_false(json_object_get(json_object_get(j, "writer"), "disk_full")));
    json_decref(j);
    cd_store_reader_put(st, r);
    cd_store_close(st);
    assert_int_equal(st_sql_i64(db, "SELECT count(*) FROM pragma_integrity_check WHERE "
                                    "integrity_check <> 'ok'"),
                     0);

    st_done_free(&d);
    free(filler);
    free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
