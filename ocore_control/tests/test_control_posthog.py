"""The organization's PostHog settings: write-only personal API key (encrypted with a key derived from the
master key), sent to the enrolled instances over the signed link. This database is the control plane and
its own instance (the push goes over HTTP to the test server: the instance's side runs for real)."""

import contextlib

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, tagged

from odoo.addons.ocore_mcp.lib import compat

SECRET = "phx_orgControlPlaneSecret0123456789abcdef"


@tagged("post_install", "-at_install")
class TestOrganizationPosthog(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        icp = env["ir.config_parameter"].sudo()
        for name in ("host", "project_api_key", "project_id", "personal_api_key", "capture"):
            icp.set_param(f"ocore_mcp.posthog_{name}", False)
        cls.org = env["ocore.control.organization"].create({"name": "Agency PostHog"})
        cls.instance = env["ocore.control.instance"].create({
            "name": "Self", "slug": env["ocore.mcp.server"]._ocore_settings()["slug"], "organization_id": cls.org.id,
            "environment": "staging", "url": cls.base_url()})
        link = env["ocore.mcp.control.link"].create({"name": "CP"})
        token = link.action_generate_token()
        _private, public = cls.instance._ocore_signing_key(1)
        env["ocore.mcp.control.link"]._ocore_enrol(token, cls.instance._ocore_issuer(), cls.instance._ocore_kid(1),
                                                   public)
        cls.instance.write({"credential_generation": 1, "credential_state": "active", "status": "running"})
        cls.manager = env.ref("base.user_admin")

    def allowed(self):
        # 19.0's HttpCase serves only the requests it allowed (and the test lock must be released for them)
        allow = getattr(self, "allow_requests", None)
        return allow(all_requests=True) if allow else contextlib.nullcontext()

    def stored(self):
        self.env.flush_all()
        self.env.cr.execute("SELECT posthog_personal_api_key_enc FROM ocore_control_organization WHERE id = %s",
                            (self.org.id,))
        return self.env.cr.fetchone()[0]

    def test_personal_key_write_only_and_encrypted(self):
        org = self.org.with_user(self.manager)
        with self.allowed():
            org.write({"posthog_personal_api_key": SECRET})
        self.assertFalse(org.read(["posthog_personal_api_key"])[0]["posthog_personal_api_key"])
        self.assertTrue(org.posthog_personal_api_key_set)
        with self.assertRaises(AccessError):
            org.read(["posthog_personal_api_key_enc"])
        token = self.stored()
        self.assertTrue(token)
        self.assertNotIn(SECRET, token)
        self.assertEqual(self.org._ocore_posthog_secret(), SECRET)
        with self.allowed():
            org.write({"posthog_personal_api_key": "", "posthog_project_id": "12"})  # empty keeps the key
        self.assertEqual(self.org._ocore_posthog_secret(), SECRET)
        with self.allowed():
            org.action_posthog_forget_personal_key()
        self.assertFalse(self.stored())
        self.assertFalse(org.posthog_personal_api_key_set)
        # members without the manager group do not see the settings
        viewer = self.env["res.users"].with_context(no_reset_password=True).create({
            "name": "Viewer", "login": "ph_viewer", compat.user_groups_field(self.env["res.users"]): [Command.set([
                self.env.ref("base.group_user").id, self.env.ref("ocore_mcp.group_mcp_viewer").id])]})
        with self.assertRaises(AccessError):
            self.org.with_user(viewer).read(["posthog_project_api_key"])

    def test_sent_to_the_instance_which_uses_them_unless_it_has_its_own(self):
        posthog = self.env["ocore.mcp.posthog"]
        with self.allowed():
            self.org.with_user(self.manager).write({
                "posthog_enabled": True, "posthog_host": "http://127.0.0.1:9/", "posthog_project_api_key": "phc_org",
                "posthog_project_id": "4242", "posthog_personal_api_key": SECRET})
        self.assertEqual(self.instance.posthog_status, "organization", self.instance.posthog_push_error)
        self.assertTrue(self.instance.posthog_pushed_at)
        config = posthog._ocore_posthog_config()
        self.assertEqual((config["source"], config["host"], config["project_api_key"], config["project_id"]),
                         ("organization", "http://127.0.0.1:9", "phc_org", "4242"))
        self.assertTrue(config["capture"])
        self.assertEqual(posthog._ocore_posthog_personal_api_key(), SECRET)
        # the instance's own host wins: it says so, and keeps its settings
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp.posthog_host", "http://127.0.0.1:8")
        with self.allowed():
            self.instance.action_posthog_push()
        self.assertEqual(self.instance.posthog_status, "local")
        self.assertEqual(posthog._ocore_posthog_config()["source"], "local")
        # an organization without a host makes the instances forget its settings
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp.posthog_host", False)
        with self.allowed():
            self.org.write({"posthog_host": False})
        self.assertEqual(self.instance.posthog_status, "cleared")
        self.assertEqual(posthog._ocore_posthog_config()["source"], "local")

    def test_unreachable_instance_does_not_fail_the_save(self):
        self.instance.url = "http://127.0.0.1:1"
        self.org.write({"posthog_enabled": True, "posthog_host": "http://127.0.0.1:9", "posthog_project_id": "1"})
        self.assertEqual(self.instance.posthog_status, "error")
        self.assertIn("unreachable", self.instance.posthog_push_error)
        # the instance comes back: the control plane's cron sends the settings again, without a click
        self.instance.url = self.base_url()
        cron = self.env.ref("ocore_control.ir_cron_posthog_retry")
        self.assertEqual((cron.code.strip(), cron.active), ("model._ocore_posthog_retry()", True))
        with self.allowed():
            self.env["ocore.control.instance"]._ocore_posthog_retry()  # what the cron runs
        self.assertEqual(self.instance.posthog_status, "organization", self.instance.posthog_push_error)
