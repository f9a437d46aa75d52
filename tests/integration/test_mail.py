"""Newsletters end to end (SPEC §2, §3 mail and lists, §8; issue 4's "Done
when"): the real daemon (`nashra serve`) and `nashra build --deliver` send
through a real SMTP server, tests/unit/smtp_server.py (aiosmtpd) run as a
subprocess with STARTTLS on a self-signed certificate made here with openssl
(trusted through mail.smtp.ca_file) and AUTH required. The server records
every message it accepted (log: connection, envelope sender, recipient,
file) and every recipient it refused, so each test counts what each
subscriber received, and reads the deliveries in state.dir/nashra.db.

  SeedIssueTest        the seed article's issue, header by header, both parts,
                       lines <= 76, the VERP envelope sender
  ListsTest            no back catalogue; each active subscriber of each
                       matching list exactly once; pending, unsubscribed,
                       bounced and removed ones, non-matching lists, a post
                       with newsletter: false and a restart send nothing;
                       lists added to a site with a history mail none of it
  DigestTest           a daily digest at its time (the clock pinned with
                       NASHRA_NOW, through the daemon and build --deliver)
                       with the posts of its window, and none for an empty one
  CrashTest            5,000 subscribers, the daemon kill -9ed at 5 random
                       moments: everyone gets the issue, duplicates at most
                       the messages in flight (printed)
  TempPermTest         451 recipients wait in 'retry' (backoff 60 s) and 550
                       ones are failed and bounced; with a short backoff
                       (NASHRA_MAIL_BACKOFF_S) the 451 ones get through in the
                       end; never twice, 550 never retried; a retry set
                       before a restart is made after it
  ServerDownTest       the server stopped mid-send and started again on its
                       port: everyone once
  HeaderInjectionTest  CR/LF in subscriber names (CLI, CSV, the store itself)
                       and corpus/bad/header-injection.md add no header
  TemplateErrorTest    a broken list template: `nashra check` says
                       FILE:LINE:COL, the daemon names it and a SIGHUP with
                       it keeps the running config
"""

import email
import email.policy
import email.utils
import os
import random
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
from collections import Counter

from common import (REPO, Daemon, SiteTestCase, corpus, html_tag_attrs, http_get, run_nashra,
                    wait_until)

SMTP_SERVER = os.path.join(REPO, 'tests', 'unit', 'smtp_server.py')
PYTHON = '/usr/bin/python3'  # Debian's, with python3-aiosmtpd
SEED = '000_4b7e5a30f0005dac'
SMTP_USER, SMTP_PASS = 'nashra', 's3cret pass'
FROM = 'نشرة المنظمة <news@example.org>'
DOMAIN = 'example.org'
CONNECTIONS = 4

# Every header a newsletter message carries (SPEC §8), and nothing else.
TOP_HEADERS = {'from', 'to', 'subject', 'date', 'message-id', 'mime-version', 'list-id',
               'list-unsubscribe', 'list-unsubscribe-post', 'auto-submitted', 'content-type'}

CERT = KEY = None
_TMP = None


def setUpModule():
    """A self-signed certificate for 127.0.0.1 and localhost, made once."""
    global CERT, KEY, _TMP
    _TMP = tempfile.mkdtemp(prefix='nashra-it-mail-')
    CERT, KEY = os.path.join(_TMP, 'cert.pem'), os.path.join(_TMP, 'key.pem')
    p = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj',
                        '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
                        '-days', '2', '-keyout', KEY, '-out', CERT],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise AssertionError('openssl could not make a certificate: %s' % p.stderr.decode())


def tearDownModule():
    if _TMP:
        shutil.rmtree(_TMP, True)


# --- the SMTP server ------------------------------------------------------------

class SmtpServer:
    """tests/unit/smtp_server.py in a subprocess: STARTTLS with the module's
    certificate, AUTH required. start() waits for its "port N" line; a
    restart after stop() listens on the same port and records into the same
    folder (numbering goes on)."""

    def __init__(self, root, temp_times=0, no_eml=False, extra=()):
        self.dir = os.path.join(root, 'smtp')
        os.makedirs(self.dir, exist_ok=True)
        self.temp_times, self.no_eml = temp_times, no_eml
        self.extra = list(extra)  # more smtp_server.py options (test_faults)
        self.proc, self.port = None, 0
        self._seen = self._count = 0  # count(): bytes and lines of the log read
        self.err_path = os.path.join(root, 'smtp.err')

    def start(self):
        args = [PYTHON, SMTP_SERVER, '--dir', self.dir, '--tls', 'starttls', '--cert', CERT,
                '--key', KEY, '--auth', '%s:%s' % (SMTP_USER, SMTP_PASS),
                '--port', str(self.port)]
        if self.temp_times:
            args += ['--temp-times', str(self.temp_times)]
        if self.no_eml:
            args.append('--no-eml')
        args += self.extra
        with open(self.err_path, 'ab') as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=err)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline().decode() if ready else ''
        m = re.match(r'port (\d+)$', line.strip())
        if not m:
            self.kill()
            with open(self.err_path, 'rb') as f:
                err = f.read().decode('utf-8', 'replace')[-2000:]
            raise AssertionError('smtp_server.py did not start: %r\n%s' % (line, err))
        self.port = int(m.group(1))
        return self

    def stop(self):
        """SIGUSR1: every accepted message has its 250 on the wire, then the
        connections are closed and the process exits."""
        self.proc.send_signal(signal.SIGUSR1)
        self.proc.wait(10)
        self.proc.stdout.close()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None:
            self.proc.stdout.close()

    def _lines(self, name):
        try:
            with open(os.path.join(self.dir, name), encoding='utf-8') as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def records(self):
        """[(connection, envelope sender, recipient, file)] of every message
        accepted, in order."""
        out = []
        for line in self._lines('log'):
            _, conn, mail_from, rcpt, name = line.split(' ')
            out.append((int(conn), mail_from, rcpt, name))
        return out

    def count(self):
        """Messages accepted so far; read on from where the last call stopped
        (the crash test asks every few milliseconds)."""
        path = os.path.join(self.dir, 'log')
        try:
            with open(path, 'rb') as f:
                f.seek(self._seen)
                data = f.read()
        except FileNotFoundError:
            return 0
        whole = data.rfind(b'\n') + 1
        self._seen += whole
        self._count += data.count(b'\n', 0, whole)
        return self._count

    def refused(self):
        """[(code, recipient)] of every RCPT refused."""
        return [(int(c), r) for c, r in (l.split(' ', 1) for l in self._lines('refused'))]

    def raw(self, name):
        with open(os.path.join(self.dir, name), 'rb') as f:
            return f.read()


