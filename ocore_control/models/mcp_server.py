"""Federation: the control plane's MCP endpoint serves the tools of its organization's instances.

tools/list = the platform tools + the union of the lists of every running instance the key may see
(names ``<slug>_<tool>`` passed through unchanged); tools/call ``<slug>_x`` is forwarded to that
instance as one stateless 2026-07-28 request, signed for the key owner (an EdDSA assertion the
instance verifies, maps to its own user and checks with its own policy). The control plane's own
database tools are not offered: it is not an instance.
"""

import dataclasses
import hashlib
import json
import logging
import time
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from odoo import api, fields, models
from odoo.http import request

from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.lib import protocol as P
from odoo.addons.ocore_mcp.lib.shaping import UNTRUSTED_META_KEY
from odoo.addons.ocore_mcp.models.mcp_control_link import stricter_scope
from odoo.addons.ocore_mcp.service import audit, bookkeeping
from odoo.addons.ocore_mcp.service import elicitation as elicit
from odoo.addons.ocore_mcp.service import policy as pol
from odoo.addons.ocore_mcp.service.notify import hub

from ..lib import http
from .control_instance import INSTANCE_PATH, InstanceError, mcp_request, sign_assertion

_logger = logging.getLogger(__name__)

LIST_TIMEOUT = 5.0  # an instance slower than this drops out of tools/list (status shown by ocore_list_instances)
CACHE_SECONDS = 60  # a tool list is refetched after this long
FAILURE_RETRY_SECONDS = 15  # an instance that failed is retried after this long
CALL_MARGIN = 5  # seconds on top of the call's own timeout
DEFAULT_CALL_TIMEOUT = 30
# instance tools that run through the host agent when the instance is managed by one: (kind, agent call)
LIST_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
AGENT_TOOLS = {"odoo_logs": "read", "list_backups": "read", "backup_database": "write",
               "restore_database": "destructive"}


_PARSED = {}  # (instance, cache key, fetched_at) -> the list parsed once per process (same objects each time,
# so that the protocol's per-definition wire cache hits); a cache only: the database holds the lists
_PARSED_MAX = 256
# instance tool name -> whether a call of it may ask the human (a destructive tool: its input schema declares
# ``confirm``), learnt from the lists this process parsed; a hint for the answer's shape only (a 2025 session's
# POST is answered with an SSE stream that can carry the question): the instance decides
_MAY_CONFIRM = {}
_MAY_CONFIRM_MAX = 50000
# what an instance's question may be to be relayed to the human (an instance asks a form with one boolean
# ``confirm`` field and a description of the call: anything else, a URL, a password field, another request, is
# never relayed): its message's and field texts' lengths, and the size of its sealed requestState
QUESTION_MAX_CHARS = 4000
FIELD_TEXT_MAX_CHARS = 500
STATE_MAX_CHARS = 2048


