/* Scheduler rules on the fake clock: spread, absolute deadlines, overlap, backoff, exclusivity,
 * serial groups, the global limit and captures. No sleeping: the clock is advanced by hand. */
#include "cdtest.h"

#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000LL /* a wall time on a whole minute */

struct env {
    struct cd_clock clock;
    struct cd_scheduler *s;
};

static void env_init(struct env *v, const struct cd_scheduler_opts *o)
{
    cd_clock_init_fake(&v->clock, T0);
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scheduler_new(&v->clock, o, &v->s, &err), 0);
}

static struct cd_scheduler_entry *add(struct env *v, const char *id, const char *kind,
                                      const char *proc, const char *serial, int64_t iv,
                                      enum cd_exclusive ex)
{
    struct cd_scheduler_spec sp = {id, kind, proc, serial, iv, ex};
    struct cd_scheduler_entry *e = NULL;
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scheduler_add(v->s, &sp, (void *)id, &e, &err), 0);
    return e;
}

/* Polls everything that can start now. */
static int poll_all(struct env *v, struct cd_scheduler_start *out, int max)
{
    int n = 0;
    while (n < max && cd_scheduler_poll(v->s, false, &out[n]) == 1)
        n++;
    return n;
}

static void test_spread(void **state)
{
    (void)state;
    /* 1000 targets on a 10 s interval: offsets cover the interval roughly evenly. */
    int buckets[10] = {0};
    char id[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "job/http://127.0.0.1:%d", 20000 + i);
        int64_t off = cd_scheduler_offset(id, "heap", 10000);
        assert_true(off >= 0 && off < 10000);
        buckets[off / 1000]++;
    }
    for (int b = 0; b < 10; b++)
        assert_true(buckets[b] > 60 && buckets[b] < 140);
    /* Stable: the same target and kind always land on the same offset. */
    assert_int_equal(cd_scheduler_offset("a", "cpu", 60000),
                     cd_scheduler_offset("a", "cpu", 60000));
}

static void test_absolute_deadlines(void **state)
{
    (void)state;
    struct env v;
    env_init(&v, NULL);
    struct cd_scheduler_entry *e = add(&v, "t1", "heap", NULL, NULL, 1000, CD_EXCL_NONE);
    int64_t first = cd_scheduler_due(e);
    int64_t now = cd_clock_mono_ms(&v.clock);
    assert_true(first >= now && first < now + 1000);
    assert_int_equal(first - now,
                     (cd_scheduler_offset("t1", "heap", 1000) - (T0 % 1000) + 1000) % 1000);
    assert_int_equal(cd_scheduler_next_wake(v.s), first);

    struct cd_scheduler_start st;
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 0);
    /* Each run ends at a different time (up to 900 ms late): the slots never drift. */
    for (int i = 0; i < 50; i++) {
        int64_t due = cd_scheduler_next_wake(v.s);
        assert_int_equal(due, first + i * 1000);
        cd_clock_advance(&v.clock, due - cd_clock_mono_ms(&v.clock) + (i % 7));
        assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
        assert_int_equal(st.due_mono_ms, due);
        assert_int_equal(st.lateness_ms, i % 7);
        assert_false(st.capture);
        cd_clock_advance(&v.clock, (i * 131) % 900);
        cd_scheduler_done(v.s, e, CD_SCHED_OK);
    }
    struct cd_scheduler_stats ss;
    cd_scheduler_stats(v.s, &ss);
    assert_int_equal(ss.started, 50);
    assert_int_equal(ss.skipped[CD_SKIP_OVERLAP], 0);
    cd_scheduler_free(v.s);
}

