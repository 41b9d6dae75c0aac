"""HTTP endpoints of the authorization server: metadata documents, registration, authorization with the
consent page, token, revocation, device flow and invite links. The OAuth protocol itself is Authlib's
(lib/authserver.py and its modules); this module renders pages and turns the user's choices into model calls."""

import logging
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from markupsafe import Markup
from odoo import SUPERUSER_ID, _, api, http
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.http import request
from werkzeug.wrappers import Response

from odoo.addons.ocore_mcp.lib import origins

from ..lib.authserver import OdooAuthorizationServer
from ..lib.oauth_adapters import GrantUser
from ..lib.oauth_http import CORS_HEADERS, json_response
from ..lib.qr import svg_qr
from ..lib.resource import AS_WELL_KNOWN, ENDPOINT_RESOURCE, PRM_WELL_KNOWN, canonical_resource
from ..models.oauth_authorization import EXPIRY_CHOICES, PAGE_PRESETS

_logger = logging.getLogger(__name__)

API_ROUTE = {"type": "http", "auth": "none", "csrf": False, "save_session": False, "sitemap": False,
             "readonly": False}
PAGE_ROUTE = {"type": "http", "auth": "public", "sitemap": False}
# the OAuth parameters the consent form carries through to its POST
AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                    "code_challenge_method", "resource", "prompt")
# the largest body of a machine endpoint (a registration document, a token request): refused unread above
MAX_BODY = 64 * 1024
DECISION_FIELDS = ("company_id", "key_mode", "key_id", "preset", "read_only", "instance_scope", "tool_allowlist",
                   "auto_context", "expiry_days")


def _settings():
    return _sudo_env()["ocore.mcp.server"]._ocore_settings()


def _issuer():
    """The server's public URL (web.base.url): never the request's Host header."""
    return _settings()["base_url"]


def _sudo_env():
    return api.Environment(request.env.cr, SUPERUSER_ID, {})


def _server():
    return OdooAuthorizationServer(_sudo_env(), _issuer())


def _with_cors(resp):
    """CORS headers for an origin an administrator allowed (setting "Allowed browser origins"); none for
    others (the server's own pages need none). A preflight's answer lists the methods and headers."""
    header = request.httprequest.headers.get("Origin")
    allow = origins.cors_origin(header, _settings()["origins"]) if header is not None and request.db else None
    if allow is not None:
        for name, value in CORS_HEADERS.items():
            resp.headers.setdefault(name, value)
        resp.headers["Access-Control-Allow-Origin"] = allow
        if allow != origins.ANY:
            resp.headers.add("Vary", "Origin")
    elif request.httprequest.method == "OPTIONS":
        for name, value in CORS_HEADERS.items():
            resp.headers.setdefault(name, value)
    return resp


def _foreign_origin():
    """The Origin header of this request when it names neither this server nor an allowed origin
    (MCP 2025-11-25: Origin is validated), else None. Requests without Origin pass."""
    header = request.httprequest.headers.get("Origin")
    settings = _settings()
    if origins.origin_allowed(header, settings["own_origin"], settings["origins"]):
        return None
    return header


def _api(func):
    """A machine endpoint: database, Origin (403), preflight, then ``func()`` with CORS headers."""
    if not request.db:
        return json_response({"error": "invalid_request", "error_description": "no database selected"}, 404)
    foreign = _foreign_origin()
    if foreign is not None:
        return json_response({"error": "access_denied",
                              "error_description": f"Origin {foreign[:200]!r} is not allowed on this server"}, 403)
    if request.httprequest.method == "OPTIONS":
        return _with_cors(Response(status=204))
    if (request.httprequest.content_length or 0) > MAX_BODY:
        return json_response({"error": "invalid_request", "error_description": f"the request body is over "
                              f"{MAX_BODY} bytes"}, 413, headers={"Connection": "close"})
    return _with_cors(func())


