/*
 * fuzz_inbox: what a remote server sends the inbox (daemon/ap_inbox.c),
 * without network or store: the body of a POST (ap_inbox_parse: the depth
 * cap, JSON, actor and type), and a fetched actor document read for its key
 * (ap_doc_key) and its inboxes (ap_doc_inboxes). What these return must
 * point into the document, pass the fetch policy and hold the key's origin.
 */
#include <curl/curl.h>
#include <strings.h>

#include "../../ap/fetch.h"
#include "../../daemon/ap_inbox.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        abort();
    return 0;
}

/* The document's own id, or one of the ids the seeds use. */
static const char *doc_id(const json_t *doc)
{
    const char *id = json_string_value(json_object_get(doc, "id"));
    return id ? id : "https://social.example.net/users/amal";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *act;
    const char *actor, *type;
    int rc = ap_inbox_parse((const char *)data, size, &act, &actor, &type);
    if (rc == AP_PARSE_OK) {
        if (!act || !actor || !type)
            abort();
        json_decref(act);
    } else if (rc != AP_PARSE_DEEP && rc != AP_PARSE_NOT_ACTIVITY) {
        abort();
    } else if (act || actor || type) {
        abort();
    }
    if (rc == AP_PARSE_DEEP)
        return 0; /* a fetched document is parsed with the same cap */

    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    if (!doc)
        return 0;
    struct diag why = {0};
    const char *id = doc_id(doc);
    const char *key_ids[] = {"https://social.example.net/users/amal#main-key", id};
    for (size_t i = 0; i < sizeof key_ids / sizeof *key_ids; i++) {
        const char *owner = NULL, *pem = NULL;
        int k = ap_doc_key(doc, key_ids[i], &owner, &pem, &why);
        if (k == 0) {
            if (!owner || !pem)
                abort();
            /* the owner is of the key's origin: same scheme://host[:port] */
            const char *e = strstr(owner, "://");
            if (!e)
                abort();
            e = strchr(e + 3, '/');
            size_t n = e ? (size_t)(e - owner) : strlen(owner);
            if (strncasecmp(owner, key_ids[i], n))
                abort();
        } else if (k != -1 && k != -2) {
            abort();
        }
    }
    for (int allow = 0; allow <= 1; allow++) {
        char *inbox = NULL, *shared = NULL;
        if (ap_doc_inboxes(doc, id, allow, &inbox, &shared, &why) == 0) {
            struct diag w;
            if (!inbox || ap_fetch_url_ok(inbox, allow, &w) < 0 ||
                (shared && ap_fetch_url_ok(shared, allow, &w) < 0))
                abort();
        } else if (inbox || shared) {
            abort();
        }
        free(inbox);
        free(shared);
    }
    json_decref(doc);
    return 0;
}
