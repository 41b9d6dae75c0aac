from odoo import api, fields, models


class McpKeyShow(models.TransientModel):
    _name = "ocore.mcp.key.show"
    _description = "Show a new MCP API key once"

    key_id = fields.Many2one("ocore.mcp.key", required=True, ondelete="cascade")
    secret = fields.Char(readonly=True)
    stream_url = fields.Char(compute="_compute_config")
    sse_url = fields.Char(compute="_compute_config")
    client_config = fields.Text(compute="_compute_config")

    @api.depends("secret")
    def _compute_config(self):
        import json

        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "").rstrip("/")
        for wiz in self:
            wiz.stream_url = f"{base}/ocore/mcp/stream"
            wiz.sse_url = f"{base}/ocore/mcp/sse"
            wiz.client_config = json.dumps(
                {
                    "mcpServers": {
                        "ocore": {
                            "type": "sse",
                            "url": wiz.sse_url,
                            "headers": {"Authorization": f"Bearer {wiz.secret}"},
                        }
                    }
                },
                indent=2,
            )
