/* pkgutil (packaging tests) — see pkgutil.h. */
#include "pkgutil.h"

#include "cdtest.h"
#include "fleet.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- notify ---------------------------------------------------------------------------------- */

void pk_notify_open(struct pk_notify *nt, const char *dir)
{
    memset(nt, 0, sizeof(*nt));
    nt->path = cdt_path(dir, "notify");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(nt->path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, nt->path, strlen(nt->path) + 1);
    nt->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(nt->fd >= 0);
    unlink(nt->path);
    assert_int_equal(bind(nt->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(chmod(nt->path, 0777), 0);
    int one = 1;
    assert_int_equal(setsockopt(nt->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
}

void pk_notify_close(struct pk_notify *nt)
{
    if (nt->fd > 0)
        close(nt->fd);
    if (nt->path != NULL)
        unlink(nt->path);
    for (size_t i = 0; i < nt->n; i++)
        free(nt->msgs[i]);
    free(nt->msgs);
    free(nt->pids);
    free(nt->path);
    memset(nt, 0, sizeof(*nt));
}

static void notify_drain(struct pk_notify *nt)
{
    for (;;) {
        char buf[4096];
        union {
            struct cmsghdr h;
            char space[CMSG_SPACE(sizeof(struct ucred))];
        } ctl;
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl)};
        ssize_t r = recvmsg(nt->fd, &mh, MSG_DONTWAIT);
        if (r < 0)
            return;
        buf[r] = '\0';
        pid_t pid = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                struct ucred uc;
                memcpy(&uc, CMSG_DATA(c), sizeof(uc));
                pid = uc.pid;
            }
        }
        if (nt->n == nt->cap) {
            nt->cap = nt->cap ? nt->cap * 2 : 32;
            nt->msgs = realloc(nt->msgs, nt->cap * sizeof(*nt->msgs));
            nt->pids = realloc(nt->pids, nt->cap * sizeof(*nt->pids));
            assert_non_null(nt->msgs);
            assert_non_null(nt->pids);
        }
        nt->msgs[nt->n] = strdup(buf);
        assert_non_null(nt->msgs[nt->n]);
        nt->pids[nt->n] = pid;
        nt->n++;
    }
}

static bool has_line(const char *msg, const char *line)
{
    size_t l = strlen(line);
    for (const char *p = msg; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (len == l && memcmp(p, line, l) == 0)
            return true;
        p = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}

int pk_notify_wait(struct pk_notify *nt, const char *line, size_t start, pid_t from_pid,
                   int timeout_ms)
{
    int64_t deadline = cdt_now_ms() + timeout_ms;
    size_t checked = start;
    for (;;) {
        notify_drain(nt);
        for (; checked < nt->n; checked++) {
            if ((from_pid == 0 || nt->pids[checked] == from_pid) &&
                has_line(nt->msgs[checked], line))
                return (int)checked;
        }
        int64_t left = deadline - cdt_now_ms();
        if (left <= 0)
            return -1;
        if (from_pid > 0 && cdt_pid_gone(from_pid)) {
            notify_drain(nt); /* what it sent before it went */
            for (; checked < nt->n; checked++) {
                if (nt->pids[checked] == from_pid && has_line(nt->msgs[checked], line))
                    return (int)checked;
            }
            return -1;
        }
        struct pollfd p = {.fd = nt->fd, .events = POLLIN};
        poll(&p, 1, left > 100 ? 100 : (int)left);
    }
}

size_t pk_notify_count(const struct pk_notify *nt, const char *line, size_t start)
{
    size_t c = 0;
    for (size_t i = start; i < nt->n; i++)
        c += has_line(nt->msgs[i], line);
    return c;
}

char *pk_notify_value(const struct pk_notify *nt, size_t i, const char *key)
{
    if (i >= nt->n)
        return NULL;
    size_t kl = strlen(key);
    for (const char *p = nt->msgs[i]; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (len > kl && memcmp(p, key, kl) == 0 && p[kl] == '=')
            return strndup(p + kl + 1, len - kl - 1);
        p = nl != NULL ? nl + 1 : NULL;
    }
    return NULL;
}

void pk_notify_dump(const struct pk_notify *nt)
{
    for (size_t i = 0; i < nt->n; i++) {
        print_message("notify[%zu] from pid %d: ", i, (int)nt->pids[i]);
        for (const char *p = nt->msgs[i]; *p != '\0'; p++)
            print_message("%c", *p == '\n' ? '|' : *p);
        print_message("\n");
    }
}

/* ---- processes ------------------------------------------------------------------------------- */

static bool env_named(const char *entry, const char *name)
{
    size_t l = strlen(name);
    return strncmp(entry, name, l) == 0 && entry[l] == '=';
}

static bool env_overridden(const char *entry, const char *const set[], const char *const unset[])
{
    for (size_t i = 0; unset != NULL && unset[i] != NULL; i++) {
        if (env_named(entry, unset[i]))
            return true;
    }
    for (size_t i = 0; set != NULL && set[i] != NULL; i++) {
        const char *eq = strchr(set[i], '=');
        size_t l = eq != NULL ? (size_t)(eq - set[i]) : strlen(set[i]);
        if (strncmp(entry, set[i], l) == 0 && entry[l] == '=')
            return true;
    }
    return false;
}

pid_t pk_spawn(char *const argv[], const char *const env_set[], const char *const env_unset[],
               int out_fd, int listen_fd)
{
    /* The environment is built before fork(): the child only calls async-signal-safe code. */
    size_t n = 0, extra = 0;
    while (environ[n] != NULL)
        n++;
    while (env_set != NULL && env_set[extra] != NULL)
        extra++;
    char **envp = calloc(n + extra + 1, sizeof(*envp));
    assert_non_null(envp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!env_overridden(environ[i], env_set, env_unset))
            envp[k++] = environ[i];
    }
    for (size_t i = 0; i < extra; i++)
        envp[k++] = (char *)env_set[i];
    envp[k] = NULL;
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(devnull >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        dup2(devnull, 0);
        if (out_fd >= 0) {
            dup2(out_fd, 1);
            dup2(out_fd, 2);
        }
        if (listen_fd >= 0) {
            if (listen_fd == 3) {
                int fl = fcntl(3, F_GETFD);
                fcntl(3, F_SETFD, fl & ~FD_CLOEXEC);
            } else if (dup2(listen_fd, 3) < 0) {
                _exit(126);
            }
        }
        execvpe(argv[0], argv, envp);
        _exit(127);
    }
    setpgid(pid, pid);
    close(devnull);
    free(envp);
    return pid;
}

