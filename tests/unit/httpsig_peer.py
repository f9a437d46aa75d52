#!/usr/bin/python3
"""httpsig_peer: the other side of tests/unit/test_httpsig.c.

An independent implementation of HTTP signatures on Debian's
python3-cryptography, written from the specifications and from what Mastodon
sends and checks (app/lib/request.rb, app/controllers/concerns/
signature_verification.rb), so that the C module is tested against a peer and
not only against itself.

  genkey        --priv FILE --pub FILE [--bits N] [--pkcs1] [--encrypt PASS]
  sign-cavage   --key FILE --key-id ID --method M --target T --host H --now N
                [--body FILE] [--alg rsa-sha256|hs2019|none] [--headers LIST]
  sign-9421     --key FILE --key-id ID --method M --target T --host H --now N
                [--body FILE] [--components LIST] [--alg NAME|none]
                [--label L] [--created N] [--expires N] [--scheme S]
  verify-cavage --pub FILE --method M --target T --headers FILE --now N
                [--body FILE] [--max-age S]

Signers print the header lines to add ("Name: value", one a line). The
verifier prints "ok" and exits 0, or prints the reason and exits 1.
"""

import argparse
import base64
import email.utils
import hashlib
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64(data):
    return base64.b64encode(data).decode()


def imf_date(now):
    return email.utils.formatdate(now, usegmt=True)


def read_body(path):
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def load_private(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def cmd_genkey(a):
    key = rsa.generate_private_key(public_exponent=65537, key_size=a.bits)
    enc = (
        serialization.BestAvailableEncryption(a.encrypt.encode())
        if a.encrypt
        else serialization.NoEncryption()
    )
    with open(a.priv, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))
    fmt = (
        serialization.PublicFormat.PKCS1
        if a.pkcs1
        else serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with open(a.pub, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM, fmt))
    return 0


# --- draft-cavage-12, as Mastodon signs ----------------------------------------------


def cmd_sign_cavage(a):
    key = load_private(a.key)
    body = read_body(a.body)
    date = imf_date(a.now)
    values = {
        "(request-target)": f"{a.method.lower()} {a.target}",
        "host": a.host,
        "date": date,
    }
    out = [("Host", a.host), ("Date", date)]
    if body is not None:
        digest = "SHA-256=" + b64(hashlib.sha256(body).digest())
        values["digest"] = digest
        out.append(("Digest", digest))
    names = a.headers.split() if a.headers else [n for n in ("(request-target)", "host", "date", "digest") if n in values]
    string = "\n".join(f"{n}: {values[n]}" for n in names)
    sig = key.sign(string.encode(), padding.PKCS1v15(), hashes.SHA256())
    params = f'keyId="{a.key_id}",'
    if a.alg != "none":
        params += f'algorithm="{a.alg}",'
    params += f'headers="{" ".join(names)}",signature="{b64(sig)}"'
    out.append(("Signature", params))
    for name, value in out:
        print(f"{name}: {value}")
    return 0


def read_headers(path):
    """Header lines "Name: value" (CRLF or LF) into a list of (lower name, value)."""
    headers = []
    with open(path, "rb") as f:
        for line in f.read().decode().splitlines():
            if not line.strip():
                continue
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
    return headers


def joined(headers, name):
    found = [v for n, v in headers if n == name]
    return ", ".join(found) if found else None


def fail(reason):
    print(reason)
    return 1


