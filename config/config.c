/*
 * config: nashra.yaml (SPEC §3) read through lib/yaml_tree into one struct
 * config (see config.h), every key checked against one schema table.
 *
 * "_file" keys: mail.smtp.password_file is a secret read now (its contents,
 * trailing newlines stripped, become mail.smtp.password). mail.secret_file
 * and mail.dkim.key_file are kept as paths only: the secret is created on
 * first start and the DKIM key is read by the mail module, so neither file
 * has to exist when the configuration is loaded.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/yaml_tree.h"

#define CONFIG_MAX_BYTES  (1024 * 1024) /* the config file */
#define SECRET_MAX_BYTES  (64 * 1024)   /* a *_file secret */
#define VALUE_MAX_BYTES   (64 * 1024)   /* one value after ${NAME} expansion */
#define MAX_BYTES_LIMIT   ((size_t)1 << 30)
#define DEFAULT_MAX_BYTES ((size_t)10 << 20)

/*
 * Every key of the file, dotted; "lists[]" stands for each item of lists.
 * Unknown-key checks and "did you mean" suggestions come from this table.
 */
static const char *const config_keys[] = {
    "site.title",
    "site.url",
    "site.language",
    "site.timezone",
    "site.author.name",
    "site.author.email",
    "content.dir",
    "content.allow_html",
    "content.max_bytes",
    "output.dir",
    "output.templates",
    "state.dir",
    "feeds.items",
    "feeds.full_content",
    "feeds.categories",
    "http.listen",
    "http.trust_proxy",
    "activitypub.enabled",
    "activitypub.username",
    "activitypub.display_name",
    "activitypub.summary",
    "activitypub.object_type",
    "activitypub.actor_type",
    "activitypub.icon",
    "activitypub.allow_insecure_loopback",
    "mail.transport",
    "mail.maildir.path",
    "mail.smtp.host",
    "mail.smtp.port",
    "mail.smtp.tls",
    "mail.smtp.username",
    "mail.smtp.password",
    "mail.smtp.password_file",
    "mail.smtp.connections",
    "mail.smtp.rate",
    "mail.smtp.timeout",
    "mail.smtp.ca_file",
    "mail.from",
    "mail.secret_file",
    "mail.dkim.domain",
    "mail.dkim.selector",
    "mail.dkim.key_file",
    "mail.bounces.maildir",
    "mail.bounces.soft_limit",
    "lists[].id",
    "lists[].name",
    "lists[].categories",
    "lists[].mode",
    "lists[].schedule",
    "lists[].subject",
    "lists[].template",
    "lists[].language",
};
#define NKEYS (sizeof config_keys / sizeof *config_keys)

/* --- loading context and errors -------------------------------------------- */

struct cload {
    struct config *cfg;
    struct diag *err;
    char *err_file; /* malloc'd: the file the error is in, when not the config */
    int failed;     /* the first error is kept; later calls do nothing */
};

/* Records the first error, at node at (NULL: no position). */
__attribute__((format(printf, 3, 4))) static void cl_error(struct cload *c, const struct ynode *at,
                                                           const char *fmt, ...)
{
    char msg[sizeof c->err->msg];
    va_list ap;

    if (c->failed++)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_set(c->err, at ? at->line : 0, at ? at->col : 0, "%s", msg);
}

static void cl_oom(struct cload *c, const struct ynode *at)
{
    cl_error(c, at, "out of memory");
}

/* "prefix.key" (or "key" at the top) into out. */
static const char *key_name(char *out, size_t size, const char *prefix, const char *key)
{
    snprintf(out, size, "%s%s%s", prefix, *prefix ? "." : "", key);
    return out;
}

/* --- unknown keys and "did you mean" --------------------------------------- */

/* Optimal string alignment distance (a swap of two neighbours costs 1). */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[3][65];
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *row = d[i % 3], *prev = d[(i - 1) % 3], *prev2 = d[(i + 1) % 3];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = prev[j - 1] + cost;
            if (prev[j] + 1 < v)
                v = prev[j] + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            row[j] = v;
        }
    }
    return d[la % 3][lb];
}

/* The key component that follows schema prefix p in entry e ("" p: the first). */
static int next_component(const char *e, const char *p, const char **comp, size_t *len)
{
    size_t pl = strlen(p);
    if (pl) {
        if (strncmp(e, p, pl) || e[pl] != '.')
            return 0;
        e += pl + 1;
    }
    *comp = e;
    *len = strcspn(e, ".[");
    return 1;
}

/* 1 if key is a known key (or section) under schema prefix p. */
static int key_known(const char *p, const char *key)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const char *comp;
        size_t len;
        if (next_component(config_keys[i], p, &comp, &len) && len == strlen(key) &&
            !strncmp(comp, key, len))
            return 1;
    }
    return 0;
}

/*
 * The nearest known key under p, into out: close enough to be a typo (one
 * edit for short keys, two or three for longer ones) or the start of one
 * ("actor" for actor_type); else a key or section of that name elsewhere, as
 * a dotted path ("did you mean 'feeds.items'"). 0 if none.
 */
static int key_suggest(const char *p, const char *key, char *out, size_t size)
{
    size_t kl = strlen(key), best = SIZE_MAX;
    for (size_t i = 0; i < NKEYS; i++) {
        const char *comp;
        size_t len;
        if (!next_component(config_keys[i], p, &comp, &len))
            continue;
        size_t dist = edit_distance(key, kl, comp, len);
        size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
        if (kl >= 4 && kl < len && !strncmp(comp, key, kl))
            dist = limit;
        if (dist <= limit && dist < best) {
            best = dist;
            snprintf(out, size, "%.*s", (int)len, comp);
        }
    }
    if (best != SIZE_MAX)
        return 1;
    for (size_t i = 0; i < NKEYS; i++) {
        const char *e = config_keys[i];
        for (const char *c = e; *c; c += strcspn(c, ".[")) {
            c += *c == '.' ? 1 : *c == '[' ? 3 : 0;
            size_t len = strcspn(c, ".[");
            if (len == kl && !strncmp(c, key, kl) && (c != e || *p)) {
                snprintf(out, size, "%.*s", (int)(c - e + kl), e);
                return 1;
            }
        }
    }
    return 0;
}

