"""Runner of nashra's integration tests (`make integration`):

    NASHRA=/abs/path/nashra /usr/bin/python3 tests/integration/run.py [NAME...]

Discovers tests/integration/test_*.py and tests/golden/test_*.py (unittest)
and runs them all, or only those NAME selects: a module (test_build), a class
(BuildTest), a case (test_dates), or any dotted suffix of a test id
(test_build.BuildTest.test_dates). Ends with the line `N passed, N failed`
(`, N skipped` when some were skipped); exits 1 on any failure or error, or
when no test ran, and 2 when a NAME matches nothing.
"""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DIRS = [HERE, os.path.join(REPO, 'tests', 'golden')]


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def matches(test_id, name):
    return (test_id == name or test_id.startswith(name + '.') or
            test_id.endswith('.' + name) or ('.' + name + '.') in test_id)


def discover():
    loader = unittest.TestLoader()
    tests = []
    for d in DIRS:
        if not os.path.isdir(d):
            continue
        if d not in sys.path:
            sys.path.insert(0, d)
        for f in sorted(os.listdir(d)):
            if f.startswith('test_') and f.endswith('.py'):
                mod = __import__(f[:-3])
                tests.extend(flatten(loader.loadTestsFromModule(mod)))
    return tests


class CountingResult(unittest.TextTestResult):
    """Counts passes, and failures so that a class whose setUpClass fails
    counts each of its tests as failed (unittest reports it once)."""
    class_sizes = {}

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0
        self.failed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.failed += 1

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.failed += 1

    def addError(self, test, err):
        super().addError(test, err)
        desc = getattr(test, 'description', '')
        if desc.startswith('setUpClass (') and desc.endswith(')'):
            self.failed += self.class_sizes.get(desc[len('setUpClass ('):-1], 1)
        else:
            self.failed += 1


def main(argv):
    sys.path.insert(0, HERE)
    tests = discover()
    names = argv[1:]
    if names:
        chosen = []
        for n in names:
            hit = [t for t in tests if matches(t.id(), n)]
            if not hit:
                print('run.py: no test matches %r' % n, file=sys.stderr)
                return 2
            chosen.extend(t for t in hit if t not in chosen)
        tests = chosen
    suite = unittest.TestSuite(tests)
    for t in tests:
        cls = '%s.%s' % (type(t).__module__, type(t).__qualname__)
        CountingResult.class_sizes[cls] = CountingResult.class_sizes.get(cls, 0) + 1
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2,
                                     resultclass=CountingResult)
    t0 = time.monotonic()
    result = runner.run(suite)
    failed = result.failed
    skipped = len(result.skipped)
    line = '%d passed, %d failed' % (result.passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    print('(%.1fs)' % (time.monotonic() - t0))
    print(line)
    return 1 if failed or result.passed + failed == 0 else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
