"""Monitoring on PostHog end to end: a running Odoo captures real events (a headless Chromium session of
the web client, JSON-RPC and XML-RPC calls, MCP tool calls) into a PostHog-compatible server
(``posthog_server.py``: the events stored in chdb, every query checked with PostHog's HogQL parser), and
the ten ``posthog_*`` tools read them back through the official SDK client."""

from __future__ import annotations

import gzip
import json
import secrets
import socket
import time
import xmlrpc.client

import httpx2
import pytest
from mcp_helpers import data_of, error_of, list_all_tools, text_of
from posthog_server import PosthogServer, feature_flag, survey

pytestmark = pytest.mark.anyio

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TOOLS = ("posthog_dashboard", "posthog_active_users", "posthog_online_users", "posthog_module_usage",
         "posthog_web_vitals", "posthog_errors", "posthog_slow_rpcs", "posthog_sessions",
         "posthog_feature_flags", "posthog_surveys")
PROJECT_ID = 4242
HIDE = """() => {
    Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
    document.dispatchEvent(new Event("visibilitychange"));
}"""


@pytest.fixture(scope="module")
def posthog(admin):
    server = PosthogServer(
        project_api_key=f"phc_e2e{secrets.token_hex(12)}",
        personal_api_key=f"phx_e2e{secrets.token_hex(16)}",
        project_id=PROJECT_ID,
        feature_flags=[feature_flag(1, "new-invoice-flow", "New invoice flow", rollout=25),
                       feature_flag(2, "dark-mode", "Dark mode", active=False, rollout=None),
                       feature_flag(3, "checkout", "Checkout", variants=[("control", 50), ("test", 50)])],
        surveys=[survey("0190b5c2-0000-7000-8000-000000000001", "NPS", start_date="2026-01-01T00:00:00Z"),
                 survey("0190b5c2-0000-7000-8000-000000000002", "Onboarding", survey_type="api"),
                 survey("0190b5c2-0000-7000-8000-000000000003", "Old one", start_date="2025-01-01T00:00:00Z",
                        end_date="2025-02-01T00:00:00Z")],
    ).start()
    with admin.params(posthog_capture="1", posthog_host=server.url, posthog_project_api_key=server.project_api_key,
                      posthog_project_id=str(PROJECT_ID), posthog_personal_api_key=server.personal_api_key,
                      posthog_slow_rpc_ms="1", posthog_flush_interval_ms="1500", posthog_personal_data="0"):
        yield server
    server.stop()


async def call(client, slug, tool, **args):
    return await client.call_tool(f"{slug}_{tool}", args)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def browse(odoo, admin):
    """A real web client session: login, two apps, clicks (interactions for INP), an uncaught error, then
    the page hidden (web vitals and the last batch leave then)."""
    from playwright.async_api import async_playwright

    settings_menu = admin.ref("base.menu_administration")
    mcp_menu = admin.ref("ocore_mcp.menu_mcp_root")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            page = await (await chromium.new_context(viewport={"width": 1200, "height": 900})).new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{odoo.url}/web/login")
            await page.fill("input[name=login]", "admin")
            await page.fill("input[name=password]", "admin")
            async with page.expect_navigation():
                await page.click("form.oe_login_form button[type=submit]")
            await page.goto(f"{odoo.url}/web#menu_id={settings_menu}")
            await page.wait_for_selector(".o_main_navbar .o_menu_brand", timeout=30000)
            await page.wait_for_timeout(1500)
            # a click handler that takes 80 ms: an interaction Event Timing reports (INP), whatever the machine
            await page.evaluate("""() => document.addEventListener("click", () => {
                const start = performance.now(); while (performance.now() - start < 80) {}
            })""")
            for _ in range(3):  # interactions: Event Timing entries for INP
                await page.click(".o_main_navbar .o_menu_brand")
                await page.wait_for_timeout(300)
            # another app: a new page (the previous one reports its vitals and last batch on pagehide)
            await page.goto(f"{odoo.url}/web#menu_id={mcp_menu}")
            await page.wait_for_selector(".o_main_navbar .o_menu_brand", timeout=30000)
            await page.wait_for_timeout(1500)
            await page.click(".o_main_navbar .o_menu_brand")
            await page.evaluate("() => { setTimeout(() => { throw new TypeError('e2e front-end failure'); }, 0); }")
            await page.wait_for_timeout(500)
            await page.evaluate(HIDE)
            await page.wait_for_timeout(1000)
            html = await page.content()
            return {"errors": errors, "html": html}
        finally:
            await chromium.close()


