"""Metadata tools and prompt templates end to end: the official SDK client against a real server."""

from __future__ import annotations

import mcp_types
import pytest
from harness import odoo_series
from mcp.shared.exceptions import MCPError
from mcp_helpers import TRANSPORT_IDS, TRANSPORTS, data_of, error_of, list_all_tools

pytestmark = pytest.mark.anyio

METADATA_TOOLS = {
    "list_models", "get_field_metadata", "get_model_constraints", "get_model_relations", "get_model_methods",
    "get_model_views", "get_instance_info", "get_addon_manifest", "list_translations", "update_translation",
}
# a minimal valid call of every tool taking a model (the allowlist test names another model)
MODEL_CALLS = {
    "get_field_metadata": {},
    "get_model_constraints": {},
    "get_model_relations": {},
    "get_model_methods": {"search": "create"},
    "get_model_views": {"combined": True, "view_type": "form"},
    "list_translations": {"ids": [1]},
    "update_translation": {"record_id": 1, "field": "name", "lang": "en_US", "value": "x"},
}


def by_transport():
    return pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)


@pytest.fixture(scope="module")
def french(admin):
    """fr_FR active (what activating a language in Settings does, without loading its terms)."""
    ids = [r["id"] for r in admin.search_read("res.lang", [("code", "=", "fr_FR"), ("active", "in", [True, False])],
                                              ["id"])]
    admin.write("res.lang", ids, {"active": True})
    return "fr_FR"



@pytest.fixture(scope="module")
def partner_only_key(admin):
    return admin.create_key(name="meta e2e partner only", models=["res.partner"])


async def call(client, slug, tool, **args):
    return await client.call_tool(f"{slug}_{tool}", args)


# -- listing ---------------------------------------------------------------------------------------


async def test_metadata_tools_are_listed(mcp_client, slug):
    async with mcp_client() as client:
        tools = {t.name: t for t in await list_all_tools(client)}
    for name in METADATA_TOOLS:
        assert f"{slug}_{name}" in tools, name
    assert tools[f"{slug}_list_models"].annotations.read_only_hint is True
    update = tools[f"{slug}_update_translation"]
    # it overwrites the translation in place: destructive (MCP annotations), although no confirm is asked
    assert not update.annotations.read_only_hint and update.annotations.destructive_hint is True
    assert {"source", "dry_run"} <= set(update.input_schema["properties"])
    assert set(update.input_schema["required"]) == {"model", "record_id", "field", "lang", "value"}


# -- list_models -----------------------------------------------------------------------------------


@by_transport()
async def test_list_models(mcp_client, slug, transport, mode):
    async with mcp_client(transport, mode) as client:
        data = data_of(await call(client, slug, "list_models", search="partner"))
        models = {row["model"]: row for row in data["models"]}
        assert {"res.partner", "res.partner.title", "res.partner.category"} <= set(models)
        assert all("partner" in m or "partner" in row["name"].lower() for m, row in models.items())
        assert models["res.partner"]["name"] == "Contact"
        assert models["res.partner"]["state"] == "base"
        assert models["res.partner"]["modules"][0] == "base"
        # the cache is per server process: with several workers a call may reach one still cold
        again = [data_of(await call(client, slug, "list_models", search="partner")) for _i in range(6)]
        assert any(result["cached"] for result in again)
        assert all(result["models"] == data["models"] for result in again)
        every = data_of(await call(client, slug, "list_models", limit=5000))
        names = [row["model"] for row in every["models"]]
        assert "ocore.mcp.key" in names and "res.users.apikeys.description" not in names  # no transient models
        assert names == sorted(names)


