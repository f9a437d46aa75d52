/*
 * config: nashra.yaml (SPEC §3) parsed once into one immutable struct.
 *
 * Every key has a default; unknown keys are errors with line, column and the
 * nearest known key ("did you mean"); "${NAME}" in a string is replaced by
 * that environment variable (unset: error); smtp.password_file is read into
 * the struct (the secret itself), other "_file" keys stay paths that their
 * users open (activitypub.key_file, subscribe.secret_file); relative paths are made absolute
 * against the config file's folder. A reload builds a new struct and swaps it whole. Uses libyaml
 * through lib/yaml_tree, and nothing else of ours.
 */
#ifndef NASHRA_CONFIG_H
#define NASHRA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/diag.h"

enum list_mode { LIST_EACH, LIST_DIGEST };
enum smtp_tls { SMTP_TLS_NONE, SMTP_TLS_STARTTLS, SMTP_TLS_TLS };
enum mail_transport { MAIL_MAILDIR, MAIL_SMTP };

struct config_list {
    char *id;          /* [a-z0-9_-]+, unique */
    char *name;        /* default: id */
    char **categories; /* NULL-terminated; ncategories == 0: every post */
    size_t ncategories;
    enum list_mode mode; /* default each */
    char *schedule;      /* digest: "daily HH:MM" | "weekly mon HH:MM"; default "daily 08:00" */
    char *subject;       /* Mustache; default "{{post.title}}" ("{{list.name}}": digest) */
    int subject_line;    /* where the subject's text starts in the file, 0 if defaulted */
    int subject_col;
    char *template; /* absolute path, or NULL for the built-in template */
    char *language; /* default site.language */
};

struct config {
    char *path; /* absolute path of the file read */
    char *dir;  /* its folder: relative paths are resolved against it */

    struct {
        char *title;        /* required */
        char *url;          /* required; absolute http(s) URL, no trailing '/' */
        char *host;         /* host[:port] part of url */
        char *language;     /* default "en" */
        int rtl;            /* derived from language (ar fa he ur ps sd ug yi ckb dv) */
        char *timezone;     /* IANA name; default "UTC" */
        char *author_name;  /* default: site.title */
        char *author_email; /* default NULL */
    } site;
    struct {
        char *dir;        /* default <config dir>/content */
        int allow_html;   /* default 0 */
        size_t max_bytes; /* default 10 MiB; accepts 10MiB, 512KiB, 1048576 */
    } content;
    struct {
        char *dir;       /* default <config dir>/public */
        char *templates; /* folder of overriding templates; default <config dir>/templates */
    } output;
    struct {
        char *dir; /* default <config dir>/state */
    } state;
    struct {
        int items;        /* default 20 */
        int full_content; /* default 1 */
        int categories;   /* default 1 */
    } feeds;
    struct {
        char *listen;    /* default "127.0.0.1:8080" */
        int trust_proxy; /* default 0 */
    } http;
    struct {
        int enabled;                 /* default 1 */
        char *username;              /* default "news" */
        char *display_name;          /* default site.title */
        char *summary;               /* default "" */
        char *object_type;           /* "Article" (default) | "Note" */
        char *actor_type;            /* "Service" (default) | "Person" */
        char *icon;                  /* URL or NULL */
        int allow_insecure_loopback; /* tests only; default 0 */
    } activitypub;
    struct {
        enum mail_transport transport; /* default maildir */
        char *maildir_path;            /* default <state.dir>/outbox */
        struct {
            char *host;        /* default "localhost" */
            int port;          /* default 587 (465 with tls: tls, 25 with none) */
            enum smtp_tls tls; /* default starttls */
            char *username;    /* default NULL: no AUTH */
            char *password;    /* from password or password_file; NULL if neither */
            int connections;   /* default 4 */
            int rate;          /* messages per second; default 50; 0 = unlimited */
            int timeout;       /* seconds; default 30 */
            char *ca_file;     /* CA certificates to trust instead of the system's; NULL */
        } smtp;
        char *from;        /* "Name <addr>"; default "<site.title> <news@host>" */
        char *secret_file; /* default <state.dir>/secret */
        struct {
            char *domain, *selector, *key_file; /* all NULL: no DKIM */
        } dkim;
        struct {
            char *maildir;  /* NULL: no bounce processing */
            int soft_limit; /* default 3 */
        } bounces;
    } mail;
    struct config_list *lists;
    size_t nlists;
};

/*
 * Loads and validates path. On error returns NULL and fills *err with the
 * position in the file (and err_file, if not NULL, with the file the error is
 * in: a *_file secret can fail too). A minimal valid file holds site.url and
 * site.title.
 */
struct config *config_load(const char *path, struct diag *err, char **err_file);
void config_free(struct config *cfg);

/* 1 if a BCP 47 tag's primary language is written right to left. */
int lang_is_rtl(const char *lang);

#endif
