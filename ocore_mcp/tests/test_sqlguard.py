"""Unit tests of lib/sqlguard.py (no database): the hostile and legitimate corpora and the API."""

import os

from pglast import parse_sql

from odoo.tests import BaseCase, tagged

from ..lib import sqlguard
from ..lib.sqlguard import SqlRefused, add_limit, analyze, is_dml, split

DATA = os.path.join(os.path.dirname(__file__), "data")
SEPARATOR = "-- ----"


def load_corpus(name):
    """Records of a corpus file: separated by a line holding exactly ``-- ----``; the first
    record is the file's header comment."""
    with open(os.path.join(DATA, name), encoding="utf-8") as fh:
        records, current = [], []
        for line in fh:
            if line.rstrip("\n") == SEPARATOR:
                records.append("".join(current))
                current = []
            else:
                current.append(line)
        records.append("".join(current))
    return [r.strip() for r in records[1:] if r.strip()]


HOSTILE = load_corpus("sql_hostile.txt")
LEGIT = load_corpus("sql_legit.txt")


@tagged("post_install", "-at_install", "ocore_sql")
class TestSqlGuardCorpus(BaseCase):
    def test_corpus_sizes(self):
        self.assertGreaterEqual(len(HOSTILE), 150)
        self.assertGreaterEqual(len(LEGIT), 100)
        self.assertEqual(len(set(HOSTILE)), len(HOSTILE), "duplicate hostile records")

    def test_every_hostile_statement_is_refused(self):
        """In script mode (transaction control allowed, any number of statements): each record is refused
        for what it does, never merely because the parser choked on it."""
        passed, parse_errors = [], []
        for sql in HOSTILE:
            try:
                analyze(sql, allow_transaction=True)
            except SqlRefused as exc:
                if exc.reason == "parse_error":
                    parse_errors.append((sql, str(exc)))
                continue
            passed.append(sql)
        self.assertEqual(passed, [], "hostile statements accepted by the guard")
        self.assertEqual(parse_errors, [], "hostile records that do not even parse (fix the corpus)")

    def test_hostile_statements_refused_in_single_statement_mode(self):
        for sql in HOSTILE:
            with self.subTest(sql=sql[:80]), self.assertRaises(SqlRefused):
                analyze(sql, max_statements=1)

    def test_every_legit_statement_passes(self):
        refused = []
        for sql in LEGIT:
            try:
                statements = analyze(sql, max_statements=1)
            except SqlRefused as exc:
                refused.append((sql, str(exc)))
                continue
            stmt = statements[0]
            self.assertIn(stmt.kind, ("select", "dml"), sql)
            # what runs is the checked tree, re-serialised: it parses back to the same tree
            self.assertEqual(parse_sql(stmt.sql)[0].stmt, stmt.node, sql)
        self.assertEqual(refused, [], "legitimate statements refused by the guard")

    def test_refusal_reasons(self):
        cases = {
            "SELECT * FROM pg_read_file('/etc/passwd')": ("function", "pg_read_file"),
            'SELECT U&"\\0070g_read_file"(\'x\')': ("function", "pg_read_file"),
            "SELECT pg_catalog.\"pg_ls_dir\"('.')": ("function", "pg_catalog.pg_ls_dir"),
            "WITH a AS (SELECT lo_import('/etc/passwd')) SELECT * FROM a": ("function", "lo_import"),
            "SELECT set_config('role', 'postgres', true)": ("function", "configuration change"),
            "DROP TABLE res_partner": ("ddl", "DDL is blocked: DROP"),
            "CREATE TABLE x (a int)": ("ddl", "CREATE TABLE"),
            "TRUNCATE res_partner": ("ddl", "TRUNCATE"),
            "SELECT * INTO x FROM res_partner": ("ddl", "SELECT INTO"),
            "COPY res_users TO PROGRAM 'id'": ("utility", "COPY is blocked"),
            "SET ROLE postgres": ("utility", "SET is blocked"),
            "DO $$ BEGIN END $$": ("utility", "DO is blocked"),
            "BEGIN": ("transaction", "execute_sql_script"),
            "SELECT 1; SELECT 2": ("multiple", "2 statements"),
            "SELEC 1": ("parse_error", "syntax error"),
            "  -- only a comment": ("empty", "no SQL statement"),
        }
        for sql, (reason, text) in cases.items():
            with self.subTest(sql=sql):
                with self.assertRaises(SqlRefused) as caught:
                    analyze(sql, max_statements=1)
                self.assertEqual(caught.exception.reason, reason)
                self.assertIn(text, str(caught.exception))

    def test_refusal_names_the_statement_of_a_script(self):
        with self.assertRaises(SqlRefused) as caught:
            analyze("SELECT 1; SELECT 2; DROP TABLE res_partner", allow_transaction=True)
        self.assertEqual(caught.exception.index, 2)
        self.assertTrue(str(caught.exception).startswith("statement 3: DDL is blocked"))


