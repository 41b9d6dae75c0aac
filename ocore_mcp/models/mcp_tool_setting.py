"""Built-in tools switched off for the whole instance (Settings > MCP > Tools): one row per tool with a
toggle, for administrators who want fewer tools than the key scopes allow. tools/list leaves a switched-off
tool out and tools/call refuses it (tools/actions.py: ``ocore.mcp.toolset._ocore_instance_refusal``)."""

from odoo import _, api, fields, models, tools

from ..lib import compat
from ..lib.tooling import KINDS


@compat.table_constraints(("name_unique", "unique(name)", "One setting per tool."))
class McpToolSetting(models.Model):
    _name = "ocore.mcp.tool.setting"
    _description = "MCP Tool Setting"
    _order = "category, name"

    name = fields.Char("Tool", required=True, readonly=True, help="The tool's name without the instance prefix.")
    category = fields.Char(readonly=True)
    kind = fields.Selection([(k, k.capitalize()) for k in KINDS], readonly=True)
    description = fields.Char(readonly=True)
    enabled = fields.Boolean(default=True, help="Off: no key sees or calls this tool on this instance.")

    @api.model
    def _ocore_sync(self):
        """One row per installed built-in tool (new tools of an addon installed since get theirs)."""
        specs = self.env["ocore.mcp.toolset"]._ocore_builtin_tool_specs()
        rows = {row.name: row for row in self.sudo().search([])}  # pylint: disable=no-search-all  # ~150 rows
        create = []
        for name, spec in specs.items():
            values = {"category": spec.category, "kind": spec.kind,
                      "description": (spec.description or "").split("\n")[0][:200]}
            row = rows.get(name)
            if row is None:
                create.append({"name": name, **values})
            elif any(row[field] != value for field, value in values.items()):
                row.write(values)
        if create:
            self.sudo().create(create)
        return specs

    @api.model
    def action_ocore_open(self):
        """The list of the installed built-in tools, synchronised first (menu and Settings button)."""
        specs = self._ocore_sync()
        return {
            "type": "ir.actions.act_window",
            "name": _("MCP Tools"),
            "res_model": self._name,
            "view_mode": "list",
            "views": [(self.env.ref("ocore_mcp.view_mcp_tool_setting_list").id, compat.list_view_tag())],
            "domain": [("name", "in", sorted(specs))],
            "context": {"search_default_group_category": 0},
        }

    @api.model
    @tools.ormcache()
    def _ocore_disabled_names(self):
        return frozenset(self.sudo().search([("enabled", "=", False)]).mapped("name"))

    def write(self, vals):
        result = super().write(vals)
        if "enabled" in vals:
            self.env["ir.actions.server"]._ocore_mcp_tools_changed()
        return result
