{
    "name": "oCore MCP OAuth",
    "summary": "OAuth 2.1 authorization server for the oCore MCP server: AI clients connect with only the URL, "
    "through Odoo's login and a consent page; device flow, invite links, authorization management",
    "version": "1.0.0",
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
}
