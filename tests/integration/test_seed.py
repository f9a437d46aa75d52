"""The seed article (corpus/seed), a scraped plain-text page with no front
matter, published as a .txt post: every paragraph of it must survive intact
in the post page and in each feed's content."""

import json
import re
import unittest

from common import (SiteTestCase, atom_entries, corpus, html_text, rss_items, slug_of_url)

NAME = '000_4b7e5a30f0005dac'


def paragraphs(text):
    """Blank-line separated blocks, each with its single line breaks."""
    blocks = re.split(r'\n[ \t]*\n', text.replace('\r\n', '\n'))
    return [b.strip('\n') for b in blocks if b.strip()]


class SeedTest(SiteTestCase):
    def setUp(self):
        with open(corpus('seed', NAME + '.txt'), 'rb') as f:
            self.raw = f.read()
        self.paras = paragraphs(self.raw.decode('utf-8'))
        self.assertGreater(len(self.paras), 5)
        self.s = self.site(posts=False)
        self.s.write(NAME + '.txt', self.raw)
        self.res = self.s.build()
        self.assertBuilt(self.res)
        self.assertEqual(self.res.diags(), [], self.res.describe())

    def assertAllParagraphs(self, where, fragment):
        text = html_text(fragment)
        for i, p in enumerate(self.paras):
            if p not in text:
                # Say which line of the paragraph went missing or changed.
                lost = [l for l in p.split('\n') if l not in text]
                self.fail('%s: paragraph %d of the seed is not intact (%d lines changed; '
                          'first: %r)' % (where, i + 1, len(lost), (lost or [p])[0][:120]))

    def test_published(self):
        self.assertEqual(self.s.published_slugs(), {NAME})

    def test_title_is_first_line(self):
        _, items = rss_items(self.s.out('feed.xml'))
        self.assertEqual([i['title'] for i in items], [self.paras[0].split('\n')[0]])

    def test_post_page(self):
        page = self.s.out('posts/%s/index.html' % NAME).decode('utf-8')
        self.assertAllParagraphs('post page', page)

    def test_line_breaks_are_br(self):
        page = self.s.out('posts/%s/index.html' % NAME).decode('utf-8')
        multi = [p for p in self.paras if '\n' in p]
        self.assertTrue(multi, 'the seed has a paragraph with single line breaks')
        first, second = multi[0].split('\n')[:2]
        self.assertRegex(page, re.escape(first[-40:]) + r'\s*<br\s*/?>\s*' + re.escape(second[:40]))

    def test_rss_content(self):
        _, items = rss_items(self.s.out('feed.xml'))
        self.assertEqual(len(items), 1)
        self.assertAllParagraphs('feed.xml content:encoded', items[0]['content'] or '')

    def test_atom_content(self):
        _, entries = atom_entries(self.s.out('atom.xml'))
        self.assertEqual(len(entries), 1)
        self.assertAllParagraphs('atom.xml content', entries[0]['content'] or '')

    def test_json_content(self):
        items = json.loads(self.s.out('feed.json'))['items']
        self.assertEqual([slug_of_url(i['id']) for i in items], [NAME])
        self.assertAllParagraphs('feed.json content_html', items[0].get('content_html') or '')
        if 'content_text' in items[0]:
            text = items[0]['content_text']
            for i, p in enumerate(self.paras):
                self.assertIn(p, text, 'feed.json content_text: paragraph %d' % (i + 1))


if __name__ == '__main__':
    unittest.main()
