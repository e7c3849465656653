/* sd_local — see sd_local.h. */
#include "sd_local.h"

#include "buf.h"
#include "clock.h"
#include "str.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Go build info ------------------------------------------------------------------------- */

#define BI_WINDOW (64 * 1024) /* Go searches the first 64 KiB of the data for the blob */

static const unsigned char bi_magic[14] = {0xff, ' ', 'G', 'o', ' ', 'b', 'u',
                                           'i',  'l', 'd', 'i', 'n', 'f', ':'};

struct elf {
    int fd;
    bool is64, be;
    uint64_t phoff, shoff;
    unsigned phentsize, phnum, shentsize, shnum, shstrndx;
};

static uint64_t get_uint(const unsigned char *p, int n, bool be)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[be ? i : n - 1 - i] << (8 * (n - 1 - i));
    return v;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ENODATA;
        got += (size_t)r;
    }
    return 0;
}

/* Reads up to len bytes at off (short at EOF); returns the count or -errno. */
static ssize_t pread_some(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int elf_open(struct elf *e, int fd)
{
    unsigned char h[64];
    memset(e, 0, sizeof(*e));
    e->fd = fd;
    ssize_t n = pread_some(fd, h, sizeof(h), 0);
    if (n < 0)
        return (int)n;
    if (n < 52 || memcmp(h,
                         "\x7f"
                         "ELF",
                         4) != 0)
        return -ENOENT;
    if (h[4] != 1 && h[4] != 2)
        return -ENOENT;
    if (h[5] != 1 && h[5] != 2)
        return -ENOENT;
    e->is64 = h[4] == 2;
    e->be = h[5] == 2;
    if (e->is64) {
        if (n < 64)
            return -ENOENT;
        e->phoff = get_uint(h + 32, 8, e->be);
        e->shoff = get_uint(h + 40, 8, e->be);
        e->phentsize = (unsigned)get_uint(h + 54, 2, e->be);
        e->phnum = (unsigned)get_uint(h + 56, 2, e->be);
        e->shentsize = (unsigned)get_uint(h + 58, 2, e->be);
        e->shnum = (unsigned)get_uint(h + 60, 2, e->be);
        e->shstrndx = (unsigned)get_uint(h + 62, 2, e->be);
    } else {
        e->phoff = get_uint(h + 28, 4, e->be);
        e->shoff = get_uint(h + 32, 4, e->be);
        e->phentsize = (unsigned)get_uint(h + 42, 2, e->be);
        e->phnum = (unsigned)get_uint(h + 44, 2, e->be);
        e->shentsize = (unsigned)get_uint(h + 46, 2, e->be);
        e->shnum = (unsigned)get_uint(h + 48, 2, e->be);
        e->shstrndx = (unsigned)get_uint(h + 50, 2, e->be);
    }
    if (e->phentsize < (e->is64 ? 56u : 32u) || e->phnum > 4096)
        e->phnum = 0;
    if (e->shentsize < (e->is64 ? 64u : 40u) || e->shnum > 65535)
        e->shnum = 0;
    return 0;
}

struct seg {
    uint64_t off, vaddr, filesz;
    unsigned flags;
};

static int elf_segments(const struct elf *e, struct seg *out, size_t max, size_t *n)
{
    *n = 0;
    for (unsigned i = 0; i < e->phnum && *n < max; i++) {
        unsigned char p[56];
        size_t sz = e->is64 ? 56 : 32;
        int rc = pread_full(e->fd, p, sz, e->phoff + (uint64_t)i * e->phentsize);
        if (rc < 0)
            return rc;
        if (get_uint(p, 4, e->be) != 1 /* PT_LOAD */)
            continue;
        struct seg *s = &out[(*n)++];
        if (e->is64) {
            s->flags = (unsigned)get_uint(p + 4, 4, e->be);
            s->off = get_uint(p + 8, 8, e->be);
            s->vaddr = get_uint(p + 16, 8, e->be);
            s->filesz = get_uint(p + 32, 8, e->be);
        } else {
            s->off = get_uint(p + 4, 4, e->be);
            s->vaddr = get_uint(p + 8, 4, e->be);
            s->filesz = get_uint(p + 16, 4, e->be);
            s->flags = (unsigned)get_uint(p + 24, 4, e->be);
        }
    }
    return 0;
}

/* The file offset of a virtual address, through the PT_LOAD segments. */
static int vaddr_off(const struct seg *segs, size_t n, uint64_t vaddr, uint64_t len, uint64_t *off)
{
    for (size_t i = 0; i < n; i++) {
        if (vaddr >= segs[i].vaddr && vaddr - segs[i].vaddr < segs[i].filesz &&
            len <= segs[i].filesz - (vaddr - segs[i].vaddr)) {
            *off = segs[i].off + (vaddr - segs[i].vaddr);
            return 0;
        }
    }
    return -ENOENT;
}

/* Where Go looks: the .go.buildinfo section, else the first writable, non-executable segment. */
static int elf_data_start(const struct elf *e, const struct seg *segs, size_t nseg, uint64_t *off,
                          uint64_t *len)
{
    if (e->shnum > 0 && e->shstrndx < e->shnum) {
        size_t esz = e->is64 ? 64 : 40;
        unsigned char sh[64];
        int rc = pread_full(e->fd, sh, esz, e->shoff + (uint64_t)e->shstrndx * e->shentsize);
        if (rc == 0) {
            uint64_t stroff = get_uint(sh + (e->is64 ? 24 : 16), e->is64 ? 8 : 4, e->be);
            uint64_t strsz = get_uint(sh + (e->is64 ? 32 : 20), e->is64 ? 8 : 4, e->be);
            if (strsz > 0 && strsz <= (1u << 20)) {
                char *names = malloc(strsz + 1);
                if (names == NULL)
                    return -ENOMEM;
                if (pread_full(e->fd, names, strsz, stroff) == 0) {
                    names[strsz] = '\0';
                    for (unsigned i = 0; i < e->shnum; i++) {
                        if (pread_full(e->fd, sh, esz, e->shoff + (uint64_t)i * e->shentsize) < 0)
                            break;
                        uint64_t nm = get_uint(sh, 4, e->be);
                        if (nm >= strsz || strcmp(names + nm, ".go.buildinfo") != 0)
                            continue;
                        *off = get_uint(sh + (e->is64 ? 24 : 16), e->is64 ? 8 : 4, e->be);
                        *len = get_uint(sh + (e->is64 ? 32 : 20), e->is64 ? 8 : 4, e->be);
                        free(names);
                        return 0;
                    }
                }
                free(names);
            }
        }
    }
    for (size_t i = 0; i < nseg; i++) {
        if ((segs[i].flags & 3u) == 2u /* PF_W without PF_X */) {
            *off = segs[i].off;
            *len = segs[i].filesz;
            return 0;
        }
    }
    return -ENOENT;
}

static int read_go_string(const struct elf *e, const struct seg *segs, size_t nseg, int ptrsize,
                          bool be, uint64_t addr, char *out, size_t size)
{
    unsigned char hdr[16];
    uint64_t off;
    if (vaddr_off(segs, nseg, addr, (uint64_t)ptrsize * 2, &off) < 0)
        return -ENOENT;
    int rc = pread_full(e->fd, hdr, (size_t)ptrsize * 2, off);
    if (rc < 0)
        return rc;
    uint64_t data = get_uint(hdr, ptrsize, be);
    uint64_t len = get_uint(hdr + ptrsize, ptrsize, be);
    if (len == 0 || len >= size || len > 128)
        return -ENOENT;
    if (vaddr_off(segs, nseg, data, len, &off) < 0)
        return -ENOENT;
    rc = pread_full(e->fd, out, (size_t)len, off);
    if (rc < 0)
        return rc;
    out[len] = '\0';
    return 0;
}

static bool version_ok(const char *v)
{
    if (v[0] == '\0')
        return false;
    for (const char *p = v; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            return false;
    }
    return true;
}

int cd_sd_local_go_version_fd(int fd, char *out, size_t size)
{
    struct elf e;
    struct seg segs[64];
    size_t nseg = 0;
    uint64_t off = 0, len = 0;
    int rc = elf_open(&e, fd);
    if (rc < 0)
        return rc;
    rc = elf_segments(&e, segs, sizeof(segs) / sizeof(segs[0]), &nseg);
    if (rc < 0)
        return rc;
    rc = elf_data_start(&e, segs, nseg, &off, &len);
    if (rc < 0)
        return rc;
    if (len > BI_WINDOW)
        len = BI_WINDOW;
    unsigned char *buf = malloc(BI_WINDOW);
    if (buf == NULL)
        return -ENOMEM;
    ssize_t n = pread_some(fd, buf, (size_t)len, off);
    if (n < 0) {
        free(buf);
        return (int)n;
    }
    rc = -ENOENT;
    for (size_t o = 0; o + 32 <= (size_t)n; o += 16) {
        if (memcmp(buf + o, bi_magic, sizeof(bi_magic)) != 0)
            continue;
        int ptrsize = buf[o + 14];
        unsigned flags = buf[o + 15];
        char v[160];
        if (flags & 2u) {
            /* Go 1.18+: varint-prefixed strings inline at offset 32 */
            size_t p = o + 32;
            uint64_t slen = 0;
            int shift = 0;
            while (p < (size_t)n && shift < 35) {
                unsigned char b = buf[p++];
                slen |= (uint64_t)(b & 0x7f) << shift;
                shift += 7;
                if (!(b & 0x80))
                    break;
            }
            if (slen == 0 || slen >= sizeof(v) || p + slen > (size_t)n)
                break;
            memcpy(v, buf + p, (size_t)slen);
            v[slen] = '\0';
            rc = 0;
        } else {
            /* before Go 1.18: pointers to the runtime.buildVersion string header */
            if ((ptrsize != 4 && ptrsize != 8) || o + 16 + (size_t)ptrsize > (size_t)n)
                break;
            bool be = flags & 1u;
            uint64_t addr = get_uint(buf + o + 16, ptrsize, be);
            rc = read_go_string(&e, segs, nseg, ptrsize, be, addr, v, sizeof(v));
        }
        if (rc == 0 && !version_ok(v))
            rc = -ENOENT;
        if (rc == 0) {
            if (strlen(v) >= size)
                rc = -ERANGE;
            else
                cd_str_copy(out, v, size);
        }
        break;
    }
    free(buf);
    return rc;
}

int cd_sd_local_go_version(const char *path, char *out, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    int rc = cd_sd_local_go_version_fd(fd, out, size);
    close(fd);
    return rc;
}

/* ---- /proc --------------------------------------------------------------------------------- */

int cd_sd_local_init(struct cd_sd_local *s, const struct cd_local_sd_conf *conf,
                     const char *path_prefix, const char *proc_root)
{
    memset(s, 0, sizeof(*s));
    s->conf = conf;
    s->path_prefix = cd_str_dup(path_prefix != NULL ? path_prefix : "");
    s->proc = cd_str_dup(proc_root != NULL ? proc_root : "/proc");
    if (s->path_prefix == NULL || s->proc == NULL) {
        cd_sd_local_destroy(s);
        return -ENOMEM;
    }
    return 0;
}

void cd_sd_local_destroy(struct cd_sd_local *s)
{
    if (s == NULL)
        return;
    free(s->path_prefix);
    free(s->proc);
    free(s->exes);
    free(s->probes);
    cd_strv_free(&s->errors);
    memset(s, 0, sizeof(*s));
}

static int note(struct cd_sd_local *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int note(struct cd_sd_local *s, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < s->errors.n; i++) {
        if (strcmp(s->errors.v[i], msg) == 0)
            return 0;
    }
    if (s->errors.n >= 20)
        return 0;
    return cd_strv_push(&s->errors, msg);
}

/* Reads a small /proc file whole (NUL-terminated); -errno. */
static int read_small(const char *path, char *buf, size_t size, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return 0;
}

struct listen_sock {
    uint64_t inode;
    int family;
    unsigned char addr[16];
    int port;
};

struct listens {
    struct listen_sock *v;
    size_t n, cap;
    bool loaded;
};

static int cmp_listen(const void *a, const void *b)
{
    uint64_t x = ((const struct listen_sock *)a)->inode, y = ((const struct listen_sock *)b)->inode;
    return x < y ? -1 : x > y;
}

static int hexword(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0)
            return -EINVAL;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* LISTEN sockets of /proc/net/tcp or tcp6 (the kernel prints each 32-bit word of the address as
 * a host-order hex number). */
static int load_listens(struct cd_sd_local *s, const char *file, int family, struct listens *ls)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/net/%s", s->proc, file);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno != ENOENT)
            return note(s, "%s: %s", path, strerror(errno));
        return 0;
    }
    char line[512];
    int rc = 0;
    size_t lines = 0;
    while (fgets(line, sizeof(line), f) != NULL && rc == 0) {
        if (++lines > 4000000)
            break;
        char addr[40];
        unsigned port = 0, st = 0;
        unsigned long long inode = 0;
        if (sscanf(line, " %*[^:]: %39[0-9A-Fa-f]:%X %*s %X %*s %*s %*s %*s %*s %llu", addr, &port,
                   &st, &inode) != 4)
            continue;
        if (st != 0x0A || inode == 0)
            continue;
        size_t words = family == AF_INET ? 1 : 4;
        if (strlen(addr) != words * 8)
            continue;
        struct listen_sock l;
        memset(&l, 0, sizeof(l));
        l.inode = inode;
        l.family = family;
        l.port = (int)port;
        for (size_t w = 0; w < words; w++) {
            uint32_t v;
            if (hexword(addr + w * 8, &v) < 0)
                break;
            memcpy(l.addr + w * 4, &v, 4);
        }
        if (ls->n == ls->cap) {
            size_t cap = ls->cap ? ls->cap * 2 : 64;
            struct listen_sock *g = realloc(ls->v, cap * sizeof(*g));
            if (g == NULL) {
                rc = -ENOMEM;
                break;
            }
            ls->v = g;
            ls->cap = cap;
        }
        ls->v[ls->n++] = l;
    }
    fclose(f);
    return rc;
}

