"""A minimal keep-alive MCP client over Streamable HTTP (no SDK in the measured path), for the benchmarks."""

import http.client
import json

MODERN = "2026-07-28"
HANDSHAKE = "2025-11-25"
STREAM_PATH = "/ocore/mcp/stream"


class McpHttp:
    """One keep-alive connection speaking MCP: ``mode`` 2026-07-28 (per-request envelope) or "legacy" (a
    2025-11-25 session opened by :meth:`initialize`)."""

    def __init__(self, port, key, mode=MODERN, timeout=300):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.key = key
        self.mode = mode
        self.session = None
        self.next_id = 0
        self.last_bytes = 0

    def post(self, body, headers=None):
        self.next_id += 1
        body = dict(body, jsonrpc="2.0")
        if "id" in body and body["id"] is None:
            del body["id"]  # a notification
        elif "method" in body:
            body.setdefault("id", self.next_id)
        hdrs = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream", **(headers or {})}
        self.conn.request("POST", STREAM_PATH, json.dumps(body), hdrs)
        resp = self.conn.getresponse()
        data = resp.read()
        self.last_bytes = len(data)
        if resp.status >= 400:
            raise RuntimeError(f"HTTP {resp.status}: {data[:300]!r}")
        return resp, (json.loads(data) if data else None)

    def initialize(self):
        if self.mode == MODERN:
            return self
        resp, _ = self.post({"method": "initialize", "params": {
            "protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        self.session = resp.getheader("Mcp-Session-Id")
        self.post({"method": "notifications/initialized", "id": None},
                  {"Mcp-Session-Id": self.session, "MCP-Protocol-Version": HANDSHAKE})
        return self

    def call(self, method, params):
        if self.mode == MODERN:
            params = dict(params, _meta={"io.modelcontextprotocol/protocolVersion": MODERN,
                                         "io.modelcontextprotocol/clientCapabilities": {}})
            headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
            if method == "tools/call":
                headers["Mcp-Name"] = params["name"]
        else:
            headers = {"Mcp-Session-Id": self.session, "MCP-Protocol-Version": HANDSHAKE}
        _, reply = self.post({"method": method, "params": params}, headers)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["result"]

    def close(self):
        self.conn.close()


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]
