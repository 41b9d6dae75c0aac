"""PostHog: the web client relay's rate limit per user, and the organization's settings a control plane
sends over its link (the instance's own settings win)."""

import json
import secrets
import time
from unittest.mock import patch

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, tagged

from ..lib import compat
from ..models.mcp_posthog import CONTROL_ROUTE, RELAY_ROUTE, body_hash
from ..service import posthog as ph
from .test_posthog import Recorder

ORG_SECRET = "phx_orgPersonalKey0123456789abcdefXYZ"
LOCAL_SECRET = "phx_localPersonalKey0123456789abcdefXYZ"


class PosthogHttpCase(HttpCase):
    def setUp(self):
        super().setUp()
        self.recorder = Recorder()
        patcher = patch.object(ph, "_new_client", lambda host, key: self.recorder)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(ph._clients.clear)
        ph._clients.clear()
        self.icp = self.env["ir.config_parameter"].sudo()

    def post(self, path, body, headers=None):
        # the test's opener (19.0: it allows its own requests, as url_open does)
        return self.opener.post(self.base_url() + path, data=body, timeout=20,
                                headers={"Content-Type": "application/json", **(headers or {})})


@tagged("post_install", "-at_install")
class TestPosthogRelayRateLimit(PosthogHttpCase):
    def setUp(self):
        super().setUp()
        self.icp.set_param("ocore_mcp.posthog_capture", "1")
        self.icp.set_param("ocore_mcp.posthog_host", "http://127.0.0.1:9")
        self.icp.set_param("ocore_mcp.posthog_project_api_key", "phc_relay")
        self.icp.set_param("ocore_mcp.posthog_relay_rate_limit", "5")

    def send(self, count):
        events = [{"event": "$pageview", "properties": {"$pathname": f"/odoo/{i}"}} for i in range(count)]
        return self.post(RELAY_ROUTE, json.dumps({"events": events}))

    def test_events_per_minute_per_user(self):
        self.authenticate("admin", "admin")
        self.assertEqual(self.send(3).status_code, 204)
        self.assertEqual(len(self.recorder.events), 3)
        reply = self.send(4)  # 2 fit in the minute: forwarded; 2 dropped
        self.assertEqual(reply.status_code, 429)
        self.assertEqual(reply.headers["Retry-After"], "60")
        self.assertEqual((reply.json()["accepted"], reply.json()["dropped"]), (2, 2))
        self.assertEqual(len(self.recorder.events), 5)
        self.assertEqual(self.send(1).status_code, 429)
        self.assertEqual(len(self.recorder.events), 5)
        # counted in the database (every worker reads the same rows)
        admin = self.env.ref("base.user_admin")
        self.env.cr.execute("SELECT sum(events) FROM ocore_mcp_posthog_relay_hit WHERE user_id = %s", (admin.id,))
        self.assertEqual(self.env.cr.fetchone()[0], 5)
        # another user has a limit of their own
        user = self.env["res.users"].with_context(no_reset_password=True).create({
            "name": "Relay user", "login": "relay_user", "password": "relay_user_pw_123",
            compat.user_groups_field(self.env["res.users"]): [Command.set([self.env.ref("base.group_user").id])]})
        self.authenticate("relay_user", "relay_user_pw_123")
        self.assertEqual(self.send(2).status_code, 204)
        self.assertEqual({e["distinct_id"] for e in self.recorder.events[5:]}, {ph.distinct_id({"instance": self.env[
            "ocore.mcp.server"]._ocore_settings()["slug"]}, user.id)})
        # a minute later the window has room again
        self.env.cr.execute("UPDATE ocore_mcp_posthog_relay_hit SET hit_at = hit_at - interval '61 s'")
        self.authenticate("admin", "admin")
        self.assertEqual(self.send(2).status_code, 204)
        self.assertEqual(len(self.recorder.events), 9)

    def test_no_limit_when_zero_and_empty_batches_free(self):
        self.icp.set_param("ocore_mcp.posthog_relay_rate_limit", "0")
        self.authenticate("admin", "admin")
        for _i in range(3):
            self.assertEqual(self.send(3).status_code, 204)
        self.assertEqual(len(self.recorder.events), 9)
        self.icp.set_param("ocore_mcp.posthog_relay_rate_limit", "1")
        self.assertEqual(self.send(0).status_code, 204)  # nothing to count
        self.assertEqual(self.send(1).status_code, 204)
        self.assertEqual(self.send(1).status_code, 429)


