"""Subscriptions over the web and bounces (SPEC §6, §8; issue 6), through the
real daemon, a real HTTP client and the maildir transport (state/outbox):

  RoundTripTest   the archive's form -> POST /subscribe -> a confirmation
                  mail in the list's language -> its link activates -> a new
                  post mails the subscriber -> the List-Unsubscribe URL of that
                  mail POSTed with List-Unsubscribe=One-Click unsubscribes ->
                  the next post does not mail them (a GET of it changes nothing)
  TokenTest       tokens made here with the site's key (state/secret): the
                  right ones work; another address, another list, another
                  purpose, a changed digit, an expired or future confirm token,
                  none at all -> 403 and no change
  SubscribeTest   one confirmation mail per address however often it is asked
                  for; an active address gets none and the same answer; the
                  honeypot, a bad address, an unknown list; the per-client limit
                  (http.trust_proxy: X-Forwarded-For's last hop only)
  BounceTest      Postfix-style DSNs dropped into mail.bounces.maildir: 5.1.1
                  bounces at once, 4.2.2 counts up to soft_limit, a delay
                  warning, an auto-reply and DSNs with a forged or MAC-less
                  VERP address change nothing; every
                  file ends in cur/ as NAME:2,S, one there before the start too
"""

import email
import email.policy
import hashlib
import hmac
import os
import re
import time
import unittest
import urllib.parse
from html.parser import HTMLParser

from common import Daemon, SiteTestCase, html_tag_attrs, http_get, http_request, run_nashra, \
    wait_until

DOMAIN = 'example.org'
LISTS = [
    {'id': 'news', 'name': 'أخبار المنظمة', 'language': 'ar'},
    {'id': 'weekly', 'name': 'Weekly digest', 'language': 'en'},
]
FORM = 'application/x-www-form-urlencoded'


def post_md(title, body='نص المنشور.'):
    return '---\ntitle: "%s"\n---\n%s\n' % (title, body)


