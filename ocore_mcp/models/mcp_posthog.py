"""Monitoring on PostHog: its settings, the server-side capture and the web client's settings.

- ``ocore.mcp.posthog._ocore_posthog_config()`` is the one place the settings are read. An instance
  enrolled by a control plane (``ocore_control``) receives its organization's PostHog settings over the
  signed control link (``POST /ocore/control/posthog``, stored on the link, the personal API key in a field
  nobody reads through the ORM): they apply when the instance's own PostHog host is empty (the instance's
  own settings, when set, win as a whole). One project for the organization, instances told apart by the
  ``odoo_instance`` property every event carries (the monitoring tools filter on it).
- The web client's relay (controllers/posthog.py) has a rate limit per user (events per minute, exact
  across workers: ``ocore_mcp_posthog_relay_hit``, an advisory lock per user).
- ``ir.http._dispatch``: RPC errors and slow RPCs of the web client and of external JSON-RPC / XML-RPC.
- ``ocore.mcp.server._ocore_call_tool``: every MCP tool call (tool, outcome, duration).
- ``ir.http.session_info``: what the web client's capture (static/src/posthog/) needs, only when on.

The settings form's fields are in ``res_config_settings.py``.
"""

import hashlib
import json
import logging
import time

from odoo import api, fields, models, tools
from odoo.http import request

from ..service import posthog as ph
from .res_config_settings import DEFAULT_SLOW_RPC_MS, _as_bool
from .res_config_settings import POSTHOG_PARAM as PARAM
from .res_config_settings import POSTHOG_SECRET_PARAM as SECRET_PARAM

_logger = logging.getLogger(__name__)

RELAY_ROUTE = "/ocore/posthog/capture"
# paths of the RPC endpoints observed besides JSON routes (external XML-RPC / JSON-RPC, 19.0's /json/2)
RPC_PATH_PREFIXES = ("/xmlrpc", "/jsonrpc", "/json/")
# our own endpoints: MCP calls are captured per tool call, the relay is the capture itself
SKIPPED_PATH_PREFIXES = ("/ocore/", "/api/mcp/", "/web/webclient/", "/bus/", "/websocket")
CONTROL_ROUTE = "/ocore/control/posthog"
CONTROL_PURPOSE = "posthog"  # the assertion's "pur" claim of a settings push
DEFAULT_RELAY_RATE_LIMIT = 600  # events per minute and user through the web client's relay (0: no limit)
RELAY_WINDOW_SECONDS = 60
RELAY_LOCK_NAMESPACE = 0x6F6370  # "ocp"


