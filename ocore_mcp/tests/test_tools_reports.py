import base64
import contextlib
import io
import os
import shutil
import stat
import tempfile
import time
from unittest.mock import patch

from odoo.addons.base.models import ir_actions_report
from odoo.tests import tagged
from odoo.tools.pdf import PdfFileReader

from ..lib import compat
from ..tools import reports as reports_mod
from .common import McpToolCase

REPORT = "base.report_ir_model_overview"


@tagged("post_install", "-at_install")
class TestReportTools(McpToolCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.models = cls.env["ir.model"].search([("model", "in", ["res.partner", "res.country"])], order="model")
        # Inside a TransactionCase the test server cannot serve the report's stylesheets while the test
        # waits for wkhtmltopdf: point it at a closed port (the PDF is then made without stylesheets;
        # the end-to-end tests render against a running server)
        cls.env["ir.config_parameter"].sudo().set_param("report.url", "http://127.0.0.1:9")

    def test_declaration(self):
        spec = self.env["ocore.mcp.toolset"]._ocore_tool_specs()["generate_report"]
        self.assertEqual((spec.category, spec.kind, spec.meta.min_timeout), ("reports", "read", 60))

    def test_html_report_contains_the_records(self):
        data = self.ok("generate_report", {"report": REPORT, "record_ids": self.models.ids, "format": "html"})
        html = base64.b64decode(data["data_base64"]).decode()
        self.assertEqual((data["format"], data["mimetype"]), ("html", "text/html"))
        for name in ("res.partner", "res.country"):
            self.assertIn(name, html)
        self.assertEqual(data["report"]["model"], "ir.model")
        # the report can be named by its report_name or its name too
        action = self.env.ref(REPORT)
        for ref in (action.report_name, action.name):
            self.assertEqual(self.ok("generate_report", {"report": ref, "record_ids": self.models.ids[:1],
                                                         "format": "html"})["report"]["id"], action.id)

    def test_pdf_report(self):
        data = self.ok("generate_report", {"report": REPORT, "record_ids": self.models.ids})
        content = base64.b64decode(data["data_base64"])
        self.assertTrue(content.startswith(b"%PDF-"))
        self.assertEqual((data["format"], data["mimetype"], data["size"]), ("pdf", "application/pdf", len(content)))
        self.assertTrue(data["wkhtmltopdf"])
        pages = len(PdfFileReader(io.BytesIO(content)).pages)
        self.assertGreaterEqual(pages, len(self.models))
        single = self.ok("generate_report", {"report": REPORT, "record_ids": self.models.ids[:1]})
        self.assertFalse(single["rendered_per_record"])
        self.assertLess(len(PdfFileReader(io.BytesIO(base64.b64decode(single["data_base64"]))).pages), pages + 1)

    @contextlib.contextmanager
    def wkhtmltopdf_from(self, directory, only=False):
        """Odoo runs the wkhtmltopdf of ``directory`` (first on PATH, or alone with ``only``): 17.0 and 18.0
        look it up on PATH at each run, 19.0 at start (``_wkhtml()``, cached): its cached path is moved."""
        path = directory if only else directory + os.pathsep + os.environ.get("PATH", "")
        with patch.dict(os.environ, {"PATH": path}), contextlib.ExitStack() as stack:
            info = getattr(ir_actions_report, "_wkhtml", None)
            if info is not None:  # 19.0
                fake = os.path.join(directory, "wkhtmltopdf")
                bin_path = fake if only or os.path.exists(fake) else info().bin
                stack.enter_context(patch.object(ir_actions_report, "_wkhtml", lambda: info()._replace(bin=bin_path)))
            yield

    def test_hung_wkhtmltopdf_is_killed_at_the_timeout(self):
        empty = tempfile.mkdtemp(prefix="ocore_sys_path_")
        self.addCleanup(shutil.rmtree, empty, True)
        fake = os.path.join(empty, "wkhtmltopdf")
        with open(fake, "w") as fh:
            fh.write("#!/usr/bin/python3\nimport sys, time\nif sys.argv[1:2] == ['--version']:\n"
                     "    print('wkhtmltopdf 0.12.6')\n    sys.exit(0)\ntime.sleep(600)\n")
        os.chmod(fake, stat.S_IRWXU)
        started = time.monotonic()
        with self.wkhtmltopdf_from(empty):
            self.fails("generate_report", {"report": REPORT, "record_ids": self.models.ids[:1], "timeout_seconds": 5},
                       "timeout")
        self.assertLess(time.monotonic() - started, 90)  # the report tools' minimum timeout is 60 s

    def test_record_limits(self):
        many = self.env["ir.model"].search([], limit=51).ids
        self.fails("generate_report", {"report": REPORT, "record_ids": many[:11]}, "max 10 for format=pdf")
        self.fails("generate_report", {"report": REPORT, "record_ids": many, "format": "html"}, "max 50")
        data = self.ok("generate_report", {"report": REPORT, "record_ids": many[:12], "format": "html"})
        self.assertEqual(len(data["record_ids"]), 12)

    def test_output_limits(self):
        with patch.object(reports_mod, "MAX_OUTPUT_BYTES", 1000):
            self.fails("generate_report", {"report": REPORT, "record_ids": self.models.ids, "format": "html"},
                       "MB limit; print fewer records")
        self.fails("generate_report", {"report": REPORT, "record_ids": self.models.ids, "format": "html",
                                       "max_response_size": 1}, "larger max_response_size")

    def test_refusals(self):
        self.fails("generate_report", {"report": "base.no_such_report", "record_ids": [1]}, "no report")
        self.fails("generate_report", {"report": REPORT, "record_ids": [99999999], "format": "html"},
                   "no ir.model record")
        self.fails("generate_report", {"report": REPORT, "record_ids": []}, "at least 1 item")
        self.fails("generate_report", {"report": REPORT, "record_ids": self.models.ids, "format": "docx"},
                   "invalid input")
        limited, _s = self.keys._ocore_create_key("limited", self.admin, rate_limit=100000,
                                                  model_ids=[(6, 0, [self.env.ref("base.model_res_country").id])])
        self.fails("generate_report", {"report": REPORT, "record_ids": self.models.ids, "format": "html"},
                   "model allowlist", key=limited)
        employee = self.make_user("rep_employee", [self.env.ref("base.group_user").id,
                                                   self.env.ref("ocore_mcp.group_mcp_user").id])
        emp_key, _s = self.keys._ocore_create_key("emp", employee, rate_limit=100000)
        self.fails("generate_report", {"report": REPORT, "record_ids": self.models.ids, "format": "html"},
                   "permission denied", key=emp_key)
        # a report restricted to groups the key owner lacks
        restricted = self.env["res.groups"].create({"name": "MCP report readers"})
        self.assertNotIn(restricted, compat.user_all_groups(self.admin))
        report = self.env.ref(REPORT)
        report[compat.report_groups_field(report)] = restricted
        self.fails("generate_report", {"report": REPORT, "record_ids": self.models.ids, "format": "html"},
                   "is restricted to the groups")

    def test_wkhtmltopdf_precheck(self):
        args = {"report": REPORT, "record_ids": self.models.ids[:1]}
        with patch.object(type(self.env["ir.actions.report"]), "get_wkhtmltopdf_state", lambda self: "install"):
            text = self.fails("generate_report", args, "wkhtmltopdf is not installed")
            self.assertIn("format='html' still works", text)
            self.ok("generate_report", dict(args, format="html"))
        # the binary vanished after Odoo started: the live check sees it
        empty = tempfile.mkdtemp(prefix="ocore_sys_path_")
        self.addCleanup(shutil.rmtree, empty, True)
        with self.wkhtmltopdf_from(empty, only=True):
            self.fails("generate_report", args, "wkhtmltopdf does not run")
        # a binary that does not work
        fake = os.path.join(empty, "wkhtmltopdf")
        with open(fake, "w") as fh:
            fh.write("#!/bin/sh\nexit 3\n")
        os.chmod(fake, stat.S_IRWXU)
        with self.wkhtmltopdf_from(empty):
            self.fails("generate_report", args, "wkhtmltopdf is broken")
