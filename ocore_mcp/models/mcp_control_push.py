"""An enrolled instance tells its control plane at once when its tool list changes (a signed notice, see
``ocore.mcp.control.link._ocore_push_tools_changed``): a server action ticked or unticked, a tool switched
off, a module installed or uninstalled (a control plane key's scopes: models/mcp_control_link.py). Imported
last: these hooks wrap the methods that announce the change to this instance's own sessions."""

import logging

from odoo import api, models

from .mcp_control_link import push_tools_changed as _push

_logger = logging.getLogger(__name__)


class IrActionsServerControlPush(models.Model):
    _inherit = "ir.actions.server"

    @api.model
    def _ocore_mcp_tools_changed(self):
        result = super()._ocore_mcp_tools_changed()
        _push(self.env, "tools")
        return result


class IrModuleControlPush(models.Model):
    _inherit = "ir.module.module"

    def _button_immediate_function(self, function):
        before = self._ocore_control_tool_names()
        result = super()._button_immediate_function(function)
        # the registry has been reloaded: self.env uses the new one
        if before is not None and self._ocore_control_tool_names() != before:
            _push(self.env, "modules")
        return result

    def _ocore_control_tool_names(self):
        if "ocore.mcp.control.link" not in self.env or "ocore.mcp.toolset" not in self.env:
            return None
        if not self.env["ocore.mcp.control.link"].sudo().search_count([("state", "=", "enrolled")]):
            return None
        return frozenset(self.env["ocore.mcp.toolset"]._ocore_tool_specs())
