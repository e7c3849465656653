/*
 * Go's own tools on what the raw route serves: `go tool pprof -top URL` against the TCP listener
 * with the token in the URL (Go turns userinfo into basic auth), refused without it, and
 * `go tool trace` on a trace downloaded by collectorctl fetch. Real profiles and traces from
 * ../shared/testdata; skipped when it is absent.
 */
#include "fixture.h"

#include "cdtest.h"
#include "str.h"

#include <stdlib.h>
#include <string.h>

static int64_t add_file(struct fx *f, const char *rel, const char *kind)
{
    char *p = cdt_path(cdt_shared_dir(), rel);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cdt_read_file(p, &data, &len), 0);
    free(p);
    int64_t id = tb_add(&f->tb, "gen", "127.0.0.1:6060", kind, "ok", f->tb.now_ms, data, len, NULL);
    free(data);
    return id;
}

static void test_go_tool_pprof(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    struct fx f;
    fx_start(&f, NULL, true);
    int64_t id = add_file(&f, "testdata/pprof/go1.19_gen_heap.pb.gz", "heap");
    char cmd[2048];
    char *out = NULL;
    /* HOME and PPROF_TMPDIR: pprof saves fetched profiles under $HOME/pprof. */
    snprintf(
        cmd, sizeof(cmd),
        "cd '%s' && HOME='%s' PPROF_TMPDIR='%s' '%s' tool pprof -top -sample_index=alloc_space "
        "'http://collectord:%s@127.0.0.1:%d/api/v1/snapshots/%lld/raw' 2>&1",
        f.dir, f.dir, f.dir, cdt_env("CD_GO"), FX_TOKEN, f.tcp_port, (long long)id);
    int rc = ht_sh(cmd, &out, 60000);
    if (rc != 0 || strstr(out, "flat%") == NULL || strstr(out, "Showing nodes") == NULL)
        fail_msg("go tool pprof: exit %d:\n%s", rc, out);
    free(out);
    /* Without the token the listener refuses, and pprof says so. */
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && HOME='%s' '%s' tool pprof -top "
             "'http://127.0.0.1:%d/api/v1/snapshots/%lld/raw' 2>&1",
             f.dir, f.dir, cdt_env("CD_GO"), f.tcp_port, (long long)id);
    rc = ht_sh(cmd, &out, 60000);
    if (rc == 0 || strstr(out, "401") == NULL)
        fail_msg("go tool pprof without a token: exit %d:\n%s", rc, out);
    free(out);
    fx_stop(&f);
}

static void test_go_tool_trace(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    struct fx f;
    fx_start(&f, NULL, false);
    int64_t id = add_file(&f, "testdata/go-traces/go1.19_gen_small.trace", "trace");
    char cmd[2048];
    char *out = NULL;
    snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' -s '%s' fetch %lld -o small.trace 2>&1", f.dir,
             cdt_env("CD_COLLECTORCTL"), f.sock, (long long)id);
    assert_int_equal(ht_sh(cmd, &out, 30000), 0);
    free(out);
    /* -pprof=sched parses the whole trace and prints a profile: no browser needed. */
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && HOME='%s' '%s' tool trace -pprof=sched small.trace > sched.pb 2>err.txt; "
             "echo $?; cat err.txt",
             f.dir, f.dir, cdt_env("CD_GO"));
    assert_int_equal(ht_sh(cmd, &out, 60000), 0);
    if (!cd_str_has_prefix(out, "0\n"))
        fail_msg("go tool trace: %s", out);
    free(out);
    fx_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go_tool_pprof),
        cmocka_unit_test(test_go_tool_trace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
