"""MCP protocol helpers on top of ``mcp-types`` (the SDK's wire models).

Covers the handshake revisions (2024-11-05 … 2025-11-25) and the stateless
2026-07-28 per-request envelope. Parsing and serialising go through
``mcp_types.methods`` so each revision gets exactly its own wire shape.
"""

import json
import uuid
from dataclasses import dataclass

import mcp_types as types
from mcp_types import methods as mcp_methods
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    KNOWN_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)

from .errors import ERROR_HTTP_STATUS, ProtocolError

JSONRPC = "2.0"
PARSE_ERROR = types.PARSE_ERROR
INVALID_REQUEST = types.INVALID_REQUEST
METHOD_NOT_FOUND = types.METHOD_NOT_FOUND
INVALID_PARAMS = types.INVALID_PARAMS
INTERNAL_ERROR = types.INTERNAL_ERROR
HEADER_MISMATCH = types.HEADER_MISMATCH
UNSUPPORTED_PROTOCOL_VERSION = types.UNSUPPORTED_PROTOCOL_VERSION
# implementation-defined codes (-32000..-32019)
UNAUTHORIZED = -32011
SESSION_NOT_FOUND = -32012
RATE_LIMITED = -32013  # a request over the key's rate limit (a tools/call gets an isError result instead)

PROTOCOL_VERSION_META_KEY = types.PROTOCOL_VERSION_META_KEY
CLIENT_INFO_META_KEY = types.CLIENT_INFO_META_KEY
CLIENT_CAPABILITIES_META_KEY = types.CLIENT_CAPABILITIES_META_KEY
LOG_LEVEL_META_KEY = types.LOG_LEVEL_META_KEY
SERVER_INFO_META_KEY = types.SERVER_INFO_META_KEY

HEADER_PROTOCOL_VERSION = "mcp-protocol-version"
HEADER_METHOD = "mcp-method"
HEADER_NAME = "mcp-name"
HEADER_SESSION = "mcp-session-id"
NAME_BEARING_METHODS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")

__all__ = [
    "ERROR_HTTP_STATUS",
    "HANDSHAKE_PROTOCOL_VERSIONS",
    "KNOWN_PROTOCOL_VERSIONS",
    "LATEST_HANDSHAKE_VERSION",
    "MODERN_PROTOCOL_VERSIONS",
    "ProtocolError",
]


def is_modern(version):
    return version in MODERN_PROTOCOL_VERSIONS


def negotiate_version(requested):
    """Handshake version negotiation (initialize)."""
    if requested in HANDSHAKE_PROTOCOL_VERSIONS:
        return requested
    return LATEST_HANDSHAKE_VERSION


