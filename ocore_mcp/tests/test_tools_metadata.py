import socket

from odoo import Command, release
from odoo.modules.module import get_manifest
from odoo.tests import tagged
from odoo.tools import config

from ..lib import compat
from ..service.context import Connection
from ..tools.metadata import SUMMARY_ATTRS
from .common import McpToolCase

MODEL_TOOLS = {
    "get_field_metadata": {},
    "get_model_constraints": {},
    "get_model_relations": {},
    "get_model_methods": {"search": "create"},
    "get_model_views": {"combined": True, "view_type": "form"},
    "list_translations": {"ids": [1]},
    "update_translation": {"record_id": 1, "field": "name", "lang": "en_US", "value": "x"},
}


class MetadataCase(McpToolCase):
    """Calls the metadata tools through the real pipeline (ocore.mcp.server._ocore_call_tool)."""

    KEY_NAME = "metadata tests"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user = cls.env["res.users"].with_context(no_reset_password=True).create({
            "name": "meta user",
            "login": "ocore_meta_user",
            compat.user_groups_field(cls.env["res.users"]): [Command.set([cls.env.ref("base.group_user").id, cls.env.ref("ocore_mcp.group_mcp_user").id])],
        })
        cls.user_key, _s = cls.keys._ocore_create_key("meta user key", cls.user, rate_limit=100000)


