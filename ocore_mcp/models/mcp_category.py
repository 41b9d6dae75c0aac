from odoo import api, fields, models

from ..lib import compat


@compat.table_constraints(("code_unique", "unique(code)", "A category code must be unique."))
class McpCategory(models.Model):
    """A tool category: what a key's (and an OAuth grant's) category scope names.

    The records are the one list of categories; a tool names its category's ``code`` in its
    ``mcp_tool`` decorator. An addon adds a category with one data record and decorated methods.
    Only the categories that hold an installed tool are offered (key form, OAuth consent and scopes):
    ``has_tools``, derived from the tools themselves, never stored.
    """

    _name = "ocore.mcp.category"
    _description = "MCP Tool Category"
    _order = "sequence, code"

    code = fields.Char(required=True, index=True)
    name = fields.Char(required=True, translate=True)
    description = fields.Char(translate=True)
    sequence = fields.Integer(default=10)
    tool_count = fields.Integer(compute="_compute_tool_count", string="Tools",
                                help="Installed tools of this category.")
    has_tools = fields.Boolean(compute="_compute_tool_count", search="_search_has_tools",
                               help="Whether an installed tool belongs to this category (only those are offered).")

    @api.model
    def _ocore_tool_counts(self):
        """{category code: number of installed tools}, from the tools' decorators."""
        counts = {}
        for spec in self.env["ocore.mcp.toolset"]._ocore_tool_specs().values():
            counts[spec.category] = counts.get(spec.category, 0) + 1
        return counts

    def _compute_tool_count(self):
        counts = self._ocore_tool_counts()
        for category in self:
            category.tool_count = counts.get(category.code, 0)
            category.has_tools = bool(category.tool_count)

    def _search_has_tools(self, operator, value):
        wanted = compat.boolean_search_values(operator, value)  # = / != (17.0, 18.0), in / not in (19.0)
        if wanted is None:
            raise NotImplementedError(f"has_tools does not support the operator {operator!r}")
        if len(wanted) != 1:
            return [] if wanted else [("id", "=", False)]
        return [("code", "in" if True in wanted else "not in", sorted(self._ocore_tool_counts()))]

    @api.model
    def _ocore_offered(self):
        """The categories a key or an OAuth grant may be scoped to: those holding an installed tool."""
        return self.search([("has_tools", "=", True)])
