"""MCP resources (``resources/list``, ``resources/templates/list``, ``resources/read``) and the
``completion/complete`` handler (its values: models/mcp_completion.py), dispatched by ``ocore.mcp.server``.

A resource is read through a tool: every URI maps onto one installed tool and its arguments
(``odoo://res.partner/7`` -> ``read(model="res.partner", ids=[7])``), and the read goes through the
tool pipeline's steps (admit, start, run, finish). Visibility, categories, the model allowlist,
protected models, record rules, the rate limit, the deadline, size limits and the audit row are
therefore exactly those of the tool; the audit row says ``event = resource`` and names the URI.

An addon adds a template or a direct resource by overriding ``_ocore_resource_templates`` /
``_ocore_direct_resources`` of ``ocore.mcp.resources`` (``ocore_mcp_knowledge`` adds its notes).
"""

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass, field

from odoo import models

from ..lib import protocol
from ..lib.shaping import UNTRUSTED_META_KEY, unmark_untrusted, untrusted_meta
from ..service import audit, policy

RESOURCE_NOT_FOUND = -32002  # the MCP specification's code for an unknown resource
RESOURCES_PAGE_SIZE = 50
SUBSCRIPTION_ID_META_KEY = "io.modelcontextprotocol/subscriptionId"
_MODEL = r"(?P<model>[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)"
_ID = r"(?P<id>[1-9][0-9]{0,9})"


@dataclass(frozen=True)
class ResourceTemplate:
    """One RFC 6570 template, the pattern it is matched with, and the tool a read becomes."""

    uri_template: str
    name: str
    title: str
    description: str
    pattern: str  # a regular expression with named groups, matched on the whole URI
    tool: str  # unprefixed tool name
    mime_type: str | None = None
    arguments: tuple = ()  # the template's variables, in order (completion/complete)
    extra: dict = field(default_factory=dict)

    def match(self, uri):
        found = re.fullmatch(self.pattern, uri)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class DirectResource:
    uri: str
    name: str
    title: str
    description: str
    tool: str
    arguments: dict = field(default_factory=dict)
    mime_type: str = "application/json"


def _cursor_start(cursor):
    if not cursor:
        return 0
    try:
        start = int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise protocol.ProtocolError(protocol.INVALID_PARAMS, "Invalid cursor") from None
    if start < 0:
        raise protocol.ProtocolError(protocol.INVALID_PARAMS, "Invalid cursor")
    return start


def _page(items, cursor, size):
    start = _cursor_start(cursor)
    chunk = items[start : start + size]
    following = None
    if start + size < len(items):
        following = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return chunk, following


def _ids_or_fields(value):
    return [part for part in (value or "").split(",") if part]


