/*
 * apiwire — the query API's wire rules, as pure functions: parsing what a client sends (query
 * parameters, capture and pin bodies, selectors, cursors, ids, incident names), and normalising
 * what the server sends back (RFC 3339 twins of "_unix_ms" times, credentials scrubbed, errno to
 * HTTP status, download file names). Everything here handles outside bytes and is fuzzed.
 *
 * Any thread; owns nothing beyond the structs it fills. The contract these rules implement is
 * include/collectord/api.h.
 */
#ifndef CD_APIWIRE_H
#define CD_APIWIRE_H

#include "err.h"
#include "target.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on what a request may carry (beyond the server's byte limits). */
#define CD_APIWIRE_MAX_PARAMS      32
#define CD_APIWIRE_MAX_KEY         64
#define CD_APIWIRE_MAX_VALUE       1024
#define CD_APIWIRE_MAX_STRING      256 /* any string member of a request body */
#define CD_APIWIRE_CURSOR_MAX      64
#define CD_APIWIRE_SERIES_NAME_MAX 96
#define CD_APIWIRE_JSON_DEPTH      64 /* nesting walked when normalising responses */

/* ---- query parameters ----------------------------------------------------------------- */

struct cd_apiwire_param {
    char *key;
    char *value;
};

/* The decoded query parameters of one request, in order, duplicates kept (so they can be
 * refused). Owns its strings. */
struct cd_apiwire_params {
    struct cd_apiwire_param v[CD_APIWIRE_MAX_PARAMS];
    size_t n;
};

void cd_apiwire_params_init(struct cd_apiwire_params *p);
void cd_apiwire_params_free(struct cd_apiwire_params *p);
/* Copies key and value (value NULL = "" ). -E2BIG past CD_APIWIRE_MAX_PARAMS, -EINVAL for an
 * empty or over-long key or an over-long value. */
int cd_apiwire_params_add(struct cd_apiwire_params *p, const char *key, const char *value,
                          struct cd_err *err);
/* Parses a raw query string ("a=1&b=%20x"), percent-decoding keys and values ('+' is a space). */
int cd_apiwire_params_parse(const char *qs, size_t len, struct cd_apiwire_params *p,
                            struct cd_err *err);
/* The value of key, NULL when absent. */
const char *cd_apiwire_params_get(const struct cd_apiwire_params *p, const char *key);
/* -EINVAL naming the first key not in allowed (NULL-terminated) or given twice. */
int cd_apiwire_params_check(const struct cd_apiwire_params *p, const char *const *allowed,
                            struct cd_err *err);

/* ---- cursors ---------------------------------------------------------------------------- */

/* A position in a newest-first listing: rows strictly after (older than) (time_ms, id). Encoded
 * as unpadded base64url of "<time_ms>.<id>", opaque to clients. */
int cd_apiwire_cursor_encode(int64_t time_ms, int64_t id, char *dst, size_t size);
int cd_apiwire_cursor_decode(const char *s, int64_t *time_ms, int64_t *id);

/* ---- route arguments -------------------------------------------------------------------- */

/* A snapshot id: decimal, 1 .. 2^53-1. */
int cd_apiwire_parse_id(const char *s, int64_t *id);
/* Incident names: [A-Za-z0-9._-]{1,64}, not starting with '.' (they name directories). */
bool cd_apiwire_incident_name_valid(const char *s);
/* A boolean parameter: 1/0/true/false/yes/no. */
int cd_apiwire_parse_bool(const char *s, bool *out);

/* GET /targets */
struct cd_apiwire_targets {
    const char *job;    /* NULL = any; points into the params */
    const char *health; /* "up" | "down" | "unknown" | NULL */
};
int cd_apiwire_targets_parse(const struct cd_apiwire_params *p, struct cd_apiwire_targets *q,
                             struct cd_err *err);

/* GET /snapshots. Strings point into the params they came from. */
struct cd_apiwire_snapshots {
    const char *target; /* target id, address or instance */
    const char *job;
    const char *kind; /* canonical */
    const char *status;
    const char *incident;
    int pinned;       /* -1 any, 0, 1 */
    int64_t since_ms; /* INT64_MIN when absent; inclusive */
    int64_t until_ms; /* INT64_MAX when absent; exclusive */
    bool has_cursor;
    int64_t cursor_time_ms;
    int64_t cursor_id;
    int limit; /* rows for this page, 1..CD_API_MAX_LIST_LIMIT (the server applies its own
                * max_page_size on top) */
};
int cd_apiwire_snapshots_parse(const struct cd_apiwire_params *p, int64_t now_ms,
                               struct cd_apiwire_snapshots *q, struct cd_err *err);

