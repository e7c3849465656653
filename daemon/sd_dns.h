/*
 * sd_dns — Prometheus DNS discovery for one dns_sd_configs entry. A and AAAA names are resolved
 * with getaddrinfo() (so /etc/hosts and nsswitch apply, e.g. "localhost"), SRV records with
 * res_nquery() (DNS only); SRV targets keep the record's host name, as Prometheus does. A name that
 * fails to resolve keeps its last good answer, and the error is kept for the caller to report.
 * Labels: __meta_dns_name, and for SRV __meta_dns_srv_record_target/__meta_dns_srv_record_port.
 *
 * Blocking: runs on a discovery worker thread, one refresh at a time per struct. Owns its
 * per-name cache and error list.
 */
#ifndef CD_SD_DNS_H
#define CD_SD_DNS_H

#include "config.h"
#include "err.h"

#define CD_SD_DNS_MAX_RECORDS 1000 /* answers kept per name */

struct cd_sd_dns_name {
    bool good;
    struct cd_group group;
};

struct cd_sd_dns {
    const struct cd_dns_sd_conf *conf;
    struct cd_sd_dns_name *names; /* one per conf->names entry */
    struct cd_strv errors;        /* from the latest refresh */
};

int cd_sd_dns_init(struct cd_sd_dns *s, const struct cd_dns_sd_conf *conf);
void cd_sd_dns_destroy(struct cd_sd_dns *s);

/* Resolves every name; appends a copy of each name's group (last good one on failure). -ENOMEM.*/
int cd_sd_dns_refresh(struct cd_sd_dns *s, struct cd_groups *out);

/* One lookup into *out (zeroed by the caller): -ENOENT/-EIO with a message on failure. */
int cd_sd_dns_lookup(const char *name, enum cd_dns_type type, int port, struct cd_group *out,
                     struct cd_err *err);

#endif
