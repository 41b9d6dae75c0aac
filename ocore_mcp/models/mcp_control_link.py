"""The instance's side of a control plane (ocore_control): enrolment, and the identity of forwarded calls.

An admin of this instance generates a one-time enrolment token; the control plane presents it once
with its public key (Ed25519). From then on each request it forwards carries a short-lived JWT it
signed: issuer = the control plane, audience = this instance's slug, ``sub`` = the member who calls,
``scp`` = the scopes of their organization key. The tool runs as the user of THIS instance mapped to
``sub`` (an explicit mapping, or the same login when the link allows it; never the superuser), under
the intersection of that user's own key scopes and the forwarded ones. Refusing the link (or archiving
the mapped user's key) cuts the control plane off at once.
"""

import dataclasses
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.request

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from odoo import SUPERUSER_ID, _, api, fields, models, tools
from odoo.exceptions import UserError

from ..lib import compat
from .mcp_key import AUTH_CACHE_SECONDS, TOOL_LIST_FIELDS, hash_token

_logger = logging.getLogger(__name__)

KID_PREFIX = "ocore-control-"
ENROL_PREFIX = "ocore_enrol_"  # noqa: S105 - a name, not a secret
ENROL_HOURS = 24
NO_MATCH = "__none__"  # an empty intersection of allowlists: nothing matches
NOTICE_SECONDS = 60  # life of a signed notice to the control plane
NOTICE_TIMEOUT = 5
_PUBLIC_KEYS = {}  # PEM text -> parsed Ed25519 public key (a parse cache: the database holds the keys)


def parsed_public_key(pem):
    key = _PUBLIC_KEYS.get(pem)
    if key is None:
        if len(_PUBLIC_KEYS) > 256:
            _PUBLIC_KEYS.clear()
        key = _PUBLIC_KEYS[pem] = jwt.algorithms.OKPAlgorithm().prepare_key(pem)
    return key


class ControlRefused(Exception):  # noqa: N818 - a refusal, logged, answered as an unknown key
    pass


