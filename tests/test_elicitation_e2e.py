"""A human confirms destructive calls, with the official SDK client: elicitation accepted and declined for
`unlink` in a 2025-11-25 session (Streamable HTTP and legacy SSE) and in 2026-07-28 mode (InputRequiredResult);
a key that requires a human confirmation; a client that cannot elicit gets a pending approval, approved in the
backend, after which the same call runs once; MissingRequiredClientCapability for an answer without the
capability. Runs threaded and prefork (--odoo-mode=prefork: the client's answer lands on another worker than
the waiting call)."""

from __future__ import annotations

import secrets

import pytest
from mcp_helpers import MODERN, TRANSPORT_IDS, TRANSPORTS, answering, modern_request, parse_body, text_of
from mcp_types import ElicitResult

pytestmark = pytest.mark.anyio

FIELDS = ["status", "refusal_reason", "confirmation", "tool", "transport", "protocol_version", "error_message"]


def partner(admin, label):
    return admin.create("res.partner", {"name": f"E2E elicit {label} {secrets.token_hex(3)}"})


def exists(admin, pid):
    return bool(admin.search_read("res.partner", [("id", "=", pid)], ["id"]))


def audit_row(admin, key, predicate, timeout=15):
    """The newest unlink audit row of ``key`` that satisfies ``predicate`` (polled: rows complete at commit)."""
    return admin.wait_audit([("key_id", "=", key.id), ("tool", "=", "unlink")], predicate, timeout, fields=FIELDS)[0]


@pytest.mark.parametrize("action", ["accept", "decline"])
@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_unlink_asks_the_human(mcp_client, admin, make_key, slug, transport, mode, action):
    key = make_key()
    pid = partner(admin, action)
    seen = []
    async with mcp_client(transport=transport, mode=mode, key=key,
                          elicitation_callback=answering(action, seen)) as client:
        result = await client.call_tool(f"{slug}_unlink", {"model": "res.partner", "ids": [pid]})
    assert len(seen) == 1, seen
    form = seen[0]
    assert form.requested_schema["properties"]["confirm"]["type"] == "boolean"
    assert f"{slug}_unlink" in form.message and str(pid) in form.message
    if action == "accept":
        assert not result.is_error, text_of(result)
        assert not exists(admin, pid)
        row = audit_row(admin, key, lambda r: r["status"] == "success")
        assert row["confirmation"] == "accepted (elicitation)"
    else:
        assert result.is_error and "declined" in text_of(result) and "nothing was done" in text_of(result)
        assert exists(admin, pid)
        row = audit_row(admin, key, lambda r: r["status"] == "refused")
        assert (row["refusal_reason"], row["confirmation"]) == ("confirmation_declined", "decline (elicitation)")
    expected_version = MODERN if mode == MODERN else "2025-11-25"
    assert row["protocol_version"] == expected_version


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_confirm_true_without_setting_does_not_ask(mcp_client, admin, make_key, slug, transport, mode):
    key = make_key()
    pid = partner(admin, "confirmed")
    seen = []
    async with mcp_client(transport=transport, mode=mode, key=key,
                          elicitation_callback=answering("decline", seen)) as client:
        result = await client.call_tool(f"{slug}_unlink", {"model": "res.partner", "ids": [pid], "confirm": True})
    assert not result.is_error, text_of(result)
    assert seen == [] and not exists(admin, pid)


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_key_requiring_a_human_asks_even_with_confirm(mcp_client, admin, make_key, slug, transport, mode):
    key = make_key(human_confirmation=True)
    pid = partner(admin, "human")
    seen = []
    async with mcp_client(transport=transport, mode=mode, key=key,
                          elicitation_callback=answering("decline", seen)) as client:
        result = await client.call_tool(f"{slug}_unlink", {"model": "res.partner", "ids": [pid], "confirm": True})
    assert len(seen) == 1
    assert result.is_error and exists(admin, pid)
    assert not admin.search_read("ocore.mcp.approval", [("key_id", "=", key.id)], ["id"])


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_pending_approval_for_a_client_that_cannot_elicit(mcp_client, admin, make_key, slug, transport, mode):
    key = make_key(human_confirmation=True)
    pid = partner(admin, "approval")
    args = {"model": "res.partner", "ids": [pid], "confirm": True}
    async with mcp_client(transport=transport, mode=mode, key=key) as client:
        first = await client.call_tool(f"{slug}_unlink", args)
        approvals = admin.search_read("ocore.mcp.approval", [("key_id", "=", key.id)], ["state", "tool_name"])
        assert len(approvals) == 1 and approvals[0]["state"] == "pending"
        assert first.is_error and f"approval #{approvals[0]['id']}" in text_of(first)
        assert exists(admin, pid)
        admin.call("ocore.mcp.approval", "action_approve", [approvals[0]["id"]])
        second = await client.call_tool(f"{slug}_unlink", args)
    assert not second.is_error, text_of(second)
    assert not exists(admin, pid)
    state = admin.search_read("ocore.mcp.approval", [("id", "=", approvals[0]["id"])], ["state"])[0]["state"]
    assert state == "executed"
    row = audit_row(admin, key, lambda r: r["status"] == "success")
    assert row["confirmation"] == f"approval #{approvals[0]['id']}"


