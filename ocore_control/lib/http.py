"""A lean HTTP client for the control plane's requests to its instances (no Odoo, no requests' per-call
environment lookups): one connection per instance host and thread, kept open while the instance's server
allows it (a server behind a keep-alive proxy does; Odoo's own threaded server closes after each answer),
with TCP_NODELAY and the request sent in one write. ``connect`` opens the connection ahead of the request
(the instance's server accepts it and starts its handler while the control plane still writes its
bookkeeping)."""

import socket
import threading
from http.client import HTTPConnection, HTTPException, HTTPSConnection, RemoteDisconnected
from urllib.parse import urlsplit

_local = threading.local()
# errors of a reused connection that the server closed while it was idle: the request is sent again, once,
# on a new connection (it never reached the server)
STALE = (RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
CONNECT_TIMEOUT = 10
# most bytes read of an instance's answer: a tools/call result (the largest an instance returns by itself, an
# attachment or a report of 10 MiB, is about 27 MiB of JSON: its base64 text twice, as text and structured
# content), and a tools/list page; past it the connection is closed, the rest never read
MAX_CALL_BYTES = 64 * 1024 * 1024
MAX_LIST_BYTES = 8 * 1024 * 1024
CHUNK = 256 * 1024


class TooLarge(HTTPException):
    """An answer longer than the cap of its request (``limit`` bytes): not read further."""

    def __init__(self, limit):
        super().__init__(f"answered more than {limit // (1024 * 1024)} MB")
        self.limit = limit


class _NoDelay:
    def connect(self):
        result = super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return result


class _Http(_NoDelay, HTTPConnection):
    pass


class _Https(_NoDelay, HTTPSConnection):
    pass


def _target(url):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OSError(f"not an http(s) URL: {url[:200]}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, parts.port), path


def _pool():
    return _local.__dict__.setdefault("connections", {})


def _new(target, timeout):
    scheme, host, port = target
    return (_Https if scheme == "https" else _Http)(host, port, timeout=timeout)


def connect(url, timeout=CONNECT_TIMEOUT):
    """A connection to ``url``'s server for the next ``post`` to it: this thread's kept-alive one, or a new one
    opened now. Never raises: an error (connection refused, timeout) is returned and raised by ``post``."""
    try:
        target, _path = _target(url)
        conn = _pool().pop(target, None)
        if conn is not None:
            return target, conn, True
        conn = _new(target, timeout)
        conn.connect()
    except (OSError, HTTPException) as exc:
        return exc
    return target, conn, False


def discard(prepared):
    """A connection from ``connect`` that will not be used: back to the pool when it was kept alive, else
    closed (the server's handler then ends)."""
    if isinstance(prepared, tuple):
        target, conn, reused = prepared
        if reused:
            _pool()[target] = conn
        else:
            conn.close()


def _read(resp, limit):
    """The body of ``resp``, at most ``limit`` bytes (Content-Length, chunked or until the server closes: as
    http.client parses them), read in chunks; TooLarge past it (announced or read), the rest left unread."""
    length = resp.length  # None when absent, invalid or chunked
    if length is not None and length > limit:
        raise TooLarge(limit)
    parts, size = [], 0
    while True:
        part = resp.read(min(CHUNK, limit + 1 - size))
        if not part:
            return b"".join(parts)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise TooLarge(limit)


def post(url, body, headers, timeout, prepared=None, limit=MAX_CALL_BYTES):
    """POST ``body`` (bytes) to ``url`` (on ``prepared``, ``connect``'s answer for it, when given); return
    (status, response bytes), at most ``limit`` of them. Raises OSError (connection refused, reset, timeout:
    socket.timeout / TimeoutError) or http.client.HTTPException (TooLarge: an answer past ``limit``, its
    connection closed)."""
    if isinstance(prepared, BaseException):
        raise prepared
    target, path = _target(url)
    if prepared is not None and prepared[0] != target:
        discard(prepared)
        prepared = None
    pool = _pool()
    for attempt in (0, 1):
        if attempt == 0 and prepared is not None and prepared[0] == target:
            _target_, conn, reused = prepared
        else:
            conn = pool.pop(target, None)
            reused = conn is not None
            if conn is None:
                conn = _new(target, timeout)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            data = _read(resp, limit)
        except STALE:
            conn.close()
            if reused and attempt == 0:
                continue
            raise
        except (OSError, HTTPException):
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            pool[target] = conn
        return resp.status, data
    raise OSError("unreachable")  # not reached
