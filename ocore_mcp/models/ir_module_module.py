import logging

from odoo import fields, models

from .mcp_control_link import push_tools_changed

_logger = logging.getLogger(__name__)

# state a module is marked with before an immediate operation -> (state after, action)
_PENDING = {
    "to install": ("installed", "install"),
    "to upgrade": ("installed", "upgrade"),
    "to remove": ("uninstalled", "uninstall"),
}
EVENT_MODEL = "ocore.mcp.module.event"


class IrModuleModule(models.Model):
    _inherit = "ir.module.module"

    def _register_hook(self):
        """After a registry load: record module changes made without the immediate buttons (e.g. -i/-u)."""
        super()._register_hook()
        if EVENT_MODEL not in self.env:
            return
        try:
            with self.env.cr.savepoint():
                self.env[EVENT_MODEL]._ocore_sync_database()
        except Exception:  # noqa: BLE001 - bookkeeping must never prevent a registry from loading
            _logger.warning("could not compare the installed modules with the last snapshot", exc_info=True)

    def _button_immediate_function(self, function):
        """Record every module the operation installs, upgrades or uninstalls (``ocore.mcp.module.event``)."""
        marked = {}

        def marking(records):
            result = function(records)
            for module in records.search([("state", "in", tuple(_PENDING))]):
                marked[module.name] = (module.state, module.latest_version or False)
            return result

        requested = set(self.mapped("name"))
        tools_before = self._ocore_tool_signature()
        events = self.env[EVENT_MODEL]
        events._ocore_sync_database()  # earlier changes first, then hold the comparison off
        events._ocore_set_busy(True)  # committed with the operation's first commit
        try:
            result = super()._button_immediate_function(marking)
        except Exception:
            # committed only if the operation got past its first commit; else the marker expires
            self._ocore_clear_busy()
            raise
        # the registry has been reloaded: self.env now uses the new one
        if EVENT_MODEL in self.env:
            try:
                self._ocore_record_module_events(marked, requested)
                self.env[EVENT_MODEL]._ocore_save_snapshot()
                self.env[EVENT_MODEL]._ocore_set_busy(False)
                self.env.cr.commit()  # pylint: disable=invalid-commit  # the operation committed; log it
            except Exception:  # noqa: BLE001 - the operation itself is done and committed
                self.env.cr.rollback()
                _logger.warning("could not record the module operation %s", sorted(marked), exc_info=True)
                self._ocore_clear_busy()
                self.env.cr.commit()  # pylint: disable=invalid-commit  # the operation committed; clear its marker
        self._ocore_notify_tools_changed(tools_before)
        return result

    def _ocore_tool_signature(self):
        """The installed tools (name, category, kind): compared before and after a module operation."""
        if "ocore.mcp.toolset" not in self.env:
            return None
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        return frozenset((name, spec.category, spec.meta.kind) for name, spec in specs.items())

    def _ocore_notify_tools_changed(self, before):
        """notifications/tools/list_changed to the open sessions and listen streams when the operation
        changed the installed tools (models/mcp_subscription.py)."""
        try:
            if before is None or "ocore.mcp.subscription" not in self.env or self._ocore_tool_signature() == before:
                return
            self.env["ocore.mcp.subscription"].sudo()._ocore_tools_list_changed()
            push_tools_changed(self.env, "modules")  # the control plane(s) this instance is enrolled with
            self.env.cr.commit()  # pylint: disable=invalid-commit  # the operation committed; NOTIFY with this commit
        except Exception:  # noqa: BLE001 - the operation itself is done and committed
            self.env.cr.rollback()
            _logger.warning("could not notify the MCP sessions of the tool list change", exc_info=True)

    def _ocore_clear_busy(self):
        try:
            if EVENT_MODEL in self.env:
                with self.env.cr.savepoint():
                    self.env[EVENT_MODEL]._ocore_set_busy(False)
        except Exception:  # noqa: BLE001 - the marker expires by itself
            _logger.warning("could not clear the module operation marker", exc_info=True)

    def _ocore_record_module_events(self, marked, requested):
        """Create events for ``marked`` ({name: (state before, version before)}) from the modules' new state."""
        context = self.env.context
        source = "mcp" if context.get("ocore_mcp_source") == "mcp" else "odoo"
        now = fields.Datetime.now()
        modules = {m.name: m for m in self.env["ir.module.module"].sudo().search([("name", "in", list(marked))])}
        values = []
        for name, (before_state, before_version) in sorted(marked.items()):
            expected, action = _PENDING[before_state]
            module = modules.get(name)
            if module is None or module.state != expected:
                continue  # not done (e.g. an install that failed and was reset)
            values.append({
                "module": name,
                "module_id": module.id,
                "action": action,
                "version_before": before_version if action != "install" else False,
                "version_after": module.latest_version if action != "uninstall" else False,
                "requested": name in requested,
                "user_id": self.env.uid,
                "key_id": context.get("ocore_mcp_key_id") if source == "mcp" else False,
                "date": now,
                "source": source,
            })
        return self.env[EVENT_MODEL].sudo().create(values)
