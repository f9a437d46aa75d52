"""The daemon benchmark of SPEC §11: `nashra serve` against `hugo server`.

    /usr/bin/python3 tests/bench/serve.py [N] [--posts P] [--hugo-posts H]
                                          [--idle S] [--no-hugo] [--keep]

Each daemon runs on the same N generated posts (the corpus of run.py, cached
under /tmp); once it is ready, P new posts are dropped into its content
folder one by one, and for each the time from the file's close to the feed on
disk holding it is measured (nashra: public/feed.xml; hugo: the home RSS,
public/index.xml). The next post is dropped only once the daemon has logged
the end of the pass. Then the daemon sits idle and its CPU time and wake-ups
(context switches) are read from /proc.

Reports median, p99 and max latency of each, their ratio, nashra's RSS and
idle CPU, and the targets: median <= 25 ms, p99 <= 100 ms, no wake-up while
idle. N defaults to $NASHRA_BENCH_N or 10000, P to $NASHRA_BENCH_SERVE_POSTS
or 200, H to P. NASHRA names the binary (default ./nashra). A missed target
is reported, not an error: the exit status is 0 unless something failed to
run (1) or the arguments are wrong (2).
"""

import argparse
import ctypes
import datetime
import math
import os
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the corpus, Hugo's site config, the helpers)
from run import RunFailed, progress, mib, verdict  # noqa: E402

MEDIAN_MAX_MS = 25      # nashra, file closed -> post in feed.xml
P99_MAX_MS = 100
IDLE_WAKEUPS_MAX = 0    # context switches of nashra while nothing changes

POST_TIMEOUT = 10.0     # seconds for one post to appear; then it counts as failed
READY_TIMEOUT = 900.0   # seconds for the first full pass
SETTLE = 1.0            # seconds between the last pass and the idle window
CLK_TCK = os.sysconf('SC_CLK_TCK')

# inotify, for waking up when the feed is replaced (no busy polling that
# would take a CPU from the daemon being measured).
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
EVENT_HEAD = struct.Struct('iIII')


class FeedWatch:
    """Wakes up when a file is written or renamed into a folder; falls back
    to checking every millisecond if inotify is not available."""

    def __init__(self, folder):
        self.fd = -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd >= 0 and libc.inotify_add_watch(fd, os.fsencode(folder),
                                                  IN_CLOSE_WRITE | IN_MOVED_TO) >= 0:
                self.fd = fd
            elif fd >= 0:
                os.close(fd)
        except (OSError, AttributeError):
            pass
        self.poller = None
        if self.fd >= 0:
            self.poller = select.poll()
            self.poller.register(self.fd, select.POLLIN)

    def wait(self, seconds):
        """Returns when a file was written or moved into the folder, or after
        `seconds` (the caller checks the feed either way)."""
        if self.fd < 0:
            time.sleep(min(seconds, 0.001))
            return
        if not self.poller.poll(max(0, int(seconds * 1000))):
            return
        try:
            os.read(self.fd, 65536)  # the events only wake us up
        except BlockingIOError:
            pass

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)


def holds(path, marker):
    """The file holds marker; read in chunks up to the first hit (the new post
    is the newest, so it is near the top)."""
    try:
        with open(path, 'rb') as f:
            tail = b''
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    return False
                if marker in tail + chunk:
                    return True
                tail = chunk[-len(marker):]
    except FileNotFoundError:
        return False


# --- /proc -------------------------------------------------------------------

def proc_status(pid):
    """VmRSS and VmHWM (KiB) and the context switches of every thread."""
    vm = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in ('VmRSS', 'VmHWM'):
                vm[k] = int(v.split()[0])
    switches = 0
    for tid in os.listdir('/proc/%d/task' % pid):
        try:
            with open('/proc/%d/task/%s/status' % (pid, tid)) as f:
                for line in f:
                    if line.startswith(('voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches')):
                        switches += int(line.split()[1])
        except FileNotFoundError:
            pass
    return vm, switches


