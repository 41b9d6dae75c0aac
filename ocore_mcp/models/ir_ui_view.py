"""Views and actions written once for Odoo 17.0, 18.0 and 19.0.

The data files (and any addon installed after this one) write views the 18.0 way: ``<list>`` roots,
``view_mode="list,form"``, search views with ``<group expand="0" string="Group By">``, a settings action
with ``target="inline"``. As they are written, these values are put in the running series' words
(lib/compat.adapt_view_values): ``tree`` on 17.0, bare search groups and ``current`` on 19.0; on 18.0
nothing changes.
"""

from odoo import api, models

from ..lib import compat


class OcoreViewValues(models.AbstractModel):
    """Puts written view and action values in the running series' words: one create/write pair for the
    three models that hold them."""

    _name = "ocore.view.values.mixin"
    _description = "Views and actions in the running Odoo series' words"

    def _ocore_adapt_view_values(self, vals):
        compat.adapt_view_values(self, vals)

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._ocore_adapt_view_values(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._ocore_adapt_view_values(vals)
        return super().write(vals)


class IrUiView(models.Model):
    _name = "ir.ui.view"
    _inherit = ["ir.ui.view", "ocore.view.values.mixin"]

    def _ocore_adapt_view_values(self, vals):
        if self:  # write: the records' own type (qweb templates are left as they are)
            types = set(self.mapped("type"))
            if types != {"qweb"}:
                compat.adapt_view_values(self, vals, types.pop() if len(types) == 1 else None)
            return
        parent_type = None
        if not vals.get("type") and vals.get("inherit_id"):
            parent_type = self.browse(vals["inherit_id"]).type  # an extension has its parent's type
        compat.adapt_view_values(self, vals, parent_type)


class IrActionsActWindow(models.Model):
    _name = "ir.actions.act_window"
    _inherit = ["ir.actions.act_window", "ocore.view.values.mixin"]


class IrActionsActWindowView(models.Model):
    _name = "ir.actions.act_window.view"
    _inherit = ["ir.actions.act_window.view", "ocore.view.values.mixin"]
