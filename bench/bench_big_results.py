"""Big results: a 5,000-row export_csv and a 2,000-record search_read through MCP vs the same work over XML-RPC.

Starts a real Odoo server on a fresh database (the end-to-end harness) with 5,000 partners, then times,
interleaved round by round:

- MCP ``tools/call <slug>_search_read`` of 2,000 partners (6 fields, one of them a many2one) against
  XML-RPC ``execute_kw search_read`` with the same domain, fields and limit;
- MCP ``tools/call <slug>_export_csv`` of 5,000 partners (the same fields) against XML-RPC
  ``execute_kw export_data`` of the same 5,000 ids (Odoo's own export engine, the one export_csv runs;
  the ids known beforehand: one XML-RPC call, the strictest baseline).

Both MCP calls ask for a ``max_response_size`` that holds the whole result (nothing truncated: checked).
Target: each MCP path <= 1.2 x its XML-RPC path.

Run with the test virtualenv:  .venv-test/bin/python bench/bench_big_results.py [--calls 15] [--mode prefork]
"""

import argparse
import statistics
import time
import xmlrpc.client

from benchclient import MODERN, McpHttp, percentile
from benchlib import bench_server

FIELDS = ["name", "email", "phone", "is_company", "city", "country_id"]
DOMAIN = [["name", "ilike", "Big"]]
ROWS = 5000
READ_LIMIT = 2000
MAX_KB = 8192


def add_partners(admin, count, batch=1000):
    """``count`` more partners, created a thousand at a time (one create call each)."""
    belgium = admin.ref("base.be")
    for start in range(0, count, batch):
        admin.call("res.partner", "create", [
            {"name": f"Big Partner {i}", "email": f"big{i}@example.com", "phone": f"+32 2 555 {i:04d}",
             "city": "Brussels", "is_company": i % 3 == 0, "country_id": belgium}
            for i in range(start, min(count, start + batch))])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--mode", choices=("threaded", "prefork"), default="threaded")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    with bench_server("big", partners=0, keep=args.keep, label="Big", mode=args.mode) as (
            _setup, db, server, admin, key):
        add_partners(admin, ROWS)
        tool = f"{server.slug}_%s"
        client = McpHttp(server.port, key.secret, MODERN)
        rpc = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/object", allow_none=True)
        uid = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/common").authenticate(db, "admin", "admin", {})

        def execute(model, method, *args_, **kw):
            return rpc.execute_kw(db, uid, "admin", model, method, list(args_), kw)

        ids = execute("res.partner", "search", DOMAIN, order="id", limit=ROWS)
        assert len(ids) == ROWS, len(ids)
        read_args = {"model": "res.partner", "domain": DOMAIN, "fields": FIELDS, "limit": READ_LIMIT,
                     "order": "id", "max_response_size": MAX_KB}
        export_args = {"model": "res.partner", "domain": DOMAIN, "fields": FIELDS, "limit": ROWS, "order": "id",
                       "header": "name", "max_response_size": MAX_KB}
        sizes = {}

        def mcp_search_read():
            result = client.call("tools/call", {"name": tool % "search_read", "arguments": read_args})
            assert not result.get("isError"), str(result)[:500]
            data = result["structuredContent"]
            assert len(data["records"]) == READ_LIMIT and not data.get("truncated"), data.get("truncation")
            sizes["mcp search_read"] = client.last_bytes

        def rpc_search_read():
            rows = execute("res.partner", "search_read", DOMAIN, fields=FIELDS, limit=READ_LIMIT, order="id")
            assert len(rows) == READ_LIMIT

        def mcp_export():
            result = client.call("tools/call", {"name": tool % "export_csv", "arguments": export_args})
            assert not result.get("isError"), str(result)[:500]
            data = result["structuredContent"]
            assert data["count"] == ROWS and not data.get("truncated"), data.get("truncation")
            sizes["mcp export_csv"] = client.last_bytes

        def rpc_export():
            datas = execute("res.partner", "export_data", ids, FIELDS)["datas"]
            assert len(datas) == ROWS

        paths = {
            "mcp tools/call search_read, 2,000 records": mcp_search_read,
            "xml-rpc search_read, 2,000 records": rpc_search_read,
            "mcp tools/call export_csv, 5,000 rows": mcp_export,
            "xml-rpc export_data, 5,000 rows (ids known)": rpc_export,
        }
        timings = {name: [] for name in paths}
        for _ in range(args.warmup):
            for fn in paths.values():
                fn()
        for _ in range(args.calls):
            for name, fn in paths.items():
                started = time.perf_counter()
                fn()
                timings[name].append((time.perf_counter() - started) * 1000)
        client.close()

    print(f"\nbig results ({args.mode} server, {args.calls} calls per path, interleaved, one keep-alive "
          "connection for MCP)\n")
    print(f"{'path':48} {'p50 ms':>8} {'p90 ms':>8}")
    for name, values in timings.items():
        print(f"{name:48} {statistics.median(values):8.1f} {percentile(values, 0.9):8.1f}")
    print()
    for mcp, rpc_name, what in (("mcp tools/call search_read, 2,000 records", "xml-rpc search_read, 2,000 records",
                                 "search_read 2,000"),
                                ("mcp tools/call export_csv, 5,000 rows", "xml-rpc export_data, 5,000 rows (ids known)",
                                 "export_csv 5,000")):
        ratio = statistics.median(timings[mcp]) / statistics.median(timings[rpc_name])
        print(f"ratio {what:18} MCP / XML-RPC = {ratio:5.2f}  (target <= 1.20)")
    for name, size in sizes.items():
        print(f"response size {name}: {size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
