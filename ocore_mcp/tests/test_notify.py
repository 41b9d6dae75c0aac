import base64
import json
import os
import queue

from odoo.tests import TransactionCase, tagged

from ..lib import protocol as P
from ..service import notify
from .common import McpToolCase


@tagged("post_install", "-at_install")
class TestNotifyEncoding(TransactionCase):
    """The three ways a message reaches a stream through NOTIFY: inline, compressed, stored."""

    def roundtrip(self, message):
        hub = notify.Hub()
        q = queue.Queue()
        hub._queues[("db", "sid")] = {q}
        text, stored = notify.encode("sid", {"t": "msg", "m": message})
        if stored is not None:
            return None, stored
        self.assertLessEqual(len(text.encode()), 8000, "NOTIFY payloads are limited to 8000 bytes")
        hub._dispatch("db", notify.decode(text))
        kind, received = q.get_nowait()
        self.assertEqual(kind, "message")
        self.assertIsInstance(received, str, "a message reaches the stream as the JSON text its sender wrote")
        return text.split("\t", 1)[0], json.loads(received)

    def test_small_message_inline(self):
        message = {"jsonrpc": "2.0", "id": 1, "result": {"ok": True, "text": "tab\there, line\nthere, é"}}
        self.assertEqual(self.roundtrip(message), ("m", message))

    def test_large_compressible_message_compressed(self):
        rows = [{"id": i, "name": f"Partner {i}", "email": f"p{i}@example.com"} for i in range(300)]
        message = {"jsonrpc": "2.0", "id": 2, "result": {"structuredContent": {"records": rows}}}
        self.assertGreater(len(json.dumps(message)), 10000)
        self.assertEqual(self.roundtrip(message), ("z", message))

    def test_large_incompressible_message_stored(self):
        noise = base64.b64encode(os.urandom(9000)).decode()
        message = {"jsonrpc": "2.0", "id": 3, "result": {"text": noise}}
        kind, stored = self.roundtrip(message)
        self.assertIsNone(kind)
        self.assertEqual(json.loads(stored), message)

    def test_cancellations_are_not_messages(self):
        text, stored = notify.encode("sid", {"t": "cancel", "r": 7})
        self.assertIsNone(stored)
        self.assertEqual(notify.decode(text), {"t": "cancel", "r": 7, "s": "sid"})

    def test_local_delivery_is_the_json_text(self):
        """A stream held by the publishing process gets the message at commit, serialised once."""
        hub = notify.Hub()
        q = queue.Queue()
        hub._queues[(self.env.cr.dbname, "sid")] = {q}
        message = {"jsonrpc": "2.0", "id": 4, "result": {"ok": True}}
        hub.publish(self.env.cr, "sid", {"t": "msg", "m": message})
        self.assertTrue(q.empty(), "delivered at commit, not before")
        self.env.cr.postcommit.run()
        kind, received = q.get_nowait()
        self.assertEqual((kind, json.loads(received)), ("message", message))
        self.assertEqual(P.sse_event(received), P.sse_event(message))


@tagged("post_install", "-at_install")
class TestToolsListWire(McpToolCase):
    """tools/list answers are written with the JSON text cached with each tool: the same bytes as plain JSON."""

    def test_cached_json_equals_plain_json(self):
        for version in ("2024-11-05", "2025-11-25", "2026-07-28"):
            conn = self.conn()
            conn.protocol_version = version
            params = {"_meta": {P.PROTOCOL_VERSION_META_KEY: version, P.CLIENT_CAPABILITIES_META_KEY: {}}}
            msg = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params if P.is_modern(version) else {}}
            for _ in range(2):  # the first answer fills the cache, the second comes from it
                reply = self.server._ocore_handle(conn, msg)
                tools = reply["result"]["tools"]
                self.assertIsInstance(tools, P.WireTools)
                self.assertIn(f"{self.slug}_search_read", {t["name"] for t in tools})
                self.assertEqual(P.dumps(reply), json.dumps(reply, separators=(",", ":"), default=str), version)
