"""Module tools end to end: scaffold a module, install, upgrade and uninstall it through the SDK client,
and check that the very next call (a new HTTP request, in prefork possibly another worker) sees the new
registry. The install/upgrade/uninstall operations are real here: they commit and reload the registry."""

from __future__ import annotations

import secrets
import xmlrpc.client

import pytest
from harness import odoo_series
from mcp_helpers import data_of, error_of, list_all_tools

S = odoo_series()  # module versions are the series + the manifest's version

pytestmark = pytest.mark.anyio

MODULE_TOOLS = {
    "list_modules": "read", "install_module": "write", "upgrade_module": "write", "uninstall_module": "destructive",
    "module_drift": "read", "module_dependencies": "read", "module_categories": "read",
    "check_uninstall_deps": "read", "module_history": "read", "scaffold_module": "write",
}


async def call(client, slug, tool, **args):
    return await client.call_tool(f"{slug}_{tool}", args)


def module_row(admin, name):
    rows = admin.search_read("ir.module.module", [("name", "=", name)], ["state", "latest_version"])
    return rows[0] if rows else None


async def list_state(mcp_client, slug, name):
    """The module's state as list_modules reports it, on a new connection."""
    async with mcp_client() as client:
        rows = data_of(await call(client, slug, "list_modules", search=name))["modules"]
    return {r["name"]: r for r in rows}[name]



async def test_module_tools_listed_for_admins_only(mcp_client, slug, internal_user_key):
    async with mcp_client() as client:
        tools = {t.name: t for t in await list_all_tools(client)}
    for name, kind in MODULE_TOOLS.items():
        tool = tools[f"{slug}_{name}"]
        assert bool(tool.annotations.read_only_hint) is (kind == "read"), name  # omitted when false (MCP default)
    for name in ("install_module", "upgrade_module", "uninstall_module"):
        assert "dry_run" not in tools[f"{slug}_{name}"].input_schema["properties"]  # they commit by themselves
    assert "confirm" in tools[f"{slug}_uninstall_module"].input_schema["properties"]
    async with mcp_client(key=internal_user_key) as client:
        names = {t.name for t in await list_all_tools(client)}
        assert not {f"{slug}_{name}" for name in MODULE_TOOLS} & names
        assert "only offered to system administrators" in error_of(await call(client, slug, "list_modules"))


async def test_inspection_tools(mcp_client, slug, admin):
    async with mcp_client() as client:
        installed = data_of(await call(client, slug, "list_modules", state="installed", limit=1000))
        names = {m["name"]: m for m in installed["modules"]}
        assert names["ocore_mcp"]["installed_version"] == module_row(admin, "ocore_mcp")["latest_version"]
        assert installed["count"] == len(admin.search_read("ir.module.module", [("state", "=", "installed")],
                                                           ["id"]))
        deps = data_of(await call(client, slug, "module_dependencies", addon="ocore_mcp"))
        assert {d["name"] for d in deps["depends"]} == {"base", "base_setup", "web"}
        reverse = data_of(await call(client, slug, "module_dependencies", addon="base_setup"))
        assert "ocore_mcp" in {d["name"] for d in reverse["dependents"]}
        categories = data_of(await call(client, slug, "module_categories"))
        total = sum(c["modules"] for c in categories["categories"])
        assert total == len(admin.search_read("ir.module.module", [], ["id"]))
        drift = data_of(await call(client, slug, "module_drift"))
        assert drift["checked"] == len(admin.search_read(
            "ir.module.module", [("state", "in", ["installed", "to upgrade", "to remove"])], ["id"]))
        assert "ocore_mcp" not in {d["name"] for d in drift["drift"]}
        check = data_of(await call(client, slug, "check_uninstall_deps", module="base_setup"))
        assert "ocore_mcp" in check["modules_removed"] and "warning" in check
        refused = error_of(await call(client, slug, "uninstall_module", module="base_setup", confirm=True))
        assert "would remove ocore_mcp" in refused
        assert "not found" in error_of(await call(client, slug, "install_module", module="no_such_module_e2e"))
    assert module_row(admin, "base_setup")["state"] == "installed"


