/*
 * bundle — an incident's snapshots as a tar.gz, produced piece by piece while it is sent.
 *
 * Layout: <incident>/README.txt (what the incident is, the command that opens each file),
 * <incident>/<job>-<instance>-<kind>-<time>-<id><ext> per snapshot with bytes (exact), then
 * <incident>/manifest.json, written last so it records what was actually written: per snapshot
 * its file, target, labels, kind, time, status, sizes, the SHA-256 computed while streaming and
 * the stored one, and "export_error" when its bytes could not be read (the entry is then padded
 * with zeros to its declared size, the archive stays readable).
 *
 * Memory is bounded by the tarball's chunk plus one read buffer, whatever the incident's size.
 * Runs on one server thread; owns the incident document, the open blob and the tarball.
 */
#ifndef CD_BUNDLE_H
#define CD_BUNDLE_H

#include "api.h"
#include "tarball.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Where the bundle gets each snapshot's bytes (the backend's raw_open). */
struct cd_bundle_source {
    int (*raw_open)(void *ctx, int64_t id, struct cd_api_blob *out, struct cd_err *err);
    void *ctx;
};

struct cd_bundle_limits {
    size_t max_snapshots;
    uint64_t max_bytes; /* sum of size_bytes */
    int level;          /* compression level */
    size_t chunk;       /* tarball chunk; 0 = default */
};

struct cd_bundle;

/*
 * doc: {"incident": INCIDENT, "snapshots": [SNAPSHOT...]}, taken (freed on failure too).
 * -EINVAL when it lacks a valid incident name, -EFBIG past the limits (checked up front from
 * the snapshots' size_bytes, so the client gets a 413 instead of a cut archive).
 */
int cd_bundle_new(json_t *doc, const struct cd_bundle_source *src,
                  const struct cd_bundle_limits *lim, int64_t now_ms, struct cd_bundle **out,
                  struct cd_err *err);
void cd_bundle_free(struct cd_bundle *b);

/* The next up to n bytes of the archive: > 0, 0 at the end, or a negative errno (the archive
 * cannot be completed; abort the transfer). */
ssize_t cd_bundle_read(struct cd_bundle *b, uint8_t *dst, size_t n, struct cd_err *err);

/* The archive's file name: "<incident>.tar.gz". */
const char *cd_bundle_filename(const struct cd_bundle *b);

#endif
