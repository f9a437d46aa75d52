/*
 * cmd_subscribers: `nashra subscribers add|remove|list|import|export --list ID`
 * (SPEC §2, §8), the operator's hands on a list's subscribers in the state
 * (store/mail_store.h).
 *
 * import reads CSV as RFC 4180 has it (fields quoted or not, "" for a quote
 * inside quotes, line breaks inside quotes, CRLF or LF): a header line naming
 * the columns, one of them `email` (any case), `name` and `state` optional,
 * every other column kept in the subscriber's extra JSON object for the
 * templates (subscriber.COLUMN). A bad row is reported as FILE:LINE:1:
 * error: ... and skipped; the good ones are imported in batches of one
 * transaction, so the daemon beside us waits at most one batch. Records are
 * capped (CSV_RECORD_MAX bytes, CSV_FIELDS_MAX fields). export writes the
 * same form back: email,name,state, then the extra columns.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/csv.h"
#include "../lib/diag.h"
#include "../lib/text.h"
#include "../lib/timefmt.h"
#include "../mail/mime.h"
#include "../store/mail_store.h"
#include "../store/store.h"
#include "cmd.h"

#define IMPORT_BATCH 1000 /* rows a transaction */

static const char usage[] =
    "usage: nashra subscribers add    --list ID [--pending] EMAIL [NAME]\n"
    "       nashra subscribers remove --list ID EMAIL\n"
    "       nashra subscribers list   --list ID [--state STATE]\n"
    "       nashra subscribers import --list ID [--pending] FILE.csv\n"
    "       nashra subscribers export --list ID [FILE.csv]\n"
    "       (and -c FILE, -v|-q, --help with each)\n"
    "\n"
    "Manage the subscribers of one list of the configuration (lists: id).\n"
    "\n"
    "  add      subscribe one address, active (the operator vouches for it),\n"
    "           or pending (to be confirmed) with --pending\n"
    "  remove   delete an address from the list, and its pending deliveries\n"
    "  list     print email, state and name, tab-separated, one a line\n"
    "  import   add every row of a CSV file (RFC 4180, UTF-8, a header line\n"
    "           with an `email` column; `name` and `state` are optional, other\n"
    "           columns become template variables subscriber.COLUMN). Rows\n"
    "           are active, or pending with --pending, unless a `state`\n"
    "           column says otherwise. Addresses already on the list are left\n"
    "           as they are. A bad row is reported as FILE:LINE:1: error: ...\n"
    "           and skipped; exit 1 if there was any. FILE - reads stdin.\n"
    "  export   write email,name,state and the other columns as CSV to FILE\n"
    "           (created mode 0600), or to stdout\n"
    "\n"
    "  --list ID       the list (required)\n"
    "  --state STATE   list only pending, active, unsubscribed or bounced\n"
    "  --pending       add or import as pending, and mail each new one the\n"
    "                  confirmation link (double opt-in)\n"
    "  -c FILE         configuration (default ./nashra.yaml)\n"
    "  -v              more log lines (debug)\n"
    "  -q              no summary lines\n"
    "  --help          this text\n";

struct sub_cmd {
    struct cmd_opts o;
    const char *action; /* add remove list import export */
    const char *list;
    int state; /* --state, or MAIL_SUB_ANY */
    int pending;
    char *args[3]; /* the positional arguments after the action */
    int nargs;
    struct config *cfg;
    struct store *st;
    struct mail_store *ms;
};

