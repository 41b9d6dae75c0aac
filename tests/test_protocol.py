"""MCP protocol end to end: the official SDK client over every transport, and raw HTTP edge cases."""

from __future__ import annotations

import base64
import json
import os
import time

import anyio
import mcp_types
import pytest
from harness import odoo_series
from mcp.shared.exceptions import MCPError
from mcp_helpers import (
    LATEST_HANDSHAKE,
    MODERN,
    SSE_PATH,
    STREAM_PATH,
    TRANSPORT_IDS,
    TRANSPORTS,
    SseReader,
    data_of,
    error_of,
    initialize_msg,
    jsonrpc,
    list_all_tools,
    modern_request,
    parse_body,
    text_of,
)

pytestmark = pytest.mark.anyio

PLATFORM_TOOLS = {"ocore_list_instances", "ocore_list_servers"}
COMMON_PARAMS = {"timeout_seconds", "max_response_size", "context"}


def by_transport():
    return pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)


# -- handshake / discovery ------------------------------------------------------------------------


@by_transport()
async def test_connect_server_info_and_instructions(mcp_client, slug, transport, mode):
    async with mcp_client(transport, mode) as client:
        expected_version = MODERN if mode == MODERN else LATEST_HANDSHAKE
        assert client.protocol_version == expected_version
        if mode == "legacy":  # a pinned 2026-07-28 client skips discovery: no server info to check
            caps = client.server_capabilities
            assert caps.tools is not None and caps.prompts is not None and caps.logging is not None
            assert client.server_info.name == "ocore-mcp"
            assert client.server_info.version.startswith(odoo_series() + ".")
            assert slug in client.instructions and f"{slug}_<tool>" in client.instructions
            assert "ocore_<tool>" in client.instructions
            # the common parameters are described there, once; every tool's schema declares them untold
            assert all(name in client.instructions for name in COMMON_PARAMS)


async def test_auto_mode_discovers_2026(mcp_client, slug, admin, admin_key):
    async with mcp_client("stream", "auto") as client:
        assert client.protocol_version == MODERN
        # server/discover carried the server info and instructions
        assert client.server_info is not None and client.server_info.name == "ocore-mcp"
        assert slug in (client.instructions or "")
        tools = await list_all_tools(client)
        assert PLATFORM_TOOLS <= {t.name for t in tools}
        result = await client.call_tool(f"{slug}_e2e_echo", {"text": "auto"})
        assert data_of(result)["text"] == "auto"
    rows = admin.audit([("key_id", "=", admin_key.id), ("tool", "=", "e2e_echo"), ("transport", "=", "modern")])
    assert rows and rows[0]["protocol_version"] == MODERN and rows[0]["status"] == "success"


@pytest.mark.parametrize(("transport",), [("stream",), ("sse",)])
async def test_ping(mcp_client, transport):
    async with mcp_client(transport, "legacy") as client:
        result = await client.send_ping()
        assert isinstance(result, mcp_types.EmptyResult)


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
def test_every_handshake_revision_negotiates(raw, admin_key, version):
    resp = raw.post(STREAM_PATH, initialize_msg(version), key=admin_key)
    assert resp.status_code == 200, resp.text
    body = parse_body(resp)
    assert body["result"]["protocolVersion"] == version
    assert body["result"]["serverInfo"]["name"] == "ocore-mcp"
    sid = resp.headers["mcp-session-id"]
    listed = raw.session_post(sid, jsonrpc("tools/list", id=2), admin_key, **{"MCP-Protocol-Version": version})
    assert listed.status_code == 200, listed.text
    assert PLATFORM_TOOLS <= {t["name"] for t in parse_body(listed)["result"]["tools"]}
    raw.request("DELETE", STREAM_PATH, key=admin_key, headers={"Mcp-Session-Id": sid})


def test_unknown_handshake_version_negotiates_latest(raw, admin_key):
    resp = raw.post(STREAM_PATH, initialize_msg("1999-01-01"), key=admin_key)
    assert resp.status_code == 200, resp.text
    assert parse_body(resp)["result"]["protocolVersion"] == LATEST_HANDSHAKE


# -- tools/list --------------------------------------------------------------------------------


