/* Unit tests of the query API's wire rules (apiwire) and the Prometheus renderer (promtext). */
#include "apiwire.h"
#include "buf.h"
#include "promtext.h"

#include "cdtest.h"

#include <collectord/api.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void parse_qs(const char *qs, struct cd_apiwire_params *p)
{
    struct cd_err err;
    cd_err_init(&err);
    cd_apiwire_params_init(p);
    if (cd_apiwire_params_parse(qs, strlen(qs), p, &err) != 0)
        fail_msg("parse '%s': %s", qs, cd_err_msg(&err));
}

static void test_params(void **state)
{
    (void)state;
    struct cd_apiwire_params p;
    struct cd_err err;
    parse_qs("a=1&b=%20x+y&&c&d=", &p);
    assert_int_equal(p.n, 4);
    assert_string_equal(cd_apiwire_params_get(&p, "b"), " x y");
    assert_string_equal(cd_apiwire_params_get(&p, "c"), "");
    assert_null(cd_apiwire_params_get(&p, "z"));
    static const char *const allowed[] = {"a", "b", "c", "d", NULL};
    cd_err_init(&err);
    assert_int_equal(cd_apiwire_params_check(&p, allowed, &err), 0);
    static const char *const fewer[] = {"a", NULL};
    assert_int_equal(cd_apiwire_params_check(&p, fewer, &err), -EINVAL);
    assert_non_null(strstr(cd_err_msg(&err), "unknown query parameter 'b'"));
    cd_apiwire_params_free(&p);

    parse_qs("kind=cpu&kind=heap", &p);
    static const char *const kinds[] = {"kind", NULL};
    cd_err_init(&err);
    assert_int_equal(cd_apiwire_params_check(&p, kinds, &err), -EINVAL);
    assert_non_null(strstr(cd_err_msg(&err), "given twice"));
    cd_apiwire_params_free(&p);

    /* Malformed escapes and NUL bytes are refused. */
    const char *bad[] = {"a=%zz", "a=%2", "a=%00", "%=1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cd_apiwire_params_init(&p);
        cd_err_init(&err);
        assert_int_equal(cd_apiwire_params_parse(bad[i], strlen(bad[i]), &p, &err), -EINVAL);
        cd_apiwire_params_free(&p);
    }
    /* Too many parameters. */
    char many[1024] = "";
    for (int i = 0; i <= CD_APIWIRE_MAX_PARAMS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "k%d=v&", i);
    cd_apiwire_params_init(&p);
    cd_err_init(&err);
    assert_int_equal(cd_apiwire_params_parse(many, strlen(many), &p, &err), -E2BIG);
    cd_apiwire_params_free(&p);
}

static void test_cursor(void **state)
{
    (void)state;
    char buf[CD_APIWIRE_CURSOR_MAX + 1];
    int64_t t, id;
    const int64_t cases[][2] = {{1763762675123, 1}, {0, 42}, {-5, 9007199254740991}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cd_apiwire_cursor_encode(cases[i][0], cases[i][1], buf, sizeof(buf)), 0);
        assert_null(strpbrk(buf, "+/="));
        assert_int_equal(cd_apiwire_cursor_decode(buf, &t, &id), 0);
        assert_true(t == cases[i][0] && id == cases[i][1]);
    }
    const char *bad[] = {"", "!!!!", "MTIz", "YQ", "MTIzLjA", "MTIzLi0x", "MTIzLjF4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cd_apiwire_cursor_decode(bad[i], &t, &id), -EINVAL);
    /* Non-canonical trailing bits are refused: one encoding per position. */
    assert_int_equal(cd_apiwire_cursor_encode(5, 7, buf, sizeof(buf)), 0);
    size_t n = strlen(buf);
    buf[n - 1] = buf[n - 1] == 'A' ? 'B' : (char)(buf[n - 1] + 1);
    int64_t t2 = 0, id2 = 0;
    int rc = cd_apiwire_cursor_decode(buf, &t2, &id2);
    assert_true(rc != 0 || t2 != 5 || id2 != 7);
}

