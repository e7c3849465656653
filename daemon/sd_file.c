/* sd_file — see sd_file.h. */
#include "sd_file.h"

#include "relabel.h"
#include "str.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

void cd_sd_file_init(struct cd_sd_file *s, const struct cd_file_sd_conf *conf, size_t max_targets)
{
    memset(s, 0, sizeof(*s));
    s->conf = conf;
    s->max_targets = max_targets;
}

static void entry_free(struct cd_sd_file_entry *e)
{
    free(e->path);
    cd_groups_free(&e->groups);
    memset(e, 0, sizeof(*e));
}

void cd_sd_file_destroy(struct cd_sd_file *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_files; i++)
        entry_free(&s->files[i]);
    free(s->files);
    cd_strv_free(&s->errors);
    memset(s, 0, sizeof(*s));
}

/* ---- JSON ------------------------------------------------------------------------------- */

static int check_label(const char *name, const char *value, char *why, size_t wsz)
{
    if (!cd_relabel_label_name_valid(name)) {
        snprintf(why, wsz, "\"%s\" is not a valid label name", name);
        return -EINVAL;
    }
    if (strlen(value) > CD_CONFIG_MAX_LABEL_VALUE) {
        snprintf(why, wsz, "label %s: value longer than %d bytes", name, CD_CONFIG_MAX_LABEL_VALUE);
        return -EINVAL;
    }
    return 0;
}

