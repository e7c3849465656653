/*
 * client — the query API client library (include/collectord/client.h): HTTP over the Unix
 * socket (CURLOPT_UNIX_SOCKET_PATH) or TCP with a bearer token, JSON in and out, downloads
 * streamed to a file descriptor. Runs on its caller's thread; owns one libcurl easy handle.
 */
#include <collectord/client.h>

#include <collectord/api.h>

#include "buf.h"
#include "err.h"
#include "str.h"
#include "units.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CONNECT_MS 5000
#define DEFAULT_MAX_RESP   (256u << 20)
#define ERROR_BODY_MAX     (64u * 1024)
#define HEADER_VALUE_MAX   1024

struct cd_client {
    CURL *curl;
    char *endpoint; /* as given or defaulted */
    char *socket;   /* Unix socket path, or NULL */
    char *base;     /* "http://localhost" or "http://host:port" without trailing '/' */
    char *auth;     /* "Authorization: Bearer ..." or NULL */
    long connect_timeout_ms;
    long timeout_ms;
    size_t max_response;
    cd_client_progress_fn progress;
    void *progress_ctx;
    char errbuf[CURL_ERROR_SIZE];
};

/* One transfer's sinks. */
struct xfer {
    struct cd_client *c;
    struct cd_buf body;
    int fd;     /* download target, or -1 */
    bool to_fd; /* false once an error status switches to buffering */
    bool overflow;
    int write_errno;
    long status;
    char *content_type;
    char *filename;
    uint64_t received;
    int64_t start_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cd_client_new(const struct cd_client_options *opts, struct cd_client **out, struct cd_err *err)
{
    int rc = 0;
    struct cd_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return cd_err_set(err, -ENOMEM, "out of memory");
    const char *ep = opts != NULL ? opts->endpoint : NULL;
    if (ep == NULL || *ep == '\0')
        ep = getenv(CD_CLIENT_ENV_ENDPOINT);
    if (ep == NULL || *ep == '\0')
        ep = CD_API_DEFAULT_SOCKET;
    c->endpoint = cd_str_dup(ep);
    if (c->endpoint == NULL) {
        rc = cd_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    if (cd_str_has_prefix(ep, "http://") || cd_str_has_prefix(ep, "https://")) {
        size_t n = strlen(ep);
        while (n > 0 && ep[n - 1] == '/')
            n--;
        c->base = cd_str_ndup(ep, n);
        const char *token = opts != NULL ? opts->token : NULL;
        if (token != NULL && *token != '\0') {
            c->auth = cd_str_printf("Authorization: Bearer %s", token);
            if (c->auth == NULL) {
                rc = cd_err_set(err, -ENOMEM, "out of memory");
                goto fail;
            }
        }
    } else {
        const char *path = cd_str_has_prefix(ep, "unix:") ? ep + 5 : ep;
        if (*path == '\0') {
            rc = cd_err_set(err, -EINVAL, "empty socket path");
            goto fail;
        }
        c->socket = cd_str_dup(path);
        c->base = cd_str_dup("http://localhost");
    }
    bool is_unix = !(cd_str_has_prefix(ep, "http://") || cd_str_has_prefix(ep, "https://"));
    if (c->base == NULL || (is_unix && c->socket == NULL)) {
        rc = cd_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    c->connect_timeout_ms = opts != NULL && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms
                                                                         : DEFAULT_CONNECT_MS;
    c->timeout_ms = opts != NULL ? opts->timeout_ms : 0;
    c->max_response =
        opts != NULL && opts->max_response_bytes > 0 ? opts->max_response_bytes : DEFAULT_MAX_RESP;
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        rc = cd_err_set(err, -ENOMEM, "libcurl: cannot create a handle");
        goto fail;
    }
    *out = c;
    return 0;
fail:
    cd_client_free(c);
    return rc;
}

void cd_client_free(struct cd_client *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    free(c->endpoint);
    free(c->socket);
    free(c->base);
    if (c->auth != NULL) {
        memset(c->auth, 0, strlen(c->auth));
        free(c->auth);
    }
    free(c);
}

const char *cd_client_endpoint(const struct cd_client *c)
{
    return c->endpoint;
}

bool cd_client_is_unix(const struct cd_client *c)
{
    return c->socket != NULL;
}

void cd_client_set_progress(struct cd_client *c, cd_client_progress_fn fn, void *ctx)
{
    c->progress = fn;
    c->progress_ctx = ctx;
}

void cd_client_set_timeout(struct cd_client *c, long timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

void cd_client_response_free(struct cd_client_response *r)
{
    if (r == NULL)
        return;
    free(r->body);
    json_decref(r->json);
    free(r->content_type);
    free(r->filename);
    memset(r, 0, sizeof(*r));
}

/* ---- callbacks ------------------------------------------------------------------------- */

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    if (x->status == 0)
        curl_easy_getinfo(x->c->curl, CURLINFO_RESPONSE_CODE, &x->status);
    x->received += n;
    if (x->to_fd && x->status >= 200 && x->status < 300) {
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(x->fd, data + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                x->write_errno = w < 0 ? errno : EIO;
                return 0;
            }
            off += (size_t)w;
        }
        return n;
    }
    int rc = cd_buf_append(&x->body, data, n);
    if (rc != 0) {
        x->overflow = rc == -EFBIG;
        return 0;
    }
    return n;
}

/* Keeps the file name from Content-Disposition only when it is a plain name. */
static char *safe_filename(const char *v)
{
    const char *p = strstr(v, "filename=");
    if (p == NULL)
        return NULL;
    p += strlen("filename=");
    bool quoted = *p == '"';
    if (quoted)
        p++;
    size_t n = 0;
    while (p[n] != '\0' && p[n] != '"' && p[n] != ';' && p[n] != '\r' && p[n] != '\n' &&
           (quoted || !isspace((unsigned char)p[n])))
        n++;
    if (n == 0 || n > 255)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (!(isalnum(ch) || ch == '.' || ch == '_' || ch == '-'))
            return NULL;
    }
    if (p[0] == '.')
        return NULL;
    return cd_str_ndup(p, n);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    if (n > HEADER_VALUE_MAX)
        return n;
    char line[HEADER_VALUE_MAX + 1];
    memcpy(line, data, n);
    line[n] = '\0';
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        line[--n] = '\0';
    if (cd_str_has_prefix(line, "HTTP/")) {
        /* A new response (e.g. after 100 Continue): forget the previous one's headers. */
        free(x->content_type);
        free(x->filename);
        x->content_type = NULL;
        x->filename = NULL;
        x->status = 0;
        return size * nmemb;
    }
    char *colon = strchr(line, ':');
    if (colon == NULL)
        return size * nmemb;
    *colon = '\0';
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (strcasecmp(line, "Content-Type") == 0) {
        free(x->content_type);
        x->content_type = cd_str_dup(v);
    } else if (strcasecmp(line, "Content-Disposition") == 0) {
        free(x->filename);
        x->filename = safe_filename(v);
    }
    return size * nmemb;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)ultotal;
    (void)ulnow;
    struct xfer *x = userdata;
    if (x->c->progress != NULL)
        x->c->progress(x->c->progress_ctx, (uint64_t)(dlnow > 0 ? dlnow : 0),
                       (uint64_t)(dltotal > 0 ? dltotal : 0), now_ms() - x->start_ms);
    return 0;
}

