"""The policy pipeline end to end: every refusal, with its reason and its audit row."""

from __future__ import annotations

import datetime
import secrets
import threading
import time
import xmlrpc.client

import anyio
import pytest
from harness import pg_query
from mcp_helpers import (
    MODERN,
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
    text_of,
)

pytestmark = pytest.mark.anyio


def by_transport():
    return pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)


def unique(prefix="e2e"):
    return f"{prefix} {secrets.token_hex(4)}"


def partner_ids(admin, name):
    return admin.call("res.partner", "search", [("name", "=", name)], context={"active_test": False})


def last_call(admin, key, tool):
    rows = admin.audit([("key_id", "=", key.id), ("tool", "=", tool), ("event", "=", "call")], limit=1)
    assert rows, f"no audit row for {tool} of key {key.id}"
    return rows[0]


def assert_refused_row(row, reason, text=None):
    assert row["status"] == "refused" and row["success"] is False, row
    assert row["refusal_reason"] == reason, row
    if text:
        assert text in row["error_message"], row


# -- connection-level refusals (401 / 403) ------------------------------------------------------


def _denied_rows(admin, key):
    return admin.audit([("key_id", "=", key.id), ("event", "=", "denied")])


@pytest.mark.parametrize("case", ["revoked", "expired", "owner_inactive"])
def test_invalid_key_is_401(raw, admin, make_key, case):
    if case == "revoked":
        key = make_key()
        admin.revoke_key(key)
        reason = "the API key has been revoked"
    elif case == "expired":
        past = (datetime.datetime.utcnow() - datetime.timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
        key = make_key(expiration_date=past)
        reason = "the API key has expired"
    else:
        user = admin.create_user(f"e2e_inactive_{secrets.token_hex(3)}")
        key = make_key(user_id=user)
        admin.write("res.users", [user], {"active": False})
        reason = "the API key's owner has been deactivated"
    for path, body, headers in (
        (STREAM_PATH, initialize_msg(), {}),
        (STREAM_PATH, *modern_request("tools/list")),
    ):
        resp = raw.post(path, body, key=key, headers=headers)
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"]["message"] == f"unauthorized: {reason}"
        assert 'error="invalid_token"' in resp.headers["www-authenticate"]
    sse = raw.request("GET", "/ocore/mcp/sse", key=key, headers={"Accept": "text/event-stream"})
    assert sse.status_code == 401
    rows = _denied_rows(admin, key)
    assert len(rows) == 3
    for row in rows:
        assert_refused_row(row, "unauthorized", reason)


def test_future_expiration_is_accepted(raw, make_key):
    future = (datetime.datetime.utcnow() + datetime.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    key = make_key(expiration_date=future)
    assert raw.post(STREAM_PATH, initialize_msg(), key=key).status_code == 200


def test_revoked_key_cannot_continue_its_session(raw, admin, make_key):
    key = make_key()
    sid = raw.open_session(key)
    assert raw.session_post(sid, jsonrpc("ping"), key).status_code == 200
    admin.revoke_key(key)
    resp = raw.session_post(sid, jsonrpc("ping"), key)
    assert resp.status_code == 401
    assert "revoked" in resp.json()["error"]["message"]
    session = admin.sessions([("session_id", "=", sid)])[0]
    assert session["ended_at"] and session["end_reason"] == "the API key has been revoked"


def test_kill_switch_is_403(raw, admin, make_key, slug):
    key = make_key()
    sid = raw.open_session(key)
    with admin.params(enabled="0"):
        resp = raw.post(STREAM_PATH, initialize_msg(), key=key)
        assert resp.status_code == 403
        message = resp.json()["error"]["message"]
        assert message.startswith("unauthorized") and "kill switch" in message
        # an open session is cut as well, and the 2026-07-28 path too
        assert raw.session_post(sid, jsonrpc("tools/list"), key).status_code == 403
        body, headers = modern_request("tools/call", {"name": f"{slug}_e2e_echo", "arguments": {"text": "x"}})
        assert raw.post(STREAM_PATH, body, key=key, headers=headers).status_code == 403
        assert raw.request("GET", "/ocore/mcp/sse", key=key, headers={"Accept": "text/event-stream"}).status_code == 403
    rows = _denied_rows(admin, key)
    assert len(rows) == 4
    for row in rows:
        assert_refused_row(row, "mcp_disabled", "kill switch")
    # back on: the session works again
    assert raw.session_post(sid, jsonrpc("ping"), key).status_code == 200


def test_ip_allowlist(raw, admin, make_key):
    outside = make_key(ip_allowlist="10.0.0.0/8, 192.168.1.7")
    resp = raw.post(STREAM_PATH, initialize_msg(), key=outside)
    assert resp.status_code == 403
    assert "127.0.0.1 is not in the key's IP allowlist" in resp.json()["error"]["message"]
    assert_refused_row(_denied_rows(admin, outside)[0], "ip_denied", "127.0.0.1")
    for allowlist in ("127.0.0.0/8", "10.0.0.0/8\n127.0.0.1"):
        inside = make_key(ip_allowlist=allowlist)
        assert raw.post(STREAM_PATH, initialize_msg(), key=inside).status_code == 200, allowlist


def test_ip_allowlist_rejects_garbage(admin):
    with pytest.raises(xmlrpc.client.Fault) as exc:
        admin.create_key(ip_allowlist="not-an-ip")
    assert "not an IP address" in exc.value.faultString


# -- tool-level refusals ----------------------------------------------------------------------


@by_transport()
async def test_category_not_allowed(mcp_client, admin, make_key, slug, transport, mode):
    key = make_key(categories=["platform"])
    async with mcp_client(transport, mode, key=key) as client:
        names = {t.name for t in await list_all_tools(client)}
        assert names == {"ocore_list_instances", "ocore_list_servers"}
        text = error_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "x"}))
        assert text.startswith("permission denied") and "'orm' category" in text
        assert data_of(await client.call_tool("ocore_list_instances", {}))["instances"]
    assert_refused_row(last_call(admin, key, "e2e_echo"), "category_denied", "'orm' category")


