"""Knowledge and Context tools (category "context"): notes, summaries, saved filters, bookmarks, get_context.

The knowledge is Odoo records (ocore.mcp.note, ocore.mcp.saved.filter, ocore.mcp.bookmark) of the
company the API key acts in: a record rule shows them to every user of that company, so every key of
the company shares them. Every tool runs as the key owner; deleting soft-deletes (the record is
archived and leaves every query).

Bookmarks without ``audit_log_id`` take the most recent earlier call of the current MCP session. A
stateless 2026-07-28 request has no session: then it is the most recent earlier call made with the
same API key.
"""

import json
from typing import Annotated, Literal

from pydantic import Field

from odoo import Command, models
from odoo.exceptions import ValidationError

from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.lib.fields import format_date_or_none as _dt
from odoo.addons.ocore_mcp.lib.redact import redact
from odoo.addons.ocore_mcp.lib.shaping import TextResult, summary
from odoo.addons.ocore_mcp.lib.tooling import mcp_tool
from odoo.addons.ocore_mcp.service import audit
from odoo.addons.ocore_mcp.service.policy import Refusal

from ..models.bookmark import LABEL_MAX, NOTE_MAX, RESULT_MAX
from ..models.knowledge_note import BODY_MAX, NOTES_PER_SCOPE, TITLE_MAX, target_of
from ..models.knowledge_tag import SUMMARY_TAG, TAG_MAX, TAGS_MAX, clean_tag
from ..models.saved_filter import DEFAULT_LIMIT, LIMIT_MAX, NAME_MAX, domain_text, parse_domain, split_fields

Id = Annotated[int, Field(strict=True, gt=0)]
Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX)]
Body = Annotated[str, Field(max_length=BODY_MAX)]
Tags = Annotated[list[Annotated[str, Field(min_length=1, max_length=TAG_MAX)]], Field(max_length=TAGS_MAX)]
TargetType = Literal["instance", "model", "record", "field", "module"]
FilterName = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
Limit = Annotated[int, Field(ge=1, le=LIMIT_MAX)]
Offset = Annotated[int, Field(ge=0)]
BOOKMARKS_MAX = 50
LIST_MAX = 200


