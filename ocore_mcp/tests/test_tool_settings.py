"""Built-in tools switched off for the whole instance (Settings > MCP > Tools)."""

from unittest import mock

from odoo.exceptions import AccessError
from odoo.tests import tagged

from ..service.notify import hub
from .common import McpToolCase


@tagged("post_install", "-at_install")
class TestToolSettings(McpToolCase):
    def listed(self, key=None):
        return {name for name, _spec in self.server._ocore_visible_tools(self.conn(key))}

    def test_switch_off_and_on(self):
        Setting = self.env["ocore.mcp.tool.setting"]
        action = Setting.action_ocore_open()
        builtin = self.env["ocore.mcp.toolset"]._ocore_builtin_tool_specs()
        rows = Setting.search(action["domain"])
        self.assertEqual(set(rows.mapped("name")), set(builtin))
        self.assertTrue(all(rows.mapped("enabled")))
        count = rows.filtered(lambda r: r.name == "count")
        self.assertEqual((count.category, count.kind), ("orm", "read"))
        self.assertIn(f"{self.slug}_count", self.listed())
        self.ok("count", {"model": "res.partner"})
        session = self.env["ocore.mcp.session"]._ocore_open(self.key.id, "stream", "127.0.0.1")
        with mock.patch.object(type(hub), "publish") as publish:
            count.enabled = False
        self.assertIn((session.session_id, {"t": "msg", "m": {"jsonrpc": "2.0",
                                                               "method": "notifications/tools/list_changed"}}),
                      [c.args[1:] for c in publish.call_args_list])
        self.assertNotIn(f"{self.slug}_count", self.listed())
        self.assertIn(f"{self.slug}_search_read", self.listed())
        text = self.fails("count", {"model": "res.partner"}, "switched off on this instance")
        self.assertIn("Settings > MCP > Tools", text)
        row = self.env["ocore.mcp.audit.log"].sudo().search([("tool_name", "=", f"{self.slug}_count")], limit=1)
        self.assertEqual(row.status, "refused")
        count.enabled = True
        self.assertIn(f"{self.slug}_count", self.listed())
        self.ok("count", {"model": "res.partner"})
        # a second sync adds nothing
        Setting.action_ocore_open()
        self.assertEqual(Setting.search_count([("name", "=", "count")]), 1)

    def test_only_system_administrators(self):
        user = self.make_user("tool_settings_manager", [self.env.ref("ocore_mcp.group_mcp_manager").id])
        self.env["ocore.mcp.tool.setting"]._ocore_sync()
        with self.assertRaises(AccessError):
            self.env["ocore.mcp.tool.setting"].with_user(user).search([("name", "=", "count")]).write(
                {"enabled": False})
