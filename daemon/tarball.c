/* tarball — see tarball.h. */
#include "tarball.h"

#include <errno.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 512

int cd_tarball_init(struct cd_tarball *tb, int level, size_t chunk, struct cd_err *err)
{
    memset(tb, 0, sizeof(*tb));
    if (level < 0 || level > 12)
        return cd_err_set(err, -EINVAL, "tarball: compression level %d outside 0..12", level);
    tb->chunk = chunk ? chunk : CD_TARBALL_DEFAULT_CHUNK;
    if (tb->chunk < BLOCK)
        tb->chunk = BLOCK;
    tb->z = libdeflate_alloc_compressor(level);
    tb->stage = malloc(tb->chunk);
    if (tb->z == NULL || tb->stage == NULL) {
        cd_tarball_free(tb);
        return cd_err_set(err, -ENOMEM, "tarball: out of memory");
    }
    return 0;
}

void cd_tarball_free(struct cd_tarball *tb)
{
    if (tb == NULL)
        return;
    if (tb->z != NULL)
        libdeflate_free_compressor(tb->z);
    free(tb->stage);
    free(tb->out);
    memset(tb, 0, sizeof(*tb));
}

/* Compresses the staged bytes into one gzip member at the end of the output. */
static int flush_stage(struct cd_tarball *tb, struct cd_err *err)
{
    if (tb->stage_len == 0)
        return 0;
    if (tb->out_pos > 0) {
        memmove(tb->out, tb->out + tb->out_pos, tb->out_len - tb->out_pos);
        tb->out_len -= tb->out_pos;
        tb->out_pos = 0;
    }
    size_t bound = libdeflate_gzip_compress_bound(tb->z, tb->stage_len);
    if (tb->out_cap - tb->out_len < bound) {
        size_t cap = tb->out_len + bound;
        uint8_t *p = realloc(tb->out, cap);
        if (p == NULL)
            return cd_err_set(err, -ENOMEM, "tarball: out of memory");
        tb->out = p;
        tb->out_cap = cap;
    }
    size_t n = libdeflate_gzip_compress(tb->z, tb->stage, tb->stage_len, tb->out + tb->out_len,
                                        tb->out_cap - tb->out_len);
    if (n == 0)
        return cd_err_set(err, -EIO, "tarball: compression failed");
    tb->out_len += n;
    tb->bytes_out += n;
    tb->stage_len = 0;
    return 0;
}

