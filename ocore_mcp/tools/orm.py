"""ORM tools (category "orm"): CRUD, execute_method and batch operations.

Every tool runs as the key owner (ACLs, record rules and company rules apply)
inside the pipeline's savepoint; the pipeline enforces read-only keys, the
production guard, ``confirm`` for unlink/batch_delete and ``dry_run``.

execute_method / batch_execute
    Call a public model method that no other tool covers. Refused: private
    methods (leading underscore or ``@api.private``), the methods in
    ``BLOCKED_METHODS`` (environment switching such as sudo/with_user/
    with_context, cache and schema internals, and create/write/unlink/copy/load,
    which have dedicated tools that keep confirm and dry_run meaningful), any
    method whose name mentions passwords, TOTP or API keys, and every method of
    the models in ``BLOCKED_MODELS`` (system parameters, access rules, server
    actions, crons, modules …) and of the protected models of
    ``ocore.mcp.toolset._data_model``. Methods in ``READONLY_METHODS``
    (name_search, default_get, onchange, fields_get, read_group …) do not need
    write access (``readonly_when``): read-only keys and instances with
    mcp_write_enabled off may call them, and their savepoint is always rolled
    back so that such a call cannot write anything.

Batch tools
    At most ``BATCH_MAX`` items; each item runs in its own savepoint so a
    failing item is rolled back alone and reported with ``ok: false`` and its
    error, while the others are kept. Malformed input (an unknown field, an
    item that is not an object …) refuses the whole batch before anything runs.
"""

import contextlib
import logging
from typing import Annotated, Any, Literal

import psycopg2
from pydantic import Field

from odoo import _, models
from odoo.exceptions import MissingError

from ..lib import compat, errors
from ..lib import fields as fieldlib
from ..lib.errors import Refusal
from ..lib.tooling import mcp_tool

_logger = logging.getLogger(__name__)

MAX_IDS = 1000
BATCH_MAX = 500

RecordId = Annotated[int, Field(strict=True, gt=0)]
RecordIds = Annotated[list[RecordId], Field(min_length=1, max_length=MAX_IDS)]
BatchIds = Annotated[list[RecordId], Field(min_length=1, json_schema_extra={"maxItems": BATCH_MAX})]
BatchItems = Annotated[list[dict[str, Any]], Field(min_length=1, json_schema_extra={"maxItems": BATCH_MAX})]
Limit = Annotated[int, Field(ge=1, le=2000)]
Offset = Annotated[int, Field(ge=0)]

# Read-only methods: they pass the write check and always run in a rolled-back savepoint.
READONLY_METHODS = frozenset(
    {
        "name_search",
        "name_get",
        "default_get",
        "onchange",
        "fields_get",
        "search",
        "search_count",
        "search_read",
        "read",
        "read_group",
        "formatted_read_group",
        "web_search_read",
        "web_read",
        "web_read_group",
        "check_access",
        "has_access",
        "check_access_rights",
        "check_access_rule",
        "check_field_access_rights",
        "get_views",
        "get_view",
        "get_metadata",
        "get_external_id",
        "get_field_translations",
        "export_data",
        "exists",
        "copy_data",
        "get_base_url",
        "get_empty_list_help",
    }
)

