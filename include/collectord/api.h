/*
 * collectord query API, version 1 — the JSON contract of every route.
 *
 * This header is the public contract: collectorctl, scripts, and the daemon's backend (which
 * adapts the store and the scrape engine to these shapes) all build on it. It holds constants;
 * the shapes are documented here in prose, once, and the server and its tests follow it.
 *
 * TRANSPORT
 *   HTTP/1.1 on a Unix socket (default CD_API_DEFAULT_SOCKET, mode 0660, group of the service),
 *   and optionally on TCP. The Unix socket needs no credentials: file permissions decide who may
 *   connect. TCP requires the configured token on every request, as either
 *       Authorization: Bearer <token>
 *   or HTTP basic authentication with the token as the password (any user name):
 *       Authorization: Basic base64("<anything>:<token>")
 *   The second form exists for tools that have no header option but honour credentials in the
 *   URL, above all `go tool pprof http://collectord:<token>@host:port/api/v1/snapshots/ID/raw`
 *   (Go's HTTP client turns URL userinfo into a basic-auth header). Tokens are never accepted in
 *   the query string: query strings end up in logs and shell history of proxies.
 *   Missing or wrong token: 401 with `WWW-Authenticate`. Comparison is constant-time.
 *
 * CONVENTIONS (every route)
 *   - Bodies are JSON objects (UTF-8), except /raw, /bundle and /metrics.
 *   - Times come in pairs: "<name>" is an RFC 3339 UTC string with milliseconds
 *     ("2026-11-21T21:04:35.123Z") and "<name>_unix_ms" the same instant as integer Unix
 *     milliseconds. Both are null (or absent) when unknown. The backend may supply only the
 *     "_unix_ms" member: the server adds the string twin to every object before sending.
 *   - Durations are integer milliseconds named "<name>_ms" (never ending in "_unix_ms").
 *   - Sizes are integer bytes named "<name>_bytes".
 *   - Snapshot ids are positive integers below 2^53.
 *   - Unknown members must be ignored by clients: members may be added within v1, never removed
 *     or retyped.
 *   - Errors: a non-2xx status and {"error": "human-readable reason", "code": "<word>",
 *     "status": <http status>}; "code" is one of the CD_API_CODE_* words below.
 *   - Lists are paginated with an opaque cursor: pass "next_cursor" of one page as ?cursor= of
 *     the next; "next_cursor" is null on the last page.
 *   - Query parameters are strict: an unknown parameter, a repeated one or a malformed value is
 *     a 400 naming it (except on /raw, which ignores extras such as pprof's `seconds`).
 *   - Time parameters (since, until) accept RFC 3339, Unix seconds, Unix milliseconds (13+
 *     digits) or a duration back from now ("15m", "2h", "7d"). since is inclusive, until
 *     exclusive.
 *   - No route ever returns scrape credentials: the server drops members named like credentials
 *     (password, token, bearer, authorization, secret, ...) and strips user:password@ from URLs
 *     in every JSON it sends, whatever the backend put there.
 *
 * STATUS CODES
 *   200 ok; 400 bad request (bad parameter, body or selector; a list response that would pass
 *   the response-size limit); 401 no or wrong token (TCP); 404 unknown route, snapshot,
 *   incident or target; 405 method not allowed (with Allow); 409 conflict (e.g. retention
 *   already running); 413 request body too large; 429 too many concurrent captures or bundle
 *   exports (Retry-After); 500 internal; 501 route not available in this daemon; 503 too many
 *   connections, daemon busy or shutting down (Retry-After); 504 capture deadline passed.
 *
 * OBJECTS
 *
 *   TARGET
 *     { "id": "api/http://10.0.0.5:6060",   identity: job + scheme + address, unique
 *       "job": "api", "scheme": "http" | "https" | "gops", "address": "10.0.0.5:6060",
 *       "instance": "10.0.0.5:6060",
 *       "labels": {"job": "api", "instance": "10.0.0.5:6060", "team": "payments", ...},
 *       "health": "up" | "down" | "unknown",   unknown = not scraped yet; down = its latest
 *                                              scrape timed out, failed to connect or in
 *                                              transport, or was refused (401, 403); an HTTP
 *                                              error of one kind (404, 500) leaves it up
 *       "last_error": "connect: connection refused" | null,
 *       "last_error_time", "last_error_time_unix_ms",
 *       "kinds": [ {
 *           "kind": "cpu", "interval_ms": 60000, "seconds": 10,   seconds: 0 when instant
 *           "last_scrape", "last_scrape_unix_ms",
 *           "last_status": "ok" | <snapshot status> | null,
 *           "last_duration_ms": 10012 | null, "last_size_bytes": 18344 | null,
 *           "last_snapshot_id": 123 | null, "last_error": null | "...",
 *           "next_scrape", "next_scrape_unix_ms" } ... ] }
 *
 *   SNAPSHOT (metadata; listing never reads blobs)
 *     { "id": 123,
 *       "target": "<target id>", "job", "scheme", "address", "instance", "labels": {...},
 *       "kind": "cpu",                         canonical kind name (kind.h) or a custom name
 *       "format": "pprof" | "goroutine_text" | "gops_memstats" | "gops_stats" | "gops_version"
 *                 | "trace" | "heap_text" | "unknown",
 *       "time", "time_unix_ms",                when the request started
 *       "duration_ms": 10012,                  until the last byte or the failure
 *       "status": "ok" | "invalid" | "http_error" | "busy" | "timeout" | "connect_error"
 *                 | "too_large" | "error",
 *       "http_status": 200 | null,             null for gops and transport failures
 *       "error": null | "...",
 *       "request": "http://10.0.0.5:6060/debug/pprof/profile?seconds=10" | "gops://h:p 0x06",
 *       "content_type": "application/octet-stream" | null,   as the target sent it
 *       "size_bytes": 18344,                   raw bytes as received; 0 when none were kept
 *       "stored_bytes": 18344,                 on disk (after recompression; 0 when deduplicated)
 *       "sha256": "<64 hex>" | null,           of the raw bytes
 *       "pinned": true, "incident": "outage-42" | null,
 *       "on_demand": false,                    true when taken by a capture
 *       "scheduled", "scheduled_unix_ms",      the slot a scheduled scrape was due (its start
 *                                              is "time"); null for captures
 *       "parse_error": null | "..." }
 *
 *   SNAPSHOT DETAIL = SNAPSHOT plus
 *       "summary": { ... } | null,             the parser's summary (see SUMMARIES)
 *       "series": [ {"name": "heap.inuse_space", "value": 1.2e7}, ... ]
 *
 *   INCIDENT
 *     { "name": "outage-42", "created", "created_unix_ms",
 *       "snapshots": 17, "size_bytes": 1234567, "targets": 4,
 *       "first", "first_unix_ms", "last", "last_unix_ms" }   span of the snapshots' times
 *
 * ROUTES (prefix /api/v1)
 *
 *   GET /status
 *     { "version": "0.1.0", "api_version": "v1", "pid": 4242,
 *       "started", "started_unix_ms", "uptime_ms",
 *       "config_file": "/etc/collectord/collectord.yaml", "config_loaded", "config_loaded_unix_ms",
 *       "database": { "path", "size_bytes", "snapshots", "pinned", "raw_bytes",
 *                     "oldest", "oldest_unix_ms", "newest", "newest_unix_ms" },
 *       "targets": { "total", "up", "down", "unknown" },
 *       "incidents": 3,
 *       "scrapes": { "in_flight", "total", "failed", "dropped" },
 *       "queues": [ {"name": "parse", "depth": 0, "capacity": 256}, ... ],
 *       "retention": { "last_run", "last_run_unix_ms", "last_deleted_snapshots",
 *                      "last_deleted_bytes", "next_run", "next_run_unix_ms" },
 *       "query": { "unix_socket": "/run/collectord/collectord.sock" | null,   added by the server
 *                  "tcp": "127.0.0.1:9095" | null, "connections": 1 } }
 *
 *   GET /targets?job=&health=
 *     { "targets": [TARGET, ...] }             sorted by id
 *     Served from a copy at most 1 s old (2 s while the next one is built in the background), so
 *     that many clients cost no more than one; a capture or a retention run made through this
 *     API is visible at once.
 *
 *   GET /snapshots?target=&job=&kind=&status=&incident=&pinned=&since=&until=&limit=&cursor=
 *     target: a target id, or an address/instance; kind: canonical or alias; pinned: 0|1;
 *     limit: 1..the server's max_page_size (query.max_page_size, default 1000; never above
 *     CD_API_MAX_LIST_LIMIT), default CD_API_DEFAULT_LIST_LIMIT.
 *     { "snapshots": [SNAPSHOT, ...], "next_cursor": "<opaque>" | null }   newest first
 *
 *   GET /snapshots/{id}                 SNAPSHOT DETAIL
 *
 *   GET /snapshots/{id}/raw
 *     The exact bytes the target sent. Content-Type: the kind's (kind.h: pprof kinds
 *     application/octet-stream, text kinds text/plain; charset=utf-8); for failed scrapes the
 *     target's own content type. Content-Disposition: attachment;
 *     filename="<job>-<instance>-<kind>-<YYYYMMDDTHHMMSSZ>.pb.gz" (".pb" when the profile is not
 *     gzipped, ".trace" for traces, ".txt" for text; characters outside [A-Za-z0-9._-] become
 *     '_'). Also X-Collectord-Snapshot: <id>, X-Collectord-Status: <status>, ETag: "<sha256>".
 *     404 when the snapshot kept no bytes (e.g. timeout). `go tool pprof URL` works on it.
 *
 *   GET /series?target=&name=&since=&until=&limit=
 *     name (required): "<kind>.<series>", e.g. "goroutine.count", "heap.inuse_space".
 *     limit: points per response, 1..CD_API_MAX_SERIES_POINTS (default
 *     CD_API_DEFAULT_SERIES_POINTS); oldest first.
 *     { "name": "goroutine.count",
 *       "series": [ { "target": "<id>", "job", "instance", "labels": {...},
 *                     "points": [ {"time", "time_unix_ms", "value": 42}, ... ] } ],
 *       "truncated": false }                   true when the limit cut points off
 *
 *   POST /capture
 *     body: { "selector": { "job": "api", "target": "<id or address>",
 *                           "labels": {"team": "payments"}, "all": false },
 *             "kinds": ["cpu", "goroutine_dump"],  optional; default per scheme, see below
 *             "incident": "outage-42",             optional; [A-Za-z0-9._-]{1,64}
 *             "timeout_ms": 120000 }               optional; how long the server waits
 *     The selector's members are ANDed; at least one is needed, or "all": true.
 *     Every matching target is scraped now for every requested kind (default per scheme:
 *     CD_API_DEFAULT_CAPTURE_HTTP, CD_API_DEFAULT_CAPTURE_GOPS). Per-process exclusivity is
 *     respected: a capture waits for a CPU profile or trace already running in the process;
 *     "busy" means the target itself refused (another profiler, e.g. an operator's go tool
 *     pprof, holds it). "skipped": the daemon did not request that kind from that target
 *     (e.g. a kind gops cannot serve); "error" says why. With an incident, the snapshots are
 *     pinned to it (created on first use).
 *     200: { "incident": "outage-42" | null, "matched_targets": 2,
 *            "snapshots": [ { "target", "job", "instance", "kind",
 *                             "status": <snapshot status> | "skipped",
 *                             "id": 124 | null, "error": null | "...",
 *                             "time", "time_unix_ms", "duration_ms", "size_bytes",
 *                             "pinned": true }, ... ],
 *            "duration_ms": 10240 }
 *     404 when no target matches; 429 too many captures at once; 504 when the deadline passed
 *     first (the scrapes still finish and are stored and pinned).
 *
 *   POST   /snapshots/{id}/pin     body (optional): {"incident": "outage-42"}  -> SNAPSHOT
 *   DELETE /snapshots/{id}/pin     unpins (and leaves its incident)            -> SNAPSHOT
 *     Both idempotent.
 *
 *   GET /incidents                 { "incidents": [INCIDENT, ...] }   newest first
 *   GET /incidents/{name}          { "incident": INCIDENT, "snapshots": [SNAPSHOT, ...] }
 *   GET /incidents/{name}/bundle
 *     application/gzip, Content-Disposition: attachment; filename="<name>.tar.gz", streamed
 *     (chunked). A tar archive, gzip-compressed as a series of gzip members:
 *       <name>/README.txt      what the incident is and the go tool pprof / go tool trace
 *                              command that opens each file
 *       <name>/<job>-<instance>-<kind>-<time>-<id><ext>   each snapshot's raw bytes, exact
 *       <name>/manifest.json   written last: {"incident", "exported", "collectord_version",
 *                              "snapshots": [...]}, per snapshot its "file" (null when no
 *                              bytes), id, target, labels, kind, time, status, error,
 *                              duration_ms, request, size_bytes, "sha256" (computed while
 *                              streaming), "stored_sha256", and "export_error" (null, or why
 *                              its bytes could not be written; the entry is then zero-padded)
 *     A failure mid-stream aborts the transfer (the client sees a truncated response).
 *
 *   POST /retention/run?dry_run=1
 *     { "dry_run": true, "deleted_snapshots": 120, "deleted_bytes": 123456789,
 *       "kept_pinned": 17, "by_rule": {"max_age": 100, "max_bytes": 0,
 *       "max_snapshots_per_target": 0, "downsample": 20},
 *       "database_size_bytes": 987654321, "database_size_before_bytes": 998877665,
 *       "duration_ms": 420, "started", "started_unix_ms", "complete": true,
 *       "max_bytes_unmet": false, "error": null }
 *     kept_pinned: snapshots protected by a pin or an incident (never deleted); a dry run
 *     reports the same counts a real run would delete, and an estimated database size.
 *     409 when a run is already in progress.
 *
 *   GET /metrics  (no /api/v1 prefix)
 *     Prometheus text format 0.0.4. Families the daemon exports:
 *       collectord_scrapes_total{job,kind,result}            counter (result = snapshot status)
 *       collectord_scrape_duration_seconds{job,kind}         histogram
 *       collectord_scrape_bytes_total{job,kind}              counter (raw bytes received)
 *       collectord_scrapes_dropped_total{job,kind,reason}    counter (queue full, exclusivity)
 *       collectord_queue_depth{queue}, collectord_queue_capacity{queue}   gauges
 *       collectord_retention_deleted_snapshots_total, collectord_retention_deleted_bytes_total
 *       collectord_database_size_bytes                       gauge
 *       collectord_target_up{job,instance,target}            gauge 1/0 (absent when unknown)
 *     plus the server's own collectord_api_requests_total{route,code} and
 *     collectord_api_connections.
 *
 * SUMMARIES (what collectorctl show/top/inspect render)
 *   "summary" is the parser's JSON as stored, its shape chosen by the SNAPSHOT's "format" and
 *   documented with each parser: pprof in daemon/pprof.h (per sample type its total and
 *   top_flat / top_cum rows {"function", "file", "flat", "flat_pct", "cum", "cum_pct"}),
 *   goroutine_text in daemon/goroutine.h ("states", "groups", "findings" [{"kind", "severity",
 *   "message", ...}], ...), heap_text in daemon/heaptext.h, gops_* in daemon/gopsfmt.h, trace in
 *   daemon/trace.h (whose own "format" member is the trace format, "v1" or "v2"). Parsers may add
 *   members; clients print or ignore the ones they do not know.
 */
