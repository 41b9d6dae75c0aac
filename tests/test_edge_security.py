"""The protocol edge: Origin validation (DNS rebinding), CORS only for configured origins, URLs from
web.base.url whatever the Host header says, request size and batch limits, and a rate limit that counts
every request method (prompts/get audited like tools/call)."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import pytest
from mcp_helpers import (
    LATEST_HANDSHAKE,
    SSE_PATH,
    STREAM_PATH,
    initialize_msg,
    jsonrpc,
    modern_request,
    parse_body,
)

pytestmark = pytest.mark.anyio

EVIL = "http://evil.example.com"
MCP_PATHS = [STREAM_PATH, "/api/mcp/stream", SSE_PATH, "/api/mcp/sse", "/ocore/mcp/sse/messages",
             "/api/mcp/sse/messages", "/ocore/mcp/messages", "/api/mcp/messages"]


def own_origin(odoo):
    parts = urlsplit(odoo.url)
    return f"{parts.scheme}://{parts.netloc}"


def auth(key):
    return {"Authorization": f"Bearer {key.secret}"}


# -- Origin (MCP 2025-11-25: servers MUST validate it) ------------------------------------------


def test_dns_rebinding_protection(raw, odoo, admin_key):
    """What the conformance suite's ``dns-rebinding-protection`` scenario sends: Host and Origin of an
    attacker's name refused with a 4xx, the server's own accepted (then notifications/initialized)."""
    host = urlsplit(odoo.url).netloc
    refused = raw.post(STREAM_PATH, initialize_msg(), key=admin_key,
                       headers={"Host": "evil.example.com", "Origin": EVIL, "MCP-Protocol-Version": LATEST_HANDSHAKE})
    assert 400 <= refused.status_code < 500, refused.text
    accepted = raw.post(STREAM_PATH, initialize_msg(), key=admin_key,
                        headers={"Host": host, "Origin": f"http://{host}", "MCP-Protocol-Version": LATEST_HANDSHAKE})
    assert accepted.status_code == 200, accepted.text
    sid = accepted.headers["mcp-session-id"]
    note = raw.post(STREAM_PATH, jsonrpc("notifications/initialized", id=None), key=admin_key,
                    headers={"Origin": f"http://{host}", "Mcp-Session-Id": sid, "MCP-Protocol-Version": LATEST_HANDSHAKE})
    assert note.status_code == 202, note.text


@pytest.mark.parametrize("path", MCP_PATHS)
def test_foreign_origin_is_refused_on_every_route(raw, admin, make_key, path):
    key = make_key()
    for method in ("GET", "POST", "DELETE", "OPTIONS"):
        headers = {"Origin": EVIL, "Authorization": f"Bearer {key.secret}"}
        if method == "POST":
            resp = raw.post(path, initialize_msg(), key=key, headers={"Origin": EVIL})
        else:
            resp = raw.request(method, path, headers=headers)
        if resp.status_code == 405:  # the route does not serve this method (Odoo answers before it)
            continue
        assert resp.status_code == 403, (method, resp.status_code, resp.text[:300])
        assert "access-control-allow-origin" not in resp.headers
        if method != "OPTIONS":
            assert "Origin" in resp.json()["error"]["message"]
    # nothing ran: no session, no audit row
    assert admin.audit([("key_id", "=", key.id)]) == []
    assert admin.sessions([("key_id", "=", key.id)]) == []


def test_own_origin_and_no_origin_are_served_without_cors(raw, odoo, admin_key):
    for headers in ({}, {"Origin": own_origin(odoo)}):
        resp = raw.post(STREAM_PATH, initialize_msg(), key=admin_key, headers=headers)
        assert resp.status_code == 200, resp.text
        # no Access-Control-Allow-Origin unless an administrator configures origins (it was * before)
        assert "access-control-allow-origin" not in resp.headers
    preflight = raw.request("OPTIONS", STREAM_PATH, headers={"Origin": own_origin(odoo)})
    assert preflight.status_code == 204
    assert "access-control-allow-origin" not in preflight.headers


def test_configured_origins_get_cors(raw, admin, admin_key):
    app = "https://app.example.com"
    with admin.params(allowed_origins=f"{app}, http://localhost:6274"):
        preflight = raw.request("OPTIONS", STREAM_PATH, headers={
            "Origin": app, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, mcp-session-id"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == app
        assert "Origin" in preflight.headers["vary"]
        assert "Mcp-Session-Id" in preflight.headers["access-control-allow-headers"]
        resp = raw.post(STREAM_PATH, initialize_msg(), key=admin_key, headers={"Origin": app})
        assert resp.status_code == 200, resp.text
        assert resp.headers["access-control-allow-origin"] == app
        assert "Mcp-Session-Id" in resp.headers["access-control-expose-headers"]
        # another origin is still refused, a look-alike of the allowed one too
        for origin in (EVIL, "https://app.example.com.evil.com", "http://app.example.com"):
            assert raw.post(STREAM_PATH, initialize_msg(), key=admin_key,
                            headers={"Origin": origin}).status_code == 403, origin
    with admin.params(allowed_origins="*"):
        resp = raw.post(STREAM_PATH, initialize_msg(), key=admin_key, headers={"Origin": EVIL})
        assert resp.status_code == 200, resp.text
        assert resp.headers["access-control-allow-origin"] == "*"


def test_urls_come_from_web_base_url_not_the_host_header(raw, admin, admin_key, slug):
    """A one-time login link built through a forged Host header still points at this server."""
    uid = admin.create_user(f"edge_target_{int(time.time() * 1000)}", groups=())
    body, headers = modern_request("tools/call", {"name": f"{slug}_impersonate_user", "arguments": {"user_id": uid}})
    resp = raw.post(STREAM_PATH, body, key=admin_key, headers={**headers, "Host": "evil.example.com"})
    assert resp.status_code == 200, resp.text
    result = parse_body(resp)["result"]
    assert not result.get("isError"), result
    base = admin.get_param("web.base.url").rstrip("/")
    assert result["structuredContent"]["url"].startswith(f"{base}/ocore/mcp/impersonate/")
    assert "evil" not in json.dumps(result)


# -- size limits --------------------------------------------------------------------------------


def send_head_only(odoo, path, length, key, extra=b""):
    """Send a POST's headers announcing ``length`` bytes and ``extra`` of them; return (status line,
    seconds until the answer): the server answers without waiting for the body."""
    parts = urlsplit(odoo.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        started = time.monotonic()
        head = (f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
                f"Accept: application/json, text/event-stream\r\nAuthorization: Bearer {key.secret}\r\n"
                f"MCP-Protocol-Version: {LATEST_HANDSHAKE}\r\nContent-Length: {length}\r\n\r\n")
        sock.sendall(head.encode() + extra)
        answer = b""
        while True:  # the answer, up to the server closing the connection (Connection: close)
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer.split(b"\r\n", 1)[0].decode(), time.monotonic() - started, answer


@pytest.mark.parametrize("path", [STREAM_PATH, "/ocore/mcp/sse/messages?session_id=x"])
def test_oversized_body_is_refused_before_it_is_read(odoo, admin_key, path):
    status, elapsed, answer = send_head_only(odoo, path, 60 * 1024 * 1024, admin_key, b'{"jsonrpc": "2.0", ')
    assert status.split()[1] == "413", answer[:500]
    assert elapsed < 5
    assert b"over this server's limit" in answer or b"Payload Too Large" in answer


def test_body_limit_is_a_setting(odoo, raw, admin, admin_key):
    with admin.params(max_body_kb=64):
        status, _elapsed, answer = send_head_only(odoo, STREAM_PATH, 100 * 1024, admin_key)
        assert status.split()[1] == "413", answer[:300]
        # under the limit: served
        resp = raw.post(STREAM_PATH, initialize_msg(), key=admin_key)
        assert resp.status_code == 200, resp.text


def test_batch_length_limit(raw, admin, admin_key):
    sid = raw.open_session(admin_key)
    pings = [jsonrpc("ping", {}, id=i) for i in range(20000)]
    resp = raw.session_post(sid, pings, admin_key)
    assert resp.status_code == 400, resp.text[:300]
    assert "batch of 20000 messages" in resp.json()["error"]["message"]
    ok = raw.session_post(sid, pings[:100], admin_key)
    assert ok.status_code == 200, ok.text[:300]
    assert len(ok.json()) == 100
    with admin.params(max_batch=10):
        assert raw.session_post(sid, pings[:11], admin_key).status_code == 400
        assert raw.session_post(sid, pings[:10], admin_key).status_code == 200


# -- the rate limit counts every request ------------------------------------------------------


def test_rate_limit_counts_every_request_method(raw, admin, make_key):
    key = make_key(rate_limit=4)
    sid = raw.open_session(key)  # initialize: 1 (notifications are not counted)
    for i, method in enumerate(("tools/list", "prompts/list", "ping"), start=2):
        resp = raw.session_post(sid, jsonrpc(method, {}, id=i), key)
        assert "result" in resp.json(), (method, resp.text[:300])
    refused = raw.session_post(sid, jsonrpc("prompts/get", {"name": "explain_model",
                                                            "arguments": {"model": "res.partner"}}, id=9), key)
    error = refused.json()["error"]
    assert error["code"] == -32013 and "rate limit exceeded" in error["message"] and "limit 4/min" in error["message"]
    refused = raw.session_post(sid, jsonrpc("tools/list", {}, id=10), key)
    assert "rate limit exceeded" in refused.json()["error"]["message"]
    rows = admin.audit([("key_id", "=", key.id), ("status", "=", "refused")])
    assert [(r["tool_name"], r["refusal_reason"]) for r in rows] == [("tools/list", "rate_limited"),
                                                                      ("explain_model", "rate_limited")]
    # a stateless (2026-07-28) request counts too
    body, headers = modern_request("tools/list")
    resp = raw.post(STREAM_PATH, body, key=key, headers=headers)
    assert "rate limit exceeded" in resp.json()["error"]["message"]


async def test_prompts_get_is_audited(mcp_client, admin, make_key):
    key = make_key()
    async with mcp_client(key=key) as client:
        got = await client.get_prompt("explain_model", {"model": "res.partner"})
        assert got.messages
        with pytest.raises(Exception, match="Unknown prompt"):
            await client.get_prompt("no_such_prompt_edge", {})
    rows = admin.wait_audit([("key_id", "=", key.id), ("event", "=", "prompt")], count=2)
    by_name = {r["tool_name"]: r for r in rows}
    assert by_name["explain_model"]["status"] == "success"
    assert "res.partner" in by_name["explain_model"]["params"]
    assert by_name["no_such_prompt_edge"]["status"] == "refused"


def test_rate_limited_tools_call_is_unchanged(raw, make_key, slug):
    """tools/call counts once (in its pipeline), as before: a refused call is an isError result."""
    key = make_key(rate_limit=2)
    body, headers = modern_request("tools/call", {"name": f"{slug}_e2e_echo", "arguments": {"text": "a"}})
    first = parse_body(raw.post(STREAM_PATH, body, key=key, headers=headers))["result"]
    assert not first["isError"], first
    second = parse_body(raw.post(STREAM_PATH, body, key=key, headers=headers))["result"]
    assert not second["isError"], second
    third = parse_body(raw.post(STREAM_PATH, body, key=key, headers=headers))["result"]
    assert third["isError"] and third["content"][0]["text"].startswith("rate limit exceeded")
