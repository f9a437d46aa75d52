"""The read side of the ActivityPub actor (SPEC 6, 7), through a real HTTP
client against `nashra serve`: WebFinger finds the account and nothing
else, NodeInfo, the actor with a public key that python3-cryptography
loads, the outbox newest first in pages, and a post URL that answers
ActivityStreams to a fediverse server and HTML to a browser. The actor's
key is made on first start, mode 0600, and kept across restarts."""

import json
import os
import stat
import unittest
from urllib.parse import quote, urlsplit

from common import SITE_URL, Daemon, SiteTestCase, http_get

LISTEN = {'http': {'listen': '127.0.0.1:0'}}
AS = 'application/activity+json'
MASTODON_ACCEPT = 'application/activity+json, application/ld+json'
BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'


class ActorReadTest(SiteTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()

    def setUp(self):
        self.s = self.site(LISTEN)
        self.d = Daemon(self.s)
        self.addCleanup(self.d.kill)
        self.d.start()
        self.host = urlsplit(SITE_URL).netloc

    def get_json(self, path, accept=AS, status=200, ctype=None):
        r = http_get(self.d.port, path, headers={'Accept': accept})
        self.assertEqual(r.status, status, '%s: %s' % (path, r.text()[:300]))
        if ctype:
            self.assertEqual(r.header('content-type'), ctype, path)
        return json.loads(r.body) if status == 200 else None

    def test_webfinger(self):
        jrd = self.get_json('/.well-known/webfinger?resource=' +
                            quote('acct:news@' + self.host), ctype='application/jrd+json')
        self.assertEqual(jrd['subject'], 'acct:news@' + self.host)
        selfs = [l for l in jrd['links'] if l.get('rel') == 'self']
        self.assertEqual(selfs[0]['type'], AS)
        self.assertEqual(selfs[0]['href'], SITE_URL + '/ap/actor')
        for res in ('acct:other@' + self.host, 'acct:news@elsewhere.example', 'garbage'):
            self.get_json('/.well-known/webfinger?resource=' + quote(res), status=404)
        self.get_json('/.well-known/webfinger', status=400)

    def test_nodeinfo(self):
        links = self.get_json('/.well-known/nodeinfo')
        href = links['links'][0]['href']
        self.assertTrue(href.endswith('/nodeinfo/2.1'), href)
        info = self.get_json('/nodeinfo/2.1')
        self.assertEqual(info['software']['name'], 'nashra')
        self.assertIn('activitypub', info['protocols'])
        self.assertEqual(info['usage']['localPosts'], 5)

    def test_actor_and_key(self):
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
        actor = self.get_json('/ap/actor', ctype=AS)
        self.assertEqual(actor['id'], SITE_URL + '/ap/actor')
        self.assertEqual(actor['preferredUsername'], 'news')
        self.assertIn(actor['type'], ('Service', 'Person'))
        for k in ('inbox', 'outbox', 'followers'):
            self.assertTrue(actor[k].startswith(SITE_URL + '/ap/'), k)
        self.assertEqual(actor['endpoints']['sharedInbox'], SITE_URL + '/ap/inbox')
        pk = actor['publicKey']
        self.assertEqual(pk['owner'], actor['id'])
        self.assertEqual(pk['id'], actor['id'] + '#main-key')
        key = load_pem_public_key(pk['publicKeyPem'].encode())
        self.assertGreaterEqual(key.key_size, 2048)
        keyfile = os.path.join(self.s.state, 'actor.pem')
        self.assertEqual(stat.S_IMODE(os.stat(keyfile).st_mode), 0o600)
        # the same key after a restart
        self.d.stop()
        self.d.start()
        again = self.get_json('/ap/actor')
        self.assertEqual(again['publicKey']['publicKeyPem'], pk['publicKeyPem'])

    def test_outbox_newest_first(self):
        box = self.get_json('/ap/outbox')
        self.assertEqual(box['type'], 'OrderedCollection')
        self.assertEqual(box['totalItems'], 5)
        page = self.get_json(urlsplit(box['first']).path + '?' + urlsplit(box['first']).query)
        self.assertEqual(page['type'], 'OrderedCollectionPage')
        items = page['orderedItems']
        self.assertEqual(len(items), 5)
        self.assertTrue(all(i['type'] == 'Create' for i in items))
        dates = [i['object']['published'] for i in items]
        self.assertEqual(dates, sorted(dates, reverse=True))
        self.get_json('/ap/outbox?page=2', status=404)
        self.get_json('/ap/outbox?page=x', status=404)

    def test_post_negotiation(self):
        path = '/posts/dco-diplomatic-forum/'
        obj = self.get_json(path, accept=MASTODON_ACCEPT)
        self.assertEqual(obj['id'], SITE_URL + path)
        self.assertIn(obj['type'], ('Article', 'Note'))
        self.assertIn('ar', obj['contentMap'])
        self.assertEqual(obj['attributedTo'], SITE_URL + '/ap/actor')
        html = http_get(self.d.port, path, headers={'Accept': BROWSER_ACCEPT})
        self.assertEqual(html.status, 200)
        self.assertTrue(html.header('content-type').startswith('text/html'))
        self.assertIn(b'dir="rtl"', html.body)
        self.get_json('/posts/no-such-post/', accept=MASTODON_ACCEPT, status=404)


if __name__ == '__main__':
    unittest.main()
