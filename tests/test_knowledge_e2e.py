"""Knowledge Layer (addon ocore_mcp_knowledge) end to end: the official SDK client against a real server.

The suite's shared server has only ocore_mcp and the test extension: this module starts its own server
on its own database with ocore_mcp_knowledge installed, and utm (a small Odoo module whose model a saved
filter searches before the module is uninstalled).
"""

from __future__ import annotations

import re
import secrets

import pytest
from harness import MAIN_ADDON, Admin, own_server
from mcp_helpers import MODERN, TRANSPORT_IDS, TRANSPORTS, connect, data_of, error_of, list_all_tools

pytestmark = pytest.mark.anyio

KNOWLEDGE_ADDON = "ocore_mcp_knowledge"
UNINSTALLED_ADDON = "utm"  # depends on base and web only; nothing else installed here needs it
TOOLS = {
    "add_note": "write", "list_notes": "read", "update_note": "write", "delete_note": "destructive",
    "set_model_summary": "write", "set_instance_summary": "write", "save_filter": "write", "list_filters": "read",
    "run_filter": "read", "delete_filter": "destructive", "bookmark_call": "write", "list_bookmarks": "read",
    "delete_bookmark": "destructive", "get_context": "read",
}


@pytest.fixture(scope="module")
def know(request, odoo_setup):
    """A server of its own with the knowledge addon installed."""
    with own_server(request.config, odoo_setup, addons=(MAIN_ADDON, KNOWLEDGE_ADDON, UNINSTALLED_ADDON),
                    mode=request.config.getoption("--odoo-mode"), rate_limit=100000) as server:
        yield server


@pytest.fixture(scope="module")
def admin(know) -> Admin:
    return know.admin


@pytest.fixture(scope="module")
def slug(know) -> str:
    return know.slug


@pytest.fixture
def key(admin, request):
    """A new full-access key of the administrator for each test."""
    return admin.create_key(name=f"know e2e {request.node.name[:60]} {secrets.token_hex(2)}")


def client_of(know, key, transport="stream", mode="legacy"):
    return connect(know.url, key, transport=transport, mode=mode)


def by_transport():
    return pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)


async def call(client, slug, tool, **args):
    return await client.call_tool(f"{slug}_{tool}", args)


# -- listing --------------------------------------------------------------------------------------


async def test_tools_listed_without_auto_context(know, slug, key):
    async with client_of(know, key) as client:
        tools = {t.name: t for t in await list_all_tools(client)}
    for name, kind in TOOLS.items():
        tool = tools[f"{slug}_{name}"]
        assert bool(tool.annotations.read_only_hint) is (kind == "read"), name  # omitted when false (MCP default)
        if kind == "destructive":
            assert tool.annotations.destructive_hint is True, name
            assert "confirm" in tool.input_schema["properties"], name
    assert tools[f"{slug}_add_note"].input_schema["properties"]["title"]["maxLength"] == 200
    assert not any(t.description.startswith("[Auto-context]") for t in tools.values())


# -- notes ------------------------------------------------------------------------------------------


async def test_note_limits(know, slug, key, admin):
    async with client_of(know, key) as client:
        text = error_of(await call(client, slug, "add_note", target_type="instance", title="x" * 201))
        assert "title" in text and "at most 200 characters" in text
        data = data_of(await call(client, slug, "add_note", target_type="instance", title="y" * 200))
        assert len(data["note"]["title"]) == 200
        assert "at most 2000 characters" in error_of(
            await call(client, slug, "add_note", target_type="instance", title="t", body="b" * 2001))
        # 100 notes about res.country (what earlier calls, or people in the backend, wrote)
        admin.call("ocore.mcp.note", "create", [
            {"title": f"country note {i}", "target_type": "model", "target_model": "res.country"} for i in range(99)
        ])
        data = data_of(await call(client, slug, "add_note", target_type="model", model="res.country",
                                  title="the 100th", tags=["geo"]))
        assert data["note"]["target"] == "res.country"
        text = error_of(await call(client, slug, "add_note", target_type="model", model="res.country",
                                   title="the 101st"))
        assert "limit exceeded" in text and "max 100 per target" in text
        listed = data_of(await call(client, slug, "list_notes", model="res.country", limit=200))
        assert listed["total"] == 100
        assert "the 101st" not in {n["title"] for n in listed["notes"]}
        # the limit is per target: another model still takes notes
        data_of(await call(client, slug, "add_note", target_type="model", model="res.currency", title="fine"))


