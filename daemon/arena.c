/* arena — see arena.h. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN     16u
#define ARENA_CHUNK_MIN ((size_t)64 << 10)
#define ARENA_CHUNK_MAX ((size_t)8 << 20)
#define ARENA_HEADER_SIZE                                                                          \
    ((sizeof(struct cd_arena_chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))

struct cd_arena_chunk {
    struct cd_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    size_t off;  /* bytes handed out from this chunk */
};

static uint8_t *chunk_data(struct cd_arena_chunk *c)
{
    return (uint8_t *)c + ARENA_HEADER_SIZE;
}

static void *pb_alloc(void *data, size_t size)
{
    return cd_arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    /* Arena memory goes back all at once in cd_arena_free(). */
    (void)data;
    (void)ptr;
}

void cd_arena_init(struct cd_arena *a, size_t cap)
{
    a->head = NULL;
    a->cur = NULL;
    a->budget = a;
    a->cap = cap ? cap : SIZE_MAX;
    a->reserved = 0;
    a->peak_used = 0;
    a->used = 0;
    a->exhausted = false;
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
}

void cd_arena_init_shared(struct cd_arena *a, struct cd_arena *parent)
{
    cd_arena_init(a, 0);
    a->budget = parent->budget;
}

void cd_arena_free(struct cd_arena *a)
{
    if (a == NULL)
        return;
    struct cd_arena_chunk *c = a->head;
    while (c != NULL) {
        struct cd_arena_chunk *next = c->next;
        a->budget->reserved -= ARENA_HEADER_SIZE + c->size;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->cur = NULL;
    a->used = 0;
}

/* A new chunk of at least `need` usable bytes, linked right after the current one. */
static struct cd_arena_chunk *arena_grow(struct cd_arena *a, size_t need)
{
    struct cd_arena *b = a->budget;
    size_t size = a->used < ARENA_CHUNK_MIN   ? ARENA_CHUNK_MIN
                  : a->used > ARENA_CHUNK_MAX ? ARENA_CHUNK_MAX
                                              : a->used;
    if (size < need)
        size = need;
    size_t room = b->cap > b->reserved ? b->cap - b->reserved : 0;
    if (room < ARENA_HEADER_SIZE || room - ARENA_HEADER_SIZE < size) {
        /* Near the cap: settle for exactly what this request needs. */
        size = need;
        if (room < ARENA_HEADER_SIZE || room - ARENA_HEADER_SIZE < size)
            return NULL;
    }
    struct cd_arena_chunk *c = malloc(ARENA_HEADER_SIZE + size);
    if (c == NULL)
        return NULL;
    b->reserved += ARENA_HEADER_SIZE + size;
    c->size = size;
    c->off = 0;
    if (a->cur == NULL) {
        c->next = a->head;
        a->head = c;
    } else {
        c->next = a->cur->next;
        a->cur->next = c;
    }
    return c;
}

void *cd_arena_alloc(struct cd_arena *a, size_t size)
{
    if (size > SIZE_MAX / 2) {
        a->exhausted = true;
        return NULL;
    }
    size_t need = size ? (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1) : ARENA_ALIGN;
    struct cd_arena_chunk *c = a->cur;
    if (c == NULL && a->head != NULL) {
        /* Rewound to before the first allocation: start over in the first chunk. */
        c = a->head;
        c->off = 0;
        a->cur = c;
    }
    if (c == NULL || c->size - c->off < need) {
        /* Chunks after the current one were left free by a rewind: reuse one that fits. */
        if (c != NULL && c->next != NULL && c->next->size >= need) {
            c = c->next;
            c->off = 0;
        } else {
            c = arena_grow(a, need);
            if (c == NULL) {
                a->exhausted = true;
                return NULL;
            }
        }
        a->cur = c;
    }
    void *p = chunk_data(c) + c->off;
    c->off += need;
    a->used += need;
    if (a->used > a->peak_used)
        a->peak_used = a->used;
    return p;
}

void *cd_arena_calloc(struct cd_arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        a->exhausted = true;
        return NULL;
    }
    void *p = cd_arena_alloc(a, n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

char *cd_arena_strndup(struct cd_arena *a, const char *s, size_t len)
{
    if (len == SIZE_MAX) {
        a->exhausted = true;
        return NULL;
    }
    char *p = cd_arena_alloc(a, len + 1);
    if (p == NULL)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

struct cd_arena_mark cd_arena_mark(const struct cd_arena *a)
{
    struct cd_arena_mark m = {a->cur, a->cur ? a->cur->off : 0, a->used};
    return m;
}

void cd_arena_rewind(struct cd_arena *a, struct cd_arena_mark m)
{
    a->cur = m.chunk;
    if (m.chunk != NULL)
        m.chunk->off = m.off;
    a->used = m.used;
}

ProtobufCAllocator *cd_arena_protobuf(struct cd_arena *a)
{
    return &a->pb;
}
