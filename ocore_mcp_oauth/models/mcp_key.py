from odoo import api, fields, models

from ..lib.resource import accepted_resources, origin_of, resource_metadata_url
from .oauth_token import ACCESS_PREFIX


def current_httprequest():
    """The werkzeug request being served, or None (cron, shell, worker thread)."""
    from odoo.http import request

    try:
        return request.httprequest if request else None
    except RuntimeError:
        return None


class McpKey(models.Model):
    _inherit = "ocore.mcp.key"

    oauth_authorization_ids = fields.One2many(
        "ocore.mcp.oauth.authorization", "key_id", string="OAuth authorizations", context={"active_test": False}
    )
    oauth_invite_id = fields.Many2one("ocore.mcp.oauth.invite", string="Invite", readonly=True, index=True,
                                      ondelete="set null")

    def _ocore_clear_secret(self, reason):
        """A key's OAuth tokens are secrets of it too: a key that changes hands or comes back from revocation
        keeps none of them. Its authorizations are revoked (tokens, refresh tokens, pending codes), so a
        client authorized by the previous owner never acts as the new one once the key has a secret again."""
        auths = self.env["ocore.mcp.oauth.authorization"].sudo().search(
            [("key_id", "in", self.ids), ("active", "=", True)]
        )
        if auths:
            auths.token_ids.filtered("active")._ocore_revoke("authorization_revoked")
            auths.write({"active": False, "revoked_at": fields.Datetime.now()})
            auths._ocore_end_sessions(f"the API key's secret has been invalidated ({reason})")
        return super()._ocore_clear_secret(reason)

    @api.model
    def _ocore_server_origins(self):
        """The origins this server is reached at: its public URL (web.base.url), never the request's Host
        header (a forged Host must not make another resource acceptable)."""
        origins = {origin_of(self.env["ocore.mcp.server"]._ocore_settings()["base_url"])}
        return {o for o in origins if o}

    @api.model
    def _ocore_find_by_token(self, token):
        """OAuth access tokens resolve to the key they are bound to, when valid and issued for this
        server's MCP resource; the pipeline then treats the call exactly like one made with that key."""
        key = super()._ocore_find_by_token(token)
        if key or not token or not token.startswith(ACCESS_PREFIX):
            return key
        record = self.env["ocore.mcp.oauth.token"]._ocore_resolve_access(
            token, accepted_resources(self._ocore_server_origins())
        )
        if not record:
            return self.sudo().browse()
        from odoo.http import request

        if current_httprequest() is not None:
            # sessions opened by this request remember the authorization (closed when it is revoked)
            request.ocore_oauth_authorization_id = record.authorization_id.id
        return record.key_id.sudo().with_context(active_test=False)

    @api.model
    def _ocore_token_problem(self, token):
        if token and token.startswith(ACCESS_PREFIX):
            problem = self.env["ocore.mcp.oauth.token"]._ocore_access_problem(
                token, accepted_resources(self._ocore_server_origins()))
            if problem:
                return problem
        return super()._ocore_token_problem(token)

    @api.model
    def _ocore_www_authenticate(self, base_url, error, description):
        """Add the RFC 9728 pointer to the protected-resource metadata of the endpoint that was hit."""
        header = super()._ocore_www_authenticate(base_url, error, description)
        httprequest = current_httprequest()
        path = httprequest.path if httprequest is not None else ""
        url = resource_metadata_url(origin_of(base_url) or base_url.rstrip("/"), path)
        return f'{header}, resource_metadata="{url}"'


class McpSession(models.Model):
    _inherit = "ocore.mcp.session"

    oauth_authorization_id = fields.Many2one(
        "ocore.mcp.oauth.authorization", string="OAuth authorization", readonly=True, index=True,
        ondelete="set null",
    )

    @api.model
    def _ocore_open(self, key_id, transport, ip, instances=None, categories=None, **vals):
        from odoo.http import request

        if current_httprequest() is not None and "oauth_authorization_id" not in vals:
            auth_id = getattr(request, "ocore_oauth_authorization_id", None)
            if auth_id:
                vals["oauth_authorization_id"] = auth_id
        return super()._ocore_open(key_id, transport, ip, instances=instances, categories=categories, **vals)
