import base64
import contextlib
import json
import logging
import time
from typing import NamedTuple

import psycopg2
from psycopg2.extensions import ISOLATION_LEVEL_READ_COMMITTED, ISOLATION_LEVEL_REPEATABLE_READ

from odoo import api, fields, models, release, tools
from odoo.modules.module import get_manifest

from ..lib import annotations as tool_annotations
from ..lib import compat, errors, origins
from ..lib import protocol
from ..lib.deadline import CallCancelled, CallInterrupted, CallTimeout, Deadline
from ..lib.shaping import mark_untrusted, mark_untrusted_error, shape, untrusted_boundary, untrusted_meta
from ..lib.tooling import COMMON_PARAMS_HELP, OUTPUT_SCHEMA
from ..service import audit, bookkeeping
from ..service import policy
from ..service.context import CallContext, reset_current_call, set_current_call
from ..service.notify import hub
from .mcp_rate_limit import key_touch
from .mcp_session import SESSION_FIELDS
from .res_config_settings import DEFAULTS, PARAM, _as_bool, default_slug

_logger = logging.getLogger(__name__)

SERVER_NAME = "ocore-mcp"
SERVER_VERSION = get_manifest("ocore_mcp")["version"]  # the addon's own version, e.g. 18.0.1.1.0
PLATFORM_PREFIX = "ocore"
TOOLS_PAGE_SIZE = 200
# requests whose handler counts them against the rate limit itself (with their audit row)
SELF_COUNTED_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})
AUDIT_RECONNECT_SECONDS = 10  # how long a call whose connection died tries to record its outcome
INSTRUCTIONS = (
    "Odoo {version} instance '{slug}' ({environment}). Tools named {slug}_<tool> act on this instance as "
    "the API key's owner, with their access rights; platform tools are named ocore_<tool>. "
)


# psycopg2's isolation levels, as a BEGIN names them
_ISOLATION_NAMES = {ISOLATION_LEVEL_READ_COMMITTED: "READ COMMITTED",
                    ISOLATION_LEVEL_REPEATABLE_READ: "REPEATABLE READ",
                    psycopg2.extensions.ISOLATION_LEVEL_SERIALIZABLE: "SERIALIZABLE"}


class _DryRun(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, result):
        super().__init__("dry run")
        self.result = result


class _Admitted(NamedTuple):
    """What step 1 of the pipeline established about an admitted call."""

    spec: object
    args: dict
    confirm: bool
    dry_run: bool
    tool_env: object
    session_stale: bool
    counted: bool = True  # the rate-limit hit is made (else _ocore_start_call makes it with the audit row)


