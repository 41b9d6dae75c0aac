"""The PostgreSQL role of the SQL tools: credentials are never readable through them.

Parsing a query cannot tell reliably whether it returns a password hash (``r.*``, ``row_to_json(r)``,
the whole-row reference ``SELECT res_users FROM res_users``, views, CTEs, ``TABLE res_users`` ...).
PostgreSQL's own privileges can: the SQL tools run every statement after ``SET LOCAL ROLE`` to a
NOLOGIN role granted

* SELECT, INSERT, UPDATE, DELETE on every table of the database's schema, except
* on a table holding credential columns: SELECT on its other columns only (column-level grants),
  so ``SELECT *``, a whole-row reference, ``RETURNING *`` or a WHERE on a credential column fail
  with "permission denied";
* nothing on a view that reads such a table (a view runs with its owner's rights);
* the rows of ``ir_config_parameter`` whose key names a secret (``database.secret``, ``*_secret``,
  ``*token*``, ``*password*`` ...) hidden by a row-level security policy that applies to this role only.

Credential columns: a name saying so (:data:`CREDENTIAL_COLUMN`: password, secret, token, key hashes,
TOTP ...), the explicit :data:`CREDENTIAL_COLUMNS` (``res_users_apikeys.key`` ...), and the columns of
fields the ORM makes unreadable (``groups=fields.NO_ACCESS``).

The role is one per database user (``ocore_mcp_sql_<user>``, cluster-global like every role); its
grants live in each database. They are brought in line at install/upgrade and checked by one
catalog query before every SQL tool call (a module installed since may have added tables or
credential columns): what is missing is granted, what would leak is revoked, under an advisory lock.

Without the role (the database user may not create it), :func:`ensure` says why and the tools fall
back to refusing statements that name a credential table (see ``tools/sql.py``).

Odoo-independent: works on any DB-API cursor.
"""

import hashlib
import logging

_logger = logging.getLogger(__name__)

ROLE_PREFIX = "ocore_mcp_sql_"
# column names that hold a credential (case-insensitive regex, PostgreSQL syntax) ...
CREDENTIAL_COLUMN = (
    r"(password|passwd|pwd|passphrase|secret|token|api_?key|private_?key|key_hash|code_hash|totp|smtp_pass"
    # payment providers' and services' secrets named ..._key: adyen_hmac_key, aps_sha_request,
    # authorize_signature_key, worldline_webhook_key, cloud_storage_google_service_account_key ...
    r"|hmac|sha_re(quest|sponse)|(signature|transaction|merchant|webhook|verification|service_account|server"
    r"|migration|kiosk)_key)"
)
# ... unless they only point at one (a many2one to a payment token, a counter, a date)
NOT_CREDENTIAL_COLUMN = r"(_id|_ids|_count|_date|_uid|_duration|_prefix|_expiration|_expires|_validity|_type|_set)$"
CREDENTIAL_COLUMNS = (
    "res_users_apikeys.key",  # Odoo's API keys (hash), outside the ORM
    "auth_totp_device.key",  # "remember this device" keys (hash)
    "res_users_apikeys_show.key",  # the key shown once (transient)
    "ocore_mcp_oauth_device.user_code",  # a pending device authorization's code
)
# ir_config_parameter keys hidden from the role (PostgreSQL regex)
HIDDEN_PARAMETER_KEYS = r"(secret|password|passwd|token|api_?key|private_?key)"
# rows hidden from the SQL tools' roles (every role named ROLE_PREFIX...), whoever else reads the table
POLICY_QUAL = (f"current_user NOT LIKE '{ROLE_PREFIX.replace('_', chr(92) + '_')}%' "
               f"OR key !~* '{HIDDEN_PARAMETER_KEYS}'")
PARAM_TABLE = "ir_config_parameter"
PARAM_POLICY = "ocore_mcp_sql_hide_secrets"
PARAM_POLICY_ALL = "ocore_mcp_sql_others"
LOCK_KEY = 0x6F636F726573716C  # advisory lock of the grants' synchronisation

# Relations named by a statement refused in the fallback mode (no role), besides the credential tables:
# statistics hold sample values of every column (histogram bounds of the password column), the activity
# view shows the text of other sessions' queries.
FALLBACK_BLOCKED = frozenset({
    "pg_stats", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic", "pg_statistic_ext",
    "pg_statistic_ext_data", "pg_stat_activity", "pg_stat_statements", PARAM_TABLE,
})


