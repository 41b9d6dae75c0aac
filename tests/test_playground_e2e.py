"""MCP > Playground in a real browser (headless Chromium): pick a tool, fill the form generated from its
input schema, run it, see the result; the call is audited with the transport "playground", and the curl
line it shows, with a real key put in place of the placeholder, gives the same answer."""

from __future__ import annotations

import json
import secrets
import shlex

import httpx2
import pytest
from harness import ADMIN_LOGIN, ADMIN_PASSWORD, ARTIFACTS, odoo_series

pytestmark = pytest.mark.anyio
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ACTION_CODE = """
for record in records:
    record.write({"ref": "playground"})
"""


def playground_url(odoo):
    if float(odoo_series()) >= 18:
        return f"{odoo.url}/odoo/action-ocore_mcp.action_mcp_playground"
    return f"{odoo.url}/web#action=ocore_mcp.action_mcp_playground"


async def output(page, tab):
    """The output pane once the tab is shown (the component renders on the next frame)."""
    await page.click(f".o_ocore_pg_tab_{tab}")
    await page.locator(f".o_ocore_pg_tab_{tab}.active").wait_for()
    assert await page.locator(".o_ocore_playground .nav-link.active").count() == 1
    return await page.locator(".o_ocore_pg_output").inner_text()


def replay(curl, secret):
    """Send the request of the playground's curl line, with the key in place of its placeholder."""
    words = shlex.split(curl)
    assert words[:4] == ["curl", "-sS", "-X", "POST"]
    headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
    assert headers.pop("Authorization") == "Bearer <YOUR_MCP_API_KEY>"
    body = words[words.index("--data-raw") + 1]
    reply = httpx2.post(words[4], headers={**headers, "Authorization": f"Bearer {secret}"}, content=body, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_playground_runs_a_tool(odoo, admin, admin_key, slug):
    from playwright.async_api import async_playwright

    ref = f"pg-{secrets.token_hex(3)}"
    partner = admin.create("res.partner", {"name": f"Playground {ref}", "is_company": True})
    model_id = admin.search_read("ir.model", [("model", "=", "res.partner")], ["id"])[0]["id"]
    tool_name = f"pg_tag_{secrets.token_hex(3)}"
    action_id = admin.create("ir.actions.server", {
        "name": "Playground tag", "model_id": model_id, "state": "code", "code": ACTION_CODE,
        "mcp_tool": True, "mcp_tool_name": tool_name})
    try:
        async with async_playwright() as pw:
            chromium = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            try:
                page = await (await chromium.new_context(viewport={"width": 1400, "height": 1000})).new_page()
                console = []
                page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
                await page.goto(f"{odoo.url}/web/login")
                await page.fill("input[name=login]", ADMIN_LOGIN)
                await page.fill("input[name=password]", ADMIN_PASSWORD)
                async with page.expect_navigation():
                    await page.click("form.oe_login_form button[type=submit]")
                await page.goto(playground_url(odoo))
                try:
                    await page.locator(f".o_ocore_pg_key option[value='{admin_key.id}']").wait_for(state="attached")
                except Exception:
                    await page.screenshot(path=str(ARTIFACTS / "playground-failed.png"))
                    raise AssertionError("the playground did not load: " + "\n".join(console)) from None
                await page.select_option(".o_ocore_pg_key", str(admin_key.id))
                await page.locator(f".o_ocore_pg_tool option[value='{slug}_search_read']").wait_for(state="attached")
                # a built-in tool: string, JSON and integer fields
                await page.fill(".o_ocore_pg_filter", "search_re")
                await page.select_option(".o_ocore_pg_tool", f"{slug}_search_read")
                assert "*" in await page.locator("[data-field=model] label").inner_text()  # required
                await page.fill("#ocore_pg_f_model", "res.partner")
                await page.fill("#ocore_pg_f_domain", json.dumps([["ref", "=", ref]]))
                await page.fill("#ocore_pg_f_limit", "5")
                await page.click(".o_ocore_pg_run")
                await page.locator(".o_ocore_pg_status").wait_for()
                assert await page.locator(".o_ocore_pg_status").inner_text() == "Success"
                assert "ms" in await page.locator(".o_ocore_pg_elapsed").inner_text()
                data = json.loads(await output(page, "json"))
                assert data["total"] == 0  # nothing has the ref yet
                # the admin-defined tool: an array of ids (JSON) and the confirm checkbox
                await page.fill(".o_ocore_pg_filter", "")
                await page.select_option(".o_ocore_pg_tool", f"{slug}_{tool_name}")
                await page.fill("#ocore_pg_f_ids", json.dumps([partner]))
                await page.click(".o_ocore_pg_run")
                await page.locator(".o_ocore_pg_status:has-text('Error')").wait_for()
                assert "confirm" in await output(page, "text")
                await page.check("#ocore_pg_f_confirm")
                await page.click(".o_ocore_pg_run")
                await page.locator(".o_ocore_pg_status:has-text('Success')").wait_for()
                data = json.loads(await output(page, "json"))
                assert data["ids"] == [partner] and data["message"] == "done"
                request = json.loads(await output(page, "request"))
                assert request["method"] == "tools/call"
                assert request["params"]["arguments"] == {"ids": [partner], "confirm": True}
                curl = await output(page, "curl")
                # a prompt: its arguments as a form too
                await page.click(".o_ocore_pg_mode_prompts")
                try:
                    await page.locator(".o_ocore_pg_tool option[value='explain_model']").wait_for(state="attached")
                except Exception:
                    await page.screenshot(path=str(ARTIFACTS / "playground-failed.png"))
                    raise AssertionError("no prompts: " + "\n".join(console)) from None
                await page.select_option(".o_ocore_pg_tool", "explain_model")
                await page.fill("#ocore_pg_f_model", "res.partner")
                await page.click(".o_ocore_pg_run")
                await page.locator(".o_ocore_pg_status:has-text('Success')").wait_for()
                assert "res.partner" in await output(page, "text")
                assert json.loads(await output(page, "request"))["method"] == "prompts/get"
                await page.mouse.move(0, 0)
                await page.screenshot(path=str(ARTIFACTS / "playground.png"))
            finally:
                await chromium.close()
        assert admin.search_read("res.partner", [("id", "=", partner)], ["ref"])[0]["ref"] == "playground"
        rows = admin.wait_audit([("transport", "=", "playground"), ("tool", "=", tool_name), ("success", "=", True)])
        assert rows[0]["key_id"][0] == admin_key.id and rows[0]["user_id"][0] == admin.ref("base.user_admin")
        assert admin.audit([("transport", "=", "playground"), ("tool", "=", "search_read")])
        assert admin.audit([("transport", "=", "playground"), ("event", "=", "prompt"), ("tool_name", "=", "explain_model")])
        # the curl line is the exact request: replayed with the real key it runs the tool again
        assert admin_key.secret not in curl
        reply = replay(curl, admin_key.secret)
        assert reply["result"]["isError"] is False, reply
        assert reply["result"]["structuredContent"]["ids"] == [partner]
    finally:
        admin.call("ir.actions.server", "unlink", [action_id])
