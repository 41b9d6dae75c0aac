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
# The presets the consent page offers: which categories; reading only is one separate control ("read_only"
# stays accepted: every category, read-only).
PAGE_PRESETS = [p for p in PRESETS if p[0] != "read_only"]
# Expiry choices of the key the consent creates (days; "" never)
EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("", "Never")]


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
    def _ocore_preset_categories(self):
        """{preset: [category codes]} of the page's presets other than custom (what each grants)."""
        offered = self.env["ocore.mcp.category"].sudo()._ocore_offered()
        return {
            "standard": offered.filtered(lambda c: c.code not in HIGH_RISK_CATEGORIES).mapped("code"),
            "full": offered.mapped("code"),
        }

    @api.model
    def _ocore_expiry_date(self, days):
        """The expiration date of a new key from the consent's expiry choice (days, or empty: never)."""
        if not days:
            return False
        allowed = {choice for choice, _label in EXPIRY_CHOICES if choice}
        if str(days) not in allowed:
            raise ValidationError(_("Unknown expiry %r.", days))
        return fields.Datetime.add(fields.Datetime.now(), days=int(days))

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
                "expiration_date": self._ocore_expiry_date(decision.get("expiry_days")),
                "note": _("Created by the OAuth consent of %s.", client.name),
            })
            values.update(Key._ocore_consent_key_values(user, decision))  # e.g. a control plane's instances
            previous = self._ocore_previous_auto_authorization(user, client, company)
            if previous:
                # a re-authorization of the same client by the same user: one authorization and one key,
                # with the permissions of this consent (instead of one more of each)
                key = previous.key_id.sudo().with_context(active_test=False)
                key.write({k: v for k, v in values.items() if k not in ("company_id", "origin")})
                return previous
            # created on behalf of the consenting user (checked as them); the secret is never shown:
            # the client gets OAuth tokens bound to the key. Named so that a person tells them apart.
            name = _("%(client)s (OAuth, %(user)s, %(date)s)", client=client.name, user=user.login,
                     date=fields.Date.context_today(self).isoformat())
            key, _secret = Key._ocore_create_key(name[:200], user, acting=user, **values)
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

    @api.model
    def _ocore_previous_auto_authorization(self, user, client, company):
        """The active authorization of ``client`` by ``user`` whose key the consent created (in ``company``)."""
        auths = self.sudo().search([("user_id", "=", user.id), ("client_id", "=", client.id),
                                    ("key_auto_created", "=", True)])
        return auths.filtered(lambda a: a.key_id.state == "active" and a.key_id.company_id == company)[:1]

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
        return self.sudo()._ocore_revoke_all()

    def _ocore_revoke_all(self):
        auths = self.sudo()
        now = fields.Datetime.now()
        auths.token_ids.filtered("active")._ocore_revoke("authorization_revoked")
        auths.write({"active": False, "revoked_at": now})
        auto_keys = auths.filtered("key_auto_created").key_id.filtered("active")
        if auto_keys:
            auto_keys.write({"active": False})  # the core closes the key's sessions
        auths._ocore_end_sessions("the OAuth authorization has been revoked")
        return True

    @api.autovacuum
    def _gc_never_exchanged(self):
        """Approvals whose code (or device grant) never reached the token exchange: the authorization and
        the key it created are revoked once no code or device grant of theirs can still be exchanged."""
        now = fields.Datetime.now()
        auths = self.sudo().search([("key_auto_created", "=", True),
                                    ("create_date", "<", fields.Datetime.subtract(now, minutes=15))])
        if not auths:
            return
        tokens = self.env["ocore.mcp.oauth.token"].sudo().with_context(active_test=False)
        with_tokens = set(tokens.search([("authorization_id", "in", auths.ids)]).authorization_id.ids)
        pending = set(self.env["ocore.mcp.oauth.code"].sudo().search(
            [("authorization_id", "in", auths.ids), ("expires_at", ">", now)]).authorization_id.ids)
        pending |= set(self.env["ocore.mcp.oauth.device"].sudo().search(
            [("authorization_id", "in", auths.ids), ("expires_at", ">", now)]).authorization_id.ids)
        unused = auths.filtered(lambda a: a.id not in with_tokens and a.id not in pending)
        if unused:
            unused._ocore_revoke_all()

    def action_revoke_client(self):
        """Revoke every authorization of the same client(s) (the ones the current user may see)."""
        others = self.search([("client_id", "in", self.client_id.ids), ("active", "=", True)])
        (self | others).filtered("active").action_revoke()
        return True

    def _ocore_end_sessions(self, reason):
        self.env["ocore.mcp.session"].sudo().search(
            [("oauth_authorization_id", "in", self.ids), ("ended_at", "=", False)]
        )._ocore_end_logged(reason)
