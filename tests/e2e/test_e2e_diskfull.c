/*
 * End to end, a full disk: the real collectord keeps its database on a 16 MiB tmpfs this test
 * mounts (as root; skipped with a message otherwise) and scrapes one fleet process every second.
 * Once it has stored whole snapshots, a filler file takes every free byte. collectord must stay
 * up, say in its log and in `collectorctl status` that the disk is full and where, go on
 * recording metadata-only snapshots (marked dropped), answer queries, and store whole snapshots
 * again — without a restart — once the filler is deleted. Then it stops cleanly and the file
 * passes PRAGMA integrity_check.
 */
#include "e2e.h"

#include "str.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char job_yaml[] = "    profiling_config:\n"
                               "      pprof_config:\n"
                               "        cpu: {enabled: false}\n"
                               "        goroutine_dump: {enabled: true}\n";

struct state {
    struct cdt_fleet fleet;
    struct cdt_daemon d;
    char *mnt;
    char *db;
    char *filler;
    bool mounted;
};

static int setup(void **st)
{
    struct state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    cdt_daemon_init(&s->d, "e2e-diskfull");
    s->mnt = cdt_path(s->d.dir, "disk");
    s->db = cdt_path(s->mnt, "collectord.db");
    s->filler = cdt_path(s->mnt, "filler");
    assert_int_equal(mkdir(s->mnt, 0700), 0);
    s->mounted = geteuid() == 0 && mount("tmpfs", s->mnt, "tmpfs", 0, "size=16m,mode=0700") == 0;
    *st = s;
    return 0;
}

static int teardown(void **st)
{
    struct state *s = *st;
    if (s->d.pid > 0)
        cdt_daemon_stop(&s->d, SIGKILL, 15000);
    if (s->mounted)
        umount2(s->mnt, MNT_DETACH);
    cdt_daemon_cleanup(&s->d);
    if (s->fleet.n > 0)
        cdt_fleet_stop(&s->fleet);
    free(s->mnt);
    free(s->db);
    free(s->filler);
    free(s);
    return 0;
}

/* Writes zeros to path until the filesystem refuses more; returns the bytes written. */
static long long fill_up(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static const char block[64 * 1024];
    long long total = 0;
    for (;;) {
        ssize_t n = write(fd, block, sizeof(block));
        if (n <= 0) {
            assert_true(n == 0 || errno == ENOSPC);
            break;
        }
        total += n;
    }
    close(fd);
    return total;
}

static int64_t db_snapshots(const json_t *status)
{
    return e2e_jint(json_object_get(status, "database"), "snapshots", -1);
}

static bool disk_full(const json_t *status, void *ctx)
{
    (void)ctx;
    return json_is_true(json_object_get(json_object_get(status, "database"), "disk_full"));
}

static bool disk_ok(const json_t *status, void *ctx)
{
    (void)ctx;
    return json_is_false(json_object_get(json_object_get(status, "database"), "disk_full"));
}

static bool more_than(const json_t *status, void *ctx)
{
    return db_snapshots(status) > *(int64_t *)ctx;
}

/* Snapshots started after since_ms: how many kept their bytes, how many were marked dropped. */
static void count_since(struct cdt_daemon *d, int64_t since_ms, int *whole, int *dropped)
{
    json_t *all = e2e_snapshots(d, NULL, 20);
    *whole = *dropped = 0;
    size_t i;
    json_t *sn;
    json_array_foreach(all, i, sn)
    {
        if (e2e_jint(sn, "time_unix_ms", 0) < since_ms)
            continue;
        if (e2e_jstr(sn, "dropped") != NULL)
            (*dropped)++;
        else if (strcmp(e2e_jstr(sn, "status") ? e2e_jstr(sn, "status") : "", "ok") == 0)
            (*whole)++;
    }
    json_decref(all);
}

static int64_t newest_start(struct cdt_daemon *d)
{
    json_t *all = e2e_snapshots(d, NULL, 1);
    int64_t t = e2e_jint(json_array_get(all, 0), "time_unix_ms", 0);
    json_decref(all);
    return t;
}

static void test_disk_full(void **st)
{
    struct state *s = *st;
    if (!s->mounted) {
        print_message("skipped: cannot mount a 16 MiB tmpfs on %s (needs root)\n", s->mnt);
        skip();
    }
    const char *fargs[] = {"-workload", "leak", NULL};
    assert_int_equal(cdt_fleet_start(&s->fleet, fargs, 30000), 0);
    char *yaml = cdt_daemon_default_config("1s", job_yaml);
    static const char from[] = "@DIR@/collectord.db";
    const char *at = strstr(yaml, from);
    assert_non_null(at);
    char *moved = cd_str_printf("%.*s@DIR@/disk/collectord.db%s", (int)(at - yaml), yaml,
                                at + sizeof(from) - 1);
    assert_non_null(moved);
    cdt_daemon_write_config(&s->d, moved);
    free(moved);
    free(yaml);
    cdt_daemon_write_targets(&s->d, &s->fleet, true);
    cdt_daemon_start(&s->d, NULL, 30000);

    /* Whole snapshots first. */
    const char *status_args[] = {"status", NULL};
    int64_t some = 20;
    json_t *j = cdt_ctl_wait(&s->d, status_args, more_than, &some, 60000);
    assert_non_null(j);
    json_decref(j);

    /* Then no free byte left. */
    long long filled = fill_up(s->filler);
    print_message("filler: %lld bytes\n", filled);
    e2e_wait_log(&s->d, "storing metadata-only records until space is freed", 60000);
    assert_true(e2e_log_contains(&s->d, s->db)); /* says which file */
    j = cdt_ctl_wait(&s->d, status_args, disk_full, NULL, 30000);
    assert_non_null(j);
    const char *last = e2e_jstr(json_object_get(j, "database"), "last_error");
    assert_non_null(last);
    print_message("status while full: %s\n", last);
    int64_t full_at = newest_start(&s->d);
    int64_t n_full = db_snapshots(j);
    json_decref(j);

    /* Still up and still recording: metadata-only snapshots, marked dropped. */
    int64_t want = n_full + 10;
    j = cdt_ctl_wait(&s->d, status_args, more_than, &want, 60000);
    assert_non_null(j);
    json_decref(j);
    int whole = 0, dropped = 0;
    count_since(&s->d, full_at + 1, &whole, &dropped);
    print_message("while full: %d whole, %d dropped\n", whole, dropped);
    assert_true(dropped > 0);
    assert_true(kill(s->d.pid, 0) == 0);

    /* Space again: whole snapshots again, same process. */
    pid_t pid = s->d.pid;
    assert_int_equal(unlink(s->filler), 0);
    e2e_wait_log(&s->d, "disk space is back", 60000);
    j = cdt_ctl_wait(&s->d, status_args, disk_ok, NULL, 30000);
    assert_non_null(j);
    json_decref(j);
    int64_t back_at = newest_start(&s->d);
    int64_t n_back = db_snapshots(j = cdt_ctl_json(&s->d, 30000, status_args));
    json_decref(j);
    want = n_back + 10;
    j = cdt_ctl_wait(&s->d, status_args, more_than, &want, 60000);
    assert_non_null(j);
    json_decref(j);
    count_since(&s->d, back_at + 1, &whole, &dropped);
    print_message("after space came back: %d whole, %d dropped\n", whole, dropped);
    assert_true(whole > 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(s->d.pid, pid);

    int ws = cdt_daemon_stop(&s->d, SIGTERM, 30000);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    sqlite3 *db = e2e_db_open(s->db);
    e2e_db_integrity(db);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