def capture_like_a_client_app(server):
    """What posthog-js and other SDKs of the project send: single events on /e/ and /capture/ (gzip too)."""
    key = server.project_api_key
    with httpx2.Client(base_url=server.url, timeout=10) as http:
        resp = http.post("/e/", json={"api_key": key, "event": "$feature_flag_called", "distinct_id": "web-visitor",
                                      "properties": {"$feature_flag": "new-invoice-flow", "$feature_flag_response": True}})
        assert resp.status_code == 200
        body = gzip.compress(json.dumps({"api_key": key, "batch": [
            {"event": "survey sent", "distinct_id": "web-visitor",
             "properties": {"$survey_id": "0190b5c2-0000-7000-8000-000000000001", "$survey_response": "9"}},
            {"event": "survey sent", "distinct_id": "web-visitor-2",
             "properties": {"$survey_id": "0190b5c2-0000-7000-8000-000000000001", "$survey_response": "10"}},
        ]}).encode())
        resp = http.post("/capture/", content=body, headers={"Content-Type": "application/json",
                                                              "Content-Encoding": "gzip"})
        assert resp.status_code == 200
        assert http.post("/i/v0/e/", json={"api_key": "phc_wrong", "event": "x", "distinct_id": "y"}).status_code == 401
        flags = http.post("/flags/?v=2", json={"api_key": key, "distinct_id": "web-visitor"}).json()
        assert set(flags["flags"]) == {"new-invoice-flow", "checkout"}
        assert flags["flags"]["checkout"]["enabled"] is True
        decide = http.post("/decide/?v=3", json={"api_key": key, "distinct_id": "web-visitor"}).json()
        assert set(decide["featureFlags"]) == {"new-invoice-flow", "checkout"}


