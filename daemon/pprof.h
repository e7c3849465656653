/*
 * pprof — summarizes a profile in Google's profile.proto format (what net/http/pprof and the gops
 * agent send for cpu, heap, allocs, goroutine, mutex, block and threadcreate), gzip-compressed or
 * raw, into a struct cd_summary: the profile's metadata, and per sample type the total and the
 * top functions by flat and by cumulative value, computed the way `go tool pprof -top` does.
 *
 * Pure functions: any thread (ingest workers, collectorctl inspect), no logging, no global state.
 * Every call owns its working memory (a gunzip buffer and an arena, both capped by struct
 * cd_parse_limits) and frees it before returning; the summary goes to the caller.
 *
 * How it decodes: gzip with libdeflate, growing the output buffer up to lim->max_decompressed
 * (gzip bombs stop there; several gzip members are concatenated). The top-level Profile fields
 * are walked in place — strings are not copied — and every sub-message (ValueType, Mapping,
 * Function, Location, Sample) is unpacked by protobuf-c into an arena (the common shapes of
 * Location and Sample are decoded by hand, which protobuf-c judges whenever they differ), samples
 * one at a time in scratch space that is reused. A decompressed profile of 1 MiB or more gives
 * the pages the walks are done with back to the kernel as it goes (all but the string table, which
 * names point into), so the peak holds the strings and what is still to be walked rather than the
 * whole decompressed profile.
 * Validation follows pprof's own (profile.Parse + CheckValid): string_table[0] must be "", ids
 * are non-zero and unique, every string index, location id and function id must resolve, every
 * sample has one value per sample type (a location line without a function id is tolerated and
 * counts by address; pprof would reject it). Legacy (pre-protobuf) profiles and debug=1 texts are
 * rejected with an error that says so ("pprof: legacy text/heap format is not supported"): the
 * texts have their own parsers, goroutine.h (count profiles, dumps) and heaptext.h (heap text).
 * Memory: the gunzip buffer (max_decompressed) and the arena together stay under max_memory.
 *
 * Flat and cum: a sample's flat value goes to its leaf frame (the first line of its first
 * location: inlined frames are listed innermost first); its cum value goes once to every distinct
 * function on its stack, however often that function recurs. Functions are merged by name, as
 * `go tool pprof`'s default -functions granularity does. A location without function info
 * (unsymbolized profiles) counts as a function named by its address ("0x4567ab"), where
 * go tool pprof would show the binary's name instead. Frames beyond lim->max_stack_depth in one
 * sample are not walked (counted in "truncated_stacks"; Go itself records at most 64 or 128
 * locations per sample, so 256 frames cut only hostile or unusual inputs).
 *
 * Summary JSON (out->format = CD_FORMAT_PPROF), every key always present:
 *   {
 *     "encoding": "gzip" | "none",
 *     "bytes": <input bytes>, "decompressed_bytes": <protobuf bytes>,
 *     "sample_types": [                       // in profile order; index = sample value index
 *       {"type": "inuse_space", "unit": "bytes",
 *        "total": <sum of values>,             // int; the series value
 *        "total_abs": <sum of |values|>,       // percentages are relative to this (as pprof)
 *        "saturated": bool,                    // the sums hit INT64_MAX (hostile values): totals
 *                                              // are clamped, function values may have wrapped
 *        "top_flat": [ROW...],                 // up to lim->top_n rows, flat != 0, by |flat| desc
 *        "top_cum":  [ROW...]}                 // up to lim->top_n rows, cum != 0, by |cum| desc
 *     ],
 *       ROW = {"function": "main.work", "file": "/src/main.go" (or ""),
 *              "flat": int, "cum": int}
 *              (ties: by function name, like pprof; percentages are value / total_abs)
 *     "default_sample_type": "alloc_space" | null,   // as written in the profile
 *     "default_index": <index go tool pprof shows by default: default_sample_type, else the last>,
 *     "period_type": {"type": "cpu", "unit": "nanoseconds"} | null,
 *     "period": int,
 *     "time_ns": int | null, "duration_ns": int | null,
 *     "counts": {"samples", "locations", "functions", "mappings", "strings", "nodes"},
 *     "main_binary": {"file": "...", "build_id": "..."} | null,      // the first mapping
 *     "label_keys": {"string": [{"key": "worker", "count": <labels seen>}],
 *                    "numeric": [{"key": "bytes", "unit": "" | "bytes", "count": n}]},
 *     "drop_frames": "", "keep_frames": "", "comments": ["..."], "doc_url": "",
 *     "symbolized": bool,          // some location has function info
 *     "truncated_stacks": int      // samples whose stack was cut at lim->max_stack_depth
 *   }
 * Strings from the profile are UTF-8-sanitized and capped (textscan.h).
 *
 * Series: per sample type its total, named after the type with characters outside [A-Za-z0-9_.-]
 * replaced by '_' ("inuse_space", "alloc_objects", "samples", "cpu", "contentions", "delay",
 * "goroutine", "threadcreate"); an empty type is named "value<i>"; repeated names are added once.
 * A profile whose types are exactly goroutine/count also gets "count" (= goroutines).
 */
#ifndef CD_PPROF_H
#define CD_PPROF_H

#include "err.h"
#include "summary.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 0, or a negative errno with err saying what and where: -EBADMSG for malformed input
 * (-EPROTONOSUPPORT for legacy formats and texts), -EFBIG past lim->max_input / max_decompressed,
 * -ENOMEM past lim->max_memory or when malloc fails. lim NULL = defaults. `out` must have been
 * initialised (cd_summary_init); on success its old contents are replaced, on failure it is left
 * as it was. */
int cd_pprof_summarize(const uint8_t *data, size_t len, const struct cd_parse_limits *lim,
                       struct cd_summary *out, struct cd_err *err);

/* Cheap: true for gzip data (magic 1f 8b) or bytes that open like a raw profile.proto (the first
 * top-level fields have Profile's field numbers and wire types). */
bool cd_pprof_sniff(const uint8_t *data, size_t len);

/* gunzips a complete gzip stream (one or more members) into a malloc'd buffer of at most `cap`
 * bytes. Used by the summarizer; exposed for tests and for other parsers of gzipped bodies.
 * -EFBIG past cap, -EBADMSG for corrupt or truncated data, -ENOMEM. */
int cd_pprof_gunzip(const uint8_t *data, size_t len, size_t cap, uint8_t **out, size_t *out_len,
                    struct cd_err *err);

#endif
