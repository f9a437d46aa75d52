/*
 * cmd_keys: `nashra keys` shows (or creates) the ActivityPub actor's key:
 * its id and the SHA-256 fingerprint of its public half; `--rotate` makes a
 * new one (the old kept as actor.pem.old) and queues an Update of the actor
 * to every follower, so that their servers learn the new key. A running
 * daemon notices the new file within a second and signs with it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "../ap/docs.h"
#include "../ap/httpsig.h"
#include "../lib/fileio.h"
#include "../lib/timefmt.h"
#include "../store/ap_store.h"
#include "cmd.h"

static const char keys_usage[] =
    "usage: nashra keys [--rotate] [-c FILE] [-v|-q]\n"
    "\n"
    "Shows the ActivityPub actor's key (state.dir/actor.pem, made if absent):\n"
    "its id and the SHA-256 fingerprint of its public key.\n"
    "\n"
    "  --rotate  make a new key (the old one is kept as actor.pem.old) and send\n"
    "            an Update of the actor to every follower\n"
    "  -c FILE   configuration (default ./nashra.yaml)\n"
    "  --help    this text\n";

/* "SHA256:" and the hex SHA-256 of the DER SubjectPublicKeyInfo. */
static int fingerprint(EVP_PKEY *key, char *out, size_t outlen)
{
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int len = i2d_PUBKEY(key, &der);
    if (len <= 0 || !EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL)) {
        OPENSSL_free(der);
        return -1;
    }
    OPENSSL_free(der);
    size_t n = (size_t)snprintf(out, outlen, "SHA256:");
    for (unsigned i = 0; i < mdlen && n + 3 < outlen; i++)
        n += (size_t)snprintf(out + n, outlen - n, "%02x", md[i]);
    return 0;
}

static int queue_update(const struct config *cfg, EVP_PKEY *key, int64_t created);

/* A new key in actor.pem, the old one in actor.pem.old. The actor's Update
 * is queued before the new key takes the name: a running daemon sees the
 * rename, loads the key and then finds the Update waiting. */
static int rotate(const struct config *cfg, const char *keyfile, EVP_PKEY **key)
{
    struct diag d = {0};
    char *tmp = NULL, *old = NULL;
    EVP_PKEY *fresh = httpsig_key_generate(2048, &d);
    int rc = 1;
    if (!fresh || asprintf(&tmp, "%s.new", keyfile) < 0 || asprintf(&old, "%s.old", keyfile) < 0)
        goto out;
    unlink(tmp); /* a rotation that stopped half-way */
    if (httpsig_key_save(tmp, fresh, &d) < 0)
        goto out;
    struct stat sb; /* the actor's `published` is the first key's date (ap_http) */
    if (queue_update(cfg, fresh, stat(keyfile, &sb) == 0 ? (int64_t)sb.st_mtime : 0) != 0) {
        unlink(tmp);
        goto quiet;
    }
    /* The old key is kept; then the new one takes its name (rename is atomic). */
    if (rename(keyfile, old) < 0 || rename(tmp, keyfile) < 0) {
        diag_set(&d, 0, 0, "%s: %s", keyfile, strerror(errno));
        goto out;
    }
    EVP_PKEY_free(*key);
    *key = fresh;
    fresh = NULL;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "nashra keys: error: %s\n", d.msg[0] ? d.msg : "out of memory");
quiet:
    EVP_PKEY_free(fresh);
    free(tmp);
    free(old);
    return rc;
}

/* The Update of the actor (with the new key) to every follower. */
static int queue_update(const struct config *cfg, EVP_PKEY *key, int64_t created)
{
    struct diag d = {0};
    struct store *st = store_open(cfg->state.dir, 0, &d);
    struct ap_store *as = st ? ap_store_new(st) : NULL;
    struct buf pem, act;
    int64_t n = 0, id = -1;
    buf_init(&pem, 16384);
    buf_init(&act, 1u << 20);
    if (as && httpsig_pubkey_pem(key, &pem) == 0 &&
        ap_actor_update(cfg, buf_str(&pem), created, timefmt_now(), &act) == 0)
        id = ap_enqueue_followers(as, buf_str(&act), timefmt_now(), &n);
    if (id < 0)
        fprintf(stderr, "nashra keys: error: the actor's Update could not be queued: %s\n",
                st ? store_errmsg(st) : d.msg);
    else
        printf("update of the actor queued to %lld inboxes\n", (long long)n);
    buf_free(&pem);
    buf_free(&act);
    ap_store_free(as);
    store_close(st);
    return id < 0 ? 1 : 0;
}

int cmd_keys(int argc, char **argv)
{
    char **args = calloc((size_t)argc + 1, sizeof *args);
    int nargs = 0, do_rotate = 0;
    struct cmd_opts o;
    if (!args)
        return 1;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && !strcmp(argv[i], "--rotate"))
            do_rotate = 1;
        else
            args[nargs++] = argv[i];
    }
    int rc = cmd_parse(nargs, args, keys_usage, 0, &o);
    free(args);
    if (rc || o.help)
        return rc;
    struct config *cfg = cmd_config(&o);
    if (!cfg)
        return 2;
    struct diag d = {0};
    char *keyfile = path_join(cfg->state.dir, "actor.pem");
    int created = 0;
    EVP_PKEY *key = NULL;
    rc = 1;
    if (!keyfile || mkdir_p(cfg->state.dir) < 0) {
        fprintf(stderr, "nashra keys: error: %s: %s\n", cfg->state.dir, strerror(errno));
        goto out;
    }
    if (!(key = httpsig_key_load_or_create(keyfile, &created, &d))) {
        fprintf(stderr, "nashra keys: error: %s\n", d.msg);
        goto out;
    }
    if (do_rotate && !created && rotate(cfg, keyfile, &key) != 0)
        goto out;
    char fp[80];
    if (fingerprint(key, fp, sizeof fp) < 0)
        goto out;
    printf("key id: %s" AP_PATH_ACTOR AP_KEY_FRAGMENT "\n", cfg->site.url);
    printf("fingerprint: %s\n", fp);
    printf("file: %s%s\n", keyfile, created ? " (created)" : do_rotate ? " (rotated)" : "");
    rc = 0;
out:
    EVP_PKEY_free(key);
    free(keyfile);
    config_free(cfg);
    return rc;
}
