/* Unit tests of config: defaults, every key, Parca compatibility, error lines with exact
 * positions, the dump, reload rules, secrets, relative paths, and the --check-config CLI. */
#include "config.h"
#include "discovery.h"
#include "buf.h"
#include "str.h"

#include "cdtest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *g_dir; /* a scratch directory: the "config dir" of parsed texts */

static int setup(void **state)
{
    (void)state;
    g_dir = cdt_tmpdir("config");
    return g_dir != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cdt_rmrf(g_dir);
    free(g_dir);
    return 0;
}

static struct cd_config *parse_ok(const char *yaml)
{
    struct cd_config *c = NULL;
    struct cd_config_diag d = {0};
    struct cd_err err;
    cd_err_init(&err);
    int rc = cd_config_parse("t.yaml", g_dir, yaml, strlen(yaml), &c, &d, &err);
    if (rc != 0) {
        for (size_t i = 0; i < d.n; i++)
            print_message("  %s\n", d.lines[i]);
        cd_config_diag_free(&d);
        fail_msg("config did not load: %s", cd_err_msg(&err));
    }
    assert_int_equal(d.n, 0);
    return c;
}

/* Loads yaml expecting failure; returns the diag (caller frees). */
static struct cd_config_diag parse_bad(const char *yaml)
{
    struct cd_config *c = NULL;
    struct cd_config_diag d = {0};
    struct cd_err err;
    cd_err_init(&err);
    int rc = cd_config_parse("t.yaml", g_dir, yaml, strlen(yaml), &c, &d, &err);
    assert_true(rc < 0);
    assert_null(c);
    assert_true(d.n > 0);
    /* err holds the first line */
    assert_string_equal(cd_err_msg(&err), d.lines[0]);
    return d;
}

static char *dump(const struct cd_config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(cd_config_dump(c, f), 0);
    fclose(f);
    return buf;
}

static void test_defaults(void **state)
{
    (void)state;
    struct cd_config *c = parse_ok("");
    assert_int_equal(c->global.scrape_interval_ms, 60000);
    assert_int_equal(c->global.scrape_timeout_ms, 10000);
    assert_int_equal(c->global.external_labels.n, 0);
    assert_string_equal(c->storage.path, "/var/lib/collectord/collectord.db");
    assert_int_equal(c->storage.retention.max_age_ms, 14LL * 86400000);
    assert_int_equal(c->storage.retention.max_bytes, 20ULL << 30);
    assert_int_equal(c->storage.retention.max_snapshots_per_target, 0);
    assert_int_equal(c->storage.retention.n_downsample, 2);
    assert_int_equal(c->storage.retention.downsample[0].after_ms, 86400000);
    assert_int_equal(c->storage.retention.downsample[0].keep_one_per_ms, 3600000);
    assert_int_equal(c->storage.retention.downsample[1].after_ms, 7 * 86400000LL);
    assert_int_equal(c->storage.retention.downsample[1].keep_one_per_ms, 86400000);
    assert_int_equal(c->storage.retention.interval_ms, 600000);
    assert_string_equal(c->query.socket, "/run/collectord/collectord.sock");
    assert_int_equal(c->query.socket_mode, 0660);
    assert_string_equal(c->query.socket_group, "");
    assert_string_equal(c->query.listen, "");
    assert_string_equal(c->query.token_file, "");
    assert_null(c->query.token);
    assert_int_equal(c->query.max_connections, 64);
    assert_int_equal(c->query.max_request_bytes, 1 << 20);
    assert_int_equal(c->query.max_response_bytes, 64 << 20);
    assert_int_equal(c->query.request_timeout_ms, 30000);
    assert_int_equal(c->query.max_page_size, 1000);
    assert_int_equal(c->limits.max_body_bytes, 64 << 20);
    assert_int_equal(c->limits.max_decompressed_bytes, 256 << 20);
    assert_int_equal(c->limits.max_concurrent_scrapes, 256);
    assert_int_equal(c->limits.max_targets, 10000);
    assert_int_equal(c->limits.ingest_queue_length, 1024);
    assert_int_equal(c->limits.ingest_queue_bytes, 64ULL << 20);
    assert_int_equal(c->limits.parser_threads, 0);
    assert_int_equal(c->limits.max_goroutines, 1000000);
    assert_int_equal(c->limits.max_parse_memory, 512ULL << 20);
    assert_int_equal(c->limits.shutdown_timeout_ms, 30000);
    assert_int_equal(c->n_jobs, 0);
    struct cd_parse_limits lim;
    cd_config_parse_limits(c, &lim);
    assert_int_equal(lim.max_input, 64 << 20);
    assert_int_equal(lim.max_decompressed, 256 << 20);
    assert_int_equal(lim.max_goroutines, 1000000);
    cd_config_free(c);

    /* a comment-only file, and an explicit null document, are the defaults too */
    c = parse_ok("# nothing here\n");
    assert_int_equal(c->n_jobs, 0);
    cd_config_free(c);
    c = parse_ok("~\n");
    cd_config_free(c);
}

