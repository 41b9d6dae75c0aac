"""Search tools (category search) through the SDK client: every tool once, bad input."""

from __future__ import annotations

import csv
import datetime
import io
import re
import secrets

import pytest
from mcp_helpers import MODERN, TRANSPORT_IDS, TRANSPORTS, data_of, error_of, list_all_tools, text_of

pytestmark = pytest.mark.anyio

SEARCH_TOOLS = {"advanced_search", "aggregation", "distinct_field_values", "fuzzy_search"}


@pytest.fixture(scope="module")
def search_key(admin):
    return admin.create_key("e2e search tools", categories=["search"])


@pytest.fixture(scope="module")
def data(admin):
    """Partners tagged with a unique ref: 3 companies, 4 persons, colors 1..7, three cities."""
    marker = f"E2E-SEARCH-{secrets.token_hex(3)}"
    rows = [
        ("Acme Corporation", True, "Brussels", 1), ("Acme Logistics", True, "Antwerp", 2),
        ("Globex Industries", True, "Brussels", 3), ("José Müller", False, "Ghent", 4),
        ("Marie Curie", False, "Brussels", 5), ("Jean Dupont", False, "Ghent", 6), ("Ada Lovelace", False, None, 7),
    ]
    ids = {}
    for name, is_company, city, color in rows:
        ids[name] = admin.create("res.partner", {"name": name, "ref": marker, "is_company": is_company,
                                                 "city": city or False, "color": color,
                                                 "email": f"{name.split()[0].lower()}@{marker.lower()}.test"})
    return {"marker": marker, "ids": ids}


def marked(data, extra=()):
    return [["ref", "=", data["marker"]], *extra]


@pytest.fixture
async def search(mcp_client, search_key, slug):
    async with mcp_client(key=search_key) as client:

        async def call(tool, **args):
            return await client.call_tool(f"{slug}_{tool}", args)

        yield call


async def test_search_tools_listed_for_a_search_key(mcp_client, search_key, slug):
    async with mcp_client(key=search_key) as client:
        tools = {t.name: t for t in await list_all_tools(client)}
    assert {f"{slug}_{name}" for name in SEARCH_TOOLS} <= set(tools)
    assert f"{slug}_search_read" not in tools  # an orm tool: not in the key's categories
    for name in SEARCH_TOOLS:
        assert tools[f"{slug}_{name}"].annotations.read_only_hint is True
    assert tools[f"{slug}_advanced_search"].input_schema["required"] == ["model", "domain"]


# -- advanced_search -----------------------------------------------------------------------------


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_advanced_search(mcp_client, search_key, slug, data, transport, mode):
    async with mcp_client(transport, mode, key=search_key) as client:
        page = data_of(await client.call_tool(f"{slug}_advanced_search", {
            "model": "res.partner", "domain": marked(data, [["city", "=", "Brussels"]]),
            "fields": ["name", "city"], "order": "name", "limit": 2}))
    assert page["total"] == 3 and page["count"] == 2 and page["has_more"] is True and page["next_offset"] == 2
    assert [r["name"] for r in page["records"]] == ["Acme Corporation", "Globex Industries"]


async def test_advanced_search_pages_and_text(search, data):
    last = data_of(await search("advanced_search", model="res.partner", domain=marked(data), fields=["name"],
                                order="color", limit=3, offset=6))
    assert [r["name"] for r in last["records"]] == ["Ada Lovelace"] and last["has_more"] is False
    assert last["total"] == 7 and last["next_offset"] is None
    text = text_of(await search("advanced_search", model="res.partner", domain=marked(data, [["is_company", "=", True]]),
                                fields=["name", "city"], order="name", format="text"))
    assert "Acme Logistics" in text and "Antwerp" in text and "Marie Curie" not in text


async def test_advanced_search_requires_a_domain(search):
    text = error_of(await search("advanced_search", model="res.partner"))
    assert text.startswith("invalid input") and "domain: required argument is missing" in text


# -- aggregation ---------------------------------------------------------------------------------


