/*
 * fuzz_ap: what a remote server sends the ActivityPub side (the inbox's
 * own parsing and fetched actor documents are fuzz_inbox's): a
 * received Follow (JSON) answered by ap_accept(), whose output must be
 * valid JSON; the Accept header negotiation (ap_wants_json); a WebFinger
 * resource= value (ap_webfinger_match); and a remote URL checked before a
 * fetch (ap_fetch_url_ok, with and without allow_insecure_loopback).
 */
#include <curl/curl.h>
#include <jansson.h>

#include "../../ap/docs.h"
#include "../../ap/fetch.h"
#include "fuzz.h"

static struct config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    cfg.site.title = "نشرة";
    cfg.site.url = "https://news.example.org:8443";
    cfg.site.host = "news.example.org:8443";
    cfg.site.language = "ar";
    cfg.site.author_name = "Desk";
    cfg.activitypub.enabled = 1;
    cfg.activitypub.username = "news";
    cfg.activitypub.display_name = "نشرة";
    cfg.activitypub.summary = "";
    cfg.activitypub.object_type = "Article";
    cfg.activitypub.actor_type = "Service";
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *follow = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (follow) {
        struct buf out;
        buf_init(&out, 1 << 20);
        if (ap_accept(&cfg, follow, &out) == 0) {
            json_t *back = json_loadb(out.data, out.len, 0, NULL);
            if (!back)
                abort(); /* what we send is always JSON */
            json_decref(back);
        } else if (out.len) {
            abort(); /* -1 leaves out as it was */
        }
        buf_free(&out);
        json_decref(follow);
    }

    char *s = fuzz_str(data, size);
    struct diag why;
    int m = ap_wants_json(s);
    if (m != 0 && m != AP_MEDIA_ACTIVITY && m != AP_MEDIA_LD)
        abort();
    (void)ap_webfinger_match(&cfg, s);
    int strict = ap_fetch_url_ok(s, 0, &why), loose = ap_fetch_url_ok(s, 1, &why);
    if (strict == 0 && loose != 0)
        abort(); /* allow_insecure_loopback only lets more through */
    free(s);
    return 0;
}
