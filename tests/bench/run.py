"""The build benchmark of SPEC §11 (`make bench`), measured side by side in one run:

    /usr/bin/python3 tests/bench/run.py [N] [--reps R] [--keep]

Generates (once, cached under /tmp) a corpus of N posts with
../shared/tools/gen-corpus, then times, R times each, interleaved:

  nashra cold   `nashra build` with empty output and state folders
  nashra warm   a second `nashra build` over that state, nothing changed
  hugo          Debian's `hugo` rendering only the home RSS of the same posts
  md4c parse    tests/bench/md4c_parse.c: md4c alone parsing the same Markdown

Each run is measured by GNU time (`/usr/bin/time -f '%e %M'`: wall seconds and
peak RSS) and its output checked, so a broken build cannot pass for a fast one.
Prints the median wall time and the largest peak RSS of each, and the targets:
hugo / nashra cold >= 20, nashra cold / md4c <= 2, nashra peak RSS <= 64 MiB.

N defaults to $NASHRA_BENCH_N or 10000, R to $NASHRA_BENCH_REPS or 3. NASHRA
names the binary (default ./nashra). A missed target is reported, not an
error: the exit status is 0 unless something failed to run (1) or the
arguments are wrong (2).
"""

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.normpath(os.path.join(REPO, '..', 'shared'))
GEN_CORPUS = os.path.join(SHARED, 'tools', 'gen-corpus')
CORPUS_SEED = os.path.join(SHARED, 'corpus', 'seed')
NASHRA = os.environ.get('NASHRA') or os.path.join(REPO, 'nashra')
GNU_TIME = '/usr/bin/time'

# Every post of the corpus is in the past of this clock, so all are published.
NOW = '2030-01-01T00:00:00Z'

HUGO_RATIO_MIN = 20     # hugo / nashra cold, wall time
MD4C_RATIO_MAX = 2      # nashra cold / md4c parse, wall time
RSS_MAX_MIB = 64        # nashra peak RSS

RUNS = ('nashra cold', 'nashra warm', 'hugo', 'md4c parse')


class RunFailed(Exception):
    pass


def progress(msg):
    print('bench: ' + msg, file=sys.stderr, flush=True)


# --- measuring ---------------------------------------------------------------

def timed(cmd, env=None, timeout=3600):
    """Runs cmd under GNU time; returns (wall seconds, peak RSS KiB, stdout,
    stderr). Raises RunFailed when it exits non-zero."""
    # Dirty pages of the previous runs are written now, not during this one.
    os.sync()
    with tempfile.NamedTemporaryFile('r', prefix='nashra-bench-time-') as tf:
        p = subprocess.run([GNU_TIME, '-o', tf.name, '-f', '%e %M'] + cmd, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        report = tf.read().split('\n')
    out = p.stdout.decode('utf-8', 'replace')
    err = p.stderr.decode('utf-8', 'replace')
    if p.returncode != 0:
        raise RunFailed('%s exited with status %d\n--- stdout\n%s--- stderr\n%s' % (
            ' '.join(cmd), p.returncode, out[-2000:], err[-4000:]))
    fields = [line for line in report if line.strip()][-1].split()
    return float(fields[0]), int(fields[1]), out, err


def count_files(root, suffix):
    return sum(1 for _, _, files in os.walk(root) for f in files if f.endswith(suffix))


# --- the corpus --------------------------------------------------------------

def corpus_key(n):
    """Changes when the generator, its seed text or N change."""
    h = hashlib.sha256(b'%d\n' % n)
    paths = [GEN_CORPUS] + sorted(os.path.join(CORPUS_SEED, f) for f in os.listdir(CORPUS_SEED))
    for path in paths:
        with open(path, 'rb') as f:
            h.update(f.read())
    return h.hexdigest()


def corpus(n):
    """The folder of N generated posts, made again when missing, incomplete
    or stale. The stamp beside it is written only once it is complete."""
    path = '/tmp/nashra-bench-corpus-%d' % n
    stamp = path + '.stamp'
    key = corpus_key(n)
    try:
        with open(stamp) as f:
            if f.read().strip() == key and count_files(path, '.md') == n:
                return path
    except OSError:
        pass
    for p in (stamp, path):
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)
    progress('generating %d posts in %s' % (n, path))
    t0 = time.monotonic()
    gen = subprocess.Popen([sys.executable, GEN_CORPUS, str(n), path], stdin=subprocess.DEVNULL)
    while True:
        try:
            rc = gen.wait(timeout=5)
            break
        except subprocess.TimeoutExpired:
            progress('  ... %d/%d posts' % (count_files(path, '.md'), n))
    made = count_files(path, '.md')
    if rc != 0 or made != n:
        raise RunFailed('gen-corpus exited with status %d after writing %d of %d posts' %
                        (rc, made, n))
    with open(stamp, 'w') as f:
        f.write(key + '\n')
    progress('generated %d posts in %.1fs' % (n, time.monotonic() - t0))
    return path


