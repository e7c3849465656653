/*
 * The fleet as processes: the single target and its list file, gops port files (where, what,
 * removed on a clean exit), -no-gops, the -n launcher (distinct processes, round-robin
 * assignment, children stopped with it, children gone when it is SIGKILLed), -exit-after,
 * -ports (many listeners per process, each listed as a target) and -arrivals, flag errors.
 */
#include "cdtest.h"
#include "clock.h"
#include "fleet.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *port_file(const char *dir, int pid)
{
    char name[32];
    snprintf(name, sizeof(name), "%d", pid);
    return cdt_path(dir, name);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void expect_port_file(const char *dir, int pid, int port)
{
    char *path = port_file(dir, pid);
    uint8_t *data = NULL;
    size_t len = 0;
    if (cdt_read_file(path, &data, &len) != 0)
        fail_msg("no gops port file %s", path);
    char want[16];
    snprintf(want, sizeof(want), "%d", port); /* decimal, no newline */
    assert_string_equal((char *)data, want);
    free(data);
    free(path);
}

static int ppid_of(int pid)
{
    char state = 0;
    int ppid = 0;
    assert_int_equal(cdt_proc_stat(pid, &state, &ppid), 0);
    return ppid;
}

struct pids {
    const int *pid;
    size_t n;
};

static bool all_gone(void *ctx)
{
    struct pids *p = ctx;
    for (size_t i = 0; i < p->n; i++)
        if (!cdt_pid_gone(p->pid[i]))
            return false;
    return true;
}

static void test_single(void **st)
{
    (void)st;
    struct cdt_fleet f;
    assert_int_equal(cdt_fleet_start(&f, (const char *const[]){NULL}, 30000), 0);
    assert_int_equal(f.n, 1);
    struct cdt_fleet_target *t = &f.targets[0];
    assert_int_equal(t->pid, f.pid); /* N == 1: the target is the fleet process */
    assert_string_equal(t->workload, "idle");
    assert_string_equal(t->hostile, "none");
    assert_true(t->pprof_port > 0 && t->gops_port > 0 && t->pprof_port != t->gops_port);
    expect_port_file(f.gops_dir, t->pid, t->gops_port);

    int status = 0;
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(cdt_http_get(t->pprof_port, "/debug/pprof/", &status, &body, &len, 10000), 0);
    assert_int_equal(status, 200);
    assert_non_null(strstr((char *)body, "goroutine"));
    free(body);

    /* SIGTERM: exit 0, port file removed */
    char *pf = port_file(f.gops_dir, t->pid);
    int ws = cdt_stop(f.pid, SIGTERM, 10000);
    f.pid = 0;
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    assert_false(exists(pf));
    free(pf);
    cdt_fleet_stop(&f);
}

static void test_no_gops(void **st)
{
    (void)st;
    struct cdt_fleet f;
    const char *args[] = {"-no-gops", "-workload", "leak", "-hostile", "garbage", NULL};
    assert_int_equal(cdt_fleet_start(&f, args, 30000), 0);
    assert_int_equal(f.targets[0].gops_port, 0);
    assert_string_equal(f.targets[0].workload, "leak");
    assert_string_equal(f.targets[0].hostile, "garbage");
    char *pf = port_file(f.gops_dir, f.targets[0].pid);
    assert_false(exists(pf));
    free(pf);
    cdt_fleet_stop(&f);
}

static void test_launcher_three(void **st)
{
    (void)st;
    struct cdt_fleet f;
    const char *args[] = {"-n", "3", "-workloads", "cpu,leak", "-hostiles", "none,error", NULL};
    assert_int_equal(cdt_fleet_start(&f, args, 30000), 0);
    assert_int_equal(f.n, 3);
    static const char *const want_w[] = {"cpu", "leak", "cpu"};
    static const char *const want_h[] = {"none", "error", "none"};
    int pids[3];
    for (size_t i = 0; i < 3; i++) {
        struct cdt_fleet_target *t = &f.targets[i];
        pids[i] = t->pid;
        assert_string_equal(t->workload, want_w[i]);
        assert_string_equal(t->hostile, want_h[i]);
        assert_int_not_equal(t->pid, f.pid);
        assert_int_equal(ppid_of(t->pid), f.pid);
        expect_port_file(f.gops_dir, t->pid, t->gops_port);
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(t->pid, f.targets[j].pid);
            assert_int_not_equal(t->pprof_port, f.targets[j].pprof_port);
            assert_int_not_equal(t->gops_port, f.targets[j].gops_port);
            assert_int_not_equal(t->pprof_port, f.targets[j].gops_port);
        }
        /* each one is a live, separate target */
        uint8_t *out = NULL;
        size_t len = 0;
        if (strcmp(t->hostile, "none") == 0) {
            assert_int_equal(cdt_gops_cmd(t->gops_port, 0x07, &out, &len, 10000), 0);
            assert_true(strncmp((char *)out, "goroutines: ", 12) == 0);
            free(out);
        }
        int status = 0;
        assert_int_equal(cdt_http_get(t->pprof_port, "/debug/pprof/", &status, &out, &len, 10000),
                         0);
        assert_int_equal(status, 200);
        free(out);
    }

    /* stopping the launcher stops every child: exit 0, nothing left, port files removed */
    int ws = cdt_stop(f.pid, SIGTERM, 10000);
    f.pid = 0;
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    struct pids p = {pids, 3};
    assert_int_equal(cdt_wait_until(all_gone, &p, 5000), 0);
    for (size_t i = 0; i < 3; i++) {
        char *pf = port_file(f.gops_dir, pids[i]);
        assert_false(exists(pf));
        free(pf);
    }
    cdt_fleet_stop(&f);
}

