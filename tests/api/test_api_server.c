/*
 * The query server's HTTP layer over a test backend: every route's status codes and JSON errors,
 * pagination, raw downloads, streamed bundles (read back with tar), capture (limits, deadline,
 * shutdown), pins, limits (body size, connections), the Unix socket (mode, stale, live), TCP
 * tokens, /metrics (parsed back), and that scrape credentials never leave the server.
 */
#include "fixture.h"

#include "cdtest.h"
#include "hash.h"
#include "str.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

static long get_status(struct fx *f, const char *path)
{
    struct ht_resp r;
    ht_get(f, path, &r);
    long st = r.status;
    ht_free(&r);
    return st;
}

/* An error response: JSON {"error", "code", "status"} matching the HTTP status. */
static void assert_error(const struct ht_resp *r, long status, const char *needle)
{
    if (r->status != status)
        fail_msg("status %ld, wanted %ld: %s", r->status, status, r->body);
    assert_non_null(r->json);
    const char *msg = json_string_value(json_object_get(r->json, "error"));
    assert_non_null(msg);
    assert_non_null(json_string_value(json_object_get(r->json, "code")));
    assert_int_equal(json_integer_value(json_object_get(r->json, "status")), status);
    char ct[128];
    assert_non_null(ht_header(r, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/json");
    if (needle != NULL && strstr(msg, needle) == NULL)
        fail_msg("error '%s' lacks '%s'", msg, needle);
}

static void post(struct fx *f, const char *path, const char *body, struct ht_resp *r)
{
    char url[1024];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    const char *h[] = {"Content-Type: application/json", NULL};
    assert_int_equal(ht_request(f->sock, url, "POST", body, h, r), 0);
}

static void test_routes(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    struct ht_resp r;

    ht_get(&f, "/", &r);
    assert_int_equal(r.status, 200);
    assert_true(json_array_size(json_object_get(r.json, "routes")) >= 13);
    ht_free(&r);

    ht_get(&f, "/api/v1/status", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "api_version")), "v1");
    assert_non_null(json_string_value(json_object_get(r.json, "version")));
    assert_true(json_is_integer(json_object_get(r.json, "pid")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "query"), "unix_socket")),
        f.sock);
    /* the RFC 3339 twin of every _unix_ms time */
    const char *started = json_string_value(json_object_get(r.json, "started"));
    assert_non_null(started);
    assert_true(strlen(started) == 24 && started[23] == 'Z');
    assert_null(json_object_get(r.json, "token_password"));
    char cc[64];
    assert_string_equal(ht_header(&r, "Cache-Control", cc, sizeof(cc)), "no-store");
    ht_free(&r);

    ht_get(&f, "/api/v1/targets?job=api", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "targets")), 2);
    ht_free(&r);
    ht_get(&f, "/api/v1/targets?health=down", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "targets")), 1);
    ht_free(&r);

    char path[128];
    snprintf(path, sizeof(path), "/api/v1/snapshots/%lld", (long long)f.dump_id);
    ht_get(&f, path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "kind")), "goroutine_dump");
    assert_true(json_is_object(json_object_get(r.json, "summary")));
    assert_non_null(json_string_value(json_object_get(r.json, "time")));
    ht_free(&r);

    ht_get(&f, "/api/v1/series?name=goroutine.count&since=1h", &r);
    assert_int_equal(r.status, 200);
    const json_t *pts =
        json_object_get(json_array_get(json_object_get(r.json, "series"), 0), "points");
    assert_int_equal(json_array_size(pts), 5);
    assert_non_null(json_string_value(json_object_get(json_array_get(pts, 0), "time")));
    ht_free(&r);

    ht_get(&f, "/api/v1/incidents", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "incidents")), 2);
    ht_free(&r);
    ht_get(&f, "/api/v1/incidents/outage-42", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "snapshots")), 4);
    ht_free(&r);

    /* Errors: JSON with a fitting status. */
    ht_get(&f, "/api/v1/nope", &r);
    assert_error(&r, 404, "no route");
    ht_free(&r);
    ht_get(&f, "/elsewhere", &r);
    assert_error(&r, 404, "/api/v1/");
    ht_free(&r);
    ht_get(&f, "/api/v1/status/", &r);
    assert_error(&r, 404, NULL);
    ht_free(&r);
    ht_get(&f, "/api/v1/snapshots/abc", &r);
    assert_error(&r, 404, "not a snapshot id");
    ht_free(&r);
    ht_get(&f, "/api/v1/snapshots/999", &r);
    assert_error(&r, 404, "no snapshot 999");
    ht_free(&r);
    ht_get(&f, "/api/v1/incidents/nothing-here", &r);
    assert_error(&r, 404, "no incident");
    ht_free(&r);
    ht_get(&f, "/api/v1/incidents/..x", &r);
    assert_error(&r, 404, NULL);
    ht_free(&r);
    ht_get(&f, "/api/v1/status?verbose=1", &r);
    assert_error(&r, 400, "unknown query parameter 'verbose'");
    ht_free(&r);
    ht_get(&f, "/api/v1/snapshots?limit=0", &r);
    assert_error(&r, 400, "'limit'");
    ht_free(&r);
    ht_get(&f, "/api/v1/snapshots?limit=1001", &r);
    assert_error(&r, 400, "at most 1000 (max_page_size)");
    ht_free(&r);
    ht_get(&f, "/api/v1/snapshots?kind=cpu&kind=heap", &r);
    assert_error(&r, 400, "given twice");
    ht_free(&r);
    ht_get(&f, "/api/v1/snapshots?since=tomorrow", &r);
    assert_error(&r, 400, "is not a time");
    ht_free(&r);
    ht_get(&f, "/api/v1/snapshots?cursor=%21%21", &r);
    assert_error(&r, 400, "cursor");
    ht_free(&r);
    ht_get(&f, "/api/v1/series", &r);
    assert_error(&r, 400, "'name' is required");
    ht_free(&r);

    assert_int_equal(ht_request(f.sock, "http://localhost/api/v1/status", "POST", "", NULL, &r), 0);
    assert_error(&r, 405, "method not allowed");
    char allow[64];
    assert_string_equal(ht_header(&r, "Allow", allow, sizeof(allow)), "GET, HEAD");
    ht_free(&r);
    assert_int_equal(ht_request(f.sock, "http://localhost/api/v1/capture", "GET", NULL, NULL, &r),
                     0);
    assert_error(&r, 405, NULL);
    ht_free(&r);
    assert_int_equal(ht_request(f.sock, "http://localhost/api/v1/status", "HEAD", NULL, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    ht_free(&r);

    /* Retention: a dry run, a conflict, a bad flag. */
    post(&f, "/api/v1/retention/run?dry_run=1", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "dry_run")));
    assert_non_null(json_string_value(
        json_object_get(json_array_get(json_object_get(r.json, "candidates"), 0), "time")));
    ht_free(&r);
    f.tb.retention_busy = true;
    post(&f, "/api/v1/retention/run", NULL, &r);
    assert_error(&r, 409, "in progress");
    ht_free(&r);
    post(&f, "/api/v1/retention/run?dry_run=perhaps", NULL, &r);
    assert_error(&r, 400, "dry_run");
    ht_free(&r);
    fx_stop(&f);
}

