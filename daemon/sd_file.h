/*
 * sd_file — Prometheus file-based discovery: reads the target group files (JSON or YAML) that the
 * patterns of one file_sd_configs entry match, re-reading only files whose inode, size or mtime
 * changed. A file that fails to read or parse keeps its last good groups, and the error is kept
 * for the caller to report. Every group carries __meta_filepath.
 *
 * File format (both JSON and YAML): a list of {targets: ["host:port", ...], labels: {k: v}}.
 * JSON ignores unknown keys as Prometheus does; YAML rejects them (Prometheus reads YAML strictly).
 *
 * Blocking (glob, stat, read): runs on a discovery worker thread, one refresh at a time per
 * struct. Owns its per-file cache and error list.
 */
#ifndef CD_SD_FILE_H
#define CD_SD_FILE_H

#include "config.h"
#include "err.h"

#include <stdint.h>
#include <sys/types.h>

#define CD_SD_FILE_MAX_BYTES (16u << 20) /* one target file */
#define CD_SD_FILE_MAX_FILES 1000        /* files matched by one file_sd_configs entry */

struct cd_sd_file_entry {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
    bool good; /* groups hold the file's last good content */
    struct cd_groups groups;
};

struct cd_sd_file {
    const struct cd_file_sd_conf *conf;
    size_t max_targets;
    struct cd_sd_file_entry *files;
    size_t n_files;
    struct cd_strv errors; /* from the latest refresh: "path: reason" */
};

void cd_sd_file_init(struct cd_sd_file *s, const struct cd_file_sd_conf *conf, size_t max_targets);
void cd_sd_file_destroy(struct cd_sd_file *s);

/* Re-globs and re-reads what changed; appends a copy of every file's groups to out. -ENOMEM. */
int cd_sd_file_refresh(struct cd_sd_file *s, struct cd_groups *out);

/* Parses one file's bytes: JSON when name ends in .json, YAML otherwise. Messages carry
 * name:line:column where the format gives one. */
int cd_sd_file_parse(const char *name, const void *data, size_t len, size_t max_targets,
                     struct cd_groups *out, struct cd_err *err);

/* The directories holding the patterns' files (to watch for changes), without duplicates. */
int cd_sd_file_dirs(const struct cd_file_sd_conf *conf, struct cd_strv *out);

#endif
