import logging
import time

import psycopg2

from odoo import models
from odoo.exceptions import AccessError

from odoo.addons.ocore_mcp.lib.deadline import CallInterrupted, Deadline

_logger = logging.getLogger(__name__)

AUTO_CONTEXT_DEADLINE = 5.0  # seconds to load the knowledge of a tools/list
MODEL_SUMMARIES_MAX = 20
MODEL_EXCERPT = 150
INSTANCE_EXCERPT = 500
CONTEXT_KEY = "ocore_mcp_auto_context"


def excerpt(text, size):
    """``text`` on one line, cut to ``size`` characters with an ellipsis."""
    text = " ".join((text or "").split())
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


def sentence(text):
    return text if not text or text[-1] in ".!?…" else text + "."


class McpServer(models.AbstractModel):
    """Auto-context: for API keys with ``auto_context``, every instance tool's description starts with
    an "[Auto-context] …" summary of the Knowledge Layer (instance summary, model summaries, saved
    filter count). It is computed once per tools/list response, within a 5 s deadline."""

    _inherit = "ocore.mcp.server"

    def _ocore_tool_definitions(self, conn, chunk):
        server = self
        if (conn.scope or {}).get("auto_context") and any(not spec.meta.platform for _name, spec in chunk):
            prefix = self._ocore_auto_context(conn)
            if prefix:
                server = self.with_context(**{CONTEXT_KEY: prefix})
        return super(McpServer, server)._ocore_tool_definitions(conn, chunk)

    def _ocore_tool_description(self, spec, conn):
        description = super()._ocore_tool_description(spec, conn)
        prefix = self.env.context.get(CONTEXT_KEY)
        if prefix and not spec.meta.platform:  # instance tools only, not the ocore_ platform tools
            return f"{prefix}\n\n{description}"
        return description

    def _ocore_auto_context(self, conn):
        """The "[Auto-context] …" prefix for this connection's key, or None: no knowledge, or not loaded
        within AUTO_CONTEXT_DEADLINE (statement_timeout for the queries, a wall-clock deadline for the rest)."""
        cr = self.env.cr
        started = time.monotonic()
        cr.execute("SHOW statement_timeout")
        previous = cr.fetchone()[0]
        try:
            with cr.savepoint(flush=False):
                cr.execute("SET LOCAL statement_timeout = %s", (f"{int(AUTO_CONTEXT_DEADLINE * 1000)}ms",))
                with Deadline(AUTO_CONTEXT_DEADLINE):
                    data = self._ocore_auto_context_data(self._ocore_tool_env(conn, None))
                cr.execute("SET LOCAL statement_timeout = %s", (previous,))
        except (CallInterrupted, psycopg2.errors.QueryCanceled):
            _logger.warning(
                "auto-context of MCP key %s not loaded within %ss (%.1fs): tool descriptions sent without it",
                conn.key.id, AUTO_CONTEXT_DEADLINE, time.monotonic() - started,
            )
            return None
        except AccessError as exc:
            _logger.info("auto-context of MCP key %s skipped: its owner may not read the knowledge (%s)",
                         conn.key.id, exc)
            return None
        return self._ocore_auto_context_text(conn, data)

    def _ocore_auto_context_data(self, env):
        """The knowledge auto-context shows, read as the key owner in the key's company."""
        notes = env["ocore.mcp.note"]
        base = [("company_id", "=", env.company.id), ("is_summary", "=", True)]
        instance = notes.search([*base, ("target_type", "=", "instance")], limit=1, order="write_date desc, id desc")
        model_notes = notes.search([*base, ("target_type", "=", "model")], limit=MODEL_SUMMARIES_MAX,
                                   order="write_date desc, id desc")
        return {
            "instance": (instance.body or instance.title) if instance else None,
            "models": sorted((n.target_model, n.body or n.title) for n in model_notes),
            "filters": env["ocore.mcp.saved.filter"].search_count([("company_id", "=", env.company.id)]),
        }

    def _ocore_auto_context_text(self, conn, data):
        lines = []
        if data["instance"]:
            lines.append(f"Instance context: {sentence(excerpt(data['instance'], INSTANCE_EXCERPT))}")
        if data["models"]:
            items = "; ".join(f"{model}: {excerpt(text, MODEL_EXCERPT).rstrip('.')}" for model, text in data["models"])
            lines.append(f"Model summaries: {sentence(items)}")
        if not lines and not data["filters"]:
            return None
        get_context = f"{conn.settings['slug']}_get_context"
        count = data["filters"]
        if count:
            plural = "s" if count != 1 else ""
            lines.append(f"{count} saved filter{plural} available -- call {get_context} for details.")
        else:
            lines.append(f"Call {get_context} for details.")
        return "[Auto-context] " + "\n".join(lines)
