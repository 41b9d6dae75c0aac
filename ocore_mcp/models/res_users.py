from odoo import models


class ResUsers(models.Model):
    _inherit = "res.users"

    def _ocore_may_hold_write_keys(self):
        """MCP viewers (invited read-only members) may only hold read-only keys."""
        self.ensure_one()
        return self.has_group("ocore_mcp.group_mcp_user")

    def _ocore_mcp_audit_user_ids(self):
        """The users whose MCP calls this user may read in the audit log besides their own: for a system
        administrator every user; for an MCP manager who is not one, the users whose groups (implied ones
        included) are all among the manager's own and who share a company with them — the users whose
        records the manager may read as they do, so an audit row's parameters and result excerpt show the
        manager nothing their own rights hide. Read by the audit log's record rule (cached with the rules;
        group changes clear it; a new user is hidden until then, never shown too early)."""
        self.ensure_one()
        from ..lib import compat  # noqa: PLC0415 - lib imports nothing of the models

        me = self.sudo()
        mine = compat.user_all_groups(me)
        users = self.sudo().with_context(active_test=False).search([("share", "=", False)])
        return [
            user.id for user in users
            if user == me or (
                not user._is_system()
                and not (compat.user_all_groups(user) - mine)
                and user.company_ids & me.company_ids
            )
        ]
