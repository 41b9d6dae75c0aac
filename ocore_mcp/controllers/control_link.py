"""Enrolment, rotation and revocation of a control plane link (see models/mcp_control_link.py); the notices the
instance sends back are signed with its own key for the link, whose public half it answers here."""

import json
import logging

from odoo import SUPERUSER_ID, api, http, release
from odoo.exceptions import UserError
from odoo.http import request

from ..models.mcp_control_link import ControlRefused

_logger = logging.getLogger(__name__)
ROUTE = {"type": "http", "auth": "none", "methods": ["POST"], "csrf": False, "save_session": False}


class ControlLinkController(http.Controller):
    def _env(self):
        return api.Environment(request.env.cr, SUPERUSER_ID, {})

    def _body(self):
        try:
            data = json.loads(request.httprequest.get_data() or b"{}")
        except ValueError:
            data = None
        return data if isinstance(data, dict) else {}

    def _assertion(self, purpose):
        header = request.httprequest.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        return self._env()["ocore.mcp.control.link"]._ocore_verify(token, purpose)

    @http.route("/ocore/control/enrol", **ROUTE)
    def enrol(self, **_kw):
        env = self._env()
        data = self._body()
        try:
            link = env["ocore.mcp.control.link"]._ocore_enrol(
                data.get("token"), str(data.get("issuer") or "")[:200], data.get("kid"), data.get("public_key"),
                str(data.get("name") or "") or None, str(data.get("control_url") or "")[:500] or None)
        except UserError as exc:
            _logger.warning("control plane enrolment refused from %s: %s", request.httprequest.remote_addr, exc)
            return request.make_json_response({"error": str(exc.args[0])}, status=403)
        settings = env["ocore.mcp.server"]._ocore_settings()
        _logger.info("control plane %s enrolled (link %s)", link.issuer, link.id)
        return request.make_json_response({
            "slug": settings["slug"], "database": env.cr.dbname, "odoo_version": release.major_version,
            "environment": settings["environment"], "mcp_write_enabled": settings["write_enabled"],
            # this instance's public key for the notices it sends the control plane (tool list changed)
            "notice_key": link._ocore_notice_public_key(),
        })

    @http.route("/ocore/control/rotate", **ROUTE)
    def rotate(self, **_kw):
        try:
            link, claims = self._assertion("rotate")
            link._ocore_enrol_rotate(claims.get("new_kid"), claims.get("new_key"))
        except (ControlRefused, UserError) as exc:
            return request.make_json_response({"error": str(exc)}, status=403)
        return request.make_json_response({"ok": True, "notice_key": link._ocore_notice_public_key()})

    @http.route("/ocore/control/revoke", **ROUTE)
    def revoke(self, **_kw):
        try:
            link, _claims = self._assertion("revoke")
        except ControlRefused as exc:
            return request.make_json_response({"error": str(exc)}, status=403)
        link.action_refuse()
        return request.make_json_response({"ok": True})
