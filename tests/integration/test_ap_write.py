"""The write side of the ActivityPub actor (SPEC 7), against a real fediverse
server on 127.0.0.1 (tests/integration/fedi.py: its own keys, its own
signature checks) and a real `nashra serve`: WebFinger and the actor lead to
a signed Follow, answered by a signed Accept; a new post, an edit and a
removal reach the follower as Create, Update and Delete, each once;
forged, unsigned, stale and mismatched POSTs are 401 and change nothing;
followers behind shared inboxes get one request per inbox; a failing inbox
gets the activity when it recovers, across a restart too; a 410 inbox loses
its follower; keys are never fetched from a private address unless
activitypub.allow_insecure_loopback."""

import json
import os
import re
import time
import unittest
from urllib.parse import quote, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from common import SITE_URL, Daemon, SiteTestCase, http_get, run_nashra, wait_until
from fedi import AS, Fediverse

ACTOR = SITE_URL + '/ap/actor'
LOOPBACK = {'http': {'listen': '127.0.0.1:0'},
            'activitypub': {'allow_insecure_loopback': True}}

NEW_POST = '''---
title: "إطلاق منصة التعاون الرقمي"
summary: "ملخص قصير عن المنصة الجديدة"
date: 2026-01-01
tags: [منصة]
---

أعلنت المنظمة اليوم عن **منصة** جديدة للتعاون.
'''


class FederationCase(SiteTestCase):
    config = LOOPBACK

    def setUp(self):
        self.s = self.site(self.config)
        self.d = Daemon(self.s, env={'NASHRA_AP_BACKOFF_S': '1'})
        self.addCleanup(self.d.kill)
        self.d.start()
        self.fedi = Fediverse(SITE_URL, self.d.port).start()
        self.addCleanup(self.fedi.stop)

    def followers(self):
        r = http_get(self.d.port, '/ap/followers', headers={'Accept': AS})
        self.assertEqual(r.status, 200)
        return json.loads(r.body)['totalItems']

    def db_followers(self):
        return [r[0] for r in self.s.db('SELECT actor FROM ap_followers ORDER BY actor')]

    def follow(self, name, shared=None):
        self.fedi.add_actor(name, shared)
        act, (status, text) = self.fedi.follow(name, ACTOR)
        self.assertEqual(status, 202, text + '\n' + self.d.tail())
        return act

    def wait_got(self, type_, n=1, path=None, timeout=15):
        return wait_until(lambda: len(self.fedi.got(type_, path)) >= n and self.fedi.got(type_, path),
                          timeout, what='%d %s at %s' % (n, type_, path or 'any inbox'),
                          detail=self.d.tail)


