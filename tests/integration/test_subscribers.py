"""`nashra subscribers` (SPEC §2, §8): add, remove, list, import and export
on the real binary and its SQLite state. CSV import as RFC 4180 has it
(quoted commas, "" escapes, line breaks inside quotes, CRLF), Arabic names,
extra columns kept for the templates, bad rows reported as FILE:LINE:1 and
skipped, duplicates counted and not doubled; export round trip; a --list
that the configuration does not have is a usage error (exit 2)."""

import csv
import io
import json
import os
import stat
import unittest

from common import SiteTestCase, run_nashra

LISTS = [
    {'id': 'activities', 'name': 'نشاطات', 'categories': ['نشاطات']},
    {'id': 'weekly', 'name': 'الملخص الأسبوعي', 'mode': 'digest', 'schedule': 'weekly mon 08:00'},
]


class SubscribersTest(SiteTestCase):
    def setUp(self):
        self.s = self.site({'lists': LISTS}, posts=False)

    def sub(self, *args, **kw):
        return run_nashra(['subscribers'] + list(args[:1]) + ['-c', self.s.config_path] +
                          list(args[1:]), **kw)

    def rows(self, lst='activities'):
        """{email: (name, state, extra dict)} of a list, from the state."""
        return {r[0]: (r[1], r[2], json.loads(r[3])) for r in self.s.db(
            'SELECT email, name, state, extra FROM subscribers WHERE list = ? ORDER BY id',
            (lst,))}

    def write_csv(self, name, data):
        path = os.path.join(self.s.root, name)
        with open(path, 'wb') as f:
            f.write(data.encode('utf-8') if isinstance(data, str) else data)
        return path

    def assertRc(self, res, rc):
        self.assertEqual(res.rc, rc, res.describe())

    # --- the list argument ----------------------------------------------------

    def test_unknown_list_is_a_usage_error(self):
        for action, extra in (('add', ['a@example.org']), ('remove', ['a@example.org']),
                              ('list', []), ('export', []),
                              ('import', [self.write_csv('x.csv', 'email\na@example.org\n')])):
            res = self.sub(action, '--list', 'nope', *extra)
            self.assertRc(res, 2)
            self.assertIn("'nope'", res.err)
            self.assertIn('activities', res.err, 'the known ids are named')
            self.assertIn('weekly', res.err)
        self.assertFalse(os.path.exists(self.s.db_path), 'nothing opened, nothing written')

    def test_usage_errors(self):
        for args in (['add', 'a@example.org'],                       # no --list
                     ['add', '--list', 'activities'],                # no address
                     ['frobnicate', '--list', 'activities'],
                     ['list', '--list', 'activities', '--state', 'gone'],
                     ['list', '--list', 'activities', 'extra'],
                     ['remove', '--list', 'activities', '--pending', 'a@example.org'],
                     ['add', '--list', 'activities', 'not-an-address']):
            res = self.sub(*args)
            self.assertRc(res, 2)
            self.assertTrue(res.err.strip(), args)
        res = run_nashra(['subscribers'])
        self.assertRc(res, 2)

    def test_help(self):
        for args in (['subscribers', '--help'], ['subscribers', 'import', '--help']):
            res = run_nashra(args)
            self.assertRc(res, 0)
            self.assertIn('usage: nashra subscribers', res.out)
            self.assertIn('--list', res.out)
        self.assertIn('subscribers', run_nashra(['--help']).out)

    # --- add, list, remove ----------------------------------------------------

    def test_add_list_remove(self):
        self.assertRc(self.sub('add', '--list', 'activities', 'Sara@Example.ORG', 'سارة العتيبي'), 0)
        self.assertRc(self.sub('add', '--list', 'activities', '--pending', 'omar@example.org'), 0)
        # already there, in any case of letters: nothing doubled, state kept
        res = self.sub('add', '--list', 'activities', 'sara@example.org', 'Other')
        self.assertRc(res, 0)
        self.assertIn('already', res.out)
        # the same address on another list is another subscription
        self.assertRc(self.sub('add', '--list', 'weekly', 'sara@example.org'), 0)

        self.assertEqual(self.rows(), {
            'Sara@example.org': ('سارة العتيبي', 'active', {}),   # the domain is lower-cased
            'omar@example.org': ('', 'pending', {}),
        })
        self.assertEqual(set(self.rows('weekly')), {'sara@example.org'})

        res = self.sub('list', '--list', 'activities')
        self.assertRc(res, 0)
        self.assertEqual(res.out.splitlines(), ['Sara@example.org\tactive\tسارة العتيبي',
                                                'omar@example.org\tpending\t'])
        res = self.sub('list', '--list', 'activities', '--state', 'pending')
        self.assertEqual(res.out.splitlines(), ['omar@example.org\tpending\t'])

        self.assertRc(self.sub('remove', '--list', 'activities', 'SARA@example.org'), 0)
        res = self.sub('remove', '--list', 'activities', 'sara@example.org')
        self.assertRc(res, 1)
        self.assertIn('not on list', res.err)
        self.assertEqual(set(self.rows()), {'omar@example.org'})
        self.assertEqual(set(self.rows('weekly')), {'sara@example.org'})

    def test_names_cannot_carry_controls(self):
        self.assertRc(self.sub('add', '--list', 'activities', 'x@example.org',
                               'Evil\r\nBcc: all@example.org'), 0)
        name = self.rows()['x@example.org'][0]
        self.assertNotIn('\n', name)
        self.assertNotIn('\r', name)

    # --- import ---------------------------------------------------------------

    def test_import(self):
        self.assertRc(self.sub('add', '--list', 'activities', 'old@example.org', 'قديم'), 0)
        data = ('Email,Name,City,Member Since\r\n'                              # 1
                'ahmed@example.org,"أحمد بن علي, الابن",الرياض,2019\r\n'       # 2
                'not-an-address,فاطمة,جدة,2020\r\n'                            # 3 bad address
                'AHMED@example.org,مكرر,الدمام,2021\r\n'                       # 4 duplicate
                '"layla@example.org","ليلى ""الشاعرة""","مكة\r\nالمكرمة",2022\r\n'  # 5-6
                'old@example.org,قديم,أبها,2018\r\n'                           # 7 already there
                'short@example.org,قصير\r\n'                                   # 8 two fields
                '\r\n'                                                         # 9 blank
                'khalid@example.org,خالد,تبوك,2023\r\n')                       # 10
        path = self.write_csv('subs.csv', data)
        res = self.sub('import', '--list', 'activities', path)
        self.assertRc(res, 1)
        diags = {(d['file'], d['line'], d['col']) for d in res.diags()}
        self.assertEqual(diags, {(path, 3, 1), (path, 8, 1)}, res.err)
        self.assertRegex(res.err, r'(?m)^%s:3:1: error: .*not-an-address' % path)
        self.assertIn('added 3, already subscribed 2, rejected 2', res.out)

        rows = self.rows()
        self.assertEqual(rows['ahmed@example.org'],
                         ('أحمد بن علي, الابن', 'active',
                          {'City': 'الرياض', 'Member Since': '2019'}))
        self.assertEqual(rows['layla@example.org'][0], 'ليلى "الشاعرة"')
        self.assertEqual(rows['layla@example.org'][2]['City'], 'مكة\nالمكرمة')
        self.assertEqual(rows['khalid@example.org'][1], 'active')
        self.assertEqual(rows['old@example.org'], ('قديم', 'active', {}), 'left as it was')
        self.assertNotIn('short@example.org', rows)
        self.assertEqual(len(rows), 4)

        # the same file again: everything is already there
        res = self.sub('import', '--list', 'activities', path)
        self.assertIn('added 0, already subscribed 5, rejected 2', res.out)
        self.assertEqual(len(self.rows()), 4)

    def test_import_pending_and_state_column(self):
        path = self.write_csv('p.csv', 'email,state\na@example.org,\nb@example.org,unsubscribed\n'
                                       'c@example.org,bounced\nd@example.org,gone\n')
        res = self.sub('import', '--list', 'activities', '--pending', path)
        self.assertRc(res, 1)
        self.assertEqual([(d['line'], d['col']) for d in res.diags()], [(5, 1)])
        self.assertEqual({k: v[1] for k, v in self.rows().items()},
                         {'a@example.org': 'pending', 'b@example.org': 'unsubscribed',
                          'c@example.org': 'bounced'})

    def test_import_lf_bom_and_unterminated_quote(self):
        path = self.write_csv('lf.csv', b'\xef\xbb\xbf"EMAIL","name"\n'
                                        b'one@example.org,\xd9\x88\xd8\xa7\xd8\xad\xd8\xaf\n'
                                        b'two@example.org,"never closed\n'
                                        b'three@example.org,x\n')
        res = self.sub('import', '--list', 'activities', path)
        self.assertRc(res, 1)
        self.assertEqual([(d['line'], d['col']) for d in res.diags()], [(3, 1)])
        self.assertIn('quote', res.diags()[0]['msg'])
        self.assertEqual(self.rows(), {'one@example.org': ('واحد', 'active', {})})

    def test_import_bad_files(self):
        res = self.sub('import', '--list', 'activities', self.write_csv('h.csv', 'name,city\nx,y\n'))
        self.assertRc(res, 1)
        self.assertEqual([(d['line'], d['col']) for d in res.diags()], [(1, 1)])
        self.assertIn('email', res.diags()[0]['msg'])
        res = self.sub('import', '--list', 'activities', self.write_csv('e.csv', ''))
        self.assertRc(res, 1)
        self.assertTrue(res.diags(), res.err)
        res = self.sub('import', '--list', 'activities', os.path.join(self.s.root, 'missing.csv'))
        self.assertRc(res, 1)
        self.assertIn('missing.csv', res.err)
        # not UTF-8 (Latin-1 é), and a row far over the cap: rejected, others kept
        path = self.write_csv('u.csv', b'email,name\nlatin@example.org,caf\xe9\n'
                                       b'long@example.org,' + b'x' * 70000 + b'\n'
                                       b'ok@example.org,ok\n')
        res = self.sub('import', '--list', 'activities', path)
        self.assertRc(res, 1)
        self.assertEqual([d['line'] for d in res.diags()], [2, 3])
        self.assertEqual(set(self.rows()), {'ok@example.org'})
        self.assertEqual(self.s.db('SELECT COUNT(*) FROM subscribers')[0][0], 1)

    def test_import_stdin_and_quiet(self):
        import subprocess
        from common import require_binary
        p = subprocess.run([require_binary(), 'subscribers', 'import', '-q', '-c',
                            self.s.config_path, '--list', 'weekly', '-'],
                           input='email\nx@example.org\n'.encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b'')
        self.assertEqual(set(self.rows('weekly')), {'x@example.org'})

    # --- export ---------------------------------------------------------------

    def test_export_round_trip(self):
        data = ('email,name,city,note\n'
                'a@example.org,"نورة, المهندسة",الرياض,"قالت ""مرحبا"""\n'
                'b@example.org,Bob,,"two\nlines"\n'
                'c@example.org,,جدة,\n')
        self.assertRc(self.sub('import', '--list', 'activities',
                               self.write_csv('in.csv', data)), 0)
        self.assertRc(self.sub('add', '--list', 'activities', '--pending', 'd@example.org',
                               'دينا'), 0)

        out = os.path.join(self.s.root, 'out.csv')
        self.assertRc(self.sub('export', '--list', 'activities', out), 0)
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600, 'personal data: 0600')
        with open(out, 'rb') as f:
            raw = f.read()
        res = self.sub('export', '--list', 'activities')
        self.assertRc(res, 0)
        self.assertEqual(res.out_bytes, raw, 'stdout and the file are the same CSV')

        table = list(csv.reader(io.StringIO(raw.decode('utf-8'), newline='')))
        self.assertEqual(table[0], ['email', 'name', 'state', 'city', 'note'])
        self.assertEqual(table[1:], [
            ['a@example.org', 'نورة, المهندسة', 'active', 'الرياض', 'قالت "مرحبا"'],
            ['b@example.org', 'Bob', 'active', '', 'two\nlines'],
            ['c@example.org', '', 'active', 'جدة', ''],
            ['d@example.org', 'دينا', 'pending', '', ''],
        ])

        # into another list and out again: the same rows, the same bytes
        self.assertRc(self.sub('import', '--list', 'weekly', out), 0)
        def filled(rows):  # CSV cannot tell an empty column from a missing one
            return {k: (n, st, {c: v for c, v in x.items() if v}) for k, (n, st, x) in rows.items()}
        self.assertEqual(filled(self.rows('weekly')), filled(self.rows('activities')))
        res = self.sub('export', '--list', 'weekly')
        self.assertRc(res, 0)
        self.assertEqual(res.out_bytes, raw)

    def test_export_empty_list(self):
        res = self.sub('export', '--list', 'weekly')
        self.assertRc(res, 0)
        self.assertEqual(res.out, 'email,name,state\r\n')


if __name__ == '__main__':
    unittest.main()