@by_transport()
async def test_tools_list_names_and_schemas(mcp_client, slug, transport, mode):
    async with mcp_client(transport, mode) as client:
        tools = {t.name: t for t in await list_all_tools(client)}
    names = set(tools)
    assert PLATFORM_TOOLS <= names
    assert f"{slug}_e2e_echo" in names
    for name in names - PLATFORM_TOOLS:
        assert name.startswith(f"{slug}_"), f"instance tool {name} is not prefixed with the slug {slug}"
    for name, tool in tools.items():
        props = tool.input_schema.get("properties", {})
        assert COMMON_PARAMS <= set(props), f"{name} does not declare the common parameters: {sorted(props)}"
        if name != "ocore_list_servers":  # overridden by the test addon: see test_extension.py
            assert tool.description, f"{name} has no description"
    echo = tools[f"{slug}_e2e_echo"]
    assert echo.input_schema["required"] == ["text"]
    assert echo.annotations.read_only_hint is True
    assert "dry_run" not in echo.input_schema["properties"] and "confirm" not in echo.input_schema["properties"]
    write = tools[f"{slug}_e2e_create_partner"]
    # annotations state only what differs from MCP's defaults (readOnlyHint false, destructiveHint true)
    assert not write.annotations.read_only_hint and write.annotations.destructive_hint is False
    assert "dry_run" in write.input_schema["properties"]
    destructive = tools[f"{slug}_e2e_delete_partner"]
    assert destructive.annotations.destructive_hint is True
    assert "confirm" in destructive.input_schema["properties"]


def test_slug_is_database_name_normalised(odoo, slug):
    import re

    assert slug == re.sub(r"[^a-z0-9]+", "_", odoo.db.lower()).strip("_")


@pytest.mark.parametrize(("transport", "mode"), [("stream", "legacy"), ("stream", MODERN)],
                         ids=["stream-legacy", "stream-2026"])
async def test_tools_list_pagination(mcp_client, admin, transport, mode):
    async with mcp_client(transport, mode) as client:
        full = await client.list_tools()
        assert full.next_cursor is None, "the default page size should hold every tool of this instance"
        expected = [t.name for t in full.tools]
        assert len(expected) > 3
        with admin.params(tools_page_size=3):
            pages, cursor, names = 0, None, []
            while True:
                page = await client.list_tools(cursor=cursor)
                pages += 1
                assert len(page.tools) <= 3
                names += [t.name for t in page.tools]
                cursor = page.next_cursor
                if not cursor:
                    break
                assert len(page.tools) == 3
            assert pages == -(-len(expected) // 3)
            assert names == expected
            with pytest.raises(MCPError) as exc:
                await client.list_tools(cursor="not-a-cursor!")
            assert exc.value.code == mcp_types.INVALID_PARAMS


# -- prompts / logging ---------------------------------------------------------------------------


@by_transport()
async def test_prompts_list_and_get(mcp_client, transport, mode):
    async with mcp_client(transport, mode) as client:
        prompts = (await client.list_prompts()).prompts
        for prompt in prompts:
            args = {a.name: "res.partner" for a in prompt.arguments or [] if a.required}
            got = await client.get_prompt(prompt.name, args)
            assert got.messages and got.messages[0].content.text
        with pytest.raises(MCPError) as exc:
            await client.get_prompt("no_such_prompt_e2e", {})
        assert exc.value.code == mcp_types.INVALID_PARAMS
        assert "no_such_prompt_e2e" in exc.value.message


@pytest.mark.parametrize(("transport",), [("stream",), ("sse",)])
async def test_logging_set_level_is_stored_on_the_session(mcp_client, admin, make_key, transport):
    key = make_key()
    async with mcp_client(transport, "legacy", key=key) as client:
        await client.set_logging_level("warning")
        sessions = admin.sessions([("key_id", "=", key.id)])
        assert len(sessions) == 1 and sessions[0]["log_level"] == "warning"
        assert sessions[0]["transport"] == transport


def test_logging_set_level_invalid(raw, admin_key):
    sid = raw.open_session(admin_key)
    resp = raw.session_post(sid, jsonrpc("logging/setLevel", {"level": "loud"}), admin_key)
    assert parse_body(resp)["error"]["code"] == mcp_types.INVALID_PARAMS


# -- progress and cancellation ----------------------------------------------------------------------


@by_transport()
async def test_progress_notifications(mcp_client, slug, transport, mode):
    received = []

    async def on_progress(progress, total, message):
        received.append((progress, total, message))

    async with mcp_client(transport, mode) as client:
        result = await client.call_tool(f"{slug}_e2e_sleep", {"seconds": 0.6, "steps": 3},
                                        progress_callback=on_progress)
        assert data_of(result)["steps"] == 3
        # without a progress callback no token is sent and nothing streams
        plain = await client.call_tool(f"{slug}_e2e_sleep", {"seconds": 0.1, "steps": 2})
        assert data_of(plain)["steps"] == 2
    assert [(p, t) for p, t, _ in received] == [(1, 3), (2, 3), (3, 3)]
    assert received[0][2] == "step 1/3"


@pytest.mark.parametrize(("transport",), [("stream",), ("sse",)])
async def test_cancellation(mcp_client, admin, make_key, slug, transport):
    """Abandoning a call makes the SDK send notifications/cancelled; the server interrupts the tool."""
    key = make_key()
    started = time.monotonic()
    async with mcp_client(transport, "legacy", key=key) as client:
        with anyio.move_on_after(1.5) as scope:
            await client.call_tool(f"{slug}_e2e_sleep", {"seconds": 20, "steps": 40})
        assert scope.cancelled_caught
        # wait in a thread: the SDK sends its courtesy notifications/cancelled from this event loop
        rows = await anyio.to_thread.run_sync(lambda: admin.wait_audit(
            [("key_id", "=", key.id), ("tool", "=", "e2e_sleep")],
            predicate=lambda r: r["status"] != "running", timeout=10))
        # the session still works after a cancelled call
        assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "after"}))["text"] == "after"
    row = rows[0]
    assert row["status"] == "error" and row["refusal_reason"] == "cancelled", row
    assert "cancelled" in row["error_message"]
    assert row["latency_ms"] < 10000, "the tool ran on instead of being interrupted"
    assert time.monotonic() - started < 15


