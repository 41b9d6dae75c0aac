from odoo import fields, models


class McpCategory(models.Model):
    _name = "ocore.mcp.category"
    _description = "MCP Tool Category"
    _order = "sequence, code"

    code = fields.Char(required=True, index=True)
    name = fields.Char(required=True, translate=True)
    description = fields.Char(translate=True)
    sequence = fields.Integer(default=10)

    _sql_constraints = [("code_unique", "unique(code)", "A category code must be unique.")]
