/*
 * Unit tests of goroutine: the header grammar in all its shapes, a dump that exercises every
 * line form (elisions, ancestors, "running on other thread", Go 1.21 "created by ... in goroutine
 * N", Go 1.27 labels, level-2 headers, Windows paths), the findings (mutex pile-ups by caller and
 * lock, leaks, truncation), every limit, debug=1 count profiles, the shared test data and a
 * 64 MiB dump.
 */
#include "goroutine.h"

#include "cdtest.h"
#include "ptest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void header(const char *line, int rc, uint64_t id, const char *status, int64_t minutes,
                   bool locked, bool scan, const char *extra)
{
    struct cd_goroutine_header h;
    int r = cd_goroutine_parse_header(line, strlen(line), &h);
    if (r != rc)
        fail_msg("'%s': rc %d, want %d", line, r, rc);
    if (rc != 0)
        return;
    assert_int_equal(h.id, id);
    if (h.status_len != strlen(status) || memcmp(h.status, status, h.status_len) != 0)
        fail_msg("'%s': status '%.*s', want '%s'", line, (int)h.status_len, h.status, status);
    assert_int_equal(h.minutes, minutes);
    assert_int_equal(h.locked, locked);
    assert_int_equal(h.scan, scan);
    if (h.extra_len != strlen(extra) || memcmp(h.extra, extra, h.extra_len) != 0)
        fail_msg("'%s': extra '%.*s', want '%s'", line, (int)h.extra_len, h.extra, extra);
}

static void test_headers(void **state)
{
    (void)state;
    header("goroutine 1 [running]:", 0, 1, "running", 0, false, false, "");
    header("goroutine 22 [semacquire]:", 0, 22, "semacquire", 0, false, false, "");
    header("goroutine 23 [chan receive, locked to thread]:", 0, 23, "chan receive", 0, true, false,
           "");
    header("goroutine 9 [select, 12 minutes]:", 0, 9, "select", 12, false, false, "");
    header("goroutine 9 [select, 1 minutes, locked to thread]:", 0, 9, "select", 1, true, false,
           "");
    header("goroutine 5 [IO wait (scan), 61 minutes]:", 0, 5, "IO wait", 61, false, true, "");
    header("goroutine 20 [select (no cases)]:", 0, 20, "select (no cases)", 0, false, false, "");
    header("goroutine 4 [chan receive (nil chan)]:", 0, 4, "chan receive (nil chan)", 0, false,
           false, "");
    header("goroutine 8 [sync.RWMutex.RLock, 2 minutes]:", 0, 8, "sync.RWMutex.RLock", 2, false,
           false, "");
    header("goroutine 3 [GC worker (idle)]:", 0, 3, "GC worker (idle)", 0, false, false, "");
    /* level >= 2 tracebacks: text between the id and the status */
    header("goroutine 1 gp=0xc000002380 m=0 mp=0x5a2b40 [running]:", 0, 1, "running", 0, false,
           false, "");
    /* Go 1.27 labels after the bracket, which may hold ']' and ':' themselves */
    header("goroutine 7 [running] {pattern: \"GET /x]:\"}:", 0, 7, "running", 0, false, false,
           "{pattern: \"GET /x]:\"}");
    header("goroutine 7 [running, labels:{\"a\":\"b\"}]:", 0, 7, "running", 0, false, false,
           "labels:{\"a\":\"b\"}");
    /* unknown trailing items stay in the status (free text) */
    header("goroutine 6 [waiting, durable]:", 0, 6, "waiting, durable", 0, false, false, "");
    header("goroutine 6 []:", 0, 6, "", 0, false, false, "");
    header("goroutine 18446744073709551615 [idle]:", 0, UINT64_MAX, "idle", 0, false, false, "");
    header("goroutine 18446744073709551616 [idle]:", -EINVAL, 0, "", 0, false, false, "");
    header("goroutine x [running]:", -EINVAL, 0, "", 0, false, false, "");
    header("goroutine 1 [running]", -EINVAL, 0, "", 0, false, false, "");
    header("goroutine 1 running:", -EINVAL, 0, "", 0, false, false, "");
    header("goroutine 1[running]:", -EINVAL, 0, "", 0, false, false, "");
    header("goroutine profile: total 3", -EINVAL, 0, "", 0, false, false, "");
    header("goroutine 1 [running:", -EINVAL, 0, "", 0, false, false, "");
}