static void test_every_key(void **state)
{
    (void)state;
    char *pw = cdt_path(g_dir, "pw");
    char *tok = cdt_path(g_dir, "api.token");
    char *ca = cdt_path(g_dir, "ca.pem");
    assert_int_equal(cdt_write_file(pw, "s3cret\n", 7), 0);
    assert_int_equal(cdt_write_file(tok, "0123456789abcdef0123\n", 21), 0);
    assert_int_equal(cdt_write_file(ca, "x", 1), 0);
    const char *yaml =
        "global:\n"
        "  scrape_interval: 30s\n"
        "  scrape_timeout: 5s\n"
        "  external_labels: {region: eu-1, dc: fra}\n"
        "storage:\n"
        "  path: data/c.db\n"
        "  retention:\n"
        "    max_age: 30d\n"
        "    max_bytes: 1GiB\n"
        "    max_snapshots_per_target: 500\n"
        "    downsample:\n"
        "      - {after: 1h, keep_one_per: 5m}\n"
        "    interval: 2m\n"
        "query:\n"
        "  socket: run/c.sock\n"
        "  socket_mode: \"0600\"\n"
        "  socket_group: root\n"
        "  listen: 127.0.0.1:7070\n"
        "  token_file: api.token\n"
        "  max_connections: 10\n"
        "  max_request_bytes: 64KiB\n"
        "  max_response_bytes: 1MiB\n"
        "  request_timeout: 5s\n"
        "  max_page_size: 50\n"
        "limits:\n"
        "  max_body_bytes: 8MiB\n"
        "  max_decompressed_bytes: 32MiB\n"
        "  max_concurrent_scrapes: 16\n"
        "  max_targets: 100\n"
        "  ingest_queue_length: 64\n"
        "  ingest_queue_bytes: 128MiB\n"
        "  parser_threads: 2\n"
        "  max_goroutines: 5000\n"
        "  max_parse_memory: 64MiB\n"
        "  shutdown_timeout: 9s\n"
        "scrape_configs:\n"
        "  - job_name: api\n"
        "    scrape_interval: 20s\n"
        "    scrape_timeout: 3s\n"
        "    scheme: https\n"
        "    params: {tenant: [a, b], x: y}\n"
        "    honor_labels: true\n"
        "    honor_timestamps: true\n"
        "    normalized_addresses: true\n"
        "    follow_redirects: false\n"
        "    enable_http2: false\n"
        "    proxy_url: http://proxy:3128\n"
        "    body_size_limit: 2MiB\n"
        "    basic_auth: {username: u, password_file: pw}\n"
        "    tls_config: {ca_file: ca.pem, server_name: api.local, insecure_skip_verify: true}\n"
        "    static_configs:\n"
        "      - targets: [\"10.0.0.5:6060\", \"gops://10.0.0.5:4321\"]\n"
        "        labels: {team: payments}\n"
        "    file_sd_configs:\n"
        "      - files: [targets/*.json]\n"
        "        refresh_interval: 1m\n"
        "    dns_sd_configs:\n"
        "      - names: [localhost]\n"
        "        type: A\n"
        "        port: 6060\n"
        "        refresh_interval: 10s\n"
        "    local_sd_configs:\n"
        "      - gops: false\n"
        "        pprof: true\n"
        "        refresh_interval: 5s\n"
        "        exe: \".*/fleet\"\n"
        "        probe_timeout: 200ms\n"
        "        max_probes: 3\n"
        "        max_processes: 7\n"
        "    relabel_configs:\n"
        "      - source_labels: [__address__, job]\n"
        "        separator: \"|\"\n"
        "        regex: \"(.*)\"\n"
        "        modulus: 0\n"
        "        target_label: addr_job\n"
        "        replacement: \"$1\"\n"
        "        action: replace\n"
        "    profiling_config:\n"
        "      path_prefix: /internal\n"
        "      pprof_config:\n"
        "        cpu: {enabled: true, seconds: 5, interval: 1m, params: {foo: bar}}\n"
        "        heap: {enabled: false}\n"
        "        allocs: {delta: true}\n"
        "        goroutine: {path: /debug/pprof/goroutine}\n"
        "        memory_custom: {path: /debug/mem, keep_sample_type: [{type: inuse_space, "
        "unit: bytes}]}\n"
        "    gops_config:\n"
        "      cpu: {enabled: true, interval: 2m}\n"
        "      version: {interval: 1h}\n";
    struct cd_config *c = parse_ok(yaml);
    char *p;
    assert_int_equal(c->global.scrape_interval_ms, 30000);
    assert_int_equal(c->global.scrape_timeout_ms, 5000);
    assert_string_equal(cd_labels_get(&c->global.external_labels, "region"), "eu-1");
    assert_string_equal(cd_labels_get(&c->global.external_labels, "dc"), "fra");
    p = cdt_path(g_dir, "data/c.db");
    assert_string_equal(c->storage.path, p);
    free(p);
    assert_int_equal(c->storage.retention.max_age_ms, 30 * 86400000LL);
    assert_int_equal(c->storage.retention.max_bytes, 1ULL << 30);
    assert_int_equal(c->storage.retention.max_snapshots_per_target, 500);
    assert_int_equal(c->storage.retention.n_downsample, 1);
    assert_int_equal(c->storage.retention.downsample[0].after_ms, 3600000);
    assert_int_equal(c->storage.retention.downsample[0].keep_one_per_ms, 300000);
    assert_int_equal(c->storage.retention.interval_ms, 120000);
    p = cdt_path(g_dir, "run/c.sock");
    assert_string_equal(c->query.socket, p);
    free(p);
    assert_int_equal(c->query.socket_mode, 0600);
    assert_string_equal(c->query.socket_group, "root");
    assert_string_equal(c->query.listen, "127.0.0.1:7070");
    assert_string_equal(c->query.token_file, tok);
    assert_string_equal(c->query.token, "0123456789abcdef0123");
    assert_int_equal(c->query.max_connections, 10);
    assert_int_equal(c->query.max_request_bytes, 64 << 10);
    assert_int_equal(c->query.max_response_bytes, 1 << 20);
    assert_int_equal(c->query.request_timeout_ms, 5000);
    assert_int_equal(c->query.max_page_size, 50);
    assert_int_equal(c->limits.max_body_bytes, 8 << 20);
    assert_int_equal(c->limits.max_decompressed_bytes, 32 << 20);
    assert_int_equal(c->limits.max_concurrent_scrapes, 16);
    assert_int_equal(c->limits.max_targets, 100);
    assert_int_equal(c->limits.ingest_queue_length, 64);
    assert_int_equal(c->limits.ingest_queue_bytes, 128 << 20);
    assert_int_equal(c->limits.parser_threads, 2);
    assert_int_equal(c->limits.max_goroutines, 5000);
    assert_int_equal(c->limits.max_parse_memory, 64 << 20);
    assert_int_equal(c->limits.shutdown_timeout_ms, 9000);

    assert_int_equal(c->n_jobs, 1);
    const struct cd_job_conf *j = cd_config_job(c, "api");
    assert_non_null(j);
    assert_null(cd_config_job(c, "nope"));
    assert_int_equal(j->scrape_interval_ms, 20000);
    assert_int_equal(j->scrape_timeout_ms, 3000);
    assert_int_equal(j->scheme, CD_SCHEME_HTTPS);
    assert_int_equal(j->params.n, 3);
    assert_string_equal(j->params.v[0].name, "tenant");
    assert_string_equal(j->params.v[1].value, "b");
    assert_string_equal(j->params.v[2].value, "y");
    assert_true(j->honor_labels);
    assert_true(j->honor_timestamps);
    assert_true(j->normalized_addresses);
    assert_false(j->follow_redirects);
    assert_false(j->enable_http2);
    assert_string_equal(j->proxy_url, "http://proxy:3128");
    assert_int_equal(j->body_size_limit, 2 << 20);
    assert_string_equal(j->auth.username, "u");
    assert_string_equal(j->auth.password, "s3cret");
    assert_string_equal(j->password_file, pw);
    assert_string_equal(j->tls.ca_file, ca);
    assert_string_equal(j->tls.server_name, "api.local");
    assert_true(j->tls.insecure_skip_verify);
    assert_int_equal(j->static_groups.n, 1);
    assert_int_equal(j->static_groups.v[0].n, 2);
    assert_string_equal(j->static_groups.v[0].v[1].address, "gops://10.0.0.5:4321");
    assert_string_equal(cd_labels_get(&j->static_groups.v[0].labels, "team"), "payments");
    assert_int_equal(j->n_file_sd, 1);
    p = cdt_path(g_dir, "targets/*.json");
    assert_string_equal(j->file_sd[0].files.v[0], p);
    free(p);
    assert_int_equal(j->file_sd[0].refresh_interval_ms, 60000);
    assert_int_equal(j->n_dns_sd, 1);
    assert_int_equal(j->dns_sd[0].type, CD_DNS_A);
    assert_int_equal(j->dns_sd[0].port, 6060);
    assert_int_equal(j->dns_sd[0].refresh_interval_ms, 10000);
    assert_int_equal(j->n_local_sd, 1);
    assert_false(j->local_sd[0].gops);
    assert_true(j->local_sd[0].pprof);
    assert_int_equal(j->local_sd[0].refresh_interval_ms, 5000);
    assert_true(j->local_sd[0].exe_set);
    assert_true(cd_regex_match(&j->local_sd[0].exe, "/usr/bin/fleet"));
    assert_false(cd_regex_match(&j->local_sd[0].exe, "/usr/bin/fleetx"));
    assert_int_equal(j->local_sd[0].probe_timeout_ms, 200);
    assert_int_equal(j->local_sd[0].max_probes, 3);
    assert_int_equal(j->local_sd[0].max_processes, 7);
    assert_int_equal(j->n_relabel, 1);
    assert_string_equal(j->relabel[0].separator, "|");
    assert_string_equal(j->relabel[0].target_label, "addr_job");
    assert_int_equal(j->relabel[0].n_source_labels, 2);
    assert_false(j->relabel_per_kind);
    assert_string_equal(j->path_prefix, "/internal");

    /* kinds: built-ins in kind.h order, then custom ones */
    const struct cd_kind_conf *k = &j->http_kinds[0];
    assert_string_equal(k->kind, "cpu");
    assert_true(k->enabled);
    assert_int_equal(k->seconds, 5);
    assert_int_equal(k->interval_ms, 60000);
    assert_int_equal(k->timeout_ms, 8000);
    assert_string_equal(k->path, "/internal/debug/pprof/profile");
    assert_int_equal(k->params.n, 1);
    assert_int_equal(k->exclusive, CD_EXCL_CPU);
    k = &j->http_kinds[1];
    assert_string_equal(k->kind, "heap");
    assert_false(k->enabled);
    k = &j->http_kinds[2];
    assert_string_equal(k->kind, "allocs");
    assert_true(k->enabled);
    assert_true(k->delta);
    assert_int_equal(k->seconds, 20); /* delta: seconds = the interval */
    assert_int_equal(k->timeout_ms, 23000);
    k = &j->http_kinds[3];
    assert_string_equal(k->path, "/internal/debug/pprof/goroutine");
    k = &j->http_kinds[j->n_http_kinds - 1];
    assert_string_equal(k->kind, "memory_custom");
    assert_null(k->info);
    assert_true(k->enabled);
    assert_string_equal(k->path, "/internal/debug/mem");
    assert_int_equal(k->n_keep_sample_type, 1);
    assert_string_equal(k->keep_sample_type[0].type, "inuse_space");
    assert_int_equal(k->seconds, 0);
    /* gops kinds */
    bool saw_cpu = false, saw_version = false;
    for (size_t i = 0; i < j->n_gops_kinds; i++) {
        k = &j->gops_kinds[i];
        if (strcmp(k->kind, "cpu") == 0) {
            saw_cpu = true;
            assert_true(k->enabled);
            assert_int_equal(k->seconds, 30);
            assert_int_equal(k->gops_cmd, 0x06);
            assert_int_equal(k->interval_ms, 120000);
            assert_int_equal(k->timeout_ms, 33000);
        }
        if (strcmp(k->kind, "version") == 0) {
            saw_version = true;
            assert_int_equal(k->interval_ms, 3600000);
            assert_int_equal(k->gops_cmd, 0x04);
        }
        assert_null(k->path);
    }
    assert_true(saw_cpu && saw_version);
    struct cd_parse_limits lim;
    cd_config_parse_limits(c, &lim);
    assert_int_equal(lim.max_input, 8 << 20);
    assert_int_equal(lim.max_memory, 64 << 20);
    cd_config_free(c);
    free(pw);
    free(tok);
    free(ca);
}

