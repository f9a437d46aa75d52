"""Bad input (corpus/bad and its EXPECT.md, plus cases made on the fly):
each bad post gets exactly its expected outcome, the good posts still
publish, every output stays well-formed, nothing is written outside
output.dir, and `nashra check` lists every problem."""

import html
import json
import os
import re
import shutil
import unittest

import feedparser

from common import (GOOD_SLUGS, NOW_2026, Site, SiteTestCase, atom_entries, atom_rng, corpus,
                    front_matter_title, read_tree, rss_items, slug_of_url, xml_files, xmllint)

ESCAPED = '/tmp/nashra-escaped'

# file -> what its one diagnostic must hold (EXPECT.md): line is an int or
# an inclusive (lo, hi) range, col True when a column is required, words the
# strings the message must name.
REJECTED = {
    'unterminated-front-matter.md': {'line': 1},
    'bad-yaml.md': {'line': (2, 4), 'col': True},
    'wrong-types.md': {'words': ('date', 'categories', 'draft')},
    'invalid-utf8.md': {'line': 5},
    'binary.md': {},
    'empty.md': {},
    'dup-b.md': {'words': ('dup-a.md',)},
    'slug-traversal.md': {},
    'slug-weird.md': {},
    'yaml-bomb.md': {},
    'date-invalid.md': {},
}
# file -> slug it is published under.
PUBLISHED = {
    'control-chars.md': 'control-chars',
    'only-front-matter.md': 'only-front-matter',
    'dup-a.md': 'same-slug',
    'crlf.md': 'crlf',
    'bom.md': 'bom',
    'escaping.md': 'escaping',
    'header-injection.md': 'header-injection',
}
FORBIDDEN_CHARS = set(range(0x00, 0x09)) | {0x0B, 0x0C} | set(range(0x0E, 0x20)) | {0xFFFE, 0xFFFF}
ESCAPING_TITLE = 'CDATA ]]> and </script> and <b>bold</b> & more'
ESCAPING_AUTHOR = 'A <a@b.c> & "Q"'


def bad_files():
    d = corpus('bad')
    names = sorted(f for f in os.listdir(d) if f.endswith('.md') and f != 'EXPECT.md')
    unknown = set(names) - set(REJECTED) - set(PUBLISHED)
    if unknown:
        raise AssertionError('corpus/bad has files this test does not know: %s' % sorted(unknown))
    return names


def add_bad(site):
    os.makedirs(site.path('bad'), exist_ok=True)
    for f in bad_files():
        shutil.copyfile(corpus('bad', f), site.path('bad/' + f))


def refs_and_escapes(text):
    """Code points written as XML character references or JSON escapes."""
    cps = [int(h, 16) for h in re.findall(r'&#[xX]([0-9a-fA-F]+);', text)]
    cps += [int(d) for d in re.findall(r'&#([0-9]+);', text)]
    cps += [int(h, 16) for h in re.findall(r'\\u([0-9a-fA-F]{4})', text)]
    return cps


class BadCorpusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pre_existing_escape = os.path.exists(ESCAPED)
        if cls.pre_existing_escape:  # left by an earlier run: start clean
            shutil.rmtree(ESCAPED, ignore_errors=True)
            if os.path.isfile(ESCAPED):
                os.remove(ESCAPED)
        cls.s = Site()
        add_bad(cls.s)
        cls.content_before = read_tree(cls.s.content)
        cls.res = cls.s.build(now=NOW_2026, timeout=20)

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def setUp(self):
        self.assertEqual(self.res.rc, 0, self.res.describe())

    def diag_by_file(self, res):
        by = {}
        for d in res.diags():
            by.setdefault(d['file'], []).append(d)
        return by

    def check_diagnostics(self, res, site):
        by = self.diag_by_file(res)
        want = {site.path('bad/' + f) for f in REJECTED}
        self.assertEqual(sorted(set(by) - want), [], 'reported but not expected to be rejected:\n'
                         + res.err)
        self.assertEqual(sorted(want - set(by)), [], 'rejected posts not reported as '
                         'FILE[:LINE[:COL]]: error: ...\n' + res.err)
        for f, rule in REJECTED.items():
            ds = by[site.path('bad/' + f)]
            self.assertEqual(len(ds), 1, '%s must be reported once:\n%s' % (f, res.err))
            d = ds[0]
            line = rule.get('line')
            if isinstance(line, int):
                self.assertEqual(d['line'], line, '%s: line in %r' % (f, d))
            elif line:
                self.assertIsNotNone(d['line'], '%s: no line in %r' % (f, d))
                self.assertTrue(line[0] <= d['line'] <= line[1], '%s: line in %r' % (f, d))
            if rule.get('col'):
                self.assertIsNotNone(d['col'], '%s: no column in %r' % (f, d))
            for w in rule.get('words', ()):
                self.assertIn(w, d['msg'], '%s: message must name %s' % (f, w))

    # --- outcomes ------------------------------------------------------------

    def test_rejected_reported_once_each(self):
        self.check_diagnostics(self.res, self.s)

    def test_published_set(self):
        want = GOOD_SLUGS | set(PUBLISHED.values())
        self.assertEqual(self.s.published_slugs(), want)
        _, items = rss_items(self.s.out('feed.xml'))
        _, entries = atom_entries(self.s.out('atom.xml'))
        jf = json.loads(self.s.out('feed.json'))
        self.assertEqual(sorted(slug_of_url(i['guid']) for i in items), sorted(want), 'feed.xml')
        self.assertEqual(sorted(slug_of_url(e['id']) for e in entries), sorted(want), 'atom.xml')
        self.assertEqual(sorted(slug_of_url(i['id']) for i in jf['items']), sorted(want),
                         'feed.json')
        self.assertEqual(set(os.listdir(self.s.out_path('posts'))), want)

    def titles(self):
        _, items = rss_items(self.s.out('feed.xml'))
        _, entries = atom_entries(self.s.out('atom.xml'))
        jf = json.loads(self.s.out('feed.json'))
        return {
            'feed.xml': {slug_of_url(i['guid']): i for i in items},
            'atom.xml': {slug_of_url(e['id']): e for e in entries},
            'feed.json': {slug_of_url(i['id']): i for i in jf['items']},
        }

    def test_titles_of_published_bad_posts(self):
        want = {
            'only-front-matter': front_matter_title(corpus('bad', 'only-front-matter.md')),
            'same-slug': 'first', 'crlf': 'CRLF post', 'bom': 'BOM post',
            'escaping': ESCAPING_TITLE,
        }
        for fmt, by in self.titles().items():
            for slug, t in want.items():
                self.assertEqual(by[slug]['title'], t, '%s: %s' % (fmt, slug))

    def test_escaping(self):
        for fmt, by in self.titles().items():
            e = by['escaping']
            author = {'feed.xml': e.get('creator'), 'atom.xml': e.get('author'),
                      'feed.json': ((e.get('authors') or [{}])[0]).get('name')}[fmt]
            self.assertEqual(author, ESCAPING_AUTHOR, fmt + ': author')
        page = self.s.out('posts/escaping/index.html').decode('utf-8')
        self.assertIn(ESCAPING_TITLE, html.unescape(page))
        self.assertIn('Text with ]]> and', html.unescape(page))
        for bad in ('<b>bold</b>', '</script><script>', '<script>', 'A <a@b.c>'):
            self.assertNotIn(bad, page, 'unescaped in posts/escaping/index.html')
        for rel, data in self.s.outputs().items():
            if rel.endswith('.html'):
                self.assertNotIn(b'<script', data.lower(), rel)
        for fmt, by in self.titles().items():
            body = by['escaping'].get('content') or by['escaping'].get('content_html') or ''
            self.assertNotIn('<script', body.lower(), fmt + ': embedded HTML')
        for rel in ('feed.xml', 'atom.xml'):
            self.assertEqual(feedparser.parse(self.s.out(rel)).bozo, 0, rel)

    def test_control_chars_gone(self):
        for rel, data in self.s.outputs().items():
            text = data.decode('utf-8')
            bad = sorted({ord(c) for c in text if ord(c) in FORBIDDEN_CHARS})
            self.assertEqual(bad, [], '%s holds forbidden characters' % rel)
            esc = sorted({c for c in refs_and_escapes(text) if c in FORBIDDEN_CHARS})
            self.assertEqual(esc, [], '%s writes forbidden characters as escapes' % rel)
        page = html.unescape(self.s.out('posts/control-chars/index.html').decode('utf-8'))
        self.assertIn('bell', page)
        self.assertIn('end', page)

    def test_crlf_and_bom(self):
        page = self.s.out('posts/crlf/index.html').decode('utf-8')
        self.assertRegex(page, r'<p[^>]*>line one</p>\s*<p[^>]*>line two</p>')
        for rel, data in self.s.outputs().items():
            self.assertNotIn('\ufeff'.encode(), data, rel + ': BOM kept')
        for fmt, by in self.titles().items():
            for slug, e in by.items():
                self.assertNotIn('\r', e['title'], '%s: %s' % (fmt, slug))
                self.assertNotIn('\n', e['title'], '%s: %s' % (fmt, slug))

    def test_header_injection_published_one_line(self):
        for fmt, by in self.titles().items():
            e = by['header-injection']
            self.assertTrue(e['title'].startswith('Header'), fmt)
            self.assertNotRegex(e['title'], r'[\r\n]', fmt + ': title must be one line')
            author = e.get('creator') or e.get('author') or ((e.get('authors') or [{}])[0]).get('name')
            self.assertNotRegex(author or '', r'[\r\n]', fmt + ': author must be one line')

    def test_dup_first_by_path_wins(self):
        rows = self.s.db("SELECT path, published FROM posts WHERE slug = 'same-slug'")
        self.assertEqual(rows, [('bad/dup-a.md', 1)])

    # --- nothing outside output.dir, outputs well-formed -------------------

    def test_nothing_written_outside_output_dir(self):
        self.assertFalse(os.path.exists(ESCAPED), ESCAPED + ' was written by the build')
        self.assertFalse(os.path.lexists(os.path.normpath(
            os.path.join(self.s.public, 'posts', '../../../../tmp/nashra-escaped'))))
        self.assertTrue(set(os.listdir(self.s.root)) <= {'nashra.yaml', 'content', 'public',
                                                         'state'}, os.listdir(self.s.root))
        self.assertEqual(read_tree(self.s.content), self.content_before, 'content/ changed')
        pub = os.path.realpath(self.s.public) + os.sep
        for dirpath, dirs, files in os.walk(self.s.public):
            for f in files + dirs:
                p = os.path.join(dirpath, f)
                self.assertFalse(os.path.islink(p), p)
                self.assertTrue(os.path.realpath(p).startswith(pub), p)

    def test_outputs_well_formed(self):
        for path in xml_files(self.s.public):
            rc, err = xmllint(path)
            self.assertEqual(rc, 0, '%s: %s' % (path, err))
        rng = atom_rng()
        for path in xml_files(self.s.public):
            if path.endswith('atom.xml'):
                rc, err = xmllint(path, '--relaxng', rng)
                self.assertEqual(rc, 0, '%s: %s' % (path, err))
        for rel, data in self.s.outputs().items():
            if rel.endswith('.json'):
                try:
                    json.loads(data)
                except ValueError as e:
                    self.fail('%s: %s' % (rel, e))

    # --- nashra check --------------------------------------------------------

    def test_check_lists_every_problem(self):
        s = Site()
        try:
            add_bad(s)
            res = s.check(timeout=20)
            self.assertNotEqual(res.rc, 0, res.describe())
            self.assertEqual(res.rc, 1, res.describe())
            self.check_diagnostics(res, s)
            self.assertFalse(os.path.exists(s.public), 'check wrote output.dir')
            self.assertFalse(os.path.exists(s.state), 'check wrote state.dir')
        finally:
            s.cleanup()