/* ---- options ------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static int usage_error(const struct sub_cmd *c,
                                                             const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "nashra subscribers%s%s: ", c->action ? " " : "", c->action ? c->action : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

static int check_args(struct sub_cmd *c, const char *state, const char *extra);

/* argv[0] is "subscribers". 0, or 2 (told). */
static int parse(int argc, char **argv, struct sub_cmd *c)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"list", required_argument, NULL, 'l'},   {"state", required_argument, NULL, 's'},
        {"pending", no_argument, NULL, 'p'},      {NULL, 0, NULL, 0}};
    memset(c, 0, sizeof *c);
    c->o.config = "nashra.yaml";
    c->state = MAIL_SUB_ANY;
    const char *state = NULL, *extra = NULL;
    optind = 1;
    opterr = 0;
    int ch;
    /* "-": arguments that are not options come back as 1, in order, even
     * with POSIXLY_CORRECT set: the action first, then its operands. */
    while ((ch = getopt_long(argc, argv, "-:c:vqh", longopts, NULL)) != -1) {
        switch (ch) {
        case 1:
            if (!c->action)
                c->action = optarg;
            else if (c->nargs < 3)
                c->args[c->nargs++] = optarg;
            else if (!extra)
                extra = optarg;
            break;
        case 'c':
            c->o.config = optarg;
            break;
        case 'v':
            c->o.verbose = 1;
            break;
        case 'q':
            c->o.quiet = 1;
            break;
        case 'h':
            c->o.help = 1;
            break;
        case 'l':
            c->list = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'p':
            c->pending = 1;
            break;
        case ':':
            return usage_error(c, "option %s needs a value", argv[optind - 1]);
        default:
            return usage_error(c, "unknown option %s", argv[optind - 1]);
        }
    }
    if (c->o.help) {
        fputs(usage, stdout);
        return 0;
    }
    for (; optind < argc; optind++) /* after "--" */
        if (!c->action)
            c->action = argv[optind];
        else if (c->nargs < 3)
            c->args[c->nargs++] = argv[optind];
        else if (!extra)
            extra = argv[optind];
    return check_args(c, state, extra);
}

/* The action and what it was given, checked. 0, or 2 (told). */
static int check_args(struct sub_cmd *c, const char *state, const char *extra)
{
    static const struct {
        const char *name;
        int min, max, state, pending;
    } actions[] = {{"add", 1, 2, 0, 1},
                   {"remove", 1, 1, 0, 0},
                   {"list", 0, 0, 1, 0},
                   {"import", 1, 1, 0, 1},
                   {"export", 0, 1, 0, 0}};
    size_t i;
    if (!c->action)
        return usage_error(c, "which action: add, remove, list, import or export?");
    for (i = 0; i < sizeof actions / sizeof *actions; i++)
        if (!strcmp(c->action, actions[i].name))
            break;
    if (i == sizeof actions / sizeof *actions)
        return usage_error(c, "unknown action '%s'", c->action);
    if (!c->list)
        return usage_error(c, "--list ID is required");
    if (c->nargs < actions[i].min)
        return usage_error(c, "missing argument");
    if (c->nargs > actions[i].max || extra)
        return usage_error(c, "unexpected argument '%s'",
                           c->nargs > actions[i].max ? c->args[actions[i].max] : extra);
    if (state && !actions[i].state)
        return usage_error(c, "--state is for list only");
    if (c->pending && !actions[i].pending)
        return usage_error(c, "--pending is for add and import only");
    if (state && (c->state = mail_sub_state_parse(state)) < 0)
        return usage_error(c, "unknown state '%s' (pending, active, unsubscribed, bounced)", state);
    return 0;
}

/* 0 if --list names a list of the configuration, else 2 (told, with the
 * ids there are). */
static int check_list(const struct sub_cmd *c)
{
    for (size_t i = 0; i < c->cfg->nlists; i++)
        if (!strcmp(c->cfg->lists[i].id, c->list))
            return 0;
    fprintf(stderr, "%s: error: no list '%s' in the configuration", c->cfg->path, c->list);
    if (c->cfg->nlists == 0)
        fputs(" (it has no lists: section)", stderr);
    for (size_t i = 0; i < c->cfg->nlists; i++)
        fprintf(stderr, "%s%s", i ? ", " : " (lists: ", c->cfg->lists[i].id);
    fputs(c->cfg->nlists ? ")\n" : "\n", stderr);
    return 2;
}

/* ---- text --------------------------------------------------------------- */

