/*
 * The Debian package, end to end, on this machine (as root):
 *   1. builds it with cpack from this build tree (collectord_<version>_<arch>.deb; conffile,
 *      no sanitizer in the binaries);
 *   2. installs it with dpkg -i and checks the files, the system user and group, the directories
 *      and `systemd-analyze verify` of both units;
 *   3. starts the installed collectord exactly as collectord.service's ExecStart= would
 *      (as-unit.sh: User=, capabilities, NoNewPrivileges=, read-only file system but the state
 *      and runtime directories, private /tmp; systemd's NOTIFY_SOCKET, WATCHDOG_USEC and a journal
 *      stream played by this test) with the installed default config plus a file_sd file naming
 *      one target of the test fleet;
 *   4. as a member of group collectord (a user made for the test) queries it with the installed
 *      collectorctl: status, local discovery of the fleet's gops agent (which needs the unit's
 *      two capabilities and reads a port file the private /tmp hides), capture into an incident,
 *      pin, export; `nobody` is refused; reload (ExecReload=) and stop (SIGTERM) as systemd does;
 *   5. removes the package: the database, its pins and the user stay; reinstalls and starts again:
 *      the history is back;
 *   6. purges: database, configuration, directories, user and group are gone.
 *
 * It leaves the machine as it found it: it refuses (skips) when collectord is already installed
 * or a collectord user exists that it did not make; a marker file says a run is in progress, so
 * a run killed half-way is cleaned up by the next one; runs are serialised with a lock file.
 * It runs in private PID and network namespaces (unshare), so that local discovery — on in the
 * default config — sees only the test's fleet and never scrapes other programs on the machine,
 * and so that everything it started dies with it.
 *
 * Skipped (exit 77) in sanitized builds (the package must never hold instrumented binaries) and
 * when not root.
 */
#include "cdtest.h"
#include "pkgutil.h"
#include "str.h"
#include "units.h"

#include <collectord/version.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <net/if.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PKG          "collectord"
#define SVC_USER     "collectord"
#define TEST_USER    "cdpkgtest"
#define MARKER       "/var/tmp/collectord-pkgtest.marker"
#define LOCK_FILE    "/run/lock/collectord-pkgtest.lock"
#define UNIT         "/usr/lib/systemd/system/collectord.service"
#define SOCKET_UNIT  "/usr/lib/systemd/system/collectord.socket"
#define CONFIG       "/etc/collectord/collectord.yaml"
#define TARGETS_FILE "/etc/collectord/targets/pkgtest.json"
#define STATE_DIR    "/var/lib/collectord"
#define DB           STATE_DIR "/collectord.db"
#define RUN_DIR      "/run/collectord"
#define START_MS     30000
#define DPKG_MS      180000

struct fix {
    char *tmp;    /* the .deb, logs, the fleet's list */
    char *home;   /* the fleet's $HOME: 0700 root, under /tmp (hidden by PrivateTmp=) */
    char *notify; /* the notify socket's directory, under /run */
    char *deb;
    char *journal; /* collectord's stdout+stderr */
    pid_t fleet;
    int fleet_pid; /* the target process (the same: one target, no launcher) */
    int pprof_port;
    pid_t svc;
    struct pk_notify nt;
    int64_t watchdog_usec;
    int64_t stop_timeout_ms;
    int pinned_id;
    int incident_ids[2];
    int64_t t0;
};