static void test_pagination(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    int64_t seen[64];
    size_t n = 0;
    char cursor[128] = "";
    int pages = 0;
    int64_t last_time = INT64_MAX;
    for (;;) {
        char path[256];
        snprintf(path, sizeof(path), "/api/v1/snapshots?limit=3%s%s", cursor[0] ? "&cursor=" : "",
                 cursor);
        struct ht_resp r;
        ht_get(&f, path, &r);
        assert_int_equal(r.status, 200);
        const json_t *list = json_object_get(r.json, "snapshots");
        assert_true(json_array_size(list) <= 3);
        for (size_t i = 0; i < json_array_size(list); i++) {
            const json_t *s = json_array_get(list, i);
            int64_t t = json_integer_value(json_object_get(s, "time_unix_ms"));
            assert_true(t <= last_time);
            last_time = t;
            seen[n++] = json_integer_value(json_object_get(s, "id"));
        }
        pages++;
        const char *next = json_string_value(json_object_get(r.json, "next_cursor"));
        if (next == NULL) {
            assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
            ht_free(&r);
            break;
        }
        cd_str_copy(cursor, next, sizeof(cursor));
        ht_free(&r);
    }
    assert_int_equal(n, f.tb.n);
    assert_int_equal(pages, (int)((f.tb.n + 2) / 3));
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++)
            assert_true(seen[i] != seen[j]);
    }
    /* Filters reach the backend. */
    struct ht_resp r;
    ht_get(&f, "/api/v1/snapshots?kind=process_cpu&status=ok", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "snapshots")), 1);
    ht_free(&r);
    ht_get(&f, "/api/v1/snapshots?incident=outage-42&pinned=1", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "snapshots")), 4);
    ht_free(&r);
    ht_get(&f, "/api/v1/snapshots?since=5m", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "snapshots")), 4);
    ht_free(&r);
    fx_stop(&f);
}

static void raw_check(struct fx *f, int64_t id, const char *ctype, const char *ext,
                      const void *want, size_t want_len)
{
    char path[128], h[256];
    snprintf(path, sizeof(path), "/api/v1/snapshots/%lld/raw", (long long)id);
    struct ht_resp r;
    ht_get(f, path, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, want_len);
    assert_memory_equal(r.body, want, want_len);
    assert_string_equal(ht_header(&r, "Content-Type", h, sizeof(h)), ctype);
    assert_non_null(ht_header(&r, "Content-Disposition", h, sizeof(h)));
    assert_true(cd_str_has_prefix(h, "attachment; filename=\"api-10.0.0.5_6060-"));
    char tail[32];
    snprintf(tail, sizeof(tail), "Z%s\"", ext);
    if (!cd_str_has_suffix(h, tail))
        fail_msg("Content-Disposition '%s' does not end in %s", h, tail);
    assert_non_null(ht_header(&r, "Content-Length", h, sizeof(h)));
    assert_int_equal(strtoull(h, NULL, 10), want_len);
    snprintf(path, sizeof(path), "%lld", (long long)id);
    assert_string_equal(ht_header(&r, "X-Collectord-Snapshot", h, sizeof(h)), path);
    assert_non_null(ht_header(&r, "ETag", h, sizeof(h)));
    uint8_t md[32];
    char hex[65], etag[80];
    cd_hash_sha256(want, want_len, md);
    cd_hash_hex(md, 32, hex);
    snprintf(etag, sizeof(etag), "\"%s\"", hex);
    assert_string_equal(h, etag);
    ht_free(&r);
}

