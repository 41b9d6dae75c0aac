"""Tool family "monitoring": analytics of this instance from PostHog.

The events are those the capture sends (``service/posthog.py``, ``models/mcp_posthog.py`` and the web
client's ``static/src/posthog/``): ``$pageview``, ``odoo_module_open``, ``$web_vitals``, ``$exception``,
``odoo_rpc_timings``, ``odoo_slow_rpc``, ``mcp_tool_call``, each with an ``odoo_instance`` property (the
instance slug: one PostHog project may hold several instances) and a ``distinct_id`` ``<slug>:<user id>``.

The tools read them with PostHog's query API (HogQL, ``POST /api/projects/:id/query/``, the instance and
the period passed as placeholder values, never spliced into the query text) and its feature flag and
survey endpoints, with the personal API key of the settings. That key is a secret: it is sent in the
``Authorization`` header only, masked in the audit by value, and no error message quotes it. Every
request gets the call's remaining time as its timeout: PostHog down or slow gives a clear error within
``timeout_seconds``. The tools are offered to system administrators only (the activity of every user).
"""

from typing import Literal

import requests

from odoo import _, models
from odoo.exceptions import UserError

from ..lib.tooling import mcp_tool
from ..service import posthog as ph

PERIODS = {"1d": 1, "7d": 7, "14d": 14, "30d": 30, "90d": 90}
Period = Literal["1d", "7d", "14d", "30d", "90d"]
ADMIN = {"admin_only": True, "model_args": ()}
DEFAULT_TIMEOUT = 15  # seconds, outside a call (the pipeline gives the call's remaining time)
CONNECT_TIMEOUT = 5
MARGIN = 0.5  # seconds kept to answer with an error before the call's deadline
PAGE_LIMIT = 100

# Core Web Vitals thresholds (good up to the first value, poor above the second)
VITALS = {"lcp": (2500, 4000), "inp": (200, 500), "cls": (0.1, 0.25), "fcp": (1800, 3000)}