static void test_no_overlap(void **state)
{
    (void)state;
    struct env v;
    env_init(&v, NULL);
    struct cd_scheduler_entry *e = add(&v, "t1", "cpu", "h#1", NULL, 2000, CD_EXCL_CPU);
    cd_clock_advance(&v.clock, cd_scheduler_due(e) - cd_clock_mono_ms(&v.clock));
    struct cd_scheduler_start st;
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
    int64_t due0 = st.due_mono_ms;
    /* A 5 s profile on a 2 s interval: nothing starts while it runs. */
    for (int i = 0; i < 50; i++) {
        cd_clock_advance(&v.clock, 100);
        assert_int_equal(cd_scheduler_poll(v.s, false, &st), 0);
    }
    cd_scheduler_done(v.s, e, CD_SCHED_OK);
    /* Slots at +2 s and +4 s were skipped as overlap; the next is +6 s, on the grid. */
    struct cd_scheduler_stats ss;
    cd_scheduler_stats(v.s, &ss);
    assert_int_equal(ss.skipped[CD_SKIP_OVERLAP], 2);
    assert_int_equal(cd_scheduler_next_wake(v.s), due0 + 6000);
    cd_scheduler_free(v.s);
}

static void test_backoff(void **state)
{
    (void)state;
    struct cd_scheduler_opts o = {.backoff_max_ms = 8000};
    struct env v;
    env_init(&v, &o);
    struct cd_scheduler_entry *e = add(&v, "t1", "heap", NULL, NULL, 1000, CD_EXCL_NONE);
    struct cd_scheduler_start st;
    int64_t expect_gap[] = {1000, 2000, 4000, 8000, 8000, 8000};
    int64_t prev = -1;
    for (int i = 0; i < 6; i++) {
        cd_clock_advance(&v.clock, cd_scheduler_next_wake(v.s) - cd_clock_mono_ms(&v.clock));
        assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
        if (prev >= 0)
            assert_int_equal(st.due_mono_ms - prev, expect_gap[i - 1]);
        prev = st.due_mono_ms;
        cd_clock_advance(&v.clock, 10);
        cd_scheduler_done(v.s, e, CD_SCHED_FAIL);
        assert_int_equal(cd_scheduler_failures(e), i + 1);
    }
    assert_int_equal(cd_scheduler_next_wake(v.s) - prev, 8000);
    /* Busy is not a failure: the next slot as usual, the count unchanged. */
    cd_clock_advance(&v.clock, cd_scheduler_next_wake(v.s) - cd_clock_mono_ms(&v.clock));
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
    prev = st.due_mono_ms;
    cd_scheduler_done(v.s, e, CD_SCHED_BUSY);
    assert_int_equal(cd_scheduler_failures(e), 6);
    assert_int_equal(cd_scheduler_next_wake(v.s) - prev, 1000);
    /* Success resets. */
    cd_clock_advance(&v.clock, cd_scheduler_next_wake(v.s) - cd_clock_mono_ms(&v.clock));
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
    prev = st.due_mono_ms;
    cd_scheduler_done(v.s, e, CD_SCHED_OK);
    assert_int_equal(cd_scheduler_failures(e), 0);
    assert_int_equal(cd_scheduler_next_wake(v.s) - prev, 1000);

    /* The cap is never shorter than the interval. */
    struct cd_scheduler_entry *slow = add(&v, "t2", "version", NULL, NULL, 60000, CD_EXCL_NONE);
    cd_scheduler_remove(v.s, e, NULL, NULL);
    cd_clock_advance(&v.clock, cd_scheduler_due(slow) - cd_clock_mono_ms(&v.clock));
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
    cd_scheduler_done(v.s, slow, CD_SCHED_FAIL);
    assert_int_equal(cd_scheduler_next_wake(v.s) - st.due_mono_ms, 60000);
    cd_scheduler_free(v.s);
}

