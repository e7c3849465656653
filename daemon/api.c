/* api — see api.h. */
#include "api.h"

#include "buf.h"
#include "bundle.h"
#include "hash.h"
#include "kind.h"
#include "promtext.h"
#include "respcache.h"
#include "str.h"
#include "units.h"

#include <collectord/api.h>
#include <collectord/version.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#define RAW_BLOCK       (64u * 1024)
#define RAW_HEAD        4096
#define WAIT_SLICE_MS   250
#define TOKEN_MIN       16
#define TOKEN_MAX       4096
#define CONN_HEADROOM   8 /* connections MHD accepts beyond the limit, to answer them 503 */
#define DISCARD_FACTOR  4 /* an oversized chunked body is read up to this many limits, then cut */
#define AUTH_HEADER_MAX 8192
/* A targets list is served from a body at most this old (twice that while one is rebuilt):
 * health changes by the scrape, and a second is within what anyone reading a list can see. */
#define TARGETS_TTL_MS 1000
#define TARGETS_SLOTS  8
#define QUERY_NICE     10

/* ---- blobs ------------------------------------------------------------------------------- */

void cd_api_blob_release(struct cd_api_blob *b)
{
    if (b == NULL)
        return;
    if (b->close != NULL)
        b->close(b->rctx);
    json_decref(b->meta);
    memset(b, 0, sizeof(*b));
}

struct mem_reader {
    uint8_t *data;
    size_t len;
    size_t pos;
};

static ssize_t mem_read(void *rctx, uint8_t *buf, size_t n)
{
    struct mem_reader *m = rctx;
    size_t left = m->len - m->pos;
    if (n > left)
        n = left;
    if (n > 0)
        memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (ssize_t)n;
}

static void mem_close(void *rctx)
{
    struct mem_reader *m = rctx;
    if (m == NULL)
        return;
    free(m->data);
    free(m);
}

int cd_api_blob_from_memory(struct cd_api_blob *b, json_t *meta, uint8_t *data, size_t len,
                            struct cd_err *err)
{
    struct mem_reader *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        json_decref(meta);
        free(data);
        return cd_err_set(err, -ENOMEM, "out of memory");
    }
    m->data = data;
    m->len = len;
    b->meta = meta;
    b->size = len;
    b->read = mem_read;
    b->close = mem_close;
    b->rctx = m;
    return 0;
}

/* ---- asynchronous calls ------------------------------------------------------------------ */

struct cd_api_call {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;
    bool done;
    bool cancelled;
    int rc;
    json_t *result;
    char msg[CD_ERR_MSG_MAX];
};

struct cd_api_call *cd_api_call_new(void)
{
    struct cd_api_call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    c->refs = 1;
    return c;
}

struct cd_api_call *cd_api_call_ref(struct cd_api_call *c)
{
    pthread_mutex_lock(&c->lock);
    c->refs++;
    pthread_mutex_unlock(&c->lock);
    return c;
}

void cd_api_call_unref(struct cd_api_call *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    int left = --c->refs;
    pthread_mutex_unlock(&c->lock);
    if (left > 0)
        return;
    json_decref(c->result);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void cd_api_call_complete(struct cd_api_call *c, int rc, json_t *result, const char *msg)
{
    pthread_mutex_lock(&c->lock);
    if (c->done) {
        pthread_mutex_unlock(&c->lock);
        json_decref(result);
        return;
    }
    c->done = true;
    c->rc = rc;
    c->result = result;
    cd_str_copy(c->msg, msg != NULL ? msg : "", sizeof(c->msg));
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

bool cd_api_call_abandoned(struct cd_api_call *c)
{
    pthread_mutex_lock(&c->lock);
    bool a = c->cancelled;
    pthread_mutex_unlock(&c->lock);
    return a;
}

void cd_api_call_cancel(struct cd_api_call *c)
{
    pthread_mutex_lock(&c->lock);
    c->cancelled = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

int cd_api_call_wait(struct cd_api_call *c, int64_t deadline_mono_ms, json_t **out,
                     struct cd_err *err)
{
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_mono_ms / 1000),
        .tv_nsec = (long)(deadline_mono_ms % 1000) * 1000000L,
    };
    pthread_mutex_lock(&c->lock);
    while (!c->done && !c->cancelled) {
        if (cd_clock_now_mono_ms() >= deadline_mono_ms)
            break;
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    }
    int rc;
    if (c->done) {
        rc = c->rc;
        if (rc == 0) {
            *out = c->result;
            c->result = NULL;
        } else {
            cd_err_set(err, rc, "%s", c->msg);
        }
    } else if (c->cancelled) {
        rc = cd_err_set(err, -ECANCELED, "cancelled");
    } else {
        rc = cd_err_set(err, -ETIMEDOUT, "deadline passed");
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* ---- configuration ------------------------------------------------------------------------ */

void cd_api_limits_default(struct cd_api_limits *l)
{
    l->max_connections = 64;
    l->max_request_bytes = 1u << 20;
    l->max_header_bytes = 32u * 1024;
    l->max_response_bytes = 64u << 20;
    l->max_captures = 4;
    l->max_bundles = 2;
    l->max_bundle_snapshots = 10000;
    l->max_bundle_bytes = 4ULL << 30;
    l->capture_timeout_ms = CD_API_DEFAULT_CAPTURE_MS;
    l->idle_timeout_ms = 30000;
    l->max_page_size = 1000;
    l->bundle_compression = 6;
}

void cd_api_config_default(struct cd_api_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->socket_mode = CD_API_SOCKET_MODE;
    cfg->unix_fd = -1;
    cfg->tcp_fd = -1;
    cd_api_limits_default(&cfg->limits);
}

/* ---- the server's state -------------------------------------------------------------------- */

enum route {
    R_OTHER = 0,
    R_INDEX,
    R_STATUS,
    R_TARGETS,
    R_SNAPSHOTS,
    R_SNAPSHOT,
    R_RAW,
    R_PIN,
    R_SERIES,
    R_CAPTURE,
    R_INCIDENTS,
    R_INCIDENT,
    R_BUNDLE,
    R_RETENTION,
    R_METRICS,
    R__COUNT,
};

static const char *const route_names[R__COUNT] = {
    "other",  "index",   "status",    "targets",  "snapshots", "snapshot",  "raw",     "pin",
    "series", "capture", "incidents", "incident", "bundle",    "retention", "metrics",
};

static const int tracked_codes[] = {200, 400, 401, 403, 404, 405, 409,
                                    413, 429, 500, 501, 503, 504};
#define N_CODES ((int)(sizeof(tracked_codes) / sizeof(tracked_codes[0])))

struct listener {
    struct cd_api *api;
    bool tcp;
    int fd; /* until MHD owns it */
    struct MHD_Daemon *d;
    atomic_uint connections;
};

/* Rebuilds targets lists in the background, so that no client waits for one (respcache.h). */
struct refresh_job {
    char *key, *job, *health;
};

struct refresher {
    pthread_t th;
    bool started;
    bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct refresh_job jobs[TARGETS_SLOTS];
    size_t n;
};

struct cd_api {
    struct cd_api_backend be;
    struct cd_api_limits lim;
    struct cd_log *log;
    struct cd_clock real_clock;
    const struct cd_clock *clock;
    char *socket_path;  /* the file we created: removed at stop */
    char *unix_desc;    /* for status */
    char tcp_desc[128]; /* "127.0.0.1:9095" */
    int tcp_port;
    uint8_t token_hash[CD_HASH_SHA256_LEN];
    bool has_token;
    struct listener unix_l;
    struct listener tcp_l;
    struct cd_respcache *targets_cache;
    struct refresher refresh;
    atomic_bool stopping;
    atomic_uint captures;
    atomic_uint bundles;
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t unauthorized;
    atomic_uint_fast64_t counts[R__COUNT][N_CODES + 1]; /* last column: other codes */
};

/* One request's state, from its first callback to MHD's completion notice. */
struct req {
    struct listener *l;
    enum route route;
    int64_t id;
    char name[CD_API_INCIDENT_NAME_MAX + 1];
    struct cd_buf body;
    bool expects_body;
    bool too_large;
    uint64_t discarded;
    bool answered;
};

/* What a handler decided: a JSON document, a ready response, or an error. */
struct reply {
    int status;
    json_t *json;              /* 2xx body */
    struct MHD_Response *resp; /* prepared non-JSON response */
    char msg[CD_ERR_MSG_MAX];  /* error text when status >= 400 */
    bool narrowable;           /* a list: too-large responses are the query's fault (400) */
    const char *allow;         /* for 405 */
};

static void reply_error(struct reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_error(struct reply *r, int status, const char *fmt, ...)
{
    r->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
}

static void reply_err(struct reply *r, int rc, const struct cd_err *err)
{
    reply_error(r, cd_apiwire_http_status(rc), "%s", cd_err_msg(err));
}

static void count_request(struct cd_api *api, enum route route, int status)
{
    int col = N_CODES;
    for (int i = 0; i < N_CODES; i++) {
        if (tracked_codes[i] == status) {
            col = i;
            break;
        }
    }
    atomic_fetch_add(&api->counts[route][col], 1);
    atomic_fetch_add(&api->requests, 1);
}

/* ---- sending ------------------------------------------------------------------------------- */

struct dump_ctx {
    struct cd_buf *b;
    bool overflow;
};

static int dump_cb(const char *buf, size_t size, void *data)
{
    struct dump_ctx *d = data;
    int rc = cd_buf_append(d->b, buf, size);
    if (rc == -EFBIG)
        d->overflow = true;
    return rc == 0 ? 0 : -1;
}

static void add_common_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Server", "collectord/" COLLECTORD_VERSION);
}

static struct MHD_Response *buffer_response(struct cd_buf *b, const char *content_type)
{
    size_t len = 0;
    uint8_t *data = cd_buf_steal(b, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, data != NULL ? data : (uint8_t *)"",
        data != NULL ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(data);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    add_common_headers(resp);
    return resp;
}

/* The error body {"error", "code", "status"}; never fails to produce something. */
static struct MHD_Response *error_response(const struct reply *r)
{
    json_t *doc = json_pack("{s:s, s:s, s:i}", "error", r->msg[0] ? r->msg : "error", "code",
                            cd_apiwire_status_code(r->status), "status", r->status);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(doc);
    struct cd_buf b;
    cd_buf_init(&b, 0);
    if (text == NULL || cd_buf_append_str(&b, text) != 0 || cd_buf_append(&b, "\n", 1) != 0) {
        cd_buf_free(&b);
        free(text);
        return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    free(text);
    struct MHD_Response *resp = buffer_response(&b, "application/json");
    cd_buf_free(&b);
    if (resp == NULL)
        return NULL;
    if (r->status == 401) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"collectord\"");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Basic realm=\"collectord\"");
    }
    if (r->status == 405 && r->allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->status == 429 || r->status == 503)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->status == 429 ? "1" : "5");
    return resp;
}

/* r->json as the response's text into b; on failure r becomes the error. */
static int render_json(struct cd_api *api, struct reply *r, struct cd_buf *b)
{
    cd_apiwire_normalize(r->json);
    cd_buf_init(b, api->lim.max_response_bytes);
    struct dump_ctx d = {b, false};
    int rc = json_dump_callback(r->json, dump_cb, &d, JSON_COMPACT | JSON_REAL_PRECISION(12));
    if (rc == 0)
        rc = cd_buf_append(b, "\n", 1);
    if (rc != 0) {
        char lim[32];
        cd_units_fmt_size(lim, sizeof(lim), api->lim.max_response_bytes);
        if (r->narrowable)
            reply_error(r, 400,
                        "the response would pass the %s limit: narrow the query (limit=, "
                        "since=, until=)",
                        lim);
        else
            reply_error(r, 500, "the response would pass the %s limit", lim);
        cd_buf_free(b);
        return -1;
    }
    return 0;
}

static void unref_body(void *cls)
{
    cd_respbody_unref(cls);
}

/* A response sending a shared body; it takes the caller's reference. */
static struct MHD_Response *shared_response(struct cd_respbody *body)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(
        body->len, body->data, unref_body, body);
    if (resp == NULL) {
        cd_respbody_unref(body);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    add_common_headers(resp);
    return resp;
}

static enum MHD_Result send_reply(struct req *q, struct MHD_Connection *c, struct reply *r)
{
    struct cd_api *api = q->l->api;
    struct MHD_Response *resp = r->resp;
    r->resp = NULL;
    if (resp == NULL && r->status < 400 && r->json != NULL) {
        struct cd_buf b;
        if (render_json(api, r, &b) == 0) {
            resp = buffer_response(&b, "application/json");
            if (resp == NULL)
                reply_error(r, 500, "out of memory");
            cd_buf_free(&b);
        }
    }
    if (resp == NULL && r->status < 400)
        reply_error(r, 500, "no response");
    if (resp == NULL)
        resp = error_response(r);
    json_decref(r->json);
    r->json = NULL;
    if (resp == NULL)
        return MHD_NO;
    q->answered = true;
    count_request(api, q->route, r->status);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- authentication --------------------------------------------------------------------- */

static int b64val(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Standard base64 (padding optional) into dst; -EINVAL when malformed. */
static int b64_decode(const char *s, uint8_t *dst, size_t size, size_t *out_len)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return -EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= size)
                return -EINVAL;
            dst[o++] = (uint8_t)(acc >> bits);
        }
    }
    *out_len = o;
    return 0;
}