# --- helpers ----------------------------------------------------------------------

def mail_config(port, lists, **smtp):
    cfg = {
        'http': {'listen': '127.0.0.1:0'},
        'mail': {
            'transport': 'smtp',
            'from': FROM,
            'smtp': dict({'host': '127.0.0.1', 'port': port, 'tls': 'starttls',
                          'username': SMTP_USER, 'password': SMTP_PASS, 'ca_file': CERT,
                          'connections': CONNECTIONS, 'rate': 0, 'timeout': 10}, **smtp),
        },
        'lists': lists,
    }
    return cfg


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def norm(s):
    """White space runs as one space (the text part is wrapped)."""
    return re.sub(r'\s+', ' ', s).strip()


def paragraphs(text):
    blocks = re.split(r'\n[ \t]*\n', text.replace('\r\n', '\n'))
    return [b.strip('\n') for b in blocks if b.strip()]


def post_md(title, categories=None, extra='', body='نص المنشور الجديد.'):
    fm = 'title: "%s"\n' % title
    if categories is not None:
        fm += 'categories: [%s]\n' % ', '.join('"%s"' % c for c in categories)
    return '---\n%s%s---\n%s\n' % (fm, extra, body)


class MailCase(SiteTestCase):
    def smtp(self, **kw):
        root = tempfile.mkdtemp(prefix='nashra-it-smtp-', dir='/tmp')
        self.addCleanup(shutil.rmtree, root, True)
        srv = SmtpServer(root, **kw).start()
        self.addCleanup(srv.kill)
        return srv

    def daemon(self, site, env=None):
        d = Daemon(site, env=env)
        self.addCleanup(d.kill)
        return d.start()

    @staticmethod
    def status(d):
        """What a failed wait shows: whether the daemon still runs, its log."""
        def detail():
            rc = d.proc.poll() if d.proc else None
            return '--- nashra serve: %s\n%s' % (
                'running' if rc is None else 'exited with %s' % rc, d.tail())
        return detail

    def subscribers(self, site, action, lst, *args, ok=(0,)):
        res = run_nashra(['subscribers', action, '-c', site.config_path, '--list', lst] +
                         list(args), now=None)
        self.assertIn(res.rc, ok, res.describe())
        return res

    def import_csv(self, site, lst, text, *flags):
        path = os.path.join(site.root, 'import-%s-%d.csv' % (lst, time.monotonic_ns()))
        with open(path, 'w', encoding='utf-8', newline='') as f:
            f.write(text)
        return self.subscribers(site, 'import', lst, *(list(flags) + [path]))

    def drop(self, site, rel, data):
        """A new post as editors save it: written under a hidden name (which
        nashra ignores), then renamed into place."""
        tmp = site.path(os.path.join(os.path.dirname(rel), '.incoming-' + os.path.basename(rel)))
        site.write(os.path.relpath(tmp, site.content), data)
        os.rename(tmp, site.path(rel))

    def sub_ids(self, site):
        return {e.lower(): (i, l) for i, e, l in site.db('SELECT id, email, list FROM subscribers')}

    def deliveries(self, site):
        """{(list, email): (state, attempts, code, next_try, error)}."""
        return {(l, e.lower()): (st, a, c, n, err) for l, e, st, a, c, n, err in site.db(
            'SELECT i.list, s.email, d.state, d.attempts, d.code, d.next_try, d.error '
            'FROM deliveries d JOIN issues i ON i.id = d.issue '
            'JOIN subscribers s ON s.id = d.subscriber')}

    def open_deliveries(self, site):
        return site.db("SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'retry')")[0][0]

    def wait_sent(self, site, srv, n, timeout=20.0, detail=None):
        """Until the server has n messages and no delivery is pending."""
        def done():
            return (srv.count() >= n and self.open_deliveries(site) == 0 and
                    site.db('SELECT COUNT(*) FROM deliveries')[0][0] > 0)
        wait_until(done, timeout, interval=0.05,
                   what='%d messages at the server (has %d)' % (n, srv.count()), detail=detail)

    def assertWellFormed(self, raw, where):
        """Parses cleanly, CRLF everywhere, no line over 76, ASCII headers."""
        self.assertEqual(raw.count(b'\n'), raw.count(b'\r\n'), '%s: a bare LF' % where)
        long_lines = [l for l in raw.split(b'\r\n') if len(l) > 76]
        self.assertEqual(long_lines, [], '%s: lines over 76 characters' % where)
        head = raw.split(b'\r\n\r\n', 1)[0]
        head.decode('ascii')  # raises on a raw 8-bit header
        m = parse(raw)
        self.assertEqual(m.defects, [], where)
        for part in m.walk():
            self.assertEqual(part.defects, [], '%s: %s' % (where, part.get_content_type()))
        return m