static void test_route_args(void **state)
{
    (void)state;
    int64_t id;
    assert_int_equal(cd_apiwire_parse_id("123", &id), 0);
    assert_int_equal(id, 123);
    const char *bad[] = {"0", "-1", "01", "1x", "", "9007199254740992", "+5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cd_apiwire_parse_id(bad[i], &id), -EINVAL);
    assert_true(cd_apiwire_incident_name_valid("outage-42.v2_b"));
    assert_false(cd_apiwire_incident_name_valid(".hidden"));
    assert_false(cd_apiwire_incident_name_valid("a/b"));
    assert_false(cd_apiwire_incident_name_valid(""));
    char longname[80];
    memset(longname, 'a', 65);
    longname[65] = '\0';
    assert_false(cd_apiwire_incident_name_valid(longname));
    bool b;
    assert_int_equal(cd_apiwire_parse_bool("yes", &b), 0);
    assert_true(b);
    assert_int_equal(cd_apiwire_parse_bool("2", &b), -EINVAL);
}

static void test_snapshot_query(void **state)
{
    (void)state;
    struct cd_apiwire_params p;
    struct cd_apiwire_snapshots q;
    struct cd_err err;
    int64_t now = 1763762675000;
    parse_qs("kind=process_cpu&limit=5&pinned=1&since=15m&until=2025-11-21T22:00:00Z", &p);
    cd_err_init(&err);
    assert_int_equal(cd_apiwire_snapshots_parse(&p, now, &q, &err), 0);
    assert_string_equal(q.kind, "cpu");
    assert_int_equal(q.limit, 5);
    assert_int_equal(q.pinned, 1);
    assert_true(q.since_ms == now - 15 * 60000);
    assert_false(q.has_cursor);
    cd_apiwire_params_free(&p);

    parse_qs("", &p);
    assert_int_equal(cd_apiwire_snapshots_parse(&p, now, &q, &err), 0);
    assert_int_equal(q.limit, CD_API_DEFAULT_LIST_LIMIT);
    assert_true(q.since_ms == INT64_MIN && q.until_ms == INT64_MAX && q.pinned == -1);
    cd_apiwire_params_free(&p);

    const char *bad[] = {"limit=0",           "limit=100001", "since=yesterday", "status=fine",
                         "kind=CPU",          "incident=a/b", "cursor=zz",       "pinned=maybe",
                         "since=1h&until=2h", "target=%01x",  "nope=1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse_qs(bad[i], &p);
        cd_err_init(&err);
        if (cd_apiwire_snapshots_parse(&p, now, &q, &err) != -EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(strlen(cd_err_msg(&err)) > 10);
        cd_apiwire_params_free(&p);
    }

    struct cd_apiwire_series s;
    parse_qs("name=goroutine.count&limit=10", &p);
    assert_int_equal(cd_apiwire_series_parse(&p, now, &s, &err), 0);
    assert_string_equal(s.name, "goroutine.count");
    cd_apiwire_params_free(&p);
    parse_qs("target=x", &p);
    cd_err_init(&err);
    assert_int_equal(cd_apiwire_series_parse(&p, now, &s, &err), -EINVAL);
    assert_non_null(strstr(cd_err_msg(&err), "'name' is required"));
    cd_apiwire_params_free(&p);

    struct cd_apiwire_targets t;
    parse_qs("health=sick", &p);
    assert_int_equal(cd_apiwire_targets_parse(&p, &t, &err), -EINVAL);
    cd_apiwire_params_free(&p);
}

static void test_capture_body(void **state)
{
    (void)state;
    struct cd_apiwire_capture c;
    struct cd_err err;
    cd_err_init(&err);
    const char *good = "{\"selector\": {\"job\": \"api\", \"labels\": {\"team\": \"payments\"}},"
                       " \"kinds\": [\"cpu\", \"process_cpu\", \"goroutine_dump\"],"
                       " \"incident\": \"outage-42\", \"timeout_ms\": 30000}";
    assert_int_equal(cd_apiwire_capture_parse(good, strlen(good), &c, &err), 0);
    assert_string_equal(c.selector.job, "api");
    assert_string_equal(cd_labels_get(&c.selector.labels, "team"), "payments");
    assert_int_equal(c.n_kinds, 2); /* process_cpu is cpu: deduplicated */
    assert_string_equal(c.kinds[0], "cpu");
    assert_string_equal(c.kinds[1], "goroutine_dump");
    assert_string_equal(c.incident, "outage-42");
    assert_true(c.timeout_ms == 30000);
    char *desc = cd_apiwire_selector_describe(&c.selector);
    assert_string_equal(desc, "job=api team=payments");
    free(desc);
    cd_apiwire_capture_free(&c);

    const char *all = "{\"selector\": {\"all\": true}}";
    assert_int_equal(cd_apiwire_capture_parse(all, strlen(all), &c, &err), 0);
    assert_true(c.selector.all);
    assert_int_equal(c.n_kinds, 0);
    cd_apiwire_capture_free(&c);

    struct {
        const char *body;
        const char *why;
    } bad[] = {
        {"", "not valid JSON"},
        {"[]", "must be a JSON object"},
        {"{}", "\"selector\" is required"},
        {"{\"selector\": {}}", "the selector is empty"},
        {"{\"selector\": {\"job\": 5}}", "selector.job must be a string"},
        {"{\"selector\": {\"job\": \"\"}}", "printable"},
        {"{\"selector\": {\"job\": \"a\\u0000b\"}}", "not valid JSON"},
        {"{\"selector\": {\"job\": \"a\\u001bb\"}}", "printable"},
        {"{\"selector\": {\"jobs\": \"a\"}}", "unknown member \"jobs\""},
        {"{\"selector\": {\"labels\": {\"1x\": \"a\"}}}", "not a label name"},
        {"{\"selector\": {\"all\": true}, \"kinds\": [\"CPU\"]}", "not a kind name"},
        {"{\"selector\": {\"all\": true}, \"kinds\": \"cpu\"}", "must be an array"},
        {"{\"selector\": {\"all\": true}, \"incident\": \"../x\"}", "\"incident\""},
        {"{\"selector\": {\"all\": true}, \"seconds\": 10}", "unknown member \"seconds\""},
        {"{\"selector\": {\"all\": true}, \"timeout_ms\": 1.5}", "\"timeout_ms\""},
        {"{\"selector\": {\"all\": true}, \"timeout_ms\": 999999999}", "\"timeout_ms\""},
        {"{\"selector\": {\"all\": true}, \"selector\": {\"all\": true}}", "not valid JSON"},
        {"{\"selector\": {\"all\": true}, \"extra\": 1}", "unknown member \"extra\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cd_err_init(&err);
        int rc = cd_apiwire_capture_parse(bad[i].body, strlen(bad[i].body), &c, &err);
        if (rc != -EINVAL || strstr(cd_err_msg(&err), bad[i].why) == NULL)
            fail_msg("body %s: rc %d, '%s' (wanted '%s')", bad[i].body, rc, cd_err_msg(&err),
                     bad[i].why);
    }
    char many[2048] = "{\"selector\": {\"all\": true}, \"kinds\": [";
    for (int i = 0; i <= CD_API_CAPTURE_MAX_KINDS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s\"k%d\"", i ? "," : "", i);
    strncat(many, "]}", sizeof(many) - strlen(many) - 1);
    cd_err_init(&err);
    assert_int_equal(cd_apiwire_capture_parse(many, strlen(many), &c, &err), -EINVAL);

    char *inc = NULL;
    assert_int_equal(cd_apiwire_pin_parse("  ", 2, &inc, &err), 0);
    assert_null(inc);
    assert_int_equal(cd_apiwire_pin_parse("{\"incident\":\"x1\"}", 17, &inc, &err), 0);
    assert_string_equal(inc, "x1");
    free(inc);
    cd_err_init(&err);
    assert_int_equal(cd_apiwire_pin_parse("{\"why\":1}", 9, &inc, &err), -EINVAL);
}

static void test_normalize(void **state)
{
    (void)state;
    json_t *doc =
        json_pack("{s:I, s:n, s:s, s:s, s:{s:s, s:s}, s:[s, {s:s}], s:s, s:{s:s}, s:s, s:I}",
                  "time_unix_ms", (json_int_t)1763762675123, "last_scrape_unix_ms", "request",
                  "http://u:pw@10.0.0.5:6060/debug/pprof/heap", "error",
                  "Get \"https://bob:secret@h:1/x\": refused; http://ok.example/y", "labels",
                  "team", "a", "Password", "p1", "list", "https://x:y@z/q", "bearer_token", "t",
                  "token_file_password", "zz", "basic_auth", "username", "u", "note",
                  "no userinfo@here", "created_unix_ms", (json_int_t)0);
    size_t removed = cd_apiwire_normalize(doc);
    assert_true(removed >= 6);
    assert_string_equal(json_string_value(json_object_get(doc, "time")),
                        "2025-11-21T22:04:35.123Z");
    assert_true(json_is_null(json_object_get(doc, "last_scrape")));
    assert_string_equal(json_string_value(json_object_get(doc, "request")),
                        "http://10.0.0.5:6060/debug/pprof/heap");
    assert_string_equal(json_string_value(json_object_get(doc, "error")),
                        "Get \"https://h:1/x\": refused; http://ok.example/y");
    assert_null(json_object_get(json_object_get(doc, "labels"), "Password"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "list"), 0)),
                        "https://z/q");
    assert_null(json_object_get(doc, "token_file_password"));
    assert_null(json_object_get(doc, "basic_auth"));
    assert_null(json_object_get(doc, "bearer_token"));
    assert_string_equal(json_string_value(json_object_get(doc, "note")), "no userinfo@here");
    assert_string_equal(json_string_value(json_object_get(doc, "created")),
                        "1970-01-01T00:00:00.000Z");
    char *text = json_dumps(doc, 0);
    assert_null(strstr(text, "secret"));
    assert_null(strstr(text, "pw@"));
    free(text);
    json_decref(doc);

    /* A "_unix_ms" member that is a string (with userinfo) is cleaned, and gets no twin. */
    doc = json_pack("{s:s}", "time_unix_ms", "http://u:p@h/x");
    assert_int_equal(cd_apiwire_normalize(doc), 1);
    assert_string_equal(json_string_value(json_object_get(doc, "time_unix_ms")), "http://h/x");
    assert_null(json_object_get(doc, "time"));
    json_decref(doc);

    /* An existing twin is left alone; deep nesting is cut, not recursed forever. */
    doc = json_pack("{s:I, s:s}", "time_unix_ms", (json_int_t)1, "time", "given");
    cd_apiwire_normalize(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "time")), "given");
    json_decref(doc);
    json_t *deep = json_object();
    json_t *cur = deep;
    for (int i = 0; i < 200; i++) {
        json_t *next = json_object();
        json_object_set_new(cur, "x", next);
        cur = next;
    }
    cd_apiwire_normalize(deep);
    json_decref(deep);
}

