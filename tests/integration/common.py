"""Helpers for nashra's integration tests: where things are, temporary sites
built from the shared corpus, running the real binary, reading its outputs
and its SQLite state. Nothing here is mocked: every test talks to $NASHRA."""

import atexit
import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.normpath(os.path.join(REPO, '..', 'shared', 'corpus'))
NASHRA = os.environ.get('NASHRA') or os.path.join(REPO, 'nashra')

SITE_URL = 'https://news.example.org'
SITE_TITLE = 'نشاطات منظمة التعاون الرقمي'
NOW_2026 = '2026-01-01T00:00:00Z'
NOW_2099 = '2099-01-02T00:00:00Z'

# The corpus/posts folder: slugs of the posts published with NOW_2026.
GOOD_SLUGS = {'dco-diplomatic-forum', 'digital-economy-brief', 'mixed-direction',
              'plain-announcement', 'raw-html'}
FUTURE_SLUG = 'future'
DRAFT_SLUG = 'draft-notes'

NS = {
    'atom': 'http://www.w3.org/2005/Atom',
    'content': 'http://purl.org/rss/1.0/modules/content/',
    'dc': 'http://purl.org/dc/elements/1.1/',
}
XML_LANG = '{http://www.w3.org/XML/1998/namespace}lang'

# FILE[:LINE[:COL]]: error: MESSAGE (FILE is absolute in our configs).
DIAG_RE = re.compile(r'^(?P<file>/[^:\n]*?)(?::(?P<line>\d+))?(?::(?P<col>\d+))?'
                     r': error: (?P<msg>.*)$')


# --- where things are ------------------------------------------------------

def corpus(*parts):
    """Path of a corpus file or folder; a plain failure when it is missing."""
    if not os.path.isdir(CORPUS):
        raise AssertionError(
            'missing corpus: %s does not exist (the shared test corpus is '
            'expected at ../shared/corpus beside the repository)' % CORPUS)
    path = os.path.join(CORPUS, *parts)
    if not os.path.exists(path):
        raise AssertionError('missing corpus file: %s' % path)
    return path


def require_binary():
    if not (os.path.isfile(NASHRA) and os.access(NASHRA, os.X_OK)):
        raise AssertionError('nashra binary not found at %s (run `make nashra`, '
                             'or set NASHRA=/abs/path/nashra)' % NASHRA)
    return NASHRA


# --- configuration ---------------------------------------------------------

def yaml_lines(d, indent=0):
    """A small YAML writer for nested dicts of scalars and lists (strings
    as JSON strings, which YAML reads as double-quoted scalars)."""
    out = []
    pad = ' ' * indent
    for k, v in d.items():
        if v is None:
            continue
        if isinstance(v, dict):
            out.append('%s%s:' % (pad, k))
            out.extend(yaml_lines(v, indent + 2))
        elif isinstance(v, bool):
            out.append('%s%s: %s' % (pad, k, 'true' if v else 'false'))
        elif isinstance(v, int):
            out.append('%s%s: %d' % (pad, k, v))
        elif isinstance(v, list):
            out.append('%s%s: %s' % (pad, k, json.dumps(v, ensure_ascii=False)))
        else:
            out.append('%s%s: %s' % (pad, k, json.dumps(str(v), ensure_ascii=False)))
    return out


def deep_merge(base, over):
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def default_config(root):
    return {
        'site': {
            'title': SITE_TITLE,
            'url': SITE_URL,
            'language': 'ar',
            'timezone': 'Asia/Riyadh',
            'author': {'name': 'فريق التحرير', 'email': 'news@example.org'},
        },
        'content': {'dir': os.path.join(root, 'content')},
        'output': {'dir': os.path.join(root, 'public')},
        'state': {'dir': os.path.join(root, 'state')},
        'feeds': {'categories': True},
    }


# --- running nashra --------------------------------------------------------

class Result:
    def __init__(self, args, rc, out, err, elapsed):
        self.args, self.rc, self.elapsed = args, rc, elapsed
        self.out_bytes, self.err_bytes = out, err
        self.out = out.decode('utf-8', 'replace')
        self.err = err.decode('utf-8', 'replace')

    def diags(self):
        """Every FILE[:LINE[:COL]]: error: line on stderr, as dicts."""
        found = []
        for line in self.err.splitlines():
            m = DIAG_RE.match(line)
            if m:
                d = m.groupdict()
                d['line'] = int(d['line']) if d['line'] else None
                d['col'] = int(d['col']) if d['col'] else None
                found.append(d)
        return found

    def describe(self):
        return 'nashra %s: exit %s after %.2fs\n--- stdout\n%s--- stderr\n%s' % (
            ' '.join(self.args), self.rc, self.elapsed, self.out[-3000:], self.err[-6000:])


