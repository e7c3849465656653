/*
 * targets — turns a job's config plus discovered target groups into a struct cd_target_set, the
 * contract with the scrape engine (target.h).
 *
 * Per address, Prometheus style: the group's and the entry's labels, then job, __address__,
 * __scheme__, __scrape_interval__, __scrape_timeout__ and __param_<name> where the groups did not
 * set them; relabel_configs (per kind, with __name__ and __profile_path__, when the rules look at
 * those); then instance defaults to the address, __param_* labels override query parameters and
 * every label starting with "__" is dropped. Kind specs get path = path_prefix + kind path, query =
 * job params + kind params + seconds=N + the kind's fixed query (debug=2), interval and timeout.
 * Targets that end without an address, with a bad one or with no kind are dropped and counted.
 *
 * Pure logic on caller-owned data: runs on discovery's worker threads, in the loop for merges
 * (cheap copies), or in the CLI. Everything it returns is owned by the caller.
 */
#ifndef CD_TARGETS_H
#define CD_TARGETS_H

#include "config.h"
#include "target.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct cd_targets_stats {
    size_t built;         /* targets produced */
    size_t dropped;       /* dropped by relabeling (keep/drop rules, empty __address__) */
    size_t invalid;       /* bad address or scheme, no enabled kind, too many labels */
    size_t duplicates;    /* the same id twice: the first one wins */
    size_t over_limit;    /* past limits.max_targets */
    char last_error[256]; /* the latest invalid target, for messages */
};

/* Appends the targets of groups (discovered for job) to out. Only -ENOMEM fails; bad targets
 * are counted in st (which may be NULL). */
int cd_targets_build(const struct cd_config *cfg, const struct cd_job_conf *job,
                     const struct cd_groups *groups, struct cd_target_set *out,
                     struct cd_targets_stats *st);

/* Deep copy; dst is overwritten (zeroed first). -ENOMEM (dst then holds a partial copy that
 * cd_target_free() releases). */
int cd_target_copy(struct cd_target *dst, const struct cd_target *src);

/*
 * Concatenates the parts in order into out (empty on entry), keeping the first target of each
 * id and at most max_targets (0 = no limit); the rest are counted in st. -ENOMEM.
 */
int cd_targets_merge(const struct cd_target_set *const *parts, size_t n, size_t max_targets,
                     struct cd_target_set *out, struct cd_targets_stats *st);

/* Same ids with the same fingerprints in the same order. */
bool cd_targets_same(const struct cd_target_set *a, const struct cd_target_set *b);

/* Human-readable listing: one block per target with its labels and the request of each kind. */
int cd_targets_print(const struct cd_target_set *set, FILE *f);

#endif
