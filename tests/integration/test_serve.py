"""The daemon (`nashra serve`, SPEC §4-§6, §9, §10) end to end: the real
binary on a temporary site, watched folder, real clock, and a real HTTP
client on loopback. Changes made as users and editors make them (write in
place, temp-then-rename, mv, rm, new folders) reach feed.xml, atom.xml,
feed.json and the archive with exactly one announcement each; scheduled
posts go out at their date; kill -9 at any moment loses nothing and
duplicates nothing; SIGHUP reloads (or keeps the running config); SIGTERM
stops cleanly; the HTTP server answers conditional requests, refuses
wrong methods and huge bodies, and outlives slow clients.

Every wait polls with a deadline (common.wait_until); the daemon listens on
a free port (http.listen 127.0.0.1:0) read from its `event=ready` line, and
is SIGKILLed in cleanup whatever happens.

NASHRA_VALGRIND=1 adds ValgrindServeTest (see valgrind_serve.sh): a run
under valgrind's memcheck with a few changes, requests, reloads and a clean
SIGTERM, which must end with exit 0 and nothing definitely lost.
"""

import html
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest
from urllib.parse import quote, unquote

from common import (GOOD_SLUGS, SITE_TITLE, SITE_URL, Daemon, Site, SiteTestCase, atom_entries,
                    deep_merge, http_get, http_raw, http_request, read_tree, rss_items,
                    run_nashra, slug_of_url, wait_until, yaml_lines)

LISTEN = {'http': {'listen': '127.0.0.1:0'}}
POST_HREF = re.compile(r'href="%s/posts/([^"/]+)/"' % re.escape(SITE_URL))
METRIC_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^{}]*\})? (\S+)(?: -?\d+)?$')
METRIC_COMMENT = re.compile(r'^# (?:HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|'
                            r'TYPE [a-zA-Z_:][a-zA-Z0-9_:]* '
                            r'(?:counter|gauge|histogram|summary|untyped))$')


def post_md(title, date=None, extra='', body='نص المنشور.'):
    fm = 'title: "%s"\n' % title
    if date:
        fm += 'date: %s\n' % date
    return '---\n%s%s---\n%s\n' % (fm, extra, body)


def rfc3339(t):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t))


def page_path(slug):
    return '/posts/%s/' % quote(slug, safe='')


# --- what the daemon serves --------------------------------------------------

class Served:
    """The site as served over HTTP now: {slug: title} of each feed, the
    slugs index.html links to, and the raw feed.xml response."""

    def __init__(self, port):
        self.port = port
        r = self.fetch('/feed.xml')
        self.rss_response = r
        root, items = rss_items(r.body)
        self.rss_channel_title = root.findtext('./channel/title')
        self.rss = {slug_of_url(i['guid']): i['title'] for i in items}
        _, entries = atom_entries(self.fetch('/atom.xml').body)
        self.atom = {slug_of_url(e['id']): e['title'] for e in entries}
        jf = json.loads(self.fetch('/feed.json').body)
        self.json_title = jf.get('title')
        self.json = {slug_of_url(i['id']): i.get('title') for i in jf.get('items', [])}
        self.index_page = self.fetch('/index.html').text()
        self.index = {unquote(m) for m in POST_HREF.findall(self.index_page)}

    def fetch(self, path):
        r = http_get(self.port, path)
        if r.status != 200:
            raise ValueError('GET %s: %d %s' % (path, r.status, r.body[:200]))
        return r

    def matches(self, want):
        return (self.rss == want and self.atom == want and self.json == want and
                self.index == set(want))

    def __repr__(self):
        return 'rss=%r\natom=%r\njson=%r\nindex=%r' % (self.rss, self.atom, self.json,
                                                        sorted(self.index))


def metrics(port):
    """{name or name{labels}: value} of /metrics, after checking that every
    line is Prometheus text (a sample, # HELP, # TYPE)."""
    r = http_get(port, '/metrics')
    if r.status != 200:
        raise AssertionError('/metrics: %d' % r.status)
    out, bad = {}, []
    for line in r.text().splitlines():
        if not line.strip():
            continue
        if line.startswith('#'):
            if not METRIC_COMMENT.match(line):
                bad.append(line)
            continue
        m = METRIC_SAMPLE.match(line)
        try:
            out[m.group(1) + (m.group(2) or '')] = float(m.group(3))
        except (AttributeError, ValueError):
            bad.append(line)
    if bad:
        raise AssertionError('/metrics lines that are not Prometheus text: %r' % bad)
    out['__content_type__'] = r.header('content-type')
    return out


class ServeCase(SiteTestCase):
    """A site with http.listen 127.0.0.1:0, and daemons killed in cleanup."""

    def serve_site(self, config=None, posts=True):
        return self.site(deep_merge(LISTEN, config or {}), posts)

    def daemon(self, site, start=True, **kw):
        d = Daemon(site, **kw)
        self.addCleanup(d.kill)
        return d.start() if start else d

    def last_seq(self, site):
        rows = site.announcements()
        return rows[-1][0] if rows else 0

    def events_after(self, site, seq):
        return [(k, s) for q, k, s in site.announcements() if q > seq]

    def await_served(self, d, want, what, gone=(), timeout=10.0):
        """Waits until the four views (feed.xml, atom.xml, feed.json,
        index.html) list exactly want ({slug: title}), every page of want
        is served with its title, and every page of gone is 404."""
        last = {}

        def check():
            snap = last['snap'] = Served(d.port)
            if not snap.matches(want):
                return None
            for slug, title in want.items():
                r = http_get(d.port, page_path(slug))
                if r.status != 200 or not any('<h1>%s</h1>' % html.escape(title, q) in r.text()
                                              for q in (False, True)):
                    last['page'] = (slug, r.status)
                    return None
            for slug in gone:
                r = http_get(d.port, page_path(slug))
                if r.status != 404:
                    last['page'] = (slug, r.status)
                    return None
            return snap

        def detail():
            return 'want=%r gone=%r\nserved:\n%r\npage: %r\n%s' % (
                want, list(gone), last.get('snap'), last.get('page'), d.tail())
        return wait_until(check, timeout, interval=0.02, what=what, detail=detail)