/* Bearer <token>, or Basic with the token as the password; compared as SHA-256 digests with
 * CRYPTO_memcmp, so the time taken says nothing about the token or its length. */
static bool authorized(struct cd_api *api, struct MHD_Connection *c)
{
    if (!api->has_token)
        return false;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL || strlen(h) > AUTH_HEADER_MAX)
        return false;
    const uint8_t *tok = NULL;
    size_t toklen = 0;
    uint8_t decoded[AUTH_HEADER_MAX];
    if (strncasecmp(h, "Bearer ", 7) == 0) {
        tok = (const uint8_t *)h + 7;
        while (*tok == ' ')
            tok++;
        toklen = strlen((const char *)tok);
        while (toklen > 0 && tok[toklen - 1] == ' ')
            toklen--;
    } else if (strncasecmp(h, "Basic ", 6) == 0) {
        const char *p = h + 6;
        while (*p == ' ')
            p++;
        size_t n = 0;
        if (b64_decode(p, decoded, sizeof(decoded), &n) != 0)
            return false;
        uint8_t *colon = memchr(decoded, ':', n);
        if (colon == NULL)
            return false;
        tok = colon + 1;
        toklen = n - (size_t)(tok - decoded);
    } else {
        return false;
    }
    uint8_t md[CD_HASH_SHA256_LEN];
    if (cd_hash_sha256(tok, toklen, md) != 0)
        return false;
    return CRYPTO_memcmp(md, api->token_hash, sizeof(md)) == 0;
}

/* ---- routing -------------------------------------------------------------------------------- */

/* Matches the path; sets route, id or name. Returns the allowed methods ("GET", "POST", ...),
 * or NULL for an unknown path (with a reason in why). */
