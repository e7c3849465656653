/*
 * collectord as a systemd service, seen from systemd's side: this test plays the service manager
 * around the collectord of the build tree, as collectord.service and collectord.socket ask it to.
 *   - Type=notify, NotifyAccess=main: READY=1 (with MAINPID) comes from the main pid, and only
 *     once the query socket answers; STATUS= lines; STOPPING=1 on SIGTERM, then exit 0.
 *   - WatchdogSec=: with WATCHDOG_USEC set, WATCHDOG=1 arrives every half period.
 *   - ExecReload= (SIGHUP): RELOADING=1 then READY=1, for a valid config and for an invalid one
 *     (which keeps the running config and the daemon up).
 *   - collectord.socket: a listening socket passed as fd 3 (LISTEN_FDS/LISTEN_PID) is served as
 *     the query socket without being re-bound; stopping collectord leaves it in place, and a client
 *     that connects while collectord is down is answered by the next collectord started on it.
 */
#include "cdtest.h"
#include "daemon.h"
#include "pkgutil.h"
#include "str.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <unistd.h>

/* Slow builds (ASan) start in well under this. */
#define START_MS 30000

static const char *config_yaml = "storage:\n"
                                 "  path: @DIR@/collectord.db\n"
                                 "query:\n"
                                 "  socket: @DIR@/collectord.sock\n"
                                 "  socket_mode: \"0600\"\n"
                                 "limits:\n"
                                 "  shutdown_timeout: 5s\n"
                                 "scrape_configs:\n"
                                 "  - job_name: none\n"
                                 "    file_sd_configs:\n"
                                 "      - files: [@DIR@/targets.json]\n";

struct fix {
    struct cdt_daemon d;
    struct pk_notify nt;
    int log_fd;
    char notify_env[160];
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    cdt_daemon_init(&f->d, "pkg-notify");
    cdt_daemon_write_config(&f->d, config_yaml);
    assert_int_equal(cdt_write_file(f->d.targets, "[]\n", 3), 0);
    pk_notify_open(&f->nt, f->d.dir);
    snprintf(f->notify_env, sizeof(f->notify_env), "NOTIFY_SOCKET=%s", f->nt.path);
    f->log_fd = open(f->d.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    assert_true(f->log_fd >= 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    close(f->log_fd);
    pk_notify_close(&f->nt);
    cdt_daemon_cleanup(&f->d);
    free(f);
    return 0;
}

/* What systemd would not pass to this service. */
static const char *const unset_env[] = {
    "WATCHDOG_USEC",  "WATCHDOG_PID",   "LISTEN_FDS", "LISTEN_PID",
    "LISTEN_FDNAMES", "JOURNAL_STREAM", NULL};

static pid_t start(struct fix *f, const char *const env[], int listen_fd)
{
    char *argv[] = {(char *)cdt_env("CD_COLLECTORD"), "-c", f->d.config, NULL};
    char *wrapped[] = {"/bin/sh", "-c",    "LISTEN_PID=$$; export LISTEN_PID; exec \"$0\" \"$@\"",
                       argv[0],   argv[1], argv[2],
                       NULL};
    /* LISTEN_PID must be the service's own pid: a shell that execs keeps its pid. */
    pid_t pid = pk_spawn(listen_fd >= 0 ? wrapped : argv, env, unset_env, f->log_fd, listen_fd);
    assert_true(pid > 0);
    f->d.pid = pid;
    return pid;
}

static void expect_ready(struct fix *f, pid_t pid, size_t from, int *idx)
{
    int i = pk_notify_wait(&f->nt, "READY=1", from, pid, START_MS);
    if (i < 0) {
        pk_notify_dump(&f->nt);
        pk_log_tail(f->d.log, 30);
        fail_msg("no READY=1 from pid %d", (int)pid);
    }
    *idx = i;
}

static void expect_clean_exit(struct fix *f, pid_t pid)
{
    size_t before = f->nt.n;
    assert_int_equal(kill(pid, SIGTERM), 0);
    if (pk_notify_wait(&f->nt, "STOPPING=1", before, pid, START_MS) < 0) {
        pk_notify_dump(&f->nt);
        fail_msg("no STOPPING=1 after SIGTERM");
    }
    int st = pk_wait(pid, START_MS);
    f->d.pid = 0;
    if (st == -1) {
        pk_kill(pid);
        fail_msg("collectord did not exit after SIGTERM");
    }
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_notify_watchdog_reload_stop(void **state)
{
    struct fix *f = *state;
    /* 300 ms: pings every 150 ms, so a few arrive in well under a second. */
    const char *env[] = {f->notify_env, "WATCHDOG_USEC=300000", NULL};
    pid_t pid = start(f, env, -1);

    int ready = -1;
    expect_ready(f, pid, 0, &ready);
    char *mainpid = pk_notify_value(&f->nt, (size_t)ready, "MAINPID");
    assert_non_null(mainpid);
    int mp = 0;
    assert_int_equal(cd_str_to_int(mainpid, 1, INT_MAX, &mp), 0);
    assert_int_equal(mp, (int)pid);
    free(mainpid);
    /* Ready means serving: the first try answers, no retrying. */
    const char *status[] = {"status", NULL};
    assert_int_equal(cdt_ctl(&f->d, NULL, 10000, status), 0);

    /* The watchdog: three pings after READY. */
    size_t from = (size_t)ready;
    for (int i = 0; i < 3; i++) {
        int w = pk_notify_wait(&f->nt, "WATCHDOG=1", from, pid, 5000);
        if (w < 0) {
            pk_notify_dump(&f->nt);
            fail_msg("watchdog ping %d missing", i + 1);
        }
        from = (size_t)w + 1;
    }

    /* ExecReload=: SIGHUP with a valid config */
    size_t before = f->nt.n;
    assert_int_equal(kill(pid, SIGHUP), 0);
    int r = pk_notify_wait(&f->nt, "RELOADING=1", before, pid, START_MS);
    assert_true(r >= 0);
    int again = -1;
    expect_ready(f, pid, (size_t)r + 1, &again);
    assert_true(pk_log_wait(f->d.log, "reload: configuration from", 10000));

    /* ...and with an invalid one: the running config stays and READY=1 still follows. */
    static const char bad[] = "scrape_configs:\n  - job_name: [\n";
    assert_int_equal(cdt_write_file(f->d.config, bad, sizeof(bad) - 1), 0);
    before = f->nt.n;
    assert_int_equal(kill(pid, SIGHUP), 0);
    r = pk_notify_wait(&f->nt, "RELOADING=1", before, pid, START_MS);
    assert_true(r >= 0);
    expect_ready(f, pid, (size_t)r + 1, &again);
    assert_true(pk_log_wait(f->d.log, "the running configuration stays", 10000));
    assert_int_equal(cdt_ctl(&f->d, NULL, 10000, status), 0);
    cdt_daemon_write_config(&f->d, config_yaml);

    /* NotifyAccess=main: every message came from the main pid, and some said how it goes. */
    for (size_t i = 0; i < f->nt.n; i++)
        assert_int_equal(f->nt.pids[i], pid);
    char *st = pk_notify_value(&f->nt, (size_t)ready, "STATUS");
    assert_non_null(st);
    free(st);

    expect_clean_exit(f, pid);
}

/* A listening Unix socket at path, as collectord.socket makes it. */
static int listen_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(chmod(path, 0660), 0);
    assert_int_equal(listen(fd, 16), 0);
    return fd;
}

static void test_socket_activation(void **state)
{
    struct fix *f = *state;
    int lfd = listen_unix(f->d.socket);
    struct stat before;
    assert_int_equal(stat(f->d.socket, &before), 0);
    const char *env[] = {f->notify_env, "LISTEN_FDS=1", "LISTEN_FDNAMES=collectord.socket", NULL};

    pid_t pid = start(f, env, lfd);
    int ready = -1;
    expect_ready(f, pid, 0, &ready);
    assert_true(pk_log_wait(f->d.log, "query: using the socket systemd passed in", 5000));
    const char *status[] = {"status", NULL};
    assert_int_equal(cdt_ctl(&f->d, NULL, 10000, status), 0);
    struct stat now;
    assert_int_equal(stat(f->d.socket, &now), 0);
    assert_true(now.st_ino == before.st_ino); /* served, not re-bound */
    expect_clean_exit(f, pid);
    /* systemd's socket outlives the service */
    assert_int_equal(stat(f->d.socket, &now), 0);
    assert_true(now.st_ino == before.st_ino);

    /* A client arriving while collectord is down waits in the backlog... */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, f->d.socket, strlen(f->d.socket) + 1);
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
    static const char req[] = "GET /api/v1/status HTTP/1.1\r\nHost: collectord\r\n"
                              "Connection: close\r\n\r\n";
    assert_int_equal(write(c, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));

    /* ...and the next collectord started on the same socket answers it. */
    size_t from = f->nt.n;
    pid = start(f, env, lfd);
    expect_ready(f, pid, from, &ready);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char resp[256];
    ssize_t n = read(c, resp, sizeof(resp) - 1);
    assert_true(n > 12);
    resp[n] = '\0';
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0)
        fail_msg("the waiting client got: %s", resp);
    close(c);
    expect_clean_exit(f, pid);
    close(lfd);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    close(s);
    return ntohs(sa.sin_port);
}