/* Parca's documentation example, unchanged (minus Parca's object_storage block). */
static const char parca_yaml[] = "scrape_configs:\n"
                                 "  - job_name: \"default\"\n"
                                 "    scrape_interval: \"10s\"\n"
                                 "    scrape_timeout: \"0s\"\n"
                                 "    scheme: http\n"
                                 "    static_configs:\n"
                                 "      - targets: [ '127.0.0.1:7070' ]\n"
                                 "    profiling_config:\n"
                                 "      pprof_config:\n"
                                 "        fgprof:\n"
                                 "          enabled: true\n"
                                 "          path: /debug/pprof/fgprof\n"
                                 "          delta: true\n"
                                 "        memory:\n"
                                 "          enabled: true\n"
                                 "          keep_sample_type:\n"
                                 "            - type: inuse_space\n"
                                 "              unit: bytes\n"
                                 "        process_cpu:\n"
                                 "          enabled: true\n"
                                 "          delta: true\n"
                                 "    relabel_configs:\n"
                                 "      - source_labels: [__address__]\n"
                                 "        regex: '127\\.0\\.0\\.1:(\\d+)'\n"
                                 "        target_label: port\n"
                                 "        replacement: '$1'\n"
                                 "      - action: drop\n"
                                 "        source_labels: [__name__]\n"
                                 "        regex: block\n"
                                 "    follow_redirects: true\n"
                                 "    enable_http2: true\n"
                                 "    normalized_addresses: false\n";