class RoleUnavailable(Exception):  # noqa: N818 - a state, reported to the client as the reason of the fallback
    """The SQL tools' role cannot be used; the message says why and what to do."""


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def role_name(user):
    """The role of the database user ``user`` (63 bytes at most, PostgreSQL's limit)."""
    name = ROLE_PREFIX + user
    if len(name.encode()) > 63 or not name.replace("_", "").isalnum():
        name = ROLE_PREFIX + hashlib.sha256(user.encode()).hexdigest()[:24]
    return name


# Every relation of the current schema with its credential columns and whether the role can read them.
_COLUMNS = """
    SELECT c.oid, c.relname, c.relkind, a.attnum, a.attname,
           ((a.attname ~* %(pattern)s AND a.attname !~* %(exempt)s)
            OR (c.relname || '.' || a.attname) = ANY(%(explicit)s)) AS secret,
           has_column_privilege(%(role)s, c.oid, a.attnum, 'SELECT') AS granted,
           has_table_privilege(c.oid, 'SELECT WITH GRANT OPTION') AS ours
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""
# Views (transitively) reading a table with a credential column: the role gets nothing on them.
_STATE = f"""
    WITH RECURSIVE cols AS ({_COLUMNS}),
    rels AS (
        SELECT oid, relname, relkind, bool_or(secret) AS secret, bool_and(granted) AS all_granted,
               bool_or(granted AND secret) AS leaks, bool_or(NOT granted AND NOT secret) AS missing,
               bool_or(ours) AS ours
          FROM cols GROUP BY oid, relname, relkind
    ),
    hidden(oid) AS (
        SELECT oid FROM rels WHERE secret
        UNION
        -- any view reading such a table or a hidden view, whatever its columns: PostgreSQL does not record a
        -- whole-row reference (row_to_json(u)) as a dependency when the view names a column of u too
        SELECT r.ev_class
          FROM pg_depend d
          JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
          JOIN hidden h ON d.refclassid = 'pg_class'::regclass AND d.refobjid = h.oid
         WHERE r.ev_class <> h.oid
    )
"""
_CHECK = _STATE + """
    SELECT count(*) FILTER (WHERE rels.leaks OR (h.oid IS NOT NULL AND NOT rels.secret
                                                 AND has_table_privilege(%(role)s, rels.oid, 'SELECT'))),
           count(*) FILTER (WHERE rels.ours AND rels.missing AND (h.oid IS NULL OR rels.secret))
      FROM rels LEFT JOIN hidden h ON h.oid = rels.oid
"""
_PLAN = _STATE + """
    SELECT rels.relname, rels.relkind, rels.secret, h.oid IS NOT NULL, rels.ours,
           array_agg(cols.attname ORDER BY cols.attnum) FILTER (WHERE NOT cols.secret),
           array_agg(cols.attname ORDER BY cols.attnum) FILTER (WHERE cols.secret)
      FROM rels JOIN cols ON cols.oid = rels.oid LEFT JOIN hidden h ON h.oid = rels.oid
  GROUP BY rels.relname, rels.relkind, rels.secret, h.oid, rels.ours