class FollowAndPostsTest(FederationCase):
    def test_follow_create_update_delete(self):
        host = urlsplit(SITE_URL).netloc
        r = http_get(self.d.port, '/.well-known/webfinger?resource=' +
                     quote('acct:news@' + host))
        self.assertEqual(r.status, 200)
        self_link = [l for l in json.loads(r.body)['links'] if l.get('rel') == 'self'][0]
        self.assertEqual(self_link['href'], ACTOR)
        actor = json.loads(http_get(self.d.port, urlsplit(self_link['href']).path,
                                    headers={'Accept': AS}).body)
        self.assertEqual(actor['inbox'], SITE_URL + '/ap/inbox')

        follow = self.follow('alice')
        accepts = self.wait_got('Accept', path=self.fedi.inbox_path('alice'))
        a = accepts[0]
        self.assertTrue(a.verified, a.why)
        self.assertEqual(a.json['actor'], ACTOR)
        self.assertEqual(a.json['object']['id'], follow['id'])
        self.assertEqual(a.json['object']['type'], 'Follow')
        self.assertEqual(self.followers(), 1)
        # nashra fetched alice's key with a signed GET
        gets = [g for g in self.fedi.gets if g[0] == '/users/alice']
        self.assertTrue(gets and gets[0][1] and 'keyId="%s#main-key"' % ACTOR in gets[0][1], gets)

        # the back catalogue was never sent: only the Accept so far
        time.sleep(0.5)
        self.assertEqual([r.type for r in self.fedi.received], ['Accept'])

        self.s.write('ap-new-post.md', NEW_POST)
        c = self.wait_got('Create')[0]
        self.assertTrue(c.verified, c.why)
        self.assertEqual(c.path, '/users/alice/inbox')
        obj = c.json['object']
        url = SITE_URL + '/posts/ap-new-post/'
        self.assertEqual(obj['id'], url)
        self.assertEqual(obj['url'], url)
        self.assertEqual(obj['name'], 'إطلاق منصة التعاون الرقمي')
        self.assertIn('ملخص قصير', obj['summary'])
        self.assertIn('<strong>منصة</strong>', obj['contentMap']['ar'])
        self.assertEqual(obj['preview']['type'], 'Note')
        self.assertIn(url, json.dumps(obj['preview'], ensure_ascii=False))
        self.assertEqual(c.json['actor'], ACTOR)

        self.s.write('ap-new-post.md', NEW_POST.replace('جديدة', 'جديدة ومفتوحة'))
        u = self.wait_got('Update')[0]
        self.assertTrue(u.verified, u.why)
        self.assertIn('ومفتوحة', u.json['object']['contentMap']['ar'])
        self.assertIn('updated', u.json['object'])

        self.s.remove('ap-new-post.md')
        dl = self.wait_got('Delete')[0]
        self.assertTrue(dl.verified, dl.why)
        self.assertEqual(dl.json['object']['type'], 'Tombstone')
        self.assertEqual(dl.json['object']['id'], url)

        time.sleep(1.5)  # anything sent twice would be here by now
        self.assertEqual(sorted(r.type for r in self.fedi.received),
                         ['Accept', 'Create', 'Delete', 'Update'])

    def test_rfc9421_follow(self):
        self.fedi.add_actor('nine')
        aid = self.fedi.actor_id('nine')
        follow = {'id': aid + '#f', 'type': 'Follow', 'actor': aid, 'object': ACTOR}
        bad = self.fedi.post('/ap/inbox', follow, rfc9421=True,
                             tamper=lambda b: b.replace(b'Follow', b'Fellow'))
        self.assertEqual(bad[0], 401, bad)
        status, text = self.fedi.post('/ap/inbox', follow, rfc9421=True)
        self.assertEqual(status, 202, text + self.d.tail())
        a = self.wait_got('Accept')[0]
        self.assertTrue(a.verified, a.why)
        self.assertEqual(self.db_followers(), [aid])

    def test_undo_and_delete_remove_followers(self):
        follow = self.follow('bob')
        self.follow('carol')
        self.assertEqual(self.followers(), 2)
        undo = {'@context': 'https://www.w3.org/ns/activitystreams', 'type': 'Undo',
                'id': self.fedi.actor_id('bob') + '#undo', 'actor': self.fedi.actor_id('bob'),
                'object': follow}
        self.assertEqual(self.fedi.post('/ap/inbox', undo)[0], 202)
        self.assertEqual(self.db_followers(), [self.fedi.actor_id('carol')])
        dele = {'type': 'Delete', 'id': self.fedi.actor_id('carol') + '#delete',
                'actor': self.fedi.actor_id('carol'), 'object': self.fedi.actor_id('carol')}
        self.assertEqual(self.fedi.post('/ap/inbox', dele)[0], 202)
        self.assertEqual(self.followers(), 0)
        # other activities: 202 and ignored
        like = {'type': 'Like', 'id': self.fedi.actor_id('carol') + '#like',
                'actor': self.fedi.actor_id('carol'), 'object': SITE_URL + '/posts/x/'}
        self.assertEqual(self.fedi.post('/ap/inbox', like)[0], 202)