/* "title, url, ..." : the keys known under p, into out. */
static void keys_under(const char *p, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NKEYS && used < size; i++) {
        const char *comp, *prev;
        size_t len, plen;
        if (!next_component(config_keys[i], p, &comp, &len))
            continue;
        if (i && next_component(config_keys[i - 1], p, &prev, &plen) && plen == len &&
            !strncmp(prev, comp, len))
            continue; /* one section, several keys */
        used +=
            (size_t)snprintf(out + used, size - used, "%s%.*s", used ? ", " : "", (int)len, comp);
    }
}

/* Every key of map must be known under schema prefix p; shown as name. */
static void check_keys(struct cload *c, const struct ynode *map, const char *p, const char *name)
{
    char hint[64], known[320];
    for (size_t i = 0; i < map->n && !c->failed; i++) {
        const struct ynode *k = map->kv[2 * i];
        if (key_known(p, k->str))
            continue;
        const char *where = *name ? " in " : "";
        if (key_suggest(p, k->str, hint, sizeof hint)) {
            cl_error(c, k, "unknown key '%.80s'%s%s; did you mean '%s'?", k->str, where, name,
                     hint);
        } else {
            keys_under(p, known, sizeof known);
            cl_error(c, k, "unknown key '%.80s'%s%s (known: %s)", k->str, where, name, known);
        }
    }
}

/* --- files ------------------------------------------------------------------ */

/* Reads a regular file of at most max bytes into out (initialised here; freed
 * on error); -1 with *why set. Never blocks on a FIFO. */
static int read_capped(const char *path, size_t max, struct buf *out, const char **why)
{
    struct stat st;
    char chunk[8192];
    int rc = -1;

    buf_init(out, max);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *why = strerror(errno);
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        *why = strerror(errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *why = strerror(errno);
            goto out;
        }
        if (n == 0)
            break;
        if (buf_append(out, chunk, (size_t)n) < 0) {
            *why = out->len + (size_t)n > max ? "too large" : strerror(ENOMEM);
            goto out;
        }
    }
    rc = 0;
out:
    close(fd);
    if (rc < 0)
        buf_free(out);
    return rc;
}

/* A path from the file made absolute against the config's folder. */
static char *path_resolve(const char *dir, const char *value)
{
    if (value[0] == '/')
        return strdup(value);
    while (value[0] == '.' && value[1] == '/')
        for (value += 2; *value == '/'; value++)
            ;
    if (!strcmp(value, ".") || !*value)
        return strdup(dir);
    size_t dl = strlen(dir), vl = strlen(value);
    int slash = dl && dir[dl - 1] != '/';
    char *p = malloc(dl + slash + vl + 1);
    if (p) {
        memcpy(p, dir, dl);
        if (slash)
            p[dl] = '/';
        memcpy(p + dl + slash, value, vl + 1);
    }
    return p;
}

/* --- scalar values ---------------------------------------------------------- */

/* A value that is set: NULL when absent or YAML null. */
static const struct ynode *cl_value(const struct ynode *map, const char *key)
{
    const struct ynode *n = ynode_get(map, key);
    return n && !ynode_is_null(n) ? n : NULL;
}

/* Appends s with every ${NAME} replaced by the environment variable. */
static int env_expand(struct cload *c, const struct ynode *n, const char *name, struct buf *b)
{
    const char *s = n->str, *end = n->str + n->len;
    while (s < end) {
        const char *d = strstr(s, "${");
        if (!d) {
            if (buf_append(b, s, (size_t)(end - s)) < 0)
                goto big;
            break;
        }
        if (buf_append(b, s, (size_t)(d - s)) < 0)
            goto big;
        const char *v = d + 2, *close = strchr(v, '}');
        size_t vl = close ? (size_t)(close - v) : 0;
        if (!vl || vl > 128 || (!isalpha((unsigned char)*v) && *v != '_') ||
            strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != vl) {
            cl_error(c, n, "%s: '${' must start ${NAME}, an environment variable", name);
            return -1;
        }
        char var[129];
        memcpy(var, v, vl);
        var[vl] = '\0';
        const char *val = getenv(var);
        if (!val) {
            cl_error(c, n, "%s: environment variable %s is not set", name, var);
            return -1;
        }
        if (buf_puts(b, val) < 0)
            goto big;
        s = close + 1;
    }
    return 0;
big:
    cl_error(c, n, "%s: value longer than %d bytes", name, VALUE_MAX_BYTES);
    return -1;
}

/* A scalar's value, ${NAME} expanded, malloc'd; NULL with the error set. */
static char *cl_scalar(struct cload *c, const struct ynode *n, const char *name)
{
    struct buf b;
    if (c->failed)
        return NULL;
    if (n->type != YNODE_SCALAR) {
        cl_error(c, n, "%s: expected a single value, not a %s", name,
                 n->type == YNODE_SEQ ? "list" : "mapping");
        return NULL;
    }
    if (memchr(n->str, '\0', n->len)) {
        cl_error(c, n, "%s: the value holds a NUL character", name);
        return NULL;
    }
    buf_init(&b, VALUE_MAX_BYTES);
    if (env_expand(c, n, name, &b) < 0) {
        buf_free(&b);
        return NULL;
    }
    char *s = b.data ? buf_steal(&b) : strdup("");
    if (!s)
        cl_oom(c, n);
    return s;
}

/* --- typed getters: each leaves *dst (the default) when the key is unset --- */

