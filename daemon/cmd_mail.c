/*
 * cmd_mail: the newsletter commands of SPEC §2 besides `subscribers`:
 *   preview --list ID [--post SLUG] [-o FILE]   a list's message as .eml or .html
 *   send --list ID --post SLUG [--to ADDR]      queue an issue now, or a test send
 *   status                                      posts, subscribers, issues' progress
 * The daemon (or `build --deliver`) sends what `send` queues.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fileio.h"
#include "../lib/log.h"
#include "../lib/timefmt.h"
#include "../mail/compose.h"
#include "../mail/dkim.h"
#include "../mail/mime.h"
#include "../mail/newsletter.h"
#include "../mail/transport.h"
#include "../store/ap_store.h"
#include "../store/mail_store.h"
#include "../store/store.h"
#include "cmd.h"

#define TEST_SEND_TIMEOUT_MS 60000
#define MESSAGE_MAX          (64u << 20)

static const char preview_usage[] =
    "usage: nashra preview --list ID [--post SLUG] [-o FILE] [-c FILE]\n"
    "\n"
    "Render list ID's newsletter for a post (default: the newest published one)\n"
    "as an e-mail (.eml, to standard output or FILE) or, when FILE ends in\n"
    ".html, as the HTML part alone to open in a browser. Sends nothing.\n"
    "\n"
    "  --list ID     the list (lists[].id)\n"
    "  --post SLUG   the post (default: the newest)\n"
    "  -o FILE       write there (default: standard output)\n"
    "  -c FILE       configuration (default ./nashra.yaml)\n"
    "  --help        this text\n";

static const char send_usage[] =
    "usage: nashra send --list ID --post SLUG [--to ADDR] [-c FILE]\n"
    "\n"
    "Queue list ID's issue of a post now: every active subscriber gets it once\n"
    "(the daemon, or `nashra build --deliver`, sends it). With --to, send one\n"
    "test message to ADDR at once instead; nothing is recorded.\n"
    "\n"
    "  --list ID     the list (lists[].id)\n"
    "  --post SLUG   the post\n"
    "  --to ADDR     a test send to this address only\n"
    "  -c FILE       configuration (default ./nashra.yaml)\n"
    "  --help        this text\n";

static const char status_usage[] =
    "usage: nashra status [-c FILE]\n"
    "\n"
    "Posts, followers and ActivityPub deliveries pending, subscribers of each\n"
    "list, and every issue's progress\n"
    "(sent/total, failed, retrying). Reads the state; changes nothing.\n"
    "\n"
    "  -c FILE   configuration (default ./nashra.yaml)\n"
    "  --help    this text\n";

struct mail_opts {
    struct cmd_opts o;
    const char *list, *post, *out, *to;
};

static int parse(int argc, char **argv, const char *usage, struct mail_opts *m)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"list", required_argument, NULL, 'L'},
                                             {"post", required_argument, NULL, 'P'},
                                             {"to", required_argument, NULL, 'T'},
                                             {"output", required_argument, NULL, 'o'},
                                             {NULL, 0, NULL, 0}};
    memset(m, 0, sizeof *m);
    m->o.config = "nashra.yaml";
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:vqho:", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            m->o.config = optarg;
            break;
        case 'v':
            m->o.verbose = 1;
            break;
        case 'q':
            m->o.quiet = 1;
            break;
        case 'h':
            m->o.help = 1;
            break;
        case 'L':
            m->list = optarg;
            break;
        case 'P':
            m->post = optarg;
            break;
        case 'T':
            m->to = optarg;
            break;
        case 'o':
            m->out = optarg;
            break;
        case ':':
            fprintf(stderr, "nashra %s: option %s needs a value\n%s", argv[0], argv[optind - 1],
                    usage);
            return 2;
        default:
            fprintf(stderr, "nashra %s: unknown option %s\n%s", argv[0], argv[optind - 1], usage);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nashra %s: unexpected argument '%s'\n%s", argv[0], argv[optind], usage);
        return 2;
    }
    if (m->o.help)
        fputs(usage, stdout);
    return 0;
}

/* The index of list id, or prints the known ones and returns -1. */
static long find_list(const struct config *cfg, const char *id)
{
    for (size_t i = 0; id && i < cfg->nlists; i++)
        if (!strcmp(cfg->lists[i].id, id))
            return (long)i;
    fprintf(stderr, "%s: error: %s '%s' (lists:", cfg->path, id ? "no list" : "--list is needed",
            id ? id : "");
    for (size_t i = 0; i < cfg->nlists; i++)
        fprintf(stderr, " %s", cfg->lists[i].id);
    fprintf(stderr, "%s)\n", cfg->nlists ? "" : " none");
    return -1;
}

