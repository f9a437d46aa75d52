"""The soak run of issue 7 (`make soak`): nashra serve for a while under
everything at once, watched for leaks and errors.

    /usr/bin/python3 tests/soak/soak.py [--seconds S] [--subscribers N]
                                        [--followers F] [--inboxes I] [--keep]

One site (../shared/corpus/posts, copied), served by `nashra serve` on a
loopback port, with:
- a post added or edited every second (alternately; every 30th new post is in
  the newsletter's category, so the list of N subscribers, default 10,000,
  gets an issue a minute, sent through 4 connections into Postfix's smtp-sink);
- F followers (default 1,000) on I shared inboxes (default 100) of a loopback
  HTTP sink that answers 202 to every POST, so each new, edited and removed
  post is delivered to them (skipped, and said, when the state has no
  followers table: ActivityPub delivery not built);
- `wrk` against /feed.xml for the whole run, and a second `wrk` against
  /ap/inbox with invalid signatures (the load test: the feeds must keep being
  served), reported apart.
Every 5 s: the daemon's RSS and open file descriptors. At the end: the first
and last minute's RSS and fds (flat = the last within 10% / 4 fds of the
first, after a minute's warm-up), wrk's figures, messages the sink took,
deliveries the inbox sink took, and every log line at level warn or error
(none may appear but those the run itself causes: the invalid signatures).
Then the load test: wrk on /feed.xml alone for 20 s, then again beside a
flood of invalid POSTs to /ap/inbox. Mail: every recipient of every issue
sent, the sink's count equal to that (up to 4 in flight at the stop).
Exit 0 when all holds, 1 when something does not, 2 on bad arguments.
"""

import argparse
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS_POSTS = os.path.join(REPO, '..', 'shared', 'corpus', 'posts')
SMTP_SINK = '/usr/sbin/smtp-sink'
WRK = '/usr/bin/wrk'
CATEGORY = 'نشرة'


def progress(msg):
    print('soak: %s' % msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def rss_fds(pid):
    with open('/proc/%d/status' % pid) as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith('VmRSS:'))
    return rss, len(os.listdir('/proc/%d/fd' % pid))


# --- the sinks ---------------------------------------------------------------

class SmtpSink:
    def __init__(self, work):
        self.port = free_port()
        self.out = os.path.join(work, 'smtp-sink.out')
        cmd = [SMTP_SINK, '-c', '-4'] + (['-u', 'nobody'] if os.geteuid() == 0 else [])
        cmd += ['127.0.0.1:%d' % self.port, '1000']
        with open(self.out, 'wb') as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        time.sleep(0.3)

    def count(self):
        with open(self.out, 'rb') as f:
            got = re.findall(rb'mesg=(\d+)', f.read())
        return int(got[-1]) if got else 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