class McpControlLink(models.Model):
    _name = "ocore.mcp.control.link"
    _description = "MCP control plane link"
    _order = "id desc"

    name = fields.Char(required=True, default=lambda self: _("Control plane"))
    state = fields.Selection(
        [("pending", "Waiting for enrolment"), ("enrolled", "Enrolled"), ("refused", "Refused")],
        default="pending", required=True, readonly=True)
    issuer = fields.Char(readonly=True)
    kid = fields.Char(string="Key id", readonly=True, index=True, copy=False)
    public_key = fields.Text(readonly=True, copy=False)
    token_prefix = fields.Char(readonly=True, copy=False)
    token_hash = fields.Char(readonly=True, copy=False, groups=fields.NO_ACCESS)
    token_expires = fields.Datetime(readonly=True, copy=False)
    enrolled_at = fields.Datetime(readonly=True)
    last_used = fields.Datetime(readonly=True)
    map_by_login = fields.Boolean(
        default=True, help="A member of the control plane acts as the user of this instance with the same login "
        "(when no explicit mapping exists). Off: explicit mappings only.")
    user_map_ids = fields.One2many("ocore.mcp.control.user.map", "link_id", string="User mappings")
    control_url = fields.Char(
        string="Control plane notices URL", readonly=True,
        help="Where this instance tells the control plane at once that its tool list changed (given at enrolment).")

    def init(self):
        self.env.cr.execute("""CREATE UNLOGGED TABLE IF NOT EXISTS ocore_mcp_control_jti (
                                   jti varchar PRIMARY KEY, expires timestamp NOT NULL)""")

    # any change of a link ends what workers hold of it (_ocore_link_cached), in every worker
    @api.model_create_multi
    def create(self, vals_list):
        links = super().create(vals_list)
        self.env.registry.clear_cache()
        return links

    def write(self, vals):
        result = super().write(vals)
        self.env.registry.clear_cache()
        return result

    def unlink(self):
        result = super().unlink()
        self.env.registry.clear_cache()
        return result

    def action_generate_token(self):
        """A one-time enrolment token, shown once (its hash is kept), valid ENROL_HOURS hours."""
        self.ensure_one()
        token = f"{ENROL_PREFIX}{secrets.token_urlsafe(32)}"
        self.sudo().write({"token_hash": hash_token(token), "token_prefix": token[:16],
                           "token_expires": fields.Datetime.add(fields.Datetime.now(), hours=ENROL_HOURS),
                           "state": "pending"})
        return token

    def action_show_token(self):
        token = self.action_generate_token()
        return {"type": "ir.actions.client", "tag": "display_notification",
                "params": {"title": _("Enrolment token (shown once)"), "message": token, "sticky": True}}

    def action_refuse(self):
        """The instance refuses the control plane: every assertion it signed is refused from now on."""
        self.sudo().write({"state": "refused"})
        self.env["ocore.mcp.key"].sudo().search([("control_link_id", "in", self.ids)]).write({"active": False})
        return True

    # -- this instance's own signature (notices to the control plane) ----------------------------

    def _ocore_notice_key(self):
        """This instance's Ed25519 key for this link: derived from the database secret and the link's key id
        (not stored; a rotation of the control plane's key gives a new one)."""
        self.ensure_one()
        secret = self.env["ir.config_parameter"].sudo().get_param("database.secret") or ""
        seed = hmac.new(secret.encode(), f"ocore-mcp/control-notice/{self.kid}".encode(), hashlib.sha256).digest()
        return Ed25519PrivateKey.from_private_bytes(seed)

    def _ocore_notice_public_key(self):
        self.ensure_one()
        return self._ocore_notice_key().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    @api.model
    def _ocore_push_tools_changed(self, reason):
        """Tell every enrolled control plane that this instance's tool list changed: one signed notice per
        link, sent after the commit (a thread: the request never waits for the control plane). Returns
        the [(url, notice)] queued."""
        links = self.sudo().search([("state", "=", "enrolled"), ("control_url", "!=", False)])
        if not links:
            return []
        slug = self.env["ocore.mcp.server"]._ocore_settings()["slug"]
        now = int(time.time())
        notices = []
        for link in links:
            claims = {"iss": f"ocore-instance:{slug}", "aud": link.issuer, "iat": now, "nbf": now - 5,
                      "exp": now + NOTICE_SECONDS, "jti": secrets.token_hex(16), "pur": "tools_changed",
                      "why": str(reason)[:64]}
            notices.append((link.control_url, jwt.encode(claims, link._ocore_notice_key(), algorithm="EdDSA",
                                                         headers={"kid": link.kid})))
        pending = self.env.cr.postcommit.data.setdefault("ocore_control_notices", {})
        if not pending:
            self.env.cr.postcommit.add(lambda: send_notices(list(pending.values())))
        for url, notice in notices:
            pending[url] = (url, notice)  # one notice per control plane and transaction
        return notices

    @api.model
    def _ocore_enrol(self, token, issuer, kid, public_key, name=None, control_url=None):
        if not (isinstance(token, str) and token.startswith(ENROL_PREFIX)):
            raise UserError(_("Invalid enrolment token."))
        if not (isinstance(kid, str) and kid.startswith(KID_PREFIX) and isinstance(public_key, str)):
            raise UserError(_("Invalid control plane key."))
        self.flush_model()
        self.env.cr.execute("SELECT id FROM ocore_mcp_control_link WHERE token_hash = %s AND state = 'pending' "
                            "AND token_expires > now() at time zone 'UTC' FOR UPDATE", (hash_token(token),))
        row = self.env.cr.fetchone()
        if not row:
            raise UserError(_("Unknown, used or expired enrolment token."))
        try:
            jwt.algorithms.OKPAlgorithm().prepare_key(public_key)
        except Exception:  # noqa: BLE001 - any parse failure is a bad key
            raise UserError(_("Invalid control plane key.")) from None
        link = self.sudo().browse(row[0])
        link.write({"state": "enrolled", "issuer": issuer, "kid": kid, "public_key": public_key,
                    "token_hash": False, "token_expires": False, "enrolled_at": fields.Datetime.now(),
                    "name": (name or link.name)[:100],
                    "control_url": control_url if isinstance(control_url, str)
                    and control_url.startswith(("http://", "https://")) else False})
        return link

    def _ocore_enrol_rotate(self, kid, public_key):
        """Replace the control plane's key (the request was signed with the current one)."""
        self.ensure_one()
        if not (isinstance(kid, str) and kid.startswith(KID_PREFIX) and isinstance(public_key, str)):
            raise UserError(_("Invalid control plane key."))
        try:
            jwt.algorithms.OKPAlgorithm().prepare_key(public_key)
        except Exception:  # noqa: BLE001 - any parse failure is a bad key
            raise UserError(_("Invalid control plane key.")) from None
        self.sudo().write({"kid": kid, "public_key": public_key})

    # -- assertions ------------------------------------------------------------------------------

    @api.model
    def _ocore_is_assertion(self, token):
        if not token or token.count(".") != 2:
            return False
        try:
            return str(jwt.get_unverified_header(token).get("kid", "")).startswith(KID_PREFIX)
        except jwt.PyJWTError:
            return False

    @api.model
    def _ocore_verify(self, token, purpose, link_row=None):
        """(link, claims) of a valid assertion for ``purpose``, or raise ControlRefused."""
        if link_row is None:
            link_row = self._ocore_link_row(token)
        link_id, state, public_key, issuer, name = link_row[:5]
        if state != "enrolled":
            raise ControlRefused(f"the control plane link {name!r} is {state}")
        slug = self.env["ocore.mcp.server"]._ocore_settings()["slug"]
        try:
            claims = jwt.decode(token, parsed_public_key(public_key), algorithms=["EdDSA"],
                                audience=f"ocore-instance:{slug}",
                                issuer=issuer, leeway=5,
                                options={"require": ["exp", "iat", "jti", "sub", "aud", "iss"]})
        except jwt.PyJWTError as exc:
            raise ControlRefused(f"assertion refused: {exc}") from None
        if claims.get("pur", "call") != purpose:
            raise ControlRefused(f"assertion for {claims.get('pur')!r} used for {purpose!r}")
        if claims["exp"] - claims["iat"] > 300:
            raise ControlRefused("assertion lives too long")
        if purpose != "call":  # a call uses its jti in the query that finds its user (_ocore_call_key)
            self._ocore_use_jti(claims)
        return self.sudo().browse(link_id), claims

    @api.model
    def _ocore_link_row(self, token):
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise ControlRefused(f"malformed assertion: {exc}") from None
        row = self._ocore_link_cached(str(kid)[:200])
        if not row:
            raise ControlRefused(f"no control plane enrolled with key {kid}")
        return row

    @api.model
    @tools.ormcache("kid")
    def _ocore_link_cached(self, kid):
        """(id, state, public_key, issuer, name, map_by_login) of the link enrolled with ``kid``, or None; read
        once per worker (any write of a link clears it in every worker)."""
        self.flush_model()
        self.env.cr.execute("""SELECT id, state, public_key, issuer, name, map_by_login
                                 FROM ocore_mcp_control_link WHERE kid = %s LIMIT 1""", (kid,))
        return self.env.cr.fetchone()

    @api.model
    def _ocore_use_jti(self, claims):
        cr = self.env.cr
        cr.execute("""INSERT INTO ocore_mcp_control_jti (jti, expires)
                      VALUES (%s, to_timestamp(%s) at time zone 'UTC') ON CONFLICT (jti) DO NOTHING""",
                   (str(claims["jti"])[:100], claims["exp"] + 10))
        if not cr.rowcount:
            raise ControlRefused("assertion replayed (jti already used)")
        if secrets.randbelow(100) == 0:
            cr.execute("DELETE FROM ocore_mcp_control_jti WHERE expires < now() at time zone 'UTC'")

    @api.model
    def _ocore_call_key(self, token):
        """The key a forwarded call runs under, and the assertion's claims: the link, the single use of the
        jti, the mapped user and their key found in two queries (every forwarded call starts here)."""
        row = self._ocore_link_row(token)
        link, claims = self._ocore_verify(token, "call", row)
        cr = self.env.cr
        self.env["ocore.mcp.key"].flush_model()
        self.env["ocore.mcp.control.user.map"].flush_model()
        cr.execute(
            """WITH used AS (INSERT INTO ocore_mcp_control_jti (jti, expires)
                             VALUES (%(jti)s, to_timestamp(%(exp)s) at time zone 'UTC')
                             ON CONFLICT (jti) DO NOTHING RETURNING 1),
                    target AS (SELECT COALESCE(
                                 (SELECT m.user_id FROM ocore_mcp_control_user_map m
                                   WHERE m.link_id = %(link)s AND m.subject = %(sub)s),
                                 (SELECT u.id FROM res_users u
                                   WHERE %(by_login)s AND u.login = %(sub)s AND u.share IS NOT TRUE)) AS uid)
               SELECT (SELECT count(*) FROM used), t.uid, u.active,
                      (SELECT k.id FROM ocore_mcp_key k WHERE k.control_link_id = %(link)s AND k.user_id = t.uid
                        ORDER BY k.id LIMIT 1),
                      (SELECT k.active FROM ocore_mcp_key k WHERE k.control_link_id = %(link)s AND k.user_id = t.uid
                        ORDER BY k.id LIMIT 1)
                 FROM target t LEFT JOIN res_users u ON u.id = t.uid""",
            {"jti": str(claims["jti"])[:100], "exp": claims["exp"] + 10, "link": link.id,
             "sub": str(claims["sub"]), "by_login": bool(row[5])})
        fresh, uid, user_active, key_id, key_active = cr.fetchone()
        if not fresh:
            raise ControlRefused("assertion replayed (jti already used)")
        if secrets.randbelow(100) == 0:
            cr.execute("DELETE FROM ocore_mcp_control_jti WHERE expires < now() at time zone 'UTC'")
        if not uid or uid == SUPERUSER_ID or not user_active:
            raise ControlRefused(f"no user of this instance is mapped to {claims['sub']!r}")
        if key_id is None:
            key = link._ocore_key_for(self.env["res.users"].sudo().browse(uid))
        elif not key_active:
            raise ControlRefused(f"the control plane key of user #{uid} has been revoked on this instance")
        else:
            key = self.env["ocore.mcp.key"].sudo().browse(key_id)
        return key, claims

    @api.model
    @tools.ormcache("key_id", "period")
    def _ocore_control_auth(self, key_id, period):
        """The KeyAuth of a control key, reused by the worker for the time slice ``period`` (as an API key's:
        a write of the key clears it in every worker; the key's and its owner's active flags are read by
        every call's own query)."""
        return self.env["ocore.mcp.key"].sudo().browse(key_id)._ocore_auth_info()

    def _ocore_key_for(self, user):
        """The key forwarded calls of ``user`` run under (created on first use; archive it to refuse them)."""
        self.ensure_one()
        keys = self.env["ocore.mcp.key"].sudo().with_context(active_test=False)
        key = keys.search([("control_link_id", "=", self.id), ("user_id", "=", user.id)], limit=1)
        if not key:
            key = keys.create({"name": _("Control plane: %s", self.name), "user_id": user.id,
                               "company_id": user.company_id.id, "origin": "control", "control_link_id": self.id,
                               "read_only": not user._ocore_may_hold_write_keys()})
            # a secret nobody knows: the key is usable only through the link's assertions
            key.write({"key_prefix": "ctl" + secrets.token_hex(4), "key_hash": hash_token(secrets.token_hex(32))})
        if not key.active:
            raise ControlRefused(f"the control plane key of {user.login} has been revoked on this instance")
        return key


