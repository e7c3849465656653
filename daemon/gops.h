/*
 * gops — a client for the gops agent protocol (protocols.md §1) on uv_tcp: resolve, connect,
 * write the one command byte right after connect (an idle connection blocks the agent for every
 * other client), read to EOF (the agent's only framing), all under a deadline, because on some
 * errors the agent never closes the connection.
 *
 * Loop thread only. Each struct cd_gops_xfer owns its TCP and timer handles, its resolver request
 * and its body buffer; it frees itself once its handles are closed. Serializing requests to one
 * agent is the scheduler's job (serial groups), not this module's. SetGCPercent (0x10) and
 * BinaryDump (0x09) are refused: collectord never changes a target nor copies its executable.
 */
#ifndef CD_GOPS_H
#define CD_GOPS_H

#include "err.h"
#include "snapshot.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct cd_gops_xfer;

struct cd_gops_request {
    const char *host; /* IP literal or name (resolved on libuv's thread pool) */
    int port;
    int cmd;                    /* a read-only command byte: 0x01 .. 0x08 */
    int64_t connect_timeout_ms; /* default 5000, never more than timeout_ms */
    int64_t timeout_ms;         /* whole request, default 10000 */
    size_t max_body;            /* default 64 MiB */
    /* Asked before each chunk is kept; < 0 aborts (byte budget exhausted). */
    int (*on_bytes)(void *ctx, size_t n);
};

struct cd_gops_result {
    int cmd;
    int status;       /* 0: read to EOF; else a negative libuv error */
    bool resolved;    /* the name resolved */
    bool connected;   /* the TCP connection was established */
    bool timed_out;   /* the deadline passed (connect or read) */
    bool too_large;   /* stopped at max_body */
    bool over_budget; /* stopped because on_bytes said no */
    uint8_t *body;    /* owned by the result: steal it (set NULL) to keep it */
    size_t body_len;
    size_t max_body;
    int64_t timeout_ms;
    int64_t duration_ms;
    int64_t first_byte_ms; /* -1 when none */
};

/* On the loop thread, once, unless cancelled first. */
typedef void (*cd_gops_done_fn)(struct cd_gops_result *r, void *ctx);

int cd_gops_start(uv_loop_t *loop, const struct cd_gops_request *req, cd_gops_done_fn done,
                  void *ctx, struct cd_gops_xfer **out, struct cd_err *err);

/* Aborts; done never fires. The handles close on the next loop iterations. */
void cd_gops_cancel(struct cd_gops_xfer *x);

/*
 * What the result means (snapshot status, message malloc'd in *msg, NULL for OK):
 *   EOF with bytes                     -> ok (the agent's complete answer; a truncated answer
 *                                         looks the same here: the parser decides later)
 *   EOF with no bytes                  -> error (unknown command, or nothing to say)
 *   deadline, no bytes, CPU or trace   -> busy (the agent leaves the connection open when the
 *                                         profiler or tracer is already in use in the process)
 *   deadline otherwise                 -> timeout
 *   refused, unreachable, unresolved, connect deadline, reset before any byte -> connect_error
 *   reset after some bytes             -> error (truncated)
 *   body cap or byte budget            -> too_large
 */
enum cd_snap_status cd_gops_classify(const struct cd_gops_result *r, char **msg);

#endif
