"""The web client's PostHog relay: ``POST /ocore/posthog/capture``.

The browser sends its events here rather than to PostHog: the project key and PostHog's host stay on
the server, the user's IP address never reaches PostHog, the ``distinct_id`` is the session's user (a
page cannot report for someone else), and what is forwarded is an allowlist of events and properties
(anything else is dropped). The events are queued on the server's PostHog client (batched, sent
asynchronously), so the relay answers at once whether PostHog is reachable or not.

The route takes ``application/json`` bodies only: a cross-site form cannot send that content type
without a CORS preflight, which is the CSRF protection of a ``csrf=False`` route. Each user may relay
``relay_rate_limit`` events a minute (system parameter ``ocore_mcp.posthog_relay_rate_limit``, default
600; 0: no limit), counted in the database (exact across workers); the events beyond are dropped and the
answer is 429 with ``Retry-After``, which the web client's capture ignores (it never reads the answer).

``POST /ocore/control/posthog`` is the control plane's side of monitoring: a request signed like the
others of the control link (an EdDSA assertion of purpose ``posthog`` whose ``bsh`` claim is the SHA-256
of the body) carrying the organization's PostHog settings (models/mcp_posthog.py).
"""

import datetime
import json
import logging
import re

from odoo import SUPERUSER_ID, api, http
from odoo.http import request

from ..models.mcp_control_link import ControlRefused
from ..models.mcp_posthog import CONTROL_PURPOSE, CONTROL_ROUTE, RELAY_ROUTE, RELAY_WINDOW_SECONDS, body_hash
from ..service import posthog as ph

_logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_EVENTS = 100
MAX_TEXT = 512
MAX_SKEW = datetime.timedelta(days=1)
SESSION_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")

_TEXT, _NUMBER, _INT = "text", "number", "int"
COMMON = {"$session_id": _TEXT, "$pathname": _TEXT, "$current_url": _TEXT, "odoo_module": _TEXT, "odoo_app": _TEXT}
EVENTS = {
    "$pageview": {"$screen_width": _INT, "$screen_height": _INT},
    "odoo_module_open": {"odoo_menu_id": _INT},
    "$web_vitals": {"$web_vitals_LCP_value": _NUMBER, "$web_vitals_INP_value": _NUMBER,
                    "$web_vitals_CLS_value": _NUMBER, "$web_vitals_FCP_value": _NUMBER},
    "$exception": {"$exception_type": _TEXT, "$exception_message": _TEXT},
    "odoo_rpc_timings": {"odoo_endpoint": _TEXT, "rpc_count": _INT, "rpc_total_ms": _NUMBER, "rpc_max_ms": _NUMBER},
}
PERSONAL = {"$exception_message"}  # may quote user data: forwarded only with personal data enabled


def _clean_value(kind, value):
    if kind == _TEXT:
        return value[:MAX_TEXT] if isinstance(value, str) and value else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:  # noqa: PLR0124 - NaN
        return None
    if value > 1e9:
        return None
    return int(value) if kind == _INT else round(float(value), 4)


def _clean_url(value):
    """The page's URL without its query string (the hash stays: the 17.0 web client's route)."""
    if not isinstance(value, str):
        return None
    base, _sep, fragment = value.partition("#")
    base = base.split("?", 1)[0]
    return (base + ("#" + fragment if fragment else ""))[:MAX_TEXT]


def _timestamp(value, now):
    if isinstance(value, str):
        try:
            when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return now
        if when.tzinfo is not None and abs(when - now) <= MAX_SKEW:
            return when
    return now


