"""A 2025 session's requests: the session lookup and the request's rate-limit hit made in one statement on the
bookkeeping connection (ocore.mcp.server._ocore_session_begin) keep every guarantee of the separate steps."""

from __future__ import annotations

import time

import httpx2
from harness import pg_query
from mcp_helpers import LATEST_HANDSHAKE, STREAM_PATH, initialize_msg, jsonrpc, parse_body, secret_of

RATE_LIMITED = -32013


def _hits(odoo, key):
    return pg_query(odoo.setup, odoo.db, "SELECT count(*) FROM ocore_mcp_rate_hit WHERE key_id = %s", (key.id,))[0][0]


def test_session_requests_count_exactly(odoo, raw, admin, make_key):
    key = make_key(rate_limit=4)
    sid = raw.open_session(key)  # initialize counts (1), notifications/initialized does not
    assert _hits(odoo, key) == 1
    for i in range(3):  # 2, 3, 4
        resp = raw.session_post(sid, jsonrpc("ping", id=10 + i), key)
        assert resp.status_code == 200 and parse_body(resp) == {"jsonrpc": "2.0", "id": 10 + i, "result": {}}
    # a notification is not a request: never counted, never refused
    note = raw.session_post(sid, jsonrpc("notifications/initialized", id=None), key)
    assert note.status_code == 202, note.text
    over = raw.session_post(sid, jsonrpc("tools/list", id=20), key)
    body = parse_body(over)
    assert body["id"] == 20 and body["error"]["code"] == RATE_LIMITED, body
    assert "limit 4/min" in body["error"]["message"]
    assert _hits(odoo, key) == 4
    row = admin.audit([("key_id", "=", key.id), ("event", "=", "denied")])[0]
    assert row["status"] == "refused" and row["refusal_reason"] == "rate_limited", row
    assert row["tool_name"] == "tools/list" and row["session_id"], row


def test_unknown_foreign_or_ended_session_is_404_and_not_counted(odoo, raw, make_key):
    key, other = make_key(rate_limit=50), make_key(rate_limit=50)
    sid = raw.open_session(key)
    counted = _hits(odoo, key)
    assert raw.session_post("no-such-session", jsonrpc("ping", id=1), key).status_code == 404
    assert raw.session_post(sid, jsonrpc("ping", id=1), other).status_code == 404  # another key's session
    assert _hits(odoo, key) == counted and _hits(odoo, other) == 0
    # an unsupported protocol version header: 400, not counted
    bad = raw.session_post(sid, jsonrpc("ping", id=2), key, **{"MCP-Protocol-Version": "1999-01-01"})
    assert bad.status_code == 400, bad.text
    assert _hits(odoo, key) == counted
    ok = raw.session_post(sid, jsonrpc("ping", id=3), key)
    assert ok.status_code == 200 and _hits(odoo, key) == counted + 1
    assert raw.request("DELETE", STREAM_PATH, key=key, headers={"Mcp-Session-Id": sid}).status_code == 200
    assert raw.session_post(sid, jsonrpc("ping", id=4), key).status_code == 404  # ended
    assert _hits(odoo, key) == counted + 1


def test_session_last_seen_refreshed_by_a_counted_request(odoo, raw, make_key):
    key = make_key(rate_limit=50)
    sid = raw.open_session(key)
    pg_query(odoo.setup, odoo.db, "UPDATE ocore_mcp_session SET last_seen = last_seen - interval '1 hour' "
             "WHERE session_id = %s", (sid,))
    assert raw.session_post(sid, jsonrpc("ping", id=1), key).status_code == 200
    age = pg_query(odoo.setup, odoo.db, "SELECT extract(epoch FROM (now() at time zone 'UTC') - last_seen) "
                   "FROM ocore_mcp_session WHERE session_id = %s", (sid,))[0][0]
    assert age < 60, age


def test_get_stream_slot_taken_with_the_lookup_keeps_the_key_cap(odoo, raw, admin, make_key):
    # the GET stream's slot is taken in the session lookup's statement: the per-key cap still holds (429 and a
    # denied row), an unknown session takes no slot, and a closed stream gives its slot back
    key = make_key(rate_limit=100)
    sid = raw.open_session(key)
    headers = {"Authorization": f"Bearer {secret_of(key)}", "Accept": "text/event-stream", "Mcp-Session-Id": sid,
               "MCP-Protocol-Version": LATEST_HANDSHAKE}
    admin.set_param("ocore_mcp.max_streams_per_key", 1)
    try:
        with httpx2.Client(base_url=odoo.stream_url, timeout=httpx2.Timeout(10, read=30)) as http:
            unknown = http.get(STREAM_PATH, headers={**headers, "Mcp-Session-Id": "no-such-session"})
            assert unknown.status_code == 404
            with http.stream("GET", STREAM_PATH, headers=headers) as first:
                assert first.status_code == 200
                next(first.iter_bytes())  # the stream is open: the key holds its one slot
                second = http.get(STREAM_PATH, headers=headers)
                assert second.status_code == 429, second.text
                assert "open streams" in second.json()["error"]["message"]
            row = admin.audit([("key_id", "=", key.id), ("event", "=", "denied")])[0]
            assert row["refusal_reason"] == "too_many_streams", row
            # the first stream is gone once its DELETE ends the session; a new session's stream opens
            assert raw.request("DELETE", STREAM_PATH, key=key, headers={"Mcp-Session-Id": sid}).status_code == 200
            sid2 = raw.open_session(key)
            deadline = time.monotonic() + 40
            while True:
                with http.stream("GET", STREAM_PATH, headers={**headers, "Mcp-Session-Id": sid2}) as again:
                    if again.status_code == 200 or time.monotonic() > deadline:
                        assert again.status_code == 200
                        break
                time.sleep(0.5)
    finally:
        admin.set_param("ocore_mcp.max_streams_per_key", None)


def test_initialize_over_the_limit_opens_no_session(odoo, raw, admin, make_key):
    # initialize's hit and its session's INSERT are one statement: a refused initialize leaves no session
    key = make_key(rate_limit=1)
    sid = raw.open_session(key)
    refused = raw.post(STREAM_PATH, initialize_msg(), key=key)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == RATE_LIMITED and "limit 1/min" in refused.json()["error"]["message"]
    assert "mcp-session-id" not in refused.headers
    sessions = pg_query(odoo.setup, odoo.db, "SELECT session_id FROM ocore_mcp_session WHERE key_id = %s", (key.id,))
    assert [s for (s,) in sessions] == [sid]
    assert _hits(odoo, key) == 1
    row = admin.audit([("key_id", "=", key.id), ("event", "=", "denied")])[0]
    assert row["refusal_reason"] == "rate_limited" and row["tool_name"] == "initialize", row
    starts = admin.audit([("key_id", "=", key.id), ("event", "=", "session_start")])
    assert [r["session_id"] for r in starts] == [sid]
