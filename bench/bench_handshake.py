"""The requests around the calls: session start, server/discover and tools/list vs one XML-RPC call, in one run.

Starts a real Odoo server on a fresh database with every addon that adds tools (ocore_mcp, ocore_mcp_knowledge,
ocore_mcp_oauth), then times, interleaved round by round over keep-alive connections (no SDK in the measured
path; bench/bench_peers.py times the session start through the official SDK client against mcp-server-odoo):

- XML-RPC ``execute_kw search_read`` of 80 partners (6 fields): "one XML-RPC call", the baseline;
- ``server/discover`` (2026-07-28), target <= 0.5 x the baseline;
- ``tools/list`` of every tool (2026-07-28, one page), target <= 0.6 x the baseline and <= 60 KB;
- a new 2025-11-25 session: ``initialize`` + ``notifications/initialized`` (new connections), and the same
  with the optional GET stream opened (its first bytes read) and the session deleted afterwards.

Run with the test virtualenv:  .venv-test/bin/python bench/bench_handshake.py [--calls 200] [--mode prefork]
"""

import argparse
import http.client
import json
import os
import statistics
import xmlrpc.client

from benchclient import HANDSHAKE, MODERN, STREAM_PATH, McpHttp, percentile
from benchlib import bench_server, time_paths

FIELDS = ["name", "email", "phone", "is_company", "city", "country_id"]
DOMAIN = [["name", "ilike", "Bench"]]
LIMIT = 80
ADDONS = ("ocore_mcp", "ocore_mcp_knowledge", "ocore_mcp_oauth")
BASELINE = "xml-rpc execute_kw search_read (80 rows)"


def session_with_stream(port, stream_port, key):
    """initialize + initialized, the GET stream opened (headers and first bytes), then DELETE (not timed
    apart: the caller times the whole, the DELETE included)."""
    client = McpHttp(port, key, "legacy").initialize()
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream", "Mcp-Session-Id": client.session,
               "MCP-Protocol-Version": HANDSHAKE}
    stream = http.client.HTTPConnection("127.0.0.1", stream_port, timeout=30)
    stream.request("GET", STREAM_PATH, headers=headers)
    resp = stream.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"GET stream: HTTP {resp.status}")
    resp.fp.readline()
    return client, stream, headers


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--mode", choices=("threaded", "prefork"), default="threaded")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    with bench_server("handshake", ADDONS, LIMIT, keep=args.keep, mode=args.mode) as (
            _setup, db, server, _admin, key):
        stream_port = server.gevent_port or server.port
        modern = McpHttp(server.port, key.secret, MODERN)
        rpc = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/object", allow_none=True)
        uid = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/common").authenticate(db, "admin", "admin", {})

        def xmlrpc_call():
            rows = rpc.execute_kw(db, uid, "admin", "res.partner", "search_read", [DOMAIN],
                                  {"fields": FIELDS, "limit": LIMIT})
            assert len(rows) == LIMIT

        def start_and_end():
            client, stream, headers = session_with_stream(server.port, stream_port, key.secret)
            end = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            end.request("DELETE", STREAM_PATH, headers=headers)
            assert end.getresponse().status == 200
            end.close()
            stream.close()
            client.close()

        def initialize():
            McpHttp(server.port, key.secret, "legacy").initialize().close()

        listing = modern.call("tools/list", {})
        assert "nextCursor" not in listing, "tools/list has more than one page"
        discover = modern.call("server/discover", {})
        assert MODERN in discover["supportedVersions"], discover
        paths = {
            BASELINE: xmlrpc_call,
            "mcp server/discover (2026-07-28)": lambda: modern.call("server/discover", {}),
            "mcp tools/list, every tool (2026-07-28)": lambda: modern.call("tools/list", {}),
            "mcp initialize + initialized (2025-11-25)": initialize,
            "mcp initialize + initialized + GET stream + DELETE": start_and_end,
        }
        timings = time_paths(paths, args.calls)
        load_after = os.getloadavg()
        list_bytes = len(json.dumps(listing, separators=(",", ":")).encode())
        modern.close()

    base = statistics.median(timings[BASELINE])
    print(f"\n{args.mode} server, {args.calls} calls per path, interleaved; load average (1, 5, 15 min) after: "
          + " ".join(f"{v:.2f}" for v in load_after) + "\n")
    print(f"{'path':54} {'p50 ms':>8} {'p90 ms':>8} {'vs XML-RPC':>11}")
    for name, values in timings.items():
        p50 = statistics.median(values)
        print(f"{name:54} {p50:8.2f} {percentile(values, 0.9):8.2f} {p50 / base:11.2f}")
    print(f"\ntools/list: {len(listing['tools'])} tools, {list_bytes / 1024:.1f} KB (target <= 60 KB)")
    print(f"ratio server/discover / XML-RPC = "
          f"{statistics.median(timings['mcp server/discover (2026-07-28)']) / base:.2f} (target <= 0.50)")
    print(f"ratio tools/list / XML-RPC      = "
          f"{statistics.median(timings['mcp tools/list, every tool (2026-07-28)']) / base:.2f} (target <= 0.60)")


if __name__ == "__main__":
    main()