static void test_launcher_sigkill(void **st)
{
    (void)st;
    struct cdt_fleet f;
    const char *args[] = {"-n", "3", "-workloads", "idle,deadlock,mixed", NULL};
    assert_int_equal(cdt_fleet_start(&f, args, 30000), 0);
    int pids[3] = {f.targets[0].pid, f.targets[1].pid, f.targets[2].pid};
    assert_int_equal(kill(f.pid, SIGKILL), 0);
    int ws = 0;
    assert_int_equal(waitpid(f.pid, &ws, 0), f.pid);
    f.pid = 0;
    assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    struct pids p = {pids, 3};
    if (cdt_wait_until(all_gone, &p, 5000) != 0)
        fail_msg("children outlived the SIGKILLed launcher");
    /* killed processes leave stale port files behind, like the real agent */
    for (size_t i = 0; i < 3; i++) {
        char *pf = port_file(f.gops_dir, pids[i]);
        assert_true(exists(pf));
        free(pf);
    }
    cdt_fleet_stop(&f);
}

struct exit_wait {
    pid_t pid;
    int status;
};

static bool exited(void *ctx)
{
    struct exit_wait *w = ctx;
    return waitpid(w->pid, &w->status, WNOHANG) == w->pid;
}

static void test_exit_after(void **st)
{
    (void)st;
    static const char *const one[] = {"-exit-after", "1s", NULL};
    static const char *const three[] = {"-n", "2", "-exit-after", "1s", NULL};
    const char *const *cases[] = {one, three};
    for (size_t c = 0; c < 2; c++) {
        struct cdt_fleet f;
        assert_int_equal(cdt_fleet_start(&f, cases[c], 30000), 0);
        struct exit_wait w = {.pid = f.pid};
        assert_int_equal(cdt_wait_until(exited, &w, 10000), 0);
        f.pid = 0;
        assert_true(WIFEXITED(w.status));
        assert_int_equal(WEXITSTATUS(w.status), 0);
        for (size_t i = 0; i < f.n; i++) {
            char *pf = port_file(f.gops_dir, f.targets[i].pid);
            assert_false(exists(pf));
            free(pf);
            assert_true(cdt_pid_gone(f.targets[i].pid));
        }
        cdt_fleet_stop(&f);
    }
}

struct list_wait {
    const char *list;
    pid_t pid;
    bool died;
    int status;
};

static bool list_or_exit(void *ctx)
{
    struct list_wait *w = ctx;
    if (exists(w->list))
        return true;
    w->died = waitpid(w->pid, &w->status, WNOHANG) == w->pid;
    return w->died;
}

