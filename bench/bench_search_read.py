"""search_read through MCP vs Odoo's XML-RPC vs the bare ORM, measured in one run.

Starts a real Odoo server on a fresh database of its own (the end-to-end harness), creates
partners (named after this run, so that the searches find exactly them whatever else the
database holds) and an API key, then times the same search_read (same domain, fields and
limit) by every path, interleaving the paths round by round so that machine noise
hits them alike. Prints p50/p90 per path and the ratios. Absolute times vary from
run to run on a shared machine: compare the ratios.

Run with the test virtualenv:  .venv-test/bin/python bench/bench_search_read.py [--calls 200]
"""

import argparse
import http.client
import json
import os
import queue
import secrets
import statistics
import subprocess
import textwrap
import threading
import xmlrpc.client

from benchclient import MODERN, McpHttp, percentile
from benchlib import bench_server, time_paths

FIELDS = ["name", "email", "phone", "is_company", "city", "country_id"]
LABEL = f"Bench{secrets.token_hex(3)}"  # this run's partners: "<LABEL> Partner <i>"
DOMAIN = [["name", "ilike", f"{LABEL} Partner"]]
LIMIT = 80
PARTNERS = 80
ADDONS = ("ocore_mcp", "ocore_mcp_knowledge", "ocore_mcp_oauth")  # tools/list of every tool


class McpSse:
    """A minimal legacy SSE client (2024-11-05 transport): a GET stream for the answers, POSTs for the requests."""

    def __init__(self, port, key, stream_port=None):
        """``stream_port``: where the GET stream goes (a prefork server's gevent port, as the proxy routes it)."""
        self.port = port
        self.key = key
        self.replies = queue.Queue()
        self.endpoint = queue.Queue()
        self.stream = http.client.HTTPConnection("127.0.0.1", stream_port or port)
        self.stream.request("GET", "/ocore/mcp/sse", headers={"Authorization": f"Bearer {key}",
                                                              "Accept": "text/event-stream"})
        resp = self.stream.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"SSE stream: HTTP {resp.status}")
        threading.Thread(target=self._read, args=(resp,), daemon=True).start()
        self.path = self.endpoint.get(timeout=10)
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.next_id = 0

    def _read(self, resp):
        try:
            self._read_events(resp)
        except (OSError, AttributeError, ValueError):  # the stream was closed by close()
            pass

    def _read_events(self, resp):
        event, data = "message", []
        for raw in resp:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line and data:
                (self.endpoint if event == "endpoint" else self.replies).put("\n".join(data))
                event, data = "message", []

    def post(self, body):
        hdrs = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        self.conn.request("POST", self.path, json.dumps(dict(body, jsonrpc="2.0")), hdrs)
        resp = self.conn.getresponse()
        resp.read()
        if resp.status != 202:
            raise RuntimeError(f"HTTP {resp.status}")

    def request(self, method, params):
        self.next_id += 1
        self.post({"id": self.next_id, "method": method, "params": params})
        while True:  # the answers come back on the stream, in order here (one request at a time)
            reply = json.loads(self.replies.get(timeout=30))
            if reply.get("id") == self.next_id:
                break
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["result"]

    def initialize(self):
        self.request("initialize", {"protocolVersion": "2024-11-05", "capabilities": {},
                                    "clientInfo": {"name": "bench", "version": "1"}})
        self.post({"method": "notifications/initialized"})
        return self

    def call(self, method, params):
        return self.request(method, params)

    def close(self):
        self.stream.close()
        self.conn.close()