/* What the test is doing, with the time since it began: the ctest log tells the story. */
static void step(const struct fix *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void step(const struct fix *f, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    print_message("[%6.1fs] %s\n", (double)(cdt_now_ms() - f->t0) / 1000.0, msg);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* "install ok installed", "deinstall ok config-files", or "" when dpkg does not know it. */
static char *package_status(void)
{
    char *out = NULL;
    int rc = pk_sh(&out, 60000, "dpkg-query -W -f='${Status}' " PKG " 2>/dev/null");
    if (rc != 0) {
        free(out);
        return strdup("");
    }
    return out;
}

static bool package_present(void)
{
    char *s = package_status();
    bool present = s[0] != '\0' && strstr(s, "not-installed") == NULL;
    free(s);
    return present;
}

static int must_sh(char **out, int timeout_ms, const char *what, const char *cmd)
{
    char *text = NULL;
    int rc = pk_sh(&text, timeout_ms, "%s", cmd);
    if (rc != 0) {
        print_message("$ %s\n%s\n", cmd, text);
        free(text);
        fail_msg("%s failed (exit %d)", what, rc);
    }
    if (out != NULL)
        *out = text;
    else
        free(text);
    return rc;
}

/* collectorctl (the installed one) run as `user` through runuser, like a shell of theirs. */
static int ctl_as(const char *user, char **out, const char *args)
{
    return pk_sh(out, 150000,
                 "runuser -u %s -- env -u COLLECTORCTL_SOCKET /usr/bin/collectorctl %s", user,
                 args);
}

static json_t *ctl_json(const char *args)
{
    char *out = NULL;
    char full[512];
    snprintf(full, sizeof(full), "-o json %s", args);
    int rc = ctl_as(TEST_USER, &out, full);
    if (rc != 0) {
        print_message("collectorctl %s: %s\n", full, out);
        free(out);
        fail_msg("collectorctl %s failed (exit %d)", full, rc);
    }
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (j == NULL)
        fail_msg("collectorctl %s: not JSON (%s): %s", full, je.text, out);
    free(out);
    return j;
}

/* ---- clean-up: also what a later run does after one that was killed half-way ------------ */

static void purge_everything(void)
{
    unlink(TARGETS_FILE);
    if (getpwnam(TEST_USER) != NULL)
        pk_sh(NULL, 60000, "userdel " TEST_USER);
    if (package_present())
        pk_sh(NULL, DPKG_MS, "dpkg --purge " PKG);
    /* postrm removes the user on purge; when dpkg could not get that far, finish its job */
    if (getpwnam(SVC_USER) != NULL)
        pk_sh(NULL, 60000, "deluser --quiet --system " SVC_USER " 2>/dev/null");
    if (getgrnam(SVC_USER) != NULL)
        pk_sh(NULL, 60000, "delgroup --quiet --system " SVC_USER " 2>/dev/null");
    pk_sh(NULL, 60000, "rm -rf " STATE_DIR " " RUN_DIR);
    unlink(MARKER);
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->tmp = pk_mkdtemp(NULL, "cdpkg", 0755);
    f->home = pk_mkdtemp(NULL, "cdpkg-home", 0700);
    f->notify = pk_mkdtemp("/run", "cdpkg-notify", 0755);
    f->journal = cdt_path(f->tmp, "collectord.journal");
    f->t0 = cdt_now_ms();
    pk_notify_open(&f->nt, f->notify);
    *state = f;
    return 0;
}

static void stop_fleet(struct fix *f)
{
    if (f->fleet > 0) {
        kill(f->fleet, SIGTERM);
        if (pk_wait(f->fleet, 10000) == -1)
            pk_kill(f->fleet);
        f->fleet = 0;
    }
}

static int teardown(void **state)
{
    struct fix *f = *state;
    pk_kill(f->svc);
    stop_fleet(f);
    purge_everything();
    pk_notify_close(&f->nt);
    cdt_rmrf(f->notify);
    cdt_rmrf(f->home);
    cdt_rmrf(f->tmp);
    free(f->notify);
    free(f->home);
    free(f->tmp);
    free(f->deb);
    free(f->journal);
    free(f);
    return 0;
}

/* ---- steps ------------------------------------------------------------------------------- */

static void build_deb(struct fix *f)
{
    char cmd[2048], *arch = NULL;
    must_sh(&arch, 30000, "dpkg --print-architecture", "dpkg --print-architecture");
    arch[strcspn(arch, "\n")] = '\0';
    snprintf(cmd, sizeof(cmd), "'%s' -G DEB --config '%s/CPackConfig.cmake' -B '%s'",
             cdt_env("CD_CPACK"), cdt_env("CD_BUILD_DIR"), f->tmp);
    must_sh(NULL, DPKG_MS, "cpack", cmd);
    char name[256];
    snprintf(name, sizeof(name), PKG "_%s_%s.deb", COLLECTORD_VERSION, arch);
    f->deb = cdt_path(f->tmp, name);
    free(arch);
    if (!file_exists(f->deb))
        fail_msg("cpack did not make %s", f->deb);

    char *out = NULL;
    snprintf(cmd, sizeof(cmd), "dpkg-deb -f '%s' Package Version", f->deb);
    must_sh(&out, 30000, "dpkg-deb -f", cmd);
    assert_non_null(strstr(out, "Package: " PKG "\n"));
    assert_non_null(strstr(out, "Version: " COLLECTORD_VERSION "\n"));
    free(out);
    snprintf(cmd, sizeof(cmd), "dpkg-deb -I '%s' conffiles", f->deb);
    must_sh(&out, 30000, "dpkg-deb -I conffiles", cmd);
    assert_string_equal(out, CONFIG "\n");
    free(out);
}

struct expected_file {
    const char *path;
    mode_t type;
    mode_t mode;
};

static void check_installed(void)
{
    char *s = package_status();
    assert_string_equal(s, "install ok installed");
    free(s);
    char *out = NULL;
    must_sh(&out, 30000, "dpkg-query Conffiles", "dpkg-query -W -f='${Conffiles}' " PKG);
    assert_non_null(strstr(out, CONFIG " "));
    free(out);

    static const struct expected_file files[] = {
        {"/usr/bin/collectord", S_IFREG, 0755},
        {"/usr/bin/collectorctl", S_IFREG, 0755},
        {CONFIG, S_IFREG, 0644},
        {"/etc/collectord/targets", S_IFDIR, 0755},
        {UNIT, S_IFREG, 0644},
        {SOCKET_UNIT, S_IFREG, 0644},
        {"/usr/lib/sysusers.d/collectord.conf", S_IFREG, 0644},
        {"/usr/lib/tmpfiles.d/collectord.conf", S_IFREG, 0644},
        {"/usr/share/man/man8/collectord.8.gz", S_IFREG, 0644},
        {"/usr/share/man/man1/collectorctl.1.gz", S_IFREG, 0644},
        {"/usr/share/bash-completion/completions/collectorctl", S_IFREG, 0644},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct stat st;
        if (stat(files[i].path, &st) != 0)
            fail_msg("%s is not installed", files[i].path);
        if ((st.st_mode & S_IFMT) != files[i].type || (st.st_mode & 07777) != files[i].mode ||
            st.st_uid != 0 || st.st_gid != 0)
            fail_msg("%s: mode %04o owner %d:%d, expected %04o root:root", files[i].path,
                     (unsigned)(st.st_mode & 07777), (int)st.st_uid, (int)st.st_gid,
                     (unsigned)files[i].mode);
    }
    /* a package binary, not an instrumented one */
    uint8_t *bin = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file("/usr/bin/collectord", &bin, &len), 0);
    assert_null(memmem(bin, len, "__asan_init", 11));
    assert_null(memmem(bin, len, "__ubsan_handle", 14));
    free(bin);

    /* the system user and its group */
    struct passwd *pw = getpwnam(SVC_USER);
    assert_non_null(pw);
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    assert_true(uid > 0 && uid < 1000);
    assert_string_equal(pw->pw_dir, STATE_DIR);
    assert_non_null(strstr(pw->pw_shell, "nologin"));
    struct group *gr = getgrnam(SVC_USER);
    assert_non_null(gr);
    assert_int_equal(gr->gr_gid, gid);
    const char *dirs[] = {STATE_DIR, RUN_DIR};
    for (size_t i = 0; i < 2; i++) {
        struct stat st;
        assert_int_equal(stat(dirs[i], &st), 0);
        if (st.st_uid != uid || st.st_gid != gid || (st.st_mode & 07777) != 0750)
            fail_msg("%s: mode %04o owner %d:%d, expected 0750 collectord:collectord", dirs[i],
                     (unsigned)(st.st_mode & 07777), (int)st.st_uid, (int)st.st_gid);
    }

    /* the units as systemd reads them (also resolves ExecStart= and the man: links) */
    must_sh(&out, 60000, "systemd-analyze verify", "systemd-analyze verify " UNIT " " SOCKET_UNIT);
    if (strstr(out, "collectord") != NULL)
        fail_msg("systemd-analyze verify complains: %s", out);
    free(out);

    must_sh(&out, 30000, "collectord --version", "/usr/bin/collectord --version");
    assert_string_equal(out, "collectord " COLLECTORD_VERSION "\n");
    free(out);
    /* the default config is valid, and readable by the service's user */
    must_sh(NULL, 60000, "collectord --check-config",
            "runuser -u " SVC_USER " -- /usr/bin/collectord --check-config -c " CONFIG);
    must_sh(NULL, 30000, "the bash completion",
            "bash -c '. /usr/share/bash-completion/completions/collectorctl && "
            "complete -p collectorctl'");
}

static void read_unit_timings(struct fix *f)
{
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file(UNIT, &data, &len), 0);
    char *text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, data, len);
    text[len] = '\0';
    free(data);
    int64_t wd = 0, stop = 90000; /* systemd's default TimeoutStopSec */
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        if (strncmp(l, "WatchdogSec=", 12) == 0)
            assert_int_equal(cd_units_parse_duration(l + 12, &wd), 0);
        else if (strncmp(l, "TimeoutStopSec=", 15) == 0)
            assert_int_equal(cd_units_parse_duration(l + 15, &stop), 0);
    }
    free(text);
    assert_true(wd > 0); /* the unit has a watchdog */
    f->watchdog_usec = wd * 1000;
    f->stop_timeout_ms = stop;
}