@pytest.mark.timeout(420)  # a first web client load builds the asset bundles
async def test_capture_from_odoo_and_read_back_through_the_ten_tools(odoo, admin, slug, posthog, mcp_client):
    # -- capture -----------------------------------------------------------------------------------------
    page = await browse(odoo, admin)
    assert posthog.project_api_key not in page["html"]  # the web client reports through the relay
    assert posthog.personal_api_key not in page["html"]
    with pytest.raises(Exception, match="ocore_no_such_method|does not exist|has no attribute"):
        admin.call("res.partner", "ocore_no_such_method")  # a server-side RPC error
    proxy = xmlrpc.client.ServerProxy(f"{odoo.url}/xmlrpc/2/object", allow_none=True)
    proxy.execute_kw(admin.db, admin.uid, "admin", "res.partner", "search_count", [[]])  # external RPC
    capture_like_a_client_app(posthog)
    async with mcp_client() as client:
        text_of(await call(client, slug, "server_info"))

        def captured(events):
            names = {e["event"] for e in events}
            web_errors = [e for e in events if e["event"] == "$exception"
                          and e["properties"].get("$exception_source") == "web"]
            return {"$pageview", "odoo_module_open", "$web_vitals", "odoo_rpc_timings", "odoo_slow_rpc",
                    "mcp_tool_call"} <= names and web_errors and any(
                e["event"] == "$exception" and e["properties"].get("$exception_source") == "server" for e in events)

        events = posthog.wait_for(captured, timeout=60)
        instance_events = [e for e in events if e["properties"].get("odoo_instance") == slug]
        admin_id = f"{slug}:{admin.uid}"
        assert {e["distinct_id"] for e in instance_events} == {admin_id}
        modules = {e["properties"].get("odoo_module") for e in instance_events if e["event"] == "odoo_module_open"}
        assert {"base", "ocore_mcp"} <= modules
        vitals = [e["properties"] for e in instance_events if e["event"] == "$web_vitals"]
        assert any(v.get("$web_vitals_LCP_value") for v in vitals), vitals
        assert any(v.get("$web_vitals_CLS_value") is not None for v in vitals), vitals
        assert any(v.get("$web_vitals_INP_value") for v in vitals), vitals
        web_error = next(e for e in instance_events if e["event"] == "$exception"
                         and e["properties"]["$exception_source"] == "web")
        assert web_error["properties"]["$exception_type"] == "TypeError"
        assert "$exception_message" not in web_error["properties"]  # no personal data unless enabled
        assert not any("$set" in e["properties"] for e in instance_events)
        slow = {e["properties"].get("odoo_endpoint") for e in instance_events if e["event"] == "odoo_slow_rpc"}
        assert "ir.model.data.search_read" in slow, slow  # the admin helper's JSON-RPC calls (threshold 1 ms)

        # -- the ten tools, through the SDK client ---------------------------------------------------------
        names = {t.name for t in await list_all_tools(client)}
        assert {f"{slug}_{t}" for t in TOOLS} <= names
        results = {}
        for tool in TOOLS:
            result = await call(client, slug, tool, period="1d")
            assert not result.is_error, (tool, text_of(result))
            assert posthog.personal_api_key not in text_of(result)
            results[tool] = data_of(result)

    dash = results["posthog_dashboard"]
    assert dash["dau"] == dash["wau"] == dash["mau"] == 1
    assert dash["sessions"] >= 1 and dash["errors"] >= 2 and 0 < dash["error_rate"] <= 1
    assert {m["module"] for m in dash["top_modules"]} >= {"base", "ocore_mcp"}
    assert dash["web_vitals"]["lcp"]["p75"] > 0 and dash["web_vitals"]["lcp"]["rating"]

    active = results["posthog_active_users"]
    assert active["top_users"][0]["distinct_id"] == f"{slug}:{admin.uid}"
    assert active["top_users"][0]["login"] == "admin"  # resolved in Odoo, not sent to PostHog
    assert active["daily"] and active["daily"][-1]["users"] == 1

    online = results["posthog_online_users"]
    assert online["online"] == 1 and online["users"][0]["user_id"] == admin.uid

    usage = {m["module"]: m for m in results["posthog_module_usage"]["modules"]}
    assert usage["base"]["opens"] >= 1 and usage["ocore_mcp"]["opens"] >= 1
    assert usage["ocore_mcp"]["adoption_rate"] == 1.0

    vit = results["posthog_web_vitals"]
    assert vit["samples"] >= 1 and vit["lcp"]["p75"] > 0 and vit["inp"]["p75"] > 0
    assert vit["cls"]["p75"] is not None and vit["pages"]

    errors = {(t["type"], t["source"]): t for t in results["posthog_errors"]["types"]}
    assert ("TypeError", "web") in errors
    assert any(source == "server" for _type, source in errors)
    assert results["posthog_errors"]["trend"][-1]["errors"] >= 2

    rpcs = results["posthog_slow_rpcs"]
    assert rpcs["slowest"] and all(r["calls"] >= 1 and r["avg_ms"] is not None for r in rpcs["slowest"])
    assert any(r["endpoint"] == "ir.model.data.search_read" for r in rpcs["server_slow"]), rpcs["server_slow"]

    sessions = results["posthog_sessions"]
    assert sessions["sessions"] >= 1 and sessions["avg_duration_seconds"] >= 0
    assert 0 <= sessions["bounce_rate"] <= 1 and sessions["trend"]

    flags = {f["key"]: f for f in results["posthog_feature_flags"]["flags"]}
    assert flags["new-invoice-flow"]["active"] and flags["new-invoice-flow"]["rollout_percentage"] == 25
    assert flags["new-invoice-flow"]["evaluations"] == 1
    assert not flags["dark-mode"]["active"] and flags["dark-mode"]["rollout_percentage"] == 100
    assert [v["key"] for v in flags["checkout"]["variants"]] == ["control", "test"]

    surveys = {s["name"]: s for s in results["posthog_surveys"]["surveys"]}
    assert (surveys["NPS"]["status"], surveys["NPS"]["responses"]) == ("running", 2)
    assert surveys["Onboarding"]["status"] == "draft" and surveys["Onboarding"]["type"] == "api"
    assert surveys["Old one"]["status"] == "completed"

    # every query the tools sent is real HogQL (PostHog's parser) and ran on the stored events
    assert posthog.queries and all(q["error"] is None for q in posthog.queries), posthog.queries
    assert all(q["values"].get("instance") in (None, slug) for q in posthog.queries)

    # the personal API key: in no audit row, in no server log line
    audit = json.dumps(admin.audit([("tool", "like", "posthog_")], limit=200), default=str)
    assert posthog.personal_api_key not in audit
    assert posthog.personal_api_key not in odoo.log_tail(5000)


