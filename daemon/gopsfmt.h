/*
 * gopsfmt — summarizes the text replies of the gops agent (protocols.md §1.3–1.4): memstats
 * (command 0x03, "key: value" lines), stats (0x07, four lines) and version (0x04,
 * runtime.Version()). Parsed by key; unknown keys are listed and otherwise ignored, so every agent
 * version reads: v0.3.3–v0.3.28's stack-mspan-inuse / stack-mcache-* names and HEAD's
 * mspan-in-use / mcache-* names land on the same series, and ≤ v0.3.2's "gc-pause" (then the
 * total pause as a duration) is told apart from the newer "gc-pause" (the last pause in ns).
 *
 * Pure functions: any thread, no logging, no allocation beyond the summary itself.
 *
 * Byte values are taken exactly from "(N bytes)" or "N bytes" or a bare integer; only when none is
 * there is "1.50MB" converted (and the key listed in "approximate_keys"). Durations are Go
 * time.Duration strings ("1h2m3.5s", "79.189µs", "0s") converted exactly to nanoseconds.
 *
 * Summary JSON (out->format = the format read), every key of the format always present:
 *   memstats: {"memstats": {"alloc": n, "total_alloc": n, "sys": n, "lookups": n, "mallocs": n,
 *               "frees": n, "heap_alloc": n, "heap_sys": n, "heap_idle": n, "heap_inuse": n,
 *               "heap_released": n, "heap_objects": n, "stack_inuse": n, "stack_sys": n,
 *               "mspan_inuse": n, "mspan_sys": n, "mcache_inuse": n, "mcache_sys": n,
 *               "buck_hash_sys": n, "other_sys": n, "gc_sys": n, "next_gc": n, "num_gc": n,
 *               "num_forced_gc": n, "gc_pause_total_ns": n, "gc_pause_last_ns": n,
 *               "gc_cpu_fraction": x}            // only the keys the text had
 *              "last_gc": "2026-11-21 20:46:26.43 +0000 UTC" | null ("-": no GC yet),
 *              "last_gc_unix_ns": n | null, "gc_pause_end_unix_ns": n | null,
 *              "enable_gc": bool | null, "debug_gc": bool | null,
 *              "agent_version": "head" | "v0.3.3-v0.3.28" | "v0.3.2-or-older" | "unknown",
 *              "unknown_keys": [...], "approximate_keys": [...], "unparsed_lines": n}
 *   stats:    {"goroutines": n|null, "threads": n|null, "gomaxprocs": n|null, "num_cpu": n|null,
 *              "unknown_keys": [...], "unparsed_lines": n}
 *   version:  {"version": "go1.19.8", "major": 1|null, "minor": 19|null, "patch": 8|null,
 *              "devel": bool}
 * Series: memstats: every number in "memstats" under its key; stats: goroutines, threads,
 * gomaxprocs, num_cpu; version: "go_minor" when the minor version is known.
 */
#ifndef CD_GOPSFMT_H
#define CD_GOPSFMT_H

#include "err.h"
#include "kind.h"
#include "summary.h"

#include <stddef.h>
#include <stdint.h>

/* fmt: CD_FORMAT_GOPS_MEMSTATS / _STATS / _VERSION, or CD_FORMAT_UNKNOWN to sniff. 0, or a
 * negative errno with err saying what: -EBADMSG when nothing in the text is recognised, -EINVAL
 * for a format this module does not read, -EFBIG past lim->max_input, -ENOMEM. lim NULL =
 * defaults. `out` must have been initialised; on success its old contents are replaced, on
 * failure it is left as it was. */
int cd_gopsfmt_summarize(enum cd_format fmt, const uint8_t *data, size_t len,
                         const struct cd_parse_limits *lim, struct cd_summary *out,
                         struct cd_err *err);

/* Cheap: CD_FORMAT_GOPS_MEMSTATS ("alloc: " first), CD_FORMAT_GOPS_STATS ("goroutines: "
 * first), CD_FORMAT_GOPS_VERSION (one short line "go1..." / "devel ..."), else UNKNOWN. */
enum cd_format cd_gopsfmt_sniff(const uint8_t *data, size_t len);

/* A Go time.Duration string ("-1h2m3.5s", "79.189µs", "1.5us", "0") to nanoseconds, exactly
 * (fraction digits beyond nanoseconds are dropped, as Go does). -EINVAL, -ERANGE. */
int cd_gopsfmt_parse_duration(const char *s, size_t len, int64_t *ns);

/* Go's time.Time.String() ("2006-01-02 15:04:05.999999999 -0700 MST", optionally followed by
 * " m=+1.23") to Unix nanoseconds. -EINVAL, -ERANGE. */
int cd_gopsfmt_parse_time(const char *s, size_t len, int64_t *unix_ns);

#endif
