"""Load and faults against a prefork server (issue 8): its own database and server (``--workers=2`` + the
gevent port), whatever ``--odoo-mode`` the rest of the suite runs in.

- 1,000 tool calls at concurrency 16 through ``POST /ocore/mcp/stream`` (2026-07-28 envelope, keep-alive
  connections): no 5xx, no transport error, exactly 1,000 audit rows, none left 'running';
- 200 idle legacy SSE streams held by the one gevent worker, without one DB connection each;
- a client gone mid-stream, every backend of the database terminated during a session (what a PostgreSQL
  restart does to the server; a real restart is in test_pg_restart.py), a request's connection lost before
  its tool runs, an HTTP worker SIGKILLed mid-call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import threading
import time
from pathlib import Path

import httpx2
import pytest
from harness import own_server, pg_connect, pg_query
from mcp_helpers import SSE_PATH, STREAM_PATH, SseReader, initialize_msg, jsonrpc, modern_request, secret_of

pytestmark = pytest.mark.anyio

LOAD_CALLS = 1000
LOAD_CONCURRENCY = 16
SSE_STREAMS = 200
SCRATCH_MODEL = "res.partner.category"
RATE_LOCK_NAMESPACE = 0x6F636D  # ocore.mcp.rate.limit.LOCK_NAMESPACE


@pytest.fixture(scope="module")
def lf(request, odoo_setup):
    """A prefork server of its own (two HTTP workers and the gevent worker)."""
    with own_server(request.config, odoo_setup, mode="prefork", workers=2, rate_limit=1000000) as server:
        server.pg = lambda sql, params=(): pg_query(odoo_setup, server.db, sql, params)
        server.admin.set_param("ocore_mcp.max_streams_per_key", SSE_STREAMS + 10)  # 200 streams on one key
        yield server


@pytest.fixture
def key(lf, request):
    return lf.admin.create_key(name=f"lf {request.node.name[:60]} {secrets.token_hex(2)}")


# -- helpers ------------------------------------------------------------------------------------


def call_body(slug, tool, arguments, id=1, meta=None):  # noqa: A002
    params = {"name": f"{slug}_{tool}", "arguments": arguments}
    if meta:
        params["_meta"] = meta
    return modern_request("tools/call", params, id=id)


def auth(key):
    return {"Authorization": f"Bearer {secret_of(key)}"}


def post_call(lf, key, tool, arguments, timeout=60, id=1):  # noqa: A002
    """One 2026-07-28 tools/call on the HTTP port: (status, JSON body)."""
    body, headers = call_body(lf.slug, tool, arguments, id=id)
    resp = httpx2.post(f"{lf.url}{STREAM_PATH}", json=body, headers={**headers, **auth(key)}, timeout=timeout)
    return resp.status_code, (resp.json() if resp.headers.get("content-type", "").startswith("application/json")
                              else resp.text)


def assert_ok(status, body, what="call"):
    assert status == 200, f"{what}: HTTP {status} {body}"
    assert "result" in body, f"{what}: {body}"
    assert not body["result"].get("isError"), f"{what}: {body['result']}"
    return body["result"].get("structuredContent")


def call_statuses(lf, key):
    return dict(lf.pg("SELECT status, count(*) FROM mcp_audit_log WHERE key_id = %s AND event = 'call' "
                      "GROUP BY status", (key.id,)) or [])


def wait_until(predicate, timeout, what, step=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(step)


def children(pid):
    """{pid: cmdline} of the processes whose parent is ``pid``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return found


def gevent_pid(lf):
    pids = [pid for pid, cmd in children(lf.proc.pid).items() if " gevent " in f" {cmd} "]
    assert len(pids) == 1, f"one gevent worker expected among {children(lf.proc.pid)}"
    return pids[0]


def http_workers(lf):
    return {pid for pid, cmd in children(lf.proc.pid).items() if " gevent " not in f" {cmd} "}