int pk_wait(pid_t pid, int timeout_ms)
{
    int64_t deadline = cdt_now_ms() + timeout_ms;
    for (;;) {
        int st = 0;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return st;
        if (w < 0 || cdt_now_ms() > deadline)
            return -1;
        nap_ms(10);
    }
}

void pk_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int pk_sh(char **out, int timeout_ms, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_true(w > 0 && (size_t)w < sizeof(cmd));
    char script[8300];
    snprintf(script, sizeof(script), "exec 2>&1\n%s", cmd);
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    char *text = NULL;
    int st = cdt_run(argv, &text, timeout_ms);
    int rc = st < 0 ? -1 : st; /* cdt_run decodes the wait status already */
    if (out != NULL) {
        *out = text != NULL ? text : strdup("");
    } else {
        if (text != NULL && text[0] != '\0')
            print_message("%s%s", text, text[strlen(text) - 1] == '\n' ? "" : "\n");
        free(text);
    }
    return rc;
}

/* ---- logs -------------------------------------------------------------------------------------
 */

void pk_journal_stream(int fd, char *out, size_t size)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    snprintf(out, size, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
}

bool pk_log_wait(const char *path, const char *needle, int timeout_ms)
{
    int64_t deadline = cdt_now_ms() + timeout_ms;
    for (;;) {
        uint8_t *data = NULL;
        size_t len = 0;
        bool found = false;
        if (cdt_read_file(path, &data, &len) == 0) {
            found = memmem(data, len, needle, strlen(needle)) != NULL;
            free(data);
        }
        if (found)
            return true;
        if (cdt_now_ms() > deadline)
            return false;
        nap_ms(20);
    }
}

void pk_log_tail(const char *path, int lines)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (cdt_read_file(path, &data, &len) != 0) {
        print_message("(no log at %s)\n", path);
        return;
    }
    size_t start = len;
    int seen = 0;
    while (start > 0 && seen <= lines) {
        start--;
        if (data[start] == '\n')
            seen++;
    }
    if (seen > lines)
        start++;
    print_message("--- %s (last %d lines)\n%.*s\n---\n", path, lines, (int)(len - start),
                  (const char *)data + start);
    free(data);
}

char *pk_mkdtemp(const char *parent, const char *tag, mode_t mode)
{
    const char *base = parent;
    if (base == NULL) {
        base = getenv("TMPDIR");
        if (base == NULL || base[0] == '\0')
            base = "/tmp";
    }
    size_t n = strlen(base) + strlen(tag) + 16;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s.XXXXXX", base, tag);
    assert_non_null(mkdtemp(p));
    assert_int_equal(chmod(p, mode), 0);
    return p;
}