static const struct listen_sock *find_listen(const struct listens *ls, uint64_t inode)
{
    struct listen_sock key;
    key.inode = inode;
    return bsearch(&key, ls->v, ls->n, sizeof(*ls->v), cmp_listen);
}

/* The address to reach a listening socket from this host. */
static void connect_host(const struct listen_sock *l, char *out, size_t size)
{
    static const unsigned char any6[16] = {0};
    static const unsigned char lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char ip[INET6_ADDRSTRLEN];
    if (l->family == AF_INET) {
        if (l->addr[0] == 0 && l->addr[1] == 0 && l->addr[2] == 0 && l->addr[3] == 0)
            snprintf(out, size, "127.0.0.1");
        else
            snprintf(out, size, "%s", inet_ntop(AF_INET, l->addr, ip, sizeof(ip)));
        return;
    }
    /* "::" is Go's dual-stack wildcard (":6060"): IPv4 loopback reaches it */
    if (memcmp(l->addr, any6, 16) == 0)
        snprintf(out, size, "127.0.0.1");
    else if (memcmp(l->addr, lo6, 16) == 0)
        snprintf(out, size, "[::1]");
    else if (memcmp(l->addr, mapped, 12) == 0)
        snprintf(out, size, "%s", inet_ntop(AF_INET, l->addr + 12, ip, sizeof(ip)));
    else
        snprintf(out, size, "[%s]", inet_ntop(AF_INET6, l->addr, ip, sizeof(ip)));
}