static void test_exclusive_per_process(void **state)
{
    (void)state;
    struct env v;
    env_init(&v, NULL);
    /* An HTTP and a gops endpoint of one process, both with a CPU profile, and a heap. */
    struct cd_scheduler_entry *a = add(&v, "j/http://h:1", "cpu", "h#42", NULL, 0, CD_EXCL_CPU);
    struct cd_scheduler_entry *b =
        add(&v, "j/gops://h:2", "cpu", "h#42", "gops:h:2", 0, CD_EXCL_CPU);
    struct cd_scheduler_entry *c = add(&v, "j/http://h:1", "heap", "h#42", NULL, 0, CD_EXCL_NONE);
    struct cd_scheduler_entry *d = add(&v, "j/http://h:3", "cpu", "h#43", NULL, 0, CD_EXCL_CPU);
    int tok[4];
    assert_int_equal(cd_scheduler_capture(v.s, a, &tok[0]), 0);
    assert_int_equal(cd_scheduler_capture(v.s, b, &tok[1]), 0);
    assert_int_equal(cd_scheduler_capture(v.s, c, &tok[2]), 0);
    assert_int_equal(cd_scheduler_capture(v.s, d, &tok[3]), 0);
    struct cd_scheduler_start st[8];
    int n = poll_all(&v, st, 8);
    assert_int_equal(n, 3); /* a, c and d: b waits for a (same process) */
    assert_ptr_equal(st[0].entry, a);
    assert_ptr_equal(st[1].entry, c);
    assert_ptr_equal(st[2].entry, d);
    assert_true(st[0].capture && st[0].capture_token == &tok[0]);
    cd_clock_advance(&v.clock, 5000);
    cd_scheduler_done(v.s, a, CD_SCHED_OK);
    assert_int_equal(poll_all(&v, st, 8), 1);
    assert_ptr_equal(st[0].entry, b);
    assert_int_equal(st[0].lateness_ms, 5000);
    cd_scheduler_done(v.s, b, CD_SCHED_OK);
    cd_scheduler_done(v.s, c, CD_SCHED_OK);
    cd_scheduler_done(v.s, d, CD_SCHED_OK);
    cd_scheduler_free(v.s);
}

static void test_trace_and_cpu_independent(void **state)
{
    (void)state;
    struct env v;
    env_init(&v, NULL);
    struct cd_scheduler_entry *a = add(&v, "t", "cpu", "p", NULL, 0, CD_EXCL_CPU);
    struct cd_scheduler_entry *b = add(&v, "t", "trace", "p", NULL, 0, CD_EXCL_TRACE);
    struct cd_scheduler_entry *c = add(&v, "u", "trace", "p", NULL, 0, CD_EXCL_TRACE);
    cd_scheduler_capture(v.s, a, NULL);
    cd_scheduler_capture(v.s, b, NULL);
    cd_scheduler_capture(v.s, c, NULL);
    struct cd_scheduler_start st[4];
    assert_int_equal(poll_all(&v, st, 4), 2);
    cd_scheduler_done(v.s, b, CD_SCHED_OK);
    assert_int_equal(poll_all(&v, st, 4), 1);
    assert_ptr_equal(st[0].entry, c);
    cd_scheduler_done(v.s, a, CD_SCHED_OK);
    cd_scheduler_done(v.s, c, CD_SCHED_OK);
    cd_scheduler_free(v.s);
}

static void test_serial_group(void **state)
{
    (void)state;
    struct env v;
    env_init(&v, NULL);
    struct cd_scheduler_entry *e[3];
    const char *kinds[] = {"memstats", "stats", "version"};
    for (int i = 0; i < 3; i++) {
        e[i] = add(&v, "j/gops://h:9", kinds[i], "h", "gops:h:9", 0, CD_EXCL_NONE);
        cd_scheduler_capture(v.s, e[i], NULL);
    }
    struct cd_scheduler_start st[4];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(poll_all(&v, st, 4), 1);
        assert_ptr_equal(st[0].entry, e[i]);
        cd_scheduler_done(v.s, e[i], CD_SCHED_OK);
    }
    assert_int_equal(poll_all(&v, st, 4), 0);
    cd_scheduler_free(v.s);
}

