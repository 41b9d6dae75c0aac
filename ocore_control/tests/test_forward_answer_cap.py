"""An instance's answer is read up to a cap (lib/http.py: MAX_CALL_BYTES for a tools/call, MAX_LIST_BYTES for a
tools/list page), in chunks, whatever its framing (Content-Length, chunked, none or an invalid one: until the
server closes): past it the connection is closed and the rest never read, the call fails as an instance error
("instance X answered more than N MB") and its audit row says so, as for the other instance errors."""

import json
import threading
from http.server import BaseHTTPRequestHandler

from odoo.tests import TransactionCase, tagged

from odoo.addons.ocore_mcp.service.context import Connection

from ..lib import http
from ..models.control_instance import InstanceError, mcp_request
from .common import LocalServer, member_with_instance

MB = 1024 * 1024


class _Instance(LocalServer):
    """An HTTP server answering every POST with a JSON-RPC answer of ``self.size`` bytes framed as ``self.mode``
    says (length, announced: a Content-Length past the cap, chunked, close: no length, invalid: a Content-Length
    that is not a number); it counts the bytes it managed to send."""

    def __init__(self):
        self.mode, self.size, self.sent, self.cut = "length", 0, [], 0
        instance = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                head = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": {
                    "content": [{"type": "text", "text": "x"}], "isError": False, "padding": ""}})[:-3].encode()
                tail = b'"}}'
                pad = max(0, instance.size - len(head) - len(tail))
                mode = instance.mode
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if mode == "length":
                    self.send_header("Content-Length", str(len(head) + pad + len(tail)))
                elif mode == "announced":
                    self.send_header("Content-Length", str(200 * MB))
                elif mode == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                elif mode == "invalid":
                    self.send_header("Content-Length", "lots")
                if mode != "chunked":
                    self.send_header("Connection", "close")
                self.end_headers()
                sent = 0
                try:
                    for part in self.parts(head, pad, tail):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if mode == "chunked" else part)
                        sent += len(part)
                    if mode == "chunked":
                        self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except OSError:  # the control plane closed the connection
                    instance.cut += 1
                instance.sent.append(sent)
                self.close_connection = True

            @staticmethod
            def parts(head, pad, tail):
                yield head
                while pad > 0:
                    part = min(pad, MB)
                    yield b"a" * part
                    pad -= part
                yield tail

            def log_message(self, *args):
                pass

        self.serve(Handler)


@tagged("post_install", "-at_install")
class TestForwardAnswerCap(TransactionCase):
    NAME = "remote_cap_search_read"

    def setUp(self):
        super().setUp()
        self.remote = _Instance()
        self.addCleanup(self.remote.close)
        _user, _org, _instance, self.key = member_with_instance(self.env, "cap", self.remote.url)
        self.server = self.env["ocore.mcp.server"]

    def forward(self):
        conn = Connection(key=self.key, scope=None, settings=self.server._ocore_settings(), transport="modern",
                          protocol_version="2026-07-28")
        org = self.server._ocore_control_org_route(conn)
        route = self.server._ocore_control_route_of(org, self.NAME)
        return self.server._ocore_control_forward(conn, org, route, self.NAME, {})

    def rows(self):
        return self.env["ocore.mcp.audit.log"].sudo().search([("key_id", "=", self.key.id)], order="id")

    def test_an_answer_under_the_cap_is_read_whatever_its_framing(self):
        self.remote.size = 3 * MB  # more than one chunk of the reader
        for mode in ("length", "chunked", "close", "invalid"):
            with self.subTest(mode=mode):
                self.remote.mode = mode
                result = self.forward()
                self.assertFalse(result.get("isError"), str(result)[:300])
                self.assertEqual(result["content"][0]["text"], "x")
                self.assertEqual(self.rows()[-1].status, "success")

    def test_an_answer_past_the_cap_fails_cleanly_and_is_not_read_further(self):
        cap = http.MAX_CALL_BYTES
        self.remote.size = cap + 160 * MB
        for mode in ("length", "announced", "chunked", "close", "invalid"):
            with self.subTest(mode=mode):
                self.remote.mode = mode
                before = len(self.remote.sent)
                result = self.forward()
                self.assertTrue(result["isError"])
                text = result["content"][0]["text"]
                self.assertIn(f"instance remote_cap answered more than {cap // MB} MB", text)
                row = self.rows()[-1]
                self.assertEqual((row.status, row.success, row.refusal_reason), ("error", False, "invalid_answer"))
                self.assertIn(f"answered more than {cap // MB} MB", row.error_message)
                # the server's writes failed once the control plane closed the connection: it stopped reading
                # (what the kernel's buffers took in is the margin)
                for _wait in range(100):
                    if len(self.remote.sent) > before:
                        break
                    threading.Event().wait(0.05)
                self.assertLess(self.remote.sent[-1], cap + 64 * MB, "the control plane read the whole answer")
        self.assertEqual(len(self.rows()), 5, "one row per call")

    def test_a_tools_list_page_has_a_smaller_cap(self):
        self.remote.mode = "chunked"
        self.remote.size = http.MAX_LIST_BYTES + MB
        with self.assertRaises(InstanceError) as caught:
            mcp_request(self.remote.url, "remote_cap", "tools/list", {}, "assertion", 10)
        self.assertEqual(caught.exception.kind, "invalid")
        self.assertIn(f"answered more than {http.MAX_LIST_BYTES // MB} MB", str(caught.exception))
        self.remote.size = http.MAX_LIST_BYTES - MB
        result = mcp_request(self.remote.url, "remote_cap", "tools/list", {}, "assertion", 10)
        self.assertEqual(result["content"][0]["text"], "x", "under the cap, the page is read")
