from odoo import models


class PlatformToolsExtended(models.AbstractModel):
    """Override of an existing tool with ``_inherit`` alone: no decorator, no docstring.

    The tool keeps its metadata (category ``platform``, the ``ocore_`` prefix,
    its description); only the behaviour changes.
    """

    _inherit = "ocore.mcp.tools.platform"

    def _tool_list_servers(self):
        result = super()._tool_list_servers()
        result["extended_by"] = "ocore_mcp_test_extension"
        for server in result.get("servers", []):
            server["extended_by"] = "ocore_mcp_test_extension"
        return result
