"""The Knowledge Layer as MCP resources: ``odoo://knowledge/context`` (instance summary, model summaries,
notes, saved filters, bookmarks: the ``get_context`` tool) and ``odoo://knowledge/notes/{model}`` (the
notes about a model and its records: ``list_notes``). Read through the tool pipeline like every resource
(models/mcp_resources.py of ocore_mcp): the key's categories, rate limit and audit apply. Saved filter
names complete the ``filter`` argument of prompts (``ocore.mcp.completion``)."""

from odoo import models

from odoo.addons.ocore_mcp.models.mcp_completion import ranked
from odoo.addons.ocore_mcp.models.mcp_resources import DirectResource, ResourceTemplate

_MODEL = r"(?P<model>[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)"


class McpKnowledgeResources(models.AbstractModel):
    _inherit = "ocore.mcp.resources"

    def _ocore_direct_resources(self):
        return [*super()._ocore_direct_resources(),
                DirectResource("odoo://knowledge/context", "knowledge_context", "Knowledge Layer",
                               "What AI assistants noted about this instance: instance summary, model summaries, "
                               "notes, saved filters and recent bookmarks.", "get_context")]

    def _ocore_resource_templates(self):
        # before the generic odoo://{model}/{id} and odoo://{model} templates of ocore_mcp
        return [ResourceTemplate("odoo://knowledge/notes/{model}", "knowledge_notes", "Notes about a model",
                                 "The Knowledge Layer's notes about a model and its records (50 most recent).",
                                 rf"odoo://knowledge/notes/{_MODEL}", "list_notes", "application/json", ("model",)),
                *super()._ocore_resource_templates()]

    def _ocore_resource_args(self, template, values):
        if template.tool == "list_notes":
            return {"model": values["model"]}
        return super()._ocore_resource_args(template, values)


class McpCompletionKnowledge(models.AbstractModel):
    _inherit = "ocore.mcp.completion"

    def _ocore_complete_argument(self, conn, env, name, value, context):
        if name == "filter":
            Filter = env["ocore.mcp.saved.filter"]
            rows = Filter.search_read(env["ocore.mcp.tools.context"]._ocore_company_domain(), ["name", "model"],
                                      order="use_count desc, name", limit=1000)
            return ranked(value, [(row["name"], row["model"] or "") for row in rows])
        return super()._ocore_complete_argument(conn, env, name, value, context)
