"""The ActivityPub fan-out benchmark (SPEC 11, last row; `make bench`):
one new post to F followers behind I shared inboxes (default 10,000 on
1,000), beside the machine's RSA-2048 signing rate on one core.

    /usr/bin/python3 tests/bench/ap.py [--followers F] [--inboxes I] [--keep]

A site with one post is built (the state made), F followers are written into
its state (each with its own inbox and one of I shared inboxes), and
`nashra serve` starts with activitypub.allow_insecure_loopback. A sink on
127.0.0.1 (asyncio, HTTP/1.1 keep-alive, answers 202 at once) counts the
POSTs. A new post is written; the time from its file being closed to the
I-th 2xx is the fan-out time. Checks: exactly I requests, one per shared
inbox, each a Create of the new post carrying a Signature header.

Beside it, `openssl speed -seconds 3 rsa2048` on one core gives sign/s.
Reports deliveries/s (wall clock), their ratio to sign/s (target >= 50%),
the daemon's CPU time over the fan-out (openssl speed counts operations per
CPU second: on a loaded machine the CPU-time ratio is the comparable one),
its peak RSS (VmHWM), and the load average. A missed target is reported, not an error: the
exit status is 1 only when something failed to run, 2 on bad arguments.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NASHRA = os.environ.get('NASHRA') or os.path.join(REPO, 'nashra')
RATIO_MIN = 0.5

POST = '''---
title: "منشور جديد للمتابعين"
summary: "ملخص المنشور"
---

نص المنشور الجديد، بالعربية، مع **تنسيق** بسيط.
'''


class Sink:
    """Counts POSTs per path on 127.0.0.1:port; answers 202 at once."""

    def __init__(self):
        self.count = 0
        self.paths = {}
        self.bad = 0
        self.last = 0.0
        self.first_body = None
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self.run, daemon=True).start()
        self.ready.wait(10)

    def run(self):
        asyncio.set_event_loop(self.loop)
        srv = self.loop.run_until_complete(
            asyncio.start_server(self.client, '127.0.0.1', 0, backlog=1024))
        self.port = srv.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def client(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b'\r\n\r\n')
                lines = head.decode('latin-1').split('\r\n')
                method, path, _ = lines[0].split(' ', 2)
                hdr = {}
                for l in lines[1:]:
                    if ':' in l:
                        k, v = l.split(':', 1)
                        hdr[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(hdr.get('content-length', '0')))
                if method != 'POST' or 'signature' not in hdr:
                    self.bad += 1
                if self.first_body is None:
                    self.first_body = body
                self.paths[path] = self.paths.get(path, 0) + 1
                writer.write(b'HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n')
                self.count += 1
                self.last = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def openssl_sign_rate():
    out = subprocess.run(['openssl', 'speed', '-seconds', '3', 'rsa2048'],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r'^rsa\s+2048 bits\s+\S+s\s+\S+s\s+([\d.]+)', out, re.M)
    if not m:
        raise RuntimeError('openssl speed: no rsa 2048 line in\n' + out)
    return float(m.group(1))


def peak_rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User + system CPU time of pid so far."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--followers', type=int, default=10000)
    ap.add_argument('--inboxes', type=int, default=1000)
    ap.add_argument('--keep', action='store_true')
    a = ap.parse_args()
    if a.followers < 1 or a.inboxes < 1 or a.inboxes > a.followers:
        ap.error('need 1 <= inboxes <= followers')
    binary = os.path.abspath(NASHRA)
    if not os.access(binary, os.X_OK):
        print('ap bench: no nashra binary at %s' % binary, file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix='nashra-bench-ap-', dir='/tmp')
    proc = None
    try:
        sink = Sink()
        content = os.path.join(work, 'content')
        os.mkdir(content)
        with open(os.path.join(content, 'first.md'), 'w') as f:
            f.write(POST.replace('جديد', 'أول'))
        port = free_port()
        cfg = os.path.join(work, 'nashra.yaml')
        with open(cfg, 'w') as f:
            f.write('site:\n  title: "bench"\n  url: "https://bench.example.org"\n'
                    '  language: ar\n'
                    'content: { dir: "%s" }\noutput: { dir: "%s/public" }\n'
                    'state: { dir: "%s/state" }\nhttp: { listen: "127.0.0.1:%d" }\n'
                    'activitypub: { allow_insecure_loopback: true }\n'
                    % (content, work, work, port))
        subprocess.run([binary, 'build', '-c', cfg], check=True, capture_output=True)
        base = 'http://127.0.0.1:%d' % sink.port
        db = sqlite3.connect(os.path.join(work, 'state', 'nashra.db'))
        db.executemany(
            'INSERT INTO ap_followers(actor, inbox, shared_inbox, created) VALUES (?,?,?,0)',
            (('%s/users/%d' % (base, i), '%s/users/%d/inbox' % (base, i),
              '%s/inbox/%d' % (base, i % a.inboxes)) for i in range(a.followers)))
        db.commit()
        db.close()
        log = open(os.path.join(work, 'serve.log'), 'wb')
        proc = subprocess.Popen([binary, 'serve', '-c', cfg], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while b'event=ready' not in open(os.path.join(work, 'serve.log'), 'rb').read():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError('nashra serve did not start')
            time.sleep(0.05)
        time.sleep(0.5)
        cpu0 = cpu_seconds(proc.pid)
        path = os.path.join(content, 'new.md')
        with open(path, 'w') as f:
            f.write(POST)
        t0 = time.monotonic()  # the file is closed
        deadline = t0 + 300
        while sink.count < a.inboxes:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError('only %d of %d deliveries' % (sink.count, a.inboxes))
            time.sleep(0.01)
        elapsed = sink.last - t0
        cpu = cpu_seconds(proc.pid) - cpu0
        time.sleep(1.0)  # anything sent twice arrives by now
        rss = peak_rss_kib(proc.pid)
        body = json.loads(sink.first_body)
        ok = (sink.count == a.inboxes and len(sink.paths) == a.inboxes and sink.bad == 0 and
              body.get('type') == 'Create' and
              body['object']['id'].endswith('/posts/new/'))
        sign = openssl_sign_rate()
        rate = a.inboxes / elapsed
        cpu_rate = a.inboxes / cpu if cpu > 0 else float('inf')
        print('ActivityPub fan-out: %d followers on %d shared inboxes' % (a.followers, a.inboxes))
        print('  deliveries:        %d requests in %.3f s (%.0f/s)%s' % (
            sink.count, elapsed, rate, '' if ok else '  CHECK FAILED'))
        print('  openssl sign/s:    %.0f (rsa2048, one core)' % sign)
        print('  ratio:             %.0f%% (target >= %.0f%%): %s' % (
            100 * rate / sign, 100 * RATIO_MIN, 'PASS' if rate / sign >= RATIO_MIN else 'MISS'))
        print('  nashra CPU time:   %.3f s (%.0f deliveries per CPU second: %.0f%% of sign/s,'
              ' which openssl also counts in CPU time)' % (cpu, cpu_rate, 100 * cpu_rate / sign))
        print('  nashra peak RSS:   %.1f MiB' % (rss / 1024))
        print('  load average:      %s' % ' '.join(open('/proc/loadavg').read().split()[:3]))
        return 0 if ok else 1
    except (RuntimeError, subprocess.CalledProcessError, OSError, ValueError) as e:
        print('ap bench: %s' % e, file=sys.stderr)
        return 1
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            proc.wait(15)
        if a.keep:
            print('kept: %s' % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