"""


def _params(cr, role, extra_columns=()):
    return {"pattern": CREDENTIAL_COLUMN, "exempt": NOT_CREDENTIAL_COLUMN, "role": role,
            "explicit": sorted(set(CREDENTIAL_COLUMNS) | set(extra_columns))}


def credential_relations(cr, extra_columns=()):
    """{relation name: [credential columns]} of the current schema, views reading them included
    (with an empty list)."""
    cr.execute(_STATE.replace("has_column_privilege(%(role)s, c.oid, a.attnum, 'SELECT')", "false") + """
        SELECT rels.relname, array_agg(DISTINCT cols.attname) FILTER (WHERE cols.secret)
          FROM hidden h JOIN rels ON rels.oid = h.oid JOIN cols ON cols.oid = rels.oid
      GROUP BY rels.relname""", _params(cr, None, extra_columns))
    return {name: list(columns or []) for name, columns in cr.fetchall()}


def _server_version(cr):
    cr.execute("SELECT current_setting('server_version_num')::int, current_user")
    return cr.fetchone()


def _savepoint(cr, statements):
    """Run ``statements`` in a savepoint; return the error text or None (an expected failure: not logged
    by Odoo's cursor)."""
    quiet = {"log_exceptions": False} if hasattr(cr, "_cnx") else {}
    cr.execute("SAVEPOINT ocore_mcp_sql_role")
    try:
        for statement in statements:
            cr.execute(statement, **quiet)
    except Exception as exc:  # noqa: BLE001 - any failure (privilege, concurrency) is reported, nothing kept
        cr.execute("ROLLBACK TO SAVEPOINT ocore_mcp_sql_role")
        cr.execute("RELEASE SAVEPOINT ocore_mcp_sql_role")
        return (getattr(exc, "pgerror", None) or str(exc)).strip()
    cr.execute("RELEASE SAVEPOINT ocore_mcp_sql_role")
    return None


def _membership(cr, role, version):
    option = "SET" if version >= 160000 else "MEMBER"
    cr.execute(f"SELECT oid, pg_has_role(oid, '{option}') FROM pg_roles WHERE rolname = %s", (role,))
    return cr.fetchone()


def ensure_role(cr):
    """The name of the SQL tools' role for the current database user, created (NOLOGIN) and granted
    to that user when missing. Raise :class:`RoleUnavailable` when that is not possible."""
    version, user = _server_version(cr)
    role = role_name(user)
    row = _membership(cr, role, version)
    if row is None:
        error = _savepoint(cr, [
            f"CREATE ROLE {quote(role)} NOLOGIN NOINHERIT",
            f"COMMENT ON ROLE {quote(role)} IS 'oCore MCP: the SQL tools read as this role (no credential column)'",
        ])
        if error and "already exists" not in error:
            raise RoleUnavailable(
                f"the SQL tools' read-only role {role} does not exist and the database user {user} may not create "
                f"it ({error}). Grant CREATEROLE to {user} (setup/run does), or as a superuser run: "
                f"CREATE ROLE {role} NOLOGIN; GRANT {role} TO {user};")
        row = _membership(cr, role, version)
    if not row[1]:
        error = _savepoint(cr, [f"GRANT {quote(role)} TO {quote(user)}"])
        row = _membership(cr, role, version) if not error else row
        if error or not row[1]:
            raise RoleUnavailable(
                f"the database user {user} is not a member of the SQL tools' role {role} and may not grant it "
                f"({error or 'no SET option'}); as a superuser run: GRANT {role} TO {user};")
    return role


def _param_policy_ok(cr, role):
    cr.execute("""
        SELECT c.relrowsecurity,
               EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %(hide)s
                          AND NOT p.polpermissive AND p.polroles = '{0}'
                          AND position(%(keys)s IN pg_get_expr(p.polqual, p.polrelid)) > 0),
               EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %(all)s)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
         WHERE c.relname = %(table)s AND %(role)s IS NOT NULL
    """, {"hide": PARAM_POLICY, "all": PARAM_POLICY_ALL, "role": role, "table": PARAM_TABLE,
          "keys": HIDDEN_PARAMETER_KEYS})
    row = cr.fetchone()
    return row is None or all(row)


def in_sync(cr, role, extra_columns=()):
    """(leaks, missing): relations where the role reads a credential / lacks a grant it should have."""
    cr.execute(_CHECK, _params(cr, role, extra_columns))
    leaks, missing = cr.fetchone()
    if not _param_policy_ok(cr, role):
        leaks += 1
    return leaks, missing


def synchronise(cr, role, extra_columns=()):
    """Bring the role's grants in line with the schema (under an advisory lock: concurrent calls
    would otherwise fail each other with 'tuple concurrently updated')."""
    cr.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
    cr.execute(_PLAN, _params(cr, role, extra_columns))
    plain_tables, plain_views, statements = [], [], []
    r = quote(role)
    for relname, relkind, secret, hidden, ours, public_columns, _secret_columns in cr.fetchall():
        if not ours:
            continue
        name = quote(relname)
        if secret:
            statements.append(f"REVOKE ALL ON {name} FROM {r}")
            if public_columns:
                statements.append(f"GRANT SELECT ({', '.join(quote(c) for c in public_columns)}) ON {name} TO {r}")
            if relkind in ("r", "p"):
                statements.append(f"GRANT INSERT, UPDATE, DELETE ON {name} TO {r}")
        elif hidden:
            statements.append(f"REVOKE ALL ON {name} FROM {r}")
        elif relkind in ("r", "p"):
            plain_tables.append(name)
        else:
            plain_views.append(name)
    if plain_tables:
        statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(plain_tables)} TO {r}")
    if plain_views:
        statements.append(f"GRANT SELECT ON {', '.join(plain_views)} TO {r}")
    cr.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind = 'S'
           AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'USAGE WITH GRANT OPTION')
                    AND NOT has_sequence_privilege(%s, c.oid, 'USAGE') END
    """, (role,))
    sequences = [quote(name) for (name,) in cr.fetchall()]
    if sequences:
        statements.append(f"GRANT USAGE ON SEQUENCE {', '.join(sequences)} TO {r}")
    cr.execute("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
               "WHERE n.nspname = current_schema() AND c.relname = %s AND pg_has_role(c.relowner, 'USAGE')",
               (PARAM_TABLE,))
    if cr.fetchone():
        table = quote(PARAM_TABLE)
        statements += [
            f"DROP POLICY IF EXISTS {PARAM_POLICY} ON {table}",
            f"DROP POLICY IF EXISTS {PARAM_POLICY_ALL} ON {table}",
            # every other role keeps reading every row (the table's owner is not subject to policies)
            f"CREATE POLICY {PARAM_POLICY_ALL} ON {table} USING (true)",
            # by role name, not role object: a dump of the database restores where the role does not exist
            f"CREATE POLICY {PARAM_POLICY} ON {table} AS RESTRICTIVE FOR ALL USING ({POLICY_QUAL}) "
            f"WITH CHECK ({POLICY_QUAL})",
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        ]
    for statement in statements:
        cr.execute(statement)
    _logger.info("oCore MCP: grants of the SQL tools' role %s synchronised (%d statements)", role, len(statements))


# What the grants depend on, hashed: the relations of the schema (name, kind, columns, grants, row security),
# their columns (name, grants) and the row-level policies. A table, a column, a rename or a grant since
# changes it.
_FINGERPRINT = """
    SELECT current_database(), count(*),
           sum(hashtext(concat_ws(':', c.relname, c.relkind, c.relnatts, c.relrowsecurity, c.relacl))),
           (SELECT sum(hashtext(concat_ws(':', a.attrelid, a.attname, a.attacl))) FROM pg_attribute a
             WHERE a.attnum > 0
               AND a.attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = current_schema()::regnamespace)),
           (SELECT sum(hashtext(concat_ws(':', p.polrelid, p.polname, p.polpermissive, p.polroles,
                                          pg_get_expr(p.polqual, p.polrelid))))
              FROM pg_policy p)
      FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
