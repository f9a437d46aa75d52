/*
 * ap_fetch: remote ActivityPub fetches under SPEC §7's policy (see fetch.h):
 * https only, no private or reserved addresses (checked on the very address
 * curl connects to), redirects followed here and re-checked, a total
 * timeout and a body cap.
 *
 * Address ranges refused: RFC 6890 special-purpose registries (IPv4 and
 * IPv6), RFC 1918 private, RFC 6598 CGNAT, RFC 3927 / RFC 4291 link-local,
 * RFC 4193 unique-local, RFC 5737 / RFC 3849 / RFC 9637 documentation,
 * multicast, 240/4 reserved. IPv6 outside 2000::/3 (global unicast) is
 * refused whole; IPv4-mapped (RFC 4291), NAT64 64:ff9b::/96 (RFC 6052) and
 * 6to4 2002::/16 (RFC 3056) are judged by the IPv4 address they carry.
 */
#include "fetch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>

/* --- addresses ---------------------------------------------------------------- */

/* A forbidden IPv4 range: addr/bits, host byte order. */
struct v4range {
    uint32_t addr;
    int bits;
};

static const struct v4range v4_forbidden[] = {
    {0x00000000, 8},  /* 0/8 "this network", 0.0.0.0 unspecified */
    {0x0a000000, 8},  /* 10/8 private */
    {0x64400000, 10}, /* 100.64/10 CGNAT */
    {0x7f000000, 8},  /* 127/8 loopback (unless allowed) */
    {0xa9fe0000, 16}, /* 169.254/16 link-local */
    {0xac100000, 12}, /* 172.16/12 private */
    {0xc0000000, 24}, /* 192.0.0/24 IETF protocol assignments */
    {0xc0000200, 24}, /* 192.0.2/24 TEST-NET-1 */
    {0xc0586300, 24}, /* 192.88.99/24 6to4 relay anycast */
    {0xc0a80000, 16}, /* 192.168/16 private */
    {0xc6120000, 15}, /* 198.18/15 benchmarking */
    {0xc6336400, 24}, /* 198.51.100/24 TEST-NET-2 */
    {0xcb007100, 24}, /* 203.0.113/24 TEST-NET-3 */
    {0xe0000000, 4},  /* 224/4 multicast */
    {0xf0000000, 4},  /* 240/4 reserved, 255.255.255.255 broadcast */
};

static int v4_in(uint32_t a, uint32_t net, int bits)
{
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    return (a & mask) == (net & mask);
}

/* a: IPv4 address in host byte order. */
static int v4_ok(uint32_t a, int allow_loopback)
{
    if (allow_loopback && v4_in(a, 0x7f000000, 8))
        return 1;
    for (size_t i = 0; i < sizeof v4_forbidden / sizeof v4_forbidden[0]; i++)
        if (v4_in(a, v4_forbidden[i].addr, v4_forbidden[i].bits))
            return 0;
    return 1;
}

static uint32_t v4_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int v6_ok(const uint8_t *b, int allow_loopback)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    static const uint8_t loop[16] = {[15] = 1};

    if (memcmp(b, loop, 16) == 0)
        return allow_loopback;
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return v4_ok(v4_at(b + 12), allow_loopback);
    if ((b[0] & 0xe0) != 0x20) /* outside 2000::/3: ::, fc00::/7, fe80::/10, ff00::/8... */
        return 0;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02) /* 2001::/23 IETF, Teredo */
        return 0;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) /* 2001:db8::/32 */
        return 0;
    if (b[0] == 0x20 && b[1] == 0x02) /* 2002::/16 6to4: the IPv4 inside */
        return v4_ok(v4_at(b + 2), 0);
    if (b[0] == 0x3f && (b[1] & 0xf0) == 0xf0) /* 3fff::/20 documentation */
        return 0;
    return 1;
}

int ap_fetch_addr_ok(const struct sockaddr *sa, int allow_loopback)
{
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return v4_ok(ntohl(in->sin_addr.s_addr), allow_loopback);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return v6_ok(in6->sin6_addr.s6_addr, allow_loopback);
    }
    return 0;
}

/* --- URLs ----------------------------------------------------------------------- */

/* Judges an IP-literal host (curl's form: "[v6]" bracketed); 1 when not a literal. */
static int literal_ok(const char *host, int allow_loopback)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    char v6[64];
    size_t n = strlen(host);

    if (inet_pton(AF_INET, host, &in.sin_addr) == 1)
        return ap_fetch_addr_ok((struct sockaddr *)&in, allow_loopback);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof v6) {
        memcpy(v6, host + 1, n - 2);
        v6[n - 2] = '\0';
        char *zone = strchr(v6, '%'); /* a zone id: link-local, refused below */
        if (zone)
            *zone = '\0';
        if (inet_pton(AF_INET6, v6, &in6.sin6_addr) != 1)
            return 0;
        return !zone && ap_fetch_addr_ok((struct sockaddr *)&in6, allow_loopback);
    }
    return 1;
}

