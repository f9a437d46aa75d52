#!/usr/bin/python3
"""Verifies a DKIM-signed message with Debian's python3-dkim (dkimpy), for
test_dkim: dkim_verify.py MESSAGE_FILE SELECTOR DOMAIN PUBKEY_BASE64.
The DNS lookup of SELECTOR._domainkey.DOMAIN answers with the given key.
Exit 0: the signature verifies; 1: it does not; 2: usage or other error."""
import sys

import dkim


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    path, selector, domain, pub = sys.argv[1:]
    with open(path, "rb") as f:
        msg = f.read()
    want = ("%s._domainkey.%s." % (selector, domain)).encode()
    record = ("v=DKIM1; k=rsa; p=%s" % pub).encode()

    def dnsfunc(name, timeout=5):
        name = name if name.endswith(b".") else name + b"."
        return record if name == want else None

    ok = dkim.verify(msg, dnsfunc=dnsfunc)
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a crash is not a verdict: 2, not 1
        print("dkim_verify.py: %r" % e, file=sys.stderr)
        sys.exit(2)