static void test_parca_example(void **state)
{
    (void)state;
    struct cd_config *c = parse_ok(parca_yaml);
    const struct cd_job_conf *j = cd_config_job(c, "default");
    assert_non_null(j);
    assert_int_equal(j->scrape_interval_ms, 10000);
    assert_int_equal(j->scrape_timeout_ms, 10000); /* 0s: the global default */
    assert_true(j->relabel_per_kind);
    bool saw[4] = {false};
    for (size_t i = 0; i < j->n_http_kinds; i++) {
        const struct cd_kind_conf *k = &j->http_kinds[i];
        if (strcmp(k->kind, "cpu") == 0) {
            saw[0] = true;
            assert_string_equal(k->name, "process_cpu");
            assert_true(k->delta);
            assert_int_equal(k->seconds, 10);
            assert_int_equal(k->timeout_ms, 20000);
            assert_string_equal(k->path, "/debug/pprof/profile");
        } else if (strcmp(k->kind, "allocs") == 0) {
            saw[1] = true;
            assert_string_equal(k->name, "memory");
            assert_int_equal(k->seconds, 0);
            assert_string_equal(k->path, "/debug/pprof/allocs");
            assert_int_equal(k->n_keep_sample_type, 1);
        } else if (strcmp(k->kind, "fgprof") == 0) {
            saw[2] = true;
            assert_int_equal(k->seconds, 10);
            assert_string_equal(k->path, "/debug/pprof/fgprof");
        } else if (strcmp(k->kind, "block") == 0) {
            saw[3] = true;
            assert_true(k->enabled); /* merged default; relabeling drops it per target */
        }
    }
    assert_true(saw[0] && saw[1] && saw[2] && saw[3]);
    cd_config_free(c);
}

struct bad_case {
    const char *yaml;
    const char *line; /* the exact start of an error line: "t.yaml:L:C: key.path: " */
    const char *says; /* and a part of the reason */
};

