"""A third-party addon (tests/addons/ocore_mcp_test_extension) adds and overrides tools with _inherit alone."""

from __future__ import annotations

import pytest
from mcp_helpers import MODERN, TRANSPORT_IDS, TRANSPORTS, data_of, list_all_tools

pytestmark = pytest.mark.anyio

EXTENSION_TOOLS = {"e2e_echo", "e2e_sleep", "e2e_busy_loop", "e2e_pg_sleep", "e2e_create_partner", "e2e_delete_partner"}


def test_extension_addon_is_installed(admin):
    rows = admin.search_read("ir.module.module", [("name", "=", "ocore_mcp_test_extension")],
                             ["state", "dependencies_id"])
    assert rows and rows[0]["state"] == "installed"


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_new_tool_family_is_listed_and_callable(mcp_client, slug, transport, mode):
    async with mcp_client(transport, mode) as client:
        tools = {t.name: t for t in await list_all_tools(client)}
        assert {f"{slug}_{name}" for name in EXTENSION_TOOLS} <= set(tools)
        echo = tools[f"{slug}_e2e_echo"]
        # schema and description derived from the signature and the docstring
        assert echo.description.startswith("Echo a text back")
        props = echo.input_schema["properties"]
        assert props["text"]["type"] == "string" and props["text"]["description"] == "Any text; returned unchanged."
        assert echo.input_schema["required"] == ["text"]
        # its own parameters, then the common ones (typed; what they mean: in the instructions)
        assert set(props) == {"text", "password", "options", "timeout_seconds", "max_response_size", "context"}
        assert echo.title == "E2e echo" and echo.output_schema == {"type": "object"}
        result = data_of(await client.call_tool(f"{slug}_e2e_echo", {"text": "from the extension"}))
        assert result["text"] == "from the extension" and result["login"] == "admin"


async def test_new_tool_keeps_pipeline_metadata(mcp_client, make_key, slug):
    """The new tools are ordinary tools for the pipeline: category orm, kinds read / write / destructive."""
    async with mcp_client(key=make_key(categories=["search"])) as client:
        names = {t.name for t in await list_all_tools(client)}
        assert not {f"{slug}_{name}" for name in EXTENSION_TOOLS} & names
    async with mcp_client(key=make_key()) as client:
        tools = {t.name: t for t in await list_all_tools(client)}
        # annotations state only what differs from MCP's defaults (readOnlyHint false, destructiveHint true)
        write = tools[f"{slug}_e2e_create_partner"].annotations
        assert not write.read_only_hint and write.destructive_hint is False
        assert tools[f"{slug}_e2e_delete_partner"].annotations.destructive_hint is True
        assert tools[f"{slug}_e2e_echo"].annotations.read_only_hint is True
    async with mcp_client(key=make_key(read_only=True)) as client:  # offered only what it may call
        names = {t.name for t in await list_all_tools(client)}
        assert f"{slug}_e2e_echo" in names
        assert not {f"{slug}_e2e_create_partner", f"{slug}_e2e_delete_partner"} & names


@pytest.mark.parametrize(("transport", "mode"), [("stream", "legacy"), ("stream", MODERN), ("sse", "legacy")],
                         ids=TRANSPORT_IDS)
async def test_overridden_platform_tool(mcp_client, slug, transport, mode):
    async with mcp_client(transport, mode) as client:
        tools = {t.name: t for t in await list_all_tools(client)}
        # still a platform tool: ocore_ prefix, not the instance slug
        assert "ocore_list_servers" in tools and f"{slug}_list_servers" not in tools
        result = data_of(await client.call_tool("ocore_list_servers", {}))
    assert result["extended_by"] == "ocore_mcp_test_extension"
    server = result["servers"][0]
    assert server["extended_by"] == "ocore_mcp_test_extension"
    assert server["status"] == "running" and server["id"]  # super() still ran


async def test_override_keeps_category_and_description(mcp_client, make_key):
    async with mcp_client(key=make_key(categories=["platform"])) as client:
        tools = {t.name: t for t in await list_all_tools(client)}
        assert set(tools) == {"ocore_list_instances", "ocore_list_servers"}
        assert data_of(await client.call_tool("ocore_list_servers", {}))["extended_by"] == "ocore_mcp_test_extension"
    assert tools["ocore_list_servers"].annotations.read_only_hint is True
    # the override has no docstring: the tool keeps the description of the decorated original
    assert "servers" in tools["ocore_list_servers"].description.lower(), tools["ocore_list_servers"].description
    async with mcp_client(key=make_key(categories=["orm"])) as client:
        assert "ocore_list_servers" not in {t.name for t in await list_all_tools(client)}


async def test_new_category_is_one_record_and_decorated_methods(mcp_client, admin, make_key, slug):
    """The fixture's category ``e2e_extension`` is one data record plus a decorated method: its tool is listed
    and callable, a key may be scoped to it (and to it alone), and the categories holding no tool are not
    offered."""
    offered = {r["code"] for r in admin.search_read("ocore.mcp.category", [("has_tools", "=", True)], ["code"])}
    every = {r["code"]: r["tool_count"] for r in admin.search_read("ocore.mcp.category", [], ["code", "tool_count"])}
    assert "e2e_extension" in offered and every["e2e_extension"] == 1
    assert offered == {code for code, count in every.items() if count}
    assert "export" in set(every) - offered  # a record without a tool (CSV tools are orm's): kept, not offered
    key = make_key(categories=["e2e_extension"])
    async with mcp_client(key=key) as client:
        tools = {t.name for t in await list_all_tools(client)}
        assert tools == {f"{slug}_e2e_extension_ping"}
        result = data_of(await client.call_tool(f"{slug}_e2e_extension_ping", {"text": "own category"}))
    assert result == {"text": "own category", "category": "e2e_extension", "login": "admin"}
    rows = admin.audit([("key_id", "=", key.id), ("event", "=", "call")], limit=1)
    assert rows[0]["category"] == "e2e_extension" and rows[0]["status"] == "success"
    async with mcp_client(key=make_key(categories=["orm"])) as client:
        assert f"{slug}_e2e_extension_ping" not in {t.name for t in await list_all_tools(client)}
