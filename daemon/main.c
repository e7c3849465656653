/*
 * collectord — entry point. Parses the command line, sets up logging and the process-wide
 * library state (libcurl, SQLite's error log, SIGPIPE), and hands over to the daemon or to the
 * config checks.
 */
#include "config.h"
#include "daemon.h"
#include "discovery.h"
#include "log.h"

#include <collectord/version.h>

#include <curl/curl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(
        f, "usage: collectord [-c FILE] [-v] [--log-level LEVEL] [--check-config | --dump-config]\n"
           "       collectord --version | --help\n"
           "Keeps the profiling history of a fleet of Go programs.\n"
           "  -c, --config FILE    configuration file (default " CD_CONFIG_DEFAULT_PATH ")\n"
           "  --check-config       validate the configuration, print the effective targets,\n"
           "                       exit 0 when valid, 1 when not (every error is listed)\n"
           "  --dump-config        print the effective configuration, defaults included\n"
           "  -v, --verbose        log more (repeat for debug)\n"
           "  --log-level LEVEL    error, warning, notice, info (default) or debug\n"
           "  --log-style STYLE    auto (default: journal prefixes under systemd), plain, journal\n"
           "Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT stop cleanly.\n"
           "See collectord(8) and collectorctl(1).\n");
}

/* SQLite's own error log (recoveries, misuse) goes to our logger; debug unless it is an error. */
static void sqlite_log(void *ctx, int code, const char *msg)
{
    struct cd_log *log = ctx;
    int primary = code & 0xff;
    int level = primary == SQLITE_NOTICE || primary == SQLITE_WARNING || primary == SQLITE_SCHEMA
                    ? CD_LOG_DEBUG
                    : CD_LOG_WARNING;
    cd_log_at(log, level, "sqlite (%d): %s", code, msg);
}

int main(int argc, char **argv)
{
    const char *config = CD_CONFIG_DEFAULT_PATH;
    bool check = false, dump = false;
    int level = CD_LOG_INFO;
    enum cd_log_style style = CD_LOG_STYLE_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--version") == 0) {
            printf("collectord %s\n", COLLECTORD_VERSION);
            return 0;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 || strcmp(a, "--log-level") == 0 ||
            strcmp(a, "--log-style") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "collectord: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (a[1] == 'c' || strcmp(a, "--config") == 0) {
                config = v;
            } else if (strcmp(a, "--log-level") == 0) {
                if (cd_log_level_parse(v, &level) < 0) {
                    fprintf(stderr, "collectord: --log-level: unknown level '%s'\n", v);
                    return 2;
                }
            } else if (strcmp(v, "plain") == 0) {
                style = CD_LOG_STYLE_PLAIN;
            } else if (strcmp(v, "journal") == 0) {
                style = CD_LOG_STYLE_JOURNAL;
            } else if (strcmp(v, "auto") == 0) {
                style = CD_LOG_STYLE_AUTO;
            } else {
                fprintf(stderr, "collectord: --log-style: expected auto, plain or journal\n");
                return 2;
            }
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0) {
            config = a + 9;
            continue;
        }
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            if (level < CD_LOG_DEBUG)
                level++;
            continue;
        }
        if (strcmp(a, "-vv") == 0) {
            level = CD_LOG_DEBUG;
            continue;
        }
        if (strcmp(a, "--check-config") == 0) {
            check = true;
            continue;
        }
        if (strcmp(a, "--dump-config") == 0) {
            dump = true;
            continue;
        }
        fprintf(stderr, "collectord: unknown option '%s'\n", a);
        usage(stderr);
        return 2;
    }
    if (check || dump)
        return cd_discovery_check_config(config, dump, stdout, stderr);

    struct cd_log log;
    cd_log_init(&log, level, 2, style);
    /* A client that goes away mid-response must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    sqlite3_config(SQLITE_CONFIG_LOG, sqlite_log, &log);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        cd_log_err(&log, "libcurl: global initialisation failed");
        cd_log_destroy(&log);
        return 1;
    }
    struct cd_daemon_opts opts = {.config_path = config, .log = &log};
    int rc = cd_daemon_run(&opts);
    curl_global_cleanup();
    sqlite3_shutdown();
    cd_log_destroy(&log);
    return rc;
}