static int loopback_host(const char *host)
{
    return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0 ||
           strcasecmp(host, "localhost") == 0;
}

int ap_fetch_url_ok(const char *url, int allow_insecure_loopback, struct diag *why)
{
    CURLU *u = NULL;
    char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL;
    int rc = -1;

    if (!url || !*url) {
        diag_set(why, 0, 0, "empty URL");
        goto out;
    }
    if (strlen(url) > AP_FETCH_MAX_URL) {
        diag_set(why, 0, 0, "URL longer than %d bytes", AP_FETCH_MAX_URL);
        goto out;
    }
    /* Control characters and spaces are never part of a URL we follow. */
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) {
            diag_set(why, 0, 0, "URL holds a control character or space");
            goto out;
        }
    /* Exactly "scheme://host": curl would also take "https:/host" or "https:///host". */
    const char *sep = strstr(url, "://");
    if (!sep || sep[3] == '/' || sep[3] == '\0') {
        diag_set(why, 0, 0, "not an absolute URL with a host: %.200s", url);
        goto out;
    }
    u = curl_url();
    if (!u) {
        diag_set(why, 0, 0, "out of memory");
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        diag_set(why, 0, 0, "not an absolute URL with a host: %.200s", url);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_NO_USER ||
        curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) != CURLUE_NO_PASSWORD) {
        diag_set(why, 0, 0, "URL carries userinfo: %.200s", url);
        goto out;
    }
    if (strcmp(scheme, "https") != 0 &&
        !(allow_insecure_loopback && strcmp(scheme, "http") == 0 && loopback_host(host))) {
        diag_set(why, 0, 0, "not https: %.200s", url);
        goto out;
    }
    if (!literal_ok(host, allow_insecure_loopback)) {
        diag_set(why, 0, 0, "forbidden address: %.200s", host);
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(pass);
    curl_url_cleanup(u);
    return rc;
}

/* --- the transfer --------------------------------------------------------------- */

struct hop {
    struct buf *body;
    size_t max_body;
    int allow_loopback;
    int too_big;      /* the write callback aborted on the cap */
    int addr_refused; /* the open-socket callback refused an address */
    char refused[64]; /* that address, for the diag */
    const atomic_int *cancel;
};

/* Called by curl at least once a second: a cancel ends the transfer. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const struct hop *h = ud;
    (void)dt, (void)dn, (void)ut, (void)un;
    return h->cancel && atomic_load(h->cancel) ? 1 : 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct hop *h = ud;
    size_t n = size * nmemb;

    if (n > h->max_body - h->body->len || buf_append(h->body, p, n) < 0) {
        h->too_big = 1;
        return 0; /* curl aborts with CURLE_WRITE_ERROR */
    }
    return n;
}

/*
 * Called with the resolved address just before each connection: the one
 * place where DNS rebinding cannot slip a private address past the policy.
 */
static curl_socket_t on_opensocket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct hop *h = ud;

    if (purpose != CURLSOCKTYPE_IPCXN || !ap_fetch_addr_ok(&a->addr, h->allow_loopback)) {
        h->addr_refused = 1;
        if (a->family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&a->addr)->sin_addr, h->refused,
                      sizeof h->refused);
        else if (a->family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a->addr)->sin6_addr, h->refused,
                      sizeof h->refused);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The request headers: ours, then the caller's; NULL on a bad header or ENOMEM. */
static struct curl_slist *make_headers(const struct ap_fetch_opts *o, const char *const *headers,
                                       size_t nheaders, struct diag *why)
{
    struct curl_slist *l = NULL, *t;
    char ua[512];

    if (o->site_url)
        snprintf(ua, sizeof ua, "User-Agent: nashra/%s (+%s)", o->version ? o->version : "0",
                 o->site_url);
    else
        snprintf(ua, sizeof ua, "User-Agent: nashra/%s", o->version ? o->version : "0");
    if (!(t = curl_slist_append(l, "Accept: " AP_FETCH_ACCEPT)))
        goto nomem;
    l = t;
    if (!(t = curl_slist_append(l, ua)))
        goto nomem;
    l = t;
    for (size_t i = 0; i < nheaders; i++) {
        /* A CR or LF would let a header smuggle another header or request. */
        if (!headers[i] || strpbrk(headers[i], "\r\n") || !strchr(headers[i], ':')) {
            diag_set(why, 0, 0, "bad request header #%zu", i);
            curl_slist_free_all(l);
            return NULL;
        }
        if (!(t = curl_slist_append(l, headers[i])))
            goto nomem;
        l = t;
    }
    return l;
nomem:
    diag_set(why, 0, 0, "out of memory");
    curl_slist_free_all(l);
    return NULL;
}