class ContextTools(models.AbstractModel):
    _name = "ocore.mcp.tools.context"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: knowledge and context"

    # -- helpers -------------------------------------------------------------------------

    def _ocore_company_domain(self):
        return [("company_id", "=", self.env.company.id)]

    def _ocore_key_id(self):
        call = self._call()
        return call.connection.key.id if call is not None else False

    def _ocore_tags(self, names):
        try:
            return self.env["ocore.mcp.knowledge.tag"]._ocore_get(names)
        except ValidationError as exc:
            raise Refusal("invalid_input", f"tags: {exc.args[0]}") from None

    def _ocore_find(self, model, record_id, what):
        """A live knowledge record of the key's company, or a not_found refusal."""
        found = self.env[model].search([("id", "=", record_id), *self._ocore_company_domain()])
        if not found:
            raise Refusal("not_found", f"no {what} with id {record_id} (deleted, or of another company)")
        return found

    def _ocore_admin_output(self, marks):
        """Bookmarks of administrators' tools in this call's result (only administrators see them): the
        call's audit row repeats their output, it becomes an administrators' row too."""
        call = self._call()
        if call is not None and any(marks.sudo().mapped("admin_only")):
            audit.mark_admin_only_output(self.env.cr, call.audit_id)

    def _ocore_note_row(self, note):
        return {
            "id": note.id,
            "title": note.title,
            "body": note.body or "",
            "tags": sorted(note.tag_ids.mapped("name")),
            "target_type": note.target_type,
            "target": note.target,
            "model": note.target_model or None,
            "record_id": note.target_res_id or None,
            "field": note.target_field or None,
            "module": note.target_module or None,
            "is_summary": note.is_summary,
            "author": note.create_uid.name,
            "updated": _dt(note.write_date),
        }

    def _ocore_filter_row(self, flt):
        try:
            domain = parse_domain(flt.domain)
        except ValidationError:
            domain = flt.domain
        return {
            "id": flt.id,
            "name": flt.name,
            "model": flt.model,
            "model_installed": flt.model_installed,
            "description": flt.description or "",
            "domain": domain,
            "fields": split_fields(flt.field_names),
            "order": flt.order or None,
            "limit": flt.limit,
            "is_default": flt.is_default,
            "use_count": flt.use_count,
            "last_used": _dt(flt.last_used),
        }

    def _ocore_bookmark_row(self, mark, full=True):
        row = {
            "id": mark.id,
            "label": mark.label,
            "tags": sorted(mark.tag_ids.mapped("name")),
            "tool_name": mark.tool_name,
            "instance": mark.instance or None,
            "created": _dt(mark.create_date),
        }
        if full:
            try:
                params = json.loads(mark.tool_params) if mark.tool_params else {}
            except ValueError:
                params = mark.tool_params
            row.update(
                note=mark.note or "",
                tool_params=params,
                result_summary=mark.result_summary or "",
                call_status=mark.call_status or None,
                call_date=_dt(mark.call_date),
                audit_log_id=mark.audit_log_ref or None,
                audit_log_kept=bool(mark.audit_log_id),
            )
        return row

    def _ocore_target_values(self, target_type, model=None, record_id=None, field=None, module=None):
        """Checked target of a note: the model exists (and is allowed for the key), the record exists
        and is readable, the field exists, the module is on this server."""
        given = {"model": model, "record_id": record_id, "field": field, "module": module}
        needs = {
            "instance": (),
            "model": ("model",),
            "record": ("model", "record_id"),
            "field": ("model", "field"),
            "module": ("module",),
        }[target_type]
        missing = [name for name in needs if not given[name]]
        if missing:
            raise Refusal("invalid_input", f"a {target_type} note needs {' and '.join(missing)}")
        extra = [name for name, value in given.items() if value and name not in needs]
        if extra:
            raise Refusal("invalid_input", f"{', '.join(extra)}: not used by {target_type} notes")
        values = {"target_type": target_type}
        if model:
            records = self._model(model)
            values["target_model"] = model
            if record_id:
                record = records.browse(record_id).exists()
                if not record:
                    raise Refusal("not_found", f"record_id: no {model} record with id {record_id}")
                compat.check_access(record, "read")
                values["target_res_id"] = record_id
            if field:
                self._check_fields(records, [field])
                values["target_field"] = field
        if module:
            if compat.read_manifest(module) is None:
                raise Refusal("invalid_input", f"module: no module named {module!r} on this server")
            values["target_module"] = module
        return values

    def _ocore_check_scope_room(self, values):
        target = target_of(values["target_type"], values.get("target_model"), values.get("target_res_id"),
                           values.get("target_field"), values.get("target_module"))
        count = self.env["ocore.mcp.note"].search_count(
            [*self._ocore_company_domain(), ("target_type", "=", values["target_type"]), ("target", "=", target)]
        )
        if count >= NOTES_PER_SCOPE:
            raise Refusal(
                "limit_exceeded",
                f"{target} already has {count} notes (max {NOTES_PER_SCOPE} per target): update or delete "
                "old notes first",
            )
        return target

    # -- notes ---------------------------------------------------------------------------

    @mcp_tool("context", kind="write", identifier_args=("field", "module"), title="Add note")
    def _tool_add_note(
        self,
        target_type: TargetType,
        title: Title,
        body: Body = "",
        tags: Tags | None = None,
        model: str | None = None,
        record_id: Id | None = None,
        field: str | None = None,
        module: str | None = None,
    ) -> dict:
        """Add a note (shared by the company's keys) on the instance, a model, record, field or module.

        Args:
            model: For model, record and field notes.
        """
        values = self._ocore_target_values(target_type, model, record_id, field, module)
        self._ocore_check_scope_room(values)
        tags = self._ocore_tags(tags)
        if SUMMARY_TAG in tags.mapped("name") and target_type not in ("instance", "model"):
            raise Refusal("invalid_input", "only instance and model notes can be summaries")
        note = self.env["ocore.mcp.note"].create(
            {**values, "title": title, "body": body, "tag_ids": [Command.set(tags.ids)], "key_id": self._ocore_key_id()}
        )
        return {"note": self._ocore_note_row(note)}

    @mcp_tool("context", kind="read", title="List notes")
    def _tool_list_notes(
        self,
        target_type: TargetType | None = None,
        model: str | None = None,
        record_id: Id | None = None,
        tags: Tags | None = None,
        search: str | None = None,
        include_summaries: bool = True,
        limit: Annotated[int, Field(ge=1, le=LIST_MAX)] = 50,
        offset: Offset = 0,
    ) -> dict:
        """Notes by target, tags or text, newest first.

        Args:
            model: Notes on this model, its records and fields.
            record_id: With model.
            tags: All of these.
        """
        domain = self._ocore_company_domain()
        if target_type:
            domain.append(("target_type", "=", target_type))
        if model:
            domain.append(("target_model", "=", model))
        if record_id:
            if not model:
                raise Refusal("invalid_input", "record_id needs model")
            domain.append(("target_res_id", "=", record_id))
        for tag in tags or []:
            domain.append(("tag_ids.name", "=", clean_tag(tag)))
        if search:
            domain += ["|", ("title", "ilike", search), ("body", "ilike", search)]
        if not include_summaries:
            domain.append(("is_summary", "=", False))
        Note = self.env["ocore.mcp.note"]
        notes = Note.search(domain, limit=limit, offset=offset, order="write_date desc, id desc")
        total = Note.search_count(domain)
        return {
            "total": total,
            "count": len(notes),
            "has_more": offset + len(notes) < total,
            "notes": [self._ocore_note_row(n) for n in notes],
        }

    @mcp_tool("context", kind="write", title="Update note")
    def _tool_update_note(
        self,
        note_id: Id,
        title: Title | None = None,
        body: Body | None = None,
        tags: Tags | None = None,
    ) -> dict:
        """Update a note: only the fields given (tags replace the note's)."""
        note = self._ocore_find("ocore.mcp.note", note_id, "note")
        values = {}
        if title is not None:
            values["title"] = title
        if body is not None:
            values["body"] = body
        if tags is not None:
            values["tag_ids"] = [Command.set(self._ocore_tags(tags).ids)]
        if not values:
            raise Refusal("invalid_input", "nothing to update: give title, body or tags")
        note.write(values)
        return {"note": self._ocore_note_row(note)}

    @mcp_tool("context", kind="destructive", title="Delete note")
    def _tool_delete_note(self, note_id: Id) -> dict:
        """Delete a note."""
        note = self._ocore_find("ocore.mcp.note", note_id, "note")
        note._ocore_soft_delete()
        return {"deleted": True, "id": note.id, "title": note.title}

    def _ocore_upsert_summary(self, values, text, title):
        Note = self.env["ocore.mcp.note"]
        target = target_of(values["target_type"], values.get("target_model"))
        note = Note.search([*self._ocore_company_domain(), ("target_type", "=", values["target_type"]),
                            ("target", "=", target), ("is_summary", "=", True)], limit=1)
        if note:
            note.write({"body": text, **({"title": title} if title else {})})
            return {"note": self._ocore_note_row(note), "created": False}
        self._ocore_check_scope_room(values)
        tag = self._ocore_tags([SUMMARY_TAG])
        note = Note.create({
            **values,
            "title": title or (f"Summary of {target}" if values["target_type"] == "model" else "Instance summary"),
            "body": text,
            "tag_ids": [Command.set(tag.ids)],
            "key_id": self._ocore_key_id(),
        })
        return {"note": self._ocore_note_row(note), "created": True}

    @mcp_tool("context", kind="write", title="Set model summary")
    def _tool_set_model_summary(self, model: str, summary: Body, title: Title | None = None) -> dict:
        """Set a model's summary note."""
        return self._ocore_upsert_summary(self._ocore_target_values("model", model=model), summary, title)

    @mcp_tool("context", kind="write", model_args=(), title="Set instance summary")
    def _tool_set_instance_summary(self, summary: Body, title: Title | None = None) -> dict:
        """Set the instance's summary note."""
        return self._ocore_upsert_summary({"target_type": "instance"}, summary, title)

    # -- saved filters -------------------------------------------------------------------

    def _ocore_find_filter(self, name, filter_id):
        if bool(name) == bool(filter_id):
            raise Refusal("invalid_input", "give either name or filter_id")
        domain = [("id", "=", filter_id)] if filter_id else [("name", "=", name)]
        found = self.env["ocore.mcp.saved.filter"].search([*domain, *self._ocore_company_domain()], limit=1)
        if not found:
            what = f"id {filter_id}" if filter_id else f"named {name!r}"
            raise Refusal("not_found", f"no saved filter {what} (see list_filters)")
        return found

    @mcp_tool("context", kind="write", title="Save filter")
    def _tool_save_filter(
        self,
        name: FilterName,
        model: str,
        domain: list | None = None,
        fields: list[str] | None = None,
        order: str | None = None,
        limit: Limit = DEFAULT_LIMIT,
        description: str | None = None,
        is_default: bool = False,
        replace: bool = False,
    ) -> dict:
        """Save a named search (domain, fields, order, limit) on a model, checked now.

        Args:
            is_default: The model's default filter.
            replace: Overwrite a filter of that name.
        """
        records = self._data_model(model)
        domain = self._ocore_domain(records, domain)
        names = self._ocore_fields(records, fields) if fields else []
        order = self._ocore_order(records, order)
        try:
            records._search(domain)  # Odoo's own domain parsing (operators, values, paths); not run
        except (ValueError, TypeError, KeyError) as exc:
            raise Refusal("invalid_input", f"domain: {exc}") from None
        values = {
            "name": name,
            "model": model,
            "domain": domain_text(domain),
            "field_names": ", ".join(names) or False,
            "order": order or False,
            "limit": limit,
            "description": description or False,
            "is_default": is_default,
        }
        Filter = self.env["ocore.mcp.saved.filter"]
        existing = Filter.search([("name", "=", name), *self._ocore_company_domain()], limit=1)
        if not existing and Filter.sudo().search_count([("name", "=", name), *self._ocore_company_domain()]):
            raise Refusal(
                "invalid_input",
                f"a saved filter named {name!r} already exists (of a model you may not read); choose another name",
            )
        if existing and not replace:
            raise Refusal(
                "invalid_input",
                f"a saved filter named {name!r} already exists (id {existing.id}); choose another name or pass "
                "replace: true",
            )
        if existing:
            existing.write(values)
            flt = existing
        else:
            flt = Filter.create({**values, "key_id": self._ocore_key_id()})
        return {"filter": self._ocore_filter_row(flt), "created": not existing}

    @mcp_tool("context", kind="read", title="List filters")
    def _tool_list_filters(self, model: str | None = None, limit: Annotated[int, Field(ge=1, le=LIST_MAX)] = 100
                           ) -> dict:
        """Saved filters, most used first."""
        domain = self._ocore_company_domain()
        if model:
            domain.append(("model", "=", model))
        Filter = self.env["ocore.mcp.saved.filter"]
        found = Filter.search(domain, limit=limit, order="use_count desc, name, id")
        return {"total": Filter.search_count(domain), "filters": [self._ocore_filter_row(f) for f in found]}

    @mcp_tool("context", kind="read", title="Run filter")
    def _tool_run_filter(
        self,
        name: FilterName | None = None,
        filter_id: Id | None = None,
        limit: Limit | None = None,
        offset: Offset = 0,
        format: Literal["json", "text"] = "json",  # noqa: A002 - as search_read
    ) -> dict:
        """Run a saved filter (name or id): its records, as search_read.

        Args:
            limit: Default: the filter's.
        """
        flt = self._ocore_find_filter(name, filter_id)
        if not flt.model_installed:
            raise Refusal(
                "unavailable",
                f"saved filter {flt.name!r} (id {flt.id}) searches the model {flt.model!r}, which is not installed "
                "on this instance any more (its module was uninstalled). Reinstall the module, or delete the "
                "filter with delete_filter.",
            )
        self._data_model(flt.model)  # the key's model allowlist, protected models
        try:
            domain, names, order = flt._ocore_checked_query()
        except ValidationError as exc:
            raise Refusal("invalid_input", f"{exc.args[0]} (the model changed since the filter was saved?)") from None
        page = self._ocore_search_page(flt.model, domain, names or None, limit or flt.limit, offset, order, format)
        info = {"id": flt.id, "name": flt.name, "use_count": flt._ocore_count_use()}
        if isinstance(page, TextResult):
            page.data["filter"] = info
            page.text = f"Saved filter {flt.name} ({flt.model})\n{page.text}"
            return page
        return {"filter": info, **page}

    @mcp_tool("context", kind="destructive", title="Delete filter")
    def _tool_delete_filter(self, name: FilterName | None = None, filter_id: Id | None = None) -> dict:
        """Delete a saved filter (name or id)."""
        flt = self._ocore_find_filter(name, filter_id)
        flt._ocore_soft_delete()
        return {"deleted": True, "id": flt.id, "name": flt.name, "model": flt.model}

    # -- bookmarks -----------------------------------------------------------------------

    @mcp_tool("context", kind="write", title="Bookmark call")
    def _tool_bookmark_call(
        self,
        label: Annotated[str, Field(min_length=1, max_length=LABEL_MAX)],
        audit_log_id: Id | None = None,
        note: Annotated[str, Field(max_length=NOTE_MAX)] | None = None,
        tags: Tags | None = None,
    ) -> dict:
        """Bookmark a tool call (name, parameters, result summary); default: the session's last call."""
        call = self._call()
        Audit = self.env["ocore.mcp.audit.log"]
        if audit_log_id:
            entry = Audit.search([("id", "=", audit_log_id), ("event", "=", "call")])
            if not entry:
                raise Refusal("not_found", f"no tool call with audit log id {audit_log_id} that you can read")
        else:
            conn = call.connection
            domain = [("event", "=", "call")]
            if call.audit_id:
                domain.append(("id", "<", call.audit_id))  # earlier than this bookmark_call
            if conn.session_id:
                domain.append(("session_id", "=", conn.session_id))
            else:  # stateless request: no session, the key's most recent call
                domain.append(("key_id", "=", conn.key.id))
            entry = Audit.search(domain, order="id desc", limit=1)
            if not entry:
                raise Refusal("not_found", "no earlier tool call in this session to bookmark; pass audit_log_id")
        try:
            params = json.dumps(redact(json.loads(entry.params)), ensure_ascii=False) if entry.params else "{}"
        except ValueError:  # a truncated parameter snapshot: already redacted by the audit writer
            params = entry.params
        mark = self.env["ocore.mcp.bookmark"].create({
            "label": label,
            "note": note or False,
            "tag_ids": [Command.set(self._ocore_tags(tags).ids)],
            "instance": call.connection.settings["slug"],
            "tool_name": entry.tool_name or entry.tool or "?",
            "tool_params": params,
            "result_summary": summary(entry.result_summary or entry.error_message or "", RESULT_MAX) or False,
            "call_status": entry.status or False,
            "call_date": entry.create_date,
            "call_session": entry.session_id or False,
            "audit_log_id": entry.id,
            "audit_log_ref": entry.id,
            "key_id": self._ocore_key_id(),
        })
        row = self._ocore_bookmark_row(mark)
        if mark.admin_only and call.dry_run:  # rolled back with the audit row's mark: the output stays out
            row.update(tool_params={}, result_summary="(an administrators' tool result: not shown in a dry run)")
        self._ocore_admin_output(mark)
        return {"bookmark": row}

    @mcp_tool("context", kind="read", title="List bookmarks")
    def _tool_list_bookmarks(
        self,
        instance: str | None = None,
        tags: Tags | None = None,
        search: str | None = None,
        limit: Annotated[int, Field(ge=1, le=BOOKMARKS_MAX)] = BOOKMARKS_MAX,
    ) -> dict:
        """Bookmarked calls, newest first.

        Args:
            instance: Slug.
            tags: All of these.
        """
        domain = self._ocore_company_domain()
        if instance:
            domain.append(("instance", "=", instance))
        for tag in tags or []:
            domain.append(("tag_ids.name", "=", clean_tag(tag)))
        if search:
            domain += ["|", "|", ("label", "ilike", search), ("note", "ilike", search), ("tool_name", "ilike", search)]
        Bookmark = self.env["ocore.mcp.bookmark"]
        found = Bookmark.search(domain, limit=limit, order="create_date desc, id desc")
        self._ocore_admin_output(found)
        return {"total": Bookmark.search_count(domain), "bookmarks": [self._ocore_bookmark_row(b) for b in found]}

    @mcp_tool("context", kind="destructive", title="Delete bookmark")
    def _tool_delete_bookmark(self, bookmark_id: Id) -> dict:
        """Delete a bookmark."""
        mark = self._ocore_find("ocore.mcp.bookmark", bookmark_id, "bookmark")
        self._ocore_admin_output(mark)
        mark._ocore_soft_delete()
        return {"deleted": True, "id": mark.id, "label": mark.label}

    # -- context -------------------------------------------------------------------------

    @mcp_tool("context", kind="read", title="Load knowledge")
    def _tool_get_context(self, notes_limit: Annotated[int, Field(ge=0, le=LIST_MAX)] = 50) -> dict:
        """The instance's knowledge: summaries, notes, saved filters, recent bookmarks. Use at session start.

        Args:
            notes_limit: Max notes besides summaries.
        """
        company = self._ocore_company_domain()
        Note = self.env["ocore.mcp.note"]
        summaries = Note.search([*company, ("is_summary", "=", True), ("target_type", "in", ("instance", "model"))],
                                order="target_model, id")
        instance = summaries.filtered(lambda n: n.target_type == "instance")[:1]
        model_summaries = summaries.filtered(lambda n: n.target_type == "model")
        plain = [*company, ("is_summary", "=", False)]
        notes = Note.search(plain, limit=notes_limit, order="write_date desc, id desc") if notes_limit else Note
        Filter = self.env["ocore.mcp.saved.filter"]
        filters = Filter.search(company, limit=LIST_MAX, order="use_count desc, name, id")
        marks = self.env["ocore.mcp.bookmark"].search(company, limit=BOOKMARKS_MAX, order="create_date desc, id desc")
        self._ocore_admin_output(marks)
        call = self._call()
        return {
            "instance": call.connection.settings["slug"] if call else None,
            "instance_summary": {"id": instance.id, "title": instance.title, "body": instance.body or ""}
            if instance else None,
            "model_summaries": [
                {"id": n.id, "model": n.target_model, "title": n.title, "body": n.body or ""} for n in model_summaries
            ],
            "notes": [self._ocore_note_row(n) for n in notes],
            "notes_total": Note.search_count(plain),
            "saved_filters": [
                {"id": f.id, "name": f.name, "model": f.model, "description": f.description or "",
                 "use_count": f.use_count, "model_installed": f.model_installed}
                for f in filters
            ],
            "bookmarks": [self._ocore_bookmark_row(b, full=False) for b in marks],
        }