@tagged("post_install", "-at_install", "ocore_sql")
class TestSqlGuardApi(BaseCase):
    def test_classification(self):
        kinds = {
            "SELECT 1": ("select", "SELECT"),
            "VALUES (1)": ("select", "SELECT"),
            "EXPLAIN DELETE FROM t": ("select", "EXPLAIN DELETE"),
            "EXPLAIN ANALYZE DELETE FROM t": ("dml", "EXPLAIN ANALYZE DELETE"),
            "EXPLAIN (ANALYZE false) DELETE FROM t": ("select", "EXPLAIN DELETE"),
            "INSERT INTO t VALUES (1)": ("dml", "INSERT"),
            "UPDATE t SET a = 1": ("dml", "UPDATE"),
            "DELETE FROM t": ("dml", "DELETE"),
            "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE": ("dml", "MERGE"),
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d": ("dml", "SELECT with data-modifying WITH"),
        }
        for sql, (kind, command) in kinds.items():
            with self.subTest(sql=sql):
                stmt = analyze(sql)[0]
                self.assertEqual((stmt.kind, stmt.command), (kind, command))

    def test_transaction_statements(self):
        stmts = analyze("BEGIN; SAVEPOINT a; ROLLBACK TO SAVEPOINT a; RELEASE a; COMMIT; START TRANSACTION; "
                        "ROLLBACK; END", allow_transaction=True)
        self.assertEqual([(s.transaction, s.savepoint) for s in stmts], [
            ("begin", None), ("savepoint", "a"), ("rollback_to", "a"), ("release", "a"), ("commit", None),
            ("begin", None), ("rollback", None), ("commit", None),
        ])
        for sql in ("BEGIN ISOLATION LEVEL SERIALIZABLE", "COMMIT AND CHAIN", "PREPARE TRANSACTION 'x'"):
            with self.subTest(sql=sql):
                with self.assertRaises(SqlRefused) as caught:
                    analyze(sql, allow_transaction=True)
                self.assertEqual(caught.exception.reason, "transaction")

    def test_add_limit(self):
        def limited(sql, limit=1000):
            return add_limit(analyze(sql)[0], limit)

        self.assertEqual(limited("select id from res_partner"), "SELECT id FROM res_partner LIMIT 1000")
        self.assertEqual(limited("SELECT 1 UNION SELECT 2", 5), "SELECT 1 UNION SELECT 2 LIMIT 5")
        self.assertEqual(limited("SELECT 1 LIMIT ALL"), "SELECT 1 LIMIT 1000")
        self.assertEqual(limited("SELECT a FROM t FOR UPDATE"), "SELECT a FROM t LIMIT 1000 FOR UPDATE")
        self.assertEqual(limited("SELECT 1 LIMIT 3"), "SELECT 1 LIMIT 3")
        self.assertEqual(limited("SELECT 1 ORDER BY 1 FETCH FIRST 2 ROWS ONLY"), "SELECT 1 ORDER BY 1 LIMIT 2")
        self.assertEqual(limited("SELECT 1 -- trailing comment"), "SELECT 1 LIMIT 1000")
        self.assertEqual(limited("EXPLAIN SELECT 1"), "EXPLAIN SELECT 1")
        self.assertEqual(limited("UPDATE t SET a = 1"), "UPDATE t SET a = 1")
        # the tree itself is left as it was
        stmt = analyze("SELECT 1")[0]
        add_limit(stmt)
        self.assertEqual(stmt.sql, "SELECT 1")
        self.assertFalse(stmt.has_limit)

    def test_split_respects_quoting_comments_and_unicode(self):
        script = "SELECT 'a;b'; SELECT $$;$$ /* ; */; -- x;\nSELECT 'é€😀'; SELECT E'\\';'"
        self.assertEqual(split(script), ["SELECT 'a;b'", "SELECT $$;$$ /* ; */", "SELECT 'é€😀'", "SELECT E'\\';'"])

    def test_statement_text_and_sql(self):
        stmt = analyze("select 'é' ; select  2", allow_transaction=True)[1]
        self.assertEqual(stmt.text, "select  2")
        self.assertEqual(stmt.sql, "SELECT 2")

    def test_is_dml(self):
        self.assertTrue(is_dml("UPDATE t SET a = 1"))
        self.assertTrue(is_dml("SELECT 1; DELETE FROM t"))
        self.assertTrue(is_dml("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"))
        self.assertFalse(is_dml("SELECT 1"))
        self.assertFalse(is_dml("EXPLAIN DELETE FROM t"))
        self.assertFalse(is_dml("DROP TABLE t"))  # refused, not DML
        self.assertFalse(is_dml("not sql at all"))

    def test_function_block_reason(self):
        self.assertEqual(sqlguard.function_block_reason("PG_READ_FILE"), "server filesystem access")
        self.assertEqual(sqlguard.function_block_reason("dblink_exec"), "remote database connection")
        self.assertEqual(sqlguard.function_block_reason("lo_export"), "large object access")
        self.assertIsNone(sqlguard.function_block_reason("lower"))
        self.assertIsNone(sqlguard.function_block_reason("pg_size_pretty"))

    def test_nul_byte_and_non_string(self):
        with self.assertRaises(SqlRefused):
            analyze("SELECT 1\x00")
        with self.assertRaises(SqlRefused):
            analyze(None)