/* One GET, no redirect followed; fills *status and, for a 3xx, *location. */
static int fetch_hop(const struct ap_fetch_opts *o, const char *url, struct curl_slist *hdrs,
                     long left_ms, struct buf *body, long *status, char **location,
                     struct diag *why)
{
    struct hop h = {.body = body,
                    .max_body = o->max_body ? o->max_body : AP_FETCH_MAX_BODY,
                    .allow_loopback = o->allow_insecure_loopback,
                    .cancel = o->cancel};
    CURL *c = curl_easy_init();
    CURLcode cc;
    char *loc = NULL;
    int rc = AP_FETCH_E_NET;

    if (!c) {
        diag_set(why, 0, 0, "out of memory");
        return AP_FETCH_E_ARG;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, o->allow_insecure_loopback ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* never a proxy from the environment */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, left_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, left_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &h);
    if (o->cancel) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &h);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &h);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h.max_body);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (o->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);

    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (h.addr_refused) {
        diag_set(why, 0, 0, "refused to connect to forbidden address %s", h.refused);
        rc = AP_FETCH_E_ADDR;
    } else if (h.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        diag_set(why, 0, 0, "body larger than %zu bytes", h.max_body);
        rc = AP_FETCH_E_TOOBIG;
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        diag_set(why, 0, 0, "timed out");
        rc = AP_FETCH_E_TIMEOUT;
    } else if (cc == CURLE_UNSUPPORTED_PROTOCOL) {
        diag_set(why, 0, 0, "protocol refused: %.200s", url);
        rc = AP_FETCH_E_URL;
    } else if (cc != CURLE_OK) {
        diag_set(why, 0, 0, "%s", curl_easy_strerror(cc));
    } else {
        rc = AP_FETCH_OK;
        if (*status >= 300 && *status < 400 &&
            curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc) {
            *location = strdup(loc);
            if (!*location) {
                diag_set(why, 0, 0, "out of memory");
                rc = AP_FETCH_E_ARG;
            }
        }
    }
    curl_easy_cleanup(c);
    return rc;
}

int ap_fetch(const struct ap_fetch_opts *o, const char *url, const char *const *headers,
             size_t nheaders, struct buf *body_out, long *http_status, struct diag *why)
{
    long timeout = o->timeout_ms > 0 ? o->timeout_ms : AP_FETCH_TIMEOUT_MS;
    long deadline = now_ms() + timeout;
    struct curl_slist *hdrs = NULL;
    char *next = NULL, *cur = NULL;
    int rc;

    *http_status = 0;
    buf_reset(body_out);
    if (ap_fetch_url_ok(url, o->allow_insecure_loopback, why) < 0)
        return AP_FETCH_E_URL;
    if (!(hdrs = make_headers(o, headers, nheaders, why)))
        return AP_FETCH_E_ARG;
    for (int hop = 0;; hop++) {
        long left = deadline - now_ms();
        if (left <= 0) {
            diag_set(why, 0, 0, "timed out");
            rc = AP_FETCH_E_TIMEOUT;
            goto out;
        }
        buf_reset(body_out);
        *http_status = 0;
        rc = fetch_hop(o, cur ? cur : url, hdrs, left, body_out, http_status, &next, why);
        if (rc != AP_FETCH_OK || !next)
            goto out;
        /* A redirect: followed only to a place the first URL could have been. */
        if (hop == AP_FETCH_MAX_REDIRECTS) {
            diag_set(why, 0, 0, "more than %d redirects", AP_FETCH_MAX_REDIRECTS);
            rc = AP_FETCH_E_REDIRECTS;
            goto out;
        }
        if (ap_fetch_url_ok(next, o->allow_insecure_loopback, why) < 0) {
            char reason[sizeof why->msg];
            snprintf(reason, sizeof reason, "%s", why->msg);
            diag_set(why, 0, 0, "redirect refused: %.400s", reason);
            rc = AP_FETCH_E_URL;
            goto out;
        }
        free(cur);
        cur = next;
        next = NULL;
    }
out:
    free(next);
    free(cur);
    curl_slist_free_all(hdrs);
    return rc;
}
