"""Schema, metadata and translation tools (category "metadata").

Schema tools read the model registry (what the running code defines), like
Odoo's own ``fields_get`` which any user may call: list_models,
get_field_metadata, get_model_constraints, get_model_relations and
get_model_methods need no access to the ``ir.model*`` tables. Tools that read
records do so as the key owner: get_model_views (``ir.ui.view``) and
get_addon_manifest (``ir.module.module``) need the administrator rights Odoo
requires for those tables; list_translations / update_translation read and
write the records themselves (ACLs and record rules apply).

A key's model allowlist limits every tool (``self._model``); list_models only
lists allowed models.

list_models is cached for 5 minutes per registry: the cache lives on the
registry object and is keyed by its signalling sequence, so a module
install/upgrade (a new registry in every worker) or a new custom model (the
sequence moves) is seen at once, and a registry being changed by the running
transaction bypasses it.
"""

import inspect
import os
import socket
import sys
import time
from typing import Annotated, Literal

import psutil
from pydantic import Field

from odoo import _, models, release
from odoo.exceptions import AccessError, UserError
from odoo.tools import config

from ..lib import compat
from ..lib import fields as fieldlib
from ..lib.tooling import mcp_tool
from ..service.policy import Refusal

MODELS_CACHE_TTL = 300  # seconds (spec: "Results are cached for 5 minutes")
MAGIC_FIELDS = ("id", "display_name", "create_uid", "create_date", "write_uid", "write_date", "__last_update")
# the 12 attributes of the summary mode of get_field_metadata
SUMMARY_ATTRS = (
    "type", "string", "help", "required", "readonly", "store", "relation", "selection", "related", "compute",
    "translate", "index",
)
VIEW_TYPES = ("form", "list", "tree", "search", "kanban", "calendar", "pivot", "graph", "activity", "gantt",
              "map", "qweb", "cohort", "hierarchy")
DEFAULT_VIEW_TYPES = ("form", "list", "search", "kanban")
# the compact summary of a whole model (no ``fields``): what a model needs to write a call, in a few KB
COMPACT_SELECTION_VALUES = 8
COMPACT_LAST_TYPES = ("binary", "image")  # image and file fields after the others
COMPACT_HINT = ("Compact summary: name, type, label, and only what differs from the default (required, readonly, "
                "not stored, relation, selection keys). Pass fields: [...] for 12 attributes per field (help, "
                "compute, related, index …) or detail: true for everything.")
MAX_TRANSLATION_RECORDS = 100

RecordId = Annotated[int, Field(strict=True, gt=0)]
RecordIds = Annotated[list[RecordId], Field(min_length=1, max_length=MAX_TRANSLATION_RECORDS)]


def _defining_classes(model):
    """The definition classes of the model (the classes addons wrote), most derived first."""
    return [
        klass for klass in type(model).__mro__
        if getattr(klass, "pool", None) is None and getattr(klass, "_module", None) is not None
    ]


def model_modules(model):
    """Modules that define or extend the model: the defining module first."""
    name = model._name
    found = [k._module for k in reversed(_defining_classes(model)) if k._name == name]
    original = getattr(type(model), "_original_module", None)
    if original:
        found.insert(0, original)
    return list(dict.fromkeys(m for m in found if m))


def _method_name(value):
    if value is None or value is False:
        return None
    if isinstance(value, str):
        return value
    return getattr(value, "__name__", None) or True


def _short(text, size=300):
    if not text:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= size else text[: size - 1] + "…"


def _doc_line(func):
    doc = inspect.getdoc(func) or ""
    return _short(doc.strip().split("\n\n")[0], 200)