ORM_SCRIPT = textwrap.dedent("""
    import json, time
    from odoo.modules.registry import Registry
    domain, fields, limit, n, key_id, token, tool, arguments = {args}
    from odoo import SUPERUSER_ID, api
    from odoo.addons.ocore_mcp.service import audit, policy
    from odoo.addons.ocore_mcp.service.context import Connection
    def timed_once(fn):
        t = time.perf_counter(); fn(); return [(time.perf_counter() - t) * 1000]
    def timed(fn):
        return [x for _ in range(n) for x in timed_once(fn)]
    # as the same user as the other paths (admin: record rules apply, unlike the superuser)
    uid = env.ref("base.user_admin").id
    uenv = env(user=uid)
    def warm():
        uenv.invalidate_all()
        return uenv["res.partner"].search_read(domain, fields, limit=limit)
    def fresh():
        with Registry(env.cr.dbname).cursor() as cr:
            e = type(env)(cr, uid, {{}})
            e["res.partner"].search_read(domain, fields, limit=limit)
    assert len(warm()) == limit
    timed(warm)
    # the MCP pipeline in-process (what a tools/call runs after Odoo's HTTP layer: the key's lookup, the
    # bookkeeping, the tool, the audit outcome), with the real audit writer and with it replaced by a no-op,
    # interleaved: the difference is what audit logging costs
    real = (audit.insert, audit.update, audit.insert_query)
    def pipeline():
        with Registry(env.cr.dbname).cursor() as cr:
            e = api.Environment(cr, SUPERUSER_ID, {{}})
            server = e["ocore.mcp.server"]
            settings = server._ocore_settings()
            # the key found and checked as McpController._authenticate does it
            key, auth = e["ocore.mcp.key"]._ocore_authenticate(token)
            auth = policy.check_key(auth, settings, "127.0.0.1")
            conn = Connection(key=key, auth=auth, scope=auth.scope, settings=settings, transport="modern",
                              protocol_version="2026-07-28")
            result = server._ocore_call_tool(conn, tool, arguments)
            assert not result["isError"], result
    def no_audit():
        # (the statement that completes the row also ends the call's transaction: that part stays)
        audit.insert = lambda cr, values: None
        audit.update = lambda cr, audit_id, values, then=None: cr.execute(then) if then else None
        # the bookkeeping statement then inserts nothing (the rate-limit hit stays)
        audit.insert_query = lambda values, condition=None, condition_params=(): (
            "SELECT NULL WHERE " + condition if condition else "SELECT NULL", list(condition_params))
        try:
            pipeline()
        finally:
            audit.insert, audit.update, audit.insert_query = real
    def audit_rows(after=0):
        # this key's calls only: the server still runs (a stream closed by the client ends its session in
        # the audit too), and the database may hold other rows
        with Registry(env.cr.dbname).cursor() as cr:
            cr.execute("SELECT count(*), coalesce(max(id), 0) FROM mcp_audit_log WHERE key_id = %s AND event = 'call' "
                       "AND id > %s", (key_id, after))
            return cr.fetchone()
    _count, last_id = audit_rows()
    # the bare call with a fresh cursor is interleaved with the pipeline's runs too: the difference of the
    # two is the figure the README gives, and a passing load then weighs on both alike
    with_audit, without_audit, bare_fresh = [], [], []
    for _ in range(n):
        bare_fresh += timed_once(fresh)
        with_audit += timed_once(pipeline)
        without_audit += timed_once(no_audit)
    rows_written = audit_rows(last_id)[0]
    assert rows_written == n, rows_written  # one audit row per audited call, none from the no-op runs
    print("ORMJSON " + json.dumps({{"orm": timed(warm), "orm_fresh_cursor": bare_fresh,
                                   "pipeline": with_audit, "pipeline_no_audit": without_audit}}))
""")


