/*
 * snapshot — one scrape of one kind from one target at one time, as it travels from the scraper
 * (loop thread) through a parser worker to the store writer. Each stage owns it in turn: it is
 * handed over whole through bounded queues and freed by the last one (the store, after commit).
 * Every string is its own allocation; cd_snapshot_free() frees what is set.
 */
#ifndef CD_SNAPSHOT_H
#define CD_SNAPSHOT_H

#include "kind.h"
#include "summary.h"

#include <stddef.h>
#include <stdint.h>

/* How the scrape went. Stored as the text of cd_snap_status_name(). */
enum cd_snap_status {
    CD_SNAP_OK = 0,        /* the target sent a complete answer, and it parsed */
    CD_SNAP_INVALID,       /* a complete answer that failed to parse (raw bytes kept) */
    CD_SNAP_HTTP_ERROR,    /* non-2xx; body kept (Go's X-Go-Pprof text errors) */
    CD_SNAP_BUSY,          /* the profiler/tracer was already in use: retry, target not down */
    CD_SNAP_TIMEOUT,       /* no complete answer before the deadline */
    CD_SNAP_CONNECT_ERROR, /* refused, unreachable, reset before an answer, DNS */
    CD_SNAP_TOO_LARGE,     /* the body passed max_body_bytes; nothing kept */
    CD_SNAP_ERROR,         /* anything else (TLS, protocol, local failure) */
};

const char *cd_snap_status_name(enum cd_snap_status st);
int cd_snap_status_parse(const char *name, enum cd_snap_status *st);

struct cd_snapshot;
/* Called by the store writer thread once the snapshot is committed (rc 0, id set) or dropped
 * (rc < 0). Must not block; the snapshot is freed right after it returns. */
typedef void (*cd_snapshot_done_fn)(struct cd_snapshot *s, int rc, void *ctx);

struct cd_snapshot {
    /* target identity: job + scheme + address; copied so a snapshot outlives config reloads */
    char *job;
    char *scheme;  /* "http", "https", "gops" */
    char *address; /* "host:port" */
    char *instance;
    char *labels_json; /* the target's labels, a JSON object's text */

    char *kind;    /* canonical kind name */
    char *request; /* what was asked: URL without credentials, or "gops 0x06" */

    int64_t start_ms;     /* Unix ms when the request started */
    int64_t duration_ms;  /* until the last byte or the failure */
    int64_t scheduled_ms; /* Unix ms it was due, for lateness figures (0 = on demand) */
    enum cd_snap_status status;
    int http_status; /* 0 for gops and transport failures */
    char *error;     /* what went wrong, NULL when status is OK */
    char *content_type;

    uint8_t *raw; /* the exact bytes the target sent (NULL when none) */
    size_t raw_len;

    /* filled by the parser worker */
    enum cd_format format;
    char *summary_json;
    struct cd_series_point *series;
    size_t n_series;
    char *parse_error;

    /* storage preparation (cd_store_prepare, on a parser worker so the writer thread only writes):
     * the SHA-256 of raw, and raw recompressed for storage when it arrived uncompressed */
    int prepared;
    uint8_t content_hash[32];
    uint8_t *stored; /* NULL: raw is stored as it is */
    size_t stored_len;
    int stored_encoding;   /* 0 = as received, 1 = zstd */
    uint8_t *summary_zstd; /* summary_json compressed (one zstd frame), NULL: stored as text */
    size_t summary_zstd_len;

    /* pinning: a snapshot with an incident is pinned to it and exempt from retention */
    char *incident;
    int pinned;

    /* filled by the store */
    int64_t id;

    cd_snapshot_done_fn done;
    void *done_ctx;
};

struct cd_snapshot *cd_snapshot_new(void);
void cd_snapshot_free(struct cd_snapshot *s);

/* Takes over a parser's summary: JSON text, series (prefixed "<kind>.") and format. */
int cd_snapshot_take_summary(struct cd_snapshot *s, struct cd_summary *sum);

#endif