static const struct bad_case bad_cases[] = {
    /* wrong types */
    {"global:\n  scrape_interval: [1, 2]\n",
     "t.yaml:2:20: global.scrape_interval: ", "expected a duration, got a list"},
    {"scrape_configs:\n  - job_name: a\n    honor_labels: maybe\n",
     "t.yaml:3:19: scrape_configs[0].honor_labels: ", "expected true or false"},
    {"scrape_configs: {job_name: a}\n",
     "t.yaml:1:17: scrape_configs: ", "expected a list, got a mapping"},
    {"limits:\n  max_targets: lots\n", "t.yaml:2:16: limits.max_targets: ", "expected an integer"},
    /* unknown keys */
    {"scrape_config: []\n", "t.yaml:1:1: scrape_config: ", "did you mean scrape_configs?"},
    {"scrape_configs:\n  - job_name: a\n    scrape_intervall: 10s\n",
     "t.yaml:3:5: scrape_configs[0].scrape_intervall: ", "did you mean scrape_interval?"},
    {"storage:\n  retention:\n    keep: 3\n",
     "t.yaml:3:5: storage.retention.keep: ", "unknown key (expected one of: max_age"},
    /* bad durations and sizes */
    {"global:\n  scrape_interval: 30\n",
     "t.yaml:2:20: global.scrape_interval: ", "expected a duration like 30s"},
    {"global:\n  scrape_timeout: 2h\n",
     "t.yaml:2:19: global.scrape_timeout: ", "must be between 1s and 1h"},
    {"limits:\n  max_body_bytes: 64XB\n",
     "t.yaml:2:19: limits.max_body_bytes: ", "expected a size like 64MiB"},
    /* negative numbers */
    {"limits:\n  max_concurrent_scrapes: -3\n",
     "t.yaml:2:27: limits.max_concurrent_scrapes: ", "must not be negative"},
    {"scrape_configs:\n  - job_name: a\n    scrape_interval: -10s\n",
     "t.yaml:3:22: scrape_configs[0].scrape_interval: ", "must not be negative"},
    /* duplicate job names and keys */
    {"scrape_configs:\n  - job_name: a\n  - job_name: a\n",
     "t.yaml:3:15: scrape_configs[1].job_name: ",
     "duplicate job name \"a\" (first used at line 2)"},
    {"global:\n  scrape_interval: 1m\n  scrape_interval: 2m\n",
     "t.yaml:3:3: global.scrape_interval: ", "duplicate key"},
    {"scrape_configs:\n  - scrape_interval: 1m\n",
     "t.yaml:2:5: scrape_configs[0]: ", "job_name is required"},
    /* bad target addresses */
    {"scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [\"h:99999\"]\n",
     "t.yaml:4:19: scrape_configs[0].static_configs[0].targets[0]: ",
     "\"h:99999\" is not a valid target: port must be a number between 1 and 65535"},
    {"scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [\"http://h:1/x\"]\n",
     "t.yaml:4:19: scrape_configs[0].static_configs[0].targets[0]: ", "a path or URL"},
    {"scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [gops://h]\n",
     "t.yaml:4:19: scrape_configs[0].static_configs[0].targets[0]: ", "gops targets need a port"},
    {"scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [\"::1:80\"]\n",
     "t.yaml:4:19: scrape_configs[0].static_configs[0].targets[0]: ", "in brackets"},
    /* kinds */
    {"scrape_configs:\n  - job_name: a\n    gops_config:\n      allocs: {}\n",
     "t.yaml:4:7: scrape_configs[0].gops_config.allocs: ", "not available from a gops agent"},
    {"scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        memstats: {}\n",
     "t.yaml:5:9: scrape_configs[0].profiling_config.pprof_config.memstats: ",
     "only available from gops agents"},
    {"scrape_configs:\n  - job_name: a\n    gops_config:\n      cpu: {seconds: 5}\n",
     "t.yaml:4:22: scrape_configs[0].gops_config.cpu.seconds: ", "always runs cpu for 30 s"},
    {"scrape_configs:\n  - job_name: a\n    gops_config:\n      heap: {path: /x}\n",
     "t.yaml:4:14: scrape_configs[0].gops_config.heap.path: ", "not used for gops agents"},
    {"scrape_configs:\n  - job_name: a\n    scrape_interval: 10s\n    gops_config:\n"
     "      cpu: {enabled: true}\n",
     "t.yaml:5:12: scrape_configs[0].gops_config.cpu: ", "interval must be at least 30s"},
    {"scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        fgprof: {enabled: true}\n",
     "t.yaml:5:17: scrape_configs[0].profiling_config.pprof_config.fgprof: ",
     "custom kind fgprof needs a path"},
    {"scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        cpu: {seconds: 90}\n",
     "t.yaml:5:14: scrape_configs[0].profiling_config.pprof_config.cpu: ",
     "seconds (90) exceeds the interval (1m)"},
    {"scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        goroutine_dump: {delta: true}\n",
     "t.yaml:5:25: scrape_configs[0].profiling_config.pprof_config.goroutine_dump: ",
     "does not take seconds or delta"},
    {"scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        cpu: {}\n        process_cpu: {}\n",
     "t.yaml:6:9: scrape_configs[0].profiling_config.pprof_config.process_cpu: ",
     "cpu and process_cpu are the same kind"},
    {"scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        Bad_Kind: {path: /x}\n",
     "t.yaml:5:9: scrape_configs[0].profiling_config.pprof_config.Bad_Kind: ",
     "kind names are 1 to 48 characters"},
    {"scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [gops://h:1]\n"
     "    gops_config:\n      heap: {enabled: false}\n      goroutine_dump: {enabled: false}\n"
     "      memstats: {enabled: false}\n      stats: {enabled: false}\n"
     "      version: {enabled: false}\n",
     "t.yaml:4:7: scrape_configs[0].static_configs: ",
     "gops://h:1 is a gops target, but every kind of gops_config is disabled"},
    /* query */
    {"query:\n  listen: \":7070\"\n",
     "t.yaml:2:11: query.listen: ", "TCP access needs a bearer token"},
    {"query:\n  socket_mode: \"0999\"\n",
     "t.yaml:2:16: query.socket_mode: ", "expected an octal file mode"},
    {"query:\n  token_file: /nonexistent/token\n",
     "t.yaml:2:15: query.token_file: ", "cannot read '/nonexistent/token'"},
    /* relabeling */
    {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - regex: \"(a+?)\"\n",
     "t.yaml:4:16: scrape_configs[0].relabel_configs[0].regex: ", "lazy quantifiers"},
    {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: replace\n",
     "t.yaml:4:9: scrape_configs[0].relabel_configs[0]: ", "replace requires target_label"},
    {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n"
     "        target_label: shard\n",
     "t.yaml:4:9: scrape_configs[0].relabel_configs[0]: ", "non-zero modulus"},
    {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: explode\n",
     "t.yaml:4:17: scrape_configs[0].relabel_configs[0].action: ", "unknown action \"explode\""},
    {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: labeldrop\n"
     "        target_label: x\n",
     "t.yaml:4:9: scrape_configs[0].relabel_configs[0]: ", "labeldrop takes only regex"},
    /* discovery */
    {"scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n      - names: [x.example]\n"
     "        type: A\n",
     "t.yaml:4:9: scrape_configs[0].dns_sd_configs[0]: ", "port is required for A records"},
    {"scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [targets.txt]\n",
     "t.yaml:4:17: scrape_configs[0].file_sd_configs[0].files[0]: ",
     "must end in .json, .yml or .yaml"},
    {"scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [\"*/t.json\"]\n",
     "t.yaml:4:17: scrape_configs[0].file_sd_configs[0].files[0]: ",
     "patterns are only allowed in the last path element"},
    {"scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs: []\n",
     "t.yaml:3:5: scrape_configs[0].kubernetes_sd_configs: ", "not supported by collectord"},
    {"scrape_configs:\n  - job_name: a\n    local_sd_configs:\n      - {gops: false, pprof: "
     "false}\n",
     "t.yaml:4:9: scrape_configs[0].local_sd_configs[0]: ", "would find nothing"},
    /* auth */
    {"scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: p, "
     "password_file: pw}\n",
     "t.yaml:3:17: scrape_configs[0].basic_auth: ", "at most one of password and password_file"},
    {"scrape_configs:\n  - job_name: a\n    bearer_token: t\n    basic_auth: {username: u}\n",
     "t.yaml:4:17: scrape_configs[0]: ", "at most one of basic_auth, authorization"},
    {"scrape_configs:\n  - job_name: a\n    tls_config: {cert_file: /etc/hostname}\n",
     "t.yaml:3:17: scrape_configs[0].tls_config: ", "cert_file and key_file must be given"},
    /* retention */
    {"storage:\n  retention:\n    downsample:\n      - {after: 7d, keep_one_per: 1d}\n"
     "      - {after: 1d, keep_one_per: 1h}\n",
     "t.yaml:5:9: storage.retention.downsample[1]: ", "increasing order of after"},
    {"storage:\n  retention:\n    max_age: 3d\n",
     "t.yaml:", "a tier starting after 7d never applies: max_age is 3d"},
    /* YAML itself */
    {"global:\n  scrape_interval: [1\n", "t.yaml:3:1: YAML syntax error: ", "did not find"},
    {"a: &x [*x]\n", "t.yaml:1:", ""},
    {"global: {}\n---\nglobal: {}\n", "t.yaml:3:1: (top): ", "more than one YAML document"},
};

