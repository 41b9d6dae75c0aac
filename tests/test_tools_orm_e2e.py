"""ORM tools (category orm) through the SDK client: every tool once, bad input, nothing written on errors."""

from __future__ import annotations

import secrets

import pytest
from mcp_helpers import MODERN, TRANSPORT_IDS, TRANSPORTS, data_of, error_of, list_all_tools, text_of

pytestmark = pytest.mark.anyio

ORM_TOOLS = {
    "search_read": "read", "read": "read", "count": "read", "create": "write", "write": "write",
    "unlink": "destructive", "copy": "write", "execute_method": "write", "batch_create": "write",
    "batch_update": "write", "batch_delete": "destructive", "batch_copy": "write", "batch_execute": "write",
}

OVERWRITING = {"write", "batch_update", "execute_method", "batch_execute"}


@pytest.fixture(scope="module")
def orm_key(admin):
    return admin.create_key("e2e orm tools")


@pytest.fixture(scope="module")
def data(admin):
    """Partners tagged with a unique ref (the marker) for this module."""
    marker = f"E2E-ORM-{secrets.token_hex(3)}"
    belgium = admin.search_read("res.country", [("code", "=", "BE")], ["id"])[0]["id"]
    names = ["Acme Corporation", "Globex Industries", "Initech Software", "Umbrella Health", "Stark Works"]
    ids = {}
    for i, name in enumerate(names):
        ids[name] = admin.create("res.partner", {
            "name": f"{name} {marker}", "ref": marker, "is_company": i % 2 == 0, "email": f"info{i}@{marker}.test",
            "country_id": belgium if i < 3 else False, "city": "Brussels" if i < 2 else "Ghent", "color": i,
        })
    return {"marker": marker, "ids": ids, "belgium": belgium, "names": names}


def marked(data, extra=()):
    return [["ref", "=", data["marker"]], *extra]


def count_marked(admin, data, extra=()):
    return admin.call("res.partner", "search_count", [("ref", "=", data["marker"]), *extra],
                      context={"active_test": False})


@pytest.fixture
async def orm(mcp_client, orm_key, slug):
    """call(tool, **args) -> CallToolResult, on one legacy Streamable HTTP session."""
    async with mcp_client(key=orm_key) as client:

        async def call(tool, **args):
            return await client.call_tool(f"{slug}_{tool}", args)

        call.client = client
        yield call


async def test_orm_tools_are_listed_with_their_kinds(mcp_client, orm_key, slug):
    async with mcp_client(key=orm_key) as client:
        tools = {t.name: t for t in await list_all_tools(client)}
    for name, kind in ORM_TOOLS.items():
        tool = tools[f"{slug}_{name}"]
        # annotations state only what differs from MCP's defaults (readOnlyHint false, destructiveHint true);
        # writes that overwrite data or run methods are destructive too (only "destructive" ones ask confirm)
        assert bool(tool.annotations.read_only_hint) is (kind == "read"), name
        if kind != "read":
            assert tool.annotations.destructive_hint is (kind == "destructive" or name in OVERWRITING), name
        props = tool.input_schema["properties"]
        assert ("confirm" in props) is (kind == "destructive"), name
        assert ("dry_run" in props) is (kind != "read"), name
        assert "model" in props and tool.input_schema["required"][0] == "model", name


# -- reads ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_search_read_smart_fields(mcp_client, orm_key, slug, data, transport, mode):
    async with mcp_client(transport, mode, key=orm_key) as client:
        result = data_of(await client.call_tool(f"{slug}_search_read",
                                                {"model": "res.partner", "domain": marked(data)}))
    assert result["total"] == 5 and result["count"] == 5 and result["has_more"] is False
    assert result["smart_fields"] is True
    fields = result["fields"]
    assert fields[:2] == ["display_name", "name"] and "email" in fields and "country_id" in fields
    assert not {"image_1920", "comment", "message_ids", "password", "avatar_128"} & set(fields)
    by_name = {r["name"]: r for r in result["records"]}
    acme = by_name[f"Acme Corporation {data['marker']}"]
    assert acme["id"] == data["ids"]["Acme Corporation"]
    assert acme["country_id"] == [data["belgium"], "Belgium"]  # many2one as [id, name]
    assert by_name[f"Umbrella Health {data['marker']}"]["country_id"] is None


