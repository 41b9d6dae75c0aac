"""restore_database / backup_database of a managed instance run through its server's agent, confirmed on the
control plane (models/mcp_server.py, ``_ocore_control_agent_tool``). On a key with "Human confirmation required",
``confirm: true`` is not enough and no "call again with confirm: true" is answered (it cannot help): the restore
waits for an approval of the key's owner (``ocore.mcp.approval``, MCP > Approvals), then the same call runs once;
a backup (not destructive) runs. Against a small HTTP server standing for the agent."""

from http.server import BaseHTTPRequestHandler

from odoo import Command
from odoo.tests import TransactionCase, tagged

from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.service.context import Connection
from .common import LocalServer, send_json


class _Agent(LocalServer):
    """An HTTP server answering every POST as the host agent does; it keeps the paths it got."""

    def __init__(self):
        self.paths = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                paths.append(self.path)
                send_json(self, {"ok": True})

            def log_message(self, *args):
                pass

        self.serve(Handler)


@tagged("post_install", "-at_install")
class TestAgentApproval(TransactionCase):
    def setUp(self):
        super().setUp()
        self.agent = _Agent()
        self.addCleanup(self.agent.close)
        env = self.env
        users = env["res.users"].with_context(no_reset_password=True)
        self.alice = users.create({"name": "Alice", "login": "alice_agent_ctl", compat.user_groups_field(users): [
            Command.set([env.ref("base.group_user").id, env.ref("ocore_mcp.group_mcp_user").id])]})
        org = env["ocore.control.organization"].create({
            "name": "Agent agency", "member_ids": [Command.create({"user_id": self.alice.id, "role": "owner"})]})
        host = env["ocore.control.server"].create({"name": "host-agent", "organization_id": org.id})
        host.action_generate_agent_secret()
        host.agent_url = self.agent.url
        instance = env["ocore.control.instance"].create({
            "name": "Managed", "slug": "managed_agent", "organization_id": org.id, "server_id": host.id,
            "environment": "staging", "url": "http://127.0.0.1:1", "status": "running"})
        instance.write({"credential_generation": 1, "credential_state": "active"})
        self.key, _secret = env["ocore.mcp.key"]._ocore_create_key("human key", self.alice, organization_id=org.id)
        self.key.human_confirmation = True
        self.server = env["ocore.mcp.server"]

    def forward(self, tool, arguments, capabilities=None):
        conn = Connection(key=self.key, scope=None, settings=self.server._ocore_settings(), transport="modern",
                          protocol_version="2026-07-28", client_capabilities=capabilities or {})
        name = f"managed_agent_{tool}"
        org = self.server._ocore_control_org_route(conn)
        return self.server._ocore_control_forward(conn, org, self.server._ocore_control_route_of(org, name), name,
                                                  dict(arguments))

    def rows(self):
        return self.env["ocore.mcp.audit.log"].sudo().search([("key_id", "=", self.key.id)], order="id")

    def test_restore_on_a_human_key_waits_for_an_approval_then_runs_once(self):
        arguments = {"backup": "nightly.dump", "confirm": True}
        for capabilities in (None, {"elicitation": {"form": {}}}):
            with self.subTest(capabilities=capabilities):
                result = self.forward("restore_database", arguments, capabilities)
                self.assertTrue(result["isError"])
                text = result["content"][0]["text"]
                self.assertNotIn("call again with confirm: true", text.lower(), "a refusal that cannot help")
                self.assertIn("MCP > Approvals", text)
                self.assertEqual(self.agent.paths, [], "nothing reached the agent")
                row = self.rows()[-1]
                self.assertEqual((row.status, row.refusal_reason), ("refused", "approval_pending"))
        approval = self.env["ocore.mcp.approval"].search([("key_id", "=", self.key.id)])
        self.assertEqual(len(approval), 1, "one pending approval for the same call")
        self.assertEqual((approval.state, approval.tool_name), ("pending", "managed_agent_restore_database"))
        self.assertIn("replaces the database of managed_agent", approval.description)
        approval.with_user(self.alice).action_approve()
        result = self.forward("restore_database", arguments)
        self.assertFalse(result["isError"], result)
        self.assertEqual(self.agent.paths, ["/v1/instances/managed_agent/restore"])
        row = self.rows()[-1]
        self.assertEqual((row.status, row.confirmation), ("success", f"approval #{approval.id}"))
        self.assertEqual(approval.state, "executed")
        again = self.forward("restore_database", arguments)
        self.assertTrue(again["isError"], "an approval runs the call once")
        self.assertEqual(len(self.agent.paths), 1)

    def test_backup_on_a_human_key_runs_with_confirm(self):
        result = self.forward("backup_database", {"confirm": True})
        self.assertFalse(result["isError"], result)
        self.assertEqual(self.agent.paths, ["/v1/instances/managed_agent/backup"])

    def test_restore_without_human_confirmation_still_needs_confirm(self):
        self.key.human_confirmation = False
        result = self.forward("restore_database", {"backup": "nightly.dump"})
        self.assertIn("Call again with confirm: true", result["content"][0]["text"])
        self.assertEqual(self.agent.paths, [])
        self.assertFalse(self.forward("restore_database", {"backup": "nightly.dump", "confirm": True})["isError"])
        self.assertEqual(len(self.agent.paths), 1)
