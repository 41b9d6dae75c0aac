import dataclasses
import json

from odoo.tests import tagged

from ..lib import annotations, protocol
from ..service.context import Connection
from .common import McpToolCase

DESTRUCTIVE = ("write", "batch_update", "execute_sql", "execute_shell", "python_repl", "set_user_groups",
               "set_user_active", "install_module", "upgrade_module", "set_system_parameter", "file_write",
               "file_move", "import_csv", "unlink", "uninstall_module")
ADDITIVE = ("create", "batch_create", "copy", "upload_attachment")


@tagged("post_install", "-at_install")
class TestToolAnnotations(McpToolCase):
    KEY_NAME = "annotation tests"

    def listing(self, key=None, version="2025-06-18", **settings):
        conn = Connection(key=key or self.key, scope=None, settings=dict(self.settings, **settings),
                          transport="stream", protocol_version=version)
        reply = self.server._ocore_handle(conn, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        return json.loads(protocol.dumps(reply))["result"]["tools"]

    def by_name(self, tools):
        return {t["name"][len(self.slug) + 1:] if t["name"].startswith(self.slug) else t["name"]: t for t in tools}

    def test_honest_hints(self):
        tools = self.by_name(self.listing())
        for name in DESTRUCTIVE:
            self.assertIs(tools[name]["annotations"].get("destructiveHint"), True, name)
        for name in ADDITIVE:
            self.assertIs(tools[name]["annotations"]["destructiveHint"], False, name)
        self.assertEqual(tools["count"]["annotations"], {"readOnlyHint": True})
        self.assertIs(tools["write"]["annotations"].get("idempotentHint"), True)
        self.assertIs(tools["unlink"]["annotations"].get("idempotentHint"), True)
        self.assertNotIn("idempotentHint", tools["create"]["annotations"])
        self.assertNotIn("title", tools["count"])  # not sent for built-in tools: the tools/list budget

    def test_declared_title_and_hints(self):
        spec = self.env["ocore.mcp.toolset"]._ocore_tool_specs()["count"]
        meta = dataclasses.replace(spec.meta, title="Count records", open_world_hint=False, destructive_hint=True)
        declared = dataclasses.replace(spec, meta=meta)
        self.assertEqual(annotations.title_of(declared), "Count records")
        self.assertEqual(annotations.annotations_of(declared), {"readOnlyHint": True, "openWorldHint": False})
        for version, where in (("2025-06-18", "top"), ("2025-03-26", "annotations")):
            conn = Connection(key=self.key, scope=None, settings=self.settings, transport="stream",
                              protocol_version=version)
            definition = self.server._ocore_tool_definition("x_count", declared, conn)
            holder = definition if where == "top" else definition["annotations"]
            self.assertEqual(holder["title"], "Count records", version)

    def test_read_only_key_and_writes_off_list_no_write_tool(self):
        everything = set(self.by_name(self.listing()))
        ro_key, _secret = self.keys._ocore_create_key("annotations ro", self.admin, read_only=True)
        for names in (set(self.by_name(self.listing(key=ro_key))),
                      set(self.by_name(self.listing(write_enabled=False)))):
            self.assertFalse({"write", "create", "unlink", "batch_update", "set_system_parameter", "install_module",
                              "file_write"} & names)
            # read tools, and tools some of whose calls only read, stay
            self.assertTrue({"search_read", "count", "execute_method", "execute_sql"} <= names)
            self.assertLess(len(names), len(everything))
