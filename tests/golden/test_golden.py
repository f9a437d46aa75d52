"""Golden files: the example site (contrib/example) built with a pinned
NASHRA_NOW must give exactly tests/golden/example/{feed.xml, atom.xml,
feed.json, index.html, posts/*/index.html, archive/*/index.html}. A mismatch prints the unified
diff. NASHRA_UPDATE_GOLDEN=1 rewrites the golden files instead (look at
them before committing: they are the reference)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))

from common import REPO, run_nashra  # noqa: E402

EXAMPLE = os.path.join(REPO, 'contrib', 'example')
GOLDEN = os.path.join(HERE, 'example')
NOW = '2026-06-01T00:00:00Z'
TOP = ('feed.xml', 'atom.xml', 'feed.json', 'index.html')


def compared(public):
    """Relative paths of the outputs the golden files cover."""
    rels = [r for r in TOP if os.path.exists(os.path.join(public, r))]
    for sub in ('posts', 'archive'):
        top = os.path.join(public, sub)
        if os.path.isdir(top):
            rels += sorted('%s/%s/index.html' % (sub, d) for d in os.listdir(top)
                           if os.path.isfile(os.path.join(top, d, 'index.html')))
    return rels


class GoldenTest(unittest.TestCase):
    def setUp(self):
        if not os.path.isfile(os.path.join(EXAMPLE, 'nashra.yaml')):
            self.fail('missing example site: %s/nashra.yaml does not exist' % EXAMPLE)
        self.tmp = tempfile.mkdtemp(prefix='nashra-golden-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.site = os.path.join(self.tmp, 'example')
        # The example's own build products (make run) are not inputs.
        shutil.copytree(EXAMPLE, self.site, symlinks=True,
                        ignore=shutil.ignore_patterns('public', 'state'))

    def test_example_site(self):
        res = run_nashra(['build', '-c', os.path.join(self.site, 'nashra.yaml')], now=NOW)
        self.assertEqual(res.rc, 0, res.describe())
        self.assertEqual(res.diags(), [], 'the example site must build cleanly:\n' + res.err)
        public = os.path.join(self.site, 'public')
        have = compared(public)
        for r in TOP:
            self.assertIn(r, have, 'the build wrote no ' + r)
        if os.environ.get('NASHRA_UPDATE_GOLDEN') == '1':
            self.update(public, have)
            return
        if not os.path.isdir(GOLDEN):
            self.fail('no golden files in %s: generate them with NASHRA_UPDATE_GOLDEN=1 '
                      '(and review them)' % GOLDEN)
        want = compared(GOLDEN)
        problems = []
        for r in sorted(set(want) - set(have)):
            problems.append('missing from the build: ' + r)
        for r in sorted(set(have) - set(want)):
            problems.append('not in the golden files: ' + r)
        for r in sorted(set(have) & set(want)):
            p = subprocess.run(['diff', '-u', os.path.join(GOLDEN, r), os.path.join(public, r)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if p.returncode != 0:
                problems.append('%s differs (golden, then built):\n%s' % (
                    r, p.stdout.decode('utf-8', 'replace')))
        if problems:
            self.fail('the example site does not match tests/golden/example '
                      '(NASHRA_UPDATE_GOLDEN=1 rewrites it after a deliberate change):\n'
                      + '\n'.join(problems))

    def update(self, public, rels):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for r in rels:
            dst = os.path.join(GOLDEN, r)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(os.path.join(public, r), dst)
        print('\nNASHRA_UPDATE_GOLDEN=1: rewrote %d golden files in %s' % (len(rels), GOLDEN),
              file=sys.stderr)


if __name__ == '__main__':
    unittest.main()
