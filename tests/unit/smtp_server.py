#!/usr/bin/python3
"""smtp_server: a real SMTP server (aiosmtpd) for test_transport.c.

Listens on 127.0.0.1 on a free port and prints "port N" on stdout once it
accepts connections. Everything it sees goes to files in --dir, written
before the reply that acknowledges it is sent (so a client that saw the
reply can read the file):
  conns            the number of connections accepted so far
  log              one line per accepted message: "msg CONN FROM RCPT FILE"
  N.eml            the message's bytes exactly as received (dot-unstuffed)
  refused          one line per recipient refused at RCPT: "CODE RCPT"

Canned replies by recipient local part: temp* -> 451 at RCPT, perm* -> 550
at RCPT, dtemp* -> 452 after DATA, dperm* -> 554 after DATA; anything else
is accepted. A sender whose local part starts with "refused" gets 553 at
MAIL FROM. Options: --tls none|starttls|tls (--cert/--key PEM files),
--auth USER:PASS (AUTH required, and only over TLS), --data-delay SECONDS
(wait before answering the end of DATA, to see who blocks on it).

For the daemon's tests (tests/integration/test_mail.py): --port N listens
on that port (a restart on the port of a stopped server; numbering of
connections and messages goes on from what --dir holds); --temp-times N
answers 451 to a temp* recipient only its first N times (then accepts it);
--no-eml keeps the log without the N.eml files (thousands of messages);
--die-in-data N: at the DATA command of the Nth message of this run the
server answers 354 and then dies (SIGKILL to itself, 50 ms later, while the
message streams in); from that DATA on no message is accepted or answered,
so whatever was in flight then is lost to the client without a reply.
SIGUSR1 stops the server cleanly: from then on every command is answered
421, a moment later each connection is closed and the process exits 0 (so
every message it accepted had its 250 read by the client).
"""
import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

STATE = {"conns": 0, "msgs": 0, "stopping": False, "datas": 0, "dying": False}
SHUTTING_DOWN = "421 4.3.2 Service shutting down"
TEMP_SEEN = {}  # temp* recipient -> times refused (--temp-times)
SESSIONS = set()  # open sessions (SIGUSR1 closes them)


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
            SESSIONS.add(self)
        super().connection_made(transport)
        if ARGS.tls == "tls" and self._tls_protocol is None:
            # Implicit TLS (RFC 8314): aiosmtpd only knows of STARTTLS, and
            # offers AUTH over TLS once it has a TLS protocol object.
            self._tls_protocol = transport

    async def smtp_DATA(self, arg):
        STATE["datas"] += 1
        if ARGS.die_in_data and STATE["datas"] == ARGS.die_in_data:
            STATE["dying"] = True
            with open(os.path.join(ARGS.dir, "died"), "w") as f:
                f.write("%d\n" % STATE["msgs"])
            asyncio.get_running_loop().call_later(
                0.05, os.kill, os.getpid(), signal.SIGKILL)
        await super().smtp_DATA(arg)

    def connection_lost(self, exc):
        SESSIONS.discard(self)
        super().connection_lost(exc)


class Handler:
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if STATE["stopping"]:
            return SHUTTING_DOWN
        if local_part(address).startswith("refused"):
            return "553 5.7.1 Sender address rejected"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if STATE["stopping"]:
            return SHUTTING_DOWN
        lp = local_part(address)
        if lp.startswith("temp"):
            TEMP_SEEN[address] = TEMP_SEEN.get(address, 0) + 1
            if not ARGS.temp_times or TEMP_SEEN[address] <= ARGS.temp_times:
                refused(451, address)
                return "451 4.3.0 Mailbox temporarily unavailable"
        if lp.startswith("perm"):
            refused(550, address)
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if ARGS.data_delay:
            await asyncio.sleep(ARGS.data_delay)
        if STATE["dying"]:  # no reply, ever: the kill comes first
            await asyncio.sleep(3600)
        if STATE["stopping"]:
            return SHUTTING_DOWN
        lps = [local_part(r) for r in envelope.rcpt_tos]
        if any(lp.startswith("dtemp") for lp in lps):
            return "452 4.3.1 Insufficient system storage"
        if any(lp.startswith("dperm") for lp in lps):
            return "554 5.6.0 Message content rejected"
        STATE["msgs"] += 1
        n = STATE["msgs"]
        name = "%d.eml" % n
        if not ARGS.no_eml:
            write_file(os.path.join(ARGS.dir, name), envelope.original_content)
        conn = getattr(server, "conn_no", 0)
        with open(os.path.join(ARGS.dir, "log"), "a") as f:
            for rcpt in envelope.rcpt_tos:
                f.write("msg %d %s %s %s\n" % (conn, envelope.mail_from or "<>", rcpt, name))
        return "250 2.0.0 OK queued as %d" % n


def refused(code, address):
    with open(os.path.join(ARGS.dir, "refused"), "a") as f:
        f.write("%d %s\n" % (code, address))


def resume_numbering():
    """Connections and messages numbered on from an earlier run in --dir."""
    try:
        with open(os.path.join(ARGS.dir, "conns")) as f:
            STATE["conns"] = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(ARGS.dir, "log")) as f:
            for line in f:
                STATE["msgs"] = max(STATE["msgs"], int(line.split()[-1].split(".")[0]))
    except (OSError, ValueError, IndexError):
        pass


def stop_cleanly(loop, server):
    """SIGUSR1: no new connection, and every command from now on is answered
    421 (so no message is accepted any more); a moment later, once the 250s
    already given have surely reached the client, each connection is closed
    and the process exits. (Closing at once lost a 250 now and then: the
    client saw the connection end, retried, and the message came twice.)"""
    STATE["stopping"] = True
    server.close()

    def close_all():
        for sess in list(SESSIONS):
            if sess.transport is not None:
                sess.transport.close()
        loop.call_later(0.2, loop.stop)
    loop.call_later(0.3, close_all)


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
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--temp-times", type=int, default=0)
    p.add_argument("--no-eml", action="store_true")
    p.add_argument("--die-in-data", type=int, default=0)
    ARGS = p.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    resume_numbering()

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
        loop.create_server(factory, host="127.0.0.1", port=ARGS.port,
                           ssl=ctx if ARGS.tls == "tls" else None))
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write("port %d\n" % port)
    sys.stdout.flush()
    loop.add_signal_handler(signal.SIGUSR1, stop_cleanly, loop, server)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
