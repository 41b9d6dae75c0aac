import base64
import json
import logging
import re
import secrets
import time
import uuid
from http.client import HTTPException
from typing import NamedTuple

import jwt
import requests

from odoo import _, api, fields, models, tools
from odoo.exceptions import UserError, ValidationError

from odoo.addons.ocore_mcp.lib import compat

from ..lib import http, keys

_logger = logging.getLogger(__name__)

SLUG = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MODERN = "2026-07-28"
ASSERTION_SECONDS = 60
STATUS_COLORS = {"draft": 0, "running": 10, "stopped": 3, "unreachable": 2, "error": 1}
INSTANCE_PATH = "/ocore/mcp/stream"
NOTICE_PATH = "/ocore/control/tools_changed"  # where instances tell the control plane their tool list changed
# An instance's notice may live at most this long (it signs them for 60 s): with PyJWT's 5 s leeway on iat and
# exp, it expires well before its nonce is purged (ocore.control.nonce keeps one 5 min after receipt).
NOTICE_MAX_SECONDS = 120
FORWARDABLE = ("running", "unreachable", "error")  # statuses whose instances take calls (and are listed)
# the fields the routing table (_ocore_routes) is built from: a write of one of them clears it
ROUTE_FIELDS = frozenset({"slug", "url", "organization_id", "credential_state", "credential_generation",
                          "mcp_write_enabled", "server_id", "agent_name", "environment"})


class Route(NamedTuple):
    """What a forwarded call needs to know of an instance (the routing table's row)."""

    id: int
    slug: str
    url: str
    org_id: int
    forwardable: bool  # status running, unreachable or error
    credential_active: bool
    generation: int
    write_enabled: bool
    managed: bool  # its server has a host agent with a secret


class OrgRoute(NamedTuple):
    id: int
    name: str
    mcp_enabled: bool
    roles: dict  # {user id: role}
    slugs: tuple  # its instances' slugs, longest first (a tool name matches the longest slug)