async def test_search_read_fields_order_and_pages(orm, data):
    page = data_of(await orm("search_read", model="res.partner", domain=marked(data), fields=["name", "color"],
                             order="color desc", limit=2))
    assert page["smart_fields"] is False and page["fields"] == ["name", "color"]
    assert [set(r) for r in page["records"]] == [{"id", "name", "color"}] * 2
    assert [r["color"] for r in page["records"]] == [4, 3]
    # a full page is not counted (advanced_search counts): has_more comes from one extra row
    assert page["total"] is None and page["has_more"] is True and page["next_offset"] == 2
    last = data_of(await orm("search_read", model="res.partner", domain=marked(data), fields=["color"],
                             order="color desc", limit=2, offset=4))
    assert [r["color"] for r in last["records"]] == [0]
    assert last["has_more"] is False and last["next_offset"] is None and last["total"] == 5


async def test_search_read_text_format(orm, data):
    result = await orm("search_read", model="res.partner", domain=marked(data), fields=["name", "city"],
                       order="name", format="text")
    text = text_of(result)
    assert "| id | name | city |" in text and f"Acme Corporation {data['marker']}" in text
    assert result.structured_content["count"] == 5


async def test_search_read_response_limit(orm, data):
    full = await orm("search_read", model="res.partner", domain=marked(data))
    assert 2048 < len(text_of(full).encode()) < 5 * 2048  # so that 2 KB holds some records, not all
    result = data_of(await orm("search_read", model="res.partner", domain=marked(data), max_response_size=2))
    assert result["truncated"] is True and 0 < len(result["records"]) < 5
    assert f"{len(result['records'])} of 5 records returned" in result["truncation"]
    assert result["total"] == 5  # the rest of the answer is kept


async def test_read(orm, data):
    ids = [data["ids"]["Globex Industries"], data["ids"]["Stark Works"], 987654321]
    result = data_of(await orm("read", model="res.partner", ids=ids, fields=["name", "city"]))
    assert result["count"] == 2 and result["not_found"] == [987654321]
    assert [(r["id"], r["city"]) for r in result["records"]] == [(ids[0], "Brussels"), (ids[1], "Ghent")]


async def test_count(orm, data):
    assert data_of(await orm("count", model="res.partner", domain=marked(data)))["count"] == 5
    companies = data_of(await orm("count", model="res.partner", domain=marked(data, [["is_company", "=", True]])))
    assert companies == {"model": "res.partner", "count": 3}
    either = data_of(await orm("count", model="res.partner",
                               domain=["|", ["ref", "=", data["marker"]], ["id", "=", 1]]))
    assert either["count"] == 6


# -- writes -------------------------------------------------------------------------------


async def test_create_write_copy_unlink(orm, admin, data):
    marker = data["marker"] + "-crud"
    created = data_of(await orm("create", model="res.partner", values={
        "name": "Created Partner", "ref": marker, "email": "new@example.com",
        "country_id": [data["belgium"], "Belgium"],  # a many2one given back as read returns it
    }))
    pid = created["id"]
    assert created["record"]["email"] == "new@example.com" and created["record"]["country_id"][0] == data["belgium"]
    assert admin.search_read("res.partner", [("id", "=", pid)], ["name", "ref"])[0]["ref"] == marker

    written = data_of(await orm("write", model="res.partner", ids=[pid], values={"phone": "+32 2 555 00 00"}))
    assert written["updated"] == 1 and written["records"][0]["phone"] == "+32 2 555 00 00"
    assert admin.search_read("res.partner", [("id", "=", pid)], ["phone"])[0]["phone"] == "+32 2 555 00 00"

    copied = data_of(await orm("copy", model="res.partner", id=pid, default={"name": "Copied Partner"}))
    assert copied["source_id"] == pid and copied["id"] != pid and copied["record"]["name"] == "Copied Partner"

    refused = error_of(await orm("unlink", model="res.partner", ids=[pid, copied["id"]]))
    assert refused.startswith("confirmation required") and "Nothing was done" in refused
    assert len(admin.search_read("res.partner", [("id", "in", [pid, copied["id"]])], ["id"])) == 2

    deleted = data_of(await orm("unlink", model="res.partner", ids=[pid, copied["id"]], confirm=True))
    assert deleted["deleted_count"] == 2
    assert {d["id"] for d in deleted["deleted"]} == {pid, copied["id"]}
    assert admin.search_read("res.partner", [("id", "in", [pid, copied["id"]])], ["id"]) == []


async def test_write_dry_run_changes_nothing(orm, admin, data):
    pid = data["ids"]["Initech Software"]
    preview = data_of(await orm("write", model="res.partner", ids=[pid], values={"city": "Dry Town"}, dry_run=True))
    assert preview["dry_run"] is True and preview["would_return"]["records"][0]["city"] == "Dry Town"
    assert admin.search_read("res.partner", [("id", "=", pid)], ["city"])[0]["city"] == "Ghent"