/* ---------------------------------------------------------------------------------------------
 * A dump with every shape */

static void append(char **buf, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char **buf, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    *buf = realloc(*buf, *len + (size_t)n + 1);
    assert_non_null(*buf);
    va_start(ap, fmt);
    vsnprintf(*buf + *len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *len += (size_t)n;
}

static void mutex_waiter(char **b, size_t *n, int id, int minutes, bool new_created_by)
{
    append(b, n, "goroutine %d [semacquire%s]:\n", id,
           minutes ? (minutes == 3 ? ", 3 minutes" : ", 1 minutes") : "");
    append(b, n,
           "sync.runtime_SemacquireMutex(0xc000012345?, 0x0?, 0x1?)\n"
           "\t/usr/local/go/src/runtime/sema.go:77 +0x25\n"
           "sync.(*Mutex).lockSlow(0xc000012340)\n"
           "\t/usr/local/go/src/sync/mutex.go:171 +0x165\n"
           "sync.(*Mutex).Lock(...)\n"
           "\t/usr/local/go/src/sync/mutex.go:90\n"
           "main.deadlockWaiter(0x3)\n"
           "\t/src/main.go:42 +0x45\n"
           "created by main.startDeadlock%s\n"
           "\t/src/main.go:50 +0x4f\n\n",
           new_created_by ? " in goroutine 1" : "");
}

static char *build_dump(size_t *len)
{
    char *b = NULL;
    size_t n = 0;
    append(&b, &n, "goroutine 1 [running]:\nmain.main()\n\t/src/main.go:10 +0x1d\n\n");
    for (int i = 0; i < 8; i++)
        mutex_waiter(&b, &n, 100 + i, i < 2 ? 3 : i < 4 ? 1 : 0, i % 2 == 0);
    /* Go 1.24: internal/sync frames and the sync.Mutex.Lock wait reason */
    for (int i = 0; i < 5; i++)
        append(&b, &n,
               "goroutine %d [sync.Mutex.Lock]:\n"
               "internal/sync.runtime_SemacquireMutex(0x0?, 0x0?, 0x0?)\n"
               "\t/usr/lib/go/src/runtime/sema.go:95 +0x25\n"
               "internal/sync.(*Mutex).lockSlow(0xc0000a2008)\n"
               "\t/usr/lib/go/src/internal/sync/mutex.go:149 +0x15d\n"
               "internal/sync.(*Mutex).Lock(...)\n"
               "\t/usr/lib/go/src/internal/sync/mutex.go:70\n"
               "sync.(*Mutex).Lock(...)\n"
               "\t/usr/lib/go/src/sync/mutex.go:46\n"
               "main.(*Store).Get(0xc0000a2000, {0x4b2c1e, 0x3})\n"
               "\tC:/work/store.go:17 +0x4e\n"
               "created by main.main in goroutine 1\n"
               "\tC:/work/main.go:30 +0x8f\n\n",
               200 + i);
    /* two readers on an RWMutex: under the threshold */
    for (int i = 0; i < 2; i++)
        append(&b, &n,
               "goroutine %d [sync.RWMutex.RLock]:\n"
               "sync.runtime_SemacquireRWMutexR(0x0?, 0x0?, 0x0?)\n"
               "\t/go/src/runtime/sema.go:82 +0x25\n"
               "sync.(*RWMutex).RLock(...)\n"
               "\t/go/src/sync/rwmutex.go:71\n"
               "main.reader()\n"
               "\t/src/r.go:5 +0x2a\n"
               "created by main.main\n"
               "\t/src/main.go:31 +0x1\n\n",
               300 + i);
    /* WaitGroup waiters are semacquire too, but no lock */
    for (int i = 0; i < 6; i++)
        append(&b, &n,
               "goroutine %d [semacquire]:\n"
               "sync.runtime_Semacquire(0xc0000b0008?)\n"
               "\t/go/src/runtime/sema.go:62 +0x25\n"
               "sync.(*WaitGroup).Wait(0x0?)\n"
               "\t/go/src/sync/waitgroup.go:139 +0x52\n"
               "main.waiter()\n"
               "\t/src/w.go:9 +0x1\n\n",
               400 + i);
    /* a leak: 12 identical receivers parked for minutes */
    for (int i = 0; i < 12; i++)
        append(&b, &n,
               "goroutine %d [chan receive, %d minutes]:\n"
               "runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)\n"
               "\t/go/src/runtime/proc.go:363 +0xd6\n"
               "runtime.chanrecv(0xc000010000, 0x0, 0x1)\n"
               "\t/go/src/runtime/chan.go:583 +0x49d\n"
               "runtime.chanrecv1(0x0?, 0x0?)\n"
               "\t/go/src/runtime/chan.go:442 +0x18\n"
               "main.leaker()\n"
               "\t/src/leak.go:7 +0x25\n"
               "created by main.spawn\n"
               "\t/src/leak.go:3 +0x1\n\n",
               500 + i, 5 + i);
    append(&b, &n,
           "goroutine 30 [running]:\n"
           "\tgoroutine running on other thread; stack unavailable\n"
           "created by main.busy\n\t/src/busy.go:1 +0x1\n\n");
    append(&b, &n, "this line fits nothing\n\n");
    append(&b, &n,
           "goroutine 31 [chan receive (nil chan), locked to thread]:\n"
           "main.stuck(...)\n\t/src/s.go:2\n\n");
    append(&b, &n,
           "goroutine 32 [select (no cases)] {\"worker\":\"alpha\"}:\n"
           "main.forever()\n\t/src/f.go:3 +0x1\n\n");
    append(&b, &n,
           "goroutine 33 gp=0xc000102000 m=nil [IO wait (scan), 61 minutes]:\n"
           "internal/poll.runtime_pollWait(0x7f, 0x72) fp=0xc0 sp=0xc0 pc=0x46\n"
           "\t/go/src/runtime/netpoll.go:305 +0x89 fp=0xc000 sp=0xc000 pc=0x465c69\n"
           "net.(*netFD).accept(0xc0000c8c80)\n\t/go/src/net/fd_unix.go:172 +0x35\n\n");
    append(&b, &n, "goroutine 34 [runnable]:\n");
    for (int i = 0; i < 3; i++)
        append(&b, &n, "main.deep%d()\n\t/src/d.go:%d +0x1\n", i, i + 1);
    append(&b, &n, "...additional frames elided...\n");
    append(&b, &n, "created by main.main\n\t/src/main.go:33 +0x1\n");
    append(&b, &n,
           "[originating from goroutine 5]:\n"
           "main.parent(...)\n\t/src/p.go:3 +0x1\n"
           "created by main.grandparent\n\t/src/p.go:1 +0x1\n\n");
    append(&b, &n, "goroutine 35 [runnable]:\nmain.deep0()\n\t/src/d.go:1 +0x1\n");
    append(&b, &n, "...12 frames elided...\n");
    append(&b, &n, "main.top()\n\t/src/d.go:9 +0x1\n");
    append(&b, &n, "panic({0x6b0ea0, 0xc000012345})\n\t/go/src/runtime/panic.go:884 +0x213\n\n");
    append(&b, &n, "goroutine 36 [syscall, 2 minutes]:\nsyscall.Syscall()\n\t/s.go:1 +0x1\n");
    *len = n;
    return b;
}

static json_t *find_by(json_t *arr, const char *key, const char *value)
{
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, key)), value) == 0)
            return o;
    }
    return NULL;
}

