"""MCP > Playground: the backend of the OWL client action (static/src/playground/).

A user picks one of their own API keys, then lists and calls tools through the real protocol dispatcher
(``ocore.mcp.server._ocore_handle``: the same policy pipeline, savepoint, deadline, rate limit and audit as
an AI client's call, with the transport "playground"). The request sent is the exact 2026-07-28 JSON-RPC
message a client would POST, returned with a ``curl`` line to replay it (the key left as a placeholder).
Prompts (prompts/get) and resources (resources/read of a direct resource or of a template filled in here,
completion/complete for its variables) go through the same dispatcher.
"""

import base64
import binascii
import dataclasses
import json
import shlex
import re
import time
from urllib.parse import quote

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
MAX_PREVIEW_CHARS = 200000  # a text content shown whole up to this size (its full size is always given)
# RFC 6570 expressions of a resource template: {name} (a path segment) and {?a,b} (form-style query)
TEMPLATE_EXPRESSION = re.compile(r"\{(\??)([A-Za-z0-9_,]+)\}")


def template_variables(uri_template):
    """The variables of ``uri_template`` in order: ``{"name", "required"}`` (path ones are required)."""
    found = []
    for query, names in TEMPLATE_EXPRESSION.findall(uri_template or ""):
        found += [{"name": name, "required": not query} for name in names.split(",") if name]
    return found


def expand_template(uri_template, values):
    """``uri_template`` with ``values`` (RFC 6570 level 1 for {name}, form-style query for {?a,b}: unset
    query variables are left out); a missing path variable raises KeyError(its name)."""
    values = values or {}

    def expand(match):
        query, names = match.group(1), match.group(2).split(",")
        if not query:
            value = values.get(names[0])
            if value in (None, ""):
                raise KeyError(names[0])
            return quote(str(value), safe="")
        pairs = [f"{name}={quote(str(values[name]), safe=',')}" for name in names if values.get(name) not in (None, "")]
        return ("?" + "&".join(pairs)) if pairs else ""

    return TEMPLATE_EXPRESSION.sub(expand, uri_template)


def header_value(value):
    """A header value as the SDK sends it: as is when printable ASCII, else the ``=?base64?…?=`` form."""
    if value.isascii() and value.isprintable():
        return value
    return "=?base64?" + base64.b64encode(value.encode()).decode("ascii") + "?="


def content_summary(content):
    """One ``contents`` item as the playground shows it: text (pretty JSON when it is JSON), or a blob's
    MIME type and size (the blob itself kept for a download link)."""
    mime = content.get("mimeType") or ""
    item = {"uri": content.get("uri"), "mime_type": mime}
    if "blob" in content:
        try:
            size = len(base64.b64decode(content["blob"] or "", validate=True))
        except (binascii.Error, ValueError):
            size = None
        item.update(kind="blob", size=size, blob=content["blob"])
        return item
    text = content.get("text") or ""
    item.update(kind="text", size=len(text.encode()), text=text[:MAX_PREVIEW_CHARS],
                truncated=len(text) > MAX_PREVIEW_CHARS)
    if mime.endswith("json") and not item["truncated"]:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None  # shown as text
        if parsed is not None:
            item.update(kind="json", json=parsed)
    return item