static const char *match_route(const char *url, struct req *q, char *why, size_t why_size)
{
    if (strcmp(url, "/") == 0 || strcmp(url, CD_API_PREFIX) == 0 ||
        strcmp(url, CD_API_PREFIX "/") == 0) {
        q->route = R_INDEX;
        return "GET, HEAD";
    }
    if (strcmp(url, "/metrics") == 0) {
        q->route = R_METRICS;
        return "GET, HEAD";
    }
    if (!cd_str_has_prefix(url, CD_API_PREFIX "/")) {
        snprintf(why, why_size, "no route %s (the API lives under %s/)", url, CD_API_PREFIX);
        return NULL;
    }
    const char *p = url + strlen(CD_API_PREFIX "/");
    char seg[4][128];
    int n = 0;
    while (*p != '\0') {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (n == 4 || len == 0 || len >= sizeof(seg[0])) {
            snprintf(why, why_size, "no route %s", url);
            return NULL;
        }
        memcpy(seg[n], p, len);
        seg[n][len] = '\0';
        n++;
        p += len;
        if (*p == '/')
            p++;
        if (slash != NULL && *p == '\0') {
            snprintf(why, why_size, "no route %s (no trailing slash)", url);
            return NULL;
        }
    }
    /* The routes of one segment: name, route, methods. */
    static const struct {
        const char *name;
        enum route route;
        const char *allow;
    } single[] = {
        {"status", R_STATUS, "GET, HEAD"},       {"targets", R_TARGETS, "GET, HEAD"},
        {"snapshots", R_SNAPSHOTS, "GET, HEAD"}, {"series", R_SERIES, "GET, HEAD"},
        {"capture", R_CAPTURE, "POST"},          {"incidents", R_INCIDENTS, "GET, HEAD"},
    };
    for (size_t i = 0; n == 1 && i < sizeof(single) / sizeof(single[0]); i++) {
        if (strcmp(seg[0], single[i].name) == 0) {
            q->route = single[i].route;
            return single[i].allow;
        }
    }
    if (n == 2 && strcmp(seg[0], "retention") == 0 && strcmp(seg[1], "run") == 0) {
        q->route = R_RETENTION;
        return "POST";
    }
    if (n >= 2 && n <= 3 && strcmp(seg[0], "snapshots") == 0) {
        if (cd_apiwire_parse_id(seg[1], &q->id) != 0) {
            snprintf(why, why_size, "'%s' is not a snapshot id", seg[1]);
            return NULL;
        }
        if (n == 2) {
            q->route = R_SNAPSHOT;
            return "GET, HEAD";
        }
        if (strcmp(seg[2], "raw") == 0) {
            q->route = R_RAW;
            return "GET, HEAD";
        }
        if (strcmp(seg[2], "pin") == 0) {
            q->route = R_PIN;
            return "POST, DELETE";
        }
    }
    if (n >= 2 && n <= 3 && strcmp(seg[0], "incidents") == 0) {
        if (!cd_apiwire_incident_name_valid(seg[1])) {
            snprintf(why, why_size, "'%s' is not an incident name", seg[1]);
            return NULL;
        }
        cd_str_copy(q->name, seg[1], sizeof(q->name));
        if (n == 2) {
            q->route = R_INCIDENT;
            return "GET, HEAD";
        }
        if (strcmp(seg[2], "bundle") == 0) {
            q->route = R_BUNDLE;
            return "GET, HEAD";
        }
    }
    snprintf(why, why_size, "no route %s", url);
    return NULL;
}

static bool method_allowed(const char *allow, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += n) {
        bool start = p == allow || p[-1] == ' ';
        bool end = p[n] == '\0' || p[n] == ',';
        if (start && end)
            return true;
    }
    return false;
}

struct params_ctx {
    struct cd_apiwire_params *p;
    struct cd_err *err;
    int rc;
};

static enum MHD_Result params_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct params_ctx *pc = cls;
    pc->rc = cd_apiwire_params_add(pc->p, key, value, pc->err);
    return pc->rc == 0 ? MHD_YES : MHD_NO;
}

static int collect_params(struct MHD_Connection *c, struct cd_apiwire_params *p, struct cd_err *err)
{
    struct params_ctx pc = {p, err, 0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, params_iter, &pc);
    return pc.rc;
}

static int64_t wall_ms(const struct cd_api *api)
{
    return cd_clock_wall_ms(api->clock);
}

/* ---- handlers --------------------------------------------------------------------------- */

