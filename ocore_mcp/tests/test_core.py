import json
import time
from datetime import timedelta

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase, tagged

from ..lib import compat
from ..lib import protocol as P
from ..lib.deadline import CallTimeout, Deadline
from ..lib.redact import REDACTED, redact
from ..lib.shaping import TextResult, shape
from ..lib.tooling import build_spec, collect_tools, mcp_tool, parse_docstring
from ..models.mcp_key import hash_token
from ..service import policy as pol
from ..service.context import Connection


class _Family:
    @mcp_tool("orm")
    def _tool_count(self, model: str, domain: list | None = None, limit: int = 80):
        """Count records.

        Args:
            model: Technical model name.
            domain: Odoo domain.
        """
        return 1

    @mcp_tool("orm", kind="destructive")
    def _tool_unlink(self, model: str, ids: list[int]):
        """Delete records."""
        return 2


class _Override(_Family):
    def _tool_count(self, model: str, domain: list | None = None, limit: int = 80):  # no decorator
        return super()._tool_count(model, domain, limit) + 10


@tagged("post_install", "-at_install")
class TestPureCore(TransactionCase):
    def test_schema_from_signature_and_docstring(self):
        spec = build_spec(_Family._tool_count, "m", "_tool_count", _Family._tool_count._mcp_tool)
        self.assertEqual(spec.name, "count")
        self.assertEqual(spec.description, "Count records.")
        props = spec.input_schema["properties"]
        self.assertEqual(props["model"], {"description": "Technical model name.", "type": "string"})
        self.assertEqual(props["domain"]["type"], "array")
        self.assertEqual(props["limit"]["default"], 80)
        self.assertEqual(spec.input_schema["required"], ["model"])
        # common parameters are declared (typed, described once in the instructions); no confirm/dry_run on a
        # read tool
        self.assertEqual((props["timeout_seconds"], props["max_response_size"], props["context"]),
                         ({"type": "integer"}, {"type": "integer"}, {"type": "object"}))
        self.assertNotIn("confirm", props)
        self.assertNotIn("dry_run", props)
        destructive = build_spec(_Family._tool_unlink, "m", "_tool_unlink", _Family._tool_unlink._mcp_tool)
        self.assertIn("confirm", destructive.input_schema["properties"])
        self.assertEqual(destructive.input_schema["properties"]["ids"]["items"], {"type": "integer"})

    def test_validation_errors_are_clear(self):
        spec = build_spec(_Family._tool_unlink, "m", "_tool_unlink", _Family._tool_unlink._mcp_tool)
        self.assertEqual(spec.validate({"model": "res.partner", "ids": [1, "2"], "confirm": True}),
                         {"model": "res.partner", "ids": [1, 2]})
        with self.assertRaisesRegex(ValueError, r"ids\.0: Input should be a valid integer"):
            spec.validate({"model": "res.partner", "ids": ["x"]})
        with self.assertRaisesRegex(ValueError, "bogus: unknown argument"):
            spec.validate({"model": "res.partner", "ids": [1], "bogus": 1})
        with self.assertRaisesRegex(ValueError, "model: required argument is missing"):
            spec.validate({"ids": [1]})

    def test_categories_are_records_and_only_those_holding_tools_are_offered(self):
        Category = self.env["ocore.mcp.category"]
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        codes = set(Category.search([]).mapped("code"))
        self.assertFalse({spec.category for spec in specs.values()} - codes, "every tool's category is a record")
        offered = Category._ocore_offered()
        self.assertEqual(set(offered.mapped("code")), {spec.category for spec in specs.values()})
        export = self.env.ref("ocore_mcp.category_export")  # a record whose tools are the orm family's
        self.assertEqual((export.tool_count, export.has_tools), (0, False))
        self.assertEqual(Category.search([("has_tools", "=", False)]), Category.search([("code", "not in", offered.mapped("code"))]))
        orm = self.env.ref("ocore_mcp.category_orm")
        self.assertEqual(orm.tool_count, sum(1 for spec in specs.values() if spec.category == "orm"))
        self.assertIn("export_csv", {name for name, spec in specs.items() if spec.category == "orm"})
        # the key form offers the same categories; the decorator takes any category code
        self.assertEqual(Category.search(self.env["ocore.mcp.key"]._fields["category_ids"].domain), offered)
        def _tool_probe(self):
            """Probe."""

        self.assertEqual(mcp_tool("e2e_extension")(_tool_probe)._mcp_tool.category, "e2e_extension")
        with self.assertRaisesRegex(ValueError, "not a category code"):
            mcp_tool("Not A Code")

    def test_override_without_decorator_keeps_the_tool(self):
        tools = collect_tools([("x.family", _Override)])
        self.assertEqual(set(tools), {"count", "unlink"})
        self.assertEqual(tools["count"].meta.category, "orm")
        # the override has no docstring: the documented description and parameters stay
        self.assertEqual(tools["count"].description, "Count records.")
        self.assertEqual(tools["count"].input_schema["properties"]["model"]["description"], "Technical model name.")
        self.assertEqual(_Override()._tool_count("res.partner"), 11)

    def test_docstring_sections(self):
        desc, params = parse_docstring("""Do a thing.

        Longer text.

        Args:
            a: First
                continued.
            b (int): Second.

        Returns:
            nothing
        """)
        self.assertEqual(desc, "Do a thing.\n\nLonger text.")
        self.assertEqual(params, {"a": "First continued.", "b": "Second."})

    def test_redaction_at_any_depth(self):
        data = {"values": {"name": "x", "password": "p", "nested": [{"api_key": "k", "Token": "t"}]},
                "client_secret": "s", "empty_token": ""}
        out = redact(data)
        self.assertEqual(out["values"]["password"], REDACTED)
        self.assertEqual(out["values"]["nested"][0], {"api_key": REDACTED, "Token": REDACTED})
        self.assertEqual(out["client_secret"], REDACTED)
        self.assertEqual(out["values"]["name"], "x")
        self.assertEqual(out["empty_token"], "")

    def test_shaping_truncates_and_marks(self):
        records = [{"id": i, "name": "x" * 100} for i in range(100)]
        text, structured, truncated = shape({"records": records, "total": 100}, 2)
        self.assertTrue(truncated)
        self.assertTrue(structured["truncated"])
        self.assertLess(len(structured["records"]), 100)
        self.assertLessEqual(len(text.encode()), 2048)
        self.assertIn("of 100 records returned", structured["truncation"])
        # the list that weighs the most is trimmed, not the one with the most items
        page = {"fields": [f"f{i}" for i in range(20)], "records": [{"id": i, "x": "y" * 400} for i in range(5)]}
        text, structured, truncated = shape(page, 1)
        self.assertEqual(structured["fields"], page["fields"])
        self.assertTrue(0 < len(structured["records"]) < 5)
        self.assertIn("records returned", structured["truncation"])
        text, structured, truncated = shape([1, 2], 50)
        self.assertEqual(structured, {"result": [1, 2]})
        self.assertFalse(truncated)
        text, structured, truncated = shape(TextResult("hello", {"a": 1}), 50)
        self.assertEqual((text, structured), ("hello", {"a": 1}))

    def test_deadline_interrupts_python_loops(self):
        started = time.monotonic()
        with self.assertRaises(CallTimeout):
            with Deadline(0.3):
                while True:
                    pass
        self.assertLess(time.monotonic() - started, 2)
        with Deadline(0.2):
            pass
        time.sleep(0.3)  # a disarmed deadline never fires later

    def test_modern_ladder(self):
        meta = {P.PROTOCOL_VERSION_META_KEY: "2026-07-28", P.CLIENT_CAPABILITIES_META_KEY: {}}
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "_meta": meta}}
        headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "x"}
        env = P.classify_modern(body, headers)
        self.assertEqual(env.protocol_version, "2026-07-28")
        with self.assertRaises(P.ProtocolError) as err:
            P.classify_modern(body, dict(headers, **{"mcp-name": "y"}))
        self.assertEqual(err.exception.code, P.HEADER_MISMATCH)
        with self.assertRaises(P.ProtocolError) as err:
            P.classify_modern({**body, "params": {"name": "x"}}, headers)
        self.assertEqual(err.exception.code, P.INVALID_PARAMS)
        old = {**meta, P.PROTOCOL_VERSION_META_KEY: "2025-11-25"}
        with self.assertRaises(P.ProtocolError) as err:
            P.classify_modern({**body, "params": {"name": "x", "_meta": old}},
                              dict(headers, **{"mcp-protocol-version": "2025-11-25"}))
        self.assertEqual(err.exception.code, P.UNSUPPORTED_PROTOCOL_VERSION)
        self.assertEqual(err.exception.http_status, 400)

    def test_default_slug(self):
        from ..models.res_config_settings import default_slug

        self.assertEqual(default_slug("Prod-V17"), "prod_v17")
        self.assertEqual(default_slug("ocore"), "ocore_db")  # never the platform tools' prefix

    def test_versions_and_serialisation(self):
        self.assertEqual(P.negotiate_version("2024-11-05"), "2024-11-05")
        self.assertEqual(P.negotiate_version("1999-01-01"), "2025-11-25")
        result = {"content": [{"type": "text", "text": "x"}], "structuredContent": {"a": 1}, "isError": False}
        self.assertEqual(P.serialize_result("tools/call", "2025-06-18", result)["structuredContent"], {"a": 1})
        modern = P.serialize_result("tools/call", "2026-07-28", dict(result, resultType="complete"))
        self.assertEqual(modern["resultType"], "complete")
        with self.assertRaises(P.ProtocolError) as err:
            P.parse_request("logging/setLevel", "2026-07-28", {"level": "info"})
        self.assertEqual(err.exception.code, P.METHOD_NOT_FOUND)


