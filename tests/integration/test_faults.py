"""Fault injection (issue 7, "proof under fire"; RELIABILITY.md, "Fault
injection"): each fault ends with a clear logfmt line, nashra changes nothing
it cannot finish, and once the fault is gone the next pass (or the daemon's
retry) completes with no lost and no duplicated work.

  DiskFullTest        output.dir on a small tmpfs, filled up: `build` fails
                      naming the path, every output file is the old or the
                      new version (never a truncated one), no temporary file
                      is left; space freed, the next build matches a fresh
                      one byte for byte. The daemon logs, retries, survives,
                      and recovers by itself and on the next change.
  SqliteLockTest      another process holds BEGIN EXCLUSIVE on nashra.db:
                      `build` and the daemon say "database is locked" and
                      change nothing; released, both finish the job.
  ReadOnlyStateTest   state.dir and nashra.db read-only (as a non-root user):
                      `build` names the database, changes nothing; writable
                      again, the next build is whole.
  SmtpKillTest        the SMTP server SIGKILLs itself during DATA of a
                      message mid-issue; a new one comes up on the same port;
                      every subscriber has one copy, except at most the
                      messages in flight at the kill (bound: connections).
  AllocFailTest       `build` under tests/fault/failmalloc.so with allocation
                      N failing, N swept over the whole run (every N up to
                      1500, then a stride; every N with NASHRA_SLOW=1, `make
                      test-slow`): no crash, a clean exit with a message, and
                      the next build equals a fresh one.

The remote-fetch faults (an inbox that never answers, a 2 GiB body) are in
tests/unit/test_fault_fetch.c.
"""

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from collections import Counter

from common import (Daemon, NOW_2026, REPO, SiteTestCase, http_get, read_tree, require_binary,
                    run_nashra, wait_until)
import test_mail as tm

SLOW = os.environ.get('NASHRA_SLOW') == '1'

NEW_POST = '''---
title: "منشور جديد أثناء العطل"
date: 2025-06-01 09:00
categories: ["نشاطات"]
---
فقرة أولى من المنشور الجديد.

%s
'''


def setUpModule():
    tm.setUpModule()  # the SMTP server's certificate


def tearDownModule():
    tm.tearDownModule()


def outputs(public):
    """{relpath: bytes} of output.dir without nashra's temporary folder."""
    return {k: v for k, v in read_tree(public).items() if not k.startswith('.nashra-tmp/')}


def tmp_left(public):
    d = os.path.join(public, '.nashra-tmp')
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def edit(site, tag):
    """The same change on any site: one post's body edited, one post added."""
    p = site.path('2024/mixed-direction.md')
    with open(p, 'ab') as f:
        f.write(('\n\nفقرة أضيفت (%s).\n' % tag).encode('utf-8'))
    site.write('2025/fault-new.md', NEW_POST % ('فقرة ثانية: %s' % tag))


class FaultCase(SiteTestCase):
    def reference(self):
        """The outputs of a fresh build of the corpus."""
        ref = self.site()
        self.assertBuilt(ref.build())
        return outputs(ref.public)

    def twin(self, *steps):
        """The outputs of the same history without the fault: a build of the
        corpus, then for each step (a function of the site) the step and a
        build. (Not a fresh build: an edited post has its update date.)"""
        ref = self.site()
        self.assertBuilt(ref.build())
        for step in steps:
            step(ref)
            self.assertBuilt(ref.build())
        return outputs(ref.public)

    def assertLogLine(self, text, pattern, what):
        """A logfmt line matching pattern: ts= level= event= first."""
        for line in text.splitlines():
            if re.search(pattern, line):
                self.assertRegex(line, r'^ts=\S+ level=(error|warn|info) event=\w+ ', line)
                return line
        self.fail('no log line for %s (/%s/) in:\n%s' % (what, pattern, text[-3000:]))


# --- 1: disk full --------------------------------------------------------------------