class OAuthController(http.Controller):
    # -- metadata ------------------------------------------------------------------------------

    @http.route(
        [PRM_WELL_KNOWN] + [f"{PRM_WELL_KNOWN}{path}" for path in ENDPOINT_RESOURCE],
        methods=["GET", "OPTIONS"], **API_ROUTE,
    )
    def protected_resource_metadata(self, **kw):
        """RFC 9728: the root document describes the canonical resource, a path-suffixed one the resource
        of that MCP endpoint (the SDK requires it to be a prefix of the URL it connects to)."""
        return _api(self._protected_resource_metadata)

    def _protected_resource_metadata(self):
        issuer = _issuer()
        suffix = request.httprequest.path[len(PRM_WELL_KNOWN):].rstrip("/")
        resource = f"{issuer}{ENDPOINT_RESOURCE[suffix]}" if suffix else canonical_resource(issuer)
        env = _sudo_env()
        slug = env["ocore.mcp.server"]._ocore_settings()["slug"]
        return json_response({
            "resource": resource,
            "authorization_servers": [issuer],
            "scopes_supported": ["mcp"],
            "bearer_methods_supported": ["header"],
            "resource_name": f"oCore MCP ({slug})",
        })

    @http.route(AS_WELL_KNOWN, methods=["GET", "OPTIONS"], **API_ROUTE)
    def authorization_server_metadata(self, **kw):
        """RFC 8414 metadata of this database's authorization server (issuer = the server's origin)."""
        return _api(lambda: json_response(dict(_server().metadata())))

    # -- machine endpoints ----------------------------------------------------------------------

    def _endpoint(self, func):
        def run():
            try:
                return func(_server())
            except InsecureTransportError as error:
                return json_response({"error": error.error, "error_description": error.description}, 400)

        return _api(run)

    @http.route("/oauth/register", methods=["POST", "OPTIONS"], **API_ROUTE)
    def register(self, **kw):
        """RFC 7591 dynamic client registration."""
        return self._endpoint(lambda server: server.create_endpoint_response("client_registration"))

    @http.route("/oauth/token", methods=["POST", "OPTIONS"], **API_ROUTE)
    def token(self, **kw):
        """Token endpoint: authorization_code (+PKCE), refresh_token (rotating), device_code."""
        return self._endpoint(lambda server: server.create_token_response())

    @http.route("/oauth/revoke", methods=["POST", "OPTIONS"], **API_ROUTE)
    def revoke(self, **kw):
        """RFC 7009 token revocation."""
        return self._endpoint(lambda server: server.create_endpoint_response("revocation"))

    @http.route("/oauth/device/code", methods=["POST", "OPTIONS"], **API_ROUTE)
    def device_code(self, **kw):
        """RFC 8628 device authorization endpoint."""
        return self._endpoint(lambda server: server.create_endpoint_response("device_authorization"))

    # -- pages: helpers -------------------------------------------------------------------------

    def _render(self, template, values, status=200):
        """A page of the authorization server; never framed (no clickjacking of the Approve button)."""
        resp = request.render(template, values, status=status)
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        resp.headers["Cache-Control"] = "no-store"
        # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with the page's form
        # POSTs, which the Origin check refuses; other sites still get no Referer
        resp.headers["Referrer-Policy"] = "same-origin"
        return resp

    def _message(self, title, message, status=200, **values):
        return self._render("ocore_mcp_oauth.message", {"title": title, "message": message, **values}, status)

    def _foreign_form(self):
        """A refusal page for a form POSTed from another site's page (on top of Odoo's CSRF token: the
        consent, device and invite forms are only ever sent from this server's own pages)."""
        if request.httprequest.method == "POST" and _foreign_origin() is not None:
            return self._message(_("Request refused"), _("This form was sent from another site."), 403)
        return None

    def _login_redirect(self, path):
        return request.redirect_query("/web/login", query={"redirect": path}, code=303)

    def _authorization_error(self, server, error):
        """Send a validation error of an authorization request to the client's redirect URI when it is
        known to be the client's, else show it (never redirect to an unverified URI)."""
        if getattr(error, "redirect_uri", None):
            resp = server.handle_error_response(None, error)
            resp.headers["Location"] = add_params_to_uri(resp.headers["Location"], {"iss": server.issuer})
            return resp
        return self._message(_("Authorization request refused"), f"{error.error}: {error.description or ''}",
                             status=400)

    def _permission_values(self, env, user, form=None):
        """What the permission part of the consent form needs."""
        form = form or {}
        companies = user.company_ids.sorted(lambda c: (c != user.company_id, c.name))
        keys = env["ocore.mcp.key"].sudo().search([
            ("user_id", "=", user.id), ("company_id", "in", companies.ids), ("active", "=", True),
        ]).filtered(lambda k: k.state == "active")
        categories = env["ocore.mcp.category"].sudo()._ocore_offered()
        settings = env["ocore.mcp.server"]._ocore_settings()
        return {
            "companies": companies,
            "selected_company_id": int(form.get("company_id") or user.company_id.id),
            "existing_keys": keys,
            "categories": categories,
            "presets": PAGE_PRESETS,
            # what each preset grants, shown as the ticked categories (JSON for the page's script)
            "preset_categories": env["ocore.mcp.oauth.authorization"]._ocore_preset_categories(),
            "expiry_choices": EXPIRY_CHOICES,
            "form": form,
            "viewer_only": not user._ocore_may_hold_write_keys(),
            "slug": settings["slug"],
            "tool_names": sorted(env["ocore.mcp.toolset"]._ocore_tool_specs()),
            # a control plane's organization and instance pickers (ocore_control), else nothing
            "consent_extra_html": False,
            **env["ocore.mcp.key"]._ocore_consent_values(user, form),
        }

    def _decision(self):
        """What the user chose on the consent or device form: applied, or echoed into the form shown again
        after an error (with every tick kept)."""
        form = request.httprequest.form
        decision = {name: form.get(name) for name in DECISION_FIELDS}
        decision["categories"] = form.getlist("categories")
        decision["read_only"] = bool(form.get("read_only"))
        decision["auto_context"] = bool(form.get("auto_context"))
        decision.update(_sudo_env()["ocore.mcp.key"]._ocore_consent_decision(form))
        return decision

    def _scope_lines(self, env, scope):
        names = {f"mcp:{c.code}": c.name for c in env["ocore.mcp.category"].sudo()._ocore_offered()}
        lines = []
        for item in (scope or "mcp").split():
            if item == "mcp":
                text = _("Use the MCP tools of this database as you, within the permissions below")
            elif item == "mcp:read":
                text = _("Read-only access")
            elif item == "offline_access":
                text = _("Stay connected until you revoke the access (refresh tokens)")
            elif item in names:
                text = _("Tool category: %s", names[item])
            else:
                continue  # not a scope of this server: ignored
            lines.append((item, text))
        return lines

    def _preselect(self, scope):
        """Form defaults from the requested scope (a client may ask for less than everything)."""
        items = set((scope or "").split())
        categories = sorted(i[4:] for i in items if i.startswith("mcp:") and i != "mcp:read")
        if categories:
            return {"preset": "custom", "categories": categories, "read_only": "mcp:read" in items}
        return {"preset": "full" if "mcp:read" in items else "standard", "categories": [],
                "read_only": "mcp:read" in items}

    # -- authorization code flow ------------------------------------------------------------------

    @http.route("/oauth/authorize", methods=["GET"], **PAGE_ROUTE)
    def authorize(self, **kw):
        """Validate the authorization request, then the login (if needed) and the consent page."""
        server = _server()
        try:
            grant = server.get_consent_grant(end_user=None)
        except InsecureTransportError:
            return self._message(_("HTTPS required"), _("OAuth needs HTTPS (or a loopback address)."), 400)
        except OAuth2Error as error:
            return self._authorization_error(server, error)
        if request.env.user._is_public():
            return self._login_redirect(request.httprequest.full_path)
        return self._render_consent(server, grant)

    def _render_consent(self, server, grant, error=None, form=None):
        env = _sudo_env()
        user = request.env.user
        payload = grant.request.payload.data
        client = grant.client.record
        if form is None:
            form = self._preselect(payload.get("scope"))
        values = {
            "client": client,
            "logo_url": client.logo_uri if (client.logo_uri or "").startswith("https://") else None,
            "scopes": self._scope_lines(env, payload.get("scope")),
            "redirect_host": (grant.redirect_uri or "").split("?")[0],
            "oauth_params": [(name, payload[name]) for name in AUTHORIZE_PARAMS if payload.get(name)],
            "action": "/oauth/authorize",
            "error": error,
            "may_authorize": env["ocore.mcp.oauth.authorization"]._ocore_user_may_authorize(user),
            "user": user,
            **self._permission_values(env, user, form),
        }
        return self._render("ocore_mcp_oauth.consent", values, status=400 if error else 200)

    @http.route("/oauth/authorize", methods=["POST"], **PAGE_ROUTE)
    def authorize_decision(self, **kw):
        """The consent form: approve (create or link the key, issue the code) or deny (access_denied)."""
        refused = self._foreign_form()
        if refused:
            return refused
        server = _server()
        try:
            grant = server.get_consent_grant(end_user=request.env.user)
        except InsecureTransportError:
            return self._message(_("HTTPS required"), _("OAuth needs HTTPS (or a loopback address)."), 400)
        except OAuth2Error as error:
            return self._authorization_error(server, error)
        if request.env.user._is_public():
            params = {k: v for k, v in grant.request.payload.data.items() if k in AUTHORIZE_PARAMS}
            return self._login_redirect(f"/oauth/authorize?{urlencode(params)}")
        if request.httprequest.form.get("decision") != "approve":
            return server.create_authorization_response(grant_user=None, grant=grant)
        env = _sudo_env()
        try:
            with env.cr.savepoint():
                authorization = env["ocore.mcp.oauth.authorization"]._ocore_grant(
                    request.env.user.sudo(), grant.client.record, self._decision()
                )
        except (AccessError, UserError, ValidationError) as exc:
            return self._render_consent(server, grant, error=str(exc), form=self._decision())
        return server.create_authorization_response(grant_user=GrantUser(authorization), grant=grant)

    # -- device flow (RFC 8628) -----------------------------------------------------------------------

    @http.route("/oauth/device", methods=["GET"], **PAGE_ROUTE)
    def device(self, user_code=None, **kw):
        """Where the user types (or follows a link with) the user code shown by the CLI."""
        if request.env.user._is_public():
            return self._login_redirect(request.httprequest.full_path)
        return self._render_device(user_code)

    def _lookup_user_code(self, user_code):
        """(device, locked seconds) of a typed user code; wrong codes count against the IP address and
        the user (RFC 8628 §5.1), who are locked out for a while after too many."""
        subjects = [f"ip:{request.httprequest.remote_addr}", f"user:{request.env.uid}"]
        return _sudo_env()["ocore.mcp.oauth.device"]._ocore_lookup_user_code(user_code, subjects)

    def _render_device(self, user_code, error=None, form=None, found=None):
        """``found``: the (device, locked seconds) of ``user_code`` when already looked up."""
        env = _sudo_env()
        user = request.env.user
        device, locked = found or (self._lookup_user_code(user_code) if user_code else (None, 0))
        values = {"user_code": user_code or "", "device": device, "error": error, "user": user}
        status = 200
        if locked:
            values["error"] = _("Too many wrong codes: try again in %s minutes.", max(1, round(locked / 60)))
            status = 429
        elif user_code and not device and not error:
            values["error"] = _("This code is unknown or has expired. Check the code shown on your device.")
        if device:
            values.update({
                "client": device.client_id,
                "logo_url": device.client_id.logo_uri
                if (device.client_id.logo_uri or "").startswith("https://") else None,
                "scopes": self._scope_lines(env, device.scope),
                "may_authorize": env["ocore.mcp.oauth.authorization"]._ocore_user_may_authorize(user),
                "qr_svg": Markup(svg_qr(f"{_issuer()}/oauth/device?user_code={device.user_code}")),  # noqa: S704 - SVG made by qrcode
                **self._permission_values(env, user, form if form is not None else self._preselect(device.scope)),
            })
        return self._render("ocore_mcp_oauth.device", values,
                            status=status if status != 200 else 400 if values.get("error") else 200)

    @http.route("/oauth/device", methods=["POST"], **PAGE_ROUTE)
    def device_decision(self, user_code=None, **kw):
        refused = self._foreign_form()
        if refused:
            return refused
        if request.env.user._is_public():
            return self._login_redirect(f"/oauth/device?{urlencode({'user_code': user_code or ''})}")
        env = _sudo_env()
        device, locked = self._lookup_user_code(user_code)
        decision = request.httprequest.form.get("decision")
        if not device or decision not in ("approve", "deny"):
            return self._render_device(user_code, found=(device, locked))
        user = request.env.user.sudo()
        if decision == "deny":
            device._ocore_decide(user, None)
            return self._message(_("Access denied"), _("%s was not given access. You can close this page.",
                                                       device.client_id.name))
        try:
            with env.cr.savepoint():
                authorization = env["ocore.mcp.oauth.authorization"]._ocore_grant(
                    user, device.client_id, self._decision()
                )
                device._ocore_decide(user, authorization)
        except (AccessError, UserError, ValidationError) as exc:
            return self._render_device(user_code, error=str(exc), form=self._decision(), found=(device, 0))
        return self._message(
            _("Device connected"),
            _("%s is now connected to this database. You can close this page and return to your device.",
              device.client_id.name),
        )

    # -- invite links -----------------------------------------------------------------------------------

    @http.route("/oauth/invite/<string:token>", methods=["GET", "POST"], **PAGE_ROUTE)
    def invite(self, token, **kw):
        """Show an invite's permissions; accepting creates the key (and the membership when needed)."""
        refused = self._foreign_form()
        if refused:
            return refused
        env = _sudo_env()
        invite = env["ocore.mcp.oauth.invite"]._ocore_find(token)
        if not invite:
            return self._message(_("Invalid invite"), _("This invite link is not valid."), 404)
        if request.env.user._is_public():
            return self._login_redirect(f"/oauth/invite/{token}")
        user = request.env.user.sudo()
        problem = invite._ocore_acceptance_problem(user)
        if request.httprequest.method == "POST" and not problem:
            try:
                with env.cr.savepoint():
                    key, secret = invite._ocore_accept(user)
            except (AccessError, UserError, ValidationError) as exc:
                problem = str(exc)
            else:
                base = _issuer()
                configs = env["ocore.mcp.key.show"]._ocore_client_configs(secret, base)
                return self._render("ocore_mcp_oauth.invite_accepted", {
                    "invite": invite, "key": key, "secret": secret, "stream_url": f"{base}/ocore/mcp/stream",
                    "sse_url": f"{base}/ocore/mcp/sse",
                    # one snippet per client, each with its transport's URL
                    "configs": [
                        ("claude_desktop", _("Claude Desktop (SSE)"), configs["client_config"]),
                        ("cursor", _("Cursor (Streamable HTTP)"), configs["cursor_config"]),
                        ("http", _("Claude Code / VS Code (Streamable HTTP, type: http)"), configs["http_config"]),
                        ("stdio", _("Local process (stdio bridge ocore-mcp-stdio)"), configs["stdio_config"]),
                    ],
                })
        return self._render("ocore_mcp_oauth.invite", {
            "invite": invite,
            "token": token,
            "problem": problem,
            "read_only": invite._ocore_effective_read_only(user),
            "new_member": invite.company_id not in user.company_ids
            or not user.has_group("ocore_mcp.group_mcp_viewer"),
        }, 403 if problem else 200)
