/* e2e — see e2e.h. */
#include "e2e.h"

#include "hash.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

extern char **environ;

/* ---- JSON ---------------------------------------------------------------------------------- */

int64_t e2e_jint(const json_t *o, const char *k, int64_t def)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

const char *e2e_jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

const char *e2e_label(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(json_object_get(o, "labels"), name));
}

const json_t *e2e_targets(const json_t *list)
{
    return json_object_get(list, "targets");
}

const json_t *e2e_find_target(const json_t *list, const char *scheme, const char *label,
                              const char *value)
{
    size_t i;
    const json_t *t;
    json_array_foreach(e2e_targets(list), i, t)
    {
        const char *s = e2e_jstr(t, "scheme");
        const char *v = e2e_label(t, label);
        if (s != NULL && v != NULL && strcmp(s, scheme) == 0 && strcmp(v, value) == 0)
            return t;
    }
    return NULL;
}

const json_t *e2e_target_kind(const json_t *target, const char *kind)
{
    size_t i;
    const json_t *k;
    json_array_foreach(json_object_get(target, "kinds"), i, k)
    {
        const char *n = e2e_jstr(k, "kind");
        if (n != NULL && strcmp(n, kind) == 0)
            return k;
    }
    return NULL;
}

json_t *e2e_snapshots(struct cdt_daemon *d, const char *const extra[], int max_pages)
{
    json_t *all = json_array();
    assert_non_null(all);
    char *cursor = NULL;
    for (int page = 0; page < max_pages; page++) {
        const char *args[40];
        int n = 0;
        args[n++] = "snapshots";
        args[n++] = "-n";
        args[n++] = "1000";
        if (cursor != NULL) {
            args[n++] = "--cursor";
            args[n++] = cursor;
        }
        for (int i = 0; extra != NULL && extra[i] != NULL && n < 38; i++)
            args[n++] = extra[i];
        args[n] = NULL;
        json_t *j = cdt_ctl_json(d, 20000, args);
        if (j == NULL) {
            cdt_daemon_print_log(d, 30);
            fail_msg("collectorctl snapshots failed");
        }
        json_array_extend(all, json_object_get(j, "snapshots"));
        free(cursor);
        const char *next = e2e_jstr(j, "next_cursor");
        cursor = next != NULL ? strdup(next) : NULL;
        json_decref(j);
        if (cursor == NULL)
            break;
    }
    free(cursor);
    return all;
}

/* ---- processes ------------------------------------------------------------------------------ */

static char *slurp_fd(int fd)
{
    lseek(fd, 0, SEEK_SET);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    return buf;
}