"""
# (database, role, extra columns) -> catalog fingerprint when the grants were last found in line. A cache in
# process memory: a miss (another worker, a rolled-back synchronisation) only costs the full check.
_checked = {}


def ensure(cr, extra_columns=()):
    """The role, its grants in line with the schema; raise :class:`RoleUnavailable` without it."""
    role = ensure_role(cr)
    cr.execute(_FINGERPRINT)
    fingerprint = cr.fetchone()
    key = (fingerprint[0], role, tuple(extra_columns))
    if _checked.get(key) == fingerprint:
        return role
    leaks, missing = in_sync(cr, role, extra_columns)
    if leaks or missing:
        synchronise(cr, role, extra_columns)
        leaks, _missing = in_sync(cr, role, extra_columns)
        if leaks:
            raise RoleUnavailable(f"the SQL tools' role {role} can still read {leaks} credential relation(s) "
                                  "whose grants the database user cannot change")
        cr.execute(_FINGERPRINT)
        fingerprint = cr.fetchone()
    _checked[key] = fingerprint
    return role


def drop(cr):
    """Remove the role's grants and policies from this database, then the role when no other database
    uses it (uninstall)."""
    _version, user = _server_version(cr)
    role = role_name(user)
    cr.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    if not cr.fetchone():
        return
    cr.execute("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
               "WHERE n.nspname = current_schema() AND c.relname = %s", (PARAM_TABLE,))
    statements = []
    if cr.fetchone():
        table = quote(PARAM_TABLE)
        statements += [f"DROP POLICY IF EXISTS {PARAM_POLICY} ON {table}",
                       f"DROP POLICY IF EXISTS {PARAM_POLICY_ALL} ON {table}",
                       f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"]
    statements.append(f"DROP OWNED BY {quote(role)}")
    error = _savepoint(cr, statements)
    if error:
        _logger.warning("oCore MCP: could not remove the grants of role %s: %s", role, error)
        return
    error = _savepoint(cr, [f"DROP ROLE {quote(role)}"])
    if error:
        _logger.info("oCore MCP: role %s kept (%s)", role, error)
