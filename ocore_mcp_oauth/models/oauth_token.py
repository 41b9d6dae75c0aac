import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.addons.ocore_mcp.models.mcp_key import hash_token

from ..lib.resource import normalize_resource

ACCESS_PREFIX = "ocoat_"
REFRESH_PREFIX = "ocort_"
PARAM = "ocore_mcp_oauth."
DEFAULT_TTL = {
    "access_token_ttl": 3600,  # 1 hour
    "refresh_token_ttl": 30 * 86400,  # 30 days, renewed by every refresh (rotation)
    "code_ttl": 600,  # RFC 6749 §4.1.2: 10 minutes at most
    "device_code_ttl": 900,  # 15 minutes
}
REVOKE_REASONS = [
    ("rotated", "Rotated (refreshed)"),
    ("client", "Revoked by the client"),
    ("authorization_revoked", "Authorization revoked"),
    ("code_replayed", "Authorization code replayed"),
    ("refresh_reused", "Rotated refresh token reused"),
    ("expired", "Expired"),
]


def new_access_token():
    return ACCESS_PREFIX + secrets.token_urlsafe(32)


def new_refresh_token():
    return REFRESH_PREFIX + secrets.token_urlsafe(40)


class OAuthToken(models.Model):
    """An access token and its refresh token. Only SHA-256 hashes of both are stored."""

    _name = "ocore.mcp.oauth.token"
    _description = "MCP OAuth Token"
    _order = "id desc"

    # hashes: readable by nobody through the ORM (found with sudo searches only)
    access_token_hash = fields.Char(required=True, index=True, readonly=True, copy=False,
                                    groups=fields.NO_ACCESS)
    refresh_token_hash = fields.Char(index=True, readonly=True, copy=False, groups=fields.NO_ACCESS)
    family = fields.Char(
        index=True, readonly=True,
        help="All tokens descending from one authorization code or device grant (revoked together).",
    )
    authorization_id = fields.Many2one("ocore.mcp.oauth.authorization", required=True, ondelete="cascade",
                                       index=True, readonly=True)
    client_id = fields.Many2one(related="authorization_id.client_id", store=True, index=True)
    user_id = fields.Many2one(related="authorization_id.user_id", store=True, index=True)
    key_id = fields.Many2one(related="authorization_id.key_id", store=True, index=True, string="API key")
    company_id = fields.Many2one(related="authorization_id.company_id", store=True, string="Organization")
    resource = fields.Char(string="Audience", readonly=True, help="The resource (RFC 8707) the token is for.")
    scope = fields.Char(readonly=True)
    grant_type = fields.Char(readonly=True)
    access_expires_at = fields.Datetime(readonly=True)
    refresh_expires_at = fields.Datetime(readonly=True)
    active = fields.Boolean(default=True, readonly=True, help="Revoked tokens are archived (soft-deleted).")
    revoked_at = fields.Datetime(readonly=True)
    revoke_reason = fields.Selection(REVOKE_REASONS, readonly=True)
    state = fields.Selection(
        [("active", "Active"), ("refresh_only", "Access expired"), ("expired", "Expired"), ("revoked", "Revoked")],
        compute="_compute_state",
    )

    @api.depends("active", "access_expires_at", "refresh_expires_at")
    def _compute_state(self):
        now = fields.Datetime.now()
        for token in self:
            if not token.active:
                token.state = "revoked"
            elif token.access_expires_at and token.access_expires_at > now:
                token.state = "active"
            elif token.refresh_expires_at and token.refresh_expires_at > now:
                token.state = "refresh_only"
            else:
                token.state = "expired"

    @api.model
    def _ocore_ttl(self, name):
        value = self.env["ir.config_parameter"].sudo().get_param(PARAM + name)
        try:
            seconds = int(value or 0)
        except ValueError:
            seconds = 0
        return seconds if seconds > 0 else DEFAULT_TTL[name]  # unset, or 0 saved from Settings: the default

    @api.model
    def _ocore_issue(self, authorization, grant_type, resource, scope, family, with_refresh):
        """Create the token record; return the token response (RFC 6749 §5.1) with the plain secrets."""
        now = fields.Datetime.now()
        access_ttl = self._ocore_ttl("access_token_ttl")
        access = new_access_token()
        vals = {
            "access_token_hash": hash_token(access),
            "authorization_id": authorization.id,
            "family": family,
            "resource": resource,
            "scope": scope,
            "grant_type": grant_type,
            "access_expires_at": now + timedelta(seconds=access_ttl),
        }
        response = {"token_type": "Bearer", "access_token": access, "expires_in": access_ttl, "scope": scope}
        if with_refresh:
            refresh = new_refresh_token()
            vals["refresh_token_hash"] = hash_token(refresh)
            vals["refresh_expires_at"] = now + timedelta(seconds=self._ocore_ttl("refresh_token_ttl"))
            response["refresh_token"] = refresh
        self.sudo().create(vals)
        authorization.sudo().write({"last_auth_at": now})
        authorization.client_id.sudo().write({"last_used": now})
        return response

    @api.model
    def _ocore_find(self, token, kind="access", active_only=True):
        """The token record of a plain access or refresh token (sudo), or an empty recordset."""
        prefix = ACCESS_PREFIX if kind == "access" else REFRESH_PREFIX
        if not token or not isinstance(token, str) or not token.startswith(prefix) or len(token) > 200:
            return self.sudo().browse()
        field = "access_token_hash" if kind == "access" else "refresh_token_hash"
        domain = [(field, "=", hash_token(token))]
        records = self.sudo().with_context(active_test=active_only)
        return records.search(domain, limit=1)

    @api.model
    def _ocore_resolve_access(self, token, accepted_resources):
        """The valid access token record for ``token`` whose audience is one of ``accepted_resources``.

        Refused (empty recordset): unknown, revoked (soft-deleted), expired, authorization revoked, or
        issued for another resource. The key itself is checked afterwards by the policy pipeline.
        """
        record = self._ocore_find(token, "access")
        if not record:
            return record
        if not record.access_expires_at or record.access_expires_at <= fields.Datetime.now():
            return self.sudo().browse()
        if not record.authorization_id.active:
            return self.sudo().browse()
        if normalize_resource(record.resource) not in accepted_resources:
            return self.sudo().browse()
        return record

    @api.model
    def _ocore_access_problem(self, token, accepted_resources):
        """Why ``_ocore_resolve_access`` refuses a token this server issued (the 401's message), or None
        when it never issued it."""
        record = self._ocore_find(token, "access", active_only=False)
        if not record:
            return None
        if not record.active or not record.authorization_id.active:
            return "token revoked: this OAuth access token has been revoked; connect again"
        if not record.access_expires_at or record.access_expires_at <= fields.Datetime.now():
            return "token expired: this OAuth access token has expired; refresh it or connect again"
        if normalize_resource(record.resource) not in accepted_resources:
            return "this OAuth access token was issued for another resource"
        return None

    def _ocore_revoke(self, reason):
        """Soft-delete these tokens (archived with the reason)."""
        todo = self.sudo().filtered("active")
        if todo:
            todo.write({"active": False, "revoked_at": fields.Datetime.now(), "revoke_reason": reason})
        return todo

    def _ocore_revoke_family(self, reason):
        families = [f for f in self.sudo().mapped("family") if f]
        tokens = self.sudo().search([("family", "in", families)]) if families else self.browse()
        return (tokens | self.sudo())._ocore_revoke(reason)

    @api.autovacuum
    def _gc_old_tokens(self):
        """Tokens expired or revoked for more than 30 days are deleted."""
        limit = fields.Datetime.subtract(fields.Datetime.now(), days=30)
        old = self.sudo().with_context(active_test=False).search([
            "|", ("revoked_at", "<", limit),
            "&", ("access_expires_at", "<", limit),
            "|", ("refresh_expires_at", "=", False), ("refresh_expires_at", "<", limit),
        ])
        old.unlink()
