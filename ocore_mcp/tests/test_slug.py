"""The instance slug is bounded (SLUG_MAX) so that every tool name, <slug>_<tool>, fits the 64 characters MCP
clients accept (^[a-zA-Z0-9_-]{1,64}$): a long database name is cut with a hash, a long slug typed in Settings
is refused, a long value already stored in the system parameter is read bounded."""

import re
from unittest.mock import patch

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from ..models.res_config_settings import SLUG_MAX, TOOL_NAME_MAX, default_slug
from .common import McpToolCase

CLIENT_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
LONG_DB = "Acme-Corporation-Production-Europe-West-2026-backup-copy"


@tagged("post_install", "-at_install")
class TestSlugBound(McpToolCase):
    KEY_NAME = "slug tests"

    def setUp(self):
        super().setUp()
        self.icp = self.env["ir.config_parameter"].sudo()

    def fresh_settings(self):
        self.env.registry.clear_cache()  # as a system parameter change does
        return self.server._ocore_settings()

    def test_a_long_database_name_is_cut_with_a_hash(self):
        slug = default_slug(LONG_DB)
        self.assertEqual(len(slug), SLUG_MAX)
        self.assertTrue(slug.startswith("acme_corporation_prod"), slug)
        self.assertRegex(slug, r"_[0-9a-f]{6}\Z")
        self.assertEqual(default_slug(LONG_DB), slug)  # stable
        self.assertEqual(default_slug(slug), slug)  # a slug is its own slug
        # two long names that share their beginning still get two slugs
        self.assertNotEqual(default_slug(LONG_DB + "-2"), slug)
        # up to SLUG_MAX characters, unchanged
        self.assertEqual(default_slug("a" * SLUG_MAX), "a" * SLUG_MAX)
        self.assertEqual(default_slug("Prod-V17"), "prod_v17")
        self.assertEqual(default_slug("ocore"), "ocore_db")
        self.icp.set_param("ocore_mcp.slug", False)
        with patch.object(self.env.cr, "dbname", LONG_DB):
            settings = self.fresh_settings()
        self.assertEqual(settings["slug"], slug)
        self.fresh_settings()

    def test_an_over_long_slug_is_refused_in_settings(self):
        self.icp.set_param("ocore_mcp.slug", "before")
        form = self.env["res.config.settings"].create({"ocore_mcp_slug": "x" * (SLUG_MAX + 1)})
        with self.assertRaises(ValidationError) as refused:
            form.set_values()
        message = str(refused.exception)
        self.assertIn(f"at most {SLUG_MAX} characters", message)
        self.assertIn(str(TOOL_NAME_MAX), message)
        self.assertEqual(self.icp.get_param("ocore_mcp.slug"), "before")
        # the longest allowed, normalized as before (what counts is the slug, not what was typed)
        form = self.env["res.config.settings"].create({"ocore_mcp_slug": " Prod-EU " + "y" * (SLUG_MAX - 8)})
        form.set_values()
        self.assertEqual(self.icp.get_param("ocore_mcp.slug"), "prod_eu_" + "y" * (SLUG_MAX - 8))
        self.assertEqual(self.fresh_settings()["slug"], "prod_eu_" + "y" * (SLUG_MAX - 8))
        self.assertEqual(self.env["res.config.settings"].create({}).ocore_mcp_slug, self.fresh_settings()["slug"])

    def test_an_over_long_stored_slug_is_read_bounded(self):
        stored = "a_slug_set_before_the_bound_existed_" + "z" * 40
        self.icp.set_param("ocore_mcp.slug", stored)  # e.g. through System Parameters
        settings = self.fresh_settings()
        self.assertEqual(settings["slug"], default_slug(stored))
        self.assertLessEqual(len(settings["slug"]), SLUG_MAX)
        conn = self.conn(**{**settings, "write_enabled": True, "enabled": True})
        self.assertIn(f"instance '{settings['slug']}'", self.server._ocore_instructions(conn))
        names = [name for name, _spec in self.server._ocore_visible_tools(conn)]
        self.assertIn(f"{settings['slug']}_search_read", names)
        self.assertTrue(all(CLIENT_TOOL_NAME.match(name) for name in names), max(names, key=len))
        # the tool is called by the name the list gave
        result = self.server._ocore_call_tool(conn, f"{settings['slug']}_count", {"model": "res.partner"})
        self.assertFalse(result.get("isError"), result)

    def test_every_tool_name_fits_at_the_longest_slug(self):
        slug = "s" * SLUG_MAX
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        longest = max(specs, key=len)
        self.assertLessEqual(len(slug) + 1 + len(longest), TOOL_NAME_MAX, longest)
        names = [name for name, _spec in self.server._ocore_visible_tools(self.conn(slug=slug))]
        self.assertEqual(len(names), len(specs))  # an administrator's key with every scope sees every tool
        too_long = [name for name in names if not CLIENT_TOOL_NAME.match(name)]
        self.assertFalse(too_long, f"tool names over {TOOL_NAME_MAX} characters at a {SLUG_MAX}-character slug")
