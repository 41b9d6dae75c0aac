import time
from unittest.mock import patch

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.lib import protocol as P
from odoo.addons.ocore_mcp.tests.common import McpToolCase

from ..models import mcp_server as auto_context

TOOLS = {
    "add_note": "write", "list_notes": "read", "update_note": "write", "delete_note": "destructive",
    "set_model_summary": "write", "set_instance_summary": "write", "save_filter": "write", "list_filters": "read",
    "run_filter": "read", "delete_filter": "destructive", "bookmark_call": "write", "list_bookmarks": "read",
    "delete_bookmark": "destructive", "get_context": "read",
}


class KnowledgeCase(McpToolCase):
    """Calls the knowledge tools through the real pipeline (ocore.mcp.server._ocore_call_tool)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls.env["ocore.mcp.server"]
        cls.settings = dict(cls.server._ocore_settings(), write_enabled=True, enabled=True, tools_page_size=1000)
        cls.slug = cls.settings["slug"]
        cls.company_a = cls.env.ref("base.main_company")
        cls.company_b = cls.env["res.company"].create({"name": "Knowledge Co B"})
        mcp_user = cls.env.ref("ocore_mcp.group_mcp_user")
        internal = cls.env.ref("base.group_user")
        cls.user_a = cls.make_user("know_a", [internal.id, mcp_user.id], cls.company_a)
        cls.user_a2 = cls.make_user("know_a2", [internal.id, mcp_user.id], cls.company_a)
        cls.user_b = cls.make_user("know_b", [internal.id, mcp_user.id], cls.company_b)
        keys = cls.env["ocore.mcp.key"]
        cls.key, _s = keys._ocore_create_key("knowledge a", cls.user_a, rate_limit=100000)
        cls.key_a2, _s = keys._ocore_create_key("knowledge a2", cls.user_a2, rate_limit=100000)
        cls.key_b, _s = keys._ocore_create_key("knowledge b", cls.user_b, rate_limit=100000)

    @classmethod
    def make_user(cls, login, groups, company):
        users = cls.env["res.users"].with_context(no_reset_password=True)
        return users.create({
            "name": login, "login": login, compat.user_groups_field(users): [Command.set(groups)],
            "company_id": company.id, "company_ids": [Command.set([company.id])],
        })


    def note(self, **vals):
        return self.env["ocore.mcp.note"].with_user(self.user_a).create({"title": "n", **vals})


@tagged("post_install", "-at_install")
class TestKnowledgeNotes(KnowledgeCase):
    def test_tools_registered(self):
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        for name, kind in TOOLS.items():
            self.assertIn(name, specs)
            self.assertEqual((specs[name].category, specs[name].kind, specs[name].model_name),
                             ("context", kind, "ocore.mcp.tools.context"))
        self.assertIn("confirm", specs["delete_note"].input_schema["properties"])
        self.assertEqual(specs["add_note"].input_schema["properties"]["title"]["maxLength"], 200)

    def test_add_note_every_target(self):
        partner = self.env["res.partner"].create({"name": "Key customer"})
        cases = [
            ({"target_type": "instance"}, "instance"),
            ({"target_type": "model", "model": "res.partner"}, "res.partner"),
            ({"target_type": "record", "model": "res.partner", "record_id": partner.id}, f"res.partner#{partner.id}"),
            ({"target_type": "field", "model": "res.partner", "field": "ref"}, "res.partner.ref"),
            ({"target_type": "module", "module": "ocore_mcp"}, "ocore_mcp"),
        ]
        for args, target in cases:
            data = self.ok("add_note", {**args, "title": f"About {target}", "body": "b", "tags": ["Workflow", "x"]})
            self.assertEqual((data["note"]["target"], data["note"]["tags"]), (target, ["workflow", "x"]))
            note = self.env["ocore.mcp.note"].browse(data["note"]["id"])
            self.assertEqual((note.company_id, note.key_id, note.create_uid), (self.company_a, self.key, self.user_a))

    def test_add_note_refusals(self):
        self.fails("add_note", {"target_type": "instance", "title": "x" * 201}, "at most 200 characters")
        self.fails("add_note", {"target_type": "instance", "title": "t", "body": "x" * 2001}, "at most 2000 characters")
        self.fails("add_note", {"target_type": "model", "title": "t"}, "a model note needs model")
        self.fails("add_note", {"target_type": "instance", "title": "t", "model": "res.partner"},
                   "model: not used by instance notes")
        self.fails("add_note", {"target_type": "model", "title": "t", "model": "no.such.model"}, "unknown model")
        self.fails("add_note", {"target_type": "field", "title": "t", "model": "res.partner", "field": "nope"},
                   "unknown field")
        self.fails("add_note", {"target_type": "record", "title": "t", "model": "res.partner", "record_id": 10**8},
                   "no res.partner record")
        self.fails("add_note", {"target_type": "module", "title": "t", "module": "no_such_module_x"}, "no module")
        self.fails("add_note", {"target_type": "record", "title": "t", "model": "res.partner", "record_id": 1,
                                "tags": ["summary"]}, "only instance and model notes can be summaries")
        # a title of exactly 200 characters is accepted
        self.assertEqual(len(self.ok("add_note", {"target_type": "instance", "title": "x" * 200})["note"]["title"]),
                         200)
        self.assertFalse(self.env["ocore.mcp.note"].search([("title", "=", "x" * 201)]))

    def test_model_allowlist_applies_to_notes(self):
        self.key.model_ids = self.env["ir.model"]._get("res.partner")
        self.fails("add_note", {"target_type": "model", "title": "t", "model": "res.users"}, "model allowlist")
        self.ok("add_note", {"target_type": "model", "title": "t", "model": "res.partner"})

    def test_hundred_notes_per_scope(self):
        Note = self.env["ocore.mcp.note"].with_user(self.user_a)
        Note.create([{"title": f"n{i}", "target_type": "model", "target_model": "res.partner"} for i in range(100)])
        text = self.fails("add_note", {"target_type": "model", "model": "res.partner", "title": "101st"},
                          "limit exceeded")
        self.assertIn("max 100 per target", text)
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            Note.create({"title": "101st", "target_type": "model", "target_model": "res.partner"})
        # another target, another company: other scopes
        self.ok("add_note", {"target_type": "model", "model": "res.users", "title": "other target"})
        self.ok("add_note", {"target_type": "model", "model": "res.partner", "title": "other company"}, key=self.key_b)
        # a soft-deleted note frees its place
        first = Note.search([("target", "=", "res.partner"), ("company_id", "=", self.company_a.id)], limit=1)
        self.ok("delete_note", {"note_id": first.id, "confirm": True})
        self.ok("add_note", {"target_type": "model", "model": "res.partner", "title": "100th again"})

    def test_list_notes_filters(self):
        self.note(target_type="model", target_model="res.partner", body="VAT split for EU",
                  tag_ids=[Command.set(self.env["ocore.mcp.knowledge.tag"]._ocore_get(["vat", "eu"]).ids)])
        self.note(target_type="model", target_model="res.users", title="Users", body="internal only",
                  tag_ids=[Command.set(self.env["ocore.mcp.knowledge.tag"]._ocore_get(["vat"]).ids)])
        self.note(target_type="instance", title="Instance words")
        self.assertEqual(self.ok("list_notes")["total"], 3)
        self.assertEqual(self.ok("list_notes", {"tags": ["vat"]})["total"], 2)
        self.assertEqual([n["target"] for n in self.ok("list_notes", {"tags": ["VAT", "eu"]})["notes"]],
                         ["res.partner"])
        self.assertEqual(self.ok("list_notes", {"search": "split"})["notes"][0]["body"], "VAT split for EU")
        self.assertEqual(self.ok("list_notes", {"target_type": "instance"})["notes"][0]["title"], "Instance words")
        self.assertEqual(self.ok("list_notes", {"model": "res.users"})["total"], 1)
        page = self.ok("list_notes", {"limit": 2})
        self.assertEqual((page["count"], page["has_more"]), (2, True))

    def test_shared_by_company_keys_not_across_companies(self):
        note_id = self.ok("add_note", {"target_type": "instance", "title": "Shared"})["note"]["id"]
        self.assertEqual([n["id"] for n in self.ok("list_notes", key=self.key_a2)["notes"]], [note_id])
        self.assertEqual(self.ok("list_notes", key=self.key_b)["total"], 0)
        self.fails("update_note", {"note_id": note_id, "title": "stolen"}, "not found", key=self.key_b)
        self.fails("delete_note", {"note_id": note_id, "confirm": True}, "not found", key=self.key_b)
        # the record rule applies in the backend too
        self.assertFalse(self.env["ocore.mcp.note"].with_user(self.user_b).search([("id", "=", note_id)]))
        self.assertTrue(self.env["ocore.mcp.note"].with_user(self.user_a2).search([("id", "=", note_id)]))

    def test_update_note_only_given_fields(self):
        args = {"target_type": "instance", "title": "T", "body": "B", "tags": ["a"]}
        note_id = self.ok("add_note", args)["note"]["id"]
        data = self.ok("update_note", {"note_id": note_id, "body": "B2"}, key=self.key_a2)["note"]
        self.assertEqual((data["title"], data["body"], data["tags"]), ("T", "B2", ["a"]))
        data = self.ok("update_note", {"note_id": note_id, "tags": ["b", "c"]})["note"]
        self.assertEqual((data["title"], data["body"], data["tags"]), ("T", "B2", ["b", "c"]))
        self.fails("update_note", {"note_id": note_id}, "nothing to update")
        self.fails("update_note", {"note_id": note_id, "title": "y" * 201}, "at most 200 characters")
        self.fails("update_note", {"note_id": 10**8, "title": "x"}, "not found")

    def test_delete_note_soft(self):
        note_id = self.ok("add_note", {"target_type": "instance", "title": "Doomed"})["note"]["id"]
        self.fails("delete_note", {"note_id": note_id}, "confirmation required")
        preview = self.ok("delete_note", {"note_id": note_id, "dry_run": True})
        self.assertTrue(preview["dry_run"])
        self.assertTrue(self.env["ocore.mcp.note"].browse(note_id).active)
        self.assertEqual(self.ok("delete_note", {"note_id": note_id, "confirm": True})["id"], note_id)
        note = self.env["ocore.mcp.note"].with_context(active_test=False).browse(note_id)
        self.assertTrue(note.exists())
        self.assertEqual((note.active, note.deleted_by), (False, self.user_a))
        self.assertTrue(note.deleted_at)
        self.assertEqual(self.ok("list_notes")["total"], 0)
        self.fails("update_note", {"note_id": note_id, "title": "x"}, "not found")
        self.fails("delete_note", {"note_id": note_id, "confirm": True}, "not found")
        note.with_user(self.user_a).write({"active": True})  # restored from the archive
        self.assertFalse(note.deleted_at)

    def test_summaries_upsert(self):
        first = self.ok("set_model_summary", {"model": "res.partner", "summary": "Customers and vendors"})
        self.assertTrue(first["created"])
        self.assertEqual((first["note"]["title"], first["note"]["tags"], first["note"]["is_summary"]),
                         ("Summary of res.partner", ["summary"], True))
        second = self.ok("set_model_summary", {"model": "res.partner", "summary": "v2"}, key=self.key_a2)
        self.assertEqual((second["created"], second["note"]["id"], second["note"]["body"]),
                         (False, first["note"]["id"], "v2"))
        inst = self.ok("set_instance_summary", {"summary": "EU production", "title": "Our instance"})
        again = self.ok("set_instance_summary", {"summary": "EU production v2"})
        self.assertEqual((again["note"]["id"], again["note"]["title"], again["note"]["body"]),
                         (inst["note"]["id"], "Our instance", "EU production v2"))
        summaries = self.env["ocore.mcp.note"].search([("is_summary", "=", True),
                                                       ("company_id", "=", self.company_a.id)])
        self.assertEqual(len(summaries), 2)
        self.fails("add_note", {"target_type": "instance", "title": "2nd", "tags": ["summary"]},
                   "already has a summary note")
        self.fails("set_model_summary", {"model": "no.such", "summary": "x"}, "unknown model")
        self.fails("set_instance_summary", {"summary": "x" * 2001}, "at most 2000 characters")
        # another company has its own summary
        self.assertTrue(self.ok("set_instance_summary", {"summary": "B"}, key=self.key_b)["created"])


@tagged("post_install", "-at_install")
class TestKnowledgeFilters(KnowledgeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Partner = cls.env["res.partner"]
        cls.partners = Partner.create([{"name": f"KnowFilter {i}", "ref": "KNOWF", "company_id": cls.company_a.id}
                                       for i in range(3)])
        cls.hidden = Partner.create({"name": "KnowFilter B", "ref": "KNOWF", "company_id": cls.company_b.id})

    def save(self, name="knowf", **args):
        return self.ok("save_filter", {"name": name, "model": "res.partner", "domain": [["ref", "=", "KNOWF"]],
                                       **args})

    def test_save_and_run(self):
        data = self.save(fields=["name", "ref"], order="name desc", description="test partners")
        flt = data["filter"]
        self.assertTrue(data["created"])
        self.assertEqual((flt["limit"], flt["fields"], flt["order"], flt["domain"], flt["use_count"]),
                         (80, ["name", "ref"], "name desc", [["ref", "=", "KNOWF"]], 0))
        run = self.ok("run_filter", {"name": "knowf"})
        # the key owner's record rules: the partner of company B is not theirs
        self.assertEqual([r["name"] for r in run["records"]], ["KnowFilter 2", "KnowFilter 1", "KnowFilter 0"])
        self.assertEqual(set(run["records"][0]), {"id", "name", "ref"})
        self.assertEqual(run["filter"]["use_count"], 1)
        run = self.ok("run_filter", {"filter_id": flt["id"], "limit": 1, "offset": 1})
        self.assertEqual((run["records"][0]["name"], run["total"], run["filter"]["use_count"]), ("KnowFilter 1", 3, 2))
        text = self.call("run_filter", {"name": "knowf", "format": "text"})["content"][0]["text"]
        self.assertIn("Saved filter knowf (res.partner)", text)
        saved = self.env["ocore.mcp.saved.filter"].browse(flt["id"])
        self.assertEqual(saved.use_count, 3)
        self.assertTrue(saved.last_used)
        # read-only keys may run filters (a read tool), not save them
        ro_key, _s = self.env["ocore.mcp.key"]._ocore_create_key("ro", self.user_a, read_only=True, rate_limit=10000)
        self.assertEqual(self.ok("run_filter", {"name": "knowf"}, key=ro_key)["total"], 3)
        self.fails("save_filter", {"name": "ro", "model": "res.partner"}, "read-only", key=ro_key)

    def test_save_validation(self):
        self.fails("save_filter", {"name": "x", "model": "res.partner", "domain": [["nope", "=", 1]]}, "nope")
        self.fails("save_filter", {"name": "x", "model": "res.partner", "domain": [["name", "~~", 1]]},
                   "unknown operator")
        self.fails("save_filter", {"name": "x", "model": "res.partner", "domain": ["|", ["name", "=", "a"]]},
                   "missing 1 operand")
        self.fails("save_filter", {"name": "x", "model": "res.partner", "fields": ["nope"]}, "unknown field")
        self.fails("save_filter", {"name": "x", "model": "res.partner", "order": "nope desc"}, "unknown field")
        self.fails("save_filter", {"name": "x", "model": "res.partner", "order": "name; drop"}, "order")
        self.fails("save_filter", {"name": "x", "model": "res.partner", "limit": 0}, "limit")
        self.fails("save_filter", {"name": "x", "model": "no.such.model"}, "unknown model")
        self.fails("save_filter", {"name": "x", "model": "ocore.mcp.key"}, "cannot be reached")
        self.fails("save_filter", {"name": "x" * 101, "model": "res.partner"}, "at most 100 characters")
        self.assertFalse(self.env["ocore.mcp.saved.filter"].search([]))
        # the model-level check (backend form) too
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.env["ocore.mcp.saved.filter"].create({"name": "ui", "model": "res.partner",
                                                       "domain": "[('x', '=', 1)]"})

    def test_unique_name_replace_and_defaults(self):
        first = self.save(is_default=True)["filter"]
        self.fails("save_filter", {"name": "knowf", "model": "res.partner"}, "already exists")
        replaced = self.save(domain=[["name", "ilike", "KnowFilter 1"]], replace=True, is_default=True)
        self.assertEqual((replaced["created"], replaced["filter"]["id"]), (False, first["id"]))
        self.assertEqual(self.ok("run_filter", {"name": "knowf"})["total"], 1)
        second = self.save("knowf2", is_default=True)["filter"]
        Filter = self.env["ocore.mcp.saved.filter"]
        self.assertEqual(Filter.search([("is_default", "=", True)]).ids, [second["id"]])
        # another company may use the same name
        self.ok("save_filter", {"name": "knowf", "model": "res.partner"}, key=self.key_b)
        # a deleted filter's name may be reused
        self.ok("delete_filter", {"name": "knowf", "confirm": True})
        self.assertTrue(self.save()["created"])

    def test_list_most_used_first(self):
        for name in ("a_rare", "b_often", "c_never"):
            self.save(name)
        for _i in range(3):
            self.ok("run_filter", {"name": "b_often"})
        self.ok("run_filter", {"name": "a_rare"})
        data = self.ok("list_filters")
        self.assertEqual([(f["name"], f["use_count"]) for f in data["filters"]],
                         [("b_often", 3), ("a_rare", 1), ("c_never", 0)])
        self.assertEqual(self.ok("list_filters", key=self.key_a2)["total"], 3)
        self.assertEqual(self.ok("list_filters", key=self.key_b)["total"], 0)
        self.fails("run_filter", {"name": "b_often"}, "no saved filter", key=self.key_b)
        self.assertEqual(self.ok("list_filters", {"model": "res.users"})["total"], 0)

    def test_run_refusals(self):
        self.save()
        self.fails("run_filter", {}, "give either name or filter_id")
        self.fails("run_filter", {"name": "knowf", "filter_id": 1}, "give either name or filter_id")
        self.fails("run_filter", {"name": "missing"}, "no saved filter named 'missing'")
        users_key, _s = self.env["ocore.mcp.key"]._ocore_create_key(
            "users only", self.user_a, model_ids=[Command.set(self.env["ir.model"]._get("res.users").ids)],
            rate_limit=10000)
        self.fails("run_filter", {"name": "knowf"}, "model allowlist", key=users_key)

    def test_filter_of_uninstalled_model(self):
        flt = self.save()["filter"]
        # what uninstalling the model's module leaves behind
        self.env.cr.execute("UPDATE ocore_mcp_saved_filter SET model = 'x_gone.model' WHERE id = %s", (flt["id"],))
        self.env["ocore.mcp.saved.filter"].invalidate_model()
        text = self.fails("run_filter", {"name": "knowf"}, "not installed on this instance any more")
        self.assertIn("x_gone.model", text)
        listed = self.ok("list_filters")["filters"]
        self.assertEqual((listed[0]["model"], listed[0]["model_installed"]), ("x_gone.model", False))
        self.assertEqual(self.ok("get_context")["saved_filters"][0]["model_installed"], False)
        self.ok("delete_filter", {"filter_id": flt["id"], "confirm": True})
        self.assertEqual(self.ok("list_filters")["total"], 0)

    def test_delete_filter(self):
        flt = self.save()["filter"]
        self.fails("delete_filter", {"name": "knowf"}, "confirmation required")
        self.fails("delete_filter", {"name": "knowf", "confirm": True}, "not found", key=self.key_b)
        self.assertEqual(self.ok("delete_filter", {"name": "knowf", "confirm": True})["id"], flt["id"])
        record = self.env["ocore.mcp.saved.filter"].with_context(active_test=False).browse(flt["id"])
        self.assertEqual((record.active, bool(record.deleted_at)), (False, True))
        self.fails("run_filter", {"name": "knowf"}, "no saved filter")


@tagged("post_install", "-at_install")
class TestKnowledgeBookmarks(KnowledgeCase):
    def test_bookmark_most_recent_call(self):
        self.ok("list_notes", {"search": "anything"})
        # a refused call is audited with its (redacted) parameters
        self.call("list_filters", {"model": "res.partner", "api_token": "s3cr3t-value"})
        data = self.ok("bookmark_call", {"label": "The refused call", "tags": ["debug"], "note": "why"})["bookmark"]
        self.assertEqual(data["tool_name"], f"{self.slug}_list_filters")
        self.assertEqual(data["tool_params"]["api_token"], "[REDACTED]")
        self.assertEqual(data["tool_params"]["model"], "res.partner")
        self.assertEqual(data["call_status"], "refused")
        self.assertIn("unknown argument", data["result_summary"])
        self.assertEqual((data["instance"], data["tags"], data["note"]), (self.slug, ["debug"], "why"))
        mark = self.env["ocore.mcp.bookmark"].browse(data["id"])
        self.assertNotIn("s3cr3t", mark.tool_params)
        # the bookmark_call itself is not "the most recent call": the next one bookmarks the refused call again
        again = self.ok("bookmark_call", {"label": "again"})["bookmark"]
        self.assertEqual(again["tool_name"], f"{self.slug}_bookmark_call")
        self.assertEqual(again["audit_log_id"], data["audit_log_id"] + 1)

    def test_bookmark_by_audit_id_and_purge(self):
        self.ok("add_note", {"target_type": "instance", "title": "Bookmarked call"})
        entry = self.env["ocore.mcp.audit.log"].search([("tool", "=", "add_note")], limit=1)
        self.ok("list_notes")
        data = self.ok("bookmark_call", {"label": "Adding a note", "audit_log_id": entry.id})["bookmark"]
        self.assertEqual((data["tool_name"], data["audit_log_id"], data["call_status"]),
                         (f"{self.slug}_add_note", entry.id, "success"))
        self.assertEqual(data["tool_params"]["title"], "Bookmarked call")
        self.assertIn("Bookmarked call", data["result_summary"])
        self.assertLessEqual(len(data["result_summary"]), 500)
        # the audit row is purged: the snapshot remains
        self.env.cr.execute("DELETE FROM mcp_audit_log WHERE id = %s", (entry.id,))
        self.env.invalidate_all()
        mark = self.env["ocore.mcp.bookmark"].browse(data["id"])
        self.assertFalse(mark.audit_log_id)
        listed = self.ok("list_bookmarks")["bookmarks"]
        row = next(b for b in listed if b["id"] == data["id"])
        self.assertEqual((row["tool_name"], row["audit_log_id"], row["audit_log_kept"]),
                         (f"{self.slug}_add_note", entry.id, False))
        self.fails("bookmark_call", {"label": "x", "audit_log_id": entry.id}, "no tool call with audit log id")

    def test_bookmark_refusals(self):
        self.fails("bookmark_call", {"label": "nothing before"}, "no earlier tool call")
        self.ok("list_notes")
        self.fails("bookmark_call", {"label": "x" * 201}, "at most 200 characters")
        self.fails("bookmark_call", {"label": "x", "note": "y" * 1001}, "at most 1000 characters")
        # another user's call is not readable through their audit rows
        self.ok("list_notes", key=self.key_b)
        other = self.env["ocore.mcp.audit.log"].search([("key_id", "=", self.key_b.id)], limit=1)
        self.fails("bookmark_call", {"label": "x", "audit_log_id": other.id}, "no tool call with audit log id")

    def test_list_bookmarks(self):
        self.ok("list_notes")
        Bookmark = self.env["ocore.mcp.bookmark"].with_user(self.user_a)
        tags = self.env["ocore.mcp.knowledge.tag"]._ocore_get(["bulk"])
        Bookmark.create([{"label": f"bulk {i:02d}", "tool_name": "x_search_read", "instance": "other",
                          "tag_ids": [Command.set(tags.ids)]} for i in range(55)])
        mine = self.ok("bookmark_call", {"label": "Newest one", "tags": ["mine"], "note": "special words"})
        data = self.ok("list_bookmarks")
        self.assertEqual((data["total"], len(data["bookmarks"])), (56, 50))
        self.assertEqual(data["bookmarks"][0]["id"], mine["bookmark"]["id"])
        self.assertEqual(data["bookmarks"][1]["label"], "bulk 54")
        self.fails("list_bookmarks", {"limit": 51}, "less than or equal to 50")
        self.assertEqual(self.ok("list_bookmarks", {"tags": ["mine"]})["total"], 1)
        self.assertEqual(self.ok("list_bookmarks", {"instance": self.slug})["total"], 1)
        self.assertEqual(self.ok("list_bookmarks", {"instance": "other", "limit": 5})["total"], 55)
        self.assertEqual(self.ok("list_bookmarks", {"search": "special"})["bookmarks"][0]["label"], "Newest one")
        self.assertEqual(self.ok("list_bookmarks", {"search": "x_search"})["total"], 55)
        self.assertEqual(self.ok("list_bookmarks", key=self.key_a2)["total"], 56)
        self.assertEqual(self.ok("list_bookmarks", key=self.key_b)["total"], 0)

    def test_delete_bookmark(self):
        self.ok("list_notes")
        mark_id = self.ok("bookmark_call", {"label": "to delete"})["bookmark"]["id"]
        self.fails("delete_bookmark", {"bookmark_id": mark_id}, "confirmation required")
        self.fails("delete_bookmark", {"bookmark_id": mark_id, "confirm": True}, "not found", key=self.key_b)
        self.ok("delete_bookmark", {"bookmark_id": mark_id, "confirm": True})
        self.assertEqual(self.ok("list_bookmarks")["total"], 0)
        mark = self.env["ocore.mcp.bookmark"].with_context(active_test=False).browse(mark_id)
        self.assertEqual((mark.active, bool(mark.deleted_at)), (False, True))


@tagged("post_install", "-at_install")
class TestKnowledgeContext(KnowledgeCase):
    def fill(self):
        self.ok("set_instance_summary", {"summary": "EU production instance with custom VAT workflow."})
        self.ok("set_model_summary", {"model": "res.partner", "summary": "Customers; x_vat_split marks EU."})
        self.ok("set_model_summary", {"model": "res.users", "summary": "U" * 400})
        self.ok("add_note", {"target_type": "instance", "title": "plain note"})
        self.ok("save_filter", {"name": "all_partners", "model": "res.partner", "description": "every partner"})
        self.ok("bookmark_call", {"label": "saving the filter"})

    def test_get_context(self):
        empty = self.ok("get_context")
        self.assertEqual((empty["instance_summary"], empty["model_summaries"], empty["notes"], empty["saved_filters"],
                          empty["bookmarks"]), (None, [], [], [], []))
        self.fill()
        data = self.ok("get_context", key=self.key_a2)
        self.assertEqual(data["instance"], self.slug)
        self.assertEqual(data["instance_summary"]["body"], "EU production instance with custom VAT workflow.")
        self.assertEqual([m["model"] for m in data["model_summaries"]], ["res.partner", "res.users"])
        self.assertEqual([n["title"] for n in data["notes"]], ["plain note"])
        self.assertEqual(data["saved_filters"], [{"id": data["saved_filters"][0]["id"], "name": "all_partners",
                                                  "model": "res.partner", "description": "every partner",
                                                  "use_count": 0, "model_installed": True}])
        self.assertEqual([b["label"] for b in data["bookmarks"]], ["saving the filter"])
        self.assertEqual(self.ok("get_context", {"notes_limit": 0})["notes"], [])
        self.assertEqual(self.ok("get_context", key=self.key_b)["instance_summary"], None)

    def tools_list(self, key):
        request = P.parse_request("tools/list", "2025-11-25", {})
        return {t["name"]: t["description"] for t in self.server._mcp_tools_list(self.conn(key), request, 1)["tools"]}

    def test_auto_context_prefix(self):
        self.fill()
        self.key.auto_context = True
        server_cls = type(self.server)
        original = server_cls._ocore_auto_context_data
        calls = []

        def counting(server, env):
            calls.append(env.uid)
            return original(server, env)

        with patch.object(server_cls, "_ocore_auto_context_data", counting):
            tools = self.tools_list(self.key)
        self.assertEqual(calls, [self.user_a.id])  # once per tools/list, as the key owner
        description = tools[f"{self.slug}_list_notes"]
        prefix = description.split("\n\n")[0]
        self.assertEqual(prefix.splitlines(), [
            "[Auto-context] Instance context: EU production instance with custom VAT workflow.",
            "Model summaries: res.partner: Customers; x_vat_split marks EU; res.users: " + "U" * 149 + "…",
            f"1 saved filter available -- call {self.slug}_get_context for details.",
        ])
        self.assertTrue(description.endswith("newest first."))
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs().values()
        platform = {f"ocore_{spec.name}" for spec in specs if spec.meta.platform}
        self.assertIn("ocore_list_instances", tools)
        for name, text in tools.items():
            if name in platform:
                self.assertFalse(text.startswith("[Auto-context]"), name)
            else:
                self.assertTrue(text.startswith(prefix), name)
        # a key without auto-context, and a key of another company (no knowledge there): no prefix
        self.assertFalse(self.tools_list(self.key_a2)[f"{self.slug}_list_notes"].startswith("[Auto-context]"))
        self.key_b.auto_context = True
        self.assertFalse(self.tools_list(self.key_b)[f"{self.slug}_list_notes"].startswith("[Auto-context]"))

    def test_auto_context_twenty_models(self):
        self.key.auto_context = True
        # models the user may read: knowledge about the others is hidden from them (test_knowledge_security)
        models = self.env["ir.model"].search([("transient", "=", False)], order="model").filtered(
            lambda m: m.model in self.env and compat.has_access(self.env[m.model].with_user(self.user_a), "read")
        )[:22]
        self.assertEqual(len(models), 22)
        Note = self.env["ocore.mcp.note"].with_user(self.user_a)
        summary = self.env["ocore.mcp.knowledge.tag"]._ocore_get(["summary"])
        for model in models:
            Note.create({"title": "s", "body": f"about {model.model}", "target_type": "model",
                         "target_model": model.model, "tag_ids": [Command.set(summary.ids)]})
        prefix = self.tools_list(self.key)[f"{self.slug}_get_context"].split("\n\n")[0]
        self.assertEqual(prefix.count(": about "), 20)
        self.assertNotIn("Instance context", prefix)
        self.assertIn(f"Call {self.slug}_get_context for details.", prefix)

    def test_auto_context_deadline(self):
        self.fill()
        self.key.auto_context = True
        server_cls = type(self.server)

        def slow_sql(server, env):
            env.cr.execute("SELECT pg_sleep(5)")

        def slow_python(server, env):
            while True:
                time.sleep(0.001)

        self.env.cr.execute("SHOW statement_timeout")
        before = self.env.cr.fetchone()[0]
        for slow in (slow_sql, slow_python):
            with self.subTest(slow.__name__), patch.object(auto_context, "AUTO_CONTEXT_DEADLINE", 0.5), \
                    patch.object(server_cls, "_ocore_auto_context_data", slow), \
                    self.assertLogs("odoo.addons.ocore_mcp_knowledge.models.mcp_server", "WARNING") as logs:
                started = time.monotonic()
                tools = self.tools_list(self.key)
                self.assertLess(time.monotonic() - started, 3)
            self.assertIn("not loaded within 0.5s", logs.output[0])
            self.assertFalse(tools[f"{self.slug}_list_notes"].startswith("[Auto-context]"))
            self.env.cr.execute("SHOW statement_timeout")
            self.assertEqual(self.env.cr.fetchone()[0], before)
        # the transaction is still usable and the next listing has the prefix
        self.assertTrue(self.tools_list(self.key)[f"{self.slug}_list_notes"].startswith("[Auto-context]"))
