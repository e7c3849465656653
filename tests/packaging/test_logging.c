/*
 * collectord's command line and logs as an operator meets them: under systemd (stderr is the
 * stream named by $JOURNAL_STREAM) every line carries a syslog priority prefix "<N>" and no
 * timestamp, so journald files it at the right level; anywhere else lines carry a local
 * timestamp and a level word; -v and --log-level choose what is written; --log-style forces
 * either. Also --version, --help, --check-config (exit 0 valid, 1 invalid with file:line:column)
 * and --dump-config (the effective config, defaults included), and usage errors (exit 2).
 */
#include "cdtest.h"
#include "daemon.h"
#include "pkgutil.h"

#include <collectord/version.h>

#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define START_MS 30000

/* A target that refuses connections, scraped every second: a warning within a second or two. */
static const char *config_yaml = "storage:\n"
                                 "  path: @DIR@/collectord.db\n"
                                 "query:\n"
                                 "  socket: @DIR@/collectord.sock\n"
                                 "  socket_mode: \"0600\"\n"
                                 "limits:\n"
                                 "  shutdown_timeout: 5s\n"
                                 "scrape_configs:\n"
                                 "  - job_name: down\n"
                                 "    scrape_interval: 1s\n"
                                 "    static_configs:\n"
                                 "      - targets: [\"127.0.0.1:1\"]\n"
                                 "    profiling_config:\n"
                                 "      pprof_config:\n"
                                 "        cpu: {enabled: false}\n"
                                 "        allocs: {enabled: false}\n"
                                 "        goroutine: {enabled: false}\n"
                                 "        mutex: {enabled: false}\n"
                                 "        block: {enabled: false}\n";

static const char *const unset_env[] = {"NOTIFY_SOCKET", "WATCHDOG_USEC",  "WATCHDOG_PID",
                                        "LISTEN_FDS",    "JOURNAL_STREAM", NULL};

struct fix {
    struct cdt_daemon d;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    cdt_daemon_init(&f->d, "pkg-logging");
    cdt_daemon_write_config(&f->d, config_yaml);
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

static bool answers(void *ctx)
{
    struct fix *f = ctx;
    if (access(f->d.socket, F_OK) != 0)
        return false; /* not yet: spare the log collectorctl's complaint */
    const char *status[] = {"status", NULL};
    return cdt_ctl(&f->d, NULL, 5000, status) == 0;
}

enum journal_env { NO_JOURNAL_STREAM, JOURNAL_STREAM_IS_STDERR, JOURNAL_STREAM_ELSEWHERE };

/* Runs collectord with extra args until `wait_for` shows in its log (after a SIGHUP when
 * `reload`), stops it, and returns the whole log (malloc'd). */
static char *run_and_log(struct fix *f, const char *const extra[], enum journal_env je, bool reload,
                         const char *wait_for)
{
    int fd = open(f->d.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    char js[128] = "JOURNAL_STREAM=";
    if (je == JOURNAL_STREAM_IS_STDERR) {
        pk_journal_stream(fd, js + strlen(js), sizeof(js) - strlen(js));
    } else if (je == JOURNAL_STREAM_ELSEWHERE) {
        /* systemd's stream, but stderr was redirected elsewhere (e.g. by a wrapper script) */
        int other = open("/dev/null", O_WRONLY | O_CLOEXEC);
        assert_true(other >= 0);
        pk_journal_stream(other, js + strlen(js), sizeof(js) - strlen(js));
        close(other);
    }
    const char *env[] = {js, NULL};
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)cdt_env("CD_COLLECTORD");
    argv[n++] = "-c";
    argv[n++] = f->d.config;
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 15; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    pid_t pid = pk_spawn(argv, je == NO_JOURNAL_STREAM ? NULL : env, unset_env, fd, -1);
    close(fd);
    f->d.pid = pid;
    if (cdt_wait_until(answers, f, START_MS) != 0) {
        pk_log_tail(f->d.log, 20);
        fail_msg("collectord did not start");
    }
    if (reload) {
        assert_int_equal(kill(pid, SIGHUP), 0);
        assert_true(pk_log_wait(f->d.log, "reload: configuration from", START_MS));
    }
    if (wait_for != NULL && !pk_log_wait(f->d.log, wait_for, START_MS)) {
        pk_log_tail(f->d.log, 20);
        fail_msg("no '%s' in the log", wait_for);
    }
    assert_int_equal(kill(pid, SIGTERM), 0);
    int st = pk_wait(pid, START_MS);
    f->d.pid = 0;
    assert_true(st != -1 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file(f->d.log, &data, &len), 0);
    char *text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, data, len);
    text[len] = '\0';
    free(data);
    return text;
}

/* Every line matches re; returns how many lines there were. */
static int all_lines_match(const char *text, const char *re)
{
    regex_t rx;
    assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    int lines = 0;
    char *copy = strdup(text);
    assert_non_null(copy);
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        if (regexec(&rx, l, 0, NULL, 0) != 0)
            fail_msg("log line does not match /%s/: %s", re, l);
        lines++;
    }
    free(copy);
    regfree(&rx);
    return lines;
}

static bool has_line_prefix(const char *text, const char *prefix)
{
    size_t l = strlen(prefix);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, prefix, l) == 0)
            return true;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return false;
}