/* Rotating the TCP token (a new token_file content, then a reload) restarts the query server; a
 * socket that came from systemd must stay served: it cannot be bound again, systemd holds it. */
static void test_socket_activation_token_rotation(void **state)
{
    struct fix *f = *state;
    char *token = cdt_path(f->d.dir, "token");
    static const char t1[] = "first-token-0123456789\n", t2[] = "second-token-0123456789\n";
    assert_int_equal(cdt_write_file(token, t1, sizeof(t1) - 1), 0);
    assert_int_equal(chmod(token, 0600), 0);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "%s"
             "query:\n"
             "  socket: @DIR@/collectord.sock\n"
             "  socket_mode: \"0600\"\n"
             "  listen: \"127.0.0.1:%d\"\n"
             "  token_file: %s\n",
             strstr(config_yaml, "limits:"), free_port(), token);
    char full[1400];
    snprintf(full, sizeof(full), "storage:\n  path: @DIR@/collectord.db\n%s", yaml);
    cdt_daemon_write_config(&f->d, full);
    int lfd = listen_unix(f->d.socket);
    const char *env[] = {f->notify_env, "LISTEN_FDS=1", NULL};
    pid_t pid = start(f, env, lfd);
    int ready = -1;
    expect_ready(f, pid, 0, &ready);
    const char *status[] = {"status", NULL};
    assert_int_equal(cdt_ctl(&f->d, NULL, 10000, status), 0);

    assert_int_equal(cdt_write_file(token, t2, sizeof(t2) - 1), 0);
    size_t before = f->nt.n;
    assert_int_equal(kill(pid, SIGHUP), 0);
    int r = pk_notify_wait(&f->nt, "RELOADING=1", before, pid, START_MS);
    assert_true(r >= 0);
    expect_ready(f, pid, (size_t)r + 1, &ready);
    if (cdt_ctl(&f->d, NULL, 10000, status) != 0) {
        pk_log_tail(f->d.log, 20);
        fail_msg("the socket from systemd is no longer served after the token changed");
    }
    expect_clean_exit(f, pid);
    close(lfd);
    free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_notify_watchdog_reload_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_activation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_activation_token_rotation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
