"""PostHog capture must never slow a request down, even when PostHog is unreachable.

Starts a real Odoo server on a fresh database (the end-to-end harness) and times two requests every page of
the product makes: a web client RPC (JSON-RPC ``/web/dataset/call_kw/res.partner/search_read``, observed by
the server-side capture) and an MCP ``tools/call`` (captured as ``mcp_tool_call``), in blocks under each
capture mode, the blocks interleaved round after round so that machine noise hits the modes alike:

- ``off``: capture off (the default);
- ``down``: capture on, the PostHog host a closed port (connection refused);
- ``hang``: capture on, the PostHog host a socket that accepts and never answers (a firewall drop, a hung
  proxy: the library's consumer thread waits out its timeout).

With the slow RPC threshold at 1 ms every request queues an event (the worst case). Prints p50/p90 per mode
and request and the ratio to ``off``; exits non-zero when a p50 under ``down`` or ``hang`` is more than 5 %
above ``off`` (``--tolerance``) or when a request failed.

Run with the test virtualenv:  .venv-test/bin/python bench/bench_posthog.py [--rounds 6 --calls 60]
"""

import argparse
import contextlib
import http.client
import json
import socket
import statistics
import sys
import time

from bench_search_read import MODERN, McpHttp
from benchlib import bench_server

MODES = ("off", "down", "hang")


@contextlib.contextmanager
def hanging_socket():
    """A port that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebRpc:
    """The web client's JSON-RPC on a logged-in session, over one keep-alive connection."""

    def __init__(self, port, db):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.cookie = None
        self.post("/web/session/authenticate", {"db": db, "login": "admin", "password": "admin"})

    def post(self, path, params):
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params})
        headers = {"Content-Type": "application/json", **({"Cookie": self.cookie} if self.cookie else {})}
        self.conn.request("POST", path, body, headers)
        resp = self.conn.getresponse()
        data = json.loads(resp.read())
        cookie = resp.getheader("Set-Cookie")
        if cookie and cookie.startswith("session_id="):
            self.cookie = cookie.split(";", 1)[0]
        if resp.status != 200 or "error" in data:
            raise RuntimeError(f"{path}: HTTP {resp.status} {str(data)[:300]}")
        return data["result"]

    def search_read(self):
        return self.post("/web/dataset/call_kw/res.partner/search_read", {
            "model": "res.partner", "method": "search_read", "args": [[["name", "ilike", "Bench"]]],
            "kwargs": {"fields": ["name", "email", "city"], "limit": 40}})


def set_mode(admin, mode, ports):
    values = {"posthog_capture": "0" if mode == "off" else "1", "posthog_slow_rpc_ms": "1",
              "posthog_project_api_key": "phc_bench", "posthog_host": f"http://127.0.0.1:{ports[mode]}"}
    for name, value in values.items():
        admin.set_param(f"ocore_mcp.{name}", value)


def measure(fn, calls):
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def pct(values, q):
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=60, help="measured calls per request, mode and round")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args()

    with hanging_socket() as hang_port, bench_server("posthog", partners=80) as (_setup, db, server, admin, key):
        ports = {"off": closed_port(), "down": closed_port(), "hang": hang_port}
        web = WebRpc(server.port, db)
        mcp = McpHttp(server.port, key.secret, MODERN)
        mcp.initialize()
        tool = {"name": f"{server.slug}_count",
                "arguments": {"model": "res.partner", "domain": [["name", "ilike", "Bench"]]}}
        requests = {"web rpc": web.search_read, "mcp tools/call": lambda: mcp.call("tools/call", tool)}
        results = {(mode, name): [] for mode in MODES for name in requests}
        failures = 0
        for round_no in range(args.rounds):
            order = MODES if round_no % 2 == 0 else tuple(reversed(MODES))
            for mode in order:
                set_mode(admin, mode, ports)
                for name, fn in requests.items():
                    measure(fn, args.warmup)
                    try:
                        results[mode, name].extend(measure(fn, args.calls))
                    except Exception as exc:  # noqa: BLE001 - a failed request is what this bench looks for
                        failures += 1
                        print(f"FAILED under {mode}: {name}: {exc}", flush=True)
            print(f"round {round_no + 1}/{args.rounds} done", flush=True)
        set_mode(admin, "off", ports)

    ok = not failures
    print(f"\n{'request':<16} {'mode':<6} {'calls':>6} {'p50 ms':>8} {'p90 ms':>8} {'p50 vs off':>11}")
    for name in requests:
        base = statistics.median(results["off", name])
        for mode in MODES:
            values = results[mode, name]
            p50 = statistics.median(values)
            ratio = p50 / base - 1
            verdict = "" if mode == "off" else ("  ok" if ratio <= args.tolerance else "  TOO SLOW")
            ok = ok and (mode == "off" or ratio <= args.tolerance)
            print(f"{name:<16} {mode:<6} {len(values):>6} {p50:>8.2f} {pct(values, 90):>8.2f} {ratio:>+10.1%}{verdict}")
    print(f"\ncapture on with PostHog unreachable: p50 within {args.tolerance:.0%} of capture off, no request "
          f"failed: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
