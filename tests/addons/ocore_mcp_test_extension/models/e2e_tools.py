"""Tools of the end-to-end test fixture.

``ocore.mcp.tools.e2e_echo`` is a new tool family added by a third-party
addon (one tool). ``ocore.mcp.tools.e2e_fixtures`` holds the slow and failing
tools the policy tests need (timeouts, progress, cancellation, savepoint
rollback, dry run, destructive confirmation).
"""

import time

from odoo import models
from odoo.exceptions import UserError

from odoo.addons.ocore_mcp.lib.tooling import mcp_tool


class E2eEchoTools(models.AbstractModel):
    _name = "ocore.mcp.tools.e2e_echo"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: end-to-end test echo"

    @mcp_tool("orm", kind="read", model_args=())
    def _tool_e2e_echo(self, text: str, password: str | None = None, options: dict | None = None) -> dict:
        """Echo a text back with who and where the call ran (test fixture).

        Args:
            text: Any text; returned unchanged.
            password: A secret-looking argument (never echoed; the audit log must redact it).
            options: Free-form object (nested secrets inside must be redacted in the audit log).
        """
        return {
            "text": text,
            "got_password": bool(password),
            "option_keys": sorted(options or {}),
            "uid": self.env.uid,
            "login": self.env.user.login,
            "company_id": self.env.company.id,
            "lang": self.env.context.get("lang"),
            "tz": self.env.context.get("tz"),
        }


class E2eFixtureTools(models.AbstractModel):
    _name = "ocore.mcp.tools.e2e_fixtures"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: end-to-end test fixtures"

    @mcp_tool("orm", kind="read", model_args=())
    def _tool_e2e_sleep(self, seconds: float, steps: int = 1) -> dict:
        """Sleep in small steps, reporting progress after each step (test fixture).

        Args:
            seconds: Total time to sleep.
            steps: Number of progress notifications to send.
        """
        call = self._call()
        steps = max(1, steps)
        started = time.monotonic()
        for i in range(1, steps + 1):
            end = started + seconds * i / steps
            while time.monotonic() < end:
                time.sleep(min(0.05, max(0.0, end - time.monotonic())))
            call.progress(i, steps, f"step {i}/{steps}")
        return {"slept": round(time.monotonic() - started, 3), "steps": steps}

    @mcp_tool("orm", kind="read", model_args=())
    def _tool_e2e_busy_loop(self, seconds: float) -> dict:
        """Spin in pure Python (no I/O, no sleep) until the wall clock passes (test fixture).

        Args:
            seconds: How long to spin.
        """
        started = time.monotonic()
        end = started + seconds
        iterations = 0
        while time.monotonic() < end:
            iterations += 1
        return {"spun": round(time.monotonic() - started, 3), "iterations": iterations}

    @mcp_tool("orm", kind="read", model_args=())
    def _tool_e2e_pg_sleep(self, seconds: float) -> dict:
        """Run SELECT pg_sleep(seconds) in the database (test fixture).

        Args:
            seconds: Seconds PostgreSQL sleeps.
        """
        started = time.monotonic()
        self.env.cr.execute("SELECT pg_sleep(%s)", (seconds,))
        return {"slept": round(time.monotonic() - started, 3)}

    @mcp_tool("orm", kind="write", model_args=())
    def _tool_e2e_create_partner(self, name: str, fail: bool = False) -> dict:
        """Create a partner; with fail=true raise an error after creating it (test fixture).

        Args:
            name: Name of the partner to create.
            fail: Raise a UserError after the partner was created (the savepoint must undo it).
        """
        partner = self.env["res.partner"].create({"name": name})
        self.env.flush_all()
        if fail:
            raise UserError(f"e2e: failing after creating partner {partner.id}")
        return {"id": partner.id, "name": partner.name}

    @mcp_tool("orm", kind="destructive", model_args=())
    def _tool_e2e_delete_partner(self, partner_id: int) -> dict:
        """Delete one partner (destructive; test fixture).

        Args:
            partner_id: Id of the partner to delete.
        """
        partner = self.env["res.partner"].browse(partner_id).exists()
        if not partner:
            raise UserError(f"e2e: no partner {partner_id}")
        partner.unlink()
        return {"deleted": partner_id}