class McpResources(models.AbstractModel):
    """Resources and the completion/complete handler; ``ocore.mcp.server`` dispatches here and its
    pipeline steps run every read."""

    _name = "ocore.mcp.resources"
    _description = "MCP Resources"

    # -- declarations (extension points) ------------------------------------------------

    def _ocore_resource_templates(self):
        """The resource templates, most specific first (a URI is read by the first that matches)."""
        return [
            ResourceTemplate(
                "odoo://{model}/{id}/report/{report}{?format}", "record_report", "Printed report of a record",
                "A QWeb report of one record: PDF (blob, default) or HTML (text, ?format=html). {report} is the "
                "report's report_name (technical name) or XML id.",
                rf"odoo://{_MODEL}/{_ID}/report/(?P<report>[A-Za-z0-9_.\-]{{1,200}})(?:\?format=(?P<format>pdf|html))?",
                "generate_report", "application/pdf", ("model", "id", "report", "format"),
            ),
            ResourceTemplate(
                "odoo://ir.attachment/{id}/content", "attachment_content", "Attachment content",
                "The stored file of an attachment, as a blob with its own MIME type (max 10 MB, "
                "max_response_size applies).",
                rf"odoo://ir\.attachment/{_ID}/content", "download_attachment", None, ("id",),
            ),
            ResourceTemplate(
                "odoo://{model}/{id}{?fields}", "record", "Record",
                "One record as JSON: its smart field selection (or ?fields=a,b), with the key owner's access "
                "rights and record rules, like the read tool.",
                rf"odoo://{_MODEL}/{_ID}(?:\?fields=(?P<fields>[a-z0-9_]+(?:,[a-z0-9_]+)*))?",
                "read", "application/json", ("model", "id", "fields"),
            ),
            ResourceTemplate(
                "odoo://{model}", "model_schema", "Model schema",
                "A model's fields (name, type, label, required, relation …) as JSON, like get_field_metadata.",
                rf"odoo://{_MODEL}", "get_field_metadata", "application/json", ("model",),
            ),
        ]

    def _ocore_direct_resources(self):
        """The resources listed by ``resources/list``."""
        return [
            DirectResource("odoo://instance", "instance", "Instance summary",
                           "This Odoo instance: version, edition, environment, write status, server.",
                           "get_instance_info"),
            DirectResource("odoo://models", "models", "Models",
                           "Every model the key may reach, with its label and modules (first 300).",
                           "list_models", {"limit": 300}),
        ]

    def _ocore_resource_args(self, template, values):
        """The tool arguments of a matched template (``values``: the URI's variables)."""
        if template.tool == "generate_report":
            return {"report": values["report"], "record_ids": [int(values["id"])], "format": values.get("format")
                    or "pdf"}
        if template.tool == "download_attachment":
            return {"attachment_id": int(values["id"])}
        if template.tool == "read":
            args = {"model": values["model"], "ids": [int(values["id"])]}
            if values.get("fields"):
                args["fields"] = _ids_or_fields(values["fields"])
            return args
        if template.tool == "get_field_metadata":
            return {"model": values["model"]}
        return {k: v for k, v in values.items() if v is not None}

    def _ocore_resource_contents(self, uri, template, values, structured, text):
        """The ``contents`` of a read from the tool's structured result (extension point)."""
        if structured.get("truncated"):
            return [{"uri": uri, "mimeType": "application/json", "text": text}]
        tool = template.tool if template else None
        if tool == "read":
            if structured.get("not_found") or not structured.get("records"):
                raise protocol.ProtocolError(RESOURCE_NOT_FOUND, f"Resource not found: {uri}", {"uri": uri})
            record = dict(structured["records"][0], _model=structured.get("model"))
            return [{"uri": uri, "mimeType": "application/json",
                     "text": json.dumps(record, ensure_ascii=False, default=str)}]
        if tool == "generate_report":
            if structured.get("report", {}).get("model") != values["model"]:
                raise protocol.ProtocolError(
                    RESOURCE_NOT_FOUND, f"Resource not found: {uri} (the report does not print {values['model']})",
                    {"uri": uri})
            if structured.get("format") == "html":
                html = base64.b64decode(structured["data_base64"]).decode("utf-8", errors="replace")
                return [{"uri": uri, "mimeType": "text/html", "text": html}]
            return [{"uri": uri, "mimeType": structured.get("mimetype") or "application/pdf",
                     "blob": structured["data_base64"]}]
        if tool == "download_attachment":
            row = structured.get("attachment") or {}
            if structured.get("data_base64") is None:  # a URL attachment
                return [{"uri": uri, "mimeType": "text/uri-list", "text": row.get("url") or ""}]
            return [{"uri": uri, "mimeType": row.get("mimetype") or "application/octet-stream",
                     "blob": structured["data_base64"]}]
        return [{"uri": uri, "mimeType": "application/json", "text": text}]

    # -- protocol methods ------------------------------------------------------------------

    def _ocore_method_handlers(self):
        """The methods ``ocore.mcp.server`` dispatches here."""
        return {
            "resources/list": self._mcp_resources_list,
            "resources/templates/list": self._mcp_resources_templates_list,
            "resources/read": self._mcp_resources_read,
            "completion/complete": self._mcp_completion_complete,
            "resources/subscribe": self._mcp_resources_subscribe,
            "resources/unsubscribe": self._mcp_resources_unsubscribe,
            "subscriptions/listen": self._mcp_subscriptions_listen,
        }

    # -- change push (models/mcp_subscription.py) ------------------------------------------

    def _mcp_resources_subscribe(self, conn, request, request_id):
        """``notifications/resources/updated`` on the session's stream (its legacy SSE stream, its
        Streamable HTTP GET stream) when the record the URI names changes, whoever writes it."""
        if not conn.session:
            raise protocol.ProtocolError(protocol.METHOD_NOT_FOUND, "resources/subscribe needs a session "
                                         "(2026-07-28: subscriptions/listen)")
        self.env["ocore.mcp.subscription"]._ocore_subscribe(conn, str(request.params.uri), conn.session_id,
                                                            session=conn.session)
        return {}

    def _mcp_resources_unsubscribe(self, conn, request, request_id):
        if not conn.session:
            raise protocol.ProtocolError(protocol.METHOD_NOT_FOUND, "resources/unsubscribe needs a session")
        self.env["ocore.mcp.subscription"]._ocore_unsubscribe(conn.session_id, str(request.params.uri))
        return {}

    def _mcp_subscriptions_listen(self, conn, request, request_id):
        """2026-07-28: opens the listen stream's subscriptions (the controller streams them: the
        acknowledgment first, then the events). ``conn.listen`` = (channel, honored filter); the result is
        the stream's graceful end."""
        notifications = request.params.notifications.model_dump(by_alias=True, exclude_none=True)
        conn.listen = self.env["ocore.mcp.subscription"]._ocore_open_listen(conn, request_id, notifications)
        return {"_meta": {SUBSCRIPTION_ID_META_KEY: request_id}, "resultType": "complete"}

    def _mcp_completion_complete(self, conn, request, request_id):
        """Values of a resource template's or a prompt's argument (models/mcp_completion.py)."""
        result = {"completion": self.env["ocore.mcp.completion"]._ocore_complete(conn, request.params)}
        if protocol.is_modern(conn.protocol_version):
            result["resultType"] = "complete"
        return result

    def _ocore_resource_tool_visible(self, conn, tool, is_admin):
        spec = self.env["ocore.mcp.toolset"]._ocore_tool_specs().get(tool)
        return spec is not None and policy.visibility_refusal(spec, conn, is_admin) is None

    def _ocore_list_result(self, conn, result):
        if protocol.is_modern(conn.protocol_version):
            result.update(resultType="complete", ttlMs=0, cacheScope="private")
        return result

    def _mcp_resources_list(self, conn, request, request_id):
        server = self.env["ocore.mcp.server"]
        is_admin = server._ocore_is_admin(conn)
        visible = [r for r in self._ocore_direct_resources()
                   if self._ocore_resource_tool_visible(conn, r.tool, is_admin)]
        chunk, following = _page(visible, request.params.cursor if request.params else None, RESOURCES_PAGE_SIZE)
        result = {"resources": [{"uri": r.uri, "name": r.name, "title": r.title, "description": r.description,
                                 "mimeType": r.mime_type} for r in chunk]}
        if following:
            result["nextCursor"] = following
        return self._ocore_list_result(conn, result)

    def _mcp_resources_templates_list(self, conn, request, request_id):
        server = self.env["ocore.mcp.server"]
        is_admin = server._ocore_is_admin(conn)
        visible = [t for t in self._ocore_resource_templates()
                   if self._ocore_resource_tool_visible(conn, t.tool, is_admin)]
        chunk, following = _page(visible, request.params.cursor if request.params else None, RESOURCES_PAGE_SIZE)
        templates = []
        for t in chunk:
            item = {"uriTemplate": t.uri_template, "name": t.name, "title": t.title, "description": t.description}
            if t.mime_type:
                item["mimeType"] = t.mime_type
            templates.append(item)
        result = {"resourceTemplates": templates}
        if following:
            result["nextCursor"] = following
        return self._ocore_list_result(conn, result)

    def _ocore_resolve_resource(self, uri):
        """(template or None, URI variables, tool name, tool arguments) of a URI, or RESOURCE_NOT_FOUND."""
        if isinstance(uri, str) and len(uri) <= 2048:
            for direct in self._ocore_direct_resources():
                if direct.uri == uri:
                    return None, {}, direct.tool, dict(direct.arguments)
            for template in self._ocore_resource_templates():
                values = template.match(uri)
                if values is not None:
                    return template, values, template.tool, self._ocore_resource_args(template, values)
        raise protocol.ProtocolError(RESOURCE_NOT_FOUND, f"Resource not found: {str(uri)[:300]}",
                                     {"uri": str(uri)[:300]})

    def _mcp_resources_read(self, conn, request, request_id):
        """A read is a call of the URI's tool through the pipeline's steps, audited as ``resource``.
        Counted against the rate limit once (by the pipeline: resources/read is self-counted)."""
        server = self.env["ocore.mcp.server"]
        uri = str(request.params.uri)
        started = time.monotonic()
        base = {**audit.base_values(conn), "event": "resource", "tool_name": uri[:200], "request_id": request_id}
        try:
            template, values, tool, arguments = self._ocore_resolve_resource(uri)
        except protocol.ProtocolError as exc:  # counted and audited like any refused read
            server._ocore_count_request(conn, request_id, "resources/read", {
                "event": "resource", "tool_name": uri[:200], "params": {"uri": uri}, "status": "refused",
                "success": False, "refusal_reason": "not_found", "error_message": exc.message,
                "latency_ms": int((time.monotonic() - started) * 1000)})
            raise
        spec = self.env["ocore.mcp.toolset"]._ocore_tool_specs().get(tool)
        full_name = server._ocore_full_name(spec, conn) if spec else tool
        try:
            admitted = server._ocore_admit(conn, full_name, arguments, base)
        except policy.Refusal as exc:
            server._ocore_refuse_call(base, {"uri": uri, **arguments}, exc, started)
            raise protocol.ProtocolError(protocol.INVALID_PARAMS, str(exc)) from None
        call = server._ocore_start_call(conn, full_name, {"uri": uri, **arguments}, admitted, base, request_id, None)
        outcome = server._ocore_run(call, admitted.tool_env)
        if not outcome["ok"] and outcome.get("refusal") == "not_found":
            outcome = {**outcome, "error": f"Resource not found: {uri} ({outcome['error']})"}
        result = server._ocore_finish_call(call, outcome, started)
        if result.get("isError"):
            message = result["content"][0]["text"]
            code = RESOURCE_NOT_FOUND if outcome.get("refusal") == "not_found" else protocol.INVALID_PARAMS
            raise protocol.ProtocolError(code, message, {"uri": uri})
        text = unmark_untrusted(result["content"][0]["text"])  # the contents keep their media type
        out = {"contents": self._ocore_resource_contents(uri, template, values, result["structuredContent"], text)}
        marking = (result.get("_meta") or {}).get(UNTRUSTED_META_KEY)
        if marking:  # the contents keep their media type (no tags inside): each says it is untrusted data
            for item in out["contents"]:
                item["_meta"] = untrusted_meta(marking["boundary"], ("text" if "text" in item else "blob",))
            out["_meta"] = untrusted_meta(marking["boundary"], ("contents",))
        if protocol.is_modern(conn.protocol_version):
            out.update(resultType="complete", ttlMs=0, cacheScope="private")
        return out
