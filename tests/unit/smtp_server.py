#!/usr/bin/python3
"""smtp_server: a real SMTP server (aiosmtpd) for test_transport.c.

Listens on 127.0.0.1 on a free port and prints "port N" on stdout once it
accepts connections. Everything it sees goes to files in --dir, written
before the reply that acknowledges it is sent (so a client that saw the
reply can read the file):
  conns            the number of connections accepted so far
  log              one line per accepted message: "msg CONN FROM RCPT FILE"
  N.eml            the message's bytes exactly as received (dot-unstuffed)

Canned replies by recipient local part: temp* -> 451 at RCPT, perm* -> 550
at RCPT, dtemp* -> 452 after DATA, dperm* -> 554 after DATA; anything else
is accepted. A sender whose local part starts with "refused" gets 553 at
MAIL FROM. Options: --tls none|starttls|tls (--cert/--key PEM files),
--auth USER:PASS (AUTH required, and only over TLS), --data-delay SECONDS
(wait before answering the end of DATA, to see who blocks on it).
"""
import argparse
import asyncio
import logging
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

STATE = {"conns": 0, "msgs": 0}


def local_part(addr):
    return addr.split("@", 1)[0].lower()


def write_file(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class CountingSMTP(SMTP):
    """aiosmtpd's SMTP session, counting connections into DIR/conns."""

    def connection_made(self, transport):
        # aiosmtpd calls this again after STARTTLS, on the same connection.
        if self._original_transport is None:
            STATE["conns"] += 1
            self.conn_no = STATE["conns"]
            write_file(os.path.join(ARGS.dir, "conns"), b"%d\n" % STATE["conns"])
        super().connection_made(transport)
        if ARGS.tls == "tls" and self._tls_protocol is None:
            # Implicit TLS (RFC 8314): aiosmtpd only knows of STARTTLS, and
            # offers AUTH over TLS once it has a TLS protocol object.
            self._tls_protocol = transport


class Handler:
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if local_part(address).startswith("refused"):
            return "553 5.7.1 Sender address rejected"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        lp = local_part(address)
        if lp.startswith("temp"):
            return "451 4.3.0 Mailbox temporarily unavailable"
        if lp.startswith("perm"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if ARGS.data_delay:
            await asyncio.sleep(ARGS.data_delay)
        lps = [local_part(r) for r in envelope.rcpt_tos]
        if any(lp.startswith("dtemp") for lp in lps):
            return "452 4.3.1 Insufficient system storage"
        if any(lp.startswith("dperm") for lp in lps):
            return "554 5.6.0 Message content rejected"
        STATE["msgs"] += 1
        n = STATE["msgs"]
        name = "%d.eml" % n
        write_file(os.path.join(ARGS.dir, name), envelope.original_content)
        conn = getattr(server, "conn_no", 0)
        with open(os.path.join(ARGS.dir, "log"), "a") as f:
            for rcpt in envelope.rcpt_tos:
                f.write("msg %d %s %s %s\n" % (conn, envelope.mail_from or "<>", rcpt, name))
        return "250 2.0.0 OK queued as %d" % n


def authenticator(server, session, envelope, mechanism, auth_data):
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    want_user, want_pass = ARGS.auth.split(":", 1)
    ok = auth_data.login == want_user.encode() and auth_data.password == want_pass.encode()
    return AuthResult(success=ok, handled=False)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--tls", choices=["none", "starttls", "tls"], default="none")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth")
    p.add_argument("--data-delay", type=float, default=0.0)
    ARGS = p.parse_args()
    logging.basicConfig(level=logging.CRITICAL)

    ctx = None
    if ARGS.tls != "none":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(ARGS.cert, ARGS.key)

    handler = Handler()

    def factory():
        kw = {"enable_SMTPUTF8": True, "data_size_limit": 64 << 20}
        if ARGS.tls == "starttls":
            kw.update(tls_context=ctx, require_starttls=True)
        if ARGS.auth:
            kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
        return CountingSMTP(handler, **kw)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(factory, host="127.0.0.1", port=0,
                           ssl=ctx if ARGS.tls == "tls" else None))
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write("port %d\n" % port)
    sys.stdout.flush()
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
