"""The backend's "Generate secret" button, in a real browser: the new key is shown once in a dialog whose
form is filled from the action (no table keeps it), works, and is in no row of the database afterwards."""

from __future__ import annotations

import hashlib
import secrets

import pytest
from harness import ADMIN_LOGIN, ADMIN_PASSWORD, ARTIFACTS, pg_query

pytestmark = pytest.mark.anyio
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def tables_holding(odoo, text):
    """[table.column] of every text-like column of the database that contains ``text``."""
    columns = pg_query(odoo.setup, odoo.db, """
        SELECT c.table_name, c.column_name FROM information_schema.columns c
          JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
           AND c.data_type IN ('character varying', 'text', 'jsonb', 'json', 'character')""")
    checks = " UNION ALL ".join(
        f"""(SELECT '{table}.{column}' FROM "{table}" WHERE "{column}"::text LIKE %(pattern)s LIMIT 1)"""
        for table, column in columns
    )
    rows = pg_query(odoo.setup, odoo.db, checks, {"pattern": f"%{text}%"})
    return [row[0] for row in rows or []]


async def test_generate_secret_dialog_shows_the_key_once_and_stores_it_nowhere(odoo, admin):
    from playwright.async_api import async_playwright

    name = f"ui key {secrets.token_hex(3)}"
    key_id = admin.create("ocore.mcp.key", {"name": name})
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            page = await (await chromium.new_context(viewport={"width": 1200, "height": 900})).new_page()
            await page.goto(f"{odoo.url}/web/login")
            await page.fill("input[name=login]", ADMIN_LOGIN)
            await page.fill("input[name=password]", ADMIN_PASSWORD)
            async with page.expect_navigation():
                await page.click("form.oe_login_form button[type=submit]")
            await page.goto(f"{odoo.url}/odoo/action-ocore_mcp.action_mcp_key/{key_id}")
            await page.click("button[name=action_generate_secret]:visible")
            field = page.locator(".modal .o_field_widget[name=secret]")
            await field.wait_for()
            secret = (await field.inner_text()).strip()
            config = await page.locator(".modal .o_field_widget.o_ocore_snippet[name=client_config]").inner_text()
            await page.screenshot(path=str(ARTIFACTS / "key-ui-secret-dialog.png"))
            await page.click(".modal button:has-text('Done')")
            await page.locator(".modal").wait_for(state="detached")
        finally:
            await chromium.close()
    assert secret.startswith("ocore_"), secret
    assert f"Bearer {secret}" in config
    rows = pg_query(odoo.setup, odoo.db, "SELECT id FROM ocore_mcp_key WHERE key_hash = %s",
                    (hashlib.sha256(secret.encode()).hexdigest(),))
    assert rows == [(key_id,)]
    assert tables_holding(odoo, secret) == []
    assert tables_holding(odoo, secret[-24:]) == []


async def _login(pw, odoo):
    chromium = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
    page = await (await chromium.new_context(viewport={"width": 1200, "height": 900})).new_page()
    await page.goto(f"{odoo.url}/web/login")
    await page.fill("input[name=login]", ADMIN_LOGIN)
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    async with page.expect_navigation():
        await page.click("form.oe_login_form button[type=submit]")
    return chromium, page


async def test_new_key_in_one_step_with_every_client_snippet(odoo, admin):
    """A new key: no Revoke before it exists, the instance's rate limit instead of a bare 0, and one click
    (Generate secret) saves it and shows the secret with a snippet per client, each with a copy button."""
    from playwright.async_api import async_playwright

    name = f"one step key {secrets.token_hex(3)}"
    async with async_playwright() as pw:
        chromium, page = await _login(pw, odoo)
        try:
            await page.goto(f"{odoo.url}/odoo/action-ocore_mcp.action_mcp_key")
            await page.locator(".o_list_renderer").wait_for()
            assert "Missing widget" not in await page.inner_text("body")
            await page.goto(f"{odoo.url}/odoo/action-ocore_mcp.action_mcp_key/new")
            await page.locator(".o_form_view .o_field_widget[name=name] input").wait_for()
            assert await page.locator("button[name=action_revoke]:visible").count() == 0
            assert "Missing widget" not in await page.inner_text(".o_form_view")
            hint = await page.locator(".o_ocore_rate_default").inner_text()
            assert "instance default (" in hint and "/min)" in hint, hint
            await page.fill(".o_form_view .o_field_widget[name=name] input", name)
            await page.screenshot(path=str(ARTIFACTS / "key-ui-new-key.png"))
            await page.click("button[name=action_generate_secret]:visible")
            field = page.locator(".modal .o_field_widget[name=secret]")
            await field.wait_for()
            secret = (await field.inner_text()).strip()
            assert await page.locator(".modal .o_field_widget[name=secret] button").count() == 1  # copy button
            snippets = {}
            for tab, field_name in (("Claude Desktop", "client_config"), ("Cursor", "cursor_config"),
                                    ("Claude Code / VS Code", "http_config"), ("Local process (stdio)", "stdio_config")):
                await page.click(f".modal .nav-link:has-text('{tab}')")
                widget = page.locator(f".modal .o_field_widget.o_ocore_snippet[name={field_name}]")
                await widget.wait_for()
                copy = page.locator(f".modal .o_field_widget[name={field_name}] button:visible")
                assert await copy.count() == 1, field_name  # its copy button
                snippets[field_name] = await widget.inner_text()
            await page.screenshot(path=str(ARTIFACTS / "key-ui-new-key-secret.png"))
            await page.click(".modal button:has-text('Done')")
            await page.locator(".modal").wait_for(state="detached")
        finally:
            await chromium.close()
    assert secret.startswith("ocore_"), secret
    assert '"type": "sse"' in snippets["client_config"] and "/ocore/mcp/sse" in snippets["client_config"]
    assert '"type": "http"' in snippets["http_config"] and "/ocore/mcp/stream" in snippets["http_config"]
    assert "/ocore/mcp/stream" in snippets["cursor_config"]
    assert "ocore-mcp-stdio" in snippets["stdio_config"]
    assert all(secret in text for text in snippets.values())
    rows = pg_query(odoo.setup, odoo.db, "SELECT name FROM ocore_mcp_key WHERE key_hash = %s",
                    (hashlib.sha256(secret.encode()).hexdigest(),))
    assert rows == [(name,)]
    assert tables_holding(odoo, secret) == []
