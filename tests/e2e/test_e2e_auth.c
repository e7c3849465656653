/*
 * End to end, TLS and authentication: one fleet process serves net/http/pprof over HTTPS with a
 * self-signed certificate, behind basic authentication or a bearer token. The real collectord
 * scrapes it as five jobs configured the Prometheus way: basic_auth (password in a file),
 * authorization (Bearer, credentials in a file), bearer_token, none of them (the target answers
 * 401: an http_error that says so, the target down) and no ca_file (the certificate is not
 * trusted: the error says why). The scrapes that authenticate store the exact bytes; no route
 * of the API shows a credential.
 */
#include "e2e.h"

#include "str.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PASSWORD "fleet-password-4711"
#define TOKEN    "fleet-token-0815"

struct state {
    struct cdt_fleet fleet;
    struct cdt_daemon d;
    char *tls_dir;
};

static int setup(void **st)
{
    struct state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    cdt_daemon_init(&s->d, "e2e-auth");
    s->tls_dir = cdt_path(s->d.dir, "tls");
    const char *args[] = {"-workload", "alloc",       "-no-gops",          "-tls-dir",
                          s->tls_dir,  "-basic-auth", "scraper:" PASSWORD, "-bearer-token",
                          TOKEN,       NULL};
    assert_int_equal(cdt_fleet_start(&s->fleet, args, 30000), 0);
    *st = s;
    return 0;
}

static int teardown(void **st)
{
    struct state *s = *st;
    int ws;
    e2e_stop_clean(&s->d, 15000, &ws);
    cdt_daemon_cleanup(&s->d);
    cdt_fleet_stop(&s->fleet);
    free(s->tls_dir);
    free(s);
    return 0;
}

static const json_t *job_target(const json_t *list, const char *job)
{
    size_t i;
    const json_t *t;
    json_array_foreach(e2e_targets(list), i, t)
    {
        if (strcmp(e2e_jstr(t, "job") ? e2e_jstr(t, "job") : "", job) == 0)
            return t;
    }
    return NULL;
}

static const char *const jobs[] = {"basic", "authorization", "bearer", "none", "untrusted"};

/* Every job's heap kind has a result. */
static bool all_scraped(const json_t *list, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
        const json_t *k = e2e_target_kind(job_target(list, jobs[i]), "heap");
        if (k == NULL || e2e_jstr(k, "last_status") == NULL)
            return false;
    }
    return true;
}