static bool list_written(void *ctx)
{
    return file_exists(ctx);
}

static void start_fleet(struct fix *f)
{
    char *list = cdt_path(f->tmp, "fleet.json");
    char *log = cdt_path(f->tmp, "fleet.log");
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    char home[PATH_MAX + 8];
    snprintf(home, sizeof(home), "HOME=%s", f->home);
    const char *set[] = {home, NULL};
    /* The agent writes its port file to $HOME/.config/gops, where local discovery looks. */
    const char *unset[] = {"GOPS_CONFIG_DIR", "XDG_CONFIG_HOME", NULL};
    char *argv[] = {(char *)cdt_env("CD_FLEET"), "-workload", "idle", "-list", list, NULL};
    f->fleet = pk_spawn(argv, set, unset, fd, -1);
    close(fd);
    if (cdt_wait_until(list_written, list, 30000) != 0) {
        pk_log_tail(log, 20);
        fail_msg("the fleet did not start");
    }
    json_error_t je;
    json_t *j = json_load_file(list, 0, &je);
    assert_non_null(j);
    json_t *t = json_array_get(json_object_get(j, "targets"), 0);
    assert_non_null(t);
    f->fleet_pid = (int)json_integer_value(json_object_get(t, "pid"));
    f->pprof_port = (int)json_integer_value(json_object_get(t, "pprof_port"));
    assert_true(f->fleet_pid > 0 && f->pprof_port > 0);
    json_decref(j);
    free(list);
    free(log);
}

