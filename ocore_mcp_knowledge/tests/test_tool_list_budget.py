import json
import logging

from odoo.tests import tagged

from odoo.addons.ocore_mcp.lib import protocol
from odoo.addons.ocore_mcp.models.res_config_settings import SLUG_MAX
from odoo.addons.ocore_mcp.service.context import Connection
from odoo.addons.ocore_mcp.tests.common import McpToolCase

_logger = logging.getLogger(__name__)

BUDGET = 60 * 1024  # bytes of one tools/list answer holding every tool
SLUG = "s" * SLUG_MAX  # the longest slug allowed: every instance tool's name carries it


@tagged("post_install", "-at_install")
class TestToolListBudget(McpToolCase):
    """tools/list of every tool (this addon's and ocore_mcp's; ocore_mcp_oauth adds none), as an administrator
    whose key has every scope, fits in 60 KB in each revision: it is read into every client's context."""

    KEY_NAME = "budget"

    def answer(self, version):
        conn = Connection(key=self.key, scope=None, settings=dict(self.settings, slug=SLUG, tools_page_size=1000),
                          transport="modern" if protocol.is_modern(version) else "stream", protocol_version=version)
        params = {"_meta": {protocol.PROTOCOL_VERSION_META_KEY: version,
                            protocol.CLIENT_CAPABILITIES_META_KEY: {}}} if protocol.is_modern(version) else None
        msg = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", **({"params": params} if params else {})}
        reply = self.server._ocore_handle(conn, msg)
        self.assertIn("result", reply, reply)
        return protocol.dumps(reply)

    def test_every_tool_fits_in_60_kb(self):
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        self.assertIn("add_note", specs)
        for version in ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"):
            text = self.answer(version)
            tools = json.loads(text)["result"]["tools"]
            self.assertEqual(len(tools), len(specs), version)  # every tool, on one page
            size = len(text.encode())
            _logger.info("tools/list %s: %d tools, %d bytes (%.1f KB)", version, len(tools), size, size / 1024)
            self.assertLessEqual(size, BUDGET, f"tools/list in {version}: {size} bytes ({len(tools)} tools)")
            # compact JSON: no indentation, no space after separators
            self.assertNotIn('": ', text.replace('\\"', ""))