# -- HogQL: every query of the family -------------------------------------------------------------------
# {instance} and {days} are HogQL placeholders, given as "values" of the query.
SCOPE = "timestamp >= now() - toIntervalDay({days}) AND properties.odoo_instance = {instance}"
Q_ACTIVE = (
    "SELECT uniqIf(distinct_id, timestamp >= now() - toIntervalDay(1)) AS dau, "
    "uniqIf(distinct_id, timestamp >= now() - toIntervalDay(7)) AS wau, "
    "uniq(distinct_id) AS mau "
    "FROM events WHERE timestamp >= now() - toIntervalDay(30) AND properties.odoo_instance = {instance}"
)
Q_DAILY_USERS = (
    "SELECT toDate(timestamp) AS day, uniq(distinct_id) AS users, count() AS events "
    f"FROM events WHERE {SCOPE} GROUP BY day ORDER BY day"
)
Q_TOP_USERS = (
    "SELECT distinct_id, count() AS events, uniq(properties.$session_id) AS sessions, "
    "max(timestamp) AS last_seen "
    f"FROM events WHERE {SCOPE} GROUP BY distinct_id ORDER BY events DESC LIMIT 10"
)
Q_ONLINE = (
    "SELECT distinct_id, max(timestamp) AS last_seen, argMax(properties.odoo_module, timestamp) AS module, "
    "argMax(properties.$pathname, timestamp) AS path, count() AS events "
    "FROM events WHERE timestamp >= now() - toIntervalMinute(5) AND properties.odoo_instance = {instance} "
    "GROUP BY distinct_id ORDER BY last_seen DESC LIMIT 100"
)
WEB = "event IN ('$pageview', 'odoo_module_open')"
Q_MODULES = (
    "SELECT properties.odoo_module AS module, any(properties.odoo_app) AS app, "
    "countIf(event = 'odoo_module_open') AS opens, countIf(event = '$pageview') AS pageviews, "
    "uniq(distinct_id) AS users "
    f"FROM events WHERE {SCOPE} AND {WEB} AND properties.odoo_module IS NOT NULL AND properties.odoo_module != '' "
    "GROUP BY module ORDER BY users DESC, opens DESC, pageviews DESC LIMIT {limit}"
)
Q_WEB_USERS = f"SELECT uniq(distinct_id) AS users FROM events WHERE {SCOPE} AND {WEB}"
VITALS_COLUMNS = (
    "quantile(0.75)(toFloat(properties.$web_vitals_LCP_value)) AS lcp_p75, "
    "quantile(0.75)(toFloat(properties.$web_vitals_INP_value)) AS inp_p75, "
    "quantile(0.75)(toFloat(properties.$web_vitals_CLS_value)) AS cls_p75, "
    "quantile(0.75)(toFloat(properties.$web_vitals_FCP_value)) AS fcp_p75, "
    "count() AS samples"
)
Q_VITALS = f"SELECT {VITALS_COLUMNS} FROM events WHERE {SCOPE} AND event = '$web_vitals'"
Q_VITALS_PAGES = (
    f"SELECT properties.$pathname AS path, {VITALS_COLUMNS} "
    f"FROM events WHERE {SCOPE} AND event = '$web_vitals' "
    "GROUP BY path ORDER BY lcp_p75 DESC LIMIT 10"
)
Q_ERRORS = (
    "SELECT properties.$exception_type AS type, properties.$exception_source AS source, count() AS count, "
    "uniq(distinct_id) AS users, any(properties.odoo_endpoint) AS example_endpoint, max(timestamp) AS last_seen "
    f"FROM events WHERE {SCOPE} AND event = '$exception' "
    "GROUP BY type, source ORDER BY count DESC LIMIT 25"
)
Q_ERRORS_DAILY = (
    "SELECT toDate(timestamp) AS day, count() AS errors "
    f"FROM events WHERE {SCOPE} AND event = '$exception' GROUP BY day ORDER BY day"
)
Q_RPC_WEB = (
    "SELECT properties.odoo_endpoint AS endpoint, sum(toFloat(properties.rpc_count)) AS calls, "
    "round(sum(toFloat(properties.rpc_total_ms)) / sum(toFloat(properties.rpc_count)), 1) AS avg_ms, "
    "max(toFloat(properties.rpc_max_ms)) AS max_ms "
    f"FROM events WHERE {SCOPE} AND event = 'odoo_rpc_timings' "
    "GROUP BY endpoint ORDER BY avg_ms DESC LIMIT 20"
)
Q_RPC_SLOW = (
    "SELECT properties.odoo_endpoint AS endpoint, count() AS calls, "
    "round(avg(toFloat(properties.duration_ms)), 1) AS avg_ms, max(toFloat(properties.duration_ms)) AS max_ms "
    f"FROM events WHERE {SCOPE} AND event = 'odoo_slow_rpc' "
    "GROUP BY endpoint ORDER BY avg_ms DESC LIMIT 20"
)
SESSIONS = (
    "SELECT properties.$session_id AS session_id, toDate(min(timestamp)) AS day, "
    "dateDiff('second', min(timestamp), max(timestamp)) AS duration, "
    "countIf(event = '$pageview') AS pageviews, countIf(event = '$exception') AS errors "
    f"FROM events WHERE {SCOPE} AND properties.$session_id IS NOT NULL GROUP BY session_id"
)
Q_SESSIONS = (
    "SELECT count() AS sessions, round(avg(duration), 1) AS avg_duration_seconds, "
    "countIf(pageviews <= 1) AS bounces, countIf(errors > 0) AS sessions_with_errors "
    f"FROM ({SESSIONS})"
)
Q_SESSIONS_DAILY = (
    "SELECT day, count() AS sessions, round(avg(duration), 1) AS avg_duration_seconds, "
    f"countIf(pageviews <= 1) AS bounces FROM ({SESSIONS}) GROUP BY day ORDER BY day"
)
Q_FLAG_CALLS = (
    "SELECT properties.$feature_flag AS flag, count() AS calls, uniq(distinct_id) AS users FROM events "
    "WHERE timestamp >= now() - toIntervalDay({days}) AND event = '$feature_flag_called' GROUP BY flag"
)
Q_SURVEY_RESPONSES = (
    "SELECT properties.$survey_id AS survey_id, count() AS responses FROM events "
    "WHERE timestamp >= now() - toIntervalDay({days}) AND event = 'survey sent' GROUP BY survey_id"
)
QUERIES = {name: value for name, value in globals().items() if name.startswith("Q_")}


