"""18.0.1.1.0: the audit log's outcome columns lose their indexes (see McpAuditLog).

Odoo keeps an index whose field no longer asks for one: drop them here.
"""

INDEXES = ("event", "category", "status", "success", "refusal_reason")


def migrate(cr, version):
    for column in INDEXES:
        cr.execute(f'DROP INDEX IF EXISTS "mcp_audit_log__{column}_index"')  # noqa: S608 - fixed names