def test_cancellation_raw_notification(raw, admin, make_key, slug):
    """notifications/cancelled sent by hand on a legacy Streamable HTTP session."""
    import threading

    key = make_key()
    sid = raw.open_session(key)
    outcome = {}

    def call():
        t0 = time.monotonic()
        resp = raw.session_post(sid, jsonrpc("tools/call", {"name": f"{slug}_e2e_sleep",
                                                            "arguments": {"seconds": 20, "steps": 40}}, id="c-1"),
                                key, Accept="application/json")
        outcome.update(resp=resp, elapsed=time.monotonic() - t0)

    worker = threading.Thread(target=call)
    worker.start()
    admin.wait_audit([("key_id", "=", key.id), ("tool", "=", "e2e_sleep"), ("status", "=", "running")])
    note = raw.session_post(sid, jsonrpc("notifications/cancelled", {"requestId": "c-1", "reason": "e2e"}, id=None),
                            key)
    assert note.status_code == 202
    worker.join(20)
    assert not worker.is_alive()
    body = parse_body(outcome["resp"])
    assert outcome["elapsed"] < 10
    # the reply of a cancelled request: an error result (the client ignores it anyway)
    assert body["result"]["isError"] is True and "cancelled" in body["result"]["content"][0]["text"]
    row = admin.audit([("key_id", "=", key.id), ("tool", "=", "e2e_sleep")])[0]
    assert row["status"] == "error" and row["refusal_reason"] == "cancelled"


# -- filters ---------------------------------------------------------------------------------------


@by_transport()
async def test_instances_filter(mcp_client, slug, transport, mode):
    async with mcp_client(transport, mode, query="?instances=other_instance") as client:
        names = {t.name for t in await list_all_tools(client)}
        assert names == PLATFORM_TOOLS
        refused = await client.call_tool(f"{slug}_e2e_echo", {"text": "x"})
        assert "permission denied" in error_of(refused) and "instance filter" in error_of(refused)
        # platform tools are not instance-scoped
        assert data_of(await client.call_tool("ocore_list_instances", {}))["instances"][0]["slug"] == slug
    async with mcp_client(transport, mode, query=f"?instances=other,{slug}") as client:
        assert f"{slug}_e2e_echo" in {t.name for t in await list_all_tools(client)}