static void test_raw(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    struct tb_snap *cpu = &f.tb.snaps[0];
    raw_check(&f, f.cpu_id, "application/octet-stream", ".pb.gz", cpu->raw, cpu->raw_len);
    struct tb_snap *dump = &f.tb.snaps[2];
    raw_check(&f, f.dump_id, "text/plain; charset=utf-8", ".txt", dump->raw, dump->raw_len);
    struct tb_snap *trace = &f.tb.snaps[3];
    raw_check(&f, f.trace_id, "application/octet-stream", ".trace", trace->raw, trace->raw_len);
    struct tb_snap *herr = &f.tb.snaps[5];
    raw_check(&f, f.httperr_id, "application/octet-stream", ".txt", herr->raw, herr->raw_len);
    raw_check(&f, f.big_id, "application/octet-stream", ".txt", f.big, f.big_len); /* text head */

    struct ht_resp r;
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/snapshots/%lld/raw", (long long)f.timeout_id);
    ht_get(&f, path, &r);
    assert_error(&r, 404, "kept no bytes");
    ht_free(&r);
    ht_get(&f, "/api/v1/snapshots/4242/raw", &r);
    assert_error(&r, 404, NULL);
    ht_free(&r);
    /* go tool pprof adds seconds= to URLs; the raw route ignores it. */
    snprintf(path, sizeof(path), "/api/v1/snapshots/%lld/raw?seconds=30", (long long)f.cpu_id);
    assert_int_equal(get_status(&f, path), 200);
    snprintf(path, sizeof(path), "http://localhost/api/v1/snapshots/%lld/raw", (long long)f.big_id);
    assert_int_equal(ht_request(f.sock, path, "HEAD", NULL, NULL, &r), 0);
    char h[64];
    assert_int_equal(r.status, 200);
    assert_int_equal(strtoull(ht_header(&r, "Content-Length", h, sizeof(h)), NULL, 10), f.big_len);
    ht_free(&r);
    fx_stop(&f);
}

static void test_bundle(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    struct ht_resp r;
    ht_get(&f, "/api/v1/incidents/outage-42/bundle", &r);
    assert_int_equal(r.status, 200);
    char h[256];
    assert_string_equal(ht_header(&r, "Content-Type", h, sizeof(h)), "application/gzip");
    assert_string_equal(ht_header(&r, "Content-Disposition", h, sizeof(h)),
                        "attachment; filename=\"outage-42.tar.gz\"");
    assert_string_equal(ht_header(&r, "Transfer-Encoding", h, sizeof(h)), "chunked");
    char *file = cdt_path(f.dir, "outage-42.tar.gz");
    assert_int_equal(cdt_write_file(file, r.body, r.len), 0);
    assert_null(memmem(r.body, r.len, TB_SECRET, strlen(TB_SECRET)));
    ht_free(&r);

    char cmd[2048];
    char *out = NULL;
    snprintf(cmd, sizeof(cmd), "tar -tzf '%s'", file);
    assert_int_equal(ht_sh(cmd, &out, 30000), 0);
    const char *want[] = {"outage-42/", "outage-42/README.txt", "outage-42/manifest.json",
                          "-cpu-",      "-goroutine_dump-",     "-heap-"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (strstr(out, want[i]) == NULL)
            fail_msg("tar -t lacks %s:\n%s", want[i], out);
    }
    /* README first, manifest last, the timed-out snapshot has no file. */
    assert_true(strstr(out, "README.txt") < strstr(out, "-cpu-"));
    assert_true(strstr(out, "-heap-") < strstr(out, "manifest.json"));
    free(out);
    snprintf(cmd, sizeof(cmd), "cd '%s' && tar -xzf outage-42.tar.gz 2>&1", f.dir);
    assert_int_equal(ht_sh(cmd, &out, 30000), 0);
    assert_string_equal(out, "");
    free(out);

    char *mpath = cdt_path(f.dir, "outage-42/manifest.json");
    json_t *man = json_load_file(mpath, 0, NULL);
    assert_non_null(man);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(man, "incident"), "name")), "outage-42");
    const json_t *snaps = json_object_get(man, "snapshots");
    assert_int_equal(json_array_size(snaps), 4);
    int files = 0;
    for (size_t i = 0; i < json_array_size(snaps); i++) {
        const json_t *e = json_array_get(snaps, i);
        const char *fname = json_string_value(json_object_get(e, "file"));
        int64_t id = json_integer_value(json_object_get(e, "id"));
        assert_true(json_is_null(json_object_get(e, "export_error")));
        if (id == f.timeout_id) {
            assert_null(fname);
            continue;
        }
        assert_non_null(fname);
        files++;
        const struct tb_snap *s = NULL;
        for (size_t k = 0; k < f.tb.n; k++) {
            if (f.tb.snaps[k].id == id)
                s = &f.tb.snaps[k];
        }
        assert_non_null(s);
        char *p = cdt_path(f.dir, fname);
        uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(cdt_read_file(p, &data, &len), 0);
        assert_int_equal(len, s->raw_len);
        assert_memory_equal(data, s->raw, len);
        uint8_t md[32];
        char hex[65];
        cd_hash_sha256(data, len, md);
        cd_hash_hex(md, 32, hex);
        assert_string_equal(json_string_value(json_object_get(e, "sha256")), hex);
        assert_string_equal(json_string_value(json_object_get(e, "stored_sha256")), hex);
        assert_non_null(json_string_value(json_object_get(e, "time")));
        free(data);
        free(p);
    }
    assert_int_equal(files, 3);
    json_decref(man);
    free(mpath);
    char *readme = cdt_path(f.dir, "outage-42/README.txt");
    uint8_t *text = NULL;
    size_t tlen = 0;
    assert_int_equal(cdt_read_file(readme, &text, &tlen), 0);
    assert_non_null(strstr((char *)text, "go tool pprof -http=: api-10.0.0.5_6060-cpu-"));
    assert_non_null(strstr((char *)text, "less api-10.0.0.5_6060-goroutine_dump-"));
    assert_non_null(strstr((char *)text, "no bytes kept, status timeout"));
    free(text);
    free(readme);

    /* A reader that fails half-way: the archive stays readable, the manifest says why. */
    ht_get(&f, "/api/v1/incidents/broken/bundle", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(cdt_write_file(file, r.body, r.len), 0);
    ht_free(&r);
    snprintf(cmd, sizeof(cmd), "cd '%s' && tar -xzf outage-42.tar.gz 2>&1", f.dir);
    assert_int_equal(ht_sh(cmd, &out, 30000), 0);
    free(out);
    mpath = cdt_path(f.dir, "broken/manifest.json");
    man = json_load_file(mpath, 0, NULL);
    assert_non_null(man);
    const json_t *e = json_array_get(json_object_get(man, "snapshots"), 0);
    const char *why = json_string_value(json_object_get(e, "export_error"));
    assert_non_null(why);
    assert_non_null(strstr(why, "padded with zeros"));
    assert_true(json_is_null(json_object_get(e, "sha256")));
    json_decref(man);
    free(mpath);

    ht_get(&f, "/api/v1/incidents/missing/bundle", &r);
    assert_error(&r, 404, NULL);
    ht_free(&r);
    free(file);
    fx_stop(&f);
}