# --- 1. changes, as users and editors make them ------------------------------

class ServeChangesTest(ServeCase):
    def test_changes_follow_with_one_announcement_each(self):
        s = self.serve_site()
        d = self.daemon(s)
        first = Served(d.port)
        self.assertEqual(set(first.rss), GOOD_SLUGS, 'the corpus as served after start')
        self.assertTrue(first.matches(first.rss), 'the four views after start:\n%r' % first)
        self.assertEqual(s.announcements(), [], 'the first pass must announce nothing')
        want = dict(first.rss)
        log = []  # every event expected, in order

        def step(what, action, events, add=None, drop=(), gone=()):
            seq = self.last_seq(s)
            action()
            want.update(add or {})
            for slug in drop:
                want.pop(slug)
            snap = self.await_served(d, want, what, gone=list(gone) + list(drop))
            got = self.events_after(s, seq)
            self.assertEqual(sorted(got), sorted(events), '%s: the announcements\n%s' % (
                what, d.tail()))
            log.extend(events)
            return snap

        def write_in_place(rel, text):
            s.write(rel, text)

        def write_then_rename(rel, tmp_rel, text):
            s.write(tmp_rel, text)
            os.rename(s.path(tmp_rel), s.path(rel))

        # add, edit (in place), rename, delete
        step('a new post', lambda: write_in_place('2024/alpha.md', post_md('ألف', '2025-03-01')),
             [('published', 'alpha')], add={'alpha': 'ألف'})
        etag = http_get(d.port, '/feed.xml').header('etag')
        step('an edit in place',
             lambda: write_in_place('2024/alpha.md', post_md('ألف معدّل', '2025-03-01')),
             [('updated', 'alpha')], add={'alpha': 'ألف معدّل'})
        r = http_get(d.port, '/feed.xml', headers={'If-None-Match': etag})
        self.assertEqual(r.status, 200, 'the ETag of feed.xml before the edit must not match')
        self.assertNotEqual(r.header('etag'), etag)
        step('mv alpha.md beta.md',
             lambda: os.rename(s.path('2024/alpha.md'), s.path('2024/beta.md')),
             [('removed', 'alpha'), ('published', 'beta')], add={'beta': 'ألف معدّل'},
             drop=['alpha'])
        step('rm beta.md', lambda: s.remove('2024/beta.md'), [('removed', 'beta')],
             drop=['beta'])

        # a folder made while running, and a post written in it at once
        def mkdir_and_write():
            os.mkdir(s.path('new-folder'))
            write_in_place('new-folder/gamma.md', post_md('جيم', '2025-03-02'))
        step('mkdir, then a post in it', mkdir_and_write, [('published', 'gamma')],
             add={'gamma': 'جيم'})
        step('an edit in the new folder',
             lambda: write_in_place('new-folder/gamma.md', post_md('جيم معدّل', '2025-03-02')),
             [('updated', 'gamma')], add={'gamma': 'جيم معدّل'})

        def mkdirs_and_write():
            os.makedirs(s.path('new-folder/a/b'))
            write_in_place('new-folder/a/b/delta.md', post_md('دال', '2025-03-03'))
        step('mkdir -p a/b, then a post in it', mkdirs_and_write, [('published', 'delta')],
             add={'delta': 'دال'})
        step('an edit two folders down',
             lambda: write_in_place('new-folder/a/b/delta.md', post_md('دال معدّل', '2025-03-03')),
             [('updated', 'delta')], add={'delta': 'دال معدّل'})
        step('rm -r of the folder holding a post',
             lambda: shutil.rmtree(s.path('new-folder/a')), [('removed', 'delta')],
             drop=['delta'])
        step('rm of the post in the new folder', lambda: s.remove('new-folder/gamma.md'),
             [('removed', 'gamma')], drop=['gamma'])

        # editors: write a temporary (hidden .swp, or .tmp) file, rename it over the post
        step('a new post saved as .epsilon.md.swp then renamed',
             lambda: write_then_rename('2024/epsilon.md', '2024/.epsilon.md.swp',
                                       post_md('هاء', '2025-03-04')),
             [('published', 'epsilon')], add={'epsilon': 'هاء'})
        step('an edit saved as epsilon.md.tmp then renamed',
             lambda: write_then_rename('2024/epsilon.md', '2024/epsilon.md.tmp',
                                       post_md('هاء معدّل', '2025-03-04')),
             [('updated', 'epsilon')], add={'epsilon': 'هاء معدّل'})

        def vim_save():  # backup~ and .swp written, the post rewritten in place, both go
            s.write('2024/epsilon.md~', s.read('2024/epsilon.md'))
            s.write('2024/.epsilon.md.swp', b'swap')
            write_in_place('2024/epsilon.md', post_md('هاء للمرة الثالثة', '2025-03-04'))
            s.remove('2024/.epsilon.md.swp')
        step('an edit with editor files around it', vim_save, [('updated', 'epsilon')],
             add={'epsilon': 'هاء للمرة الثالثة'})
        step('an edit of a corpus post saved by temp-then-rename',
             lambda: write_then_rename(
                 '2024/mixed-direction.md', '2024/mixed-direction.md.tmp',
                 s.read('2024/mixed-direction.md').decode('utf-8').replace(
                     'title: "ملتقى DCO الرقمي 2024: Digital Cooperation Organization"',
                     'title: "ملتقى DCO الرقمي 2024"')),
             [('updated', 'mixed-direction')], add={'mixed-direction': 'ملتقى DCO الرقمي 2024'})
        # a last change: nothing left over from the ones before
        step('a sentinel post', lambda: write_in_place('zeta.md', post_md('زاي', '2025-03-05')),
             [('published', 'zeta')], add={'zeta': 'زاي'})

        self.assertEqual([(k, sl) for _, k, sl in s.announcements()], log,
                         'the announcement log, whole')
        import feedparser
        for path in ('/feed.xml', '/atom.xml'):
            fp = feedparser.parse(http_get(d.port, path).body)
            self.assertFalse(fp.bozo, '%s: %r' % (path, fp.get('bozo_exception')))
            self.assertEqual({slug_of_url(e.link): e.title for e in fp.entries}, want, path)
        m = metrics(d.port)
        self.assertEqual(m['nashra_posts_published'], len(want), '/metrics after the changes')
        self.assertTrue(d.alive(), d.tail())
        self.assertNotIn('level=error', d.log(), 'errors logged:\n' + d.tail())