# --- 1: the seed article's issue ---------------------------------------------------

class SeedIssueTest(MailCase):
    def test_seed_issue(self):
        srv = self.smtp()
        lists = [{'id': 'news', 'name': 'أخبار المنظمة', 'mode': 'each'}]
        site = self.site(mail_config(srv.port, lists), posts=False)
        people = {'sara@example.org': 'سارة العتيبي', 'omar@example.org': ''}
        for addr, name in people.items():
            self.subscribers(site, 'add', 'news', addr, *([name] if name else []))
        self.import_csv(site, 'news', 'email,name,city\r\n'
                        'ahmed@example.org,"أحمد بن علي, الابن",الرياض\r\n'
                        'layla@example.org,ليلى,جدة\r\n'
                        'John.Smith@Example.ORG,John Smith,London\r\n')
        people.update({'ahmed@example.org': 'أحمد بن علي, الابن', 'layla@example.org': 'ليلى',
                       'John.Smith@example.org': 'John Smith'})

        d = self.daemon(site)
        with open(corpus('seed', SEED + '.txt'), 'rb') as f:
            seed = f.read()
        self.drop(site, SEED + '.txt', seed)
        self.wait_sent(site, srv, len(people), detail=self.status(d))
        time.sleep(0.3)  # nothing more comes

        paras = paragraphs(seed.decode('utf-8'))
        title = paras[0].split('\n')[0]
        recs = srv.records()
        self.assertEqual(sorted(r[2] for r in recs), sorted(people), 'each subscriber once')
        (issue,), = site.db('SELECT id FROM issues')
        ids = self.sub_ids(site)
        now = time.time()
        message_ids, tokens = set(), set()
        for conn, mail_from, rcpt, name in recs:
            raw = srv.raw(name)
            m = self.assertWellFormed(raw, rcpt)
            sub_id = ids[rcpt.lower()][0]
            # envelope: VERP naming the issue and the subscriber, with a MAC
            # (mail/newsletter.h: a forged bounce cannot name a subscriber)
            self.assertRegex(mail_from, r'^bounces\+%d\.%d\.[0-9a-f]{12}@%s$' % (
                issue, sub_id, re.escape(DOMAIN)))
            # headers
            self.assertEqual(m['Subject'], title)
            self.assertRegex(raw.decode('ascii', 'replace'), r'(?m)^Subject: =\?UTF-8\?[BQ]\?',
                             'the Arabic subject is RFC 2047 encoded')
            self.assertEqual(m['From'].addresses[0].display_name, 'نشرة المنظمة')
            self.assertEqual(m['From'].addresses[0].addr_spec, 'news@example.org')
            to = m['To'].addresses
            self.assertEqual(len(to), 1)
            self.assertEqual(to[0].addr_spec, rcpt)
            self.assertEqual(to[0].display_name, people[rcpt])
            self.assertEqual(str(m['List-Id']), 'أخبار المنظمة <news.%s>' % DOMAIN)
            links = re.findall(r'<([^<>]+)>', str(m['List-Unsubscribe']))
            self.assertEqual(len(links), 2, m['List-Unsubscribe'])
            https = [l for l in links if l.startswith('https://news.example.org/unsubscribe?t=')]
            mailto = [l for l in links if l.startswith('mailto:news@example.org?subject=')]
            self.assertEqual(len(https), 1, links)
            self.assertEqual(len(mailto), 1, links)
            token = https[0].split('?t=', 1)[1]
            self.assertRegex(token, r'^%d\.[0-9a-f]{20}$' % sub_id)
            self.assertTrue(mailto[0].endswith(token), 'one token in both links')
            tokens.add(token)
            self.assertEqual(m['List-Unsubscribe-Post'], 'List-Unsubscribe=One-Click')
            self.assertEqual(m['Auto-Submitted'], 'auto-generated')
            self.assertEqual(m['MIME-Version'], '1.0')
            self.assertRegex(m['Message-ID'], r'^<[^<>@\s]+@example\.org>$')
            message_ids.add(m['Message-ID'])
            date = email.utils.parsedate_to_datetime(m['Date']).timestamp()
            self.assertLess(abs(date - now), 300, m['Date'])
            self.assertEqual({k.lower() for k in m.keys()}, TOP_HEADERS)
            # body: multipart/alternative of text/plain then text/html, UTF-8
            self.assertEqual(m.get_content_type(), 'multipart/alternative')
            parts = list(m.iter_parts())
            self.assertEqual([p.get_content_type() for p in parts], ['text/plain', 'text/html'])
            for p in parts:
                self.assertEqual(p.get_content_charset(), 'utf-8')
                self.assertIn(p['Content-Transfer-Encoding'], ('base64', 'quoted-printable'))
                self.assertEqual(p['Content-Transfer-Encoding'], 'base64',
                                 'Arabic text is shorter in base64')
            text, html = parts[0].get_content(), parts[1].get_content()
            self.assertEqual(html_tag_attrs(html, 'html').get('dir'), 'rtl')
            self.assertEqual(html_tag_attrs(html, 'html').get('lang'), 'ar')
            self.assertIn('direction:rtl', html_tag_attrs(html, 'body').get('style', ''))
            ntext = norm(text)
            for i, p in enumerate(paras):
                self.assertIn(norm(p), ntext, '%s: paragraph %d of the seed in the text part'
                              % (rcpt, i + 1))
            if people[rcpt]:
                self.assertIn(people[rcpt], ntext, 'the greeting names the subscriber')
            self.assertIn(token, text, 'the text part has the unsubscribe link')
        self.assertEqual(len(message_ids), len(people), 'Message-IDs are unique')
        self.assertEqual(len(tokens), len(people), 'unsubscribe tokens are per subscriber')
        self.assertEqual(set(self.deliveries(site).values()),
                         {('sent', 1, None, 0, None)}, 'every delivery sent, on the first try')
        metrics = http_get(d.port, '/metrics').text()
        self.assertRegex(metrics, r'(?m)^nashra_mail_sent_total %d$' % len(people))