static void listen_text(const struct listen_sock *l, char *out, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    if (l->family == AF_INET)
        snprintf(out, size, "%s:%d", inet_ntop(AF_INET, l->addr, ip, sizeof(ip)), l->port);
    else
        snprintf(out, size, "[%s]:%d", inet_ntop(AF_INET6, l->addr, ip, sizeof(ip)), l->port);
}

struct proc_info {
    pid_t pid;
    uint64_t start_time;
    char comm[64];
    char exe[1024];
    unsigned uid;
    char go_version[64];
};

static int read_stat(struct cd_sd_local *s, pid_t pid, struct proc_info *pi)
{
    char path[256], buf[2048];
    snprintf(path, sizeof(path), "%s/%d/stat", s->proc, (int)pid);
    if (read_small(path, buf, sizeof(buf), NULL) < 0)
        return -ENOENT;
    char *open_p = strchr(buf, '(');
    char *close_p = strrchr(buf, ')');
    if (open_p == NULL || close_p == NULL || close_p < open_p)
        return -EINVAL;
    size_t cl = (size_t)(close_p - open_p - 1);
    if (cl >= sizeof(pi->comm))
        cl = sizeof(pi->comm) - 1;
    memcpy(pi->comm, open_p + 1, cl);
    pi->comm[cl] = '\0';
    /* fields after ")": state(3) ... starttime(22) */
    char *p = close_p + 1;
    for (int field = 3; field < 22 && p != NULL; field++) {
        while (*p == ' ')
            p++;
        p = strchr(p, ' ');
    }
    if (p == NULL)
        return -EINVAL;
    while (*p == ' ')
        p++;
    char *end = strchr(p, ' ');
    if (end != NULL)
        *end = '\0';
    uint64_t st;
    if (cd_str_to_u64(p, &st) < 0)
        return -EINVAL;
    pi->start_time = st;
    snprintf(path, sizeof(path), "%s/%d/status", s->proc, (int)pid);
    if (read_small(path, buf, sizeof(buf), NULL) == 0) {
        const char *u = strstr(buf, "\nUid:");
        unsigned uid;
        if (u != NULL && sscanf(u + 5, "%u", &uid) == 1)
            pi->uid = uid;
    }
    return 0;
}