# --- 2. scheduled posts and drafts -------------------------------------------

class ServeScheduleTest(ServeCase):
    def test_scheduled_post_at_its_date_then_draft(self):
        s = self.serve_site()
        d = self.daemon(s)
        want = dict(Served(d.port).rss)
        seq = self.last_seq(s)
        due = int(time.time()) + 4
        text = post_md('منشور بعد ثوانٍ', rfc3339(due), extra='categories: ["نشاطات"]\n')
        s.write('2024/soon.md', text)
        # read by the daemon: the next scheduled date is the post's
        wait_until(lambda: metrics(d.port).get('nashra_next_scheduled_timestamp_seconds') == due,
                   5, what='nashra_next_scheduled_timestamp_seconds == %d' % due,
                   detail=d.tail)
        self.assertLess(time.time(), due - 0.5, 'too slow to check the post before its date')
        snap = Served(d.port)
        self.assertTrue(snap.matches(want), 'before its date, the post must not be served:\n'
                        '%r' % snap)
        self.assertEqual(http_get(d.port, page_path('soon')).status, 404)
        self.assertEqual(self.events_after(s, seq), [], 'announced before its date')

        # poll until it is there: never before its date, at the latest 2 s after
        want['soon'] = 'منشور بعد ثوانٍ'
        seen = None
        while seen is None:
            t0 = time.time()
            snap = Served(d.port)
            t1 = time.time()
            if 'soon' in snap.rss or 'soon' in snap.atom or 'soon' in snap.json or \
                    'soon' in snap.index:
                self.assertGreaterEqual(t1, due, 'served %.3fs before its date' % (due - t1))
                seen = t1
            elif t0 > due + 2:
                self.fail('not served 2 s after its date (%s)\n%r\n%s' % (rfc3339(due), snap,
                                                                        d.tail()))
            else:
                time.sleep(0.02)
        self.await_served(d, want, 'the scheduled post everywhere', timeout=2)
        rows = s.db('SELECT kind, slug, ts FROM announcements WHERE seq > ?', (seq,))
        self.assertEqual([(k, sl) for k, sl, _ in rows], [('published', 'soon')])
        self.assertGreaterEqual(rows[0][2], due, 'announcement ts before the post date')
        self.assertLessEqual(rows[0][2], due + 2)
        r = http_get(d.port, '/categories/%s/feed.xml' % quote('نشاطات'))
        self.assertEqual(r.status, 200)
        self.assertIn('soon', {slug_of_url(i['guid']) for i in rss_items(r.body)[1]},
                      'the category feed')

        # made a draft: removed
        seq = self.last_seq(s)
        s.write('2024/soon.md', post_md('منشور بعد ثوانٍ', rfc3339(due),
                                        extra='categories: ["نشاطات"]\ndraft: true\n'))
        del want['soon']
        self.await_served(d, want, 'the post made draft gone', gone=['soon'])
        self.assertEqual(self.events_after(s, seq), [('removed', 'soon')])
        r = http_get(d.port, '/categories/%s/feed.xml' % quote('نشاطات'))
        self.assertNotIn('soon', {slug_of_url(i['guid']) for i in rss_items(r.body)[1]})
        self.assertEqual(metrics(d.port)['nashra_posts_published'], len(want))


# --- 3. kill -9 at random moments --------------------------------------------

CRASH_NAMES = ['2024/k0.md', '2024/k1.md', '2024/k2.md', 'k3.md', 'sub/k4.md',
               'sub/deep/k5.md', 'later/k6.md', 'later/more/k7.md']
CRASH_BASE = 1736496000  # 2025-01-10T08:00:00Z


def crash_post(i, version):
    """Post i at its version: every date explicit (date: and updated:, which
    default to when nashra saw the file or its change), so that a fresh build
    of the same folder must give the same bytes."""
    date = CRASH_BASE + i * 86400
    return ('---\ntitle: "مقال %d، النسخة %d"\ndate: %s\nupdated: %s\ncategories: ["فئة %d"]\n'
            '---\nنص المقال %d في نسخته %d.\n\n%s\n' % (
                i, version, rfc3339(date), rfc3339(date + version * 60), version % 3, i, version,
                # long enough (~60 KB a post) that writing the outputs takes a
                # good part of each pass: kills land there too
                ('فقرة طويلة من نص المقال، تتكرر. ' * 60 + '\n\n') * (20 + version % 5)))


