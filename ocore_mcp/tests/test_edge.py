"""The protocol edge: Origin rules, the edge settings, a rate limit counting every request method, and
prompts/get audited like tools/call."""

from odoo.tests import TransactionCase, tagged

from ..lib import origins
from ..lib import protocol as P
from ..service.context import Connection
from .common import McpToolCase

OWN = "http://127.0.0.1:8069"


@tagged("post_install", "-at_install")
class TestOrigins(TransactionCase):
    def test_absent_origin_is_allowed_a_foreign_one_never(self):
        self.assertTrue(origins.origin_allowed(None, OWN, frozenset()))
        self.assertTrue(origins.origin_allowed(OWN, OWN, frozenset()))
        self.assertTrue(origins.origin_allowed("HTTP://127.0.0.1:8069", OWN, frozenset()))  # same origin
        for header in ("http://evil.example.com", "null", "", "*", "http://127.0.0.1:8069.evil.com",
                       "http://evil.com@127.0.0.1:8069", "http://127.0.0.1:8069@evil.com", "http://127.0.0.1:8069/",
                       "http://127.0.0.1:8069/x", "http://127.0.0.1:8069?x", "http://127.0.0.1:8069#", "https://127.0.0.1:8069",
                       "ws://127.0.0.1:8069", "http://localhost:8069", "http://127.0.0.1", "http://[::1]:8069",
                       "http://127.0.0.1\t:8069", "http://127.0.0.1:8069, http://evil.com", "http://127.0.0.1:99999",
                       "//127.0.0.1:8069", "127.0.0.1:8069", "file://", "http://127.1:8069"):
            self.assertFalse(origins.origin_allowed(header, OWN, frozenset()), header)

    def test_configured_origins(self):
        configured = origins.parse_origins("https://app.example.com, http://localhost:6274/\nnot-an-origin")
        self.assertEqual(configured, {"https://app.example.com", "http://localhost:6274"})
        self.assertTrue(origins.origin_allowed("https://app.example.com", OWN, configured))
        self.assertTrue(origins.origin_allowed("https://app.example.com:443", OWN, configured))
        self.assertFalse(origins.origin_allowed("https://app.example.com.evil.com", OWN, configured))
        self.assertEqual(origins.cors_origin("https://app.example.com", configured), "https://app.example.com")
        self.assertIsNone(origins.cors_origin(OWN, configured))  # same-origin requests need no CORS
        self.assertIsNone(origins.cors_origin("https://app.example.com", frozenset()))
        self.assertEqual(origins.cors_origin("http://anything.example", origins.parse_origins("*")), "*")
        self.assertTrue(origins.origin_allowed("http://anything.example", OWN, origins.parse_origins("*")))


@tagged("post_install", "-at_install")
class TestEdgeSettings(McpToolCase):
    def test_defaults_and_base_url(self):
        icp = self.env["ir.config_parameter"].sudo()
        icp.set_param("web.base.url", "https://odoo.example.com/")
        settings = self.server._ocore_settings()
        self.assertEqual(settings["base_url"], "https://odoo.example.com")
        self.assertEqual(settings["own_origin"], "https://odoo.example.com")
        self.assertEqual(settings["origins"], frozenset())
        self.assertEqual((settings["max_body_kb"], settings["max_batch"]), (24576, 100))
        icp.set_param("ocore_mcp.allowed_origins", "https://app.example.com")
        self.assertEqual(self.server._ocore_settings()["origins"], {"https://app.example.com"})

    def test_settings_form(self):
        form = self.env["res.config.settings"].create({"ocore_mcp_allowed_origins": " https://a.example.com ",
                                                       "ocore_mcp_max_body_kb": 1, "ocore_mcp_max_batch": 0})
        form.set_values()
        settings = self.server._ocore_settings()
        self.assertEqual(settings["allowed_origins"], "https://a.example.com")
        self.assertEqual(settings["max_body_kb"], 64)  # floor
        self.assertEqual(settings["max_batch"], 100)  # 0: the default


@tagged("post_install", "-at_install")
class TestRateLimitEveryMethod(McpToolCase):
    def conn(self, key=None, **settings):
        return Connection(key=key or self.key, scope=None, settings=dict(self.settings, **settings),
                          transport="stream", protocol_version="2025-06-18")

    def handle(self, conn, method, params=None, id=1):  # noqa: A002
        return self.server._ocore_handle(conn, {"jsonrpc": "2.0", "id": id, "method": method,
                                                "params": params or {}})

    def test_every_request_counts(self):
        key, _s = self.keys._ocore_create_key("edge limited", self.admin, rate_limit=3)
        conn = self.conn(key)
        self.assertIn("result", self.handle(conn, "tools/list"))
        self.assertIn("result", self.handle(conn, "ping"))
        self.assertIn("result", self.handle(conn, "prompts/list"))
        reply = self.handle(conn, "tools/list", id=4)
        self.assertEqual(reply["error"]["code"], P.RATE_LIMITED)
        self.assertIn("limit 3/min", reply["error"]["message"])
        reply = self.handle(conn, "prompts/get", {"name": "explain_model", "arguments": {"model": "res.partner"}}, 5)
        self.assertEqual(reply["error"]["code"], P.RATE_LIMITED)
        # tools/call counts once, in its pipeline, and answers with an isError result
        result = self.server._ocore_call_tool(conn, "ocore_list_instances", {})
        self.assertTrue(result["isError"])
        rows = self.env["ocore.mcp.audit.log"].search([("key_id", "=", key.id)], order="id")
        self.assertEqual([(r.event, r.tool_name, r.refusal_reason) for r in rows], [
            ("denied", "tools/list", "rate_limited"), ("prompt", "explain_model", "rate_limited"),
            ("call", "ocore_list_instances", "rate_limited")])
        # notifications are not counted
        self.assertIsNone(self.server._ocore_handle(conn, {"jsonrpc": "2.0", "method": "notifications/initialized"}))

    def test_prompts_get_is_audited(self):
        conn = self.conn()
        reply = self.handle(conn, "prompts/get", {"name": "explain_model", "arguments": {"model": "res.partner"}})
        self.assertIn("result", reply)
        row = self.env["ocore.mcp.audit.log"].search([("event", "=", "prompt")], limit=1)
        self.assertEqual((row.tool_name, row.status, row.success, row.key_id), ("explain_model", "success", True,
                                                                                 self.key))
        self.assertIn("res.partner", row.params)
        self.assertTrue(row.result_summary)
        reply = self.handle(conn, "prompts/get", {"name": "explain_model", "arguments": {"bogus": "1"}}, 2)
        self.assertEqual(reply["error"]["code"], P.INVALID_PARAMS)
        row = self.env["ocore.mcp.audit.log"].search([("event", "=", "prompt")], limit=1)
        row.invalidate_recordset()
        self.assertEqual((row.status, row.refusal_reason), ("refused", "invalid_input"))
        self.assertIn("Missing required argument(s): model", row.error_message)