async def test_execute_method(orm, admin, data, make_key, mcp_client, slug):
    found = data_of(await orm("execute_method", model="res.partner", method="name_search",
                              args=[f"Globex Industries {data['marker']}"], kwargs={"limit": 5}))
    assert found["read_only"] is True
    assert found["result"] == [[data["ids"]["Globex Industries"], f"Globex Industries {data['marker']}"]]

    victim = admin.create("res.partner", {"name": "Archive me", "ref": data["marker"] + "-exec"})
    archived = data_of(await orm("execute_method", model="res.partner", method="action_archive", ids=[victim]))
    assert archived["read_only"] is False and archived["ids"] == [victim]
    assert admin.search_read("res.partner", [("id", "=", victim), ("active", "in", [True, False])],
                             ["active"])[0]["active"] is False

    # read-only methods pass the write check of a read-only key; others do not
    async with mcp_client(key=make_key(read_only=True)) as client:
        ok = await client.call_tool(f"{slug}_execute_method", {"model": "res.partner", "method": "name_search",
                                                                "args": ["Acme"]})
        assert data_of(ok)["read_only"] is True
        blocked = error_of(await client.call_tool(f"{slug}_execute_method", {
            "model": "res.partner", "method": "action_unarchive", "ids": [victim]}))
        assert blocked.startswith("write operations blocked")
    assert admin.search_read("res.partner", [("id", "=", victim), ("active", "in", [True, False])],
                             ["active"])[0]["active"] is False


@pytest.mark.parametrize(("args", "words"), [
    ({"model": "res.partner", "method": "sudo"}, "method 'sudo' is blocked"),
    ({"model": "res.partner", "method": "with_user", "args": [1]}, "method 'with_user' is blocked"),
    ({"model": "res.partner", "method": "_compute_display_name", "ids": [1]}, "private method"),
    ({"model": "res.partner", "method": "unlink", "ids": [1]}, "use the unlink / batch_delete tool"),
    ({"model": "res.partner", "method": "write", "ids": [1], "args": [{"name": "x"}]}, "method 'write' is blocked"),
    ({"model": "ir.config_parameter", "method": "get_param", "args": ["database.secret"]},
     "cannot be used on ir.config_parameter"),
    ({"model": "res.users", "method": "change_password", "args": ["a", "b"]}, "credentials"),
    ({"model": "res.partner", "method": "no_such_method"}, "has no method 'no_such_method'"),
    ({"model": "res.partner", "method": "name_search; drop"}, "not a valid identifier"),
])
async def test_execute_method_refusals(orm, args, words):
    text = error_of(await orm("execute_method", **args))
    assert words in text, text


# -- batches ------------------------------------------------------------------------------


async def test_batch_create_items_are_independent(orm, admin, data):
    marker = data["marker"] + "-bc"
    result = data_of(await orm("batch_create", model="res.partner", values_list=[
        {"name": "Batch One", "ref": marker},
        {"name": None, "ref": marker},  # violates res_partner_check_name: this item alone fails
        {"name": "Batch Three", "ref": marker},
    ]))
    assert (result["total"], result["succeeded"], result["failed"]) == (3, 2, 1)
    assert [r["ok"] for r in result["results"]] == [True, False, True]
    assert "check_name" in result["results"][1]["error"]
    names = sorted(r["name"] for r in admin.search_read("res.partner", [("ref", "=", marker)], ["name"]))
    assert names == ["Batch One", "Batch Three"]
    assert {r["id"] for r in result["results"] if r["ok"]} == {
        r["id"] for r in admin.search_read("res.partner", [("ref", "=", marker)], ["id"])}


async def test_batch_update(orm, admin, data):
    a, b = data["ids"]["Acme Corporation"], data["ids"]["Globex Industries"]
    result = data_of(await orm("batch_update", model="res.partner", updates=[
        {"id": a, "values": {"phone": "+1 111"}},
        {"id": 987654321, "values": {"phone": "+1 222"}},
        {"id": b, "values": {"phone": "+1 333"}},
    ]))
    assert (result["succeeded"], result["failed"]) == (2, 1)
    assert "987654321" in result["results"][1]["error"]
    phones = {r["id"]: r["phone"] for r in admin.search_read("res.partner", [("id", "in", [a, b])], ["phone"])}
    assert phones == {a: "+1 111", b: "+1 333"}