static int parse_json(const char *name, const void *data, size_t len, size_t max_targets,
                      struct cd_groups *out, struct cd_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    char why[320];
    int rc = 0;
    size_t total = 0;
    if (root == NULL)
        return cd_err_set(err, -EINVAL, "%s:%d:%d: %s", name, je.line, je.column, je.text);
    if (!json_is_array(root)) {
        rc = cd_err_set(err, -EINVAL, "%s: expected a list of target groups", name);
        goto out;
    }
    size_t i;
    json_t *g;
    json_array_foreach(root, i, g)
    {
        if (!json_is_object(g)) {
            rc = cd_err_set(err, -EINVAL, "%s: group %zu: expected an object", name, i);
            goto out;
        }
        json_t *targets = json_object_get(g, "targets");
        json_t *labels = json_object_get(g, "labels");
        if (targets != NULL && !json_is_array(targets) && !json_is_null(targets)) {
            rc = cd_err_set(err, -EINVAL, "%s: group %zu: targets must be a list of strings", name,
                            i);
            goto out;
        }
        if (labels != NULL && !json_is_object(labels) && !json_is_null(labels)) {
            rc = cd_err_set(err, -EINVAL, "%s: group %zu: labels must be an object", name, i);
            goto out;
        }
        struct cd_group *cg = cd_groups_add(out);
        if (cg == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        const char *k;
        json_t *v;
        if (json_is_object(labels)) {
            json_object_foreach(labels, k, v)
            {
                if (!json_is_string(v)) {
                    rc = cd_err_set(err, -EINVAL, "%s: group %zu: label %s: expected a string",
                                    name, i, k);
                    goto out;
                }
                if (check_label(k, json_string_value(v), why, sizeof(why)) < 0) {
                    rc = cd_err_set(err, -EINVAL, "%s: group %zu: %s", name, i, why);
                    goto out;
                }
                if (json_object_size(labels) > CD_CONFIG_MAX_LABELS) {
                    rc = cd_err_set(err, -EINVAL, "%s: group %zu: more than %d labels", name, i,
                                    CD_CONFIG_MAX_LABELS);
                    goto out;
                }
                if (cd_labels_set(&cg->labels, k, json_string_value(v)) < 0) {
                    rc = -ENOMEM;
                    goto out;
                }
            }
        }
        size_t t;
        json_t *tv;
        json_array_foreach(targets, t, tv)
        {
            if (!json_is_string(tv) || json_string_length(tv) == 0 ||
                json_string_length(tv) > 1024) {
                rc = cd_err_set(err, -EINVAL, "%s: group %zu: target %zu: expected an address",
                                name, i, t);
                goto out;
            }
            if (++total > max_targets) {
                rc = cd_err_set(err, -E2BIG, "%s: more than %zu targets", name, max_targets);
                goto out;
            }
            if (cd_group_add_entry(cg, json_string_value(tv), NULL) < 0) {
                rc = -ENOMEM;
                goto out;
            }
        }
    }
out:
    json_decref(root);
    if (rc == -ENOMEM)
        cd_err_set(err, rc, "out of memory");
    return rc;
}

/* ---- YAML ------------------------------------------------------------------------------- */

static int yerr(struct cd_err *err, const char *name, const yaml_node_t *n, const char *what)
{
    return cd_err_set(err, -EINVAL, "%s:%zu:%zu: %s", name, (size_t)n->start_mark.line + 1,
                      (size_t)n->start_mark.column + 1, what);
}

static const char *yscalar(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool ynull(const yaml_node_t *n)
{
    const char *s = yscalar(n);
    return n == NULL || (s != NULL && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                         (s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0));
}

static int parse_yaml(const char *name, const void *data, size_t len, size_t max_targets,
                      struct cd_groups *out, struct cd_err *err)
{
    yaml_parser_t p;
    yaml_document_t doc;
    int rc = 0;
    size_t total = 0;
    char why[320];
    if (!yaml_parser_initialize(&p))
        return cd_err_set(err, -ENOMEM, "out of memory");
    yaml_parser_set_input_string(&p, data, len);
    if (!yaml_parser_load(&p, &doc)) {
        rc = cd_err_set(err, -EINVAL, "%s:%zu:%zu: YAML syntax error: %s", name,
                        (size_t)p.problem_mark.line + 1, (size_t)p.problem_mark.column + 1,
                        p.problem ? p.problem : "?");
        yaml_parser_delete(&p);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL || ynull(root))
        goto out; /* an empty file: no targets */
    if (root->type != YAML_SEQUENCE_NODE) {
        rc = yerr(err, name, root, "expected a list of target groups");
        goto out;
    }
    /* Aliases could repeat a big list many times: the target limit bounds the work. */
    for (yaml_node_item_t *it = root->data.sequence.items.start; it < root->data.sequence.items.top;
         it++) {
        yaml_node_t *g = yaml_document_get_node(&doc, *it);
        if (g == NULL || g->type != YAML_MAPPING_NODE) {
            rc = yerr(err, name, g ? g : root, "expected a mapping with targets and labels");
            goto out;
        }
        struct cd_group *cg = cd_groups_add(out);
        if (cg == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        bool seen_t = false, seen_l = false;
        for (yaml_node_pair_t *pr = g->data.mapping.pairs.start; pr < g->data.mapping.pairs.top;
             pr++) {
            yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
            yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
            const char *key = yscalar(k);
            if (key == NULL || v == NULL) {
                rc = yerr(err, name, k ? k : g, "keys must be strings");
                goto out;
            }
            if (strcmp(key, "targets") == 0 && !seen_t) {
                seen_t = true;
                if (ynull(v))
                    continue;
                if (v->type != YAML_SEQUENCE_NODE) {
                    rc = yerr(err, name, v, "targets: expected a list of addresses");
                    goto out;
                }
                for (yaml_node_item_t *t = v->data.sequence.items.start;
                     t < v->data.sequence.items.top; t++) {
                    yaml_node_t *tn = yaml_document_get_node(&doc, *t);
                    const char *s = yscalar(tn);
                    if (s == NULL || s[0] == '\0' || strlen(s) > 1024) {
                        rc = yerr(err, name, tn ? tn : v, "targets: expected an address");
                        goto out;
                    }
                    if (++total > max_targets) {
                        rc =
                            cd_err_set(err, -E2BIG, "%s: more than %zu targets", name, max_targets);
                        goto out;
                    }
                    if (cd_group_add_entry(cg, s, NULL) < 0) {
                        rc = -ENOMEM;
                        goto out;
                    }
                }
            } else if (strcmp(key, "labels") == 0 && !seen_l) {
                seen_l = true;
                if (ynull(v))
                    continue;
                if (v->type != YAML_MAPPING_NODE) {
                    rc = yerr(err, name, v, "labels: expected a mapping");
                    goto out;
                }
                for (yaml_node_pair_t *lp = v->data.mapping.pairs.start;
                     lp < v->data.mapping.pairs.top; lp++) {
                    const char *ln = yscalar(yaml_document_get_node(&doc, lp->key));
                    yaml_node_t *lvn = yaml_document_get_node(&doc, lp->value);
                    const char *lv = yscalar(lvn);
                    if (ln == NULL || lv == NULL) {
                        rc = yerr(err, name, lvn ? lvn : v, "labels: expected name: value");
                        goto out;
                    }
                    if (check_label(ln, lv, why, sizeof(why)) < 0) {
                        rc = yerr(err, name, lvn, why);
                        goto out;
                    }
                    if (cg->labels.n >= CD_CONFIG_MAX_LABELS) {
                        rc = yerr(err, name, v, "too many labels");
                        goto out;
                    }
                    if (cd_labels_set(&cg->labels, ln, lv) < 0) {
                        rc = -ENOMEM;
                        goto out;
                    }
                }
            } else {
                snprintf(why, sizeof(why),
                         "unknown or repeated key \"%s\" (expected targets "
                         "and labels)",
                         key);
                rc = yerr(err, name, k, why);
                goto out;
            }
        }
    }
out:
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    if (rc == -ENOMEM)
        cd_err_set(err, rc, "out of memory");
    return rc;
}

int cd_sd_file_parse(const char *name, const void *data, size_t len, size_t max_targets,
                     struct cd_groups *out, struct cd_err *err)
{
    struct cd_groups gs = {0};
    int rc = cd_str_has_suffix(name, ".json") ? parse_json(name, data, len, max_targets, &gs, err)
                                              : parse_yaml(name, data, len, max_targets, &gs, err);
    if (rc < 0) {
        cd_groups_free(&gs);
        return rc;
    }
    for (size_t i = 0; i < gs.n; i++) {
        if (cd_labels_set(&gs.v[i].labels, "__meta_filepath", name) < 0 ||
            (gs.v[i].source = cd_str_printf("file_sd %s", name)) == NULL) {
            cd_groups_free(&gs);
            return cd_err_set(err, -ENOMEM, "out of memory");
        }
    }
    /* hand over: append the groups themselves */
    struct cd_group *g = realloc(out->v, (out->n + gs.n) * sizeof(*g));
    if (g == NULL && out->n + gs.n > 0) {
        cd_groups_free(&gs);
        return cd_err_set(err, -ENOMEM, "out of memory");
    }
    out->v = g;
    if (gs.n > 0)
        memcpy(out->v + out->n, gs.v, gs.n * sizeof(*g));
    out->n += gs.n;
    free(gs.v);
    return 0;
}

/* ---- files -------------------------------------------------------------------------------- */

static int read_file(const char *path, char **data, size_t *len, struct stat *st,
                     struct cd_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return cd_err_set(err, -errno, "%s: %s", path, strerror(errno));
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return cd_err_set(err, -EINVAL, "%s: not a regular file", path);
    }
    if (st->st_size > (off_t)CD_SD_FILE_MAX_BYTES) {
        close(fd);
        return cd_err_set(err, -EFBIG, "%s: larger than %u bytes", path, CD_SD_FILE_MAX_BYTES);
    }
    size_t cap = (size_t)st->st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return cd_err_set(err, -ENOMEM, "out of memory");
    }
    for (;;) {
        if (n == cap) {
            /* grew since fstat: a writer is at work; the watcher will call again */
            free(buf);
            close(fd);
            return cd_err_set(err, -EAGAIN, "%s: changed while being read", path);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return cd_err_set(err, -e, "%s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = n;
    return 0;
}

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static struct cd_sd_file_entry *find_entry(struct cd_sd_file *s, const char *path)
{
    for (size_t i = 0; i < s->n_files; i++) {
        /* entries already taken over by this refresh have no path left */
        if (s->files[i].path != NULL && strcmp(s->files[i].path, path) == 0)
            return &s->files[i];
    }
    return NULL;
}

static int add_error(struct cd_sd_file *s, const char *msg)
{
    return cd_strv_push(&s->errors, msg);
}

/* A directory that does not exist (yet) holds no files; other errors stop the glob. */
static int glob_err(const char *path, int eerrno)
{
    (void)path;
    return eerrno == ENOENT || eerrno == ENOTDIR ? 0 : 1;
}

int cd_sd_file_refresh(struct cd_sd_file *s, struct cd_groups *out)
{
    struct cd_strv paths = {0};
    int rc = 0;
    cd_strv_free(&s->errors);
    for (size_t p = 0; p < s->conf->files.n; p++) {
        glob_t g;
        memset(&g, 0, sizeof(g));
        int gr = glob(s->conf->files.v[p], 0, glob_err, &g);
        if (gr == 0) {
            for (size_t i = 0; i < g.gl_pathc && rc == 0; i++) {
                bool dup = false;
                for (size_t k = 0; k < paths.n && !dup; k++)
                    dup = strcmp(paths.v[k], g.gl_pathv[i]) == 0;
                if (dup)
                    continue;
                if (paths.n >= CD_SD_FILE_MAX_FILES) {
                    char *m = cd_str_printf("%s: more than %d files matched; the rest are "
                                            "ignored",
                                            s->conf->files.v[p], CD_SD_FILE_MAX_FILES);
                    if (m == NULL || add_error(s, m) < 0)
                        rc = -ENOMEM;
                    free(m);
                    break;
                }
                if (cd_strv_push(&paths, g.gl_pathv[i]) < 0)
                    rc = -ENOMEM;
            }
        } else if (gr == GLOB_NOSPACE) {
            rc = -ENOMEM;
        } else if (gr == GLOB_ABORTED) {
            char *m = cd_str_printf("%s: cannot list its directory", s->conf->files.v[p]);
            if (m == NULL || add_error(s, m) < 0)
                rc = -ENOMEM;
            free(m);
        }
        globfree(&g);
        if (rc < 0)
            goto out;
    }

    /* New cache: entries for the files matched now, reusing unchanged ones. */
    struct cd_sd_file_entry *files = calloc(paths.n ? paths.n : 1, sizeof(*files));
    if (files == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < paths.n; i++) {
        struct cd_sd_file_entry *e = &files[i];
        struct cd_sd_file_entry *old = find_entry(s, paths.v[i]);
        struct stat st;
        if (old != NULL && stat(paths.v[i], &st) == 0 && old->good && st.st_dev == old->dev &&
            st.st_ino == old->ino && st.st_size == old->size && mtime_ns(&st) == old->mtime_ns) {
            *e = *old;
            memset(old, 0, sizeof(*old));
            continue;
        }
        e->path = cd_str_dup(paths.v[i]);
        if (e->path == NULL) {
            rc = -ENOMEM;
            break;
        }
        char *data = NULL;
        size_t len = 0;
        struct cd_err err;
        cd_err_init(&err);
        int r = read_file(paths.v[i], &data, &len, &st, &err);
        struct cd_groups gs = {0};
        if (r == 0)
            r = cd_sd_file_parse(paths.v[i], data, len, s->max_targets, &gs, &err);
        free(data);
        if (r == -ENOMEM) {
            cd_groups_free(&gs);
            rc = -ENOMEM;
            break;
        }
        if (r < 0) {
            cd_groups_free(&gs);
            /* keep the last good content of this file */
            if (old != NULL && old->good) {
                e->good = true;
                e->groups = old->groups;
                e->dev = old->dev;
                e->ino = old->ino;
                e->size = old->size;
                e->mtime_ns = old->mtime_ns;
                memset(&old->groups, 0, sizeof(old->groups));
            }
            char *m = cd_str_printf("%s%s", cd_err_msg(&err),
                                    e->good ? " (keeping its previous targets)" : "");
            if (m == NULL || add_error(s, m) < 0)
                rc = -ENOMEM;
            free(m);
            /* force a re-read next time, whatever the stat says */
            e->mtime_ns = -1;
            if (rc < 0)
                break;
            continue;
        }
        e->good = true;
        e->groups = gs;
        e->dev = st.st_dev;
        e->ino = st.st_ino;
        e->size = st.st_size;
        e->mtime_ns = mtime_ns(&st);
    }
    for (size_t i = 0; i < s->n_files; i++)
        entry_free(&s->files[i]);
    free(s->files);
    s->files = files;
    s->n_files = paths.n;
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < s->n_files; i++) {
        if (s->files[i].good && cd_groups_copy_append(out, &s->files[i].groups) < 0) {
            rc = -ENOMEM;
            break;
        }
    }
out:
    cd_strv_free(&paths);
    return rc;
}

int cd_sd_file_dirs(const struct cd_file_sd_conf *conf, struct cd_strv *out)
{
    for (size_t i = 0; i < conf->files.n; i++) {
        const char *p = conf->files.v[i];
        const char *slash = strrchr(p, '/');
        char *dir = slash == NULL ? cd_str_dup(".")
                    : slash == p  ? cd_str_dup("/")
                                  : cd_str_ndup(p, (size_t)(slash - p));
        if (dir == NULL)
            return -ENOMEM;
        bool dup = false;
        for (size_t k = 0; k < out->n && !dup; k++)
            dup = strcmp(out->v[k], dir) == 0;
        int rc = dup ? 0 : cd_strv_push(out, dir);
        free(dir);
        if (rc < 0)
            return rc;
    }
    return 0;
}
