/*
 * daemon — collectord's lifecycle: loads the config, opens the store, starts the parser pool,
 * the scrape engine, discovery and the query socket, runs the libuv loop, and handles signals:
 * SIGHUP reloads the config (validated whole, off the loop thread; an invalid file keeps the
 * running one), SIGTERM/SIGINT stop scheduling, let in-flight scrapes finish within
 * limits.shutdown_timeout, flush storage and exit 0. Talks to systemd (READY, RELOADING,
 * STOPPING, WATCHDOG, STATUS) when run under it. The loop thread runs everything here except
 * the config load on reload (libuv's threadpool) and the store's event callback (the writer).
 * Owns every part it starts.
 */
#ifndef CD_DAEMON_H
#define CD_DAEMON_H

#include "log.h"

struct cd_daemon_opts {
    const char *config_path;
    struct cd_log *log;
};

/* Runs until stopped; returns the process exit status (0 clean stop, 1 failure to start). */
int cd_daemon_run(const struct cd_daemon_opts *opts);

#endif
