"""A forwarded call keeps the instance's untrusted-data marking: the instance names the parts of its answer that
hold what anyone wrote in ``_meta["io.ocore/untrustedData"]`` (structuredContent carries no tags); the control plane
passes that entry on, and nothing else of the instance's ``_meta``."""

import json
from http.server import BaseHTTPRequestHandler

from odoo.tests import TransactionCase, tagged

from odoo.addons.ocore_mcp.lib.shaping import UNTRUSTED_META_KEY
from odoo.addons.ocore_mcp.service.context import Connection

from .common import LocalServer, member_with_instance, send_json

MARKING = {"boundary": "untrusted-data-" + "ab" * 16, "parts": ["content", "structuredContent"]}


class _Instance(LocalServer):
    """An HTTP server answering every JSON-RPC POST with a tools/call result that carries a marking (what an
    ocore_mcp instance answers) and one more _meta entry."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                result = {"content": [{"type": "text", "text": "marked text"}], "structuredContent": {"name": "x"},
                          "isError": False, "_meta": {UNTRUSTED_META_KEY: MARKING, "io.example/other": "dropped"}}
                send_json(self, {"jsonrpc": "2.0", "id": request.get("id"), "result": result})

            def log_message(self, *args):
                pass

        self.serve(Handler)


@tagged("post_install", "-at_install")
class TestForwardMarking(TransactionCase):
    def setUp(self):
        super().setUp()
        self.remote = _Instance()
        self.addCleanup(self.remote.close)
        _user, self.org, self.instance, self.key = member_with_instance(self.env, "marking", self.remote.url)

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