#define NEED_BACKEND(r, fn)                                                                        \
    do {                                                                                           \
        if (api->be.fn == NULL) {                                                                  \
            reply_error(r, 501, "this daemon does not provide " #fn);                              \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static bool no_params(struct MHD_Connection *c, struct reply *r)
{
    static const char *const none[] = {NULL};
    struct cd_apiwire_params p;
    struct cd_err err;
    cd_err_init(&err);
    cd_apiwire_params_init(&p);
    int rc = collect_params(c, &p, &err);
    if (rc == 0)
        rc = cd_apiwire_params_check(&p, none, &err);
    cd_apiwire_params_free(&p);
    if (rc != 0)
        reply_err(r, rc, &err);
    return rc == 0;
}

static void h_index(struct cd_api *api, struct MHD_Connection *c, struct reply *r)
{
    (void)api;
    if (!no_params(c, r))
        return;
    r->json = json_pack(
        "{s:s, s:s, s:s, s:[s,s,s,s,s,s,s,s,s,s,s,s,s]}", "service", "collectord", "version",
        COLLECTORD_VERSION, "api", CD_API_PREFIX, "routes", "GET " CD_API_PREFIX "/status",
        "GET " CD_API_PREFIX "/targets", "GET " CD_API_PREFIX "/snapshots",
        "GET " CD_API_PREFIX "/snapshots/{id}", "GET " CD_API_PREFIX "/snapshots/{id}/raw",
        "POST|DELETE " CD_API_PREFIX "/snapshots/{id}/pin", "GET " CD_API_PREFIX "/series",
        "POST " CD_API_PREFIX "/capture", "GET " CD_API_PREFIX "/incidents",
        "GET " CD_API_PREFIX "/incidents/{name}", "GET " CD_API_PREFIX "/incidents/{name}/bundle",
        "POST " CD_API_PREFIX "/retention/run", "GET /metrics");
    r->status = r->json != NULL ? 200 : 500;
}

/* Calls a backend function that returns a JSON object and takes the reply from it. */
static void take_result(struct reply *r, int rc, json_t *out, const struct cd_err *err,
                        const char *what)
{
    if (rc != 0) {
        json_decref(out);
        reply_err(r, rc, err);
        return;
    }
    if (!json_is_object(out)) {
        json_decref(out);
        reply_error(r, 500, "the backend returned no object for %s", what);
        return;
    }
    r->json = out;
    r->status = 200;
}

static void h_status(struct cd_api *api, struct MHD_Connection *c, struct reply *r)
{
    NEED_BACKEND(r, status);
    if (!no_params(c, r))
        return;
    json_t *out = NULL;
    struct cd_err err;
    cd_err_init(&err);
    int rc = api->be.status(api->be.ctx, &out, &err);
    take_result(r, rc, out, &err, "status");
    if (r->json == NULL)
        return;
    if (json_object_get(r->json, "version") == NULL)
        json_object_set_new(r->json, "version", json_string(COLLECTORD_VERSION));
    if (json_object_get(r->json, "api_version") == NULL)
        json_object_set_new(r->json, "api_version", json_string(CD_API_VERSION));
    if (json_object_get(r->json, "pid") == NULL)
        json_object_set_new(r->json, "pid", json_integer((json_int_t)getpid()));
    unsigned conns = atomic_load(&api->unix_l.connections) + atomic_load(&api->tcp_l.connections);
    json_object_set_new(
        r->json, "query",
        json_pack("{s:o, s:o, s:i}", "unix_socket",
                  api->unix_desc != NULL ? json_string(api->unix_desc) : json_null(), "tcp",
                  api->tcp_desc[0] ? json_string(api->tcp_desc) : json_null(), "connections",
                  (int)conns));
}

/* The body of a targets list for key, put into the cache (whose builder the caller is). On
 * failure the builder's turn is given up and r says why. */
static int build_targets(struct cd_api *api, const char *key, const struct cd_apiwire_targets *q,
                         struct cd_respbody **out, struct reply *r)
{
    struct cd_err err;
    cd_err_init(&err);
    json_t *doc = NULL;
    int rc = api->be.targets(api->be.ctx, q, &doc, &err);
    take_result(r, rc, doc, &err, "targets");
    r->narrowable = true;
    struct cd_buf b;
    if (r->json == NULL || render_json(api, r, &b) != 0) {
        cd_respcache_abandon(api->targets_cache, key);
        return -1;
    }
    json_decref(r->json);
    r->json = NULL;
    struct cd_respbody *body = cd_respbody_new(b.data, b.len);
    cd_buf_free(&b);
    if (body == NULL) {
        cd_respcache_abandon(api->targets_cache, key);
        reply_error(r, 500, "out of memory");
        return -1;
    }
    cd_respcache_put(api->targets_cache, key, body, cd_clock_now_mono_ms());
    *out = body;
    return 0;
}

static void refresh_job_free(struct refresh_job *j)
{
    free(j->key);
    free(j->job);
    free(j->health);
    memset(j, 0, sizeof(*j));
}

static void *refresher_main(void *arg)
{
    struct cd_api *api = arg;
    struct refresher *f = &api->refresh;
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), QUERY_NICE);
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (f->n == 0 && !f->stop)
            pthread_cond_wait(&f->cv, &f->mu);
        if (f->n == 0)
            break;
        struct refresh_job j = f->jobs[--f->n];
        bool stopping = f->stop;
        pthread_mutex_unlock(&f->mu);
        if (stopping) {
            cd_respcache_abandon(api->targets_cache, j.key);
        } else {
            struct cd_apiwire_targets q = {.job = j.job, .health = j.health};
            struct reply r = {0};
            struct cd_respbody *body = NULL;
            if (build_targets(api, j.key, &q, &body, &r) == 0)
                cd_respbody_unref(body);
            else
                json_decref(r.json);
        }
        refresh_job_free(&j);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Hands a stale list's rebuild to the refresher; without one (or room), the turn is given up
 * and a later request tries again. */
static void refresh_later(struct cd_api *api, const char *key, const struct cd_apiwire_targets *q)
{
    struct refresher *f = &api->refresh;
    struct refresh_job j = {cd_str_dup(key), q->job ? cd_str_dup(q->job) : NULL,
                            q->health ? cd_str_dup(q->health) : NULL};
    bool queued = false;
    if (j.key != NULL && (q->job == NULL || j.job != NULL) &&
        (q->health == NULL || j.health != NULL)) {
        pthread_mutex_lock(&f->mu);
        if (f->started && !f->stop && f->n < TARGETS_SLOTS) {
            f->jobs[f->n++] = j;
            queued = true;
            pthread_cond_signal(&f->cv);
        }
        pthread_mutex_unlock(&f->mu);
    }
    if (!queued) {
        cd_respcache_abandon(api->targets_cache, key);
        refresh_job_free(&j);
    }
}

static void h_targets(struct cd_api *api, struct MHD_Connection *c, struct reply *r)
{
    NEED_BACKEND(r, targets);
    struct cd_apiwire_params p;
    struct cd_apiwire_targets q;
    struct cd_err err;
    cd_err_init(&err);
    cd_apiwire_params_init(&p);
    char *key = NULL;
    struct cd_respbody *body = NULL;
    int rc = collect_params(c, &p, &err);
    if (rc == 0)
        rc = cd_apiwire_targets_parse(&p, &q, &err);
    if (rc != 0) {
        reply_err(r, rc, &err);
        goto done;
    }
    /* \x1f cannot occur in either value (plain strings only). */
    key = cd_str_printf("%s\x1f%s", q.job != NULL ? q.job : "", q.health != NULL ? q.health : "");
    if (key == NULL) {
        reply_error(r, 500, "out of memory");
        goto done;
    }
    bool rebuild = false;
    body = cd_respcache_get(api->targets_cache, key, cd_clock_now_mono_ms(), &rebuild);
    if (body == NULL && build_targets(api, key, &q, &body, r) != 0)
        goto done;
    if (rebuild)
        refresh_later(api, key, &q);
    r->resp = shared_response(body);
    if (r->resp == NULL)
        reply_error(r, 500, "out of memory");
    else
        r->status = 200;
done:
    free(key);
    cd_apiwire_params_free(&p);
}

static void h_snapshots(struct cd_api *api, struct MHD_Connection *c, struct reply *r)
{
    NEED_BACKEND(r, snapshots);
    struct cd_apiwire_params p;
    struct cd_apiwire_snapshots q;
    struct cd_err err;
    cd_err_init(&err);
    cd_apiwire_params_init(&p);
    json_t *out = NULL;
    int rc = collect_params(c, &p, &err);
    if (rc == 0)
        rc = cd_apiwire_snapshots_parse(&p, wall_ms(api), &q, &err);
    if (rc == 0 && q.limit > (int)api->lim.max_page_size)
        rc = cd_err_set(&err, -EINVAL, "parameter 'limit' must be at most %u (max_page_size)",
                        api->lim.max_page_size);
    int page = rc == 0 ? q.limit : 0;
    if (rc == 0) {
        q.limit = page + 1; /* one more tells whether a next page exists */
        rc = api->be.snapshots(api->be.ctx, &q, &out, &err);
    }
    take_result(r, rc, out, &err, "snapshots");
    r->narrowable = true;
    cd_apiwire_params_free(&p);
    if (r->json == NULL)
        return;
    json_t *list = json_object_get(r->json, "snapshots");
    if (!json_is_array(list)) {
        json_decref(r->json);
        r->json = NULL;
        reply_error(r, 500, "the backend's snapshot list has no \"snapshots\" array");
        return;
    }
    json_t *next = json_null();
    if (json_array_size(list) > (size_t)page) {
        while (json_array_size(list) > (size_t)page)
            json_array_remove(list, json_array_size(list) - 1);
        json_t *last = json_array_get(list, (size_t)page - 1);
        json_t *t = json_object_get(last, "time_unix_ms");
        json_t *id = json_object_get(last, "id");
        char cur[CD_APIWIRE_CURSOR_MAX + 1];
        if (json_is_integer(t) && json_is_integer(id) &&
            cd_apiwire_cursor_encode(json_integer_value(t), json_integer_value(id), cur,
                                     sizeof(cur)) == 0)
            next = json_string(cur);
    }
    json_object_set_new(r->json, "next_cursor", next);
}

static void h_snapshot(struct cd_api *api, struct req *q, struct MHD_Connection *c, struct reply *r)
{
    NEED_BACKEND(r, snapshot);
    if (!no_params(c, r))
        return;
    json_t *out = NULL;
    struct cd_err err;
    cd_err_init(&err);
    int rc = api->be.snapshot(api->be.ctx, q->id, &out, &err);
    take_result(r, rc, out, &err, "the snapshot");
}

static void h_series(struct cd_api *api, struct MHD_Connection *c, struct reply *r)
{
    NEED_BACKEND(r, series);
    struct cd_apiwire_params p;
    struct cd_apiwire_series q;
    struct cd_err err;
    cd_err_init(&err);
    cd_apiwire_params_init(&p);
    json_t *out = NULL;
    int rc = collect_params(c, &p, &err);
    if (rc == 0)
        rc = cd_apiwire_series_parse(&p, wall_ms(api), &q, &err);
    if (rc == 0)
        rc = api->be.series(api->be.ctx, &q, &out, &err);
    take_result(r, rc, out, &err, "series");
    r->narrowable = true;
    cd_apiwire_params_free(&p);
}

/* The raw bytes: the head read ahead (to choose the file extension), then the reader. */
struct raw_stream {
    struct cd_api *api;
    struct cd_api_blob blob;
    uint8_t head[RAW_HEAD];
    size_t head_len;
    size_t head_pos;
};

static ssize_t raw_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct raw_stream *s = cls;
    if (atomic_load(&s->api->stopping))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (s->head_pos < s->head_len) {
        size_t n = s->head_len - s->head_pos;
        if (n > max)
            n = max;
        memcpy(buf, s->head + s->head_pos, n);
        s->head_pos += n;
        return (ssize_t)n;
    }
    ssize_t r = s->blob.read(s->blob.rctx, (uint8_t *)buf, max);
    if (r > 0)
        return r;
    return r == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void raw_free(void *cls)
{
    struct raw_stream *s = cls;
    cd_api_blob_release(&s->blob);
    free(s);
}

static const char *raw_content_type(const json_t *meta)
{
    const char *status = json_string_value(json_object_get(meta, "status"));
    const char *sent = json_string_value(json_object_get(meta, "content_type"));
    const char *kind = json_string_value(json_object_get(meta, "kind"));
    const struct cd_kind_info *info = kind != NULL ? cd_kind_lookup(kind) : NULL;
    /* A failed scrape's body is the target's error text, not the kind's format. */
    if (status != NULL && strcmp(status, "http_error") == 0)
        return sent != NULL && strchr(sent, '\n') == NULL ? sent : "text/plain; charset=utf-8";
    if (info != NULL)
        return info->content_type;
    if (sent != NULL && strchr(sent, '\n') == NULL && strchr(sent, '\r') == NULL)
        return sent;
    return "application/octet-stream";
}

static void h_raw(struct cd_api *api, struct req *q, struct reply *r)
{
    NEED_BACKEND(r, raw_open);
    /* Extra parameters are ignored here: go tool pprof adds its own (seconds=). */
    struct raw_stream *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        reply_error(r, 500, "out of memory");
        return;
    }
    s->api = api;
    struct cd_err err;
    cd_err_init(&err);
    int rc = api->be.raw_open(api->be.ctx, q->id, &s->blob, &err);
    if (rc != 0) {
        free(s);
        reply_err(r, rc, &err);
        return;
    }
    if (!json_is_object(s->blob.meta) || s->blob.read == NULL) {
        raw_free(s);
        reply_error(r, 500, "the backend returned an incomplete blob");
        return;
    }
    while (s->head_len < sizeof(s->head) && s->head_len < s->blob.size) {
        size_t want = sizeof(s->head) - s->head_len;
        if (want > s->blob.size - s->head_len)
            want = (size_t)(s->blob.size - s->head_len);
        ssize_t n = s->blob.read(s->blob.rctx, s->head + s->head_len, want);
        if (n <= 0) {
            raw_free(s);
            reply_error(r, 500, "reading snapshot %lld failed", (long long)q->id);
            return;
        }
        s->head_len += (size_t)n;
    }
    char *fname = cd_apiwire_snapshot_filename(s->blob.meta, s->head, s->head_len, false);
    char *disp = fname != NULL ? cd_str_printf("attachment; filename=\"%s\"", fname) : NULL;
    const char *ctype = raw_content_type(s->blob.meta);
    const char *status = json_string_value(json_object_get(s->blob.meta, "status"));
    const char *sha = json_string_value(json_object_get(s->blob.meta, "sha256"));
    char etag[80] = "";
    if (sha != NULL && strlen(sha) == 64)
        snprintf(etag, sizeof(etag), "\"%s\"", sha);
    char idtext[32];
    snprintf(idtext, sizeof(idtext), "%lld", (long long)q->id);
    uint64_t size = s->blob.size;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(size, RAW_BLOCK, raw_reader, s, raw_free);
    if (resp == NULL) {
        raw_free(s);
        free(fname);
        free(disp);
        reply_error(r, 500, "out of memory");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (disp != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp);
    MHD_add_response_header(resp, "X-Collectord-Snapshot", idtext);
    if (status != NULL && cd_kind_name_valid(status))
        MHD_add_response_header(resp, "X-Collectord-Status", status);
    if (etag[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    add_common_headers(resp);
    free(fname);
    free(disp);
    r->resp = resp;
    r->status = 200;
}

static void h_capture(struct cd_api *api, struct req *q, struct MHD_Connection *c, struct reply *r)
{
    NEED_BACKEND(r, capture);
    if (!no_params(c, r))
        return;
    struct cd_apiwire_capture req;
    struct cd_err err;
    cd_err_init(&err);
    int rc = cd_apiwire_capture_parse((const char *)q->body.data, q->body.len, &req, &err);
    if (rc != 0) {
        reply_err(r, rc, &err);
        return;
    }
    if (atomic_fetch_add(&api->captures, 1) >= api->lim.max_captures) {
        atomic_fetch_sub(&api->captures, 1);
        cd_apiwire_capture_free(&req);
        reply_error(r, 429, "%u captures are already running; try again when one finishes",
                    api->lim.max_captures);
        return;
    }
    int64_t timeout = req.timeout_ms > 0 ? req.timeout_ms : api->lim.capture_timeout_ms;
    int64_t deadline = cd_clock_now_mono_ms() + timeout;
    struct cd_api_call *call = cd_api_call_new();
    json_t *out = NULL;
    if (call == NULL)
        rc = cd_err_set(&err, -ENOMEM, "out of memory");
    else
        rc = api->be.capture(api->be.ctx, &req, call, &err);
    while (rc == 0) {
        int64_t now = cd_clock_now_mono_ms();
        int64_t slice = now + WAIT_SLICE_MS < deadline ? now + WAIT_SLICE_MS : deadline;
        struct cd_err werr;
        cd_err_init(&werr);
        rc = cd_api_call_wait(call, slice, &out, &werr);
        if (rc == -ETIMEDOUT && slice < deadline && !atomic_load(&api->stopping)) {
            rc = 0;
            continue;
        }
        if (rc == -ETIMEDOUT) {
            if (atomic_load(&api->stopping)) {
                rc = cd_err_set(&err, -ESHUTDOWN, "collectord is shutting down");
            } else {
                char d[32];
                rc = cd_err_set(&err, -ETIMEDOUT,
                                "the capture did not finish within %s; its snapshots are still "
                                "stored%s%s when they complete",
                                cd_units_fmt_duration(d, sizeof(d), timeout),
                                req.incident != NULL ? " and pinned to " : "",
                                req.incident != NULL ? req.incident : "");
            }
        } else if (rc != 0) {
            cd_err_copy(&err, &werr);
        }
        break;
    }
    if (call != NULL) {
        cd_api_call_cancel(call); /* no-op when completed; tells a late backend to skip work */
        cd_api_call_unref(call);
    }
    cd_apiwire_capture_free(&req);
    atomic_fetch_sub(&api->captures, 1);
    /* Whoever captured looks at the list next: it shows the new scrapes. */
    cd_respcache_invalidate(api->targets_cache);
    take_result(r, rc, out, &err, "the capture");
}

static void h_pin(struct cd_api *api, struct req *q, struct MHD_Connection *c, const char *method,
                  struct reply *r)
{
    struct cd_err err;
    cd_err_init(&err);
    json_t *out = NULL;
    int rc;
    if (strcmp(method, "DELETE") == 0) {
        NEED_BACKEND(r, unpin);
        if (!no_params(c, r))
            return;
        rc = api->be.unpin(api->be.ctx, q->id, &out, &err);
        take_result(r, rc, out, &err, "unpin");
        return;
    }
    NEED_BACKEND(r, pin);
    static const char *const allowed[] = {"incident", NULL};
    struct cd_apiwire_params p;
    cd_apiwire_params_init(&p);
    char *incident = NULL;
    rc = collect_params(c, &p, &err);
    if (rc == 0)
        rc = cd_apiwire_params_check(&p, allowed, &err);
    if (rc == 0)
        rc = cd_apiwire_pin_parse((const char *)q->body.data, q->body.len, &incident, &err);
    const char *qinc = rc == 0 ? cd_apiwire_params_get(&p, "incident") : NULL;
    if (rc == 0 && qinc != NULL) {
        if (!cd_apiwire_incident_name_valid(qinc))
            rc = cd_err_set(&err, -EINVAL, "parameter 'incident': '%s' is not an incident name",
                            qinc);
        else if (incident != NULL && strcmp(incident, qinc) != 0)
            rc = cd_err_set(&err, -EINVAL, "two different incidents in the query and the body");
        else if (incident == NULL && (incident = cd_str_dup(qinc)) == NULL)
            rc = cd_err_set(&err, -ENOMEM, "out of memory");
    }
    if (rc == 0)
        rc = api->be.pin(api->be.ctx, q->id, incident, &out, &err);
    take_result(r, rc, out, &err, "pin");
    free(incident);
    cd_apiwire_params_free(&p);
}

static void h_incidents(struct cd_api *api, struct MHD_Connection *c, struct reply *r)
{
    NEED_BACKEND(r, incidents);
    if (!no_params(c, r))
        return;
    json_t *out = NULL;
    struct cd_err err;
    cd_err_init(&err);
    int rc = api->be.incidents(api->be.ctx, &out, &err);
    take_result(r, rc, out, &err, "incidents");
    r->narrowable = true;
}

static void h_incident(struct cd_api *api, struct req *q, struct MHD_Connection *c, struct reply *r)
{
    NEED_BACKEND(r, incident);
    if (!no_params(c, r))
        return;
    json_t *out = NULL;
    struct cd_err err;
    cd_err_init(&err);
    int rc = api->be.incident(api->be.ctx, q->name, &out, &err);
    take_result(r, rc, out, &err, "the incident");
}

struct bundle_stream {
    struct cd_api *api;
    struct cd_bundle *b;
    char incident[CD_API_INCIDENT_NAME_MAX + 1];
};

static ssize_t bundle_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct bundle_stream *s = cls;
    if (atomic_load(&s->api->stopping))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    struct cd_err err;
    cd_err_init(&err);
    ssize_t n = cd_bundle_read(s->b, (uint8_t *)buf, max, &err);
    if (n > 0)
        return n;
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    cd_log_warning(s->api->log, "query socket: bundle of incident '%s' aborted: %s", s->incident,
                   cd_err_msg(&err));
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void bundle_free(void *cls)
{
    struct bundle_stream *s = cls;
    cd_bundle_free(s->b);
    atomic_fetch_sub(&s->api->bundles, 1);
    free(s);
}

static void h_bundle(struct cd_api *api, struct req *q, struct MHD_Connection *c, struct reply *r)
{
    NEED_BACKEND(r, incident);
    NEED_BACKEND(r, raw_open);
    if (!no_params(c, r))
        return;
    if (atomic_fetch_add(&api->bundles, 1) >= api->lim.max_bundles) {
        atomic_fetch_sub(&api->bundles, 1);
        reply_error(r, 429, "%u bundle exports are already running; try again later",
                    api->lim.max_bundles);
        return;
    }
    struct bundle_stream *s = calloc(1, sizeof(*s));
    json_t *doc = NULL;
    struct cd_err err;
    cd_err_init(&err);
    int rc = s != NULL ? api->be.incident(api->be.ctx, q->name, &doc, &err)
                       : cd_err_set(&err, -ENOMEM, "out of memory");
    if (rc == 0) {
        struct cd_bundle_source src = {api->be.raw_open, api->be.ctx};
        struct cd_bundle_limits lim = {api->lim.max_bundle_snapshots, api->lim.max_bundle_bytes,
                                       api->lim.bundle_compression, 0};
        if (!json_is_object(json_object_get(doc, "incident")))
            json_object_set_new(doc, "incident", json_pack("{s:s}", "name", q->name));
        rc = cd_bundle_new(doc, &src, &lim, wall_ms(api), &s->b, &err);
        doc = NULL;
    }
    json_decref(doc);
    struct MHD_Response *resp = NULL;
    if (rc == 0) {
        s->api = api;
        cd_str_copy(s->incident, q->name, sizeof(s->incident));
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, RAW_BLOCK, bundle_reader, s,
                                                 bundle_free);
        if (resp == NULL)
            rc = cd_err_set(&err, -ENOMEM, "out of memory");
    }
    if (rc != 0) {
        if (s != NULL)
            cd_bundle_free(s->b);
        free(s);
        atomic_fetch_sub(&api->bundles, 1);
        reply_err(r, rc, &err);
        return;
    }
    char *disp = cd_str_printf("attachment; filename=\"%s\"", cd_bundle_filename(s->b));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/gzip");
    if (disp != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp);
    MHD_add_response_header(resp, "X-Collectord-Incident", q->name);
    add_common_headers(resp);
    free(disp);
    r->resp = resp;
    r->status = 200;
}

static void h_retention(struct cd_api *api, struct MHD_Connection *c, struct reply *r)
{
    NEED_BACKEND(r, retention_run);
    static const char *const allowed[] = {"dry_run", NULL};
    struct cd_apiwire_params p;
    struct cd_err err;
    cd_err_init(&err);
    cd_apiwire_params_init(&p);
    bool dry = false;
    json_t *out = NULL;
    int rc = collect_params(c, &p, &err);
    if (rc == 0)
        rc = cd_apiwire_params_check(&p, allowed, &err);
    const char *v = rc == 0 ? cd_apiwire_params_get(&p, "dry_run") : NULL;
    if (v != NULL && cd_apiwire_parse_bool(v, &dry) != 0)
        rc = cd_err_set(&err, -EINVAL, "parameter 'dry_run' must be 0 or 1");
    if (rc == 0)
        rc = api->be.retention_run(api->be.ctx, dry, &out, &err);
    if (rc == 0 && !dry)
        cd_respcache_invalidate(api->targets_cache);
    take_result(r, rc, out, &err, "retention");
    cd_apiwire_params_free(&p);
}

/* The server's own metric families, appended to the backend's. */
static json_t *api_metrics(struct cd_api *api)
{
    json_t *req_samples = json_array();
    for (int rt = 0; rt < R__COUNT; rt++) {
        for (int i = 0; i <= N_CODES; i++) {
            uint64_t n = atomic_load(&api->counts[rt][i]);
            if (n == 0)
                continue;
            char code[8];
            if (i < N_CODES)
                snprintf(code, sizeof(code), "%d", tracked_codes[i]);
            else
                snprintf(code, sizeof(code), "other");
            json_array_append_new(req_samples,
                                  json_pack("{s:{s:s, s:s}, s:I}", "labels", "route",
                                            route_names[rt], "code", code, "value", (json_int_t)n));
        }
    }
    json_t *conn = json_pack("[{s:{s:s}, s:i}, {s:{s:s}, s:i}]", "labels", "listener", "unix",
                             "value", (int)atomic_load(&api->unix_l.connections), "labels",
                             "listener", "tcp", "value", (int)atomic_load(&api->tcp_l.connections));
    return json_pack("[{s:s, s:s, s:s, s:o}, {s:s, s:s, s:s, s:o}, {s:s, s:s, s:s, s:[{s:I}]}]",
                     "name", "collectord_api_requests_total", "type", "counter", "help",
                     "Query API requests answered, by route and HTTP status.", "samples",
                     req_samples, "name", "collectord_api_connections", "type", "gauge", "help",
                     "Open query API connections, by listener.", "samples", conn, "name",
                     "collectord_api_unauthorized_total", "type", "counter", "help",
                     "TCP requests refused for a missing or wrong token.", "samples", "value",
                     (json_int_t)atomic_load(&api->unauthorized));
}

static void h_metrics(struct cd_api *api, struct MHD_Connection *c, struct reply *r)
{
    if (!no_params(c, r))
        return;
    json_t *doc = NULL;
    struct cd_err err;
    cd_err_init(&err);
    int rc = 0;
    if (api->be.metrics != NULL)
        rc = api->be.metrics(api->be.ctx, &doc, &err);
    if (rc != 0) {
        json_decref(doc);
        reply_err(r, rc, &err);
        return;
    }
    struct cd_buf b;
    cd_buf_init(&b, api->lim.max_response_bytes);
    if (doc != NULL)
        rc = cd_promtext_render(doc, &b, &err);
    json_decref(doc);
    json_t *own = api_metrics(api);
    if (rc == 0)
        rc = own != NULL ? cd_promtext_render(own, &b, &err)
                         : cd_err_set(&err, -ENOMEM, "out of memory");
    json_decref(own);
    if (rc != 0) {
        cd_buf_free(&b);
        reply_error(r, 500, "metrics: %s", cd_err_msg(&err));
        return;
    }
    r->resp = buffer_response(&b, "text/plain; version=0.0.4; charset=utf-8");
    cd_buf_free(&b);
    if (r->resp == NULL)
        reply_error(r, 500, "out of memory");
    else
        r->status = 200;
}

static void dispatch(struct cd_api *api, struct req *q, struct MHD_Connection *c,
                     const char *method, struct reply *r)
{
    switch (q->route) {
    case R_INDEX:
        h_index(api, c, r);
        break;
    case R_STATUS:
        h_status(api, c, r);
        break;
    case R_TARGETS:
        h_targets(api, c, r);
        break;
    case R_SNAPSHOTS:
        h_snapshots(api, c, r);
        break;
    case R_SNAPSHOT:
        h_snapshot(api, q, c, r);
        break;
    case R_RAW:
        h_raw(api, q, r);
        break;
    case R_PIN:
        h_pin(api, q, c, method, r);
        break;
    case R_SERIES:
        h_series(api, c, r);
        break;
    case R_CAPTURE:
        h_capture(api, q, c, r);
        break;
    case R_INCIDENTS:
        h_incidents(api, c, r);
        break;
    case R_INCIDENT:
        h_incident(api, q, c, r);
        break;
    case R_BUNDLE:
        h_bundle(api, q, c, r);
        break;
    case R_RETENTION:
        h_retention(api, c, r);
        break;
    case R_METRICS:
        h_metrics(api, c, r);
        break;
    default:
        reply_error(r, 404, "no such route");
        break;
    }
}

/* ---- libmicrohttpd callbacks ---------------------------------------------------------------- */

/* First callback of a request: everything decidable from the headers alone. Returns true when
 * it already answered. */
static bool screen(struct listener *l, struct req *q, struct MHD_Connection *c, const char *url,
                   const char *method, struct reply *r)
{
    struct cd_api *api = l->api;
    if (atomic_load(&api->stopping)) {
        reply_error(r, 503, "collectord is shutting down");
        return true;
    }
    if (atomic_load(&l->connections) > api->lim.max_connections) {
        reply_error(r, 503, "too many connections (limit %u); try again shortly",
                    api->lim.max_connections);
        return true;
    }
    if (l->tcp && !authorized(api, c)) {
        atomic_fetch_add(&api->unauthorized, 1);
        reply_error(r, 401,
                    "this listener needs the token: Authorization: Bearer <token> (or basic "
                    "auth with the token as password)");
        return true;
    }
    char why[256];
    const char *allow = match_route(url, q, why, sizeof(why));
    if (allow == NULL) {
        reply_error(r, 404, "%s", why);
        return true;
    }
    bool is_head = strcmp(method, "HEAD") == 0;
    if (!method_allowed(allow, is_head ? "GET" : method)) {
        r->allow = allow;
        reply_error(r, 405, "%s %s: method not allowed (allowed: %s)", method, url, allow);
        return true;
    }
    q->expects_body = strcmp(method, "POST") == 0;
    const char *clen =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t n;
    if (clen != NULL && cd_str_to_u64(clen, &n) == 0 && n > api->lim.max_request_bytes) {
        char lim[32];
        reply_error(r, 413, "the request body is larger than the limit of %s",
                    cd_units_fmt_size(lim, sizeof(lim), api->lim.max_request_bytes));
        return true;
    }
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct listener *l = cls;
    struct cd_api *api = l->api;
    struct req *q = *con_cls;
    struct reply r = {0};
    if (q == NULL) {
        /* This is the connection's own thread (one per connection). Scrapes start on deadlines
         * and queries can wait a little: under a storm of clients the kernel gives the loop and
         * the storage threads the CPU first. Raising one's nice needs no privilege, and the
         * thread ends with its connection. Where it is refused, queries compete as equals. */
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), QUERY_NICE);
        q = calloc(1, sizeof(*q));
        if (q == NULL)
            return MHD_NO;
        q->l = l;
        cd_buf_init(&q->body, api->lim.max_request_bytes);
        *con_cls = q;
        if (screen(l, q, c, url, method, &r))
            return send_reply(q, c, &r);
        return MHD_YES;
    }
    if (q->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!q->too_large && cd_buf_append(&q->body, upload_data, *upload_size) != 0)
            q->too_large = true;
        if (q->too_large) {
            q->discarded += *upload_size;
            if (q->discarded > (uint64_t)DISCARD_FACTOR * api->lim.max_request_bytes)
                return MHD_NO;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (q->too_large) {
        char lim[32];
        reply_error(&r, 413, "the request body is larger than the limit of %s",
                    cd_units_fmt_size(lim, sizeof(lim), api->lim.max_request_bytes));
        return send_reply(q, c, &r);
    }
    dispatch(api, q, c, method, &r);
    return send_reply(q, c, &r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req *q = *con_cls;
    if (q == NULL)
        return;
    cd_buf_free(&q->body);
    free(q);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)c;
    (void)socket_context;
    struct listener *l = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&l->connections, 1);
    else if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
        atomic_fetch_sub(&l->connections, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct cd_api *api = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    cd_log_warning(api->log, "query socket: libmicrohttpd: %s", msg);
}

/* ---- sockets ----------------------------------------------------------------------------- */

static int unix_listen(struct cd_api *api, const struct cd_api_config *cfg, int *out,
                       struct cd_err *err)
{
    const char *path = cfg->socket_path;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return cd_err_set(err, -ENAMETOOLONG, "socket path '%s' is longer than %zu bytes", path,
                          sizeof(sa.sun_path) - 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = -1, rc = 0;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return cd_err_set(err, -EEXIST, "'%s' exists and is not a socket; not replacing it",
                              path);
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            return cd_err_set(err, -errno, "socket: %s", strerror(errno));
        int crc = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
        int cerr = errno;
        close(probe);
        if (crc == 0)
            return cd_err_set(err, -EADDRINUSE,
                              "another process is serving '%s' (is collectord already running?)",
                              path);
        if (cerr != ECONNREFUSED)
            return cd_err_set(err, -cerr, "probing '%s': %s", path, strerror(cerr));
        /* Nothing listens: a stale socket left by a crash. */
        if (unlink(path) != 0 && errno != ENOENT)
            return cd_err_set(err, -errno, "removing stale socket '%s': %s", path, strerror(errno));
    } else if (errno != ENOENT) {
        return cd_err_set(err, -errno, "'%s': %s", path, strerror(errno));
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return cd_err_set(err, -errno, "socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        rc = cd_err_set(err, -errno, "bind '%s': %s", path, strerror(errno));
        goto fail;
    }
    api->socket_path = cd_str_dup(path);
    if (api->socket_path == NULL) {
        unlink(path);
        rc = cd_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    /* Permissions before listen(): until then connects are refused, so nobody gets in early. */
    if (chmod(path, cfg->socket_mode & 07777) != 0) {
        rc = cd_err_set(err, -errno, "chmod '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (cfg->socket_group != NULL && cfg->socket_group[0] != '\0') {
        struct group gr, *res = NULL;
        char buf[4096];
        int grc = getgrnam_r(cfg->socket_group, &gr, buf, sizeof(buf), &res);
        if (grc != 0 || res == NULL) {
            rc = cd_err_set(err, grc != 0 ? -grc : -ENOENT, "socket group '%s' does not exist",
                            cfg->socket_group);
            goto fail;
        }
        if (chown(path, (uid_t)-1, gr.gr_gid) != 0) {
            rc = cd_err_set(err, -errno, "chown '%s' to group '%s': %s", path, cfg->socket_group,
                            strerror(errno));
            goto fail;
        }
    }
    if (listen(fd, 64) != 0) {
        rc = cd_err_set(err, -errno, "listen '%s': %s", path, strerror(errno));
        goto fail;
    }
    *out = fd;
    return 0;
fail:
    close(fd);
    if (api->socket_path != NULL) {
        unlink(api->socket_path);
        free(api->socket_path);
        api->socket_path = NULL;
    }
    return rc;
}

/* "host:port", "[v6]:port" or ":port" (every address); port 0 picks a free one. */
static int split_listen(const char *s, char **host, int *port)
{
    const char *colon;
    const char *hs = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -EINVAL;
        hs = s + 1;
        hl = (size_t)(close - hs);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || strchr(s, ':') != colon)
            return -EINVAL;
        hl = (size_t)(colon - s);
    }
    if (cd_str_to_int(colon + 1, 0, 65535, port) != 0)
        return -EINVAL;
    *host = cd_str_ndup(hs, hl);
    return *host != NULL ? 0 : -ENOMEM;
}

static int tcp_listen(const char *listen_addr, int *out, struct cd_err *err)
{
    char *host = NULL;
    int port = 0, fd = -1, rc = 0;
    struct addrinfo *res = NULL;
    if (split_listen(listen_addr, &host, &port) != 0)
        return cd_err_set(err, -EINVAL, "listen '%s': expected host:port, [v6]:port or :port",
                          listen_addr);
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                             .ai_family = AF_UNSPEC};
    int grc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (grc != 0) {
        rc = cd_err_set(err, -EINVAL, "listen '%s': %s", listen_addr, gai_strerror(grc));
        goto fail;
    }
    int last = EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        last = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        rc = cd_err_set(err, -last, "listen '%s': %s", listen_addr, strerror(last));
        goto fail;
    }
    *out = fd;
fail:
    if (res != NULL)
        freeaddrinfo(res);
    free(host);
    return rc;
}

static void describe_tcp(struct cd_api *api, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        api->tcp_port = ntohs(in->sin_port);
        snprintf(api->tcp_desc, sizeof(api->tcp_desc), "%s:%d", host, api->tcp_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        api->tcp_port = ntohs(in6->sin6_port);
        snprintf(api->tcp_desc, sizeof(api->tcp_desc), "[%s]:%d", host, api->tcp_port);
    }
}

static int start_listener(struct cd_api *api, struct listener *l, struct cd_err *err)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_POLL;
    /* The logger first: libmicrohttpd reports options it parses before it on its own stderr. */
    l->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, api,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)l->fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(api->lim.max_connections + CONN_HEADROOM), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        api->lim.max_header_bytes, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)((api->lim.idle_timeout_ms + 999) / 1000), MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, l, MHD_OPTION_NOTIFY_CONNECTION, on_connection, l, MHD_OPTION_END);
    if (l->d == NULL)
        return cd_err_set(err, -EIO, "libmicrohttpd could not start on the %s listener",
                          l->tcp ? "TCP" : "Unix socket");
    return 0;
}

