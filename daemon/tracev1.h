/*
 * tracev1 — the decoder for the "v1" Go execution trace format (Go 1.11 … 1.21; headers
 * "go 1.11 trace" to "go 1.21 trace"), feeding a struct cd_tracesum.
 *
 * One pass over the bytes: event framing and argument counts are checked as Go 1.19's own parser
 * checks them; string definitions may come after their first use, so names are counted by string
 * ID and resolved at the end; events whose relative order matters are collected and replayed in
 * time order. Pure; any thread; owns only its temporary tables (struct cd_tracev1, private).
 */
#ifndef CD_TRACEV1_H
#define CD_TRACEV1_H

#include "err.h"
#include "tracesum.h"

#include <stddef.h>
#include <stdint.h>

/* Decodes data[0..len) (the whole trace, header included; minor = the header's version) into ts.
 * On a corrupt or truncated trace returns a negative errno with err set ("v1: event at offset
 * ...") and ts still holds everything decoded before that point, finalised as far as possible. */
int cd_tracev1_parse(const uint8_t *data, size_t len, int minor, struct cd_tracesum *ts,
                     struct cd_err *err);

#endif
