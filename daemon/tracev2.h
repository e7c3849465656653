/*
 * tracev2 — the decoder for the generational "v2" Go execution trace format (Go 1.22 … 1.26;
 * headers "go 1.22 trace" to "go 1.26 trace"), feeding a struct cd_tracesum.
 *
 * One pass over the batches. Each generation has its own string table and frequency, which may
 * come after the events that need them, so per-generation counts are kept by string ID and events
 * whose order matters are kept per generation, then resolved and replayed in time order when the
 * generation ends. Framing is checked as Go's reader checks it (batch sizes, generation order,
 * event IDs legal for the header version, string/stack limits, one frequency per generation, a
 * ClockSnapshot per generation from 1.25, EndOfGeneration from 1.26), plus a few cheap state
 * checks (status enums; a fast syscall exit on a thread known to hold no P). Pure; any thread;
 * owns only its temporary tables (struct cd_tracev2, private).
 */
#ifndef CD_TRACEV2_H
#define CD_TRACEV2_H

#include "err.h"
#include "tracesum.h"

#include <stddef.h>
#include <stdint.h>

/* Decodes data[0..len) (the whole trace, header included; minor = the header's version) into ts.
 * On a corrupt or truncated trace returns a negative errno with err set ("v2: batch at offset
 * ...") and ts holds every complete generation plus what was decoded of the broken one. */
int cd_tracev2_parse(const uint8_t *data, size_t len, int minor, struct cd_tracesum *ts,
                     struct cd_err *err);

#endif