class Writer(threading.Thread):
    """Adds, edits (in place, or temp-then-rename) and deletes the posts of
    CRASH_NAMES at random until stopped; folders come as needed."""

    def __init__(self, site, rng, versions):
        super().__init__(daemon=True)
        self.site, self.rng, self.versions = site, rng, versions
        self.halt = threading.Event()
        self.ops = 0
        self.error = None

    def run(self):
        try:
            while not self.halt.is_set():
                self.op()
                self.ops += 1
                time.sleep(self.rng.uniform(0, 0.015))
        except Exception as e:  # reported by the test
            self.error = e

    def op(self):
        i = self.rng.randrange(len(CRASH_NAMES))
        rel = CRASH_NAMES[i]
        path = self.site.path(rel)
        if os.path.exists(path) and self.rng.random() < 0.25:
            os.remove(path)
            return
        self.versions[i] += 1
        data = crash_post(i, self.versions[i]).encode('utf-8')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if self.rng.random() < 0.5:
            with open(path, 'wb') as f:
                f.write(data)
        else:
            tmp = (os.path.join(os.path.dirname(path), '.%s.swp' % os.path.basename(path))
                   if self.rng.random() < 0.5 else path + '.tmp')
            with open(tmp, 'wb') as f:
                f.write(data)
            os.rename(tmp, path)

    def stop(self):
        self.halt.set()
        self.join(10)


class ServeCrashTest(ServeCase):
    ROUNDS = 5
    maxDiff = None

    def test_kill9_during_changes_loses_and_duplicates_nothing(self):
        seed = int(os.environ.get('NASHRA_TEST_SEED') or time.time() * 1000) % (1 << 32)
        rng = random.Random(seed)
        why = ' (NASHRA_TEST_SEED=%d reproduces the random choices)' % seed
        s = self.serve_site()
        s.remove('2024/plain-announcement.txt')  # a .txt post has no date: to first seen
        for i in (0, 3, 4):
            os.makedirs(os.path.dirname(s.path(CRASH_NAMES[i])), exist_ok=True)
            s.write(CRASH_NAMES[i], crash_post(i, 1))
        versions = [1 if i in (0, 3, 4) else 0 for i in range(len(CRASH_NAMES))]
        d = self.daemon(s)
        initial = s.published_slugs()
        self.assertEqual(initial, (GOOD_SLUGS - {'plain-announcement'}) | {'k0', 'k3', 'k4'})
        kills = []
        for rnd in range(self.ROUNDS):
            w = Writer(s, rng, versions)
            w.start()
            delay = rng.uniform(0, 0.3)
            time.sleep(delay)
            d.proc.kill()
            d.proc.wait(10)
            w.stop()
            self.assertIsNone(w.error, 'the writer failed: %r' % w.error)
            kills.append('round %d: SIGKILL %.0f ms after %d changes began' % (
                rnd, delay * 1000, w.ops))
            if rng.random() < 0.5:  # and now and then during the start's full pass
                d.start(wait=False)
                delay = rng.uniform(0, 0.03)
                time.sleep(delay)
                d.proc.kill()
                d.proc.wait(10)
                kills.append('round %d: SIGKILL %.0f ms after a restart' % (rnd, delay * 1000))
            d.start(timeout=15)
            self.assertNotIn('level=error', d.log(), 'errors after a restart' + why + '\n' +
                             d.tail())
        rc, took = d.stop()
        self.assertEqual(rc, 0, 'SIGTERM after the crashes' + why + '\n' + d.tail())
        history = '\n'.join(kills)

        # a fresh build of the same folder, into other dirs, same config otherwise
        fresh_out = os.path.join(s.root, 'fresh-public')
        fresh_state = os.path.join(s.root, 'fresh-state')
        cfg = deep_merge(s.config, {'output': {'dir': fresh_out}, 'state': {'dir': fresh_state}})
        cfg_path = os.path.join(s.root, 'fresh.yaml')
        with open(cfg_path, 'w', encoding='utf-8') as f:
            f.write('\n'.join(yaml_lines(cfg)) + '\n')
        res = run_nashra(['build', '-c', cfg_path], now=None)
        self.assertBuilt(res)
        served = read_tree(s.public)
        fresh = read_tree(fresh_out)
        problems = []
        hidden = sorted(p for p in served if any(c.startswith('.') for c in p.split('/')))
        for p in hidden:
            served.pop(p)
        if hidden:
            problems.append('temporary files left in output.dir: %r' % hidden)
        extra = sorted(set(served) - set(fresh))
        missing = sorted(set(fresh) - set(served))
        if extra:
            problems.append('served, not in a fresh build: %r' % extra)
        if missing:
            problems.append('in a fresh build, not served: %r' % missing)
        differ = [p for p in sorted(fresh) if p in served and served[p] != fresh[p]]
        if differ:
            problems.append('bytes differ from a fresh build: %r\n%s' % (
                differ, self.first_diff(served, fresh, differ)))

        # the state: the same posts published, each announcement one change
        fresh_pub = {r[0] for r in run_sql(os.path.join(fresh_state, 'nashra.db'),
                                           'SELECT slug FROM posts WHERE published = 1')}
        if s.published_slugs() != fresh_pub:
            problems.append('published: %r in the state, %r in a fresh build' % (
                sorted(s.published_slugs()), sorted(fresh_pub)))
        published = set(initial)
        for seq, kind, slug in s.announcements():
            if kind == 'published':
                if slug in published:
                    problems.append('announcement %d: %s %s, already published' % (
                        seq, kind, slug))
                published.add(slug)
            elif slug not in published:
                problems.append('announcement %d: %s %s, not published' % (seq, kind, slug))
            elif kind == 'removed':
                published.discard(slug)
        if published != fresh_pub:
            problems.append('the announcement log leaves %r published, a fresh build %r' % (
                sorted(published), sorted(fresh_pub)))
        if problems:
            self.fail('after %d rounds of kill -9%s:\n%s\n--- kills\n%s\n--- content: %r' % (
                self.ROUNDS, why, '\n'.join(problems), history, sorted(read_tree(s.content))))

    def test_crash_leftover_is_swept_and_never_served(self):
        """What a kill -9 between writing an output's temporary file and its
        rename leaves lives in output.dir/.nashra-tmp (lib/fileio.c names it
        PID.N), never beside the outputs: it is not served, it cannot keep
        the folder of a removed post or category alive, and the next start
        removes it (its writer is gone)."""
        s = self.serve_site()
        d = self.daemon(s)
        want = dict(Served(d.port).rss)
        s.write('2024/doomed.md', post_md('زائل', '2025-02-01',
                                          extra='categories: ["فئة زائلة"]\n'))
        want['doomed'] = 'زائل'
        self.await_served(d, want, 'a new post')
        cat = '/categories/%s/feed.xml' % quote('فئة-زائلة')
        self.assertEqual(http_get(d.port, cat).status, 200, 'its category feed')
        tmpdir = s.out_path('.nashra-tmp')
        self.assertTrue(os.path.isdir(tmpdir), 'the daemon writes through ' + tmpdir)
        # A dead writer's leftover: pid 2**22 + 1 is above Linux's pid_max.
        leftover = os.path.join(tmpdir, '%d.7' % (2 ** 22 + 1))
        with open(leftover, 'wb') as f:
            f.write(b'<half written')
        self.assertEqual(http_get(d.port, '/.nashra-tmp/%d.7' % (2 ** 22 + 1)).status, 404)
        s.remove('2024/doomed.md')
        del want['doomed']
        self.await_served(d, want, 'the post removed', gone=['doomed'])
        wait_until(lambda: http_get(d.port, cat).status == 404, 5,
                   what='the feed of the category gone: 404', detail=d.tail)
        self.assertFalse(os.path.exists(s.out_path('posts/doomed')))
        d.stop()
        d = self.daemon(s)
        self.assertFalse(os.path.exists(leftover), 'a full pass sweeps a dead writer\'s file')

    @staticmethod
    def first_diff(a, b, names):
        if not names:
            return ''
        x, y = a[names[0]].decode('utf-8', 'replace'), b[names[0]].decode('utf-8', 'replace')
        i = next((k for k in range(min(len(x), len(y))) if x[k] != y[k]), min(len(x), len(y)))
        return '%s: daemon ...%r... vs fresh build ...%r...' % (
            names[0], x[max(0, i - 120):i + 120], y[max(0, i - 120):i + 120])


