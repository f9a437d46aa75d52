"""`nashra build` on corpus/posts: what gets published, and that every
output is right: RSS, Atom (valid against RFC 4287's schema), JSON Feed 1.1,
the HTML pages (lang, dir), absolute links, no script, category feeds."""

import calendar
import html
import json
import os
import re
import unittest
from datetime import datetime

import feedparser

from common import (DRAFT_SLUG, FUTURE_SLUG, GOOD_SLUGS, NOW_2026, NOW_2099, SITE_TITLE,
                    SITE_URL, Site, atom_entries, atom_rng, corpus, front_matter_title,
                    html_tag_attrs, post_url, rss_items, slug_of_url, xml_files,
                    xmllint)

CATEGORY = 'نشاطات'
CATEGORY_2026 = {'dco-diplomatic-forum', 'mixed-direction'}
CATEGORY_2099 = CATEGORY_2026 | {FUTURE_SLUG}
BRIEF = 'digital-economy-brief'

# 2024-04-13 10:00 in Asia/Riyadh (UTC+3), and an RFC 3339 date in UTC.
DCO_DATE = calendar.timegm((2024, 4, 13, 7, 0, 0))
BRIEF_DATE = calendar.timegm((2024, 5, 2, 8, 30, 0))

RFC822_RE = re.compile(r'^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} '
                       r'(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} '
                       r'\d{2}:\d{2}:\d{2} (GMT|UT|Z|[+-]\d{4})$')


def expected_titles():
    """slug -> title, read from the corpus itself (byte for byte)."""
    titles = {}
    for rel in ('2024/dco-diplomatic-forum.md', '2024/digital-economy-brief.md',
                '2024/mixed-direction.md', '2024/raw-html.md', '2099/future.md'):
        slug = os.path.splitext(os.path.basename(rel))[0]
        titles[slug] = front_matter_title(corpus('posts', rel))
    with open(corpus('posts', '2024', 'plain-announcement.txt'), encoding='utf-8') as f:
        titles['plain-announcement'] = next(l.strip() for l in f if l.strip())
    return titles


def rfc3339(s):
    return int(datetime.fromisoformat(s.replace('Z', '+00:00')).timestamp())


def embedded_html(site, rel):
    """The post HTML each feed embeds, by slug: {slug: html}."""
    data = site.out(rel)
    if rel.endswith('feed.xml'):
        _, items = rss_items(data)
        return {slug_of_url(i['guid']): i['content'] or i['description'] or '' for i in items}
    if rel.endswith('atom.xml'):
        _, entries = atom_entries(data)
        return {slug_of_url(e['id']): e['content'] or '' for e in entries}
    feed = json.loads(data)
    return {slug_of_url(i.get('id')): i.get('content_html') or '' for i in feed['items']}


class BuildTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sites = []
        cls.s = Site()
        cls.sites.append(cls.s)
        cls.res = cls.s.build(now=NOW_2026)
        cls.s99 = Site()
        cls.sites.append(cls.s99)
        cls.res99 = cls.s99.build(now=NOW_2099)

    @classmethod
    def tearDownClass(cls):
        for s in cls.sites:
            s.cleanup()

    def setUp(self):
        self.assertEqual(self.res.rc, 0, self.res.describe())
        self.assertEqual(self.res.diags(), [], 'the good corpus must build without errors:\n' +
                         self.res.describe())

    # --- what is published -------------------------------------------------

    def feed_slugs(self, site, prefix=''):
        _, items = rss_items(site.out(prefix + 'feed.xml'))
        _, entries = atom_entries(site.out(prefix + 'atom.xml'))
        jf = json.loads(site.out(prefix + 'feed.json'))
        return {
            'feed.xml': sorted(slug_of_url(i['guid']) for i in items),
            'atom.xml': sorted(slug_of_url(e['id']) for e in entries),
            'feed.json': sorted(slug_of_url(i.get('id')) for i in jf['items']),
        }

    def test_five_published(self):
        self.assertEqual(self.s.published_slugs(), GOOD_SLUGS)
        for name, slugs in self.feed_slugs(self.s).items():
            self.assertEqual(slugs, sorted(GOOD_SLUGS), name)
        self.assertEqual(set(os.listdir(self.s.out_path('posts'))), GOOD_SLUGS)

    def test_scheduled_post_appears_when_due(self):
        self.assertEqual(self.res99.rc, 0, self.res99.describe())
        want = GOOD_SLUGS | {FUTURE_SLUG}
        self.assertEqual(self.s99.published_slugs(), want)
        for name, slugs in self.feed_slugs(self.s99).items():
            self.assertEqual(slugs, sorted(want), name)
        self.assertTrue(os.path.isfile(self.s99.out_path('posts/future/index.html')))

    def test_draft_never_appears(self):
        draft_title = front_matter_title(corpus('posts', '2024', 'draft-notes.md')).encode()
        for site in (self.s, self.s99):
            self.assertFalse(os.path.exists(site.out_path('posts/' + DRAFT_SLUG)))
            for rel, data in site.outputs().items():
                self.assertNotIn(DRAFT_SLUG.encode(), data, rel)
                self.assertNotIn(draft_title, data, rel)
                self.assertNotIn('مسودة:'.encode(), data, rel)

    # --- feeds parse, titles, language, dates -------------------------------

    def test_feedparser_no_bozo(self):
        for rel in ('feed.xml', 'atom.xml'):
            d = feedparser.parse(self.s.out(rel))
            self.assertEqual(d.bozo, 0, '%s: %r' % (rel, d.get('bozo_exception')))
            self.assertEqual(len(d.entries), 5, rel)
            self.assertEqual(d.feed.get('language'), 'ar', rel + ': feed language')
            self.assertEqual(d.feed.get('title'), SITE_TITLE, rel)

    def test_titles_exact(self):
        titles = expected_titles()
        _, items = rss_items(self.s.out('feed.xml'))
        _, entries = atom_entries(self.s.out('atom.xml'))
        jf = json.loads(self.s.out('feed.json'))
        got = {
            'feed.xml': {slug_of_url(i['guid']): i['title'] for i in items},
            'atom.xml': {slug_of_url(e['id']): e['title'] for e in entries},
            'feed.json': {slug_of_url(i['id']): i.get('title') for i in jf['items']},
            'feedparser feed.xml': {slug_of_url(e.get('id')): e.get('title')
                                    for e in feedparser.parse(self.s.out('feed.xml')).entries},
            'feedparser atom.xml': {slug_of_url(e.get('id')): e.get('title')
                                    for e in feedparser.parse(self.s.out('atom.xml')).entries},
        }
        for name, by_slug in got.items():
            for slug in GOOD_SLUGS:
                self.assertEqual(by_slug.get(slug), titles[slug], '%s: title of %s' % (name, slug))
        arabic = titles['dco-diplomatic-forum'].encode('utf-8')
        self.assertEqual(got['feed.xml']['dco-diplomatic-forum'].encode('utf-8'), arabic)
        for slug in GOOD_SLUGS:
            page = self.s.out('posts/%s/index.html' % slug).decode('utf-8')
            self.assertIn(titles[slug], html.unescape(page), 'post page of ' + slug)
            m = re.search(r'<title>(.*?)</title>', page, re.S)
            self.assertIsNotNone(m, 'no <title> in the page of ' + slug)
            self.assertIn(titles[slug], html.unescape(m.group(1)), '<title> of ' + slug)

    def test_dates(self):
        want = {'dco-diplomatic-forum': DCO_DATE, BRIEF: BRIEF_DATE}
        rows = dict(self.s.db('SELECT slug, date FROM posts'))
        for slug, t in want.items():
            self.assertEqual(rows.get(slug), t, 'posts.date of ' + slug)
        for rel in ('feed.xml', 'atom.xml'):
            by_slug = {slug_of_url(e.get('id')): e for e in feedparser.parse(self.s.out(rel)).entries}
            for slug, t in want.items():
                self.assertEqual(calendar.timegm(by_slug[slug].published_parsed), t,
                                 '%s: published date of %s' % (rel, slug))
        _, entries = atom_entries(self.s.out('atom.xml'))
        atom = {slug_of_url(e['id']): e for e in entries}
        self.assertEqual(rfc3339(atom['dco-diplomatic-forum']['published']), DCO_DATE)
        self.assertEqual(rfc3339(atom[BRIEF]['published']), BRIEF_DATE)
        jf = {slug_of_url(i['id']): i for i in json.loads(self.s.out('feed.json'))['items']}
        for slug, t in want.items():
            self.assertEqual(rfc3339(jf[slug]['date_published']), t, 'feed.json ' + slug)

    def test_rss_dates_rfc822_english(self):
        root, items = rss_items(self.s.out('feed.xml'))
        dates = [i['pubDate'] for i in items]
        last = root.findtext('./channel/lastBuildDate')
        if last is not None:
            dates.append(last)
        for d in dates:
            self.assertRegex(d or '', RFC822_RE)

    def test_rss_structure(self):
        root, items = rss_items(self.s.out('feed.xml'))
        self.assertEqual(root.tag, 'rss')
        self.assertEqual(root.get('version'), '2.0')
        self.assertEqual(root.findtext('./channel/language'), 'ar')
        self.assertEqual(root.findtext('./channel/title'), SITE_TITLE)
        self_links = [l.get('href') for l in root.findall('./channel/{http://www.w3.org/2005/Atom}link')
                      if l.get('rel') == 'self']
        self.assertEqual(self_links, [SITE_URL + '/feed.xml'])
        for i in items:
            slug = slug_of_url(i['guid'])
            self.assertEqual(i['guid'], post_url(slug))
            self.assertEqual(i['link'], post_url(slug))
            self.assertEqual(i['guid_permalink'], 'true')
            self.assertTrue(i['content'], 'content:encoded of ' + slug)
            self.assertTrue(i['creator'], 'dc:creator of ' + slug)
        cats = {slug_of_url(i['guid']): i['categories'] for i in items}
        self.assertIn(CATEGORY, cats['dco-diplomatic-forum'])
        self.assertIn('Briefs', cats['mixed-direction'])
        self.assertIn(CATEGORY, cats['mixed-direction'])
        creators = {slug_of_url(i['guid']): i['creator'] for i in items}
        self.assertEqual(creators['dco-diplomatic-forum'], 'د. وسيلة محمود الحلبي')
        self.assertEqual(creators[BRIEF], 'Editorial desk')

    def test_atom_structure(self):
        root, entries = atom_entries(self.s.out('atom.xml'))
        self.assertEqual(root.get('{http://www.w3.org/XML/1998/namespace}lang'), 'ar')
        self.assertEqual(root.findtext('{http://www.w3.org/2005/Atom}id') is not None, True)
        by = {slug_of_url(e['id']): e for e in entries}
        for slug, e in by.items():
            self.assertEqual(e['content_type'], 'html', slug)
            self.assertTrue(e['summary'], 'summary of ' + slug)
            self.assertTrue(e['published'] and e['updated'], slug)
            self.assertIn(('alternate', post_url(slug)),
                          [(r or 'alternate', h) for r, h in e['links']], slug)
        self.assertEqual(by[BRIEF]['summary'],
                         'Why cross-border data flows matter for small businesses, in five points.')
        self.assertEqual(by[BRIEF]['lang'], 'en', 'xml:lang of the English entry')
        # No build timestamp: the feed's updated is the newest post's.
        newest = max(rfc3339(e['updated']) for e in entries)
        self.assertEqual(rfc3339(root.findtext('{http://www.w3.org/2005/Atom}updated')), newest)

    def test_atom_valid_rfc4287(self):
        rng = atom_rng()
        for site in (self.s, self.s99):
            for path in xml_files(site.public):
                if os.path.basename(path) != 'atom.xml':
                    continue
                rc, err = xmllint(path, '--relaxng', rng)
                self.assertEqual(rc, 0, '%s does not validate against RFC 4287:\n%s' % (path, err))

    def test_xml_well_formed(self):
        for site in (self.s, self.s99):
            for path in xml_files(site.public):
                rc, err = xmllint(path)
                self.assertEqual(rc, 0, '%s: %s' % (path, err))

    def test_json_feed_fields(self):
        jf = json.loads(self.s.out('feed.json'))
        self.assertEqual(jf.get('version'), 'https://jsonfeed.org/version/1.1')
        self.assertEqual(jf.get('title'), SITE_TITLE)
        self.assertIsInstance(jf.get('items'), list)
        self.assertEqual(jf.get('home_page_url'), SITE_URL + '/')
        self.assertEqual(jf.get('feed_url'), SITE_URL + '/feed.json')
        self.assertEqual(jf.get('language'), 'ar')
        self.assertEqual(len(jf['items']), 5)
        for it in jf['items']:
            self.assertIsInstance(it.get('id'), str)
            self.assertTrue(it.get('content_html') or it.get('content_text'), it.get('id'))
            slug = slug_of_url(it['id'])
            self.assertIn(slug, GOOD_SLUGS)
            self.assertEqual(it.get('url'), post_url(slug))
            self.assertTrue(it.get('title'))
            self.assertTrue(it.get('date_published'))
            rfc3339(it['date_published'])
            if 'date_modified' in it:
                rfc3339(it['date_modified'])
            authors = it.get('authors') or jf.get('authors')
            self.assertTrue(authors and all(a.get('name') for a in authors), it['id'])
        by = {slug_of_url(i['id']): i for i in jf['items']}
        self.assertEqual(by[BRIEF].get('summary'),
                         'Why cross-border data flows matter for small businesses, in five points.')
        self.assertEqual(by[BRIEF].get('language'), 'en')
        self.assertEqual(by[BRIEF]['authors'][0]['name'], 'Editorial desk')

    # --- HTML pages ---------------------------------------------------------

    def test_html_lang_dir(self):
        for slug in GOOD_SLUGS:
            attrs = html_tag_attrs(self.s.out('posts/%s/index.html' % slug))
            self.assertIsNotNone(attrs, 'no <html> in ' + slug)
            want = ('en', 'ltr') if slug == BRIEF else ('ar', 'rtl')
            self.assertEqual((attrs.get('lang'), attrs.get('dir')), want, slug)
        attrs = html_tag_attrs(self.s.out('index.html'))
        self.assertEqual((attrs.get('lang'), attrs.get('dir')), ('ar', 'rtl'), 'index.html')

    def test_html_autodiscovery(self):
        page = self.s.out('index.html').decode('utf-8')
        for name in ('feed.xml', 'atom.xml', 'feed.json'):
            self.assertRegex(page, r'<link[^>]+href="(%s)?/%s"' % (re.escape(SITE_URL), name))

    # --- links and safety ----------------------------------------------------

    def test_relative_links_absolute_everywhere(self):
        base = SITE_URL + '/posts/' + BRIEF + '/'
        want = [('href', base + 'report.pdf'), ('href', SITE_URL + '/press/'),
                ('src', base + 'images/flows.png')]
        sources = {rel: embedded_html(self.s, rel)[BRIEF]
                   for rel in ('feed.xml', 'atom.xml', 'feed.json')}
        sources['posts/%s/index.html' % BRIEF] = self.s.out(
            'posts/%s/index.html' % BRIEF).decode('utf-8')
        for rel, h in sources.items():
            for attr, url in want:
                self.assertRegex(h, r'%s=(["\'])%s\1' % (attr, re.escape(url)),
                                 '%s: %s must be absolute' % (rel, url))
            for bad in ('report.pdf', '/press/', 'images/flows.png'):
                self.assertNotRegex(h, r'(href|src)=(["\'])%s\2' % re.escape(bad), rel)
            if rel.endswith(('.xml', '.json')):
                for m in re.finditer(r'(?:href|src)=["\']([^"\']*)', h):
                    self.assertRegex(m.group(1), r'^(https?:|mailto:)', '%s: relative link' % rel)

    def test_no_script_anywhere(self):
        for site in (self.s, self.s99):
            for rel, data in site.outputs().items():
                self.check_no_script(rel, data.decode('utf-8').lower())
            for rel in ('feed.xml', 'atom.xml', 'feed.json'):
                for slug, h in embedded_html(site, rel).items():
                    self.check_no_script('%s (%s)' % (rel, slug), h.lower())
        page = self.s.out('posts/raw-html/index.html').decode('utf-8')
        self.assertIn('Safe text before.', page)

    def check_no_script(self, where, text):
        for bad in ('<script', 'onerror=', 'javascript:', 'onclick=', '<iframe'):
            self.assertNotIn(bad, text, where)

    # --- category feeds ------------------------------------------------------

    def test_category_feeds(self):
        for site, want in ((self.s, CATEGORY_2026), (self.s99, CATEGORY_2099)):
            prefix = 'categories/%s/' % CATEGORY
            if not os.path.isdir(site.out_path(prefix)):
                have = os.listdir(site.out_path('categories')) if os.path.isdir(
                    site.out_path('categories')) else []
                self.fail('no %s in the outputs (categories/: %s)' % (prefix, have))
            for name, slugs in self.feed_slugs(site, prefix).items():
                self.assertEqual(slugs, sorted(want), prefix + name)
            for rel in ('feed.xml', 'atom.xml'):
                d = feedparser.parse(site.out(prefix + rel))
                self.assertEqual(d.bozo, 0, prefix + rel)

    def test_category_briefs(self):
        prefix = 'categories/briefs/'
        self.assertTrue(os.path.isdir(self.s.out_path(prefix)),
                        'no %s (categories/: %s)' % (prefix, os.listdir(self.s.out_path('categories'))))
        for name, slugs in self.feed_slugs(self.s, prefix).items():
            self.assertEqual(slugs, sorted({BRIEF, 'mixed-direction', 'raw-html'}), prefix + name)


if __name__ == '__main__':
    unittest.main()
