import json

from odoo.tests import tagged

from odoo.addons.ocore_mcp.service.context import Connection

from .test_knowledge import KnowledgeCase


@tagged("post_install", "-at_install")
class TestKnowledgeResources(KnowledgeCase):
    def request(self, method, params, key=None):
        conn = Connection(key=key or self.key, scope=None, settings=self.settings, transport="stream",
                          protocol_version="2025-06-18")
        return self.server._ocore_handle(conn, {"jsonrpc": "2.0", "id": 5, "method": method, "params": params})

    def test_context_and_notes_as_resources(self):
        self.note(title="Partners are customers", target_type="model", target_model="res.partner")
        listed = self.request("resources/list", {})["result"]["resources"]
        self.assertIn("odoo://knowledge/context", {r["uri"] for r in listed})
        templates = self.request("resources/templates/list", {})["result"]["resourceTemplates"]
        self.assertIn("odoo://knowledge/notes/{model}", {t["uriTemplate"] for t in templates})
        reply = self.request("resources/read", {"uri": "odoo://knowledge/notes/res.partner"})
        notes = json.loads(reply["result"]["contents"][0]["text"])
        self.assertIn("Partners are customers", json.dumps(notes))
        self.assertNotIn("error", self.request("resources/read", {"uri": "odoo://knowledge/context"}))
        # another company's key does not see the note
        other = self.request("resources/read", {"uri": "odoo://knowledge/notes/res.partner"}, key=self.key_b)
        self.assertNotIn("Partners are customers", json.dumps(other))
        row = self.env["ocore.mcp.audit.log"].sudo().search(
            [("event", "=", "resource"), ("tool_name", "=", "odoo://knowledge/notes/res.partner")], limit=1)
        self.assertEqual(row.tool, "list_notes")

    def test_saved_filter_names_complete(self):
        self.ok("save_filter", {"name": "Belgian customers", "model": "res.partner",
                                "domain": [["country_id.code", "=", "BE"]]})
        self.ok("save_filter", {"name": "Big orders", "model": "res.partner", "domain": []})
        completion = self.env["ocore.mcp.completion"]
        conn = Connection(key=self.key, scope=None, settings=self.settings, transport="stream",
                          protocol_version="2025-06-18")
        env = self.server._ocore_tool_env(conn, None)
        self.assertEqual(completion._ocore_complete_argument(conn, env, "filter", "bel", {}), ["Belgian customers"])
        conn_b = Connection(key=self.key_b, scope=None, settings=self.settings, transport="stream",
                            protocol_version="2025-06-18")
        env_b = self.server._ocore_tool_env(conn_b, None)
        self.assertEqual(completion._ocore_complete_argument(conn_b, env_b, "filter", "bel", {}), [])
