/*
 * Integration test of the trace summarizer on what a real Go program serves: the test fleet's
 * net/http/pprof /debug/pprof/trace, complete (mixed workload) and cut in half by the fleet's
 * "truncated" hostile mode (which must give an error plus a partial summary).
 */
#include "trace.h"

#include "cdtest.h"
#include "fleet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static json_int_t jget(json_t *o, const char *obj, const char *key)
{
    if (obj != NULL)
        o = json_object_get(o, obj);
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s.%s is not an integer", obj ? obj : "", key);
    return json_integer_value(v);
}

static void fetch_trace(const char *hostile, uint8_t **body, size_t *len)
{
    const char *args[] = {"-workload", "mixed", "-hostile", hostile, "-no-gops", NULL};
    struct cdt_fleet f;
    assert_int_equal(cdt_fleet_start(&f, args, 30000), 0);
    assert_int_equal(f.n, 1);
    int status = 0;
    int rc = cdt_http_get(f.targets[0].pprof_port, "/debug/pprof/trace?seconds=0.5", &status, body,
                          len, 30000);
    cdt_fleet_stop(&f);
    assert_int_equal(rc, 0);
    assert_int_equal(status, 200);
}

static void test_fleet_trace(void **state)
{
    (void)state;
    uint8_t *body;
    size_t len;
    fetch_trace("none", &body, &len);
    assert_true(cd_trace_sniff(body, len));
    struct cd_summary s;
    cd_summary_init(&s);
    struct cd_err err;
    cd_err_init(&err);
    int rc = cd_trace_summarize(body, len, NULL, &s, &err);
    if (rc != 0)
        fail_msg("%s", cd_err_msg(&err));
    json_t *j = s.json;
    char *dump = json_dumps(j, JSON_COMPACT);
    print_message("fleet trace: %zu bytes: %.300s...\n", len, dump);
    free(dump);
    const char *ver = json_string_value(json_object_get(j, "go_version"));
    assert_non_null(ver);
    /* Debian's Go 1.19/1.20 writes v1, a newer toolchain v2: either way a full summary */
    assert_true(jget(j, NULL, "duration_ns") >= 400000000LL);
    assert_true(jget(j, NULL, "duration_ns") < 10000000000LL);
    assert_true(jget(j, "goroutines", "at_start") >= 5); /* mixed: burners, leakers, waiters */
    assert_true(jget(j, "procs", "max") >= 1);
    assert_true(jget(j, NULL, "events") > 100);
    assert_int_equal(jget(j, NULL, "bytes_parsed"), (json_int_t)len);
    cd_summary_free(&s);
    free(body);
}

static void test_fleet_truncated_trace(void **state)
{
    (void)state;
    uint8_t *body;
    size_t len;
    fetch_trace("truncated", &body, &len);
    assert_true(len > 16);
    struct cd_summary s;
    cd_summary_init(&s);
    struct cd_err err;
    cd_err_init(&err);
    int rc = cd_trace_summarize(body, len, NULL, &s, &err);
    print_message("truncated fleet trace: %zu bytes: %s\n", len, cd_err_msg(&err));
    assert_true(rc == -EPROTO || rc == -EBADMSG);
    assert_non_null(s.json);
    assert_true(json_is_true(json_object_get(s.json, "partial")));
    assert_string_equal(json_string_value(json_object_get(s.json, "error")), cd_err_msg(&err));
    assert_true(jget(s.json, NULL, "events") > 0);
    assert_int_equal(s.n_series, 0);
    cd_summary_free(&s);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fleet_trace),
        cmocka_unit_test(test_fleet_truncated_trace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