# --- 2: who gets what ----------------------------------------------------------------

class ListsTest(MailCase):
    def test_lists_and_states(self):
        srv = self.smtp()
        lists = [{'id': 'activities', 'name': 'نشاطات', 'categories': ['نشاطات']},
                 {'id': 'sports', 'name': 'رياضة', 'categories': ['رياضة']},
                 {'id': 'all', 'name': 'كل شيء'},
                 {'id': 'weekly', 'name': 'الأسبوعية', 'mode': 'digest',
                  'schedule': 'weekly mon 08:00'}]
        site = self.site(mail_config(srv.port, lists), posts=True)
        for addr, name in (('a1@example.org', 'علي'), ('a2@example.org', 'منى')):
            self.subscribers(site, 'add', 'activities', addr, name)
        self.subscribers(site, 'add', 'activities', 'gone@example.org')
        self.subscribers(site, 'remove', 'activities', 'gone@example.org')
        # states from the CSV (no --pending: no confirmation mail is sent)
        self.import_csv(site, 'activities', 'email,name,state\n'
                        'a3@example.org,سلمى,\n'
                        'pending@example.org,,pending\n'
                        'left@example.org,غادر,unsubscribed\n'
                        'bounced@example.org,ارتد,bounced\n')
        self.subscribers(site, 'add', 'sports', 's1@example.org', 'رياضي')
        self.subscribers(site, 'add', 'all', 'x1@example.org', 'الكل')
        self.subscribers(site, 'add', 'all', 'a1@example.org', 'علي')  # on two lists
        self.subscribers(site, 'add', 'weekly', 'w1@example.org')

        d = self.daemon(site)
        # The back catalogue (5 published posts) is not mailed.
        time.sleep(1.0)
        self.assertEqual(srv.records(), [], 'starting on existing posts mails nobody')
        self.assertEqual(site.db('SELECT COUNT(*) FROM issues')[0][0], 0)

        def got():
            issue_list = dict(site.db('SELECT id, list FROM issues'))
            out = Counter()
            for _, mail_from, rcpt, _ in srv.records():
                issue = int(re.match(r'bounces\+(\d+)\.', mail_from).group(1))
                out[(issue_list[issue], rcpt)] += 1
            return out

        self.drop(site, 'new-activity.md', post_md('ملتقى جديد', ['نشاطات']))
        want = Counter({('activities', 'a1@example.org'): 1, ('activities', 'a2@example.org'): 1,
                        ('activities', 'a3@example.org'): 1, ('all', 'x1@example.org'): 1,
                        ('all', 'a1@example.org'): 1})
        self.wait_sent(site, srv, sum(want.values()), detail=self.status(d))
        self.assertEqual(got(), want)
        self.assertEqual(sorted(site.db('SELECT list, total FROM issues')),
                         [('activities', 3), ('all', 2)])

        # newsletter: false mails nobody; a post of another category goes
        # to its list (and to the list of every post) only.
        self.drop(site, 'quiet.md', post_md('بلا نشرة', ['نشاطات'], 'newsletter: false\n'))
        wait_until(lambda: site.db("SELECT COUNT(*) FROM announcements WHERE slug = 'quiet'")[0][0],
                   10, what='the quiet post announced', detail=self.status(d))
        self.drop(site, 'match.md', post_md('مباراة', ['رياضة']))
        want.update({('sports', 's1@example.org'): 1, ('all', 'x1@example.org'): 1,
                     ('all', 'a1@example.org'): 1})
        self.wait_sent(site, srv, sum(want.values()), detail=self.status(d))
        # A restart announces nothing again: nothing goes twice.
        d.stop()
        d.start()
        time.sleep(1.0)
        self.assertEqual(got(), want)
        self.assertEqual(site.db("SELECT COUNT(*) FROM issues WHERE post = 'quiet.md'")[0][0], 0)
        self.assertEqual(site.db("SELECT COUNT(*) FROM issues WHERE list = 'weekly'")[0][0], 0,
                         'a digest waits for its time')
        never = {'pending@example.org', 'left@example.org', 'bounced@example.org',
                 'gone@example.org', 'w1@example.org'}
        self.assertEqual(never & {r for _, r in got()}, set())


    def test_lists_added_to_a_site_with_history(self):
        """Announcements made before the site had lists are not mailed when
        lists are added (the sender reads the log from its end the first
        time, then from its cursor)."""
        site = self.site(posts=True)
        self.assertEqual(site.build().rc, 0)
        for i in range(3):
            site.write('later-%d.md' % i, post_md('لاحق %d' % i))
            self.assertEqual(site.build().rc, 0)
        self.assertEqual(len(site.announcements()), 3)
        site.write_config({'lists': [{'id': 'all'}]})
        self.subscribers(site, 'add', 'all', 'reader@example.org')
        res = run_nashra(['build', '--deliver', '-c', site.config_path])
        self.assertEqual(res.rc, 0, res.describe())
        self.assertEqual(site.db('SELECT COUNT(*) FROM issues')[0][0], 0, res.err)
        # what is published from now on is mailed, once
        site.write('fresh.md', post_md('جديد'))
        for _ in range(2):
            res = run_nashra(['build', '--deliver', '-c', site.config_path])
            self.assertEqual(res.rc, 0, res.describe())
        self.assertEqual(site.db('SELECT post, total FROM issues'), [('fresh.md', 1)])
        outbox = os.path.join(site.state, 'outbox', 'new')
        self.assertEqual(len(os.listdir(outbox)), 1)


