"""Fixtures of the official MCP conformance suite's server scenarios (tests/test_conformance.py): the
prompt ``test_prompt_with_arguments`` (``completion-complete``) and the resources ``test://static-text``,
``test://static-binary`` and ``test://template/{id}/data`` (``resources-*``). The resources are read
through the pipeline like every resource (as a call of ``get_instance_info``, audited); only their
contents are the fixed ones the scenarios expect."""

import json

from odoo import models

from odoo.addons.ocore_mcp.models.mcp_completion import ranked
from odoo.addons.ocore_mcp.models.mcp_prompts import mcp_prompt
from odoo.addons.ocore_mcp.models.mcp_resources import DirectResource, ResourceTemplate

# a 1x1 transparent PNG
PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
TEXT = "This is the content of the static text resource."
ARG1_VALUES = ("paris", "park", "party", "test", "testing")


class ConformancePrompts(models.AbstractModel):
    _inherit = "ocore.mcp.prompts"

    @mcp_prompt("Conformance fixture: a prompt with arguments",
                (("arg1", "First argument", True), ("arg2", "Second argument", False)))
    def _prompt_test_prompt_with_arguments(self, arg1, arg2=None):
        return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


class ConformanceCompletion(models.AbstractModel):
    _inherit = "ocore.mcp.completion"

    def _ocore_complete_argument(self, conn, env, name, value, context):
        if name == "arg1":
            return ranked(value, [(v, "") for v in ARG1_VALUES])
        return super()._ocore_complete_argument(conn, env, name, value, context)


class ConformanceResources(models.AbstractModel):
    _inherit = "ocore.mcp.resources"

    def _ocore_direct_resources(self):
        return [*super()._ocore_direct_resources(),
                DirectResource("test://static-text", "static_text", "Static text", "Conformance fixture (text).",
                               "get_instance_info", mime_type="text/plain"),
                DirectResource("test://static-binary", "static_binary", "Static binary",
                               "Conformance fixture (PNG).", "get_instance_info", mime_type="image/png")]

    def _ocore_resource_templates(self):
        return [*super()._ocore_resource_templates(),
                ResourceTemplate("test://template/{id}/data", "template_data", "Template data",
                                 "Conformance fixture (template).", r"test://template/(?P<id>[0-9]{1,9})/data",
                                 "get_instance_info", "application/json", ("id",))]

    def _ocore_resource_args(self, template, values):
        if template.uri_template.startswith("test://"):
            return {}
        return super()._ocore_resource_args(template, values)

    def _ocore_resource_contents(self, uri, template, values, structured, text):
        if uri == "test://static-text":
            return [{"uri": uri, "mimeType": "text/plain", "text": TEXT}]
        if uri == "test://static-binary":
            return [{"uri": uri, "mimeType": "image/png", "blob": PNG_BASE64}]
        if uri.startswith("test://template/"):
            data = {"id": values["id"], "templateTest": True, "data": f"Data for ID: {values['id']}"}
            return [{"uri": uri, "mimeType": "application/json", "text": json.dumps(data)}]
        return super()._ocore_resource_contents(uri, template, values, structured, text)