/* The Go version of the process's executable, through the exe cache. */
static int exe_version(struct cd_sd_local *s, pid_t pid, struct proc_info *pi)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%d/exe", s->proc, (int)pid);
    ssize_t n = readlink(path, pi->exe, sizeof(pi->exe) - 1);
    if (n <= 0)
        return -ENOENT; /* kernel thread, or not ours to read */
    pi->exe[n] = '\0';
    if (cd_str_has_suffix(pi->exe, " (deleted)"))
        pi->exe[strlen(pi->exe) - 10] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -ENOENT;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -ENOENT;
    }
    int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    for (size_t i = 0; i < s->n_exes; i++) {
        struct cd_sd_local_exe *e = &s->exes[i];
        if (e->dev == st.st_dev && e->ino == st.st_ino && e->size == st.st_size &&
            e->mtime_ns == mt) {
            close(fd);
            e->seen = true;
            cd_str_copy(pi->go_version, e->go_version, sizeof(pi->go_version));
            return pi->go_version[0] ? 0 : -ENOENT;
        }
    }
    char v[64] = "";
    int rc = cd_sd_local_go_version_fd(fd, v, sizeof(v));
    close(fd);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    if (s->n_exes < CD_SD_LOCAL_MAX_EXE_CACHE) {
        struct cd_sd_local_exe *g = realloc(s->exes, (s->n_exes + 1) * sizeof(*g));
        if (g == NULL)
            return -ENOMEM;
        s->exes = g;
        struct cd_sd_local_exe *e = &s->exes[s->n_exes++];
        memset(e, 0, sizeof(*e));
        e->dev = st.st_dev;
        e->ino = st.st_ino;
        e->size = st.st_size;
        e->mtime_ns = mt;
        e->seen = true;
        cd_str_copy(e->go_version, rc == 0 ? v : "", sizeof(e->go_version));
    }
    cd_str_copy(pi->go_version, v, sizeof(pi->go_version));
    return rc;
}