async def test_list_models_follows_registry_changes(mcp_client, slug, admin):
    """A new custom model changes the registry (signalled through the database): the cache is not used."""
    async with mcp_client() as client:
        assert data_of(await call(client, slug, "list_models", state="manual"))["models"] == []
        model_id = admin.create("ir.model", {
            "name": "E2E Meta", "model": "x_e2e_meta", "state": "manual",
            "field_id": [(0, 0, {"name": "x_name", "ttype": "char", "field_description": "Name"})],
        })
        try:
            data = data_of(await call(client, slug, "list_models", state="manual"))
            assert [(r["model"], r["name"], r["state"]) for r in data["models"]] == [
                ("x_e2e_meta", "E2E Meta", "manual")]
        finally:
            admin.call("ir.model", "unlink", [model_id])
        data = data_of(await call(client, slug, "list_models", state="manual"))
        assert data["models"] == []


async def test_list_models_model_allowlist(mcp_client, slug, partner_only_key):
    async with mcp_client(key=partner_only_key) as client:
        data = data_of(await call(client, slug, "list_models"))
        assert [row["model"] for row in data["models"]] == ["res.partner"]


# -- schema ----------------------------------------------------------------------------------------


async def test_field_metadata(mcp_client, slug):
    async with mcp_client() as client:
        data = data_of(await call(client, slug, "get_field_metadata", model="res.partner",
                                  fields=["name", "parent_id", "create_date"]))
        assert [f["name"] for f in data["simple"]] == ["name"]
        assert [f["name"] for f in data["relational"]] == ["parent_id"]
        assert [f["name"] for f in data["technical"]] == ["create_date"]
        parent = data["relational"][0]
        assert len(parent) == 13  # name + the 12 summary attributes
        assert parent["relation"] == "res.partner" and parent["type"] == "many2one" and parent["index"] is True
        detail = data_of(await call(client, slug, "get_field_metadata", model="res.partner",
                                    fields=["category_id"], detail=True, grouped=False))
        category = detail["fields"][0]
        assert category["relation_table"] == "res_partner_res_partner_category_rel"
        assert category["module"] == "base" and "domain" in category and "searchable" in category
        unknown = error_of(await call(client, slug, "get_field_metadata", model="res.partner", fields=["nope_x"]))
        assert "unknown field(s) on res.partner: nope_x" in unknown
        bad = error_of(await call(client, slug, "get_field_metadata", model="res.partner'--"))
        assert "invalid input" in bad


async def test_constraints_relations_methods(mcp_client, slug):
    async with mcp_client() as client:
        cons = data_of(await call(client, slug, "get_model_constraints", model="res.partner"))
        check = next(c for c in cons["sql_constraints"] if c["name"] == "check_name")
        assert check["message"] == "Contacts require a name" and check["in_database"] is True
        assert ["parent_id"] in [c["fields"] for c in cons["python_constraints"] if c["method"] == "_check_parent_id"]
        assert "res_partner_pkey" in [c["name"] for c in cons["database_constraints"]]

        rel = data_of(await call(client, slug, "get_model_relations", model="res.partner", include_incoming=True))
        parent = next(r for r in rel["many2one"] if r["field"] == "parent_id")
        assert parent["comodel"] == "res.partner" and "child_ids" in parent["inverse_fields"]
        assert next(r for r in rel["one2many"] if r["field"] == "child_ids")["inverse_name"] == "parent_id"
        assert {"model": "res.users", "field": "partner_id", "ondelete": "restrict", "required": True} in rel["incoming"]

        methods = data_of(await call(client, slug, "get_model_methods", model="res.partner", search="parent_id"))
        by_name = {m["name"]: m for m in methods["methods"]}
        assert by_name["_check_parent_id"]["decorators"] == ["constrains"]
        assert by_name["onchange_parent_id"]["decorators"] == ["onchange"]
        public = data_of(await call(client, slug, "get_model_methods", model="res.partner", include_private=False))
        assert public["methods"] and not [m for m in public["methods"] if m["name"].startswith("_")]


