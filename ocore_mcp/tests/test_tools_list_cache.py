"""tools/list is built once per process: the visible tools and their definitions are kept in the registry's
ormcache, and a change of anything they depend on is seen at once."""

from odoo.tests import tagged

from ..lib import protocol as P
from ..service.context import Connection
from .common import McpToolCase


@tagged("post_install", "-at_install")
class TestToolsListCache(McpToolCase):
    def listing(self, conn):
        request = P.parse_request("tools/list", "2025-11-25", {})
        return self.server._mcp_tools_list(conn, request, 1)

    def test_definitions_built_once(self):
        conn = self.conn()
        first, second = self.listing(conn)["tools"], self.listing(self.conn())["tools"]
        self.assertTrue(first)
        self.assertEqual([t["name"] for t in first], [t["name"] for t in second])
        # the same definitions (not copies), whose wire form is then reused whole
        self.assertTrue(all(a is b for a, b in zip(first, second, strict=True)))
        wire = P.serialize_tools_list("2025-11-25", {"tools": first})["tools"]
        self.assertIs(P.serialize_tools_list("2025-11-25", {"tools": second})["tools"], wire)
        self.assertEqual([t["name"] for t in wire], [t["name"] for t in first])
        # another revision gets definitions of its own (the title's place differs in 2025-03-26)
        older = self.server._ocore_tool_definitions(
            Connection(key=self.key, scope=None, settings=self.settings, transport="stream",
                       protocol_version="2025-03-26"),
            self.server._ocore_visible_tools(conn)[:1])
        self.assertIn("title", older[0]["annotations"])
        self.assertNotIn("title", first[0]["annotations"])

    def test_changes_seen_at_once(self):
        name = f"{self.slug}_count"
        self.assertIn(name, [t["name"] for t in self.listing(self.conn())["tools"]])
        # the key's scope is part of what the cache is kept under
        self.key.tool_denylist = "count"
        self.assertNotIn(name, [t["name"] for t in self.listing(self.conn())["tools"]])
        self.key.tool_denylist = False
        self.assertIn(name, [t["name"] for t in self.listing(self.conn())["tools"]])
        # so are the settings: writes off hides the write tools
        self.assertIn(f"{self.slug}_create", [t["name"] for t in self.listing(self.conn())["tools"]])
        self.assertNotIn(f"{self.slug}_create",
                         [t["name"] for t in self.listing(self.conn(write_enabled=False))["tools"]])
        # a tool switched off clears the registry's caches, with them the cached list
        setting = self.env["ocore.mcp.tool.setting"]
        setting.action_ocore_open()
        setting.search([("name", "=", "count")]).enabled = False
        self.assertNotIn(name, [t["name"] for t in self.listing(self.conn())["tools"]])
