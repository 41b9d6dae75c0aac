"""Helpers of the end-to-end tests: the SDK client factory, raw HTTP requests, result access."""

from __future__ import annotations

import contextlib
import json
import time
from types import SimpleNamespace
from typing import Any

import httpx2
import mcp_types
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ElicitResult, Implementation

MODERN = "2026-07-28"
LATEST_HANDSHAKE = "2025-11-25"

# (transport, mode) of every way a client can talk to the server
TRANSPORTS = [("stream", "legacy"), ("stream", MODERN), ("sse", "legacy")]
TRANSPORT_IDS = ["stream-legacy", "stream-2026", "sse-legacy"]

STREAM_PATH = "/ocore/mcp/stream"
SSE_PATH = "/ocore/mcp/sse"


# Requests a reverse proxy sends to Odoo's gevent port in prefork mode (README, "Deployment"): the
# legacy SSE streams and the GET stream of Streamable HTTP. Everything else goes to the HTTP workers.
LONG_LIVED_GET_PATHS = ("/ocore/mcp/sse", "/api/mcp/sse", "/ocore/mcp/stream", "/api/mcp/stream")


class ProxyRouting(httpx2.AsyncBaseTransport):
    """What the documented reverse proxy does, for a client talking to Odoo's HTTP port: long-lived
    GET streams, and the POSTs of a 2026-07-28 subscriptions/listen (whose answer is a stream), go to
    the gevent port (the Host header stays the public one)."""

    def __init__(self, stream_port: int):
        self.stream_port = stream_port
        self.inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request):
        listen = request.method == "POST" and request.headers.get("mcp-method") == "subscriptions/listen"
        if (request.method == "GET" or listen) and request.url.path in LONG_LIVED_GET_PATHS:
            request.url = request.url.copy_with(port=self.stream_port)
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


def secret_of(key) -> str:
    return key if isinstance(key, str) else key.secret


@contextlib.asynccontextmanager
async def connect(
    base_url: str,
    key,
    transport: str = "stream",
    mode: str = "legacy",
    query: str = "",
    path: str | None = None,
    headers: dict | None = None,
    stream_port: int | None = None,
    **client_kw,
):
    """A connected ``mcp.Client`` (official SDK) for ``key``.

    ``transport``: "stream" (Streamable HTTP) or "sse" (legacy SSE, always mode "legacy").
    ``mode``: "legacy", "2026-07-28" or "auto". ``query``: e.g. "?instances=x&categories=orm".
    ``stream_port``: Odoo's gevent port in prefork mode; long-lived GET streams are sent there, as
    the documented reverse proxy does.
    The client gets an ``e2e`` attribute: ``session_id`` (None for 2026-07-28), ``transport``, ``mode``.
    """

    def transport_kw():
        return {"transport": ProxyRouting(stream_port)} if stream_port else {}

    auth = {"Authorization": f"Bearer {secret_of(key)}", **(headers or {})}
    info = SimpleNamespace(session_id=None, transport=transport, mode=mode, statuses=[])
    client_kw.setdefault("cache", None)  # every list call reaches the server
    client_kw.setdefault("read_timeout_seconds", 60)  # a lost answer fails the test instead of hanging it
    client_kw.setdefault("client_info", Implementation(name="ocore-e2e", version="1.0"))
    if transport == "stream":
        url = f"{base_url}{path or STREAM_PATH}{query}"

        async def on_response(response):
            info.statuses.append(response.status_code)
            sid = response.headers.get("mcp-session-id")
            if sid:
                info.session_id = sid

        http = httpx2.AsyncClient(
            headers=auth,
            timeout=httpx2.Timeout(30, read=300),
            event_hooks={"response": [on_response]},
            **transport_kw(),
        )
        async with http:
            async with Client(streamable_http_client(url, http_client=http), mode=mode, **client_kw) as client:
                client.e2e = info
                yield client
    elif transport == "sse":
        if mode != "legacy":
            raise ValueError("the legacy SSE transport only speaks the handshake revisions (mode='legacy')")
        url = f"{base_url}{path or SSE_PATH}{query}"

        def on_session(sid):
            info.session_id = sid

        def client_factory(headers=None, timeout=None, auth=None):
            return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, **transport_kw())

        transport_cm = sse_client(url, headers=auth, timeout=30, sse_read_timeout=300, on_session_created=on_session,
                                  httpx_client_factory=client_factory)
        async with Client(transport_cm, mode="legacy", **client_kw) as client:
            client.e2e = info
            yield client
    else:
        raise ValueError(f"unknown transport {transport!r}")


# -- results -----------------------------------------------------------------------------


