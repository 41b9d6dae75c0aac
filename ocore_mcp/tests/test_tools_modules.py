import ast
import csv
import os
import shutil
import tempfile
import time
from unittest.mock import patch

from lxml import etree

import odoo.addons
from odoo.tests import tagged

from ..lib import compat
from ..lib.deadline import CallTimeout, Deadline
from .common import McpToolCase

S = compat.series()  # the series prefixed to module versions, e.g. "18.0"


@tagged("post_install", "-at_install")
class TestModulesTools(McpToolCase):
    """Module tools that do not install anything (a TransactionCase cannot: install, upgrade and
    uninstall are covered end to end in tests/test_tools_modules_e2e.py)."""

    def setUp(self):
        super().setUp()
        self.Module = self.env["ir.module.module"]

    def test_specs(self):
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        names = ("list_modules", "install_module", "upgrade_module", "uninstall_module", "module_drift",
                 "module_dependencies", "module_categories", "check_uninstall_deps", "module_history",
                 "scaffold_module")
        for name in names:
            self.assertEqual(specs[name].category, "modules")
            self.assertTrue(specs[name].meta.admin_only, name)
        for name in ("install_module", "upgrade_module", "uninstall_module"):
            self.assertEqual(specs[name].meta.min_timeout, 90)
            self.assertTrue(specs[name].meta.commits)
            self.assertNotIn("dry_run", specs[name].input_schema["properties"])
        self.assertEqual(specs["uninstall_module"].kind, "destructive")
        self.assertEqual(specs["install_module"].kind, "write")
        self.assertEqual(specs["list_modules"].kind, "read")

    def test_list_modules(self):
        data = self.ok("list_modules", {"state": "installed", "limit": 1000})
        rows = {m["name"]: m for m in data["modules"]}
        self.assertEqual(data["count"], self.Module.search_count([("state", "=", "installed")]))
        self.assertEqual(rows["ocore_mcp"]["installed_version"], self.Module._get("ocore_mcp").latest_version)
        self.assertEqual(rows["ocore_mcp"]["author"], "oCore MCP contributors")
        self.assertEqual(rows["ocore_mcp"]["category"], "AI")
        self.assertEqual(rows["base"]["state"], "installed")
        found = self.ok("list_modules", {"search": "ocore_mc"})
        self.assertIn("ocore_mcp", [m["name"] for m in found["modules"]])
        self.assertEqual([m["name"] for m in found["modules"]], self.Module.search(
            ["|", "|", ("name", "ilike", "ocore_mc"), ("shortdesc", "ilike", "ocore_mc"),
             ("summary", "ilike", "ocore_mc")], order="name").mapped("name"))
        sales = self.ok("list_modules", {"category": "Sales", "limit": 1000})
        self.assertTrue(sales["modules"])
        self.assertTrue(all("Sales" in m["category"] for m in sales["modules"]))
        page = self.ok("list_modules", {"limit": 2, "offset": 1})
        self.assertEqual(len(page["modules"]), 2)
        self.assertEqual(page["modules"][0]["name"], self.Module.search([], order="name", limit=1, offset=1).name)
        self.fails("list_modules", {"state": "bogus"}, "state: Input should be")

    def test_admin_only(self):
        user = self.make_user("modules_user", [self.env.ref("base.group_user").id,
                                               self.env.ref("ocore_mcp.group_mcp_user").id])
        key, _s = self.keys._ocore_create_key("modules user key", user)
        for tool in ("list_modules", "install_module", "module_history"):
            self.fails(tool, {"module": "crm"} if tool == "install_module" else {},
                       "only offered to system administrators", key=key)

    def test_module_drift(self):
        base = self.ok("module_drift", {})
        self.assertEqual(base["checked"], self.Module.search_count(
            [("state", "in", ("installed", "to upgrade", "to remove"))]))
        self.assertNotIn("ocore_mcp", [d["name"] for d in base["drift"]])
        disk = compat.read_manifest("ocore_mcp")["version"]
        self.env.cr.execute("UPDATE ir_module_module SET latest_version = %s WHERE name = 'ocore_mcp'", [f"{S}.0.0.1"])
        self.env.cr.execute("UPDATE ir_module_module SET latest_version = %s WHERE name = 'base_setup'", [f"{S}.99.0"])
        self.Module.invalidate_model()
        drift = {d["name"]: d for d in self.ok("module_drift", {})["drift"]}
        self.assertEqual(drift["ocore_mcp"], {"name": "ocore_mcp", "installed_version": f"{S}.0.0.1",
                                              "disk_version": disk, "direction": "upgrade pending"})
        self.assertEqual(drift["base_setup"]["direction"], "disk older")
        # an installed module whose code is gone from the addons path
        self.env.cr.execute("UPDATE ir_module_module SET state = 'installed', latest_version = %s "
                            "WHERE name = (SELECT name FROM ir_module_module WHERE state = 'uninstalled' LIMIT 1) "
                            "RETURNING name", [f"{S}.1.0"])
        ghost = self.env.cr.fetchone()[0]
        with patch.object(compat, "read_manifest", side_effect=lambda n: None if n == ghost else {"version": "x"}):
            data = self.ok("module_drift", {})
        self.assertEqual(data["missing_on_disk"], [{"name": ghost, "installed_version": f"{S}.1.0"}])
        # a module directory the module list does not know yet
        root = tempfile.mkdtemp(prefix="ocore_drift_")
        self.addCleanup(shutil.rmtree, root, True)
        os.makedirs(os.path.join(root, "ocore_drift_new"))
        with open(os.path.join(root, "ocore_drift_new", "__manifest__.py"), "w") as fh:
            fh.write("{'name': 'new'}\n")
        with patch.object(odoo.addons, "__path__", [*odoo.addons.__path__, root]):
            data = self.ok("module_drift", {})
        self.assertEqual(data["not_in_module_list"], ["ocore_drift_new"])
        self.assertIn("install_module refreshes the module list", data["hint"])

    def test_module_dependencies(self):
        data = self.ok("module_dependencies", {"addon": "ocore_mcp"})
        self.assertEqual({d["name"] for d in data["depends"]}, {"base", "base_setup", "web"})
        self.assertTrue(all(d["state"] == "installed" for d in data["depends"]))
        reverse = self.ok("module_dependencies", {"addon": "base_setup"})
        self.assertIn("ocore_mcp", [d["name"] for d in reverse["dependents"]])
        deep = self.ok("module_dependencies", {"addon": "base_setup", "transitive": True})
        depth = {d["name"]: d["depth"] for d in deep["depends"]}
        self.assertEqual(depth["web"], 1)
        self.assertEqual(depth["base"], 1)
        graph = compat.installed_dependencies_graph(self.env, ["base_setup"])
        expected_all = {name for deps in graph.values() for name in deps}
        self.assertEqual(set(depth), expected_all)
        self.fails("module_dependencies", {"addon": "no_such_module"}, "not found: no module named no_such_module")
        self.fails("module_dependencies", {"addon": "bad name!"}, "not a valid identifier")

    def test_module_categories(self):
        data = self.ok("module_categories", {})
        rows = {r["name"]: r for r in data["categories"] if r["parent"] is None}
        sales = self.env.ref("base.module_category_sales_sales")
        row = next(r for r in data["categories"] if r["id"] == sales.id)
        self.assertEqual(row["modules"], self.Module.search_count([("category_id", "=", sales.id)]))
        self.assertEqual(row["installed"], self.Module.search_count(
            [("category_id", "=", sales.id), ("state", "=", "installed")]))
        self.assertTrue(rows)
        self.assertTrue(all(r["modules"] > 0 for r in data["categories"]))
        with_empty = self.ok("module_categories", {"include_empty": True})
        self.assertGreaterEqual(with_empty["count"], data["count"])

    def test_check_uninstall_deps(self):
        data = self.ok("check_uninstall_deps", {"module": "ocore_mcp"})
        models = {m["model"] for m in data["models"]}
        self.assertIn("ocore.mcp.key", models)
        self.assertIn("ocore.mcp.module.event", models)
        self.assertNotIn("res.partner", models)
        self.assertIn("ocore.mcp.audit.log.list", {v["name"] for v in data["views"]})
        # the views of every module that goes with it (e.g. ocore_mcp_knowledge when installed)
        self.assertIn("ocore_mcp", data["modules_removed"])
        self.assertEqual(data["views_count"], self.env["ir.model.data"].search_count(
            [("module", "in", data["modules_removed"]), ("model", "=", "ir.ui.view")]))
        self.assertIn("warning", data)
        # fields ocore_mcp adds to other models (res.users, res.config.settings) are listed apart
        self.assertIn(("res.config.settings", "ocore_mcp_files_root"),
                      {(f["model"], f["field"]) for f in data["fields_on_other_models"]})
        base_setup = self.ok("check_uninstall_deps", {"module": "base_setup"})
        self.assertIn("ocore_mcp", [m["name"] for m in base_setup["dependent_modules"]])
        self.assertIn("ocore_mcp", base_setup["modules_removed"])
        crm = self.Module.search([("state", "=", "uninstalled")], limit=1)
        idle = self.ok("check_uninstall_deps", {"module": crm.name})
        self.assertFalse(idle["installed"])
        self.assertIn("nothing would be removed", idle["note"])

    def test_deadline_shield(self):
        """Module operations run shielded from the call deadline, which is re-armed after."""
        survived = False
        with self.assertRaises(CallTimeout), Deadline(0.3) as deadline:
            with deadline.shield(grace=0.3):
                for _ in range(12):
                    time.sleep(0.05)  # past the deadline: not interrupted
                survived = True
            for _ in range(100):
                time.sleep(0.05)  # re-armed: interrupted
        self.assertTrue(survived)

    def test_install_upgrade_uninstall_refusals(self):
        self.fails("install_module", {"module": "no_such_module"}, "not found: no module named no_such_module")
        already = self.ok("install_module", {"module": ["base", "ocore_mcp"]})
        self.assertEqual(already, {"requested": ["base", "ocore_mcp"], "already_installed": ["base", "ocore_mcp"],
                                   "installed": [], "registry_reloaded": False})
        uninstallable = self.Module.search([("state", "=", "uninstalled")], limit=1)
        uninstallable.state = "uninstallable"
        self.fails("install_module", {"module": uninstallable.name}, "not installable on this server")
        self.fails("install_module", {"module": "crm", "dry_run": True}, "does not support dry_run")
        self.fails("install_module", {"module": []}, "give at least one module name")
        self.fails("upgrade_module", {"module": uninstallable.name}, "not installed, so cannot be upgraded")
        self.fails("uninstall_module", {"module": "base_setup"}, "confirmation required")
        self.fails("uninstall_module", {"module": "base_setup", "confirm": True}, "would remove ocore_mcp")
        self.fails("uninstall_module", {"module": "ocore_mcp", "confirm": True}, "would remove ocore_mcp")
        self.fails("uninstall_module", {"module": uninstallable.name, "confirm": True}, "is not installed")
        ro_key, _s = self.keys._ocore_create_key("modules ro", self.admin, read_only=True)
        self.fails("install_module", {"module": "crm"}, "write operations blocked", key=ro_key)
        self.fails("upgrade_module", {"module": "base_setup"}, "write operations blocked", write_enabled=False)
        # module operations get at least 90 s whatever the client asks
        self.call("install_module", {"module": "base", "timeout_seconds": 5})
        row = self.env["ocore.mcp.audit.log"].search([("tool", "=", "install_module")], limit=1, order="id desc")
        self.assertEqual(row.status, "success")
        spec = self.env["ocore.mcp.toolset"]._ocore_tool_specs()["install_module"]
        from ..service.policy import effective_timeout

        self.assertEqual(effective_timeout(spec, 5, self.settings), 90)

    def test_event_recording_and_history(self):
        installed = self.Module._get("base_setup")
        Module = self.Module.with_context(ocore_mcp_source="mcp", ocore_mcp_key_id=self.key.id)
        events = Module._ocore_record_module_events(
            {"base_setup": ("to upgrade", f"{S}.0.9"), "ocore_mcp": ("to install", False),
             "crm": ("to install", False)},  # crm stayed uninstalled: not recorded
            {"base_setup"},
        )
        self.assertEqual(sorted(events.mapped("module")), ["base_setup", "ocore_mcp"])
        upgrade = events.filtered(lambda e: e.module == "base_setup")
        self.assertEqual((upgrade.action, upgrade.version_before, upgrade.version_after, upgrade.source,
                          upgrade.key_id, upgrade.requested), ("upgrade", f"{S}.0.9", installed.latest_version,
                                                               "mcp", self.key, True))
        self.assertFalse(events.filtered(lambda e: e.module == "ocore_mcp").requested)
        odoo_event = self.Module._ocore_record_module_events({"web": ("to upgrade", f"{S}.1.0")}, {"web"})
        self.assertEqual((odoo_event.source, odoo_event.key_id.id), ("odoo", False))
        # a failed MCP attempt is part of the history too
        self.fails("install_module", {"module": "no_such_module"}, "not found")
        history = self.ok("module_history", {"limit": 500})
        entries = history["entries"]
        done = [e for e in entries if e["status"] == "done" and e["source"] != "database"]
        self.assertEqual({(e["module"], e["action"], e["source"]) for e in done},
                         {("base_setup", "upgrade", "mcp"), ("ocore_mcp", "install", "mcp"),
                          ("web", "upgrade", "odoo")})
        self.assertEqual(next(e for e in done if e["module"] == "base_setup")["key"], self.KEY_NAME)
        self.assertEqual(next(e for e in done if e["module"] == "web")["user"], self.env.user.login)
        # a refusal raised by the tool (unknown module) is "refused", like the policy's refusals
        failed = [e for e in entries if e["status"] in ("error", "refused")]
        self.assertEqual(failed[0]["module"], "no_such_module")
        self.assertEqual(failed[0]["action"], "install")
        self.assertIn("not found", failed[0]["error"])
        only = self.ok("module_history", {"module": "base_setup"})
        self.assertEqual({e["module"] for e in only["entries"]}, {"base_setup"})
        mcp_only = self.ok("module_history", {"source": "mcp", "limit": 500})
        self.assertEqual({e["source"] for e in mcp_only["entries"]}, {"mcp"})
        self.assertEqual(self.ok("module_history", {"source": "database"})["entries"], [])
        limited = self.ok("module_history", {"limit": 2})
        self.assertEqual((len(limited["entries"]), limited["truncated"]), (2, True))
        self.assertGreaterEqual(limited["entries"][0]["date"], limited["entries"][1]["date"])


    def test_changes_seen_on_the_database(self):
        """Installs, upgrades and uninstalls made without the immediate buttons are found by comparing
        the installed modules with the last snapshot (done when a registry loads)."""
        Event = self.env["ocore.mcp.module.event"]
        Event._ocore_save_snapshot()
        self.assertFalse(Event._ocore_sync_database())  # nothing changed
        uninstalled = self.Module.search([("state", "=", "uninstalled")], limit=1)
        base_setup_version = self.Module._get("base_setup").latest_version
        web_tour_version = self.Module._get("web_tour").latest_version
        cr = self.env.cr
        cr.execute("UPDATE ir_module_module SET state = 'installed', latest_version = %s WHERE id = %s",
                   [f"{S}.1.0", uninstalled.id])
        cr.execute("UPDATE ir_module_module SET latest_version = %s WHERE name = 'base_setup'", [f"{S}.9.9"])
        cr.execute("UPDATE ir_module_module SET state = 'uninstalled' WHERE name = 'web_tour'")
        self.Module.invalidate_model()
        events = Event._ocore_sync_database()
        self.assertEqual(sorted((e.module, e.action, e.version_before or None, e.version_after or None)
                                for e in events), sorted([
            (uninstalled.name, "install", None, f"{S}.1.0"),
            ("base_setup", "upgrade", base_setup_version, f"{S}.9.9"),
            ("web_tour", "uninstall", web_tour_version, None),
        ]))
        self.assertEqual(set(events.mapped("source")), {"database"})
        self.assertFalse(events.user_id)
        self.assertFalse(Event._ocore_sync_database())  # the snapshot moved on
        history = self.ok("module_history", {"source": "database"})
        self.assertEqual({e["module"] for e in history["entries"]}, {uninstalled.name, "base_setup", "web_tour"})
        # while an immediate operation runs, it records its own changes: the comparison waits
        Event._ocore_set_busy(True)
        cr.execute("UPDATE ir_module_module SET latest_version = %s WHERE name = 'base_setup'", [f"{S}.9.10"])
        self.Module.invalidate_model()
        self.assertFalse(Event._ocore_sync_database())
        Event._ocore_set_busy(False)
        self.assertEqual(Event._ocore_sync_database().mapped("version_after"), [f"{S}.9.10"])