static void test_status_and_names(void **state)
{
    (void)state;
    assert_int_equal(cd_apiwire_http_status(-EINVAL), 400);
    assert_int_equal(cd_apiwire_http_status(-ENOENT), 404);
    assert_int_equal(cd_apiwire_http_status(-ENODATA), 404);
    assert_int_equal(cd_apiwire_http_status(-EALREADY), 409);
    assert_int_equal(cd_apiwire_http_status(-EFBIG), 413);
    assert_int_equal(cd_apiwire_http_status(-EAGAIN), 429);
    assert_int_equal(cd_apiwire_http_status(-ENOSYS), 501);
    assert_int_equal(cd_apiwire_http_status(-EBUSY), 503);
    assert_int_equal(cd_apiwire_http_status(-ETIMEDOUT), 504);
    assert_int_equal(cd_apiwire_http_status(-EIO), 500);
    assert_string_equal(cd_apiwire_status_code(404), "not_found");
    char buf[16];
    assert_string_equal(cd_apiwire_safe_name(buf, sizeof(buf), "10.0.0.5:6060"), "10.0.0.5_6060");
    assert_string_equal(cd_apiwire_safe_name(buf, sizeof(buf), "../etc/passwd"), "_._etc_passwd");
    assert_string_equal(cd_apiwire_safe_name(buf, sizeof(buf), ""), "_");
    assert_string_equal(cd_apiwire_safe_name(buf, 6, "abcdefgh"), "abcde");

    json_t *meta = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "job", "api", "instance",
                             "[::1]:6060", "kind", "cpu", "time_unix_ms", (json_int_t)1763762675123,
                             "id", (json_int_t)7, "status", "ok");
    static const uint8_t gz[] = {0x1f, 0x8b, 8};
    char *name = cd_apiwire_snapshot_filename(meta, gz, 3, false);
    assert_string_equal(name, "api-___1__6060-cpu-20251121T220435Z.pb.gz");
    free(name);
    name = cd_apiwire_snapshot_filename(meta, (const uint8_t *)"\x0a\x01", 2, true);
    assert_string_equal(name, "api-___1__6060-cpu-20251121T220435Z-7.pb");
    free(name);
    json_object_set_new(meta, "kind", json_string("trace"));
    assert_string_equal(cd_apiwire_snapshot_ext(meta, NULL, 0), ".trace");
    json_object_set_new(meta, "kind", json_string("goroutine_dump"));
    assert_string_equal(cd_apiwire_snapshot_ext(meta, NULL, 0), ".txt");
    json_object_set_new(meta, "kind", json_string("cpu"));
    json_object_set_new(meta, "status", json_string("http_error"));
    assert_string_equal(cd_apiwire_snapshot_ext(meta, gz, 3), ".txt");
    json_decref(meta);
}