async def test_posthog_slow_or_down_is_a_clear_error_within_timeout_seconds(admin, slug, posthog, mcp_client):
    async with mcp_client() as client:
        posthog.mode, posthog.slow_seconds = "slow", 20
        try:
            started = time.monotonic()
            text = error_of(await call(client, slug, "posthog_sessions", period="7d", timeout_seconds=3))
            elapsed = time.monotonic() - started
        finally:
            posthog.mode = "up"
        # the 3 s timeout ends the call, far from the 20 s the server takes (margin for a loaded machine)
        assert "did not answer within" in text and elapsed < 9, (elapsed, text)
        with admin.params(posthog_host=f"http://127.0.0.1:{free_port()}"):
            started = time.monotonic()
            text = error_of(await call(client, slug, "posthog_errors", timeout_seconds=3))
            assert "is unreachable" in text and time.monotonic() - started < 4
            # capture on and PostHog down: the web client's RPCs and MCP calls still work
            assert admin.call("res.partner", "search_count", []) >= 1
            assert not (await call(client, slug, "server_info")).is_error
        assert posthog.personal_api_key not in text


async def test_not_configured_says_what_to_set(admin, slug, posthog, mcp_client):
    async with mcp_client() as client:
        with admin.params(posthog_personal_api_key=None, posthog_project_id=None):
            text = error_of(await call(client, slug, "posthog_dashboard"))
    assert "PostHog is not configured" in text and "project id, personal API key" in text


async def test_relay_takes_only_allowlisted_json_from_a_session(odoo, admin, posthog):
    relay = "/ocore/posthog/capture"
    before = len(posthog.events())
    # no session: the login page, nothing stored
    with httpx2.Client(base_url=odoo.url, timeout=10, follow_redirects=False) as anonymous:
        assert anonymous.post(relay, json={"events": []}).status_code in (302, 303, 401, 403)
    # a form post (what a cross-site page can send without a preflight) is refused
    assert admin.http.post(relay, data={"events": "[]"}).status_code == 415
    resp = admin.http.post(relay, json={"events": [
        {"event": "$pageview", "properties": {"$pathname": "/odoo/x", "$current_url": f"{odoo.url}/odoo/x?token=abc",
                                             "distinct_id": "someone-else", "$set": {"email": "x@y"}}},
        {"event": "$identify", "properties": {"$set": {"email": "x@y"}}},
        {"event": "$exception", "properties": {"$exception_type": "Error", "$exception_message": "Jane Doe's data"}},
    ]})
    assert resp.status_code == 204

    def relayed(events):
        return [e for e in events[before:] if e["properties"].get("odoo_source") == "web"
                and (e["properties"].get("$pathname") == "/odoo/x" or e["properties"].get("$exception_type") == "Error")]

    events = relayed(posthog.wait_for(lambda e: len(relayed(e)) >= 2, timeout=20))
    assert sorted(e["event"] for e in events) == ["$exception", "$pageview"]
    for event in events:
        assert event["distinct_id"].endswith(f":{admin.uid}")
        assert "$set" not in event["properties"] and "Jane" not in json.dumps(event)
    view = next(e for e in events if e["event"] == "$pageview")
    assert view["properties"]["$current_url"] == f"{odoo.url}/odoo/x"