def read_all(root):
    """Reads every file once (untimed), so that every contender finds the
    corpus in the page cache, not only the ones that run after the first."""
    size = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            with open(os.path.join(dirpath, f), 'rb') as fh:
                size += len(fh.read())
    return size


# --- the contenders ----------------------------------------------------------

BUILD_RE = re.compile(r'event=build files=(\d+) published=(\d+) rejected=(\d+) parsed=(\d+)')


class Nashra:
    """Each cold build gets new, empty output and state folders, and none is
    removed before the end: ext4 makes creating files slow right after many
    were deleted (its allocator skips inodes freed in the last ~30 s), which
    would charge nashra for the clean-up of the previous run."""

    def __init__(self, work, posts, n):
        self.n = n
        self.posts = posts
        self.root = os.path.join(work, 'nashra')
        os.makedirs(self.root)
        # A copy: the tree's ./nashra may be rebuilt while the runs go on.
        self.binary = os.path.join(self.root, 'nashra')
        shutil.copy2(NASHRA, self.binary)
        self.env = dict(os.environ, NASHRA_NOW=NOW)
        self.runs = 0
        self.site = None

    def new_site(self):
        self.runs += 1
        self.site = os.path.join(self.root, 'run-%d' % self.runs)
        os.makedirs(self.site)
        with open(os.path.join(self.site, 'nashra.yaml'), 'w', encoding='utf-8') as f:
            f.write('site:\n'
                    '  title: "Bench"\n'
                    '  url: https://bench.example.org\n'
                    '  language: ar\n'
                    'content:\n  dir: "%s"\n'
                    'output:\n  dir: public\n'
                    'state:\n  dir: state\n' % self.posts)

    def cold(self):
        self.new_site()
        return self.build(cold=True)

    def warm(self):
        return self.build(cold=False)

    def build(self, cold):
        config = os.path.join(self.site, 'nashra.yaml')
        wall, rss, _, err = timed([self.binary, 'build', '-c', config], env=self.env)
        self.check(err, cold)
        return wall, rss

    def check(self, err, cold):
        """The build log line counts every post, a cold build parses them all,
        and feed.xml and a page a post are on disk."""
        what = 'nashra %s build' % ('cold' if cold else 'warm')
        m = BUILD_RE.search(err)
        if not m:
            raise RunFailed('%s: no "event=build files=..." log line\n%s' % (what, err[-2000:]))
        files, published, _, parsed = map(int, m.groups())
        if files != self.n or published < 0.99 * self.n or (cold and parsed < published):
            raise RunFailed('%s: files=%d published=%d parsed=%d of %d posts' %
                            (what, files, published, parsed, self.n))
        public = os.path.join(self.site, 'public')
        feed = os.path.join(public, 'feed.xml')
        if not os.path.isfile(feed) or os.path.getsize(feed) == 0:
            raise RunFailed('%s: no %s' % (what, feed))
        pages = count_files(os.path.join(public, 'posts'), '.html')
        if pages < 0.99 * self.n:
            raise RunFailed('%s: %d post pages for %d posts' % (what, pages, self.n))


HUGO_CONFIG = '''\
# Only the home RSS: posts are pages (listed, with a permalink) but get no file.
baseURL = "https://bench.example.org/"
title = "Bench"
languageCode = "ar"
timeout = "1h"
disableKinds = ["taxonomy", "term", "section", "sitemap", "robotsTXT", "404"]

[outputs]
home = ["RSS"]

[[cascade]]
  [cascade._build]
    render = "link"
  [cascade._target]
    kind = "page"
'''


