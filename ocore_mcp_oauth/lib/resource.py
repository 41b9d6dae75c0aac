"""This server's MCP resource identifiers (RFC 8707 / RFC 9728) and the URL rules of the authorization server.

The canonical resource identifier is ``<origin>/ocore/mcp``: the parent of both transports. A client that
connects to one endpoint is told, by the protected-resource metadata of that endpoint, the endpoint's own
URL as resource (the SDK requires the advertised resource to be a prefix of the URL it connects to). All
of these name the same resource, so a token issued for any of them is accepted on every MCP endpoint of
this server (and only there):

    <origin>/ocore/mcp  <origin>/ocore/mcp/stream  <origin>/ocore/mcp/sse
    <origin>/api/mcp    <origin>/api/mcp/stream    <origin>/api/mcp/sse
"""

import ipaddress
from urllib.parse import urlsplit, urlunsplit

CANONICAL_PATH = "/ocore/mcp"
PRM_WELL_KNOWN = "/.well-known/oauth-protected-resource"
AS_WELL_KNOWN = "/.well-known/oauth-authorization-server"

# MCP endpoint path -> the resource path its protected-resource metadata names
ENDPOINT_RESOURCE = {}
for _root in ("/ocore/mcp", "/api/mcp"):
    ENDPOINT_RESOURCE.update({
        _root: _root,
        f"{_root}/stream": f"{_root}/stream",
        f"{_root}/sse": f"{_root}/sse",
        f"{_root}/sse/messages": f"{_root}/sse",
        f"{_root}/messages": _root,
    })
RESOURCE_PATHS = frozenset(ENDPOINT_RESOURCE.values())

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def origin_of(url):
    """``scheme://host[:port]`` of a URL, lower-cased, without a trailing slash."""
    parts = urlsplit((url or "").strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}" if parts.scheme and parts.netloc else ""


def normalize_resource(url):
    """A resource indicator in comparable form: lower-case scheme and host, no trailing slash.

    Returns None for anything that is not an absolute http(s) URL without fragment (RFC 8707 §2).
    """
    if not url or not isinstance(url, str):
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or parts.fragment:
        return None
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def canonical_resource(origin):
    return f"{origin}{CANONICAL_PATH}"


def accepted_resources(origins):
    """Every resource identifier naming this server's MCP endpoints, for each of ``origins``."""
    accepted = set()
    for origin in origins:
        origin = origin_of(origin)
        if origin:
            accepted.update(f"{origin}{path}" for path in RESOURCE_PATHS)
    return accepted


def endpoint_resource_path(path):
    """The resource path whose metadata describes an MCP endpoint path (None if it is not one)."""
    path = (path or "").rstrip("/") or "/"
    return ENDPOINT_RESOURCE.get(path)


def resource_metadata_url(origin, request_path):
    """The RFC 9728 metadata URL for a request that hit ``request_path`` (path-suffixed when it is an MCP
    endpoint, else the root document)."""
    resource_path = endpoint_resource_path(request_path) or ""
    return f"{origin}{PRM_WELL_KNOWN}{resource_path}"


def is_loopback_host(host):
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redirect_uri_problem(uri):
    """Why a redirect URI may not be registered, or None.

    Allowed (RFC 8252 / OAuth 2.1): https URLs, http URLs on a loopback address, and private-use
    schemes of native apps (``cursor://…``, ``com.example.app:/cb``). Never a fragment, never
    javascript:/data:/file: or other dangerous schemes.
    """
    if not isinstance(uri, str) or not uri.strip() or len(uri) > 2000:
        return "empty or too long"
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme:
        return "not an absolute URI"
    if parts.fragment:
        return "a redirect URI must not contain a fragment"
    if scheme in ("javascript", "data", "file", "vbscript", "about", "blob", "ftp", "ws", "wss"):
        return f"the {scheme}: scheme is not allowed"
    if scheme == "https":
        return None if parts.netloc else "no host"
    if scheme == "http":
        if is_loopback_host(parts.hostname):
            return None
        return "plain http is only allowed on a loopback address (127.0.0.1, [::1], localhost)"
    return None  # a native app's private-use scheme


def redirect_uri_matches(requested, registered):
    """Exact match, except that the port of a loopback http redirect URI may vary (RFC 8252 §7.3)."""
    if requested == registered:
        return True
    req, reg = urlsplit(requested), urlsplit(registered)
    if req.scheme != "http" or reg.scheme != "http":
        return False
    if not (is_loopback_host(req.hostname) and req.hostname == reg.hostname):
        return False
    return (req.path, req.query) == (reg.path, reg.query) and not req.fragment