@pytest.mark.timeout(900)
async def test_organization_project_through_the_control_plane(odoo_setup):
    """Under a control plane: the organization's PostHog settings (its personal API key write-only) reach an
    enrolled instance without settings of its own over the signed link; the instance captures into the
    organization's project (its events carry its slug), and ``<slug>_posthog_slow_rpcs`` called through the
    control plane with the official SDK client reads them back from that project."""
    from control_fleet import control_fleet
    from mcp_helpers import connect

    org_posthog = PosthogServer(project_api_key=f"phc_org{secrets.token_hex(12)}",
                                personal_api_key=f"phx_org{secrets.token_hex(16)}", project_id=PROJECT_ID + 1).start()
    try:
        with control_fleet(odoo_setup, count=1) as fleet:
            inst = fleet.instances[0]
            cp = fleet.cp_admin
            # the monitoring tools are for system administrators: the member is one on this instance
            inst.admin.write("res.users", [inst.member_uid], {
                inst.admin.user_groups_field(): [(4, inst.admin.ref("base.group_system"))]})
            inst.admin.set_param("ocore_mcp.posthog_slow_rpc_ms", 1)  # the instance's own threshold still applies
            assert not inst.admin.get_param("ocore_mcp.posthog_host")
            cp.write("ocore.control.organization", [fleet.org_id], {
                "posthog_enabled": True, "posthog_host": org_posthog.url,
                "posthog_project_api_key": org_posthog.project_api_key,
                "posthog_project_id": str(org_posthog.project_id),
                "posthog_personal_api_key": org_posthog.personal_api_key})
            status = cp.search_read("ocore.control.instance", [("id", "=", inst.record_id)],
                                    ["posthog_status", "posthog_push_error"])[0]
            assert status["posthog_status"] == "organization", status
            org = cp.search_read("ocore.control.organization", [("id", "=", fleet.org_id)],
                                 ["posthog_personal_api_key", "posthog_personal_api_key_set"])[0]
            assert org["posthog_personal_api_key"] is False and org["posthog_personal_api_key_set"] is True
            # the instance's traffic (JSON-RPC calls: slow at 1 ms) goes to the organization's project
            for _i in range(3):
                inst.admin.search_read("res.partner", [], ["name"], limit=1)
            org_posthog.add_events([("odoo_slow_rpc", "other_instance:2", {
                "odoo_instance": "other_instance", "odoo_endpoint": "other.model.method", "duration_ms": 5,
                "threshold_ms": 1})])  # another instance of the organization, in the same project
            org_posthog.wait_for(lambda events: any(
                e["event"] == "odoo_slow_rpc" and e["properties"].get("odoo_instance") == inst.slug
                and e["properties"].get("odoo_endpoint") == "res.partner.search_read" for e in events), timeout=60)
            key = fleet.key()
            async with connect(fleet.cp.url, key, mode="2026-07-28") as client:
                result = await client.call_tool(f"{inst.slug}_posthog_slow_rpcs", {"period": "1d"})
                data = data_of(result)
            assert data["instance"] == inst.slug, data
            endpoints = {row["endpoint"] for row in data["server_slow"]}
            assert "res.partner.search_read" in endpoints and "other.model.method" not in endpoints, data
            assert org_posthog.queries and all(q["error"] is None for q in org_posthog.queries)
            assert {q["values"].get("instance") for q in org_posthog.queries} == {inst.slug}
            # the organization's personal API key: in no result and no audit row, on either side
            assert org_posthog.personal_api_key not in json.dumps(data)
            for admin in (cp, inst.admin):
                rows = json.dumps(admin.audit([("tool", "like", "posthog_")], limit=50), default=str)
                assert "posthog_slow_rpcs" in rows and org_posthog.personal_api_key not in rows
    finally:
        org_posthog.stop()