static void test_bundle_limits(void **state)
{
    (void)state;
    struct cd_api_limits lim;
    cd_api_limits_default(&lim);
    lim.max_bundles = 1;
    lim.max_bundle_bytes = 1u << 20;
    struct fx f;
    fx_start(&f, &lim, false);
    struct ht_resp r;
    /* 3 MiB incident, 1 MiB limit: refused before anything is streamed. */
    ht_get(&f, "/api/v1/incidents/outage-42/bundle", &r);
    assert_error(&r, 413, "bundle limit");
    ht_free(&r);
    fx_stop(&f);

    lim.max_bundle_bytes = 1ULL << 30;
    fx_start(&f, &lim, false);
    /* A reader that does not read: the first bundle stays in flight... */
    int fd = ht_connect_unix(f.sock);
    assert_true(fd >= 0);
    const char req[] = "GET /api/v1/incidents/outage-42/bundle HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    /* ...until the server has answered it (headers out), then a second one gets 429. */
    char buf[512];
    ssize_t n = read(fd, buf, sizeof(buf));
    assert_true(n > 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0);
    ht_get(&f, "/api/v1/incidents/outage-42/bundle", &r);
    assert_error(&r, 429, "bundle exports");
    char ra[16];
    assert_string_equal(ht_header(&r, "Retry-After", ra, sizeof(ra)), "1");
    ht_free(&r);
    close(fd);
    fx_stop(&f);
}

struct bg_req {
    struct fx *f;
    const char *path;
    const char *body;
    struct ht_resp r;
    int code;
    pthread_t t;
};

/* No cmocka assertions off the main thread: the outcome is checked after the join. */
static void *bg_post(void *arg)
{
    struct bg_req *b = arg;
    char url[1024];
    snprintf(url, sizeof(url), "http://localhost%s", b->path);
    const char *h[] = {"Content-Type: application/json", NULL};
    b->code = ht_request(b->f->sock, url, "POST", b->body, h, &b->r);
    return NULL;
}

static bool captures_started(void *ctx)
{
    return tb_captures_started(&((struct fx *)ctx)->tb) >= 1;
}

static void test_capture(void **state)
{
    (void)state;
    struct fx f;
    struct cd_api_limits lim;
    cd_api_limits_default(&lim);
    lim.max_request_bytes = 64 * 1024;
    fx_start(&f, &lim, false);
    struct ht_resp r;
    post(&f, "/api/v1/capture",
         "{\"selector\": {\"job\": \"api\"}, \"kinds\": [\"heap\"], \"incident\": \"inc-1\"}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "incident")), "inc-1");
    assert_int_equal(json_integer_value(json_object_get(r.json, "matched_targets")), 2);
    const json_t *list = json_object_get(r.json, "snapshots");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "status")),
                        "ok");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "status")),
                        "connect_error");
    assert_non_null(json_string_value(json_object_get(json_array_get(list, 0), "time")));
    ht_free(&r);
    ht_get(&f, "/api/v1/incidents/inc-1", &r);
    assert_int_equal(r.status, 200);
    ht_free(&r);

    post(&f, "/api/v1/capture", "{\"selector\": {\"labels\": {\"zone\": \"b\"}}}", &r);
    assert_int_equal(r.status, 200);
    ht_free(&r);
    post(&f, "/api/v1/capture", "{\"selector\": {\"job\": \"nope\"}}", &r);
    assert_error(&r, 404, "no target matches");
    ht_free(&r);
    post(&f, "/api/v1/capture", "{\"selector\": {}}", &r);
    assert_error(&r, 400, "selector is empty");
    ht_free(&r);
    post(&f, "/api/v1/capture", "not json", &r);
    assert_error(&r, 400, "not valid JSON");
    ht_free(&r);
    post(&f, "/api/v1/capture", NULL, &r);
    assert_error(&r, 400, NULL);
    ht_free(&r);

    /* Body limits: announced by Content-Length (refused before reading), or chunked. */
    size_t big = 70 * 1024;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    body[big] = '\0';
    body[0] = '{';
    body[big - 1] = '}';
    /* A client that sends the body at once may see the connection closed mid-send; one that
     * asks first (Expect: 100-continue) gets the 413. */
    const char *expect[] = {"Expect: 100-continue", "Content-Type: application/json", NULL};
    assert_int_equal(
        ht_request(f.sock, "http://localhost/api/v1/capture", "POST", body, expect, &r), 0);
    assert_error(&r, 413, "larger than the limit of 64 KiB");
    ht_free(&r);
    const char *chunked[] = {"Transfer-Encoding: chunked", "Content-Type: application/json",
                             "Expect:", NULL};
    assert_int_equal(
        ht_request(f.sock, "http://localhost/api/v1/capture", "POST", body, chunked, &r), 0);
    assert_error(&r, 413, "larger than the limit");
    ht_free(&r);
    free(body);
    fx_stop(&f);
}

