from odoo import _, api, fields, models
from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.models.mcp_key import split_list
from odoo.exceptions import AccessError, ValidationError

# Permission presets of the consent page. "standard" leaves out the categories that reach beyond
# business data (raw SQL, Python, files, modules, system administration).
HIGH_RISK_CATEGORIES = ("sql", "shell", "files", "modules", "system")
PRESETS = [
    ("read_only", "Read-only"),
    ("standard", "Standard"),
    ("full", "Full"),
    ("custom", "Custom"),
]


@compat.table_constraints(
    ("user_client_key_unique", "unique(user_id, client_id, key_id)",
     "There is one authorization per user, client and key."),
)
class OAuthAuthorization(models.Model):
    """One user's grant to one client, bound to one MCP API key ("OAuth Authorizations")."""

    _name = "ocore.mcp.oauth.authorization"
    _description = "MCP OAuth Authorization"
    _order = "last_auth_at desc, id desc"
    _rec_name = "client_id"

    user_id = fields.Many2one("res.users", required=True, ondelete="cascade", index=True, readonly=True)
    client_id = fields.Many2one("ocore.mcp.oauth.client", required=True, ondelete="cascade", index=True,
                                readonly=True)
    key_id = fields.Many2one("ocore.mcp.key", string="API key", required=True, ondelete="cascade", index=True,
                             readonly=True, context={"active_test": False})
    company_id = fields.Many2one(related="key_id.company_id", string="Organization", store=True)
    key_auto_created = fields.Boolean(
        readonly=True, help="The key was created by this authorization: revoking it deactivates the key."
    )
    last_auth_at = fields.Datetime(string="Last authentication", readonly=True)
    active = fields.Boolean(default=True, readonly=True)
    revoked_at = fields.Datetime(readonly=True)
    token_ids = fields.One2many("ocore.mcp.oauth.token", "authorization_id", string="Tokens",
                                context={"active_test": False})
    active_token_count = fields.Integer(compute="_compute_active_token_count", string="Active tokens")
    state = fields.Selection([("active", "Active"), ("revoked", "Revoked")], compute="_compute_state")

    @api.depends("active")
    def _compute_state(self):
        for auth in self:
            auth.state = "active" if auth.active else "revoked"

    def _compute_active_token_count(self):
        now = fields.Datetime.now()
        data = self.env["ocore.mcp.oauth.token"].sudo()._read_group(
            [("authorization_id", "in", self.ids), "|", ("access_expires_at", ">", now),
             ("refresh_expires_at", ">", now)],
            ["authorization_id"], ["__count"],
        )
        counts = {auth.id: count for auth, count in data}
        for auth in self:
            auth.active_token_count = counts.get(auth.id, 0)

    # -- consent -----------------------------------------------------------------------

    @api.model
    def _ocore_user_may_authorize(self, user):
        return user.has_group("ocore_mcp.group_mcp_viewer")

    @api.model
    def _ocore_preset_values(self, preset, category_codes=(), read_only=False):
        """Key values (categories, read-only) of a permission preset of the consent page."""
        categories = self.env["ocore.mcp.category"].sudo()._ocore_offered()
        if preset == "read_only":
            return {"category_ids": [], "read_only": True}
        if preset == "standard":
            chosen = categories.filtered(lambda c: c.code not in HIGH_RISK_CATEGORIES)
            return {"category_ids": chosen.ids, "read_only": False}
        if preset == "full":
            return {"category_ids": [], "read_only": False}
        if preset == "custom":
            chosen = categories.filtered(lambda c: c.code in set(category_codes))
            unknown = set(category_codes) - set(chosen.mapped("code"))
            if unknown:
                raise ValidationError(_("Unknown tool categories: %s", ", ".join(sorted(unknown))))
            if not chosen:
                raise ValidationError(_("Choose at least one tool category, or another preset."))
            return {"category_ids": chosen.ids, "read_only": bool(read_only)}
        raise ValidationError(_("Unknown permission preset %r.", preset))

    @api.model
    def _ocore_grant(self, user, client, decision):
        """Approve ``client`` for ``user`` as decided on the consent page; return the authorization.

        ``decision``: ``company_id``, ``key_mode`` ("new" | "existing"), ``key_id`` (existing), and for a
        new key ``preset``, ``categories`` (custom), ``read_only``, ``instance_scope``, ``tool_allowlist``,
        ``auto_context``. Runs with sudo: every choice is checked against ``user`` here.
        """
        if not self._ocore_user_may_authorize(user):
            raise AccessError(_("You have no MCP access on this database: ask an administrator."))
        company = self.env["res.company"].sudo().browse(int(decision.get("company_id") or 0)).exists()
        if not company or company not in user.company_ids:
            raise AccessError(_("Choose one of your companies."))
        Key = self.env["ocore.mcp.key"].sudo()
        if decision.get("key_mode") == "existing":
            key = Key.browse(int(decision.get("key_id") or 0)).exists()
            if not key or key.user_id != user or key.company_id != company or key.state != "active":
                raise AccessError(_("Choose one of your active API keys of %s.", company.name))
            auto_created = False
        else:
            values = self._ocore_preset_values(
                decision.get("preset") or "standard", decision.get("categories") or (),
                decision.get("read_only"),
            )
            if decision.get("read_only"):
                values["read_only"] = True
            if not user._ocore_may_hold_write_keys():
                values["read_only"] = True  # MCP viewers hold read-only keys only
            values.update({
                "company_id": company.id,
                "origin": "oauth",
                "category_ids": [(6, 0, values["category_ids"])],
                "instance_scope": ",".join(split_list(decision.get("instance_scope"))) or False,
                "tool_allowlist": ",".join(split_list(decision.get("tool_allowlist"))) or False,
                "auto_context": bool(decision.get("auto_context")),
                "note": _("Created by the OAuth consent of %s.", client.name),
            })
            # created on behalf of the consenting user (checked as them); the secret is never shown:
            # the client gets OAuth tokens bound to the key
            key, _secret = Key._ocore_create_key(_("%s (OAuth)", client.name)[:200], user, acting=user, **values)
            auto_created = True
        auth = self.sudo().with_context(active_test=False).search(
            [("user_id", "=", user.id), ("client_id", "=", client.id), ("key_id", "=", key.id)], limit=1
        )
        vals = {"active": True, "revoked_at": False}
        if auth:
            auth.write(vals)
        else:
            auth = self.sudo().create({
                "user_id": user.id, "client_id": client.id, "key_id": key.id, "key_auto_created": auto_created,
                **vals,
            })
        return auth

    def _ocore_usable(self):
        """The authorization may still get tokens: active, key active, owner active, client active."""
        self.ensure_one()
        auth = self.sudo()
        return bool(
            auth.active and auth.client_id.active and auth.user_id.active
            and auth.key_id.with_context(active_test=False).state == "active"
        )

    def _ocore_token_scope(self, requested=None, offline=False):
        """The scope string of a token: what the bound key allows (informative; the key is enforced)."""
        self.ensure_one()
        scope = self.key_id.sudo()._ocore_scope()
        items = ["mcp"]
        if scope["read_only"]:
            items.append("mcp:read")
        items += [f"mcp:{code}" for code in scope["categories"]]
        if offline:
            items.append("offline_access")
        return " ".join(items)

    # -- revocation --------------------------------------------------------------------

    def action_revoke(self):
        """Revoke: tokens soft-deleted, auto-created key deactivated, open sessions closed."""
        for auth in self:
            if auth.user_id != self.env.user and not self.env.user.has_group("ocore_mcp.group_mcp_manager"):
                raise AccessError(_("You can only revoke your own authorizations."))
        auths = self.sudo()
        now = fields.Datetime.now()
        auths.token_ids.filtered("active")._ocore_revoke("authorization_revoked")
        auths.write({"active": False, "revoked_at": now})
        auto_keys = auths.filtered("key_auto_created").key_id.filtered("active")
        if auto_keys:
            auto_keys.write({"active": False})  # the core closes the key's sessions
        auths._ocore_end_sessions("the OAuth authorization has been revoked")
        return True

    def action_revoke_client(self):
        """Revoke every authorization of the same client(s) (the ones the current user may see)."""
        others = self.search([("client_id", "in", self.client_id.ids), ("active", "=", True)])
        (self | others).filtered("active").action_revoke()
        return True

    def _ocore_end_sessions(self, reason):
        self.env["ocore.mcp.session"].sudo().search(
            [("oauth_authorization_id", "in", self.ids), ("ended_at", "=", False)]
        )._ocore_end_logged(reason)
