/*
 * discovery — the loop-side orchestrator of target discovery. One source per static group set,
 * file_sd_configs, dns_sd_configs and local_sd_configs entry of every job. Each source's blocking
 * work (reading files, DNS, /proc scans and probes) and its target building (relabeling, kind
 * specs) run on libuv's thread pool (uv_queue_work), one run at a time per source; results come
 * back to the loop, where the sources' target sets are merged in config order (first target of an
 * id wins, at most limits.max_targets) and handed to the consumer when the merged set changed.
 *
 * Triggers: file_sd directories are watched (uv_fs_event, debounced 50 ms) and re-read on every
 * change; every source with a refresh_interval re-runs on its timer; cd_discovery_refresh() (the
 * daemon calls it on SIGHUP) re-runs all of them. A source that fails keeps its previous targets
 * (per file and per DNS name) and reports the error through the optional error callback.
 *
 * The first set is handed over once every source has run once, or after 2 s, whichever comes
 * first, so a slow local probe does not hold back static targets for long.
 *
 * Runs on the loop thread (everything but the work callbacks). Owns its handles, timers, the
 * per-source state and the sources' current target sets. The config must stay alive and
 * unchanged until the close callback ran; a reload creates a new discovery and closes the old.
 */
#ifndef CD_DISCOVERY_H
#define CD_DISCOVERY_H

#include "config.h"
#include "err.h"
#include "target.h"
#include "targets.h"

#include <stdio.h>
#include <uv.h>

struct cd_discovery;

/* Called on the loop thread with a heap-allocated merged set: the callee owns it and frees it
 * with cd_discovery_set_free(). */
typedef void (*cd_discovery_targets_fn)(void *ctx, struct cd_target_set *set);
/* A source's error text changed: msg is the new text ("; "-joined when several), or NULL when
 * the source recovered. source names it: "api/file_sd_configs[0]". */
typedef void (*cd_discovery_error_fn)(void *ctx, const char *source, const char *msg);

int cd_discovery_new(uv_loop_t *loop, const struct cd_config *cfg,
                     cd_discovery_targets_fn on_targets, void *ctx, struct cd_discovery **out,
                     struct cd_err *err);
/* Optional; set it right after cd_discovery_new (before the loop runs). */
void cd_discovery_set_error_cb(struct cd_discovery *d, cd_discovery_error_fn on_error);

/* Re-runs every dynamic source now (a run in progress is followed by one more). */
void cd_discovery_refresh(struct cd_discovery *d);

/* Stops watchers and timers, cancels or waits for work in progress, closes every handle, frees
 * everything, then calls on_closed (may be NULL) from the loop. No callbacks after this call. */
void cd_discovery_close(struct cd_discovery *d, void (*on_closed)(void *ctx), void *ctx);

struct cd_discovery_stats {
    size_t sources;
    size_t targets;                /* in the latest merged set */
    size_t runs;                   /* source runs completed */
    size_t emitted;                /* sets handed to the consumer */
    size_t failing;                /* sources whose latest run reported errors */
    struct cd_targets_stats build; /* summed over the sources' latest runs, plus the merge */
};

void cd_discovery_get_stats(const struct cd_discovery *d, struct cd_discovery_stats *st);

void cd_discovery_set_free(struct cd_target_set *set);

/*
 * collectord --check-config / --dump-config: loads path; prints every error line to errout and
 * returns 1, or (dump) prints the effective config, or prints the effective targets (static and
 * file_sd resolved now, dns/local sources listed as discovered at runtime) and returns 0.
 */
int cd_discovery_check_config(const char *path, bool dump, FILE *out, FILE *errout);

#endif