@compat.table_constraints(("subject_unique", "UNIQUE(link_id, subject)", "A subject is mapped once per link."))
class McpControlUserMap(models.Model):
    _name = "ocore.mcp.control.user.map"
    _description = "MCP control plane user mapping"

    link_id = fields.Many2one("ocore.mcp.control.link", required=True, ondelete="cascade", index=True)
    subject = fields.Char(required=True, help="The member's identity on the control plane (their login there).")
    user_id = fields.Many2one("res.users", required=True, ondelete="cascade", domain=[("share", "=", False)])


def intersect(mine, theirs):
    """The stricter of two allowlists (empty = everything)."""
    if not theirs:
        return mine
    if not mine:
        return list(theirs)
    return [item for item in mine if item in theirs] or [NO_MATCH]


class McpKeyControl(models.Model):
    _inherit = "ocore.mcp.key"

    origin = fields.Selection(selection_add=[("control", "Control plane")], ondelete={"control": "cascade"})
    control_link_id = fields.Many2one("ocore.mcp.control.link", readonly=True, ondelete="cascade")

    def write(self, vals):
        result = super().write(vals)
        if TOOL_LIST_FIELDS & set(vals) and self.sudo().filtered("control_link_id"):
            push_tools_changed(self.env, "key")  # what the control plane lists of this instance changes
        return result

    # -- OAuth consent hooks (a control plane's organizations and instances; ocore_control fills them) ----

    @api.model
    def _ocore_consent_values(self, user, form):
        """Values the OAuth consent form adds for ``user`` (``form``: the choices shown again). A control
        plane returns ``consent_extra_html``: its organization and instance pickers, shown in place of
        the free-text instance scoping."""
        return {}

    @api.model
    def _ocore_consent_decision(self, form):
        """The choices of those extra fields, read from the posted form (a MultiDict)."""
        return {}

    @api.model
    def _ocore_consent_key_values(self, user, decision):
        """Key values the extra choices give the key a consent creates or updates, checked for ``user``
        (raise AccessError or ValidationError to show the form again with the error)."""
        return {}

    @api.model
    def _ocore_authenticate(self, token):
        links = self.env["ocore.mcp.control.link"]
        if not links._ocore_is_assertion(token):
            return super()._ocore_authenticate(token)
        try:
            key, claims = links._ocore_call_key(token)
        except ControlRefused as exc:
            _logger.warning("MCP: control plane request refused: %s", exc)
            return self.sudo().browse(), None
        auth = links._ocore_control_auth(key.id, int(time.time() // AUTH_CACHE_SECONDS))
        if auth is None:
            return self.sudo().browse(), None
        forwarded = claims.get("scp") if isinstance(claims.get("scp"), dict) else {}
        scope = {**auth.scope}
        scope["read_only"] = scope["read_only"] or bool(forwarded.get("read_only"))
        for name in ("categories", "tool_allow", "models"):
            scope[name] = intersect(scope[name], [str(v) for v in forwarded.get(name) or []])
        scope["tool_deny"] = sorted(set(scope["tool_deny"]) | {str(v) for v in forwarded.get("tool_deny") or []})
        return key, dataclasses.replace(auth, scope=scope)


def push_tools_changed(env, reason):
    """Queue the notices of a tool list change (never fails the change itself)."""
    try:
        with env.cr.savepoint():
            env["ocore.mcp.control.link"]._ocore_push_tools_changed(reason)
    except Exception:  # noqa: BLE001 - the change stands; the control plane's cache expires anyway
        _logger.warning("could not queue the control plane notice (%s)", reason, exc_info=True)


def send_notices(notices):
    """POST the signed notices (after the commit, in a thread of their own; a control plane down is logged)."""

    def send():
        for url, notice in notices:
            req = urllib.request.Request(url, data=json.dumps({}).encode(), method="POST",  # noqa: S310 - http(s) only
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {notice}"})
            try:
                with urllib.request.urlopen(req, timeout=NOTICE_TIMEOUT) as resp:  # noqa: S310 - checked at enrolment
                    resp.read()
            except Exception as exc:  # noqa: BLE001 - best effort: the control plane's cache expires anyway
                _logger.info("control plane not told of the tool list change (%s): %s", url, exc)

    if notices:
        threading.Thread(target=send, name="ocore-control-notice", daemon=True).start()
