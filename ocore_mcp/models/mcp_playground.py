"""MCP > Playground: the backend of the OWL client action (static/src/playground/).

A user picks one of their own API keys, then lists and calls tools through the real protocol dispatcher
(``ocore.mcp.server._ocore_handle``: the same policy pipeline, savepoint, deadline, rate limit and audit as
an AI client's call, with the transport "playground"). The request sent is the exact 2026-07-28 JSON-RPC
message a client would POST, returned with a ``curl`` line to replay it (the key left as a placeholder).
"""

import dataclasses
import json
import shlex
import time

from odoo import SUPERUSER_ID, _, api, models
from odoo.exceptions import AccessError, UserError

from ..lib import protocol
from ..service import policy
from ..service.context import Connection

PLAYGROUND_VERSION = "2026-07-28"
TRANSPORT = "playground"
STREAM_PATH = "/ocore/mcp/stream"
KEY_PLACEHOLDER = "<YOUR_MCP_API_KEY>"
MAX_TOOL_PAGES = 20


class McpPlayground(models.AbstractModel):
    _name = "ocore.mcp.playground"
    _description = "MCP Playground"

    def _ocore_check_user(self):
        if not self.env.user.has_group("ocore_mcp.group_mcp_viewer"):
            raise AccessError(_("The MCP playground is for MCP users."))

    def _ocore_own_keys(self):
        keys = self.env["ocore.mcp.key"].sudo().search([("user_id", "=", self.env.uid)], order="id")
        return keys.filtered(lambda key: key.state in ("new", "active"))

    @api.model
    def ocore_playground_keys(self):
        """The user's usable keys (a secretless "Playground" key is made on first use: it serves the
        playground only, no client can present it)."""
        self._ocore_check_user()
        keys = self._ocore_own_keys()
        if not keys:
            viewer_only = not self.env.user.has_group("ocore_mcp.group_mcp_user")
            keys = self.env["ocore.mcp.key"].sudo().create({
                "name": _("Playground"), "user_id": self.env.uid, "read_only": viewer_only,
                "note": _("Made by MCP > Playground for its calls; it has no secret."),
            })
        return [{"id": key.id, "name": key.name, "read_only": key.read_only, "prefix": key.key_prefix or ""}
                for key in keys]

    def _ocore_connection(self, key_id):
        """A connection of the user's own key, checked like an HTTP request's (revoked, expired, owner,
        kill switch); the key's secret is not needed: the user is signed in to Odoo."""
        self._ocore_check_user()
        key = self.env["ocore.mcp.key"].sudo().browse(int(key_id)).exists()
        if not key or key.user_id.id != self.env.uid:
            raise AccessError(_("Choose one of your own API keys."))
        server = api.Environment(self.env.cr, SUPERUSER_ID, {})["ocore.mcp.server"]
        settings = server._ocore_settings()
        auth = key._ocore_auth_info()
        try:
            policy.check_key(dataclasses.replace(auth, has_secret=True), settings, None)
        except policy.Refusal as exc:
            raise UserError(str(exc)) from None
        from odoo.http import request

        ip = request.httprequest.remote_addr if request else None
        conn = Connection(key=key, scope=auth.scope, auth=auth, settings=settings, transport=TRANSPORT,
                          protocol_version=PLAYGROUND_VERSION, client_name="Odoo MCP playground", ip=ip,
                          base_url=settings.get("base_url") or "")
        return server, conn

    def _ocore_message(self, method, params, request_id=1):
        meta = {
            protocol.PROTOCOL_VERSION_META_KEY: PLAYGROUND_VERSION,
            protocol.CLIENT_CAPABILITIES_META_KEY: {},
            protocol.CLIENT_INFO_META_KEY: {"name": "odoo-playground", "version": "1.0"},
        }
        return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": meta}}

    @api.model
    def ocore_playground_tools(self, key_id):
        """The tools the key may call (tools/list through the dispatcher, every page)."""
        server, conn = self._ocore_connection(key_id)
        tools, cursor = [], None
        for page in range(MAX_TOOL_PAGES):
            params = {"cursor": cursor} if cursor else {}
            reply = server._ocore_handle(conn, self._ocore_message("tools/list", params, request_id=page + 1))
            if "error" in reply:
                raise UserError(reply["error"]["message"])
            tools += reply["result"]["tools"]
            cursor = reply["result"].get("nextCursor")
            if not cursor:
                break
        return {"tools": tools}

    @api.model
    def ocore_playground_prompts(self, key_id):
        """The prompts the key may get (prompts/list through the dispatcher)."""
        server, conn = self._ocore_connection(key_id)
        reply = server._ocore_handle(conn, self._ocore_message("prompts/list", {}))
        if "error" in reply:
            raise UserError(reply["error"]["message"])
        return {"prompts": reply["result"]["prompts"]}

    @api.model
    def ocore_playground_call(self, key_id, tool, arguments):
        """Call ``tool`` through the dispatcher; return the reply, the time it took, the exact request
        and a curl line replaying it."""
        return self._ocore_send(key_id, "tools/call", tool, arguments)

    @api.model
    def ocore_playground_prompt(self, key_id, prompt, arguments):
        """Get ``prompt`` with ``arguments`` through the dispatcher (audited like a client's prompts/get)."""
        return self._ocore_send(key_id, "prompts/get", prompt, arguments)

    def _ocore_send(self, key_id, method, name, arguments):
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise UserError(_("A name and an object of arguments are needed."))
        server, conn = self._ocore_connection(key_id)
        message = self._ocore_message(method, {"name": name, "arguments": arguments},
                                      request_id=int(time.time() * 1000) % 1000000000)
        started = time.monotonic()
        reply = server._ocore_handle(conn, message)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        result = reply.get("result") or {}
        if "error" in reply:
            text = reply["error"].get("message", "")
        elif method == "prompts/get":
            text = "\n\n".join(f"[{m.get('role')}] {(m.get('content') or {}).get('text', '')}"
                                for m in result.get("messages", []))
        else:
            text = "\n".join(part.get("text", "") for part in result.get("content", []) if part.get("type") == "text")
        return {
            "request": message,
            "response": reply,
            "is_error": bool("error" in reply or result.get("isError")),
            "text": text,
            "structured": result.get("structuredContent") if method == "tools/call" else result,
            "elapsed_ms": elapsed_ms,
            "curl": self._ocore_curl(conn, message),
        }

    def _ocore_curl(self, conn, message):
        url = f"{conn.settings.get('base_url') or ''}{STREAM_PATH}"
        headers = [
            f"Authorization: Bearer {KEY_PLACEHOLDER}",
            "Content-Type: application/json",
            "Accept: application/json, text/event-stream",
            f"MCP-Protocol-Version: {PLAYGROUND_VERSION}",
            f"Mcp-Method: {message['method']}",
            f"Mcp-Name: {message['params']['name']}",
        ]
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        parts = ["curl", "-sS", "-X", "POST", shlex.quote(url)]
        for header in headers:
            parts += ["-H", shlex.quote(header)]
        parts += ["--data-raw", shlex.quote(body)]
        return " ".join(parts)
