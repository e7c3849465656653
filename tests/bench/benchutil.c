/* benchutil — see benchutil.h. */
#include "benchutil.h"

#include "cdtest.h"
#include "fleet.h"
#include "str.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t bu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bu_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double bu_proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* after ")": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double bu_fleet_cpu_s(const struct cdt_fleet *f)
{
    double sum = 0;
    for (size_t i = 0; i < f->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = f->targets[j].pid == f->targets[i].pid;
        double v = seen ? 0 : bu_proc_cpu_s(f->targets[i].pid);
        if (v > 0)
            sum += v;
    }
    return sum;
}

void bu_machine_cpu_s(double *busy, double *total)
{
    *busy = *total = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return;
    unsigned long long v[8] = {0};
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) == 8) {
        double tck = (double)sysconf(_SC_CLK_TCK);
        unsigned long long all = 0;
        for (int i = 0; i < 8; i++)
            all += v[i];
        *total = (double)all / tck;
        *busy = (double)(all - v[3] - v[4]) / tck; /* minus idle and iowait */
    }
    fclose(f);
}

double bu_thread_runq_wait_s(pid_t pid, pid_t tid)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
    FILE *f = fopen(path, "r");
    unsigned long long run = 0, wait = 0;
    int n = f != NULL ? fscanf(f, "%llu %llu", &run, &wait) : 0;
    if (f != NULL)
        fclose(f);
    return n == 2 ? (double)wait / 1e9 : -1;
}

long bu_proc_status_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    size_t kl = strlen(key);
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            sscanf(line + kl + 1, "%ld", &v);
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    return v;
}