static void write_targets(struct fix *f)
{
    char text[256];
    snprintf(text, sizeof(text),
             "[{\"targets\": [\"127.0.0.1:%d\"], \"labels\": {\"pkgtest\": \"yes\"}}]\n",
             f->pprof_port);
    assert_int_equal(cdt_write_file(TARGETS_FILE, text, strlen(text)), 0);
}

static bool uid_line(const char *status, const char *key, char *out, size_t size)
{
    const char *p = strstr(status, key);
    if (p == NULL)
        return false;
    p += strlen(key);
    while (*p == '\t' || *p == ' ')
        p++;
    size_t n = strcspn(p, "\n");
    snprintf(out, size, "%.*s", (int)n, p);
    return true;
}

/* Starts the installed collectord as its unit would be started; returns when it is READY=1. */
static void start_service(struct fix *f)
{
    int fd = open(f->journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    char js[128] = "JOURNAL_STREAM=", ns[PATH_MAX + 16], wd[64];
    pk_journal_stream(fd, js + strlen(js), sizeof(js) - strlen(js));
    snprintf(ns, sizeof(ns), "NOTIFY_SOCKET=%s", f->nt.path);
    snprintf(wd, sizeof(wd), "WATCHDOG_USEC=%lld", (long long)f->watchdog_usec);
    const char *set[] = {ns, wd, js, NULL};
    const char *unset[] = {"LISTEN_FDS", "LISTEN_PID", "WATCHDOG_PID", NULL};
    char *argv[] = {"/bin/bash", (char *)cdt_env("CD_AS_UNIT"), UNIT, NULL};
    size_t from = f->nt.n;
    f->svc = pk_spawn(argv, set, unset, fd, -1);
    close(fd);
    if (pk_notify_wait(&f->nt, "READY=1", from, f->svc, START_MS) < 0) {
        pk_notify_dump(&f->nt);
        pk_log_tail(f->journal, 30);
        fail_msg("the installed collectord did not report READY=1");
    }
    /* the main pid is the unit's User=, with exactly the unit's capabilities */
    char *status = NULL; /* /proc files have no size: read them to the end */
    assert_int_equal(pk_sh(&status, 10000, "cat /proc/%d/status", (int)f->svc), 0);
    char v[128], want[64];
    struct passwd *pw = getpwnam(SVC_USER);
    assert_non_null(pw);
    snprintf(want, sizeof(want), "%d\t%d\t%d\t%d", (int)pw->pw_uid, (int)pw->pw_uid,
             (int)pw->pw_uid, (int)pw->pw_uid);
    assert_true(uid_line(status, "Uid:", v, sizeof(v)));
    assert_string_equal(v, want);
    /* CAP_DAC_READ_SEARCH (2) and CAP_SYS_PTRACE (19), nothing else */
    assert_true(uid_line(status, "CapEff:", v, sizeof(v)));
    assert_string_equal(v, "0000000000080004");
    assert_true(uid_line(status, "CapBnd:", v, sizeof(v)));
    assert_string_equal(v, "0000000000080004");
    assert_true(uid_line(status, "NoNewPrivs:", v, sizeof(v)));
    assert_string_equal(v, "1");
    free(status);
    /* WatchdogSec=: the first ping comes at once */
    if (pk_notify_wait(&f->nt, "WATCHDOG=1", from, f->svc, START_MS) < 0)
        fail_msg("no WATCHDOG=1");
}

/* systemctl stop: SIGTERM, and it must be gone within TimeoutStopSec=, exit status 0. */
static void stop_service(struct fix *f)
{
    size_t from = f->nt.n;
    assert_int_equal(kill(f->svc, SIGTERM), 0);
    if (pk_notify_wait(&f->nt, "STOPPING=1", from, f->svc, START_MS) < 0)
        fail_msg("no STOPPING=1 after SIGTERM");
    int st = pk_wait(f->svc, (int)f->stop_timeout_ms);
    if (st == -1) {
        pk_log_tail(f->journal, 20);
        fail_msg("collectord did not stop within TimeoutStopSec (%lld ms)",
                 (long long)f->stop_timeout_ms);
    }
    f->svc = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* systemctl reload: ExecReload= with $MAINPID, then RELOADING=1 ... READY=1. */
static void reload_service(struct fix *f)
{
    size_t from = f->nt.n;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "/bin/kill -HUP %d", (int)f->svc);
    must_sh(NULL, 30000, "ExecReload=", cmd);
    int r = pk_notify_wait(&f->nt, "RELOADING=1", from, f->svc, START_MS);
    assert_true(r >= 0);
    assert_true(pk_notify_wait(&f->nt, "READY=1", (size_t)r + 1, f->svc, START_MS) >= 0);
}

static bool local_gops_found(void *ctx)
{
    struct fix *f = ctx;
    char *out = NULL;
    if (ctl_as(TEST_USER, &out, "-o json list") != 0) {
        free(out);
        return false;
    }
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    bool found = false;
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", f->fleet_pid);
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(j, "targets"), i, t)
    {
        const char *job = json_string_value(json_object_get(t, "job"));
        const char *scheme = json_string_value(json_object_get(t, "scheme"));
        const char *p = json_string_value(json_object_get(json_object_get(t, "labels"), "pid"));
        if (job != NULL && scheme != NULL && p != NULL && strcmp(job, "local") == 0 &&
            strcmp(scheme, "gops") == 0 && strcmp(p, pid) == 0)
            found = true;
    }
    json_decref(j);
    return found;
}

