"""File tools end to end: the official SDK client against a real server, on a real custom addons root."""

from __future__ import annotations

import base64
import os
import secrets
import shutil

import pytest
from mcp_helpers import TRANSPORT_IDS, TRANSPORTS, data_of, error_of, list_all_tools

pytestmark = pytest.mark.anyio

FILE_TOOLS = {
    "file_browse": "read", "file_read": "read", "file_write": "write", "file_create": "write",
    "file_delete": "destructive", "file_info": "read", "file_tree": "read", "file_move": "write",
    "search_in_code": "read",
}
MANIFEST = "{'name': 'E2E Addon', 'version': '1.0.0', 'depends': ['base'], 'license': 'LGPL-3'}\n"


async def call(client, slug, tool, **args):
    return await client.call_tool(f"{slug}_{tool}", args)


@pytest.fixture
def root(odoo, admin):
    """A fresh custom addons root (under the server's custom addons directory), set as ocore_mcp.files_root."""
    path = odoo.custom_addons / f"e2e_files_{secrets.token_hex(4)}"
    (path / "e2e_addon" / "models").mkdir(parents=True)
    (path / "e2e_addon" / "__manifest__.py").write_text(MANIFEST)
    (path / "e2e_addon" / "__init__.py").write_text("from . import models\n")
    (path / "e2e_addon" / "models" / "thing.py").write_text("".join(f"row {i}\n" for i in range(1, 21)))
    outside = odoo.custom_addons / f"e2e_outside_{secrets.token_hex(4)}"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    os.symlink(outside, path / "escape")
    with admin.params(files_root=str(path)):
        yield path
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(outside, ignore_errors=True)



async def test_file_tools_listed_for_admins_only(mcp_client, slug, internal_user_key, root):
    async with mcp_client() as client:
        tools = {t.name: t for t in await list_all_tools(client)}
    for name, kind in FILE_TOOLS.items():
        tool = tools[f"{slug}_{name}"]
        assert bool(tool.annotations.read_only_hint) is (kind == "read"), name  # omitted when false (MCP default)
        if kind != "read":  # writing and moving files overwrite: destructive too (file_create only creates)
            assert tool.annotations.destructive_hint is (kind == "destructive" or name in {"file_write", "file_move"})
    assert "confirm" in tools[f"{slug}_file_delete"].input_schema["properties"]
    assert "dry_run" in tools[f"{slug}_file_write"].input_schema["properties"]
    assert tools[f"{slug}_file_tree"].input_schema["properties"]["depth"]["maximum"] == 3
    async with mcp_client(key=internal_user_key) as client:
        names = {t.name for t in await list_all_tools(client)}
        assert not {f"{slug}_{name}" for name in FILE_TOOLS} & names
        assert "only offered to system administrators" in error_of(await call(client, slug, "file_browse"))


async def test_not_configured_refuses_with_the_setting_name(mcp_client, slug, admin):
    with admin.params(files_root=None):
        async with mcp_client() as client:
            text = error_of(await call(client, slug, "file_read", path="x.py"))
    assert text.startswith("not configured:")
    assert "Settings > MCP" in text and "ocore_mcp.files_root" in text


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_edit_an_addon(mcp_client, slug, root, transport, mode):
    """browse, create, read, patch, insert, info, tree, search, move and delete on the server's disk."""
    thing = root / "e2e_addon" / "models" / "thing.py"
    async with mcp_client(transport, mode) as client:
        listing = data_of(await call(client, slug, "file_browse"))
        assert listing["addons"] == ["e2e_addon"]
        assert {e["name"] for e in listing["entries"]} == {"e2e_addon"}  # the escaping symlink is not shown
        created = data_of(await call(client, slug, "file_create", path="e2e_addon/views/thing_views.xml",
                                     content="<odoo>\n</odoo>\n"))
        assert created["created_directories"] == ["e2e_addon/views"]
        assert (root / "e2e_addon/views/thing_views.xml").read_text() == "<odoo>\n</odoo>\n"
        read = data_of(await call(client, slug, "file_read", path="e2e_addon/models/thing.py",
                                  start_line=2, end_line=3))
        assert (read["content"], read["total_lines"]) == ("row 2\nrow 3\n", 20)
        patched = data_of(await call(client, slug, "file_write", path="e2e_addon/models/thing.py", mode="patch",
                                     patch="@@ -2,2 +2,2 @@\n-row 2\n+ROW TWO\n row 3\n"))
        assert (patched["lines_added"], patched["lines_removed"]) == (1, 1)
        assert thing.read_text().splitlines()[1] == "ROW TWO"
        stale = error_of(await call(client, slug, "file_write", path="e2e_addon/models/thing.py", mode="patch",
                                    patch="@@ -2,2 +2,2 @@\n-row 2\n+ROW TWO\n row 3\n"))
        assert "patch does not apply" in stale
        data_of(await call(client, slug, "file_write", path="e2e_addon/models/thing.py", mode="insert_at_line",
                           line=1, content="# header"))
        assert thing.read_text().startswith("# header\nrow 1\nROW TWO\n")
        info = data_of(await call(client, slug, "file_info", path="e2e_addon/models/thing.py"))
        assert info["size"] == thing.stat().st_size and info["type"] == "file"
        assert info["permissions"].startswith("-rw")
        assert info["git"] is None or info["git"]["status"] in ("ignored", "untracked")
        tree = data_of(await call(client, slug, "file_tree", depth=2))
        assert {e["path"] for e in tree["entries"]} == {
            "e2e_addon", "e2e_addon/__manifest__.py", "e2e_addon/__init__.py", "e2e_addon/models",
            "e2e_addon/views"}
        found = data_of(await call(client, slug, "search_in_code", pattern=r"^ROW \w+$", regex=True,
                                   case_sensitive=True, addon="e2e_addon", context_lines=1))
        assert [(m["path"], m["line"], m["before"], m["after"]) for m in found["matches"]] == [
            ("e2e_addon/models/thing.py", 3, ["row 1"], ["row 3"])]
        moved = data_of(await call(client, slug, "file_move", source="e2e_addon/models/thing.py",
                                   destination="e2e_addon/models/renamed.py"))
        assert moved["destination"] == "e2e_addon/models/renamed.py"
        assert not thing.exists() and (root / "e2e_addon/models/renamed.py").exists()
        unconfirmed = error_of(await call(client, slug, "file_delete", path="e2e_addon/models/renamed.py"))
        assert unconfirmed.startswith("confirmation required")
        assert (root / "e2e_addon/models/renamed.py").exists()
        data_of(await call(client, slug, "file_delete", path="e2e_addon/models/renamed.py", confirm=True))
        assert not (root / "e2e_addon/models/renamed.py").exists()


