from odoo import models


class McpRateLimit(models.AbstractModel):
    """Per-key sliding-window rate limit, exact across workers.

    Each admitted call leaves a row in ``ocore_mcp_rate_hit``; a transaction
    advisory lock per key serialises the count-and-insert (in a READ COMMITTED
    transaction, see ``_ocore_hit``) so that N calls are admitted in
    any 60-second window and the N+1st is refused, whichever worker serves it.
    """

    _name = "ocore.mcp.rate.limit"
    _description = "MCP Rate Limiter"

    WINDOW_SECONDS = 60
    LOCK_NAMESPACE = 0x6F636D  # "ocm"

    def init(self):
        self.env.cr.execute(
            """CREATE TABLE IF NOT EXISTS ocore_mcp_rate_hit (
                   key_id integer NOT NULL,
                   hit_at timestamp without time zone NOT NULL DEFAULT (clock_timestamp() at time zone 'UTC'))"""
        )
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS ocore_mcp_rate_hit_key_at ON ocore_mcp_rate_hit (key_id, hit_at)"
        )
        # One round trip per call: lock the key, forget hits older than the window, count, record.
        # Each statement of a PL/pgSQL function takes a new snapshot (READ COMMITTED), so the count
        # sees every hit committed by other workers before the lock was granted.
        self.env.cr.execute(
            """CREATE OR REPLACE FUNCTION ocore_mcp_rate_hit(p_ns integer, p_key integer, p_limit integer,
                                                          p_window integer) RETURNS integer AS $$
               DECLARE used integer;
               BEGIN
                   PERFORM pg_advisory_xact_lock(p_ns, p_key);
                   DELETE FROM ocore_mcp_rate_hit
                    WHERE key_id = p_key
                      AND hit_at < (clock_timestamp() at time zone 'UTC') - make_interval(secs => p_window);
                   SELECT count(*) INTO used FROM ocore_mcp_rate_hit WHERE key_id = p_key;
                   IF used >= p_limit THEN
                       RETURN -used;
                   END IF;
                   INSERT INTO ocore_mcp_rate_hit (key_id) VALUES (p_key);
                   RETURN used + 1;
               END $$ LANGUAGE plpgsql"""
        )

    def _ocore_hit(self, key_id, limit):
        """Count this call against the key. Return (allowed, used) and record the hit if allowed.

        Must run in a READ COMMITTED transaction that commits right after (the pipeline starts one,
        see ``ocore.mcp.server._ocore_bookkeeping_transaction``): Odoo's cursors are REPEATABLE READ,
        where the count would read the snapshot taken before the lock was granted and miss the hits
        other workers committed meanwhile. The commit also releases the key's lock before the tool runs.
        """
        # The hit is bookkeeping: its transaction commits without waiting for the WAL flush (a crash of
        # PostgreSQL itself may forget the last hits, never admit more than the limit in one run).
        self.env.cr.execute(
            "SET LOCAL synchronous_commit TO OFF; SELECT ocore_mcp_rate_hit(%s, %s, %s, %s)",
            (self.LOCK_NAMESPACE, key_id, limit, self.WINDOW_SECONDS),
        )
        used = self.env.cr.fetchone()[0]
        return (used > 0, abs(used))