static void test_malformed(void **state)
{
    (void)state;
    size_t n = sizeof(bad_cases) / sizeof(bad_cases[0]);
    assert_true(n >= 15);
    for (size_t i = 0; i < n; i++) {
        struct cd_config *c = NULL;
        struct cd_config_diag d = {0};
        struct cd_err err;
        cd_err_init(&err);
        int rc = cd_config_parse("t.yaml", g_dir, bad_cases[i].yaml, strlen(bad_cases[i].yaml), &c,
                                 &d, &err);
        bool found = false;
        for (size_t k = 0; k < d.n && !found; k++)
            found = cd_str_has_prefix(d.lines[k], bad_cases[i].line) &&
                    strstr(d.lines[k], bad_cases[i].says) != NULL;
        if (rc == 0 || !found) {
            print_message("case %zu: expected \"%s...%s\", got:\n", i, bad_cases[i].line,
                          bad_cases[i].says);
            for (size_t k = 0; k < d.n; k++)
                print_message("  %s\n", d.lines[k]);
        }
        assert_true(rc < 0);
        assert_null(c);
        assert_true(found);
        cd_config_diag_free(&d);
    }
}

static void test_all_errors_reported(void **state)
{
    (void)state;
    struct cd_config_diag d = parse_bad("global:\n"
                                        "  scrape_interval: 30\n"
                                        "  bogus: 1\n"
                                        "limits:\n"
                                        "  max_targets: 0\n"
                                        "scrape_configs:\n"
                                        "  - job_name: a\n"
                                        "    scheme: ftp\n"
                                        "  - job_name: a\n");
    assert_int_equal(d.n, 5);
    assert_string_equal(d.lines[0], "t.yaml:2:20: global.scrape_interval: expected a duration "
                                    "like 30s, 1h30m or 14d, got \"30\"");
    assert_true(cd_str_has_prefix(d.lines[1], "t.yaml:3:3: global.bogus: unknown key"));
    assert_string_equal(d.lines[2],
                        "t.yaml:5:16: limits.max_targets: must be between 1 and 1000000, got 0");
    assert_string_equal(d.lines[3], "t.yaml:8:13: scrape_configs[0].scheme: expected http, "
                                    "https or gops, got \"ftp\"");
    assert_string_equal(d.lines[4], "t.yaml:9:15: scrape_configs[1].job_name: duplicate job "
                                    "name \"a\" (first used at line 7)");
    cd_config_diag_free(&d);

    /* far too many errors: the list is capped, the rest counted */
    struct cd_buf b;
    cd_buf_init(&b, 0);
    cd_buf_append_str(&b, "global:\n");
    for (int i = 0; i < 300; i++)
        cd_buf_printf(&b, "  k%d: 1\n", i);
    cd_buf_terminate(&b);
    d = parse_bad((const char *)b.data);
    assert_int_equal(d.n, CD_CONFIG_MAX_DIAG);
    assert_int_equal(d.dropped, 300 - CD_CONFIG_MAX_DIAG);
    cd_config_diag_free(&d);
    cd_buf_free(&b);
}