/* Without -gops-dir, the real agent's rules: $GOPS_CONFIG_DIR, else $XDG_CONFIG_HOME/gops. */
static void test_default_gops_dir(void **st)
{
    (void)st;
    char *dir = cdt_tmpdir("fleet-env");
    char *list = cdt_path(dir, "list.json");
    char *gops_env = cdt_path(dir, "env");
    char *xdg_gops = cdt_path(dir, "gops");
    char *log = cdt_path(dir, "fleet.log");
    for (int c = 0; c < 2; c++) {
        if (c == 0) {
            setenv("GOPS_CONFIG_DIR", gops_env, 1);
        } else {
            unsetenv("GOPS_CONFIG_DIR");
            setenv("XDG_CONFIG_HOME", dir, 1);
        }
        unlink(list);
        char *argv[] = {(char *)cdt_env("CD_FLEET"), "-list", list, NULL};
        pid_t pid = cdt_spawn(argv, log);
        assert_true(pid > 0);
        struct list_wait lw = {.list = list, .pid = pid};
        assert_int_equal(cdt_wait_until(list_or_exit, &lw, 30000), 0);
        if (lw.died)
            fail_msg("fleet exited early (status 0x%x)", lw.status);
        json_error_t jerr;
        json_t *root = json_load_file(list, 0, &jerr);
        assert_non_null(root);
        json_t *t = json_array_get(json_object_get(root, "targets"), 0);
        int port = (int)json_integer_value(json_object_get(t, "gops_port"));
        json_decref(root);
        expect_port_file(c == 0 ? gops_env : xdg_gops, pid, port);
        int ws = cdt_stop(pid, SIGTERM, 10000);
        assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    }
    unsetenv("XDG_CONFIG_HOME");
    cdt_rmrf(dir);
    free(log);
    free(xdg_gops);
    free(gops_env);
    free(list);
    free(dir);
}

/* -file-sd: Prometheus file_sd groups, one per pprof address and one per gops agent. */
static void test_file_sd(void **st)
{
    (void)st;
    char *dir = cdt_tmpdir("fleet-sd");
    char *sd = cdt_path(dir, "targets.json");
    struct cdt_fleet f;
    const char *args[] = {"-n",           "2",    "-workloads", "cpu,leak", "-file-sd", sd,
                          "-file-sd-job", "demo", NULL};
    assert_int_equal(cdt_fleet_start(&f, args, 30000), 0);
    json_error_t jerr;
    json_t *root = json_load_file(sd, 0, &jerr);
    if (root == NULL)
        fail_msg("%s: %s", sd, jerr.text);
    assert_int_equal(json_array_size(root), 4);
    for (size_t i = 0; i < 2; i++) {
        json_t *pp = json_array_get(root, 2 * i), *gg = json_array_get(root, 2 * i + 1);
        char want[64];
        snprintf(want, sizeof(want), "127.0.0.1:%d", f.targets[i].pprof_port);
        assert_string_equal(json_string_value(json_array_get(json_object_get(pp, "targets"), 0)),
                            want);
        snprintf(want, sizeof(want), "gops://127.0.0.1:%d", f.targets[i].gops_port);
        assert_string_equal(json_string_value(json_array_get(json_object_get(gg, "targets"), 0)),
                            want);
        json_t *pl = json_object_get(pp, "labels"), *gl = json_object_get(gg, "labels");
        assert_string_equal(json_string_value(json_object_get(pl, "job")), "demo");
        assert_string_equal(json_string_value(json_object_get(pl, "workload")),
                            f.targets[i].workload);
        assert_null(json_object_get(pl, "agent"));
        assert_string_equal(json_string_value(json_object_get(gl, "job")), "demo");
        assert_string_equal(json_string_value(json_object_get(gl, "agent")), "gops");
    }
    json_decref(root);
    cdt_fleet_stop(&f);
    cdt_rmrf(dir);
    free(sd);
    free(dir);
}

/* -ports: every listener is an entry of its own (list and file_sd), same pid, the agent on the
 * first entry of its process only, and every listener serves the real handlers. */