def text_of(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def data_of(result) -> dict:
    """structuredContent of a successful result (asserts it succeeded)."""
    assert not result.is_error, f"tool failed: {text_of(result)}"
    assert result.structured_content is not None, f"no structuredContent: {text_of(result)}"
    return result.structured_content


def error_of(result) -> str:
    """The error text of a failed result (asserts it failed)."""
    assert result.is_error, f"expected an error, got: {text_of(result)[:500]}"
    return text_of(result)


async def list_all_tools(client) -> list:
    tools, cursor, pages = [], None, 0
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            return tools
        assert pages < 200, "tools/list pagination does not end"


# -- raw HTTP ------------------------------------------------------------------------------


def jsonrpc(method, params=None, id=1):  # noqa: A002
    msg = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        msg["id"] = id
    if params is not None:
        msg["params"] = params
    return msg


def initialize_msg(version=LATEST_HANDSHAKE, id=1):  # noqa: A002
    return jsonrpc("initialize", {
        "protocolVersion": version,
        "capabilities": {},
        "clientInfo": {"name": "ocore-e2e-raw", "version": "1.0"},
    }, id=id)


def modern_meta(version=MODERN, **extra):
    return {
        mcp_types.PROTOCOL_VERSION_META_KEY: version,
        mcp_types.CLIENT_CAPABILITIES_META_KEY: {},
        mcp_types.CLIENT_INFO_META_KEY: {"name": "ocore-e2e-raw", "version": "1.0"},
        **extra,
    }


def modern_request(method, params=None, version=MODERN, id=1, headers=None, header_version=None):  # noqa: A002
    """(body, headers) of a 2026-07-28 per-request envelope."""
    params = dict(params or {})
    params["_meta"] = {**modern_meta(version), **params.get("_meta", {})}
    body = jsonrpc(method, params, id=id)
    hdrs = {
        "MCP-Protocol-Version": header_version or version,
        "Mcp-Method": method,
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    if method in ("tools/call", "prompts/get") and "name" in params:
        hdrs["Mcp-Name"] = params["name"]
    hdrs.update(headers or {})
    return body, hdrs


class Raw:
    """Plain HTTP against the server (what a misbehaving or minimal client sends)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = httpx2.Client(base_url=base_url, timeout=httpx2.Timeout(30, read=60))

    def close(self):
        self.http.close()

    def post(self, path, body=None, key=None, headers=None, raw: bytes | None = None):
        hdrs = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if key is not None:
            hdrs["Authorization"] = f"Bearer {secret_of(key)}"
        hdrs.update(headers or {})
        content = raw if raw is not None else json.dumps(body).encode()
        return self.http.post(path, content=content, headers=hdrs)

    def request(self, method, path, key=None, headers=None):
        hdrs = dict(headers or {})
        if key is not None:
            hdrs["Authorization"] = f"Bearer {secret_of(key)}"
        return self.http.request(method, path, headers=hdrs)

    def open_session(self, key, path=STREAM_PATH, query=""):
        """initialize + notifications/initialized over Streamable HTTP; return the session id."""
        resp = self.post(path + query, initialize_msg(), key=key)
        assert resp.status_code == 200, resp.text
        sid = resp.headers["mcp-session-id"]
        note = self.post(path, jsonrpc("notifications/initialized", id=None), key=key,
                         headers={"Mcp-Session-Id": sid, "MCP-Protocol-Version": LATEST_HANDSHAKE})
        assert note.status_code == 202, note.text
        return sid

    def session_post(self, sid, body, key, path=STREAM_PATH, **headers):
        hdrs = {"Mcp-Session-Id": sid, "MCP-Protocol-Version": LATEST_HANDSHAKE, **headers}
        return self.post(path, body, key=key, headers=hdrs)


def parse_body(resp) -> Any:
    """The JSON-RPC message of a response, JSON or SSE framed (last `message` event)."""
    ctype = resp.headers.get("content-type", "")
    if "text/event-stream" in ctype:
        last = None
        for block in resp.text.replace("\r\n", "\n").split("\n\n"):
            data = [line[5:].strip() for line in block.split("\n") if line.startswith("data:")]
            if data:
                last = json.loads("\n".join(data))
        return last
    return resp.json()


class SseReader:
    """A raw legacy SSE stream read line by line in the calling thread."""

    def __init__(self, base_url, key, path=SSE_PATH, query="", read_timeout=40):
        self.client = httpx2.Client(base_url=base_url, timeout=httpx2.Timeout(10, read=read_timeout))
        self._cm = self.client.stream("GET", path + query, headers={
            "Authorization": f"Bearer {secret_of(key)}", "Accept": "text/event-stream"})
        self.response = self._cm.__enter__()
        self._lines = self.response.iter_lines()
        self.endpoint = None
        self.session_id = None

    def next_event(self):
        """(event, data) of the next event; None when the stream ended. Comments (pings) are skipped."""
        event, data = "message", []
        for line in self._lines:
            if line == "":
                if data:
                    return event, "\n".join(data)
                event = "message"
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        return None

    def read_endpoint(self):
        ev = self.next_event()
        assert ev and ev[0] == "endpoint", f"first SSE event should be the endpoint, got {ev!r}"
        self.endpoint = ev[1]
        self.session_id = ev[1].split("session_id=", 1)[1].split("&", 1)[0]
        return self.endpoint

    def wait_closed(self, timeout):
        """Seconds until the server closes the stream (raises if it stays open past ``timeout``)."""
        started = time.monotonic()
        while True:
            try:
                ev = self.next_event()
            except httpx2.ReadTimeout:
                raise AssertionError(f"the SSE stream was still open after {time.monotonic() - started:.1f}s") from None
            if ev is None:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"the SSE stream was still open after {timeout}s (last event {ev!r})")

    def close(self):
        with contextlib.suppress(Exception):
            self._cm.__exit__(None, None, None)
        self.client.close()


def answering(action, seen):
    """An SDK elicitation callback: records each question in ``seen`` and answers ``action`` (accept: the
    ``confirm`` box ticked)."""

    async def callback(context, params):
        seen.append(params)
        if action == "accept":
            return ElicitResult(action="accept", content={"confirm": True})
        return ElicitResult(action=action)

    return callback
