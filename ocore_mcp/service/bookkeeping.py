"""The connections a call's bookkeeping statement runs on.

A call's rate-limit hit and its 'running' audit row are one statement, committed on its own before the tool
runs (``ocore.mcp.server._ocore_bookkeeping``). It runs here, on a connection of this process kept for it,
in autocommit, rather than on the request's connection: Odoo's pool sends ``DISCARD ALL`` every time it
lends a connection, which drops every cached plan, so on the request's connection the statement planned
again, each time, the rate-limit function's statements and the five foreign-key checks of the audit row
(about 1 ms of the 1.3 ms the statement took; 0.4 ms here).

Nothing another worker needs lives here: a connection is borrowed for one statement and given back; the
statement commits before it returns. The request's own transaction is committed before (a new snapshot
for the tool, which then sees the row and completes it, and no lock of the request that the statement
could wait for).
"""

import contextlib
import os
import select
import threading
import time

import psycopg2

from odoo import sql_db

MAX_IDLE = 8  # connections kept per process and database (more are closed when given back)
MAX_OPEN = 16  # bookkeeping statements at once per process: one more waits (a statement takes ~0.5 ms), so a
# burst never opens more connections than this beside Odoo's pool
IDLE_SECONDS = 600  # an idle connection older than this is closed (Odoo's pool does the same)

_lock = threading.Lock()
_idle = {}  # (pid, dbname) -> [(connection, given back at)]
_open_gate = threading.BoundedSemaphore(MAX_OPEN)  # gevent's own semaphore in the gevent worker


class ConnectionLost(psycopg2.OperationalError):
    """The bookkeeping connection died during its statement (PostgreSQL restarted, the backend was
    terminated): the call is refused like a request whose own connection died."""


def _connect(dbname):
    _name, info = sql_db.connection_info_for(dbname)
    cnx = psycopg2.connect(**info)
    cnx.autocommit = True
    return cnx


def _alive(cnx):
    """Whether an idle connection is still usable: a backend that ended (a restart, pg_terminate_backend)
    sent its last message and closed the socket, which is then readable; a live idle one sends nothing."""
    if cnx.closed:
        return False
    try:
        readable, _w, _x = select.select([cnx.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg2.Error):
        return False
    return not readable


def _borrow(dbname):
    key = (os.getpid(), dbname)  # a forked worker never uses its parent's connections
    now = time.monotonic()
    while True:
        with _lock:
            idle = _idle.get(key)
            cnx, since = idle.pop() if idle else (None, None)
        if cnx is None:
            return _connect(dbname)
        if now - since < IDLE_SECONDS and _alive(cnx):
            return cnx
        _close(cnx)


def _give_back(dbname, cnx):
    key = (os.getpid(), dbname)
    with _lock:
        idle = _idle.setdefault(key, [])
        if len(idle) < MAX_IDLE:
            idle.append((cnx, time.monotonic()))
            return
    _close(cnx)


def _close(cnx):
    with contextlib.suppress(psycopg2.Error):  # already broken: nothing to close
        cnx.close()


class Cursor:
    """What the bookkeeping code uses of a cursor: ``execute``, ``fetchone``, ``dbname``."""

    def __init__(self, dbname, cnx):
        self.dbname = dbname
        self._cursor = cnx.cursor()

    def execute(self, query, params=None):
        try:
            self._cursor.execute(query, params)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            if self._cursor.connection.closed:
                raise ConnectionLost(str(exc).strip() or "connection lost") from exc
            raise

    def fetchone(self):
        return self._cursor.fetchone()


class borrowed:  # noqa: N801 - used as a context manager, like contextlib's
    """``with borrowed(dbname) as cr:``: a cursor on a bookkeeping connection of this process, in
    autocommit (each statement commits on its own); the connection goes back to the process's idle ones
    unless the block failed (then it is closed: its state is unknown)."""

    def __init__(self, dbname):
        self.dbname = dbname
        self._cnx = None

    def __enter__(self):
        _open_gate.acquire()
        try:
            self._cnx = _borrow(self.dbname)
        except psycopg2.OperationalError as exc:
            _open_gate.release()
            raise ConnectionLost(str(exc).strip() or "cannot connect") from exc
        except BaseException:
            _open_gate.release()
            raise
        return Cursor(self.dbname, self._cnx)

    def __exit__(self, exc_type, exc, tb):
        cnx, self._cnx = self._cnx, None
        try:
            if exc_type is None and not cnx.closed:
                _give_back(self.dbname, cnx)
            else:
                _close(cnx)
        finally:
            _open_gate.release()
        return False
