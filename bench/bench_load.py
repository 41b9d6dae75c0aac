"""Calls/s under load (concurrency 16 prefork, 8 threaded): MCP tools/call vs XML-RPC, measured in one run.

Starts a real Odoo server in prefork mode (``--workers=2`` plus the gevent port, as production runs it;
``--mode threaded``: Odoo's threaded server) on a fresh database (the end-to-end harness: ocore_mcp,
20 "Load Partner" partners, an API key with a high rate limit), then runs the same small ``search_read``
(20 res.partner rows, 4 fields) at the given concurrency by four paths, one phase after the other (each
phase saturates the server, so they are not interleaved), each after a short warm-up:

- MCP tools/call, 2026-07-28 envelope over Streamable HTTP (no session);
- MCP tools/call in a 2025-11-25 session over Streamable HTTP (one session per client thread);
- MCP tools/call in a legacy SSE session (2024-11-05 transport; one stream per client thread, on the gevent
  port in prefork; the answers come back on the stream);
- XML-RPC ``execute_kw`` search_read (one ``ServerProxy`` per client thread).

Each client thread has its own plain ``http.client`` connection (no SDK in the measured path). Odoo's
HTTP workers close the connection after each response (``Connection: close``), so every call opens a TCP
connection, whatever the path: the same for all three. Prints per phase the calls, the wall time, calls/s,
p50/p90/p99 latency, the failed calls (non-200 answers, JSON-RPC or tool errors, wrong row counts: there
must be none) and calls/s relative to XML-RPC; then checks that every MCP tools/call left exactly one
finished audit row. Exits non-zero on any failed call or missing audit row.

The client threads share the machine (and the GIL of this process) with the server: the figures are
what one client machine gets from a two-worker server on the same host. Compare the ratios, absolute
numbers vary from run to run on a shared machine.

Run with the test virtualenv:  .venv-test/bin/python bench/bench_load.py [--calls 1000] [--concurrency 16]
                               .venv-test/bin/python bench/bench_load.py --mode threaded --concurrency 8
"""

import argparse
import os
import statistics
import sys
import threading
import time
import xmlrpc.client
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
sys.path.insert(0, str(BENCH_DIR))

import harness  # noqa: E402
from benchlib import bench_server  # noqa: E402
from bench_search_read import MODERN, McpHttp, McpSse, percentile  # noqa: E402

LEGACY = "2025-11-25"
FIELDS = ["name", "email", "city", "is_company"]
DOMAIN = [["name", "ilike", "Load Partner"]]
LIMIT = 20
PARTNERS = 20
TIMEOUT = 120  # seconds, per call: generous, a saturated server still answers well within it


class TimeoutTransport(xmlrpc.client.Transport):
    """xmlrpc.client's transport with a socket timeout (its default has none)."""

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = TIMEOUT
        return conn


class Phase:
    """One path driven by ``concurrency`` threads, each with its own client, until ``calls`` are made."""

    def __init__(self, name, make_client, call):
        self.name = name
        self.make_client = make_client  # () -> client (session set up here, not timed)
        self.call = call  # client -> None, raises on any failure
        self.latencies = []
        self.failures = []  # (kind, message)
        self.calls = 0
        self.seconds = 0.0
        self.attempted = 0  # every call sent, warm-up included

    def _run(self, clients, total, record):
        todo = iter(range(total))
        lock = threading.Lock()
        start = threading.Barrier(len(clients) + 1)

        def worker(client):
            start.wait()
            while True:
                with lock:
                    if next(todo, None) is None:
                        return
                    self.attempted += 1
                t = time.perf_counter()
                try:
                    self.call(client)
                except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                    with lock:
                        self.failures.append(failure_kind(exc))
                    continue
                if record:
                    elapsed = (time.perf_counter() - t) * 1000
                    with lock:
                        self.latencies.append(elapsed)

        threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join(TIMEOUT * total)  # bounded; every call has a socket timeout
        if any(thread.is_alive() for thread in threads):
            raise RuntimeError(f"{self.name}: client threads still running")
        return time.perf_counter() - began

    def run(self, calls, concurrency, warmup):
        clients = [self.make_client() for _ in range(concurrency)]
        self._run(clients, warmup * concurrency, record=False)
        warm_failures, self.failures = self.failures, []
        self.seconds = self._run(clients, calls, record=True)
        self.calls = calls
        self.failures = warm_failures + self.failures
        return self