def proc_cpu_ticks(pid):
    """utime + stime of the whole process, in clock ticks."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return int(fields[11]) + int(fields[12])


def proc_threads(pid):
    return len(os.listdir('/proc/%d/task' % pid))


def child_of(pid, timeout=10.0):
    """The pid of the (only) child of pid: the daemon under GNU time."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
                kids = f.read().split()
        except OSError:
            kids = []
            for d in os.listdir('/proc'):
                if d.isdigit():
                    try:
                        with open('/proc/%s/stat' % d) as f:
                            if int(f.read().rsplit(')', 1)[1].split()[1]) == pid:
                                kids.append(d)
                    except (OSError, IndexError, ValueError):
                        pass
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    raise RunFailed('no child process under GNU time (pid %d)' % pid)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# --- the posts ---------------------------------------------------------------

def link_tree(src, dst):
    """dst: the corpus as hard links (or copies across file systems), so the
    daemon's content folder can get new files without touching the corpus."""
    for dirpath, _, files in os.walk(src):
        out = os.path.join(dst, os.path.relpath(dirpath, src))
        os.makedirs(out, exist_ok=True)
        for f in files:
            a, b = os.path.join(dirpath, f), os.path.join(out, f)
            try:
                os.link(a, b)
            except OSError:
                shutil.copy2(a, b)


TITLE_RE = re.compile(r'^title: .*$', re.M)
DATE_RE = re.compile(r'^date: .*$', re.M)


def new_posts(corpus, count, tag):
    """count posts made from corpus posts (same body, categories, tags and
    language), each with a unique title (the marker looked for in the feed)
    and a date filled in when dropped. Returns [(file name, marker, text)]."""
    sources = sorted(os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs
                     if f.endswith('.md'))
    posts = []
    for i in range(count):
        with open(sources[(i * 7919) % len(sources)], encoding='utf-8') as f:
            text = f.read()
        marker = 'serve-bench-%s-%04d' % (tag, i + 1)
        text = TITLE_RE.sub('title: "%s"' % marker, text, count=1)
        posts.append((marker + '.md', marker, text))
    return posts


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# --- the daemons -------------------------------------------------------------

