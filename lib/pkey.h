/*
 * pkey: reading a private key file safely (see pkey.c): for the
 * ActivityPub actor's key and the DKIM key.
 */
#ifndef NASHRA_PKEY_H
#define NASHRA_PKEY_H

#include <openssl/evp.h>

#include "diag.h"

/* The RSA private key in the PEM file path, of min_bits or more; NULL with
 * why ("PATH: reason") and errno set (ENOENT when there is no file, EPERM
 * when others may read it, EINVAL when it is not such a key). */
EVP_PKEY *pkey_load_private(const char *path, int min_bits, struct diag *why);

#endif