static void test_journal_prefixes(void **state)
{
    struct fix *f = *state;
    const char *extra[] = {"-v", NULL};
    char *log = run_and_log(f, extra, JOURNAL_STREAM_IS_STDERR, true, "<4>target down/");
    int n = all_lines_match(log, "^<[3-7]>[^<0-9 ]");
    assert_true(n >= 5);
    char started[128];
    snprintf(started, sizeof(started), "<5>collectord %s started: config ", COLLECTORD_VERSION);
    assert_true(has_line_prefix(log, started));
    assert_true(has_line_prefix(log, "<6>query: listening on "));
    assert_true(has_line_prefix(log, "<5>SIGHUP: reloading "));
    /* -v: debug lines too (discovery after the reload is a debug line) */
    assert_true(has_line_prefix(log, "<7>discovery: "));
    assert_true(has_line_prefix(log, "<5>stopped"));
    free(log);
}

static const char *plain_re = "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} "
                              "(error|warning|notice|info|debug): [^ ]";

static void test_plain_outside_systemd(void **state)
{
    struct fix *f = *state;
    char *log = run_and_log(f, NULL, NO_JOURNAL_STREAM, false, "warning: target down/");
    all_lines_match(log, plain_re);
    assert_non_null(strstr(log, " notice: collectord " COLLECTORD_VERSION " started"));
    assert_null(strstr(log, " debug: ")); /* default level: info */
    free(log);
}

static void test_plain_when_stderr_is_not_the_journal(void **state)
{
    struct fix *f = *state;
    char *log = run_and_log(f, NULL, JOURNAL_STREAM_ELSEWHERE, false, NULL);
    all_lines_match(log, plain_re);
    free(log);
}

static void test_log_level_and_style(void **state)
{
    struct fix *f = *state;
    /* --log-level warning: the start and stop notices are gone, the warning is there */
    const char *warn[] = {"--log-level", "warning", NULL};
    char *log = run_and_log(f, warn, JOURNAL_STREAM_IS_STDERR, false, "<4>target down/");
    all_lines_match(log, "^<[34]>");
    free(log);
    /* --log-style journal forces prefixes; plain forces timestamps */
    const char *journal[] = {"--log-style", "journal", NULL};
    log = run_and_log(f, journal, NO_JOURNAL_STREAM, false, NULL);
    all_lines_match(log, "^<[3-7]>[^<0-9 ]");
    free(log);
    const char *plain[] = {"--log-style", "plain", "--log-level", "debug", NULL};
    log = run_and_log(f, plain, JOURNAL_STREAM_IS_STDERR, true, NULL);
    all_lines_match(log, plain_re);
    assert_non_null(strstr(log, " debug: "));
    free(log);
}

static int run_cli(char **out, const char *args)
{
    return pk_sh(out, 30000, "'%s' %s", cdt_env("CD_COLLECTORD"), args);
}

static void test_command_line(void **state)
{
    struct fix *f = *state;
    char *out = NULL;
    assert_int_equal(run_cli(&out, "--version"), 0);
    assert_string_equal(out, "collectord " COLLECTORD_VERSION "\n");
    free(out);
    assert_int_equal(run_cli(&out, "--help"), 0);
    assert_non_null(strstr(out, "--check-config"));
    assert_non_null(strstr(out, "--log-level"));
    free(out);

    char args[512];
    snprintf(args, sizeof(args), "--check-config -c '%s'", f->d.config);
    assert_int_equal(run_cli(&out, args), 0);
    assert_non_null(strstr(out, "is valid"));
    free(out);

    /* --dump-config: what is not in the file shows with its default */
    snprintf(args, sizeof(args), "--dump-config -c '%s'", f->d.config);
    assert_int_equal(run_cli(&out, args), 0);
    assert_non_null(strstr(out, "max_age: 14d"));
    assert_non_null(strstr(out, "scrape_timeout: 10s"));
    assert_non_null(strstr(out, "shutdown_timeout: 5s"));
    assert_non_null(strstr(out, "job_name: \"down\""));
    free(out);

    /* An invalid file: exit 1, and the error says where */
    char *bad = cdt_path(f->d.dir, "bad.yaml");
    static const char text[] = "global:\n  scrape_interval: 1m\n  scrape_intreval: 2m\n";
    assert_int_equal(cdt_write_file(bad, text, sizeof(text) - 1), 0);
    snprintf(args, sizeof(args), "--check-config -c '%s'", bad);
    assert_int_equal(run_cli(&out, args), 1);
    char where[600];
    snprintf(where, sizeof(where), "%s:3:", bad);
    if (strstr(out, where) == NULL || strstr(out, "scrape_intreval") == NULL)
        fail_msg("the error should name %s and the key: %s", where, out);
    free(out);
    /* and the daemon refuses to start on it, with exit status 1 */
    snprintf(args, sizeof(args), "-c '%s'", bad);
    assert_int_equal(run_cli(&out, args), 1);
    assert_non_null(strstr(out, "scrape_intreval"));
    free(out);
    free(bad);

    /* usage errors: exit 2 */
    assert_int_equal(run_cli(&out, "--no-such-option"), 2);
    free(out);
    assert_int_equal(run_cli(&out, "--log-level loud"), 2);
    free(out);
    assert_int_equal(run_cli(&out, "-c"), 2);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_journal_prefixes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_outside_systemd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_when_stderr_is_not_the_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_level_and_style, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_line, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
