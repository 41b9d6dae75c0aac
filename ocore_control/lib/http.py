"""A lean HTTP client for the control plane's requests to its instances (no Odoo, no requests' per-call
environment lookups): one connection per instance host and thread, kept open while the instance's server
allows it (a server behind a keep-alive proxy does; Odoo's own threaded server closes after each answer),
with TCP_NODELAY and the request sent in one write."""

import socket
import threading
from http.client import HTTPConnection, HTTPException, HTTPSConnection, RemoteDisconnected
from urllib.parse import urlsplit

_local = threading.local()
# errors of a reused connection that the server closed while it was idle: the request is sent again, once,
# on a new connection (it never reached the server)
STALE = (RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _NoDelay:
    def connect(self):
        result = super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return result


class _Http(_NoDelay, HTTPConnection):
    pass


class _Https(_NoDelay, HTTPSConnection):
    pass


def post(url, body, headers, timeout):
    """POST ``body`` (bytes) to ``url``; return (status, response bytes). Raises OSError (connection
    refused, reset, timeout: socket.timeout / TimeoutError) or http.client.HTTPException."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OSError(f"not an http(s) URL: {url[:200]}")
    target = (parts.scheme, parts.hostname, parts.port)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    pool = _local.__dict__.setdefault("connections", {})
    for attempt in (0, 1):
        conn = pool.pop(target, None)
        reused = conn is not None
        if conn is None:
            conn = (_Https if parts.scheme == "https" else _Http)(parts.hostname, parts.port, timeout=timeout)
        else:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
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
