"""The command line (SPEC §2): --help, usage errors, configuration errors
with FILE:LINE:COL and "did you mean", the minimal configuration, exit codes."""

import os
import re
import unittest

from common import SiteTestCase, html_tag_attrs, run_nashra

MINIMAL = 'site:\n  url: https://min.example.org\n  title: "Minimal"\n'
POST = '---\ntitle: Hello\ndate: 2024-01-01\n---\nHello, *world*.\n'


class CliTest(SiteTestCase):
    def test_help(self):
        for args in (['--help'], ['build', '--help'], ['check', '--help']):
            res = run_nashra(args)
            self.assertEqual(res.rc, 0, res.describe())
            self.assertIn('usage', res.out.lower(), ' '.join(args) + ': usage on stdout')

    def test_unknown_option(self):
        for args in (['build', '--no-such-option'], ['check', '-Z'], ['--no-such-option'],
                     ['no-such-command']):
            res = run_nashra(args)
            self.assertEqual(res.rc, 2, res.describe())
            self.assertTrue(res.err.strip(), ' '.join(args) + ': usage error on stderr')

    def write_site(self, config_text, post=True):
        s = self.site(posts=False)
        with open(s.config_path, 'w', encoding='utf-8') as f:
            f.write(config_text)
        if post:
            s.write('hello.md', POST)
        return s

    def assertConfigError(self, res, path, line, col, *words):
        self.assertEqual(res.rc, 2, res.describe())
        m = re.search(r'^(.*nashra\.yaml):(\d+):(\d+): error: (.*)$', res.err, re.M)
        self.assertIsNotNone(m, 'no nashra.yaml:LINE:COL: error: line:\n' + res.err)
        self.assertEqual(os.path.basename(m.group(1)), os.path.basename(path))
        self.assertEqual((int(m.group(2)), int(m.group(3))), (line, col), m.group(0))
        for w in words:
            self.assertIn(w, m.group(4))

    def test_unknown_key_did_you_mean(self):
        s = self.write_site(MINIMAL + '  langauge: ar\n')
        for cmd in (s.build, s.check):
            res = cmd()
            self.assertConfigError(res, s.config_path, 4, 3, 'did you mean', 'language')
        self.assertFalse(os.path.exists(s.public))

    def test_unknown_top_level_key(self):
        s = self.write_site(MINIMAL + 'feed:\n  items: 5\n')
        self.assertConfigError(s.build(), s.config_path, 4, 1, 'did you mean', 'feeds')

    def test_yaml_syntax_error(self):
        s = self.write_site(MINIMAL + 'content: { dir: [unclosed\n')
        res = s.build()
        self.assertEqual(res.rc, 2, res.describe())
        self.assertRegex(res.err, r'nashra\.yaml:\d+:\d+: error: ')

    def test_missing_required(self):
        s = self.write_site('site:\n  title: "no url"\n')
        res = s.build()
        self.assertEqual(res.rc, 2, res.describe())
        self.assertRegex(res.err, r'nashra\.yaml(:\d+(:\d+)?)?: error: .*url')

    def test_minimal_config(self):
        s = self.write_site(MINIMAL)
        res = s.check()
        self.assertEqual(res.rc, 0, res.describe())
        # -c defaults to ./nashra.yaml; relative paths are the config's folder's
        res = run_nashra(['build'], cwd=s.root)
        self.assertEqual(res.rc, 0, res.describe())
        for rel in ('feed.xml', 'atom.xml', 'feed.json', 'index.html', 'posts/hello/index.html'):
            self.assertTrue(os.path.isfile(os.path.join(s.root, 'public', rel)), rel)
        self.assertTrue(os.path.isfile(os.path.join(s.root, 'state', 'nashra.db')))
        self.assertEqual(s.published_slugs(), {'hello'})
        attrs = html_tag_attrs(s.out('posts/hello/index.html'))
        self.assertEqual((attrs.get('lang'), attrs.get('dir')), ('en', 'ltr'))
        self.assertIn(b'https://min.example.org/posts/hello/', s.out('feed.xml'))

    def test_config_relative_to_its_folder(self):
        s = self.write_site(MINIMAL)
        res = run_nashra(['build', '-c', s.config_path], cwd='/')
        self.assertEqual(res.rc, 0, res.describe())
        self.assertTrue(os.path.isfile(os.path.join(s.root, 'public', 'feed.xml')))

    def test_unwritable_output_exits_1(self):
        s = self.write_site(MINIMAL + 'output:\n  dir: blocker/public\n')
        with open(os.path.join(s.root, 'blocker'), 'w') as f:
            f.write('a file where output.dir needs a folder\n')
        res = s.build()
        self.assertEqual(res.rc, 1, res.describe())
        self.assertTrue(res.err.strip())


if __name__ == '__main__':
    unittest.main()