async def test_aggregation_groupby_and_sum(search, data):
    result = data_of(await search("aggregation", model="res.partner", domain=marked(data),
                                  groupby=["is_company"], fields=["color:sum", "color:max"]))
    rows = {r["is_company"]: r for r in result["rows"]}
    assert rows[True]["__count"] == 3 and rows[True]["color:sum"] == 1 + 2 + 3 and rows[True]["color:max"] == 3
    assert rows[False]["__count"] == 4 and rows[False]["color:sum"] == 4 + 5 + 6 + 7
    assert result["aggregates"] == ["color:sum", "color:max", "__count"]


async def test_aggregation_order_limit_and_totals(search, data):
    result = data_of(await search("aggregation", model="res.partner", domain=marked(data), groupby=["city"],
                                  order="__count desc", limit=1))
    assert result["rows"] == [{"city": "Brussels", "__count": 3}] and result["has_more"] is True
    totals = data_of(await search("aggregation", model="res.partner", domain=marked(data), fields=["color:avg"]))
    assert totals["rows"] == [{"color:avg": 4.0, "__count": 7}]


async def test_aggregation_formats(search, data):
    table = text_of(await search("aggregation", model="res.partner", domain=marked(data), groupby=["is_company"],
                                 order="is_company", format="table"))
    assert "| is_company | __count |" in table
    csv_text = text_of(await search("aggregation", model="res.partner", domain=marked(data), groupby=["city"],
                                    fields=["color:sum"], order="city", format="csv"))
    # the CSV is the data between the untrusted-data tags of the result's text
    rows = list(csv.DictReader(io.StringIO(re.search(r"<untrusted-data-\w+>\n(.*)\n</untrusted", csv_text,
                                                     re.S).group(1))))
    assert {r["city"]: (r["color:sum"], r["__count"]) for r in rows} == {
        "Antwerp": ("2", "1"), "Brussels": ("9", "3"), "Ghent": ("10", "2"), "": ("7", "1")}


async def test_aggregation_presets(search, admin, data):
    states = data_of(await search("aggregation", model="ir.module.module", preset="count_by_state"))
    by_state = {r["state"]: r["__count"] for r in states["rows"]}
    installed = len(admin.search_read("ir.module.module", [("state", "=", "installed")], ["id"]))
    assert by_state["installed"] == installed and installed >= 3
    dates = data_of(await search("aggregation", model="res.partner", domain=marked(data), preset="count_by_date",
                                 granularity="year"))
    year = str(datetime.datetime.utcnow().year)
    assert dates["groupby"] == ["create_date:year"] and dates["rows"] == [{"create_date:year": year, "__count": 7}]
    assert "no 'state' field" in error_of(await search("aggregation", model="res.partner", preset="count_by_state"))


@pytest.mark.parametrize(("args", "words"), [
    ({"fields": ["name:sum"]}, "sum needs a numeric field"),
    ({"fields": ["color:median"]}, "unknown aggregate function"),
    ({"groupby": ["no_field"]}, "unknown field 'no_field'"),
    ({"groupby": ["city:month"]}, "a granularity needs a date field"),
    ({"groupby": ["city"], "order": "city; DROP TABLE res_partner"}, "order"),
    ({"groupby": ["city"], "order": "email desc"}, "neither a groupby nor an aggregate"),
    ({"groupby": ["city"], "preset": "count_by_date"}, "either preset or groupby"),
    ({"format": "xml"}, "format"),
    ({"limit": 5000}, "limit"),
])
async def test_aggregation_bad_input(search, args, words):
    text = error_of(await search("aggregation", model="res.partner", **args))
    assert text.startswith("invalid input") and words in text, text


# -- distinct_field_values -------------------------------------------------------------------------


async def test_distinct_field_values(search, data):
    result = data_of(await search("distinct_field_values", model="res.partner", domain=marked(data),
                                  fields=["city", "is_company"]))
    city = result["fields"]["city"]
    assert city["values"][0] == {"value": "Brussels", "count": 3}
    assert {v["value"]: v["count"] for v in city["values"]} == {"Brussels": 3, "Ghent": 2, "Antwerp": 1, None: 1}
    assert {v["value"]: v["count"] for v in result["fields"]["is_company"]["values"]} == {True: 3, False: 4}
    assert result["fields"]["is_company"]["distinct_count"] == 2 and city["has_more"] is False