def failure_kind(exc):
    text = str(exc)
    if isinstance(exc, xmlrpc.client.ProtocolError):
        return "non-200", f"HTTP {exc.errcode} {exc.errmsg}"
    if isinstance(exc, RuntimeError) and text.startswith("HTTP "):  # McpHttp: an HTTP status >= 400
        return "non-200", text[:300]
    return "error", f"{type(exc).__name__}: {text[:300]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="measured calls per path")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads")
    parser.add_argument("--mode", choices=("prefork", "threaded"), default="prefork", help="Odoo server mode")
    parser.add_argument("--workers", type=int, default=2, help="Odoo HTTP workers (prefork)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up calls per client thread and path")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    server_kw = {"workers": args.workers} if args.mode == "prefork" else {}
    streams = []
    with bench_server("load", partners=PARTNERS, keep=args.keep, label="Load", mode=args.mode,
                      **server_kw) as (setup, db, server, _admin, key):
        tool = f"{server.slug}_search_read"
        params = {"name": tool, "arguments": {"model": "res.partner", "domain": DOMAIN, "fields": FIELDS,
                                              "limit": LIMIT}}
        uid = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/common").authenticate(db, "admin", "admin", {})

        def mcp_client(mode):
            def make():
                client = McpHttp(server.port, key.secret, mode)
                client.conn.timeout = TIMEOUT
                client.initialize()  # a 2025-11-25 session; nothing for 2026-07-28
                return client
            return make

        def sse_client():
            client = McpSse(server.port, key.secret, server.gevent_port if args.mode == "prefork" else None)
            client.conn.timeout = TIMEOUT
            streams.append(client)
            return client.initialize()

        def mcp_call(client):
            result = client.call("tools/call", params)  # raises on HTTP >= 400 and on a JSON-RPC error
            if result.get("isError"):
                raise RuntimeError(f"tool error: {result.get('content')}")
            rows = len(result["structuredContent"]["records"])
            if rows != LIMIT:
                raise RuntimeError(f"{rows} records, not {LIMIT}")

        def xmlrpc_client():
            return xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/object", allow_none=True,
                                             transport=TimeoutTransport())

        def xmlrpc_call(rpc):
            rows = rpc.execute_kw(db, uid, "admin", "res.partner", "search_read", [DOMAIN],
                                  {"fields": FIELDS, "limit": LIMIT})
            if len(rows) != LIMIT:
                raise RuntimeError(f"{len(rows)} records, not {LIMIT}")

        # every path reads the same rows before anything is timed
        mcp_call(mcp_client(MODERN)())
        xmlrpc_call(xmlrpc_client())
        audit_base = harness.pg_query(setup, db, "SELECT coalesce(max(id), 0) FROM mcp_audit_log")[0][0]

        phases = [
            Phase(f"mcp tools/call (streamable HTTP, {MODERN})", mcp_client(MODERN), mcp_call),
            Phase(f"mcp tools/call (streamable HTTP, {LEGACY} session)", mcp_client("legacy"), mcp_call),
            Phase("mcp tools/call (legacy SSE, 2024-11-05 session)", sse_client, mcp_call),
            Phase("xml-rpc execute_kw search_read", xmlrpc_client, xmlrpc_call),
        ]
        for phase in phases:
            phase.run(args.calls, args.concurrency, args.warmup)
        load_after = os.getloadavg()
        for stream in streams:
            stream.close()
        mcp_calls = sum(p.attempted for p in phases[:3])
        audit = dict(harness.pg_query(
            setup, db, "SELECT status, count(*) FROM mcp_audit_log WHERE id > %s AND key_id = %s "
            "AND event = 'call' GROUP BY status", (audit_base, key.id)) or [])

    base = phases[-1].calls / phases[-1].seconds
    # the machine's load while the phases ran: ratios measured on a busy machine are indicative only
    print("\nload average (1, 5, 15 min) at the end of the phases: " + " ".join(f"{v:.2f}" for v in load_after))
    shape = (f"prefork: {args.workers} HTTP workers + the gevent worker" if args.mode == "prefork"
             else "threaded server")
    print(f"\nsearch_read of {LIMIT} res.partner rows, {len(FIELDS)} fields, {args.calls} calls per path at "
          f"concurrency {args.concurrency} ({shape}; {args.warmup} warm-up calls per thread before each phase)\n")
    print(f"{'path':52} {'calls':>6} {'s':>6} {'calls/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'non-200':>7} {'errors':>6} {'vs XML-RPC':>10}")
    for p in phases:
        rate = p.calls / p.seconds
        lat = p.latencies or [float("nan")]
        kinds = [kind for kind, _ in p.failures]
        print(f"{p.name:52} {p.calls:6d} {p.seconds:6.1f} {rate:8.1f} {statistics.median(lat):7.1f} "
              f"{percentile(lat, 0.9):7.1f} {percentile(lat, 0.99):7.1f} {kinds.count('non-200'):7d} "
              f"{kinds.count('error'):6d} {rate / base:10.2f}")
    written = sum(audit.values())
    print(f"\naudit rows: {written} of {mcp_calls} (MCP tools/call made, warm-up included; statuses {audit})")

    problems = [f"{p.name}: {len(p.failures)} failed calls, e.g. {p.failures[:3]}" for p in phases if p.failures]
    if audit != {"success": mcp_calls}:
        problems.append(f"audit: {audit} for {mcp_calls} MCP calls (expected {{'success': {mcp_calls}}})")
    if problems:
        print("\nFAILED:\n" + "\n".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