static int tmpfile_fd(void)
{
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/cd-e2e-out-XXXXXX", dir != NULL ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

int e2e_run(char *const argv[], char *const env[], char **out, char **err, int timeout_ms)
{
    int ofd = tmpfile_fd(), efd = tmpfile_fd();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        for (int i = 0; env != NULL && env[i] != NULL; i++)
            putenv(env[i]);
        execv(argv[0], argv);
        _exit(127);
    }
    int64_t deadline = cdt_now_ms() + timeout_ms;
    int status = 0;
    int rc;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        if (cdt_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            rc = -ETIMEDOUT;
            break;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (out != NULL)
        *out = slurp_fd(ofd);
    if (err != NULL)
        *err = slurp_fd(efd);
    close(ofd);
    close(efd);
    return rc;
}

int e2e_ctl(struct cdt_daemon *d, char **out, char **err, int timeout_ms, const char *const args[])
{
    char *argv[48];
    int n = 0;
    argv[n++] = (char *)cdt_env("CD_COLLECTORCTL");
    argv[n++] = "-s";
    argv[n++] = d->socket;
    for (int i = 0; args[i] != NULL && n < 47; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return e2e_run(argv, NULL, out, err, timeout_ms);
}

int e2e_daemon_run_to_exit(struct cdt_daemon *d, const char *const extra[], int timeout_ms)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)cdt_env("CD_COLLECTORD");
    argv[n++] = "-c";
    argv[n++] = d->config;
    argv[n++] = "--log-style";
    argv[n++] = "plain";
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 31; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    pid_t pid = cdt_spawn(argv, d->log);
    assert_true(pid > 0);
    int64_t deadline = cdt_now_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (cdt_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -ETIMEDOUT;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

bool e2e_log_contains(const struct cdt_daemon *d, const char *needle)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (cdt_read_file(d->log, &data, &len) != 0)
        return false;
    bool found = memmem(data, len, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

struct log_wait {
    const struct cdt_daemon *d;
    const char *needle;
};

static bool log_has(void *ctx)
{
    struct log_wait *w = ctx;
    return e2e_log_contains(w->d, w->needle);
}

void e2e_wait_log(const struct cdt_daemon *d, const char *needle, int timeout_ms)
{
    struct log_wait w = {d, needle};
    if (cdt_wait_until(log_has, &w, timeout_ms) != 0) {
        cdt_daemon_print_log(d, 40);
        fail_msg("the log never said '%s' within %d ms", needle, timeout_ms);
    }
}

/* ---- bytes ---------------------------------------------------------------------------------- */

void e2e_sha_hex(const uint8_t *data, size_t len, char hex[E2E_SHA_HEX])
{
    uint8_t h[CD_HASH_SHA256_LEN];
    assert_int_equal(cd_hash_sha256(data != NULL ? data : (const uint8_t *)"", len, h), 0);
    cd_hash_hex(h, sizeof(h), hex);
}

bool e2e_stop_clean(struct cdt_daemon *d, int timeout_ms, int *status)
{
    *status = 0;
    if (d->pid <= 0)
        return true;
    *status = cdt_daemon_stop(d, SIGTERM, timeout_ms);
    if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        return true;
    cdt_daemon_print_log(d, 40);
    return false;
}

void e2e_fetch(struct cdt_daemon *d, int64_t id, uint8_t **data, size_t *len)
{
    char ids[32], name[64];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    snprintf(name, sizeof(name), "fetch-%lld.bin", (long long)id);
    char *file = cdt_path(d->dir, name);
    const char *args[] = {"fetch", ids, "-o", file, "--force", NULL};
    char *err = NULL;
    int rc = e2e_ctl(d, NULL, &err, 20000, args);
    if (rc != 0)
        fail_msg("collectorctl fetch %s: exit %d: %s", ids, rc, err);
    free(err);
    assert_int_equal(cdt_read_file(file, data, len), 0);
    unlink(file);
    free(file);
}

/* ---- the database ------------------------------------------------------------------------- */

sqlite3 *e2e_db_open(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        fail_msg("sqlite3 open %s read-only: %s", path, msg);
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

void e2e_db_close(sqlite3 *db)
{
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

void e2e_db_integrity(sqlite3 *db)
{
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW)
        fail_msg("integrity_check: %s", sqlite3_errmsg(db));
    const char *res = (const char *)sqlite3_column_text(q, 0);
    if (res == NULL || strcmp(res, "ok") != 0)
        fail_msg("integrity_check: %s", res != NULL ? res : "(null)");
    sqlite3_finalize(q);
}

int e2e_db_snapshot(sqlite3 *db, int64_t id, char hex[E2E_SHA_HEX], size_t *len)
{
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT b.encoding, b.raw_len, b.data, s.blob_id "
                                        "FROM snapshots s LEFT JOIN blobs b ON b.id = s.blob_id "
                                        "WHERE s.id = ?1",
                                        -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(q, 1, id);
    int rc = sqlite3_step(q);
    int found = 0;
    hex[0] = '\0';
    *len = 0;
    if (rc == SQLITE_ROW) {
        found = 1;
        if (sqlite3_column_type(q, 3) != SQLITE_NULL) {
            int enc = sqlite3_column_int(q, 0);
            size_t raw_len = (size_t)sqlite3_column_int64(q, 1);
            const uint8_t *data = sqlite3_column_blob(q, 2);
            size_t n = (size_t)sqlite3_column_bytes(q, 2);
            if (enc == 1) {
                uint8_t *raw = malloc(raw_len > 0 ? raw_len : 1);
                assert_non_null(raw);
                size_t got = ZSTD_decompress(raw, raw_len, data, n);
                if (ZSTD_isError(got) || got != raw_len)
                    fail_msg("snapshot %lld: stored zstd frame does not decompress to %zu bytes",
                             (long long)id, raw_len);
                e2e_sha_hex(raw, raw_len, hex);
                free(raw);
            } else {
                e2e_sha_hex(data, n, hex);
                raw_len = n;
            }
            *len = raw_len;
        }
    } else if (rc != SQLITE_DONE) {
        fail_msg("read snapshot %lld: %s", (long long)id, sqlite3_errmsg(db));
    }
    sqlite3_finalize(q);
    return found;
}

/* ---- HTTP on the query socket --------------------------------------------------------------- */

struct body {
    char *p;
    size_t n;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t k = size * nmemb;
    char *np = realloc(b->p, b->n + k + 1);
    if (np == NULL)
        return 0;
    memcpy(np + b->n, ptr, k);
    b->p = np;
    b->n += k;
    b->p[b->n] = '\0';
    return k;
}

void e2e_api_get(struct cdt_daemon *d, const char *path, long *status, char **body)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[1024];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    struct body b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, d->socket);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fail_msg("GET %s on %s: %s", path, d->socket, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    if (b.p == NULL)
        b.p = strdup("");
    *body = b.p;
}

int e2e_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

void e2e_rand_init(uint64_t *state)
{
    *state = ((uint64_t)getpid() << 32) ^ (uint64_t)cdt_now_ms() ^ 0x9e3779b97f4a7c15ull;
    print_message("random seed %llu\n", (unsigned long long)*state);
}

int e2e_rand_between(uint64_t *state, int lo, int hi)
{
    uint64_t s = *state;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    *state = s;
    return lo + (int)(s % (uint64_t)(hi - lo + 1));
}