/* The process's listening sockets (by the socket inodes of its fds). */
static int proc_listens(struct cd_sd_local *s, pid_t pid, const struct listens *all,
                        struct listen_sock *out, size_t max, size_t *n)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%d/fd", s->proc, (int)pid);
    *n = 0;
    DIR *d = opendir(path);
    if (d == NULL)
        return -errno;
    struct dirent *de;
    size_t seen = 0;
    while ((de = readdir(d)) != NULL && *n < max) {
        if (de->d_name[0] == '.')
            continue;
        if (++seen > CD_SD_LOCAL_MAX_FDS)
            break;
        char lp[300], target[64];
        snprintf(lp, sizeof(lp), "%s/%s", path, de->d_name);
        ssize_t tl = readlink(lp, target, sizeof(target) - 1);
        if (tl <= 0)
            continue;
        target[tl] = '\0';
        unsigned long long ino;
        if (strncmp(target, "socket:[", 8) != 0 || sscanf(target + 8, "%llu]", &ino) != 1)
            continue;
        const struct listen_sock *l = find_listen(all, ino);
        if (l == NULL)
            continue;
        bool dup = false;
        for (size_t i = 0; i < *n && !dup; i++)
            dup = out[i].port == l->port && out[i].family == l->family &&
                  memcmp(out[i].addr, l->addr, 16) == 0;
        if (!dup)
            out[(*n)++] = *l;
    }
    closedir(d);
    return 0;
}

/* Where this process's gops agent writes its port file (protocols.md §1.1). */
static int gops_dir(struct cd_sd_local *s, const struct proc_info *pi, char *out, size_t size)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%d/environ", s->proc, (int)pi->pid);
    size_t cap = 256 * 1024, len = 0;
    char *env = malloc(cap);
    if (env == NULL)
        return -ENOMEM;
    const char *gops = NULL, *xdg = NULL, *home = NULL;
    if (read_small(path, env, cap, &len) == 0) {
        for (size_t i = 0; i < len;) {
            const char *e = env + i;
            size_t l = strnlen(e, len - i);
            if (strncmp(e, "GOPS_CONFIG_DIR=", 16) == 0)
                gops = e + 16;
            else if (strncmp(e, "XDG_CONFIG_HOME=", 16) == 0)
                xdg = e + 16;
            else if (strncmp(e, "HOME=", 5) == 0)
                home = e + 5;
            i += l + 1;
        }
    }
    int rc = 0;
    if (gops != NULL && gops[0] != '\0') {
        snprintf(out, size, "%s", gops);
    } else if (xdg != NULL && xdg[0] != '\0') {
        snprintf(out, size, "%s/gops", xdg);
    } else if (home != NULL && home[0] != '\0') {
        snprintf(out, size, "%s/.config/gops", home);
    } else {
        struct passwd pw, *res = NULL;
        char buf[4096];
        if (getpwuid_r(pi->uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL &&
            pw.pw_dir != NULL && pw.pw_dir[0] != '\0')
            snprintf(out, size, "%s/.config/gops", pw.pw_dir);
        else
            rc = -ENOENT;
    }
    free(env);
    return rc;
}

static int gops_port(struct cd_sd_local *s, const struct proc_info *pi, int *port)
{
    char dir[1024], path[1400], buf[32];
    int rc = gops_dir(s, pi, dir, sizeof(dir));
    if (rc < 0)
        return rc;
    /* Through the process's own root (its mount namespace: PrivateTmp, chroots) and, for a
     * relative $GOPS_CONFIG_DIR, its working directory, as the agent itself resolved it. */
    if (dir[0] == '/')
        snprintf(path, sizeof(path), "%s/%d/root%s/%d", s->proc, (int)pi->pid, dir, (int)pi->pid);
    else
        snprintf(path, sizeof(path), "%s/%d/cwd/%s/%d", s->proc, (int)pi->pid, dir, (int)pi->pid);
    size_t len;
    rc = read_small(path, buf, sizeof(buf), &len);
    if (rc < 0)
        return rc;
    while (len > 0 && isspace((unsigned char)buf[len - 1]))
        buf[--len] = '\0';
    const char *p = buf;
    while (isspace((unsigned char)*p))
        p++;
    return cd_str_to_int(p, 1, 65535, port) < 0 ? -EINVAL : 0;
}

/* ---- probes ---------------------------------------------------------------------------- */

#define PROBE_PARALLEL 64 /* probes in flight at once */

struct probe_job {
    char url[1400];
    struct cd_buf body;
    CURL *easy;
    bool done;
    bool is_pprof;
    size_t cache; /* index into s->probes */
};

