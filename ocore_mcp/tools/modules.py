"""Module tools: inspect, install, upgrade, uninstall and scaffold Odoo modules.

``ir.module.module`` is readable by system administrators only, so every tool here is
``admin_only``. Install, upgrade and uninstall use Odoo's immediate buttons, as the Apps menu
does: they commit, reload the registry (and signal the other workers) before returning, so the
next call sees the new state; they cannot be dry-run and get at least 90 s. Each of them is
recorded in ``ocore.mcp.module.event`` (see models/ir_module_module.py).
"""

import contextlib
import json
import os
import re
from typing import Annotated, Literal

from pydantic import Field

from odoo import fields, models, release

from ..lib import compat
from ..lib.tooling import mcp_tool
from ..service.policy import Refusal

ADMIN = {"admin_only": True, "model_args": ()}
MODULE_OP = {**ADMIN, "identifier_args": ("module",), "min_timeout": 90, "commits": True}
STATES = Literal["installed", "uninstalled", "to install", "to upgrade", "to remove", "uninstallable"]
INSTALLED = ("installed", "to upgrade", "to remove")
SELF = "ocore_mcp"  # the server itself: never uninstalled through itself
MODULE_TOOLS = ("install_module", "upgrade_module", "uninstall_module")
MODULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
FIELD_TYPES = {
    "char": "Char", "text": "Text", "html": "Html", "integer": "Integer", "float": "Float",
    "boolean": "Boolean", "date": "Date", "datetime": "Datetime", "selection": "Selection",
    "many2one": "Many2one",
}
LIST_LIMIT = 200  # rows per list in check_uninstall_deps