struct started_ctx {
    struct fx *f;
    int want;
};

static bool started_at_least(void *ctx)
{
    struct started_ctx *s = ctx;
    return tb_captures_started(&s->f->tb) >= s->want;
}

static void test_capture_waits(void **state)
{
    (void)state;
    struct cd_api_limits lim;
    cd_api_limits_default(&lim);
    lim.max_captures = 1;
    struct fx f;
    fx_start(&f, &lim, false);
    f.tb.capture_mode = TB_CAPTURE_HOLD;
    struct bg_req b = {.f = &f,
                       .path = "/api/v1/capture",
                       .body = "{\"selector\": {\"all\": true}, \"kinds\": [\"cpu\"]}"};
    assert_int_equal(pthread_create(&b.t, NULL, bg_post, &b), 0);
    assert_int_equal(cdt_wait_until(captures_started, &f, 10000), 0);
    /* One capture in flight is the limit. */
    struct ht_resp r;
    post(&f, "/api/v1/capture", "{\"selector\": {\"all\": true}}", &r);
    assert_error(&r, 429, "captures are already running");
    ht_free(&r);
    /* The daemon's loop finishes it: the waiting request gets the result. */
    tb_release(&f.tb);
    pthread_join(b.t, NULL);
    assert_int_equal(b.r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(b.r.json, "matched_targets")), 3);
    ht_free(&b.r);

    /* A deadline that passes first: 504, and the late completion harms nothing. */
    f.tb.released = false;
    post(&f, "/api/v1/capture",
         "{\"selector\": {\"job\": \"batch\"}, \"timeout_ms\": 1000, \"incident\": \"late\"}", &r);
    assert_error(&r, 504, "did not finish within 1s");
    assert_non_null(strstr(json_string_value(json_object_get(r.json, "error")), "pinned to late"));
    ht_free(&r);
    tb_release(&f.tb);

    /* Shutdown while a capture waits: the request ends promptly with 503. */
    f.tb.released = false;
    struct bg_req c = {
        .f = &f, .path = "/api/v1/capture", .body = "{\"selector\": {\"job\": \"api\"}}"};
    struct started_ctx sc = {&f, tb_captures_started(&f.tb) + 1};
    assert_int_equal(pthread_create(&c.t, NULL, bg_post, &c), 0);
    assert_int_equal(cdt_wait_until(started_at_least, &sc, 10000), 0);
    int64_t t0 = cdt_now_ms();
    cd_api_stop(f.api);
    f.api = NULL;
    assert_true(cdt_now_ms() - t0 < 3000);
    pthread_join(c.t, NULL);
    assert_true(c.r.status == 503 || c.r.status == 0);
    ht_free(&c.r);
    fx_stop(&f);
}

