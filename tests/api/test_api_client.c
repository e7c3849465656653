/* The client library against the real server on real sockets: JSON calls, errors mapped from
 * statuses, downloads, TCP tokens, a missing or stale socket, limits, selectors. */
#include "fixture.h"

#include <collectord/client.h>

#include "cdtest.h"
#include "str.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct cd_client *open_client(const char *endpoint, const char *token, size_t max)
{
    struct cd_client_options o = {.endpoint = endpoint, .token = token, .max_response_bytes = max};
    struct cd_client *c = NULL;
    struct cd_err err;
    cd_err_init(&err);
    if (cd_client_new(&o, &c, &err) != 0)
        fail_msg("cd_client_new: %s", cd_err_msg(&err));
    return c;
}

static void test_calls(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    struct cd_client *c = open_client(f.sock, NULL, 0);
    assert_true(cd_client_is_unix(c));
    assert_string_equal(cd_client_endpoint(c), f.sock);
    json_t *st = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_client_get_json(c, "/status", NULL, &st, &err), 0);
    assert_string_equal(json_string_value(json_object_get(st, "api_version")), "v1");
    json_decref(st);

    /* Query values are escaped: an RFC 3339 time with '+' survives. */
    const char *q[] = {"since", "2020-01-01T00:00:00+00:00", "kind", "cpu", "job", NULL, NULL};
    json_t *list = NULL;
    assert_int_equal(cd_client_get_json(c, "/snapshots", q, &list, &err), 0);
    assert_int_equal(json_array_size(json_object_get(list, "snapshots")), 3);
    json_decref(list);

    struct cd_client_response r = {0};
    assert_int_equal(cd_client_call(c, "GET", "/snapshots/999", NULL, NULL, &r, &err), 0);
    assert_int_equal(r.status, 404);
    assert_int_equal(cd_client_check(&r, &err), -ENOENT);
    assert_string_equal(cd_err_msg(&err), "no snapshot 999");
    cd_client_response_free(&r);

    json_t *body = json_pack("{s:{s:s}, s:[s]}", "selector", "job", "api", "kinds", "heap");
    assert_int_equal(cd_client_call(c, "POST", "/capture", NULL, body, &r, &err), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "snapshots")), 2);
    cd_client_response_free(&r);
    json_decref(body);

    char path[64];
    snprintf(path, sizeof(path), "/snapshots/%lld/pin", (long long)f.heap_id);
    assert_int_equal(cd_client_call(c, "DELETE", path, NULL, NULL, &r, &err), 0);
    assert_int_equal(cd_client_check(&r, &err), 0);
    cd_client_response_free(&r);

    assert_int_equal(cd_client_call(c, "GET", "/metrics", NULL, NULL, &r, &err), 0);
    assert_int_equal(r.status, 200);
    assert_null(r.json);
    assert_non_null(strstr(r.body, "# TYPE collectord_api_requests_total counter"));
    cd_client_response_free(&r);

    f.tb.retention_busy = true;
    assert_int_equal(cd_client_call(c, "POST", "/retention/run", NULL, NULL, &r, &err), 0);
    cd_err_init(&err);
    assert_int_equal(cd_client_check(&r, &err), -EEXIST);
    cd_client_response_free(&r);
    cd_client_free(c);
    fx_stop(&f);
}

struct progress_seen {
    int calls;
    uint64_t last;
};

static void on_progress(void *ctx, uint64_t bytes, uint64_t total, int64_t elapsed_ms)
{
    (void)total;
    (void)elapsed_ms;
    struct progress_seen *p = ctx;
    p->calls++;
    p->last = bytes;
}

static void test_download(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, false);
    struct cd_client *c = open_client(f.sock, NULL, 0);
    char *file = cdt_path(f.dir, "raw.bin");
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    char path[64];
    snprintf(path, sizeof(path), "/snapshots/%lld/raw", (long long)f.big_id);
    struct cd_client_response r = {0};
    struct cd_err err;
    cd_err_init(&err);
    struct progress_seen seen = {0};
    cd_client_set_progress(c, on_progress, &seen);
    assert_int_equal(cd_client_download(c, path, NULL, fd, &r, &err), 0);
    close(fd);
    assert_int_equal(cd_client_check(&r, &err), 0);
    assert_true(seen.calls > 0);
    assert_int_equal(seen.last, f.big_len);
    assert_non_null(r.filename);
    assert_true(cd_str_has_prefix(r.filename, "api-10.0.0.5_6060-heap-"));
    assert_string_equal(r.content_type, "application/octet-stream");
    assert_null(r.body);
    cd_client_response_free(&r);
    uint8_t *got = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file(file, &got, &len), 0);
    assert_int_equal(len, f.big_len);
    assert_memory_equal(got, f.big, len);
    free(got);
    cd_client_set_progress(c, NULL, NULL);

    /* An error status: nothing written, the error body kept for the message. */
    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    snprintf(path, sizeof(path), "/snapshots/%lld/raw", (long long)f.timeout_id);
    assert_int_equal(cd_client_download(c, path, NULL, fd, &r, &err), 0);
    close(fd);
    assert_int_equal(r.status, 404);
    assert_int_equal(cd_client_check(&r, &err), -ENOENT);
    assert_non_null(strstr(cd_err_msg(&err), "kept no bytes"));
    cd_client_response_free(&r);
    assert_int_equal(cdt_read_file(file, &got, &len), 0);
    assert_int_equal(len, 0);
    free(got);
    cd_client_free(c);

    /* Buffered responses have a ceiling. */
    c = open_client(f.sock, NULL, 1024);
    snprintf(path, sizeof(path), "/snapshots/%lld/raw", (long long)f.big_id);
    cd_err_init(&err);
    assert_int_equal(cd_client_call(c, "GET", path, NULL, NULL, &r, &err), -EFBIG);
    assert_non_null(strstr(cd_err_msg(&err), "limit"));
    cd_client_free(c);
    free(file);
    fx_stop(&f);
}