def test_answer_without_capability_is_refused_400(raw, make_key, slug, admin):
    key = make_key()
    pid = partner(admin, "capability")
    params = {"name": f"{slug}_unlink", "arguments": {"model": "res.partner", "ids": [pid]}}
    capable = {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}}}
    body, headers = modern_request("tools/call", {**params, "_meta": capable})
    first = parse_body(raw.post("/ocore/mcp/stream", body, key=key, headers=headers))
    assert first["result"]["resultType"] == "input_required", first
    state = first["result"]["requestState"]
    answer = {"confirm": {"action": "accept", "content": {"confirm": True}}}
    body, headers = modern_request("tools/call", {**params, "inputResponses": answer, "requestState": state}, id=2)
    resp = raw.post("/ocore/mcp/stream", body, key=key, headers=headers)
    assert resp.status_code == 400, resp.text
    assert parse_body(resp)["error"]["code"] == -32021
    assert exists(admin, pid)
    # the same answer from a request that declares the capability runs the call
    body, headers = modern_request("tools/call", {**params, "inputResponses": answer, "requestState": state,
                                                  "_meta": capable}, id=3)
    resp = raw.post("/ocore/mcp/stream", body, key=key, headers=headers)
    assert resp.status_code == 200 and not parse_body(resp)["result"]["isError"], resp.text
    assert not exists(admin, pid)


async def test_approval_granted_in_the_backend_browser(odoo, admin, mcp_client, make_key, slug):
    """The key owner sees the pending call in MCP > Approvals in a real browser, approves it with one click;
    the client's same call then runs."""
    from harness import ADMIN_LOGIN, ADMIN_PASSWORD, ARTIFACTS
    from playwright.async_api import async_playwright
    from test_key_ui_e2e import CHROMIUM_ARGS

    key = make_key(human_confirmation=True)
    pid = partner(admin, "browser")
    args = {"model": "res.partner", "ids": [pid], "confirm": True}
    async with mcp_client(key=key) as client:
        first = await client.call_tool(f"{slug}_unlink", args)
        approval = admin.search_read("ocore.mcp.approval", [("key_id", "=", key.id)], ["state"])[0]
        assert first.is_error and f"approval #{approval['id']}" in text_of(first)
        async with async_playwright() as pw:
            chromium = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                args=CHROMIUM_ARGS)
            try:
                page = await (await chromium.new_context(viewport={"width": 1300, "height": 900})).new_page()
                await page.goto(f"{odoo.url}/web/login")
                await page.fill("input[name=login]", ADMIN_LOGIN)
                await page.fill("input[name=password]", ADMIN_PASSWORD)
                async with page.expect_navigation():
                    await page.click("form.oe_login_form button[type=submit]")
                # the key form offers the setting
                await page.goto(f"{odoo.url}/odoo/action-ocore_mcp.action_mcp_key/{key.id}")
                checkbox = page.locator(".o_field_widget[name=human_confirmation] input")
                await checkbox.wait_for()
                assert await checkbox.is_checked()
                # MCP > Approvals: the pending call (default filter), approved with one click
                await page.goto(f"{odoo.url}/odoo/action-ocore_mcp.action_mcp_approval")
                row = page.locator(f".o_data_row:has-text('{slug}_unlink'):has-text('{key.name}')")
                await row.wait_for()
                await row.locator("button[name=action_approve]").click()
                await page.locator(f".o_data_row:has-text('{key.name}') button[name=action_approve]").wait_for(
                    state="detached")
                await page.screenshot(path=str(ARTIFACTS / "approval-approved.png"))
            finally:
                await chromium.close()
        state = admin.search_read("ocore.mcp.approval", [("id", "=", approval["id"])], ["state", "decided_by"])[0]
        assert state["state"] == "approved" and state["decided_by"]
        assert exists(admin, pid)
        second = await client.call_tool(f"{slug}_unlink", args)
    assert not second.is_error, text_of(second)
    assert not exists(admin, pid)


@pytest.mark.parametrize(("transport", "mode"), [("stream", "legacy"), ("sse", "legacy")], ids=["stream", "sse"])
async def test_no_answer_in_time_changes_nothing(mcp_client, admin, make_key, slug, transport, mode):
    import anyio

    key = make_key()
    pid = partner(admin, "late")
    seen = []

    async def late(context, params):
        seen.append(params)
        await anyio.sleep(5)
        return ElicitResult(action="accept", content={"confirm": True})

    admin.call("ir.config_parameter", "set_param", "ocore_mcp.confirmation_timeout", "2")
    try:
        async with mcp_client(transport=transport, mode=mode, key=key, elicitation_callback=late) as client:
            result = await client.call_tool(f"{slug}_unlink", {"model": "res.partner", "ids": [pid]})
            assert result.is_error and "no answer from the user within 2 s" in text_of(result)
            await anyio.sleep(4)  # the late accept reaches a server that no longer waits: nothing runs
    finally:
        admin.call("ir.config_parameter", "set_param", "ocore_mcp.confirmation_timeout", "")
    assert len(seen) == 1 and exists(admin, pid)
    row = audit_row(admin, key, lambda r: r["status"] == "refused")
    assert row["confirmation"] == "timeout (elicitation)"