@tagged("post_install", "-at_install")
class TestMetadataTools(MetadataCase):
    # -- list_models -----------------------------------------------------------------

    def test_list_models_rows_and_filters(self):
        data = self.ok("list_models", {"search": "Partner"})
        names = [row["model"] for row in data["models"]]
        self.assertIn("res.partner", names)
        self.assertIn("res.partner.industry", names)
        for row in data["models"]:
            self.assertTrue("partner" in row["model"] or "partner" in row["name"].lower(), row)
        partner = next(row for row in data["models"] if row["model"] == "res.partner")
        self.assertEqual(partner["name"], self.env["res.partner"]._description)
        self.assertEqual(partner["state"], "base")
        self.assertEqual(partner["modules"][0], "base")
        self.assertEqual(data["total"], len(data["models"]))
        everything = self.ok("list_models", {"limit": 5000})
        expected = sorted(n for n in self.env.registry.models if not self.env[n]._transient)
        self.assertEqual([row["model"] for row in everything["models"]], expected)
        self.assertNotIn("res.users.apikeys.description", [row["model"] for row in everything["models"]])  # transient
        page = self.ok("list_models", {"limit": 3, "offset": 2})
        self.assertEqual([row["model"] for row in page["models"]], expected[2:5])
        self.assertTrue(page["has_more"])
        self.assertEqual(page["next_offset"], 5)
        self.assertEqual(self.ok("list_models", {"state": "manual"})["models"], [])
        self.fails("list_models", {"state": "custom"}, "invalid input")

    def test_list_models_cache(self):
        registry = self.env.registry
        registry.__dict__.pop("_ocore_mcp_models_cache", None)
        self.assertFalse(self.ok("list_models", {"limit": 1})["cached"])
        self.assertTrue(self.ok("list_models", {"limit": 1})["cached"])
        # older than 5 minutes: recomputed
        sequence, stamp, rows = registry._ocore_mcp_models_cache
        registry._ocore_mcp_models_cache = (sequence, stamp - 301, rows)
        self.assertFalse(self.ok("list_models", {"limit": 1})["cached"])
        # another worker changed the registry (the signalling sequence moved): recomputed
        sequence, stamp, rows = registry._ocore_mcp_models_cache
        registry._ocore_mcp_models_cache = ((sequence or 0) - 1, stamp, [])
        data = self.ok("list_models", {"search": "res.partner"})
        self.assertFalse(data["cached"])
        self.assertIn("res.partner", [row["model"] for row in data["models"]])

    def test_list_models_allowlist(self):
        key, _s = self.keys._ocore_create_key(
            "two models", self.admin, model_ids=[Command.set(self.env["ir.model"].search(
                [("model", "in", ["res.partner", "res.country"])]).ids)],
        )
        data = self.ok("list_models", {}, key=key)
        self.assertEqual([row["model"] for row in data["models"]], ["res.country", "res.partner"])
        self.assertEqual(self.ok("list_models", {"search": "user"}, key=key)["models"], [])

    def test_allowlist_limits_every_model_tool(self):
        key, _s = self.keys._ocore_create_key(
            "partner only", self.admin,
            model_ids=[Command.set(self.env["ir.model"].search([("model", "=", "res.partner")]).ids)],
        )
        for tool, args in MODEL_TOOLS.items():
            with self.subTest(tool=tool):
                self.fails(tool, {"model": "res.country", **args}, "not in the API key's model allowlist", key=key)
        self.ok("get_model_relations", {"model": "res.partner"}, key=key)
        # module records are reached through ir.module.module: the allowlist must name it
        self.fails("get_addon_manifest", {"module": "base"}, "'ir.module.module' is not in the API key's model "
                   "allowlist", key=key)

    # -- get_field_metadata -----------------------------------------------------------

    def test_field_metadata_summary_grouped(self):
        data = self.ok("get_field_metadata", {"model": "res.partner",
                                              "fields": ["name", "lang", "parent_id", "create_uid"]})
        self.assertEqual(data["mode"], "summary")
        self.assertEqual(data["count"], 4)
        self.assertEqual([f["name"] for f in data["simple"]], ["name", "lang"])
        self.assertEqual([f["name"] for f in data["relational"]], ["parent_id"])
        self.assertEqual([f["name"] for f in data["technical"]], ["create_uid"])
        parent = data["relational"][0]
        self.assertEqual(set(parent) - {"name"}, set(SUMMARY_ATTRS))
        self.assertEqual(len(SUMMARY_ATTRS), 12)
        self.assertEqual(parent["relation"], "res.partner")
        self.assertEqual(parent["type"], "many2one")
        self.assertEqual(parent["string"], "Related Company")
        self.assertTrue(parent["store"])
        self.assertTrue(parent["index"])
        lang = data["simple"][1]
        self.assertIn("en_US", [value for value, _label in lang["selection"]])
        everything = self.ok("get_field_metadata", {"model": "res.partner", "grouped": False})
        self.assertEqual(
            {f["name"] for f in everything["fields"]},
            {n for n, f in self.env["res.partner"]._fields.items() if compat.field_accessible(f, self.env["res.partner"])},
        )
        compute = next(f for f in everything["fields"] if f["name"] == "complete_name")
        self.assertEqual(compute["type"], "char")  # the compact summary of a whole model (see test_audit_ux)
        named = self.ok("get_field_metadata", {"model": "res.partner", "fields": ["complete_name"]})
        self.assertEqual(named["simple"][0]["compute"], "_compute_complete_name")

    def test_field_metadata_detail(self):
        data = self.ok("get_field_metadata", {"model": "res.partner", "fields": ["parent_id", "category_id"],
                                              "detail": True, "grouped": False})
        self.assertEqual(data["mode"], "detail")
        fields = {f["name"]: f for f in data["fields"]}
        self.assertEqual(fields["parent_id"]["ondelete"], "set null")
        self.assertEqual(fields["parent_id"]["module"], "base")
        self.assertEqual(fields["parent_id"]["column_type"], "int4")
        described = ("domain", "context", "searchable", "sortable", "groupable", "exportable")
        parent = self.env["res.partner"]._fields["parent_id"]
        for attr in described:
            if hasattr(parent, f"_description_{attr}"):  # 17.0 describes no "groupable"
                self.assertIn(attr, fields["parent_id"])
        category = self.env["res.partner"]._fields["category_id"]
        self.assertEqual(fields["category_id"]["relation_table"], category.relation)
        self.assertEqual(fields["category_id"]["column1"], "partner_id")
        self.assertEqual(fields["category_id"]["column2"], "category_id")

    def test_field_metadata_refusals_and_groups(self):
        self.fails("get_field_metadata", {"model": "res.partner", "fields": ["nope"]}, "unknown field(s)")
        self.fails("get_field_metadata", {"model": "no.such.model"}, "unknown model 'no.such.model'")
        self.fails("get_field_metadata", {"model": "res.partner; drop"}, "invalid input")
        # field groups apply as in fields_get: key_hash is readable by nobody (groups=fields.NO_ACCESS)
        admin_fields = self.ok("get_field_metadata", {"model": "ocore.mcp.key", "grouped": False})["fields"]
        user_fields = self.ok("get_field_metadata", {"model": "ocore.mcp.key", "grouped": False},
                              key=self.user_key)["fields"]
        self.assertNotIn("key_hash", [f["name"] for f in admin_fields])
        self.assertNotIn("key_hash", [f["name"] for f in user_fields])
        self.assertIn("key_prefix", [f["name"] for f in user_fields])

    # -- constraints, relations, methods -------------------------------------------------

    def test_model_constraints(self):
        data = self.ok("get_model_constraints", {"model": "res.partner"})
        self.assertEqual(data["table"], "res_partner")
        check = next(c for c in data["sql_constraints"] if c["name"] == "check_name")
        self.assertEqual(check["message"], "Contacts require a name")
        self.assertEqual(check["module"], "base")
        self.assertTrue(check["in_database"])
        self.assertIn("type='contact'", check["definition"])
        python = {c["method"]: c for c in data["python_constraints"]}
        self.assertEqual(python["_check_parent_id"]["fields"], ["parent_id"])
        self.assertEqual(python["_check_parent_id"]["module"], "base")
        ondelete = {c["method"]: c for c in data["ondelete_checks"]}
        self.assertFalse(ondelete["_unlink_except_user"]["at_uninstall"])
        db = {c["name"]: c for c in data["database_constraints"]}
        self.assertEqual(db["res_partner_pkey"]["kind"], "primary_key")
        self.assertEqual(db["res_partner_check_name"]["kind"], "check")
        self.assertEqual(db["res_partner_parent_id_fkey"]["kind"], "foreign_key")
        key = self.ok("get_model_constraints", {"model": "ocore.mcp.key"})
        self.assertEqual([c["name"] for c in key["sql_constraints"]], ["rate_limit_positive"])
        self.assertEqual(key["sql_constraints"][0]["module"], "ocore_mcp")
        self.assertIn("_check_ip_allowlist", [c["method"] for c in key["python_constraints"]])
        # abstract model: no table, no database constraints
        abstract = self.ok("get_model_constraints", {"model": "avatar.mixin"})
        self.assertIsNone(abstract["table"])
        self.assertEqual(abstract["database_constraints"], [])

    def test_model_relations(self):
        data = self.ok("get_model_relations", {"model": "res.partner", "include_incoming": True})
        m2o = {r["field"]: r for r in data["many2one"]}
        o2m = {r["field"]: r for r in data["one2many"]}
        m2m = {r["field"]: r for r in data["many2many"]}
        self.assertEqual(m2o["parent_id"]["comodel"], "res.partner")
        self.assertIn("child_ids", m2o["parent_id"]["inverse_fields"])
        self.assertEqual(m2o["country_id"]["ondelete"], "restrict")
        self.assertEqual(o2m["child_ids"]["inverse_name"], "parent_id")
        self.assertEqual(m2m["category_id"]["comodel"], "res.partner.category")
        self.assertEqual(m2m["category_id"]["relation_table"], "res_partner_res_partner_category_rel")
        incoming = {(r["model"], r["field"]) for r in data["incoming"]}
        self.assertIn(("res.users", "partner_id"), incoming)
        self.assertIn(("res.company", "partner_id"), incoming)
        users = self.ok("get_model_relations", {"model": "res.users"})
        self.assertEqual(users["inherits"], {"res.partner": "partner_id"})
        self.assertNotIn("incoming", users)

    def test_model_methods(self):
        data = self.ok("get_model_methods", {"model": "res.partner"})
        methods = {m["name"]: m for m in data["methods"]}
        self.assertEqual(data["count"], len(data["methods"]))
        self.assertEqual(methods["_check_parent_id"]["decorators"], ["constrains"])
        self.assertEqual(methods["onchange_parent_id"]["decorators"], ["onchange"])
        self.assertIn("model_create_multi", methods["create"]["decorators"])
        self.assertEqual(methods["create"]["signature"], "(vals_list)")
        self.assertIn("depends", methods["_compute_complete_name"]["decorators"])
        self.assertEqual(methods["_compute_complete_name"]["defined_on"], "res.partner")
        self.assertEqual(methods["_compute_complete_name"]["modules"][0], "base")
        self.assertTrue(methods["_check_parent_id"]["private"])
        self.assertNotIn("search_read", methods)  # generic ORM method: include_base
        public = self.ok("get_model_methods", {"model": "res.partner", "include_private": False})["methods"]
        self.assertTrue(public)
        self.assertFalse([m["name"] for m in public if m["name"].startswith("_")])
        self.assertIn("onchange_parent_id", [m["name"] for m in public])
        base = self.ok("get_model_methods", {"model": "res.partner", "include_base": True, "search": "search_read"})
        self.assertIn("search_read", [m["name"] for m in base["methods"]])
        self.assertTrue(all("search_read" in m["name"] for m in base["methods"]))

    # -- views --------------------------------------------------------------------------

    def test_model_views_records(self):
        data = self.ok("get_model_views", {"model": "res.partner", "view_type": "form"})
        self.assertFalse(data["combined"])
        views = {v["xml_id"]: v for v in data["views"]}
        form = views["base.view_partner_form"]
        self.assertEqual(form["type"], "form")
        self.assertEqual(form["mode"], "primary")
        self.assertTrue(form["arch"].startswith("<form"))
        self.assertEqual({v["type"] for v in data["views"]}, {"form"})
        expected = self.env["ir.ui.view"].search_count([("model", "=", "res.partner"), ("type", "=", "form")])
        self.assertEqual(data["total"], expected)
        lists = self.ok("get_model_views", {"model": "res.partner", "view_type": "tree", "include_arch": False})
        self.assertEqual({v["type"] for v in lists["views"]}, {compat.list_view_tag()})
        self.assertNotIn("arch", lists["views"][0])
        limited = self.ok("get_model_views", {"model": "res.partner", "limit": 2})
        self.assertEqual(limited["count"], 2)
        self.assertGreater(limited["total"], 2)
        self.fails("get_model_views", {"model": "res.partner", "view_type": "spreadsheet"}, "invalid input")

    def test_model_views_combined_and_rights(self):
        data = self.ok("get_model_views", {"model": "res.partner", "combined": True})
        types = {v["type"]: v for v in data["views"]}
        self.assertEqual(set(types), {"form", compat.list_view_tag(), "search", "kanban"})
        self.assertTrue(types["search"]["arch"].startswith("<search"))
        self.assertEqual(types["form"]["id"], self.env.ref("base.view_partner_form").id)
        # an internal user may not read ir.ui.view records, but gets the combined views
        self.fails("get_model_views", {"model": "res.partner"}, "use combined: true", key=self.user_key)
        user = self.ok("get_model_views", {"model": "res.partner", "combined": True, "view_type": "form"},
                       key=self.user_key)
        self.assertIn("<form", user["views"][0]["arch"])

    # -- instance and modules ---------------------------------------------------------------

    def test_instance_info(self):
        data = self.ok("get_instance_info")
        self.assertEqual(data["slug"], self.slug)
        self.assertEqual(data["database"], self.env.cr.dbname)
        self.assertEqual(data["odoo_version"], release.version)
        self.assertEqual(data["edition"], "enterprise" if "web_enterprise" in self.env.registry._init_modules
                         else "community")
        self.assertTrue(data["mcp_write_enabled"])
        self.assertEqual(data["environment"], self.settings["environment"])
        self.assertEqual(data["server"]["hostname"], socket.gethostname())
        self.assertEqual(data["ports"]["http"], config["http_port"])
        self.assertEqual(data["ports"]["gevent"], config["gevent_port"])
        self.assertEqual(data["timestamps"]["database_created"],
                         self.env["ir.config_parameter"].sudo().get_param("database.create_date"))
        self.assertEqual(data["installed_modules"], len(self.env.registry._init_modules))
        self.assertRegex(data["timestamps"]["now"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
        guarded = self.ok("get_instance_info", write_enabled=False, environment="production")
        self.assertFalse(guarded["mcp_write_enabled"])
        self.assertEqual(guarded["environment"], "production")

    def test_addon_manifest(self):
        data = self.ok("get_addon_manifest", {"module": "base"})
        record = self.env["ir.module.module"].search([("name", "=", "base")])
        self.assertEqual(data["state"], "installed")
        self.assertEqual(data["installed_version"], record.latest_version)
        self.assertEqual(data["code_version"], get_manifest("base")["version"])
        self.assertEqual(data["license"], "LGPL-3")
        self.assertEqual(data["author"], record.author)
        self.assertEqual(data["display_name"], record.shortdesc)
        mine = self.ok("get_addon_manifest", {"module": "ocore_mcp"})
        self.assertIn("web", mine["depends"])
        self.assertTrue(mine["on_disk"])
        self.fails("get_addon_manifest", {"module": "no_such_module_x"}, "unknown module 'no_such_module_x'")
        self.fails("get_addon_manifest", {"module": "bad name!"}, "is not a valid identifier")
        self.fails("get_addon_manifest", {"module": "base"}, "permission denied", key=self.user_key)

    # -- translations ----------------------------------------------------------------------

    def _french(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        # a base record with a translatable name and no write access for internal users, in every series
        title = self.env.ref("base.res_partner_industry_A")  # "Agriculture"
        title.update_field_translations("name", {"fr_FR": False})  # start from no translation
        self.assertEqual(title.with_context(lang="fr_FR").name, "Agriculture")
        return title

    def test_list_translations(self):
        title = self._french()
        title.update_field_translations("name", {"fr_FR": "Agriculteur"})
        data = self.ok("list_translations", {"model": title._name, "ids": [title.id, 999999],
                                             "lang": "fr_FR"})
        self.assertEqual(data["missing_ids"], [999999])
        self.assertEqual(set(data["fields"]), {n for n, f in title._fields.items() if f.translate and f.store})
        entries = data["records"][0]["fields"]["name"]
        self.assertEqual(entries["mode"], "whole")
        self.assertEqual(entries["translations"], [{"lang": "fr_FR", "source": "Agriculture", "value": "Agriculteur"}])
        every = self.ok("list_translations", {"model": title._name, "domain": [["id", "=", title.id]],
                                              "field": "name"})
        self.assertEqual({e["lang"] for e in every["records"][0]["fields"]["name"]["translations"]},
                         {"en_US", "fr_FR"})
        self.assertEqual(every["fields"], ["name"])
        limited = self.ok("list_translations", {"model": title._name, "domain": [], "limit": 2})
        self.assertEqual(limited["count"], 2)
        self.fails("list_translations", {"model": title._name}, "give ids or a domain")
        self.fails("list_translations", {"model": title._name, "ids": [title.id], "field": "id"},
                   "is not translatable")
        self.fails("list_translations", {"model": title._name, "ids": [title.id], "lang": "xx_XX"},
                   "is not an installed language")
        self.fails("list_translations", {"model": title._name, "ids": [title.id], "limit": 101},
                   "invalid input")
        self.fails("list_translations", {"model": "ocore.mcp.category", "ids": [1]}, "cannot be reached")

    def test_update_translation_whole_field(self):
        title = self._french()
        args = {"model": title._name, "record_id": title.id, "field": "name", "lang": "fr_FR"}
        data = self.ok("update_translation", {**args, "value": "Agriculteur"})
        self.assertEqual(data["value_in_lang"], "Agriculteur")
        self.assertEqual(title.with_context(lang="fr_FR").name, "Agriculteur")
        self.assertEqual(title.with_context(lang="en_US").name, "Agriculture")
        self.ok("update_translation", {**args, "value": "Dr", "source": "Agriculture"})
        self.assertEqual(title.with_context(lang="fr_FR").name, "Dr")
        self.fails("update_translation", {**args, "value": "X", "source": "Mister"}, "the current source text")
        self.assertEqual(title.with_context(lang="fr_FR").name, "Dr")
        # null removes the translation: the source text shows again
        self.ok("update_translation", {**args, "value": None})
        self.assertEqual(title.with_context(lang="fr_FR").name, "Agriculture")
        # dry run: reported, rolled back
        dry = self.ok("update_translation", {**args, "value": "Toubib", "dry_run": True})
        self.assertTrue(dry["dry_run"])
        self.assertEqual(dry["would_return"]["value_in_lang"], "Toubib")
        title.invalidate_recordset()
        self.assertEqual(title.with_context(lang="fr_FR").name, "Agriculture")
        self.fails("update_translation", {**args, "lang": "xx_XX", "value": "x"}, "not an installed language")
        self.fails("update_translation", {**args, "record_id": 999999, "value": "x"}, "does not exist")
        self.fails("update_translation", {**args, "field": "nope", "value": "x"}, "unknown field")

    def test_update_translation_terms_need_source(self):
        self._french()
        view = self.env["ir.ui.view"].create({
            "name": "ocore meta terms", "type": "qweb",
            "arch": "<t t-name='ocore_meta_terms'><div>Hello world</div><p>Second term</p></t>",
        })
        args = {"model": "ir.ui.view", "record_id": view.id, "field": "arch_db", "lang": "fr_FR"}
        listed = self.ok("list_translations", {"model": "ir.ui.view", "ids": [view.id], "field": "arch_db",
                                               "lang": "fr_FR"})
        terms = listed["records"][0]["fields"]["arch_db"]
        self.assertEqual(terms["mode"], "terms")
        self.assertEqual([t["source"] for t in terms["translations"]], ["Hello world", "Second term"])
        self.fails("update_translation", {**args, "value": "Bonjour"}, "source is required")
        self.fails("update_translation", {**args, "value": "Bonjour", "source": "Hello"}, "is not a term")
        data = self.ok("update_translation", {**args, "value": "Bonjour le monde", "source": "Hello world"})
        self.assertEqual(data["mode"], "terms")
        self.assertIn("<div>Bonjour le monde</div><p>Second term</p>",
                      view.with_context(lang="fr_FR").arch_db)
        self.assertIn("<div>Hello world</div>", view.with_context(lang="en_US").arch_db)

    def test_update_translation_write_guards(self):
        title = self._french()
        args = {"model": title._name, "record_id": title.id, "field": "name", "lang": "fr_FR", "value": "D"}
        ro_key, _s = self.keys._ocore_create_key("ro meta", self.admin, read_only=True)
        self.fails("update_translation", args, "write operations blocked", key=ro_key)
        self.fails("update_translation", args, "mcp_write_enabled off", write_enabled=False)
        # the key owner's rights apply: an internal user may not write industries
        self.fails("update_translation", args, "permission denied", key=self.user_key)
        self.assertEqual(title.with_context(lang="fr_FR").name, "Agriculture")
        # reading is allowed to read-only keys
        self.ok("list_translations", {"model": title._name, "ids": [title.id]}, key=ro_key)


@tagged("post_install", "-at_install")
class TestListModelsManual(MetadataCase):
    def test_new_custom_model_is_listed_at_once(self):
        self.ok("list_models", {"limit": 1})  # fill the cache
        self.env["ir.model"].create({
            "name": "Meta Test", "model": "x_ocore_meta_test", "state": "manual",
            "field_id": [Command.create({"name": "x_name", "ttype": "char", "field_description": "Name"})],
        })
        data = self.ok("list_models", {"state": "manual"})
        self.assertFalse(data["cached"])
        self.assertEqual([(r["model"], r["name"], r["state"]) for r in data["models"]],
                         [("x_ocore_meta_test", "Meta Test", "manual")])


@tagged("post_install", "-at_install")
class TestMetadataPrompts(MetadataCase):
    def conn(self, key=None, **settings):
        key = key or self.key
        return Connection(key=key, scope=None, settings=dict(self.settings, **settings),
                          transport="stream", protocol_version="2025-06-18")

    def prompt(self, name, arguments, key=None):
        msg = {"jsonrpc": "2.0", "id": 7, "method": "prompts/get", "params": {"name": name, "arguments": arguments}}
        return self.server._ocore_handle(self.conn(key), msg)

    def prompt_text(self, name, arguments, key=None):
        reply = self.prompt(name, arguments, key)
        self.assertNotIn("error", reply, reply.get("error"))
        messages = reply["result"]["messages"]
        self.assertEqual(messages[0]["role"], "user")
        return messages[0]["content"]["text"]

    def test_prompts_listed(self):
        reply = self.server._ocore_handle(self.conn(), {"jsonrpc": "2.0", "id": 1, "method": "prompts/list"})
        prompts = {p["name"]: p for p in reply["result"]["prompts"]}
        self.assertEqual({a["name"]: a["required"] for a in prompts["analyze_error"]["arguments"]},
                         {"traceback": True, "context": False})
        self.assertEqual({a["name"]: a["required"] for a in prompts["explain_model"]["arguments"]}, {"model": True})
        self.assertEqual({a["name"]: a["required"] for a in prompts["debug_performance"]["arguments"]},
                         {"symptoms": True, "model": False})

    def test_explain_model(self):
        text = self.prompt_text("explain_model", {"model": "res.partner"})
        self.assertIn("### Model `res.partner` (Contact)", text)
        self.assertIn(f"- Records: {self.env['res.partner'].search_count([])}", text)
        self.assertIn("| parent_id | many2one | Related Company |", text)
        self.assertIn("- many2one `parent_id` -> res.partner (ondelete set null, inverse one2many: child_ids)", text)
        self.assertIn("- many2many `category_id` -> res.partner.category (table res_partner_res_partner_category_rel)",
                      text)
        self.assertIn("SQL `check_name`", text)
        self.assertIn("Python `_check_parent_id` on parent_id", text)
        self.assertIn(release.version, text)
        reply = self.prompt("explain_model", {"model": "no.such.model"})
        self.assertIn("unknown model", reply["error"]["message"])

    def test_explain_model_allowlist(self):
        key, _s = self.keys._ocore_create_key(
            "users only", self.admin, model_ids=[Command.set(self.env["ir.model"].search(
                [("model", "=", "res.users")]).ids)],
        )
        reply = self.prompt("explain_model", {"model": "res.partner"}, key=key)
        self.assertIn("not in the API key's model allowlist", reply["error"]["message"])
        self.assertIn("### Model `res.users`", self.prompt_text("explain_model", {"model": "res.users"}, key=key))

    TRACEBACK = """Traceback (most recent call last):
  File "/srv/odoo/odoo/addons/base/models/res_partner.py", line 700, in write
    partner.parent_id.name
  File "/srv/odoo/odoo/addons/base/models/res_users.py", line 12, in _compute_x
ValueError: Invalid field 'x_customer_cod' on model 'res.partner'
"""

    def test_analyze_error(self):
        text = self.prompt_text("analyze_error", {"traceback": self.TRACEBACK, "context": "saving a contact"})
        self.assertIn("**Error:** ValueError: Invalid field 'x_customer_cod' on model 'res.partner'", text)
        self.assertIn("**Context given by the user:** saving a contact", text)
        self.assertIn("### Model `res.partner` (Contact)", text)
        self.assertIn("| parent_id | many2one | Related Company |", text)
        self.assertIn("`x_customer_cod` is not a field of res.partner", text)
        base = self.env["ir.module.module"].search([("name", "=", "base")])
        self.assertIn(f"| base | installed | {base.latest_version} | {get_manifest('base')['version']} |", text)
        plain = self.prompt_text("analyze_error", {"traceback": "ZeroDivisionError: division by zero"})
        self.assertIn("No model of this instance is named", plain)

    def test_analyze_error_allowlist(self):
        key, _s = self.keys._ocore_create_key(
            "users only", self.admin, model_ids=[Command.set(self.env["ir.model"].search(
                [("model", "=", "res.users")]).ids)],
        )
        text = self.prompt_text("analyze_error", {"traceback": self.TRACEBACK}, key=key)
        self.assertNotIn("### Model `res.partner`", text)
        self.assertIn("Not shown: res.partner", text)
        # ir.module.module is outside the allowlist: only the code versions are shown
        self.assertIn(f"| base | installed | (not visible) | {get_manifest('base')['version']} |", text)

    def test_debug_performance(self):
        text = self.prompt_text("debug_performance", {"symptoms": "the contact list is slow", "model": "res.partner"})
        self.assertIn("**Symptoms:** the contact list is slow", text)
        self.assertIn("Table `res_partner`", text)
        self.env.cr.execute(
            """SELECT a.attname FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] WHERE t.relname = 'res_partner'"""
        )
        indexed = {row[0] for row in self.env.cr.fetchall()}
        self.assertIn("parent_id", indexed)
        self.assertNotIn("industry_id", indexed)
        line = next(line for line in text.splitlines() if line.startswith("- many2one columns without an index"))
        self.assertIn("industry_id -> res.partner.industry", line)
        self.assertNotIn("parent_id ->", line)
        self.assertIn("MCP: purge old audit rows", text)  # cron status
        overall = self.prompt_text("debug_performance", {"symptoms": "everything is slow"})
        self.assertIn("### Largest tables", overall)
        self.assertIn("| ir.model.data | ir_model_data |", overall)
        reply = self.prompt("debug_performance", {"symptoms": "slow"})
        self.assertIn("result", reply)
        missing = self.prompt("debug_performance", {})
        self.assertIn("symptoms", missing["error"]["message"])

    def test_debug_performance_allowlist(self):
        key, _s = self.keys._ocore_create_key(
            "partner only", self.admin, model_ids=[Command.set(self.env["ir.model"].search(
                [("model", "=", "res.partner")]).ids)],
        )
        text = self.prompt_text("debug_performance", {"symptoms": "slow"}, key=key)
        rows = [line for line in text.split("### Largest tables")[1].split("###")[0].splitlines()
                if line.startswith("| ") and not line.startswith("| model")]
        self.assertEqual([r.split("|")[1].strip() for r in rows], ["res.partner"])
        self.assertIn("ir.cron is outside the API key's model allowlist", text)
        reply = self.prompt("debug_performance", {"symptoms": "slow", "model": "res.users"}, key=key)
        self.assertIn("not in the API key's model allowlist", reply["error"]["message"])
