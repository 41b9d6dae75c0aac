"""The one audit writer: a row per call, per refusal and per session event.

Rows are written with SQL on the request's cursor: a call's row is inserted
as 'running' and committed before the tool runs, by the same statement as its
rate-limit hit (``insert_query``; so a worker killed mid-call still leaves a
trace), then completed in the tool's own transaction (after its savepoint is
released or rolled back), so the row survives a failed call and no write of
the tool is visible before its row.
"""

from ..lib.redact import redact_params, redact_text

PARAMS_MAX = 10000
RESULT_MAX = 500  # characters of a result kept (lib.shaping.summary's default)
ERROR_MAX = 2000

_COLUMNS = (
    "event", "tool_name", "tool", "category", "params", "result_summary", "status", "success",
    "error_message", "refusal_reason", "latency_ms", "session_id", "request_id", "key_id", "user_id",
    "company_id", "ip_address", "client_name", "protocol_version", "transport", "dry_run", "confirmation",
)


def _params(arguments):
    return redact_params(arguments or {}, PARAMS_MAX)


def _redacted(values):
    """Secrets out of every free text of a row, by name and by value (lib/redact.py), each cut to its size."""
    if "params" in values and values["params"] is not None:
        params = values["params"]
        values["params"] = _params(params) if not isinstance(params, str) else redact_text(params, PARAMS_MAX + 1)
    if values.get("result_summary"):
        values["result_summary"] = redact_text(values["result_summary"], RESULT_MAX)
    if values.get("error_message"):
        values["error_message"] = redact_text(values["error_message"], ERROR_MAX)
    return values


def base_values(conn):
    auth = conn.auth
    return {
        "session_id": conn.session_id,
        "key_id": auth.id if auth else None,
        "user_id": auth.user_id if auth else None,
        "company_id": auth.company_id if auth else None,
        "ip_address": conn.ip,
        "client_name": conn.client_name,
        "protocol_version": conn.protocol_version,
        "transport": conn.transport,
    }


def _clean(values):
    # ORM-style False for "empty" must not reach varchar columns as 'false'
    return {k: (None if v is False and k not in ("success", "dry_run") else v)
            for k, v in values.items() if k in _COLUMNS}


def insert(cr, values):
    query, params = insert_query(values)
    cr.execute(query, params)
    return cr.fetchone()[0]


def insert_query(values, condition=None, condition_params=()):
    """(query, parameters) of the INSERT of a row, returning its id; with ``condition`` (SQL, no table), the
    row is inserted only when it holds: the call's bookkeeping inserts its 'running' row on the condition
    of its rate-limit hit, in one statement (ocore.mcp.rate.limit._ocore_begin)."""
    values = _redacted(_clean(values))
    if values.get("request_id") is not None:
        values["request_id"] = str(values["request_id"])
    cols = list(values)
    uid = values.get("user_id") or 1
    query = (
        f"""INSERT INTO mcp_audit_log ({", ".join(cols)}, create_uid, write_uid, create_date, write_date)
            SELECT {", ".join(["%s"] * len(cols))}, %s, %s, now() at time zone 'UTC', now() at time zone 'UTC'
            {f"WHERE {condition}" if condition else ""}
            RETURNING id"""  # noqa: S608 - column names come from _COLUMNS, the condition from code
    )
    return query, [*values.values(), uid, uid, *condition_params]


def update(cr, audit_id, values, then=None):
    """Complete a row; ``then``: a statement sent after it in the same round trip (the COMMIT of the call's
    transaction, ocore.mcp.server._ocore_audit_outcome)."""
    values = _redacted(_clean(values))
    sets = ", ".join(f"{c} = %s" for c in values)
    cr.execute(
        f"UPDATE mcp_audit_log SET {sets}, write_date = now() at time zone 'UTC' WHERE id = %s"  # noqa: S608
        + (f"; {then}" if then else ""),
        [*values.values(), audit_id],
    )


def event(cr, conn, event_name, **values):
    return insert(cr, {**base_values(conn), "event": event_name, **values})


def mark_admin_only_output(cr, audit_id):
    """The call's result repeats an administrators' tool's output: its row becomes an administrators' row
    (ocore.mcp.audit.log.admin_only_tool). Called by the tool, in the call's transaction."""
    if audit_id:
        cr.execute("UPDATE mcp_audit_log SET admin_only_output = true WHERE id = %s", (audit_id,))


def mark_running_prompt_admin_only(cr, key_id, name):
    """The same for a prompt whose output holds what only system administrators may read (the 'running'
    rows of this prompt for this key: the key's owner is one, each of those rows gets such an output)."""
    cr.execute(
        """UPDATE mcp_audit_log SET admin_only_output = true
            WHERE event = 'prompt' AND status = 'running' AND key_id = %s AND tool = %s""",
        (key_id, name),
    )
