from odoo import _, api, fields, models, tools
from odoo.exceptions import AccessError, ValidationError


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
        if "organization_id" in vals:
            self.env.registry.clear_cache()  # _ocore_organization_of, in every worker
        return res

    @api.model
    @tools.ormcache("key_id")
    def _ocore_organization_of(self, key_id):
        """The organization id of key ``key_id`` (None), read once per process: a forwarded call reads no row."""
        self.flush_model(["organization_id"])
        self.env.cr.execute("SELECT organization_id FROM ocore_mcp_key WHERE id = %s", (key_id,))
        row = self.env.cr.fetchone()
        return row[0] if row else None

    def _ocore_sync_instance_scope(self):
        # the policy reads the slugs (instance_scope), as on an instance
        for key in self:
            key.sudo().instance_scope = ",".join(key.instance_ids.mapped("slug")) or False

    # -- the OAuth consent on a control plane: the organization and its instances --------------------

    @api.model
    def _ocore_consent_orgs(self, user):
        """The organizations ``user`` is a member of, with their instances."""
        members = self.env["ocore.control.member"].sudo().search([("user_id", "=", user.id)])
        return members.organization_id.filtered("active").sorted(lambda o: (o.name, o.id))

    @api.model
    def _ocore_consent_values(self, user, form):
        values = super()._ocore_consent_values(user, form)
        orgs = self._ocore_consent_orgs(user)
        chosen = int(form.get("organization_id") or 0) if str(form.get("organization_id") or "").isdigit() else 0
        if chosen not in orgs.ids:
            chosen = orgs[:1].id
        ticked = {int(i) for i in form.get("instance_ids") or [] if str(i).isdigit()}
        html = self.env["ir.qweb"]._render("ocore_control.consent_instances", {
            "orgs": orgs, "chosen_org": chosen, "ticked": ticked,
            "instances": {org.id: org.instance_ids.sorted(lambda i: (i.name, i.id)) for org in orgs},
        })
        return {**values, "consent_extra_html": html}

    @api.model
    def _ocore_consent_decision(self, form):
        decision = super()._ocore_consent_decision(form)
        decision.update(organization_id=form.get("organization_id"), instance_ids=form.getlist("instance_ids"))
        return decision

    @api.model
    def _ocore_consent_key_values(self, user, decision):
        values = super()._ocore_consent_key_values(user, decision)
        orgs = self._ocore_consent_orgs(user)
        raw = str(decision.get("organization_id") or "")
        org = orgs.filtered(lambda o: str(o.id) == raw)
        if not org:
            raise AccessError(_("Choose one of your organizations.") if orgs else
                              _("You are a member of no organization of this control plane: ask its administrator."))
        ids = [int(i) for i in decision.get("instance_ids") or [] if str(i).isdigit()]
        instances = self.env["ocore.control.instance"].sudo().browse(ids).exists()
        if len(instances) != len(set(ids)) or instances.filtered(lambda i: i.organization_id != org):
            raise AccessError(_("Choose instances of %s.", org.name))
        # no instance ticked: every instance of the organization (as a key without instance scoping)
        return {**values, "organization_id": org.id, "instance_ids": [(6, 0, instances.ids)]}