def run_nashra(args, now=NOW_2026, env=None, timeout=30, cwd=None, user=None):
    """Runs the binary; user=(uid, gid) runs it as that user through setpriv."""
    binary = require_binary()
    e = dict(os.environ)
    e.pop('NASHRA_NOW', None)
    if now is not None:
        e['NASHRA_NOW'] = now
    if env:
        for k, v in env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
    cmd = [binary] + list(args)
    if user is not None:
        cmd = ['setpriv', '--reuid=%d' % user[0], '--regid=%d' % user[1],
               '--clear-groups'] + cmd
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, env=e, cwd=cwd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as ex:
        raise AssertionError('nashra %s did not finish within %ss (hangs?)\n--- stderr\n%s' % (
            ' '.join(args), timeout, (ex.stderr or b'').decode('utf-8', 'replace')[-3000:]))
    return Result(list(args), p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


# --- a temporary site ------------------------------------------------------

def copy_tree(src, dst):
    """Copies a corpus folder with ordinary writable modes (the corpus is
    read-only; the tests edit their copies)."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        target = os.path.normpath(os.path.join(dst, rel))
        os.makedirs(target, mode=0o755, exist_ok=True)
        for f in filenames:
            shutil.copyfile(os.path.join(dirpath, f), os.path.join(target, f))
            os.chmod(os.path.join(target, f), 0o644)


class Site:
    """A site in a fresh folder directly under /tmp: nashra.yaml, content/,
    and after a build public/ and state/. All paths in the config are
    absolute, so FILE in diagnostics is exactly content + '/' + relpath."""

    def __init__(self, config=None, posts=True):
        self.root = os.path.realpath(tempfile.mkdtemp(prefix='nashra-it-', dir='/tmp'))
        self.content = os.path.join(self.root, 'content')
        self.public = os.path.join(self.root, 'public')
        self.state = os.path.join(self.root, 'state')
        self.config_path = os.path.join(self.root, 'nashra.yaml')
        self.db_path = os.path.join(self.state, 'nashra.db')
        os.mkdir(self.content)
        self.write_config(config or {})
        if posts:
            copy_tree(corpus('posts'), self.content)

    def write_config(self, over):
        self.config = deep_merge(default_config(self.root), over)
        with open(self.config_path, 'w', encoding='utf-8') as f:
            f.write('\n'.join(yaml_lines(self.config)) + '\n')

    def cleanup(self):
        def onerror(func, path, exc):
            try:
                os.chmod(os.path.dirname(path), 0o755)
                os.chmod(path, 0o755)
                func(path)
            except OSError:
                pass
        shutil.rmtree(self.root, onerror=onerror)

    # content
    def path(self, rel):
        return os.path.join(self.content, rel)

    def write(self, rel, data):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(data.encode('utf-8') if isinstance(data, str) else data)

    def read(self, rel):
        with open(self.path(rel), 'rb') as f:
            return f.read()

    def remove(self, rel):
        os.remove(self.path(rel))

    # commands
    def build(self, **kw):
        return run_nashra(['build', '-c', self.config_path], **kw)

    def check(self, **kw):
        return run_nashra(['check', '-c', self.config_path], **kw)

    # outputs
    def out_path(self, rel):
        return os.path.join(self.public, rel)

    def out(self, rel):
        with open(self.out_path(rel), 'rb') as f:
            return f.read()

    def outputs(self):
        """{relpath: bytes} of every file in output.dir."""
        return read_tree(self.public)

    def mtimes(self):
        res = {}
        for dirpath, _, files in os.walk(self.public):
            for f in files:
                p = os.path.join(dirpath, f)
                res[os.path.relpath(p, self.public)] = os.lstat(p).st_mtime_ns
        return res

    # state
    def db(self, sql, params=()):
        if not os.path.exists(self.db_path):
            raise AssertionError('no state database at %s' % self.db_path)
        con = sqlite3.connect(self.db_path, timeout=10)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def published_slugs(self):
        return {r[0] for r in self.db('SELECT slug FROM posts WHERE published = 1')}

    def announcements(self):
        return self.db('SELECT seq, kind, slug FROM announcements ORDER BY seq')


def read_tree(top):
    res = {}
    for dirpath, _, files in os.walk(top):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p) or not os.path.isfile(p):
                res[os.path.relpath(p, top)] = None
                continue
            with open(p, 'rb') as fh:
                res[os.path.relpath(p, top)] = fh.read()
    return res


class SiteTestCase(unittest.TestCase):
    """A test case with self.site(...) that cleans up after itself."""

    def site(self, config=None, posts=True):
        s = Site(config, posts)
        self.addCleanup(s.cleanup)
        return s

    def assertBuilt(self, res, msg=''):
        self.assertEqual(res.rc, 0, '%s%s' % (msg, res.describe()))


# --- reading outputs -------------------------------------------------------

def post_url(slug):
    from urllib.parse import quote
    return '%s/posts/%s/' % (SITE_URL, quote(slug, safe=''))


def slug_of_url(url):
    from urllib.parse import unquote
    prefix = SITE_URL + '/posts/'
    if not url or not url.startswith(prefix) or not url.endswith('/'):
        return None
    return unquote(url[len(prefix):-1])


def rss_items(data):
    root = ET.fromstring(data)
    items = []
    for it in root.findall('./channel/item'):
        items.append({
            'title': it.findtext('title'),
            'link': it.findtext('link'),
            'guid': it.findtext('guid'),
            'guid_permalink': (it.find('guid').get('isPermaLink') if it.find('guid') is not None
                               else None),
            'pubDate': it.findtext('pubDate'),
            'description': it.findtext('description'),
            'content': it.findtext('content:encoded', namespaces=NS),
            'creator': it.findtext('dc:creator', namespaces=NS),
            'categories': [c.text for c in it.findall('category')],
        })
    return root, items


def atom_entries(data):
    root = ET.fromstring(data)
    entries = []
    for e in root.findall('atom:entry', NS):
        content = e.find('atom:content', NS)
        entries.append({
            'id': e.findtext('atom:id', namespaces=NS),
            'title': e.findtext('atom:title', namespaces=NS),
            'published': e.findtext('atom:published', namespaces=NS),
            'updated': e.findtext('atom:updated', namespaces=NS),
            'summary': e.findtext('atom:summary', namespaces=NS),
            'content': content.text if content is not None else None,
            'content_type': content.get('type') if content is not None else None,
            'lang': e.get(XML_LANG) or (content.get(XML_LANG) if content is not None else None),
            'author': e.findtext('atom:author/atom:name', namespaces=NS),
            'links': [(l.get('rel'), l.get('href')) for l in e.findall('atom:link', NS)],
            'categories': [c.get('term') for c in e.findall('atom:category', NS)],
        })
    return root, entries


def front_matter_title(path):
    """The title: of a Markdown post's front matter, as a str (plain or
    double-quoted YAML scalar without escapes: what the corpus uses)."""
    with open(path, 'rb') as f:
        text = f.read().decode('utf-8')
    m = re.search(r'^title:[ \t]*(.*?)[ \t]*$', text, re.M)
    if not m:
        raise AssertionError('no title in the front matter of %s' % path)
    v = m.group(1)
    if v.startswith('"'):
        return json.loads(v)
    if v.startswith("'"):
        return v[1:-1].replace("''", "'")
    return v


class _HtmlTag(HTMLParser):
    def __init__(self, tag):
        super().__init__(convert_charrefs=True)
        self.tag, self.attrs = tag, None

    def handle_starttag(self, tag, attrs):
        if tag == self.tag and self.attrs is None:
            self.attrs = dict(attrs)


def html_tag_attrs(page, tag='html'):
    """Attributes of the first <tag> of an HTML page, or None."""
    p = _HtmlTag(tag)
    p.feed(page.decode('utf-8') if isinstance(page, bytes) else page)
    return p.attrs


def html_text(fragment):
    """Text of an HTML fragment: <br> and block ends are line breaks, tags
    gone, entities decoded."""
    s = re.sub(r'<br\s*/?>\n?', '\n', fragment, flags=re.I)
    s = re.sub(r'</(p|div|h[1-6]|li|blockquote|pre|tr|td|th)>', '\n\n', s, flags=re.I)
    s = re.sub(r'<[^>]*>', '', s)
    return html.unescape(s)


def xmllint(path, *extra):
    p = subprocess.run(['xmllint', '--noout'] + list(extra) + [path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stderr.decode('utf-8', 'replace')


_ATOM_RNG = None


def atom_rng():
    """RFC 4287 Appendix B (tests/integration/atom.rnc) as RELAX NG XML,
    converted with trang once per process."""
    global _ATOM_RNG
    if _ATOM_RNG is None or not os.path.exists(_ATOM_RNG):
        d = tempfile.mkdtemp(prefix='nashra-it-rng-')
        atexit.register(shutil.rmtree, d, True)
        out = os.path.join(d, 'atom.rng')
        p = subprocess.run(['trang', os.path.join(HERE, 'atom.rnc'), out],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        if p.returncode != 0:
            raise AssertionError('trang could not convert atom.rnc: %s' %
                                 p.stderr.decode('utf-8', 'replace'))
        _ATOM_RNG = out
    return _ATOM_RNG


def xml_files(top):
    return sorted(os.path.join(dp, f) for dp, _, fs in os.walk(top) for f in fs
                  if f.endswith('.xml'))


# --- the daemon (`nashra serve`) and HTTP ------------------------------------

READY_RE = re.compile(r'^.*\bevent=ready\b.*\bport=(\d+)\b.*$', re.M)


def wait_until(fn, timeout=10.0, interval=0.02, what='condition', detail=None):
    """Calls fn until it returns something true, and returns that; past
    timeout seconds, an AssertionError saying what was awaited, with fn's last
    value (or exception) and detail() (a log tail, say) when given."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except (OSError, ValueError, ET.ParseError, sqlite3.Error) as e:
            last = '%s: %s' % (type(e).__name__, e)
        if time.monotonic() >= deadline:
            msg = 'waited %.1fs for %s; last: %r' % (timeout, what, last)
            if detail:
                msg += '\n' + detail()
            raise AssertionError(msg)
        time.sleep(interval)