class Hugo:
    """A site whose content/posts is the corpus; each run writes into a new
    destination with a new cache folder."""

    def __init__(self, work, posts, n):
        self.n = n
        self.root = os.path.join(work, 'hugo')
        self.site = os.path.join(self.root, 'site')
        os.makedirs(os.path.join(self.site, 'content'))
        # gen-corpus front matter (RFC 3339 dates) is Hugo's as it is.
        os.symlink(posts, os.path.join(self.site, 'content', 'posts'))
        with open(os.path.join(self.site, 'hugo.toml'), 'w') as f:
            f.write(HUGO_CONFIG)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith('HUGO_')}
        self.runs = 0

    def build(self):
        self.runs += 1
        dest = os.path.join(self.root, 'public-%d' % self.runs)
        cache = os.path.join(self.root, 'cache-%d' % self.runs)
        wall, rss, _, _ = timed(['hugo', '--quiet', '--noBuildLock', '--ignoreCache',
                                 '--source', self.site, '--destination', dest,
                                 '--cacheDir', cache], env=self.env)
        self.check(os.path.join(dest, 'index.xml'))
        return wall, rss

    def check(self, index):
        """The home RSS lists (nearly) every post."""
        try:
            with open(index, encoding='utf-8') as f:
                items = f.read().count('<item>')
        except OSError as e:
            raise RunFailed('hugo: %s' % e)
        if items < 0.99 * self.n:
            raise RunFailed('hugo: %s holds %d items for %d posts' % (index, items, self.n))

    @staticmethod
    def version():
        p = subprocess.run(['hugo', 'version'], stdout=subprocess.PIPE, text=True)
        words = p.stdout.split()
        return words[1] if len(words) > 1 else '?'


class Md4c:
    """md4c_parse.c, compiled into the work folder."""

    def __init__(self, work, posts, n):
        self.n = n
        self.posts = posts
        self.binary = os.path.join(work, 'md4c_parse')
        flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'md4c'],
                               stdout=subprocess.PIPE, text=True)
        if flags.returncode != 0:
            raise RunFailed('pkg-config does not know md4c (apt-get install libmd4c-dev)')
        cc = subprocess.run(['cc', '-O2', '-o', self.binary, os.path.join(HERE, 'md4c_parse.c')]
                            + flags.stdout.split())
        if cc.returncode != 0:
            raise RunFailed('cannot compile md4c_parse.c')

    def parse(self):
        wall, rss, out, _ = timed([self.binary, self.posts])
        m = re.search(r'files=(\d+)', out)
        if not m or int(m.group(1)) != self.n:
            raise RunFailed('md4c_parse: parsed %s of %d posts' % (m and m.group(1), self.n))
        return wall, rss

    @staticmethod
    def version():
        p = subprocess.run(['pkg-config', '--modversion', 'md4c'], stdout=subprocess.PIPE,
                           text=True)
        return p.stdout.strip() or '?'


# --- the report --------------------------------------------------------------

def mib(kib):
    return kib / 1024


def verdict(ok):
    return 'PASS' if ok else 'MISS'


def ratio(a, b):
    """a / b, or None when b is below the 10 ms resolution of GNU time."""
    return a / b if b > 0 else None


def show_ratio(r):
    return '%.1fx' % r if r is not None else 'n/a (<10 ms)'