class Daemon:
    """A daemon under GNU time, its log in a file. Subclasses say how to
    start it and which log lines mean ready and end of a pass."""

    name = '?'
    feed_name = '?'
    ready_re = None
    pass_re = None       # the end of an incremental pass, group 1: its ms

    def __init__(self, root):
        self.root = root
        self.log_path = os.path.join(root, 'daemon.log')
        self.time_path = os.path.join(root, 'time.out')
        self.proc = None
        self.pid = None
        self.log_file = None
        self.pass_ms = []        # the daemon's own timing of each pass
        self.results = {}

    def command(self):
        raise NotImplementedError

    def env(self):
        return dict(os.environ)

    def log(self):
        with open(self.log_path, encoding='utf-8', errors='replace') as f:
            return f.read()

    def start(self):
        os.sync()
        self.log_file = open(self.log_path, 'wb')
        cmd = [run.GNU_TIME, '-o', self.time_path, '-f', '%e %M %U %S'] + self.command()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=self.log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = child_of(self.proc.pid)
        while True:
            m = self.ready_re.search(self.log())
            if m:
                break
            if self.proc.poll() is not None:
                raise RunFailed('%s exited with status %d before it was ready\n%s' %
                                (self.name, self.proc.returncode, self.log()[-3000:]))
            if time.monotonic() - t0 > READY_TIMEOUT:
                raise RunFailed('%s not ready after %ds\n%s' %
                                (self.name, READY_TIMEOUT, self.log()[-3000:]))
            time.sleep(0.05)
        self.results['ready_s'] = time.monotonic() - t0
        self.results['first_pass_ms'] = int(m.group(1))

    def alive(self):
        if self.proc.poll() is not None:
            raise RunFailed('%s exited with status %d\n%s' %
                            (self.name, self.proc.returncode, self.log()[-3000:]))

    def drop(self, content, posts, base_date):
        """Drops posts one by one; returns the latencies in ms (inf: failed)."""
        feed = os.path.join(self.output, self.feed_name)
        watch = FeedWatch(self.output)
        latencies = []
        try:
            for i, (fname, marker, text) in enumerate(posts):
                data = DATE_RE.sub('date: %s' % rfc3339(base_date + i), text,
                                   count=1).encode('utf-8')
                mark = marker.encode()
                log_at = os.path.getsize(self.log_path)
                path = os.path.join(content, fname)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
                closed = time.monotonic()
                deadline = closed + POST_TIMEOUT
                found = None
                while True:
                    if holds(feed, mark):
                        found = time.monotonic()
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    watch.wait(min(left, 0.1))
                if found is None:
                    self.alive()
                    progress('%s: post %d/%d (%s) not in %s after %.0fs' %
                             (self.name, i + 1, len(posts), fname, self.feed_name, POST_TIMEOUT))
                    latencies.append(math.inf)
                else:
                    latencies.append((found - closed) * 1000)
                # One at a time: the next post only once this pass has ended.
                ms = self.wait_pass(log_at, deadline)
                if ms is not None:
                    self.pass_ms.append(ms)
                if (i + 1) % 25 == 0 or i + 1 == len(posts):
                    done = [x for x in latencies if x != math.inf]
                    progress('%s: %d/%d posts, median %.1f ms so far, %d failed' %
                             (self.name, i + 1, len(posts),
                              statistics.median(done) if done else math.nan,
                              len(latencies) - len(done)))
        finally:
            watch.close()
        return latencies

    def wait_pass(self, offset, deadline):
        """The ms of the first end-of-pass line after offset in the log, or
        None at the deadline."""
        while True:
            with open(self.log_path, 'rb') as f:
                f.seek(offset)
                m = self.pass_re.search(f.read().decode('utf-8', 'replace'))
            if m:
                return int(m.group(1))
            if time.monotonic() > deadline:
                return None
            self.alive()
            time.sleep(0.001)

    def idle(self, seconds):
        """CPU ticks and context switches over `seconds` with nothing to do."""
        time.sleep(SETTLE)
        self.alive()
        cpu0 = proc_cpu_ticks(self.pid)
        _, sw0 = proc_status(self.pid)
        time.sleep(seconds)
        self.alive()
        cpu1 = proc_cpu_ticks(self.pid)
        vm, sw1 = proc_status(self.pid)
        self.results.update(idle_s=seconds, idle_cpu_ms=(cpu1 - cpu0) * 1000 / CLK_TCK,
                            idle_wakeups=sw1 - sw0, rss_kib=vm.get('VmRSS', 0),
                            hwm_kib=vm.get('VmHWM', 0), threads=proc_threads(self.pid))

    def stop(self):
        """SIGTERM to the daemon (GNU time then reports and exits)."""
        if not self.proc or self.log_file.closed:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                self.proc.wait()
        self.log_file.close()
        try:
            with open(self.time_path) as f:
                lines = [line for line in f.read().split('\n') if line.strip()]
            fields = lines[-1].split()
            self.results['peak_rss_kib'] = int(fields[1])
            self.results['cpu_s'] = float(fields[2]) + float(fields[3])
        except (OSError, IndexError, ValueError):
            pass


NASHRA_PASS_RE = re.compile(r'event=publish reason=change .*? ms=(\d+)')
NASHRA_CHANGES_RE = re.compile(r'event=publish_changes .*?state_ms=(\d+) outputs_ms=(\d+)')
NASHRA_WARN_RE = re.compile(r'^.*level=(?:warn|error) .*$', re.M)


