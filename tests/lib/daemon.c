/* daemon (tests) — see daemon.h. */
#include "daemon.h"

#include "cdtest.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void cdt_daemon_init(struct cdt_daemon *d, const char *tag)
{
    memset(d, 0, sizeof(*d));
    d->dir = cdt_tmpdir(tag);
    d->config = cdt_path(d->dir, "collectord.yaml");
    d->db = cdt_path(d->dir, "collectord.db");
    d->socket = cdt_path(d->dir, "collectord.sock");
    d->log = cdt_path(d->dir, "collectord.log");
    d->targets = cdt_path(d->dir, "targets.json");
}

void cdt_daemon_write_config(struct cdt_daemon *d, const char *yaml)
{
    size_t dl = strlen(d->dir), n = 0;
    for (const char *p = yaml; (p = strstr(p, "@DIR@")) != NULL; p += 5)
        n++;
    size_t cap = strlen(yaml) + n * dl + 1;
    char *out = malloc(cap);
    assert_non_null(out);
    char *w = out;
    for (const char *p = yaml; *p != '\0';) {
        if (strncmp(p, "@DIR@", 5) == 0) {
            memcpy(w, d->dir, dl);
            w += dl;
            p += 5;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    assert_int_equal(cdt_write_file(d->config, out, strlen(out)), 0);
    free(out);
}

char *cdt_daemon_default_config(const char *interval, const char *extra_job_yaml)
{
    size_t n = strlen(interval) + (extra_job_yaml ? strlen(extra_job_yaml) : 0) + 512;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n,
             "global:\n"
             "  scrape_interval: %s\n"
             "  scrape_timeout: 10s\n"
             "storage:\n"
             "  path: @DIR@/collectord.db\n"
             "query:\n"
             "  socket: @DIR@/collectord.sock\n"
             "  socket_mode: \"0600\"\n"
             "limits:\n"
             "  shutdown_timeout: 10s\n"
             "scrape_configs:\n"
             "  - job_name: fleet\n"
             "    file_sd_configs:\n"
             "      - files: [@DIR@/targets.json]\n"
             "%s",
             interval, extra_job_yaml ? extra_job_yaml : "");
    return s;
}

void cdt_daemon_write_targets(struct cdt_daemon *d, const struct cdt_fleet *f, bool with_gops)
{
    json_t *groups = json_array();
    for (size_t i = 0; i < f->n; i++) {
        const struct cdt_fleet_target *t = &f->targets[i];
        json_t *addrs = json_array();
        char a[64];
        snprintf(a, sizeof(a), "127.0.0.1:%d", t->pprof_port);
        json_array_append_new(addrs, json_string(a));
        json_array_append_new(groups, json_pack("{s:o,s:{s:s,s:s}}", "targets", addrs, "labels",
                                                "workload", t->workload, "hostile", t->hostile));
        if (with_gops && t->gops_port > 0) {
            snprintf(a, sizeof(a), "gops://127.0.0.1:%d", t->gops_port);
            char pid[32];
            snprintf(pid, sizeof(pid), "%d", t->pid);
            /* The same pid on both endpoints: one CPU profile per process at a time. */
            json_array_append_new(groups, json_pack("{s:[s],s:{s:s,s:s,s:s}}", "targets", a,
                                                    "labels", "workload", t->workload, "hostile",
                                                    t->hostile, "pid", pid));
        }
    }
    char *text = json_dumps(groups, JSON_INDENT(2));
    json_decref(groups);
    assert_non_null(text);
    char *tmp = cdt_path(d->dir, "targets.json.tmp");
    assert_int_equal(cdt_write_file(tmp, text, strlen(text)), 0);
    assert_int_equal(rename(tmp, d->targets), 0);
    free(tmp);
    free(text);
}

static bool status_answers(void *ctx)
{
    struct cdt_daemon *d = ctx;
    int st = 0;
    if (d->pid > 0 && waitpid(d->pid, &st, WNOHANG) == d->pid) {
        d->pid = -1; /* exited: stop waiting */
        return true;
    }
    const char *args[] = {"status", NULL};
    return cdt_ctl(d, NULL, 5000, args) == 0;
}

void cdt_daemon_start(struct cdt_daemon *d, const char *const extra[], int timeout_ms)
{
    const char *bin = cdt_env("CD_COLLECTORD");
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)bin;
    argv[n++] = "-c";
    argv[n++] = d->config;
    argv[n++] = "--log-style";
    argv[n++] = "plain";
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 30; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    d->pid = cdt_spawn(argv, d->log);
    assert_true(d->pid > 0);
    int rc = cdt_wait_until(status_answers, d, timeout_ms);
    if (rc != 0 || d->pid < 0) {
        cdt_daemon_print_log(d, 40);
        fail_msg("collectord did not answer on %s within %d ms", d->socket, timeout_ms);
    }
}