def _rating(metric, value):
    if value is None:
        return None
    good, poor = VITALS[metric]
    return "good" if value <= good else "poor" if value > poor else "needs_improvement"


def _ratio(part, whole):
    return round(part / whole, 4) if whole else None


def _number(value):
    """A number of a query row (PostHog may send floats for integer aggregates, NaN as null)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number != number:  # noqa: PLR0124 - NaN of an empty quantile
        return None
    return int(number) if number.is_integer() else round(number, 4)


class PosthogApi:
    """PostHog's private API for one project, within the call's remaining time."""

    def __init__(self, env, host, project_id, key, deadline=None):
        self.env = env  # the language of the error messages (odoo's _ reads it from self.env)
        self.host = host
        self.project_id = project_id
        self._key = key
        self.deadline = deadline

    def _timeout(self):
        remaining = self.deadline.remaining() - MARGIN if self.deadline else DEFAULT_TIMEOUT
        if remaining <= 0.1:
            raise UserError(_("PostHog: no time left in this call for another request; raise timeout_seconds."))
        return (min(CONNECT_TIMEOUT, remaining), remaining)

    def request(self, method, path, body=None, params=None):
        url = f"{self.host}/api/projects/{requests.utils.quote(str(self.project_id), safe='')}/{path}"
        timeout = self._timeout()
        try:
            response = requests.request(
                method, url, json=body, params=params, timeout=timeout, allow_redirects=False,
                headers={"Authorization": f"Bearer {self._key}", "Accept": "application/json"},
            )
        except requests.Timeout:
            raise UserError(_(
                "PostHog at %(host)s did not answer within %(seconds).1f s (the call's timeout_seconds); "
                "it is down or slow: try again later or with a larger timeout_seconds.",
                host=self.host, seconds=timeout[1],
            )) from None
        except requests.RequestException as exc:
            raise UserError(_(
                "PostHog at %(host)s is unreachable (%(error)s): check the PostHog host in Settings > MCP > "
                "Monitoring (PostHog).", host=self.host, error=type(exc).__name__,
            )) from None
        if response.status_code in (401, 403):
            raise UserError(_(
                "PostHog refused the personal API key (HTTP %(status)s): set a valid personal API key with the "
                "query, feature flag and survey read scopes for project %(project)s in Settings > MCP > "
                "Monitoring (PostHog).", status=response.status_code, project=self.project_id,
            ))
        if response.status_code == 404:
            raise UserError(_(
                "PostHog has no project %(project)s at %(host)s (HTTP 404): check the project id in Settings.",
                project=self.project_id, host=self.host,
            ))
        if response.status_code >= 300:
            raise UserError(_("PostHog answered HTTP %(status)s: %(detail)s",
                              status=response.status_code, detail=self._detail(response)))
        try:
            return response.json()
        except ValueError:
            raise UserError(_("PostHog answered something else than JSON (HTTP %(status)s).",
                              status=response.status_code)) from None

    def _detail(self, response):
        try:
            data = response.json()
        except ValueError:
            return response.text[:300].replace(self._key, "[REDACTED]")
        detail = data.get("detail") or data.get("error") or data if isinstance(data, dict) else data
        return str(detail)[:300].replace(self._key, "[REDACTED]")

    def query(self, hogql, **values):
        """Rows of a HogQL query as dicts (``POST /api/projects/:id/query/``)."""
        body = {"query": {"kind": "HogQLQuery", "query": hogql, "values": values}, "name": "ocore_mcp monitoring"}
        data = self.request("POST", "query/", body)
        columns = data.get("columns") or []
        return [dict(zip(columns, row, strict=False)) for row in data.get("results") or []]

    def list(self, path):
        """Every object of a paginated list endpoint (``feature_flags/``, ``surveys/``), up to 500."""
        items, offset = [], 0
        while True:
            data = self.request("GET", path, params={"limit": PAGE_LIMIT, "offset": offset})
            page = data.get("results") or []
            items.extend(page)
            offset += len(page)
            if not data.get("next") or not page or offset >= 5 * PAGE_LIMIT:
                return items


class MonitoringTools(models.AbstractModel):
    _name = "ocore.mcp.tools.monitoring"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: monitoring (PostHog)"

    # -- helpers ---------------------------------------------------------------------------------------

    def _ocore_posthog(self):
        """The project's API client and the settings; a clear error naming what is missing."""
        posthog = self.env["ocore.mcp.posthog"]
        config = posthog._ocore_posthog_config()
        key = posthog._ocore_posthog_personal_api_key()
        missing = [label for label, value in ((_("PostHog host"), config["host"]),
                                              (_("project id"), config["project_id"]),
                                              (_("personal API key"), key)) if not value]
        if missing:
            raise UserError(_(
                "PostHog is not configured for the monitoring tools: set the %(missing)s in Settings > MCP > "
                "Monitoring (PostHog).", missing=", ".join(missing),
            ))
        call = self._call()
        if call is not None:
            call.keep_secret(key)  # masked by value in the audit, whatever quotes it
        deadline = call.deadline if call is not None else None
        return PosthogApi(self.env, ph.api_host(config["host"]), config["project_id"], key, deadline), config

    def _ocore_scope(self, config, period):
        return {"instance": config["instance"], "days": PERIODS[period]}

    def _ocore_users_of(self, config, distinct_ids):
        """{distinct_id: {user_id, login, name}} for this instance's ids ``<slug>:<user id>``, read in Odoo
        (PostHog holds no name unless personal data was enabled)."""
        prefix = f"{config['instance']}:"
        ids = {}
        for distinct in distinct_ids:
            if isinstance(distinct, str) and distinct.startswith(prefix) and distinct[len(prefix):].isdigit():
                ids[distinct] = int(distinct[len(prefix):])
        users = self.env["res.users"].with_context(active_test=False).browse(set(ids.values())).exists()
        by_id = {user.id: {"user_id": user.id, "login": user.login, "name": user.name} for user in users}
        return {distinct: by_id.get(uid) for distinct, uid in ids.items()}

    def _ocore_active(self, api, config, period):
        scope = self._ocore_scope(config, period)
        counts = (api.query(Q_ACTIVE, instance=config["instance"]) or [{}])[0]
        return {key: _number(counts.get(key)) or 0 for key in ("dau", "wau", "mau")}, scope

    def _ocore_sessions(self, api, scope):
        row = (api.query(Q_SESSIONS, **scope) or [{}])[0]
        sessions = _number(row.get("sessions")) or 0
        return {
            "sessions": sessions,
            "avg_duration_seconds": _number(row.get("avg_duration_seconds")) if sessions else None,
            "bounce_rate": _ratio(_number(row.get("bounces")) or 0, sessions),
            "error_rate": _ratio(_number(row.get("sessions_with_errors")) or 0, sessions),
        }

    def _ocore_vitals(self, row):
        vitals = {}
        for metric in VITALS:
            value = _number(row.get(f"{metric}_p75"))
            vitals[metric] = {"p75": value, "rating": _rating(metric, value)}
        vitals["samples"] = _number(row.get("samples")) or 0
        return vitals

    def _ocore_modules(self, api, scope, limit):
        rows = api.query(Q_MODULES, limit=limit, **scope)
        total = _number((api.query(Q_WEB_USERS, **scope) or [{}])[0].get("users")) or 0
        modules = [{
            "module": row.get("module"),
            "app": row.get("app"),
            "opens": _number(row.get("opens")) or 0,
            "pageviews": _number(row.get("pageviews")) or 0,
            "users": _number(row.get("users")) or 0,
            "adoption_rate": _ratio(_number(row.get("users")) or 0, total),
        } for row in rows]
        return modules, total

    # -- tools -----------------------------------------------------------------------------------------

    @mcp_tool("monitoring", **ADMIN, title="PostHog dashboard")
    def _tool_posthog_dashboard(self, period: Period = "7d") -> dict:
        """DAU, WAU, MAU, sessions, error rate, top modules, web vitals."""
        api, config = self._ocore_posthog()
        active, scope = self._ocore_active(api, config, period)
        sessions = self._ocore_sessions(api, scope)
        modules, _total = self._ocore_modules(api, scope, 5)
        vitals = self._ocore_vitals((api.query(Q_VITALS, **scope) or [{}])[0])
        errors = sum(_number(row.get("count")) or 0 for row in api.query(Q_ERRORS, **scope))
        return {"period": period, "instance": config["instance"], **active, **sessions, "errors": errors,
                "top_modules": modules, "web_vitals": vitals}

    @mcp_tool("monitoring", **ADMIN, title="PostHog active users")
    def _tool_posthog_active_users(self, period: Period = "7d") -> dict:
        """DAU/WAU/MAU, daily active users and top users."""
        api, config = self._ocore_posthog()
        active, scope = self._ocore_active(api, config, period)
        daily = [{"day": row.get("day"), "users": _number(row.get("users")) or 0,
                  "events": _number(row.get("events")) or 0} for row in api.query(Q_DAILY_USERS, **scope)]
        rows = api.query(Q_TOP_USERS, **scope)
        users = self._ocore_users_of(config, [row.get("distinct_id") for row in rows])
        top = [{"distinct_id": row.get("distinct_id"), **(users.get(row.get("distinct_id")) or {}),
                "events": _number(row.get("events")) or 0, "sessions": _number(row.get("sessions")) or 0,
                "last_seen": row.get("last_seen")} for row in rows]
        return {"period": period, "instance": config["instance"], **active, "daily": daily, "top_users": top}

    @mcp_tool("monitoring", **ADMIN, title="PostHog online users")
    def _tool_posthog_online_users(self, period: Period = "1d") -> dict:
        """Users active in the last 5 minutes, with their module."""
        api, config = self._ocore_posthog()
        rows = api.query(Q_ONLINE, instance=config["instance"])
        users = self._ocore_users_of(config, [row.get("distinct_id") for row in rows])
        online = [{"distinct_id": row.get("distinct_id"), **(users.get(row.get("distinct_id")) or {}),
                   "last_seen": row.get("last_seen"), "module": row.get("module"), "path": row.get("path"),
                   "events": _number(row.get("events")) or 0} for row in rows]
        return {"period": period, "window_minutes": 5, "instance": config["instance"], "online": len(online),
                "users": online}

    @mcp_tool("monitoring", **ADMIN, title="PostHog module usage")
    def _tool_posthog_module_usage(self, period: Period = "7d") -> dict:
        """Apps opened: page views, users, adoption."""
        api, config = self._ocore_posthog()
        scope = self._ocore_scope(config, period)
        modules, total = self._ocore_modules(api, scope, 50)
        return {"period": period, "instance": config["instance"], "web_users": total, "modules": modules}

    @mcp_tool("monitoring", **ADMIN, title="PostHog web vitals")
    def _tool_posthog_web_vitals(self, period: Period = "7d") -> dict:
        """LCP, INP, CLS, FCP at p75 with ratings; slowest pages."""
        api, config = self._ocore_posthog()
        scope = self._ocore_scope(config, period)
        overall = self._ocore_vitals((api.query(Q_VITALS, **scope) or [{}])[0])
        pages = [{"path": row.get("path"), **self._ocore_vitals(row)} for row in api.query(Q_VITALS_PAGES, **scope)]
        return {"period": period, "instance": config["instance"], "units": {"lcp": "ms", "inp": "ms", "fcp": "ms",
                                                                              "cls": "score"},
                **overall, "pages": pages}

    @mcp_tool("monitoring", **ADMIN, title="PostHog errors")
    def _tool_posthog_errors(self, period: Period = "7d") -> dict:
        """Top errors (web and server): counts, users, daily trend."""
        api, config = self._ocore_posthog()
        scope = self._ocore_scope(config, period)
        types = [{"type": row.get("type"), "source": row.get("source"), "count": _number(row.get("count")) or 0,
                  "users": _number(row.get("users")) or 0, "example_endpoint": row.get("example_endpoint"),
                  "last_seen": row.get("last_seen")} for row in api.query(Q_ERRORS, **scope)]
        trend = [{"day": row.get("day"), "errors": _number(row.get("errors")) or 0}
                 for row in api.query(Q_ERRORS_DAILY, **scope)]
        return {"period": period, "instance": config["instance"], "total": sum(t["count"] for t in types),
                "types": types, "trend": trend}

    @mcp_tool("monitoring", **ADMIN, title="PostHog slow RPCs")
    def _tool_posthog_slow_rpcs(self, period: Period = "7d") -> dict:
        """Slowest RPCs (model.method): average duration, calls; server slow RPC reports."""
        api, config = self._ocore_posthog()
        scope = self._ocore_scope(config, period)

        def rows(query):
            return [{"endpoint": row.get("endpoint"), "calls": _number(row.get("calls")) or 0,
                     "avg_ms": _number(row.get("avg_ms")), "max_ms": _number(row.get("max_ms"))}
                    for row in api.query(query, **scope)]

        return {"period": period, "instance": config["instance"], "slow_rpc_threshold_ms": config["slow_rpc_ms"],
                "slowest": rows(Q_RPC_WEB), "server_slow": rows(Q_RPC_SLOW)}

    @mcp_tool("monitoring", **ADMIN, title="PostHog sessions")
    def _tool_posthog_sessions(self, period: Period = "7d") -> dict:
        """Sessions: count, average duration, bounce rate, daily trend."""
        api, config = self._ocore_posthog()
        scope = self._ocore_scope(config, period)
        summary = self._ocore_sessions(api, scope)
        trend = [{"day": row.get("day"), "sessions": _number(row.get("sessions")) or 0,
                  "avg_duration_seconds": _number(row.get("avg_duration_seconds")),
                  "bounce_rate": _ratio(_number(row.get("bounces")) or 0, _number(row.get("sessions")) or 0)}
                 for row in api.query(Q_SESSIONS_DAILY, **scope)]
        return {"period": period, "instance": config["instance"], **summary, "trend": trend}

    @mcp_tool("monitoring", **ADMIN, title="PostHog feature flags")
    def _tool_posthog_feature_flags(self, period: Period = "7d") -> dict:
        """Feature flags: key, status, rollout, variants, evaluations in the period."""
        api, config = self._ocore_posthog()
        calls = {row.get("flag"): row for row in api.query(Q_FLAG_CALLS, days=PERIODS[period])}
        flags = []
        for flag in api.list("feature_flags/"):
            if flag.get("deleted"):
                continue
            filters = flag.get("filters") or {}
            groups = filters.get("groups") or []
            rollouts = [100 if g.get("rollout_percentage") is None else g.get("rollout_percentage") for g in groups]
            variants = ((filters.get("multivariate") or {}).get("variants")) or []
            used = calls.get(flag.get("key")) or {}
            flags.append({
                "id": flag.get("id"),
                "key": flag.get("key"),
                "name": flag.get("name"),
                "active": bool(flag.get("active")),
                "rollout_percentage": rollouts[0] if len(rollouts) == 1 else (max(rollouts) if rollouts else 0),
                "groups": [{"rollout_percentage": r, "conditions": len(g.get("properties") or [])}
                           for r, g in zip(rollouts, groups, strict=True)],
                "variants": [{"key": v.get("key"), "rollout_percentage": v.get("rollout_percentage")}
                             for v in variants],
                "evaluations": _number(used.get("calls")) or 0,
                "users": _number(used.get("users")) or 0,
            })
        return {"period": period, "project_id": config["project_id"], "count": len(flags),
                "active": sum(f["active"] for f in flags), "flags": flags}

    @mcp_tool("monitoring", **ADMIN, title="PostHog surveys")
    def _tool_posthog_surveys(self, period: Period = "30d") -> dict:
        """Surveys: name, type, status, responses in the period."""
        api, config = self._ocore_posthog()
        responses = {row.get("survey_id"): _number(row.get("responses")) or 0
                     for row in api.query(Q_SURVEY_RESPONSES, days=PERIODS[period])}
        surveys = []
        for survey in api.list("surveys/"):
            if survey.get("archived"):
                status = "archived"
            elif not survey.get("start_date"):
                status = "draft"
            elif survey.get("end_date"):
                status = "completed"
            else:
                status = "running"
            surveys.append({
                "id": survey.get("id"),
                "name": survey.get("name"),
                "type": survey.get("type"),
                "status": status,
                "questions": len(survey.get("questions") or []),
                "start_date": survey.get("start_date"),
                "end_date": survey.get("end_date"),
                "responses": responses.get(str(survey.get("id")), 0),
            })
        return {"period": period, "project_id": config["project_id"], "count": len(surveys), "surveys": surveys}
