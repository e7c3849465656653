/*
 * buf — a growable byte buffer with a hard size limit.
 *
 * Everything that accumulates outside bytes (HTTP bodies, gops replies, decompressed profiles)
 * goes through one of these, so every such buffer has a ceiling. The buffer owns its data until
 * cd_buf_steal() hands it over. Not thread-safe; one owner.
 */
#ifndef CD_BUF_H
#define CD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct cd_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t limit; /* 0 = no limit beyond memory */
};

void cd_buf_init(struct cd_buf *b, size_t limit);
void cd_buf_free(struct cd_buf *b);
void cd_buf_reset(struct cd_buf *b); /* len = 0, keeps the memory */

/* Make room for at least `extra` more bytes. -EFBIG past the limit, -ENOMEM. */
int cd_buf_reserve(struct cd_buf *b, size_t extra);
int cd_buf_append(struct cd_buf *b, const void *data, size_t len);
int cd_buf_append_str(struct cd_buf *b, const char *s);
int cd_buf_printf(struct cd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* NUL-terminates without counting the NUL in len (for text). */
int cd_buf_terminate(struct cd_buf *b);

/* Hands the data (possibly NULL when empty) to the caller, who frees it; the buffer is left empty.
 */
uint8_t *cd_buf_steal(struct cd_buf *b, size_t *len);

#endif
