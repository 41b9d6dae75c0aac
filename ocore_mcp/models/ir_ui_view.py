"""Views and actions written once for Odoo 17.0, 18.0 and 19.0.

The data files (and any addon installed after this one) write views the 18.0 way: ``<list>`` roots,
``view_mode="list,form"``, search views with ``<group expand="0" string="Group By">``, a settings action
with ``target="inline"``. As they are written, these values are put in the running series' words
(lib/compat.adapt_view_values): ``tree`` on 17.0, bare search groups and ``current`` on 19.0; on 18.0
nothing changes.
"""

from odoo import api, models

from ..lib import compat


class IrUiView(models.Model):
    _inherit = "ir.ui.view"

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            parent_type = None
            if not vals.get("type") and vals.get("inherit_id"):
                parent_type = self.browse(vals["inherit_id"]).type  # an extension has its parent's type
            compat.adapt_view_values(self, vals, parent_type)
        return super().create(vals_list)

    def write(self, vals):
        types = set(self.mapped("type"))
        if types != {"qweb"}:
            compat.adapt_view_values(self, vals, types.pop() if len(types) == 1 else None)
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