_USE_TOOL = "use the dedicated {} tool (it supports dry_run and returns the records)"
_INTERNAL = "an ORM internal, not an operation"
# Methods never called through execute_method / batch_execute, with the reason given to the client.
BLOCKED_METHODS = {
    "sudo": "it would bypass the key owner's access rights",
    "with_user": "it would act as another user",
    "with_env": "it would act in another environment",
    "with_context": "it could change companies or access checks; use the common 'context' parameter",
    "with_company": "use the common 'context' parameter (company_id)",
    "with_prefetch": _INTERNAL,
    "create": _USE_TOOL.format("create / batch_create"),
    "write": _USE_TOOL.format("write / batch_update"),
    "unlink": "use the unlink / batch_delete tool (deletion needs confirm: true)",
    "copy": _USE_TOOL.format("copy / batch_copy"),
    "load": "bulk import is not available through execute_method",
    "update_field_translations": "translations are updated by the metadata tools",
    "copy_translations": _INTERNAL,
    "init": _INTERNAL,
    "browse": _INTERNAL,
    "new": _INTERNAL,
    "ensure_one": _INTERNAL,
    "concat": _INTERNAL,
    "union": _INTERNAL,
    "mapped": _INTERNAL,
    "filtered": _INTERNAL,
    "filtered_domain": _INTERNAL,
    "sorted": _INTERNAL,
    "grouped": _INTERNAL,
    "update": _INTERNAL,
    "modified": _INTERNAL,
    "flush": _INTERNAL,
    "flush_model": _INTERNAL,
    "flush_recordset": _INTERNAL,
    "invalidate_cache": _INTERNAL,
    "invalidate_model": _INTERNAL,
    "invalidate_recordset": _INTERNAL,
    "clear_caches": _INTERNAL,
    "pool": _INTERNAL,
    "shell": "code execution belongs to the shell tools",
    "exec": "code execution belongs to the shell tools",
    "eval": "code execution belongs to the shell tools",
}
# Any method whose name contains one of these words (credentials).
BLOCKED_WORDS = ("password", "passwd", "totp", "apikey", "api_key", "secret", "token")
# Models execute_method never touches (besides the protected models of every data tool).
BLOCKED_MODELS = {
    "ir.config_parameter": "system parameters belong to the system tools",
    "ir.rule": "record rules define access control",
    "ir.model.access": "access rights define access control",
    "res.groups": "user groups define access control",
    "ir.actions.server": "server actions run code (shell tools)",
    "ir.cron": "scheduled actions run code (system tools)",
    "base.automation": "automation rules run code",
    "ir.module.module": "modules are managed by the module tools",
    "ir.module.module.dependency": "modules are managed by the module tools",
    "base.module.upgrade": "modules are managed by the module tools",
    "base.module.uninstall": "modules are managed by the module tools",
    "base.module.update": "modules are managed by the module tools",
    "base.module.install.request": "modules are managed by the module tools",
    "base.language.install": "languages are managed by the system tools",
    "ir.model.data": "external identifiers are infrastructure",
    "ir.model": "the data model is managed by Odoo",
    "ir.model.fields": "the data model is managed by Odoo",
    "ir.attachment": "attachments have their own tools",
    "ir.logging": "logs are read by the system tools",
    "change.password.wizard": "passwords are not managed through MCP",
    "change.password.user": "passwords are not managed through MCP",
    "change.password.own": "passwords are not managed through MCP",
}


def readonly_call(args):
    """``readonly_when`` of execute_method / batch_execute: the method only reads."""
    return args.get("method") in READONLY_METHODS


class _RollBack(Exception):  # noqa: N818 - control flow
    pass


def error_text(exc):
    """A per-item error message, with the same wording as the pipeline's (lib/errors.py)."""
    if not isinstance(exc, errors.EXPECTED):
        _logger.warning("MCP batch item failed", exc_info=exc)
    return errors.error_text(exc)