async def test_distinct_field_values_limit_and_errors(search, data):
    limited = data_of(await search("distinct_field_values", model="res.partner", domain=marked(data),
                                   fields=["color"], limit=2))
    color = limited["fields"]["color"]
    assert len(color["values"]) == 2 and color["has_more"] is True and color["distinct_count"] == 7
    assert "unknown field 'nope'" in error_of(await search("distinct_field_values", model="res.partner",
                                                           fields=["nope"]))
    assert "fields" in error_of(await search("distinct_field_values", model="res.partner", fields=[]))


# -- fuzzy_search ---------------------------------------------------------------------------------


async def test_fuzzy_search_finds_typos(search, data):
    result = data_of(await search("fuzzy_search", model="res.partner", query="Acme Corporaton",
                                  domain=marked(data)))
    assert result["results"][0]["id"] == data["ids"]["Acme Corporation"]
    assert 0.9 <= result["results"][0]["score"] < 1
    assert all(r["score"] >= 0.6 for r in result["results"])
    assert [r["score"] for r in result["results"]] == sorted((r["score"] for r in result["results"]), reverse=True)


async def test_fuzzy_search_accents_fields_and_min_score(search, data):
    accents = data_of(await search("fuzzy_search", model="res.partner", query="jose muller", domain=marked(data)))
    assert accents["results"][0]["id"] == data["ids"]["José Müller"]
    by_email = data_of(await search("fuzzy_search", model="res.partner", query="globex",
                                    search_fields=["name", "email"], domain=marked(data)))
    assert by_email["results"][0]["id"] == data["ids"]["Globex Industries"]
    strict = data_of(await search("fuzzy_search", model="res.partner", query="Acme", min_score=0.99,
                                  domain=marked(data)))
    loose = data_of(await search("fuzzy_search", model="res.partner", query="Acme", min_score=0.3,
                                 domain=marked(data), limit=2))
    assert strict["results"] == [] or all(r["score"] >= 0.99 for r in strict["results"])
    assert len(loose["results"]) == 2 and loose["matches"] >= 2


@pytest.mark.parametrize(("args", "words"), [
    ({"query": "x", "search_fields": ["is_company"]}, "not text"),
    ({"query": "x", "search_fields": ["nope"]}, "nope"),
    ({"query": "!!!"}, "no letters or digits"),
    ({"query": ""}, "query"),
    ({"query": "x", "min_score": 1.5}, "min_score"),
])
async def test_fuzzy_search_bad_input(search, args, words):
    text = error_of(await search("fuzzy_search", model="res.partner", **args))
    assert text.startswith("invalid input") and words in text, text


# -- common bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", sorted(SEARCH_TOOLS))
async def test_unknown_model_and_malformed_domain(search, tool):
    base = {"advanced_search": {"domain": []}, "aggregation": {}, "distinct_field_values": {"fields": ["name"]},
            "fuzzy_search": {"query": "x"}}[tool]
    unknown = error_of(await search(tool, model="no.such.model", **base))
    assert "unknown model 'no.such.model'" in unknown
    bad_domain = error_of(await search(tool, model="res.partner", **{**base, "domain": [["name", "like"]]}))
    assert bad_domain.startswith("invalid input") and "domain" in bad_domain
    protected = error_of(await search(tool, model="ocore.mcp.audit.log", **base))
    assert protected.startswith("permission denied")


async def test_search_tools_respect_the_model_allowlist(mcp_client, make_key, slug, data):
    key = make_key(categories=["search"], models=["res.partner"])
    async with mcp_client("stream", MODERN, key=key) as client:
        ok = data_of(await client.call_tool(f"{slug}_aggregation", {"model": "res.partner", "domain": marked(data)}))
        assert ok["rows"][0]["__count"] == 7
        refused = error_of(await client.call_tool(f"{slug}_aggregation", {"model": "res.users"}))
        assert "not in the API key's model allowlist" in refused
