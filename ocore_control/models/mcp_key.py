from odoo import _, api, fields, models
from odoo.exceptions import ValidationError


class McpKeyOrganization(models.Model):
    """Organization-level API keys: every scope of an instance key, plus the instances it may see."""

    _inherit = "ocore.mcp.key"

    organization_id = fields.Many2one(
        "ocore.control.organization", ondelete="cascade", index=True,
        default=lambda self: self.env["ocore.control.member"].sudo().search(
            [("user_id", "=", self.env.uid)], limit=1).organization_id,
        help="The organization whose instances this key reaches through the control plane.")
    instance_ids = fields.Many2many(
        "ocore.control.instance", string="Instances",
        help="Instance scoping: only these instances' tools are visible and callable. Empty: every instance "
        "of the organization.")

    @api.constrains("organization_id", "instance_ids")
    def _check_instances(self):
        for key in self:
            if key.instance_ids.filtered(lambda i, key=key: i.organization_id != key.organization_id):
                raise ValidationError(_("A key's instances belong to its organization."))

    @api.model_create_multi
    def create(self, vals_list):
        keys = super().create(vals_list)
        keys.filtered("instance_ids")._ocore_sync_instance_scope()
        return keys

    def write(self, vals):
        res = super().write(vals)
        if "instance_ids" in vals:
            self._ocore_sync_instance_scope()
        return res

    def _ocore_sync_instance_scope(self):
        # the policy reads the slugs (instance_scope), as on an instance
        for key in self:
            key.sudo().instance_scope = ",".join(key.instance_ids.mapped("slug")) or False