static int64_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return json_integer_value(v);
}

static int summarize(const char *text, size_t len, const struct cd_parse_limits *lim,
                     struct cd_summary *s, struct cd_err *err)
{
    cd_summary_init(s);
    cd_err_init(err);
    int rc = cd_goroutine_summarize((const uint8_t *)text, len, lim, s, err);
    if (rc == 0)
        assert_int_equal(s->format, CD_FORMAT_GOROUTINE_TEXT);
    else
        assert_null(s->json);
    return rc;
}

static void test_dump(void **state)
{
    (void)state;
    size_t len;
    char *text = build_dump(&len);
    assert_true(cd_goroutine_sniff((const uint8_t *)text, len));
    struct cd_summary s;
    struct cd_err err;
    assert_int_equal(summarize(text, len, NULL, &s, &err), 0);
    json_t *j = s.json;
    assert_string_equal(json_string_value(json_object_get(j, "variant")), "debug2");
    int64_t total = 1 + 8 + 5 + 2 + 6 + 12 + 7;
    assert_int_equal(jint(j, "total"), total);
    assert_int_equal(jint(j, "examined"), total);
    assert_true(json_is_false(json_object_get(j, "truncated")));
    assert_int_equal(jint(j, "unparsed_lines"), 1);

    json_t *states = json_object_get(j, "states");
    assert_int_equal(jint(states, "semacquire"), 14);
    assert_int_equal(jint(states, "chan receive"), 12);
    assert_int_equal(jint(states, "IO wait"), 1);
    assert_string_equal(json_object_iter_key(json_object_iter(states)), "semacquire");
    json_t *classes = json_object_get(j, "classes");
    assert_int_equal(jint(classes, "running"), 2);
    assert_int_equal(jint(classes, "runnable"), 2);
    assert_int_equal(jint(classes, "syscall"), 1);
    assert_int_equal(jint(classes, "blocked"), total - 5);
    assert_int_equal(jint(j, "max_wait_minutes"), 61);
    assert_int_equal(jint(j, "locked_to_thread"), 1);
    json_t *buckets = json_object_get(j, "wait_minutes");
    assert_int_equal(jint(find_by(buckets, "bucket", "<1"), "count"), total - 4 - 12 - 2);
    assert_int_equal(jint(find_by(buckets, "bucket", "1-4"), "count"), 4 + 1);
    assert_int_equal(jint(find_by(buckets, "bucket", "5-14"), "count"), 10);
    assert_int_equal(jint(find_by(buckets, "bucket", "15-59"), "count"), 2);
    assert_int_equal(jint(find_by(buckets, "bucket", "60-239"), "count"), 1);

    json_t *lw = json_object_get(j, "longest_waiting");
    assert_int_equal(jint(json_array_get(lw, 0), "id"), 33);
    assert_int_equal(jint(json_array_get(lw, 0), "minutes"), 61);
    assert_string_equal(json_string_value(json_object_get(json_array_get(lw, 0), "function")),
                        "internal/poll.runtime_pollWait");
    assert_string_equal(json_string_value(json_object_get(json_array_get(lw, 0), "file")),
                        "/go/src/runtime/netpoll.go");
    assert_int_equal(jint(json_array_get(lw, 0), "line"), 305);
    assert_int_equal(jint(json_array_get(lw, 1), "id"), 511); /* 16 minutes */

    json_t *groups = json_object_get(j, "groups");
    json_t *g0 = json_array_get(groups, 0);
    assert_int_equal(jint(g0, "count"), 12);
    assert_string_equal(json_string_value(json_object_get(g0, "state")), "chan receive");
    assert_int_equal(jint(g0, "wait_minutes_min"), 5);
    assert_int_equal(jint(g0, "wait_minutes_max"), 16);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(g0, "frames"), 3), "function")),
                        "main.leaker");
    json_t *g1 = json_array_get(groups, 1); /* the 8 mutex waiters */
    assert_int_equal(jint(g1, "count"), 8);
    json_t *f2 = json_array_get(json_object_get(g1, "frames"), 2);
    assert_string_equal(json_string_value(json_object_get(f2, "function")), "sync.(*Mutex).Lock");
    assert_int_equal(jint(f2, "line"), 90);
    json_t *cb = json_object_get(g1, "created_by");
    assert_string_equal(json_string_value(json_object_get(cb, "function")), "main.startDeadlock");
    assert_int_equal(jint(cb, "line"), 50);
    assert_int_equal(jint(g1, "example_id"), 100);

    /* groups by the function sequence: goroutines 34 (elided + ancestors) and 35 differ */
    size_t i;
    json_t *g;
    bool saw_elided = false, saw_panic = false, saw_labels = false, saw_windows = false;
    json_array_foreach(groups, i, g)
    {
        json_t *frames = json_object_get(g, "frames");
        const char *f0 = json_string_value(json_object_get(json_array_get(frames, 0), "function"));
        const char *f1 = json_string_value(json_object_get(json_array_get(frames, 1), "function"));
        if (json_is_true(json_object_get(g, "elided")) && strcmp(f0, "main.deep0") == 0 &&
            f1 != NULL && strcmp(f1, "main.deep1") == 0) {
            saw_elided = true;
            /* the ancestor's frames and created-by are not this goroutine's */
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(g, "created_by"), "function")),
                "main.main");
        }
        if (json_array_size(frames) == 3 &&
            strcmp(json_string_value(json_object_get(json_array_get(frames, 2), "function")),
                   "panic") == 0)
            saw_panic = true;
        if (json_is_string(json_object_get(g, "labels")))
            saw_labels = strcmp(json_string_value(json_object_get(g, "labels")),
                                "{\"worker\":\"alpha\"}") == 0;
        json_t *f4 = json_array_get(frames, 4);
        if (f4 && strcmp(json_string_value(json_object_get(f4, "file")), "C:/work/store.go") == 0)
            saw_windows = jint(f4, "line") == 17;
    }
    assert_true(saw_elided);
    assert_true(saw_panic);
    assert_true(saw_labels);
    assert_true(saw_windows);

    json_t *cr = json_object_get(j, "created_by");
    assert_int_equal(jint(find_by(cr, "function", "main.spawn"), "count"), 12);
    assert_int_equal(jint(find_by(cr, "function", "main.startDeadlock"), "count"), 8);
    assert_int_equal(jint(find_by(cr, "function", "main.main"), "count"), 5 + 2 + 1);
    assert_int_equal(jint(find_by(cr, "function", "main.busy"), "count"), 1);

    json_t *findings = json_object_get(j, "findings");
    assert_int_equal(json_array_size(findings), 3);
    json_t *p0 = json_array_get(findings, 0);
    assert_string_equal(json_string_value(json_object_get(p0, "kind")), "mutex_pileup");
    assert_string_equal(json_string_value(json_object_get(p0, "severity")), "warning");
    assert_int_equal(jint(p0, "count"), 8);
    assert_string_equal(json_string_value(json_object_get(p0, "blocked_in")),
                        "main.deadlockWaiter");
    assert_string_equal(json_string_value(json_object_get(p0, "lock")), "sync.(*Mutex).Lock");
    assert_string_equal(json_string_value(json_object_get(p0, "location")), "/src/main.go:42");
    assert_string_equal(json_string_value(json_object_get(p0, "state")), "semacquire");
    assert_int_equal(jint(p0, "wait_minutes_min"), 0);
    assert_int_equal(jint(p0, "wait_minutes_max"), 3);
    assert_string_equal(json_string_value(json_object_get(p0, "message")),
                        "8 goroutines blocked in sync.(*Mutex).Lock called from "
                        "main.deadlockWaiter (up to 3 minutes)");
    json_t *p1 = json_array_get(findings, 1);
    assert_string_equal(json_string_value(json_object_get(p1, "blocked_in")), "main.(*Store).Get");
    assert_string_equal(json_string_value(json_object_get(p1, "lock")), "sync.(*Mutex).Lock");
    assert_string_equal(json_string_value(json_object_get(p1, "severity")), "info");
    assert_int_equal(jint(p1, "count"), 5);
    json_t *l0 = json_array_get(findings, 2);
    assert_string_equal(json_string_value(json_object_get(l0, "kind")), "goroutine_leak");
    assert_int_equal(jint(l0, "count"), 12);
    assert_string_equal(json_string_value(json_object_get(l0, "blocked_in")), "main.leaker");
    assert_string_equal(json_string_value(json_object_get(l0, "state")), "chan receive");

    assert_true(ptest_series(&s, "count") == (double)total);
    assert_true(ptest_series(&s, "running") == 2);
    assert_true(ptest_series(&s, "runnable") == 2);
    assert_true(ptest_series(&s, "syscall") == 1);
    assert_true(ptest_series(&s, "blocked") == (double)(total - 5));
    assert_true(ptest_series(&s, "max_wait_minutes") == 61);
    cd_summary_free(&s);

    /* the same dump with CRLF line ends */
    char *crlf = malloc(len * 2 + 1);
    size_t k = 0;
    for (size_t c = 0; c < len; c++) {
        if (text[c] == '\n')
            crlf[k++] = '\r';
        crlf[k++] = text[c];
    }
    assert_int_equal(summarize(crlf, k, NULL, &s, &err), 0);
    assert_int_equal(jint(s.json, "total"), total);
    assert_int_equal(json_array_size(json_object_get(s.json, "findings")), 3);
    cd_summary_free(&s);
    free(crlf);
    free(text);
}

