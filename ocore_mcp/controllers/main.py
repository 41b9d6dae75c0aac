"""MCP transports: Streamable HTTP (/ocore/mcp/stream) and legacy SSE
(/ocore/mcp/sse), with the /api/mcp/... aliases.

Only framing lives here: authentication, then the JSON-RPC message goes to
``ocore.mcp.server._ocore_handle``. Session state is in the database and
messages for a legacy SSE stream travel through PostgreSQL NOTIFY, so any
worker can serve any request.
"""

import contextlib
import dataclasses
import json
import logging
import queue
import threading
import time

import psycopg2
from werkzeug.wrappers import Response as WerkzeugResponse

from odoo import SUPERUSER_ID, api, http
from odoo.http import request
from odoo.modules.registry import Registry

from ..lib import compat, origins
from ..lib import protocol
from ..models.mcp_server import SELF_COUNTED_METHODS
from ..service import audit, bookkeeping
from ..service import policy
from ..service.context import Connection
from ..service.notify import hub

_logger = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15
REVALIDATE_SECONDS = 25  # an open stream re-checks its key every 25 s: a revoked key's stream ends within 30 s
SSE_ACK_WAIT_SECONDS = 0.2  # a legacy SSE POST of a tools/call waits that long for the call before its 202
# Sent with a preflight's answer, and with any answer to an origin an administrator allowed (setting
# "Allowed browser origins"); Access-Control-Allow-Origin itself only names such an origin.
CORS_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Accept, Mcp-Session-Id, "
    "MCP-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID",
    "Access-Control-Expose-Headers": "Mcp-Session-Id, WWW-Authenticate",
}
SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
ROUTE = {"type": "http", "auth": "none", "csrf": False, "save_session": False, "readonly": False}


def _split(value):
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


# Open streams borrow a database connection only for their own bookkeeping (the key re-check, the end of the
# session): at most this many at once per process. Hundreds of streams end together when a proxy restarts or a
# client closes its pool; without the gate each borrowed a connection at the same instant, Odoo's pool refused
# those past its size (PoolError, it does not wait) and their sessions stayed open.
STREAM_DB_SLOTS = 8
_stream_db_gate = threading.BoundedSemaphore(STREAM_DB_SLOTS)  # gevent's own semaphore in the gevent worker


@contextlib.contextmanager
def _stream_cursor(dbname):
    """A cursor of the registry of ``dbname`` for a stream's bookkeeping, taken behind the per-process gate."""
    with _stream_db_gate, Registry(dbname).cursor() as cr:
        yield cr


def _stream_events(events, revalidate):
    """The body of an open SSE stream: each queued message as an event, a ping when nothing came for a while,
    the key re-checked every REVALIDATE_SECONDS. Returns ("close", why) when the server closes the stream,
    ("revalidate", problem) when the re-check found one (a generator: ``end, why = yield from ...``)."""
    checked = time.monotonic()
    while True:
        wait = min(KEEPALIVE_SECONDS, max(0.5, REVALIDATE_SECONDS - (time.monotonic() - checked)))
        try:
            kind, message = events.get(timeout=wait)
        except queue.Empty:
            yield b": ping\r\n\r\n"
            kind = None
        if kind == "close":
            return "close", message
        if kind == "message":
            yield protocol.sse_event(message)
        if time.monotonic() - checked >= REVALIDATE_SECONDS:
            checked = time.monotonic()
            problem = revalidate()
            if problem:
                return "revalidate", problem


