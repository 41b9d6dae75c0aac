import time

from odoo import models

from ..lib import compat
from ..service import audit

# (database, key id) -> when this worker last refreshed the key's last use (time.monotonic()): a hint that
# saves a statement per call, nothing another worker needs
_TOUCHED = {}


class McpRateLimit(models.AbstractModel):
    """Per-key sliding-window rate limit, exact across workers, in constant time per call.

    N calls are admitted in any 60-second window and the N+1st is refused, whichever worker serves it. The
    key's admitted hits live in a ring of N slots (``ocore_mcp_rate_hit``: one row per slot, the key's
    admission counter in ``ocore_mcp_rate_state``): admission number ``s`` goes to slot ``s mod N``, which
    holds the hit of admission ``s - N``. The call is admitted exactly when that slot is empty or its hit
    is older than the window (fewer than N hits in the window), whatever the traffic: no count over the
    window's hits (at a few hundred calls per second, tens of thousands of rows). A transaction advisory
    lock per key serialises the check-and-record; each statement of the PL/pgSQL function takes a new
    snapshot (READ COMMITTED), so it sees every hit other workers committed before the lock was granted.
    A changed limit re-slots the key's most recent hits (exact: under a limit N the window never held
    more than N of them).
    """

    _name = "ocore.mcp.rate.limit"
    _description = "MCP Rate Limiter"

    WINDOW_SECONDS = 60
    LOCK_NAMESPACE = 0x6F636D  # "ocm"

    def init(self):
        cr = self.env.cr
        cr.execute(
            """CREATE TABLE IF NOT EXISTS ocore_mcp_rate_hit (
                   key_id integer NOT NULL,
                   hit_at timestamp without time zone NOT NULL DEFAULT (clock_timestamp() at time zone 'UTC'))"""
        )
        cr.execute("ALTER TABLE ocore_mcp_rate_hit ADD COLUMN IF NOT EXISTS slot integer")
        cr.execute("DROP INDEX IF EXISTS ocore_mcp_rate_hit_key_at")
        cr.execute("CREATE UNIQUE INDEX IF NOT EXISTS ocore_mcp_rate_hit_key_slot ON ocore_mcp_rate_hit (key_id, slot)")
        cr.execute(
            """CREATE TABLE IF NOT EXISTS ocore_mcp_rate_state (
                   key_id integer PRIMARY KEY, seq bigint NOT NULL, size integer NOT NULL)"""
        )
        # Returns the hits in the window when admitted (an upper bound: the ring's fill), -limit when refused.
        cr.execute(
            """CREATE OR REPLACE FUNCTION ocore_mcp_rate_hit(p_ns integer, p_key integer, p_limit integer,
                                                          p_window integer) RETURNS integer AS $$
               DECLARE
                   v_now timestamp := clock_timestamp() at time zone 'UTC';
                   v_seq bigint; v_size integer; v_old timestamp; v_kept integer;
               BEGIN
                   PERFORM pg_advisory_xact_lock(p_ns, p_key);
                   -- the key's counter and the hit in the slot this admission would take
                   SELECT s.seq, s.size, h.hit_at INTO v_seq, v_size, v_old
                     FROM ocore_mcp_rate_state s
                     LEFT JOIN ocore_mcp_rate_hit h ON h.key_id = p_key AND h.slot = (s.seq % p_limit)::integer
                    WHERE s.key_id = p_key;
                   IF v_seq IS NULL OR v_size <> p_limit THEN
                       -- first call of the key, or a new limit: keep its p_limit most recent hits in slots 0..k-1
                       DELETE FROM ocore_mcp_rate_hit h WHERE h.key_id = p_key AND h.ctid NOT IN (
                           SELECT ctid FROM ocore_mcp_rate_hit WHERE key_id = p_key
                            ORDER BY hit_at DESC LIMIT p_limit);
                       UPDATE ocore_mcp_rate_hit SET slot = NULL WHERE key_id = p_key AND slot IS NOT NULL;
                       UPDATE ocore_mcp_rate_hit h SET slot = n.rn - 1
                         FROM (SELECT ctid AS c, row_number() OVER (ORDER BY hit_at, ctid) AS rn
                                 FROM ocore_mcp_rate_hit WHERE key_id = p_key) n
                        WHERE h.key_id = p_key AND h.ctid = n.c;
                       GET DIAGNOSTICS v_kept = ROW_COUNT;
                       v_seq := v_kept;
                       INSERT INTO ocore_mcp_rate_state (key_id, seq, size) VALUES (p_key, v_seq, p_limit)
                           ON CONFLICT (key_id) DO UPDATE SET seq = EXCLUDED.seq, size = EXCLUDED.size;
                       v_old := NULL;
                       SELECT hit_at INTO v_old FROM ocore_mcp_rate_hit
                        WHERE key_id = p_key AND slot = (v_seq % p_limit)::integer;
                   END IF;
                   IF v_old > v_now - make_interval(secs => p_window) THEN
                       RETURN -p_limit;  -- the hit of p_limit admissions ago is in the window: the ring is full
                   END IF;
                   WITH bump AS (UPDATE ocore_mcp_rate_state SET seq = v_seq + 1 WHERE key_id = p_key)
                   INSERT INTO ocore_mcp_rate_hit (key_id, slot, hit_at)
                   VALUES (p_key, (v_seq % p_limit)::integer, v_now)
                       ON CONFLICT (key_id, slot) DO UPDATE SET hit_at = EXCLUDED.hit_at;
                   RETURN LEAST(v_seq + 1, p_limit)::integer;
               END $$ LANGUAGE plpgsql"""
        )
        # A call's whole bookkeeping in one statement (one round trip, committed on its own by the caller):
        # the rate-limit hit (p_limit NULL: already counted), then, when admitted, the audit row p_row
        # (JSON of the columns; NULL: none) and the key's / session's last use (at most once a minute / 30 s;
        # p_session NULL or p_touch_key false: not this time). The old signature goes: a new parameter.
        cr.execute("DROP FUNCTION IF EXISTS ocore_mcp_call_begin(integer, integer, integer, integer, jsonb, integer)")
        # Returns {hits (negative: refused, nothing written), audit row id}. The caller sends it after
        # SET LOCAL synchronous_commit TO OFF, in the same query (``_ocore_begin``).
        columns = ", ".join(audit.COLUMNS)
        selected = ", ".join(f"r.{name}" for name in audit.COLUMNS)
        cr.execute(
            f"""CREATE OR REPLACE FUNCTION ocore_mcp_call_begin(p_ns integer, p_key integer, p_limit integer,
                                                             p_window integer, p_row jsonb, p_session integer,
                                                             p_touch_key boolean DEFAULT true)
                    RETURNS integer[] AS $$
               DECLARE
                   v_now timestamp := now() at time zone 'UTC';
                   v_used integer := 1; v_audit integer;
               BEGIN
                   IF p_limit IS NOT NULL THEN
                       v_used := ocore_mcp_rate_hit(p_ns, p_key, p_limit, p_window);
                       IF v_used < 0 THEN
                           RETURN ARRAY[v_used, NULL];
                       END IF;
                   END IF;
                   IF p_row IS NOT NULL THEN
                       INSERT INTO mcp_audit_log ({columns}, create_uid, write_uid, create_date, write_date)
                       SELECT {selected}, coalesce(r.user_id, 1), coalesce(r.user_id, 1), v_now, v_now
                         FROM jsonb_populate_record(NULL::mcp_audit_log, p_row) r
                       RETURNING id INTO v_audit;
                   END IF;
                   IF p_touch_key THEN
                       UPDATE ocore_mcp_key SET last_used = v_now
                        WHERE id = p_key AND (last_used IS NULL OR last_used < v_now - interval '60 s');
                   END IF;
                   IF p_session IS NOT NULL THEN
                       UPDATE ocore_mcp_session SET last_seen = v_now
                        WHERE id = p_session AND last_seen < v_now - interval '30 s';
                   END IF;
                   RETURN ARRAY[v_used, v_audit];
               END $$ LANGUAGE plpgsql""",  # noqa: S608 - column names from audit.COLUMNS
            (),  # no parameter: a query with none still goes through the driver's formatting (no % in it)
        )

    def _ocore_hit(self, key_id, limit):
        """Count this call against the key. Return (allowed, used) and record the hit if allowed (``used``:
        the limit when refused; when admitted, at most the hits in the window).

        Must run in a READ COMMITTED transaction that commits right after, or alone in one (the pipeline's
        ``ocore.mcp.server._ocore_bookkeeping``): Odoo's cursors are REPEATABLE READ, where the check would
        read the snapshot taken before the lock was granted and miss the hits other workers committed
        meanwhile. The commit also releases the key's lock before the tool runs.
        """
        # The hit is bookkeeping: its transaction commits without waiting for the WAL flush (a crash of
        # PostgreSQL itself may forget the last hits, never admit more than the limit in one run).
        self.env.cr.execute(
            "SET LOCAL synchronous_commit TO OFF; SELECT ocore_mcp_rate_hit(%s, %s, %s, %s)",
            (self.LOCK_NAMESPACE, key_id, limit, self.WINDOW_SECONDS),
        )
        used = self.env.cr.fetchone()[0]
        return (used > 0, abs(used))

    def _ocore_begin(self, key_id, limit, row, session_pk=None):
        """The call's bookkeeping in one statement: (allowed, used, audit row id). ``limit`` None: counted
        already; ``row``: the audit row's values (None: none); ``session_pk``: the session whose last activity
        to refresh. Same transaction rules as ``_ocore_hit``. The key's last use is refreshed by this worker
        at most every 30 s (the statement keeps it within a minute)."""
        now = time.monotonic()
        touched = _TOUCHED.get((self.env.cr.dbname, key_id))
        # (under Odoo's tests every call refreshes it: their transactions are rolled back)
        touch = touched is None or now - touched > 30 or compat.in_odoo_test()
        # bookkeeping: committed without waiting for the WAL flush (a crash of PostgreSQL itself may forget
        # the last hits and rows, never admit more than the limit in one run)
        self.env.cr.execute(
            "SET LOCAL synchronous_commit TO OFF; SELECT ocore_mcp_call_begin(%s, %s, %s, %s, %s, %s, %s)",
            (self.LOCK_NAMESPACE, key_id, limit, self.WINDOW_SECONDS,
             audit.row_json(row) if row is not None else None, session_pk, touch),
        )
        if touch:
            _TOUCHED[(self.env.cr.dbname, key_id)] = now
        used, audit_id = self.env.cr.fetchone()[0]
        return used > 0, abs(used), audit_id
