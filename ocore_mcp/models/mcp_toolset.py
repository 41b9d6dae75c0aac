import logging

from odoo import api, models

from ..lib import fields as fieldlib
from ..lib.errors import Refusal
from ..lib.fields import IDENTIFIER
from ..lib.shaping import TextResult
from ..lib.tooling import collect_tools
from ..service.context import current_call
from ..service.policy import check_model_allowed

_logger = logging.getLogger(__name__)

# Models no generic data tool (ORM, search …) reaches, whatever the key owner's
# rights: the MCP server's own models (keys, sessions, audit log) and the other
# oCore addons' models, and credential stores. Override _ocore_protected_model
# to change the list.
PROTECTED_MODEL_PREFIXES = ("ocore.", "res.users.apikeys", "res.users.identitycheck", "auth_totp.", "auth.totp.")


class McpToolset(models.AbstractModel):
    """Base of every tool family.

    A family is an abstract model inheriting this one, with one decorated
    ``_tool_<name>`` method per tool. An integrator's addon adds or overrides
    tools with ``_inherit = "ocore.mcp.tools.<family>"`` alone.
    """

    _name = "ocore.mcp.toolset"
    _description = "MCP Toolset"

    @api.model
    def _ocore_tool_specs(self):
        """{tool name: ToolSpec} of every installed tool, cached per registry."""
        registry = self.env.registry
        cache = registry.__dict__.get("_ocore_mcp_tool_specs")
        if cache is None:
            base = registry[self._name]
            classes = sorted(
                (name, cls)
                for name, cls in registry.items()
                if name != self._name and isinstance(cls, type) and issubclass(cls, base)
            )
            cache = collect_tools(classes)
            registry._ocore_mcp_tool_specs = cache
            categories = self.env["ocore.mcp.category"].sudo()
            known = set(categories.search([]).mapped("code"))  # pylint: disable=no-search-all  # a few rows
            for spec in cache.values():
                if spec.category not in known:
                    _logger.warning("MCP tool %s (%s) names the category %r, which has no ocore.mcp.category "
                                    "record: keys cannot be scoped to it. Add the record in the tool's addon.",
                                    spec.name, spec.model_name, spec.category)
        return cache

    # -- helpers for tools ---------------------------------------------------

    def _call(self):
        """The running call: arguments, limits, progress(), log(), require_confirm()."""
        return current_call()

    def _model(self, model):
        """Return ``env[model]`` for the key owner, after the identifier and allowlist checks."""
        if not isinstance(model, str) or not IDENTIFIER.match(model):
            raise Refusal("invalid_input", f"model: {model!r} is not a valid model name")
        call = self._call()
        if call is not None:
            check_model_allowed(model, call.connection.scope)
        if model not in self.env:
            raise Refusal("invalid_input", f"model: unknown model {model!r}")
        return self.env[model]

    def _check_fields(self, records, field_names):
        """Refuse unknown field names with a clear message."""
        unknown = [f for f in field_names or [] if f not in records._fields]
        if unknown:
            raise Refusal(
                "invalid_input", f"unknown field(s) on {records._name}: {', '.join(map(str, unknown))}"
            )
        for name in field_names or []:
            if not IDENTIFIER.match(name):
                raise Refusal("invalid_input", f"{name!r} is not a valid field name")
        return field_names

    # -- data helpers (ORM, search and other record-level families) -------------

    def _ocore_protected_model(self, model):
        """Whether generic data tools must never touch this model."""
        return model.startswith(PROTECTED_MODEL_PREFIXES)

    def _data_model(self, model, abstract=False):
        """``_model()`` for tools that read or write records: also refuses protected models and,
        unless ``abstract``, abstract models (they have no records)."""
        records = self._model(model)
        if self._ocore_protected_model(model):
            raise Refusal("model_denied", f"model {model!r} cannot be reached through MCP data tools")
        if records._abstract and not abstract:
            raise Refusal("invalid_input", f"model: {model!r} is an abstract model, it has no records")
        return records

    def _ocore_smart_fields(self, records, prefer=()):
        """The smart field selection of ``records``' model (see lib/fields.py)."""
        return fieldlib.smart_fields(records, prefer=prefer)

    def _ocore_fields(self, records, fields=None, prefer=()):
        """The explicit field names (checked, deduplicated) or, when none, the smart selection."""
        if fields:
            return list(dict.fromkeys(fieldlib.check_field_names(records, fields)))
        return self._ocore_smart_fields(records, prefer=prefer)

    def _ocore_read(self, records, field_names, searched=False):
        """Records as JSON-friendly dicts (many2one as [id, name], dates as text, empty as null).
        ``searched``: they come straight from a search of this env (record rules already applied)."""
        return fieldlib.read_records(records, field_names, searched=searched)

    def _ocore_domain(self, records, domain, what="domain"):
        """A checked domain (structure, operators, field paths) or a Refusal."""
        return fieldlib.check_domain(records, domain, what)

    def _ocore_order(self, records, order):
        """A checked ``order`` (stored fields, asc/desc, nulls first/last only) or a Refusal."""
        return fieldlib.check_order(records, order)

    def _ocore_search_page(self, model, domain, fields=None, limit=80, offset=0, order=None, output_format="json",
                           with_total=True):
        """One page of records with pagination hints; ``output_format="text"`` adds a human-readable
        rendering. ``with_total``: also count every match (one more query when the page is full);
        without it ``total`` is only given when the page is the last one."""
        records = self._data_model(model)
        domain = self._ocore_domain(records, domain)
        names = self._ocore_fields(records, fields)
        order = self._ocore_order(records, order)
        # search_fetch (17.0+) reads the page's fields in the search query itself, like search_read;
        # one row more than the page tells whether another page follows
        stored = [n for n in names if n != "id" and records._fields[n].store]
        found = records.search_fetch(domain, stored, offset=offset, limit=limit + 1, order=order)
        more = len(found) > limit
        found = found[:limit]
        rows = self._ocore_read(found, names, searched=True)
        if not more and (offset == 0 or found):
            total = offset + len(found)  # the last page: its end is the total
        else:
            total = records.search_count(domain) if with_total else None
        has_more = more if total is None else offset + len(found) < total
        data = {
            "model": model,
            "total": total,
            "count": len(rows),
            "offset": offset,
            "limit": limit,
            "has_more": has_more,
            "next_offset": offset + len(found) if has_more else None,
            "fields": names,
            "smart_fields": not fields,
            "records": rows,
        }
        if output_format == "text":
            return TextResult(fieldlib.records_text(model, rows, names, data), data)
        return data