#ifndef COLLECTORD_API_H
#define COLLECTORD_API_H

#define CD_API_VERSION        "v1"
#define CD_API_PREFIX         "/api/v1"
#define CD_API_DEFAULT_SOCKET "/run/collectord/collectord.sock"
#define CD_API_SOCKET_MODE    0660

/* Page sizes of list routes. */
#define CD_API_DEFAULT_LIST_LIMIT    100
#define CD_API_MAX_LIST_LIMIT        100000 /* ceiling of the configurable max_page_size */
#define CD_API_DEFAULT_SERIES_POINTS 10000
#define CD_API_MAX_SERIES_POINTS     100000

/* Capture request bounds. */
#define CD_API_CAPTURE_MAX_KINDS    16
#define CD_API_CAPTURE_MAX_LABELS   16
#define CD_API_INCIDENT_NAME_MAX    64
#define CD_API_DEFAULT_CAPTURE_HTTP "cpu,heap,allocs,goroutine,goroutine_dump,mutex,block,trace"
#define CD_API_DEFAULT_CAPTURE_GOPS "goroutine_dump,memstats,stats,version,heap"
#define CD_API_DEFAULT_CAPTURE_MS   120000
#define CD_API_MAX_CAPTURE_MS       600000

/* The "code" member of error bodies. */
#define CD_API_CODE_BAD_REQUEST     "bad_request"
#define CD_API_CODE_UNAUTHORIZED    "unauthorized"
#define CD_API_CODE_FORBIDDEN       "forbidden"
#define CD_API_CODE_NOT_FOUND       "not_found"
#define CD_API_CODE_METHOD          "method_not_allowed"
#define CD_API_CODE_CONFLICT        "conflict"
#define CD_API_CODE_TOO_LARGE       "too_large"
#define CD_API_CODE_TOO_MANY        "too_many_requests"
#define CD_API_CODE_INTERNAL        "internal"
#define CD_API_CODE_NOT_IMPLEMENTED "not_implemented"
#define CD_API_CODE_UNAVAILABLE     "unavailable"
#define CD_API_CODE_TIMEOUT         "timeout"

#endif
