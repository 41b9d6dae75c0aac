import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.addons.ocore_mcp.models.mcp_key import hash_token


class OAuthCode(models.Model):
    """An authorization code (hashed), single use, valid a few minutes."""

    _name = "ocore.mcp.oauth.code"
    _description = "MCP OAuth Authorization Code"
    _order = "id desc"

    code_hash = fields.Char(required=True, index=True, readonly=True, groups=fields.NO_ACCESS)
    authorization_id = fields.Many2one("ocore.mcp.oauth.authorization", required=True, ondelete="cascade",
                                       readonly=True)
    client_id = fields.Many2one(related="authorization_id.client_id", store=True)
    user_id = fields.Many2one(related="authorization_id.user_id", store=True)
    redirect_uri = fields.Char(readonly=True)
    scope = fields.Char(readonly=True)
    resource = fields.Char(readonly=True)
    code_challenge = fields.Char(readonly=True)
    code_challenge_method = fields.Char(readonly=True)
    family = fields.Char(readonly=True, index=True, default=lambda self: secrets.token_hex(12))
    expires_at = fields.Datetime(required=True, readonly=True)
    used_at = fields.Datetime(readonly=True)

    @api.model
    def _ocore_create(self, code, authorization, redirect_uri, scope, resource, challenge, method):
        ttl = self.env["ocore.mcp.oauth.token"]._ocore_ttl("code_ttl")
        return self.sudo().create({
            "code_hash": hash_token(code),
            "authorization_id": authorization.id,
            "redirect_uri": redirect_uri or False,
            "scope": scope or False,
            "resource": resource,
            "code_challenge": challenge,
            "code_challenge_method": method,
            "expires_at": fields.Datetime.now() + timedelta(seconds=ttl),
        })

    @api.model
    def _ocore_find(self, code):
        if not code or not isinstance(code, str) or len(code) > 200:
            return self.sudo().browse()
        return self.sudo().search([("code_hash", "=", hash_token(code))], limit=1)

    def _ocore_replayed(self):
        """A used code came back: RFC 6749 §4.1.2 — revoke the tokens issued from it."""
        tokens = self.env["ocore.mcp.oauth.token"].sudo().search([("family", "in", self.mapped("family"))])
        tokens._ocore_revoke("code_replayed")

    @api.autovacuum
    def _gc_old_codes(self):
        limit = fields.Datetime.subtract(fields.Datetime.now(), days=1)
        self.sudo().search([("expires_at", "<", limit)]).unlink()