async def test_batch_copy_and_delete(orm, admin, data):
    marker = data["marker"] + "-bcd"
    sources = [admin.create("res.partner", {"name": f"Source {i}", "ref": marker}) for i in range(2)]
    copies = data_of(await orm("batch_copy", model="res.partner", ids=sources, default={"ref": marker + "-copy"}))
    assert copies["succeeded"] == 2
    new_ids = [r["new_id"] for r in copies["results"]]
    assert len(admin.search_read("res.partner", [("ref", "=", marker + "-copy")], ["id"])) == 2

    refused = error_of(await orm("batch_delete", model="res.partner", ids=new_ids))
    assert refused.startswith("confirmation required")
    deleted = data_of(await orm("batch_delete", model="res.partner", ids=[*new_ids, 987654321], confirm=True))
    assert (deleted["succeeded"], deleted["failed"]) == (2, 1)
    assert admin.search_read("res.partner", [("ref", "=", marker + "-copy")], ["id"]) == []
    assert len(admin.search_read("res.partner", [("id", "in", sources)], ["id"])) == 2


async def test_batch_execute(orm, admin, data):
    marker = data["marker"] + "-bx"
    ids = [admin.create("res.partner", {"name": f"Exec {i}", "ref": marker}) for i in range(3)]
    result = data_of(await orm("batch_execute", model="res.partner", method="action_archive", ids=ids))
    assert result["succeeded"] == 3 and result["read_only"] is False
    assert admin.search_read("res.partner", [("ref", "=", marker)], ["id"]) == []  # all archived
    model_level = error_of(await orm("batch_execute", model="res.partner", method="name_search", ids=ids))
    assert "model-level method" in model_level


@pytest.mark.parametrize("tool", ["batch_create", "batch_update", "batch_delete", "batch_copy", "batch_execute"])
async def test_batch_of_501_is_refused(orm, admin, data, tool):
    marker = data["marker"] + "-501"
    pid = data["ids"]["Stark Works"]
    args = {
        "batch_create": {"values_list": [{"name": f"n{i}", "ref": marker} for i in range(501)]},
        "batch_update": {"updates": [{"id": pid, "values": {"ref": marker}}] * 501},
        "batch_delete": {"ids": [pid] * 501, "confirm": True},
        "batch_copy": {"ids": [pid] * 501, "default": {"ref": marker}},
        "batch_execute": {"ids": [pid] * 501, "method": "action_archive"},
    }[tool]
    text = error_of(await orm(tool, model="res.partner", **args))
    assert "500" in text and text.startswith("invalid input"), text
    assert count_marked(admin, {"marker": marker}) == 0
    stark = admin.search_read("res.partner", [("id", "=", pid), ("active", "in", [True, False])], ["active", "ref"])
    assert stark == [{"id": pid, "active": True, "ref": data["marker"]}]


async def test_batch_of_500_is_accepted(orm, admin, data):
    marker = data["marker"] + "-500"
    result = data_of(await orm("batch_create", model="res.partner",
                               values_list=[{"name": f"n{i}", "ref": marker} for i in range(500)]))
    assert result["succeeded"] == 500
    assert count_marked(admin, {"marker": marker}) == 500


async def test_malformed_batch_item_refuses_the_whole_batch(orm, admin, data):
    marker = data["marker"] + "-malformed"
    text = error_of(await orm("batch_create", model="res.partner",
                              values_list=[{"name": "fine", "ref": marker}, {"no_such_field": 1}]))
    assert "values_list[1]" in text and "no_such_field" in text
    bad_update = error_of(await orm("batch_update", model="res.partner",
                                    updates=[{"id": data["ids"]["Acme Corporation"], "values": {"ref": marker}},
                                             {"id": "2", "values": {}}]))
    assert "updates[1]" in bad_update
    assert count_marked(admin, {"marker": marker}) == 0


# -- bad input: nothing written ------------------------------------------------------------------