def in_process(setup, db, calls, key, tool, arguments):
    script = ORM_SCRIPT.format(args=repr((DOMAIN, FIELDS, LIMIT, calls, key.id, key.secret, tool, arguments)))
    cmd = [str(setup.python), str(setup.odoo_bin), "shell", "-c", str(setup.conf), "-d", db, "--no-http",
           f"--addons-path={setup.addons_path()}"]
    proc = subprocess.run(cmd, input=script, capture_output=True, text=True, env=setup.process_env(),
                          check=False, timeout=600)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("ORMJSON ")), None)
    if proc.returncode or line is None:
        raise RuntimeError(f"odoo-bin shell failed (exit code {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(line[len("ORMJSON "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--mode", choices=("threaded", "prefork"), default="threaded",
                        help="Odoo server mode (prefork: --workers=2 and the gevent port, SSE streams there)")
    args = parser.parse_args()
    with bench_server("bench", ADDONS, PARTNERS, keep=args.keep, mode=args.mode, label=LABEL) as (
            setup, db, server, _admin, key):
        tool = f"{server.slug}_search_read"
        arguments = {"model": "res.partner", "domain": DOMAIN, "fields": FIELDS, "limit": LIMIT}
        clients = {mode: McpHttp(server.port, key.secret, mode) for mode in ("legacy", MODERN)}
        for client in clients.values():
            client.initialize()
            result = client.call("tools/call", {"name": tool, "arguments": arguments})
            assert not result.get("isError"), result
            assert len(result["structuredContent"]["records"]) == LIMIT, result["structuredContent"].keys()
        sse = McpSse(server.port, key.secret, server.gevent_port).initialize()
        result = sse.call("tools/call", {"name": tool, "arguments": arguments})
        assert len(result["structuredContent"]["records"]) == LIMIT
        rpc = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/object", allow_none=True)
        uid = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/common").authenticate(db, "admin", "admin", {})

        def xmlrpc_call():
            rows = rpc.execute_kw(db, uid, "admin", "res.partner", "search_read", [DOMAIN],
                                  {"fields": FIELDS, "limit": LIMIT})
            assert len(rows) == LIMIT

        paths = {
            "mcp tools/call (streamable HTTP, 2026-07-28)":
                lambda: clients[MODERN].call("tools/call", {"name": tool, "arguments": arguments}),
            "mcp tools/call (streamable HTTP, 2025-11-25 session)":
                lambda: clients["legacy"].call("tools/call", {"name": tool, "arguments": arguments}),
            "mcp tools/call (legacy SSE, 2024-11-05 session)":
                lambda: sse.call("tools/call", {"name": tool, "arguments": arguments}),
            "xml-rpc execute_kw search_read": xmlrpc_call,
            "mcp tools/list (2026-07-28)": lambda: clients[MODERN].call("tools/list", {}),
            "mcp handshake: initialize + initialized (new session)":
                lambda: McpHttp(server.port, key.secret, "legacy").initialize(),
            "mcp handshake: server/discover (2026-07-28)": lambda: clients[MODERN].call("server/discover", {}),
        }
        timings = time_paths(paths, args.calls)
        listing = clients[MODERN].call("tools/list", {})
        list_bytes = len(json.dumps(listing, separators=(",", ":")))
        sse.close()
        orm = in_process(setup, db, args.calls, key, tool, arguments)
        timings["bare ORM search_read (in-process, warm cursor)"] = orm["orm"]
        timings["bare ORM search_read (in-process, fresh cursor)"] = orm["orm_fresh_cursor"]
        timings["MCP pipeline in-process (audit on)"] = orm["pipeline"]
        timings["MCP pipeline in-process (audit writer a no-op)"] = orm["pipeline_no_audit"]

    base_rpc = statistics.median(timings["xml-rpc execute_kw search_read"])
    base_orm = statistics.median(timings["bare ORM search_read (in-process, fresh cursor)"])
    print(f"\nsearch_read of {LIMIT} res.partner rows, {len(FIELDS)} fields, {args.calls} calls per path "
          f"({args.mode} server, one keep-alive connection per path)\n")
    print(f"{'path':58} {'p50 ms':>8} {'p90 ms':>8} {'vs XML-RPC':>11} {'vs ORM':>8}")
    for name, values in timings.items():
        p50 = statistics.median(values)
        print(f"{name:58} {p50:8.2f} {percentile(values, 0.9):8.2f} {p50 / base_rpc:11.2f} {p50 / base_orm:8.2f}")
    print(f"\ntools/list: {len(listing['tools'])} tools, {list_bytes / 1024:.1f} KB")
    audit_ms = (statistics.median(timings["MCP pipeline in-process (audit on)"])
                - statistics.median(timings["MCP pipeline in-process (audit writer a no-op)"]))
    call_ms = statistics.median(timings["mcp tools/call (streamable HTTP, 2026-07-28)"])
    pipeline_ms = statistics.median(timings["MCP pipeline in-process (audit on)"]) - base_orm
    print(f"MCP pipeline in-process, audit included: {pipeline_ms:.2f} ms above the bare ORM call (fresh cursor)")
    print(f"audit logging: {audit_ms:.2f} ms per call (p50 difference in-process) = "
          f"{100 * audit_ms / call_ms:.1f} % of an MCP tools/call over HTTP ({call_ms:.2f} ms)")
    # figures taken on a busy machine are indicative only
    print("load average (1, 5, 15 min) at the end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
