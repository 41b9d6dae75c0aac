import base64
import json
import os
import queue
import time

from odoo.service.server import CommonServer
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
class TestNotifyReplayAndCleanup(TransactionCase):
    """The bus's lessons: what crosses processes is kept (a listener that reconnects replays what it missed,
    once), old rows are vacuumed, and the listeners stop with the server."""

    def rows(self, session_id):
        self.env.cr.execute("SELECT id, kind, payload FROM ocore_mcp_message WHERE session_id = %s ORDER BY id",
                            (session_id,))
        return self.env.cr.fetchall()

    def test_published_payloads_are_rows_and_their_notify_carries_the_id(self):
        message = {"jsonrpc": "2.0", "id": 5, "result": {"ok": True}}
        notify.Hub().publish(self.env.cr, "sid-rows", {"t": "msg", "m": message})
        notify.Hub().publish(self.env.cr, "sid-rows", {"t": "cancel", "r": 9})
        (first, kind, payload), (second, kind2, payload2) = self.rows("sid-rows")
        self.assertEqual((kind, json.loads(payload)), ("msg", message))
        self.assertEqual((kind2, json.loads(payload2)), ("cancel", {"t": "cancel", "r": 9}))
        self.assertEqual(notify.decode(f"{first}\t" + notify.encode("sid-rows", {"t": "msg", "m": message})[0]),
                         {"t": "msg", "s": "sid-rows", "m": P.message_text(message), "i": first})
        self.assertEqual(notify.row_payload(second, "sid-rows", kind2, payload2),
                         {"t": "cancel", "r": 9, "s": "sid-rows", "i": second})

    def test_reconnected_listener_replays_what_it_missed_once(self):
        cr = self.env.cr
        cr.execute("SELECT now() at time zone 'UTC'")
        listening_at = cr.fetchone()[0]  # when the listener was last known to listen
        publisher, receiver = notify.Hub(), notify.Hub()  # two processes
        stream = queue.Queue()
        receiver._queues[(cr.dbname, "sid-replay")] = {stream}
        messages = [{"jsonrpc": "2.0", "id": i, "result": {"n": i}} for i in range(3)]
        noise = base64.b64encode(os.urandom(9000)).decode()
        messages.append({"jsonrpc": "2.0", "id": 3, "result": {"text": noise}})  # too large for NOTIFY
        for message in messages:
            publisher.publish(cr, "sid-replay", {"t": "msg", "m": message})
        publisher.publish(cr, "sid-other", {"t": "msg", "m": messages[0]})  # not a stream of this process
        ids = [row[0] for row in self.rows("sid-replay")]
        # the first one's NOTIFY arrived before the connection was lost
        receiver._dispatch(cr.dbname, notify.row_payload(ids[0], "sid-replay", "msg", P.message_text(messages[0])))
        self.assertEqual(receiver._replay(cr, cr.dbname, listening_at), 3)
        received = [json.loads(stream.get_nowait()[1]) for _ in range(4)]
        self.assertEqual(received, messages)
        self.assertTrue(stream.empty())
        # a NOTIFY that arrives after the replay (its transaction committed late) is not delivered twice
        receiver._dispatch(cr.dbname, notify.decode(f"{ids[1]}\t" + notify.encode(
            "sid-replay", {"t": "msg", "m": messages[1]})[0]))
        self.assertTrue(stream.empty())
        self.assertEqual(receiver._replay(cr, cr.dbname, listening_at), 0)

    def test_old_rows_are_vacuumed(self):
        cr = self.env.cr
        notify.Hub().publish(cr, "sid-gc", {"t": "close", "why": "old"})
        notify.Hub().publish(cr, "sid-gc", {"t": "close", "why": "recent"})
        old = self.rows("sid-gc")[0][0]
        cr.execute("UPDATE ocore_mcp_message SET create_date = create_date - make_interval(secs => %s) WHERE id = %s",
                   (notify.RETENTION_SECONDS + 60, old))
        self.assertGreaterEqual(self.env["ocore.mcp.message"]._gc_messages(), 1)
        self.assertEqual([json.loads(row[2])["why"] for row in self.rows("sid-gc")], ["recent"])

    def test_listeners_stop_with_the_server(self):
        self.assertIn(notify.hub.stop, CommonServer._on_stop_funcs)
        hub = notify.Hub()
        stream = queue.Queue()
        hub._queues[(self.env.cr.dbname, "sid-stop")] = {stream}
        listener = hub._ensure_listener(self.env.cr.dbname)
        self.assertTrue(listener.ready.is_set() and listener.thread.is_alive())
        started = time.monotonic()
        hub.stop()
        self.assertFalse(listener.thread.is_alive())
        self.assertLess(time.monotonic() - started, 5, "woken up, not at the next keepalive")
        self.assertEqual(stream.get_nowait(), ("close", "the server is stopping"))


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
