"""Server actions as MCP tools: an administrator ticks "Available in MCP" on a server action.

The tool ``<slug>_<mcp_tool_name>`` runs the action as the key owner exactly as Odoo's "Run" button
does (tools/actions.py), through the same pipeline as every tool. The specs are built from the records
(``_ocore_mcp_tool_specs``, in the registry's ormcache: a change clears it in every worker) and merged
into ``ocore.mcp.toolset._ocore_tool_specs``.
"""

import logging
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field, create_model

from odoo import _, api, fields, models, tools
from odoo.exceptions import ValidationError

from ..lib import compat
from ..lib.tooling import ToolMeta, ToolSpec, _compact, add_common_params
from .mcp_control_link import push_tools_changed
from .res_config_settings import SLUG_MAX, TOOL_NAME_MAX

_logger = logging.getLogger(__name__)

# <slug>_<name> must fit in the 64 characters MCP clients accept, whatever the slug (at most SLUG_MAX)
NAME_MAX = TOOL_NAME_MAX - 1 - SLUG_MAX
TOOL_NAME = re.compile(rf"^[a-z][a-z0-9_]{{0,{NAME_MAX - 1}}}$")
ACTION_TOOLSET = "ocore.mcp.tools.actions"
ACTION_METHOD = "_ocore_run_server_action"
MAX_IDS = 1000
# the fields whose change changes the tool list (tools/list is rebuilt, clients are told)
MCP_FIELDS = frozenset({"mcp_tool", "mcp_tool_name", "mcp_tool_description", "mcp_read_only", "mcp_category_id",
                        "mcp_tool_override", "name", "help", "model_id", "state", "groups_id", "group_ids",
                        "active"})
LIST_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}


@dataclass
class ActionToolSpec(ToolSpec):
    """A tool made of a server action: the pipeline treats it like any spec; the action's id, model and
    groups travel with it."""

    action_id: int = 0
    action_model: str = ""
    group_ids: tuple = ()


def _ids_args(uses_values):
    # strict: a string such as " 1" or "0x1" is refused, never coerced into a record id
    ids = Annotated[list[Annotated[int, Field(gt=0, strict=True)]], Field(min_length=1, max_length=MAX_IDS)]
    fields_ = {"ids": (ids, Field(..., description="Ids of the records to run the action on."))}
    if uses_values:
        fields_["values"] = (dict | None, Field(None, description=(
            "Optional values for the action; its code reads them as env.context['mcp_values'].")))
    return fields_


