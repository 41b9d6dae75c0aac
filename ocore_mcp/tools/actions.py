"""The "actions" family: server actions an administrator made available in MCP (models/ir_actions_server.py).

Each such action is one tool (``ActionToolSpec``) whose method is ``_ocore_run_server_action``: it runs the
action as the key owner exactly as Odoo's "Run" button does (``active_model``, ``active_ids``,
``active_id`` in the context, then ``run()``), in the call's savepoint and under its deadline.
"""

from odoo import api, models

from ..lib import compat
from ..lib.errors import Refusal
from ..models.ir_actions_server import ActionToolSpec

RESULT_KEYS = ("type", "name", "tag", "res_model", "res_id", "view_mode", "domain", "url", "target", "report_name")
MAX_RECORDS_SHOWN = 50


class _ReadOnlyRollback(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, value):
        super().__init__("read-only action")
        self.value = value


class McpToolsetActions(models.AbstractModel):
    """Every tool list (tools/list, the key form, categories) sees the server actions' tools too."""

    _inherit = "ocore.mcp.toolset"

    @api.model
    def _ocore_builtin_tool_specs(self):
        """The tools declared in code (decorated methods), without the server actions'."""
        return super()._ocore_tool_specs()  # pylint: disable=super-method-mismatch  # the base's list, on purpose

    @api.model
    def _ocore_instance_refusal(self, spec, conn):
        """Why the instance's administrators keep this tool from this connection, or None: a built-in tool
        switched off (Settings > MCP > Tools), a server action whose owner may not run it."""
        if not isinstance(spec, ActionToolSpec):
            if spec.name in self.env["ocore.mcp.tool.setting"]._ocore_disabled_names():
                return Refusal("tool_denied", f"tool {spec.name!r} is switched off on this instance by its "
                                              "administrators (Settings > MCP > Tools)")
            return None
        if not self._ocore_action_runnable(spec, conn.auth.user_id):
            return Refusal("tool_denied", f"the key's owner may not run the server action behind {spec.name!r} "
                                          f"(its groups, or write access to {spec.action_model})")
        return None

    @api.model
    def _ocore_tool_specs(self):
        builtin = super()._ocore_tool_specs()
        actions = self.env["ir.actions.server"]._ocore_mcp_tool_specs()
        if not actions:
            return builtin
        specs = dict(builtin)
        specs.update(actions)  # an action replaces a built-in tool only with mcp_tool_override (checked on save)
        return specs

    @api.model
    def _ocore_action_runnable(self, spec, user_id):
        """Whether the user may run the action behind ``spec``, as ir.actions.server.run() decides: one of
        the action's groups, or (no groups) write access to its model."""
        env = api.Environment(self.env.cr, user_id, {})
        if spec.group_ids:
            return bool(set(spec.group_ids) & set(compat.user_all_groups(env.user).ids))
        if spec.action_model not in env:
            return False
        return compat.has_access(env[spec.action_model], "write")


class ActionTools(models.AbstractModel):
    _name = "ocore.mcp.tools.actions"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: server actions"

    def _ocore_run_server_action(self, ids, values=None):
        """Run the call's server action on ``ids`` as the key owner (the tool of every action)."""
        call = self._call()
        spec = call.spec
        if not isinstance(spec, ActionToolSpec):
            raise Refusal("unknown_tool", "not a server action tool")
        action = self.env["ir.actions.server"].browse(spec.action_id)
        if not action.sudo().exists() or not action.sudo().mcp_tool:
            raise Refusal("unknown_tool", f"the server action behind {spec.name!r} is no longer available in MCP")
        model = spec.action_model
        records = self._model(model).browse(list(dict.fromkeys(ids)))
        missing = sorted(set(records.ids) - set(records.exists().ids))
        if missing:
            raise Refusal("invalid_input", f"ids: no {model} record with id(s) {', '.join(map(str, missing))}")
        compat.check_access(records, "read")  # the owner's record rules: AccessError otherwise
        context = {"active_model": model, "active_ids": records.ids, "active_id": records.ids[0]}
        if values is not None:
            context["mcp_values"] = values
        if spec.kind != "read":
            return self._ocore_action_result(spec, records, action.with_context(**context).run())
        # a read-only action: whatever it writes is rolled back (the tool is offered to read-only keys)
        try:
            with self.env.cr.savepoint(flush=True):
                value = self._ocore_action_result(spec, records, action.with_context(**context).run())
                raise _ReadOnlyRollback(value)
        except _ReadOnlyRollback as done:
            self.env.invalidate_all()
            return done.value

    def _ocore_action_result(self, spec, records, result):
        """What the action returned, readable: a message, the action it opens (summarised), the records."""
        out = {"action": spec.meta.title or spec.name, "model": records._name, "ids": records.ids}
        if isinstance(result, dict):
            summary = {key: result[key] for key in RESULT_KEYS if result.get(key) not in (None, False, "")}
            params = result.get("params")
            if isinstance(params, dict):
                for key in ("title", "message", "type"):
                    if isinstance(params.get(key), str):
                        summary[f"{key}" if key != "type" else "notification_type"] = params[key]
                if isinstance(params.get("next"), dict) and params["next"].get("type"):
                    summary["next"] = params["next"]["type"]
            out["result"] = summary
            if summary.get("message"):
                out["message"] = summary["message"]
            opened = self._ocore_opened_records(result)
            if opened:
                out["opened_records"] = opened
        elif result:
            out["result"] = str(result)[:2000]
        else:
            out["result"] = None
            out["message"] = "done"
        still = records.exists()
        if compat.has_access(still, "read"):
            out["records"] = [{"id": r.id, "display_name": r.display_name} for r in still[:MAX_RECORDS_SHOWN]]
        return out

    def _ocore_opened_records(self, result):
        """The records an act_window result opens (res_id, or a domain of ids), as the owner sees them."""
        model = result.get("res_model")
        if result.get("type") != "ir.actions.act_window" or not isinstance(model, str) or model not in self.env:
            return None
        target = self.env[model]
        if isinstance(result.get("res_id"), int) and result["res_id"]:
            found = target.browse(result["res_id"]).exists()
        else:
            return None
        if not found or not compat.has_access(found, "read"):
            return None
        return [{"id": r.id, "display_name": r.display_name} for r in found]