static void test_global_limit(void **state)
{
    (void)state;
    struct cd_scheduler_opts o = {.max_concurrent = 3};
    struct env v;
    env_init(&v, &o);
    char ids[10][16];
    struct cd_scheduler_entry *e[10];
    for (int i = 0; i < 10; i++) {
        snprintf(ids[i], sizeof(ids[i]), "t%d", i);
        e[i] = add(&v, ids[i], "heap", NULL, NULL, 1000, CD_EXCL_NONE);
    }
    cd_clock_advance(&v.clock, 1000);
    struct cd_scheduler_start st[10];
    assert_int_equal(poll_all(&v, st, 10), 3);
    struct cd_scheduler_stats ss;
    cd_scheduler_stats(v.s, &ss);
    assert_int_equal(ss.running, 3);
    assert_int_equal(ss.ready, 7);
    /* The three run for 2.5 s: the waiting ones start late, skipping the slots they missed. */
    cd_clock_advance(&v.clock, 2500);
    int started = 3;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 10; i++) {
            if (cd_scheduler_running(e[i]))
                cd_scheduler_done(v.s, e[i], CD_SCHED_OK);
        }
        struct cd_scheduler_start cur[10];
        int n = poll_all(&v, cur, 10);
        assert_true(n <= 3);
        started += n;
    }
    assert_true(started >= 10);
    cd_scheduler_stats(v.s, &ss);
    assert_true(ss.skipped[CD_SKIP_CONCURRENCY] >= 7);
    for (int i = 0; i < 10; i++) {
        if (cd_scheduler_running(e[i]))
            cd_scheduler_done(v.s, e[i], CD_SCHED_OK);
    }
    cd_scheduler_free(v.s);
}

static void test_hold(void **state)
{
    (void)state;
    struct env v;
    env_init(&v, NULL);
    struct cd_scheduler_entry *e = add(&v, "t", "heap", NULL, NULL, 1000, CD_EXCL_NONE);
    cd_clock_advance(&v.clock, cd_scheduler_due(e) - cd_clock_mono_ms(&v.clock));
    struct cd_scheduler_start st;
    assert_int_equal(cd_scheduler_poll(v.s, true, &st), 0);
    cd_clock_advance(&v.clock, 3500);
    assert_int_equal(cd_scheduler_poll(v.s, true, &st), 0);
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
    assert_int_equal(st.lateness_ms, 3500);
    struct cd_scheduler_stats ss;
    cd_scheduler_stats(v.s, &ss);
    assert_int_equal(ss.skipped[CD_SKIP_HELD], 3);
    cd_scheduler_done(v.s, e, CD_SCHED_OK);
    assert_int_equal(cd_scheduler_next_wake(v.s), st.due_mono_ms + 4000);
    cd_scheduler_free(v.s);
}