static const struct ynode *cl_str(struct cload *c, const struct ynode *map, const char *prefix,
                                  const char *key, char **dst)
{
    char name[96];
    const struct ynode *n = cl_value(map, key);
    if (!n || c->failed)
        return NULL;
    char *s = cl_scalar(c, n, key_name(name, sizeof name, prefix, key));
    if (!s)
        return NULL;
    free(*dst);
    *dst = s;
    return n;
}

/* A string without control characters (header values, names, ids). */
static const struct ynode *cl_line(struct cload *c, const struct ynode *map, const char *prefix,
                                   const char *key, char **dst)
{
    char name[96];
    const struct ynode *n = cl_str(c, map, prefix, key, dst);
    for (const char *p = n ? *dst : ""; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            cl_error(c, n, "%s: control characters or line breaks are not allowed here",
                     key_name(name, sizeof name, prefix, key));
            break;
        }
    return n;
}

static const struct ynode *cl_path(struct cload *c, const struct ynode *map, const char *prefix,
                                   const char *key, char **dst)
{
    char name[96], *s = NULL;
    const struct ynode *n = cl_str(c, map, prefix, key, &s);
    if (!n)
        return NULL;
    if (!*s) {
        cl_error(c, n, "%s: empty path", key_name(name, sizeof name, prefix, key));
    } else {
        free(*dst);
        if (!(*dst = path_resolve(c->cfg->dir, s)))
            cl_oom(c, n);
    }
    free(s);
    return n;
}

static void cl_bool(struct cload *c, const struct ynode *map, const char *prefix, const char *key,
                    int *dst)
{
    char name[96];
    const struct ynode *n = cl_value(map, key);
    if (!n || c->failed || ynode_bool(n, dst) == 0)
        return;
    key_name(name, sizeof name, prefix, key);
    if (n->type != YNODE_SCALAR)
        cl_error(c, n, "%s: expected true or false, not a %s", name,
                 n->type == YNODE_SEQ ? "list" : "mapping");
    else
        cl_error(c, n, "%s: expected true or false%s, not '%.60s'", name,
                 n->quoted ? " (without quotes)" : "", n->str);
}

static void cl_int(struct cload *c, const struct ynode *map, const char *prefix, const char *key,
                   long min, long max, int *dst)
{
    char name[96], *end;
    const struct ynode *n = cl_value(map, key);
    char *s = n ? cl_scalar(c, n, key_name(name, sizeof name, prefix, key)) : NULL;
    if (!s)
        return;
    const char *digits = s[0] == '-' ? s + 1 : s;
    long v = 0;
    end = s;
    errno = 0;
    if (isdigit((unsigned char)*digits)) /* no spaces, '+' or hex for strtol to accept */
        v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < min || v > max)
        cl_error(c, n, "%s: expected a whole number from %ld to %ld, not '%.60s'", name, min, max,
                 s);
    else
        *dst = (int)v;
    free(s);
}

/* One of names (NULL-terminated): *dst is its index. */
static void cl_enum(struct cload *c, const struct ynode *map, const char *prefix, const char *key,
                    const char *const *names, int *dst)
{
    char name[96], *s = NULL, choices[160] = "";
    const struct ynode *n = cl_str(c, map, prefix, key, &s);
    if (!n)
        return;
    for (int i = 0; names[i]; i++) {
        if (!strcmp(s, names[i])) {
            *dst = i;
            free(s);
            return;
        }
        size_t used = strlen(choices);
        snprintf(choices + used, sizeof choices - used, "%s%s", i ? " or " : "", names[i]);
    }
    cl_error(c, n, "%s: expected %s, not '%.60s'", key_name(name, sizeof name, prefix, key),
             choices, s);
    free(s);
}

/* A mapping under key ("section"), checked against the schema; NULL if unset. */
static const struct ynode *cl_section(struct cload *c, const struct ynode *map, const char *prefix,
                                      const char *key)
{
    char name[96];
    const struct ynode *n = cl_value(map, key);
    if (!n || c->failed)
        return NULL;
    key_name(name, sizeof name, prefix, key);
    if (n->type != YNODE_MAP) {
        cl_error(c, n, "%s: expected a mapping (indented 'key: value' lines)", name);
        return NULL;
    }
    check_keys(c, n, name, name);
    return c->failed ? NULL : n;
}

/* --- value checks ------------------------------------------------------------- */

/* BCP 47, loosely: a 2-8 letter language, then -subtags of 1-8 letters or digits. */
static int lang_ok(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (n < 2 || n > 8)
        return 0;
    for (s += n; *s; s += n) {
        if (*s++ != '-')
            return 0;
        n = 0;
        while (isalnum((unsigned char)s[n]))
            n++;
        if (n < 1 || n > 8)
            return 0;
    }
    return 1;
}

int lang_is_rtl(const char *lang)
{
    static const char *const rtl[] = {"ar", "fa", "he",  "ur", "ps", "sd",
                                      "ug", "yi", "ckb", "dv", NULL};
    if (!lang)
        return 0;
    size_t n = strcspn(lang, "-_");
    for (int i = 0; rtl[i]; i++)
        if (strlen(rtl[i]) == n && !strncasecmp(lang, rtl[i], n))
            return 1;
    return 0;
}

/* An IANA zone name that names a TZif file under TZDIR or /usr/share/zoneinfo. */
static int timezone_ok(const char *name)
{
    const char *dir = getenv("TZDIR");
    char path[PATH_MAX], magic[4];
    struct stat st;

    if (!strcmp(name, "UTC"))
        return 1;
    if (!*name || name[0] == '/' || strstr(name, "..") || strlen(name) > 64 ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") !=
            strlen(name))
        return 0;
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, magic, 4) == 4 &&
             !memcmp(magic, "TZif", 4);
    close(fd);
    return ok;
}