static void stop_listener(struct listener *l)
{
    if (l->d != NULL) {
        /* Quiescing hands the listening socket back, so it is closed exactly once, here. */
        MHD_socket fd = MHD_quiesce_daemon(l->d);
        MHD_stop_daemon(l->d);
        l->d = NULL;
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
        l->fd = -1;
    } else if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
}

int cd_api_start(const struct cd_api_config *cfg, const struct cd_api_backend *be,
                 struct cd_api **out, struct cd_err *err)
{
    int rc = 0;
    struct cd_api *api = calloc(1, sizeof(*api));
    if (api == NULL)
        return cd_err_set(err, -ENOMEM, "out of memory");
    api->be = *be;
    api->lim = cfg->limits;
    api->log = cfg->log;
    cd_clock_init_real(&api->real_clock);
    api->clock = cfg->clock != NULL ? cfg->clock : &api->real_clock;
    api->unix_l = (struct listener){.api = api, .tcp = false, .fd = -1};
    api->tcp_l = (struct listener){.api = api, .tcp = true, .fd = -1};
    if (cd_respcache_new(TARGETS_SLOTS, TARGETS_TTL_MS, &api->targets_cache) != 0) {
        free(api);
        return cd_err_set(err, -ENOMEM, "out of memory");
    }
    pthread_mutex_init(&api->refresh.mu, NULL);
    pthread_cond_init(&api->refresh.cv, NULL);
    if (pthread_create(&api->refresh.th, NULL, refresher_main, api) == 0)
        api->refresh.started = true; /* else lists are rebuilt by the request that asks */
    if (api->lim.max_connections == 0 || api->lim.max_request_bytes == 0 ||
        api->lim.max_response_bytes == 0 || api->lim.max_captures == 0 ||
        api->lim.max_bundles == 0 || api->lim.max_header_bytes < 4096 ||
        api->lim.max_page_size == 0 || api->lim.max_page_size > CD_API_MAX_LIST_LIMIT ||
        api->lim.idle_timeout_ms < 1000) {
        rc = cd_err_set(err, -EINVAL,
                        "query limits must be positive (headers at least 4 KiB, page size at "
                        "most %d, idle timeout at least 1s)",
                        CD_API_MAX_LIST_LIMIT);
        goto fail;
    }
    bool want_tcp = cfg->tcp_fd >= 0 || (cfg->listen != NULL && cfg->listen[0] != '\0');
    bool want_unix = cfg->unix_fd >= 0 || (cfg->socket_path != NULL && cfg->socket_path[0]);
    if (!want_tcp && !want_unix) {
        rc = cd_err_set(err, -EINVAL, "the query socket has neither a Unix path nor TCP");
        goto fail;
    }
    if (want_tcp) {
        if (cfg->token == NULL || strlen(cfg->token) < TOKEN_MIN) {
            rc = cd_err_set(err, -EINVAL,
                            "a TCP listener needs a token of at least %d bytes (token_file); "
                            "refusing to serve TCP without one",
                            TOKEN_MIN);
            goto fail;
        }
        cd_hash_sha256(cfg->token, strlen(cfg->token), api->token_hash);
        api->has_token = true;
    }
    if (want_unix) {
        if (cfg->unix_fd >= 0) {
            api->unix_l.fd = cfg->unix_fd;
            api->unix_desc =
                cd_str_dup(cfg->socket_path != NULL ? cfg->socket_path : "(systemd socket)");
        } else {
            rc = unix_listen(api, cfg, &api->unix_l.fd, err);
            if (rc != 0)
                goto fail;
            api->unix_desc = cd_str_dup(cfg->socket_path);
        }
        rc = start_listener(api, &api->unix_l, err);
        if (rc != 0)
            goto fail;
    }
    if (want_tcp) {
        if (cfg->tcp_fd >= 0) {
            api->tcp_l.fd = cfg->tcp_fd;
        } else {
            rc = tcp_listen(cfg->listen, &api->tcp_l.fd, err);
            if (rc != 0)
                goto fail;
        }
        describe_tcp(api, api->tcp_l.fd);
        rc = start_listener(api, &api->tcp_l, err);
        if (rc != 0)
            goto fail;
    }
    *out = api;
    return 0;
fail:
    cd_err_prefix(err, "query socket");
    cd_api_stop(api);
    return rc;
}

