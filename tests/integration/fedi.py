"""A small fediverse server for nashra's ActivityPub tests: real HTTP on
127.0.0.1 (stdlib http.server, a thread per request) and real RSA keys
(python3-cryptography). It serves actors (with inboxes and shared inboxes)
whose keys sign the requests it sends to nashra, and it records every POST
nashra makes to its inboxes after checking it the way Mastodon does:
draft-cavage signature over (request-target) host date digest, a Digest that
matches the body, a Date within the hour, and the key fetched from nashra's
actor document (the URL of the key id, mapped from site.url to the daemon).

Written from the specifications, not from nashra's code: a peer, not a
mirror."""

import base64
import email.utils
import hashlib
import http.client
import http.server
import json
import re
import threading
import time
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

AS_CTX = 'https://www.w3.org/ns/activitystreams'
AS = 'application/activity+json'

_KEY = None


def shared_key():
    """One RSA key for every actor of every server (generating is slow)."""
    global _KEY
    if _KEY is None:
        _KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEY


def b64(data):
    return base64.b64encode(data).decode()


def pem_of(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign_headers(key, key_id, method, target, host, body, now=None, names=None):
    """The headers of a draft-cavage signed request (as a dict)."""
    date = email.utils.formatdate(now if now is not None else time.time(), usegmt=True)
    h = {'Host': host, 'Date': date}
    values = {'(request-target)': '%s %s' % (method.lower(), target), 'host': host, 'date': date}
    if body is not None:
        h['Digest'] = values['digest'] = 'SHA-256=' + b64(hashlib.sha256(body).digest())
    names = names or [n for n in ('(request-target)', 'host', 'date', 'digest') if n in values]
    string = '\n'.join('%s: %s' % (n, values[n]) for n in names)
    sig = key.sign(string.encode(), padding.PKCS1v15(), hashes.SHA256())
    h['Signature'] = 'keyId="%s",algorithm="rsa-sha256",headers="%s",signature="%s"' % (
        key_id, ' '.join(names), b64(sig))
    return h


def sign_9421_headers(key, key_id, method, target, host, body, now=None):
    """The headers of an RFC 9421 signed request (rsa-v1_5-sha256 over
    @method @target-uri content-digest, with created), as a dict. nashra sits
    behind a TLS proxy: the target URI is https."""
    now = int(now if now is not None else time.time())
    cd = 'sha-256=:' + b64(hashlib.sha256(body).digest()) + ':'
    comps = [('@method', method.upper()), ('@target-uri', 'https://%s%s' % (host.lower(), target)),
             ('content-digest', cd)]
    params = '(%s);created=%d;keyid="%s";alg="rsa-v1_5-sha256"' % (
        ' '.join('"%s"' % c for c, _ in comps), now, key_id)
    base = '\n'.join('"%s": %s' % (c, v) for c, v in comps)
    base += '\n"@signature-params": ' + params
    sig = key.sign(base.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {'Host': host, 'Content-Digest': cd, 'Signature-Input': 'sig1=' + params,
            'Signature': 'sig1=:%s:' % b64(sig)}


class Received:
    def __init__(self, path, headers, body, verified, why):
        self.path, self.headers, self.body = path, headers, body
        self.verified, self.why = verified, why
        try:
            self.json = json.loads(body)
        except ValueError:
            self.json = None

    @property
    def type(self):
        return (self.json or {}).get('type')


class Fediverse:
    """start() listens on 127.0.0.1:0; add_actor() makes actors; inbox
    POSTs land in self.received (only those answered 2xx in self.delivered);
    self.status maps an inbox path to the status to answer (default 202).
    nashra_port is the daemon's, where nashra's key is fetched from."""

    def __init__(self, site_url, nashra_port=None):
        self.site_url = site_url
        self.nashra_port = nashra_port
        self.key = shared_key()
        self.pem = pem_of(self.key)
        self.actors = {}
        self.lock = threading.Lock()
        self.received = []   # every POST to an inbox
        self.delivered = []  # those answered 2xx
        self.gets = []       # paths GET asked for, with their Signature header
        self.status = {}     # inbox path -> status code to answer
        self.hold = {}       # GET path -> threading.Event the answer waits for
        self.nashra_pem = None
        self.server = None

    # --- the server ----------------------------------------------------------
    def start(self):
        fedi = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *a):
                pass

            def send(self, code, body=b'', ctype=AS):
                self.send_response(code)
                self.send_header('Content-Type', ctype)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                with fedi.lock:
                    fedi.gets.append((self.path, self.headers.get('Signature')))
                if self.path in fedi.hold:
                    fedi.hold[self.path].wait(30)
                name = self.path.split('/')[-1] if self.path.startswith('/users/') else None
                if name in fedi.actors:
                    self.send(200, json.dumps(fedi.actor_doc(name)).encode())
                else:
                    self.send(404, b'{}')

            def do_POST(self):
                n = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(n)
                ok, why = fedi.verify(self, body)
                code = fedi.status.get(self.path, 202)
                if callable(code):
                    code = code()
                r = Received(self.path, dict(self.headers), body, ok, why)
                with fedi.lock:
                    fedi.received.append(r)
                    if 200 <= code < 300:
                        fedi.delivered.append(r)
                self.send(code, b'')

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client gone: not ours
        self.port = self.server.server_address[1]
        self.base = 'http://127.0.0.1:%d' % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    # --- actors ----------------------------------------------------------------
    def add_actor(self, name, shared=None):
        """An actor /users/NAME with inbox /users/NAME/inbox and, when
        shared is given, sharedInbox /SHARED."""
        self.actors[name] = shared
        return self.actor_id(name)

    def actor_id(self, name):
        return '%s/users/%s' % (self.base, name)

    def inbox_path(self, name):
        return '/users/%s/inbox' % name

    def actor_doc(self, name):
        aid = self.actor_id(name)
        doc = {'@context': [AS_CTX, 'https://w3id.org/security/v1'], 'id': aid,
               'type': 'Person', 'preferredUsername': name, 'inbox': aid + '/inbox',
               'publicKey': {'id': aid + '#main-key', 'owner': aid, 'publicKeyPem': self.pem}}
        if self.actors.get(name):
            doc['endpoints'] = {'sharedInbox': self.base + '/' + self.actors[name]}
        return doc

    # --- talking to nashra ----------------------------------------------------------
    def post(self, path, activity, key_id=None, key=None, now=None, body=None, headers=None,
             tamper=None, rfc9421=False):
        """POSTs activity (signed as its actor unless key_id is False) to
        nashra's path; (status, text)."""
        body = body if body is not None else json.dumps(activity).encode()
        host = '127.0.0.1:%d' % self.nashra_port
        h = {'Content-Type': AS}
        if key_id is not False:
            kid = key_id or activity['actor'] + '#main-key'
            sign = sign_9421_headers if rfc9421 else sign_headers
            h.update(sign(key or self.key, kid, 'POST', path, host, body, now))
        if headers:
            h.update(headers)
        if tamper:
            body = tamper(body)
        conn = http.client.HTTPConnection('127.0.0.1', self.nashra_port, timeout=15)
        try:
            conn.request('POST', path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, r.read().decode('utf-8', 'replace')
        finally:
            conn.close()

    def follow(self, name, target, fid=None):
        aid = self.actor_id(name)
        act = {'@context': AS_CTX, 'id': fid or aid + '#follow-1', 'type': 'Follow',
               'actor': aid, 'object': target}
        return act, self.post('/ap/inbox', act)

    def nashra_key(self, key_id):
        """nashra's public key, from its actor document (fetched once)."""
        if self.nashra_pem is None:
            u = urlsplit(key_id)
            conn = http.client.HTTPConnection('127.0.0.1', self.nashra_port, timeout=5)
            try:
                conn.request('GET', u.path, headers={'Accept': AS})
                doc = json.loads(conn.getresponse().read())
            finally:
                conn.close()
            pk = doc['publicKey']
            if pk['id'] != key_id or pk['owner'] != doc['id']:
                raise ValueError('key %s not the actor\'s' % key_id)
            self.nashra_pem = pk['publicKeyPem']
        return serialization.load_pem_public_key(self.nashra_pem.encode())

    def verify(self, req, body):
        """Checks a POST from nashra; (True, '') or (False, why)."""
        raw = req.headers.get('Signature')
        if not raw:
            return False, 'unsigned'
        params = dict(re.findall(r'(\w+)="([^"]*)"', raw))
        names = params.get('headers', '').lower().split()
        for need in ('(request-target)', 'host', 'date', 'digest'):
            if need not in names:
                return False, need + ' not signed'
        if params.get('algorithm', 'rsa-sha256') not in ('rsa-sha256', 'hs2019'):
            return False, 'algorithm'
        if not params.get('keyId', '').startswith(self.site_url + '/ap/actor#'):
            return False, 'key id ' + params.get('keyId', '')
        want = 'SHA-256=' + b64(hashlib.sha256(body).digest())
        if req.headers.get('Digest') != want:
            return False, 'digest'
        when = email.utils.parsedate_to_datetime(req.headers.get('Date')).timestamp()
        if abs(time.time() - when) > 3600:
            return False, 'date'
        if req.headers.get('Host') != '127.0.0.1:%d' % self.port:
            return False, 'host ' + str(req.headers.get('Host'))
        lines = []
        for n in names:
            if n == '(request-target)':
                lines.append('%s: post %s' % (n, req.path))
            else:
                lines.append('%s: %s' % (n, req.headers.get(n)))
        for again in (False, True):  # as Mastodon: the key fetched again once
            if again:
                self.nashra_pem = None
            try:
                self.nashra_key(params['keyId']).verify(
                    base64.b64decode(params['signature']), '\n'.join(lines).encode(),
                    padding.PKCS1v15(), hashes.SHA256())
                return True, ''
            except (InvalidSignature, ValueError) as e:
                why = 'signature: %s' % e
        return False, why

    # --- what arrived ----------------------------------------------------------------
    def got(self, type_=None, path=None):
        with self.lock:
            return [r for r in self.delivered
                    if (type_ is None or r.type == type_) and (path is None or r.path == path)]
