"""The Knowledge Layer never shows a user what they could not read or call themselves: bookmarks of
administrators' tools, knowledge about models the user may not read; and keeps no secret in its texts.
Every path: the MCP tools, auto-context, the ORM (backend, XML-RPC)."""

import json

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import tagged

from odoo.addons.ocore_mcp.lib.redact import REDACTED

from .test_knowledge import KnowledgeCase

PBKDF2 = "$pbkdf2-sha512$600000$c2FsdHNhbHRzYWx0$" + "Zm9vYmFy" * 10
OCORE_KEY = "ocore_0123456789_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"


class KnowledgeSecurityCase(KnowledgeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keys = cls.env["ocore.mcp.key"]
        cls.admin = cls.env.ref("base.user_admin")
        cls.admin_key, _s = keys._ocore_create_key("knowledge admin", cls.admin, rate_limit=100000)
        portal = cls.env.ref("base.group_portal")
        viewer = cls.env.ref("ocore_mcp.group_mcp_viewer")
        manager = cls.env.ref("ocore_mcp.group_mcp_manager")
        internal = cls.env.ref("base.group_user")
        cls.portal = cls.make_user("know_portal", [portal.id, viewer.id], cls.company_a)
        cls.portal_key, _s = keys._ocore_create_key("knowledge portal", cls.portal, read_only=True,
                                                    rate_limit=100000)
        cls.manager = cls.make_user("know_manager", [internal.id, manager.id], cls.company_a)
        cls.manager_key, _s = keys._ocore_create_key("knowledge manager", cls.manager, rate_limit=100000)
        # (user, key) of everyone who is not a system administrator
        cls.others = [(cls.user_a, cls.key), (cls.portal, cls.portal_key), (cls.manager, cls.manager_key)]

    def ids_listed(self, tool, key, field):
        return {row["id"] for row in self.ok(tool, key=key)[field]}


@tagged("post_install", "-at_install")
class TestAdminToolBookmarks(KnowledgeSecurityCase):
    def bookmark_sql(self):
        self.ok("execute_sql", {"query": f"SELECT 'admin' AS login, '{PBKDF2}' AS password, 'sql-only-output' AS x"},
                key=self.admin_key)
        return self.ok("bookmark_call", {"label": "users and their hashes"}, key=self.admin_key)["bookmark"]

    def test_bookmark_of_an_admin_tool_for_system_administrators_only(self):
        mark = self.bookmark_sql()
        self.assertIn("sql-only-output", mark["result_summary"])
        self.assertNotIn("c2FsdHNhbHRz", mark["result_summary"])  # redacted by the audit writer already
        record = self.env["ocore.mcp.bookmark"].browse(mark["id"])
        self.assertTrue(record.admin_only)
        # the administrator: list_bookmarks, get_context, the ORM
        self.assertIn(mark["id"], self.ids_listed("list_bookmarks", self.admin_key, "bookmarks"))
        self.assertIn(mark["id"], self.ids_listed("get_context", self.admin_key, "bookmarks"))
        self.assertTrue(self.env["ocore.mcp.bookmark"].with_user(self.admin).search([("id", "=", mark["id"])]))
        for user, key in self.others:
            with self.subTest(user=user.login):
                listed = self.ok("list_bookmarks", key=key)
                self.assertNotIn(mark["id"], {row["id"] for row in listed["bookmarks"]})
                self.assertNotIn("sql-only-output", json.dumps(listed))
                self.assertNotIn(mark["id"], self.ids_listed("get_context", key, "bookmarks"))
                self.assertNotIn("sql-only-output", json.dumps(self.ok("list_bookmarks", {"search": "users"},
                                                                        key=key)))
                # the ORM: what the backend and XML-RPC use
                Bookmark = self.env["ocore.mcp.bookmark"].with_user(user)
                self.assertFalse(Bookmark.search([("id", "=", mark["id"])]))
                self.assertNotIn(mark["id"], [r["id"] for r in Bookmark.search_read([], ["result_summary"])])
                with self.assertRaises(AccessError):
                    Bookmark.browse(mark["id"]).read(["result_summary"])
        # deleting it is "not found" for a colleague (not: deleted)
        self.fails("delete_bookmark", {"bookmark_id": mark["id"], "confirm": True}, "not found", key=self.key)
        self.assertTrue(record.active)

    def test_admin_tool_calls_cannot_be_bookmarked_by_others(self):
        self.ok("execute_sql", {"query": "SELECT 'sql-only-output' AS x"}, key=self.admin_key)
        entry = self.env["ocore.mcp.audit.log"].search([("tool", "=", "execute_sql")], order="id desc", limit=1)
        for user, key in ((self.user_a, self.key), (self.manager, self.manager_key)):
            self.fails("bookmark_call", {"label": "steal", "audit_log_id": entry.id}, "no tool call with audit log id",
                       key=key)
            # nor through the ORM, linking the audit row to a bookmark of one's own
            with self.assertRaises(AccessError):
                self.env["ocore.mcp.bookmark"].with_user(user).create(
                    {"label": "steal", "tool_name": "x_search_read", "audit_log_id": entry.id})

    def test_admin_knowledge_calls_are_administrators_audit_rows(self):
        """An administrator's bookmark_call / list_bookmarks / get_context / delete_bookmark repeat an
        administrators' tool's output: their audit rows are for system administrators only."""
        Audit = self.env["ocore.mcp.audit.log"]
        self.ok("execute_sql", {"query": "SELECT 'sql-only-output' AS x"}, key=self.admin_key)
        entry = Audit.search([("tool", "=", "execute_sql")], order="id desc", limit=1)
        # a dry run rolls the audit row's mark back with the bookmark: the output stays out of its result
        dry = self.ok("bookmark_call", {"label": "dry", "dry_run": True}, key=self.admin_key)
        self.assertNotIn("sql-only-output", repr(dry))
        mark = self.ok("bookmark_call", {"label": "an administrators' result", "audit_log_id": entry.id},
                       key=self.admin_key)["bookmark"]
        self.assertIn("sql-only-output", mark["result_summary"])
        self.ok("list_bookmarks", key=self.admin_key)
        self.ok("get_context", key=self.admin_key)
        self.ok("delete_bookmark", {"bookmark_id": mark["id"], "confirm": True}, key=self.admin_key)
        rows = Audit.search([("tool", "in", ("bookmark_call", "list_bookmarks", "get_context", "delete_bookmark")),
                             ("user_id", "=", self.admin.id)])
        self.assertEqual(len(rows), 5)
        flagged = rows.filtered("admin_only_output")
        self.assertEqual(len(flagged), 4)  # not the dry run, whose result holds nothing of the output
        self.assertTrue(all(flagged.mapped("admin_only_tool")))
        self.assertNotIn("sql-only-output", (rows - flagged).result_summary or "")
        for user, _key in self.others:
            with self.subTest(user=user.login):
                self.assertFalse(Audit.with_user(user).search([("id", "in", flagged.ids)]))
                self.assertFalse(Audit.with_user(user).search([("result_summary", "ilike", "sql-only-output")]))
        # a colleague's own knowledge calls stay theirs
        self.ok("list_bookmarks", key=self.manager_key)
        own = Audit.with_user(self.manager).search([("tool", "=", "list_bookmarks"), ("user_id", "=", self.manager.id)])
        self.assertTrue(own)
        self.assertFalse(own.admin_only_output)

    def test_unknown_tool_and_renamed_tool_name(self):
        Bookmark = self.env["ocore.mcp.bookmark"]
        plain = Bookmark.with_user(self.user_a).create({"label": "a", "tool_name": f"{self.slug}_search_read"})
        unknown = Bookmark.create({"label": "b", "tool_name": "someinstance_no_such_tool"})
        shell = Bookmark.create({"label": "c", "tool_name": "prod_execute_code"})
        self.assertEqual((plain.admin_only, unknown.admin_only, shell.admin_only), (False, True, True))
        visible = Bookmark.with_user(self.user_a).search([("id", "in", (plain | unknown | shell).ids)])
        self.assertEqual(visible, plain)
        # a colleague renames the tool of a bookmark they can see to an administrators' tool: it is hidden
        plain.with_user(self.user_a).write({"tool_name": "x_execute_sql"})
        self.assertFalse(Bookmark.with_user(self.user_a).search([("id", "=", plain.id)]))


@tagged("post_install", "-at_install")
class TestKnowledgeOfUnreadableModels(KnowledgeSecurityCase):
    """ir.cron: only system administrators read it; res.partner.category: internal users, not portal users."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.notes = {
            model: env["ocore.mcp.note"].create({"title": f"about {model}", "target_type": "model",
                                                 "target_model": model, "body": f"{model} internals"})
            for model in ("ir.cron", "res.partner.category", "res.country")
        }
        cls.cron_summary = env["ocore.mcp.note"].create({
            "title": "cron summary", "target_type": "model", "target_model": "ir.cron", "body": "cron secret plan",
            "tag_ids": [Command.set(env["ocore.mcp.knowledge.tag"]._ocore_get(["summary"]).ids)],
        })
        cls.filters = {
            model: env["ocore.mcp.saved.filter"].create({"name": f"filter_{model}", "model": model})
            for model in ("ir.cron", "res.partner.category", "res.country")
        }
        cls.marks = {
            model: env["ocore.mcp.bookmark"].create({
                "label": f"read {model}", "tool_name": f"{cls.slug}_search_read",
                "tool_params": json.dumps({"model": model}), "result_summary": f"rows of {model}",
            })
            for model in ("ir.cron", "res.partner.category", "res.country")
        }

    def visible(self, user, key):
        """{kind: models} the user sees through the tools, checked against the ORM."""
        seen = {
            "notes": {n["model"] for n in self.ok("list_notes", {"limit": 200}, key=key)["notes"]},
            "filters": {f["model"] for f in self.ok("list_filters", key=key)["filters"]},
            "bookmarks": {b["label"][5:] for b in self.ok("list_bookmarks", key=key)["bookmarks"]},
        }
        context = self.ok("get_context", key=key)
        seen["context"] = ({n["model"] for n in context["notes"]} | {n["model"] for n in context["model_summaries"]}
                           | {f["model"] for f in context["saved_filters"]}
                           | {b["label"][5:] for b in context["bookmarks"]})
        orm = {
            "notes": set(self.env["ocore.mcp.note"].with_user(user).search([]).mapped("target_model")),
            "filters": set(self.env["ocore.mcp.saved.filter"].with_user(user).search([]).mapped("model")),
            "bookmarks": set(self.env["ocore.mcp.bookmark"].with_user(user).search([]).mapped("call_models")),
        }
        for kind in ("notes", "filters", "bookmarks"):
            self.assertEqual(seen[kind] - {None, False}, orm[kind] - {False}, kind)
        return seen

    def test_every_path_hides_models_the_user_may_not_read(self):
        everything = {"ir.cron", "res.partner.category", "res.country"}
        cases = [
            (self.admin, self.admin_key, everything),
            (self.user_a, self.key, {"res.partner.category", "res.country"}),
            (self.manager, self.manager_key, {"res.partner.category", "res.country"}),
            (self.portal, self.portal_key, {"res.country"}),
        ]
        for user, key, expected in cases:
            with self.subTest(user=user.login):
                seen = self.visible(user, key)
                for kind, models in seen.items():
                    self.assertEqual(models - {None}, expected, kind)
                for model in everything - expected:
                    with self.assertRaises(AccessError):
                        self.notes[model].with_user(user).read(["body"])
                    with self.assertRaises(AccessError):
                        self.filters[model].with_user(user).read(["domain"])
                    with self.assertRaises(AccessError):
                        self.marks[model].with_user(user).read(["result_summary"])

    def test_auto_context_leaves_out_unreadable_models(self):
        server = self.env["ocore.mcp.server"]
        data = server._ocore_auto_context_data(self.env(user=self.user_a))
        self.assertNotIn("ir.cron", [model for model, _text in data["models"]])
        self.assertEqual(data["filters"], 2)
        admin = server._ocore_auto_context_data(self.env(user=self.admin))
        self.assertIn(("ir.cron", "cron secret plan"), admin["models"])
        self.assertEqual(admin["filters"], 3)

    def test_run_filter_of_an_unreadable_model_is_not_found(self):
        self.fails("run_filter", {"name": "filter_ir.cron"}, "no saved filter", key=self.key)
        self.ok("run_filter", {"name": "filter_ir.cron"}, key=self.admin_key)

    def test_same_name_filter_of_hidden_model(self):
        # a saved filter's name is unique per company: the clash names nothing of the hidden filter
        text = self.fails("save_filter", {"name": "filter_ir.cron", "model": "res.partner"}, "already exists",
                          key=self.key)
        self.assertNotIn("ir.cron", text.replace("filter_ir.cron", ""))

    def test_visible_field_searches(self):
        Note = self.env["ocore.mcp.note"].with_user(self.user_a)
        self.assertFalse(Note.search([("ocore_visible", "=", False)]))
        hidden = self.env["ocore.mcp.note"].with_user(self.admin).search([("ocore_visible", "=", True)])
        self.assertIn(self.notes["ir.cron"], hidden)
        self.assertEqual(self.notes["ir.cron"].with_user(self.user_a).sudo(False).ocore_visible, False)
        self.assertEqual(self.notes["ir.cron"].with_user(self.admin).ocore_visible, True)


@tagged("post_install", "-at_install")
class TestKnowledgeTextsKeepNoSecret(KnowledgeSecurityCase):
    def test_notes_bookmarks_filters_redacted(self):
        body = f"The admin hash is {PBKDF2}; api password=hunter2-plain and key {OCORE_KEY}."
        note = self.ok("add_note", {"target_type": "instance", "title": f"Key {OCORE_KEY}", "body": body})["note"]
        for text in (note["title"], note["body"]):
            self.assertNotIn("c2FsdHNhbHRz", text)
            self.assertNotIn("hunter2-plain", text)
            self.assertNotIn(OCORE_KEY, text)
        self.assertIn(REDACTED, note["body"])
        self.assertIn("The admin hash is", note["body"])
        updated = self.ok("update_note", {"note_id": note["id"], "body": f"now {PBKDF2}"})["note"]
        self.assertEqual(updated["body"], f"now {REDACTED}")
        summary = self.ok("set_instance_summary", {"summary": f"token: {OCORE_KEY}"})["note"]
        self.assertNotIn(OCORE_KEY, summary["body"])
        self.ok("list_notes")
        mark = self.ok("bookmark_call", {"label": f"with {OCORE_KEY}", "note": f"hash {PBKDF2}"})["bookmark"]
        self.assertNotIn(OCORE_KEY, mark["label"])
        self.assertNotIn("c2FsdHNhbHRz", mark["note"])
        flt = self.ok("save_filter", {"name": "secretive", "model": "res.partner",
                                      "description": f"password: hunter2-plain {PBKDF2}"})["filter"]
        self.assertNotIn("hunter2-plain", flt["description"])
        self.assertNotIn("c2FsdHNhbHRz", flt["description"])
        # the backend (ORM) writes the same way
        record = self.env["ocore.mcp.note"].with_user(self.user_a).create({"title": "t", "body": PBKDF2})
        self.assertEqual(record.body, REDACTED)


@tagged("post_install", "-at_install")
class TestRecordNotes(KnowledgeSecurityCase):
    """A note about a record is shown to the users who may read that record (record rules included)."""

    def test_record_notes_follow_the_records_rules(self):
        foreign = self.env["res.partner"].create({"name": "Company B's customer", "company_id": self.company_b.id})
        shared = self.env["res.partner"].create({"name": "Everybody's customer"})
        Note = self.env["ocore.mcp.note"]
        hidden = Note.create({"title": "about B's customer", "target_type": "record", "target_model": "res.partner",
                              "target_res_id": foreign.id, "body": "b-secret"})
        seen = Note.create({"title": "about a shared customer", "target_type": "record",
                            "target_model": "res.partner", "target_res_id": shared.id})
        self.user_a2.company_ids = [Command.link(self.company_b.id)]
        # (user, key, notes through MCP: the key acts in its company, notes through the ORM: every company of
        # the user, as in the backend)
        cases = [(self.user_a, self.key, {seen}, {seen}), (self.user_a2, self.key_a2, {seen}, {seen, hidden}),
                 (self.portal, self.portal_key, set(), set())]
        for user, key, expected, in_orm in cases:
            with self.subTest(user=user.login):
                listed = {n["id"] for n in self.ok("list_notes", {"target_type": "record"}, key=key)["notes"]}
                self.assertEqual(listed, {n.id for n in expected})
                context = {n["id"] for n in self.ok("get_context", key=key)["notes"]}
                self.assertEqual(context & {hidden.id, seen.id}, {n.id for n in expected})
                # every company of the user selected, as the backend's company switcher sends them (17.0
                # falls back to the main company alone without it)
                as_user = Note.with_user(user).with_context(allowed_company_ids=user.company_ids.ids)
                self.assertEqual(set(as_user.search([("target_type", "=", "record")])), in_orm)
                if hidden not in in_orm:
                    with self.assertRaises(AccessError):
                        hidden.with_env(as_user.env).read(["body"])
                    self.assertFalse(hidden.with_env(as_user.env).ocore_visible)