async def test_scaffold_install_upgrade_uninstall(mcp_client, make_key, slug, admin, odoo):
    name = f"e2e_scaffold_{secrets.token_hex(3)}"
    model = f"{name}.book"
    key = make_key(name=f"modules e2e {name}")
    with admin.params(files_root=str(odoo.custom_addons)):
        async with mcp_client(key=key) as client:
            models_before = data_of(await call(client, slug, "list_models", search=name))  # warms its cache
            assert models_before["models"] == []
            scaffold = data_of(await call(client, slug, "scaffold_module", name=name, title="E2E Library",
                                          model=model, fields=[{"name": "title", "type": "char", "required": True},
                                                               {"name": "pages", "type": "integer"}]))
            assert scaffold["on_addons_path"] is True and scaffold["state"] == "uninstalled"
            assert (odoo.custom_addons / name / "models" / f"{name}_book.py").is_file()
            assert module_row(admin, name)["state"] == "uninstalled"
            # module operations get at least 90 s, whatever the client asks
            installed = data_of(await call(client, slug, "install_module", module=name, timeout_seconds=3))
            assert installed["installed"] == [name] and installed["registry_reloaded"] is True
            assert installed["modules"] == [{"name": name, "state": "installed", "installed_version": f"{S}.1.0.0"}]
            # the same session's next call runs on the new registry
            rows = data_of(await call(client, slug, "list_models", search=name))["models"]
            assert [r["model"] for r in rows] == [model]
        assert module_row(admin, name) == {**module_row(admin, name), "state": "installed"}
        # a new connection (and XML-RPC, any worker) sees the model
        record_id = admin.create(model, {"title": "Dune", "pages": 412})
        async with mcp_client(key=key) as client:
            found = data_of(await call(client, slug, "search_read", model=model, fields=["title", "pages"]))
            assert found["records"] == [{"id": record_id, "title": "Dune", "pages": 412}]

            # upgrade: bump the manifest version with the file tools, see the drift, upgrade
            manifest_path = f"{name}/__manifest__.py"
            manifest = data_of(await call(client, slug, "file_read", path=manifest_path))["content"]
            assert f"'version': '{S}.1.0.0'" in manifest
            data_of(await call(client, slug, "file_write", path=manifest_path,
                               content=manifest.replace(f"{S}.1.0.0", f"{S}.1.1.0")))
            drift = {d["name"]: d for d in data_of(await call(client, slug, "module_drift"))["drift"]}
            assert drift[name] == {"name": name, "installed_version": f"{S}.1.0.0", "disk_version": f"{S}.1.1.0",
                                   "direction": "upgrade pending"}
            upgraded = data_of(await call(client, slug, "upgrade_module", module=[name]))
            assert upgraded["upgraded"] == [{"name": name, "state": "installed", "installed_version": f"{S}.1.1.0",
                                             "version_before": f"{S}.1.0.0"}]
        async with mcp_client(key=key) as client:
            drift = data_of(await call(client, slug, "module_drift"))["drift"]
            assert name not in {d["name"] for d in drift}
            assert (await list_state(mcp_client, slug, name))["installed_version"] == f"{S}.1.1.0"
            # the record survived the upgrade
            assert admin.search_read(model, [], ["title"]) == [{"id": record_id, "title": "Dune"}]

            # uninstall: confirmation first, then the model and its data are gone
            check = data_of(await call(client, slug, "check_uninstall_deps", module=name))
            assert [m["model"] for m in check["models"]] == [model]
            assert check["views_count"] == 3 and check["dependent_modules"] == []
            text = error_of(await call(client, slug, "uninstall_module", module=name))
            assert text.startswith("confirmation required")
            assert module_row(admin, name)["state"] == "installed"
            removed = data_of(await call(client, slug, "uninstall_module", module=name, confirm=True))
            assert removed["uninstalled"] == [name] and removed["registry_reloaded"] is True
            assert "unknown model" in error_of(await call(client, slug, "search_read", model=model))
        assert module_row(admin, name) == {**module_row(admin, name), "state": "uninstalled", "latest_version": False}
        with pytest.raises(xmlrpc.client.Fault):
            admin.create(model, {"title": "gone"})
        assert (await list_state(mcp_client, slug, name))["state"] == "uninstalled"

        async with mcp_client(key=key) as client:
            history = data_of(await call(client, slug, "module_history", module=name))["entries"]
        done = [(e["action"], e["source"], e["version_before"], e["version_after"], e["key"], e["user"])
                for e in history if e["status"] == "done"]
        assert done == [
            ("uninstall", "mcp", f"{S}.1.1.0", None, key.name, "admin"),
            ("upgrade", "mcp", f"{S}.1.0.0", f"{S}.1.1.0", key.name, "admin"),
            ("install", "mcp", None, f"{S}.1.0.0", key.name, "admin"),
        ]
        refused = [e for e in history if e["status"] == "refused"]
        assert [(e["action"], e["module"]) for e in refused] == [("uninstall", name)]

        # from Odoo itself (Apps menu buttons over RPC): recorded too, and seen by the next MCP call
        module_id = admin.search_read("ir.module.module", [("name", "=", name)], ["id"])[0]["id"]
        admin.call("ir.module.module", "button_immediate_install", [module_id])
        assert (await list_state(mcp_client, slug, name))["state"] == "installed"
        admin.call("ir.module.module", "button_immediate_uninstall", [module_id])
        assert (await list_state(mcp_client, slug, name))["state"] == "uninstalled"
        async with mcp_client(key=key) as client:
            odoo_events = data_of(await call(client, slug, "module_history", module=name, source="odoo"))["entries"]
        assert [(e["action"], e["user"], e["key"]) for e in odoo_events] == [
            ("uninstall", "admin", None), ("install", "admin", None)]
    events = admin.search_read("ocore.mcp.module.event", [("module", "=", name)], ["action", "source"],
                               order="id")
    assert [(e["action"], e["source"]) for e in events] == [
        ("install", "mcp"), ("upgrade", "mcp"), ("uninstall", "mcp"), ("install", "odoo"), ("uninstall", "odoo")]