@tagged("post_install", "-at_install")
class TestScaffoldModule(McpToolCase):
    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp(prefix="ocore_scaffold_")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.settings = dict(self.settings, files_root=self.root)

    def test_scaffold_files(self):
        args = {
            "name": "library_demo",
            "title": "Library <Demo>",
            "depends": ["base", "web"],
            "model": "library.book",
            "fields": [
                {"name": "title", "type": "char", "required": True},
                {"name": "pages", "type": "integer", "string": "Pages"},
                {"name": "state", "type": "selection", "selection": [["draft", "Draft"], ["done", "Done"]]},
                {"name": "author_id", "type": "many2one", "comodel": "res.partner"},
                {"name": "notes", "type": "html"},
            ],
        }
        dry = self.ok("scaffold_module", {**args, "dry_run": True})["would_return"]
        self.assertIn("library_demo/models/library_book.py", dry["files"])
        self.assertFalse(os.path.exists(os.path.join(self.root, "library_demo")))
        data = self.ok("scaffold_module", args)
        self.assertFalse(data["on_addons_path"])
        self.assertIn("not on the server's addons_path", data["next_step"])
        base = os.path.join(self.root, "library_demo")
        self.assertEqual(sorted(data["files"]), sorted(
            f"library_demo/{f}" for f in ("__init__.py", "__manifest__.py", "models/__init__.py",
                                          "models/library_book.py", "views/library_book_views.xml",
                                          "security/ir.model.access.csv")))
        with open(os.path.join(base, "__manifest__.py")) as fh:
            manifest = ast.literal_eval(fh.read())
        self.assertEqual(manifest["name"], "Library <Demo>")
        self.assertEqual(manifest["version"], f"{S}.1.0.0")
        self.assertEqual(manifest["depends"], ["base", "web"])
        self.assertEqual(manifest["data"], ["security/ir.model.access.csv", "views/library_book_views.xml"])
        with open(os.path.join(base, "models/library_book.py")) as fh:
            source = fh.read()
        compile(source, "library_book.py", "exec")
        self.assertIn("_name = 'library.book'", source)
        self.assertIn("author_id = fields.Many2one('res.partner', string='Author Id')", source)
        self.assertIn("_rec_name = 'title'", source)
        tree = etree.parse(os.path.join(base, "views/library_book_views.xml"))
        self.assertEqual(tree.xpath("//menuitem[@id='menu_library_demo_root']/@name"), ["Library <Demo>"])
        self.assertEqual(tree.xpath(f"//{compat.list_view_tag()}/field/@name"), ["title", "pages", "state", "author_id"])
        with open(os.path.join(base, "security/ir.model.access.csv")) as fh:
            rows = list(csv.DictReader(fh))
        self.assertEqual(rows[0]["model_id:id"], "model_library_book")
        self.fails("scaffold_module", args, "library_demo already exists")

    def test_scaffold_refusals(self):
        self.fails("scaffold_module", {"name": "Bad-Name"}, "not a valid identifier")
        self.fails("scaffold_module", {"name": "bad__x", "model": "nodots"}, "use dotted lowercase names")
        self.fails("scaffold_module", {"name": "x_new", "model": "res.partner"}, "already exists on this database")
        self.fails("scaffold_module", {"name": "base"}, "a module named base already exists")
        self.fails("scaffold_module", {"name": "x_new", "depends": ["no_such_dep"]}, "no module named no_such_dep")
        self.fails("scaffold_module", {"name": "x_new", "fields": [{"name": "a", "type": "blob"}]},
                   "fields.0.type 'blob'")
        self.fails("scaffold_module", {"name": "x_new", "fields": [{"name": "id"}]}, "not a valid new field name")
        self.fails("scaffold_module", {"name": "x_new", "fields": [{"name": "p", "type": "many2one"}]},
                   "comodel None")
        self.fails("scaffold_module", {"name": "x_new", "path": "../up"}, "contains '..'")
        self.fails("scaffold_module", {"name": "x_new"}, "not configured", files_root="")
        self.assertEqual(os.listdir(self.root), [])

    def test_scaffold_on_addons_path_is_listed(self):
        """With the root on the addons path, update_list() finds the new module, ready to install."""
        with patch.object(odoo.addons, "__path__", [*odoo.addons.__path__, self.root]):
            data = self.ok("scaffold_module", {"name": "ocore_scaffold_probe", "summary": "Probe"})
            self.assertTrue(data["on_addons_path"])
            self.assertEqual(data["state"], "uninstalled")
            self.assertEqual(data["next_step"], "install_module module=ocore_scaffold_probe")
            record = self.env["ir.module.module"]._get("ocore_scaffold_probe")
            self.assertEqual((record.state, record.summary), ("uninstalled", "Probe"))
            self.assertEqual(record.dependencies_id.mapped("name"), ["base"])
        compat.clear_manifest_cache()