static void *rss_main(void *arg)
{
    struct bu_rss *r = arg;
    while (!atomic_load(&r->stop)) {
        long kib = bu_proc_status_kib(r->pid, "VmRSS");
        if (kib > atomic_load(&r->max_kib))
            atomic_store(&r->max_kib, kib);
        atomic_fetch_add(&r->samples, 1);
        struct timespec ts = {r->period_ms / 1000, (long)(r->period_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* a sampling period, not a wait for an event */
    }
    return NULL;
}

void bu_rss_start(struct bu_rss *r, pid_t pid, int period_ms)
{
    r->pid = pid;
    r->period_ms = period_ms;
    atomic_init(&r->stop, false);
    atomic_init(&r->max_kib, -1);
    atomic_init(&r->samples, 0);
    pthread_create(&r->thread, NULL, rss_main, r);
}

void bu_rss_stop(struct bu_rss *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
}

/* ---- HTTP over the Unix socket ------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct bu_client *k = ctx;
    size_t n = size * nmemb;
    if (k->len + n + 1 > k->cap) {
        size_t cap = k->cap ? k->cap : 65536;
        while (cap < k->len + n + 1)
            cap *= 2;
        char *b = realloc(k->body, cap);
        if (b == NULL)
            return 0;
        k->body = b;
        k->cap = cap;
    }
    memcpy(k->body + k->len, p, n);
    k->len += n;
    k->body[k->len] = '\0';
    return n;
}

int bu_client_init(struct bu_client *k, const char *socket_path)
{
    memset(k, 0, sizeof(*k));
    k->c = curl_easy_init();
    if (k->c == NULL)
        return -1;
    curl_easy_setopt(k->c, CURLOPT_UNIX_SOCKET_PATH, socket_path);
    curl_easy_setopt(k->c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k->c, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(k->c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k->c, CURLOPT_TIMEOUT_MS, 60000L);
    k->base = cd_str_dup("http://localhost");
    return 0;
}

void bu_client_free(struct bu_client *k)
{
    if (k->c != NULL)
        curl_easy_cleanup(k->c);
    free(k->body);
    free(k->base);
    memset(k, 0, sizeof(*k));
}

long bu_client_get(struct bu_client *k, const char *path_and_query)
{
    char *url = cd_str_printf("%s%s", k->base, path_and_query);
    k->len = 0;
    if (k->body != NULL)
        k->body[0] = '\0';
    curl_easy_setopt(k->c, CURLOPT_URL, url);
    CURLcode rc = curl_easy_perform(k->c);
    free(url);
    if (rc != CURLE_OK)
        return -1;
    long status = 0;
    curl_easy_getinfo(k->c, CURLINFO_RESPONSE_CODE, &status);
    if (k->body == NULL)
        on_body("", 0, 0, k);
    return status;
}

/* ---- /metrics ------------------------------------------------------------------------------ */

#define LATENESS "collectord_scrape_start_lateness_seconds"

double bu_metric(const char *text, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, name, nl) == 0 && (p[nl] == ' ' || p[nl] == '{')) {
            const char *v = strchr(p, ' ');
            if (p[nl] == '{') {
                const char *close = strchr(p, '}');
                v = close != NULL ? strchr(close, ' ') : NULL;
            }
            return v != NULL ? strtod(v + 1, NULL) : -1;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

int bu_lateness_read(struct bu_client *k, struct bu_lateness *out)
{
    if (bu_client_get(k, "/metrics") != 200)
        return -1;
    memset(out, 0, sizeof(*out));
    const char *bucket = LATENESS "_bucket{le=\"";
    size_t bl = strlen(bucket);
    for (const char *p = k->body; p != NULL && *p != '\0';) {
        if (strncmp(p, bucket, bl) == 0 && out->n < BU_MAX_BUCKETS) {
            const char *le = p + bl;
            out->le[out->n] = strncmp(le, "+Inf", 4) == 0 ? INFINITY : strtod(le, NULL);
            const char *v = strstr(le, "} ");
            out->cum[out->n] = v != NULL ? strtoull(v + 2, NULL, 10) : 0;
            out->n++;
        } else if (strncmp(p, LATENESS "_count ", strlen(LATENESS "_count ")) == 0) {
            out->count = strtoull(p + strlen(LATENESS "_count "), NULL, 10);
        } else if (strncmp(p, LATENESS "_sum ", strlen(LATENESS "_sum ")) == 0) {
            out->sum_s = strtod(p + strlen(LATENESS "_sum "), NULL);
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return out->n > 0 ? 0 : -1;
}

void bu_lateness_delta(const struct bu_lateness *a, const struct bu_lateness *b,
                       struct bu_lateness *out)
{
    *out = *b;
    for (size_t i = 0; i < b->n && i < a->n; i++)
        out->cum[i] = b->cum[i] - a->cum[i];
    out->count = b->count - a->count;
    out->sum_s = b->sum_s - a->sum_s;
}

uint64_t bu_lateness_within(const struct bu_lateness *h, double bound_s)
{
    uint64_t v = 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->le[i] <= bound_s + 1e-9)
            v = h->cum[i];
    return v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bu_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

/* ---- the cron peer ------------------------------------------------------------------------- */

static double children_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The file a URL's body goes to: <dir>/<tick>/<port>-<kind> (".pb.gz", as profiles are). */
static char *peer_file(const char *dir, int tick, const char *url)
{
    const char *port = strstr(url, "127.0.0.1:");
    const char *kind = strrchr(url, '/');
    int p = port != NULL ? (int)strtol(port + 10, NULL, 10) : 0;
    return cd_str_printf("%s/%d/%d-%s.pb.gz", dir, tick, p, kind != NULL ? kind + 1 : "x");
}

static void walk_files(const char *dir, int ticks, uint64_t *files, uint64_t *bytes,
                       const char *const *urls, size_t n_urls)
{
    for (int t = 0; t < ticks; t++) {
        for (size_t i = 0; i < n_urls; i++) {
            char *f = peer_file(dir, t, urls[i]);
            struct stat st;
            if (stat(f, &st) == 0 && st.st_size > 0) {
                (*files)++;
                *bytes += (uint64_t)st.st_size;
            }
            free(f);
        }
    }
}

int bu_peer_run(const char *style, const char *dir, const char *const *urls, size_t n_urls,
                int ticks, int interval_ms, const char *arrivals_log, struct bu_peer_result *out)
{
    memset(out, 0, sizeof(*out));
    bool xargs = strcmp(style, "xargs") == 0;
    /* The lists a cron script would keep next to itself, and the directories it writes into. */
    char **lists = calloc((size_t)ticks, sizeof(*lists));
    for (int t = 0; t < ticks; t++) {
        char *sub = cd_str_printf("%s/%d", dir, t);
        mkdir(sub, 0755);
        free(sub);
        lists[t] = cd_str_printf("%s/list-%d.txt", dir, t);
        FILE *f = fopen(lists[t], "w");
        if (f == NULL)
            return -errno;
        for (size_t i = 0; i < n_urls; i++) {
            char *file = peer_file(dir, t, urls[i]);
            if (xargs)
                fprintf(f, "%s %s?tick=%d\n", file, urls[i], t);
            else
                fprintf(f, "url = \"%s?tick=%d\"\noutput = \"%s\"\n", urls[i], t, file);
            free(file);
        }
        fclose(f);
    }
    int64_t *tick_wall = calloc((size_t)ticks, sizeof(*tick_wall));
    int64_t *tick_mono = calloc((size_t)ticks, sizeof(*tick_mono));
    int64_t *done_mono = calloc((size_t)ticks, sizeof(*done_mono));
    pid_t *kids = calloc((size_t)ticks, sizeof(*kids));
    double cpu0 = children_cpu_s();
    int64_t start = bu_now_ms();
    int started = 0, running = 0;
    while (started < ticks || running > 0) {
        int64_t now = bu_now_ms();
        if (started < ticks && now >= start + (int64_t)started * interval_ms) {
            int t = started++;
            tick_wall[t] = bu_wall_ms();
            tick_mono[t] = bu_now_ms();
            char *cmd = xargs ? cd_str_printf("xargs -P 64 -n 2 -a %s curl -s -o", lists[t])
                              : cd_str_printf("curl -s -Z --parallel-max 64 -K %s", lists[t]);
            char *av[] = {"/bin/sh", "-c", cmd, NULL};
            kids[t] = cdt_spawn(av, "/dev/null");
            free(cmd);
            running++;
            continue;
        }
        /* Reap whatever finished; the next tick is at most a few ms away. */
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            for (int t = 0; t < started; t++) {
                if (kids[t] == p) {
                    done_mono[t] = bu_now_ms();
                    running--;
                }
            }
            continue;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL); /* the peer is a cron job: it is the one sleeping */
    }
    out->cpu_s = children_cpu_s() - cpu0;
    out->wall_s = (double)(bu_now_ms() - start) / 1000.0;
    out->ticks = ticks;
    out->urls_per_tick = n_urls;
    for (int t = 0; t < ticks; t++) {
        double f = (double)(done_mono[t] - tick_mono[t]) / 1000.0;
        if (f > out->last_finish_s)
            out->last_finish_s = f;
    }
    /* Lateness as the targets saw it: arrival minus the tick named in the query. */
    uint8_t *log = NULL;
    size_t len = 0;
    size_t cap = n_urls * (size_t)ticks + 1;
    double *late = calloc(cap, sizeof(*late));
    double sum = 0;
    if (cdt_read_file(arrivals_log, &log, &len) == 0) {
        for (char *line = (char *)log; line != NULL && *line != '\0';) {
            char *nl = strchr(line, '\n');
            long long ns = 0;
            const char *q = strstr(line, "?tick=");
            /* Earlier runs against the same targets share the log: only this run's lines. */
            if (q != NULL && (nl == NULL || q < nl) && sscanf(line, "%lld", &ns) == 1 &&
                ns / 1000000 >= tick_wall[0] - 1) {
                int t = (int)strtol(q + 6, NULL, 10);
                if (t >= 0 && t < ticks && out->arrived < cap) {
                    double ms = (double)(ns / 1000000 - tick_wall[t]);
                    late[out->arrived++] = ms;
                    sum += ms;
                    if (ms <= 100)
                        out->within_100ms++;
                }
            }
            line = nl != NULL ? nl + 1 : NULL;
        }
    }
    free(log);
    out->mean_late_ms = out->arrived ? sum / (double)out->arrived : 0;
    out->p99_late_ms = bu_percentile(late, out->arrived, 99);
    out->max_late_ms = out->arrived ? late[out->arrived - 1] : 0;
    free(late);
    walk_files(dir, ticks, &out->files, &out->file_bytes, urls, n_urls);
    for (int t = 0; t < ticks; t++)
        free(lists[t]);
    free(lists);
    free(tick_wall);
    free(tick_mono);
    free(done_mono);
    free(kids);
    return 0;
}