/* "10MiB", "512 KiB", "1MB", "1048576": bytes, or 0 if not a size. */
static size_t parse_size(const char *s)
{
    static const struct {
        const char *unit;
        size_t mult;
    } units[] = {{"", 1},          {"B", 1},           {"KiB", 1024},   {"MiB", 1024 * 1024},
                 {"GiB", 1 << 30}, {"KB", 1000},       {"MB", 1000000}, {"GB", 1000000000},
                 {"K", 1024},      {"M", 1024 * 1024}, {"G", 1 << 30}};
    size_t v = 0;
    const char *p = s;

    if (!isdigit((unsigned char)*p))
        return 0;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (SIZE_MAX - 9) / 10)
            return 0;
        v = v * 10 + (size_t)(*p - '0');
    }
    if (*p == ' ')
        p++;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (!strcasecmp(p, units[i].unit))
            return v <= SIZE_MAX / units[i].mult ? v * units[i].mult : 0;
    return 0;
}

/* "daily HH:MM" | "weekly DAY HH:MM", normalised into out; -1 if not one. */
static int parse_schedule(const char *s, char *out, size_t size)
{
    static const char *const days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun", NULL};
    char kind[8] = "", day[8] = "";
    unsigned h, m;
    int n;

    if (sscanf(s, "%7s %n", kind, &n) != 1)
        return -1;
    s += n;
    if (!strcmp(kind, "weekly")) {
        if (sscanf(s, "%3s %n", day, &n) != 1)
            return -1;
        s += n;
        for (n = 0; days[n] && strcasecmp(day, days[n]); n++)
            ;
        if (!days[n])
            return -1;
        snprintf(day, sizeof day, "%s", days[n]);
    } else if (strcmp(kind, "daily")) {
        return -1;
    }
    /* H:MM or HH:MM, nothing after. */
    size_t hl = strspn(s, "0123456789");
    if (hl < 1 || hl > 2 || s[hl] != ':' || strspn(s + hl + 1, "0123456789") != 2 ||
        s[hl + 3] != '\0')
        return -1;
    h = (unsigned)atoi(s);
    m = (unsigned)atoi(s + hl + 1);
    if (h > 23 || m > 59)
        return -1;
    if (*day)
        snprintf(out, size, "weekly %s %02u:%02u", day, h, m);
    else
        snprintf(out, size, "daily %02u:%02u", h, m);
    return 0;
}

/* "host:port", "[v6]:port", ":port" or "port" (as daemon/http.c reads it). */
static int listen_ok(const char *s)
{
    const char *p = strrchr(s, ':');
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (!e || e[1] != ':')
            return 0;
        p = e + 1;
    } else if (p && memchr(s, ':', (size_t)(p - s))) {
        return 0;
    }
    p = p ? p + 1 : s;
    size_t n = strlen(p);
    return n >= 1 && n <= 5 && strspn(p, "0123456789") == n && atoi(p) <= 65535;
}

/*
 * Checks an absolute http(s) URL: lower-cases the scheme, strips trailing
 * '/', and returns the host[:port] part (malloc'd) or NULL with *why.
 */
static char *url_check(char *url, const char **why)
{
    size_t skip = !strncasecmp(url, "https://", 8) ? 8 : !strncasecmp(url, "http://", 7) ? 7 : 0;
    *why = "expected an absolute http:// or https:// URL, like https://news.example.org";
    if (!skip)
        return NULL;
    for (size_t i = 0; i < skip - 3; i++)
        url[i] = (char)tolower((unsigned char)url[i]);
    const char *host = url + skip;
    size_t hl = strcspn(host, "/?#");
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || strchr("\"<>\\^`{|}", *p))
            return NULL;
    if (host[hl] == '?' || host[hl] == '#' || strchr(host, '?') || strchr(host, '#')) {
        *why = "the site URL cannot hold a query (?) or fragment (#)";
        return NULL;
    }
    if (!hl ||
        strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") < hl)
        return NULL;
    const char *close = memchr(host, ']', hl),
               *colon = memchr(close ? close : host, ':', hl - (size_t)(close ? close - host : 0));
    if (colon) {
        size_t pl = hl - (size_t)(colon + 1 - host);
        if (pl < 1 || pl > 5 || strspn(colon + 1, "0123456789") < pl || atoi(colon + 1) > 65535)
            return NULL;
    }
    size_t len = strlen(url);
    while (len > skip + hl && url[len - 1] == '/')
        url[--len] = '\0';
    char *h = strndup(host, hl);
    if (!h)
        *why = "out of memory";
    return h;
}

/* --- sections ------------------------------------------------------------------ */

static void load_site(struct cload *c, const struct ynode *root)
{
    struct config *cfg = c->cfg;
    const struct ynode *m = cl_section(c, root, "", "site"), *n, *a;
    const char *why;

    if (!m) {
        if (!c->failed)
            cl_error(c, NULL, "site.url and site.title are required");
        return;
    }
    if (!(n = cl_line(c, m, "site", "title", &cfg->site.title)) && !c->failed)
        cl_error(c, m, "site.title is required (the publication's name)");
    if (n && !c->failed && !*cfg->site.title)
        cl_error(c, n, "site.title: empty title");
    if (!(n = cl_str(c, m, "site", "url", &cfg->site.url)) && !c->failed)
        cl_error(c, m,
                 "site.url is required (the absolute base URL, like "
                 "https://news.example.org)");
    if (n && !c->failed && !(cfg->site.host = url_check(cfg->site.url, &why)))
        cl_error(c, n, "site.url: %s, not '%.80s'", why, cfg->site.url);
    if ((n = cl_str(c, m, "site", "language", &cfg->site.language)) && !lang_ok(cfg->site.language))
        cl_error(c, n,
                 "site.language: expected a BCP 47 language tag like ar, en or fr-CA, not "
                 "'%.40s'",
                 cfg->site.language);
    if ((n = cl_str(c, m, "site", "timezone", &cfg->site.timezone)) &&
        !timezone_ok(cfg->site.timezone))
        cl_error(c, n,
                 "site.timezone: unknown time zone '%.60s' (expected an IANA name like "
                 "Asia/Riyadh or UTC)",
                 cfg->site.timezone);
    if (!(a = cl_value(m, "author")) || c->failed)
        return;
    if (a->type == YNODE_SCALAR) { /* "author: Name" is short for author.name */
        cl_line(c, m, "site", "author", &cfg->site.author_name);
        return;
    }
    if ((a = cl_section(c, m, "site", "author"))) {
        cl_line(c, a, "site.author", "name", &cfg->site.author_name);
        if ((n = cl_line(c, a, "site.author", "email", &cfg->site.author_email)) &&
            !strchr(cfg->site.author_email, '@'))
            cl_error(c, n, "site.author.email: not an e-mail address: '%.60s'",
                     cfg->site.author_email);
    }
}

