"""Views and actions written once for Odoo 17.0, 18.0 and 19.0.

The data files (and any addon installed after this one) write list views the 18.0+ way: ``<list>``
roots and ``view_mode="list,form"``. On 17.0, which calls them ``tree``, these values are turned into
17.0's words as they are written (lib/compat.adapt_view_values); on 18.0 and 19.0 nothing changes.
"""

from odoo import api, models

from ..lib import compat


class IrUiView(models.Model):
    _inherit = "ir.ui.view"

    @api.model_create_multi
    def create(self, vals_list):
        if compat.lists_are_trees(self.env):
            for vals in vals_list:
                parent = self.browse(vals.get("inherit_id") or ())
                if not vals.get("type") and parent.exists() and parent.type == "qweb":
                    continue  # QWeb templates have no list views
                compat.adapt_view_values(self, vals)
        return super().create(vals_list)

    def write(self, vals):
        if compat.lists_are_trees(self.env) and any(view.type != "qweb" for view in self):
            compat.adapt_view_values(self, vals)
        return super().write(vals)


class IrActionsActWindow(models.Model):
    _inherit = "ir.actions.act_window"

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            compat.adapt_view_values(self, vals)
        return super().create(vals_list)

    def write(self, vals):
        compat.adapt_view_values(self, vals)
        return super().write(vals)


class IrActionsActWindowView(models.Model):
    _inherit = "ir.actions.act_window.view"

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            compat.adapt_view_values(self, vals)
        return super().create(vals_list)

    def write(self, vals):
        compat.adapt_view_values(self, vals)
        return super().write(vals)