int cdt_daemon_stop(struct cdt_daemon *d, int sig, int timeout_ms)
{
    if (d->pid <= 0)
        return -ESRCH;
    int st = cdt_stop(d->pid, sig, timeout_ms);
    d->pid = 0;
    return st;
}

void cdt_daemon_cleanup(struct cdt_daemon *d)
{
    if (d->pid > 0)
        cdt_daemon_stop(d, SIGKILL, 5000);
    if (getenv("CD_KEEP_TEST_DIRS") == NULL)
        cdt_rmrf(d->dir);
    free(d->dir);
    free(d->config);
    free(d->db);
    free(d->socket);
    free(d->log);
    free(d->targets);
    memset(d, 0, sizeof(*d));
}

static int ctl_run(struct cdt_daemon *d, char **out, int timeout_ms, bool json,
                   const char *const args[])
{
    char *argv[48];
    int n = 0;
    argv[n++] = (char *)cdt_env("CD_COLLECTORCTL");
    argv[n++] = "-s";
    argv[n++] = d->socket;
    if (json) {
        argv[n++] = "-o";
        argv[n++] = "json";
    }
    for (int i = 0; args[i] != NULL && n < 46; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return cdt_run(argv, out, timeout_ms);
}

int cdt_ctl(struct cdt_daemon *d, char **out, int timeout_ms, const char *const args[])
{
    return ctl_run(d, out, timeout_ms, false, args);
}

json_t *cdt_ctl_json(struct cdt_daemon *d, int timeout_ms, const char *const args[])
{
    char *out = NULL;
    int rc = ctl_run(d, &out, timeout_ms, true, args);
    json_t *j = NULL;
    if (rc == 0 && out != NULL)
        j = json_loads(out, JSON_DECODE_ANY, NULL);
    free(out);
    return j;
}

json_t *cdt_ctl_wait(struct cdt_daemon *d, const char *const args[],
                     bool (*pred)(const json_t *j, void *ctx), void *ctx, int timeout_ms)
{
    int64_t deadline = cdt_now_ms() + timeout_ms;
    for (;;) {
        json_t *j = cdt_ctl_json(d, 10000, args);
        if (j != NULL && pred(j, ctx))
            return j;
        json_decref(j);
        if (cdt_now_ms() >= deadline)
            return NULL;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void cdt_daemon_print_log(const struct cdt_daemon *d, int lines)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (cdt_read_file(d->log, &data, &len) != 0) {
        print_message("(no collectord log at %s)\n", d->log);
        return;
    }
    size_t start = len;
    int seen = 0;
    while (start > 0 && seen <= lines) {
        start--;
        if (data[start] == '\n')
            seen++;
    }
    print_message("--- collectord log (%s), last lines:\n%s\n---\n", d->log,
                  (char *)data + (start > 0 ? start + 1 : 0));
    free(data);
}

long cdt_daemon_rss_kib(const struct cdt_daemon *d)
{
    if (d->pid <= 0)
        return -1;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            char *end = NULL;
            kib = strtol(line + 6, &end, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}
