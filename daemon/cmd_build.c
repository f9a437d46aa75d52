/*
 * cmd_build: `nashra build` (one publish pass, for cron and CI) and
 * `nashra check` (validate config, templates and every post; write nothing).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../ap/docs.h"
#include "../ap/httpsig.h"
#include "../feeds/feeds.h"
#include "../lib/fileio.h"
#include "../lib/log.h"
#include "../lib/timefmt.h"
#include "../mail/newsletter.h"
#include "../mail/sender.h"
#include "../store/store.h"
#include "ap_deliver.h"
#include "cmd.h"
#include "loop.h"
#include "publish.h"

#define DELIVER_TIMEOUT_MS (6 * 3600 * 1000LL) /* build --deliver gives up after this */

static const char build_usage[] =
    "usage: nashra build [-c FILE] [-v|-q] [--deliver]\n"
    "\n"
    "One full publish pass: read every post under content.dir, update the state\n"
    "in state.dir and write feeds and archive to output.dir, then exit.\n"
    "Rejected posts are listed as FILE:LINE:COL: error: ... and the others\n"
    "are published.\n"
    "\n"
    "  -c FILE    configuration (default ./nashra.yaml)\n"
    "  --deliver  then send the newsletters and ActivityPub deliveries due, to the end\n"
    "  -v         more log lines (debug)\n"
    "  -q         only warnings and errors\n"
    "  --help     this text\n";

static const char check_usage[] =
    "usage: nashra check [-c FILE] [-v|-q]\n"
    "\n"
    "Validate the configuration, the templates and every post, and print each\n"
    "problem as FILE:LINE:COL: error: ... Writes nothing. Exit 0 only if there\n"
    "is no problem.\n"
    "\n"
    "  -c FILE   configuration (default ./nashra.yaml)\n"
    "  -v        more log lines (debug)\n"
    "  -q        only warnings and errors\n"
    "  --help    this text\n";

int cmd_parse(int argc, char **argv, const char *usage, int allow_deliver, struct cmd_opts *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"deliver", no_argument, NULL, 'D'},      {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->config = "nashra.yaml";
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:vqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            o->help = 1;
            break;
        case 'D':
            if (!allow_deliver)
                goto bad;
            o->deliver = 1;
            break;
        case ':':
            fprintf(stderr, "nashra %s: option %s needs a value\n%s", argv[0], argv[optind - 1],
                    usage);
            return 2;
        default:
        bad:
            fprintf(stderr, "nashra %s: unknown option %s\n%s", argv[0], argv[optind - 1], usage);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nashra %s: unexpected argument '%s'\n%s", argv[0], argv[optind], usage);
        return 2;
    }
    if (o->help)
        fputs(usage, stdout);
    return 0;
}