class HttpError(Exception):
    def __init__(self, response):
        super().__init__("http error")
        self.response = response


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who sent this request, read once by ``_authenticate`` and passed on explicitly (to the threads of
    long calls too, where ``request`` is not bound): the key, its authentication, the settings, the
    client's address and the server's public URL."""

    key: object  # ocore.mcp.key record of the environment it was found in
    auth: object  # its KeyAuth
    settings: dict
    ip: str
    base_url: str
    scope: dict  # the key's scope as this transport applies it

    def bound(self, env):
        """The same caller with the key record of ``env`` (a thread's own cursor)."""
        return dataclasses.replace(self, key=env["ocore.mcp.key"].browse(self.key.id))


class McpController(http.Controller):
    # -- helpers -----------------------------------------------------------------

    def _response(self, body=None, status=200, headers=None, content_type="application/json"):
        data = protocol.dumps(body) if body is not None and not isinstance(body, str | bytes) else (body or "")
        resp = WerkzeugResponse(data, status=status, content_type=content_type if body is not None else None)
        for name, value in {**self._cors_headers(), **(headers or {})}.items():
            resp.headers[name] = value
        return resp

    def _cors_headers(self):
        """CORS headers for this request: Access-Control-Allow-Origin only for an origin an administrator
        allowed (never ``*`` unless configured so); the method and header lists answer preflights."""
        httprequest = request.httprequest
        header = httprequest.headers.get("Origin")
        preflight = httprequest.method == "OPTIONS"
        allow = None
        if header is not None and request.db:
            configured = api.Environment(request.env.cr, SUPERUSER_ID, {})["ocore.mcp.server"]._ocore_settings()
            allow = origins.cors_origin(header, configured["origins"])
        if allow is None:
            return dict(CORS_HEADERS) if preflight else {}
        headers = {**CORS_HEADERS, "Access-Control-Allow-Origin": allow}
        if allow != origins.ANY:
            headers["Vary"] = "Origin"
        return headers

    def _check_origin(self, settings):
        """403 for a request whose Origin is not the server's own nor an allowed one (MCP 2025-11-25:
        DNS rebinding protection). Requests without Origin (non-browser clients) pass."""
        header = request.httprequest.headers.get("Origin")
        if not origins.origin_allowed(header, settings["own_origin"], settings["origins"]):
            raise HttpError(self._jsonrpc_error(
                None, protocol.INVALID_REQUEST, f"Forbidden: Origin {header[:200]!r} is not allowed on this server "
                "(setting 'Allowed browser origins')", status=403))

    def _check_body_size(self, settings):
        """Refuse a body with 413 before anything of it is read (before authentication too) when its
        Content-Length is over the limit (setting ``ocore_mcp.max_body_kb``); a body of unknown length
        (chunked) gets 411. ``request.httprequest.get_data()`` then reads at most the limit."""
        httprequest = request.httprequest
        limit = settings["max_body_kb"] * 1024
        length = httprequest.content_length
        if length is None and "chunked" in (httprequest.headers.get("Transfer-Encoding") or "").lower():
            raise HttpError(self._jsonrpc_error(None, protocol.INVALID_REQUEST, "Length Required: send the body with a "
                                                "Content-Length", status=411, headers={"Connection": "close"}))
        if length is not None and length > limit:
            # nothing of the body is read: the connection is closed after the answer
            raise HttpError(self._jsonrpc_error(
                None, protocol.INVALID_REQUEST, f"Payload Too Large: the body is {length} bytes, over this server's "
                f"limit of {limit} bytes", status=413, headers={"Connection": "close"}))

    def _check_batch(self, messages, settings):
        if len(messages) > settings["max_batch"]:
            raise HttpError(self._jsonrpc_error(
                None, protocol.INVALID_REQUEST, f"Invalid Request: a batch of {len(messages)} messages, over this "
                f"server's limit of {settings['max_batch']}"))

    def _jsonrpc_error(self, request_id, code, message, status=None, data=None, headers=None):
        return self._response(
            protocol.error(request_id, code, message, data), status or protocol.ERROR_HTTP_STATUS.get(code, 400),
            headers,
        )

    def _client_ip(self):
        return request.httprequest.remote_addr

    def _base_url(self, settings):
        """The server's public URL (``web.base.url``), never the request's Host header."""
        return settings["base_url"]

    def _env(self):
        if not request.db:
            raise HttpError(self._response({"error": "no database selected (use a dbfilter)"}, 404))
        return api.Environment(request.env.cr, SUPERUSER_ID, {})

    def _authenticate(self, env, settings):
        """The request's Caller, or HttpError(401/403) (a refusal of a known key is audited)."""
        header = request.httprequest.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
        keys = env["ocore.mcp.key"]
        key, auth = keys._ocore_authenticate(token) if token else (keys.browse(), None)
        try:
            if not header.strip():
                raise policy.Refusal("unauthorized", "missing credentials: send the header "
                                                     "Authorization: Bearer <API key or OAuth access token>")
            problem = keys._ocore_token_problem(token) if token and not key else None
            if problem:
                raise policy.Refusal("unauthorized", problem)
            auth = policy.check_key(auth, settings, self._client_ip())
        except policy.Refusal as exc:
            if key:
                self._audit_refused_key(env, key, auth, settings, exc)
            status = 403 if exc.code in ("mcp_disabled", "ip_denied") else 401
            headers = {}
            if status == 401:
                error = "invalid_token" if token else "invalid_request"
                headers["WWW-Authenticate"] = keys._ocore_www_authenticate(self._base_url(settings), error,
                                                                           str(exc))
            raise HttpError(
                self._jsonrpc_error(None, protocol.UNAUTHORIZED, str(exc), status, headers=headers)) from None
        # the stdio bridge's calls: the stdio rate limit unless the key sets one (read here: the request is
        # not bound in the threads of long calls)
        scope = policy.transport_scope(auth.scope, request.httprequest.headers.get(policy.BRIDGE_HEADER))
        return Caller(key=key, auth=auth, settings=settings, ip=self._client_ip(), base_url=self._base_url(settings),
                      scope=scope)

    def _audit_refused_key(self, env, key, auth, settings, exc):
        """The audit row of a refused key (revoked, expired, kill switch, IP), committed: the request
        itself ends in an error."""
        conn = Connection(key=key, scope={}, auth=auth, settings=settings, transport="http", ip=self._client_ip())
        audit.event(env.cr, conn, "denied", status="refused", success=False, refusal_reason=exc.code,
                    error_message=str(exc))
        env.cr.commit()  # pylint: disable=invalid-commit  # the refusal's trace survives the error response

    def _open_stream_slot(self, env, caller, kind, transport, channel=None, request_id=None, taken=None):
        """Take one of the key's open-stream slots (models/mcp_stream.py, committed: every worker counts it)
        before a long-lived stream starts (``taken``: the slot the session lookup took, or minus the key's
        open streams); over the key's limit: the refusal audited and HttpError 429."""
        try:
            if taken is not None:
                if taken < 0:
                    raise env["ocore.mcp.stream.limit"]._ocore_stream_refusal(-taken)
                return taken
            return env["ocore.mcp.stream.limit"]._ocore_stream_open(caller.key.id, kind, channel)
        except policy.Refusal as exc:
            audit.event(env.cr, self._connection(caller, transport), "denied", status="refused", success=False,
                        refusal_reason=exc.code, error_message=str(exc), tool_name=f"stream:{kind}")
            env.cr.commit()  # pylint: disable=invalid-commit  # the refusal's trace survives the error response
            raise HttpError(self._jsonrpc_error(request_id, protocol.RATE_LIMITED, str(exc), status=429,
                                                headers={"Retry-After": "30"})) from None

    def _connection(self, caller, transport, **kw):
        return Connection(
            key=caller.key,
            scope=caller.scope,
            auth=caller.auth,
            settings=caller.settings,
            transport=transport,
            ip=caller.ip,
            base_url=caller.base_url,
            **kw,
        )

    def _session_connection(self, caller, session, transport, **kw):
        return self._connection(
            caller,
            transport,
            **kw,
            session=session,
            protocol_version=session.protocol_version,
            client_name=session.client_name,
            client_version=session.client_version,
            client_capabilities=session._ocore_capabilities(),
            instances=_split(session.instances_filter) if session.instances_filter else None,
            categories=_split(session.categories_filter) if session.categories_filter else None,
            log_level=session.log_level or None,
        )

    @staticmethod
    def _long_lived_ok():
        """Whether this process may hold long-lived streams: the gevent worker, or a threaded server."""
        import odoo
        from odoo.tools import config

        return bool(odoo.evented or not config["workers"])

    def _accepts_sse(self):
        return "text/event-stream" in (request.httprequest.headers.get("Accept") or "")

    def _wants_stream(self, msg):
        """Answer with an SSE stream when the client sent a progress token and accepts it."""
        if not self._accepts_sse() or not isinstance(msg, dict) or msg.get("method") != "tools/call":
            return False
        params = msg.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        return isinstance(meta, dict) and meta.get("progressToken") is not None

    def _wants_confirmation(self, env, conn, msg):
        """Answer with an SSE stream when the call will ask the human (elicitation/create goes on that stream,
        models/mcp_approval.py): a destructive tools/call of a client that declared elicitation."""
        if not self._accepts_sse() or not isinstance(msg, dict) or msg.get("method") != "tools/call":
            return False
        return env["ocore.mcp.approval"]._ocore_may_elicit(conn, msg)

    def _serve(self, work):
        """Every MCP route: the database (404 without), the Origin check (403), a preflight's answer,
        then ``work(env, settings)``; HTTP errors and a lost database connection become responses."""

        def run():
            env = self._env()
            settings = env["ocore.mcp.server"]._ocore_settings()
            self._check_origin(settings)
            if request.httprequest.method == "OPTIONS":
                return self._response(status=204)
            if request.httprequest.method == "POST":
                self._check_body_size(settings)
            return work(env, settings)

        return self._guard(run)

    def _guard(self, func):
        try:
            return func()
        except HttpError as exc:
            return exc.response
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            if not request.env.cr.closed and not isinstance(exc, bookkeeping.ConnectionLost):
                raise  # e.g. a serialization failure: Odoo retries the request
            # the request's database connection died (PostgreSQL restarted): a JSON-RPC answer the
            # client can act on, not an HTML error page; its transaction was rolled back
            _logger.warning("MCP request lost its database connection: %s", str(exc).strip())
            return self._jsonrpc_error(None, protocol.INTERNAL_ERROR, "database unavailable (connection lost); nothing "
                                       "was written, retry", status=503, headers={"Retry-After": "1"})

    # -- Streamable HTTP ------------------------------------------------------------

    @http.route(["/ocore/mcp/stream", "/api/mcp/stream"], methods=["GET", "POST", "DELETE", "OPTIONS"], **ROUTE)
    def mcp_stream(self, **query):
        return self._serve(lambda env, settings: self._stream_dispatch(env, settings, request.httprequest.method,
                                                                       query))

    def _stream_dispatch(self, env, settings, method, query):
        caller = self._authenticate(env, settings)
        key = caller.key
        headers = {k.lower(): v for k, v in request.httprequest.headers.items()}
        version_header = headers.get(protocol.HEADER_PROTOCOL_VERSION)
        if method == "POST":
            refusal = self._post_media_refusal(headers)
            if refusal is not None:
                return refusal
        # Like the SDK's server: the handshake revisions are served by the session path; any other
        # MCP-Protocol-Version (2026-07-28, or an unknown one) goes through the per-request
        # envelope ladder, which answers an unsupported revision with -32022 and the supported list.
        if (method == "POST" and version_header is not None
                and version_header not in protocol.HANDSHAKE_PROTOCOL_VERSIONS):
            return self._modern_post(env, caller, headers, query)
        if method == "POST":
            return self._legacy_post(env, caller, headers, query)
        if version_header in protocol.MODERN_PROTOCOL_VERSIONS:
            return self._response(status=405, headers={"Allow": "POST"})
        # GET: the stream's slot among the key's open streams taken with the session lookup (one statement) when
        # the stream can open here; else the lookup alone, and the answers below
        stream = ("get", headers.get(protocol.HEADER_SESSION)) if (
            method == "GET" and self._accepts_sse() and self._long_lived_ok()) else None
        session, taken = self._legacy_session(env, key, headers, required=True, stream=stream)
        if method == "DELETE":
            self._end_session(env, session, caller, "client closed the session")
            return self._response(status=200)
        # GET: the standalone server->client stream of the session
        if not self._accepts_sse():
            return self._response(status=406)
        if not self._long_lived_ok():
            # A prefork HTTP worker serves one request at a time: an idle stream would hold it. The
            # stream is optional in Streamable HTTP (405 is the spec's way to say "no stream here"):
            # clients then get every reply on their POSTs. Behind a proxy that sends GETs of
            # /ocore/mcp/stream to the gevent port (see README), the stream is served there.
            return self._response(status=405, headers={"Allow": "POST, DELETE"})
        stream_id = self._open_stream_slot(env, caller, "get", "stream", channel=session.session_id, taken=taken)
        return self._sse_response(env.cr.dbname, session, key.id, first=None, end_on_close=False, stream_id=stream_id)

    def _post_media_refusal(self, headers):
        """415 for a body that is not declared JSON, 406 for a client that accepts neither JSON nor
        SSE answers (what the SDK's server answers too)."""
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            return self._jsonrpc_error(None, protocol.INVALID_REQUEST, "Unsupported Media Type: Content-Type must be "
                                       "application/json", status=415)
        accept = headers.get("accept", "").lower()
        if accept and not any(t in accept for t in ("application/json", "text/event-stream", "*/*", "application/*")):
            return self._jsonrpc_error(None, protocol.INVALID_REQUEST, "Not Acceptable: the client must accept "
                                       "application/json and text/event-stream", status=406)
        return None

    def _legacy_session(self, env, key, headers, required, limit=None, stream=None):
        """(session, counted): the request's session (404 unless it is the key's, open, of Streamable HTTP)
        and, with ``limit`` (the key's rate limit), the hit of the request's one JSON-RPC request made in the
        session lookup's statement (``ocore.mcp.server._ocore_session_begin``), for ``_ocore_count_request``
        to use instead of a statement of its own; with ``stream`` ((kind, channel)), the slot among the key's
        open streams taken in that statement (its id, or minus the key's open streams; else None)."""
        session_id = headers.get(protocol.HEADER_SESSION)
        if not session_id:
            if required:
                raise HttpError(
                    self._jsonrpc_error(None, protocol.INVALID_REQUEST, "Bad Request: missing Mcp-Session-Id"))
            return None, None
        version = headers.get(protocol.HEADER_PROTOCOL_VERSION)
        known = not version or version in protocol.KNOWN_PROTOCOL_VERSIONS
        # read on the bookkeeping connection, with the request's rate-limit hit when it has one to make
        values, counted = env["ocore.mcp.server"]._ocore_session_begin(
            session_id, key.id, "stream", limit if known else None, stream if known else None)
        if not values or values["key_id"] != key.id or values["ended_at"] or values["transport"] != "stream":
            raise HttpError(self._jsonrpc_error(None, protocol.SESSION_NOT_FOUND, "Session not found", 404))
        if not known:
            raise HttpError(
                self._jsonrpc_error(None, protocol.INVALID_REQUEST,
                                    f"Bad Request: unsupported protocol version {version}")
            )
        session = env["ocore.mcp.session"]._ocore_from_values(values.pop("id"), values)
        return session, counted

    def _legacy_post(self, env, caller, headers, query):
        key, settings = caller.key, caller.settings
        try:
            body = protocol.decode_body(request.httprequest.get_data())
        except protocol.ProtocolError as exc:
            return self._jsonrpc_error(None, exc.code, exc.message)
        messages = body if isinstance(body, list) else [body]
        if not messages:
            return self._jsonrpc_error(None, protocol.INVALID_REQUEST, "Invalid Request: empty batch")
        self._check_batch(messages, settings)
        server = env["ocore.mcp.server"]
        init = next((m for m in messages if isinstance(m, dict) and m.get("method") == "initialize"), None)
        if init is not None:
            if len(messages) > 1:
                return self._jsonrpc_error(None, protocol.INVALID_REQUEST, "initialize must not be batched")
            return self._initialize(env, caller, init, query)
        kinds = [protocol.message_kind(m) for m in messages]
        # a single request that the dispatcher counts (not tools/call & co, counted with their audit row): its
        # rate-limit hit made with the session lookup, one statement on the bookkeeping connection
        count = (len(messages) == 1 and kinds[0] == "request" and caller.auth is not None
                 and messages[0]["method"] not in SELF_COUNTED_METHODS)
        limit = policy.effective_rate_limit(caller.scope, settings) if count else None
        session, counted = self._legacy_session(env, key, headers, required=True, limit=limit)
        conn = self._session_connection(caller, session, "stream")
        conn.counted = counted
        if "request" not in kinds and None in kinds:
            # not a JSON-RPC 2.0 request, notification or response: nothing to accept (202) or run
            return self._jsonrpc_error(None, protocol.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 request, "
                                       "notification or response")
        if "request" not in kinds:
            for msg in messages:
                server._ocore_handle(conn, msg)
            return self._response(status=202)
        if len(messages) == 1 and (self._wants_stream(messages[0]) or self._wants_confirmation(env, conn, messages[0])):
            return self._streamed_call(env, caller, messages[0], session_id=session.session_id)
        replies = [r for r in (server._ocore_handle(conn, m) for m in messages) if r is not None]
        return self._response(replies if isinstance(body, list) else replies[0])

    def _initialize(self, env, caller, msg, query):
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        version = protocol.negotiate_version(params.get("protocolVersion"))
        client = params.get("clientInfo") or {}
        # A session row and its session_start audit row are committed without waiting for the WAL flush
        # (two fewer disk syncs on every client's start): a crash of PostgreSQL itself may lose the last
        # few hundred milliseconds of such commits, never part of one; the client then gets "Session not
        # found" and initializes again. (SET LOCAL, sent with the statement: until the end of the transaction.)
        open_kw = {
            "instances": _split(query.get("instances")),
            "categories": _split(query.get("categories")),
            "protocol_version": version,
            "client_name": str(client.get("name") or "")[:200] or False,
            "client_version": str(client.get("version") or "")[:100] or False,
            "client_capabilities": json.dumps(params.get("capabilities") or {}),
        }
        server = env["ocore.mcp.server"]
        if protocol.message_kind(msg) == "request" and caller.auth is not None:
            # the initialize's rate-limit hit and the session's INSERT in one statement on the bookkeeping
            # connection: the session exists only when the hit admits it
            limit = policy.effective_rate_limit(caller.scope, caller.settings)
            session, counted = server._ocore_open_session_counted(caller.key.id, limit, transport="stream",
                                                                  ip=self._client_ip(), **open_kw)
        else:
            session = env["ocore.mcp.session"]._ocore_open(caller.key.id, "stream", self._client_ip(),
                                                           wait_for_flush=False, **open_kw)
            counted = None
        if session:
            conn = self._session_connection(caller, session, "stream")
        else:  # refused by the rate limit: no session, the refusal answered and audited by the dispatcher
            conn = self._connection(caller, "stream", protocol_version=version, client_name=open_kw["client_name"]
                                    or None, client_version=open_kw["client_version"] or None,
                                    client_capabilities=params.get("capabilities") or {})
        conn.counted = counted
        session_id = conn.session_id  # read while the session is in the cache: a bookkeeping commit empties it
        reply = server._ocore_handle(conn, msg)
        if reply is None or "error" in reply:
            if session:
                session.unlink()
            return self._response(reply or protocol.error(None, protocol.INVALID_REQUEST, "Invalid Request"), 400)
        # on the bookkeeping connection (one round trip in autocommit: no BEGIN and COMMIT of the request's
        # connection), its SET LOCAL sent with the audit row's INSERT
        sql, sql_params = audit.insert_query({
            **audit.base_values(conn), "event": "session_start", "status": "success", "success": True,
            "result_summary": f"{conn.client_name or 'client'} {conn.client_version or ''} protocol {version}"})
        with env["ocore.mcp.server"]._ocore_bookkeeping() as cr:
            cr.execute("SET LOCAL synchronous_commit TO OFF; " + sql, sql_params)
        return self._response(reply, headers={"Mcp-Session-Id": session_id})

    def _end_session(self, env, session, caller, reason):
        if session._ocore_end(reason):
            conn = self._session_connection(caller, session, session.transport)
            audit.event(env.cr, conn, "session_end", status="success", success=True, result_summary=reason)
            hub.publish(env.cr, session.session_id, {"t": "close", "why": reason})

    # -- 2026-07-28 (stateless per-request envelope) ------------------------------------

    def _modern_post(self, env, caller, headers, query):
        raw = request.httprequest.get_data()
        try:
            body = protocol.decode_body(raw)
        except protocol.ProtocolError as exc:
            return self._jsonrpc_error(None, exc.code, exc.message)
        if isinstance(body, dict) and "id" not in body:
            # a notification: acknowledged (the per-request envelope defines none to act on)
            if protocol.message_kind(body) != "notification":
                return self._jsonrpc_error(None, protocol.INVALID_REQUEST, "Invalid Request")
            version = headers.get(protocol.HEADER_PROTOCOL_VERSION, "")
            if version not in protocol.MODERN_PROTOCOL_VERSIONS:
                exc = protocol.unsupported_version(version)
                return self._jsonrpc_error(None, exc.code, exc.message, data=exc.data)
            return self._response(status=202)
        if protocol.message_kind(body) != "request":
            return self._jsonrpc_error(
                None, protocol.INVALID_REQUEST, "Body must be a single JSON-RPC request or notification object"
            )
        try:
            envelope = protocol.classify_modern(body, headers)
        except protocol.ProtocolError as exc:
            return self._jsonrpc_error(body["id"], exc.code, exc.message, data=exc.data)
        client = envelope.client_info if isinstance(envelope.client_info, dict) else {}
        conn_kw = {
            "protocol_version": envelope.protocol_version,
            "client_name": str(client.get("name") or "")[:200] or None,
            "client_version": str(client.get("version") or "")[:100] or None,
            "client_capabilities": envelope.client_capabilities if isinstance(envelope.client_capabilities, dict)
            else {},
            "instances": _split(query.get("instances")),
            "categories": _split(query.get("categories")),
            "log_level": envelope.log_level,
        }
        if body.get("method") == "subscriptions/listen":
            return self._listen(env, caller, body, conn_kw)
        if self._wants_stream(body):
            return self._streamed_call(env, caller, body, conn_kw=conn_kw)
        conn = self._connection(caller, "modern", **conn_kw)
        reply = env["ocore.mcp.server"]._ocore_handle(conn, body)
        status = protocol.ERROR_HTTP_STATUS.get(reply["error"]["code"], 200) if "error" in reply else 200
        return self._response(reply, status)

    # -- subscriptions/listen (2026-07-28): the response is the stream of change notifications ---------

    def _listen(self, env, caller, body, conn_kw):
        """Its subscriptions opened by the dispatcher (rate limit, scopes, access: models/mcp_subscription.py),
        then an SSE stream: the acknowledgment, the notifications, and the result when the server ends it
        (key revoked, server stopping); a client that leaves ends it too. Held by the gevent worker (or a
        threaded server): the reverse proxy sends this POST there by its Mcp-Method header."""
        if not self._accepts_sse():
            return self._jsonrpc_error(body["id"], protocol.INVALID_REQUEST, "Not Acceptable: subscriptions/listen is "
                                       "answered as a text/event-stream", status=406)
        if not self._long_lived_ok():
            return self._jsonrpc_error(body["id"], protocol.INVALID_REQUEST, "subscriptions/listen is served on the "
                                       "streaming port (gevent worker): route POSTs with 'Mcp-Method: "
                                       "subscriptions/listen' there (README, Production deployment)", status=400)
        stream_id = self._open_stream_slot(env, caller, "listen", "modern", request_id=body["id"])
        conn = self._connection(caller, "modern", **conn_kw)
        reply = env["ocore.mcp.server"]._ocore_handle(conn, body)
        opened = getattr(conn, "listen", None)
        if "error" in reply or opened is None:
            env["ocore.mcp.stream.limit"]._ocore_stream_close(stream_id)  # committed with the request
            status = protocol.ERROR_HTTP_STATUS.get(reply["error"]["code"], 400) if "error" in reply else 500
            return self._response(reply, status)
        channel, honored = opened
        dbname = env.cr.dbname
        events = hub.subscribe(dbname, channel)  # listening before the subscriptions are visible: nothing missed
        env.cr.commit()  # pylint: disable=invalid-commit  # the subscriptions are visible to every worker now
        meta = {"io.modelcontextprotocol/subscriptionId": body["id"]}
        ack = protocol.notification("notifications/subscriptions/acknowledged", {"notifications": honored,
                                                                                  "_meta": meta})
        key_id = caller.key.id

        def revalidate():
            with _stream_cursor(dbname) as cr:
                compat.check_signaling(Registry(dbname), cr)
                renv = api.Environment(cr, SUPERUSER_ID, {})
                renv["ocore.mcp.subscription"]._ocore_listen_alive(channel)
                if not renv["ocore.mcp.stream.limit"]._ocore_stream_alive(stream_id, channel):
                    return "stream no longer counted among the key's open streams (its heartbeat stopped)"
                key = renv["ocore.mcp.key"].with_context(active_test=False).browse(key_id)
                try:
                    policy.check_key(key, renv["ocore.mcp.server"]._ocore_settings(), None)
                except policy.Refusal as exc:
                    return str(exc)
                return None

        def generate():
            threading.current_thread().type = "websocket"  # no limit_time_real reload for streams
            try:
                yield protocol.sse_event(ack)
                yield from _stream_events(events, revalidate)
                # closed or revalidated away (a client that left ends inside the loop): the result, the server
                # ended the stream on purpose
                yield protocol.sse_event(reply)
            finally:
                hub.unsubscribe(dbname, channel, events)
                try:
                    with _stream_cursor(dbname) as cr:
                        api.Environment(cr, SUPERUSER_ID, {})["ocore.mcp.stream.limit"]._ocore_stream_close(stream_id)
                        api.Environment(cr, SUPERUSER_ID, {})["ocore.mcp.subscription"]._ocore_close_listen(channel)
                except Exception:  # noqa: BLE001 - the autovacuum removes rows whose heartbeat stopped
                    _logger.warning("could not remove the subscriptions of listen stream %s", channel, exc_info=True)

        resp = WerkzeugResponse(generate(), mimetype="text/event-stream", direct_passthrough=True)
        for name, value in {**self._cors_headers(), **SSE_HEADERS}.items():
            resp.headers[name] = value
        return resp

    # -- streamed responses (progress / log notifications while a call runs) --------------

    def _call_in_thread(self, dbname, caller, msg, connect, name, on_reply=None, on_committed=None, on_error=None):
        """A thread (not started) that runs one request with a cursor of its own (the request's cursor
        cannot cross threads): ``connect(env, caller)`` rebuilds the call's connection there, with its
        ``emit``. ``on_reply(reply, cr)`` runs before the commit (a NOTIFY queued on ``cr`` leaves with
        it), ``on_committed(reply)`` after; on a failure ``on_error(error reply)``."""

        def work():
            try:
                with Registry(dbname).cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    conn = connect(env, caller.bound(env))
                    reply = env["ocore.mcp.server"]._ocore_handle(conn, msg)
                    if on_reply:
                        on_reply(reply, cr)
                    cr.commit()  # pylint: disable=invalid-commit  # own cursor of the call's thread
                if on_committed:
                    on_committed(reply)
            except Exception as exc:  # noqa: BLE001
                _logger.exception("MCP call in thread %s failed", name)
                if on_error:
                    on_error(protocol.error(msg.get("id"), protocol.INTERNAL_ERROR, f"Internal error: {exc}"))

        return threading.Thread(target=work, name=name, daemon=True)

    def _streamed_call(self, env, caller, msg, session_id=None, conn_kw=None):
        """Run a request in a helper thread with its own cursor; stream its notifications, then its reply."""
        events = queue.Queue()

        def connect(wenv, wcaller):
            if session_id:
                session = wenv["ocore.mcp.session"]._ocore_get(session_id)
                conn = self._session_connection(wcaller, session, "stream")
            else:
                conn = self._connection(wcaller, "modern", **conn_kw)
            conn.emit = lambda message: events.put(("message", message))
            return conn

        def reply(message):
            events.put(("reply", message))

        worker = self._call_in_thread(env.cr.dbname, caller, msg, connect, "ocore-mcp-call", on_committed=reply,
                                      on_error=reply)

        def generate():
            threading.current_thread().type = "websocket"  # no limit_time_real reload for streams
            worker.start()
            while True:
                try:
                    kind, message = events.get(timeout=KEEPALIVE_SECONDS)
                except queue.Empty:
                    yield b": ping\r\n\r\n"
                    continue
                yield protocol.sse_event(message)
                if kind == "reply":
                    return

        resp = WerkzeugResponse(generate(), mimetype="text/event-stream", direct_passthrough=True)
        for name, value in {**self._cors_headers(), **SSE_HEADERS}.items():
            resp.headers[name] = value
        if session_id:
            resp.headers["Mcp-Session-Id"] = session_id
        return resp

    # -- legacy SSE transport (2024-11-05 style) ---------------------------------------

    @http.route(["/ocore/mcp/sse", "/api/mcp/sse"], methods=["GET", "OPTIONS"], **ROUTE)
    def mcp_sse(self, **query):
        return self._serve(lambda env, settings: self._sse_open(env, settings, query))

    def _sse_open(self, env, settings, query):
        caller = self._authenticate(env, settings)
        key = caller.key
        stream_id = self._open_stream_slot(env, caller, "sse", "sse")
        session = env["ocore.mcp.session"]._ocore_open(
            key.id,
            "sse",
            self._client_ip(),
            instances=_split(query.get("instances")),
            categories=_split(query.get("categories")),
            protocol_version=protocol.LATEST_HANDSHAKE_VERSION,
        )
        conn = self._session_connection(caller, session, "sse")
        audit.event(env.cr, conn, "session_start", status="success", success=True,
                    result_summary="legacy SSE stream opened")
        base = request.httprequest.path.rsplit("/sse", 1)[0]
        endpoint = f"{base}/sse/messages?session_id={session.session_id}"
        return self._sse_response(env.cr.dbname, session, key.id, first=("endpoint", endpoint), end_on_close=True,
                                  stream_id=stream_id)

    @http.route(
        ["/ocore/mcp/sse/messages", "/ocore/mcp/messages", "/api/mcp/sse/messages", "/api/mcp/messages"],
        methods=["POST", "OPTIONS"],
        **ROUTE,
    )
    def mcp_sse_messages(self, session_id=None, **query):
        return self._serve(lambda env, settings: self._sse_post(env, settings, session_id))

    def _sse_post(self, env, settings, session_id):
        caller = self._authenticate(env, settings)
        key = caller.key
        # read on the bookkeeping connection (one statement: no BEGIN and COMMIT of the request's own)
        values = env["ocore.mcp.server"]._ocore_session_begin(session_id, key.id, "sse")[0] if session_id else None
        if not values or values["key_id"] != key.id or values["transport"] != "sse" or values["ended_at"]:
            return self._jsonrpc_error(None, protocol.SESSION_NOT_FOUND, "Session not found", 404)
        session = env["ocore.mcp.session"]._ocore_from_values(values.pop("id"), values)
        try:
            msg = protocol.decode_body(request.httprequest.get_data())
        except protocol.ProtocolError as exc:
            return self._jsonrpc_error(None, exc.code, exc.message)
        if isinstance(msg, list):
            self._check_batch(msg, settings)
        if isinstance(msg, dict) and msg.get("method") == "initialize":
            params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
            client = params.get("clientInfo") or {}
            session.write({
                "protocol_version": protocol.negotiate_version(params.get("protocolVersion")),
                "client_name": str(client.get("name") or "")[:200] or False,
                "client_version": str(client.get("version") or "")[:100] or False,
                "client_capabilities": json.dumps(params.get("capabilities") or {}),
            })
        conn = self._session_connection(caller, session, "sse")
        dbname = env.cr.dbname
        conn.emit = lambda message: hub.publish_now(dbname, session.session_id, {"t": "msg", "m": message})
        messages = msg if isinstance(msg, list) else [msg]
        calls = []
        for message in messages:
            if isinstance(message, dict) and message.get("method") == "tools/call" and "id" in message:
                # Answered on the stream when done, in a thread of its own: the acknowledgement does not
                # wait for a long call, so that the client can send its next messages meanwhile
                # (notifications/cancelled, pings, parallel calls; the SDK's SSE client sends one POST at
                # a time).
                calls.append(self._sse_call_in_background(dbname, caller, session, message))
                continue
            reply = env["ocore.mcp.server"]._ocore_handle(conn, message)
            if reply is not None:
                hub.publish(env.cr, session.session_id, {"t": "msg", "m": reply})
        # A short call is answered before the acknowledgement (its reply is on the stream by then); a
        # longer one goes on in the background after SSE_ACK_WAIT_SECONDS, the client free to cancel it.
        deadline = time.monotonic() + SSE_ACK_WAIT_SECONDS
        for thread, _answered in calls:
            thread.start()
        if calls:
            # end this request's transaction while the calls run rather than after: the 202 leaves sooner
            env.cr.commit()  # pylint: disable=invalid-commit  # the request's own work is done
        for _thread, answered in calls:
            answered.wait(max(0.0, deadline - time.monotonic()))
        return self._response("Accepted", 202, content_type="text/plain")

    def _sse_call_in_background(self, dbname, caller, session, msg):
        """(thread, event): a thread (not started) that runs a request of a legacy SSE session with its own
        cursor, its reply going to the stream, and the event it sets once the reply is ready to publish."""
        session_pk, session_id = session.id, session.session_id
        values = session._ocore_values()  # what the request read of the session: not read again by the thread
        answered = threading.Event()

        def connect(wenv, wcaller):
            conn = self._session_connection(wcaller, wenv["ocore.mcp.session"]._ocore_from_values(session_pk, values),
                                            "sse")
            conn.emit = lambda message: hub.publish_now(dbname, session_id, {"t": "msg", "m": message})
            return conn

        def on_reply(reply, cr):
            if reply is not None:
                hub.publish(cr, session_id, {"t": "msg", "m": reply})  # sent with the commit
            answered.set()  # the POST's 202 leaves while this commits

        def on_error(reply):
            hub.publish_now(dbname, session_id, {"t": "msg", "m": reply})
            answered.set()

        thread = self._call_in_thread(dbname, caller, msg, connect, "ocore-mcp-sse-call", on_reply=on_reply,
                                      on_error=on_error)
        return thread, answered

    def _sse_response(self, dbname, session, key_id, first, end_on_close, stream_id=None):
        """An SSE stream fed by the session's NOTIFY queue. Holds no DB connection while idle. ``stream_id``:
        its row among the key's open streams (heartbeat refreshed at each re-check, removed at the end)."""
        session_id, session_pk = session.session_id, session.id
        events = hub.subscribe(dbname, session_id)

        def revalidate():
            with _stream_cursor(dbname) as cr:
                # Outside a request nothing refreshes this process's caches: without this, a setting
                # changed by another worker (the kill switch, read through ir.config_parameter's
                # ormcache) is never seen by the streams of the gevent worker.
                compat.check_signaling(Registry(dbname), cr)
                env = api.Environment(cr, SUPERUSER_ID, {})
                key = env["ocore.mcp.key"].with_context(active_test=False).browse(key_id)
                sess = env["ocore.mcp.session"].browse(session_pk)
                if sess.ended_at:
                    return "session ended"
                if stream_id and not env["ocore.mcp.stream.limit"]._ocore_stream_alive(stream_id):
                    return "stream no longer counted among the key's open streams (its heartbeat stopped)"
                try:
                    policy.check_key(key, env["ocore.mcp.server"]._ocore_settings(), None)
                except policy.Refusal as exc:
                    return str(exc)
                return None

        def finish(reason):
            try:
                with _stream_cursor(dbname) as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    if stream_id:
                        env["ocore.mcp.stream.limit"]._ocore_stream_close(stream_id)
                    if end_on_close:  # the stream itself is closing: nothing to notify
                        env["ocore.mcp.session"].browse(session_pk)._ocore_end_logged(reason, notify=False)
            except Exception:  # noqa: BLE001
                _logger.warning("could not close MCP session %s", session_id, exc_info=True)

        def generate():
            threading.current_thread().type = "websocket"
            reason = "client disconnected"
            try:
                if first:
                    yield f"event: {first[0]}\r\ndata: {first[1]}\r\n\r\n".encode()
                else:
                    # the response headers leave with the first chunk: without one, a client (or a
                    # proxy) would not know the stream is open until the first ping
                    yield b": open\r\n\r\n"
                end, why = yield from _stream_events(events, revalidate)
                reason = (why or "closed") if end == "close" else why
            finally:
                hub.unsubscribe(dbname, session_id, events)
                finish(reason)

        resp = WerkzeugResponse(generate(), mimetype="text/event-stream", direct_passthrough=True)
        for name, value in {**self._cors_headers(), **SSE_HEADERS}.items():
            resp.headers[name] = value
        return resp