@tagged("post_install", "-at_install")
class TestPosthogOrganizationSettings(PosthogHttpCase):
    """A control plane's signed push of its organization's settings (here signed by the test with a key
    it registered like an enrolment does)."""

    def setUp(self):
        super().setUp()
        for name in ("host", "project_api_key", "project_id", "personal_api_key", "capture"):
            self.icp.set_param(f"ocore_mcp.posthog_{name}", False)
        self.private = Ed25519PrivateKey.generate()
        public = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.kid = f"ocore-control-test-{secrets.token_hex(3)}"
        self.link = self.env["ocore.mcp.control.link"].create({"name": "CP"})
        token = self.link.action_generate_token()
        self.env["ocore.mcp.control.link"]._ocore_enrol(token, "ocore-control:test", self.kid, public)
        self.slug = self.env["ocore.mcp.server"]._ocore_settings()["slug"]
        self.posthog = self.env["ocore.mcp.posthog"]

    def push(self, payload, purpose="posthog", tamper=False):
        body = json.dumps(payload)
        now = int(time.time())
        claims = {"iss": "ocore-control:test", "aud": f"ocore-instance:{self.slug}", "sub": "control-plane",
                  "iat": now, "nbf": now - 5, "exp": now + 60, "jti": secrets.token_hex(16), "pur": purpose,
                  "bsh": body_hash(body)}
        assertion = jwt.encode(claims, self.private, algorithm="EdDSA", headers={"kid": self.kid})
        return self.post(CONTROL_ROUTE, body + (" " if tamper else ""), {"Authorization": f"Bearer {assertion}"})

    def org_payload(self, **values):
        return {"enabled": True, "host": "http://127.0.0.1:9", "project_api_key": "phc_org", "project_id": "77",
                "personal_api_key": ORG_SECRET, "organization": "Agency", **values}

    def test_instance_without_settings_uses_the_organizations(self):
        reply = self.push(self.org_payload())
        self.assertEqual(reply.status_code, 200, reply.text)
        self.assertTrue(reply.json()["in_force"])
        config = self.posthog._ocore_posthog_config()
        self.assertEqual((config["source"], config["host"], config["project_api_key"], config["project_id"]),
                         ("organization", "http://127.0.0.1:9", "phc_org", "77"))
        self.assertTrue(config["capture"] and config["personal_api_key_set"])
        self.assertEqual(config["instance"], self.slug)
        self.assertEqual(self.posthog._ocore_posthog_personal_api_key(), ORG_SECRET)
        self.assertNotIn(ORG_SECRET, json.dumps(config))
        self.assertNotIn(ORG_SECRET, self.link.posthog_org_settings)
        with self.assertRaises(AccessError):  # nobody reads the secret through the ORM
            self.link.with_user(self.env.ref("base.user_admin")).read(["posthog_org_personal_api_key"])
        # events carry the instance's slug in the organization's project
        self.posthog._ocore_posthog_capture("odoo_test_event", {"x": 1}, uid=self.env.uid)
        self.assertEqual(self.recorder.events[-1]["properties"]["odoo_instance"], self.slug)
        # the instance's own settings, once set, win as a whole
        self.icp.set_param("ocore_mcp.posthog_host", "http://127.0.0.1:8")
        self.icp.set_param("ocore_mcp.posthog_personal_api_key", LOCAL_SECRET)
        config = self.posthog._ocore_posthog_config()
        self.assertEqual((config["source"], config["host"], config["project_api_key"]), ("local", "http://127.0.0.1:8", ""))
        self.assertEqual(self.posthog._ocore_posthog_personal_api_key(), LOCAL_SECRET)
        self.assertFalse(self.push(self.org_payload()).json()["in_force"])
        self.icp.set_param("ocore_mcp.posthog_host", False)
        self.assertEqual(self.posthog._ocore_posthog_config()["source"], "organization")
        # disabled by the organization: no capture, the tools still query its project
        self.push(self.org_payload(enabled=False))
        config = self.posthog._ocore_posthog_config()
        self.assertFalse(config["capture"])
        self.assertEqual(config["project_id"], "77")
        # an empty host: the organization's settings are forgotten
        self.push(self.org_payload(host=""))
        self.assertEqual(self.posthog._ocore_posthog_config()["source"], "local")
        self.assertEqual(self.posthog._ocore_posthog_personal_api_key(), LOCAL_SECRET)

    def test_refusing_the_link_drops_them(self):
        self.push(self.org_payload())
        self.assertEqual(self.posthog._ocore_posthog_config()["source"], "organization")
        self.link.action_refuse()
        self.assertEqual(self.posthog._ocore_posthog_config()["source"], "local")
        self.assertEqual(self.posthog._ocore_posthog_personal_api_key(), "")

    def test_unsigned_tampered_or_other_purpose_refused(self):
        self.assertEqual(self.push(self.org_payload(), tamper=True).status_code, 403)  # body not the signed one
        self.assertEqual(self.push(self.org_payload(), purpose="call").status_code, 403)
        self.assertEqual(self.post(CONTROL_ROUTE, json.dumps(self.org_payload())).status_code, 403)
        self.assertEqual(self.posthog._ocore_posthog_config()["source"], "local")
