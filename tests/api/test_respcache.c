/* The shared response bodies of the query socket: served fresh, served stale while one thread
 * rebuilds, never built twice at once, dropped by a write, evicted least recently used first. */
#include "cdtest.h"
#include "respcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static struct cd_respcache *new_cache(size_t slots, int64_t ttl)
{
    struct cd_respcache *c = NULL;
    assert_int_equal(cd_respcache_new(slots, ttl, &c), 0);
    return c;
}

/* A get that must not ask for a rebuild. */
static struct cd_respbody *get(struct cd_respcache *c, const char *key, int64_t now)
{
    bool rebuild = true;
    struct cd_respbody *b = cd_respcache_get(c, key, now, &rebuild);
    assert_false(rebuild);
    return b;
}

static void build(struct cd_respcache *c, const char *key, const char *text, int64_t now)
{
    struct cd_respbody *b = cd_respbody_new(text, strlen(text));
    assert_non_null(b);
    cd_respcache_put(c, key, b, now);
    cd_respbody_unref(b);
}

static void test_fresh_and_expiry(void **state)
{
    (void)state;
    struct cd_respcache *c = new_cache(4, 1000);
    assert_null(get(c, "a", 0)); /* nothing yet: this caller builds */
    build(c, "a", "one", 0);
    struct cd_respbody *b = get(c, "a", 999);
    assert_non_null(b);
    assert_int_equal(b->len, 3);
    assert_memory_equal(b->data, "one", 3);
    cd_respbody_unref(b);
    /* Expired: the caller that notices gets the previous body and the rebuild; while it
     * rebuilds, others get the previous body too... */
    bool rebuild = false;
    b = cd_respcache_get(c, "a", 1000, &rebuild);
    assert_non_null(b);
    assert_true(rebuild);
    cd_respbody_unref(b);
    b = get(c, "a", 1500);
    assert_non_null(b);
    assert_memory_equal(b->data, "one", 3);
    cd_respbody_unref(b);
    build(c, "a", "two", 1600);
    b = get(c, "a", 1700);
    assert_non_null(b);
    assert_memory_equal(b->data, "two", 3);
    cd_respbody_unref(b);
    /* ...but never one older than twice the ttl. */
    assert_null(get(c, "a", 3600));
    cd_respcache_abandon(c, "a");
    cd_respcache_free(c);
}

static void test_invalidate(void **state)
{
    (void)state;
    struct cd_respcache *c = new_cache(4, 1000);
    assert_null(get(c, "a", 0));
    build(c, "a", "old", 0);
    cd_respcache_invalidate(c);
    assert_null(get(c, "a", 10));
    /* A write during the build: its result may predate the write, so it is not kept. */
    cd_respcache_invalidate(c);
    build(c, "a", "racy", 20);
    assert_null(get(c, "a", 30));
    build(c, "a", "new", 30);
    struct cd_respbody *b = get(c, "a", 40);
    assert_non_null(b);
    assert_memory_equal(b->data, "new", 3);
    cd_respbody_unref(b);
    cd_respcache_free(c);
}

static void test_eviction(void **state)
{
    (void)state;
    struct cd_respcache *c = new_cache(2, 1000);
    assert_null(get(c, "a", 0));
    build(c, "a", "A", 0);
    assert_null(get(c, "b", 0));
    build(c, "b", "B", 0);
    cd_respbody_unref(get(c, "a", 1)); /* a is now the more recent */
    assert_null(get(c, "c", 2));       /* evicts b */
    build(c, "c", "C", 2);
    struct cd_respbody *b = get(c, "a", 3);
    assert_non_null(b);
    cd_respbody_unref(b);
    assert_null(get(c, "b", 3));
    cd_respcache_abandon(c, "b");
    /* Every slot being built: a new key is built without the cache, and put ignores it. */
    assert_null(get(c, "x", 2000));
    assert_null(get(c, "y", 2000));
    assert_null(get(c, "z", 2000));
    build(c, "z", "Z", 2000);
    cd_respcache_abandon(c, "x");
    cd_respcache_abandon(c, "y");
    cd_respcache_free(c);
}

struct waiter {
    struct cd_respcache *c;
    atomic_int got; /* 1: a body, 2: asked to build */
};

static void *wait_for_body(void *arg)
{
    struct waiter *w = arg;
    bool rebuild = false;
    struct cd_respbody *b = cd_respcache_get(w->c, "k", 10, &rebuild);
    if (b != NULL) {
        atomic_store(&w->got, strcmp((const char *)b->data, "built") == 0 ? 1 : 3);
        cd_respbody_unref(b);
    } else {
        atomic_store(&w->got, 2);
        cd_respcache_abandon(w->c, "k");
    }
    return NULL;
}

/* Nothing to serve while another thread builds: callers wait for that build, then share it;
 * when the build fails, one of them builds instead. */
static void test_single_flight(void **state)
{
    (void)state;
    struct cd_respcache *c = new_cache(4, 1000);
    for (int round = 0; round < 2; round++) {
        assert_null(get(c, "k", 0));
        struct waiter w[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            w[i].c = c;
            atomic_init(&w[i].got, 0);
            assert_int_equal(pthread_create(&th[i], NULL, wait_for_body, &w[i]), 0);
        }
        usleep(50 * 1000); /* give them time to block: the assertion below holds either way */
        for (int i = 0; i < 4; i++)
            assert_int_equal(atomic_load(&w[i].got), 0);
        if (round == 0)
            build(c, "k", "built", 5);
        else
            cd_respcache_abandon(c, "k");
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < 4; i++)
            assert_int_equal(atomic_load(&w[i].got), round == 0 ? 1 : 2);
        cd_respcache_invalidate(c);
    }
    cd_respcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_and_expiry),
        cmocka_unit_test(test_invalidate),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_single_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