static void check_journal(struct fix *f)
{
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file(f->journal, &data, &len), 0);
    char *text = strndup((const char *)data, len);
    free(data);
    char started[160];
    snprintf(started, sizeof(started), "<5>collectord %s started: config " CONFIG,
             COLLECTORD_VERSION);
    bool saw_started = false;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        if (strncmp(l, "as-unit: ", 9) == 0)
            continue; /* the emulator's own notes */
        if (!(l[0] == '<' && l[1] >= '0' && l[1] <= '7' && l[2] == '>'))
            fail_msg("a log line without a journal priority prefix: %s", l);
        saw_started |= strncmp(l, started, strlen(started)) == 0;
    }
    free(text);
    assert_true(saw_started);
}

static void use_as_group_member(struct fix *f)
{
    must_sh(NULL, 60000, "useradd",
            "useradd --system --no-create-home --shell /usr/sbin/nologin --groups " SVC_USER
            " " TEST_USER);

    json_t *j = ctl_json("status");
    assert_string_equal(json_string_value(json_object_get(j, "version")), COLLECTORD_VERSION);
    assert_string_equal(json_string_value(json_object_get(j, "config_file")), CONFIG);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "database"), "path")),
                        DB);
    json_decref(j);

    /* not a member: refused by the socket's permissions, with a message that says so */
    char *out = NULL;
    assert_int_equal(ctl_as("nobody", &out, "status"), 1);
    if (strstr(out, "permission denied") == NULL)
        fail_msg("nobody should be told permission denied: %s", out);
    free(out);

    /* Local discovery under the unit's hardening: the fleet (root's process) has its gops port
     * file in a 0700 home under /tmp, which the service's private /tmp does not show. */
    if (cdt_wait_until(local_gops_found, f, 60000) != 0) {
        pk_log_tail(f->journal, 30);
        fail_msg("local discovery did not find the fleet's gops agent (pid %d)", f->fleet_pid);
    }

    /* The incident workflow: capture into an incident, pin one by hand, export. */
    j = ctl_json("capture job=files --kind heap,goroutine --incident pkgtest");
    json_t *snaps = json_object_get(j, "snapshots");
    assert_int_equal(json_array_size(snaps), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *s = json_array_get(snaps, i);
        assert_string_equal(json_string_value(json_object_get(s, "status")), "ok");
        f->incident_ids[i] = (int)json_integer_value(json_object_get(s, "id"));
        assert_true(f->incident_ids[i] > 0);
    }
    json_decref(j);
    j = ctl_json("capture job=files --kind goroutine_dump");
    json_t *s = json_array_get(json_object_get(j, "snapshots"), 0);
    assert_string_equal(json_string_value(json_object_get(s, "status")), "ok");
    f->pinned_id = (int)json_integer_value(json_object_get(s, "id"));
    json_decref(j);
    char args[64];
    snprintf(args, sizeof(args), "pin %d", f->pinned_id);
    j = ctl_json(args);
    json_decref(j);

    char *exp = pk_mkdtemp(NULL, "cdpkg-export", 0755);
    struct passwd *pw = getpwnam(TEST_USER);
    assert_non_null(pw);
    assert_int_equal(chown(exp, pw->pw_uid, pw->pw_gid), 0);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof(cmd), "export pkgtest -o %s/pkgtest.tar.gz", exp);
    assert_int_equal(ctl_as(TEST_USER, NULL, cmd), 0);
    snprintf(cmd, sizeof(cmd), "tar -tzf %s/pkgtest.tar.gz", exp);
    must_sh(&out, 30000, "tar -t", cmd);
    assert_non_null(strstr(out, "pkgtest/manifest.json"));
    free(out);
    cdt_rmrf(exp);
    free(exp);

    /* files the service writes: group-readable, not group-writable (UMask=0027) */
    struct stat st;
    assert_int_equal(stat(DB, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(st.st_uid, getpwnam(SVC_USER)->pw_uid);
    struct stat sock;
    assert_int_equal(stat(RUN_DIR "/collectord.sock", &sock), 0);
    assert_int_equal(sock.st_mode & 0777, 0660);
}

static int64_t db_i64(const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(DB, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static void check_history_in_db(struct fix *f)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT pinned FROM snapshots WHERE id = %d", f->pinned_id);
    assert_int_equal(db_i64(sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM snapshots WHERE id IN (%d, %d) AND incidents > 0",
             f->incident_ids[0], f->incident_ids[1]);
    assert_int_equal(db_i64(sql), 2);
}

static void check_history_via_api(struct fix *f)
{
    char args[64];
    snprintf(args, sizeof(args), "show %d", f->pinned_id);
    json_t *j = ctl_json(args);
    json_t *s = json_object_get(j, "snapshot") != NULL ? json_object_get(j, "snapshot") : j;
    assert_true(json_is_true(json_object_get(s, "pinned")));
    json_decref(j);
    j = ctl_json("incidents");
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "incidents"), i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "name")), "pkgtest") == 0) {
            found = true;
            assert_int_equal(json_integer_value(json_object_get(v, "snapshots")), 2);
        }
    }
    assert_true(found);
    json_decref(j);
}