static void test_dump_roundtrip(void **state)
{
    (void)state;
    char *pw = cdt_path(g_dir, "pw2");
    assert_int_equal(cdt_write_file(pw, "hunter2", 7), 0);
    const char *yamls[] = {
        "",
        parca_yaml,
        "global: {scrape_interval: 15s, external_labels: {a: \"x \\\"y\\\"\"}}\n"
        "storage: {retention: {downsample: []}}\n"
        "scrape_configs:\n"
        "  - job_name: x\n"
        "    basic_auth: {username: u, password: topsecret}\n"
        "    params: {q: [\"a&b\", c]}\n"
        "    static_configs: [{targets: [\"[::1]:6060\", \"gops://h:1\"], labels: {k: v}}]\n"
        "    dns_sd_configs: [{names: [a.example], type: SRV}]\n"
        "    local_sd_configs: [{gops: true, pprof: false, exe: \".*/x\"}]\n"
        "    relabel_configs: [{action: labelmap, regex: \"__meta_(.+)\"},\n"
        "                      {action: hashmod, source_labels: [instance], modulus: 4,\n"
        "                       target_label: shard}]\n"
        "    profiling_config:\n"
        "      path_prefix: /p/\n"
        "      pprof_config:\n"
        "        trace: {enabled: true, seconds: 2, interval: 10m}\n"
        "        fgprof: {path: /debug/fgprof, seconds: 5, params: {x: [\"1\"]}}\n"
        "        memory: {delta: true}\n"
        "  - job_name: y\n"
        "    authorization: {credentials_file: pw2}\n",
    };
    for (size_t i = 0; i < sizeof(yamls) / sizeof(yamls[0]); i++) {
        struct cd_config *c = parse_ok(yamls[i]);
        char *d1 = dump(c);
        /* the dump never shows an inline secret */
        assert_null(strstr(d1, "topsecret"));
        assert_null(strstr(d1, "hunter2"));
        struct cd_config *c2 = parse_ok(d1);
        char *d2 = dump(c2);
        /* the effective config survives a round trip (the header names the source) */
        const char *b1 = strstr(d1, "\nglobal:");
        const char *b2 = strstr(d2, "\nglobal:");
        assert_non_null(b1);
        assert_non_null(b2);
        if (strcmp(b1, b2) != 0)
            print_message("first dump:\n%s\nsecond dump:\n%s\n", d1, d2);
        assert_string_equal(b1, b2);
        free(d1);
        free(d2);
        cd_config_free(c);
        cd_config_free(c2);
    }
    free(pw);
}

static void test_reload_check(void **state)
{
    (void)state;
    struct cd_config *a = parse_ok("storage: {path: /x/a.db}\nglobal: {scrape_interval: 1m}\n");
    struct cd_config *b = parse_ok("storage: {path: /x/a.db}\nglobal: {scrape_interval: 2m}\n"
                                   "limits: {max_targets: 5}\n");
    struct cd_config *c = parse_ok("storage: {path: /x/b.db}\nquery: {socket: /x/s.sock}\n");
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_config_reload_check(a, b, &err), 0);
    assert_int_equal(cd_config_reload_check(a, c, &err), -EINVAL);
    assert_non_null(strstr(cd_err_msg(&err), "storage.path, query.socket changed"));
    assert_non_null(strstr(cd_err_msg(&err), "restart"));
    cd_config_free(a);
    cd_config_free(b);
    cd_config_free(c);
}

static void test_paths_and_secrets(void **state)
{
    (void)state;
    char *sub = cdt_path(g_dir, "etc");
    assert_int_equal(mkdir(sub, 0755), 0);
    char *cfg = cdt_path(sub, "c.yaml");
    char *tok = cdt_path(g_dir, "tok");
    assert_int_equal(cdt_write_file(tok, "  abc.def  \n\n", 13), 0);
    const char *yaml = "storage: {path: ../state/./x//c.db}\n"
                       "scrape_configs:\n"
                       "  - job_name: a\n"
                       "    bearer_token_file: ../tok\n"
                       "    file_sd_configs: [{files: [t/*.yaml, /abs/x.json]}]\n";
    assert_int_equal(cdt_write_file(cfg, yaml, strlen(yaml)), 0);
    struct cd_config *c = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_config_load(cfg, &c, &err), 0);
    char *want = cdt_path(g_dir, "state/x/c.db");
    assert_string_equal(c->storage.path, want);
    free(want);
    assert_string_equal(c->jobs[0].auth.bearer, "abc.def");
    assert_string_equal(c->jobs[0].auth.auth_type, "Bearer");
    assert_string_equal(c->jobs[0].bearer_file, tok);
    want = cdt_path(sub, "t/*.yaml");
    assert_string_equal(c->jobs[0].file_sd[0].files.v[0], want);
    free(want);
    assert_string_equal(c->jobs[0].file_sd[0].files.v[1], "/abs/x.json");
    assert_string_equal(c->dir, sub);
    char *d = dump(c);
    assert_null(strstr(d, "abc.def"));
    assert_non_null(strstr(d, "credentials_file"));
    free(d);
    cd_config_free(c);

    /* an empty secret file is an error with its position */
    assert_int_equal(cdt_write_file(tok, "\n", 1), 0);
    struct cd_config_diag dg = {0};
    cd_err_init(&err);
    assert_int_equal(cd_config_load_diag(cfg, &c, &dg, &err), -EINVAL);
    assert_int_equal(dg.n, 1);
    assert_non_null(strstr(dg.lines[0], ":4:24: scrape_configs[0].bearer_token_file: '"));
    assert_non_null(strstr(dg.lines[0], "is empty"));
    cd_config_diag_free(&dg);

    /* a missing file */
    cd_err_init(&err);
    assert_int_equal(cd_config_load("/nonexistent/c.yaml", &c, &err), -ENOENT);
    assert_non_null(strstr(cd_err_msg(&err), "/nonexistent/c.yaml"));
    free(sub);
    free(cfg);
    free(tok);
}

static void test_yaml_features(void **state)
{
    (void)state;
    /* anchors and aliases, as go-yaml (which Prometheus uses) supports them */
    struct cd_config *c = parse_ok("global: {external_labels: &l {region: eu}}\n"
                                   "scrape_configs:\n"
                                   "  - job_name: a\n"
                                   "    static_configs: [{targets: [\"h:1\"], labels: *l}]\n"
                                   "    scrape_interval: !!str 20s\n"
                                   "    honor_labels: True\n");
    assert_string_equal(cd_labels_get(&c->jobs[0].static_groups.v[0].labels, "region"), "eu");
    assert_int_equal(c->jobs[0].scrape_interval_ms, 20000);
    assert_true(c->jobs[0].honor_labels);
    cd_config_free(c);
}

