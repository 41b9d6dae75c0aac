import json
import secrets

from odoo import api, fields, models

from ..lib import compat
from ..service import audit
from ..service.context import Connection
from ..service.notify import hub


# what every request of a session reads: fetched with the session's lookup (one query)
SESSION_FIELDS = ["session_id", "key_id", "transport", "protocol_version", "client_name", "client_version",
                  "client_capabilities", "instances_filter", "categories_filter", "log_level", "ended_at", "last_seen"]


@compat.table_constraints(("session_id_unique", "unique(session_id)", "Session ids are unique."))
class McpSession(models.Model):
    """An MCP session (handshake revisions). Kept in the database, not in
    process memory, so that any Odoo worker can serve any request of it."""

    _name = "ocore.mcp.session"
    _description = "MCP Session"
    _order = "id desc"
    _rec_name = "session_id"

    session_id = fields.Char(required=True, index=True, readonly=True, copy=False)
    key_id = fields.Many2one("ocore.mcp.key", required=True, ondelete="cascade", index=True, readonly=True)
    user_id = fields.Many2one(related="key_id.user_id", store=True, index=True)
    transport = fields.Selection(
        [("stream", "Streamable HTTP"), ("sse", "Legacy SSE")], required=True, readonly=True
    )
    protocol_version = fields.Char(readonly=True)
    client_name = fields.Char(readonly=True)
    client_version = fields.Char(readonly=True)
    client_capabilities = fields.Text(readonly=True)
    instances_filter = fields.Char(readonly=True, help="?instances= of the connection URL")
    categories_filter = fields.Char(readonly=True, help="?categories= of the connection URL")
    log_level = fields.Char(readonly=True)
    ip_address = fields.Char(readonly=True)
    last_seen = fields.Datetime(readonly=True)
    ended_at = fields.Datetime(readonly=True)
    end_reason = fields.Char(readonly=True)
    state = fields.Selection([("open", "Open"), ("ended", "Ended")], compute="_compute_state", store=True)

    @api.depends("ended_at")
    def _compute_state(self):
        for session in self:
            session.state = "ended" if session.ended_at else "open"

    @api.model
    def _ocore_open(self, key_id, transport, ip, instances=None, categories=None, wait_for_flush=True, cr=None,
                    before=None, condition=None, **vals):
        """Open a session: one INSERT (a handshake is on the clients' critical path; the ORM's create
        would add default, related and compute queries), whose RETURNING fills the record's cache: the
        request reads the new session without a query. ``vals``: more stored columns of this model.
        ``wait_for_flush=False``: the transaction commits without waiting for the WAL flush (``SET LOCAL
        synchronous_commit TO OFF`` sent with the INSERT, no round trip of its own). ``cr``: the cursor to
        run it on (default the environment's); ``before`` ((sql, params)): statements sent ahead of it in the
        same round trip; ``condition`` ((sql, params)): inserted only when it holds (else an empty recordset)."""
        values = {
            "session_id": secrets.token_urlsafe(24),
            "key_id": key_id,
            "transport": transport,
            "ip_address": ip,
            "instances_filter": ",".join(instances) if instances else None,
            "categories_filter": ",".join(categories) if categories else None,
            "state": "open",
            **{name: (None if value is False else value) for name, value in vals.items()},
        }
        unknown = [name for name in values if not (name in self._fields and self._fields[name].column_type)]
        if unknown:
            raise ValueError(f"not columns of {self._name}: {unknown}")
        columns = ", ".join(f'"{name}"' for name in values)
        self.env["ocore.mcp.key"].flush_model(["user_id"])  # the INSERT reads the key's owner
        cr = cr or self.env.cr
        before, condition = before or ("", ()), condition or ("", ())
        cr.execute(
            f"""{"" if wait_for_flush else "SET LOCAL synchronous_commit TO OFF;"} {before[0]}
                INSERT INTO ocore_mcp_session ({columns}, user_id, last_seen, create_uid, write_uid, create_date,
                                                write_date)
                SELECT {", ".join(["%s"] * len(values))}, k.user_id, now() at time zone 'UTC', %s, %s,
                       now() at time zone 'UTC', now() at time zone 'UTC'
                  FROM ocore_mcp_key k WHERE k.id = %s {"AND " + condition[0] if condition[0] else ""}
             RETURNING id, user_id, last_seen""",  # noqa: S608 - column names checked against the model's fields above
            [*before[1], *values.values(), self.env.uid, self.env.uid, key_id, *condition[1]],
        )
        row = cr.fetchone()
        if row is None:
            return self.browse()
        session_pk, user_id, last_seen = row
        return self._ocore_from_values(session_pk, {
            **{name: False for name in SESSION_FIELDS}, **values, "user_id": user_id, "last_seen": last_seen,
        })

    @api.model
    def _ocore_from_values(self, session_pk, values):
        """The session ``session_pk`` of this environment with ``values`` (``_ocore_values``, or what was
        just inserted) in its cache: read without a query (a call's thread, with a cursor of its own, gets
        the session the request fetched)."""
        session = self.sudo().browse(session_pk)
        session._update_cache({name: (False if value is None else value) for name, value in values.items()
                               if name in self._fields}, validate=False)
        return session

    def _ocore_values(self):
        """The fields every request of the session reads (``SESSION_FIELDS``), as plain values."""
        self.ensure_one()
        return {name: self._fields[name].convert_to_write(self[name], self) for name in SESSION_FIELDS}

    @api.model
    def _ocore_get(self, session_id):
        if not session_id:
            return self.sudo().browse()
        # every request of a session reads these: fetched by one plain query into the record's cache (the
        # ORM's search_fetch would build the same query through the domain machinery on every request)
        self.flush_model(SESSION_FIELDS)  # nothing to send, unless this transaction changed a session
        self.env.cr.execute(
            f"SELECT id, {', '.join(SESSION_FIELDS)} FROM ocore_mcp_session WHERE session_id = %s LIMIT 1",  # noqa: S608
            (session_id,),
        )
        row = self.env.cr.fetchone()
        if not row:
            return self.sudo().browse()
        return self._ocore_from_values(row[0], dict(zip(SESSION_FIELDS, row[1:], strict=True)))

    def _ocore_end(self, reason):
        todo = self.sudo().filtered(lambda s: not s.ended_at)
        if todo:
            todo.write({"ended_at": fields.Datetime.now(), "end_reason": reason})
        return todo

    def _ocore_end_logged(self, reason, notify=True):
        """End the open ones of these sessions, log each end in the audit (the stream's own clean-up then
        finds its session already ended) and, with ``notify``, close their streams now (any worker)."""
        ended = self._ocore_end(reason)
        for session in ended:
            if notify:
                hub.publish(self.env.cr, session.session_id, {"t": "close", "why": reason})
            conn = Connection(key=session.key_id.sudo(), scope={}, settings={}, transport=session.transport,
                              session=session, protocol_version=session.protocol_version,
                              client_name=session.client_name, ip=session.ip_address)
            audit.event(self.env.cr, conn, "session_end", status="success", success=True, result_summary=reason)
        return ended

    def _ocore_capabilities(self):
        try:
            return json.loads(self.client_capabilities or "{}")
        except ValueError:
            return {}

    @api.autovacuum
    def _gc_ended_sessions(self):
        limit = fields.Datetime.subtract(fields.Datetime.now(), days=30)
        self.sudo().search([("ended_at", "<", limit)]).unlink()
        stale = fields.Datetime.subtract(fields.Datetime.now(), days=2)
        self.sudo().search([("ended_at", "=", False), ("last_seen", "<", stale)])._ocore_end("idle")
