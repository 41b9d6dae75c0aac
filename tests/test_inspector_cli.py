"""The official MCP Inspector CLI (npm @modelcontextprotocol/inspector) against the real server.

The Inspector is installed from tests/inspector/package.json into tests/inspector/node_modules the first
time (npm, Node.js of the machine). It lists and calls tools over Streamable HTTP and legacy SSE with
a key in the Authorization header, and is refused without one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "inspector"
BIN = HERE / "node_modules" / ".bin" / "mcp-inspector"


@pytest.fixture(scope="module")
def inspector():
    if not BIN.exists():
        npm = shutil.which("npm")
        assert npm, "npm (Node.js) is needed to install the MCP Inspector CLI"
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=HERE, check=True, timeout=600)
    assert BIN.exists()
    return BIN


def run(inspector, url, transport, *args, key=None):
    cmd = [str(inspector), "--cli", url, "--transport", transport, *args]
    if key:
        cmd += ["--header", f"Authorization: Bearer {key.secret}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("path", "transport"), [("/ocore/mcp/stream", "http"), ("/ocore/mcp/sse", "sse")])
def test_inspector_lists_and_calls_tools(inspector, odoo, make_key, slug, path, transport):
    key = make_key()
    listed = run(inspector, odoo.url + path, transport, "--method", "tools/list", key=key)
    assert listed.returncode == 0, listed.stderr[-2000:]
    names = {tool["name"] for tool in json.loads(listed.stdout)["tools"]}
    assert {"ocore_list_instances", f"{slug}_search_read", f"{slug}_count"} <= names
    called = run(inspector, odoo.url + path, transport, "--method", "tools/call", "--tool-name", f"{slug}_count",
                 "--tool-arg", "model=res.users", key=key)
    assert called.returncode == 0, called.stderr[-2000:]
    result = json.loads(called.stdout)
    assert result["isError"] is False and result["structuredContent"]["count"] >= 1


def test_inspector_without_key_is_refused(inspector, odoo):
    refused = run(inspector, odoo.url + "/ocore/mcp/stream", "http", "--method", "tools/list")
    assert refused.returncode != 0
    assert '"tools"' not in refused.stdout