static void test_limits(void **state)
{
    (void)state;
    size_t len;
    char *text = build_dump(&len);
    struct cd_parse_limits lim;
    struct cd_summary s;
    struct cd_err err;

    cd_parse_limits_default(&lim);
    lim.max_goroutines = 3;
    assert_int_equal(summarize(text, len, &lim, &s, &err), 0);
    assert_int_equal(jint(s.json, "total"), 41);
    assert_int_equal(jint(s.json, "examined"), 3);
    assert_true(json_is_true(json_object_get(s.json, "truncated")));
    json_t *f = json_array_get(json_object_get(s.json, "findings"), 0);
    assert_string_equal(json_string_value(json_object_get(f, "kind")), "truncated_dump");
    assert_string_equal(json_string_value(json_object_get(f, "message")),
                        "only the first 3 of 41 goroutines were examined (max_goroutines)");
    cd_summary_free(&s);

    cd_parse_limits_default(&lim);
    lim.max_groups = 2;
    assert_int_equal(summarize(text, len, &lim, &s, &err), 0);
    assert_int_equal(jint(s.json, "groups_total"), 2);
    assert_int_equal(jint(s.json, "groups_other"), 41 - 1 - 8);
    cd_summary_free(&s);

    /* two frames per goroutine: stacks that share their first two functions merge */
    cd_parse_limits_default(&lim);
    lim.max_stack_depth = 2;
    lim.top_n = 1;
    assert_int_equal(summarize(text, len, &lim, &s, &err), 0);
    json_t *g0 = json_array_get(json_object_get(s.json, "groups"), 0);
    assert_int_equal(jint(g0, "count"), 12);
    assert_int_equal(jint(g0, "depth"), 4);
    assert_int_equal(json_array_size(json_object_get(g0, "frames")), 2);
    assert_int_equal(json_array_size(json_object_get(s.json, "groups")), 1);
    assert_int_equal(json_array_size(json_object_get(s.json, "longest_waiting")), 1);
    /* the pile-up's caller is beyond two frames: no finding */
    json_t *findings = json_object_get(s.json, "findings");
    assert_string_equal(json_string_value(json_object_get(json_array_get(findings, 0), "kind")),
                        "goroutine_leak");
    cd_summary_free(&s);

    cd_parse_limits_default(&lim);
    lim.max_input = len - 1;
    assert_int_equal(summarize(text, len, &lim, &s, &err), -EFBIG);
    cd_parse_limits_default(&lim);
    lim.max_memory = 4096;
    assert_int_equal(summarize(text, len, &lim, &s, &err), -ENOMEM);
    assert_non_null(strstr(cd_err_msg(&err), "working memory limit"));
    free(text);
}