def serving_worker(lf, workers):
    """The HTTP worker holding an accepted connection of the HTTP port (the one serving a request).

    Not pg_stat_activity's application_name: the master preloads the registry, and workers forked from it
    open their connections with the master's pid in it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == lf.port and cols[3] == "01":  # ESTABLISHED
                    inodes.add(f"socket:[{cols[9]}]")
    found = set()
    for pid in workers:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        found.add(pid)
    return found


def db_connections(lf, pid):
    return lf.pg("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                 (lf.db, f"odoo-{pid}"))[0][0]


# -- 1. load ------------------------------------------------------------------------------------


async def test_load_1000_calls_concurrency_16(lf, key):
    tag = secrets.token_hex(4)
    plan = []
    for i in range(LOAD_CALLS):
        kind = i % 3
        if kind == 0:
            plan.append(("search_read", {"model": SCRATCH_MODEL, "fields": ["name"], "limit": 5}))
        elif kind == 1:
            plan.append(("count", {"model": SCRATCH_MODEL}))
        else:
            plan.append(("create", {"model": SCRATCH_MODEL, "values": {"name": f"load {tag} {i}"},
                                    "dry_run": False}))
    todo = iter(enumerate(plan))
    statuses, transport_errors, failures, answered = {}, [], [], 0
    limits = httpx2.Limits(max_connections=LOAD_CONCURRENCY, max_keepalive_connections=LOAD_CONCURRENCY)

    async def worker(http):
        nonlocal answered
        for i, (tool, arguments) in todo:
            body, headers = call_body(lf.slug, tool, arguments, id=i + 1)
            try:
                resp = await http.post(STREAM_PATH, json=body, headers=headers)
            except httpx2.HTTPError as exc:
                transport_errors.append(f"{tool} #{i}: {exc!r}")
                continue
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
            try:
                reply = resp.json()
            except ValueError:
                failures.append(f"{tool} #{i}: HTTP {resp.status_code} {resp.text[:200]}")
                continue
            if reply.get("id") == i + 1 and "result" in reply:
                answered += 1
                if reply["result"].get("isError"):
                    failures.append(f"{tool} #{i}: {json.dumps(reply['result'])[:300]}")
            else:
                failures.append(f"{tool} #{i}: HTTP {resp.status_code} {json.dumps(reply)[:300]}")

    started = time.monotonic()
    async with httpx2.AsyncClient(base_url=lf.url, headers=auth(key), limits=limits,
                                  timeout=httpx2.Timeout(30, read=120)) as http:
        await asyncio.gather(*(worker(http) for _ in range(LOAD_CONCURRENCY)))
    elapsed = time.monotonic() - started
    print(f"\nload: {LOAD_CALLS} calls at concurrency {LOAD_CONCURRENCY} on a prefork server (2 workers): "
          f"{elapsed:.1f}s, {LOAD_CALLS / elapsed:.0f} calls/s; HTTP statuses {statuses}")
    assert not transport_errors, f"{len(transport_errors)} transport errors, e.g. {transport_errors[:3]}"
    assert not [s for s in statuses if s >= 500], f"5xx answers: {statuses}"
    assert not failures, f"{len(failures)} failed calls, e.g. {failures[:3]}"
    assert answered == LOAD_CALLS
    # zero lost audit rows: one finished 'call' row per call (written before the answer is sent)
    assert call_statuses(lf, key) == {"success": LOAD_CALLS}
    creates = sum(1 for tool, _ in plan if tool == "create")
    assert lf.pg("SELECT count(*) FROM res_partner_category WHERE name->>'en_US' LIKE %s",
                 (f"load {tag} %",))[0][0] == creates


# -- 2. 200 idle SSE streams on the gevent worker ----------------------------------------------------


async def test_200_idle_sse_streams_on_one_gevent_worker(lf, key):
    gpid = gevent_pid(lf)
    log_offset = lf.log_size()
    # the gevent worker's listener connection exists once a stream was opened: open and close one first
    baseline_streams = SseReader(lf.stream_url, key, read_timeout=20)
    baseline_streams.read_endpoint()
    baseline_streams.close()
    baseline = db_connections(lf, gpid)
    limits = httpx2.Limits(max_connections=SSE_STREAMS + 10, max_keepalive_connections=0)
    http = httpx2.AsyncClient(base_url=lf.stream_url, headers={**auth(key), "Accept": "text/event-stream"},
                              limits=limits, timeout=httpx2.Timeout(30, read=60))
    streams, endpoints = [], []
    gate = asyncio.Semaphore(8)

    async def open_stream():
        async with gate:
            resp = await http.send(http.build_request("GET", SSE_PATH), stream=True)
            streams.append(resp)
            assert resp.status_code == 200, resp.status_code
            event = None
            async for line in resp.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "endpoint":
                    endpoints.append(line[5:].strip())
                    return

    try:
        opened_at = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(open_stream() for _ in range(SSE_STREAMS))), 120)
        print(f"\nsse: {SSE_STREAMS} streams opened in {time.monotonic() - opened_at:.1f}s")
        assert len(set(endpoints)) == SSE_STREAMS
        during = db_connections(lf, gpid)
        print(f"sse: DB connections of the gevent worker: {baseline} before, {during} with {SSE_STREAMS} streams")
        assert during <= baseline + 12, (baseline, during)
        open_ids = {e.split("session_id=", 1)[1] for e in endpoints}
        assert lf.pg("SELECT count(*) FROM ocore_mcp_session WHERE session_id = ANY(%s) AND ended_at IS NULL",
                     (list(open_ids),))[0][0] == SSE_STREAMS
        # the HTTP workers still answer
        status, body = await asyncio.to_thread(post_call, lf, key, "count", {"model": SCRATCH_MODEL}, 30)
        assert_ok(status, body, "a call while 200 streams are open")
    finally:
        for resp in streams:
            with contextlib.suppress(Exception):
                await resp.aclose()
        await http.aclose()

    # the server notices each gone client at its next keepalive write and ends the session
    def still_open():
        return lf.pg("SELECT count(*) FROM ocore_mcp_session WHERE session_id = ANY(%s) AND ended_at IS NULL",
                     (list(open_ids),))[0][0]

    closed_at = time.monotonic()
    await asyncio.to_thread(wait_until, lambda: still_open() == 0, 60, "all closed SSE sessions ended", 0.5)
    print(f"sse: all {SSE_STREAMS} sessions ended {time.monotonic() - closed_at:.1f}s after the clients closed")
    ends = lf.pg("SELECT count(*) FROM mcp_audit_log WHERE key_id = %s AND event = 'session_end' "
                 "AND session_id = ANY(%s)", (key.id, list(open_ids)))[0][0]
    assert ends == SSE_STREAMS
    # 200 streams ending together borrow the database through the stream gate, never past Odoo's pool
    log = lf.log_since(log_offset)
    assert "PoolError" not in log and "could not close MCP session" not in log, log[-3000:]


# -- 3. faults -------------------------------------------------------------------------------------


def test_client_disconnects_mid_stream(lf, key):
    body, headers = call_body(lf.slug, "e2e_sleep", {"seconds": 3, "steps": 6}, id=7,
                              meta={"progressToken": "p-7"})
    progress = []
    with httpx2.Client(base_url=lf.url, timeout=httpx2.Timeout(30, read=30)) as http:
        with http.stream("POST", STREAM_PATH, json=body, headers={**headers, **auth(key)}) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            for line in resp.iter_lines():
                if line.startswith("data:") and "notifications/progress" in line:
                    progress.append(json.loads(line[5:]))
                    break
        # the connection is closed here, mid-call
    assert progress and progress[0]["params"]["progressToken"] == "p-7"
    # the call finishes on the server all the same: its audit row ends, nothing stays 'running'
    rows = wait_until(lambda: (s := call_statuses(lf, key)) and "running" not in s and s, 30,
                      "the audit row of the abandoned call ends")
    print(f"\ndisconnect: audit of the abandoned call {rows}")
    assert sum(rows.values()) == 1 and set(rows) <= {"success", "error"}, rows  # it ran on (success today)
    assert_ok(*post_call(lf, key, "count", {"model": SCRATCH_MODEL}), "a call after the disconnect")
    after = call_statuses(lf, key)
    assert sum(after.values()) == 2 and after.get("success", 0) >= 1 and "running" not in after, after


def sse_send(lf, key, reader, message):
    resp = httpx2.post(f"{lf.url}{reader.endpoint}", json=message, timeout=30,
                       headers={**auth(key), "Content-Type": "application/json"})
    assert resp.status_code == 202, f"HTTP {resp.status_code} {resp.text[:300]}"


def sse_reply(reader, request_id):
    while True:
        ev = reader.next_event()
        assert ev is not None, "the SSE stream ended"
        if ev[0] == "message":
            msg = json.loads(ev[1])
            if msg.get("id") == request_id:
                return msg


def test_database_connections_terminated_during_session(lf, key):
    reader = SseReader(lf.stream_url, key, read_timeout=30)
    try:
        reader.read_endpoint()
        sse_send(lf, key, reader, initialize_msg(id=1))
        assert "result" in sse_reply(reader, 1)
        sse_send(lf, key, reader, jsonrpc("notifications/initialized", id=None))
        sse_send(lf, key, reader, jsonrpc("tools/call", {"name": f"{lf.slug}_count",
                                                         "arguments": {"model": SCRATCH_MODEL}}, id=2))
        assert not sse_reply(reader, 2)["result"].get("isError")
        assert_ok(*post_call(lf, key, "count", {"model": SCRATCH_MODEL}), "a call before")

        # what a PostgreSQL restart does to the server: every connection of its database is cut
        killed = lf.pg("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = %s AND pid <> pg_backend_pid()", (lf.db,))
        assert killed, "no backend of the server to terminate"

        # the next calls succeed: Odoo replaces the dead pooled connections
        for i in range(4):
            assert_ok(*post_call(lf, key, "count", {"model": SCRATCH_MODEL}, id=10 + i), f"call #{i} after")
        # the gevent worker's listener reconnects (LISTEN again) ...
        # (its one connection: idle after LISTEN + COMMIT, or after its periodic SELECT 1 + COMMIT)
        # (the listening connections name themselves in pg_stat_activity; all of the database's were cut)
        wait_until(lambda: lf.pg("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                                 "AND datname = %s AND state = 'idle' "
                                 "AND (query ILIKE 'LISTEN%%' OR query = 'COMMIT')",
                                 ("ocore_mcp_listener", lf.db))[0][0], 20, "the SSE listener reconnects")
        # ... and the reply of a later call still arrives on the open stream
        sse_send(lf, key, reader, jsonrpc("tools/call", {"name": f"{lf.slug}_count",
                                                         "arguments": {"model": SCRATCH_MODEL}}, id=3))
        reply = sse_reply(reader, 3)
        assert not reply["result"].get("isError"), reply
    finally:
        reader.close()
    statuses = call_statuses(lf, key)
    assert statuses == {"success": 7}, statuses


def test_connection_lost_before_the_tool(lf, key, odoo_setup):
    """A request whose database connection dies outside the tool (here: while its rate-limit hit waits for
    the key's lock) gets a JSON-RPC error with HTTP 503 and Retry-After, not Odoo's HTML error page."""
    lock = pg_connect(odoo_setup, lf.db)
    outcome = {}
    try:
        with lock.cursor() as cur:  # hold the key's rate-limit lock: the call's bookkeeping waits for it
            cur.execute("SELECT pg_advisory_lock(%s, %s)", (RATE_LOCK_NAMESPACE, key.id))

        def call():
            outcome["reply"] = post_call(lf, key, "count", {"model": SCRATCH_MODEL})

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        waiting = wait_until(lambda: lf.pg(
            "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND NOT l.granted AND a.datname = %s", (lf.db,)), 20, "the call waits for the key's lock")
        lf.pg("SELECT pg_terminate_backend(%s)", (waiting[0][0],))
        thread.join(30)
        assert not thread.is_alive(), "no answer within 30s of the connection loss"
    finally:
        lock.close()
    status, body = outcome["reply"]
    assert status == 503, outcome
    assert body["error"]["code"] == -32603 and "database unavailable" in body["error"]["message"], body
    # the connection loss did not leave the worker broken
    assert_ok(*post_call(lf, key, "count", {"model": SCRATCH_MODEL}, id=2), "the next call")
    assert call_statuses(lf, key) == {"success": 1}, call_statuses(lf, key)


def test_worker_killed_mid_call(lf, key):
    tag = f"killed {secrets.token_hex(4)}"
    script = (f"INSERT INTO res_partner_category (name, active) VALUES ('{json.dumps({'en_US': tag})}', true); "
              "SELECT pg_sleep(20)")
    outcome = {}

    def slow_call():
        try:
            outcome["reply"] = post_call(lf, key, "execute_sql_script", {"script": script, "confirm": True,
                                                                         "timeout_seconds": 60}, timeout=60)
        except httpx2.HTTPError as exc:
            outcome["error"] = exc

    workers_before = http_workers(lf)
    assert len(workers_before) == 2, workers_before
    thread = threading.Thread(target=slow_call, daemon=True)
    thread.start()
    try:
        row = wait_until(lambda: lf.pg("SELECT pid FROM pg_stat_activity WHERE datname = %s "
                                       "AND query LIKE %s AND query NOT LIKE '%%pg_stat_activity%%'",
                                       (lf.db, "%pg_sleep(20)%")), 20, "the slow call runs")
        backend_pid = row[0][0]
        serving = serving_worker(lf, workers_before)
        assert len(serving) == 1, f"one busy HTTP worker expected among {workers_before}, found {serving}"
        worker_pid = serving.pop()
        assert call_statuses(lf, key) == {"running": 1}
        os.kill(worker_pid, signal.SIGKILL)
        thread.join(30)
        assert not thread.is_alive(), "the client of the killed worker got no answer"
    finally:
        thread.join(60)
    # the client got an error (connection closed), not an answer
    assert "error" in outcome or outcome["reply"][0] >= 500, outcome
    # the backend of the dead worker is rolled back when PostgreSQL notices its client is gone; do not
    # wait for the end of its pg_sleep
    lf.pg("SELECT pg_terminate_backend(%s)", (backend_pid,))
    wait_until(lambda: not lf.pg("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend_pid,)), 20,
               "the orphan backend ends")
    assert lf.pg("SELECT count(*) FROM res_partner_category WHERE name->>'en_US' = %s", (tag,))[0][0] == 0
    # the master respawns a worker; new calls succeed and are audited
    wait_until(lambda: len(http_workers(lf)) == 2 and worker_pid not in http_workers(lf), 30,
               "the master respawns an HTTP worker")
    for i in range(4):
        assert_ok(*post_call(lf, key, "count", {"model": SCRATCH_MODEL}, id=20 + i), f"call #{i} after the kill")
    # the killed call's row stays 'running' (the autovacuum marks it 'interrupted' after an hour)
    assert call_statuses(lf, key) == {"running": 1, "success": 4}
    row = lf.pg("SELECT status, success, latency_ms, error_message FROM mcp_audit_log WHERE key_id = %s "
                "AND tool = 'execute_sql_script'", (key.id,))
    print(f"\nkill: the client got {outcome.get('error') or outcome.get('reply')!r}; audit row of the killed call "
          f"(status, success, latency_ms, error_message): {row}")
    assert row == [("running", None, None, None)], row
