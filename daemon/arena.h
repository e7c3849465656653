/*
 * arena — a bump allocator with a hard byte cap, for parsers that build many small objects from
 * outside bytes (pprof's protobuf-c messages, lookup tables, grouping tables) and drop them all at
 * once when the summary is done.
 *
 * Memory comes in big chunks (64 KiB growing to 8 MiB, or one exact-size chunk for a large
 * request); allocation is a pointer bump, free is a no-op, cd_arena_free() releases everything.
 * The cap counts every chunk byte taken from malloc, so a hostile input can make a parser fail
 * with a clear "memory limit" error but never grow past it. cd_arena_mark()/cd_arena_rewind()
 * give scratch space that is reused for each item of a stream (one pprof sample at a time).
 *
 * cd_arena_protobuf() adapts the arena to protobuf-c's ProtobufCAllocator: unpacked messages
 * live in the arena and are never freed one by one.
 *
 * Owned by one parser call on one thread (any thread); not thread-safe.
 */
#ifndef CD_ARENA_H
#define CD_ARENA_H

#include <protobuf-c/protobuf-c.h>

#include <stdbool.h>
#include <stddef.h>

struct cd_arena_chunk;

struct cd_arena {
    struct cd_arena_chunk *head; /* first chunk; chunks form a list in allocation order */
    struct cd_arena_chunk *cur;  /* the chunk allocations currently bump in */
    struct cd_arena *budget;     /* whose cap and count apply: itself, or a sharing parent */
    size_t cap;                  /* bytes the budget may take from malloc in total */
    size_t reserved;             /* bytes taken from malloc under this budget (headers included) */
    size_t peak_used;            /* high-water mark of bytes handed out, for tests and figures */
    size_t used;                 /* bytes handed out and not rewound */
    bool exhausted;              /* an allocation failed: over the cap or out of memory */
    ProtobufCAllocator pb;       /* see cd_arena_protobuf() */
};

/* A position to rewind to: everything allocated after it is reused by later allocations. */
struct cd_arena_mark {
    struct cd_arena_chunk *chunk;
    size_t off;
    size_t used;
};

/* cap = 0 means no cap beyond what malloc gives. Allocates nothing until the first request. */
void cd_arena_init(struct cd_arena *a, size_t cap);
/* An arena whose chunks count against `parent`'s cap (a scratch arena next to a long-lived one,
 * one limit for both). The parent must outlive it; each is freed on its own. */
void cd_arena_init_shared(struct cd_arena *a, struct cd_arena *parent);
/* Releases every chunk; the arena can be used again afterwards. Accepts NULL. */
void cd_arena_free(struct cd_arena *a);

/* 16-byte aligned memory, or NULL (and a->exhausted set) when the cap or malloc says no.
 * Zero-size requests return a valid unique pointer. */
void *cd_arena_alloc(struct cd_arena *a, size_t size);
/* Zeroed n * size bytes; NULL on overflow as well. */
void *cd_arena_calloc(struct cd_arena *a, size_t n, size_t size);
/* A NUL-terminated copy of len bytes. */
char *cd_arena_strndup(struct cd_arena *a, const char *s, size_t len);

struct cd_arena_mark cd_arena_mark(const struct cd_arena *a);
void cd_arena_rewind(struct cd_arena *a, struct cd_arena_mark m);

/* The protobuf-c allocator view of this arena (valid as long as the arena lives). */
ProtobufCAllocator *cd_arena_protobuf(struct cd_arena *a);

#endif