static void test_truncated_text(void **state)
{
    (void)state;
    size_t len;
    char *text = build_dump(&len);
    /* cut inside a frame pair, as Go does past 64 MiB */
    const char *cut = strstr(text, "main.leaker()");
    size_t n = (size_t)(cut - text) + 13;
    struct cd_summary s;
    struct cd_err err;
    assert_int_equal(summarize(text, n, NULL, &s, &err), 0);
    assert_true(json_is_true(json_object_get(s.json, "truncated")));
    json_t *findings = json_object_get(s.json, "findings");
    json_t *last = json_array_get(findings, json_array_size(findings) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "kind")), "truncated_dump");
    cd_summary_free(&s);
    free(text);
}

static void test_not_a_dump(void **state)
{
    (void)state;
    static const char *const bad[] = {"",
                                      "\n\n",
                                      "hello\nworld\n",
                                      "alloc: 5 bytes\n",
                                      "heap profile: 1: 2 [3: 4] @ heap/2\n",
                                      "goroutine 1 [running]\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cd_summary s;
        struct cd_err err;
        assert_int_equal(summarize(bad[i], strlen(bad[i]), NULL, &s, &err), -EBADMSG);
        assert_non_null(strstr(cd_err_msg(&err), "goroutine: no goroutine header"));
        assert_false(cd_goroutine_sniff((const uint8_t *)bad[i], strlen(bad[i])));
    }
    /* a header and nothing else is a (tiny) dump */
    struct cd_summary s;
    struct cd_err err;
    assert_int_equal(summarize("goroutine 1 [running]:\n", 23, NULL, &s, &err), 0);
    assert_int_equal(jint(s.json, "total"), 1);
    cd_summary_free(&s);
}