/* GET /series */
struct cd_apiwire_series {
    const char *target; /* NULL = every target that has the series */
    const char *name;   /* "<kind>.<series>" */
    int64_t since_ms;
    int64_t until_ms;
    int limit; /* points */
};
int cd_apiwire_series_parse(const struct cd_apiwire_params *p, int64_t now_ms,
                            struct cd_apiwire_series *q, struct cd_err *err);

/* ---- request bodies --------------------------------------------------------------------- */

/* Which targets a capture addresses; members ANDed. Owns its strings. */
struct cd_apiwire_selector {
    char *job;
    char *target;
    struct cd_labels labels;
    bool all;
};

void cd_apiwire_selector_free(struct cd_apiwire_selector *s);
/* From the JSON object {"job", "target", "labels", "all"}; strict about members and types. */
int cd_apiwire_selector_from_json(const json_t *o, struct cd_apiwire_selector *s,
                                  struct cd_err *err);
/* "job=api target=x team=payments" — for messages. malloc'd. */
char *cd_apiwire_selector_describe(const struct cd_apiwire_selector *s);

/* POST /capture. Owns everything. */
struct cd_apiwire_capture {
    struct cd_apiwire_selector selector;
    char **kinds; /* canonical names, deduplicated; n_kinds 0 = per-scheme defaults */
    size_t n_kinds;
    char *incident;     /* NULL = not pinned */
    int64_t timeout_ms; /* 0 = the server's default */
};

void cd_apiwire_capture_free(struct cd_apiwire_capture *c);
int cd_apiwire_capture_parse(const char *body, size_t len, struct cd_apiwire_capture *c,
                             struct cd_err *err);

/* POST /snapshots/{id}/pin: an empty body or {"incident": "name"}. *incident is malloc'd or
 * NULL. */
int cd_apiwire_pin_parse(const char *body, size_t len, char **incident, struct cd_err *err);

/* ---- responses -------------------------------------------------------------------------- */

/*
 * Brings a response document to the contract, in place: every object member "<x>_unix_ms" that
 * holds an integer gets its RFC 3339 twin "<x>" when that is absent (null stays null), members
 * named like credentials are removed, and "scheme://user:pass@host" in strings loses its
 * userinfo. Walks at most CD_APIWIRE_JSON_DEPTH levels (deeper members are dropped). Returns how
 * many credential members or userinfo parts were removed.
 */
size_t cd_apiwire_normalize(json_t *doc);
/* True when a member name looks like a credential ("password", "bearer_token", ...). */
bool cd_apiwire_is_secret_key(const char *key);
/* The string with userinfo removed from URLs; NULL when it has none (nothing to change). */
char *cd_apiwire_strip_userinfo(const char *s);

/* HTTP status for a backend's negative errno (the table in api.h) and its "code" word. */
int cd_apiwire_http_status(int rc);
const char *cd_apiwire_status_code(int http_status);

/* A file-name-safe copy of s into dst: [A-Za-z0-9._-] kept, everything else '_', at most
 * size-1 bytes, never empty ("_"), never starting with '.'. Returns dst. */
char *cd_apiwire_safe_name(char *dst, size_t size, const char *s);

/*
 * The download name of a snapshot: "<job>-<instance>-<kind>-<YYYYMMDDTHHMMSSZ><ext>" with the
 * id appended ("-<id>") when with_id. ext follows the kind and the first bytes of the data
 * (head, may be short): pprof ".pb.gz" / ".pb", trace ".trace", text ".txt", else ".bin".
 * meta is a SNAPSHOT object. malloc'd, NULL on ENOMEM.
 */
char *cd_apiwire_snapshot_filename(const json_t *meta, const uint8_t *head, size_t head_len,
                                   bool with_id);
/* The extension alone (".pb.gz", ...), per the rule above. */
const char *cd_apiwire_snapshot_ext(const json_t *meta, const uint8_t *head, size_t head_len);

#endif
