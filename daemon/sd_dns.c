/* sd_dns — see sd_dns.h. */
#include "sd_dns.h"

#include "str.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int cd_sd_dns_init(struct cd_sd_dns *s, const struct cd_dns_sd_conf *conf)
{
    memset(s, 0, sizeof(*s));
    s->conf = conf;
    s->names = calloc(conf->names.n ? conf->names.n : 1, sizeof(*s->names));
    return s->names != NULL ? 0 : -ENOMEM;
}

void cd_sd_dns_destroy(struct cd_sd_dns *s)
{
    if (s == NULL)
        return;
    if (s->names != NULL) {
        for (size_t i = 0; i < s->conf->names.n; i++)
            cd_group_free(&s->names[i].group);
    }
    free(s->names);
    cd_strv_free(&s->errors);
    memset(s, 0, sizeof(*s));
}

static bool entry_exists(const struct cd_group *g, const char *addr)
{
    for (size_t i = 0; i < g->n; i++) {
        if (strcmp(g->v[i].address, addr) == 0)
            return true;
    }
    return false;
}

static int lookup_addr(const char *name, int family, int port, struct cd_group *out,
                       struct cd_err *err)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    int gr = getaddrinfo(name, NULL, &hints, &res);
    if (gr != 0) {
        int code = gr == EAI_NONAME || gr == EAI_NODATA ? -ENOENT
                   : gr == EAI_MEMORY                   ? -ENOMEM
                                                        : -EIO;
        return cd_err_set(err, code, "%s %s: %s", family == AF_INET6 ? "AAAA" : "A", name,
                          gr == EAI_SYSTEM ? strerror(errno) : gai_strerror(gr));
    }
    int rc = 0;
    for (struct addrinfo *ai = res; ai != NULL && rc == 0; ai = ai->ai_next) {
        char ip[INET6_ADDRSTRLEN];
        char addr[INET6_ADDRSTRLEN + 16];
        if (ai->ai_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr, ip,
                      sizeof(ip));
            snprintf(addr, sizeof(addr), "%s:%d", ip, port);
        } else if (ai->ai_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_addr, ip,
                      sizeof(ip));
            snprintf(addr, sizeof(addr), "[%s]:%d", ip, port);
        } else {
            continue;
        }
        if (entry_exists(out, addr))
            continue;
        if (out->n >= CD_SD_DNS_MAX_RECORDS)
            break;
        rc = cd_group_add_entry(out, addr, NULL);
    }
    freeaddrinfo(res);
    if (rc < 0)
        return cd_err_set(err, rc, "out of memory");
    return 0;
}

static int lookup_srv(const char *name, struct cd_group *out, struct cd_err *err)
{
    struct __res_state st;
    memset(&st, 0, sizeof(st));
    if (res_ninit(&st) != 0)
        return cd_err_set(err, -EIO, "SRV %s: cannot initialise the resolver", name);
    unsigned char *ans = malloc(NS_MAXMSG);
    int rc = 0;
    if (ans == NULL) {
        rc = cd_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    int len = res_nquery(&st, name, ns_c_in, ns_t_srv, ans, NS_MAXMSG);
    if (len < 0) {
        rc = cd_err_set(err, h_errno == HOST_NOT_FOUND || h_errno == NO_DATA ? -ENOENT : -EIO,
                        "SRV %s: %s", name, hstrerror(h_errno));
        goto out;
    }
    ns_msg msg;
    if (ns_initparse(ans, len, &msg) < 0) {
        rc = cd_err_set(err, -EIO, "SRV %s: malformed answer", name);
        goto out;
    }
    int count = ns_msg_count(msg, ns_s_an);
    for (int i = 0; i < count; i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
            break;
        if (ns_rr_type(rr) != ns_t_srv || ns_rr_rdlen(rr) < 7)
            continue;
        const unsigned char *rd = ns_rr_rdata(rr);
        unsigned port = ((unsigned)rd[4] << 8) | rd[5];
        char target[NS_MAXDNAME];
        if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6, target, sizeof(target)) < 0)
            continue;
        size_t tl = strlen(target);
        if (tl > 0 && target[tl - 1] == '.')
            target[--tl] = '\0';
        if (tl == 0 || port == 0)
            continue;
        if (out->n >= CD_SD_DNS_MAX_RECORDS)
            break;
        char addr[NS_MAXDNAME + 16], portbuf[16];
        snprintf(addr, sizeof(addr), "%s:%u", target, port);
        snprintf(portbuf, sizeof(portbuf), "%u", port);
        if (entry_exists(out, addr))
            continue;
        struct cd_labels l = {0};
        if (cd_labels_set(&l, "__meta_dns_srv_record_target", target) < 0 ||
            cd_labels_set(&l, "__meta_dns_srv_record_port", portbuf) < 0 ||
            cd_group_add_entry(out, addr, &l) < 0) {
            cd_labels_free(&l);
            rc = cd_err_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        cd_labels_free(&l);
    }
out:
    free(ans);
    res_nclose(&st);
    return rc;
}

int cd_sd_dns_lookup(const char *name, enum cd_dns_type type, int port, struct cd_group *out,
                     struct cd_err *err)
{
    int rc;
    if (type == CD_DNS_SRV)
        rc = lookup_srv(name, out, err);
    else
        rc = lookup_addr(name, type == CD_DNS_A ? AF_INET : AF_INET6, port, out, err);
    if (rc < 0)
        return rc;
    if (cd_labels_set(&out->labels, "__meta_dns_name", name) < 0)
        return cd_err_set(err, -ENOMEM, "out of memory");
    free(out->source);
    out->source = cd_str_printf("dns_sd %s", name);
    return out->source != NULL ? 0 : cd_err_set(err, -ENOMEM, "out of memory");
}

int cd_sd_dns_refresh(struct cd_sd_dns *s, struct cd_groups *out)
{
    cd_strv_free(&s->errors);
    for (size_t i = 0; i < s->conf->names.n; i++) {
        struct cd_group g;
        memset(&g, 0, sizeof(g));
        struct cd_err err;
        cd_err_init(&err);
        int rc = cd_sd_dns_lookup(s->conf->names.v[i], s->conf->type, s->conf->port, &g, &err);
        if (rc == -ENOMEM) {
            cd_group_free(&g);
            return rc;
        }
        if (rc < 0) {
            cd_group_free(&g);
            char *m = cd_str_printf("%s%s", cd_err_msg(&err),
                                    s->names[i].good ? " (keeping its previous answer)" : "");
            rc = m != NULL ? cd_strv_push(&s->errors, m) : -ENOMEM;
            free(m);
            if (rc < 0)
                return rc;
        } else {
            cd_group_free(&s->names[i].group);
            s->names[i].group = g;
            s->names[i].good = true;
        }
        if (s->names[i].good) {
            struct cd_groups one = {&s->names[i].group, 1};
            if (cd_groups_copy_append(out, &one) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}
