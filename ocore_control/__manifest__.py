{
    "name": "oCore MCP Control Plane",
    "summary": "One MCP endpoint in front of many Odoo instances: organizations, servers, instances, "
    "federated tools, organization keys, and a host agent for Docker, logs and backups",
    "version": "1.0.0",
    "category": "Productivity/AI",
    "website": "https://github.com/ocore-mcp/ocore-mcp-odoo",
    "author": "oCore MCP contributors",
    "license": "LGPL-3",
    "depends": ["ocore_mcp"],
    "external_dependencies": {"python": ["PyJWT", "cryptography", "requests", "werkzeug"]},
    "data": [
        "security/ir.model.access.csv",
        "security/ocore_control_rules.xml",
        "views/control_instance_views.xml",
        "views/control_organization_views.xml",
        "views/control_server_views.xml",
        "views/mcp_key_views.xml",
        "views/control_secret_show_views.xml",
        "views/ocore_control_menus.xml",
    ],
    "images": ["static/description/icon.png"],
    "application": True,
}
