/* fleet — see fleet.h. */
#include "fleet.h"

#include "cdtest.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLEET_STOP_MS 5000

/* ---------------------------------------------------------------------------------------------
 * Starting and stopping */

struct start_wait {
    const char *list;
    pid_t pid;
    bool exited;
    int status;
};

static bool list_ready_or_exited(void *ctx)
{
    struct start_wait *w = ctx;
    struct stat st;
    if (stat(w->list, &st) == 0)
        return true;
    if (waitpid(w->pid, &w->status, WNOHANG) == w->pid) {
        w->exited = true;
        return true;
    }
    return false;
}

/* Prints the end of the fleet's log under a cmocka error, so a failed start explains itself. */
static void print_log_tail(const char *dir)
{
    char *log = cdt_path(dir, "fleet.log");
    uint8_t *data = NULL;
    size_t len = 0;
    if (cdt_read_file(log, &data, &len) == 0) {
        size_t from = len > 4000 ? len - 4000 : 0;
        print_error("fleet log (%s):\n%s\n", log, (const char *)data + from);
        free(data);
    }
    free(log);
}

static int copy_name(char *dst, size_t cap, json_t *v)
{
    const char *s = json_string_value(v);
    if (s == NULL || strlen(s) >= cap)
        return -EPROTO;
    snprintf(dst, cap, "%s", s);
    return 0;
}

static int int_field(json_t *obj, const char *key, int lo, int hi, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return -EPROTO;
    *out = (int)json_integer_value(v);
    return 0;
}

static int parse_list(const char *path, struct cdt_fleet_target **targets, size_t *n)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        print_error("cdt_fleet_start: %s:%d: %s\n", path, jerr.line, jerr.text);
        return -EPROTO;
    }
    int rc = -EPROTO;
    struct cdt_fleet_target *t = NULL;
    json_t *arr = json_object_get(root, "targets");
    size_t count = json_array_size(arr);
    if (!json_is_array(arr) || count == 0)
        goto fail;
    t = calloc(count, sizeof(*t));
    if (t == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_array_get(arr, i);
        if (int_field(e, "pid", 1, 1 << 30, &t[i].pid) != 0 ||
            int_field(e, "pprof_port", 1, 65535, &t[i].pprof_port) != 0 ||
            int_field(e, "gops_port", 0, 65535, &t[i].gops_port) != 0 ||
            copy_name(t[i].workload, sizeof(t[i].workload), json_object_get(e, "workload")) != 0 ||
            copy_name(t[i].hostile, sizeof(t[i].hostile), json_object_get(e, "hostile")) != 0)
            goto fail;
    }
    *targets = t;
    *n = count;
    t = NULL;
    rc = 0;
fail:
    if (rc == -EPROTO)
        print_error("cdt_fleet_start: %s: not a target list\n", path);
    free(t);
    json_decref(root);
    return rc;
}

/* Like cdt_spawn, plus PR_SET_PDEATHSIG: a test that crashes or exits without stopping its fleet
 * still takes it down (the launcher then stops its own targets cleanly). */