async def test_model_views(mcp_client, slug, internal_user_key):
    async with mcp_client() as client:
        data = data_of(await call(client, slug, "get_model_views", model="res.partner", view_type="form"))
        form = next(v for v in data["views"] if v["xml_id"] == "base.view_partner_form")
        assert form["arch"].startswith("<form") and form["mode"] == "primary"
        assert {v["type"] for v in data["views"]} == {"form"}
        lists = data_of(await call(client, slug, "get_model_views", model="res.partner", view_type="tree",
                                   include_arch=False))
        assert {v["type"] for v in lists["views"]} == {"list"} and "arch" not in lists["views"][0]
    async with mcp_client(key=internal_user_key) as client:
        refused = error_of(await call(client, slug, "get_model_views", model="res.partner"))
        assert "permission denied" in refused and "combined: true" in refused
        combined = data_of(await call(client, slug, "get_model_views", model="res.partner", combined=True))
        assert {v["type"] for v in combined["views"]} == {"form", "list", "search", "kanban"}
        assert next(v for v in combined["views"] if v["type"] == "search")["arch"].startswith("<search")


# -- instance, modules -----------------------------------------------------------------------------


async def test_instance_info(mcp_client, slug, odoo, admin):
    async with mcp_client() as client:
        data = data_of(await call(client, slug, "get_instance_info"))
        assert data["slug"] == slug and data["database"] == odoo.db
        assert data["odoo_version"] == odoo_series() and data["edition"] == "community"
        assert data["ports"]["http"] == odoo.port
        assert data["mcp_write_enabled"] is True and data["mcp_enabled"] is True
        assert data["timestamps"]["database_created"] == admin.get_param("database.create_date")
        assert data["server"]["mode"] == ("prefork" if odoo.mode == "prefork" else "threaded")
        with admin.params(environment="production", write_enabled=None):
            guarded = data_of(await call(client, slug, "get_instance_info"))
        assert guarded["environment"] == "production" and guarded["mcp_write_enabled"] is False


async def test_addon_manifest(mcp_client, slug, admin, internal_user_key):
    async with mcp_client() as client:
        data = data_of(await call(client, slug, "get_addon_manifest", module="ocore_mcp"))
        record = admin.search_read("ir.module.module", [("name", "=", "ocore_mcp")],
                                   ["latest_version", "author", "license", "state"])[0]
        assert data["state"] == "installed" == record["state"]
        assert data["installed_version"] == record["latest_version"] == data["code_version"]
        assert data["author"] == record["author"] and data["license"] == record["license"]
        assert "web" in data["depends"]
        assert "unknown module 'no_such_addon_e2e'" in error_of(
            await call(client, slug, "get_addon_manifest", module="no_such_addon_e2e"))
        assert "not a valid identifier" in error_of(await call(client, slug, "get_addon_manifest", module="a b"))
    async with mcp_client(key=internal_user_key) as client:
        assert "permission denied" in error_of(await call(client, slug, "get_addon_manifest", module="base"))


# -- translations ----------------------------------------------------------------------------------


