"""MCP > Playground in a real browser (headless Chromium): pick a tool, fill the form generated from its
input schema, run it, see the result; the call is audited with the transport "playground", and the curl
line it shows, with a real key put in place of the placeholder, gives the same answer."""

from __future__ import annotations

import base64
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


async def test_playground_reads_a_resource_template(odoo, admin, admin_key, slug):
    """Resources: pick a template, fill its variables (the model completed by completion/complete), read it
    through the pipeline, see the JSON content; an attachment's blob offered as a download with its size."""
    from playwright.async_api import async_playwright

    ref = f"pgres-{secrets.token_hex(3)}"
    name = f"Playground resource {ref}"
    partner = admin.create("res.partner", {"name": name, "ref": ref})
    pdf = b"%PDF-1.4 playground resource\n%%EOF\n"
    attachment = admin.create("ir.attachment", {"name": f"{ref}.pdf", "datas": base64.b64encode(pdf).decode(),
                                                "mimetype": "application/pdf"})
    record_template = "odoo://{model}/{id}{?fields}"
    uri = f"odoo://res.partner/{partner}?fields=name,ref"
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
            await page.locator(f".o_ocore_pg_key option[value='{admin_key.id}']").wait_for(state="attached")
            await page.select_option(".o_ocore_pg_key", str(admin_key.id))
            await page.click(".o_ocore_pg_mode_resources")
            try:
                await page.locator(f".o_ocore_pg_tool option[value='{record_template}']").wait_for(state="attached")
            except Exception:
                await page.screenshot(path=str(ARTIFACTS / "playground-resources-failed.png"))
                raise AssertionError("no resource templates: " + "\n".join(console)) from None
            assert await page.locator(".o_ocore_pg_tool option[value='odoo://instance']").count() == 1  # direct
            await page.select_option(".o_ocore_pg_tool", record_template)
            await page.locator("[data-field=fields]").wait_for()
            assert await page.locator(".o_ocore_pg_uri").inner_text() == record_template
            assert "*" in await page.locator("[data-field=id] label").inner_text()  # a path variable: required
            assert "*" not in await page.locator("[data-field=fields] label").inner_text()  # a query one: optional
            # completion/complete suggests the model as it is typed
            await page.click("#ocore_pg_f_model")
            await page.keyboard.type("res.partn")
            await page.locator(".o_ocore_pg_suggestions_model option[value='res.partner']").wait_for(state="attached")
            await page.fill("#ocore_pg_f_model", "res.partner")
            await page.fill("#ocore_pg_f_id", str(partner))
            await page.fill("#ocore_pg_f_fields", "name,ref")
            await page.click(".o_ocore_pg_run")
            await page.locator(".o_ocore_pg_status").wait_for()
            assert await page.locator(".o_ocore_pg_status").inner_text() == "Success", await output(page, "text")
            assert await page.locator(".o_ocore_pg_content[data-kind=json] .o_ocore_pg_mime").inner_text() == \
                "application/json"
            data = json.loads(await output(page, "json"))
            assert (data["name"], data["ref"]) == (name, ref)
            request = json.loads(await output(page, "request"))
            assert request["method"] == "resources/read" and request["params"]["uri"] == uri
            curl = await output(page, "curl")
            # a missing record: the pipeline's error
            await page.fill("#ocore_pg_f_id", "999999999")
            await page.click(".o_ocore_pg_run")
            await page.locator(".o_ocore_pg_status:has-text('Error')").wait_for()
            assert "not found" in (await output(page, "text")).lower()
            # a blob: its MIME type, size and a download link
            await page.select_option(".o_ocore_pg_tool", "odoo://ir.attachment/{id}/content")
            await page.locator(".o_ocore_pg_uri:has-text('odoo://ir.attachment/{id}/content')").wait_for()
            await page.locator("[data-field=fields]").wait_for(state="detached")  # the form of this template
            await page.fill("#ocore_pg_f_id", str(attachment))
            await page.click(".o_ocore_pg_run")
            try:
                await page.locator(".o_ocore_pg_content[data-kind=blob]").wait_for()
            except Exception:
                await page.screenshot(path=str(ARTIFACTS / "playground-resources-failed.png"))
                raise AssertionError("no blob: " + await page.locator(".o_ocore_playground").inner_text()) from None
            assert await page.locator(".o_ocore_pg_content .o_ocore_pg_mime").inner_text() == "application/pdf"
            assert await page.locator(".o_ocore_pg_content .o_ocore_pg_size").inner_text() == f"{len(pdf)} bytes"
            link = page.locator(".o_ocore_pg_download")
            assert (await link.get_attribute("download")).endswith(".pdf")
            href = await link.get_attribute("href")
            assert href.startswith("data:application/pdf;base64,")
            assert base64.b64decode(href.split(",", 1)[1]) == pdf
            await page.mouse.move(0, 0)
            await page.screenshot(path=str(ARTIFACTS / "playground-resources.png"))
        finally:
            await chromium.close()
    rows = admin.wait_audit([("transport", "=", "playground"), ("event", "=", "resource"), ("tool_name", "=", uri)])
    assert rows[0]["success"] and rows[0]["key_id"][0] == admin_key.id
    assert admin.audit([("transport", "=", "playground"), ("event", "=", "resource"),
                        ("tool_name", "=", f"odoo://ir.attachment/{attachment}/content"), ("success", "=", True)])
    # the curl line is the exact request: replayed with the real key it reads the same record
    reply = replay(curl, admin_key.secret)
    content = reply["result"]["contents"][0]
    assert content["uri"] == uri and json.loads(content["text"])["ref"] == ref
