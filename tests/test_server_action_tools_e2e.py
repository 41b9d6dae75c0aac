"""Server actions as MCP tools, end to end: an administrator ticks "Available in MCP" on a server action
(no Python written for MCP), the official SDK client lists and calls the tool, gets told when the tool
list changes, and the call is audited like any tool's."""

from __future__ import annotations

import secrets

import anyio
import pytest
from mcp_helpers import data_of, error_of, list_all_tools

pytestmark = pytest.mark.anyio

CODE = """
for record in records:
    record.write({"ref": (env.context.get("mcp_values") or {}).get("ref", "tagged")})
"""


@pytest.fixture
def action(admin):
    name = f"tag_partners_{secrets.token_hex(3)}"
    model_id = admin.search_read("ir.model", [("model", "=", "res.partner")], ["id"])[0]["id"]
    action_id = admin.create("ir.actions.server", {
        "name": "Tag partners", "model_id": model_id, "state": "code", "code": CODE,
        "mcp_tool": True, "mcp_tool_name": name,
        "mcp_tool_description": "Set the reference of the given partners (values.ref)."})
    yield action_id, name
    admin.call("ir.actions.server", "unlink", [action_id])


async def test_admin_defined_tool(mcp_client, slug, admin, action, make_key):
    action_id, name = action
    tool_name = f"{slug}_{name}"
    partner = admin.create("res.partner", {"name": f"e2e action partner {secrets.token_hex(3)}"})
    async with mcp_client() as client:
        tools = {t.name: t for t in await list_all_tools(client)}
        assert tool_name in tools
        tool = tools[tool_name]
        assert tool.description == "Set the reference of the given partners (values.ref)."
        assert tool.input_schema["required"] == ["ids"]
        assert {"ids", "values", "confirm"} <= set(tool.input_schema["properties"])
        assert tool.annotations.destructive_hint is not False
        # destructive: confirm first
        assert "confirm" in error_of(await client.call_tool(tool_name, {"ids": [partner]}))
        assert not admin.search_read("res.partner", [("id", "=", partner)], ["ref"])[0]["ref"]
        data = data_of(await client.call_tool(tool_name, {"ids": [partner], "values": {"ref": "E2E"},
                                                          "confirm": True}))
        assert data["ids"] == [partner] and data["message"] == "done"
        assert data["records"][0]["id"] == partner
        assert admin.search_read("res.partner", [("id", "=", partner)], ["ref"])[0]["ref"] == "E2E"
        assert "no res.partner record" in error_of(await client.call_tool(tool_name, {"ids": [987654321],
                                                                                      "confirm": True}))
    rows = admin.wait_audit([("tool", "=", name), ("success", "=", True)])
    assert rows[0]["category"] == "actions"
    # a key scoped to other categories does not see it
    async with mcp_client(key=make_key(categories=["orm"])) as client:
        assert tool_name not in {t.name for t in await list_all_tools(client)}
    # a read-only key: refused (the action is not read-only) until the admin marks it read-only
    ro_key = make_key(read_only=True)
    async with mcp_client(key=ro_key) as client:
        assert "read-only" in error_of(await client.call_tool(tool_name, {"ids": [partner], "confirm": True}))
    admin.write("ir.actions.server", [action_id], {"mcp_read_only": True})
    async with mcp_client(key=ro_key) as client:
        tools = {t.name: t for t in await list_all_tools(client)}
        assert tools[tool_name].annotations.read_only_hint is True
        data = data_of(await client.call_tool(tool_name, {"ids": [partner], "values": {"ref": "RO"}}))
        assert data["ids"] == [partner]
    # what a read-only action writes is rolled back
    assert admin.search_read("res.partner", [("id", "=", partner)], ["ref"])[0]["ref"] == "E2E"


async def test_list_changed_when_admin_unticks(mcp_client, slug, admin, action):
    action_id, name = action
    changed = anyio.Event()

    async def on_message(message):
        if getattr(message, "method", None) == "notifications/tools/list_changed" or \
                "tools/list_changed" in repr(message):
            changed.set()

    async with mcp_client(transport="sse", message_handler=on_message) as client:
        assert f"{slug}_{name}" in {t.name for t in await list_all_tools(client)}
        admin.write("ir.actions.server", [action_id], {"mcp_tool": False})
        with anyio.fail_after(15):
            await changed.wait()
        assert f"{slug}_{name}" not in {t.name for t in await list_all_tools(client)}
        assert "no tool named" in error_of(await client.call_tool(f"{slug}_{name}", {"ids": [1], "confirm": True}))