class Tmpfs:
    """A tmpfs of size bytes mounted on a fresh folder, or a reason why not."""

    def __init__(self, size):
        self.dir = tempfile.mkdtemp(prefix='nashra-it-tmpfs-', dir='/tmp')
        self.why = None
        if os.geteuid() != 0:
            self.why = 'not root'
        else:
            p = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%d,mode=0755' % size,
                                'nashra-fault', self.dir], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
            if p.returncode != 0:
                self.why = p.stderr.decode('utf-8', 'replace').strip()
        self.filler = os.path.join(self.dir, 'filler')

    def fill(self, leave=0):
        """Fills the file system, then frees leave bytes again."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        block = b'\0' * 4096
        try:
            while True:
                os.write(fd, block)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)
        if leave:
            size = os.path.getsize(self.filler)
            os.truncate(self.filler, max(0, size - leave))

    def free(self):
        if os.path.exists(self.filler):
            os.remove(self.filler)

    def cleanup(self):
        if self.why is None:
            subprocess.run(['umount', '-l', self.dir], timeout=30)
        shutil.rmtree(self.dir, True)


class DiskFullTest(FaultCase):
    def tmpfs(self, size=1 << 20):
        fs = Tmpfs(size)
        self.addCleanup(fs.cleanup)
        if fs.why is not None:
            print('\nSKIPPED disk-full test: cannot mount a tmpfs (%s)' % fs.why, file=sys.stderr)
            self.skipTest('cannot mount a tmpfs: %s' % fs.why)
        return fs

    def assertOldOrNew(self, public, old, new):
        """Every output file is whole: its old or its new version; and no
        temporary file is left."""
        now = outputs(public)
        for rel, data in now.items():
            self.assertTrue(data == old.get(rel) or data == new.get(rel),
                            '%s is neither its old nor its new version (%d bytes)' %
                            (rel, len(data)))
        self.assertEqual(tmp_left(public), [], 'temporary files left behind')

    def assertDiskFull(self, res, public):
        self.assertNotEqual(res.rc, 0, res.describe())
        line = self.assertLogLine(res.err, r'level=error event=write ', 'the failed write')
        self.assertIn('No space left on device', line)
        m = re.search(r'path=(\S+)', line)
        self.assertTrue(m and m.group(1).startswith(public), line)
        self.assertLogLine(res.err, r'level=error event=build result=failed', 'the build')

    def test_build_disk_full(self):
        fs = self.tmpfs()
        public = os.path.join(fs.dir, 'public')
        site = self.site({'output': {'dir': public}})
        fresh = self.reference()
        # The first build, on a full disk: fails; freed, the next is a fresh one.
        fs.fill()
        self.assertDiskFull(site.build(), public)
        self.assertOldOrNew(public, {}, fresh)
        fs.free()
        self.assertBuilt(site.build())
        self.assertEqual(outputs(public), fresh, 'after space is freed: a fresh build, exactly')
        # A change on a full disk, then with a little room (the small files
        # fit, not the big ones): old or new files, and the new ones in the end.
        new = self.twin(lambda s: edit(s, 'disk'))
        for leave in (0, 12288):
            fs.fill(leave)
            if leave == 0:
                edit(site, 'disk')
            self.assertDiskFull(site.build(), public)
            self.assertOldOrNew(public, fresh, new)
            fs.free()
        self.assertBuilt(site.build())
        self.assertEqual(outputs(public), new, 'after space is freed: the same as without fault')

    def test_serve_disk_full(self):
        fs = self.tmpfs()
        public = os.path.join(fs.dir, 'public')
        site = self.site({'output': {'dir': public}, 'http': {'listen': '127.0.0.1:0'}})
        d = Daemon(site, env={'NASHRA_NOW': NOW_2026})
        self.addCleanup(d.kill)
        d.start()
        self.assertEqual(outputs(public), self.reference())
        fs.fill()
        mark = len(d.log())
        edit(site, 'serve-disk')
        d.wait_log(r'level=error event=write path=\S+ error="No space left on device"',
                   after=mark)
        m = d.wait_log(r'level=error event=publish reason=change result=failed retry_ms=1000',
                       after=mark)
        d.wait_log(r'level=error event=publish reason=retry result=failed', after=m.end())
        self.assertTrue(d.alive())
        self.assertEqual(http_get(d.port, '/healthz').status, 200, 'serving on a full disk')
        mark = len(d.log())
        fs.free()
        d.wait_log(r'level=info event=publish reason=retry files=', after=mark)
        self.assertEqual(outputs(public), self.twin(lambda s: edit(s, 'serve-disk')))
        self.assertEqual(tmp_left(public), [])
        # and the next change goes through as usual
        mark = len(d.log())
        site.write('2025/fault-new.md', NEW_POST % 'فقرة ثانية: serve-disk-2')
        d.wait_log(r'level=info event=publish reason=change ', after=mark)
        ref = self.twin(lambda s: edit(s, 'serve-disk'), lambda s: s.write(
            '2025/fault-new.md', NEW_POST % 'فقرة ثانية: serve-disk-2'))
        wait_until(lambda: outputs(public) == ref, 10, what='the outputs of the next change')
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.tail())


# --- 2: SQLite locked, state read-only ------------------------------------------------

HOLDER = r'''
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute('BEGIN EXCLUSIVE')
print('locked', flush=True)
sys.stdin.read()
con.execute('ROLLBACK')
'''


class Lock:
    """A second process holding a write transaction on db until release()."""

    def __init__(self, db):
        self.proc = subprocess.Popen([sys.executable, '-c', HOLDER, db], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if line.strip() != b'locked':
            self.release()
            raise AssertionError('could not lock %s: %r' % (db, line))

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(30)


def db_dump(db):
    import sqlite3
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


class SqliteLockTest(FaultCase):
    def test_build_locked(self):
        site = self.site()
        self.assertBuilt(site.build())
        before, mtimes, dump = outputs(site.public), site.mtimes(), db_dump(site.db_path)
        edit(site, 'lock')
        lock = Lock(site.db_path)
        self.addCleanup(lock.release)
        res = site.build()
        self.assertEqual(res.rc, 1, res.describe())
        line = self.assertLogLine(res.err, r'level=error event=state ', 'the locked database')
        self.assertIn('database is locked', line)
        self.assertIn(site.db_path, line, 'the line names the database')
        self.assertLogLine(res.err, r'level=error event=build result=failed', 'the build')
        self.assertEqual(outputs(site.public), before, 'outputs untouched')
        self.assertEqual(site.mtimes(), mtimes)
        lock.release()
        self.assertEqual(db_dump(site.db_path), dump, 'the state untouched')
        self.assertBuilt(site.build())
        self.assertEqual(outputs(site.public), self.twin(lambda s: edit(s, 'lock')))

    def test_serve_locked(self):
        site = self.site({'http': {'listen': '127.0.0.1:0'}})
        d = Daemon(site, env={'NASHRA_NOW': NOW_2026})
        self.addCleanup(d.kill)
        d.start()
        before = outputs(site.public)
        lock = Lock(site.db_path)
        self.addCleanup(lock.release)
        mark = len(d.log())
        edit(site, 'serve-lock')
        d.wait_log(r'level=error event=state .*database is locked', after=mark, timeout=20)
        m = d.wait_log(r'level=error event=publish reason=change result=failed retry_ms=1000',
                       after=mark, timeout=20)
        d.wait_log(r'level=error event=publish reason=retry result=failed', after=m.end(),
                   timeout=20)
        self.assertTrue(d.alive())
        self.assertEqual(outputs(site.public), before, 'nothing written while locked')
        mark = len(d.log())
        lock.release()
        d.wait_log(r'level=info event=publish reason=retry files=', after=mark, timeout=20)
        self.assertEqual(outputs(site.public), self.twin(lambda s: edit(s, 'serve-lock')))
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.tail())


class ReadOnlyStateTest(FaultCase):
    NOBODY = (65534, 65534)

    def test_build_state_read_only(self):
        if os.geteuid() != 0:
            self.skipTest('needs root to run nashra as another user')
        site = self.site()
        for dp, dns, fns in os.walk(site.root):
            for n in [dp] + [os.path.join(dp, x) for x in dns + fns]:
                os.chown(n, *self.NOBODY)
        self.assertBuilt(site.build(user=self.NOBODY))
        before, mtimes, dump = outputs(site.public), site.mtimes(), db_dump(site.db_path)
        edit(site, 'ro')
        modes = {}
        for f in [site.state] + [os.path.join(site.state, x) for x in os.listdir(site.state)]:
            modes[f] = os.stat(f).st_mode & 0o7777
            os.chmod(f, 0o555 if os.path.isdir(f) else 0o444)
        res = site.build(user=self.NOBODY)
        # The daemon refuses to start on it, and says why.
        srv = run_nashra(['serve', '-c', site.config_path], user=self.NOBODY)
        for f, mode in modes.items():
            os.chmod(f, mode)
        for r, event in ((res, 'build'), (srv, 'start')):
            self.assertEqual(r.rc, 1, r.describe())
            line = self.assertLogLine(r.err, r'level=error event=%s result=failed state=' % event,
                                      'the read-only state')
            self.assertIn(site.db_path, line, 'the line names the database')
            self.assertIn('attempt to write a readonly database', line)
        self.assertEqual(outputs(site.public), before, 'outputs untouched')
        self.assertEqual(site.mtimes(), mtimes)
        self.assertEqual(db_dump(site.db_path), dump, 'the state untouched')
        self.assertBuilt(site.build(user=self.NOBODY))
        self.assertEqual(outputs(site.public), self.twin(lambda s: edit(s, 'ro')))


# --- 3: the SMTP server killed mid-DATA -----------------------------------------------

class SmtpKillTest(tm.MailCase):
    SUBSCRIBERS = 300
    DIE_AT = 120  # the DATA of this message

    def test_smtp_killed_mid_data(self):
        root = tempfile.mkdtemp(prefix='nashra-it-smtp-', dir='/tmp')
        self.addCleanup(shutil.rmtree, root, True)
        srv = tm.SmtpServer(root, no_eml=True, extra=['--die-in-data', str(self.DIE_AT)]).start()
        self.addCleanup(srv.kill)
        site = self.site(tm.mail_config(srv.port, [{'id': 'news'}]), posts=False)
        everyone = ['reader%03d@example.org' % i for i in range(self.SUBSCRIBERS)]
        self.import_csv(site, 'news', 'email\n' + '\n'.join(everyone) + '\n')
        d = self.daemon(site, env={'NASHRA_MAIL_BACKOFF_S': '1'})
        self.drop(site, 'post.md', tm.post_md('خبر'))
        wait_until(lambda: srv.proc.poll() is not None, 30, what='the SMTP server to die',
                   detail=self.status(d))
        self.assertEqual(srv.proc.returncode, -signal.SIGKILL)
        killed_at = srv.count()
        self.assertLess(killed_at, self.DIE_AT, 'nothing accepted past the kill')
        # The sender sees the connections drop: each message put back, logged.
        mark = 0
        line = d.wait_log(r'^.*level=warn event=smtp .*outcome=retry.*$', after=mark, timeout=20)
        self.assertRegex(line.group(0), r'why=')
        wait_until(lambda: site.db("SELECT COUNT(*) FROM deliveries WHERE state = 'retry'")[0][0],
                   20, what='deliveries put back while the server is gone', detail=self.status(d))
        self.assertTrue(d.alive())
        # Cut off by the kill: the messages whose connection broke (not the
        # later tries that found no server: curl 7, could not connect). A
        # connection that lost one may have taken the next before the kill
        # landed, so there can be more of them than connections; but at
        # most one a connection was past DATA, so only those can come twice.
        inflight = {m.group(1) for m in re.finditer(
            r'level=warn event=smtp id=\d+ rcpt=(\S+) outcome=retry code=\d+ curl=(?!7 )',
            d.log())}
        self.assertGreaterEqual(len(inflight), 1, d.tail())
        srv.extra = []
        srv.start()  # a new server, the same port
        self.wait_sent(site, srv, self.SUBSCRIBERS, timeout=60, detail=self.status(d))
        got = Counter(r[2] for r in srv.records())
        dups = {r: n for r, n in got.items() if n > 1}
        print('\nsmtp kill test: server killed at DATA of message %d (%d accepted before), '
              '%d subscribers, %d cut off by the kill, %d duplicates (bound: %d connections, '
              'and only messages cut off), %d missing'
              % (self.DIE_AT, killed_at, self.SUBSCRIBERS, len(inflight),
                 sum(n - 1 for n in dups.values()), tm.CONNECTIONS,
                 len(set(everyone) - set(got))), file=sys.stderr)
        self.assertEqual(set(got), set(everyone), 'everyone in the end')
        self.assertLessEqual(sum(n - 1 for n in dups.values()), tm.CONNECTIONS,
                             'duplicates: %s' % dups)
        self.assertLessEqual(set(dups), inflight, 'only messages in flight came twice')
        self.assertEqual(max(got.values()), min(2, max(got.values())), 'nobody thrice')
        self.assertEqual(site.db("SELECT state, COUNT(*) FROM deliveries GROUP BY state"),
                         [('sent', self.SUBSCRIBERS)])


# --- 4: allocation failures -------------------------------------------------------------

def failmalloc_path():
    if os.environ.get('NASHRA_FAILMALLOC'):
        return os.environ['NASHRA_FAILMALLOC']
    binary = os.path.realpath(require_binary())
    for d in (os.path.dirname(binary), os.path.join(REPO, 'build')):
        p = os.path.join(d, 'tests', 'fault', 'failmalloc.so')
        if os.path.exists(p):
            return p
    raise AssertionError('tests/fault/failmalloc.so not built (make %s/tests/fault/failmalloc.so)'
                         % os.path.dirname(binary))


def asan_runtime(binary):
    """The path of libasan.so when binary is an ASan build, else None."""
    p = subprocess.run(['ldd', binary], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       timeout=30)
    m = re.search(r'(\S*libasan\.so\S*) => (\S+)', p.stdout.decode())
    return m.group(2) if m else None


# Libraries that do not survive an allocation failure of their own (a crash
# inside them, after one of their own allocations failed), glibc's tzset(),
# which on a failed allocation silently falls back to UTC, and jansson's
# json_loads(), which can return a document without a value it could not
# store: the runs whose failed allocation was made there are reported and
# excluded (RELIABILITY.md lists them); a crash in our code is never.
LIB_CRASH = re.compile(r'/(libcrypto\.so[.\d]*)\(')


def classify(n, rc, err, ref, got):
    """None when the run at N is fine; ('excluded', why) or ('bug', why)."""
    trace = err.split('failmalloc: crashed:', 1)
    failed_at = trace[0].split('failmalloc: failing this allocation:', 1)[-1]
    if rc < 0 or len(trace) > 1 or 'AddressSanitizer' in err or 'runtime error:' in err:
        crash = trace[1] if len(trace) > 1 else err.split('AddressSanitizer', 1)[-1]
        frames = [l for l in crash.splitlines() if '(' in l and not re.search(
            r'failmalloc|libc\.so|libasan\.so|libubsan\.so', l)]
        lib = LIB_CRASH.search(failed_at)
        if lib and frames and LIB_CRASH.search(frames[0]):
            return ('excluded', 'crash inside %s after its own allocation failed' % lib.group(1))
        return ('bug', 'crash (exit %s)' % rc)
    if rc == 0 and got != ref:
        if re.search(r'\btzset\b|\btzset_internal\b', failed_at):
            return ('excluded', 'glibc tzset fell back to UTC')
        if re.search(r'libjansson\.so[.\d]*\(json_loads\+', failed_at):
            return ('excluded', 'jansson json_loads returned a document short of a value')
        return ('bug', 'exit 0 but outputs differ from a fresh build')
    if rc != 0 and not re.search(r'level=error|error:', err):
        return ('bug', 'exit %d without an error message' % rc)
    if rc not in (0, 1, 2):
        return ('bug', 'exit %d' % rc)
    return None


class AllocFailTest(FaultCase):
    FAST_DENSE = 400    # every N of the first ones after main...
    FAST_RUNS = 650     # ...then a stride so that about this many runs are made

    def sweep(self, dense, runs):
        binary = os.path.realpath(require_binary())
        shim = failmalloc_path()
        asan = asan_runtime(binary)
        site = self.site()
        cfg = ['build', '-c', site.config_path]
        ref = self.reference()
        # How many allocations a whole fresh build makes.
        count_file = os.path.join(site.root, 'count')
        env = {'LD_PRELOAD': shim, 'NASHRA_FAIL_COUNT': count_file, 'NASHRA_FAIL_TRACE': '1'}
        if asan:  # ours first, then ASan's (whose malloc ours calls)
            env['LD_PRELOAD'] = '%s:%s' % (shim, asan)
            env['ASAN_OPTIONS'] = 'verify_asan_link_order=0:detect_leaks=0'
        res = run_nashra(cfg, env=env)
        self.assertBuilt(res, 'the shim alone changes nothing: ')
        self.assertEqual(outputs(site.public), ref)
        with open(count_file) as f:
            total = int(f.read())
        # What the libraries allocate before main (GnuTLS's constructor, for
        # libcurl: some 1,300 calls, whose failures it survives): sampled
        # only, and the dense part starts where nashra does.
        self.assertBuilt(run_nashra(['--help'], env=env))
        with open(count_file) as f:
            pre = min(int(f.read()), total)
        if asan:  # each run is slower
            dense, runs = dense // 2, runs // 2
        ns = list(range(1, pre, 1 if dense >= total else max(1, pre // 20)))
        ns += list(range(pre, min(pre + dense, total + 1)))
        stride = 1
        if total >= pre + dense:
            stride = max(1, (total - pre - dense) // max(1, runs - len(ns)))
            ns += list(range(pre + dense, total + 1, stride))
            if ns[-1] != total:
                ns.append(total)
        env.pop('NASHRA_FAIL_COUNT')
        bugs, excluded, outcomes = [], Counter(), Counter()
        t0 = time.monotonic()
        for n in ns:
            shutil.rmtree(site.public, True)
            shutil.rmtree(site.state, True)
            env['NASHRA_FAIL_AT'] = str(n)
            res = run_nashra(cfg, env=env)
            outcomes[res.rc] += 1
            verdict = classify(n, res.rc, res.err, ref, outputs(site.public) if res.rc == 0
                               else None)
            if verdict is None and res.rc != 0:
                # the next normal build finishes the job
                after = run_nashra(cfg)
                if after.rc != 0 or outputs(site.public) != ref:
                    verdict = ('bug', 'the build after the failed one: exit %d, outputs %s' % (
                        after.rc, 'differ' if after.rc == 0 else 'missing'))
            if verdict and verdict[0] == 'excluded':
                excluded[verdict[1]] += 1
            elif verdict:
                bugs.append('N=%d: %s\n%s' % (n, verdict[1], res.err[-2500:]))
                if len(bugs) >= 20:
                    break
        print('\nallocation failures: %d allocations in a fresh build (%d before main), %d runs '
              '(N=%d..%d, then a stride of %d)%s in %.0fs; exits %s; excluded %s; %d bugs'
              % (total, pre, len(ns), pre, min(pre + dense, total + 1) - 1, stride,
                 ' under ASan' if asan else '',
                 time.monotonic() - t0, dict(sorted(outcomes.items())), dict(excluded), len(bugs)),
              file=sys.stderr)
        self.assertEqual(bugs, [], '\n\n'.join(bugs))

    def test_build_alloc_failures(self):
        if SLOW:
            self.sweep(1 << 62, 1 << 62)  # every N
        else:
            self.sweep(self.FAST_DENSE, self.FAST_RUNS)


if __name__ == '__main__':
    unittest.main()
