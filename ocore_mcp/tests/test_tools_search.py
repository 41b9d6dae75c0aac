import csv
import io

from odoo.tests import tagged

from ..tools.search import similarity
from .common import McpToolCase


@tagged("post_install", "-at_install")
class TestSearchTools(McpToolCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rows = [
            ("Acme Corporation", "contact", True, 3),
            ("Acne Studios", "contact", True, 1),
            ("Zeta Holdings", "invoice", False, 5),
            ("Zéta Logistics", "invoice", False, 0),
            ("Omega Partners", "delivery", False, 2),
        ]
        cls.partners = cls.Partner.create(
            [{"name": n, "type": t, "is_company": c, "color": col, "ref": "SRCHTEST"} for n, t, c, col in rows]
        )
        cls.domain = [["ref", "=", "SRCHTEST"]]

    # -- advanced_search ----------------------------------------------------------------

    def test_advanced_search(self):
        data = self.ok(
            "advanced_search",
            {
                "model": "res.partner",
                "domain": [*self.domain, ["is_company", "=", True]],
                "fields": ["name", "type"],
                "order": "name",
                "limit": 1,
            },
        )
        self.assertEqual((data["total"], data["count"], data["has_more"], data["next_offset"]), (2, 1, True, 1))
        self.assertEqual(data["records"][0], {"id": self.partners[0].id, "name": "Acme Corporation", "type": "contact"})
        self.fails("advanced_search", {"model": "res.partner"}, "domain: required argument is missing")
        self.fails("advanced_search", {"model": "res.partner", "domain": [["bogus", "=", 1]]}, "unknown field")
        self.fails(
            "advanced_search", {"model": "res.partner", "domain": self.domain, "order": "name desc --"}, "order:"
        )
        result = self.call("advanced_search", {"model": "res.partner", "domain": self.domain, "format": "text"})
        self.assertIn("res.partner: 5 of 5 record(s)", result["content"][0]["text"])

    # -- aggregation ------------------------------------------------------------------------

    def test_aggregation_groupby_and_formats(self):
        args = {
            "model": "res.partner",
            "domain": self.domain,
            "groupby": ["type"],
            "fields": ["color:sum"],
            "order": "color:sum desc",
        }
        data = self.ok("aggregation", args)
        self.assertEqual(data["groupby"], ["type"])
        self.assertEqual(data["aggregates"], ["color:sum", "__count"])
        rows = {row["type"]: (row["color:sum"], row["__count"]) for row in data["rows"]}
        self.assertEqual(rows, {"contact": (4, 2), "invoice": (5, 2), "delivery": (2, 1)})
        self.assertEqual([r["type"] for r in data["rows"]], ["invoice", "contact", "delivery"])
        result = self.call("aggregation", dict(args, format="table"))
        text = self.text(result)
        self.assertIn("| type | color:sum | __count |", text)
        self.assertIn("| invoice | 5 | 2 |", text)
        result = self.call("aggregation", dict(args, format="csv"))
        parsed = list(csv.reader(io.StringIO(self.text(result))))
        self.assertEqual(parsed[0], ["type", "color:sum", "__count"])
        self.assertEqual(parsed[1], ["invoice", "5", "2"])
        # the tools' one CSV writer (RFC 4180), as execute_sql's and export_csv's: CRLF line ends
        self.assertTrue(self.text(result).startswith("type,color:sum,__count\r\ninvoice,5,2\r\n"))
        self.assertEqual(len(result["structuredContent"]["rows"]), 3)
        # grand totals, many2one group values, pagination of groups
        data = self.ok("aggregation", {"model": "res.partner", "domain": self.domain, "fields": ["color:max"]})
        self.assertEqual(data["rows"], [{"color:max": 5, "__count": 5}])
        self.partners[1].parent_id = self.partners[0]
        data = self.ok(
            "aggregation",
            {
                "model": "res.partner",
                "domain": self.domain,
                "groupby": ["parent_id"],
                "order": "__count desc",
                "limit": 1,
            },
        )
        self.assertEqual(data["rows"][0]["parent_id"], None)
        self.assertTrue(data["has_more"])
        self.assertEqual(data["next_offset"], 1)
        data = self.ok(
            "aggregation",
            {
                "model": "res.partner",
                "domain": self.domain,
                "groupby": ["parent_id"],
                "order": "__count desc",
                "offset": 1,
            },
        )
        self.assertEqual(data["rows"], [{"parent_id": [self.partners[0].id, "Acme Corporation"], "__count": 1}])

    def test_aggregation_presets(self):
        data = self.ok("aggregation", {"model": "res.partner", "domain": self.domain, "preset": "count_by_date"})
        self.assertEqual(data["groupby"], ["create_date:month"])
        self.assertEqual(len(data["rows"]), 1)
        self.assertRegex(data["rows"][0]["create_date:month"], r"^\d{4}-\d\d$")
        self.assertEqual(data["rows"][0]["__count"], 5)
        data = self.ok(
            "aggregation",
            {
                "model": "res.partner",
                "domain": self.domain,
                "preset": "count_by_date",
                "date_field": "write_date",
                "granularity": "year",
            },
        )
        self.assertRegex(data["rows"][0]["write_date:year"], r"^\d{4}$")
        modules = self.ok("aggregation", {"model": "ir.module.module", "preset": "count_by_state"})
        states = {row["state"]: row["__count"] for row in modules["rows"]}
        self.assertGreaterEqual(states["installed"], 3)
        self.fails("aggregation", {"model": "res.partner", "preset": "count_by_state"}, "has no 'state' field")
        self.fails(
            "aggregation", {"model": "res.partner", "preset": "count_by_date", "date_field": "name"}, "not a date field"
        )
        self.fails(
            "aggregation",
            {"model": "res.partner", "preset": "count_by_date", "groupby": ["type"]},
            "either preset or groupby",
        )
        self.fails("aggregation", {"model": "res.partner", "preset": "by_magic"}, "preset")

    def test_aggregation_bad_input(self):
        cases = [
            ({"groupby": ["nope"]}, "groupby: unknown field 'nope'"),
            ({"groupby": ["name:month"]}, "a granularity needs a date field"),
            ({"groupby": ["create_date:fortnight"]}, "unknown granularity"),
            ({"groupby": ["display_name"]}, "not stored"),
            ({"groupby": ["type; drop"]}, "groupby:"),
            ({"fields": ["name:sum"]}, "sum needs a numeric field"),
            ({"fields": ["color:median"]}, "unknown aggregate function"),
            ({"fields": ["nope:sum"]}, "fields: unknown field 'nope'"),
            ({"fields": ["color:sum) FROM x"]}, "fields:"),
            ({"groupby": ["type"], "order": "name desc"}, "neither a groupby nor an aggregate"),
            ({"groupby": ["type"], "order": "type desc; select"}, "order:"),
            ({"domain": [["nope", "=", 1]]}, "unknown field 'nope'"),
            ({"format": "xml"}, "format"),
            ({"limit": 5000}, "limit"),
        ]
        for extra, expected in cases:
            with self.subTest(extra=extra):
                self.fails("aggregation", {"model": "res.partner", **extra}, expected)
        self.fails("aggregation", {"model": "ocore.mcp.audit.log", "groupby": ["status"]}, "permission denied")

    # -- distinct values ----------------------------------------------------------------

    def test_distinct_field_values(self):
        data = self.ok(
            "distinct_field_values",
            {"model": "res.partner", "domain": self.domain, "fields": ["type", "is_company", "create_date"]},
        )
        types = data["fields"]["type"]
        self.assertEqual(types["distinct_count"], 3)
        self.assertFalse(types["has_more"])
        self.assertEqual(types["values"][0]["count"], 2)
        self.assertEqual({v["value"]: v["count"] for v in types["values"]}, {"contact": 2, "invoice": 2, "delivery": 1})
        self.assertEqual({v["value"]: v["count"] for v in data["fields"]["is_company"]["values"]}, {True: 2, False: 3})
        self.assertIn("create_date:day", data["fields"])
        data = self.ok(
            "distinct_field_values", {"model": "res.partner", "domain": self.domain, "fields": ["type"], "limit": 1}
        )
        self.assertTrue(data["fields"]["type"]["has_more"])
        self.assertEqual(data["fields"]["type"]["distinct_count"], 3)
        self.fails("distinct_field_values", {"model": "res.partner", "fields": []}, "fields")
        self.fails("distinct_field_values", {"model": "res.partner", "fields": ["nope"]}, "unknown field")
        self.fails("distinct_field_values", {"model": "res.partner", "fields": ["child_ids"]}, "cannot group by")

    # -- fuzzy search ------------------------------------------------------------------------

    def test_fuzzy_search(self):
        data = self.ok("fuzzy_search", {"model": "res.partner", "query": "Acme Corp", "domain": self.domain})
        results = data["results"]
        self.assertEqual(results[0]["id"], self.partners[0].id)
        self.assertGreaterEqual(results[0]["score"], 0.6)
        self.assertEqual(results[0]["field"], "name")
        self.assertEqual([r["score"] for r in results], sorted((r["score"] for r in results), reverse=True))
        # typo and accent tolerant
        data = self.ok("fuzzy_search", {"model": "res.partner", "query": "zeta holdngs", "domain": self.domain})
        self.assertEqual(data["results"][0]["display_name"], "Zeta Holdings")
        data = self.ok(
            "fuzzy_search",
            {"model": "res.partner", "query": "Zeta Logistics", "domain": self.domain, "min_score": 0.95},
        )
        self.assertEqual([r["display_name"] for r in data["results"]], ["Zéta Logistics"])
        # multi-field matching and limits
        self.partners[4].email = "contact@omega-partners.example"
        data = self.ok(
            "fuzzy_search",
            {
                "model": "res.partner",
                "query": "omega-partners.example",
                "search_fields": ["name", "email"],
                "domain": self.domain,
                "limit": 1,
            },
        )
        self.assertEqual(data["count"], 1)
        self.assertEqual((data["results"][0]["id"], data["results"][0]["field"]), (self.partners[4].id, "email"))
        data = self.ok("fuzzy_search", {"model": "res.partner", "query": "qqqqqq", "domain": self.domain})
        self.assertEqual(data["results"], [])
        self.fails("fuzzy_search", {"model": "res.partner", "query": "x", "search_fields": ["color"]}, "not text")
        self.fails("fuzzy_search", {"model": "res.partner", "query": "x", "search_fields": ["nope"]}, "unknown field")
        self.fails("fuzzy_search", {"model": "res.partner", "query": "x", "min_score": 2}, "min_score")
        self.fails("fuzzy_search", {"model": "res.partner", "query": ""}, "query")
        self.fails("fuzzy_search", {"model": "res.partner", "query": "!!!"}, "no letters or digits")

    def test_similarity(self):
        self.assertEqual(similarity("acme", "acme"), 1.0)
        self.assertGreater(similarity("acme corp", "acme corporation"), similarity("acme corp", "acne studios"))
        self.assertEqual(similarity("", "x"), 0.0)

    def test_search_tools_are_read_only(self):
        ro_key, _s = self.keys._ocore_create_key("ro search", self.admin, read_only=True)
        self.ok(
            "aggregation",
            {"model": "res.partner", "domain": self.domain, "groupby": ["type"]},
            key=ro_key,
            write_enabled=False,
        )
        self.ok("fuzzy_search", {"model": "res.partner", "query": "acme"}, key=ro_key, write_enabled=False)