/* s without surrounding spaces and tabs, in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* A display name as stored: trimmed, controls (CR, LF, tab, ...) made
 * spaces. s must be valid UTF-8. */
static char *clean_name(char *s)
{
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return trim(s);
}

/* s for one line of a message or a listing: at most max bytes (cut
 * between characters), controls as '?'. Into out[outsz]. */
static const char *printable(const char *s, size_t max, char *out, size_t outsz)
{
    size_t n = 0;
    if (max >= outsz)
        max = outsz - 1;
    while (*s) {
        size_t k = utf8_seqlen((unsigned char)*s), i, bad;
        for (i = 1; i < k && s[i]; i++)
            ;
        if (n + i > max)
            break;
        if (i < k || !utf8_valid(s, k, &bad)) { /* not a character: one '?' a byte */
            out[n++] = '?';
            s++;
            continue;
        }
        for (i = 0; i < k; i++)
            out[n++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
        s += k;
    }
    out[n] = '\0';
    return out;
}

/* ---- import ------------------------------------------------------------- */

struct columns {
    int n;     /* fields a row must have */
    int email; /* index of each, -1 when absent */
    int name;
    int state;
    char *names[CSV_FIELDS_MAX]; /* the header's names, trimmed (malloc'd) */
};

static void columns_free(struct columns *h)
{
    for (int i = 0; i < h->n; i++)
        free(h->names[i]);
}

/* Reads the header line into h. 0, or -1 with d. */
static int read_header(struct csv *c, struct columns *h, struct diag *d)
{
    int rc = csv_next(c, d);
    memset(h, 0, sizeof *h);
    h->email = h->name = h->state = -1;
    if (rc == 0)
        diag_set(d, 1, 1, "empty file: a header line (email,name,...) comes first");
    if (rc <= 0)
        return -1;
    if (!csv_utf8(c)) {
        diag_set(d, c->start, 1, "the header line is not valid UTF-8");
        return -1;
    }
    for (int i = 0; i < c->nfields; i++) {
        char *name = trim(csv_field(c, i));
        if (!(h->names[i] = strdup(name))) {
            diag_set(d, c->start, 1, "out of memory");
            return -1;
        }
        h->n = i + 1;
        int *slot = !strcasecmp(name, "email")   ? &h->email
                    : !strcasecmp(name, "name")  ? &h->name
                    : !strcasecmp(name, "state") ? &h->state
                                                 : NULL;
        if (!*name) {
            diag_set(d, c->start, 1, "column %d of the header line has no name", i + 1);
            return -1;
        }
        for (int j = 0; j < i; j++) {
            if (!strcasecmp(h->names[j], name)) {
                diag_set(d, c->start, 1, "column '%s' is named twice in the header line", name);
                return -1;
            }
        }
        if (slot)
            *slot = i;
    }
    if (h->email < 0) {
        diag_set(d, c->start, 1,
                 "no 'email' column: the first line must name the columns (email,name,...)");
        return -1;
    }
    return 0;
}

struct import {
    struct sub_cmd *cmd;
    const char *file;
    int state; /* for rows that say nothing */
    int64_t now;
    long added, already, rejected;
    struct buf email;
    /* progress on a terminal */
    int tty, shown;
    off_t size;
    struct timespec last;
};

static void progress_clear(struct import *im)
{
    if (im->shown) {
        fputs("\r\033[K", stderr);
        im->shown = 0;
    }
}

static void progress(struct import *im, struct csv *c)
{
    struct timespec now;
    long rows = im->added + im->already + im->rejected;
    if (!im->tty || rows % 256 != 0)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - im->last.tv_sec) * 1000 + (now.tv_nsec - im->last.tv_nsec) / 1000000 < 200)
        return;
    im->last = now;
    long pos = ftell(c->fp);
    if (im->size > 0 && pos >= 0)
        fprintf(stderr, "\r%s: %ld rows (%d%%)\033[K", im->file, rows, (int)(pos * 100 / im->size));
    else
        fprintf(stderr, "\r%s: %ld rows\033[K", im->file, rows);
    im->shown = 1;
}

