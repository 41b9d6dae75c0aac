"""Request signatures between the control plane and a host agent (no Odoo import).

A request carries ``X-Ocore-Timestamp`` (Unix seconds), ``X-Ocore-Nonce`` (random, used once) and
``X-Ocore-Signature`` = hex HMAC-SHA256, with the server's secret, of::

    METHOD \\n PATH?QUERY \\n SHA-256 hex of the body \\n TIMESTAMP \\n NONCE

A request older or newer than ``MAX_SKEW`` seconds is stale; a nonce seen within the window is a replay.
"""

import hashlib
import hmac
import secrets
import threading
import time

MAX_SKEW = 30
HEADER_TIMESTAMP = "X-Ocore-Timestamp"
HEADER_NONCE = "X-Ocore-Nonce"
HEADER_SIGNATURE = "X-Ocore-Signature"
HEADER_SERVER = "X-Ocore-Server"


class SignatureError(Exception):
    """A request whose signature is missing, wrong, stale or replayed."""


def canonical(method, path, body, timestamp, nonce):
    digest = hashlib.sha256(body or b"").hexdigest()
    return "\n".join([method.upper(), path, digest, str(timestamp), nonce]).encode()


def signature(secret, method, path, body, timestamp, nonce):
    return hmac.new(secret.encode(), canonical(method, path, body, timestamp, nonce), hashlib.sha256).hexdigest()


def sign(secret, method, path, body=b"", timestamp=None, nonce=None):
    """The headers that sign a request (``path`` with its query string)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or secrets.token_hex(16)
    return {
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature(secret, method, path, body, timestamp, nonce),
    }


class NonceCache:
    """Nonces seen within the validity window (one agent process: kept in memory)."""

    def __init__(self, window=MAX_SKEW * 2):
        self.window = window
        self._seen = {}
        self._lock = threading.Lock()

    def add(self, nonce, now):
        """True if ``nonce`` is new (and remembers it), False for a replay."""
        with self._lock:
            for old, expires in list(self._seen.items()):
                if expires < now:
                    del self._seen[old]
            if nonce in self._seen:
                return False
            self._seen[nonce] = now + self.window
            return True


def verify(secret, method, path, body, headers, nonces=None, now=None, max_skew=MAX_SKEW):
    """Check a request's signature; raise SignatureError. ``headers``: a case-insensitive mapping
    (werkzeug's, or a dict with the names above). ``nonces``: a NonceCache, or a callable(nonce)
    returning False for a replay."""
    now = time.time() if now is None else now
    stamp, nonce, sig = (headers.get(h) for h in (HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE))
    if not (stamp and nonce and sig):
        raise SignatureError("unsigned request")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("malformed timestamp") from None
    if not 8 <= len(nonce) <= 128 or not nonce.isascii() or not nonce.replace("-", "").isalnum():
        raise SignatureError("malformed nonce")
    expected = signature(secret, method, path, body, timestamp, nonce)
    if not hmac.compare_digest(expected, sig.strip().lower()):
        raise SignatureError("bad signature")
    if abs(now - timestamp) > max_skew:
        raise SignatureError(f"stale request (timestamp {timestamp}, now {int(now)}, allowed skew {max_skew}s)")
    fresh = nonces.add(nonce, now) if isinstance(nonces, NonceCache) else (nonces(nonce) if nonces else True)
    if not fresh:
        raise SignatureError("replayed request (nonce already used)")