static int take_first(void *arg, struct post *p)
{
    *(struct post **)arg = p;
    return 1;
}

/* The published post slug, or the newest one. NULL (with a message) if none. */
static struct post *find_post(struct store *st, const char *slug)
{
    struct post *p = NULL;
    if (slug)
        p = store_published_slug(st, slug);
    else if (store_latest(st, NULL, 1, 1, take_first, &p) < 0)
        p = NULL;
    if (p && !p->html && store_post_html(st, p) < 0) {
        post_free(p);
        p = NULL;
    }
    if (!p)
        fprintf(stderr, "nashra: error: %s\n",
                slug ? "no published post with that slug" : "no published post yet");
    return p;
}

/* Config, state, templates, key: what preview and send share. */
struct mail_env {
    struct config *cfg;
    struct store *st;
    struct newsletter *nl;
    struct composer comp;
    int comp_ready;
    struct dkim *dkim;
};

static int env_open(struct mail_env *e, const struct mail_opts *m)
{
    struct diag d = {0};
    char *file = NULL;
    unsigned char key[32];
    memset(e, 0, sizeof *e);
    if (!(e->cfg = cmd_config(&m->o)))
        return 2;
    if (!(e->nl = newsletter_load(e->cfg, &d, &file))) {
        diag_print(stderr, file ? file : e->cfg->path, &d);
        free(file);
        return 2;
    }
    if (!(e->st = store_open(e->cfg->state.dir, 0, &d))) {
        diag_print(stderr, e->cfg->state.dir, &d);
        return 1;
    }
    if (newsletter_secret(e->cfg, key, &d) < 0) {
        diag_print(stderr, e->cfg->mail.secret_file, &d);
        return 1;
    }
    newsletter_use_key(e->nl, key);
    if (composer_init(&e->comp, e->cfg, e->nl, key) < 0)
        return 1;
    e->comp_ready = 1;
    if (e->cfg->mail.dkim.domain) {
        if (!(e->dkim = dkim_load(e->cfg->mail.dkim.domain, e->cfg->mail.dkim.selector,
                                  e->cfg->mail.dkim.key_file, &d))) {
            diag_print(stderr, e->cfg->path, &d);
            return 1;
        }
        e->comp.dkim = e->dkim;
    }
    return 0;
}

static void env_close(struct mail_env *e)
{
    if (e->comp_ready)
        composer_free(&e->comp);
    dkim_free(e->dkim);
    newsletter_free(e->nl);
    store_close(e->st);
    config_free(e->cfg);
}

/* env_open, then the list and the post the options name: 0, or the exit
 * code (everything closed). */
static int env_open_post(struct mail_env *e, const struct mail_opts *m, long *li, struct post **p)
{
    int rc = env_open(e, m);
    *p = NULL;
    if (rc == 0 && (*li = find_list(e->cfg, m->list)) < 0)
        rc = 2;
    else if (rc == 0 && !(*p = find_post(e->st, m->post)))
        rc = 1;
    if (rc)
        env_close(e);
    return rc;
}