static void test_deb(void **state)
{
    struct fix *f = *state;
    build_deb(f);
    struct stat st;
    assert_int_equal(stat(f->deb, &st), 0);
    step(f, "built %s (%lld KiB)", f->deb, (long long)st.st_size / 1024);

    assert_int_equal(cdt_write_file(MARKER, "tests/packaging/test_deb\n", 25), 0);
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "dpkg -i '%s'", f->deb);
    must_sh(NULL, DPKG_MS, "dpkg -i", cmd);
    check_installed();
    read_unit_timings(f);
    step(f, "installed; files, user, directories and systemd-analyze verify are right");

    start_fleet(f);
    write_targets(f);
    step(f, "fleet target pid %d, pprof 127.0.0.1:%d, in %s", f->fleet_pid, f->pprof_port,
         TARGETS_FILE);
    start_service(f);
    step(f,
         "collectord (pid %d) READY=1 and WATCHDOG=1 as user " SVC_USER
         " with CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH",
         (int)f->svc);
    use_as_group_member(f);
    step(f,
         "as " TEST_USER " (group " SVC_USER "): status, local discovery of the gops agent, "
         "capture into incident pkgtest (%d, %d), pin %d, export; nobody refused",
         f->incident_ids[0], f->incident_ids[1], f->pinned_id);
    check_journal(f);
    reload_service(f);
    stop_service(f);
    step(f, "journal prefixes, reload (RELOADING=1, READY=1), stop (STOPPING=1, exit 0)");

    /* remove: the database (with its pins), the config and the user stay */
    unlink(TARGETS_FILE);
    must_sh(NULL, DPKG_MS, "dpkg -r", "dpkg -r " PKG);
    char *s = package_status();
    assert_string_equal(s, "deinstall ok config-files");
    free(s);
    assert_false(file_exists("/usr/bin/collectord"));
    assert_true(file_exists(CONFIG));
    assert_non_null(getpwnam(SVC_USER));
    assert_true(file_exists(DB));
    check_history_in_db(f);
    char *out = NULL;
    must_sh(&out, 60000, "sqlite3 quick_check", "sqlite3 -readonly " DB " 'PRAGMA quick_check'");
    assert_string_equal(out, "ok\n");
    free(out);
    step(f, "removed: the database, its pins and incident, the config and the user stayed");

    /* reinstall: the history is back */
    must_sh(NULL, DPKG_MS, "dpkg -i (again)", cmd);
    write_targets(f);
    start_service(f);
    check_history_via_api(f);
    stop_service(f);
    step(f, "reinstalled and restarted: pins and incident are back");

    /* purge: everything goes */
    unlink(TARGETS_FILE);
    must_sh(NULL, 60000, "userdel", "userdel " TEST_USER);
    must_sh(NULL, DPKG_MS, "dpkg -P", "dpkg -P " PKG);
    assert_false(package_present());
    const char *gone[] = {STATE_DIR, RUN_DIR, "/etc/collectord", "/usr/bin/collectord", UNIT};
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        if (file_exists(gone[i]))
            fail_msg("%s is still there after purge", gone[i]);
    }
    assert_null(getpwnam(SVC_USER));
    assert_null(getgrnam(SVC_USER));
    unlink(MARKER);
    step(f, "purged: database, configuration, directories, user and group are gone");
}