def elide_blobs(reply):
    """The reply with each blob replaced by its length (the Response tab; the blob is offered for download)."""
    contents = (reply.get("result") or {}).get("contents")
    if not contents or not any("blob" in c for c in contents):
        return reply
    result = dict(reply["result"], contents=[
        dict(c, blob=f"<base64, {len(c['blob'])} characters>") if "blob" in c else c for c in contents])
    return dict(reply, result=result)


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
        return {"tools": self._ocore_list_all(server, conn, "tools/list", "tools")}

    @api.model
    def ocore_playground_prompts(self, key_id):
        """The prompts the key may get (prompts/list through the dispatcher)."""
        server, conn = self._ocore_connection(key_id)
        reply = server._ocore_handle(conn, self._ocore_message("prompts/list", {}))
        if "error" in reply:
            raise UserError(reply["error"]["message"])
        return {"prompts": reply["result"]["prompts"]}

    def _ocore_list_all(self, server, conn, method, field):
        items, cursor = [], None
        for page in range(MAX_TOOL_PAGES):
            params = {"cursor": cursor} if cursor else {}
            reply = server._ocore_handle(conn, self._ocore_message(method, params, request_id=page + 1))
            if "error" in reply:
                raise UserError(reply["error"]["message"])
            items += reply["result"][field]
            cursor = reply["result"].get("nextCursor")
            if not cursor:
                break
        return items

    @api.model
    def ocore_playground_resources(self, key_id):
        """The direct resources and resource templates the key may read (resources/list and
        resources/templates/list through the dispatcher); each template with its variables."""
        server, conn = self._ocore_connection(key_id)
        resources = self._ocore_list_all(server, conn, "resources/list", "resources")
        templates = self._ocore_list_all(server, conn, "resources/templates/list", "resourceTemplates")
        for template in templates:
            template["variables"] = template_variables(template["uriTemplate"])
        return {"resources": resources, "templates": templates}

    @api.model
    def ocore_playground_complete(self, key_id, uri_template, name, value, arguments=None):
        """completion/complete of variable ``name`` of a template (the values filled so far as context)."""
        server, conn = self._ocore_connection(key_id)
        context = {k: str(v) for k, v in (arguments or {}).items() if v not in (None, "") and k != name}
        params = {"ref": {"type": "ref/resource", "uri": str(uri_template)},
                  "argument": {"name": str(name), "value": str(value or "")}}
        if context:
            params["context"] = {"arguments": context}
        reply = server._ocore_handle(conn, self._ocore_message("completion/complete", params))
        if "error" in reply:
            return {"values": [], "error": reply["error"].get("message", "")}
        return {"values": reply["result"]["completion"]["values"]}

    @api.model
    def ocore_playground_read(self, key_id, uri=None, uri_template=None, values=None):
        """resources/read of ``uri``, or of ``uri_template`` filled with ``values``, through the dispatcher
        (audited like a client's read: event ``resource``, transport ``playground``)."""
        if uri_template:
            if not isinstance(uri_template, str) or not isinstance(values or {}, dict):
                raise UserError(_("A template and an object of values are needed."))
            try:
                uri = expand_template(uri_template, values)
            except KeyError as exc:
                raise UserError(_("A value for %s is needed.", exc.args[0])) from None
        if not isinstance(uri, str) or not uri:
            raise UserError(_("A resource URI is needed."))
        return self._ocore_send(key_id, "resources/read", uri, None)

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
        if method == "resources/read":
            params = {"uri": name}
        elif not isinstance(name, str) or not isinstance(arguments, dict):
            raise UserError(_("A name and an object of arguments are needed."))
        else:
            params = {"name": name, "arguments": arguments}
        server, conn = self._ocore_connection(key_id)
        message = self._ocore_message(method, params, request_id=int(time.time() * 1000) % 1000000000)
        started = time.monotonic()
        reply = server._ocore_handle(conn, message)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        result = reply.get("result") or {}
        contents = [content_summary(c) for c in result.get("contents") or []] if method == "resources/read" else None
        if "error" in reply:
            text = reply["error"].get("message", "")
        elif contents is not None:
            text = "\n\n".join(
                c["text"] if c["kind"] != "blob" else f"[{c['mime_type']}, {c['size']} bytes]" for c in contents)
        elif method == "prompts/get":
            text = "\n\n".join(f"[{m.get('role')}] {(m.get('content') or {}).get('text', '')}"
                                for m in result.get("messages", []))
        else:
            text = "\n".join(part.get("text", "") for part in result.get("content", []) if part.get("type") == "text")
        out = {
            "request": message,
            "response": elide_blobs(reply),
            "is_error": bool("error" in reply or result.get("isError")),
            "text": text,
            "structured": result.get("structuredContent") if method == "tools/call" else result,
            "elapsed_ms": elapsed_ms,
            "curl": self._ocore_curl(conn, message),
        }
        if contents is not None:
            out["contents"] = contents
            if len(contents) == 1 and contents[0]["kind"] == "json":
                out["structured"] = contents[0]["json"]
            else:
                out["structured"] = elide_blobs(reply).get("result")
        return out

    def _ocore_curl(self, conn, message):
        url = f"{conn.settings.get('base_url') or ''}{STREAM_PATH}"
        headers = [
            f"Authorization: Bearer {KEY_PLACEHOLDER}",
            "Content-Type: application/json",
            "Accept: application/json, text/event-stream",
            f"MCP-Protocol-Version: {PLAYGROUND_VERSION}",
            f"Mcp-Method: {message['method']}",
        ]
        name_key = protocol.NAME_BEARING_METHODS.get(message["method"])
        if name_key:
            headers.append(f"Mcp-Name: {header_value(message['params'][name_key])}")
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        parts = ["curl", "-sS", "-X", "POST", shlex.quote(url)]
        for header in headers:
            parts += ["-H", shlex.quote(header)]
        parts += ["--data-raw", shlex.quote(body)]
        return " ".join(parts)