class ForgedTest(FederationCase):
    def test_forged_requests_are_401(self):
        self.fedi.add_actor('mallory')
        self.fedi.add_actor('victim')
        mid = self.fedi.actor_id('mallory')
        follow = {'id': mid + '#f', 'type': 'Follow', 'actor': mid, 'object': ACTOR}
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cases = {
            'unsigned': dict(key_id=False),
            'wrong key': dict(key=other),
            'digest mismatch': dict(tamper=lambda b: b.replace(b'Follow', b'Fellow')),
            'stale date': dict(now=time.time() - 7200),
            'future date': dict(now=time.time() + 7200),
        }
        for what, kw in cases.items():
            fetches = len(self.fedi.gets)
            status, text = self.fedi.post('/ap/inbox', follow, **kw)
            self.assertEqual(status, 401, '%s: %s %s' % (what, text, self.d.tail()))
            if what in ('digest mismatch', 'stale date', 'future date', 'unsigned'):
                # refused before any key is fetched
                self.assertEqual(len(self.fedi.gets), fetches, what)
        # signed by mallory's key, claiming to be the victim
        vid = self.fedi.actor_id('victim')
        spoof = {'id': vid + '#f', 'type': 'Follow', 'actor': vid, 'object': ACTOR}
        status, _ = self.fedi.post('/ap/inbox', spoof, key_id=mid + '#main-key')
        self.assertEqual(status, 401)
        # an Undo of the victim's follow by mallory: 401 as well
        self.follow('victim')
        undo = {'type': 'Undo', 'id': vid + '#u', 'actor': vid,
                'object': {'type': 'Follow', 'actor': vid, 'object': ACTOR}}
        self.assertEqual(self.fedi.post('/ap/inbox', undo, key_id=mid + '#main-key')[0], 401)
        self.assertEqual(self.db_followers(), [vid])
        self.assertEqual(self.followers(), 1)
        time.sleep(0.5)
        self.assertEqual([r.type for r in self.fedi.received], ['Accept'])


    def test_a_flood_of_forgeries_does_not_flood_the_log(self):
        """401 to each, but at most 10 refusal lines a second, then a count."""
        self.fedi.add_actor('mallory')
        mid = self.fedi.actor_id('mallory')
        follow = {'id': mid + '#f', 'type': 'Follow', 'actor': mid, 'object': ACTOR}
        mark = len(self.d.log())
        t0 = time.monotonic()
        for _ in range(150):
            status, _ = self.fedi.post('/ap/inbox', follow, key_id=False)
            self.assertEqual(status, 401)
        seconds = time.monotonic() - t0
        time.sleep(1.2)  # the count is logged with the next refusal of a later second
        self.fedi.post('/ap/inbox', follow, key_id=False)
        log = self.d.log()[mark:]
        lines = re.findall(r'event=inbox result=refused client=', log)
        counted = sum(int(n) for n in re.findall(r'event=inbox result=refused not_logged=(\d+)',
                                                 log))
        self.assertLessEqual(len(lines), 10 * (int(seconds) + 3), log[-2000:])
        self.assertEqual(len(lines) + counted, 151, log[-2000:])


class SlowRemoteTest(FederationCase):
    def test_fetch_does_not_hold_the_loop(self):
        """A key fetch from a server that does not answer leaves the daemon
        serving; the Follow is answered when the key comes; a stop while a
        fetch waits answers that request 503 and exits cleanly."""
        import threading
        self.fedi.add_actor('slow')
        gate = self.fedi.hold['/users/slow'] = threading.Event()
        self.addCleanup(gate.set)
        result = {}
        t = threading.Thread(target=lambda: result.update(r=self.fedi.follow('slow', ACTOR)[1]))
        t.start()
        wait_until(lambda: any(g[0] == '/users/slow' for g in self.fedi.gets), 10,
                   what='the key fetch', detail=self.d.tail)
        self.assertEqual(http_get(self.d.port, '/healthz', timeout=5).status, 200)
        self.assertEqual(http_get(self.d.port, '/ap/actor', headers={'Accept': AS},
                                  timeout=5).status, 200)
        self.assertTrue(t.is_alive())  # still waiting for its key
        gate.set()
        t.join(20)
        self.assertEqual(result['r'][0], 202, result)
        self.assertEqual(self.followers(), 1)

        self.fedi.add_actor('slower')
        gate2 = self.fedi.hold['/users/slower'] = threading.Event()
        self.addCleanup(gate2.set)
        def follow_slower():
            try:
                result['r2'] = self.fedi.follow('slower', ACTOR)[1]
            except OSError as e:  # the connection closed: fine too
                result['r2'] = (None, str(e))
        t = threading.Thread(target=follow_slower)
        t.start()
        wait_until(lambda: any(g[0] == '/users/slower' for g in self.fedi.gets), 10,
                   what='the second key fetch', detail=self.d.tail)
        # the fetch never answers: the stop gives it up
        rc, _ = self.d.stop(timeout=10)
        t.join(20)
        self.assertEqual(rc, 0, self.d.tail())
        self.assertIn(result['r2'][0], (503, None), result)
        self.assertEqual(len(self.db_followers()), 1)