def run_sql(db, sql):
    import sqlite3
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# --- 4. SIGHUP -----------------------------------------------------------------

class ServeReloadTest(ServeCase):
    def test_reload_broken_keeps_old_good_applies(self):
        s = self.serve_site()
        d = self.daemon(s)
        before = Served(d.port)
        self.assertEqual(before.rss_channel_title, SITE_TITLE)
        good_config = open(s.config_path, encoding='utf-8').read()

        for broken in ('site:\n  title: "unclosed\n  url: [\n',     # not YAML
                       good_config + 'sitee:\n  title: "x"\n'):      # an unknown key
            mark = len(d.log())
            with open(s.config_path, 'w', encoding='utf-8') as f:
                f.write(broken)
            d.signal(signal.SIGHUP)
            d.wait_log(r'^.*\bevent=reload\b.*\bresult=kept_old\b.*$', 5, after=mark)
            self.assertTrue(d.alive(), d.tail())
            r = http_get(d.port, '/healthz')
            self.assertEqual((r.status, r.text().strip()), (200, 'ok'))
            now = Served(d.port)
            self.assertEqual(now.rss_channel_title, SITE_TITLE, 'the old config is kept')
            self.assertEqual(now.rss_response.body, before.rss_response.body)
            self.assertNotIn('result=applied', d.log()[mark:])

        # still publishing with the old config
        s.write('2024/after-broken.md', post_md('بعد الإعداد المعطوب', '2025-04-01'))
        want = dict(before.rss, **{'after-broken': 'بعد الإعداد المعطوب'})
        self.await_served(d, want, 'a post added after a broken reload')

        # a good one: applied
        mark = len(d.log())
        s.write_config(deep_merge(LISTEN, {'site': {'title': 'عنوان بعد إعادة التحميل'}}))
        d.signal(signal.SIGHUP)
        d.wait_log(r'^.*\bevent=reload\b.*\bresult=applied\b.*$', 5, after=mark)
        snap = wait_until(lambda: (lambda x: x if x.rss_channel_title ==
                                   'عنوان بعد إعادة التحميل' else None)(Served(d.port)),
                          10, what='the new site.title in feed.xml', detail=d.tail)
        self.assertEqual(snap.json_title, 'عنوان بعد إعادة التحميل')
        self.assertIn('عنوان بعد إعادة التحميل', snap.index_page)
        self.assertTrue(snap.matches(want), repr(snap))
        self.assertEqual(self.events_after(s, 0), [('published', 'after-broken')],
                         'a reload announces nothing')


