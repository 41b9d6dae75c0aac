"""Server actions as MCP tools: schema, groups, record rules, read-only and production guard, confirm,
savepoint rollback on failure, tool list changes."""

from unittest import mock

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from ..lib import compat
from ..models.ir_actions_server import NAME_MAX
from ..models.res_config_settings import SLUG_MAX, TOOL_NAME_MAX
from ..service.notify import hub
from .common import McpToolCase

TAG_CODE = """
for record in records:
    record.write({"ref": (env.context.get("mcp_values") or {}).get("ref", "tagged by MCP")})
"""
FAIL_CODE = """
records.write({"ref": "half done"})
raise UserError("the action refuses")
"""
READ_CODE = """
records.write({"ref": "written by a read-only action"})
action = {"type": "ir.actions.client", "tag": "display_notification",
          "params": {"title": "Count", "message": "%s partners" % len(records), "type": "info"}}
"""


@tagged("post_install", "-at_install")
class TestServerActionTools(McpToolCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner_model = cls.env["ir.model"]._get("res.partner")
        cls.p1 = cls.Partner.create({"name": "Action One"})
        cls.p2 = cls.Partner.create({"name": "Action Two"})

    def make_action(self, name, code, **vals):
        return self.env["ir.actions.server"].create({
            "name": name, "model_id": self.partner_model.id, "state": "code", "code": code,
            "mcp_tool": True, "mcp_tool_name": name, **vals})

    def listed(self, key=None, **settings):
        conn = self.conn(key, **settings)
        return {name: spec for name, spec in self.server._ocore_visible_tools(conn)}

    def definition(self, tool, key=None):
        conn = self.conn(key)
        for name, spec in self.server._ocore_visible_tools(conn):
            if name == f"{self.slug}_{tool}":
                return self.server._ocore_tool_definition(name, spec, conn)
        return None

    def test_schema_and_listing(self):
        self.assertIsNone(self.definition("tag_partners"))
        action = self.make_action("tag_partners", TAG_CODE, help="<p>Marks the partners.</p>")
        self.assertEqual(action.mcp_category_id, self.env.ref("ocore_mcp.category_actions"))
        tool = self.definition("tag_partners")
        self.assertIsNotNone(tool)
        props = tool["inputSchema"]["properties"]
        self.assertEqual(tool["inputSchema"]["required"], ["ids"])
        self.assertEqual(props["ids"]["type"], "array")
        self.assertEqual(props["ids"]["items"]["type"], "integer")
        self.assertEqual(props["values"]["type"], "object")
        self.assertIn("confirm", props)
        # a server action may send mail or call anything: open world; its title is the action's name
        self.assertEqual(tool["annotations"], {"destructiveHint": True, "openWorldHint": True})
        self.assertEqual(tool["title"], action.name)
        self.assertTrue({"timeout_seconds", "max_response_size", "context", "dry_run"} <= set(props))
        self.assertIn("tag_partners", tool["description"])
        self.assertIn("Marks the partners.", tool["description"])
        action.mcp_tool_description = "Tag partners for the sales team."
        self.assertEqual(self.definition("tag_partners")["description"], "Tag partners for the sales team.")
        # the category is offered (key form, OAuth scopes) once it holds a tool
        self.assertIn("actions", self.env["ocore.mcp.category"]._ocore_offered().mapped("code"))

    def test_form_views(self):
        # the MCP tab on the server action's form, not on the scheduled action's (built on it)
        self.assertIn('name="mcp_tool"', self.env["ir.actions.server"].get_view(view_type="form")["arch"])
        self.assertNotIn("mcp_tool", self.env["ir.cron"].get_view(view_type="form")["arch"])

    def test_name_validation(self):
        for bad in ("Tag", "1tag", "tag-partners", "tag partners", "x" * 65, "x" * (NAME_MAX + 1), ""):
            with self.subTest(name=bad), self.assertRaises(ValidationError), self.env.cr.savepoint():
                self.make_action(bad or "empty", TAG_CODE, mcp_tool_name=bad)
        # the longest name allowed still makes a tool name MCP clients accept at the longest slug
        longest = self.make_action("y" * NAME_MAX, TAG_CODE)
        self.assertEqual(len(f"{'s' * SLUG_MAX}_{longest.mcp_tool_name}"), TOOL_NAME_MAX)
        self.assertIn(f"{'s' * SLUG_MAX}_{'y' * NAME_MAX}", self.listed(slug="s" * SLUG_MAX))
        # a long action name is cut to fit when the box is ticked
        draft = self.env["ir.actions.server"].new({
            "name": "Send the quarterly report to every customer of the Benelux region",
            "model_id": self.partner_model.id, "state": "code", "mcp_tool": True})
        draft._onchange_mcp_tool()
        self.assertEqual(draft.mcp_tool_name, "send_the_quarterly_report_to_every_"[:NAME_MAX])
        self.assertEqual(len(draft.mcp_tool_name), NAME_MAX)
        self.make_action("unique_name", TAG_CODE)
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.make_action("other", TAG_CODE, mcp_tool_name="unique_name")
        # never shadows a built-in tool unless explicitly told to
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.make_action("count", TAG_CODE)
        self.make_action("count", TAG_CODE, mcp_tool_override=True)
        self.assertEqual(self.definition("count")["inputSchema"]["required"], ["ids"])

    def test_confirm_and_run(self):
        self.make_action("tag_partners", TAG_CODE)
        ids = [self.p1.id, self.p2.id]
        text = self.fails("tag_partners", {"ids": ids}, "confirm")
        self.assertIn("Nothing was done", text)
        self.assertFalse(self.p1.ref)
        out = self.ok("tag_partners", {"ids": ids, "confirm": True, "values": {"ref": "vip"}})
        self.assertEqual(out["ids"], ids)
        self.assertEqual(out["message"], "done")
        self.assertEqual({r["display_name"] for r in out["records"]}, {"Action One", "Action Two"})
        self.assertEqual(self.p1.ref, "vip")
        self.assertEqual(self.p2.ref, "vip")
        # the audit row names the tool and its category
        row = self.env["ocore.mcp.audit.log"].sudo().search([("tool", "=", "tag_partners")], limit=1)
        self.assertEqual(row.category, "actions")
        self.assertTrue(row.success)

    def test_input_checked(self):
        self.make_action("tag_partners", TAG_CODE)
        self.fails("tag_partners", {"ids": [], "confirm": True}, "ids")
        self.fails("tag_partners", {"ids": ["x"], "confirm": True}, "ids")
        for spelling in (str(self.p1.id), f" {self.p1.id}", True):  # never coerced into a record id
            self.fails("tag_partners", {"ids": [spelling], "confirm": True}, "ids.0")
        self.fails("tag_partners", {"confirm": True}, "ids: required argument is missing")
        self.fails("tag_partners", {"ids": [self.p1.id], "other": 1, "confirm": True}, "unknown argument")
        self.fails("tag_partners", {"ids": [self.p1.id, 999999999], "confirm": True}, "999999999")
        self.assertFalse(self.p1.ref)
        # values only for the actions that read them (Python code)
        self.env["ir.actions.server"].create({
            "name": "archive", "model_id": self.partner_model.id, "state": "object_write",
            "mcp_tool": True, "mcp_tool_name": "write_partner"})
        self.assertNotIn("values", self.definition("write_partner")["inputSchema"]["properties"])
        self.fails("write_partner", {"ids": [self.p1.id], "values": {}, "confirm": True}, "unknown argument")

    def test_failure_rolls_back(self):
        self.make_action("failing", FAIL_CODE)
        text = self.fails("failing", {"ids": [self.p1.id], "confirm": True}, "the action refuses")
        self.assertTrue(text)
        self.p1.invalidate_recordset()
        self.assertFalse(self.p1.ref)

    def test_read_only_action(self):
        self.make_action("count_partners", READ_CODE, mcp_read_only=True)
        tool = self.definition("count_partners")
        self.assertEqual(tool["annotations"], {"readOnlyHint": True, "openWorldHint": True})
        self.assertNotIn("confirm", tool["inputSchema"]["properties"])
        # production guard and read-only key: allowed, and nothing it writes is kept
        out = self.ok("count_partners", {"ids": [self.p1.id, self.p2.id]}, write_enabled=False)
        self.assertEqual(out["message"], "2 partners")
        self.assertEqual(out["result"]["tag"], "display_notification")
        self.p1.invalidate_recordset()
        self.assertFalse(self.p1.ref)
        ro_key, _secret = self.keys._ocore_create_key("ro", self.admin, read_only=True, rate_limit=1000)
        self.ok("count_partners", {"ids": [self.p1.id]}, key=ro_key)
        # a destructive action is refused there
        self.make_action("tag_partners", TAG_CODE)
        self.fails("tag_partners", {"ids": [self.p1.id], "confirm": True}, "production guard", write_enabled=False)
        self.fails("tag_partners", {"ids": [self.p1.id], "confirm": True}, "read-only", key=ro_key)
        self.assertFalse(self.p1.ref)

    def test_groups_and_record_rules(self):
        user = self.make_user("action_user", [self.env.ref("base.group_user").id, self.env.ref("base.group_partner_manager").id,
                                              self.env.ref("ocore_mcp.group_mcp_user").id])
        key, _secret = self.keys._ocore_create_key("user key", user, rate_limit=1000)
        self.make_action("tag_partners", TAG_CODE)
        # no groups on the action: whoever may write the model may run it
        self.assertIn(f"{self.slug}_tag_partners", self.listed(key))
        # a group the owner lacks: hidden and refused
        admin_action = self.make_action("admin_tag", TAG_CODE, **{
            compat.action_groups_field(self.env["ir.actions.server"]): [Command.set([self.env.ref("base.group_system").id])]})
        self.assertNotIn(f"{self.slug}_admin_tag", self.listed(key))
        self.assertIn(f"{self.slug}_admin_tag", self.listed())
        self.fails("admin_tag", {"ids": [self.p1.id], "confirm": True}, "may not run", key=key)
        admin_action[compat.action_groups_field(admin_action)] = [Command.set([self.env.ref("base.group_user").id])]
        self.assertIn(f"{self.slug}_admin_tag", self.listed(key))
        # record rules of the owner apply to ids
        self.env["ir.rule"].create({
            "name": "hide p2", "model_id": self.partner_model.id,
            "domain_force": f"[('id', '!=', {self.p2.id})]",
            "groups": [Command.set([self.env.ref("base.group_user").id])]})
        self.fails("tag_partners", {"ids": [self.p1.id, self.p2.id], "confirm": True}, "permission denied", key=key)
        self.assertFalse(self.p1.ref)
        self.ok("tag_partners", {"ids": [self.p1.id], "confirm": True}, key=key)
        self.assertEqual(self.p1.ref, "tagged by MCP")
        # the category scope of the key applies
        orm_key, _secret = self.keys._ocore_create_key("orm only", self.admin, category_ids=[
            Command.set(self.env.ref("ocore_mcp.category_orm").ids)], rate_limit=1000)
        self.assertNotIn(f"{self.slug}_tag_partners", self.listed(orm_key))
        self.fails("tag_partners", {"ids": [self.p1.id], "confirm": True}, "category", key=orm_key)

    def test_list_changes(self):
        self.assertTrue(self.server._ocore_capabilities()["tools"]["listChanged"])
        sid = self.env["ocore.mcp.session"]._ocore_open(self.key.id, "stream", "127.0.0.1").session_id
        with mock.patch.object(type(hub), "publish") as publish:
            action = self.make_action("tag_partners", TAG_CODE)
        self.assertIn(f"{self.slug}_tag_partners", self.listed())
        sent = [c.args for c in publish.call_args_list]
        self.assertTrue(any(a[2] == {"t": "msg", "m": {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}}
                            for a in sent), sent)
        self.assertIn(sid, [a[1] for a in sent])
        with mock.patch.object(type(hub), "publish") as publish:
            action.mcp_tool = False
        self.assertTrue(publish.called)
        self.assertNotIn(f"{self.slug}_tag_partners", self.listed())
        self.fails("tag_partners", {"ids": [self.p1.id], "confirm": True}, "no tool named")
        # a change that does not concern a tool announces nothing
        with mock.patch.object(type(hub), "publish") as publish:
            action.name = "renamed"
        self.assertFalse(publish.called)
