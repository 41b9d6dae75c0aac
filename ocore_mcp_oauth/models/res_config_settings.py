from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    ocore_mcp_oauth_registration = fields.Boolean(
        string="Dynamic client registration",
        config_parameter="ocore_mcp_oauth.registration_enabled",
        help="Let MCP clients register themselves (RFC 7591). Off: only clients an administrator registered.",
    )
    ocore_mcp_oauth_cimd = fields.Boolean(
        string="Client ID metadata documents",
        config_parameter="ocore_mcp_oauth.cimd_enabled",
        help="Accept an https URL as client_id and read the client's metadata from it (no registration needed).",
    )
    ocore_mcp_oauth_cimd_private = fields.Boolean(
        string="Metadata documents on private addresses",
        config_parameter="ocore_mcp_oauth.cimd_allow_private_hosts",
        help="Also fetch client metadata documents from loopback and private network addresses.",
    )
    ocore_mcp_oauth_extra_audiences = fields.Char(
        string="Other token audiences",
        config_parameter="ocore_mcp_oauth.extra_audiences",
        help="Resource URLs of other MCP servers this database may issue tokens for (comma separated). "
        "Their tokens are never accepted by this server's own MCP endpoints.",
    )
    ocore_mcp_oauth_access_ttl = fields.Integer(
        string="Access token lifetime (s)", config_parameter="ocore_mcp_oauth.access_token_ttl",
        help="Default 3600 (one hour).",
    )
    ocore_mcp_oauth_refresh_ttl = fields.Integer(
        string="Refresh token lifetime (s)", config_parameter="ocore_mcp_oauth.refresh_token_ttl",
        help="Default 2592000 (30 days); every refresh issues a new refresh token.",
    )