# --- 2: digests --------------------------------------------------------------------

class DigestTest(MailCase):
    def test_daily_digest(self):
        srv = self.smtp()
        lists = [{'id': 'daily', 'name': 'الملخص اليومي', 'mode': 'digest',
                  'schedule': 'daily 08:00'}]          # 08:00 in Asia/Riyadh is 05:00Z
        site = self.site(mail_config(srv.port, lists), posts=True)
        self.subscribers(site, 'add', 'daily', 'd1@example.org', 'دانة')
        self.subscribers(site, 'add', 'daily', 'd2@example.org', 'Dan')

        def deliver(now):
            res = run_nashra(['build', '--deliver', '-c', site.config_path], now=now)
            self.assertEqual(res.rc, 0, res.describe())
            return res

        def messages(after):
            return [(r[2], parse(srv.raw(r[3]))) for r in srv.records()[after:]]

        # First sight of the list (and of the back catalogue): its first
        # window starts now, 2026-01-05 00:00Z.
        deliver('2026-01-05T00:00:00Z')
        # The daemon, its clock pinned at 01:00Z: a new post, announced.
        d = Daemon(site, env={'NASHRA_NOW': '2026-01-05T01:00:00Z'})
        self.addCleanup(d.kill)
        d.start()
        self.drop(site, 'first.md', post_md('الخبر الأول', body='نص الخبر الأول.'))
        d.wait_log(r'event=announce kind=published slug=first\b')
        d.stop()
        # build, 03:00Z: a second post.
        self.drop(site, 'second.md', post_md('الخبر الثاني', body='نص الخبر الثاني.'))
        deliver('2026-01-05T03:00:00Z')
        self.assertEqual(srv.count(), 0, 'the digest is not due before 05:00Z')
        # The daemon past 05:00Z closes the window and sends it.
        d.env['NASHRA_NOW'] = '2026-01-05T05:00:30Z'
        d.start()
        self.wait_sent(site, srv, 2, detail=self.status(d))
        d.stop()
        first = messages(0)
        self.assertEqual(sorted(r for r, _ in first), ['d1@example.org', 'd2@example.org'])
        for rcpt, m in first:
            self.assertEqual(m['Subject'], 'الملخص اليومي', 'a digest has a subject')
            self.assertEqual(str(m['List-Id']), 'الملخص اليومي <daily.%s>' % DOMAIN)
            html = m.get_body(('html',)).get_content()
            text = norm(m.get_body(('plain',)).get_content())
            for t in ('الخبر الأول', 'الخبر الثاني', 'نص الخبر الأول.', 'نص الخبر الثاني.'):
                self.assertIn(t, text, rcpt)
            self.assertLess(html.index('الخبر الثاني'), html.index('الخبر الأول'), 'newest first')
            self.assertNotIn('dco-diplomatic-forum', html, 'no back catalogue')
        self.assertEqual(site.db("SELECT window_from, window_to FROM issues"),
                         [(1767571200, 1767589200)])   # [00:00Z, 05:00Z) of 2026-01-05

        # A third post after the first window: in the second digest only,
        # which goes out at its time (05:00Z the next day), not before.
        self.drop(site, 'third.md', post_md('الخبر الثالث', body='نص الخبر الثالث.'))
        deliver('2026-01-05T06:00:00Z')
        deliver('2026-01-06T04:59:59Z')
        self.assertEqual(srv.count(), 2)
        deliver('2026-01-06T05:00:00Z')
        second = messages(2)
        self.assertEqual(sorted(r for r, _ in second), ['d1@example.org', 'd2@example.org'])
        for rcpt, m in second:
            text = norm(m.get_body(('plain',)).get_content())
            self.assertIn('الخبر الثالث', text)
            self.assertNotIn('الخبر الأول', text)
            self.assertNotIn('الخبر الثاني', text)
        # Two empty windows later: no issue, no mail.
        deliver('2026-01-08T06:00:00Z')
        self.assertEqual(srv.count(), 4)
        self.assertEqual(site.db('SELECT COUNT(*) FROM issues')[0][0], 2)
        self.assertEqual(self.open_deliveries(site), 0)


