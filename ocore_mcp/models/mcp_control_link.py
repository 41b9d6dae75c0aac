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
import math
import secrets
import threading
import time
import urllib.request

import jwt
import psycopg2
import psycopg2.extensions
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
LEEWAY = 5  # seconds of clock difference allowed on exp, iat and nbf
MAX_LIFE = 300  # an assertion valid longer than this is refused
REQUIRED_CLAIMS = ("exp", "iat", "jti", "sub", "aud", "iss")
# the row of the used-assertion register that records since when it holds every used jti (no jti has this form:
# the control plane's are hex); crash recovery empties the UNLOGGED table, this row included
EPOCH_JTI = "~epoch"
# a forwarded call's check in one call of a PL/pgSQL function (its statements' plans are kept by each connection: a
# single SQL statement of the same work was planned again on every call, 0.3-0.5 ms): the jti used once, the
# register's epoch (written again when the table was emptied; NULL then: "now"), the user mapped to the subject
# (explicit mapping, else the same login when allowed) and their control key
USE_FUNCTION_SQL = """
    CREATE OR REPLACE FUNCTION ocore_mcp_control_use(
        p_jti varchar, p_expires timestamp, p_epoch varchar, p_link integer, p_sub varchar,
        p_by_login boolean, OUT fresh boolean, OUT since double precision, OUT uid integer,
        OUT user_active boolean, OUT key_id integer, OUT key_active boolean) AS $$
    BEGIN
        INSERT INTO ocore_mcp_control_jti (jti, expires) VALUES (p_jti, p_expires)
            ON CONFLICT (jti) DO NOTHING;
        fresh := FOUND;
        SELECT extract(epoch FROM j.expires) INTO since FROM ocore_mcp_control_jti j WHERE j.jti = p_epoch;
        IF since IS NULL THEN
            INSERT INTO ocore_mcp_control_jti (jti, expires)
                VALUES (p_epoch, clock_timestamp() at time zone 'UTC') ON CONFLICT (jti) DO NOTHING;
        END IF;
        SELECT m.user_id INTO uid FROM ocore_mcp_control_user_map m
         WHERE m.link_id = p_link AND m.subject = p_sub;
        IF uid IS NULL AND p_by_login THEN
            SELECT u.id INTO uid FROM res_users u WHERE u.login = p_sub AND u.share IS NOT TRUE;
        END IF;
        IF uid IS NOT NULL THEN
            SELECT u.active INTO user_active FROM res_users u WHERE u.id = uid;
            SELECT k.id, k.active INTO key_id, key_active FROM ocore_mcp_key k
             WHERE k.control_link_id = p_link AND k.user_id = uid ORDER BY k.id LIMIT 1;
        END IF;
    END $$ LANGUAGE plpgsql"""
_USE_FUNCTION_SEEN = set()  # databases where this worker saw ocore_mcp_control_use (the database holds it)
_PUBLIC_KEYS = {}  # PEM text -> parsed Ed25519 public key (a parse cache: the database holds the keys)


def parsed_public_key(pem):
    key = _PUBLIC_KEYS.get(pem)
    if key is None:
        if len(_PUBLIC_KEYS) > 256:
            _PUBLIC_KEYS.clear()
        key = jwt.algorithms.OKPAlgorithm().prepare_key(pem)
        key = _PUBLIC_KEYS[pem] = key.public_key() if hasattr(key, "public_key") else key
    return key


def parse_assertion(token):
    """(header, token) of a compact JWS whose key id names a control plane, its header read once and nothing
    verified yet; None for any other token (an API key, an OAuth token)."""
    if not token or token.count(".") != 2:
        return None
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    if not str(header.get("kid", "")).startswith(KID_PREFIX):
        return None
    return header, token