class MetadataTools(models.AbstractModel):
    _name = "ocore.mcp.tools.metadata"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: schema and metadata"

    # -- list_models -------------------------------------------------------------

    def _ocore_models_rows(self):
        """Every non-transient model of the registry (cached, see the module docstring).

        Returns ``(rows, cached)``.
        """
        registry = self.env.registry
        now = time.monotonic()
        entry = registry.__dict__.get("_ocore_mcp_models_cache")
        if (
            entry
            and entry[0] == registry.registry_sequence
            and now - entry[1] < MODELS_CACHE_TTL
            and not registry.registry_invalidated
        ):
            return entry[2], True
        rows = []
        for name in sorted(registry.models):
            model = self.env[name]
            if model._transient:
                continue
            rows.append({
                "model": name,
                "name": model._description or name,
                "state": "manual" if model._custom else "base",
                "modules": model_modules(model),
                "abstract": bool(model._abstract),
            })
        if not registry.registry_invalidated:
            registry._ocore_mcp_models_cache = (registry.registry_sequence, now, rows)
        return rows, False

    @mcp_tool("metadata", model_args=(), title="List models")
    def _tool_list_models(
        self,
        search: str | None = None,
        state: Literal["base", "manual"] | None = None,
        limit: Annotated[int, Field(ge=1, le=5000)] = 300,
        offset: Annotated[int, Field(ge=0)] = 0,
    ) -> dict:
        """Models with label, state and modules."""
        rows, cached = self._ocore_models_rows()
        allowed = self._call().connection.scope["models"] if self._call() else []
        needle = (search or "").strip().lower()
        selected = [
            row for row in rows
            if (not allowed or row["model"] in allowed)
            and (not state or row["state"] == state)
            and (not needle or needle in row["model"].lower() or needle in row["name"].lower())
        ]
        page = [dict(row, modules=list(row["modules"])) for row in selected[offset : offset + limit]]
        has_more = offset + len(page) < len(selected)
        return {
            "total": len(selected),
            "count": len(page),
            "offset": offset,
            "has_more": has_more,
            "next_offset": offset + len(page) if has_more else None,
            "cached": cached,
            "models": page,
        }

    # -- get_field_metadata ----------------------------------------------------------

    def _ocore_field_group(self, name, field):
        if name in MAGIC_FIELDS or name in fieldlib.TECHNICAL_FIELDS or name.startswith(fieldlib.TECHNICAL_PREFIXES):
            return "technical"
        return "relational" if field.relational else "simple"

    def _ocore_field_summary(self, records, name, field):
        """The 12 summary attributes of one field (translated labels, like fields_get)."""
        desc = field.get_description(records.env, attributes=["string", "help", "selection", "translate"])
        return {
            "name": name,
            "type": field.type,
            "string": desc.get("string"),
            "help": _short(desc.get("help")),
            "required": bool(field.required),
            "readonly": bool(field.readonly),
            "store": bool(field.store),
            "relation": getattr(field, "comodel_name", None),
            "selection": fieldlib.jsonable(desc.get("selection")) if "selection" in desc else None,
            "related": field.related or None,
            "compute": _method_name(field.compute) if not field.related else None,
            "translate": bool(desc.get("translate")),
            "index": (field.index or False) if field.store else None,
        }

    def _ocore_field_compact(self, records, name, field):
        """The compact summary of one field: name, type, label and the attributes that differ from a plain
        stored, optional, writable field (a whole model's fields fit in a model's context)."""
        data = {"name": name, "type": field.type,
                "string": field.get_description(records.env, attributes=["string"]).get("string")}
        if field.required:
            data["required"] = True
        if field.readonly:
            data["readonly"] = True
        if not field.store:
            data["store"] = False
        if getattr(field, "comodel_name", None):
            data["relation"] = field.comodel_name
        if field.type == "selection":
            selection = field.get_description(records.env, attributes=["selection"]).get("selection")
            keys = [item[0] for item in selection] if isinstance(selection, list) else []
            data["selection"] = keys[:COMPACT_SELECTION_VALUES]
            if len(keys) > COMPACT_SELECTION_VALUES:
                data["selection_more"] = len(keys) - COMPACT_SELECTION_VALUES
        return data

    def _ocore_field_detail(self, records, name, field):
        """fields_get's description plus the Python-side attributes (compute, index, module …)."""
        data = fieldlib.jsonable(field.get_description(records.env))
        data["name"] = name
        data.update({
            "compute": _method_name(field.compute) if not field.related else None,
            "inverse": _method_name(field.inverse),
            "search": _method_name(field.search),
            "index": field.index or False,
            "copy": bool(field.copy),
            "has_default": field.default is not None,
            "module": getattr(field, "_module", None),
            "column_type": field.column_type[1] if field.store and field.column_type else None,
        })
        if field.type == "many2one":
            data["ondelete"] = field.ondelete
        if field.type == "many2many":
            data.update(relation_table=field.relation, column1=field.column1, column2=field.column2)
        return data

    @mcp_tool("metadata", identifier_args=("fields",), title="Field metadata")
    def _tool_get_field_metadata(
        self,
        model: str,
        fields: list[str] | None = None,
        detail: bool = False,
        grouped: bool = True,
    ) -> dict:
        """A model's fields: a summary of all, 12 attributes of those named, everything with detail."""
        records = self._model(model)
        if fields:
            fieldlib.check_field_names(records, fields)
        compact = not detail and not fields
        describe = (self._ocore_field_detail if detail else self._ocore_field_compact if compact
                    else self._ocore_field_summary)
        out = {"simple": [], "relational": [], "technical": []} if grouped else {"fields": []}
        count = 0
        items = records._fields.items()
        if compact:  # image and file fields last (they say little about what to write)
            items = sorted(items, key=lambda item: item[1].type in COMPACT_LAST_TYPES)
        for name, field in items:
            if fields and name not in fields:
                continue
            if not compat.field_accessible(field, records):
                continue
            out[self._ocore_field_group(name, field) if grouped else "fields"].append(describe(records, name, field))
            count += 1
        result = {"model": model, "label": records._description, "count": count,
                  "mode": "detail" if detail else "summary", **out}
        if compact:
            result["hint"] = COMPACT_HINT
        return result

    # -- get_model_constraints -----------------------------------------------------------

    def _ocore_python_constraints(self, records):
        cls = type(records)
        out = []
        for attr, func in inspect.getmembers(cls, lambda f: callable(f) and hasattr(f, "_constrains")):
            names = func._constrains
            if callable(names):
                names = names(records)
            owner = next((k for k in _defining_classes(records) if attr in vars(k)), None)
            out.append({
                "method": attr,
                "fields": list(names),
                "module": owner._module if owner else None,
                "doc": _doc_line(func),
            })
        return out

    @mcp_tool("metadata", title="Model constraints")
    def _tool_get_model_constraints(self, model: str) -> dict:
        """A model's SQL and Python constraints."""
        records = self._model(model)
        sql = compat.sql_constraints(records)
        database = []
        if records._auto and not records._abstract:
            self.env.cr.execute(
                """SELECT c.conname, c.contype, pg_get_constraintdef(c.oid)
                     FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
                     JOIN pg_namespace n ON n.oid = t.relnamespace
                    WHERE t.relname = %s AND n.nspname = current_schema() ORDER BY c.conname""",
                (records._table,),
            )
            kinds = {"c": "check", "u": "unique", "f": "foreign_key", "p": "primary_key", "x": "exclude"}
            database = [{"name": n, "kind": kinds.get(k, k), "definition": d} for n, k, d in self.env.cr.fetchall()]
        in_db = {row["name"] for row in database}
        for row in sql:
            row["in_database"] = row["db_name"] in in_db
        ondelete = []
        for attr, func in inspect.getmembers(type(records), lambda f: callable(f) and hasattr(f, "_ondelete")):
            ondelete.append({"method": attr, "at_uninstall": bool(getattr(func, "_ondelete_at_uninstall", False)),
                             "doc": _doc_line(func)})
        return {
            "model": model,
            "table": records._table if records._auto else None,
            "sql_constraints": sql,
            "python_constraints": self._ocore_python_constraints(records),
            "ondelete_checks": ondelete,
            "database_constraints": database,
        }

    # -- get_model_relations ---------------------------------------------------------------

    def _ocore_relation(self, records, name, field):
        data = {
            "field": name,
            "type": field.type,
            "string": field.string,
            "comodel": field.comodel_name,
            "store": bool(field.store),
            "required": bool(field.required),
            "related": field.related or None,
        }
        if field.type == "many2one":
            comodel = self.env.registry.get(field.comodel_name)
            data["ondelete"] = field.ondelete
            data["inverse_fields"] = sorted(
                fname for fname, other in (comodel._fields.items() if comodel is not None else [])
                if other.type == "one2many" and other.comodel_name == records._name and other.inverse_name == name
            )
            data["delegate"] = bool(field.delegate)
        elif field.type == "one2many":
            data["inverse_name"] = field.inverse_name
        else:
            data.update(relation_table=field.relation, column1=field.column1, column2=field.column2)
        return data

    @mcp_tool("metadata", title="Model relations")
    def _tool_get_model_relations(self, model: str, include_incoming: bool = False) -> dict:
        """A model's relational fields: targets, inverses, relation tables.

        Args:
            include_incoming: Also many2one fields pointing here.
        """
        records = self._model(model)
        relations = {"many2one": [], "one2many": [], "many2many": []}
        for name, field in records._fields.items():
            if field.relational and compat.field_accessible(field, records):
                relations[field.type].append(self._ocore_relation(records, name, field))
        data = {"model": model, "inherits": dict(records._inherits), **relations}
        if include_incoming:
            incoming = []
            for other_name in sorted(self.env.registry.models):
                other = self.env[other_name]
                if other._transient or other._abstract:
                    continue
                for fname, field in other._fields.items():
                    if field.type == "many2one" and field.comodel_name == model and field.store:
                        incoming.append({"model": other_name, "field": fname, "ondelete": field.ondelete,
                                         "required": bool(field.required)})
            data["incoming"] = incoming
        return data

    # -- get_model_methods -------------------------------------------------------------------

    @mcp_tool("metadata", title="Model methods")
    def _tool_get_model_methods(
        self,
        model: str,
        include_private: bool = True,
        include_base: bool = False,
        search: str | None = None,
    ) -> dict:
        """A model's methods with their decorators.

        Args:
            include_base: Also generic ORM methods.
        """
        records = self._model(model)
        cls = type(records)
        classes = _defining_classes(records)
        needle = (search or "").lower()
        methods = []
        for attr in sorted(dir(cls)):
            if attr.startswith("__") or (attr.startswith("_") and not include_private):
                continue
            if needle and needle not in attr.lower():
                continue
            raw = inspect.getattr_static(cls, attr, None)
            if isinstance(raw, staticmethod | classmethod):
                func = raw.__func__
            elif inspect.isfunction(raw):
                func = raw
            else:
                continue
            owners = [k for k in classes if attr in vars(k)]
            defined_on = owners[-1]._name if owners else "base"  # base: odoo.models.BaseModel itself
            if not include_base and defined_on == "base" and all(k._name == "base" for k in owners):
                continue
            try:
                signature = str(inspect.signature(func)).replace("(self, ", "(").replace("(self)", "()")
            except (TypeError, ValueError):
                signature = None
            methods.append({
                "name": attr,
                "private": attr.startswith("_"),
                "decorators": compat.api_decorators(func),
                "signature": signature,
                "defined_on": defined_on,
                "modules": list(dict.fromkeys(k._module for k in reversed(owners))) or ["odoo"],
                "doc": _doc_line(func),
            })
        return {"model": model, "count": len(methods), "methods": methods}

    # -- get_model_views -----------------------------------------------------------------------

    @mcp_tool("metadata", title="Model views")
    def _tool_get_model_views(
        self,
        model: str,
        view_type: str | None = None,
        combined: bool = False,
        include_arch: bool = True,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
    ) -> dict:
        """A model's views (arch and metadata).

        Args:
            view_type: form, list, search, kanban …
            combined: Default view per type, inheritance applied.
        """
        records = self._model(model)
        if view_type is not None and view_type not in VIEW_TYPES:
            raise Refusal("invalid_input", f"view_type: {view_type!r} is not one of {', '.join(VIEW_TYPES)}")
        wanted = view_type
        if wanted in ("list", "tree"):
            wanted = compat.list_view_tag()
        if combined:
            views = []
            for vtype in [wanted] if wanted else [compat.list_view_tag() if t == "list" else t
                                                   for t in DEFAULT_VIEW_TYPES]:
                try:
                    result = records.get_views([(False, vtype)])
                except (UserError, ValueError, AccessError) as exc:
                    views.append({"type": vtype, "error": str(exc.args[0] if exc.args else exc)})
                    continue
                view = result["views"][vtype]
                row = {"type": vtype, "id": view.get("id") or None}
                if include_arch:
                    row["arch"] = view.get("arch")
                views.append(row)
            return {"model": model, "combined": True, "count": len(views), "views": views}
        View = self.env["ir.ui.view"]
        if not compat.has_access(View, "read"):
            raise AccessError(_(
                "reading view records (ir.ui.view) needs the Settings / Administration rights; "
                "use combined: true for the views as this user sees them"
            ))
        domain = [("model", "=", model)]
        if wanted:
            domain.append(("type", "=", wanted))
        total = View.search_count(domain)
        found = View.search(domain, limit=limit, order="type, mode desc, priority, id")
        views = []
        for view in found:
            row = {
                "id": view.id,
                "name": view.name,
                "type": view.type,
                "mode": view.mode,
                "priority": view.priority,
                "inherit_id": [view.inherit_id.id, view.inherit_id.name] if view.inherit_id else None,
                "xml_id": view.xml_id or None,
                "active": view.active,
            }
            if include_arch:
                row["arch"] = view.arch
            views.append(row)
        return {"model": model, "combined": False, "total": total, "count": len(views), "views": views}

    # -- get_instance_info ------------------------------------------------------------------

    def _ocore_edition(self):
        """``enterprise`` when the enterprise web client is loaded (or the release says so)."""
        if release.version_info[-1] == "e" or "web_enterprise" in self.env.registry._init_modules:
            return "enterprise"
        return "community"

    @mcp_tool("metadata", model_args=(), title="Instance info")
    def _tool_get_instance_info(self) -> dict:
        """Instance details: environment, version, edition, writes, ports."""
        call = self._call()
        settings = call.connection.settings if call else self.env["ocore.mcp.server"]._ocore_settings()
        cr = self.env.cr
        cr.execute("SELECT now() at time zone 'UTC', current_setting('server_version'), "
                   "pg_database_size(current_database())")
        db_now, pg_version, db_size = cr.fetchone()
        # database.create_date is set once by Odoo when the database is created; like the
        # pipeline's own settings, this one instance-level parameter is read as the system.
        created = self.env["ir.config_parameter"].sudo().get_param("database.create_date")
        started = psutil.Process(os.getpid()).create_time()
        workers = config.get("workers") or 0
        return {
            "slug": settings["slug"],
            "name": self.env.company.name,
            "database": cr.dbname,
            "server": {
                "hostname": socket.gethostname(),
                "mode": "prefork" if workers else "threaded",
                "workers": workers,
                "max_cron_threads": config.get("max_cron_threads"),
                "proxy_mode": bool(config.get("proxy_mode")),
                "python": ".".join(map(str, sys.version_info[:3])),
                "postgresql": pg_version,
            },
            "environment": settings["environment"],
            "odoo_version": release.version,
            "odoo_series": release.serie,
            "edition": self._ocore_edition(),
            "mcp_enabled": settings["enabled"],
            "mcp_write_enabled": settings["write_enabled"],
            "ports": {
                "http": config.get("http_port"),
                "gevent": config.get("gevent_port") or config.get("longpolling_port"),
            },
            "installed_modules": len(self.env.registry._init_modules),
            "database_size_mb": round(db_size / 1024 / 1024, 1),
            "timestamps": {
                "now": db_now.strftime(fieldlib.DATETIME_FORMAT),
                "database_created": created or None,
                "server_started": time.strftime(fieldlib.DATETIME_FORMAT, time.gmtime(started)),
                "uptime_seconds": int(time.time() - started),
            },
        }

    # -- get_addon_manifest ------------------------------------------------------------------

    @mcp_tool("metadata", model_args=(), identifier_args=("module",), title="Module manifest")
    def _tool_get_addon_manifest(self, module: str) -> dict:
        """A module's manifest: summary, author, license, category, state, versions."""
        modules = self._model("ir.module.module")  # a key's model allowlist must include it
        compat.check_access(modules, "read")
        record = modules.search([("name", "=", module)], limit=1)
        if not record:
            raise Refusal("invalid_input", f"module: unknown module {module!r} (not in the apps list)")
        manifest = compat.read_manifest(module) or {}  # read now: the code may have changed since startup
        return {
            "name": record.name,
            "display_name": record.shortdesc,
            "summary": record.summary or None,
            "description": _short(record.description, 4000),
            "author": record.author or None,
            "maintainer": record.maintainer or None,
            "website": record.website or None,
            "license": record.license or None,
            "category": record.category_id.display_name if record.category_id else None,
            "state": record.state,
            "installed_version": record.latest_version or None,
            "code_version": manifest.get("version") or None,
            "application": bool(record.application),
            "auto_install": bool(record.auto_install),
            "depends": sorted(record.dependencies_id.mapped("name")),
            "external_dependencies": fieldlib.jsonable(manifest.get("external_dependencies") or {}),
            "installable": bool(manifest.get("installable", True)) if manifest else False,
            "on_disk": bool(manifest),
        }

    # -- translations ------------------------------------------------------------------------

    def _ocore_langs(self, lang):
        installed = [code for code, _name in self.env["res.lang"].get_installed()]
        if lang is None:
            return installed
        if lang not in installed and lang != "en_US":
            raise Refusal(
                "invalid_input", f"lang: {lang!r} is not an installed language ({', '.join(installed)})"
            )
        return [lang]

    def _ocore_translatable(self, records, field=None):
        names = [
            name for name, f in records._fields.items()
            if f.translate and (f.store or f.related) and compat.field_accessible(f, records)
        ]
        if field is None:
            return names
        fieldlib.check_field_names(records, [field], "field")
        if field not in names:
            raise Refusal(
                "invalid_input",
                f"field: {records._name}.{field} is not translatable (translatable fields: "
                f"{', '.join(names) or 'none'})",
            )
        return [field]

    @mcp_tool("metadata", identifier_args=("field",), title="List translations")
    def _tool_list_translations(
        self,
        model: str,
        ids: RecordIds | None = None,
        domain: list | None = None,
        field: str | None = None,
        lang: str | None = None,
        limit: Annotated[int, Field(ge=1, le=MAX_TRANSLATION_RECORDS)] = 20,
    ) -> dict:
        """Translations of records' translatable fields (html/xml term by term).

        Args:
            ids: Or a domain.
            limit: For a domain.
        """
        records = self._data_model(model)
        if ids is None and domain is None:
            raise Refusal("invalid_input", "give ids or a domain (with limit) to select the records")
        names = self._ocore_translatable(records, field)
        langs = self._ocore_langs(lang)
        missing = []
        if ids is not None:
            found = records.browse(list(dict.fromkeys(ids))).exists()
            missing = sorted(set(ids) - set(found.ids))
        else:
            found = records.search(fieldlib.check_domain(records, domain), limit=limit)
        compat.check_access(found, "read")
        rows = []
        for record in found:
            item = {"id": record.id, "display_name": record.display_name, "fields": {}}
            for name in names:
                entries, info = record.get_field_translations(name, langs=langs)
                item["fields"][name] = {
                    "mode": "terms" if info.get("translation_show_source") else "whole",
                    "translations": fieldlib.jsonable(entries),
                }
            rows.append(item)
        return {
            "model": model,
            "langs": langs,
            "fields": names,
            "count": len(rows),
            "missing_ids": missing,
            "records": rows,
        }

    @mcp_tool("metadata", kind="write", identifier_args=("field",), title="Update translation")
    def _tool_update_translation(
        self,
        model: str,
        record_id: RecordId,
        field: str,
        lang: str,
        value: str | None,
        source: str | None = None,
    ) -> dict:
        """Set a field's translation in one language (null removes it).

        Args:
            lang: e.g. fr_FR.
            source: Source term as list_translations shows it (required for html/xml fields).
        """
        records = self._data_model(model)
        self._ocore_translatable(records, field)
        self._ocore_langs(lang)
        record = records.browse(record_id).exists()
        if not record:
            raise Refusal("invalid_input", f"record_id: {model} record {record_id} does not exist")
        entries, info = record.get_field_translations(field, langs=[lang])
        if info.get("translation_show_source"):
            terms = list(dict.fromkeys(e["source"] for e in entries))
            if source is None:
                raise Refusal(
                    "invalid_input",
                    f"source is required: {model}.{field} is translated term by term; pass the source term "
                    f"to translate (terms: {', '.join(repr(_short(t, 60)) for t in terms[:10])})",
                )
            if source not in terms:
                raise Refusal(
                    "invalid_input",
                    f"source: {_short(source, 80)!r} is not a term of {model}.{field} of record {record_id} "
                    f"(terms: {', '.join(repr(_short(t, 60)) for t in terms[:10])})",
                )
            translations = {lang: {source: value or ""}}
        else:
            current_source = entries[0]["source"] if entries else record.with_context(lang="en_US")[field]
            if source is not None and source != (current_source or ""):
                raise Refusal(
                    "invalid_input",
                    f"source: the current source text of {model}.{field} is {_short(current_source, 120)!r}, "
                    "not the one given; read it again with list_translations",
                )
            if value is None and lang == "en_US":
                raise Refusal("invalid_input", "value: the en_US text is the source, it cannot be removed")
            translations = {lang: value if value is not None else False}
        if not record.update_field_translations(field, translations):
            raise UserError(_(
                "%(model)s.%(field)s of record %(id)s could not be translated", model=model, field=field, id=record_id
            ))
        entries, info = record.get_field_translations(field, langs=[lang])
        return {
            "model": model,
            "record_id": record_id,
            "field": field,
            "lang": lang,
            "mode": "terms" if info.get("translation_show_source") else "whole",
            "translations": fieldlib.jsonable(entries),
            "value_in_lang": fieldlib.jsonable(record.with_context(lang=lang)[field]),
        }