# --- 3: kill -9 during a send ---------------------------------------------------------

class CrashTest(MailCase):
    SUBSCRIBERS = 5000
    KILLS = 5

    def test_kill_during_send(self):
        """Bound: a delivery is marked sent by one autocommit UPDATE as soon as
        the server's 250 to the end of DATA is read; the transport holds at
        most `connections` messages at a time. So a kill -9 repeats at most
        the `connections` messages the server had accepted (or was accepting)
        and the daemon had not yet recorded: duplicates <= kills x
        connections, with no slack needed (SQLite's WAL keeps a committed
        UPDATE across a killed process; only a power loss could undo one)."""
        srv = self.smtp(no_eml=True)
        site = self.site(mail_config(srv.port, [{'id': 'all', 'name': 'الجميع'}]), posts=False)
        rows = ['email,name'] + ['user%04d@example.org,مشترك رقم %d' % (i, i)
                                 for i in range(self.SUBSCRIBERS)]
        res = self.import_csv(site, 'all', '\n'.join(rows) + '\n')
        self.assertIn('added %d' % self.SUBSCRIBERS, res.out)
        everyone = {'user%04d@example.org' % i for i in range(self.SUBSCRIBERS)}

        seed = int(os.environ.get('NASHRA_CRASH_SEED', random.randrange(1 << 30)))
        rnd = random.Random(seed)
        marks = sorted(rnd.sample(range(200, self.SUBSCRIBERS - 300), self.KILLS))
        d = self.daemon(site)
        self.drop(site, 'big-news.md', post_md('خبر للجميع', body='نص قصير للجميع.'))
        at_kill = []
        for mark in marks:
            wait_until(lambda: srv.count() >= mark, 30, interval=0.005,
                       what='%d messages before a kill' % mark, detail=self.status(d))
            d.proc.kill()  # SIGKILL, mid-send
            d.proc.wait(10)
            at_kill.append(srv.count())
            d.start()
        self.wait_sent(site, srv, self.SUBSCRIBERS, timeout=60, detail=self.status(d))

        got = Counter(r[2] for r in srv.records())
        missing = everyone - set(got)
        dups = sum(n - 1 for n in got.values())
        bound = self.KILLS * CONNECTIONS
        print('\ncrash test (seed %d): %d subscribers, kill -9 after %s messages: '
              '%d duplicates (bound %d = %d kills x %d connections), %d missing'
              % (seed, self.SUBSCRIBERS, at_kill, dups, bound, self.KILLS, CONNECTIONS,
                 len(missing)), file=sys.stderr)
        self.assertEqual(missing, set(), 'every subscriber received the issue')
        self.assertEqual(set(got) - everyone, set())
        self.assertLessEqual(dups, bound, 'duplicates: %s' % [r for r, n in got.items() if n > 1])
        self.assertEqual(site.db('SELECT COUNT(*), total FROM issues'), [(1, self.SUBSCRIBERS)])
        self.assertEqual(site.db("SELECT state, COUNT(*) FROM deliveries GROUP BY state"),
                         [('sent', self.SUBSCRIBERS)])


# --- 4: 451, 550, and the server down ----------------------------------------------------

