from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..lib import compat


class McpAuditLog(models.Model):
    """One row per MCP tool call and per session event. Written by the audit
    writer only (with sudo); nobody edits or deletes rows from the UI.

    Every call inserts a row and then updates its outcome: the columns that update changes (status,
    success, refusal_reason, ...) carry no index, so that PostgreSQL can update the row in place
    (a HOT update) instead of adding an entry to every index of the table on each call."""

    _name = "ocore.mcp.audit.log"
    _table = "mcp_audit_log"
    _description = "MCP Audit Log"
    _order = "id desc"
    _rec_name = "tool_name"

    event = fields.Selection(
        [
            ("call", "Tool call"),
            ("session_start", "Session started"),
            ("session_end", "Session ended"),
            ("denied", "Refused"),
            ("prompt", "Prompt"),
            ("resource", "Resource read"),
        ],
        required=True,
        default="call",
    )
    tool_name = fields.Char(index=True, help="Name as the client saw it (with the instance prefix).")
    tool = fields.Char(help="Tool name without prefix")
    category = fields.Char()
    params = fields.Text(help="Input parameters, sensitive values redacted.")
    result_summary = fields.Text(help="First 500 characters of the result.")
    status = fields.Selection(
        [("running", "Running"), ("success", "Success"), ("error", "Error"), ("refused", "Refused"),
         ("interrupted", "Interrupted")],
    )
    success = fields.Boolean()
    error_message = fields.Text()
    refusal_reason = fields.Char(
        string="Reason",
        help="Refused: the policy's reason (invalid_input, permission…). Error: what ended the call, when known "
             "(timeout, cancelled, database_unavailable).")
    # grouped rows show the average latency, not a meaningless sum
    latency_ms = fields.Integer(string="Latency (ms)", **compat.aggregator_kwargs("avg"))
    session_id = fields.Char(index=True)
    request_id = fields.Char()
    key_id = fields.Many2one("ocore.mcp.key", ondelete="set null", index=True)
    user_id = fields.Many2one("res.users", ondelete="set null", index=True)
    company_id = fields.Many2one("res.company", ondelete="set null")
    ip_address = fields.Char()
    client_name = fields.Char()
    protocol_version = fields.Char()
    transport = fields.Char()
    dry_run = fields.Boolean()
    confirmation = fields.Char(
        string="Human confirmation",
        help="How a human answered for a destructive call: accepted / declined / cancelled (elicitation), or the "
             "approval that let it run (models/mcp_approval.py).")
    admin_only_output = fields.Boolean(
        string="Administrators' output", readonly=True,
        help="The result repeats what an administrators' tool returned (e.g. an administrator listing "
             "bookmarks of SQL calls): set by the tool (service/audit.mark_admin_only_output).",
    )
    admin_only_tool = fields.Boolean(
        string="Administrators' tool", compute="_compute_admin_only_tool", search="_search_admin_only_tool",
        help="A call of a tool offered to system administrators only (SQL, shell, files, modules, system), of "
             "a tool no longer installed, or whose result repeats such a tool's output: the row may hold what "
             "only they may read, it is shown to system administrators only.",
    )

    @api.model
    def _ocore_open_tools(self):
        """Names of the installed tools every MCP user may be offered (not admin_only)."""
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        return sorted(name for name, spec in specs.items() if not spec.meta.admin_only)

    @api.depends("event", "tool", "admin_only_output")
    def _compute_admin_only_tool(self):
        names = set(self._ocore_open_tools())
        for row in self:
            row.admin_only_tool = (row.event == "call" and bool(row.tool) and row.tool not in names) \
                or row.admin_only_output

    def _search_admin_only_tool(self, operator, value):
        wanted = compat.boolean_search_values(operator, value)
        if wanted is None:
            raise UserError(_("Search on 'Administrators' tool' with = True or = False only."))
        names = self._ocore_open_tools()
        # fail closed: a tool call of a tool unknown here counts as an administrators' tool (other events,
        # e.g. prompts, name no tool)
        if wanted == {True}:
            return ["|", "&", "&", ("event", "=", "call"), ("tool", "!=", False), ("tool", "not in", names),
                    ("admin_only_output", "=", True)]
        if wanted == {False}:
            return ["&", "|", "|", ("event", "!=", "call"), ("tool", "=", False), ("tool", "in", names),
                    ("admin_only_output", "=", False)]
        return [(1, "=", 1)] if wanted else [(0, "=", 1)]

    @api.autovacuum
    def _gc_interrupted(self):
        """A call still 'running' long after any timeout died with its worker."""
        self.env.cr.execute(
            """UPDATE mcp_audit_log SET status = 'interrupted', success = false,
                      error_message = 'The worker serving this call stopped before it finished.'
                WHERE status = 'running' AND create_date < (now() at time zone 'UTC') - interval '1 hour'"""
        )

    @api.model
    def _ocore_purge(self):
        """Delete rows older than the retention (system parameter ocore_mcp.audit_retention_days, default 90)."""
        days = int(self.env["ir.config_parameter"].sudo().get_param("ocore_mcp.audit_retention_days", 90))
        if days > 0:
            self.env.cr.execute(
                "DELETE FROM mcp_audit_log WHERE create_date < (now() at time zone 'UTC') - make_interval(days => %s)",
                (days,),
            )


class McpAuditStats(models.Model):
    """Usage statistics of the audit log per tool and hour: calls, errors, refusals, average latency and its
    50th/90th percentiles (PostgreSQL's percentile_cont over the hour's calls). A SQL view: it reads the
    audit log without its record rules, so only system administrators may read it."""

    _name = "ocore.mcp.audit.stats"
    _description = "MCP usage statistics"
    _auto = False
    _order = "period desc, tool_name"

    period = fields.Datetime(string="Hour", readonly=True)
    tool_name = fields.Char(string="Tool", readonly=True)
    category = fields.Char(readonly=True)
    calls = fields.Integer(readonly=True)
    errors = fields.Integer(readonly=True)
    refused = fields.Integer(readonly=True)
    latency_avg = fields.Float(string="Average latency (ms)", readonly=True, **compat.aggregator_kwargs("avg"))
    # a percentile of several hours is not the largest of theirs: grouped rows show the largest (worst) one
    latency_p50 = fields.Float(string="p50 latency (ms)", readonly=True, **compat.aggregator_kwargs("max"))
    latency_p90 = fields.Float(string="p90 latency (ms)", readonly=True, **compat.aggregator_kwargs("max"))

    def init(self):
        self.env.cr.execute("""
            CREATE OR REPLACE VIEW ocore_mcp_audit_stats AS (
                SELECT min(l.id) AS id,
                       date_trunc('hour', l.create_date) AS period,
                       l.tool_name AS tool_name,
                       l.category AS category,
                       count(*) AS calls,
                       count(*) FILTER (WHERE l.status = 'error') AS errors,
                       count(*) FILTER (WHERE l.status = 'refused') AS refused,
                       avg(l.latency_ms)::float AS latency_avg,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY l.latency_ms) AS latency_p50,
                       percentile_cont(0.9) WITHIN GROUP (ORDER BY l.latency_ms) AS latency_p90
                  FROM mcp_audit_log l
                 WHERE l.event IN ('call', 'prompt')
                 GROUP BY date_trunc('hour', l.create_date), l.tool_name, l.category
            )""")