def _plain(text, limit):
    """``text`` with its control and format characters (a terminal escape, a right-to-left override that
    reverses what the human reads) replaced, or None when it is not a string of at most ``limit``."""
    if not isinstance(text, str) or len(text) > limit:
        return None
    return "".join(ch if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf") else "\ufffd" for ch in text)


def relayable_question(slug, asked):
    """(params of the ``elicitation/create`` to relay, requestState) of an instance's InputRequiredResult, or
    (None, why not). Relayed only: one request, ``confirm``, a form-mode ``elicitation/create`` whose schema is one
    boolean ``confirm`` field, a bounded message, a bounded printable state. The question is rebuilt from these
    (nothing else the instance wrote reaches the client) and its message says which instance asks: the
    control plane's slug, not what the instance calls itself."""
    requests = asked.get("inputRequests")
    state = asked.get("requestState")
    if not isinstance(requests, dict) or set(requests) != {elicit.INPUT_KEY}:
        return None, "not one confirmation request"
    request = requests[elicit.INPUT_KEY]
    params = request.get("params") if isinstance(request, dict) else None
    if not isinstance(params, dict) or request.get("method") != "elicitation/create":
        return None, "not an elicitation"
    if params.get("mode", "form") != "form":
        return None, "not a form elicitation"
    message = _plain(params.get("message"), QUESTION_MAX_CHARS)
    if not message:
        return None, "no message, or a message too long"
    schema = params.get("requestedSchema")
    if not isinstance(schema, dict) or set(schema) - {"type", "properties", "required"} or \
            schema.get("type") != "object" or not isinstance(schema.get("properties"), dict) or \
            set(schema["properties"]) != {elicit.INPUT_KEY} or schema.get("required", [elicit.INPUT_KEY]) not in (
                [elicit.INPUT_KEY], []):
        return None, "a form asking for more than the confirm box"
    field = schema["properties"][elicit.INPUT_KEY]
    if not isinstance(field, dict) or field.get("type") != "boolean" or \
            set(field) - {"type", "title", "description", "default"} or field.get("default", False) is not False:
        return None, "a confirm field that is not an unticked box"
    box = {"type": "boolean", "default": False}
    for name in ("title", "description"):
        if name in field:
            text = _plain(field[name], FIELD_TEXT_MAX_CHARS)
            if text is None:
                return None, f"a confirm field's {name} too long"
            box[name] = text
    if not bounded_state(state):
        return None, "no requestState, or one too long"
    question = {"message": f"[instance {slug}, through the control plane] {message}",
                "requestedSchema": {"type": "object", "properties": {elicit.INPUT_KEY: box},
                                    "required": [elicit.INPUT_KEY]}}
    return question, state


def bounded_state(state):
    """Whether ``state`` may be an instance's sealed requestState: a printable ASCII string of at most
    ``STATE_MAX_CHARS``."""
    return isinstance(state, str) and 0 < len(state) <= STATE_MAX_CHARS and state.isascii() and state.isprintable()


def relayed_answer(response):
    """A client's answer to the confirmation as the instance gets it: accept with the box ticked, else decline or
    cancel (nothing else of what the client wrote)."""
    action, accepted = elicit.outcome(response)
    return {"action": "accept", "content": {elicit.INPUT_KEY: True}} if accepted else {"action": action}


def call_timeout(arguments):
    """The seconds a forwarded call may take (its ``timeout_seconds`` when a number of 1-120, the instance
    refuses another; else the default) plus the margin: never an error here, after the call's row is written."""
    wanted = arguments.get("timeout_seconds")
    if isinstance(wanted, bool) or not isinstance(wanted, (int, float)) or not 1 <= wanted <= 120:
        wanted = DEFAULT_CALL_TIMEOUT
    return int(wanted) + CALL_MARGIN


def note_tools(tools):
    if len(_MAY_CONFIRM) >= _MAY_CONFIRM_MAX:
        _MAY_CONFIRM.clear()
    for tool in tools:
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            schema = tool.get("inputSchema") if isinstance(tool.get("inputSchema"), dict) else {}
            properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
            _MAY_CONFIRM[tool["name"]] = elicit.INPUT_KEY in properties


def parsed_list(instance_id, cache_key, fetched_at, text):
    key = (instance_id, cache_key, fetched_at)
    tools = _PARSED.get(key)
    if tools is None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        tools = _PARSED[key] = json.loads(text)
        note_tools(tools)
    return tools


def fetch_tools(instance_data, timeout):
    """(tools, error) of one instance, all pages (runs in a worker thread: no database access)."""
    url, slug, assertions, query = instance_data
    tools, cursor = [], None
    try:
        for assertion in assertions:
            params = {"cursor": cursor} if cursor else {}
            result = mcp_request(url, slug, "tools/list", params, assertion, timeout, query)
            tools.extend(result.get("tools") or [])
            cursor = result.get("nextCursor")
            if not cursor:
                return tools, None
        return tools, None
    except InstanceError as exc:
        return None, exc


def outcome_values(result):
    """The audit values of an instance's answer (its text kept as the summary, redacted by the writer)."""
    text = " ".join(c.get("text", "") for c in result.get("content") or [] if isinstance(c, dict))
    values = {"status": "error" if result["isError"] else "success", "success": not result["isError"],
              "result_summary": text}
    if result["isError"]:
        values["error_message"] = text
    return values


def run_after_response(registry, work):
    """``work(cr)`` on a bookkeeping connection of the process, each statement in autocommit with
    ``synchronous_commit off`` (after the response: nothing may escape, a failure is logged)."""
    try:
        with bookkeeping.borrowed(registry.db_name) as cr:
            work(_AsyncCommit(cr))
    except Exception:  # noqa: BLE001 - the client has its answer; the row stays 'running' (marked interrupted)
        _logger.warning("control plane: a forwarded call's audit outcome was not written", exc_info=True)


class _AsyncCommit:
    """A cursor for the audit writer whose statement is preceded by ``SET LOCAL synchronous_commit TO OFF`` in
    the same round trip (one implicit transaction holding that row alone)."""

    PREFIX = "SET LOCAL synchronous_commit TO OFF; "

    def __init__(self, cr):
        self._cr = cr

    def execute(self, query, params=None):
        if isinstance(query, str):
            return self._cr.execute(self.PREFIX + query, params)
        self._cr.execute(self.PREFIX.rstrip("; "))
        return self._cr.execute(query, params)

    def __getattr__(self, name):
        return getattr(self._cr, name)


@compat.table_constraints(("cache_unique", "UNIQUE(instance_id, cache_key)", "One list per instance and key."))
class ToolCache(models.Model):
    """The tool list of an instance as one subject with one scope sees it (shared by every worker)."""

    _name = "ocore.control.tool.cache"
    _description = "Control plane: cached tool list"

    instance_id = fields.Many2one("ocore.control.instance", required=True, ondelete="cascade", index=True)
    cache_key = fields.Char(required=True)
    tools_json = fields.Text()
    error = fields.Char()
    fetched_at = fields.Datetime()


    @api.model
    def _ocore_invalidate(self, instances):
        if instances:
            self.env.cr.execute("DELETE FROM ocore_control_tool_cache WHERE instance_id = ANY(%s)", (instances.ids,))


class McpServerControl(models.AbstractModel):
    _inherit = "ocore.mcp.server"

    # -- who sees what ------------------------------------------------------------------------

    def _ocore_visible_tools(self, conn):
        # the control plane offers its platform tools only; instance tools come from the instances
        return [item for item in super()._ocore_visible_tools(conn) if item[1].meta.platform]

    def _ocore_resolve_tool(self, conn, full_name):
        spec = super()._ocore_resolve_tool(conn, full_name)
        if not spec.meta.platform:
            raise pol.Refusal("unknown_tool", f"no tool named {full_name!r} on this control plane")
        return spec

    def _ocore_control_org_route(self, conn):
        """The OrgRoute of the key's organization (routing table: no query), or None."""
        org_id = self.env["ocore.mcp.key"]._ocore_organization_of(conn.auth.id) if conn.auth else None
        return self.env["ocore.control.instance"]._ocore_routes()[1].get(org_id) if org_id else None

    def _ocore_control_org(self, conn):
        org = self._ocore_control_org_route(conn)
        return self.env["ocore.control.organization"].sudo().browse(org.id if org else [])

    def _ocore_control_check_org(self, conn):
        org = self._ocore_control_org_route(conn)
        if org and not org.mcp_enabled:
            raise pol.Refusal("mcp_disabled", f"MCP access is disabled for organization {org.name} (kill switch)")
        return self.env["ocore.control.organization"].sudo().browse(org.id if org else [])

    def _ocore_control_routes(self, conn, forwardable_only=True):
        """The routes of the instances of the key's organization this connection may see (scoping and
        ?instances=): enrolled, with a URL, and (``forwardable_only``) not stopped."""
        org = self._ocore_control_org_route(conn)
        if not org or conn.auth.user_id not in org.roles:
            return []
        routes = self.env["ocore.control.instance"]._ocore_routes()[0]
        scoped, wanted = conn.scope["instances"], conn.instances
        return [route for route in sorted((routes[slug] for slug in org.slugs), key=lambda r: r.id)
                if (not scoped or route.slug in scoped) and (wanted is None or route.slug in wanted)
                and (route.forwardable or not forwardable_only)]

    def _ocore_control_instances(self, conn, statuses=None):
        """The instances of the key's organization this connection may see (scoping and ?instances=)."""
        ids = [route.id for route in self._ocore_control_routes(conn, forwardable_only=False)]
        instances = self.env["ocore.control.instance"].sudo().browse(ids)
        if statuses:
            instances = instances.filtered(lambda i: i.status in statuses)
        return instances

    def _ocore_control_subject(self, conn, org=None):
        """(subject, scope claim) that travel with a forwarded request: the key owner and the key's
        scopes, read-only for a Viewer of the organization."""
        org = org or self._ocore_control_org_route(conn)
        role = org.roles.get(conn.auth.user_id) if org else None
        scope = conn.scope
        claim = {"read_only": bool(scope["read_only"]) or role == "viewer",
                 "categories": scope["categories"], "tool_allow": scope["tool_allow"],
                 "tool_deny": scope["tool_deny"], "models": scope["models"]}
        return conn.auth.login, claim

    # -- tools/list ----------------------------------------------------------------------------

    def _mcp_tools_list(self, conn, request, request_id):
        self._ocore_control_check_org(conn)
        result = super()._mcp_tools_list(conn, request, request_id)
        cursor = request.params.cursor if request.params else None
        if cursor or result.get("nextCursor"):
            return result  # platform tools never fill a page; remote tools are added once, unpaged
        result["tools"] = result["tools"] + self._ocore_control_remote_tools(conn)
        return result

    def _ocore_control_remote_tools(self, conn):
        instances = [route for route in self._ocore_control_routes(conn) if route.credential_active and route.url]
        if not instances:
            return []
        subject, claim = self._ocore_control_subject(conn)
        query = f"?categories={','.join(conn.categories)}" if conn.categories is not None else ""
        cache_key = hashlib.sha256(json.dumps([subject, claim, query], sort_keys=True).encode()).hexdigest()[:32]
        icp = self.env["ir.config_parameter"].sudo()
        cache_seconds = int(icp.get_param("ocore_control.cache_seconds") or CACHE_SECONDS)
        retry_seconds = int(icp.get_param("ocore_control.retry_seconds") or FAILURE_RETRY_SECONDS)
        cr = self.env.cr
        self.env["ocore.control.tool.cache"].flush_model()
        cr.execute(
            """SELECT instance_id, tools_json, error,
                      fetched_at > (now() at time zone 'UTC') - make_interval(secs => %s), fetched_at
                 FROM ocore_control_tool_cache
                WHERE instance_id = ANY(%s) AND cache_key = %s
                  AND fetched_at > (now() at time zone 'UTC') - make_interval(secs => %s)""",
            (retry_seconds, [route.id for route in instances], cache_key, cache_seconds))
        cached = {row[0]: row for row in cr.fetchall()}
        lists, to_fetch = {}, []
        for instance in instances:
            row = cached.get(instance.id)
            if row and row[1] is not None:
                lists[instance.id] = parsed_list(instance.id, cache_key, row[4], row[1])
            elif row and row[3]:
                continue  # failed a moment ago: not retried yet
            else:
                to_fetch.append(instance)
        if to_fetch:
            lists.update(self._ocore_control_fetch(to_fetch, subject, claim, query, cache_key))
        tools = []
        for instance in instances:
            tools.extend(lists.get(instance.id) or [])
        return tools

    def _ocore_control_fetch(self, instances, subject, claim, query, cache_key):
        """Fetch the lists of ``instances`` in parallel, within LIST_TIMEOUT; record them and the failures."""
        cid = uuid.uuid4().hex
        # the assertions are signed here (the threads touch no database): one per page, at most 10 pages
        work = [(i.url, i.slug, [sign_assertion(self.env, i.id, i.slug, i.generation, subject, claim, cid)
                                 for _n in range(10)], query) for i in instances]
        with ThreadPoolExecutor(max_workers=min(16, len(work))) as pool:
            outcomes = list(pool.map(lambda item: fetch_tools(item, LIST_TIMEOUT), work))
        found = {}
        rows = []
        for instance, (tools, error) in zip(instances, outcomes, strict=True):
            if error is None:
                # the instance's own platform tools (ocore_*) are not the fleet's: the control plane has its own
                prefix = instance.slug + "_"
                tools = [tool for tool in tools if str(tool.get("name", "")).startswith(prefix)]
                found[instance.id] = tools
                note_tools(tools)
                rows.append((instance.id, cache_key, json.dumps(tools), None, "running", None))
            else:
                _logger.info("control plane: %s dropped from tools/list: %s", instance.slug, error)
                status = "unreachable" if error.kind == "unreachable" else "error"
                rows.append((instance.id, cache_key, None, error.message[:500], status, error.message[:500]))
        self._ocore_control_record(rows)
        return found

    def _ocore_control_record(self, rows):
        """Store fetched lists and instance reachability, in a transaction of their own (committed now,
        whatever the request does next; a concurrent worker doing the same is not an error)."""
        def write(cr):
            for instance_id, cache_key, tools_json, error, status, last_error in rows:
                cr.execute(
                    """INSERT INTO ocore_control_tool_cache (instance_id, cache_key, tools_json, error, fetched_at,
                                                            create_uid, write_uid, create_date, write_date)
                       VALUES (%s, %s, %s, %s, now() at time zone 'UTC', 1, 1, now() at time zone 'UTC',
                               now() at time zone 'UTC')
                       ON CONFLICT (instance_id, cache_key) DO UPDATE
                          SET tools_json = EXCLUDED.tools_json, error = EXCLUDED.error,
                              fetched_at = EXCLUDED.fetched_at, write_date = EXCLUDED.write_date""",
                    (instance_id, cache_key, tools_json, error))
                if status == "running":
                    cr.execute("""UPDATE ocore_control_instance SET status = 'running', last_error = NULL,
                                         last_seen = now() at time zone 'UTC'
                                   WHERE id = %s AND status IN ('running', 'unreachable', 'error')""", (instance_id,))
                else:
                    cr.execute("""UPDATE ocore_control_instance SET status = %s, last_error = %s
                                   WHERE id = %s AND status IN ('running', 'unreachable', 'error')""",
                               (status, last_error, instance_id))

        self._ocore_control_own_transaction(write)

    def _ocore_control_mark_down(self, instance_id, message):
        """A forwarded call found the instance down: out of tools/list until it answers again."""
        def write(cr):
            cr.execute("""UPDATE ocore_control_instance SET status = 'unreachable', last_error = %s
                           WHERE id = %s AND status = 'running'""", (message[:500], instance_id))
            cr.execute("UPDATE ocore_control_tool_cache SET tools_json = NULL, error = %s, "
                       "fetched_at = now() at time zone 'UTC' WHERE instance_id = %s", (message[:500], instance_id))

        self._ocore_control_own_transaction(write)

    def _ocore_control_own_transaction(self, write):
        if compat.in_odoo_test():
            self.env["ocore.control.instance"].flush_model()
            write(self.env.cr)
            self.env["ocore.control.instance"].invalidate_model(["status", "last_error", "last_seen"])
            return
        try:
            with self.env.registry.cursor() as cr:
                write(cr)
        except Exception as exc:  # noqa: BLE001 - a concurrent refresh won; the list served is still right
            _logger.info("control plane: tool cache not stored: %s", exc)
        self.env["ocore.control.instance"].invalidate_model(["status", "last_error", "last_seen"])

    def _ocore_control_announce(self, instance):
        """``notifications/tools/list_changed`` to the open sessions that may see ``instance`` (keys of its
        organization scoped to it or to every instance, sessions without an instance filter leaving it
        out), sent at commit."""
        sessions = self.env["ocore.mcp.session"].sudo().search(
            [("state", "=", "open"), ("key_id.organization_id", "=", instance.organization_id.id)])
        for session in sessions:
            scope = [s for s in (session.key_id.instance_scope or "").split(",") if s]
            wanted = [s for s in (session.instances_filter or "").split(",") if s]
            if (not scope or instance.slug in scope) and (not wanted or instance.slug in wanted):
                hub.publish(self.env.cr, session.session_id, {"t": "msg", "m": LIST_CHANGED})
        return sessions

    # -- tools/call ----------------------------------------------------------------------------

    def _mcp_tools_call(self, conn, request, request_id):
        name = request.params.name
        # an instance's tool (slugs may start with "ocore_" too: the platform tools are matched last)
        org = self._ocore_control_org_route(conn)
        route = self._ocore_control_route_of(org, name)
        if route:
            result = self._ocore_control_forward(conn, org, route, name, dict(request.params.arguments or {}),
                                                 request_id=request_id, params=request.params)
            if P.is_modern(conn.protocol_version):
                result.setdefault("resultType", "complete")  # (an instance's InputRequiredResult goes through)
            return result
        self._ocore_control_check_org(conn)
        return super()._mcp_tools_call(conn, request, request_id)

    def _ocore_control_route_of(self, org, full_name):
        """The route of the instance whose slug prefixes ``full_name`` (the longest), or None."""
        if not org:
            return None
        routes = self.env["ocore.control.instance"]._ocore_routes()[0]
        for slug in org.slugs:  # longest first
            if full_name.startswith(slug + "_"):
                return routes[slug]
        return None

    def _ocore_control_refusal(self, conn, org, route):
        """Why the key may not reach ``route`` now (the stricter of the organization and the key), or None."""
        if not org.mcp_enabled:
            return pol.Refusal("mcp_disabled", f"MCP access is disabled for organization {org.name} (kill switch)")
        if conn.auth.user_id not in org.roles:
            return pol.Refusal("instance_denied", f"{conn.auth.login} is not a member of {org.name}")
        if conn.scope["instances"] and route.slug not in conn.scope["instances"]:
            return pol.Refusal("instance_denied", f"the API key is not scoped to instance {route.slug}")
        if conn.instances is not None and route.slug not in conn.instances:
            return pol.Refusal("instance_denied", f"instance {route.slug} is not in this session's instance filter")
        if not route.credential_active:
            return pol.Refusal("unavailable", f"the control plane holds no active credential for {route.slug}")
        if not route.forwardable:
            return pol.Refusal("unavailable", f"instance {route.slug} is not running")
        return None

    def _ocore_control_forward(self, conn, org, route, full_name, arguments, request_id=None, params=None):
        """Check, forward, audit (request_id = the correlation id, on both sides).

        The checks read the routing table (no query). One statement before the request leaves: the
        rate-limit hit and, on its condition, the call's 'running' audit row (with the key's last use when
        due), committed on its own (the limit holds across workers; a crash mid-call leaves a trace). The
        row's outcome is written once the client has its answer (``_ocore_control_after_response``: the
        response is sent first, then the row completed through a cursor of its own). The instance writes its
        own row for the same correlation id when the call reaches it.

        Human confirmation crosses the hop (``_ocore_control_elicitation``): a client that can be asked is
        asked by the instance as if it were connected to it (``request_id``, ``params``: the client's JSON-RPC
        id and the call's params, with a 2026-07-28 retry's ``inputResponses`` and ``requestState``)."""
        started = time.monotonic()
        cid = uuid.uuid4().hex
        tool = full_name[len(route.slug) + 1:]
        base = audit.base_values(conn)
        base.update(event="call", tool_name=full_name, tool=tool, request_id=cid, category=False)
        try:
            refusal = self._ocore_control_refusal(conn, org, route)
            if refusal:
                raise refusal
            capabilities, answers = self._ocore_control_elicitation(conn, params)
            agent = tool in AGENT_TOOLS and route.managed
            if not agent:  # an agent tool is confirmed here, on the control plane (_ocore_control_agent_tool)
                arguments = self._ocore_control_human(conn, arguments, capabilities)
            subject, claim = self._ocore_control_subject(conn, org)
            if not route.write_enabled:
                claim["read_only"] = True
            limit = pol.effective_rate_limit(conn.scope, conn.settings)
            stale_session = self._ocore_control_stale_session(conn)
            with self._ocore_bookkeeping() as bookkeeping_cr:
                allowed, used, audit_id = self.env["ocore.mcp.rate.limit"]._ocore_begin(
                    conn.auth.id, limit, None if agent else {**base, "params": arguments, "status": "running"},
                    stale_session, cr=bookkeeping_cr)
            if not allowed:
                raise pol.Refusal("rate_limited", f"{used} calls in the last minute for this API key (limit "
                                  f"{limit}/min); retry later")
        except pol.Refusal as exc:
            self._ocore_control_audit_outcome({**base, "params": arguments, "status": "refused", "success": False,
                                               "refusal_reason": exc.code, "error_message": str(exc),
                                               "latency_ms": int((time.monotonic() - started) * 1000)})
            if getattr(exc, "protocol_error", None) is not None:  # MissingRequiredClientCapability, as an instance
                raise exc.protocol_error from None
            return self._ocore_error_result(str(exc))
        if agent:
            instance = self.env["ocore.control.instance"].sudo().browse(route.id)
            return self._ocore_control_agent_tool(conn, instance, tool, arguments, base, claim, started)
        assertion = sign_assertion(self.env, route.id, route.slug, route.generation, subject, claim, cid)
        timeout = call_timeout(arguments)
        call = {"name": full_name, "arguments": arguments, **(answers or {})}
        # the connection is opened once the call is admitted: a refused caller makes the control plane open none
        # (nor wait for an unreachable instance's connect timeout before its refusal)
        connection = http.connect((route.url or "") + INSTANCE_PATH)
        try:
            result = self._ocore_control_call(route, call, assertion, timeout, cid, connection, capabilities)
            values = None
            if result.get("resultType") == "input_required":
                result, values = self._ocore_control_input_required(
                    conn, route, call, result, (subject, claim, timeout, cid, capabilities), request_id)
            elif answers and elicit.INPUT_KEY in answers.get("inputResponses", {}):
                values = self._ocore_control_confirmation(
                    full_name, elicit.outcome(answers["inputResponses"][elicit.INPUT_KEY])[0], result)
        except InstanceError as exc:
            _logger.info("control plane: call %s to %s failed: %s", cid, route.url, exc)
            if exc.kind == "unreachable":
                self._ocore_control_mark_down(route.id, exc.message)
                message = (f"unavailable: instance {route.slug} did not answer ({exc.message}); the call may not "
                           "have run")
            elif exc.kind == "invalid":  # an answer past lib/http's cap
                message = (f"instance {route.slug} {exc.message}: the rest of its answer was not read (the call "
                           "may have run)")
            else:
                message = f"instance {route.slug} refused the call: {exc.message}"
            result = self._ocore_error_result(message)
            values = {"status": "error", "success": False, "error_message": message, "result_summary": message,
                      "refusal_reason": {"unreachable": "unavailable", "invalid": "invalid_answer"}.get(
                          exc.kind, "refused_by_instance")}
        latency = int((time.monotonic() - started) * 1000)
        self._ocore_control_after_response(lambda cr: audit.update(
            cr, audit_id, {**(values or outcome_values(result)), "latency_ms": latency}))
        return result

    # -- human confirmation across the hop -----------------------------------------------------

    def _ocore_control_elicitation(self, conn, params):
        """(clientCapabilities, answers) of a forwarded call (no query).

        The capabilities: form elicitation, when the client declared it and can be asked (a 2025 session also
        needs the call's stream), else none: the instance then answers as to a client
        that cannot elicit ("call again with confirm: true", a pending approval). The answers: a 2026-07-28
        retry's ``inputResponses`` and ``requestState``, relayed as they came (the state is sealed by the
        instance and bound to the key, the tool and the arguments); refused like an instance refuses them
        without the capability."""
        capabilities = None
        if elicit.can_form_elicit(conn.client_capabilities, conn.protocol_version) and (
                P.is_modern(conn.protocol_version) or (conn.emit is not None and conn.session_id)):
            # form mode only, whatever else the client declared (URL mode is never relayed: relayable_question)
            capabilities = {"elicitation": {"form": {}}}
        if not P.is_modern(conn.protocol_version) or params is None:
            return capabilities, None
        responses = getattr(params, "input_responses", None)
        state = getattr(params, "request_state", None)
        if not responses and state is None:
            return capabilities, None
        if capabilities is None:
            raise elicit.missing_capability()
        if not isinstance(responses or {}, dict):
            raise pol.Refusal("invalid_input", "inputResponses: an object")
        # only the answer to the confirmation goes on, reduced to what it decides (accept with the box ticked,
        # decline, cancel): the instance asks nothing else through this control plane
        answers = {"inputResponses": {elicit.INPUT_KEY: relayed_answer(responses[elicit.INPUT_KEY])}
                   if elicit.INPUT_KEY in (responses or {}) else {}}
        if state is not None:
            if not bounded_state(state):
                raise pol.Refusal("invalid_input", "requestState: the string the instance sealed, unchanged")
            answers["requestState"] = state
        return capabilities, answers

    def _ocore_control_human(self, conn, arguments, capabilities):
        """The arguments a call goes on with when its control-plane key requires a human confirmation (the key's
        "Human confirmation required", as on an instance: ``confirm: true`` is not enough): without ``confirm``,
        so that the instance asks the human through the client; a client that cannot be asked is refused here
        (the instance would only say "call again with confirm: true"). One query, only for a call that says
        ``confirm: true``."""
        if arguments.get(elicit.INPUT_KEY) is not True or arguments.get("dry_run") is True or \
                not self.env["ocore.mcp.approval"]._ocore_requires_human(conn.auth.id):
            return arguments
        if capabilities is None:
            raise pol.Refusal("confirm_required", "this API key requires a human confirmation of destructive calls "
                              "and confirm: true is not one: use a client that supports MCP elicitation (form), "
                              "or an instance key with approvals. Nothing was done.")
        return {name: value for name, value in arguments.items() if name != elicit.INPUT_KEY}

    def _ocore_control_call(self, route, call, assertion, timeout, cid, connection=None, capabilities=None):
        """One tools/call to the instance; its result as the client gets it (an InputRequiredResult whole)."""
        result = mcp_request(route.url, route.slug, "tools/call", call, assertion, timeout, request_id=cid,
                             connection=connection, capabilities=capabilities)
        if result.get("resultType") == "input_required":
            return {k: v for k, v in result.items() if k in ("resultType", "inputRequests", "requestState")}
        meta = result.get("_meta")
        marking = meta.get(UNTRUSTED_META_KEY) if isinstance(meta, dict) else None
        result = {k: v for k, v in result.items() if k in ("content", "structuredContent", "isError")}
        if marking:  # the instance's untrusted-data marking of structuredContent goes on (its other _meta not)
            result["_meta"] = {UNTRUSTED_META_KEY: marking}
        result.setdefault("isError", False)
        return result

    def _ocore_control_input_required(self, conn, route, call, asked, hop, request_id):
        """The instance asks the human (it answered an InputRequiredResult): (result, audit values).

        Only a confirmation is relayed, and only to a client that declared elicitation (``relayable_question``:
        checked, rebuilt, named with the instance's slug); anything else is an error row and reaches nobody.
        A 2026-07-28 client gets the rebuilt InputRequiredResult and answers it with a retry (audited like the
        instance audits it: refused, awaiting the input). A 2025 session is asked here, on
        the call's stream, as the instance asks its own sessions; its answer goes to the instance with the
        instance's requestState in the same call again, accepted or not (the instance audits a decline too),
        once ``_ocore_control_recheck`` found the call still allowed; the call runs only when the client accepted
        and the instance verified the state."""
        awaiting = {"status": "refused", "success": False, "refusal_reason": "input_required",
                    "error_message": "awaiting the user's confirmation (InputRequiredResult)"}
        full_name = call["name"]
        subject, claim, timeout, cid, capabilities = hop
        question, state = relayable_question(route.slug, asked) if capabilities is not None else (
            None, "the client did not declare elicitation")
        if question is None:
            # a client that cannot be asked, or an instance asking for something else than a confirmation (a
            # URL, a password, another request, an unbounded text): nothing reaches the human
            _logger.warning("control plane: call %s: instance %s asked for an input not relayed (%s)", cid,
                            route.slug, state)
            return self._ocore_control_failure(f"instance {route.slug} asked for an input this control plane "
                                               f"does not relay ({state}): nothing was done",
                                               refusal_reason="input_not_relayed")
        if P.is_modern(conn.protocol_version):
            return {"resultType": "input_required", "requestState": state, "inputRequests": {elicit.INPUT_KEY: {
                "method": "elicitation/create",
                "params": elicit.for_version(question, conn.protocol_version)}}}, awaiting
        params = elicit.for_version(question, conn.protocol_version)
        action, waited = self.env["ocore.mcp.approval"]._ocore_ask_on_stream(conn, params, request_id)
        answer = relayed_answer({"action": "accept", "content": {elicit.INPUT_KEY: True}} if action == "accept"
                                else {"action": "decline" if action == "decline" else "cancel"})
        # the human took their time: what decided the first hop is read again (kill switch, membership and role,
        # the key revoked, expired or rescoped, the instance's credential and state); a refusal sends nothing
        refusal, subject, claim, route = self._ocore_control_recheck(conn, route, claim)
        if refusal:
            confirmation = ("accepted (elicitation)" if action == "accept"
                            else self._ocore_control_declined(full_name, action, waited)[1]["confirmation"])
            message = f"{refusal}: the call was not sent again to instance {route.slug}; nothing was done"
            return self._ocore_error_result(message), {
                "status": "refused", "success": False, "refusal_reason": refusal.code, "error_message": message,
                "result_summary": message, "confirmation": confirmation}
        again = {**call, "inputResponses": {elicit.INPUT_KEY: answer}, "requestState": state}
        assertion = sign_assertion(self.env, route.id, route.slug, route.generation, subject, claim, cid)
        if action != "accept":
            # nothing runs; the instance is told all the same, for its audit row
            try:
                self._ocore_control_call(route, again, assertion, timeout, cid, capabilities=capabilities)
            except InstanceError as exc:
                _logger.info("control plane: the decline of call %s did not reach %s: %s", cid, route.url, exc)
            return self._ocore_control_declined(full_name, action, waited)
        result = self._ocore_control_call(route, again, assertion, timeout, cid, capabilities=capabilities)
        if result.get("resultType") == "input_required":  # asked again (e.g. the state expired): not twice
            return self._ocore_control_failure(f"instance {route.slug} asked for the confirmation again: nothing "
                                               "was done", confirmation="accepted (elicitation)")
        return result, self._ocore_control_confirmation(full_name, action, result)

    def _ocore_control_recheck(self, conn, route, claim):
        """(refusal or None, subject, claim, route) of a call about to be sent again once its client answered: the
        routing table, the settings and the key read again (the caches other workers cleared meanwhile are
        cleared here too, as at the start of a request), ``_ocore_control_refusal`` run again with them, the
        claim the stricter of the first hop's and the fresh one (a member become Viewer, a key made read-only).
        The rate limit is not counted again: one call of the client, one hit, as on an instance."""
        if not compat.in_odoo_test():
            self.env.registry.check_signaling()
        self.env.invalidate_all()
        auth = self.env["ocore.mcp.key"].sudo().browse(conn.auth.id)._ocore_auth_info()
        settings = self._ocore_settings()
        try:
            pol.check_key(auth, settings, None)
        except pol.Refusal as exc:
            return exc, None, claim, route
        scope = stricter_scope(conn.scope, auth.scope, ("categories", "tool_allow", "models", "instances"))
        fresh = dataclasses.replace(conn, auth=auth, scope=scope, settings=settings)
        org = self._ocore_control_org_route(fresh)
        now = self.env["ocore.control.instance"]._ocore_routes()[0].get(route.slug)
        if org is None or now is None or now.id != route.id or now.org_id != org.id:
            return pol.Refusal("instance_denied", f"instance {route.slug} is no longer reachable with this key"), \
                None, claim, route
        refusal = self._ocore_control_refusal(fresh, org, now)
        if refusal:
            return refusal, None, claim, now
        subject, fresh_claim = self._ocore_control_subject(fresh, org)
        if not now.write_enabled:
            fresh_claim["read_only"] = True
        fresh_claim["read_only"] = fresh_claim["read_only"] or claim["read_only"]
        return None, subject, fresh_claim, now

    def _ocore_control_failure(self, message, **values):
        return self._ocore_error_result(message), {"status": "error", "success": False, "error_message": message,
                                                   "result_summary": message, **values}

    def _ocore_control_confirmation(self, full_name, action, result):
        """The audit values of a call whose client answered the instance's question with ``action``: what the
        instance answered, with the confirmation as an instance's row shows it."""
        if action == "accept":
            return {**outcome_values(result), "confirmation": "accepted (elicitation)"}
        return self._ocore_control_declined(full_name, action, None)[1]

    def _ocore_control_declined(self, full_name, action, waited):
        """(result, audit values) of a call the client did not confirm (the instance's words for it)."""
        base = {}
        exc = self.env["ocore.mcp.approval"]._ocore_declined(full_name, action, base, waited)
        values = {"status": "refused", "success": False, "refusal_reason": exc.code, "error_message": str(exc),
                  "result_summary": str(exc), "confirmation": base.get("confirmation")}
        return self._ocore_error_result(str(exc)), values

    def _ocore_control_stale_session(self, conn):
        """The id of the call's session when its last activity is due for a refresh (30 s), else None."""
        session = conn.session
        if not (session and conn.session_id):
            return None
        stale = not session.last_seen or session.last_seen < fields.Datetime.subtract(fields.Datetime.now(),
                                                                                      seconds=30)
        return session.id if stale else None

    def _ocore_control_after_response(self, work):
        """``work(cr)`` once the response has been sent (Odoo's ``ir.http._post_dispatch`` hangs it on the
        response: models/ir_http.py), each statement its own implicit transaction on a cursor of its own,
        committed without waiting for the WAL flush; at once without an HTTP request, or under Odoo's tests."""
        pending = None
        if not compat.in_odoo_test():
            try:
                pending = getattr(request, "_ocore_after_response", None)
                if pending is None:
                    pending = request._ocore_after_response = []
            except RuntimeError:  # no HTTP request bound (a cron, a shell, a call's own thread)
                pending = None
        if pending is False or pending is None:  # (False: the response is already out, models/ir_http.py)
            with self._ocore_bookkeeping() as cr:
                work(_AsyncCommit(cr))
            return
        registry = self.env.registry
        pending.append(lambda: run_after_response(registry, work))

    def _ocore_control_audit_outcome(self, values):
        """The one audit row of a call that did not go out (refused), outcome included: one statement, its own
        transaction, committed without waiting for the WAL flush."""
        if self.env.cr.closed:  # the request's connection died meanwhile: a fresh one
            with self.env.registry.cursor() as fresh:
                audit.insert(fresh, values)
            return
        with self._ocore_bookkeeping() as cr:
            audit.insert(_AsyncCommit(cr), values)


    # -- instance tools through the host agent -----------------------------------------------

    def _ocore_control_agent_tool(self, conn, instance, tool, arguments, base, claim, started):
        """odoo_logs, list_backups, backup_database, restore_database of a managed instance: run by its
        server's agent (container logs, pg_dump into the agent's directory, restore with a pre-restore
        snapshot and a restart). Same rules as on the instance: administrators only (Owner/Admin of the
        organization), category 'system', read-only keys and the production guard block writes, a
        restore needs confirm: true; on a key with "Human confirmation required" it needs an approval instead
        (``ocore.mcp.approval``, on the control plane: a pending one is made, the key's owner approves it in
        MCP > Approvals, the same call made again runs once; this tool asks no human through elicitation)."""
        kind = AGENT_TOOLS[tool]
        user = self.env["res.users"].browse(conn.auth.user_id)
        role = instance.organization_id._ocore_role(user)
        scope = conn.scope
        try:
            if role not in ("owner", "admin"):
                raise pol.Refusal("admin_only", f"{tool!r} is only offered to the organization's owners and admins")
            if scope["categories"] and "system" not in scope["categories"]:
                raise pol.Refusal("category_denied", "the API key's MCP permissions do not include the 'system' "
                                  "category")
            if (scope["tool_allow"] and tool not in scope["tool_allow"]) or tool in scope["tool_deny"]:
                raise pol.Refusal("tool_denied", f"tool {tool!r} is not allowed for this API key")
            if kind != "read" and claim["read_only"]:
                raise pol.Refusal("read_only_key" if scope["read_only"] else "write_disabled",
                                  f"{tool!r} is a {kind} operation and this key or instance is read-only")
            what = (f"{tool!r} replaces the database of {instance.slug} (a pre-restore snapshot is taken first, "
                    "the instance is restarted)")
            approvals = self.env["ocore.mcp.approval"]
            if kind == "destructive" and approvals._ocore_requires_human(conn.auth.id):
                # confirm: true is not enough: the approved call runs once, else a pending approval (HumanStep)
                approvals._ocore_confirm_by_approval(conn, _AgentSpec(what), base["tool_name"], arguments, base)
            elif kind == "destructive" and arguments.get("confirm") is not True:
                raise pol.Refusal("confirm_required", f"{what}. Call again with confirm: true to proceed.")
            path, method, payload = self._ocore_control_agent_request(instance, tool, arguments)
        except pol.Refusal as exc:
            audit.insert(self.env.cr, {**base, "params": arguments, "status": "refused", "success": False,
                                       "refusal_reason": exc.code, "error_message": str(exc),
                                       "latency_ms": int((time.monotonic() - started) * 1000)})
            self._ocore_commit_checkpoint()
            return self._ocore_error_result(str(exc))
        audit_id = audit.insert(self.env.cr, {**base, "params": arguments, "status": "running",
                                              "category": "system"})
        self._ocore_commit_checkpoint()
        timeout = 600 if kind != "read" else 60
        try:
            status, data = instance.server_id._ocore_agent_call(method, path, payload, timeout=timeout,
                                                                raise_error=False)
        except Exception as exc:  # noqa: BLE001 - the agent unreachable: a tool error
            status, data = 0, {"error": str(exc.args[0] if exc.args else exc)}
        data = data if isinstance(data, dict) else {"result": data}
        data["agent"] = instance.server_id.name
        ok = 200 <= status < 300
        text = json.dumps(data, default=str)
        if not ok:
            text = f"error: the agent of {instance.server_id.name}: {data.get('error') or status}\n{text}"
        self._ocore_audit_outcome(audit_id, {"status": "success" if ok else "error", "success": ok,
                                             "result_summary": text, "error_message": None if ok else text,
                                             "latency_ms": int((time.monotonic() - started) * 1000)})
        return {"content": [{"type": "text", "text": text}], "structuredContent": data, "isError": not ok}

    def _ocore_control_agent_request(self, instance, tool, arguments):
        name = instance.agent_name or instance.slug
        base = f"/v1/instances/{name}"
        if tool == "odoo_logs":
            lines = arguments.get("lines", 100)
            if not isinstance(lines, int) or not 1 <= lines <= 1000:
                raise pol.Refusal("invalid_input", "lines: an integer between 1 and 1000")
            query = {"lines": lines}
            if arguments.get("filter"):
                query["grep"] = str(arguments["filter"])
            return f"{base}/logs?{urlencode(query)}", "GET", None
        if tool == "list_backups":
            age = arguments.get("max_age_days")
            return f"{base}/backups" + (f"?{urlencode({'max_age_days': float(age)})}" if age else ""), "GET", None
        if tool == "backup_database":
            fmt = arguments.get("format", "custom")
            if fmt not in ("custom", "plain"):
                raise pol.Refusal("invalid_input", "format: custom or plain")
            return f"{base}/backup", "POST", {"format": fmt, "filestore": bool(arguments.get("include_filestore"))}
        backup = arguments.get("backup")
        if not isinstance(backup, str) or not backup:
            raise pol.Refusal("invalid_input", "backup: the name of a file from list_backups")
        return f"{base}/restore", "POST", {"backup": backup}


class _AgentSpec:
    """What an approval of an agent tool reads of its tool's spec (``elicit.describe``)."""

    kind = "destructive"

    def __init__(self, description):
        self.description = description


class McpApprovalControl(models.Model):
    _inherit = "ocore.mcp.approval"

    @api.model
    def _ocore_may_elicit(self, conn, msg):
        """A 2025 session's call of an instance tool that may ask the human (a destructive tool: its input
        schema declares ``confirm``, in the lists this process parsed; one not seen yet may) is answered with an
        SSE stream, which carries the instance's question to the client (``_ocore_control_input_required``).
        No query."""
        if not elicit.can_form_elicit(conn.client_capabilities, conn.protocol_version):
            return False
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        name, args = params.get("name"), params.get("arguments") or {}
        if isinstance(name, str) and conn.auth:
            server = self.env["ocore.mcp.server"]
            if server._ocore_control_route_of(server._ocore_control_org_route(conn), name):
                return isinstance(args, dict) and args.get("dry_run") is not True and _MAY_CONFIRM.get(name, True)
        return super()._ocore_may_elicit(conn, msg)
