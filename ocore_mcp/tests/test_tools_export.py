import csv
import io

from odoo.tests import tagged

from ..tools.orm_csv import is_formula
from .common import McpToolCase


def parse(text):
    return list(csv.reader(io.StringIO(text)))


@tagged("post_install", "-at_install")
class TestExportTools(McpToolCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.country = cls.env.ref("base.be")
        cls.partners = cls.Partner.create([
            {"name": f"CsvTest {i:02d}", "ref": "CSVTEST", "email": f"c{i}@example.com", "country_id": cls.country.id,
             "street": "=HYPERLINK(\"http://evil\")" if i == 0 else False}
            for i in range(12)
        ])
        cls.domain = [["ref", "=", "CSVTEST"]]

    def test_formula_detection(self):
        for cell in ("=1+1", "@SUM(A1)", "\tx", "\rx", "+cmd|' /C calc'!A0", "-2+3+cmd|x", "+x"):
            self.assertTrue(is_formula(cell), cell)
        for cell in ("-5", "+33 6 12 34 56 78", "-1,234.50", "(555) 123", "plain", "", "a=b"):
            self.assertFalse(is_formula(cell), cell)

    def test_category_is_orm(self):
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        self.assertEqual((specs["export_csv"].category, specs["import_csv"].category), ("orm", "orm"))
        orm_only, _s = self.keys._ocore_create_key("orm only", self.admin, rate_limit=100000,
                                                   category_ids=[(6, 0, self.env["ocore.mcp.category"].search(
                                                       [("code", "=", "orm")]).ids)])
        self.ok("export_csv", {"model": "res.partner", "domain": self.domain, "fields": ["name"]}, key=orm_only)

    def test_export_labels_smart_fields_and_neutralising(self):
        data = self.ok("export_csv", {"model": "res.partner", "domain": self.domain,
                                      "fields": ["name", "email", "country_id", "street"], "order": "name"})
        rows = parse(data["csv"])
        labels = [self.Partner._fields[f].string for f in ("name", "email", "country_id", "street")]
        self.assertEqual(rows[0], labels)
        self.assertEqual(len(rows), 13)
        self.assertEqual(rows[1][:3], ["CsvTest 00", "c0@example.com", self.country.display_name])
        self.assertEqual(rows[1][3], "'=HYPERLINK(\"http://evil\")")
        self.assertEqual(data["neutralised_cells"], 1)
        self.assertEqual((data["total"], data["count"], data["has_more"]), (12, 12, False))
        names = self.ok("export_csv", {"model": "res.partner", "domain": self.domain, "fields": ["name"],
                                       "header": "name"})
        self.assertEqual(parse(names["csv"])[0], ["name"])
        smart = self.ok("export_csv", {"model": "res.partner", "domain": self.domain})
        columns = [c["name"] for c in smart["columns"]]
        self.assertIn("name", columns)
        self.assertNotIn("display_name", columns)  # stored fields only
        self.assertTrue(all(self.Partner._fields[c].store for c in columns))

    def test_export_limits_and_pagination(self):
        data = self.ok("export_csv", {"model": "res.partner", "domain": self.domain, "fields": ["name"],
                                      "limit": 5, "offset": 5, "order": "name"})
        rows = parse(data["csv"])
        self.assertEqual([r[0] for r in rows[1:]], [f"CsvTest {i:02d}" for i in range(5, 10)])
        self.assertEqual((data["total"], data["has_more"], data["next_offset"]), (12, True, 10))
        self.fails("export_csv", {"model": "res.partner", "limit": 5001}, "less than or equal to 5000")
        spec = self.env["ocore.mcp.toolset"]._ocore_tool_specs()["export_csv"]
        self.assertEqual(spec.input_schema["properties"]["limit"]["default"], 500)
        # the response size budget cuts rows and says how to continue
        self.Partner.create([{"name": "X" * 200 + str(i), "ref": "CSVBIG"} for i in range(60)])
        data = self.ok("export_csv", {"model": "res.partner", "domain": [["ref", "=", "CSVBIG"]], "fields": ["name"],
                                      "max_response_size": 8})
        self.assertTrue(data["truncated"])
        self.assertLess(data["count"], 60)
        self.assertEqual(data["next_offset"], data["count"])

    def test_export_refusals(self):
        self.fails("export_csv", {"model": "res.partner", "fields": ["child_ids"]}, "cannot be exported")
        self.fails("export_csv", {"model": "res.partner", "fields": ["nope"]}, "unknown field")
        self.fails("export_csv", {"model": "res.partner", "domain": [["nope", "=", 1]]}, "unknown field")
        self.fails("export_csv", {"model": "ocore.mcp.key"}, "cannot be reached")
        limited, _s = self.keys._ocore_create_key("limited", self.admin, rate_limit=100000,
                                                  model_ids=[(6, 0, [self.env.ref("base.model_res_country").id])])
        self.fails("export_csv", {"model": "res.partner"}, "model allowlist", key=limited)
        # Odoo's own "export" right applies: an employee without it is refused
        employee = self.make_user("csv_employee", [self.env.ref("base.group_user").id,
                                                   self.env.ref("ocore_mcp.group_mcp_user").id])
        emp_key, _s = self.keys._ocore_create_key("emp", employee, rate_limit=100000)
        self.fails("export_csv", {"model": "res.partner", "domain": self.domain, "fields": ["name"]},
                   "rights to export", key=emp_key)

    # -- import ------------------------------------------------------------------------

    def test_import_with_labels_mapping_and_names(self):
        content = ("Name,E-mail address,Country,Notes\n"
                   "Imp A,a@imp.example,Belgium,plain\n"
                   "Imp B,b@imp.example,Belgium,=1+2\n")
        data = self.ok("import_csv", {"model": "res.partner", "csv_content": content,
                                      "field_mapping": {"E-mail address": "email", "Notes": "function"}})
        self.assertEqual((data["rows"], data["imported"], data["error_count"]), (2, 2, 0))
        self.assertEqual(data["columns"], ["name", "email", "country_id", "function"])
        created = self.Partner.browse(data["ids"])
        self.assertEqual(created.mapped("email"), ["a@imp.example", "b@imp.example"])
        self.assertEqual(created.mapped("country_id"), self.country)
        self.assertEqual(created[1].function, "'=1+2")
        self.assertEqual(created[0].function, "plain")
        self.assertEqual(data["neutralised_cells"], [{"row": 2, "column": "Notes"}])

    def test_import_round_trip_of_an_export(self):
        exported = self.ok("export_csv", {"model": "res.partner", "domain": self.domain,
                                          "fields": ["name", "email", "country_id"], "limit": 3, "order": "name"})
        content = exported["csv"].replace("CsvTest", "Copy")
        data = self.ok("import_csv", {"model": "res.partner", "csv_content": content})
        self.assertEqual(data["imported"], 3)
        self.assertEqual(sorted(self.Partner.browse(data["ids"]).mapped("name")), ["Copy 00", "Copy 01", "Copy 02"])

    def test_import_batches_are_independent_with_row_errors(self):
        lines = ["name,email,type"]
        for i in range(1, 251):
            kind = "nonsense" if i == 150 else "contact"
            lines.append(f"Batch {i},b{i}@example.com,{kind}")
        data = self.ok("import_csv", {"model": "res.partner", "csv_content": "\n".join(lines)})
        self.assertEqual(data["rows"], 250)
        self.assertEqual([b["status"] for b in data["batches"]], ["imported", "failed", "imported"])
        self.assertEqual([b["rows"] for b in data["batches"]], ["1-100", "101-200", "201-250"])
        self.assertEqual(data["imported"], 150)
        self.assertEqual(data["failed_rows"], list(range(101, 201)))
        self.assertEqual(data["errors"][0]["row"], 150)
        self.assertEqual(data["errors"][0]["field"], "type")
        self.assertEqual(self.Partner.search_count([("name", "=like", "Batch %")]), 150)

    def test_import_dry_run_writes_nothing(self):
        data = self.ok("import_csv", {"model": "res.partner", "csv_content": "name\nDry One\nDry Two",
                                      "dry_run": True})
        self.assertEqual(data["would_return"]["imported"], 2)
        self.assertFalse(self.Partner.search([("name", "in", ["Dry One", "Dry Two"])]))

    def test_import_refusals_and_limits(self):
        self.fails("import_csv", {"model": "res.partner", "csv_content": "nmae,email\nx,y"},
                   "'nmae' is not a field of res.partner (did you mean name")
        self.fails("import_csv", {"model": "res.partner", "csv_content": "display_name\nx"}, "computed and read-only")
        self.fails("import_csv", {"model": "res.partner", "csv_content": "name,name\nx,y"}, "several columns")
        self.fails("import_csv", {"model": "res.partner", "csv_content": "name\n"}, "no data rows")
        self.fails("import_csv", {"model": "res.partner", "csv_content": "name\nx", "field_mapping": {"Nom": "name"}},
                   "are not CSV headers")
        too_many = "name\n" + "\n".join(f"Row {i}" for i in range(1001))
        self.fails("import_csv", {"model": "res.partner", "csv_content": too_many}, "max 1000 per call")
        self.assertFalse(self.Partner.search([("name", "=", "Row 1")]))
        text = self.fails("import_csv", {"model": "res.partner", "csv_content": "name,type\nBad,nonsense"},
                          "nothing was imported")
        self.assertIn("row 1", text)
        self.fails("import_csv", {"model": "res.partner", "csv_content": "name\nx"}, "production guard",
                   write_enabled=False)
        ro_key, _s = self.keys._ocore_create_key("ro", self.admin, read_only=True)
        self.fails("import_csv", {"model": "res.partner", "csv_content": "name\nx"}, "read-only", key=ro_key)

    def test_import_semicolon_and_overlong_rows(self):
        data = self.ok("import_csv", {"model": "res.partner", "csv_content": "name;email\nSemi;s@x.example\n"
                                      "Long;l@x.example;extra", "delimiter": ";"})
        self.assertEqual(data["imported"], 1)
        self.assertEqual(data["failed_rows"], [2])
        self.assertIn("2 columns", data["errors"][0]["message"])