class IrActionsServer(models.Model):
    _inherit = "ir.actions.server"

    mcp_tool = fields.Boolean(
        "Available in MCP", copy=False,
        help="Offer this action as a tool of the MCP server, to the API keys whose owner may run it.")
    mcp_tool_name = fields.Char(
        "MCP Tool Name", copy=False,
        help="The tool's name without the instance prefix (lower-case letters, digits and _, at most 35 "
             "characters): the tool is <instance slug>_<this name>.")
    mcp_tool_description = fields.Text(
        "MCP Tool Description",
        help="What the AI client reads about the tool. Empty: the action's name and description.")
    mcp_read_only = fields.Boolean(
        "MCP Read Only",
        help="The action only reads: the tool is offered to read-only keys and on production instances "
             "(the production guard) and needs no confirmation. Whatever it writes is rolled back.")
    mcp_tool_override = fields.Boolean(
        "Replace Built-in Tool",
        help="Allow the tool name to be the name of a built-in tool, which this action then replaces.")
    mcp_category_id = fields.Many2one(
        "ocore.mcp.category", "MCP Category", ondelete="restrict",
        default=lambda self: self.env.ref("ocore_mcp.category_actions", raise_if_not_found=False),
        help="The category key scopes allow or deny the tool by.")

    @api.constrains("mcp_tool", "mcp_tool_name", "mcp_tool_override", "mcp_category_id", "model_id")
    def _check_mcp_tool(self):
        builtin = None
        for action in self.filtered("mcp_tool"):
            name = action.mcp_tool_name or ""
            if not TOOL_NAME.match(name):
                raise ValidationError(_(
                    "MCP tool name %(name)r of the action %(action)s: lower-case letters, digits and _, starting "
                    "with a letter, at most %(max)s characters (the tool is named <instance slug>_<this name>, and "
                    "MCP clients refuse names over %(limit)s characters).", name=name, action=action.display_name,
                    max=NAME_MAX, limit=TOOL_NAME_MAX))
            if not action.mcp_category_id:
                raise ValidationError(_("The action %s needs an MCP category.", action.display_name))
            clash = self.sudo().with_context(active_test=False).search(
                [("mcp_tool", "=", True), ("mcp_tool_name", "=", name), ("id", "!=", action.id)], limit=1)
            if clash:
                raise ValidationError(_("The MCP tool name %(name)s is already used by the action %(other)s.",
                                        name=name, other=clash.display_name))
            if builtin is None:
                builtin = self.env["ocore.mcp.toolset"]._ocore_builtin_tool_specs()
            if name in builtin and not action.mcp_tool_override:
                raise ValidationError(_(
                    "%(name)s is the name of a built-in MCP tool. Choose another name, or tick "
                    "\"Replace Built-in Tool\" to replace it with this action.", name=name))

    @api.onchange("mcp_tool")
    def _onchange_mcp_tool(self):
        for action in self:
            if action.mcp_tool and not action.mcp_tool_name and action.name:
                action.mcp_tool_name = re.sub(r"[^a-z0-9_]+", "_", action.name.lower()).strip("_")[:NAME_MAX] or False
                if action.mcp_tool_name and not action.mcp_tool_name[0].isalpha():
                    action.mcp_tool_name = f"action_{action.mcp_tool_name}"[:NAME_MAX]

    # -- the tool list -------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        actions = super().create(vals_list)
        if any(vals.get("mcp_tool") for vals in vals_list):
            self._ocore_mcp_tools_changed()
        return actions

    def write(self, vals):
        was_tool = any(self.sudo().mapped("mcp_tool"))
        result = super().write(vals)
        if MCP_FIELDS & set(vals) and (was_tool or vals.get("mcp_tool")):
            self._ocore_mcp_tools_changed()
        return result

    def unlink(self):
        was_tool = any(self.sudo().mapped("mcp_tool"))
        result = super().unlink()
        if was_tool:
            self._ocore_mcp_tools_changed()
        return result

    @api.model
    def _ocore_mcp_tools_changed(self):
        """The tool list changed: clear the cached specs (every worker: the registry's cache signal) and
        tell every open session (``notifications/tools/list_changed`` on its stream, sent at commit)."""
        self.env.registry.clear_cache()
        # the open sessions, and the 2026-07-28 listen streams that asked for tool list changes
        self.env["ocore.mcp.subscription"].sudo()._ocore_tools_list_changed()
        push_tools_changed(self.env, "tools")  # the control plane(s) this instance is enrolled with

    @api.model
    @tools.ormcache()
    def _ocore_mcp_tool_specs(self):
        """{tool name: ActionToolSpec} of the actions available in MCP (cached per registry, cleared by any
        change of those actions)."""
        actions = self.sudo().search([("mcp_tool", "=", True), ("mcp_tool_name", "!=", False)], order="id")
        groups_field = compat.action_groups_field(self)
        specs = {}
        for action in actions:
            if not action.mcp_category_id or not TOOL_NAME.match(action.mcp_tool_name):
                continue
            specs[action.mcp_tool_name] = action._ocore_mcp_tool_spec(groups_field)
        return specs

    def _ocore_mcp_tool_spec(self, groups_field):
        self.ensure_one()
        uses_values = self.state == "code"
        meta = ToolMeta(category=self.mcp_category_id.code, kind="read" if self.mcp_read_only else "destructive",
                        model_args=(), title=self.name)
        validator = create_model(f"Args_action_{self.id}", __config__=ConfigDict(extra="forbid"),
                                 **_ids_args(uses_values))
        schema = _compact(validator.model_json_schema())
        schema.pop("additionalProperties", None)
        schema["properties"]["ids"]["description"] = f"Ids of the {self.model_id.model} records to run the action on."
        add_common_params(schema["properties"], meta.kind == "destructive", meta.kind == "destructive")
        return ActionToolSpec(
            name=self.mcp_tool_name,
            meta=meta,
            model_name=ACTION_TOOLSET,
            method_name=ACTION_METHOD,
            description=self._ocore_mcp_description(),
            input_schema=schema,
            validator=validator,
            params=("ids", "values") if uses_values else ("ids",),
            action_id=self.id,
            action_model=self.model_id.model,
            group_ids=tuple(self[groups_field].ids),
        )

    def _ocore_mcp_description(self):
        if self.mcp_tool_description:
            return self.mcp_tool_description.strip()
        help_text = tools.html2plaintext(self.help or "").strip() if self.help else ""
        text = f"{self.name} (server action on {self.model_id.model}: runs on the records given by ids)."
        return f"{text}\n\n{help_text}" if help_text else text
