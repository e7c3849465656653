/* cdtest — see cdtest.h. */
#include "cdtest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *cdt_shared_dir(void)
{
    const char *d = getenv("CD_SHARED_DIR");
    if (d == NULL || *d == '\0')
        return NULL;
    char probe[4096];
    snprintf(probe, sizeof(probe), "%s/testdata", d);
    struct stat st;
    if (stat(probe, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return d;
}

const char *cdt_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        fail_msg("environment variable %s is not set (run the test through ctest)", name);
    return v;
}

char *cdt_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int cdt_read_file(const char *path, uint8_t **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *p = malloc(n + 1);
    if (p == NULL) {
        close(fd);
        return -ENOMEM;
    }
    size_t off = 0;
    while (off < n) {
        ssize_t r = read(fd, p + off, n - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    close(fd);
    p[off] = 0;
    *data = p;
    *len = off;
    return 0;
}

int cdt_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    const uint8_t *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -EIO;
        }
        off += (size_t)w;
    }
    return close(fd) == 0 ? 0 : -errno;
}

char *cdt_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    size_t n = strlen(base) + strlen(tag) + 32;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/cdtest-%s-XXXXXX", base, tag);
    assert_non_null(mkdtemp(p));
    return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void cdt_rmrf(const char *path)
{
    if (path != NULL)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int64_t cdt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cdt_wait_until(bool (*cond)(void *ctx), void *ctx, int timeout_ms)
{
    int64_t deadline = cdt_now_ms() + timeout_ms;
    for (;;) {
        if (cond(ctx))
            return 0;
        if (cdt_now_ms() >= deadline)
            return -ETIMEDOUT;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

pid_t cdt_spawn(char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        if (log_path != NULL) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        /* Children die with the test, so a failing test leaves nothing running. */
        setpgid(0, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

int cdt_run(char *const argv[], char **out, int timeout_ms)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        dup2(pipefd[1], 1);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pipefd[1]);
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    int64_t deadline = cdt_now_ms() + timeout_ms;
    int status = 0, done = 0, eof = 0;
    while (!done || !eof) {
        if (!eof) {
            if (len + 1024 > cap) {
                cap *= 2;
                buf = realloc(buf, cap);
                assert_non_null(buf);
            }
            ssize_t r = read(pipefd[0], buf + len, cap - len - 1);
            if (r > 0) {
                len += (size_t)r;
                continue;
            }
            if (r == 0)
                eof = 1;
        }
        if (!done) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid)
                done = 1;
        }
        if (cdt_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            close(pipefd[0]);
            free(buf);
            return -ETIMEDOUT;
        }
        if (!done || !eof) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    close(pipefd[0]);
    buf[len] = 0;
    if (out != NULL)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int cdt_stop(pid_t pid, int sig, int timeout_ms)
{
    int status = 0;
    if (pid <= 0)
        return -EINVAL;
    kill(pid, sig);
    int64_t deadline = cdt_now_ms() + timeout_ms;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return status;
        if (w < 0)
            return -errno;
        if (cdt_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return status;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