static void load_content(struct cload *c, const struct ynode *root)
{
    struct config *cfg = c->cfg;
    const struct ynode *m = cl_section(c, root, "", "content"), *n;
    char *s = NULL;

    if (!m)
        return;
    cl_path(c, m, "content", "dir", &cfg->content.dir);
    cl_bool(c, m, "content", "allow_html", &cfg->content.allow_html);
    if (!(n = cl_str(c, m, "content", "max_bytes", &s)))
        return;
    size_t v = parse_size(s);
    if (!v || v > MAX_BYTES_LIMIT)
        cl_error(c, n,
                 "content.max_bytes: expected a size from 1 byte to 1GiB, like 10MiB, "
                 "512KiB, 1MB or 1048576, not '%.40s'",
                 s);
    else
        cfg->content.max_bytes = v;
    free(s);
}

static void load_outputs(struct cload *c, const struct ynode *root)
{
    struct config *cfg = c->cfg;
    const struct ynode *m, *n;

    if ((m = cl_section(c, root, "", "output"))) {
        cl_path(c, m, "output", "dir", &cfg->output.dir);
        cl_path(c, m, "output", "templates", &cfg->output.templates);
    }
    if ((m = cl_section(c, root, "", "state")))
        cl_path(c, m, "state", "dir", &cfg->state.dir);
    if ((m = cl_section(c, root, "", "feeds"))) {
        cl_int(c, m, "feeds", "items", 1, 100000, &cfg->feeds.items);
        cl_bool(c, m, "feeds", "full_content", &cfg->feeds.full_content);
        cl_bool(c, m, "feeds", "categories", &cfg->feeds.categories);
    }
    if ((m = cl_section(c, root, "", "http"))) {
        if ((n = cl_str(c, m, "http", "listen", &cfg->http.listen)) && !listen_ok(cfg->http.listen))
            cl_error(c, n, "http.listen: expected HOST:PORT, [IPv6]:PORT or :PORT, not '%.60s'",
                     cfg->http.listen);
        cl_bool(c, m, "http", "trust_proxy", &cfg->http.trust_proxy);
    }
}

/* activitypub.icon: an absolute http(s) URL, or a path under site.url. */
static void icon_resolve(struct cload *c, const struct ynode *n)
{
    struct config *cfg = c->cfg;
    char *icon = cfg->activitypub.icon;
    if (c->failed || !strncmp(icon, "https://", 8) || !strncmp(icon, "http://", 7))
        return;
    if (icon[0] != '/' || icon[1] == '/') {
        cl_error(c, n,
                 "activitypub.icon: expected an http(s) URL or a path like /icon.png, "
                 "not '%.60s'",
                 icon);
        return;
    }
    size_t ul = strlen(cfg->site.url), il = strlen(icon);
    if (!(cfg->activitypub.icon = malloc(ul + il + 1))) {
        cfg->activitypub.icon = icon;
        cl_oom(c, n);
        return;
    }
    memcpy(cfg->activitypub.icon, cfg->site.url, ul);
    memcpy(cfg->activitypub.icon + ul, icon, il + 1);
    free(icon);
}