async def test_note_soft_delete_and_update(know, slug, key, admin):
    async with client_of(know, key) as client:
        note = data_of(await call(client, slug, "add_note", target_type="field", model="res.partner", field="ref",
                                  title="Customer code", body="Set by the ERP sync", tags=["sync"]))["note"]
        assert note["target"] == "res.partner.ref"
        updated = data_of(await call(client, slug, "update_note", note_id=note["id"], body="Set by the nightly sync"))
        assert (updated["note"]["title"], updated["note"]["body"], updated["note"]["tags"]) == (
            "Customer code", "Set by the nightly sync", ["sync"])
        assert "confirmation required" in error_of(await call(client, slug, "delete_note", note_id=note["id"]))
        assert data_of(await call(client, slug, "delete_note", note_id=note["id"], confirm=True))["deleted"] is True
        listed = data_of(await call(client, slug, "list_notes", tags=["sync"]))
        assert note["id"] not in [n["id"] for n in listed["notes"]]
        assert "not found" in error_of(await call(client, slug, "update_note", note_id=note["id"], title="back"))
        context = data_of(await call(client, slug, "get_context", notes_limit=200))
        assert note["id"] not in [n["id"] for n in context["notes"]]
    # still in the database, archived and stamped
    row = admin.search_read("ocore.mcp.note", [("id", "=", note["id"]), ("active", "in", [True, False])],
                            ["active", "deleted_at", "title"])[0]
    assert row["active"] is False and row["deleted_at"] and row["title"] == "Customer code"


async def test_notes_shared_by_the_company_keys(know, slug, key, admin):
    uid = admin.create_user(f"know_e2e_{secrets.token_hex(3)}")
    other = admin.create_key(name="know e2e colleague", user_id=uid)
    marker = f"shared-{secrets.token_hex(4)}"
    async with client_of(know, key) as client:
        data_of(await call(client, slug, "add_note", target_type="instance", title=marker))
    async with client_of(know, other, mode=MODERN) as client:
        found = data_of(await call(client, slug, "list_notes", search=marker))
        assert [n["title"] for n in found["notes"]] == [marker]


# -- summaries and get_context -------------------------------------------------------------------


@by_transport()
async def test_summaries_and_get_context(know, slug, key, transport, mode):
    text = f"Instance summary via {transport}/{mode}"
    async with client_of(know, key, transport, mode) as client:
        first = data_of(await call(client, slug, "set_instance_summary", summary=text))["note"]
        again = data_of(await call(client, slug, "set_instance_summary", summary=text + " (v2)"))
        assert (again["created"], again["note"]["id"]) == (False, first["id"])
        model = data_of(await call(client, slug, "set_model_summary", model="res.partner",
                                   summary="Customers and vendors"))["note"]
        assert (model["tags"], model["target"]) == (["summary"], "res.partner")
        context = data_of(await call(client, slug, "get_context"))
    assert context["instance"] == slug
    assert context["instance_summary"]["body"] == text + " (v2)"
    assert {"model": "res.partner", "body": "Customers and vendors"}.items() <= next(
        m for m in context["model_summaries"] if m["model"] == "res.partner").items()
    assert all(not n["is_summary"] for n in context["notes"])


# -- saved filters -----------------------------------------------------------------------------------


async def test_saved_filters(know, slug, key, admin):
    name = f"partners_{secrets.token_hex(3)}"
    admin.create("res.partner", {"name": f"Know E2E {name}", "ref": name})
    read_only = admin.create_key(name="know e2e read-only", read_only=True)
    async with client_of(know, key) as client:
        text = error_of(await call(client, slug, "save_filter", name=name, model="res.partner",
                                   domain=[["no_such_field", "=", 1]]))
        assert "no_such_field" in text
        assert "unknown field" in error_of(await call(client, slug, "save_filter", name=name, model="res.partner",
                                                      order="no_such_field desc"))
        saved = data_of(await call(client, slug, "save_filter", name=name, model="res.partner",
                                   domain=[["ref", "=", name]], fields=["name", "ref"], description="one partner"))
        assert (saved["filter"]["limit"], saved["filter"]["use_count"]) == (80, 0)
        assert "already exists" in error_of(await call(client, slug, "save_filter", name=name, model="res.partner"))
        run = data_of(await call(client, slug, "run_filter", name=name))
        assert [r["name"] for r in run["records"]] == [f"Know E2E {name}"]
        assert run["filter"]["use_count"] == 1
        run = data_of(await call(client, slug, "run_filter", filter_id=saved["filter"]["id"]))
        assert run["filter"]["use_count"] == 2
        listed = data_of(await call(client, slug, "list_filters"))["filters"]
        counts = [f["use_count"] for f in listed]
        assert counts == sorted(counts, reverse=True)
        assert next(f for f in listed if f["name"] == name)["use_count"] == 2
    async with client_of(know, read_only, mode=MODERN) as client:
        assert data_of(await call(client, slug, "run_filter", name=name))["total"] == 1
        assert "read-only" in error_of(await call(client, slug, "save_filter", name="ro", model="res.partner"))
    async with client_of(know, key) as client:
        assert "confirmation required" in error_of(await call(client, slug, "delete_filter", name=name))
        data_of(await call(client, slug, "delete_filter", name=name, confirm=True))
        assert "no saved filter" in error_of(await call(client, slug, "run_filter", name=name))