static void row_error(struct import *im, const struct diag *d)
{
    progress_clear(im);
    diag_print(stderr, im->file, d);
    im->rejected++;
}

/*
 * One data row: 1 added, 0 already there, -1 rejected (d says why), -2 the
 * store failed.
 */
static int import_row(struct import *im, struct csv *c, const struct columns *h, struct diag *d)
{
    char shown[96];
    if (c->nfields != h->n) {
        diag_set(d, c->start, 1, "%d field%s where the header line has %d", c->nfields,
                 c->nfields == 1 ? "" : "s", h->n);
        return -1;
    }
    if (!csv_utf8(c)) {
        diag_set(d, c->start, 1, "not valid UTF-8");
        return -1;
    }
    const char *addr = csv_field(c, h->email);
    buf_reset(&im->email);
    if (!mime_address_ok(addr, &im->email)) {
        diag_set(d, c->start, 1, "not a valid e-mail address: '%s'",
                 printable(addr, 80, shown, sizeof shown));
        return -1;
    }
    int state = im->state;
    if (h->state >= 0) {
        const char *s = trim(csv_field(c, h->state));
        if (*s && (state = mail_sub_state_parse(s)) < 0) {
            diag_set(d, c->start, 1, "unknown state '%s' (pending, active, unsubscribed, bounced)",
                     printable(s, 40, shown, sizeof shown));
            return -1;
        }
    }
    json_t *extra = json_object();
    for (int i = 0; extra && i < h->n; i++) {
        if (i == h->email || i == h->name || i == h->state)
            continue;
        if (json_object_set_new(extra, h->names[i], json_string(csv_field(c, i))) < 0) {
            json_decref(extra);
            extra = NULL;
        }
    }
    char *json = extra ? json_dumps(extra, JSON_COMPACT) : NULL;
    json_decref(extra);
    if (!json)
        return -2;
    const char *name = h->name >= 0 ? clean_name(csv_field(c, h->name)) : "";
    int rc =
        mail_sub_add(im->cmd->ms, im->cmd->list, buf_str(&im->email), name, json, state, im->now);
    free(json);
    return rc < 0 ? -2 : rc;
}