static void load_activitypub(struct cload *c, const struct ynode *root)
{
    static const char *const objects[] = {"Article", "Note", NULL};
    static const char *const actors[] = {"Service", "Person", NULL};
    struct config *cfg = c->cfg;
    const struct ynode *m = cl_section(c, root, "", "activitypub"), *n;
    const char *P = "activitypub";
    int i = 0;

    if (!m)
        return;
    cl_bool(c, m, P, "enabled", &cfg->activitypub.enabled);
    if ((n = cl_str(c, m, P, "username", &cfg->activitypub.username))) {
        size_t len = strlen(cfg->activitypub.username);
        if (!len || len > 64 ||
            strspn(cfg->activitypub.username, "abcdefghijklmnopqrstuvwxyz"
                                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != len)
            cl_error(c, n,
                     "activitypub.username: expected letters, digits, '_', '.' or '-', "
                     "not '%.60s'",
                     cfg->activitypub.username);
    }
    cl_line(c, m, P, "display_name", &cfg->activitypub.display_name);
    cl_str(c, m, P, "summary", &cfg->activitypub.summary);
    if (cl_value(m, "object_type")) {
        cl_enum(c, m, P, "object_type", objects, &i);
        free(cfg->activitypub.object_type);
        cfg->activitypub.object_type = strdup(objects[i]);
    }
    if (cl_value(m, "actor_type")) {
        i = 0;
        cl_enum(c, m, P, "actor_type", actors, &i);
        free(cfg->activitypub.actor_type);
        cfg->activitypub.actor_type = strdup(actors[i]);
    }
    if ((n = cl_line(c, m, P, "icon", &cfg->activitypub.icon)))
        icon_resolve(c, n);
    cl_bool(c, m, P, "allow_insecure_loopback", &cfg->activitypub.allow_insecure_loopback);
}

/* Reads the secret file that path names: the whole file, trailing newlines cut. */
static char *read_secret(struct cload *c, const struct ynode *at, const char *name,
                         const char *path)
{
    struct buf b;
    const char *why;

    if (read_capped(path, SECRET_MAX_BYTES, &b, &why) < 0) {
        cl_error(c, at, "%s: cannot read '%.200s': %s", name, path, why);
        return NULL;
    }
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
        b.data[--b.len] = '\0';
    const char *bad = NULL;
    for (size_t i = 0; i < b.len && !bad; i++)
        if ((unsigned char)b.data[i] < 0x20 && b.data[i] != '\t')
            bad = b.data + i;
    if (!b.len || bad) {
        /* The error is in the secret's file: its line, never its contents. */
        int line = 0;
        for (const char *p = b.data; bad && p <= bad; p++)
            line += p == b.data || p[-1] == '\n';
        if (!c->failed++) {
            diag_set(c->err, line, 0, "%s",
                     bad ? "the secret holds a line break or control "
                           "character"
                         : "empty secret");
            free(c->err_file);
            c->err_file = strdup(path);
        }
        buf_free(&b);
        return NULL;
    }
    char *s = buf_steal(&b);
    if (!s)
        cl_oom(c, at);
    return s;
}

static void load_smtp(struct cload *c, const struct ynode *mail)
{
    static const char *const tls[] = {"none", "starttls", "tls", NULL};
    struct config *cfg = c->cfg;
    const struct ynode *m = cl_section(c, mail, "mail", "smtp"), *n;
    const char *P = "mail.smtp";
    char *file = NULL;
    int t = SMTP_TLS_STARTTLS;

    if (!m)
        return;
    cl_line(c, m, P, "host", &cfg->mail.smtp.host);
    cl_int(c, m, P, "port", 1, 65535, &cfg->mail.smtp.port);
    cl_enum(c, m, P, "tls", tls, &t);
    cfg->mail.smtp.tls = (enum smtp_tls)t;
    cl_line(c, m, P, "username", &cfg->mail.smtp.username);
    cl_line(c, m, P, "password", &cfg->mail.smtp.password);
    if ((n = cl_path(c, m, P, "password_file", &file))) {
        if (cl_value(m, "password"))
            cl_error(c, n, "mail.smtp: set password or password_file, not both");
        else if (!c->failed)
            cfg->mail.smtp.password = read_secret(c, n, "mail.smtp.password_file", file);
    }
    free(file);
    cl_int(c, m, P, "connections", 1, 64, &cfg->mail.smtp.connections);
    cl_int(c, m, P, "rate", 0, 100000, &cfg->mail.smtp.rate);
    cl_int(c, m, P, "timeout", 1, 3600, &cfg->mail.smtp.timeout);
    cl_path(c, m, P, "ca_file", &cfg->mail.smtp.ca_file);
}

static void load_mail_extras(struct cload *c, const struct ynode *mail)
{
    struct config *cfg = c->cfg;
    const struct ynode *m, *n;

    if ((m = cl_section(c, mail, "mail", "maildir")))
        cl_path(c, m, "mail.maildir", "path", &cfg->mail.maildir_path);
    if ((m = cl_section(c, mail, "mail", "dkim"))) {
        cl_line(c, m, "mail.dkim", "domain", &cfg->mail.dkim.domain);
        cl_line(c, m, "mail.dkim", "selector", &cfg->mail.dkim.selector);
        cl_path(c, m, "mail.dkim", "key_file", &cfg->mail.dkim.key_file);
        int set = !!cfg->mail.dkim.domain + !!cfg->mail.dkim.selector + !!cfg->mail.dkim.key_file;
        if (set && set < 3)
            cl_error(c, m, "mail.dkim: set domain, selector and key_file together");
    }
    if ((m = cl_section(c, mail, "mail", "bounces"))) {
        cl_path(c, m, "mail.bounces", "maildir", &cfg->mail.bounces.maildir);
        cl_int(c, m, "mail.bounces", "soft_limit", 1, 1000, &cfg->mail.bounces.soft_limit);
    }
    if ((n = cl_line(c, mail, "mail", "from", &cfg->mail.from)) && !strchr(cfg->mail.from, '@'))
        cl_error(c, n,
                 "mail.from: expected an address, like \"News <news@example.org>\", not "
                 "'%.60s'",
                 cfg->mail.from);
    cl_path(c, mail, "mail", "secret_file", &cfg->mail.secret_file);
}

static void load_mail(struct cload *c, const struct ynode *root)
{
    static const char *const transports[] = {"maildir", "smtp", NULL};
    const struct ynode *m = cl_section(c, root, "", "mail");
    int t = MAIL_MAILDIR;

    if (!m)
        return;
    cl_enum(c, m, "mail", "transport", transports, &t);
    c->cfg->mail.transport = (enum mail_transport)t;
    load_smtp(c, m);
    load_mail_extras(c, m);
}

/* lists[i].categories: a list of names (or one name). */
static void load_categories(struct cload *c, const struct ynode *item, const char *prefix,
                            struct config_list *l)
{
    char name[96];
    const struct ynode *n = cl_value(item, "categories");

    if (!n || c->failed)
        return;
    key_name(name, sizeof name, prefix, "categories");
    if (n->type == YNODE_MAP) {
        cl_error(c, n, "%s: expected a list of category names, like [\"news\"]", name);
        return;
    }
    size_t count = n->type == YNODE_SEQ ? n->n : 1;
    if (!(l->categories = calloc(count + 1, sizeof *l->categories))) {
        cl_oom(c, n);
        return;
    }
    for (size_t i = 0; i < count && !c->failed; i++) {
        const struct ynode *it = n->type == YNODE_SEQ ? n->kv[i] : n;
        char *s = cl_scalar(c, it, name);
        if (s && !*s)
            cl_error(c, it, "%s: empty category name", name);
        if (s && !c->failed)
            l->categories[l->ncategories++] = s;
        else
            free(s);
    }
}

static void load_list_fields(struct cload *c, const struct ynode *item, const char *prefix,
                             struct config_list *l)
{
    static const char *const modes[] = {"each", "digest", NULL};
    const struct ynode *n;
    char name[96], norm[32];
    int mode = LIST_EACH;

    cl_line(c, item, prefix, "name", &l->name);
    load_categories(c, item, prefix, l);
    cl_enum(c, item, prefix, "mode", modes, &mode);
    l->mode = (enum list_mode)mode;
    if ((n = cl_str(c, item, prefix, "schedule", &l->schedule))) {
        if (parse_schedule(l->schedule, norm, sizeof norm) < 0) {
            cl_error(c, n,
                     "%s: expected \"daily HH:MM\" or \"weekly DAY HH:MM\" (DAY: mon..sun), "
                     "not '%.60s'",
                     key_name(name, sizeof name, prefix, "schedule"), l->schedule);
        } else {
            free(l->schedule);
            if (!(l->schedule = strdup(norm)))
                cl_oom(c, n);
        }
    }
    if ((n = cl_line(c, item, prefix, "subject", &l->subject))) {
        l->subject_line = n->line;
        l->subject_col = n->col + (n->quoted ? 1 : 0); /* past the opening quote */
    }
    cl_path(c, item, prefix, "template", &l->template);
    if ((n = cl_str(c, item, prefix, "language", &l->language)) && !lang_ok(l->language))
        cl_error(c, n, "%s: expected a BCP 47 language tag like ar or en, not '%.40s'",
                 key_name(name, sizeof name, prefix, "language"), l->language);
}

static void load_list(struct cload *c, const struct ynode *item, size_t i)
{
    struct config_list *l = &c->cfg->lists[i];
    const struct ynode *n;
    char prefix[32];

    snprintf(prefix, sizeof prefix, "lists[%zu]", i);
    if (item->type != YNODE_MAP) {
        cl_error(c, item, "%s: expected a mapping with id, name, mode...", prefix);
        return;
    }
    check_keys(c, item, "lists[]", prefix);
    if (!(n = cl_str(c, item, prefix, "id", &l->id))) {
        if (!c->failed)
            cl_error(c, item, "%s.id is required", prefix);
        return;
    }
    size_t len = strlen(l->id);
    if (!len || len > 64 || strspn(l->id, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len) {
        cl_error(c, n, "%s.id: expected lower-case letters, digits, '_' or '-', not '%.60s'",
                 prefix, l->id);
        return;
    }
    for (size_t k = 0; k < i; k++)
        if (!strcmp(c->cfg->lists[k].id, l->id))
            cl_error(c, n, "%s.id: '%s' is already the id of lists[%zu]", prefix, l->id, k);
    load_list_fields(c, item, prefix, l);
}

static void load_lists(struct cload *c, const struct ynode *root)
{
    const struct ynode *n = cl_value(root, "lists");

    if (!n || c->failed)
        return;
    if (n->type != YNODE_SEQ) {
        cl_error(c, n, "lists: expected a list of mailing lists (lines starting '- id: ...')");
        return;
    }
    if (!n->n)
        return;
    if (!(c->cfg->lists = calloc(n->n, sizeof *c->cfg->lists))) {
        cl_oom(c, n);
        return;
    }
    c->cfg->nlists = n->n;
    for (size_t i = 0; i < n->n && !c->failed; i++)
        load_list(c, n->kv[i], i);
}

/* --- defaults --------------------------------------------------------------------- */

/* *dst = strdup(value) when unset; 0, or -1 when out of memory. */
static int dflt(char **dst, const char *value)
{
    if (*dst || !value)
        return 0;
    return (*dst = strdup(value)) ? 0 : -1;
}

/* *dst = dir/rel when unset. */
static int dflt_path(char **dst, const char *dir, const char *rel)
{
    if (*dst)
        return 0;
    return (*dst = path_resolve(dir, rel)) ? 0 : -1;
}

/* Defaults that depend on other values, once the file is read. */
static int apply_defaults(struct config *cfg)
{
    char from[512];
    int rc = 0;

    rc |= dflt(&cfg->site.language, "en");
    rc |= dflt(&cfg->site.timezone, "UTC");
    rc |= dflt(&cfg->site.author_name, cfg->site.title);
    cfg->site.rtl = lang_is_rtl(cfg->site.language);
    rc |= dflt_path(&cfg->content.dir, cfg->dir, "content");
    rc |= dflt_path(&cfg->output.dir, cfg->dir, "public");
    rc |= dflt_path(&cfg->output.templates, cfg->dir, "templates");
    rc |= dflt_path(&cfg->state.dir, cfg->dir, "state");
    rc |= dflt(&cfg->http.listen, "127.0.0.1:8080");
    rc |= dflt(&cfg->activitypub.username, "news");
    rc |= dflt(&cfg->activitypub.display_name, cfg->site.title);
    rc |= dflt(&cfg->activitypub.summary, "");
    rc |= dflt(&cfg->activitypub.object_type, "Article");
    rc |= dflt(&cfg->activitypub.actor_type, "Service");
    rc |= dflt_path(&cfg->mail.maildir_path, cfg->state.dir, "outbox");
    rc |= dflt_path(&cfg->mail.secret_file, cfg->state.dir, "secret");
    rc |= dflt(&cfg->mail.smtp.host, "localhost");
    if (!cfg->mail.smtp.port)
        cfg->mail.smtp.port = cfg->mail.smtp.tls == SMTP_TLS_TLS    ? 465
                              : cfg->mail.smtp.tls == SMTP_TLS_NONE ? 25
                                                                    : 587;
    /* news@host, without the port; the title may need quoting: mail encodes it. */
    snprintf(from, sizeof from, "%.300s <news@%.*s>", cfg->site.title,
             (int)(cfg->site.host[0] == '[' ? strcspn(cfg->site.host, "]") + 1
                                            : strcspn(cfg->site.host, ":")),
             cfg->site.host);
    rc |= dflt(&cfg->mail.from, from);
    for (size_t i = 0; i < cfg->nlists; i++) {
        struct config_list *l = &cfg->lists[i];
        rc |= dflt(&l->name, l->id);
        rc |= dflt(&l->schedule, "daily 08:00");
        /* A digest has no post.title: its subject is the list's name (an
         * empty Subject: went out before). */
        rc |= dflt(&l->subject, l->mode == LIST_DIGEST ? "{{list.name}}" : "{{post.title}}");
        rc |= dflt(&l->language, cfg->site.language);
        if (!l->categories && !(l->categories = calloc(1, sizeof *l->categories)))
            rc = -1;
    }
    return rc ? -1 : 0;
}

/* Values that are not strings: set before the file is read. */
static void init_defaults(struct config *cfg)
{
    cfg->content.max_bytes = DEFAULT_MAX_BYTES;
    cfg->feeds.items = 20;
    cfg->feeds.full_content = 1;
    cfg->feeds.categories = 1;
    cfg->activitypub.enabled = 1;
    cfg->mail.transport = MAIL_MAILDIR;
    cfg->mail.smtp.tls = SMTP_TLS_STARTTLS;
    cfg->mail.smtp.connections = 4;
    cfg->mail.smtp.rate = 50;
    cfg->mail.smtp.timeout = 30;
    cfg->mail.bounces.soft_limit = 3;
}

/* --- load and free --------------------------------------------------------------- */

/* path made absolute (symbolic links resolved) into cfg->path and cfg->dir. */
static int set_paths(struct cload *c, const char *path)
{
    struct config *cfg = c->cfg;
    if (!(cfg->path = realpath(path, NULL))) {
        cl_error(c, NULL, "cannot open: %s", strerror(errno));
        return -1;
    }
    char *slash = strrchr(cfg->path, '/');
    cfg->dir = strndup(cfg->path, slash && slash != cfg->path ? (size_t)(slash - cfg->path) : 1);
    if (!cfg->dir) {
        cl_oom(c, NULL);
        return -1;
    }
    return 0;
}

static void load_root(struct cload *c, const struct ynode *root)
{
    if (!root) {
        cl_error(c, NULL, "empty configuration: site.url and site.title are required");
        return;
    }
    if (root->type != YNODE_MAP) {
        cl_error(c, root, "expected a mapping of sections (site:, content:, ...)");
        return;
    }
    check_keys(c, root, "", "");
    load_site(c, root);
    load_content(c, root);
    load_outputs(c, root);
    load_activitypub(c, root);
    load_mail(c, root);
    load_lists(c, root);
}

struct config *config_load(const char *path, struct diag *err, char **err_file)
{
    struct cload c = {.err = err};
    struct ydoc *doc = NULL;
    struct buf text;
    const char *why;

    buf_init(&text, CONFIG_MAX_BYTES);
    if (err_file)
        *err_file = NULL;
    if (!(c.cfg = calloc(1, sizeof *c.cfg))) {
        cl_oom(&c, NULL);
        goto out;
    }
    init_defaults(c.cfg);
    if (set_paths(&c, path) < 0)
        goto out;
    if (read_capped(c.cfg->path, CONFIG_MAX_BYTES, &text, &why) < 0) {
        cl_error(&c, NULL, "cannot read: %s%s", why,
                 strcmp(why, "too large") ? "" : " (more than 1 MiB)");
        goto out;
    }
    if (!(doc = ydoc_parse(buf_str(&text), text.len, 1, err))) {
        c.failed = 1;
        goto out;
    }
    load_root(&c, ydoc_root(doc));
    if (!c.failed && apply_defaults(c.cfg) < 0)
        cl_oom(&c, NULL);
out:
    ydoc_free(doc);
    buf_free(&text);
    if (c.failed) {
        config_free(c.cfg);
        c.cfg = NULL;
        if (err_file)
            *err_file = c.err_file ? c.err_file : strdup(path);
        else
            free(c.err_file);
    }
    return c.cfg;
}

static void list_free(struct config_list *l)
{
    free(l->id);
    free(l->name);
    for (size_t i = 0; i < l->ncategories; i++)
        free(l->categories[i]);
    free(l->categories);
    free(l->schedule);
    free(l->subject);
    free(l->template);
    free(l->language);
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    if (cfg->mail.smtp.password)
        explicit_bzero(cfg->mail.smtp.password, strlen(cfg->mail.smtp.password));
    char *strings[] = {
        cfg->path,
        cfg->dir,
        cfg->site.title,
        cfg->site.url,
        cfg->site.host,
        cfg->site.language,
        cfg->site.timezone,
        cfg->site.author_name,
        cfg->site.author_email,
        cfg->content.dir,
        cfg->output.dir,
        cfg->output.templates,
        cfg->state.dir,
        cfg->http.listen,
        cfg->activitypub.username,
        cfg->activitypub.display_name,
        cfg->activitypub.summary,
        cfg->activitypub.object_type,
        cfg->activitypub.actor_type,
        cfg->activitypub.icon,
        cfg->mail.maildir_path,
        cfg->mail.smtp.host,
        cfg->mail.smtp.username,
        cfg->mail.smtp.password,
        cfg->mail.smtp.ca_file,
        cfg->mail.from,
        cfg->mail.secret_file,
        cfg->mail.dkim.domain,
        cfg->mail.dkim.selector,
        cfg->mail.dkim.key_file,
        cfg->mail.bounces.maildir,
    };
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
        free(strings[i]);
    for (size_t i = 0; i < cfg->nlists; i++)
        list_free(&cfg->lists[i]);
    free(cfg->lists);
    free(cfg);
}