def clean_events(payload, personal_data, now=None):
    """The events of ``payload`` that may be forwarded, each as (event, properties, timestamp)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        return []
    cleaned = []
    for item in events[:MAX_EVENTS]:
        if not isinstance(item, dict) or item.get("event") not in EVENTS:
            continue
        name = item["event"]
        allowed = {**COMMON, **EVENTS[name]}
        raw = item.get("properties") if isinstance(item.get("properties"), dict) else {}
        props = {}
        for key, kind in allowed.items():
            if key in PERSONAL and not personal_data:
                continue
            value = _clean_url(raw.get(key)) if key == "$current_url" else _clean_value(kind, raw.get(key))
            if value is not None:
                props[key] = value
        if "$session_id" in props and not SESSION_ID.match(props["$session_id"]):
            del props["$session_id"]
        props["odoo_source"] = "web"  # ($lib is the capturing library's own: posthog-python)
        if name == "$exception":
            props.setdefault("$exception_type", "Error")
            props["$exception_source"] = "web"
            props["$exception_list"] = [{"type": props["$exception_type"],
                                         "value": props.get("$exception_message", ""),
                                         "mechanism": {"handled": False, "type": "onerror"}}]
        cleaned.append((name, props, _timestamp(item.get("timestamp"), now)))
    return cleaned


class PosthogRelay(http.Controller):
    @http.route(RELAY_ROUTE, type="http", auth="user", methods=["POST"], csrf=False, save_session=False)
    def ocore_posthog_capture(self, **_kwargs):
        httprequest = request.httprequest
        if httprequest.mimetype != "application/json":
            return request.make_response("application/json expected", status=415)
        if (httprequest.content_length or 0) > MAX_BODY:
            return request.make_response("too large", status=413)
        posthog = request.env["ocore.mcp.posthog"]
        config = posthog._ocore_posthog_config()
        if not ph.capture_ready(config):
            return request.make_response("", status=204)
        try:
            payload = json.loads(httprequest.get_data(cache=False, as_text=True)[:MAX_BODY] or "{}")
        except ValueError:
            return request.make_response("invalid JSON", status=400)
        user = request.env.user
        events = clean_events(payload, config["personal_data"])
        admitted = self._ocore_admit(user.id, len(events), config.get("relay_rate_limit") or 0)
        for index, (name, props, when) in enumerate(events[:admitted]):
            if config["personal_data"] and index == 0:
                props.update(posthog._ocore_posthog_user_properties(user))
            ph.capture(config, name, user.id, props, timestamp=when)
        if admitted < len(events):
            _logger.info("PostHog relay: %s of %s events of user #%s dropped (limit %s/min)",
                         len(events) - admitted, len(events), user.id, config["relay_rate_limit"])
            return request.make_json_response(
                {"error": "rate_limited", "limit_per_minute": config["relay_rate_limit"], "accepted": admitted,
                 "dropped": len(events) - admitted},
                status=429, headers=[("Retry-After", str(RELAY_WINDOW_SECONDS))])
        return request.make_response("", status=204)

    def _ocore_admit(self, uid, count, limit):
        """How many of the ``count`` events the user may relay now (committed at once: exact across workers)."""
        if not count or limit <= 0:
            return count
        server = request.env["ocore.mcp.server"]
        server._ocore_bookkeeping_transaction()  # READ COMMITTED: the count sees the other workers' hits
        admitted = request.env["ocore.mcp.posthog"]._ocore_posthog_relay_admit(uid, count, limit)
        server._ocore_commit_checkpoint()
        return admitted

    @http.route(CONTROL_ROUTE, type="http", auth="none", methods=["POST"], csrf=False, save_session=False,
                readonly=False)
    def ocore_control_posthog(self, **_kwargs):
        """The organization's PostHog settings, pushed by an enrolled control plane."""
        env = api.Environment(request.env.cr, SUPERUSER_ID, {})
        header = request.httprequest.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        body = request.httprequest.get_data(cache=False)[:MAX_BODY]
        try:
            link, claims = env["ocore.mcp.control.link"]._ocore_verify(token, CONTROL_PURPOSE)
            if claims.get("bsh") != body_hash(body):
                raise ControlRefused("the body is not the one the assertion signs")
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise ControlRefused("a JSON object is expected")
        except (ControlRefused, ValueError) as exc:
            _logger.warning("PostHog settings of a control plane refused: %s", exc)
            return request.make_json_response({"error": str(exc)}, status=403)
        answer = link._ocore_posthog_receive(data)
        _logger.info("PostHog settings of control plane link %s received (in force: %s)", link.id, answer["in_force"])
        return request.make_json_response(answer)
