from odoo import api, models

from ..lib import compat


class ResGroups(models.Model):
    _inherit = "res.groups"

    @api.model
    def _ocore_set_category(self, category_xmlid, group_xmlids):
        """Data files: put the groups under an application category, the way the series does it
        (``category_id`` in 17.0/18.0, a privilege in 19.0)."""
        compat.set_groups_category(self.env, category_xmlid, group_xmlids)

    @api.model
    def _ocore_add_users(self, group_xmlid, user_xmlids):
        """Data files: make these users members of the group (``users`` / ``user_ids``)."""
        users = self.env["res.users"].browse([self.env.ref(xmlid).id for xmlid in user_xmlids])
        compat.add_group_users(self.env.ref(group_xmlid), users)