/* ---- before cmocka: skip, serialise, isolate --------------------------------------------- */

static int skip_run(const char *why)
{
    printf("skipped: %s\n", why);
    return 77;
}

/* Runs this program again inside new PID, mount and network namespaces; its exit status. */
static int reexec_isolated(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    setenv("CD_PKG_ISOLATED", "1", 1);
    char *argv[] = {"unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--net",
                    "--",      self,    NULL};
    execvp(argv[0], argv);
    fprintf(stderr, "test_deb: cannot run unshare: %s\n", strerror(errno));
    return 1;
}

static int loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    int rc = 0;
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
        rc = -errno;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (rc == 0 && ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        rc = -errno;
    close(s);
    return rc;
}

static int lock_machine(void)
{
    int fd = open(LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int64_t deadline = cdt_now_ms() + 200000;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (cdt_now_ms() > deadline) {
            close(fd);
            return -ETIMEDOUT;
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return fd;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *instr = getenv("CD_PKG_INSTRUMENTED");
    if (instr != NULL && instr[0] != '\0' && strcmp(instr, "0") != 0 && strcmp(instr, "OFF") != 0)
        return skip_run("this build is instrumented (ASan/UBSan/fuzzing); the package is built and "
                        "installed only from a normal build");
    if (geteuid() != 0)
        return skip_run("installing a package needs root");
    if (getenv("CD_PKG_ISOLATED") == NULL)
        return reexec_isolated();
    int rc = loopback_up();
    if (rc < 0) {
        fprintf(stderr, "test_deb: loopback up: %s\n", strerror(-rc));
        return 1;
    }
    int lock = lock_machine();
    if (lock < 0) {
        fprintf(stderr, "test_deb: %s: %s\n", LOCK_FILE, strerror(-lock));
        return 1;
    }
    if (file_exists(MARKER)) {
        printf("test_deb: cleaning up after an earlier run that did not finish\n");
        purge_everything();
    }
    if (package_present()) {
        close(lock);
        return skip_run("collectord is installed on this machine, and not by this test: leaving it "
                        "alone");
    }
    if (getpwnam(SVC_USER) != NULL || getgrnam(SVC_USER) != NULL || getpwnam(TEST_USER) != NULL ||
        file_exists(STATE_DIR)) {
        close(lock);
        return skip_run("a collectord user, group or /var/lib/collectord exists that this test did "
                        "not make (purging would delete it): leaving it alone");
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deb, setup, teardown),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    close(lock);
    return rc;
}
