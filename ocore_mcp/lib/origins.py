"""The protocol edge: which browser origins may call the server, and the server's own public origin.

MCP 2025-11-25 (transports, "Security warning"): a server MUST validate the ``Origin`` header of every
request, so that a web page the user visits cannot drive a server it reaches through the browser (DNS
rebinding). Requests without ``Origin`` (what non-browser clients send) are not concerned.

Pure functions, no Odoo import: the controllers apply them with the settings' values.
"""

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
ANY = "*"


def serialize_origin(value):
    """The origin ``scheme://host[:port]`` of a URL as browsers serialise it (lower case, default port
    omitted), or "" for anything that is not an absolute http(s) URL without user information."""
    if not isinstance(value, str):
        return ""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return ""
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host or "@" in parts.netloc:
        return ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def request_origin(header):
    """The serialised origin an ``Origin`` request header names, or "" when the header is not one.

    A browser sends exactly ``scheme://host[:port]``: a path, a query, user information, a trailing
    slash, ``null`` (sandboxed frames, file: pages) or several values are not an origin and match none.
    """
    if not isinstance(header, str):
        return ""
    value = header.strip()
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in value):  # urlsplit would drop tabs and newlines
        return ""
    origin = serialize_origin(value)
    if not origin:
        return ""
    parts = urlsplit(value)
    if parts.path or parts.query or parts.fragment or value.endswith(("?", "#")) or "," in value:
        return ""
    return origin


def parse_origins(text):
    """The allowed origins of the setting (comma, space or newline separated): serialised origins, and
    ``*`` (any origin) when the administrator wrote it. Entries that are not origins are ignored."""
    allowed = set()
    for item in (text or "").replace(",", " ").split():
        if item == ANY:
            allowed.add(ANY)
            continue
        origin = serialize_origin(item)
        if origin:
            allowed.add(origin)
    return frozenset(allowed)


def origin_allowed(header, own_origin, configured):
    """Whether a request with this ``Origin`` header (None: absent) may be served.

    ``own_origin``: the server's public origin (always allowed); ``configured``: ``parse_origins`` of the
    setting. No header: allowed (non-browser clients). Anything else must name an allowed origin exactly.
    """
    if header is None:
        return True
    origin = request_origin(header)
    if not origin:
        return False
    return origin == own_origin or ANY in configured or origin in configured


def cors_origin(header, configured):
    """The ``Access-Control-Allow-Origin`` value for this request, or None for no CORS headers at all.

    Only origins an administrator configured get CORS headers: ``*`` when the setting is ``*``, else the
    request's own origin when listed. The server's own origin needs none (same-origin requests).
    """
    if header is None or not configured:
        return None
    if ANY in configured:
        return ANY
    origin = request_origin(header)
    return origin if origin and origin in configured else None
