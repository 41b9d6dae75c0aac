"""A forwarded call keeps the instance's untrusted-data marking: the instance names the parts of its answer that
hold what anyone wrote in ``_meta["io.ocore/untrustedData"]`` (structuredContent carries no tags); the control plane
passes that entry on, and nothing else of the instance's ``_meta``."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from odoo import Command
from odoo.tests import TransactionCase, tagged

from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.lib.shaping import UNTRUSTED_META_KEY
from odoo.addons.ocore_mcp.service.context import Connection

MARKING = {"boundary": "untrusted-data-" + "ab" * 16, "parts": ["content", "structuredContent"]}


class _Instance:
    """An HTTP server answering every JSON-RPC POST with a tools/call result that carries a marking (what an
    ocore_mcp instance answers) and one more _meta entry."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                result = {"content": [{"type": "text", "text": "marked text"}], "structuredContent": {"name": "x"},
                          "isError": False, "_meta": {UNTRUSTED_META_KEY: MARKING, "io.example/other": "dropped"}}
                body = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": result}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@tagged("post_install", "-at_install")
class TestForwardMarking(TransactionCase):
    def setUp(self):
        super().setUp()
        self.remote = _Instance()
        self.addCleanup(self.remote.close)
        env = self.env
        users = env["res.users"].with_context(no_reset_password=True)
        alice = users.create({"name": "Alice", "login": "alice_marking_ctl", compat.user_groups_field(users): [
            Command.set([env.ref("base.group_user").id, env.ref("ocore_mcp.group_mcp_user").id])]})
        self.org = env["ocore.control.organization"].create({
            "name": "Marking agency", "member_ids": [Command.create({"user_id": alice.id, "role": "owner"})]})
        self.instance = env["ocore.control.instance"].create({
            "name": "Remote", "slug": "remote_marking", "organization_id": self.org.id, "environment": "staging",
            "url": self.remote.url, "status": "running"})
        # enrolled (its credential active) as the enrolment would leave it, without contacting it
        self.instance.write({"credential_generation": 1, "credential_state": "active"})
        self.key, _secret = env["ocore.mcp.key"]._ocore_create_key("marking key", alice, organization_id=self.org.id)

    def test_forwarded_result_keeps_the_instance_marking(self):
        server = self.env["ocore.mcp.server"]
        settings = server._ocore_settings()
        conn = Connection(key=self.key, scope=None, settings=settings, transport="modern",
                          protocol_version="2026-07-28")
        org = server._ocore_control_org_route(conn)
        name = "remote_marking_search_read"
        route = server._ocore_control_route_of(org, name)
        self.assertTrue(route, "the instance is routed")
        result = server._ocore_control_forward(conn, org, route, name, {})
        self.assertFalse(result.get("isError"), result)
        self.assertEqual(result["structuredContent"], {"name": "x"})
        self.assertEqual((result.get("_meta") or {}).get(UNTRUSTED_META_KEY), MARKING,
                         "the instance's marking of structuredContent is lost on the way")
        self.assertNotIn("io.example/other", result.get("_meta") or {})
