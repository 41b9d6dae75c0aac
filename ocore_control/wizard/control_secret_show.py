from odoo import api, fields, models


class ControlSecretShow(models.TransientModel):
    _name = "ocore.control.secret.show"
    _description = "Show a new secret of the control plane once"

    secret = fields.Char(readonly=True)
    note = fields.Text(readonly=True)

    @api.model
    def _ocore_show(self, title, secret, note=""):
        wizard = self.create({"secret": secret, "note": note})
        return {"type": "ir.actions.act_window", "name": title, "res_model": self._name, "res_id": wizard.id,
                "view_mode": "form", "target": "new"}