async def test_filter_of_uninstalled_model(know, slug, key, admin):
    name = f"mediums_{secrets.token_hex(3)}"
    admin.create("utm.medium", {"name": f"Know medium {name}"})
    async with client_of(know, key) as client:
        data_of(await call(client, slug, "save_filter", name=name, model="utm.medium",
                           domain=[["name", "like", "Know medium"]], order="name"))
        assert data_of(await call(client, slug, "run_filter", name=name))["total"] == 1
    module_id = admin.search_read("ir.module.module", [("name", "=", UNINSTALLED_ADDON)], ["id"])[0]["id"]
    admin.call("ir.module.module", "button_immediate_uninstall", [module_id])
    assert admin.search_read("ir.module.module", [("id", "=", module_id)], ["state"])[0]["state"] == "uninstalled"
    async with client_of(know, key) as client:
        text = error_of(await call(client, slug, "run_filter", name=name))
        assert "utm.medium" in text and "not installed on this instance any more" in text
        listed = data_of(await call(client, slug, "list_filters", limit=200))["filters"]
        row = next(f for f in listed if f["name"] == name)
        assert (row["model"], row["model_installed"], row["order"]) == ("utm.medium", False, "name")
        deleted = data_of(await call(client, slug, "delete_filter", name=name, confirm=True))
        assert deleted["model"] == "utm.medium"
        listed = data_of(await call(client, slug, "list_filters", limit=200))["filters"]
        assert name not in [f["name"] for f in listed]


# -- bookmarks ---------------------------------------------------------------------------------------


@by_transport()
async def test_bookmark_most_recent_call(know, slug, admin, transport, mode):
    key = admin.create_key(name=f"know e2e bookmarks {transport} {mode}")
    async with client_of(know, key, transport, mode) as client:
        assert "no earlier tool call" in error_of(await call(client, slug, "bookmark_call", label="nothing yet"))
        # a call refused for an unknown argument: audited with its parameters, secrets redacted
        error_of(await call(client, slug, "list_notes", search="vat", api_token="tok-s3cr3t"))
        mark = data_of(await call(client, slug, "bookmark_call", label="The refused call", tags=["debug"],
                                  note="kept for later"))["bookmark"]
        assert mark["tool_name"] == f"{slug}_list_notes"
        assert mark["tool_params"] == {"search": "vat", "api_token": "[REDACTED]"}
        assert mark["call_status"] == "refused" and "unknown argument" in mark["result_summary"]
        assert (mark["instance"], mark["tags"], mark["note"]) == (slug, ["debug"], "kept for later")
        # with an explicit audit id
        data_of(await call(client, slug, "list_filters"))
        entry = admin.audit([("key_id", "=", key.id), ("tool", "=", "list_filters")], limit=1)[0]
        second = data_of(await call(client, slug, "bookmark_call", label="x" * 200, audit_log_id=entry["id"]))
        assert (second["bookmark"]["tool_name"], second["bookmark"]["audit_log_id"]) == (
            f"{slug}_list_filters", entry["id"])
        assert len(second["bookmark"]["result_summary"]) <= 500
        assert "at most 200 characters" in error_of(await call(client, slug, "bookmark_call", label="x" * 201))
        listed = data_of(await call(client, slug, "list_bookmarks", tags=["debug"]))["bookmarks"]
        assert listed[0]["id"] == mark["id"]
        assert "confirmation required" in error_of(await call(client, slug, "delete_bookmark",
                                                              bookmark_id=mark["id"]))
        data_of(await call(client, slug, "delete_bookmark", bookmark_id=mark["id"], confirm=True))
        listed = data_of(await call(client, slug, "list_bookmarks", search="The refused call"))["bookmarks"]
        assert mark["id"] not in [b["id"] for b in listed]
    stored = admin.search_read("ocore.mcp.bookmark", [("id", "=", mark["id"]), ("active", "in", [True, False])],
                               ["active", "tool_params", "call_session"])[0]
    assert stored["active"] is False and "tok-s3cr3t" not in stored["tool_params"]
    if mode == MODERN:
        assert stored["call_session"] is False  # stateless: the key's most recent call
    else:
        assert stored["call_session"]


