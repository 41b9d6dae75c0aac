"""Production deployment: Odoo in prefork mode (2 HTTP workers + the gevent port, proxy_mode on)
behind a real nginx configured with the repository's own template (deploy/nginx/ocore-mcp.conf).

The module starts a second Odoo server, in prefork mode, on the suite's database, and nginx in front
of it. Long-lived GET streams must reach the gevent port, everything else the HTTP workers; limits
hold across workers: the rate limit is exact, and revoking a key, deactivating its owner or
switching MCP off cuts the open streams within 30 s.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest
from harness import ARTIFACTS, NginxProxy, OdooServer
from mcp_helpers import (
    LATEST_HANDSHAKE,
    SSE_PATH,
    STREAM_PATH,
    TRANSPORT_IDS,
    TRANSPORTS,
    Raw,
    SseReader,
    connect,
    data_of,
    initialize_msg,
    jsonrpc,
    modern_request,
    parse_body,
    secret_of,
)

pytestmark = pytest.mark.anyio

CUT_BOUND = 30  # seconds: revocation, owner deactivation and kill switch must cut open streams within this


@pytest.fixture(scope="module")
def prefork(odoo, odoo_setup):
    """A prefork Odoo (--workers=2, gevent port, --proxy-mode) on the suite's database."""
    server = OdooServer(odoo_setup, odoo.db, mode="prefork", workers=2, extra_args=("--proxy-mode",))
    server.log_path = ARTIFACTS / f"{odoo.db}-server-prefork-proxy.log"
    try:
        server.start()
        server.wait_stream_port()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(prefork):
    nginx = NginxProxy(prefork).start()
    yield nginx
    nginx.stop()


class StreamGet(SseReader):
    """The standalone GET stream of a Streamable HTTP session, read line by line."""

    def __init__(self, base_url, key, session_id, read_timeout=40):  # noqa: PLW0231 - own stream setup
        self.client = httpx2.Client(base_url=base_url, timeout=httpx2.Timeout(10, read=read_timeout))
        self._cm = self.client.stream("GET", STREAM_PATH, headers={
            "Authorization": f"Bearer {secret_of(key)}", "Accept": "text/event-stream",
            "Mcp-Session-Id": session_id, "MCP-Protocol-Version": LATEST_HANDSHAKE})
        self.response = self._cm.__enter__()
        self._lines = self.response.iter_lines()
        self.endpoint = None
        self.session_id = session_id


def upstream_lines(proxy, method, path, port, timeout=10):
    """Access-log lines of nginx for ``method path`` sent to ``port`` (waits for them: nginx logs a
    stream when it ends)."""
    pattern = re.compile(rf"^{method} {re.escape(path)} \d+ upstream=127\.0\.0\.1:{port}$")
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in proxy.access_log_lines() if pattern.match(line)]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


# -- through the proxy ---------------------------------------------------------------------------


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_sdk_client_through_proxy(proxy, prefork, make_key, slug, transport, mode):
    key = make_key()
    async with connect(proxy.url, key, transport=transport, mode=mode) as client:
        for i in range(3):  # several calls: they land on either HTTP worker
            assert data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": f"via nginx {i}"}))["text"] \
                == f"via nginx {i}"
    if transport == "sse":
        assert upstream_lines(proxy, "GET", SSE_PATH, prefork.gevent_port), proxy.access_log_lines()[-10:]
        assert upstream_lines(proxy, "POST", f"{SSE_PATH}/messages", prefork.port), proxy.access_log_lines()[-10:]
        assert not upstream_lines(proxy, "POST", f"{SSE_PATH}/messages", prefork.gevent_port, timeout=0)
    else:
        assert upstream_lines(proxy, "POST", STREAM_PATH, prefork.port), proxy.access_log_lines()[-10:]
        assert not upstream_lines(proxy, "POST", STREAM_PATH, prefork.gevent_port, timeout=0)