class Nashra(Daemon):
    name = 'nashra'
    feed_name = 'feed.xml'
    ready_re = re.compile(r'event=publish reason=start .*? ms=(\d+)(?:.|\n)*?event=ready ')
    pass_re = NASHRA_PASS_RE

    def __init__(self, work, posts):
        super().__init__(os.path.join(work, 'nashra'))
        self.content = os.path.join(self.root, 'content')
        self.output = os.path.join(self.root, 'public')
        # The new posts go into a folder that exists from the start: a new
        # folder would make the watcher ask for a full pass.
        self.drop_dir = os.path.join(self.content, 'serve-bench')
        link_tree(posts, self.content)
        os.makedirs(self.drop_dir)
        os.makedirs(self.output)
        self.binary = os.path.join(self.root, 'nashra')
        shutil.copy2(run.NASHRA, self.binary)
        self.config = os.path.join(self.root, 'nashra.yaml')
        with open(self.config, 'w', encoding='utf-8') as f:
            f.write('site:\n'
                    '  title: "Bench"\n'
                    '  url: https://bench.example.org\n'
                    '  language: ar\n'
                    'content:\n  dir: content\n'
                    'output:\n  dir: public\n'
                    'state:\n  dir: state\n'
                    'http:\n  listen: "127.0.0.1:0"\n')

    def command(self):
        return [self.binary, 'serve', '-c', self.config, '-v']

    def env(self):
        # The real clock: the new posts are dated a few minutes ago.
        return {k: v for k, v in os.environ.items() if k != 'NASHRA_NOW'}

    def check(self, n, dropped):
        log = self.log()
        last = re.findall(r'event=publish reason=\w+ .*?published=(\d+) rejected=(\d+)', log)
        if not last or int(last[-1][0]) != n + dropped:
            raise RunFailed('nashra: the last pass published %s posts, not %d' %
                            (last[-1][0] if last else 'no', n + dropped))
        changes = NASHRA_CHANGES_RE.findall(log)
        self.results['state_ms'] = [int(a) for a, _ in changes]
        self.results['outputs_ms'] = [int(b) for _, b in changes]
        self.results['full_passes'] = len(re.findall(r'event=publish reason=(?!change)', log)) - 1
        self.results['warnings'] = NASHRA_WARN_RE.findall(log)


class Hugo(Daemon):
    name = 'hugo'
    feed_name = 'index.xml'
    ready_re = re.compile(r'Built in (\d+) ms(?:.|\n)*?Web Server is available')
    pass_re = re.compile(r'Total in (\d+) ms')

    def __init__(self, work, posts):
        super().__init__(os.path.join(work, 'hugo'))
        self.site = os.path.join(self.root, 'site')
        self.output = os.path.join(self.root, 'public')
        self.content = os.path.join(self.site, 'content', 'posts')
        self.drop_dir = os.path.join(self.content, 'serve-bench')
        link_tree(posts, self.content)
        os.makedirs(self.drop_dir)
        os.makedirs(self.output)
        with open(os.path.join(self.site, 'hugo.toml'), 'w') as f:
            f.write(run.HUGO_CONFIG)

    def command(self):
        # Fast Render Mode (the default) re-renders only pages a browser
        # visited, never index.xml: full re-renders are what a feed needs.
        return ['hugo', 'server', '--source', self.site, '--destination', self.output,
                '--cacheDir', os.path.join(self.root, 'cache'), '--renderToDisk',
                '--disableFastRender', '--disableLiveReload', '--noBuildLock',
                '--ignoreCache', '--bind', '127.0.0.1', '--port', str(free_port())]

    def env(self):
        return {k: v for k, v in os.environ.items() if not k.startswith('HUGO_')}

    def check(self, n, dropped):
        with open(os.path.join(self.output, 'index.xml'), encoding='utf-8') as f:
            items = f.read().count('<item>')
        if items != n + dropped:
            raise RunFailed('hugo: index.xml holds %d items, not %d' % (items, n + dropped))


# --- the report --------------------------------------------------------------

