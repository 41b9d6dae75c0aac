from odoo import models


class ResUsers(models.Model):
    _inherit = "res.users"

    def _ocore_may_hold_write_keys(self):
        """MCP viewers (invited read-only members) may only hold read-only keys."""
        self.ensure_one()
        return self.has_group("ocore_mcp.group_mcp_user")