static void test_merge_keys(void **state)
{
    (void)state;
    struct cd_config *c = parse_ok("scrape_configs:\n"
                                   "  - &base\n"
                                   "    job_name: a\n"
                                   "    scrape_interval: 20s\n"
                                   "    static_configs: [{targets: [\"h:1\"]}]\n"
                                   "  - <<: *base\n"
                                   "    job_name: b\n");
    assert_int_equal(c->n_jobs, 2);
    assert_string_equal(c->jobs[1].name, "b");
    assert_int_equal(c->jobs[1].scrape_interval_ms, 20000);
    assert_int_equal(c->jobs[1].static_groups.n, 1);
    cd_config_free(c);

    /* a billion-laughs document stops at the node budget, quickly */
    struct cd_config_diag d = parse_bad("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                                        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                                        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                                        "scrape_configs:\n"
                                        "  - job_name: j\n"
                                        "    static_configs:\n"
                                        "      - targets: [*c, *c, *c]\n");
    cd_config_diag_free(&d);
}

static void test_installed_configs(void **state)
{
    (void)state;
    const char *src = cdt_env("CD_SOURCE_DIR");
    char *path = cdt_path(src, "config/collectord.yaml");
    struct cd_config *c = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_config_load(path, &c, &err), 0);
    /* the installed file states the defaults truthfully: its daemon-wide part dumps exactly as
     * an empty config does */
    struct cd_config *e = parse_ok("");
    char *d1 = dump(c), *d2 = dump(e);
    const char *b1 = strstr(d1, "\nglobal:"), *b2 = strstr(d2, "\nglobal:");
    const char *e1 = strstr(d1, "\nscrape_configs:"), *e2 = strstr(d2, "\nscrape_configs:");
    assert_non_null(b1);
    assert_non_null(e1);
    assert_int_equal(e1 - b1, e2 - b2);
    assert_memory_equal(b1, b2, (size_t)(e1 - b1));
    assert_int_equal(c->n_jobs, 2);
    assert_string_equal(c->jobs[0].name, "local");
    assert_int_equal(c->jobs[0].n_local_sd, 1);
    free(d1);
    free(d2);
    cd_config_free(c);
    cd_config_free(e);
    free(path);

    path = cdt_path(src, "config/demo.yaml");
    assert_int_equal(cd_config_load(path, &c, &err), 0);
    const struct cd_job_conf *j = cd_config_job(c, "demo");
    assert_non_null(j);
    assert_true(cd_str_has_suffix(j->file_sd[0].files.v[0], "/.state/demo/targets.json"));
    assert_true(j->file_sd[0].files.v[0][0] == '/');
    assert_null(strstr(j->file_sd[0].files.v[0], ".."));
    assert_true(cd_str_has_suffix(c->storage.path, "/.state/demo/collectord.db"));
    assert_true(cd_str_has_suffix(c->query.socket, "/.state/demo/collectord.sock"));
    assert_int_equal(j->scrape_interval_ms, 15000);
    for (size_t i = 0; i < j->n_http_kinds; i++) {
        const struct cd_kind_conf *k = &j->http_kinds[i];
        if (strcmp(k->kind, "cpu") == 0)
            assert_int_equal(k->seconds, 5);
        if (strcmp(k->kind, "goroutine_dump") == 0) {
            assert_true(k->enabled);
            assert_int_equal(k->interval_ms, 60000);
        }
        if (strcmp(k->kind, "trace") == 0) {
            assert_true(k->enabled);
            assert_int_equal(k->seconds, 1);
            assert_int_equal(k->interval_ms, 300000);
        }
    }
    cd_config_free(c);
    free(path);
}

static void test_cli(void **state)
{
    (void)state;
    const char *bin = cdt_env("CD_COLLECTORD");
    char *good = cdt_path(g_dir, "good.yaml");
    char *bad = cdt_path(g_dir, "bad.yaml");
    const char *gy = "scrape_configs:\n  - job_name: api\n"
                     "    static_configs: [{targets: [\"127.0.0.1:6060\"]}]\n"
                     "  - job_name: here\n    local_sd_configs: [{}]\n";
    const char *by = "global: {scrape_interval: 1}\nlimits: {max_targets: -1}\n";
    assert_int_equal(cdt_write_file(good, gy, strlen(gy)), 0);
    assert_int_equal(cdt_write_file(bad, by, strlen(by)), 0);
    char *out = NULL;
    char *argv1[] = {(char *)bin, "--check-config", "-c", good, NULL};
    int st = cdt_run(argv1, &out, 10000);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "api/http://127.0.0.1:6060"));
    assert_non_null(strstr(out, "http://127.0.0.1:6060/debug/pprof/profile?seconds=10"));
    assert_non_null(strstr(out, "local_sd_configs[0]"));
    assert_non_null(strstr(out, "discovered at runtime"));
    free(out);
    char *argv2[] = {(char *)bin, "--check-config", "-c", bad, NULL};
    st = cdt_run(argv2, &out, 10000);
    assert_int_equal(st, 1);
    free(out);
    char *argv3[] = {(char *)bin, "--dump-config", "--config", good, NULL};
    st = cdt_run(argv3, &out, 10000);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "scrape_timeout: 10s"));
    free(out);
    char *argv4[] = {(char *)bin, "--check-config", "-c", NULL};
    st = cdt_run(argv4, &out, 10000);
    assert_int_equal(st, 2);
    free(out);
    free(good);
    free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_parca_example),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_dump_roundtrip),
        cmocka_unit_test(test_reload_check),
        cmocka_unit_test(test_paths_and_secrets),
        cmocka_unit_test(test_yaml_features),
        cmocka_unit_test(test_merge_keys),
        cmocka_unit_test(test_installed_configs),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