static size_t probe_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct cd_buf *b = ud;
    return cd_buf_append(b, ptr, size * nmemb) == 0 ? size * nmemb : 0;
}

static bool setup_probe(struct cd_sd_local *s, struct probe_job *j)
{
    CURL *c = curl_easy_init();
    if (c == NULL)
        return false;
    j->easy = c;
    return curl_easy_setopt(c, CURLOPT_URL, j->url) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_PRIVATE, j) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->conf->probe_timeout_ms) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_NOPROXY, "*") == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_USERAGENT, "collectord-discovery") == CURLE_OK &&
#if LIBCURL_VERSION_NUM >= 0x075500
           curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http") == CURLE_OK &&
#endif
           curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, probe_write) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_WRITEDATA, &j->body) == CURLE_OK;
}

/* A Go pprof index answers 200 and lists its profiles by name. */
static bool probe_verdict(struct probe_job *j, CURLcode res)
{
    long code = 0;
    if (res != CURLE_OK || curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
        code != 200 || cd_buf_terminate(&j->body) < 0 || j->body.data == NULL)
        return false;
    const char *b = (const char *)j->body.data;
    return strstr(b, "goroutine") != NULL && strstr(b, "heap") != NULL;
}

/* Runs the probes concurrently (libcurl multi, on this worker thread): a refresh costs about one
 * probe_timeout however many ports there are (up to PROBE_PARALLEL at a time). */
static int run_probes(struct cd_sd_local *s, struct probe_job *jobs, size_t n)
{
    if (n == 0)
        return 0;
    CURLM *m = curl_multi_init();
    if (m == NULL)
        return -ENOMEM;
    int rc = 0;
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)PROBE_PARALLEL);
    for (size_t i = 0; i < n; i++) {
        cd_buf_init(&jobs[i].body, 256 * 1024);
        if (!setup_probe(s, &jobs[i]) || curl_multi_add_handle(m, jobs[i].easy) != CURLM_OK) {
            jobs[i].done = true;
            if (jobs[i].easy != NULL) {
                curl_easy_cleanup(jobs[i].easy);
                jobs[i].easy = NULL;
            }
        }
    }
    int running = 1;
    /* each transfer has its own timeout; this bounds the whole in case of a libcurl surprise */
    int64_t deadline =
        cd_clock_now_mono_ms() + s->conf->probe_timeout_ms * (int64_t)(n / PROBE_PARALLEL + 2);
    while (running > 0 && cd_clock_now_mono_ms() < deadline) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            rc = -EIO;
            break;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct probe_job *j = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            if (j == NULL)
                continue;
            j->is_pprof = probe_verdict(j, msg->data.result);
            j->done = true;
            s->probes_sent++;
        }
        if (running > 0 && curl_multi_poll(m, NULL, 0, 100, NULL) != CURLM_OK) {
            rc = -EIO;
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].easy != NULL) {
            curl_multi_remove_handle(m, jobs[i].easy);
            curl_easy_cleanup(jobs[i].easy);
            jobs[i].easy = NULL;
        }
        cd_buf_free(&jobs[i].body);
    }
    curl_multi_cleanup(m);
    return rc;
}

static struct cd_sd_local_probe *find_probe(struct cd_sd_local *s, const struct proc_info *pi,
                                            int port)
{
    for (size_t i = 0; i < s->n_probes; i++) {
        struct cd_sd_local_probe *p = &s->probes[i];
        if (p->pid == pi->pid && p->start_time == pi->start_time && p->port == port)
            return p;
    }
    return NULL;
}

/* ---- refresh ------------------------------------------------------------------------------- */

static int add_target(struct cd_group *g, const struct proc_info *pi, const char *source,
                      const char *address, const struct listen_sock *l)
{
    struct cd_labels lb = {0};
    char pid[16], uid[16], port[16], la[80];
    snprintf(pid, sizeof(pid), "%d", (int)pi->pid);
    snprintf(uid, sizeof(uid), "%u", pi->uid);
    snprintf(port, sizeof(port), "%d", l->port);
    listen_text(l, la, sizeof(la));
    int rc = 0;
    if (cd_labels_set(&lb, "pid", pid) < 0 || cd_labels_set(&lb, "exe", pi->exe) < 0 ||
        cd_labels_set(&lb, "go_version", pi->go_version) < 0 ||
        cd_labels_set(&lb, "__meta_local_pid", pid) < 0 ||
        cd_labels_set(&lb, "__meta_local_exe", pi->exe) < 0 ||
        cd_labels_set(&lb, "__meta_local_comm", pi->comm) < 0 ||
        cd_labels_set(&lb, "__meta_local_uid", uid) < 0 ||
        cd_labels_set(&lb, "__meta_local_go_version", pi->go_version) < 0 ||
        cd_labels_set(&lb, "__meta_local_source", source) < 0 ||
        cd_labels_set(&lb, "__meta_local_port", port) < 0 ||
        cd_labels_set(&lb, "__meta_local_listen_address", la) < 0 ||
        cd_group_add_entry(g, address, &lb) < 0)
        rc = -ENOMEM;
    cd_labels_free(&lb);
    return rc;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return x < y ? -1 : x > y;
}