int cmd_preview(int argc, char **argv)
{
    struct mail_opts m;
    struct mail_env e;
    int rc = parse(argc, argv, preview_usage, &m);
    if (rc || m.o.help)
        return rc;
    long li;
    struct post *p;
    if ((rc = env_open_post(&e, &m, &li, &p)) != 0)
        return rc;
    const struct config_list *l = &e.cfg->lists[li];
    struct newsletter_to to = {
        .id = 0, .email = "subscriber@example.org", .name = "", .extra = "{}"};
    struct buf msg, verp, html;
    buf_init(&msg, MESSAGE_MAX);
    buf_init(&verp, 1024);
    buf_init(&html, MESSAGE_MAX);
    int html_only = m.out && strlen(m.out) > 5 && !strcmp(m.out + strlen(m.out) - 5, ".html");
    rc = compose(&e.comp, (size_t)li, &p, 1, l->mode == LIST_DIGEST, &to, 0, &msg, &verp, &html);
    const struct buf *out = html_only ? &html : &msg;
    if (rc < 0) {
        fprintf(stderr, "nashra preview: error: the message could not be made (too large?)\n");
        rc = 1;
    } else if (m.out) {
        rc = file_write_if_changed(m.out, buf_str(out), out->len) < 0 ? 1 : 0;
        if (rc)
            perror(m.out);
        else
            fprintf(stderr, "%s: %s of list %s for post %s\n", m.out,
                    html_only ? "the HTML part" : "the message", l->id, p->slug);
    } else {
        rc = fwrite(buf_str(out), 1, out->len, stdout) == out->len ? 0 : 1;
    }
    buf_free(&msg);
    buf_free(&verp);
    buf_free(&html);
    post_free(p);
    env_close(&e);
    return rc;
}

struct test_send {
    int done;
    enum transport_outcome outcome;
    int code;
    char why[512];
};

static void on_test_done(void *arg, uint64_t id, enum transport_outcome outcome, int code,
                         const char *why)
{
    struct test_send *t = arg;
    (void)id;
    t->done = 1;
    t->outcome = outcome;
    t->code = code;
    snprintf(t->why, sizeof t->why, "%s", why ? why : "");
}

int cmd_send(int argc, char **argv)
{
    struct mail_opts m;
    struct mail_env e;
    int rc = parse(argc, argv, send_usage, &m);
    if (rc || m.o.help)
        return rc;
    if (!m.post) {
        fprintf(stderr, "nashra send: --post SLUG is needed\n%s", send_usage);
        return 2;
    }
    long li;
    struct post *p;
    if ((rc = env_open_post(&e, &m, &li, &p)) != 0)
        return rc;
    const struct config_list *l = &e.cfg->lists[li];
    if (!m.to) { /* queue the issue: the daemon or build --deliver sends it */
        struct mail_store *ms = mail_store_new(e.st);
        int64_t id = 0;
        int r = ms ? mail_issue_each(ms, l->id, p->path, timefmt_now(), &id) : -1;
        struct mail_issue is = {0};
        if (r >= 0)
            mail_issue_progress(ms, id, &is);
        if (r < 0)
            fprintf(stderr, "nashra send: error: %s\n", store_errmsg(e.st));
        else
            fprintf(stderr, "issue %lld of list %s for %s: %s, %lld recipients\n", (long long)id,
                    l->id, p->slug, r > 0 ? "queued" : "already queued", (long long)is.total);
        mail_store_free(ms);
        post_free(p);
        env_close(&e);
        return r < 0 ? 1 : 0;
    }
    struct buf addr, msg, verp;
    buf_init(&addr, 1024);
    buf_init(&msg, MESSAGE_MAX);
    buf_init(&verp, 1024);
    if (!mime_address_ok(m.to, &addr)) {
        fprintf(stderr, "nashra send: error: '%s' is not an e-mail address\n", m.to);
        rc = 2;
        goto out;
    }
    struct newsletter_to to = {.id = 0, .email = buf_str(&addr), .name = "", .extra = "{}"};
    struct test_send t = {0};
    struct transport *tr = NULL;
    if (compose(&e.comp, (size_t)li, &p, 1, 0, &to, 0, &msg, &verp, NULL) < 0 ||
        !(tr = transport_new(e.cfg, NULL, on_test_done, &t)) ||
        transport_send(tr, 1, buf_str(&verp), buf_str(&addr), buf_str(&msg), msg.len) < 0 ||
        transport_wait(tr, TEST_SEND_TIMEOUT_MS) < 0 || !t.done) {
        fprintf(stderr, "nashra send: error: the test message could not be sent%s%s\n",
                t.why[0] ? ": " : "", t.why);
        rc = 1;
    } else if (t.outcome != TRANSPORT_SENT) {
        fprintf(stderr, "nashra send: error: %s (%d) %s\n",
                t.outcome == TRANSPORT_RETRY ? "not sent, try again" : "refused", t.code, t.why);
        rc = 1;
    } else {
        fprintf(stderr, "sent to %s%s%s\n", buf_str(&addr), t.why[0] ? ": " : "", t.why);
    }
    transport_free(tr);
out:
    buf_free(&addr);
    buf_free(&msg);
    buf_free(&verp);
    post_free(p);
    env_close(&e);
    return rc;
}

