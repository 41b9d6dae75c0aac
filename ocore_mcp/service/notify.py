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

Nothing is lost while a listener reconnects (the bus's lesson): every payload that crosses processes is
also a row of ``ocore_mcp_message``, written by the same statement as its NOTIFY, which carries the row's
id. A NOTIFY committed while no connection listens (PostgreSQL restarting, the listening backend killed)
reaches nobody; the listener, once listening again, reads the rows created since it was last known to
listen and dispatches those it has not dispatched yet. Odoo's autovacuum deletes the rows after
``RETENTION_SECONDS`` (``ocore.mcp.message``); a stored (too large) message's row goes as soon as its
stream reads it. The listeners stop with the server (``CommonServer.on_stop``, as the bus's dispatcher):
their streams get a close event.
"""

import base64
import json
import logging
import os
import queue
import select
import threading
import time
import zlib

import psycopg2

from odoo import sql_db
from odoo.service.server import CommonServer
from odoo.tools import SQL

from ..lib import compat, protocol

_logger = logging.getLogger(__name__)

CHANNEL = "ocore_mcp"
INLINE_MAX = 7000
APPLICATION_NAME = "ocore_mcp_listener"  # the listening connections, as pg_stat_activity shows them
KEEPALIVE_SECONDS = 30
RETENTION_SECONDS = 3600  # rows older than this are deleted by the autovacuum
# A reconnecting listener replays the rows created since it was last known to listen, minus this margin: a
# row's create_date is the clock time of its INSERT, a little before its transaction commits (and notifies).
REPLAY_MARGIN_SECONDS = 30
SEEN_SECONDS = 180  # how long a listener remembers the rows it dispatched (> keepalive + margin)


def ensure_table(cr):
    cr.execute(
        """CREATE TABLE IF NOT EXISTS ocore_mcp_message (
               id bigserial PRIMARY KEY,
               session_id varchar NOT NULL,
               payload text NOT NULL,
               create_date timestamp without time zone NOT NULL DEFAULT (now() at time zone 'UTC'));
           ALTER TABLE ocore_mcp_message ADD COLUMN IF NOT EXISTS kind varchar NOT NULL DEFAULT 'msg';
           CREATE INDEX IF NOT EXISTS ocore_mcp_message_create_date_index ON ocore_mcp_message (create_date)"""
    )


def encode(session_id, payload):
    """(NOTIFY text, None) for ``payload``, or (None, the message's JSON text to store) when it does not fit in
    NOTIFY's 8 KB even compressed: the sender stores it in ``ocore_mcp_message`` and notifies a reference.

    A message travels as its JSON text, serialised once by the sender and written as is to the stream:
    ``m<TAB>session<TAB>json`` inline, ``z<TAB>session<TAB>base64(zlib(json))`` compressed. Other payloads
    (cancel, close, ref) are JSON objects. The publisher prefixes the text with ``<row id><TAB>``.
    """
    if payload.get("t", "msg") != "msg":
        return json.dumps(dict(payload, s=session_id), separators=(",", ":"), default=str), None
    text = protocol.message_text(payload["m"])
    if len(text) + len(session_id) + 2 <= INLINE_MAX:
        return f"m\t{session_id}\t{text}", None
    packed = base64.b64encode(zlib.compress(text.encode(), 1)).decode()
    if len(packed) + len(session_id) + 2 <= INLINE_MAX:
        return f"z\t{session_id}\t{packed}", None
    return None, text


def decode(note):
    """The payload of a NOTIFY text (see :func:`encode`); a message's ``m`` is its JSON text, ``i`` the id of
    its row when the text starts with one."""
    message_id = None
    if note[:1].isdigit():
        head, note = note.split("\t", 1)
        message_id = int(head)
    if note.startswith("{"):
        payload = json.loads(note)
    else:
        kind, session_id, data = note.split("\t", 2)
        if kind == "z":
            data = zlib.decompress(base64.b64decode(data)).decode()
        payload = {"t": "msg", "s": session_id, "m": data}
    if message_id is not None:
        payload["i"] = message_id
    return payload


def row_payload(message_id, session_id, kind, payload):
    """The payload of a row of ``ocore_mcp_message`` (replayed), in :func:`decode`'s shape."""
    if kind == "msg":
        return {"t": "msg", "s": session_id, "m": payload, "i": message_id}
    return {**json.loads(payload), "s": session_id, "i": message_id}


class _DbListener:
    def __init__(self, hub, dbname):
        self.hub = hub
        self.dbname = dbname
        self.ready = threading.Event()
        self.listening_at = None  # database time when the connection was last known to listen
        self.thread = threading.Thread(target=self._loop, name=f"ocore-mcp-listen-{dbname}", daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.hub.stopping.is_set():
            try:
                self._listen()
            except Exception:  # noqa: BLE001 - reconnect on any failure (e.g. PostgreSQL restart)
                self.ready.clear()
                if self.hub.stopping.is_set():
                    break
                _logger.warning("MCP listener for %s lost its connection; reconnecting", self.dbname, exc_info=True)
                self.hub.stopping.wait(1)
        self.ready.clear()

    def _checkpoint(self, cr):
        """The database time (the connection listens now); the transaction ended: PostgreSQL delivers no
        NOTIFY to a session while it is inside a transaction (the stream would go silent for good)."""
        cr.execute("SELECT now() at time zone 'UTC'")
        listening_at = cr.fetchone()[0]
        cr.commit()  # pylint: disable=invalid-commit  # NOTIFY only arrives between transactions
        return listening_at

    def _listen(self):
        with sql_db.db_connect(self.dbname).cursor() as cr:
            conn = cr._cnx
            cr.execute(SQL("SET application_name = %s; LISTEN %s", APPLICATION_NAME, SQL.identifier(CHANNEL)))
            cr.commit()  # pylint: disable=invalid-commit  # LISTEN takes effect on commit
            missed_since, self.listening_at = self.listening_at, self._checkpoint(cr)
            if missed_since is not None:  # a reconnection: what was published meanwhile reached nobody
                self.hub._replay(cr, self.dbname, missed_since)
                self.hub._changed_while_away(cr, self.dbname)
                cr.commit()  # pylint: disable=invalid-commit  # back between transactions (NOTIFY)
            self.ready.set()
            wakeup = self.hub.wakeup_fd()
            while not self.hub.stopping.is_set():
                readable = select.select([conn, wakeup], [], [], KEEPALIVE_SECONDS)[0]
                if not readable:
                    self.listening_at = self._checkpoint(cr)  # keep the connection checked
                    continue
                if conn not in readable:
                    continue  # woken up: the server stops
                conn.poll()
                while conn.notifies:
                    note = conn.notifies.pop(0)
                    try:
                        self.hub._dispatch(self.dbname, decode(note.payload))
                    except Exception:  # noqa: BLE001
                        _logger.exception("bad MCP notification payload")


class _Deliverer:
    """The thread that turns the record changes a listener received into notifications for this process's
    streams (batched: a burst of writes is checked with one cursor)."""

    BATCH_SECONDS = 0.05

    def __init__(self, hub, dbname):
        self.hub = hub
        self.dbname = dbname
        self.pending = set()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"ocore-mcp-deliver-{dbname}", daemon=True)
        self.thread.start()

    def add(self, table, res_id):
        with self.lock:
            self.pending.add((table, res_id))
        self.wake.set()

    def _loop(self):
        while not self.hub.stopping.is_set():
            if not self.wake.wait(KEEPALIVE_SECONDS):
                continue
            time.sleep(self.BATCH_SECONDS)
            with self.lock:
                self.wake.clear()
                changes, self.pending = self.pending, set()
            if not changes:
                continue
            try:
                self.hub._deliver(self.dbname, changes)
            except Exception:  # noqa: BLE001 - a failed batch must not end the thread
                _logger.exception("could not deliver MCP resource updates for %s", self.dbname)


class Hub:
    def __init__(self):
        self._lock = threading.Lock()
        self._listeners = {}
        self._queues = {}  # (dbname, session_id) -> set(queue)
        self._calls = {}  # (dbname, session_id, request_id) -> Deadline
        self._answers = {}  # (dbname, session_id, request id of ours) -> queue: a client's response awaited here
        self._seen = {}  # dbname -> {row id: monotonic time of its dispatch}
        self._deliverers = {}  # dbname -> _Deliverer (record changes for this process's subscriptions)
        self.stopping = threading.Event()
        self._wakeup = None  # a pipe whose read end the listeners watch: written to stop them now

    def wakeup_fd(self):
        with self._lock:
            if self._wakeup is None:
                self._wakeup = os.pipe()
            return self._wakeup[0]

    def stop(self):
        """Stop the listeners and end the streams of this process (the server stops)."""
        self.stopping.set()
        self.wakeup_fd()
        os.write(self._wakeup[1], b"x")  # the pipe stays readable: every listener wakes up
        with self._lock:
            queues = [q for qs in self._queues.values() for q in qs]
            listeners = list(self._listeners.values())
        for q in queues:
            q.put(("close", "the server is stopping"))
        for listener in listeners:
            listener.thread.join(timeout=KEEPALIVE_SECONDS + 5)

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

    def expect_answer(self, dbname, session_id, request_id):
        """(entry, queue): the client's response to our request ``request_id`` (published by whichever worker
        receives it, ``t`` "answer") is put on the queue (models/mcp_approval.py: a call waiting for the human)."""
        self._ensure_listener(dbname)  # listening before the request leaves: the answer cannot be missed
        entry = (dbname, session_id, json.dumps(request_id))
        answers = queue.Queue()
        with self._lock:
            self._answers[entry] = answers
        return entry, answers

    def drop_answer(self, entry):
        with self._lock:
            self._answers.pop(entry, None)

    def _replay(self, cr, dbname, since):
        """Dispatch the rows created since ``since`` (minus the margin) for the streams and calls of this
        process that it has not dispatched yet: their NOTIFY may have been sent while nothing listened."""
        with self._lock:
            sessions = {sid for (db, sid) in self._queues if db == dbname}
            sessions |= {sid for (db, sid, _request) in self._calls if db == dbname}
            sessions |= {sid for (db, sid, _request) in self._answers if db == dbname}
        if not sessions:
            return 0
        cr.execute(
            """SELECT id, session_id, kind, payload FROM ocore_mcp_message
                WHERE create_date >= %s - make_interval(secs => %s) AND session_id = ANY(%s) ORDER BY id""",
            (since, REPLAY_MARGIN_SECONDS, sorted(sessions)),
        )
        replayed = sum(1 for row in cr.fetchall() if self._dispatch(dbname, row_payload(*row)))
        if replayed:
            _logger.info("MCP listener for %s: replayed %s message(s) published while it reconnected", dbname,
                         replayed)
        return replayed

    def _first_dispatch(self, dbname, message_id):
        """False when the row ``message_id`` was dispatched here already (a replay after its NOTIFY)."""
        if message_id is None:
            return True
        now = time.monotonic()
        with self._lock:
            seen = self._seen.setdefault(dbname, {})
            if message_id in seen:
                return False
            seen[message_id] = now
            if len(seen) > 1000 and next(iter(seen.values())) < now - SEEN_SECONDS:
                for key in [key for key, at in seen.items() if at < now - SEEN_SECONDS]:
                    del seen[key]
        return True

    def _dispatch(self, dbname, payload):
        """Hand a payload to this process's streams (or cancel its call); False if it was dispatched already."""
        if not self._first_dispatch(dbname, payload.get("i")):
            return False
        session_id = payload.get("s")
        kind = payload.get("t")
        if kind == "chg":  # a subscribed record changed (the table's trigger, at its writer's commit)
            self._changed(dbname, payload.get("tb"), payload.get("id"))
            return True
        if kind == "cancel":
            with self._lock:
                deadline = self._calls.get((dbname, session_id, json.dumps(payload.get("r"))))
            if deadline is not None:
                deadline.cancel_now()
            return True
        if kind == "answer":
            with self._lock:
                answers = self._answers.get((dbname, session_id, json.dumps(payload.get("r"))))
            if answers is not None:
                answers.put(payload.get("m"))
            return True
        with self._lock:
            queues = list(self._queues.get((dbname, session_id), ()))
        if not queues:
            return True
        if kind == "ref":
            message = self._fetch(dbname, payload.get("id") or payload["i"])
            if message is None:
                return True
        elif kind == "close":
            message = None
        else:
            message = payload.get("m")
        for q in queues:
            q.put(("close", payload.get("why")) if kind == "close" else ("message", message))
        return True

    # -- record changes (resource subscriptions) -------------------------------------------

    def _changed(self, dbname, table, res_id):
        """Queue a changed record for the delivery thread of ``dbname`` (only when this process holds
        streams of that database: the subscriptions' checks need a cursor, never the listener's)."""
        if not isinstance(table, str) or not isinstance(res_id, int):
            return
        with self._lock:
            if not any(db == dbname for (db, _sid) in self._queues):
                return
            deliverer = self._deliverers.get(dbname)
            if deliverer is None or not deliverer.thread.is_alive():
                deliverer = self._deliverers[dbname] = _Deliverer(self, dbname)
        deliverer.add(table, res_id)

    def _changed_while_away(self, cr, dbname):
        """After a reconnection: the record changes committed meanwhile were notified to nobody and are not
        stored (the triggers only NOTIFY), so every record this process's streams subscribe to is reported as
        updated — a subscriber re-reads a record that may not have changed rather than keep a stale one. The
        delivery checks (valid key, read access) apply as for any change."""
        with self._lock:
            channels = sorted({sid for (db, sid) in self._queues if db == dbname})
        if not channels:
            return 0
        cr.execute("SELECT to_regclass('ocore_mcp_subscription') IS NOT NULL")
        if not cr.fetchone()[0]:
            return 0
        cr.execute(
            "SELECT DISTINCT res_table, res_id FROM ocore_mcp_subscription "
            "WHERE kind = 'resource' AND res_table IS NOT NULL AND channel = ANY(%s)",
            (channels,),
        )
        rows = cr.fetchall()
        for table, res_id in rows:
            self._changed(dbname, table, res_id)
        if rows:
            _logger.info("MCP listener for %s: %s subscribed record(s) reported as updated after it reconnected",
                         dbname, len(rows))
        return len(rows)

    def _deliver(self, dbname, changes):
        """Hand ``notifications/resources/updated`` to the streams of this process that subscribed to the
        changed records and may still read them (``ocore.mcp.subscription._ocore_deliveries``)."""
        from odoo import SUPERUSER_ID, api  # noqa: PLC0415 - the ORM only in the delivery thread
        from odoo.modules.registry import Registry  # noqa: PLC0415

        with self._lock:
            channels = {sid for (db, sid) in self._queues if db == dbname}
        if not channels:
            return 0
        registry = Registry(dbname)
        with registry.cursor() as cr:
            compat.check_signaling(registry, cr)  # outside a request nothing refreshes this process's caches
            env = api.Environment(cr, SUPERUSER_ID, {})
            if "ocore.mcp.subscription" not in env:
                return 0
            deliveries = env["ocore.mcp.subscription"]._ocore_deliveries(changes, channels)
        for channel, message in deliveries:
            with self._lock:
                queues = list(self._queues.get((dbname, channel), ()))
            text = protocol.message_text(message)
            for q in queues:
                q.put(("message", text))
        return len(deliveries)

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
        the POSTs land on HTTP workers), the message is queued at commit, without the round trip through
        PostgreSQL. Otherwise the payload becomes a row of ``ocore_mcp_message`` and a NOTIFY that
        carries the row's id (and the payload itself when it fits), in one statement.
        """
        kind = payload.get("t", "msg")
        if kind == "msg":
            with self._lock:
                queues = list(self._queues.get((cr.dbname, session_id), ()))
            if queues:
                text = protocol.message_text(payload["m"])
                cr.postcommit.add(lambda: [q.put(("message", text)) for q in queues])
                return
        text, stored = encode(session_id, payload)
        if kind != "msg":
            row = json.dumps({k: v for k, v in payload.items() if k != "s"}, separators=(",", ":"), default=str)
        elif stored is not None:  # too large for NOTIFY even compressed: the listener reads the row
            row, text = stored, json.dumps({"t": "ref", "s": session_id}, separators=(",", ":"))
        else:
            row = protocol.message_text(payload["m"])
        cr.execute(
            """WITH m AS (INSERT INTO ocore_mcp_message (session_id, kind, payload, create_date)
                          VALUES (%s, %s, %s, clock_timestamp() at time zone 'UTC') RETURNING id)
               SELECT pg_notify(%s, m.id || E'\\t' || %s) FROM m""",
            (session_id, kind, row, CHANNEL, text),
        )

    def publish_now(self, dbname, session_id, payload):
        """NOTIFY right away on a short-lived connection (progress during a call)."""
        try:
            with sql_db.db_connect(dbname).cursor() as cr:
                self.publish(cr, session_id, payload)
                cr.commit()  # pylint: disable=invalid-commit  # own cursor: NOTIFY is sent on commit
        except psycopg2.Error:
            _logger.warning("could not publish MCP notification", exc_info=True)


hub = Hub()
CommonServer.on_stop(hub.stop)  # as the bus's dispatcher: the listeners end with the server
