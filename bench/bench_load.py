"""Calls/s and server CPU per call under load (concurrency 16 prefork, 8 threaded): MCP tools/call vs XML-RPC.

Starts a real Odoo server in prefork mode (``--workers=2`` plus the gevent port, as production runs it;
``--mode threaded``: Odoo's threaded server) on a fresh database (the end-to-end harness: ocore_mcp,
20 "Load Partner" partners, an API key with a high rate limit), then runs the same small ``search_read``
(20 res.partner rows, 4 fields) at the given concurrency by four paths:

- MCP tools/call, 2026-07-28 envelope over Streamable HTTP (no session);
- MCP tools/call in a 2025-11-25 session over Streamable HTTP (one session per client thread);
- MCP tools/call in a legacy SSE session (2024-11-05 transport; one stream per client thread, on the gevent
  port in prefork; the answers come back on the stream);
- XML-RPC ``execute_kw`` search_read (one ``ServerProxy`` per client thread).

Interleaved: each path's clients are made once (sessions opened, SSE streams kept open until the end) and
warmed up once (``--warmup`` calls per thread), then ``--rounds`` rounds each run every path in turn for its
share of ``--calls`` at the full concurrency (every slice saturates the server on its own), the order of the
paths rotated each round, so that a change of the machine's load weighs on every path alike.

Each client thread has its own plain ``http.client`` connection (no SDK in the measured path). Odoo's
HTTP workers close the connection after each response (``Connection: close``), so every call opens a TCP
connection, whatever the path. Prints per path the calls, the wall time, calls/s, p50/p90/p99 latency, the
failed calls (non-200 answers, JSON-RPC or tool errors, wrong row counts: there must be none), calls/s
relative to XML-RPC's (total calls over total seconds of each, and the median, min and max of the rounds'
ratios), then the CPU time per call of each path, summed over its slices and read from /proc: the Odoo
server's process tree (every worker, a recycled one included), the PostgreSQL backends connected to the
bench database (PostgreSQL runs on this machine), their sum and its ratio to XML-RPC's (lower is better: on
a saturated server calls/s is about the cores over the CPU per call), and the client process's own CPU per
call. Then checks that every MCP tools/call (warm-up included) left exactly one 'success' audit row. Exits
non-zero on any failed call or missing audit row.

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
from benchlib import ServerCpu, bench_server, client_cpu  # noqa: E402
from bench_search_read import MODERN, McpHttp, McpSse, percentile  # noqa: E402

LEGACY = "2025-11-25"
FIELDS = ["name", "email", "city", "is_company"]
DOMAIN = [["name", "ilike", "Load Partner"]]
LIMIT = 20
PARTNERS = 20
TIMEOUT = 120  # seconds, per call: generous, a saturated server still answers well within it
SETTLE = 0.1  # seconds after a slice before its CPU is read: the server finishes what follows its last answer
IDLE = 2.0  # seconds of an idle server measured before the rounds: the CPU it spends doing nothing


class TimeoutTransport(xmlrpc.client.Transport):
    """xmlrpc.client's transport with a socket timeout (its default has none)."""

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = TIMEOUT
        return conn


class Phase:
    """One path driven by ``concurrency`` threads, each with its own client made once, slice after slice."""

    def __init__(self, name, make_client, call):
        self.name = name
        self.make_client = make_client  # () -> client (session set up here, not timed)
        self.call = call  # client -> None, raises on any failure
        self.clients = []
        self.latencies = []
        self.failures = []  # (kind, message), warm-up included
        self.slices = []  # one dict per round: calls, seconds, and the CPU seconds spent (ServerCpu.between, client)
        self.attempted = 0  # every call sent, warm-up included

    def _run(self, total, record):
        todo = iter(range(total))
        lock = threading.Lock()
        start = threading.Barrier(len(self.clients) + 1)

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

        threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in self.clients]
        for thread in threads:
            thread.start()
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join(TIMEOUT * total)  # bounded; every call has a socket timeout
        if any(thread.is_alive() for thread in threads):
            raise RuntimeError(f"{self.name}: client threads still running")
        return time.perf_counter() - began

    def warm(self, concurrency, warmup):
        self.clients = [self.make_client() for _ in range(concurrency)]
        self._run(warmup * concurrency, record=False)

    def run_slice(self, calls, cpu, round_no):
        """``calls`` calls at the full concurrency, timed, with the server's and this process's CPU around them."""
        before = cpu.snapshot()
        client_before = client_cpu()
        seconds = self._run(calls, record=True)
        client = client_cpu() - client_before
        time.sleep(SETTLE)
        spent = cpu.between(before, cpu.snapshot())
        self.slices.append(dict(spent, round=round_no, calls=calls, seconds=seconds, client=client))

    def total(self, field):
        return sum(s[field] for s in self.slices)

    def rate(self):
        return self.total("calls") / self.total("seconds")

    def per_call_ms(self, field):
        return self.total(field) / self.total("calls") * 1000