async def test_list_bookmarks_newest_first_max_50(know, slug, key, admin):
    tag = f"bulk{secrets.token_hex(3)}"
    tag_id = admin.create("ocore.mcp.knowledge.tag", {"name": tag})
    ids = admin.call("ocore.mcp.bookmark", "create", [
        {"label": f"bulk {i:02d}", "tool_name": f"{tag}_tool", "instance": tag, "tag_ids": [(6, 0, [tag_id])]}
        for i in range(55)
    ])
    async with client_of(know, key) as client:
        data = data_of(await call(client, slug, "list_bookmarks", tags=[tag]))
        assert (data["total"], len(data["bookmarks"])) == (55, 50)
        assert [b["id"] for b in data["bookmarks"]] == sorted(ids, reverse=True)[:50]
        assert data_of(await call(client, slug, "list_bookmarks", instance=tag, limit=3))["total"] == 55
        assert data_of(await call(client, slug, "list_bookmarks", search="bulk 07"))["bookmarks"][0]["label"] == \
            "bulk 07"
        assert "less than or equal to 50" in error_of(await call(client, slug, "list_bookmarks", limit=51))


# -- auto-context -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", MODERN])
async def test_auto_context_on_and_off(know, slug, key, admin, mode):
    async with client_of(know, key) as client:
        data_of(await call(client, slug, "set_instance_summary", summary="EU production instance with VAT flows."))
        data_of(await call(client, slug, "set_model_summary", model="res.partner", summary="Customers. " + "z" * 300))
        data_of(await call(client, slug, "save_filter", name=f"auto_{mode}_{secrets.token_hex(2)}",
                           model="res.partner"))
    auto = admin.create_key(name=f"know e2e auto-context {mode}", auto_context=True)
    async with client_of(know, auto, mode=mode) as client:
        tools = {t.name: t.description for t in await list_all_tools(client)}
    prefix = tools[f"{slug}_get_context"].split("\n\n")[0]
    lines = prefix.splitlines()
    assert lines[0] == "[Auto-context] Instance context: EU production instance with VAT flows."
    assert lines[1].startswith("Model summaries: ") and "res.partner: Customers. zzz" in lines[1]
    excerpt = lines[1].split("res.partner: ", 1)[1].split(";")[0]
    assert len(excerpt) <= 150 and excerpt.endswith("…")
    assert re.fullmatch(rf"\d+ saved filters? available -- call {slug}_get_context for details\.", lines[2])
    for name, description in tools.items():
        if name.startswith(f"{slug}_"):
            assert description.startswith(prefix), name
    assert not tools["ocore_list_instances"].startswith("[Auto-context]")
    # the same knowledge, a key without auto-context: plain descriptions
    async with client_of(know, key, mode=mode) as client:
        plain = {t.name: t.description for t in await list_all_tools(client)}
    assert not any(d.startswith("[Auto-context]") for d in plain.values())
    assert tools[f"{slug}_get_context"].endswith(plain[f"{slug}_get_context"])
    # switched off on the key: gone at the next listing
    admin.write("ocore.mcp.key", [auto.id], {"auto_context": False})
    async with client_of(know, auto, mode=mode) as client:
        assert not any(t.description.startswith("[Auto-context]") for t in await list_all_tools(client))


# -- security: nobody reads through the knowledge what they could not read or call themselves ------------

PBKDF2 = "$pbkdf2-sha512$600000$c2FsdHNhbHRzYWx0$" + "Zm9vYmFy" * 10


def _user_with_rpc(know, admin, groups, internal=True):
    """A user of the given groups, a key of theirs, and an RPC client logged in as them (XML-RPC / JSON-RPC,
    what the backend and scripts use)."""
    login = f"know_sec_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    group_ids = ([admin.ref("base.group_user")] if internal else [admin.ref("base.group_portal")]) + [
        admin.ref(g) for g in groups]
    uid = admin.create("res.users", {"name": login, "login": login, "password": password,
                                     "groups_id": [(6, 0, group_ids)]})
    key = admin.create_key(name=f"{login} key", user_id=uid, read_only=not internal)
    return key, Admin(know.url, know.db, login, password)


@pytest.fixture(scope="module")
def others(know, admin):
    """(name, key, rpc) of a portal user with a viewer key, an internal user, an MCP manager who is not a
    system administrator."""
    return [
        ("portal", *_user_with_rpc(know, admin, ["ocore_mcp.group_mcp_viewer"], internal=False)),
        ("internal", *_user_with_rpc(know, admin, ["ocore_mcp.group_mcp_user"])),
        ("manager", *_user_with_rpc(know, admin, ["ocore_mcp.group_mcp_manager"])),
    ]


