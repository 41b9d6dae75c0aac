from odoo import fields, models


class OAuthInviteShow(models.AbstractModel):
    """Shows a new invite link once. No table: the form is opened on a new record whose ``url`` default
    comes from the action's context, so the link's token is in no database row."""

    _name = "ocore.mcp.oauth.invite.show"
    _description = "Show an invite link once"

    id = fields.Id()  # needed by the web client's onchange that fills the form from the context
    url = fields.Char(string="Invite link", readonly=True)

    def init(self):
        # formerly a transient model whose rows kept the links: drop them
        self.env.cr.execute("DROP TABLE IF EXISTS ocore_mcp_oauth_invite_show")