class ModulesTools(models.AbstractModel):
    _name = "ocore.mcp.tools.modules"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: modules"

    # -- helpers -----------------------------------------------------------------------

    def _ocore_names(self, module):
        names = [module] if isinstance(module, str) else list(module or [])
        names = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))
        if not names:
            raise Refusal("invalid_input", "module: give at least one module name")
        return names

    def _ocore_modules(self, names, refresh=False):
        """ir.module.module records of ``names``; refused when one is unknown (after a list refresh)."""
        Module = self.env["ir.module.module"]
        found = Module.search([("name", "in", names)])
        missing = set(names) - set(found.mapped("name"))
        if missing and refresh:
            compat.clear_manifest_cache()
            Module.update_list()
            found = Module.search([("name", "in", names)])
            missing = set(names) - set(found.mapped("name"))
        if missing:
            raise Refusal("not_found", f"no module named {', '.join(sorted(missing))} in the module list "
                          "(list_modules search=... finds names)")
        return found

    def _ocore_row(self, module):
        return {"name": module.name, "state": module.state, "installed_version": module.latest_version or None}

    def _ocore_installed_versions(self):
        self.env["ir.module.module"].flush_model()
        self.env.cr.execute("SELECT name, latest_version FROM ir_module_module WHERE state IN %s", [INSTALLED])
        return dict(self.env.cr.fetchall())

    def _ocore_immediate(self, records, button):
        """Run an immediate button (commits, reloads the registry) without a deadline interrupting it."""
        call = self._call()
        ctx = {"ocore_mcp_source": "mcp"}
        if call is not None:
            ctx["ocore_mcp_key_id"] = call.connection.key.id
        shield = call.deadline.shield() if call is not None and call.deadline else contextlib.nullcontext()
        compat.clear_manifest_cache()
        with shield:
            getattr(records.with_context(**ctx), button)()
        # the registry was replaced: read through the (reset) environment from here on
        return self.env["ir.module.module"]

    # -- inspection --------------------------------------------------------------------------

    @mcp_tool("modules", **ADMIN, title="List modules")
    def _tool_list_modules(
        self,
        state: STATES | None = None,
        category: str | None = None,
        search: str | None = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 100,
        offset: Annotated[int, Field(ge=0)] = 0,
    ):
        """Modules with state, version, category, author."""
        domain = []
        if state:
            domain.append(("state", "=", state))
        if category:
            domain.append(("category_id.name", "ilike", category))
        if search:
            domain += ["|", "|", ("name", "ilike", search), ("shortdesc", "ilike", search),
                       ("summary", "ilike", search)]
        Module = self.env["ir.module.module"].with_context(lang="en_US")
        total = Module.search_count(domain)
        rows = []
        for module in Module.search(domain, order="name", limit=limit, offset=offset):
            rows.append({
                "name": module.name,
                "title": module.shortdesc,
                "state": module.state,
                "installed_version": module.latest_version or None,
                "available_version": module.installed_version or None,
                "category": module.category_id.name or None,
                "author": module.author or None,
                "application": module.application,
                "summary": module.summary or None,
            })
        return {"count": total, "offset": offset, "modules": rows}

    @mcp_tool("modules", **ADMIN, title="Module version drift")
    def _tool_module_drift(self, include_missing: bool = True):
        """Installed modules whose version differs from their code's manifest.

        Args:
            include_missing: Also modules whose code is missing.
        """
        drift, missing, checked = [], [], 0
        for name, installed in sorted(self._ocore_installed_versions().items()):
            checked += 1
            try:
                manifest = compat.read_manifest(name)
            except (OSError, ValueError, SyntaxError) as exc:
                drift.append({"name": name, "installed_version": installed, "disk_version": None,
                              "error": f"unreadable manifest: {exc}"})
                continue
            if manifest is None:
                if include_missing:
                    missing.append({"name": name, "installed_version": installed})
                continue
            disk = manifest["version"]
            if disk != (installed or None):
                drift.append({"name": name, "installed_version": installed, "disk_version": disk,
                              "direction": self._ocore_direction(installed, disk)})
        result = {"checked": checked, "drift": drift, "drift_count": len(drift)}
        if include_missing:
            result["missing_on_disk"] = missing
        # every module name is needed to find the ones on disk that the database does not know
        Module = self.env["ir.module.module"].with_context(active_test=False)
        known = set(Module.search([]).mapped("name"))  # pylint: disable=no-search-all
        result["not_in_module_list"] = sorted(compat.modules_on_disk() - known)
        hints = []
        if drift:
            hints.append("upgrade_module brings the database to the on-disk version")
        if result["not_in_module_list"]:
            hints.append("install_module refreshes the module list before installing")
        if hints:
            result["hint"] = "; ".join(hints)
        return result

    def _ocore_direction(self, installed, disk):
        from odoo.tools.parse_version import parse_version

        try:
            if not installed:
                return "not recorded"
            return "upgrade pending" if parse_version(disk) > parse_version(installed) else "disk older"
        except (TypeError, ValueError):
            return "different"

    @mcp_tool("modules", identifier_args=("addon",), **ADMIN, title="Module dependencies")
    def _tool_module_dependencies(self, addon: str, transitive: bool = False):
        """A module's dependencies and dependents.

        Args:
            transitive: Follow the whole graph.
        """
        module = self._ocore_modules([addon])
        Dependency = self.env["ir.module.module.dependency"]

        def depends_of(names):
            rows = Dependency.search([("module_id.name", "in", list(names))])
            return {d.name: d.state for d in rows}

        def dependents_of(names):
            rows = Dependency.search([("name", "in", list(names))])
            return {d.module_id.name: d.module_id.state for d in rows}

        def closure(step, start):
            seen, frontier, level = {}, {start}, 1
            while frontier:
                found = step(frontier)
                new = {n: s for n, s in found.items() if n not in seen and n != start}
                for name, state in new.items():
                    seen[name] = (state, level)
                frontier, level = set(new), level + 1
                if not transitive:
                    break
            return [{"name": n, "state": s, "depth": d} for n, (s, d) in sorted(seen.items())]

        result = {
            "module": addon,
            "state": module.state,
            "depends": closure(depends_of, addon),
            "dependents": closure(dependents_of, addon),
            "transitive": transitive,
        }
        if not transitive:
            for key in ("depends", "dependents"):
                for row in result[key]:
                    row.pop("depth")
        result["auto_install"] = bool(module.auto_install)
        return result

    @mcp_tool("modules", **ADMIN, title="Module categories")
    def _tool_module_categories(self, include_empty: bool = False):
        """Module categories with module counts."""
        Module = self.env["ir.module.module"]
        counts = dict(compat.read_group(Module, [], ["category_id"], ["__count"]))
        installed = dict(compat.read_group(Module, [("state", "in", INSTALLED)], ["category_id"], ["__count"]))
        rows = []
        categories = self.env["ir.module.category"].with_context(lang="en_US")
        for category in categories.search([], order="name"):  # pylint: disable=no-search-all  # lists them all
            total = counts.get(category, 0)
            if not total and not include_empty:
                continue
            rows.append({
                "id": category.id,
                "name": category.name,
                "parent": category.parent_id.name or None,
                "modules": total,
                "installed": installed.get(category, 0),
            })
        empty = self.env["ir.module.category"]
        if counts.get(empty):
            rows.append({"id": None, "name": "(no category)", "parent": None, "modules": counts[empty],
                         "installed": installed.get(empty, 0)})
        return {"count": len(rows), "categories": rows}

    @mcp_tool("modules", identifier_args=("module",), **ADMIN, title="Check uninstall impact")
    def _tool_check_uninstall_deps(self, module: str):
        """What uninstalling a module would remove: dependent modules, models, views."""
        record = self._ocore_modules([module])
        dependents = record.downstream_dependencies()
        going = record | dependents
        names = going.mapped("name")
        result = {
            "module": module,
            "state": record.state,
            "installed": record.state in INSTALLED,
            "dependent_modules": [self._ocore_row(m) for m in dependents.sorted("name")],
            "modules_removed": sorted(names),
        }
        cr = self.env.cr
        self.env["ir.model.data"].flush_model()

        def owned_only(model):
            # records whose external ids all belong to the modules that go
            cr.execute(
                """SELECT d.res_id FROM ir_model_data d
                    WHERE d.model = %s AND d.module = ANY(%s)
                      AND NOT EXISTS (SELECT 1 FROM ir_model_data o
                                       WHERE o.model = d.model AND o.res_id = d.res_id
                                         AND NOT (o.module = ANY(%s)))
                    GROUP BY d.res_id""",
                [model, names, names],
            )
            return [row[0] for row in cr.fetchall()]

        models_going = self.env["ir.model"].browse(owned_only("ir.model")).exists()
        fields_going = self.env["ir.model.fields"].browse(owned_only("ir.model.fields")).exists()
        fields_going = fields_going.filtered(lambda f: f.model_id not in models_going)
        views_going = self.env["ir.ui.view"].with_context(active_test=False).browse(owned_only("ir.ui.view")).exists()
        result.update(
            models=[{"model": m.model, "name": m.name} for m in models_going.sorted("model")[:LIST_LIMIT]],
            models_count=len(models_going),
            fields_on_other_models=[{"model": f.model, "field": f.name, "type": f.ttype}
                                    for f in fields_going.sorted(lambda f: (f.model, f.name))[:LIST_LIMIT]],
            fields_count=len(fields_going),
            views=[{"name": v.name, "model": v.model or None, "type": v.type}
                   for v in views_going.sorted(lambda v: (v.model or "", v.name or ""))[:LIST_LIMIT]],
            views_count=len(views_going),
        )
        if SELF in names:
            result["warning"] = (f"uninstalling {module} also removes {SELF}, the MCP server itself; "
                                 "uninstall_module refuses it")
        if not result["installed"]:
            result["note"] = f"{module} is not installed (state {record.state}): nothing would be removed"
        return result

    @mcp_tool("modules", identifier_args=("module",), **ADMIN, title="Module history")
    def _tool_module_history(
        self,
        module: str | None = None,
        source: Literal["mcp", "odoo", "database"] | None = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
    ):
        """Module installs and upgrades (MCP, Apps, command line), newest first."""
        # Events and MCP audit rows are read with sudo: the tool is offered to system administrators only,
        # who need not be MCP managers.
        domain = [("module", "=", module)] if module else []
        if source:
            domain.append(("source", "=", source))
        entries = []
        for ev in self.env["ocore.mcp.module.event"].sudo().search(domain, order="date desc, id desc"):
            entries.append({
                "date": ev.date, "module": ev.module, "action": ev.action, "status": "done",
                "version_before": ev.version_before or None, "version_after": ev.version_after or None,
                "requested": ev.requested, "user": ev.user_id.login or None, "key": ev.key_id.name or None,
                "source": ev.source,
            })
        if source in (None, "mcp"):
            entries += self._ocore_failed_calls(module)
        entries.sort(key=lambda e: e["date"], reverse=True)
        for entry in entries:
            entry["date"] = fields.Datetime.to_string(entry["date"])
        return {"count": len(entries), "entries": entries[:limit], "truncated": len(entries) > limit}

    def _ocore_failed_calls(self, module):
        Audit = self.env["ocore.mcp.audit.log"].sudo()
        domain = [("tool", "in", MODULE_TOOLS), ("event", "=", "call"), ("status", "in", ("error", "refused"))]
        if module:
            domain.append(("params", "ilike", f'"{module}"'))
        rows = []
        for row in Audit.search(domain, order="id desc", limit=500):
            try:
                params = json.loads(row.params or "{}")
            except ValueError:
                params = {}
            names = params.get("module")
            names = [names] if isinstance(names, str) else [n for n in names or [] if isinstance(n, str)]
            if module and module not in names:
                continue
            rows.append({
                "date": row.create_date, "module": ", ".join(names) or "?",
                "action": row.tool.replace("_module", ""), "status": row.status,
                "error": (row.error_message or "")[:300], "user": row.user_id.login or None,
                "key": row.key_id.name or None, "source": "mcp",
            })
        return rows

    # -- operations ----------------------------------------------------------------------

    @mcp_tool("modules", kind="write", **MODULE_OP, title="Install module")
    def _tool_install_module(self, module: str | list[str]):
        """Install modules with their dependencies.

        Args:
            module: Technical name(s).
        """
        names = self._ocore_names(module)
        records = self._ocore_modules(names, refresh=True)
        bad = records.filtered(lambda m: m.state == "uninstallable")
        if bad:
            raise Refusal("invalid_input", f"not installable on this server: {', '.join(bad.mapped('name'))}")
        already = records.filtered(lambda m: m.state in INSTALLED)
        todo = records - already
        result = {"requested": names, "already_installed": sorted(already.mapped("name"))}
        if not todo:
            result.update(installed=[], registry_reloaded=False)
            return result
        before = self._ocore_installed_versions()
        Module = self._ocore_immediate(todo, "button_immediate_install")
        after = self._ocore_installed_versions()
        new = sorted(set(after) - set(before))
        result.update(
            installed=new,
            modules=[self._ocore_row(m) for m in Module.search([("name", "in", names)], order="name")],
            registry_reloaded=True,
        )
        failed = [n for n in names if n not in after]
        if failed:
            result["not_installed"] = failed
        return result

    @mcp_tool("modules", kind="write", **MODULE_OP, title="Upgrade module")
    def _tool_upgrade_module(self, module: str | list[str]):
        """Upgrade installed modules to their code's version.

        Args:
            module: Technical name(s).
        """
        names = self._ocore_names(module)
        records = self._ocore_modules(names)
        not_installed = records.filtered(lambda m: m.state not in INSTALLED)
        if not_installed:
            raise Refusal("invalid_input", f"not installed, so cannot be upgraded: "
                          f"{', '.join(not_installed.mapped('name'))} (use install_module)")
        before = self._ocore_installed_versions()
        Module = self._ocore_immediate(records, "button_immediate_upgrade")
        after = self._ocore_installed_versions()
        rows = []
        for mod in Module.search([("name", "in", names)], order="name"):
            rows.append({**self._ocore_row(mod), "version_before": before.get(mod.name)})
        return {
            "upgraded": rows,
            "also_installed": sorted(set(after) - set(before)),
            "registry_reloaded": True,
            "note": "changed Python code is loaded when the server restarts; data, views and versions now",
        }

    @mcp_tool("modules", kind="destructive", **MODULE_OP, title="Uninstall module")
    def _tool_uninstall_module(self, module: str):
        """Uninstall a module and the modules depending on it.

        Args:
            module: Technical name.
        """
        record = self._ocore_modules(self._ocore_names(module))
        if record.state not in ("installed", "to upgrade"):
            raise Refusal("invalid_input", f"{module} is not installed (state {record.state})")
        going = record | record.downstream_dependencies()
        names = sorted(going.mapped("name"))
        if SELF in names:
            raise Refusal("invalid_input", f"uninstalling {module} would remove {SELF}, the MCP server serving "
                          "this call; do it from Odoo's Apps menu")
        before = self._ocore_installed_versions()
        self._ocore_immediate(record, "button_immediate_uninstall")
        after = self._ocore_installed_versions()
        removed = sorted(set(before) - set(after))
        return {"uninstalled": removed, "requested": module, "still_installed": [n for n in names if n in after],
                "registry_reloaded": True}

    # -- scaffolding -----------------------------------------------------------------------

    @mcp_tool("modules", kind="write", identifier_args=("name", "model"), **ADMIN, title="Scaffold module")
    def _tool_scaffold_module(
        self,
        name: str,
        title: str | None = None,
        summary: str | None = None,
        depends: list[str] | None = None,
        model: str | None = None,
        fields: list[dict] | None = None,
        path: str | None = None,
        author: str | None = None,
        category: str | None = None,
        application: bool = False,
    ):
        """Create a module skeleton: manifest, model, views, security.

        Args:
            name: Technical name.
            title: Display name.
            model: Default "<name>.record".
            fields: [{name, type, string, required, comodel, selection}] (default: name, description).
            path: Parent directory.
            application: Own top menu.
        """
        if not MODULE_NAME.match(name):
            raise Refusal("invalid_input", f"name {name!r}: use lowercase letters, digits and _ (start with a letter)")
        model = model or f"{name}.record"
        if not MODEL_NAME.match(model):
            raise Refusal("invalid_input", f"model {model!r}: use dotted lowercase names, e.g. library.book")
        if model in self.env:
            raise Refusal("invalid_input", f"model {model} already exists on this database")
        depends = list(dict.fromkeys(depends or ["base"]))
        self._ocore_modules(depends)
        if self.env["ir.module.module"].search_count([("name", "=", name)]) or compat.read_manifest(name):
            raise Refusal("invalid_input", f"a module named {name} already exists")
        specs = self._ocore_field_specs(fields)
        box = self.env["ocore.mcp.tools.files"]._ocore_sandbox()
        parent, parent_shown = box.resolve(path, kind="dir")
        target, shown = box.resolve(f"{parent_shown}/{name}" if parent_shown else name, must_exist=False)
        files = self._ocore_scaffold_files(name, title, summary, depends, model, specs, author, category, application)
        on_path = os.path.realpath(parent) in {os.path.realpath(p) for p in compat.addons_paths()}
        result = {"module": name, "path": shown, "model": model, "files": sorted(f"{shown}/{f}" for f in files),
                  "on_addons_path": on_path}
        call = self._call()
        if call is not None and call.dry_run:
            result["manifest"] = files["__manifest__.py"]
            return result
        box.makedirs(target, shown)
        for relative, content in sorted(files.items()):
            file_target = os.path.join(target, relative)
            box.makedirs(os.path.dirname(file_target), shown)
            box.write_bytes(file_target, f"{shown}/{relative}", content.encode(), create=True)
        if on_path:
            compat.clear_manifest_cache()
            self.env["ir.module.module"].update_list()
            record = self.env["ir.module.module"].search([("name", "=", name)])
            result["state"] = record.state or None
            result["next_step"] = f"install_module module={name}"
        else:
            result["state"] = None
            result["next_step"] = ("the custom addons root is not on the server's addons_path: add it there and "
                                   "restart Odoo, then install the module")
        return result

    def _ocore_field_specs(self, specs):
        if not specs:
            return [{"name": "name", "type": "char", "string": "Name", "required": True},
                    {"name": "description", "type": "text", "string": "Description", "required": False}]
        seen, clean = set(), []
        for index, spec in enumerate(specs):
            if not isinstance(spec, dict):
                raise Refusal("invalid_input", f"fields.{index}: must be an object")
            unknown = set(spec) - {"name", "type", "string", "required", "comodel", "selection"}
            if unknown:
                raise Refusal("invalid_input", f"fields.{index}: unknown key(s) {', '.join(sorted(unknown))}")
            fname, ftype = spec.get("name"), spec.get("type", "char")
            if not isinstance(fname, str) or not FIELD_NAME.match(fname) or fname in models.MAGIC_COLUMNS:
                raise Refusal("invalid_input", f"fields.{index}.name {fname!r} is not a valid new field name")
            if fname in seen:
                raise Refusal("invalid_input", f"fields.{index}.name {fname!r} is given twice")
            seen.add(fname)
            if ftype not in FIELD_TYPES:
                raise Refusal("invalid_input", f"fields.{index}.type {ftype!r}: one of {', '.join(FIELD_TYPES)}")
            item = {"name": fname, "type": ftype, "string": str(spec.get("string") or fname.replace("_", " ").title()),
                    "required": bool(spec.get("required"))}
            if ftype == "many2one":
                comodel = spec.get("comodel")
                if not isinstance(comodel, str) or comodel not in self.env:
                    raise Refusal("invalid_input", f"fields.{index}.comodel {comodel!r} is not a model of this "
                                  "database")
                item["comodel"] = comodel
            if ftype == "selection":
                options = spec.get("selection")
                if (not isinstance(options, list) or not options
                        or not all(isinstance(o, list | tuple) and len(o) == 2 for o in options)):
                    raise Refusal("invalid_input", f"fields.{index}.selection: give [[value, label], ...]")
                item["selection"] = [(str(v), str(label)) for v, label in options]
            clean.append(item)
        return clean

    def _ocore_scaffold_files(self, name, title, summary, depends, model, specs, author, category, application):
        title = title or name.replace("_", " ").title()
        stem = model.replace(".", "_")
        class_name = "".join(part.capitalize() for part in re.split(r"[._]", model))
        label = model.split(".")[-1].replace("_", " ").title()
        manifest = {
            "name": title,
            "summary": summary or f"{title}: {label} records",
            "version": f"{release.major_version}.1.0.0",
            "category": category or "Uncategorized",
            "author": author or "",
            "license": "LGPL-3",
            "depends": depends,
            "data": ["security/ir.model.access.csv", f"views/{stem}_views.xml"],
            "application": application,
            "installable": True,
        }
        manifest_text = "{\n" + "".join(f"    {key!r}: {value!r},\n" for key, value in manifest.items()) + "}\n"
        field_lines = []
        for spec in specs:
            args = []
            ftype = spec["type"]
            if ftype == "many2one":
                args.append(repr(spec["comodel"]))
            if ftype == "selection":
                args.append(repr(spec["selection"]))
            args.append(f"string={spec['string']!r}")
            if spec["required"]:
                args.append("required=True")
            field_lines.append(f"    {spec['name']} = fields.{FIELD_TYPES[ftype]}({', '.join(args)})\n")
        rec_name = next((s["name"] for s in specs if s["type"] == "char"), None)
        model_py = (
            "from odoo import fields, models\n\n\n"
            f"class {class_name}(models.Model):\n"
            f"    _name = {model!r}\n"
            f"    _description = {label!r}\n"
            + (f"    _rec_name = {rec_name!r}\n" if rec_name and rec_name != "name" else "")
            + "\n" + "".join(field_lines)
        )
        shown_fields = [s["name"] for s in specs if s["type"] not in ("text", "html")][:6]
        list_fields = "".join(f'                <field name="{f}"/>\n' for f in shown_fields)
        form_fields = "".join(f'                    <field name="{s["name"]}"/>\n' for s in specs)
        search_fields = "".join(f'                <field name="{s["name"]}"/>\n'
                                for s in specs if s["type"] in ("char", "many2one", "selection"))
        views = f"""<?xml version="1.0" encoding="utf-8"?>
<odoo>
    <record id="view_{stem}_list" model="ir.ui.view">
        <field name="name">{model}.list</field>
        <field name="model">{model}</field>
        <field name="arch" type="xml">
            <list>
{list_fields}            </list>
        </field>
    </record>

    <record id="view_{stem}_form" model="ir.ui.view">
        <field name="name">{model}.form</field>
        <field name="model">{model}</field>
        <field name="arch" type="xml">
            <form>
                <sheet>
                    <group>
{form_fields}                    </group>
                </sheet>
            </form>
        </field>
    </record>

    <record id="view_{stem}_search" model="ir.ui.view">
        <field name="name">{model}.search</field>
        <field name="model">{model}</field>
        <field name="arch" type="xml">
            <search>
{search_fields}            </search>
        </field>
    </record>

    <record id="action_{stem}" model="ir.actions.act_window">
        <field name="name">{_xml(label)}</field>
        <field name="res_model">{model}</field>
        <field name="view_mode">list,form</field>
    </record>

    <menuitem id="menu_{name}_root" name="{_xml(title)}" sequence="100"/>
    <menuitem id="menu_{stem}" name="{_xml(label)}" parent="menu_{name}_root" action="action_{stem}" sequence="10"/>
</odoo>
"""
        tag = compat.list_view_tag()
        if tag != "list":
            views = views.replace("<list>", f"<{tag}>").replace("</list>", f"</{tag}>")
            views = views.replace("list,form", f"{tag},form")
        access = (
            "id,name,model_id:id,group_id:id,perm_read,perm_write,perm_create,perm_unlink\n"
            f"access_{stem}_user,{model} user,model_{stem},base.group_user,1,1,1,1\n"
        )
        return {
            "__init__.py": "from . import models\n",
            "__manifest__.py": manifest_text,
            "models/__init__.py": f"from . import {stem}\n",
            f"models/{stem}.py": model_py,
            f"views/{stem}_views.xml": views,
            "security/ir.model.access.csv": access,
        }


def _xml(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