/* Opens path ("-": stdin) for import_file; NULL (told) on failure. */
static FILE *import_open(struct import *im, const char *path)
{
    struct stat sb;
    FILE *fp = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!fp) {
        fprintf(stderr, "%s: error: cannot open: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode))
        im->size = sb.st_size;
    im->tty = isatty(STDERR_FILENO);
    clock_gettime(CLOCK_MONOTONIC, &im->last);
    return fp;
}

/* The rows after the header, in transactions of IMPORT_BATCH rows.
 * 0, or -1 when the store failed (told; the counts are those committed). */
static int import_rows(struct import *im, struct csv *c, const struct columns *h)
{
    struct store *st = im->cmd->st;
    struct diag d = {0};
    long rows = 0, done[3] = {0, 0, 0}; /* the counts when the batch began */
    int batch_line = c->line;
    if (store_begin(st) < 0)
        goto fail;
    for (;;) {
        int r = csv_next(c, &d);
        if (r == 0)
            break;
        if (r > 0)
            r = import_row(im, c, h, &d);
        if (r == -2)
            goto fail;
        if (r < 0)
            row_error(im, &d);
        else if (r > 0)
            im->added++;
        else
            im->already++;
        if (++rows % IMPORT_BATCH == 0) {
            if (store_commit(st) < 0)
                goto fail;
            done[0] = im->added, done[1] = im->already, done[2] = im->rejected;
            batch_line = c->line;
            if (store_begin(st) < 0)
                goto fail;
        }
        progress(im, c);
    }
    if (store_commit(st) == 0)
        return 0;
fail:
    progress_clear(im);
    fprintf(stderr, "%s: error: state: %s (rows from line %d on not imported)\n", im->file,
            store_errmsg(st), batch_line);
    store_rollback(st);
    im->added = done[0], im->already = done[1], im->rejected = done[2];
    return -1;
}

static int import_file(struct sub_cmd *cmd)
{
    const char *path = cmd->args[0];
    struct import im = {.cmd = cmd, .file = path, .now = timefmt_now()};
    struct csv c = {.line = 1};
    struct columns h = {0};
    struct diag d = {0};
    int rc = 1;

    im.state = cmd->pending ? MAIL_SUB_PENDING : MAIL_SUB_ACTIVE;
    if (!strcmp(path, "-"))
        im.file = "(stdin)";
    buf_init(&c.rec, CSV_RECORD_MAX);
    buf_init(&im.email, 512);
    if (!(c.fp = import_open(&im, path)))
        goto out;
    csv_skip_bom(&c);
    if (read_header(&c, &h, &d) < 0) {
        diag_print(stderr, im.file, &d);
        goto out;
    }
    int stored = import_rows(&im, &c, &h);
    progress_clear(&im);
    if (ferror(c.fp)) {
        diag_set(&d, c.line, 0, "read error: %s", strerror(errno));
        diag_print(stderr, im.file, &d);
    } else if (stored == 0) {
        rc = im.rejected ? 1 : 0;
    }
    if (!cmd->o.quiet)
        printf("%s: added %ld, already subscribed %ld, rejected %ld\n", im.file, im.added,
               im.already, im.rejected);
out:
    if (c.fp && c.fp != stdin)
        fclose(c.fp);
    columns_free(&h);
    buf_free(&c.rec);
    buf_free(&im.email);
    return rc;
}

/* ---- export ------------------------------------------------------------- */

/* Appends s as one CSV field: quoted when it holds a comma, a quote or a
 * line break, quotes doubled. */
static int csv_put(struct buf *b, const char *s, int first)
{
    int rc = first ? 0 : buf_putc(b, ',');
    if (!strpbrk(s, ",\"\r\n"))
        return rc < 0 ? -1 : buf_puts(b, s);
    rc |= buf_putc(b, '"');
    for (; *s; s++)
        rc |= *s == '"' ? buf_puts(b, "\"\"") : buf_putc(b, *s);
    rc |= buf_putc(b, '"');
    return rc < 0 ? -1 : 0;
}

struct exporter {
    json_t *keys;  /* the extra columns seen: name -> true */
    json_t *order; /* their names, in the order first seen */
    FILE *fp;
    struct buf line;
};

static int is_reserved(const char *k)
{
    return !strcasecmp(k, "email") || !strcasecmp(k, "name") || !strcasecmp(k, "state");
}

static int collect_keys(void *arg, const struct mail_subscriber *s)
{
    struct exporter *ex = arg;
    json_t *extra = json_loads(s->extra, 0, NULL);
    const char *k;
    json_t *v;
    json_object_foreach(extra, k, v)
    {
        if (!is_reserved(k) && !json_object_get(ex->keys, k) &&
            json_array_size(ex->order) < CSV_FIELDS_MAX - 3) {
            json_object_set_new(ex->keys, k, json_true());
            json_array_append_new(ex->order, json_string(k));
        }
    }
    json_decref(extra);
    return 0;
}

static int write_row(void *arg, const struct mail_subscriber *s)
{
    struct exporter *ex = arg;
    json_t *extra = json_loads(s->extra, 0, NULL);
    int rc = 0;
    buf_reset(&ex->line);
    rc |= csv_put(&ex->line, s->email, 1);
    rc |= csv_put(&ex->line, s->name, 0);
    rc |= csv_put(&ex->line, mail_sub_state_name(s->state), 0);
    for (size_t i = 0; i < json_array_size(ex->order); i++) {
        json_t *v = json_object_get(extra, json_string_value(json_array_get(ex->order, i)));
        char *dump = NULL;
        const char *text = json_is_string(v) ? json_string_value(v)
                           : v ? (dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY))
                               : "";
        rc |= csv_put(&ex->line, text ? text : "", 0);
        free(dump);
    }
    rc |= buf_puts(&ex->line, "\r\n");
    json_decref(extra);
    if (rc < 0)
        return -3; /* a row past the buffer: cannot be */
    return fwrite(ex->line.data, 1, ex->line.len, ex->fp) == ex->line.len ? 0 : -2;
}

