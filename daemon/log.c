/* log — see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* systemd sets JOURNAL_STREAM=<dev>:<inode> for the stream it connected; only when our fd is that
 * very stream do we speak the journal's prefix convention. */
static int fd_is_journal(int fd)
{
    const char *js = getenv("JOURNAL_STREAM");
    if (js == NULL || *js == '\0')
        return 0;
    unsigned long long dev = 0, ino = 0;
    if (sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return 0;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void cd_log_init(struct cd_log *log, int level, int fd, enum cd_log_style style)
{
    log->level = level;
    log->fd = fd;
    switch (style) {
    case CD_LOG_STYLE_JOURNAL:
        log->journal = 1;
        break;
    case CD_LOG_STYLE_PLAIN:
        log->journal = 0;
        break;
    default:
        log->journal = fd_is_journal(fd);
        break;
    }
    pthread_mutex_init(&log->lock, NULL);
}

void cd_log_destroy(struct cd_log *log)
{
    if (log != NULL)
        pthread_mutex_destroy(&log->lock);
}

static const struct {
    const char *name;
    int level;
} level_names[] = {
    {"err", CD_LOG_ERR},      {"error", CD_LOG_ERR},     {"warning", CD_LOG_WARNING},
    {"warn", CD_LOG_WARNING}, {"notice", CD_LOG_NOTICE}, {"info", CD_LOG_INFO},
    {"debug", CD_LOG_DEBUG},
};

int cd_log_level_parse(const char *s, int *level)
{
    if (s == NULL)
        return -EINVAL;
    if (s[0] >= '3' && s[0] <= '7' && s[1] == '\0') {
        *level = s[0] - '0';
        return 0;
    }
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i].name) == 0) {
            *level = level_names[i].level;
            return 0;
        }
    }
    return -EINVAL;
}

const char *cd_log_level_name(int level)
{
    switch (level) {
    case CD_LOG_ERR:
        return "error";
    case CD_LOG_WARNING:
        return "warning";
    case CD_LOG_NOTICE:
        return "notice";
    case CD_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void cd_log_write(struct cd_log *log, int level, const char *fmt, ...)
{
    char line[2048];
    size_t n = 0;
    if (log->journal) {
        n = (size_t)snprintf(line, sizeof(line), "<%d>", level);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld %s: ", ts.tv_nsec / 1000000,
                              cd_log_level_name(level));
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (w < 0)
        w = 0;
    n += (size_t)w;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    /* One record per line: embedded newlines from outside text would forge log lines. */
    for (size_t i = 0; i < n; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    }
    line[n++] = '\n';
    pthread_mutex_lock(&log->lock);
    size_t off = 0;
    while (off < n) {
        ssize_t r = write(log->fd, line + off, n - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    pthread_mutex_unlock(&log->lock);
}

void cd_log_complain(struct cd_log *log, struct cd_complaint *c, int level, const char *who,
                     const char *msg)
{
    c->total++;
    if (c->active && strncmp(c->last, msg, sizeof(c->last) - 1) == 0) {
        c->repeats++;
        return;
    }
    if (c->active && c->repeats > 0)
        cd_log_at(log, level, "%s: %s (now: %s; the previous error repeated %llu times)", who,
                  "error changed", msg, (unsigned long long)c->repeats);
    else
        cd_log_at(log, level, "%s: %s", who, msg);
    c->active = 1;
    c->repeats = 0;
    snprintf(c->last, sizeof(c->last), "%s", msg);
}

void cd_log_recovered(struct cd_log *log, struct cd_complaint *c, const char *who)
{
    if (!c->active)
        return;
    cd_log_notice(log, "%s: recovered after %llu failed attempt%s", who,
                  (unsigned long long)c->total, c->total == 1 ? "" : "s");
    c->active = 0;
    c->repeats = 0;
    c->total = 0;
    c->last[0] = '\0';
}