def test_get_stream_is_served_by_the_gevent_worker(proxy, prefork, make_key):
    key = make_key()
    offset = prefork.log_size()
    raw = Raw(proxy.url)
    try:
        sid = raw.open_session(key)
        # straight to an HTTP worker: it refuses to hold a stream (405, the spec's "no stream here")
        direct = Raw(prefork.url)
        try:
            resp = direct.request("GET", STREAM_PATH, key=key, headers={
                "Accept": "text/event-stream", "Mcp-Session-Id": sid, "MCP-Protocol-Version": LATEST_HANDSHAKE})
            assert resp.status_code == 405, resp.text
        finally:
            direct.close()
        # through nginx: the gevent worker holds it
        stream = StreamGet(proxy.url, key, sid)
        try:
            assert stream.response.status_code == 200
            assert stream.response.headers["content-type"].startswith("text/event-stream")
            assert stream.response.headers.get("x-accel-buffering") == "no"
            # a DELETE on the same path goes to an HTTP worker and ends the session
            assert raw.request("DELETE", STREAM_PATH, key=key, headers={
                "Mcp-Session-Id": sid, "MCP-Protocol-Version": LATEST_HANDSHAKE}).status_code == 200
        finally:
            stream.close()
    finally:
        raw.close()
    assert upstream_lines(proxy, "GET", STREAM_PATH, prefork.gevent_port), proxy.access_log_lines()[-10:]
    # and Odoo says so: the gevent process logs its requests as "longpolling" when they end
    served = re.compile(r'longpolling: .*"GET /ocore/mcp/stream HTTP/1\.1" 200')
    deadline = time.monotonic() + 10
    while not served.search(prefork.log_since(offset)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert served.search(prefork.log_since(offset)), prefork.log_since(offset)[-2000:]
    assert upstream_lines(proxy, "DELETE", STREAM_PATH, prefork.port), proxy.access_log_lines()[-10:]
    assert not upstream_lines(proxy, "GET", STREAM_PATH, prefork.port, timeout=0)


def test_plain_post_not_blocked_by_open_sse_streams(proxy, make_key, slug):
    """4 legacy SSE streams open, only 2 HTTP workers: requests still get through."""
    key = make_key()
    readers = []
    try:
        for _ in range(4):
            reader = SseReader(proxy.url, key)
            readers.append(reader)
            reader.read_endpoint()
        http = httpx2.Client(base_url=proxy.url, timeout=httpx2.Timeout(10, read=20))
        try:
            for i in range(4):
                body, headers = modern_request("tools/call", {"name": f"{slug}_e2e_echo", "arguments": {"text": str(i)}})
                resp = http.post(STREAM_PATH, json=body, headers={**headers, "Authorization": f"Bearer {key.secret}"})
                assert resp.status_code == 200, resp.text
                assert parse_body(resp)["result"]["structuredContent"]["text"] == str(i)
            health = http.get("/web/health")
            assert health.status_code == 200
        finally:
            http.close()
    finally:
        for reader in readers:
            reader.close()


# -- limits across workers -------------------------------------------------------------------------

WERKZEUG_POST = re.compile(r"^\S+ \S+ (\d+) INFO \S+ werkzeug: .*\"POST /ocore/mcp/stream HTTP", re.MULTILINE)


def test_rate_limit_exact_across_two_workers(proxy, prefork, admin, make_key, slug):
    limit = 20
    key = make_key(rate_limit=limit)
    offset = prefork.log_size()
    barrier = threading.Barrier(2 * limit, timeout=30)

    def call(i):
        body, headers = modern_request("tools/call", {"name": f"{slug}_e2e_echo", "arguments": {"text": str(i)}},
                                       id=i)
        with httpx2.Client(base_url=proxy.url, timeout=httpx2.Timeout(30, read=60)) as http:
            barrier.wait()
            resp = http.post(STREAM_PATH, json=body, headers={**headers, "Authorization": f"Bearer {key.secret}"})
        assert resp.status_code == 200, resp.text
        result = parse_body(resp)["result"]
        text = "\n".join(c.get("text", "") for c in result.get("content", []))
        return "refused" if result.get("isError") and text.startswith("rate limit exceeded") else \
            ("ok" if not result.get("isError") else text)

    with ThreadPoolExecutor(2 * limit) as pool:
        outcomes = list(pool.map(call, range(2 * limit)))
    assert sorted(outcomes) == ["ok"] * limit + ["refused"] * limit, outcomes
    rows = admin.wait_audit([("key_id", "=", key.id), ("tool", "=", "e2e_echo")], count=2 * limit)
    assert len(rows) == 2 * limit
    assert sum(r["status"] == "success" for r in rows) == limit
    assert sum(r["refusal_reason"] == "rate_limited" for r in rows) == limit
    # both HTTP workers served calls (Odoo logs each request with the worker's pid)
    pids = set(WERKZEUG_POST.findall(prefork.log_since(offset)))
    assert len(pids) >= 2, f"the calls were served by {pids} only"


def test_revocation_deactivation_kill_switch_cut_streams(proxy, prefork, admin, make_key):
    """One test for the three 30 s bounds (they run concurrently): each case holds a legacy SSE
    stream and a Streamable HTTP GET stream through the proxy (both on the gevent worker)."""
    user = admin.create_user(f"e2e_proxy_owner_{secrets.token_hex(3)}")
    keys = {"revoked": make_key(), "deactivated": make_key(user_id=user), "kill switch": make_key()}
    raw = Raw(proxy.url)
    streams, closed, errors = {}, {}, {}
    try:
        for case, key in keys.items():
            sse = SseReader(proxy.url, key, read_timeout=CUT_BOUND + 15)
            sse.read_endpoint()
            sid = raw.open_session(key)
            get = StreamGet(proxy.url, key, sid, read_timeout=CUT_BOUND + 15)
            assert get.response.status_code == 200
            streams[case] = {"sse": sse, "get": get, "sid": sid}

        def watch(label, reader):
            try:
                reader.wait_closed(CUT_BOUND + 10)
                closed[label] = time.monotonic()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors[label] = exc

        changed = {}
        admin.revoke_key(keys["revoked"])
        changed["revoked"] = time.monotonic()
        admin.write("res.users", [user], {"active": False})
        changed["deactivated"] = time.monotonic()
        with admin.params(enabled="0"):  # restored when the block ends, whatever happens
            changed["kill switch"] = time.monotonic()
            watchers = [threading.Thread(target=watch, args=((case, kind), streams[case][kind]), daemon=True)
                        for case in keys for kind in ("sse", "get")]
            for thread in watchers:
                thread.start()
            for thread in watchers:
                thread.join(CUT_BOUND + 20)
            assert not errors, errors
            took = {label: round(closed[label] - changed[label[0]], 1) for label in closed}
            assert len(took) == 6, took
            assert all(seconds <= CUT_BOUND for seconds in took.values()), took
            # later requests are refused, at the HTTP workers
            for case, status in (("revoked", 401), ("deactivated", 401), ("kill switch", 403)):
                resp = raw.session_post(streams[case]["sid"], jsonrpc("tools/list"), keys[case])
                assert resp.status_code == status, (case, resp.status_code, resp.text)
                resp = raw.post(STREAM_PATH, initialize_msg(), key=keys[case])
                assert resp.status_code == status, (case, resp.status_code, resp.text)
        # the kill switch restored: its key works again (the 403 was the kill switch)
        assert raw.post(STREAM_PATH, initialize_msg(), key=keys["kill switch"]).status_code == 200
        for case, reason in (("revoked", "revoked"), ("deactivated", "deactivated"), ("kill switch", "kill switch")):
            row = admin.wait_audit([("session_id", "=", streams[case]["sse"].session_id),
                                    ("event", "=", "session_end")])[0]
            assert reason in row["result_summary"], (case, row)
    finally:
        for case in streams.values():
            case["sse"].close()
            case["get"].close()
        raw.close()
