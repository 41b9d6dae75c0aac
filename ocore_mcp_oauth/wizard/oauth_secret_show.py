from odoo import fields, models


class OAuthSecretShow(models.TransientModel):
    _name = "ocore.mcp.oauth.secret.show"
    _description = "Show a new OAuth client secret once"

    client_id = fields.Many2one("ocore.mcp.oauth.client", required=True, ondelete="cascade")
    client_identifier = fields.Char(related="client_id.client_id", string="Client ID")
    secret = fields.Char(readonly=True)
