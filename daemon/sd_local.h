/*
 * sd_local — discovery of the Go processes on this host (local_sd_configs).
 *
 * A refresh scans /proc: a process is Go when its executable (opened through /proc/<pid>/exe, so
 * a replaced or deleted binary still counts) has Go build info (the ".go.buildinfo" blob, both the
 * inline-string form of Go 1.18+ and the older pointer form). For each Go process:
 *   - gops: its port file <dir>/<pid>, dir being the process's $GOPS_CONFIG_DIR, else
 *     $XDG_CONFIG_HOME/gops, else $HOME/.config/gops (read from /proc/<pid>/environ, HOME from the
 *     user database when environ is unreadable); the port counts only when it is a LISTEN socket
 *     owned by that pid (socket inodes of /proc/<pid>/fd against /proc/net/tcp{,6}), so stale
 *     files of dead or reused pids are ignored;
 *   - pprof: its other listening TCP ports reachable over loopback are probed once with
 *     GET <path_prefix>/debug/pprof/ (libcurl easy API, short timeout); the answer is cached per
 *     (pid, start time, port), so a steady state probes nothing (misses are retried after 10 min).
 * Targets carry pid, exe, go_version and __meta_local_* labels, and vanish with their process.
 * Executables are cached by (device, inode, size, mtime), so unchanged binaries are read once.
 *
 * Blocking (/proc, files, HTTP probes): runs on a discovery worker thread, one refresh at a time
 * per struct. Owns its caches and error list. The proc root is injectable for tests.
 */
#ifndef CD_SD_LOCAL_H
#define CD_SD_LOCAL_H

#include "config.h"
#include "err.h"

#include <stdint.h>
#include <sys/types.h>

#define CD_SD_LOCAL_NEG_PROBE_TTL_MS (10 * 60 * 1000) /* re-probe a port that said no */
#define CD_SD_LOCAL_MAX_EXE_CACHE    4096
#define CD_SD_LOCAL_MAX_FDS          65536 /* fds examined per process */

struct cd_sd_local_exe {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
    char go_version[64]; /* "" = not Go */
    bool seen;           /* in the latest scan (unseen entries are pruned) */
};

struct cd_sd_local_probe {
    pid_t pid;
    uint64_t start_time; /* /proc/<pid>/stat field 22: tells pid reuse apart */
    int port;
    bool is_pprof;
    int64_t probed_ms; /* monotonic */
    bool seen;
};

struct cd_sd_local {
    const struct cd_local_sd_conf *conf;
    char *path_prefix; /* the job's, for the probe URL */
    char *proc;        /* "/proc" unless a test says otherwise */
    struct cd_sd_local_exe *exes;
    size_t n_exes;
    struct cd_sd_local_probe *probes;
    size_t n_probes;
    size_t probes_sent; /* HTTP probes made by the latest refresh (tests check the cache) */
    struct cd_strv errors;
};

int cd_sd_local_init(struct cd_sd_local *s, const struct cd_local_sd_conf *conf,
                     const char *path_prefix, const char *proc_root);
void cd_sd_local_destroy(struct cd_sd_local *s);

/* Scans the host; appends one group holding every target found. -ENOMEM only. */
int cd_sd_local_refresh(struct cd_sd_local *s, struct cd_groups *out);

/*
 * The Go version recorded in an executable's build info ("go1.19.8"). 0, -ENOENT when the file
 * is not a Go binary (or too old to carry build info), other negative errno on I/O errors.
 */
int cd_sd_local_go_version(const char *path, char *out, size_t size);
int cd_sd_local_go_version_fd(int fd, char *out, size_t size);

#endif
