/* fixture — see fixture.h. */
#include "fixture.h"

#include "cdtest.h"
#include "str.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void fx_start(struct fx *f, const struct cd_api_limits *lim, bool tcp)
{
    memset(f, 0, sizeof(*f));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    f->dir = cdt_tmpdir("api");
    f->sock = cdt_path(f->dir, "collectord.sock");
    tb_init(&f->tb);
    int64_t now = f->tb.now_ms;
    static const uint8_t gz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    f->cpu_id = tb_add(&f->tb, "api", "10.0.0.5:6060", "cpu", "ok", now - 60000, gz, sizeof(gz),
                       tb_pprof_summary());
    f->heap_id =
        tb_add(&f->tb, "api", "10.0.0.5:6060", "heap", "ok", now - 120000, gz, sizeof(gz), NULL);
    f->dump_id = tb_add(&f->tb, "api", "10.0.0.5:6060", "goroutine_dump", "ok", now - 180000,
                        tb_dump_text(), strlen(tb_dump_text()), tb_goroutine_summary());
    static const char trace[] = "go 1.19 trace\0\0\0\x01\x02\x03";
    f->trace_id = tb_add(&f->tb, "api", "10.0.0.5:6060", "trace", "ok", now - 240000, trace,
                         sizeof(trace) - 1, NULL);
    f->timeout_id =
        tb_add(&f->tb, "api", "10.0.0.6:6060", "cpu", "timeout", now - 300000, NULL, 0, NULL);
    static const char herr[] = "Could not enable CPU profiling: cpu profiling already in use\n";
    f->httperr_id = tb_add(&f->tb, "api", "10.0.0.5:6060", "cpu", "http_error", now - 360000, herr,
                           strlen(herr), NULL);
    f->big_len = 3u << 20;
    f->big = malloc(f->big_len);
    assert_non_null(f->big);
    uint32_t x = 12345;
    for (size_t i = 0; i < f->big_len; i++) {
        x = x * 1103515245u + 12345u;
        /* Half-compressible: runs of text and noise. */
        f->big[i] = (i / 4096) % 2 ? (uint8_t)(x >> 24) : (uint8_t)('a' + i % 26);
    }
    f->big_id = tb_add(&f->tb, "api", "10.0.0.5:6060", "heap", "ok", now - 420000, f->big,
                       f->big_len, NULL);
    static const char broken[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    f->broken_id = tb_add(&f->tb, "batch", "10.0.0.7:4321", "heap", "ok", now - 480000, broken,
                          strlen(broken), NULL);
    for (size_t i = 0; i < f->tb.n; i++) {
        struct tb_snap *s = &f->tb.snaps[i];
        if (s->id == f->big_id || s->id == f->dump_id || s->id == f->cpu_id ||
            s->id == f->timeout_id) {
            s->pinned = true;
            cd_str_copy(s->incident, "outage-42", sizeof(s->incident));
        }
        if (s->id == f->broken_id) {
            s->pinned = true;
            s->raw_fails = true;
            cd_str_copy(s->incident, "broken", sizeof(s->incident));
        }
    }
    struct cd_api_config cfg;
    cd_api_config_default(&cfg);
    cfg.socket_path = f->sock;
    if (lim != NULL)
        cfg.limits = *lim;
    if (tcp) {
        cfg.listen = "127.0.0.1:0";
        cfg.token = FX_TOKEN;
    }
    struct cd_api_backend be = tb_backend(&f->tb);
    struct cd_err err;
    cd_err_init(&err);
    int rc = cd_api_start(&cfg, &be, &f->api, &err);
    if (rc != 0)
        fail_msg("cd_api_start: %s", cd_err_msg(&err));
    f->tcp_port = tcp ? cd_api_tcp_port(f->api) : 0;
}

void fx_stop(struct fx *f)
{
    cd_api_stop(f->api);
    tb_free(&f->tb);
    free(f->big);
    cdt_rmrf(f->dir);
    free(f->sock);
    free(f->dir);
    curl_global_cleanup();
}

struct sink {
    char *data;
    size_t len;
};

static size_t sink_write(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t add = size * n;
    char *d = realloc(s->data, s->len + add + 1);
    if (d == NULL)
        return 0;
    memcpy(d + s->len, p, add);
    s->data = d;
    s->len += add;
    s->data[s->len] = '\0';
    return add;
}

static size_t head_write(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    /* Keep only the last response's headers (after 100 Continue and the like). */
    if (size * n >= 5 && strncmp(p, "HTTP/", 5) == 0)
        s->len = 0;
    return sink_write(p, size, n, ud);
}

int ht_request(const char *sock, const char *url, const char *method, const char *body,
               const char *const *headers, struct ht_resp *out)
{
    memset(out, 0, sizeof(*out));
    CURL *h = curl_easy_init();
    assert_non_null(h);
    struct sink b = {0}, hd = {0};
    struct curl_slist *hl = NULL;
    bool expect = false;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        hl = curl_slist_append(hl, headers[i]);
        expect = expect || strncasecmp(headers[i], "Expect:", 7) == 0;
    }
    if (!expect)
        hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (sock != NULL)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, head_write);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hd);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    out->body = b.data != NULL ? b.data : cd_str_dup("");
    out->len = b.len;
    out->headers = hd.data != NULL ? hd.data : cd_str_dup("");
    out->json = json_loadb(out->body, out->len, 0, NULL);
    return (int)code;
}

void ht_get(struct fx *f, const char *path, struct ht_resp *out)
{
    char url[2048];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    int code = ht_request(f->sock, url, "GET", NULL, NULL, out);
    if (code != 0)
        fail_msg("GET %s: curl error %d", path, code);
}

const char *ht_header(const struct ht_resp *r, const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    for (const char *p = r->headers; p != NULL && *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t vl = len - (size_t)(v - p);
            if (vl >= size)
                vl = size - 1;
            memcpy(buf, v, vl);
            buf[vl] = '\0';
            return buf;
        }
        p = eol != NULL ? eol + 2 : NULL;
    }
    return NULL;
}

void ht_free(struct ht_resp *r)
{
    free(r->body);
    free(r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

int ht_connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cd_str_copy(sa.sun_path, path, sizeof(sa.sun_path));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    return fd;
}

int ht_connect_tcp(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    return fd;
}

int ht_sh(const char *cmdline, char **out, int timeout_ms)
{
    char *const argv[] = {"/bin/sh", "-c", (char *)cmdline, NULL};
    return cdt_run(argv, out, timeout_ms);
}
