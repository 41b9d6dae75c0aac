"""Resource subscriptions (``resources/subscribe``, ``subscriptions/listen``) and change push.

A subscription is a row of ``ocore_mcp_subscription`` naming the stream it is delivered on (``channel``: the
session id of a handshake session, whose stream is its legacy SSE stream or its Streamable HTTP GET
stream; a token of its own for a 2026-07-28 ``subscriptions/listen`` stream) and, for a record, its table
and id. Rows live in the database so that any worker may add one while another holds the stream.

Change detection costs nothing on tables nobody subscribed to: the first subscription to a record of a table
installs two row triggers on that table (``AFTER UPDATE``, ``AFTER DELETE``) whose function looks the row up
in the subscriptions' index and, when someone subscribed to it, sends ``NOTIFY ocore_mcp`` with the table
and id (delivered at commit, deduplicated per transaction by PostgreSQL). Every writer is seen: the web
client, XML-RPC, an MCP call, a cron, raw SQL. The autovacuum drops the triggers of tables without
subscriptions. The process holding a stream (the gevent worker, or a threaded server) receives the
NOTIFY through its listener (service/notify.py), then checks, as the subscriber key's owner, that the
record may still be read (key valid, model allowlist, ACLs, record rules) before it writes
``notifications/resources/updated`` on the stream.

Subscriptions end with their session (rows of ended sessions are ignored, then removed by the autovacuum)
or with their listen stream (the stream removes its rows when it closes).
"""

import json
import logging
import secrets

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from ..lib import compat, protocol
from ..service import policy
from ..service.context import Connection
from ..service.notify import CHANNEL, hub
from .mcp_resources import RESOURCE_NOT_FOUND, SUBSCRIPTION_ID_META_KEY

_logger = logging.getLogger(__name__)

TRIGGER_FUNCTION = "ocore_mcp_record_changed"
TRIGGER_UPDATE = "ocore_mcp_changed_upd"
TRIGGER_DELETE = "ocore_mcp_changed_del"
TRIGGER_LOCK_TIMEOUT = "2s"  # CREATE/DROP TRIGGER waits for the table's writers; never queue others behind it
LIST_CHANGED = "notifications/tools/list_changed"
RESOURCE_UPDATED = "notifications/resources/updated"
# the templates whose URI names one record (model, id): their updates are reported
RECORD_TEMPLATES = ("record", "record_report", "attachment_content")
LISTEN_STALE_MINUTES = 10  # a listen stream refreshes its rows' heartbeat every 25 s; older rows are orphans
MAX_SUBSCRIPTIONS = 1000  # resource subscriptions one stream (a session, a listen request) may hold

FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {TRIGGER_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rid integer;
BEGIN
    IF TG_OP = 'DELETE' THEN rid := OLD.id; ELSE rid := NEW.id; END IF;
    IF to_regclass('ocore_mcp_subscription') IS NOT NULL AND EXISTS (
            SELECT 1 FROM ocore_mcp_subscription WHERE res_table = TG_TABLE_NAME AND res_id = rid) THEN
        PERFORM pg_notify('{CHANNEL}', json_build_object('t', 'chg', 'tb', TG_TABLE_NAME, 'id', rid)::text);
    END IF;
    RETURN NULL;
END
$$"""


class McpSubscription(models.Model):
    _name = "ocore.mcp.subscription"
    _description = "MCP Resource Subscription"
    _order = "id desc"
    _rec_name = "uri"

    channel = fields.Char(required=True, index=True, readonly=True,
                          help="The stream it is delivered on: a session id, or a listen stream's token.")
    session_id = fields.Many2one("ocore.mcp.session", ondelete="cascade", index=True, readonly=True)
    key_id = fields.Many2one("ocore.mcp.key", required=True, ondelete="cascade", index=True, readonly=True)
    user_id = fields.Many2one(related="key_id.user_id", store=True, index=True, string="Owner")
    kind = fields.Selection([("resource", "Resource updates"), ("tools", "Tool list changes")], required=True,
                            default="resource", readonly=True)
    uri = fields.Char(readonly=True)
    res_model = fields.Char("Model", readonly=True)
    res_table = fields.Char(readonly=True)
    res_id = fields.Integer("Record ID", readonly=True)
    listen_request = fields.Char(readonly=True, help="JSON of the subscriptions/listen request id (2026-07-28).")
    heartbeat = fields.Datetime(readonly=True, help="Last time the listen stream was known open.")
    readable = fields.Boolean(default=True, readonly=True,
                              help="The key's owner could read the record at the last check (the subscription, "
                                   "then each update's delivery): its deletion is reported only then.")
    transport = fields.Char(compute="_compute_transport")

    def init(self):
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS ocore_mcp_subscription_record_index "
            "ON ocore_mcp_subscription (res_table, res_id) WHERE res_table IS NOT NULL")
        self.env.cr.execute(FUNCTION_SQL)

    @api.depends("session_id", "listen_request")
    def _compute_transport(self):
        for sub in self:
            sub.transport = sub.session_id.transport if sub.session_id else "subscriptions/listen"

    # -- subscribing ---------------------------------------------------------------------

    @api.model
    def _ocore_record_of(self, conn, uri):
        """(model, id) of a record URI the key may subscribe to, or ProtocolError: -32002 for an unknown URI
        or a record the owner may not read (as resources/read answers), INVALID_PARAMS for a URI whose
        updates are not reported (not a record) or a model out of the key's scopes."""
        resources = self.env["ocore.mcp.resources"]
        server = self.env["ocore.mcp.server"]
        template, values, tool, _args = resources._ocore_resolve_resource(uri)
        if template is None or template.name not in RECORD_TEMPLATES:
            raise protocol.ProtocolError(protocol.INVALID_PARAMS, f"Updates are reported for records only "
                                         f"(odoo://{{model}}/{{id}}), not for {uri[:300]}", {"uri": uri[:300]})
        if not resources._ocore_resource_tool_visible(conn, tool, server._ocore_is_admin(conn)):
            raise protocol.ProtocolError(protocol.INVALID_PARAMS, f"the API key cannot read {uri[:300]}")
        model = values.get("model") or "ir.attachment"
        try:
            policy.check_model_allowed(model, conn.scope)
        except policy.Refusal as exc:
            raise protocol.ProtocolError(protocol.INVALID_PARAMS, str(exc)) from None
        if model not in self.env or self.env[model]._abstract or \
                self.env["ocore.mcp.toolset"]._ocore_protected_model(model):
            raise protocol.ProtocolError(RESOURCE_NOT_FOUND, f"Resource not found: {uri[:300]}", {"uri": uri[:300]})
        record = self._ocore_owner_env(conn.auth)[model].browse(int(values["id"]))
        if not record.exists() or not self._ocore_readable(record):
            raise protocol.ProtocolError(RESOURCE_NOT_FOUND, f"Resource not found: {uri[:300]}", {"uri": uri[:300]})
        return model, record.id

    @api.model
    def _ocore_owner_env(self, auth):
        return api.Environment(self.env.cr, auth.user_id, {"allowed_company_ids": [auth.company_id]})

    @api.model
    def _ocore_readable(self, record):
        if record._name == "ir.attachment":
            try:
                compat.check_attachment_access(record, "read")
            except Exception:  # noqa: BLE001 - AccessError / MissingError
                return False
            return True
        return compat.has_access(record, "read")

    @api.model
    def _ocore_subscribe(self, conn, uri, channel, session=None, listen_request=None):
        """Subscribe ``channel`` to the record ``uri`` names (idempotent); its table gets its triggers."""
        model, res_id = self._ocore_record_of(conn, uri)
        table = self.env[model]._table
        self._ocore_ensure_triggers(table)
        existing = self.sudo().search([("channel", "=", channel), ("uri", "=", uri)], limit=1)
        if existing:
            if not existing.readable:  # checked readable just now
                existing.write({"readable": True})
            return existing
        if self.sudo().search_count([("channel", "=", channel), ("kind", "=", "resource")]) >= MAX_SUBSCRIPTIONS:
            raise protocol.ProtocolError(protocol.INVALID_PARAMS, f"this stream already holds {MAX_SUBSCRIPTIONS} "
                                         "resource subscriptions: unsubscribe from some first")
        return self.sudo().create({
            "channel": channel, "session_id": session.id if session else False, "key_id": conn.auth.id,
            "kind": "resource", "uri": uri, "res_model": model, "res_table": table, "res_id": res_id,
            "listen_request": listen_request,
            "heartbeat": fields.Datetime.now() if listen_request else False,
        })

    @api.model
    def _ocore_unsubscribe(self, channel, uri):
        self.sudo().search([("channel", "=", channel), ("uri", "=", uri)]).unlink()

    @api.model
    def _ocore_open_listen(self, conn, request_id, notifications):
        """Open a ``subscriptions/listen`` stream: (channel, honored filter). Record URIs the key may read
        are honored; others are left out of the acknowledgment (their updates would never be sent)."""
        requested = notifications.get("resourceSubscriptions") or ()
        if len(requested) > MAX_SUBSCRIPTIONS:  # each URI costs the checks of a read: bounded per request
            raise protocol.ProtocolError(protocol.INVALID_PARAMS, f"at most {MAX_SUBSCRIPTIONS} resource "
                                         f"subscriptions per stream ({len(requested)} asked)")
        channel = "listen-" + secrets.token_urlsafe(18)
        ref = json.dumps(request_id)
        honored = {}
        if notifications.get("toolsListChanged"):
            self.sudo().create({"channel": channel, "key_id": conn.auth.id, "kind": "tools", "listen_request": ref,
                                "heartbeat": fields.Datetime.now()})
            honored["toolsListChanged"] = True
        uris, seen = [], set()
        for uri in requested:
            if not isinstance(uri, str) or uri in seen:
                continue
            seen.add(uri)
            try:
                with self.env.cr.savepoint():
                    self._ocore_subscribe(conn, uri, channel, listen_request=ref)
            except protocol.ProtocolError:
                continue
            uris.append(uri)
        if uris:
            honored["resourceSubscriptions"] = uris
        return channel, honored

    @api.model
    def _ocore_listen_alive(self, channel):
        """A listen stream is still open: refresh its rows' heartbeat (any worker tells orphans apart)."""
        self.env.cr.execute("UPDATE ocore_mcp_subscription SET heartbeat = now() at time zone 'UTC' WHERE channel = %s",
                            (channel,))

    @api.model
    def _ocore_close_listen(self, channel):
        self.env.flush_all()
        self.env.cr.execute("DELETE FROM ocore_mcp_subscription WHERE channel = %s", (channel,))
        self.invalidate_model()

    # -- triggers --------------------------------------------------------------------------

    @api.model
    def _ocore_tables_with_triggers(self):
        self.env.cr.execute("SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                            "WHERE t.tgname = %s", (TRIGGER_UPDATE,))
        return {row[0] for row in self.env.cr.fetchall()}

    @api.model
    def _ocore_ensure_triggers(self, table):
        """Install the change triggers on ``table`` (once). Waits at most TRIGGER_LOCK_TIMEOUT for the
        table's writers: a subscription never stalls the table's writes behind it."""
        if table in self._ocore_tables_with_triggers():
            return
        cr = self.env.cr
        try:
            with cr.savepoint():
                cr.execute(SQL("SET LOCAL lock_timeout = %s", TRIGGER_LOCK_TIMEOUT))
                cr.execute(FUNCTION_SQL)
                for name, event in ((TRIGGER_UPDATE, "UPDATE"), (TRIGGER_DELETE, "DELETE")):
                    cr.execute(SQL(
                        "DROP TRIGGER IF EXISTS %s ON %s; CREATE TRIGGER %s AFTER %s ON %s FOR EACH ROW "
                        "EXECUTE FUNCTION %s()", SQL.identifier(name), SQL.identifier(table), SQL.identifier(name),
                        SQL(event), SQL.identifier(table), SQL.identifier(TRIGGER_FUNCTION)))
                cr.execute("SET LOCAL lock_timeout = DEFAULT")
        except Exception as exc:  # noqa: BLE001 - psycopg2.errors.LockNotAvailable mostly
            _logger.warning("could not install the MCP change triggers on %s: %s", table, exc)
            raise protocol.ProtocolError(protocol.INTERNAL_ERROR, f"the table of this record is busy ({table}); "
                                         "retry the subscription") from None

    @api.model
    def _ocore_drop_unused_triggers(self):
        """Drop the triggers of tables nobody subscribes to any more (autovacuum)."""
        cr = self.env.cr
        self.env.flush_all()
        cr.execute("SELECT DISTINCT res_table FROM ocore_mcp_subscription WHERE res_table IS NOT NULL")
        used = {row[0] for row in cr.fetchall()}
        for table in sorted(self._ocore_tables_with_triggers() - used):
            try:
                with cr.savepoint():
                    cr.execute(SQL("SET LOCAL lock_timeout = %s", TRIGGER_LOCK_TIMEOUT))
                    for name in (TRIGGER_UPDATE, TRIGGER_DELETE):
                        cr.execute(SQL("DROP TRIGGER IF EXISTS %s ON %s", SQL.identifier(name),
                                       SQL.identifier(table)))
                    cr.execute("SET LOCAL lock_timeout = DEFAULT")
            except Exception:  # noqa: BLE001 - busy: next time
                _logger.info("MCP change triggers of %s left for the next autovacuum (table busy)", table)

    @api.autovacuum
    def _gc_subscriptions(self):
        """Rows of ended sessions and of listen streams that stopped refreshing them, then unused triggers."""
        self.env.flush_all()
        self.env.cr.execute(
            """DELETE FROM ocore_mcp_subscription s
                WHERE (s.session_id IS NOT NULL AND EXISTS (SELECT 1 FROM ocore_mcp_session ss
                                                             WHERE ss.id = s.session_id AND ss.ended_at IS NOT NULL))
                   OR (s.session_id IS NULL AND (s.heartbeat IS NULL OR s.heartbeat < (now() at time zone 'UTC')
                                                                    - make_interval(mins => %s)))""",
            (LISTEN_STALE_MINUTES,))
        self.invalidate_model()
        self._ocore_drop_unused_triggers()

    # -- delivery (in the process that holds the streams) ----------------------------------------

    @api.model
    def _ocore_deliveries(self, changes, channels):
        """[(channel, message)] for the changed records ``changes`` ({(table, id)}) on the streams
        ``channels`` (those this process holds): one ``notifications/resources/updated`` per subscription
        whose key is valid and whose owner may read the record now. A deleted record's rules cannot be checked any
        more: it is reported to the subscriptions whose last check (the subscription, an update's delivery) found
        it readable, if the owner may still read its model; each update's check is kept on the row
        (``readable``), so that a record that moved out of the owner's reach (another company, a rule) is not
        reported when it is then deleted."""
        if not changes or not channels:
            return []
        cr = self.env.cr
        self.env.flush_all()
        cr.execute(
            """SELECT s.channel, s.uri, s.res_model, s.res_id, s.key_id, s.listen_request, s.id, s.readable
                 FROM ocore_mcp_subscription s
                 LEFT JOIN ocore_mcp_session ss ON ss.id = s.session_id
                WHERE (s.res_table, s.res_id) IN %s AND s.channel = ANY(%s) AND s.kind = 'resource'
                  AND ss.ended_at IS NULL
                ORDER BY s.id""",
            (tuple(changes), list(channels)),
        )
        rows = cr.fetchall()
        if not rows:
            return []
        settings = self.env["ocore.mcp.server"]._ocore_settings()
        keys = self.env["ocore.mcp.key"].sudo().with_context(active_test=False)
        auths, visible = {}, {}
        out, seen = [], {True: [], False: []}  # the rows whose readable flag the checks changed
        for channel, uri, model, res_id, key_id, listen_request, sub_id, was_readable in rows:
            if key_id not in auths:
                try:
                    auths[key_id] = policy.check_key(keys.browse(key_id), settings, None)
                except policy.Refusal:
                    auths[key_id] = None
            auth = auths[key_id]
            if auth is None or model not in self.env or (auth.scope["models"] and model not in auth.scope["models"]):
                continue
            if (key_id, uri) not in visible:  # the key's scopes may have shrunk since it subscribed
                visible[key_id, uri] = self._ocore_uri_visible(keys.browse(key_id), auth, settings, uri)
            if not visible[key_id, uri]:
                continue
            record = self._ocore_owner_env(auth)[model].browse(res_id)
            exists = record.exists()
            try:
                allowed = self._ocore_readable(record) if exists else \
                    bool(was_readable) and compat.has_access(record.browse(), "read")
            except AccessError:  # e.g. the owner lost the key's company: not this subscriber, the others still
                allowed = False
            if exists and allowed != bool(was_readable):
                seen[allowed].append(sub_id)
            if not allowed:
                continue
            params = {"uri": uri}
            if listen_request:
                params["_meta"] = {SUBSCRIPTION_ID_META_KEY: json.loads(listen_request)}
            out.append((channel, protocol.notification(RESOURCE_UPDATED, params)))
        for flag, ids in seen.items():
            if ids:
                cr.execute("UPDATE ocore_mcp_subscription SET readable = %s WHERE id = ANY(%s)", (flag, ids))
        if seen[True] or seen[False]:
            self.invalidate_model(["readable"])
        return out

    @api.model
    def _ocore_uri_visible(self, key, auth, settings, uri):
        """Whether the key may still read ``uri`` through its tool (categories, allow/deny lists, instance
        scope, administrators' tools): the check of the subscription, again at delivery."""
        resources = self.env["ocore.mcp.resources"]
        try:
            _template, _values, tool, _args = resources._ocore_resolve_resource(uri)
        except protocol.ProtocolError:
            return False
        conn = Connection(key=key, scope=auth.scope, settings=settings, transport="delivery", auth=auth)
        return resources._ocore_resource_tool_visible(conn, tool, self.env["ocore.mcp.server"]._ocore_is_admin(conn))

    # -- tool list changes ------------------------------------------------------------------------

    @api.model
    def _ocore_tools_list_changed(self, keys=None):
        """Tell the open sessions (of ``keys``, else all) and the listen streams that asked for it that the
        tool list changed: ``notifications/tools/list_changed`` on their streams, sent at commit (any worker)."""
        domain = [("state", "=", "open")]
        sub_domain = [("kind", "=", "tools")]
        if keys is not None:
            domain.append(("key_id", "in", keys.ids))
            sub_domain.append(("key_id", "in", keys.ids))
        cr = self.env.cr
        for session in self.env["ocore.mcp.session"].sudo().search(domain):
            hub.publish(cr, session.session_id, {"t": "msg", "m": protocol.notification(LIST_CHANGED)})
        for sub in self.sudo().search(sub_domain):
            meta = {SUBSCRIPTION_ID_META_KEY: json.loads(sub.listen_request or "null")}
            hub.publish(cr, sub.channel, {"t": "msg", "m": protocol.notification(LIST_CHANGED, {"_meta": meta})})





class McpSessionSubscriptions(models.Model):
    _inherit = "ocore.mcp.session"

    subscription_ids = fields.One2many("ocore.mcp.subscription", "session_id", string="Subscriptions",
                                       readonly=True)

    def _ocore_end(self, reason):
        """A session's subscriptions end with it."""
        ended = super()._ocore_end(reason)
        if ended:
            self.env["ocore.mcp.subscription"].sudo().search([("session_id", "in", ended.ids)]).unlink()
        return ended
