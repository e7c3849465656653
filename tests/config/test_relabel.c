/* Unit tests of relabel: the RE2-to-POSIX translation and every relabeling action, with
 * Prometheus's semantics (anchoring, $-expansion, empty values deleting labels, hashmod's MD5). */
#include "relabel.h"

#include "cdtest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void rx_ok(const char *re, const char *yes, const char *no)
{
    struct cd_regex rx;
    struct cd_err err;
    cd_err_init(&err);
    if (cd_regex_compile(&rx, re, &err) != 0)
        fail_msg("regex %s: %s", re, cd_err_msg(&err));
    if (yes != NULL && !cd_regex_match(&rx, yes))
        fail_msg("regex %s should match \"%s\"", re, yes);
    if (no != NULL && cd_regex_match(&rx, no))
        fail_msg("regex %s should not match \"%s\"", re, no);
    cd_regex_free(&rx);
}

static void rx_bad(const char *re, const char *says)
{
    struct cd_regex rx;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_regex_compile(&rx, re, &err), -EINVAL);
    if (strstr(cd_err_msg(&err), says) == NULL)
        fail_msg("regex %s: \"%s\" does not say \"%s\"", re, cd_err_msg(&err), says);
}

static void test_regex(void **state)
{
    (void)state;
    rx_ok("(.*)", "", NULL);
    rx_ok("foo", "foo", "foox");       /* anchored */
    rx_ok("foo|bar", "bar", "foobar"); /* the alternation is inside the anchors */
    rx_ok("a\\d+", "a123", "a12b");
    rx_ok("a\\D", "ax", "a1");
    rx_ok("\\w+\\s\\S", "ab_1 x", "ab- x");
    rx_ok("(?:ab)+c", "ababc", "abc_");
    rx_ok("(?i)Foo", "fOO", "fo");
    rx_ok("10\\.0\\.0\\.\\d{1,3}:6060", "10.0.0.12:6060", "10x0.0.1:6060");
    rx_ok("[\\d.]+", "1.2.3", "1-2");
    rx_ok("[a\\-z]+", "a-z", "b");
    rx_ok("[]a]+", "]a", "b");
    rx_ok("[^\\]]+", "abc", "a]");
    rx_ok("[\\^]", "^", "a");
    rx_ok("[[:alpha:]_]+", "ab_c", "a1");
    rx_ok("[\\w-]+", "a-b_c", "a.b");
    rx_ok("\\Qa.b*\\E", "a.b*", "axbb");
    rx_ok("\\x41\\x{42}", "AB", "ab");
    rx_ok("a{2}", "aa", "aaa");
    rx_ok("x{", "x{", NULL); /* a brace that is no repetition is literal, as in RE2 */
    rx_ok("a\\/b\\:c", "a/b:c", NULL);
    rx_ok("", "", "a");
    rx_bad("a+?", "lazy");
    rx_bad("a*?", "lazy");
    rx_bad("a{1,2}?", "lazy");
    rx_bad("(?s)x", "flags");
    rx_bad("\\pL", "Unicode");
    rx_bad("(a)\\1", "backreferences");
    rx_bad("\\q", "unsupported escape");
    rx_bad("[a", "missing closing ]");
    rx_bad("a{2000}", "above 1000");
    rx_bad("(", "");
}

static struct cd_relabel_rule rule(enum cd_relabel_action a, const char *src_csv, const char *re,
                                   const char *target, const char *repl)
{
    struct cd_relabel_rule r;
    memset(&r, 0, sizeof(r));
    r.action = a;
    if (src_csv != NULL) {
        r.source_labels_set = true;
        char *copy = strdup(src_csv), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            r.source_labels = realloc(r.source_labels, (r.n_source_labels + 1) * sizeof(char *));
            r.source_labels[r.n_source_labels++] = strdup(t);
        }
        free(copy);
    }
    if (re != NULL) {
        assert_int_equal(cd_regex_compile(&r.regex, re, NULL), 0);
        r.regex_set = true;
    }
    r.target_label = target ? strdup(target) : NULL;
    r.replacement = repl ? strdup(repl) : NULL;
    return r;
}

