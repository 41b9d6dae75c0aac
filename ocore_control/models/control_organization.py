from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.ocore_mcp.lib import compat

ROLES = [("owner", "Owner"), ("admin", "Admin"), ("member", "Member"), ("viewer", "Viewer")]


class ControlRoutes(models.AbstractModel):
    """Records the routing table is built from: creating, deleting or writing one (any field, or one of
    ``_ocore_route_fields``) clears the table in every worker."""

    _name = "ocore.control.routes.mixin"
    _description = "Control plane: part of the routing table"

    _ocore_route_fields = None  # None: every write changes a route

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        self.env["ocore.control.instance"]._ocore_routes_changed()
        return records

    def write(self, vals):
        result = super().write(vals)
        if self._ocore_route_fields is None or self._ocore_route_fields & set(vals):
            self.env["ocore.control.instance"]._ocore_routes_changed()
        return result

    def unlink(self):
        result = super().unlink()
        self.env["ocore.control.instance"]._ocore_routes_changed()
        return result


class ControlOrganization(models.Model):
    """An organization owns servers, instances and organization-level API keys."""

    _name = "ocore.control.organization"
    _inherit = ["ocore.control.routes.mixin"]
    _description = "Control plane: organization"
    _order = "name, id"
    _ocore_route_fields = frozenset({"name", "active", "mcp_enabled", "member_ids", "instance_ids"})

    name = fields.Char(required=True)
    active = fields.Boolean(default=True)
    mcp_enabled = fields.Boolean(
        string="MCP access", default=True,
        help="Kill switch: off blocks every MCP tool call of every key of this organization at once.")
    member_ids = fields.One2many("ocore.control.member", "organization_id", string="Members")
    server_ids = fields.One2many("ocore.control.server", "organization_id", string="Servers")
    instance_ids = fields.One2many("ocore.control.instance", "organization_id", string="Instances")
    key_ids = fields.One2many("ocore.mcp.key", "organization_id", string="API keys")
    instance_count = fields.Integer(compute="_compute_counts")
    server_count = fields.Integer(compute="_compute_counts")

    @api.depends("instance_ids", "server_ids")
    def _compute_counts(self):
        for org in self:
            org.instance_count = len(org.instance_ids)
            org.server_count = len(org.server_ids)

    def _ocore_role(self, user):
        """The role of ``user`` in this organization, or None (from the routing table: no query)."""
        self.ensure_one()
        org = self.env["ocore.control.instance"]._ocore_routes()[1].get(self.id)
        return org.roles.get(user.id) if org else None

    def action_toggle_mcp(self):
        for org in self:
            org.mcp_enabled = not org.mcp_enabled
        return True


@compat.table_constraints(
    ("member_unique", "UNIQUE(organization_id, user_id)", "A user is a member of an organization once."))
class ControlMember(models.Model):
    _name = "ocore.control.member"
    _inherit = ["ocore.control.routes.mixin"]
    _description = "Control plane: organization member"
    _order = "organization_id, role, id"

    organization_id = fields.Many2one("ocore.control.organization", required=True, ondelete="cascade", index=True)
    user_id = fields.Many2one("res.users", required=True, ondelete="cascade", index=True)
    role = fields.Selection(ROLES, required=True, default="member",
                            help="Owner and Admin manage the organization; Member calls tools; Viewer only reads "
                            "(every forwarded call is read-only).")

    @api.constrains("role", "organization_id")
    def _check_owner(self):
        for org in self.mapped("organization_id"):
            if org.member_ids and not org.member_ids.filtered(lambda m: m.role == "owner"):
                raise ValidationError(_("Organization %s needs at least one owner.", org.name))
