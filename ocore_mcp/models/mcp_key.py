import dataclasses
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time

from odoo import _, api, fields, models, tools
from odoo.exceptions import AccessError, UserError, ValidationError

from ..lib import compat
from ..service.context import KeyAuth

_logger = logging.getLogger(__name__)
# fields whose change may alter the tool list of the key's open sessions (notifications/tools/list_changed)
TOOL_LIST_FIELDS = frozenset({"active", "user_id", "company_id", "expiration_date", "category_ids", "read_only",
                              "tool_allowlist", "tool_denylist", "model_ids", "instance_scope"})

TOKEN_PREFIX = "ocore_"  # noqa: S105 - a name, not a secret
# How long a worker reuses what it read of an API key (key, owner, scopes) without a change of the key itself:
# a change of the key (revocation, new secret, scopes) clears it at once in this worker and, through Odoo's
# cache signaling, in the others at their next request; this bounds anything else (the owner deactivated,
# their groups) well within the 30 s in which a revocation must take effect.
AUTH_CACHE_SECONDS = 15


def request_ip():
    """The client address of the HTTP request being served, or ``n/a`` (as Odoo logs its API keys)."""
    from odoo.http import request

    try:
        if not request:
            return "n/a"
        return request.httprequest.environ.get("REMOTE_ADDR") or "n/a"
    except RuntimeError:  # no request bound to this thread
        return "n/a"


def hash_token(token):
    # API keys are high-entropy random secrets: one SHA-256 is enough and keeps
    # per-request verification cheap (no slow password hash on every call).
    return hashlib.sha256(token.encode()).hexdigest()


def split_list(text):
    """Split a comma / newline separated text field into clean items."""
    if not text:
        return []
    return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