def cmd_verify_cavage(a):
    headers = read_headers(a.headers)
    body = read_body(a.body) or b""
    with open(a.pub, "rb") as f:
        pub = serialization.load_pem_public_key(f.read())
    raw = joined(headers, "signature")
    if raw is None:
        return fail("no Signature header")
    params = dict(re.findall(r'(\w+)="([^"]*)"', raw))
    for p in ("keyId", "signature"):
        if p not in params:
            return fail(f"no {p}")
    if params.get("algorithm", "rsa-sha256") not in ("rsa-sha256", "hs2019"):
        return fail("unsupported algorithm")
    names = params.get("headers", "date").lower().split()
    # Mastodon's verify_signature_strength! and SPEC §7.
    if "(request-target)" not in names or "host" not in names:
        return fail("request-target or host not signed")
    if "date" not in names and "(created)" not in names:
        return fail("date not signed")
    if a.method.upper() == "POST" and "digest" not in names:
        return fail("digest not signed")
    date = joined(headers, "date")
    if date is None:
        return fail("no Date")
    when = email.utils.parsedate_to_datetime(date).timestamp()
    if a.now - when > a.max_age or when - a.now > 3600:
        return fail("Date out of the window")
    digest = joined(headers, "digest")
    if digest is not None:
        algs = dict(d.strip().split("=", 1) for d in digest.split(","))
        algs = {k.lower(): v for k, v in algs.items()}
        if algs.get("sha-256") != b64(hashlib.sha256(body).digest()):
            return fail("Digest does not match the body")
    cdigest = joined(headers, "content-digest")
    if cdigest is not None:
        want = "sha-256=:" + b64(hashlib.sha256(body).digest()) + ":"
        if want not in [m.strip() for m in cdigest.split(",")]:
            return fail("Content-Digest does not match the body")
    lines = []
    for n in names:
        if n == "(request-target)":
            lines.append(f"{n}: {a.method.lower()} {a.target}")
        else:
            v = joined(headers, n)
            if v is None:
                return fail(f"signed header {n} absent")
            lines.append(f"{n}: {v}")
    try:
        pub.verify(
            base64.b64decode(params["signature"], validate=True),
            "\n".join(lines).encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        return fail("signature does not verify")
    print("ok")
    return 0


# --- RFC 9421 -------------------------------------------------------------------------


def cmd_sign_9421(a):
    key = load_private(a.key)
    body = read_body(a.body)
    date = imf_date(a.now)
    authority = a.host.lower()
    path, _, query = a.target.partition("?")
    fields = {"host": a.host, "date": date}
    out = [("Host", a.host), ("Date", date)]
    if body is not None:
        cd = "sha-256=:" + b64(hashlib.sha256(body).digest()) + ":"
        fields["content-digest"] = cd
        out.append(("Content-Digest", cd))
    derived = {
        "@method": a.method.upper(),
        "@target-uri": f"{a.scheme}://{authority}{a.target}",
        "@authority": authority,
        "@scheme": a.scheme,
        "@request-target": a.target,
        "@path": path or "/",
        "@query": "?" + query,
    }
    comps = a.components.split()
    lines = [f'"{c}": {derived[c] if c.startswith("@") else fields[c]}' for c in comps]
    params = "(" + " ".join(f'"{c}"' for c in comps) + ")"
    params += f";created={a.created if a.created is not None else a.now}"
    params += f';keyid="{a.key_id}"'
    if a.alg != "none":
        params += f';alg="{a.alg}"'
    if a.expires is not None:
        params += f";expires={a.expires}"
    lines.append(f'"@signature-params": {params}')
    base = "\n".join(lines).encode()
    if a.alg == "rsa-pss-sha512":
        sig = key.sign(
            base, padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64), hashes.SHA512()
        )
    else:
        sig = key.sign(base, padding.PKCS1v15(), hashes.SHA256())
    out.append(("Signature-Input", f"{a.label}={params}"))
    out.append(("Signature", f"{a.label}=:{b64(sig)}:"))
    for name, value in out:
        print(f"{name}: {value}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("genkey")
    g.add_argument("--priv", required=True)
    g.add_argument("--pub", required=True)
    g.add_argument("--bits", type=int, default=2048)
    g.add_argument("--pkcs1", action="store_true")
    g.add_argument("--encrypt")

    def signer(name):
        s = sub.add_parser(name)
        s.add_argument("--key", required=True)
        s.add_argument("--key-id", required=True)
        s.add_argument("--method", required=True)
        s.add_argument("--target", required=True)
        s.add_argument("--host", required=True)
        s.add_argument("--now", type=int, required=True)
        s.add_argument("--body")
        return s

    c = signer("sign-cavage")
    c.add_argument("--alg", default="rsa-sha256")
    c.add_argument("--headers")

    r = signer("sign-9421")
    r.add_argument("--components", default="@method @target-uri content-digest")
    r.add_argument("--alg", default="rsa-v1_5-sha256")
    r.add_argument("--label", default="sig1")
    r.add_argument("--created", type=int)
    r.add_argument("--expires", type=int)
    r.add_argument("--scheme", default="https")

    v = sub.add_parser("verify-cavage")
    v.add_argument("--pub", required=True)
    v.add_argument("--method", required=True)
    v.add_argument("--target", required=True)
    v.add_argument("--headers", required=True)
    v.add_argument("--body")
    v.add_argument("--now", type=int, required=True)
    v.add_argument("--max-age", type=int, default=3600)

    a = ap.parse_args()
    return {
        "genkey": cmd_genkey,
        "sign-cavage": cmd_sign_cavage,
        "sign-9421": cmd_sign_9421,
        "verify-cavage": cmd_verify_cavage,
    }[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