@compat.table_constraints(("slug_unique", "UNIQUE(slug)", "Instance slugs are unique."))
class ControlInstance(models.Model):
    """One Odoo database with ocore_mcp, reached by the control plane over MCP."""

    _name = "ocore.control.instance"
    _description = "Control plane: instance"
    _order = "organization_id, name, id"

    name = fields.Char(required=True)
    slug = fields.Char(required=True, index=True, copy=False,
                       help="The instance's MCP slug: its tools are named <slug>_<tool>.")
    organization_id = fields.Many2one("ocore.control.organization", required=True, ondelete="cascade", index=True)
    server_id = fields.Many2one("ocore.control.server", ondelete="set null", index=True,
                                domain="[('organization_id', '=', organization_id)]")
    odoo_version = fields.Selection([("17.0", "17.0"), ("18.0", "18.0"), ("19.0", "19.0")], default="18.0")
    edition = fields.Selection([("community", "Community"), ("enterprise", "Enterprise")], default="community")
    environment = fields.Selection(
        [("production", "Production"), ("staging", "Staging"), ("development", "Development")],
        default="production", required=True)
    status = fields.Selection(
        [("draft", "Not enrolled"), ("running", "Running"), ("stopped", "Stopped"),
         ("unreachable", "Unreachable"), ("error", "Error")],
        default="draft", required=True, index=True)
    mcp_write_enabled = fields.Boolean(
        string="MCP writes", compute="_compute_mcp_write_enabled", store=True, readonly=False,
        help="Production guard: off blocks every write through the control plane (the instance's own "
        "setting applies too; the stricter wins). Off by default in production.")
    url = fields.Char(string="URL", help="Base URL of the instance, e.g. https://erp.example.com")
    database = fields.Char()
    driver = fields.Selection([("process", "Local process"), ("docker", "Docker")], default="process")
    agent_name = fields.Char(help="Name of the instance in its server's agent configuration (default: the slug).")
    container_id = fields.Char(string="Container / process id", readonly=True)
    http_port = fields.Integer(string="HTTP port")
    ports = fields.Char(help="Other published ports, comma separated.")
    started_at = fields.Datetime(readonly=True)
    stopped_at = fields.Datetime(readonly=True)
    last_seen = fields.Datetime(readonly=True, help="Last successful MCP exchange with the instance.")
    last_error = fields.Char(readonly=True)
    color = fields.Integer(compute="_compute_color")
    # the control plane's credential for this instance (Ed25519 key derived from the master key)
    credential_state = fields.Selection(
        [("none", "Not enrolled"), ("active", "Active"), ("revoked", "Revoked")], default="none",
        readonly=True, copy=False)
    credential_generation = fields.Integer(readonly=True, copy=False)
    credential_fingerprint = fields.Char(readonly=True, copy=False)
    enrolled_at = fields.Datetime(readonly=True, copy=False)
    notice_public_key = fields.Text(
        readonly=True, copy=False,
        help="The instance's public key for the notices it sends (its tool list changed), given at enrolment.")


    # -- the routing table: one per process, cleared in every worker by the registry's cache signal ----

    @api.model
    @tools.ormcache()
    def _ocore_routes(self):
        """({slug: Route}, {organization id: OrgRoute}) of the whole control plane, read in three queries
        once per process and kept until an instance, organization, member or server changes in a way
        that matters to routing (the write clears the registry's caches, which every worker sees at its
        next request). Reachability between running, unreachable and error does not change a route."""
        for model in ("ocore.control.instance", "ocore.control.organization", "ocore.control.member",
                      "ocore.control.server"):
            self.env[model].flush_model()
        cr = self.env.cr
        cr.execute("""SELECT i.id, i.slug, i.url, i.organization_id, i.status IN %s, i.credential_state = 'active',
                             COALESCE(i.credential_generation, 0), COALESCE(i.mcp_write_enabled, FALSE),
                             COALESCE(s.agent_url, '') != '' AND COALESCE(s.agent_key_generation, 0) > 0
                        FROM ocore_control_instance i LEFT JOIN ocore_control_server s ON s.id = i.server_id
                       ORDER BY i.id""", (FORWARDABLE,))
        routes = {row[1]: Route(*row) for row in cr.fetchall()}
        cr.execute("SELECT organization_id, user_id, role FROM ocore_control_member")
        roles = {}
        for org_id, user_id, role in cr.fetchall():
            roles.setdefault(org_id, {})[user_id] = role
        cr.execute("SELECT id, name, mcp_enabled FROM ocore_control_organization WHERE active")
        orgs = {}
        for org_id, name, enabled in cr.fetchall():
            slugs = sorted((r.slug for r in routes.values() if r.org_id == org_id), key=lambda s: (-len(s), s))
            orgs[org_id] = OrgRoute(org_id, name, bool(enabled), roles.get(org_id, {}), tuple(slugs))
        return routes, orgs

    @api.model
    def _ocore_routes_changed(self):
        self.env.registry.clear_cache()

    @api.model_create_multi
    def create(self, vals_list):
        instances = super().create(vals_list)
        self._ocore_routes_changed()
        return instances

    def write(self, vals):
        forwardable = {i.id: i.status in FORWARDABLE for i in self} if "status" in vals else None
        if "url" in vals and "credential_state" not in vals and not self.env.su:
            # a credential is only ever used where it was enrolled: signed requests (a member's assertion is a
            # bearer token the instance accepts) and the organization's secrets never follow an edited URL
            moved = self.filtered(lambda i: i.credential_state == "active"
                                  and (i.url or "").rstrip("/") != (vals["url"] or "").rstrip("/"))
            if moved:
                super(ControlInstance, moved).write({"credential_state": "revoked"})
                for instance in moved:
                    _logger.info("control plane: %s moved to another URL by %s: its credential is revoked, enrol "
                                 "it again", instance.slug, self.env.user.login)
        result = super().write(vals)
        if ROUTE_FIELDS & set(vals) or (
                forwardable is not None and any(forwardable[i.id] != (i.status in FORWARDABLE) for i in self)):
            self._ocore_routes_changed()
        return result

    def unlink(self):
        result = super().unlink()
        self._ocore_routes_changed()
        return result

    @api.depends("environment")
    def _compute_mcp_write_enabled(self):
        for instance in self:
            instance.mcp_write_enabled = instance.environment != "production"

    @api.depends("status")
    def _compute_color(self):
        for instance in self:
            instance.color = STATUS_COLORS.get(instance.status, 0)

    @api.constrains("slug")
    def _check_slug(self):
        for instance in self:
            if not SLUG.match(instance.slug or ""):
                raise ValidationError(_("%s is not a slug: lower-case letters, digits and _, starting with a letter.",
                                        instance.slug))

    @api.constrains("server_id", "organization_id")
    def _check_server_org(self):
        for instance in self:
            if instance.server_id and instance.server_id.organization_id != instance.organization_id:
                raise ValidationError(_("The server of an instance belongs to the same organization."))

    @api.model
    def _get_view(self, view_id=None, view_type="form", **options):
        arch, view = super()._get_view(view_id, view_type, **options)
        if view_type == "kanban":
            compat.kanban_card_to_box(arch)
        return arch, view

    # -- credential ---------------------------------------------------------------------------

    @api.model
    @tools.ormcache("instance_id", "generation")
    def _ocore_signer(self, instance_id, generation):
        """(issuer, encoded JWS header, Ed25519 private key) of the assertions for an instance's credential
        generation: derived once per worker (a pure function of the master key, the database's uuid and
        secret: a change of a system parameter clears it in every worker)."""
        db_uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid", "")
        header = {"alg": "EdDSA", "kid": f"ocore-control-{db_uuid[:8]}-{instance_id}-{generation}", "typ": "JWT"}
        return ("ocore-control:" + db_uuid, _b64(json.dumps(header, separators=(",", ":")).encode()),
                keys.private_key(self.env, f"instance/{instance_id}/{generation}"))

    def _ocore_kid(self, generation=None):
        self.ensure_one()
        uuid_ = self.env["ir.config_parameter"].sudo().get_param("database.uuid", "")[:8]
        return f"ocore-control-{uuid_}-{self.id}-{generation or self.credential_generation}"

    def _ocore_signing_key(self, generation=None):
        self.ensure_one()
        return keys.signing_key(self.env, f"instance/{self.id}/{generation or self.credential_generation}")

    @api.model
    def _ocore_issuer(self):
        return "ocore-control:" + self.env["ir.config_parameter"].sudo().get_param("database.uuid", "")

    def _ocore_assertion(self, subject, scope, correlation_id, purpose="call", generation=None, extra=None):
        """A short-lived EdDSA JWT for one request to the instance: who calls (``sub``), with which scopes."""
        self.ensure_one()
        return sign_assertion(self.env, self.id, self.slug, generation or self.credential_generation, subject,
                              scope, correlation_id, purpose, extra)

    def _ocore_enrol(self, token):
        """Enrol with the one-time token the instance's admin generated: the instance registers this
        control plane's public key for this instance and answers with what it is."""
        self.ensure_one()
        if not self.url:
            raise UserError(_("Set the instance URL first."))
        generation = (self.credential_generation or 0) + 1
        _private, public = self._ocore_signing_key(generation)
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "").rstrip("/")
        payload = {"token": token, "issuer": self._ocore_issuer(), "kid": self._ocore_kid(generation),
                   "public_key": public, "name": self.env.company.name,
                   "control_url": f"{base}{NOTICE_PATH}" if base else None}
        data = self._ocore_post_json("/ocore/control/enrol", payload)
        self.sudo().write({
            "credential_generation": generation, "credential_state": "active",
            "credential_fingerprint": keys.fingerprint(public), "enrolled_at": fields.Datetime.now(),
            "slug": data.get("slug") or self.slug, "database": data.get("database") or self.database,
            "odoo_version": data.get("odoo_version") if data.get("odoo_version") in ("17.0", "18.0", "19.0")
            else self.odoo_version,
            "status": "running", "last_error": False,
            "notice_public_key": data.get("notice_key") if isinstance(data.get("notice_key"), str) else False,
        })
        self.env["ocore.control.tool.cache"]._ocore_invalidate(self)
        return data

    @api.model
    def _ocore_receive_notice(self, token):
        """A signed notice of an instance (its tool list changed): the instance found by the key id it
        names (this control plane's kid for it), the signature checked with the instance's own public key
        (given at enrolment), the notice used once. Then its cached tool lists are dropped at once and the
        open sessions that may see it get ``notifications/tools/list_changed``. Returns the instance, or
        raises ValueError."""
        try:
            kid = str(jwt.get_unverified_header(token).get("kid") or "")
        except jwt.PyJWTError as exc:
            raise ValueError(f"malformed notice: {exc}") from None
        db_uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid", "")
        match = re.fullmatch(rf"ocore-control-{re.escape(db_uuid[:8])}-(\d+)-(\d+)", kid)
        instance = self.sudo().browse(int(match.group(1))).exists() if match else self.browse()
        if (not instance or instance.credential_state != "active" or not instance.notice_public_key
                or instance.credential_generation != int(match.group(2))):
            raise ValueError(f"no enrolled instance with key {kid[:80]}")
        try:
            claims = jwt.decode(token, instance.notice_public_key, algorithms=["EdDSA"], audience=self._ocore_issuer(),
                                issuer=f"ocore-instance:{instance.slug}", leeway=5,
                                options={"require": ["exp", "iat", "jti", "aud", "iss"]})
        except jwt.PyJWTError as exc:
            raise ValueError(f"notice refused: {exc}") from None
        if claims.get("pur") != "tools_changed" or claims["exp"] - claims["iat"] > NOTICE_MAX_SECONDS:
            raise ValueError("not a tool list notice")
        if not self.env["ocore.control.nonce"]._ocore_use(f"notice:{claims['jti']}"[:120]):
            raise ValueError("notice replayed")
        self.env["ocore.control.tool.cache"]._ocore_invalidate(instance)
        self.env["ocore.mcp.server"]._ocore_control_announce(instance)
        return instance

    def action_open_enrol(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "res_model": "ocore.control.enrol", "view_mode": "form",
                "target": "new", "name": _("Enrol %s", self.name),
                "context": {"default_instance_id": self.id, "default_url": self.url}}

    def action_rotate_credential(self):
        """One action: a new key pair, registered on the instance with a request signed by the old one."""
        for instance in self:
            if instance.credential_state != "active":
                raise UserError(_("%s has no active credential to rotate; enrol it again.", instance.name))
            generation = instance.credential_generation + 1
            _private, public = instance._ocore_signing_key(generation)
            assertion = instance._ocore_assertion("control-plane", {}, uuid.uuid4().hex, purpose="rotate",
                                                  extra={"new_kid": instance._ocore_kid(generation), "new_key": public})
            data = instance._ocore_post_json("/ocore/control/rotate", {}, assertion)
            instance.sudo().write({"credential_generation": generation,
                                   "credential_fingerprint": keys.fingerprint(public),
                                   "notice_public_key": data.get("notice_key")
                                   if isinstance(data.get("notice_key"), str) else False})
            self.env["ocore.control.tool.cache"]._ocore_invalidate(instance)
        return True

    def action_revoke_credential(self):
        """One action: the control plane stops signing for the instance, and tells it (best effort)."""
        for instance in self:
            if instance.credential_state == "active":
                try:
                    assertion = instance._ocore_assertion("control-plane", {}, uuid.uuid4().hex, purpose="revoke")
                    instance._ocore_post_json("/ocore/control/revoke", {}, assertion, timeout=5)
                except UserError as exc:
                    _logger.info("revoking on %s: %s (revoked here anyway)", instance.slug, exc)
            instance.sudo().write({"credential_state": "revoked"})
            self.env["ocore.control.tool.cache"]._ocore_invalidate(instance)
        return True

    def _ocore_post_json(self, path, payload, assertion=None, timeout=10):
        self.ensure_one()
        headers = {"Content-Type": "application/json"}
        if assertion:
            headers["Authorization"] = f"Bearer {assertion}"
        try:
            resp = requests.post(self.url.rstrip("/") + path, data=json.dumps(payload), headers=headers,
                                 timeout=timeout)
        except requests.RequestException as exc:
            raise UserError(_("Instance %(slug)s unreachable: %(error)s", slug=self.slug, error=exc)) from None
        try:
            data = resp.json()
        except ValueError:
            data = {"error": resp.text[:300]}
        if not resp.ok:
            raise UserError(_("Instance %(slug)s refused %(path)s: %(error)s", slug=self.slug, path=path,
                              error=data.get("error") or resp.status_code))
        return data

    # -- MCP requests to the instance (2026-07-28: one stateless request, no session) -------------

    def _ocore_mcp_request(self, method, params, assertion, timeout, query=""):
        self.ensure_one()
        return mcp_request(self.url, self.slug, method, params, assertion, timeout, query)

    # -- agent operations -------------------------------------------------------------------

    def _ocore_agent(self):
        self.ensure_one()
        if not self.server_id:
            raise UserError(_("Instance %s has no server (no agent manages it).", self.slug))
        return self.server_id

    def _ocore_agent_op(self, op, payload=None, method="POST", timeout=60):
        self.ensure_one()
        name = self.agent_name or self.slug
        return self._ocore_agent()._ocore_agent_call(method, f"/v1/instances/{name}/{op}", payload,
                                                     timeout=timeout)

    def action_start(self):
        for instance in self:
            instance._ocore_apply_agent_state(instance._ocore_agent_op("start", timeout=120))
        return True

    def action_stop(self):
        for instance in self:
            instance._ocore_apply_agent_state(instance._ocore_agent_op("stop", timeout=60))
        return True

    def action_restart(self):
        for instance in self:
            instance._ocore_apply_agent_state(instance._ocore_agent_op("restart", timeout=180))
        return True

    def _ocore_apply_agent_state(self, row):
        """An agent's view of the instance (status, process or container id, port)."""
        self.ensure_one()
        state = row.get("status")
        vals = {}
        if state == "running":
            if self.status != "running" and self.credential_state == "active":
                vals.update(status="running", started_at=fields.Datetime.now())
                self.env["ocore.control.tool.cache"]._ocore_invalidate(self)
        elif state in ("stopped", "exited", "created"):
            if self.status != "stopped":
                vals.update(status="stopped", stopped_at=fields.Datetime.now())
        if row.get("id"):
            vals["container_id"] = str(row["id"])[:64]
        if vals:
            self.sudo().write(vals)


