"""Cross-process message delivery with PostgreSQL LISTEN/NOTIFY.

A legacy SSE stream is held by one process (normally the gevent worker)
while the POSTs of its session may land on any worker. The worker that
handles a POST publishes the JSON-RPC response with NOTIFY inside its own
transaction (delivered at COMMIT); each process that holds streams has one
listening connection per database, fanning messages out to per-session
queues, as Odoo's bus does. A message is serialised once, by its sender, and
written to the stream as that text. Payloads over NOTIFY's 8 KB limit travel
compressed when that fits (JSON compresses well: a page of records usually
does), else through the ``ocore_mcp_message`` table. The same channel carries cancellation requests
for in-flight calls.
"""

import base64
import json
import logging
import queue
import select
import threading
import time
import zlib

import psycopg2

from odoo import sql_db
from odoo.tools import SQL

from ..lib import protocol as P

_logger = logging.getLogger(__name__)

CHANNEL = "ocore_mcp"
INLINE_MAX = 7000


def ensure_table(cr):
    cr.execute(
        """CREATE TABLE IF NOT EXISTS ocore_mcp_message (
               id bigserial PRIMARY KEY,
               session_id varchar NOT NULL,
               payload text NOT NULL,
               create_date timestamp without time zone NOT NULL DEFAULT (now() at time zone 'UTC'))"""
    )


def encode(session_id, payload):
    """(NOTIFY text, None) for ``payload``, or (None, the message's JSON text to store) when it does not fit in
    NOTIFY's 8 KB even compressed: the sender stores it in ``ocore_mcp_message`` and notifies a reference.

    A message travels as its JSON text, serialised once by the sender and written as is to the stream:
    ``m<TAB>session<TAB>json`` inline, ``z<TAB>session<TAB>base64(zlib(json))`` compressed. Other payloads
    (cancel, close, ref) are JSON objects.
    """
    if payload.get("t", "msg") != "msg":
        return json.dumps(dict(payload, s=session_id), separators=(",", ":"), default=str), None
    text = P.message_text(payload["m"])
    if len(text) + len(session_id) + 2 <= INLINE_MAX:
        return f"m\t{session_id}\t{text}", None
    packed = base64.b64encode(zlib.compress(text.encode(), 1)).decode()
    if len(packed) + len(session_id) + 2 <= INLINE_MAX:
        return f"z\t{session_id}\t{packed}", None
    return None, text


def decode(note):
    """The payload of a NOTIFY text (see :func:`encode`); a message's ``m`` is its JSON text."""
    if note.startswith("{"):
        return json.loads(note)
    kind, session_id, data = note.split("\t", 2)
    if kind == "z":
        data = zlib.decompress(base64.b64decode(data)).decode()
    return {"t": "msg", "s": session_id, "m": data}


class _DbListener:
    def __init__(self, hub, dbname):
        self.hub = hub
        self.dbname = dbname
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"ocore-mcp-listen-{dbname}", daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            try:
                self._listen()
            except Exception:  # noqa: BLE001 - reconnect on any failure (e.g. PostgreSQL restart)
                _logger.warning("MCP listener for %s lost its connection; reconnecting", self.dbname, exc_info=True)
                self.ready.clear()
                time.sleep(1)

    def _listen(self):
        with sql_db.db_connect(self.dbname).cursor() as cr:
            conn = cr._cnx
            cr.execute(SQL("LISTEN %s", SQL.identifier(CHANNEL)))
            cr.commit()  # pylint: disable=invalid-commit  # LISTEN takes effect on commit
            self.ready.set()
            self.hub._on_reconnect(self.dbname)
            while True:
                if select.select([conn], [], [], 30) == ([], [], []):
                    cr.execute("SELECT 1")  # keep the connection checked
                    # ... and end that transaction: PostgreSQL delivers no NOTIFY to a session
                    # while it is inside a transaction (the stream would go silent for good)
                    cr.commit()  # pylint: disable=invalid-commit  # NOTIFY only arrives between transactions
                    continue
                conn.poll()
                while conn.notifies:
                    note = conn.notifies.pop(0)
                    try:
                        self.hub._dispatch(self.dbname, decode(note.payload))
                    except Exception:  # noqa: BLE001
                        _logger.exception("bad MCP notification payload")


