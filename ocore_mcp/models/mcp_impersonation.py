import hashlib
import secrets
from datetime import timedelta

from odoo import api, fields, models

from ..lib import compat

IMPERSONATION_TTL_SECONDS = 300


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


@compat.table_constraints(("token_hash_unique", "unique(token_hash)", "An impersonation token must be unique."))
class McpImpersonation(models.Model):
    """A one-time login link made by the ``impersonate_user`` tool.

    Only the SHA-256 of the token is stored. The link works once, before it
    expires; its use is recorded here (time, address, browser) and in the MCP
    audit log, next to the tool call that made it.
    """

    _name = "ocore.mcp.impersonation"
    _description = "MCP Impersonation Link"
    _order = "id desc"
    _rec_name = "user_id"

    token_hash = fields.Char(required=True, index=True, readonly=True, copy=False, groups=fields.NO_ACCESS)
    user_id = fields.Many2one("res.users", string="Target user", required=True, ondelete="cascade", readonly=True)
    created_by_id = fields.Many2one("res.users", string="Issued by", required=True, ondelete="cascade",
                                    readonly=True)
    key_id = fields.Many2one("ocore.mcp.key", string="API key", ondelete="set null", readonly=True)
    audit_id = fields.Integer(string="Audit row", readonly=True, help="The MCP audit row of the call that made it.")
    expires_at = fields.Datetime(required=True, readonly=True)
    used_at = fields.Datetime(readonly=True)
    used_ip = fields.Char(readonly=True)
    used_user_agent = fields.Char(readonly=True)
    state = fields.Selection(
        [("pending", "Not used yet"), ("used", "Used"), ("expired", "Expired")], compute="_compute_state"
    )

    @api.depends("used_at", "expires_at")
    def _compute_state(self):
        now = fields.Datetime.now()
        for link in self:
            link.state = "used" if link.used_at else ("expired" if link.expires_at <= now else "pending")

    @api.model
    def _ocore_issue(self, user, created_by, key_id=None, audit_id=None, ttl=IMPERSONATION_TTL_SECONDS):
        """Create a link for ``user``; return ``(record, token)`` (the token is never stored)."""
        token = secrets.token_urlsafe(32)
        link = self.sudo().create({
            "token_hash": token_hash(token),
            "user_id": user.id,
            "created_by_id": created_by.id,
            "key_id": key_id or False,
            "audit_id": audit_id or 0,
            "expires_at": fields.Datetime.now() + timedelta(seconds=ttl),
        })
        return link, token

    @api.model
    def _ocore_consume(self, token, ip=None, user_agent=None):
        """Mark the link used, atomically across workers. Return ``(link, problem)``: ``problem`` is
        None when the link may log in now, else why not ("unknown", "used", "expired")."""
        digest = token_hash(token or "")
        # the clock that set expires_at (not now(): the transaction's start, which may be long past)
        now = fields.Datetime.now()
        self.env.cr.execute(
            """UPDATE ocore_mcp_impersonation
                  SET used_at = %s, used_ip = %s, used_user_agent = %s, write_date = %s
                WHERE token_hash = %s AND used_at IS NULL AND expires_at > %s
            RETURNING id""",
            (now, ip, (user_agent or "")[:500] or None, now, digest, now),
        )
        row = self.env.cr.fetchone()
        link = self.sudo().with_context(active_test=False).search([("token_hash", "=", digest)], limit=1)
        if row:
            link.invalidate_recordset()
            return link, None
        if not link:
            return link, "unknown"
        return link, "used" if link.used_at else "expired"

    @api.autovacuum
    def _gc_old_links(self):
        """Links are kept 90 days as a trace, then deleted."""
        self.env.cr.execute(
            "DELETE FROM ocore_mcp_impersonation WHERE expires_at < (now() at time zone 'UTC') - interval '90 days'"
        )


class McpAuditLogImpersonation(models.Model):
    _inherit = "ocore.mcp.audit.log"

    event = fields.Selection(selection_add=[("impersonation", "Impersonation login")],
                             ondelete={"impersonation": "cascade"})


class McpCronCooldown(models.AbstractModel):
    """When ``run_scheduled_action`` last started each scheduled action.

    One row per action in ``ocore_mcp_cron_trigger``; the check-and-set is a
    single ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` committed before the
    action runs, so the cooldown holds across workers and also after a failed run.
    """

    _name = "ocore.mcp.cron.cooldown"
    _description = "MCP Scheduled Action Cooldown"

    COOLDOWN_SECONDS = 60

    def init(self):
        self.env.cr.execute(
            """CREATE TABLE IF NOT EXISTS ocore_mcp_cron_trigger (
                   cron_id integer PRIMARY KEY,
                   triggered_at timestamp without time zone NOT NULL,
                   triggered_by integer)"""
        )

    @api.autovacuum
    def _gc_cron_triggers(self):
        """Rows are only needed for the cooldown: drop those older than a day."""
        self.env.cr.execute(
            "DELETE FROM ocore_mcp_cron_trigger WHERE triggered_at < (now() at time zone 'UTC') - interval '1 day'"
        )