static void apply(struct cd_relabel_rule *rules, size_t n, struct cd_labels *l, int want)
{
    for (size_t i = 0; i < n; i++) {
        struct cd_err err;
        cd_err_init(&err);
        if (cd_relabel_validate(&rules[i], &err) != 0)
            fail_msg("rule %zu: %s", i, cd_err_msg(&err));
    }
    assert_int_equal(cd_relabel_apply(rules, n, l), want);
    for (size_t i = 0; i < n; i++)
        cd_relabel_rule_free(&rules[i]);
}

static struct cd_labels base(void)
{
    struct cd_labels l = {0};
    cd_labels_set(&l, "__address__", "10.0.0.1:6060");
    cd_labels_set(&l, "job", "api");
    cd_labels_set(&l, "__meta_local_pid", "42");
    cd_labels_set(&l, "__meta_local_exe", "/usr/bin/Server");
    cd_labels_set(&l, "team", "pay");
    return l;
}

static void test_replace(void **state)
{
    (void)state;
    struct cd_labels l = base();
    struct cd_relabel_rule r[] = {
        /* defaults: regex (.*), replacement $1 */
        rule(CD_RELABEL_REPLACE, "job", NULL, "copy", NULL),
        rule(CD_RELABEL_REPLACE, "__address__", "(.*):(\\d+)", "host", "$1"),
        rule(CD_RELABEL_REPLACE, "__address__", "(.*):(\\d+)", "port_${2}", "p$2"),
        rule(CD_RELABEL_REPLACE, "__address__", "(?P<h>[^:]+):.*", "named", "${h}!"),
        rule(CD_RELABEL_REPLACE, "job,team", "api;(.*)", "both", "$1$$"),
        rule(CD_RELABEL_REPLACE, "job", "nomatch", "skipped", "x"),
        rule(CD_RELABEL_REPLACE, "job", "(.*)", "weird", "$1x-${1}x"), /* $1x is group "1x" */
        rule(CD_RELABEL_REPLACE, "nothing", NULL, "team", NULL),       /* empty value deletes */
    };
    apply(r, sizeof(r) / sizeof(r[0]), &l, 1);
    assert_string_equal(cd_labels_get(&l, "copy"), "api");
    assert_string_equal(cd_labels_get(&l, "host"), "10.0.0.1");
    assert_string_equal(cd_labels_get(&l, "port_6060"), "p6060");
    assert_string_equal(cd_labels_get(&l, "named"), "10.0.0.1!");
    assert_string_equal(cd_labels_get(&l, "both"), "pay$");
    assert_null(cd_labels_get(&l, "skipped"));
    assert_string_equal(cd_labels_get(&l, "weird"), "-apix");
    assert_null(cd_labels_get(&l, "team"));
    cd_labels_free(&l);
}

static void test_keep_drop(void **state)
{
    (void)state;
    struct cd_labels l = base();
    struct cd_relabel_rule r1[] = {rule(CD_RELABEL_KEEP, "job", "api|web", NULL, NULL)};
    apply(r1, 1, &l, 1);
    struct cd_relabel_rule r2[] = {rule(CD_RELABEL_KEEP, "job", "ap", NULL, NULL)};
    apply(r2, 1, &l, 0); /* anchored: "ap" does not match "api" */
    struct cd_relabel_rule r3[] = {
        rule(CD_RELABEL_DROP, "__meta_local_exe", ".*/Server", NULL, NULL)};
    apply(r3, 1, &l, 0);
    struct cd_relabel_rule r4[] = {rule(CD_RELABEL_DROP, "missing", ".+", NULL, NULL)};
    apply(r4, 1, &l, 1);
    cd_labels_set(&l, "a", "x");
    cd_labels_set(&l, "b", "x");
    struct cd_relabel_rule r5[] = {rule(CD_RELABEL_KEEPEQUAL, "a", NULL, "b", NULL)};
    apply(r5, 1, &l, 1);
    struct cd_relabel_rule r6[] = {rule(CD_RELABEL_DROPEQUAL, "a", NULL, "b", NULL)};
    apply(r6, 1, &l, 0);
    struct cd_relabel_rule r7[] = {rule(CD_RELABEL_KEEPEQUAL, "a", NULL, "job", NULL)};
    apply(r7, 1, &l, 0);
    cd_labels_free(&l);
}