static void test_tcp(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL, true);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", f.tcp_port);
    struct cd_client *c = open_client(url, FX_TOKEN, 0);
    assert_false(cd_client_is_unix(c));
    json_t *st = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_client_get_json(c, "/status", NULL, &st, &err), 0);
    json_decref(st);
    cd_client_free(c);
    c = open_client(url, "not-the-token-at-all", 0);
    cd_err_init(&err);
    assert_int_equal(cd_client_get_json(c, "/status", NULL, &st, &err), -EACCES);
    assert_non_null(strstr(cd_err_msg(&err), "token"));
    cd_client_free(c);
    fx_stop(&f);

    /* Nothing listening on that port any more. */
    c = open_client(url, FX_TOKEN, 0);
    cd_err_init(&err);
    assert_int_equal(cd_client_get_json(c, "/status", NULL, &st, &err), -ECONNREFUSED);
    cd_client_free(c);
}

static void test_no_daemon(void **state)
{
    (void)state;
    char *dir = cdt_tmpdir("client");
    char *sock = cdt_path(dir, "gone.sock");
    struct cd_client *c = open_client(sock, NULL, 0);
    json_t *st = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_client_get_json(c, "/status", NULL, &st, &err), -ENOENT);
    assert_non_null(strstr(cd_err_msg(&err), sock));
    /* A socket file with nobody behind it. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cd_str_copy(sa.sun_path, sock, sizeof(sa.sun_path));
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    cd_err_init(&err);
    assert_int_equal(cd_client_get_json(c, "/status", NULL, &st, &err), -ECONNREFUSED);
    cd_client_free(c);

    /* The environment names the default endpoint. */
    setenv(CD_CLIENT_ENV_ENDPOINT, sock, 1);
    c = open_client(NULL, NULL, 0);
    assert_string_equal(cd_client_endpoint(c), sock);
    cd_client_free(c);
    unsetenv(CD_CLIENT_ENV_ENDPOINT);
    c = open_client(NULL, NULL, 0);
    assert_string_equal(cd_client_endpoint(c), "/run/collectord/collectord.sock");
    cd_client_free(c);
    cdt_rmrf(dir);
    free(sock);
    free(dir);
}

static void test_selector(void **state)
{
    (void)state;
    struct cd_err err;
    json_t *sel = NULL;
    char *a1[] = {"job=api", "team=payments,zone=a", "target=10.0.0.5:6060"};
    cd_err_init(&err);
    assert_int_equal(cd_client_selector_parse(3, a1, &sel, &err), 0);
    json_t *want = json_pack("{s:s, s:s, s:{s:s, s:s}}", "job", "api", "target", "10.0.0.5:6060",
                             "labels", "team", "payments", "zone", "a");
    assert_true(json_equal(sel, want));
    json_decref(want);
    json_decref(sel);
    char *a2[] = {"all"};
    assert_int_equal(cd_client_selector_parse(1, a2, &sel, &err), 0);
    assert_true(json_is_true(json_object_get(sel, "all")));
    json_decref(sel);
    /* a value may hold '=' */
    char *a3[] = {"target=api/http://h:1?x=y"};
    assert_int_equal(cd_client_selector_parse(1, a3, &sel, &err), 0);
    assert_string_equal(json_string_value(json_object_get(sel, "target")), "api/http://h:1?x=y");
    json_decref(sel);
    const char *bad[] = {"",        "job",       "=x", "job=", "1x=y", "job=a,job=b",
                         "all,all", "k=\x1b[2J", ",,,"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[] = {(char *)bad[i]};
        cd_err_init(&err);
        if (cd_client_selector_parse(1, argv, &sel, &err) != -EINVAL)
            fail_msg("selector '%s' accepted", bad[i]);
    }
    assert_int_equal(cd_client_selector_parse(0, NULL, &sel, &err), -EINVAL);
}

static void test_token_file(void **state)
{
    (void)state;
    char *dir = cdt_tmpdir("token");
    char *p = cdt_path(dir, "token");
    assert_int_equal(cdt_write_file(p, "  " FX_TOKEN "\n\n", strlen(FX_TOKEN) + 4), 0);
    char *tok = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_client_read_token_file(p, &tok, &err), 0);
    assert_string_equal(tok, FX_TOKEN);
    free(tok);
    /* The server side is stricter: no world-readable token files. */
    chmod(p, 0644);
    assert_int_equal(cd_api_read_token_file(p, &tok, &err), -EPERM);
    chmod(p, 0640);
    cd_err_init(&err);
    assert_int_equal(cd_api_read_token_file(p, &tok, &err), 0);
    assert_string_equal(tok, FX_TOKEN);
    free(tok);
    assert_int_equal(cdt_write_file(p, "short\n", 6), 0);
    assert_int_equal(cd_api_read_token_file(p, &tok, NULL), -EINVAL);
    assert_int_equal(cdt_write_file(p, "two words here ok\n", 18), 0);
    assert_int_equal(cd_api_read_token_file(p, &tok, NULL), -EINVAL);
    cdt_rmrf(dir);
    free(p);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls),    cmocka_unit_test(test_download),
        cmocka_unit_test(test_tcp),      cmocka_unit_test(test_no_daemon),
        cmocka_unit_test(test_selector), cmocka_unit_test(test_token_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
