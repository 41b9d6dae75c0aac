from odoo import api, fields, models

from ..service import notify


class McpMessage(models.Model):
    """A payload that crossed processes through NOTIFY (service/notify.py: a legacy SSE message, a
    cancellation, a stream's close), kept so that a listener that reconnects replays what it missed.
    The hub writes and reads the rows with SQL; Odoo's autovacuum deletes them after
    ``notify.RETENTION_SECONDS`` (as the bus does with ``bus.bus``)."""

    _name = "ocore.mcp.message"
    _description = "MCP Cross-process Message"
    _auto = False  # the table is created by init() (a bigserial id, a database-side create_date default)
    _log_access = False
    _order = "id"

    session_id = fields.Char(readonly=True)
    kind = fields.Char(readonly=True)
    payload = fields.Text(readonly=True)
    create_date = fields.Datetime(readonly=True)

    def init(self):
        notify.ensure_table(self.env.cr)

    @api.autovacuum
    def _gc_messages(self):
        self.env.cr.execute(
            "DELETE FROM ocore_mcp_message WHERE create_date < (now() at time zone 'UTC') - make_interval(secs => %s)",
            (notify.RETENTION_SECONDS,),
        )
        return self.env.cr.rowcount
