import socket

from odoo import fields, models, release

from ..lib.tooling import mcp_tool


class PlatformTools(models.AbstractModel):
    _name = "ocore.mcp.tools.platform"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: platform"

    def _ocore_instance_row(self):
        server = self.env["ocore.mcp.server"].sudo()
        settings = server._ocore_settings()
        return {
            "id": self.env.cr.dbname,
            "name": self.env.company.name,
            "slug": settings["slug"],
            "odoo_version": release.version,
            "status": "running" if settings["enabled"] else "disabled",
            "environment": settings["environment"],
            "mcp_write_enabled": settings["write_enabled"],
        }

    @mcp_tool("platform", platform=True, model_args=(), untrusted=False, title="List instances")
    def _tool_list_instances(self):
        """Instances this key reaches: id, name, slug, version, status, environment, writes."""
        return {"instances": [self._ocore_instance_row()]}

    @mcp_tool("platform", platform=True, model_args=(), untrusted=False, title="List servers")
    def _tool_list_servers(self):
        """The servers: id, name, host, status."""
        host = socket.gethostname()
        return {
            "servers": [
                {
                    "id": host,
                    "name": host,
                    "host": self.env["ir.config_parameter"].sudo().get_param("web.base.url", ""),
                    "status": "running",
                    "checked_at": fields.Datetime.now().isoformat(),
                }
            ]
        }
