/* buf — see buf.h. */
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cd_buf_init(struct cd_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void cd_buf_free(struct cd_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void cd_buf_reset(struct cd_buf *b)
{
    b->len = 0;
}

int cd_buf_reserve(struct cd_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return -EFBIG;
    size_t need = b->len + extra;
    if (b->limit != 0 && need > b->limit)
        return -EFBIG;
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need + 1) {
        if (cap > SIZE_MAX / 2) {
            cap = need + 1;
            break;
        }
        cap *= 2;
    }
    /* Never allocate far beyond the limit just because of doubling. */
    if (b->limit != 0 && cap > b->limit + 1)
        cap = b->limit + 1;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int cd_buf_append(struct cd_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    int rc = cd_buf_reserve(b, len);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int cd_buf_append_str(struct cd_buf *b, const char *s)
{
    return cd_buf_append(b, s, strlen(s));
}

int cd_buf_printf(struct cd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    int rc = cd_buf_reserve(b, (size_t)n + 1);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int cd_buf_terminate(struct cd_buf *b)
{
    if (b->cap < b->len + 1) {
        /* The limit counts payload bytes; the terminator may sit one past it. */
        uint8_t *p = realloc(b->data, b->len + 1);
        if (p == NULL)
            return -ENOMEM;
        b->data = p;
        b->cap = b->len + 1;
    }
    b->data[b->len] = '\0';
    return 0;
}

uint8_t *cd_buf_steal(struct cd_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