class OrmTools(models.AbstractModel):
    _name = "ocore.mcp.tools.orm"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: ORM"

    # -- helpers -------------------------------------------------------------------

    def _ocore_existing(self, records, ids):
        """browse(ids) after a not-found check (nothing is done when an id is missing)."""
        ids = list(dict.fromkeys(ids))
        found = records.browse(ids).exists()
        missing = [i for i in ids if i not in set(found.ids)]
        if missing:
            raise Refusal(
                "invalid_input", f"not found: {records._name} has no record(s) with id {', '.join(map(str, missing))}"
            )
        return records.browse(ids)

    def _ocore_progress(self, done, total):
        call = self._call()
        if call is not None:
            call.progress(done, total)

    def _ocore_method(self, model, method, ids):
        """Check an execute_method target; return (recordset to call on, bound method)."""
        records = self._data_model(model, abstract=True)
        reason = BLOCKED_MODELS.get(model)
        if reason:
            raise Refusal("model_denied", f"execute_method cannot be used on {model}: {reason}")
        if method.startswith("_"):
            raise Refusal("method_denied", f"{model}.{method} is a private method and cannot be called")
        reason = BLOCKED_METHODS.get(method)
        if reason:
            raise Refusal("method_denied", f"method {method!r} is blocked: {reason}")
        if any(word in method.lower() for word in BLOCKED_WORDS):
            raise Refusal("method_denied", f"method {method!r} is blocked: credentials are not managed through MCP")
        if compat.is_api_private(records, method):
            raise Refusal("method_denied", f"{model}.{method} is a private method (@api.private) and cannot be called")
        if not callable(getattr(type(records), method, None)):
            raise Refusal("invalid_input", f"method: {model} has no method {method!r}")
        if ids:
            if compat.is_model_method(getattr(records, method)):
                raise Refusal("invalid_input", f"{model}.{method} is a model-level method: call it without ids")
            records = self._ocore_existing(records, ids)
            compat.check_access(records, "read")
        return records, getattr(records, method)

    def _ocore_invoke(self, bound, args, kwargs, readonly):
        """Call ``bound(*args, **kwargs)``; return its result as JSON data. A read-only call is
        always rolled back (so it cannot write whatever the method does)."""
        if not readonly:
            return fieldlib.jsonable(bound(*args, **kwargs))
        value = None
        with contextlib.suppress(_RollBack), self.env.cr.savepoint():
            value = fieldlib.jsonable(bound(*args, **kwargs))
            raise _RollBack
        return value

    def _ocore_batch_size(self, items, what):
        if len(items) > BATCH_MAX:
            raise Refusal(
                "invalid_input",
                f"{what}: batch too large, {len(items)} items; the maximum is {BATCH_MAX}. Nothing was done; "
                "split it into several calls.",
            )

    def _ocore_missing_record(self, model, record_id):
        """The MissingError of a batch item whose record does not exist (built here, where ``self.env``
        gives the message its language)."""
        return MissingError(_("%(model)s has no record with id %(id)s", model=model, id=record_id))

    def _ocore_batch(self, items, run, describe):
        """Run ``run(item)`` for every item in its own savepoint; collect per-item results."""
        total = len(items)
        results = []
        for index, item in enumerate(items):
            entry = {"index": index, **describe(item)}
            try:
                with self.env.cr.savepoint():
                    value = run(item)
                entry.update(ok=True, **(value or {}))
            except psycopg2.errors.QueryCanceled:
                raise  # statement_timeout: the whole call fails
            except Exception as exc:  # noqa: BLE001 - an item's failure is its result
                entry.update(ok=False, error=error_text(exc))
            results.append(entry)
            self._ocore_progress(index + 1, total)
        succeeded = sum(1 for r in results if r["ok"])
        return {"total": total, "succeeded": succeeded, "failed": total - succeeded, "results": results}

    def _ocore_record_ref(self, record):
        return {"id": record.id, "display_name": record.display_name}

    # -- CRUD ----------------------------------------------------------------------

    @mcp_tool("orm", kind="read", title="Search records")
    def _tool_search_read(
        self,
        model: str,
        domain: list | None = None,
        fields: list[str] | None = None,
        limit: Limit = 80,
        offset: Offset = 0,
        order: str | None = None,
        format: Literal["json", "text"] = "json",  # noqa: A002 - the spec's parameter name
    ) -> dict:
        """Search and read records. Pages: has_more, next_offset. format text: a table."""
        return self._ocore_search_page(model, domain, fields, limit, offset, order, format, with_total=False)

    @mcp_tool("orm", kind="read", title="Read records")
    def _tool_read(self, model: str, ids: RecordIds, fields: list[str] | None = None) -> dict:
        """Read records by id; missing ids are listed in not_found."""
        records = self._data_model(model)
        names = self._ocore_fields(records, fields)
        ids = list(dict.fromkeys(ids))
        found = records.browse(ids).exists()
        found_ids = set(found.ids)
        records = records.browse([i for i in ids if i in found_ids])
        return {
            "model": model,
            "count": len(records),
            "not_found": [i for i in ids if i not in found_ids],
            "fields": names,
            "records": self._ocore_read(records, names),
        }

    @mcp_tool("orm", kind="read", title="Count records")
    def _tool_count(self, model: str, domain: list | None = None) -> dict:
        """Count the records matching a domain."""
        records = self._data_model(model)
        domain = self._ocore_domain(records, domain)
        return {"model": model, "count": records.search_count(domain)}

    @mcp_tool("orm", kind="write", title="Create record")
    def _tool_create(self, model: str, values: dict[str, Any], fields: list[str] | None = None) -> dict:
        """Create a record.

        Args:
            values: e.g. {"name": "Acme"}; a many2one takes an id, an x2many Odoo commands ([[6, 0, [1,
                2]]]).
        """
        records = self._data_model(model)
        values = fieldlib.normalize_values(records, values)
        names = self._ocore_fields(records, fields, prefer=list(values))
        record = records.create(values)
        return {"model": model, "id": record.id, "record": self._ocore_read(record, names)[0]}

    @mcp_tool("orm", kind="write", title="Update records")
    def _tool_write(self, model: str, ids: RecordIds, values: dict[str, Any], fields: list[str] | None = None) -> dict:
        """Update records with the same values.

        Args:
            values: e.g. {"phone": "+123"}.
        """
        records = self._data_model(model)
        values = fieldlib.normalize_values(records, values)
        names = self._ocore_fields(records, fields, prefer=list(values))
        target = self._ocore_existing(records, ids)
        target.write(values)
        return {"model": model, "updated": len(target), "records": self._ocore_read(target, names)}

    @mcp_tool("orm", kind="destructive", title="Delete records")
    def _tool_unlink(self, model: str, ids: RecordIds) -> dict:
        """Delete records."""
        records = self._data_model(model)
        target = self._ocore_existing(records, ids)
        compat.check_access(target, "unlink")
        deleted = [self._ocore_record_ref(rec) for rec in target]
        target.unlink()
        return {"model": model, "deleted_count": len(deleted), "deleted": deleted}

    @mcp_tool("orm", kind="write", title="Duplicate record")
    def _tool_copy(
        self,
        model: str,
        id: RecordId,  # noqa: A002 - the natural argument name for a client
        default: dict[str, Any] | None = None,
        fields: list[str] | None = None,
    ) -> dict:
        """Duplicate a record with overrides.

        Args:
            default: Field overrides.
        """
        records = self._data_model(model)
        default = fieldlib.normalize_values(records, default, "default") if default else None
        names = self._ocore_fields(records, fields, prefer=list(default or ()))
        source = self._ocore_existing(records, [id])
        new = source.copy(default)
        return {"model": model, "source_id": id, "id": new.id, "record": self._ocore_read(new, names)[0]}

    @mcp_tool("orm", kind="write", identifier_args=("method",), readonly_when=readonly_call, title="Call method")
    def _tool_execute_method(
        self,
        model: str,
        method: str,
        ids: RecordIds | None = None,
        args: list | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> dict:
        """Call a public model method (e.g. action_confirm). Refused: private, ORM internals,
        create/write/unlink/copy (own tools), credentials, configuration models. Read-only methods skip
        the write check.

        Args:
            ids: Omit for model-level methods.
        """
        if "context" in (kwargs or {}):
            raise Refusal("invalid_input", "kwargs.context is not accepted; use the common 'context' parameter")
        records, bound = self._ocore_method(model, method, ids)
        readonly = readonly_call({"method": method})
        result = self._ocore_invoke(bound, args or [], kwargs or {}, readonly)
        return {"model": model, "method": method, "ids": records.ids, "read_only": readonly, "result": result}

    # -- batch ---------------------------------------------------------------------

    @mcp_tool("orm", kind="write", title="Create records")
    def _tool_batch_create(self, model: str, values_list: BatchItems) -> dict:
        """Create records, each on its own.

        Args:
            values_list: Field values per record.
        """
        self._ocore_batch_size(values_list, "values_list")
        records = self._data_model(model)
        values_list = [
            fieldlib.normalize_values(records, vals, f"values_list[{i}]") for i, vals in enumerate(values_list)
        ]

        def run(vals):
            return self._ocore_record_ref(records.create(vals))

        return {"model": model, **self._ocore_batch(values_list, run, lambda vals: {})}

    @mcp_tool("orm", kind="write", title="Update records (batch)")
    def _tool_batch_update(self, model: str, updates: BatchItems) -> dict:
        """Update records, each with its values, each on its own.

        Args:
            updates: [{"id": 42, "values": {…}}].
        """
        self._ocore_batch_size(updates, "updates")
        records = self._data_model(model)
        checked = []
        for i, item in enumerate(updates):
            record_id = item.get("id")
            if set(item) != {"id", "values"} or not isinstance(record_id, int) or isinstance(record_id, bool):
                raise Refusal(
                    "invalid_input", f'updates[{i}]: must be {{"id": <integer>, "values": {{...}}}}, got {item!r}'
                )
            if record_id <= 0:
                raise Refusal("invalid_input", f"updates[{i}].id: {record_id} is not a record id")
            values = fieldlib.normalize_values(records, item["values"], f"updates[{i}].values")
            checked.append({"id": record_id, "values": values})
        updates = checked

        def run(item):
            record = records.browse(item["id"])
            if not record.exists():
                raise self._ocore_missing_record(model, item["id"])
            record.write(item["values"])
            return {"display_name": record.display_name}

        return {"model": model, **self._ocore_batch(updates, run, lambda item: {"id": item["id"]})}

    @mcp_tool("orm", kind="destructive", title="Delete records (batch)")
    def _tool_batch_delete(self, model: str, ids: BatchIds) -> dict:
        """Delete records, each on its own."""
        self._ocore_batch_size(ids, "ids")
        records = self._data_model(model)

        def run(record_id):
            record = records.browse(record_id)
            if not record.exists():
                raise self._ocore_missing_record(model, record_id)
            name = record.display_name
            record.unlink()
            return {"display_name": name}

        return {"model": model, **self._ocore_batch(list(dict.fromkeys(ids)), run, lambda i: {"id": i})}

    @mcp_tool("orm", kind="write", title="Duplicate records")
    def _tool_batch_copy(self, model: str, ids: BatchIds, default: dict[str, Any] | None = None) -> dict:
        """Duplicate records, each on its own.

        Args:
            default: For every copy.
        """
        self._ocore_batch_size(ids, "ids")
        records = self._data_model(model)
        default = fieldlib.normalize_values(records, default, "default") if default else None

        def run(record_id):
            record = records.browse(record_id)
            if not record.exists():
                raise self._ocore_missing_record(model, record_id)
            return {"new_id": (new := record.copy(default)).id, "display_name": new.display_name}

        return {"model": model, **self._ocore_batch(list(ids), run, lambda i: {"id": i})}

    @mcp_tool("orm", kind="write", identifier_args=("method",), readonly_when=readonly_call,
              title="Call method (batch)")
    def _tool_batch_execute(
        self,
        model: str,
        method: str,
        ids: BatchIds,
        args: list | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> dict:
        """Call a method on records, each on its own (rules of execute_method).

        Args:
            args: For every call.
            kwargs: For every call.
        """
        self._ocore_batch_size(ids, "ids")
        if "context" in (kwargs or {}):
            raise Refusal("invalid_input", "kwargs.context is not accepted; use the common 'context' parameter")
        records, bound = self._ocore_method(model, method, None)
        if records._abstract:
            raise Refusal("invalid_input", f"model: {model!r} is an abstract model, it has no records")
        if compat.is_model_method(bound):
            raise Refusal("invalid_input", f"{model}.{method} is a model-level method: use execute_method without ids")
        readonly = readonly_call({"method": method})

        def run(record_id):
            record = records.browse(record_id)
            if not record.exists():
                raise self._ocore_missing_record(model, record_id)
            compat.check_access(record, "read")
            return {"result": self._ocore_invoke(getattr(record, method), args or [], kwargs or {}, readonly)}

        return {
            "model": model,
            "method": method,
            "read_only": readonly,
            **self._ocore_batch(list(dict.fromkeys(ids)), run, lambda i: {"id": i}),
        }