class InboxSink:
    """Accepts every POST with 202 and counts them per path."""

    def __init__(self):
        counts = self.counts = {}
        lock = self.lock = threading.Lock()

        class H(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def do_POST(self):
                n = int(self.headers.get('Content-Length') or 0)
                self.rfile.read(n)
                with lock:
                    counts[self.path] = counts.get(self.path, 0) + 1
                self.send_response(202)
                self.send_header('Content-Length', '0')
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(('127.0.0.1', 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def total(self):
        with self.lock:
            return sum(self.counts.values())

    def stop(self):
        self.srv.shutdown()


# --- the site ------------------------------------------------------------------

def post_text(title, body, category=None, date=None):
    fm = ['title: "%s"' % title]
    if category:
        fm.append('categories: ["%s"]' % category)
    if date:
        fm.append('date: %s' % date)
    return '---\n%s\n---\n\n%s\n' % ('\n'.join(fm), body)


def write_config(path, http_port, smtp_port):
    with open(path, 'w', encoding='utf-8') as f:
        f.write('site:\n  title: "نشرة الاختبار"\n  url: https://soak.example.org\n'
                '  language: ar\n'
                'content:\n  dir: content\noutput:\n  dir: public\nstate:\n  dir: state\n'
                'http:\n  listen: "127.0.0.1:%d"\n'
                'activitypub:\n  enabled: true\n  username: news\n'
                '  allow_insecure_loopback: true\n'
                'mail:\n  transport: smtp\n'
                '  smtp: {host: 127.0.0.1, port: %d, tls: none, connections: 4, rate: 0}\n'
                '  from: "نشرة <news@soak.example.org>"\n'
                'lists:\n  - id: all\n    name: "الجميع"\n    categories: ["%s"]\n'
                % (http_port, smtp_port, CATEGORY))


def add_followers(db, n, inboxes, port):
    """Followers straight into the state (the Follow handshake has its own
    tests): n actors on `inboxes` shared inboxes of the sink."""
    con = sqlite3.connect(db)
    try:
        cols = [r[1] for r in con.execute('PRAGMA table_info(ap_followers)')]
        if not cols:
            return False
        rows = []
        for i in range(n):
            inbox = 'http://127.0.0.1:%d/i%d/inbox' % (port, i % inboxes)
            row = {'actor': 'http://127.0.0.1:%d/users/u%d' % (port, i),
                   'inbox': 'http://127.0.0.1:%d/users/u%d/inbox' % (port, i),
                   'shared_inbox': inbox, 'created': int(time.time())}
            rows.append(row)
        use = [c for c in cols if c in rows[0]]
        missing = [c for c in ('actor', 'inbox') if c not in use]
        if missing:
            raise SystemExit('soak: ap_followers table has no %s column: %s' % (missing, cols))
        con.executemany('INSERT INTO ap_followers(%s) VALUES (%s)' % (
            ', '.join(use), ', '.join('?' * len(use))), [[r[c] for c in use] for r in rows])
        con.commit()
        return True
    finally:
        con.close()


LOAD_SECONDS = 20


def run_wrk(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode()


def mail_counts(db):
    """(deliveries sent, recipients of every issue) from the state."""
    con = sqlite3.connect(db, timeout=10)
    try:
        sent = con.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'").fetchone()[0]
        total = con.execute('SELECT COALESCE(SUM(total), 0) FROM issues').fetchone()[0]
        return sent, total
    finally:
        con.close()


def main():
    ap = argparse.ArgumentParser(description='nashra soak run (issue 7).')
    ap.add_argument('--seconds', type=int, default=int(os.environ.get('SOAK_SECONDS', 600)))
    ap.add_argument('--subscribers', type=int, default=10000)
    ap.add_argument('--followers', type=int, default=1000)
    ap.add_argument('--inboxes', type=int, default=100)
    ap.add_argument('--keep', action='store_true')
    args = ap.parse_args()
    if args.seconds < 60:
        ap.error('--seconds: at least 60')
    for tool in (SMTP_SINK, WRK):
        if not os.path.exists(tool):
            print('soak: %s is missing (make soak installs it)' % tool, file=sys.stderr)
            return 1
    binary = os.environ.get('NASHRA', os.path.join(REPO, 'nashra'))
    work = tempfile.mkdtemp(prefix='nashra-soak-')
    shutil.copy(binary, os.path.join(work, 'nashra'))
    binary = os.path.join(work, 'nashra')
    site = os.path.join(work, 'site')
    shutil.copytree(CORPUS_POSTS, os.path.join(site, 'content'))
    config = os.path.join(site, 'nashra.yaml')
    smtp = SmtpSink(work)
    inbox = InboxSink()
    port = free_port()
    write_config(config, port, smtp.port)
    env = dict(os.environ, NASHRA_AP_BACKOFF_S='1', NASHRA_MAIL_BACKOFF_S='1')

    def nashra(*a):
        return subprocess.run([binary] + list(a) + ['-c', config], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)

    nashra('build')
    csv = os.path.join(work, 'subs.csv')
    with open(csv, 'w', encoding='utf-8') as f:
        f.write('email,name\n')
        for i in range(args.subscribers):
            f.write('reader%05d@example.net,قارئ %d\n' % (i, i))
    nashra('subscribers', 'import', '--list', 'all', csv)
    followers = args.followers and add_followers(
        os.path.join(site, 'state', 'nashra.db'), args.followers, args.inboxes, inbox.port)
    if args.followers and not followers:
        progress('no ap_followers table in the state: ActivityPub delivery left out')

    log_path = os.path.join(work, 'daemon.log')
    log = open(log_path, 'wb')
    d = subprocess.Popen([binary, 'serve', '-c', config], env=env, stdout=log,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            break
        except OSError:
            if d.poll() is not None or time.monotonic() > deadline:
                print(open(log_path, encoding='utf-8', errors='replace').read()[-3000:])
                return 1
            time.sleep(0.1)

    progress('%d s: a post a second, %d subscribers, %s followers, wrk on /feed.xml and '
             '/ap/inbox' % (args.seconds, args.subscribers, args.followers if followers else 0))
    lua = os.path.join(work, 'inbox.lua')
    with open(lua, 'w') as f:
        f.write('wrk.method = "POST"\n'
                'wrk.body = \'{"type":"Follow","actor":"https://evil.example/a",'
                '"object":"https://soak.example.org/ap/actor"}\'\n'
                'wrk.headers["Content-Type"] = "application/activity+json"\n'
                'wrk.headers["Signature"] = \'keyId="https://evil.example/a#k",'
                'headers="(request-target) host date",signature="AAAA"\'\n')
    wrk_feed = subprocess.Popen([WRK, '-t1', '-c8', '-d%ds' % args.seconds, '--latency',
                                 'http://127.0.0.1:%d/feed.xml' % port],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    half = args.seconds // 2
    wrk_inbox = subprocess.Popen([WRK, '-t1', '-c8', '-d%ds' % (args.seconds - half), '-s', lua,
                                  'http://127.0.0.1:%d/ap/inbox' % port],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    samples = []
    t0 = time.monotonic()
    added = edited = 0
    mine = []
    tick = 0
    while time.monotonic() - t0 < args.seconds:
        tick += 1
        if tick % 2 or not mine:
            name = 'soak/p%05d.md' % added
            cat = CATEGORY if added % 30 == 15 else None  # a minute apart, from 30 s
            path = os.path.join(site, 'content', name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + '.tmp'
            with open(tmp, 'w', encoding='utf-8') as f:
                f.write(post_text('منشور رقم %d' % added, 'نص المنشور %d.\n' % added, cat))
            os.rename(tmp, path)
            mine.append(path)
            added += 1
        else:
            path = mine[(edited * 7) % len(mine)]
            with open(path, 'a', encoding='utf-8') as f:
                f.write('\nتعديل %d.\n' % edited)
            edited += 1
        if tick % 5 == 0:
            try:
                samples.append((time.monotonic() - t0,) + rss_fds(d.pid))
            except OSError:
                break
        if d.poll() is not None:
            break
        time.sleep(max(0, tick - (time.monotonic() - t0)))
    alive = d.poll() is None
    feed_out = wrk_feed.communicate()[0].decode()
    inbox_out = wrk_inbox.communicate()[0].decode()
    # The load test: the feed alone, then the feed beside an inbox flood.
    load = {}
    if alive:
        progress('load: /feed.xml alone, then beside invalid POSTs to /ap/inbox (%d s each)'
                 % LOAD_SECONDS)
        load['alone'] = run_wrk([WRK, '-t1', '-c8', '-d%ds' % LOAD_SECONDS, '--latency',
                                 'http://127.0.0.1:%d/feed.xml' % port])
        flood = subprocess.Popen([WRK, '-t1', '-c32', '-d%ds' % (LOAD_SECONDS + 2), '-s', lua,
                                  'http://127.0.0.1:%d/ap/inbox' % port],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1)
        load['beside'] = run_wrk([WRK, '-t1', '-c8', '-d%ds' % LOAD_SECONDS, '--latency',
                                  'http://127.0.0.1:%d/feed.xml' % port])
        load['flood'] = flood.communicate()[0].decode()
    # let the last issue drain before stopping
    db = os.path.join(site, 'state', 'nashra.db')
    end = time.monotonic() + 120
    while alive and time.monotonic() < end and mail_counts(db)[0] < mail_counts(db)[1]:
        time.sleep(1)
    sent, total = mail_counts(db)
    if alive:
        d.terminate()
        d.wait(15)
    log.close()
    took = smtp.count()
    smtp.stop()
    inbox.stop()
    with open(log_path, encoding='utf-8', errors='replace') as f:
        lines = f.read().splitlines()
    bad = [x for x in lines if re.search(r'level=(warn|error)', x)]
    injected = [x for x in bad if 'event=inbox' in x or 'signature' in x]
    other = [x for x in bad if x not in injected]

    warm = [s for s in samples if s[0] >= 60]
    first = [s for s in warm if s[0] < 120] or warm[:12]
    last = warm[-12:]

    def top(xs, i):
        return max(s[i] for s in xs) if xs else 0

    rss_ok = bool(first) and top(last, 1) <= top(first, 1) * 1.10
    fd_ok = bool(first) and top(last, 2) <= top(first, 2) + 4

    def wrk_line(out, what):
        m = re.search(r'Requests/sec:\s+([\d.]+)', out)
        lat = re.search(r'Latency\s+(\S+)\s+(\S+)\s+(\S+)', out)
        codes = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
        return '%-18s %10s req/s  latency avg %s max %s  non-2xx %s' % (
            what, m.group(1) if m else '?', lat.group(1) if lat else '?',
            lat.group(3) if lat else '?', codes.group(1) if codes else 0)

    print('\nnashra soak: %d s, %d posts added, %d edits, %d subscribers, %s followers'
          % (args.seconds, added, edited, args.subscribers, args.followers if followers else 0))
    print('RSS MiB  first minute %.1f  last minute %.1f  %s'
          % (top(first, 1) / 1024, top(last, 1) / 1024, 'flat' if rss_ok else 'GROWING'))
    print('fds      first minute %d  last minute %d  %s'
          % (top(first, 2), top(last, 2), 'flat' if fd_ok else 'GROWING'))
    print(wrk_line(feed_out, 'wrk /feed.xml'))
    print(wrk_line(inbox_out, 'wrk /ap/inbox'))
    if load:
        print(wrk_line(load['alone'], 'load: feed alone'))
        print(wrk_line(load['beside'], 'load: feed+flood'))
        print(wrk_line(load['flood'], 'load: the flood'))
    mail_ok = sent == total and sent <= took <= sent + 4
    print('mail: %d of %d recipients sent; smtp-sink took %d messages %s'
          % (sent, total, took, 'ok' if mail_ok else 'MISMATCH'))
    print('activitypub: the inbox sink took %d deliveries' % inbox.total())
    print('log: %d warn/error lines caused by the run (invalid signatures), %d others'
          % (len(injected), len(other)))
    for x in other[:20]:
        print('  ' + x)
    ok = alive and rss_ok and fd_ok and mail_ok and not other
    print('result: %s' % ('PASS' if ok else 'FAIL' + ('' if alive else ' (the daemon died)')))
    if args.keep:
        print('work folder kept: %s' % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
