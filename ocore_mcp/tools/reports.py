"""Tool family "reports": render a QWeb report as PDF or HTML, as the key owner."""

import base64
import contextlib
import hashlib
import logging
import subprocess
import threading
import time
from typing import Annotated, Literal

from odoo import _, models
from odoo.exceptions import AccessError, UserError
from odoo.tools.pdf import merge_pdf
from pydantic import Field

from ..lib import compat
from ..lib.tooling import mcp_tool
from ..service.policy import Refusal

_logger = logging.getLogger(__name__)

MAX_RECORDS = {"pdf": 10, "html": 50}
MAX_OUTPUT_BYTES = 10 * 1024 * 1024  # of the base64 text
REPORT_KB = MAX_OUTPUT_BYTES // 1024 + 64
WKHTMLTOPDF_PROBLEMS = {
    "install": "wkhtmltopdf is not installed on the server (install it, e.g. apt-get install wkhtmltopdf, "
               "then restart Odoo)",
    "upgrade": "the server's wkhtmltopdf is too old (0.12.0 or newer is needed)",
    "workers": "Odoo runs with a single worker (--workers=1): it cannot print PDFs; use 0 or 2+ workers",
    "broken": "wkhtmltopdf is installed but does not run (it failed to report its version when Odoo started)",
}


@contextlib.contextmanager
def _kill_wkhtmltopdf_after(seconds):
    """Kill the wkhtmltopdf processes this process started from now on once ``seconds`` have passed."""
    import psutil

    me = psutil.Process()
    started = time.time() - 1
    killed = []

    def reap():
        for child in me.children():
            with contextlib.suppress(psutil.Error):
                if child.name().startswith("wkhtmlto") and child.create_time() >= started:
                    _logger.warning("killing wkhtmltopdf (pid %s): the report call reached its timeout", child.pid)
                    child.kill()
                    killed.append(child.pid)

    timer = threading.Timer(max(1.0, seconds), reap)
    timer.daemon = True
    timer.start()
    try:
        yield killed
    finally:
        timer.cancel()