class Daemon:
    """`nashra serve -c` on a Site, with the real clock (no NASHRA_NOW) and
    stderr (and stdout) appended to site.root/serve.log. start() waits for
    the `event=ready ... port=N` line and sets self.port; every start
    appends to the same log, and log() reads the part of the current one.
    wrapper is a command put before the binary (valgrind)."""

    def __init__(self, site, env=None, wrapper=None):
        self.site = site
        self.env = env or {}
        self.wrapper = list(wrapper or [])
        self.proc = None
        self.port = None
        self.log_path = os.path.join(site.root, 'serve.log')
        self.log_start = 0

    def start(self, timeout=10.0, wait=True):
        """Starts the daemon and, unless wait is false, waits for it to be
        ready (self.port set)."""
        binary = require_binary()
        e = dict(os.environ)
        e.pop('NASHRA_NOW', None)
        for k, v in self.env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        self.log_start = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, 'ab') as f:
            self.proc = subprocess.Popen(
                self.wrapper + [binary, 'serve', '-c', self.site.config_path],
                stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=e, cwd=self.site.root)
        self.port = None
        if not wait:
            return self

        def ready():
            m = READY_RE.search(self.log())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise AssertionError('nashra serve exited with %s before it was ready\n%s' % (
                    self.proc.returncode, self.tail()))
            return None
        self.port = wait_until(ready, timeout, what='event=ready from nashra serve',
                               detail=self.tail)
        return self

    def log(self):
        """The log of the current (or last) run."""
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(self.log_start)
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def tail(self, n=40):
        lines = self.log().splitlines()
        return '--- nashra serve log (last %d lines)\n%s' % (n, '\n'.join(lines[-n:]))

    def wait_log(self, pattern, timeout=10.0, after=0):
        """The first match of pattern (a regex, multiline) in the current
        log at or after character offset after."""
        rx = re.compile(pattern, re.M)

        def found():
            return rx.search(self.log(), after)
        return wait_until(found, timeout, what='log line /%s/' % pattern, detail=self.tail)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=None, timeout=10.0):
        """Sends sig (SIGTERM) and waits up to timeout seconds; returns
        (exit status, seconds taken). A daemon still running then is killed
        and the AssertionError says so."""
        import signal as _signal
        t0 = time.monotonic()
        self.proc.send_signal(sig or _signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError('nashra serve did not stop within %.0fs of signal %s\n%s' % (
                timeout, sig or _signal.SIGTERM, self.tail()))
        return rc, time.monotonic() - t0

    def kill(self):
        """SIGKILL (if still running) and reap: the cleanup of every test."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.port, path)


class Response:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.body = status, reason, body
        self.headers = {k.lower(): v for k, v in headers}

    def header(self, name):
        return self.headers.get(name.lower())

    def text(self):
        return self.body.decode('utf-8', 'replace')


def http_request(port, method, path, headers=None, body=None, timeout=5.0):
    """One request on a new connection (http.client); a Response."""
    import http.client
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, r.getheaders(), data)
    finally:
        conn.close()


def http_get(port, path, headers=None, timeout=5.0):
    return http_request(port, 'GET', path, headers=headers, timeout=timeout)


def http_raw(port, data, timeout=5.0):
    """Sends data (bytes) as is on a new connection, reads until the server
    closes it (or timeout), and returns every byte received."""
    import socket
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        s.sendall(data)
        got = b''
        while True:
            d = s.recv(65536)
            if not d:
                return got
            got += d
