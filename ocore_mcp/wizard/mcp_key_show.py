import json

from odoo import api, fields, models


class McpKeyShow(models.AbstractModel):
    """Shows a new key's secret once. No table: like Odoo's ``res.users.apikeys.show``, the form is opened
    on a new record whose ``secret`` default comes from the action's context, so the secret is in no
    database row (transient rows would keep it until the vacuum, and in backups)."""

    _name = "ocore.mcp.key.show"
    _description = "Show a new MCP API key once"

    # the field 'id' is needed by the web client's onchange that fills the form from the context
    id = fields.Id()
    secret = fields.Char(readonly=True)
    stream_url = fields.Char(compute="_compute_config")
    sse_url = fields.Char(compute="_compute_config")
    client_config = fields.Text(compute="_compute_config")

    def init(self):
        # up to 18.0.1.1.0 this was a transient model whose rows kept the secrets: drop them
        self.env.cr.execute("DROP TABLE IF EXISTS ocore_mcp_key_show")

    @api.depends("secret")
    def _compute_config(self):
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