async def test_translations_whole_field(mcp_client, slug, admin, french, make_key):
    title_id = admin.ref("base.res_partner_title_mister")
    args = {"model": "res.partner.title", "record_id": title_id, "field": "name", "lang": french}
    async with mcp_client() as client:
        updated = data_of(await call(client, slug, "update_translation", value="Monsieur", **args))
        assert updated["value_in_lang"] == "Monsieur" and updated["mode"] == "whole"
        listed = data_of(await call(client, slug, "list_translations", model="res.partner.title",
                                    ids=[title_id], field="name", lang=french))
        assert listed["records"][0]["fields"]["name"]["translations"] == [
            {"lang": french, "source": "Mister", "value": "Monsieur"}]
        fr = admin.call("res.partner.title", "read", [title_id], ["name"], context={"lang": french})
        assert fr[0]["name"] == "Monsieur"
        stale = error_of(await call(client, slug, "update_translation", value="M.", source="Madam", **args))
        assert "the current source text" in stale
        dry = data_of(await call(client, slug, "update_translation", value="M.", source="Mister", dry_run=True, **args))
        assert dry["dry_run"] is True and dry["would_return"]["value_in_lang"] == "M."
        fr = admin.call("res.partner.title", "read", [title_id], ["name"], context={"lang": french})
        assert fr[0]["name"] == "Monsieur"  # rolled back
        assert "give ids or a domain" in error_of(await call(client, slug, "list_translations",
                                                              model="res.partner.title"))
        assert "not an installed language" in error_of(
            await call(client, slug, "update_translation", **{**args, "lang": "xx_XX"}, value="x"))
    read_only = make_key(read_only=True)
    async with mcp_client(key=read_only) as client:
        assert data_of(await call(client, slug, "list_translations", model="res.partner.title", ids=[title_id]))
        refused = error_of(await call(client, slug, "update_translation", value="Sieur", **args))
        assert "write operations blocked" in refused
    async with mcp_client() as client:
        with admin.params(write_enabled=False):
            refused = error_of(await call(client, slug, "update_translation", value="Sieur", **args))
        assert "mcp_write_enabled off" in refused
    fr = admin.call("res.partner.title", "read", [title_id], ["name"], context={"lang": french})
    assert fr[0]["name"] == "Monsieur"


async def test_translations_terms_need_source(mcp_client, slug, admin, french):
    view_id = admin.create("ir.ui.view", {
        "name": "e2e meta terms", "type": "qweb",
        "arch": "<t t-name='e2e_meta_terms'><div>Good morning</div><p>See you</p></t>",
    })
    args = {"model": "ir.ui.view", "record_id": view_id, "field": "arch_db", "lang": french}
    try:
        async with mcp_client() as client:
            listed = data_of(await call(client, slug, "list_translations", model="ir.ui.view", ids=[view_id],
                                        field="arch_db", lang=french))
            terms = listed["records"][0]["fields"]["arch_db"]
            assert terms["mode"] == "terms"
            assert [t["source"] for t in terms["translations"]] == ["Good morning", "See you"]
            missing = error_of(await call(client, slug, "update_translation", value="Bonjour", **args))
            assert "source is required" in missing and "'Good morning'" in missing
            wrong = error_of(await call(client, slug, "update_translation", value="Bonjour", source="Morning", **args))
            assert "is not a term" in wrong
            data_of(await call(client, slug, "update_translation", value="Bonjour", source="Good morning", **args))
        arch = admin.call("ir.ui.view", "read", [view_id], ["arch_db"], context={"lang": french})[0]["arch_db"]
        assert "<div>Bonjour</div><p>See you</p>" in arch
        source = admin.call("ir.ui.view", "read", [view_id], ["arch_db"], context={"lang": "en_US"})[0]["arch_db"]
        assert "<div>Good morning</div>" in source
    finally:
        admin.call("ir.ui.view", "unlink", [view_id])


# -- the model allowlist limits every tool ---------------------------------------------------------


async def test_model_allowlist_refusals(mcp_client, slug, partner_only_key):
    async with mcp_client(key=partner_only_key) as client:
        for tool, args in MODEL_CALLS.items():
            text = error_of(await call(client, slug, tool, model="res.users", **args))
            assert "permission denied" in text and "not in the API key's model allowlist" in text, (tool, text)
        assert data_of(await call(client, slug, "get_model_constraints", model="res.partner"))["table"] == "res_partner"
        text = error_of(await call(client, slug, "get_addon_manifest", module="base"))
        assert "'ir.module.module' is not in the API key's model allowlist" in text


# -- prompt templates ------------------------------------------------------------------------------


