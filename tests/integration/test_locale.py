"""The outputs do not depend on the locale: the same content and the same
NASHRA_NOW give byte-identical files under C, ar_SA.UTF-8 and fr_FR.UTF-8."""

import shutil
import subprocess
import unittest

from common import NOW_2026, SiteTestCase, corpus

LOCALES = ['C', 'ar_SA.UTF-8', 'fr_FR.UTF-8']


def installed_locales():
    p = subprocess.run(['locale', '-a'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return {l.strip().lower().replace('-', '') for l in p.stdout.decode('ascii', 'replace').split()}


def normal(name):
    return name.lower().replace('-', '')


class LocaleTest(SiteTestCase):
    def test_outputs_identical_across_locales(self):
        have = installed_locales()
        missing = [l for l in LOCALES if l != 'C' and normal(l) not in have]
        if missing:
            self.fail('locale %s not installed on this machine (`make deps-test` generates '
                      'it with localedef, e.g. localedef -i ar_SA -c -f UTF-8 ar_SA.UTF-8)'
                      % ', '.join(missing))
        s = self.site()
        s.write('seed/' + 'seed.txt', open(corpus('seed', '000_4b7e5a30f0005dac.txt'), 'rb').read())
        outputs = {}
        for loc in LOCALES:
            for d in (s.public, s.state):
                shutil.rmtree(d, ignore_errors=True)
            env = {'LC_ALL': loc, 'LANG': loc, 'LANGUAGE': None}
            res = s.build(now=NOW_2026, env=env)
            self.assertBuilt(res, 'LC_ALL=%s: ' % loc)
            outputs[loc] = s.outputs()
            self.assertIn('feed.xml', outputs[loc])
        ref = outputs['C']
        for loc in LOCALES[1:]:
            self.assertEqual(sorted(outputs[loc]), sorted(ref), 'files written under ' + loc)
            for rel in sorted(ref):
                if outputs[loc][rel] != ref[rel]:
                    self.fail('%s differs between LC_ALL=C and LC_ALL=%s:\n%s' % (
                        rel, loc, first_difference(ref[rel], outputs[loc][rel])))


def first_difference(a, b):
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    lo = max(0, i - 80)
    return '  C: %r\n  other: %r' % (a[lo:i + 80], b[lo:i + 80])


if __name__ == '__main__':
    unittest.main()
