"""The control plane end to end: the official MCP SDK talks to the control plane only, which serves and
forwards the tools of two real instances (two databases with ocore_mcp, each on its own Odoo server)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from control_fleet import MEMBER_LOGIN, control_fleet
from mcp_helpers import TRANSPORT_IDS, TRANSPORTS, connect, data_of, error_of, list_all_tools, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def fleet(request, odoo_setup):
    with control_fleet(odoo_setup, keep=request.config.getoption("--keep-db"), oauth=True) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def org_key(fleet):
    return fleet.key()


def client(fleet, key, transport="stream", mode="2026-07-28", query="", **kw):
    return connect(fleet.cp.url, key, transport=transport, mode=mode, query=query, **kw)


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_one_endpoint_serves_both_instances_and_the_platform_tools(fleet, org_key, transport, mode):
    a, b = fleet.instances
    async with client(fleet, org_key, transport, mode) as c:
        listed = [t.name for t in await list_all_tools(c)]
        names = set(listed)
        assert len(listed) == len(names), "each tool once (the instances' own platform tools are not listed)"
        for slug in (a.slug, b.slug):
            assert {f"{slug}_search_read", f"{slug}_count", f"{slug}_list_models"} <= names
        assert {"ocore_list_instances", "ocore_list_servers"} <= names
        assert not any(n.startswith(fleet.cp.slug + "_") for n in names), "the control plane's own db is no instance"
        listed = data_of(await c.call_tool("ocore_list_instances", {}))["instances"]
        assert {(i["slug"], i["status"]) for i in listed} == {(a.slug, "running"), (b.slug, "running")}
        partner = f"only in {a.slug} {secrets.token_hex(3)}"
        a.admin.create("res.partner", {"name": partner})
        domain = [["name", "=", partner]]
        assert data_of(await c.call_tool(f"{a.slug}_count", {"model": "res.partner", "domain": domain}))["count"] == 1
        assert data_of(await c.call_tool(f"{b.slug}_count", {"model": "res.partner", "domain": domain}))["count"] == 0


async def test_a_call_runs_as_the_members_own_user_with_one_correlation_id(fleet, org_key):
    a, _b = fleet.instances
    async with client(fleet, org_key) as c:
        result = await c.call_tool(f"{a.slug}_search_read", {"model": "res.users", "domain": [["login", "=", MEMBER_LOGIN]],
                                                             "fields": ["login"]})
        assert data_of(result)["records"][0]["login"] == MEMBER_LOGIN
        # the instance's untrusted-data marking crosses the hop: structuredContent named, the text in its tags
        marking = (result.meta or {}).get("io.ocore/untrustedData") or {}
        assert "structuredContent" in marking.get("parts", []), result.meta
        assert f"<{marking['boundary']}>" in result.content[0].text
    # the control plane completes its row once the client has the answer: a moment later
    cp_row = fleet.cp_admin.wait_audit([("key_id", "=", org_key.id), ("tool_name", "=", f"{a.slug}_search_read")],
                                       lambda r: r["status"] != "running")[0]
    assert cp_row["status"] == "success" and cp_row["user_id"][0] == fleet.member_uid
    cid = cp_row["request_id"]
    inst_rows = a.admin.audit([("request_id", "=", cid)])
    assert len(inst_rows) == 1, inst_rows
    row = inst_rows[0]
    assert row["tool_name"] == f"{a.slug}_search_read" and row["status"] == "success"
    assert row["user_id"][0] == a.member_uid, "runs as the member's user of that instance, not a shared superuser"


async def test_instances_and_categories_filters(fleet, org_key):
    a, b = fleet.instances
    async with client(fleet, org_key, query=f"?instances={a.slug}") as c:
        names = {t.name for t in await list_all_tools(c)}
        assert f"{a.slug}_search_read" in names and not any(n.startswith(b.slug + "_") for n in names)
        assert "refused" not in text_of(await c.call_tool(f"{a.slug}_count", {"model": "res.partner"}))
        assert "instance filter" in error_of(await c.call_tool(f"{b.slug}_count", {"model": "res.partner"}))
    async with client(fleet, org_key, "stream", "legacy", query="?categories=orm") as c:
        names = {t.name for t in await list_all_tools(c)}
        assert f"{a.slug}_count" in names and f"{b.slug}_count" in names
        assert f"{a.slug}_list_models" not in names and f"{b.slug}_execute_sql" not in names
    async with client(fleet, org_key, "sse", "legacy", query=f"?instances={b.slug}&categories=metadata") as c:
        names = {t.name for t in await list_all_tools(c)}
        assert f"{b.slug}_list_models" in names
        assert not any(n.startswith(a.slug + "_") for n in names) and f"{b.slug}_count" not in names


async def test_an_instance_reports_a_tool_list_change_at_once(fleet, org_key):
    """Switching a tool off on an instance: the instance tells the control plane (a notice signed with its
    own key for the link), which drops that instance's cached lists and tells its open sessions."""
    a, _b = fleet.instances
    changed = anyio.Event()

    async def on_message(message):
        if "tools/list_changed" in repr(message):
            changed.set()

    a.admin.call("ocore.mcp.tool.setting", "action_ocore_open")
    setting = a.admin.search_read("ocore.mcp.tool.setting", [("name", "=", "count")], ["id"])[0]["id"]
    try:
        async with client(fleet, org_key, "sse", "legacy", message_handler=on_message) as c:
            assert f"{a.slug}_count" in {t.name for t in await list_all_tools(c)}  # now cached for 60 s
            a.admin.write("ocore.mcp.tool.setting", [setting], {"enabled": False})
            with anyio.fail_after(20):
                await changed.wait()
            names = {t.name for t in await list_all_tools(c)}
            assert f"{a.slug}_count" not in names, "the instance's list fetched again at once, not after 60 s"
            assert f"{a.slug}_search_read" in names
    finally:
        a.admin.write("ocore.mcp.tool.setting", [setting], {"enabled": True})
    rows = fleet.cp_admin.search_read("ocore.control.instance", [("id", "=", a.record_id)], ["notice_public_key"])
    assert rows[0]["notice_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    # a notice not signed by the instance changes nothing
    resp = httpx2.post(f"{fleet.cp.url}/ocore/control/tools_changed", headers={"Authorization": "Bearer x.y.z"},
                       timeout=30)
    assert resp.status_code == 401


CALLBACK = "http://127.0.0.1:8639/callback"  # never listened on: the code is read from the redirect


def consent_token(fleet):
    """The OAuth flow of the member by raw HTTP: the consent page's organization and instance pickers
    checked, instance a ticked; returns the access token."""
    a, b = fleet.instances
    cp = fleet.cp_admin
    password = secrets.token_urlsafe(12)
    cp.write("res.users", [fleet.member_uid], {"password": password})
    company = cp.search_read("res.users", [("id", "=", fleet.member_uid)], ["company_id"])[0]["company_id"][0]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    resource = f"{fleet.cp.url}/ocore/mcp/stream"
    with httpx2.Client(base_url=fleet.cp.url, timeout=30, follow_redirects=False) as web:
        registered = web.post("/oauth/register", json={
            "client_name": "fleet e2e client", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"]})
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        page = web.get("/web/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        login = web.post("/web/login", data={"login": MEMBER_LOGIN, "password": password, "csrf_token": csrf,
                                             "redirect": "/web"})
        assert login.status_code == 303 and "/web/login" not in login.headers["location"], login.text[:300]
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "state": "fleet",
                  "code_challenge": challenge, "code_challenge_method": "S256", "scope": "mcp offline_access",
                  "resource": resource}
        consent = web.get("/oauth/authorize", params=params)
        assert consent.status_code == 200, consent.text[:500]
        html = consent.text
        assert re.search(rf'<option value="{fleet.org_id}"[^>]*>Fleet agency</option>', html), html
        for instance in (a, b):
            assert f'name="instance_ids" value="{instance.record_id}"' in html
        assert 'name="instance_scope"' not in html, "the pickers replace the free-text scoping"
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        form = {"csrf_token": csrf, "decision": "approve", "key_mode": "new", "preset": "standard",
                "company_id": company, "organization_id": fleet.org_id, "instance_ids": [a.record_id], **params}
        decided = web.post("/oauth/authorize", data=form)
        assert decided.status_code in (302, 303), decided.text[:500]
        code = parse_qs(urlsplit(decided.headers["location"]).query)["code"][0]
        token = web.post("/oauth/token", data={"client_id": client_id, "grant_type": "authorization_code",
                                               "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier,
                                               "resource": resource})
        assert token.status_code == 200, token.text
        access = token.json()["access_token"]
    keys = cp.search_read("ocore.mcp.key", [("user_id", "=", fleet.member_uid), ("origin", "=", "oauth")],
                          ["organization_id", "instance_ids", "instance_scope"], order="id desc", limit=1)
    assert keys[0]["organization_id"][0] == fleet.org_id and keys[0]["instance_ids"] == [a.record_id]
    assert keys[0]["instance_scope"] == a.slug
    return access


async def test_oauth_consent_picks_the_organization_and_the_instances(fleet):
    """OAuth on the control plane: the consent lists the member's organizations and their instances as
    checkboxes; the key behind the token reaches only the instance ticked."""
    a, b = fleet.instances
    access = consent_token(fleet)
    async with client(fleet, access) as c:
        names = {t.name for t in await list_all_tools(c)}
        assert f"{a.slug}_count" in names and not any(n.startswith(b.slug + "_") for n in names)
        assert data_of(await c.call_tool(f"{a.slug}_count", {"model": "res.partner"}))["count"] >= 1
        assert "not scoped to instance" in error_of(await c.call_tool(f"{b.slug}_count", {"model": "res.partner"}))


async def test_instance_scoping_scopes_and_kill_switch(fleet):
    a, b = fleet.instances
    scoped = fleet.key(instance_ids=[(6, 0, [a.record_id])], read_only=True)
    async with client(fleet, scoped) as c:
        names = {t.name for t in await list_all_tools(c)}
        assert f"{a.slug}_count" in names and not any(n.startswith(b.slug + "_") for n in names)
        assert [i["slug"] for i in data_of(await c.call_tool("ocore_list_instances", {}))["instances"]] == [a.slug]
        assert "not scoped to instance" in error_of(await c.call_tool(f"{b.slug}_count", {"model": "res.partner"}))
        text = error_of(await c.call_tool(f"{a.slug}_create", {"model": "res.partner", "values": {"name": "x"}}))
        assert "write operations blocked" in text
    key = fleet.key()
    fleet.cp_admin.write("ocore.control.organization", [fleet.org_id], {"mcp_enabled": False})
    try:
        async with client(fleet, key) as c:
            assert "kill switch" in error_of(await c.call_tool(f"{a.slug}_count", {"model": "res.partner"}))
            with pytest.raises(Exception, match="kill switch"):
                await c.list_tools()
    finally:
        fleet.cp_admin.write("ocore.control.organization", [fleet.org_id], {"mcp_enabled": True})
    async with client(fleet, key) as c:
        assert data_of(await c.call_tool(f"{a.slug}_count", {"model": "res.partner"}))["count"] >= 1


async def test_the_instance_can_refuse_the_control_plane(fleet):
    _a, b = fleet.instances
    key = fleet.key()
    link_ids = b.admin.call("ocore.mcp.control.link", "search", [("state", "=", "enrolled")])
    b.admin.call("ocore.mcp.control.link", "action_refuse", link_ids)
    try:
        async with client(fleet, key) as c:
            text = error_of(await c.call_tool(f"{b.slug}_count", {"model": "res.partner"}))
            assert "refused" in text
    finally:
        # the refused link stays refused: a new enrolment (new token, new key generation)
        token_link = b.admin.create("ocore.mcp.control.link", {"name": "again"})
        token = b.admin.call("ocore.mcp.control.link", "action_generate_token", [token_link])
        wizard = fleet.cp_admin.create("ocore.control.enrol", {"instance_id": b.record_id, "url": b.server.url,
                                                               "token": token})
        fleet.cp_admin.call("ocore.control.enrol", "action_enrol", [wizard])
    async with client(fleet, key) as c:
        assert data_of(await c.call_tool(f"{b.slug}_count", {"model": "res.partner"}))["count"] >= 1


async def test_a_stopped_instance_drops_out_and_comes_back(fleet, org_key):
    a, b = fleet.instances
    b.server.stop()
    try:
        async with client(fleet, org_key) as c:
            started = time.monotonic()
            text = error_of(await c.call_tool(f"{b.slug}_count", {"model": "res.partner"}))
            assert "unavailable" in text
            names = {t.name for t in await list_all_tools(c)}
            assert f"{a.slug}_count" in names and not any(n.startswith(b.slug + "_") for n in names)
            assert time.monotonic() - started < 20
            rows = {i["slug"]: i for i in data_of(await c.call_tool("ocore_list_instances", {}))["instances"]}
            assert rows[b.slug]["status"] == "unreachable" and rows[b.slug]["last_error"]
            assert data_of(await c.call_tool(f"{a.slug}_count", {"model": "res.partner"}))["count"] >= 1
    finally:
        b.server.start()
    time.sleep(1.5)  # past the retry delay of a failed instance (ocore_control.retry_seconds = 1)
    async with client(fleet, org_key) as c:
        names = {t.name for t in await list_all_tools(c)}
        assert f"{b.slug}_count" in names
        rows = {i["slug"]: i for i in data_of(await c.call_tool("ocore_list_instances", {}))["instances"]}
        assert rows[b.slug]["status"] == "running"


async def test_rotate_then_revoke_the_credential_in_one_action(fleet):
    a, _b = fleet.instances
    key = fleet.key()
    cp = fleet.cp_admin
    before = cp.search_read("ocore.control.instance", [("id", "=", a.record_id)], ["credential_fingerprint"])[0]
    cp.call("ocore.control.instance", "action_rotate_credential", [a.record_id])
    after = cp.search_read("ocore.control.instance", [("id", "=", a.record_id)], ["credential_fingerprint"])[0]
    assert after["credential_fingerprint"] != before["credential_fingerprint"]
    kid = a.admin.search_read("ocore.mcp.control.link", [("state", "=", "enrolled")], ["kid"])[0]["kid"]
    assert kid.endswith("-2"), kid
    async with client(fleet, key) as c:
        assert data_of(await c.call_tool(f"{a.slug}_count", {"model": "res.partner"}))["count"] >= 1
    cp.call("ocore.control.instance", "action_revoke_credential", [a.record_id])
    assert a.admin.search_read("ocore.mcp.control.link", [("kid", "=", kid)], ["state"])[0]["state"] == "refused"
    async with client(fleet, key) as c:
        assert not any(t.name.startswith(a.slug + "_") for t in await list_all_tools(c))
        assert "no active credential" in error_of(await c.call_tool(f"{a.slug}_count", {"model": "res.partner"}))


# -- an instance managed by a host agent --------------------------------------------------------


@pytest.fixture(scope="module")
def managed(fleet, odoo_setup):
    """Instance b, now run by a host agent that the control plane drives (its server record holds the
    agent's URL; the secret comes from the server's 'Generate agent secret')."""
    from agent_helpers import AgentProcess, odoo_instance

    _a, b = fleet.instances
    cp = fleet.cp_admin
    server_id = cp.create("ocore.control.server", {"name": "host-1", "organization_id": fleet.org_id,
                                                   "host": "127.0.0.1"})
    action = cp.call("ocore.control.server", "action_generate_agent_secret", [server_id])
    secret = action["context"]["default_secret"]  # shown once from the action, stored nowhere
    assert not cp.search_read("ir.model", [("model", "=", "ocore.control.secret.show"), ("transient", "=", True)])
    b.server.stop()
    agent = AgentProcess(odoo_setup, [odoo_instance(odoo_setup, "b", b.server.db, b.server.port)],
                         control_plane_url=fleet.cp.url, server_id=server_id, secret=secret)
    agent.start()
    try:
        cp.write("ocore.control.server", [server_id], {"agent_url": agent.url})
        cp.write("ocore.control.instance", [b.record_id], {"server_id": server_id, "agent_name": "b"})
        cp.call("ocore.control.instance", "action_start", [b.record_id])
        agent.server_id = server_id
        yield agent
    finally:
        agent.call("POST", "/v1/instances/b/stop")
        agent.stop()


async def test_heartbeats_and_start_stop_from_the_control_plane(fleet, managed):
    _a, b = fleet.instances
    cp = fleet.cp_admin
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        server = cp.search_read("ocore.control.server", [("id", "=", managed.server_id)],
                                ["status", "last_heartbeat", "disk_free_gb"])[0]
        if server["last_heartbeat"]:
            break
        time.sleep(0.5)
    assert server["status"] == "online" and server["last_heartbeat"] and server["disk_free_gb"] > 0
    key = fleet.key()
    cp.call("ocore.control.instance", "action_stop", [b.record_id])
    async with client(fleet, key) as c:
        assert not any(t.name.startswith(b.slug + "_") for t in await list_all_tools(c))
        rows = {i["slug"]: i for i in data_of(await c.call_tool("ocore_list_instances", {}))["instances"]}
        assert rows[b.slug]["status"] == "stopped" and rows[b.slug]["server"] == "host-1"
        servers = data_of(await c.call_tool("ocore_list_servers", {}))["servers"]
        assert [s["name"] for s in servers] == ["host-1"] and servers[0]["status"] == "online"
    cp.call("ocore.control.instance", "action_start", [b.record_id])
    async with client(fleet, key) as c:
        assert f"{b.slug}_count" in {t.name for t in await list_all_tools(c)}


async def test_logs_backup_and_restore_through_the_agent(fleet, managed):
    _a, b = fleet.instances
    key = fleet.key()
    admin = b.admin.__class__(b.server.url, b.server.db)  # a new session: the server was restarted
    admin.create("res.partner", {"name": "saved in the backup"})
    async with client(fleet, key, read_timeout_seconds=600) as c:
        logs = data_of(await c.call_tool(f"{b.slug}_odoo_logs", {"lines": 5}))
        assert 0 < len(logs["lines"]) <= 5 and logs["agent"] == "host-1"
        grep = data_of(await c.call_tool(f"{b.slug}_odoo_logs", {"lines": 20, "filter": "odoo.service.server"}))
        assert grep["lines"] and all("odoo.service.server" in line for line in grep["lines"])
        backup = data_of(await c.call_tool(f"{b.slug}_backup_database", {}))
        assert backup["name"].endswith(".dump") and backup["size"] > 0
        admin.create("res.partner", {"name": "written after the backup"})
        refused = error_of(await c.call_tool(f"{b.slug}_restore_database", {"backup": backup["name"]}))
        assert "confirm" in refused
        restored = data_of(await c.call_tool(f"{b.slug}_restore_database",
                                             {"backup": backup["name"], "confirm": True, "timeout_seconds": 120}))
        assert restored["restored"] and restored["restarted"] and restored["snapshot"].endswith("-pre-restore.dump")
        names = [row["name"] for row in data_of(await c.call_tool(f"{b.slug}_list_backups", {}))["backups"]]
        assert backup["name"] in names and restored["snapshot"] in names
        for name, expected in (("saved in the backup", 1), ("written after the backup", 0)):
            result = await c.call_tool(f"{b.slug}_count", {"model": "res.partner", "domain": [["name", "=", name]]})
            assert data_of(result)["count"] == expected, name
    rows = fleet.cp_admin.audit([("tool_name", "=", f"{b.slug}_restore_database")], limit=2)
    assert [r["status"] for r in rows] == ["success", "refused"]


def test_forged_stale_or_replayed_heartbeats_and_enrolments_are_refused(fleet, managed):
    """The control plane's heartbeat endpoint checks the agent's signature like the agent checks the
    control plane's; an instance's enrolment endpoint takes only a valid one-time token."""
    import json as _json

    import httpx2
    from agent_helpers import signing

    path = "/ocore/control/heartbeat"
    body = _json.dumps({"load": 99.0, "disk": {"total": 1, "free": 1}, "instances": []}).encode()
    server = str(managed.server_id)
    cases = [
        ("wrong secret", signing.sign("0" * 64, "POST", path, body)),
        ("stale", signing.sign(managed.secret, "POST", path, body, timestamp=int(time.time()) - 600)),
        ("other body", signing.sign(managed.secret, "POST", path, b"{}")),
        ("unsigned", {}),
    ]
    replayed = signing.sign(managed.secret, "POST", path, body)
    with httpx2.Client(base_url=fleet.cp.url, timeout=30) as http:
        for label, headers in cases:
            resp = http.post(path, content=body, headers={**headers, signing.HEADER_SERVER: server,
                                                          "Content-Type": "application/json"})
            assert resp.status_code == 401, (label, resp.text)
        forged = fleet.cp_admin.search_read("ocore.control.server", [("id", "=", managed.server_id)],
                                            ["load_average"])[0]
        assert forged["load_average"] != 99.0, "a refused heartbeat changed nothing"
        first = http.post(path, content=body, headers={**replayed, signing.HEADER_SERVER: server})
        again = http.post(path, content=body, headers={**replayed, signing.HEADER_SERVER: server})
        assert first.status_code == 200 and again.status_code == 401 and "replayed" in again.text
        _a, b = fleet.instances
        for token in ("ocore_enrol_" + "x" * 43, "not a token", ""):
            resp = http.post(b.server.url + "/ocore/control/enrol", json={
                "token": token, "issuer": "evil", "kid": "ocore-control-evil-1-1", "public_key": "x"})
            assert resp.status_code == 403, resp.text