@by_transport()
async def test_prompts_list_and_get(mcp_client, admin, slug, transport, mode):
    async with mcp_client(transport, mode) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert {a.name: a.required for a in prompts["explain_model"].arguments} == {"model": True}
        assert {a.name: a.required for a in prompts["analyze_error"].arguments} == {
            "traceback": True, "context": False}
        assert {a.name: a.required for a in prompts["debug_performance"].arguments} == {
            "symptoms": True, "model": False}
        explained = await client.get_prompt("explain_model", {"model": "res.partner"})
        text = explained.messages[0].content.text
        assert explained.messages[0].role == "user"
        # the records the key sees (its company), as the count tool reports them: the suite's database may
        # hold partners of other companies that the administrator's XML-RPC counts too
        count = data_of(await call(client, slug, "count", model="res.partner"))["count"]
        assert f"- Records: {count}" in text
        assert "| parent_id | many2one | Related Company |" in text
        assert "- many2one `parent_id` -> res.partner (ondelete set null, inverse one2many: child_ids)" in text
        assert "SQL `check_name`" in text


async def test_prompt_analyze_error_and_debug_performance(mcp_client, admin):
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "/srv/odoo/addons/ocore_mcp/models/mcp_key.py", line 10, in _check_names\n'
        "    key.tool_allowlist\n"
        "ValueError: Invalid field 'tool_alowlist' on model 'ocore.mcp.key'\n"
    )
    async with mcp_client() as client:
        got = await client.get_prompt("analyze_error", {"traceback": traceback, "context": "saving a key"})
        text = got.messages[0].content.text
        assert "**Error:** ValueError: Invalid field 'tool_alowlist' on model 'ocore.mcp.key'" in text
        assert "### Model `ocore.mcp.key` (MCP API Key)" in text
        assert "| tool_allowlist | text |" in text
        assert "`tool_alowlist` is not a field of ocore.mcp.key (similar: tool_allowlist" in text
        version = admin.search_read("ir.module.module", [("name", "=", "ocore_mcp")], ["latest_version"])[0]
        assert f"| ocore_mcp | installed | {version['latest_version']} |" in text

        perf = await client.get_prompt("debug_performance", {"symptoms": "contacts list slow", "model": "res.partner"})
        text = perf.messages[0].content.text
        assert "**Symptoms:** contacts list slow" in text and "Table `res_partner`" in text
        missing = next(line for line in text.splitlines() if line.startswith("- many2one columns without an index"))
        assert "title -> res.partner.title" in missing and "parent_id ->" not in missing
        assert "MCP: purge old audit rows" in text
        overall = (await client.get_prompt("debug_performance", {"symptoms": "all slow"})).messages[0].content.text
        assert "### Largest tables" in overall and "| res.partner | res_partner |" in overall


async def test_prompts_model_allowlist(mcp_client, partner_only_key):
    async with mcp_client(key=partner_only_key) as client:
        with pytest.raises(MCPError) as exc:
            await client.get_prompt("explain_model", {"model": "res.users"})
        assert exc.value.code == mcp_types.INVALID_PARAMS
        assert "not in the API key's model allowlist" in exc.value.message
        with pytest.raises(MCPError) as exc:
            await client.get_prompt("debug_performance", {"symptoms": "slow", "model": "res.users"})
        assert "not in the API key's model allowlist" in exc.value.message
        text = (await client.get_prompt("explain_model", {"model": "res.partner"})).messages[0].content.text
        assert "### Model `res.partner`" in text
        overall = (await client.get_prompt("debug_performance", {"symptoms": "slow"})).messages[0].content.text
        tables = overall.split("### Largest tables")[1].split("###")[0]
        rows = [r.split("|")[1].strip() for r in tables.splitlines() if r.startswith("| ") and "| model |" not in r]
        assert rows == ["res.partner"]
        assert "ir.cron is outside the API key's model allowlist" in overall
        tb = "ValueError: Invalid field 'x' on model 'res.users'"
        hidden = (await client.get_prompt("analyze_error", {"traceback": tb})).messages[0].content.text
        assert "Not shown: res.users" in hidden and "### Model `res.users`" not in hidden
