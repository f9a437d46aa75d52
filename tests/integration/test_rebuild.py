"""Rebuilds: unchanged outputs are not rewritten, readers never see a partial
file, and the announcement log holds exactly one event per change (none for
the back catalogue, none for a rebuild of what is already published)."""

import os
import shutil
import threading
import time
import unittest
import xml.etree.ElementTree as ET

from common import (NOW_2026, NOW_2099, SiteTestCase, atom_entries, rss_items, slug_of_url)

NEW_POST = '---\ntitle: "منشور جديد"\ndate: 2025-06-01\ncategories: ["نشاطات"]\n---\nنص جديد.\n'
NEW_POST_EDITED = ('---\ntitle: "منشور جديد (معدّل)"\ndate: 2025-06-01\ncategories: ["نشاطات"]\n'
                   '---\nنص جديد بعد التعديل.\n')
NEW_POST_DRAFT = ('---\ntitle: "منشور جديد (معدّل)"\ndate: 2025-06-01\ndraft: true\n'
                  '---\nنص جديد بعد التعديل.\n')
BAD_YAML = '---\ntitle: "unclosed quote\ndate: 2024-06-10\n---\nbody\n'


class RebuildTest(SiteTestCase):
    def setUp(self):
        self.s = self.site()
        res = self.s.build(now=NOW_2026)
        self.assertBuilt(res)
        self.assertEqual(self.s.announcements(), [], 'the first build must announce nothing')

    def build(self, now=NOW_2026):
        res = self.s.build(now=now)
        self.assertBuilt(res)
        return res

    def new_events(self, before):
        return [(kind, slug) for seq, kind, slug in self.s.announcements() if seq > before]

    def last_seq(self):
        rows = self.s.announcements()
        return rows[-1][0] if rows else 0

    def feed_titles(self):
        _, items = rss_items(self.s.out('feed.xml'))
        return {slug_of_url(i['guid']): i['title'] for i in items}

    # --- nothing changed: nothing rewritten ---------------------------------

    def test_second_build_rewrites_nothing(self):
        before = self.s.mtimes()
        time.sleep(0.05)  # a rewrite would get a later mtime
        self.build()
        self.assertEqual(self.s.mtimes(), before)
        self.assertEqual(self.s.announcements(), [])

    def test_reader_never_sees_partial_feed(self):
        """A thread parses feed.xml in a loop during 100 rebuilds, each of
        which really changes feed.xml."""
        feed = self.s.out_path('feed.xml')
        stop = threading.Event()
        stats = {'ok': 0, 'bad': []}

        def reader():
            while not stop.is_set():
                try:
                    with open(feed, 'rb') as f:
                        data = f.read()
                    ET.fromstring(data)
                    stats['ok'] += 1
                except (OSError, ET.ParseError) as e:
                    stats['bad'].append('%s: %s' % (type(e).__name__, e))

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        prev = self.s.out('feed.xml')
        changed = 0
        try:
            for i in range(100):
                self.s.write('2024/toggle.md', '---\ntitle: "toggle %s"\ndate: 2025-01-01\n---\n'
                             'body %d\n' % ('AB'[i % 2], i % 2))
                self.build()
                cur = self.s.out('feed.xml')
                changed += cur != prev
                prev = cur
        finally:
            stop.set()
            t.join(10)
        self.assertEqual(changed, 100, 'every rebuild must change feed.xml')
        self.assertEqual(stats['bad'][:5], [], 'the reader saw %d bad reads of %d' % (
            len(stats['bad']), stats['ok'] + len(stats['bad'])))
        self.assertGreater(stats['ok'], 100)

    # --- the announcement log ------------------------------------------------

    def test_new_post_published(self):
        seq = self.last_seq()
        self.s.write('2025/new.md', NEW_POST)
        self.build()
        self.assertEqual(self.new_events(seq), [('published', 'new')])
        self.assertEqual(self.feed_titles().get('new'), 'منشور جديد')
        self.assertTrue(os.path.isfile(self.s.out_path('posts/new/index.html')))

    def test_edit_updated(self):
        self.s.write('2025/new.md', NEW_POST)
        self.build()
        seq = self.last_seq()
        self.s.write('2025/new.md', NEW_POST_EDITED)
        self.build()
        self.assertEqual(self.new_events(seq), [('updated', 'new')])
        self.assertEqual(self.feed_titles().get('new'), 'منشور جديد (معدّل)')
        _, entries = atom_entries(self.s.out('atom.xml'))
        e = {slug_of_url(x['id']): x for x in entries}['new']
        self.assertNotEqual(e['updated'], e['published'], 'atom <updated> of an edited post')

    def test_made_draft_removed(self):
        self.s.write('2025/new.md', NEW_POST)
        self.build()
        seq = self.last_seq()
        self.s.write('2025/new.md', NEW_POST_DRAFT)
        self.build()
        self.assertEqual(self.new_events(seq), [('removed', 'new')])
        self.assertNotIn('new', self.feed_titles())
        self.assertFalse(os.path.exists(self.s.out_path('posts/new/index.html')))

    def test_deleted_removed(self):
        seq = self.last_seq()
        self.s.remove('2024/mixed-direction.md')
        self.build()
        self.assertEqual(self.new_events(seq), [('removed', 'mixed-direction')])
        self.assertNotIn('mixed-direction', self.feed_titles())
        self.assertFalse(os.path.exists(self.s.out_path('posts/mixed-direction/index.html')))
        self.assertFalse(os.path.exists(self.s.out_path('posts/mixed-direction')))

    def test_user_files_in_output_survive(self):
        """Pruning removes only the folders nashra wrote: an image the user
        put under posts/ (where a post's ../images/x.png points) stays."""
        user = self.s.out_path('posts/images/banner.png')
        os.makedirs(os.path.dirname(user))
        with open(user, 'wb') as f:
            f.write(b'\x89PNG')
        self.s.remove('2024/mixed-direction.md')
        self.build()
        self.assertFalse(os.path.exists(self.s.out_path('posts/mixed-direction')))
        self.assertTrue(os.path.exists(user), 'a file nashra did not write was deleted')

    def test_scheduled_post_published_when_due(self):
        seq = self.last_seq()
        self.build(now=NOW_2099)
        self.assertEqual(self.new_events(seq), [('published', 'future')])
        self.assertIn('future', self.feed_titles())

    def test_invalid_edit_keeps_last_good(self):
        page = self.s.out('posts/mixed-direction/index.html')
        title = self.feed_titles()['mixed-direction']
        seq = self.last_seq()
        self.s.write('2024/mixed-direction.md', BAD_YAML)
        res = self.build()
        self.assertIn(self.s.path('2024/mixed-direction.md'), [d['file'] for d in res.diags()],
                      'the invalid edit must be reported:\n' + res.err)
        self.assertEqual(self.new_events(seq), [])
        self.assertEqual(self.feed_titles().get('mixed-direction'), title)
        self.assertEqual(self.s.out('posts/mixed-direction/index.html'), page)
        # and it stays so on the next pass
        self.build()
        self.assertEqual(self.new_events(seq), [])
        self.assertEqual(self.feed_titles().get('mixed-direction'), title)

    def test_output_dir_recreated(self):
        before = self.s.outputs()
        seq = self.last_seq()
        shutil.rmtree(self.s.public)
        self.build()
        after = self.s.outputs()
        self.assertEqual(sorted(after), sorted(before))
        for rel in before:
            self.assertEqual(after[rel], before[rel], rel)
        self.assertEqual(self.new_events(seq), [])


if __name__ == '__main__':
    unittest.main()
