"""MCP > Playground: tools listed and called through the real dispatcher as the signed-in user."""

import base64
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


@tagged("post_install", "-at_install")
class TestPlaygroundResources(McpToolCase):
    RECORD = "odoo://{model}/{id}{?fields}"

    def setUp(self):
        super().setUp()
        self.pg = self.env["ocore.mcp.playground"].with_user(self.admin)

    def test_lists_resources_and_templates_with_variables(self):
        listed = self.pg.ocore_playground_resources(self.key.id)
        self.assertIn("odoo://instance", [r["uri"] for r in listed["resources"]])
        templates = {t["uriTemplate"]: t for t in listed["templates"]}
        self.assertEqual(templates[self.RECORD]["variables"], [
            {"name": "model", "required": True}, {"name": "id", "required": True},
            {"name": "fields", "required": False}])
        self.assertEqual([v["name"] for v in templates["odoo://{model}/{id}/report/{report}{?format}"]["variables"]],
                         ["model", "id", "report", "format"])
        # only what the key may read: without the orm category, no record template
        key, _secret = self.keys._ocore_create_key("pg search only", self.admin)
        key.category_ids = [Command.set(self.env.ref("ocore_mcp.category_search").ids)]
        templates = {t["uriTemplate"] for t in self.pg.ocore_playground_resources(key.id)["templates"]}
        self.assertNotIn(self.RECORD, templates)

    def test_read_template_audited_with_curl(self):
        partner = self.Partner.create({"name": "Playground resource", "ref": "PGR-1"})
        out = self.pg.ocore_playground_read(self.key.id, None, self.RECORD,
                                            {"model": "res.partner", "id": str(partner.id), "fields": "name,ref"})
        uri = f"odoo://res.partner/{partner.id}?fields=name,ref"
        self.assertFalse(out["is_error"], out["text"])
        self.assertEqual(out["request"]["method"], "resources/read")
        self.assertEqual(out["request"]["params"]["uri"], uri)
        [content] = out["contents"]
        self.assertEqual((content["kind"], content["mime_type"], content["uri"]), ("json", "application/json", uri))
        self.assertEqual((content["json"]["name"], content["json"]["ref"]), ("Playground resource", "PGR-1"))
        self.assertEqual(out["structured"]["name"], "Playground resource")
        words = shlex.split(out["curl"])
        self.assertIn("Mcp-Method: resources/read", words)
        self.assertIn(f"Mcp-Name: {uri}", words)
        self.assertEqual(json.loads(words[words.index("--data-raw") + 1]), out["request"])
        row = self.env["ocore.mcp.audit.log"].sudo().search([("event", "=", "resource"), ("tool_name", "=", uri)])
        self.assertEqual((row.transport, row.key_id, row.success), ("playground", self.key, True))
        # a direct resource by its URI
        out = self.pg.ocore_playground_read(self.key.id, "odoo://instance")
        self.assertFalse(out["is_error"], out["text"])
        self.assertEqual((out["contents"][0]["uri"], out["contents"][0]["mime_type"]),
                         ("odoo://instance", "application/json"))
        # a missing record: the pipeline's error, shown as such
        out = self.pg.ocore_playground_read(self.key.id, None, self.RECORD, {"model": "res.partner", "id": "999999999"})
        self.assertTrue(out["is_error"])
        self.assertIn("not found", out["text"].lower())
        self.assertEqual(out["response"]["error"]["code"], -32002)
        # a path variable left empty is refused before anything is sent
        with self.assertRaises(UserError):
            self.pg.ocore_playground_read(self.key.id, None, self.RECORD, {"model": "res.partner", "id": ""})

    def test_blob_content_size_and_mime(self):
        data = b"%PDF-1.4 playground " * 10
        attachment = self.env["ir.attachment"].create({"name": "pg.pdf", "raw": data, "mimetype": "application/pdf"})
        out = self.pg.ocore_playground_read(self.key.id, None, "odoo://ir.attachment/{id}/content",
                                            {"id": attachment.id})
        self.assertFalse(out["is_error"], out["text"])
        [content] = out["contents"]
        self.assertEqual((content["kind"], content["mime_type"], content["size"]), ("blob", "application/pdf", len(data)))
        self.assertEqual(base64.b64decode(content["blob"]), data)
        self.assertIn(f"[application/pdf, {len(data)} bytes]", out["text"])
        # the Response tab shows the blob's length, not the blob
        shown = out["response"]["result"]["contents"][0]["blob"]
        self.assertTrue(shown.startswith("<base64, "), shown)

    def test_completion_of_template_variables(self):
        values = self.pg.ocore_playground_complete(self.key.id, self.RECORD, "model", "res.partn")["values"]
        self.assertEqual(values[0], "res.partner")
        values = self.pg.ocore_playground_complete(self.key.id, self.RECORD, "fields", "nam", {"model": "res.partner"})
        self.assertIn("name", values["values"])
        self.assertEqual(self.pg.ocore_playground_complete(self.key.id, "odoo://nothing/{x}", "x", "")["values"], [])
        # another user's key is refused
        user = self.make_user("pg_res_user", [self.env.ref("base.group_user").id,
                                              self.env.ref("ocore_mcp.group_mcp_user").id])
        with self.assertRaises(AccessError):
            self.env["ocore.mcp.playground"].with_user(user).ocore_playground_read(self.key.id, "odoo://instance")

    def test_template_expansion(self):
        from ..models.mcp_playground import expand_template, template_variables

        self.assertEqual(expand_template("odoo://{model}/{id}/report/{report}{?format}",
                                         {"model": "sale.order", "id": 7, "report": "sale.report_saleorder",
                                          "format": "html"}),
                         "odoo://sale.order/7/report/sale.report_saleorder?format=html")
        self.assertEqual(expand_template(self.RECORD, {"model": "res.partner", "id": "3", "fields": ""}),
                         "odoo://res.partner/3")
        self.assertEqual(expand_template(self.RECORD, {"model": "a/b", "id": "3"}), "odoo://a%2Fb/3")
        self.assertEqual(template_variables("odoo://ir.attachment/{id}/content"), [{"name": "id", "required": True}])