class TempPermTest(MailCase):
    PEOPLE = ['ok1@example.org', 'ok2@example.org', 'ok3@example.org', 'temp1@example.org',
              'temp2@example.org', 'perm1@example.org', 'perm2@example.org']

    def setup_site(self, srv):
        site = self.site(mail_config(srv.port, [{'id': 'news', 'name': 'أخبار'}]), posts=False)
        self.import_csv(site, 'news', 'email,name\n' + ''.join(
            '%s,%s\n' % (a, a.split('@')[0]) for a in self.PEOPLE))
        return site

    def test_451_waits_550_fails(self):
        """The default backoff (60 s): a 451 recipient is put back for later,
        not marked sent; a 550 one is failed and bounced at once."""
        srv = self.smtp()
        site = self.setup_site(srv)
        d = self.daemon(site)
        t0 = int(time.time())
        self.drop(site, 'post.md', post_md('خبر'))

        def settled():
            dl = self.deliveries(site)
            return len(dl) == len(self.PEOPLE) and all(
                v[0] != 'pending' for v in dl.values()) and dl
        dl = wait_until(settled, 20, what='every delivery answered', detail=self.status(d))
        time.sleep(1.0)  # a retry now would be early
        dl = self.deliveries(site)
        for a in ('ok1@example.org', 'ok2@example.org', 'ok3@example.org'):
            self.assertEqual(dl[('news', a)][:2], ('sent', 1))
        for a in ('temp1@example.org', 'temp2@example.org'):
            state, attempts, code, next_try, _ = dl[('news', a)]
            self.assertEqual((state, attempts, code), ('retry', 1, 451), a)
            self.assertGreaterEqual(next_try, t0 + 50, 'backoff starts near 60 s')
            self.assertLessEqual(next_try, int(time.time()) + 61)
        for a in ('perm1@example.org', 'perm2@example.org'):
            self.assertEqual(dl[('news', a)][:3], ('failed', 1, 550), a)
        states = dict(site.db('SELECT email, state FROM subscribers'))
        self.assertEqual({a for a, s in states.items() if s == 'bounced'},
                         {'perm1@example.org', 'perm2@example.org'}, '550 is a hard bounce')
        self.assertEqual(sorted(r[2] for r in srv.records()),
                         ['ok1@example.org', 'ok2@example.org', 'ok3@example.org'])
        self.assertEqual(Counter(srv.refused()),
                         Counter({(451, 'temp1@example.org'): 1, (451, 'temp2@example.org'): 1,
                                  (550, 'perm1@example.org'): 1, (550, 'perm2@example.org'): 1}))

    def test_451_delivered_in_the_end(self):
        """NASHRA_MAIL_BACKOFF_S=1 (retries after 1 s, then 2 s); the server
        refuses temp* twice, then takes them."""
        srv = self.smtp(temp_times=2)
        site = self.setup_site(srv)
        d = self.daemon(site, env={'NASHRA_MAIL_BACKOFF_S': '1'})
        self.drop(site, 'post.md', post_md('خبر'))
        self.wait_sent(site, srv, 5, timeout=30, detail=self.status(d))
        got = Counter(r[2] for r in srv.records())
        self.assertEqual(got, Counter({a: 1 for a in self.PEOPLE if not a.startswith('perm')}),
                         'all but the 550 ones, each once')
        dl = self.deliveries(site)
        self.assertEqual(dl[('news', 'temp1@example.org')][:2], ('sent', 3))
        self.assertEqual(dl[('news', 'temp2@example.org')][:2], ('sent', 3))
        self.assertEqual(dl[('news', 'perm1@example.org')][:3], ('failed', 1, 550))
        refused = Counter(srv.refused())
        self.assertEqual(refused[(451, 'temp1@example.org')], 2)
        self.assertEqual(refused[(550, 'perm1@example.org')], 1, '550 never retried')
        self.assertEqual(refused[(550, 'perm2@example.org')], 1, '550 never retried')


    def test_retry_survives_restart(self):
        """A retry set before a restart is made after it, with nothing else
        to wake the sender (it was forgotten: only a new issue or a new
        failure woke it)."""
        srv = self.smtp(temp_times=1)
        site = self.setup_site(srv)
        env = {'NASHRA_MAIL_BACKOFF_S': '3'}
        d = self.daemon(site, env=env)
        self.drop(site, 'post.md', post_md('خبر'))
        # the kill comes once nothing is in flight (the others recorded sent): a
        # message in flight at a kill may be sent again, which is allowed, and
        # not what this test is about
        wait_until(lambda: site.db("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
                   == [('failed', 2), ('retry', 2), ('sent', 3)], 20,
                   what='the 451 recipients put back, the others sent', detail=self.status(d))
        d.proc.kill()
        d.proc.wait(10)
        d.start()
        self.wait_sent(site, srv, 5, timeout=20, detail=self.status(d))
        got = Counter(r[2] for r in srv.records())
        self.assertEqual(got['temp1@example.org'], 1)
        self.assertEqual(got['temp2@example.org'], 1)
        self.assertEqual(max(got.values()), 1)


class ServerDownTest(MailCase):
    SUBSCRIBERS = 400

    def test_server_down_mid_send(self):
        srv = self.smtp(no_eml=True)
        site = self.site(mail_config(srv.port, [{'id': 'news'}]), posts=False)
        everyone = ['reader%03d@example.org' % i for i in range(self.SUBSCRIBERS)]
        self.import_csv(site, 'news', 'email\n' + '\n'.join(everyone) + '\n')
        d = self.daemon(site, env={'NASHRA_MAIL_BACKOFF_S': '1'})
        self.drop(site, 'post.md', post_md('خبر'))
        wait_until(lambda: srv.count() >= 60, 20, interval=0.005, what='a first part sent',
                   detail=self.status(d))
        srv.stop()
        down_at = srv.count()
        # While it is down the queue goes on being tried, and put back.
        wait_until(lambda: site.db("SELECT COUNT(*) FROM deliveries WHERE state = 'retry'")[0][0],
                   10, what='deliveries put back while the server is down', detail=self.status(d))
        time.sleep(1.5)
        self.assertEqual(srv.count(), down_at)
        srv.start()  # the same port
        self.wait_sent(site, srv, self.SUBSCRIBERS, timeout=40, detail=self.status(d))
        got = Counter(r[2] for r in srv.records())
        self.assertEqual(set(got), set(everyone), 'everyone in the end')
        self.assertEqual([r for r, n in got.items() if n > 1], [], 'nobody twice')
        self.assertLess(down_at, self.SUBSCRIBERS, 'the server went down mid-send')
        self.assertEqual(site.db("SELECT state, COUNT(*) FROM deliveries GROUP BY state"),
                         [('sent', self.SUBSCRIBERS)])


# --- 5: header injection ---------------------------------------------------------------

class HeaderInjectionTest(MailCase):
    def test_names_and_titles_add_no_header(self):
        srv = self.smtp()
        lists = [{'id': 'news', 'name': 'أخبار',
                  'subject': '{{post.title}} / {{subscriber.name}}'}]
        site = self.site(mail_config(srv.port, lists), posts=False)
        # through the CLI (which cleans names), a CSV (a quoted CRLF), and
        # the store itself (as if another writer had put it there)
        self.subscribers(site, 'add', 'news', 'eve@example.org', 'Eve\r\nBcc: x@evil.example')
        self.import_csv(site, 'news', 'email,name,note\r\n'
                        'mallory@example.org,"Mallory\r\nBcc: y@evil.example","a\r\nb"\r\n')
        self.subscribers(site, 'add', 'news', 'trent@example.org', 'Trent')
        con_name = 'Trent\r\nBcc: z@evil.example\r\nX-Injected: yes'
        con = sqlite3.connect(site.db_path)
        con.execute('UPDATE subscribers SET name = ? WHERE email = ?',
                    (con_name, 'trent@example.org'))
        con.commit()
        con.close()

        d = self.daemon(site)
        with open(corpus('bad', 'header-injection.md'), 'rb') as f:
            self.drop(site, 'header-injection.md', f.read())
        self.wait_sent(site, srv, 3, detail=self.status(d))
        time.sleep(0.3)
        recs = srv.records()
        self.assertEqual(sorted(r[2] for r in recs),
                         ['eve@example.org', 'mallory@example.org', 'trent@example.org'],
                         'no extra recipient')
        for _, _, rcpt, name in recs:
            raw = srv.raw(name)
            m = self.assertWellFormed(raw, rcpt)
            self.assertEqual({k.lower() for k in m.keys()}, TOP_HEADERS, rcpt)
            self.assertEqual(Counter(k.lower() for k in m.keys()),
                             Counter({h: 1 for h in TOP_HEADERS}), 'each header once')
            head = raw.split(b'\r\n\r\n', 1)[0].decode('ascii')
            for line in head.split('\r\n'):
                if line[:1] in (' ', '\t'):
                    continue
                self.assertIn(line.split(':', 1)[0].lower(), TOP_HEADERS, line)
            for part in m.iter_parts():
                self.assertEqual(set(k.lower() for k in part.keys()),
                                 {'content-type', 'content-transfer-encoding'})
            for h in ('Subject', 'To', 'List-Id'):
                v = str(m[h])
                self.assertNotRegex(v, r'[\r\n]', h)
            self.assertIn('Bcc: victim@example.com', m['Subject'], 'the title stays text')
            self.assertEqual(m['To'].addresses[0].addr_spec, rcpt)
            self.assertNotIn('\n', m['To'].addresses[0].display_name)


# --- 6: template errors ----------------------------------------------------------------

class TemplateErrorTest(MailCase):
    BROKEN = '<html>\n<body>\n{{#post}}\n<h1>{{title}}</h1>\n</body>\n</html>\n'

    def test_check_reports_file_line_col(self):
        site = self.site(posts=False)
        tpl = os.path.join(site.root, 'newsletter.html')
        with open(tpl, 'w') as f:
            f.write(self.BROKEN)
        site.write_config({'lists': [{'id': 'news', 'template': tpl}]})
        res = site.check()
        self.assertEqual(res.rc, 1, res.describe())
        diags = [(x['file'], x['line'], x['col']) for x in res.diags()]
        self.assertEqual(diags, [(tpl, 3, 1)], res.err)
        self.assertIn("unclosed section 'post'", res.diags()[0]['msg'])
        # build --deliver names the file too
        res = run_nashra(['build', '--deliver', '-c', site.config_path])
        self.assertEqual(res.rc, 2, res.describe())  # a configuration error (SPEC §2)
        self.assertIn("%s:3:1: error: unclosed section 'post'" % tpl, res.err)

    def test_check_points_into_the_config_for_a_subject(self):
        site = self.site(posts=False)
        site.write_config({'lists': [{'id': 'news', 'subject': 'خبر: {{#post.title}} oops'}]})
        with open(site.config_path, encoding='utf-8') as f:
            lines = f.read().split('\n')
        line = next(i for i, x in enumerate(lines) if '"subject"' in x)
        col = lines[line].index('{{#') + 1  # characters, as nashra counts them
        res = site.check()
        self.assertEqual(res.rc, 1, res.describe())
        diags = [(x['file'], x['line'], x['col']) for x in res.diags()]
        self.assertEqual(diags, [(site.config_path, line + 1, col)], res.err)
        self.assertIn("unclosed section 'post.title'", res.diags()[0]['msg'])

    def test_daemon_keeps_its_config_on_a_broken_template(self):
        site = self.site({'http': {'listen': '127.0.0.1:0'},
                          'lists': [{'id': 'news', 'name': 'أخبار'}]}, posts=False)
        self.subscribers(site, 'add', 'news', 'reader@example.org', 'قارئ')
        d = self.daemon(site)
        tpl = os.path.join(site.root, 'newsletter.html')
        with open(tpl, 'w') as f:
            f.write(self.BROKEN)
        site.write_config({'http': {'listen': '127.0.0.1:0'},
                           'lists': [{'id': 'news', 'name': 'أخبار', 'template': tpl}]})
        mark = len(d.log())
        d.signal(signal.SIGHUP)
        d.wait_log(r'event=reload result=kept_old file="?%s"? line=3 col=1' % re.escape(tpl),
                   after=mark)
        # still sending, with the old template
        self.drop(site, 'post.md', post_md('خبر بعد إعادة التحميل'))
        outbox = os.path.join(site.state, 'outbox', 'new')
        wait_until(lambda: os.path.isdir(outbox) and os.listdir(outbox), 10,
                   what='the message in the maildir', detail=self.status(d))
        d.stop()
        # a start with it fails, naming the file
        d2 = Daemon(site)
        self.addCleanup(d2.kill)
        d2.start(wait=False)
        rc = d2.proc.wait(10)
        self.assertEqual(rc, 2)
        self.assertIn("%s:3:1: error: unclosed section 'post'" % tpl, d2.log())


if __name__ == '__main__':
    unittest.main()