async def test_category_allowlist_of_several(mcp_client, make_key, slug):
    key = make_key(categories=["orm", "search"])
    async with mcp_client(key=key) as client:
        names = {t.name for t in await list_all_tools(client)}
        assert f"{slug}_e2e_echo" in names and f"{slug}_advanced_search" in names
        assert not names & {"ocore_list_instances", "ocore_list_servers"}
        assert {n for n in names if not n.startswith(f"{slug}_")} == set()
        assert "permission denied" in error_of(await client.call_tool("ocore_list_servers", {}))


async def test_tool_denylist(mcp_client, admin, make_key, slug):
    key = make_key(tool_denylist="e2e_echo")
    async with mcp_client(key=key) as client:
        names = {t.name for t in await list_all_tools(client)}
        assert f"{slug}_e2e_echo" not in names and f"{slug}_e2e_sleep" in names
        text = error_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "x"}))
        assert text == "permission denied: tool 'e2e_echo' is in the API key's tool denylist"
    assert_refused_row(last_call(admin, key, "e2e_echo"), "tool_denied", "denylist")


async def test_tool_allowlist(mcp_client, admin, make_key, slug):
    key = make_key(tool_allowlist="e2e_echo\nlist_instances")
    async with mcp_client(key=key) as client:
        names = {t.name for t in await list_all_tools(client)}
        assert names == {f"{slug}_e2e_echo", "ocore_list_instances"}
        assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "ok"}))["text"] == "ok"
        text = error_of(await client.call_tool(f"{slug}_e2e_sleep", {"seconds": 0}))
        assert text == "permission denied: tool 'e2e_sleep' is not in the API key's tool allowlist"
    assert_refused_row(last_call(admin, key, "e2e_sleep"), "tool_denied", "allowlist")


async def test_model_allowlist(mcp_client, admin, make_key, slug):
    key = make_key(models=["res.partner"])
    async with mcp_client(key=key) as client:
        assert data_of(await client.call_tool(f"{slug}_count", {"model": "res.partner"}))["count"] >= 1
        text = error_of(await client.call_tool(f"{slug}_count", {"model": "res.users"}))
        assert text.startswith("permission denied") and "'res.users' is not in the API key's model allowlist" in text
    assert_refused_row(last_call(admin, key, "count"), "model_denied", "res.users")


async def test_identifier_validation(mcp_client, admin, make_key, slug):
    key = make_key()
    async with mcp_client(key=key) as client:
        for bad in ("res.partner; drop", "res_partner WHERE 1=1", "1abc", "x" * 129):
            text = error_of(await client.call_tool(f"{slug}_count", {"model": bad}))
            assert text.startswith("invalid input") and "not a valid identifier" in text, text
    row = last_call(admin, key, "count")
    assert_refused_row(row, "invalid_input", "not a valid identifier")


