"""A key holds at most ``ocore_mcp.max_streams_per_key`` open streams (legacy SSE, Streamable HTTP GET,
subscriptions/listen), whichever route, alias or kind opens them: ``stream_limit_cases.jsonl``, one attack
per line::

    {"id", "hold": [kinds of the streams held open first],
     "then": {"kind", "path", "headers"?, "notifications"? (listen)}}

kinds: ``sse`` (GET /ocore/mcp/sse), ``get`` (a new 2025-11-25 session and its GET stream), ``get_same`` (a
second GET stream of the session opened before), ``listen`` (a 2026-07-28 subscriptions/listen POST). With the
limit at 2, the held streams open and the next is refused: HTTP 429, JSON-RPC error -32013, and an audit row
``denied`` / ``too_many_streams`` of the key. A closed stream frees its slot; another key is not affected.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import httpx2
import pytest
from harness import pg_query
from mcp_helpers import LATEST_HANDSHAKE, STREAM_PATH, Raw, modern_request

CASES = Path(__file__).parent / "stream_limit_cases.jsonl"
CASE_LIST = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]
LIMIT = 2
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def limited(admin):
    with admin.params(max_streams_per_key=LIMIT):
        yield


@pytest.fixture(scope="module")
def partner_id(admin):
    return admin.create("res.partner", {"name": "stream limit partner"})


class Streams:
    """Streams of one key, held open until close()."""

    def __init__(self, odoo, key, partner_id):
        self.odoo, self.key, self.partner_id = odoo, key, partner_id
        self.held = []  # (client, context manager)
        self.session = None

    def _open(self, base, method, path, headers, body=None):
        client = httpx2.Client(base_url=base, timeout=httpx2.Timeout(15, read=20))
        hdrs = {"Authorization": f"Bearer {self.key.secret}", **headers}
        cm = client.stream(method, path, headers=hdrs, content=json.dumps(body).encode() if body else None)
        resp = cm.__enter__()
        if resp.status_code != 200:
            resp.read()
            cm.__exit__(None, None, None)
            client.close()
            return resp.status_code, resp.json() if resp.content else None
        first = next(resp.iter_raw(), b"")  # the endpoint event, ": open", or the acknowledgment
        self.held.append((client, cm))
        return 200, first

    def open(self, kind, path=None, headers=None, notifications=None):
        stream_url = self.odoo.stream_url
        if kind == "sse":
            return self._open(stream_url, "GET", path or "/ocore/mcp/sse", {"Accept": "text/event-stream",
                                                                          **(headers or {})})
        if kind in ("get", "get_same"):
            if kind == "get" or self.session is None:
                raw = Raw(self.odoo.url)
                try:
                    self.session = raw.open_session(self.key)
                finally:
                    raw.close()
            return self._open(stream_url, "GET", path or STREAM_PATH, {
                "Accept": "text/event-stream", "Mcp-Session-Id": self.session, "MCP-Protocol-Version": LATEST_HANDSHAKE,
                **(headers or {})})
        assert kind == "listen", kind
        wanted = notifications if notifications is not None else {"toolsListChanged": True}
        wanted = json.loads(json.dumps(wanted).replace("{PARTNER_ID}", str(self.partner_id)))
        body, hdrs = modern_request("subscriptions/listen", {"notifications": wanted})
        return self._open(stream_url, "POST", path or STREAM_PATH, {**hdrs, **(headers or {})}, body)

    def close(self):
        for client, cm in self.held:
            with contextlib.suppress(Exception):
                cm.__exit__(None, None, None)
            client.close()
        self.held = []


def refusals(odoo, key_id):
    return pg_query(odoo.setup, odoo.db, """SELECT count(*) FROM mcp_audit_log
                                             WHERE key_id = %s AND event = 'denied'
                                               AND refusal_reason = 'too_many_streams'""", (key_id,))[0][0]


@pytest.mark.parametrize("case", CASE_LIST, ids=[c["id"] for c in CASE_LIST])
def test_stream_cap_per_key(odoo, admin, limited, partner_id, case):
    key = admin.create_key(f"stream cap {case['id']}")
    streams = Streams(odoo, key, partner_id)
    try:
        for kind in case["hold"]:
            status, first = streams.open(kind)
            assert status == 200, f"{case['id']}: held stream {kind} refused: {status} {first}"
        then = case["then"]
        status, body = streams.open(then["kind"], then.get("path"), then.get("headers"), then.get("notifications"))
        assert status == 429, f"{case['id']}: stream #{LIMIT + 1} opened ({status})"
        assert body["error"]["code"] == -32013, body
        assert "open streams" in body["error"]["message"], body
        assert int(refusals(odoo, key.id)) == 1, f"{case['id']}: the refusal is audited once"
    finally:
        streams.close()


def test_a_closed_stream_frees_its_slot_and_keys_are_apart(odoo, admin, limited, partner_id):
    key, other = admin.create_key("stream cap free"), admin.create_key("stream cap other")
    streams, others = Streams(odoo, key, partner_id), Streams(odoo, other, partner_id)
    try:
        for kind in ("sse", "listen"):
            assert streams.open(kind)[0] == 200
        assert streams.open("get")[0] == 429
        # another key of the same owner is not counted with it
        assert others.open("sse")[0] == 200
        streams.close()
        # the server notices a client that left at its next write (a ping, every 15 s)
        deadline = time.monotonic() + 45
        while True:
            status, _first = streams.open("sse")
            if status == 200:
                break
            assert time.monotonic() < deadline, "the closed streams' slots were never freed"
            time.sleep(3)
    finally:
        streams.close()
        others.close()