struct config *cmd_config(const struct cmd_opts *o)
{
    struct diag d = {0};
    char *file = NULL;
    log_set_level(o->verbose ? LOG_DEBUG : o->quiet ? LOG_WARN : LOG_INFO);
    struct config *cfg = config_load(o->config, &d, &file);
    if (!cfg) {
        diag_print(stderr, file ? file : o->config, &d);
        free(file);
        return NULL;
    }
    if (timefmt_set_zone(cfg->site.timezone) < 0) {
        fprintf(stderr, "%s: error: unknown time zone '%s'\n", o->config, cfg->site.timezone);
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

static struct html_templates *load_templates(const struct config *cfg)
{
    struct diag d = {0};
    char *file = NULL;
    struct html_templates *t = html_templates_load(cfg, &d, &file);
    if (!t) {
        diag_print(stderr, file ? file : cfg->output.templates, &d);
        free(file);
    }
    return t;
}

int cmd_check_lists(const struct config *cfg)
{
    struct diag d = {0};
    char *file = NULL;
    struct newsletter *nl = cfg->nlists ? newsletter_load(cfg, &d, &file) : NULL;
    if (cfg->nlists && !nl)
        diag_print(stderr, file ? file : cfg->path, &d);
    free(file);
    int ok = !cfg->nlists || nl;
    newsletter_free(nl);
    return ok ? 0 : -1;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* build --deliver: the ActivityPub deliveries due now, to the end, with the
 * actor's key (made if absent, as the daemon does). */
static int deliver_ap(const struct config *cfg, struct store *st)
{
    struct diag d = {0};
    char *keyfile = path_join(cfg->state.dir, "actor.pem"), *key_id = NULL;
    int created = 0, rc = -1;
    EVP_PKEY *key = keyfile ? httpsig_key_load_or_create(keyfile, &created, &d) : NULL;
    struct loop *l = loop_new();
    struct ap_deliver *ad = NULL;
    if (key && l && asprintf(&key_id, "%s" AP_PATH_ACTOR AP_KEY_FRAGMENT, cfg->site.url) > 0)
        ad = ap_deliver_new(cfg, st, l, key, key_id, &d);
    if (!ad) {
        diag_print(stderr, "activitypub", &d);
    } else {
        struct ap_deliver_stats as;
        rc = ap_deliver_drain(ad, DELIVER_TIMEOUT_MS);
        ap_deliver_stats(ad, &as);
        log_event(rc ? LOG_ERROR : LOG_INFO, "deliver",
                  "activitypub=1 sent=%llu failed=%llu retry_later=%llu result=%s",
                  (unsigned long long)as.sent, (unsigned long long)as.failed,
                  (unsigned long long)as.retried, rc ? "timeout" : "done");
    }
    ap_deliver_free(ad);
    loop_free(l);
    EVP_PKEY_free(key);
    free(key_id);
    free(keyfile);
    return rc;
}

int cmd_build(int argc, char **argv)
{
    struct cmd_opts o;
    int rc = cmd_parse(argc, argv, build_usage, 1, &o);
    if (rc || o.help)
        return rc;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct config *cfg = cmd_config(&o);
    if (!cfg)
        return 2;
    struct html_templates *tpl = load_templates(cfg);
    struct store *st = NULL;
    struct diag d = {0};
    rc = 2;
    if (!tpl || (o.deliver && cmd_check_lists(cfg) < 0))
        goto out;
    rc = 1;
    if (!(st = store_open(cfg->state.dir, 0, &d))) {
        diag_print(stderr, cfg->state.dir, &d);
        log_event(LOG_ERROR, "build", "result=failed state=%s error=%s", log_quote(cfg->state.dir),
                  log_quote(d.msg));
        goto out;
    }
    struct publish_stats s;
    if (publish_run(cfg, st, tpl, &s) < 0) {
        log_event(LOG_ERROR, "build", "result=failed ms=%ld", ms_since(&t0));
        goto out;
    }
    log_event(LOG_INFO, "build",
              "files=%zu published=%zu rejected=%zu parsed=%zu announced=%zu written=%zu "
              "output=%s ms=%ld",
              s.files, s.published, s.rejected, s.parsed, s.announced, s.written,
              log_quote(cfg->output.dir), ms_since(&t0));
    rc = 0;
    if (o.deliver && cfg->nlists) { /* the mail due now, to the end */
        struct sender *snd = sender_new(cfg, st, NULL, &d);
        struct sender_stats ss = {0};
        if (!snd) {
            diag_print(stderr, "mail", &d);
            rc = 1;
        } else {
            rc = sender_drain(snd, DELIVER_TIMEOUT_MS) < 0 ? 1 : 0;
            sender_stats(snd, &ss);
            log_event(rc ? LOG_ERROR : LOG_INFO, "deliver",
                      "sent=%llu failed=%llu retry_later=%llu result=%s",
                      (unsigned long long)ss.sent, (unsigned long long)ss.failed,
                      (unsigned long long)ss.retried, rc ? "timeout" : "done");
            sender_free(snd);
        }
    }
    if (o.deliver && cfg->activitypub.enabled && deliver_ap(cfg, st) < 0)
        rc = 1;
out:
    store_close(st);
    html_templates_free(tpl);
    config_free(cfg);
    return rc;
}

int cmd_check(int argc, char **argv)
{
    struct cmd_opts o;
    int rc = cmd_parse(argc, argv, check_usage, 0, &o);
    if (rc || o.help)
        return rc;
    struct config *cfg = cmd_config(&o);
    if (!cfg)
        return 2;
    struct html_templates *tpl = load_templates(cfg);
    if (!tpl) {
        config_free(cfg);
        return 2;
    }
    long problems = publish_check(cfg);
    if (cmd_check_lists(cfg) < 0)
        problems = problems < 0 ? problems : problems + 1;
    if (problems == 0)
        fprintf(stderr, "%s: configuration, templates and posts are OK\n", o.config);
    else if (problems > 0)
        fprintf(stderr, "%ld problem%s\n", problems, problems == 1 ? "" : "s");
    html_templates_free(tpl);
    config_free(cfg);
    return problems == 0 ? 0 : 1;
}
