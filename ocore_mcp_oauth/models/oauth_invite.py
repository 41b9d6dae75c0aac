import logging
import secrets
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.models.mcp_key import hash_token, request_ip, split_list
from odoo.exceptions import AccessError, UserError, ValidationError

_logger = logging.getLogger(__name__)

INVITE_PREFIX = "ocinv_"


@compat.table_constraints(("max_uses_positive", "CHECK(max_uses > 0)", "An invite allows at least one use."))
class OAuthInvite(models.Model):
    """An MCP invite link: whoever opens it (logged in) gets an API key in the inviter's company with the
    invite's permissions, and becomes an MCP Viewer member of that company if they were not one."""

    _name = "ocore.mcp.oauth.invite"
    _inherit = ["ocore.mcp.credential.mixin"]
    _ocore_secret_field = "token_prefix"  # noqa: S105 - a field name
    _description = "MCP Invite Link"
    _order = "create_date desc, id desc"

    name = fields.Char(required=True, help="What the invite is for, e.g. 'Accounting team, read-only'.")
    inviter_id = fields.Many2one(
        "res.users", string="Invited by", required=True, readonly=True, ondelete="cascade",
        default=lambda self: self.env.user, index=True,
    )
    company_id = fields.Many2one(
        "res.company", string="Organization", required=True, default=lambda self: self.env.company,
        help="Invitees get their key in this company and become members of it.",
    )
    token_hash = fields.Char(readonly=True, copy=False, index=True, groups=fields.NO_ACCESS)
    token_prefix = fields.Char(string="Link id", readonly=True, copy=False)
    expiration_date = fields.Datetime(
        string="Expires on", required=True, default=lambda self: fields.Datetime.now() + timedelta(days=7)
    )
    max_uses = fields.Integer(default=1, required=True, help="How many people may accept this invite.")
    use_count = fields.Integer(readonly=True, copy=False)
    active = fields.Boolean(default=True, help="Archive the invite to revoke its link.")
    # the permissions of the keys created from this invite
    category_ids = fields.Many2many("ocore.mcp.category", string="Categories", domain=[("has_tools", "=", True)],
                                    help="Tool categories of the keys. Empty grants every category.")
    read_only = fields.Boolean(default=True)
    tool_allowlist = fields.Text(help="Only these tools (comma or newline separated).")
    model_ids = fields.Many2many("ir.model", string="Model allowlist")
    instance_scope = fields.Char()
    auto_context = fields.Boolean(string="Auto-context")
    note = fields.Text()
    key_ids = fields.One2many("ocore.mcp.key", "oauth_invite_id", string="Keys created",
                              context={"active_test": False})
    state = fields.Selection(
        [("new", "No link yet"), ("active", "Active"), ("used", "Used up"), ("expired", "Expired"),
         ("revoked", "Revoked")],
        compute="_compute_state",
    )

    @api.depends("active", "token_prefix", "expiration_date", "use_count", "max_uses")
    def _compute_state(self):
        now = fields.Datetime.now()
        for invite in self:
            state = invite._ocore_credential_state(now)
            invite.state = "used" if state == "active" and invite.use_count >= invite.max_uses else state

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if not self.env.su or not vals.get("inviter_id"):
                vals["inviter_id"] = self.env.uid  # nobody invites in someone else's name
            vals.pop("use_count", None)
        return super().create(vals_list)

    def write(self, vals):
        if "inviter_id" in vals and not self.env.su:
            raise UserError(_("The author of an invite cannot be changed."))
        return super().write(vals)

    @api.constrains("inviter_id", "company_id", "read_only", "category_ids", "tool_allowlist", "model_ids")
    def _check_ceiling(self):
        for invite in self:
            problems = invite.sudo()._ocore_ceiling_problems()
            if problems:
                raise ValidationError(
                    _("An invite cannot grant more than its author holds:\n%s", "\n".join(problems))
                )

    def _ocore_ceiling_problems(self):
        """Why this invite exceeds its inviter's own permissions (empty list: it does not).

        The ceiling is what the inviter could hold themself: an active MCP manager, member of the invite's
        company; write access only if they may hold write keys; admin-only tools only for a system
        administrator; allowlisted models only those the inviter can read.
        """
        self.ensure_one()
        inviter = self.inviter_id.sudo()
        problems = []
        if not inviter.active or not inviter.has_group("ocore_mcp.group_mcp_manager"):
            problems.append(_("%s is not an active MCP manager.", inviter.display_name))
        if self.company_id not in inviter.company_ids:
            problems.append(_("%(user)s is not a member of %(company)s.", user=inviter.display_name,
                              company=self.company_id.display_name))
        if not self.read_only and not inviter._ocore_may_hold_write_keys():
            problems.append(_("%s may only hold read-only keys.", inviter.display_name))
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        is_admin = inviter._is_system()
        for name in split_list(self.tool_allowlist):
            spec = specs.get(name)
            if spec is None:
                problems.append(_("There is no tool named %s.", name))
            elif spec.meta.admin_only and not is_admin:
                problems.append(_("Tool %s is reserved to system administrators.", name))
        for category in self.category_ids:
            in_category = [s for s in specs.values() if s.category == category.code]
            if in_category and all(s.meta.admin_only for s in in_category) and not is_admin:
                problems.append(_("Category %s only has tools reserved to system administrators.", category.code))
        # the invite's models are read as such (19.0 checks ir.model access when a user reads the field),
        # then each is checked with the inviter's rights
        for model in self.sudo().model_ids:
            if model.model not in self.env or not compat.has_access(self.env[model.model].with_user(inviter), "read"):
                problems.append(_("%(user)s cannot read %(model)s.", user=inviter.display_name, model=model.model))
        return problems

    # -- link --------------------------------------------------------------------------

    def _ocore_new_token(self):
        self.ensure_one()
        prefix = secrets.token_hex(4)
        token = f"{INVITE_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
        self.sudo().write({"token_prefix": prefix, "token_hash": hash_token(token)})
        _logger.info("MCP invite #%s: new link generated by '%s' (#%s) from %s",
                     self.id, self.env.user.login, self.env.uid, request_ip())
        return token

    def _ocore_url(self, token):
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "").rstrip("/")
        return f"{base}/oauth/invite/{token}"

    def action_generate_link(self):
        """Button: (re)generate the invite link (the previous one stops working) and show it once."""
        self.ensure_one()
        compat.check_access(self, "write")
        if not self.active:
            raise UserError(_("This invite has been revoked."))
        token = self._ocore_new_token()
        # the link travels in the action's context only: the display model has no table
        return {
            "type": "ir.actions.act_window",
            "name": _("Invite link"),
            "res_model": "ocore.mcp.oauth.invite.show",
            "views": [[False, "form"]],
            "view_mode": "form",
            "target": "new",
            "context": {"default_url": self._ocore_url(token)},
        }

    def action_revoke(self):
        self.write({"active": False})

    @api.model
    def _ocore_find(self, token):
        """The invite of a link token (sudo, archived included), or an empty recordset."""
        if not token or not isinstance(token, str) or not token.startswith(INVITE_PREFIX) or len(token) > 200:
            return self.sudo().browse()
        return self.sudo().with_context(active_test=False).search(
            [("token_hash", "=", hash_token(token))], limit=1
        )

    def _ocore_acceptance_problem(self, user):
        """Why ``user`` cannot accept this invite now, or None."""
        self.ensure_one()
        if self.state == "revoked":
            return _("This invite has been revoked.")
        if self.state == "expired":
            return _("This invite has expired.")
        if self.state == "used":
            return _("This invite has already been used.")
        if self.state != "active":
            return _("This invite is not valid.")
        if user.share:
            return _("Only internal users can accept an MCP invite.")
        if self.key_ids.filtered(lambda k: k.user_id == user):
            return _("You have already accepted this invite.")
        problems = self._ocore_ceiling_problems()
        if problems:
            return _("This invite grants more than its author now holds: %s", " ".join(problems))
        return None

    def _ocore_effective_read_only(self, user):
        """Read-only when the invite says so, and always for an MCP viewer (an invited new member)."""
        self.ensure_one()
        return bool(self.read_only or not user.has_group("ocore_mcp.group_mcp_user"))

    def _ocore_accept(self, user):
        """Accept for ``user``: membership of the company (as MCP Viewer when new), then a key with the
        invite's permissions. Return ``(key, secret)``. Checked again here, whatever the page showed."""
        self.ensure_one()
        self.env.cr.execute("SELECT id FROM ocore_mcp_oauth_invite WHERE id = %s FOR UPDATE", (self.id,))
        self.invalidate_recordset(["use_count"])
        problem = self._ocore_acceptance_problem(user)
        if problem:
            raise AccessError(problem)
        user = user.sudo()
        read_only = self._ocore_effective_read_only(user)
        membership = {}
        if self.company_id not in user.company_ids:
            membership["company_ids"] = [(4, self.company_id.id)]
        if not user.has_group("ocore_mcp.group_mcp_viewer"):
            membership[compat.user_groups_field(user)] = [(4, self.env.ref("ocore_mcp.group_mcp_viewer").id)]
        if membership:
            user.write(membership)
        key, secret = self.env["ocore.mcp.key"].sudo()._ocore_create_key(
            self.name[:180],
            user,
            acting=user,  # the key is the accepting user's own: its secret is shown to them only
            company_id=self.company_id.id,
            origin="invite",
            oauth_invite_id=self.id,
            category_ids=[(6, 0, self.category_ids.ids)],
            read_only=read_only,
            tool_allowlist=self.tool_allowlist or False,
            model_ids=[(6, 0, self.model_ids.ids)],
            instance_scope=self.instance_scope or False,
            auto_context=self.auto_context,
            note=_("Created from the invite %(name)s of %(inviter)s.", name=self.name,
                   inviter=self.inviter_id.display_name),
        )
        self.sudo().write({"use_count": self.use_count + 1})
        return key, secret