/* ---------------------------------------------------------------------------------------------
 * debug=1 */

static void test_count_profile(void **state)
{
    (void)state;
    char *b = NULL;
    size_t n = 0;
    append(&b, &n, "goroutine profile: total 19\n");
    append(&b, &n,
           "7 @ 0x43b2f6 0x44c1fe 0x44c1d5 0x4674c5 0x471e65 0x6aad07 0x46b8c1\n"
           "#\t0x4674c4\tsync.runtime_SemacquireMutex+0x24\truntime/sema.go:77\n"
           "#\t0x471e64\tsync.(*Mutex).lockSlow+0x164\t\tsync/mutex.go:171\n"
           "#\t0x6aad06\tsync.(*Mutex).Lock+0x46\t\t\tsync/mutex.go:90\n"
           "#\t0x6aacec\tmain.hold+0x2c\t\t\t\tmain.go:166\n\n");
    append(&b, &n,
           "5 @ 0x43b2f6 0x468175 0x46b8c1\n"
           "# labels: {\"worker\":\"alpha\"}\n"
           "#\t0x468174\ttime.Sleep+0x134\t\truntime/time.go:195\n"
           "#\t0x6a9ea4\tmain.nap+0x24\t\tmain.go:274\n\n");
    append(&b, &n,
           "5 @ 0x43b2f6 0x468175 0x46b8c1\n"
           "# labels: {\"worker\":\"beta\"}\n"
           "#\t0x468174\ttime.Sleep+0x134\t\truntime/time.go:195\n"
           "#\t0x6a9ea4\tmain.nap+0x24\t\tmain.go:274\n\n");
    append(&b, &n, "2 @ 0x1 0x2\n#\t0x0\n\n");
    assert_true(cd_goroutine_sniff((const uint8_t *)b, n));
    struct cd_summary s;
    struct cd_err err;
    assert_int_equal(summarize(b, n, NULL, &s, &err), 0);
    json_t *j = s.json;
    assert_string_equal(json_string_value(json_object_get(j, "variant")), "debug1");
    assert_string_equal(json_string_value(json_object_get(j, "profile")), "goroutine");
    assert_int_equal(jint(j, "total"), 19);
    assert_int_equal(jint(j, "examined"), 19);
    assert_true(json_is_null(json_object_get(j, "classes")));
    json_t *groups = json_object_get(j, "groups");
    assert_int_equal(json_array_size(groups), 3); /* the two sleeps differ only by labels */
    json_t *g0 = json_array_get(groups, 0);
    assert_int_equal(jint(g0, "count"), 10);
    assert_string_equal(json_string_value(json_object_get(g0, "labels")), "{\"worker\":\"alpha\"}");
    json_t *f1 = json_array_get(json_object_get(g0, "frames"), 1);
    assert_string_equal(json_string_value(json_object_get(f1, "function")), "main.nap");
    assert_string_equal(json_string_value(json_object_get(f1, "file")), "main.go");
    assert_int_equal(jint(f1, "line"), 274);
    json_t *g2 = json_array_get(groups, 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(g2, "frames"), 0), "function")),
                        "0x0");
    json_t *f = json_array_get(json_object_get(j, "findings"), 0);
    assert_string_equal(json_string_value(json_object_get(f, "kind")), "mutex_pileup");
    assert_int_equal(jint(f, "count"), 7);
    assert_string_equal(json_string_value(json_object_get(f, "blocked_in")), "main.hold");
    assert_true(json_is_null(json_object_get(f, "state")));
    assert_int_equal(s.n_series, 1);
    assert_true(ptest_series(&s, "count") == 19);
    cd_summary_free(&s);
    free(b);

    /* another profile's count text, legacy style (addresses only) */
    const char *tc = "threadcreate profile: total 3\n1 @ 0x44cb3 0x45045\n2 @ 0x440e2 0x5191a\n";
    assert_int_equal(summarize(tc, strlen(tc), NULL, &s, &err), 0);
    assert_string_equal(json_string_value(json_object_get(s.json, "profile")), "threadcreate");
    assert_int_equal(jint(s.json, "total"), 3);
    json_t *gt = json_array_get(json_object_get(s.json, "groups"), 0);
    assert_int_equal(jint(gt, "count"), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(gt, "frames"), 1), "function")),
                        "0x5191a");
    cd_summary_free(&s);
}