static void test_tls_and_auth(void **st)
{
    struct state *s = *st;
    char *pw_file = cdt_path(s->d.dir, "password");
    char *tok_file = cdt_path(s->d.dir, "token");
    assert_int_equal(cdt_write_file(pw_file, PASSWORD "\n", strlen(PASSWORD) + 1), 0);
    assert_int_equal(cdt_write_file(tok_file, TOKEN, strlen(TOKEN)), 0);
    int port = s->fleet.targets[0].pprof_port;
    const char *only_heap = "    profiling_config:\n"
                            "      pprof_config:\n"
                            "        cpu: {enabled: false}\n"
                            "        allocs: {enabled: false}\n"
                            "        goroutine: {enabled: false}\n"
                            "        mutex: {enabled: false}\n"
                            "        block: {enabled: false}\n";
    char *yaml = cd_str_printf(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 5s\n"
        "storage:\n"
        "  path: @DIR@/collectord.db\n"
        "query:\n"
        "  socket: @DIR@/collectord.sock\n"
        "  socket_mode: \"0600\"\n"
        "scrape_configs:\n"
        "  - job_name: basic\n"
        "    scheme: https\n"
        "    tls_config: {ca_file: @DIR@/tls/ca.pem}\n"
        "    basic_auth: {username: scraper, password_file: @DIR@/password}\n"
        "    static_configs: [{targets: [\"127.0.0.1:%d\"]}]\n"
        "%s"
        "  - job_name: authorization\n"
        "    scheme: https\n"
        "    tls_config: {ca_file: @DIR@/tls/ca.pem}\n"
        "    authorization: {type: Bearer, credentials_file: @DIR@/token}\n"
        "    static_configs: [{targets: [\"127.0.0.1:%d\"]}]\n"
        "%s"
        "  - job_name: bearer\n"
        "    scheme: https\n"
        "    tls_config: {ca_file: @DIR@/tls/ca.pem}\n"
        "    bearer_token: " TOKEN "\n"
        "    static_configs: [{targets: [\"127.0.0.1:%d\"]}]\n"
        "%s"
        "  - job_name: none\n"
        "    scheme: https\n"
        "    tls_config: {ca_file: @DIR@/tls/ca.pem}\n"
        "    static_configs: [{targets: [\"127.0.0.1:%d\"]}]\n"
        "%s"
        "  - job_name: untrusted\n"
        "    scheme: https\n"
        "    basic_auth: {username: scraper, password: " PASSWORD "}\n"
        "    static_configs: [{targets: [\"127.0.0.1:%d\"]}]\n"
        "%s",
        port, only_heap, port, only_heap, port, only_heap, port, only_heap, port, only_heap);
    assert_non_null(yaml);
    cdt_daemon_write_config(&s->d, yaml);
    free(yaml);
    cdt_daemon_start(&s->d, NULL, 30000);

    const char *list_args[] = {"list", NULL};
    json_t *list = cdt_ctl_wait(&s->d, list_args, all_scraped, NULL, 60000);
    if (list == NULL)
        cdt_daemon_print_log(&s->d, 40);
    assert_non_null(list);
    for (size_t i = 0; i < 3; i++) {
        const json_t *t = job_target(list, jobs[i]);
        const json_t *k = e2e_target_kind(t, "heap");
        print_message("%s: %s\n", jobs[i], e2e_jstr(k, "last_status"));
        assert_string_equal(e2e_jstr(k, "last_status"), "ok");
        assert_string_equal(e2e_jstr(t, "health"), "up");
        /* the stored bytes are the profile itself */
        int64_t id = e2e_jint(k, "last_snapshot_id", 0);
        uint8_t *data = NULL;
        size_t len = 0;
        e2e_fetch(&s->d, id, &data, &len);
        assert_true(len > 2 && data[0] == 0x1f && data[1] == 0x8b);
        free(data);
    }
    const json_t *k = e2e_target_kind(job_target(list, "none"), "heap");
    print_message("none: %s: %s\n", e2e_jstr(k, "last_status"), e2e_jstr(k, "last_error"));
    assert_string_equal(e2e_jstr(k, "last_status"), "http_error");
    assert_non_null(strstr(e2e_jstr(k, "last_error"), "401"));
    assert_string_equal(e2e_jstr(job_target(list, "none"), "health"), "down");
    k = e2e_target_kind(job_target(list, "untrusted"), "heap");
    print_message("untrusted: %s: %s\n", e2e_jstr(k, "last_status"), e2e_jstr(k, "last_error"));
    assert_string_not_equal(e2e_jstr(k, "last_status"), "ok");
    assert_non_null(strcasestr(e2e_jstr(k, "last_error"), "certificate"));
    json_decref(list);

    /* No credential anywhere in what the API or the log says. */
    const char *const routes[][3] = {
        {"list", NULL}, {"status", NULL}, {"snapshots", "--all", NULL}};
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        char *out = NULL;
        assert_int_equal(
            e2e_ctl(&s->d, &out, NULL, 30000,
                    (const char *const[]){"-o", "json", routes[i][0], routes[i][1], routes[i][2]}),
            0);
        assert_null(strstr(out, PASSWORD));
        assert_null(strstr(out, TOKEN));
        free(out);
    }
    assert_false(e2e_log_contains(&s->d, PASSWORD));
    assert_false(e2e_log_contains(&s->d, TOKEN));
    free(pw_file);
    free(tok_file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tls_and_auth, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