static int export_file(struct sub_cmd *cmd)
{
    const char *path = cmd->nargs ? cmd->args[0] : NULL;
    struct exporter ex = {.keys = json_object(), .order = json_array(), .fp = stdout};
    int rc = 1;
    buf_init(&ex.line, 0);
    if (!ex.keys || !ex.order)
        goto out;
    if (path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || !(ex.fp = fdopen(fd, "wb"))) {
            fprintf(stderr, "%s: error: cannot write: %s\n", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            ex.fp = NULL;
            goto out;
        }
    }
    if (mail_sub_each(cmd->ms, cmd->list, MAIL_SUB_ANY, collect_keys, &ex) < 0) {
        fprintf(stderr, "nashra subscribers export: state: %s\n", store_errmsg(cmd->st));
        goto out;
    }
    buf_reset(&ex.line);
    int r = buf_puts(&ex.line, "email,name,state");
    for (size_t i = 0; r == 0 && i < json_array_size(ex.order); i++)
        r = csv_put(&ex.line, json_string_value(json_array_get(ex.order, i)), 0);
    if (r < 0 || buf_puts(&ex.line, "\r\n") < 0)
        r = -3;
    else if (fwrite(ex.line.data, 1, ex.line.len, ex.fp) != ex.line.len)
        r = -2;
    else
        r = mail_sub_each(cmd->ms, cmd->list, MAIL_SUB_ANY, write_row, &ex);
    if (r == 0 && fflush(ex.fp) != 0)
        r = -2;
    if (r != 0) {
        fprintf(stderr, "%s: error: %s\n", path ? path : "(stdout)",
                r == -2   ? strerror(errno)
                : r == -1 ? store_errmsg(cmd->st)
                          : "out of memory");
        goto out;
    }
    rc = 0;
out:
    if (ex.fp && ex.fp != stdout && fclose(ex.fp) != 0 && rc == 0) {
        fprintf(stderr, "%s: error: %s\n", path, strerror(errno));
        rc = 1;
    }
    json_decref(ex.keys);
    json_decref(ex.order);
    buf_free(&ex.line);
    return rc;
}

/* ---- add, remove, list -------------------------------------------------- */

/* The normalised form of the address argument into out; 0, or 2 (told). */
static int address_arg(const struct sub_cmd *c, const char *arg, struct buf *out)
{
    char shown[96];
    if (mime_address_ok(arg, out))
        return 0;
    fprintf(stderr, "nashra subscribers %s: not a valid e-mail address: '%s'\n", c->action,
            printable(arg, 80, shown, sizeof shown));
    return 2;
}

static int add_one(struct sub_cmd *c)
{
    struct buf email, name;
    struct mail_subscriber *s = NULL;
    size_t bad;
    int rc;
    buf_init(&email, 512);
    buf_init(&name, 4096);
    if ((rc = address_arg(c, c->args[0], &email)) != 0)
        goto out;
    rc = 2;
    if (c->nargs > 1 &&
        (!utf8_valid(c->args[1], strlen(c->args[1]), &bad) || buf_puts(&name, c->args[1]) < 0)) {
        fprintf(stderr, "nashra subscribers add: the name is not valid UTF-8, or too long\n");
        goto out;
    }
    rc = 1;
    int state = c->pending ? MAIL_SUB_PENDING : MAIL_SUB_ACTIVE;
    int r = mail_sub_add(c->ms, c->list, buf_str(&email), name.data ? clean_name(name.data) : "",
                         NULL, state, timefmt_now());
    if (r < 0 || (r == 0 && mail_sub_find(c->ms, c->list, buf_str(&email), &s) < 0)) {
        fprintf(stderr, "nashra subscribers add: state: %s\n", store_errmsg(c->st));
        goto out;
    }
    if (!c->o.quiet) {
        if (r > 0)
            printf("%s: added to %s (%s)\n", buf_str(&email), c->list, mail_sub_state_name(state));
        else
            printf("%s: already on %s (%s)\n", buf_str(&email), c->list,
                   s ? mail_sub_state_name(s->state) : "?");
    }
    rc = 0;
out:
    free(s);
    buf_free(&email);
    buf_free(&name);
    return rc;
}