static void test_promtext(void **state)
{
    (void)state;
    json_t *doc = json_pack(
        "{s:[{s:s, s:s, s:s, s:[{s:{s:s}, s:i}, {s:{s:s}, s:f}]},"
        " {s:s, s:s, s:[{s:{s:s}, s:[[f, i], [f, i]], s:f, s:i}]},"
        " {s:s, s:[{s:s}]}]}",
        "metrics", "name", "x_total", "type", "counter", "help", "Line one\nback\\slash", "samples",
        "labels", "v", "a\"b\\c\nd", "value", 3, "labels", "v", "plain", "value", 0.1, "name",
        "h_seconds", "type", "histogram", "samples", "labels", "job", "j", "buckets", 0.5, 1, 2.0,
        3, "sum", 4.25, "count", 5, "name", "inf_gauge", "samples", "value", "+Inf");
    struct cd_buf b;
    cd_buf_init(&b, 0);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_promtext_render(doc, &b, &err), 0);
    cd_buf_terminate(&b);
    const char *want = "# HELP x_total Line one\\nback\\\\slash\n"
                       "# TYPE x_total counter\n"
                       "x_total{v=\"a\\\"b\\\\c\\nd\"} 3\n"
                       "x_total{v=\"plain\"} 0.1\n"
                       "# TYPE h_seconds histogram\n"
                       "h_seconds_bucket{job=\"j\",le=\"0.5\"} 1\n"
                       "h_seconds_bucket{job=\"j\",le=\"2\"} 3\n"
                       "h_seconds_bucket{job=\"j\",le=\"+Inf\"} 5\n"
                       "h_seconds_sum{job=\"j\"} 4.25\n"
                       "h_seconds_count{job=\"j\"} 5\n"
                       "# TYPE inf_gauge untyped\n"
                       "inf_gauge +Inf\n";
    assert_string_equal((char *)b.data, want);
    cd_buf_free(&b);
    json_decref(doc);

    const char *bad[] = {
        "{\"metrics\": [{\"name\": \"9bad\"}]}",
        "{\"metrics\": [{\"name\": \"a\", \"type\": \"summary\"}]}",
        "{\"metrics\": [{\"name\": \"a\", \"samples\": [{\"labels\": {\"__x\": \"1\"}, "
        "\"value\": 1}]}]}",
        "{\"metrics\": [{\"name\": \"a\", \"samples\": [{\"value\": \"lots\"}]}]}",
        "{\"metrics\": [{\"name\": \"a\", \"type\": \"histogram\", \"samples\": [{\"buckets\": "
        "[[2, 1], [1, 2]], \"sum\": 1, \"count\": 2}]}]}",
        "{\"metrics\": [{\"name\": \"a\", \"type\": \"histogram\", \"samples\": [{\"buckets\": "
        "[[1, 5]], \"sum\": 1, \"count\": 2}]}]}",
        "{\"metrics\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}",
        "{\"metrics\": [{\"name\": \"a\", \"type\": \"histogram\", \"samples\": [{\"labels\": "
        "{\"le\": \"1\"}, \"buckets\": [], \"sum\": 1, \"count\": 2}]}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *d = json_loads(bad[i], 0, NULL);
        assert_non_null(d);
        cd_buf_init(&b, 0);
        cd_err_init(&err);
        if (cd_promtext_render(d, &b, &err) == 0)
            fail_msg("accepted: %s", bad[i]);
        cd_buf_free(&b);
        json_decref(d);
    }
    /* The output limit holds. */
    doc = json_pack("{s:[{s:s, s:[{s:i}]}]}", "metrics", "name", "a_long_metric_name", "samples",
                    "value", 1);
    cd_buf_init(&b, 16);
    assert_int_not_equal(cd_promtext_render(doc, &b, &err), 0);
    cd_buf_free(&b);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),           cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_route_args),       cmocka_unit_test(test_snapshot_query),
        cmocka_unit_test(test_capture_body),     cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_status_and_names), cmocka_unit_test(test_promtext),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