@by_transport()
async def test_read_only_key_blocks_writes(mcp_client, admin, make_key, slug, transport, mode):
    key = make_key(read_only=True)
    name = unique("e2e read-only")
    async with mcp_client(transport, mode, key=key) as client:
        text = error_of(await client.call_tool(f"{slug}_e2e_create_partner", {"name": name}))
        assert text == "write operations blocked: the API key is read-only; 'e2e_create_partner' is a write operation"
        destructive = error_of(await client.call_tool(f"{slug}_e2e_delete_partner", {"partner_id": 1,
                                                                                       "confirm": True}))
        assert destructive.startswith("write operations blocked")
        # reads still work
        assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "r"}))["text"] == "r"
    assert partner_ids(admin, name) == []
    assert_refused_row(last_call(admin, key, "e2e_create_partner"), "read_only_key")


async def test_viewer_may_only_hold_read_only_keys(mcp_client, admin, slug):
    viewer = admin.create_user(f"e2e_viewer_{secrets.token_hex(3)}", groups=("ocore_mcp.group_mcp_viewer",))
    with pytest.raises(xmlrpc.client.Fault) as exc:
        admin.create_key(user_id=viewer)
    assert "must be read-only" in exc.value.faultString
    key = admin.create_key(user_id=viewer, read_only=True)
    async with mcp_client(key=key) as client:
        assert "write operations blocked" in error_of(
            await client.call_tool(f"{slug}_e2e_create_partner", {"name": unique()}))


async def test_production_guard(mcp_client, admin, make_key, slug):
    key = make_key()
    name = unique("e2e guard")
    async with mcp_client(key=key) as client:
        with admin.params(write_enabled="0"):
            text = error_of(await client.call_tool(f"{slug}_e2e_create_partner", {"name": name}))
            assert text.startswith("write operations blocked: this instance has mcp_write_enabled off")
            assert "production guard" in text
            assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "r"}))["text"] == "r"
            instances = data_of(await client.call_tool("ocore_list_instances", {}))["instances"]
            assert instances[0]["mcp_write_enabled"] is False
        # environment "production" turns writes off by default ...
        with admin.params(environment="production", write_enabled=None):
            text = error_of(await client.call_tool(f"{slug}_e2e_create_partner", {"name": name}))
            assert "production guard" in text
            assert data_of(await client.call_tool("ocore_list_instances", {}))["instances"][0]["environment"] == \
                "production"
        assert partner_ids(admin, name) == []
        # ... unless explicitly enabled
        with admin.params(environment="production", write_enabled="1"):
            created = data_of(await client.call_tool(f"{slug}_e2e_create_partner", {"name": name}))
    assert partner_ids(admin, name) == [created["id"]]
    rows = admin.audit([("key_id", "=", key.id), ("tool", "=", "e2e_create_partner")])
    assert [r["refusal_reason"] or r["status"] for r in rows] == ["success", "write_disabled", "write_disabled"]


async def test_destructive_needs_confirm(mcp_client, admin, make_key, slug):
    key = make_key()
    partner = admin.create("res.partner", {"name": unique("e2e destructive")})
    async with mcp_client(key=key) as client:
        text = error_of(await client.call_tool(f"{slug}_e2e_delete_partner", {"partner_id": partner}))
        assert text.startswith("confirmation required") and "Nothing was done" in text
        assert "confirm: true" in text
        assert admin.search_read("res.partner", [("id", "=", partner)], ["id"])
        preview = data_of(await client.call_tool(f"{slug}_e2e_delete_partner",
                                                 {"partner_id": partner, "dry_run": True}))
        assert preview["dry_run"] is True and preview["would_return"] == {"deleted": partner}
        assert admin.search_read("res.partner", [("id", "=", partner)], ["id"])
        done = data_of(await client.call_tool(f"{slug}_e2e_delete_partner", {"partner_id": partner, "confirm": True}))
        assert done == {"deleted": partner}
    assert admin.search_read("res.partner", [("id", "=", partner)], ["id"]) == []
    rows = admin.audit([("key_id", "=", key.id), ("tool", "=", "e2e_delete_partner")])
    assert [r["refusal_reason"] or r["status"] for r in rows] == ["success", "success", "confirm_required"]
    assert rows[1]["dry_run"] is True