static void test_capture_bypasses_interval_and_backoff(void **state)
{
    (void)state;
    struct env v;
    env_init(&v, NULL);
    struct cd_scheduler_entry *e = add(&v, "t", "heap", NULL, NULL, 60000, CD_EXCL_NONE);
    int64_t due = cd_scheduler_due(e);
    struct cd_scheduler_start st;
    /* Put it in deep backoff. */
    for (int i = 0; i < 3; i++) {
        cd_clock_advance(&v.clock, cd_scheduler_next_wake(v.s) - cd_clock_mono_ms(&v.clock));
        assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
        cd_scheduler_done(v.s, e, CD_SCHED_FAIL);
    }
    due = cd_scheduler_next_wake(v.s);
    int tok = 7;
    assert_int_equal(cd_scheduler_capture(v.s, e, &tok), 0);
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
    assert_true(st.capture);
    assert_ptr_equal(st.capture_token, &tok);
    assert_int_equal(st.lateness_ms, 0);
    /* A failed capture does not deepen the backoff... */
    cd_scheduler_done(v.s, e, CD_SCHED_FAIL);
    assert_int_equal(cd_scheduler_failures(e), 3);
    assert_int_equal(cd_scheduler_next_wake(v.s), due);
    /* ...a successful one ends it. */
    cd_scheduler_capture(v.s, e, &tok);
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
    cd_clock_advance(&v.clock, 10);
    cd_scheduler_done(v.s, e, CD_SCHED_OK);
    assert_int_equal(cd_scheduler_failures(e), 0);
    assert_true(cd_scheduler_next_wake(v.s) <= cd_clock_mono_ms(&v.clock) + 60000);

    /* A capture of a running entry waits for it; captures-only entries are never scheduled. */
    struct cd_scheduler_entry *od = add(&v, "t", "goroutine_dump", NULL, NULL, 0, CD_EXCL_NONE);
    assert_int_equal(cd_scheduler_due(od), -1);
    cd_scheduler_capture(v.s, od, NULL);
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
    cd_scheduler_capture(v.s, od, &tok);
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 0);
    cd_scheduler_done(v.s, od, CD_SCHED_OK);
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
    assert_ptr_equal(st.capture_token, &tok);
    cd_scheduler_done(v.s, od, CD_SCHED_OK);
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 0);

    /* Bounded: max_captures pending per entry. */
    int n = 0;
    while (cd_scheduler_capture(v.s, od, NULL) == 0)
        n++;
    assert_int_equal(n, 16);
    cd_scheduler_remove(v.s, od, NULL, NULL);
    cd_scheduler_free(v.s);
}

static void count_drop(void *ctx, void *token)
{
    (void)token;
    (*(int *)ctx)++;
}

static void test_remove_and_update(void **state)
{
    (void)state;
    struct env v;
    env_init(&v, NULL);
    struct cd_scheduler_entry *e = add(&v, "t", "cpu", "p1", NULL, 1000, CD_EXCL_CPU);
    struct cd_scheduler_entry *f = add(&v, "u", "cpu", "p2", NULL, 0, CD_EXCL_CPU);
    cd_clock_advance(&v.clock, cd_scheduler_due(e) - cd_clock_mono_ms(&v.clock));
    struct cd_scheduler_start st;
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
    /* Moved to process p2 while running: it keeps p1 until done; p2 is free. */
    struct cd_scheduler_spec sp = {"t", "cpu", "p2", NULL, 5000, CD_EXCL_CPU};
    struct cd_err err;
    cd_err_init(&err);
    assert_int_equal(cd_scheduler_update(v.s, e, &sp, &err), 0);
    cd_scheduler_capture(v.s, f, NULL);
    assert_int_equal(cd_scheduler_poll(v.s, false, &st), 1);
    assert_ptr_equal(st.entry, f);
    cd_scheduler_done(v.s, f, CD_SCHED_OK);
    /* Removed while running: freed at done (ASan checks). Pending captures are handed back. */
    int drops = 0;
    cd_scheduler_capture(v.s, e, NULL);
    cd_scheduler_remove(v.s, e, count_drop, &drops);
    assert_int_equal(drops, 1);
    cd_scheduler_done(v.s, e, CD_SCHED_CANCELLED);
    struct cd_scheduler_stats ss;
    cd_scheduler_stats(v.s, &ss);
    assert_int_equal(ss.entries, 1);
    assert_int_equal(ss.running, 0);
    cd_scheduler_free(v.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_absolute_deadlines),
        cmocka_unit_test(test_no_overlap),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_exclusive_per_process),
        cmocka_unit_test(test_trace_and_cpu_independent),
        cmocka_unit_test(test_serial_group),
        cmocka_unit_test(test_global_limit),
        cmocka_unit_test(test_hold),
        cmocka_unit_test(test_capture_bypasses_interval_and_backoff),
        cmocka_unit_test(test_remove_and_update),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