async def test_admin_tool_results_stay_with_system_administrators(know, slug, key, admin, others):
    marker = f"admin-only-{secrets.token_hex(4)}"
    async with client_of(know, key) as client:
        data_of(await call(client, slug, "execute_sql",
                           query=f"SELECT 'admin' AS login, '{PBKDF2}' AS password, '{marker}' AS x"))
        mark = data_of(await call(client, slug, "bookmark_call", label=f"hashes {marker}"))["bookmark"]
        assert marker in mark["result_summary"] and "c2FsdHNhbHRz" not in mark["result_summary"]
        assert mark["id"] in {b["id"] for b in data_of(await call(client, slug, "list_bookmarks"))["bookmarks"]}
    audit = admin.audit([("tool", "=", "execute_sql")], limit=1)[0]
    assert marker in audit["result_summary"] and "c2FsdHNhbHRz" not in audit["result_summary"]
    for name, other_key, rpc in others:
        async with client_of(know, other_key, mode=MODERN) as client:
            listed = data_of(await call(client, slug, "list_bookmarks"))
            context = data_of(await call(client, slug, "get_context"))
            refused = error_of(await call(client, slug, "bookmark_call", label="steal", audit_log_id=audit["id"]))
        assert marker not in repr(listed) and marker not in repr(context), name
        # (the portal user's key is read-only: refused before looking)
        assert "no tool call with audit log id" in refused or (name == "portal" and "read-only" in refused), name
        # the backend's paths: JSON-RPC (the web client) and XML-RPC
        assert not rpc.search_read("ocore.mcp.bookmark", [("id", "=", mark["id"])], ["result_summary"]), name
        assert marker not in repr(rpc.xmlrpc("ocore.mcp.bookmark", "search_read", [], ["label", "result_summary"]))
        # nor the audit log: rows of administrators' tools are for system administrators only
        assert rpc.xmlrpc("ocore.mcp.audit.log", "search_read", [("tool", "=", "execute_sql")], ["result_summary"]) \
            == [], name


async def test_knowledge_of_models_the_user_may_not_read(know, slug, key, admin, others):
    marker = f"cron-{secrets.token_hex(4)}"
    admin.create("ocore.mcp.note", {"title": f"note {marker}", "target_type": "model", "target_model": "ir.cron",
                                    "body": f"cron plan {marker}"})
    admin.create("ocore.mcp.saved.filter", {"name": f"filter_{marker}", "model": "ir.cron"})
    async with client_of(know, key) as client:
        data_of(await call(client, slug, "set_model_summary", model="ir.cron", summary=f"summary {marker}"))
        assert marker in repr(data_of(await call(client, slug, "get_context")))
    for name, other_key, rpc in others:
        admin.write("ocore.mcp.key", [other_key.id], {"auto_context": True})
        async with client_of(know, other_key) as client:
            context = data_of(await call(client, slug, "get_context"))
            notes = data_of(await call(client, slug, "list_notes", search=marker))
            filters = data_of(await call(client, slug, "list_filters", model="ir.cron"))
            descriptions = [t.description for t in await list_all_tools(client)]
        assert marker not in repr(context) and notes["total"] == 0 and filters["total"] == 0, name
        assert not any(marker in d for d in descriptions), name
        assert not rpc.search_read("ocore.mcp.note", [("body", "ilike", marker)], ["body"]), name
        assert not rpc.xmlrpc("ocore.mcp.saved.filter", "search_read", [("name", "=", f"filter_{marker}")], ["name"])


async def test_prompts_read_with_the_callers_rights(know, key, others):
    portal_key = others[0][1]
    async with client_of(know, portal_key, mode=MODERN) as client:
        got = await client.get_prompt("debug_performance", {"symptoms": "everything is slow"})
        text = got.messages[0].content.text
        model = (await client.get_prompt("debug_performance", {"symptoms": "slow", "model": "res.partner"}))
        model_text = model.messages[0].content.text
    for leak in ("mcp_audit_log", "ocore_mcp_oauth", "### Largest tables", "; database size", "Database connections:"):
        assert leak not in text and leak not in model_text, leak
    assert "shown to system administrators only" in text
    async with client_of(know, key) as client:
        admin_text = (await client.get_prompt("debug_performance", {"symptoms": "slow"})).messages[0].content.text
    assert "### Largest tables" in admin_text and "; database size" in admin_text
