"""Base class of the Odoo-side tool tests: calls go through the real pipeline."""

from odoo import Command
from odoo.tests import TransactionCase

from ..lib import compat
from ..lib.shaping import unmark_untrusted
from ..service.context import Connection


class McpToolCase(TransactionCase):
    """Calls tools through ``ocore.mcp.server._ocore_call_tool`` with an administrator's key."""

    KEY_NAME = "tool tests"
    # fails() returns the whole result (True) or its text (False)
    FAILS_RETURN_RESULT = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls.env["ocore.mcp.server"]
        cls.admin = cls.env.ref("base.user_admin")
        cls.keys = cls.env["ocore.mcp.key"]
        cls.key, _secret = cls.keys._ocore_create_key(cls.KEY_NAME, cls.admin, rate_limit=1000000)
        cls.settings = dict(cls.server._ocore_settings(), write_enabled=True, enabled=True)
        cls.slug = cls.settings["slug"]
        cls.Partner = cls.env["res.partner"]

    def conn(self, key=None, **settings):
        key = key or self.key
        return Connection(key=key, scope=None, settings=dict(self.settings, **settings),
                          transport="modern", protocol_version="2026-07-28")

    def call(self, tool, args=None, key=None, **settings):
        return self.server._ocore_call_tool(self.conn(key, **settings), f"{self.slug}_{tool}", dict(args or {}))

    def text(self, result):
        """A result's text without the untrusted-data marking around it."""
        return unmark_untrusted(result["content"][0]["text"])

    def ok(self, tool, args=None, key=None, **settings):
        result = self.call(tool, args, key, **settings)
        self.assertFalse(result["isError"], result["content"][0]["text"][:2000])
        return result["structuredContent"]

    def fails(self, tool, args, expected, key=None, **settings):
        result = self.call(tool, args, key, **settings)
        text = result["content"][0]["text"]
        self.assertTrue(result["isError"], f"{tool} should have failed: {text[:300]}")
        self.assertIn(expected, text)
        return result if self.FAILS_RETURN_RESULT else text

    def make_user(self, login, groups, **vals):
        return (
            self.env["res.users"]
            .with_context(no_reset_password=True)
            .create({"name": login, "login": login, compat.user_groups_field(self.env["res.users"]): [Command.set(groups)], **vals})
        )
