"""A 2025 session's requests: the session lookup and the request's rate-limit hit made in one statement on the
bookkeeping connection (ocore.mcp.server._ocore_session_begin) keep every guarantee of the separate steps."""

from __future__ import annotations

from harness import pg_query
from mcp_helpers import STREAM_PATH, jsonrpc, parse_body

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
