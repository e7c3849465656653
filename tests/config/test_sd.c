/* Unit tests of the discovery workers: file_sd parsing and refresh (broken files keep their last
 * good targets), Go build info detection (real Go binaries and hand-made ELF files for the old
 * pointer form), and local discovery against a fake /proc tree. */
#include "config.h"
#include "sd_dns.h"
#include "sd_file.h"
#include "sd_local.h"
#include "str.h"

#include "cdtest.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *g_dir;

static int setup(void **state)
{
    (void)state;
    g_dir = cdt_tmpdir("sd");
    return g_dir != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cdt_rmrf(g_dir);
    free(g_dir);
    return 0;
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char *p = cdt_path(dir, name);
    assert_int_equal(cdt_write_file(p, text, strlen(text)), 0);
    free(p);
}

static int parse(const char *name, const char *text, struct cd_groups *gs, struct cd_err *err)
{
    cd_err_init(err);
    return cd_sd_file_parse(name, text, strlen(text), 1000, gs, err);
}

static void test_file_formats(void **state)
{
    (void)state;
    struct cd_groups gs = {0};
    struct cd_err err;
    assert_int_equal(parse("/t/a.json",
                           "[{\"targets\": [\"127.0.0.1:6060\", \"gops://127.0.0.1:4321\"], "
                           "\"labels\": {\"env\": \"prod\"}, \"extra\": 1},"
                           " {\"targets\": [\"h:1\"]}]",
                           &gs, &err),
                     0);
    assert_int_equal(gs.n, 2);
    assert_int_equal(gs.v[0].n, 2);
    assert_string_equal(gs.v[0].v[1].address, "gops://127.0.0.1:4321");
    assert_string_equal(cd_labels_get(&gs.v[0].labels, "env"), "prod");
    assert_string_equal(cd_labels_get(&gs.v[0].labels, "__meta_filepath"), "/t/a.json");
    assert_string_equal(cd_labels_get(&gs.v[1].labels, "__meta_filepath"), "/t/a.json");
    cd_groups_free(&gs);

    assert_int_equal(parse("/t/b.yaml",
                           "- targets: [\"h:1\", h:2]\n  labels: {team: a}\n- targets: []\n", &gs,
                           &err),
                     0);
    assert_int_equal(gs.n, 2);
    assert_int_equal(gs.v[0].n, 2);
    assert_string_equal(gs.v[0].v[1].address, "h:2");
    assert_int_equal(gs.v[1].n, 0);
    cd_groups_free(&gs);

    assert_int_equal(parse("/t/empty.yml", "", &gs, &err), 0);
    assert_int_equal(gs.n, 0);

    struct {
        const char *name, *text, *says;
    } bad[] = {
        {"/t/x.json", "[{\"targets\": [\"h:1\"]", "/t/x.json:1:"},
        {"/t/x.json", "{\"targets\": []}", "expected a list of target groups"},
        {"/t/x.json", "[{\"targets\": \"h:1\"}]", "targets must be a list"},
        {"/t/x.json", "[{\"targets\": [1]}]", "expected an address"},
        {"/t/x.json", "[{\"labels\": {\"a-b\": \"x\"}}]", "\"a-b\" is not a valid label name"},
        {"/t/x.json", "[{\"labels\": {\"a\": 1}}]", "label a: expected a string"},
        {"/t/x.json", "[{\"labels\": {\"a\": \"1\", \"a\": \"2\"}}]", "duplicate"},
        {"/t/x.yaml", "- targets: [h:1]\n  lables: {a: b}\n", "/t/x.yaml:2:3: unknown"},
        {"/t/x.yaml", "targets: [h:1]\n", "/t/x.yaml:1:1: expected a list"},
        {"/t/x.yaml", "- targets: [h:1\n", "/t/x.yaml:2:1: YAML syntax error"},
        {"/t/x.yaml", "- labels: {\"9x\": b}\n", "not a valid label name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(bad[i].name, bad[i].text, &gs, &err);
        if (rc == 0 || strstr(cd_err_msg(&err), bad[i].says) == NULL)
            fail_msg("case %zu: rc %d, \"%s\"", i, rc, cd_err_msg(&err));
        assert_int_equal(gs.n, 0);
    }

    /* the target limit */
    cd_err_init(&err);
    const char *three = "[{\"targets\": [\"a:1\", \"b:1\", \"c:1\"]}]";
    assert_int_equal(cd_sd_file_parse("/t/m.json", three, strlen(three), 2, &gs, &err), -E2BIG);
    assert_non_null(strstr(cd_err_msg(&err), "more than 2 targets"));
    cd_groups_free(&gs);
}

static void test_file_refresh(void **state)
{
    (void)state;
    char *dir = cdt_path(g_dir, "targets");
    assert_int_equal(mkdir(dir, 0755), 0);
    struct cd_file_sd_conf conf = {0};
    char *pat = cdt_path(dir, "*.json");
    char *missing = cdt_path(g_dir, "nodir/*.yaml");
    cd_strv_push(&conf.files, pat);
    cd_strv_push(&conf.files, missing);
    conf.refresh_interval_ms = 60000;
    struct cd_sd_file s;
    cd_sd_file_init(&s, &conf, 1000);
    struct cd_groups gs = {0};

    /* nothing yet, and a missing directory is no error */
    assert_int_equal(cd_sd_file_refresh(&s, &gs), 0);
    assert_int_equal(gs.n, 0);
    assert_int_equal(s.errors.n, 0);

    write_text(dir, "a.json", "[{\"targets\": [\"a:1\"]}]");
    write_text(dir, "b.json", "[{\"targets\": [\"b:1\", \"b:2\"]}]");
    write_text(dir, "c.txt", "not matched");
    assert_int_equal(cd_sd_file_refresh(&s, &gs), 0);
    assert_int_equal(cd_groups_count_entries(&gs), 3);
    cd_groups_free(&gs);

    /* a broken file keeps its last good targets and says so */
    write_text(dir, "b.json", "[{\"targets\": [\"b:1\"");
    assert_int_equal(cd_sd_file_refresh(&s, &gs), 0);
    assert_int_equal(cd_groups_count_entries(&gs), 3);
    assert_int_equal(s.errors.n, 1);
    assert_non_null(strstr(s.errors.v[0], "b.json"));
    assert_non_null(strstr(s.errors.v[0], "keeping its previous targets"));
    cd_groups_free(&gs);

    /* a file broken from the start contributes nothing */
    write_text(dir, "d.json", "{");
    assert_int_equal(cd_sd_file_refresh(&s, &gs), 0);
    assert_int_equal(cd_groups_count_entries(&gs), 3);
    assert_int_equal(s.errors.n, 2);
    cd_groups_free(&gs);

    /* fixed, and a file removed */
    write_text(dir, "b.json", "[{\"targets\": [\"b:9\"]}]");
    char *a = cdt_path(dir, "a.json");
    char *d = cdt_path(dir, "d.json");
    unlink(a);
    unlink(d);
    assert_int_equal(cd_sd_file_refresh(&s, &gs), 0);
    assert_int_equal(cd_groups_count_entries(&gs), 1);
    assert_string_equal(gs.v[0].v[0].address, "b:9");
    assert_int_equal(s.errors.n, 0);
    cd_groups_free(&gs);

    struct cd_strv dirs = {0};
    assert_int_equal(cd_sd_file_dirs(&conf, &dirs), 0);
    assert_int_equal(dirs.n, 2);
    assert_string_equal(dirs.v[0], dir);
    cd_strv_free(&dirs);

    cd_sd_file_destroy(&s);
    cd_strv_free(&conf.files);
    free(a);
    free(d);
    free(pat);
    free(missing);
    free(dir);
}

/* ---- Go build info -------------------------------------------------------------------------- */

static void put(unsigned char *b, size_t off, uint64_t v, int n, bool be)
{
    for (int i = 0; i < n; i++)
        b[off + (size_t)(be ? n - 1 - i : i)] = (unsigned char)(v >> (8 * i));
}

/* A minimal ELF with one writable PT_LOAD segment at file offset 0x1000 / vaddr 0x401000 that
 * holds a build info blob; no section headers, so the reader must fall back to the segment. */
static char *make_elf(const char *name, bool is64, bool be, bool inline_form, const char *vers)
{
    unsigned char b[0x2000];
    memset(b, 0, sizeof(b));
    memcpy(b,
           "\x7f"
           "ELF",
           4);
    b[4] = is64 ? 2 : 1;
    b[5] = be ? 2 : 1;
    b[6] = 1;
    put(b, 16, 2, 2, be);
    put(b, 18, is64 ? 0x3e : 3, 2, be);
    put(b, 20, 1, 4, be);
    const uint64_t off = 0x1000, vaddr = 0x401000;
    if (is64) {
        put(b, 32, 64, 8, be); /* e_phoff */
        put(b, 52, 64, 2, be); /* e_ehsize */
        put(b, 54, 56, 2, be); /* e_phentsize */
        put(b, 56, 1, 2, be);  /* e_phnum */
        put(b, 58, 64, 2, be); /* e_shentsize */
        unsigned char *p = b + 64;
        put(p, 0, 1, 4, be); /* PT_LOAD */
        put(p, 4, 6, 4, be); /* PF_R|PF_W */
        put(p, 8, off, 8, be);
        put(p, 16, vaddr, 8, be);
        put(p, 24, vaddr, 8, be);
        put(p, 32, 0x1000, 8, be);
        put(p, 40, 0x1000, 8, be);
    } else {
        put(b, 28, 52, 4, be);
        put(b, 40, 52, 2, be);
        put(b, 42, 32, 2, be);
        put(b, 44, 1, 2, be);
        put(b, 46, 40, 2, be);
        unsigned char *p = b + 52;
        put(p, 0, 1, 4, be);
        put(p, 4, off, 4, be);
        put(p, 8, vaddr, 4, be);
        put(p, 12, vaddr, 4, be);
        put(p, 16, 0x1000, 4, be);
        put(p, 20, 0x1000, 4, be);
        put(p, 24, 6, 4, be);
    }
    unsigned char *d = b + off + 0x40; /* 16-aligned, not at the very start */
    memcpy(d, "\xff Go buildinf:", 14);
    int ps = is64 ? 8 : 4;
    d[14] = (unsigned char)ps;
    size_t vl = strlen(vers);
    if (inline_form) {
        d[15] = 2 | (be ? 1 : 0);
        d[32] = (unsigned char)vl;
        memcpy(d + 33, vers, vl);
    } else {
        d[15] = be ? 1 : 0;
        put(d, 16, vaddr + 0x100, ps, be); /* -> string header */
        put(d, 16 + ps, 0, ps, be);
        unsigned char *hdr = b + off + 0x100;
        put(hdr, 0, vaddr + 0x200, ps, be);
        put(hdr, ps, vl, ps, be);
        memcpy(b + off + 0x200, vers, vl);
    }
    char *path = cdt_path(g_dir, name);
    assert_int_equal(cdt_write_file(path, b, sizeof(b)), 0);
    return path;
}

static void test_go_version(void **state)
{
    (void)state;
    char v[64];
    char go[PATH_MAX];
    assert_non_null(realpath(cdt_env("CD_GO"), go));
    assert_int_equal(cd_sd_local_go_version(go, v, sizeof(v)), 0);
    assert_true(cd_str_has_prefix(v, "go1."));
    const char *fleet = getenv("CD_FLEET");
    if (fleet != NULL && access(fleet, R_OK) == 0) {
        assert_int_equal(cd_sd_local_go_version(fleet, v, sizeof(v)), 0);
        assert_true(cd_str_has_prefix(v, "go1."));
    }
    assert_int_equal(cd_sd_local_go_version("/bin/sh", v, sizeof(v)), -ENOENT);
    assert_int_equal(cd_sd_local_go_version("/nonexistent", v, sizeof(v)), -ENOENT);
    char *notelf = cdt_path(g_dir, "notelf");
    assert_int_equal(cdt_write_file(notelf, "#!/bin/sh\n", 10), 0);
    assert_int_equal(cd_sd_local_go_version(notelf, v, sizeof(v)), -ENOENT);
    free(notelf);

    struct {
        bool is64, be, inl;
        const char *vers;
    } cases[] = {
        {true, false, false, "go1.16.15"}, /* the pointer form of Go <= 1.17 */
        {false, true, false, "go1.12"},    /* 32-bit big-endian, pointer form */
        {true, false, true, "go1.21.0"},   /* inline strings, found through the segment */
        {false, false, true, "go1.20.1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "elf%zu", i);
        char *p = make_elf(name, cases[i].is64, cases[i].be, cases[i].inl, cases[i].vers);
        memset(v, 0, sizeof(v));
        int rc = cd_sd_local_go_version(p, v, sizeof(v));
        if (rc != 0 || strcmp(v, cases[i].vers) != 0)
            fail_msg("case %zu: rc %d version \"%s\"", i, rc, v);
        free(p);
    }
    /* an empty version string means "not Go", as in debug/buildinfo */
    char *p = make_elf("elfempty", true, false, false, "");
    assert_int_equal(cd_sd_local_go_version(p, v, sizeof(v)), -ENOENT);
    free(p);
}

/* ---- local discovery on a fake /proc ---------------------------------------------------------
 */

static void fake_proc(const char *proc, int pid, const char *comm, const char *exe,
                      const char *environ_text, size_t environ_len, const unsigned long *inodes,
                      size_t n_inodes)
{
    char d[PATH_MAX], p[PATH_MAX + 64], text[512];
    snprintf(d, sizeof(d), "%s/%d", proc, pid);
    assert_int_equal(mkdir(d, 0755), 0);
    snprintf(text, sizeof(text),
             "%d (%s) S 1 %d %d 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 8 0 %d 1000 100 "
             "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
             pid, comm, pid, pid, 5000 + pid);
    snprintf(p, sizeof(p), "%s/stat", d);
    assert_int_equal(cdt_write_file(p, text, strlen(text)), 0);
    snprintf(p, sizeof(p), "%s/status", d);
    snprintf(text, sizeof(text), "Name:\t%s\nUid:\t1000\t1000\t1000\t1000\n", comm);
    assert_int_equal(cdt_write_file(p, text, strlen(text)), 0);
    snprintf(p, sizeof(p), "%s/exe", d);
    assert_int_equal(symlink(exe, p), 0);
    snprintf(p, sizeof(p), "%s/root", d);
    assert_int_equal(symlink("/", p), 0);
    snprintf(p, sizeof(p), "%s/cwd", d);
    assert_int_equal(symlink(g_dir, p), 0);
    snprintf(p, sizeof(p), "%s/environ", d);
    assert_int_equal(cdt_write_file(p, environ_text, environ_len), 0);
    snprintf(p, sizeof(p), "%s/fd", d);
    assert_int_equal(mkdir(p, 0755), 0);
    for (size_t i = 0; i < n_inodes; i++) {
        char l[64];
        snprintf(p, sizeof(p), "%s/fd/%zu", d, i + 3);
        snprintf(l, sizeof(l), "socket:[%lu]", inodes[i]);
        assert_int_equal(symlink(l, p), 0);
    }
}

static void test_local_fake_proc(void **state)
{
    (void)state;
    char go[PATH_MAX];
    assert_non_null(realpath(cdt_env("CD_GO"), go));
    char *proc = cdt_path(g_dir, "proc");
    char *gops = cdt_path(g_dir, "gops");
    char *xdg = cdt_path(g_dir, "xdg");
    char *home = cdt_path(g_dir, "home");
    char buf[PATH_MAX + 64];
    assert_int_equal(mkdir(proc, 0755), 0);
    assert_int_equal(mkdir(gops, 0755), 0);
    snprintf(buf, sizeof(buf), "%s/net", proc);
    assert_int_equal(mkdir(buf, 0755), 0);
    snprintf(buf, sizeof(buf), "mkdir -p %s/gops %s/.config/gops", xdg, home);
    assert_int_equal(system(buf), 0);

    /* LISTEN sockets: 777 on 127.0.0.1:4321 (gops of 100), 778 on 0.0.0.0:1 (nothing answers
     * HTTP there: the probe fails fast), 779 on [::]:4322 (gops of 400), 780 127.0.0.1:4323
     * (gops of 500), and 781 an established socket that is no listener. */
    const char *tcp =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 0100007F:10E1 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        "
        "0 777 1 0000000000000000 100 0 0 10 0\n"
        "   1: 00000000:0001 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        "
        "0 778 1 0000000000000000 100 0 0 10 0\n"
        "   2: 0100007F:10E3 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        "
        "0 780 1 0000000000000000 100 0 0 10 0\n"
        "   3: 0100007F:10E4 0100007F:9999 01 00000000:00000000 00:00000000 00000000  1000        "
        "0 781 1 0000000000000000 100 0 0 10 0\n"
        "   4: 0100007F:10E4 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        "
        "0 782 1 0000000000000000 100 0 0 10 0\n";
    const char *tcp6 = "  sl  local_address                         remote_address                "
                       "        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
                       "   0: 00000000000000000000000000000000:10E2 "
                       "00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 "
                       "00000000  1000        0 779 1 0000000000000000 100 0 0 10 0\n";
    write_text(proc, "net/tcp", tcp);
    write_text(proc, "net/tcp6", tcp6);

    char env[1024];
    int n;
    unsigned long in100[] = {777, 778, 781};
    n = snprintf(env, sizeof(env), "HOME=/nowhere%cGOPS_CONFIG_DIR=%s%cPATH=/bin", 0, gops, 0);
    fake_proc(proc, 100, "app one", go, env, (size_t)n, in100, 3);
    write_text(gops, "100", "4321");
    /* a stale port file: pid 200 does not listen on 9999 */
    unsigned long in200[] = {781};
    fake_proc(proc, 200, "stale", go, env, (size_t)n, in200, 1);
    write_text(gops, "200", "9999\n");
    /* not Go */
    fake_proc(proc, 300, "sh", "/bin/sh", env, (size_t)n, in200, 1);
    write_text(gops, "300", "4321");
    /* XDG_CONFIG_HOME */
    unsigned long in400[] = {779};
    n = snprintf(env, sizeof(env), "XDG_CONFIG_HOME=%s%cHOME=/nowhere", xdg, 0);
    fake_proc(proc, 400, "xdg", go, env, (size_t)n, in400, 1);
    write_text(xdg, "gops/400", " 4322 \n");
    /* HOME */
    unsigned long in500[] = {780};
    n = snprintf(env, sizeof(env), "HOME=%s", home);
    fake_proc(proc, 500, "home", go, env, (size_t)n, in500, 1);
    write_text(home, ".config/gops/500", "4323");

    /* a relative $GOPS_CONFIG_DIR: the process's working directory (g_dir here) */
    unsigned long in600[] = {782};
    n = snprintf(env, sizeof(env), "GOPS_CONFIG_DIR=rel");
    fake_proc(proc, 600, "rel", go, env, (size_t)n, in600, 1);
    snprintf(buf, sizeof(buf), "mkdir -p %s/rel", g_dir);
    assert_int_equal(system(buf), 0);
    write_text(g_dir, "rel/600", "4324");

    struct cd_local_sd_conf conf;
    memset(&conf, 0, sizeof(conf));
    conf.gops = true;
    conf.pprof = true;
    conf.refresh_interval_ms = 30000;
    conf.probe_timeout_ms = 500;
    conf.max_probes = 10;
    conf.max_processes = 100;
    struct cd_sd_local s;
    assert_int_equal(cd_sd_local_init(&s, &conf, "", proc), 0);
    struct cd_groups gs = {0};
    assert_int_equal(cd_sd_local_refresh(&s, &gs), 0);
    for (size_t i = 0; i < s.errors.n; i++)
        print_message("note: %s\n", s.errors.v[i]);
    assert_int_equal(gs.n, 1);
    const struct cd_group *g = &gs.v[0];
    for (size_t i = 0; i < g->n; i++)
        print_message("found %s pid=%s\n", g->v[i].address, cd_labels_get(&g->v[i].labels, "pid"));
    assert_int_equal(g->n, 4);
    assert_string_equal(g->v[0].address, "gops://127.0.0.1:4321");
    const struct cd_labels *l = &g->v[0].labels;
    assert_string_equal(cd_labels_get(l, "pid"), "100");
    assert_string_equal(cd_labels_get(l, "exe"), go);
    assert_true(cd_str_has_prefix(cd_labels_get(l, "go_version"), "go1."));
    assert_string_equal(cd_labels_get(l, "__meta_local_comm"), "app one");
    assert_string_equal(cd_labels_get(l, "__meta_local_uid"), "1000");
    assert_string_equal(cd_labels_get(l, "__meta_local_source"), "gops");
    assert_string_equal(cd_labels_get(l, "__meta_local_listen_address"), "127.0.0.1:4321");
    assert_string_equal(g->v[1].address, "gops://127.0.0.1:4322"); /* [::] is dual-stack */
    assert_string_equal(cd_labels_get(&g->v[1].labels, "pid"), "400");
    assert_string_equal(g->v[2].address, "gops://127.0.0.1:4323");
    assert_string_equal(cd_labels_get(&g->v[2].labels, "pid"), "500");
    assert_string_equal(g->v[3].address, "gops://127.0.0.1:4324");
    assert_int_equal(s.probes_sent, 1); /* port 1 of pid 100 */
    cd_groups_free(&gs);

    /* steady state: nothing is probed again, the executable is not re-read */
    assert_int_equal(cd_sd_local_refresh(&s, &gs), 0);
    assert_int_equal(gs.v[0].n, 4);
    assert_int_equal(s.probes_sent, 0);
    cd_groups_free(&gs);

    /* the process goes away: so do its targets */
    snprintf(buf, sizeof(buf), "rm -rf %s/100", proc);
    assert_int_equal(system(buf), 0);
    assert_int_equal(cd_sd_local_refresh(&s, &gs), 0);
    assert_int_equal(gs.v[0].n, 3);
    cd_groups_free(&gs);
    cd_sd_local_destroy(&s);

    /* the exe filter and gops: false */
    assert_int_equal(cd_regex_compile(&conf.exe, ".*/nothing-like-this", NULL), 0);
    conf.exe_set = true;
    assert_int_equal(cd_sd_local_init(&s, &conf, "", proc), 0);
    assert_int_equal(cd_sd_local_refresh(&s, &gs), 0);
    assert_int_equal(gs.v[0].n, 0);
    cd_groups_free(&gs);
    cd_sd_local_destroy(&s);
    cd_regex_free(&conf.exe);
    free(proc);
    free(gops);
    free(xdg);
    free(home);
}

static void test_dns_localhost(void **state)
{
    (void)state;
    struct cd_group g;
    memset(&g, 0, sizeof(g));
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_sd_dns_lookup("localhost", CD_DNS_A, 6060, &g, &err), 0);
    assert_true(g.n >= 1);
    assert_string_equal(g.v[0].address, "127.0.0.1:6060");
    assert_string_equal(cd_labels_get(&g.labels, "__meta_dns_name"), "localhost");
    cd_group_free(&g);
    memset(&g, 0, sizeof(g));
    cd_err_init(&err);
    assert_true(cd_sd_dns_lookup("no-such-host.invalid", CD_DNS_A, 1, &g, &err) < 0);
    assert_non_null(strstr(cd_err_msg(&err), "no-such-host.invalid"));
    cd_group_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_formats),  cmocka_unit_test(test_file_refresh),
        cmocka_unit_test(test_go_version),    cmocka_unit_test(test_local_fake_proc),
        cmocka_unit_test(test_dns_localhost),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
