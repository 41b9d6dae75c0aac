"""The sql tools (execute_sql, execute_sql_script, list_tables) through the real pipeline."""

from odoo import Command
from odoo.tests import tagged

from ..lib import compat
from .common import McpToolCase
from .test_sqlguard import HOSTILE, LEGIT


class McpSqlCase(McpToolCase):
    """Calls tools through ocore.mcp.server._ocore_call_tool with an administrator's key."""

    KEY_NAME = "sql tests"
    FAILS_RETURN_RESULT = True

    def last_audit(self, tool):
        self.env.cr.execute("SELECT status, refusal_reason FROM mcp_audit_log WHERE tool = %s ORDER BY id DESC LIMIT 1",
                            (tool,))
        return self.env.cr.fetchone()

    def non_admin_key(self):
        user = self.env["res.users"].with_context(no_reset_password=True).create({
            "name": "sql non admin", "login": "ocore_sql_non_admin",
            compat.user_groups_field(self.env["res.users"]): [Command.set([self.env.ref("base.group_user").id,
                                       self.env.ref("ocore_mcp.group_mcp_user").id])],
        })
        return self.keys._ocore_create_key("non admin", user)[0]


@tagged("post_install", "-at_install", "ocore_sql")
class TestExecuteSql(McpSqlCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner = cls.env["res.partner"].create({"name": "SQL Target", "comment": "before"})

    def sql(self, query, **kw):
        return self.ok("execute_sql", dict(query=query, **kw))

    def test_select_columns_rows(self):
        data = self.sql(f"SELECT id, name FROM res_partner WHERE id = {self.partner.id}")
        self.assertEqual(data["columns"], ["id", "name"])
        self.assertEqual(data["rows"], [[self.partner.id, "SQL Target"]])
        self.assertEqual((data["row_count"], data["truncated"], data["statement"]), (1, False, "SELECT"))
        self.assertEqual(data["limit_applied"], 1000)

    def test_select_sees_pending_orm_writes(self):
        self.partner.comment = "pending"  # not flushed yet
        data = self.sql(f"SELECT comment FROM res_partner WHERE id = {self.partner.id}")
        self.assertEqual(data["rows"], [["<p>pending</p>"]])

    def test_auto_limit_and_truncation(self):
        data = self.sql("SELECT g FROM generate_series(1, 1500) AS g", max_response_size=500)
        self.assertEqual((data["row_count"], data["truncated"], data["limit_applied"]), (1000, True, 1000))
        self.assertEqual(data["rows"][-1], [1000])
        data = self.sql("SELECT g FROM generate_series(1, 1000) AS g", max_response_size=500)
        self.assertEqual((data["row_count"], data["truncated"]), (1000, False))
        # an explicit LIMIT is kept
        data = self.sql("SELECT g FROM generate_series(1, 5000) AS g LIMIT 1200", max_response_size=500)
        self.assertEqual((data["row_count"], data["truncated"]), (1200, False))
        self.assertNotIn("limit_applied", data)

    def test_formats(self):
        query = f"SELECT id, name, 'a,b' AS text FROM res_partner WHERE id = {self.partner.id}"
        table = self.call("execute_sql", {"query": query, "format": "table"})
        text = self.text(table)
        self.assertFalse(table["isError"])
        self.assertEqual([c.strip() for c in text.splitlines()[0].split(" | ")], ["id", "name", "text"])
        # the id column is padded to its header's width (a one-digit id in a small database)
        self.assertRegex(text, rf"(?m)^ *{self.partner.id} *\| SQL Target")
        self.assertTrue(text.endswith("(1 row)"))
        self.assertEqual(table["structuredContent"]["table"], text)
        csv_result = self.call("execute_sql", {"query": query, "format": "csv"})
        self.assertEqual(self.text(csv_result), f'id,name,text\r\n{self.partner.id},SQL Target,"a,b"\r\n')
        # a line break inside a cell is quoted: it cannot start a new row (and a formula) in a spreadsheet
        broken = self.call("execute_sql", {"query": "SELECT E'x\\r=1+1' AS v", "format": "csv"})
        self.assertEqual(self.text(broken), 'v\r\n"x\r=1+1"\r\n')
        self.fails("execute_sql", {"query": "SELECT 1", "format": "xml"}, "invalid input")

    def test_value_conversion(self):
        data = self.sql("SELECT 1.50::numeric AS n, 7::numeric AS i, DATE '2024-01-02' AS d, "
                        "TIMESTAMP '2024-01-02 03:04:05' AS ts, '\\x0102'::bytea AS b, '{\"a\": [1]}'::jsonb AS j, "
                        "interval '1 day' AS iv, NULL AS z, ARRAY[1, 2] AS arr")
        self.assertEqual(data["rows"][0], [1.5, 7, "2024-01-02", "2024-01-02T03:04:05", "base64:AQI=", {"a": [1]},
                                           "1 day, 0:00:00", None, [1, 2]])

    def test_legit_corpus_runs(self):
        """Every legitimate query passes the guard AND runs on the database (DML with confirm, inside the
        test's transaction)."""
        for query in LEGIT:
            with self.subTest(query=query[:80]):
                data = self.ok("execute_sql", {"query": query, "confirm": True})
                self.assertIn("statement", data)

    def test_hostile_corpus_refused_through_the_tool(self):
        for query in HOSTILE:
            with self.subTest(query=query[:80]):
                result = self.call("execute_sql", {"query": query, "confirm": True})
                self.assertTrue(result["isError"])
                self.assertIn("SQL refused", result["content"][0]["text"])
        self.assertEqual(self.last_audit("execute_sql"), ("refused", "sql_refused"))  # refused, like the schema

    def test_guard_refusals(self):
        self.fails("execute_sql", {"query": "DROP TABLE res_partner"}, "SQL refused: DDL is blocked: DROP")
        self.fails("execute_sql", {"query": "SELECT * FROM pg_read_file('/etc/passwd')"},
                   "function pg_read_file() is blocked")
        self.fails("execute_sql", {"query": "COPY res_users TO PROGRAM 'id'", "confirm": True}, "COPY is blocked")
        self.fails("execute_sql", {"query": "SET ROLE postgres"}, "SET is blocked")
        self.fails("execute_sql", {"query": "SELECT 1; SELECT 2"}, "use execute_sql_script")
        self.fails("execute_sql", {"query": "BEGIN"}, "only available in execute_sql_script")
        self.fails("execute_sql", {"query": "SELEC 1"}, "syntax error")
        self.assertTrue(self.env["res.partner"].search_count([]))

    def test_dml_needs_confirm_and_previews(self):
        query = f"UPDATE res_partner SET comment = 'after' WHERE id = {self.partner.id}"
        result = self.call("execute_sql", {"query": query})
        text = self.text(result)
        self.assertFalse(result["isError"], text)  # a preview is a warning, not an error
        self.assertTrue(text.startswith("Confirmation required: nothing was done. UPDATE would write an "
                                        "estimated 1 row(s). Call again with confirm: true to run it.\n\nQuery plan:\n"))
        self.assertIn("Update on res_partner", text)  # the EXPLAIN plan
        self.assertFalse(text.rstrip().endswith("."), text)  # no stray line after the plan
        data = result["structuredContent"]
        self.assertEqual((data["executed"], data["estimated_rows"]), (False, 1))
        self.partner.invalidate_recordset()
        self.assertEqual(self.partner.comment, "<p>before</p>")
        data = self.sql(query, confirm=True)
        self.assertEqual((data["statement"], data["row_count"]), ("UPDATE", 1))
        self.assertEqual(self.partner.comment, "after")  # the ORM cache was invalidated

    def test_dml_returning_and_insert(self):
        data = self.sql("INSERT INTO res_partner (name, active, type) VALUES ('SQL made', true, 'contact') "
                        "RETURNING id, name", confirm=True)
        self.assertEqual((data["statement"], data["affected_rows"], data["columns"]), ("INSERT", 1, ["id", "name"]))
        new = self.env["res.partner"].browse(data["rows"][0][0])
        self.assertEqual(new.name, "SQL made")

    def test_dml_dry_run_rolls_back(self):
        query = f"DELETE FROM res_partner WHERE id = {self.partner.id}"
        data = self.ok("execute_sql", {"query": query, "dry_run": True})
        self.assertEqual((data["dry_run"], data["would_return"]["row_count"]), (True, 1))
        self.assertTrue(self.partner.exists())

    def test_data_modifying_cte_is_dml(self):
        query = f"WITH d AS (UPDATE res_partner SET comment = 'cte' WHERE id = {self.partner.id} RETURNING id) " \
                "SELECT count(*) FROM d"
        self.assertTrue(self.ok("execute_sql", {"query": query})["confirmation_required"])
        ro_key = self.keys._ocore_create_key("ro cte", self.admin, read_only=True)[0]
        self.fails("execute_sql", {"query": query, "confirm": True}, "write operations blocked", key=ro_key)
        data = self.sql(query, confirm=True)
        self.assertEqual(data["rows"], [[1]])

    def test_explain(self):
        data = self.sql("SELECT count(*) FROM res_partner", explain=True)
        self.assertIn("actual time=", data["plan"])  # ANALYZE for a read
        data = self.sql(f"DELETE FROM res_partner WHERE id = {self.partner.id}", explain=True)
        self.assertIn("Delete on res_partner", data["plan"])
        self.assertNotIn("actual time=", data["plan"])
        self.assertTrue(self.partner.exists())
        # a user-written EXPLAIN is a read statement
        data = self.sql("EXPLAIN SELECT 1")
        self.assertIn("Result", data["rows"][0][0])
        # ... unless it is EXPLAIN ANALYZE of a write, which executes it: confirm and preview as for the write
        query = f"EXPLAIN ANALYZE DELETE FROM res_partner WHERE id = {self.partner.id}"
        data = self.ok("execute_sql", {"query": query})
        self.assertIn("EXPLAIN ANALYZE DELETE would write an estimated 1 row(s)", data["warning"])
        self.assertIn("Delete on res_partner", data["plan"])
        self.assertTrue(self.partner.exists())

    def test_select_runs_read_only_even_if_the_guard_missed_a_write(self):
        # functions that write but are not on any block list: PostgreSQL refuses them in a read statement
        self.fails("execute_sql", {"query": "SELECT nextval('res_partner_id_seq')"},
                   "cannot execute nextval() in a read-only transaction")
        self.env.cr.execute(f"""
            CREATE FUNCTION pg_temp.ocore_sql_writer() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN UPDATE res_partner SET comment = 'written by a function' WHERE id = {self.partner.id};
            RETURN 1; END $$
        """)
        self.fails("execute_sql", {"query": "SELECT pg_temp.ocore_sql_writer()"},
                   "cannot execute UPDATE in a read-only transaction")
        self.fails("execute_sql", {"query": "SELECT id FROM res_partner FOR UPDATE"}, "read-only transaction")
        self.partner.invalidate_recordset()
        self.assertEqual(self.partner.comment, "<p>before</p>")
        # the call's transaction is read-write again afterwards: the audit row was completed and writes work
        self.assertEqual(self.last_audit("execute_sql")[0], "error")
        self.sql("SELECT 1")
        self.assertEqual(self.last_audit("execute_sql"), ("success", None))
        self.env.cr.execute("SHOW transaction_read_only")
        self.assertEqual(self.env.cr.fetchone()[0], "off")
        data = self.sql(f"UPDATE res_partner SET comment = 'ok' WHERE id = {self.partner.id}", confirm=True)
        self.assertEqual(data["row_count"], 1)

    def test_read_only_key_and_production_guard(self):
        ro_key = self.keys._ocore_create_key("ro sql", self.admin, read_only=True)[0]
        data = self.ok("execute_sql", {"query": "SELECT 1 AS one"}, key=ro_key)
        self.assertEqual(data["rows"], [[1]])
        self.ok("execute_sql", {"query": f"DELETE FROM res_partner WHERE id = {self.partner.id}", "explain": True},
                key=ro_key)
        self.fails("execute_sql", {"query": f"DELETE FROM res_partner WHERE id = {self.partner.id}", "confirm": True},
                   "write operations blocked", key=ro_key)
        self.fails("execute_sql", {"query": "EXPLAIN ANALYZE DELETE FROM res_partner", "confirm": True},
                   "write operations blocked", key=ro_key)
        # a refused statement is reported as such, not as a write
        self.fails("execute_sql", {"query": "DROP TABLE res_partner"}, "DDL is blocked", key=ro_key)
        self.ok("execute_sql", {"query": "SELECT 1"}, write_enabled=False)
        self.fails("execute_sql", {"query": f"UPDATE res_partner SET name = 'x' WHERE id = {self.partner.id}",
                                   "confirm": True}, "mcp_write_enabled off", write_enabled=False)
        self.fails("execute_sql_script", {"script": "SELECT 1", "confirm": True}, "write operations blocked",
                   key=ro_key)
        self.ok("list_tables", {"search": "res_partner"}, key=ro_key)
        self.assertTrue(self.partner.exists())

    def test_admin_only(self):
        key = self.non_admin_key()
        for tool, args in (("execute_sql", {"query": "SELECT 1"}), ("list_tables", {}),
                           ("execute_sql_script", {"script": "SELECT 1", "confirm": True})):
            with self.subTest(tool=tool):
                self.fails(tool, args, "only offered to system administrators", key=key)

    def test_statement_timeout(self):
        data = self.sql("SELECT current_setting('statement_timeout') AS t", timeout_seconds=7)
        self.assertEqual(data["rows"], [["7s"]])
        self.fails("execute_sql", {"query": "SELECT pg_sleep(3)", "timeout_seconds": 1}, "timeout")
        self.assertEqual(self.last_audit("execute_sql"), ("error", "timeout"))
        self.sql("SELECT 1")  # the transaction is usable again


@tagged("post_install", "-at_install", "ocore_sql")
class TestExecuteSqlScript(McpSqlCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.env["res.partner"].create({"name": "Script A"})
        cls.b = cls.env["res.partner"].create({"name": "Script B"})

    def script(self, text, **kw):
        return self.ok("execute_sql_script", dict(script=text, confirm=True, **kw))

    def names(self):
        (self.a | self.b).invalidate_recordset()
        return self.a.name, self.b.name

    def test_confirm_required(self):
        self.fails("execute_sql_script", {"script": f"UPDATE res_partner SET name = 'x' WHERE id = {self.a.id}"},
                   "confirmation required")
        self.assertEqual(self.names(), ("Script A", "Script B"))

    def test_transaction_control_maps_to_savepoints(self):
        a, b = self.a.id, self.b.id
        data = self.script(f"""
            BEGIN;
            UPDATE res_partner SET name = 'rolled back' WHERE id = {a};
            ROLLBACK;
            BEGIN;
            UPDATE res_partner SET name = 'A1' WHERE id = {a};
            SAVEPOINT s1;
            UPDATE res_partner SET name = 'undone' WHERE id = {b};
            ROLLBACK TO SAVEPOINT s1;
            UPDATE res_partner SET name = 'B1' WHERE id = {b};
            RELEASE s1;
            COMMIT;
            SELECT name FROM res_partner WHERE id IN ({a}, {b}) ORDER BY id;
        """)
        self.assertEqual(data["executed"], 12)
        self.assertEqual(data["statements"][-1]["rows"], [["A1"], ["B1"]])
        self.assertEqual(data["statements"][1]["row_count"], 1)
        self.assertEqual(self.names(), ("A1", "B1"))
        self.assertNotIn("notes", data)

    def test_unterminated_begin_is_rolled_back(self):
        data = self.script(f"UPDATE res_partner SET name = 'kept' WHERE id = {self.a.id}; BEGIN; "
                           f"UPDATE res_partner SET name = 'lost' WHERE id = {self.b.id}; COMMIT; COMMIT; BEGIN; "
                           f"UPDATE res_partner SET name = 'lost' WHERE id = {self.a.id}")
        self.assertEqual(self.names(), ("kept", "lost"))
        self.assertIn("statement 5: COMMIT outside a BEGIN block: nothing to do", data["notes"])
        self.assertIn("a BEGIN block without COMMIT was rolled back at the end of the script", data["notes"])

    def test_failure_rolls_back_everything_and_reports_the_statement(self):
        result = self.fails("execute_sql_script", {
            "script": f"UPDATE res_partner SET name = 'partial' WHERE id = {self.a.id}; SELECT 1/0; SELECT 2",
            "confirm": True}, "statement 2 (SELECT) failed: ERROR:  division by zero")
        data = result["structuredContent"]
        self.assertEqual((data["failed_statement"], data["rolled_back"], len(data["statements"])), (2, True, 1))
        self.assertEqual(self.names(), ("Script A", "Script B"))
        self.assertEqual(self.last_audit("execute_sql_script")[0], "error")

    def test_guard_applies_to_every_statement_before_anything_runs(self):
        self.fails("execute_sql_script", {
            "script": f"UPDATE res_partner SET name = 'x' WHERE id = {self.a.id}; DROP TABLE res_partner",
            "confirm": True}, "statement 2: DDL is blocked")
        self.fails("execute_sql_script", {
            "script": "SELECT 1; SELECT lo_import('/etc/passwd')", "confirm": True}, "lo_import() is blocked")
        self.fails("execute_sql_script", {"script": "COMMIT PREPARED 'x'", "confirm": True}, "two-phase")
        self.assertEqual(self.names(), ("Script A", "Script B"))

    def test_unknown_savepoint(self):
        self.fails("execute_sql_script", {
            "script": f"UPDATE res_partner SET name = 'x' WHERE id = {self.a.id}; ROLLBACK TO SAVEPOINT nope",
            "confirm": True}, "savepoint 'nope' does not exist")
        self.assertEqual(self.names(), ("Script A", "Script B"))

    def test_selects_in_script_are_limited_and_read_only(self):
        data = self.script("SELECT g FROM generate_series(1, 1200) g; SELECT 2 AS two", max_response_size=500)
        first, second = data["statements"]
        self.assertEqual((first["row_count"], first["truncated"], first["limit_applied"]), (1000, True, 1000))
        self.assertEqual(second["rows"], [[2]])
        self.fails("execute_sql_script", {"script": "SELECT nextval('res_partner_id_seq')", "confirm": True},
                   "read-only transaction")

    def test_dry_run(self):
        data = self.ok("execute_sql_script", {
            "script": f"UPDATE res_partner SET name = 'dry' WHERE id = {self.a.id}", "dry_run": True})
        self.assertTrue(data["dry_run"])
        self.assertEqual(data["would_return"]["statements"][0]["row_count"], 1)
        self.assertEqual(self.names(), ("Script A", "Script B"))


@tagged("post_install", "-at_install", "ocore_sql")
class TestListTables(McpSqlCase):
    def test_model_mapping(self):
        data = self.ok("list_tables", {"search": "res_partner"})
        tables = {t["table"]: t for t in data["tables"]}
        self.assertEqual(data["schema"], "public")
        self.assertIn("res.partner", tables["res_partner"]["models"])
        self.assertGreater(tables["res_partner"]["total_size"], 0)
        self.assertTrue(tables["res_partner"]["total_size_pretty"].endswith(("kB", "MB", "bytes")))
        self.assertTrue(all("res_partner" in name for name in tables))
        self.assertIn("res_partner_res_partner_category_rel", tables)
        self.assertIn("res.partner.category_id", tables["res_partner_res_partner_category_rel"]["many2many_of"])

    def test_search_by_model_and_limit(self):
        data = self.ok("list_tables", {"search": "ir.ui.view"})
        self.assertIn("ir_ui_view", [t["table"] for t in data["tables"]])
        data = self.ok("list_tables", {"limit": 3})
        self.assertEqual(len(data["tables"]), 3)
        self.assertTrue(data["truncated"])
        self.assertGreater(data["count"], 100)

    def test_row_estimates(self):
        self.env.cr.execute("ANALYZE res_country")
        self.env.cr.execute("SELECT count(*) FROM res_country")
        real = self.env.cr.fetchone()[0]
        data = self.ok("list_tables", {"search": "res_country", "raw_pg": True})
        row = next(t for t in data["tables"] if t["table"] == "res_country")
        self.assertEqual(row["rows_estimate"], real)

    def test_raw_pg(self):
        data = self.ok("list_tables", {"search": "res_users", "raw_pg": True})
        row = next(t for t in data["tables"] if t["table"] == "res_users")
        self.assertNotIn("models", row)
        for key in ("kind", "table_size", "index_size", "live_tuples", "dead_tuples", "last_analyze"):
            self.assertIn(key, row)
        self.assertEqual(row["kind"], "table")