@by_transport()
async def test_categories_filter(mcp_client, slug, transport, mode):
    async with mcp_client(transport, mode, query="?categories=platform") as client:
        assert {t.name for t in await list_all_tools(client)} == PLATFORM_TOOLS
        refused = await client.call_tool(f"{slug}_e2e_echo", {"text": "x"})
        assert "permission denied" in error_of(refused) and "categories" in error_of(refused)
    async with mcp_client(transport, mode, query="?categories=orm") as client:
        names = {t.name for t in await list_all_tools(client)}
        assert f"{slug}_e2e_echo" in names and not names & PLATFORM_TOOLS


@by_transport()
async def test_large_replies(mcp_client, slug, transport, mode):
    """Replies over NOTIFY's 8 KB reach the client whole: on a legacy SSE stream a compressible one
    travels compressed, an incompressible one through the ocore_mcp_message table."""
    compressible = "Partner Brussels 1000; " * 2000
    incompressible = base64.b64encode(os.urandom(12000)).decode()
    async with mcp_client(transport, mode) as client:
        for text in (compressible, incompressible):
            assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": text}))["text"] == text


# -- aliases -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("transport", "mode", "path"), [
    ("stream", "legacy", "/api/mcp/stream"),
    ("stream", MODERN, "/api/mcp/stream"),
    ("sse", "legacy", "/api/mcp/sse"),
])
async def test_api_aliases(mcp_client, slug, transport, mode, path):
    async with mcp_client(transport, mode, path=path) as client:
        assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": path}))["text"] == path


def test_sse_alias_endpoint_stays_under_alias(odoo, admin_key):
    reader = SseReader(odoo.stream_url, admin_key, path="/api/mcp/sse")
    try:
        assert reader.read_endpoint().startswith("/api/mcp/sse/messages?session_id=")
    finally:
        reader.close()


# -- raw HTTP: authentication ------------------------------------------------------------------------


@pytest.mark.parametrize("path", [STREAM_PATH, "/api/mcp/stream"])
def test_missing_key_is_401_with_www_authenticate(raw, admin, path):
    resp = raw.post(path, initialize_msg())
    assert resp.status_code == 401
    challenge = resp.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer ") and 'error="invalid_request"' in challenge
    body = resp.json()
    assert body["error"]["message"].startswith("unauthorized")


