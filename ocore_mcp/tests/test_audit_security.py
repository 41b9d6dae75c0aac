"""The audit log is no second copy of secrets, and shows administrators' tools to administrators only;
prompts read with the caller's rights."""

import json

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import tagged

from ..lib import compat
from ..lib.redact import REDACTED
from ..service.context import Connection
from .common import McpToolCase

PBKDF2 = "$pbkdf2-sha512$600000$c2FsdHNhbHRzYWx0$" + "Zm9vYmFy" * 10
BCRYPT = "$2b$12$KIXQJm1Z1Jz0H2sC4n5ZVe9eVwq3lV5aK8sK4j1dA5Yx0bY3h6Z5e"
ODOO_KEY = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
OCORE_KEY = "ocore_0123456789_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"
PLAIN_PASSWORD = "hunter2-plain"  # noqa: S105 - a test value


def make_user(env, login, groups, **vals):
    users = env["res.users"].with_context(no_reset_password=True)
    return users.create({"name": login, "login": login,
                         compat.user_groups_field(users): [Command.set([env.ref(g).id for g in groups])], **vals})


class AuditCase(McpToolCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Audit = cls.env["ocore.mcp.audit.log"]
        cls.manager = make_user(cls.env, "audit_manager", ["base.group_user", "ocore_mcp.group_mcp_manager"])
        cls.internal = make_user(cls.env, "audit_internal", ["base.group_user", "ocore_mcp.group_mcp_user"])
        cls.portal = make_user(cls.env, "audit_portal", ["base.group_portal", "ocore_mcp.group_mcp_viewer"])
        cls.manager_key = cls.keys._ocore_create_key("audit manager", cls.manager, rate_limit=100000)[0]
        cls.internal_key = cls.keys._ocore_create_key("audit internal", cls.internal, rate_limit=100000)[0]
        cls.portal_key = cls.keys._ocore_create_key("audit portal", cls.portal, read_only=True,
                                                    rate_limit=100000)[0]

    def last_row(self, tool):
        return self.Audit.search([("tool", "=", tool)], order="id desc", limit=1)


@tagged("post_install", "-at_install")
class TestAuditRedaction(AuditCase):
    def test_sql_result_secrets_redacted_by_value_and_column(self):
        query = (f"SELECT 'admin' AS login, '{PBKDF2}' AS password, '{ODOO_KEY}' AS k, '{OCORE_KEY}' AS t, "
                 f"'{BCRYPT}' AS h, '{PLAIN_PASSWORD}' AS passwd")
        for fmt in ("json", "csv", "table"):
            data = self.ok("execute_sql", {"query": query, "format": fmt})
            self.assertTrue(data)
            row = self.last_row("execute_sql")
            for secret in (PBKDF2[:30], "c2FsdHNhbHRz", ODOO_KEY, OCORE_KEY[:20], BCRYPT[:20], PLAIN_PASSWORD):
                self.assertNotIn(secret, row.result_summary, (fmt, row.result_summary))
                self.assertNotIn(secret, row.params or "", fmt)
            if fmt != "table":  # the wide table's first 500 characters hold its header only
                self.assertIn(REDACTED, row.result_summary, fmt)
                self.assertIn("admin", row.result_summary, fmt)  # what is not a secret stays readable
        # a plain-text password under a credential column name, in each format
        for fmt in ("json", "csv", "table"):
            self.ok("execute_sql", {"query": f"SELECT 'admin' AS login, '{PLAIN_PASSWORD}' AS password",
                                    "format": fmt})
            row = self.last_row("execute_sql")
            self.assertNotIn(PLAIN_PASSWORD, row.result_summary, fmt)
            self.assertIn(REDACTED, row.result_summary, fmt)
            self.assertIn("admin", row.result_summary, fmt)

    def test_csv_import_password_column_redacted_in_params(self):
        csv_content = f"name,password\nAudit Bob,{PLAIN_PASSWORD}\n"
        self.call("import_csv", {"model": "res.partner", "csv_content": csv_content, "dry_run": True})
        row = self.last_row("import_csv")
        self.assertTrue(row)
        self.assertNotIn(PLAIN_PASSWORD, row.params)
        self.assertIn("Audit Bob", json.loads(row.params)["csv_content"])

    def test_error_and_refusal_texts_redacted(self):
        self.call("search_read", {"model": "res.partner", "bogus": f"Bearer {OCORE_KEY}", "api_key": "x" * 12})
        row = self.last_row("search_read")
        self.assertEqual(row.status, "refused")
        for text in (row.params, row.error_message or "", row.result_summary or ""):
            self.assertNotIn(OCORE_KEY[:20], text)
            self.assertNotIn("x" * 12, text)


@tagged("post_install", "-at_install")
class TestAuditVisibility(AuditCase):
    def test_admin_tool_rows_for_system_administrators_only(self):
        self.ok("execute_sql", {"query": "SELECT 'admin-only output' AS x"})
        sql_row = self.last_row("execute_sql")
        self.ok("search_read", {"model": "res.partner", "limit": 1})
        plain_row = self.last_row("search_read")
        self.assertTrue(sql_row.admin_only_tool)
        self.assertFalse(plain_row.admin_only_tool)
        # the administrator (a system administrator and MCP manager) sees both
        as_admin = self.Audit.with_user(self.admin)
        self.assertEqual(as_admin.search([("id", "in", (sql_row | plain_row).ids)]), sql_row | plain_row)
        # an MCP manager who is not a system administrator: no row of the administrators' tools, nor of a
        # user who may read more than they do (the administrator's search_read shows what that user read)
        as_manager = self.Audit.with_user(self.manager)
        self.assertFalse(as_manager.search([("id", "in", (sql_row | plain_row).ids)]))
        self.ok("search_read", {"model": "res.partner", "limit": 1}, key=self.internal_key)
        internal_row = self.last_row("search_read")
        self.assertEqual(internal_row.user_id, self.internal)
        self.assertEqual(as_manager.search([("id", "in", (plain_row | internal_row).ids)]), internal_row)
        self.assertFalse(as_manager.search([("admin_only_tool", "=", True)]))
        self.assertFalse(as_manager.search_read([("tool", "=", "execute_sql")], ["result_summary"]))
        with self.assertRaises(AccessError):
            as_manager.browse(sql_row.id).read(["result_summary"])
        self.assertEqual(as_manager.search_count([("result_summary", "ilike", "admin-only output")]), 0)
        # read_group (pivot view, XML-RPC) counts nothing of them either
        groups = compat.read_group(as_manager, [("tool", "=", "execute_sql")], [], ["__count"])
        self.assertEqual(groups[0][0], 0)

    def test_manager_reads_rows_of_users_with_no_more_rights(self):
        as_manager = self.Audit.with_user(self.manager)
        self.ok("search_read", {"model": "res.partner", "limit": 1}, key=self.manager_key)
        own = self.last_row("search_read")
        self.ok("search_read", {"model": "res.partner", "limit": 1}, key=self.internal_key)
        lesser = self.last_row("search_read")
        self.assertEqual(as_manager.search([("id", "in", (own | lesser).ids)]), own | lesser)
        # a user holding one group the manager lacks (here: the export feature) may do what the manager may
        # not: their rows are hidden from the manager, on every path
        wider = make_user(self.env, "audit_wider", ["base.group_user", "ocore_mcp.group_mcp_user",
                                                    "base.group_allow_export"])
        wider_key = self.keys._ocore_create_key("audit wider", wider, rate_limit=100000)[0]
        self.ok("search_read", {"model": "res.partner", "limit": 1}, key=wider_key)
        hidden = self.last_row("search_read")
        self.assertEqual(hidden.user_id, wider)
        self.env.registry.clear_cache()  # as the group change of a real user does
        self.assertFalse(as_manager.search([("id", "=", hidden.id)]))
        with self.assertRaises(AccessError):
            as_manager.browse(hidden.id).read(["params", "result_summary"])
        self.assertEqual(compat.read_group(as_manager, [("id", "=", hidden.id)], [], ["__count"])[0][0], 0)
        # once the manager holds that group too, the rows show
        self.manager.sudo().write({compat.user_groups_field(self.manager): [
            Command.link(self.env.ref("base.group_allow_export").id)]})
        self.assertEqual(as_manager.search([("id", "=", hidden.id)]), hidden)

    def test_manager_sees_sessions_and_subscriptions_of_users_with_no_more_rights(self):
        Session = self.env["ocore.mcp.session"]
        admin_session = Session._ocore_open(self.key.id, "stream", "127.0.0.1")
        lesser_session = Session._ocore_open(self.internal_key.id, "stream", "127.0.0.1")
        Subscription = self.env["ocore.mcp.subscription"]
        subs = Subscription.create([
            {"channel": session.session_id, "session_id": session.id, "key_id": session.key_id.id,
             "kind": "resource", "uri": f"odoo://res.partner/{self.env.user.partner_id.id}",
             "res_model": "res.partner", "res_table": "res_partner", "res_id": self.env.user.partner_id.id}
            for session in (admin_session, lesser_session)
        ])
        as_manager = Session.with_user(self.manager)
        self.assertEqual(as_manager.search([("id", "in", (admin_session | lesser_session).ids)]), lesser_session)
        with self.assertRaises(AccessError):
            as_manager.browse(admin_session.id).read(["ip_address", "client_name"])
        self.assertEqual(Subscription.with_user(self.manager).search([("id", "in", subs.ids)]),
                         subs.filtered(lambda sub: sub.session_id == lesser_session))
        # the administrator sees both
        self.assertEqual(Session.with_user(self.admin).search([("id", "in", (admin_session | lesser_session).ids)]),
                         admin_session | lesser_session)

    def test_rows_of_a_tool_no_longer_installed_are_hidden(self):
        self.ok("search_read", {"model": "res.partner", "limit": 1}, key=self.internal_key)
        row = self.last_row("search_read")
        self.env.cr.execute("UPDATE mcp_audit_log SET tool = 'removed_addon_tool' WHERE id = %s", (row.id,))
        self.env.invalidate_all()
        self.assertTrue(row.admin_only_tool)
        self.assertFalse(self.Audit.with_user(self.manager).search([("id", "=", row.id)]))
        self.assertEqual(self.Audit.with_user(self.admin).search([("id", "=", row.id)]), row)
        # an event row (no tool) is not an administrators' tool row
        self.env.cr.execute("UPDATE mcp_audit_log SET tool = NULL WHERE id = %s", (row.id,))
        self.env.invalidate_all()
        self.assertEqual(self.Audit.with_user(self.manager).search([("id", "=", row.id)]), row)

    def test_own_rows_of_an_administrators_tool_are_hidden_too(self):
        # a non-administrator refused an administrators' tool: the row is an administrators' tool row
        self.call("execute_sql", {"query": "SELECT 1"}, key=self.internal_key)
        row = self.last_row("execute_sql")
        self.assertEqual((row.status, row.user_id), ("refused", self.internal))
        self.assertFalse(self.Audit.with_user(self.internal).search([("id", "=", row.id)]))
        self.ok("search_read", {"model": "res.partner", "limit": 1}, key=self.internal_key)
        own = self.last_row("search_read")
        self.assertEqual(self.Audit.with_user(self.internal).search([("id", "=", own.id)]), own)
        self.assertFalse(self.Audit.with_user(self.internal).search([("id", "=", self.last_row("execute_sql").id)]))


@tagged("post_install", "-at_install")
class TestPromptRights(AuditCase):
    def prompt_text(self, name, arguments, key):
        conn = Connection(key=key, scope=None, settings=self.settings, transport="stream",
                          protocol_version="2025-06-18")
        msg = {"jsonrpc": "2.0", "id": 7, "method": "prompts/get", "params": {"name": name, "arguments": arguments}}
        reply = self.server._ocore_handle(conn, msg)
        self.assertNotIn("error", reply, reply.get("error"))
        return reply["result"]["messages"][0]["content"]["text"]

    def test_debug_performance_without_table_wide_statistics(self):
        for key in (self.portal_key, self.internal_key, self.manager_key):
            text = self.prompt_text("debug_performance", {"symptoms": "everything is slow"}, key)
            for leak in ("mcp_audit_log", "### Largest tables", "; database size", "Database connections:",
                         "ir_model_data", "limit_time_cpu"):
                self.assertNotIn(leak, text, key.name)
            self.assertIn("shown to system administrators only", text)
        admin_text = self.prompt_text("debug_performance", {"symptoms": "everything is slow"}, self.key)
        self.assertIn("### Largest tables", admin_text)
        self.assertIn("; database size", admin_text)

    def test_administrators_prompt_rows_are_theirs(self):
        """The audit row of an administrator's debug_performance holds server facts: an administrators' row."""
        Audit = self.env["ocore.mcp.audit.log"]
        self.prompt_text("debug_performance", {"symptoms": "admin-slow"}, self.key)
        self.prompt_text("debug_performance", {"symptoms": "manager-slow"}, self.manager_key)
        self.prompt_text("explain_model", {"model": "res.partner"}, self.key)
        admin_row = Audit.search([("event", "=", "prompt"), ("params", "ilike", "admin-slow")])
        manager_row = Audit.search([("event", "=", "prompt"), ("params", "ilike", "manager-slow")])
        explain_row = Audit.search([("event", "=", "prompt"), ("tool", "=", "explain_model")], limit=1)
        if not admin_row:
            self.skipTest("prompts/get is not audited on this server")
        self.assertIn("limit_time_cpu", admin_row.result_summary)
        self.assertEqual((admin_row.admin_only_tool, manager_row.admin_only_tool, explain_row.admin_only_tool),
                         (True, False, False))
        as_manager = Audit.with_user(self.manager)
        self.assertFalse(as_manager.search([("id", "=", admin_row.id)]))
        self.assertFalse(as_manager.search([("result_summary", "ilike", "limit_time_cpu")]))
        # the administrator's explain_model row is no administrators' row, but the administrator may read
        # more than the manager: hidden from them as well
        self.assertEqual(as_manager.search([("id", "in", (manager_row | explain_row).ids)]), manager_row)

    def test_debug_performance_of_a_model_counts_what_the_caller_reads(self):
        text = self.prompt_text("debug_performance", {"symptoms": "slow", "model": "res.partner"}, self.portal_key)
        visible = self.env["res.partner"].with_user(self.portal).search_count([])
        self.assertIn(f"- Records: {visible}", text)
        self.assertNotIn("Table `res_partner`", text)
        self.assertNotIn("dead rows", text)
        self.ok("execute_sql", {"query": "SELECT 1"})  # an administrator's call: not counted for the portal user
        audit = self.prompt_text("debug_performance", {"symptoms": "slow", "model": "ocore.mcp.audit.log"},
                                 self.portal_key)
        own = self.env["ocore.mcp.audit.log"].with_user(self.portal).search_count([])
        self.assertLess(own, self.env["ocore.mcp.audit.log"].search_count([]))
        self.assertIn(f"- Records: {own}", audit)
        self.assertNotIn("Table `mcp_audit_log`", audit)
        admin_text = self.prompt_text("debug_performance", {"symptoms": "slow", "model": "res.partner"}, self.key)
        self.assertIn("Table `res_partner`", admin_text)

    def test_other_prompts_count_with_the_callers_rights(self):
        text = self.prompt_text("explain_model", {"model": "ir.cron"}, self.portal_key)
        self.assertIn("- Records: n/a (the user has no read access)", text)
        text = self.prompt_text("explain_model", {"model": "res.partner"}, self.portal_key)
        self.assertIn(f"- Records: {self.env['res.partner'].with_user(self.portal).search_count([])}", text)

    # every prompt, every model a non-administrator may not read in full: no table-wide figure
    SENSITIVE_MODELS = ("ocore.mcp.audit.log", "ocore.mcp.key", "ocore.mcp.session", "res.users.apikeys",
                        "ir.config_parameter", "res.users", "ir.cron", "ir.attachment", "res.partner")
    TABLE_FIGURES = ("Table `", " kB", "dead rows", "sequential", "seq scans", "Largest tables", "; database size",
                     "Database connections:", "reltuples")

    def test_no_table_wide_figure_for_non_administrators(self):
        for key in (self.portal_key, self.internal_key, self.manager_key):
            for model in self.SENSITIVE_MODELS:
                for name, arguments in (("debug_performance", {"symptoms": "slow", "model": model}),
                                        ("explain_model", {"model": model}),
                                        ("analyze_error", {"traceback": f"Error in {model}: 'name' is wrong"})):
                    with self.subTest(key=key.name, prompt=name, model=model):
                        conn = Connection(key=key, scope=None, settings=self.settings, transport="stream",
                                          protocol_version="2025-06-18")
                        reply = self.server._ocore_handle(conn, {"jsonrpc": "2.0", "id": 7, "method": "prompts/get",
                                                                 "params": {"name": name, "arguments": arguments}})
                        if "error" in reply:
                            continue  # refused: shows nothing
                        text = reply["result"]["messages"][0]["content"]["text"]
                        for figure in self.TABLE_FIGURES:
                            self.assertNotIn(figure, text)
                        counts = [line for line in text.splitlines() if line.startswith("- Records: ")]
                        records = self.env[model].with_user(key.user_id)
                        for line in counts:
                            count = line.removeprefix("- Records: ")
                            if count.isdigit():
                                self.assertEqual(int(count), records.search_count([]))
