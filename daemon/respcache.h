/*
 * respcache — finished response bodies shared by query threads for a moment.
 *
 * The targets list merges the engine's health of every target with the store's per-kind
 * counts: on a fleet of a thousand targets that is tens of milliseconds of work and a
 * megabyte of JSON, and fifty dashboards asking for it at once would turn the query socket
 * into the busiest thread of the host. A body built for one request is served to every
 * identical request for ttl_ms; once it is older, the request that notices is served the
 * previous body and asked to have it rebuilt, in the background, while the others go on serving
 * the previous one (never older than twice the ttl): no client waits for a rebuild unless there
 * is nothing to serve, and a fleet of clients never builds the same answer twice at once.
 *
 * Bodies are reference counted: an HTTP response holds one until its last byte is sent.
 * Thread-safe.
 */
#ifndef CD_RESPCACHE_H
#define CD_RESPCACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cd_respbody {
    atomic_uint refs;
    size_t len;
    uint8_t data[];
};

/* A body of len bytes copied from data, one reference held by the caller; NULL without memory. */
struct cd_respbody *cd_respbody_new(const void *data, size_t len);
void cd_respbody_ref(struct cd_respbody *b);
void cd_respbody_unref(struct cd_respbody *b);

struct cd_respcache;

/* slots: how many distinct keys are kept (the least recently built goes first). */
int cd_respcache_new(size_t slots, int64_t ttl_ms, struct cd_respcache **out);
void cd_respcache_free(struct cd_respcache *c);

/*
 * The body for key at now_ms (monotonic): a fresh one, or a stale one (younger than twice the
 * ttl); the caller owns the returned reference. NULL, or a stale body with *rebuild set, means
 * the caller is now the builder of key and must see to cd_respcache_put() or
 * cd_respcache_abandon() for it (after answering with the stale body, in the second case). A
 * caller that finds key being built with nothing to serve in the meantime waits for the builder.
 */
struct cd_respbody *cd_respcache_get(struct cd_respcache *c, const char *key, int64_t now_ms,
                                     bool *rebuild);

/* The builder's result: the cache takes its own reference (the caller keeps theirs). */
void cd_respcache_put(struct cd_respcache *c, const char *key, struct cd_respbody *b,
                      int64_t now_ms);

/* The builder failed (the failure is its own answer): waiters build for themselves. */
void cd_respcache_abandon(struct cd_respcache *c, const char *key);

/* Everything cached is dropped: a write made the answers out of date. */
void cd_respcache_invalidate(struct cd_respcache *c);

#endif