static int list_pids(struct cd_sd_local *s, pid_t **out, size_t *n)
{
    DIR *d = opendir(s->proc);
    *out = NULL;
    *n = 0;
    if (d == NULL)
        return note(s, "%s: %s", s->proc, strerror(errno));
    size_t cap = 0;
    struct dirent *de;
    pid_t self = getpid();
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        int pid;
        if (!isdigit((unsigned char)de->d_name[0]) ||
            cd_str_to_int(de->d_name, 1, INT32_MAX, &pid) < 0 || pid == self)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            pid_t *g = realloc(*out, cap * sizeof(*g));
            if (g == NULL) {
                rc = -ENOMEM;
                break;
            }
            *out = g;
        }
        (*out)[(*n)++] = pid;
    }
    closedir(d);
    if (rc == 0 && *n > 0)
        qsort(*out, *n, sizeof(**out), cmp_pid);
    return rc;
}

#define MAX_SOCKS_PER_PROC 64

/* One Go process found by the scan. */
struct go_proc {
    struct proc_info pi;
    struct listen_sock socks[MAX_SOCKS_PER_PROC];
    size_t n_socks;
    int gops_sock; /* index into socks, -1 when no live agent */
};

/* The cache entry for (process, port), created unknown (probed_ms 0) when new. */
static int probe_entry(struct cd_sd_local *s, const struct proc_info *pi, int port, size_t *idx)
{
    struct cd_sd_local_probe *p = find_probe(s, pi, port);
    if (p != NULL) {
        *idx = (size_t)(p - s->probes);
        return 0;
    }
    struct cd_sd_local_probe *g = realloc(s->probes, (s->n_probes + 1) * sizeof(*g));
    if (g == NULL)
        return -ENOMEM;
    s->probes = g;
    p = &s->probes[s->n_probes];
    memset(p, 0, sizeof(*p));
    p->pid = pi->pid;
    p->start_time = pi->start_time;
    p->port = port;
    *idx = s->n_probes++;
    return 0;
}

