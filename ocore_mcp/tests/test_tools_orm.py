from unittest.mock import patch

from odoo import Command
from odoo.tests import tagged

from ..tools.orm import BATCH_MAX
from .common import McpToolCase


@tagged("post_install", "-at_install")
class TestOrmTools(McpToolCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partners = cls.Partner.create(
            [{"name": f"OrmTest {i}", "ref": "ORMTEST", "email": f"o{i}@example.com"} for i in range(5)]
        )
        cls.domain = [["ref", "=", "ORMTEST"]]

    # -- reads -----------------------------------------------------------------------

    def test_search_read_smart_fields_and_pagination(self):
        data = self.ok("search_read", {"model": "res.partner", "domain": self.domain, "limit": 2, "order": "id"})
        self.assertIn("email", data["fields"])
        # search_read does not count every match on a full page (advanced_search does): has_more comes
        # from fetching one row more than the page
        self.assertEqual((data["total"], data["count"], data["has_more"], data["next_offset"]), (None, 2, True, 2))
        self.assertTrue(data["smart_fields"])
        fields = data["fields"]
        self.assertLessEqual(len(fields), 20)
        self.assertEqual(fields[:2], ["display_name", "name"])
        for unwanted in ("image_1920", "message_ids", "activity_ids", "write_uid", "create_uid", "password"):
            self.assertNotIn(unwanted, fields)
        first = data["records"][0]
        self.assertEqual(first["id"], self.partners[0].id)
        self.assertEqual(first["name"], "OrmTest 0")
        self.assertEqual(first["email"], "o0@example.com")
        dated = self.ok("read", {"model": "res.partner", "ids": [first["id"]], "fields": ["create_date"]})
        self.assertRegex(dated["records"][0]["create_date"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
        last = self.ok(
            "search_read", {"model": "res.partner", "domain": self.domain, "limit": 2, "offset": 4, "fields": ["name"]}
        )
        self.assertEqual((last["count"], last["total"], last["has_more"], last["next_offset"]), (1, 5, False, None))
        self.assertEqual(set(last["records"][0]), {"id", "name"})

    def test_search_read_many2one_and_text_format(self):
        self.partners[1].parent_id = self.partners[0]
        data = self.ok(
            "search_read",
            {
                "model": "res.partner",
                "domain": [["id", "=", self.partners[1].id]],
                "fields": ["parent_id", "email", "is_company", "phone"],
            },
        )
        record = data["records"][0]
        self.assertEqual(record["parent_id"], [self.partners[0].id, "OrmTest 0"])
        self.assertIs(record["is_company"], False)
        self.assertIsNone(record["phone"])
        result = self.call(
            "search_read",
            {
                "model": "res.partner",
                "domain": self.domain,
                "limit": 3,
                "fields": ["name", "email"],
                "format": "text",
                "order": "id",
            },
        )
        self.assertFalse(result["isError"])
        text = result["content"][0]["text"]
        self.assertIn("res.partner: 3 of more record(s)", text)
        self.assertIn("offset=3", text)
        self.assertIn("| id | name | email |", text)
        self.assertIn("o0@example.com", text)
        self.assertIsNone(result["structuredContent"]["total"])
        counted = self.ok("advanced_search", {"model": "res.partner", "domain": self.domain, "limit": 3})
        self.assertEqual((counted["total"], counted["has_more"]), (5, True))

    def test_order_is_validated(self):
        data = self.ok(
            "search_read", {"model": "res.partner", "domain": self.domain, "fields": ["name"], "order": "name desc, id"}
        )
        self.assertEqual(data["records"][0]["name"], "OrmTest 4")
        self.fails("search_read", {"model": "res.partner", "order": "name; DROP TABLE res_partner"}, "order:")
        self.fails("search_read", {"model": "res.partner", "order": "id desc, (select 1)"}, "order:")
        self.fails("search_read", {"model": "res.partner", "order": "nope asc"}, "unknown field 'nope'")
        self.fails("search_read", {"model": "res.partner", "order": "display_name"}, "not stored")

    def test_bad_input_is_refused_clearly(self):
        self.fails("search_read", {"model": "no.such.model"}, "unknown model 'no.such.model'")
        self.fails("search_read", {"model": "res partner"}, "invalid input")
        self.fails(
            "search_read", {"model": "res.partner", "fields": ["name", "nope"]}, "unknown field(s) on res.partner: nope"
        )
        self.fails("search_read", {"model": "res.partner", "domain": [["nope", "=", 1]]}, "unknown field 'nope'")
        self.fails(
            "search_read",
            {"model": "res.partner", "domain": [["parent_id.nope", "=", 1]]},
            "unknown field 'nope' on res.partner",
        )
        self.fails("search_read", {"model": "res.partner", "domain": [["name", "="]]}, "neither a condition")
        self.fails("search_read", {"model": "res.partner", "domain": [["name", "~~", "x"]]}, "unknown operator")
        self.fails("search_read", {"model": "res.partner", "domain": ["|", ["name", "=", "x"]]}, "missing 1 operand")
        self.fails("search_read", {"model": "res.partner", "domain": [["name", "in", "x"]]}, "needs a list")
        self.fails("search_read", {"model": "res.partner", "domain": [["name.x", "=", "x"]]}, "not a relational")
        self.fails("search_read", {"model": "res.partner", "domain": "[('name', '=', 'x')]"}, "domain")
        self.fails("search_read", {"model": "res.partner", "limit": "many"}, "limit")
        self.fails("search_read", {"model": "res.partner", "limit": 0}, "limit")
        self.fails("read", {"model": "res.partner", "ids": ["a"]}, "ids.0")
        self.fails("read", {"model": "res.partner", "ids": ["1"]}, "ids.0")
        self.fails("read", {"model": "res.partner", "ids": [1.5]}, "ids.0")
        self.fails("read", {"model": "res.partner", "ids": [-3]}, "ids.0")
        self.fails("read", {"model": "res.partner", "ids": []}, "ids")
        self.fails("count", {"model": "res.partner", "bogus": 1}, "bogus: unknown argument")
        self.fails("search_read", {"model": "ocore.mcp.key"}, "permission denied")
        self.fails("count", {"model": "res.users.apikeys"}, "permission denied")
        self.fails("search_read", {"model": "ir.qweb"}, "abstract model")

    def test_read_and_count(self):
        missing = self.partners[-1].id + 100000
        data = self.ok("read", {"model": "res.partner", "ids": [self.partners[0].id, missing]})
        self.assertEqual(data["not_found"], [missing])
        self.assertEqual(data["records"][0]["name"], "OrmTest 0")
        self.assertIn("email", data["fields"])
        data = self.ok("read", {"model": "res.partner", "ids": self.partners.ids, "fields": ["email"]})
        self.assertEqual([r["email"] for r in data["records"]], self.partners.mapped("email"))
        self.assertEqual(self.ok("count", {"model": "res.partner", "domain": self.domain})["count"], 5)
        self.assertEqual(
            self.ok(
                "count",
                {
                    "model": "res.partner",
                    "domain": ["|", ["email", "=", "o1@example.com"], ["email", "=", "o2@example.com"]],
                },
            )["count"],
            2,
        )

    # -- writes ----------------------------------------------------------------------

    def test_create_write_copy(self):
        data = self.ok(
            "create",
            {
                "model": "res.partner",
                "values": {
                    "name": "Created Co",
                    "email": "c@example.com",
                    "parent_id": [self.partners[0].id, "OrmTest 0"],
                },
            },
        )
        record = self.Partner.browse(data["id"])
        self.assertEqual((record.name, record.parent_id), ("Created Co", self.partners[0]))
        self.assertEqual(data["record"]["email"], "c@example.com")
        self.assertEqual(data["record"]["parent_id"][0], self.partners[0].id)
        data = self.ok("write", {"model": "res.partner", "ids": [record.id], "values": {"phone": "+123"}})
        self.assertEqual(data["updated"], 1)
        self.assertEqual(data["records"][0]["phone"], "+123")
        self.assertEqual(record.phone, "+123")
        data = self.ok("copy", {"model": "res.partner", "id": record.id, "default": {"name": "Copied Co"}})
        self.assertNotEqual(data["id"], record.id)
        self.assertEqual(data["record"]["name"], "Copied Co")
        self.assertEqual(self.Partner.browse(data["id"]).email, "c@example.com")

    def test_writes_refuse_bad_input_and_write_nothing(self):
        self.fails("create", {"model": "res.partner", "values": {"name": "X", "nope": 1}}, "unknown field(s)")
        self.fails("create", {"model": "res.partner", "values": {}}, "non-empty object")
        self.fails(
            "create",
            {"model": "res.partner", "values": {"name": "X", "parent_id": "abc"}},
            "values.parent_id: expected a record id",
        )
        self.fails(
            "create",
            {"model": "res.partner", "values": {"name": "X", "type": "bogus"}},
            "values.type: 'bogus' is not one of",
        )
        self.fails(
            "create", {"model": "res.partner", "values": {"name": "X", "is_company": "yes"}}, "expected true or false"
        )
        self.fails("create", {"model": "res.partner", "values": {"name": "X", "color": "red"}}, "an integer")
        self.fails("create", {"model": "res.partner", "values": "name=X"}, "values")
        self.assertFalse(self.Partner.search([("name", "=", "X")]))
        missing = self.partners[-1].id + 100000
        self.fails(
            "write",
            {"model": "res.partner", "ids": [self.partners[0].id, missing], "values": {"name": "Renamed"}},
            f"no record(s) with id {missing}",
        )
        self.assertEqual(self.partners[0].name, "OrmTest 0")
        self.fails("copy", {"model": "res.partner", "id": missing}, "not found")

    def test_dry_run_writes_nothing(self):
        result = self.call("create", {"model": "res.partner", "values": {"name": "Dry Co"}, "dry_run": True})
        self.assertFalse(result["isError"])
        self.assertTrue(result["structuredContent"]["dry_run"])
        self.assertEqual(result["structuredContent"]["would_return"]["record"]["name"], "Dry Co")
        self.assertFalse(self.Partner.search([("name", "=", "Dry Co")]))
        self.ok(
            "write", {"model": "res.partner", "ids": self.partners[:2].ids, "values": {"name": "Dry"}, "dry_run": True}
        )
        self.assertEqual(self.partners[:2].mapped("name"), ["OrmTest 0", "OrmTest 1"])
        self.ok("unlink", {"model": "res.partner", "ids": self.partners[:1].ids, "dry_run": True})
        self.assertTrue(self.partners[0].exists())
        self.ok("batch_create", {"model": "res.partner", "values_list": [{"name": "Dry Batch"}], "dry_run": True})
        self.assertFalse(self.Partner.search([("name", "=", "Dry Batch")]))

    def test_unlink_needs_confirm(self):
        target = self.partners[4]
        self.fails("unlink", {"model": "res.partner", "ids": target.ids}, "confirmation required")
        self.assertTrue(target.exists())
        data = self.ok("unlink", {"model": "res.partner", "ids": target.ids, "confirm": True})
        self.assertEqual(data["deleted"], [{"id": target.id, "display_name": "OrmTest 4"}])
        self.assertFalse(target.exists())
        self.fails("unlink", {"model": "res.partner", "ids": target.ids, "confirm": True}, "not found")

    # -- execute_method --------------------------------------------------------------

    def test_execute_method(self):
        data = self.ok(
            "execute_method",
            {"model": "res.partner", "method": "name_search", "args": ["OrmTest 3"], "kwargs": {"limit": 5}},
        )
        self.assertTrue(data["read_only"])
        self.assertEqual(data["result"], [[self.partners[3].id, "OrmTest 3"]])
        data = self.ok("execute_method", {"model": "res.partner", "method": "default_get", "args": [["type"]]})
        self.assertEqual(data["result"], {"type": "contact"})
        data = self.ok("execute_method", {"model": "res.partner", "method": "search", "args": [self.domain]})
        self.assertEqual(sorted(data["result"]["ids"]), sorted(self.partners.ids))
        data = self.ok(
            "execute_method", {"model": "res.partner", "method": "action_archive", "ids": self.partners[:2].ids}
        )
        self.assertFalse(data["read_only"])
        self.assertEqual(self.partners[:2].mapped("active"), [False, False])
        self.fails("execute_method", {"model": "res.partner", "method": "name_search", "ids": [1]}, "model-level")
        self.fails("execute_method", {"model": "res.partner", "method": "no_such_method"}, "has no method")
        self.fails(
            "execute_method",
            {"model": "res.partner", "method": "name_search", "args": [1, 2, 3, 4, 5, 6]},
            "invalid input",
        )

    def test_execute_method_blocklist(self):
        cases = {
            "sudo": "permission denied",
            "with_user": "permission denied",
            "with_context": "permission denied",
            "_auto_init": "private method",
            "_read_group": "private method",
            "write": "use the dedicated write / batch_update tool",
            "create": "use the dedicated create / batch_create tool",
            "unlink": "confirm: true",
            "copy": "use the dedicated copy",
            "init": "permission denied",
            "invalidate_model": "permission denied",
            "flush_model": "permission denied",
            "load": "permission denied",
        }
        for method, expected in cases.items():
            with self.subTest(method=method):
                self.fails(
                    "execute_method", {"model": "res.partner", "method": method, "ids": self.partners[:1].ids}, expected
                )
        self.fails("execute_method", {"model": "res.partner", "method": "foo bar"}, "not a valid identifier")
        self.fails(
            "execute_method",
            {"model": "ir.config_parameter", "method": "get_param", "args": ["x"]},
            "permission denied: execute_method cannot be used on ir.config_parameter",
        )
        self.fails(
            "execute_method",
            {"model": "ocore.mcp.key", "method": "action_revoke", "ids": self.key.ids},
            "permission denied",
        )
        self.fails(
            "execute_method", {"model": "res.users", "method": "change_password", "args": ["a", "b"]}, "credentials"
        )
        self.fails(
            "execute_method",
            {"model": "res.users", "method": "preference_change_password", "ids": self.admin.ids},
            "permission denied",
        )
        self.fails("execute_method", {"model": "ir.actions.server", "method": "run", "ids": [1]}, "permission denied")
        self.fails(
            "execute_method",
            {"model": "res.partner", "method": "name_search", "kwargs": {"context": {"active_test": False}}},
            "kwargs.context",
        )
        self.assertTrue(self.key.active)

    def test_read_only_key_and_production_guard(self):
        ro_key, _s = self.keys._ocore_create_key("ro", self.admin, read_only=True)
        self.fails("create", {"model": "res.partner", "values": {"name": "RO"}}, "write operations blocked", key=ro_key)
        self.fails(
            "execute_method",
            {"model": "res.partner", "method": "action_archive", "ids": self.partners[:1].ids},
            "write operations blocked",
            key=ro_key,
        )
        self.fails(
            "batch_update",
            {"model": "res.partner", "updates": [{"id": self.partners[0].id, "values": {"name": "x"}}]},
            "write operations blocked",
            key=ro_key,
        )
        self.assertTrue(self.partners[0].active)
        data = self.ok(
            "execute_method", {"model": "res.partner", "method": "name_search", "args": ["OrmTest"]}, key=ro_key
        )
        self.assertEqual(len(data["result"]), 5)
        self.ok("search_read", {"model": "res.partner", "domain": self.domain}, key=ro_key)
        # production guard: same split
        self.fails(
            "write",
            {"model": "res.partner", "ids": self.partners[:1].ids, "values": {"name": "x"}},
            "mcp_write_enabled off",
            write_enabled=False,
        )
        self.ok(
            "execute_method", {"model": "res.partner", "method": "fields_get", "args": [["name"]]}, write_enabled=False
        )
        self.ok(
            "batch_execute",
            {"model": "res.partner", "method": "read", "ids": self.partners[:2].ids, "args": [["name"]]},
            key=ro_key,
        )

    def test_read_only_methods_are_rolled_back(self):
        victim = self.partners[0]
        partner_class = type(self.Partner)
        original = partner_class.name_search

        def sneaky_name_search(records, name="", *args, **kwargs):
            records.browse(victim.id).write({"name": "Changed by a read-only call"})
            return original(records, name, *args, **kwargs)

        with patch.object(partner_class, "name_search", sneaky_name_search):
            data = self.ok("execute_method", {"model": "res.partner", "method": "name_search", "args": ["Changed by"]})
        self.assertEqual(data["result"], [[victim.id, "Changed by a read-only call"]])
        victim.invalidate_recordset()
        self.assertEqual(victim.name, "OrmTest 0")

    # -- batches -----------------------------------------------------------------------

    def test_batch_create_partial_failure(self):
        data = self.ok(
            "batch_create",
            {
                "model": "res.partner",
                "values_list": [
                    {"name": "Batch A", "barcode": "MCP-DUP"},
                    {"name": "Batch B", "barcode": "MCP-DUP"},
                    {"name": "Batch C"},
                ],
            },
        )
        self.assertEqual((data["total"], data["succeeded"], data["failed"]), (3, 2, 1))
        results = data["results"]
        self.assertEqual([r["ok"] for r in results], [True, False, True])
        self.assertEqual(results[1]["error"], "error: Another partner already has this barcode")
        self.assertEqual(self.Partner.browse(results[0]["id"]).name, "Batch A")
        self.assertEqual(
            sorted(self.Partner.search([("name", "like", "Batch ")]).mapped("name")), ["Batch A", "Batch C"]
        )
        # malformed input refuses the whole batch before anything runs
        self.fails(
            "batch_create",
            {"model": "res.partner", "values_list": [{"name": "Batch D"}, {"nmae": "typo"}]},
            "values_list[1]: unknown field(s) on res.partner: nmae",
        )
        self.assertFalse(self.Partner.search([("name", "=", "Batch D")]))

    def test_batch_update_delete_copy_execute(self):
        p0, p1, p2 = self.partners[:3]
        missing = self.partners[-1].id + 100000
        data = self.ok(
            "batch_update",
            {
                "model": "res.partner",
                "updates": [
                    {"id": p0.id, "values": {"name": "Upd 0"}},
                    {"id": missing, "values": {"name": "Ghost"}},
                    {"id": p1.id, "values": {"name": "Upd 1"}},
                ],
            },
        )
        self.assertEqual((data["succeeded"], data["failed"]), (2, 1))
        self.assertIn("not found", data["results"][1]["error"])
        self.assertEqual((p0.name, p1.name), ("Upd 0", "Upd 1"))
        self.fails("batch_update", {"model": "res.partner", "updates": [{"id": p0.id}]}, "updates[0]")
        data = self.ok("batch_copy", {"model": "res.partner", "ids": [p0.id, missing], "default": {"ref": "COPY"}})
        self.assertEqual((data["succeeded"], data["failed"]), (1, 1))
        self.assertEqual(self.Partner.browse(data["results"][0]["new_id"]).ref, "COPY")
        data = self.ok(
            "batch_execute", {"model": "res.partner", "method": "action_archive", "ids": [p0.id, missing, p1.id]}
        )
        self.assertEqual([r["ok"] for r in data["results"]], [True, False, True])
        self.assertEqual((p0.active, p1.active), (False, False))
        self.fails("batch_execute", {"model": "res.partner", "method": "sudo", "ids": [p0.id]}, "permission denied")
        self.fails("batch_delete", {"model": "res.partner", "ids": [p2.id]}, "confirmation required")
        self.assertTrue(p2.exists())
        data = self.ok("batch_delete", {"model": "res.partner", "ids": [p2.id, missing], "confirm": True})
        self.assertEqual((data["succeeded"], data["failed"]), (1, 1))
        self.assertFalse(p2.exists())

    def test_batch_limit(self):
        too_many = [{"name": f"Many {i}"} for i in range(BATCH_MAX + 1)]
        self.fails("batch_create", {"model": "res.partner", "values_list": too_many}, "batch too large, 501 items")
        self.assertFalse(self.Partner.search([("name", "=like", "Many %")]))
        self.fails(
            "batch_delete",
            {"model": "res.partner", "ids": list(range(1, BATCH_MAX + 2)), "confirm": True},
            "the maximum is 500",
        )
        self.assertTrue(self.partners.exists())
        self.fails(
            "batch_update",
            {"model": "res.partner", "updates": [{"id": 1, "values": {"name": "x"}}] * 501},
            "batch too large",
        )

    # -- access rights -------------------------------------------------------------------

    def test_key_owner_access_rights_apply(self):
        user = self.make_user(
            "mcp_orm_user", [self.env.ref("base.group_user").id, self.env.ref("ocore_mcp.group_mcp_user").id]
        )
        key, _s = self.keys._ocore_create_key("user key", user)
        self.ok("search_read", {"model": "res.partner", "domain": self.domain}, key=key)
        self.fails("search_read", {"model": "ir.cron"}, "permission denied", key=key)
        self.fails("count", {"model": "ir.cron"}, "permission denied", key=key)
        self.fails("create", {"model": "res.partner", "values": {"name": "Not allowed"}}, "permission denied", key=key)
        self.fails(
            "write",
            {"model": "res.partner", "ids": self.partners[:1].ids, "values": {"name": "x"}},
            "permission denied",
            key=key,
        )
        data = self.ok("batch_create", {"model": "res.partner", "values_list": [{"name": "Not allowed"}]}, key=key)
        self.assertIn("permission denied", data["results"][0]["error"])
        self.assertFalse(self.Partner.search([("name", "=", "Not allowed")]))
        self.fails(
            "execute_method",
            {"model": "ir.mail_server", "method": "search_count", "args": [[]]},
            "permission denied",
            key=key,
        )
        self.fails(
            "execute_method",
            {"model": "res.partner", "method": "action_archive", "ids": self.partners[:1].ids},
            "permission denied",
            key=key,
        )
        self.assertTrue(self.partners[0].active)

    def test_record_rules_apply(self):
        other = self.env["res.company"].create({"name": "Other MCP Co"})
        main = self.env.company
        hidden = self.Partner.create({"name": "Main Co only", "company_id": main.id, "ref": "ORMRULE"})
        user = self.make_user(
            "mcp_rule_user",
            [self.env.ref("base.group_user").id, self.env.ref("ocore_mcp.group_mcp_user").id],
            company_id=other.id,
            company_ids=[Command.set(other.ids)],
        )
        key, _s = self.keys._ocore_create_key("rule key", user)
        data = self.ok("search_read", {"model": "res.partner", "domain": [["ref", "=", "ORMRULE"]]}, key=key)
        self.assertEqual(data["total"], 0)
        self.fails("read", {"model": "res.partner", "ids": hidden.ids}, "permission denied", key=key)
        admin_data = self.ok("search_read", {"model": "res.partner", "domain": [["ref", "=", "ORMRULE"]]})
        self.assertEqual(admin_data["total"], 1)

    def test_model_allowlist(self):
        key, _s = self.keys._ocore_create_key(
            "partners only", self.admin, model_ids=[Command.set(self.env["ir.model"]._get("res.partner").ids)]
        )
        self.ok("count", {"model": "res.partner"}, key=key)
        self.fails("count", {"model": "res.country"}, "model allowlist", key=key)

    def test_readonly_when_is_generic(self):
        spec = self.env["ocore.mcp.toolset"]._ocore_tool_specs()["execute_method"]
        self.assertTrue(spec.meta.requires_write)
        self.assertFalse(spec.meta.requires_write_for({"method": "name_search"}))
        self.assertTrue(spec.meta.requires_write_for({"method": "action_archive"}))
        self.assertEqual(spec.input_schema["properties"]["ids"]["items"]["type"], "integer")
        batch = self.env["ocore.mcp.toolset"]._ocore_tool_specs()["batch_create"]
        self.assertEqual(batch.input_schema["properties"]["values_list"]["maxItems"], BATCH_MAX)
