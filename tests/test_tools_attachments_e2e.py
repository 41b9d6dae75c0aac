"""Attachment tools end to end through the official SDK client against a real server."""

from __future__ import annotations

import base64
import os
import secrets

import pytest
from mcp_helpers import data_of, error_of, list_all_tools

pytestmark = pytest.mark.anyio

MAX_BYTES = 10 * 1024 * 1024


async def call(client, slug, tool, **args):
    return await client.call_tool(f"{slug}_{tool}", args)


@pytest.fixture(scope="module")
def partner(admin):
    return admin.create("res.partner", {"name": f"Attach e2e {secrets.token_hex(3)}"})


@pytest.fixture(scope="module")
def employee_key(admin):
    uid = admin.create_user(f"att_e2e_{secrets.token_hex(3)}")
    return admin.create_key(name="attachments e2e employee", user_id=uid)


async def test_attachment_tools_are_listed(mcp_client, slug):
    async with mcp_client() as client:
        tools = {t.name: t for t in await list_all_tools(client)}
    for name in ("list_attachments", "upload_attachment", "download_attachment", "delete_attachment"):
        assert f"{slug}_{name}" in tools
    assert "confirm" in tools[f"{slug}_delete_attachment"].input_schema["properties"]


async def test_upload_list_download_delete(mcp_client, slug, admin, partner):
    content = os.urandom(300_000)
    async with mcp_client() as client:
        up = data_of(await call(client, slug, "upload_attachment", model="res.partner", res_id=partner,
                                name="random.bin", data_base64=base64.b64encode(content).decode(),
                                mimetype="application/octet-stream"))
        att = up["attachment"]["id"]
        data_of(await call(client, slug, "upload_attachment", model="res.partner", res_id=partner, name="note.txt",
                           data_base64=base64.b64encode(b"hello").decode()))
        listed = data_of(await call(client, slug, "list_attachments", model="res.partner", res_id=partner))
        assert {a["name"] for a in listed["attachments"]} == {"random.bin", "note.txt"}
        only_text = data_of(await call(client, slug, "list_attachments", model="res.partner", res_id=partner,
                                       mimetype="text/"))
        assert [a["name"] for a in only_text["attachments"]] == ["note.txt"]
        # 300 KB: more than the default 50 KB response size, less than the download's own floor
        down = data_of(await call(client, slug, "download_attachment", attachment_id=att))
        assert base64.b64decode(down["data_base64"]) == content
        assert "larger max_response_size" in error_of(await call(client, slug, "download_attachment",
                                                                 attachment_id=att, max_response_size=100))
        assert "confirm: true" in error_of(await call(client, slug, "delete_attachment", attachment_id=att))
        data_of(await call(client, slug, "delete_attachment", attachment_id=att, confirm=True))
        assert "no attachment" in error_of(await call(client, slug, "download_attachment", attachment_id=att))
    assert not admin.search_read("ir.attachment", [("id", "=", att)], ["id"])


async def test_upload_limits_and_guards(mcp_client, slug, admin, partner, make_key):
    too_big = base64.b64encode(b"\0" * (MAX_BYTES + 1)).decode()
    async with mcp_client() as client:
        text = error_of(await call(client, slug, "upload_attachment", model="res.partner", res_id=partner,
                                   name="big.bin", data_base64=too_big))
        assert "over 10.0 MB" in text
        assert "not valid base64" in error_of(await call(client, slug, "upload_attachment", model="res.partner",
                                                         res_id=partner, name="x", data_base64="###"))
        with admin.params(write_enabled="0"):
            assert "production guard" in error_of(await call(client, slug, "upload_attachment",
                                                             model="res.partner", res_id=partner, name="x",
                                                             data_base64="eA=="))
    async with mcp_client(key=make_key(read_only=True)) as client:
        assert "read-only" in error_of(await call(client, slug, "upload_attachment", model="res.partner",
                                                  res_id=partner, name="x", data_base64="eA=="))
    assert not admin.search_read("ir.attachment", [("res_model", "=", "res.partner"), ("res_id", "=", partner),
                                                   ("name", "in", ["big.bin", "x"])], ["id"])


async def test_download_runs_as_the_key_owner(mcp_client, slug, admin, partner, employee_key):
    # an attachment on a record the employee may not read (a system parameter)
    param = admin.search_read("ir.config_parameter", [("key", "=", "web.base.url")], ["id"])[0]["id"]
    hidden = admin.create("ir.attachment", {"name": "hidden.txt", "datas": base64.b64encode(b"admins only").decode(),
                                            "res_model": "ir.config_parameter", "res_id": param})
    visible = admin.create("ir.attachment", {"name": "visible.txt", "datas": base64.b64encode(b"for all").decode(),
                                             "res_model": "res.partner", "res_id": partner})
    async with mcp_client() as client:
        down = data_of(await call(client, slug, "download_attachment", attachment_id=hidden))
        assert base64.b64decode(down["data_base64"]) == b"admins only"
    async with mcp_client(key=employee_key) as client:
        assert "no attachment" in error_of(await call(client, slug, "download_attachment", attachment_id=hidden))
        down = data_of(await call(client, slug, "download_attachment", attachment_id=visible))
        assert base64.b64decode(down["data_base64"]) == b"for all"
        assert "no attachment" in error_of(await call(client, slug, "delete_attachment", attachment_id=hidden,
                                                      confirm=True))
    assert admin.search_read("ir.attachment", [("id", "=", hidden)], ["id"])