class Hub:
    def __init__(self):
        self._lock = threading.Lock()
        self._listeners = {}
        self._queues = {}  # (dbname, session_id) -> set(queue)
        self._calls = {}  # (dbname, session_id, request_id) -> Deadline

    # -- listening side ------------------------------------------------------

    def _ensure_listener(self, dbname, wait=True):
        with self._lock:
            listener = self._listeners.get(dbname)
            if listener is None or not listener.thread.is_alive():
                listener = self._listeners[dbname] = _DbListener(self, dbname)
        if wait:
            listener.ready.wait(10)
        return listener

    def subscribe(self, dbname, session_id):
        self._ensure_listener(dbname)
        q = queue.Queue()
        with self._lock:
            self._queues.setdefault((dbname, session_id), set()).add(q)
        return q

    def unsubscribe(self, dbname, session_id, q):
        with self._lock:
            queues = self._queues.get((dbname, session_id))
            if queues:
                queues.discard(q)
                if not queues:
                    del self._queues[(dbname, session_id)]

    def track_call(self, dbname, session_id, request_id, deadline):
        if request_id is None:
            return None
        # wait for LISTEN: a cancellation published before it would be lost (first call of a process)
        self._ensure_listener(dbname)
        entry = (dbname, session_id, json.dumps(request_id))
        with self._lock:
            self._calls[entry] = deadline
        return entry

    def untrack_call(self, entry):
        with self._lock:
            self._calls.pop(entry, None)

    def _on_reconnect(self, dbname):
        pass

    def _dispatch(self, dbname, payload):
        session_id = payload.get("s")
        kind = payload.get("t")
        if kind == "cancel":
            with self._lock:
                deadline = self._calls.get((dbname, session_id, json.dumps(payload.get("r"))))
            if deadline is not None:
                deadline.cancel_now()
            return
        with self._lock:
            queues = list(self._queues.get((dbname, session_id), ()))
        if not queues:
            return
        if kind == "ref":
            message = self._fetch(dbname, payload["id"])
            if message is None:
                return
        elif kind == "close":
            message = None
        else:
            message = payload.get("m")
        for q in queues:
            q.put(("close", payload.get("why")) if kind == "close" else ("message", message))

    def _fetch(self, dbname, message_id):
        with sql_db.db_connect(dbname).cursor() as cr:
            cr.execute("DELETE FROM ocore_mcp_message WHERE id = %s RETURNING payload", (message_id,))
            row = cr.fetchone()
            cr.commit()  # pylint: disable=invalid-commit  # own cursor: the message is consumed
        return row[0] if row else None

    # -- publishing side -----------------------------------------------------------

    def publish(self, cr, session_id, payload):
        """NOTIFY inside ``cr``'s transaction: delivered when it commits.

        A message (``t`` "msg") goes to the stream of a legacy SSE session, which exactly one process
        holds: when it is this one (a threaded server; in prefork the gevent worker holds the streams and
        the POSTs land on HTTP workers), the message is queued at commit, without the NOTIFY round trip.
        """
        if payload.get("t", "msg") == "msg":
            with self._lock:
                queues = list(self._queues.get((cr.dbname, session_id), ()))
            if queues:
                text = P.message_text(payload["m"])
                cr.postcommit.add(lambda: [q.put(("message", text)) for q in queues])
                return
        text, stored = encode(session_id, payload)
        if stored is not None:
            cr.execute(
                "INSERT INTO ocore_mcp_message (session_id, payload) VALUES (%s, %s) RETURNING id",
                (session_id, stored),
            )
            text = json.dumps({"t": "ref", "s": session_id, "id": cr.fetchone()[0]})
        cr.execute("SELECT pg_notify(%s, %s)", (CHANNEL, text))

    def publish_now(self, dbname, session_id, payload):
        """NOTIFY right away on a short-lived connection (progress during a call)."""
        try:
            with sql_db.db_connect(dbname).cursor() as cr:
                self.publish(cr, session_id, payload)
                cr.commit()  # pylint: disable=invalid-commit  # own cursor: NOTIFY is sent on commit
        except psycopg2.Error:
            _logger.warning("could not publish MCP notification", exc_info=True)


hub = Hub()