static pid_t spawn_fleet(char *const argv[], const char *log_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setpgid(0, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

int cdt_fleet_start(struct cdt_fleet *f, const char *const args[], int timeout_ms)
{
    memset(f, 0, sizeof(*f));
    const char *exe = getenv("CD_FLEET");
    if (exe == NULL || *exe == '\0') {
        print_error("cdt_fleet_start: CD_FLEET is not set (run the test through ctest)\n");
        return -ENOENT;
    }
    size_t nargs = 0;
    while (args != NULL && args[nargs] != NULL)
        nargs++;

    int rc = 0;
    char *list = NULL, *log = NULL;
    const char **argv = calloc(nargs + 6, sizeof(*argv));
    assert_non_null(argv);
    f->dir = cdt_tmpdir("fleet");
    f->gops_dir = cdt_path(f->dir, "gops");
    list = cdt_path(f->dir, "list.json");
    log = cdt_path(f->dir, "fleet.log");

    size_t k = 0;
    argv[k++] = exe;
    for (size_t i = 0; i < nargs; i++)
        argv[k++] = args[i];
    argv[k++] = "-list";
    argv[k++] = list;
    argv[k++] = "-gops-dir";
    argv[k++] = f->gops_dir;
    argv[k] = NULL;

    f->pid = spawn_fleet((char *const *)argv, log);
    if (f->pid < 0) {
        rc = f->pid;
        f->pid = 0;
        print_error("cdt_fleet_start: cannot start %s: %s\n", exe, strerror(-rc));
        goto fail;
    }
    struct start_wait w = {.list = list, .pid = f->pid};
    if (cdt_wait_until(list_ready_or_exited, &w, timeout_ms) != 0) {
        rc = -ETIMEDOUT;
        print_error("cdt_fleet_start: no target list after %d ms\n", timeout_ms);
        goto fail;
    }
    if (w.exited) {
        f->pid = 0;
        rc = -ECHILD;
        print_error("cdt_fleet_start: the fleet exited before it was ready (status 0x%x)\n",
                    w.status);
        goto fail;
    }
    rc = parse_list(list, &f->targets, &f->n);
    if (rc != 0)
        goto fail;
    free(argv);
    free(list);
    free(log);
    return 0;
fail:
    if (f->dir != NULL)
        print_log_tail(f->dir);
    cdt_fleet_stop(f);
    free(argv);
    free(list);
    free(log);
    return rc;
}

void cdt_fleet_stop(struct cdt_fleet *f)
{
    if (f == NULL)
        return;
    if (f->pid > 0) {
        cdt_stop(f->pid, SIGTERM, FLEET_STOP_MS);
        /* cdt_spawn made the fleet a process-group leader; anything of it still alive (a child
         * that missed its Pdeathsig) goes with the group. */
        kill(-f->pid, SIGKILL);
    }
    if (f->dir != NULL)
        cdt_rmrf(f->dir);
    free(f->dir);
    free(f->gops_dir);
    free(f->targets);
    memset(f, 0, sizeof(*f));
}

int cdt_proc_stat(int pid, char *state, int *ppid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    /* procfs files have no size to fstat: read what one read gives (the line is short) */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[1024];
    ssize_t n;
    do
        n = read(fd, buf, sizeof(buf) - 1);
    while (n < 0 && errno == EINTR);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    if (rc != 0)
        return rc;
    buf[n] = 0;
    /* "pid (comm) S ppid ...": comm may hold anything, so start after the last ')' */
    const char *p = strrchr(buf, ')');
    char st = 0;
    int pp = 0;
    if (p == NULL || sscanf(p + 1, " %c %d", &st, &pp) != 2)
        return -EPROTO;
    *state = st;
    *ppid = pp;
    return 0;
}

bool cdt_pid_gone(int pid)
{
    char state = 0;
    int ppid = 0;
    if (cdt_proc_stat(pid, &state, &ppid) != 0)
        return true;
    return state == 'Z' || state == 'X';
}

/* ---------------------------------------------------------------------------------------------
 * gops */

static int ms_left(int64_t deadline)
{
    int64_t left = deadline - cdt_now_ms();
    return left < 0 ? 0 : (int)left;
}

/* Waits for events on fd until the deadline: 1 ready, 0 timed out, negative errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, ms_left(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        return r;
    }
}

static int connect_loopback(int port, int64_t deadline, int *fd_out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto fail;
        }
        rc = wait_fd(fd, POLLOUT, deadline);
        if (rc == 0)
            rc = -ETIMEDOUT;
        if (rc < 0)
            goto fail;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr != 0) {
            rc = -soerr;
            goto fail;
        }
    }
    *fd_out = fd;
    return 0;
fail:
    close(fd);
    return rc;
}

int cdt_gops_exchange(int port, const uint8_t *req, size_t req_len, size_t max, uint8_t **out,
                      size_t *len, int timeout_ms)
{
    int64_t deadline = cdt_now_ms() + timeout_ms;
    if (max == 0)
        max = CDT_FLEET_MAX_REPLY;
    size_t cap = max < 4096 ? max : 4096, n = 0;
    uint8_t *buf = malloc(cap + 1);
    assert_non_null(buf);
    int fd = -1;
    int rc = connect_loopback(port, deadline, &fd);
    if (rc != 0)
        goto done;
    for (size_t off = 0; off < req_len;) {
        ssize_t w = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN) {
            rc = -errno;
            goto done;
        }
        rc = wait_fd(fd, POLLOUT, deadline);
        if (rc == 0)
            rc = -ETIMEDOUT;
        if (rc < 0)
            goto done;
    }
    for (;;) {
        if (n == max) {
            rc = -EFBIG;
            goto done;
        }
        if (n == cap) {
            cap = cap * 2 > max ? max : cap * 2;
            uint8_t *nb = realloc(buf, cap + 1);
            assert_non_null(nb);
            buf = nb;
        }
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        if (r == 0) {
            rc = 0;
            goto done;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            rc = -errno;
            goto done;
        }
        rc = wait_fd(fd, POLLIN, deadline);
        if (rc == 0)
            rc = -ETIMEDOUT;
        if (rc < 0)
            goto done;
    }
done:
    if (fd >= 0)
        close(fd);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return rc;
}

/* cdt_gops_exchange with outputs written only on success. */
static int exchange_strict(int port, const uint8_t *req, size_t req_len, uint8_t **out, size_t *len,
                           int timeout_ms)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    int rc = cdt_gops_exchange(port, req, req_len, CDT_FLEET_MAX_REPLY, &buf, &n, timeout_ms);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

int cdt_gops_cmd(int port, int cmd, uint8_t **out, size_t *len, int timeout_ms)
{
    uint8_t req = (uint8_t)cmd;
    return exchange_strict(port, &req, 1, out, len, timeout_ms);
}

int cdt_gops_setgc(int port, int64_t percent, uint8_t **out, size_t *len, int timeout_ms)
{
    /* binary.PutVarint: zig-zag, then LEB128 */
    uint8_t req[16];
    size_t k = 0;
    req[k++] = 0x10;
    uint64_t z = ((uint64_t)percent << 1) ^ (uint64_t)(percent >> 63);
    while (z >= 0x80) {
        req[k++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    req[k++] = (uint8_t)z;
    return exchange_strict(port, req, k, out, len, timeout_ms);
}

/* ---------------------------------------------------------------------------------------------
 * HTTP */

/* Where a GET's body goes: a growing buffer (cdt_http_get) or a probe that only counts. */
struct http_sink {
    uint8_t *buf;
    size_t len, cap;
    size_t max; /* 0 = no limit */
    bool over;
    struct cdt_http_probe *probe;
};

static size_t http_write(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct http_sink *s = ctx;
    size_t n = size * nmemb;
    if (s->max != 0 && s->len + n > s->max) {
        s->over = true;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap == 0 ? 16384 : s->cap;
        while (cap < s->len + n + 1)
            cap *= 2;
        uint8_t *nb = realloc(s->buf, cap);
        if (nb == NULL)
            return 0;
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return n;
}

static int curl_to_errno(CURLcode c, bool over)
{
    switch (c) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return -ECONNRESET;
    case CURLE_WRITE_ERROR:
        return over ? -EFBIG : -EIO;
    default:
        return -EPROTO;
    }
}

static CURL *easy_for(int port, const char *path, int timeout_ms, char *errbuf)
{
    char url[2048];
    if ((size_t)snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path) >= sizeof(url))
        return NULL;
    CURL *c = curl_easy_init();
    if (c == NULL)
        return NULL;
    errbuf[0] = 0;
    if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write) != CURLE_OK) {
        curl_easy_cleanup(c);
        return NULL;
    }
    return c;
}

int cdt_http_get(int port, const char *path_and_query, int *status, uint8_t **body, size_t *len,
                 int timeout_ms)
{
    char errbuf[CURL_ERROR_SIZE];
    struct http_sink s = {.max = CDT_FLEET_MAX_REPLY};
    CURL *c = easy_for(port, path_and_query, timeout_ms, errbuf);
    if (c == NULL)
        return -ENOMEM;
    if (curl_easy_setopt(c, CURLOPT_WRITEDATA, &s) != CURLE_OK) {
        curl_easy_cleanup(c);
        return -ENOMEM;
    }
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    int rc = curl_to_errno(cc, s.over);
    if (rc != 0) {
        free(s.buf);
        return rc;
    }
    if (s.buf == NULL) {
        s.buf = malloc(1);
        assert_non_null(s.buf);
    }
    s.buf[s.len] = 0;
    *status = (int)code;
    *body = s.buf;
    *len = s.len;
    return 0;
}

static size_t probe_write(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct http_sink *s = ctx;
    struct cdt_http_probe *p = s->probe;
    size_t n = size * nmemb;
    if (p->bytes < sizeof(p->head)) {
        size_t room = sizeof(p->head) - p->bytes;
        memcpy(p->head + p->bytes, data, n < room ? n : room);
    }
    p->bytes += n;
    if (s->max != 0 && p->bytes >= s->max) {
        p->stopped = true;
        return 0; /* abort the transfer: the test has seen enough */
    }
    return n;
}

static size_t probe_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct cdt_http_probe *p = ctx;
    size_t n = size * nmemb;
    char line[512];
    size_t k = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
    memcpy(line, data, k);
    line[k] = 0;
    line[strcspn(line, "\r\n")] = 0;
    if (strncasecmp(line, "Content-Type:", 13) == 0)
        snprintf(p->content_type, sizeof(p->content_type), "%s",
                 line + 13 + strspn(line + 13, " "));
    else if (strncasecmp(line, "X-Go-Pprof:", 11) == 0)
        p->x_go_pprof = strcmp(line + 11 + strspn(line + 11, " "), "1") == 0;
    return n;
}

int cdt_http_probe(int port, const char *path_and_query, size_t stop_after, int timeout_ms,
                   struct cdt_http_probe *p)
{
    memset(p, 0, sizeof(*p));
    p->content_length = -1;
    int64_t start = cdt_now_ms();
    struct http_sink s = {.max = stop_after, .probe = p};
    char errbuf[CURL_ERROR_SIZE];
    CURL *c = easy_for(port, path_and_query, timeout_ms, errbuf);
    if (c == NULL)
        return -ENOMEM;
    if (curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, probe_write) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &s) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, probe_header) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_HEADERDATA, p) != CURLE_OK) {
        curl_easy_cleanup(c);
        return -ENOMEM;
    }
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_off_t cl = -1;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    curl_easy_cleanup(c);
    p->status = (int)code;
    p->content_length = cl;
    p->elapsed_ms = cdt_now_ms() - start;
    snprintf(p->error, sizeof(p->error), "%s", cc == CURLE_OK ? "" : errbuf);
    if (p->stopped)
        return 0;
    return curl_to_errno(cc, false);
}
