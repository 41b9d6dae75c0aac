{
    "name": "oCore MCP OAuth",
    "summary": "OAuth 2.1 authorization server for the oCore MCP server: AI clients connect with only the URL, "
    "through Odoo's login and a consent page; device flow, invite links, authorization management",
    "description": """
Connects Claude, ChatGPT and any MCP client that speaks the MCP authorization spec without copying an API key.
An unauthenticated MCP request gets 401 with a pointer to the protected-resource metadata (RFC 9728); the client
discovers this database's authorization server (RFC 8414), registers itself (RFC 7591), sends the user to the
Odoo login and a consent page, and receives tokens bound to an MCP API key and to this server's MCP resource
(RFC 8707). Authorization code with PKCE S256 only, rotating refresh tokens, revocation (RFC 7009), the device
authorization grant for CLI tools (RFC 8628) with a QR code, invite links with permissions capped by the
inviter's own, and backend views to see and revoke every authorization. Built on Authlib.
""",
    "version": "18.0.1.0.0",
    "category": "Productivity/AI",
    "website": "https://github.com/ocore-mcp/ocore-mcp-odoo",
    "author": "oCore MCP contributors",
    "license": "LGPL-3",
    "depends": ["ocore_mcp", "web"],
    "external_dependencies": {"python": ["authlib", "qrcode"]},
    "data": [
        "security/ir.model.access.csv",
        "security/ocore_mcp_oauth_rules.xml",
        "data/ocore_mcp_oauth_data.xml",
        "views/oauth_client_views.xml",
        "views/oauth_authorization_views.xml",
        "views/oauth_token_views.xml",
        "views/oauth_device_views.xml",
        "views/oauth_invite_views.xml",
        "views/mcp_key_views.xml",
        "views/ocore_mcp_oauth_menus.xml",
        "views/oauth_templates.xml",
    ],
    "assets": {
        "web._assets_frontend_helpers": [
            ("prepend", "ocore_mcp_oauth/static/src/scss/frontend_colors.scss"),
        ],
    },
    "images": ["static/description/icon.png"],
    "installable": True,
    "application": False,
}
