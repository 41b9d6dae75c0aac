"""Monitoring tools: their errors (not configured, PostHog down, slow, refusing the key) and the personal
API key never in a result, the audit or the log. Reading real events back is the end-to-end suite's
(tests/test_monitoring_e2e.py, against a PostHog-compatible server)."""

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from odoo.tests import common as odoo_test_common
from odoo.tests import tagged

from ..tools.monitoring import QUERIES
from .common import McpToolCase

SECRET = "phx_monitoringSecret0123456789abcdefABCDEF"
TOOLS = ("posthog_dashboard", "posthog_active_users", "posthog_online_users", "posthog_module_usage",
         "posthog_web_vitals", "posthog_errors", "posthog_slow_rpcs", "posthog_sessions",
         "posthog_feature_flags", "posthog_surveys")


class _Fake(BaseHTTPRequestHandler):
    """PostHog stand-in: ``behaviour`` is "slow", "echo" (an error quoting the Authorization header) or
    "empty" (valid empty answers)."""

    behaviour = "empty"
    seen = []

    def log_message(self, *args):
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).seen.append((self.command, self.path, self.headers.get("Authorization"), body))
        if self.behaviour == "slow":
            time.sleep(8)
        if self.behaviour == "echo":
            payload, status = {"detail": f"invalid token {self.headers.get('Authorization')}"}, 400
        elif self.path.split("?")[0].endswith("/query/"):
            payload, status = {"columns": [], "results": []}, 200
        else:
            payload, status = {"count": 0, "next": None, "previous": None, "results": []}, 200
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (the slow case)
            self.close_connection = True

    do_GET = do_POST = _answer  # noqa: N815 - http.server's naming


@tagged("post_install", "-at_install")
class TestMonitoringTools(McpToolCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
        cls.httpd.daemon_threads = True
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()
        cls.addClassCleanup(cls.httpd.server_close)
        cls.addClassCleanup(cls.httpd.shutdown)
        cls.url = f"http://127.0.0.1:{cls.httpd.server_address[1]}"

    @classmethod
    def _request_handler(cls, s, r, /, **kw):
        # the fake PostHog is local, and the tools' own timeouts are under test: Odoo's test harness would
        # raise any timeout under 10 s to 10 s (and only understands a single number)
        if r.url.startswith("http://127.0.0.1:"):
            return odoo_test_common._super_send(s, r, **kw)
        return super()._request_handler(s, r, **kw)

    def configure(self, host=None, project_id="7", key=SECRET):
        icp = self.env["ir.config_parameter"].sudo()
        icp.set_param("ocore_mcp.posthog_host", host or self.url)
        icp.set_param("ocore_mcp.posthog_project_id", project_id)
        icp.set_param("ocore_mcp.posthog_personal_api_key", key)

    def setUp(self):
        super().setUp()
        _Fake.behaviour = "empty"
        _Fake.seen = []

    def audit_text(self):
        rows = self.env["ocore.mcp.audit.log"].sudo().search([("tool", "like", "posthog_")])
        return json.dumps(rows.read(["params", "result_summary", "error_message"]), default=str)

    def test_the_ten_tools_are_in_the_monitoring_category(self):
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        self.assertEqual({name for name, spec in specs.items() if spec.category == "monitoring"}, set(TOOLS))
        for tool in TOOLS:
            self.assertEqual(specs[tool].input_schema["properties"]["period"]["enum"],
                             ["1d", "7d", "14d", "30d", "90d"], tool)

    def test_not_configured_says_what_to_set(self):
        for tool in TOOLS:
            text = self.fails(tool, {}, "PostHog is not configured")
            self.assertIn("PostHog host, project id, personal API key", text)
        self.configure(key="")
        self.assertIn("set the personal API key in Settings", self.fails("posthog_errors", {}, "not configured"))

    def test_period_is_validated(self):
        self.configure()
        self.fails("posthog_sessions", {"period": "365d"}, "period")

    def test_down_is_a_clear_error(self):
        with socket.socket() as sock:  # a port nothing listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.configure(host=f"http://127.0.0.1:{port}")
        started = time.monotonic()
        text = self.fails("posthog_dashboard", {"timeout_seconds": 5}, "is unreachable")
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn(f"127.0.0.1:{port}", text)

    def test_slow_is_a_clear_error_within_timeout_seconds(self):
        _Fake.behaviour = "slow"
        self.configure()
        started = time.monotonic()
        text = self.fails("posthog_active_users", {"timeout_seconds": 2}, "did not answer within")
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 2.5, text)
        self.assertIn("timeout_seconds", text)

    def test_empty_project_gives_zeros(self):
        self.configure()
        data = self.ok("posthog_dashboard", {"period": "30d"})
        self.assertEqual((data["dau"], data["sessions"], data["top_modules"]), (0, 0, []))
        self.assertEqual(self.ok("posthog_feature_flags")["flags"], [])
        method, path, auth, body = _Fake.seen[0]
        self.assertEqual((method, path, auth), ("POST", "/api/projects/7/query/", f"Bearer {SECRET}"))
        sent = json.loads(body)["query"]
        self.assertEqual(sent["kind"], "HogQLQuery")
        self.assertIn(sent["query"], QUERIES.values())
        self.assertEqual(sent["values"]["instance"], self.slug)
        self.assertNotIn(self.slug, sent["query"])  # values, never spliced into the query text

    def test_the_personal_api_key_never_leaks(self):
        _Fake.behaviour = "echo"
        self.configure()
        with self.assertLogs("odoo.addons.ocore_mcp", level=logging.DEBUG) as logs:
            logging.getLogger("odoo.addons.ocore_mcp").debug("log capture start")
            for tool in TOOLS:
                text = self.fails(tool, {}, "PostHog answered HTTP 400")
                self.assertNotIn(SECRET, text)
                self.assertIn("[REDACTED]", text)
        self.assertNotIn(SECRET, "\n".join(logs.output))
        self.assertNotIn(SECRET, self.audit_text())
        self.assertTrue(_Fake.seen and all(auth == f"Bearer {SECRET}" for _m, _p, auth, _b in _Fake.seen))
        # the settings form and the settings dict do not carry it either
        self.assertNotIn(SECRET, json.dumps(self.env["res.config.settings"].default_get(
            list(self.env["res.config.settings"]._fields)), default=str))
        self.assertNotIn(SECRET, str(self.env["ocore.mcp.posthog"]._ocore_posthog_config()))

    def test_offered_to_system_administrators_only(self):
        self.configure()
        user = self.make_user("monitoring_employee", [self.env.ref("base.group_user").id,
                                                      self.env.ref("ocore_mcp.group_mcp_user").id])
        key, _secret = self.keys._ocore_create_key("monitoring employee", user)
        self.fails("posthog_dashboard", {}, "only offered to system administrators", key=key)
        self.assertEqual(_Fake.seen, [])
