"""completion/complete and resources/read latency over Streamable HTTP (target: completion p50 <= 20 ms).

Starts a real Odoo server on a fresh database with every addon (the end-to-end harness), then times
completions of template and prompt arguments (model names, field names of a model, report names) and a
record read as a resource, next to a ping (the transport's own floor), round by round. Prints p50/p90.

Run with the test virtualenv:  .venv-test/bin/python bench/bench_completion.py [--calls 200]
"""

import argparse
import statistics

from bench_search_read import ADDONS, MODERN, McpHttp
from benchlib import bench_server, time_paths

RECORD = {"type": "ref/resource", "uri": "odoo://{model}/{id}{?fields}"}
REPORT = {"type": "ref/resource", "uri": "odoo://{model}/{id}/report/{report}{?format}"}
TARGET_MS = 20


class Client(McpHttp):
    """McpHttp that also names the resource of a 2026-07-28 resources/read in its Mcp-Name header."""

    def call(self, method, params):
        if self.mode != MODERN or method != "resources/read":
            return super().call(method, params)
        params = dict(params, _meta={"io.modelcontextprotocol/protocolVersion": MODERN,
                                     "io.modelcontextprotocol/clientCapabilities": {}})
        headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method, "Mcp-Name": params["uri"]}
        _, reply = self.post({"method": method, "params": params}, headers)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["result"]


def complete(client, ref, name, value, context=None):
    params = {"ref": ref, "argument": {"name": name, "value": value}}
    if context:
        params["context"] = {"arguments": context}
    return client.call("completion/complete", params)["completion"]["values"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    with bench_server("benchcompl", ADDONS, 5, keep=args.keep) as (_setup, _db, server, admin, key):
        partner = admin.search_read("res.partner", [], ["id"], limit=1)[0]["id"]
        clients = {mode: Client(server.port, key.secret, mode) for mode in ("legacy", MODERN)}
        for client in clients.values():
            client.initialize()
        assert complete(clients["legacy"], RECORD, "model", "res.part")[0] == "res.partner"
        paths = {}
        for mode, client in clients.items():
            label = "2026-07-28" if mode == MODERN else "2025-11-25 session"
            paths[f"completion model 'res.part' ({label})"] = (
                lambda c=client: complete(c, RECORD, "model", "res.part"))
            paths[f"completion model '' (every model, {label})"] = (
                lambda c=client: complete(c, RECORD, "model", ""))
            paths[f"completion fields of res.partner 'name,em' ({label})"] = (
                lambda c=client: complete(c, RECORD, "fields", "name,em", {"model": "res.partner"}))
            paths[f"completion report of ir.model ({label})"] = (
                lambda c=client: complete(c, REPORT, "report", "base.", {"model": "ir.model"}))
            paths[f"resources/read odoo://res.partner/{partner} ({label})"] = (
                lambda c=client: c.call("resources/read", {"uri": f"odoo://res.partner/{partner}"}))
        paths["ping (2025-11-25 session)"] = lambda: clients["legacy"].call("ping", {})
        timings = time_paths(paths, args.calls)
    print(f"\n{args.calls} calls per path, Streamable HTTP on 127.0.0.1 (ms)")
    width = max(map(len, timings))
    worst = 0.0
    for name, values in timings.items():
        values.sort()
        p50, p90 = statistics.median(values), values[int(len(values) * 0.9) - 1]
        if name.startswith("completion"):
            worst = max(worst, p50)
        print(f"  {name:<{width}}  p50 {p50:7.2f}  p90 {p90:7.2f}")
    print(f"\ncompletion p50, worst path: {worst:.2f} ms (target <= {TARGET_MS} ms): "
          f"{'ok' if worst <= TARGET_MS else 'OVER'}")


if __name__ == "__main__":
    main()