async def test_rate_limit(mcp_client, admin, make_key, slug):
    # every request counts: the SDK's initialize and tools/list (before its first call), then 5 calls
    key = make_key(rate_limit=7)
    async with mcp_client(key=key) as client:
        for i in range(5):
            assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": str(i)}))["text"] == str(i)
        text = error_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "6th"}))
        assert text.startswith("rate limit exceeded") and "limit 7/min" in text
        # the limit is per key: another key is not affected
    async with mcp_client(key=make_key(rate_limit=7)) as other:
        assert data_of(await other.call_tool(f"{slug}_e2e_echo", {"text": "other"}))["text"] == "other"
    rows = admin.audit([("key_id", "=", key.id), ("tool", "=", "e2e_echo")])
    assert len(rows) == 6
    assert_refused_row(rows[0], "rate_limited", "limit 7/min")
    assert all(r["status"] == "success" for r in rows[1:])


async def test_rate_limit_counts_across_sessions_and_transports(odoo, mcp_client, make_key, slug):
    # every request counts (initialize or server/discover, the SDK's tools/list, the calls), whatever the
    # session or transport: the limit is reached in a 4th session, and exactly the admitted ones are counted
    key = make_key(rate_limit=9)
    for transport, mode in (("stream", "legacy"), ("sse", "legacy"), ("stream", MODERN)):
        async with mcp_client(transport, mode, key=key) as client:
            assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": transport}))
    refusal = ""
    try:
        async with mcp_client("stream", MODERN, key=key) as client:
            for i in range(5):
                result = await client.call_tool(f"{slug}_e2e_echo", {"text": f"4th {i}"})
                if result.is_error:
                    refusal = error_of(result)
                    break
    except Exception as exc:  # noqa: BLE001 - the SDK's own tools/list may be the refused request
        refusal = repr(getattr(exc, "exceptions", exc))  # an ExceptionGroup: its members
    assert "rate limit exceeded" in refusal and "limit 9/min" in refusal, refusal
    hits = pg_query(odoo.setup, odoo.db, "SELECT count(*) FROM ocore_mcp_rate_hit WHERE key_id = %s", (key.id,))
    assert hits[0][0] == 9


# -- timeouts, response size, context ------------------------------------------------------------


async def test_timeout_pure_python_loop(mcp_client, admin, make_key, slug):
    key = make_key()
    async with mcp_client(key=key) as client:
        started = time.monotonic()
        result = await client.call_tool(f"{slug}_e2e_busy_loop", {"seconds": 30, "timeout_seconds": 2})
        elapsed = time.monotonic() - started
        text = error_of(result)
        assert text.startswith("timeout") and "timeout_seconds=2" in text
        assert 1.8 <= elapsed < 6, elapsed
        # the server thread is free again
        assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "alive"}))["text"] == "alive"
    row = last_call(admin, key, "e2e_busy_loop")
    assert row["status"] == "error" and row["refusal_reason"] == "timeout"
    assert 1800 <= row["latency_ms"] < 6000


async def test_timeout_statement_pg_sleep(mcp_client, admin, make_key, slug):
    key = make_key()
    async with mcp_client(key=key) as client:
        started = time.monotonic()
        result = await client.call_tool(f"{slug}_e2e_pg_sleep", {"seconds": 30, "timeout_seconds": 2})
        elapsed = time.monotonic() - started
        text = error_of(result)
        assert text.startswith("timeout") and "timeout_seconds=2" in text
        assert 1.8 <= elapsed < 6, elapsed
        # the transaction is usable after the cancelled statement
        assert data_of(await client.call_tool(f"{slug}_e2e_pg_sleep", {"seconds": 0.1}))["slept"] >= 0.1
    row = admin.audit([("key_id", "=", key.id), ("tool", "=", "e2e_pg_sleep")])[1]
    assert row["status"] == "error" and row["refusal_reason"] == "timeout"


async def test_default_timeout_setting(mcp_client, admin, make_key, slug):
    key = make_key()
    async with mcp_client(key=key) as client:
        with admin.params(default_timeout=1):
            started = time.monotonic()
            text = error_of(await client.call_tool(f"{slug}_e2e_busy_loop", {"seconds": 20}))
            assert "timeout_seconds=1" in text and time.monotonic() - started < 4