static int print_issue(void *arg, const struct mail_issue *is)
{
    (void)arg;
    double pct = is->total ? 100.0 * (double)(is->sent + is->failed) / (double)is->total : 100.0;
    printf("  issue %lld  %-12s %-6s %s  sent %lld/%lld  failed %lld  retrying %lld  pending "
           "%lld  (%.0f%% done)\n",
           (long long)is->id, is->list, is->kind == MAIL_ISSUE_EACH ? "each" : "digest",
           is->post ? is->post : "", (long long)is->sent, (long long)is->total,
           (long long)is->failed, (long long)is->retrying, (long long)is->pending, pct);
    return 0;
}

int cmd_status(int argc, char **argv)
{
    struct mail_opts m;
    int rc = parse(argc, argv, status_usage, &m);
    if (rc || m.o.help)
        return rc;
    struct config *cfg = cmd_config(&m.o);
    struct diag d = {0};
    if (!cfg)
        return 2;
    struct store *st = store_open(cfg->state.dir, 0, &d);
    struct mail_store *ms = st ? mail_store_new(st) : NULL;
    if (!ms) {
        diag_print(stderr, cfg->state.dir, &d);
        store_close(st);
        config_free(cfg);
        return 1;
    }
    printf("posts published: %lld\n", (long long)store_count_published(st));
    struct ap_store *as = ap_store_new(st);
    if (as) {
        printf("followers: %lld (%lld inboxes)\n", (long long)ap_followers_count(as),
               (long long)ap_followers_inboxes(as));
        printf("activitypub deliveries pending: %lld\n", (long long)ap_pending_count(as));
    }
    ap_store_free(as);
    for (size_t i = 0; i < cfg->nlists; i++) {
        const char *id = cfg->lists[i].id;
        printf("list %s: %lld active, %lld pending, %lld unsubscribed, %lld bounced\n", id,
               (long long)mail_sub_count(ms, id, MAIL_SUB_ACTIVE),
               (long long)mail_sub_count(ms, id, MAIL_SUB_PENDING),
               (long long)mail_sub_count(ms, id, MAIL_SUB_UNSUBSCRIBED),
               (long long)mail_sub_count(ms, id, MAIL_SUB_BOUNCED));
    }
    printf("issues:\n");
    rc = mail_issue_each_progress(ms, NULL, print_issue, NULL) < 0 ? 1 : 0;
    mail_store_free(ms);
    store_close(st);
    config_free(cfg);
    return rc;
}
