"""A PostHog-API-compatible server for the tests (PostHog itself cannot run on the test machines).

- Capture: ``POST /batch/``, ``/e/``, ``/capture/``, ``/i/v0/e/``, ``/track/`` (JSON, gzip or not, a batch
  or one event, the project key as ``api_key``/``token``) store the events; ``/decide/`` and ``/flags/``
  evaluate the feature flags for a ``distinct_id`` in PostHog's response shapes (decide v3, flags v2).
- Query API: ``POST /api/projects/:id/query/`` (and ``/api/environments/:id/query/``) with a
  ``HogQLQuery``. Every query is first parsed with PostHog's own HogQL parser (the ``hogql-parser``
  package) and checked (known HogQL functions, the ``events`` table, placeholders given as ``values``):
  a query PostHog would refuse is refused here too (400, PostHog's error shape). It is then run on the
  stored events by chdb (ClickHouse in process, the engine PostHog runs HogQL on): ``properties.$x``
  becomes a JSON extraction, HogQL's ``toFloat``/``toInt`` are defined as the casts PostHog prints.
- ``GET /api/projects/:id/feature_flags/`` and ``/surveys/``: paginated lists in PostHog's shapes.
- ``mode``: ``"up"``, ``"slow"`` (API answers after ``slow_seconds``) or ``"error"`` (500); ``stop()``
  makes it unreachable.

    server = PosthogServer(project_api_key="phc_x", personal_api_key="phx_y").start()
    server.url, server.events(), server.queries
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import threading
import time
import types
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CAPTURE_PATHS = {"/batch", "/e", "/capture", "/i/v0/e", "/track", "/engage"}
# HogQL functions the tools may use (each one is in PostHog's HogQL function mapping)
HOGQL_FUNCTIONS = {
    "count", "countIf", "uniq", "uniqIf", "avg", "avgIf", "sum", "sumIf", "min", "max", "maxIf", "minIf",
    "any", "argMax", "argMin", "quantile", "round", "toFloat", "toInt", "toString", "toDate", "toStartOfDay",
    "toStartOfHour", "now", "today", "dateDiff", "toIntervalDay", "toIntervalMinute", "toIntervalHour",
    "if", "ifNull", "coalesce", "lower", "length", "greatest", "least",
}
EVENT_FIELDS = {"event", "timestamp", "distinct_id", "properties", "uuid", "created_at", "person_id"}
PROPERTY = re.compile(r"\bproperties\.(\$?[A-Za-z_][A-Za-z0-9_$]*)")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _load_hogql_parser():
    """PostHog's parser. Its extension imports ``posthog.hogql.*`` of PostHog's own code base at load time
    (for its AST mode); the JSON mode used here needs none of it, so stand-ins are registered when PostHog
    itself is not importable (the ``posthog`` SDK package shares the name)."""
    try:
        import hogql_parser  # noqa: PLC0415

        return hogql_parser
    except ImportError:
        pass

    class _Error(Exception):
        def __init__(self, message=None, *args, start=None, end=None, **kwargs):
            super().__init__(message)
            self.start, self.end = start, end

    class _Ast(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return type(name, (), {"__init__": lambda self, **kw: self.__dict__.update(kw)})

    saved = {name: sys.modules.get(name) for name in ("posthog", "posthog.hogql")}
    package = types.ModuleType("posthog")
    package.__path__ = []
    hogql = types.ModuleType("posthog.hogql")
    hogql.__path__ = []
    errors = types.ModuleType("posthog.hogql.errors")
    for name in ("BaseHogQLError", "ExposedHogQLError", "InternalHogQLError", "SyntaxError", "ParsingError",
                 "NotImplementedError", "QueryError", "ResolutionError", "ImpossibleASTError"):
        setattr(errors, name, type(name, (_Error,), {}))
    sys.modules.update({"posthog": package, "posthog.hogql": hogql, "posthog.hogql.errors": errors,
                        "posthog.hogql.ast": _Ast("posthog.hogql.ast"),
                        "posthog.hogql.base": _Ast("posthog.hogql.base")})
    try:
        import hogql_parser  # noqa: PLC0415
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return hogql_parser


hogql_parser = _load_hogql_parser()


class HogQLRefused(ValueError):
    pass


def _walk(node):
    if isinstance(node, dict):
        yield node
        if node.get("node") == "Placeholder":
            return  # its expression names the value, it is no field of a table
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def check_hogql(query, values):
    """Parse ``query`` with PostHog's parser; refuse what PostHog would: syntax errors, unknown functions,
    tables other than ``events``, unknown fields, placeholders without a value. Returns the JSON AST."""
    ast = json.loads(hogql_parser.parse_select_json(query))
    if ast.get("error"):
        raise HogQLRefused(f"{ast.get('type')}: {ast.get('message')}")
    aliases = {node.get("alias") for node in _walk(ast) if node.get("node") == "Alias"}
    for node in _walk(ast):
        kind = node.get("node")
        if kind == "Call" and node["name"] not in HOGQL_FUNCTIONS:
            raise HogQLRefused(f"Unsupported function call '{node['name']}(...)'")
        if kind == "JoinExpr" and isinstance(node.get("table"), dict) and node["table"].get("node") == "Field":
            chain = node["table"]["chain"]
            if chain != ["events"]:
                raise HogQLRefused(f"Unknown table '{'.'.join(map(str, chain))}'")
        if kind == "Field":
            head = node["chain"][0]
            if head not in EVENT_FIELDS and head not in aliases and head != "events":
                raise HogQLRefused(f"Unable to resolve field: {head}")
        if kind == "Placeholder":
            expr = node.get("expr") or {}
            name = (expr.get("chain") or [None])[0] if expr.get("node") == "Field" else node.get("field")
            if name not in (values or {}):
                raise HogQLRefused(f"Placeholder {{{name}}} is not given a value")
    return ast


def _literal(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if value is None:
        return "NULL"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def to_clickhouse(query, values):
    """The ClickHouse SQL chdb runs for a checked HogQL ``query`` (as PostHog's printer would, for the
    constructs the tools use)."""
    sql = PLACEHOLDER.sub(lambda m: _literal((values or {})[m.group(1)]), query)
    return PROPERTY.sub(lambda m: f"ph_prop(properties, '{m.group(1)}')", sql)


class EventStore:
    """The events, in chdb (a ClickHouse engine in process)."""

    def __init__(self):
        from chdb import session as chs  # noqa: PLC0415

        self.lock = threading.Lock()
        self.session = chs.Session()
        for statement in (
            "CREATE DATABASE IF NOT EXISTS ph",
            "CREATE TABLE IF NOT EXISTS ph.events (uuid String, event String, distinct_id String, "
            "timestamp DateTime64(6, 'UTC'), created_at DateTime64(6, 'UTC'), properties String) ENGINE = Memory",
            # properties.$x: the value as text, NULL when missing (HogQL's property access)
            "CREATE FUNCTION IF NOT EXISTS ph_prop AS (p, k) -> if(JSONHas(p, k), if(JSONType(p, k) = 'String', "
            "JSONExtractString(p, k), JSONExtractRaw(p, k)), NULL)",
            "CREATE FUNCTION IF NOT EXISTS toFloat AS (x) -> accurateCastOrNull(x, 'Float64')",
            "CREATE FUNCTION IF NOT EXISTS toInt AS (x) -> accurateCastOrNull(x, 'Int64')",
        ):
            self.session.query(statement)

    def insert(self, rows):
        if not rows:
            return
        values = ", ".join(
            "({}, {}, {}, {}, now64(6), {})".format(
                _literal(row["uuid"]), _literal(row["event"]), _literal(row["distinct_id"]),
                f"parseDateTime64BestEffort({_literal(row['timestamp'])}, 6, 'UTC')",
                _literal(json.dumps(row["properties"])),
            )
            for row in rows
        )
        with self.lock:
            self.session.query(f"INSERT INTO ph.events VALUES {values}")  # noqa: S608 - literals escaped

    def select(self, sql):
        settings = " SETTINGS output_format_json_quote_64bit_integers = 0, output_format_json_quote_denormals = 0"
        with self.lock:
            result = self.session.query(sql + settings, "JSONCompact")
        data = json.loads(result.bytes() or b"{}")
        return [m["name"] for m in data.get("meta", [])], [m["type"] for m in data.get("meta", [])], data.get("data", [])

    def close(self):
        # closed explicitly: chdb's engine left to the interpreter's exit can crash it
        with self.lock:
            self.session.close()

    def use(self):
        with self.lock:
            self.session.query("USE ph")


def _now_iso():
    return datetime.now(timezone.utc).isoformat()


class PosthogServer:
    def __init__(self, project_api_key="phc_test_project_key", personal_api_key="phx_test_personal_key",
                 project_id=1, feature_flags=None, surveys=None):
        self.project_api_key = project_api_key
        self.personal_api_key = personal_api_key
        self.project_id = project_id
        self.feature_flags = list(feature_flags or [])
        self.surveys = list(surveys or [])
        self.mode = "up"
        self.slow_seconds = 30.0
        self.store = EventStore()
        self.store.use()
        self.queries = []  # every HogQL query received: {"query", "values", "error"}
        self.requests = []  # (method, path, headers) of every request
        self.refused_captures = 0
        self._events = []
        self._lock = threading.Lock()
        self.httpd = None
        self.thread = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self, port=0):
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="posthog-test-server", daemon=True)
        self.thread.start()
        return self

    @property
    def port(self):
        return self.httpd.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
            self.store.close()

    # -- data --------------------------------------------------------------------------------------------

    def events(self, event=None):
        with self._lock:
            return [e for e in self._events if event is None or e["event"] == event]

    def wait_for(self, predicate, timeout=30.0, interval=0.2):
        """The stored events once ``predicate(events)`` is true (AssertionError after ``timeout``)."""
        end = time.monotonic() + timeout
        while True:
            events = self.events()
            if predicate(events):
                return events
            if time.monotonic() > end:
                raise AssertionError(f"PostHog test server: condition not met in {timeout}s; "
                                     f"events: {sorted({e['event'] for e in events})}")
            time.sleep(interval)

    def add_events(self, items):
        """Store events given as (event, distinct_id, properties[, timestamp]) directly."""
        rows = []
        for item in items:
            event, distinct, props = item[:3]
            when = item[3] if len(item) > 3 else _now_iso()
            rows.append({"uuid": str(uuid.uuid4()), "event": event, "distinct_id": distinct,
                         "timestamp": when, "properties": props})
        self._store(rows)

    def _store(self, rows):
        self.store.insert(rows)
        with self._lock:
            self._events.extend(rows)

    def ingest(self, payload):
        """Events of a capture request body; False when the project key is wrong."""
        items = payload if isinstance(payload, list) else None
        key = None
        if isinstance(payload, dict):
            key = payload.get("api_key") or payload.get("token")
            items = payload.get("batch") if isinstance(payload.get("batch"), list) else [payload]
        rows = []
        for item in items or []:
            if not isinstance(item, dict):
                continue
            props = dict(item.get("properties") or {})
            item_key = key or item.get("api_key") or props.pop("token", None)
            if item_key != self.project_api_key:
                return False
            distinct = item.get("distinct_id") or props.get("distinct_id")
            if not item.get("event") or not distinct:
                continue
            rows.append({"uuid": item.get("uuid") or str(uuid.uuid4()), "event": item["event"],
                         "distinct_id": str(distinct), "timestamp": item.get("timestamp") or _now_iso(),
                         "properties": props})
        self._store(rows)
        return True

    def query(self, body):
        query = (body or {}).get("query") or {}
        if query.get("kind") != "HogQLQuery" or not isinstance(query.get("query"), str):
            raise HogQLRefused("Only HogQLQuery is supported here")
        text, values = query["query"], query.get("values") or {}
        record = {"query": text, "values": values, "error": None}
        self.queries.append(record)
        try:
            check_hogql(text, values)
            columns, types_, rows = self.store.select(to_clickhouse(text, values))
        except HogQLRefused as exc:
            record["error"] = str(exc)
            raise
        except Exception as exc:  # noqa: BLE001 - a ClickHouse error is a query error for the client
            record["error"] = str(exc)
            raise HogQLRefused(str(exc).splitlines()[0][:500]) from None
        return {"results": rows, "columns": columns, "types": types_, "hogql": text, "hasMore": False,
                "is_cached": False, "limit": 100, "offset": 0, "timings": [], "modifiers": {}}

    # -- feature flags -----------------------------------------------------------------------------------

    def evaluate_flags(self, distinct_id):
        """Flag values for ``distinct_id``: active flags whose rollout bucket (PostHog's hash) includes it."""
        import hashlib  # noqa: PLC0415

        values = {}
        for flag in self.feature_flags:
            if not flag.get("active") or flag.get("deleted"):
                continue
            groups = (flag.get("filters") or {}).get("groups") or [{}]
            key = flag["key"]
            bucket = int(hashlib.sha1(f"{key}.{distinct_id}".encode()).hexdigest()[:15], 16) / 0xFFFFFFFFFFFFFFF  # noqa: S324 - PostHog's bucketing
            rollout = groups[0].get("rollout_percentage")
            values[key] = rollout is None or bucket <= rollout / 100
        return values


class _Handler(BaseHTTPRequestHandler):
    server_state: PosthogServer = None
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding") == "gzip" or data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qs(data.decode())
            data = (form.get("data") or [""])[0].encode()
        return json.loads(data or b"{}")

    def _send(self, status, payload=None):
        body = b"" if payload is None else json.dumps(payload, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self):
        path = urlsplit(self.path).path.rstrip("/") or "/"
        state = self.server_state
        state.requests.append((self.command, path, dict(self.headers)))
        return path, state

    def _api_auth(self, state):
        if self.headers.get("Authorization") != f"Bearer {state.personal_api_key}":
            self._send(401, {"type": "authentication_error", "code": "authentication_failed",
                             "detail": "Personal API key is invalid.", "attr": None})
            return False
        return True

    def _api_project(self, path, state):
        match = re.match(r"^/api/(?:projects|environments)/([^/]+)/(.+)$", path)
        if not match:
            return None
        if match.group(1) != str(state.project_id):
            self._send(404, {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None})
            return False
        return match.group(2)

    def _slow_or_error(self, state):
        if state.mode == "slow":
            time.sleep(state.slow_seconds)
        if state.mode == "error":
            self._send(500, {"type": "server_error", "code": "error", "detail": "A server error occurred."})
            return True
        return False

    def do_POST(self):  # noqa: N802 - http.server's naming
        path, state = self._route()
        try:
            body = self._body()
        except (ValueError, OSError):
            self._send(400, {"type": "validation_error", "code": "invalid_payload", "detail": "Malformed request data"})
            return
        if path in CAPTURE_PATHS:
            if state.mode == "slow":
                time.sleep(state.slow_seconds)
            if not state.ingest(body):
                state.refused_captures += 1
                self._send(401, {"type": "authentication_error", "code": "invalid_api_key",
                                 "detail": "Project API key invalid. You can find your project API key in PostHog "
                                           "project settings."})
                return
            self._send(200, {"status": 1})
            return
        if path in ("/decide", "/flags"):
            token = body.get("api_key") or body.get("token")
            if token != state.project_api_key:
                self._send(401, {"type": "authentication_error", "code": "invalid_api_key",
                                 "detail": "Project API key invalid."})
                return
            values = state.evaluate_flags(str(body.get("distinct_id") or ""))
            if path == "/flags":
                self._send(200, {"flags": {key: {"key": key, "enabled": enabled, "variant": None,
                                                 "reason": {"code": "condition_match" if enabled else "out_of_rollout_bound"},
                                                 "metadata": {"id": 0, "version": 1, "payload": None}}
                                           for key, enabled in values.items()},
                                 "errorsWhileComputingFlags": False, "requestId": str(uuid.uuid4())})
            else:
                self._send(200, {"featureFlags": values, "featureFlagPayloads": {},
                                 "errorsWhileComputingFlags": False})
            return
        rest = self._api_project(path, state)
        if rest is None:
            self._send(404, {"detail": "Not found."})
            return
        if rest is False or not self._api_auth(state) or self._slow_or_error(state):
            return
        if rest == "query":
            try:
                self._send(200, state.query(body))
            except HogQLRefused as exc:
                self._send(400, {"type": "validation_error", "code": "query_error", "detail": str(exc), "attr": None})
            return
        self._send(404, {"detail": "Not found."})

    def do_GET(self):  # noqa: N802 - http.server's naming
        path, state = self._route()
        rest = self._api_project(path, state)
        if rest is None:
            self._send(404, {"detail": "Not found."})
            return
        if rest is False or not self._api_auth(state) or self._slow_or_error(state):
            return
        lists = {"feature_flags": state.feature_flags, "surveys": state.surveys}
        if rest not in lists:
            self._send(404, {"detail": "Not found."})
            return
        query = parse_qs(urlsplit(self.path).query)
        limit = int((query.get("limit") or ["100"])[0])
        offset = int((query.get("offset") or ["0"])[0])
        items = lists[rest]
        page = items[offset:offset + limit]
        base = f"http://{self.headers.get('Host')}{path}/"
        self._send(200, {
            "count": len(items),
            "next": f"{base}?limit={limit}&offset={offset + limit}" if offset + limit < len(items) else None,
            "previous": f"{base}?limit={limit}&offset={max(0, offset - limit)}" if offset else None,
            "results": page,
        })


def feature_flag(flag_id, key, name="", active=True, rollout=None, variants=None):
    """A feature flag as PostHog's API returns it (the fields the tools read, and the usual others)."""
    filters = {"groups": [{"properties": [], "rollout_percentage": rollout, "variant": None}],
               "payloads": {}, "multivariate": None}
    if variants:
        filters["multivariate"] = {"variants": [{"key": k, "name": k, "rollout_percentage": p} for k, p in variants]}
    return {"id": flag_id, "name": name, "key": key, "filters": filters, "deleted": False, "active": active,
            "created_by": None, "created_at": _now_iso(), "is_simple_flag": not variants,
            "rollout_percentage": rollout, "ensure_experience_continuity": False, "experiment_set": [],
            "surveys": [], "features": [], "rollback_conditions": None, "performed_rollback": False,
            "can_edit": True, "tags": [], "usage_dashboard": None, "analytics_dashboards": [],
            "has_enriched_analytics": False, "evaluation_runtime": "all"}


def survey(survey_id, name, survey_type="popover", start_date=None, end_date=None, archived=False, questions=1):
    """A survey as PostHog's API returns it."""
    return {"id": survey_id, "name": name, "description": "", "type": survey_type, "linked_flag": None,
            "targeting_flag": None, "questions": [{"type": "open", "question": f"Question {i + 1}?"}
                                                  for i in range(questions)],
            "conditions": None, "appearance": None, "created_at": _now_iso(), "created_by": None,
            "start_date": start_date, "end_date": end_date, "archived": archived, "responses_limit": None}


if __name__ == "__main__":  # python tests/posthog_server.py [port]: a server to point a dev Odoo at
    server = PosthogServer().start(int(sys.argv[1]) if len(sys.argv) > 1 else 8010)
    print(f"PostHog test server on {server.url} (project key {server.project_api_key}, personal key "
          f"{server.personal_api_key}, project {server.project_id})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
