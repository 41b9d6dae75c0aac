from odoo import fields, models


class OAuthSecretShow(models.AbstractModel):
    """Shows a new OAuth client secret once. No table: the form is opened on a new record whose defaults
    come from the action's context, so the secret is in no database row."""

    _name = "ocore.mcp.oauth.secret.show"
    _description = "Show a new OAuth client secret once"

    id = fields.Id()  # needed by the web client's onchange that fills the form from the context
    client_identifier = fields.Char(string="Client ID", readonly=True)
    secret = fields.Char(readonly=True)

    def init(self):
        # formerly a transient model whose rows kept the secrets: drop them
        self.env.cr.execute("DROP TABLE IF EXISTS ocore_mcp_oauth_secret_show")