class Forms(HTMLParser):
    """The <form>s of a page: [{'action':..., 'method':..., 'fields': {name: value}}]."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'form':
            self.forms.append({'action': a.get('action'), 'method': a.get('method'),
                               'fields': {}})
        elif tag == 'input' and self.forms and a.get('name'):
            self.forms[-1]['fields'][a['name']] = a.get('value') or ''


def forms_of(page):
    p = Forms()
    p.feed(page)
    return p.forms


class WebSubsCase(SiteTestCase):
    def make(self, extra=None, start=True):
        self.s = self.site(dict({'http': {'listen': '127.0.0.1:0', 'trust_proxy': True},
                                 'mail': {'from': 'نشرة المنظمة <news@example.org>',
                                          # relative: to the config's folder
                                          'bounces': {'maildir': 'bounces', 'soft_limit': 2}},
                                 'lists': LISTS}, **(extra or {})), posts=False)
        self.bounces = os.path.join(self.s.root, 'bounces')
        self.outbox = os.path.join(self.s.state, 'outbox', 'new')
        self.seen = set()
        if start:
            self.start()
        return self.s

    def start(self):
        self.d = Daemon(self.s)
        self.addCleanup(self.d.kill)
        self.d.start()
        return self.d

    def key(self):
        with open(os.path.join(self.s.state, 'secret')) as f:
            return bytes.fromhex(f.read().strip())

    def mac(self, msg, n):
        return hmac.new(self.key(), msg.encode(), hashlib.sha256).hexdigest()[:n]

    def unsub_token(self, lst, sid, addr):
        return '%d.%s' % (sid, self.mac('unsubscribe|%s|%d|%s' % (lst, sid, addr), 20))

    def confirm_token(self, lst, sid, addr, issued):
        return '%d.%d.%s' % (sid, issued, self.mac('confirm|%s|%d|%s|%d' % (lst, sid, addr,
                                                                             issued), 20))

    def verp(self, issue, sid):
        return 'bounces+%d.%d.%s@%s' % (issue, sid, self.mac('bounce|%d|%d' % (issue, sid), 12),
                                        DOMAIN)

    def cli(self, *args):
        res = run_nashra(['subscribers', args[0], '-c', self.s.config_path] + list(args[1:]),
                         now=None)
        self.assertEqual(res.rc, 0, res.describe())
        return res

    def subscribe(self, fields, xff=None):
        headers = {'Content-Type': FORM}
        if xff:
            headers['X-Forwarded-For'] = xff
        return http_request(self.d.port, 'POST', '/subscribe',
                            body=urllib.parse.urlencode(fields).encode(), headers=headers)

    def state(self, lst, addr):
        rows = self.s.db('SELECT state FROM subscribers WHERE list = ? AND email = ?', (lst, addr))
        return rows[0][0] if rows else None

    def states(self):
        return {(l, e): (st, sb) for l, e, st, sb in self.s.db(
            'SELECT list, email, state, soft_bounces FROM subscribers')}

    def sub_id(self, lst, addr):
        return self.s.db('SELECT id FROM subscribers WHERE list = ? AND email = ?',
                         (lst, addr))[0][0]

    def mails(self):
        """[(file, parsed message)] of the outbox, oldest first."""
        if not os.path.isdir(self.outbox):
            return []
        out = []
        for f in sorted(os.listdir(self.outbox)):
            with open(os.path.join(self.outbox, f), 'rb') as fh:
                out.append((f, email.message_from_bytes(fh.read(), policy=email.policy.default)))
        return out

    def mails_to(self, addr, kind=None):
        """Messages to addr; kind 'confirm' (no List-Id) or 'issue'."""
        res = []
        for f, m in self.mails():
            if m['To'].addresses[0].addr_spec.lower() != addr.lower():
                continue
            is_confirm = m['List-Id'] is None
            if kind is None or (kind == 'confirm') == is_confirm:
                res.append(m)
        return res

    def wait_mail(self, addr, kind, n=1):
        return wait_until(lambda: len(self.mails_to(addr, kind)) >= n and
                          self.mails_to(addr, kind), 10,
                          what='%d %s mail(s) to %s' % (n, kind, addr), detail=self.d.tail)

    def drop_post(self, rel, data):
        tmp = self.s.path('.incoming-' + rel)
        self.s.write(os.path.basename(tmp), data)
        os.rename(tmp, self.s.path(rel))

    def body_text(self, m, subtype):
        return m.get_body(preferencelist=(subtype,)).get_content()

    def assertPage(self, r, status, lang, dirn):
        self.assertEqual(r.status, status, r.text())
        self.assertTrue(r.header('Content-Type').startswith('text/html'), r.headers)
        attrs = html_tag_attrs(r.text())
        self.assertEqual((attrs.get('lang'), attrs.get('dir')), (lang, dirn), r.text()[:300])
        self.assertEqual(r.header('Cache-Control'), 'no-store')
        self.assertEqual(r.header('Referrer-Policy'), 'no-referrer')


# --- 1: the whole way round -----------------------------------------------------

class CliPendingTest(WebSubsCase):
    def test_import_pending_mails_confirmations(self):
        """`subscribers import --pending` (SPEC §2): each new address gets the
        confirmation mail; active and already-known ones get none; its link
        activates."""
        self.make(start=False)
        self.cli('add', '--list', 'news', 'known@example.net', 'قديم')
        csv = os.path.join(self.s.root, 'p.csv')
        with open(csv, 'w', encoding='utf-8') as f:
            f.write('email,name,state\nnew1@example.net,جديد,\nnew2@example.net,,\n'
                    'known@example.net,قديم,\nvouched@example.net,,active\n')
        res = self.cli('import', '--list', 'news', '--pending', csv)
        self.assertIn('confirmation mails: 2 sent', res.out)
        self.assertEqual(sorted(m['To'].addresses[0].addr_spec for _, m in self.mails()),
                         ['new1@example.net', 'new2@example.net'])
        self.assertEqual(self.state('news', 'new1@example.net'), 'pending')
        # again: nobody new, nothing mailed
        self.cli('import', '--list', 'news', '--pending', csv)
        self.cli('add', '--list', 'news', '--pending', 'new1@example.net')
        self.assertEqual(len(self.mails()), 2)
        m = self.mails_to('new1@example.net', 'confirm')[0]
        link = re.search(r'https://news\.example\.org(/confirm\?t=[0-9a-f.]+)',
                         self.body_text(m, 'html')).group(1)
        self.start()
        self.assertPage(http_get(self.d.port, link), 200, 'ar', 'rtl')
        self.assertEqual(self.state('news', 'new1@example.net'), 'active')
        self.assertEqual(self.state('news', 'new2@example.net'), 'pending')


class RoundTripTest(WebSubsCase):
    def test_round_trip(self):
        self.make()
        addr = 'reader@example.net'
        self.cli('add', '--list', 'news', 'other@example.net', 'آخر')  # mailed every post
        # the archive page carries a form per list, honeypot included
        self.drop_post('first.md', post_md('المنشور الأول'))
        wait_until(lambda: os.path.exists(self.s.out_path('index.html')), 10,
                   what='index.html', detail=self.d.tail)
        page = http_get(self.d.port, '/').text()
        forms = [f for f in forms_of(page) if f['fields'].get('list') == 'news']
        self.assertEqual(len(forms), 1, page)
        form = forms[0]
        self.assertEqual(form['action'], 'https://news.example.org/subscribe')
        self.assertEqual(form['method'], 'post')
        self.assertEqual(set(form['fields']), {'email', 'name', 'list', 'website'})
        fields = dict(form['fields'], email=addr, name='قارئ جديد')

        r = self.subscribe(fields)
        self.assertPage(r, 200, 'ar', 'rtl')
        self.assertIn('تحقّق من بريدك', r.text())
        self.assertEqual(self.state('news', addr), 'pending')

        # the confirmation: Arabic, right to left, one link, no List-* headers
        m = self.wait_mail(addr, 'confirm')[0]
        self.assertIn('أكِّد اشتراكك', m['Subject'])
        self.assertIn('أخبار المنظمة', m['Subject'])
        self.assertIsNone(m['List-Unsubscribe'])
        self.assertEqual(m['Auto-Submitted'], 'auto-generated')
        html = self.body_text(m, 'html')
        self.assertEqual(html_tag_attrs(html).get('dir'), 'rtl')
        links = set(re.findall(r'https://news\.example\.org/confirm\?t=[0-9a-f.]+', html))
        self.assertEqual(len(links), 1, html)
        link = links.pop()
        self.assertIn(link, self.body_text(m, 'plain'))
        path = link[len('https://news.example.org'):]

        # nothing is mailed to a pending subscriber
        self.drop_post('second.md', post_md('المنشور الثاني'))
        self.wait_mail('other@example.net', 'issue', 2)
        self.assertEqual(self.mails_to(addr, 'issue'), [])

        r = http_get(self.d.port, path)
        self.assertPage(r, 200, 'ar', 'rtl')
        self.assertIn('تأكّد اشتراكك', r.text())
        self.assertEqual(self.state('news', addr), 'active')

        # a new post is mailed to them
        self.drop_post('third.md', post_md('المنشور الثالث'))
        m = self.wait_mail(addr, 'issue')[0]
        self.assertIn('المنشور الثالث', m['Subject'])
        self.assertEqual(m['List-Unsubscribe-Post'], 'List-Unsubscribe=One-Click')
        url = re.search(r'<(https://[^>]+)>', m['List-Unsubscribe']).group(1)
        upath = url[len('https://news.example.org'):]
        self.assertTrue(upath.startswith('/unsubscribe?t='), url)

        # a GET (a link scanner) shows the button and changes nothing
        for method in ('GET', 'HEAD'):
            r = http_request(self.d.port, method, upath)
            self.assertEqual(r.status, 200)
        r = http_get(self.d.port, upath)
        self.assertPage(r, 200, 'ar', 'rtl')
        btn = [f for f in forms_of(r.text()) if f['method'] == 'post']
        self.assertEqual(len(btn), 1, r.text())
        self.assertIsNone(btn[0]['action'], 'the form posts to the URL itself')
        self.assertEqual(btn[0]['fields'], {'List-Unsubscribe': 'One-Click'})
        self.assertEqual(self.state('news', addr), 'active')

        # RFC 8058 one-click: a POST of List-Unsubscribe=One-Click
        r = http_request(self.d.port, 'POST', upath, body=b'List-Unsubscribe=One-Click',
                         headers={'Content-Type': FORM})
        self.assertPage(r, 200, 'ar', 'rtl')
        self.assertEqual(self.state('news', addr), 'unsubscribed')
        # again: still 200, still unsubscribed
        r = http_request(self.d.port, 'POST', upath, body=b'List-Unsubscribe=One-Click',
                         headers={'Content-Type': FORM})
        self.assertEqual(r.status, 200)

        self.drop_post('fourth.md', post_md('المنشور الرابع'))
        self.wait_mail('other@example.net', 'issue', 4)
        time.sleep(0.3)
        self.assertEqual(len(self.mails_to(addr, 'issue')), 1, 'not mailed after leaving')
        self.assertEqual(len(self.mails_to(addr, 'confirm')), 1)


# --- 2: tokens -------------------------------------------------------------------

class TokenTest(WebSubsCase):
    def test_tokens(self):
        self.make()
        a, b = 'a@example.net', 'b@example.net'
        self.cli('add', '--list', 'news', a)
        self.cli('add', '--list', 'news', b)
        self.cli('add', '--list', 'weekly', a)
        self.cli('add', '--list', 'news', '--pending', 'p@example.net')
        ida, idb = self.sub_id('news', a), self.sub_id('news', b)
        idwa, idp = self.sub_id('weekly', a), self.sub_id('news', 'p@example.net')
        now = int(time.time())
        good = self.unsub_token('news', ida, a)
        bad = {
            'another address': self.unsub_token('news', ida, b),
            'another list': self.unsub_token('weekly', ida, a),
            "another list's subscriber": self.unsub_token('news', idwa, a),
            'another id': '%d.%s' % (idb, good.split('.')[1]),
            'a changed digit': good[:-1] + ('0' if good[-1] != '0' else '1'),
            'cut short': good[:-2],
            'upper case': good.upper(),
            'a confirm token': self.confirm_token('news', ida, a, now),
            'no id': good.split('.')[1],
            'garbage': '../../etc/passwd',
            'empty': '',
        }
        before = self.states()
        for what, tok in bad.items():
            q = '/unsubscribe?t=' + urllib.parse.quote(tok)
            for method in ('GET', 'POST'):
                r = http_request(self.d.port, method, q, body=b'List-Unsubscribe=One-Click'
                                 if method == 'POST' else None, headers={'Content-Type': FORM})
                self.assertEqual(r.status, 403, '%s %s: %s' % (method, what, r.text()))
        r = http_request(self.d.port, 'POST', '/unsubscribe', body=b'List-Unsubscribe=One-Click',
                         headers={'Content-Type': FORM})
        self.assertEqual(r.status, 403, 'no token at all')
        self.assertEqual(self.states(), before, 'nothing changed')

        # confirm tokens: expired (8 days), from the future, another address,
        # an unsubscribe token, a changed time
        cbad = {
            'expired': self.confirm_token('news', idp, 'p@example.net', now - 8 * 86400),
            'future': self.confirm_token('news', idp, 'p@example.net', now + 3600),
            'another address': self.confirm_token('news', idp, a, now),
            'another list': self.confirm_token('weekly', idp, 'p@example.net', now),
            'an unsubscribe token': self.unsub_token('news', idp, 'p@example.net'),
            'a changed time': '%d.%d.%s' % (idp, now - 1, self.confirm_token(
                'news', idp, 'p@example.net', now).split('.')[2]),
        }
        for what, tok in cbad.items():
            r = http_get(self.d.port, '/confirm?t=' + urllib.parse.quote(tok))
            self.assertEqual(r.status, 403, '%s: %s' % (what, r.text()))
            self.assertPage(r, 403, 'ar', 'rtl')  # the site's language: no list is known
        self.assertEqual(self.states(), before, 'nothing changed')

        # the right ones work (so the 403s above were not for a wrong formula)
        r = http_get(self.d.port, '/confirm?t=' + self.confirm_token(
            'news', idp, 'p@example.net', now - 6 * 86400))
        self.assertPage(r, 200, 'ar', 'rtl')
        self.assertEqual(self.state('news', 'p@example.net'), 'active')
        r = http_get(self.d.port, '/unsubscribe?t=' + self.unsub_token('weekly', idwa, a))
        self.assertPage(r, 200, 'en', 'ltr')
        self.assertIn(a, r.text())
        self.assertEqual(self.state('weekly', a), 'active')
        r = http_request(self.d.port, 'POST', '/unsubscribe?t=' + self.unsub_token(
            'weekly', idwa, a), body=b'List-Unsubscribe=One-Click', headers={'Content-Type': FORM})
        self.assertPage(r, 200, 'en', 'ltr')
        self.assertEqual(self.state('weekly', a), 'unsubscribed')
        self.assertEqual(self.state('news', a), 'active', 'the other list is kept')

        # who left may come back, through the double opt-in again
        r = self.subscribe({'email': a, 'list': 'weekly'})
        self.assertPage(r, 200, 'en', 'ltr')
        self.assertEqual(self.state('weekly', a), 'unsubscribed', 'not before confirming')
        m = self.wait_mail(a, 'confirm')[0]
        link = re.search(r'https://news\.example\.org(/confirm\?t=[0-9a-f.]+)',
                         self.body_text(m, 'plain')).group(1)
        self.assertEqual(http_get(self.d.port, link).status, 200)
        self.assertEqual(self.state('weekly', a), 'active')


# --- 3: /subscribe's answers and limits ---------------------------------------------

class SubscribeTest(WebSubsCase):
    def test_one_confirmation_per_address(self):
        self.make()
        bodies = set()
        for i, addr in enumerate(['Many@Example.NET', 'many@example.net', 'MANY@example.net',
                                  ' many@EXAMPLE.net', 'many@example.NET']):
            r = self.subscribe({'email': addr, 'list': 'weekly', 'name': 'Many'},
                               xff='192.0.2.%d' % (i + 1))
            self.assertPage(r, 200, 'en', 'ltr')
            bodies.add(r.body)
        self.assertEqual(len(bodies), 1, 'the same answer every time')
        m = self.wait_mail('many@example.net', 'confirm')[0]
        self.assertIn('Confirm your subscription to Weekly digest', m['Subject'])
        self.assertEqual(html_tag_attrs(self.body_text(m, 'html')).get('dir'), 'ltr')
        time.sleep(1.0)
        self.assertEqual(len(self.mails_to('many@example.net', 'confirm')), 1)
        self.assertEqual(self.s.db('SELECT COUNT(*) FROM subscribers')[0][0], 1)
        # the same address on the other list is another address
        self.subscribe({'email': 'many@example.net', 'list': 'news'}, xff='192.0.2.50')
        self.wait_mail('many@example.net', 'confirm', 2)

        # an active address: the same answer, no mail, no change
        self.cli('add', '--list', 'weekly', 'active@example.net')
        r = self.subscribe({'email': 'active@example.net', 'list': 'weekly'}, xff='192.0.2.60')
        r2 = self.subscribe({'email': 'nobody-yet@example.net', 'list': 'weekly'},
                            xff='192.0.2.61')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, r2.body, 'membership is never told')
        self.wait_mail('nobody-yet@example.net', 'confirm')
        time.sleep(0.5)
        self.assertEqual(self.mails_to('active@example.net'), [])
        self.assertEqual(self.state('weekly', 'active@example.net'), 'active')

    def test_refusals(self):
        self.make()
        # the honeypot: told what people are told, nothing done
        r = self.subscribe({'email': 'bot@example.net', 'list': 'news', 'website': 'http://x'})
        self.assertPage(r, 200, 'ar', 'rtl')
        self.assertIn('تحقّق من بريدك', r.text())
        for bad in ('not an address', 'a@b@c', 'a@-x.org', '', 'a@example.org\r\nBcc: x@y'):
            r = self.subscribe({'email': bad, 'list': 'news'})
            self.assertPage(r, 400, 'ar', 'rtl')
        r = self.subscribe({'list': 'news'})
        self.assertEqual(r.status, 400)
        r = self.subscribe({'email': 'x@example.net', 'list': 'nope'})
        self.assertEqual(r.status, 404)
        r = self.subscribe({'email': 'x@example.net'})
        self.assertEqual(r.status, 404)
        r = http_request(self.d.port, 'POST', '/subscribe', body=b'{"email": "x@example.net"}',
                         headers={'Content-Type': 'application/json'})
        self.assertEqual(r.status, 415)
        r = http_request(self.d.port, 'POST', '/subscribe', body=b'email=' + b'x' * 20000,
                         headers={'Content-Type': FORM})
        self.assertEqual(r.status, 413)
        self.assertEqual(self.s.db('SELECT COUNT(*) FROM subscribers')[0][0], 0)
        time.sleep(0.3)
        self.assertEqual(self.mails(), [])

    def test_per_client_limit(self):
        self.make()
        ok = [self.subscribe({'email': 'c%d@example.net' % i, 'list': 'news'},
                             xff='10.9.9.%d, 198.51.100.7' % i).status for i in range(10)]
        self.assertEqual(ok, [200] * 10)
        # the 11th from that last hop, whatever the client put before it
        r = self.subscribe({'email': 'c10@example.net', 'list': 'news'},
                           xff='10.1.1.1, 198.51.100.7')
        self.assertEqual(r.status, 429)
        self.assertEqual(r.header('Retry-After'), '60')
        self.assertIsNone(self.state('news', 'c10@example.net'))
        r = self.subscribe({'email': 'c10@example.net', 'list': 'news'},
                           xff='198.51.100.7, 198.51.100.8')
        self.assertEqual(r.status, 200, 'another last hop is another client')

    def test_no_trust_proxy(self):
        """Without http.trust_proxy, X-Forwarded-For is the client's to invent:
        every request counts against the peer (127.0.0.1)."""
        self.make({'http': {'listen': '127.0.0.1:0', 'trust_proxy': False}})
        codes = [self.subscribe({'email': 'd%d@example.net' % i, 'list': 'news'},
                                xff='203.0.113.%d' % i).status for i in range(11)]
        self.assertEqual(codes, [200] * 10 + [429])


# --- 4: bounces ---------------------------------------------------------------------

def dsn(verp, rcpt, status, action='failed', diag=''):
    """A bounce as Postfix writes it, as its local delivery stores it."""
    qid = '4F%06X' % (hash((verp, status)) & 0xFFFFFF)
    return ('Return-Path: <>\r\n'
            'X-Original-To: {verp}\r\n'
            'Delivered-To: {verp}\r\n'
            'Received: by mail.example.org (Postfix) id {qid}; Sun, 29 Nov 2026 06:00:00 +0000\r\n'
            'Date: Sun, 29 Nov 2026 06:00:00 +0000 (UTC)\r\n'
            'From: MAILER-DAEMON@mail.example.org (Mail Delivery System)\r\n'
            'Subject: Undelivered Mail Returned to Sender\r\n'
            'To: {verp}\r\n'
            'Auto-Submitted: auto-replied\r\n'
            'MIME-Version: 1.0\r\n'
            'Content-Type: multipart/report; report-type=delivery-status;\r\n'
            '\tboundary="{qid}.1764396000/mail.example.org"\r\n'
            'Message-Id: <20261129060000.{qid}@mail.example.org>\r\n'
            '\r\n'
            'This is a MIME-encapsulated message.\r\n'
            '\r\n'
            '--{qid}.1764396000/mail.example.org\r\n'
            'Content-Description: Notification\r\n'
            'Content-Type: text/plain; charset=us-ascii\r\n'
            '\r\n'
            'This is the mail system at host mail.example.org.\r\n'
            '\r\n'
            "I'm sorry to have to inform you that your message could not\r\n"
            'be delivered to one or more recipients.\r\n'
            '\r\n'
            '<{rcpt}>: {diag}\r\n'
            '\r\n'
            '--{qid}.1764396000/mail.example.org\r\n'
            'Content-Description: Delivery report\r\n'
            'Content-Type: message/delivery-status\r\n'
            '\r\n'
            'Reporting-MTA: dns; mail.example.org\r\n'
            'X-Postfix-Queue-ID: {qid}\r\n'
            'X-Postfix-Sender: rfc822; {verp}\r\n'
            'Arrival-Date: Sun, 29 Nov 2026 05:59:58 +0000 (UTC)\r\n'
            '\r\n'
            'Final-Recipient: rfc822; {rcpt}\r\n'
            'Original-Recipient: rfc822;{rcpt}\r\n'
            'Action: {action}\r\n'
            'Status: {status}\r\n'
            'Remote-MTA: dns; mx.example.net\r\n'
            'Diagnostic-Code: smtp; {diag}\r\n'
            '\r\n'
            '--{qid}.1764396000/mail.example.org\r\n'
            'Content-Description: Undelivered Message Headers\r\n'
            'Content-Type: text/rfc822-headers\r\n'
            '\r\n'
            'From: news@example.org\r\n'
            'To: {rcpt}\r\n'
            'Subject: =?UTF-8?B?2KfZhNmF2YbYtNmI2LE=?=\r\n'
            '\r\n'
            '--{qid}.1764396000/mail.example.org--\r\n').format(
                verp=verp, rcpt=rcpt, status=status, action=action, qid=qid,
                diag=diag or '550 %s <%s>: Recipient address rejected' % (status, rcpt))


def auto_reply(verp, sender):
    return ('Delivered-To: {verp}\r\n'
            'From: {sender}\r\n'
            'To: {verp}\r\n'
            'Subject: =?UTF-8?B?2K7Yp9ix2Kwg2KfZhNmF2YPYqtio?= (Out of office)\r\n'
            'Auto-Submitted: auto-replied\r\n'
            'Content-Type: text/plain; charset=utf-8\r\n'
            '\r\n'
            'I am away until Monday. Action: failed\r\n'
            'Status: 5.1.1\r\n').format(verp=verp, sender=sender)


class BounceTest(WebSubsCase):
    def drop(self, name, data):
        for sub in ('tmp', 'new', 'cur'):
            os.makedirs(os.path.join(self.bounces, sub), exist_ok=True)
        tmp = os.path.join(self.bounces, 'tmp', name)
        with open(tmp, 'w', newline='') as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.bounces, 'new', name))

    def cur(self):
        return sorted(os.listdir(os.path.join(self.bounces, 'cur')))

    def test_bounces(self):
        self.make(start=False)
        people = ['hard@example.net', 'soft@example.net', 'auto@example.net',
                  'forged@example.net', 'early@example.net']
        for p in people:
            self.cli('add', '--list', 'news', p)
        # the operator's own key (mail.secret_file): the daemon takes it
        os.makedirs(self.s.state, exist_ok=True)
        fd = os.open(os.path.join(self.s.state, 'secret'), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, os.urandom(32).hex().encode() + b'\n')
        os.close(fd)
        ids = {p: self.sub_id('news', p) for p in people}
        # one there before the daemon starts: read at start
        self.drop('1764396000.early.mail', dsn(self.verp(1, ids['early@example.net']),
                                               'early@example.net', '5.1.1'))
        self.start()
        wait_until(lambda: self.state('news', 'early@example.net') == 'bounced', 10,
                   what='the early bounce read', detail=self.d.tail)
        self.assertEqual(self.cur(), ['1764396000.early.mail:2,S'])

        self.drop('1764396001.hard.mail', dsn(self.verp(1, ids['hard@example.net']),
                                              'hard@example.net', '5.1.1'))
        self.drop('1764396002.soft.mail:2,', dsn(self.verp(1, ids['soft@example.net']),
                                                 'soft@example.net', '4.2.2',
                                                 diag='452 4.2.2 Mailbox full'))
        self.drop('1764396003.auto.mail', auto_reply(self.verp(1, ids['auto@example.net']),
                                                     'auto@example.net'))
        forged = self.verp(1, ids['forged@example.net']).replace('bounces+1.', 'bounces+2.')
        self.drop('1764396004.forged.mail', dsn(forged, 'forged@example.net', '5.1.1'))
        self.drop('1764396005.noverp.mail', dsn('bounces+1.%d@example.org' %
                                                ids['forged@example.net'],
                                                'forged@example.net', '5.1.1'))
        wait_until(lambda: len(self.cur()) == 6, 10, what='six files in cur/',
                   detail=self.d.tail)
        self.assertEqual(self.cur(), ['1764396000.early.mail:2,S', '1764396001.hard.mail:2,S',
                                      '1764396002.soft.mail:2,S', '1764396003.auto.mail:2,S',
                                      '1764396004.forged.mail:2,S',
                                      '1764396005.noverp.mail:2,S'])
        self.assertEqual(os.listdir(os.path.join(self.bounces, 'new')), [])
        st = self.states()
        self.assertEqual(st[('news', 'hard@example.net')][0], 'bounced')
        self.assertEqual(st[('news', 'soft@example.net')], ('active', 1))
        self.assertEqual(st[('news', 'auto@example.net')], ('active', 0))
        self.assertEqual(st[('news', 'forged@example.net')], ('active', 0))
        self.d.wait_log(r'event=bounce file=1764396003\.auto\.mail result=ignored why=not_a_dsn')
        for f in ('1764396004\\.forged', '1764396005\\.noverp'):
            self.d.wait_log(r'event=bounce file=%s\.mail result=ignored why=no_subscriber' % f)
        self.d.wait_log(r'event=bounce file=1764396001\.hard\.mail list=news subscriber=%d '
                        r'issue=1 kind=hard status=5\.1\.1 .*result=bounced' %
                        ids['hard@example.net'])

        # a delay warning is no bounce (the message may still arrive)
        self.drop('1764396006.delay.mail', dsn(self.verp(2, ids['soft@example.net']),
                                               'soft@example.net', '4.4.1', action='delayed'))
        self.d.wait_log(r'event=bounce file=1764396006\.delay\.mail result=ignored '
                        r'why=no_failure')
        self.assertEqual(self.states()[('news', 'soft@example.net')], ('active', 1))
        # the second soft bounce reaches soft_limit (2)
        self.drop('1764396007.soft2.mail', dsn(self.verp(2, ids['soft@example.net']),
                                               'soft@example.net', '4.2.2'))
        wait_until(lambda: self.state('news', 'soft@example.net') == 'bounced', 10,
                   what='soft@ bounced at the limit', detail=self.d.tail)
        self.assertEqual(len(self.cur()), 8)
        # a restart reads nothing twice
        self.d.stop()
        self.start()
        time.sleep(0.5)
        st2 = self.states()
        want = dict(st)
        want[('news', 'soft@example.net')] = ('bounced', 2)
        self.assertEqual(st2, want)
        self.assertNotRegex(self.d.log(), r'event=bounce file=')
        # and a bounced address is not mailed
        self.drop_post('p.md', post_md('منشور'))
        wait_until(lambda: len(self.mails_to('auto@example.net')) == 1, 10,
                   what='the issue to auto@', detail=self.d.tail)
        time.sleep(0.3)
        for p in ('hard@example.net', 'soft@example.net', 'early@example.net'):
            self.assertEqual(self.mails_to(p), [], p)


if __name__ == '__main__':
    unittest.main()