void cd_api_stop(struct cd_api *api)
{
    if (api == NULL)
        return;
    atomic_store(&api->stopping, true);
    stop_listener(&api->unix_l);
    stop_listener(&api->tcp_l);
    if (api->socket_path != NULL)
        unlink(api->socket_path);
    free(api->socket_path);
    free(api->unix_desc);
    pthread_mutex_lock(&api->refresh.mu);
    api->refresh.stop = true;
    pthread_cond_signal(&api->refresh.cv);
    pthread_mutex_unlock(&api->refresh.mu);
    if (api->refresh.started)
        pthread_join(api->refresh.th, NULL);
    for (size_t i = 0; i < api->refresh.n; i++)
        refresh_job_free(&api->refresh.jobs[i]);
    pthread_mutex_destroy(&api->refresh.mu);
    pthread_cond_destroy(&api->refresh.cv);
    cd_respcache_free(api->targets_cache);
    free(api);
}

int cd_api_tcp_port(const struct cd_api *api)
{
    return api->tcp_port;
}

void cd_api_get_stats(struct cd_api *api, struct cd_api_stats *out)
{
    out->connections = atomic_load(&api->unix_l.connections) + atomic_load(&api->tcp_l.connections);
    out->requests = atomic_load(&api->requests);
    out->unauthorized = atomic_load(&api->unauthorized);
}

