"""Prompt templates analyze_error, explain_model and debug_performance.

Each prompt is filled with real data of the instance, read as the key owner
(the same environment as a tool) and limited by the key's model allowlist: a
model outside it is refused when named as an argument and left out (with a
note) when it only appears in a traceback or a table list.

A prompt shows nothing its caller could not read with the tools: record counts
come from ``search_count`` (access rights and record rules apply). Table-wide
statistics (PostgreSQL's row estimates, sizes, scans of every table), the
database's size and connections and the server's configuration are what the
system tools show: only to system administrators.
"""

import difflib
import re

from odoo import models, release
from odoo.tools import config

from ..lib import compat
from ..lib import fields as fieldlib
from ..models.mcp_prompts import mcp_prompt
from ..service import audit
from ..service.context import current_call

MAX_FIELDS = 120
MAX_TRACEBACK = 8000
_MODULE_PATH = re.compile(r"(?:[/\\]addons[/\\]|odoo\.addons\.)([a-z0-9_]+)")
_DOTTED = re.compile(r"\b([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)\b")
_QUOTED = re.compile(r"""['"]([a-zA-Z_][a-zA-Z0-9_]*)['"]""")
_ATTRIBUTE = re.compile(r"\.([a-z_][a-z0-9_]*)\b")


class McpPromptTemplates(models.AbstractModel):
    _inherit = "ocore.mcp.prompts"

    # -- helpers -------------------------------------------------------------------

    def _ocore_scope_models(self):
        call = current_call()
        return call.connection.scope["models"] if call is not None else []

    def _ocore_allowed(self, model):
        allowed = self._ocore_scope_models()
        return not allowed or model in allowed

    def _ocore_prompt_model(self, model):
        """The model named by a prompt argument, after the tools' identifier and allowlist checks."""
        return self.env["ocore.mcp.toolset"]._model((model or "").strip())

    def _ocore_instance_line(self):
        meta = self.env["ocore.mcp.tools.metadata"]
        call = current_call()
        settings = call.connection.settings if call else self.env["ocore.mcp.server"]._ocore_settings()
        return (f"Odoo {release.version} ({meta._ocore_edition()}), instance '{settings['slug']}', "
                f"environment {settings['environment']}")

    def _ocore_is_admin(self):
        """Whether the caller may see what only system tools show (table-wide statistics, the server)."""
        return self.env.user._is_system()

    def _ocore_mark_admin_output(self):
        """This prompt's output holds what only system administrators may read: so does its audit row
        (ocore.mcp.audit.log.admin_only_tool), hidden from whoever else reads the audit log."""
        call = current_call()
        if call is None:
            return
        if call.audit_id:
            audit.mark_admin_only_output(self.env.cr, call.audit_id)
        elif call.connection.auth:
            audit.mark_running_prompt_admin_only(self.env.cr, call.connection.auth.id, call.full_name)

    def _ocore_record_count(self, records):
        if records._abstract or not records._auto:
            return "n/a (abstract model, no table)"
        if not compat.has_access(records, "read"):
            return "n/a (the user has no read access)"
        return str(records.search_count([]))

    def _ocore_model_facts(self, records, field_limit=MAX_FIELDS, only_fields=None):
        """A markdown description of a model: identity, fields, relations, constraints."""
        from .metadata import model_modules

        meta = self.env["ocore.mcp.tools.metadata"]
        cls = type(records)
        modules = model_modules(records)
        parents = [p for p in cls._inherit if p != records._name] if isinstance(cls._inherit, list | tuple) else []
        lines = [
            f"### Model `{records._name}` ({records._description})",
            f"- Defined in module: {modules[0] if modules else 'unknown'}"
            + (f"; extended by: {', '.join(modules[1:])}" if len(modules) > 1 else ""),
            (f"- Kind: {'abstract' if records._abstract else 'transient' if records._transient else 'regular'} "
            f"model; table: {records._table if records._auto else 'none'}"),
            f"- Records: {self._ocore_record_count(records)}",
            f"- Order: {records._order}; record name field: {records._rec_name or 'none'}",
        ]
        if parents:
            lines.append(f"- Inherits from: {', '.join(parents)}")
        if records._inherits:
            lines.append("- Delegation (_inherits): " + ", ".join(f"{m} via {f}" for m, f in records._inherits.items()))
        technical = 0
        rows = []
        for name, field in records._fields.items():
            if only_fields is not None and name not in only_fields:
                continue
            if not compat.field_accessible(field, records):
                continue
            if only_fields is None and meta._ocore_field_group(name, field) == "technical":
                technical += 1
                continue
            rows.append(meta._ocore_field_summary(records, name, field))
        shown = rows[:field_limit]
        lines += ["", f"#### Fields ({len(rows)} shown{f', {technical} technical omitted' if technical else ''})", ""]
        table = [
            {
                "field": r["name"],
                "type": r["type"],
                "label": r["string"],
                "required": r["required"],
                "stored": r["store"],
                "target / values": r["relation"] or (", ".join(str(v[0]) for v in r["selection"] or [])
                                                     if r["selection"] else None),
                "computed / related": r["related"] or r["compute"],
                "help": r["help"],
            }
            for r in shown
        ]
        columns = ["field", "type", "label", "required", "stored", "target / values", "computed / related", "help"]
        lines.append(fieldlib.markdown_table(table, columns))
        if len(rows) > field_limit:
            lines.append(f"\n({len(rows) - field_limit} more fields not shown)")
        if only_fields is None:
            relations = []
            for name, field in records._fields.items():
                if not field.relational or not compat.field_accessible(field, records):
                    continue
                rel = meta._ocore_relation(records, name, field)
                if field.type == "many2one":
                    extra = f"ondelete {rel['ondelete']}"
                    if rel["inverse_fields"]:
                        extra += f", inverse one2many: {', '.join(rel['inverse_fields'])}"
                elif field.type == "one2many":
                    extra = f"inverse field {rel['inverse_name']}"
                else:
                    extra = f"table {rel['relation_table']}"
                relations.append(f"- {field.type} `{name}` -> {field.comodel_name} ({extra})")
            lines += ["", f"#### Relations ({len(relations)})", *relations[:80]]
            constraints = [
                f"- SQL `{c['name']}`: {c['definition']}" + (f" — {c['message']}" if c["message"] else "")
                for c in compat.sql_constraints(records)
            ] + [
                f"- Python `{c['method']}` on {', '.join(c['fields'])}" + (f": {c['doc']}" if c["doc"] else "")
                for c in meta._ocore_python_constraints(records)
            ]
            lines += ["", f"#### Constraints ({len(constraints)})", *(constraints or ["- none"])]
        return "\n".join(lines)

    def _ocore_module_versions(self, names):
        """Rows (module, loaded, installed version, code version) for these module names."""
        modules = self.env["ir.module.module"]
        db_versions = {}
        if self._ocore_allowed("ir.module.module") and compat.has_access(modules, "read"):
            db_versions = {m.name: (m.state, m.latest_version) for m in modules.search([("name", "in", list(names))])}
        loaded = self.env.registry._init_modules
        rows = []
        for name in sorted(names):
            manifest = compat.read_manifest(name) or {}
            state, version = db_versions.get(name, (None, None))
            rows.append({
                "module": name,
                "state": state or ("installed" if name in loaded else "not loaded"),
                "installed version": version or ("(not visible)" if not db_versions and name in loaded else None),
                "code version": manifest.get("version"),
            })
        return rows

    # -- explain_model --------------------------------------------------------------------

    @mcp_prompt("Explain an Odoo model's purpose, fields and relationships", [
        ("model", "Technical model name, e.g. sale.order", True),
    ])
    def _prompt_explain_model(self, model):
        records = self._ocore_prompt_model(model)
        facts = self._ocore_model_facts(records)
        return (
            f"Explain the Odoo model `{records._name}` of this instance ({self._ocore_instance_line()}).\n"
            "Describe its business purpose, the role of its key fields, how it relates to the other models "
            "(what points to it and what it points to), its constraints, and anything custom or unusual "
            "(x_ fields, manual fields, extending modules). Base the explanation on these facts from the "
            "instance:\n\n" + facts
        )

    # -- analyze_error ----------------------------------------------------------------------

    def _ocore_traceback_names(self, text):
        """(models, {model: fields}, unknown names, modules) mentioned in a traceback."""
        registry = self.env.registry
        found_models, fields, unknown = [], {}, []
        for token in _DOTTED.findall(text):
            if token in registry and token not in found_models:
                found_models.append(token)
            elif "." in token:
                head, tail = token.rsplit(".", 1)
                if head in registry:
                    if head not in found_models:
                        found_models.append(head)
                    fields.setdefault(head, [])
                    if tail not in fields[head]:
                        fields[head].append(tail)
        words = list(dict.fromkeys(_QUOTED.findall(text) + _ATTRIBUTE.findall(text)))
        for word in words:
            owners = [m for m in found_models if word in registry[m]._fields]
            for model in owners:
                fields.setdefault(model, [])
                if word not in fields[model]:
                    fields[model].append(word)
            if not owners and word in _QUOTED.findall(text) and word not in registry:
                unknown.append(word)
        modules = list(dict.fromkeys(m for m in _MODULE_PATH.findall(text) if compat.read_manifest(m)))
        return found_models, fields, unknown, modules

    @mcp_prompt("Analyze an Odoo traceback and suggest fixes", [
        ("traceback", "The full Python traceback or error message", True),
        ("context", "What was being done when the error happened (optional)", False),
    ])
    def _prompt_analyze_error(self, traceback, context=None):
        from .metadata import model_modules

        text = traceback[-MAX_TRACEBACK:]
        last = next((line.strip() for line in reversed(text.strip().splitlines()) if line.strip()), "")
        found_models, fields, unknown, modules = self._ocore_traceback_names(text)
        hidden = [m for m in found_models if not self._ocore_allowed(m)]
        shown = [m for m in found_models if self._ocore_allowed(m)][:5]
        sections = []
        for name in shown:
            records = self.env[name]
            wanted = [f for f in fields.get(name, []) if f in records._fields][:20]
            missing = [f for f in fields.get(name, []) if f not in records._fields]
            block = self._ocore_model_facts(records, field_limit=20, only_fields=wanted)
            if missing:
                notes = []
                for f in missing:
                    close = difflib.get_close_matches(f, list(records._fields), n=3)
                    notes.append(f"- `{f}` is NOT a field of {name}" + (f" (similar: {', '.join(close)})" if close
                                                                          else ""))
                block += "\n\n#### Names that do not exist\n" + "\n".join(notes)
            sections.append(block)
            modules += [m for m in model_modules(records) if m not in modules]
        if unknown and shown:
            candidates = {f for m in shown for f in self.env[m]._fields}
            notes = []
            for word in unknown[:10]:
                close = difflib.get_close_matches(word, sorted(candidates), n=3)
                notes.append(f"- `{word}` is not a field of {', '.join(shown)}"
                             + (f" (similar: {', '.join(close)})" if close else ""))
            sections.append("### Quoted names that are not fields of these models\n" + "\n".join(notes))
        if hidden:
            sections.append(f"(Not shown: {', '.join(hidden)} — outside the API key's model allowlist.)")
        versions = self._ocore_module_versions(modules[:15]) if modules else []
        parts = [
            (f"Analyze this Odoo error from the instance ({self._ocore_instance_line()}). Identify the root cause "
            "(which module, model, field or data), explain it, and suggest concrete fixes (code, data or "
            "configuration), most likely first. Use the instance facts below: they show what really exists."),
            "",
            f"**Error:** {last}",
        ]
        if context:
            parts += ["", f"**Context given by the user:** {context}"]
        parts += ["", "```", text.strip(), "```"]
        if versions:
            parts += ["", "### Modules involved", fieldlib.markdown_table(
                versions, ["module", "state", "installed version", "code version"])]
        if sections:
            parts += ["", "## Definitions on this instance", "", "\n\n".join(sections)]
        else:
            parts += ["", "(No model of this instance is named in the traceback.)"]
        return "\n".join(parts)

    # -- debug_performance ---------------------------------------------------------------------

    def _ocore_table_facts(self, records):
        cr = self.env.cr
        table = records._table
        cr.execute(
            """SELECT c.reltuples::bigint, pg_total_relation_size(c.oid), pg_relation_size(c.oid),
                      s.seq_scan, s.idx_scan, s.n_live_tup, s.n_dead_tup, s.last_autovacuum, s.last_autoanalyze
                 FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
                WHERE c.relname = %s AND c.relkind = 'r' AND pg_table_is_visible(c.oid)""",
            (table,),
        )
        row = cr.fetchone()
        if not row:
            return [f"- Table {table} does not exist."], []
        est, total, heap, seq, idx, live, dead, vacuum, analyze = row
        lines = [
            (f"- Table `{table}`: ~{live if live is not None else est} rows, {total // 1024} kB in total "
            f"({heap // 1024} kB data); {dead or 0} dead rows"),
            f"- Scans since statistics reset: {seq or 0} sequential, {idx or 0} by index",
            f"- Last autovacuum: {vacuum or 'never'}; last autoanalyze: {analyze or 'never'}",
        ]
        cr.execute(
            """SELECT i.relname, pg_get_indexdef(i.oid), a.attname
                 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                 JOIN pg_class t ON t.oid = x.indrelid
                 LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
                WHERE t.relname = %s AND pg_table_is_visible(t.oid) ORDER BY i.relname""",
            (table,),
        )
        indexes = cr.fetchall()
        leading = {col for _n, _d, col in indexes if col}
        missing = []
        for name, field in records._fields.items():
            if field.type == "many2one" and field.store and field.column_type and name not in leading:
                missing.append(f"{name} -> {field.comodel_name}")
        lines.append(f"- Indexes ({len(indexes)}): " + "; ".join(d for _n, d, _c in indexes[:30]))
        stored_computed = [n for n, f in records._fields.items() if f.compute and f.store]
        lines.append(f"- Stored computed fields ({len(stored_computed)}): {', '.join(stored_computed[:40]) or 'none'}")
        return lines, missing

    @mcp_prompt("Diagnose Odoo performance issues based on symptoms", [
        ("symptoms", "What is slow and when, e.g. 'the sale order list takes 20 s to open'", True),
        ("model", "Technical name of the model involved (optional)", False),
    ])
    def _prompt_debug_performance(self, symptoms, model=None):
        admin = self._ocore_is_admin()
        parts = [
            (f"Diagnose this Odoo performance problem on the instance ({self._ocore_instance_line()}) and "
            "suggest concrete, safe steps (indexes, ORM patterns, cron schedules, worker and database "
            "settings), most effective first. Use the facts measured on the instance below."),
            "",
            f"**Symptoms:** {symptoms}",
            "",
        ]
        if admin:
            self._ocore_mark_admin_output()
        parts += self._ocore_server_facts() if admin else [
            "### Server",
            "- (The server's configuration, the database's statistics and the tables' statistics are shown to "
            "system administrators only.)",
        ]
        if model:
            records = self._ocore_prompt_model(model)
            parts += ["", f"### Model `{records._name}` ({records._description})",
                      f"- Records: {self._ocore_record_count(records)}"]
            if records._auto and not records._abstract and admin:
                lines, missing = self._ocore_table_facts(records)
                parts += lines
                parts.append(
                    "- many2one columns without an index (searching / grouping by them scans the table): "
                    + (", ".join(missing) if missing else "none")
                )
        elif admin:
            parts += ["", "### Largest tables", self._ocore_largest_tables()]
        parts += ["", "### Scheduled actions (ir.cron)", self._ocore_cron_facts()]
        return "\n".join(parts)

    def _ocore_server_facts(self):
        """Server configuration, database size and connections (system administrators only)."""
        cr = self.env.cr
        lines = [
            "### Server",
            (f"- Workers: {config.get('workers') or 0} ({'prefork' if config.get('workers') else 'threaded'}), "
            f"cron threads: {config.get('max_cron_threads')}, db_maxconn: {config.get('db_maxconn')}"),
            (f"- limit_time_cpu: {config.get('limit_time_cpu')} s, limit_time_real: {config.get('limit_time_real')} s, "
            f"limit_memory_soft: {int(config.get('limit_memory_soft') or 0) // (1024 * 1024)} MB"),
        ]
        cr.execute("SELECT pg_database_size(current_database()), current_setting('server_version')")
        size, pg_version = cr.fetchone()
        cr.execute(
            """SELECT state, count(*), max(extract(epoch FROM now() - query_start))::int
                 FROM pg_stat_activity WHERE datname = current_database() GROUP BY state ORDER BY state"""
        )
        activity = ", ".join(f"{state or 'other'}: {count} (longest {longest or 0} s)"
                             for state, count, longest in cr.fetchall())
        return lines + [
            f"- PostgreSQL {pg_version}; database size {size // (1024 * 1024)} MB",
            f"- Database connections: {activity or 'none'}",
        ]

    def _ocore_largest_tables(self):
        """The largest tables of the models in the key's allowlist (system administrators only: table-wide
        statistics, record rules do not apply)."""
        cr = self.env.cr
        tables = {m._table: name for name, m in ((n, self.env[n]) for n in self.env.registry.models)
                  if m._auto and not m._abstract and self._ocore_allowed(name)}
        cr.execute(
            """SELECT relname, n_live_tup, pg_total_relation_size(relid), seq_scan, idx_scan, n_dead_tup
                 FROM pg_stat_user_tables WHERE relname = ANY(%s)
                ORDER BY pg_total_relation_size(relid) DESC LIMIT 12""",
            (list(tables),),
        )
        rows = [
            {"model": tables[r[0]], "table": r[0], "rows": r[1], "size kB": r[2] // 1024,
             "seq scans": r[3], "index scans": r[4], "dead rows": r[5]}
            for r in cr.fetchall()
        ]
        return fieldlib.markdown_table(rows, ["model", "table", "rows", "size kB", "seq scans", "index scans",
                                              "dead rows"])

    def _ocore_cron_facts(self):
        if not self._ocore_allowed("ir.cron"):
            return "(not shown: ir.cron is outside the API key's model allowlist)"
        crons = self.env["ir.cron"]
        if not compat.has_access(crons, "read"):
            return "(not shown: the user may not read scheduled actions)"
        active = crons.search([("active", "=", True)], order="nextcall")
        cr = self.env.cr
        cr.execute("SELECT now() at time zone 'UTC'")
        now = cr.fetchone()[0]
        overdue = active.filtered(lambda c: c.nextcall and (now - c.nextcall).total_seconds() > 3600)
        rows = []
        for cron in active[:15]:
            row = {
                "cron": cron.cron_name,
                "every": f"{cron.interval_number} {cron.interval_type}",
                "next call": cron.nextcall,
                "last call": cron.lastcall or None,
            }
            if "failure_count" in cron._fields:
                row["failures"] = cron.failure_count
            rows.append(row)
        columns = ["cron", "every", "next call", "last call"] + (["failures"] if "failure_count" in crons._fields
                                                                 else [])
        return (f"{len(active)} active, {len(overdue)} overdue by more than an hour"
                + (f" ({', '.join(overdue.mapped('cron_name')[:10])})" if overdue else "")
                + "\n\n" + fieldlib.markdown_table(rows, columns))
