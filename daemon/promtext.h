/*
 * promtext — renders the daemon's metrics, given as JSON by the backend, in the Prometheus text
 * exposition format 0.0.4 (what GET /metrics serves). Validates metric and label names, escapes
 * label values and help texts, and checks histograms (cumulative, sorted buckets; +Inf added).
 * Pure; any thread; owns nothing.
 *
 * Input: {"metrics": [FAMILY, ...]} (or the array itself), where FAMILY is
 *   {"name": "collectord_scrapes_total", "type": "counter" | "gauge" | "untyped" | "histogram",
 *    "help": "one line",
 *    "samples": [ {"labels": {"job": "api"}, "value": 12}, ... ]}
 * and a histogram sample is
 *   {"labels": {...}, "buckets": [[0.1, 3], [0.5, 7], ...], "sum": 12.5, "count": 9}
 * with [upper bound "le", cumulative count] pairs. Values are JSON numbers, or the strings
 * "+Inf", "-Inf", "NaN".
 */
#ifndef CD_PROMTEXT_H
#define CD_PROMTEXT_H

#include "buf.h"
#include "err.h"

#include <jansson.h>
#include <stdbool.h>

#define CD_PROMTEXT_MAX_FAMILIES 1000
#define CD_PROMTEXT_MAX_LABELS   32

/* Appends the text to out (whose limit bounds the response). -EINVAL names the bad family. */
int cd_promtext_render(const json_t *doc, struct cd_buf *out, struct cd_err *err);

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: [a-zA-Z_][a-zA-Z0-9_]*, not "__*". */
bool cd_promtext_metric_name_ok(const char *s);
bool cd_promtext_label_name_ok(const char *s);

/* Appends a label value / help text escaped as the format requires. */
int cd_promtext_escape(struct cd_buf *out, const char *s, bool quote_escape);

#endif