def percentile(xs, p):
    """Nearest rank: the smallest value with at least p% of them at or below."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def ms(x):
    return '%.1f' % x if x != math.inf else 'failed'


def summary(lat):
    return {'n': len(lat), 'failed': sum(1 for x in lat if x == math.inf),
            'median': statistics.median(lat), 'p99': percentile(lat, 99), 'max': max(lat)}


def report(args, size, nashra, hugo, lat):
    s = {k: summary(v) for k, v in lat.items()}
    print('nashra serve benchmark: %d posts, %.1f MiB of Markdown; hugo %s, %d CPUs'
          % (args.n, mib(size / 1024), run.Hugo.version(), os.cpu_count() or 0))
    print('latency: a new post\'s file closed -> the post in the feed on disk '
          '(nashra feed.xml, hugo index.xml); posts dropped one by one')
    print()
    print('%-8s %6s %7s %10s %8s %8s %12s %14s' % (
        'daemon', 'posts', 'failed', 'median ms', 'p99 ms', 'max ms', 'first pass s',
        'peak RSS MiB'))
    for d in (nashra, hugo):
        if d is None:
            continue
        r = d.results
        x = s[d.name]
        print('%-8s %6d %7d %10s %8s %8s %12.2f %14.1f' % (
            d.name, x['n'], x['failed'], ms(x['median']), ms(x['p99']), ms(x['max']),
            r['first_pass_ms'] / 1000, mib(r.get('peak_rss_kib', 0))))
    print()
    own = ['own pass time from the logs, median / p99 ms:']
    if nashra.pass_ms:
        own.append('  nashra "event=publish reason=change ms=" %d / %d' % (
            statistics.median(nashra.pass_ms), percentile(nashra.pass_ms, 99)))
    if nashra.results.get('state_ms'):
        own.append('         (-v publish_changes: state_ms %d / %d, outputs_ms %d / %d)' % (
            statistics.median(nashra.results['state_ms']),
            percentile(nashra.results['state_ms'], 99),
            statistics.median(nashra.results['outputs_ms']),
            percentile(nashra.results['outputs_ms'], 99)))
    if hugo is not None and hugo.pass_ms:
        own.append('  hugo "Total in N ms" %d / %d (after its watcher\'s 500 ms batching)' % (
            statistics.median(hugo.pass_ms), percentile(hugo.pass_ms, 99)))
    print('\n'.join(own))
    print()
    print('idle: %.0f s, from %.0f s after the last pass' % (args.idle, SETTLE))
    print('%-8s %10s %10s %8s %9s %8s' % ('daemon', 'VmRSS MiB', 'VmHWM MiB', 'CPU ms',
                                         'wake-ups', 'threads'))
    for d in (nashra, hugo):
        if d is None:
            continue
        r = d.results
        print('%-8s %10.1f %10.1f %8.0f %9d %8d' % (
            d.name, mib(r['rss_kib']), mib(r['hwm_kib']), r['idle_cpu_ms'],
            r['idle_wakeups'], r['threads']))
    print()
    n = s['nashra']
    rows = [
        ('nashra median latency', '%s ms' % ms(n['median']), '<= %d ms' % MEDIAN_MAX_MS,
         n['median'] <= MEDIAN_MAX_MS),
        ('nashra p99 latency', '%s ms' % ms(n['p99']), '<= %d ms' % P99_MAX_MS,
         n['p99'] <= P99_MAX_MS),
        ('nashra idle wake-ups', '%d' % nashra.results['idle_wakeups'],
         '%d' % IDLE_WAKEUPS_MAX, nashra.results['idle_wakeups'] <= IDLE_WAKEUPS_MAX),
    ]
    print('%-26s %12s %12s  %s' % ('target', 'measured', 'target', 'result'))
    for name, measured, target, ok in rows:
        print('%-26s %12s %12s  %s' % (name, measured, target, verdict(ok)))
    if hugo is not None:
        h = s['hugo']
        for what in ('median', 'p99'):
            r = h[what] / n[what] if n[what] not in (0, math.inf) else math.nan
            print('%-26s %12s %12s  %s' % ('hugo / nashra %s' % what,
                                          '%.0fx' % r if math.isfinite(r) else 'n/a',
                                          '', 'info'))
    warnings = nashra.results.get('warnings') or []
    if warnings or nashra.results.get('full_passes'):
        print()
        print('nashra log: %d warning/error lines, %d full passes after the start' % (
            len(warnings), nashra.results.get('full_passes', 0)))
        for w in warnings[:5]:
            print('  ' + w)
    sys.stdout.flush()


# --- main --------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description='nashra serve vs hugo server: '
                                 'a new post to the feed (SPEC §11).')
    ap.add_argument('n', nargs='?', type=run.positive,
                    help='posts in the corpus (default $NASHRA_BENCH_N or 10000)')
    ap.add_argument('--posts', type=run.positive,
                    help='new posts dropped (default $NASHRA_BENCH_SERVE_POSTS or 200)')
    ap.add_argument('--hugo-posts', type=run.positive,
                    help='new posts dropped into hugo (default: as many as --posts)')
    ap.add_argument('--idle', type=float, default=10.0,
                    help='seconds of the idle window (default 10)')
    ap.add_argument('--no-hugo', action='store_true', help='nashra only')
    ap.add_argument('--keep', action='store_true',
                    help='keep the work folder (sites, outputs, logs) and print it')
    args = ap.parse_args()
    for attr, var, default in (('n', 'NASHRA_BENCH_N', '10000'),
                               ('posts', 'NASHRA_BENCH_SERVE_POSTS', '200')):
        if getattr(args, attr) is None:
            try:
                setattr(args, attr, run.positive(os.environ.get(var, default)))
            except (ValueError, argparse.ArgumentTypeError):
                ap.error('%s must be a positive integer' % var)
    if args.hugo_posts is None:
        args.hugo_posts = args.posts
    if args.idle <= 0:
        ap.error('--idle must be positive')
    return args


def require_tools(hugo):
    tools = [run.GNU_TIME] + (['hugo'] if hugo else [])
    missing = [t for t in tools if not shutil.which(t)]
    if not (os.path.isfile(run.NASHRA) and os.access(run.NASHRA, os.X_OK)):
        missing.append('%s (run `make nashra`, or set NASHRA)' % run.NASHRA)
    if not os.path.isfile(run.GEN_CORPUS):
        missing.append(run.GEN_CORPUS)
    if missing:
        raise RunFailed('missing: ' + ', '.join(missing))


def measure(daemon, n, posts, tag):
    progress('%s: starting on %d posts ...' % (daemon.name, n))
    daemon.start()
    progress('%s: ready in %.1fs (first pass %d ms, pid %d)' % (
        daemon.name, daemon.results['ready_s'], daemon.results['first_pass_ms'], daemon.pid))
    batch = new_posts(posts, daemon.posts, tag)
    # Strictly increasing dates, all in the past (a future post is scheduled,
    # not published) and after every corpus post (so each is the newest).
    base = int(time.time()) - len(batch) - 60
    lat = daemon.drop(daemon.drop_dir, batch, base)
    progress('%s: idle for %.0fs ...' % (daemon.name, SETTLE + daemon.idle_s))
    daemon.idle(daemon.idle_s)
    daemon.check(n, len(batch))
    daemon.stop()
    if all(x == math.inf for x in lat):
        raise RunFailed('%s: no post ever reached %s' % (daemon.name, daemon.feed_name))
    return lat


def main():
    args = parse_args()
    work = None
    daemons = []
    try:
        require_tools(not args.no_hugo)
        posts = run.corpus(args.n)
        size = run.read_all(posts)
        work = tempfile.mkdtemp(prefix='nashra-bench-serve-', dir='/tmp')
        tag = os.path.basename(work).rsplit('-', 1)[-1].lower()
        tag = re.sub(r'[^a-z0-9]', 'x', tag)
        progress('linking the corpus into %s' % work)
        nashra = Nashra(work, posts)
        nashra.posts, nashra.idle_s = args.posts, args.idle
        daemons.append(nashra)
        hugo = None
        if not args.no_hugo:
            hugo = Hugo(work, posts)
            hugo.posts, hugo.idle_s = args.hugo_posts, args.idle
            daemons.append(hugo)
        lat = {}
        for d in daemons:
            lat[d.name] = measure(d, args.n, posts, tag)
        report(args, size, nashra, hugo, lat)
    except (RunFailed, OSError, subprocess.SubprocessError) as e:
        progress('FAILED: %s' % e)
        return 1
    finally:
        for d in daemons:
            try:
                d.stop()
            except (OSError, subprocess.SubprocessError):
                pass
        if work and args.keep:
            progress('work folder kept: %s' % work)
        elif work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
