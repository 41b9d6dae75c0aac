"""What an administrator reads in the audit log and what an AI client reads from the tools: one status per
cause, errors labelled as errors, the average latency of grouped rows, and the usage statistics."""

import json

from odoo.tests import tagged

from ..lib import compat, tooling
from .common import McpToolCase


@tagged("post_install", "-at_install")
class TestAuditStatuses(McpToolCase):
    def last_row(self, tool):
        return self.env["ocore.mcp.audit.log"].search([("tool", "=", tool)], order="id desc", limit=1)

    def test_invalid_input_is_refused_whether_the_schema_or_the_tool_refuses_it(self):
        # the schema refuses an unknown argument before the tool runs
        self.fails("count", {"model": "res.partner", "bogus_argument": 1}, "unknown argument")
        schema = self.last_row("count")
        self.assertEqual((schema.status, schema.refusal_reason), ("refused", "invalid_input"))
        # the tool's own check refuses an unknown model while it runs
        self.fails("count", {"model": "no.such.model"}, "unknown model")
        tool = self.last_row("count")
        self.assertEqual((tool.status, tool.refusal_reason), ("refused", "invalid_input"))
        self.assertIn("unknown model", tool.error_message)

    def test_a_failure_is_an_error_without_a_refusal_reason(self):
        self.fails("create", {"model": "res.partner", "values": {"name": "x", "parent_id": 10 ** 9},
                              "confirm": True}, "")
        row = self.last_row("create")
        self.assertEqual(row.status, "error")
        self.assertFalse(row.refusal_reason)

    def test_grouped_rows_average_their_latency(self):
        field = self.env["ocore.mcp.audit.log"]._fields["latency_ms"]
        self.assertEqual(compat.field_aggregator(field), "avg")
        Audit = self.env["ocore.mcp.audit.log"]
        base = {"event": "call", "tool_name": "t_avg", "tool": "t_avg", "status": "success", "success": True}
        Audit.create([{**base, "latency_ms": 10}, {**base, "latency_ms": 30}])
        groups = compat.read_group(Audit, [("tool", "=", "t_avg")], ["status"], ["latency_ms:avg"])
        self.assertEqual(len(groups), 1)
        self.assertEqual(round(groups[0][-1]), 20)

    def test_usage_statistics_per_tool_and_hour(self):
        Audit = self.env["ocore.mcp.audit.log"]
        base = {"event": "call", "tool_name": "t_stats", "tool": "t_stats", "category": "orm"}
        Audit.create([{**base, "status": "success", "success": True, "latency_ms": ms} for ms in range(10, 101, 10)]
                     + [{**base, "status": "error", "success": False, "latency_ms": 5},
                        {**base, "status": "refused", "success": False, "latency_ms": 1}])
        self.env.flush_all()
        Stats = self.env["ocore.mcp.audit.stats"]
        rows = Stats.search([("tool_name", "=", "t_stats")])
        self.assertEqual(sum(rows.mapped("calls")), 12)
        self.assertEqual(sum(rows.mapped("errors")), 1)
        self.assertEqual(sum(rows.mapped("refused")), 1)
        if len(rows) == 1:  # all in one hour (the test's transaction has one timestamp)
            self.assertAlmostEqual(rows.latency_p50, 45.0)  # 1, 5, 10 … 100: the median of 12 values
            self.assertAlmostEqual(rows.latency_p90, 89.0)  # percentile_cont(0.9), interpolated
        # it reads the audit log without its record rules: system administrators only
        manager = self.make_user("stats_manager", [self.env.ref("ocore_mcp.group_mcp_manager").id])
        self.assertFalse(compat.has_access(Stats.with_user(manager), "read"))


@tagged("post_install", "-at_install")
class TestWhatAClientReads(McpToolCase):
    def test_field_metadata_default_summary_fits_a_context(self):
        data = self.ok("get_field_metadata", {"model": "res.partner"})
        size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        self.assertLessEqual(size, 8 * 1024, f"{size} bytes")
        self.assertIn("detail: true", data["hint"])
        simple = [f["name"] for f in data["simple"]]
        binaries = [f["name"] for f in data["simple"] if f["type"] in ("binary", "image")]
        self.assertEqual(simple[len(simple) - len(binaries):], binaries)  # image fields last
        parent = next(f for f in data["relational"] if f["name"] == "parent_id")
        self.assertEqual(parent["relation"], "res.partner")
        self.assertNotIn("help", parent)  # on request: fields or detail
        tz = next(f for f in data["simple"] if f["name"] == "tz")
        self.assertLessEqual(len(tz["selection"]), 8)
        self.assertGreater(tz["selection_more"], 0)
        detail = self.ok("get_field_metadata", {"model": "res.partner", "fields": ["parent_id"]})
        self.assertIn("help", detail["relational"][0])

    def test_a_misspelled_argument_gets_the_valid_names(self):
        text = self.fails("count", {"modle": "res.partner"}, "modle: unknown argument (did you mean `model`?)")
        self.assertIn("Valid arguments: model", text)
        text = self.fails("count", {"model": "res.partner", "filter": []}, "did you mean `domain`?")
        self.assertIn("domain", text)
        self.assertEqual(tooling.suggest_argument("content", ["title", "body"]), "body")
        self.assertIsNone(tooling.suggest_argument("zzz", ["title", "body"]))

    def test_server_version_is_the_manifest_version(self):
        module = self.env["ir.module.module"].search([("name", "=", "ocore_mcp")])
        self.assertEqual(self.server._ocore_server_info()["version"], module.latest_version)

    def test_views_use_widgets_their_dependencies_provide(self):
        views = self.env["ir.ui.view"].search([("arch_db", "ilike", "many2one_avatar_user")])
        ours = views.filtered(lambda v: (v.xml_id or "").startswith("ocore_"))
        self.assertFalse(ours, ours.mapped("xml_id"))
        settings = self.env.ref("ocore_mcp.res_config_settings_view_form").arch_db
        self.assertIn("Allow MCP writes", settings)
        self.assertNotIn("(mcp_write_enabled)", settings)