def decode_body(raw):
    """Decode a POST body; raise ProtocolError(PARSE_ERROR) on bad JSON."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError(PARSE_ERROR, "Parse error") from None


def message_kind(msg):
    """'request', 'notification', 'response' or None for an invalid envelope."""
    if not isinstance(msg, dict) or msg.get("jsonrpc") != JSONRPC:
        return None
    if "method" in msg:
        if not isinstance(msg["method"], str):
            return None
        if "id" in msg:
            rid = msg["id"]
            if isinstance(rid, bool) or not isinstance(rid, int | str):
                return None
            return "request"
        return "notification"
    if "id" in msg and ("result" in msg or "error" in msg):
        return "response"
    return None


def response(request_id, result):
    return {"jsonrpc": JSONRPC, "id": request_id, "result": result}


def error(request_id, code, message, data=None):
    err = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": JSONRPC, "id": request_id, "error": err}


def notification(method, params=None):
    msg = {"jsonrpc": JSONRPC, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def parse_request(method, version, params):
    """Validate a client request for ``version`` with mcp-types; return the typed model.

    Raises ProtocolError (METHOD_NOT_FOUND / INVALID_PARAMS).
    """
    try:
        return mcp_methods.parse_client_request(method, version, params)
    except KeyError:
        raise ProtocolError(METHOD_NOT_FOUND, f"Method not found: {method}") from None
    except Exception as exc:  # noqa: BLE001 - pydantic.ValidationError and model errors
        raise ProtocolError(INVALID_PARAMS, f"Invalid params for {method}: {_short(exc)}") from None


def serialize_result(method, version, result):
    """Dump a monolith result model (or dict) in the wire shape of ``version``."""
    if hasattr(result, "model_dump"):
        result = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return mcp_methods.serialize_server_result(method, version, result)


_TOOL_WIRE_CACHE = {}
_TOOL_WIRE_CACHE_MAX = 4096
# (version, identities of a page's definitions) -> (those definitions, kept alive, and their WireTools): the
# server builds a page's definitions once and hands out the same dicts (ocore.mcp.server._ocore_tool_definitions)
_TOOLS_PAGE_CACHE = {}
_TOOLS_PAGE_CACHE_MAX = 256


class WireTools(list):
    """The wire definitions of a tools/list page, with their JSON text (spliced in by :func:`dumps`)."""

    json_text = "[]"


def serialize_tools_list(version, result):
    """tools/list in the wire shape of ``version``: like :func:`serialize_result`, but each tool definition
    goes through mcp-types once and is then reused (a listing is the same ~100 definitions every time).

    A cached definition is keyed by everything in it but its input schema, plus the identity of that
    schema, which the entry keeps alive so that the identity cannot be reused by another object. A page
    whose definitions are the very dicts of an earlier page (never modified: the server's are shared) is
    reused whole, without looking at them.
    """
    tools = result["tools"]
    page_key = (version, tuple(map(id, tools)))
    page = _TOOLS_PAGE_CACHE.get(page_key)
    if page is not None and all(a is b for a, b in zip(page[0], tools, strict=True)):
        wire_tools = page[1]
    else:
        wire_tools = _wire_tools(version, result)
        if len(_TOOLS_PAGE_CACHE) >= _TOOLS_PAGE_CACHE_MAX:
            _TOOLS_PAGE_CACHE.clear()
        _TOOLS_PAGE_CACHE[page_key] = (tuple(tools), wire_tools)
    out = mcp_methods.serialize_server_result("tools/list", version, {**result, "tools": []})
    out["tools"] = wire_tools
    return out


def _wire_tools(version, result):
    wire_tools, texts = WireTools(), []
    for tool in result["tools"]:
        schema = tool.get("inputSchema")
        key = (version, id(schema), repr([item for item in tool.items() if item[0] != "inputSchema"]))
        entry = _TOOL_WIRE_CACHE.get(key)
        if entry is None or entry[0] is not schema:
            one = mcp_methods.serialize_server_result("tools/list", version, {**result, "tools": [tool]})
            wire = one["tools"][0]
            if len(_TOOL_WIRE_CACHE) >= _TOOL_WIRE_CACHE_MAX:
                _TOOL_WIRE_CACHE.clear()
            entry = _TOOL_WIRE_CACHE[key] = (schema, wire, json.dumps(wire, separators=(",", ":"), default=str))
        wire_tools.append(entry[1])
        texts.append(entry[2])
    wire_tools.json_text = "[" + ",".join(texts) + "]"
    return wire_tools


def _short(exc):
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(
                ".".join(str(x) for x in e["loc"]) + ": " + e["msg"] for e in errors(include_url=False)[:5]
            )
        except Exception:  # noqa: BLE001 - best effort message; fall back to str(exc)
            return str(exc)[:300]
    return str(exc)[:300]


@dataclass(frozen=True)
class ModernEnvelope:
    protocol_version: str
    client_info: object
    client_capabilities: object
    log_level: str | None


def classify_modern(body, headers):
    """The 2026-07-28 validation ladder (same rungs and order as the SDK server).

    ``headers`` maps lower-case header names to values. Returns a ModernEnvelope
    or raises ProtocolError.
    """
    params = body.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    if not isinstance(meta, dict):
        raise ProtocolError(
            INVALID_PARAMS,
            "params._meta must be an object carrying the required "
            f"{PROTOCOL_VERSION_META_KEY!r} and {CLIENT_CAPABILITIES_META_KEY!r} envelope keys",
        )
    missing = [k for k in (PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY) if k not in meta]
    if missing:
        raise ProtocolError(
            INVALID_PARAMS, f"params._meta is missing the required envelope key(s): {', '.join(missing)}"
        )
    version = meta[PROTOCOL_VERSION_META_KEY]
    header_version = headers.get(HEADER_PROTOCOL_VERSION)
    if header_version is None or header_version != version:
        raise ProtocolError(
            HEADER_MISMATCH,
            f"{HEADER_PROTOCOL_VERSION} header does not match the request envelope's protocol version",
        )
    method = body.get("method")
    if headers.get(HEADER_METHOD) != method:
        raise ProtocolError(HEADER_MISMATCH, f"{HEADER_METHOD} header does not match the request body's method")
    name_key = NAME_BEARING_METHODS.get(method)
    if name_key is not None:
        body_value = params.get(name_key)
        if body_value is not None and decode_header_value(headers.get(HEADER_NAME)) != body_value:
            raise ProtocolError(
                HEADER_MISMATCH, f"{HEADER_NAME} header does not match the request body's {name_key!r} parameter"
            )
    if not isinstance(version, str):
        raise ProtocolError(INVALID_PARAMS, "the protocol-version envelope value must be a string")
    if version not in MODERN_PROTOCOL_VERSIONS:
        raise unsupported_version(version)
    level = meta.get(LOG_LEVEL_META_KEY)
    return ModernEnvelope(
        protocol_version=version,
        client_info=meta.get(CLIENT_INFO_META_KEY),
        client_capabilities=meta[CLIENT_CAPABILITIES_META_KEY],
        log_level=level if level in LOG_LEVELS else None,
    )


def unsupported_version(requested, supported=MODERN_PROTOCOL_VERSIONS):
    return ProtocolError(
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        data={"supported": list(supported), "requested": requested},
    )


def decode_header_value(value):
    """Inverse of the SDK's header encoding (``=?base64?…?=`` sentinel)."""
    import base64
    import binascii

    if value is None:
        return None
    if value.startswith("=?base64?") and value.endswith("?="):
        payload = value[len("=?base64?") : -2]
        try:
            decoded = base64.b64decode(payload, validate=True)
        except binascii.Error:
            return None
        if base64.b64encode(decoded).decode("ascii") != payload:
            return None
        try:
            return decoded.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value


def sse_event(message, event="message"):
    """An SSE event carrying ``message``: a JSON-RPC message, or its JSON text (written as is)."""
    return f"event: {event}\r\ndata: {message_text(message)}\r\n\r\n".encode()


def message_text(message):
    """The JSON text of a JSON-RPC message (already text: as is)."""
    return message if isinstance(message, str) else dumps(message)


def dumps(message):
    result = message.get("result") if isinstance(message, dict) else None
    tools = result.get("tools") if isinstance(result, dict) else None
    if isinstance(tools, WireTools):
        # a tools/list answer: its tools are spliced in as the JSON text cached with them
        marker = f"ocore-tools-{uuid.uuid4().hex}"
        text = json.dumps({**message, "result": {**result, "tools": marker}}, separators=(",", ":"), default=str)
        return text.replace(f'"{marker}"', tools.json_text, 1)
    return json.dumps(message, separators=(",", ":"), default=str)