static void test_ports(void **st)
{
    (void)st;
    char *dir = cdt_tmpdir("fleet-ports");
    char *sd = cdt_path(dir, "targets.json");
    char *arrivals = cdt_path(dir, "arrivals.log");
    struct cdt_fleet f;
    const char *args[] = {"-n", "2", "-ports", "3", "-file-sd", sd, "-arrivals", arrivals, NULL};
    int64_t t0 = cd_clock_now_wall_ms();
    assert_int_equal(cdt_fleet_start(&f, args, 30000), 0);
    assert_int_equal(f.n, 6);
    for (size_t i = 0; i < 6; i++) {
        const struct cdt_fleet_target *t = &f.targets[i];
        const struct cdt_fleet_target *first = &f.targets[i - i % 3];
        assert_int_equal(t->pid, first->pid);
        assert_int_equal(ppid_of(t->pid), f.pid);
        if (i % 3 == 0)
            expect_port_file(f.gops_dir, t->pid, t->gops_port);
        else
            assert_int_equal(t->gops_port, 0);
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(t->pprof_port, f.targets[j].pprof_port);
            if (j / 3 != i / 3)
                assert_int_not_equal(t->pid, f.targets[j].pid);
        }
        int status = 0;
        uint8_t *out = NULL;
        size_t len = 0;
        assert_int_equal(
            cdt_http_get(t->pprof_port, "/debug/pprof/heap?debug=1", &status, &out, &len, 10000),
            0);
        assert_int_equal(status, 200);
        assert_true(strncmp((char *)out, "heap profile: ", 14) == 0);
        free(out);
    }
    /* file_sd: six pprof groups and two agents, in list order */
    json_error_t jerr;
    json_t *root = json_load_file(sd, 0, &jerr);
    if (root == NULL)
        fail_msg("%s: %s", sd, jerr.text);
    assert_int_equal(json_array_size(root), 8);
    size_t g = 0;
    for (size_t i = 0; i < 6; i++) {
        char want[64];
        snprintf(want, sizeof(want), "127.0.0.1:%d", f.targets[i].pprof_port);
        json_t *pp = json_array_get(root, g++);
        assert_string_equal(json_string_value(json_array_get(json_object_get(pp, "targets"), 0)),
                            want);
        if (f.targets[i].gops_port != 0) {
            snprintf(want, sizeof(want), "gops://127.0.0.1:%d", f.targets[i].gops_port);
            json_t *gg = json_array_get(root, g++);
            assert_string_equal(
                json_string_value(json_array_get(json_object_get(gg, "targets"), 0)), want);
        }
    }
    json_decref(root);

    /* -arrivals: one line per request, from both processes, timed while the test ran */
    int64_t t1 = cd_clock_now_wall_ms();
    uint8_t *log = NULL;
    size_t log_len = 0;
    assert_int_equal(cdt_read_file(arrivals, &log, &log_len), 0);
    size_t lines = 0;
    for (char *line = (char *)log; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        long long ns = 0;
        char path[64];
        assert_int_equal(sscanf(line, "%lld %63s", &ns, path), 2);
        assert_string_equal(path, "/debug/pprof/heap?debug=1"); /* path and query */
        assert_true(ns / 1000000 >= t0 - 1000 && ns / 1000000 <= t1 + 1000);
        lines++;
        line = nl + 1;
    }
    assert_int_equal(lines, 6);
    free(log);
    cdt_fleet_stop(&f);

    /* a single target (no launcher) lists its listeners the same way */
    const char *one[] = {"-ports", "2", "-no-gops", NULL};
    assert_int_equal(cdt_fleet_start(&f, one, 30000), 0);
    assert_int_equal(f.n, 2);
    assert_int_equal(f.targets[0].pid, f.pid);
    assert_int_equal(f.targets[1].pid, f.pid);
    assert_int_not_equal(f.targets[0].pprof_port, f.targets[1].pprof_port);
    cdt_fleet_stop(&f);
    cdt_rmrf(dir);
    free(arrivals);
    free(sd);
    free(dir);
}

static void test_bad_flags(void **st)
{
    (void)st;
    static const char *const bad[][4] = {
        {"-workload", "nope", NULL},
        {"-hostile", "evil", NULL},
        {"-n", "0", NULL},
        {"-n", "2", "-pprof-addr", "127.0.0.1:6060"},
        {"-workloads", "cpu,nope", NULL},
        {"-leak-rate", "-1", NULL},
        {"extra-argument", NULL, NULL},
        {"-ports", "0", NULL},
        {"-ports", "1001", NULL},
        {"-ports", "2", "-pprof-addr", "127.0.0.1:6060"},
        {"-gops-cpu-duration", "0s", NULL},
        {"-gops-trace-duration", "11m", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[6] = {(char *)cdt_env("CD_FLEET")};
        for (size_t k = 0; k < 4 && bad[i][k] != NULL; k++)
            argv[k + 1] = (char *)bad[i][k];
        char *out = NULL;
        int rc = cdt_run(argv, &out, 10000);
        free(out);
        if (rc != 2)
            fail_msg("case %zu (%s %s): exit %d, want 2", i, bad[i][0], bad[i][1] ? bad[i][1] : "",
                     rc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single),         cmocka_unit_test(test_no_gops),
        cmocka_unit_test(test_launcher_three), cmocka_unit_test(test_launcher_sigkill),
        cmocka_unit_test(test_exit_after),     cmocka_unit_test(test_default_gops_dir),
        cmocka_unit_test(test_file_sd),        cmocka_unit_test(test_ports),
        cmocka_unit_test(test_bad_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
