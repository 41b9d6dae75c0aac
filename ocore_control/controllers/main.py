"""Heartbeats of the host agents (signed like the control plane's requests to them)."""

import json
import logging

from odoo import SUPERUSER_ID, api, http
from odoo.http import request

from ..agent import signing

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