int cd_api_read_token_file(const char *path, char **token, struct cd_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return cd_err_set(err, -errno, "token file '%s': %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    char buf[TOKEN_MAX + 2];
    size_t len = 0;
    if (fstat(fd, &st) != 0) {
        rc = cd_err_set(err, -errno, "token file '%s': %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = cd_err_set(err, -EINVAL, "token file '%s' is not a regular file", path);
        goto out;
    }
    if (st.st_mode & S_IROTH) {
        rc = cd_err_set(err, -EPERM,
                        "token file '%s' is readable by everyone (mode %04o); chmod o-r it", path,
                        (unsigned)(st.st_mode & 07777));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cd_err_set(err, -errno, "token file '%s': %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == sizeof(buf) - 1)
            break;
    }
    buf[len] = '\0';
    char *s = buf;
    while (*s != '\0' && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    if (n < TOKEN_MIN || n > TOKEN_MAX) {
        rc = cd_err_set(err, -EINVAL, "token file '%s': the token must be %d..%d bytes", path,
                        TOKEN_MIN, TOKEN_MAX);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f) {
            rc = cd_err_set(err, -EINVAL,
                            "token file '%s': the token must be one word of printable characters",
                            path);
            goto out;
        }
    }
    *token = cd_str_dup(s);
    if (*token == NULL)
        rc = cd_err_set(err, -ENOMEM, "out of memory");
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return rc;
}

int cd_api_systemd_fds(int *unix_fd, int *tcp_fd, struct cd_err *err)
{
    *unix_fd = -1;
    *tcp_fd = -1;
    int n = sd_listen_fds(1);
    if (n < 0)
        return cd_err_set(err, n, "sd_listen_fds: %s", strerror(-n));
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
        if (*unix_fd < 0 && sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0)
            *unix_fd = fd;
        else if (*tcp_fd < 0 && sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0)
            *tcp_fd = fd;
    }
    return 0;
}
