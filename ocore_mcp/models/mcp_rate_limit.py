from odoo import models


class McpRateLimit(models.AbstractModel):
    """Per-key sliding-window rate limit, exact across workers.

    Each admitted call leaves a row in ``ocore_mcp_rate_hit``; a transaction
    advisory lock per key serialises the count-and-insert so that N calls are
    admitted in any 60-second window and the N+1st is refused, whichever
    worker serves it.
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

    def _ocore_hit(self, key_id, limit):
        """Count this call against the key. Return (allowed, used) and record the hit if allowed.

        Runs in the caller's transaction: the caller commits right after, which
        releases the advisory lock.
        """
        cr = self.env.cr
        cr.execute("SELECT pg_advisory_xact_lock(%s, %s)", (self.LOCK_NAMESPACE, key_id))
        cr.execute(
            """DELETE FROM ocore_mcp_rate_hit
                WHERE key_id = %s AND hit_at < (clock_timestamp() at time zone 'UTC') - make_interval(secs => %s)""",
            (key_id, self.WINDOW_SECONDS),
        )
        cr.execute("SELECT count(*) FROM ocore_mcp_rate_hit WHERE key_id = %s", (key_id,))
        used = cr.fetchone()[0]
        if used >= limit:
            return False, used
        cr.execute("INSERT INTO ocore_mcp_rate_hit (key_id) VALUES (%s)", (key_id,))
        return True, used + 1
