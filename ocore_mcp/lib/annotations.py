"""What ``tools/list`` tells a client about each tool beyond its schema: the MCP annotations
(``readOnlyHint``, ``destructiveHint``, ``idempotentHint``, ``openWorldHint``) and a human title.

The hints are the truth about the tool, not about its confirm flow: ``kind="write"`` tools that can
overwrite or remove data irreversibly (``write``, ``execute_sql``, shell, user and group changes, module
install/upgrade, system parameters, file writes and moves, CSV import …) are ``destructiveHint: true``
although only ``kind="destructive"`` tools ask for ``confirm``. Only values that differ from the MCP
defaults (readOnlyHint false, destructiveHint true, idempotentHint false, openWorldHint true) are sent:
every byte repeats per tool, and tools/list must stay within 60 KB with every addon (measured with the
three addons: 58.7 KB before titles; a title on each of the ~100 built-in tools adds 2.7 KB and
``openWorldHint: false`` on the closed-world ones 2.0 KB, so neither is sent for the built-in tools: a
client assumes the cautious default, open world). A tool declares its own with the ``mcp_tool`` options
``title``, ``destructive_hint``, ``idempotent_hint``, ``open_world_hint``; the tables below cover the
built-in tools.
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


def title_of(spec):
    """The tool's declared human title, or None (not sent)."""
    return getattr(spec.meta, "title", None)


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
    if getattr(meta, "open_world_hint", None) is False:
        out["openWorldHint"] = False
    return out