def sign_assertion(env, instance_id, slug, generation, subject, scope, correlation_id, purpose="call", extra=None):
    """The EdDSA JWT of one request to an instance (no ORM read: a forwarded call signs from its route)."""
    issuer, header, private = env["ocore.control.instance"]._ocore_signer(instance_id, generation)
    now = int(time.time())
    claims = {
        "iss": issuer, "aud": f"ocore-instance:{slug}", "sub": subject,
        "iat": now, "nbf": now - 5, "exp": now + ASSERTION_SECONDS, "jti": secrets.token_hex(16),
        "cid": correlation_id, "scp": scope or {}, "pur": purpose, **(extra or {}),
    }
    # the compact JWS (what PyJWT's encode writes, without its per-call key and header checks)
    signing_input = header + b"." + _b64(json.dumps(claims, separators=(",", ":")).encode())
    return (signing_input + b"." + _b64(private.sign(signing_input))).decode()


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def mcp_request(url, slug, method, params, assertion, timeout, query="", request_id=None, connection=None,
                capabilities=None):
    """POST one JSON-RPC request to an instance (on ``connection``, lib/http.connect's answer, when given);
    return its result or raise InstanceError (no database access: runs in the worker threads of a parallel
    tools/list too). ``capabilities``: the clientCapabilities the request declares (none by default; a
    forwarded call declares the elicitation its client declared and can be asked, models/mcp_server.py)."""
    params = dict(params or {})
    params["_meta"] = {**params.get("_meta", {}), "io.modelcontextprotocol/protocolVersion": MODERN,
                       "io.modelcontextprotocol/clientCapabilities": capabilities or {},
                       "io.modelcontextprotocol/clientInfo": {"name": "ocore-control", "version": "1"}}
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": MODERN, "Mcp-Method": method, "Authorization": f"Bearer {assertion}"}
    if method == "tools/call":
        headers["Mcp-Name"] = params["name"]
    body = {"jsonrpc": "2.0", "id": request_id or uuid.uuid4().hex, "method": method, "params": params}
    try:
        status, raw = http.post(url.rstrip("/") + INSTANCE_PATH + query, json.dumps(body).encode(), headers, timeout,
                                connection, http.MAX_CALL_BYTES if method == "tools/call" else http.MAX_LIST_BYTES)
        data = json.loads(raw)
    except http.TooLarge as exc:
        raise InstanceError(slug, "invalid", str(exc)) from None
    except TimeoutError:
        raise InstanceError(slug, "unreachable", f"no answer within {timeout:g}s") from None
    except (OSError, HTTPException, ValueError) as exc:
        raise InstanceError(slug, "unreachable", str(exc)[:300] or type(exc).__name__) from None
    if not isinstance(data, dict):
        raise InstanceError(slug, "unreachable", f"not a JSON-RPC answer (HTTP {status})")
    if "error" in data:
        raise InstanceError(slug, "refused", (data["error"] or {}).get("message", "error"), status)
    return data.get("result") or {}


class InstanceError(Exception):
    """An instance that did not answer (``kind`` unreachable), refused (``kind`` refused) or answered what is
    not read (``kind`` invalid: an answer past lib/http's cap, the connection closed; the call may have run)."""

    def __init__(self, slug, kind, message, status=None):
        super().__init__(f"instance {slug}: {message}")
        self.slug = slug
        self.kind = kind
        self.message = message
        self.status = status