def failure_kind(exc):
    text = str(exc)
    if isinstance(exc, xmlrpc.client.ProtocolError):
        return "non-200", f"HTTP {exc.errcode} {exc.errmsg}"
    if isinstance(exc, RuntimeError) and text.startswith("HTTP "):  # McpHttp: an HTTP status >= 400
        return "non-200", text[:300]
    return "error", f"{type(exc).__name__}: {text[:300]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="measured calls per path (over all rounds)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; each runs every path for calls/rounds")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads")
    parser.add_argument("--mode", choices=("prefork", "threaded"), default="prefork", help="Odoo server mode")
    parser.add_argument("--workers", type=int, default=2, help="Odoo HTTP workers (prefork)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up calls per client thread and path (once)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    if not 1 <= args.rounds <= args.calls:
        parser.error("--rounds must be between 1 and --calls")
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
        cpu = ServerCpu(setup, db, server.proc.pid)
        try:
            for phase in phases:
                phase.warm(args.concurrency, args.warmup)
            time.sleep(SETTLE)
            before = cpu.snapshot()
            time.sleep(IDLE)
            idle = cpu.between(before, cpu.snapshot())
            orders = []
            for round_no in range(args.rounds):
                calls = args.calls // args.rounds + (round_no < args.calls % args.rounds)
                shift = round_no % len(phases)
                order = phases[shift:] + phases[:shift]
                orders.append(order)
                for phase in order:
                    phase.run_slice(calls, cpu, round_no)
        finally:
            cpu.close()
        load_after = os.getloadavg()
        for stream in streams:
            stream.close()
        mcp_calls = sum(p.attempted for p in phases[:3])
        audit = dict(harness.pg_query(
            setup, db, "SELECT status, count(*) FROM mcp_audit_log WHERE id > %s AND key_id = %s "
            "AND event = 'call' GROUP BY status", (audit_base, key.id)) or [])

    report(args, phases, orders, idle, load_after)
    written = sum(audit.values())
    print(f"\naudit rows: {written} of {mcp_calls} (MCP tools/call made, warm-up included; statuses {audit})")

    problems = [f"{p.name}: {len(p.failures)} failed calls, e.g. {p.failures[:3]}" for p in phases if p.failures]
    if audit != {"success": mcp_calls}:
        problems.append(f"audit: {audit} for {mcp_calls} MCP calls (expected {{'success': {mcp_calls}}})")
    if problems:
        print("\nFAILED:\n" + "\n".join(problems), file=sys.stderr)
        sys.exit(1)


def report(args, phases, orders, idle, load_after):
    base = phases[-1]
    short = {p: f"{i + 1}" for i, p in enumerate(phases)}
    # the machine's load while the rounds ran: interleaving spreads it over every path, it does not remove it
    print("\nload average (1, 5, 15 min) at the end of the rounds: " + " ".join(f"{v:.2f}" for v in load_after))
    shape = (f"prefork: {args.workers} HTTP workers + the gevent worker" if args.mode == "prefork"
             else "threaded server")
    print(f"\nsearch_read of {LIMIT} res.partner rows, {len(FIELDS)} fields, {args.calls} calls per path at "
          f"concurrency {args.concurrency} ({shape}), in {args.rounds} rounds of every path "
          f"({args.warmup} warm-up calls per thread and path before the first round)\n")
    print(f"{'path':52} {'calls':>6} {'s':>6} {'calls/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'non-200':>7} {'errors':>6} {'vs XML-RPC':>10} {'rounds: median':>14} {'min-max':>10}")
    round_ratios = {}
    for p in phases:
        lat = p.latencies or [float("nan")]
        kinds = [kind for kind, _ in p.failures]
        ratios = [s["calls"] / s["seconds"] / (b["calls"] / b["seconds"])
                  for s, b in zip(p.slices, base.slices, strict=True)]
        round_ratios[p] = ratios
        print(f"{p.name:52} {p.total('calls'):6d} {p.total('seconds'):6.1f} {p.rate():8.1f} "
              f"{statistics.median(lat):7.1f} {percentile(lat, 0.9):7.1f} {percentile(lat, 0.99):7.1f} "
              f"{kinds.count('non-200'):7d} {kinds.count('error'):6d} {p.rate() / base.rate():10.2f} "
              f"{statistics.median(ratios):14.2f} {min(ratios):4.2f}-{max(ratios):4.2f}")

    print("\ncalls/s per round (order of the paths in the round; 1-4 as listed above):")
    for round_no, order in enumerate(orders):
        rates = "  ".join(f"{short[p]}: {p.slices[round_no]['calls'] / p.slices[round_no]['seconds']:6.1f}"
                          for p in phases)
        ratios = "  ".join(f"{round_ratios[p][round_no]:4.2f}" for p in phases[:-1])
        print(f"  round {round_no + 1}  order {'-'.join(short[p] for p in order)}  {rates}   vs XML-RPC {ratios}")

    print(f"\nCPU time per call, summed over each path's slices (/proc; idle server over {IDLE:.0f} s before the "
          f"rounds: Odoo {idle['odoo'] / IDLE * 1000:.1f} ms/s, PostgreSQL {idle['pg'] / IDLE * 1000:.1f} ms/s)\n")
    print(f"{'path':52} {'Odoo CPU ms/call':>16} {'PostgreSQL CPU ms/call':>22} {'server ms/call':>14} "
          f"{'vs XML-RPC':>10} {'client CPU ms/call':>18}")
    base_server = base.per_call_ms("odoo") + base.per_call_ms("pg")
    for p in phases:
        server_ms = p.per_call_ms("odoo") + p.per_call_ms("pg")
        print(f"{p.name:52} {p.per_call_ms('odoo'):16.2f} {p.per_call_ms('pg'):22.2f} {server_ms:14.2f} "
              f"{server_ms / base_server:10.2f} {p.per_call_ms('client'):18.2f}")
    gone = {p.name: (p.total("odoo_gone"), p.total("pg_lost"), p.total("clamped")) for p in phases}
    gone = {name: counts for name, counts in gone.items() if any(counts)}
    if gone:
        print("\nprocesses that vanished during a slice (Odoo: still counted, through the master; PostgreSQL "
              "backends: their CPU after the slice's start not counted; a negative Odoo difference counted as 0):")
        for name, (odoo, pg, clamped) in gone.items():
            print(f"  {name}: Odoo {odoo}, PostgreSQL {pg}, Odoo clamped to 0: {clamped}")


if __name__ == "__main__":
    main()
