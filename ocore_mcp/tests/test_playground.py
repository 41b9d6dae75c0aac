"""MCP > Playground: tools listed and called through the real dispatcher as the signed-in user."""

import json
import shlex

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import McpToolCase


@tagged("post_install", "-at_install")
class TestPlayground(McpToolCase):
    def test_call_audited_as_playground(self):
        pg = self.env["ocore.mcp.playground"].with_user(self.admin)
        keys = pg.ocore_playground_keys()
        self.assertIn(self.key.id, [k["id"] for k in keys])
        tools = {t["name"]: t for t in pg.ocore_playground_tools(self.key.id)["tools"]}
        self.assertIn(f"{self.slug}_count", tools)
        self.assertEqual(tools[f"{self.slug}_count"]["inputSchema"]["required"], ["model"])
        out = pg.ocore_playground_call(self.key.id, f"{self.slug}_count", {"model": "res.partner"})
        self.assertFalse(out["is_error"], out["text"])
        self.assertEqual(out["structured"]["count"], self.env["res.partner"].search_count([]))
        self.assertEqual(out["request"]["method"], "tools/call")
        self.assertEqual(out["request"]["params"]["arguments"], {"model": "res.partner"})
        self.assertIn("result", out["response"])
        self.assertGreaterEqual(out["elapsed_ms"], 0)
        words = shlex.split(out["curl"])
        self.assertIn("Authorization: Bearer <YOUR_MCP_API_KEY>", words)
        self.assertIn(f"Mcp-Name: {self.slug}_count", words)
        self.assertEqual(json.loads(words[words.index("--data-raw") + 1]), out["request"])
        row = self.env["ocore.mcp.audit.log"].sudo().search([("tool_name", "=", f"{self.slug}_count")], limit=1)
        self.assertEqual(row.transport, "playground")
        self.assertEqual(row.key_id, self.key)
        self.assertTrue(row.success)
        # a refusal comes back as the pipeline's error, audited too
        out = pg.ocore_playground_call(self.key.id, f"{self.slug}_unlink", {"model": "res.partner", "ids": [1]})
        self.assertTrue(out["is_error"])
        self.assertIn("confirm", out["text"])

    def test_prompts(self):
        pg = self.env["ocore.mcp.playground"].with_user(self.admin)
        prompts = {p["name"]: p for p in pg.ocore_playground_prompts(self.key.id)["prompts"]}
        self.assertIn("explain_model", prompts)
        self.assertIn("model", [a["name"] for a in prompts["explain_model"]["arguments"]])
        out = pg.ocore_playground_prompt(self.key.id, "explain_model", {"model": "res.partner"})
        self.assertFalse(out["is_error"], out["text"])
        self.assertIn("res.partner", out["text"])
        self.assertEqual(out["request"]["method"], "prompts/get")
        self.assertIn("Mcp-Method: prompts/get", shlex.split(out["curl"]))
        row = self.env["ocore.mcp.audit.log"].sudo().search([("event", "=", "prompt")], limit=1)
        self.assertEqual((row.tool_name, row.transport), ("explain_model", "playground"))
        out = pg.ocore_playground_prompt(self.key.id, "explain_model", {})
        self.assertTrue(out["is_error"])
        self.assertIn("model", out["text"])

    def test_own_keys_only_and_scopes(self):
        user = self.make_user("pg_user", [self.env.ref("base.group_user").id, self.env.ref("ocore_mcp.group_mcp_user").id])
        pg = self.env["ocore.mcp.playground"].with_user(user)
        keys = pg.ocore_playground_keys()  # a secretless playground key is made on first use
        self.assertEqual(len(keys), 1)
        key = self.env["ocore.mcp.key"].browse(keys[0]["id"])
        self.assertEqual(key.user_id, user)
        self.assertFalse(key.sudo().has_secret)
        self.assertEqual(pg.ocore_playground_keys(), keys)
        with self.assertRaises(AccessError):
            pg.ocore_playground_tools(self.key.id)  # the administrator's key
        tools = {t["name"] for t in pg.ocore_playground_tools(key.id)["tools"]}
        self.assertNotIn(f"{self.slug}_execute_sql", tools)  # admin-only: not for this user
        key.sudo().category_ids = [Command.set(self.env.ref("ocore_mcp.category_search").ids)]
        tools = {t["name"] for t in pg.ocore_playground_tools(key.id)["tools"]}
        self.assertNotIn(f"{self.slug}_count", tools)
        out = pg.ocore_playground_call(key.id, f"{self.slug}_count", {"model": "res.partner"})
        self.assertTrue(out["is_error"])
        self.assertIn("category", out["text"])
        key.sudo().active = False
        with self.assertRaises(UserError):
            pg.ocore_playground_tools(key.id)

    def test_mcp_users_only(self):
        user = self.make_user("pg_stranger", [self.env.ref("base.group_user").id])
        with self.assertRaises(AccessError):
            self.env["ocore.mcp.playground"].with_user(user).ocore_playground_keys()