@tagged("post_install", "-at_install")
class TestKeysAndPipeline(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls.env["ocore.mcp.server"]
        cls.admin = cls.env.ref("base.user_admin")
        cls.key, cls.secret = cls.env["ocore.mcp.key"]._ocore_create_key("test", cls.admin)
        cls.settings = cls.server._ocore_settings()
        cls.slug = cls.settings["slug"]

    def conn(self, key=None, **kw):
        key = key or self.key
        return Connection(key=key, scope=key._ocore_scope(), settings=dict(self.settings, **kw.pop("settings", {})),
                          transport="modern", protocol_version="2026-07-28", ip="127.0.0.1", **kw)

    def call(self, name, args=None, **kw):
        return self.server._ocore_call_tool(self.conn(**kw), name, args or {})

    def test_secret_is_hashed_and_found(self):
        self.assertTrue(self.secret.startswith("ocore_" + self.key.key_prefix + "_"))
        self.assertEqual(self.key.sudo().key_hash, hash_token(self.secret))
        self.assertNotIn(self.secret, json.dumps(self.key.sudo().read()[0], default=str))
        self.assertEqual(self.env["ocore.mcp.key"]._ocore_find_by_token(self.secret), self.key)
        tampered = self.secret[:-1] + ("y" if self.secret.endswith("x") else "x")
        self.assertFalse(self.env["ocore.mcp.key"]._ocore_find_by_token(tampered))
        self.assertFalse(self.env["ocore.mcp.key"]._ocore_find_by_token("garbage"))

    def test_connection_checks(self):
        pol.check_key(self.key, self.settings, "127.0.0.1")
        with self.assertRaisesRegex(pol.Refusal, "kill switch"):
            pol.check_key(self.key, dict(self.settings, enabled=False), "127.0.0.1")
        key, _secret = self.env["ocore.mcp.key"]._ocore_create_key("ip", self.admin, ip_allowlist="10.0.0.0/8")
        with self.assertRaisesRegex(pol.Refusal, "not in the key's IP allowlist"):
            pol.check_key(key, self.settings, "127.0.0.1")
        pol.check_key(key, self.settings, "10.1.2.3")
        key.expiration_date = fields.Datetime.now() - timedelta(minutes=1)
        with self.assertRaisesRegex(pol.Refusal, "expired"):
            pol.check_key(key, self.settings, "10.1.2.3")
        key.write({"expiration_date": False, "active": False})
        with self.assertRaisesRegex(pol.Refusal, "revoked"):
            pol.check_key(key, self.settings, "10.1.2.3")

    def test_key_constraints(self):
        with self.assertRaises(ValidationError):
            self.env["ocore.mcp.key"]._ocore_create_key("bad ip", self.admin, ip_allowlist="not-an-ip")
        viewer = self.env["res.users"].create({
            "name": "Viewer", "login": "mcp_viewer_core",
            compat.user_groups_field(self.env["res.users"]): [(6, 0, [self.env.ref("base.group_user").id, self.env.ref("ocore_mcp.group_mcp_viewer").id])],
        })
        with self.assertRaises(ValidationError):
            self.env["ocore.mcp.key"]._ocore_create_key("viewer rw", viewer)
        key, _s = self.env["ocore.mcp.key"]._ocore_create_key("viewer ro", viewer, read_only=True)
        self.assertTrue(key._ocore_scope()["read_only"])

    def test_platform_call_and_audit(self):
        result = self.call("ocore_list_instances")
        self.assertFalse(result["isError"])
        self.assertEqual(result["structuredContent"]["instances"][0]["slug"], self.slug)
        row = self.env["ocore.mcp.audit.log"].search([("key_id", "=", self.key.id)], limit=1)
        self.assertEqual((row.tool_name, row.status, row.category), ("ocore_list_instances", "success", "platform"))
        self.key.invalidate_recordset(["last_used"])
        self.assertTrue(self.key.last_used)  # refreshed (at most once a minute)

    def test_refusals_name_their_reason(self):
        result = self.call(f"{self.slug}_no_such_tool")
        self.assertTrue(result["isError"])
        self.assertIn("unknown tool", result["content"][0]["text"])
        orm_only, _s = self.env["ocore.mcp.key"]._ocore_create_key(
            "orm only", self.admin, category_ids=[(6, 0, self.env.ref("ocore_mcp.category_orm").ids)])
        result = self.call("ocore_list_instances", key=orm_only)
        self.assertIn("permission denied", result["content"][0]["text"])
        self.assertIn("'platform' category", result["content"][0]["text"])
        denied, _s = self.env["ocore.mcp.key"]._ocore_create_key("deny", self.admin, tool_denylist="list_servers")
        result = self.call("ocore_list_servers", key=denied)
        self.assertIn("tool denylist", result["content"][0]["text"])
        result = self.call("ocore_list_instances", {"bogus": 1})
        self.assertIn("invalid input", result["content"][0]["text"])
        result = self.call("ocore_list_instances", {"context": {"company_id": 999999}})
        self.assertIn("not one of the key owner's companies", result["content"][0]["text"])
        rows = self.env["ocore.mcp.audit.log"].search([("status", "=", "refused")])
        self.assertTrue({"unknown_tool", "category_denied", "tool_denied", "invalid_input"}
                        <= set(rows.mapped("refusal_reason")))

    def test_rate_limit_exact(self):
        key, _s = self.env["ocore.mcp.key"]._ocore_create_key("limited", self.admin, rate_limit=3)
        outcomes = [self.call("ocore_list_instances", key=key)["isError"] for _ in range(4)]
        self.assertEqual(outcomes, [False, False, False, True])
        last = self.env["ocore.mcp.audit.log"].search([("key_id", "=", key.id)], limit=1)
        self.assertEqual(last.refusal_reason, "rate_limited")

    def test_tools_list_filters_and_pages(self):
        conn = self.conn()
        names = [name for name, _spec in self.server._ocore_visible_tools(conn)]
        self.assertIn("ocore_list_instances", names)
        hidden = self.conn(instances=["other"], categories=["orm"])
        self.assertNotIn("ocore_list_instances", [n for n, _s in self.server._ocore_visible_tools(hidden)])
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp.tools_page_size", 1)
        conn = self.conn(settings={"tools_page_size": 1})
        request = P.parse_request("tools/list", "2025-11-25", {})
        page = self.server._mcp_tools_list(conn, request, 1)
        self.assertEqual(len(page["tools"]), 1)
        self.assertIn("nextCursor", page)
        request = P.parse_request("tools/list", "2025-11-25", {"cursor": page["nextCursor"]})
        self.assertEqual(len(self.server._mcp_tools_list(conn, request, 2)["tools"]), 1)
