"""OAuth consent and invites create keys only as the user who accepts; no token, link or client secret is
kept in plain text or readable through the ORM."""

import logging
import time

from odoo import Command
from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.models.mcp_key import hash_token
from odoo.addons.ocore_mcp.tests.test_key_security import KEY_LOGGER, secret_tables_holding
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, tagged

from .test_oauth_models import OAuthCase


@tagged("post_install", "-at_install")
class TestOAuthKeyOwnership(OAuthCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = cls.env.ref("base.user_admin")
        cls.manager = cls.env["res.users"].create({
            "name": "Mona", "login": "oauth_sec_manager",
            compat.user_groups_field(cls.env["res.users"]): [Command.set([cls.env.ref("base.group_user").id,
                                       cls.env.ref("ocore_mcp.group_mcp_manager").id])],
        })

    def test_consent_creates_the_key_as_the_consenting_user(self):
        with self.assertLogs(KEY_LOGGER, logging.INFO) as logs:
            auth = self.grant(self.alice, key_mode="new", preset="standard")
        self.assertEqual(auth.key_id.user_id, self.alice)
        self.assertIn("secret generated: owner 'oauth_alice'", "\n".join(logs.output))
        self.assertIn("by 'oauth_alice'", "\n".join(logs.output))

    def test_consent_cannot_bind_someone_elses_key(self):
        admin_key, _s = self.Key._ocore_create_key("admin's", self.admin)
        for user in (self.manager, self.alice):
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                self.grant(user, key_mode="existing", key_id=admin_key.id)

    def test_invite_key_belongs_to_the_accepting_user_and_no_one_else_can_create_it(self):
        invite = self.env["ocore.mcp.oauth.invite"].with_user(self.manager).create({"name": "Team"})
        invite._ocore_new_token()
        key, secret = invite._ocore_accept(self.alice)
        self.assertEqual(key.user_id, self.alice)
        self.env.flush_all()
        self.assertEqual(self.Key._ocore_find_by_token(secret), key)
        # the key-creation helper refuses a manager acting for an administrator, even through sudo
        with self.assertRaises(AccessError):
            self.Key.sudo()._ocore_create_key("x", self.admin, acting=self.manager)


@tagged("post_install", "-at_install")
class TestOAuthSecretsAtRest(OAuthCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = cls.env.ref("base.user_admin")
        cls.manager = cls.env["res.users"].create({
            "name": "Mona", "login": "oauth_sec_manager2",
            compat.user_groups_field(cls.env["res.users"]): [Command.set([cls.env.ref("base.group_user").id,
                                       cls.env.ref("ocore_mcp.group_mcp_manager").id])],
        })

    def test_invite_link_is_shown_from_the_action_and_stored_nowhere(self):
        invite = self.env["ocore.mcp.oauth.invite"].with_user(self.manager).create({"name": "Team"})
        action = invite.with_user(self.manager).action_generate_link()
        self.assertNotIn("res_id", action)
        url = action["context"]["default_url"]
        token = url.rsplit("/", 1)[1]
        self.assertTrue(token.startswith("ocinv_"))
        self.assertEqual(self.env["ocore.mcp.oauth.invite"]._ocore_find(token), invite)
        self.env.flush_all()
        self.assertEqual(secret_tables_holding(self.env.cr, token), [])
        self.assertTrue(self.env["ocore.mcp.oauth.invite.show"]._abstract)

    def test_client_secret_is_shown_from_the_action_and_stored_nowhere(self):
        client = self.env["ocore.mcp.oauth.client"].create({
            "name": "Confidential", "redirect_uris": "https://client.example.com/cb", "registration": "admin",
            "token_endpoint_auth_method": "client_secret_post",
        })
        action = client.with_user(self.manager).action_generate_secret()
        self.assertNotIn("res_id", action)
        secret = action["context"]["default_secret"]
        self.assertTrue(client._ocore_check_secret(secret))
        self.env.flush_all()
        self.assertEqual(secret_tables_holding(self.env.cr, secret), [])
        # a viewer reads clients but cannot regenerate their secrets (and read the new one)
        with self.assertRaises(AccessError):
            client.with_user(self.viewer).action_generate_secret()
        self.assertTrue(client._ocore_check_secret(secret))

    def test_tokens_are_stored_hashed_and_unreadable(self):
        auth = self.grant(self.alice, key_mode="new", preset="read_only")
        response = self.issue(auth)
        self.env.flush_all()
        for secret in (response["access_token"], response["refresh_token"]):
            self.assertEqual(secret_tables_holding(self.env.cr, secret), [])
        token = self.Token._ocore_find(response["access_token"])
        self.assertTrue(token)
        for user in (self.admin, self.alice):
            with self.subTest(user=user.login):
                records = self.Token.with_user(user)
                with self.assertRaises(AccessError):
                    token.with_user(user).read(["access_token_hash"])
                with self.assertRaises(AccessError):
                    records.search([("access_token_hash", "=", hash_token(response["access_token"]))])
                self.assertNotIn("refresh_token_hash", records.fields_get())

    def test_every_hash_field_is_no_access(self):
        for model, field in (
            ("ocore.mcp.key", "key_hash"),
            ("ocore.mcp.oauth.token", "access_token_hash"),
            ("ocore.mcp.oauth.token", "refresh_token_hash"),
            ("ocore.mcp.oauth.code", "code_hash"),
            ("ocore.mcp.oauth.device", "device_code_hash"),
            ("ocore.mcp.oauth.invite", "token_hash"),
            ("ocore.mcp.oauth.client", "client_secret_hash"),
        ):
            with self.subTest(field=f"{model}.{field}"):
                self.assertEqual(self.env[model]._fields[field].groups, ".")  # fields.NO_ACCESS
                self.assertNotIn(field, self.env[model].with_user(self.admin).fields_get())


@tagged("post_install", "-at_install")
class TestSecretsOutOfTheAccessLog(HttpCase):
    def test_invite_links_and_user_codes_are_masked_in_the_access_log(self):
        admin = self.env.ref("base.user_admin")
        invite = self.env["ocore.mcp.oauth.invite"].with_user(admin).create({"name": "Logged"})
        token = invite._ocore_new_token()
        with self.assertLogs("werkzeug", logging.INFO) as logs:  # not "INFO": Odoo names 25 INFO
            self.url_open(f"/oauth/invite/{token}")  # anonymous: redirected to the login page with it
            self.url_open("/oauth/device?user_code=BCDF-GHJK")
            deadline = time.monotonic() + 5
            while "user_code" not in "\n".join(logs.output) and time.monotonic() < deadline:
                time.sleep(0.05)  # the server thread logs the request line after the response
        text = "\n".join(logs.output)
        self.assertIn("/oauth/invite/[redacted]", text)
        self.assertIn("user_code=[redacted]", text)
        self.assertNotIn(token, text)
        # the secret part: ocinv_<prefix>_<random> (the random part may itself hold "_")
        self.assertNotIn(token.split("_", 2)[2], text)
        self.assertNotIn("BCDF-GHJK", text)