@pytest.mark.parametrize(("name", "value"), [
    ("timeout_seconds", "abc"), ("timeout_seconds", 0), ("timeout_seconds", 500), ("timeout_seconds", 1.5),
    ("max_response_size", "big"), ("max_response_size", 0), ("context", "fr_FR"), ("context", [1]),
])
async def test_common_parameters_are_validated(mcp_client, admin, make_key, slug, name, value):
    """Wrong values of the common parameters are a clear tool error (the schema says integer 1-120 …)."""
    key = make_key()
    async with mcp_client(key=key) as client:
        text = error_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "x", name: value}))
    assert text.startswith("invalid input") and name in text, text
    assert_refused_row(last_call(admin, key, "e2e_echo"), "invalid_input")


async def test_max_response_size_truncation(mcp_client, admin, make_key, slug):
    key = make_key()
    big = "y" * 5000
    async with mcp_client(key=key) as client:
        full = data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": big}))
        assert full["text"] == big
        result = await client.call_tool(f"{slug}_e2e_echo", {"text": big, "max_response_size": 1})
        data = data_of(result)
        assert data["truncated"] is True and "1 KB" in data["truncation"]
        assert len(text_of(result).encode()) <= 1024 + 200
        assert "truncated" in text_of(result)
        with admin.params(max_response_kb=2):
            data = data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": big}))
            assert data["truncated"] is True and "2 KB" in data["truncation"]


async def test_context_company_must_be_the_users(mcp_client, admin, make_key, slug):
    main_company = admin.search_read("res.users", [("id", "=", admin.uid)], ["company_id"])[0]["company_id"][0]
    other_company = admin.create("res.company", {"name": unique("E2E Other Co")})
    user = admin.create_user(f"e2e_company_{secrets.token_hex(3)}", company_ids=[main_company])
    key = make_key(user_id=user)
    async with mcp_client(key=key) as client:
        text = error_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "x",
                                                                     "context": {"company_id": other_company}}))
        assert text.startswith("invalid input") and f"context.company_id {other_company}" in text
        assert "not one of the key owner's companies" in text
        ok = data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "x", "context": {"company_id": main_company}}))
        assert ok["company_id"] == main_company and ok["uid"] == user
        for bad, words in (({"lang": "xx_XX"}, "not an installed language"), ({"tz": "Mars/Olympus"}, "time zone"),
                           ({"uid": 1}, "not supported"), ({"company_id": "1"}, "company_id")):
            assert words in error_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "x", "context": bad}))
        tz = data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "x", "context": {"tz": "Europe/Brussels"}}))
        assert tz["tz"] == "Europe/Brussels"
    assert_refused_row(admin.audit([("key_id", "=", key.id), ("tool", "=", "e2e_echo")])[-1], "invalid_input",
                       "company_id")


async def test_tools_run_as_the_key_owner(mcp_client, admin, make_key, slug):
    login = f"e2e_owner_{secrets.token_hex(3)}"
    user = admin.create_user(login)
    async with mcp_client(key=make_key(user_id=user)) as client:
        data = data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "who"}))
    assert data["uid"] == user and data["login"] == login


# -- transactions --------------------------------------------------------------------------------


async def test_failed_write_rolls_back_and_is_audited(mcp_client, admin, make_key, slug):
    key = make_key()
    name = unique("e2e rollback")
    async with mcp_client(key=key) as client:
        text = error_of(await client.call_tool(f"{slug}_e2e_create_partner", {"name": name, "fail": True}))
        # the exception's text is data the tool quoted: marked as untrusted after the server's "error:" prefix
        assert text.startswith("error: ") and "\ne2e: failing after creating partner" in text
        assert "<untrusted-data-" in text
        # the same tool without the failure does write: the rollback above is not a no-op tool
        created = data_of(await client.call_tool(f"{slug}_e2e_create_partner", {"name": name + " ok"}))
    assert partner_ids(admin, name) == []
    assert partner_ids(admin, name + " ok") == [created["id"]]
    failed = admin.audit([("key_id", "=", key.id), ("tool", "=", "e2e_create_partner")])[1]
    assert failed["status"] == "error" and failed["success"] is False
    assert "failing after creating partner" in failed["error_message"]
    assert failed["latency_ms"] >= 0 and failed["params"]


