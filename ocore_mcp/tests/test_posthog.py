"""PostHog monitoring: settings (the personal API key a write-only secret), server-side capture."""

import threading
from unittest.mock import patch

from odoo.exceptions import AccessError
from odoo.tests import tagged

from ..models import mcp_posthog
from ..service import posthog as ph
from .common import McpToolCase

SECRET = "phx_settingsSecretValue0123456789abcdefXYZ"


class Recorder:
    """Stands in for the posthog library's client: records what would have been queued."""

    def __init__(self):
        self.events = []

    def capture(self, event, distinct_id=None, properties=None, timestamp=None):
        self.events.append({"event": event, "distinct_id": distinct_id, "properties": properties})
        return "uuid"

    def flush(self):
        pass

    def shutdown(self):
        self.stopped = True


@tagged("post_install", "-at_install")
class TestPosthogSettings(McpToolCase):
    def test_defaults_capture_and_personal_data_off(self):
        config = self.env["ocore.mcp.posthog"]._ocore_posthog_config()
        self.assertFalse(config["capture"])
        self.assertFalse(config["personal_data"])
        self.assertFalse(ph.capture_ready(config))

    def test_personal_api_key_is_write_only(self):
        settings = self.env["res.config.settings"].create({
            "ocore_mcp_posthog_host": "eu.i.posthog.com/",
            "ocore_mcp_posthog_project_api_key": "phc_public",
            "ocore_mcp_posthog_project_id": "42",
            "ocore_mcp_posthog_personal_api_key": SECRET,
        })
        settings.execute()
        icp = self.env["ir.config_parameter"].sudo()
        self.assertEqual(icp.get_param(mcp_posthog.SECRET_PARAM), SECRET)
        self.assertEqual(icp.get_param("ocore_mcp.posthog_host"), "https://eu.i.posthog.com")
        values = self.env["res.config.settings"].default_get(["ocore_mcp_posthog_personal_api_key"])
        self.assertFalse(values.get("ocore_mcp_posthog_personal_api_key"))
        fresh = self.env["res.config.settings"].create({})
        self.assertFalse(fresh.ocore_mcp_posthog_personal_api_key)
        self.assertTrue(fresh.ocore_mcp_posthog_personal_api_key_set)
        self.assertNotIn(SECRET, str(self.env["ocore.mcp.posthog"]._ocore_posthog_config()))
        # saving the form again with the field empty keeps the stored key
        fresh.execute()
        self.assertEqual(icp.get_param(mcp_posthog.SECRET_PARAM), SECRET)
        # a user who is no system administrator reads no system parameter
        user = self.make_user("ph_settings_user", [self.env.ref("base.group_user").id])
        with self.assertRaises(AccessError):
            self.env["ir.config_parameter"].with_user(user).search([("key", "=", mcp_posthog.SECRET_PARAM)]).read()
        fresh.action_ocore_posthog_forget_personal_key()
        self.assertFalse(icp.get_param(mcp_posthog.SECRET_PARAM))

    def test_api_host_of_cloud_ingestion_hosts(self):
        self.assertEqual(ph.api_host("https://eu.i.posthog.com"), "https://eu.posthog.com")
        self.assertEqual(ph.api_host("https://us.i.posthog.com/"), "https://us.posthog.com")
        self.assertEqual(ph.api_host("http://127.0.0.1:8123"), "http://127.0.0.1:8123")
        self.assertEqual(ph.normalize_host("ftp://x"), "")


@tagged("post_install", "-at_install")
class TestPosthogCapture(McpToolCase):
    def setUp(self):
        super().setUp()
        icp = self.env["ir.config_parameter"].sudo()
        icp.set_param("ocore_mcp.posthog_capture", "1")
        icp.set_param("ocore_mcp.posthog_host", "http://127.0.0.1:9")
        icp.set_param("ocore_mcp.posthog_project_api_key", "phc_test")
        self.recorder = Recorder()
        patcher = patch.object(ph, "_new_client", lambda host, key: self.recorder)  # the current one
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(ph._clients.clear)
        ph._clients.clear()

    def test_tool_calls_are_captured_with_a_user_identifier_only(self):
        self.ok("server_info")
        self.fails("server_info", {"nope": 1}, "nope")
        events = [e for e in self.recorder.events if e["event"] == "mcp_tool_call"]
        self.assertEqual([e["properties"]["mcp_tool"] for e in events], ["server_info", "server_info"])
        self.assertEqual([e["properties"]["mcp_success"] for e in events], [True, False])
        self.assertEqual(events[0]["distinct_id"], f"{self.slug}:{self.admin.id}")
        self.assertEqual(events[0]["properties"]["odoo_instance"], self.slug)
        self.assertFalse(events[0]["properties"]["$process_person_profile"])
        text = str(events)
        self.assertNotIn(self.admin.login, text.replace(f"{self.slug}:", ""))
        self.assertNotIn("$set", text)

    def test_one_client_per_process_the_previous_one_stopped(self):
        first = self.recorder
        self.ok("server_info")
        self.assertEqual(len(ph._clients), 1)
        self.recorder = Recorder()
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp.posthog_host", "http://127.0.0.1:10")
        self.ok("server_info")
        self.assertEqual([key[1] for key in ph._clients], ["http://127.0.0.1:10"])
        for thread in threading.enumerate():
            if thread.name == "posthog-shutdown":
                thread.join(5)
        self.assertTrue(getattr(first, "stopped", False))
        self.assertTrue(self.recorder.events)

    def test_capture_off_queues_nothing(self):
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp.posthog_capture", "0")
        self.ok("server_info")
        self.assertEqual(self.recorder.events, [])
        self.assertEqual(ph._clients, {})

    def test_a_failing_client_never_fails_the_call(self):
        def broken(*args, **kwargs):
            raise RuntimeError("PostHog library exploded")

        self.recorder.capture = broken
        self.ok("server_info")

    def test_exception_message_only_with_personal_data(self):
        exc = ValueError("Customer Jane Doe has no e-mail")
        props = ph.exception_properties(exc, {"personal_data": False}, "server", "res.partner.write")
        self.assertEqual(props["$exception_type"], "ValueError")
        self.assertNotIn("Jane", str(props))
        props = ph.exception_properties(exc, {"personal_data": True}, "server", "res.partner.write")
        self.assertIn("Jane", props["$exception_message"])