static void test_hashmod_labelmap(void **state)
{
    (void)state;
    struct cd_labels l = base();
    struct cd_relabel_rule r[] = {
        rule(CD_RELABEL_HASHMOD, "__address__", NULL, "shard", NULL),
        rule(CD_RELABEL_LABELMAP, NULL, "__meta_local_(.+)", NULL, "proc_$1"),
        rule(CD_RELABEL_LOWERCASE, "__meta_local_exe", NULL, "exe_lower", NULL),
        rule(CD_RELABEL_UPPERCASE, "job", NULL, "job_upper", NULL),
    };
    r[0].modulus = 7;
    apply(r, sizeof(r) / sizeof(r[0]), &l, 1);
    /* Prometheus: md5, last 8 bytes big-endian, modulo (python: 3 for this address) */
    assert_string_equal(cd_labels_get(&l, "shard"), "3");
    assert_string_equal(cd_labels_get(&l, "proc_pid"), "42");
    assert_string_equal(cd_labels_get(&l, "proc_exe"), "/usr/bin/Server");
    assert_string_equal(cd_labels_get(&l, "exe_lower"), "/usr/bin/server");
    assert_string_equal(cd_labels_get(&l, "job_upper"), "API");
    cd_labels_free(&l);

    l = base();
    struct cd_relabel_rule h[] = {rule(CD_RELABEL_HASHMOD, "job,team", NULL, "s", NULL)};
    cd_labels_set(&l, "job", "a");
    cd_labels_set(&l, "team", "b");
    h[0].modulus = 1000;
    apply(h, 1, &l, 1);
    assert_string_equal(cd_labels_get(&l, "s"), "74"); /* md5("a;b") */
    cd_labels_free(&l);
}

static void test_labeldrop_keep(void **state)
{
    (void)state;
    struct cd_labels l = base();
    struct cd_relabel_rule r[] = {rule(CD_RELABEL_LABELDROP, NULL, "__meta_.*", NULL, NULL)};
    apply(r, 1, &l, 1);
    assert_int_equal(l.n, 3);
    assert_null(cd_labels_get(&l, "__meta_local_pid"));
    struct cd_relabel_rule k[] = {rule(CD_RELABEL_LABELKEEP, NULL, "job|__address__", NULL, NULL)};
    apply(k, 1, &l, 1);
    assert_int_equal(l.n, 2);
    assert_null(cd_labels_get(&l, "team"));
    cd_labels_free(&l);
}

static void test_validate(void **state)
{
    (void)state;
    struct {
        struct cd_relabel_rule r;
        const char *says;
    } cases[] = {
        {rule(CD_RELABEL_REPLACE, "a", NULL, NULL, NULL), "requires target_label"},
        {rule(CD_RELABEL_REPLACE, "a", NULL, "1bad", NULL), "not a valid target_label"},
        {rule(CD_RELABEL_REPLACE, "a", NULL, "x-$1", NULL), "not a valid target_label"},
        {rule(CD_RELABEL_HASHMOD, "a", NULL, "t", NULL), "non-zero modulus"},
        {rule(CD_RELABEL_LOWERCASE, "a", NULL, "t", "x"), "replacement can not be set"},
        {rule(CD_RELABEL_KEEPEQUAL, "a", "x", "t", NULL), "no other fields"},
        {rule(CD_RELABEL_LABELDROP, "a", "x", NULL, NULL), "takes only regex"},
        {rule(CD_RELABEL_LABELMAP, NULL, "x", NULL, "bad-name"), "not a valid replacement"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cd_err err;
        cd_err_init(&err);
        assert_int_equal(cd_relabel_validate(&cases[i].r, &err), -EINVAL);
        if (strstr(cd_err_msg(&err), cases[i].says) == NULL)
            fail_msg("case %zu: \"%s\"", i, cd_err_msg(&err));
        cd_relabel_rule_free(&cases[i].r);
    }
    enum cd_relabel_action a;
    assert_int_equal(cd_relabel_action_parse("LabelMap", &a), 0);
    assert_int_equal(a, CD_RELABEL_LABELMAP);
    assert_int_equal(cd_relabel_action_parse("nope", &a), -EINVAL);
    assert_true(cd_relabel_label_name_valid("_a1"));
    assert_false(cd_relabel_label_name_valid("1a"));
    assert_false(cd_relabel_label_name_valid("a-b"));
    assert_false(cd_relabel_label_name_valid(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regex),          cmocka_unit_test(test_replace),
        cmocka_unit_test(test_keep_drop),      cmocka_unit_test(test_hashmod_labelmap),
        cmocka_unit_test(test_labeldrop_keep), cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