int cd_sd_local_refresh(struct cd_sd_local *s, struct cd_groups *out)
{
    pid_t *pids = NULL;
    size_t n_pids = 0;
    struct listens ls = {0};
    struct go_proc *procs = NULL;
    size_t n_procs = 0;
    struct probe_job *jobs = NULL;
    size_t n_jobs = 0;
    struct cd_groups found = {0};
    struct cd_group *g = NULL;
    int rc;
    int64_t now = cd_clock_now_mono_ms();
    cd_strv_free(&s->errors);
    s->probes_sent = 0;
    for (size_t i = 0; i < s->n_exes; i++)
        s->exes[i].seen = false;
    for (size_t i = 0; i < s->n_probes; i++)
        s->probes[i].seen = false;

    g = cd_groups_add(&found);
    if (g == NULL || (g->source = cd_str_dup("local_sd")) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    rc = list_pids(s, &pids, &n_pids);
    if (rc < 0)
        goto out;

    /* 1: the Go processes and their listening sockets */
    for (size_t i = 0; i < n_pids; i++) {
        struct proc_info pi;
        memset(&pi, 0, sizeof(pi));
        pi.pid = pids[i];
        if (read_stat(s, pi.pid, &pi) < 0)
            continue; /* gone already */
        rc = exe_version(s, pi.pid, &pi);
        if (rc == -ENOMEM)
            goto out;
        rc = 0;
        if (pi.go_version[0] == '\0')
            continue;
        if (s->conf->exe_set && !cd_regex_match(&s->conf->exe, pi.exe))
            continue;
        if (n_procs >= (size_t)s->conf->max_processes) {
            rc = note(s,
                      "more than %d Go processes: the rest are not scraped (raise "
                      "max_processes)",
                      s->conf->max_processes);
            if (rc < 0)
                goto out;
            break;
        }
        if (!ls.loaded) {
            ls.loaded = true;
            rc = load_listens(s, "tcp", AF_INET, &ls);
            if (rc == 0)
                rc = load_listens(s, "tcp6", AF_INET6, &ls);
            if (rc < 0)
                goto out;
            if (ls.n > 0)
                qsort(ls.v, ls.n, sizeof(*ls.v), cmp_listen);
        }
        struct go_proc *gp = realloc(procs, (n_procs + 1) * sizeof(*gp));
        if (gp == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        procs = gp;
        gp = &procs[n_procs];
        memset(gp, 0, sizeof(*gp));
        gp->pi = pi;
        gp->gops_sock = -1;
        if (proc_listens(s, pi.pid, &ls, gp->socks, MAX_SOCKS_PER_PROC, &gp->n_socks) < 0)
            continue; /* gone, or not ours to look at */
        n_procs++;
        int gport = 0;
        if (s->conf->gops && gops_port(s, &pi, &gport) == 0) {
            /* a port file whose port this pid does not listen on is stale: ignored */
            for (size_t k = 0; k < gp->n_socks && gp->gops_sock < 0; k++) {
                if (gp->socks[k].port == gport)
                    gp->gops_sock = (int)k;
            }
        }
    }

    /* 2: probe the ports whose answer is unknown or a stale "no" */
    size_t probes_left = (size_t)s->conf->max_probes;
    for (size_t i = 0; i < n_procs && s->conf->pprof; i++) {
        struct go_proc *gp = &procs[i];
        for (size_t k = 0; k < gp->n_socks; k++) {
            const struct listen_sock *l = &gp->socks[k];
            bool dup_port = false;
            for (size_t q = 0; q < k && !dup_port; q++)
                dup_port = gp->socks[q].port == l->port;
            if ((int)k == gp->gops_sock || dup_port ||
                (gp->gops_sock >= 0 && gp->socks[gp->gops_sock].port == l->port))
                continue; /* the agent's port, or the same port on v4 and v6 */
            size_t idx;
            rc = probe_entry(s, &gp->pi, l->port, &idx);
            if (rc < 0)
                goto out;
            struct cd_sd_local_probe *p = &s->probes[idx];
            p->seen = true;
            if (p->probed_ms != 0 &&
                (p->is_pprof || now - p->probed_ms <= CD_SD_LOCAL_NEG_PROBE_TTL_MS))
                continue;
            if (probes_left == 0) {
                rc = note(s, "more than %d ports to probe: the rest wait for the next refresh",
                          s->conf->max_probes);
                if (rc < 0)
                    goto out;
                continue;
            }
            probes_left--;
            struct probe_job *gj = realloc(jobs, (n_jobs + 1) * sizeof(*gj));
            if (gj == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            jobs = gj;
            struct probe_job *j = &jobs[n_jobs++];
            memset(j, 0, sizeof(*j));
            char host[64];
            connect_host(l, host, sizeof(host));
            snprintf(j->url, sizeof(j->url), "http://%s:%d%s/debug/pprof/", host, l->port,
                     s->path_prefix);
            j->cache = idx;
        }
    }
    rc = run_probes(s, jobs, n_jobs);
    if (rc == -ENOMEM)
        goto out;
    rc = 0;
    for (size_t i = 0; i < n_jobs; i++) {
        struct cd_sd_local_probe *p = &s->probes[jobs[i].cache];
        if (!jobs[i].done)
            continue; /* not answered in time: asked again next refresh */
        p->is_pprof = jobs[i].is_pprof;
        p->probed_ms = now > 0 ? now : 1;
    }

    /* 3: the targets, in pid order (stable from one refresh to the next) */
    for (size_t i = 0; i < n_procs; i++) {
        struct go_proc *gp = &procs[i];
        char host[64], addr[128];
        if (gp->gops_sock >= 0) {
            const struct listen_sock *l = &gp->socks[gp->gops_sock];
            connect_host(l, host, sizeof(host));
            snprintf(addr, sizeof(addr), "gops://%s:%d", host, l->port);
            rc = add_target(g, &gp->pi, "gops", addr, l);
            if (rc < 0)
                goto out;
        }
        for (size_t k = 0; k < gp->n_socks && s->conf->pprof; k++) {
            const struct listen_sock *l = &gp->socks[k];
            if ((int)k == gp->gops_sock)
                continue;
            struct cd_sd_local_probe *p = find_probe(s, &gp->pi, l->port);
            bool dup_port = false;
            for (size_t q = 0; q < k && !dup_port; q++)
                dup_port = gp->socks[q].port == l->port;
            if (p == NULL || !p->is_pprof || dup_port)
                continue;
            connect_host(l, host, sizeof(host));
            snprintf(addr, sizeof(addr), "http://%s:%d", host, l->port);
            rc = add_target(g, &gp->pi, "pprof", addr, l);
            if (rc < 0)
                goto out;
        }
    }

    /* forget processes and binaries that are gone */
    size_t o = 0;
    for (size_t i = 0; i < s->n_probes; i++) {
        if (s->probes[i].seen)
            s->probes[o++] = s->probes[i];
    }
    s->n_probes = o;
    o = 0;
    for (size_t i = 0; i < s->n_exes; i++) {
        if (s->exes[i].seen)
            s->exes[o++] = s->exes[i];
    }
    s->n_exes = o;
    /* hand the group over */
    struct cd_group *dst = realloc(out->v, (out->n + 1) * sizeof(*dst));
    if (dst == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    out->v = dst;
    out->v[out->n++] = found.v[0];
    free(found.v);
    found.v = NULL;
    found.n = 0;
    rc = 0;
out:
    cd_groups_free(&found);
    free(pids);
    free(ls.v);
    free(procs);
    free(jobs);
    return rc;
}