class SharedInboxTest(FederationCase):
    def test_fifty_followers_five_inboxes(self):
        for i in range(50):
            self.follow('u%d' % i, shared='shared/%d' % (i % 5))
        self.assertEqual(self.followers(), 50)
        self.wait_got('Accept', 50)
        self.s.write('ap-new-post.md', NEW_POST)
        creates = self.wait_got('Create', 5)
        time.sleep(1.5)
        creates = self.fedi.got('Create')
        self.assertEqual(sorted(c.path for c in creates), ['/shared/%d' % i for i in range(5)])
        self.assertTrue(all(c.verified for c in creates), [c.why for c in creates])


class RetryTest(FederationCase):
    def test_recovery_and_restart(self):
        inbox = self.fedi.inbox_path('alice')
        self.follow('alice')
        self.wait_got('Accept')
        self.fedi.status[inbox] = 500
        self.s.write('ap-one.md', NEW_POST)
        wait_until(lambda: len([r for r in self.fedi.received if r.type == 'Create']) >= 2,
                   15, what='two failed tries', detail=self.d.tail)
        self.assertEqual(self.fedi.got('Create'), [])
        del self.fedi.status[inbox]
        self.wait_got('Create')

        # down while nashra restarts: delivered by the next run
        self.fedi.status[inbox] = 503
        self.s.write('ap-two.md', NEW_POST.replace('إطلاق', 'افتتاح'))
        wait_until(lambda: [r for r in self.fedi.received
                            if r.type == 'Create' and 'افتتاح' in r.json['object']['name']],
                   15, what='a failed try of the second post', detail=self.d.tail)
        self.d.stop()
        del self.fedi.status[inbox]
        self.d.start()
        self.fedi.nashra_port = self.d.port
        self.wait_got('Create', 2)
        time.sleep(1.5)
        names = sorted(c.json['object']['name'] for c in self.fedi.got('Create'))
        self.assertEqual(names, ['إطلاق منصة التعاون الرقمي', 'افتتاح منصة التعاون الرقمي'])

    def test_build_deliver(self):
        """`nashra build --deliver` sends what the daemon would have."""
        self.follow('alice')
        self.wait_got('Accept')
        self.d.stop()
        self.s.write('ap-one.md', NEW_POST)
        r = run_nashra(['build', '--deliver', '-c', self.s.config_path], now=None)
        self.assertEqual(r.rc, 0, r.describe())
        self.assertIn('activitypub=1 sent=1', r.err)
        c = self.fedi.got('Create')
        self.assertEqual(len(c), 1)
        self.assertTrue(c[0].verified, c[0].why)

    def test_gone_inbox_loses_follower(self):
        self.follow('gone')
        self.follow('stays')
        self.wait_got('Accept', 2)
        self.fedi.status[self.fedi.inbox_path('gone')] = 410
        self.s.write('ap-one.md', NEW_POST)
        self.wait_got('Create', path=self.fedi.inbox_path('stays'))
        wait_until(lambda: self.db_followers() == [self.fedi.actor_id('stays')], 10,
                   what='the gone follower removed', detail=self.d.tail)
        m = http_get(self.d.port, '/metrics').text()
        self.assertIn('nashra_ap_followers 1', m)
        self.assertIn('nashra_ap_deliveries_failed_total 1', m)


