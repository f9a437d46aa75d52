"""The mail benchmark of issue 4 (`make bench`): nashra's SMTP delivery
against Postfix's smtp-source, both into Postfix's smtp-sink on loopback.

    /usr/bin/python3 tests/bench/mail.py [N ...] [--source-reps R] [--keep]

For each N (default $NASHRA_BENCH_MAIL_N, comma- or space-separated, or
"10000 100000"): a new site with the seed article and a list of N subscribers
with Arabic names (imported from CSV, timed apart), the seed's issue queued
with `nashra send`, then `nashra build --deliver` timed under GNU time while
it drains the queue through 4 SMTP connections (rate: 0, tls: none) into a
fresh smtp-sink. Beside it, smtp-source sends N messages of the same size
(`nashra preview`'s message) over 4 sessions kept open (-d) into another
fresh smtp-sink, R times (default $NASHRA_BENCH_MAIL_SOURCE_REPS or 3; the
median is reported). Every run is checked: the sink's own counter must show
N messages, and `nashra status` "sent N/N".

Reports messages per second of both and their ratio, nashra's peak RSS at
each N, and the targets: nashra >= 50% of smtp-source's rate, peak RSS <= 64
MiB and the same at every N (the largest within 10% of the smallest). NASHRA
names the binary (default ./nashra). A missed target is reported, not an
error: the exit status is 0 unless something failed to run (1) or the
arguments are wrong (2).
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (paths and helpers of the build benchmark)
from run import RunFailed, progress, mib, verdict  # noqa: E402

SMTP_SINK = '/usr/sbin/smtp-sink'
SMTP_SOURCE = '/usr/sbin/smtp-source'
SEED = os.path.join(run.CORPUS_SEED, '000_4b7e5a30f0005dac.txt')
SLUG = '000_4b7e5a30f0005dac'
CONNECTIONS = 4

RATE_RATIO_MIN = 0.5    # nashra / smtp-source, messages a second
RSS_MAX_MIB = 64        # nashra peak RSS, any step
RSS_SAME_MAX = 1.10     # largest / smallest peak RSS over the sizes

INSTALL_HINT = ("echo 'postfix postfix/main_mailer_type select No configuration' | "
                "debconf-set-selections; DEBIAN_FRONTEND=noninteractive "
                "apt-get install -y --no-install-recommends postfix")

# Arabic given names and family names: every subscriber a different name.
GIVEN = ['محمد', 'فاطمة', 'أحمد', 'مريم', 'علي', 'خديجة', 'يوسف', 'زينب', 'عمر', 'نور',
         'حسن', 'ليلى', 'خالد', 'سارة', 'إبراهيم', 'هدى', 'سلمى', 'طارق', 'رنا', 'سامي']
FAMILY = ['الحلبي', 'العتيبي', 'الشمري', 'المصري', 'الخطيب', 'النجار', 'الحداد', 'القحطاني',
          'البغدادي', 'الدوسري', 'السوري', 'التونسي', 'المغربي', 'الأنصاري', 'الزهراني']

SINK_COUNTER_RE = re.compile(rb'mesg=(\d+)')
STATUS_RE = re.compile(r'issue \d+\s+all\s.*?sent (\d+)/(\d+)\s+failed (\d+)')
DELIVER_RE = re.compile(r'event=deliver sent=(\d+) failed=(\d+) retry_later=(\d+) result=(\w+)')


# --- smtp-sink ---------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Sink:
    """smtp-sink on a free loopback port, counting (-c) into a file; a new
    one for every run, so its counter is that run's."""

    def __init__(self, work, name):
        self.out_path = os.path.join(work, 'sink-%s.out' % name)
        self.err_path = os.path.join(work, 'sink-%s.err' % name)
        self.port = free_port()
        cmd = [SMTP_SINK, '-c', '-4']
        if os.geteuid() == 0:
            cmd += ['-u', 'nobody']  # required when started as root
        cmd += ['127.0.0.1:%d' % self.port, '1000']
        with open(self.out_path, 'wb') as out, open(self.err_path, 'wb') as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=1) as s:
                    if s.recv(100).startswith(b'220'):
                        s.sendall(b'QUIT\r\n')
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RunFailed('smtp-sink did not start on port %d: %s' % (self.port, self.errors()))
            time.sleep(0.05)

    def errors(self):
        with open(self.err_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')[-2000:]

    def count(self, want=None, wait=2.0):
        """Messages the sink has taken ("." received); waits up to `wait`
        seconds for the last counter lines when fewer than `want`."""
        deadline = time.monotonic() + wait
        while True:
            with open(self.out_path, 'rb') as f:
                f.seek(max(0, os.path.getsize(self.out_path) - 4096))
                tail = f.read()
            counts = SINK_COUNTER_RE.findall(tail)
            n = max(map(int, counts)) if counts else 0
            if want is None or n >= want or time.monotonic() > deadline:
                return n
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# --- nashra ------------------------------------------------------------------

def subscribers_csv(path, n):
    with open(path, 'w', encoding='utf-8', newline='') as f:
        f.write('email,name\r\n')
        for i in range(n):
            name = '%s %s' % (GIVEN[i % len(GIVEN)], FAMILY[(i // len(GIVEN)) % len(FAMILY)])
            f.write('reader%07d@example.net,%s %d\r\n' % (i, name, i))


class Nashra:
    """One site per N: content/ with the seed, the list `all`, N subscribers."""

    def __init__(self, work, binary, n):
        self.n = n
        self.binary = binary
        self.site = os.path.join(work, 'site-%d' % n)
        os.makedirs(os.path.join(self.site, 'content'))
        self.config = os.path.join(self.site, 'nashra.yaml')
        self.env = dict(os.environ)
        self.env.pop('NASHRA_NOW', None)

    def write_config(self, port):
        with open(self.config, 'w', encoding='utf-8') as f:
            f.write('site:\n'
                    '  title: "Bench"\n'
                    '  url: https://bench.example.org\n'
                    '  language: ar\n'
                    'content:\n  dir: content\n'
                    'output:\n  dir: public\n'
                    'state:\n  dir: state\n'
                    'activitypub:\n  enabled: false\n'
                    'mail:\n'
                    '  transport: smtp\n'
                    '  smtp: {host: 127.0.0.1, port: %d, tls: none, connections: %d, rate: 0}\n'
                    '  from: "نشرة <news@example.org>"\n'
                    'lists:\n'
                    '  - id: all\n'
                    '    name: "الكل"\n' % (port, CONNECTIONS))

    def cmd(self, *args):
        return [self.binary] + list(args) + ['-c', self.config]

    def run(self, *args):
        p = subprocess.run(self.cmd(*args), env=self.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=3600)
        out = p.stdout.decode('utf-8', 'replace')
        err = p.stderr.decode('utf-8', 'replace')
        if p.returncode != 0:
            raise RunFailed('nashra %s exited with status %d\n%s%s' % (
                ' '.join(args), p.returncode, out[-2000:], err[-2000:]))
        return out, err

    def prepare(self, port):
        """Everything before the timed delivery; returns (import s, import
        RSS KiB, queue RSS KiB, message bytes)."""
        self.write_config(port)
        shutil.copy(SEED, os.path.join(self.site, 'content', os.path.basename(SEED)))
        self.run('build')
        csv = os.path.join(self.site, 'subscribers.csv')
        subscribers_csv(csv, self.n)
        imp_wall, imp_rss, out, err = run.timed(
            self.cmd('subscribers', 'import', '--list', 'all', csv), env=self.env)
        m = re.search(r'added (\d+)', out + err)
        if not m or int(m.group(1)) != self.n:
            raise RunFailed('nashra subscribers import: %s' % (out + err)[-2000:])
        _, q_rss, out, err = run.timed(self.cmd('send', '--list', 'all', '--post', SLUG),
                                       env=self.env)
        if '%d recipients' % self.n not in out + err:
            raise RunFailed('nashra send: %s' % (out + err)[-2000:])
        eml = os.path.join(self.site, 'preview.eml')
        self.run('preview', '--list', 'all', '--post', SLUG, '-o', eml)
        return imp_wall, imp_rss, q_rss, os.path.getsize(eml)

    def deliver(self):
        wall, rss, out, err = run.timed(self.cmd('build', '--deliver'), env=self.env)
        m = DELIVER_RE.search(err)
        if not m or int(m.group(1)) != self.n or int(m.group(2)) or m.group(4) != 'done':
            raise RunFailed('nashra build --deliver: no "event=deliver sent=%d ... result=done"'
                            '\n%s' % (self.n, err[-2000:]))
        out, _ = self.run('status')
        m = STATUS_RE.search(out)
        if not m or int(m.group(1)) != self.n or int(m.group(2)) != self.n or int(m.group(3)):
            raise RunFailed('nashra status does not say sent %d/%d failed 0:\n%s'
                            % (self.n, self.n, out))
        return wall, rss


def smtp_source(n, size, port):
    """smtp-source: n messages of `size` bytes of payload, CONNECTIONS
    sessions kept open (-d). Returns wall seconds."""
    wall, _, _, _ = run.timed([SMTP_SOURCE, '-d', '-s', str(CONNECTIONS), '-m', str(n),
                               '-l', str(size), '-f', 'from@example.org', '-t', 'to@example.org',
                               '127.0.0.1:%d' % port])
    return wall


# --- the report --------------------------------------------------------------

def rate(n, wall):
    return n / wall if wall > 0 else float('inf')


def report(sizes, msg_size, results):
    print('nashra mail benchmark: seed article, %d B a message, %d connections, '
          'into smtp-sink on 127.0.0.1; %d CPUs' % (msg_size, CONNECTIONS, os.cpu_count() or 0))
    print()
    print('%8s %10s %10s %10s %10s %10s %10s %8s %10s %10s' % (
        'N', 'import s', 'deliver s', 'nashra/s', 'source s', 'source/s', 'ratio',
        'RSS imp', 'RSS queue', 'RSS deliv'))
    for n in sizes:
        r = results[n]
        print('%8d %10.2f %10.2f %10.0f %10.2f %10.0f %9.0f%% %8.1f %10.1f %10.1f' % (
            n, r['import'], r['deliver'], rate(n, r['deliver']), r['source'],
            rate(n, r['source']), 100 * r['ratio'], mib(r['rss_import']), mib(r['rss_queue']),
            mib(r['rss_deliver'])))
    print('(source s: median of %d smtp-source runs; RSS in MiB, GNU time peak)'
          % results[sizes[0]]['source_reps'])
    print()
    rows = []
    for n in sizes:
        r = results[n]
        rows.append(('nashra / smtp-source @%d' % n, '%.0f%%' % (100 * r['ratio']),
                     '>= %d%%' % (100 * RATE_RATIO_MIN), r['ratio'] >= RATE_RATIO_MIN))
    peaks = {n: max(results[n]['rss_import'], results[n]['rss_queue'],
                    results[n]['rss_deliver']) for n in sizes}
    for n in sizes:
        rows.append(('nashra peak RSS @%d' % n, '%.1f MiB' % mib(peaks[n]),
                     '<= %d MiB' % RSS_MAX_MIB, mib(peaks[n]) <= RSS_MAX_MIB))
    if len(sizes) > 1:
        same = max(peaks.values()) / min(peaks.values())
        rows.append(('peak RSS @%d / @%d' % (sizes[-1], sizes[0]), '%.2fx' % same,
                     '<= %.2fx' % RSS_SAME_MAX, same <= RSS_SAME_MAX))
    print('%-30s %12s %12s  %s' % ('target', 'measured', 'target', 'result'))
    for name, measured, target, ok in rows:
        print('%-30s %12s %12s  %s' % (name, measured, target, verdict(ok)))
    sys.stdout.flush()


# --- main --------------------------------------------------------------------

def positive(s):
    v = int(s)
    if v <= 0:
        raise argparse.ArgumentTypeError('must be a positive integer')
    return v


def parse_args():
    ap = argparse.ArgumentParser(description='nashra SMTP delivery vs smtp-source (issue 4).')
    ap.add_argument('n', nargs='*', type=positive,
                    help='subscriber counts (default $NASHRA_BENCH_MAIL_N or "10000 100000")')
    ap.add_argument('--source-reps', type=positive,
                    help='smtp-source runs at each N, median reported '
                         '(default $NASHRA_BENCH_MAIL_SOURCE_REPS or 3)')
    ap.add_argument('--keep', action='store_true', help='keep the work folder and print it')
    args = ap.parse_args()
    if not args.n:
        try:
            args.n = [positive(x) for x in
                      os.environ.get('NASHRA_BENCH_MAIL_N', '10000 100000').replace(',', ' ').split()]
        except (ValueError, argparse.ArgumentTypeError):
            ap.error('NASHRA_BENCH_MAIL_N must be positive integers')
        if not args.n:
            ap.error('NASHRA_BENCH_MAIL_N is empty')
    if args.source_reps is None:
        try:
            args.source_reps = positive(os.environ.get('NASHRA_BENCH_MAIL_SOURCE_REPS', '3'))
        except (ValueError, argparse.ArgumentTypeError):
            ap.error('NASHRA_BENCH_MAIL_SOURCE_REPS must be a positive integer')
    args.n = sorted(set(args.n))
    return args


def require_tools():
    missing = []
    if not shutil.which(run.GNU_TIME):
        missing.append('%s (apt-get install time)' % run.GNU_TIME)
    for tool in (SMTP_SINK, SMTP_SOURCE):
        if not os.access(tool, os.X_OK):
            missing.append('%s (Debian package postfix, without starting a mail server: %s)'
                           % (tool, INSTALL_HINT))
    if not (os.path.isfile(run.NASHRA) and os.access(run.NASHRA, os.X_OK)):
        missing.append('%s (run `make nashra`, or set NASHRA)' % run.NASHRA)
    if not os.path.isfile(SEED):
        missing.append(SEED)
    if missing:
        raise RunFailed('missing: ' + '; '.join(missing))


def main():
    args = parse_args()
    work = None
    sinks = []
    try:
        require_tools()
        work = tempfile.mkdtemp(prefix='nashra-bench-mail-', dir='/tmp')
        # A copy: the tree's ./nashra may be rebuilt while the runs go on.
        binary = os.path.join(work, 'nashra')
        shutil.copy2(run.NASHRA, binary)
        results = {}
        msg_size = 0
        for n in args.n:
            r = results[n] = {'source_reps': args.source_reps}
            nashra = Nashra(work, binary, n)
            sink = Sink(work, 'nashra-%d' % n)
            sinks.append(sink)
            progress('N=%d: site, %d subscribers imported, issue queued ...' % (n, n))
            r['import'], r['rss_import'], r['rss_queue'], msg_size = nashra.prepare(sink.port)
            progress('N=%d: import %.2fs %.1f MiB; message %d B' % (
                n, r['import'], mib(r['rss_import']), msg_size))
            progress('N=%d: nashra build --deliver ...' % n)
            r['deliver'], r['rss_deliver'] = nashra.deliver()
            got = sink.count(want=n)
            sink.stop()
            if got != n:
                raise RunFailed('N=%d: smtp-sink counted %d messages from nashra' % (n, got))
            progress('N=%d: nashra %.2fs, %.0f msgs/s, %.1f MiB' % (
                n, r['deliver'], rate(n, r['deliver']), mib(r['rss_deliver'])))
            walls = []
            for rep in range(1, args.source_reps + 1):
                sink = Sink(work, 'source-%d-%d' % (n, rep))
                sinks.append(sink)
                progress('N=%d: smtp-source run %d/%d ...' % (n, rep, args.source_reps))
                wall = smtp_source(n, msg_size, sink.port)
                got = sink.count(want=n)
                sink.stop()
                if got != n:
                    raise RunFailed('N=%d: smtp-sink counted %d messages from smtp-source'
                                    % (n, got))
                walls.append(wall)
                progress('N=%d: smtp-source %.2fs, %.0f msgs/s' % (n, wall, rate(n, wall)))
            r['source'] = statistics.median(walls)
            r['ratio'] = rate(n, r['deliver']) / rate(n, r['source'])
        report(args.n, msg_size, results)
    except (RunFailed, OSError, subprocess.SubprocessError) as e:
        progress('FAILED: %s' % e)
        return 1
    finally:
        for sink in sinks:
            sink.stop()
        if work and args.keep:
            progress('work folder kept: %s' % work)
        elif work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
