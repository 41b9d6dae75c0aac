"""The one-time login link of the ``impersonate_user`` tool: /ocore/mcp/impersonate/<token>.

The link logs the browser in as the target user once, before it expires. Every
use, and every refused use of a known link, is recorded on the link and in the
MCP audit log.
"""

import logging

from odoo import SUPERUSER_ID, api, http
from odoo.http import request
from werkzeug.exceptions import NotFound

from ..lib import compat
from ..service import audit
from ..service.context import Connection

_logger = logging.getLogger(__name__)

REFUSED_TEXT = {
    "used": "This login link has already been used. Ask for a new one.",
    "expired": "This login link has expired. Ask for a new one.",
    "user": "The user of this login link can no longer be impersonated.",
}


class McpImpersonationController(http.Controller):
    @http.route("/ocore/mcp/impersonate/<string:token>", type="http", auth="none", methods=["GET"],
                csrf=False, save_session=True)
    def ocore_mcp_impersonate(self, token, **kw):
        if not request.db:
            raise NotFound()
        env = api.Environment(request.env.cr, SUPERUSER_ID, {})
        ip = request.httprequest.remote_addr
        agent = request.httprequest.headers.get("User-Agent")
        link, problem = env["ocore.mcp.impersonation"]._ocore_consume(token, ip, agent)
        if problem == "unknown":
            _logger.warning("MCP impersonation: unknown login link used from %s", ip)
            raise NotFound()
        user = link.user_id.with_context(active_test=False)
        if problem is None and (not user.active or user in env["ocore.mcp.tools.system"]._ocore_protected_users()
                                or not link.created_by_id.active or not link.created_by_id._is_system()):
            problem = "user"
        self._audit(env, link, problem, ip)
        if problem:
            env.cr.commit()
            _logger.warning("MCP impersonation of %s refused (%s) from %s", user.login, problem, ip)
            return request.make_response(REFUSED_TEXT[problem], [("Content-Type", "text/plain; charset=utf-8")],
                                         status=410 if problem in ("used", "expired") else 403)
        request.session.logout(keep_db=True)
        compat.session_login_as(request.session, env, user)
        request.env = api.Environment(request.env.cr, user.id, request.session.context)
        env.cr.commit()
        _logger.warning("MCP impersonation: %s logged in as %s (link #%s, from %s)",
                        link.created_by_id.login, user.login, link.id, ip)
        return request.redirect("/web" if user._is_internal() else "/web/login_successful", local=True)

    def _audit(self, env, link, problem, ip):
        key = link.key_id
        conn = Connection(key=key, scope={}, settings={}, transport="http", ip=ip)
        values = {
            "tool": "impersonate_user",
            "tool_name": "impersonation link",
            "category": "system",
            "user_id": link.created_by_id.id,
            "params": {"link_id": link.id, "target_user": link.user_id.login},
        }
        if problem:
            audit.event(env.cr, conn, "denied", status="refused", success=False, refusal_reason=f"link_{problem}",
                        error_message=REFUSED_TEXT[problem], **values)
        else:
            audit.event(env.cr, conn, "impersonation", status="success", success=True,
                        result_summary=f"{link.created_by_id.login} logged in as {link.user_id.login} "
                        f"through link #{link.id}", **values)
