"""System tools end to end (users, parameters, scheduled actions, caches, logs, backup and restore)
through the official SDK client against a real server."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import tempfile
import time
import xmlrpc.client

import httpx2
import pytest
from harness import pg_query
from mcp_helpers import STREAM_PATH, data_of, error_of, initialize_msg, list_all_tools, text_of

pytestmark = pytest.mark.anyio

SYSTEM_TOOLS = {
    "list_users", "user_groups", "set_user_active", "set_user_password", "set_user_groups", "impersonate_user",
    "user_access_rights", "get_system_parameter", "set_system_parameter", "list_scheduled_actions",
    "toggle_scheduled_action", "run_scheduled_action", "clear_system_cache", "server_info", "odoo_logs",
    "backup_database", "list_backups", "restore_database",
}


async def call(client, slug, tool, **args):
    return await client.call_tool(f"{slug}_{tool}", args)


@pytest.fixture(scope="module")
def employee(admin):
    login = f"sys_e2e_emp_{secrets.token_hex(3)}"
    uid = admin.create_user(login)
    return {"id": uid, "login": login, "key": admin.create_key(name="system e2e employee", user_id=uid)}


@pytest.fixture(scope="module")
def target(admin):
    login = f"sys_e2e_target_{secrets.token_hex(3)}"
    return {"id": admin.create_user(login, groups=()), "login": login}


# -- access ----------------------------------------------------------------------------------------


async def test_system_tools_are_offered_to_administrators_only(mcp_client, slug, employee):
    async with mcp_client() as client:
        names = {t.name for t in await list_all_tools(client)}
        assert {f"{slug}_{t}" for t in SYSTEM_TOOLS} <= names
    async with mcp_client(key=employee["key"]) as client:
        names = {t.name for t in await list_all_tools(client)}
        assert not {f"{slug}_{t}" for t in SYSTEM_TOOLS} & names
        assert "only offered to system administrators" in error_of(await call(client, slug, "list_users"))


async def test_write_tools_follow_the_production_guard(mcp_client, slug, admin, target):
    async with mcp_client() as client:
        with admin.params(write_enabled="0"):
            text = error_of(await call(client, slug, "set_user_active", user_id=target["id"], active=False))
        assert "production guard" in text
    assert admin.search_read("res.users", [("id", "=", target["id"])], ["active"])[0]["active"] is True


# -- users -----------------------------------------------------------------------------------------


async def test_user_tools(mcp_client, slug, admin, target):
    async with mcp_client() as client:
        found = data_of(await call(client, slug, "list_users", search=target["login"]))
        assert [u["id"] for u in found["users"]] == [target["id"]]
        groups = data_of(await call(client, slug, "user_groups", user_id=target["id"]))
        assert "base.group_user" in {g["xml_id"] for g in groups["groups"]}

        data_of(await call(client, slug, "set_user_groups", user_id=target["id"],
                           groups=["base.group_user", "base.group_partner_manager"]))
        manager = admin.ref("base.group_partner_manager")
        assert manager in admin.search_read("res.users", [("id", "=", target["id"])], ["groups_id"])[0]["groups_id"]
        rights = data_of(await call(client, slug, "user_access_rights", user_id=target["id"], model="res.partner",
                                    detail=True))
        assert rights["can_create"] is True and rights["acls"]

        data_of(await call(client, slug, "set_user_password", user_id=target["id"], password="E2e-pass-123"))
        common = xmlrpc.client.ServerProxy(f"{admin.url}/xmlrpc/2/common")
        assert common.authenticate(admin.db, target["login"], "E2e-pass-123", {}) == target["id"]
        assert "at least 8 characters" in error_of(await call(client, slug, "set_user_password",
                                                              user_id=target["id"], password="short"))

        data_of(await call(client, slug, "set_user_active", user_id=target["id"], active=False))
        assert not common.authenticate(admin.db, target["login"], "E2e-pass-123", {})
        data_of(await call(client, slug, "set_user_active", user_id=target["id"], active=True))

        for xmlid in ("base.user_admin", "base.public_user", "base.user_root"):
            text = error_of(await call(client, slug, "set_user_active", user_id=admin.ref(xmlid), active=False))
            assert "protected system user" in text
        text = error_of(await call(client, slug, "set_user_password", user_id=admin.ref("base.user_admin"),
                                   password="Another-pass-1"))
        assert "protected system user" in text
        assert "is not a security group" in error_of(await call(client, slug, "set_user_groups", user_id=target["id"],
                                                                groups=["base.no_such_group"]))
        assert "unknown model" in error_of(await call(client, slug, "user_access_rights", user_id=target["id"],
                                                      model="no.such.model"))
    audit = admin.audit([("tool", "=", "set_user_password")], limit=2)
    assert audit and all("E2e-pass-123" not in (row["params"] or "") for row in audit)


async def test_impersonation_link_works_once_and_expires(mcp_client, slug, admin, odoo, target):
    async with mcp_client() as client:
        data = data_of(await call(client, slug, "impersonate_user", user_id=target["id"]))
        second = data_of(await call(client, slug, "impersonate_user", user_id=target["id"]))
        assert "protected system user" in error_of(await call(client, slug, "impersonate_user",
                                                              user_id=admin.ref("base.user_admin")))
    url = data["url"]
    assert url.startswith(odoo.url + "/ocore/mcp/impersonate/")
    token = url.rsplit("/", 1)[1]
    # the browser follows the link: a redirect into the backend with a session of the target user
    with httpx2.Client(timeout=30) as browser:
        resp = browser.get(url, follow_redirects=False)
        assert resp.status_code == 303, resp.text[:300]
        assert resp.headers["location"].endswith("/web")
        info = browser.post(f"{odoo.url}/web/session/get_session_info",
                            json={"jsonrpc": "2.0", "method": "call", "params": {}}).json()["result"]
        assert (info["uid"], info["username"]) == (target["id"], target["login"])
    # a second use is refused, from any browser
    with httpx2.Client(timeout=30) as other:
        again = other.get(url, follow_redirects=False)
        assert again.status_code == 410 and "already been used" in again.text
        body = other.post(f"{odoo.url}/web/session/get_session_info",
                          json={"jsonrpc": "2.0", "method": "call", "params": {}}).json()
        assert not (body.get("result") or {}).get("uid"), body  # not logged in: "Session expired"
        # an expired link is refused too
        pg_query(odoo.setup, odoo.db, "UPDATE ocore_mcp_impersonation SET expires_at = expires_at - interval '6 min' "
                 "WHERE id = %s", (second["link_id"],))
        expired = other.get(second["url"], follow_redirects=False)
        assert expired.status_code == 410 and "expired" in expired.text
        assert other.get(f"{odoo.url}/ocore/mcp/impersonate/not-a-token").status_code == 404
    # audited on both sides: the call that made the link (token masked) and the use of the link
    made = admin.audit([("tool", "=", "impersonate_user"), ("event", "=", "call")], limit=2)
    assert made and all(token not in (row["result_summary"] or "") for row in made)
    used = admin.wait_audit([("event", "=", "impersonation")])[0]
    assert used["user_id"][0] == admin.uid and target["login"] in used["result_summary"]
    refused = admin.audit([("event", "=", "denied"), ("tool", "=", "impersonate_user")], limit=5)
    assert {"link_used", "link_expired"} <= {row["refusal_reason"] for row in refused}
    link = admin.search_read("ocore.mcp.impersonation", [("id", "=", data["link_id"])], ["used_at", "used_ip",
                                                                                       "state"])[0]
    assert link["state"] == "used" and link["used_ip"] == "127.0.0.1"


# -- parameters, scheduled actions ---------------------------------------------------------------


async def test_system_parameters(mcp_client, slug, admin, make_key):
    admin.set_param("e2e.smtp_password", "s3cr3t-value")
    async with mcp_client() as client:
        data = data_of(await call(client, slug, "get_system_parameter"))
        values = {p["key"]: p["value"] for p in data["parameters"]}
        assert values["e2e.smtp_password"] == "********"
        assert values["database.secret"] == "********"
        assert values["web.base.url"].startswith("http")
        data_of(await call(client, slug, "set_system_parameter", key="e2e.mcp_setting", value="42"))
        assert admin.get_param("e2e.mcp_setting") == "42"
        text = error_of(await call(client, slug, "set_system_parameter", key="ocore_mcp.write_enabled", value="1"))
        assert "is protected" in text
        assert "no system parameter" in error_of(await call(client, slug, "get_system_parameter", key="e2e.none"))
    async with mcp_client(key=make_key(read_only=True)) as client:
        assert "read-only" in error_of(await call(client, slug, "set_system_parameter", key="e2e.mcp_setting",
                                                  value="43"))
    assert admin.get_param("e2e.mcp_setting") == "42"
    admin.set_param("e2e.smtp_password", None)


async def test_scheduled_actions(mcp_client, slug, admin):
    partner = admin.create("res.partner", {"name": "Cron e2e"})
    cron = admin.create("ir.cron", {
        "name": f"E2E cron {secrets.token_hex(3)}", "model_id": admin.ref("base.model_res_partner"), "state": "code",
        "code": f"model.browse({partner}).write({{'comment': 'cron ran'}})", "interval_number": 1,
        "interval_type": "days", "active": False,
    })
    async with mcp_client() as client:
        listed = data_of(await call(client, slug, "list_scheduled_actions", search="E2E cron"))
        assert cron in [c["id"] for c in listed["scheduled_actions"]]
        data_of(await call(client, slug, "toggle_scheduled_action", cron_id=cron, active=True))
        assert admin.search_read("ir.cron", [("id", "=", cron)], ["active"])[0]["active"] is True
        assert "confirm: true" in error_of(await call(client, slug, "run_scheduled_action", cron_id=cron))
    # two clients trigger the action at the same moment: it runs once, the other is refused
    async with mcp_client() as one, mcp_client(transport="stream", mode="2026-07-28") as two:
        results = await asyncio.gather(call(one, slug, "run_scheduled_action", cron_id=cron, confirm=True),
                                       call(two, slug, "run_scheduled_action", cron_id=cron, confirm=True))
    ok = [r for r in results if not r.is_error]
    refused = [text_of(r) for r in results if r.is_error]
    assert len(ok) == 1 and len(refused) == 1, [text_of(r) for r in results]
    assert "rate limit exceeded" in refused[0] and "cooldown" in refused[0]
    assert "cron ran" in admin.search_read("res.partner", [("id", "=", partner)], ["comment"])[0]["comment"]
    async with mcp_client() as client:
        assert "cooldown" in error_of(await call(client, slug, "run_scheduled_action", cron_id=cron, confirm=True))


# -- caches, server, logs ------------------------------------------------------------------------


async def test_clear_cache_server_info_and_logs(mcp_client, slug, odoo):
    marker = f"e2e-log-{secrets.token_hex(4)}"
    with httpx2.Client(timeout=30) as http:
        assert http.get(f"{odoo.url}/web/login?{marker}=1").status_code == 200
    async with mcp_client() as client:
        logs = data_of(await call(client, slug, "odoo_logs", filter=marker))
        assert logs["source"] == "capture"
        if odoo.mode != "prefork":  # in prefork mode each worker captures its own requests only
            assert logs["count"] >= 1
            assert marker in logs["lines"][-1] and "GET /web/login" in logs["lines"][-1]
        assert data_of(await call(client, slug, "odoo_logs", filter="ocore|werkzeug"))["count"] >= 1
        assert len(data_of(await call(client, slug, "odoo_logs", lines=3))["lines"]) <= 3
        assert "less than or equal to 1000" in error_of(await call(client, slug, "odoo_logs", lines=5000))

        info = data_of(await call(client, slug, "server_info"))
        assert info["database"]["name"] == odoo.db
        assert info["server"]["mode"] == ("prefork" if odoo.mode == "prefork" else "threaded")
        assert "db_password" not in str(info) and "admin_passwd" not in str(info)

        assert "confirm: true" in error_of(await call(client, slug, "clear_system_cache"))
        report = data_of(await call(client, slug, "clear_system_cache", targets=["orm", "assets", "sessions"],
                                    confirm=True))["report"]
        assert report["orm"]["cleared"] and report["assets"]["cleared"] and report["sessions"]["cleared"]
    with httpx2.Client(timeout=60) as http:  # the asset bundles are rebuilt on demand
        page = http.get(f"{odoo.url}/web/login")
        assert page.status_code == 200
        css = [part.split('"')[0] for part in page.text.split('href="')[1:] if "/web/assets/" in part]
        assert css and http.get(odoo.url + css[0]).status_code == 200


# -- backup and restore ---------------------------------------------------------------------------


def _read(path):
    with open(path, "rb") as fh:
        return fh.read()


def _write(path, data):
    with open(path, "wb") as fh:
        fh.write(data)


@pytest.fixture(scope="module")
def backup_dir(admin):
    path = tempfile.mkdtemp(prefix="ocore_e2e_backups_")
    admin.set_param("ocore_mcp.backup_dir", path)
    yield path
    admin.set_param("ocore_mcp.backup_dir", None)
    shutil.rmtree(path, ignore_errors=True)


async def test_backup_and_list(mcp_client, slug, admin, odoo, backup_dir):
    async with mcp_client() as client:
        made = data_of(await call(client, slug, "backup_database", label="e2e", timeout_seconds=120))
        name = made["backup"]["name"]
        assert _read(os.path.join(backup_dir, name))[:5] == b"PGDMP"
        plain = data_of(await call(client, slug, "backup_database", format="plain", include_filestore=True))
        assert plain["backup"]["name"].endswith(".zip")
        listed = data_of(await call(client, slug, "list_backups", max_age_days=1))
        assert {name, plain["backup"]["name"]} <= {b["name"] for b in listed["backups"]}
        with admin.params(backup_max_bytes="1000"):
            text = error_of(await call(client, slug, "backup_database"))
        assert "limit exceeded" in text and "backup_max_bytes" in text
    # a backup file is never served over HTTP
    with httpx2.Client(timeout=30) as http:
        for path in (f"/{name}", f"/web/content/{name}", f"/ocore_backups/{odoo.db}/{name}"):
            resp = http.get(odoo.url + path)
            assert resp.status_code in (303, 404), path
            assert not resp.content.startswith(b"PGDMP")


async def test_corrupt_backup_is_refused_and_the_database_untouched(mcp_client, slug, admin, backup_dir):
    probe = admin.create("res.partner", {"name": f"Corrupt probe {secrets.token_hex(3)}"})
    _write(os.path.join(backup_dir, "corrupt.dump"), b"PGDMP" + os.urandom(4096))
    async with mcp_client() as client:
        good = data_of(await call(client, slug, "backup_database"))["backup"]["name"]
        content = _read(os.path.join(backup_dir, good))
        _write(os.path.join(backup_dir, "truncated.dump"), content[: len(content) // 2])
        before = set(os.listdir(backup_dir))
        for bad in ("corrupt.dump", "truncated.dump"):
            text = error_of(await call(client, slug, "restore_database", backup=bad, confirm=True, timeout_seconds=120))
            assert "not a readable pg_dump archive" in text and "nothing was changed" in text
        assert "confirmation required" in error_of(await call(client, slug, "restore_database", backup=good))
        assert "not a backup file name" in error_of(await call(client, slug, "restore_database",
                                                               backup="../../etc/passwd", confirm=True))
        before = set(os.listdir(backup_dir))
        with admin.params(backup_max_bytes="1000"):  # the pre-restore backup cannot be made: no restore
            text = error_of(await call(client, slug, "restore_database", backup=good, confirm=True))
        assert "pre-restore backup failed, so nothing was restored" in text
        # the server still answers, with the same data
        assert data_of(await call(client, slug, "server_info"))["database"]["name"] == admin.db
    assert admin.search_read("res.partner", [("id", "=", probe)], ["name"])
    assert set(os.listdir(backup_dir)) == before  # no pre-restore backup was even needed


def _wait_for(predicate, timeout=90, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # noqa: BLE001 - the server is switching databases
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{what} not reached within {timeout}s (last error: {last})")


async def test_backup_change_restore_brings_the_data_back(mcp_client, slug, admin, odoo, backup_dir, make_key, raw):
    """Must stay the last test of the module: it replaces the whole database.

    The backup is a plain SQL dump zipped with the filestore (Odoo's own backup layout): the restore
    runs psql into a staging database, then swaps both the database and the filestore.
    """
    kept = admin.create("res.partner", {"name": "Before backup", "email": "before@example.com"})
    kept_file = os.urandom(2048)
    kept_att = admin.create("ir.attachment", {"name": "kept.bin", "res_model": "res.partner", "res_id": kept,
                                              "datas": base64.b64encode(kept_file).decode()})
    key = make_key()
    async with mcp_client(key=key) as client:
        made = data_of(await call(client, slug, "backup_database", format="plain", include_filestore=True,
                                  timeout_seconds=120))
        name = made["backup"]["name"]
        # data changed after the backup
        admin.write("res.partner", [kept], {"name": "Changed after backup"})
        added = admin.create("res.partner", {"name": "Added after backup"})
        added_att = admin.create("ir.attachment", {"name": "added.bin", "res_model": "res.partner", "res_id": kept,
                                                   "datas": base64.b64encode(b"after").decode()})
        added_file = admin.search_read("ir.attachment", [("id", "=", added_att)], ["store_fname"])[0]["store_fname"]
        filestore = odoo.setup.data_dir() / "filestore" / odoo.db
        assert (filestore / added_file).is_file()
        late_key = make_key()
        result = await call(client, slug, "restore_database", backup=name, confirm=True, timeout_seconds=120)
        data = data_of(result)
        assert data["format"] == "plain" and data["filestore_in_backup"] is True
        assert "pre-restore" in data["pre_restore_backup"] and data["pre_restore_backup"].endswith(".zip")

    def restored():
        rows = admin.search_read("res.partner", [("id", "in", [kept, added])], ["name"])
        return [r["name"] for r in rows] == ["Before backup"]

    _wait_for(restored, what="the restored data")
    assert not admin.search_read("ir.attachment", [("id", "=", added_att)], ["id"])
    assert not (filestore / added_file).exists()  # the live filestore was replaced by the backup's
    # the database is usable again through MCP, every worker on the restored registry
    async with mcp_client(key=key) as client:
        listed = data_of(await call(client, slug, "list_backups"))
        assert data["pre_restore_backup"] in {b["name"] for b in listed["backups"]}
        down = data_of(await call(client, slug, "download_attachment", attachment_id=kept_att))
        assert base64.b64decode(down["data_base64"]) == kept_file  # the filestore came back with the database
        assert data_of(await call(client, slug, "list_users", search="admin"))["total"] >= 1
    # a key created after the backup is gone with it
    assert raw.post(STREAM_PATH, initialize_msg(), key=late_key).status_code == 401
    assert raw.post(STREAM_PATH, initialize_msg(), key=key).status_code == 200
    swap = admin.wait_audit([("tool_name", "=", "restore_database (swap)")])[0]
    assert swap["status"] == "success" and name in swap["result_summary"]
    dbs = [row[0] for row in pg_query(odoo.setup, "postgres", "SELECT datname FROM pg_database WHERE datname LIKE %s",
                                      (odoo.db + "%",))]
    assert dbs == [odoo.db], dbs  # no staging or replaced database left behind