/* ---- requests --------------------------------------------------------------------------- */

static char *build_url(struct cd_client *c, const char *path, const char *const *query)
{
    struct cd_buf b;
    cd_buf_init(&b, 64 * 1024);
    bool absolute = cd_str_has_prefix(path, "/metrics") || cd_str_has_prefix(path, "/api/");
    int rc = cd_buf_printf(&b, "%s%s%s", c->base, absolute ? "" : CD_API_PREFIX, path);
    char sep = strchr(path, '?') != NULL ? '&' : '?';
    for (size_t i = 0; rc == 0 && query != NULL && query[i] != NULL; i += 2) {
        if (query[i + 1] == NULL)
            continue;
        char *k = curl_easy_escape(c->curl, query[i], 0);
        char *v = curl_easy_escape(c->curl, query[i + 1], 0);
        if (k == NULL || v == NULL)
            rc = -ENOMEM;
        else
            rc = cd_buf_printf(&b, "%c%s=%s", sep, k, v);
        curl_free(k);
        curl_free(v);
        sep = '&';
    }
    if (rc == 0)
        rc = cd_buf_terminate(&b);
    if (rc != 0) {
        cd_buf_free(&b);
        return NULL;
    }
    size_t len;
    return (char *)cd_buf_steal(&b, &len);
}