def test_bad_key_is_401_invalid_token(raw, admin_key):
    for token in ("nonsense", admin_key.secret[:-4] + "AAAA", "ocore_ffffffffff_x"):
        resp = raw.post(STREAM_PATH, initialize_msg(), headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, token
        assert 'error="invalid_token"' in resp.headers["www-authenticate"]
        assert "unauthorized" in resp.json()["error"]["message"]


def test_sse_without_key_is_401(raw):
    resp = raw.request("GET", SSE_PATH, headers={"Accept": "text/event-stream"})
    assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Bearer ")


def test_modern_without_key_is_401(raw):
    body, headers = modern_request("tools/list")
    resp = raw.post(STREAM_PATH, body, headers=headers)
    assert resp.status_code == 401 and "www-authenticate" in resp.headers


# -- raw HTTP: sessions ---------------------------------------------------------------------------


def test_unknown_session_is_404(raw, admin_key):
    resp = raw.session_post("no-such-session", jsonrpc("tools/list"), admin_key)
    assert resp.status_code == 404


def test_session_of_another_key_is_404(raw, admin_key, make_key):
    other = make_key()
    sid = raw.open_session(admin_key)
    resp = raw.session_post(sid, jsonrpc("tools/list"), other)
    assert resp.status_code == 404


def test_missing_session_id_is_400(raw, admin_key):
    resp = raw.post(STREAM_PATH, jsonrpc("tools/list"), key=admin_key)
    assert resp.status_code == 400
    assert "Mcp-Session-Id" in resp.json()["error"]["message"]


def test_delete_ends_the_session(raw, admin, make_key):
    key = make_key()
    sid = raw.open_session(key)
    assert raw.session_post(sid, jsonrpc("ping"), key).status_code == 200
    resp = raw.request("DELETE", STREAM_PATH, key=key, headers={"Mcp-Session-Id": sid})
    assert resp.status_code == 200
    assert raw.session_post(sid, jsonrpc("ping"), key).status_code == 404
    events = {r["event"]: r for r in admin.audit([("key_id", "=", key.id), ("session_id", "=", sid)])}
    assert {"session_start", "session_end"} <= set(events)
    assert events["session_end"]["status"] == "success"
    assert events["session_start"]["client_name"] == "ocore-e2e-raw"
    session = admin.sessions([("session_id", "=", sid)])[0]
    assert session["ended_at"] and session["end_reason"] == "client closed the session"


async def test_sdk_close_sends_delete(mcp_client, admin, make_key):
    key = make_key()
    async with mcp_client("stream", "legacy", key=key) as client:
        sid = client.e2e.session_id
        assert sid
        assert not admin.sessions([("session_id", "=", sid)])[0]["ended_at"]
    row = admin.wait_audit([("session_id", "=", sid), ("event", "=", "session_end")])[0]
    assert row["key_id"][0] == key.id


def test_sse_session_start_is_audited(odoo, admin, make_key):
    key = make_key()
    reader = SseReader(odoo.stream_url, key)
    try:
        reader.read_endpoint()
        start = admin.audit([("session_id", "=", reader.session_id), ("event", "=", "session_start")])
        assert start and start[0]["transport"] == "sse" and start[0]["key_id"][0] == key.id
        session = admin.sessions([("session_id", "=", reader.session_id)])[0]
        assert session["transport"] == "sse" and not session["ended_at"]
    finally:
        reader.close()


def test_sse_messages_only_for_the_keys_own_open_sse_session(odoo, raw, admin, make_key, slug):
    """A legacy SSE POST runs only in an open SSE session of its own key: an unknown, missing, ended or other
    key's session, or a Streamable HTTP session's id, is 404 and nothing runs (no audit row)."""
    key, other = make_key(), make_key()
    reader = SseReader(odoo.stream_url, key)
    try:
        endpoint = reader.read_endpoint()
        call = jsonrpc("tools/call", {"name": f"{slug}_e2e_echo", "arguments": {"text": "sse-scope"}})
        stream_sid = raw.open_session(key)
        for path, who in ((endpoint, other), ("/ocore/mcp/sse/messages?session_id=no-such-session", key),
                          ("/ocore/mcp/sse/messages", key),
                          (f"/ocore/mcp/sse/messages?session_id={stream_sid}", key)):
            resp = raw.post(path, call, key=who)
            assert resp.status_code == 404, (path, resp.status_code, resp.text)
            assert resp.json()["error"]["message"] == "Session not found"
        assert not admin.audit([("event", "=", "call"), ("key_id", "in", [key.id, other.id])])
        assert raw.post(endpoint, call, key=key).status_code == 202  # its own key and session
        admin.wait_audit([("event", "=", "call"), ("key_id", "=", key.id), ("status", "=", "success")])
    finally:
        reader.close()
    admin.wait_audit([("session_id", "=", reader.session_id), ("event", "=", "session_end")])
    resp = raw.post(endpoint, call, key=key)  # the stream closed: its session ended
    assert resp.status_code == 404, resp.text
    assert len(admin.audit([("event", "=", "call"), ("key_id", "=", key.id)])) == 1


def test_options_preflight_has_cors(raw):
    resp = raw.request("OPTIONS", STREAM_PATH)
    assert resp.status_code == 204
    assert "Mcp-Session-Id" in resp.headers["access-control-allow-headers"]
    assert "Mcp-Session-Id" in resp.headers["access-control-expose-headers"]


def test_get_stream_requires_event_stream_accept(raw, admin_key):
    sid = raw.open_session(admin_key)
    resp = raw.request("GET", STREAM_PATH, key=admin_key,
                       headers={"Mcp-Session-Id": sid, "Accept": "application/json"})
    assert resp.status_code == 406


# -- raw HTTP: framing errors -----------------------------------------------------------------------


def test_parse_error_is_400(raw, admin_key):
    resp = raw.post(STREAM_PATH, key=admin_key, raw=b"{not json")
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == mcp_types.PARSE_ERROR


def test_parse_error_modern_is_400(raw, admin_key):
    _, headers = modern_request("tools/list")
    resp = raw.post(STREAM_PATH, key=admin_key, raw=b"[1,", headers=headers)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == mcp_types.PARSE_ERROR


def test_unknown_method(raw, admin_key):
    sid = raw.open_session(admin_key)
    resp = raw.session_post(sid, jsonrpc("resources/nope", {}), admin_key)
    body = parse_body(resp)
    assert body["error"]["code"] == mcp_types.METHOD_NOT_FOUND


def test_batch_on_legacy_session(raw, admin_key):
    sid = raw.open_session(admin_key)
    resp = raw.session_post(sid, [jsonrpc("ping", id=1), jsonrpc("tools/list", id=2)], admin_key)
    assert resp.status_code == 200
    replies = {r["id"]: r for r in resp.json()}
    assert replies[1]["result"] == {} and replies[2]["result"]["tools"]


# -- raw HTTP: 2026-07-28 envelope ---------------------------------------------------------------------


def test_modern_request_ok(raw, admin_key, slug):
    body, headers = modern_request("tools/call", {"name": f"{slug}_e2e_echo", "arguments": {"text": "m"}})
    resp = raw.post(STREAM_PATH, body, key=admin_key, headers=headers)
    assert resp.status_code == 200, resp.text
    result = parse_body(resp)["result"]
    assert result["structuredContent"]["text"] == "m" and result["resultType"] == "complete"
    assert "mcp-session-id" not in resp.headers


def test_modern_discover(raw, admin_key):
    body, headers = modern_request("server/discover")
    resp = raw.post(STREAM_PATH, body, key=admin_key, headers=headers)
    result = parse_body(resp)["result"]
    assert MODERN in result["supportedVersions"] and LATEST_HANDSHAKE in result["supportedVersions"]
    assert result["_meta"][mcp_types.SERVER_INFO_META_KEY]["name"] == "ocore-mcp"


@pytest.mark.parametrize("mismatch", ["method", "version", "name"])
def test_modern_header_mismatch(raw, admin_key, slug, mismatch):
    if mismatch == "method":
        body, headers = modern_request("tools/list", headers={"Mcp-Method": "tools/call"})
    elif mismatch == "version":
        body, headers = modern_request("tools/list")
        body["params"]["_meta"][mcp_types.PROTOCOL_VERSION_META_KEY] = "2025-11-25"
    else:
        body, headers = modern_request("tools/call", {"name": f"{slug}_e2e_echo", "arguments": {"text": "x"}},
                                       headers={"Mcp-Name": f"{slug}_e2e_sleep"})
    resp = raw.post(STREAM_PATH, body, key=admin_key, headers=headers)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == mcp_types.HEADER_MISMATCH == -32020


def test_modern_unsupported_version(raw, admin_key):
    body, headers = modern_request("tools/list", version="2099-01-01")
    resp = raw.post(STREAM_PATH, body, key=admin_key, headers=headers)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == mcp_types.UNSUPPORTED_PROTOCOL_VERSION == -32022
    assert MODERN in error["data"]["supported"] and error["data"]["requested"] == "2099-01-01"


def test_modern_missing_envelope(raw, admin_key):
    body, headers = modern_request("tools/list")
    del body["params"]["_meta"]
    resp = raw.post(STREAM_PATH, body, key=admin_key, headers=headers)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == mcp_types.INVALID_PARAMS


def test_modern_get_is_405(raw, admin_key):
    resp = raw.request("GET", STREAM_PATH, key=admin_key, headers={"MCP-Protocol-Version": MODERN})
    assert resp.status_code == 405


def test_modern_progress_stream_raw(raw, admin_key, slug):
    """A 2026-07-28 tools/call with a progress token is answered as an SSE stream."""
    body, headers = modern_request("tools/call", {
        "name": f"{slug}_e2e_sleep", "arguments": {"seconds": 0.3, "steps": 2},
        "_meta": {"progressToken": "tok-1"}})
    resp = raw.post(STREAM_PATH, body, key=admin_key, headers=headers)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    messages = [json.loads(line[5:]) for line in resp.text.replace("\r\n", "\n").split("\n")
                if line.startswith("data:")]
    progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
    assert [(p["progressToken"], p["progress"], p["total"]) for p in progress] == [("tok-1", 1, 2), ("tok-1", 2, 2)]
    assert messages[-1]["id"] == 1 and messages[-1]["result"]["structuredContent"]["steps"] == 2


async def test_tool_error_is_a_result_not_a_protocol_error(mcp_client, slug):
    async with mcp_client("stream", MODERN) as client:
        result = await client.call_tool(f"{slug}_e2e_echo", {"text": 1234, "bogus": True})
        text = error_of(result)
        assert "invalid input" in text and "bogus: unknown argument" in text and "text:" in text
        unknown = await client.call_tool(f"{slug}_no_such_tool", {})
        assert "unknown tool" in error_of(unknown)
        assert text_of(unknown)
