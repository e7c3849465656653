/*
 * log — the daemon's one logger.
 *
 * Writes whole lines to a file descriptor (stderr) with one write(2), so lines from different
 * threads never interleave. Under systemd (stderr connected to the journal) each line carries a
 * syslog priority prefix ("<3>") and no timestamp; otherwise a local timestamp and level word.
 * Modules below the daemon layer never log: they return a struct cd_err and their caller logs once.
 * Any thread; the struct is owned by main and passed down.
 */
#ifndef CD_LOG_H
#define CD_LOG_H

#include <pthread.h>
#include <stdint.h>

enum cd_log_level {
    CD_LOG_ERR = 3,
    CD_LOG_WARNING = 4,
    CD_LOG_NOTICE = 5,
    CD_LOG_INFO = 6,
    CD_LOG_DEBUG = 7,
};

enum cd_log_style {
    CD_LOG_STYLE_AUTO = 0, /* journal prefixes when stderr is the journal stream, else plain */
    CD_LOG_STYLE_PLAIN,
    CD_LOG_STYLE_JOURNAL,
};

struct cd_log {
    int level; /* lines with a level above this are dropped */
    int fd;
    int journal; /* 1: "<N>" prefixes, no timestamps */
    pthread_mutex_t lock;
};

void cd_log_init(struct cd_log *log, int level, int fd, enum cd_log_style style);
void cd_log_destroy(struct cd_log *log);

/* "err", "error", "warning", "warn", "notice", "info", "debug" or a digit 3..7. */
int cd_log_level_parse(const char *s, int *level);
const char *cd_log_level_name(int level);

void cd_log_write(struct cd_log *log, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define cd_log_at(log, lvl, ...)                                                                   \
    do {                                                                                           \
        struct cd_log *cd_log_at_ = (log);                                                         \
        if (cd_log_at_ != NULL && cd_log_at_->level >= (lvl))                                      \
            cd_log_write(cd_log_at_, (lvl), __VA_ARGS__);                                          \
    } while (0)
#define cd_log_err(log, ...)     cd_log_at(log, CD_LOG_ERR, __VA_ARGS__)
#define cd_log_warning(log, ...) cd_log_at(log, CD_LOG_WARNING, __VA_ARGS__)
#define cd_log_notice(log, ...)  cd_log_at(log, CD_LOG_NOTICE, __VA_ARGS__)
#define cd_log_info(log, ...)    cd_log_at(log, CD_LOG_INFO, __VA_ARGS__)
#define cd_log_debug(log, ...)   cd_log_at(log, CD_LOG_DEBUG, __VA_ARGS__)

/*
 * A complaint that repeats (a target that stays down) is logged when it starts and when its text
 * changes, then once more as "recovered" when it stops: never once per scrape. Owned by whoever
 * tracks the failing thing; not thread-safe on its own.
 */
struct cd_complaint {
    int active;
    uint64_t repeats; /* failures since the last line logged */
    uint64_t total;   /* failures since it started */
    char last[192];
};

void cd_log_complain(struct cd_log *log, struct cd_complaint *c, int level, const char *who,
                     const char *msg);
void cd_log_recovered(struct cd_log *log, struct cd_complaint *c, const char *who);

#endif