static int remove_one(struct sub_cmd *c)
{
    struct buf email;
    buf_init(&email, 512);
    int rc = address_arg(c, c->args[0], &email);
    if (rc == 0) {
        int r = mail_sub_remove(c->ms, c->list, buf_str(&email), timefmt_now());
        if (r < 0)
            fprintf(stderr, "nashra subscribers remove: state: %s\n", store_errmsg(c->st));
        else if (r == 0)
            fprintf(stderr, "nashra subscribers remove: %s is not on list '%s'\n", buf_str(&email),
                    c->list);
        else if (!c->o.quiet)
            printf("%s: removed from %s\n", buf_str(&email), c->list);
        rc = r > 0 ? 0 : 1;
    }
    buf_free(&email);
    return rc;
}

static int print_row(void *arg, const struct mail_subscriber *s)
{
    char name[1024];
    (void)arg;
    if (printf("%s\t%s\t%s\n", s->email, mail_sub_state_name(s->state),
               printable(s->name, sizeof name - 1, name, sizeof name)) < 0)
        return -2;
    return 0;
}

static int list_all(struct sub_cmd *c)
{
    int r = mail_sub_each(c->ms, c->list, c->state, print_row, NULL);
    if (r == 0 && fflush(stdout) != 0)
        r = -2;
    if (r != 0) {
        fprintf(stderr, "nashra subscribers list: %s\n",
                r == -1 ? store_errmsg(c->st) : strerror(errno));
        return 1;
    }
    return 0;
}

/* ---- the command ---------------------------------------------------------- */

int cmd_subscribers(int argc, char **argv)
{
    struct sub_cmd c;
    struct diag d = {0};
    int rc = parse(argc, argv, &c);
    if (rc || c.o.help)
        return rc;
    if (!(c.cfg = cmd_config(&c.o)))
        return 2;
    if ((rc = check_list(&c)) != 0)
        goto out;
    rc = 1;
    if (!(c.st = store_open(c.cfg->state.dir, 0, &d))) {
        diag_print(stderr, c.cfg->state.dir, &d);
        goto out;
    }
    if (!(c.ms = mail_store_new(c.st))) {
        fprintf(stderr, "%s: error: %s\n", c.cfg->state.dir, store_errmsg(c.st));
        goto out;
    }
    int64_t mark = c.pending ? cmd_confirm_mark(c.ms, c.list) : 0;
    if (mark < 0) {
        fprintf(stderr, "%s: error: %s\n", c.cfg->state.dir, store_errmsg(c.st));
        goto out;
    }
    switch (c.action[0]) {
    case 'a':
        rc = add_one(&c);
        break;
    case 'r':
        rc = remove_one(&c);
        break;
    case 'l':
        rc = list_all(&c);
        break;
    case 'i':
        rc = import_file(&c);
        break;
    case 'e':
        rc = export_file(&c);
        break;
    default: /* parse() let no other action through */
        fprintf(stderr, "nashra subscribers: unknown action '%s'\n", c.action);
        rc = 2;
        break;
    }
    /* --pending: the operator does not vouch for them; they confirm */
    if (c.pending && rc != 2) {
        int r = cmd_confirm_pending(c.cfg, c.ms, c.list, mark, c.o.quiet);
        if (r > rc)
            rc = r;
    }
out:
    mail_store_free(c.ms);
    store_close(c.st);
    config_free(c.cfg);
    return rc;
}
