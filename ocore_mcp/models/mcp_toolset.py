from odoo import api, models

from ..lib.tooling import collect_tools
from ..service.context import current_call
from ..service.policy import IDENTIFIER, Refusal, check_model_allowed


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