class McpPosthog(models.AbstractModel):
    _name = "ocore.mcp.posthog"
    _description = "MCP: PostHog monitoring"

    def init(self):
        # the relay's rate limit: rows of admitted events, counted under an advisory lock per user in a
        # READ COMMITTED transaction (as ocore.mcp.rate.limit does for keys), exact across workers
        self.env.cr.execute(
            """CREATE TABLE IF NOT EXISTS ocore_mcp_posthog_relay_hit (
                   user_id integer NOT NULL,
                   events integer NOT NULL,
                   hit_at timestamp without time zone NOT NULL DEFAULT (clock_timestamp() at time zone 'UTC'))"""
        )
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS ocore_mcp_posthog_relay_hit_user_at ON ocore_mcp_posthog_relay_hit "
            "(user_id, hit_at)"
        )
        self.env.cr.execute(
            """CREATE OR REPLACE FUNCTION ocore_mcp_posthog_relay_hit(p_ns integer, p_user integer, p_events integer,
                                                                   p_limit integer, p_window integer)
               RETURNS integer AS $$
               DECLARE used integer; admitted integer;
               BEGIN
                   PERFORM pg_advisory_xact_lock(p_ns, p_user);
                   DELETE FROM ocore_mcp_posthog_relay_hit
                    WHERE user_id = p_user
                      AND hit_at < (clock_timestamp() at time zone 'UTC') - make_interval(secs => p_window);
                   SELECT COALESCE(sum(events), 0) INTO used FROM ocore_mcp_posthog_relay_hit WHERE user_id = p_user;
                   admitted := LEAST(p_events, GREATEST(p_limit - used, 0));
                   IF admitted > 0 THEN
                       INSERT INTO ocore_mcp_posthog_relay_hit (user_id, events) VALUES (p_user, admitted);
                   END IF;
                   RETURN admitted;
               END $$ LANGUAGE plpgsql"""
        )

    @api.model
    def _ocore_posthog_relay_admit(self, uid, count, limit):
        """How many of ``count`` events of user ``uid`` the relay may forward now (``limit`` per minute).
        Runs in the READ COMMITTED bookkeeping transaction of ``ocore.mcp.server`` (see the relay)."""
        self.env.cr.execute(
            "SET LOCAL synchronous_commit TO OFF; SELECT ocore_mcp_posthog_relay_hit(%s, %s, %s, %s, %s)",
            (RELAY_LOCK_NAMESPACE, uid, count, limit, RELAY_WINDOW_SECONDS),
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _ocore_posthog_config(self):
        """The PostHog settings in force, without the personal API key: keys ``capture``, ``host``,
        ``project_api_key``, ``project_id``, ``personal_data``, ``slow_rpc_ms``, ``instance``,
        ``personal_api_key_set``, ``relay_rate_limit`` and ``source`` (``local``, or ``organization`` when
        this database has no PostHog host of its own and a control plane sent its organization's)."""
        return dict(self._ocore_posthog_config_cached())

    @api.model
    @tools.ormcache()
    def _ocore_posthog_config_cached(self):
        # cleared with the registry's caches on every system parameter change, in every worker
        icp = self.env["ir.config_parameter"].sudo()

        def get(name, default=None):
            return icp.get_param(PARAM + name, default)

        try:
            slow = int(get("slow_rpc_ms") or DEFAULT_SLOW_RPC_MS)
        except ValueError:
            slow = DEFAULT_SLOW_RPC_MS
        try:
            relay_limit = int(get("relay_rate_limit") or DEFAULT_RELAY_RATE_LIMIT)
        except ValueError:
            relay_limit = DEFAULT_RELAY_RATE_LIMIT
        config = {
            "capture": _as_bool(get("capture"), False),
            "host": ph.normalize_host(get("host")),
            "project_api_key": (get("project_api_key") or "").strip(),
            "project_id": (get("project_id") or "").strip(),
            "personal_data": _as_bool(get("personal_data"), False),
            "slow_rpc_ms": max(1, slow),
            "instance": self.env["ocore.mcp.server"]._ocore_settings()["slug"],
            "personal_api_key_set": bool(icp.get_param(SECRET_PARAM)),
            "relay_rate_limit": max(0, relay_limit),
            "source": "local",
        }
        if not config["host"]:  # no PostHog of its own: the organization's, if a control plane sent them
            org = self.env["ocore.mcp.control.link"]._ocore_posthog_org_settings()
            if org:
                config.update(capture=bool(org.get("enabled")) and bool(org.get("project_api_key")),
                              host=ph.normalize_host(org.get("host")), project_api_key=org.get("project_api_key") or "",
                              project_id=org.get("project_id") or "", personal_api_key_set=org["personal_api_key_set"],
                              source="organization", organization=org.get("organization") or "", link_id=org["link_id"])
        return config

    @api.model
    def _ocore_posthog_personal_api_key(self):
        """The personal API key the monitoring tools query PostHog with (a secret: never returned, logged
        or audited): this database's own, or the organization's when its settings are in force."""
        config = self._ocore_posthog_config()
        if config.get("source") == "organization":
            return self.env["ocore.mcp.control.link"]._ocore_posthog_org_secret(config["link_id"])
        return (self.env["ir.config_parameter"].sudo().get_param(SECRET_PARAM) or "").strip()

    @api.model
    def _ocore_posthog_user_properties(self, user):
        """``$set`` person properties for ``user``: only when the admin enabled personal data."""
        return {"$set": {"name": user.name, "login": user.login, "email": user.email or None}}

    @api.model
    def _ocore_posthog_capture(self, event, properties, uid=None, config=None, user=None):
        """Queue ``event`` for ``uid`` (default: the environment's user); never raises."""
        try:
            config = config or self._ocore_posthog_config()
            if not ph.capture_ready(config):
                return False
            props = dict(properties or {})
            if config.get("personal_data") and user is not None:
                props.update(self._ocore_posthog_user_properties(user))
            return ph.capture(config, event, uid or self.env.uid, props)
        except Exception:  # noqa: BLE001 - monitoring must never fail the request it observes
            _logger.debug("PostHog capture of %r failed", event, exc_info=True)
            return False


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _dispatch(cls, endpoint):
        started = time.monotonic()
        try:
            result = super()._dispatch(endpoint)
        except Exception as exc:
            cls._ocore_posthog_observe(endpoint, started, exc)
            raise
        cls._ocore_posthog_observe(endpoint, started, None)
        return result

    @classmethod
    def _ocore_posthog_observe(cls, endpoint, started, exc):
        """Report an RPC error or a slow RPC (never raises, costs a cached settings lookup when off)."""
        try:
            httprequest = request.httprequest
            path = httprequest.path
            if path.startswith(SKIPPED_PATH_PREFIXES):
                return
            routing_type = (getattr(endpoint, "routing", None) or {}).get("type")
            if routing_type not in ("json", "jsonrpc") and not path.startswith(RPC_PATH_PREFIXES):
                return
            env = request.env
            config = env["ocore.mcp.posthog"]._ocore_posthog_config()
            if not ph.capture_ready(config):
                return
            uid = cls._ocore_posthog_rpc_user(env)
            if not uid:
                return  # no user identifier: a login, a public page (nobody to count as active)
            elapsed_ms = int((time.monotonic() - started) * 1000)
            rpc = cls._ocore_posthog_rpc_name(path)
            if exc is not None:
                if cls._ocore_posthog_ignored_error(exc):
                    return
                props = ph.exception_properties(exc, config, "server", rpc)
                props.update(duration_ms=elapsed_ms, odoo_error_kind=cls._ocore_posthog_error_kind(exc))
                env["ocore.mcp.posthog"]._ocore_posthog_capture("$exception", props, uid=uid, config=config)
            elif elapsed_ms >= config["slow_rpc_ms"]:
                env["ocore.mcp.posthog"]._ocore_posthog_capture(
                    "odoo_slow_rpc",
                    {"odoo_endpoint": rpc, "duration_ms": elapsed_ms, "threshold_ms": config["slow_rpc_ms"]},
                    uid=uid, config=config,
                )
        except Exception:  # noqa: BLE001 - monitoring must never fail the request it observes
            _logger.debug("PostHog RPC observation failed", exc_info=True)

    @classmethod
    def _ocore_posthog_rpc_user(cls, env):
        """The session's user, or the user of an external JSON-RPC ``object`` call (its second argument);
        None for the public user and requests without one."""
        uid = env.uid
        if not uid:
            params = request.params if isinstance(getattr(request, "params", None), dict) else {}
            args = params.get("args")
            if params.get("service") == "object" and isinstance(args, list) and len(args) > 1:
                uid = args[1] if isinstance(args[1], int) and not isinstance(args[1], bool) else None
        if not uid or env["ir.http"]._ocore_posthog_is_public(uid):
            return None
        return uid

    @api.model
    def _ocore_posthog_is_public(self, uid):
        public = self.env.ref("base.public_user", raise_if_not_found=False)
        return bool(public and public.id == uid)

    @classmethod
    def _ocore_posthog_rpc_name(cls, path):
        """``model.method`` of a web client call (``/web/dataset/call_kw/<model>/<method>`` or its
        parameters), ``object.execute_kw`` of external RPC becomes ``model.method`` too, else the path."""
        params = request.params if isinstance(getattr(request, "params", None), dict) else {}
        model, method = params.get("model"), params.get("method")
        args = params.get("args")
        if not model and params.get("service") == "object" and isinstance(args, list) and len(args) >= 5:
            model, method = args[3], args[4]
        if isinstance(model, str) and isinstance(method, str):
            return f"{model[:64]}.{method[:64]}"
        return path[:128]

    @classmethod
    def _ocore_posthog_ignored_error(cls, exc):
        from werkzeug.exceptions import HTTPException  # noqa: PLC0415

        from odoo.http import SessionExpiredException  # noqa: PLC0415

        return isinstance(exc, (HTTPException, SessionExpiredException))

    @classmethod
    def _ocore_posthog_error_kind(cls, exc):
        from odoo.exceptions import UserError  # noqa: PLC0415 (AccessError, ValidationError … are UserErrors)

        return "user" if isinstance(exc, UserError) else "server"

    def session_info(self):
        info = super().session_info()
        try:
            config = self.env["ocore.mcp.posthog"]._ocore_posthog_config()
            if ph.capture_ready(config) and self.env.user._is_internal():
                info["ocore_posthog"] = {
                    "capture": True,
                    "relay": RELAY_ROUTE,
                    "personal_data": config["personal_data"],
                    "flush_interval_ms": int(
                        self.env["ir.config_parameter"].sudo().get_param(PARAM + "flush_interval_ms") or 10000
                    ),
                }
        except Exception:  # noqa: BLE001 - the web client must load even if monitoring is broken
            _logger.debug("PostHog web client settings not added", exc_info=True)
        return info


class McpServer(models.AbstractModel):
    _inherit = "ocore.mcp.server"

    def _ocore_call_tool(self, conn, full_name, arguments, request_id=None, progress_token=None):
        started = time.monotonic()
        result = super()._ocore_call_tool(conn, full_name, arguments, request_id=request_id,
                                          progress_token=progress_token)
        self._ocore_posthog_tool_call(conn, full_name, result, started)
        return result

    def _ocore_posthog_tool_call(self, conn, full_name, result, started):
        """One ``mcp_tool_call`` event per tool call: tool, outcome, duration, transport and client."""
        try:
            posthog = self.env["ocore.mcp.posthog"]
            config = posthog._ocore_posthog_config()
            if not ph.capture_ready(config):
                return
            auth = getattr(conn, "auth", None)
            slug = config.get("instance") or ""
            tool = full_name[len(slug) + 1:] if slug and full_name.startswith(slug + "_") else full_name
            posthog._ocore_posthog_capture("mcp_tool_call", {
                "mcp_tool": tool[:128],
                "mcp_success": not (isinstance(result, dict) and result.get("isError")),
                "duration_ms": int((time.monotonic() - started) * 1000),
                "mcp_transport": getattr(conn, "transport", None),
                "mcp_client": (getattr(conn, "client_name", None) or "")[:64] or None,
            }, uid=getattr(auth, "user_id", None) or self.env.uid, config=config)
        except Exception:  # noqa: BLE001 - monitoring must never fail the call it observes
            _logger.debug("PostHog tool call capture failed", exc_info=True)


class McpControlLinkPosthog(models.Model):
    """The organization's PostHog settings a control plane sent over its link (``POST /ocore/control/posthog``,
    controllers/posthog.py). The personal API key is a secret: a field nobody reads through the ORM (read by
    SQL for the monitoring tools' queries only), never shown, logged or audited."""

    _inherit = "ocore.mcp.control.link"

    posthog_org_settings = fields.Text(
        string="Organization's PostHog settings", readonly=True, copy=False,
        help="Sent by the control plane (JSON, without the personal API key); used when this database has no "
        "PostHog host of its own.")
    posthog_org_personal_api_key = fields.Char(copy=False, groups=fields.NO_ACCESS)
    posthog_org_received = fields.Datetime(string="PostHog settings received", readonly=True, copy=False)

    def write(self, vals):
        result = super().write(vals)
        if {"state", "posthog_org_settings", "posthog_org_personal_api_key"} & set(vals):
            self.env.registry.clear_cache()  # ocore.mcp.posthog's settings, in every worker
        return result

    def unlink(self):
        result = super().unlink()
        self.env.registry.clear_cache()
        return result

    @api.model
    def _ocore_posthog_org_settings(self):
        """The settings of the enrolled link that last sent some (a dict, with ``link_id`` and
        ``personal_api_key_set``), or None."""
        self.flush_model()
        self.env.cr.execute(
            """SELECT id, posthog_org_settings, posthog_org_personal_api_key IS NOT NULL
                      AND posthog_org_personal_api_key != ''
                 FROM ocore_mcp_control_link
                WHERE state = 'enrolled' AND posthog_org_settings IS NOT NULL
                ORDER BY posthog_org_received DESC NULLS LAST, id DESC LIMIT 1""")
        row = self.env.cr.fetchone()
        if not row:
            return None
        try:
            settings = json.loads(row[1])
        except ValueError:
            return None
        if not isinstance(settings, dict):
            return None
        return {**settings, "link_id": row[0], "personal_api_key_set": bool(row[2])}

    @api.model
    def _ocore_posthog_org_secret(self, link_id):
        self.flush_model()
        self.env.cr.execute("SELECT posthog_org_personal_api_key FROM ocore_mcp_control_link "
                            "WHERE id = %s AND state = 'enrolled'", (link_id,))
        row = self.env.cr.fetchone()
        return ((row and row[0]) or "").strip()

    def _ocore_posthog_receive(self, data):
        """Store the organization's settings sent by the control plane (an empty host forgets them)."""
        self.ensure_one()

        def text(name, size):
            value = data.get(name)
            return value.strip()[:size] if isinstance(value, str) else ""

        host = ph.normalize_host(text("host", 300))
        if not host:
            self.sudo().write({"posthog_org_settings": False, "posthog_org_personal_api_key": False,
                               "posthog_org_received": fields.Datetime.now()})
            return {"ok": True, "in_force": False}
        settings = {"enabled": data.get("enabled") is True, "host": host,
                    "project_api_key": text("project_api_key", 200), "project_id": text("project_id", 64),
                    "organization": text("organization", 200)}
        self.sudo().write({"posthog_org_settings": json.dumps(settings, sort_keys=True),
                           "posthog_org_personal_api_key": text("personal_api_key", 500) or False,
                           "posthog_org_received": fields.Datetime.now()})
        config = self.env["ocore.mcp.posthog"]._ocore_posthog_config()
        return {"ok": True, "in_force": config.get("source") == "organization" and config.get("link_id") == self.id}


def body_hash(body):
    """The ``bsh`` claim of a settings push: the SHA-256 of the exact request body it signs."""
    return hashlib.sha256(body if isinstance(body, bytes) else body.encode()).hexdigest()
