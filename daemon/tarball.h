/*
 * tarball — a streaming tar.gz writer with memory bounded by one chunk.
 *
 * libdeflate compresses whole buffers only, so the archive is cut into chunks (default 1 MiB of
 * tar stream: headers, data, padding, wherever the cut falls) and each chunk becomes its own
 * gzip member; the members are emitted back to back. A multi-member gzip stream is valid gzip
 * (RFC 1952 §2.2): gunzip, tar -z and Go's gzip.Reader read it as one stream. Memory: one
 * uncompressed chunk plus its compressed form, whatever the archive's size.
 *
 * Entries are ustar; names that do not fit ustar's 100+155 bytes get a pax "path" record.
 * Regular files and directories only. The caller drains compressed output with
 * cd_tarball_read() between writes. One owner, one thread at a time.
 */
#ifndef CD_TARBALL_H
#define CD_TARBALL_H

#include "buf.h"
#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CD_TARBALL_DEFAULT_CHUNK (1u << 20)
#define CD_TARBALL_MAX_NAME      1024
/* ustar's 11 octal digits: entries up to 8 GiB - 1. */
#define CD_TARBALL_MAX_ENTRY 077777777777ULL

struct libdeflate_compressor;

struct cd_tarball {
    struct libdeflate_compressor *z;
    uint8_t *stage; /* uncompressed tar stream not yet compressed */
    size_t stage_len;
    size_t chunk;
    uint8_t *out; /* compressed members ready to be read */
    size_t out_len;
    size_t out_pos;
    size_t out_cap;
    bool in_entry;
    uint64_t entry_left; /* data bytes the open entry still expects */
    uint64_t entry_size;
    bool finished;
    uint64_t bytes_in;  /* tar stream bytes so far */
    uint64_t bytes_out; /* compressed bytes produced so far */
};

/* level: libdeflate's 0..12 (6 is gzip's default); chunk: 0 = CD_TARBALL_DEFAULT_CHUNK. */
int cd_tarball_init(struct cd_tarball *tb, int level, size_t chunk, struct cd_err *err);
void cd_tarball_free(struct cd_tarball *tb); /* accepts a zeroed or half-built one */

/* Starts a regular file of exactly size bytes; mtime in Unix seconds. */
int cd_tarball_begin(struct cd_tarball *tb, const char *name, uint64_t size, int64_t mtime,
                     unsigned mode, struct cd_err *err);
/* Data of the open entry; -EINVAL past its declared size. */
int cd_tarball_write(struct cd_tarball *tb, const void *data, size_t len, struct cd_err *err);
/* Closes the entry (pads to 512 bytes); -EINVAL when fewer bytes were written than declared. */
int cd_tarball_end(struct cd_tarball *tb, struct cd_err *err);
/* A whole file from memory. */
int cd_tarball_add(struct cd_tarball *tb, const char *name, const void *data, size_t len,
                   int64_t mtime, unsigned mode, struct cd_err *err);
int cd_tarball_add_dir(struct cd_tarball *tb, const char *name, int64_t mtime, struct cd_err *err);
/* Writes the end-of-archive blocks and compresses what is staged. No more entries after. */
int cd_tarball_finish(struct cd_tarball *tb, struct cd_err *err);

/* Compressed bytes waiting to be read. */
size_t cd_tarball_pending(const struct cd_tarball *tb);
/* Copies up to n compressed bytes into dst; returns how many. */
size_t cd_tarball_read(struct cd_tarball *tb, void *dst, size_t n);

#endif
