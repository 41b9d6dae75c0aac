import time
from collections.abc import Callable
from typing import NamedTuple

from odoo import models

from ..lib import compat
from ..service import audit

# (database, key id) -> when this worker last refreshed the key's last use (time.monotonic()): a hint that
# saves a statement per call, nothing another worker needs
_TOUCHED = {}
TOUCH_SECONDS = 30  # this worker refreshes a key's last use at most this often
KEY_TOUCH = """UPDATE ocore_mcp_key SET last_used = now() at time zone 'UTC'
                WHERE id = %s AND (last_used IS NULL OR last_used < now() at time zone 'UTC' - interval '60 s')"""


class KeyTouch(NamedTuple):
    sql: str
    params: list
    done: Callable[[], None]  # to call once the statement ran, so that this worker skips it for a while


def key_touch(dbname, key_id, condition="", condition_params=()):
    """The statement that refreshes the key's last use (kept within a minute: ``KEY_TOUCH``, then
    ``condition``, SQL starting with AND), as a ``KeyTouch``, or None when this worker refreshed it less than
    ``TOUCH_SECONDS`` ago (under Odoo's tests always: their transactions are rolled back)."""
    now = time.monotonic()
    touched = _TOUCHED.get((dbname, key_id))
    if touched is not None and now - touched <= TOUCH_SECONDS and not compat.in_odoo_test():
        return None

    def done():
        _TOUCHED[(dbname, key_id)] = now

    return KeyTouch(KEY_TOUCH + condition, [key_id, *condition_params], done)


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
        # a first design's function (the call's bookkeeping in PL/pgSQL): the plain statements of _ocore_begin
        # cost less
        cr.execute("DROP FUNCTION IF EXISTS ocore_mcp_call_begin(integer, integer, integer, integer, jsonb, integer)")
        cr.execute("DROP FUNCTION IF EXISTS ocore_mcp_call_begin(integer, integer, integer, integer, jsonb, integer, "
                   "boolean)")

    def _ocore_hit(self, key_id, limit, cr=None):
        """Count this call against the key. Return (allowed, used) and record the hit if allowed (``used``:
        the limit when refused; when admitted, at most the hits in the window).

        Must run in a READ COMMITTED transaction that commits right after, or alone in one (``cr``: the
        pipeline's ``ocore.mcp.server._ocore_bookkeeping``; by default the environment's cursor): Odoo's
        cursors are REPEATABLE READ, where the check would read the snapshot taken before the lock was
        granted and miss the hits other workers committed meanwhile. The commit also releases the key's
        lock before the tool runs.
        """
        # The hit is bookkeeping: its transaction commits without waiting for the WAL flush (a crash of
        # PostgreSQL itself may forget the last hits, never admit more than the limit in one run).
        cr = cr or self.env.cr
        cr.execute(
            "SET LOCAL synchronous_commit TO OFF; SELECT ocore_mcp_rate_hit(%s, %s, %s, %s)",
            (self.LOCK_NAMESPACE, key_id, limit, self.WINDOW_SECONDS),
        )
        used = cr.fetchone()[0]
        return (used > 0, abs(used))

    def _ocore_begin(self, key_id, limit, row, session_pk=None, cr=None):
        """A call's bookkeeping in one round trip (sent alone in autocommit: one short transaction of its own,
        see ``ocore.mcp.server._ocore_bookkeeping``): the rate-limit hit (``limit`` None: counted already),
        the audit row ``row`` inserted on the condition of the hit (None: no row), the key's last use (this
        worker refreshes it at most every 30 s: ``key_touch``) and the last activity
        of the session ``session_pk``. Returns (allowed, used, audit row id); a refused hit writes nothing.
        Committed without waiting for the WAL flush (a crash of PostgreSQL itself may forget the last hits
        and rows, never admit more than the limit in one run). ``cr``: the cursor to run it on (the
        pipeline's bookkeeping cursor), by default the environment's."""
        cr = cr or self.env.cr
        touch = key_touch(cr.dbname, key_id)
        statements, params = ["SET LOCAL synchronous_commit TO OFF"], []
        if touch:
            statements.append(touch.sql)
            params.extend(touch.params)
        if session_pk:
            statements.append("""UPDATE ocore_mcp_session SET last_seen = now() at time zone 'UTC'
                                  WHERE id = %s AND last_seen < now() at time zone 'UTC' - interval '30 s'""")
            params.append(session_pk)
        hit = "ocore_mcp_rate_hit(%s, %s, %s, %s)"
        hit_params = (self.LOCK_NAMESPACE, key_id, limit, self.WINDOW_SECONDS)
        if row is not None:  # the last statement's result is the one read: the row's id, or none when refused
            query, row_params = audit.insert_query(row, f"{hit} > 0" if limit is not None else None,
                                                   hit_params if limit is not None else ())
            statements.append(query)
            params.extend(row_params)
        elif limit is not None:
            statements.append(f"SELECT {hit}")
            params.extend(hit_params)
        cr.execute(";\n".join(statements), params)
        if touch:
            touch.done()
        if row is not None:
            found = cr.fetchone()
            return (True, 0, found[0]) if found else (False, limit, None)
        if limit is not None:
            used = cr.fetchone()[0]
            return used > 0, abs(used), None
        return True, 0, None