class ReportTools(models.AbstractModel):
    _name = "ocore.mcp.tools.reports"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: reports"

    def _ocore_find_report(self, report):
        Reports = self.env["ir.actions.report"]
        found = Reports.browse()
        if isinstance(report, int) or (isinstance(report, str) and report.isdigit()):
            found = Reports.search([("id", "=", int(report))])
        elif report:
            found = Reports.search([("report_name", "=", report)], limit=1)
            if not found and "." in report:
                ref = self.env.ref(report, raise_if_not_found=False)
                found = ref if ref is not None and ref._name == "ir.actions.report" else Reports.browse()
            if not found:
                found = Reports.search([("name", "=ilike", report)], limit=2)
                if len(found) > 1:
                    raise Refusal("invalid_input", f"report: several reports are named {report!r}; use the XML id or "
                                  "report_name")
        if not found:
            raise Refusal("not_found", f"report: no report {report!r} (give its XML id, report_name or name)")
        return found

    def _ocore_wkhtmltopdf_check(self):
        """Odoo's start-up state of wkhtmltopdf, then a live run of ``wkhtmltopdf --version``."""
        Reports = self.env["ir.actions.report"]
        state = Reports.get_wkhtmltopdf_state()
        if state != "ok":
            raise Refusal("unavailable", f"cannot render PDF: {WKHTMLTOPDF_PROBLEMS.get(state, state)}. "
                          "format='html' still works.")
        try:
            proc = subprocess.run([compat.wkhtmltopdf_bin(), "--version"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:  # not found on PATH, not executable, hanging
            raise Refusal("unavailable", f"cannot render PDF: wkhtmltopdf does not run ({exc}). format='html' still "
                          "works.") from None
        if proc.returncode != 0:
            raise Refusal("unavailable", "cannot render PDF: wkhtmltopdf is broken (`wkhtmltopdf --version` exited "
                          f"with {proc.returncode}). format='html' still works.")
        return proc.stdout.decode(errors="replace").strip()

    def _ocore_render_pdf(self, renderer, action, ids):
        """The PDF, with every wkhtmltopdf run of this call killed at the call's deadline (Odoo waits
        for it without a timeout, which the call's deadline cannot interrupt)."""
        call = self._call()
        seconds = call.deadline.remaining() - 1 if call is not None and call.deadline is not None else 300
        with _kill_wkhtmltopdf_after(seconds) as killed:
            try:
                return self._ocore_render_pdf_runs(renderer, action, ids)
            except Exception:
                if killed:
                    limit = call.timeout if call is not None else "?"
                    raise Refusal("timeout", f"wkhtmltopdf did not finish within timeout_seconds={limit} and was "
                                  "stopped; print fewer records or raise timeout_seconds") from None
                raise

    def _ocore_render_pdf_runs(self, renderer, action, ids):
        """Render the PDF in one wkhtmltopdf run; when that fails for several records, render them one
        by one and merge the files (builds of wkhtmltopdf without the patched Qt, such as the
        distributions' packages, cannot take several documents in one run)."""
        try:
            with self.env.cr.savepoint():
                content, kind = renderer._render_qweb_pdf(action.id, ids)
            return content, kind, False
        except (UserError, AccessError):
            if len(ids) == 1:
                raise
        except Exception:
            if len(ids) == 1:
                raise
        _logger.info("rendering %s for %d records in one run failed; rendering them one by one",
                     action.report_name, len(ids))
        parts = [renderer._render_qweb_pdf(action.id, [record_id])[0] for record_id in ids]
        return merge_pdf(parts), "pdf", True

    @mcp_tool("reports", min_timeout=60, min_response_kb=REPORT_KB, title="Print report")
    def _tool_generate_report(self, report: Annotated[str, Field(min_length=1, max_length=200)],
                              record_ids: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)],
                              format: Literal["pdf", "html"] = "pdf") -> dict:
        """Render a QWeb report: PDF (max 10 records) or HTML (max 50) as base64.

        Args:
            report: XML id, report_name or name.
        """
        action = self._ocore_find_report(report)
        records = self._data_model(action.model)
        ids = list(dict.fromkeys(record_ids))
        if len(ids) > MAX_RECORDS[format]:
            raise Refusal("limit_exceeded", f"record_ids: {len(ids)} records, max {MAX_RECORDS[format]} for "
                          f"format={format}")
        groups = action[compat.report_groups_field(action)]
        if groups and not (groups & compat.user_all_groups(self.env.user)):
            raise Refusal("protected", f"report {action.report_name!r} is restricted to the groups "
                          f"{', '.join(groups.mapped('full_name'))}")
        found = records.browse(ids).exists()
        missing = sorted(set(ids) - set(found.ids))
        if missing:
            raise Refusal("not_found", f"record_ids: no {action.model} record with id(s) {missing}")
        compat.check_access(found, "read")
        version = self._ocore_wkhtmltopdf_check() if format == "pdf" else None
        renderer = self.env["ir.actions.report"].with_context(force_report_rendering=True)
        per_record = False
        try:
            if format == "pdf":
                content, kind, per_record = self._ocore_render_pdf(renderer, action, ids)
            else:
                content, kind = renderer._render_qweb_html(action.id, ids)
        except (UserError, AccessError):
            raise
        except Exception as exc:  # wkhtmltopdf failures, template errors
            raise UserError(_(
                "rendering %(report)s failed: %(error_type)s: %(error)s",
                report=action.report_name, error_type=type(exc).__name__, error=exc,
            )) from exc
        if isinstance(content, str):
            content = content.encode()
        encoded = base64.b64encode(content).decode()
        if len(encoded) > MAX_OUTPUT_BYTES:
            raise Refusal("limit_exceeded", f"the {format.upper()} is {len(encoded) // 1024} KB as base64, over the "
                          f"{MAX_OUTPUT_BYTES // 1024 // 1024} MB limit; print fewer records")
        call = self._call()
        if call is not None and len(encoded) + 2048 > call.max_response_kb * 1024:
            raise Refusal("limit_exceeded", f"the {format.upper()} is {len(encoded) // 1024 + 1} KB as base64, over "
                          f"max_response_size={call.max_response_kb} KB; call again with a larger max_response_size")
        name = f"{action.name or action.report_name}.{kind if kind in ('pdf', 'html') else format}"
        return {
            "report": {"id": action.id, "name": action.name, "report_name": action.report_name, "model": action.model},
            "record_ids": ids,
            "format": kind,
            "mimetype": "application/pdf" if kind == "pdf" else "text/html",
            "filename": name,
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "wkhtmltopdf": version,
            "rendered_per_record": per_record,
            "data_base64": encoded,
        }
