/*
 * pkey: reading a private key file, as the actor's HTTP signatures
 * (ap/httpsig) and DKIM (mail/dkim) both need it: a regular file (no FIFO,
 * no symlink) of at most 64 KiB, readable by its owner only, an unencrypted
 * PEM RSA key of at least min_bits; the bytes read are wiped after use.
 */
#include "pkey.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX 65536 /* a private key file larger than this is not one */

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1; /* an encrypted key is an error, never a prompt on the terminal */
}

EVP_PKEY *pkey_load_private(const char *path, int min_bits, struct diag *why)
{
    EVP_PKEY *key = NULL;
    struct stat st;
    char *data = NULL;
    size_t got = 0;
    BIO *bio = NULL;
    int err = 0;

    /* O_NONBLOCK: a FIFO planted at path must not hang the daemon. */
    int fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK) : -1;
    if (fd < 0) {
        err = path ? errno : EINVAL;
        diag_set(why, 0, 0, "%s: %s", path ? path : "(null)", strerror(err));
        goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
        err = EINVAL;
        diag_set(why, 0, 0, "%s: not a regular file of at most %d bytes", path, KEY_FILE_MAX);
        goto out;
    }
    if (st.st_mode & 077) {
        err = EPERM;
        diag_set(why, 0, 0, "%s: private key readable by group or others (mode %03o): chmod 600 it",
                 path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    if (!(data = malloc((size_t)st.st_size + 1)))
        goto io;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (!(bio = BIO_new_mem_buf(data, (int)got)))
        goto io;
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (!key) {
        err = EINVAL;
        diag_set(why, 0, 0, "%s: not an unencrypted PEM private key", path);
    } else if (!EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_get_bits(key) < min_bits) {
        err = EINVAL;
        diag_set(why, 0, 0, "%s: not an RSA key of %d bits or more", path, min_bits);
        EVP_PKEY_free(key);
        key = NULL;
    }
    goto out;
io:
    err = errno ? errno : ENOMEM;
    diag_set(why, 0, 0, "%s: %s", path, strerror(err));
out:
    if (fd >= 0)
        close(fd);
    BIO_free(bio);
    if (data) {
        OPENSSL_cleanse(data, got);
        free(data);
    }
    ERR_clear_error();
    errno = key ? 0 : err;
    return key;
}
