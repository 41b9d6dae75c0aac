from odoo import fields, models


class McpCredentialMixin(models.AbstractModel):
    """The life cycle shared by the credentials the MCP server hands out (API keys, OAuth invites):
    archived = revoked, no secret yet = new, past its expiration date = expired, else active. A model
    names the field that tells whether a secret was generated (``_ocore_secret_field``) and may refine
    the "active" state (an invite whose uses are spent is "used")."""

    _name = "ocore.mcp.credential.mixin"
    _description = "MCP Credential State"
    _ocore_secret_field = "key_prefix"  # noqa: S105 - a field name

    def _ocore_credential_state(self, now=None):
        """revoked / new / expired / active of one record."""
        self.ensure_one()
        if not self.active:
            return "revoked"
        if not self[self._ocore_secret_field]:
            return "new"
        if self.expiration_date and self.expiration_date <= (now or fields.Datetime.now()):
            return "expired"
        return "active"
