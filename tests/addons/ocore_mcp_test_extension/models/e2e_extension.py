"""A tool family with a category of its own (``e2e_extension``), added by a third-party addon: the
category record (data/ocore_mcp_category_data.xml) and this decorated method, nothing else."""

from odoo import models

from odoo.addons.ocore_mcp.lib.tooling import mcp_tool


class E2eExtensionTools(models.AbstractModel):
    _name = "ocore.mcp.tools.e2e_extension"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: end-to-end test category of its own"

    @mcp_tool("e2e_extension", kind="read", model_args=())
    def _tool_e2e_extension_ping(self, text: str = "ping") -> dict:
        """Answer with the text and the category of the tool (test fixture).

        Args:
            text: Any text; returned unchanged.
        """
        return {"text": text, "category": "e2e_extension", "login": self.env.user.login}
