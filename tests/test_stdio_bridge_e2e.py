"""The stdio bridge (bridge/, console script ``ocore-mcp-stdio``) driven by the official SDK's stdio client.

The package is pip-installed into a virtualenv of its own (no Odoo in it); the SDK starts its console script
as a local process, as Claude Desktop does, and speaks every revision through it: a handshake session
(legacy) and the stateless 2026-07-28 requests. Calls through the bridge get the stdio transport's rate
limit (30/min) unless the key sets one."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_helpers import MODERN, data_of, list_all_tools, text_of

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bridge_bin(tmp_path_factory):
    """``ocore-mcp-stdio`` from ``pip install bridge/`` into a fresh virtualenv (Odoo not importable there)."""
    env_dir = tmp_path_factory.mktemp("bridge") / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    done = subprocess.run([str(py), "-m", "pip", "install", "-q", str(REPO / "bridge")], capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert subprocess.run([str(py), "-c", "import odoo"], capture_output=True, check=False).returncode != 0
    return env_dir / "bin" / "ocore-mcp-stdio"


def params(bridge_bin, odoo, key, via_env=False):
    if via_env:
        return StdioServerParameters(command=str(bridge_bin), args=[],
                                     env={"OCORE_MCP_URL": odoo.url, "OCORE_MCP_KEY": key.secret})
    return StdioServerParameters(command=str(bridge_bin), args=[f"{odoo.url}/ocore/mcp/stream", "--key", key.secret])


def client(bridge_bin, odoo, key, mode="legacy", via_env=False):
    return Client(stdio_client(params(bridge_bin, odoo, key, via_env)), mode=mode, cache=None,
                  read_timeout_seconds=60)


def test_installed_without_odoo(bridge_bin):
    out = subprocess.run([str(bridge_bin), "--version"], capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0 and out.stdout.startswith("ocore-mcp-stdio ")
    missing = subprocess.run([str(bridge_bin)], capture_output=True, text=True, timeout=30, check=False,
                             env={"PATH": "/usr/bin:/bin"})
    assert missing.returncode == 2 and "server URL is required" in missing.stderr


@pytest.mark.parametrize("mode", ["legacy", MODERN])
async def test_every_revision_through_the_bridge(bridge_bin, odoo, slug, make_key, admin, mode):
    key = make_key()
    async with client(bridge_bin, odoo, key, mode=mode, via_env=mode == MODERN) as mcp:
        tools = {t.name for t in await list_all_tools(mcp)}
        assert f"{slug}_count" in tools
        counted = data_of(await mcp.call_tool(f"{slug}_count", {"model": "res.users"}))
        assert counted["count"] >= 1
        echo = await mcp.call_tool(f"{slug}_e2e_echo", {"text": "héllo ✓"})
        assert not echo.is_error and "héllo ✓" in text_of(echo)
        prompts = await mcp.list_prompts()
        assert prompts.prompts
    rows = admin.wait_audit([("key_id", "=", key.id), ("tool_name", "=", f"{slug}_count")], count=1)
    assert rows[0]["status"] == "success"


@pytest.mark.parametrize("mode", ["legacy", MODERN])
async def test_stdio_rate_limit_unless_the_key_sets_one(bridge_bin, odoo, slug, make_key, mode):
    key = make_key()  # rate_limit 0: the instance default over HTTP, the stdio limit through the bridge
    refused_at = None
    async with client(bridge_bin, odoo, key, mode=mode) as mcp:
        for i in range(40):
            result = await mcp.call_tool(f"{slug}_e2e_echo", {"text": str(i)})
            if result.is_error:
                assert text_of(result).startswith("rate limit exceeded") and "limit 30/min" in text_of(result)
                refused_at = i
                break
    assert refused_at is not None and refused_at <= 30
    own = make_key(rate_limit=60)
    async with client(bridge_bin, odoo, own, mode=mode) as mcp:
        for i in range(35):
            result = await mcp.call_tool(f"{slug}_e2e_echo", {"text": str(i)})
            assert not result.is_error, text_of(result)


def test_bridge_module_is_the_servers_protocol_code():
    """The package holds no copy of the protocol code: its wire module is the server's file."""
    link = REPO / "bridge" / "ocore_mcp_stdio" / "wire" / "protocol.py"
    assert link.is_symlink() and link.resolve() == (REPO / "ocore_mcp" / "lib" / "protocol.py").resolve()
    assert sys.version_info >= (3, 10)
