/*
 * feed_int: helpers shared by the writers in feeds/ (RSS, Atom, JSON Feed,
 * HTML archive). Internal to feeds/: nothing outside includes this file.
 * The common helpers and the XML writer live in feed_rss.c, the jansson
 * helpers in feed_json.c.
 */
#ifndef NASHRA_FEED_INT_H
#define NASHRA_FEED_INT_H

#include <jansson.h>
#include <libxml/xmlwriter.h>
#include <stdint.h>

#include "feeds.h"

/* Cap of the scratch buffers that hold one cleaned string (a post body is
 * capped by content.max_bytes long before this). */
#define FEED_TEXT_CAP (256u << 20)

/* A post's last change: its `updated` if later than its date, else its date. */
int64_t feed_post_updated(const struct post *p);

/* p->html's length (html_len, or strlen when a caller left it 0). */
size_t feed_html_len(const struct post *p);

/* The newest feed_post_updated() of the set; 0 when it is empty. */
int64_t feed_newest(const struct feed_set *fs);

/* Appends the feed title: site.title, or "site.title — category". */
int feed_title(const struct config *cfg, const struct feed_set *fs, struct buf *out);

/* Appends "{site.url}/{dir}{name}", each segment of dir percent-encoded. */
int feed_url(const struct config *cfg, const char *dir, const char *name, struct buf *out);

/* 1 if tag has the shape RFC 4287 accepts for xml:lang (RFC 3066). */
int feed_lang_ok(const char *tag);

/* The post's language tag: its own, else the site's. */
const char *feed_post_lang(const struct config *cfg, const struct post *p);

/*
 * An xmlTextWriter over a memory buffer, UTF-8, indented by 2 spaces, with a
 * sticky error: after the first failure every call is a no-op and
 * feed_xml_close() returns -1. Every text and attribute value is cleaned of
 * what XML forbids (text_xml_clean) before the writer escapes it.
 */
struct feed_xml {
    xmlBufferPtr xbuf;
    xmlTextWriterPtr w;
    struct buf tmp; /* the cleaned copy of the value being written */
    int err;
    /* libxml2's error handler while the writer is open (one of its errors,
     * which it does not always return, such as a failed allocation inside
     * xmlTextWriterWriteString, sets err), and the one to put back */
    xmlStructuredErrorFunc old_handler;
    void *old_ctx;
    xmlGenericErrorFunc old_generic; /* the same for its unstructured errors */
    void *old_generic_ctx;
};

int feed_xml_open(struct feed_xml *x);
void feed_xml_start(struct feed_xml *x, const char *name);
void feed_xml_end(struct feed_xml *x);
/* An attribute of the open element; nothing when value is NULL. */
void feed_xml_attr(struct feed_xml *x, const char *name, const char *value);
/* <name>text</name>; nothing when text is NULL. */
void feed_xml_elem(struct feed_xml *x, const char *name, const char *text);
void feed_xml_elem_len(struct feed_xml *x, const char *name, const char *text, size_t len);
/* Text content of the open element. */
void feed_xml_elem_text(struct feed_xml *x, const char *text, size_t len);
/* Ends the document and appends it to out (left as it was on error); frees
 * the writer in every case. 0 or -1. */
int feed_xml_close(struct feed_xml *x, struct buf *out);

/*
 * Building jansson values from outside strings, with a sticky error: the
 * strings are cleaned (text_xml_clean) so jansson always gets valid UTF-8.
 */
struct feed_jb {
    struct buf tmp;
    int err;
};

void feed_jb_init(struct feed_jb *jb);
void feed_jb_free(struct feed_jb *jb);
/* obj[key] = value (consumed; NULL sets the error). */
void feed_jb_set(struct feed_jb *jb, json_t *obj, const char *key, json_t *value);
/* obj[key] = s as a string; nothing when s is NULL. */
void feed_jb_str(struct feed_jb *jb, json_t *obj, const char *key, const char *s);
void feed_jb_strn(struct feed_jb *jb, json_t *obj, const char *key, const char *s, size_t len);
/* Appends s as a string to the array; nothing when s is NULL. */
void feed_jb_push(struct feed_jb *jb, json_t *arr, const char *s);
/* For valid UTF-8 that is normally XML-clean already (a post's rendered
 * HTML): a quick look instead of a copy through text_xml_clean. */
void feed_jb_clean(struct feed_jb *jb, json_t *obj, const char *key, const char *s, size_t len);
/* A new string value (NULL on error, which is then set). */
json_t *feed_jb_string(struct feed_jb *jb, const char *s, size_t len);

#endif