def report(n, size, reps, results):
    wall = {k: statistics.median(w for w, _ in v) for k, v in results.items()}
    rss = {k: max(r for _, r in v) for k, v in results.items()}
    print('nashra build benchmark: %d posts, %.1f MiB of Markdown; hugo %s, md4c %s, %d CPUs'
          % (n, mib(size / 1024), Hugo.version(), Md4c.version(), os.cpu_count() or 0))
    print('median wall time and largest peak RSS of %d run%s each'
          % (reps, 's' if reps > 1 else ''))
    print()
    print('%-14s %10s %14s' % ('run', 'wall s', 'peak RSS MiB'))
    for k in RUNS:
        print('%-14s %10.2f %14.1f' % (k, wall[k], mib(rss[k])))
    print()

    hugo_ratio = ratio(wall['hugo'], wall['nashra cold'])
    md4c_ratio = ratio(wall['nashra cold'], wall['md4c parse'])
    rows = [
        ('hugo / nashra cold', show_ratio(hugo_ratio), '>= %dx' % HUGO_RATIO_MIN,
         hugo_ratio is not None and hugo_ratio >= HUGO_RATIO_MIN),
        ('nashra cold / md4c parse', show_ratio(md4c_ratio), '<= %dx' % MD4C_RATIO_MAX,
         md4c_ratio is not None and md4c_ratio <= MD4C_RATIO_MAX),
    ]
    for k in ('nashra cold', 'nashra warm'):
        rows.append(('%s peak RSS' % k, '%.1f MiB' % mib(rss[k]), '<= %d MiB' % RSS_MAX_MIB,
                     mib(rss[k]) <= RSS_MAX_MIB))
    print('%-26s %12s %12s  %s' % ('target', 'measured', 'target', 'result'))
    for name, measured, target, ok in rows:
        print('%-26s %12s %12s  %s' % (name, measured, target, verdict(ok)))
    sys.stdout.flush()


# --- main --------------------------------------------------------------------

def positive(s):
    v = int(s)
    if v <= 0:
        raise argparse.ArgumentTypeError('must be a positive integer')
    return v


def parse_args():
    ap = argparse.ArgumentParser(description='nashra build vs Hugo vs md4c (SPEC §11).')
    ap.add_argument('n', nargs='?', type=positive,
                    help='posts in the corpus (default $NASHRA_BENCH_N or 10000)')
    ap.add_argument('--reps', type=positive,
                    help='runs of each, median reported (default $NASHRA_BENCH_REPS or 3)')
    ap.add_argument('--keep', action='store_true',
                    help='keep the work folder (outputs of the last runs) and print it')
    args = ap.parse_args()
    for attr, var, default in (('n', 'NASHRA_BENCH_N', '10000'),
                               ('reps', 'NASHRA_BENCH_REPS', '3')):
        if getattr(args, attr) is None:
            try:
                setattr(args, attr, positive(os.environ.get(var, default)))
            except (ValueError, argparse.ArgumentTypeError):
                ap.error('%s must be a positive integer' % var)
    return args


def require_tools():
    missing = [t for t in (GNU_TIME, 'hugo', 'cc', 'pkg-config') if not shutil.which(t)]
    if not (os.path.isfile(NASHRA) and os.access(NASHRA, os.X_OK)):
        missing.append('%s (run `make nashra`, or set NASHRA)' % NASHRA)
    if not os.path.isfile(GEN_CORPUS):
        missing.append(GEN_CORPUS)
    if missing:
        raise RunFailed('missing: ' + ', '.join(missing))


def main():
    args = parse_args()
    work = None
    try:
        require_tools()
        posts = corpus(args.n)
        size = read_all(posts)
        work = tempfile.mkdtemp(prefix='nashra-bench-', dir='/tmp')
        nashra = Nashra(work, posts, args.n)
        hugo = Hugo(work, posts, args.n)
        md4c = Md4c(work, posts, args.n)
        # In this order, each repetition; warm is the build right after cold.
        runs = (('md4c parse', md4c.parse), ('nashra cold', nashra.cold),
                ('nashra warm', nashra.warm), ('hugo', hugo.build))
        results = {k: [] for k in RUNS}
        for rep in range(1, args.reps + 1):
            for name, run in runs:
                progress('run %d/%d: %s ...' % (rep, args.reps, name))
                wall, rss = run()
                results[name].append((wall, rss))
                progress('run %d/%d: %s %.2fs %.1f MiB' % (rep, args.reps, name, wall, mib(rss)))
        report(args.n, size, args.reps, results)
    except (RunFailed, OSError, subprocess.SubprocessError) as e:
        progress('FAILED: %s' % e)
        return 1
    finally:
        if work and args.keep:
            progress('work folder kept: %s' % work)
        elif work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
