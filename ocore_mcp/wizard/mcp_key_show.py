import json

from odoo import _, api, fields, models


class McpKeyShow(models.AbstractModel):
    """Shows a new key's secret once. No table: like Odoo's ``res.users.apikeys.show``, the form is opened
    on a new record whose values are defaults from the action's context, so the secret is in no database
    row (transient rows would keep it until the vacuum, and in backups)."""

    _name = "ocore.mcp.key.show"
    _description = "Show a new MCP API key once"

    # the field 'id' is needed by the web client's onchange that fills the form from the context
    id = fields.Id()
    secret = fields.Char(readonly=True)
    stream_url = fields.Char(readonly=True)
    sse_url = fields.Char(readonly=True)
    client_config = fields.Text(readonly=True, string="Claude Desktop (SSE)")
    cursor_config = fields.Text(readonly=True, string="Cursor")
    http_config = fields.Text(readonly=True, string="Claude Code / VS Code (Streamable HTTP)")
    stdio_config = fields.Text(readonly=True, string="Local process (stdio bridge)")

    def init(self):
        # up to 18.0.1.1.0 this was a transient model whose rows kept the secrets: drop them
        self.env.cr.execute("DROP TABLE IF EXISTS ocore_mcp_key_show")

    @api.model
    def _ocore_client_configs(self, secret, base=None):
        """The ready-to-paste client configurations of ``secret``, by field name: Claude Desktop (legacy SSE),
        Cursor and Claude Code / VS Code (Streamable HTTP), and a local process through the stdio bridge."""
        if base is None:
            base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        base = base.rstrip("/")
        stream_url, sse_url = f"{base}/ocore/mcp/stream", f"{base}/ocore/mcp/sse"
        headers = {"Authorization": f"Bearer {secret}"}
        configs = {
            "client_config": {"type": "sse", "url": sse_url, "headers": headers},
            "cursor_config": {"url": stream_url, "headers": headers},
            "http_config": {"type": "http", "url": stream_url, "headers": headers},
            "stdio_config": {"command": "ocore-mcp-stdio", "args": [stream_url], "env": {"OCORE_MCP_KEY": secret}},
        }
        return {name: json.dumps({"mcpServers": {"ocore": value}}, indent=2) for name, value in configs.items()}

    @api.model
    def _ocore_action(self, secret):
        """The window action showing ``secret`` once: every value travels in its context (the web client's
        onchange of a new record does not compute the fields of a model without a table)."""
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "").rstrip("/")
        return {
            "type": "ir.actions.act_window",
            "name": _("Your new MCP API key"),
            "res_model": self._name,
            "views": [[False, "form"]],
            "view_mode": "form",
            "target": "new",
            "context": {
                "default_secret": secret,
                "default_stream_url": f"{base}/ocore/mcp/stream",
                "default_sse_url": f"{base}/ocore/mcp/sse",
                **{f"default_{name}": text for name, text in self._ocore_client_configs(secret, base).items()},
            },
        }