async def test_sandbox_refusals(mcp_client, slug, root):
    async with mcp_client() as client:
        for path, reason in (
            ("../e2e_outside/secret.txt", "contains '..'"),
            ("/etc/passwd", "is absolute"),
            ("escape/secret.txt", "resolves outside the custom addons root"),
            ("e2e_addon/\0x", "NUL byte"),
            (".git/config", "inside a .git directory"),
        ):
            text = error_of(await call(client, slug, "file_read", path=path))
            assert text.startswith("permission denied") and reason in text, text
        text = error_of(await call(client, slug, "file_create", path="escape/planted.py", content="x"))
        assert "resolves outside the custom addons root" in text
        text = error_of(await call(client, slug, "file_move", source="e2e_addon/__init__.py",
                                   destination="escape/__init__.py"))
        assert "resolves outside" in text
    outside = os.path.realpath(root / "escape")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (root / "e2e_addon/__init__.py").exists()


async def test_write_guards_and_dry_run(mcp_client, make_key, slug, admin, root):
    manifest = root / "e2e_addon" / "__manifest__.py"
    async with mcp_client() as client:
        dry = data_of(await call(client, slug, "file_write", path="e2e_addon/__manifest__.py",
                                 content="{}\n", dry_run=True))
        assert dry["dry_run"] is True and "-{'name': 'E2E Addon'" in dry["would_return"]["diff"]
        dry_delete = data_of(await call(client, slug, "file_delete", path="e2e_addon", recursive=True,
                                        dry_run=True))
        assert dry_delete["would_return"]["files_deleted"] == 3
    assert manifest.read_text() == MANIFEST
    read_only = make_key(read_only=True)
    async with mcp_client(key=read_only) as client:
        assert data_of(await call(client, slug, "file_read", path="e2e_addon/__manifest__.py"))["content"] == MANIFEST
        text = error_of(await call(client, slug, "file_write", path="e2e_addon/__manifest__.py", content="{}"))
        assert text.startswith("write operations blocked")
    with admin.params(write_enabled="0"):
        async with mcp_client() as client:
            text = error_of(await call(client, slug, "file_create", path="new.txt", content="x"))
            assert "mcp_write_enabled" in text
    assert manifest.read_text() == MANIFEST and not (root / "new.txt").exists()


async def test_read_limits_and_binary(mcp_client, slug, root):
    (root / "big.py").write_text("value = 'padding padding padding padding padding padding padding'\n" * 1400)
    (root / "logo.png").write_bytes(b"\x89PNG\0\0binary")
    async with mcp_client() as client:
        big = data_of(await call(client, slug, "file_read", path="big.py"))  # ~92 KB: above the 50 KB default
        assert not big["truncated"] and big["total_lines"] == 1400
        assert len(big["content"]) == (root / "big.py").stat().st_size
        small = data_of(await call(client, slug, "file_read", path="big.py", max_size_kb=1))
        assert small["truncated"] and small["next_start_line"] == small["end_line"] + 1
        assert "base64" in error_of(await call(client, slug, "file_read", path="logo.png"))
        raw = data_of(await call(client, slug, "file_read", path="logo.png", encoding="base64"))
        assert base64.b64decode(raw["content"]) == b"\x89PNG\0\0binary"
        created = data_of(await call(client, slug, "file_create", path="static/icon.bin", encoding="base64",
                                     content=base64.b64encode(b"\0\1\2").decode()))
        assert created["size"] == 3
    assert (root / "static/icon.bin").read_bytes() == b"\0\1\2"