static void test_pin(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    struct ht_resp r;
    char path[128], url[160];
    snprintf(path, sizeof(path), "/api/v1/snapshots/%lld/pin", (long long)f.heap_id);
    post(&f, path, "{\"incident\": \"db-slow\"}", &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "pinned")));
    assert_string_equal(json_string_value(json_object_get(r.json, "incident")), "db-slow");
    ht_free(&r);
    post(&f, path, NULL, &r); /* idempotent, no body */
    assert_int_equal(r.status, 200);
    ht_free(&r);
    snprintf(url, sizeof(url), "%s?incident=other", path);
    post(&f, url, "{\"incident\": \"db-slow\"}", &r);
    assert_error(&r, 400, "two different incidents");
    ht_free(&r);
    post(&f, path, "{\"incident\": \"no/slash\"}", &r);
    assert_error(&r, 400, "incident");
    ht_free(&r);
    snprintf(url, sizeof(url), "http://localhost%s", path);
    assert_int_equal(ht_request(f.sock, url, "DELETE", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_false(json_is_true(json_object_get(r.json, "pinned")));
    ht_free(&r);
    post(&f, "/api/v1/snapshots/777/pin", NULL, &r);
    assert_error(&r, 404, NULL);
    ht_free(&r);
    assert_int_equal(ht_request(f.sock, url, "PUT", NULL, NULL, &r), 0);
    assert_error(&r, 405, NULL);
    ht_free(&r);
    fx_stop(&f);
}

struct conn_ctx {
    struct fx *f;
    unsigned want;
};

static bool connections_are(void *ctx)
{
    struct conn_ctx *c = ctx;
    struct cd_api_stats st;
    cd_api_get_stats(c->f->api, &st);
    return st.connections == c->want;
}

static void test_connection_limit(void **state)
{
    (void)state;
    struct cd_api_limits lim;
    cd_api_limits_default(&lim);
    lim.max_connections = 2;
    struct fx f;
    fx_start(&f, &lim, false);
    int a = ht_connect_unix(f.sock), b = ht_connect_unix(f.sock);
    assert_true(a >= 0 && b >= 0);
    struct conn_ctx cc = {&f, 2};
    assert_int_equal(cdt_wait_until(connections_are, &cc, 5000), 0);
    struct ht_resp r;
    ht_get(&f, "/api/v1/status", &r);
    assert_error(&r, 503, "too many connections (limit 2)");
    char ra[16];
    assert_string_equal(ht_header(&r, "Retry-After", ra, sizeof(ra)), "5");
    ht_free(&r);
    close(a);
    cc.want = 1;
    assert_int_equal(cdt_wait_until(connections_are, &cc, 5000), 0);
    assert_int_equal(get_status(&f, "/api/v1/status"), 200);
    close(b);
    fx_stop(&f);
}

static void test_unix_socket(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    struct stat st;
    assert_int_equal(lstat(f.sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0660);

    struct tb tb2;
    tb_init(&tb2);
    struct cd_api_backend be = tb_backend(&tb2);
    struct cd_api_config cfg;
    cd_api_config_default(&cfg);
    cfg.socket_path = f.sock;
    struct cd_api *api = NULL;
    struct cd_err err;
    cd_err_init(&err);
    /* A live socket is refused. */
    assert_int_equal(cd_api_start(&cfg, &be, &api, &err), -EADDRINUSE);
    assert_non_null(strstr(cd_err_msg(&err), "already running"));
    assert_int_equal(get_status(&f, "/api/v1/status"), 200);

    /* A stale one (no listener behind it) is replaced. */
    char *stale = cdt_path(f.dir, "stale.sock");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cd_str_copy(sa.sun_path, stale, sizeof(sa.sun_path));
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    assert_int_equal(lstat(stale, &st), 0);
    cfg.socket_path = stale;
    struct group *g = getgrgid(getgid());
    assert_non_null(g);
    char group[64];
    cd_str_copy(group, g->gr_name, sizeof(group));
    cfg.socket_group = group;
    cfg.socket_mode = 0600;
    cd_err_init(&err);
    if (cd_api_start(&cfg, &be, &api, &err) != 0)
        fail_msg("stale socket: %s", cd_err_msg(&err));
    assert_int_equal(lstat(stale, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_gid, getgid());
    fd = ht_connect_unix(stale);
    assert_true(fd >= 0);
    close(fd);
    cd_api_stop(api);
    /* The socket file goes with the server. */
    assert_int_equal(lstat(stale, &st), -1);

    /* A file that is not a socket is never replaced; an unknown group is an error. */
    assert_int_equal(cdt_write_file(stale, "keep me", 7), 0);
    cd_err_init(&err);
    assert_int_equal(cd_api_start(&cfg, &be, &api, &err), -EEXIST);
    assert_int_equal(lstat(stale, &st), 0);
    unlink(stale);
    cfg.socket_group = "no-such-group-here";
    cd_err_init(&err);
    assert_int_equal(cd_api_start(&cfg, &be, &api, &err), -ENOENT);
    assert_non_null(strstr(cd_err_msg(&err), "no-such-group-here"));
    assert_int_equal(lstat(stale, &st), -1);
    cfg.socket_group = NULL;
    /* TCP needs a token. */
    cfg.listen = "127.0.0.1:0";
    cfg.token = NULL;
    cd_err_init(&err);
    assert_int_equal(cd_api_start(&cfg, &be, &api, &err), -EINVAL);
    assert_non_null(strstr(cd_err_msg(&err), "token"));
    cfg.token = "short";
    assert_int_equal(cd_api_start(&cfg, &be, &api, NULL), -EINVAL);
    free(stale);
    tb_free(&tb2);
    fx_stop(&f);
}

static long tcp_get(int port, const char *path, const char *auth)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    const char *h[] = {auth, NULL};
    struct ht_resp r;
    assert_int_equal(ht_request(NULL, url, "GET", NULL, auth != NULL ? h : NULL, &r), 0);
    long st = r.status;
    if (st == 401) {
        char w[128];
        assert_non_null(ht_header(&r, "WWW-Authenticate", w, sizeof(w)));
        assert_error(&r, 401, "token");
    }
    ht_free(&r);
    return st;
}

static void test_tcp_token(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, true);
    assert_true(f.tcp_port > 0);
    assert_int_equal(tcp_get(f.tcp_port, "/api/v1/status", NULL), 401);
    assert_int_equal(tcp_get(f.tcp_port, "/api/v1/status", "Authorization: Bearer wrong"), 401);
    assert_int_equal(
        tcp_get(f.tcp_port, "/api/v1/status", "Authorization: Bearer 0123456789abcdef-test-toke"),
        401);
    assert_int_equal(
        tcp_get(f.tcp_port, "/api/v1/status", "Authorization: Bearer 0123456789abcdef-test-token2"),
        401);
    assert_int_equal(tcp_get(f.tcp_port, "/api/v1/status", "Authorization: Bearer " FX_TOKEN), 200);
    /* Basic auth with the token as the password (what go tool pprof sends for URL userinfo). */
    char auth[256], b64[128];
    const char *userpass = "collectord:" FX_TOKEN;
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(userpass), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)userpass[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(uint8_t)userpass[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint8_t)userpass[i + 2];
        b64[o++] = tbl[(v >> 18) & 63];
        b64[o++] = tbl[(v >> 12) & 63];
        b64[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        b64[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    b64[o] = '\0';
    snprintf(auth, sizeof(auth), "Authorization: Basic %s", b64);
    assert_int_equal(tcp_get(f.tcp_port, "/api/v1/status", auth), 200);
    assert_int_equal(tcp_get(f.tcp_port, "/api/v1/status", "Authorization: Basic !!!"), 401);
    /* Tokens in the query string are not accepted. */
    assert_int_equal(tcp_get(f.tcp_port, "/api/v1/status?token=" FX_TOKEN, NULL), 401);
    /* The Unix socket needs none. */
    assert_int_equal(get_status(&f, "/api/v1/status"), 200);
    struct cd_api_stats st;
    cd_api_get_stats(f.api, &st);
    assert_true(st.unauthorized >= 6);
    fx_stop(&f);
}

/* ---- /metrics parsed back -------------------------------------------------------------- */

static bool metric_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Parses the exposition format strictly; returns [{"name", "labels", "value"}]. */
static json_t *parse_prom(const char *text)
{
    json_t *out = json_array();
    json_t *typed = json_object();
    const char *p = text;
    while (*p != '\0') {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol); /* every line ends with \n */
        char line[4096];
        size_t len = (size_t)(eol - p);
        assert_true(len < sizeof(line));
        memcpy(line, p, len);
        line[len] = '\0';
        p = eol + 1;
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[256], type[32];
            assert_int_equal(sscanf(line + 7, "%255s %31s", name, type), 2);
            assert_null(json_object_get(typed, name)); /* once per family */
            json_object_set_new(typed, name, json_string(type));
            continue;
        }
        assert_true(line[0] != '#');
        size_t i = 0;
        char name[256];
        while (metric_char(line[i], i == 0))
            i++;
        assert_true(i > 0 && i < sizeof(name));
        memcpy(name, line, i);
        name[i] = '\0';
        json_t *labels = json_object();
        if (line[i] == '{') {
            i++;
            while (line[i] != '}') {
                size_t ks = i;
                while (metric_char(line[i], i == ks))
                    i++;
                char key[128];
                memcpy(key, line + ks, i - ks);
                key[i - ks] = '\0';
                assert_true(line[i] == '=' && line[i + 1] == '"');
                i += 2;
                char val[1024];
                size_t v = 0;
                while (line[i] != '"') {
                    assert_true(line[i] != '\0');
                    if (line[i] == '\\') {
                        i++;
                        assert_true(line[i] == '\\' || line[i] == '"' || line[i] == 'n');
                        val[v++] = line[i] == 'n' ? '\n' : line[i];
                    } else {
                        val[v++] = line[i];
                    }
                    i++;
                }
                val[v] = '\0';
                i++;
                json_object_set_new(labels, key, json_string(val));
                if (line[i] == ',')
                    i++;
            }
            i++;
        }
        assert_true(line[i] == ' ');
        char *end = NULL;
        double value = strtod(line + i + 1, &end);
        assert_true(end != line + i + 1 && *end == '\0');
        /* the family was typed before its samples */
        char fam[256];
        cd_str_copy(fam, name, sizeof(fam));
        if (json_object_get(typed, fam) == NULL) {
            const char *sfx[] = {"_bucket", "_sum", "_count"};
            for (size_t s = 0; s < 3; s++) {
                if (cd_str_has_suffix(fam, sfx[s]))
                    fam[strlen(fam) - strlen(sfx[s])] = '\0';
            }
        }
        assert_non_null(json_object_get(typed, fam));
        json_array_append_new(
            out, json_pack("{s:s, s:o, s:f}", "name", name, "labels", labels, "value", value));
    }
    json_decref(typed);
    return out;
}

static const json_t *find_sample(const json_t *samples, const char *name, const char *label,
                                 const char *value)
{
    for (size_t i = 0; i < json_array_size(samples); i++) {
        const json_t *s = json_array_get(samples, i);
        if (strcmp(json_string_value(json_object_get(s, "name")), name) != 0)
            continue;
        const char *v = json_string_value(json_object_get(json_object_get(s, "labels"), label));
        if (label == NULL || (v != NULL && strcmp(v, value) == 0))
            return s;
    }
    return NULL;
}

static void test_metrics(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    assert_int_equal(get_status(&f, "/api/v1/status"), 200);
    assert_int_equal(get_status(&f, "/api/v1/nope"), 404);
    struct ht_resp r;
    ht_get(&f, "/metrics", &r);
    assert_int_equal(r.status, 200);
    char ct[128];
    assert_string_equal(ht_header(&r, "Content-Type", ct, sizeof(ct)),
                        "text/plain; version=0.0.4; charset=utf-8");
    json_t *samples = parse_prom(r.body);
    assert_non_null(find_sample(samples, "collectord_scrapes_total", "job", "we\"ird\\job\nx"));
    const json_t *inf =
        find_sample(samples, "collectord_scrape_duration_seconds_bucket", "le", "+Inf");
    assert_non_null(inf);
    assert_true(json_real_value(json_object_get(inf, "value")) == 5);
    assert_non_null(find_sample(samples, "collectord_database_size_bytes", NULL, NULL));
    assert_non_null(find_sample(samples, "collectord_target_up", "instance", "10.0.0.5:6060"));
    const json_t *st = find_sample(samples, "collectord_api_requests_total", "route", "status");
    assert_non_null(st);
    assert_string_equal(json_string_value(json_object_get(json_object_get(st, "labels"), "code")),
                        "200");
    assert_non_null(find_sample(samples, "collectord_api_requests_total", "code", "404"));
    assert_non_null(find_sample(samples, "collectord_api_connections", "listener", "unix"));
    json_decref(samples);
    ht_free(&r);
    fx_stop(&f);
}

static void test_no_credentials(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    char p1[64], p2[64], p3[64];
    snprintf(p1, sizeof(p1), "/api/v1/snapshots/%lld", (long long)f.cpu_id);
    snprintf(p2, sizeof(p2), "/api/v1/snapshots/%lld/raw", (long long)f.cpu_id);
    snprintf(p3, sizeof(p3), "/api/v1/snapshots/%lld/pin", (long long)f.cpu_id);
    const char *paths[] = {"/api/v1/status",
                           "/api/v1/targets",
                           "/api/v1/snapshots?limit=1000",
                           p1,
                           p2,
                           "/api/v1/series?name=heap.inuse_space",
                           "/api/v1/incidents",
                           "/api/v1/incidents/outage-42",
                           "/api/v1/incidents/outage-42/bundle",
                           "/metrics"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct ht_resp r;
        ht_get(&f, paths[i], &r);
        assert_int_equal(r.status, 200);
        if (memmem(r.body, r.len, TB_SECRET, strlen(TB_SECRET)) != NULL ||
            strstr(r.headers, TB_SECRET) != NULL)
            fail_msg("%s leaks the scrape credentials", paths[i]);
        if (r.json != NULL && strstr(r.body, "\"password\"") != NULL)
            fail_msg("%s has a password member", paths[i]);
        ht_free(&r);
    }
    struct ht_resp r;
    post(&f, p3, NULL, &r);
    assert_null(strstr(r.body, TB_SECRET));
    ht_free(&r);
    post(&f, "/api/v1/capture", "{\"selector\": {\"all\": true}}", &r);
    assert_null(strstr(r.body, TB_SECRET));
    ht_free(&r);
    fx_stop(&f);
}

static int only_status(void *ctx, json_t **out, struct cd_err *err)
{
    (void)ctx;
    (void)err;
    *out = json_object();
    return 0;
}

static int broken_status(void *ctx, json_t **out, struct cd_err *err)
{
    (void)ctx;
    (void)out;
    return cd_err_set(err, -EIO, "disk on fire");
}

static void test_partial_backend(void **state)
{
    (void)state;
    char *dir = cdt_tmpdir("api-partial");
    char *sock = cdt_path(dir, "s.sock");
    struct cd_api_backend be = {.status = only_status};
    struct cd_api_config cfg;
    cd_api_config_default(&cfg);
    cfg.socket_path = sock;
    struct cd_api *api = NULL;
    assert_int_equal(cd_api_start(&cfg, &be, &api, NULL), 0);
    struct fx f = {.sock = sock};
    struct ht_resp r;
    ht_get(&f, "/api/v1/targets", &r);
    assert_error(&r, 501, "does not provide targets");
    ht_free(&r);
    ht_get(&f, "/api/v1/status", &r);
    assert_int_equal(r.status, 200);
    ht_free(&r);
    /* /metrics still has the server's own families. */
    ht_get(&f, "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(
        strstr(r.body, "collectord_api_requests_total{route=\"targets\",code=\"501\"} 1"));
    ht_free(&r);
    cd_api_stop(api);

    be.status = broken_status;
    assert_int_equal(cd_api_start(&cfg, &be, &api, NULL), 0);
    ht_get(&f, "/api/v1/status", &r);
    assert_error(&r, 500, "disk on fire");
    ht_free(&r);
    cd_api_stop(api);
    cdt_rmrf(dir);
    free(sock);
    free(dir);
}

/* Socket activation, in a child: the sockets systemd would pass as fds 3 and 4 with
 * LISTEN_PID/LISTEN_FDS, found by cd_api_systemd_fds and served. Exit code = what failed. */
static int activation_child(const char *path)
{
    int u = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cd_str_copy(sa.sun_path, path, sizeof(sa.sun_path));
    if (u < 0 || bind(u, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(u, 8) != 0)
        return 10;
    int t = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in in = {.sin_family = AF_INET};
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (t < 0 || bind(t, (struct sockaddr *)&in, sizeof(in)) != 0 || listen(t, 8) != 0)
        return 11;
    /* Out of the way first: u or t may already be fd 3 or 4. */
    int hu = fcntl(u, F_DUPFD, 100), ht = fcntl(t, F_DUPFD, 100);
    close(u);
    close(t);
    if (hu < 0 || ht < 0 || dup2(hu, 3) != 3 || dup2(ht, 4) != 4)
        return 12;
    close(hu);
    close(ht);
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "2", 1);
    int ufd = -1, tfd = -1;
    if (cd_api_systemd_fds(&ufd, &tfd, NULL) != 0 || ufd != 3 || tfd != 4)
        return 13;
    if (getenv("LISTEN_FDS") != NULL)
        return 14;
    struct cd_api_backend be = {.status = only_status};
    struct cd_api_config cfg;
    cd_api_config_default(&cfg);
    cfg.unix_fd = ufd;
    cfg.tcp_fd = tfd;
    cfg.token = FX_TOKEN;
    struct cd_api *api = NULL;
    if (cd_api_start(&cfg, &be, &api, NULL) != 0)
        return 15;
    int rc = 0;
    int c = ht_connect_unix(path);
    const char req[] = "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char buf[256] = "";
    if (c < 0 || write(c, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1) ||
        read(c, buf, sizeof(buf) - 1) < 12 || strncmp(buf, "HTTP/1.1 200", 12) != 0)
        rc = 16;
    if (c >= 0)
        close(c);
    if (rc == 0 && cd_api_tcp_port(api) <= 0)
        rc = 17;
    cd_api_stop(api);
    /* An adopted socket's file belongs to systemd: it stays. */
    struct stat st;
    if (rc == 0 && lstat(path, &st) != 0)
        rc = 18;
    return rc;
}

static void test_socket_activation(void **state)
{
    (void)state;
    char *dir = cdt_tmpdir("api-activation");
    char *path = cdt_path(dir, "activated.sock");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(activation_child(path));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    cdt_rmrf(dir);
    free(path);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_pagination),
        cmocka_unit_test(test_raw),
        cmocka_unit_test(test_bundle),
        cmocka_unit_test(test_bundle_limits),
        cmocka_unit_test(test_capture),
        cmocka_unit_test(test_capture_waits),
        cmocka_unit_test(test_pin),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_tcp_token),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_no_credentials),
        cmocka_unit_test(test_partial_backend),
        cmocka_unit_test(test_socket_activation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
