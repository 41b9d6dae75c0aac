"""CSV export and import end to end through the official SDK client against a real server."""

from __future__ import annotations

import csv
import io
import secrets

import pytest
from mcp_helpers import data_of, error_of, list_all_tools

pytestmark = pytest.mark.anyio


async def call(client, slug, tool, **args):
    return await client.call_tool(f"{slug}_{tool}", args)


def rows_of(text):
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture(scope="module")
def tag():
    return f"E2ECSV{secrets.token_hex(3).upper()}"


@pytest.fixture(scope="module")
def partners(admin, tag):
    ids = []
    for i in range(7):
        ids.append(admin.create("res.partner", {
            "name": f"{tag} {i}", "ref": tag, "email": f"csv{i}@example.com",
            "function": "=cmd|' /C calc'!A0" if i == 0 else "Buyer",
        }))
    return ids


async def test_csv_tools_use_the_orm_category(mcp_client, slug, make_key, tag, partners):
    orm_only = make_key(categories=["orm"])
    async with mcp_client(key=orm_only) as client:
        names = {t.name for t in await list_all_tools(client)}
        assert {f"{slug}_export_csv", f"{slug}_import_csv"} <= names
        data = data_of(await call(client, slug, "export_csv", model="res.partner", domain=[["ref", "=", tag]],
                                  fields=["name"]))
        assert data["count"] == 7


async def test_export_csv(mcp_client, slug, tag, partners):
    async with mcp_client() as client:
        data = data_of(await call(client, slug, "export_csv", model="res.partner", domain=[["ref", "=", tag]],
                                  fields=["name", "email", "function"], order="name"))
        rows = rows_of(data["csv"])
        assert rows[0] == ["Name", "Email", "Job Position"]
        assert rows[1] == [f"{tag} 0", "csv0@example.com", "'=cmd|' /C calc'!A0"]  # formula neutralised
        assert len(rows) == 8 and data["neutralised_cells"] == 1
        page = data_of(await call(client, slug, "export_csv", model="res.partner", domain=[["ref", "=", tag]],
                                  fields=["name"], limit=3, offset=3, order="name", header="name"))
        assert rows_of(page["csv"]) == [["name"], [f"{tag} 3"], [f"{tag} 4"], [f"{tag} 5"]]
        assert (page["total"], page["has_more"], page["next_offset"]) == (7, True, 6)
        smart = data_of(await call(client, slug, "export_csv", model="res.partner", domain=[["ref", "=", tag]]))
        assert "name" in [c["name"] for c in smart["columns"]]
        assert "less than or equal to 5000" in error_of(await call(client, slug, "export_csv", model="res.partner",
                                                                   limit=5001))
        assert "cannot be exported" in error_of(await call(client, slug, "export_csv", model="res.partner",
                                                           fields=["child_ids"]))


async def test_import_csv_batches_errors_and_round_trip(mcp_client, slug, admin, tag, partners):
    imported_tag = tag + "I"
    lines = ["Name,Reference,Job Position,type"]
    for i in range(1, 231):
        lines.append(f"Imported {i},{imported_tag},=HYPERLINK(\"x\"),{'wrong' if i == 120 else 'contact'}")
    async with mcp_client() as client:
        report = data_of(await call(client, slug, "import_csv", model="res.partner", csv_content="\n".join(lines)))
        assert [b["status"] for b in report["batches"]] == ["imported", "failed", "imported"]
        assert report["imported"] == 130  # rows 1-100 and 201-230
        assert report["errors"][0]["row"] == 120 and report["errors"][0]["field"] == "type"
        assert report["failed_rows"] == list(range(101, 201))
        assert len(report["neutralised_cells"]) == 100  # the first 100 of the 230 formula cells are listed
        stored = admin.search_read("res.partner", [("ref", "=", imported_tag)], ["function"], limit=1)
        assert stored[0]["function"] == "'=HYPERLINK(\"x\")"
        assert admin.call("res.partner", "search_count", [("ref", "=", imported_tag)]) == 130

        # an export imports back (labels as headers), with a field_mapping for a renamed column
        exported = data_of(await call(client, slug, "export_csv", model="res.partner", domain=[["ref", "=", tag]],
                                      fields=["name", "email"], order="name", limit=2))
        content = exported["csv"].replace(tag, tag + "COPY").replace("Email", "Mail")
        report = data_of(await call(client, slug, "import_csv", model="res.partner", csv_content=content,
                                    field_mapping={"Mail": "email"}))
        assert report["imported"] == 2
        copies = admin.search_read("res.partner", [("name", "like", tag + "COPY")], ["email"], order="name")
        assert [c["email"] for c in copies] == ["csv0@example.com", "csv1@example.com"]

        preview = data_of(await call(client, slug, "import_csv", model="res.partner",
                                     csv_content=f"name,ref\nDry {tag},{tag}D", dry_run=True))
        assert preview["would_return"]["imported"] == 1
        assert admin.call("res.partner", "search_count", [("ref", "=", tag + "D")]) == 0


async def test_import_csv_refusals(mcp_client, slug, admin, make_key, tag):
    too_many = "name\n" + "\n".join(f"{tag} many {i}" for i in range(1001))
    async with mcp_client() as client:
        assert "max 1000 per call" in error_of(await call(client, slug, "import_csv", model="res.partner",
                                                          csv_content=too_many))
        text = error_of(await call(client, slug, "import_csv", model="res.partner", csv_content="nam,email\nx,y"))
        assert "'nam' is not a field of res.partner" in text
        assert "are not CSV headers" in error_of(await call(client, slug, "import_csv", model="res.partner",
                                                            csv_content="name\nx", field_mapping={"Nom": "name"}))
        assert "nothing was imported" in error_of(await call(client, slug, "import_csv", model="res.partner",
                                                             csv_content="name,type\nx,wrong"))
        with admin.params(write_enabled="0"):
            assert "production guard" in error_of(await call(client, slug, "import_csv", model="res.partner",
                                                             csv_content="name\nx"))
    async with mcp_client(key=make_key(read_only=True)) as client:
        assert "read-only" in error_of(await call(client, slug, "import_csv", model="res.partner",
                                                  csv_content="name\nx"))
    assert admin.call("res.partner", "search_count", [("name", "like", f"{tag} many")]) == 0
