/* respcache — see respcache.h. */
#include "respcache.h"

#include "str.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct cd_respbody *cd_respbody_new(const void *data, size_t len)
{
    struct cd_respbody *b = malloc(sizeof(*b) + len + 1);
    if (b == NULL)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = len;
    if (len > 0)
        memcpy(b->data, data, len);
    b->data[len] = '\0';
    return b;
}

void cd_respbody_ref(struct cd_respbody *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void cd_respbody_unref(struct cd_respbody *b)
{
    if (b != NULL && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

struct slot {
    char *key; /* NULL: free */
    struct cd_respbody *body;
    int64_t built_ms;
    bool building;
    uint64_t build_gen; /* the cache's generation when the build began */
    uint64_t used;      /* for eviction: the last get or put */
};

struct cd_respcache {
    pthread_mutex_t lock;
    pthread_cond_t built;
    int64_t ttl_ms;
    uint64_t gen;
    uint64_t tick;
    size_t n;
    struct slot slots[];
};

int cd_respcache_new(size_t slots, int64_t ttl_ms, struct cd_respcache **out)
{
    if (slots == 0)
        slots = 1;
    struct cd_respcache *c = calloc(1, sizeof(*c) + slots * sizeof(c->slots[0]));
    if (c == NULL)
        return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->built, NULL);
    c->ttl_ms = ttl_ms;
    c->n = slots;
    *out = c;
    return 0;
}

static void slot_clear(struct slot *s)
{
    free(s->key);
    cd_respbody_unref(s->body);
    memset(s, 0, sizeof(*s));
}

void cd_respcache_free(struct cd_respcache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        slot_clear(&c->slots[i]);
    pthread_cond_destroy(&c->built);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static struct slot *find(struct cd_respcache *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->slots[i].key != NULL && strcmp(c->slots[i].key, key) == 0)
            return &c->slots[i];
    return NULL;
}

/* A slot for a new key: a free one, else the least recently used that nobody is building. */
static struct slot *claim(struct cd_respcache *c, const char *key)
{
    struct slot *victim = NULL;
    for (size_t i = 0; i < c->n; i++) {
        struct slot *s = &c->slots[i];
        if (s->key == NULL) {
            victim = s;
            break;
        }
        if (!s->building && (victim == NULL || s->used < victim->used))
            victim = s;
    }
    if (victim == NULL)
        return NULL;
    char *k = cd_str_dup(key);
    if (k == NULL)
        return NULL;
    slot_clear(victim);
    victim->key = k;
    return victim;
}

struct cd_respbody *cd_respcache_get(struct cd_respcache *c, const char *key, int64_t now_ms,
                                     bool *rebuild)
{
    struct cd_respbody *b = NULL;
    *rebuild = false;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        struct slot *s = find(c, key);
        if (s == NULL) {
            s = claim(c, key);
            if (s != NULL) {
                s->building = true;
                s->build_gen = c->gen;
                s->used = ++c->tick;
            }
            break; /* no slot at all: the caller builds without caching */
        }
        int64_t age = now_ms - s->built_ms;
        if (s->body != NULL && age < 2 * c->ttl_ms) {
            b = s->body;
            cd_respbody_ref(b);
            s->used = ++c->tick;
            if (age >= c->ttl_ms && !s->building) {
                s->building = true;
                s->build_gen = c->gen;
                *rebuild = true;
            }
            break;
        }
        if (!s->building) {
            s->building = true;
            s->build_gen = c->gen;
            s->used = ++c->tick;
            break;
        }
        pthread_cond_wait(&c->built, &c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return b;
}

void cd_respcache_put(struct cd_respcache *c, const char *key, struct cd_respbody *b,
                      int64_t now_ms)
{
    pthread_mutex_lock(&c->lock);
    struct slot *s = find(c, key);
    if (s != NULL && s->building) {
        s->building = false;
        /* A write landed while this was being built: the body may predate it. */
        if (s->build_gen == c->gen) {
            cd_respbody_unref(s->body);
            cd_respbody_ref(b);
            s->body = b;
            s->built_ms = now_ms;
        }
        pthread_cond_broadcast(&c->built);
    }
    pthread_mutex_unlock(&c->lock);
}

void cd_respcache_abandon(struct cd_respcache *c, const char *key)
{
    pthread_mutex_lock(&c->lock);
    struct slot *s = find(c, key);
    if (s != NULL && s->building) {
        s->building = false;
        pthread_cond_broadcast(&c->built);
    }
    pthread_mutex_unlock(&c->lock);
}

void cd_respcache_invalidate(struct cd_respcache *c)
{
    pthread_mutex_lock(&c->lock);
    c->gen++;
    for (size_t i = 0; i < c->n; i++) {
        cd_respbody_unref(c->slots[i].body);
        c->slots[i].body = NULL;
    }
    pthread_mutex_unlock(&c->lock);
}
