from odoo import api, fields, models


class ControlSecretShow(models.AbstractModel):
    """Shows a new secret once (an agent's secret). No table: the form is opened on a new record whose
    values are defaults from the action's context, so the secret is in no database row (as the MCP key
    display of ocore_mcp)."""

    _name = "ocore.control.secret.show"
    _description = "Show a new secret of the control plane once"

    # the field 'id' is needed by the web client's onchange that fills the form from the context
    id = fields.Id()
    secret = fields.Char(readonly=True)
    note = fields.Text(readonly=True)

    @api.model
    def _ocore_show(self, title, secret, note=""):
        return {"type": "ir.actions.act_window", "name": title, "res_model": self._name,
                "views": [[False, "form"]], "view_mode": "form", "target": "new",
                "context": {"default_secret": secret, "default_note": note}}