static void test_shared_data(void **state)
{
    (void)state;
    CDT_REQUIRE_SHARED();
    static const struct {
        const char *file, *variant;
        int64_t total;
    } files[] = {{"go1.19_gen_goroutine_debug2.txt", "debug2", 33},
                 {"go1.19_gen_goroutine_debug1.txt", "debug1", 38},
                 {"google-pprof_legacy_go.godoc.thread", "debug1", 7}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/testdata/pprof/%s", cdt_shared_dir(), files[i].file);
        uint8_t *data;
        size_t len;
        assert_int_equal(cdt_read_file(path, &data, &len), 0);
        struct cd_summary s;
        struct cd_err err;
        assert_int_equal(summarize((const char *)data, len, NULL, &s, &err), 0);
        assert_string_equal(json_string_value(json_object_get(s.json, "variant")),
                            files[i].variant);
        assert_int_equal(jint(s.json, "total"), files[i].total);
        assert_int_equal(jint(s.json, "unparsed_lines"), 0);
        assert_true(json_is_false(json_object_get(s.json, "truncated")));
        if (i == 0) {
            assert_int_equal(jint(s.json, "locked_to_thread"), 3);
            json_t *cl = json_object_get(s.json, "classes");
            assert_int_equal(jint(cl, "running"), 1);
            assert_int_equal(jint(cl, "runnable"), 14);
        }
        cd_summary_free(&s);
        free(data);
    }
}