@pytest.mark.parametrize(("tool", "args", "words"), [
    ("search_read", {"model": "no.such.model"}, "unknown model 'no.such.model'"),
    ("count", {"model": "res.partner", "domain": [["no_field", "=", 1]]}, "unknown field 'no_field'"),
    ("count", {"model": "res.partner", "domain": [["name", "==", "x"]]}, "unknown operator '=='"),
    ("count", {"model": "res.partner", "domain": [["name", "="]]}, "neither a condition"),
    ("count", {"model": "res.partner", "domain": ["|", ["name", "=", "x"]]}, "missing 1 operand"),
    ("count", {"model": "res.partner", "domain": "[('name', '=', 'x')]"}, "domain"),
    ("search_read", {"model": "res.partner", "fields": ["name", "nope"]}, "unknown field(s) on res.partner: nope"),
    ("search_read", {"model": "res.partner", "order": "name; DROP TABLE res_partner"}, "order"),
    ("search_read", {"model": "res.partner", "limit": "ten"}, "limit"),
    ("search_read", {"model": "res.partner", "limit": 0}, "limit"),
    ("read", {"model": "res.partner", "ids": ["1"]}, "ids"),
    ("read", {"model": "res.partner", "ids": [True]}, "ids"),
    ("read", {"model": "res.partner", "ids": [-4]}, "ids"),
    ("read", {"model": "res.partner", "ids": {"id": 1}}, "ids"),
    ("read", {"model": "res.partner"}, "ids: required argument is missing"),
    ("search_read", {"model": "ocore.mcp.key"}, "cannot be reached through MCP data tools"),
    ("search_read", {"model": "ocore.mcp.audit.log"}, "cannot be reached"),
    ("search_read", {"model": "ocore.mcp.toolset"}, "cannot be reached"),
    ("search_read", {"model": "res.partner", "bogus": 1}, "bogus: unknown argument"),
])
async def test_bad_input_read_tools(orm, tool, args, words):
    text = error_of(await orm(tool, **args))
    assert text.startswith(("invalid input", "permission denied")), text
    assert words in text, text


@pytest.mark.parametrize(("tool", "args", "words"), [
    ("create", {"values": {"name": "x", "no_such_field": 1}}, "no_such_field"),
    ("create", {"values": {"name": "x", "email": 42}}, "expected a string"),
    ("create", {"values": {"name": "x", "country_id": "Belgium"}}, "expected a record id"),
    ("create", {"values": {"name": "x", "type": "alien"}}, "'alien' is not one of"),
    ("create", {"values": {"name": "x", "is_company": "yes"}}, "true or false"),
    ("create", {"values": {}}, "non-empty object"),
    ("create", {"values": {"name": "x", "id": 5}}, "'id' cannot be set"),
    ("create", {"values": [["name", "x"]]}, "values"),
    ("write", {"ids": [987654321], "values": {"name": "x"}}, "no record(s) with id 987654321"),
    ("write", {"ids": [], "values": {"name": "x"}}, "ids"),
    ("copy", {"id": 987654321}, "987654321"),
    ("unlink", {"ids": [987654321], "confirm": True}, "987654321"),
])
async def test_bad_input_write_tools_write_nothing(orm, admin, data, tool, args, words):
    marker = f"{data['marker']}-bad-{secrets.token_hex(2)}"
    if tool == "create" and isinstance(args["values"], dict) and args["values"]:
        args = {"values": {**args["values"], "ref": marker}}
    before = admin.call("res.partner", "search_count", [], context={"active_test": False})
    text = error_of(await orm(tool, model="res.partner", **args))
    assert text.startswith(("invalid input", "not found")), text
    assert words in text, text
    assert admin.call("res.partner", "search_count", [], context={"active_test": False}) == before
    assert count_marked(admin, {"marker": marker}) == 0


async def test_access_rights_of_the_key_owner_apply(mcp_client, admin, make_key, slug):
    """A plain internal user cannot create users: the ORM's AccessError, as a tool error."""
    login = f"e2e_orm_user_{secrets.token_hex(3)}"
    user = admin.create_user(login)
    async with mcp_client(key=make_key(user_id=user)) as client:
        text = error_of(await client.call_tool(f"{slug}_create", {
            "model": "res.users", "values": {"name": "Sneaky", "login": f"sneaky_{login}"}}))
        assert text.startswith("permission denied") and login in text
        # the same user may read partners
        assert data_of(await client.call_tool(f"{slug}_count", {"model": "res.partner"}))["count"] >= 1
    assert admin.search_read("res.users", [("login", "=", f"sneaky_{login}")], ["id"]) == []


async def test_orm_tools_in_2026_mode(mcp_client, orm_key, slug, data):
    async with mcp_client("stream", MODERN, key=orm_key) as client:
        count = data_of(await client.call_tool(f"{slug}_count", {"model": "res.partner", "domain": marked(data)}))
        assert count["count"] == 5
        created = data_of(await client.call_tool(f"{slug}_create", {
            "model": "res.partner", "values": {"name": "Modern", "ref": data["marker"] + "-modern"}}))
        assert created["id"] > 0