@compat.table_constraints(("rate_limit_positive", "CHECK(rate_limit >= 0)", "The rate limit cannot be negative."))
class McpKey(models.Model):
    _name = "ocore.mcp.key"
    _inherit = ["ocore.mcp.credential.mixin"]
    _description = "MCP API Key"
    _order = "create_date desc, id desc"

    name = fields.Char(required=True, help="What this key is for, e.g. 'Claude Desktop on my laptop'.")
    user_id = fields.Many2one(
        "res.users",
        string="Owner",
        required=True,
        default=lambda self: self.env.user,
        ondelete="cascade",
        index=True,
        help="Every tool runs as this user, with their access rights and record rules.",
    )
    company_id = fields.Many2one(
        "res.company",
        required=True,
        default=lambda self: self.env.company,
        help="The company (organization) the key acts in.",
    )
    active = fields.Boolean(default=True, help="Archive the key to revoke it.")
    expiration_date = fields.Datetime(string="Expires on")
    last_used = fields.Datetime(readonly=True)
    key_prefix = fields.Char(readonly=True, index=True, copy=False)
    # Readable by nobody through the ORM (not even a system administrator over RPC): the code that needs
    # the hash reads it with SQL (_ocore_auth_query), the ORM only writes it (sudo).
    key_hash = fields.Char(readonly=True, copy=False, groups=fields.NO_ACCESS)
    has_secret = fields.Boolean(compute="_compute_has_secret")
    state = fields.Selection(
        [("new", "No secret yet"), ("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")],
        compute="_compute_state",
    )
    origin = fields.Selection(
        [("manual", "Created by hand"), ("setup", "Setup script"), ("oauth", "OAuth"), ("invite", "Invite")],
        default="manual",
        readonly=True,
    )
    # scopes
    category_ids = fields.Many2many(
        "ocore.mcp.category",
        string="Categories",
        domain=[("has_tools", "=", True)],  # only the categories that hold an installed tool are offered
        help="Tool categories this key may use. Empty grants every category.",
    )
    read_only = fields.Boolean(help="Block every write and destructive tool.")
    human_confirmation = fields.Boolean(
        string="Human confirmation required",
        help="Every destructive call waits for a human, even with confirm: true: the AI client asks its user "
             "(elicitation) or, when it cannot, the call waits for the key owner's approval in MCP > Approvals.")
    tool_allowlist = fields.Text(help="Only these tools (comma or newline separated, without the instance prefix).")
    tool_denylist = fields.Text(help="Never these tools (comma or newline separated, without the instance prefix).")
    model_ids = fields.Many2many(
        "ir.model", string="Model allowlist", help="When set, only these models are reachable."
    )
    ip_allowlist = fields.Text(
        string="IP allowlist", help="Client addresses or networks in CIDR notation, comma or newline separated."
    )
    instance_scope = fields.Char(
        help="Instance slugs this key may see (comma separated). Empty: every instance it can reach."
    )
    rate_limit = fields.Integer(help="Calls per minute. 0 uses the instance default (clients through the stdio "
                                     "bridge: 30 calls per minute).")
    default_rate_limit = fields.Integer(
        compute="_compute_default_rate_limit",
        default=lambda self: self.env["ocore.mcp.server"]._ocore_settings()["rate_limit"],  # a new key's form
        help="The instance's rate limit: a key without one of its own gets it.")
    auto_context = fields.Boolean(
        string="Auto-context", help="Prefix tool descriptions with the instance's knowledge summary."
    )
    note = fields.Text()
    session_count = fields.Integer(compute="_compute_session_count")
    subscription_ids = fields.One2many("ocore.mcp.subscription", "key_id", string="Subscriptions", readonly=True)

    @api.depends("key_prefix")
    def _compute_has_secret(self):
        for key in self:
            key.has_secret = bool(key.key_prefix)

    @api.depends("active", "expiration_date", "key_prefix")
    def _compute_state(self):
        now = fields.Datetime.now()
        for key in self:
            key.state = key._ocore_credential_state(now)

    def _compute_session_count(self):
        data = self.env["ocore.mcp.session"].sudo()._read_group(
            [("key_id", "in", self.ids)], ["key_id"], ["__count"]
        )
        counts = {key.id: count for key, count in data}
        for key in self:
            key.session_count = counts.get(key.id, 0)

    @api.constrains("ip_allowlist")
    def _check_ip_allowlist(self):
        for key in self:
            for item in split_list(key.ip_allowlist):
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValidationError(_("%s is not an IP address or CIDR network.", item)) from None

    @api.constrains("read_only", "user_id")
    def _check_viewer_read_only(self):
        for key in self:
            if not key.read_only and not key.user_id._ocore_may_hold_write_keys():
                raise ValidationError(
                    _("%s is an MCP viewer: their keys must be read-only.", key.user_id.display_name)
                )

    @api.constrains("user_id", "company_id")
    def _check_company(self):
        for key in self:
            if key.company_id not in key.user_id.company_ids:
                raise ValidationError(_("The key's company must be one of its owner's companies."))

    @api.constrains("tool_allowlist", "tool_denylist", "instance_scope")
    def _check_names(self):
        for key in self:
            for item in split_list(key.tool_allowlist) + split_list(key.tool_denylist):
                if not item.replace("_", "").isalnum():
                    raise ValidationError(_("%s is not a tool name.", item))

    # -- who may give a key an owner or a secret ------------------------------------------------
    #
    # The rule: the acting user never produces a key whose effective rights exceed their own.
    #  * A system administrator (Settings) may manage every key; so may the superuser (internal code,
    #    which checks the real acting user itself, see _ocore_create_key).
    #  * Anyone may manage their own keys (the tools run with their own rights).
    #  * An MCP manager may give a key to another user only when that user's groups are a subset of the
    #    manager's own groups, the user is not a system administrator, and the key's company is one of
    #    the manager's companies.
    #  * Only the key's owner or a system administrator generates (or regenerates) a key's secret: no one
    #    else ever sees a secret that acts as another user.
    #  * Changing a key's owner or un-archiving a revoked key always clears its secret.

    @api.model
    def _ocore_owner_problem(self, owner, company=None, acting=None):
        """Why ``acting`` (default: the environment's user) may not give a key of ``owner`` (in
        ``company``) its owner, or None when they may."""
        acting = acting if acting is not None else self.env.user
        owner = owner.sudo()
        if acting._is_superuser() or acting._is_system() or owner == acting:
            return None
        if not acting.has_group("ocore_mcp.group_mcp_manager"):
            return _("Only MCP managers can manage the keys of other users.")
        if owner._is_superuser() or owner._is_system():
            return _("Only a system administrator can manage the keys of %s, a system administrator.",
                     owner.display_name)
        missing = compat.user_all_groups(owner) - compat.user_all_groups(acting.sudo())
        if missing:
            return _(
                "%(owner)s has access rights you do not have (%(groups)s): a key cannot grant more than "
                "its author holds.",
                owner=owner.display_name, groups=", ".join(missing.mapped("full_name")[:5]),
            )
        if company and company not in acting.sudo().company_ids:
            return _("You are not a member of %s.", company.display_name)
        return None

    def _ocore_check_owner(self, acting=None):
        for key in self:
            problem = self._ocore_owner_problem(key.sudo().user_id, key.sudo().company_id, acting)
            if problem:
                raise AccessError(problem)

    def _ocore_check_secret_generation(self, acting=None):
        """Only the owner or a system administrator (or internal code) gives a key a secret."""
        acting = acting if acting is not None else self.env.user
        for key in self:
            owner = key.sudo().user_id
            if not (acting._is_superuser() or acting._is_system() or owner == acting):
                raise AccessError(_(
                    "Only %s or a system administrator can generate the secret of this key.", owner.display_name
                ))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            for field in ("key_prefix", "key_hash", "last_used"):
                vals.pop(field, None)
        keys = super().create(vals_list)
        if not self.env.su:
            keys._ocore_check_owner()
        for key in keys:
            key._ocore_log("created")
        return keys

    def write(self, vals):
        if "key_prefix" in vals or "key_hash" in vals:
            # only _ocore_set_new_secret / _ocore_clear_secret give or take a secret (sudo)
            if not self.env.su:
                raise AccessError(_("The secret of a key is generated, never written."))
        if not self.env.su and "user_id" in vals and not self.env.user.has_group("ocore_mcp.group_mcp_manager"):
            raise UserError(_("Only MCP managers can change a key's owner."))
        if not self.env.su and set(vals) - {"active"}:
            # the current owners: nobody takes over a key they could not make, nor widens its scopes (read-only,
            # categories, allowlists ...) for its secret's holder; revoking (active=False) stays open to managers
            self._ocore_check_owner()
        owner_changed = self.browse()
        if "user_id" in vals:
            owner_changed = self.filtered(lambda k: k.sudo().user_id.id != vals["user_id"])
        revived = self.browse()
        if vals.get("active"):
            revived = self.with_context(active_test=False).filtered(lambda k: not k.active)
        revoked = self.filtered("active") if "active" in vals and not vals["active"] else self.browse()
        res = super().write(vals)
        # what workers hold of these keys (_ocore_auth_cached), in every worker; again once committed, in case
        # a request of this worker read the key meanwhile
        self.env.registry.clear_cache()
        self.env.cr.postcommit.add(self.env.registry.clear_cache)
        if TOOL_LIST_FIELDS & set(vals):  # the tool list of the keys' open sessions may change
            self.env["ocore.mcp.subscription"].sudo()._ocore_tools_list_changed(self.with_context(active_test=False))
        if not self.env.su and ("user_id" in vals or "company_id" in vals or revived):
            (self if ("user_id" in vals or "company_id" in vals) else revived)._ocore_check_owner()
        # a key that changes hands or comes back from revocation never keeps its old secret
        (owner_changed | revived)._ocore_clear_secret("owner changed" if owner_changed else "un-archived")
        # nor the calls its owner approved: an approval is its owner's decision, for their key as it was
        ended = (owner_changed | revived | revoked).with_context(active_test=False)
        if ended:
            self.env["ocore.mcp.approval"].sudo().search(
                [("key_id", "in", ended.ids), ("state", "in", ("pending", "approved"))]).write({"state": "expired"})
        if revoked:
            for key in revoked:
                key._ocore_log("revoked")
            self._ocore_close_sessions("the API key has been revoked")
        return res

    def unlink(self):
        for key in self:
            key._ocore_log("deleted")
        self.env.registry.clear_cache()
        return super().unlink()

    def _ocore_log(self, event, acting=None):
        """Log an event of this key's life with the acting user and the client address (never a secret),
        as Odoo does for its own API keys."""
        self.ensure_one()
        acting = acting if acting is not None else self.env.user
        owner = self.sudo().user_id
        _logger.info(
            "MCP API key #%s %s: owner '%s' (#%s), by '%s' (#%s) from %s",
            self.id, event, owner.login, owner.id, acting.login, acting.id, request_ip(),
        )

    def _ocore_close_sessions(self, reason):
        """End the open sessions of these keys and close their streams now."""
        self.env["ocore.mcp.session"].sudo().search(
            [("key_id", "in", self.ids), ("ended_at", "=", False)]
        )._ocore_end_logged(reason)

    @api.model
    def _ocore_www_authenticate(self, base_url, error, description):
        """The WWW-Authenticate header of a 401 (the OAuth addon adds resource_metadata)."""
        description = description.replace('"', "'")
        return f'Bearer realm="oCore MCP", error="{error}", error_description="{description}"'

    # -- secrets ---------------------------------------------------------------

    def _ocore_set_new_secret(self, acting=None):
        """Generate a new secret for this key, store its hash, return the secret (seen once)."""
        self.ensure_one()
        self._ocore_check_secret_generation(acting)
        prefix = secrets.token_hex(5)
        token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(30)}"
        self.sudo().write({"key_prefix": prefix, "key_hash": hash_token(token)})
        self._ocore_log("secret generated", acting)
        return token

    def _ocore_clear_secret(self, reason):
        """Invalidate the secrets of these keys (they must be generated again) and end their sessions."""
        with_secret = self.sudo().with_context(active_test=False).filtered("key_prefix")
        if not with_secret:
            return
        with_secret.write({"key_prefix": False, "key_hash": False})
        for key in with_secret:
            key.with_env(self.env)._ocore_log(f"secret invalidated ({reason})")
        with_secret._ocore_close_sessions(f"the API key's secret has been invalidated ({reason})")

    @api.model
    def _ocore_create_key(self, name, user, acting=None, **vals):
        """Create a key for ``user`` and return ``(record, secret)`` (the only time it is seen).

        ``acting``: the user on whose behalf it is done (default: the environment's user); the key is
        created only if ``acting`` may give ``user`` a key with a secret (see _ocore_owner_problem and
        _ocore_check_secret_generation): the OAuth consent and the invites pass the user who accepts.
        """
        acting = acting if acting is not None else self.env.user
        vals.setdefault("company_id", user.company_id.id)
        company = self.env["res.company"].sudo().browse(vals["company_id"])
        problem = self._ocore_owner_problem(user, company, acting)
        if problem:
            raise AccessError(problem)
        key = self.sudo().create({"name": name, "user_id": user.id, **vals})
        return key, key._ocore_set_new_secret(acting)

    def _compute_default_rate_limit(self):
        limit = self.env["ocore.mcp.server"]._ocore_settings()["rate_limit"]
        for key in self:
            key.default_rate_limit = limit

    def action_generate_secret(self):
        """Button (and RPC): (re)generate the secret and show it once, without storing it anywhere.

        The secret travels in the returned action's context only (the display model has no table)."""
        self.ensure_one()
        compat.check_access(self, "write")
        if not self.active:
            raise UserError(_("This key has been revoked: restore it first."))
        self._ocore_check_owner()
        return self.env["ocore.mcp.key.show"]._ocore_action(self._ocore_set_new_secret())

    def action_revoke(self):
        self.write({"active": False})

    def action_view_sessions(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Sessions"),
            "res_model": "ocore.mcp.session",
            "view_mode": "list,form",
            "domain": [("key_id", "=", self.id)],
        }

    @api.model
    def _ocore_find_by_token(self, token):
        """Return the key (sudo) a bearer token belongs to, or an empty recordset.

        Extension point: the OAuth addon resolves its access tokens to keys here.
        """
        if not token or not token.startswith(TOKEN_PREFIX):
            return self.sudo().browse()
        return self._ocore_authenticate(token)[0]

    @api.model
    def _ocore_authenticate(self, token):
        """(key, KeyAuth or None) of a bearer token. An API key is found, checked and described in one
        query (every MCP request starts here), which the worker then reuses for up to AUTH_CACHE_SECONDS
        (a write of the key ends it at once, in every worker: see ``write``); other tokens, e.g. the OAuth
        addon's access tokens, are resolved by :meth:`_ocore_find_by_token`."""
        keys = self.sudo().with_context(active_test=False)
        if token and token.startswith(TOKEN_PREFIX):
            prefix = token[len(TOKEN_PREFIX) :].split("_", 1)[0]
            try:
                key_id, auth = self._ocore_auth_cached(hash_token(token), int(time.time() // AUTH_CACHE_SECONDS),
                                                       prefix)
            except LookupError:  # no such key: not cached, a key made a moment later works at once
                return keys.browse(), None
            return keys.browse(key_id), dataclasses.replace(auth, scope={**auth.scope})
        key = self._ocore_find_by_token(token)
        return key, (key._ocore_auth_info() if key else None)

    @api.model
    @tools.ormcache("token_hash", "period")
    def _ocore_auth_cached(self, token_hash, period, prefix):
        """(key id, KeyAuth) of the API key whose secret hashes to ``token_hash`` (``prefix``: its public
        part), or LookupError. Cached per worker and ``period`` (a time slice of AUTH_CACHE_SECONDS) in
        Odoo's registry cache, which every write of a key clears in all workers."""
        for key_id, key_hash, auth in self._ocore_auth_query("k.key_prefix = %s", prefix):
            if key_hash and hmac.compare_digest(key_hash, token_hash):
                return key_id, auth
        raise LookupError(prefix)

    @api.model
    def _ocore_token_problem(self, token):
        """Why a bearer token that found no key is refused, for the 401 answer (e.g. an OAuth addon's expired
        or revoked access token), or None: an unknown or malformed API key."""
        return None

    def _ocore_auth_info(self):
        """The key, its owner and its scopes in ONE query (every MCP request needs them)."""
        self.ensure_one()
        rows = self._ocore_auth_query("k.id = %s", self.id)
        return rows[0][2] if rows else None

    @api.model
    def _ocore_auth_query(self, condition, value):
        """[(key id, key hash, KeyAuth)] of the keys matching ``condition`` (SQL on ``k``, one parameter)."""
        self.env.flush_all()  # the query below reads the tables: pending ORM writes first (no-op if none)
        cats, models_ = self._fields["category_ids"], self._fields["model_ids"]
        self.env.cr.execute(
            f"""SELECT k.id, k.key_hash,
                       k.active, k.key_prefix IS NOT NULL, k.expiration_date, k.user_id, u.active, u.login,
                       p.lang, p.tz, k.company_id, k.read_only, k.tool_allowlist, k.tool_denylist,
                       k.ip_allowlist, k.instance_scope, k.rate_limit, k.auto_context,
                       ARRAY(SELECT c.code FROM {cats.relation} r JOIN ocore_mcp_category c ON c.id = r.{cats.column2}
                              WHERE r.{cats.column1} = k.id ORDER BY c.code),
                       ARRAY(SELECT m.model FROM {models_.relation} r JOIN ir_model m ON m.id = r.{models_.column2}
                              WHERE r.{models_.column1} = k.id ORDER BY m.model)
                  FROM ocore_mcp_key k
                  JOIN res_users u ON u.id = k.user_id
                  JOIN res_partner p ON p.id = u.partner_id
                 WHERE {condition}""",  # noqa: S608 - relation names from the field definitions, condition from code
            (value,),
        )
        result = []
        for row in self.env.cr.fetchall():
            (key_id, key_hash, active, has_secret, expiration, user_id, user_active, login, lang, tz, company_id,
             read_only, allow, deny, ips, instances, rate_limit, auto_context, categories, model_names) = row
            user = self.env["res.users"].browse(user_id)
            auth = KeyAuth(
                id=key_id,
                active=active,
                has_secret=has_secret,
                expiration_date=expiration,
                user_id=user_id,
                user_active=user_active,
                login=login,
                lang=lang,
                tz=tz,
                company_id=company_id,
                scope={
                    "categories": list(categories),
                    "read_only": bool(read_only) or not user._ocore_may_hold_write_keys(),
                    "tool_allow": split_list(allow),
                    "tool_deny": split_list(deny),
                    "models": list(model_names),
                    "ips": split_list(ips),
                    "instances": split_list(instances),
                    "rate_limit": rate_limit or 0,
                    "auto_context": bool(auto_context),
                },
            )
            result.append((key_id, key_hash, auth))
        return result

    def _ocore_scope(self):
        """The key's scopes as plain data (used by the policy pipeline): those of ``_ocore_auth_info``."""
        self.ensure_one()
        return self._ocore_auth_info().scope
