"""What ``tools/list`` tells a client about each tool beyond its schema: the MCP annotations
(``readOnlyHint``, ``destructiveHint``, ``idempotentHint``, ``openWorldHint``), a human title and the
output schema.

The hints are the truth about the tool, not about its confirm flow: ``kind="write"`` tools that can
overwrite or remove data irreversibly (``write``, ``execute_sql``, shell, user and group changes, module
install/upgrade, system parameters, file writes and moves, CSV import …) are ``destructiveHint: true``
although only ``kind="destructive"`` tools ask for ``confirm``. ``openWorldHint`` is sent for every tool:
false for a tool acting on this Odoo instance alone, true for one reaching outside it (PostHog, code that
may call anything: shell, methods and server actions, scheduled actions). Other hints are sent only where
they differ from the MCP defaults (readOnlyHint false, destructiveHint true, idempotentHint false): every
byte repeats per tool, and tools/list must stay within 60 KB with every addon (TestToolListBudget
measures it). A tool declares its own with the ``mcp_tool`` options ``title``, ``destructive_hint``,
``idempotent_hint``, ``open_world_hint``; the tables below cover the built-in tools.
"""

# kind="write" tools that may overwrite, run arbitrary code on, or remove existing data
DESTRUCTIVE_WRITES = frozenset({
    "write", "batch_update", "execute_method", "batch_execute", "import_csv",
    "execute_sql", "execute_shell", "execute_shell_multi", "python_repl",
    "set_user_active", "set_user_groups", "set_user_password", "impersonate_user",
    "set_system_parameter", "toggle_scheduled_action", "run_scheduled_action",
    "install_module", "upgrade_module",
    "file_write", "file_move",
    "update_translation", "update_note", "set_model_summary", "set_instance_summary",
})
# calling again with the same arguments changes nothing more
IDEMPOTENT = frozenset({
    "write", "batch_update", "set_user_active", "set_user_groups", "set_user_password", "set_system_parameter",
    "file_write", "update_translation", "update_note", "set_model_summary", "set_instance_summary",
    "unlink", "batch_delete", "delete_attachment", "delete_note", "delete_filter", "delete_bookmark",
    "file_delete", "clear_system_cache", "uninstall_module", "install_module",
})


# tools reaching outside the instance (besides the categories below)
OPEN_WORLD = frozenset({
    "execute_shell", "execute_shell_multi", "python_repl", "execute_method", "batch_execute",
    "run_scheduled_action",
})
OPEN_WORLD_CATEGORIES = frozenset({"monitoring", "actions"})


def title_of(spec):
    """The tool's declared human title, else one made of its name ("list_notes" -> "List notes")."""
    return getattr(spec.meta, "title", None) or spec.name.replace("_", " ").capitalize()


def open_world(spec):
    declared = getattr(spec.meta, "open_world_hint", None)
    if declared is not None:
        return declared
    return spec.name in OPEN_WORLD or spec.category in OPEN_WORLD_CATEGORIES


def annotations_of(spec):
    """The tool's annotations, only where they differ from the MCP defaults."""
    meta = spec.meta
    if spec.kind == "read":
        out = {"readOnlyHint": True}
    else:
        destructive = getattr(meta, "destructive_hint", None)
        if destructive is None:
            destructive = spec.kind == "destructive" or spec.name in DESTRUCTIVE_WRITES
        idempotent = getattr(meta, "idempotent_hint", None)
        idempotent = spec.name in IDEMPOTENT if idempotent is None else idempotent
        out = {"destructiveHint": bool(destructive)}
        if idempotent:
            out["idempotentHint"] = True
    out["openWorldHint"] = open_world(spec)
    return out