class McpServer(models.AbstractModel):
    """MCP protocol methods. Transport framing is in the controllers; every
    tools/call goes through :meth:`_ocore_call_tool`, the single pipeline."""

    _name = "ocore.mcp.server"
    _description = "MCP Server"

    # -- settings ----------------------------------------------------------------

    @api.model
    def _ocore_settings(self):
        """The MCP settings (system parameters ocore_mcp.*), a fresh dict for the caller to keep."""
        return dict(self._ocore_settings_cached())

    @api.model
    @tools.ormcache()
    def _ocore_settings_cached(self):
        # one cache entry instead of nine get_param lookups per request; cleared like get_param's own
        # (every system parameter change clears the registry's caches, in every worker)
        icp = self.env["ir.config_parameter"].sudo()

        def get(name, default=None):
            return icp.get_param(PARAM + name, default)

        environment = get("environment") or DEFAULTS["environment"]
        write_param = get("write_enabled")
        return {
            "slug": default_slug(get("slug") or self.env.cr.dbname),  # bounded, also a value set before the bound
            "environment": environment,
            "write_enabled": _as_bool(write_param, environment != "production"),
            "enabled": _as_bool(get("enabled"), True),
            "rate_limit": int(get("rate_limit") or DEFAULTS["rate_limit"]),
            "default_timeout": int(get("default_timeout") or DEFAULTS["default_timeout"]),
            "max_response_kb": int(get("max_response_kb") or DEFAULTS["max_response_kb"]),
            "files_root": get("files_root") or "",
            "tools_page_size": int(get("tools_page_size") or TOOLS_PAGE_SIZE),
            **self._ocore_edge_settings(get),
        }

    @api.model
    def _ocore_edge_settings(self, get):
        """The protocol edge's settings: the public URL every URL given out is built from (web.base.url,
        never the request's Host header), the browser origins allowed, the request size limits."""
        base_url = (self.env["ir.config_parameter"].sudo().get_param("web.base.url") or "").strip().rstrip("/")
        allowed = get("allowed_origins") or ""
        return {
            "base_url": base_url,
            "own_origin": origins.serialize_origin(base_url),
            "allowed_origins": allowed,
            "origins": origins.parse_origins(allowed),
            "max_body_kb": int(get("max_body_kb") or DEFAULTS["max_body_kb"]),
            "max_batch": int(get("max_batch") or DEFAULTS["max_batch"]),
        }

    # -- dispatch ------------------------------------------------------------------

    def _ocore_handle(self, conn, msg):
        """Handle one decoded JSON-RPC message; return the response dict or None."""
        kind = protocol.message_kind(msg)
        if kind is None:
            request_id = msg.get("id") if isinstance(msg, dict) else None
            return protocol.error(request_id, protocol.INVALID_REQUEST, "Invalid Request")
        if kind == "response":  # the client's answer to our request (a call waiting for the human)
            self.env["ocore.mcp.approval"]._ocore_client_response(conn, msg)
            return None
        method = msg["method"]
        params = msg.get("params")
        if kind == "notification":
            self._ocore_notification(conn, method, params)
            return None
        request_id = msg["id"]
        try:
            result = self._ocore_request(conn, request_id, method, params)
        except protocol.ProtocolError as exc:
            return protocol.error(request_id, exc.code, exc.message, exc.data)
        except policy.Refusal as exc:
            return protocol.error(request_id, protocol.INVALID_PARAMS, str(exc))
        return protocol.response(request_id, result)

    def _ocore_request(self, conn, request_id, method, params):
        if method not in SELF_COUNTED_METHODS:
            self._ocore_count_request(conn, request_id, method)
        version = conn.protocol_version
        if method == "initialize" and not protocol.is_modern(version):
            # version negotiation happens in the transport before the session exists; 2026-07-28 removed
            # initialize: in its envelope it is method-not-found (HTTP 404) like ping, below
            version = protocol.negotiate_version((params or {}).get("protocolVersion"))
        try:
            request = protocol.parse_request(method, version, params)
        except protocol.ProtocolError:
            if method in SELF_COUNTED_METHODS:  # malformed: never reaches its handler, counted all the same
                self._ocore_count_request(conn, request_id, method)
            raise
        handler = self._ocore_method_handlers().get(method)
        if handler is None:
            raise protocol.ProtocolError(protocol.METHOD_NOT_FOUND, f"Method not found: {method}")
        result = handler(conn, request, request_id)
        if protocol.is_modern(version) and method != "server/discover":
            result.setdefault("_meta", {})
        if method == "tools/list":
            return protocol.serialize_tools_list(version, result)
        return protocol.serialize_result(method, version, result)

    def _ocore_method_handlers(self):
        """{JSON-RPC method: handler(conn, request, request_id)}; an extension adds its methods here
        (e.g. models/mcp_resources.py)."""
        return {
            "initialize": self._mcp_initialize,
            "server/discover": self._mcp_discover,
            "ping": self._mcp_ping,
            "tools/list": self._mcp_tools_list,
            "tools/call": self._mcp_tools_call,
            "prompts/list": self._mcp_prompts_list,
            "prompts/get": self._mcp_prompts_get,
            "logging/setLevel": self._mcp_set_level,
            **self.env["ocore.mcp.resources"]._ocore_method_handlers(),  # resources/*, completion/complete
        }

    def _ocore_count_request(self, conn, request_id, method, audit_values=None):
        """Count one request against the key's rate limit: every JSON-RPC request counts, whatever its
        method (notifications and responses do not). The hit and ``audit_values``' row (the 'running' row of
        a prompts/get) are one statement, committed on its own (``_ocore_bookkeeping``); a request over the
        limit is refused with an audit row and a JSON-RPC error. Returns the audit row's id (when
        ``audit_values``)."""
        if conn.auth is None:
            return None
        limit = policy.effective_rate_limit(conn.scope, conn.settings)
        counted = getattr(conn, "counted", None)  # made with the session lookup (_ocore_session_begin)
        if counted is not None and audit_values is None:
            conn.counted = None  # for this one request
            allowed, used = counted
            if allowed:
                return None
            refusal = policy.Refusal("rate_limited", f"{used} requests in the last minute for this API key "
                                                  f"(limit {limit}/min); retry later")
            with self._ocore_bookkeeping() as cr:
                audit.insert(cr, {**audit.base_values(conn), "event": "denied", "tool_name": method,
                                  "request_id": request_id, "status": "refused", "success": False,
                                  "refusal_reason": refusal.code, "error_message": str(refusal)})
            raise protocol.ProtocolError(protocol.RATE_LIMITED, str(refusal))
        row = {**audit.base_values(conn), "request_id": request_id, **audit_values} if audit_values else None
        with self._ocore_bookkeeping() as cr:
            allowed, used, audit_id = self.env["ocore.mcp.rate.limit"]._ocore_begin(
                conn.auth.id, limit, row, conn.session.id if conn.session else None, cr=cr)
            if not allowed:
                refusal = policy.Refusal("rate_limited", f"{used} requests in the last minute for this API key "
                                                      f"(limit {limit}/min); retry later")
                audit.insert(cr, {**audit.base_values(conn), "event": "denied", "tool_name": method,
                                  "request_id": request_id, **(audit_values or {}), "status": "refused",
                                  "success": False, "refusal_reason": refusal.code, "error_message": str(refusal)})
        if not allowed:
            raise protocol.ProtocolError(protocol.RATE_LIMITED, str(refusal))
        return audit_id

    @api.model
    def _ocore_session_begin(self, session_id, key_id, transport, limit=None, stream=None):
        """The row of the session ``session_id`` (its ``SESSION_FIELDS`` and ``id``, or None), read on the
        bookkeeping connection (``_ocore_bookkeeping``) rather than in a transaction of the request's own
        connection (its BEGIN and COMMIT: two round trips, for a request that may need nothing else), and,
        with ``limit``, in the same statement the rate-limit hit of the request's one JSON-RPC request with
        the key's and the session's last use, as ``ocore.mcp.rate.limit._ocore_begin`` makes them — only
        when the session is the key's, open and of ``transport`` (no hit for a request answered 404); with
        ``stream`` ((kind, channel)) instead, on the same condition, a slot among the key's open streams
        (``ocore.mcp.stream.limit._ocore_stream_open``'s function).
        Returns (values, counted): counted is (allowed, used) of the hit, or the slot's id (minus the key's
        open streams when refused: ``ocore.mcp.stream.limit._ocore_stream_refusal``), None when nothing was taken."""
        rate = self.env["ocore.mcp.rate.limit"]
        valid = "s.key_id = %s AND s.ended_at IS NULL AND s.transport = %s"
        statements, params = [], []
        hit, hit_params = "NULL::integer", []
        touch = None
        if limit is not None:
            # the key's last use refreshed only for a request of one of its open sessions
            touch = key_touch(self.env.cr.dbname, key_id,
                              f" AND EXISTS (SELECT 1 FROM ocore_mcp_session s WHERE s.session_id = %s AND {valid})",
                              (session_id, key_id, transport))
            statements.append("SET LOCAL synchronous_commit TO OFF")
            if touch:
                statements.append(touch.sql)
                params += touch.params
            statements.append(
                f"""UPDATE ocore_mcp_session s SET last_seen = now() at time zone 'UTC'
                     WHERE s.session_id = %s AND {valid}
                       AND s.last_seen < now() at time zone 'UTC' - interval '30 s'""")
            params += [session_id, key_id, transport]
            hit = "ocore_mcp_rate_hit(%s, %s, %s, %s)"
            hit_params = [rate.LOCK_NAMESPACE, key_id, limit, rate.WINDOW_SECONDS]
        elif stream is not None:
            hit, hit_params = self.env["ocore.mcp.stream.limit"]._ocore_stream_open_call(key_id, *stream)
        statements.append(
            f"""SELECT s.id, {", ".join(f"s.{name}" for name in SESSION_FIELDS)}, CASE WHEN {valid} THEN {hit} END
                  FROM ocore_mcp_session s WHERE s.session_id = %s LIMIT 1""")  # noqa: S608 - our own field names
        params += [key_id, transport, *hit_params, session_id]
        with self._ocore_bookkeeping() as cr:
            cr.execute(";\n".join(statements), params)
            row = cr.fetchone()
        if touch and row and row[-1] is not None:
            touch.done()
        if not row:
            return None, None
        values = {"id": row[0], **dict(zip(SESSION_FIELDS, row[1:-1], strict=True))}
        used = row[-1]
        if used is None or stream is not None:
            return values, used
        return values, (used > 0, abs(used))

    @api.model
    def _ocore_open_session_counted(self, key_id, limit, **open_kw):
        """``ocore.mcp.session._ocore_open`` on the bookkeeping connection (one autocommitted statement, its
        INSERT planned once per connection, no BEGIN and COMMIT of the request's connection), the session
        inserted only when the rate-limit hit of its ``initialize`` admits it, the key's last use refreshed
        as ``ocore.mcp.rate.limit._ocore_begin`` does. Returns (session or an empty recordset, counted):
        counted as ``_ocore_session_begin``'s, for ``_ocore_count_request``."""
        rate = self.env["ocore.mcp.rate.limit"]
        touch = key_touch(self.env.cr.dbname, key_id)
        before = (touch.sql + ";", touch.params) if touch else None
        condition = ("ocore_mcp_rate_hit(%s, %s, %s, %s) > 0",
                     (rate.LOCK_NAMESPACE, key_id, limit, rate.WINDOW_SECONDS))
        with self._ocore_bookkeeping() as cr:
            session = self.env["ocore.mcp.session"]._ocore_open(key_id, cr=cr, before=before, condition=condition,
                                                                 wait_for_flush=False, **open_kw)
        if touch:
            touch.done()
        # admitted: at most the ring's fill, not read back (nothing shows it); refused: the limit
        return session, ((True, 1) if session else (False, limit))

    def _ocore_notification(self, conn, method, params):
        if method == "notifications/cancelled" and conn.session:
            request_id = (params or {}).get("requestId")
            if request_id is not None:
                hub.publish(self.env.cr, conn.session_id, {"t": "cancel", "r": request_id})

    # -- lifecycle ---------------------------------------------------------------

    def _ocore_capabilities(self):
        return {
            "tools": {"listChanged": True},  # server actions made tools, tools switched off (admins)
            "prompts": {"listChanged": False},
            "resources": {"listChanged": False, "subscribe": True},  # models/mcp_subscription.py
            "completions": {},
            "logging": {},
        }

    def _ocore_server_info(self):
        return {"name": SERVER_NAME, "title": "oCore MCP for Odoo", "version": SERVER_VERSION}

    def _ocore_instructions(self, conn):
        s = conn.settings
        return INSTRUCTIONS.format(
            version=release.version, slug=s["slug"], environment=s["environment"]
        ) + COMMON_PARAMS_HELP

    def _mcp_initialize(self, conn, request, request_id):
        return {
            "protocolVersion": conn.protocol_version,
            "capabilities": self._ocore_capabilities(),
            "serverInfo": self._ocore_server_info(),
            "instructions": self._ocore_instructions(conn),
        }

    def _mcp_discover(self, conn, request, request_id):
        return {
            "supportedVersions": list(protocol.KNOWN_PROTOCOL_VERSIONS),
            "capabilities": self._ocore_capabilities(),
            "instructions": self._ocore_instructions(conn),
            "_meta": {protocol.SERVER_INFO_META_KEY: self._ocore_server_info()},
            "resultType": "complete",
            "ttlMs": 0,
            "cacheScope": "private",
        }

    def _mcp_ping(self, conn, request, request_id):
        return {}

    def _mcp_set_level(self, conn, request, request_id):
        level = request.params.level
        if conn.session:
            conn.session.write({"log_level": level})
        conn.log_level = level
        return {}

    # -- tools -------------------------------------------------------------------

    def _ocore_is_admin(self, conn):
        return self.env["res.users"].browse(conn.auth.user_id)._is_system()

    def _ocore_full_name(self, spec, conn):
        prefix = PLATFORM_PREFIX if spec.meta.platform else conn.settings["slug"]
        return f"{prefix}_{spec.name}"

    def _ocore_visible_tools(self, conn):
        """[(full name, spec)] this connection may see, in a stable order.

        Kept per process in the registry's ormcache (derived data: every worker empties it when the
        registry's caches are cleared, which a module install, a server-action tool or a tool switch
        change, a group or a system parameter change does) under everything else the list depends on
        (:meth:`_ocore_visibility_signature`): tools/list and the resource checks read it on every request.
        """
        return list(self._ocore_visible_tools_cached(self._ocore_visibility_signature(conn), conn))

    def _ocore_visibility_signature(self, conn):
        """What the visible tools depend on besides the registry's caches: the key owner, the key's scope,
        the session's filters and the settings. An extension whose visibility reads anything else adds it
        here (or clears the registry's caches when it changes)."""
        settings = conn.settings
        return json.dumps([conn.auth.user_id, conn.scope, conn.instances, conn.categories, settings["slug"],
                           settings["write_enabled"]], sort_keys=True, default=str)

    @tools.ormcache("signature")
    def _ocore_visible_tools_cached(self, signature, conn):
        toolset = self.env["ocore.mcp.toolset"]
        specs = toolset._ocore_tool_specs()
        is_admin = self._ocore_is_admin(conn)
        visible = []
        for spec in specs.values():
            if policy.visibility_refusal(spec, conn, is_admin) is None and toolset._ocore_instance_refusal(
                    spec, conn) is None and not self._ocore_write_hidden(spec, conn):
                visible.append((self._ocore_full_name(spec, conn), spec))
        visible.sort(key=lambda item: (item[1].meta.platform is False, item[1].category, item[0]))
        return tuple(visible)

    def _ocore_write_hidden(self, spec, conn):
        """A write or destructive tool is not offered to a read-only key or on an instance with writes off
        (calling it would be refused); a tool some of whose calls only read (``readonly_when``) stays."""
        if not spec.meta.requires_write or spec.meta.readonly_when is not None:
            return False
        return bool(conn.scope["read_only"] or not conn.settings["write_enabled"])

    def _ocore_resolve_tool(self, conn, full_name):
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        slug = conn.settings["slug"]
        for prefix, platform in ((f"{slug}_", False), (f"{PLATFORM_PREFIX}_", True)):
            if full_name.startswith(prefix):
                spec = specs.get(full_name[len(prefix) :])
                if spec and spec.meta.platform == platform:
                    return spec
        raise policy.Refusal("unknown_tool", f"no tool named {full_name!r} on instance {slug}")

    def _ocore_tool_description(self, spec, conn):
        """Extension point (e.g. the knowledge addon's auto-context prefix)."""
        return spec.description

    def _ocore_tool_definition(self, full_name, spec, conn):
        # the title, the annotations that differ from the MCP defaults and the output schema
        # (lib/annotations.py), each in the revisions that define it: every byte here repeats in each tool
        # of tools/list
        definition = {
            "name": full_name,
            "description": self._ocore_tool_description(spec, conn),
            "inputSchema": spec.input_schema,
        }
        version = conn.protocol_version
        if version == "2024-11-05":  # no annotations, title nor structured output yet
            return definition
        annotations = tool_annotations.annotations_of(spec)
        title = tool_annotations.title_of(spec)
        if version == "2025-03-26":  # the one revision with the title in the annotations, no outputSchema
            definition["annotations"] = {**annotations, "title": title}
            return definition
        definition.update(annotations=annotations, title=title, outputSchema=spec.meta.output_schema or OUTPUT_SCHEMA)
        return definition

    def _ocore_tool_definitions(self, conn, chunk):
        """The definitions of one tools/list page ([(full name, spec)]). Extension point for data shared
        by every description of a listing: compute it once here, then pass it on, e.g. in the context.

        Built once per process and kept in the registry's ormcache (emptied with it, like the visible
        tools) under the protocol revision, the page's tools and the text values of the context (where
        such shared data travels: the knowledge addon's auto-context prefix). The definitions are shared
        between requests: never modify one (protocol.serialize_tools_list reuses their wire form)."""
        context = tuple(sorted((k, v) for k, v in self.env.context.items() if isinstance(v, str)))
        key = (conn.protocol_version, context, tuple((name, id(spec)) for name, spec in chunk))
        return list(self._ocore_tool_definitions_cached(key, conn, chunk))

    @tools.ormcache("key")
    def _ocore_tool_definitions_cached(self, key, conn, chunk):
        return tuple(self._ocore_tool_definition(name, spec, conn) for name, spec in chunk)

    def _mcp_tools_list(self, conn, request, request_id):
        visible = self._ocore_visible_tools(conn)
        page = conn.settings["tools_page_size"]
        cursor = request.params.cursor if request.params else None
        start = 0
        if cursor:
            try:
                start = int(base64.urlsafe_b64decode(cursor.encode()).decode())
            except (ValueError, UnicodeDecodeError):
                raise protocol.ProtocolError(protocol.INVALID_PARAMS, "Invalid cursor") from None
        chunk = visible[start : start + page]
        result = {"tools": self._ocore_tool_definitions(conn, chunk)}
        if start + page < len(visible):
            result["nextCursor"] = base64.urlsafe_b64encode(str(start + page).encode()).decode()
        if protocol.is_modern(conn.protocol_version):
            result.update(resultType="complete", ttlMs=0, cacheScope="private")
        return result

    def _mcp_tools_call(self, conn, request, request_id):
        params = request.params
        meta = params.meta
        # mcp-types parses _meta into a plain dict keyed by the Python field name ("progress_token")
        if isinstance(meta, dict):
            progress_token = meta.get("progress_token", meta.get("progressToken"))
        else:
            progress_token = getattr(meta, "progress_token", None) if meta else None
        if protocol.is_modern(conn.protocol_version):  # a retry answering our InputRequiredResult
            conn.input_responses = getattr(params, "input_responses", None)
            conn.request_state = getattr(params, "request_state", None)
        result = self._ocore_call_tool(conn, params.name, dict(params.arguments or {}), request_id, progress_token)
        if protocol.is_modern(conn.protocol_version):
            result.setdefault("resultType", "complete")
        return result

    # -- the pipeline ----------------------------------------------------------------

    def _ocore_call_tool(self, conn, full_name, arguments, request_id=None, progress_token=None):
        """Run one tool call through every check, in a savepoint, audited. The steps, in order:

        1. ``_ocore_admit``: the tool, every policy check (a Refusal ends the call: ``_ocore_refuse_call``
           audits it);
        2. ``_ocore_start_call``: the call's context, its rate-limit hit and 'running' audit row, one
           statement committed on its own (a refused hit ends the call like step 1's refusals);
        3. ``_ocore_run``: the tool as the key owner, under its deadline, in a savepoint;
        4. ``_ocore_finish_call``: the shaped result, the audit row completed in the tool's transaction.
        """
        started = time.monotonic()
        base = {**audit.base_values(conn), "event": "call", "tool_name": full_name, "request_id": request_id}
        try:
            admitted = self._ocore_admit(conn, full_name, arguments, base, count=False)
            call = self._ocore_start_call(conn, full_name, arguments, admitted, base, request_id, progress_token)
        except policy.Refusal as exc:
            return self._ocore_refuse_call(base, arguments, exc, started)
        outcome = self._ocore_run(call, admitted.tool_env)
        try:
            return self._ocore_finish_call(call, outcome, started)
        finally:
            self._ocore_close_call_transaction(call, commit=False)  # still open: a failure before the outcome

    def _ocore_admit(self, conn, full_name, arguments, base, count=True):
        """Step 1: every check of the call, then (``count``) its rate-limit hit, committed on its own; with
        ``count=False`` the hit is left to ``_ocore_start_call``, in the statement of the audit row.
        Returns an ``_Admitted`` or raises a Refusal; ``base`` (the audit values) learns the tool."""
        spec = self._ocore_resolve_tool(conn, full_name)
        base.update(tool=spec.name, category=spec.category)
        args = self._ocore_check_call(spec, conn, arguments)
        confirm = bool(arguments.get("confirm"))
        dry_run = bool(arguments.get("dry_run")) and spec.meta.supports_dry_run
        if arguments.get("dry_run") and not spec.meta.supports_dry_run:
            raise policy.Refusal("invalid_input", f"{spec.name!r} does not support dry_run")
        tool_env = self._ocore_tool_env(conn, arguments.get("context"))
        # last check: a destructive call is confirmed (confirm: true, the human through elicitation, or an
        # approval in the backend: models/mcp_approval.py)
        confirm = self.env["ocore.mcp.approval"]._ocore_confirm_step(conn, spec, full_name, arguments, confirm,
                                                                      dry_run, base)
        # read before the bookkeeping commit empties the ORM cache
        session_stale = bool(conn.session and conn.session_id and (
            not conn.session.last_seen
            or conn.session.last_seen < fields.Datetime.subtract(fields.Datetime.now(), seconds=30)))
        if count:
            with self._ocore_bookkeeping() as cr:
                self._ocore_check_rate(conn, cr)
        return _Admitted(spec, args, confirm, dry_run, tool_env, session_stale, count)

    def _ocore_check_call(self, spec, conn, arguments):
        """The policy checks of a call that depend on the tool and its arguments; returns the validated
        arguments or raises a Refusal (visibility, schema, common parameters, identifiers, model
        allowlist, write guards)."""
        # (whether the owner is a system administrator matters only for an admin-only tool)
        refusal = policy.visibility_refusal(spec, conn, spec.meta.admin_only and self._ocore_is_admin(conn)) or \
            self.env["ocore.mcp.toolset"]._ocore_instance_refusal(spec, conn)
        if refusal:
            raise refusal
        try:
            args = spec.validate(arguments)
        except ValueError as exc:
            raise policy.Refusal("invalid_input", str(exc)) from None
        self._ocore_check_common(arguments)
        policy.check_identifiers(spec, args)
        policy.check_models(spec, args, conn.scope)
        policy.check_write(spec, conn, args)
        return args

    def _ocore_check_rate(self, conn, cr=None):
        """The call's rate-limit hit (on the bookkeeping cursor ``cr``), or a Refusal."""
        limit = policy.effective_rate_limit(conn.scope, conn.settings)
        allowed, used = self.env["ocore.mcp.rate.limit"]._ocore_hit(conn.auth.id, limit, cr=cr)
        if not allowed:
            raise self._ocore_rate_refusal(used, limit)

    def _ocore_rate_refusal(self, used, limit):
        return policy.Refusal("rate_limited", f"{used} calls in the last minute for this API key "
                                           f"(limit {limit}/min); retry later")

    def _ocore_refuse_call(self, base, arguments, exc, started):
        """A refused call: its audit row, committed like any call's bookkeeping, and the error result."""
        with self._ocore_bookkeeping() as cr:
            audit.insert(
                cr,
                {**base, "params": arguments, "status": "refused", "success": False,
                 "refusal_reason": exc.code, "error_message": str(exc),
                 "latency_ms": int((time.monotonic() - started) * 1000)},
            )
        if getattr(exc, "protocol_error", None) is not None:  # e.g. MissingRequiredClientCapability
            raise exc.protocol_error
        return getattr(exc, "result", None) or self._ocore_error_result(str(exc))

    def _ocore_start_call(self, conn, full_name, arguments, admitted, base, request_id, progress_token):
        """Step 2: the call's context, its 'running' audit row and the key's / session's last use, in the
        statement of the rate-limit hit (unless ``_ocore_admit`` made it), committed on its own before the
        tool runs: the limit is exact across workers and a crash mid-call leaves a trace. Raises the
        rate limit's Refusal (nothing written)."""
        spec = admitted.spec
        call = CallContext(
            connection=conn,
            spec=spec,
            full_name=full_name,
            arguments=admitted.args,
            timeout=policy.effective_timeout(spec, arguments.get("timeout_seconds"), conn.settings),
            max_response_kb=int(arguments.get("max_response_size")
                                or max(conn.settings["max_response_kb"], spec.meta.min_response_kb)),
            confirm=admitted.confirm,
            dry_run=admitted.dry_run,
            request_id=request_id,
            progress_token=progress_token,
        )
        limit = None if admitted.counted else policy.effective_rate_limit(conn.scope, conn.settings)
        row = {**base, "params": arguments, "status": "running", "dry_run": admitted.dry_run}
        with self._ocore_bookkeeping() as cr:
            allowed, used, call.audit_id = self.env["ocore.mcp.rate.limit"]._ocore_begin(
                conn.auth.id, limit, row, conn.session.id if admitted.session_stale else None, cr=cr)
        if not allowed:
            raise self._ocore_rate_refusal(used, limit)
        return call

    def _ocore_finish_call(self, call, outcome, started):
        """Step 4: the result the client gets (shaped to the call's size), the audit row completed."""
        latency = int((time.monotonic() - started) * 1000)
        if outcome["ok"]:
            text, structured, _truncated = shape(outcome["value"], call.max_response_kb)
            if call.dry_run:
                structured = {"dry_run": True, "rolled_back": True, "would_return": structured}
                text = json.dumps(structured, default=str, ensure_ascii=False)
            logged = text
            for secret in call.secrets:
                logged = logged.replace(secret, "[REDACTED]")
            self._ocore_audit_outcome(call.audit_id, {"status": "success", "success": True,
                                                      "result_summary": logged, "latency_ms": latency}, call)
            if not call.spec.meta.untrusted:
                return {"content": [{"type": "text", "text": text}], "structuredContent": structured, "isError": False}
            # one boundary per call; structuredContent stays valid against the outputSchema: named in _meta
            tag = untrusted_boundary()
            return {
                "content": [{"type": "text", "text": mark_untrusted(text, tag)}],
                "structuredContent": structured,
                "isError": False,
                "_meta": untrusted_meta(tag, ("content", "structuredContent")),
            }
        message = outcome["error"]
        # the same cause gets the same status: a Refusal raised inside the tool is "refused", like the
        # schema's and the policy's before it ran
        status = "refused" if outcome.get("refused") else "error"
        self._ocore_audit_outcome(call.audit_id, {"status": status, "success": False, "error_message": message,
                                                  "result_summary": message, "latency_ms": latency,
                                                  "refusal_reason": outcome.get("refusal")}, call)
        # an error text other than a refusal, a timeout or a cancellation is an exception's: it may echo
        # record data (a UserError naming a record, a database error quoting a value), marked like a result
        tag = untrusted_boundary() if call.spec.meta.untrusted and not outcome.get("refusal") else None
        if outcome.get("value") is not None:  # policy.ToolFailed: the tool's output with the error
            text, structured, _truncated = shape(outcome["value"], call.max_response_kb)
            if not call.spec.meta.untrusted:
                return {"content": [{"type": "text", "text": f"{message}\n{text}"}],
                        "structuredContent": structured, "isError": True}
            tag = tag or untrusted_boundary()
            return {"content": [{"type": "text", "text": mark_untrusted(f"{message}\n{text}", tag)}],
                    "structuredContent": structured, "isError": True,
                    "_meta": untrusted_meta(tag, ("content", "structuredContent"))}
        if tag:
            return {**self._ocore_error_result(mark_untrusted_error(message, tag)),
                    "_meta": untrusted_meta(tag, ("content",))}
        return self._ocore_error_result(message)

    def _ocore_audit_outcome(self, audit_id, values, call=None):
        """Complete a call's audit row. When the request's database connection died under the call
        (PostgreSQL restarted, the backend was terminated), the outcome goes through a new connection:
        the row must not stay 'running'. A read tool's own transaction (``call``,
        ``_ocore_open_call_transaction``) is committed by the outcome's statement."""
        cr = self.env.cr
        if call is not None and getattr(call, "own_transaction", None) is not None and not cr.closed:
            cr.flush()  # what the ORM still holds (and the pre-commit hooks) goes in the call's transaction
            audit.update(cr, audit_id, values, then="COMMIT")
            self._ocore_close_call_transaction(call, commit=True)
            return
        if not cr.closed:
            audit.update(cr, audit_id, values)
            return
        deadline = time.monotonic() + AUDIT_RECONNECT_SECONDS  # e.g. while PostgreSQL restarts
        while True:
            try:
                with self.env.registry.cursor() as fresh:
                    audit.update(fresh, audit_id, values)
                return
            except psycopg2.Error as exc:
                if time.monotonic() > deadline:
                    _logger.warning("MCP audit row %s not completed: database unavailable for %ss (%s); the "
                                    "autovacuum marks it interrupted", audit_id, AUDIT_RECONNECT_SECONDS, exc)
                    return
                time.sleep(0.5)

    @contextlib.contextmanager
    def _ocore_bookkeeping(self):
        """End the request's transaction (it only read so far, or wrote what must be kept, e.g. a new
        session: its locks are released, and what follows starts from a snapshot that sees the block's
        rows) and run the block's statements each in a transaction of its own, on a bookkeeping connection
        of this process (``service/bookkeeping.py``: autocommit, so no BEGIN and COMMIT round trips, and a
        single statement runs at READ COMMITTED: the rate-limit count sees every hit other workers
        committed; its plans stay cached, unlike the request's connection's). Yields that connection's
        cursor. While Odoo runs a test nothing is committed (its cursor refuses it): the statements join
        its transaction, on its cursor."""
        cr = self.env.cr
        if compat.in_odoo_test():
            yield cr
            return
        cr.commit()  # pylint: disable=invalid-commit  # the call's checks only read: start the bookkeeping
        with bookkeeping.borrowed(cr.dbname) as bookkeeping_cr:
            yield bookkeeping_cr

    def _ocore_bookkeeping_transaction(self):
        """End the request's transaction (it only read so far) and start a READ COMMITTED one for the
        bookkeeping of the call: the rate-limit count sees every hit other workers committed, and two
        calls refreshing the same key's last use never fail each other (as they would under Odoo's
        REPEATABLE READ). The checkpoint below commits it; the tool then runs in a transaction of its
        own. Under Odoo's tests nothing is committed (their cursor refuses it).
        """
        if compat.in_odoo_test():
            return
        cr = self.env.cr
        cr.commit()  # pylint: disable=invalid-commit  # the call's checks only read: start the bookkeeping
        # sent with the next BEGIN (no round trip of its own); the checkpoint restores Odoo's level
        cr._cnx.isolation_level = ISOLATION_LEVEL_READ_COMMITTED

    def _ocore_commit_checkpoint(self):
        """Commit the rate-limit hit and the 'running' audit row before the tool runs (or a refused call's
        audit row), and give the connection back Odoo's isolation level.

        Skipped while Odoo runs a test: a TransactionCase's cursor refuses
        commits (the test's transaction is rolled back as a whole).
        """
        if compat.in_odoo_test():
            return
        cr = self.env.cr
        cr.commit()  # pylint: disable=invalid-commit  # pipeline checkpoint before the tool runs
        cr._cnx.isolation_level = ISOLATION_LEVEL_REPEATABLE_READ  # the tool runs as any Odoo transaction

    def _ocore_check_common(self, arguments):
        """The common parameters as their schema says (integers in range, booleans), or a Refusal."""

        def integer(value):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        for name, low, high in (("timeout_seconds", 1, 120), ("max_response_size", 1, None)):
            value = arguments.get(name)
            if value is None:
                continue
            number = integer(value)
            if number is None or number < low or (high is not None and number > high):
                bounds = f"between {low} and {high}" if high is not None else f"of at least {low}"
                raise policy.Refusal("invalid_input", f"{name}: must be an integer {bounds}, got {value!r}")
            arguments[name] = number
        for name in ("confirm", "dry_run"):
            value = arguments.get(name)
            if value is not None and not isinstance(value, bool):
                raise policy.Refusal("invalid_input", f"{name}: must be true or false, got {value!r}")

    def _ocore_error_result(self, message):
        return {"content": [{"type": "text", "text": message}], "isError": True}

    def _ocore_tool_env(self, conn, context):
        """The key owner's environment (ACLs, record rules, companies) for this call."""
        auth = conn.auth
        user = self.env["res.users"].browse(auth.user_id)
        company_id = auth.company_id
        ctx = {"lang": auth.lang or "en_US", "tz": auth.tz or "UTC"}
        if context is not None and not isinstance(context, dict):
            raise policy.Refusal("invalid_input", "context must be an object")
        for name, value in (context or {}).items():
            if name == "company_id":
                if not isinstance(value, int) or value not in user.company_ids.ids:
                    raise policy.Refusal(
                        "invalid_input", f"context.company_id {value!r} is not one of the key owner's companies"
                    )
                company_id = value
            elif name == "lang":
                if value not in dict(self.env["res.lang"].get_installed()):
                    raise policy.Refusal("invalid_input", f"context.lang {value!r} is not an installed language")
                ctx["lang"] = value
            elif name == "tz":
                import pytz

                if value not in pytz.all_timezones_set:
                    raise policy.Refusal("invalid_input", f"context.tz {value!r} is not a time zone")
                ctx["tz"] = value
            else:
                raise policy.Refusal("invalid_input", f"context.{name} is not supported (lang, tz, company_id)")
        ctx["allowed_company_ids"] = [company_id]
        return api.Environment(self.env.cr, auth.user_id, ctx)

    def _ocore_run(self, call, tool_env):
        """Run the tool as the key owner under the deadline, in a savepoint (a read tool: in a transaction
        of its own, rolled back on failure)."""
        cr = self.env.cr
        toolset = tool_env[call.spec.model_name]
        method = getattr(toolset, call.spec.method_name)
        token = set_current_call(call)
        inflight = None
        try:
            self._ocore_statement_limits(call)
            with Deadline(call.timeout) as deadline:
                call.deadline = deadline
                if call.connection.session:
                    inflight = hub.track_call(cr.dbname, call.connection.session_id, call.request_id, deadline)
                value = self._ocore_invoke(call, method, tool_env)
            return {"ok": True, "value": value}
        except CallTimeout:
            return {"ok": False, "error": f"timeout: the call exceeded timeout_seconds={call.timeout}; "
                    "nothing was written. Increase timeout_seconds (max 120).", "refusal": "timeout"}
        except CallCancelled:
            return {"ok": False, "error": "cancelled by the client; nothing was written", "refusal": "cancelled"}
        except CallInterrupted:
            return {"ok": False, "error": "interrupted; nothing was written"}
        except policy.Refusal as exc:  # a tool's own input or policy check: refused, as before the run
            return {"ok": False, "error": str(exc), "refusal": exc.code, "refused": True}
        except policy.ToolFailed as exc:  # rolled back above, output still shown
            return {"ok": False, "error": exc.message, "value": exc.result}
        except psycopg2.errors.QueryCanceled:
            return {"ok": False, "error": f"timeout: a database statement exceeded timeout_seconds={call.timeout} "
                    "(statement_timeout); nothing was written.", "refusal": "timeout"}
        except psycopg2.Error as exc:
            if cr.closed:  # the connection died under the call: PostgreSQL rolled its transaction back
                return {"ok": False, "refusal": "database_unavailable",
                        "error": f"database connection lost during the call ({str(exc).strip()[:1000]}); "
                        "nothing was written. Retry the call."}
            return {"ok": False, "error": errors.error_text(exc)}
        except Exception as exc:  # noqa: BLE001 - a tool failure is a result, not a crash
            if not isinstance(exc, errors.EXPECTED):
                _logger.exception("MCP tool %s failed", call.full_name)
            # the one exception -> text mapping (lib/errors.py), shared with the batch tools' items
            return {"ok": False, "error": errors.error_text(exc, call.connection.auth.login, call.spec.name)}
        finally:
            # statement_timeout stays SET LOCAL until the end of this short transaction: it applies
            # per statement, so the audit update that follows gets its own full budget.
            if inflight:
                hub.untrack_call(inflight)
            reset_current_call(token)

    def _ocore_statement_limits(self, call):
        """The call's statement timeout. A read tool's transaction writes nothing but its audit outcome:
        committed without waiting for the WAL flush, like the 'running' row before it (synchronous_commit
        off: a crash of PostgreSQL itself may lose the last few hundred milliseconds of such commits, never
        part of one; the row then stays 'running' and is marked interrupted). Writes stay synchronous."""
        if call.spec.kind == "read":
            limits = "SET LOCAL statement_timeout = %s; SET LOCAL synchronous_commit TO OFF"
            if self._ocore_open_call_transaction(call, limits, (f"{call.timeout}s",)):
                return
            self.env.cr.execute(limits, (f"{call.timeout}s",))
        else:
            self.env.cr.execute("SET LOCAL statement_timeout = %s", (f"{call.timeout}s",))

    def _ocore_open_call_transaction(self, call, limits, params):
        """Open the transaction of a read tool (not a dry run) and set its ``limits`` in one round trip,
        and let the outcome commit it in one more (``_ocore_audit_outcome``): the statements a bare ORM
        call sends (BEGIN, ..., COMMIT), each carrying the call's own. psycopg2 sends its BEGIN alone and
        its COMMIT alone, so the connection is switched to autocommit for the call (without the round trips
        psycopg2 spends on restoring the session's isolation defaults: they are cleared first, and put back
        after) and the pipeline sends BEGIN and COMMIT itself; Odoo's own end of a transaction (caches,
        commit hooks) still runs, through ``cr.commit()`` / ``cr.rollback()``, which then send nothing.
        Only when the request's transaction is ended (the bookkeeping committed it) and not under Odoo's
        tests (their cursor never commits). Returns whether it was opened."""
        cr = self.env.cr
        cnx = cr._cnx
        if (call.dry_run or call.spec.meta.commits or compat.in_odoo_test() or cnx.autocommit
                or cnx.status != psycopg2.extensions.STATUS_READY):
            return False
        saved = (cnx.isolation_level, cnx.readonly, cnx.deferrable)
        begin = "BEGIN ISOLATION LEVEL " + _ISOLATION_NAMES.get(saved[0], "REPEATABLE READ")
        begin += {True: " READ ONLY", False: " READ WRITE"}.get(saved[1], "")
        begin += {True: " DEFERRABLE", False: " NOT DEFERRABLE"}.get(saved[2], "")
        # outside a transaction this sends nothing
        cnx.set_session(isolation_level="DEFAULT", readonly="DEFAULT", deferrable="DEFAULT")
        cnx.autocommit = True
        call.own_transaction = saved
        try:
            cr.execute(f"{begin}; {limits}", params)
        except BaseException:
            self._ocore_close_call_transaction(call, commit=False)
            raise
        return True

    def _ocore_close_call_transaction(self, call, commit):
        """End the transaction ``_ocore_open_call_transaction`` opened (``commit``: the caller just sent its
        COMMIT; else it is rolled back here) and give the connection back its mode. Nothing when none is open."""
        saved = getattr(call, "own_transaction", None)
        if saved is None:
            return
        call.own_transaction = None
        cr = self.env.cr
        cnx = cr._cnx
        if cnx.closed:
            return
        try:
            if not commit:
                cr.execute("ROLLBACK")
            elif cnx.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                cr.execute("COMMIT")  # the outcome's statement did not end it (libpq's own status: no round trip)
        finally:
            if not cnx.closed:
                # Odoo's end of the transaction (caches, hooks): in autocommit psycopg2 sends nothing
                if commit:
                    cr.commit()  # pylint: disable=invalid-commit
                else:
                    cr.rollback()
            if not cnx.closed:
                cnx.autocommit = False
                cnx.set_session(*(value if value is not None else "DEFAULT" for value in saved))

    def _ocore_invoke(self, call, method, tool_env):
        """The tool method itself, in one of three isolation modes: a tool that commits by itself runs
        bare; a read tool (not a dry run) runs in its own transaction, rolled back whole on failure (no
        savepoint round trips); anything else runs in a savepoint, rolled back on failure or dry run."""
        cr = self.env.cr
        if call.spec.meta.commits:
            return method(**call.arguments)
        if call.spec.kind == "read" and not call.dry_run and not compat.in_odoo_test():
            # the transaction holds nothing but this call: the checkpoint committed the rest
            try:
                return method(**call.arguments)
            except BaseException:
                if getattr(call, "own_transaction", None) is not None:
                    self._ocore_close_call_transaction(call, commit=False)
                elif not cr.closed:
                    cr.rollback()
                raise
        try:
            with cr.savepoint(flush=True):
                value = method(**call.arguments)
                if call.dry_run:
                    tool_env.flush_all()
                    raise _DryRun(value)
        except _DryRun as dry:
            value = dry.result
        return value

    # -- prompts -------------------------------------------------------------------

    def _mcp_prompts_list(self, conn, request, request_id):
        specs = self.env["ocore.mcp.prompts"]._ocore_prompt_specs()
        prompts = []
        for name, spec in sorted(specs.items()):
            prompts.append(
                {
                    "name": name,
                    "description": spec["description"],
                    "arguments": [
                        {"name": a[0], "description": a[1], "required": bool(a[2])} for a in spec["arguments"]
                    ],
                }
            )
        result = {"prompts": prompts}
        if protocol.is_modern(conn.protocol_version):
            result.update(resultType="complete", ttlMs=0, cacheScope="private")
        return result

    def _ocore_prompt_spec(self, name, arguments):
        """The prompt's spec, or a ProtocolError for an unknown prompt or wrong arguments."""
        spec = self.env["ocore.mcp.prompts"]._ocore_prompt_specs().get(name)
        if not spec:
            raise protocol.ProtocolError(protocol.INVALID_PARAMS, f"Unknown prompt: {name}")
        missing = [a[0] for a in spec["arguments"] if a[2] and not arguments.get(a[0])]
        if missing:
            raise protocol.ProtocolError(protocol.INVALID_PARAMS, f"Missing required argument(s): {', '.join(missing)}")
        unknown = set(arguments) - {a[0] for a in spec["arguments"]}
        if unknown:
            raise protocol.ProtocolError(protocol.INVALID_PARAMS, f"Unknown argument(s): {', '.join(sorted(unknown))}")
        return spec

    def _mcp_prompts_get(self, conn, request, request_id):
        """Audited and rate-limited like tools/call: the rate-limit hit and a 'running' audit row are
        committed before the prompt runs (with the key owner's rights); the row gets the outcome."""
        name = request.params.name
        arguments = dict(request.params.arguments or {})
        started = time.monotonic()
        audit_id = self._ocore_count_request(conn, request_id, "prompts/get", {
            "event": "prompt", "tool_name": str(name)[:200], "tool": str(name)[:200], "category": "prompt",
            "params": arguments, "status": "running"})
        outcome = {"status": "error", "success": False}
        token = None
        try:
            spec = self._ocore_prompt_spec(name, arguments)
            env = self._ocore_tool_env(conn, None)
            token = set_current_call(CallContext(conn, None, name, arguments, 15, 50))
            output = getattr(env["ocore.mcp.prompts"], spec["method"])(**arguments)
            if isinstance(output, str):
                output = [("user", output)]
            outcome = {"status": "success", "success": True,
                       "result_summary": "\n".join(text for _role, text in output)}
        except protocol.ProtocolError as exc:
            outcome.update(status="refused", refusal_reason="invalid_input", error_message=exc.message)
            raise
        except policy.Refusal as exc:
            outcome.update(status="refused", refusal_reason=exc.code, error_message=str(exc))
            raise protocol.ProtocolError(protocol.INVALID_PARAMS, str(exc)) from None
        except Exception as exc:
            _logger.exception("MCP prompt %s failed", name)
            text = f"prompt {name} failed: {type(exc).__name__}: {exc}"
            outcome.update(error_message=text)
            raise protocol.ProtocolError(protocol.INTERNAL_ERROR, text) from None
        finally:
            if token is not None:
                reset_current_call(token)
            if audit_id:
                self._ocore_audit_outcome(audit_id, {**outcome,
                                                     "latency_ms": int((time.monotonic() - started) * 1000)})
        result = {
            "description": spec["description"],
            "messages": [{"role": role, "content": {"type": "text", "text": text}} for role, text in output],
        }
        if protocol.is_modern(conn.protocol_version):
            result["resultType"] = "complete"
        return result