def check_assertion(parsed, public_key, audience, issuer):
    """The claims of ``parsed`` (parse_assertion) when PyJWT finds its EdDSA signature ``public_key``'s and its
    claims valid (every REQUIRED_CLAIMS present, audience, issuer, exp / iat / nbf within LEEWAY seconds), else
    raise ControlRefused. The key is parsed once per process (parsed_public_key): PyJWT then costs ~0.05 ms
    more than a bare signature check, measured, and is not worth a hand-written verifier."""
    try:
        claims = jwt.decode(parsed[1], parsed_public_key(public_key), algorithms=["EdDSA"], audience=audience,
                            issuer=issuer, leeway=LEEWAY, options={"require": list(REQUIRED_CLAIMS)})
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise ControlRefused(f"assertion refused: {exc}") from None
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        # PyJWT reads these with int(): a float past its bounds or a boolean is refused here
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)
                               or not math.isfinite(value)):
            raise ControlRefused(f"assertion refused: the {name!r} claim is not a number")
    for name in ("sub", "jti"):
        if not isinstance(claims[name], str):
            raise ControlRefused(f"assertion refused: the {name!r} claim is not a string")
    return claims


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
        # the used-assertion register: UNLOGGED (no WAL per forwarded call); crash recovery empties it, and with
        # it its EPOCH_JTI row: an assertion issued before that row's time is refused (see _ocore_fresh)
        self.env.cr.execute("""CREATE UNLOGGED TABLE IF NOT EXISTS ocore_mcp_control_jti (
                                   jti varchar PRIMARY KEY, expires timestamp NOT NULL)""")
        self.env.cr.execute("""INSERT INTO ocore_mcp_control_jti (jti, expires)
                               VALUES (%s, clock_timestamp() at time zone 'UTC') ON CONFLICT (jti) DO NOTHING""",
                            (EPOCH_JTI,))
        self.env.cr.execute(USE_FUNCTION_SQL)

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
        return parse_assertion(token) is not None

    @api.model
    def _ocore_verify(self, token, purpose, link_row=None, parsed=None):
        """(link, claims) of a valid assertion for ``purpose``, or raise ControlRefused. The token is parsed
        once (``parsed``: parse_assertion's answer when the caller has it)."""
        parsed = parsed or parse_assertion(token)
        if parsed is None:
            raise ControlRefused("malformed assertion")
        if link_row is None:
            link_row = self._ocore_link_row(parsed)
        link_id, state, public_key, issuer, name = link_row[:5]
        if state != "enrolled":
            raise ControlRefused(f"the control plane link {name!r} is {state}")
        slug = self.env["ocore.mcp.server"]._ocore_settings()["slug"]
        claims = check_assertion(parsed, public_key, f"ocore-instance:{slug}", issuer)
        if claims.get("pur", "call") != purpose:
            raise ControlRefused(f"assertion for {claims.get('pur')!r} used for {purpose!r}")
        if claims["exp"] - claims["iat"] > MAX_LIFE:
            raise ControlRefused("assertion lives too long")
        if purpose != "call":  # a call uses its jti in the query that finds its user (_ocore_call_key)
            self._ocore_use_jti(claims)
        return self.sudo().browse(link_id), claims

    @api.model
    def _ocore_link_row(self, parsed):
        kid = parsed[0].get("kid")
        row = self._ocore_link_cached(str(kid)[:200])
        if not row:
            raise ControlRefused(f"no control plane enrolled with key {str(kid)[:200]}")
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

    # The used-assertion register (ocore_mcp_control_jti) is UNLOGGED: an insert per forwarded call writes no
    # WAL. Crash recovery (and the promotion of a standby, which never had its rows) empties it: the jti of
    # the assertions used before are forgotten while those assertions may still be valid (60 s). The register's
    # EPOCH_JTI row, written when the table is created and again by the first check after it was emptied,
    # holds since when it knows every used jti: an assertion issued before that time is refused (a call in
    # flight during the reset is refused once; the control plane signs a new assertion per call).
    _JTI_EPOCH_SQL = """epoch AS (INSERT INTO ocore_mcp_control_jti (jti, expires)
                                 VALUES (%(epoch)s, clock_timestamp() at time zone 'UTC')
                                 ON CONFLICT (jti) DO NOTHING RETURNING expires)"""
    _JTI_SINCE_SQL = """extract(epoch FROM COALESCE(
                            (SELECT expires FROM epoch),
                            (SELECT expires FROM ocore_mcp_control_jti WHERE jti = %(epoch)s)))"""

    @api.model
    def _ocore_fresh(self, claims, fresh, since):
        """Raise ControlRefused unless the jti was unused (``fresh``) and the assertion was issued after the
        register's epoch ``since`` (None: the epoch row was being written by a concurrent check: now)."""
        if not fresh:
            raise ControlRefused("assertion replayed (jti already used)")
        since = float(since) if since is not None else time.time()
        if claims["iat"] < since:
            raise ControlRefused("assertion issued before the used-assertion register was emptied (database "
                                 "crash recovery): refused, as it may have been used already")
        if secrets.randbelow(100) == 0:
            self.env.cr.execute("DELETE FROM ocore_mcp_control_jti WHERE expires < now() at time zone 'UTC' "
                                "AND jti != %s", (EPOCH_JTI,))

    @api.model
    def _ocore_use_jti(self, claims):
        row = self._ocore_statement(
            f"""WITH used AS (INSERT INTO ocore_mcp_control_jti (jti, expires)
                              VALUES (%(jti)s, to_timestamp(%(exp)s) at time zone 'UTC')
                              ON CONFLICT (jti) DO NOTHING RETURNING 1),
                     {self._JTI_EPOCH_SQL}
                SELECT (SELECT count(*) FROM used), {self._JTI_SINCE_SQL}""",
            {"jti": str(claims["jti"])[:100], "exp": claims["exp"] + 10, "epoch": EPOCH_JTI})
        self._ocore_fresh(claims, *row)

    @api.model
    def _ocore_statement(self, query, params):
        """Run one statement and return its row: in an implicit transaction of its own (autocommit: one round
        trip, no BEGIN nor COMMIT) when the request's transaction holds nothing yet, as when a request
        authenticates; else (or under Odoo's tests) in the current transaction."""
        cr = self.env.cr
        cnx = cr._cnx
        if compat.in_odoo_test() or cnx.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            cr.execute(query, params)
            return cr.fetchone()
        cnx.autocommit = True
        try:
            cr.execute(query, params)
            return cr.fetchone()
        finally:
            if not cnx.closed:
                cnx.autocommit = False  # the pooled connection never stays in autocommit

    @api.model
    def _ocore_call_key(self, token, parsed=None):
        """The key a forwarded call runs under, and the assertion's claims: the single use of the jti, the
        register's epoch, the mapped user and their key found in one statement (ocore_mcp_control_use; every
        forwarded call starts here; the link comes from the worker's cache, the token is parsed once)."""
        parsed = parsed or parse_assertion(token)
        if parsed is None:
            raise ControlRefused("malformed assertion")
        row = self._ocore_link_row(parsed)
        link, claims = self._ocore_verify(token, "call", row, parsed)
        self.env["ocore.mcp.key"].flush_model()
        self.env["ocore.mcp.control.user.map"].flush_model()
        query = """SELECT * FROM ocore_mcp_control_use(%s, to_timestamp(%s) at time zone 'UTC', %s, %s, %s, %s)"""
        params = (str(claims["jti"])[:100], claims["exp"] + 10, EPOCH_JTI, link.id, str(claims["sub"]), bool(row[5]))
        cr = self.env.cr
        if cr.dbname not in _USE_FUNCTION_SEEN:
            # code newer than the database (ocore_mcp not upgraded yet): the function is created now
            cr.execute("SELECT 1 FROM pg_proc WHERE proname = 'ocore_mcp_control_use'")
            if cr.fetchone():
                _USE_FUNCTION_SEEN.add(cr.dbname)
            else:  # created in this request's transaction: remembered once a later call finds it committed
                cr.execute(USE_FUNCTION_SQL)
        fresh, since, uid, user_active, key_id, key_active = self._ocore_statement(query, params)
        self._ocore_fresh(claims, fresh, since)
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


def stricter_scope(scope, other, lists=("categories", "tool_allow", "models")):
    """The stricter of two scopes: read-only when either is, the allowlists ``lists`` intersected, the tool
    denylists joined (``other``'s values taken as strings)."""
    result = {**scope, "read_only": bool(scope["read_only"] or other.get("read_only"))}
    for name in lists:
        result[name] = intersect(scope[name], [str(v) for v in other.get(name) or []])
    result["tool_deny"] = sorted(set(scope["tool_deny"]) | {str(v) for v in other.get("tool_deny") or []})
    return result


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
        parsed = parse_assertion(token)
        if parsed is None:
            return super()._ocore_authenticate(token)
        links = self.env["ocore.mcp.control.link"]
        try:
            key, claims = links._ocore_call_key(token, parsed)
        except ControlRefused as exc:
            _logger.warning("MCP: control plane request refused: %s", exc)
            return self.sudo().browse(), None
        auth = links._ocore_control_auth(key.id, int(time.time() // AUTH_CACHE_SECONDS))
        if auth is None:
            return self.sudo().browse(), None
        forwarded = claims.get("scp") if isinstance(claims.get("scp"), dict) else {}
        return key, dataclasses.replace(auth, scope=stricter_scope(auth.scope, forwarded))


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
