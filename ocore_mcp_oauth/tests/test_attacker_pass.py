"""OAuth tokens are secrets of the key they are bound to: a key that changes hands or comes back from
revocation keeps none of them, whoever gives it a secret again."""

from odoo import Command
from odoo.tests import tagged

from odoo.addons.ocore_mcp.lib import compat

from .test_oauth_models import OAuthCase


@tagged("post_install", "-at_install")
class TestKeyChangeEndsItsOAuthTokens(OAuthCase):
    def assert_dead(self, auth, tokens):
        self.env.flush_all()
        self.assertFalse(self.Key._ocore_find_by_token(tokens["access_token"]))
        self.assertFalse(auth._ocore_usable())  # its refresh token and pending codes get nothing either
        self.assertFalse(self.Token.search([("authorization_id", "=", auth.id)]).filtered("active"))

    def test_owner_change_ends_the_oauth_tokens(self):
        auth = self.grant(preset="standard")
        key = auth.key_id
        tokens = self.issue(auth)
        self.assertEqual(self.Key._ocore_find_by_token(tokens["access_token"]), key)
        users = self.env["res.users"].with_context(no_reset_password=True)
        otto = users.create({
            "name": "Otto", "login": "oauth_otto",
            compat.user_groups_field(users): [Command.set([self.env.ref("base.group_user").id,
                                                           self.env.ref("ocore_mcp.group_mcp_user").id])],
        })
        key.write({"user_id": otto.id})
        key.with_user(otto)._ocore_set_new_secret()  # the new owner makes the key work again
        self.assertEqual(key.state, "active")
        # Alice's client does not act as Otto
        self.assert_dead(auth, tokens)

    def test_restored_key_ends_the_oauth_tokens(self):
        auth = self.grant(preset="standard")
        key = auth.key_id
        tokens = self.issue(auth)
        key.write({"active": False})
        key.write({"active": True})
        key.with_user(self.alice)._ocore_set_new_secret()
        self.assertEqual(key.state, "active")
        self.assert_dead(auth, tokens)

    def test_new_secret_by_the_owner_keeps_the_oauth_tokens(self):
        auth = self.grant(preset="standard")
        tokens = self.issue(auth)
        auth.key_id.with_user(self.alice)._ocore_set_new_secret()
        self.env.flush_all()
        self.assertEqual(self.Key._ocore_find_by_token(tokens["access_token"]), auth.key_id)
        self.assertTrue(auth._ocore_usable())