/* The errno and message for a transport failure. */
static int transport_error(struct cd_client *c, CURLcode code, struct xfer *x, struct cd_err *err)
{
    long os = 0;
    curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os);
    const char *where = c->endpoint;
    if (code == CURLE_WRITE_ERROR && x->overflow) {
        char lim[32];
        return cd_err_set(err, -EFBIG, "the response from %s passed the %s limit", where,
                          cd_units_fmt_size(lim, sizeof(lim), c->max_response));
    }
    if (code == CURLE_WRITE_ERROR && x->write_errno != 0)
        return cd_err_set(err, -x->write_errno, "writing the download: %s",
                          strerror(x->write_errno));
    if (code == CURLE_OPERATION_TIMEDOUT)
        return cd_err_set(err, -ETIMEDOUT, "%s did not answer in time", where);
    if (code == CURLE_COULDNT_CONNECT) {
        int e = os != 0 ? (int)os : ECONNREFUSED;
        if (c->socket != NULL && e == ENOENT)
            return cd_err_set(err, -ENOENT, "no socket at %s", where);
        if (e == EACCES || e == EPERM)
            return cd_err_set(err, -EACCES, "permission denied on %s", where);
        return cd_err_set(err, -e, "cannot connect to %s: %s", where, strerror(e));
    }
    if (code == CURLE_GOT_NOTHING || code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR ||
        code == CURLE_PARTIAL_FILE)
        return cd_err_set(err, -EPROTO, "%s closed the connection early (%s)", where,
                          c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
    return cd_err_set(err, -EIO, "%s: %s", where,
                      c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
}

#define SETOPT(h, opt, val)                                                                        \
    do {                                                                                           \
        if (rc == 0 && curl_easy_setopt(h, opt, val) != CURLE_OK)                                  \
            rc = cd_err_set(err, -EINVAL, "libcurl: cannot set " #opt);                            \
    } while (0)

static int perform(struct cd_client *c, const char *method, const char *path,
                   const char *const *query, const json_t *body, int fd,
                   struct cd_client_response *resp, struct cd_err *err)
{
    int rc = 0;
    char *url = build_url(c, path, query);
    char *payload = NULL;
    struct curl_slist *headers = NULL;
    struct xfer x = {.c = c, .fd = fd, .to_fd = fd >= 0};
    cd_buf_init(&x.body, fd >= 0 ? ERROR_BODY_MAX : c->max_response);
    if (url == NULL) {
        rc = cd_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    if (body != NULL) {
        payload = json_dumps(body, JSON_COMPACT);
        if (payload == NULL) {
            rc = cd_err_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        headers = curl_slist_append(headers, "Content-Type: application/json");
    }
    headers = curl_slist_append(headers, "Accept: application/json");
    /* Never let curl wait for a 100 Continue: our bodies are small. */
    headers = curl_slist_append(headers, "Expect:");
    if (c->auth != NULL)
        headers = curl_slist_append(headers, c->auth);
    if (headers == NULL) {
        rc = cd_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    CURL *h = c->curl;
    curl_easy_reset(h);
    c->errbuf[0] = '\0';
    SETOPT(h, CURLOPT_URL, url);
    if (c->socket != NULL)
        SETOPT(h, CURLOPT_UNIX_SOCKET_PATH, c->socket);
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(h, CURLOPT_ERRORBUFFER, c->errbuf);
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    SETOPT(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    SETOPT(h, CURLOPT_HTTPHEADER, headers);
    SETOPT(h, CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(h, CURLOPT_WRITEDATA, &x);
    SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(h, CURLOPT_HEADERDATA, &x);
    SETOPT(h, CURLOPT_USERAGENT, "collectorctl");
    if (c->progress != NULL) {
        SETOPT(h, CURLOPT_NOPROGRESS, 0L);
        SETOPT(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        SETOPT(h, CURLOPT_XFERINFODATA, &x);
    }
    if (strcmp(method, "GET") == 0) {
        SETOPT(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "POST") == 0) {
        SETOPT(h, CURLOPT_POST, 1L);
        SETOPT(h, CURLOPT_POSTFIELDS, payload != NULL ? payload : "");
        SETOPT(h, CURLOPT_POSTFIELDSIZE, (long)(payload != NULL ? strlen(payload) : 0));
    } else {
        SETOPT(h, CURLOPT_CUSTOMREQUEST, method);
        if (payload != NULL) {
            SETOPT(h, CURLOPT_POSTFIELDS, payload);
            SETOPT(h, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
        }
    }
    if (rc != 0)
        goto out;
    x.start_ms = now_ms();
    CURLcode code = curl_easy_perform(h);
    if (code != CURLE_OK) {
        rc = transport_error(c, code, &x, err);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x.status);
    if (cd_buf_terminate(&x.body) != 0) {
        rc = cd_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    struct cd_client_response r = {0};
    r.status = x.status;
    r.content_type = x.content_type;
    r.filename = x.filename;
    x.content_type = NULL;
    x.filename = NULL;
    if (x.body.len > 0 || fd < 0) {
        r.body = (char *)cd_buf_steal(&x.body, &r.len);
        if (r.body == NULL)
            r.body = cd_str_dup("");
        if (r.content_type != NULL && cd_str_has_prefix(r.content_type, "application/json"))
            r.json = json_loadb(r.body, r.len, 0, NULL);
    }
    *resp = r;
out:
    cd_buf_free(&x.body);
    free(x.content_type);
    free(x.filename);
    curl_slist_free_all(headers);
    free(payload);
    free(url);
    return rc;
}

int cd_client_call(struct cd_client *c, const char *method, const char *path,
                   const char *const *query, const json_t *body, struct cd_client_response *resp,
                   struct cd_err *err)
{
    return perform(c, method, path, query, body, -1, resp, err);
}

int cd_client_download(struct cd_client *c, const char *path, const char *const *query, int fd,
                       struct cd_client_response *resp, struct cd_err *err)
{
    if (fd < 0)
        return cd_err_set(err, -EBADF, "no file to download into");
    return perform(c, "GET", path, query, NULL, fd, resp, err);
}

int cd_client_check(const struct cd_client_response *r, struct cd_err *err)
{
    if (r->status >= 200 && r->status < 300)
        return 0;
    int rc;
    switch (r->status) {
    case 400:
    case 405:
        rc = -EINVAL;
        break;
    case 401:
    case 403:
        rc = -EACCES;
        break;
    case 404:
        rc = -ENOENT;
        break;
    case 409:
        rc = -EEXIST;
        break;
    case 413:
        rc = -EFBIG;
        break;
    case 429:
        rc = -EAGAIN;
        break;
    case 501:
        rc = -ENOSYS;
        break;
    case 503:
        rc = -EBUSY;
        break;
    case 504:
        rc = -ETIMEDOUT;
        break;
    default:
        rc = -EIO;
        break;
    }
    const char *msg = json_string_value(json_object_get(r->json, "error"));
    if (msg != NULL)
        return cd_err_set(err, rc, "%s", msg);
    if (r->body != NULL && r->len > 0 && r->len < 300 && strchr(r->body, '<') == NULL)
        return cd_err_set(err, rc, "HTTP %ld: %.*s", r->status, (int)strcspn(r->body, "\r\n"),
                          r->body);
    return cd_err_set(err, rc, "HTTP %ld", r->status);
}

int cd_client_get_json(struct cd_client *c, const char *path, const char *const *query,
                       json_t **out, struct cd_err *err)
{
    struct cd_client_response r = {0};
    int rc = cd_client_call(c, "GET", path, query, NULL, &r, err);
    if (rc == 0)
        rc = cd_client_check(&r, err);
    if (rc == 0 && !json_is_object(r.json))
        rc = cd_err_set(err, -EPROTO, "%s answered %s with something other than JSON", c->endpoint,
                        path);
    if (rc == 0) {
        *out = r.json;
        r.json = NULL;
    }
    cd_client_response_free(&r);
    return rc;
}

/* ---- selectors ----------------------------------------------------------------------------- */

static bool label_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    }
    return true;
}

static int selector_term(json_t *sel, const char *term, size_t n, struct cd_err *err)
{
    if (n == 3 && strncmp(term, "all", 3) == 0) {
        if (json_object_get(sel, "all") != NULL)
            return cd_err_set(err, -EINVAL, "selector: 'all' given twice");
        return json_object_set_new(sel, "all", json_true()) == 0
                   ? 0
                   : cd_err_set(err, -ENOMEM, "out of memory");
    }
    const char *eq = memchr(term, '=', n);
    if (eq == NULL || eq == term)
        return cd_err_set(err, -EINVAL,
                          "selector: '%.*s' is not name=value (job=NAME, target=ID|ADDRESS, "
                          "LABEL=VALUE, or all)",
                          (int)(n > 100 ? 100 : n), term);
    size_t kl = (size_t)(eq - term);
    size_t vl = n - kl - 1;
    if (vl == 0 || vl > 256)
        return cd_err_set(err, -EINVAL, "selector: '%.*s' needs a value of 1..256 characters",
                          (int)(kl > 64 ? 64 : kl), term);
    for (size_t i = 0; i < vl; i++) {
        if ((unsigned char)eq[1 + i] < 0x20 || eq[1 + i] == 0x7f)
            return cd_err_set(err, -EINVAL, "selector: control characters in a value");
    }
    char *key = cd_str_ndup(term, kl);
    json_t *val = json_stringn(eq + 1, vl);
    int rc = 0;
    if (key == NULL || val == NULL) {
        rc = cd_err_set(err, -ENOMEM, "out of memory");
    } else if (strcmp(key, "job") == 0 || strcmp(key, "target") == 0) {
        if (json_object_get(sel, key) != NULL)
            rc = cd_err_set(err, -EINVAL, "selector: '%s' given twice", key);
        else if (json_object_set(sel, key, val) != 0)
            rc = cd_err_set(err, -ENOMEM, "out of memory");
    } else if (!label_name_ok(key, kl)) {
        rc = cd_err_set(err, -EINVAL, "selector: '%s' is not a label name", key);
    } else {
        json_t *labels = json_object_get(sel, "labels");
        if (labels == NULL) {
            labels = json_object();
            if (labels == NULL || json_object_set_new(sel, "labels", labels) != 0)
                rc = cd_err_set(err, -ENOMEM, "out of memory");
        }
        if (rc == 0 && json_object_get(labels, key) != NULL)
            rc = cd_err_set(err, -EINVAL, "selector: label '%s' given twice", key);
        else if (rc == 0 && json_object_size(labels) >= CD_API_CAPTURE_MAX_LABELS)
            rc = cd_err_set(err, -EINVAL, "selector: more than %d labels",
                            CD_API_CAPTURE_MAX_LABELS);
        else if (rc == 0 && json_object_set(labels, key, val) != 0)
            rc = cd_err_set(err, -ENOMEM, "out of memory");
    }
    json_decref(val);
    free(key);
    return rc;
}

int cd_client_selector_parse(int argc, char *const *argv, json_t **out, struct cd_err *err)
{
    json_t *sel = json_object();
    if (sel == NULL)
        return cd_err_set(err, -ENOMEM, "out of memory");
    int rc = 0;
    for (int i = 0; rc == 0 && i < argc; i++) {
        const char *a = argv[i];
        size_t len = strlen(a);
        size_t start = 0;
        while (rc == 0 && start <= len) {
            size_t end = start;
            while (end < len && a[end] != ',')
                end++;
            if (end > start)
                rc = selector_term(sel, a + start, end - start, err);
            start = end + 1;
        }
    }
    if (rc == 0 && json_object_size(sel) == 0)
        rc = cd_err_set(err, -EINVAL,
                        "an empty selector: name targets with job=NAME, target=ID|ADDRESS or "
                        "LABEL=VALUE, or say 'all'");
    if (rc != 0) {
        json_decref(sel);
        return rc;
    }
    *out = sel;
    return 0;
}

int cd_client_read_token_file(const char *path, char **token, struct cd_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return cd_err_set(err, -errno, "token file '%s': %s", path, strerror(errno));
    char buf[4098];
    size_t len = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cd_err_set(err, -errno, "token file '%s': %s", path, strerror(errno));
            break;
        }
        if (n == 0 || (len += (size_t)n) == sizeof(buf) - 1)
            break;
    }
    close(fd);
    if (rc != 0)
        return rc;
    buf[len] = '\0';
    char *s = buf;
    while (*s != '\0' && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    if (n == 0 || n > 4096) {
        memset(buf, 0, sizeof(buf));
        return cd_err_set(err, -EINVAL, "token file '%s' holds no token (or one over 4096 bytes)",
                          path);
    }
    *token = cd_str_dup(s);
    memset(buf, 0, sizeof(buf));
    if (*token == NULL)
        return cd_err_set(err, -ENOMEM, "out of memory");
    return 0;
}