class KeysTest(FederationCase):
    def actor_pem(self):
        r = http_get(self.d.port, '/ap/actor', headers={'Accept': AS})
        return json.loads(r.body)['publicKey']['publicKeyPem']

    def fingerprint(self, pem):
        import hashlib
        from cryptography.hazmat.primitives import serialization
        der = serialization.load_pem_public_key(pem.encode()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return 'SHA256:' + hashlib.sha256(der).hexdigest()

    def keys(self, *args):
        r = run_nashra(['keys', '-c', self.s.config_path] + list(args), now=None)
        self.assertEqual(r.rc, 0, r.describe())
        return r.out.decode() if isinstance(r.out, bytes) else r.out

    def test_show_and_rotate(self):
        old = self.actor_pem()
        out = self.keys()
        self.assertIn('key id: %s#main-key' % ACTOR, out)
        self.assertIn('fingerprint: ' + self.fingerprint(old), out)
        self.follow('alice', shared='shared/a')
        self.follow('bob')
        self.wait_got('Accept', 2)
        with open(self.s.state + '/actor.pem', 'rb') as f:
            old_file = f.read()
        out = self.keys('--rotate')
        self.assertIn('queued to 2 inboxes', out)
        with open(self.s.state + '/actor.pem.old', 'rb') as f:
            self.assertEqual(f.read(), old_file)
        new = wait_until(lambda: self.actor_pem() != old and self.actor_pem(), 10,
                         what='the daemon serving the new key', detail=self.d.tail)
        self.assertIn('fingerprint: ' + self.fingerprint(new), self.keys())
        ups = self.wait_got('Update', 2)
        self.assertEqual(sorted(u.path for u in ups), ['/shared/a', '/users/bob/inbox'])
        for u in ups:
            self.assertTrue(u.verified, u.why)
            self.assertEqual(u.json['object']['id'], ACTOR)
            self.assertEqual(u.json['object']['publicKey']['publicKeyPem'], new)
        # deliveries after the rotation are signed with the new key
        self.fedi.nashra_pem = new
        self.s.write('ap-new-post.md', NEW_POST)
        c = self.wait_got('Create', 2)
        self.assertTrue(all(x.verified for x in c), [x.why for x in c])
        st = run_nashra(['status', '-c', self.s.config_path], now=None)
        self.assertIn(b'followers: 2', st.out if isinstance(st.out, bytes) else st.out.encode())


class PrivateAddressTest(FederationCase):
    config = {'http': {'listen': '127.0.0.1:0'}}

    def test_key_from_loopback_refused(self):
        self.fedi.add_actor('alice')
        act, (status, _) = self.fedi.follow('alice', ACTOR)
        self.assertEqual(status, 401)
        self.assertEqual(self.fedi.gets, [])
        self.assertIn('refused', self.d.log())
        self.assertEqual(self.followers(), 0)


# --- valgrind (NASHRA_VALGRIND=1, tests/integration/valgrind_serve.sh) ----------------

if os.environ.get('NASHRA_VALGRIND') == '1':
    class ValgrindApTest(FederationCase):
        """The inbox (a signed Follow, a forged one) and deliveries (Accept,
        Create, Update, Delete, a retry) under memcheck, then SIGTERM."""

        def setUp(self):
            self.s = self.site(self.config)
            self.vlog = os.path.join(self.s.root, 'valgrind.log')
            self.d = Daemon(self.s, env={'NASHRA_AP_BACKOFF_S': '1'}, wrapper=[
                'valgrind', '--leak-check=full', '--error-exitcode=3',
                '--errors-for-leak-kinds=definite,indirect', '--log-file=' + self.vlog])
            self.addCleanup(self.d.kill)
            self.d.start(timeout=120)
            self.fedi = Fediverse(SITE_URL, self.d.port).start()
            self.addCleanup(self.fedi.stop)

        def test_federation_under_valgrind(self):
            self.fedi.add_actor('alice', 'shared/x')
            _, (status, text) = self.fedi.follow('alice', ACTOR)
            self.assertEqual(status, 202, text)
            mid = self.fedi.actor_id('alice')
            forged = {'id': mid + '#f2', 'type': 'Follow', 'actor': mid, 'object': ACTOR}
            self.assertEqual(self.fedi.post('/ap/inbox', forged, key_id=False)[0], 401)
            self.wait_got('Accept', timeout=60)
            self.fedi.status['/shared/x'] = 503
            self.s.write('ap-new-post.md', NEW_POST)
            wait_until(lambda: len(self.fedi.received) >= 2, 60, what='a failed Create')
            del self.fedi.status['/shared/x']
            self.wait_got('Create', timeout=60)
            self.s.write('ap-new-post.md', NEW_POST.replace('جديدة', 'جديدة ومفتوحة'))
            self.wait_got('Update', timeout=60)
            self.s.remove('ap-new-post.md')
            self.wait_got('Delete', timeout=60)
            self.assertEqual(http_get(self.d.port, '/metrics', timeout=30).status, 200)
            rc, _ = self.d.stop(timeout=60)
            with open(self.vlog, encoding='utf-8', errors='replace') as f:
                vl = f.read()
            self.assertEqual(rc, 0, vl[-3000:])
            self.assertNotRegex(vl, r'definitely lost: [1-9]', vl[-6000:])
            self.assertNotRegex(vl, r'indirectly lost: [1-9]', vl[-6000:])


if __name__ == '__main__':
    unittest.main()
