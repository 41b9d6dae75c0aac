from odoo import _, fields, models
from odoo.exceptions import UserError


class ControlEnrol(models.TransientModel):
    _name = "ocore.control.enrol"
    _description = "Enrol an instance with its one-time token"

    instance_id = fields.Many2one("ocore.control.instance", required=True, ondelete="cascade")
    url = fields.Char(string="Instance URL", required=True)
    token = fields.Char(string="Enrolment token",
                        help="Generated on the instance (MCP > Configuration > Control plane), valid once.")

    def action_enrol(self):
        self.ensure_one()
        self.instance_id.url = self.url
        if not (self.token or "").strip():
            raise UserError(_("Paste the enrolment token generated on the instance."))
        self.instance_id._ocore_enrol(self.token.strip())
        self.token = False
        return {"type": "ir.actions.act_window_close"}