async def test_dry_run_rolls_back(mcp_client, admin, make_key, slug):
    key = make_key()
    name = unique("e2e dry run")
    async with mcp_client(key=key) as client:
        data = data_of(await client.call_tool(f"{slug}_e2e_create_partner", {"name": name, "dry_run": True}))
        assert data["dry_run"] is True and data["rolled_back"] is True
        assert data["would_return"]["name"] == name and isinstance(data["would_return"]["id"], int)
        # read tools do not take dry_run
        assert "dry_run" in error_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "x", "dry_run": True}))
    assert partner_ids(admin, name) == []
    row = admin.audit([("key_id", "=", key.id), ("tool", "=", "e2e_create_partner")])[0]
    assert row["dry_run"] is True and row["status"] == "success"


async def test_audit_row_fields_and_secret_redaction(mcp_client, admin, make_key, slug):
    key = make_key()
    secret_values = ["hunter2-e2e", "k-e2e-123", "t-e2e-456", "Bearer e2e-789"]
    async with mcp_client("sse", "legacy", key=key) as client:
        data = data_of(await client.call_tool(f"{slug}_e2e_echo", {
            "text": "hello",
            "password": secret_values[0],
            "options": {"nested": {"api_key": secret_values[1], "list": [{"access_token": secret_values[2]}]},
                        "Authorization": secret_values[3], "keep": "visible-value"},
        }))
        assert data["got_password"] is True
        sid = client.e2e.session_id
    row = last_call(admin, key, "e2e_echo")
    for value in secret_values:
        assert value not in row["params"] and value not in (row["result_summary"] or "")
    assert row["params"].count("[REDACTED]") == 4 and "visible-value" in row["params"]
    assert row["status"] == "success" and row["success"] is True
    assert row["tool_name"] == f"{slug}_e2e_echo" and row["category"] == "orm"
    assert row["session_id"] == sid and row["transport"] == "sse" and row["ip_address"] == "127.0.0.1"
    assert row["client_name"] == "ocore-e2e" and row["protocol_version"] == "2025-11-25"
    assert row["user_id"][0] == key.user_id and row["latency_ms"] >= 0
    assert len(row["result_summary"]) <= 500


async def test_result_summary_is_capped(mcp_client, admin, make_key, slug):
    key = make_key()
    async with mcp_client(key=key) as client:
        assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "z" * 3000}))
    row = last_call(admin, key, "e2e_echo")
    assert len(row["result_summary"]) == 500


# -- revocation of an open legacy SSE stream ---------------------------------------------------------


def test_revoked_key_closes_open_sse_stream(odoo, admin, make_key):
    key = make_key()
    reader = SseReader(odoo.stream_url, key)
    try:
        reader.read_endpoint()
        threading.Timer(0.5, admin.revoke_key, args=(key,)).start()
        elapsed = reader.wait_closed(timeout=30)
    finally:
        reader.close()
    assert elapsed <= 30
    row = admin.wait_audit([("session_id", "=", reader.session_id), ("event", "=", "session_end")])[0]
    assert "revoked" in row["result_summary"]


async def test_open_sse_streams_after_30s(odoo, admin, make_key, mcp_client, slug):
    """The only slow test (~31 s), two checks that need the clock:

    * deactivating a key's owner has no hook that tells the open streams: the periodic re-validation
      (at least every 30 s) must notice and close the stream;
    * a legacy SSE session that stayed idle for more than 30 s still gets its answers (the server's
      NOTIFY listener keeps working after its idle keep-alive).
    """
    user = admin.create_user(f"e2e_sse_owner_{secrets.token_hex(3)}")
    reader = SseReader(odoo.stream_url, make_key(user_id=user))
    try:
        reader.read_endpoint()
        async with mcp_client("sse", "legacy", key=make_key()) as client:
            assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "before"}))["text"] == "before"
            last_message = time.monotonic()
            admin.write("res.users", [user], {"active": False})
            await anyio.to_thread.run_sync(reader.wait_closed, 35)
            closed_after = time.monotonic() - last_message
            assert closed_after <= 31, f"the stream stayed open {closed_after:.1f}s after the owner was deactivated"
            # nothing went through the server's NOTIFY channel for > 30 s: the idle session must still work
            await anyio.sleep(max(0.0, 31 - (time.monotonic() - last_message)))
            with anyio.fail_after(10):
                assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "after"}))["text"] == "after"
    finally:
        reader.close()
    row = admin.wait_audit([("session_id", "=", reader.session_id), ("event", "=", "session_end")])[0]
    assert "deactivated" in row["result_summary"]
