from odoo import fields, models

from odoo.addons.ocore_mcp.lib.tooling import mcp_tool


class PlatformToolsControl(models.AbstractModel):
    """On the control plane, the platform tools list the fleet."""

    _inherit = "ocore.mcp.tools.platform"

    def _ocore_fleet(self):
        conn = self._call().connection
        server = self.env["ocore.mcp.server"].sudo()
        server._ocore_control_check_org(conn)
        return server, conn

    @mcp_tool("platform", platform=True, model_args=())
    def _tool_list_instances(self):
        """List all instances accessible to the current API key: id, name, slug, Odoo version, status,
        environment type, and mcp_write_enabled."""
        server, conn = self._ocore_fleet()
        rows = []
        for instance in server._ocore_control_instances(conn):
            rows.append({
                "id": instance.id, "name": instance.name, "slug": instance.slug,
                "odoo_version": instance.odoo_version, "edition": instance.edition, "status": instance.status,
                "environment": instance.environment, "mcp_write_enabled": instance.mcp_write_enabled,
                "server": instance.server_id.name or None, "url": instance.url or None,
                "last_error": instance.last_error or None,
                "last_seen": fields.Datetime.to_string(instance.last_seen) if instance.last_seen else None,
            })
        return {"instances": rows}

    @mcp_tool("platform", platform=True, model_args=())
    def _tool_list_servers(self):
        """List all servers in the organization: id, name, host, and status."""
        server, conn = self._ocore_fleet()
        self.env["ocore.control.server"].sudo()._ocore_mark_stale()
        org = server._ocore_control_org(conn)
        rows = []
        for srv in org.sudo().server_ids if org else []:
            rows.append({
                "id": srv.id, "name": srv.name, "host": srv.host or None, "status": srv.status,
                "last_heartbeat": fields.Datetime.to_string(srv.last_heartbeat) if srv.last_heartbeat else None,
                "disk_free_gb": round(srv.disk_free_gb, 1), "load_average": srv.load_average,
                "instances": srv.instance_ids.mapped("slug"),
            })
        return {"servers": rows}