class QuickRejectTest(SiteTestCase):
    def test_yaml_bomb_fast(self):
        s = self.site(posts=False)
        shutil.copyfile(corpus('bad', 'yaml-bomb.md'), s.path('yaml-bomb.md'))
        for cmd in (s.build, s.check):
            res = cmd(timeout=20)
            self.assertLess(res.elapsed, 1.0, 'yaml-bomb took %.2fs' % res.elapsed)
            self.assertEqual([d['file'] for d in res.diags()], [s.path('yaml-bomb.md')],
                             res.describe())

    def test_check_good_corpus_ok(self):
        s = self.site()
        res = s.check()
        self.assertEqual(res.rc, 0, res.describe())
        self.assertEqual(res.diags(), [])
        self.assertFalse(os.path.exists(s.public), 'check wrote output.dir')
        self.assertFalse(os.path.exists(s.state), 'check wrote state.dir')


class OnTheFlyTest(SiteTestCase):
    """Inputs that cannot live in git; the good posts must publish in each
    case and the build must finish quickly."""

    def run_case(self, site, expect_reported=(), user=None):
        res = site.build(timeout=10, user=user)
        self.assertBuilt(res)
        self.assertLess(res.elapsed, 5.0, 'build took %.1fs' % res.elapsed)
        self.assertEqual(site.published_slugs(), GOOD_SLUGS)
        _, items = rss_items(site.out('feed.xml'))
        self.assertEqual(sorted(slug_of_url(i['guid']) for i in items), sorted(GOOD_SLUGS))
        reported = [d['file'] for d in res.diags()]
        for rel in expect_reported:
            self.assertEqual(reported.count(site.path(rel)), 1,
                             '%s must be reported once:\n%s' % (rel, res.err))
        return res

    def test_symlink_loop_folder(self):
        s = self.site()
        os.symlink('..', s.path('2024/up'))
        os.symlink('.', s.path('self'))
        self.run_case(s)

    def test_symlink_loop_file(self):
        s = self.site()
        os.symlink('b.md', s.path('a.md'))
        os.symlink('a.md', s.path('b.md'))
        self.run_case(s)

    def test_over_max_bytes(self):
        s = self.site({'content': {'max_bytes': '16KiB'}})
        s.write('big.md', '---\ntitle: big\ndate: 2024-01-01\n---\n' + 'word ' * 8000 + '\n')
        self.run_case(s, expect_reported=['big.md'])

    def test_unreadable_file(self):
        s = self.site()
        s.write('secret.md', '---\ntitle: secret\ndate: 2024-01-01\n---\nsecret\n')
        user = None
        if os.geteuid() == 0:  # root reads anything: run as nobody
            user = (65534, 65534)
            for dirpath, dirs, files in os.walk(s.root):
                for n in [dirpath] + [os.path.join(dirpath, x) for x in files]:
                    os.chown(n, *user)
        os.chmod(s.path('secret.md'), 0)
        self.run_case(s, expect_reported=['secret.md'], user=user)

    def test_directory_named_md(self):
        s = self.site()
        os.mkdir(s.path('x.md'))
        self.run_case(s)

    def test_named_pipe(self):
        s = self.site()
        os.mkfifo(s.path('y.md'))
        self.run_case(s)

    def test_dangling_symlink(self):
        s = self.site()
        os.symlink('deleted-while-read.md', s.path('z.md'))
        self.run_case(s)


if __name__ == '__main__':
    unittest.main()