/* A 64 MiB dump (Go's own ceiling for debug=2) of varied goroutines: parses in one pass. */
static void test_64mib(void **state)
{
    (void)state;
    size_t cap = (size_t)64 << 20, n = 0;
    char *b = malloc(cap + 4096);
    assert_non_null(b);
    size_t id = 1, blocks = 0;
    while (n < cap) {
        int kind = (int)(id % 7);
        n += (size_t)snprintf(b + n, 4096,
                              "goroutine %zu [%s%s]:\n"
                              "runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)\n"
                              "\t/go/src/runtime/proc.go:363 +0xd6\n"
                              "main.worker%d(0xc000%06zx, {0x%zx, 0x10})\n"
                              "\t/src/app/worker.go:%zu +0x%zx\n"
                              "main.loop%d(...)\n"
                              "\t/src/app/loop.go:12\n"
                              "created by main.start%d in goroutine 1\n"
                              "\t/src/app/main.go:40 +0x1f\n\n",
                              id,
                              kind < 3   ? "chan receive"
                              : kind < 5 ? "select"
                                         : "IO wait",
                              id % 11 == 0 ? ", 3 minutes" : "", kind, id, id, 10 + id % 5,
                              id % 255, (int)(id % 13), (int)(id % 3));
        id++;
        blocks++;
    }
    struct cd_summary s;
    struct cd_err err;
    int64_t t0 = cdt_now_ms();
    assert_int_equal(summarize(b, n, NULL, &s, &err), 0);
    int64_t ms = cdt_now_ms() - t0;
    assert_int_equal(jint(s.json, "total"), (int64_t)blocks);
    assert_int_equal(jint(s.json, "groups_total"), 7 * 13);
    print_message("%zu goroutines in %.1f MiB: %lld ms\n", blocks, (double)n / (1 << 20),
                  (long long)ms);
    cd_summary_free(&s);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),     cmocka_unit_test(test_dump),
        cmocka_unit_test(test_limits),      cmocka_unit_test(test_truncated_text),
        cmocka_unit_test(test_not_a_dump),  cmocka_unit_test(test_count_profile),
        cmocka_unit_test(test_shared_data), cmocka_unit_test(test_64mib),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
