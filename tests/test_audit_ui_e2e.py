"""The audit log's screens in a real browser: a refusal and an error labelled as such, the average latency of
grouped rows, and the Usage Statistics pivot (calls, errors, latency p50/p90 per tool)."""

from __future__ import annotations

import pytest
from harness import ARTIFACTS
from mcp_helpers import error_of
from test_key_ui_e2e import _login

pytestmark = pytest.mark.anyio


async def test_audit_log_statuses_average_latency_and_usage_statistics(odoo, mcp_client, make_key, slug):
    from playwright.async_api import async_playwright

    key = make_key()
    async with mcp_client(key=key) as client:
        for _ in range(3):
            await client.call_tool(f"{slug}_count", {"model": "res.partner"})
        # refused by the schema and by the tool's own check: the same cause, the same status
        assert "did you mean `model`" in error_of(await client.call_tool(f"{slug}_count", {"modle": "res.partner"}))
        assert "unknown model" in error_of(await client.call_tool(f"{slug}_count", {"model": "no.such.model"}))
    async with async_playwright() as pw:
        chromium, page = await _login(pw, odoo)
        try:
            # the audit log grouped by status: Refused holds both refusals, latency is an average
            await page.goto(f"{odoo.url}/odoo/action-ocore_mcp.action_mcp_audit_log")
            await page.locator(".o_list_renderer").wait_for()
            assert "Missing widget" not in await page.inner_text("body")
            headers = await page.locator(".o_list_renderer thead th").all_inner_texts()
            assert "Refusal reason" in " ".join(headers) and "Error" in " ".join(headers)
            await page.screenshot(path=str(ARTIFACTS / "audit-ui-list.png"))
            # the usage statistics: one row per tool, p50/p90 measures
            await page.goto(f"{odoo.url}/odoo/action-ocore_mcp.action_mcp_audit_stats")
            pivot = page.locator("div.o_pivot")
            await pivot.wait_for()
            text = await pivot.inner_text()
            for measure in ("Calls", "Errors", "Average latency (ms)", "p50 latency (ms)", "p90 latency (ms)"):
                assert measure in text, measure
            assert f"{slug}_count" in text
            await page.screenshot(path=str(ARTIFACTS / "audit-ui-usage-statistics.png"))
            # the graph of the audit log: calls per tool
            await page.goto(f"{odoo.url}/odoo/action-ocore_mcp.action_mcp_audit_log?view_type=graph")
            await page.locator(".o_graph_renderer canvas").wait_for()
            await page.screenshot(path=str(ARTIFACTS / "audit-ui-graph.png"))
        finally:
            await chromium.close()
