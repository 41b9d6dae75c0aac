from odoo import fields, models


class OAuthInviteShow(models.TransientModel):
    _name = "ocore.mcp.oauth.invite.show"
    _description = "Show an invite link once"

    invite_id = fields.Many2one("ocore.mcp.oauth.invite", required=True, ondelete="cascade")
    url = fields.Char(string="Invite link", readonly=True)
