/*
 * relabel — Prometheus relabeling (relabel_configs) on target label sets: the actions replace,
 * keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase and
 * uppercase, with Prometheus's defaults and validation rules.
 *
 * Regexes are written in Go's RE2 syntax in configs; we translate the common subset to POSIX ERE
 * (regex.h) and anchor it as Prometheus does (^(?:re)$). What differs from RE2:
 *   - translated: (?:...) groups, (?P<name>...) / (?<name>...) named groups, \d \D \s \S \w \W,
 *     \Q...\E, \A \z, \n \t \r \f \v, \xHH (ASCII), escapes inside [...] classes, a leading (?i);
 *   - rejected with an error: lazy quantifiers (*? +? ?? {n,m}?), other flags ((?s), (?m), (?U),
 *     (?i) anywhere but at the start), \p{...} Unicode classes, backreferences;
 *   - POSIX matching is leftmost-longest where RE2 is leftmost-first: the anchored match as a
 *     whole is the same, but which alternative a capture group takes can differ, e.g.
 *     (a|ab)(c|bcd) on "abcd";
 *   - lowercase/uppercase change ASCII letters only.
 * A compiled rule list is immutable and may be applied from several threads at once (glibc's
 * regexec locks internally). Owns its strings and compiled regexes.
 */
#ifndef CD_RELABEL_H
#define CD_RELABEL_H

#include "err.h"
#include "target.h"

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cd_relabel_action {
    CD_RELABEL_REPLACE = 0,
    CD_RELABEL_KEEP,
    CD_RELABEL_DROP,
    CD_RELABEL_KEEPEQUAL,
    CD_RELABEL_DROPEQUAL,
    CD_RELABEL_HASHMOD,
    CD_RELABEL_LABELMAP,
    CD_RELABEL_LABELDROP,
    CD_RELABEL_LABELKEEP,
    CD_RELABEL_LOWERCASE,
    CD_RELABEL_UPPERCASE,
};

/* Prometheus's defaults, also used to tell "left at default" from "set". */
#define CD_RELABEL_DEFAULT_SEPARATOR   ";"
#define CD_RELABEL_DEFAULT_REGEX       "(.*)"
#define CD_RELABEL_DEFAULT_REPLACEMENT "$1"

/* An anchored regex translated from RE2 syntax. */
struct cd_regex {
    char *src; /* as written */
    regex_t re;
    bool compiled;
    size_t n_posix_groups; /* including the anchoring group */
    /* RE2 capture group i (1-based, index 0 unused) -> POSIX group index */
    size_t *group_map;
    char **group_names; /* NULL entries for unnamed groups; same indexing */
    size_t n_groups;    /* RE2 capture groups */
};

int cd_regex_compile(struct cd_regex *rx, const char *src, struct cd_err *err);
void cd_regex_free(struct cd_regex *rx);
bool cd_regex_match(const struct cd_regex *rx, const char *s);

/* One relabel_configs entry. Fields are set by the config loader, then cd_relabel_validate(). */
struct cd_relabel_rule {
    enum cd_relabel_action action;
    char **source_labels;
    size_t n_source_labels;
    bool source_labels_set;
    char *separator;    /* NULL = default ";" */
    char *target_label; /* NULL = unset */
    char *replacement;  /* NULL = default "$1" */
    uint64_t modulus;
    struct cd_regex regex; /* compiled; default "(.*)" when the config gave none */
    bool regex_set;
};

const char *cd_relabel_action_name(enum cd_relabel_action a);
/* Case-insensitive, as Prometheus. -EINVAL when unknown. */
int cd_relabel_action_parse(const char *s, enum cd_relabel_action *out);

/* Prometheus's cross-field rules (target_label required for replace, modulus for hashmod, ...);
 * compiles the default regex when none was set. -EINVAL with a message. */
int cd_relabel_validate(struct cd_relabel_rule *r, struct cd_err *err);
void cd_relabel_rule_free(struct cd_relabel_rule *r);

/*
 * Applies rules in order to labels (changed in place; an empty value deletes a label, as in
 * Prometheus). Returns 1 to keep the target, 0 when a rule dropped it, -ENOMEM.
 */
int cd_relabel_apply(const struct cd_relabel_rule *rules, size_t n, struct cd_labels *labels);

/* [a-zA-Z_][a-zA-Z0-9_]* */
bool cd_relabel_label_name_valid(const char *name);

/* True when any rule reads or writes the label (source_labels, target_label). */
bool cd_relabel_uses_label(const struct cd_relabel_rule *rules, size_t n, const char *name);

#endif