static int stage(struct cd_tarball *tb, const void *data, size_t len, struct cd_err *err)
{
    const uint8_t *p = data;
    while (len > 0) {
        size_t room = tb->chunk - tb->stage_len;
        size_t n = len < room ? len : room;
        if (p != NULL)
            memcpy(tb->stage + tb->stage_len, p, n);
        else
            memset(tb->stage + tb->stage_len, 0, n);
        tb->stage_len += n;
        tb->bytes_in += n;
        if (p != NULL)
            p += n;
        len -= n;
        if (tb->stage_len == tb->chunk) {
            int rc = flush_stage(tb, err);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static void octal(char *field, size_t size, uint64_t v)
{
    /* size-1 digits and a NUL, as ustar readers expect */
    snprintf(field, size, "%0*llo", (int)(size - 1), (unsigned long long)v);
}

static void checksum(uint8_t *h)
{
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < BLOCK; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* Fills a ustar header; name must already fit (name <= 100, prefix <= 155). */
static void header(uint8_t *h, const char *prefix, const char *name, uint64_t size, int64_t mtime,
                   unsigned mode, char type)
{
    memset(h, 0, BLOCK);
    memcpy(h, name, strlen(name));
    octal((char *)h + 100, 8, mode & 07777);
    octal((char *)h + 108, 8, 0);
    octal((char *)h + 116, 8, 0);
    octal((char *)h + 124, 12, size);
    octal((char *)h + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
    h[156] = (uint8_t)type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    if (prefix != NULL)
        memcpy(h + 345, prefix, strlen(prefix));
    checksum(h);
}

/* Splits name into ustar prefix/name at a '/', when it can. */
static bool ustar_split(const char *name, char *prefix, char *base)
{
    size_t n = strlen(name);
    if (n <= 100) {
        prefix[0] = '\0';
        memcpy(base, name, n + 1);
        return true;
    }
    for (size_t i = n; i-- > 0;) {
        if (name[i] != '/')
            continue;
        size_t plen = i, blen = n - i - 1;
        if (plen <= 155 && blen <= 100 && blen > 0) {
            memcpy(prefix, name, plen);
            prefix[plen] = '\0';
            memcpy(base, name + i + 1, blen + 1);
            return true;
        }
        if (plen > 155)
            continue;
        break;
    }
    return false;
}

static int write_header(struct cd_tarball *tb, const char *name, uint64_t size, int64_t mtime,
                        unsigned mode, char type, struct cd_err *err)
{
    size_t n = strlen(name);
    if (n == 0 || n > CD_TARBALL_MAX_NAME)
        return cd_err_set(err, -EINVAL, "tarball: entry name empty or longer than %d bytes",
                          CD_TARBALL_MAX_NAME);
    if (size > CD_TARBALL_MAX_ENTRY)
        return cd_err_set(err, -EFBIG, "tarball: entry '%s' larger than 8 GiB", name);
    uint8_t h[BLOCK];
    char prefix[156], base[101];
    if (ustar_split(name, prefix, base)) {
        header(h, prefix[0] ? prefix : NULL, base, size, mtime, mode, type);
        return stage(tb, h, BLOCK, err);
    }
    /* A pax extended header carries the full name; the ustar name is a truncated fallback. */
    char record[CD_TARBALL_MAX_NAME + 32];
    size_t body = strlen(" path=\n") + n;
    size_t len = body + 1;
    for (int i = 0; i < 3; i++) {
        int digits = snprintf(NULL, 0, "%zu", len);
        len = body + (size_t)digits;
    }
    int rlen = snprintf(record, sizeof(record), "%zu path=%s\n", len, name);
    if (rlen < 0 || (size_t)rlen != len)
        return cd_err_set(err, -EINVAL, "tarball: cannot encode name '%s'", name);
    header(h, NULL, "PaxHeader", (uint64_t)rlen, mtime, 0644, 'x');
    int rc = stage(tb, h, BLOCK, err);
    if (rc == 0)
        rc = stage(tb, record, (size_t)rlen, err);
    if (rc == 0 && rlen % BLOCK != 0)
        rc = stage(tb, NULL, BLOCK - (size_t)rlen % BLOCK, err);
    if (rc != 0)
        return rc;
    memcpy(base, name, 100);
    base[100] = '\0';
    header(h, NULL, base, size, mtime, mode, type);
    return stage(tb, h, BLOCK, err);
}

int cd_tarball_begin(struct cd_tarball *tb, const char *name, uint64_t size, int64_t mtime,
                     unsigned mode, struct cd_err *err)
{
    if (tb->finished || tb->in_entry)
        return cd_err_set(err, -EINVAL, "tarball: an entry is open or the archive is finished");
    int rc = write_header(tb, name, size, mtime, mode, '0', err);
    if (rc != 0)
        return rc;
    tb->in_entry = true;
    tb->entry_left = size;
    tb->entry_size = size;
    return 0;
}

int cd_tarball_write(struct cd_tarball *tb, const void *data, size_t len, struct cd_err *err)
{
    if (!tb->in_entry)
        return cd_err_set(err, -EINVAL, "tarball: no entry is open");
    if (len > tb->entry_left)
        return cd_err_set(err, -EINVAL, "tarball: %zu bytes past the entry's declared size",
                          (size_t)(len - tb->entry_left));
    int rc = stage(tb, data, len, err);
    if (rc == 0)
        tb->entry_left -= len;
    return rc;
}

int cd_tarball_end(struct cd_tarball *tb, struct cd_err *err)
{
    if (!tb->in_entry)
        return cd_err_set(err, -EINVAL, "tarball: no entry is open");
    if (tb->entry_left != 0)
        return cd_err_set(err, -EINVAL, "tarball: entry short by %llu bytes",
                          (unsigned long long)tb->entry_left);
    tb->in_entry = false;
    size_t pad = (size_t)(tb->entry_size % BLOCK);
    return pad ? stage(tb, NULL, BLOCK - pad, err) : 0;
}

int cd_tarball_add(struct cd_tarball *tb, const char *name, const void *data, size_t len,
                   int64_t mtime, unsigned mode, struct cd_err *err)
{
    int rc = cd_tarball_begin(tb, name, len, mtime, mode, err);
    if (rc == 0)
        rc = cd_tarball_write(tb, data, len, err);
    if (rc == 0)
        rc = cd_tarball_end(tb, err);
    return rc;
}

int cd_tarball_add_dir(struct cd_tarball *tb, const char *name, int64_t mtime, struct cd_err *err)
{
    if (tb->finished || tb->in_entry)
        return cd_err_set(err, -EINVAL, "tarball: an entry is open or the archive is finished");
    char dir[CD_TARBALL_MAX_NAME + 2];
    size_t n = strlen(name);
    if (n == 0 || n > CD_TARBALL_MAX_NAME)
        return cd_err_set(err, -EINVAL, "tarball: directory name empty or too long");
    snprintf(dir, sizeof(dir), "%s%s", name, name[n - 1] == '/' ? "" : "/");
    return write_header(tb, dir, 0, mtime, 0755, '5', err);
}

int cd_tarball_finish(struct cd_tarball *tb, struct cd_err *err)
{
    if (tb->in_entry)
        return cd_err_set(err, -EINVAL, "tarball: an entry is still open");
    if (tb->finished)
        return 0;
    int rc = stage(tb, NULL, 2 * BLOCK, err);
    if (rc == 0)
        rc = flush_stage(tb, err);
    if (rc == 0)
        tb->finished = true;
    return rc;
}

size_t cd_tarball_pending(const struct cd_tarball *tb)
{
    return tb->out_len - tb->out_pos;
}

size_t cd_tarball_read(struct cd_tarball *tb, void *dst, size_t n)
{
    size_t avail = tb->out_len - tb->out_pos;
    if (n > avail)
        n = avail;
    if (n == 0)
        return 0;
    memcpy(dst, tb->out + tb->out_pos, n);
    tb->out_pos += n;
    if (tb->out_pos == tb->out_len)
        tb->out_pos = tb->out_len = 0;
    return n;
}