# --- 5 and 7. HTTP ---------------------------------------------------------------

class SlowClient(threading.Thread):
    """Slowloris: sends a request one byte every half second, and notes when
    the server closes the connection."""

    def __init__(self, port, limit=45.0):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=5)
        self.t0 = time.monotonic()
        self.limit = limit
        self.closed_at = None
        self.sent = 0
        self.got = b''
        self.halt = threading.Event()

    def run(self):
        data = b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n' + b''.join(
            b'X-Slow-%d: y\r\n' % i for i in range(1000))
        try:
            for byte in data:
                if self.halt.is_set() or time.monotonic() - self.t0 > self.limit:
                    return
                r, _, _ = select.select([self.sock], [], [], 0.5)
                if r:
                    try:
                        d = self.sock.recv(4096)
                    except OSError:
                        d = b''
                    self.got += d
                    if not d:
                        self.closed_at = time.monotonic() - self.t0
                        return
                try:
                    self.sock.send(bytes([byte]))
                    self.sent += 1
                except OSError:
                    self.closed_at = time.monotonic() - self.t0
                    return
        finally:
            self.sock.close()


class ServeHttpTest(ServeCase):
    """One daemon for the class, with three slowloris clients connected from
    the start: every other test here is also served while they trickle."""

    @classmethod
    def setUpClass(cls):
        cls.s = Site(deep_merge(LISTEN, {}))
        cls.addClassCleanup(cls.s.cleanup)
        cls.d = Daemon(cls.s)
        cls.addClassCleanup(cls.d.kill)
        cls.d.start()
        cls.port = cls.d.port
        cls.slow = [SlowClient(cls.port) for _ in range(3)]
        for c in cls.slow:
            cls.addClassCleanup(c.halt.set)
            c.start()

    def test_conditional_get_etag(self):
        for path, ctype in (('/feed.xml', 'application/rss+xml; charset=utf-8'),
                            ('/atom.xml', 'application/atom+xml; charset=utf-8'),
                            ('/feed.json', 'application/feed+json; charset=utf-8'),
                            ('/', 'text/html; charset=utf-8'),
                            (page_path('mixed-direction'), 'text/html; charset=utf-8')):
            r = http_get(self.port, path)
            self.assertEqual(r.status, 200, path)
            self.assertEqual(r.header('content-type'), ctype, path)
            etag = r.header('etag')
            self.assertTrue(etag and etag.startswith('"') and etag.endswith('"'), etag)
            self.assertTrue(r.header('last-modified'), path)
            r2 = http_get(self.port, path, headers={'If-None-Match': etag})
            self.assertEqual(r2.status, 304, path)
            self.assertEqual(r2.body, b'', path)
            self.assertEqual(r2.header('etag'), etag, path)
            r3 = http_get(self.port, path, headers={'If-None-Match': '"x", W/%s' % etag})
            self.assertEqual(r3.status, 304, 'a list holding the (weak) tag: ' + path)
            r4 = http_get(self.port, path, headers={'If-None-Match': '"not-it"'})
            self.assertEqual((r4.status, r4.body), (200, r.body), path)

    def test_conditional_get_if_modified_since(self):
        r = http_get(self.port, '/feed.xml')
        lm = r.header('last-modified')
        self.assertRegex(lm, r'^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$')
        r2 = http_get(self.port, '/feed.xml', headers={'If-Modified-Since': lm})
        self.assertEqual((r2.status, r2.body), (304, b''))
        r3 = http_get(self.port, '/feed.xml',
                      headers={'If-Modified-Since': 'Mon, 01 Jan 2001 00:00:00 GMT'})
        self.assertEqual((r3.status, r3.body), (200, r.body))
        r4 = http_get(self.port, '/feed.xml',
                      headers={'If-Modified-Since': lm, 'If-None-Match': '"not-it"'})
        self.assertEqual(r4.status, 200, 'If-None-Match decides when both are sent')

    def test_head_has_no_body(self):
        for path in ('/feed.xml', '/', '/healthz', '/metrics'):
            get = http_get(self.port, path)
            raw = http_raw(self.port, ('HEAD %s HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                                       'Connection: close\r\n\r\n' % path).encode())
            head, sep, body = raw.partition(b'\r\n\r\n')
            self.assertTrue(sep, 'HEAD %s: no end of headers in %r' % (path, raw[:300]))
            self.assertTrue(head.startswith(b'HTTP/1.1 200 '), head[:100])
            self.assertEqual(body, b'', 'HEAD %s sent a body' % path)
            if path == '/feed.xml':
                m = re.search(rb'(?im)^content-length: *(\d+)', head)
                self.assertTrue(m, head)
                self.assertEqual(int(m.group(1)), len(get.body))

    def test_wrong_methods_405(self):
        for method in ('POST', 'PUT', 'DELETE', 'PATCH'):
            for path in ('/feed.xml', '/', page_path('raw-html'), '/nowhere'):
                r = http_request(self.port, method, path, body=b'' if method != 'DELETE' else None)
                self.assertEqual(r.status, 405, '%s %s' % (method, path))
                self.assertIn('GET', r.header('allow') or '', '%s %s: Allow' % (method, path))
        self.assertEqual(http_get(self.port, '/healthz').status, 200)

    def test_bad_requests_4xx(self):
        for raw in (b'GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
                    b'GET /%2e%2e/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
                    b'GET /a%00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
                    b'GET / FOO/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
                    b'GET /\r\n\r\n',
                    b'GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\nConnection: close\r\n\r\n'):
            got = http_raw(self.port, raw)
            m = re.match(rb'HTTP/1\.[01] (\d{3})', got)
            self.assertTrue(m, '%r: no status line in %r' % (raw, got[:200]))
            self.assertTrue(400 <= int(m.group(1)) < 500, '%r: %r' % (raw, got[:200]))
        # a line that is not a request at all: libmicrohttpd closes the
        # connection without an answer; whatever it does, the daemon lives
        got = http_raw(self.port, b'NONSENSE\r\n\r\n')
        self.assertTrue(got == b'' or re.match(rb'HTTP/1\.[01] 4\d\d', got), got[:200])
        self.assertTrue(self.d.alive(), self.d.tail())
        self.assertEqual(http_get(self.port, '/healthz').status, 200)

    def test_http11_without_host_400(self):
        """RFC 9112 §3.2: an HTTP/1.1 request without Host MUST get 400."""
        got = http_raw(self.port, b'GET /feed.xml HTTP/1.1\r\nConnection: close\r\n\r\n')
        self.assertRegex(got[:40], rb'^HTTP/1\.1 400 ', got[:300])

    def huge(self, method, path, size, chunked=False):
        """Sends a body of size bytes (a thread writes it while the answer is
        read); returns the status line's code, or None when none came."""
        sock = socket.create_connection(('127.0.0.1', self.port), timeout=10)
        head = '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n' % (method, path)
        head += 'Transfer-Encoding: chunked\r\n\r\n' if chunked else \
            'Content-Length: %d\r\n\r\n' % size
        sock.sendall(head.encode())

        def send():
            chunk = b'x' * 65536
            try:
                for _ in range(0, size, len(chunk)):
                    sock.sendall(b'10000\r\n' + chunk + b'\r\n' if chunked else chunk)
                if chunked:
                    sock.sendall(b'0\r\n\r\n')
            except OSError:
                pass  # the server stopped reading: that is the point
        t = threading.Thread(target=send, daemon=True)
        t.start()
        got = b''
        try:
            while b'\r\n' not in got:
                d = sock.recv(65536)
                if not d:
                    break
                got += d
        except OSError as e:
            got += ('<%s>' % e).encode()
        finally:
            sock.close()
            t.join(10)
        m = re.match(rb'HTTP/1\.[01] (\d{3})', got)
        return int(m.group(1)) if m else got[:200]

    def test_huge_bodies_refused(self):
        five = 5 * 1024 * 1024
        cases = [('POST', '/feed.xml', False, (405, 413)),
                 ('POST', '/nowhere/at/all', False, (405, 413)),
                 ('PUT', '/', True, (405, 413)),
                 ('GET', '/healthz', False, (413,)),   # a route that takes no body
                 ('GET', '/metrics', True, (413,))]
        for method, path, chunked, ok in cases:
            status = self.huge(method, path, five, chunked)
            self.assertIn(status, ok, '%s %s with 5 MB%s' % (method, path,
                                                             ' chunked' if chunked else ''))
            self.assertTrue(self.d.alive(), self.d.tail())
            r = http_get(self.port, '/healthz')
            self.assertEqual(r.status, 200)

    def test_healthz(self):
        r = http_get(self.port, '/healthz')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.text().strip(), 'ok')

    def test_metrics_prometheus(self):
        m = metrics(self.port)
        self.assertTrue(m['__content_type__'].startswith('text/plain'), m['__content_type__'])
        self.assertIn('version=0.0.4', m['__content_type__'])
        self.assertEqual(m['nashra_posts_published'], len(GOOD_SLUGS))
        self.assertEqual(m['nashra_posts_published'], len(Served(self.port).rss))
        self.assertEqual(m['nashra_posts_published'], len(self.s.published_slugs()))

    def test_zz_slowloris_cut_off_others_served(self):
        """Named to run last: the slow clients have been trickling during
        the tests above; they are cut off by the request timeout (30 s)."""
        for c in self.slow:
            self.assertTrue(c.closed_at is None or c.closed_at >= 20,
                            'a slow client was closed after %.1fs, sent %d bytes, got %r' % (
                                c.closed_at or 0, c.sent, c.got[:200]))
        slow = list(self.slow)
        if all(c.closed_at is not None for c in slow):  # a slow machine: the tests took 30 s
            extra = SlowClient(self.port)
            self.addCleanup(extra.halt.set)
            extra.start()
            slow.append(extra)
        connected = [c for c in slow if c.closed_at is None]
        for _ in range(20):
            t0 = time.monotonic()
            r = http_get(self.port, '/feed.xml', timeout=2)
            self.assertEqual(r.status, 200)
            self.assertLess(time.monotonic() - t0, 1.0, 'a request took long beside slow ones')
        self.assertTrue(any(c.closed_at is None for c in connected),
                        'a slow client still connected while the others were served')
        for c in slow:
            c.join(max(0.0, c.limit + 5 - (time.monotonic() - c.t0)))
            self.assertIsNotNone(c.closed_at, 'a slow client still connected after %.0fs '
                                 '(%d bytes sent)' % (time.monotonic() - c.t0, c.sent))
            self.assertLessEqual(c.closed_at, 40, 'cut off late')
            self.assertGreaterEqual(c.closed_at, 10, 'cut off before the request timeout')
        m = metrics(self.port)
        self.assertGreaterEqual(m['nashra_http_request_timeouts_total'], 3)
        self.assertTrue(self.d.alive(), self.d.tail())


# --- 6. SIGTERM, SIGINT -------------------------------------------------------------

class ServeStopTest(ServeCase):
    def stop_clean(self, sig):
        import http.client
        s = self.serve_site()
        d = self.daemon(s)
        idle = http.client.HTTPConnection('127.0.0.1', d.port, timeout=5)  # kept alive
        idle.request('GET', '/feed.xml')
        self.assertEqual(idle.getresponse().read()[:5], b'<?xml')
        half = socket.create_connection(('127.0.0.1', d.port), timeout=5)  # half a request
        half.sendall(b'GET /feed.xml HTTP/1.1\r\nHost: 127.0.0.1\r\nX-')
        self.addCleanup(idle.close)
        self.addCleanup(half.close)
        s.write('2024/last.md', post_md('أخير', '2025-05-01'))
        rc, took = d.stop(sig, timeout=10)
        self.assertEqual(rc, 0, d.tail())
        self.assertLess(took, 10)
        self.assertRegex(d.log(), r'(?m)^.*\bevent=stop\b.*\bresult=clean\b.*$')
        with self.assertRaises(OSError, msg='still listening after the stop'):
            socket.create_connection(('127.0.0.1', d.port), timeout=2).close()

    def test_sigterm(self):
        self.stop_clean(signal.SIGTERM)

    def test_sigint(self):
        self.stop_clean(signal.SIGINT)


# --- valgrind (NASHRA_VALGRIND=1) ----------------------------------------------------

if os.environ.get('NASHRA_VALGRIND') == '1':
    class ValgrindServeTest(ServeCase):
        def test_serve_under_valgrind(self):
            s = self.serve_site()
            # The actor's key made beforehand: RSA key generation under
            # valgrind takes minutes on a busy machine, and is not this test's.
            os.makedirs(s.state, exist_ok=True)
            pem = os.path.join(s.state, 'actor.pem')
            subprocess.run(['openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt',
                            'rsa_keygen_bits:2048', '-out', pem], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.chmod(pem, 0o600)
            vlog = os.path.join(s.root, 'valgrind.log')
            d = self.daemon(s, start=False, wrapper=[
                'valgrind', '--leak-check=full', '--error-exitcode=3',
                '--errors-for-leak-kinds=definite,indirect', '--log-file=' + vlog])
            d.start(timeout=120)
            want = dict(Served(d.port).rss)

            def valgrind_log():
                with open(vlog, encoding='utf-8', errors='replace') as f:
                    return f.read()

            # changes
            s.write('2024/v1.md', post_md('أول', '2025-06-01'))
            want['v1'] = 'أول'
            self.await_served(d, want, 'a new post', timeout=60)
            s.write('2024/v1.md', post_md('أول معدّل', '2025-06-01'))
            want['v1'] = 'أول معدّل'
            self.await_served(d, want, 'an edit', timeout=60)
            os.rename(s.path('2024/v1.md'), s.path('2024/v2.md'))
            want['v2'] = want.pop('v1')
            self.await_served(d, want, 'a rename', timeout=60)
            os.makedirs(s.path('fresh/dir'))
            s.write('fresh/dir/v3.md', post_md('ثالث', '2025-06-02'))
            want['v3'] = 'ثالث'
            self.await_served(d, want, 'a post in a new folder', timeout=60)
            s.remove('2024/v2.md')
            del want['v2']
            s.write('2024/bad.md', '---\ntitle: "unclosed\n---\nx\n')
            self.await_served(d, want, 'a delete', timeout=60)
            # requests
            etag = http_get(d.port, '/feed.xml', timeout=30).header('etag')
            self.assertEqual(http_get(d.port, '/feed.xml', headers={'If-None-Match': etag},
                                      timeout=30).status, 304)
            self.assertEqual(http_request(d.port, 'POST', '/feed.xml', body=b'x' * 100000,
                                          timeout=30).status, 405)
            self.assertEqual(http_request(d.port, 'GET', '/healthz', body=b'x' * 100000,
                                          timeout=30).status, 413)
            self.assertIn('nashra_posts_published', metrics(d.port))
            http_raw(d.port, b'GET /../x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
                     timeout=30)
            # reloads, broken and good
            good = open(s.config_path, encoding='utf-8').read()
            with open(s.config_path, 'w', encoding='utf-8') as f:
                f.write('site: [\n')
            mark = len(d.log())
            d.signal(signal.SIGHUP)
            d.wait_log(r'result=kept_old', 60, after=mark)
            with open(s.config_path, 'w', encoding='utf-8') as f:
                f.write(good.replace(SITE_TITLE, 'عنوان آخر'))
            mark = len(d.log())
            d.signal(signal.SIGHUP)
            d.wait_log(r'result=applied', 60, after=mark)
            rc, _ = d.stop(signal.SIGTERM, timeout=60)
            vl = valgrind_log()
            print('\nvalgrind (exit %s): %s' % (rc, ' | '.join(
                l.split('== ', 1)[-1].strip() for l in vl.splitlines()
                if re.search(r'(definitely|indirectly|possibly) lost:|still reachable:|'
                             r'ERROR SUMMARY|All heap blocks were freed', l))))
            self.assertEqual(rc, 0, 'exit status under valgrind (3: valgrind found errors)\n'
                             + vl[-6000:] + '\n' + d.tail())
            self.assertRegex(d.log(), r'event=stop result=clean')
            self.assertNotRegex(vl, r'definitely lost: [1-9]', vl[-6000:])
            self.assertNotRegex(vl, r'indirectly lost: [1-9]', vl[-6000:])
            self.assertRegex(vl, r'ERROR SUMMARY: 0 errors', vl[-6000:])


if __name__ == '__main__':
    unittest.main()
