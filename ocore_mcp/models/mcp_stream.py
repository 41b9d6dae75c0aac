"""Open long-lived streams per API key: a cap, exact across workers.

A key's legacy SSE streams, Streamable HTTP GET streams and ``subscriptions/listen`` streams each hold a
greenlet (or a thread) of the process that serves them for as long as the client keeps them open; the rate
limit only counts how often they are opened. Each open stream is a row of ``ocore_mcp_open_stream`` (taken
before the stream starts, its heartbeat refreshed when the stream re-checks its key, every 25 s, removed
when it ends), and a key may hold at most ``ocore_mcp.max_streams_per_key`` of them (system parameter,
default ``DEFAULT_MAX_STREAMS``). Rows whose heartbeat stopped (the process holding them died) stop counting
after ``STALE_SECONDS``; a stream that finds its row gone ends at its next re-check, so that what is counted
is what is open.
"""

from odoo import api, models

from ..service import policy

PARAM = "ocore_mcp.max_streams_per_key"
DEFAULT_MAX_STREAMS = 50  # a client holds one to three; a client that reconnects often leaves some counted for 15 s
STALE_SECONDS = 90  # a stream refreshes its heartbeat every 25 s (REVALIDATE_SECONDS of the controller)


class McpStreamLimit(models.AbstractModel):
    _name = "ocore.mcp.stream.limit"
    _description = "MCP open streams per key"

    LOCK_NAMESPACE = 0x6F6373  # "ocs"

    def init(self):
        cr = self.env.cr
        # unlogged: after a crash of PostgreSQL no stream is open any more, an empty table is the truth
        cr.execute(
            """CREATE UNLOGGED TABLE IF NOT EXISTS ocore_mcp_open_stream (
                   id serial PRIMARY KEY,
                   key_id integer NOT NULL,
                   kind varchar NOT NULL,
                   channel varchar,
                   opened_at timestamp without time zone NOT NULL DEFAULT (now() at time zone 'UTC'),
                   heartbeat timestamp without time zone NOT NULL DEFAULT (now() at time zone 'UTC'))"""
        )
        cr.execute("CREATE INDEX IF NOT EXISTS ocore_mcp_open_stream_key ON ocore_mcp_open_stream (key_id)")
        # the row's id when admitted, minus the open streams when the key holds its limit already; the
        # advisory lock serialises the count-and-insert per key, each statement reads what other workers
        # committed before it was granted (READ COMMITTED: see _ocore_stream_open)
        cr.execute(
            """CREATE OR REPLACE FUNCTION ocore_mcp_stream_open(p_ns integer, p_key integer, p_limit integer,
                                                             p_stale integer, p_kind varchar, p_channel varchar)
               RETURNS integer AS $$
               DECLARE
                   v_now timestamp := clock_timestamp() at time zone 'UTC';
                   v_open integer; v_id integer;
               BEGIN
                   PERFORM pg_advisory_xact_lock(p_ns, p_key);
                   DELETE FROM ocore_mcp_open_stream
                    WHERE key_id = p_key AND heartbeat < v_now - make_interval(secs => p_stale);
                   SELECT count(*) INTO v_open FROM ocore_mcp_open_stream WHERE key_id = p_key;
                   IF v_open >= p_limit THEN
                       RETURN -v_open;
                   END IF;
                   INSERT INTO ocore_mcp_open_stream (key_id, kind, channel, opened_at, heartbeat)
                   VALUES (p_key, p_kind, p_channel, v_now, v_now) RETURNING id INTO v_id;
                   RETURN v_id;
               END $$ LANGUAGE plpgsql"""
        )

    @api.model
    def _ocore_stream_limit(self):
        raw = self.env["ir.config_parameter"].sudo().get_param(PARAM)
        try:
            return max(1, int(raw)) if raw else DEFAULT_MAX_STREAMS
        except ValueError:
            return DEFAULT_MAX_STREAMS

    @api.model
    def _ocore_stream_open(self, key_id, kind, channel=None):
        """Take a stream slot of the key: the id of its row, or ``Refusal("too_many_streams")``.

        Ends the current transaction first (the request's checks only read; a caller that wrote must have
        committed) and runs the one statement in autocommit on a bookkeeping connection, at READ COMMITTED:
        under Odoo's REPEATABLE READ the count would read the snapshot taken before the lock was granted. The
        row is committed at once: any worker counts it. While Odoo runs a test, the statement joins the test's
        transaction."""
        call, params = self._ocore_stream_open_call(key_id, kind, channel)
        # the call's bookkeeping mechanism: on a bookkeeping connection of the process (autocommit, its plans
        # cached), or in the test's transaction
        with self.env["ocore.mcp.server"]._ocore_bookkeeping() as cr:
            cr.execute(f"SELECT {call}", params)
            got = cr.fetchone()[0]
        if got < 0:
            raise self._ocore_stream_refusal(-got)
        return got

    @api.model
    def _ocore_stream_open_call(self, key_id, kind, channel=None):
        """(SQL expression, parameters) of the slot function's call: the id of the new slot's row, or minus the
        key's open streams when it holds this server's limit. Also sent inside the session lookup's statement
        (``ocore.mcp.server._ocore_session_begin``)."""
        return ("ocore_mcp_stream_open(%s, %s, %s, %s, %s, %s)",
                [self.LOCK_NAMESPACE, key_id, self._ocore_stream_limit(), STALE_SECONDS, kind,
                 (channel or "")[:100] or None])

    @api.model
    def _ocore_stream_refusal(self, held):
        """The Refusal of a stream over the key's limit (``held``: its open streams)."""
        return policy.Refusal(
            "too_many_streams",
            f"this API key already holds {held} open streams, this server's limit (system parameter {PARAM}): "
            "close one (or wait for one to end) before opening another")

    @api.model
    def _ocore_stream_alive(self, stream_id, channel=None):
        """Refresh the heartbeat of an open stream's row; False when the row is gone (stale and purged: the
        stream no longer counts, so it must end)."""
        if channel:
            self.env.cr.execute(
                """UPDATE ocore_mcp_open_stream SET heartbeat = now() at time zone 'UTC', channel = %s
                    WHERE id = %s""", ((channel or "")[:100], stream_id))
        else:
            self.env.cr.execute(
                "UPDATE ocore_mcp_open_stream SET heartbeat = now() at time zone 'UTC' WHERE id = %s", (stream_id,))
        return bool(self.env.cr.rowcount)

    @api.model
    def _ocore_stream_close(self, stream_id):
        self.env.cr.execute("DELETE FROM ocore_mcp_open_stream WHERE id = %s", (stream_id,))

    @api.model
    def _ocore_open_streams(self, key_id):
        """The key's streams that count (heartbeat fresh), for the backend and tests."""
        self.env.cr.execute(
            """SELECT count(*) FROM ocore_mcp_open_stream
                WHERE key_id = %s AND heartbeat >= now() at time zone 'UTC' - make_interval(secs => %s)""",
            (key_id, STALE_SECONDS))
        return self.env.cr.fetchone()[0]
