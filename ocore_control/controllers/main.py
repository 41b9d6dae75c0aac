"""Heartbeats of the host agents (signed like the control plane's requests to them), and the notices of
enrolled instances whose tool list changed (signed with the instance's own key for its link)."""

import json
import logging

from odoo import SUPERUSER_ID, api, http
from odoo.http import request

from ..agent import signing
from ..models.control_instance import NOTICE_PATH

_logger = logging.getLogger(__name__)


class ControlController(http.Controller):
    @http.route("/ocore/control/heartbeat", type="http", auth="none", methods=["POST"], csrf=False,
                save_session=False)
    def heartbeat(self, **_kw):
        env = api.Environment(request.env.cr, SUPERUSER_ID, {})
        httpreq = request.httprequest
        body = httpreq.get_data()
        try:
            server = env["ocore.control.server"].browse(int(httpreq.headers.get(signing.HEADER_SERVER) or 0)).exists()
            if not server or not server.agent_key_generation:
                raise signing.SignatureError("unknown server")
            signing.verify(server._ocore_agent_secret(), httpreq.method, httpreq.full_path.rstrip("?"), body,
                           httpreq.headers, nonces=lambda nonce: env["ocore.control.nonce"]._ocore_use(nonce))
            data = json.loads(body or b"{}")
        except (signing.SignatureError, ValueError) as exc:
            _logger.warning("refused heartbeat from %s: %s", httpreq.remote_addr, exc)
            return request.make_json_response({"error": str(exc)}, status=401)
        server._ocore_apply_status(data)
        return request.make_json_response({"ok": True})

    @http.route(NOTICE_PATH, type="http", auth="none", methods=["POST"], csrf=False, save_session=False)
    def tools_changed(self, **_kw):
        env = api.Environment(request.env.cr, SUPERUSER_ID, {})
        header = request.httprequest.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        try:
            instance = env["ocore.control.instance"]._ocore_receive_notice(token)
        except ValueError as exc:
            _logger.warning("refused instance notice from %s: %s", request.httprequest.remote_addr, exc)
            return request.make_json_response({"error": str(exc)}, status=401)
        _logger.info("control plane: %s reports a tool list change", instance.slug)
        return request.make_json_response({"ok": True})
