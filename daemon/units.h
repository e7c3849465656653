/*
 * units — durations and byte sizes as people write them in config files and read them in tables.
 * Pure functions; any thread.
 */
#ifndef CD_UNITS_H
#define CD_UNITS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Prometheus-style durations: one or more <number><unit> groups, largest unit first, e.g. "30s",
 * "1h30m", "250ms", "14d", "2w", "1y" (units ms s m h d w y; d = 24h, w = 7d, y = 365d).
 * "0" alone means zero. Result in milliseconds. -EINVAL on bad syntax, -ERANGE on overflow.
 */
int cd_units_parse_duration(const char *s, int64_t *ms);

/*
 * Byte sizes: an integer or decimal number with an optional unit: B, K/KB/KiB, M/MB/MiB, G/GB/GiB,
 * T/TB/TiB, P/PB/PiB. All units are powers of 1024 (as Prometheus's own size flags), so "64MB" ==
 * "64MiB". -EINVAL, -ERANGE.
 */
int cd_units_parse_size(const char *s, uint64_t *bytes);

/* "512 B", "1.5 KiB", "20.0 GiB". Returns dst. */
char *cd_units_fmt_size(char *dst, size_t size, uint64_t bytes);

/* Compact Prometheus-style duration: "250ms", "30s", "1h30m", "14d". Returns dst. */
char *cd_units_fmt_duration(char *dst, size_t size, int64_t ms);

/* "just now", "42s ago", "3m ago", "5h ago", "2d ago", or "in 3m" for the future. Returns dst. */
char *cd_units_fmt_ago(char *dst, size_t size, int64_t then_ms, int64_t now_ms);

/* RFC 3339 UTC with milliseconds: "2026-11-21T21:04:35.123Z". Returns dst. */
char *cd_units_fmt_rfc3339(char *dst, size_t size, int64_t unix_ms);

/* Accepts RFC 3339 ("2026-11-21T21:04:35Z", fractional seconds and offsets allowed), a Unix time
 * in seconds or milliseconds (13+ digits), or a duration relative to now ("-15m", "15m" both mean
 * 15 minutes ago). */
int cd_units_parse_time(const char *s, int64_t now_ms, int64_t *unix_ms);

#endif
